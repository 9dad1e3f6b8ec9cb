/*-------------------------------------------------------------------------
 *
 * admin.h
 *	  Store management from SQL: reset_store, init_store, stream_version,
 *	  store_info, IMPORT FOREIGN SCHEMA and TRUNCATE.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ESD_ADMIN_H
#define ESD_ADMIN_H

#include "postgres.h"

#include "nodes/parsenodes.h"
#include "nodes/pg_list.h"
#include "storage/lockdefs.h"

#include "option.h"
#include "store.h"

/*
 * What init_store does, for the write path: create the DynamoDB table
 * (and the S3 bucket, when the table has one) when missing, fail when the
 * table has another shape.  Done once per backend for each table; later
 * calls return at once.  Does nothing when the table option auto_create is
 * false.  relid is the foreign table, for messages.
 */
extern void esd_ensure_store(const EsdConnOptions *conn, const EsdTableOptions *table,
							 Oid relid);

/* FDW callbacks */
extern void esd_open_store_for_change(Oid relid, LOCKMODE lockmode);
extern bool esd_role_may_change_store(Oid relid, Oid userid);
extern void esd_check_store_shape(const EsdTableInfo *info);

extern List *esd_import_foreign_schema(ImportForeignSchemaStmt *stmt, Oid serverOid);
extern void esd_exec_foreign_truncate(List *rels, DropBehavior behavior, bool restart_seqs);

#endif							/* ESD_ADMIN_H */
