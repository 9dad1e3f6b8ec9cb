/*-------------------------------------------------------------------------
 *
 * clock.h
 *	  The current time as the extension sees it: the real clock, or the
 *	  fixed one a test sets (event_store_dynamo.test_now).
 *
 *-------------------------------------------------------------------------
 */
#ifndef ESD_CLOCK_H
#define ESD_CLOCK_H

#include "postgres.h"
#include "datatype/timestamp.h"

extern void esd_clock_init(void);
extern TimestampTz esd_transaction_now(void);
extern TimestampTz esd_now(void);

#endif							/* ESD_CLOCK_H */
