/*-------------------------------------------------------------------------
 *
 * fuzz_store.c
 *	  The response target's part for src/store.c, which it includes to reach
 *	  read_table_description(): a DescribeTable answer becomes an
 *	  EsdTableInfo, which the shape check, the readiness check and the state
 *	  description then read.
 *
 * Properties: no crash on any answer; every index and attribute read has a
 * name; the shape check gives NULL or a non-empty sentence.
 *
 * Not part of the extension; see test/fuzz/README.md.
 *
 *-------------------------------------------------------------------------
 */
#include "store.c"

#include "fuzz.h"

void
fuzz_describe_answer(const uint8_t *body, size_t len)
{
	json_object *root = aws_json_parse((const char *) body, len);
	json_object *t;
	EsdTableInfo info;
	char	   *problems;

	/* what esd_describe_table checks before reading */
	if (root == NULL || !json_object_is_type(root, json_type_object) ||
		!json_object_object_get_ex(root, "Table", &t) ||
		!json_object_is_type(t, json_type_object))
		return;

	read_table_description(t, &info);
	fuzz_assert(info.status != NULL, "a table description without a status");
	for (int i = 0; i < info.nindexes; i++)
		fuzz_assert(info.indexes[i].name != NULL && info.indexes[i].status != NULL,
					"index %d without a name or status", i);
	for (int i = 0; i < info.nattrs; i++)
		fuzz_assert(info.attrs[i].name != NULL, "attribute definition %d without a name", i);

	problems = esd_table_shape_problems(&info);
	fuzz_assert(problems == NULL || problems[0] != '\0', "an empty shape problem");
	(void) esd_table_ready(&info);
	(void) describe_state(&info);
	(void) esd_table_index(&info, ESD_TIME_BUCKET_INDEX);
}
