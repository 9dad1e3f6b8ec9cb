/*-------------------------------------------------------------------------
 *
 * sigv4.h
 *	  AWS Signature Version 4 request signing.
 *
 * A pure function of its inputs: no network, no clock, no PostgreSQL
 * catalog access.  It allocates with palloc, so it runs inside a backend and
 * also in a frontend program linked with libpgcommon (the signing
 * cross-check in test/sigv4 does that).
 *
 *-------------------------------------------------------------------------
 */
#ifndef ESD_SIGV4_H
#define ESD_SIGV4_H

#include <stddef.h>
#include <stdbool.h>

typedef struct SigV4Pair
{
	const char *name;
	const char *value;
} SigV4Pair;

typedef struct SigV4Request
{
	const char *method;			/* "GET", "POST", ... */
	const char *path;			/* decoded path, e.g. "/my bucket/ü.json" */
	const SigV4Pair *query;		/* decoded query parameters, any order */
	int			nquery;
	const SigV4Pair *headers;	/* headers to sign; must include "host" */
	int			nheaders;
	const char *body;			/* may be NULL when body_len is 0 */
	size_t		body_len;
	const char *region;
	const char *service;		/* "dynamodb", "s3", "sts", ... */
	const char *access_key_id;
	const char *secret_access_key;
	const char *session_token;	/* NULL or "" when none */
	const char *amz_date;		/* "YYYYMMDDTHHMMSSZ" */
	bool		unsigned_payload;	/* s3: sign "UNSIGNED-PAYLOAD" */
} SigV4Request;

typedef struct SigV4Result
{
	char	   *authorization;	/* value of the Authorization header */
	char	   *payload_hash;	/* hex SHA-256 of the body (or UNSIGNED-PAYLOAD) */
	char	   *canonical_request;	/* for diagnostics and tests */
	char	   *string_to_sign;
	char	   *signed_headers; /* "host;x-amz-date;..." */
} SigV4Result;

/*
 * Sign a request.  The signed headers are those given plus x-amz-date,
 * x-amz-security-token (when a session token is given) and, for service
 * "s3", x-amz-content-sha256; the caller must send those same headers with
 * the values implied (amz_date, session_token, payload_hash).
 * Header names are compared case-insensitively; values are trimmed and
 * inner runs of spaces folded, as the algorithm requires.  The canonical
 * path is the URI-encoded path; for every service but s3 it is encoded a
 * second time, as the AWS SDKs do.
 */
extern void sigv4_sign(const SigV4Request *req, SigV4Result *result);

/*
 * Percent-encode per RFC 3986 unreserved set (A-Z a-z 0-9 - _ . ~), bytes
 * as %XX in upper case; '/' is kept when keep_slash.  Used for both URLs
 * and the canonical request so the two never disagree.
 */
extern char *sigv4_uri_encode(const char *s, bool keep_slash);

/* Lower-case hex SHA-256 of a buffer (64 chars + NUL, palloc'd). */
extern char *sigv4_sha256_hex(const char *data, size_t len);

/* "YYYYMMDDTHHMMSSZ" for a Unix time, into buf (at least 17 bytes). */
extern void sigv4_format_amz_date(long unix_seconds, char *buf);

#endif							/* ESD_SIGV4_H */
