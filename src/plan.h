/*-------------------------------------------------------------------------
 *
 * plan.h
 *	  The planner's decisions: which conditions of a query become DynamoDB
 *	  key conditions, and so which access path a scan takes.
 *
 * Knows nothing of HTTP.  Every pushed condition is also checked locally,
 * so what reaches DynamoDB only has to be a superset of the answer.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ESD_PLAN_H
#define ESD_PLAN_H

#include "postgres.h"

#include "nodes/execnodes.h"
#include "nodes/pathnodes.h"

#include "option.h"

/* How a scan reaches the events. */
typedef enum EsdAccess
{
	ESD_ACCESS_WALK,			/* timeBucketIndex, bucket by bucket */
	ESD_ACCESS_ID,				/* Query on the table's key: id = ... */
	ESD_ACCESS_CAUSATION,		/* causationIndex: causationId = ... */
	ESD_ACCESS_STREAM			/* streamIndex: domain, identifier, sequence */
} EsdAccess;

/* What a pushed condition restricts. */
typedef enum EsdTarget
{
	ESD_ON_CREATED,
	ESD_ON_BUCKET,
	ESD_ON_ID,
	ESD_ON_CAUSATION,
	ESD_ON_DOMAIN,
	ESD_ON_IDENTIFIER,
	ESD_ON_SEQUENCE
} EsdTarget;

/* A condition to push: "<target> <strategy> <expression>", or = ANY(array). */
typedef struct EsdCond
{
	EsdTarget	target;
	int			strategy;		/* BTLessStrategyNumber .. BTGreaterStrategyNumber */
	bool		is_array;		/* = ANY (array expression): IN (...) */
	Expr	   *expr;			/* the value side */
} EsdCond;

/* A plan-time choice: the access path and the conditions it uses. */
typedef struct EsdPushdown
{
	EsdAccess	access;
	List	   *conds;			/* EsdCond * */
	bool		descending;		/* walk newest first */
} EsdPushdown;

/* Run-time values of the pushed conditions. */
typedef struct EsdBounds
{
	bool		empty;			/* the conditions contradict: no request at all */
	char	   *created_lo;		/* inclusive, layout form; NULL = open */
	char	   *created_hi;
	List	   *buckets;		/* explicit time_bucket values (char *), or NIL */
	char	   *bucket_lo;		/* time_bucket range, NULL = open */
	bool		bucket_lo_strict;
	char	   *bucket_hi;
	bool		bucket_hi_strict;
	List	   *ids;			/* char *, without EventID# */
	List	   *causations;
	char	   *domain;
	char	   *identifier;
	bool		identifier_null;	/* identifier = NULL never matches */
	int64		seq_lo;
	int64		seq_hi;
} EsdBounds;

/*
 * Find the conditions that can be pushed among clauses (RestrictInfos of
 * the relation, plus the join clauses of a parameterized path), and choose
 * the access path.
 */
extern EsdPushdown *esd_choose_access(PlannerInfo *root, RelOptInfo *baserel,
									  Oid relid, List *clauses);

/* Estimated rows for an access path. */
extern double esd_estimate_rows(const EsdPushdown *pd, double table_rows);

/* Serialize for fdw_private; the expressions go to fdw_exprs. */
extern List *esd_pushdown_to_list(const EsdPushdown *pd, List **exprs);
extern EsdPushdown *esd_pushdown_from_list(List *list, List *exprs);

/* Evaluate the pushed conditions at the start of a scan. */
extern void esd_eval_bounds(const EsdPushdown *pd, List *expr_states,
							ExprContext *econtext, EsdBounds *bounds);

/* A readable account of the pushed conditions, for EXPLAIN. */
extern char *esd_describe_conditions(PlannerInfo *root, const EsdPushdown *pd);

extern const char *esd_access_name(EsdAccess access);

#endif							/* ESD_PLAN_H */
