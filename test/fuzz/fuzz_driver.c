/*-------------------------------------------------------------------------
 *
 * fuzz_driver.c
 *	  Runs libFuzzer inside a PostgreSQL backend, so that the extension's
 *	  codec and response parsers are fuzzed with the real server code they
 *	  use (palloc, jsonb, numeric, ereport, the JSON lexer, the catalogs).
 *
 * test/steps/80-fuzz.sh starts a stand-alone backend (postgres --single)
 * on a throwaway data directory and calls
 *
 *	  SELECT esd_fuzz_run('item', ARRAY['-seed=1', 'corpus/dir', ...]);
 *
 * esd_fuzz_run hands the array to libFuzzer as its command line.  Each
 * input runs in a memory context that is reset afterwards, inside an
 * internal subtransaction: an ERROR is what the extension does with bad
 * input and is caught, like a failed statement would be.  A crash, a
 * sanitizer report, an elog-style internal error (XX000) or a failed
 * property (fuzz_assert) ends the run, and libFuzzer writes the input to
 * its artifact prefix.  libFuzzer ends the process when it is done, so the
 * function never returns.
 *
 * Not part of the extension; see test/fuzz/README.md.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <stdio.h>
#include <stdlib.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "fuzz.h"

PG_FUNCTION_INFO_V1(esd_fuzz_run);

/* libFuzzer's entry point for programs that own main() themselves */
extern int	LLVMFuzzerRunDriver(int *argc, char ***argv,
								int (*callback) (const uint8_t *data, size_t size));

typedef struct FuzzTarget
{
	const char *name;
	void		(*run) (const uint8_t *data, size_t size);
} FuzzTarget;

static const FuzzTarget targets[] = {
	{"item", fuzz_item},
	{"payload", fuzz_payload},
	{"response", fuzz_response},
};

static const FuzzTarget *current_target;
static MemoryContext input_cxt;

typedef struct FuzzInput
{
	const uint8_t *data;
	size_t		size;
} FuzzInput;

void
fuzz_fail(const char *file, int line, const char *cond, const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "\n==fuzz== property failed at %s:%d: %s\n==fuzz== ", file, line, cond);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	fflush(stderr);
	abort();
}

bool
fuzz_printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char) *s < 0x20 || (unsigned char) *s >= 0x7f)
			return false;
	return true;
}

char *
fuzz_jsonb_text(Jsonb *jb)
{
	return JsonbToCString(NULL, &jb->root, VARSIZE(jb));
}

bool
fuzz_jsonb_same(Jsonb *a, Jsonb *b)
{
	return strcmp(fuzz_jsonb_text(a), fuzz_jsonb_text(b)) == 0;
}

bool
fuzz_try(void (*fn) (void *), void *arg, int *sqlstate)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool ok = true;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;

		fuzz_assert(edata->sqlerrcode != ERRCODE_INTERNAL_ERROR,
					"internal error (XX000) raised: %s", edata->message);
		fuzz_assert(edata->message != NULL && edata->message[0] != '\0',
					"an error without a message");
		if (sqlstate)
			*sqlstate = edata->sqlerrcode;
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

static void
run_current(void *arg)
{
	FuzzInput  *in = (FuzzInput *) arg;

	current_target->run(in->data, in->size);
}

static int
one_input(const uint8_t *data, size_t size)
{
	FuzzInput	in = {data, size};
	MemoryContext old = MemoryContextSwitchTo(input_cxt);

	(void) fuzz_try(run_current, &in, NULL);
	MemoryContextSwitchTo(old);
	MemoryContextReset(input_cxt);
	return 0;
}

/* esd_fuzz_run(target text, libfuzzer_args text[]) returns void; never returns */
Datum
esd_fuzz_run(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	ArrayType  *args = PG_GETARG_ARRAYTYPE_P(1);
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;
	int			argc;
	char	  **argv;

	for (size_t i = 0; i < lengthof(targets); i++)
		if (strcmp(targets[i].name, name) == 0)
			current_target = &targets[i];
	if (current_target == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown fuzz target \"%s\"", name)));

	deconstruct_array(args, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &nelems);
	argv = MemoryContextAlloc(TopMemoryContext, sizeof(char *) * (nelems + 2));
	argv[0] = "esd_fuzz";
	for (int i = 0; i < nelems; i++)
		argv[i + 1] = nulls[i] ? "" : MemoryContextStrdup(TopMemoryContext,
														   TextDatumGetCString(elems[i]));
	argv[nelems + 1] = NULL;
	argc = nelems + 1;

	input_cxt = AllocSetContextCreate(TopMemoryContext, "fuzz input",
									  ALLOCSET_DEFAULT_SIZES);
	fprintf(stderr, "==fuzz== target %s\n", name);
	LLVMFuzzerRunDriver(&argc, &argv, one_input);

	/* only reached with options that make libFuzzer return (none we use) */
	PG_RETURN_VOID();
}
