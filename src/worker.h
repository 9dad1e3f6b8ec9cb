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

#endif							/* ESD_WORKER_H */
