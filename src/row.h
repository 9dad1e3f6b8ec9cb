/*-------------------------------------------------------------------------
 *
 * row.h
 *	  Turning a stored event into a row of the foreign table.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ESD_ROW_H
#define ESD_ROW_H

#include "postgres.h"

#include "access/tupdesc.h"
#include "fmgr.h"

#include "scan.h"

typedef enum EsdColumnKind
{
	ESD_COL_ID,					/* id: EventID# prefix removed */
	ESD_COL_PAYLOAD,			/* payload: JSON text, or a value in an S3 body */
	ESD_COL_OTHER
} EsdColumnKind;

typedef struct EsdColumn
{
	AttrNumber	attnum;			/* 1-based */
	char	   *attr;			/* DynamoDB attribute name */
	EsdColumnKind kind;
	Oid			typid;
	int32		typmod;
	FmgrInfo	input;			/* the type's input function */
	FmgrInfo	output;			/* and its output function */
	Oid			ioparam;
} EsdColumn;

typedef struct EsdRowMap
{
	EsdColumn  *columns;
	int			ncolumns;
	int			natts;
} EsdRowMap;

/* Map the columns listed (attnums, 1-based) of a foreign table to attributes. */
extern EsdRowMap *esd_row_map(Relation rel, List *attnums);

/* Fill values/nulls (natts long) for one event. */
extern void esd_event_to_row(const EsdRowMap *map, const EsdEvent *event,
							 const char *table_name, Datum *values, bool *nulls);

#endif							/* ESD_ROW_H */
