/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  Background workers that keep running projections current (worker.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef ESD_WORKER_H
#define ESD_WORKER_H

/* Called from _PG_init: GUCs, and with shared_preload_libraries the launcher. */
extern void esd_worker_init(void);

/*
 * Sleeps until a projection worker of any database commits, or timeout_ms
 * passes; returns early on interrupts.  With the library preloaded the wake
 * comes from the workers' commits; without it this is a plain timed sleep.
 */
extern void esd_worker_wait_for_progress(long timeout_ms);

#endif							/* ESD_WORKER_H */
