/*-------------------------------------------------------------------------
 *
 * append.h
 *	  The write buffer: events appended in a transaction are numbered in
 *	  their streams at once and sent to DynamoDB (and S3) at commit.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ESD_APPEND_H
#define ESD_APPEND_H

#include "postgres.h"

#include "item.h"
#include "option.h"

/*
 * Buffer one event of foreign table relid; returns its sequence.  The first
 * append to a stream in a transaction reads the stream head (consistent
 * read); a sequence the caller gave must be the next one.
 */
extern int64 esd_append(Oid relid, const EsdConnOptions *conn,
						const EsdTableOptions *table, const EsdNewEvent *ev);

/* Read the heads of these streams (domain::identifier) in one go, ahead of their first append. */
extern void esd_prefetch_heads(Oid relid, const EsdConnOptions *conn,
							   const EsdTableOptions *table,
							   char **streams, int nstreams);

/*
 * The table behind a foreign table was just reset: the events this
 * transaction appended to it so far are dropped, as TRUNCATE drops the rows
 * a transaction inserted, and its streams start again from their heads.
 */
extern void esd_discard_appends(Oid relid);


#endif							/* ESD_APPEND_H */
