/*-------------------------------------------------------------------------
 *
 * fuzz_append.c
 *	  The response target's part for src/append.c, which it includes to
 *	  reach report_cancelled(): the CancellationReasons of a cancelled
 *	  TransactWriteItems name the stream head that moved or the event id
 *	  that exists.
 *
 * The transaction is made up: one to four actions, each a stream head
 * update or an event put as the pattern bits say.  Properties: the report
 * always raises, and only one of the errors a cancelled commit may give
 * (40001 for a moved head or a conflict, 23505 for a duplicate id, 53000
 * for a transaction cancelled for throttling; a stream head whose
 * version is not a number, and the failed look-up of a head when the
 * answer lacks its item: the endpoint is one nobody listens on).
 *
 * Not part of the extension; see test/fuzz/README.md.
 *
 *-------------------------------------------------------------------------
 */
#include "append.c"

#include "fuzz.h"

extern const EsdConnOptions *fuzz_conn_options(void);

typedef struct CancelCheck
{
	Flush	   *flush;
	Txn		   *txn;
} CancelCheck;

static void
step_report(void *arg)
{
	CancelCheck *c = (CancelCheck *) arg;

	report_cancelled(c->flush, c->txn);
}

void
fuzz_cancel_answer(const uint8_t *body, size_t len, int pattern)
{
	Flush		f;
	Txn			t;
	EsdTableOptions table;
	CancelCheck c = {&f, &t};
	int			sqlstate = 0;

	memset(&table, 0, sizeof(table));
	table.table_name = "fuzz";
	memset(&f, 0, sizeof(f));
	f.conn = fuzz_conn_options();
	f.table = &table;
	f.flush_cxt = CurrentMemoryContext;
	f.written = (pattern & 0x10) ? 7 : 0;
	f.txns_written = (pattern & 0x10) ? 1 : 0;

	memset(&t, 0, sizeof(t));
	t.cxt = CurrentMemoryContext;
	t.nacts = 1 + (pattern & 0x3);
	t.acts = palloc0(sizeof(TxnAction) * t.nacts);
	for (int i = 0; i < t.nacts; i++)
	{
		t.acts[i].is_head = ((pattern >> (i + 2)) & 1) != 0;
		t.acts[i].stream = "domain::stream";
		t.acts[i].event_id = psprintf("%sevent-%d", ESD_ID_PREFIX, i);
		t.acts[i].expected = 5;
		t.acts[i].version = 6;
	}
	/* what parse_remote_error leaves in the call */
	t.call.error_json = aws_json_parse((const char *) body, len);
	t.call.error_message = "Transaction cancelled";
	t.call.error_type = "TransactionCanceledException";

	fuzz_assert(!fuzz_try(step_report, &c, &sqlstate), "report_cancelled returned");
	fuzz_assert(sqlstate == ERRCODE_T_R_SERIALIZATION_FAILURE ||
				sqlstate == ERRCODE_UNIQUE_VIOLATION ||
				sqlstate == ERRCODE_INSUFFICIENT_RESOURCES ||
				sqlstate == ERRCODE_FDW_INVALID_DATA_TYPE ||
				sqlstate == ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION,
				"a cancelled commit raised %s", unpack_sql_state(sqlstate));
}
