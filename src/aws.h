/*-------------------------------------------------------------------------
 *
 * aws.h
 *	  Signed requests to DynamoDB and S3, the retry policy, and the mapping
 *	  of AWS failures to PostgreSQL errors.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ESD_AWS_H
#define ESD_AWS_H

#include "postgres.h"

#include "access/xact.h"
#include "datatype/timestamp.h"
#include "utils/resowner.h"

#include "http.h"
#include "option.h"

struct json_object;

/* Counters for EXPLAIN ANALYZE and tests: requests sent, by kind. */
typedef struct AwsStats
{
	int64		query;
	int64		batch_get;
	int64		s3_get;
	int64		other;
	int64		retries;
	int64		throttles;
	double		capacity_units; /* ConsumedCapacity DynamoDB reported */
} AwsStats;

typedef struct AwsCall
{
	/* the request: filled by aws_dynamodb_init / aws_s3_init */
	const char *operation;		/* "Query", "BatchGetItem", "GetObject", ... */
	const char *resource;		/* table name, or bucket/key, for messages */
	bool		is_s3;
	const char *method;
	char	   *url;
	char	   *host;			/* Host header value */
	char	   *path;			/* decoded path, for signing */
	char	   *target;			/* X-Amz-Target (DynamoDB) */
	char	   *body;
	size_t		body_len;
	const char *content_type;	/* Content-Type of an S3 body, signed; NULL: none */
	const char *acl;			/* x-amz-acl of an S3 upload, signed; NULL: none */
	char	   *checksum_crc32; /* x-amz-checksum-crc32 of an S3 upload, signed */

	/* the outcome, after aws_execute */
	bool		done;
	bool		failed;
	int			attempts;
	long		status;
	StringInfoData response;	/* body of the successful response */
	struct json_object *json;	/* parsed DynamoDB response; freed with its memory context */
	int			sqlstate;		/* on failure */
	bool		ambiguous;		/* the last attempt may have been applied
								 * (no answer, a 5xx, a transaction in
								 * progress): its outcome is unknown */
	char	   *error_type;
	char	   *error_message;
	struct json_object *error_json; /* parsed DynamoDB error body, when it was JSON */

	/* private: the scheduler's (scheduler.h says who owns a call) */
	const EsdConnOptions *conn; /* set when submitted */
	AwsStats   *stats;
	MemoryContext cxt;			/* its owner, where its answer is kept */
	ResourceOwner resowner;		/* the resource owner it was submitted under */
	MemoryContextCallback owner_callback;	/* abandons it when cxt goes */
	bool		owner_callback_set;
	bool		submitted;		/* in the scheduler's queue */
	HttpTransfer transfer;
	struct curl_slist *headers;
	TimestampTz due;
	uint32		credential_generation;	/* of the credentials last signed with */
	char	   *credential_detail;	/* where they came from, for the hint */
	bool		credentials_renewed;	/* the one refresh after an expired token */
} AwsCall;

extern void aws_dynamodb_init(AwsCall *call, const EsdConnOptions *conn,
							  const char *operation, const char *table,
							  const char *json_body);
extern void aws_s3_get_init(AwsCall *call, const EsdConnOptions *conn,
							const char *bucket, const char *key);
/* The upload of an offloaded event's body, with the Node adapter's headers */
extern void aws_s3_put_event_init(AwsCall *call, const EsdConnOptions *conn,
								  const char *bucket, const char *key,
								  const char *body, size_t body_len);
/* Any S3 request: method, bucket, key (NULL for the bucket itself), body. */
extern void aws_s3_init(AwsCall *call, const EsdConnOptions *conn,
						const char *operation, const char *method,
						const char *bucket, const char *key,
						const char *body, size_t body_len);

/*
 * For the scheduler (scheduler.c): sign and start one attempt of a call, in
 * the call's memory; decide what a finished attempt means (done, failed, or
 * due again after a backoff); count a request for EXPLAIN.
 */
extern void aws_start_attempt(AwsCall *call);
extern void aws_classify(AwsCall *call);

/* The retry policy's wait before attempt n + 1, in milliseconds (half fixed, half random). */
extern long aws_backoff_ms(const EsdConnOptions *conn, int attempts);
extern void aws_raise(AwsCall *call) pg_attribute_noreturn();

/* The text of the first <tag>...</tag> of an XML answer (S3, STS), entities decoded; NULL when absent. */
extern char *aws_xml_text(const char *body, const char *tag);

/* Parse JSON with json-c; the result is released when the current memory context is. */
extern struct json_object *aws_json_parse(const char *data, size_t len);
/* Tie an existing json-c reference to the current memory context. */
extern void aws_json_own(struct json_object *obj);

#endif							/* ESD_AWS_H */
