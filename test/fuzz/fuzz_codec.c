/*-------------------------------------------------------------------------
 *
 * fuzz_codec.c
 *	  Fuzz targets for the AttributeValue codec (src/codec.c) and the row
 *	  conversions built on it (src/row.c reading, src/item.c writing).
 *
 * "item": the input is a DynamoDB item as a Query or BatchGetItem answer
 * carries it (attribute name -> AttributeValue), parsed as the HTTP layer
 * parses answers.  For every attribute, a conversion either raises a
 * proper error or gives values that agree with each other:
 *   - the AttributeValue as jsonb equals the AttributeValue made plain JSON
 *     (codec_av_to_json) and then jsonb;
 *   - jsonb -> AttributeValue -> jsonb -> AttributeValue is stable after
 *     the first step (numbers become JavaScript doubles once), and only
 *     numbers JavaScript reads as Infinity are refused;
 *   - the compact JSON text of the jsonb reads back to the same text, to the
 *     same value as the AttributeValue round trip, and survives the
 *     minifier the write path uses for JSON text payloads.
 * The whole item then becomes rows of several column layouts (text, json,
 * jsonb, numbers, timestamps, uuid; from the item and from an S3 body) whose
 * values must print, and a row of the writable layout goes back to an item
 * (esd_row_to_new_event, esd_item_json) that reads back to the same row.
 *
 * "payload": the input is the JSON text of a payload attribute.  Where
 * PostgreSQL's jsonb_in accepts it, codec_json_text_to_jsonb must give
 * exactly jsonb_in's value; where jsonb_in refuses it, the text itself as a
 * jsonb string; and its compact text reads back to itself.
 *
 * Not part of the extension; see test/fuzz/README.md.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "access/tupdesc.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

/* PostgreSQL's SQL function json_object() and json-c's type share a name */
#define json_object pg_sql_json_object
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#undef json_object

#include <json-c/json.h>

#include "aws.h"
#include "codec.h"
#include "dynamo.h"
#include "item.h"
#include "option.h"
#include "row.h"
#include "scan.h"

#include "fuzz.h"

/* ----------------------------------------------------------------
 *		Column layouts
 * ----------------------------------------------------------------
 */

typedef struct ColSpec
{
	const char *attr;
	Oid			typid;
	int32		typmod;
} ColSpec;

/* The natural foreign table, as the regression tests declare it */
static const ColSpec layout_natural[] = {
	{"id", TEXTOID, -1}, {"domain", TEXTOID, -1}, {"type", TEXTOID, -1},
	{"identifier", TEXTOID, -1}, {"correlationId", TEXTOID, -1},
	{"causationId", TEXTOID, -1}, {"payload", JSONBOID, -1},
	{"meta", JSONBOID, -1}, {"timeBucket", TEXTOID, -1},
	{"s3Reference", TEXTOID, -1}, {"created", TEXTOID, -1},
	{"sequence", INT8OID, -1},
};

/* json and text views of the JSON attributes, then stricter types */
static const ColSpec layout_text[] = {
	{"payload", JSONOID, -1}, {"meta", JSONOID, -1}, {"domain", JSONOID, -1},
	{"payload", TEXTOID, -1}, {"meta", TEXTOID, -1}, {"extra", TEXTOID, -1},
	{"sequence", NUMERICOID, -1}, {"identifier", VARCHAROID, 7 + VARHDRSZ},
	{"created", TIMESTAMPTZOID, -1}, {"id", UUIDOID, -1},
};

/* numbers and booleans from any attribute */
static const ColSpec layout_scalar[] = {
	{"meta", BOOLOID, -1}, {"extra", INT4OID, -1}, {"sequence", FLOAT8OID, -1},
	{"payload", BYTEAOID, -1}, {"type", DATEOID, -1},
};

/* what INSERT accepts: no timeBucket or s3Reference; an attribute outside the layout */
static const ColSpec layout_write[] = {
	{"id", TEXTOID, -1}, {"domain", TEXTOID, -1}, {"type", TEXTOID, -1},
	{"identifier", TEXTOID, -1}, {"correlationId", TEXTOID, -1},
	{"causationId", TEXTOID, -1}, {"payload", JSONBOID, -1},
	{"meta", JSONBOID, -1}, {"extra", JSONBOID, -1}, {"created", TEXTOID, -1},
	{"sequence", INT8OID, -1},
};

typedef struct Layout
{
	EsdRowMap	map;
	TupleDesc	desc;
} Layout;

static Layout *layouts[4];

static Layout *
make_layout(const ColSpec *spec, int n)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	Layout	   *l = palloc0(sizeof(Layout));

	l->map.columns = palloc0(sizeof(EsdColumn) * n);
	l->map.ncolumns = n;
	l->map.natts = n;
	l->desc = CreateTemplateTupleDesc(n);
	for (int i = 0; i < n; i++)
	{
		EsdColumn  *col = &l->map.columns[i];
		Oid			infunc;
		Oid			outfunc;
		bool		varlena;
		char		name[16];

		col->attnum = i + 1;
		col->attr = pstrdup(spec[i].attr);
		col->kind = strcmp(col->attr, "id") == 0 ? ESD_COL_ID
			: strcmp(col->attr, "payload") == 0 ? ESD_COL_PAYLOAD : ESD_COL_OTHER;
		col->typid = spec[i].typid;
		col->typmod = spec[i].typmod;
		getTypeInputInfo(col->typid, &infunc, &col->ioparam);
		fmgr_info_cxt(infunc, &col->input, TopMemoryContext);
		getTypeOutputInfo(col->typid, &outfunc, &varlena);
		fmgr_info_cxt(outfunc, &col->output, TopMemoryContext);
		snprintf(name, sizeof(name), "c%d", i + 1);
		TupleDescInitEntry(l->desc, i + 1, name, col->typid, col->typmod, 0);
	}
	MemoryContextSwitchTo(old);
	return l;
}

static void
ensure_layouts(void)
{
	if (layouts[0] != NULL)
		return;
	layouts[0] = make_layout(layout_natural, lengthof(layout_natural));
	layouts[1] = make_layout(layout_text, lengthof(layout_text));
	layouts[2] = make_layout(layout_scalar, lengthof(layout_scalar));
	layouts[3] = make_layout(layout_write, lengthof(layout_write));
}

/* The row's values printed, one line per column ("NULL" for SQL NULL) */
static char *
row_text(const Layout *l, Datum *values, bool *nulls)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < l->map.ncolumns; i++)
	{
		const EsdColumn *col = &l->map.columns[i];

		if (nulls[i])
			appendStringInfoString(&buf, "NULL\n");
		else
			appendStringInfo(&buf, "%s\n",
							 OutputFunctionCall((FmgrInfo *) &col->output, values[i]));
	}
	return buf.data;
}


/* ----------------------------------------------------------------
 *		One attribute
 * ----------------------------------------------------------------
 */

typedef struct AttrCheck
{
	struct json_object *av;
	const char *attr;
	const char *id;
	Jsonb	   *j1;				/* the AttributeValue as jsonb */
	struct json_object *t1;		/* j1 back as an AttributeValue */
	Jsonb	   *j2;				/* t1 as jsonb */
} AttrCheck;

static const char *
json_c_text(struct json_object *obj)
{
	return json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN |
										  JSON_C_TO_STRING_NOSLASHESCAPE);
}

static void
step_av_to_jsonb(void *arg)
{
	AttrCheck  *c = (AttrCheck *) arg;

	c->j1 = codec_av_to_jsonb(c->av, c->attr, c->id);
}

/* The plain-JSON route gives the same value */
static void
step_json_route(void *arg)
{
	AttrCheck  *c = (AttrCheck *) arg;
	struct json_object *plain = codec_av_to_json(c->av, c->attr, c->id);
	Jsonb	   *via;

	aws_json_own(plain);
	via = codec_json_to_jsonb(plain);
	fuzz_assert(fuzz_jsonb_same(c->j1, via),
				"attribute %s: codec_av_to_jsonb gives %s, codec_av_to_json then jsonb gives %s",
				c->attr, fuzz_jsonb_text(c->j1), fuzz_jsonb_text(via));
}

static void
step_jsonb_to_av(void *arg)
{
	AttrCheck  *c = (AttrCheck *) arg;

	c->t1 = codec_jsonb_to_av(c->j1);
	aws_json_own(c->t1);
}

/* jsonb -> AttributeValue is stable after the first step */
static void
step_av_stable(void *arg)
{
	AttrCheck  *c = (AttrCheck *) arg;
	struct json_object *t2;
	char	   *t1_text = pstrdup(json_c_text(c->t1));
	char	   *direct;

	c->j2 = codec_av_to_jsonb(c->t1, c->attr, c->id);
	t2 = codec_jsonb_to_av(c->j2);
	aws_json_own(t2);
	fuzz_assert(strcmp(t1_text, json_c_text(t2)) == 0,
				"attribute %s: AttributeValue %s reads back and writes as %s",
				c->attr, t1_text, json_c_text(t2));
	direct = dynamo_jsonb_to_av_text(c->j1);
	fuzz_assert(strcmp(t1_text, direct) == 0,
				"attribute %s: dynamo_jsonb_to_av_text gives %s, codec_jsonb_to_av %s",
				c->attr, direct, t1_text);
}

/* The compact text reads back to itself, and is what the minifier keeps */
static void
step_compact_text(void *arg)
{
	AttrCheck  *c = (AttrCheck *) arg;
	char	   *c1 = codec_jsonb_to_compact_text(c->j1);
	Jsonb	   *j4 = codec_json_text_to_jsonb(c1, strlen(c1));
	char	   *c2 = codec_jsonb_to_compact_text(j4);
	char	   *minified;
	Jsonb	   *jm;

	fuzz_assert(strcmp(c1, c2) == 0,
				"attribute %s: compact text %s reads back as %s", c->attr, c1, c2);
	if (c->j2 != NULL)
		fuzz_assert(fuzz_jsonb_same(c->j2, j4),
					"attribute %s: the AttributeValue round trip gives %s, the compact text %s",
					c->attr, fuzz_jsonb_text(c->j2), fuzz_jsonb_text(j4));

	minified = codec_compact_json_text(c1, "payload");
	jm = codec_json_text_to_jsonb(minified, strlen(minified));
	fuzz_assert(fuzz_jsonb_same(j4, jm),
				"attribute %s: codec_compact_json_text turns %s into %s", c->attr, c1, minified);
	fuzz_assert(strcmp(c1, minified) == 0,
				"attribute %s: codec_compact_json_text changes the compact text %s into %s",
				c->attr, c1, minified);
}

static void
check_attribute(struct json_object *av, const char *attr, const char *id)
{
	AttrCheck	c = {av, attr, id, NULL, NULL, NULL};
	int			sqlstate = 0;
	bool		ok;

	if (!fuzz_try(step_av_to_jsonb, &c, NULL))
		return;

	ok = fuzz_try(step_json_route, &c, &sqlstate);
	fuzz_assert(ok, "attribute %s: codec_av_to_jsonb accepts %s but the plain-JSON route raises %s",
				attr, json_c_text(av), unpack_sql_state(sqlstate));

	ok = fuzz_try(step_jsonb_to_av, &c, &sqlstate);
	fuzz_assert(ok || sqlstate == ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
				"attribute %s: codec_jsonb_to_av of %s raises %s",
				attr, fuzz_jsonb_text(c.j1), unpack_sql_state(sqlstate));
	if (ok)
	{
		ok = fuzz_try(step_av_stable, &c, &sqlstate);
		fuzz_assert(ok, "attribute %s: the AttributeValue %s does not read back (%s)",
					attr, json_c_text(c.t1), unpack_sql_state(sqlstate));
	}

	ok = fuzz_try(step_compact_text, &c, &sqlstate);
	fuzz_assert(ok, "attribute %s: the compact text of %s does not read back (%s)",
				attr, fuzz_jsonb_text(c.j1), unpack_sql_state(sqlstate));
}


/* ----------------------------------------------------------------
 *		Whole items as rows
 * ----------------------------------------------------------------
 */

typedef struct RowCheck
{
	const Layout *layout;
	EsdEvent	event;
	char	   *printed;
} RowCheck;

static void
step_read_row(void *arg)
{
	RowCheck   *r = (RowCheck *) arg;
	int			n = r->layout->map.natts;
	Datum	   *values = palloc0(sizeof(Datum) * n);
	bool	   *nulls = palloc0(sizeof(bool) * n);

	esd_event_to_row(&r->layout->map, &r->event, "fuzz", values, nulls);
	r->printed = row_text(r->layout, values, nulls);
}

typedef struct WriteCheck
{
	const Layout *layout;
	EsdEvent	event;
	char	   *item1;			/* the item written from the input's row */
	char	   *row1;			/* that item read back */
} WriteCheck;

/* Read the item as a row, write the row as an item, read that back */
static char *
read_write(const Layout *l, EsdEvent *event, char **row_printed)
{
	int			n = l->map.natts;
	Datum	   *values = palloc0(sizeof(Datum) * n);
	bool	   *nulls = palloc0(sizeof(bool) * n);
	TupleTableSlot *slot;
	EsdTableOptions table;
	EsdNewEvent ev;
	char	   *item;

	esd_event_to_row(&l->map, event, "fuzz", values, nulls);
	if (row_printed)
		*row_printed = row_text(l, values, nulls);

	slot = MakeSingleTupleTableSlot(l->desc, &TTSOpsVirtual);
	ExecClearTuple(slot);
	memcpy(slot->tts_values, values, sizeof(Datum) * n);
	memcpy(slot->tts_isnull, nulls, sizeof(bool) * n);
	ExecStoreVirtualTuple(slot);

	memset(&table, 0, sizeof(table));
	table.table_name = "fuzz";
	table.s3_key_prefix = "events/";
	table.offload_threshold = INT_MAX;
	/* every month a created can name is one a replay reads */
	table.start_year = 1;
	table.start_month = 1;
	table.lookahead_months = 12 * 10000;
	esd_row_to_new_event(&l->map, slot, &table, &ev);
	item = esd_item_json(&ev, ev.has_expected_sequence ? ev.expected_sequence : 1);
	ExecDropSingleTupleTableSlot(slot);
	return item;
}

static EsdEvent
event_of_text(const char *item_text, const char *what)
{
	EsdEvent	ev = {NULL, NULL, NULL};

	ev.item = aws_json_parse(item_text, strlen(item_text));
	fuzz_assert(ev.item != NULL && json_object_is_type(ev.item, json_type_object),
				"%s is not a JSON object: %s", what, item_text);
	ev.id = dynamo_item_string(ev.item, "id");
	return ev;
}

static void
step_write_first(void *arg)
{
	WriteCheck *w = (WriteCheck *) arg;

	w->item1 = read_write(w->layout, &w->event, NULL);
}

/* What was written once reads and writes back the same */
static void
step_write_again(void *arg)
{
	WriteCheck *w = (WriteCheck *) arg;
	EsdEvent	ev1 = event_of_text(w->item1, "the written item");
	char	   *row1;
	char	   *item2 = read_write(w->layout, &ev1, &row1);
	EsdEvent	ev2 = event_of_text(item2, "the item written again");
	char	   *row2;
	char	   *item3 = read_write(w->layout, &ev2, &row2);

	fuzz_assert(strcmp(row1, row2) == 0,
				"a written item reads as\n%s\nbut written again reads as\n%s", row1, row2);
	fuzz_assert(strcmp(item2, item3) == 0,
				"an item written from a row read back writes as\n%s\nthen as\n%s", item2, item3);
	(void) dynamo_item_id_of(item2);
}

void
fuzz_item(const uint8_t *data, size_t size)
{
	struct json_object *item = aws_json_parse((const char *) data, size);
	const char *id;
	WriteCheck	w;
	int			sqlstate = 0;

	if (item == NULL || !json_object_is_type(item, json_type_object))
		return;
	ensure_layouts();
	id = dynamo_item_string(item, "id");

	{
		json_object_object_foreach(item, key, av)
			check_attribute(av, key, id);
	}

	for (int i = 0; i < 3; i++)
	{
		RowCheck	r;

		memset(&r, 0, sizeof(r));
		r.layout = layouts[i];
		r.event.item = item;
		r.event.id = id;
		(void) fuzz_try(step_read_row, &r, NULL);
		/* the item as its own S3 body: values come from the body then */
		r.event.body = item;
		(void) fuzz_try(step_read_row, &r, NULL);
	}

	memset(&w, 0, sizeof(w));
	w.layout = layouts[3];
	w.event.item = item;
	w.event.id = id;
	if (fuzz_try(step_write_first, &w, NULL))
	{
		bool		ok = fuzz_try(step_write_again, &w, &sqlstate);

		fuzz_assert(ok, "the item written from a row does not read and write back (%s):\n%s",
					unpack_sql_state(sqlstate), w.item1);
	}
}


/* ----------------------------------------------------------------
 *		Payload text
 * ----------------------------------------------------------------
 */

typedef struct PayloadCheck
{
	const char *text;
	size_t		len;
	Jsonb	   *ours;
	Jsonb	   *theirs;
	char	   *compact;
} PayloadCheck;

/* The text as a json or text payload column stores it */
static void
step_compact_json_text(void *arg)
{
	PayloadCheck *p = (PayloadCheck *) arg;

	p->compact = codec_compact_json_text(pnstrdup(p->text, p->len), "payload");
}

static void
step_ours(void *arg)
{
	PayloadCheck *p = (PayloadCheck *) arg;

	p->ours = codec_json_text_to_jsonb(p->text, p->len);
}

static void
step_jsonb_in(void *arg)
{
	PayloadCheck *p = (PayloadCheck *) arg;

	p->theirs = DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
												   CStringGetDatum(pnstrdup(p->text, p->len))));
}

static void
step_payload_compact(void *arg)
{
	PayloadCheck *p = (PayloadCheck *) arg;
	char	   *c1 = codec_jsonb_to_compact_text(p->ours);
	Jsonb	   *again = codec_json_text_to_jsonb(c1, strlen(c1));
	char	   *c2 = codec_jsonb_to_compact_text(again);

	fuzz_assert(strcmp(c1, c2) == 0, "compact text %s reads back as %s", c1, c2);
}

void
fuzz_payload(const uint8_t *data, size_t size)
{
	PayloadCheck p = {(const char *) data, size, NULL, NULL};
	int			sqlstate = 0;
	bool		ok;

	if (!fuzz_try(step_ours, &p, NULL))
		return;

	/* jsonb_in reads a C string: only text without NUL bytes compares */
	if (memchr(data, '\0', size) == NULL)
	{
		if (fuzz_try(step_jsonb_in, &p, NULL))
		{
			fuzz_assert(fuzz_jsonb_same(p.ours, p.theirs),
						"jsonb_in reads %s, codec_json_text_to_jsonb %s",
						fuzz_jsonb_text(p.theirs), fuzz_jsonb_text(p.ours));
			/* JSON that jsonb takes is stored as a payload with the same value */
			if (fuzz_try(step_compact_json_text, &p, &sqlstate))
			{
				Jsonb	   *again = DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
																	   CStringGetDatum(p.compact)));

				fuzz_assert(fuzz_jsonb_same(p.theirs, again),
							"codec_compact_json_text stores %s as %s",
							fuzz_jsonb_text(p.theirs), p.compact);
			}
			else
				fuzz_assert(sqlstate == ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
							"codec_compact_json_text refuses %s (%s)",
							fuzz_jsonb_text(p.theirs), unpack_sql_state(sqlstate));
		}
		else
		{
			JsonbValue	v;
			Jsonb	   *as_string;
			JsonbParseState *state = NULL;
			JsonbValue	raw;

			raw.type = jbvArray;
			raw.val.array.rawScalar = true;
			raw.val.array.nElems = 1;
			pushJsonbValue(&state, WJB_BEGIN_ARRAY, &raw);
			v.type = jbvString;
			v.val.string.val = (char *) p.text;
			v.val.string.len = (int) p.len;
			pushJsonbValue(&state, WJB_ELEM, &v);
			as_string = JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_ARRAY, NULL));
			fuzz_assert(fuzz_jsonb_same(p.ours, as_string),
						"text jsonb_in refuses became %s, not the text as a string",
						fuzz_jsonb_text(p.ours));
		}
	}

	ok = fuzz_try(step_payload_compact, &p, &sqlstate);
	fuzz_assert(ok, "the compact text of %s does not read back (%s)",
				fuzz_jsonb_text(p.ours), unpack_sql_state(sqlstate));
}
