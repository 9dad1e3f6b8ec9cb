/*-------------------------------------------------------------------------
 *
 * sigv4.c
 *	  AWS Signature Version 4 request signing.
 *
 * Every request to DynamoDB, S3 and STS carries an Authorization header
 * computed here.  The algorithm is the one AWS documents:
 *
 *	1. a canonical request: method, canonical path, canonical query,
 *	   canonical headers, the list of signed headers and the payload hash,
 *	   one per line;
 *	2. a string to sign: the algorithm name, the request time, the
 *	   credential scope (date/region/service/aws4_request) and the SHA-256
 *	   of the canonical request;
 *	3. a signing key derived from the secret by a chain of HMAC-SHA256 over
 *	   the date, region, service and "aws4_request";
 *	4. the signature, HMAC-SHA256 of the string to sign under that key.
 *
 * Where the documentation leaves room, this file does what the AWS SDK for
 * JavaScript does, because that is what the services are known to accept
 * and what test/sigv4 cross-checks against: repeated headers are joined
 * with ',' in the order given; paths of services other than S3 are
 * normalized (empty, "." and ".." segments resolved) and percent-encoded a
 * second time; S3 paths are signed exactly as sent.
 *
 * The code is a pure function of its inputs and allocates with palloc in
 * the caller's memory context, so the same file builds into the extension
 * and into the frontend test program (compiled with -DFRONTEND and linked
 * with libpgcommon).  Cryptography is OpenSSL's.
 *
 *-------------------------------------------------------------------------
 */
#ifdef FRONTEND
#include "postgres_fe.h"
#else
#include "postgres.h"
#endif

#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "lib/stringinfo.h"

#include "sigv4.h"

#define SIGV4_ALGORITHM		"AWS4-HMAC-SHA256"
#define SIGV4_TERMINATOR	"aws4_request"
#define SIGV4_UNSIGNED		"UNSIGNED-PAYLOAD"
#define SHA256_LEN			32

/* One header or query parameter in canonical form, before sorting. */
typedef struct CanonicalPair
{
	char	   *name;			/* lower-cased header / encoded parameter */
	char	   *value;			/* folded header value / encoded value */
	int			position;		/* order given: repeated headers keep it */
} CanonicalPair;

static const char hex_lower[] = "0123456789abcdef";
static const char hex_upper[] = "0123456789ABCDEF";

/*
 * OpenSSL's digest and MAC calls fail only when memory runs out or the
 * library is misconfigured; there is no meaningful way to go on.
 */
static void
crypto_failed(const char *what)
{
#ifdef FRONTEND
	fprintf(stderr, "sigv4: could not compute %s\n", what);
	exit(1);
#else
	elog(ERROR, "could not compute %s", what);
#endif
}

static void
to_hex(const unsigned char *bytes, size_t len, char *out)
{
	size_t		i;

	for (i = 0; i < len; i++)
	{
		out[2 * i] = hex_lower[bytes[i] >> 4];
		out[2 * i + 1] = hex_lower[bytes[i] & 0x0f];
	}
	out[2 * len] = '\0';
}

/* HMAC-SHA256 of data under key, into out (SHA256_LEN bytes). */
static void
hmac_sha256(const unsigned char *key, size_t key_len,
			const char *data, size_t data_len, unsigned char *out)
{
	unsigned int out_len = 0;

	if (HMAC(EVP_sha256(), key, (int) key_len,
			 (const unsigned char *) data, data_len,
			 out, &out_len) == NULL || out_len != SHA256_LEN)
		crypto_failed("HMAC-SHA256");
}

char *
sigv4_sha256_hex(const char *data, size_t len)
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int digest_len = 0;
	char	   *hex = palloc(2 * SHA256_LEN + 1);

	if (EVP_Digest(data != NULL ? data : "", len, digest, &digest_len,
				   EVP_sha256(), NULL) != 1 || digest_len != SHA256_LEN)
		crypto_failed("SHA-256 digest");
	to_hex(digest, SHA256_LEN, hex);
	return hex;
}

void
sigv4_format_amz_date(long unix_seconds, char *buf)
{
	time_t		t = (time_t) unix_seconds;
	struct tm	tm;

	gmtime_r(&t, &tm);
	snprintf(buf, 17, "%04d%02d%02dT%02d%02d%02dZ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			 tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* RFC 3986 unreserved characters, by byte value (no locale involved). */
static bool
is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		(c >= '0' && c <= '9') ||
		c == '-' || c == '_' || c == '.' || c == '~';
}

char *
sigv4_uri_encode(const char *s, bool keep_slash)
{
	StringInfoData buf;
	const unsigned char *p;

	initStringInfo(&buf);
	for (p = (const unsigned char *) s; *p != '\0'; p++)
	{
		if (is_unreserved(*p) || (keep_slash && *p == '/'))
			appendStringInfoChar(&buf, (char) *p);
		else
		{
			appendStringInfoChar(&buf, '%');
			appendStringInfoChar(&buf, hex_upper[*p >> 4]);
			appendStringInfoChar(&buf, hex_upper[*p & 0x0f]);
		}
	}
	return buf.data;
}

/*
 * Resolve empty, "." and ".." segments of an absolute path, keeping a
 * trailing slash when any segment remains ("//a//" becomes "/a/", "/a/.."
 * becomes "/").
 */
static char *
normalize_path(const char *path)
{
	int			max_segments = (int) strlen(path) + 1;
	const char **starts = palloc(sizeof(char *) * max_segments);
	int		   *lengths = palloc(sizeof(int) * max_segments);
	int			nsegments = 0;
	const char *p = path;
	StringInfoData buf;
	int			i;

	while (*p != '\0')
	{
		const char *end = strchr(p, '/');
		int			len = end != NULL ? (int) (end - p) : (int) strlen(p);

		if (len == 0 || (len == 1 && p[0] == '.'))
			;					/* nothing to keep */
		else if (len == 2 && p[0] == '.' && p[1] == '.')
		{
			if (nsegments > 0)
				nsegments--;
		}
		else
		{
			starts[nsegments] = p;
			lengths[nsegments] = len;
			nsegments++;
		}
		p += len;
		if (*p == '/')
			p++;
	}

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '/');
	for (i = 0; i < nsegments; i++)
	{
		if (i > 0)
			appendStringInfoChar(&buf, '/');
		appendBinaryStringInfo(&buf, starts[i], lengths[i]);
	}
	if (nsegments > 0 && path[strlen(path) - 1] == '/')
		appendStringInfoChar(&buf, '/');

	pfree(starts);
	pfree(lengths);
	return buf.data;
}

/*
 * The canonical URI.  The path is what goes on the wire, percent-encoded
 * once; services other than S3 want that encoded again, after resolving
 * redundant segments.  A path not starting with '/' gets one, as every
 * HTTP request target does.
 */
static char *
canonical_path(const char *path, bool is_s3)
{
	char	   *absolute;
	char	   *encoded;
	char	   *normalized;

	if (path == NULL || path[0] == '\0')
		absolute = pstrdup("/");
	else if (path[0] != '/')
		absolute = psprintf("/%s", path);
	else
		absolute = pstrdup(path);

	encoded = sigv4_uri_encode(absolute, true);
	if (is_s3)
		return encoded;

	normalized = normalize_path(encoded);
	return sigv4_uri_encode(normalized, true);
}

/*
 * A header value as signed: leading and trailing blanks dropped, inner runs
 * of spaces, tabs and line breaks folded to one space.
 */
static char *
fold_header_value(const char *value)
{
	StringInfoData buf;
	bool		pending_space = false;
	const char *p;

	initStringInfo(&buf);
	for (p = value != NULL ? value : ""; *p != '\0'; p++)
	{
		if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
		{
			pending_space = (buf.len > 0);
			continue;
		}
		if (pending_space)
			appendStringInfoChar(&buf, ' ');
		pending_space = false;
		appendStringInfoChar(&buf, *p);
	}
	return buf.data;
}

static char *
lower_ascii(const char *s)
{
	char	   *copy = pstrdup(s);
	char	   *p;

	for (p = copy; *p != '\0'; p++)
		*p = pg_ascii_tolower((unsigned char) *p);
	return copy;
}

/* Headers: by name, then in the order given. */
static int
compare_headers(const void *a, const void *b)
{
	const CanonicalPair *ha = (const CanonicalPair *) a;
	const CanonicalPair *hb = (const CanonicalPair *) b;
	int			cmp = strcmp(ha->name, hb->name);

	if (cmp != 0)
		return cmp;
	return (ha->position > hb->position) - (ha->position < hb->position);
}

/* Query parameters: by encoded name, then by encoded value. */
static int
compare_params(const void *a, const void *b)
{
	const CanonicalPair *pa = (const CanonicalPair *) a;
	const CanonicalPair *pb = (const CanonicalPair *) b;
	int			cmp = strcmp(pa->name, pb->name);

	if (cmp != 0)
		return cmp;
	return strcmp(pa->value, pb->value);
}

static char *
canonical_query(const SigV4Pair *query, int nquery)
{
	StringInfoData buf;
	CanonicalPair *params;
	int			i;

	initStringInfo(&buf);
	if (nquery <= 0)
		return buf.data;

	params = palloc(sizeof(CanonicalPair) * nquery);
	for (i = 0; i < nquery; i++)
	{
		params[i].name = sigv4_uri_encode(query[i].name, false);
		params[i].value = sigv4_uri_encode(query[i].value != NULL ?
										   query[i].value : "", false);
		params[i].position = i;
	}
	qsort(params, nquery, sizeof(CanonicalPair), compare_params);

	for (i = 0; i < nquery; i++)
	{
		if (i > 0)
			appendStringInfoChar(&buf, '&');
		appendStringInfo(&buf, "%s=%s", params[i].name, params[i].value);
	}
	pfree(params);
	return buf.data;
}

/*
 * Is this caller-given header one that sigv4_sign generates itself?  Those
 * are dropped from the caller's list so they are never signed twice.
 */
static bool
is_generated_header(const char *lname, bool has_token, bool is_s3)
{
	return strcmp(lname, "x-amz-date") == 0 ||
		(has_token && strcmp(lname, "x-amz-security-token") == 0) ||
		(is_s3 && strcmp(lname, "x-amz-content-sha256") == 0);
}

/*
 * Build the canonical headers block (each line ending in '\n') and the
 * signed headers list from the caller's headers plus the generated ones.
 */
static void
canonical_headers(const SigV4Request *req, const char *payload_hash,
				  bool has_token, bool is_s3,
				  StringInfo block, StringInfo signed_list)
{
	CanonicalPair *headers;
	int			n = 0;
	int			i;

	headers = palloc(sizeof(CanonicalPair) * (Max(req->nheaders, 0) + 3));
	for (i = 0; i < req->nheaders; i++)
	{
		char	   *lname = lower_ascii(req->headers[i].name);

		if (is_generated_header(lname, has_token, is_s3))
			continue;
		headers[n].name = lname;
		headers[n].value = fold_header_value(req->headers[i].value);
		headers[n].position = n;
		n++;
	}

	headers[n].name = "x-amz-date";
	headers[n].value = fold_header_value(req->amz_date);
	headers[n].position = n;
	n++;
	if (has_token)
	{
		headers[n].name = "x-amz-security-token";
		headers[n].value = fold_header_value(req->session_token);
		headers[n].position = n;
		n++;
	}
	if (is_s3)
	{
		headers[n].name = "x-amz-content-sha256";
		headers[n].value = pstrdup(payload_hash);
		headers[n].position = n;
		n++;
	}

	qsort(headers, n, sizeof(CanonicalPair), compare_headers);

	for (i = 0; i < n; i++)
	{
		if (i > 0 && strcmp(headers[i].name, headers[i - 1].name) == 0)
		{
			/* a repeated header: its values join the first line */
			appendStringInfo(block, ",%s", headers[i].value);
			continue;
		}
		if (i > 0)
		{
			appendStringInfoChar(block, '\n');
			appendStringInfoChar(signed_list, ';');
		}
		appendStringInfo(block, "%s:%s", headers[i].name, headers[i].value);
		appendStringInfoString(signed_list, headers[i].name);
	}
	appendStringInfoChar(block, '\n');
	pfree(headers);
}

void
sigv4_sign(const SigV4Request *req, SigV4Result *result)
{
	bool		is_s3 = strcmp(req->service, "s3") == 0;
	bool		has_token = req->session_token != NULL &&
		req->session_token[0] != '\0';
	char		date_stamp[9];
	char	   *payload_hash;
	char	   *path;
	char	   *query;
	StringInfoData header_block;
	StringInfoData signed_list;
	StringInfoData creq;
	char	   *scope;
	char	   *creq_hash;
	char	   *string_to_sign;
	char	   *secret_key;
	unsigned char k_date[SHA256_LEN];
	unsigned char k_region[SHA256_LEN];
	unsigned char k_service[SHA256_LEN];
	unsigned char k_signing[SHA256_LEN];
	unsigned char mac[SHA256_LEN];
	char		signature[2 * SHA256_LEN + 1];

	memcpy(date_stamp, req->amz_date, 8);
	date_stamp[8] = '\0';

	if (req->unsigned_payload)
		payload_hash = pstrdup(SIGV4_UNSIGNED);
	else
		payload_hash = sigv4_sha256_hex(req->body, req->body_len);

	/* 1. the canonical request */
	path = canonical_path(req->path, is_s3);
	query = canonical_query(req->query, req->nquery);
	initStringInfo(&header_block);
	initStringInfo(&signed_list);
	canonical_headers(req, payload_hash, has_token, is_s3,
					  &header_block, &signed_list);

	initStringInfo(&creq);
	appendStringInfo(&creq, "%s\n%s\n%s\n", req->method, path, query);
	appendBinaryStringInfo(&creq, header_block.data, header_block.len);
	appendStringInfo(&creq, "\n%s\n%s", signed_list.data, payload_hash);

	/* 2. the string to sign */
	scope = psprintf("%s/%s/%s/%s", date_stamp, req->region, req->service,
					 SIGV4_TERMINATOR);
	creq_hash = sigv4_sha256_hex(creq.data, creq.len);
	string_to_sign = psprintf("%s\n%s\n%s\n%s", SIGV4_ALGORITHM,
							  req->amz_date, scope, creq_hash);

	/* 3. the signing key */
	secret_key = psprintf("AWS4%s", req->secret_access_key);
	hmac_sha256((const unsigned char *) secret_key, strlen(secret_key),
				date_stamp, strlen(date_stamp), k_date);
	hmac_sha256(k_date, SHA256_LEN, req->region, strlen(req->region),
				k_region);
	hmac_sha256(k_region, SHA256_LEN, req->service, strlen(req->service),
				k_service);
	hmac_sha256(k_service, SHA256_LEN, SIGV4_TERMINATOR,
				strlen(SIGV4_TERMINATOR), k_signing);

	/* 4. the signature */
	hmac_sha256(k_signing, SHA256_LEN, string_to_sign, strlen(string_to_sign),
				mac);
	to_hex(mac, SHA256_LEN, signature);

	explicit_bzero(secret_key, strlen(secret_key));
	explicit_bzero(k_date, sizeof(k_date));
	explicit_bzero(k_region, sizeof(k_region));
	explicit_bzero(k_service, sizeof(k_service));
	explicit_bzero(k_signing, sizeof(k_signing));
	pfree(secret_key);

	result->authorization =
		psprintf("%s Credential=%s/%s, SignedHeaders=%s, Signature=%s",
				 SIGV4_ALGORITHM, req->access_key_id, scope,
				 signed_list.data, signature);
	result->payload_hash = payload_hash;
	result->canonical_request = creq.data;
	result->string_to_sign = string_to_sign;
	result->signed_headers = signed_list.data;

	pfree(path);
	pfree(query);
	pfree(header_block.data);
	pfree(scope);
	pfree(creq_hash);
}
