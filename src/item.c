/*-------------------------------------------------------------------------
 *
 * item.c
 *	  Turning a row given to INSERT into a DynamoDB event item, exactly as
 *	  the Node adapter would have written it.
 *
 * The layout (SPEC section 1): `id` is EventID# and the event id (a fresh
 * UUID v4 when the row has none), `created` the 24-character millisecond
 * UTC form of JavaScript's Date.toISOString() (finer input is truncated,
 * any time zone converted), `timeBucket` its first seven characters,
 * `payload` compact JSON text as JSON.stringify prints it, `meta` the
 * AttributeValue the AWS SDK's marshalling gives the same value, optional
 * attributes left out when NULL.  An item over the offload threshold goes
 * to S3 first: the DynamoDB item then has no payload and an s3Reference,
 * and the S3 body is the whole event as JSON, without sequence.
 *
 * What the Node adapter could not read back, or no replay would find, is
 * refused here, before anything is buffered: a payload that is not JSON as
 * JSON.parse reads it (or holds a number beyond a double), a created
 * outside the months a replay walks, a key over DynamoDB's 2048 bytes.
 *
 * Item JSON is built as text with escape_json; nothing a user typed is
 * interpreted as JSON structure.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/jsonapi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "clock.h"
#include "codec.h"
#include "dynamo.h"
#include "item.h"

char *
esd_uuid_v4(void)
{
	uint8		b[16];

	if (!pg_strong_random(b, sizeof(b)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random event id")));
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	return psprintf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
					b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
					b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

/* Truncate to the millisecond, towards minus infinity. */
static TimestampTz
truncate_to_ms(TimestampTz ts)
{
	int64		rem = ts % 1000;

	if (rem < 0)
		rem += 1000;
	return ts - rem;
}

static void
format_created(EsdNewEvent *ev)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (TIMESTAMP_NOT_FINITE(ev->created) ||
		timestamp2tm(ev->created, NULL, &tm, &fsec, NULL, NULL) != 0 ||
		tm.tm_year < 1 || tm.tm_year > 9999)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("created must be between years 0001 and 9999 to be stored as an event")));
	snprintf(ev->created_text, sizeof(ev->created_text),
			 "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
			 tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			 (int) (fsec / 1000));
	memcpy(ev->time_bucket, ev->created_text, 7);
	ev->time_bucket[7] = '\0';
}

/*
 * Refuse an event no replay would read: a replay walks the month buckets
 * from start_month through the current month plus lookahead_months (as
 * esd_bucket_range says), so an event filed under another month would be
 * stored and then missing from every full replay (found only by an id or
 * a stream lookup).
 */
static void
check_created_in_walk(const EsdNewEvent *ev, const EsdTableOptions *table)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			last;
	char		first_bucket[16];
	char		last_bucket[16];

	if (timestamp2tm(GetCurrentTransactionStartTimestamp(), NULL, &tm, &fsec, NULL, NULL) != 0)
		return;
	last = tm.tm_year * 12 + (tm.tm_mon - 1) + table->lookahead_months;
	snprintf(first_bucket, sizeof(first_bucket), "%04d-%02d", table->start_year, table->start_month);
	snprintf(last_bucket, sizeof(last_bucket), "%04d-%02d", last / 12, last % 12 + 1);
	if (strcmp(ev->time_bucket, first_bucket) >= 0 && strcmp(ev->time_bucket, last_bucket) <= 0)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
			 errmsg("created %s is outside the months a replay of DynamoDB table \"%s\" reads",
					ev->created_text, table->table_name),
			 errdetail("A replay reads the months %s (start_month) to %s (the current month plus lookahead_months %d): the event would be stored where no replay finds it.",
					   first_bucket, last_bucket, table->lookahead_months),
			 errhint("Set the foreign table option start_month earlier or lookahead_months higher.")));
}

/* What DynamoDB allows a partition key value, in bytes. */
#define DYNAMO_PARTITION_KEY_MAX 2048

/*
 * Refuse a value that would make a key DynamoDB cannot store, with a
 * message of our own (DynamoDB's names neither the column nor the key)
 * that quotes the value shortened.
 */
static void
check_key_size(const char *column, const char *value, size_t key_len, const char *key)
{
	if (key_len <= DYNAMO_PARTITION_KEY_MAX)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("%s \"%s\" is too long (%zu bytes)", column, esd_shorten(value), strlen(value)),
			 errdetail("It is part of %s, a DynamoDB partition key of at most %d bytes; this one would have %zu.",
					   key, DYNAMO_PARTITION_KEY_MAX, key_len)));
}

static char *
output_text(const EsdColumn *col, Datum value)
{
	return OutputFunctionCall((FmgrInfo *) &col->output, value);
}

/* The value of a jsonb, json or text column holding JSON, as jsonb. */
static Jsonb *
column_jsonb(const EsdColumn *col, Datum value)
{
	if (col->typid == JSONBOID)
		return DatumGetJsonbP(value);
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
											  CStringGetDatum(output_text(col, value))));
}

static bool
jsonb_is_null(Jsonb *jb)
{
	JsonbValue	v;

	return JsonbExtractScalar(&jb->root, &v) && v.type == jbvNull;
}

static void
add_string_attr(StringInfo buf, const char *name, const char *value)
{
	if (buf->len > 0)
		appendStringInfoChar(buf, ',');
	escape_json(buf, name);
	appendStringInfoString(buf, ":{\"S\":");
	escape_json(buf, value);
	appendStringInfoChar(buf, '}');
}

static void
add_raw_attr(StringInfo buf, const char *name, const char *av_json)
{
	if (buf->len > 0)
		appendStringInfoChar(buf, ',');
	escape_json(buf, name);
	appendStringInfoChar(buf, ':');
	appendStringInfoString(buf, av_json);
}

/* Body field "name": json_text, in the S3 body. */
static void
add_body_field(StringInfo body, const char *name, const char *json_text)
{
	if (body->len > 1)			/* after the opening brace */
		appendStringInfoChar(body, ',');
	escape_json(body, name);
	appendStringInfoChar(body, ':');
	appendStringInfoString(body, json_text);
}

static char *
quoted(const char *s)
{
	StringInfoData b;

	initStringInfo(&b);
	escape_json(&b, s);
	return b.data;
}

static void
require(const char *value, const char *column, const EsdTableOptions *table)
{
	if (value == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("an event needs a %s", column),
				 errdetail("The %s of an event appended to table \"%s\" was NULL.",
						   column, table->table_name)));
}

void
esd_row_to_new_event(const EsdRowMap *map, TupleTableSlot *slot,
					 const EsdTableOptions *table, EsdNewEvent *ev)
{
	StringInfoData attrs;
	StringInfoData extra;		/* attributes outside the layout, kept verbatim */
	char	   *type = NULL;
	char	   *correlation = NULL;
	char	   *causation = NULL;
	char	   *payload_text = NULL;	/* compact JSON text */
	char	   *meta_av = NULL;
	char	   *meta_json = NULL;
	bool		have_created = false;

	memset(ev, 0, sizeof(*ev));
	initStringInfo(&extra);
	slot_getallattrs(slot);

	for (int i = 0; i < map->ncolumns; i++)
	{
		const EsdColumn *col = &map->columns[i];
		int			att = col->attnum - 1;
		Datum		value = slot->tts_values[att];
		const char *attr = col->attr;

		if (slot->tts_isnull[att])
			continue;

		if (strcmp(attr, "id") == 0)
		{
			ev->id = output_text(col, value);
			ev->id_given = true;
			/*
			 * Taken as it is, even when it starts with EventID#: the item's id
			 * is EventID# and the id given, as the Node adapter stores it, and
			 * a read shows the id given again.
			 */
			if (ev->id[0] == '\0')
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("an event id must not be empty")));
		}
		else if (strcmp(attr, "created") == 0)
		{
			if (col->typid == TIMESTAMPTZOID)
				ev->created = DatumGetTimestampTz(value);
			else
				ev->created = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in,
																	  CStringGetDatum(output_text(col, value)),
																	  ObjectIdGetDatum(InvalidOid),
																	  Int32GetDatum(-1)));
			have_created = true;
		}
		else if (strcmp(attr, "timeBucket") == 0 || strcmp(attr, "s3Reference") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_GENERATED_ALWAYS),
					 errmsg("cannot insert a value into column \"%s\"",
							NameStr(TupleDescAttr(slot->tts_tupleDescriptor, att)->attname)),
					 errdetail("%s is derived when the event is stored.", attr)));
		else if (strcmp(attr, "domain") == 0)
			ev->domain = output_text(col, value);
		else if (strcmp(attr, "type") == 0)
			type = output_text(col, value);
		else if (strcmp(attr, "identifier") == 0)
			ev->identifier = output_text(col, value);
		else if (strcmp(attr, "correlationId") == 0)
			correlation = output_text(col, value);
		else if (strcmp(attr, "causationId") == 0)
			causation = output_text(col, value);
		else if (strcmp(attr, "sequence") == 0)
		{
			char	   *end;
			char	   *s = output_text(col, value);

			errno = 0;
			ev->expected_sequence = strtoll(s, &end, 10);
			if (errno != 0 || *end != '\0' || ev->expected_sequence < 1)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid sequence \"%s\"", esd_shorten(s)),
						 errhint("A sequence is the event's 1-based position in its stream.")));
			ev->has_expected_sequence = true;
		}
		else if (strcmp(attr, "payload") == 0)
		{
			Jsonb	   *jb;

			if (col->typid == JSONOID || col->typid == TEXTOID || col->typid == VARCHAROID)
			{
				/* keep the writer's key order: minify the text itself */
				payload_text = codec_compact_json_text(output_text(col, value), "payload");
				if (strcmp(payload_text, "null") == 0)
					payload_text = NULL;
				continue;
			}
			jb = column_jsonb(col, value);
			/*
			 * JSON.stringify prints a number beyond a double's range as null:
			 * rather than lose it, it is refused
			 */
			if (!jsonb_is_null(jb))
				payload_text = codec_payload_jsonb_to_text(jb);
		}
		else if (strcmp(attr, "meta") == 0)
		{
			Jsonb	   *jb;

			if (col->typid != JSONBOID && col->typid != JSONOID)
			{
				/* meta in a text column is a String */
				meta_av = psprintf("{\"S\":%s}", quoted(output_text(col, value)));
				meta_json = quoted(output_text(col, value));
				continue;
			}
			jb = column_jsonb(col, value);
			if (!jsonb_is_null(jb))
			{
				meta_av = dynamo_jsonb_to_av_text(jb);
				meta_json = codec_jsonb_to_compact_text(jb);
			}
		}
		else
		{
			/* an attribute outside the layout: its natural DynamoDB type */
			if (col->typid == JSONBOID || col->typid == JSONOID)
				add_raw_attr(&extra, attr, dynamo_jsonb_to_av_text(column_jsonb(col, value)));
			else if (col->typid == BOOLOID)
				add_raw_attr(&extra, attr, DatumGetBool(value) ? "{\"BOOL\":true}" : "{\"BOOL\":false}");
			else if (col->typid == INT2OID || col->typid == INT4OID ||
					 col->typid == INT8OID || col->typid == NUMERICOID)
				add_raw_attr(&extra, attr, psprintf("{\"N\":%s}", quoted(output_text(col, value))));
			else
				add_string_attr(&extra, attr, output_text(col, value));
		}
	}

	require(ev->domain, "domain", table);
	require(type, "type", table);
	if (ev->id == NULL)
		ev->id = esd_uuid_v4();
	ev->created = truncate_to_ms(have_created ? ev->created : esd_now());
	format_created(ev);
	check_created_in_walk(ev, table);
	ev->stream = psprintf("%s::%s", ev->domain, ev->identifier ? ev->identifier : "");

	check_key_size("id", ev->id, strlen(ESD_ID_PREFIX) + strlen(ev->id),
				   "the event's key id (\"EventID#<id>\")");
	if (ev->identifier && strlen(ev->identifier) > strlen(ev->domain))
		check_key_size("identifier", ev->identifier, strlen(ESD_ID_PREFIX "HEAD::") + strlen(ev->stream),
					   "the key of the stream head (\"EventID#HEAD::<domain>::<identifier>\")");
	else
		check_key_size("domain", ev->domain, strlen(ESD_ID_PREFIX "HEAD::") + strlen(ev->stream),
					   "the key of the stream head (\"EventID#HEAD::<domain>::<identifier>\")");
	if (causation)
		check_key_size("causation_id", causation, strlen(causation), "the causationIndex key");

	initStringInfo(&attrs);
	add_string_attr(&attrs, "id", psprintf("%s%s", ESD_ID_PREFIX, ev->id));
	add_string_attr(&attrs, "created", ev->created_text);
	add_string_attr(&attrs, "timeBucket", ev->time_bucket);
	add_string_attr(&attrs, "domain", ev->domain);
	add_string_attr(&attrs, "type", type);
	if (ev->identifier)
		add_string_attr(&attrs, "identifier", ev->identifier);
	if (correlation)
		add_string_attr(&attrs, "correlationId", correlation);
	if (causation)
		add_string_attr(&attrs, "causationId", causation);
	if (meta_av)
		add_raw_attr(&attrs, "meta", meta_av);
	if (extra.len > 0)
	{
		appendStringInfoChar(&attrs, ',');
		appendStringInfoString(&attrs, extra.data);
	}

	/*
	 * Size as DynamoDB counts it is below the length of the JSON text (names
	 * and strings once each, plus quoting); the text with the payload is a
	 * safe upper bound for the offload decision.
	 */
	ev->item_size = attrs.len + (payload_text ? strlen(payload_text) + 24 : 0) + 32;

	if (payload_text && ev->item_size > (size_t) table->offload_threshold)
	{
		StringInfoData body;

		if (table->s3_bucket == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("event \"%s\" is too large to store in table \"%s\"", esd_shorten(ev->id), table->table_name),
					 errdetail("The item would be about %zu bytes, over the offload threshold of %d bytes.",
							   ev->item_size, table->offload_threshold),
					 errhint("Set the foreign table's s3_bucket option so that oversized events are offloaded to S3.")));

		ev->s3_key = psprintf("%s%s.json", table->s3_key_prefix, ev->id);
		ev->s3_reference = psprintf("%s::%s", table->s3_bucket, ev->s3_key);
		add_string_attr(&attrs, "s3Reference", ev->s3_reference);

		/* the body: the whole event as JSON, as the Node adapter writes it */
		initStringInfo(&body);
		appendStringInfoChar(&body, '{');
		add_body_field(&body, "id", quoted(ev->id));
		add_body_field(&body, "domain", quoted(ev->domain));
		add_body_field(&body, "type", quoted(type));
		if (ev->identifier)
			add_body_field(&body, "identifier", quoted(ev->identifier));
		if (correlation)
			add_body_field(&body, "correlationId", quoted(correlation));
		if (causation)
			add_body_field(&body, "causationId", quoted(causation));
		add_body_field(&body, "payload", payload_text);
		if (meta_json)
			add_body_field(&body, "meta", meta_json);
		add_body_field(&body, "created", quoted(ev->created_text));
		add_body_field(&body, "timeBucket", quoted(ev->time_bucket));
		appendStringInfoChar(&body, '}');
		ev->s3_body = body.data;
		ev->item_size = attrs.len + 32;
	}
	else if (payload_text)
		add_string_attr(&attrs, "payload", payload_text);

	ev->item_attrs = attrs.data;
}

char *
esd_item_json(const EsdNewEvent *ev, int64 sequence)
{
	return psprintf("{%s,\"sequence\":{\"N\":\"" INT64_FORMAT "\"}}", ev->item_attrs, sequence);
}

void
esd_fill_returning(const EsdRowMap *map, TupleTableSlot *slot,
				   const EsdNewEvent *ev, int64 sequence)
{
	for (int i = 0; i < map->ncolumns; i++)
	{
		const EsdColumn *col = &map->columns[i];
		int			att = col->attnum - 1;
		const char *text = NULL;

		if (strcmp(col->attr, "id") == 0)
			text = ev->id;
		else if (strcmp(col->attr, "created") == 0)
		{
			if (col->typid == TIMESTAMPTZOID)
			{
				slot->tts_values[att] = TimestampTzGetDatum(ev->created);
				slot->tts_isnull[att] = false;
				continue;
			}
			text = ev->created_text;
		}
		else if (strcmp(col->attr, "sequence") == 0)
			text = psprintf(INT64_FORMAT, sequence);
		else if (strcmp(col->attr, "timeBucket") == 0)
			text = ev->time_bucket;
		else if (strcmp(col->attr, "s3Reference") == 0)
		{
			slot->tts_isnull[att] = ev->s3_reference == NULL;
			text = ev->s3_reference;
			if (text == NULL)
				continue;
		}
		else
			continue;

		slot->tts_values[att] = InputFunctionCall((FmgrInfo *) &col->input, (char *) text,
												  col->ioparam, col->typmod);
		slot->tts_isnull[att] = false;
	}
}
