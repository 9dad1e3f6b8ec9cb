/*-------------------------------------------------------------------------
 *
 * feed.c
 *	  The change feed: a foreign table's DynamoDB Stream, turned on by
 *	  enable_change_feed and read by the projection workers, so that they
 *	  learn of new events within a round instead of after settle.
 *
 * The stream is KEYS_ONLY: a record carries the item's key (id, created)
 * and nothing else.  The events themselves are then read through the
 * foreign table by id, as the safety net reads late events, so one path
 * decodes items (S3 bodies, the codec, bad items) and every read is made
 * with the projection owner's user mapping.  NEW_IMAGE would save those
 * reads but would copy every event (up to 400 KB) into the stream and
 * need a second decoder for stream images.
 *
 * The feed only ever adds: it hands the new items' events to the same
 * _deal_and_release as the main pass, so the projection's seen table keeps
 * each event applied once, whoever finds it first, and its stream order
 * (an event whose predecessor has not been dealt with is held).  Nothing
 * depends on the feed: the main pass, the recheck window and the full
 * recheck walk the index as before, so an expired iterator, a trimmed
 * shard, a stream that was turned off or a worker that was down for days
 * leave the events to the index walk (counted as fallbacks), never lost.
 *
 * Positions: one row per shard and projection run in
 * projection_feed_shard (the sequence number of the last record dealt
 * with, whether the shard was read to its end), written in the same
 * transaction as the events the records led to.  A worker keeps the shard
 * iterators in memory between rounds, and gets new ones from the stored
 * positions after an error or a restart.  Shards are read parents first:
 * a shard is read once its parent was read to its end, or is unknown (gone
 * from the stream, trimmed); a shard that ends has DescribeStream asked
 * again at once, for its children.  When a projection first reads a stream
 * it starts at its latest records: what came before is the index walk's.
 * Only that first iterator is LATEST: a shard being read that has no
 * position yet is read again from its oldest record (after a restart, an
 * expired iterator), as LATEST would skip what came meanwhile.
 *
 * enable_change_feed and disable_change_feed change the production table
 * (UpdateTable), so they need what reset_store needs: ownership of the
 * foreign table and of its server, or superuser (admin.c).  A stream that
 * was enabled before enable_change_feed (someone else's consumer) is used
 * as it is, and disable_change_feed leaves it enabled.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/array.h"

/*
 * PostgreSQL's SQL function json_object() and json-c's type json_object
 * share a name: hide the former while its prototypes are read.
 */
#define json_object pg_sql_json_object
#include "utils/builtins.h"
#undef json_object

#include <json-c/json.h>
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "admin.h"
#include "aws.h"
#include "dynamo.h"
#include "feed.h"
#include "scheduler.h"
#include "store.h"

#define FEED_VIEW_TYPE			"KEYS_ONLY"
#define FEED_WAIT_SECONDS		120		/* for the stream to become ENABLED */
#define FEED_GET_LIMIT			1000	/* records per GetRecords, DynamoDB's maximum */
#define FEED_READS_PER_SHARD	4		/* GetRecords per shard and round, at most */
#define FEED_DESCRIBE_MS		(10 * 60 * 1000)	/* look for new shards at least this often */
#define FEED_RETRY_MS			60000	/* after the stream itself failed */

PG_FUNCTION_INFO_V1(esd_enable_change_feed);
PG_FUNCTION_INFO_V1(esd_disable_change_feed);
PG_FUNCTION_INFO_V1(esd_may_change_store);

/* ---- requests of the DynamoDB Streams API ---- */

/*
 * The endpoint of the Streams API: AWS serves it on a host of its own
 * (streams.dynamodb.<region>); an endpoint set on the server (DynamoDB
 * Local, a proxy) serves both.
 */
static EsdConnOptions
streams_conn(const EsdConnOptions *conn)
{
	EsdConnOptions streams = *conn;
	char	   *aws_default = psprintf("https://dynamodb.%s.amazonaws.com", conn->region);

	if (strcmp(conn->endpoint, aws_default) == 0)
		streams.endpoint = psprintf("https://streams.dynamodb.%s.amazonaws.com", conn->region);
	return streams;
}

/*
 * One call of the Streams API (X-Amz-Target DynamoDBStreams_20120810.*,
 * signed for dynamodb), under the one retry policy; the caller looks at
 * the outcome.
 */
static AwsCall *
streams_call(const EsdConnOptions *conn, const char *operation, const char *table,
			 const char *body)
{
	AwsCall    *call = palloc(sizeof(AwsCall));

	aws_dynamodb_init(call, conn, operation, table, body);
	call->target = psprintf("DynamoDBStreams_20120810.%s", operation);
	aws_execute(conn, &call, 1, NULL, false);
	return call;
}

static bool
call_failed_with(const AwsCall *call, const char *error_type)
{
	return call->failed && call->error_type != NULL &&
		strcmp(call->error_type, error_type) == 0;
}

static const char *
json_string(json_object *obj, const char *field)
{
	json_object *v;

	if (obj == NULL || !json_object_object_get_ex(obj, field, &v) ||
		!json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* A shard as DescribeStream lists it. */
typedef struct StreamShard
{
	char	   *shard_id;
	char	   *parent;
	bool		closed;			/* has an EndingSequenceNumber */
} StreamShard;

/*
 * DescribeStream, every page: the stream's status and its shards.  False
 * when the stream does not exist.
 */
static bool
describe_stream(const EsdConnOptions *conn, const char *table, const char *arn,
				char **status, List **shards)
{
	char	   *start = NULL;

	*shards = NIL;
	*status = NULL;
	for (;;)
	{
		StringInfoData body;
		AwsCall    *call;
		json_object *desc;
		json_object *list;
		const char *last;

		initStringInfo(&body);
		appendStringInfoString(&body, "{\"StreamArn\":");
		escape_json(&body, arn);
		if (start)
		{
			appendStringInfoString(&body, ",\"ExclusiveStartShardId\":");
			escape_json(&body, start);
		}
		appendStringInfoChar(&body, '}');
		call = streams_call(conn, "DescribeStream", table, body.data);
		if (call_failed_with(call, "ResourceNotFoundException"))
			return false;
		if (call->failed)
			aws_raise(call);
		if (!json_object_object_get_ex(call->json, "StreamDescription", &desc) ||
			!json_object_is_type(desc, json_type_object))
			ereport(ERROR,
					(errcode(ERRCODE_FDW_ERROR),
					 errmsg("DynamoDB Streams DescribeStream on table \"%s\" answered without a stream description",
							table)));
		if (json_string(desc, "StreamStatus"))
			*status = pstrdup(json_string(desc, "StreamStatus"));
		if (json_object_object_get_ex(desc, "Shards", &list) &&
			json_object_is_type(list, json_type_array))
		{
			for (size_t i = 0; i < json_object_array_length(list); i++)
			{
				json_object *s = json_object_array_get_idx(list, i);
				json_object *range;
				StreamShard *shard;

				if (json_string(s, "ShardId") == NULL)
					continue;
				shard = palloc0(sizeof(StreamShard));
				shard->shard_id = pstrdup(json_string(s, "ShardId"));
				if (json_string(s, "ParentShardId"))
					shard->parent = pstrdup(json_string(s, "ParentShardId"));
				shard->closed = json_object_object_get_ex(s, "SequenceNumberRange", &range) &&
					json_string(range, "EndingSequenceNumber") != NULL;
				*shards = lappend(*shards, shard);
			}
		}
		last = json_string(desc, "LastEvaluatedShardId");
		if (last == NULL)
			break;
		start = pstrdup(last);
		CHECK_FOR_INTERRUPTS();
	}
	return true;
}

/* ---- enable_change_feed and disable_change_feed ---- */

/* The table behind the foreign table, which must exist and be the layout's. */
static void
describe_feed_table(Oid relid, const EsdConnOptions *conn, const EsdTableOptions *table,
					EsdTableInfo *info)
{
	if (!esd_describe_table(conn, table->table_name, info))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_TABLE_NOT_FOUND),
				 errmsg("DynamoDB table \"%s\" of foreign table \"%s\" does not exist",
						table->table_name, get_rel_name(relid)),
				 errhint("event_store_dynamo.init_store() creates it.")));
	esd_check_store_shape(info);
}

static void
update_stream(const EsdConnOptions *conn, const char *table, bool enabled)
{
	StringInfoData body;
	AwsCall		call;
	AwsCall    *calls[1] = {&call};

	initStringInfo(&body);
	appendStringInfoString(&body, "{\"TableName\":");
	escape_json(&body, table);
	if (enabled)
		appendStringInfoString(&body, ",\"StreamSpecification\":{\"StreamEnabled\":true,"
							   "\"StreamViewType\":\"" FEED_VIEW_TYPE "\"}}");
	else
		appendStringInfoString(&body, ",\"StreamSpecification\":{\"StreamEnabled\":false}}");
	aws_dynamodb_init(&call, conn, "UpdateTable", table, body.data);
	aws_execute(conn, calls, 1, NULL, true);
}

/* Waits until the stream's status is ENABLED (DescribeStream). */
static void
wait_for_stream(const EsdConnOptions *conn, const char *table, const char *arn)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   FEED_WAIT_SECONDS * 1000);
	long		interval = 50;

	for (;;)
	{
		char	   *status;
		List	   *shards;

		if (describe_stream(conn, table, arn, &status, &shards) &&
			status != NULL && strcmp(status, "ENABLED") == 0)
			return;
		if (GetCurrentTimestamp() >= deadline)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("timed out waiting for the stream of DynamoDB table \"%s\" to become ENABLED",
							table),
					 errdetail("After %d seconds the stream %s is %s.", FEED_WAIT_SECONDS, arn,
							   status ? status : "not found")));
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 interval, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		interval = Min(interval * 2, 1000);
	}
}

/* Runs one statement of the feed's bookkeeping through SPI, as the caller. */
static void
feed_execute(const char *sql, int nargs, Oid *argtypes, Datum *values, const char *nulls)
{
	int			rc;

	SPI_connect();
	rc = SPI_execute_with_args(sql, nargs, argtypes, values, nulls, false, 0);
	if (rc < 0)
		elog(ERROR, "could not update the change feed: %s", SPI_result_code_string(rc));
	SPI_finish();
}

/* Whether change_feed has the foreign table with this stream already. */
static bool
feed_recorded(Oid relid, const char *arn)
{
	Oid			argtypes[2] = {OIDOID, TEXTOID};
	Datum		values[2];
	bool		found;

	values[0] = ObjectIdGetDatum(relid);
	values[1] = CStringGetTextDatum(arn);
	SPI_connect();
	if (SPI_execute_with_args("SELECT 1 FROM event_store_dynamo.change_feed"
							  " WHERE source = $1 AND stream_arn = $2",
							  2, argtypes, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the change feed");
	found = SPI_processed > 0;
	SPI_finish();
	return found;
}

/*
 * enable_change_feed(regclass) returns text: turn on the table's stream
 * (KEYS_ONLY) unless it is on already, wait until it is ENABLED, record it
 * in change_feed for the workers, and return the stream's ARN.
 */
Datum
esd_enable_change_feed(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	EsdTableOptions table;
	EsdConnOptions conn;
	EsdConnOptions streams;
	EsdTableInfo info;
	bool		was_enabled;
	Oid			argtypes[5] = {OIDOID, TEXTOID, TEXTOID, TEXTOID, BOOLOID};
	Datum		values[5];

	esd_open_store_for_change(relid, AccessShareLock);
	esd_get_table_options(relid, &table);
	esd_get_conn_options(GetForeignTable(relid)->serverid, GetUserId(), &conn);
	streams = streams_conn(&conn);

	describe_feed_table(relid, &conn, &table, &info);
	was_enabled = info.stream_enabled;
	if (!was_enabled)
	{
		/* DynamoDB takes one change of a table at a time */
		if (!esd_table_ready(&info))
			esd_wait_for_table(&conn, table.table_name, false);
		update_stream(&conn, table.table_name, true);
		esd_wait_for_table(&conn, table.table_name, false);
		describe_feed_table(relid, &conn, &table, &info);
	}
	if (!info.stream_enabled || info.latest_stream_arn == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("DynamoDB table \"%s\" has no enabled stream after UpdateTable",
						table.table_name)));
	wait_for_stream(&streams, table.table_name, info.latest_stream_arn);
	if (was_enabled && !feed_recorded(relid, info.latest_stream_arn))
		ereport(NOTICE,
				(errmsg("DynamoDB table \"%s\" already has a stream (%s), which the feed uses",
						table.table_name, info.stream_view_type ? info.stream_view_type : "?"),
				 errdetail("disable_change_feed() will leave that stream enabled.")));

	values[0] = ObjectIdGetDatum(relid);
	values[1] = CStringGetTextDatum(table.table_name);
	values[2] = CStringGetTextDatum(info.latest_stream_arn);
	values[3] = CStringGetTextDatum(info.stream_view_type ? info.stream_view_type : FEED_VIEW_TYPE);
	values[4] = BoolGetDatum(was_enabled);
	feed_execute("INSERT INTO event_store_dynamo.change_feed AS f"
				 "  (source, table_name, stream_arn, view_type, stream_was_enabled, enabled_by)"
				 " VALUES ($1, $2, $3, $4, $5, current_user::regrole)"
				 " ON CONFLICT (source) DO UPDATE"
				 "   SET table_name = excluded.table_name, stream_arn = excluded.stream_arn,"
				 "       view_type = excluded.view_type,"
				 "       stream_was_enabled = CASE WHEN f.stream_arn = excluded.stream_arn"
				 "                                 THEN f.stream_was_enabled"
				 "                                 ELSE excluded.stream_was_enabled END,"
				 "       enabled_by = excluded.enabled_by, enabled_at = now()",
				 5, argtypes, values, NULL);
	PG_RETURN_TEXT_P(cstring_to_text(info.latest_stream_arn));
}

/*
 * disable_change_feed(regclass) returns boolean: the workers stop reading
 * the stream, and the stream is turned off unless it was enabled before
 * enable_change_feed.  True if the foreign table had a change feed.
 */
Datum
esd_disable_change_feed(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	EsdTableOptions table;
	EsdConnOptions conn;
	EsdTableInfo info;
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1];
	bool		had_feed;
	bool		keep_stream = false;

	esd_open_store_for_change(relid, AccessShareLock);
	esd_get_table_options(relid, &table);
	esd_get_conn_options(GetForeignTable(relid)->serverid, GetUserId(), &conn);

	values[0] = ObjectIdGetDatum(relid);
	SPI_connect();
	if (SPI_execute_with_args("DELETE FROM event_store_dynamo.change_feed WHERE source = $1"
							  " RETURNING stream_was_enabled",
							  1, argtypes, values, NULL, false, 0) != SPI_OK_DELETE_RETURNING)
		elog(ERROR, "could not update the change feed");
	had_feed = SPI_processed > 0;
	if (had_feed)
	{
		bool		isnull;

		keep_stream = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
												 1, &isnull));
	}
	SPI_finish();

	if (!had_feed)
		PG_RETURN_BOOL(false);
	if (keep_stream)
	{
		ereport(NOTICE,
				(errmsg("the stream of DynamoDB table \"%s\" stays enabled", table.table_name),
				 errdetail("It was enabled before enable_change_feed().")));
		PG_RETURN_BOOL(true);
	}
	describe_feed_table(relid, &conn, &table, &info);
	if (info.stream_enabled)
	{
		if (!esd_table_ready(&info))
			esd_wait_for_table(&conn, table.table_name, false);
		update_stream(&conn, table.table_name, false);
		esd_wait_for_table(&conn, table.table_name, false);
	}
	PG_RETURN_BOOL(true);
}

/*
 * _may_change_store(regclass) returns boolean: whether the current role may
 * change the AWS resources behind the relation (the row-level security of
 * change_feed).
 */
Datum
esd_may_change_store(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);

	if (get_rel_name(relid) == NULL)
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(esd_role_may_change_store(relid, GetUserId()));
}

/* ---- the workers' side: reading the stream ---- */

/* A shard as the worker knows it. */
typedef struct FeedShard
{
	char	   *shard_id;
	char	   *parent;
	char	   *position;		/* last record dealt with (committed); NULL: none yet */
	bool		from_start;		/* with no position: TRIM_HORIZON (a child, or a
								 * shard read before), else LATEST */
	bool		ended;			/* read to its end, or given up */
	char	   *iterator;		/* where the next GetRecords reads; NULL: get one */

	/* this round's outcome, kept once its transaction commits */
	char	   *next_position;
	char	   *next_iterator;
	bool		next_ended;
	bool		next_from_start;
	bool		next_cleared;	/* the position was given up (trimmed) */
	bool		read;			/* read in this round */
} FeedShard;

/* What a worker knows of its projection's feed; lives in feed.cxt. */
static struct
{
	MemoryContext cxt;
	bool		loaded;
	char	   *projection;
	char	   *run_key;
	char	   *stream_arn;
	List	   *shards;			/* FeedShard */
	bool		need_describe;
	TimestampTz described_at;
	TimestampTz retry_after;	/* after the stream itself failed */
} feed;

/* This round's fallbacks: what the index walk will have to find. */
static int	round_fallbacks;
static StringInfoData round_note;
static char *last_error_note = NULL;	/* why the last round failed */
static int	feed_errors = 0;		/* rounds in a row that failed */
static TimestampTz error_retry_after = 0;	/* no round before, after a failure */

/* Replaces a string of feed.cxt (or NULL) with another one (or NULL). */
static void
replace_string(char **field, char *value)
{
	if (*field && *field != value)
		pfree(*field);
	*field = value;
}

static void
note_fallback(const char *fmt,...) pg_attribute_printf(1, 2);

static void
note_fallback(const char *fmt,...)
{
	va_list		args;
	char		buf[512];

	va_start(args, fmt);
	vsnprintf(buf, sizeof(buf), fmt, args);
	va_end(args);
	round_fallbacks++;
	resetStringInfo(&round_note);
	appendStringInfoString(&round_note, buf);
	ereport(LOG,
			(errmsg("change feed of projection \"%s\": %s; the index walk covers those events",
					feed.projection, buf)));
}

/* Forget everything in memory: the next round starts from the stored positions. */
void
esd_feed_forget(void)
{
	if (feed.cxt)
		MemoryContextReset(feed.cxt);
	feed.loaded = false;
	feed.projection = NULL;
	feed.run_key = NULL;
	feed.stream_arn = NULL;
	feed.shards = NIL;
	feed.need_describe = true;
	feed.described_at = 0;
}

static FeedShard *
find_shard(const char *shard_id)
{
	ListCell   *lc;

	foreach(lc, feed.shards)
	{
		FeedShard  *s = lfirst(lc);

		if (strcmp(s->shard_id, shard_id) == 0)
			return s;
	}
	return NULL;
}

static char *
feed_strdup(const char *s)
{
	return s ? MemoryContextStrdup(feed.cxt, s) : NULL;
}

/* The stored shards of the run for this stream (SPI connected). */
static void
load_shards(void)
{
	Oid			argtypes[2] = {UUIDOID, TEXTOID};
	Datum		values[2];
	MemoryContext old;

	values[0] = DirectFunctionCall1(uuid_in, CStringGetDatum(feed.run_key));
	values[1] = CStringGetTextDatum(feed.stream_arn);
	if (SPI_execute_with_args("SELECT shard_id, parent_shard_id, position, from_start, ended"
							  "  FROM event_store_dynamo.projection_feed_shard"
							  " WHERE run_key = $1 AND stream_arn = $2",
							  2, argtypes, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the change feed's positions");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		FeedShard  *s = MemoryContextAllocZero(feed.cxt, sizeof(FeedShard));
		bool		isnull;

		s->shard_id = feed_strdup(SPI_getvalue(tup, desc, 1));
		s->parent = feed_strdup(SPI_getvalue(tup, desc, 2));
		s->position = feed_strdup(SPI_getvalue(tup, desc, 3));
		s->from_start = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));
		s->ended = DatumGetBool(SPI_getbinval(tup, desc, 5, &isnull));
		old = MemoryContextSwitchTo(feed.cxt);
		feed.shards = lappend(feed.shards, s);
		MemoryContextSwitchTo(old);
	}
	feed.need_describe = true;
}

/* Deletes the stored position of a shard (SPI connected), in the round's transaction. */
static void
forget_shard(FeedShard *s)
{
	Oid			argtypes[3] = {UUIDOID, TEXTOID, TEXTOID};
	Datum		values[3];

	values[0] = DirectFunctionCall1(uuid_in, CStringGetDatum(feed.run_key));
	values[1] = CStringGetTextDatum(feed.stream_arn);
	values[2] = CStringGetTextDatum(s->shard_id);
	if (SPI_execute_with_args("DELETE FROM event_store_dynamo.projection_feed_shard"
							  " WHERE run_key = $1 AND stream_arn = $2 AND shard_id = $3",
							  3, argtypes, values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not forget shard %s of the change feed", s->shard_id);
}

/*
 * Brings the shard list up to date with DescribeStream: shards met for the
 * first time when the projection starts reading the stream begin at their
 * latest record (closed ones are left to the index walk); shards appearing
 * later (children of a shard that closed) are read from their start.
 * Known shards missing from the stream were trimmed: before being read to
 * their end (a fallback), or after (forgotten).  False when the stream is
 * gone.
 */
static bool
refresh_shards(const EsdConnOptions *conn, const char *table)
{
	char	   *status;
	List	   *listed;
	ListCell   *lc;
	bool		first = (feed.shards == NIL);
	MemoryContext old;

	if (!describe_stream(conn, table, feed.stream_arn, &status, &listed))
		return false;
	if (status && strcmp(status, "DISABLED") == 0 && listed == NIL)
		return false;

	old = MemoryContextSwitchTo(feed.cxt);
	foreach(lc, listed)
	{
		StreamShard *l = lfirst(lc);
		FeedShard  *s = find_shard(l->shard_id);

		if (s)
			continue;
		s = palloc0(sizeof(FeedShard));
		s->shard_id = pstrdup(l->shard_id);
		s->parent = l->parent ? pstrdup(l->parent) : NULL;
		if (first)
		{
			s->from_start = false;
			s->ended = l->closed;
		}
		else
			s->from_start = true;
		s->next_from_start = s->from_start;
		s->next_ended = s->ended;
		feed.shards = lappend(feed.shards, s);
	}
	MemoryContextSwitchTo(old);

	foreach(lc, feed.shards)
	{
		FeedShard  *s = lfirst(lc);
		ListCell   *lc2;
		bool		listed_now = false;

		foreach(lc2, listed)
			if (strcmp(((StreamShard *) lfirst(lc2))->shard_id, s->shard_id) == 0)
				listed_now = true;
		if (!listed_now && !s->ended)
		{
			note_fallback("shard %s was trimmed before it was read to its end", s->shard_id);
			s->ended = true;
			s->next_ended = true;
		}
		else if (!listed_now)
		{
			/*
			 * Read to its end and since trimmed away: nothing will ask for it
			 * again (a child of a shard unknown is read as one whose parent
			 * ended), so it is forgotten, its stored row too, rather than kept
			 * and written again every round for good.
			 */
			forget_shard(s);
			feed.shards = foreach_delete_current(feed.shards, lc);
		}
	}
	feed.need_describe = false;
	feed.described_at = GetCurrentTimestamp();
	return true;
}

/* Whether a shard may be read now: its parent was read to its end, or is unknown. */
static bool
shard_readable(const FeedShard *s)
{
	FeedShard  *parent;

	if (s->ended)
		return false;
	if (s->parent == NULL)
		return true;
	parent = find_shard(s->parent);
	return parent == NULL || parent->ended;
}

/*
 * GetShardIterator for the shard: after its position, else from its start
 * or its latest record.  A position that was trimmed falls back to the
 * shard's start (what lay between is the index walk's).  NULL when the
 * shard is gone.
 */
static char *
shard_iterator(const EsdConnOptions *conn, const char *table, FeedShard *s)
{
	for (;;)
	{
		StringInfoData body;
		AwsCall    *call;
		const char *type;

		type = s->next_position ? "AFTER_SEQUENCE_NUMBER" :
			s->next_from_start ? "TRIM_HORIZON" : "LATEST";
		initStringInfo(&body);
		appendStringInfoString(&body, "{\"StreamArn\":");
		escape_json(&body, feed.stream_arn);
		appendStringInfoString(&body, ",\"ShardId\":");
		escape_json(&body, s->shard_id);
		appendStringInfo(&body, ",\"ShardIteratorType\":\"%s\"", type);
		if (s->next_position)
		{
			appendStringInfoString(&body, ",\"SequenceNumber\":");
			escape_json(&body, s->next_position);
		}
		appendStringInfoChar(&body, '}');
		call = streams_call(conn, "GetShardIterator", table, body.data);
		if (s->next_position && call->failed && call->status >= 400 &&
			call->sqlstate != ERRCODE_INSUFFICIENT_RESOURCES &&
			call->sqlstate != ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION &&
			!call_failed_with(call, "ResourceNotFoundException"))
		{
			/*
			 * Trimmed (TrimmedDataAccessException), or a position the shard
			 * does not have (ValidationException; DynamoDB Local answers 500
			 * to one past its end, after every retry): given up.  Throttling,
			 * credentials and an endpoint that does not answer are errors of
			 * the round instead, and the position is kept.
			 */
			note_fallback("position %s of shard %s cannot be read (%s)",
						  s->next_position, s->shard_id, call->error_type);
			s->next_position = NULL;
			s->next_cleared = true;
			s->next_from_start = true;
			continue;
		}
		if (call_failed_with(call, "ResourceNotFoundException"))
		{
			note_fallback("shard %s is gone", s->shard_id);
			return NULL;
		}
		if (call->failed)
			aws_raise(call);
		if (json_string(call->json, "ShardIterator") == NULL)
			return NULL;
		return pstrdup(json_string(call->json, "ShardIterator"));
	}
}

/* The event id a stream record's key names, or NULL for anything but a new event. */
static const char *
record_event_id(json_object *record)
{
	json_object *ddb;
	json_object *keys;
	json_object *attr;
	const char *name = json_string(record, "eventName");
	const char *id;
	const char *created;

	if (name == NULL || strcmp(name, "INSERT") != 0 ||
		!json_object_object_get_ex(record, "dynamodb", &ddb) ||
		!json_object_object_get_ex(ddb, "Keys", &keys))
		return NULL;
	if (!json_object_object_get_ex(keys, "id", &attr) || (id = json_string(attr, "S")) == NULL)
		return NULL;
	if (!json_object_object_get_ex(keys, "created", &attr) ||
		(created = json_string(attr, "S")) == NULL)
		return NULL;
	/* stream heads share the table */
	if (strcmp(created, ESD_HEAD_CREATED) == 0)
		return NULL;
	if (strncmp(id, ESD_ID_PREFIX, strlen(ESD_ID_PREFIX)) == 0)
		id += strlen(ESD_ID_PREFIX);
	return id;
}

/*
 * A shard read to its end, or given up: its children may be read once this
 * round commits, and DescribeStream lists them (a closed shard's children,
 * and those of a shard that is gone).
 */
static void
end_shard(FeedShard *s)
{
	s->next_iterator = NULL;
	s->next_ended = true;
	feed.need_describe = true;
}

/*
 * Reads what the shard has, up to FEED_READS_PER_SHARD pages: the new
 * events' ids go to ids, the shard's new position and iterator to its
 * next_* fields.  Returns the number of records read.
 */
static int64
read_shard(const EsdConnOptions *conn, const char *table, FeedShard *s, List **ids)
{
	int64		records = 0;
	bool		renewed = false;

	s->read = true;
	if (s->next_iterator == NULL)
		s->next_iterator = shard_iterator(conn, table, s);
	if (s->next_iterator == NULL)
	{
		end_shard(s);
		return 0;
	}

	/*
	 * LATEST is for the first iterator only.  Once the shard is being read,
	 * an iterator got again without a position (after a restart, or for an
	 * expired one) starts at the shard's oldest record: LATEST would skip
	 * the records that came meanwhile, which are the feed's (those read
	 * again apply nothing twice).
	 */
	s->next_from_start = true;
	for (int page = 0; page < FEED_READS_PER_SHARD; page++)
	{
		StringInfoData body;
		AwsCall    *call;
		json_object *list;
		size_t		n = 0;

		CHECK_FOR_INTERRUPTS();
		initStringInfo(&body);
		appendStringInfoString(&body, "{\"ShardIterator\":");
		escape_json(&body, s->next_iterator);
		appendStringInfo(&body, ",\"Limit\":%d}", FEED_GET_LIMIT);
		call = streams_call(conn, "GetRecords", table, body.data);
		if (call->failed && !renewed &&
			(call_failed_with(call, "ExpiredIteratorException") ||
			 call_failed_with(call, "TrimmedDataAccessException")))
		{
			/* a new iterator from the position; a trimmed one falls back to the start */
			if (call_failed_with(call, "TrimmedDataAccessException"))
			{
				note_fallback("shard %s was trimmed past the iterator", s->shard_id);
				s->next_position = NULL;
				s->next_cleared = true;
				s->next_from_start = true;
			}
			renewed = true;
			s->next_iterator = shard_iterator(conn, table, s);
			if (s->next_iterator == NULL)
			{
				end_shard(s);
				return records;
			}
			page--;
			continue;
		}
		if (call_failed_with(call, "ResourceNotFoundException"))
		{
			note_fallback("shard %s is gone", s->shard_id);
			end_shard(s);
			return records;
		}
		if (call->failed)
			aws_raise(call);

		if (json_object_object_get_ex(call->json, "Records", &list) &&
			json_object_is_type(list, json_type_array))
		{
			n = json_object_array_length(list);
			for (size_t i = 0; i < n; i++)
			{
				json_object *record = json_object_array_get_idx(list, i);
				json_object *ddb;
				const char *id = record_event_id(record);

				if (id)
					*ids = lappend(*ids, pstrdup(id));
				if (json_object_object_get_ex(record, "dynamodb", &ddb) &&
					json_string(ddb, "SequenceNumber"))
					s->next_position = pstrdup(json_string(ddb, "SequenceNumber"));
			}
			records += n;
		}
		if (json_string(call->json, "NextShardIterator") == NULL)
		{
			/* a closed shard read to its end: its children come next */
			end_shard(s);
			break;
		}
		s->next_iterator = pstrdup(json_string(call->json, "NextShardIterator"));
		if (n == 0)
			break;
	}
	return records;
}

/* The shards' state after this round, as _feed_apply stores it. */
static char *
shards_json(void)
{
	StringInfoData buf;
	ListCell   *lc;
	bool		first = true;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '[');
	foreach(lc, feed.shards)
	{
		FeedShard  *s = lfirst(lc);

		if (!first)
			appendStringInfoChar(&buf, ',');
		first = false;
		appendStringInfoString(&buf, "{\"shard_id\":");
		escape_json(&buf, s->shard_id);
		appendStringInfoString(&buf, ",\"parent\":");
		if (s->parent)
			escape_json(&buf, s->parent);
		else
			appendStringInfoString(&buf, "null");
		appendStringInfoString(&buf, ",\"position\":");
		if (s->next_position)
			escape_json(&buf, s->next_position);
		else
			appendStringInfoString(&buf, "null");
		appendStringInfo(&buf, ",\"from_start\":%s,\"ended\":%s}",
						 s->next_from_start ? "true" : "false",
						 s->next_ended ? "true" : "false");
	}
	appendStringInfoChar(&buf, ']');
	return buf.data;
}

static Datum
ids_array(List *ids)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(list_length(ids), 1));
	int			n = 0;
	ListCell   *lc;

	foreach(lc, ids)
		elems[n++] = CStringGetTextDatum((char *) lfirst(lc));
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * One round of the feed for a worker's projection, in a transaction of its
 * own: read what the stream has for it, and hand the new events to
 * _feed_apply, which applies them and stores the positions in that same
 * transaction.  Does nothing when the projection's source has no change
 * feed.  An error is the caller's to report: it then calls
 * esd_feed_forget, and the next round starts from the stored positions.
 */
void
esd_feed_round(const char *projection)
{
	Oid			argtypes[7] = {TEXTOID, TEXTOID, TEXTARRAYOID, JSONBOID, INT8OID, INT4OID, TEXTOID};
	Datum		values[7];
	char		nulls[8] = "       ";
	HeapTuple	tup;
	TupleDesc	desc;
	char	   *run_key;
	char	   *arn;
	char	   *table;
	Oid			source;
	bool		isnull;
	bool		saved;
	EsdConnOptions conn;
	EsdConnOptions streams;
	List	   *ids = NIL;
	int64		records = 0;
	bool		stream_gone = false;
	ListCell   *lc;

	if (feed.cxt == NULL)
	{
		MemoryContext old;

		feed.cxt = AllocSetContextCreate(TopMemoryContext, "event_store_dynamo change feed",
										 ALLOCSET_SMALL_SIZES);
		esd_feed_forget();
		old = MemoryContextSwitchTo(TopMemoryContext);
		initStringInfo(&round_note);
		MemoryContextSwitchTo(old);
	}
	round_fallbacks = 0;
	resetStringInfo(&round_note);
	if (last_error_note)
	{
		/* the last round failed: its events were left to the index walk */
		round_fallbacks++;
		appendStringInfoString(&round_note, last_error_note);
		pfree(last_error_note);
		last_error_note = NULL;
	}

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "event_store_dynamo: read the change feed");
	SPI_connect();

	/* an installation still at a version without the feed has none */
	if (!OidIsValid(get_relname_relid("change_feed", get_namespace_oid("event_store_dynamo", true))))
	{
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
		pgstat_report_activity(STATE_IDLE, NULL);
		return;
	}

	values[0] = CStringGetTextDatum(projection);
	if (SPI_execute_with_args("SELECT p.run_key::text, p.source::oid, c.stream_arn, c.table_name"
							  "  FROM event_store_dynamo.projection p"
							  "  JOIN event_store_dynamo.change_feed c ON c.source = p.source"
							  " WHERE p.name = $1",
							  1, argtypes, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the change feed of projection \"%s\"", projection);
	if (SPI_processed == 0)
	{
		/* no feed (or none any more) */
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
		pgstat_report_activity(STATE_IDLE, NULL);
		if (feed.loaded)
			esd_feed_forget();
		return;
	}
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	run_key = SPI_getvalue(tup, desc, 1);
	source = DatumGetObjectId(SPI_getbinval(tup, desc, 2, &isnull));
	arn = SPI_getvalue(tup, desc, 3);
	table = SPI_getvalue(tup, desc, 4);

	if (!feed.loaded || strcmp(feed.run_key, run_key) != 0 ||
		strcmp(feed.stream_arn, arn) != 0 || strcmp(feed.projection, projection) != 0)
	{
		/* another run or another stream: start over from what is stored for them */
		esd_feed_forget();
		feed.retry_after = 0;
		feed.projection = feed_strdup(projection);
		feed.run_key = feed_strdup(run_key);
		feed.stream_arn = feed_strdup(arn);
		load_shards();
		feed.loaded = true;
	}

	else if (feed.retry_after && GetCurrentTimestamp() < feed.retry_after)
	{
		/* the stream failed a moment ago: leave it alone for now */
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
		pgstat_report_activity(STATE_IDLE, NULL);
		return;
	}
	feed.retry_after = 0;

	esd_get_conn_options(GetForeignTable(source)->serverid, GetUserId(), &conn);
	streams = streams_conn(&conn);

	foreach(lc, feed.shards)
	{
		FeedShard  *s = lfirst(lc);

		s->next_position = s->position;
		s->next_iterator = s->iterator;
		s->next_ended = s->ended;
		s->next_from_start = s->from_start;
		s->next_cleared = false;
		s->read = false;
	}
	if (feed.need_describe ||
		GetCurrentTimestamp() >= TimestampTzPlusMilliseconds(feed.described_at, FEED_DESCRIBE_MS))
	{
		if (!refresh_shards(&streams, table))
		{
			note_fallback("stream %s is gone", feed.stream_arn);
			feed.retry_after = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), FEED_RETRY_MS);
			stream_gone = true;
		}
	}
	if (!stream_gone)
	{
		foreach(lc, feed.shards)
		{
			FeedShard  *s = lfirst(lc);

			if (shard_readable(s))
				records += read_shard(&streams, table, s, &ids);
		}
	}

	values[1] = CStringGetTextDatum(arn);
	values[2] = ids_array(ids);
	values[3] = DirectFunctionCall1(jsonb_in, CStringGetDatum(shards_json()));
	values[4] = Int64GetDatum(records);
	values[5] = Int32GetDatum(round_fallbacks);
	if (round_fallbacks > 0)
		values[6] = CStringGetTextDatum(round_note.data);
	else
		nulls[6] = 'n';
	if (SPI_execute_with_args("SELECT event_store_dynamo._feed_apply($1, $2, $3, $4, $5, $6, $7)",
							  7, argtypes, values, nulls, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not apply the change feed of projection \"%s\"", projection);
	saved = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

	/* this round's strings die with the transaction: keep copies */
	foreach(lc, feed.shards)
	{
		FeedShard  *s = lfirst(lc);

		s->next_position = (s->next_position == s->position) ? NULL : feed_strdup(s->next_position);
		s->next_iterator = (s->next_iterator == s->iterator) ? NULL : feed_strdup(s->next_iterator);
	}

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);

	/* committed: what the round read is now where the next one starts */
	foreach(lc, feed.shards)
	{
		FeedShard  *s = lfirst(lc);

		if (!saved)
		{
			/* the projection is halted at a failing event: read these records again */
			replace_string(&s->iterator, NULL);
			if (s->next_position)
				pfree(s->next_position);
			if (s->next_iterator)
				pfree(s->next_iterator);
			continue;
		}
		/* NULL next_* here: unchanged, unless the round cleared them */
		if (s->next_position)
			replace_string(&s->position, s->next_position);
		else if (s->next_cleared)
			replace_string(&s->position, NULL);
		if (s->next_iterator)
			replace_string(&s->iterator, s->next_iterator);
		else if (s->next_ended || s->read)
			replace_string(&s->iterator, NULL);
		s->ended = s->next_ended;
		s->from_start = s->next_from_start;
	}
}

/*
 * A round of the feed for the worker's loop: an error is reported as a
 * WARNING and rolled back, and the worker goes on with its catch-up (the
 * index walk); the next round starts again from the stored positions.
 */
void
esd_feed_poll(const char *projection, MemoryContext loop_context)
{
	if (error_retry_after && GetCurrentTimestamp() < error_retry_after)
		return;
	error_retry_after = 0;
	PG_TRY();
	{
		esd_feed_round(projection);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(loop_context);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		pgstat_report_activity(STATE_IDLE, NULL);
		ereport(WARNING,
				(errcode(edata->sqlerrcode),
				 errmsg("could not read the change feed of projection \"%s\": %s",
						projection, edata->message),
				 edata->detail ? errdetail_internal("%s", edata->detail) : 0,
				 errhint("The projection's index walk goes on; the feed is read again from its stored positions.")));
		esd_feed_forget();
		last_error_note = MemoryContextStrdup(TopMemoryContext, edata->message);
		FreeErrorData(edata);
		/* a failure that lasts is tried again less and less often, up to a minute */
		feed_errors++;
		error_retry_after = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														Min(1000L << Min(feed_errors - 1, 6), FEED_RETRY_MS));
		return;
	}
	PG_END_TRY();
	feed_errors = 0;
}
