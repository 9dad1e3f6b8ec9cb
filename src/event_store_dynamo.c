/*-------------------------------------------------------------------------
 *
 * event_store_dynamo.c
 *	  Foreign-data wrapper callbacks, in the order the planner and the
 *	  executor call them.
 *
 * A foreign table is a DynamoDB event table in the layout of the schemeless
 * event store.  A scan is a walk of its month buckets (scan.c); each event
 * becomes a row (row.c).  plan.c decides which conditions become key
 * conditions and which index a scan reads; every condition is also checked
 * here, locally.  An
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
#include "access/transam.h"
#include "access/xact.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "catalog/pg_type.h"
#include "optimizer/optimizer.h"
#include "optimizer/paths.h"
#include "parser/parsetree.h"
#include "optimizer/pathnode.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "commands/vacuum.h"
#include "utils/lsyscache.h"
#include "utils/sampling.h"
#include "utils/rel.h"
#include "utils/typcache.h"

#include "admin.h"
#include "append.h"
#include "clock.h"
#include "codec.h"
#include "item.h"
#include "option.h"
#include "plan.h"
#include "row.h"
#include "scan.h"
#include "worker.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/* Module load: the test clock, the projection workers' settings and their launcher. */
void
_PG_init(void)
{
	esd_clock_init();
	esd_worker_init();
}

/* Plan-time state of a foreign relation. */
typedef struct EsdRelationInfo
{
	EsdTableOptions table;
	int			nbuckets;
	Bitmapset  *attrs_used;
	double		table_rows;		/* events in the table, as far as we know */
	AttrNumber	created_attno;	/* a timestamptz column on created, or 0 */
	AttrNumber	sequence_attno; /* an integer column on sequence, or 0 */
	double		limit_hint;		/* rows the query's LIMIT (and OFFSET) needs, or 0 */
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
	EsdPushdown *pushdown;
	List	   *expr_states;	/* the pushed conditions' values */
	bool		planned;		/* bounds evaluated for this (re)scan */
	int64		skipped;		/* events skipped with a WARNING (on_bad_item 'warn') */
	bool		plain_conversion;	/* conversion errors need no subtransaction */
	EsdWalk    *walk;
	MemoryContext row_cxt;		/* reset for every row */
} EsdScanState;

static bool conversion_is_plain(const EsdRowMap *map);

PG_FUNCTION_INFO_V1(event_store_dynamo_handler);

/* Cost of one request to DynamoDB, in the planner's units. */
#define REQUEST_COST 10.0

/* Find the column of an attribute with one of the given types (first wins). */
static AttrNumber
column_on(Oid relid, TupleDesc desc, const char *attr, Oid t1, Oid t2, Oid t3)
{
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped ||
			(att->atttypid != t1 && att->atttypid != t2 && att->atttypid != t3))
			continue;
		if (strcmp(esd_column_attribute_name(relid, i + 1, NameStr(att->attname)), attr) == 0)
			return i + 1;
	}
	return 0;
}

/*
 * Size: ANALYZE's count, else a few thousand events a month bucket; the
 * pushed conditions narrow it.  Planning sends no request: a stream read
 * is planned on streamIndex, and a scan that finds the table without it
 * walks instead (scan.c), so nothing here needs to ask DynamoDB.
 */
static void
esdGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	EsdRelationInfo *info = palloc0(sizeof(EsdRelationInfo));
	char	  **buckets;
	ListCell   *lc;
	Relation	rel;

	esd_get_table_options(foreigntableid, &info->table);
	esd_bucket_range(&info->table, &buckets, &info->nbuckets);

	rel = table_open(foreigntableid, NoLock);
	info->created_attno = column_on(foreigntableid, RelationGetDescr(rel), "created",
									TIMESTAMPTZOID, InvalidOid, InvalidOid);
	info->sequence_attno = column_on(foreigntableid, RelationGetDescr(rel), "sequence",
									 INT8OID, INT4OID, INT2OID);
	table_close(rel, NoLock);

	pull_varattnos((Node *) baserel->reltarget->exprs, baserel->relid, &info->attrs_used);
	foreach(lc, baserel->baserestrictinfo)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);

		pull_varattnos((Node *) ri->clause, baserel->relid, &info->attrs_used);
	}

	/* ANALYZE's count, else a guess from the months walked */
	if (baserel->tuples > 0)
		info->table_rows = baserel->tuples;
	else
		info->table_rows = 1000.0 * Max(info->nbuckets, 1);
	baserel->fdw_private = info;
	baserel->tuples = info->table_rows;
	baserel->rows = clamp_row_est(info->table_rows *
								  clauselist_selectivity(root, baserel->baserestrictinfo,
														 0, JOIN_INNER, NULL));
}

/* The access path the conditions allow, or the plain walk when pushdown is off. */
static EsdPushdown *
choose_access(PlannerInfo *root, RelOptInfo *baserel, Oid relid, List *clauses)
{
	EsdRelationInfo *info = baserel->fdw_private;

	if (!info->table.pushdown)
		return palloc0(sizeof(EsdPushdown));
	return esd_choose_access(root, baserel, relid, clauses);
}

/* Requests an access path sends, roughly, for the planner's costs. */
static double
estimate_requests(EsdRelationInfo *info, EsdPushdown *pd, double rows)
{
	switch (pd->access)
	{
		case ESD_ACCESS_ID:
			return 1.0;
		case ESD_ACCESS_CAUSATION:
			return 2.0;
		case ESD_ACCESS_STREAM:
			return 2.0 + rows / 100.0;
		default:
			{
				double		buckets = info->nbuckets;
				ListCell   *lc;

				/* a created or time_bucket condition touches a few months */
				foreach(lc, pd->conds)
					if (((EsdCond *) lfirst(lc))->target == ESD_ON_BUCKET ||
						((EsdCond *) lfirst(lc))->target == ESD_ON_CREATED)
						buckets = Min(buckets, 3.0);
				return buckets + rows / 100.0;
			}
	}
}

static List *
pathkeys_on(PlannerInfo *root, RelOptInfo *baserel, AttrNumber attno, bool descending)
{
	Oid			type;
	TypeCacheEntry *tc;
	Var		   *var;

	if (attno == 0)
		return NIL;
	type = get_atttype(planner_rt_fetch(baserel->relid, root)->relid, attno);
	tc = lookup_type_cache(type, TYPECACHE_LT_OPR | TYPECACHE_GT_OPR);
	var = makeVar(baserel->relid, attno, type, -1, InvalidOid, 0);
	return build_expression_pathkey(root, (Expr *) var, NULL,
									descending ? tc->gt_opr : tc->lt_opr,
									baserel->relids, true);
}

static void
add_scan_path(PlannerInfo *root, RelOptInfo *baserel, EsdPushdown *pd, double rows,
			  List *pathkeys, Relids required_outer, bool descending)
{
	EsdRelationInfo *info = baserel->fdw_private;
	double		requests = estimate_requests(info, pd, rows);
	Cost		startup = REQUEST_COST;
	Cost		total = requests * REQUEST_COST + rows * cpu_tuple_cost * 4;

	add_path(baserel, (Path *) create_foreignscan_path(root, baserel, NULL, rows,
													   startup, total, pathkeys,
													   required_outer, NULL,
													   list_make1_int(descending)));
}

/* Does an equivalence class member stand for the column in arg? */
static bool
ec_member_is_column(PlannerInfo *root pg_attribute_unused(), RelOptInfo *rel, EquivalenceClass *ec pg_attribute_unused(),
					EquivalenceMember *em, void *arg)
{
	Expr	   *expr = em->em_expr;

	while (IsA(expr, RelabelType))
		expr = ((RelabelType *) expr)->arg;
	return IsA(expr, Var) && ((Var *) expr)->varno == (int) rel->relid &&
		((Var *) expr)->varattno == *(AttrNumber *) arg;
}

/*
 * Join clauses that could drive a lookup: equalities on the id or the
 * causation id column with another relation, both those the planner keeps
 * in equivalence classes and the others.
 */
static List *
lookup_join_clauses(PlannerInfo *root, RelOptInfo *baserel, Oid relid)
{
	Relation	rel = table_open(relid, NoLock);
	List	   *clauses = NIL;
	const char *const attrs[] = {"id", "causationId"};
	ListCell   *lc;

	for (int i = 0; i < (int) lengthof(attrs); i++)
	{
		AttrNumber	attno = column_on(relid, RelationGetDescr(rel), attrs[i],
									  TEXTOID, VARCHAROID, InvalidOid);

		if (attno != 0)
			clauses = list_concat(clauses,
								  generate_implied_equalities_for_column(root, baserel,
																		 ec_member_is_column,
																		 &attno,
																		 baserel->lateral_referencers));
	}
	table_close(rel, NoLock);
	foreach(lc, baserel->joininfo)
		if (bms_is_member(baserel->relid, ((RestrictInfo *) lfirst(lc))->clause_relids))
			clauses = lappend(clauses, lfirst(lc));
	return clauses;
}

/*
 * Paths: the access path the conditions allow, with the order it yields
 * (created for the walk and for lookups, sequence for a stream); a walk
 * backwards when the query wants newest first; and lookups parameterized by
 * an outer relation (e.causation_id = c.id in a nested loop).
 */
static void
esdGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	EsdRelationInfo *info = baserel->fdw_private;
	EsdPushdown *pd = choose_access(root, baserel, foreigntableid, baserel->baserestrictinfo);
	double		rows = baserel->rows;
	ListCell   *lc;

	if (pd->access != ESD_ACCESS_WALK)
		rows = clamp_row_est(Min(rows, esd_estimate_rows(pd, info->table_rows)));
	baserel->rows = rows;

	add_scan_path(root, baserel, pd, rows,
				  pd->access == ESD_ACCESS_STREAM
				  ? pathkeys_on(root, baserel, info->sequence_attno, false)
				  : pathkeys_on(root, baserel, info->created_attno, false),
				  NULL, false);
	if (pd->access == ESD_ACCESS_WALK && info->created_attno != 0 && info->table.pushdown)
	{
		List	   *desc = pathkeys_on(root, baserel, info->created_attno, true);

		if (root->query_pathkeys && pathkeys_contained_in(desc, root->query_pathkeys))
			add_scan_path(root, baserel, pd, rows, desc, NULL, true);
	}
	/* a stream read backwards, newest first: ScanIndexForward false */
	if (pd->access == ESD_ACCESS_STREAM && info->sequence_attno != 0)
	{
		List	   *desc = pathkeys_on(root, baserel, info->sequence_attno, true);

		if (root->query_pathkeys && pathkeys_contained_in(desc, root->query_pathkeys))
			add_scan_path(root, baserel, pd, rows, desc, NULL, true);
	}

	/* lookups driven by the rows of another relation */
	if (!info->table.pushdown)
		return;
	foreach(lc, lookup_join_clauses(root, baserel, foreigntableid))
	{
		RestrictInfo *ri = lfirst(lc);
		EsdPushdown *ppd;
		Relids		outer;
		ParamPathInfo *ppi;

		outer = bms_difference(ri->clause_relids, baserel->relids);
		if (bms_is_empty(outer) || bms_overlap(outer, baserel->lateral_referencers))
			continue;
		ppd = choose_access(root, baserel, foreigntableid,
							lappend(list_copy(baserel->baserestrictinfo), ri));
		if (ppd->access != ESD_ACCESS_ID && ppd->access != ESD_ACCESS_CAUSATION)
			continue;
		ppi = get_baserel_parampathinfo(root, baserel, outer);
		add_scan_path(root, baserel, ppd,
					  clamp_row_est(esd_estimate_rows(ppd, info->table_rows)),
					  pathkeys_on(root, baserel, info->created_attno, false),
					  ppi->ppi_req_outer, false);
	}
}

/*
 * A LIMIT over a scan of one foreign table: remember how many rows it
 * needs (LIMIT plus OFFSET, constants), so that the scan asks DynamoDB for
 * that many first.  No path is added: the Limit node stays and stops the
 * scan, and the number is only a hint (local conditions may drop rows, and
 * the scan then reads on).  PostgreSQL has already refused the hint when
 * aggregation, grouping, DISTINCT or set-returning functions sit between
 * the scan and the LIMIT.
 */
static void
esdGetForeignUpperPaths(PlannerInfo *root, UpperRelationKind stage,
						RelOptInfo *input_rel pg_attribute_unused(),
						RelOptInfo *output_rel pg_attribute_unused(), void *extra)
{
	FinalPathExtraData *fextra = extra;
	int			relid;
	RelOptInfo *rel;

	if (stage != UPPERREL_FINAL || fextra == NULL || !fextra->limit_needed ||
		root->limit_tuples <= 0 ||
		!bms_get_singleton_member(root->all_baserels, &relid))
		return;
	rel = find_base_rel(root, relid);
	if (rel->rtekind != RTE_RELATION || rel->fdwroutine == NULL ||
		rel->fdwroutine->GetForeignUpperPaths != esdGetForeignUpperPaths ||
		rel->fdw_private == NULL)
		return;
	((EsdRelationInfo *) rel->fdw_private)->limit_hint = root->limit_tuples;
}

static ForeignScan *
esdGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid,
				  ForeignPath *best_path, List *tlist, List *scan_clauses,
				  Plan *outer_plan)
{
	EsdRelationInfo *info = baserel->fdw_private;
	List	   *attnums = NIL;
	List	   *exprs = NIL;
	List	   *private;
	EsdPushdown *pd;
	int			limit_hint = 0;
	int			x = -1;

	/* pushed or not, every condition is checked here too */
	pd = choose_access(root, baserel, foreigntableid, scan_clauses);
	pd->descending = linitial_int(best_path->fdw_private) != 0;
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

	/*
	 * The LIMIT's rows, when the scan's rows go to it in the order they come
	 * (no Sort in between) and the scan is not repeated for outer rows.
	 */
	if (info->limit_hint > 0 && best_path->path.param_info == NULL &&
		(root->sort_pathkeys == NIL ||
		 pathkeys_contained_in(root->sort_pathkeys, best_path->path.pathkeys)))
		limit_hint = (int) Min(info->limit_hint, (double) PG_INT32_MAX);
	private = list_make4(attnums, esd_pushdown_to_list(pd, &exprs),
						 makeString(esd_describe_conditions(root, pd)),
						 makeInteger(limit_hint));
	return make_foreignscan(tlist, scan_clauses, baserel->relid, exprs, private,
							NIL, NIL, outer_plan);
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
	state->pushdown = esd_pushdown_from_list(lsecond(plan->fdw_private), plan->fdw_exprs);

	if (list_length(attnums) == 1 && linitial_int(attnums) == -1)
	{
		attnums = NIL;
		for (int i = 0; i < RelationGetDescr(rel)->natts; i++)
			if (!TupleDescAttr(RelationGetDescr(rel), i)->attisdropped)
				attnums = lappend_int(attnums, i + 1);
	}
	state->map = esd_row_map(rel, attnums);
	state->plain_conversion = conversion_is_plain(state->map);

	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;

	state->expr_states = ExecInitExprList(plan->fdw_exprs, (PlanState *) node);

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
		state->walk->hint = state->walk->target = intVal(lfourth(plan->fdw_private));
	}
	state->row_cxt = AllocSetContextCreate(node->ss.ps.state->es_query_cxt,
										   "event_store_dynamo row",
										   ALLOCSET_DEFAULT_SIZES);
}

/* Evaluate the pushed conditions (parameters are known now) and plan the requests. */
static void
plan_requests(ForeignScanState *node, EsdScanState *state)
{
	EsdBounds	bounds;
	MemoryContext old = MemoryContextSwitchTo(state->walk->scan_cxt);

	esd_eval_bounds(state->pushdown, state->expr_states, node->ss.ps.ps_ExprContext, &bounds);
	esd_walk_plan(state->walk, state->pushdown->access, state->pushdown->descending, &bounds);
	MemoryContextSwitchTo(old);
	state->planned = true;
}

/*
 * Can a failed conversion of these columns be caught without a
 * subtransaction?  It can when every column is read by a built-in input
 * function (no domain, whose constraints may run any code) and the codec:
 * they take no lock, pin no buffer and open nothing, so an error leaves
 * nothing behind but memory in the row's context, which is reset for the
 * next row.
 */
static bool
conversion_is_plain(const EsdRowMap *map)
{
	for (int i = 0; i < map->ncolumns; i++)
	{
		const EsdColumn *col = &map->columns[i];

		if (col->input.fn_oid >= FirstGenbkiObjectId ||
			get_typtype(col->typid) == TYPTYPE_DOMAIN)
			return false;
	}
	return true;
}

/* Errors a conversion reports about the data: the ones on_bad_item 'warn' skips. */
static bool
is_conversion_error(int sqlerrcode)
{
	return ERRCODE_TO_CATEGORY(sqlerrcode) == ERRCODE_TO_CATEGORY(ERRCODE_DATA_EXCEPTION) ||
		ERRCODE_TO_CATEGORY(sqlerrcode) == ERRCODE_TO_CATEGORY(ERRCODE_FDW_ERROR);
}

static void
warn_skipped(EsdScanState *state, EsdEvent *event, ErrorData *edata)
{
	ereport(WARNING,
			(errcode(edata->sqlerrcode),
			 errmsg("skipped event \"%s\" of table \"%s\": %s", esd_shorten(event->id),
					state->table.table_name, edata->message),
			 edata->context ? errcontext("%s", edata->context) : 0));
}

/*
 * With on_bad_item 'warn', an event the row cannot be made of is skipped
 * with a WARNING naming it.  Built-in conversions are caught as they are
 * (no subtransaction per row, so this works under a Gather too); others
 * (domains, types of extensions) run in a subtransaction, so that whatever
 * failed in them is cleaned up, which a parallel operation does not allow:
 * there a bad item is an error, as with on_bad_item 'error'.
 */
static bool
row_or_warning(EsdScanState *state, EsdEvent *event, TupleTableSlot *slot)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool ok = true;

	if (state->plain_conversion)
	{
		PG_TRY();
		{
			esd_event_to_row(state->map, event, state->table.table_name,
							 slot->tts_values, slot->tts_isnull);
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			if (!is_conversion_error(edata->sqlerrcode))
				PG_RE_THROW();
			FlushErrorState();
			warn_skipped(state, event, edata);
			ok = false;
		}
		PG_END_TRY();
		return ok;
	}

	if (IsInParallelMode())
	{
		esd_event_to_row(state->map, event, state->table.table_name,
						 slot->tts_values, slot->tts_isnull);
		return true;
	}

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		esd_event_to_row(state->map, event, state->table.table_name,
						 slot->tts_values, slot->tts_isnull);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		warn_skipped(state, event, edata);
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

static TupleTableSlot *
esdIterateForeignScan(ForeignScanState *node)
{
	EsdScanState *state = node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	MemoryContext old;

	if (!state->planned)
		plan_requests(node, state);

	ExecClearTuple(slot);
	for (;;)
	{
		EsdEvent   *event;
		bool		ok = true;

		MemoryContextReset(state->row_cxt);
		event = esd_walk_next(state->walk);
		if (event == NULL)
			return slot;

		if (event->problem)
		{
			ereport(WARNING,
					(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
					 errmsg("skipped event \"%s\" of table \"%s\": %s", esd_shorten(event->id),
							state->table.table_name, event->problem)));
			state->skipped++;
			continue;
		}

		old = MemoryContextSwitchTo(state->row_cxt);
		if (state->table.warn_bad_items)
			ok = row_or_warning(state, event, slot);
		else
			esd_event_to_row(state->map, event, state->table.table_name,
							 slot->tts_values, slot->tts_isnull);
		MemoryContextSwitchTo(old);
		if (ok)
			break;
		state->skipped++;
	}
	ExecStoreVirtualTuple(slot);
	return slot;
}

static void
esdReScanForeignScan(ForeignScanState *node)
{
	EsdScanState *state = node->fdw_state;

	/* parameters may have changed: evaluate the conditions again */
	esd_walk_rewind(state->walk);
	state->planned = false;
}

static void
esdEndForeignScan(ForeignScanState *node)
{
	EsdScanState *state = node->fdw_state;

	if (state && state->skipped > 0)
		ereport(WARNING,
				(errcode(ERRCODE_WARNING),
				 errmsg("%lld events of table \"%s\" were skipped because they could not be read",
						(long long) state->skipped, state->table.table_name),
				 errhint("Each was reported in a WARNING of its own; on_bad_item 'error' stops at the first instead.")));
	if (state && state->walk)
		esd_walk_end(state->walk);
}

/* Are the values of the pushed conditions all constants, known before the scan? */
static bool
all_constants(List *exprs)
{
	ListCell   *lc;

	foreach(lc, exprs)
	{
		Node	   *e = lfirst(lc);

		while (IsA(e, RelabelType))
			e = (Node *) ((RelabelType *) e)->arg;
		if (!IsA(e, Const))
			return false;
	}
	return true;
}

static void
esdExplainForeignScan(ForeignScanState *node, ExplainState *es)
{
	EsdScanState *state = node->fdw_state;
	ForeignScan *plan = (ForeignScan *) node->ss.ps.plan;
	const char *conditions = strVal(lthird(plan->fdw_private));
	EsdPushdown *pd = state->pushdown;

	ExplainPropertyText("DynamoDB Table", state->table.table_name, es);
	ExplainPropertyText("DynamoDB Access", esd_access_name(pd->access), es);
	if (conditions[0] != '\0')
		ExplainPropertyText("Key Conditions", conditions, es);
	if (pd->access == ESD_ACCESS_WALK)
	{
		char	  **buckets;
		int			nbuckets;

		bool		narrowed = false;

		esd_bucket_range(&state->table, &buckets, &nbuckets);

		/* constant bounds: the months they leave, as the scan will walk them */
		if (pd->conds && all_constants(plan->fdw_exprs))
		{
			ExprContext *econtext = CreateStandaloneExprContext();
			EsdBounds	bounds;
			int			n = 0;

			esd_eval_bounds(pd, ExecInitExprList(plan->fdw_exprs, NULL), econtext, &bounds);
			for (int i = 0; i < nbuckets; i++)
				if (esd_bucket_wanted(&bounds, buckets[i]))
					buckets[n++] = buckets[i];
			nbuckets = n;
			narrowed = true;
			FreeExprContext(econtext, true);
		}
		if (nbuckets > 0)
			ExplainPropertyText("Buckets", psprintf("%s .. %s (%d)%s",
													pd->descending ? buckets[nbuckets - 1] : buckets[0],
													pd->descending ? buckets[0] : buckets[nbuckets - 1],
													nbuckets,
													pd->conds && !narrowed ? ", narrowed at run time" : ""), es);
		else
			ExplainPropertyText("Buckets", "none", es);
		if (pd->descending)
			ExplainPropertyText("Order", "created descending", es);
	}
	if (pd->access == ESD_ACCESS_STREAM && pd->descending)
		ExplainPropertyText("Order", "sequence descending", es);
	if (intVal(lfourth(plan->fdw_private)) > 0)
		ExplainPropertyInteger("Rows Wanted", NULL, intVal(lfourth(plan->fdw_private)), es);
	if (!state->table.pushdown)
		ExplainPropertyText("Pushdown", "off (every condition is checked locally)", es);

	if (es->analyze && state->walk)
	{
		AwsStats   *s = &state->walk->stats;

		if (state->walk->parts_read > 0 && pd->access == ESD_ACCESS_WALK)
			ExplainPropertyText("Buckets Read",
								psprintf("%s .. %s (%d)", state->walk->parts[0].label,
										 state->walk->parts[state->walk->parts_read - 1].label,
										 state->walk->parts_read), es);
		if (state->walk->stream_walked)
			ExplainPropertyText("Stream Read", "the table has no streamIndex: walked, filtered locally and sorted by sequence", es);
		if (es->verbose)
			ExplainPropertyInteger("Pages Asked Ahead", NULL, state->walk->pages_early, es);
		ExplainPropertyInteger("DynamoDB Query Requests", NULL, s->query, es);
		ExplainPropertyInteger("DynamoDB BatchGetItem Requests", NULL, s->batch_get, es);
		ExplainPropertyInteger("S3 GetObject Requests", NULL, s->s3_get, es);
		ExplainPropertyInteger("Retries", NULL, s->retries, es);
		ExplainPropertyInteger("Throttled", NULL, s->throttles, es);
		ExplainPropertyFloat("Consumed Read Capacity Units", NULL, s->capacity_units, 1, es);
	}
}

/*
 * ANALYZE: a full replay, sampled with Vitter's reservoir algorithm as
 * file_fdw does; it costs as many requests as a SELECT of every event.
 */
static int
esdAcquireSampleRows(Relation relation, int elevel, HeapTuple *rows, int targrows,
					 double *totalrows, double *totaldeadrows)
{
	Oid			relid = RelationGetRelid(relation);
	ForeignTable *ft = GetForeignTable(relid);
	TupleDesc	desc = RelationGetDescr(relation);
	EsdConnOptions conn;
	EsdTableOptions table;
	EsdRowMap  *map;
	EsdWalk    *walk;
	EsdBounds	bounds;
	List	   *attnums = NIL;
	MemoryContext row_cxt;
	MemoryContext old;
	ReservoirStateData rstate;
	Datum	   *values = palloc(sizeof(Datum) * desc->natts);
	bool	   *nulls = palloc(sizeof(bool) * desc->natts);
	const char **attrs;
	EsdEvent   *event;
	int			nsampled = 0;
	double		seen = 0;
	double		skip = -1;

	esd_get_table_options(relid, &table);
	esd_get_conn_options(ft->serverid, GetUserId(), &conn);
	for (int i = 0; i < desc->natts; i++)
		if (!TupleDescAttr(desc, i)->attisdropped)
			attnums = lappend_int(attnums, i + 1);
	map = esd_row_map(relation, attnums);
	attrs = palloc(sizeof(char *) * Max(map->ncolumns, 1));
	for (int i = 0; i < map->ncolumns; i++)
		attrs[i] = map->columns[i].attr;
	walk = esd_walk_begin(&conn, &table, attrs, map->ncolumns, CurrentMemoryContext);
	memset(&bounds, 0, sizeof(bounds));
	esd_walk_plan(walk, ESD_ACCESS_WALK, false, &bounds);
	row_cxt = AllocSetContextCreate(CurrentMemoryContext, "event_store_dynamo analyze",
									ALLOCSET_DEFAULT_SIZES);
	reservoir_init_selection_state(&rstate, targrows);

	while ((event = esd_walk_next(walk)) != NULL)
	{
		int			slot = -1;

		if (event->problem)
			continue;

		vacuum_delay_point();
		seen += 1;
		if (nsampled < targrows)
			slot = nsampled++;
		else
		{
			if (skip < 0)
				skip = reservoir_get_next_S(&rstate, seen, targrows);
			if (skip <= 0)
			{
				slot = (int) (targrows * sampler_random_fract(&rstate.randstate));
				heap_freetuple(rows[slot]);
				skip = -1;
			}
			else
				skip -= 1;
		}
		if (slot < 0)
			continue;

		MemoryContextReset(row_cxt);
		old = MemoryContextSwitchTo(row_cxt);
		esd_event_to_row(map, event, table.table_name, values, nulls);
		MemoryContextSwitchTo(old);
		rows[slot] = heap_form_tuple(desc, values, nulls);
	}
	esd_walk_end(walk);
	MemoryContextDelete(row_cxt);

	*totalrows = seen;
	*totaldeadrows = 0;
	ereport(elevel,
			(errmsg("\"%s\": table \"%s\" holds %.0f events, %d rows in sample",
					RelationGetRelationName(relation), table.table_name, seen, nsampled)));
	return nsampled;
}

static bool
esdAnalyzeForeignTable(Relation relation pg_attribute_unused(), AcquireSampleRowsFunc *func, BlockNumber *totalpages)
{
	*func = esdAcquireSampleRows;
	*totalpages = 1;
	return true;
}

/*
 * Events are immutable: UPDATE and DELETE are refused while planning, with
 * a message saying so, before any request is sent.
 */
static void
esdAddForeignUpdateTargets(PlannerInfo *root, Index rtindex pg_attribute_unused(),
						   RangeTblEntry *target_rte pg_attribute_unused(), Relation target_relation)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("cannot %s foreign table \"%s\": events are immutable",
					root->parse->commandType == CMD_DELETE ? "delete from" : "update",
					RelationGetRelationName(target_relation)),
			 errhint("Append an event that records the change instead.")));
}

static int
esdIsForeignRelUpdatable(Relation rel pg_attribute_unused())
{
	return (1 << CMD_INSERT);
}

static List *
esdPlanForeignModify(PlannerInfo *root pg_attribute_unused(), ModifyTable *plan, Index resultRelation pg_attribute_unused(),
					 int subplan_index pg_attribute_unused())
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
					  List *fdw_private pg_attribute_unused(), int subplan_index pg_attribute_unused(), int eflags)
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

/*
 * COPY FROM and tuple routing into a foreign table partition.  A routed
 * partition has no range table entry of its own: the statement's target
 * (the partitioned table) says as whom it runs, which is not the current
 * user when the INSERT goes through a view or a SECURITY DEFINER function.
 */
static void
esdBeginForeignInsert(ModifyTableState *mtstate, ResultRelInfo *rinfo)
{
	EState	   *estate = mtstate->ps.state;
	Index		rti = rinfo->ri_RangeTableIndex;
	Oid			userid = InvalidOid;

	if (rti == 0 && rinfo->ri_RootResultRelInfo != NULL)
		rti = rinfo->ri_RootResultRelInfo->ri_RangeTableIndex;
	if (rti != 0)
		userid = exec_rt_fetch(rti, estate)->checkAsUser;
	rinfo->ri_FdwState = begin_modify(estate, rinfo, OidIsValid(userid) ? userid : GetUserId());
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
esdExecForeignInsert(EState *estate pg_attribute_unused(), ResultRelInfo *rinfo,
					 TupleTableSlot *slot, TupleTableSlot *planSlot pg_attribute_unused())
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
esdExecForeignBatchInsert(EState *estate pg_attribute_unused(), ResultRelInfo *rinfo,
						  TupleTableSlot **slots, TupleTableSlot **planSlots pg_attribute_unused(),
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
esdEndForeignModify(EState *estate pg_attribute_unused(), ResultRelInfo *rinfo pg_attribute_unused())
{
	/* the events stay buffered until the transaction ends */
}

static void
esdEndForeignInsert(EState *estate pg_attribute_unused(), ResultRelInfo *rinfo pg_attribute_unused())
{
}

Datum
event_store_dynamo_handler(PG_FUNCTION_ARGS)
{
	FdwRoutine *routine = makeNode(FdwRoutine);

	(void) fcinfo;				/* no arguments */

	routine->GetForeignRelSize = esdGetForeignRelSize;
	routine->GetForeignPaths = esdGetForeignPaths;
	routine->GetForeignPlan = esdGetForeignPlan;
	routine->BeginForeignScan = esdBeginForeignScan;
	routine->IterateForeignScan = esdIterateForeignScan;
	routine->ReScanForeignScan = esdReScanForeignScan;
	routine->EndForeignScan = esdEndForeignScan;
	routine->ExplainForeignScan = esdExplainForeignScan;
	routine->GetForeignUpperPaths = esdGetForeignUpperPaths;
	routine->AnalyzeForeignTable = esdAnalyzeForeignTable;

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
