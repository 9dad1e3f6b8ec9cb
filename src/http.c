/*-------------------------------------------------------------------------
 *
 * http.c
 *	  HTTP transfers over libcurl's multi interface, inside a backend.
 *
 * One multi handle per backend holds curl's connection cache, so keep-alive
 * connections are reused across requests and statements.  Waiting is done
 * in slices of at most 100 ms with CHECK_FOR_INTERRUPTS() between them: a
 * cancel or statement_timeout ends a wait promptly.  http_abort removes a
 * transfer still in flight; the request scheduler (scheduler.c) calls it
 * when the owner of a request goes, so no easy handle is left pointing at
 * freed memory.  Nothing PostgreSQL runs inside libcurl's callbacks: the
 * body arrives in a malloc'd buffer and is copied into the transfer's
 * memory context once curl is done with it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "http.h"

#define WAIT_SLICE_MS 100

static CURLM *multi = NULL;

/* easy handles in flight, so that the error path can remove them all */
static CURL **active = NULL;
static int	n_in_flight = 0;
static int	active_size = 0;

static void
track(CURL *easy)
{
	if (n_in_flight == active_size)
	{
		int			newsize = active_size == 0 ? 16 : active_size * 2;

		active = active == NULL
			? MemoryContextAlloc(TopMemoryContext, newsize * sizeof(CURL *))
			: repalloc(active, newsize * sizeof(CURL *));
		active_size = newsize;
	}
	active[n_in_flight++] = easy;
}

static void
untrack(CURL *easy)
{
	for (int i = 0; i < n_in_flight; i++)
		if (active[i] == easy)
		{
			active[i] = active[--n_in_flight];
			return;
		}
}

static CURLM *
get_multi(void)
{
	if (multi == NULL)
	{
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_ERROR),
					 errmsg("could not initialize libcurl")));
		multi = curl_multi_init();
		if (multi == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("could not create a libcurl multi handle")));
		curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, 64L);
	}
	return multi;
}

/*
 * Body callback: append to the transfer's malloc'd buffer, refusing a body
 * that (with a terminating zero) would need more than max_response bytes,
 * so a runaway response cannot exhaust memory.  It runs inside libcurl:
 * no palloc, no ereport, so no error can unwind through curl's frames; a
 * failed allocation fails the transfer (CURLE_WRITE_ERROR) instead.
 */
static size_t
write_body(char *data, size_t size, size_t nmemb, void *arg)
{
	HttpTransfer *t = (HttpTransfer *) arg;
	size_t		len = size * nmemb;
	size_t		need = t->received_len + len + 1;

	if (need > t->max_response)
	{
		t->too_large = true;
		return 0;
	}
	if (need > t->received_size)
	{
		size_t		newsize = Max(t->received_size * 2, (size_t) 8192);
		char	   *grown;

		while (newsize < need)
			newsize *= 2;
		newsize = Min(newsize, t->max_response);
		grown = realloc(t->received, newsize);
		if (grown == NULL)
			return 0;
		t->received = grown;
		t->received_size = newsize;
	}
	memcpy(t->received + t->received_len, data, len);
	t->received_len += len;
	return len;
}

/* Let go of the body buffer (it may hold credentials: cleared first). */
static void
release_received(HttpTransfer *t)
{
	if (t->received)
	{
		explicit_bzero(t->received, t->received_len);
		free(t->received);
	}
	t->received = NULL;
	t->received_len = t->received_size = 0;
}

/*
 * The transfer is over: its body moves into its memory context.  A
 * transfer that failed (no answer, a body over the limit) keeps none: no
 * one reads it, and a body refused for its size is not copied again.
 */
static void
keep_received(HttpTransfer *t)
{
	size_t		keep = t->curl_code == CURLE_OK ? t->received_len : 0;

	t->response.data = MemoryContextAlloc(t->cxt, keep + 1);
	t->response.maxlen = (int) keep + 1;
	t->response.len = (int) keep;
	t->response.cursor = 0;
	if (keep > 0)
		memcpy(t->response.data, t->received, keep);
	t->response.data[keep] = '\0';
	release_received(t);
}

/* An easy handle set up for the transfer, its response buffer emptied. */
static CURL *
new_easy(HttpTransfer *t)
{
	CURL	   *easy = curl_easy_init();

	if (easy == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not create a libcurl handle")));

	memset(&t->response, 0, sizeof(t->response));
	t->cxt = CurrentMemoryContext;
	t->received = NULL;
	t->received_len = t->received_size = 0;
	t->errbuf[0] = '\0';
	t->status = 0;
	t->curl_code = CURLE_OK;
	t->too_large = false;
	t->redirect_url = NULL;
	if (t->max_response == 0)
		t->max_response = 64 * 1024 * 1024;

	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_URL, t->url);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, t->headers);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t->errbuf);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, write_body);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, t);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, t->connect_timeout_ms);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, t->timeout_ms);
	curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
	/* a Content-Length over the limit fails the transfer before the body */
	if (strcmp(t->method, "HEAD") != 0)
		curl_easy_setopt(easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) t->max_response);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	/* the path as signed: "/./" and "/../" in an S3 key are part of the key */
	curl_easy_setopt(easy, CURLOPT_PATH_AS_IS, 1L);

	if (strcmp(t->method, "GET") == 0)
		curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
	else if (strcmp(t->method, "HEAD") == 0)
		curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
	else
	{
		if (strcmp(t->method, "POST") != 0)
			curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, t->method);
		curl_easy_setopt(easy, CURLOPT_POST, 1L);
		curl_easy_setopt(easy, CURLOPT_POSTFIELDS, t->body ? t->body : "");
		curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) t->body_len);
	}
	return easy;
}

void
http_start(HttpTransfer *t)
{
	CURLM	   *m = get_multi();
	CURL	   *easy = new_easy(t);

	if (curl_multi_add_handle(m, easy) != CURLM_OK)
	{
		curl_easy_cleanup(easy);
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("could not start an HTTP request to \"%s\"", t->url)));
	}
	track(easy);
	t->easy = easy;
	t->in_flight = true;
}

/*
 * What the transfer's result says beyond the status: whether the body was
 * refused for its size, and where a redirect (never followed) pointed, kept
 * beside the response buffer.
 */
static void
note_result(HttpTransfer *t, CURL *easy, CURLcode code)
{
	char	   *location = NULL;

	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &t->status);
	t->curl_code = code;
	if (code == CURLE_FILESIZE_EXCEEDED)
		t->too_large = true;
	if (t->status >= 300 && t->status < 400 &&
		curl_easy_getinfo(easy, CURLINFO_REDIRECT_URL, &location) == CURLE_OK &&
		location != NULL)
		t->redirect_url = MemoryContextStrdup(t->cxt, location);
}

/*
 * A transfer that curl is done with (its handle out of any multi handle):
 * keep its result and body, and let go of the handle whatever happens.
 */
static void
keep_result(HttpTransfer *t, CURL *easy, CURLcode code)
{
	PG_TRY();
	{
		note_result(t, easy, code);
		keep_received(t);
	}
	PG_CATCH();
	{
		release_received(t);
		curl_easy_cleanup(easy);
		PG_RE_THROW();
	}
	PG_END_TRY();
	curl_easy_cleanup(easy);
}

static void
finish(HttpTransfer *t, CURLcode code)
{
	CURL	   *easy = t->easy;

	curl_multi_remove_handle(multi, easy);
	untrack(easy);
	t->in_flight = false;
	t->easy = NULL;
	keep_result(t, easy, code);
}

HttpTransfer *
http_wait_one(long timeout_ms)
{
	TimestampTz deadline = GetCurrentTimestamp() + (TimestampTz) timeout_ms * 1000;

	if (multi == NULL || n_in_flight == 0)
		return NULL;

	for (;;)
	{
		int			running;
		int			queued;
		CURLMsg    *msg;
		long		slice;
		TimestampTz now;

		CHECK_FOR_INTERRUPTS();

		if (curl_multi_perform(multi, &running) != CURLM_OK)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_ERROR),
					 errmsg("libcurl multi interface failed")));

		while ((msg = curl_multi_info_read(multi, &queued)) != NULL)
		{
			if (msg->msg == CURLMSG_DONE)
			{
				HttpTransfer *t;

				curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &t);
				finish(t, msg->data.result);
				return t;
			}
		}

		now = GetCurrentTimestamp();
		if (now >= deadline)
			return NULL;
		slice = Min(WAIT_SLICE_MS, (long) ((deadline - now) / 1000) + 1);
		if (curl_multi_poll(multi, NULL, 0, (int) slice, NULL) != CURLM_OK)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_ERROR),
					 errmsg("libcurl multi interface failed while waiting")));
	}
}

void
http_abort(HttpTransfer *t)
{
	if (!t->in_flight || t->easy == NULL)
		return;
	curl_multi_remove_handle(multi, t->easy);
	untrack(t->easy);
	curl_easy_cleanup(t->easy);
	t->easy = NULL;
	t->in_flight = false;
	release_received(t);
}

int
http_in_flight(void)
{
	return n_in_flight;
}

/*
 * Run one transfer to completion on a multi handle of its own, apart from
 * the concurrent transfers of http_start and http_wait_one, whose finished
 * transfers it therefore never consumes: a credential fetch can happen in
 * the middle of a batch of AWS calls.  Waits in slices with interrupt
 * checks like http_wait_one; the transfer's own timeouts bound it.
 */
void
http_perform(HttpTransfer *t)
{
	static CURLM *solo = NULL;
	CURL	   *easy;
	volatile CURLcode code = CURLE_OK;

	(void) get_multi();			/* initializes libcurl */
	if (solo == NULL)
	{
		solo = curl_multi_init();
		if (solo == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("could not create a libcurl multi handle")));
	}

	easy = new_easy(t);
	if (curl_multi_add_handle(solo, easy) != CURLM_OK)
	{
		curl_easy_cleanup(easy);
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("could not start an HTTP request to \"%s\"", t->url)));
	}

	PG_TRY();
	{
		for (;;)
		{
			int			running;
			int			queued;
			CURLMsg    *msg;
			bool		done = false;

			CHECK_FOR_INTERRUPTS();
			if (curl_multi_perform(solo, &running) != CURLM_OK)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_ERROR),
						 errmsg("libcurl multi interface failed")));
			while ((msg = curl_multi_info_read(solo, &queued)) != NULL)
				if (msg->msg == CURLMSG_DONE)
				{
					code = msg->data.result;
					done = true;
				}
			if (done)
				break;
			if (curl_multi_poll(solo, NULL, 0, WAIT_SLICE_MS, NULL) != CURLM_OK)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_ERROR),
						 errmsg("libcurl multi interface failed while waiting")));
		}
	}
	PG_CATCH();
	{
		curl_multi_remove_handle(solo, easy);
		curl_easy_cleanup(easy);
		release_received(t);
		PG_RE_THROW();
	}
	PG_END_TRY();

	curl_multi_remove_handle(solo, easy);
	keep_result(t, easy, code);
}
