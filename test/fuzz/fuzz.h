/*-------------------------------------------------------------------------
 *
 * fuzz.h
 *	  Shared declarations of the fuzz targets (test/fuzz): the driver's
 *	  helpers for running a step the way a query would (errors caught, a
 *	  subtransaction rolled back) and for failing loudly when a property
 *	  does not hold, and the entry points of each target.
 *
 * Not part of the extension; see test/fuzz/README.md.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ESD_FUZZ_H
#define ESD_FUZZ_H

#include "postgres.h"

#include "utils/jsonb.h"

/*
 * Run fn(arg) in an internal subtransaction, as a PL/pgSQL exception block
 * would.  Returns true when it finished; false when it raised an ERROR,
 * whose SQLSTATE is left in *sqlstate (when not NULL).  An ERROR with
 * SQLSTATE XX000 (elog's "internal error": a code path that should not be
 * reachable) is a finding: the run aborts, and libFuzzer keeps the input.
 */
extern bool fuzz_try(void (*fn) (void *), void *arg, int *sqlstate);

/* Abort the run (libFuzzer saves the input) unless cond holds. */
#define fuzz_assert(cond, ...) \
	do { \
		if (!(cond)) \
			fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__); \
	} while (0)

extern void fuzz_fail(const char *file, int line, const char *cond,
					  const char *fmt,...) pg_attribute_printf(4, 5) pg_attribute_noreturn();

/* Is every byte printable ASCII? (what remote text must be in a message) */
extern bool fuzz_printable(const char *s);

/* Do two jsonb values print the same? (numeric scale included) */
extern bool fuzz_jsonb_same(Jsonb *a, Jsonb *b);
extern char *fuzz_jsonb_text(Jsonb *jb);

/* The targets: one input each; errors they raise are caught by the driver. */
extern void fuzz_item(const uint8_t *data, size_t size);
extern void fuzz_payload(const uint8_t *data, size_t size);
extern void fuzz_response(const uint8_t *data, size_t size);

/* Parts of the response target, in the files that include the source they test */
extern void fuzz_aws_answer(bool is_s3, long status, const uint8_t *body, size_t len);
extern void fuzz_describe_answer(const uint8_t *body, size_t len);
extern void fuzz_cancel_answer(const uint8_t *body, size_t len, int pattern);
extern void fuzz_query_answer(const uint8_t *body, size_t len);
extern void fuzz_credentials_answer(const uint8_t *body, size_t len, bool xml);

#endif							/* ESD_FUZZ_H */
