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

struct json_object;

/* One event as stored: the item, and the S3 body when it was offloaded. */
typedef struct EsdEvent
{
	struct json_object *item;	/* the DynamoDB item (attribute -> AttributeValue) */
	struct json_object *body;	/* parsed S3 body (plain JSON object), or NULL */
	const char *id;				/* item id, with the EventID# prefix */
} EsdEvent;

typedef struct EsdWalk
{
	const EsdConnOptions *conn;
	const EsdTableOptions *table;

	/* the attributes the rows need */
	const char **attrs;
	int			nattrs;

	/* the buckets to walk, "YYYY-MM" each */
	char	  **buckets;
	int			nbuckets;
	int			bucket;			/* index of the bucket being read */
	char	   *start_key;		/* LastEvaluatedKey of the bucket's last page */
	bool		bucket_started;

	/* the current page, in page_cxt */
	MemoryContext page_cxt;
	EsdEvent   *events;
	int			nevents;
	int			next;

	AwsStats	stats;
} EsdWalk;

extern EsdWalk *esd_walk_begin(const EsdConnOptions *conn,
							   const EsdTableOptions *table,
							   const char **attrs, int nattrs,
							   MemoryContext parent);
extern EsdEvent *esd_walk_next(EsdWalk *walk);
extern void esd_walk_rewind(EsdWalk *walk);
extern void esd_walk_end(EsdWalk *walk);

/* The buckets from the table's start_month through now plus the look-ahead. */
extern void esd_bucket_range(const EsdTableOptions *table, char ***buckets, int *nbuckets);

#endif							/* ESD_SCAN_H */
