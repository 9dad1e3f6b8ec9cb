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

#include "utils/jsonb.h"

#include "aws.h"
#include "option.h"

struct json_object;

#define ESD_TIME_BUCKET_INDEX "timeBucketIndex"
#define ESD_CAUSATION_INDEX "causationIndex"
#define ESD_STREAM_INDEX "streamIndex"
#define ESD_ID_PREFIX "EventID#"
#define ESD_HEAD_CREATED "HEAD"

/* The primary key of an event item. */
typedef struct EsdKey
{
	const char *id;				/* with the EventID# prefix */
	const char *created;
} EsdKey;

extern char *dynamo_batch_get_body(const char *table, const EsdKey *keys,
								   int nkeys, bool consistent, const char *projection);

/*
 * A ProjectionExpression for these attributes (always with id, created and
 * s3Reference), as the JSON members to add to a request; NULL for all.
 */
extern char *dynamo_projection(const char **attrs, int nattrs);

/*
 * BatchGetItem for any number of keys: a hash table that
 * dynamo_batch_get_find looks items up in.  UnprocessedKeys are re-sent
 * after a backoff; keys missing from an eventually consistent answer are
 * asked once more with a consistent read.
 */
extern struct HTAB *dynamo_batch_get(const EsdConnOptions *conn, const char *table,
									 const EsdKey *keys, int nkeys, bool consistent,
									 const char *projection, AwsStats *stats);
extern struct json_object *dynamo_batch_get_find(struct HTAB *found, const char *id,
												 const char *created);

/* The same, asynchronously: start, then advance until it says it is finished. */
typedef struct DynamoBatchGet
{
	const EsdConnOptions *conn;
	const char *table;
	const char *projection;
	AwsStats   *stats;
	struct HTAB *found;			/* what dynamo_batch_get_find looks in */
	const EsdKey *all_keys;
	int			nall;
	EsdKey	   *keys;			/* this round's keys */
	int			nkeys;
	AwsCall   **calls;
	int			ncalls;
	bool		consistent;
	bool		second_look;
	int			round;
	bool		finished;
} DynamoBatchGet;

extern void dynamo_batch_get_start(DynamoBatchGet *job, const EsdConnOptions *conn,
								   const char *table, const EsdKey *keys, int nkeys,
								   bool consistent, const char *projection,
								   AwsStats *stats);
extern bool dynamo_batch_get_advance(DynamoBatchGet *job);
extern void dynamo_batch_get_cancel(DynamoBatchGet *job);

/* Value of a string attribute ({"S": ...}) of an item, or NULL. */
extern const char *dynamo_item_string(struct json_object *item, const char *attr);

/* An attribute's AttributeValue, or NULL when absent. */
extern struct json_object *dynamo_item_attr(struct json_object *item, const char *attr);

/* A consistent Query for an item id (with the prefix), to learn whether it exists (Count). */
extern char *dynamo_id_exists_body(const char *table, const char *item_id);

/* The id of the head item of a stream "<domain>::<identifier or empty>". */
extern char *dynamo_head_id(const char *stream);

/* A stream's version, read from its head item (consistent read); 0 when it has none. */
extern int64 dynamo_read_head(const EsdConnOptions *conn, const char *table, const char *stream);

/* version of a stream head item; errors name the stream when it is not a number */
extern int64 dynamo_head_version(struct json_object *item, const char *stream,
								 const char *table);

/* The id of an item given as DynamoDB JSON text (what "id":{"S":...} holds). */
extern char *dynamo_item_id_of(const char *item_json);

/* jsonb -> its AttributeValue as DynamoDB JSON text */
extern char *dynamo_jsonb_to_av_text(Jsonb *jb);

#endif							/* ESD_DYNAMO_H */
