/*-------------------------------------------------------------------------
 *
 * store.h
 *	  The life cycle of an event store on AWS: describing, creating and
 *	  deleting its DynamoDB table and waiting for it, checking that the
 *	  table has the layout's shape, adding the stream index to a table
 *	  that lacks it, creating its S3 bucket, and reading a stream head.
 *	  No SQL here: admin.c puts this behind functions.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ESD_STORE_H
#define ESD_STORE_H

#include "postgres.h"

#include "nodes/pg_list.h"

#include "option.h"

/* How long reset and creation wait for DynamoDB before giving up. */
#define ESD_STORE_WAIT_SECONDS 300

/*
 * A global secondary index, as DescribeTable reports it.  Its partition
 * key and sort key may each be made of several attributes (streamIndex is
 * partitioned on domain and identifier together): the lists hold the
 * attribute names (char *) in KeySchema order, NIL when none is reported.
 */
typedef struct EsdIndexInfo
{
	char	   *name;
	char	   *status;			/* IndexStatus: CREATING, ACTIVE, ... */
	List	   *hash_keys;
	List	   *range_keys;
	char	   *projection;		/* ProjectionType: KEYS_ONLY, INCLUDE, ALL */
} EsdIndexInfo;

/* An attribute definition: name and scalar type (S, N or B). */
typedef struct EsdAttrInfo
{
	char	   *name;
	char	   *type;
} EsdAttrInfo;

/* A DynamoDB table, as DescribeTable reports it. */
typedef struct EsdTableInfo
{
	char	   *name;
	char	   *status;			/* TableStatus: CREATING, ACTIVE, DELETING, ... */
	int64		item_count;		/* as DynamoDB reports it (refreshed periodically) */
	int64		size_bytes;
	bool		on_demand;		/* billing mode PAY_PER_REQUEST */
	int64		read_capacity_units;
	int64		write_capacity_units;
	char	   *hash_key;
	char	   *range_key;
	int			nattrs;
	EsdAttrInfo *attrs;
	int			nindexes;
	EsdIndexInfo *indexes;
	bool		stream_enabled; /* StreamSpecification.StreamEnabled */
	char	   *stream_view_type;	/* KEYS_ONLY, NEW_IMAGE, ...; NULL without */
	char	   *latest_stream_arn;	/* the table's latest stream, enabled or not */
} EsdTableInfo;

/* DescribeTable; false when the table does not exist. */
extern bool esd_describe_table(const EsdConnOptions *conn, const char *table,
							   EsdTableInfo *info);

/*
 * What keeps a described table from having the layout's shape, as one
 * sentence per difference; NULL when it has it.
 */
extern char *esd_table_shape_problems(const EsdTableInfo *info);

/* Are the table and the layout's indexes it has all ACTIVE? */
extern bool esd_table_ready(const EsdTableInfo *info);

/* The described table's global secondary index of that name, or NULL. */
extern const EsdIndexInfo *esd_table_index(const EsdTableInfo *info, const char *name);

/*
 * CreateTable with the layout's key schema, attribute definitions and
 * indexes (streamIndex unless the table option stream_index is false),
 * billed as the table options say.  Returns false when DynamoDB answers
 * that the table exists already (someone else just created it).  Does not
 * wait.
 */
extern bool esd_create_table(const EsdConnOptions *conn, const EsdTableOptions *table);

/*
 * UpdateTable adding streamIndex and the attribute definitions it needs
 * to the described table, billed as the table is (capacity units from the
 * table options when it is provisioned).  Returns false when the request
 * failed because someone else added the index meanwhile.  Does not wait:
 * DynamoDB then backfills the index from the items already there.
 */
extern bool esd_create_stream_index(const EsdConnOptions *conn, const EsdTableOptions *table,
									 const EsdTableInfo *info);

/* DeleteTable; false when the table does not exist.  Does not wait. */
extern bool esd_delete_table(const EsdConnOptions *conn, const char *table);

/*
 * Poll DescribeTable until the table and the layout's indexes it has are
 * ACTIVE (until_gone false) or until the table no longer exists (until_gone
 * true).  Interruptible; fails after ESD_STORE_WAIT_SECONDS.  With
 * until_gone false, a table that disappears is an error.
 */
extern void esd_wait_for_table(const EsdConnOptions *conn, const char *table,
							   bool until_gone);

/* HeadBucket: does the bucket exist? */
extern bool esd_bucket_exists(const EsdConnOptions *conn, const char *bucket);

/* HeadBucket, then CreateBucket when it is missing; true when created. */
extern bool esd_ensure_bucket(const EsdConnOptions *conn, const char *bucket);

/*
 * The version of a stream head (consistent read), 0 for a stream never
 * written.  identifier NULL is the stream without identifier.
 */
extern int64 esd_stream_head_version(const EsdConnOptions *conn, const char *table,
									 const char *domain, const char *identifier);

#endif							/* ESD_STORE_H */
