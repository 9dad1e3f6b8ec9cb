/*-------------------------------------------------------------------------
 *
 * sigv4_check.c
 *	  Signs test requests with src/sigv4.c, for the cross-check against the
 *	  AWS SDK's signer (test/sigv4/vectors.js).
 *
 * Reads one request per line on standard input, as a JSON object:
 *
 *	{"id": "...", "method": "PUT", "path": "/a b/ü",
 *	 "query": [["name", "value"], ...], "headers": [["Name", "value"], ...],
 *	 "body_b64": "...", "region": "eu-west-1", "service": "s3",
 *	 "access_key_id": "...", "secret_access_key": "...",
 *	 "session_token": "..." or null, "time": <Unix seconds>,
 *	 "unsigned_payload": false}
 *
 * and writes one JSON object per line on standard output with what the
 * signer produced: id, amz_date (from sigv4_format_amz_date), encoded_path
 * (sigv4_uri_encode of the path, as a URL would carry it), authorization,
 * canonical_request, string_to_sign, signed_headers and payload_hash.
 *
 * Built as a frontend program: src/sigv4.c compiled with -DFRONTEND and
 * linked with libpgcommon and libpgport (palloc, StringInfo, base64).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres_fe.h"

#include <json-c/json.h>

#include "common/base64.h"

#include "sigv4.h"

static void
fail(const char *id, const char *what)
{
	fprintf(stderr, "sigv4_check: vector %s: %s\n", id != NULL ? id : "?", what);
	exit(2);
}

/* A string member, or NULL when missing or null. */
static const char *
member_string(struct json_object *obj, const char *key)
{
	struct json_object *value;

	if (!json_object_object_get_ex(obj, key, &value) || value == NULL)
		return NULL;
	return json_object_get_string(value);
}

static const char *
required_string(struct json_object *obj, const char *key, const char *id)
{
	const char *value = member_string(obj, key);

	if (value == NULL)
		fail(id, psprintf("missing \"%s\"", key));
	return value;
}

/* A [[name, value], ...] member as an array of SigV4Pair. */
static SigV4Pair *
member_pairs(struct json_object *obj, const char *key, int *count,
			 const char *id)
{
	struct json_object *array;
	SigV4Pair  *pairs;
	int			n;
	int			i;

	*count = 0;
	if (!json_object_object_get_ex(obj, key, &array) || array == NULL)
		return NULL;
	if (!json_object_is_type(array, json_type_array))
		fail(id, psprintf("\"%s\" is not an array", key));

	n = (int) json_object_array_length(array);
	pairs = palloc0(sizeof(SigV4Pair) * (n + 1));
	for (i = 0; i < n; i++)
	{
		struct json_object *pair = json_object_array_get_idx(array, i);

		if (!json_object_is_type(pair, json_type_array) ||
			json_object_array_length(pair) != 2)
			fail(id, psprintf("\"%s\"[%d] is not a [name, value] pair", key, i));
		pairs[i].name = json_object_get_string(json_object_array_get_idx(pair, 0));
		pairs[i].value = json_object_get_string(json_object_array_get_idx(pair, 1));
	}
	*count = n;
	return pairs;
}

static void
sign_one(struct json_object *in)
{
	const char *id = required_string(in, "id", NULL);
	const char *body_b64 = member_string(in, "body_b64");
	struct json_object *member;
	struct json_object *out;
	SigV4Request req;
	SigV4Result result;
	char		amz_date[17];
	char	   *body = NULL;
	int			body_len = 0;

	memset(&req, 0, sizeof(req));
	memset(&result, 0, sizeof(result));

	if (!json_object_object_get_ex(in, "time", &member) ||
		!json_object_is_type(member, json_type_int))
		fail(id, "missing integer \"time\"");
	sigv4_format_amz_date((long) json_object_get_int64(member), amz_date);

	if (body_b64 != NULL && body_b64[0] != '\0')
	{
		int			len = (int) strlen(body_b64);

		body = palloc(pg_b64_dec_len(len) + 1);
		body_len = pg_b64_decode(body_b64, len, body, pg_b64_dec_len(len));
		if (body_len < 0)
			fail(id, "\"body_b64\" is not valid base64");
	}

	req.method = required_string(in, "method", id);
	req.path = required_string(in, "path", id);
	req.query = member_pairs(in, "query", &req.nquery, id);
	req.headers = member_pairs(in, "headers", &req.nheaders, id);
	req.body = body;
	req.body_len = (size_t) body_len;
	req.region = required_string(in, "region", id);
	req.service = required_string(in, "service", id);
	req.access_key_id = required_string(in, "access_key_id", id);
	req.secret_access_key = required_string(in, "secret_access_key", id);
	req.session_token = member_string(in, "session_token");
	req.amz_date = amz_date;
	req.unsigned_payload =
		json_object_object_get_ex(in, "unsigned_payload", &member) &&
		json_object_get_boolean(member);

	sigv4_sign(&req, &result);

	out = json_object_new_object();
	json_object_object_add(out, "id", json_object_new_string(id));
	json_object_object_add(out, "amz_date", json_object_new_string(amz_date));
	json_object_object_add(out, "encoded_path",
						   json_object_new_string(sigv4_uri_encode(req.path, true)));
	json_object_object_add(out, "authorization",
						   json_object_new_string(result.authorization));
	json_object_object_add(out, "canonical_request",
						   json_object_new_string(result.canonical_request));
	json_object_object_add(out, "string_to_sign",
						   json_object_new_string(result.string_to_sign));
	json_object_object_add(out, "signed_headers",
						   json_object_new_string(result.signed_headers));
	json_object_object_add(out, "payload_hash",
						   json_object_new_string(result.payload_hash));
	printf("%s\n", json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN |
												  JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(out);

	if (body != NULL)
		pfree(body);
	pfree(result.authorization);
	pfree(result.canonical_request);
	pfree(result.string_to_sign);
	pfree(result.signed_headers);
	pfree(result.payload_hash);
}

int
main(void)
{
	char	   *line = NULL;
	size_t		cap = 0;
	ssize_t		len;
	int			lineno = 0;

	while ((len = getline(&line, &cap, stdin)) != -1)
	{
		struct json_object *in;
		enum json_tokener_error error;

		lineno++;
		if (len <= 1)
			continue;
		in = json_tokener_parse_verbose(line, &error);
		if (in == NULL || !json_object_is_type(in, json_type_object))
		{
			fprintf(stderr, "sigv4_check: line %d: not a JSON object: %s\n",
					lineno, json_tokener_error_desc(error));
			return 2;
		}
		sign_one(in);
		json_object_put(in);
	}
	free(line);
	return 0;
}
