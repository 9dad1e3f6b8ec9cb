/*-------------------------------------------------------------------------
 *
 * codec_test.c
 *	  SQL wrappers around src/codec.c for its standalone tests.
 *
 * Each function takes or returns text so that a test can feed it DynamoDB
 * JSON or ordinary JSON and compare what comes back with what Node prints.
 * Input text is turned into UTF-8 (as it comes off the wire) and parsed by
 * json-c as the extension's HTTP layer would; text the codec writes for the
 * wire is returned as it is, in UTF-8 whatever the database encoding.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/jsonb.h"

/* PostgreSQL's json_object() and json-c's json_object share a name */
#define json_object pg_sql_json_object
#include "utils/builtins.h"
#undef json_object

#include <json-c/json.h>

#include "codec.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(codec_test_av_to_jsonb);
PG_FUNCTION_INFO_V1(codec_test_av_to_json);
PG_FUNCTION_INFO_V1(codec_test_json_to_jsonb);
PG_FUNCTION_INFO_V1(codec_test_json_text_to_jsonb);
PG_FUNCTION_INFO_V1(codec_test_jsonb_to_av);
PG_FUNCTION_INFO_V1(codec_test_jsonb_to_compact_text);

/* A text argument as the UTF-8 the wire would carry */
static char *
wire_text(text *t, int *len)
{
	char	   *s = pg_server_to_any(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), PG_UTF8);

	*len = (s == VARDATA_ANY(t)) ? VARSIZE_ANY_EXHDR(t) : strlen(s);
	return (s == VARDATA_ANY(t)) ? pnstrdup(s, *len) : s;
}

/* Parse text with json-c; the caller must json_object_put the result */
static struct json_object *
parse_with_json_c(text *t)
{
	int			len;
	char	   *s = wire_text(t, &len);
	enum json_tokener_error err = json_tokener_success;
	struct json_object *obj = json_tokener_parse_verbose(s, &err);

	if (err != json_tokener_success)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("json-c cannot parse the test input: %s",
						json_tokener_error_desc(err))));
	return obj;
}

/* json-c value as compact text, for the result of a test function */
static text *
json_c_to_text(struct json_object *obj)
{
	const char *s = json_object_to_json_string_ext(obj,
												   JSON_C_TO_STRING_PLAIN |
												   JSON_C_TO_STRING_NOSLASHESCAPE);

	return cstring_to_text(s);
}

/* codec_test_av_to_jsonb(av text, attr text, item text) returns jsonb */
Datum
codec_test_av_to_jsonb(PG_FUNCTION_ARGS)
{
	struct json_object *av = parse_with_json_c(PG_GETARG_TEXT_PP(0));
	char	   *attr = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *item = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	Jsonb	   *volatile result = NULL;

	PG_TRY();
	{
		result = codec_av_to_jsonb(av, attr, item);
	}
	PG_FINALLY();
	{
		json_object_put(av);
	}
	PG_END_TRY();
	PG_RETURN_JSONB_P(result);
}

/* codec_test_av_to_json(av text) returns text (json-c's rendering) */
Datum
codec_test_av_to_json(PG_FUNCTION_ARGS)
{
	struct json_object *av = parse_with_json_c(PG_GETARG_TEXT_PP(0));
	struct json_object *value = NULL;
	text	   *result;

	PG_TRY();
	{
		value = codec_av_to_json(av, "attr", "item");
	}
	PG_FINALLY();
	{
		json_object_put(av);
	}
	PG_END_TRY();
	result = json_c_to_text(value);
	json_object_put(value);
	PG_RETURN_TEXT_P(result);
}

/* codec_test_json_to_jsonb(json text) returns jsonb, through json-c */
Datum
codec_test_json_to_jsonb(PG_FUNCTION_ARGS)
{
	struct json_object *value = parse_with_json_c(PG_GETARG_TEXT_PP(0));
	Jsonb	   *volatile result = NULL;

	PG_TRY();
	{
		result = codec_json_to_jsonb(value);
	}
	PG_FINALLY();
	{
		json_object_put(value);
	}
	PG_END_TRY();
	PG_RETURN_JSONB_P(result);
}

/* codec_test_json_text_to_jsonb(text) returns jsonb */
Datum
codec_test_json_text_to_jsonb(PG_FUNCTION_ARGS)
{
	int			len;
	char	   *s = wire_text(PG_GETARG_TEXT_PP(0), &len);

	PG_RETURN_JSONB_P(codec_json_text_to_jsonb(s, len));
}

/* codec_test_jsonb_to_av(jsonb) returns text */
Datum
codec_test_jsonb_to_av(PG_FUNCTION_ARGS)
{
	struct json_object *av = codec_jsonb_to_av(PG_GETARG_JSONB_P(0));
	text	   *result = json_c_to_text(av);

	json_object_put(av);
	PG_RETURN_TEXT_P(result);
}

/* codec_test_jsonb_to_compact_text(jsonb) returns text */
Datum
codec_test_jsonb_to_compact_text(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(codec_jsonb_to_compact_text(PG_GETARG_JSONB_P(0))));
}
