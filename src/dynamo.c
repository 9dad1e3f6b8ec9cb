/*-------------------------------------------------------------------------
 *
 * dynamo.c
 *	  The DynamoDB requests of the event store layout: building their JSON
 *	  bodies and reading their answers.
 *
 * Values always travel as ExpressionAttributeValues and names as
 * ExpressionAttributeNames: nothing a user typed is ever spliced into an
 * expression.  Strings are escaped with PostgreSQL's escape_json.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <json-c/json.h>

#include "lib/stringinfo.h"
#include "utils/json.h"

#include "dynamo.h"

/*
 * Query one page of timeBucketIndex for a month bucket, ascending by
 * created, starting after start_key_json (the previous LastEvaluatedKey,
 * verbatim) when given.  limit 0 lets DynamoDB fill its 1 MB page.
 */
char *
dynamo_bucket_query_body(const char *table, const char *bucket, int limit,
						 const char *start_key_json)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"TableName\":");
	escape_json(&buf, table);
	appendStringInfoString(&buf, ",\"IndexName\":\"" ESD_TIME_BUCKET_INDEX "\""
						   ",\"KeyConditionExpression\":\"#b = :b\""
						   ",\"ExpressionAttributeNames\":{\"#b\":\"timeBucket\"}"
						   ",\"ExpressionAttributeValues\":{\":b\":{\"S\":");
	escape_json(&buf, bucket);
	appendStringInfoString(&buf, "}},\"ScanIndexForward\":true");
	if (limit > 0)
		appendStringInfo(&buf, ",\"Limit\":%d", limit);
	if (start_key_json)
		appendStringInfo(&buf, ",\"ExclusiveStartKey\":%s", start_key_json);
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/*
 * BatchGetItem for up to 100 keys of the event table.
 */
char *
dynamo_batch_get_body(const char *table, const EsdKey *keys, int nkeys,
					  bool consistent)
{
	StringInfoData buf;

	Assert(nkeys > 0 && nkeys <= 100);
	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"RequestItems\":{");
	escape_json(&buf, table);
	appendStringInfoString(&buf, ":{\"Keys\":[");
	for (int i = 0; i < nkeys; i++)
	{
		if (i > 0)
			appendStringInfoChar(&buf, ',');
		appendStringInfoString(&buf, "{\"id\":{\"S\":");
		escape_json(&buf, keys[i].id);
		appendStringInfoString(&buf, "},\"created\":{\"S\":");
		escape_json(&buf, keys[i].created);
		appendStringInfoString(&buf, "}}");
	}
	appendStringInfo(&buf, "]%s}}}", consistent ? ",\"ConsistentRead\":true" : "");
	return buf.data;
}

struct json_object *
dynamo_item_attr(struct json_object *item, const char *attr)
{
	json_object *v;

	if (item && json_object_object_get_ex(item, attr, &v) &&
		json_object_is_type(v, json_type_object))
		return v;
	return NULL;
}

const char *
dynamo_item_string(struct json_object *item, const char *attr)
{
	json_object *av = dynamo_item_attr(item, attr);
	json_object *s;

	if (av && json_object_object_get_ex(av, "S", &s) &&
		json_object_is_type(s, json_type_string))
		return json_object_get_string(s);
	return NULL;
}
