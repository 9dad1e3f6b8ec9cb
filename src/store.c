/*-------------------------------------------------------------------------
 *
 * store.c
 *	  The life cycle of an event store on AWS: describing, creating and
 *	  deleting its DynamoDB table and waiting for it, checking that the
 *	  table has the layout's shape, adding the stream index to a table
 *	  that lacks it, creating its S3 bucket, and reading a stream head.
 *
 * The layout is the Node adapter's: key id (HASH) and created (RANGE), all
 * key attributes strings, and two KEYS_ONLY global secondary indexes,
 * timeBucketIndex (timeBucket, created) and causationIndex (causationId,
 * created).  The extension adds a third, streamIndex, for reading a stream
 * without walking every month: KEYS_ONLY, partitioned on domain and
 * identifier together (a multi-attribute partition key), sorted on
 * sequence (a number).  It indexes the items as the Node adapter writes
 * them; stream heads, which have none of the three attributes, and events
 * without identifier stay out of it.  DynamoDB takes no empty string as
 * an index key: with the index, an event whose domain or identifier is ''
 * cannot be written (by the Node adapter either), and one written before
 * the index was added is left out of it.  The Node adapter does not create
 * the index, so a table without it still has the layout: the scan then
 * walks.  One description of the layout, layout_indexes and layout_attrs
 * below, serves the CreateTable and UpdateTable requests and the shape
 * check, so they cannot disagree.
 *
 * DynamoDB creates and deletes tables asynchronously: CreateTable answers
 * while the table is CREATING and DeleteTable while it is DELETING.  The
 * waits poll DescribeTable with a growing interval (100 ms up to 500 ms),
 * sleep on the latch so that a cancel or statement_timeout ends them, and
 * give up after ESD_STORE_WAIT_SECONDS with the last state seen.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <json-c/json.h>

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "aws.h"
#include "dynamo.h"
#include "scheduler.h"
#include "store.h"

#define WAIT_FIRST_MS 100
#define WAIT_MAX_MS 500

#define LAYOUT_MAX_HASH_KEYS 2

/*
 * A global secondary index of the layout.  A partition key of several
 * attributes lists them all; unused slots are NULL.
 */
typedef struct LayoutIndex
{
	const char *name;
	const char *hash_keys[LAYOUT_MAX_HASH_KEYS];
	const char *range_key;
	bool		optional;		/* created unless the table option stream_index
								 * is false; a table without it has the layout */
} LayoutIndex;

static const LayoutIndex layout_indexes[] = {
	{ESD_TIME_BUCKET_INDEX, {"timeBucket"}, "created", false},
	{ESD_CAUSATION_INDEX, {"causationId"}, "created", false},
	{ESD_STREAM_INDEX, {"domain", "identifier"}, "sequence", true},
};

#define LAYOUT_NINDEXES lengthof(layout_indexes)
#define LAYOUT_HASH_KEY "id"
#define LAYOUT_RANGE_KEY "created"
#define LAYOUT_PROJECTION "KEYS_ONLY"

/* A key attribute of the layout and its type. */
typedef struct LayoutAttr
{
	const char *name;
	const char *type;			/* S or N */
} LayoutAttr;

/* In the Node adapter's order, then those only streamIndex uses. */
static const LayoutAttr layout_attrs[] = {
	{"id", "S"},
	{"timeBucket", "S"},
	{"causationId", "S"},
	{"created", "S"},
	{"domain", "S"},
	{"identifier", "S"},
	{"sequence", "N"},
};

static const LayoutIndex *
layout_index(const char *name)
{
	for (int i = 0; i < (int) LAYOUT_NINDEXES; i++)
		if (strcmp(layout_indexes[i].name, name) == 0)
			return &layout_indexes[i];
	return NULL;
}

/* Is the attribute part of the index's key? */
static bool
index_uses(const LayoutIndex *index, const char *attr)
{
	for (int k = 0; k < LAYOUT_MAX_HASH_KEYS && index->hash_keys[k]; k++)
		if (strcmp(index->hash_keys[k], attr) == 0)
			return true;
	return strcmp(index->range_key, attr) == 0;
}

/* ---- reading DescribeTable ---- */

static const char *
json_string_field(json_object *obj, const char *field)
{
	json_object *v;

	if (obj && json_object_object_get_ex(obj, field, &v) &&
		json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return NULL;
}

static int64
json_int_field(json_object *obj, const char *field)
{
	json_object *v;

	if (obj && json_object_object_get_ex(obj, field, &v) &&
		(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
		return (int64) json_object_get_int64(v);
	return 0;
}

static char *
pstrdup_or_null(const char *s)
{
	return s ? pstrdup(s) : NULL;
}

/*
 * The HASH and RANGE attributes of a KeySchema array, in its order: an
 * index may have several of each (multi-attribute keys).
 */
static void
read_key_schema(json_object *parent, List **hash_keys, List **range_keys)
{
	json_object *ks;

	*hash_keys = NIL;
	*range_keys = NIL;
	if (!json_object_object_get_ex(parent, "KeySchema", &ks) ||
		!json_object_is_type(ks, json_type_array))
		return;
	for (size_t i = 0; i < json_object_array_length(ks); i++)
	{
		json_object *k = json_object_array_get_idx(ks, i);
		const char *name = json_string_field(k, "AttributeName");
		const char *type = json_string_field(k, "KeyType");

		if (name == NULL || type == NULL)
			continue;
		if (strcmp(type, "HASH") == 0)
			*hash_keys = lappend(*hash_keys, pstrdup(name));
		else if (strcmp(type, "RANGE") == 0)
			*range_keys = lappend(*range_keys, pstrdup(name));
	}
}

static void
read_table_description(json_object *t, EsdTableInfo *info)
{
	json_object *v;
	const char *billing = NULL;
	List	   *hash_keys;
	List	   *range_keys;

	memset(info, 0, sizeof(*info));
	info->name = pstrdup_or_null(json_string_field(t, "TableName"));
	info->status = pstrdup_or_null(json_string_field(t, "TableStatus"));
	if (info->status == NULL)
		info->status = pstrdup("UNKNOWN");
	info->item_count = json_int_field(t, "ItemCount");
	info->size_bytes = json_int_field(t, "TableSizeBytes");
	if (json_object_object_get_ex(t, "BillingModeSummary", &v))
		billing = json_string_field(v, "BillingMode");
	info->on_demand = billing != NULL && strcmp(billing, "PAY_PER_REQUEST") == 0;
	if (json_object_object_get_ex(t, "ProvisionedThroughput", &v))
	{
		info->read_capacity_units = json_int_field(v, "ReadCapacityUnits");
		info->write_capacity_units = json_int_field(v, "WriteCapacityUnits");
	}
	/* a table's key has one attribute of each kind */
	read_key_schema(t, &hash_keys, &range_keys);
	info->hash_key = hash_keys != NIL ? linitial(hash_keys) : NULL;
	info->range_key = range_keys != NIL ? linitial(range_keys) : NULL;

	if (json_object_object_get_ex(t, "AttributeDefinitions", &v) &&
		json_object_is_type(v, json_type_array))
	{
		size_t		n = json_object_array_length(v);

		info->attrs = palloc0(sizeof(EsdAttrInfo) * Max(n, 1));
		for (size_t i = 0; i < n; i++)
		{
			json_object *a = json_object_array_get_idx(v, i);
			const char *name = json_string_field(a, "AttributeName");

			if (name == NULL)
				continue;
			info->attrs[info->nattrs].name = pstrdup(name);
			info->attrs[info->nattrs].type = pstrdup_or_null(json_string_field(a, "AttributeType"));
			info->nattrs++;
		}
	}

	if (json_object_object_get_ex(t, "StreamSpecification", &v) &&
		json_object_is_type(v, json_type_object))
	{
		json_object *enabled;

		if (json_object_object_get_ex(v, "StreamEnabled", &enabled) &&
			json_object_is_type(enabled, json_type_boolean))
			info->stream_enabled = json_object_get_boolean(enabled);
		info->stream_view_type = pstrdup_or_null(json_string_field(v, "StreamViewType"));
	}
	info->latest_stream_arn = pstrdup_or_null(json_string_field(t, "LatestStreamArn"));

	if (json_object_object_get_ex(t, "GlobalSecondaryIndexes", &v) &&
		json_object_is_type(v, json_type_array))
	{
		size_t		n = json_object_array_length(v);

		info->indexes = palloc0(sizeof(EsdIndexInfo) * Max(n, 1));
		for (size_t i = 0; i < n; i++)
		{
			json_object *g = json_object_array_get_idx(v, i);
			EsdIndexInfo *idx = &info->indexes[info->nindexes];
			json_object *p;
			const char *name = json_string_field(g, "IndexName");

			if (name == NULL)
				continue;
			idx->name = pstrdup(name);
			idx->status = pstrdup_or_null(json_string_field(g, "IndexStatus"));
			if (idx->status == NULL)
				idx->status = pstrdup("UNKNOWN");
			read_key_schema(g, &idx->hash_keys, &idx->range_keys);
			if (json_object_object_get_ex(g, "Projection", &p))
				idx->projection = pstrdup_or_null(json_string_field(p, "ProjectionType"));
			info->nindexes++;
		}
	}
}

static char *
table_name_body(const char *table)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"TableName\":");
	escape_json(&buf, table);
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/* Run one call without raising; the caller looks at the outcome. */
static void
execute_quietly(const EsdConnOptions *conn, AwsCall *call)
{
	AwsCall    *calls[1] = {call};

	aws_execute(conn, calls, 1, NULL, false);
}

static bool
failed_with(const AwsCall *call, const char *error_type)
{
	return call->failed && call->error_type != NULL &&
		strcmp(call->error_type, error_type) == 0;
}

bool
esd_describe_table(const EsdConnOptions *conn, const char *table, EsdTableInfo *info)
{
	AwsCall		call;
	json_object *t;

	aws_dynamodb_init(&call, conn, "DescribeTable", table, table_name_body(table));
	execute_quietly(conn, &call);
	if (failed_with(&call, "ResourceNotFoundException"))
		return false;
	if (call.failed)
		aws_raise(&call);

	if (!json_object_object_get_ex(call.json, "Table", &t) ||
		!json_object_is_type(t, json_type_object))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("DynamoDB DescribeTable on table \"%s\" answered without a table description",
						table)));
	read_table_description(t, info);
	if (info->name == NULL)
		info->name = pstrdup(table);
	return true;
}

/* ---- the shape check ---- */

const EsdIndexInfo *
esd_table_index(const EsdTableInfo *info, const char *name)
{
	for (int i = 0; i < info->nindexes; i++)
		if (strcmp(info->indexes[i].name, name) == 0)
			return &info->indexes[i];
	return NULL;
}

/* The layout index's partition key attributes as a list. */
static List *
layout_hash_keys(const LayoutIndex *index)
{
	List	   *keys = NIL;

	for (int k = 0; k < LAYOUT_MAX_HASH_KEYS && index->hash_keys[k]; k++)
		keys = lappend(keys, (char *) index->hash_keys[k]);
	return keys;
}

/*
 * Do two lists name the same attributes?  The order of a partition key's
 * attributes does not matter to a Query, which gives each of them.
 */
static bool
same_attrs(List *a, List *b)
{
	ListCell   *lc;

	if (list_length(a) != list_length(b))
		return false;
	foreach(lc, a)
	{
		bool		found = false;
		ListCell   *lc2;

		foreach(lc2, b)
			if (strcmp((char *) lfirst(lc), (char *) lfirst(lc2)) == 0)
				found = true;
		if (!found)
			return false;
	}
	return true;
}

/* "name" for one attribute, ("a", "b") for several, "(none)" for none */
static char *
format_attrs(List *attrs)
{
	StringInfoData buf;
	ListCell   *lc;

	if (attrs == NIL)
		return "\"(none)\"";
	initStringInfo(&buf);
	if (list_length(attrs) > 1)
		appendStringInfoChar(&buf, '(');
	foreach(lc, attrs)
		appendStringInfo(&buf, "%s\"%s\"", foreach_current_index(lc) > 0 ? ", " : "",
						 (char *) lfirst(lc));
	if (list_length(attrs) > 1)
		appendStringInfoChar(&buf, ')');
	return buf.data;
}

/*
 * Must the attribute, when defined, have the layout's type?  When the
 * table's key or an index of the layout it has uses it.
 */
static bool
attr_type_matters(const EsdTableInfo *info, const char *attr)
{
	if (strcmp(attr, LAYOUT_HASH_KEY) == 0 || strcmp(attr, LAYOUT_RANGE_KEY) == 0)
		return true;
	for (int i = 0; i < (int) LAYOUT_NINDEXES; i++)
		if (index_uses(&layout_indexes[i], attr) &&
			(!layout_indexes[i].optional || esd_table_index(info, layout_indexes[i].name)))
			return true;
	return false;
}

char *
esd_table_shape_problems(const EsdTableInfo *info)
{
	StringInfoData out;

	initStringInfo(&out);

	/* the table's key */
	if (info->hash_key == NULL || strcmp(info->hash_key, LAYOUT_HASH_KEY) != 0)
		appendStringInfo(&out, "%sThe partition key is \"%s\", expected \"%s\".",
						 out.len ? " " : "", info->hash_key ? info->hash_key : "(none)",
						 LAYOUT_HASH_KEY);
	if (info->range_key == NULL)
		appendStringInfo(&out, "%sThe table has no sort key, expected \"%s\".",
						 out.len ? " " : "", LAYOUT_RANGE_KEY);
	else if (strcmp(info->range_key, LAYOUT_RANGE_KEY) != 0)
		appendStringInfo(&out, "%sThe sort key is \"%s\", expected \"%s\".",
						 out.len ? " " : "", info->range_key, LAYOUT_RANGE_KEY);

	/* the types of the key attributes the layout uses that are defined */
	for (int i = 0; i < (int) lengthof(layout_attrs); i++)
		for (int j = 0; j < info->nattrs; j++)
			if (strcmp(info->attrs[j].name, layout_attrs[i].name) == 0 &&
				(info->attrs[j].type == NULL ||
				 strcmp(info->attrs[j].type, layout_attrs[i].type) != 0) &&
				attr_type_matters(info, layout_attrs[i].name))
				appendStringInfo(&out, "%sAttribute \"%s\" has type %s, expected %s.",
								 out.len ? " " : "", layout_attrs[i].name,
								 info->attrs[j].type ? info->attrs[j].type : "(none)",
								 layout_attrs[i].type);

	/*
	 * The indexes: present (streamIndex may be missing), keyed and
	 * projected as the layout says
	 */
	for (int i = 0; i < (int) LAYOUT_NINDEXES; i++)
	{
		const LayoutIndex *want = &layout_indexes[i];
		const EsdIndexInfo *idx = esd_table_index(info, want->name);
		List	   *want_hash = layout_hash_keys(want);

		if (idx == NULL)
		{
			if (!want->optional)
				appendStringInfo(&out, "%sGlobal secondary index \"%s\" is missing.",
								 out.len ? " " : "", want->name);
			continue;
		}
		if (!same_attrs(idx->hash_keys, want_hash))
			appendStringInfo(&out, "%sIndex \"%s\" has partition key %s, expected %s.",
							 out.len ? " " : "", want->name,
							 format_attrs(idx->hash_keys), format_attrs(want_hash));
		if (idx->range_keys == NIL)
			appendStringInfo(&out, "%sIndex \"%s\" has no sort key, expected \"%s\".",
							 out.len ? " " : "", want->name, want->range_key);
		else if (list_length(idx->range_keys) != 1 ||
				 strcmp(linitial(idx->range_keys), want->range_key) != 0)
			appendStringInfo(&out, "%sIndex \"%s\" has sort key %s, expected \"%s\".",
							 out.len ? " " : "", want->name,
							 format_attrs(idx->range_keys), want->range_key);
		if (idx->projection == NULL || strcmp(idx->projection, LAYOUT_PROJECTION) != 0)
			appendStringInfo(&out, "%sIndex \"%s\" projects %s, expected %s.",
							 out.len ? " " : "", want->name,
							 idx->projection ? idx->projection : "(nothing)", LAYOUT_PROJECTION);
	}

	if (out.len == 0)
	{
		pfree(out.data);
		return NULL;
	}
	return out.data;
}

/* ---- creation and deletion ---- */

static void
append_throughput(StringInfo buf, const EsdTableOptions *table)
{
	appendStringInfo(buf, ",\"ProvisionedThroughput\":{\"ReadCapacityUnits\":%d,\"WriteCapacityUnits\":%d}",
					 table->read_capacity_units, table->write_capacity_units);
}

/* "KeySchema": every partition key attribute (HASH), then the sort key (RANGE) */
static void
append_key_schema(StringInfo buf, const char *const *hash_keys, int nhash_keys,
				  const char *range_key)
{
	appendStringInfoString(buf, "\"KeySchema\":[");
	for (int k = 0; k < nhash_keys && hash_keys[k]; k++)
	{
		appendStringInfoString(buf, k > 0 ? ",{\"AttributeName\":" : "{\"AttributeName\":");
		escape_json(buf, hash_keys[k]);
		appendStringInfoString(buf, ",\"KeyType\":\"HASH\"}");
	}
	appendStringInfoString(buf, ",{\"AttributeName\":");
	escape_json(buf, range_key);
	appendStringInfoString(buf, ",\"KeyType\":\"RANGE\"}]");
}

/*
 * "AttributeDefinitions": DynamoDB wants exactly the attributes the keys
 * being created use, those of the table's own key when with_table_key.
 */
static void
append_attribute_definitions(StringInfo buf, bool with_table_key,
							 const LayoutIndex *const *indexes, int nindexes)
{
	bool		first = true;

	appendStringInfoString(buf, "\"AttributeDefinitions\":[");
	for (int i = 0; i < (int) lengthof(layout_attrs); i++)
	{
		const char *attr = layout_attrs[i].name;
		bool		used = with_table_key &&
			(strcmp(attr, LAYOUT_HASH_KEY) == 0 || strcmp(attr, LAYOUT_RANGE_KEY) == 0);

		for (int j = 0; j < nindexes && !used; j++)
			used = index_uses(indexes[j], attr);
		if (!used)
			continue;
		appendStringInfoString(buf, first ? "{\"AttributeName\":" : ",{\"AttributeName\":");
		escape_json(buf, attr);
		appendStringInfo(buf, ",\"AttributeType\":\"%s\"}", layout_attrs[i].type);
		first = false;
	}
	appendStringInfoChar(buf, ']');
}

/* One index as CreateTable and UpdateTable's Create take it. */
static void
append_index(StringInfo buf, const LayoutIndex *index, const EsdTableOptions *table,
			 bool on_demand)
{
	appendStringInfoString(buf, "{\"IndexName\":");
	escape_json(buf, index->name);
	appendStringInfoChar(buf, ',');
	append_key_schema(buf, index->hash_keys, LAYOUT_MAX_HASH_KEYS, index->range_key);
	appendStringInfoString(buf, ",\"Projection\":{\"ProjectionType\":\"" LAYOUT_PROJECTION "\"}");
	if (!on_demand)
		append_throughput(buf, table);
	appendStringInfoChar(buf, '}');
}

static char *
create_table_body(const EsdTableOptions *table)
{
	StringInfoData buf;
	const LayoutIndex *indexes[LAYOUT_NINDEXES];
	int			nindexes = 0;
	const char *table_key = LAYOUT_HASH_KEY;

	for (int i = 0; i < (int) LAYOUT_NINDEXES; i++)
		if (!layout_indexes[i].optional || table->stream_index)
			indexes[nindexes++] = &layout_indexes[i];

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"TableName\":");
	escape_json(&buf, table->table_name);
	appendStringInfoChar(&buf, ',');
	append_attribute_definitions(&buf, true, indexes, nindexes);
	appendStringInfoChar(&buf, ',');
	append_key_schema(&buf, &table_key, 1, LAYOUT_RANGE_KEY);

	appendStringInfoString(&buf, ",\"GlobalSecondaryIndexes\":[");
	for (int i = 0; i < nindexes; i++)
	{
		if (i > 0)
			appendStringInfoChar(&buf, ',');
		append_index(&buf, indexes[i], table, table->on_demand);
	}
	appendStringInfoChar(&buf, ']');

	if (table->on_demand)
		appendStringInfoString(&buf, ",\"BillingMode\":\"PAY_PER_REQUEST\"");
	else
		append_throughput(&buf, table);
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

bool
esd_create_table(const EsdConnOptions *conn, const EsdTableOptions *table)
{
	AwsCall		call;

	aws_dynamodb_init(&call, conn, "CreateTable", table->table_name, create_table_body(table));
	execute_quietly(conn, &call);
	if (failed_with(&call, "ResourceInUseException"))
		return false;
	if (call.failed)
		aws_raise(&call);
	return true;
}

static char *
stream_index_update_body(const EsdTableOptions *table, const EsdTableInfo *info)
{
	StringInfoData buf;
	const LayoutIndex *stream = layout_index(ESD_STREAM_INDEX);

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"TableName\":");
	escape_json(&buf, table->table_name);
	appendStringInfoChar(&buf, ',');
	append_attribute_definitions(&buf, false, &stream, 1);
	appendStringInfoString(&buf, ",\"GlobalSecondaryIndexUpdates\":[{\"Create\":");
	/* an index is billed as its table is, whatever the options say */
	append_index(&buf, stream, table, info->on_demand);
	appendStringInfoString(&buf, "}]}");
	return buf.data;
}

bool
esd_create_stream_index(const EsdConnOptions *conn, const EsdTableOptions *table,
						const EsdTableInfo *info)
{
	AwsCall		call;

	aws_dynamodb_init(&call, conn, "UpdateTable", table->table_name,
					  stream_index_update_body(table, info));
	execute_quietly(conn, &call);
	if (call.failed)
	{
		EsdTableInfo now;

		/* lost a race with someone adding it: theirs will do */
		if (esd_describe_table(conn, table->table_name, &now) &&
			esd_table_index(&now, ESD_STREAM_INDEX) != NULL)
			return false;
		aws_raise(&call);
	}
	return true;
}

bool
esd_delete_table(const EsdConnOptions *conn, const char *table)
{
	AwsCall		call;

	aws_dynamodb_init(&call, conn, "DeleteTable", table, table_name_body(table));
	execute_quietly(conn, &call);
	if (failed_with(&call, "ResourceNotFoundException"))
		return false;
	if (call.failed)
		aws_raise(&call);
	return true;
}

/* ---- waiting ---- */

bool
esd_table_ready(const EsdTableInfo *info)
{
	if (strcmp(info->status, "ACTIVE") != 0)
		return false;
	for (int i = 0; i < (int) LAYOUT_NINDEXES; i++)
	{
		const EsdIndexInfo *idx = esd_table_index(info, layout_indexes[i].name);

		if (idx != NULL && strcmp(idx->status, "ACTIVE") != 0)
			return false;
	}
	return true;
}

/* "table CREATING, index timeBucketIndex CREATING, ..." for messages */
static char *
describe_state(const EsdTableInfo *info)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "table %s", info->status);
	for (int i = 0; i < (int) LAYOUT_NINDEXES; i++)
	{
		const EsdIndexInfo *idx = esd_table_index(info, layout_indexes[i].name);

		if (idx != NULL)
			appendStringInfo(&buf, ", index %s %s", idx->name, idx->status);
	}
	return buf.data;
}

void
esd_wait_for_table(const EsdConnOptions *conn, const char *table, bool until_gone)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   ESD_STORE_WAIT_SECONDS * 1000);
	MemoryContext outer = CurrentMemoryContext;
	MemoryContext poll_cxt = AllocSetContextCreate(CurrentMemoryContext,
												   "event_store_dynamo table wait",
												   ALLOCSET_SMALL_SIZES);
	char	   *last_state = NULL;
	long		interval = WAIT_FIRST_MS;

	for (;;)
	{
		EsdTableInfo info;
		bool		exists;
		bool		done;

		MemoryContextReset(poll_cxt);
		MemoryContextSwitchTo(poll_cxt);
		exists = esd_describe_table(conn, table, &info);
		if (until_gone)
			done = !exists;
		else
		{
			if (!exists)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_TABLE_NOT_FOUND),
						 errmsg("DynamoDB table \"%s\" disappeared while waiting for it to become ACTIVE",
								table)));
			if (strcmp(info.status, "DELETING") == 0)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("DynamoDB table \"%s\" is being deleted", table)));
			done = esd_table_ready(&info);
		}
		MemoryContextSwitchTo(outer);
		if (done)
			break;

		if (last_state)
			pfree(last_state);
		last_state = pstrdup(describe_state(&info));

		if (GetCurrentTimestamp() >= deadline)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("timed out waiting for DynamoDB table \"%s\" to %s",
							table, until_gone ? "be deleted" : "become ACTIVE"),
					 errdetail("After %d seconds: %s.", ESD_STORE_WAIT_SECONDS, last_state)));

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 interval, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		interval = Min(interval * 2, WAIT_MAX_MS);
	}
	MemoryContextDelete(poll_cxt);
	if (last_state)
		pfree(last_state);
}

/* ---- the bucket ---- */

bool
esd_bucket_exists(const EsdConnOptions *conn, const char *bucket)
{
	AwsCall		call;

	aws_s3_init(&call, conn, "HeadBucket", "HEAD", bucket, NULL, NULL, 0);
	execute_quietly(conn, &call);
	if (!call.failed)
		return true;
	if (call.status != 404)
		aws_raise(&call);
	return false;
}

bool
esd_ensure_bucket(const EsdConnOptions *conn, const char *bucket)
{
	AwsCall		call;
	char	   *body = NULL;

	aws_s3_init(&call, conn, "HeadBucket", "HEAD", bucket, NULL, NULL, 0);
	execute_quietly(conn, &call);
	if (!call.failed)
		return false;
	if (call.status != 404)
		aws_raise(&call);

	/* outside us-east-1, S3 wants the region in the request */
	if (strcmp(conn->region, "us-east-1") != 0)
		body = psprintf("<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
						"<LocationConstraint>%s</LocationConstraint></CreateBucketConfiguration>",
						conn->region);
	aws_s3_init(&call, conn, "CreateBucket", "PUT", bucket, NULL, body, body ? strlen(body) : 0);
	execute_quietly(conn, &call);
	if (failed_with(&call, "BucketAlreadyOwnedByYou"))
		return false;
	if (call.failed)
		aws_raise(&call);
	return true;
}

/* ---- stream heads ---- */

int64
esd_stream_head_version(const EsdConnOptions *conn, const char *table,
						const char *domain, const char *identifier)
{
	return dynamo_read_head(conn, table,
							psprintf("%s::%s", domain, identifier ? identifier : ""));
}
