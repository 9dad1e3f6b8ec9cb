/*-------------------------------------------------------------------------
 *
 * scan.h
 *	  The replay pipeline: walk month buckets on timeBucketIndex, hydrate
 *	  the keys with BatchGetItem, resolve S3 references, in created order.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ESD_SCAN_H
#define ESD_SCAN_H

#include "postgres.h"

#include "aws.h"
#include "option.h"
#include "plan.h"

struct json_object;

/* One event as stored: the item, and the S3 body when it was offloaded. */
typedef struct EsdEvent
{
	struct json_object *item;	/* the DynamoDB item (attribute -> AttributeValue) */
	struct json_object *body;	/* parsed S3 body (plain JSON object), or NULL */
	const char *body_payload;	/* the body's payload value as written, or NULL */
	int			body_payload_len;
	const char *id;				/* item id, with the EventID# prefix */
	const char *problem;		/* why it cannot be read (on_bad_item 'warn'), or NULL */
} EsdEvent;

/* One Query to run, paged: a month bucket, a stream, a causation id, an id. */
typedef struct EsdPartition
{
	const char *index;			/* NULL for the table itself */
	char	   *key_condition;	/* KeyConditionExpression */
	char	   *names;			/* ExpressionAttributeNames, JSON object text */
	char	   *values;			/* ExpressionAttributeValues, JSON object text */
	const char *label;			/* for EXPLAIN and messages: the bucket, the id, ... */
} EsdPartition;

struct EsdPage;

typedef struct EsdWalk
{
	const EsdConnOptions *conn;
	const EsdTableOptions *table;

	/* the attributes the rows need */
	const char **attrs;
	int			nattrs;
	char	   *projection;		/* ProjectionExpression members for BatchGetItem */

	/* the access path and its run-time bounds */
	EsdAccess	access;
	bool		descending;
	EsdBounds	bounds;
	bool		keys_suffice;	/* the index keys hold every attribute the rows need */
	bool		stream_index_gone;	/* a stream read found the table without
									 * streamIndex: it walks instead */

	/* the Queries to run, in order */
	EsdPartition *parts;
	int			nparts;
	int			parts_started;	/* partitions whose first page was asked for */
	int			parts_read;		/* for EXPLAIN */

	/* pages asked for and not yet returned, in order; the page being returned */
	struct EsdPage *pages;
	int			npages;
	int64		hint;			/* rows the query is expected to need (its LIMIT), 0 = unknown */
	int64		target;			/* rows read for now: the hint, doubled each time
								 * it is reached; 0 = a replay, read ahead freely */
	int64		returned;		/* rows returned so far */
	int			empties;		/* pages returned without an event (months probed empty) */
	int			pages_done;		/* pages returned to the end */
	int			pages_early;	/* pages asked for while an earlier page still had
								 * events to return (for EXPLAIN) */
	struct EsdPage *current;	/* the newest page whose events are returned */
	struct EsdPage *held;		/* older pages whose events are still to return */
	struct EsdEvent **out;		/* the events to return, in replay order */
	int			nout;
	int			next;			/* next of out */
	struct EsdEvent **carry;	/* the last millisecond of a page, kept back until
								 * the next page of its partition shows whether
								 * more events share it */
	int			ncarry;
	struct EsdPage *carry_page; /* the oldest page the carried events live in */

	/* collect mode (id, causation): every key or item, sorted by created */
	bool		collected;
	bool		stream_walked;	/* a stream's keys found by walking, sorted by sequence */
	struct json_object **pending;
	int			npending;
	int			next_pending;

	MemoryContext scan_cxt;		/* partitions and collected items: until rewind */
	AwsStats	stats;
} EsdWalk;

extern EsdWalk *esd_walk_begin(const EsdConnOptions *conn,
							   const EsdTableOptions *table,
							   const char **attrs, int nattrs,
							   MemoryContext parent);
/* Set the access path; call before the first esd_walk_next and after a rewind. */
extern void esd_walk_plan(EsdWalk *walk, EsdAccess access, bool descending,
						  const EsdBounds *bounds);
extern EsdEvent *esd_walk_next(EsdWalk *walk);
extern void esd_walk_rewind(EsdWalk *walk);
extern void esd_walk_end(EsdWalk *walk);

/* Does the walk read this month (YYYY-MM) under these bounds? */
extern bool esd_bucket_wanted(const EsdBounds *bounds, const char *bucket);

/* The buckets from the table's start_month through now plus the look-ahead. */
extern void esd_bucket_range(const EsdTableOptions *table, char ***buckets, int *nbuckets);

#endif							/* ESD_SCAN_H */
