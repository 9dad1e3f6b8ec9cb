/*-------------------------------------------------------------------------
 *
 * early_init.c
 *	  A tiny library preloaded after a sanitizer runtime (LD_PRELOAD="<asan
 *	  runtime> early_init.so") into the uninstrumented PostgreSQL server, so
 *	  that the runtime is initialised before any library's constructor
 *	  takes a lock the initialisation needs.
 *
 * Without it the server hangs at start: libgpg-error's constructor (the
 * server links it through libgcrypt) calls bindtextdomain(), which holds
 * glibc's gettext lock while it calls malloc(); that first malloc() starts
 * the sanitizer runtime, whose start-up formats a dlerror() message through
 * gettext, which releases the lock that bindtextdomain() holds; the lock's
 * state is broken from then on and the server's own bindtextdomain() waits
 * forever.  Here bindtextdomain() is interposed: the first call allocates
 * once (starting the runtime) before any lock is held, then calls the real
 * one.
 *
 * Its constructor also takes LD_PRELOAD out of the environment, which the
 * loader has read by then: programs the server starts (COPY ... FROM
 * PROGRAM, archive commands) are not instrumented and must not get the
 * runtime, which would hang them the same way in other libraries'
 * constructors (setlocale() in curl's, for one).
 *
 * Used by test/steps/80-fuzz.sh and by the sanitizer builds of the test
 * runner (test/sanitize/lib.sh); see test/sanitize/README.md.
 *
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>

typedef char *(*bindtextdomain_fn) (const char *domainname, const char *dirname);

static void forget_preload(void) __attribute__((constructor));

static void
forget_preload(void)
{
	unsetenv("LD_PRELOAD");
}

char	   *bindtextdomain(const char *domainname, const char *dirname);

char *
bindtextdomain(const char *domainname, const char *dirname)
{
	static bindtextdomain_fn real = NULL;

	if (real == NULL)
	{
		/* volatile: the allocation must happen, not be optimised away */
		void	   *volatile first = malloc(1);

		free(first);
		real = (bindtextdomain_fn) dlsym(RTLD_NEXT, "bindtextdomain");
		if (real == NULL)
			return NULL;
	}
	return real(domainname, dirname);
}
