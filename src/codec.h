/*-------------------------------------------------------------------------
 *
 * codec.h
 *	  Conversion between DynamoDB AttributeValues (as json-c objects in
 *	  DynamoDB's JSON wire format, e.g. {"S":"x"}, {"M":{...}}) and
 *	  PostgreSQL values.
 *
 * Reading: the natural JavaScript value of an AttributeValue (what the
 * Node adapter's unmarshalling gives) becomes jsonb: S -> string,
 * N -> number (numeric, every digit kept), BOOL -> boolean, NULL -> null,
 * M -> object, L -> array, SS/NS -> arrays of strings/numbers, B and BS ->
 * base64 strings.  JSON text (the payload attribute) is parsed; text that is
 * not JSON becomes a jsonb string.
 *
 * Writing: jsonb becomes the AttributeValue the Node adapter's marshalling
 * gives the same JavaScript value (object -> M, array -> L, string -> S,
 * number -> N, boolean -> BOOL, null -> NULL), and compact JSON text as
 * JSON.stringify prints it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ESD_CODEC_H
#define ESD_CODEC_H

#include "postgres.h"
#include "utils/jsonb.h"

struct json_object;

/* The longest value a message quotes whole, in bytes; longer ones are cut. */
#define ESD_MESSAGE_VALUE_MAX 80

/*
 * A value as every message quotes it (ids, stream names, keys, attribute
 * names, numbers): cut to ESD_MESSAGE_VALUE_MAX bytes with "..."; NULL
 * stays NULL
 */
extern char *esd_shorten(const char *value);

/* AttributeValue -> jsonb; errors name attr_name and item_id (either may be NULL) */
extern Jsonb *codec_av_to_jsonb(struct json_object *av, const char *attr_name,
								const char *item_id);

/* plain JSON value (e.g. parsed from an S3 body) -> jsonb */
extern Jsonb *codec_json_to_jsonb(struct json_object *value);

/* JSON text -> jsonb; text that does not parse as JSON becomes a jsonb string */
extern Jsonb *codec_json_text_to_jsonb(const char *text, size_t len);

/* AttributeValue -> its plain JSON value (M -> object, S -> string, ...); new reference */
extern struct json_object *codec_av_to_json(struct json_object *av,
											const char *attr_name,
											const char *item_id);

/* jsonb -> AttributeValue (new json-c reference the caller must put) */
extern struct json_object *codec_jsonb_to_av(Jsonb *jb);

/* jsonb -> compact JSON text as JavaScript's JSON.stringify would print the value */
extern char *codec_jsonb_to_compact_text(Jsonb *jb);

/* the same for a payload: a number beyond a double's range is an error (22003) */
extern char *codec_payload_jsonb_to_text(Jsonb *jb);

/*
 * JSON text given for a payload (json or text column): strictly checked
 * (22P02 naming what), compact, strings escaped as JSON.stringify does,
 * numbers and key order as written; a number beyond a double's range is an
 * error (22003).
 */
extern char *codec_compact_json_text(const char *text, const char *what);

/*
 * The text of a top-level member's value in a JSON object, exactly as
 * written (a pointer into json); false when the text is not a JSON object
 * with that member.  The text is taken to be UTF-8.
 */
extern bool codec_json_member_text(const char *json, size_t len, const char *member,
								   const char **value, int *value_len);

#endif							/* ESD_CODEC_H */
