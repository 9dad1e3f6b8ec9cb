/*-------------------------------------------------------------------------
 *
 * plan.c
 *	  The planner's decisions: which conditions of a query become DynamoDB
 *	  key conditions, and so which access path a scan takes.
 *
 * A condition can be pushed when one side is a column of the foreign table
 * and the other an expression that does not depend on it and is not
 * volatile (a constant, a parameter, now() - interval '1 day', or a column
 * of an outer relation in a nested loop).  The access paths, most
 * selective first:
 *   - id = / IN: a Query on the table's key per id;
 *   - causation_id = / IN: causationIndex;
 *   - domain = AND identifier = (and a sequence range): streamIndex.  The
 *     planner does not ask DynamoDB whether the table has it (planning and
 *     EXPLAIN send no request): a scan that finds it missing walks the
 *     months instead and sorts the stream by sequence (scan.c);
 *   - otherwise the walk of timeBucketIndex, restricted to the months a
 *     created range or time_bucket = / IN touches, with the created range
 *     as the key condition inside each month.
 * Values are evaluated when the scan starts.  Stored times are whole
 * milliseconds, so a created bound becomes the first (or last) stored time
 * it admits.  Every condition is checked locally as well: the requests only
 * ever need to ask for a superset of the answer.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/stratnum.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_opfamily.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "lib/stringinfo.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parsetree.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/pg_locale.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "plan.h"

static const char *const target_names[] = {
	"created", "timeBucket", "id", "causationId", "domain", "identifier", "sequence"
};

const char *
esd_access_name(EsdAccess access)
{
	switch (access)
	{
		case ESD_ACCESS_ID:
			return "table key (id)";
		case ESD_ACCESS_CAUSATION:
			return "causationIndex";
		case ESD_ACCESS_STREAM:
			return "streamIndex";
		default:
			return "timeBucketIndex";
	}
}

/* Strip casts that do not change the value (varchar to text). */
static Node *
strip_relabel(Node *node)
{
	while (node && IsA(node, RelabelType))
		node = (Node *) ((RelabelType *) node)->arg;
	return node;
}

static int
commute_strategy(int strategy)
{
	switch (strategy)
	{
		case BTLessStrategyNumber:
			return BTGreaterStrategyNumber;
		case BTLessEqualStrategyNumber:
			return BTGreaterEqualStrategyNumber;
		case BTGreaterEqualStrategyNumber:
			return BTLessEqualStrategyNumber;
		case BTGreaterStrategyNumber:
			return BTLessStrategyNumber;
		default:
			return strategy;
	}
}

/*
 * Is this clause "<column> op <value>" on our relation, with a value we can
 * compute before the scan?  Fills cond.
 */
static bool
classify_clause(PlannerInfo *root, RelOptInfo *baserel, Oid relid, Expr *clause,
				EsdCond *cond)
{
	Node	   *left;
	Node	   *right;
	Oid			opno;
	Oid			collid;
	bool		is_array = false;
	Var		   *var;
	Node	   *value;
	bool		var_on_left;
	char	   *attr;
	Oid			coltype;
	Oid			valtype;
	Oid			opfamily;
	int			strategy;

	if (IsA(clause, OpExpr) && list_length(((OpExpr *) clause)->args) == 2)
	{
		OpExpr	   *op = (OpExpr *) clause;

		opno = op->opno;
		collid = op->inputcollid;
		left = strip_relabel(linitial(op->args));
		right = strip_relabel(lsecond(op->args));
	}
	else if (IsA(clause, ScalarArrayOpExpr) && ((ScalarArrayOpExpr *) clause)->useOr)
	{
		ScalarArrayOpExpr *op = (ScalarArrayOpExpr *) clause;

		opno = op->opno;
		collid = op->inputcollid;
		left = strip_relabel(linitial(op->args));
		right = strip_relabel(lsecond(op->args));
		is_array = true;
	}
	else if (IsA(clause, RowCompareExpr))
	{
		/*
		 * (created, id) > ($1, $2), the cursor of a catch-up: the leading
		 * pair bounds created, inclusively (later members may tie).
		 */
		RowCompareExpr *rc = (RowCompareExpr *) clause;
		OpExpr		lead;
		bool		ok;

		if (rc->rctype == ROWCOMPARE_EQ || rc->rctype == ROWCOMPARE_NE)
			return false;
		memset(&lead, 0, sizeof(lead));
		lead.xpr.type = T_OpExpr;
		lead.opno = linitial_oid(rc->opnos);
		lead.inputcollid = linitial_oid(rc->inputcollids);
		lead.args = list_make2(linitial(rc->largs), linitial(rc->rargs));
		ok = classify_clause(root, baserel, relid, (Expr *) &lead, cond);
		if (!ok || cond->target != ESD_ON_CREATED)
			return false;
		if (cond->strategy == BTLessStrategyNumber)
			cond->strategy = BTLessEqualStrategyNumber;
		else if (cond->strategy == BTGreaterStrategyNumber)
			cond->strategy = BTGreaterEqualStrategyNumber;
		return true;
	}
	else
		return false;

	if (IsA(left, Var) && ((Var *) left)->varno == (int) baserel->relid && ((Var *) left)->varlevelsup == 0)
	{
		var = (Var *) left;
		value = right;
		var_on_left = true;
	}
	else if (!is_array && IsA(right, Var) && ((Var *) right)->varno == (int) baserel->relid &&
			 ((Var *) right)->varlevelsup == 0)
	{
		var = (Var *) right;
		value = left;
		var_on_left = false;
	}
	else
		return false;

	if (var->varattno <= 0 ||
		bms_is_member(baserel->relid, pull_varnos(root, value)) ||
		contain_volatile_functions(value) ||
		contain_mutable_functions((Node *) var))
		return false;

	attr = esd_column_attribute_name(relid, var->varattno, get_attname(relid, var->varattno, false));
	coltype = var->vartype;
	valtype = exprType(value);
	if (is_array)
		valtype = get_element_type(valtype);

	if (strcmp(attr, "created") == 0)
	{
		/* a date or a timestamp is compared as the time it stands for in the session's zone */
		if (coltype != TIMESTAMPTZOID || is_array ||
			(valtype != TIMESTAMPTZOID && valtype != TIMESTAMPOID && valtype != DATEOID))
			return false;
		cond->target = ESD_ON_CREATED;
		opfamily = lookup_type_cache(TIMESTAMPTZOID, TYPECACHE_BTREE_OPFAMILY)->btree_opf;
	}
	else if (strcmp(attr, "sequence") == 0)
	{
		if ((coltype != INT8OID && coltype != INT4OID && coltype != INT2OID) ||
			(valtype != INT8OID && valtype != INT4OID && valtype != INT2OID) || is_array)
			return false;
		cond->target = ESD_ON_SEQUENCE;
		opfamily = INTEGER_BTREE_FAM_OID;
	}
	else
	{
		if ((coltype != TEXTOID && coltype != VARCHAROID) || valtype != TEXTOID)
			return false;

		/*
		 * DynamoDB compares strings byte by byte.  Only equality is pushed
		 * for text (and time_bucket ranges under a C collation, below), and
		 * equality under a deterministic collation is bytewise
		 * equality; a nondeterministic one (an ICU collation ignoring case
		 * or accents) finds rows DynamoDB would not, so it stays local.
		 */
		if (OidIsValid(collid) && !get_collation_isdeterministic(collid))
			return false;
		if (strcmp(attr, "timeBucket") == 0)
			cond->target = ESD_ON_BUCKET;
		else if (strcmp(attr, "id") == 0)
			cond->target = ESD_ON_ID;
		else if (strcmp(attr, "causationId") == 0)
			cond->target = ESD_ON_CAUSATION;
		else if (strcmp(attr, "domain") == 0)
			cond->target = ESD_ON_DOMAIN;
		else if (strcmp(attr, "identifier") == 0)
			cond->target = ESD_ON_IDENTIFIER;
		else
			return false;
		opfamily = TEXT_BTREE_FAM_OID;
	}

	strategy = get_op_opfamily_strategy(opno, opfamily);
	if (strategy == 0)
		return false;
	if (!var_on_left)
		strategy = commute_strategy(strategy);
	/*
	 * Text columns only take equality, except time_bucket, whose months are
	 * also walked as a range when the comparison orders text byte by byte
	 * as the walk does; ranges are for created and sequence too.
	 */
	if (strategy != BTEqualStrategyNumber &&
		cond->target != ESD_ON_CREATED && cond->target != ESD_ON_SEQUENCE &&
		!(cond->target == ESD_ON_BUCKET && OidIsValid(collid) && lc_collate_is_c(collid)))
		return false;
	if (is_array && strategy != BTEqualStrategyNumber)
		return false;

	cond->strategy = strategy;
	cond->is_array = is_array;
	cond->expr = (Expr *) value;
	return true;
}

static bool
has_target(List *conds, EsdTarget target, bool equality)
{
	ListCell   *lc;

	foreach(lc, conds)
	{
		EsdCond    *c = lfirst(lc);

		if (c->target == target && (!equality || c->strategy == BTEqualStrategyNumber))
			return true;
	}
	return false;
}

/* Is there a "<target> = value" (not IN) condition? */
static bool
has_single_value(List *conds, EsdTarget target)
{
	ListCell   *lc;

	foreach(lc, conds)
	{
		EsdCond    *c = lfirst(lc);

		if (c->target == target && c->strategy == BTEqualStrategyNumber && !c->is_array)
			return true;
	}
	return false;
}

static List *
keep_targets(List *conds, bool (*keep) (EsdTarget))
{
	List	   *kept = NIL;
	ListCell   *lc;

	foreach(lc, conds)
		if (keep(((EsdCond *) lfirst(lc))->target))
			kept = lappend(kept, lfirst(lc));
	return kept;
}

static bool
for_id(EsdTarget t)
{
	return t == ESD_ON_ID || t == ESD_ON_CREATED;
}

static bool
for_causation(EsdTarget t)
{
	return t == ESD_ON_CAUSATION || t == ESD_ON_CREATED;
}

static bool
for_stream(EsdTarget t)
{
	return t == ESD_ON_DOMAIN || t == ESD_ON_IDENTIFIER || t == ESD_ON_SEQUENCE;
}

static bool
for_walk(EsdTarget t)
{
	return t == ESD_ON_CREATED || t == ESD_ON_BUCKET;
}

EsdPushdown *
esd_choose_access(PlannerInfo *root, RelOptInfo *baserel, Oid relid,
				  List *clauses)
{
	EsdPushdown *pd = palloc0(sizeof(EsdPushdown));
	List	   *conds = NIL;
	ListCell   *lc;

	foreach(lc, clauses)
	{
		Expr	   *clause = lfirst(lc);
		EsdCond		cond;

		if (IsA(clause, RestrictInfo))
			clause = ((RestrictInfo *) clause)->clause;
		if (classify_clause(root, baserel, relid, clause, &cond))
		{
			EsdCond    *c = palloc(sizeof(EsdCond));

			*c = cond;
			conds = lappend(conds, c);
		}
	}

	if (has_target(conds, ESD_ON_ID, true))
	{
		pd->access = ESD_ACCESS_ID;
		pd->conds = keep_targets(conds, for_id);
	}
	else if (has_target(conds, ESD_ON_CAUSATION, true))
	{
		pd->access = ESD_ACCESS_CAUSATION;
		pd->conds = keep_targets(conds, for_causation);
	}
	else if (has_single_value(conds, ESD_ON_DOMAIN) &&
			 has_single_value(conds, ESD_ON_IDENTIFIER))
	{
		pd->access = ESD_ACCESS_STREAM;
		pd->conds = keep_targets(conds, for_stream);
	}
	else
	{
		pd->access = ESD_ACCESS_WALK;
		pd->conds = keep_targets(conds, for_walk);
	}
	return pd;
}

double
esd_estimate_rows(const EsdPushdown *pd, double table_rows)
{
	switch (pd->access)
	{
		case ESD_ACCESS_ID:
			return 1.0;
		case ESD_ACCESS_CAUSATION:
			return 2.0;
		case ESD_ACCESS_STREAM:
			return Max(1.0, Min(50.0, table_rows / 100.0));
		default:
			return table_rows;
	}
}

List *
esd_pushdown_to_list(const EsdPushdown *pd, List **exprs)
{
	List	   *out = list_make2_int(pd->access, pd->descending);
	ListCell   *lc;

	foreach(lc, pd->conds)
	{
		EsdCond    *c = lfirst(lc);

		out = lappend_int(out, c->target);
		out = lappend_int(out, c->strategy);
		out = lappend_int(out, c->is_array);
		*exprs = lappend(*exprs, c->expr);
	}
	return out;
}

EsdPushdown *
esd_pushdown_from_list(List *list, List *exprs)
{
	EsdPushdown *pd = palloc0(sizeof(EsdPushdown));
	int			n = (list_length(list) - 2) / 3;

	pd->access = (EsdAccess) list_nth_int(list, 0);
	pd->descending = list_nth_int(list, 1) != 0;
	for (int i = 0; i < n; i++)
	{
		EsdCond    *c = palloc(sizeof(EsdCond));

		c->target = (EsdTarget) list_nth_int(list, 2 + 3 * i);
		c->strategy = list_nth_int(list, 3 + 3 * i);
		c->is_array = list_nth_int(list, 4 + 3 * i) != 0;
		c->expr = list_nth(exprs, i);
		pd->conds = lappend(pd->conds, c);
	}
	return pd;
}

/*
 * The layout form of a time as an inclusive bound on stored times, which
 * are whole milliseconds: the first millisecond at or after ts (or after it,
 * when strict), or the last one at or before it (or before it).  Sets
 * *beyond when the bound lies past year 9999; NULL means no bound.
 */
static char *
created_bound(TimestampTz ts, bool lower, bool strict, bool *beyond)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int64		rem = ts % 1000;

	*beyond = false;
	if (TIMESTAMP_IS_NOBEGIN(ts))
		return NULL;
	if (TIMESTAMP_IS_NOEND(ts))
	{
		*beyond = true;
		return NULL;
	}
	if (rem < 0)
		rem += 1000;
	if (lower)
		ts = (rem != 0 || strict) ? ts - rem + 1000 : ts;
	else
		ts = (rem == 0 && strict) ? ts - 1000 : ts - rem;

	if (timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0 || tm.tm_year > 9999)
	{
		*beyond = true;
		return NULL;
	}
	if (tm.tm_year < 1)
		return NULL;
	return psprintf("%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
					tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
					(int) (fsec / 1000));
}

/* Narrow a value set: NIL with *restricted false means "any". */
static void
intersect_values(List **set, bool *restricted, List *values)
{
	List	   *out = NIL;
	ListCell   *a;

	if (!*restricted)
	{
		*set = values;
		*restricted = true;
		return;
	}
	foreach(a, *set)
	{
		ListCell   *b;

		foreach(b, values)
			if (strcmp(lfirst(a), lfirst(b)) == 0)
			{
				out = lappend(out, lfirst(a));
				break;
			}
	}
	*set = out;
}

/* The text values of an = or = ANY condition (NULLs never match). */
static List *
text_values(EsdCond *c, Datum value)
{
	List	   *out = NIL;

	if (!c->is_array)
		return list_make1(TextDatumGetCString(value));
	{
		ArrayType  *arr = DatumGetArrayTypeP(value);
		Datum	   *elems;
		bool	   *nulls;
		int			n;

		deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
		for (int i = 0; i < n; i++)
			if (!nulls[i])
			{
				char	   *s = TextDatumGetCString(elems[i]);
				bool		dup = false;
				ListCell   *lc;

				foreach(lc, out)
					dup = dup || strcmp(lfirst(lc), s) == 0;
				if (!dup)
					out = lappend(out, s);
			}
	}
	return out;
}

void
esd_eval_bounds(const EsdPushdown *pd, List *expr_states, ExprContext *econtext,
				EsdBounds *b)
{
	ListCell   *lc;
	int			i = 0;
	bool		buckets_restricted = false;
	bool		ids_restricted = false;
	bool		causations_restricted = false;
	List	   *domains = NIL;
	bool		domains_restricted = false;
	List	   *identifiers = NIL;
	bool		identifiers_restricted = false;

	memset(b, 0, sizeof(*b));
	b->seq_lo = 1;
	b->seq_hi = PG_INT64_MAX;

	foreach(lc, pd->conds)
	{
		EsdCond    *c = lfirst(lc);
		ExprState  *state = list_nth(expr_states, i++);
		bool		isnull;
		Datum		value = ExecEvalExpr(state, econtext, &isnull);

		if (isnull)
		{
			/* a comparison with NULL is never true */
			b->empty = true;
			return;
		}

		switch (c->target)
		{
			case ESD_ON_CREATED:
				{
					TimestampTz ts;
					bool		beyond;
					char	   *bound;

					/* as the comparison itself converts them, in the session's zone */
					if (exprType((Node *) c->expr) == DATEOID)
						value = DirectFunctionCall1(date_timestamptz, value);
					else if (exprType((Node *) c->expr) == TIMESTAMPOID)
						value = DirectFunctionCall1(timestamp_timestamptz, value);
					ts = DatumGetTimestampTz(value);

					if (c->strategy != BTLessStrategyNumber && c->strategy != BTLessEqualStrategyNumber)
					{
						bound = created_bound(ts, true, c->strategy == BTGreaterStrategyNumber, &beyond);
						if (beyond)
							b->empty = true;
						if (bound && (b->created_lo == NULL || strcmp(bound, b->created_lo) > 0))
							b->created_lo = bound;
					}
					if (c->strategy != BTGreaterStrategyNumber && c->strategy != BTGreaterEqualStrategyNumber)
					{
						bound = created_bound(ts, false, c->strategy == BTLessStrategyNumber, &beyond);
						if (bound == NULL && !beyond)
							b->empty = true;	/* before year 1 */
						if (bound && (b->created_hi == NULL || strcmp(bound, b->created_hi) < 0))
							b->created_hi = bound;
					}
					break;
				}
			case ESD_ON_SEQUENCE:
				{
					int64		v = DatumGetInt64(value);

					if (exprType((Node *) c->expr) == INT4OID)
						v = DatumGetInt32(value);
					else if (exprType((Node *) c->expr) == INT2OID)
						v = DatumGetInt16(value);
					switch (c->strategy)
					{
						case BTLessStrategyNumber:
							b->seq_hi = Min(b->seq_hi, v - 1);
							break;
						case BTLessEqualStrategyNumber:
							b->seq_hi = Min(b->seq_hi, v);
							break;
						case BTEqualStrategyNumber:
							b->seq_lo = Max(b->seq_lo, v);
							b->seq_hi = Min(b->seq_hi, v);
							break;
						case BTGreaterEqualStrategyNumber:
							b->seq_lo = Max(b->seq_lo, v);
							break;
						case BTGreaterStrategyNumber:
							b->seq_lo = Max(b->seq_lo, v + 1);
							break;
					}
					break;
				}
			case ESD_ON_BUCKET:
				if (c->strategy == BTEqualStrategyNumber)
					intersect_values(&b->buckets, &buckets_restricted, text_values(c, value));
				else
				{
					char	   *v = TextDatumGetCString(value);
					bool		strict = c->strategy == BTLessStrategyNumber ||
						c->strategy == BTGreaterStrategyNumber;

					if (c->strategy == BTGreaterStrategyNumber ||
						c->strategy == BTGreaterEqualStrategyNumber)
					{
						int			cmp = b->bucket_lo ? strcmp(v, b->bucket_lo) : 1;

						if (cmp > 0 || (cmp == 0 && strict))
						{
							b->bucket_lo = v;
							b->bucket_lo_strict = strict;
						}
					}
					else
					{
						int			cmp = b->bucket_hi ? strcmp(v, b->bucket_hi) : -1;

						if (cmp < 0 || (cmp == 0 && strict))
						{
							b->bucket_hi = v;
							b->bucket_hi_strict = strict;
						}
					}
				}
				break;
			case ESD_ON_ID:
				intersect_values(&b->ids, &ids_restricted, text_values(c, value));
				break;
			case ESD_ON_CAUSATION:
				intersect_values(&b->causations, &causations_restricted, text_values(c, value));
				break;
			case ESD_ON_DOMAIN:
				intersect_values(&domains, &domains_restricted, text_values(c, value));
				break;
			case ESD_ON_IDENTIFIER:
				intersect_values(&identifiers, &identifiers_restricted, text_values(c, value));
				break;
		}
	}

	if ((buckets_restricted && b->buckets == NIL) ||
		(ids_restricted && b->ids == NIL) ||
		(causations_restricted && b->causations == NIL) ||
		(domains_restricted && list_length(domains) != 1) ||
		(identifiers_restricted && list_length(identifiers) != 1) ||
		b->seq_lo > b->seq_hi ||
		(b->created_lo && b->created_hi && strcmp(b->created_lo, b->created_hi) > 0))
		b->empty = true;
	if (domains_restricted && list_length(domains) == 1)
		b->domain = linitial(domains);
	if (identifiers_restricted && list_length(identifiers) == 1)
		b->identifier = linitial(identifiers);
}

/* Render the value side of a condition for EXPLAIN. */
static char *
describe_value(PlannerInfo *root, Expr *expr)
{
	while (IsA(expr, RelabelType))
		expr = ((RelabelType *) expr)->arg;
	if (IsA(expr, Const))
	{
		Const	   *c = (Const *) expr;
		Oid			out;
		bool		varlena;

		if (c->constisnull)
			return pstrdup("NULL");
		if (type_is_array(c->consttype))
		{
			ArrayType  *arr = DatumGetArrayTypeP(c->constvalue);
			Oid			elemtype = ARR_ELEMTYPE(arr);
			int16		typlen;
			bool		byval;
			char		align;
			Datum	   *elems;
			bool	   *nulls;
			int			n;
			StringInfoData buf;

			get_typlenbyvalalign(elemtype, &typlen, &byval, &align);
			deconstruct_array(arr, elemtype, typlen, byval, align, &elems, &nulls, &n);
			getTypeOutputInfo(elemtype, &out, &varlena);
			initStringInfo(&buf);
			for (int i = 0; i < n; i++)
				appendStringInfo(&buf, "%s%s", i > 0 ? ", " : "",
								 nulls[i] ? "NULL" : quote_literal_cstr(OidOutputFunctionCall(out, elems[i])));
			return buf.data;
		}
		getTypeOutputInfo(c->consttype, &out, &varlena);
		return quote_literal_cstr(OidOutputFunctionCall(out, c->constvalue));
	}
	if (IsA(expr, Param))
		return psprintf("$%d", ((Param *) expr)->paramid);
	if (IsA(expr, Var) && ((Var *) expr)->varlevelsup == 0)
	{
		RangeTblEntry *rte = planner_rt_fetch(((Var *) expr)->varno, root);

		return psprintf("%s.%s", rte->eref->aliasname,
						get_rte_attribute_name(rte, ((Var *) expr)->varattno));
	}
	return pstrdup("(expression)");
}

char *
esd_describe_conditions(PlannerInfo *root, const EsdPushdown *pd)
{
	StringInfoData buf;
	ListCell   *lc;
	static const char *const ops[] = {"", "<", "<=", "=", ">=", ">"};

	initStringInfo(&buf);
	foreach(lc, pd->conds)
	{
		EsdCond    *c = lfirst(lc);

		if (buf.len > 0)
			appendStringInfoString(&buf, " AND ");
		appendStringInfo(&buf, "%s %s %s%s%s", target_names[c->target],
						 c->is_array ? "IN" : ops[c->strategy],
						 c->is_array ? "(" : "", describe_value(root, c->expr),
						 c->is_array ? ")" : "");
	}
	return buf.data;
}
