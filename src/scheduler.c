/*-------------------------------------------------------------------------
 *
 * scheduler.c
 *	  The request scheduler: AWS calls under way, who owns each of them,
 *	  and when each dies.
 *
 * scheduler.h explains the ownership: a submitted call belongs to the
 * memory context it was submitted in and to the resource owner it was
 * submitted under, and is abandoned when either goes.  This file keeps
 * that promise with a memory context reset callback per call and one
 * resource-release callback, as postgres_fdw ties its remote state to
 * transaction callbacks: there is no other way out of the queue than being
 * done or being abandoned by an owner (or by its caller, aws_cancel).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "scheduler.h"

/* Submitted calls that are not done, in submission order (TopMemoryContext). */
static List *queued = NIL;
static bool release_callback_registered = false;

/*
 * Take a call out of the queue, its transfer aborted.  A call that was not
 * done becomes a failed one, so that whoever waits on it stops waiting.
 */
static void
abandon(AwsCall *call)
{
	if (!call->submitted)
		return;
	if (call->transfer.in_flight)
		http_abort(&call->transfer);
	queued = list_delete_ptr(queued, call);
	if (call->headers)
	{
		curl_slist_free_all(call->headers);
		call->headers = NULL;
	}
	call->submitted = false;
	if (!call->done)
	{
		call->done = true;
		call->failed = true;
		call->sqlstate = ERRCODE_QUERY_CANCELED;
		call->error_type = "Cancelled";
		call->error_message = "the request was abandoned";
	}
}

void
aws_cancel(AwsCall *call)
{
	abandon(call);
}

/* The memory context that owns a call is being reset or deleted. */
static void
owner_context_gone(void *arg)
{
	abandon((AwsCall *) arg);
}

/*
 * A resource owner is being released (CurrentResourceOwner is the one).
 * On abort its calls are abandoned; on commit they pass to its parent, and
 * the top transaction's owner, which has none, takes them all with it.
 */
static void
owner_released(ResourceReleasePhase phase, bool isCommit,
			   bool isTopLevel pg_attribute_unused(), void *arg pg_attribute_unused())
{
	ResourceOwner owner = CurrentResourceOwner;
	ResourceOwner parent;
	List	   *doomed = NIL;
	ListCell   *lc;

	if (phase != RESOURCE_RELEASE_BEFORE_LOCKS || queued == NIL || owner == NULL)
		return;
	parent = ResourceOwnerGetParent(owner);
	foreach(lc, queued)
	{
		AwsCall    *call = lfirst(lc);

		if (call->resowner != owner)
			continue;
		if (isCommit && parent != NULL)
			call->resowner = parent;
		else
			doomed = lappend(doomed, call);
	}
	foreach(lc, doomed)
		abandon(lfirst(lc));
	list_free(doomed);
}

/* Queue a call; with_context, its memory context owns it too. */
static void
enqueue(const EsdConnOptions *conn, AwsCall *call, AwsStats *stats, bool with_context)
{
	MemoryContext old;

	Assert(!call->submitted);
	if (!release_callback_registered)
	{
		RegisterResourceReleaseCallback(owner_released, NULL);
		release_callback_registered = true;
	}
	call->conn = conn;
	call->stats = stats;
	call->cxt = CurrentMemoryContext;
	call->resowner = CurrentResourceOwner;
	if (with_context)
	{
		MemoryContextCallback *cb = palloc(sizeof(MemoryContextCallback));

		cb->func = owner_context_gone;
		cb->arg = call;
		MemoryContextRegisterResetCallback(CurrentMemoryContext, cb);
	}
	old = MemoryContextSwitchTo(TopMemoryContext);
	queued = lappend(queued, call);
	MemoryContextSwitchTo(old);
	call->submitted = true;
}

void
aws_submit(const EsdConnOptions *conn, AwsCall *call, AwsStats *stats)
{
	enqueue(conn, call, stats, true);
}

bool
aws_all_done(AwsCall **calls, int ncalls)
{
	for (int i = 0; i < ncalls; i++)
		if (!calls[i]->done)
			return false;
	return true;
}

int
aws_queued(void)
{
	return list_length(queued);
}

/* Start every queued call that is due while there is room; the soonest later due time, or 0. */
static TimestampTz
start_due_calls(void)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz next_due = 0;
	ListCell   *lc;

	foreach(lc, queued)
	{
		AwsCall    *call = lfirst(lc);

		if (call->done || call->transfer.in_flight)
			continue;
		if (call->due <= now && http_in_flight() < call->conn->max_in_flight)
			aws_start_attempt(call);
		else if (next_due == 0 || call->due < next_due)
			next_due = Max(call->due, now);
	}
	return next_due;
}

/* A transfer finished: classify its call; a call that is done leaves the queue. */
static void
finished(HttpTransfer *t)
{
	AwsCall    *call = (AwsCall *) t->owner;

	aws_classify(call);
	if (call->done)
		abandon(call);
}

void
aws_pump(long wait_ms)
{
	TimestampTz now;
	TimestampTz next_due;
	HttpTransfer *t;

	CHECK_FOR_INTERRUPTS();

	next_due = start_due_calls();
	now = GetCurrentTimestamp();
	if (next_due)
		wait_ms = Min(wait_ms, Max(1, (long) ((next_due - now) / 1000)));

	if (http_in_flight() == 0)
	{
		/* only backoff waits remain: sleep, interruptibly */
		if (queued != NIL)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 Min(wait_ms, 100), PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
		return;
	}

	t = http_wait_one(wait_ms);
	if (t != NULL)
		finished(t);
}

void
aws_poll(void)
{
	HttpTransfer *t;

	if (queued == NIL)
		return;
	(void) start_due_calls();
	while ((t = http_wait_one(0)) != NULL)
	{
		finished(t);
		(void) start_due_calls();
	}
}

void
aws_execute(const EsdConnOptions *conn, AwsCall **calls, int ncalls,
			AwsStats *stats, bool raise)
{
	PG_TRY();
	{
		for (int i = 0; i < ncalls; i++)
			enqueue(conn, calls[i], stats, false);
		while (!aws_all_done(calls, ncalls))
			aws_pump(1000);
	}
	PG_CATCH();
	{
		for (int i = 0; i < ncalls; i++)
			abandon(calls[i]);
		PG_RE_THROW();
	}
	PG_END_TRY();

	if (raise)
		for (int i = 0; i < ncalls; i++)
			if (calls[i]->failed)
				aws_raise(calls[i]);
}

void
aws_execute_one(const EsdConnOptions *conn, AwsCall *call, AwsStats *stats)
{
	aws_execute(conn, &call, 1, stats, true);
}
