/*-------------------------------------------------------------------------
 *
 * codec.c
 *	  Conversion between DynamoDB AttributeValues and PostgreSQL values.
 *
 * The table is written by a Node adapter, so every rule here is "what
 * JavaScript would do":
 *
 * - Reading, an AttributeValue becomes its natural value (what the SDK's
 *   unmarshalling gives), except that numbers keep every digit: an N is
 *   handed to numeric_in, never through a double.  SS, NS and BS become
 *   arrays (a JavaScript Set has no JSON form); B and BS stay base64 text.
 *
 * - Writing, jsonb becomes what JavaScript would see after JSON.parse of its
 *   text: each number is the nearest double, printed as Number.prototype.
 *   toString prints it (shortest round-trip digits), both in the N of an
 *   AttributeValue and in the compact JSON text of a payload.
 *
 * - JSON text that jsonb cannot hold (it is not JSON, or it holds \u0000 or
 *   a number beyond numeric's range) is kept verbatim as a jsonb string, so
 *   that one odd payload never stops a replay.
 *
 * Malformed AttributeValues raise ERRCODE_FDW_INVALID_DATA_TYPE naming the
 * attribute, the item and the path inside the value.  Errors raised by
 * PostgreSQL itself while converting (bad UTF-8, a character the database
 * encoding lacks) get a context line naming the same.
 *
 * json-c objects are malloc'd, not palloc'd: the builders that return them
 * attach each new object to its parent before filling it, so that one
 * json_object_put of the root in a PG_CATCH frees everything on error.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>
#include <math.h>

#include "codec.h"
#include "common/jsonapi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/numeric.h"

/*
 * PostgreSQL's SQL function json_object() and json-c's type json_object
 * share a name: hide the former while its prototypes are read.
 */
#define json_object pg_sql_json_object
#include "utils/fmgrprotos.h"
#undef json_object

#include <json-c/json.h>

/* The DynamoDB type tags an AttributeValue may carry */
typedef enum AvKind
{
	AV_S,
	AV_N,
	AV_B,
	AV_BOOL,
	AV_NULL,
	AV_M,
	AV_L,
	AV_SS,
	AV_NS,
	AV_BS
} AvKind;

typedef struct AvTag
{
	const char *tag;
	AvKind		kind;
	json_type	payload_type;	/* the JSON type the tag's value must have */
} AvTag;

static const AvTag av_tags[] = {
	{"S", AV_S, json_type_string},
	{"N", AV_N, json_type_string},
	{"B", AV_B, json_type_string},
	{"BOOL", AV_BOOL, json_type_boolean},
	{"NULL", AV_NULL, json_type_boolean},
	{"M", AV_M, json_type_object},
	{"L", AV_L, json_type_array},
	{"SS", AV_SS, json_type_array},
	{"NS", AV_NS, json_type_array},
	{"BS", AV_BS, json_type_array},
};

/*
 * Where we are inside an attribute's value, kept as a chain of stack frames
 * and only rendered (as meta.tags[2]) when an error needs it.
 */
typedef struct AvPath
{
	const struct AvPath *parent;
	const char *key;			/* map key, or NULL for a list index */
	int			index;
} AvPath;

/* State of one AttributeValue conversion */
typedef struct AvContext
{
	const char *attr_name;		/* may be NULL */
	const char *item_id;		/* may be NULL */
	const AvPath *path;			/* innermost value being converted */
	bool		own_error;		/* the error being raised names us already */
	struct json_object *root;	/* json-c result being built, if any */
} AvContext;

/*
 * numeric's storage limits, as numeric_in enforces them: a display scale of
 * at most 16383 digits, and a leading digit weight within an int16 count of
 * base-10000 digits (10^131071).  numeric.c keeps these private.
 */
#define NUMERIC_DSCALE_LIMIT 16383
#define NUMERIC_LEAD_WEIGHT_LIMIT 131071

/* Room for any double printed in JavaScript's form, sign and NUL included */
#define JS_NUMBER_BUFLEN 32


/* ----------------------------------------------------------------
 *		Numbers
 * ----------------------------------------------------------------
 */

/*
 * Check a decimal number's text and normalise it to JSON's number grammar.
 *
 * Accepts what DynamoDB may send in an N: an optional sign, digits with an
 * optional decimal point (at least one digit somewhere), an optional
 * exponent.  The normalised form drops a leading '+', leading zeros of the
 * integer part and a bare trailing '.', and puts a 0 before a bare leading
 * '.', so that it is valid JSON as well as valid numeric input.
 *
 * Returns NULL if the text is not such a number, or if numeric could not
 * hold it (these are the limits numeric_in checks: an exponent below
 * INT_MAX / 2, at most 16383 digits after the decimal point once the
 * exponent is applied, and a leading digit within 10^131071).
 */
static char *
normalize_number(const char *text)
{
	const char *p = text;
	const char *int_start;
	const char *frac_start = NULL;
	const char *exp_start = NULL;
	int64		int_digits = 0;
	int64		frac_digits = 0;
	int64		lead_weight = 0;	/* decimal weight of first nonzero digit */
	bool		nonzero = false;
	bool		negative = false;
	int64		exponent = 0;
	StringInfoData buf;

	if (*p == '+' || *p == '-')
		negative = (*p++ == '-');
	int_start = p;
	while (isdigit((unsigned char) *p))
	{
		if (*p != '0' && !nonzero)
		{
			nonzero = true;
			lead_weight = int_digits;	/* fixed up once the count is known */
		}
		int_digits++;
		p++;
	}
	if (nonzero)
		lead_weight = int_digits - 1 - lead_weight;
	if (*p == '.')
	{
		p++;
		frac_start = p;
		while (isdigit((unsigned char) *p))
		{
			frac_digits++;
			if (*p != '0' && !nonzero)
			{
				nonzero = true;
				lead_weight = -frac_digits;
			}
			p++;
		}
	}
	if (int_digits + frac_digits == 0)
		return NULL;
	if (*p == 'e' || *p == 'E')
	{
		const char *digits;

		exp_start = p++;
		if (*p == '+' || *p == '-')
			p++;
		digits = p;
		while (isdigit((unsigned char) *p))
		{
			if (exponent < INT_MAX)
				exponent = exponent * 10 + (*p - '0');
			p++;
		}
		if (p == digits)
			return NULL;
		if (exp_start[1] == '-')
			exponent = -exponent;
	}
	if (*p != '\0')
		return NULL;

	/* numeric's limits */
	if (exponent >= INT_MAX / 2 || exponent <= -(INT_MAX / 2))
		return NULL;
	if (frac_digits - exponent > NUMERIC_DSCALE_LIMIT)
		return NULL;
	if (nonzero && lead_weight + exponent > NUMERIC_LEAD_WEIGHT_LIMIT)
		return NULL;

	initStringInfo(&buf);
	if (negative)
		appendStringInfoChar(&buf, '-');
	while (int_digits > 1 && *int_start == '0')
	{
		int_start++;
		int_digits--;
	}
	if (int_digits == 0)
		appendStringInfoChar(&buf, '0');
	else
		appendBinaryStringInfo(&buf, int_start, (int) int_digits);
	if (frac_digits > 0)
	{
		appendStringInfoChar(&buf, '.');
		appendBinaryStringInfo(&buf, frac_start, (int) frac_digits);
	}
	if (exp_start != NULL)
		appendStringInfoString(&buf, exp_start);
	return buf.data;
}

/* numeric from text that normalize_number accepted */
static Numeric
numeric_from_text(const char *text)
{
	return DatumGetNumeric(DirectFunctionCall3(numeric_in,
											   CStringGetDatum(text),
											   ObjectIdGetDatum(InvalidOid),
											   Int32GetDatum(-1)));
}

/*
 * Print a finite double as JavaScript's Number.prototype.toString does
 * (ECMA-262, Number::toString): the fewest significant digits that read
 * back as the same double, in plain notation for decimal exponents from -7
 * to 20 and in exponent notation ("1e+21", "1.5e-7") beyond.
 *
 * The digits come from printf, which rounds correctly: at each precision p
 * the nearest p-digit decimal is the best candidate, and the only other one
 * that may still read back as the double is its neighbour on the other side
 * of the value (the rounding interval is lopsided at powers of two).
 */
static void
format_js_number(double value, char *out)
{
	char		buf[JS_NUMBER_BUFLEN];
	char		digits[20];
	int			ndigits = 0;
	int			point = 0;		/* value = 0.digits * 10^point */
	char	   *o = out;

	Assert(isfinite(value));
	if (value == 0)
	{
		strcpy(out, "0");		/* -0 prints as 0 too */
		return;
	}
	if (value < 0)
	{
		*o++ = '-';
		value = -value;
	}

	for (int precision = 1; precision <= 17; precision++)
	{
		uint64		mantissa = 0;
		int			exp10;
		char	   *e;
		double		nearest;

		snprintf(buf, sizeof(buf), "%.*e", precision - 1, value);
		nearest = strtod(buf, NULL);
		e = strchr(buf, 'e');
		exp10 = atoi(e + 1) - (precision - 1);
		for (char *c = buf; c < e; c++)
			if (isdigit((unsigned char) *c))
				mantissa = mantissa * 10 + (*c - '0');

		if (nearest != value)
		{
			/* try the neighbour on the other side */
			mantissa = (nearest < value) ? mantissa + 1 : mantissa - 1;
			snprintf(buf, sizeof(buf), UINT64_FORMAT "e%d", mantissa, exp10);
			if (strtod(buf, NULL) != value)
				continue;
		}

		/* found: split the mantissa into digits, dropping trailing zeros */
		snprintf(buf, sizeof(buf), UINT64_FORMAT, mantissa);
		ndigits = strlen(buf);
		point = ndigits + exp10;
		while (ndigits > 1 && buf[ndigits - 1] == '0')
			ndigits--;
		memcpy(digits, buf, ndigits);
		break;
	}
	Assert(ndigits > 0);

	if (ndigits <= point && point <= 21)
	{
		/* an integer: digits and zeros */
		memcpy(o, digits, ndigits);
		o += ndigits;
		for (int i = ndigits; i < point; i++)
			*o++ = '0';
	}
	else if (0 < point && point <= 21)
	{
		/* decimal point inside the digits */
		memcpy(o, digits, point);
		o += point;
		*o++ = '.';
		memcpy(o, digits + point, ndigits - point);
		o += ndigits - point;
	}
	else if (-6 < point && point <= 0)
	{
		/* 0.000ddd */
		*o++ = '0';
		*o++ = '.';
		for (int i = point; i < 0; i++)
			*o++ = '0';
		memcpy(o, digits, ndigits);
		o += ndigits;
	}
	else
	{
		/* exponent notation: d.ddde+x */
		int			exp10 = point - 1;

		*o++ = digits[0];
		if (ndigits > 1)
		{
			*o++ = '.';
			memcpy(o, digits + 1, ndigits - 1);
			o += ndigits - 1;
		}
		o += sprintf(o, "e%c%d", exp10 < 0 ? '-' : '+', abs(exp10));
	}
	*o = '\0';
}

/*
 * The double JavaScript's JSON.parse gives for a numeric's text: strtod
 * rounds correctly, as JavaScript does, and goes to +-HUGE_VAL or 0 beyond
 * a double's range, as JavaScript goes to +-Infinity or 0.
 */
static double
numeric_to_js_double(Numeric num)
{
	char	   *text = DatumGetCString(DirectFunctionCall1(numeric_out,
														   NumericGetDatum(num)));
	double		result = strtod(text, NULL);

	pfree(text);
	return result;
}

/*
 * A value as an error message quotes it: whole up to ESD_MESSAGE_VALUE_MAX
 * bytes, else its beginning (cut at a character boundary) and "...", so
 * that an id or a reference of a megabyte does not make a message of one.
 */
char *
esd_shorten(const char *value)
{
	size_t		len;
	int			cut;

	if (value == NULL)
		return NULL;
	len = strlen(value);
	if (len <= ESD_MESSAGE_VALUE_MAX)
		return (char *) value;
	cut = pg_mbcliplen(value, (int) len, ESD_MESSAGE_VALUE_MAX);
	return psprintf("%.*s...", cut, value);
}


/* ----------------------------------------------------------------
 *		Strings
 * ----------------------------------------------------------------
 */

/*
 * A UTF-8 string from the wire, in the database encoding and fit to be a
 * jsonb string.  Returns the string (possibly s itself) and sets *len.
 * PostgreSQL's text cannot hold U+0000, so a string holding it is an error.
 */
static char *
utf8_to_server(const char *s, int *len)
{
	char	   *result;

	if (memchr(s, '\0', *len) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNTRANSLATABLE_CHARACTER),
				 errmsg("string contains the character U+0000, which jsonb cannot hold")));

	result = pg_any_to_server(s, *len, PG_UTF8);
	if (result != s)
		*len = strlen(result);
	if (*len > JENTRY_OFFLENMASK)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("string too long to represent as jsonb string")));
	return result;
}

/* A string of the database (jsonb) as UTF-8 for the wire; sets *len */
static char *
server_to_utf8(const char *s, int *len)
{
	char	   *result = pg_server_to_any(s, *len, PG_UTF8);

	if (result != s)
		*len = strlen(result);
	return result;
}


/* ----------------------------------------------------------------
 *		Building jsonb
 * ----------------------------------------------------------------
 */

/* Push a scalar where it belongs: in the open container, or as the root */
static JsonbValue *
push_scalar(JsonbParseState **state, JsonbValue *value)
{
	JsonbValue	raw;

	if (*state == NULL)
	{
		/* a lone scalar is stored as a one-element "raw scalar" array */
		raw.type = jbvArray;
		raw.val.array.rawScalar = true;
		raw.val.array.nElems = 1;
		pushJsonbValue(state, WJB_BEGIN_ARRAY, &raw);
		pushJsonbValue(state, WJB_ELEM, value);
		return pushJsonbValue(state, WJB_END_ARRAY, NULL);
	}
	if ((*state)->contVal.type == jbvArray)
		return pushJsonbValue(state, WJB_ELEM, value);
	return pushJsonbValue(state, WJB_VALUE, value);
}

static JsonbValue *
push_string(JsonbParseState **state, const char *utf8, int len)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = utf8_to_server(utf8, &len);
	v.val.string.len = len;
	return push_scalar(state, &v);
}

static void
push_key(JsonbParseState **state, const char *utf8)
{
	JsonbValue	v;
	int			len = strlen(utf8);

	v.type = jbvString;
	v.val.string.val = utf8_to_server(utf8, &len);
	v.val.string.len = len;
	pushJsonbValue(state, WJB_KEY, &v);
}

static JsonbValue *
push_numeric(JsonbParseState **state, Numeric num)
{
	JsonbValue	v;

	v.type = jbvNumeric;
	v.val.numeric = num;
	return push_scalar(state, &v);
}

static JsonbValue *
push_bool(JsonbParseState **state, bool b)
{
	JsonbValue	v;

	v.type = jbvBool;
	v.val.boolean = b;
	return push_scalar(state, &v);
}

static JsonbValue *
push_null(JsonbParseState **state)
{
	JsonbValue	v;

	v.type = jbvNull;
	return push_scalar(state, &v);
}


/* ----------------------------------------------------------------
 *		Checking AttributeValues
 * ----------------------------------------------------------------
 */

/* "meta.tags[2]", for error messages: each name quoted as messages quote values */
static char *
render_path(const AvContext *ctx, const AvPath *path)
{
	StringInfoData buf;
	const AvPath **frames;
	int			nframes = 0;

	for (const AvPath *p = path; p != NULL; p = p->parent)
		nframes++;
	frames = palloc(Max(nframes, 1) * sizeof(*frames));
	for (int i = nframes - 1; i >= 0; i--, path = path->parent)
		frames[i] = path;

	initStringInfo(&buf);
	appendStringInfoString(&buf, ctx->attr_name ? esd_shorten(ctx->attr_name) : "(value)");
	for (int i = 0; i < nframes; i++)
	{
		if (frames[i]->key != NULL)
			appendStringInfo(&buf, ".%s", esd_shorten(frames[i]->key));
		else
			appendStringInfo(&buf, "[%d]", frames[i]->index);
	}
	return buf.data;
}

static const char *
json_type_label(struct json_object *value)
{
	switch (json_object_get_type(value))
	{
		case json_type_null:
			return "null";
		case json_type_boolean:
			return "boolean";
		case json_type_double:
		case json_type_int:
			return "number";
		case json_type_object:
			return "object";
		case json_type_array:
			return "array";
		case json_type_string:
			return "string";
	}
	return "value";
}

/*
 * Raise the error for a malformed AttributeValue; detail says what is wrong
 * with the value at the context's current path.
 */
static void
av_invalid(AvContext *ctx, int sqlerrcode, const char *detail)
{
	ctx->own_error = true;
	if (ctx->attr_name != NULL && ctx->item_id != NULL)
		ereport(ERROR,
				(errcode(sqlerrcode),
				 errmsg("invalid DynamoDB attribute value in attribute \"%s\" of item \"%s\"",
						esd_shorten(ctx->attr_name), esd_shorten(ctx->item_id)),
				 errdetail_internal("%s", detail)));
	else if (ctx->attr_name != NULL)
		ereport(ERROR,
				(errcode(sqlerrcode),
				 errmsg("invalid DynamoDB attribute value in attribute \"%s\"",
						esd_shorten(ctx->attr_name)),
				 errdetail_internal("%s", detail)));
	else if (ctx->item_id != NULL)
		ereport(ERROR,
				(errcode(sqlerrcode),
				 errmsg("invalid DynamoDB attribute value in item \"%s\"",
						esd_shorten(ctx->item_id)),
				 errdetail_internal("%s", detail)));
	else
		ereport(ERROR,
				(errcode(sqlerrcode),
				 errmsg("invalid DynamoDB attribute value"),
				 errdetail_internal("%s", detail)));
}

/*
 * Context line for errors PostgreSQL raises while we convert (invalid
 * UTF-8, characters the database encoding lacks, U+0000).
 */
static void
av_error_callback(void *arg)
{
	AvContext  *ctx = (AvContext *) arg;
	char	   *path;

	if (ctx->own_error)
		return;
	path = render_path(ctx, ctx->path);
	if (ctx->item_id != NULL)
		errcontext("DynamoDB attribute value %s of item \"%s\"", path, esd_shorten(ctx->item_id));
	else
		errcontext("DynamoDB attribute value %s", path);
}

/*
 * Check an AttributeValue's shape and return its kind and the JSON value
 * under its tag.  Set and number contents are checked here too, so that the
 * builders below meet only well-formed values.
 */
static AvKind
av_classify(AvContext *ctx, struct json_object *av, struct json_object **payload)
{
	const AvTag *found = NULL;
	const char *tag = NULL;
	int			nkeys;

	if (!json_object_is_type(av, json_type_object))
		av_invalid(ctx, ERRCODE_FDW_INVALID_DATA_TYPE,
				   psprintf("The value at %s is a JSON %s, not an object with one type key.",
							render_path(ctx, ctx->path), json_type_label(av)));

	nkeys = json_object_object_length(av);
	if (nkeys != 1)
		av_invalid(ctx, ERRCODE_FDW_INVALID_DATA_TYPE,
				   nkeys == 0 ?
				   psprintf("The value at %s has no type key.",
							render_path(ctx, ctx->path)) :
				   psprintf("The value at %s has %d keys; an AttributeValue has exactly one.",
							render_path(ctx, ctx->path), nkeys));

	{
		json_object_object_foreach(av, key, val)
		{
			tag = key;
			*payload = val;
		}
	}
	for (size_t i = 0; i < lengthof(av_tags); i++)
		if (strcmp(av_tags[i].tag, tag) == 0)
			found = &av_tags[i];
	if (found == NULL)
		av_invalid(ctx, ERRCODE_FDW_INVALID_DATA_TYPE,
				   psprintf("The value at %s has the unknown type key \"%s\".",
							render_path(ctx, ctx->path), esd_shorten(tag)));

	if (!json_object_is_type(*payload, found->payload_type))
		av_invalid(ctx, ERRCODE_FDW_INVALID_DATA_TYPE,
				   psprintf("The \"%s\" value at %s is a JSON %s; it must be a JSON %s.",
							tag, render_path(ctx, ctx->path),
							json_type_label(*payload),
							json_type_to_name(found->payload_type)));

	if (found->kind == AV_N &&
		normalize_number(json_object_get_string(*payload)) == NULL)
		av_invalid(ctx, ERRCODE_FDW_INVALID_STRING_FORMAT,
				   psprintf("The \"N\" value at %s, \"%s\", is not a valid number.",
							render_path(ctx, ctx->path),
							esd_shorten(json_object_get_string(*payload))));

	if (found->kind == AV_SS || found->kind == AV_NS || found->kind == AV_BS)
	{
		size_t		n = json_object_array_length(*payload);

		for (size_t i = 0; i < n; i++)
		{
			struct json_object *elem = json_object_array_get_idx(*payload, i);

			if (!json_object_is_type(elem, json_type_string))
				av_invalid(ctx, ERRCODE_FDW_INVALID_DATA_TYPE,
						   psprintf("Element %d of the \"%s\" value at %s is a JSON %s, not a string.",
									(int) i, tag, render_path(ctx, ctx->path),
									json_type_label(elem)));
			if (found->kind == AV_NS &&
				normalize_number(json_object_get_string(elem)) == NULL)
				av_invalid(ctx, ERRCODE_FDW_INVALID_STRING_FORMAT,
						   psprintf("Element %d of the \"NS\" value at %s, \"%s\", is not a valid number.",
									(int) i, render_path(ctx, ctx->path),
									esd_shorten(json_object_get_string(elem))));
		}
	}
	return found->kind;
}


/* ----------------------------------------------------------------
 *		AttributeValue -> jsonb
 * ----------------------------------------------------------------
 */

static JsonbValue *
av_push(AvContext *ctx, JsonbParseState **state, struct json_object *av)
{
	struct json_object *payload = NULL;
	JsonbValue *result = NULL;
	AvKind		kind;
	size_t		n;

	check_stack_depth();
	kind = av_classify(ctx, av, &payload);

	switch (kind)
	{
		case AV_S:
		case AV_B:
			result = push_string(state, json_object_get_string(payload),
								 json_object_get_string_len(payload));
			break;
		case AV_N:
			result = push_numeric(state,
								  numeric_from_text(normalize_number(json_object_get_string(payload))));
			break;
		case AV_BOOL:
			result = push_bool(state, json_object_get_boolean(payload));
			break;
		case AV_NULL:
			result = push_null(state);
			break;
		case AV_M:
			{
				const AvPath *parent = ctx->path;

				pushJsonbValue(state, WJB_BEGIN_OBJECT, NULL);
				{
					json_object_object_foreach(payload, key, val)
					{
						AvPath		here = {parent, key, 0};

						push_key(state, key);
						ctx->path = &here;
						av_push(ctx, state, val);
					}
				}
				ctx->path = parent;
				result = pushJsonbValue(state, WJB_END_OBJECT, NULL);
				break;
			}
		case AV_L:
			{
				const AvPath *parent = ctx->path;

				n = json_object_array_length(payload);
				pushJsonbValue(state, WJB_BEGIN_ARRAY, NULL);
				for (size_t i = 0; i < n; i++)
				{
					AvPath		here = {parent, NULL, (int) i};

					ctx->path = &here;
					av_push(ctx, state, json_object_array_get_idx(payload, i));
				}
				ctx->path = parent;
				result = pushJsonbValue(state, WJB_END_ARRAY, NULL);
				break;
			}
		case AV_SS:
		case AV_NS:
		case AV_BS:
			n = json_object_array_length(payload);
			pushJsonbValue(state, WJB_BEGIN_ARRAY, NULL);
			for (size_t i = 0; i < n; i++)
			{
				struct json_object *elem = json_object_array_get_idx(payload, i);

				if (kind == AV_NS)
					push_numeric(state,
								 numeric_from_text(normalize_number(json_object_get_string(elem))));
				else
					push_string(state, json_object_get_string(elem),
								json_object_get_string_len(elem));
			}
			result = pushJsonbValue(state, WJB_END_ARRAY, NULL);
			break;
	}
	return result;
}

Jsonb *
codec_av_to_jsonb(struct json_object *av, const char *attr_name,
				  const char *item_id)
{
	AvContext	ctx = {attr_name, item_id, NULL, false, NULL};
	ErrorContextCallback errcallback;
	JsonbParseState *state = NULL;
	JsonbValue *result;

	errcallback.callback = av_error_callback;
	errcallback.arg = &ctx;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	result = av_push(&ctx, &state, av);

	error_context_stack = errcallback.previous;
	return JsonbValueToJsonb(result);
}


/* ----------------------------------------------------------------
 *		AttributeValue -> json-c value
 * ----------------------------------------------------------------
 */

static struct json_object *
json_checked(struct json_object *obj)
{
	if (obj == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	return obj;
}

/*
 * Put a new value in its place: under key in an object parent, at the end
 * of an array parent, or as the root.  Done before the value is filled, so
 * that the root owns everything built so far.
 */
static struct json_object *
json_attach(struct json_object **root, struct json_object *parent,
			const char *key, struct json_object *value)
{
	json_checked(value);
	if (parent == NULL)
		*root = value;
	else if (key != NULL)
	{
		if (json_object_object_add(parent, key, value) != 0)
		{
			json_object_put(value);
			json_checked(NULL);
		}
	}
	else if (json_object_array_add(parent, value) != 0)
	{
		json_object_put(value);
		json_checked(NULL);
	}
	return value;
}

/*
 * A number's JSON value from text normalize_number accepted: an integer
 * when it is one that fits int64, otherwise a double that prints as the
 * text itself, so that no digit is lost.
 */
static struct json_object *
json_number_from_text(const char *normalized)
{
	if (strpbrk(normalized, ".eE") == NULL)
	{
		char	   *end;
		long long	v;

		errno = 0;
		v = strtoll(normalized, &end, 10);
		if (errno == 0 && *end == '\0' && strcmp(normalized, "-0") != 0)
			return json_object_new_int64(v);
	}
	return json_object_new_double_s(strtod(normalized, NULL), normalized);
}

static void
av_to_json_into(AvContext *ctx, struct json_object *av,
				struct json_object *parent, const char *key)
{
	struct json_object *payload = NULL;
	struct json_object *container;
	AvKind		kind;
	size_t		n;

	check_stack_depth();
	kind = av_classify(ctx, av, &payload);

	switch (kind)
	{
		case AV_S:
		case AV_B:
			json_attach(&ctx->root, parent, key,
						json_object_new_string_len(json_object_get_string(payload),
												   json_object_get_string_len(payload)));
			break;
		case AV_N:
			json_attach(&ctx->root, parent, key,
						json_number_from_text(normalize_number(json_object_get_string(payload))));
			break;
		case AV_BOOL:
			json_attach(&ctx->root, parent, key,
						json_object_new_boolean(json_object_get_boolean(payload)));
			break;
		case AV_NULL:
			/* json-c's null is the NULL pointer */
			if (parent == NULL)
				ctx->root = NULL;
			else if (key != NULL)
				json_object_object_add(parent, key, NULL);
			else
				json_object_array_add(parent, NULL);
			break;
		case AV_M:
			{
				const AvPath *up = ctx->path;

				container = json_attach(&ctx->root, parent, key,
										json_object_new_object());
				{
					json_object_object_foreach(payload, k, val)
					{
						AvPath		here = {up, k, 0};

						ctx->path = &here;
						av_to_json_into(ctx, val, container, k);
					}
				}
				ctx->path = up;
				break;
			}
		case AV_L:
			{
				const AvPath *up = ctx->path;

				n = json_object_array_length(payload);
				container = json_attach(&ctx->root, parent, key,
										json_object_new_array_ext((int) n));
				for (size_t i = 0; i < n; i++)
				{
					AvPath		here = {up, NULL, (int) i};

					ctx->path = &here;
					av_to_json_into(ctx, json_object_array_get_idx(payload, i),
									container, NULL);
				}
				ctx->path = up;
				break;
			}
		case AV_SS:
		case AV_NS:
		case AV_BS:
			n = json_object_array_length(payload);
			container = json_attach(&ctx->root, parent, key,
									json_object_new_array_ext((int) n));
			for (size_t i = 0; i < n; i++)
			{
				struct json_object *elem = json_object_array_get_idx(payload, i);

				if (kind == AV_NS)
					json_attach(&ctx->root, container, NULL,
								json_number_from_text(normalize_number(json_object_get_string(elem))));
				else
					json_attach(&ctx->root, container, NULL,
								json_object_new_string_len(json_object_get_string(elem),
														   json_object_get_string_len(elem)));
			}
			break;
	}
}

struct json_object *
codec_av_to_json(struct json_object *av, const char *attr_name,
				 const char *item_id)
{
	AvContext	ctx = {attr_name, item_id, NULL, false, NULL};
	AvContext  *volatile pctx = &ctx;

	PG_TRY();
	{
		av_to_json_into(pctx, av, NULL, NULL);
	}
	PG_CATCH();
	{
		json_object_put(pctx->root);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return ctx.root;
}


/* ----------------------------------------------------------------
 *		Plain JSON (json-c) -> jsonb
 * ----------------------------------------------------------------
 */

/*
 * A json-c number as numeric.  json-c keeps the text of a double it parsed
 * (json_object_get_userdata is set then), and prints integers exactly, so
 * the text is used when it is a JSON number numeric can hold.  Otherwise
 * (a double made in C, "NaN" or "Infinity" accepted by json-c's lenient
 * parser, or an exponent beyond numeric) the value is what JavaScript would
 * have: the double's shortest form, and null for NaN and the infinities as
 * JSON.stringify prints them.  Note json-c itself clamps integers beyond
 * the 64-bit range when it parses them.
 */
static JsonbValue *
push_json_number(JsonbParseState **state, struct json_object *value)
{
	const char *text = NULL;
	char	   *normalized = NULL;
	char		buf[JS_NUMBER_BUFLEN];

	if (json_object_is_type(value, json_type_int) ||
		json_object_get_userdata(value) != NULL)
		text = json_object_to_json_string_ext(value, JSON_C_TO_STRING_PLAIN);
	if (text != NULL && IsValidJsonNumber(text, strlen(text)))
		normalized = normalize_number(text);
	if (normalized == NULL)
	{
		double		d = json_object_get_double(value);

		if (!isfinite(d))
			return push_null(state);
		format_js_number(d, buf);
		normalized = buf;
	}
	return push_numeric(state, numeric_from_text(normalized));
}

static JsonbValue *
json_push(JsonbParseState **state, struct json_object *value)
{
	JsonbValue *result = NULL;

	check_stack_depth();
	switch (json_object_get_type(value))
	{
		case json_type_null:
			result = push_null(state);
			break;
		case json_type_boolean:
			result = push_bool(state, json_object_get_boolean(value));
			break;
		case json_type_double:
		case json_type_int:
			result = push_json_number(state, value);
			break;
		case json_type_string:
			result = push_string(state, json_object_get_string(value),
								 json_object_get_string_len(value));
			break;
		case json_type_object:
			{
				pushJsonbValue(state, WJB_BEGIN_OBJECT, NULL);
				{
					json_object_object_foreach(value, key, val)
					{
						push_key(state, key);
						json_push(state, val);
					}
				}
				result = pushJsonbValue(state, WJB_END_OBJECT, NULL);
				break;
			}
		case json_type_array:
			{
				size_t		n = json_object_array_length(value);

				pushJsonbValue(state, WJB_BEGIN_ARRAY, NULL);
				for (size_t i = 0; i < n; i++)
					json_push(state, json_object_array_get_idx(value, i));
				result = pushJsonbValue(state, WJB_END_ARRAY, NULL);
				break;
			}
	}
	return result;
}

Jsonb *
codec_json_to_jsonb(struct json_object *value)
{
	JsonbParseState *state = NULL;

	return JsonbValueToJsonb(json_push(&state, value));
}


/* ----------------------------------------------------------------
 *		JSON text -> jsonb
 * ----------------------------------------------------------------
 */

/*
 * Semantic actions for PostgreSQL's JSON parser, building jsonb as jsonb_in
 * does.  A number numeric cannot hold would make jsonb_in fail; here it is
 * only noted (the parser's callbacks cannot stop it), and the caller then
 * keeps the text as a string.
 */
typedef struct JsonTextState
{
	JsonbParseState *parse_state;
	JsonbValue *result;
	bool		unrepresentable;
} JsonTextState;

static void
json_text_object_start(void *arg)
{
	JsonTextState *st = (JsonTextState *) arg;

	st->result = pushJsonbValue(&st->parse_state, WJB_BEGIN_OBJECT, NULL);
}

static void
json_text_object_end(void *arg)
{
	JsonTextState *st = (JsonTextState *) arg;

	st->result = pushJsonbValue(&st->parse_state, WJB_END_OBJECT, NULL);
}

static void
json_text_array_start(void *arg)
{
	JsonTextState *st = (JsonTextState *) arg;

	st->result = pushJsonbValue(&st->parse_state, WJB_BEGIN_ARRAY, NULL);
}

static void
json_text_array_end(void *arg)
{
	JsonTextState *st = (JsonTextState *) arg;

	st->result = pushJsonbValue(&st->parse_state, WJB_END_ARRAY, NULL);
}

static void
json_text_field_start(void *arg, char *fname, bool isnull)
{
	JsonTextState *st = (JsonTextState *) arg;
	JsonbValue	v;
	size_t		len = strlen(fname);

	(void) isnull;
	if (len > JENTRY_OFFLENMASK)
	{
		st->unrepresentable = true;
		len = 0;
	}
	v.type = jbvString;
	v.val.string.val = fname;
	v.val.string.len = (int) len;
	st->result = pushJsonbValue(&st->parse_state, WJB_KEY, &v);
}

static void
json_text_scalar(void *arg, char *token, JsonTokenType tokentype)
{
	JsonTextState *st = (JsonTextState *) arg;
	JsonbValue	v;

	switch (tokentype)
	{
		case JSON_TOKEN_STRING:
			v.type = jbvString;
			v.val.string.val = token;
			v.val.string.len = (int) strlen(token);
			if (strlen(token) > JENTRY_OFFLENMASK)
			{
				st->unrepresentable = true;
				v.val.string.len = 0;
			}
			break;
		case JSON_TOKEN_NUMBER:
			{
				char	   *normalized = normalize_number(token);

				if (normalized == NULL)
				{
					st->unrepresentable = true;
					v.type = jbvNull;
				}
				else
				{
					v.type = jbvNumeric;
					v.val.numeric = numeric_from_text(normalized);
				}
				break;
			}
		case JSON_TOKEN_TRUE:
		case JSON_TOKEN_FALSE:
			v.type = jbvBool;
			v.val.boolean = (tokentype == JSON_TOKEN_TRUE);
			break;
		default:
			v.type = jbvNull;
			break;
	}
	st->result = push_scalar(&st->parse_state, &v);
}

Jsonb *
codec_json_text_to_jsonb(const char *text, size_t len)
{
	JsonTextState st = {NULL, NULL, false};
	JsonSemAction sem;
	JsonLexContext *lex;
	JsonbParseState *state = NULL;
	JsonbValue	v;
	char	   *server_text;
	int			server_len;

	if (len > (size_t) INT_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("JSON text of %zu bytes is too long", len)));
	server_len = (int) len;
	server_text = utf8_to_server(text, &server_len);

	memset(&sem, 0, sizeof(sem));
	sem.semstate = &st;
	sem.object_start = json_text_object_start;
	sem.object_end = json_text_object_end;
	sem.array_start = json_text_array_start;
	sem.array_end = json_text_array_end;
	sem.object_field_start = json_text_field_start;
	sem.scalar = json_text_scalar;

	/* need_escapes: de-escaped strings, and \u0000 reported as an error */
	lex = makeJsonLexContextCstringLen(server_text, server_len,
									   GetDatabaseEncoding(), true);
	if (pg_parse_json(lex, &sem) == JSON_SUCCESS && !st.unrepresentable &&
		st.result != NULL)
		return JsonbValueToJsonb(st.result);

	/* not JSON that jsonb can hold: the text itself, as a string */
	v.type = jbvString;
	v.val.string.val = server_text;
	v.val.string.len = server_len;
	return JsonbValueToJsonb(push_scalar(&state, &v));
}


/* ----------------------------------------------------------------
 *		jsonb -> AttributeValue
 * ----------------------------------------------------------------
 */

/*
 * A jsonb number as the text JavaScript prints for it; ERROR when
 * JavaScript would read it as Infinity (the SDK refuses to marshall that).
 */
static void
numeric_to_js_text(Numeric num, char *buf)
{
	double		d = numeric_to_js_double(num);

	if (!isfinite(d))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("number is out of range for a DynamoDB attribute"),
				 errdetail("JavaScript reads %s as Infinity, which the SDK refuses to marshall.",
						   esd_shorten(DatumGetCString(DirectFunctionCall1(numeric_out,
																	   NumericGetDatum(num)))))));
	format_js_number(d, buf);
}

/*
 * One scalar jsonb value as an AttributeValue (new json-c reference).  All
 * that may raise an error is done before any json-c object exists.
 */
static struct json_object *
scalar_to_av(JsonbValue *v)
{
	struct json_object *av;
	struct json_object *inner = NULL;
	const char *tag = NULL;
	char		numbuf[JS_NUMBER_BUFLEN];
	char	   *utf8 = NULL;
	int			len = 0;

	switch (v->type)
	{
		case jbvString:
			tag = "S";
			len = v->val.string.len;
			utf8 = server_to_utf8(v->val.string.val, &len);
			break;
		case jbvNumeric:
			tag = "N";
			numeric_to_js_text(v->val.numeric, numbuf);
			break;
		case jbvBool:
			tag = "BOOL";
			break;
		case jbvNull:
			tag = "NULL";
			break;
		default:
			elog(ERROR, "unexpected jsonb value type %d", (int) v->type);
	}

	av = json_checked(json_object_new_object());
	switch (v->type)
	{
		case jbvString:
			inner = json_object_new_string_len(utf8, len);
			break;
		case jbvNumeric:
			inner = json_object_new_string(numbuf);
			break;
		case jbvBool:
			inner = json_object_new_boolean(v->val.boolean);
			break;
		default:
			inner = json_object_new_boolean(1);	/* {"NULL": true} */
			break;
	}
	if (inner == NULL || json_object_object_add(av, tag, inner) != 0)
	{
		json_object_put(inner);
		json_object_put(av);
		json_checked(NULL);
	}
	return av;
}

/*
 * Walk the jsonb with its iterator (no recursion), keeping the stack of open
 * M and L payloads; every new value is attached to its parent at once.
 */
static void
jsonb_to_av_into(Jsonb *jb, struct json_object **root)
{
	JsonbIterator *it = JsonbIteratorInit(&jb->root);
	JsonbIteratorToken tok;
	JsonbValue	v;
	struct json_object **stack = NULL;
	int			depth = 0;
	int			stack_size = 0;
	char	   *key = NULL;

	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		struct json_object *parent = depth > 0 ? stack[depth - 1] : NULL;
		struct json_object *av;
		bool		is_object;

		switch (tok)
		{
			case WJB_BEGIN_ARRAY:
			case WJB_BEGIN_OBJECT:
				if (tok == WJB_BEGIN_ARRAY && v.val.array.rawScalar)
					break;		/* a lone scalar: its WJB_ELEM is the root */
				is_object = (tok == WJB_BEGIN_OBJECT);
				av = json_attach(root, parent, key,
								 json_object_new_object());
				key = NULL;
				if (depth == stack_size)
				{
					stack_size = Max(8, stack_size * 2);
					stack = stack ? repalloc(stack, stack_size * sizeof(*stack))
						: palloc(stack_size * sizeof(*stack));
				}
				stack[depth++] = json_attach(root, av, is_object ? "M" : "L",
											 is_object ? json_object_new_object()
											 : json_object_new_array());
				break;
			case WJB_END_ARRAY:
			case WJB_END_OBJECT:
				if (depth > 0)	/* not the end of a lone scalar */
					depth--;
				break;
			case WJB_KEY:
				{
					int			len = v.val.string.len;
					char	   *utf8 = server_to_utf8(v.val.string.val, &len);

					key = pnstrdup(utf8, len);
					break;
				}
			case WJB_VALUE:
			case WJB_ELEM:
				json_attach(root, parent, key, scalar_to_av(&v));
				key = NULL;
				break;
			case WJB_DONE:
				break;
		}
	}
}

struct json_object *
codec_jsonb_to_av(Jsonb *jb)
{
	struct json_object *root = NULL;
	struct json_object **volatile proot = &root;

	PG_TRY();
	{
		jsonb_to_av_into(jb, proot);
	}
	PG_CATCH();
	{
		json_object_put(*proot);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return root;
}


/* ----------------------------------------------------------------
 *		jsonb -> compact JSON text
 * ----------------------------------------------------------------
 */

/* A string (UTF-8) quoted as JSON.stringify quotes it */
static void
append_js_string(StringInfo out, const char *s, int len)
{
	const char *run = s;		/* start of the bytes not yet copied */

	appendStringInfoChar(out, '"');
	for (const char *p = s; p < s + len; p++)
	{
		unsigned char c = (unsigned char) *p;
		const char *esc = NULL;
		char		hex[8];

		if (c == '"')
			esc = "\\\"";
		else if (c == '\\')
			esc = "\\\\";
		else if (c < 0x20)
		{
			switch (c)
			{
				case '\b':
					esc = "\\b";
					break;
				case '\f':
					esc = "\\f";
					break;
				case '\n':
					esc = "\\n";
					break;
				case '\r':
					esc = "\\r";
					break;
				case '\t':
					esc = "\\t";
					break;
				default:
					snprintf(hex, sizeof(hex), "\\u%04x", c);
					esc = hex;
					break;
			}
		}
		if (esc != NULL)
		{
			appendBinaryStringInfo(out, run, p - run);
			appendStringInfoString(out, esc);
			run = p + 1;
		}
	}
	appendBinaryStringInfo(out, run, s + len - run);
	appendStringInfoChar(out, '"');
}

static void
append_js_scalar(StringInfo out, JsonbValue *v)
{
	switch (v->type)
	{
		case jbvString:
			{
				int			len = v->val.string.len;
				char	   *utf8 = server_to_utf8(v->val.string.val, &len);

				append_js_string(out, utf8, len);
				break;
			}
		case jbvNumeric:
			{
				double		d = numeric_to_js_double(v->val.numeric);
				char		buf[JS_NUMBER_BUFLEN];

				/* JSON.stringify prints Infinity as null */
				if (!isfinite(d))
					appendStringInfoString(out, "null");
				else
				{
					format_js_number(d, buf);
					appendStringInfoString(out, buf);
				}
				break;
			}
		case jbvBool:
			appendStringInfoString(out, v->val.boolean ? "true" : "false");
			break;
		case jbvNull:
			appendStringInfoString(out, "null");
			break;
		default:
			elog(ERROR, "unexpected jsonb value type %d", (int) v->type);
	}
}

/*
 * Object keys come out in jsonb's stored order (shorter keys first, then
 * bytewise), not the order the value was first written in: jsonb does not
 * keep that order, so it cannot be given back.  The text is UTF-8, for the
 * wire, whatever the database encoding.
 */
static char *jsonb_to_compact_text(Jsonb *jb, const char *what);

char *
codec_jsonb_to_compact_text(Jsonb *jb)
{
	return jsonb_to_compact_text(jb, NULL);
}

char *
codec_payload_jsonb_to_text(Jsonb *jb)
{
	return jsonb_to_compact_text(jb, "payload");
}

/*
 * The compact text of a jsonb value; with what set, a number beyond a
 * double's range (printed as null by JSON.stringify) is an error naming
 * what.
 */
static char *
jsonb_to_compact_text(Jsonb *jb, const char *what)
{
	StringInfoData out;
	JsonbIterator *it = JsonbIteratorInit(&jb->root);
	JsonbIteratorToken tok;
	JsonbValue	v;
	bool		need_comma = false;
	bool		raw_scalar = false;

	initStringInfo(&out);
	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		switch (tok)
		{
			case WJB_BEGIN_ARRAY:
				if (v.val.array.rawScalar)
				{
					raw_scalar = true;
					break;
				}
				/* FALLTHROUGH */
			case WJB_BEGIN_OBJECT:
				if (need_comma)
					appendStringInfoChar(&out, ',');
				appendStringInfoChar(&out, tok == WJB_BEGIN_OBJECT ? '{' : '[');
				need_comma = false;
				break;
			case WJB_END_ARRAY:
			case WJB_END_OBJECT:
				if (!raw_scalar)
					appendStringInfoChar(&out, tok == WJB_END_OBJECT ? '}' : ']');
				need_comma = true;
				break;
			case WJB_KEY:
				{
					int			len = v.val.string.len;
					char	   *utf8 = server_to_utf8(v.val.string.val, &len);

					if (need_comma)
						appendStringInfoChar(&out, ',');
					append_js_string(&out, utf8, len);
					appendStringInfoChar(&out, ':');
					need_comma = false;
					break;
				}
			case WJB_VALUE:
			case WJB_ELEM:
				if (what && v.type == jbvNumeric &&
					!isfinite(numeric_to_js_double(v.val.numeric)))
					ereport(ERROR,
							(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
							 errmsg("%s number %s is out of range", what,
									esd_shorten(DatumGetCString(DirectFunctionCall1(numeric_out,
																				NumericGetDatum(v.val.numeric))))),
							 errdetail("A JSON number of an event is read as a double by JavaScript."),
							 errhint("Store such a number as a string.")));
				if (need_comma)
					appendStringInfoChar(&out, ',');
				append_js_scalar(&out, &v);
				need_comma = true;
				break;
			case WJB_DONE:
				break;
		}
	}
	return out.data;
}

/* ----------------------------------------------------------------
 *		Payload text from a json or text column
 * ----------------------------------------------------------------
 */

/* What the strict parser's callbacks build: the compact text, and commas. */
typedef struct CompactState
{
	StringInfoData out;
	bool		need_comma;
	const char *what;
} CompactState;

static void
compact_open(CompactState *st, char c)
{
	if (st->need_comma)
		appendStringInfoChar(&st->out, ',');
	appendStringInfoChar(&st->out, c);
	st->need_comma = false;
}

static void
compact_object_start(void *state)
{
	compact_open(state, '{');
}

static void
compact_array_start(void *state)
{
	compact_open(state, '[');
}

static void
compact_object_end(void *state)
{
	CompactState *st = state;

	appendStringInfoChar(&st->out, '}');
	st->need_comma = true;
}

static void
compact_array_end(void *state)
{
	CompactState *st = state;

	appendStringInfoChar(&st->out, ']');
	st->need_comma = true;
}

static void
compact_field(void *state, char *fname, bool isnull pg_attribute_unused())
{
	CompactState *st = state;
	int			len = strlen(fname);
	char	   *utf8 = server_to_utf8(fname, &len);

	if (st->need_comma)
		appendStringInfoChar(&st->out, ',');
	append_js_string(&st->out, utf8, len);
	appendStringInfoChar(&st->out, ':');
	st->need_comma = false;
}

static void
compact_scalar(void *state, char *token, JsonTokenType type)
{
	CompactState *st = state;

	if (st->need_comma)
		appendStringInfoChar(&st->out, ',');
	st->need_comma = true;
	if (type == JSON_TOKEN_STRING)
	{
		int			len = strlen(token);
		char	   *utf8 = server_to_utf8(token, &len);

		append_js_string(&st->out, utf8, len);
		return;
	}
	if (type == JSON_TOKEN_NUMBER)
	{
		double		d = strtod(token, NULL);

		/* JSON.parse would make it Infinity, which JSON.stringify prints as null */
		if (isinf(d))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("%s number %s is out of range", st->what, esd_shorten(token)),
					 errdetail("A JSON number of an event is read as a double by JavaScript."),
					 errhint("Store such a number as a string.")));
	}
	/* numbers as written (-0 and 1.50 stay so), true, false, null */
	appendStringInfoString(&st->out, token);
}

/*
 * JSON text given for the payload in a json or text column, as stored:
 * checked by PostgreSQL's strict JSON parser (no NaN, Infinity, single
 * quotes, trailing commas or comments, which JSON.parse refuses too),
 * without insignificant white space, strings escaped as JSON.stringify
 * escapes them, numbers as written, keys in the writer's order.  So the
 * text JSON.stringify printed is stored byte for byte.  A number beyond a
 * double's range (which JavaScript would read as Infinity) is refused.
 * UTF-8, whatever the database encoding.
 */
char *
codec_compact_json_text(const char *text, const char *what)
{
	JsonLexContext *lex;
	JsonSemAction sem;
	CompactState st;
	JsonParseErrorType result;

	memset(&sem, 0, sizeof(sem));
	memset(&st, 0, sizeof(st));
	initStringInfo(&st.out);
	st.what = what;
	sem.semstate = &st;
	sem.object_start = compact_object_start;
	sem.object_end = compact_object_end;
	sem.array_start = compact_array_start;
	sem.array_end = compact_array_end;
	sem.object_field_start = compact_field;
	sem.scalar = compact_scalar;

	lex = makeJsonLexContextCstringLen((char *) text, strlen(text), GetDatabaseEncoding(), true);
	result = pg_parse_json(lex, &sem);
	if (result != JSON_SUCCESS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("%s is not valid JSON", what),
				 errdetail("%s", json_errdetail(result, lex)),
				 errhint("The %s of an event is JSON text as JSON.stringify prints it: no NaN, Infinity, single quotes, trailing commas or comments.",
						 what)));
	return st.out.data;
}

/*
 * Where the value of a top-level member of a JSON object text starts and
 * ends, as written: the S3 body's payload read byte for byte, with every
 * digit of its numbers, whatever json-c would make of them.
 */
typedef struct MemberSpan
{
	JsonLexContext *lex;
	const char *member;
	int			depth;
	const char *start;
	const char *end;
} MemberSpan;

static void
span_object_start(void *arg)
{
	((MemberSpan *) arg)->depth++;
}

static void
span_object_end(void *arg)
{
	((MemberSpan *) arg)->depth--;
}

static void
span_array_start(void *arg)
{
	((MemberSpan *) arg)->depth++;
}

static void
span_array_end(void *arg)
{
	((MemberSpan *) arg)->depth--;
}

static void
span_field_start(void *arg, char *fname, bool isnull pg_attribute_unused())
{
	MemberSpan *span = arg;

	/* after the name and the colon, the lexer stands at the value */
	if (span->depth == 1 && span->start == NULL && strcmp(fname, span->member) == 0)
		span->start = span->lex->token_start;
}

static void
span_field_end(void *arg, char *fname, bool isnull pg_attribute_unused())
{
	MemberSpan *span = arg;

	if (span->depth == 1 && span->start != NULL && span->end == NULL &&
		strcmp(fname, span->member) == 0)
		span->end = span->lex->prev_token_terminator;
}

bool
codec_json_member_text(const char *json, size_t len, const char *member,
					   const char **value, int *value_len)
{
	MemberSpan	span;
	JsonSemAction sem;
	JsonLexContext *lex = makeJsonLexContextCstringLen((char *) json, (int) len,
													   PG_UTF8, true);

	memset(&span, 0, sizeof(span));
	memset(&sem, 0, sizeof(sem));
	span.lex = lex;
	span.member = member;
	sem.semstate = &span;
	sem.object_start = span_object_start;
	sem.object_end = span_object_end;
	sem.array_start = span_array_start;
	sem.array_end = span_array_end;
	sem.object_field_start = span_field_start;
	sem.object_field_end = span_field_end;

	if (pg_parse_json(lex, &sem) != JSON_SUCCESS || span.start == NULL || span.end == NULL)
		return false;
	*value = span.start;
	*value_len = (int) (span.end - span.start);
	return true;
}
