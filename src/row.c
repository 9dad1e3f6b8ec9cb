/*-------------------------------------------------------------------------
 *
 * row.c
 *	  Turning a stored event into a row of the foreign table.
 *
 * Columns map to attributes by name (snake_case to the layout's
 * camelCase) or by their attribute_name option.  An offloaded event takes
 * every attribute its S3 body carries from the body, except sequence and
 * s3Reference, which only the item has.  What a value becomes depends on
 * the column's type:
 *   - jsonb: the attribute's natural JSON value; payload is JSON text and
 *     is parsed (text that is not JSON becomes a jsonb string);
 *   - json: the same as text; payload is the stored JSON text verbatim;
 *   - anything else: the attribute's text (S and N as stored, BOOL as
 *     true/false, other types as JSON text) read by the type's input
 *     function.
 * A missing attribute, or a DynamoDB NULL, is SQL NULL (jsonb columns show
 * a stored NULL as JSON null).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <json-c/json.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "codec.h"
#include "dynamo.h"
#include "option.h"
#include "row.h"

EsdRowMap *
esd_row_map(Relation rel, List *attnums)
{
	TupleDesc	desc = RelationGetDescr(rel);
	EsdRowMap  *map = palloc0(sizeof(EsdRowMap));
	ListCell   *lc;

	map->natts = desc->natts;
	map->columns = palloc0(sizeof(EsdColumn) * Max(list_length(attnums), 1));
	foreach(lc, attnums)
	{
		AttrNumber	attnum = lfirst_int(lc);
		Form_pg_attribute att = TupleDescAttr(desc, attnum - 1);
		EsdColumn  *col = &map->columns[map->ncolumns++];
		Oid			infunc;
		Oid			outfunc;
		bool		varlena;

		col->attnum = attnum;
		col->attr = esd_column_attribute_name(RelationGetRelid(rel), attnum, NameStr(att->attname));
		col->kind = strcmp(col->attr, "id") == 0 ? ESD_COL_ID
			: strcmp(col->attr, "payload") == 0 ? ESD_COL_PAYLOAD : ESD_COL_OTHER;
		col->typid = att->atttypid;
		col->typmod = att->atttypmod;
		getTypeInputInfo(col->typid, &infunc, &col->ioparam);
		fmgr_info(infunc, &col->input);
		getTypeOutputInfo(col->typid, &outfunc, &varlena);
		fmgr_info(outfunc, &col->output);
	}
	return map;
}

/* Is this text valid JSON?  PostgreSQL's own parser decides. */
static bool
is_json_text(const char *text, size_t len)
{
	JsonLexContext *lex = makeJsonLexContextCstringLen((char *) text, (int) len,
													   GetDatabaseEncoding(), false);

	return pg_parse_json(lex, &nullSemAction) == JSON_SUCCESS;
}

static char *
json_text_of_av(json_object *av, const EsdColumn *col, const char *item_id)
{
	Jsonb	   *jb = codec_av_to_jsonb(av, col->attr, item_id);

	return JsonbToCString(NULL, &jb->root, VARSIZE(jb));
}

static const char *
plain_json_text(json_object *value)
{
	return json_object_to_json_string_ext(value, JSON_C_TO_STRING_PLAIN |
										  JSON_C_TO_STRING_NOSLASHESCAPE);
}

/* A JSON string literal for text that is not JSON. */
static char *
quote_json(const char *s)
{
	StringInfoData buf;

	initStringInfo(&buf);
	escape_json(&buf, s);
	return buf.data;
}

static Datum
from_text(const EsdColumn *col, const char *text)
{
	return InputFunctionCall((FmgrInfo *) &col->input, (char *) text, col->ioparam, col->typmod);
}

/* Value of a column taken from an AttributeValue of the item. */
static Datum
from_av(const EsdColumn *col, json_object *av, const char *item_id, bool *isnull)
{
	json_object *v;
	const char *tag;

	*isnull = false;
	if (json_object_object_length(av) != 1)
		return PointerGetDatum(codec_av_to_jsonb(av, col->attr, item_id));	/* raises */
	{
		struct json_object_iterator it = json_object_iter_begin(av);

		tag = json_object_iter_peek_name(&it);
		v = json_object_iter_peek_value(&it);
	}
	/* a scalar tag whose value has the wrong JSON type: the codec names the problem */
	if (((strcmp(tag, "S") == 0 || strcmp(tag, "N") == 0 || strcmp(tag, "B") == 0) &&
		 !json_object_is_type(v, json_type_string)) ||
		((strcmp(tag, "BOOL") == 0 || strcmp(tag, "NULL") == 0) &&
		 !json_object_is_type(v, json_type_boolean)))
		return PointerGetDatum(codec_av_to_jsonb(av, col->attr, item_id));	/* raises */

	if (col->kind == ESD_COL_PAYLOAD && strcmp(tag, "S") == 0 &&
		(col->typid == JSONBOID || col->typid == JSONOID))
	{
		const char *s = json_object_get_string(v);
		size_t		len = json_object_get_string_len(v);

		if (col->typid == JSONBOID)
			return PointerGetDatum(codec_json_text_to_jsonb(s, len));
		return from_text(col, is_json_text(s, len) ? s : quote_json(s));
	}
	if (col->typid == JSONBOID)
		return PointerGetDatum(codec_av_to_jsonb(av, col->attr, item_id));
	if (col->typid == JSONOID)
		return from_text(col, json_text_of_av(av, col, item_id));

	if (strcmp(tag, "NULL") == 0)
	{
		*isnull = true;
		return (Datum) 0;
	}
	if (strcmp(tag, "S") == 0 || strcmp(tag, "N") == 0 || strcmp(tag, "B") == 0)
	{
		const char *s = json_object_get_string(v);

		if (col->kind == ESD_COL_ID && strncmp(s, ESD_ID_PREFIX, strlen(ESD_ID_PREFIX)) == 0)
			s += strlen(ESD_ID_PREFIX);
		return from_text(col, s);
	}
	if (strcmp(tag, "BOOL") == 0)
		return from_text(col, json_object_get_boolean(v) ? "true" : "false");
	return from_text(col, json_text_of_av(av, col, item_id));
}

/* Value of a column taken from the S3 body of an offloaded event. */
static Datum
from_body(const EsdColumn *col, json_object *value, bool *isnull)
{
	*isnull = false;

	if (col->kind == ESD_COL_PAYLOAD && json_object_is_type(value, json_type_string) &&
		(col->typid == JSONBOID || col->typid == JSONOID))
	{
		/* a body may carry the payload as JSON text rather than as a value */
		const char *s = json_object_get_string(value);
		size_t		len = json_object_get_string_len(value);

		if (col->typid == JSONBOID)
			return PointerGetDatum(codec_json_text_to_jsonb(s, len));
		return from_text(col, is_json_text(s, len) ? s : quote_json(s));
	}
	if (col->typid == JSONBOID)
		return PointerGetDatum(codec_json_to_jsonb(value));
	if (col->typid == JSONOID)
		return from_text(col, plain_json_text(value));

	if (value == NULL || json_object_is_type(value, json_type_null))
	{
		*isnull = true;
		return (Datum) 0;
	}
	if (json_object_is_type(value, json_type_string))
	{
		const char *s = json_object_get_string(value);

		if (col->kind == ESD_COL_ID && strncmp(s, ESD_ID_PREFIX, strlen(ESD_ID_PREFIX)) == 0)
			s += strlen(ESD_ID_PREFIX);
		return from_text(col, s);
	}
	return from_text(col, plain_json_text(value));
}

/* Which attribute of which item a conversion error is about. */
typedef struct RowErrorContext
{
	const char *attr;
	const char *item_id;
	const char *table;
} RowErrorContext;

static void
row_error_context(void *arg)
{
	RowErrorContext *c = arg;

	if (c->attr)
		errcontext("DynamoDB attribute \"%s\" of item \"%s\" in table \"%s\"",
				   esd_shorten(c->attr), esd_shorten(c->item_id), c->table);
}

/* The payload of an S3 body, from its text as written. */
static Datum
from_body_payload(const EsdColumn *col, const EsdEvent *event, bool *isnull)
{
	const char *text = event->body_payload;
	int			len = event->body_payload_len;

	*isnull = false;
	if (text[0] == '"')
		return (Datum) 0;		/* a string: the caller decides what it holds */
	if (len == 4 && strncmp(text, "null", 4) == 0)
	{
		*isnull = col->typid != JSONBOID && col->typid != JSONOID;
		if (col->typid == JSONBOID)
			return PointerGetDatum(codec_json_text_to_jsonb(text, len));
		return *isnull ? (Datum) 0 : from_text(col, "null");
	}
	if (col->typid == JSONBOID)
		return PointerGetDatum(codec_json_text_to_jsonb(text, len));
	return from_text(col, pnstrdup(text, len));
}

void
esd_event_to_row(const EsdRowMap *map, const EsdEvent *event,
				 const char *table_name, Datum *values, bool *nulls)
{
	RowErrorContext ctx = {NULL, event->id, table_name};
	ErrorContextCallback errcb;

	for (int i = 0; i < map->natts; i++)
	{
		values[i] = (Datum) 0;
		nulls[i] = true;
	}

	errcb.callback = row_error_context;
	errcb.arg = &ctx;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;

	for (int i = 0; i < map->ncolumns; i++)
	{
		const EsdColumn *col = &map->columns[i];
		int			att = col->attnum - 1;
		json_object *bodyval;
		json_object *av;

		ctx.attr = col->attr;
		if (event->body != NULL &&
			strcmp(col->attr, "sequence") != 0 &&
			strcmp(col->attr, "s3Reference") != 0 &&
			json_object_object_get_ex(event->body, col->attr, &bodyval))
		{
			/* a payload value other than a string: its exact text, every digit kept */
			if (col->kind == ESD_COL_PAYLOAD && event->body_payload != NULL &&
				event->body_payload[0] != '"')
				values[att] = from_body_payload(col, event, &nulls[att]);
			else
				values[att] = from_body(col, bodyval, &nulls[att]);
			continue;
		}

		av = dynamo_item_attr(event->item, col->attr);
		if (av == NULL)
			continue;
		values[att] = from_av(col, av, event->id, &nulls[att]);
	}

	error_context_stack = errcb.previous;
}
