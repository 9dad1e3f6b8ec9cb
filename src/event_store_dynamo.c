/*-------------------------------------------------------------------------
 *
 * event_store_dynamo.c
 *	  Foreign-data wrapper callbacks, in the order the planner and the
 *	  executor call them.
 *
 * A foreign table is a DynamoDB event table in the layout of the schemeless
 * event store.  A scan is a walk of its month buckets (scan.c); each event
 * becomes a row (row.c).  Conditions are checked locally for now.  An
 * INSERT turns each row into an event item (item.c) and buffers it in the
 * transaction (append.c), which sends it at commit.  Events are immutable:
 * UPDATE and DELETE are refused.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/sysattr.h"
#include "access/table.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "admin.h"
#include "append.h"
#include "item.h"
#include "option.h"
#include "row.h"
#include "scan.h"

PG_MODULE_MAGIC;

/* Plan-time state of a foreign relation. */
typedef struct EsdRelationInfo
{
	EsdTableOptions table;
	int			nbuckets;
	Bitmapset  *attrs_used;
} EsdRelationInfo;

/* Run-time state of an INSERT or COPY into a foreign table. */
typedef struct EsdModifyState
{
	Oid			relid;
	EsdConnOptions conn;
	EsdTableOptions table;
	EsdRowMap  *map;
	MemoryContext row_cxt;		/* reset for every row */
} EsdModifyState;

/* Run-time state of a foreign scan. */
typedef struct EsdScanState
{
	EsdConnOptions conn;
	EsdTableOptions table;
	EsdRowMap  *map;
	EsdWalk    *walk;
	MemoryContext row_cxt;		/* reset for every row */
} EsdScanState;

PG_FUNCTION_INFO_V1(event_store_dynamo_handler);

/*
 * Size: a month bucket of a few thousand events is the guess until
 * DynamoDB's statistics are consulted.
 */
static void
esdGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	EsdRelationInfo *info = palloc0(sizeof(EsdRelationInfo));
	char	  **buckets;
	ListCell   *lc;

	esd_get_table_options(foreigntableid, &info->table);
	esd_bucket_range(&info->table, &buckets, &info->nbuckets);

	pull_varattnos((Node *) baserel->reltarget->exprs, baserel->relid, &info->attrs_used);
	foreach(lc, baserel->baserestrictinfo)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);

		pull_varattnos((Node *) ri->clause, baserel->relid, &info->attrs_used);
	}

	baserel->fdw_private = info;
	baserel->rows = clamp_row_est(1000.0 * Max(info->nbuckets, 1) *
								  clauselist_selectivity(root, baserel->baserestrictinfo,
														 0, JOIN_INNER, NULL));
	baserel->tuples = 1000.0 * Max(info->nbuckets, 1);
}

static void
esdGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	EsdRelationInfo *info = baserel->fdw_private;
	Cost		startup = 10.0;
	Cost		total = startup + baserel->tuples * (cpu_tuple_cost * 10) + info->nbuckets * 5.0;

	add_path(baserel, (Path *) create_foreignscan_path(root, baserel, NULL, baserel->rows,
													   startup, total, NIL, NULL, NULL, NIL));
}

static ForeignScan *
esdGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid,
				  ForeignPath *best_path, List *tlist, List *scan_clauses,
				  Plan *outer_plan)
{
	EsdRelationInfo *info = baserel->fdw_private;
	List	   *attnums = NIL;
	int			x = -1;

	scan_clauses = extract_actual_clauses(scan_clauses, false);

	/* the columns the query needs; a whole-row reference needs them all */
	while ((x = bms_next_member(info->attrs_used, x)) >= 0)
	{
		AttrNumber	attnum = x + FirstLowInvalidHeapAttributeNumber;

		if (attnum == 0)
		{
			attnums = list_make1_int(-1);
			break;
		}
		if (attnum > 0)
			attnums = lappend_int(attnums, attnum);
	}

	return make_foreignscan(tlist, scan_clauses, baserel->relid, NIL,
							list_make1(attnums), NIL, NIL, outer_plan);
}

static void
esdBeginForeignScan(ForeignScanState *node, int eflags)
{
	ForeignScan *plan = (ForeignScan *) node->ss.ps.plan;
	Relation	rel = node->ss.ss_currentRelation;
	ForeignTable *table = GetForeignTable(RelationGetRelid(rel));
	EsdScanState *state = palloc0(sizeof(EsdScanState));
	List	   *attnums = linitial(plan->fdw_private);
	Oid			userid;

	node->fdw_state = state;
	esd_get_table_options(RelationGetRelid(rel), &state->table);

	if (list_length(attnums) == 1 && linitial_int(attnums) == -1)
	{
		attnums = NIL;
		for (int i = 0; i < RelationGetDescr(rel)->natts; i++)
			if (!TupleDescAttr(RelationGetDescr(rel), i)->attisdropped)
				attnums = lappend_int(attnums, i + 1);
	}
	state->map = esd_row_map(rel, attnums);

	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;

	/* the role the query runs as for this table, as postgres_fdw decides it */
	{
		RangeTblEntry *rte = exec_rt_fetch(plan->scan.scanrelid, node->ss.ps.state);

		userid = OidIsValid(rte->checkAsUser) ? rte->checkAsUser : GetUserId();
	}
	esd_get_conn_options(table->serverid, userid, &state->conn);
	{
		const char **attrs = palloc(sizeof(char *) * Max(state->map->ncolumns, 1));

		for (int i = 0; i < state->map->ncolumns; i++)
			attrs[i] = state->map->columns[i].attr;
		state->walk = esd_walk_begin(&state->conn, &state->table, attrs,
									 state->map->ncolumns,
									 node->ss.ps.state->es_query_cxt);
	}
	state->row_cxt = AllocSetContextCreate(node->ss.ps.state->es_query_cxt,
										   "event_store_dynamo row",
										   ALLOCSET_DEFAULT_SIZES);
}

static TupleTableSlot *
esdIterateForeignScan(ForeignScanState *node)
{
	EsdScanState *state = node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	EsdEvent   *event;
	MemoryContext old;

	ExecClearTuple(slot);
	MemoryContextReset(state->row_cxt);

	event = esd_walk_next(state->walk);
	if (event == NULL)
		return slot;

	old = MemoryContextSwitchTo(state->row_cxt);
	esd_event_to_row(state->map, event, state->table.table_name,
					 slot->tts_values, slot->tts_isnull);
	MemoryContextSwitchTo(old);
	ExecStoreVirtualTuple(slot);
	return slot;
}

static void
esdReScanForeignScan(ForeignScanState *node)
{
	EsdScanState *state = node->fdw_state;

	esd_walk_rewind(state->walk);
}

static void
esdEndForeignScan(ForeignScanState *node)
{
	EsdScanState *state = node->fdw_state;

	if (state && state->walk)
		esd_walk_end(state->walk);
}

static void
esdExplainForeignScan(ForeignScanState *node, ExplainState *es)
{
	EsdScanState *state = node->fdw_state;
	char	  **buckets;
	int			nbuckets;

	esd_bucket_range(&state->table, &buckets, &nbuckets);
	ExplainPropertyText("DynamoDB Table", state->table.table_name, es);
	ExplainPropertyText("DynamoDB Index", "timeBucketIndex", es);
	if (nbuckets > 0)
		ExplainPropertyText("Buckets", psprintf("%s .. %s (%d)", buckets[0],
												buckets[nbuckets - 1], nbuckets), es);
	else
		ExplainPropertyText("Buckets", "none", es);

	if (es->analyze && state->walk)
	{
		AwsStats   *s = &state->walk->stats;

		ExplainPropertyInteger("DynamoDB Query Requests", NULL, s->query, es);
		ExplainPropertyInteger("DynamoDB BatchGetItem Requests", NULL, s->batch_get, es);
		ExplainPropertyInteger("S3 GetObject Requests", NULL, s->s3_get, es);
		ExplainPropertyInteger("Retries", NULL, s->retries, es);
		ExplainPropertyInteger("Throttled", NULL, s->throttles, es);
	}
}

/*
 * Events are immutable: UPDATE and DELETE are refused while planning, with
 * a message saying so, before any request is sent.
 */
static void
esdAddForeignUpdateTargets(PlannerInfo *root, Index rtindex,
						   RangeTblEntry *target_rte, Relation target_relation)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("cannot %s foreign table \"%s\": events are immutable",
					root->parse->commandType == CMD_DELETE ? "delete from" : "update",
					RelationGetRelationName(target_relation)),
			 errhint("Append an event that records the change instead.")));
}

static int
esdIsForeignRelUpdatable(Relation rel)
{
	return (1 << CMD_INSERT);
}

static List *
esdPlanForeignModify(PlannerInfo *root, ModifyTable *plan, Index resultRelation,
					 int subplan_index)
{
	if (plan->onConflictAction != ONCONFLICT_NONE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("INSERT with ON CONFLICT is not supported on event_store_dynamo foreign tables"),
				 errhint("A duplicate event id fails the commit with unique_violation.")));
	return NIL;
}

/* Set up appends to a foreign table as the given role. */
static EsdModifyState *
begin_modify(EState *estate, ResultRelInfo *rinfo, Oid userid)
{
	Relation	rel = rinfo->ri_RelationDesc;
	ForeignTable *ft = GetForeignTable(RelationGetRelid(rel));
	EsdModifyState *state = palloc0(sizeof(EsdModifyState));
	TupleDesc	desc = RelationGetDescr(rel);
	List	   *attnums = NIL;

	state->relid = RelationGetRelid(rel);
	esd_get_table_options(state->relid, &state->table);
	esd_get_conn_options(ft->serverid, userid, &state->conn);
	for (int i = 0; i < desc->natts; i++)
		if (!TupleDescAttr(desc, i)->attisdropped)
			attnums = lappend_int(attnums, i + 1);
	state->map = esd_row_map(rel, attnums);
	state->row_cxt = AllocSetContextCreate(estate->es_query_cxt, "event_store_dynamo append",
										   ALLOCSET_DEFAULT_SIZES);
	if (state->table.auto_create)
		esd_ensure_store(&state->conn, &state->table, state->relid);
	return state;
}

static void
esdBeginForeignModify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
					  List *fdw_private, int subplan_index, int eflags)
{
	EState	   *estate = mtstate->ps.state;
	RangeTblEntry *rte;
	Oid			userid;

	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;
	rte = exec_rt_fetch(rinfo->ri_RangeTableIndex, estate);
	userid = OidIsValid(rte->checkAsUser) ? rte->checkAsUser : GetUserId();
	rinfo->ri_FdwState = begin_modify(estate, rinfo, userid);
}

/* COPY FROM and tuple routing into a foreign table partition. */
static void
esdBeginForeignInsert(ModifyTableState *mtstate, ResultRelInfo *rinfo)
{
	rinfo->ri_FdwState = begin_modify(mtstate->ps.state, rinfo, GetUserId());
}

/* Turn a row into an event, buffer it, and give back what RETURNING shows. */
static TupleTableSlot *
append_row(EsdModifyState *state, TupleTableSlot *slot, const EsdNewEvent *ev)
{
	TupleDesc	desc = slot->tts_tupleDescriptor;
	int64		seq;
	HeapTuple	tuple;

	seq = esd_append(state->relid, &state->conn, &state->table, ev);

	/* the stored values: id, created, sequence, time_bucket, s3_reference */
	esd_fill_returning(state->map, slot, ev, seq);
	tuple = heap_form_tuple(desc, slot->tts_values, slot->tts_isnull);
	ExecForceStoreHeapTuple(tuple, slot, true);
	return slot;
}

static TupleTableSlot *
esdExecForeignInsert(EState *estate, ResultRelInfo *rinfo,
					 TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	EsdModifyState *state = rinfo->ri_FdwState;
	MemoryContext old;
	EsdNewEvent ev;

	MemoryContextReset(state->row_cxt);
	old = MemoryContextSwitchTo(state->row_cxt);
	esd_row_to_new_event(state->map, slot, &state->table, &ev);
	slot = append_row(state, slot, &ev);
	MemoryContextSwitchTo(old);
	return slot;
}

/*
 * Rows arrive in batches when neither RETURNING nor row triggers need them
 * one at a time: the heads of the batch's new streams are then read with
 * one BatchGetItem instead of one GetItem each.
 */
static int
esdGetForeignModifyBatchSize(ResultRelInfo *rinfo)
{
	if (rinfo->ri_projectReturning != NULL ||
		(rinfo->ri_TrigDesc &&
		 (rinfo->ri_TrigDesc->trig_insert_before_row ||
		  rinfo->ri_TrigDesc->trig_insert_after_row)))
		return 1;
	return 100;
}

static TupleTableSlot **
esdExecForeignBatchInsert(EState *estate, ResultRelInfo *rinfo,
						  TupleTableSlot **slots, TupleTableSlot **planSlots,
						  int *numSlots)
{
	EsdModifyState *state = rinfo->ri_FdwState;
	MemoryContext old;
	EsdNewEvent *evs;
	char	  **streams;

	MemoryContextReset(state->row_cxt);
	old = MemoryContextSwitchTo(state->row_cxt);
	evs = palloc(sizeof(EsdNewEvent) * *numSlots);
	streams = palloc(sizeof(char *) * *numSlots);
	for (int i = 0; i < *numSlots; i++)
	{
		esd_row_to_new_event(state->map, slots[i], &state->table, &evs[i]);
		streams[i] = evs[i].stream;
	}
	esd_prefetch_heads(state->relid, &state->conn, &state->table, streams, *numSlots);
	for (int i = 0; i < *numSlots; i++)
		slots[i] = append_row(state, slots[i], &evs[i]);
	MemoryContextSwitchTo(old);
	return slots;
}

static void
esdEndForeignModify(EState *estate, ResultRelInfo *rinfo)
{
	/* the events stay buffered until the transaction ends */
}

static void
esdEndForeignInsert(EState *estate, ResultRelInfo *rinfo)
{
}

Datum
event_store_dynamo_handler(PG_FUNCTION_ARGS)
{
	FdwRoutine *routine = makeNode(FdwRoutine);

	routine->GetForeignRelSize = esdGetForeignRelSize;
	routine->GetForeignPaths = esdGetForeignPaths;
	routine->GetForeignPlan = esdGetForeignPlan;
	routine->BeginForeignScan = esdBeginForeignScan;
	routine->IterateForeignScan = esdIterateForeignScan;
	routine->ReScanForeignScan = esdReScanForeignScan;
	routine->EndForeignScan = esdEndForeignScan;
	routine->ExplainForeignScan = esdExplainForeignScan;

	routine->AddForeignUpdateTargets = esdAddForeignUpdateTargets;
	routine->IsForeignRelUpdatable = esdIsForeignRelUpdatable;
	routine->PlanForeignModify = esdPlanForeignModify;
	routine->BeginForeignModify = esdBeginForeignModify;
	routine->ExecForeignInsert = esdExecForeignInsert;
	routine->GetForeignModifyBatchSize = esdGetForeignModifyBatchSize;
	routine->ExecForeignBatchInsert = esdExecForeignBatchInsert;
	routine->EndForeignModify = esdEndForeignModify;
	routine->BeginForeignInsert = esdBeginForeignInsert;
	routine->EndForeignInsert = esdEndForeignInsert;

	routine->ImportForeignSchema = esd_import_foreign_schema;
	routine->ExecForeignTruncate = esd_exec_foreign_truncate;

	PG_RETURN_POINTER(routine);
}
