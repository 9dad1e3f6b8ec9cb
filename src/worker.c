/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  Background workers that keep running projections current:
 *	  start_projection, stop_projection, the launcher and the projection
 *	  workers themselves.
 *
 * A running projection is a row of event_store_dynamo.projection_runs (the
 * projection and its poll interval).  That table is the truth; everything
 * in memory is derived from it and may be lost.  A projection worker (one
 * per partition of a running projection: create_projection(partitions => N)
 * gives N) connects to its database as the projection's owner (so it has
 * that role's privileges, user mapping and credentials, and nothing more)
 * and loops: CALL catch_up of its partition, one short transaction that
 * checks the projection is still running, then a sleep on its latch for the
 * poll interval.  When the projection's source has a change feed, its first
 * worker reads the feed at the start of each round and again every
 * event_store_dynamo.feed_interval while it sleeps, so that a new event
 * waits for the next feed read rather than for the next round (DynamoDB
 * allows 5 GetRecords a second per shard, shared by every reader: the
 * default 500 ms is 2 a second, so two projections may read one table's
 * feed).  An error in an iteration is reported,
 * rolled back and retried after a backoff that doubles up to a minute; the
 * worker itself stays.
 *
 * With the library in shared_preload_libraries, a static launcher (no
 * database) keeps a table of wanted workers in shared memory, one slot per
 * worker: start_projection and stop_projection change it when their
 * transaction commits, and the launcher registers dynamic workers for the
 * slots, watches their handles, and starts a worker that exits while its
 * slot is wanted again after a backoff (1 s doubling to 60 s, reset after a
 * successful catch-up).  Shared memory does not survive a server restart or
 * a crash, so when the launcher starts it runs a short scanner worker in
 * each database, which reads projection_runs and fills the slots again.
 * DROP DATABASE (a utility hook) and DROP EXTENSION clear the database's
 * slots first, so the workers leave before the database goes.
 *
 * Without shared_preload_libraries there is no launcher and no shared
 * memory: start_projection registers the dynamic workers itself at commit,
 * nothing restarts one that exits, and none comes back after a restart.
 * stop_projection and drop_projection signal the workers (found by their
 * application name) at commit; any worker also stops by itself within a
 * poll interval when its projection stops running or goes away.
 *
 * Progress is announced by a trigger on projection_run, so whoever runs
 * catch_up (a worker or a session): each commit that dealt with events sends
 * NOTIFY event_store_dynamo_projection with the projection and its position,
 * and wakes the backends sleeping in wait_for_projection (a condition
 * variable in shared memory; without the library preloaded they poll).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_database.h"
#include "commands/async.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "libpq/pqsignal.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "tcop/pquery.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "feed.h"
#include "worker.h"

#define EXTENSION_NAME			"event_store_dynamo"
#define NOTIFY_CHANNEL			"event_store_dynamo_projection"
#define WORKER_TYPE				"event_store_dynamo projection"
#define LAUNCHER_TYPE			"event_store_dynamo launcher"
#define SCANNER_TYPE			"event_store_dynamo scanner"
#define MAX_BACKOFF_MS			60000
#define LAUNCHER_CHECK_MS		30000
#define LAST_ERROR_LEN			200

/*
 * The SQL through which the workers see projections (whose catalog is
 * event_store_dynamo.projection, kept by the projections' own SQL).
 * _check_owner raises 42704 for an unknown projection and 42501 for a
 * caller who is not its owner.  The library serves every installed version
 * of the extension: before 0.4 a projection has no partitions column (one
 * partition) and its runs no generation and part (the run of run_key is
 * the projection's), hence the columns read through to_jsonb.
 */
#define PROJECTION_SQL \
	"SELECT event_store_dynamo._check_owner($1)::oid"
#define PARTITIONS_SQL \
	"SELECT coalesce((pg_catalog.to_jsonb(p) ->> 'partitions')::int4, 1)" \
	"  FROM event_store_dynamo.projection p WHERE p.name = $1"
#define RUN_OF_PARTITION \
	"coalesce((pg_catalog.to_jsonb(pr) ->> 'generation')::uuid, pr.key) = p.run_key" \
	" AND coalesce((pg_catalog.to_jsonb(pr) ->> 'part')::int4, 0)"
#define RUNNING_SQL \
	"SELECT (extract(epoch FROM r.poll) * 1000)::int8, p.owner::oid," \
	"       coalesce((SELECT pr.failed FROM event_store_dynamo.projection_run pr" \
	"                  WHERE pr.projection = p.name AND " RUN_OF_PARTITION " = $2), false)," \
	"       coalesce((pg_catalog.to_jsonb(p) ->> 'partitions')::int4, 1)" \
	"  FROM event_store_dynamo.projection_runs r" \
	"  JOIN event_store_dynamo.projection p ON p.name = r.projection" \
	" WHERE r.projection = $1"
#define SCAN_SQL \
	"SELECT r.projection, p.owner::oid, coalesce((pg_catalog.to_jsonb(p) ->> 'partitions')::int4, 1)" \
	"  FROM event_store_dynamo.projection_runs r" \
	"  JOIN event_store_dynamo.projection p ON p.name = r.projection"
#define FEED_SQL \
	"SELECT EXISTS (SELECT 1 FROM event_store_dynamo.projection p" \
	"  JOIN event_store_dynamo.change_feed c ON c.source = p.source WHERE p.name = $1)"
#define SEEN_SQL \
	"SELECT EXISTS (SELECT 1 FROM event_store_dynamo.projection p" \
	"  JOIN event_store_dynamo.projection_run pr ON pr.projection = p.name" \
	"  JOIN event_store_dynamo.projection_seen s ON s.run_key = pr.key" \
	" WHERE p.name = $1 AND s.event_id = $2" \
	"   AND coalesce((pg_catalog.to_jsonb(pr) ->> 'generation')::uuid, pr.key) = p.run_key)"

/* What a projection worker needs to know; travels in bgw_extra. */
typedef struct WorkerSpec
{
	Oid			dboid;
	Oid			owner;
	int32		partition;		/* 0 .. partitions - 1 */
	int32		partitions;
	int32		slot;			/* -1: not started by the launcher */
	uint32		generation;
	char		projection[NAMEDATALEN];
} WorkerSpec;

StaticAssertDecl(sizeof(WorkerSpec) <= BGW_EXTRALEN, "WorkerSpec must fit in bgw_extra");

/* One wanted worker (with the library preloaded). */
typedef struct WorkerSlot
{
	bool		wanted;			/* the projection runs: keep a worker here */
	bool		live;			/* the launcher holds a handle not yet stopped */
	uint32		generation;		/* bumped whenever the spec changes */
	WorkerSpec	spec;
	pid_t		pid;
	int32		restarts;		/* worker processes started after the first */
	int32		errors;			/* consecutive failed iterations or exits */
	TimestampTz next_start;		/* no start before this (backoff) */
	TimestampTz last_catch_up;	/* end of the last successful catch-up */
	char		last_error[LAST_ERROR_LEN];
} WorkerSlot;

typedef struct WorkerShared
{
	LWLock	   *lock;
	pid_t		launcher_pid;
	Latch	   *launcher_latch;
	bool		rescan;			/* the launcher should scan every database */
	ConditionVariable progress; /* broadcast at each worker commit */
	int			nslots;
	WorkerSlot	slots[FLEXIBLE_ARRAY_MEMBER];
} WorkerShared;

/* Work to do when the transaction that asked for it commits. */
typedef enum PendingKind
{
	PENDING_START,				/* start (or keep) the spec's workers */
	PENDING_STOP,				/* stop the projection's workers */
	PENDING_STOP_DATABASE		/* stop every worker of the database */
} PendingKind;

typedef struct PendingAction
{
	PendingKind kind;
	int			nest_level;
	WorkerSpec	spec;
	List	   *pids;			/* without the launcher: workers to signal */
} PendingAction;

PGDLLEXPORT void esd_launcher_main(Datum arg);
PGDLLEXPORT void esd_scanner_main(Datum arg);
PGDLLEXPORT void esd_projection_worker_main(Datum arg);

PG_FUNCTION_INFO_V1(esd_start_projection);
PG_FUNCTION_INFO_V1(esd_stop_projection);
PG_FUNCTION_INFO_V1(esd_projection_runs_deleted);
PG_FUNCTION_INFO_V1(esd_projection_workers);
PG_FUNCTION_INFO_V1(esd_projection_progress);
PG_FUNCTION_INFO_V1(esd_wait_for_projection);

static int	max_projection_workers = 64;
static int	feed_interval_ms = 500;
static WorkerShared *shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static ProcessUtility_hook_type prev_ProcessUtility = NULL;
static List *pending_actions = NIL;
static bool callbacks_registered = false;
static bool rescan_on_abort = false;	/* DROP EXTENSION stopped this database's workers */

static Size shared_size(void);
static void progress_notify(void);
static List *progress;

/* ----------------------------------------------------------------
 * Set-up
 * ----------------------------------------------------------------
 */

static void
worker_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(shared_size());
	RequestNamedLWLockTranche(EXTENSION_NAME, 1);
}

static void
worker_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("event_store_dynamo workers", shared_size(), &found);
	if (!found)
	{
		memset(shared, 0, shared_size());
		shared->lock = &(GetNamedLWLockTranche(EXTENSION_NAME))->lock;
		ConditionVariableInit(&shared->progress);
		shared->nslots = max_projection_workers;
		shared->rescan = true;
	}
	LWLockRelease(AddinShmemInitLock);
}

static Size
shared_size(void)
{
	return add_size(offsetof(WorkerShared, slots),
					mul_size(max_projection_workers, sizeof(WorkerSlot)));
}

static void worker_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
								  bool readOnlyTree, ProcessUtilityContext context,
								  ParamListInfo params, QueryEnvironment *queryEnv,
								  DestReceiver *dest, QueryCompletion *qc);

void
esd_worker_init(void)
{
	BackgroundWorker bgw;

	DefineCustomIntVariable("event_store_dynamo.feed_interval",
							"How often a projection worker reads its source's change feed while it waits for the next round.",
							"DynamoDB allows 5 GetRecords a second per stream shard, shared by every reader: "
							"each projection reading a feed makes one per open shard and read.",
							&feed_interval_ms,
							500, 200, 60000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	/* the launcher and its shared memory need shared_preload_libraries */
	if (!process_shared_preload_libraries_in_progress)
		return;

	DefineCustomIntVariable("event_store_dynamo.max_projection_workers",
							"Most projection workers (one per partition of a running projection) the launcher keeps.",
							"Needs the library in shared_preload_libraries; each worker also takes a max_worker_processes slot.",
							&max_projection_workers,
							64, 1, 10000,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);
	MarkGUCPrefixReserved(EXTENSION_NAME);

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = worker_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = worker_shmem_startup;
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = worker_ProcessUtility;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = 5;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, EXTENSION_NAME);
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "esd_launcher_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, LAUNCHER_TYPE);
	snprintf(bgw.bgw_type, BGW_MAXLEN, LAUNCHER_TYPE);
	RegisterBackgroundWorker(&bgw);
}

/* ----------------------------------------------------------------
 * Slots (with the library preloaded)
 * ----------------------------------------------------------------
 */

static bool
slot_matches(WorkerSlot *slot, Oid dboid, const char *projection)
{
	return slot->wanted && slot->spec.dboid == dboid &&
		(projection == NULL || strcmp(slot->spec.projection, projection) == 0);
}

static void
wake_launcher(void)
{
	if (shared && shared->launcher_latch)
		SetLatch(shared->launcher_latch);
}

/*
 * Wants one worker per partition of spec's projection: keeps the slots that
 * already run it (a new owner or partition count restarts them) and takes
 * free ones for the rest.  Returns false when the slots ran out.
 */
static bool
slots_want(const WorkerSpec *spec)
{
	bool		ok = true;

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < shared->nslots; i++)
	{
		WorkerSlot *slot = &shared->slots[i];

		if (slot_matches(slot, spec->dboid, spec->projection) &&
			(slot->spec.partitions != spec->partitions || slot->spec.owner != spec->owner))
			slot->wanted = false;
	}
	for (int part = 0; part < spec->partitions; part++)
	{
		int			found = -1;

		for (int i = 0; i < shared->nslots && found < 0; i++)
			if (slot_matches(&shared->slots[i], spec->dboid, spec->projection) &&
				shared->slots[i].spec.partition == part)
				found = i;
		if (found >= 0)
		{
			/* running already: a failed worker gets its next try now */
			shared->slots[found].next_start = 0;
			continue;
		}
		for (int i = 0; i < shared->nslots && found < 0; i++)
			if (!shared->slots[i].wanted && !shared->slots[i].live)
				found = i;
		if (found < 0)
		{
			ok = false;
			break;
		}
		{
			WorkerSlot *slot = &shared->slots[found];
			uint32		generation = slot->generation + 1;

			memset(slot, 0, sizeof(WorkerSlot));
			slot->wanted = true;
			slot->generation = generation;
			slot->spec = *spec;
			slot->spec.partition = part;
			slot->spec.slot = found;
			slot->spec.generation = generation;
		}
	}
	LWLockRelease(shared->lock);
	wake_launcher();
	return ok;
}

/* No longer wants the workers of a projection (NULL: of the whole database). */
static void
slots_release(Oid dboid, const char *projection)
{
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < shared->nslots; i++)
		if (slot_matches(&shared->slots[i], dboid, projection))
			shared->slots[i].wanted = false;
	LWLockRelease(shared->lock);
	wake_launcher();
}

/* Whether a worker of the database is still running (wanted or not). */
static bool
slots_live_in(Oid dboid)
{
	bool		live = false;

	LWLockAcquire(shared->lock, LW_SHARED);
	for (int i = 0; i < shared->nslots; i++)
		if (shared->slots[i].live && shared->slots[i].spec.dboid == dboid)
			live = true;
	LWLockRelease(shared->lock);
	return live;
}

/* ----------------------------------------------------------------
 * Actions at commit
 * ----------------------------------------------------------------
 */

static void
register_worker(const WorkerSpec *spec, int restart_time, pid_t notify_pid,
				BackgroundWorkerHandle **handle)
{
	BackgroundWorker bgw;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = restart_time;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, EXTENSION_NAME);
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "esd_projection_worker_main");
	if (spec->partitions > 1)
		snprintf(bgw.bgw_name, BGW_MAXLEN, "%s %s %d/%d", WORKER_TYPE,
				 spec->projection, spec->partition + 1, spec->partitions);
	else
		snprintf(bgw.bgw_name, BGW_MAXLEN, "%s %s", WORKER_TYPE, spec->projection);
	snprintf(bgw.bgw_type, BGW_MAXLEN, WORKER_TYPE);
	memcpy(bgw.bgw_extra, spec, sizeof(WorkerSpec));
	bgw.bgw_notify_pid = notify_pid;
	if (!RegisterDynamicBackgroundWorker(&bgw, handle))
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start a worker for projection \"%s\"", spec->projection),
				 errhint("Raise max_worker_processes.")));
}

static void
apply_pending(PendingAction *action)
{
	switch (action->kind)
	{
		case PENDING_START:
			if (shared)
			{
				if (!slots_want(&action->spec))
					ereport(WARNING,
							(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
							 errmsg("could not start every worker of projection \"%s\"",
									action->spec.projection),
							 errhint("Raise event_store_dynamo.max_projection_workers.")));
			}
			else
			{
				for (int part = 0; part < action->spec.partitions; part++)
				{
					WorkerSpec	spec = action->spec;

					spec.partition = part;
					register_worker(&spec, BGW_NEVER_RESTART, 0, NULL);
				}
			}
			break;
		case PENDING_STOP:
			if (shared)
				slots_release(action->spec.dboid, action->spec.projection);
			break;
		case PENDING_STOP_DATABASE:
			if (shared)
				slots_release(action->spec.dboid, NULL);
			break;
	}
	if (!shared)
	{
		ListCell   *lc;

		foreach(lc, action->pids)
			kill(lfirst_int(lc), SIGTERM);
	}
}

static void
pending_xact_callback(XactEvent event, void *arg pg_attribute_unused())
{
	ListCell   *lc;

	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			progress_notify();
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (progress != NIL && shared)
				ConditionVariableBroadcast(&shared->progress);
			progress = NIL;
			foreach(lc, pending_actions)
				apply_pending((PendingAction *) lfirst(lc));
			pending_actions = NIL;
			rescan_on_abort = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			progress = NIL;
			pending_actions = NIL;
			if (rescan_on_abort && shared)
			{
				/* a DROP EXTENSION rolled back: its workers come back */
				shared->rescan = true;
				wake_launcher();
			}
			rescan_on_abort = false;
			break;
		default:
			break;
	}
}

static void
pending_subxact_callback(SubXactEvent event, SubTransactionId mySubid pg_attribute_unused(),
						 SubTransactionId parentSubid pg_attribute_unused(),
						 void *arg pg_attribute_unused())
{
	int			level = GetCurrentTransactionNestLevel();
	List	   *kept = NIL;
	ListCell   *lc;

	if (event != SUBXACT_EVENT_ABORT_SUB && event != SUBXACT_EVENT_COMMIT_SUB)
		return;
	if (event == SUBXACT_EVENT_ABORT_SUB && rescan_on_abort && shared)
	{
		/* a DROP EXTENSION may have been rolled back: the launcher looks again */
		shared->rescan = true;
		wake_launcher();
	}
	foreach(lc, pending_actions)
	{
		PendingAction *action = (PendingAction *) lfirst(lc);

		if (action->nest_level >= level)
		{
			if (event == SUBXACT_EVENT_ABORT_SUB)
				continue;
			action->nest_level = level - 1;
		}
		kept = lappend(kept, action);
	}
	pending_actions = kept;
}

static void
register_callbacks(void)
{
	if (callbacks_registered)
		return;
	RegisterXactCallback(pending_xact_callback, NULL);
	RegisterSubXactCallback(pending_subxact_callback, NULL);
	callbacks_registered = true;
}

static PendingAction *
add_pending(PendingKind kind, const WorkerSpec *spec)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	PendingAction *action = palloc0(sizeof(PendingAction));

	action->kind = kind;
	action->nest_level = GetCurrentTransactionNestLevel();
	action->spec = *spec;
	pending_actions = lappend(pending_actions, action);
	MemoryContextSwitchTo(old);
	register_callbacks();
	return action;
}

/*
 * Without the launcher: the pids of this database's workers for a
 * projection, found by their application name ("projection NAME", or
 * "projection NAME i/N" for one of N partitions).  With partitions > 0,
 * only those started for another partition count.
 */
static List *
find_worker_pids(const char *projection, int partitions)
{
	List	   *pids = NIL;
	int			n = pgstat_fetch_stat_numbackends();
	size_t		len = strlen("projection ") + strlen(projection);

	for (int i = 1; i <= n; i++)
	{
		LocalPgBackendStatus *local = pgstat_fetch_stat_local_beentry(i);
		PgBackendStatus *be = local ? &local->backendStatus : NULL;
		const char *type;

		if (be == NULL || be->st_databaseid != MyDatabaseId || be->st_backendType != B_BG_WORKER)
			continue;
		type = GetBackgroundWorkerTypeByPid(be->st_procpid);
		if (type == NULL || strcmp(type, WORKER_TYPE) != 0)
			continue;
		if (strncmp(be->st_appname, "projection ", 11) == 0 &&
			strncmp(be->st_appname + 11, projection, strlen(projection)) == 0 &&
			(be->st_appname[len] == '\0' || be->st_appname[len] == ' '))
		{
			int			part;
			int			of = 1;
			MemoryContext old;

			if (be->st_appname[len] == ' ' &&
				sscanf(be->st_appname + len + 1, "%d/%d", &part, &of) != 2)
				continue;
			if (partitions > 0 && of == partitions)
				continue;
			old = MemoryContextSwitchTo(TopTransactionContext);
			pids = lappend_int(pids, be->st_procpid);
			MemoryContextSwitchTo(old);
		}
	}
	return pids;
}

/* ----------------------------------------------------------------
 * SQL functions
 * ----------------------------------------------------------------
 */

/*
 * The owner of a projection the current user may change (its owner, a
 * member of the owner, or a superuser); errors otherwise.
 */
static Oid
check_projection(const char *projection)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(projection)};
	bool		isnull;
	Oid			owner;

	SPI_connect();
	if (SPI_execute_with_args(PROJECTION_SQL, 1, argtypes, values, NULL, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not look up projection \"%s\"", projection);
	owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return owner;
}

/* How many partitions (so workers) a projection has; 1 before version 0.4. */
static int32
projection_partitions(const char *projection)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(projection)};
	bool		isnull;
	int32		partitions = 1;

	SPI_connect();
	if (SPI_execute_with_args(PARTITIONS_SQL, 1, argtypes, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up projection \"%s\"", projection);
	if (SPI_processed == 1)
		partitions = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return Max(partitions, 1);
}

/*
 * Runs SQL on projection_runs with the privileges of the table's owner: the
 * caller has been checked, and the table is not writable by everyone.
 */
static uint64
write_runs(const char *sql, int nargs, Oid *argtypes, Datum *values)
{
	Oid			save_userid;
	int			save_sec;
	Oid			relid = get_relname_relid("projection_runs", get_namespace_oid(EXTENSION_NAME, false));
	Oid			table_owner;
	HeapTuple	tuple;
	uint64		processed;

	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	table_owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(table_owner, save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	SPI_connect();
	if (SPI_execute_with_args(sql, nargs, argtypes, values, NULL, false, 0) < 0)
		elog(ERROR, "could not change event_store_dynamo.projection_runs");
	processed = SPI_processed;
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec);
	return processed;
}

/*
 * start_projection(name text, poll interval): marks the projection running
 * and starts its workers when the transaction commits.  Calling it again
 * changes the poll interval and restarts a worker that stopped.
 */
Datum
esd_start_projection(PG_FUNCTION_ARGS)
{
	char	   *projection = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Interval   *poll = PG_GETARG_INTERVAL_P(1);
	WorkerSpec	spec;
	HeapTuple	role;
	int64		poll_us;
	Oid			argtypes[2] = {TEXTOID, INTERVALOID};
	Datum		values[2];

	memset(&spec, 0, sizeof(spec));
	spec.owner = check_projection(projection);
	spec.partitions = projection_partitions(projection);

	poll_us = poll->time + (int64) poll->day * USECS_PER_DAY + (int64) poll->month * DAYS_PER_MONTH * USECS_PER_DAY;
	if (poll_us < 10 * 1000 || poll_us > (int64) 24 * 3600 * USECS_PER_SEC)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("poll interval must be between 10 milliseconds and 1 day")));

	/* the worker connects as the owner, which needs the right to log in */
	role = SearchSysCache1(AUTHOID, ObjectIdGetDatum(spec.owner));
	if (!HeapTupleIsValid(role))
		elog(ERROR, "cache lookup failed for role %u", spec.owner);
	if (!((Form_pg_authid) GETSTRUCT(role))->rolcanlogin)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("owner \"%s\" of projection \"%s\" cannot run its worker",
						NameStr(((Form_pg_authid) GETSTRUCT(role))->rolname), projection),
				 errdetail("A projection's worker connects as the projection's owner, and that role may not log in."),
				 errhint("Give the owner LOGIN, or the projection to a role that has it.")));
	ReleaseSysCache(role);

	values[0] = CStringGetTextDatum(projection);
	values[1] = IntervalPGetDatum(poll);
	write_runs("INSERT INTO event_store_dynamo.projection_runs AS r (projection, poll) VALUES ($1, $2)"
			   " ON CONFLICT (projection) DO UPDATE SET poll = excluded.poll",
			   2, argtypes, values);

	spec.dboid = MyDatabaseId;
	spec.slot = -1;
	strlcpy(spec.projection, projection, NAMEDATALEN);
	add_pending(PENDING_START, &spec);
	if (!shared)
	{
		/*
		 * Without the launcher a second start must not add workers; but
		 * workers of another partition count (repartition_projection) are
		 * replaced.
		 */
		PendingAction *action = (PendingAction *) llast(pending_actions);

		action->pids = find_worker_pids(projection, spec.partitions);
		if (action->pids == NIL && find_worker_pids(projection, 0) != NIL)
			action->spec.partitions = 0;
		else if (action->pids != NIL)
			action->pids = list_concat_unique_int(action->pids, find_worker_pids(projection, 0));
	}
	PG_RETURN_VOID();
}

/*
 * stop_projection(name text) returns whether it was running: its workers
 * stop when the transaction commits (one in the middle of a catch-up rolls
 * its batch back).
 */
Datum
esd_stop_projection(PG_FUNCTION_ARGS)
{
	char	   *projection = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	uint64		deleted;

	(void) check_projection(projection);
	values[0] = CStringGetTextDatum(projection);
	/* the row's delete trigger asks for the workers to stop */
	deleted = write_runs("DELETE FROM event_store_dynamo.projection_runs WHERE projection = $1",
						 1, argtypes, values);
	PG_RETURN_BOOL(deleted > 0);
}

/*
 * AFTER DELETE trigger of projection_runs: stop_projection, drop_projection
 * (through the foreign key's cascade) and plain deletes all stop the
 * projection's workers at commit.
 */
Datum
esd_projection_runs_deleted(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	WorkerSpec	spec;
	bool		isnull;
	Datum		name;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BY_DELETE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		elog(ERROR, "esd_projection_runs_deleted: not called as a row delete trigger");
	name = heap_getattr(trigdata->tg_trigtuple, 1, trigdata->tg_relation->rd_att, &isnull);
	if (!isnull)
	{
		PendingAction *action;

		memset(&spec, 0, sizeof(spec));
		spec.dboid = MyDatabaseId;
		spec.slot = -1;
		strlcpy(spec.projection, TextDatumGetCString(name), NAMEDATALEN);
		/* a start earlier in this transaction is void: nothing to start at commit */
		{
			List	   *kept = NIL;
			ListCell   *lc;

			foreach(lc, pending_actions)
			{
				PendingAction *earlier = (PendingAction *) lfirst(lc);

				if (!(earlier->kind == PENDING_START &&
					  strcmp(earlier->spec.projection, spec.projection) == 0))
					kept = lappend(kept, earlier);
			}
			pending_actions = kept;
		}
		action = add_pending(PENDING_STOP, &spec);
		if (!shared)
		{
			List	   *pids = find_worker_pids(spec.projection, 0);

			action->pids = pids;
		}
	}
	return PointerGetDatum(trigdata->tg_trigtuple);
}

/*
 * projection_workers(): the launcher's slots, one row per wanted or still
 * running worker, of every database.  Empty without the launcher.
 */
Datum
esd_projection_workers(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	WorkerSlot *copy;
	int			n = 0;

	InitMaterializedSRF(fcinfo, 0);
	if (!shared)
		PG_RETURN_VOID();

	copy = palloc(sizeof(WorkerSlot) * shared->nslots);
	LWLockAcquire(shared->lock, LW_SHARED);
	for (int i = 0; i < shared->nslots; i++)
		if (shared->slots[i].wanted || shared->slots[i].live)
			copy[n++] = shared->slots[i];
	LWLockRelease(shared->lock);

	for (int i = 0; i < n; i++)
	{
		WorkerSlot *slot = &copy[i];
		Datum		values[10];
		bool		nulls[10] = {0};
		const char *state;
		char	   *dbname = get_database_name(slot->spec.dboid);

		if (!slot->wanted)
			state = "stopping";
		else if (slot->pid == 0)
			state = slot->errors > 0 ? "backoff" : "starting";
		else
			state = slot->errors > 0 ? "retrying" : "running";

		if (dbname)
		{
			Name		name = palloc0(NAMEDATALEN);

			namestrcpy(name, dbname);
			values[0] = NameGetDatum(name);
		}
		nulls[0] = (dbname == NULL);
		values[1] = CStringGetTextDatum(slot->spec.projection);
		values[2] = Int32GetDatum(slot->spec.partition);
		values[3] = Int32GetDatum(slot->spec.partitions);
		values[4] = Int32GetDatum(slot->pid);
		nulls[4] = (slot->pid == 0);
		values[5] = CStringGetTextDatum(state);
		values[6] = Int32GetDatum(slot->restarts);
		values[7] = Int32GetDatum(slot->errors);
		values[8] = CStringGetTextDatum(slot->last_error);
		nulls[8] = (slot->last_error[0] == '\0');
		values[9] = TimestampTzGetDatum(slot->last_catch_up);
		nulls[9] = (slot->last_catch_up == 0);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_VOID();
}

/* ----------------------------------------------------------------
 * DROP DATABASE and DROP EXTENSION (with the library preloaded)
 * ----------------------------------------------------------------
 */

static bool
drops_this_extension(DropStmt *stmt)
{
	ListCell   *lc;

	if (stmt->removeType != OBJECT_EXTENSION)
		return false;
	foreach(lc, stmt->objects)
	{
		Node	   *object = lfirst(lc);

		if (IsA(object, String) && strcmp(strVal(object), EXTENSION_NAME) == 0)
			return true;
	}
	return false;
}

/* Waits (up to 10 s) until no worker of the database runs. */
static void
wait_workers_gone(Oid dboid)
{
	for (int i = 0; i < 100 && slots_live_in(dboid); i++)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 100L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Before DROP DATABASE: the database's workers are told to go, and the
 * statement waits (up to 10 s) until they have, so that the drop does not
 * find them connected.  Before DROP EXTENSION likewise: a worker's
 * transaction reads several of the extension's tables, which the drop locks
 * one after the other, so the two would deadlock.  If the drop fails or its
 * transaction rolls back, the launcher scans again and the running
 * projections get their workers back.
 */
static void
worker_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
					  bool readOnlyTree, ProcessUtilityContext context,
					  ParamListInfo params, QueryEnvironment *queryEnv,
					  DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	volatile Oid dropped_db = InvalidOid;

	if (shared && IsA(parsetree, DropdbStmt))
	{
		dropped_db = get_database_oid(((DropdbStmt *) parsetree)->dbname, true);
		if (OidIsValid(dropped_db))
		{
			slots_release(dropped_db, NULL);
			wait_workers_gone(dropped_db);
		}
	}
	else if (shared && IsA(parsetree, DropStmt) && drops_this_extension((DropStmt *) parsetree))
	{
		WorkerSpec	spec;

		memset(&spec, 0, sizeof(spec));
		spec.dboid = MyDatabaseId;
		add_pending(PENDING_STOP_DATABASE, &spec);
		rescan_on_abort = true;
		register_callbacks();
		dropped_db = MyDatabaseId;
		slots_release(MyDatabaseId, NULL);
		wait_workers_gone(MyDatabaseId);
	}

	PG_TRY();
	{
		if (prev_ProcessUtility)
			prev_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	}
	PG_CATCH();
	{
		if (OidIsValid(dropped_db))
		{
			shared->rescan = true;
			wake_launcher();
		}
		PG_RE_THROW();
	}
	PG_END_TRY();
}

/* ----------------------------------------------------------------
 * The launcher
 * ----------------------------------------------------------------
 */

/* The databases that accept connections (read with no database connected). */
static List *
database_list(void)
{
	List	   *oids = NIL;
	MemoryContext caller = CurrentMemoryContext;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tuple;

	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (HeapTupleIsValid(tuple = heap_getnext(scan, ForwardScanDirection)))
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tuple);
		MemoryContext old;

		if (!db->datallowconn)
			continue;
		old = MemoryContextSwitchTo(caller);
		oids = lappend_oid(oids, db->oid);
		MemoryContextSwitchTo(old);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	return oids;
}

/* Runs a scanner in each database, one after the other. */
static void
launcher_scan(List *databases)
{
	ListCell   *lc;

	foreach(lc, databases)
	{
		BackgroundWorker bgw;
		BackgroundWorkerHandle *handle;
		Oid			dboid = lfirst_oid(lc);

		memset(&bgw, 0, sizeof(bgw));
		bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
		bgw.bgw_restart_time = BGW_NEVER_RESTART;
		snprintf(bgw.bgw_library_name, BGW_MAXLEN, EXTENSION_NAME);
		snprintf(bgw.bgw_function_name, BGW_MAXLEN, "esd_scanner_main");
		snprintf(bgw.bgw_name, BGW_MAXLEN, "%s of database %u", SCANNER_TYPE, dboid);
		snprintf(bgw.bgw_type, BGW_MAXLEN, SCANNER_TYPE);
		bgw.bgw_main_arg = ObjectIdGetDatum(dboid);
		bgw.bgw_notify_pid = MyProcPid;
		if (!RegisterDynamicBackgroundWorker(&bgw, &handle))
		{
			ereport(WARNING,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("could not start a projection scanner for database %u", dboid),
					 errhint("Raise max_worker_processes.")));
			shared->rescan = true;
			return;
		}
		if (WaitForBackgroundWorkerShutdown(handle) == BGWH_POSTMASTER_DIED)
			proc_exit(1);
		pfree(handle);
	}
}

/* Whether a wanted slot names a database not in the list (new, or gone). */
static bool
launcher_unknown_database(List *databases)
{
	bool		unknown = false;

	LWLockAcquire(shared->lock, LW_SHARED);
	for (int i = 0; i < shared->nslots && !unknown; i++)
		if (shared->slots[i].wanted && !shared->slots[i].live &&
			!list_member_oid(databases, shared->slots[i].spec.dboid))
			unknown = true;
	LWLockRelease(shared->lock);
	return unknown;
}

static long
backoff_ms(int errors)
{
	long		ms = 1000;

	for (int i = 1; i < errors && ms < MAX_BACKOFF_MS; i++)
		ms *= 2;
	return Min(ms, MAX_BACKOFF_MS);
}

/*
 * One pass over the slots: notices workers that ended, stops workers whose
 * slot is no longer wanted, starts the wanted ones that are due.  Returns how
 * long the launcher may sleep.
 */
static long
launcher_reconcile(BackgroundWorkerHandle **handles, List *databases)
{
	TimestampTz now = GetCurrentTimestamp();
	long		sleep_ms = LAUNCHER_CHECK_MS;

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < shared->nslots; i++)
	{
		WorkerSlot *slot = &shared->slots[i];

		if (handles[i])
		{
			pid_t		pid;
			BgwHandleStatus status = GetBackgroundWorkerPid(handles[i], &pid);

			if (status == BGWH_STOPPED || status == BGWH_POSTMASTER_DIED)
			{
				pfree(handles[i]);
				handles[i] = NULL;
				slot->live = false;
				slot->pid = 0;
				if (slot->wanted)
				{
					slot->errors++;
					slot->restarts++;
					slot->next_start = TimestampTzPlusMilliseconds(now, backoff_ms(slot->errors));
				}
			}
			else if (!slot->wanted)
				TerminateBackgroundWorker(handles[i]);
			continue;
		}
		if (!slot->wanted)
			continue;
		if (!list_member_oid(databases, slot->spec.dboid))
		{
			slot->wanted = false;	/* its database is gone */
			continue;
		}
		if (slot->next_start > now)
		{
			long		secs_ms = (long) ((slot->next_start - now) / 1000);

			sleep_ms = Min(sleep_ms, Max(secs_ms, 10));
			continue;
		}
		register_worker(&slot->spec, BGW_NEVER_RESTART, MyProcPid, &handles[i]);
		if (handles[i])
			slot->live = true;
		else
		{
			slot->errors++;
			slot->next_start = TimestampTzPlusMilliseconds(now, backoff_ms(slot->errors));
		}
	}
	LWLockRelease(shared->lock);
	return sleep_ms;
}

void
esd_launcher_main(Datum arg pg_attribute_unused())
{
	BackgroundWorkerHandle **handles;
	List	   *databases = NIL;
	TimestampTz listed = 0;

	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname(LAUNCHER_TYPE);

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	shared->launcher_pid = MyProcPid;
	shared->launcher_latch = MyLatch;
	/*
	 * A previous launcher's workers are not ours to watch: a new generation
	 * makes them leave (they check it) while this launcher starts new ones.
	 */
	for (int i = 0; i < shared->nslots; i++)
	{
		WorkerSlot *slot = &shared->slots[i];

		slot->live = false;
		slot->pid = 0;
		slot->generation++;
		slot->spec.generation = slot->generation;
	}
	LWLockRelease(shared->lock);

	handles = MemoryContextAllocZero(TopMemoryContext, sizeof(BackgroundWorkerHandle *) * shared->nslots);

	while (!ShutdownRequestPending)
	{
		long		sleep_ms;
		bool		rescan;

		ResetLatch(MyLatch);
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		LWLockAcquire(shared->lock, LW_EXCLUSIVE);
		rescan = shared->rescan;
		shared->rescan = false;
		LWLockRelease(shared->lock);

		if (rescan || listed == 0 || launcher_unknown_database(databases) ||
			TimestampDifferenceExceeds(listed, GetCurrentTimestamp(), LAUNCHER_CHECK_MS))
		{
			list_free(databases);
			databases = database_list();
			listed = GetCurrentTimestamp();
		}
		if (rescan)
			launcher_scan(databases);

		sleep_ms = launcher_reconcile(handles, databases);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 sleep_ms, PG_WAIT_EXTENSION);
		/* barriers (DROP DATABASE waits for them); SIGTERM only sets the flag */
		CHECK_FOR_INTERRUPTS();
	}

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	shared->launcher_latch = NULL;
	shared->launcher_pid = 0;
	LWLockRelease(shared->lock);
	proc_exit(0);
}

/*
 * A scanner fills the slots from one database's projection_runs (after a
 * server start or a crash) and exits.  It reads a catalog and starts
 * nothing itself, so it connects as the bootstrap superuser.
 */
void
esd_scanner_main(Datum arg)
{
	Oid			dboid = DatumGetObjectId(arg);

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	pgstat_report_appname(SCANNER_TYPE);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (OidIsValid(get_extension_oid(EXTENSION_NAME, true)) &&
		OidIsValid(get_relname_relid("projection_runs", get_namespace_oid(EXTENSION_NAME, false))))
	{
		SPI_connect();
		if (SPI_execute(SCAN_SQL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read event_store_dynamo.projection_runs");
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			WorkerSpec	spec;
			bool		isnull;
			char	   *name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);

			memset(&spec, 0, sizeof(spec));
			spec.dboid = dboid;
			spec.slot = -1;
			strlcpy(spec.projection, name, NAMEDATALEN);
			spec.owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
			spec.partitions = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3, &isnull));
			if (isnull || spec.partitions < 1)
				spec.partitions = 1;
			if (!slots_want(&spec))
				ereport(WARNING,
						(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
						 errmsg("could not start every worker of projection \"%s\"", name),
						 errhint("Raise event_store_dynamo.max_projection_workers.")));
		}
		SPI_finish();
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	proc_exit(0);
}

/* ----------------------------------------------------------------
 * The projection worker
 * ----------------------------------------------------------------
 */

static WorkerSpec my_spec;
static long poll_ms = 1000;		/* from projection_runs, read at each check */
static int	round_errors = 0;	/* consecutive failed rounds */
static bool halted = false;		/* the last catch-up stopped at a failing event */
static int	halted_rounds = 0;	/* rounds in a row that did */
static bool has_feed = false;	/* this worker reads its source's change feed */
static TimestampTz feed_read_at = 0;	/* when it last did */

/* The worker's slot, if the launcher started it and the slot is still its own. */
static WorkerSlot *
my_slot(void)
{
	WorkerSlot *slot;

	if (!shared || my_spec.slot < 0 || my_spec.slot >= shared->nslots)
		return NULL;
	slot = &shared->slots[my_spec.slot];
	return slot->generation == my_spec.generation ? slot : NULL;
}

typedef enum WorkerCheck
{
	CHECK_RUN,					/* keep going */
	CHECK_DONE,					/* the projection stopped or went away */
	CHECK_RESTART				/* the owner or the partition count changed */
} WorkerCheck;

/*
 * One short transaction: whether the projection still runs with this
 * worker's owner and partition count, its poll interval, and whether the
 * last catch-up of this worker's partition stopped at a failing event
 * (on_error 'stop').
 */
static WorkerCheck
worker_check(void)
{
	WorkerCheck result = CHECK_DONE;
	Oid			argtypes[2] = {TEXTOID, INT4OID};
	Datum		values[2];

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "event_store_dynamo: check projection");

	if (OidIsValid(get_extension_oid(EXTENSION_NAME, true)) &&
		OidIsValid(get_relname_relid("projection_runs", get_namespace_oid(EXTENSION_NAME, false))))
	{
		SPI_connect();
		values[0] = CStringGetTextDatum(my_spec.projection);
		values[1] = Int32GetDatum(my_spec.partition);
		if (SPI_execute_with_args(RUNNING_SQL, 2, argtypes, values, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read projection \"%s\"", my_spec.projection);
		if (SPI_processed == 1)
		{
			HeapTuple	tup = SPI_tuptable->vals[0];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			Oid			owner;
			int32		partitions;

			poll_ms = (long) DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
			owner = DatumGetObjectId(SPI_getbinval(tup, desc, 2, &isnull));
			halted = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull)) && !isnull;
			partitions = DatumGetInt32(SPI_getbinval(tup, desc, 4, &isnull));
			if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(owner)))
				result = CHECK_DONE;	/* the owner role was dropped */
			else
				result = (owner == my_spec.owner && partitions == my_spec.partitions) ?
					CHECK_RUN : CHECK_RESTART;
		}

		/* the feed is read by the projection's first worker (before 0.4: none) */
		has_feed = false;
		if (result == CHECK_RUN && my_spec.partition == 0 &&
			OidIsValid(get_relname_relid("change_feed", get_namespace_oid(EXTENSION_NAME, false))))
		{
			bool		isnull;

			if (SPI_execute_with_args(FEED_SQL, 1, argtypes, values, NULL, true, 1) != SPI_OK_SELECT ||
				SPI_processed != 1)
				elog(ERROR, "could not read the change feed of projection \"%s\"", my_spec.projection);
			has_feed = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) &&
				!isnull;
		}
		SPI_finish();
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	return result;
}

/*
 * CALL catch_up for this worker's projection (and partition).  The
 * procedure commits batch by batch, so it runs as a client's top-level CALL
 * does: parsed and planned in the loop's memory (which outlives those
 * commits), through an unnamed portal, outside any transaction block.
 */
static void
worker_catch_up(MemoryContext loop_context)
{
	StringInfoData sql;
	List	   *querytrees;
	List	   *plantrees;
	RawStmt    *raw;
	Portal		portal;
	DestReceiver *receiver;
	QueryCompletion qc;

	MemoryContextSwitchTo(loop_context);
	initStringInfo(&sql);
	appendStringInfo(&sql, "CALL event_store_dynamo.catch_up(%s",
					 quote_literal_cstr(my_spec.projection));
	/* (a projection of one partition is called as before version 0.4) */
	if (my_spec.partitions > 1)
		appendStringInfo(&sql, ", partition => %d", my_spec.partition);
	appendStringInfoChar(&sql, ')');

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	pgstat_report_activity(STATE_RUNNING, sql.data);
	MemoryContextSwitchTo(loop_context);

	raw = linitial_node(RawStmt, pg_parse_query(sql.data));
	PushActiveSnapshot(GetTransactionSnapshot());
	querytrees = pg_analyze_and_rewrite_fixedparams(raw, sql.data, NULL, 0, NULL);
	plantrees = pg_plan_queries(querytrees, sql.data, CURSOR_OPT_PARALLEL_OK, NULL);
	PopActiveSnapshot();

	portal = CreatePortal("", true, true);
	portal->visible = false;
	PortalDefineQuery(portal, NULL, sql.data, CMDTAG_CALL, plantrees, NULL);
	PortalStart(portal, NULL, 0, InvalidSnapshot);
	receiver = CreateDestReceiver(DestNone);
	(void) PortalRun(portal, FETCH_ALL, true, true, receiver, receiver, &qc);
	receiver->rDestroy(receiver);
	PortalDrop(portal, false);

	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	MemoryContextSwitchTo(loop_context);
}

/*
 * Changes this worker's slot under the lock, if the launcher started it and
 * the slot is still its own; does nothing without the launcher.
 */
static void
change_my_slot(void (*change) (WorkerSlot *slot, const void *arg), const void *arg)
{
	WorkerSlot *slot;

	if (!shared)
		return;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	slot = my_slot();
	if (slot)
		change(slot, arg);
	LWLockRelease(shared->lock);
}

static void
slot_started(WorkerSlot *slot, const void *arg pg_attribute_unused())
{
	slot->pid = MyProcPid;
}

/* An iteration failed with the error edata (may be NULL). */
static void
slot_failed(WorkerSlot *slot, const void *arg)
{
	const ErrorData *edata = (const ErrorData *) arg;

	slot->errors++;
	strlcpy(slot->last_error, edata && edata->message ? edata->message : "", LAST_ERROR_LEN);
}

static void
slot_caught_up(WorkerSlot *slot, const void *arg pg_attribute_unused())
{
	slot->errors = 0;
	slot->last_catch_up = GetCurrentTimestamp();
}

/* Whether the change feed is due for a read (feed_interval after the last). */
static bool
feed_due(void)
{
	return has_feed &&
		GetCurrentTimestamp() >= TimestampTzPlusMilliseconds(feed_read_at, feed_interval_ms);
}

/*
 * One read of the change feed (feed.c), whose events are applied in its
 * transaction; an error there is a WARNING, and the round goes on.
 */
static void
worker_read_feed(MemoryContext loop_context)
{
	feed_read_at = GetCurrentTimestamp();
	esd_feed_poll(my_spec.projection, loop_context);
	MemoryContextSwitchTo(loop_context);
}

/*
 * Waits ms milliseconds for the next round, or less if the latch is set (a
 * signal).  With read_feed, reads the change feed each time it is due
 * meanwhile, so that what the stream shows is applied at once.
 */
static void
worker_sleep(long ms, MemoryContext loop_context, bool read_feed)
{
	TimestampTz end = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);

	for (;;)
	{
		TimestampTz now = GetCurrentTimestamp();
		TimestampTz until = end;
		long		secs;
		int			usecs;
		int			rc;

		if (read_feed && has_feed)
			until = Min(end, TimestampTzPlusMilliseconds(feed_read_at, feed_interval_ms));
		if (until > now)
		{
			TimestampDifference(now, until, &secs, &usecs);
			rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						   secs * 1000L + (usecs + 999) / 1000, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
			if (rc & WL_LATCH_SET)
				return;
		}
		if (read_feed && feed_due())
		{
			worker_read_feed(loop_context);
			MemoryContextReset(loop_context);
		}
		if (GetCurrentTimestamp() >= end)
			return;
	}
}

/*
 * Leaves the slot: the projection stopped, so the launcher must not start
 * it again; or its owner or partition count changed, and the launcher's
 * scan of the databases fills the slots anew.
 */
static void
worker_release_slot(bool changed)
{
	WorkerSlot *slot;

	if (!shared)
		return;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	slot = my_slot();
	if (slot)
		slot->wanted = false;
	if (changed)
		shared->rescan = true;
	LWLockRelease(shared->lock);
	wake_launcher();
}

/* Whether the launcher started another worker in this one's place. */
static bool
worker_superseded(void)
{
	bool		superseded;

	if (!shared || my_spec.slot < 0)
		return false;
	LWLockAcquire(shared->lock, LW_SHARED);
	superseded = (my_slot() == NULL);
	LWLockRelease(shared->lock);
	return superseded;
}

void
esd_projection_worker_main(Datum arg pg_attribute_unused())
{
	sigjmp_buf	local_sigjmp_buf;
	MemoryContext loop_context;
	volatile bool need_check = true;
	volatile bool first_round = true;
	char		appname[NAMEDATALEN];

	memcpy(&my_spec, MyBgworkerEntry->bgw_extra, sizeof(WorkerSpec));

	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();

	/* as the projection's owner: its privileges, its user mapping, never more */
	BackgroundWorkerInitializeConnectionByOid(my_spec.dboid, my_spec.owner, 0);

	if (my_spec.partitions > 1)
		snprintf(appname, sizeof(appname), "projection %s %d/%d", my_spec.projection,
				 my_spec.partition + 1, my_spec.partitions);
	else
		snprintf(appname, sizeof(appname), "projection %s", my_spec.projection);
	pgstat_report_appname(appname);

	change_my_slot(slot_started, NULL);

	loop_context = AllocSetContextCreate(TopMemoryContext, "projection worker loop",
										 ALLOCSET_DEFAULT_SIZES);

	/*
	 * An error in an iteration lands here: reported, rolled back, and the
	 * next iteration waits a backoff.  Termination (SIGTERM) exits instead.
	 */
	if (sigsetjmp(local_sigjmp_buf, 1) != 0)
	{
		ErrorData  *edata;

		error_context_stack = NULL;
		HOLD_INTERRUPTS();
		MemoryContextSwitchTo(loop_context);
		edata = CopyErrorData();
		EmitErrorReport();
		AbortOutOfAnyTransaction();
		FlushErrorState();
		pgstat_report_activity(STATE_IDLE, NULL);
		change_my_slot(slot_failed, edata);
		MemoryContextReset(loop_context);
		RESUME_INTERRUPTS();

		round_errors++;
		{
			long		wait = Max(poll_ms, backoff_ms(round_errors));

			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 wait, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
		need_check = true;
		first_round = true;		/* the backoff was the wait */
	}
	PG_exception_stack = &local_sigjmp_buf;

	for (;;)
	{
		WorkerCheck check;

		CHECK_FOR_INTERRUPTS();
		MemoryContextSwitchTo(loop_context);
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		/*
		 * The check runs once per round, after the catch-up, and before the
		 * first one or after an error.
		 */
		if (need_check)
		{
			check = worker_check();
			if (check != CHECK_RUN || worker_superseded())
			{
				worker_release_slot(check == CHECK_RESTART);
				ereport(LOG,
						(errmsg("projection worker for \"%s\" stops: %s", my_spec.projection,
								check == CHECK_DONE ? "the projection no longer runs" :
								check == CHECK_RESTART ? "the projection's owner or partitions changed" :
								"another worker took its place")));
				proc_exit(0);
			}
			if (!first_round)
			{
				long		wait = poll_ms;

				/*
				 * Stopped at a failing event (on_error 'stop'): each round
				 * tries that event again, so the rounds back off.
				 */
				halted_rounds = halted ? halted_rounds + 1 : 0;
				if (halted_rounds > 0)
					wait = Max(poll_ms, backoff_ms(halted_rounds));
				MemoryContextReset(loop_context);

				/*
				 * (halted, the feed would read the same records again each
				 * time: once a round is enough)
				 */
				worker_sleep(wait, loop_context, !halted);
			}
		}
		first_round = false;
		need_check = false;

		/*
		 * The change feed first, when the source has one (feed.c): read by
		 * the projection's first worker only, unless the wait just did.
		 */
		if (feed_due())
			worker_read_feed(loop_context);
		worker_catch_up(loop_context);
		round_errors = 0;
		change_my_slot(slot_caught_up, NULL);
		need_check = true;
	}
}

/* ----------------------------------------------------------------
 * Progress: NOTIFY, and waking the backends in wait_for_projection
 * ----------------------------------------------------------------
 */

/* A projection whose run moved in this transaction, as its last update left it. */
typedef struct Progress
{
	char	   *projection;
	char	   *position;		/* created of the last event of the main pass */
	char	   *position_id;
	char	   *partition;		/* the run's partition (from version 0.4) */
	int64		events_applied;
} Progress;

static List *progress = NIL;	/* in TopTransactionContext, until the transaction ends */

static char *
column_text(HeapTuple tuple, TupleDesc desc, const char *column)
{
	int			attnum = SPI_fnumber(desc, column);

	return attnum > 0 ? SPI_getvalue(tuple, desc, attnum) : NULL;
}

/*
 * AFTER UPDATE trigger of projection_run, for the updates that deal with
 * events (applied, filtered, skipped, dead-lettered, or a new position):
 * remembers the run's latest state, for one NOTIFY per projection just
 * before the commit, and a wake-up of the waiters after it.
 */
Datum
esd_projection_progress(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	tuple;
	char	   *projection;
	char	   *applied;
	Progress   *entry = NULL;
	ListCell   *lc;
	MemoryContext old;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_AFTER(trigdata->tg_event))
		elog(ERROR, "esd_projection_progress: not called as an AFTER row trigger");
	desc = trigdata->tg_relation->rd_att;
	tuple = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? trigdata->tg_newtuple : trigdata->tg_trigtuple;

	old = MemoryContextSwitchTo(TopTransactionContext);
	projection = column_text(tuple, desc, "projection");
	if (projection == NULL)
	{
		MemoryContextSwitchTo(old);
		return PointerGetDatum(NULL);
	}
	foreach(lc, progress)
	{
		Progress   *p = (Progress *) lfirst(lc);

		if (strcmp(p->projection, projection) == 0)
			entry = p;
	}
	if (entry == NULL)
	{
		entry = palloc0(sizeof(Progress));
		entry->projection = projection;
		progress = lappend(progress, entry);
	}
	entry->position = column_text(tuple, desc, "position_created");
	entry->position_id = column_text(tuple, desc, "position_id");
	entry->partition = column_text(tuple, desc, "part");
	applied = column_text(tuple, desc, "events_applied");
	entry->events_applied = applied ? pg_strtoint64(applied) : 0;
	MemoryContextSwitchTo(old);
	register_callbacks();
	return PointerGetDatum(NULL);
}

/* Before the commit: NOTIFY event_store_dynamo_projection, one per projection that moved. */
static void
progress_notify(void)
{
	ListCell   *lc;

	foreach(lc, progress)
	{
		Progress   *p = (Progress *) lfirst(lc);
		StringInfoData payload;

		initStringInfo(&payload);
		appendStringInfoString(&payload, "{\"projection\": ");
		escape_json(&payload, p->projection);
		appendStringInfoString(&payload, ", \"position\": ");
		if (p->position)
			escape_json(&payload, p->position);
		else
			appendStringInfoString(&payload, "null");
		appendStringInfoString(&payload, ", \"position_id\": ");
		if (p->position_id)
			escape_json(&payload, p->position_id);
		else
			appendStringInfoString(&payload, "null");
		if (p->partition)
			appendStringInfo(&payload, ", \"partition\": %s", p->partition);
		appendStringInfo(&payload, ", \"events_applied\": " INT64_FORMAT "}", p->events_applied);
		Async_Notify(NOTIFY_CHANNEL, payload.data);
	}
}

/* Whether the projection has dealt with the event (as wait_for_projection means it). */
static bool
event_seen(text *projection, text *event_id)
{
	Oid			argtypes[2] = {TEXTOID, TEXTOID};
	Datum		values[2] = {PointerGetDatum(projection), PointerGetDatum(event_id)};
	bool		isnull;
	bool		seen;

	SPI_connect();
	if (SPI_execute_with_args(SEEN_SQL, 2, argtypes, values, NULL, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not read the events projection \"%s\" has seen", text_to_cstring(projection));
	seen = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return seen && !isnull;
}

/*
 * wait_for_projection(name text, event_id text, timeout interval): true
 * once the projection has dealt with the event, false when the timeout
 * passes first.  Between looks it sleeps until a transaction that moved a
 * projection commits (a condition variable in shared memory, with the
 * library preloaded; at most a second at a time), or for 50 ms without it.
 */
Datum
esd_wait_for_projection(PG_FUNCTION_ARGS)
{
	text	   *projection = PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0);
	text	   *event_id;
	TimestampTz deadline = GetCurrentTimestamp();
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1] = {PointerGetDatum(projection)};
	char		nulls[1] = {projection ? ' ' : 'n'};

	/* the projection exists and the caller may see it (errors as create_projection's) */
	SPI_connect();
	if (SPI_execute_with_args(PROJECTION_SQL, 1, argtypes, values, nulls, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up a projection");
	SPI_finish();

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("event id must not be null")));
	event_id = PG_GETARG_TEXT_PP(1);
	if (!PG_ARGISNULL(2))
	{
		Interval   *timeout = PG_GETARG_INTERVAL_P(2);
		int64		us = timeout->time + (int64) timeout->day * USECS_PER_DAY +
			(int64) timeout->month * DAYS_PER_MONTH * USECS_PER_DAY;

		if (us > 0)
			deadline += us;
	}

	for (;;)
	{
		TimestampTz now;
		long		secs;
		int			usecs;
		long		slice;

		if (shared)
			ConditionVariablePrepareToSleep(&shared->progress);
		if (event_seen(projection, event_id))
			break;
		now = GetCurrentTimestamp();
		if (now >= deadline)
		{
			if (shared)
				ConditionVariableCancelSleep();
			PG_RETURN_BOOL(false);
		}
		TimestampDifference(now, deadline, &secs, &usecs);
		slice = Min(secs * 1000L + usecs / 1000 + 1, shared ? 1000L : 50L);
		if (shared)
			(void) ConditionVariableTimedSleep(&shared->progress, slice, PG_WAIT_EXTENSION);
		else
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 slice, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
		CHECK_FOR_INTERRUPTS();
	}
	if (shared)
		ConditionVariableCancelSleep();
	PG_RETURN_BOOL(true);
}
