/*-------------------------------------------------------------------------
 *
 * scan.c
 *	  The read pipeline: Query the index the access path names, hydrate the
 *	  keys with BatchGetItem, resolve S3 references, in order.
 *
 * The access path (plan.c) becomes a list of partitions, each one paged
 * Query: a month bucket of timeBucketIndex (the walk, in created order,
 * or backwards), the stream of streamIndex (in sequence order), a causation
 * id of causationIndex, or an id on the table itself.  Ids and causation
 * ids are few: their partitions are read at once, concurrently, and sorted
 * by created.  A page is one Query answer; indexes are KEYS_ONLY, so its
 * keys are hydrated with concurrent BatchGetItem calls of at most 100
 * keys, UnprocessedKeys are sent again after a backoff, and the offloaded
 * events of the page are fetched from S3 concurrently, only when the query
 * needs a column the item lacks.  The first page of a scan is small (so
 * that LIMIT 10 costs two requests), later ones large.  Everything a page
 * holds lives in a memory context reset when the next page is read, so
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

#include "clock.h"
#include "codec.h"
#include "dynamo.h"
#include "scan.h"
#include "scheduler.h"
#include "utils/json.h"

void
esd_bucket_range(const EsdTableOptions *table, char ***buckets, int *nbuckets)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			last;
	int			first = table->start_year * 12 + (table->start_month - 1);
	int			n;

	if (timestamp2tm(esd_transaction_now(), NULL, &tm, &fsec, NULL, NULL) != 0)
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


#define FIRST_PAGE_LIMIT 100
#define PAGE_LIMIT 500
#define COLLECTED_PAGE 100

/*
 * Pages under way at once, at most: keys alone are small, hydrated pages
 * hold whole events (memory stays bounded by these pages).
 */
#define MAX_AHEAD_KEYS 16
#define MAX_AHEAD_EVENTS 4

typedef enum PageState
{
	PAGE_QUERYING,				/* the Query is under way */
	PAGE_KEYS,					/* answered: hydrated when its events are needed */
	PAGE_HYDRATING,				/* BatchGetItem under way */
	PAGE_RESOLVING,				/* S3 GetObject under way */
	PAGE_READY
} PageState;

/* A page: one Query answer and what it takes to turn it into events. */
typedef struct EsdPage
{
	struct EsdPage *next;
	MemoryContext cxt;			/* everything of the page; deleted once returned */
	int			part;
	PageState	state;
	AwsCall		query;
	char	   *next_key;		/* LastEvaluatedKey, when there is one */
	bool		successor_asked;
	bool		continuation;	/* not the first page of its partition */
	EsdKey	   *keys;
	json_object **key_items;
	int			nkeys;
	DynamoBatchGet get;
	AwsCall   **s3;
	int		   *s3_which;
	int			ns3;
	EsdEvent   *events;
	int			nevents;
} EsdPage;

EsdWalk *
esd_walk_begin(const EsdConnOptions *conn, const EsdTableOptions *table,
			   const char **attrs, int nattrs, MemoryContext parent)
{
	EsdWalk    *walk = palloc0(sizeof(EsdWalk));

	walk->conn = conn;
	walk->table = table;
	walk->attrs = attrs;
	walk->nattrs = nattrs;
	{
		/* the attributes that order events sharing a millisecond are always read */
		const char **with_order = palloc(sizeof(char *) * (nattrs + 3));

		memcpy(with_order, attrs, sizeof(char *) * nattrs);
		with_order[nattrs] = "domain";
		with_order[nattrs + 1] = "identifier";
		with_order[nattrs + 2] = "sequence";
		walk->projection = dynamo_projection(with_order, nattrs + 3);
	}
	walk->scan_cxt = AllocSetContextCreate(parent, "event_store_dynamo scan",
										   ALLOCSET_DEFAULT_SIZES);
	return walk;
}

/* Drop a page: its requests still under way, and its memory. */
static void
drop_page(EsdPage *page)
{
	aws_cancel(&page->query);
	if (page->state == PAGE_HYDRATING)
		dynamo_batch_get_cancel(&page->get);
	for (int i = 0; i < page->ns3; i++)
		aws_cancel(page->s3[i]);
	MemoryContextDelete(page->cxt);
}

/* Drop the held pages older than keep (all of them when keep is NULL). */
static void
drop_held(EsdWalk *walk, EsdPage *keep)
{
	while (walk->held && walk->held != keep)
	{
		EsdPage    *next = walk->held->next;

		drop_page(walk->held);
		walk->held = next;
	}
}

static void
drop_pages(EsdWalk *walk)
{
	EsdPage    *page = walk->pages;

	while (page)
	{
		EsdPage    *next = page->next;

		drop_page(page);
		page = next;
	}
	if (walk->current)
		drop_page(walk->current);
	drop_held(walk, NULL);
	walk->pages = walk->current = NULL;
	walk->npages = walk->next = 0;
	walk->out = walk->carry = NULL;
	walk->nout = walk->ncarry = 0;
	walk->carry_page = NULL;
}

void
esd_walk_rewind(EsdWalk *walk)
{
	drop_pages(walk);
	MemoryContextReset(walk->scan_cxt);
	walk->parts = NULL;
	walk->nparts = walk->parts_started = walk->parts_read = 0;
	walk->returned = 0;
	walk->target = walk->hint;
	walk->empties = 0;
	walk->pages_done = 0;
	walk->pages_early = 0;
	walk->collected = false;
	walk->stream_walked = false;
	walk->stream_index_gone = false;
	walk->pending = NULL;
	walk->npending = walk->next_pending = 0;
}

void
esd_walk_end(EsdWalk *walk)
{
	drop_pages(walk);
	MemoryContextDelete(walk->scan_cxt);
}

/* JSON text of a string */
static char *
jstr(const char *s)
{
	StringInfoData b;

	initStringInfo(&b);
	escape_json(&b, s);
	return b.data;
}

/*
 * Append the created range as a key condition: " AND #c BETWEEN :lo AND :hi"
 * and its names and values.
 */
static void
add_created_condition(const EsdBounds *b, StringInfo cond, StringInfo names,
					  StringInfo values)
{
	if (b->created_lo == NULL && b->created_hi == NULL)
		return;
	appendStringInfoString(names, ",\"#c\":\"created\"");
	if (b->created_lo && b->created_hi)
	{
		appendStringInfoString(cond, " AND #c BETWEEN :lo AND :hi");
		appendStringInfo(values, ",\":lo\":{\"S\":%s},\":hi\":{\"S\":%s}",
						 jstr(b->created_lo), jstr(b->created_hi));
	}
	else if (b->created_lo)
	{
		appendStringInfoString(cond, " AND #c >= :lo");
		appendStringInfo(values, ",\":lo\":{\"S\":%s}", jstr(b->created_lo));
	}
	else
	{
		appendStringInfoString(cond, " AND #c <= :hi");
		appendStringInfo(values, ",\":hi\":{\"S\":%s}", jstr(b->created_hi));
	}
}

/* A partition "<name> = <value>", with the created range when asked. */
static void
make_partition(EsdPartition *p, const char *index, const char *attr,
			   const char *value, const EsdBounds *b, bool with_created)
{
	StringInfoData cond,
				names,
				values;

	initStringInfo(&cond);
	initStringInfo(&names);
	initStringInfo(&values);
	appendStringInfoString(&cond, "#k = :k");
	appendStringInfo(&names, "{\"#k\":%s", jstr(attr));
	appendStringInfo(&values, "{\":k\":{\"S\":%s}", jstr(value));
	if (with_created)
		add_created_condition(b, &cond, &names, &values);
	appendStringInfoChar(&names, '}');
	appendStringInfoChar(&values, '}');
	p->index = index;
	p->key_condition = cond.data;
	p->names = names.data;
	p->values = values.data;
	p->label = pstrdup(value);
}

static bool
bucket_listed(List *buckets, const char *bucket)
{
	ListCell   *lc;

	foreach(lc, buckets)
		if (strcmp(lfirst(lc), bucket) == 0)
			return true;
	return false;
}

/*
 * Is a month inside what the bounds allow?  Months outside the created
 * range, the time_bucket range or the listed buckets are skipped.
 */
bool
esd_bucket_wanted(const EsdBounds *b, const char *bucket)
{
	int			cmp;

	if (b->empty ||
		(b->created_lo && strncmp(bucket, b->created_lo, 7) < 0) ||
		(b->created_hi && strncmp(bucket, b->created_hi, 7) > 0) ||
		(b->buckets && !bucket_listed(b->buckets, bucket)))
		return false;
	if (b->bucket_lo && ((cmp = strcmp(bucket, b->bucket_lo)) < 0 || (cmp == 0 && b->bucket_lo_strict)))
		return false;
	if (b->bucket_hi && ((cmp = strcmp(bucket, b->bucket_hi)) > 0 || (cmp == 0 && b->bucket_hi_strict)))
		return false;
	return true;
}

/*
 * Does the index the access path reads hold every attribute the rows need?
 * A KEYS_ONLY index holds the table's keys and its own: then count(*) or
 * a query on id and created needs no BatchGetItem at all.
 */
static bool
keys_suffice(EsdWalk *walk)
{
	static const char *const walk_keys[] = {"id", "created", "timeBucket", NULL};
	static const char *const causation_keys[] = {"id", "created", "causationId", NULL};
	static const char *const stream_keys[] = {"id", "created", "domain", "identifier", "sequence", NULL};
	const char *const *keys;

	switch (walk->access)
	{
		case ESD_ACCESS_WALK:
			keys = walk_keys;
			break;
		case ESD_ACCESS_CAUSATION:
			keys = causation_keys;
			break;
		case ESD_ACCESS_STREAM:
			keys = stream_keys;
			break;
		default:
			return false;		/* a Query on the table has the whole items */
	}
	for (int i = 0; i < walk->nattrs; i++)
	{
		bool		found = false;

		for (int k = 0; keys[k] && !found; k++)
			found = strcmp(walk->attrs[i], keys[k]) == 0;
		if (!found)
			return false;
	}
	return true;
}

/*
 * Turn the access path and its bounds into the partitions to Query.
 */
void
esd_walk_plan(EsdWalk *walk, EsdAccess access, bool descending, const EsdBounds *bounds)
{
	MemoryContext old = MemoryContextSwitchTo(walk->scan_cxt);
	const EsdBounds *b = &walk->bounds;
	ListCell   *lc;
	int			n = 0;

	/* DynamoDB keeps empty strings out of indexes: such a stream is walked */
	if (access == ESD_ACCESS_STREAM && !bounds->empty &&
		(bounds->domain == NULL || bounds->domain[0] == '\0' ||
		 bounds->identifier == NULL || bounds->identifier[0] == '\0'))
	{
		EsdBounds	walk_bounds;

		memset(&walk_bounds, 0, sizeof(walk_bounds));
		MemoryContextSwitchTo(old);
		esd_walk_plan(walk, ESD_ACCESS_WALK, descending, &walk_bounds);
		return;
	}

	walk->access = access;
	walk->descending = descending && (access == ESD_ACCESS_WALK || access == ESD_ACCESS_STREAM);
	walk->bounds = *bounds;

	/*
	 * Lookups see what the walk sees: events from start_month through the
	 * look-ahead, so that every access path gives the same answer.
	 */
	if (access != ESD_ACCESS_WALK)
	{
		char	  **range;
		int			nrange;
		char	   *lo;
		char	   *hi;

		esd_bucket_range(walk->table, &range, &nrange);
		if (nrange == 0)
			walk->bounds.empty = true;
		else
		{
			lo = psprintf("%s-01T00:00:00.000Z", range[0]);
			hi = psprintf("%s-99", range[nrange - 1]);
			if (b->created_lo == NULL || strcmp(lo, b->created_lo) > 0)
				walk->bounds.created_lo = lo;
			if (b->created_hi == NULL || strcmp(hi, b->created_hi) < 0)
				walk->bounds.created_hi = hi;
		}
	}

	if (b->empty)
	{
		MemoryContextSwitchTo(old);
		return;
	}

	switch (access)
	{
		case ESD_ACCESS_WALK:
			{
				char	  **buckets;
				int			nbuckets;

				esd_bucket_range(walk->table, &buckets, &nbuckets);
				walk->parts = palloc0(sizeof(EsdPartition) * Max(nbuckets, 1));
				for (int i = 0; i < nbuckets; i++)
				{
					const char *bucket = buckets[descending ? nbuckets - 1 - i : i];

					if (!esd_bucket_wanted(b, bucket))
						continue;
					make_partition(&walk->parts[n++], ESD_TIME_BUCKET_INDEX, "timeBucket",
								   bucket, b, true);
				}
				break;
			}
		case ESD_ACCESS_STREAM:
			{
				StringInfoData cond,
							names,
							values;

				if (b->identifier == NULL)
					break;
				initStringInfo(&cond);
				initStringInfo(&names);
				initStringInfo(&values);
				appendStringInfoString(&cond, "#d = :d AND #i = :i");
				appendStringInfoString(&names, "{\"#d\":\"domain\",\"#i\":\"identifier\"");
				appendStringInfo(&values, "{\":d\":{\"S\":%s},\":i\":{\"S\":%s}",
								 jstr(b->domain), jstr(b->identifier));
				if (b->seq_lo > 1 || b->seq_hi < PG_INT64_MAX)
				{
					appendStringInfoString(&cond, " AND #s BETWEEN :lo AND :hi");
					appendStringInfoString(&names, ",\"#s\":\"sequence\"");
					appendStringInfo(&values, ",\":lo\":{\"N\":\"" INT64_FORMAT "\"},\":hi\":{\"N\":\"" INT64_FORMAT "\"}",
									 b->seq_lo, b->seq_hi);
				}
				appendStringInfoChar(&names, '}');
				appendStringInfoChar(&values, '}');
				walk->parts = palloc0(sizeof(EsdPartition));
				walk->parts[0].index = ESD_STREAM_INDEX;
				walk->parts[0].key_condition = cond.data;
				walk->parts[0].names = names.data;
				walk->parts[0].values = values.data;
				walk->parts[0].label = psprintf("%s::%s", b->domain, b->identifier);
				n = 1;
				break;
			}
		case ESD_ACCESS_CAUSATION:
			walk->parts = palloc0(sizeof(EsdPartition) * Max(list_length(b->causations), 1));
			foreach(lc, b->causations)
				make_partition(&walk->parts[n++], ESD_CAUSATION_INDEX, "causationId",
							   lfirst(lc), b, true);
			break;
		case ESD_ACCESS_ID:
			walk->parts = palloc0(sizeof(EsdPartition) * Max(list_length(b->ids), 1));
			foreach(lc, b->ids)
			{
				make_partition(&walk->parts[n], NULL, "id",
							   psprintf("%s%s", ESD_ID_PREFIX, (char *) lfirst(lc)), b, true);
				walk->parts[n++].label = lfirst(lc);
			}
			break;
	}
	walk->nparts = n;
	walk->keys_suffice = keys_suffice(walk);
	MemoryContextSwitchTo(old);
}

static char *
query_body(EsdWalk *walk, EsdPartition *p, int limit, const char *start_key)
{
	StringInfoData body;

	initStringInfo(&body);
	appendStringInfoString(&body, "{\"TableName\":");
	escape_json(&body, walk->table->table_name);
	if (p->index)
		appendStringInfo(&body, ",\"IndexName\":%s", jstr(p->index));
	appendStringInfoString(&body, ",\"KeyConditionExpression\":");
	escape_json(&body, p->key_condition);
	appendStringInfo(&body, ",\"ExpressionAttributeNames\":%s,\"ExpressionAttributeValues\":%s",
					 p->names, p->values);
	appendStringInfo(&body, ",\"ScanIndexForward\":%s,\"ReturnConsumedCapacity\":\"TOTAL\"",
					 walk->descending ? "false" : "true");
	if (limit > 0)
		appendStringInfo(&body, ",\"Limit\":%d", limit);
	if (start_key)
		appendStringInfo(&body, ",\"ExclusiveStartKey\":%s", start_key);
	appendStringInfoChar(&body, '}');
	return body.data;
}

/*
 * Events returned to the executor are the measure of what a scan needs.
 * With a LIMIT (the hint), a scan asks for what the limit still needs and
 * no more, hydrates only the page about to be returned, and probes empty
 * months a few at a time.  Past the limit (local conditions dropped rows)
 * the target doubles each time it is reached, until the scan looks like a
 * replay; then, as without a LIMIT, pages and the number under way grow
 * with the rows returned, not with the pages asked for.
 */
#define MAX_PROBES 4
#define REPLAY_ROWS (4 * PAGE_LIMIT)

/* Events at hand, ready to return (a carried millisecond waits for the next page). */
static int64
buffered(EsdWalk *walk)
{
	return walk->nout - walk->next;
}

/* Reading for a LIMIT, and how many more events it needs beyond those at hand (>= 0). */
static bool
within_limit(EsdWalk *walk)
{
	return walk->target > 0;
}

static int64
limit_needs(EsdWalk *walk)
{
	return Max(0, walk->target - walk->returned - buffered(walk));
}

static int
page_limit(EsdWalk *walk)
{
	if (walk->table->page_size > 0)
		return walk->table->page_size;
	/*
	 * One key more than the LIMIT needs: the events of a page's last
	 * millisecond wait for the next page, so the extra key (from the index,
	 * cheap) lets the page's other events go without asking for one.  A
	 * millisecond that fills pages is read in pages twice its size so far.
	 */
	if (within_limit(walk))
		return (int) Max(1, Min(Max(limit_needs(walk) + 1, 2 * walk->ncarry), PAGE_LIMIT));
	/* pages to hydrate stay moderate; pages of keys alone fill DynamoDB's 1 MB */
	if (walk->keys_suffice && walk->returned >= FIRST_PAGE_LIMIT)
		return 0;
	return (int) Min(PAGE_LIMIT, Max(FIRST_PAGE_LIMIT, walk->returned));
}

/* How many pages may be under way (asked for and not yet returned). */
static int
pages_ahead(EsdWalk *walk)
{
	int			probes = Min(MAX_PROBES, 1 + walk->empties);

	if (within_limit(walk))
		return limit_needs(walk) > 0 ? probes : 0;
	return Min(walk->keys_suffice ? MAX_AHEAD_KEYS : MAX_AHEAD_EVENTS,
			   Max(probes, 1 + walk->returned / PAGE_LIMIT));
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
 * An event that cannot be read: an error naming it, or, with on_bad_item
 * 'warn', a problem the scan reports in a WARNING when it skips the event.
 */
static void
bad_item(EsdWalk *walk, EsdEvent *ev, int sqlstate, const char *message)
{
	if (!walk->table->warn_bad_items)
		ereport(ERROR,
				(errcode(sqlstate),
				 errmsg_internal("%s", message),
				 errhint("The table option on_bad_item 'warn' skips such events with a WARNING.")));
	ev->problem = message;
}

/*
 * Ask S3 for the bodies of the offloaded events of a page that the query
 * needs, all at once.
 */
static void
resolve_start(EsdWalk *walk, EsdPage *page)
{
	page->s3 = palloc(sizeof(AwsCall *) * Max(page->nevents, 1));
	page->s3_which = palloc(sizeof(int) * Max(page->nevents, 1));
	page->ns3 = 0;

	for (int i = 0; i < page->nevents; i++)
	{
		EsdEvent   *ev = &page->events[i];
		const char *ref = dynamo_item_string(ev->item, "s3Reference");
		const char *sep;
		char	   *bucket;
		AwsCall    *call;

		if (ref == NULL || !needs_body(walk, ev->item))
			continue;
		sep = strstr(ref, "::");
		if (sep == NULL || sep == ref || sep[2] == '\0')
		{
			bad_item(walk, ev, ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE,
					 psprintf("invalid s3Reference \"%s\" in item \"%s\" of table \"%s\": expected \"<bucket>::<key>\"",
							  esd_shorten(ref), esd_shorten(ev->id), walk->table->table_name));
			continue;
		}
		bucket = pnstrdup(ref, sep - ref);
		if (!esd_valid_s3_bucket_name(bucket))
		{
			bad_item(walk, ev, ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE,
					 psprintf("invalid s3Reference \"%s\" in item \"%s\" of table \"%s\": \"%s\" is not an S3 bucket name",
							  esd_shorten(ref), esd_shorten(ev->id), walk->table->table_name,
							  esd_shorten(bucket)));
			continue;
		}
		if (!esd_s3_bucket_allowed(walk->table, bucket))
		{
			bad_item(walk, ev, ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE,
					 psprintf("s3Reference \"%s\" in item \"%s\" of table \"%s\" names bucket \"%s\", which is neither the table's s3_bucket nor in its s3_allowed_buckets",
							  esd_shorten(ref), esd_shorten(ev->id), walk->table->table_name,
							  esd_shorten(bucket)));
			continue;
		}
		call = palloc(sizeof(AwsCall));
		aws_s3_get_init(call, walk->conn, bucket, sep + 2);
		aws_submit(walk->conn, call, &walk->stats);
		page->s3_which[page->ns3] = i;
		page->s3[page->ns3++] = call;
	}
}

/* While the S3 body of an item is read: name the item in any error. */
static void
body_error_context(void *arg)
{
	EsdEvent   *ev = arg;

	errcontext("reading the S3 body of item \"%s\"", esd_shorten(ev->id));
}

/* The bodies are there: check them and attach them to their events. */
static void
resolve_finish(EsdWalk *walk, EsdPage *page)
{
	for (int c = 0; c < page->ns3; c++)
	{
		AwsCall    *call = page->s3[c];
		EsdEvent   *ev = &page->events[page->s3_which[c]];
		ErrorContextCallback errcb;
		json_object *body;
		json_object *idv;

		if (call->failed && walk->table->warn_bad_items)
		{
			bad_item(walk, ev, call->sqlstate,
					 psprintf("S3 %s of \"%s\" for item \"%s\" failed: %s: %s", call->operation,
							  call->resource, esd_shorten(ev->id), call->error_type, call->error_message));
			continue;
		}
		errcb.callback = body_error_context;
		errcb.arg = ev;
		errcb.previous = error_context_stack;
		error_context_stack = &errcb;
		if (call->failed)
			aws_raise(call);
		error_context_stack = errcb.previous;

		body = aws_json_parse(call->response.data, call->response.len);
		if (body == NULL || !json_object_is_type(body, json_type_object))
		{
			bad_item(walk, ev, ERRCODE_FDW_INVALID_DATA_TYPE,
					 psprintf("S3 object \"%s\" of item \"%s\" is not a JSON object",
							  call->resource, esd_shorten(ev->id)));
			continue;
		}
		if (json_object_object_get_ex(body, "id", &idv) &&
			json_object_is_type(idv, json_type_string))
		{
			const char *bid = json_object_get_string(idv);
			const char *iid = ev->id + (strncmp(ev->id, ESD_ID_PREFIX, strlen(ESD_ID_PREFIX)) == 0
										? strlen(ESD_ID_PREFIX) : 0);

			/* a body's id is the event id; one written with the prefix is accepted too */
			if (strcmp(bid, iid) != 0 &&
				strncmp(bid, ESD_ID_PREFIX, strlen(ESD_ID_PREFIX)) == 0)
				bid += strlen(ESD_ID_PREFIX);
			if (strcmp(bid, iid) != 0)
			{
				bad_item(walk, ev, ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE,
						 psprintf("S3 object \"%s\" holds event \"%s\", not item \"%s\"",
								  call->resource, esd_shorten(bid), esd_shorten(ev->id)));
				continue;
			}
		}
		ev->body = body;
		/* the payload as written, every digit of it (json-c caps integers at 64 bits) */
		if (!codec_json_member_text(call->response.data, call->response.len, "payload",
									&ev->body_payload, &ev->body_payload_len))
			ev->body_payload = NULL;
	}
	page->ns3 = 0;
}

/* Keys of a Query answer, stream heads left out. */
static EsdKey *
answer_keys(json_object *answer, int *nkeys, json_object ***items_out)
{
	json_object *items;
	size_t		n;
	EsdKey	   *keys;

	*nkeys = 0;
	if (!json_object_object_get_ex(answer, "Items", &items) ||
		!json_object_is_type(items, json_type_array))
		return NULL;
	n = json_object_array_length(items);
	keys = palloc(sizeof(EsdKey) * Max(n, 1));
	if (items_out)
		*items_out = palloc(sizeof(json_object *) * Max(n, 1));
	for (size_t i = 0; i < n; i++)
	{
		json_object *k = json_object_array_get_idx(items, i);
		const char *id = dynamo_item_string(k, "id");
		const char *created = dynamo_item_string(k, "created");

		/* stream heads have no timeBucket, but never let one through */
		if (id == NULL || created == NULL || strcmp(created, ESD_HEAD_CREATED) == 0)
			continue;
		keys[*nkeys].id = id;
		keys[*nkeys].created = created;
		if (items_out)
			(*items_out)[*nkeys] = k;
		(*nkeys)++;
	}
	return keys;
}

/* The hydrated items of a page, in key order. */
static void
events_from_items(EsdWalk *walk, EsdPage *page)
{
	page->events = palloc0(sizeof(EsdEvent) * Max(page->nkeys, 1));
	page->nevents = 0;
	for (int i = 0; i < page->nkeys; i++)
	{
		json_object *item = dynamo_batch_get_find(page->get.found, page->keys[i].id,
												  page->keys[i].created);

		if (item == NULL)
		{
			ereport(WARNING,
					(errcode(ERRCODE_WARNING),
					 errmsg("event \"%s\" created %s is in an index of table \"%s\" but not in the table",
							esd_shorten(page->keys[i].id), esd_shorten(page->keys[i].created),
							walk->table->table_name),
					 errdetail("The item was deleted after the index was read.")));
			continue;
		}
		page->events[page->nevents].item = item;
		page->events[page->nevents].body = NULL;
		page->events[page->nevents].id = page->keys[i].id;
		page->nevents++;
	}
}

/* The index entries are the rows (their keys hold all the query needs), or whole items. */
static void
events_from_entries(EsdPage *page)
{
	page->events = palloc0(sizeof(EsdEvent) * Max(page->nkeys, 1));
	for (int i = 0; i < page->nkeys; i++)
	{
		page->events[i].item = page->key_items[i];
		page->events[i].body = NULL;
		page->events[i].id = page->keys[i].id;
	}
	page->nevents = page->nkeys;
}

/* Keys known: hydrate them, or take them as they are. */
static void
page_has_keys(EsdWalk *walk, EsdPage *page, bool whole_items)
{
	if (page->nkeys == 0)
		page->state = PAGE_READY;
	else if (walk->keys_suffice || whole_items)
	{
		events_from_entries(page);
		page->state = PAGE_RESOLVING;
		resolve_start(walk, page);
	}
	else
	{
		page->state = PAGE_HYDRATING;
		dynamo_batch_get_start(&page->get, walk->conn, walk->table->table_name,
							   page->keys, page->nkeys, false, walk->projection, &walk->stats);
	}
}

/*
 * Did the first page of a stream read fail because the table has no
 * streamIndex (the planner assumes it, without asking DynamoDB)?
 * DynamoDB says so in a ValidationException.
 */
static bool
stream_index_missing(EsdWalk *walk, EsdPage *page)
{
	AwsCall    *q = &page->query;

	return walk->access == ESD_ACCESS_STREAM && page->part == 0 && !page->continuation &&
		walk->returned == 0 && walk->current == NULL &&
		q->error_type && strcmp(q->error_type, "ValidationException") == 0 &&
		q->error_message && strstr(q->error_message, "specified index") != NULL;
}

static bool next_streamed_page(EsdWalk *walk);
static bool next_collected_page(EsdWalk *walk);
static EsdPage *start_collected_page(EsdWalk *walk);

static int64
item_sequence(json_object *item)
{
	json_object *av = dynamo_item_attr(item, "sequence");
	json_object *n;

	if (av && json_object_object_get_ex(av, "N", &n) && json_object_is_type(n, json_type_string))
		return strtoi64(json_object_get_string(n), NULL, 10);
	return 0;
}

static int
compare_sequence(const void *a, const void *b)
{
	int64		x = item_sequence(*(json_object *const *) a);
	int64		y = item_sequence(*(json_object *const *) b);

	return x < y ? -1 : x > y ? 1 : 0;
}

static int
compare_sequence_desc(const void *a, const void *b)
{
	return compare_sequence(b, a);
}

/*
 * The stream read cannot use streamIndex: read the stream as a table
 * without the index is read, by walking the months, without giving up the order
 * the plan promised: the walk finds the keys of the stream's events (id,
 * created, domain, identifier, sequence), which are sorted by sequence and
 * then returned as collected pages, hydrated as the query needs.
 */
static void
walk_instead_of_stream(EsdWalk *walk)
{
	EsdBounds	stream = walk->bounds;
	bool		descending = walk->descending;
	EsdBounds	walk_bounds;
	MemoryContext old;
	int			cap = 64;
	int			nattrs;

	drop_pages(walk);
	walk->parts_started = walk->parts_read = 0;
	walk->stream_index_gone = false;
	memset(&walk_bounds, 0, sizeof(walk_bounds));
	esd_walk_plan(walk, ESD_ACCESS_WALK, false, &walk_bounds);
	walk->keys_suffice = false; /* the stream's attributes are needed */
	walk->target = 0;			/* read ahead freely */
	nattrs = walk->nattrs;
	walk->nattrs = 0;			/* no S3 body: the keys are all this pass keeps */

	old = MemoryContextSwitchTo(walk->scan_cxt);
	walk->pending = palloc(sizeof(json_object *) * cap);
	walk->npending = 0;
	while (next_streamed_page(walk))
	{
		for (; walk->next < walk->nout; walk->next++)
		{
			json_object *item = walk->out[walk->next]->item;
			const char *domain = dynamo_item_string(item, "domain");
			const char *identifier = dynamo_item_string(item, "identifier");
			json_object *key;

			walk->returned++;	/* pages grow as for a replay */
			if (domain == NULL || identifier == NULL ||
				strcmp(domain, stream.domain) != 0 || strcmp(identifier, stream.identifier) != 0)
				continue;
			key = json_object_new_object();
			aws_json_own(key);
			{
				static const char *const attrs[] = {"id", "created", "domain", "identifier", "sequence", NULL};

				for (int i = 0; attrs[i]; i++)
				{
					json_object *av = dynamo_item_attr(item, attrs[i]);

					if (av)
						json_object_object_add(key, attrs[i], json_object_get(av));
				}
			}
			if (walk->npending == cap)
			{
				cap *= 2;
				walk->pending = repalloc(walk->pending, sizeof(json_object *) * cap);
			}
			walk->pending[walk->npending++] = key;
		}
	}
	qsort(walk->pending, walk->npending, sizeof(json_object *),
		  descending ? compare_sequence_desc : compare_sequence);
	MemoryContextSwitchTo(old);

	/* the stream's keys, in order, returned as the collected pages of a lookup */
	walk->nattrs = nattrs;
	walk->access = ESD_ACCESS_STREAM;
	walk->descending = descending;
	walk->bounds = stream;
	walk->keys_suffice = keys_suffice(walk);
	walk->returned = 0;
	walk->target = walk->hint;
	walk->next_pending = 0;
	walk->collected = true;
	walk->stream_walked = true;
	walk->pages = start_collected_page(walk);
}

/*
 * Move a page as far as its finished requests allow, without waiting:
 * Query answered -> hydrate; hydrated -> resolve offloaded events -> ready.
 */
static void
advance_page(EsdWalk *walk, EsdPage *page)
{
	MemoryContext old = MemoryContextSwitchTo(page->cxt);

	if (page->state == PAGE_QUERYING && page->query.done)
	{
		json_object *lek;

		if (page->query.failed && stream_index_missing(walk, page))
		{
			walk->stream_index_gone = true;
			MemoryContextSwitchTo(old);
			return;
		}
		if (page->query.failed)
			aws_raise(&page->query);
		if (json_object_object_get_ex(page->query.json, "LastEvaluatedKey", &lek))
			page->next_key = pstrdup(json_object_to_json_string_ext(lek, JSON_C_TO_STRING_PLAIN));
		page->keys = answer_keys(page->query.json, &page->nkeys, &page->key_items);
		page->state = PAGE_KEYS;
	}
	/* within a LIMIT, a page is hydrated only once its events are the next to return */
	if (page->state == PAGE_KEYS &&
		(!within_limit(walk) || (walk->pages == page && walk->next >= walk->nout)))
		page_has_keys(walk, page, false);
	if (page->state == PAGE_HYDRATING && dynamo_batch_get_advance(&page->get))
	{
		events_from_items(walk, page);
		page->state = PAGE_RESOLVING;
		resolve_start(walk, page);
	}
	if (page->state == PAGE_RESOLVING && aws_all_done(page->s3, page->ns3))
	{
		resolve_finish(walk, page);
		page->state = PAGE_READY;
	}
	MemoryContextSwitchTo(old);
}

static EsdPage *
new_page(EsdWalk *walk, int part)
{
	MemoryContext cxt = AllocSetContextCreate(walk->scan_cxt, "event_store_dynamo page",
											  ALLOCSET_DEFAULT_SIZES);
	EsdPage    *page = MemoryContextAllocZero(cxt, sizeof(EsdPage));

	page->cxt = cxt;
	page->part = part;
	walk->npages++;
	walk->parts_read = Max(walk->parts_read, part + 1);
	return page;
}

/* Ask for a page of a partition, starting after start_key. */
static EsdPage *
query_page(EsdWalk *walk, int part, const char *start_key)
{
	EsdPage    *page = new_page(walk, part);
	MemoryContext old = MemoryContextSwitchTo(page->cxt);

	if (walk->current && walk->next < walk->nout)
		walk->pages_early++;
	aws_dynamodb_init(&page->query, walk->conn, "Query", walk->table->table_name,
					  query_body(walk, &walk->parts[part], page_limit(walk), start_key));
	aws_submit(walk->conn, &page->query, &walk->stats);
	page->state = PAGE_QUERYING;
	page->continuation = start_key != NULL;
	MemoryContextSwitchTo(old);
	return page;
}

/*
 * Does the partition being returned have more pages to come?  Within a
 * LIMIT, the next months are not probed then: the rows will likely come
 * from the pages of the partition under way.  Within a LIMIT, what is
 * asked for depends only on the pages returned so far, never on which
 * answers happen to be in: the requests a LIMIT costs are the same on
 * every run.
 */
static bool
partition_goes_on(EsdWalk *walk)
{
	return walk->current && walk->current->next_key;
}

/*
 * Ask for more pages while fewer than pages_ahead() are under way: the
 * next page of a partition whose last page said there is more, and the
 * first page of the next partitions.  Pages stay in partition order.
 */
static void
ask_ahead(EsdWalk *walk)
{
	EsdPage   **link;

	/* next pages of partitions already under way, right after their predecessor */
	for (link = &walk->pages; *link && !within_limit(walk) && walk->npages < pages_ahead(walk);
		 link = &(*link)->next)
	{
		EsdPage    *page = *link;
		EsdPage    *succ;

		if (page->state == PAGE_QUERYING || page->next_key == NULL || page->successor_asked)
			continue;
		succ = query_page(walk, page->part, page->next_key);
		page->successor_asked = true;
		succ->next = page->next;
		page->next = succ;
	}
	/*
	 * The current page's successor comes before anything queued: ask for it
	 * at once, while the current page's events are returned, unless a LIMIT
	 * has all it needs at hand.
	 */
	if (walk->current && walk->current->next_key && !walk->current->successor_asked &&
		(!within_limit(walk) || limit_needs(walk) > 0))
	{
		EsdPage    *succ = query_page(walk, walk->current->part, walk->current->next_key);

		walk->current->successor_asked = true;
		succ->next = walk->pages;
		walk->pages = succ;
	}
	/* first pages of the next partitions, at the end */
	while (walk->parts_started < walk->nparts && walk->npages < pages_ahead(walk) &&
		   !(within_limit(walk) && partition_goes_on(walk)))
	{
		EsdPage    *page;

		walk->parts_started++;
		page = query_page(walk, walk->parts_started - 1, NULL);
		for (link = &walk->pages; *link; link = &(*link)->next)
			;
		*link = page;
	}
}

/* May the first queued page be returned now, or must the current page's continuation come first? */
static bool
page_is_next(EsdWalk *walk)
{
	return !(walk->current && walk->current->next_key && !walk->current->successor_asked);
}

/*
 * The replay order of events: created, then domain, identifier (absent
 * as empty), sequence, then id; strings compared byte by byte.  Within a
 * stream, sequence follows created, so a replay in this order yields every
 * stream's events in sequence order, however DynamoDB orders the entries of
 * an index that share a millisecond.  A walk backwards is the exact reverse.
 */
typedef struct OrderKey
{
	const char *created;
	const char *domain;
	const char *identifier;
	int64		sequence;
	const char *id;
	EsdEvent   *event;
} OrderKey;

static const char *
string_or_empty(json_object *item, const char *attr)
{
	const char *s = dynamo_item_string(item, attr);

	return s ? s : "";
}

static int
compare_order(const void *a, const void *b)
{
	const OrderKey *x = a;
	const OrderKey *y = b;
	int			c;

	if ((c = strcmp(x->created, y->created)) != 0)
		return c;
	if ((c = strcmp(x->domain, y->domain)) != 0)
		return c;
	if ((c = strcmp(x->identifier, y->identifier)) != 0)
		return c;
	if (x->sequence != y->sequence)
		return x->sequence < y->sequence ? -1 : 1;
	return strcmp(x->id, y->id);
}

static int
compare_order_desc(const void *a, const void *b)
{
	return compare_order(b, a);
}

/* Put events in replay order (or its reverse). */
static void
sort_events(EsdEvent **events, int n, bool descending)
{
	OrderKey   *keys;

	if (n < 2)
		return;
	keys = palloc(sizeof(OrderKey) * n);
	for (int i = 0; i < n; i++)
	{
		json_object *item = events[i]->item;
		json_object *seq = dynamo_item_attr(item, "sequence");
		json_object *num;

		keys[i].created = string_or_empty(item, "created");
		keys[i].domain = string_or_empty(item, "domain");
		keys[i].identifier = string_or_empty(item, "identifier");
		keys[i].sequence = 0;
		if (seq && json_object_object_get_ex(seq, "N", &num))
			keys[i].sequence = strtoll(json_object_get_string(num), NULL, 10);
		keys[i].id = events[i]->id ? events[i]->id : "";
		keys[i].event = events[i];
	}
	qsort(keys, n, sizeof(OrderKey), descending ? compare_order_desc : compare_order);
	for (int i = 0; i < n; i++)
		events[i] = keys[i].event;
	pfree(keys);
}

/*
 * A page has come: what it and the events carried from the page before it
 * hold becomes the events to return, in replay order, except for its last
 * millisecond when more of its partition follows (the next page may hold
 * more events of that millisecond): those are carried to the next page.
 * A stream read is in sequence order already.
 */
static void
take_page(EsdWalk *walk, EsdPage *page)
{
	int			nall = walk->ncarry + page->nevents;
	EsdEvent  **all;
	int			split = nall;

	/* the events returned so far are done with; pages only the carry needs stay */
	if (walk->current)
	{
		walk->current->next = NULL;
		if (walk->held == NULL)
			walk->held = walk->current;
		else
		{
			EsdPage    *last = walk->held;

			while (last->next)
				last = last->next;
			last->next = walk->current;
		}
		walk->pages_done++;
	}
	drop_held(walk, walk->ncarry > 0 ? walk->carry_page : NULL);
	if (walk->out)
		pfree(walk->out);

	all = MemoryContextAlloc(walk->scan_cxt, sizeof(EsdEvent *) * Max(nall, 1));
	for (int i = 0; i < walk->ncarry; i++)
		all[i] = walk->carry[i];
	for (int i = 0; i < page->nevents; i++)
		all[walk->ncarry + i] = &page->events[i];
	if (walk->carry)
		pfree(walk->carry);
	walk->carry = NULL;

	if (walk->access != ESD_ACCESS_STREAM && page->next_key && nall > 0)
	{
		const char *last = string_or_empty(all[nall - 1]->item, "created");

		while (split > 0 && strcmp(string_or_empty(all[split - 1]->item, "created"), last) == 0)
			split--;
		if (split < walk->ncarry)
			;					/* the carry goes on: its oldest page stays the same */
		else
			walk->carry_page = page;
		walk->ncarry = nall - split;
		walk->carry = MemoryContextAlloc(walk->scan_cxt, sizeof(EsdEvent *) * Max(walk->ncarry, 1));
		memcpy(walk->carry, all + split, sizeof(EsdEvent *) * walk->ncarry);
	}
	else
	{
		walk->ncarry = 0;
		walk->carry_page = NULL;
	}
	if (walk->access != ESD_ACCESS_STREAM)
		sort_events(all, split, walk->descending);
	walk->out = all;
	walk->nout = split;
	walk->next = 0;
	walk->current = page;
}

/*
 * Streaming mode (the walk, a stream): make the next page with events the
 * current one.  Returns false at the end.
 */
static bool
next_streamed_page(EsdWalk *walk)
{
	for (;;)
	{
		EsdPage    *head;

		CHECK_FOR_INTERRUPTS();
		ask_ahead(walk);

		for (EsdPage *p = walk->pages; p; p = p->next)
			advance_page(walk, p);
		if (walk->stream_index_gone)
		{
			walk_instead_of_stream(walk);
			return next_collected_page(walk);
		}

		head = walk->pages;
		if (head == NULL)
		{
			if (walk->current == NULL && walk->parts_started >= walk->nparts)
				return false;
			if (walk->current && walk->current->next_key == NULL &&
				walk->parts_started >= walk->nparts)
			{
				drop_page(walk->current);
				walk->current = NULL;
				drop_held(walk, NULL);
				return false;
			}
			continue;
		}
		if (head->state == PAGE_READY && page_is_next(walk))
		{
			walk->pages = head->next;
			walk->npages--;
			take_page(walk, head);
			if (head->nevents == 0 && !head->continuation)
				walk->empties++;
			if (walk->nout > 0)
			{
				/* what comes next gets under way while these events are returned */
				ask_ahead(walk);
				return true;
			}
			continue;
		}
		aws_pump(100);
	}
}

static int
compare_created(const void *a, const void *b)
{
	json_object *x = *(json_object *const *) a;
	json_object *y = *(json_object *const *) b;
	int			c = strcmp(dynamo_item_string(x, "created"), dynamo_item_string(y, "created"));

	return c != 0 ? c : strcmp(dynamo_item_string(x, "id"), dynamo_item_string(y, "id"));
}

/*
 * Collect mode: read every partition to the end, concurrently (ids and
 * causation ids are few), and sort what they hold by created.
 */
static void
collect(EsdWalk *walk)
{
	MemoryContext old = MemoryContextSwitchTo(walk->scan_cxt);
	char	  **start = palloc0(sizeof(char *) * Max(walk->nparts, 1));
	bool	   *done = palloc0(sizeof(bool) * Max(walk->nparts, 1));
	AwsCall   **calls = palloc(sizeof(AwsCall *) * Max(walk->nparts, 1));
	int		   *which = palloc(sizeof(int) * Max(walk->nparts, 1));
	int			cap = 64;

	walk->pending = palloc(sizeof(json_object *) * cap);
	for (;;)
	{
		int			ncalls = 0;

		for (int i = 0; i < walk->nparts; i++)
		{
			if (done[i])
				continue;
			calls[ncalls] = palloc(sizeof(AwsCall));
			aws_dynamodb_init(calls[ncalls], walk->conn, "Query", walk->table->table_name,
							  query_body(walk, &walk->parts[i], 0, start[i]));
			which[ncalls++] = i;
		}
		if (ncalls == 0)
			break;
		aws_execute(walk->conn, calls, ncalls, &walk->stats, true);
		walk->parts_read = walk->nparts;

		for (int c = 0; c < ncalls; c++)
		{
			json_object *lek;
			json_object **items;
			int			nkeys;

			(void) answer_keys(calls[c]->json, &nkeys, &items);
			for (int k = 0; k < nkeys; k++)
			{
				if (walk->npending == cap)
				{
					cap *= 2;
					walk->pending = repalloc(walk->pending, sizeof(json_object *) * cap);
				}
				walk->pending[walk->npending++] = items[k];
			}
			if (json_object_object_get_ex(calls[c]->json, "LastEvaluatedKey", &lek))
				start[which[c]] = pstrdup(json_object_to_json_string_ext(lek, JSON_C_TO_STRING_PLAIN));
			else
				done[which[c]] = true;
		}
	}
	qsort(walk->pending, walk->npending, sizeof(json_object *), compare_created);
	walk->collected = true;
	MemoryContextSwitchTo(old);
}

/*
 * Collect mode: start the next page of the sorted items, hydrated
 * (causation ids) or as they are (a Query on the table has whole items);
 * NULL when none is left.
 */
static EsdPage *
start_collected_page(EsdWalk *walk)
{
	int			n = Min(COLLECTED_PAGE, walk->npending - walk->next_pending);
	EsdPage    *page;
	MemoryContext old;

	if (n <= 0)
		return NULL;
	/* a millisecond is never split: its events are put in order together */
	while (walk->next_pending + n < walk->npending &&
		   strcmp(dynamo_item_string(walk->pending[walk->next_pending + n - 1], "created"),
				  dynamo_item_string(walk->pending[walk->next_pending + n], "created")) == 0)
		n++;

	if (walk->current)
		walk->pages_early++;
	page = new_page(walk, 0);
	old = MemoryContextSwitchTo(page->cxt);
	page->keys = palloc(sizeof(EsdKey) * n);
	page->key_items = walk->pending + walk->next_pending;
	page->nkeys = n;
	for (int i = 0; i < n; i++)
	{
		page->keys[i].id = dynamo_item_string(page->key_items[i], "id");
		page->keys[i].created = dynamo_item_string(page->key_items[i], "created");
	}
	walk->next_pending += n;
	page_has_keys(walk, page, walk->access == ESD_ACCESS_ID);
	MemoryContextSwitchTo(old);
	return page;
}

/*
 * Collect mode: make the next page with events the current one, and get
 * the page after it under way while this one is returned.
 */
static bool
next_collected_page(EsdWalk *walk)
{
	for (;;)
	{
		EsdPage    *page;

		if (!walk->collected)
		{
			collect(walk);
			walk->pages = start_collected_page(walk);
		}
		if (walk->current)
		{
			drop_page(walk->current);
			walk->current = NULL;
		}
		page = walk->pages;
		if (page == NULL)
			return false;
		while (page->state != PAGE_READY)
		{
			CHECK_FOR_INTERRUPTS();
			advance_page(walk, page);
			if (page->state != PAGE_READY)
				aws_pump(100);
		}
		walk->pages = NULL;
		walk->npages--;
		walk->current = page;
		walk->next = 0;
		walk->nout = 0;
		walk->pages = start_collected_page(walk);
		if (page->nevents > 0)
		{
			if (walk->out)
				pfree(walk->out);
			walk->out = MemoryContextAlloc(walk->scan_cxt, sizeof(EsdEvent *) * page->nevents);
			for (int i = 0; i < page->nevents; i++)
				walk->out[i] = &page->events[i];
			/* a stream's keys came sorted by sequence: they stay so */
			if (!walk->stream_walked)
				sort_events(walk->out, page->nevents, false);
			walk->nout = page->nevents;
			return true;
		}
	}
}

/*
 * While rows are being returned, keep the pages ahead moving: what DynamoDB
 * answered is taken in and the next requests go out, without waiting.
 */
static void
keep_pages_moving(EsdWalk *walk)
{
	aws_poll();
	for (EsdPage *p = walk->pages; p; p = p->next)
		advance_page(walk, p);
	if (!walk->collected)
		ask_ahead(walk);
}

#define ROWS_BETWEEN_POLLS 32

EsdEvent *
esd_walk_next(EsdWalk *walk)
{
	if ((walk->pages || (walk->current && walk->current->next_key && !walk->current->successor_asked)) &&
		walk->next % ROWS_BETWEEN_POLLS == ROWS_BETWEEN_POLLS - 1)
		keep_pages_moving(walk);
	if (walk->current == NULL || walk->next >= walk->nout)
	{
		bool		more = (walk->access == ESD_ACCESS_ID || walk->access == ESD_ACCESS_CAUSATION ||
							walk->stream_walked)
			? next_collected_page(walk) : next_streamed_page(walk);

		if (!more)
			return NULL;
	}
	if (++walk->returned >= walk->target && walk->target > 0)
		walk->target = walk->target * 2 > REPLAY_ROWS ? 0 : walk->target * 2;
	return walk->out[walk->next++];
}
