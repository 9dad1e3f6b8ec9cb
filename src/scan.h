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
	const char *id;				/* item id, with the EventID# prefix */
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

	/* the Queries to run, in order */
	EsdPartition *parts;
	int			nparts;
	int			part;			/* the partition being read */
	int			parts_read;		/* partitions Queried so far, for EXPLAIN */
	char	   *start_key;		/* LastEvaluatedKey of its last page */
	int			pages_read;		/* pages so far: the first ones are small */

	/* collect mode (id, causation): every key or item, sorted by created */
	bool		keys_suffice;	/* the index keys hold every attribute the rows need */
	bool		collected;
	MemoryContext collect_cxt;
	struct json_object **pending;	/* items (id access) or keys, in order */
	int			npending;
	int			next_pending;

	/* the current page, in page_cxt */
	MemoryContext page_cxt;
	EsdEvent   *events;
	int			nevents;
	int			next;

	/* what EXPLAIN shows */
	const char *first_label;
	const char *last_label;
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

/* The buckets from the table's start_month through now plus the look-ahead. */
extern void esd_bucket_range(const EsdTableOptions *table, char ***buckets, int *nbuckets);

#endif							/* ESD_SCAN_H */
