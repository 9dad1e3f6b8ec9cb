/*-------------------------------------------------------------------------
 *
 * fuzz_credentials.c
 *	  The response target's part for src/credentials.c, which it includes to
 *	  reach the readers of credential answers: the JSON of the container
 *	  endpoint and instance metadata (credentials_from_json), the XML of
 *	  STS (aws_xml_text, parse_iso8601), and remote_text, which makes remote
 *	  text fit for a message with a secret cut out.
 *
 * Properties: credentials are taken only with a key id and a secret; a
 * refusal says why; remote text in a message is short and printable.
 *
 * Not part of the extension; see test/fuzz/README.md.
 *
 *-------------------------------------------------------------------------
 */
#include "credentials.c"

#include "fuzz.h"

void
fuzz_credentials_answer(const uint8_t *body, size_t len, bool xml)
{
	char	   *text = pnstrdup((const char *) body, len);
	char	   *shown;

	if (!xml)
	{
		StringInfoData answer;
		Fetched		f;
		FetchStatus status;

		initStringInfo(&answer);
		appendBinaryStringInfo(&answer, (const char *) body, (int) len);
		memset(&f, 0, sizeof(f));
		status = credentials_from_json(&answer, "the fuzz endpoint", &f);
		if (status == FETCH_FOUND)
			fuzz_assert(f.access_key_id && f.access_key_id[0] &&
						f.secret_access_key && f.secret_access_key[0],
						"credentials taken without a key id or secret");
		else
			fuzz_assert(f.problem != NULL && fuzz_printable(f.problem),
						"a refused answer without a printable reason");
	}
	else
	{
		static const char *const tags[] = {
			"AccessKeyId", "SecretAccessKey", "SessionToken", "Code", "Message"
		};
		char	   *expiration = aws_xml_text(text, "Expiration");
		TimestampTz ts;

		for (int i = 0; i < (int) lengthof(tags); i++)
			(void) aws_xml_text(text, tags[i]);
		if (expiration)
			(void) parse_iso8601(expiration, &ts);
		(void) parse_iso8601(text, &ts);
	}

	shown = remote_text(text, strlen(text), len > 8 ? pnstrdup(text + 2, 4) : NULL);
	fuzz_assert(fuzz_printable(shown) && strlen(shown) <= MAX_REMOTE_TEXT + 16,
				"remote text not short printable text: \"%s\"", shown);
}
