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

#include "common/hashfn.h"
#include "common/pg_prng.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/timestamp.h"

#include "aws.h"
#include "codec.h"
#include "dynamo.h"
#include "scheduler.h"

#define BATCH_GET_MAX_KEYS 100

/*
 * BatchGetItem for up to 100 keys of the event table.
 */
char *
dynamo_projection(const char **attrs, int nattrs)
{
	StringInfoData expr;
	StringInfoData names;
	StringInfoData out;
	const char *always[] = {"id", "created", "s3Reference"};
	int			n = 0;

	if (attrs == NULL)
		return NULL;
	initStringInfo(&expr);
	initStringInfo(&names);
	for (int i = 0; i < nattrs + (int) lengthof(always); i++)
	{
		const char *a = i < nattrs ? attrs[i] : always[i - nattrs];
		bool		dup = false;

		for (int j = 0; j < i && !dup; j++)
			dup = strcmp(a, j < nattrs ? attrs[j] : always[j - nattrs]) == 0;
		if (dup)
			continue;
		appendStringInfo(&expr, "%s#p%d", n > 0 ? ", " : "", n);
		appendStringInfo(&names, "%s\"#p%d\":", n > 0 ? "," : "", n);
		escape_json(&names, a);
		n++;
	}
	initStringInfo(&out);
	appendStringInfo(&out, "\"ProjectionExpression\":\"%s\",\"ExpressionAttributeNames\":{%s}",
					 expr.data, names.data);
	return out.data;
}

char *
dynamo_batch_get_body(const char *table, const EsdKey *keys, int nkeys,
					  bool consistent, const char *projection)
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
	appendStringInfo(&buf, "]%s%s%s}},\"ReturnConsumedCapacity\":\"TOTAL\"}",
					 consistent ? ",\"ConsistentRead\":true" : "",
					 projection ? "," : "", projection ? projection : "");
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

char *
dynamo_jsonb_to_av_text(Jsonb *jb)
{
	json_object *av = codec_jsonb_to_av(jb);
	char	   *text;

	text = pstrdup(json_object_to_json_string_ext(av, JSON_C_TO_STRING_PLAIN |
												  JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(av);
	return text;
}

/*
 * A hydrated item, found by its whole key: ids and stream names can be as
 * long as DynamoDB allows (2048 bytes), so the key is never cut short.
 * The strings belong to the item's JSON, which lives as long as the table.
 */
typedef struct HydratedEntry
{
	EsdKey		key;			/* hash key: must be first */
	json_object *item;
} HydratedEntry;

static uint32
hydrated_key_hash(const void *key, Size keysize pg_attribute_unused())
{
	const EsdKey *k = key;

	return hash_combine(hash_bytes((const unsigned char *) k->id, strlen(k->id)),
						hash_bytes((const unsigned char *) k->created, strlen(k->created)));
}

static int
hydrated_key_match(const void *a, const void *b, Size keysize pg_attribute_unused())
{
	const EsdKey *x = a;
	const EsdKey *y = b;

	return (strcmp(x->id, y->id) == 0 && strcmp(x->created, y->created) == 0) ? 0 : 1;
}

static HydratedEntry *
hydrated_lookup(HTAB *found, const char *id, const char *created, HASHACTION action)
{
	EsdKey		key = {id, created};
	bool		had;
	HydratedEntry *e = hash_search(found, &key, action, &had);

	if (e != NULL && action == HASH_ENTER && !had)
		e->key = key;
	return e;
}

/*
 * Fetch the full items of keys[0..nkeys) into a hash table keyed by
 * id and created, with concurrent BatchGetItem calls of at most 100 keys.  Keys that stay unprocessed are re-sent after a backoff;
 * keys missing from an eventually consistent answer are asked once more
 * with a consistent read.
 */
/* Submit one round of BatchGetItem calls for job->keys, after a backoff when it is a retry. */
static void
batch_get_submit(DynamoBatchGet *job)
{
	TimestampTz due = 0;

	if (job->round > 0)
		due = GetCurrentTimestamp() + (TimestampTz) aws_backoff_ms(job->conn, job->round) * 1000;
	job->ncalls = (job->nkeys + BATCH_GET_MAX_KEYS - 1) / BATCH_GET_MAX_KEYS;
	job->calls = palloc(sizeof(AwsCall *) * Max(job->ncalls, 1));
	for (int c = 0; c < job->ncalls; c++)
	{
		int			first = c * BATCH_GET_MAX_KEYS;
		int			n = Min(BATCH_GET_MAX_KEYS, job->nkeys - first);

		job->calls[c] = palloc(sizeof(AwsCall));
		aws_dynamodb_init(job->calls[c], job->conn, "BatchGetItem", job->table,
						  dynamo_batch_get_body(job->table, job->keys + first,
												n, job->consistent, job->projection));
		job->calls[c]->due = due;
		aws_submit(job->conn, job->calls[c], job->stats);
	}
}

void
dynamo_batch_get_start(DynamoBatchGet *job, const EsdConnOptions *conn, const char *table,
					   const EsdKey *keys, int nkeys, bool consistent,
					   const char *projection, AwsStats *stats)
{
	HASHCTL		ctl;

	memset(job, 0, sizeof(*job));
	job->conn = conn;
	job->table = table;
	job->projection = projection;
	job->stats = stats;
	job->all_keys = keys;
	job->nall = nkeys;
	job->keys = (EsdKey *) keys;
	job->nkeys = nkeys;
	job->consistent = consistent;
	job->second_look = consistent;

	ctl.keysize = sizeof(EsdKey);
	ctl.entrysize = sizeof(HydratedEntry);
	ctl.hash = hydrated_key_hash;
	ctl.match = hydrated_key_match;
	ctl.hcxt = CurrentMemoryContext;
	job->found = hash_create("event_store_dynamo hydrated items", Max(nkeys, 16), &ctl,
							 HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
	if (nkeys == 0)
		job->finished = true;
	else
		batch_get_submit(job);
}

/*
 * Once the round's calls are done: keep what they found, and send the keys
 * that came back unprocessed again (after a backoff), or, once, the keys
 * that neither came back nor were unprocessed, with a consistent read.
 * Returns true when the job is finished; raises a call's failure.
 */
bool
dynamo_batch_get_advance(DynamoBatchGet *job)
{
	EsdKey	   *retry;
	int			nretry = 0;

	if (job->finished)
		return true;
	if (!aws_all_done(job->calls, job->ncalls))
		return false;

	/* a round's unprocessed keys, or the second look's: never more than all of them */
	retry = palloc(sizeof(EsdKey) * job->nall);
	for (int c = 0; c < job->ncalls; c++)
	{
		json_object *responses,
				   *items,
				   *unprocessed,
				   *table_keys,
				   *ukeys;

		if (job->calls[c]->failed)
			aws_raise(job->calls[c]);
		if (json_object_object_get_ex(job->calls[c]->json, "Responses", &responses) &&
			json_object_object_get_ex(responses, job->table, &items) &&
			json_object_is_type(items, json_type_array))
		{
			size_t		n = json_object_array_length(items);

			for (size_t i = 0; i < n; i++)
			{
				json_object *item = json_object_array_get_idx(items, i);
				const char *id = dynamo_item_string(item, "id");
				const char *created = dynamo_item_string(item, "created");
				HydratedEntry *e;

				if (id == NULL || created == NULL)
					continue;
				e = hydrated_lookup(job->found, id, created, HASH_ENTER);
				e->item = item;
			}
		}
		if (json_object_object_get_ex(job->calls[c]->json, "UnprocessedKeys", &unprocessed) &&
			json_object_object_get_ex(unprocessed, job->table, &table_keys) &&
			json_object_object_get_ex(table_keys, "Keys", &ukeys) &&
			json_object_is_type(ukeys, json_type_array))
		{
			size_t		n = json_object_array_length(ukeys);

			for (size_t i = 0; i < n && nretry < job->nall; i++)
			{
				json_object *k = json_object_array_get_idx(ukeys, i);
				const char *id = dynamo_item_string(k, "id");
				const char *created = dynamo_item_string(k, "created");

				if (id && created)
				{
					retry[nretry].id = id;
					retry[nretry].created = created;
					nretry++;
				}
			}
		}
	}

	if (nretry > 0)
		job->round++;
	else if (!job->second_look)
	{
		/* keys neither returned nor unprocessed: ask once, consistently */
		for (int i = 0; i < job->nall && nretry < job->nall; i++)
			if (hydrated_lookup(job->found, job->all_keys[i].id, job->all_keys[i].created,
								HASH_FIND) == NULL)
				retry[nretry++] = job->all_keys[i];
		job->consistent = job->second_look = true;
		job->round = 0;
	}
	if (nretry == 0)
	{
		job->finished = true;
		return true;
	}
	job->keys = retry;
	job->nkeys = nretry;
	batch_get_submit(job);
	return false;
}

void
dynamo_batch_get_cancel(DynamoBatchGet *job)
{
	for (int c = 0; c < job->ncalls; c++)
		aws_cancel(job->calls[c]);
}

HTAB *
dynamo_batch_get(const EsdConnOptions *conn, const char *table, const EsdKey *keys,
				 int nkeys, bool consistent, const char *projection, AwsStats *stats)
{
	DynamoBatchGet job;

	dynamo_batch_get_start(&job, conn, table, keys, nkeys, consistent, projection, stats);
	PG_TRY();
	{
		while (!dynamo_batch_get_advance(&job))
			aws_pump(1000);
	}
	PG_CATCH();
	{
		dynamo_batch_get_cancel(&job);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return job.found;
}

json_object *
dynamo_batch_get_find(HTAB *found, const char *id, const char *created)
{
	HydratedEntry *e = hydrated_lookup(found, id, created, HASH_FIND);

	return e ? e->item : NULL;
}

int64
dynamo_head_version(struct json_object *item, const char *stream, const char *table)
{
	json_object *av = dynamo_item_attr(item, "version");
	json_object *n;
	char	   *end;
	int64		v;

	if (av == NULL)
		return 0;
	if (!json_object_object_get_ex(av, "N", &n) || !json_object_is_type(n, json_type_string))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
				 errmsg("stream head of \"%s\" in table \"%s\" has a version that is not a number",
						esd_shorten(stream), table)));
	errno = 0;
	v = strtoll(json_object_get_string(n), &end, 10);
	if (errno != 0 || *end != '\0' || v < 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
				 errmsg("stream head of \"%s\" in table \"%s\" has an invalid version \"%s\"",
						esd_shorten(stream), table, esd_shorten(json_object_get_string(n)))));
	return v;
}

char *
dynamo_item_id_of(const char *item_json)
{
	json_object *item = aws_json_parse(item_json, strlen(item_json));
	const char *id = dynamo_item_string(item, "id");

	return pstrdup(id ? id : "");
}

char *
dynamo_head_id(const char *stream)
{
	return psprintf("%sHEAD::%s", ESD_ID_PREFIX, stream);
}

int64
dynamo_read_head(const EsdConnOptions *conn, const char *table, const char *stream)
{
	AwsCall		call;
	StringInfoData body;
	json_object *item;

	initStringInfo(&body);
	appendStringInfoString(&body, "{\"TableName\":");
	escape_json(&body, table);
	appendStringInfoString(&body, ",\"Key\":{\"id\":{\"S\":");
	escape_json(&body, dynamo_head_id(stream));
	appendStringInfoString(&body, "},\"created\":{\"S\":\"" ESD_HEAD_CREATED "\"}},"
						   "\"ConsistentRead\":true,\"ProjectionExpression\":\"#v\","
						   "\"ExpressionAttributeNames\":{\"#v\":\"version\"}}");
	aws_dynamodb_init(&call, conn, "GetItem", table, body.data);
	aws_execute_one(conn, &call, NULL);

	if (!json_object_object_get_ex(call.json, "Item", &item))
		return 0;
	return dynamo_head_version(item, stream, table);
}

char *
dynamo_id_exists_body(const char *table, const char *item_id)
{
	StringInfoData body;

	initStringInfo(&body);
	appendStringInfoString(&body, "{\"TableName\":");
	escape_json(&body, table);
	/* created < "HEAD": a stream head whose id looks like the event's is not an event */
	appendStringInfoString(&body, ",\"KeyConditionExpression\":\"#i = :i AND #c < :head\","
						   "\"ExpressionAttributeNames\":{\"#i\":\"id\",\"#c\":\"created\"},"
						   "\"ExpressionAttributeValues\":{\":i\":{\"S\":");
	escape_json(&body, item_id);
	appendStringInfoString(&body, "},\":head\":{\"S\":\"" ESD_HEAD_CREATED "\"}},"
						   "\"ConsistentRead\":true,\"Limit\":1,\"ProjectionExpression\":\"#i\"}");
	return body.data;
}
