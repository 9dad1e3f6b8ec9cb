/*-------------------------------------------------------------------------
 *
 * item.h
 *	  Turning a row given to INSERT into a DynamoDB event item (and, for an
 *	  oversized event, the S3 body it is offloaded to), exactly as the Node
 *	  adapter would have written it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ESD_ITEM_H
#define ESD_ITEM_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "executor/tuptable.h"

#include "option.h"
#include "row.h"

/* An event about to be appended, before its stream position is known. */
typedef struct EsdNewEvent
{
	char	   *id;				/* without the EventID# prefix */
	bool		id_given;		/* the row gave the id (else a fresh UUID) */
	char	   *domain;
	char	   *identifier;		/* NULL when absent */
	char	   *stream;			/* "<domain>::<identifier or empty>" */
	TimestampTz created;		/* truncated to the millisecond */
	char		created_text[32];	/* YYYY-MM-DDTHH:MM:SS.mmmZ */
	char		time_bucket[8]; /* YYYY-MM */
	bool		has_expected_sequence;
	int64		expected_sequence;	/* the sequence the caller gave */

	/* the item's attributes as DynamoDB JSON, without braces and sequence */
	char	   *item_attrs;
	size_t		item_size;		/* DynamoDB's size of the item, estimated from above */

	/* when offloaded: the S3 object */
	char	   *s3_key;			/* NULL unless offloaded */
	char	   *s3_reference;	/* <bucket>::<key> */
	char	   *s3_body;		/* JSON text of the body */
} EsdNewEvent;

extern void esd_row_to_new_event(const EsdRowMap *map, TupleTableSlot *slot,
								 const EsdTableOptions *table, EsdNewEvent *ev);

/* The complete item JSON with its sequence. */
extern char *esd_item_json(const EsdNewEvent *ev, int64 sequence);

/* Fill the derived columns (id, created, sequence, time_bucket, s3_reference) for RETURNING. */
extern void esd_fill_returning(const EsdRowMap *map, TupleTableSlot *slot,
							   const EsdNewEvent *ev, int64 sequence);

/* A fresh random (version 4) UUID in its text form. */
extern char *esd_uuid_v4(void);

#endif							/* ESD_ITEM_H */
