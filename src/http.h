/*-------------------------------------------------------------------------
 *
 * http.h
 *	  HTTP transfers over libcurl's multi interface, inside a backend.
 *
 * Knows nothing of AWS: it moves bytes.  Several transfers can be in flight
 * at once; waiting for them checks for interrupts, so query cancel and
 * statement_timeout work even when the remote side never answers.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ESD_HTTP_H
#define ESD_HTTP_H

#include <curl/curl.h>

#include "lib/stringinfo.h"

typedef struct HttpTransfer
{
	/* request, set by the caller */
	const char *method;
	const char *url;
	struct curl_slist *headers;
	const char *body;
	size_t		body_len;
	long		connect_timeout_ms;
	long		timeout_ms;
	size_t		max_response;	/* a body that needs more (with its
								 * terminating zero) fails the transfer;
								 * 0: 64 MB */

	/* result */
	CURLcode	curl_code;
	long		status;
	StringInfoData response;	/* the body, in the memory context the
								 * transfer was started in */
	char		errbuf[CURL_ERROR_SIZE];
	char	   *redirect_url;	/* where a 3xx answer pointed (not followed) */

	/* private */
	CURL	   *easy;
	bool		in_flight;
	bool		too_large;
	MemoryContext cxt;			/* where the response is copied when done */
	char	   *received;		/* the body while it arrives: malloc'd, as
								 * curl's callback must neither palloc nor
								 * raise an error */
	size_t		received_len;
	size_t		received_size;
	void	   *owner;			/* for the caller's bookkeeping */
} HttpTransfer;

/*
 * Start a transfer; its response is kept in CurrentMemoryContext once it is
 * done.  Until then the transfer belongs to its caller, who must either
 * wait for it or http_abort it before the HttpTransfer's memory goes.
 */
extern void http_start(HttpTransfer *t);

/*
 * Wait up to timeout_ms for a transfer to finish, checking for interrupts
 * at least every 100 ms.  Returns the finished transfer, or NULL when the
 * time ran out.
 */
extern HttpTransfer *http_wait_one(long timeout_ms);


/*
 * Run one transfer to completion, apart from those of http_start (which
 * keep their place); for short side requests such as credential fetches.
 * Checks for interrupts while waiting.
 */
extern void http_perform(HttpTransfer *t);

/* Abandon one transfer in flight (a no-op for one that is not). */
extern void http_abort(HttpTransfer *t);

/* Number of transfers in flight. */
extern int	http_in_flight(void);

#endif							/* ESD_HTTP_H */
