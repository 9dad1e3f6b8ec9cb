/*-------------------------------------------------------------------------
 *
 * clock.c
 *	  The current time as the extension sees it.
 *
 * Two things depend on the date: the last month a walk reads (the current
 * month plus lookahead_months) and the created of an appended event that
 * gives none.  Both ask here.  Normally that is the real clock: the
 * transaction's start for the walk, the moment of the INSERT for created.
 *
 * For tests only, the setting event_store_dynamo.test_now (superuser,
 * hidden from SHOW ALL) fixes both to one instant, so that the test suite
 * can run as if it were, say, the last millisecond of a month, and compute
 * its expectations from the same instant.  Empty (the default) means the
 * real clock.  It changes nothing else: PostgreSQL's now() and the
 * timestamps of the AWS signatures keep the real time.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "clock.h"

static char *test_now_setting = NULL;
static bool test_now_set = false;
static TimestampTz test_now_value = 0;

/* The setting must read as a finite timestamptz (or be empty). */
static bool
check_test_now(char **newval, void **extra, GucSource source pg_attribute_unused())
{
	TimestampTz *parsed;
	Datum		d = (Datum) 0;
	MemoryContext oldcxt = CurrentMemoryContext;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	/* timestamptz_in reports a bad value with ereport; nothing to clean up after it */
	PG_TRY();
	{
		d = DirectFunctionCall3(timestamptz_in, CStringGetDatum(*newval),
								ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		FlushErrorState();
		GUC_check_errmsg("invalid value for parameter \"event_store_dynamo.test_now\": \"%s\"", *newval);
		GUC_check_errhint("Give a timestamp with time zone, such as 2024-01-31 23:59:59.999+00, or an empty string.");
		return false;
	}
	PG_END_TRY();
	if (TIMESTAMP_NOT_FINITE(DatumGetTimestampTz(d)))
	{
		GUC_check_errmsg("event_store_dynamo.test_now must be a finite timestamp");
		return false;
	}
	/* GUC frees extra with free() */
	parsed = malloc(sizeof(TimestampTz));
	if (parsed == NULL)
		return false;
	*parsed = DatumGetTimestampTz(d);
	*extra = parsed;
	return true;
}

static void
assign_test_now(const char *newval, void *extra)
{
	test_now_set = newval != NULL && newval[0] != '\0' && extra != NULL;
	test_now_value = test_now_set ? *(TimestampTz *) extra : 0;
}

void
esd_clock_init(void)
{
	DefineCustomStringVariable("event_store_dynamo.test_now",
							   "Fixes the current time the extension uses (for tests only).",
							   "The last month a walk reads and the created of an event appended "
							   "without one follow it; empty means the real clock.",
							   &test_now_setting,
							   "",
							   PGC_SUSET,
							   GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							   check_test_now,
							   assign_test_now,
							   NULL);
}

/* "Now" for the walk: the transaction's start, or the test clock. */
TimestampTz
esd_transaction_now(void)
{
	return test_now_set ? test_now_value : GetCurrentTransactionStartTimestamp();
}

/* "Now" for a created the row does not give: this moment, or the test clock. */
TimestampTz
esd_now(void)
{
	return test_now_set ? test_now_value : GetCurrentTimestamp();
}
