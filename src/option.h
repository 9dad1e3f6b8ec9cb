/*-------------------------------------------------------------------------
 *
 * option.h
 *	  Options of the event_store_dynamo foreign servers, user mappings,
 *	  foreign tables and columns: validation and lookup.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ESD_OPTION_H
#define ESD_OPTION_H

#include "postgres.h"
#include "access/attnum.h"
#include "nodes/pg_list.h"

#define ESD_TABLE_SUFFIX "schemeless-event-store"

/* Everything a request needs to reach and authenticate with AWS. */
/* What the options of a server and its user mapping say about credentials. */
typedef struct EsdCredentialRequest
{
	const char *server_name;	/* for messages */
	Oid			userid;			/* the role the credentials are for */
	const char *region;			/* the server's region (for STS) */
	bool		use_ambient;	/* server option use_ambient_credentials */
	/* user mapping options, NULL when absent */
	const char *access_key_id;
	const char *secret_access_key;
	const char *session_token;
	const char *profile;
} EsdCredentialRequest;

typedef struct EsdConnOptions
{
	Oid			serverid;
	Oid			userid;
	Oid			umid;			/* the user mapping found (the role's or PUBLIC), or InvalidOid */
	char	   *region;
	char	   *endpoint;		/* DynamoDB base URL, no trailing slash */
	char	   *s3_endpoint;	/* S3 base URL, no trailing slash */
	bool		s3_force_path_style;
	int			connect_timeout_ms;
	int			request_timeout_ms;
	int			max_retries;
	int			retry_base_ms;
	int			retry_cap_ms;
	int			max_in_flight;

	/*
	 * Credentials: what the server and user mapping options ask for, and
	 * the credentials themselves, resolved when a request first needs them
	 * (esd_conn_credentials, credentials.h): looking options up does no I/O.
	 */
	EsdCredentialRequest credential_request;
	struct EsdCredentials *credentials; /* NULL until resolved */
	MemoryContext cxt;			/* where the options live, and the credentials */
} EsdConnOptions;

/* What a foreign table points at. */
typedef struct EsdTableOptions
{
	char	   *table_name;		/* full DynamoDB table name */
	char	   *s3_bucket;		/* NULL when not set */
	char	   *s3_key_prefix;
	List	   *s3_allowed_buckets;	/* other buckets an s3Reference may name */
	bool		s3_any_bucket;	/* s3_allowed_buckets '*' */
	int			start_year;
	int			start_month;	/* 1..12 */
	int			lookahead_months;
	int			page_size;		/* GSI Query Limit; 0 = as much as fits 1 MB */
	int			read_capacity_units;	/* for table creation */
	int			write_capacity_units;
	bool		on_demand;		/* billing_mode PAY_PER_REQUEST */
	bool		auto_create;	/* the first INSERT creates a missing table */
	bool		truncatable;	/* TRUNCATE runs reset_store */
	int			offload_threshold;	/* item size in bytes above which INSERT offloads to S3 */
	bool		pushdown;		/* conditions may become DynamoDB key conditions */
	bool		check_given_ids;	/* look ids the rows give up before appending */
	bool		warn_bad_items; /* on_bad_item 'warn': skip unreadable events with a WARNING */
	bool		stream_index;	/* table creation adds streamIndex */
} EsdTableOptions;

extern void esd_get_conn_options(Oid serverid, Oid userid, EsdConnOptions *opts);
extern void esd_get_table_options(Oid relid, EsdTableOptions *opts);

/* Is this a name S3 could give a bucket (and so safe in a host name or a path)? */
extern bool esd_valid_s3_bucket_name(const char *name);

/*
 * May an item's s3Reference make a scan read from this bucket: a valid
 * name, and the table's s3_bucket or one of s3_allowed_buckets?
 */
extern bool esd_s3_bucket_allowed(const EsdTableOptions *table, const char *bucket);

/* DynamoDB attribute name behind a column (attribute_name option or camelCase of the name) */
extern char *esd_column_attribute_name(Oid relid, AttrNumber attnum, const char *colname);

#endif							/* ESD_OPTION_H */
