/*-------------------------------------------------------------------------
 *
 * admin.c
 *	  Store management from SQL: reset_store, init_store, add_stream_index,
 *	  stream_version, store_info, IMPORT FOREIGN SCHEMA and TRUNCATE.
 *
 * Each function takes a foreign table and acts on the DynamoDB table (and
 * S3 bucket) behind it, through store.c.  Who may do what follows the
 * damage done: reset_store and TRUNCATE destroy every event, init_store
 * and add_stream_index create or change AWS resources.  Owning the foreign
 * table is not enough for that, because any role with USAGE on a server
 * can create a foreign table naming any DynamoDB table: these need
 * ownership of the foreign table and, besides, ownership of its foreign
 * server (or superuser), a privilege nobody can grant himself.  The same
 * goes for the first INSERT creating a missing table or bucket.
 * stream_version and store_info only read, so SELECT on the foreign table
 * is enough.  Calls reach AWS with the current user's user mapping.
 *
 * Nothing is deleted or changed unless DescribeTable shows the layout's
 * shape: a foreign table naming some other DynamoDB table (keyed
 * otherwise, without the indexes) gets an error and the table is left
 * alone.  A function that may change the table's indexes invalidates the
 * foreign table's cached plans, so that the next query plans with them.
 *
 * Nothing here is transactional: DynamoDB cannot undo a DeleteTable, and
 * a table created by init_store stays created.  So reset_store and
 * TRUNCATE refuse to run inside a transaction block or a subtransaction
 * (25001), where a rollback would be expected to undo them: they run only
 * as statements of their own, whose transaction ends right after them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "commands/defrem.h"
#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "admin.h"
#include "append.h"
#include "codec.h"
#include "dynamo.h"
#include "store.h"

static void raise_wrong_shape(const char *table_name, const char *problems) pg_attribute_noreturn();

/* The name IMPORT FOREIGN SCHEMA gives the foreign table it creates. */
#define IMPORT_TABLE_NAME "events"

/*
 * The canonical columns of the SPEC, in its order.  No defaults: the
 * write path gives a NULL id a fresh UUID v4 and a NULL created the
 * current time, numbers the sequence and derives time_bucket and
 * s3_reference, so INSERT (domain, type, payload) is complete as it is.
 */
static const char *const import_columns =
"  id text,\n"
"  domain text,\n"
"  type text,\n"
"  identifier text,\n"
"  correlation_id text,\n"
"  causation_id text,\n"
"  sequence bigint,\n"
"  payload jsonb,\n"
"  meta jsonb,\n"
"  created timestamptz,\n"
"  time_bucket text,\n"
"  s3_reference text\n";

/*
 * The stores this backend knows to be in place and of the right shape,
 * as "endpoint access-key table bucket" strings in TopMemoryContext, so that
 * esd_ensure_store costs one DescribeTable per table per backend.
 */
static List *known_stores = NIL;

/* What the SQL functions act on. */
typedef struct AdminTarget
{
	Oid			relid;
	const char *relname;
	EsdConnOptions conn;
	EsdTableOptions table;
} AdminTarget;

PG_FUNCTION_INFO_V1(esd_reset_store);
PG_FUNCTION_INFO_V1(esd_init_store);
PG_FUNCTION_INFO_V1(esd_add_stream_index);
PG_FUNCTION_INFO_V1(esd_stream_version);
PG_FUNCTION_INFO_V1(esd_store_info);

/* ---- the foreign table and who may act on it ---- */

/*
 * Make sure the relation is a foreign table of this wrapper: the functions
 * take any regclass.
 */
static void
check_foreign_table(Oid relid)
{
	char	   *relname = get_rel_name(relid);

	if (relname == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (get_rel_relkind(relid) != RELKIND_FOREIGN_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a foreign table", relname)));
	/* ours exactly when its wrapper's handler hands out our callbacks */
	if (GetFdwRoutineByRelId(relid)->ExecForeignTruncate != esd_exec_foreign_truncate)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("foreign table \"%s\" does not belong to event_store_dynamo", relname)));
}

/*
 * A reset destroys every event and cannot be rolled back: refuse it where
 * a rollback could follow it (BEGIN ... ROLLBACK, a savepoint, a function's
 * exception block, several statements sent as one), as VACUUM and the
 * like are refused there.
 */
static void
refuse_in_transaction_block(const char *what)
{
	if (IsTransactionBlock() || IsSubTransaction())
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("%s cannot run inside a transaction block", what),
				 errdetail("DynamoDB cannot undo a DeleteTable: a rollback would not bring the events back."),
				 errhint("Run it as a statement of its own, outside BEGIN ... COMMIT.")));
}

static void
check_owner(Oid relid)
{
	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_FOREIGN_TABLE, get_rel_name(relid));
}

/*
 * May the role create, change or delete the AWS resources behind the
 * foreign table?  Superusers and the owner of its server may: owning a
 * server is not something a role can give itself, and the credentials a
 * server's owner uses are the ones he set up (ambient credentials need a
 * superuser's consent, use_ambient_credentials).
 */
static bool
may_change_store(Oid relid, Oid userid)
{
	return superuser_arg(userid) ||
		pg_foreign_server_ownercheck(GetForeignTable(relid)->serverid, userid);
}

/*
 * Refuse a change of the AWS resources behind the foreign table to a role
 * that may not make it (the role the statement runs as); what names the
 * change ("create DynamoDB table \"x\"").
 */
static void
check_store_change(Oid relid, Oid userid, const char *what)
{
	ForeignServer *server;

	if (may_change_store(relid, userid))
		return;
	server = GetForeignServer(GetForeignTable(relid)->serverid);
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to %s", what),
			 errdetail("Creating, changing or deleting the AWS resources behind foreign table \"%s\" needs ownership of its server \"%s\" or superuser; owning the foreign table is not enough.",
					   get_rel_name(relid), server->servername),
			 errhint("Ask the owner of server \"%s\" or a superuser to do it.", server->servername)));
}

static void
check_select(Oid relid)
{
	AclResult	result = pg_class_aclcheck(relid, GetUserId(), ACL_SELECT);

	if (result != ACLCHECK_OK)
		aclcheck_error(result, OBJECT_FOREIGN_TABLE, get_rel_name(relid));
}

/*
 * Check the relation and the user's right to act on it, then lock it.
 * The checks come first so that nobody can take a lock on a table he may
 * not touch; the table may have been dropped while we waited for the lock.
 */
static void
open_foreign_table(Oid relid, bool need_owner, LOCKMODE lockmode)
{
	check_foreign_table(relid);
	if (need_owner)
	{
		check_owner(relid);
		check_store_change(relid, GetUserId(),
						   psprintf("change the DynamoDB table behind foreign table \"%s\"",
									get_rel_name(relid)));
	}
	else
		check_select(relid);
	LockRelationOid(relid, lockmode);
	if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
}

/* Options of the table and the current user's connection to its server. */
static void
load_target(Oid relid, AdminTarget *target)
{
	target->relid = relid;
	target->relname = get_rel_name(relid);
	esd_get_table_options(relid, &target->table);
	esd_get_conn_options(GetForeignTable(relid)->serverid, GetUserId(), &target->conn);
}

/*
 * For other files that change the AWS resources behind a foreign table (the
 * change feed): the same checks as reset_store, then the lock.
 */
void
esd_open_store_for_change(Oid relid, LOCKMODE lockmode)
{
	open_foreign_table(relid, true, lockmode);
}

/*
 * Whether the role may change the AWS resources behind the relation: a
 * foreign table of this wrapper it owns, whose server it owns (or
 * superuser).  False, never an error, for anything else.
 */
bool
esd_role_may_change_store(Oid relid, Oid userid)
{
	if (get_rel_relkind(relid) != RELKIND_FOREIGN_TABLE ||
		GetFdwRoutineByRelId(relid)->ExecForeignTruncate != esd_exec_foreign_truncate)
		return false;
	return pg_class_ownercheck(relid, userid) && may_change_store(relid, userid);
}

/* Refuse a table that is not the layout's (HV021), naming the differences. */
void
esd_check_store_shape(const EsdTableInfo *info)
{
	char	   *problems = esd_table_shape_problems(info);

	if (problems)
		raise_wrong_shape(info->name, problems);
}

/* ---- what the functions do ---- */

static char *
store_key(const EsdConnOptions *conn, const EsdTableOptions *table)
{
	return psprintf("%s %u %u %s %s", conn->endpoint, conn->serverid, conn->userid,
					table->table_name, table->s3_bucket ? table->s3_bucket : "");
}

static bool
store_known(const EsdConnOptions *conn, const EsdTableOptions *table)
{
	char	   *key = store_key(conn, table);
	ListCell   *lc;

	foreach(lc, known_stores)
		if (strcmp((char *) lfirst(lc), key) == 0)
			return true;
	return false;
}

static void
remember_store(const EsdConnOptions *conn, const EsdTableOptions *table)
{
	MemoryContext old;

	if (store_known(conn, table))
		return;
	old = MemoryContextSwitchTo(TopMemoryContext);
	known_stores = lappend(known_stores, store_key(conn, table));
	MemoryContextSwitchTo(old);
}

static void
raise_wrong_shape(const char *table_name, const char *problems)
{
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INCONSISTENT_DESCRIPTOR_INFORMATION),
			 errmsg("DynamoDB table \"%s\" does not have the event store layout", table_name),
			 errdetail("%s", problems),
			 errhint("An event store table is keyed on id (HASH) and created (RANGE), both strings, "
					 "with KEYS_ONLY global secondary indexes timeBucketIndex (timeBucket, created) "
					 "and causationIndex (causationId, created), and optionally streamIndex "
					 "(domain and identifier, sequence).")));
}

/*
 * Describe the table of the target, which must exist and have the
 * layout's shape.
 */
static void
describe_store(const AdminTarget *target, EsdTableInfo *info)
{
	char	   *problems;

	if (!esd_describe_table(&target->conn, target->table.table_name, info))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_TABLE_NOT_FOUND),
				 errmsg("DynamoDB table \"%s\" of foreign table \"%s\" does not exist",
						target->table.table_name, target->relname),
				 errhint("event_store_dynamo.init_store() creates it.")));
	problems = esd_table_shape_problems(info);
	if (problems)
		raise_wrong_shape(target->table.table_name, problems);
}

/*
 * The table behind the foreign table may have gained or lost an index:
 * plans cached for the foreign table are made again.
 */
static void
forget_plans(Oid relid)
{
	CacheInvalidateRelcacheByRelid(relid);
}

/*
 * Create the table when it is missing, check its shape when it is not,
 * wait until it is ACTIVE, and create the bucket when there is one and it
 * is missing.  Reports what was created, and whether the table has
 * streamIndex.
 */
static void
init_store_work(const EsdConnOptions *conn, const EsdTableOptions *table, Oid relid,
				bool *table_created, bool *bucket_created, bool *has_stream_index)
{
	EsdTableInfo info;
	bool		exists;
	char	   *problems;

	*table_created = false;
	*bucket_created = false;
	*has_stream_index = table->stream_index;

	exists = esd_describe_table(conn, table->table_name, &info);
	if (exists && strcmp(info.status, "DELETING") == 0)
	{
		esd_wait_for_table(conn, table->table_name, true);
		exists = false;
	}
	if (!exists)
	{
		check_store_change(relid, conn->userid,
						   psprintf("create DynamoDB table \"%s\"", table->table_name));
		*table_created = esd_create_table(conn, table);
		/* when someone else created it meanwhile, theirs is checked below */
		if (!*table_created)
			exists = esd_describe_table(conn, table->table_name, &info);
	}
	if (exists)
	{
		problems = esd_table_shape_problems(&info);
		if (problems)
			raise_wrong_shape(table->table_name, problems);
		*has_stream_index = esd_table_index(&info, ESD_STREAM_INDEX) != NULL;
	}
	if (!exists || !esd_table_ready(&info))
		esd_wait_for_table(conn, table->table_name, false);

	if (table->s3_bucket)
	{
		if (!may_change_store(relid, conn->userid) && !esd_bucket_exists(conn, table->s3_bucket))
			check_store_change(relid, conn->userid,
							   psprintf("create S3 bucket \"%s\"", table->s3_bucket));
		*bucket_created = esd_ensure_bucket(conn, table->s3_bucket);
	}

	remember_store(conn, table);
}

/*
 * Delete the table if it exists, wait until it is gone, create it again
 * and wait until it is ACTIVE; create the bucket if it is missing.  The
 * objects in the bucket are left alone, as the Node adapter leaves them.
 */
static void
reset_store_work(const EsdConnOptions *conn, const EsdTableOptions *table)
{
	EsdTableInfo info;

	if (esd_describe_table(conn, table->table_name, &info))
	{
		char	   *problems = esd_table_shape_problems(&info);

		/* never delete a table that is not an event store */
		if (problems)
			raise_wrong_shape(table->table_name, problems);
		if (strcmp(info.status, "DELETING") != 0)
		{
			/* DynamoDB refuses to delete a table still being created or updated */
			if (!esd_table_ready(&info))
				esd_wait_for_table(conn, table->table_name, false);
			(void) esd_delete_table(conn, table->table_name);
		}
		esd_wait_for_table(conn, table->table_name, true);
	}
	(void) esd_create_table(conn, table);
	esd_wait_for_table(conn, table->table_name, false);

	if (table->s3_bucket)
		(void) esd_ensure_bucket(conn, table->s3_bucket);

	remember_store(conn, table);
}

void
esd_ensure_store(const EsdConnOptions *conn, const EsdTableOptions *table, Oid relid)
{
	bool		table_created;
	bool		bucket_created;
	bool		has_stream_index;

	if (!table->auto_create || store_known(conn, table))
		return;
	init_store_work(conn, table, relid, &table_created, &bucket_created, &has_stream_index);
	if (table_created)
		ereport(NOTICE,
				(errmsg("created DynamoDB table \"%s\" for foreign table \"%s\"",
						table->table_name, get_rel_name(relid))));
}

/* ---- SQL functions ---- */

/*
 * reset_store(regclass) returns void: delete and recreate the DynamoDB
 * table, losing every event in it.
 */
Datum
esd_reset_store(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	AdminTarget target;

	refuse_in_transaction_block("reset_store");
	open_foreign_table(relid, true, AccessExclusiveLock);
	load_target(relid, &target);
	reset_store_work(&target.conn, &target.table);
	forget_plans(relid);
	esd_discard_appends(relid);
	PG_RETURN_VOID();
}

/*
 * init_store(regclass) returns text: create what is missing, check what
 * exists, and say which it was.  A table that exists without streamIndex
 * (the Node adapter's) is left as it is, with a notice saying how to add
 * it, unless the table option stream_index is false.
 */
Datum
esd_init_store(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	AdminTarget target;
	bool		table_created;
	bool		bucket_created;
	bool		has_stream_index;
	StringInfoData result;

	open_foreign_table(relid, true, AccessShareLock);
	load_target(relid, &target);
	init_store_work(&target.conn, &target.table, relid, &table_created, &bucket_created,
					&has_stream_index);
	if (table_created)
		forget_plans(relid);
	if (!has_stream_index && target.table.stream_index)
		ereport(NOTICE,
				(errmsg("DynamoDB table \"%s\" has no stream index", target.table.table_name),
				 errdetail("Reading one stream walks every month of the table."),
				 errhint("event_store_dynamo.add_stream_index() adds it.")));

	initStringInfo(&result);
	appendStringInfo(&result, "table \"%s\" %s", target.table.table_name,
					 table_created ? "created" : "exists");
	if (target.table.s3_bucket)
		appendStringInfo(&result, ", bucket \"%s\" %s", target.table.s3_bucket,
						 bucket_created ? "created" : "exists");
	PG_RETURN_TEXT_P(cstring_to_text(result.data));
}

/*
 * add_stream_index(regclass) returns text: add streamIndex to a table that
 * lacks it (as every table the Node adapter created does) and wait until
 * it is ACTIVE, that is until DynamoDB has indexed the events already in
 * the table.  Returns 'created', or 'exists' when the table has the index
 * already (after waiting for it when someone else is adding it).  A table
 * that is not the layout's, or whose streamIndex is keyed otherwise, is an
 * error naming the differences.
 */
Datum
esd_add_stream_index(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	AdminTarget target;
	EsdTableInfo info;
	const EsdIndexInfo *stream;
	bool		created = false;

	open_foreign_table(relid, true, AccessShareLock);
	load_target(relid, &target);
	describe_store(&target, &info);
	stream = esd_table_index(&info, ESD_STREAM_INDEX);

	/*
	 * DynamoDB takes one change of a table at a time: let a running one end,
	 * such as the removal of a streamIndex
	 */
	if ((stream == NULL || strcmp(stream->status, "DELETING") == 0) &&
		!esd_table_ready(&info))
	{
		esd_wait_for_table(&target.conn, target.table.table_name, false);
		describe_store(&target, &info);
		stream = esd_table_index(&info, ESD_STREAM_INDEX);
	}
	if (stream == NULL)
		created = esd_create_stream_index(&target.conn, &target.table, &info);

	/* the backfill: the index is CREATING until every event is in it */
	esd_wait_for_table(&target.conn, target.table.table_name, false);
	forget_plans(relid);
	PG_RETURN_TEXT_P(cstring_to_text(created ? "created" : "exists"));
}

/*
 * stream_version(regclass, domain text, identifier text) returns bigint:
 * the version of the stream head, 0 for a stream never written.  A NULL
 * identifier is the domain's stream without identifier.
 */
Datum
esd_stream_version(PG_FUNCTION_ARGS)
{
	Oid			relid;
	AdminTarget target;
	char	   *domain;
	char	   *identifier = NULL;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	relid = PG_GETARG_OID(0);
	domain = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (!PG_ARGISNULL(2))
		identifier = text_to_cstring(PG_GETARG_TEXT_PP(2));

	open_foreign_table(relid, false, AccessShareLock);
	load_target(relid, &target);
	PG_RETURN_INT64(esd_stream_head_version(&target.conn, target.table.table_name,
											domain, identifier));
}

/*
 * store_info(regclass): the table as DynamoDB describes it.  Columns:
 * table_name, table_status, item_count, size_bytes (both as DynamoDB
 * reports them, which it refreshes every few hours), billing_mode
 * (PROVISIONED or PAY_PER_REQUEST), read_capacity_units and
 * write_capacity_units (NULL when on demand), indexes (jsonb: index name
 * to IndexStatus, for every global secondary index).
 */
Datum
esd_store_info(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	AdminTarget target;
	EsdTableInfo info;
	TupleDesc	tupdesc;
	Datum		values[8];
	bool		nulls[8];
	StringInfoData indexes;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("function returning record called in context that cannot accept type record")));

	open_foreign_table(relid, false, AccessShareLock);
	load_target(relid, &target);
	if (!esd_describe_table(&target.conn, target.table.table_name, &info))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_TABLE_NOT_FOUND),
				 errmsg("DynamoDB table \"%s\" of foreign table \"%s\" does not exist",
						target.table.table_name, target.relname),
				 errhint("event_store_dynamo.init_store() creates it.")));

	initStringInfo(&indexes);
	appendStringInfoChar(&indexes, '{');
	for (int i = 0; i < info.nindexes; i++)
	{
		if (i > 0)
			appendStringInfoChar(&indexes, ',');
		escape_json(&indexes, info.indexes[i].name);
		appendStringInfoChar(&indexes, ':');
		escape_json(&indexes, info.indexes[i].status);
	}
	appendStringInfoChar(&indexes, '}');

	memset(nulls, 0, sizeof(nulls));
	values[0] = CStringGetTextDatum(info.name);
	values[1] = CStringGetTextDatum(info.status);
	values[2] = Int64GetDatum(info.item_count);
	values[3] = Int64GetDatum(info.size_bytes);
	values[4] = CStringGetTextDatum(info.on_demand ? "PAY_PER_REQUEST" : "PROVISIONED");
	values[5] = Int64GetDatum(info.read_capacity_units);
	values[6] = Int64GetDatum(info.write_capacity_units);
	nulls[5] = nulls[6] = info.on_demand;
	values[7] = DirectFunctionCall1(jsonb_in, CStringGetDatum(indexes.data));

	tupdesc = BlessTupleDesc(tupdesc);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* ---- IMPORT FOREIGN SCHEMA ---- */

static bool
import_wanted(ImportForeignSchemaStmt *stmt, const char *name)
{
	ListCell   *lc;

	if (stmt->list_type == FDW_IMPORT_SCHEMA_ALL)
		return true;
	foreach(lc, stmt->table_list)
	{
		RangeVar   *rv = (RangeVar *) lfirst(lc);

		if (strcmp(rv->relname, name) == 0)
			return stmt->list_type == FDW_IMPORT_SCHEMA_LIMIT_TO;
	}
	return stmt->list_type == FDW_IMPORT_SCHEMA_EXCEPT;
}

/*
 * IMPORT FOREIGN SCHEMA "<prefix>" FROM SERVER s INTO local: the remote
 * schema is the table name prefix, and the store is one table,
 * <prefix>schemeless-event-store, imported as "events" with the canonical
 * columns.  A prefix cannot be empty in SQL (a zero-length identifier),
 * so the full table name is accepted too: "schemeless-event-store" is the
 * store without prefix.  The table must exist and have the layout's
 * shape.  OPTIONS of the statement become options of the foreign table.
 */
List *
esd_import_foreign_schema(ImportForeignSchemaStmt *stmt, Oid serverOid)
{
	ForeignServer *server = GetForeignServer(serverOid);
	const char *remote = stmt->remote_schema;
	size_t		remote_len = strlen(remote);
	size_t		suffix_len = strlen(ESD_TABLE_SUFFIX);
	char	   *prefix;
	char	   *table_name;
	EsdConnOptions conn;
	EsdTableInfo info;
	char	   *problems;
	StringInfoData cmd;
	ListCell   *lc;

	if (!import_wanted(stmt, IMPORT_TABLE_NAME))
		return NIL;

	if (remote_len >= suffix_len &&
		strcmp(remote + remote_len - suffix_len, ESD_TABLE_SUFFIX) == 0)
		prefix = pnstrdup(remote, remote_len - suffix_len);
	else
		prefix = pstrdup(remote);
	table_name = psprintf("%s%s", prefix, ESD_TABLE_SUFFIX);

	for (const char *p = table_name; *p; p++)
		if (!isalnum((unsigned char) *p) && *p != '_' && *p != '-' && *p != '.')
			ereport(ERROR,
					(errcode(ERRCODE_FDW_SCHEMA_NOT_FOUND),
					 errmsg("\"%s\" is not a DynamoDB table name prefix", esd_shorten(remote)),
					 errhint("DynamoDB table names have 3 to 255 characters among a-z, A-Z, 0-9, '_', '-' and '.'.")));

	foreach(lc, stmt->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "table_name_prefix") == 0 ||
			strcmp(def->defname, "table_name") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("option \"%s\" cannot be given to IMPORT FOREIGN SCHEMA", def->defname),
					 errhint("The remote schema is the table name prefix.")));
	}

	esd_get_conn_options(serverOid, GetUserId(), &conn);
	if (!esd_describe_table(&conn, table_name, &info))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_TABLE_NOT_FOUND),
				 errmsg("DynamoDB table \"%s\" does not exist", table_name),
				 errdetail("IMPORT FOREIGN SCHEMA \"%s\" imports the event store table \"%s\".",
						   remote, table_name),
				 errhint("Check the prefix and the server's endpoint and region; "
						 "event_store_dynamo.init_store() creates a missing store.")));
	problems = esd_table_shape_problems(&info);
	if (problems)
		raise_wrong_shape(table_name, problems);

	initStringInfo(&cmd);
	appendStringInfo(&cmd, "CREATE FOREIGN TABLE %s (\n%s) SERVER %s\nOPTIONS (table_name_prefix %s",
					 quote_identifier(IMPORT_TABLE_NAME), import_columns,
					 quote_identifier(server->servername), quote_literal_cstr(prefix));
	foreach(lc, stmt->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		appendStringInfo(&cmd, ", %s %s", quote_identifier(def->defname),
						 quote_literal_cstr(defGetString(def)));
	}
	appendStringInfoString(&cmd, ")");

	return list_make1(cmd.data);
}

/* ---- TRUNCATE ---- */

/*
 * TRUNCATE resets the store behind each table, only when every table has
 * the option truncatable set and the user owns every one: all are checked
 * before any is reset.  Tables that point at the same DynamoDB table
 * reset it once.
 */
void
esd_exec_foreign_truncate(List *rels, DropBehavior behavior pg_attribute_unused(), bool restart_seqs pg_attribute_unused())
{
	List	   *targets = NIL;
	List	   *done = NIL;
	ListCell   *lc;

	foreach(lc, rels)
	{
		Relation	rel = (Relation) lfirst(lc);
		AdminTarget *target = palloc0(sizeof(AdminTarget));

		esd_get_table_options(RelationGetRelid(rel), &target->table);
		if (!target->table.truncatable)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("foreign table \"%s\" is not truncatable", RelationGetRelationName(rel)),
					 errdetail("TRUNCATE would delete DynamoDB table \"%s\" with every event in it and create it again.",
							   target->table.table_name),
					 errhint("Set the foreign table option truncatable to true to allow it.")));
		check_owner(RelationGetRelid(rel));
		check_store_change(RelationGetRelid(rel), GetUserId(),
						   psprintf("delete and recreate DynamoDB table \"%s\"", target->table.table_name));
		targets = lappend(targets, target);
	}
	refuse_in_transaction_block("TRUNCATE of an event store");

	foreach(lc, rels)
	{
		Relation	rel = (Relation) lfirst(lc);
		AdminTarget *target = list_nth(targets, foreach_current_index(lc));
		char	   *key;

		load_target(RelationGetRelid(rel), target);
		forget_plans(RelationGetRelid(rel));
		esd_discard_appends(RelationGetRelid(rel));
		key = store_key(&target->conn, &target->table);
		if (list_member(done, makeString(key)))
			continue;
		reset_store_work(&target->conn, &target->table);
		done = lappend(done, makeString(key));
	}
}
