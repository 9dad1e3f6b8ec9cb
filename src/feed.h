/*-------------------------------------------------------------------------
 *
 * feed.h
 *	  The change feed (feed.c): a foreign table's DynamoDB Stream, read by
 *	  the projection workers between their catch-ups.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ESD_FEED_H
#define ESD_FEED_H

#include "postgres.h"

extern void esd_feed_round(const char *projection);
extern void esd_feed_poll(const char *projection, MemoryContext loop_context);
extern void esd_feed_forget(void);

#endif							/* ESD_FEED_H */
