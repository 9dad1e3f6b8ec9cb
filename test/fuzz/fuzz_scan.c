/*-------------------------------------------------------------------------
 *
 * fuzz_scan.c
 *	  The response target's part for src/scan.c, which it includes to reach
 *	  answer_keys(): the keys of a Query answer on an index, which the
 *	  replay then hydrates; and the version of a stream head as a GetItem
 *	  answer gives it (dynamo_head_version).
 *
 * Properties: every key taken has an id and a created, and is never a
 * stream head; a head version is a non-negative number or an error.
 *
 * Not part of the extension; see test/fuzz/README.md.
 *
 *-------------------------------------------------------------------------
 */
#include "scan.c"

#include "fuzz.h"

typedef struct HeadCheck
{
	json_object *item;
	int64		version;
} HeadCheck;

static void
step_head_version(void *arg)
{
	HeadCheck  *h = (HeadCheck *) arg;

	h->version = dynamo_head_version(h->item, "domain::stream", "fuzz");
}

void
fuzz_query_answer(const uint8_t *body, size_t len)
{
	json_object *answer = aws_json_parse((const char *) body, len);
	json_object **items = NULL;
	EsdKey	   *keys;
	int			nkeys = 0;
	HeadCheck	h = {NULL, 0};

	if (answer == NULL || !json_object_is_type(answer, json_type_object))
		return;

	keys = answer_keys(answer, &nkeys, &items);
	for (int i = 0; i < nkeys; i++)
	{
		fuzz_assert(keys[i].id != NULL && keys[i].created != NULL, "key %d without id or created", i);
		fuzz_assert(strcmp(keys[i].created, ESD_HEAD_CREATED) != 0, "a stream head taken as an event");
		fuzz_assert(items[i] != NULL, "key %d without its item", i);
	}

	/* a GetItem answer: {"Item": {...}} as read_head reads it */
	if (json_object_object_get_ex(answer, "Item", &h.item) &&
		fuzz_try(step_head_version, &h, NULL))
		fuzz_assert(h.version >= 0, "a negative stream version");
}
