/*-------------------------------------------------------------------------
 *
 * option.c
 *	  Validation and lookup of event_store_dynamo options.
 *
 * Every option is checked when it is set (CREATE/ALTER SERVER, USER MAPPING,
 * FOREIGN TABLE, column OPTIONS), so that a scan never starts with a value
 * it cannot use.  Lookups apply the defaults the SPEC names.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#include "access/reloptions.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/syscache.h"

#include "codec.h"
#include "option.h"

typedef struct EsdOption
{
	const char *name;
	Oid			context;		/* catalog in which the option may appear */
} EsdOption;

static const EsdOption valid_options[] = {
	/* server */
	{"region", ForeignServerRelationId},
	{"endpoint", ForeignServerRelationId},
	{"s3_endpoint", ForeignServerRelationId},
	{"s3_force_path_style", ForeignServerRelationId},
	{"connect_timeout_ms", ForeignServerRelationId},
	{"request_timeout_ms", ForeignServerRelationId},
	{"max_retries", ForeignServerRelationId},
	{"retry_base_ms", ForeignServerRelationId},
	{"retry_cap_ms", ForeignServerRelationId},
	{"max_in_flight", ForeignServerRelationId},
	{"use_ambient_credentials", ForeignServerRelationId},
	/* user mapping */
	{"access_key_id", UserMappingRelationId},
	{"secret_access_key", UserMappingRelationId},
	{"session_token", UserMappingRelationId},
	{"profile", UserMappingRelationId},
	/* foreign table */
	{"table_name_prefix", ForeignTableRelationId},
	{"table_name", ForeignTableRelationId},
	{"s3_bucket", ForeignTableRelationId},
	{"s3_key_prefix", ForeignTableRelationId},
	{"s3_allowed_buckets", ForeignTableRelationId},
	{"start_month", ForeignTableRelationId},
	{"lookahead_months", ForeignTableRelationId},
	{"page_size", ForeignTableRelationId},
	{"read_capacity_units", ForeignTableRelationId},
	{"write_capacity_units", ForeignTableRelationId},
	{"billing_mode", ForeignTableRelationId},
	{"auto_create", ForeignTableRelationId},
	{"truncatable", ForeignTableRelationId},
	{"offload_threshold", ForeignTableRelationId},
	{"pushdown", ForeignTableRelationId},
	{"check_given_ids", ForeignTableRelationId},
	{"on_bad_item", ForeignTableRelationId},
	{"stream_index", ForeignTableRelationId},
	/* column */
	{"attribute_name", AttributeRelationId},
	{NULL, InvalidOid}
};

static const char *
context_name(Oid context)
{
	switch (context)
	{
		case ForeignServerRelationId:
			return "foreign server";
		case UserMappingRelationId:
			return "user mapping";
		case ForeignTableRelationId:
			return "foreign table";
		case AttributeRelationId:
			return "foreign table column";
		default:
			return "foreign-data wrapper";
	}
}

/*
 * Parse a whole number option within [min, max]; errors name the option.
 */
static int
parse_int_option(DefElem *def, int min, int max)
{
	char	   *value = defGetString(def);
	char	   *end;
	long		v;

	errno = 0;
	v = strtol(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0' || v < min || v > max)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"%s\": \"%s\"", def->defname, esd_shorten(value)),
				 errhint("Use a whole number from %d to %d.", min, max)));
	return (int) v;
}

static bool
parse_bool_option(DefElem *def)
{
	bool		result;

	if (!parse_bool(defGetString(def), &result))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"%s\": \"%s\"", def->defname, esd_shorten(defGetString(def))),
				 errhint("Use true or false.")));
	return result;
}

/*
 * An endpoint must be an absolute http or https URL with a host and nothing
 * after the path; curl's own URL parser decides.
 */
static void
check_url_option(DefElem *def)
{
	const char *value = defGetString(def);
	CURLU	   *url = curl_url();
	char	   *scheme = NULL;
	char	   *host = NULL;
	char	   *query = NULL;
	char	   *user = NULL;
	char	   *fragment = NULL;
	bool		ok;

	ok = url != NULL &&
		curl_url_set(url, CURLUPART_URL, value, 0) == CURLUE_OK &&
		curl_url_get(url, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
		curl_url_get(url, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
		(pg_strcasecmp(scheme, "http") == 0 || pg_strcasecmp(scheme, "https") == 0) &&
		host[0] != '\0' &&
		curl_url_get(url, CURLUPART_QUERY, &query, 0) == CURLUE_NO_QUERY &&
		curl_url_get(url, CURLUPART_USER, &user, 0) == CURLUE_NO_USER &&
		curl_url_get(url, CURLUPART_FRAGMENT, &fragment, 0) == CURLUE_NO_FRAGMENT;

	curl_free(scheme);
	curl_free(host);
	curl_free(query);
	curl_free(user);
	curl_free(fragment);
	curl_url_cleanup(url);

	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"%s\": \"%s\"", def->defname, esd_shorten(value)),
				 errhint("Use an http or https URL such as \"https://dynamodb.us-east-1.amazonaws.com\".")));
}

/* "YYYY-MM" with a real month; returns year and month. */
static bool
parse_month(const char *value, int *year, int *month)
{
	if (strlen(value) != 7 || value[4] != '-')
		return false;
	for (int i = 0; i < 7; i++)
		if (i != 4 && !isdigit((unsigned char) value[i]))
			return false;
	*year = atoi(value);
	*month = atoi(value + 5);
	return *year >= 1970 && *month >= 1 && *month <= 12;
}

/* on_bad_item: error (the default) or warn; true for the latter */
static bool
parse_on_bad_item(DefElem *def)
{
	const char *value = defGetString(def);

	if (pg_strcasecmp(value, "warn") == 0)
		return true;
	if (pg_strcasecmp(value, "error") == 0)
		return false;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value for option \"on_bad_item\": \"%s\"", esd_shorten(value)),
			 errhint("Use error (a replay stops at an event it cannot read) or warn (it skips the event with a WARNING).")));
	return false;				/* keep the compiler quiet */
}

/* billing_mode: PROVISIONED or PAY_PER_REQUEST (on demand); true for the latter */
static bool
parse_billing_mode(DefElem *def)
{
	const char *value = defGetString(def);

	if (pg_strcasecmp(value, "PAY_PER_REQUEST") == 0)
		return true;
	if (pg_strcasecmp(value, "PROVISIONED") == 0)
		return false;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value for option \"billing_mode\": \"%s\"", esd_shorten(value)),
			 errhint("Use PROVISIONED or PAY_PER_REQUEST.")));
	return false;				/* keep the compiler quiet */
}

static void
check_nonempty(DefElem *def)
{
	if (defGetString(def)[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" must not be empty", def->defname)));
}

/*
 * S3 bucket names: 3 to 63 characters of [a-z0-9.-] today; buckets made
 * before 2018 in us-east-1 may also hold capitals and '_', up to 255.  A
 * bucket goes into host names and into "<bucket>::<key>" references, so
 * nothing else may pass (no "::", quotes, slashes, spaces).
 */
bool
esd_valid_s3_bucket_name(const char *name)
{
	size_t		len = strlen(name);

	if (len < 3 || len > 255 ||
		!isalnum((unsigned char) name[0]) || !isalnum((unsigned char) name[len - 1]))
		return false;
	for (const char *p = name; *p; p++)
		if (!isalnum((unsigned char) *p) && *p != '_' && *p != '-' && *p != '.')
			return false;
	return true;
}

static void
check_s3_bucket(DefElem *def)
{
	const char *value = defGetString(def);

	if (!esd_valid_s3_bucket_name(value))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"%s\": \"%s\"", def->defname, esd_shorten(value)),
				 errhint("S3 bucket names have 3 to 63 characters among a-z, 0-9, '.' and '-'.")));
}

/*
 * s3_allowed_buckets: '*' (any valid bucket name), or bucket names
 * separated by commas.  Returns the names (NIL for '*'); *any tells which.
 */
static List *
parse_allowed_buckets(DefElem *def, bool *any)
{
	char	   *value = pstrdup(defGetString(def));
	List	   *names = NIL;
	char	   *p = value;

	*any = false;
	if (strcmp(value, "*") == 0)
	{
		*any = true;
		return NIL;
	}
	for (;;)
	{
		char	   *comma = strchr(p, ',');
		char	   *end;

		if (comma)
			*comma = '\0';
		while (*p == ' ')
			p++;
		end = p + strlen(p);
		while (end > p && end[-1] == ' ')
			*--end = '\0';
		if (!esd_valid_s3_bucket_name(p))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value for option \"s3_allowed_buckets\": \"%s\"", esd_shorten(defGetString(def))),
					 errdetail("\"%s\" is not an S3 bucket name.", esd_shorten(p)),
					 errhint("Use '*' or S3 bucket names separated by commas.")));
		names = lappend(names, p);
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	return names;
}

bool
esd_s3_bucket_allowed(const EsdTableOptions *table, const char *bucket)
{
	ListCell   *lc;

	if (!esd_valid_s3_bucket_name(bucket))
		return false;
	if (table->s3_any_bucket || (table->s3_bucket && strcmp(table->s3_bucket, bucket) == 0))
		return true;
	foreach(lc, table->s3_allowed_buckets)
		if (strcmp((char *) lfirst(lc), bucket) == 0)
			return true;
	return false;
}

/*
 * DynamoDB table names: 3 to 255 characters of [a-zA-Z0-9_.-].
 */
static void
check_table_name(DefElem *def, const char *full_name)
{
	size_t		len = strlen(full_name);

	for (const char *p = full_name; *p; p++)
		if (!isalnum((unsigned char) *p) && *p != '_' && *p != '-' && *p != '.')
			len = 0;
	if (len < 3 || len > 255)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"%s\": \"%s\"", def->defname, esd_shorten(defGetString(def))),
				 errdetail("The DynamoDB table name would be \"%s\".", esd_shorten(full_name)),
				 errhint("DynamoDB table names have 3 to 255 characters among a-z, A-Z, 0-9, '_', '-' and '.'.")));
}

/*
 * AWS region names: lower-case words joined by '-' and a number at the
 * end, such as us-east-1, eu-central-2, us-gov-west-1 or ap-southeast-5.
 * The region goes into the default endpoints' host names and into every
 * signature, so a typo ("us-east-1x") is caught here rather than as a
 * host that does not resolve or a signature AWS refuses.
 */
static bool
valid_region(const char *r)
{
	const char *p = r;
	int			words = 0;

	for (;;)
	{
		const char *start = p;

		while (*p >= 'a' && *p <= 'z')
			p++;
		if (p == start || *p != '-')
			break;
		words++;
		p++;
	}
	if (words < 2 || !isdigit((unsigned char) *p))
		return false;
	while (isdigit((unsigned char) *p))
		p++;
	return *p == '\0' && strlen(r) <= 32;
}

PG_FUNCTION_INFO_V1(event_store_dynamo_validator);

/*
 * Validate the options given to a CREATE or ALTER of a server, user
 * mapping, foreign table or column.
 */
Datum
event_store_dynamo_validator(PG_FUNCTION_ARGS)
{
	List	   *options = untransformRelOptions(PG_GETARG_DATUM(0));
	Oid			catalog = PG_GETARG_OID(1);
	bool		has_prefix = false;
	bool		has_name = false;
	bool		has_keys = false;
	bool		has_profile = false;
	ListCell   *cell;

	foreach(cell, options)
	{
		DefElem    *def = (DefElem *) lfirst(cell);
		const EsdOption *opt;
		int			y,
					m;

		for (opt = valid_options; opt->name; opt++)
			if (opt->context == catalog && strcmp(opt->name, def->defname) == 0)
				break;

		if (opt->name == NULL)
		{
			StringInfoData buf;

			initStringInfo(&buf);
			for (opt = valid_options; opt->name; opt++)
				if (opt->context == catalog)
					appendStringInfo(&buf, "%s%s", buf.len > 0 ? ", " : "", opt->name);
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("invalid option \"%s\" for %s", def->defname, context_name(catalog)),
					 buf.len > 0
					 ? errhint("Valid options in this context are: %s.", buf.data)
					 : errhint("There are no valid options in this context.")));
		}

		if (strcmp(def->defname, "endpoint") == 0 || strcmp(def->defname, "s3_endpoint") == 0)
			check_url_option(def);
		else if (strcmp(def->defname, "region") == 0)
		{
			const char *r = defGetString(def);

			check_nonempty(def);
			if (!valid_region(r))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid value for option \"region\": \"%s\"", esd_shorten(r)),
						 errhint("Use an AWS region name such as \"us-east-1\".")));
		}
		else if (strcmp(def->defname, "s3_force_path_style") == 0)
			(void) parse_bool_option(def);
		else if (strcmp(def->defname, "connect_timeout_ms") == 0 ||
				 strcmp(def->defname, "request_timeout_ms") == 0)
			(void) parse_int_option(def, 1, 3600 * 1000);
		else if (strcmp(def->defname, "max_retries") == 0)
			(void) parse_int_option(def, 0, 100);
		else if (strcmp(def->defname, "retry_base_ms") == 0 ||
				 strcmp(def->defname, "retry_cap_ms") == 0)
			(void) parse_int_option(def, 1, 600 * 1000);
		else if (strcmp(def->defname, "max_in_flight") == 0)
			(void) parse_int_option(def, 1, 64);
		else if (strcmp(def->defname, "access_key_id") == 0 ||
				 strcmp(def->defname, "secret_access_key") == 0)
		{
			has_keys = true;
			check_nonempty(def);
		}
		else if (strcmp(def->defname, "session_token") == 0)
			check_nonempty(def);
		else if (strcmp(def->defname, "profile") == 0)
		{
			has_profile = true;
			check_nonempty(def);
		}
		else if (strcmp(def->defname, "use_ambient_credentials") == 0)
		{
			/* the server process's credentials are a superuser's to share */
			if (parse_bool_option(def) && !superuser())
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("permission denied to set option \"use_ambient_credentials\""),
						 errdetail("The option lets every role with a user mapping or a foreign table on the server use the AWS credentials of the server process."),
						 errhint("Only superusers may set it to true, or change the options of a server that has it.")));
		}
		else if (strcmp(def->defname, "table_name_prefix") == 0)
		{
			has_prefix = true;
			check_table_name(def, psprintf("%s%s", defGetString(def), ESD_TABLE_SUFFIX));
		}
		else if (strcmp(def->defname, "table_name") == 0)
		{
			has_name = true;
			check_table_name(def, defGetString(def));
		}
		else if (strcmp(def->defname, "s3_bucket") == 0)
		{
			check_nonempty(def);
			check_s3_bucket(def);
		}
		else if (strcmp(def->defname, "s3_allowed_buckets") == 0)
		{
			bool		any;

			(void) parse_allowed_buckets(def, &any);
		}
		else if (strcmp(def->defname, "start_month") == 0)
		{
			if (!parse_month(defGetString(def), &y, &m))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid value for option \"start_month\": \"%s\"", esd_shorten(defGetString(def))),
						 errhint("Use a month as YYYY-MM, such as \"2020-01\".")));
		}
		else if (strcmp(def->defname, "lookahead_months") == 0)
			(void) parse_int_option(def, 0, 120);
		else if (strcmp(def->defname, "page_size") == 0)
			(void) parse_int_option(def, 0, 1000000);
		else if (strcmp(def->defname, "read_capacity_units") == 0 ||
				 strcmp(def->defname, "write_capacity_units") == 0)
			(void) parse_int_option(def, 1, 1000000);
		else if (strcmp(def->defname, "billing_mode") == 0)
			(void) parse_billing_mode(def);
		else if (strcmp(def->defname, "on_bad_item") == 0)
			(void) parse_on_bad_item(def);
		else if (strcmp(def->defname, "auto_create") == 0 ||
				 strcmp(def->defname, "truncatable") == 0 ||
				 strcmp(def->defname, "pushdown") == 0 ||
				 strcmp(def->defname, "check_given_ids") == 0 ||
				 strcmp(def->defname, "stream_index") == 0)
			(void) parse_bool_option(def);
		else if (strcmp(def->defname, "offload_threshold") == 0)
			(void) parse_int_option(def, 1024, 400 * 1024);
		else if (strcmp(def->defname, "attribute_name") == 0)
			check_nonempty(def);
	}

	if (has_keys && has_profile)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("option \"profile\" cannot be combined with \"access_key_id\" or \"secret_access_key\""),
				 errhint("A user mapping gives either its own keys or the name of a profile of the server's shared AWS files.")));

	if (has_prefix && has_name)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("options \"table_name\" and \"table_name_prefix\" cannot both be set"),
				 errhint("\"table_name_prefix\" names the table \"<prefix>%s\" as the Node adapter does; \"table_name\" gives the full name.",
						 ESD_TABLE_SUFFIX)));

	PG_RETURN_VOID();
}

static char *
strip_trailing_slashes(const char *url)
{
	char	   *copy = pstrdup(url);
	size_t		len = strlen(copy);

	while (len > 0 && copy[len - 1] == '/')
		copy[--len] = '\0';
	return copy;
}

/*
 * The options of the user mapping for the role on the server, or of the
 * PUBLIC one; NIL when there is none, which is a mapping without keys.
 */
static List *
user_mapping_options(Oid userid, Oid serverid, Oid *umid)
{
	HeapTuple	tp;
	Datum		datum;
	bool		isnull;
	List	   *options = NIL;

	*umid = InvalidOid;
	tp = SearchSysCache2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(userid),
						 ObjectIdGetDatum(serverid));
	if (!HeapTupleIsValid(tp))
		tp = SearchSysCache2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(InvalidOid),
							 ObjectIdGetDatum(serverid));
	if (!HeapTupleIsValid(tp))
		return NIL;
	*umid = ((Form_pg_user_mapping) GETSTRUCT(tp))->oid;
	datum = SysCacheGetAttr(USERMAPPINGUSERSERVER, tp, Anum_pg_user_mapping_umoptions, &isnull);
	if (!isnull)
		options = untransformRelOptions(datum);
	ReleaseSysCache(tp);
	return options;
}

/*
 * Gather server and user mapping options, applying defaults, and what they
 * say about credentials: those are resolved when a request first needs
 * them (credentials.c), so looking options up does no I/O.
 */
void
esd_get_conn_options(Oid serverid, Oid userid, EsdConnOptions *opts)
{
	ForeignServer *server = GetForeignServer(serverid);
	Oid			umid;
	List	   *um_options = user_mapping_options(userid, serverid, &umid);
	EsdCredentialRequest *creq = &opts->credential_request;
	ListCell   *cell;

	memset(opts, 0, sizeof(*opts));
	opts->cxt = CurrentMemoryContext;
	opts->umid = umid;
	opts->serverid = serverid;
	opts->userid = userid;
	opts->region = "us-east-1";
	opts->connect_timeout_ms = 5000;
	opts->request_timeout_ms = 30000;
	opts->max_retries = 10;
	opts->retry_base_ms = 25;
	opts->retry_cap_ms = 2000;
	opts->max_in_flight = 16;

	foreach(cell, server->options)
	{
		DefElem    *def = (DefElem *) lfirst(cell);

		if (strcmp(def->defname, "region") == 0)
			opts->region = defGetString(def);
		else if (strcmp(def->defname, "endpoint") == 0)
			opts->endpoint = defGetString(def);
		else if (strcmp(def->defname, "s3_endpoint") == 0)
			opts->s3_endpoint = defGetString(def);
		else if (strcmp(def->defname, "s3_force_path_style") == 0)
			opts->s3_force_path_style = parse_bool_option(def);
		else if (strcmp(def->defname, "connect_timeout_ms") == 0)
			opts->connect_timeout_ms = parse_int_option(def, 1, 3600 * 1000);
		else if (strcmp(def->defname, "request_timeout_ms") == 0)
			opts->request_timeout_ms = parse_int_option(def, 1, 3600 * 1000);
		else if (strcmp(def->defname, "max_retries") == 0)
			opts->max_retries = parse_int_option(def, 0, 100);
		else if (strcmp(def->defname, "retry_base_ms") == 0)
			opts->retry_base_ms = parse_int_option(def, 1, 600 * 1000);
		else if (strcmp(def->defname, "retry_cap_ms") == 0)
			opts->retry_cap_ms = parse_int_option(def, 1, 600 * 1000);
		else if (strcmp(def->defname, "max_in_flight") == 0)
			opts->max_in_flight = parse_int_option(def, 1, 64);
		else if (strcmp(def->defname, "use_ambient_credentials") == 0)
			creq->use_ambient = parse_bool_option(def);
	}

	foreach(cell, um_options)
	{
		DefElem    *def = (DefElem *) lfirst(cell);

		if (strcmp(def->defname, "access_key_id") == 0)
			creq->access_key_id = defGetString(def);
		else if (strcmp(def->defname, "secret_access_key") == 0)
			creq->secret_access_key = defGetString(def);
		else if (strcmp(def->defname, "session_token") == 0)
			creq->session_token = defGetString(def);
		else if (strcmp(def->defname, "profile") == 0)
			creq->profile = defGetString(def);
	}

	if (opts->endpoint == NULL)
		opts->endpoint = psprintf("https://dynamodb.%s.amazonaws.com", opts->region);
	if (opts->s3_endpoint == NULL)
		opts->s3_endpoint = psprintf("https://s3.%s.amazonaws.com", opts->region);

	/* one form for building URLs: no trailing slash */
	opts->endpoint = strip_trailing_slashes(opts->endpoint);
	opts->s3_endpoint = strip_trailing_slashes(opts->s3_endpoint);

	creq->server_name = server->servername;
	creq->userid = userid;
	creq->region = opts->region;
}

/*
 * Gather foreign table options, applying defaults.
 */
void
esd_get_table_options(Oid relid, EsdTableOptions *opts)
{
	ForeignTable *table = GetForeignTable(relid);
	const char *prefix = "";
	ListCell   *cell;

	memset(opts, 0, sizeof(*opts));
	opts->s3_key_prefix = "events/";
	opts->start_year = 2020;
	opts->start_month = 1;
	opts->lookahead_months = 3;
	opts->read_capacity_units = 10;
	opts->write_capacity_units = 10;
	opts->auto_create = true;
	opts->offload_threshold = 350000;
	opts->pushdown = true;
	opts->check_given_ids = true;
	opts->stream_index = true;

	foreach(cell, table->options)
	{
		DefElem    *def = (DefElem *) lfirst(cell);

		if (strcmp(def->defname, "table_name_prefix") == 0)
			prefix = defGetString(def);
		else if (strcmp(def->defname, "table_name") == 0)
			opts->table_name = defGetString(def);
		else if (strcmp(def->defname, "s3_bucket") == 0)
			opts->s3_bucket = defGetString(def);
		else if (strcmp(def->defname, "s3_key_prefix") == 0)
			opts->s3_key_prefix = defGetString(def);
		else if (strcmp(def->defname, "s3_allowed_buckets") == 0)
			opts->s3_allowed_buckets = parse_allowed_buckets(def, &opts->s3_any_bucket);
		else if (strcmp(def->defname, "start_month") == 0)
			(void) parse_month(defGetString(def), &opts->start_year, &opts->start_month);
		else if (strcmp(def->defname, "lookahead_months") == 0)
			opts->lookahead_months = parse_int_option(def, 0, 120);
		else if (strcmp(def->defname, "page_size") == 0)
			opts->page_size = parse_int_option(def, 0, 1000000);
		else if (strcmp(def->defname, "read_capacity_units") == 0)
			opts->read_capacity_units = parse_int_option(def, 1, 1000000);
		else if (strcmp(def->defname, "write_capacity_units") == 0)
			opts->write_capacity_units = parse_int_option(def, 1, 1000000);
		else if (strcmp(def->defname, "billing_mode") == 0)
			opts->on_demand = parse_billing_mode(def);
		else if (strcmp(def->defname, "auto_create") == 0)
			opts->auto_create = parse_bool_option(def);
		else if (strcmp(def->defname, "truncatable") == 0)
			opts->truncatable = parse_bool_option(def);
		else if (strcmp(def->defname, "offload_threshold") == 0)
			opts->offload_threshold = parse_int_option(def, 1024, 400 * 1024);
		else if (strcmp(def->defname, "pushdown") == 0)
			opts->pushdown = parse_bool_option(def);
		else if (strcmp(def->defname, "check_given_ids") == 0)
			opts->check_given_ids = parse_bool_option(def);
		else if (strcmp(def->defname, "on_bad_item") == 0)
			opts->warn_bad_items = parse_on_bad_item(def);
		else if (strcmp(def->defname, "stream_index") == 0)
			opts->stream_index = parse_bool_option(def);
	}

	if (opts->table_name == NULL)
		opts->table_name = psprintf("%s%s", prefix, ESD_TABLE_SUFFIX);
}

/*
 * The DynamoDB attribute behind a column: its attribute_name option, or the
 * column name with snake_case turned into the layout's camelCase.
 */
char *
esd_column_attribute_name(Oid relid, AttrNumber attnum, const char *colname)
{
	List	   *options = GetForeignColumnOptions(relid, attnum);
	ListCell   *cell;
	StringInfoData buf;
	bool		upper = false;

	foreach(cell, options)
	{
		DefElem    *def = (DefElem *) lfirst(cell);

		if (strcmp(def->defname, "attribute_name") == 0)
			return defGetString(def);
	}

	initStringInfo(&buf);
	for (const char *p = colname; *p; p++)
	{
		if (*p == '_' && buf.len > 0 && p[1] != '\0')
			upper = true;
		else
		{
			appendStringInfoChar(&buf, upper ? pg_toupper((unsigned char) *p) : *p);
			upper = false;
		}
	}
	return buf.data;
}
