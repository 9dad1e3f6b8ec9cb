/*-------------------------------------------------------------------------
 *
 * dynamo.h
 *	  The DynamoDB requests of the event store layout: building their JSON
 *	  bodies and reading their answers.  No HTTP, no planner.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ESD_DYNAMO_H
#define ESD_DYNAMO_H

#include "postgres.h"

struct json_object;

#define ESD_TIME_BUCKET_INDEX "timeBucketIndex"
#define ESD_CAUSATION_INDEX "causationIndex"
#define ESD_ID_PREFIX "EventID#"
#define ESD_HEAD_CREATED "HEAD"

/* The primary key of an event item. */
typedef struct EsdKey
{
	const char *id;				/* with the EventID# prefix */
	const char *created;
} EsdKey;

extern char *dynamo_bucket_query_body(const char *table, const char *bucket,
									  int limit, const char *start_key_json);
extern char *dynamo_batch_get_body(const char *table, const EsdKey *keys,
								   int nkeys, bool consistent);

/* Value of a string attribute ({"S": ...}) of an item, or NULL. */
extern const char *dynamo_item_string(struct json_object *item, const char *attr);

/* An attribute's AttributeValue, or NULL when absent. */
extern struct json_object *dynamo_item_attr(struct json_object *item, const char *attr);

#endif							/* ESD_DYNAMO_H */
