/*-------------------------------------------------------------------------
 *
 * aws.c
 *	  Signed requests to DynamoDB and S3, the retry policy, and the mapping
 *	  of AWS failures to PostgreSQL errors.
 *
 * There is one retry policy: capped exponential backoff with jitter (retry
 * n waits a random time between half and all of min(retry_cap_ms,
 * retry_base_ms * 2^(n-1)), so that retries are always spaced) for
 * throttling, 5xx answers, timeouts and dropped connections, up to
 * max_retries retries.  A refused connection or an unknown host is retried
 * at most twice, so that a wrong endpoint fails fast.  Anything else
 * (validation, missing table, signature and credential errors) fails at
 * once.  Each call is re-signed on every attempt; the scheduler
 * (scheduler.c) runs them concurrently and decides who owns them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <json-c/json.h>
#include <time.h>

#include "common/base64.h"
#include "common/pg_prng.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "aws.h"
#include "codec.h"
#include "credentials.h"
#include "sigv4.h"

#define MAX_ERROR_TEXT 300
#define JSON_MAX_DEPTH 512

static void
put_json_callback(void *arg)
{
	json_object_put((json_object *) arg);
}

void
aws_json_own(struct json_object *obj)
{
	MemoryContextCallback *cb;

	if (obj == NULL)
		return;
	cb = palloc(sizeof(MemoryContextCallback));
	cb->func = put_json_callback;
	cb->arg = obj;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, cb);
}

struct json_object *
aws_json_parse(const char *data, size_t len)
{
	json_tokener *tok = json_tokener_new_ex(JSON_MAX_DEPTH);
	json_object *obj;

	if (tok == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	/* JSON is UTF-8: bytes that are not never reach a text datum */
	json_tokener_set_flags(tok, JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, data, (int) len);
	if (obj == NULL && json_tokener_get_error(tok) == json_tokener_continue)
	{
		/*
		 * All of the text was read and a value may be waiting for its end: a
		 * number or true/false at the very end of the text has none.  The
		 * terminating NUL completes it (and fails anything incomplete).
		 */
		obj = json_tokener_parse_ex(tok, "", 1);
	}
	else if (obj != NULL && (json_tokener_get_error(tok) != json_tokener_success ||
							 tok->char_offset != (int) len))
	{
		/* trailing garbage: only whitespace may follow the value */
		for (size_t i = tok->char_offset; i < len; i++)
			if (!isspace((unsigned char) data[i]))
			{
				json_object_put(obj);
				obj = NULL;
				break;
			}
	}
	json_tokener_free(tok);
	aws_json_own(obj);
	return obj;
}

/*
 * Split a base URL into what requests need: the Host header value (with
 * the port when one is given) and the path prefix.
 */
static void
split_url(const char *base, char **scheme, char **host, char **prefix)
{
	const char *p = strstr(base, "://");
	const char *slash;

	Assert(p != NULL);
	*scheme = pnstrdup(base, p - base);
	p += 3;
	slash = strchr(p, '/');
	if (slash)
	{
		*host = pnstrdup(p, slash - p);
		*prefix = pstrdup(slash);
	}
	else
	{
		*host = pstrdup(p);
		*prefix = pstrdup("");
	}
}

void
aws_dynamodb_init(AwsCall *call, const EsdConnOptions *conn,
				  const char *operation, const char *table,
				  const char *json_body)
{
	char	   *scheme;

	memset(call, 0, sizeof(*call));
	call->operation = operation;
	call->resource = table;
	call->is_s3 = false;
	call->method = "POST";
	split_url(conn->endpoint, &scheme, &call->host, &call->path);
	if (call->path[0] == '\0')
		call->path = "/";
	call->url = psprintf("%s://%s%s", scheme, call->host,
						 sigv4_uri_encode(call->path, true));
	call->target = psprintf("DynamoDB_20120810.%s", operation);
	call->body = pstrdup(json_body);
	call->body_len = strlen(json_body);
}

/*
 * An S3 request on a bucket (key NULL) or an object, path-style or
 * virtual-hosted as the server says.  The body, if any, is copied.
 */
void
aws_s3_init(AwsCall *call, const EsdConnOptions *conn, const char *operation,
			const char *method, const char *bucket, const char *key,
			const char *body, size_t body_len)
{
	char	   *scheme;
	char	   *host;
	char	   *prefix;
	const char *object = key ? key : "";

	memset(call, 0, sizeof(*call));
	call->operation = operation;
	call->resource = esd_shorten(key ? psprintf("%s/%s", bucket, key) : bucket);
	call->is_s3 = true;
	call->method = method;
	split_url(conn->s3_endpoint, &scheme, &host, &prefix);
	if (conn->s3_force_path_style)
	{
		call->host = host;
		call->path = key ? psprintf("%s/%s/%s", prefix, bucket, object)
			: psprintf("%s/%s", prefix, bucket);
	}
	else
	{
		call->host = psprintf("%s.%s", bucket, host);
		call->path = psprintf("%s/%s", prefix, object);
	}
	call->url = psprintf("%s://%s%s", scheme, call->host,
						 sigv4_uri_encode(call->path, true));
	if (body_len > 0)
	{
		call->body = palloc(body_len + 1);
		memcpy(call->body, body, body_len);
		call->body[body_len] = '\0';
		call->body_len = body_len;
	}
}

void
aws_s3_get_init(AwsCall *call, const EsdConnOptions *conn,
				const char *bucket, const char *key)
{
	aws_s3_init(call, conn, "GetObject", "GET", bucket, key, NULL, 0);
}

/*
 * CRC-32 (the ISO-HDLC polynomial, reflected) of a body, as S3's
 * x-amz-checksum-crc32 carries it: the four bytes, big-endian, in base64.
 */
static char *
s3_checksum_crc32(const char *body, size_t len)
{
	static uint32 table[256];
	static bool table_ready = false;
	uint32		crc = 0xFFFFFFFF;
	unsigned char bytes[4];
	char	   *out;
	int			n;

	if (!table_ready)
	{
		for (uint32 i = 0; i < 256; i++)
		{
			uint32		c = i;

			for (int k = 0; k < 8; k++)
				c = (c & 1) ? 0xEDB88320 ^ (c >> 1) : c >> 1;
			table[i] = c;
		}
		table_ready = true;
	}
	for (size_t i = 0; i < len; i++)
		crc = table[(crc ^ (unsigned char) body[i]) & 0xFF] ^ (crc >> 8);
	crc ^= 0xFFFFFFFF;
	bytes[0] = (unsigned char) (crc >> 24);
	bytes[1] = (unsigned char) (crc >> 16);
	bytes[2] = (unsigned char) (crc >> 8);
	bytes[3] = (unsigned char) crc;
	out = palloc(pg_b64_enc_len(4) + 1);
	n = pg_b64_encode((const char *) bytes, 4, out, pg_b64_enc_len(4));
	if (n < 0)
		elog(ERROR, "could not encode a checksum in base64");
	out[n] = '\0';
	return out;
}

/*
 * The upload of an offloaded event's body, with the headers the Node
 * adapter's upload carries (Content-Type application/json and the ACL
 * "private") and the body's CRC-32 as the AWS SDK adds by default, all
 * signed: S3 stores a JSON object no one else may read and refuses a body
 * damaged on the way.
 */
void
aws_s3_put_event_init(AwsCall *call, const EsdConnOptions *conn,
					  const char *bucket, const char *key,
					  const char *body, size_t body_len)
{
	aws_s3_init(call, conn, "PutObject", "PUT", bucket, key, body, body_len);
	call->content_type = "application/json";
	call->acl = "private";
	call->checksum_crc32 = s3_checksum_crc32(body, body_len);
}

static void count_request(AwsCall *call, AwsStats *stats);

/*
 * Sign the call for this attempt and hand it to the HTTP layer; the answer
 * will be kept in the call's memory context.
 */
void
aws_start_attempt(AwsCall *call)
{
	const EsdConnOptions *conn = call->conn;
	AwsStats	scratch;
	MemoryContext old = MemoryContextSwitchTo(call->cxt);
	SigV4Pair	sign_headers[6];
	int			nsign = 0;
	SigV4Request req;
	SigV4Result res;
	char		amz_date[17];
	struct curl_slist *h = NULL;
	EsdCredentials *creds = esd_credentials_current(esd_conn_credentials(conn));

	sigv4_format_amz_date((long) time(NULL), amz_date);

	sign_headers[nsign++] = (SigV4Pair) {"host", call->host};
	if (call->is_s3 && call->content_type)
		sign_headers[nsign++] = (SigV4Pair) {"content-type", call->content_type};
	if (call->is_s3 && call->acl)
		sign_headers[nsign++] = (SigV4Pair) {"x-amz-acl", call->acl};
	if (call->is_s3 && call->checksum_crc32)
	{
		sign_headers[nsign++] = (SigV4Pair) {"x-amz-checksum-crc32", call->checksum_crc32};
		sign_headers[nsign++] = (SigV4Pair) {"x-amz-sdk-checksum-algorithm", "CRC32"};
	}
	if (!call->is_s3)
	{
		sign_headers[nsign++] = (SigV4Pair) {"content-type", "application/x-amz-json-1.0"};
		sign_headers[nsign++] = (SigV4Pair) {"x-amz-target", call->target};
	}

	memset(&req, 0, sizeof(req));
	req.method = call->method;
	req.path = call->path;
	req.headers = sign_headers;
	req.nheaders = nsign;
	req.body = call->body;
	req.body_len = call->body_len;
	req.region = conn->region;
	req.service = call->is_s3 ? "s3" : "dynamodb";
	req.access_key_id = creds->access_key_id;
	req.secret_access_key = creds->secret_access_key;
	req.session_token = creds->session_token;
	req.amz_date = amz_date;
	sigv4_sign(&req, &res);
	call->credential_generation = creds->generation;
	call->credential_detail = creds->source == ESD_CREDENTIALS_USER_MAPPING ? NULL
		: psprintf("%s (%s)", esd_credential_source_name(creds->source), creds->detail);

	if (call->headers)
		curl_slist_free_all(call->headers);
	h = curl_slist_append(h, psprintf("Host: %s", call->host));
	h = curl_slist_append(h, psprintf("X-Amz-Date: %s", amz_date));
	h = curl_slist_append(h, psprintf("Authorization: %s", res.authorization));
	if (creds->session_token && creds->session_token[0])
		h = curl_slist_append(h, psprintf("X-Amz-Security-Token: %s", creds->session_token));
	if (call->is_s3)
	{
		h = curl_slist_append(h, psprintf("X-Amz-Content-SHA256: %s", res.payload_hash));
		/* without one, curl would send a form's type with a body */
		h = curl_slist_append(h, call->content_type
							  ? psprintf("Content-Type: %s", call->content_type)
							  : "Content-Type:");
		if (call->acl)
			h = curl_slist_append(h, psprintf("X-Amz-Acl: %s", call->acl));
		if (call->checksum_crc32)
		{
			h = curl_slist_append(h, psprintf("X-Amz-Checksum-Crc32: %s", call->checksum_crc32));
			h = curl_slist_append(h, "X-Amz-Sdk-Checksum-Algorithm: CRC32");
		}
	}
	else
	{
		h = curl_slist_append(h, "Content-Type: application/x-amz-json-1.0");
		h = curl_slist_append(h, psprintf("X-Amz-Target: %s", call->target));
	}
	h = curl_slist_append(h, "Expect:");
	h = curl_slist_append(h, "Accept:");
	if (h == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	call->headers = h;

	memset(&call->transfer, 0, sizeof(call->transfer));
	call->transfer.method = call->method;
	call->transfer.url = call->url;
	call->transfer.headers = h;
	call->transfer.body = call->body;
	call->transfer.body_len = call->body_len;
	call->transfer.connect_timeout_ms = conn->connect_timeout_ms;
	call->transfer.timeout_ms = conn->request_timeout_ms;
	call->transfer.owner = call;
	call->attempts++;
	memset(&scratch, 0, sizeof(scratch));
	count_request(call, call->stats ? call->stats : &scratch);
	http_start(&call->transfer);
	MemoryContextSwitchTo(old);
}

/* Keep remote text printable and short before it goes into a message. */
static char *
clean_remote_text(const char *s, size_t len)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (size_t i = 0; i < len && buf.len < MAX_ERROR_TEXT; i++)
	{
		unsigned char c = (unsigned char) s[i];

		appendStringInfoChar(&buf, (c >= 0x20 && c < 0x7f) ? (char) c : ' ');
	}
	if (len > MAX_ERROR_TEXT)
		appendStringInfoString(&buf, "...");
	return buf.data;
}

/* The text of the first <tag>...</tag> of an XML answer, entities decoded. */
char *
aws_xml_text(const char *body, const char *tag)
{
	char	   *open = psprintf("<%s>", tag);
	char	   *close = psprintf("</%s>", tag);
	const char *start = strstr(body, open);
	const char *end;
	StringInfoData buf;

	if (start == NULL)
		return NULL;
	start += strlen(open);
	end = strstr(start, close);
	if (end == NULL)
		return NULL;
	initStringInfo(&buf);
	for (const char *p = start; p < end; p++)
	{
		static const char *const entities[][2] = {
			{"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&apos;", "'"}
		};
		bool		decoded = false;

		if (*p == '&')
			for (int i = 0; i < (int) lengthof(entities); i++)
				if (strncmp(p, entities[i][0], strlen(entities[i][0])) == 0)
				{
					appendStringInfoString(&buf, entities[i][1]);
					p += strlen(entities[i][0]) - 1;
					decoded = true;
					break;
				}
		if (!decoded)
			appendStringInfoChar(&buf, *p);
	}
	return buf.data;
}

/* Read the error type and message out of a failed answer. */
static void
parse_remote_error(AwsCall *call, const char *body, size_t len)
{
	call->error_type = NULL;
	call->error_message = NULL;

	if (!call->is_s3)
	{
		json_object *root = aws_json_parse(body, len);
		json_object *v;

		call->error_json = root;

		if (root && json_object_is_type(root, json_type_object))
		{
			if (json_object_object_get_ex(root, "__type", &v) && json_object_is_type(v, json_type_string))
			{
				const char *type = json_object_get_string(v);
				const char *hash = strrchr(type, '#');

				call->error_type = clean_remote_text(hash ? hash + 1 : type,
													 strlen(hash ? hash + 1 : type));
			}
			if ((json_object_object_get_ex(root, "message", &v) ||
				 json_object_object_get_ex(root, "Message", &v)) &&
				json_object_is_type(v, json_type_string))
				call->error_message = clean_remote_text(json_object_get_string(v),
														json_object_get_string_len(v));
		}
	}
	else if (len > 0)
	{
		char	   *text = pnstrdup(body, len);

		call->error_type = aws_xml_text(text, "Code");
		call->error_message = aws_xml_text(text, "Message");
		if (call->error_type)
			call->error_type = clean_remote_text(call->error_type, strlen(call->error_type));
		if (call->error_message)
			call->error_message = clean_remote_text(call->error_message, strlen(call->error_message));
	}

	if (call->error_type == NULL)
		call->error_type = psprintf("HTTP %ld", call->status);
	if (call->error_message == NULL)
		call->error_message = len > 0 ? clean_remote_text(body, len)
			: pstrdup("(empty response body)");
}

static bool
type_is(const char *type, const char *const *names)
{
	for (; *names; names++)
		if (strcmp(type, *names) == 0)
			return true;
	return false;
}

static const char *const throttling_types[] = {
	"ProvisionedThroughputExceededException", "ThrottlingException",
	"RequestLimitExceeded", "Throttling", "SlowDown", "TooManyRequestsException",
	"LimitExceededException",	/* DynamoDB Streams, and too many table changes at once */
	NULL
};

static const char *const auth_types[] = {
	"UnrecognizedClientException", "InvalidSignatureException",
	"MissingAuthenticationTokenException", "IncompleteSignatureException",
	"AccessDeniedException", "ExpiredTokenException", "InvalidClientTokenId",
	"SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied", "ExpiredToken",
	"MissingAuthenticationToken", "AuthorizationHeaderMalformed",
	NULL
};

static const char *const expired_token_types[] = {
	"ExpiredTokenException", "ExpiredToken", NULL
};

static const char *const s3_size_types[] = {
	"KeyTooLongError", "EntityTooLarge", "MetadataTooLarge", NULL
};

/*
 * Is the failure a value over one of AWS's size limits (a DynamoDB item
 * over 400 KB, a key over 2048 or 1024 bytes, an S3 key over 1024 bytes)?
 * DynamoDB says so only in the text of a ValidationException.
 */
static bool
over_size_limit(AwsCall *call)
{
	char	   *lower;

	if (call->is_s3)
		return type_is(call->error_type, s3_size_types);
	if (strcmp(call->error_type, "ValidationException") != 0)
		return false;
	lower = pstrdup(call->error_message);
	for (char *p = lower; *p; p++)
		*p = pg_tolower((unsigned char) *p);
	return strstr(lower, "size") != NULL && strstr(lower, "exceed") != NULL;
}

/*
 * Random wait before the next attempt: between half and all of a capped
 * exponential (half of it fixed, so that the waits grow whatever the draws).
 */
long
aws_backoff_ms(const EsdConnOptions *conn, int attempts)
{
	double		ceiling = conn->retry_base_ms;

	for (int i = 1; i < attempts && ceiling < conn->retry_cap_ms; i++)
		ceiling *= 2;
	if (ceiling > conn->retry_cap_ms)
		ceiling = conn->retry_cap_ms;
	return (long) (ceiling / 2 + pg_prng_double(&pg_global_prng_state) * ceiling / 2);
}

/*
 * The members of DynamoDB answers that the extension reads, and the JSON
 * type each must have.  An answer that breaks these is as malformed as one
 * that is not JSON: read as it is, it would lose events without a word (an
 * "Items" that is not an array reads as an empty page).
 */
typedef struct AnswerMember
{
	const char *operation;		/* NULL: in any answer that has it */
	const char *member;
	json_type	type;
	bool		required;		/* the operation's answer always has it */
} AnswerMember;

static const AnswerMember answer_members[] = {
	{"Query", "Items", json_type_array, true},
	{"Query", "Count", json_type_int, true},
	{"BatchGetItem", "Responses", json_type_object, true},
	{"DescribeTable", "Table", json_type_object, true},
	{NULL, "Items", json_type_array, false},
	{NULL, "Count", json_type_int, false},
	{NULL, "ScannedCount", json_type_int, false},
	{NULL, "LastEvaluatedKey", json_type_object, false},
	{NULL, "Item", json_type_object, false},
	{NULL, "UnprocessedKeys", json_type_object, false},
	{NULL, "TableDescription", json_type_object, false},
	{NULL, NULL, json_type_null, false}
};

/* An item is an object of AttributeValues, which are objects too. */
static bool
is_item(json_object *item)
{
	if (!json_object_is_type(item, json_type_object))
		return false;
	{
		json_object_object_foreach(item, name, av)
		{
			(void) name;
			if (!json_object_is_type(av, json_type_object))
				return false;
		}
	}
	return true;
}

static bool
is_item_array(json_object *items)
{
	size_t		n = json_object_array_length(items);

	for (size_t i = 0; i < n; i++)
		if (!is_item(json_object_array_get_idx(items, i)))
			return false;
	return true;
}

/*
 * What is wrong with the shape of a DynamoDB answer, or NULL when nothing
 * the extension reads is amiss.
 */
static char *
answer_shape_problem(const char *operation, json_object *answer)
{
	static const char *const type_names[] = {
		[json_type_null] = "null", [json_type_boolean] = "a boolean",
		[json_type_double] = "a number", [json_type_int] = "an integer",
		[json_type_object] = "an object", [json_type_array] = "an array",
		[json_type_string] = "a string"
	};
	json_object *v;

	for (const AnswerMember *m = answer_members; m->member; m++)
	{
		if (m->operation && strcmp(m->operation, operation) != 0)
			continue;
		if (!json_object_object_get_ex(answer, m->member, &v))
		{
			if (m->required)
				return psprintf("\"%s\" is missing", m->member);
			continue;
		}
		if (!json_object_is_type(v, m->type))
			return psprintf("\"%s\" is %s, not %s", m->member,
							type_names[json_object_get_type(v)], type_names[m->type]);
	}

	/* the items themselves, where the answer holds some */
	if (json_object_object_get_ex(answer, "Items", &v) && !is_item_array(v))
		return pstrdup("\"Items\" holds something that is not an item");
	if (json_object_object_get_ex(answer, "Item", &v) && !is_item(v))
		return pstrdup("\"Item\" is not an item");
	if (json_object_object_get_ex(answer, "Responses", &v) &&
		json_object_is_type(v, json_type_object))
	{
		json_object_object_foreach(v, table, items)
		{
			(void) table;
			if (!json_object_is_type(items, json_type_array) || !is_item_array(items))
				return pstrdup("\"Responses\" holds something that is not an array of items");
		}
	}
	return NULL;
}

/* The capacity units an answer says it consumed (one table, or a list of them). */
static double
consumed_capacity(json_object *answer)
{
	json_object *cc;
	json_object *units;
	double		total = 0;

	if (!json_object_object_get_ex(answer, "ConsumedCapacity", &cc))
		return 0;
	if (json_object_is_type(cc, json_type_array))
	{
		for (size_t i = 0; i < json_object_array_length(cc); i++)
			if (json_object_object_get_ex(json_object_array_get_idx(cc, i), "CapacityUnits", &units))
				total += json_object_get_double(units);
	}
	else if (json_object_object_get_ex(cc, "CapacityUnits", &units))
		total = json_object_get_double(units);
	return total;
}

/*
 * Decide what a finished attempt means: success, retry later, or failure.
 */
static void
classify(const EsdConnOptions *conn, AwsCall *call, AwsStats *stats)
{
	HttpTransfer *t = &call->transfer;
	bool		retryable = false;
	int			budget = conn->max_retries;
	char	   *problem = NULL;

	call->status = t->status;
	call->ambiguous = false;

	if (t->curl_code != CURLE_OK)
	{
		call->error_type = pstrdup(t->too_large ? "ResponseTooLarge" : curl_easy_strerror(t->curl_code));
		if (t->too_large)
			call->error_message = psprintf("the response body is larger than the limit of %zu bytes",
										   t->max_response);
		else if (t->curl_code == CURLE_URL_MALFORMAT)
			call->error_message = psprintf("the request URL \"%s\" is not valid",
										   clean_remote_text(t->url, strlen(t->url)));
		else
			call->error_message = clean_remote_text(t->errbuf, strlen(t->errbuf));
		call->sqlstate = ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION;
		if (t->too_large || t->curl_code == CURLE_URL_MALFORMAT)
		{
			/* the same request would fail the same way: no retry */
			call->sqlstate = ERRCODE_FDW_ERROR;
		}
		else if (t->curl_code == CURLE_COULDNT_CONNECT ||
				 t->curl_code == CURLE_COULDNT_RESOLVE_HOST ||
				 t->curl_code == CURLE_COULDNT_RESOLVE_PROXY)
		{
			retryable = true;
			budget = Min(budget, 2);
		}
		else
		{
			/* sent, perhaps received: a timeout, a dropped connection */
			retryable = true;
			call->ambiguous = !t->too_large;
		}
	}
	else if (t->status >= 200 && t->status < 300)
	{
		if (call->is_s3)
		{
			call->response = t->response;
			call->done = true;
			return;
		}
		call->json = aws_json_parse(t->response.data, t->response.len);
		if (call->json != NULL && json_object_is_type(call->json, json_type_object) &&
			(problem = answer_shape_problem(call->operation, call->json)) == NULL)
		{
			stats->capacity_units += consumed_capacity(call->json);
			call->done = true;
			pfree(t->response.data);
			return;
		}
		/* truncated, a proxy's page, or garbled: maybe not the next time */
		call->error_type = pstrdup("MalformedResponse");
		if (problem)
			call->error_message = psprintf("HTTP %ld with an answer of the wrong shape: %s",
										   t->status, problem);
		else if (t->response.len == 0)
			call->error_message = psprintf("HTTP %ld with an empty body", t->status);
		else
			call->error_message = psprintf("HTTP %ld with a body that is not a JSON object in UTF-8: %s",
										   t->status,
										   clean_remote_text(t->response.data, t->response.len));
		call->json = NULL;
		call->sqlstate = ERRCODE_FDW_ERROR;
		retryable = true;
	}
	else
	{
		parse_remote_error(call, t->response.data, t->response.len);
		if (type_is(call->error_type, throttling_types) || t->status == 429)
		{
			retryable = true;
			stats->throttles++;
			call->sqlstate = ERRCODE_INSUFFICIENT_RESOURCES;
		}
		else if (type_is(call->error_type, expired_token_types) && !call->credentials_renewed &&
				 esd_credentials_expired(esd_conn_credentials(conn), call->credential_generation))
		{
			/* one refresh of the credentials and one retry, outside the budget */
			call->credentials_renewed = true;
			stats->retries++;
			call->due = GetCurrentTimestamp();
			return;
		}
		else if (type_is(call->error_type, auth_types) || t->status == 403)
			call->sqlstate = ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION;
		else if (strcmp(call->error_type, "ResourceNotFoundException") == 0 ||
				 strcmp(call->error_type, "NoSuchBucket") == 0)
			call->sqlstate = ERRCODE_FDW_TABLE_NOT_FOUND;
		else if (over_size_limit(call))
			call->sqlstate = ERRCODE_PROGRAM_LIMIT_EXCEEDED;
		else if (strcmp(call->error_type, "TransactionInProgressException") == 0)
		{
			/* the same ClientRequestToken is still being worked on */
			retryable = true;
			call->ambiguous = true;
			call->sqlstate = ERRCODE_FDW_ERROR;
		}
		else if (t->status >= 500)
		{
			retryable = true;
			call->ambiguous = true;
			call->sqlstate = ERRCODE_FDW_ERROR;
		}
		else
			call->sqlstate = ERRCODE_FDW_ERROR;

		/* a redirect is never followed: say where it pointed */
		if (t->status >= 300 && t->status < 400)
			call->error_message = psprintf("redirected to \"%s\", which is not followed: %s",
										   t->redirect_url
										   ? clean_remote_text(t->redirect_url, strlen(t->redirect_url))
										   : "(no Location)",
										   call->error_message);
	}

	if (retryable && call->attempts <= budget)
	{
		stats->retries++;
		call->due = GetCurrentTimestamp() + (TimestampTz) aws_backoff_ms(conn, call->attempts) * 1000;
		return;
	}
	call->done = true;
	call->failed = true;
}

/* Classify a finished attempt, in the call's own memory. */
void
aws_classify(AwsCall *call)
{
	MemoryContext old = MemoryContextSwitchTo(call->cxt);
	AwsStats	scratch;

	memset(&scratch, 0, sizeof(scratch));
	classify(call->conn, call, call->stats ? call->stats : &scratch);
	MemoryContextSwitchTo(old);
}

static void
count_request(AwsCall *call, AwsStats *stats)
{
	if (call->is_s3)
		stats->s3_get++;
	else if (strcmp(call->operation, "Query") == 0)
		stats->query++;
	else if (strcmp(call->operation, "BatchGetItem") == 0)
		stats->batch_get++;
	else
		stats->other++;
}

/*
 * Raise the error of a call that failed for good, with the SQLSTATE its
 * failure maps to; the message names the operation, the resource and the
 * remote error.
 */
void
aws_raise(AwsCall *call)
{
	const char *hint = NULL;

	if (call->sqlstate == ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION && call->credential_detail)
		hint = psprintf("The credentials came from the %s; check them, their permissions and the server's region.",
						call->credential_detail);
	else if (call->sqlstate == ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION)
		hint = "Check the access_key_id, secret_access_key and session_token of the user mapping, and the server's region.";
	else if (call->sqlstate == ERRCODE_INSUFFICIENT_RESOURCES)
		hint = "The request was throttled on every attempt; raise the table's capacity or the server's max_retries.";
	else if (call->sqlstate == ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION)
		hint = call->is_s3 ? "Check the server's s3_endpoint option and that the service is reachable."
			: "Check the server's endpoint option and that the service is reachable.";
	else if (call->sqlstate == ERRCODE_FDW_TABLE_NOT_FOUND)
		hint = call->is_s3
			? "The bucket is the foreign table's s3_bucket option or the bucket of an item's s3Reference; check it and the server's s3_endpoint and region options."
			: psprintf("The DynamoDB table is the foreign table's table_name option, or its table_name_prefix followed by \"%s\" (so \"%s\" here); check them and the server's endpoint and region options. event_store_dynamo.init_store() creates a missing store.",
					   ESD_TABLE_SUFFIX, call->resource);
	else if (call->sqlstate == ERRCODE_PROGRAM_LIMIT_EXCEEDED)
		hint = call->is_s3 ? "S3 object keys hold at most 1024 bytes: the event's id is too long to offload."
			: "DynamoDB items hold at most 400 KB (the payload excepted, which goes to S3), and keys at most 2048 bytes: an id, causation id, or domain and identifier this long cannot be stored or looked up.";
	else if (call->status >= 300 && call->status < 400)
		hint = call->is_s3 ? "Redirects are not followed: check the server's s3_endpoint and region options; the bucket may be in another region."
			: "Redirects are not followed: set the server's endpoint option to the service's own URL.";
	else if (strcmp(call->error_type, "MalformedResponse") == 0 ||
			 (strcmp(call->error_type, "ResponseTooLarge") == 0 && !call->is_s3))
		hint = call->is_s3 ? "Check that the server's s3_endpoint option names S3 itself, not a proxy or a web page."
			: "Check that the server's endpoint option names DynamoDB itself, not a proxy or a web page.";

	if (call->is_s3)
		ereport(ERROR,
				(errcode(call->sqlstate),
				 errmsg("S3 %s of \"%s\" failed: %s", call->operation, call->resource, call->error_type),
				 errdetail("%s (HTTP status %ld, %d attempt%s)", call->error_message, call->status,
						   call->attempts, call->attempts == 1 ? "" : "s"),
				 hint ? errhint("%s", hint) : 0));
	else
		ereport(ERROR,
				(errcode(call->sqlstate),
				 errmsg("DynamoDB %s on table \"%s\" failed: %s", call->operation, call->resource, call->error_type),
				 errdetail("%s (HTTP status %ld, %d attempt%s)", call->error_message, call->status,
						   call->attempts, call->attempts == 1 ? "" : "s"),
				 hint ? errhint("%s", hint) : 0));
}
