/*-------------------------------------------------------------------------
 *
 * fuzz_aws.c
 *	  The response target's part for src/aws.c, which it includes to reach
 *	  the static functions that read answers: classify() decides what a
 *	  finished HTTP exchange means (success, retry, failure) and reads the
 *	  error out of a DynamoDB JSON or S3 XML body.
 *
 * Properties: an answer is taken, retried or failed, never left undecided;
 * a 2xx DynamoDB answer is taken only as a JSON object; a failure has an
 * SQLSTATE, and its error type and message are short printable text (the
 * remote side never controls what reaches a message); aws_raise raises
 * exactly the failure's SQLSTATE.
 *
 * Also holds the connection options the other parts share: an endpoint
 * nobody listens on (127.0.0.1 port 1) and no retries, so that a code
 * path that makes a request fails at once instead of reaching anything.
 *
 * Not part of the extension; see test/fuzz/README.md.
 *
 *-------------------------------------------------------------------------
 */
#include "aws.c"

#include "fuzz.h"

/* ERROR text of a remote failure: MAX_ERROR_TEXT plus "..." and a short prefix */
#define FUZZ_MAX_MESSAGE (MAX_ERROR_TEXT + 80)

static EsdCredentials fuzz_credentials = {
	.source = ESD_CREDENTIALS_USER_MAPPING,
	.detail = "fuzz",
	.access_key_id = "AKIDFUZZ",
	.secret_access_key = "fuzz-secret",
	.generation = 1,
};

static EsdConnOptions fuzz_conn = {
	.region = "us-east-1",
	.endpoint = "http://127.0.0.1:1",
	.s3_endpoint = "http://127.0.0.1:1",
	.s3_force_path_style = true,
	.connect_timeout_ms = 1000,
	.request_timeout_ms = 1000,
	.max_retries = 0,
	.retry_base_ms = 1,
	.retry_cap_ms = 2,
	.max_in_flight = 4,
	.credentials = &fuzz_credentials,
};

const EsdConnOptions *fuzz_conn_options(void);

const EsdConnOptions *
fuzz_conn_options(void)
{
	return &fuzz_conn;
}

static void
step_raise(void *arg)
{
	aws_raise((AwsCall *) arg);
}

void
fuzz_aws_answer(bool is_s3, long status, const uint8_t *body, size_t len)
{
	AwsCall		call;
	AwsStats	stats;
	EsdConnOptions conn = fuzz_conn;
	int			sqlstate = 0;

	/* with retries left, so that the retry decision is made too */
	conn.max_retries = 3;
	if (is_s3)
		aws_s3_get_init(&call, &conn, "bucket", "events/key");
	else
		aws_dynamodb_init(&call, &conn, "Query", "table", "{}");
	memset(&stats, 0, sizeof(stats));
	call.attempts = 1;
	call.credential_generation = fuzz_credentials.generation;
	call.transfer.curl_code = CURLE_OK;
	call.transfer.status = status;
	initStringInfo(&call.transfer.response);
	appendBinaryStringInfo(&call.transfer.response, (const char *) body, (int) len);

	classify(&conn, &call, &stats);

	if (call.done && !call.failed)
	{
		fuzz_assert(status >= 200 && status < 300, "HTTP %ld taken as a success", status);
		if (!is_s3)
			fuzz_assert(call.json != NULL && json_object_is_type(call.json, json_type_object),
						"a DynamoDB answer that is not a JSON object was taken");
		return;
	}

	fuzz_assert(call.error_type != NULL && call.error_message != NULL,
				"HTTP %ld: a failure without an error type or message", status);
	fuzz_assert(fuzz_printable(call.error_type) && strlen(call.error_type) <= FUZZ_MAX_MESSAGE,
				"HTTP %ld: error type not short printable text: \"%s\"", status, call.error_type);
	fuzz_assert(fuzz_printable(call.error_message) && strlen(call.error_message) <= FUZZ_MAX_MESSAGE,
				"HTTP %ld: error message not short printable text: \"%s\"", status, call.error_message);
	fuzz_assert(call.sqlstate != 0, "HTTP %ld: a failure without an SQLSTATE", status);

	if (!call.done)
	{
		fuzz_assert(call.due != 0, "HTTP %ld: neither done nor scheduled for a retry", status);
		return;
	}

	fuzz_assert(!fuzz_try(step_raise, &call, &sqlstate), "aws_raise returned");
	fuzz_assert(sqlstate == call.sqlstate, "aws_raise raised %s for a failure with %s",
				unpack_sql_state(sqlstate), unpack_sql_state(call.sqlstate));
}
