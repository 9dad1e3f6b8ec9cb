/*-------------------------------------------------------------------------
 *
 * scan.c
 *	  The replay pipeline: walk month buckets on timeBucketIndex, hydrate
 *	  the keys with BatchGetItem, resolve S3 references, in created order.
 *
 * A page is one Query answer of the GSI (KEYS_ONLY, so keys only).  Its
 * keys are hydrated with concurrent BatchGetItem calls of at most 100 keys,
 * UnprocessedKeys are sent again after a backoff, and the offloaded events
 * of the page are fetched from S3 concurrently.  Everything a page holds
 * lives in a memory context that is reset when the next page is read, so
 * memory is bounded by a page, not by the table.  Never a table Scan.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <json-c/json.h>

#include "common/pg_prng.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "access/xact.h"
#include "utils/datetime.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "dynamo.h"
#include "scan.h"

void
esd_bucket_range(const EsdTableOptions *table, char ***buckets, int *nbuckets)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			last;
	int			first = table->start_year * 12 + (table->start_month - 1);
	int			n;

	if (timestamp2tm(GetCurrentTransactionStartTimestamp(), NULL, &tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	last = tm.tm_year * 12 + (tm.tm_mon - 1) + table->lookahead_months;
	n = Max(0, last - first + 1);
	*buckets = palloc(sizeof(char *) * Max(n, 1));
	for (int i = 0; i < n; i++)
		(*buckets)[i] = psprintf("%04d-%02d", (first + i) / 12, (first + i) % 12 + 1);
	*nbuckets = n;
}

EsdWalk *
esd_walk_begin(const EsdConnOptions *conn, const EsdTableOptions *table,
			   const char **attrs, int nattrs, MemoryContext parent)
{
	EsdWalk    *walk = palloc0(sizeof(EsdWalk));

	walk->conn = conn;
	walk->table = table;
	walk->attrs = attrs;
	walk->nattrs = nattrs;
	esd_bucket_range(table, &walk->buckets, &walk->nbuckets);
	walk->page_cxt = AllocSetContextCreate(parent, "event_store_dynamo page",
										   ALLOCSET_DEFAULT_SIZES);
	return walk;
}

void
esd_walk_rewind(EsdWalk *walk)
{
	MemoryContextReset(walk->page_cxt);
	walk->bucket = 0;
	walk->start_key = NULL;
	walk->bucket_started = false;
	walk->events = NULL;
	walk->nevents = walk->next = 0;
}

void
esd_walk_end(EsdWalk *walk)
{
	MemoryContextDelete(walk->page_cxt);
}

/*
 * Does the query need the S3 body of this offloaded event?  Only when a
 * column it reads is not in the item itself (payload, in practice).
 */
static bool
needs_body(EsdWalk *walk, json_object *item)
{
	for (int i = 0; i < walk->nattrs; i++)
		if (strcmp(walk->attrs[i], "sequence") != 0 &&
			strcmp(walk->attrs[i], "s3Reference") != 0 &&
			dynamo_item_attr(item, walk->attrs[i]) == NULL)
			return true;
	return false;
}

/*
 * Fetch the S3 bodies of the offloaded events of a page, concurrently.
 */
static void
resolve_offloaded(EsdWalk *walk, EsdEvent *events, int nevents)
{
	AwsCall   **calls = palloc(sizeof(AwsCall *) * Max(nevents, 1));
	int		   *which = palloc(sizeof(int) * Max(nevents, 1));
	int			ncalls = 0;

	for (int i = 0; i < nevents; i++)
	{
		const char *ref = dynamo_item_string(events[i].item, "s3Reference");
		const char *sep;

		if (ref == NULL || !needs_body(walk, events[i].item))
			continue;
		sep = strstr(ref, "::");
		if (sep == NULL || sep == ref || sep[2] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
					 errmsg("invalid s3Reference in item \"%s\" of table \"%s\"",
							events[i].id, walk->table->table_name),
					 errdetail("The value is \"%s\"; expected \"<bucket>::<key>\".", ref)));
		calls[ncalls] = palloc(sizeof(AwsCall));
		aws_s3_get_init(calls[ncalls], walk->conn, pnstrdup(ref, sep - ref), sep + 2);
		which[ncalls++] = i;
	}
	if (ncalls == 0)
		return;

	aws_execute(walk->conn, calls, ncalls, &walk->stats, true);

	for (int c = 0; c < ncalls; c++)
	{
		EsdEvent   *ev = &events[which[c]];
		json_object *body = aws_json_parse(calls[c]->response.data, calls[c]->response.len);
		json_object *idv;

		if (body == NULL || !json_object_is_type(body, json_type_object))
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
					 errmsg("S3 object \"%s\" of item \"%s\" is not a JSON object",
							calls[c]->resource, ev->id)));
		if (json_object_object_get_ex(body, "id", &idv) &&
			json_object_is_type(idv, json_type_string))
		{
			const char *bid = json_object_get_string(idv);
			const char *iid = ev->id + (strncmp(ev->id, ESD_ID_PREFIX, strlen(ESD_ID_PREFIX)) == 0
										? strlen(ESD_ID_PREFIX) : 0);

			if (strncmp(bid, ESD_ID_PREFIX, strlen(ESD_ID_PREFIX)) == 0)
				bid += strlen(ESD_ID_PREFIX);
			if (strcmp(bid, iid) != 0)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("S3 object \"%s\" holds event \"%s\", not item \"%s\"",
								calls[c]->resource, bid, ev->id)));
		}
		ev->body = body;
		pfree(calls[c]->response.data);
	}
}

/*
 * Read the next non-empty page of the walk into page_cxt.  Returns false
 * when every bucket has been read.
 */
static bool
read_page(EsdWalk *walk)
{
	MemoryContext old;

	MemoryContextReset(walk->page_cxt);
	walk->events = NULL;
	walk->nevents = walk->next = 0;

	old = MemoryContextSwitchTo(walk->page_cxt);
	while (walk->bucket < walk->nbuckets)
	{
		AwsCall		call;
		json_object *items,
				   *lek;
		EsdKey	   *keys;
		int			nkeys = 0;
		size_t		n;
		HTAB	   *found;

		CHECK_FOR_INTERRUPTS();

		aws_dynamodb_init(&call, walk->conn, "Query", walk->table->table_name,
						  dynamo_bucket_query_body(walk->table->table_name,
												   walk->buckets[walk->bucket],
												   walk->table->page_size,
												   walk->start_key));
		aws_execute_one(walk->conn, &call, &walk->stats);

		/* where the next page of this bucket starts, kept past the reset */
		if (walk->start_key)
			pfree(walk->start_key);
		walk->start_key = NULL;
		if (json_object_object_get_ex(call.json, "LastEvaluatedKey", &lek))
			walk->start_key = MemoryContextStrdup(GetMemoryChunkContext(walk),
												  json_object_to_json_string_ext(lek, JSON_C_TO_STRING_PLAIN));
		else
			walk->bucket++;

		if (!json_object_object_get_ex(call.json, "Items", &items) ||
			!json_object_is_type(items, json_type_array))
			continue;
		n = json_object_array_length(items);
		keys = palloc(sizeof(EsdKey) * Max(n, 1));
		for (size_t i = 0; i < n; i++)
		{
			json_object *k = json_object_array_get_idx(items, i);
			const char *id = dynamo_item_string(k, "id");
			const char *created = dynamo_item_string(k, "created");

			/* stream heads have no timeBucket; never let one through */
			if (id == NULL || created == NULL || strcmp(created, ESD_HEAD_CREATED) == 0)
				continue;
			keys[nkeys].id = id;
			keys[nkeys].created = created;
			nkeys++;
		}
		if (nkeys == 0)
			continue;

		found = dynamo_batch_get(walk->conn, walk->table->table_name, keys, nkeys,
								 false, &walk->stats);
		walk->events = palloc(sizeof(EsdEvent) * nkeys);
		for (int i = 0; i < nkeys; i++)
		{
			json_object *item = dynamo_batch_get_find(found, keys[i].id, keys[i].created);

			if (item == NULL)
			{
				ereport(WARNING,
						(errcode(ERRCODE_WARNING),
						 errmsg("event \"%s\" created %s is in timeBucketIndex of table \"%s\" but not in the table",
								keys[i].id, keys[i].created, walk->table->table_name),
						 errdetail("The item was deleted after the index was read.")));
				continue;
			}
			walk->events[walk->nevents].item = item;
			walk->events[walk->nevents].body = NULL;
			walk->events[walk->nevents].id = keys[i].id;
			walk->nevents++;
		}
		resolve_offloaded(walk, walk->events, walk->nevents);
		if (walk->nevents > 0)
			break;
	}
	MemoryContextSwitchTo(old);
	return walk->nevents > 0;
}

EsdEvent *
esd_walk_next(EsdWalk *walk)
{
	if (walk->next >= walk->nevents && !read_page(walk))
		return NULL;
	return &walk->events[walk->next++];
}
