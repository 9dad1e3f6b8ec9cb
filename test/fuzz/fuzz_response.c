/*-------------------------------------------------------------------------
 *
 * fuzz_response.c
 *	  The "response" fuzz target: answers from DynamoDB, S3 and the
 *	  credential endpoints.  The first byte of an input says which reader
 *	  gets the rest (its value modulo 8, so the seeds start with a digit):
 *
 *	    0  a DynamoDB answer, classified (fuzz_aws.c); the second byte picks
 *	       the HTTP status
 *	    1  an S3 answer, classified (fuzz_aws.c); the second byte picks the
 *	       HTTP status
 *	    2  a DescribeTable answer (fuzz_store.c)
 *	    3  a cancelled TransactWriteItems (fuzz_append.c); the second byte
 *	       shapes the transaction
 *	    4  a Query answer and a GetItem answer of a stream head (fuzz_scan.c)
 *	    5  credentials as JSON (fuzz_credentials.c)
 *	    6  STS credentials as XML (fuzz_credentials.c)
 *	    7  a DynamoDB error answer with status 400 (fuzz_aws.c)
 *
 * Not part of the extension; see test/fuzz/README.md.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fuzz.h"

/* statuses the second byte picks from ('0'..'9' pick them in order) */
static const long statuses[] = {200, 400, 403, 404, 429, 500, 503, 301, 204, 413};

void
fuzz_response(const uint8_t *data, size_t size)
{
	int			kind;
	int			second;

	if (size < 2)
		return;
	kind = data[0] % 8;
	second = data[1];
	data += 2;
	size -= 2;

	switch (kind)
	{
		case 0:
		case 1:
			fuzz_aws_answer(kind == 1, statuses[(second - '0' + 256) % lengthof(statuses)],
							data, size);
			break;
		case 2:
			fuzz_describe_answer(data, size);
			break;
		case 3:
			fuzz_cancel_answer(data, size, second);
			break;
		case 4:
			fuzz_query_answer(data, size);
			break;
		case 5:
		case 6:
			fuzz_credentials_answer(data, size, kind == 6);
			break;
		case 7:
			fuzz_aws_answer(false, 400, data, size);
			break;
	}
}
