/*-------------------------------------------------------------------------
 *
 * store.c
 *	  The life cycle of an event store on AWS: describing, creating and
 *	  deleting its DynamoDB table and waiting for it, checking that the
 *	  table has the layout's shape, creating its S3 bucket, and reading a
 *	  stream head.
 *
 * The layout is the Node adapter's: key id (HASH) and created (RANGE), all
 * key attributes strings, and two KEYS_ONLY global secondary indexes,
 * timeBucketIndex (timeBucket, created) and causationIndex (causationId,
 * created).  One description of it, layout_indexes below, serves both the
 * CreateTable request and the shape check, so the two cannot disagree.
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
#include "store.h"

#define WAIT_FIRST_MS 100
#define WAIT_MAX_MS 500

/* A global secondary index of the layout. */
typedef struct LayoutIndex
{
	const char *name;
	const char *hash_key;
	const char *range_key;
} LayoutIndex;

static const LayoutIndex layout_indexes[] = {
	{ESD_TIME_BUCKET_INDEX, "timeBucket", "created"},
	{ESD_CAUSATION_INDEX, "causationId", "created"},
};

#define LAYOUT_NINDEXES lengthof(layout_indexes)
#define LAYOUT_HASH_KEY "id"
#define LAYOUT_RANGE_KEY "created"
#define LAYOUT_PROJECTION "KEYS_ONLY"

/* The attributes the layout defines, all strings, in the Node adapter's order. */
static const char *const layout_attrs[] = {"id", "timeBucket", "causationId", "created"};

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

/* The HASH and RANGE attributes of a KeySchema array. */
static void
read_key_schema(json_object *parent, char **hash_key, char **range_key)
{
	json_object *ks;

	*hash_key = NULL;
	*range_key = NULL;
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
			*hash_key = pstrdup(name);
		else if (strcmp(type, "RANGE") == 0)
			*range_key = pstrdup(name);
	}
}

static void
read_table_description(json_object *t, EsdTableInfo *info)
{
	json_object *v;
	const char *billing = NULL;

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
	read_key_schema(t, &info->hash_key, &info->range_key);

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
			read_key_schema(g, &idx->hash_key, &idx->range_key);
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

static const EsdIndexInfo *
find_index(const EsdTableInfo *info, const char *name)
{
	for (int i = 0; i < info->nindexes; i++)
		if (strcmp(info->indexes[i].name, name) == 0)
			return &info->indexes[i];
	return NULL;
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

	/* the types of the layout's key attributes that are defined */
	for (int i = 0; i < (int) lengthof(layout_attrs); i++)
		for (int j = 0; j < info->nattrs; j++)
			if (strcmp(info->attrs[j].name, layout_attrs[i]) == 0 &&
				(info->attrs[j].type == NULL || strcmp(info->attrs[j].type, "S") != 0))
				appendStringInfo(&out, "%sAttribute \"%s\" has type %s, expected S.",
								 out.len ? " " : "", layout_attrs[i],
								 info->attrs[j].type ? info->attrs[j].type : "(none)");

	/* both indexes: present, keyed and projected as the layout says */
	for (int i = 0; i < (int) LAYOUT_NINDEXES; i++)
	{
		const LayoutIndex *want = &layout_indexes[i];
		const EsdIndexInfo *idx = find_index(info, want->name);

		if (idx == NULL)
		{
			appendStringInfo(&out, "%sGlobal secondary index \"%s\" is missing.",
							 out.len ? " " : "", want->name);
			continue;
		}
		if (idx->hash_key == NULL || strcmp(idx->hash_key, want->hash_key) != 0)
			appendStringInfo(&out, "%sIndex \"%s\" has partition key \"%s\", expected \"%s\".",
							 out.len ? " " : "", want->name,
							 idx->hash_key ? idx->hash_key : "(none)", want->hash_key);
		if (idx->range_key == NULL)
			appendStringInfo(&out, "%sIndex \"%s\" has no sort key, expected \"%s\".",
							 out.len ? " " : "", want->name, want->range_key);
		else if (strcmp(idx->range_key, want->range_key) != 0)
			appendStringInfo(&out, "%sIndex \"%s\" has sort key \"%s\", expected \"%s\".",
							 out.len ? " " : "", want->name, idx->range_key, want->range_key);
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

static void
append_key_schema(StringInfo buf, const char *hash_key, const char *range_key)
{
	appendStringInfoString(buf, "\"KeySchema\":[{\"AttributeName\":");
	escape_json(buf, hash_key);
	appendStringInfoString(buf, ",\"KeyType\":\"HASH\"},{\"AttributeName\":");
	escape_json(buf, range_key);
	appendStringInfoString(buf, ",\"KeyType\":\"RANGE\"}]");
}

static char *
create_table_body(const EsdTableOptions *table)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"TableName\":");
	escape_json(&buf, table->table_name);

	appendStringInfoString(&buf, ",\"AttributeDefinitions\":[");
	for (int i = 0; i < (int) lengthof(layout_attrs); i++)
	{
		appendStringInfoString(&buf, i > 0 ? ",{\"AttributeName\":" : "{\"AttributeName\":");
		escape_json(&buf, layout_attrs[i]);
		appendStringInfoString(&buf, ",\"AttributeType\":\"S\"}");
	}
	appendStringInfoString(&buf, "],");
	append_key_schema(&buf, LAYOUT_HASH_KEY, LAYOUT_RANGE_KEY);

	appendStringInfoString(&buf, ",\"GlobalSecondaryIndexes\":[");
	for (int i = 0; i < (int) LAYOUT_NINDEXES; i++)
	{
		appendStringInfoString(&buf, i > 0 ? ",{\"IndexName\":" : "{\"IndexName\":");
		escape_json(&buf, layout_indexes[i].name);
		appendStringInfoChar(&buf, ',');
		append_key_schema(&buf, layout_indexes[i].hash_key, layout_indexes[i].range_key);
		appendStringInfoString(&buf, ",\"Projection\":{\"ProjectionType\":\"" LAYOUT_PROJECTION "\"}");
		if (!table->on_demand)
			append_throughput(&buf, table);
		appendStringInfoChar(&buf, '}');
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
		const EsdIndexInfo *idx = find_index(info, layout_indexes[i].name);

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
		const EsdIndexInfo *idx = find_index(info, layout_indexes[i].name);

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
	AwsCall		call;
	StringInfoData buf;
	char	   *head_id;
	json_object *item;
	json_object *version;
	json_object *n;
	const char *text;
	char	   *end;
	int64		result;

	head_id = psprintf("%s%s::%s::%s", ESD_ID_PREFIX, ESD_HEAD_CREATED, domain,
					   identifier ? identifier : "");

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"TableName\":");
	escape_json(&buf, table);
	appendStringInfoString(&buf, ",\"Key\":{\"id\":{\"S\":");
	escape_json(&buf, head_id);
	appendStringInfoString(&buf, "},\"created\":{\"S\":\"" ESD_HEAD_CREATED "\"}}"
						   ",\"ConsistentRead\":true"
						   ",\"ProjectionExpression\":\"#v\""
						   ",\"ExpressionAttributeNames\":{\"#v\":\"version\"}}");

	aws_dynamodb_init(&call, conn, "GetItem", table, buf.data);
	aws_execute_one(conn, &call, NULL);

	if (!json_object_object_get_ex(call.json, "Item", &item) ||
		(version = dynamo_item_attr(item, "version")) == NULL)
		return 0;

	if (!json_object_object_get_ex(version, "N", &n) ||
		!json_object_is_type(n, json_type_string))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
				 errmsg("stream head \"%s\" of table \"%s\" has a version that is not a number",
						head_id, table)));
	text = json_object_get_string(n);
	errno = 0;
	result = strtoi64(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || result < 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("stream head \"%s\" of table \"%s\" has version \"%s\", not a count of events",
						head_id, table, text)));
	return result;
}
