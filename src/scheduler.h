/*-------------------------------------------------------------------------
 *
 * scheduler.h
 *	  The request scheduler: AWS calls under way, who owns each of them,
 *	  and when each dies.
 *
 * Who makes a request: a scan's page (its Query, its BatchGetItem calls,
 * its S3 GetObjects), a commit's DynamoDB transaction (its id look-ups, its
 * S3 uploads, its TransactWriteItems), or a synchronous caller (a stream
 * head read, an admin function).
 *
 * Who owns it.  An asynchronous request (aws_submit) has two owners, and
 * dies with whichever goes first:
 *
 *	- the memory context it was submitted in, which holds the AwsCall and
 *	  its answer (the page's context, the commit transaction's context).
 *	  When that context is reset or deleted -- the page is returned, the
 *	  scan ends or is rescanned, the portal is closed, the commit moves on,
 *	  the (sub)transaction's memory goes -- a reset callback abandons the
 *	  request first: it leaves the queue and its transfer is aborted, so
 *	  libcurl never writes into freed memory.  The AwsCall must therefore
 *	  be allocated in that context (or one that outlives it) and never be
 *	  pfree'd on its own;
 *	- the resource owner it was submitted under: the portal's while a
 *	  cursor is fetched from, the statement's or the subtransaction's
 *	  otherwise, the transaction's at commit.  When that owner is released
 *	  on abort (an error, ROLLBACK TO SAVEPOINT of the subtransaction it
 *	  ran in, a FETCH that failed, which fails its portal), its requests
 *	  are abandoned; when it is released on commit (RELEASE SAVEPOINT, a
 *	  closed portal), they pass to its parent, and at the end of the top
 *	  transaction nothing is left.
 *
 * So a cursor's read-ahead survives ROLLBACK TO SAVEPOINT of a savepoint
 * taken after the cursor was declared, as the cursor itself does, and
 * a request is never dropped for the subtransaction it happened to be
 * submitted in.  An abandoned request is done and failed (57014), so
 * whoever still looks at it sees a failure, never a wait without end.
 *
 * A synchronous call (aws_execute) is owned by its caller's stack frame:
 * it runs to completion, and an error on the way abandons it before the
 * frame unwinds.
 *
 * The queue holds the submitted calls that are not done.  aws_pump starts
 * those that are due while there is room in flight (each call's server
 * sets its max_in_flight), waits for one to finish, and classifies it;
 * synchronous and asynchronous callers share it, so a scan's read-ahead
 * keeps going while another call is awaited.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ESD_SCHEDULER_H
#define ESD_SCHEDULER_H

#include "aws.h"

/*
 * Queue a call, owned by CurrentMemoryContext (which must hold the AwsCall)
 * and CurrentResourceOwner.  A call that set `due` before submission
 * starts then.
 */
extern void aws_submit(const EsdConnOptions *conn, AwsCall *call, AwsStats *stats);

/* Make progress on every queued call, waiting up to wait_ms for one to finish. */
extern void aws_pump(long wait_ms);

/* Progress without waiting: start what is due, classify what has finished. */
extern void aws_poll(void);

/* Abandon a call that is no longer wanted (a no-op for one that is not queued). */
extern void aws_cancel(AwsCall *call);

extern bool aws_all_done(AwsCall **calls, int ncalls);

/*
 * Run the calls concurrently (at most max_in_flight at once), retrying each
 * under the one retry policy.  With raise, the first call that failed for
 * good raises its error; otherwise the caller inspects call->failed and may
 * use aws_raise(call).  The calls may live on the caller's stack.
 */
extern void aws_execute(const EsdConnOptions *conn, AwsCall **calls, int ncalls,
						AwsStats *stats, bool raise);
extern void aws_execute_one(const EsdConnOptions *conn, AwsCall *call,
							AwsStats *stats);

/* Calls in the queue, for assertions and tests. */
extern int	aws_queued(void);

#endif							/* ESD_SCHEDULER_H */
