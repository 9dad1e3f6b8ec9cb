/*-------------------------------------------------------------------------
 *
 * append.c
 *	  The write buffer: events appended in a transaction are numbered in
 *	  their streams at once and sent to DynamoDB (and S3) at commit.
 *
 * Stream numbering and concurrency are the Node adapter's: the first append
 * to a stream in a transaction reads its head (a consistent read), events
 * are numbered head + 1, head + 2, ..., and at commit each stream's head is
 * moved with the condition that it still holds the version read, in the
 * same TransactWriteItems as the Puts of its events (each conditioned on
 * attribute_not_exists(id)).
 *
 * Nothing is sent before the PostgreSQL transaction commits: events wait in
 * a tuplesort (which spills to a temporary file past work_mem, so a COPY of
 * millions of rows keeps memory flat), sorted at commit by table, stream
 * and sequence.  A rolled-back savepoint drops its events and gives its
 * sequence numbers back.  At pre-commit, offloaded bodies go to S3 first,
 * then the events go out in TransactWriteItems of at most 100 actions and
 * 4 MB, up to max_in_flight at once (one continuing a stream waits for the
 * one before it), each with a
 * ClientRequestToken so that a retry after a dropped connection is not
 * applied twice.  A commit that fits one TransactWriteItems is atomic; a
 * larger one is atomic per DynamoDB transaction, and a failure names what
 * was already written.  A conflict fails the commit: 40001 for a stream
 * head that moved, 23505 for a duplicate event id.  A transaction that
 * DynamoDB cancelled for TransactionConflict or for capacity
 * (ThrottlingError, ProvisionedThroughputExceeded) alone
 * wrote nothing and is sent again (start_write says under which token).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <json-c/json.h>

#include "access/htup_details.h"
#include "common/hashfn.h"
#include "access/xact.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "storage/predicate.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"
#include "utils/tuplesort.h"
#include "utils/typcache.h"

/* PostgreSQL's SQL function json_object would clash with json-c's type */
#define json_object pg_sql_json_object
#include "utils/builtins.h"
#undef json_object

#include "append.h"
#include "aws.h"
#include "codec.h"
#include "dynamo.h"
#include "scheduler.h"

#define TXN_MAX_ACTIONS 100
#define TXN_MAX_BYTES (4 * 1024 * 1024 - 64 * 1024)	/* margin for the envelope */

/* columns of the buffered tuples */
enum
{
	COL_RELID, COL_STREAM, COL_SEQ, COL_SUBID, COL_ITEM, COL_S3KEY, COL_S3BODY,
	COL_CHECKID, COL_EPOCH,
	NCOLS
};

typedef struct StreamKey
{
	Oid			relid;
	const char *stream;
} StreamKey;

/* A restore point: the next sequence when a subtransaction first touched the stream. */
typedef struct StreamSave
{
	SubTransactionId subid;
	int64		next;
} StreamSave;

typedef struct StreamState
{
	StreamKey	key;			/* hash key: must be first */
	int64		next;			/* the next sequence to hand out */
	int			nsaves;
	int			maxsaves;
	StreamSave *saves;
} StreamState;

/* An id a row gave, and the subtransaction that gave it. */
typedef struct GivenId
{
	StreamKey	key;			/* relid and id: hash key, must be first */
	SubTransactionId subid;
} GivenId;

/* A foreign table with buffered events, and whom it is written as. */
typedef struct TableRef
{
	Oid			relid;
	Oid			serverid;
	Oid			userid;
	Oid			umid;			/* its user mapping, InvalidOid for none */
	int			epoch;			/* resets of its table in this transaction */
} TableRef;

/* The buffer of the current transaction; NULL cxt when empty. */
static struct
{
	MemoryContext cxt;
	MemoryContext scratch;		/* one append's item text and tuple: reset after it */
	HTAB	   *streams;
	HTAB	   *ids;			/* ids the rows gave, to catch duplicates at once */
	TupleDesc	desc;
	Tuplesortstate *sort;
	int64		nbuffered;
	List	   *tables;			/* TableRef * */
	/* subtransactions that ended: parent of a committed one, or aborted */
	SubTransactionId *parent;
	bool	   *aborted;
	int			nsubids;
} buf;

static bool callbacks_registered = false;

static uint32
stream_key_hash(const void *key, Size keysize pg_attribute_unused())
{
	const StreamKey *k = key;

	return hash_bytes((const unsigned char *) k->stream, strlen(k->stream)) ^ k->relid;
}

static int
stream_key_match(const void *a, const void *b, Size keysize pg_attribute_unused())
{
	const StreamKey *x = a;
	const StreamKey *y = b;

	return (x->relid == y->relid && strcmp(x->stream, y->stream) == 0) ? 0 : 1;
}

static void
reset_buffer(void)
{
	memset(&buf, 0, sizeof(buf));
}


/*
 * The tuplesort's temporary files must belong to the transaction, not to
 * the statement that happens to add or read a row: every tuplesort call
 * runs under the top transaction's resource owner.  (On an error, the
 * (sub)transaction abort sets the resource owner back itself.)
 */
static ResourceOwner
transaction_owner(void)
{
	ResourceOwner save = CurrentResourceOwner;

	CurrentResourceOwner = TopTransactionResourceOwner;
	return save;
}

static void
sort_begin(AttrNumber *keys, Oid *ops, Oid *colls, bool *nulls_first)
{
	ResourceOwner save = transaction_owner();

	buf.sort = tuplesort_begin_heap(buf.desc, 3, keys, ops, colls, nulls_first,
									work_mem, NULL, TUPLESORT_NONE);
	CurrentResourceOwner = save;
}

static void
sort_put(TupleTableSlot *slot)
{
	ResourceOwner save = transaction_owner();

	tuplesort_puttupleslot(buf.sort, slot);
	CurrentResourceOwner = save;
}

static void
sort_perform(void)
{
	ResourceOwner save = transaction_owner();

	tuplesort_performsort(buf.sort);
	CurrentResourceOwner = save;
}

static bool
sort_get(TupleTableSlot *slot)
{
	ResourceOwner save = transaction_owner();
	bool		more = tuplesort_gettupleslot(buf.sort, true, false, slot, NULL);

	CurrentResourceOwner = save;
	return more;
}

static void
sort_end(void)
{
	ResourceOwner save = transaction_owner();

	tuplesort_end(buf.sort);
	buf.sort = NULL;
	CurrentResourceOwner = save;
}

static void xact_callback(XactEvent event, void *arg);
static void subxact_callback(SubXactEvent event, SubTransactionId mySubid,
							 SubTransactionId parentSubid, void *arg);

static void
ensure_buffer(void)
{
	HASHCTL		ctl;
	MemoryContext old;
	AttrNumber	keys[3] = {COL_RELID + 1, COL_STREAM + 1, COL_SEQ + 1};
	Oid			ops[3];
	Oid			colls[3] = {InvalidOid, C_COLLATION_OID, InvalidOid};
	bool		nulls_first[3] = {false, false, false};

	if (!callbacks_registered)
	{
		RegisterXactCallback(xact_callback, NULL);
		RegisterSubXactCallback(subxact_callback, NULL);
		callbacks_registered = true;
	}
	if (buf.cxt != NULL)
		return;

	buf.cxt = AllocSetContextCreate(TopTransactionContext, "event_store_dynamo appends",
									ALLOCSET_DEFAULT_SIZES);
	buf.scratch = AllocSetContextCreate(buf.cxt, "event_store_dynamo append",
										ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(buf.cxt);

	ctl.keysize = sizeof(StreamKey);
	ctl.entrysize = sizeof(StreamState);
	ctl.hash = stream_key_hash;
	ctl.match = stream_key_match;
	ctl.hcxt = buf.cxt;
	buf.streams = hash_create("event_store_dynamo streams", 256, &ctl,
							  HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);

	ctl.entrysize = sizeof(GivenId);
	buf.ids = hash_create("event_store_dynamo given ids", 256, &ctl,
						  HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);

	buf.desc = CreateTemplateTupleDesc(NCOLS);
	TupleDescInitEntry(buf.desc, COL_RELID + 1, "relid", OIDOID, -1, 0);
	TupleDescInitEntry(buf.desc, COL_STREAM + 1, "stream", TEXTOID, -1, 0);
	TupleDescInitEntryCollation(buf.desc, COL_STREAM + 1, C_COLLATION_OID);
	TupleDescInitEntry(buf.desc, COL_SEQ + 1, "seq", INT8OID, -1, 0);
	TupleDescInitEntry(buf.desc, COL_SUBID + 1, "subid", INT4OID, -1, 0);
	TupleDescInitEntry(buf.desc, COL_ITEM + 1, "item", TEXTOID, -1, 0);
	TupleDescInitEntry(buf.desc, COL_S3KEY + 1, "s3key", TEXTOID, -1, 0);
	TupleDescInitEntry(buf.desc, COL_S3BODY + 1, "s3body", TEXTOID, -1, 0);
	TupleDescInitEntry(buf.desc, COL_CHECKID + 1, "checkid", BOOLOID, -1, 0);
	TupleDescInitEntry(buf.desc, COL_EPOCH + 1, "epoch", INT4OID, -1, 0);

	ops[0] = lookup_type_cache(OIDOID, TYPECACHE_LT_OPR)->lt_opr;
	ops[1] = lookup_type_cache(TEXTOID, TYPECACHE_LT_OPR)->lt_opr;
	ops[2] = lookup_type_cache(INT8OID, TYPECACHE_LT_OPR)->lt_opr;
	sort_begin(keys, ops, colls, nulls_first);
	MemoryContextSwitchTo(old);
}

/* Grow a zero-filled array in the buffer's context. */
static void *
grow_zeroed(void *array, int oldn, int newn, Size elemsize)
{
	char	   *grown = MemoryContextAllocZero(buf.cxt, newn * elemsize);

	if (array)
	{
		memcpy(grown, array, oldn * elemsize);
		pfree(array);
	}
	return grown;
}

/* Remember that a subtransaction ended. */
static void
note_subxact(SubTransactionId subid, SubTransactionId parent, bool aborted)
{
	if (subid >= (SubTransactionId) buf.nsubids)
	{
		int			n = Max((int) subid + 1, buf.nsubids * 2);

		buf.parent = grow_zeroed(buf.parent, buf.nsubids, n, sizeof(SubTransactionId));
		buf.aborted = grow_zeroed(buf.aborted, buf.nsubids, n, sizeof(bool));
		buf.nsubids = n;
	}
	buf.parent[subid] = parent;
	buf.aborted[subid] = aborted;
}

/* Is an event buffered in subtransaction subid still part of the transaction? */
static bool
subxact_alive(SubTransactionId subid)
{
	while (subid != TopSubTransactionId)
	{
		if (subid >= (SubTransactionId) buf.nsubids || buf.aborted[subid])
			return subid >= (SubTransactionId) buf.nsubids ? true : false;
		subid = buf.parent[subid];
	}
	return true;
}

/*
 * A savepoint ended: a rolled-back one gives back the sequence numbers its
 * streams handed out; a released one passes its restore points to its
 * parent.
 */
static void
subxact_callback(SubXactEvent event, SubTransactionId mySubid,
				 SubTransactionId parentSubid, void *arg pg_attribute_unused())
{
	HASH_SEQ_STATUS scan;
	StreamState *st;
	bool		aborted;

	if (buf.cxt == NULL)
		return;
	if (event == SUBXACT_EVENT_ABORT_SUB)
		aborted = true;
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
		aborted = false;
	else
		return;

	note_subxact(mySubid, parentSubid, aborted);

	hash_seq_init(&scan, buf.streams);
	while ((st = hash_seq_search(&scan)) != NULL)
	{
		StreamSave *top;

		if (st->nsaves == 0 || st->saves[st->nsaves - 1].subid != mySubid)
			continue;
		top = &st->saves[st->nsaves - 1];
		if (aborted)
		{
			st->next = top->next;
			st->nsaves--;
		}
		else if (st->nsaves >= 2 && st->saves[st->nsaves - 2].subid == parentSubid)
			st->nsaves--;
		else
			top->subid = parentSubid;
	}
}

static StreamState *
lookup_stream(Oid relid, const char *stream, bool *found)
{
	StreamKey	key = {relid, stream};
	StreamState *st = hash_search(buf.streams, &key, HASH_ENTER, found);

	if (!*found)
	{
		st->key.stream = MemoryContextStrdup(buf.cxt, stream);
		st->next = 0;
		st->nsaves = 0;
		st->maxsaves = 0;
		st->saves = NULL;
	}
	return st;
}

static TableRef *
find_table(Oid relid)
{
	ListCell   *lc;

	foreach(lc, buf.tables)
		if (((TableRef *) lfirst(lc))->relid == relid)
			return lfirst(lc);
	return NULL;
}

void
esd_discard_appends(Oid relid)
{
	TableRef   *ref;
	HASH_SEQ_STATUS scan;
	StreamState *st;

	if (buf.cxt == NULL || (ref = find_table(relid)) == NULL)
		return;
	ref->epoch++;
	hash_seq_init(&scan, buf.streams);
	while ((st = hash_seq_search(&scan)) != NULL)
		if (st->key.relid == relid)
			(void) hash_search(buf.streams, &st->key, HASH_REMOVE, NULL);
	{
		GivenId    *g;

		hash_seq_init(&scan, buf.ids);
		while ((g = hash_seq_search(&scan)) != NULL)
			if (g->key.relid == relid)
				(void) hash_search(buf.ids, &g->key, HASH_REMOVE, NULL);
	}
}

/*
 * Note that the transaction appends to the table as the role of conn.  The
 * commit signs a table's events with one role's credentials, so every
 * append to a table in a transaction must get the same credentials: the
 * same role, or roles that share one user mapping (a PUBLIC one, say).  A
 * SECURITY DEFINER trigger appending as its owner, in the transaction of
 * a user with a mapping of his own, is refused here rather than have its
 * events signed as the user (or the user's as the owner).
 */
static void
remember_table(Oid relid, const EsdConnOptions *conn)
{
	ListCell   *lc;
	TableRef   *ref;
	MemoryContext old;

	foreach(lc, buf.tables)
	{
		ref = lfirst(lc);
		if (ref->relid != relid)
			continue;
		if (ref->userid != conn->userid &&
			(!OidIsValid(ref->umid) || ref->umid != conn->umid))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot append to foreign table \"%s\" as role \"%s\": this transaction appends to it as role \"%s\"",
							get_rel_name(relid), GetUserNameFromId(conn->userid, false),
							GetUserNameFromId(ref->userid, false)),
					 errdetail("The events of one foreign table in a transaction are written with one role's AWS credentials, and the two roles have different user mappings."),
					 errhint("Append as each role in a transaction of its own, or give the roles one user mapping.")));
		return;
	}
	old = MemoryContextSwitchTo(buf.cxt);
	ref = palloc(sizeof(TableRef));
	ref->relid = relid;
	ref->serverid = conn->serverid;
	ref->userid = conn->userid;
	ref->umid = conn->umid;
	ref->epoch = 0;
	buf.tables = lappend(buf.tables, ref);
	MemoryContextSwitchTo(old);
}

void
esd_prefetch_heads(Oid relid, const EsdConnOptions *conn,
				   const EsdTableOptions *table, char **streams, int nstreams)
{
	EsdKey	   *keys;
	int			nkeys = 0;
	HTAB	   *found;

	ensure_buffer();
	keys = palloc(sizeof(EsdKey) * Max(nstreams, 1));
	for (int i = 0; i < nstreams; i++)
	{
		StreamKey	key = {relid, streams[i]};
		bool		dup = false;

		if (hash_search(buf.streams, &key, HASH_FIND, NULL) != NULL)
			continue;
		for (int j = 0; j < nkeys && !dup; j++)
			dup = strcmp(keys[j].id, dynamo_head_id(streams[i])) == 0;
		if (dup)
			continue;
		keys[nkeys].id = dynamo_head_id(streams[i]);
		keys[nkeys].created = ESD_HEAD_CREATED;
		nkeys++;
	}
	if (nkeys == 0)
		return;

	found = dynamo_batch_get(conn, table->table_name, keys, nkeys, true, NULL, NULL);
	for (int i = 0; i < nkeys; i++)
	{
		const char *stream = keys[i].id + strlen(ESD_ID_PREFIX "HEAD::");
		json_object *item = dynamo_batch_get_find(found, keys[i].id, ESD_HEAD_CREATED);
		bool		had;
		StreamState *st = lookup_stream(relid, stream, &had);

		st->next = (item ? dynamo_head_version(item, stream, table->table_name) : 0) + 1;
	}
	remember_table(relid, conn);
}

/*
 * An id the row gave must not be given twice in the transaction (unless the
 * first one was rolled back to a savepoint).  Ids already in the table are
 * checked at commit.
 */
static void
check_given_id(Oid relid, const EsdTableOptions *table, const char *id,
			   SubTransactionId subid)
{
	StreamKey	key = {relid, id};
	bool		found;
	GivenId    *e = hash_search(buf.ids, &key, HASH_ENTER, &found);

	if (found && subxact_alive(e->subid))
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("duplicate event id \"%s\" in table \"%s\"", esd_shorten(id), table->table_name),
				 errdetail("This transaction already appended an event with this id.")));
	if (!found)
		e->key.stream = MemoryContextStrdup(buf.cxt, id);
	e->subid = subid;
}

int64
esd_append(Oid relid, const EsdConnOptions *conn, const EsdTableOptions *table,
		   const EsdNewEvent *ev)
{
	StreamState *st;
	bool		found;
	int64		seq;
	SubTransactionId subid = GetCurrentSubTransactionId();
	Datum		values[NCOLS];
	bool		nulls[NCOLS] = {false};
	MemoryContext old;
	TupleTableSlot *slot;

	ensure_buffer();
	remember_table(relid, conn);

	if (ev->id_given)
		check_given_id(relid, table, ev->id, subid);

	/*
	 * A stream is entered once its head is read: a read that fails (inside
	 * a savepoint, say) leaves no half-entered stream behind.
	 */
	{
		StreamKey	key = {relid, ev->stream};

		st = hash_search(buf.streams, &key, HASH_FIND, NULL);
		if (st == NULL)
		{
			int64		head = dynamo_read_head(conn, table->table_name, ev->stream);

			st = lookup_stream(relid, ev->stream, &found);
			st->next = head + 1;
		}
	}

	if (ev->has_expected_sequence && ev->expected_sequence != st->next)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("sequence " INT64_FORMAT " is not the next position of stream \"%s\" in table \"%s\"",
						ev->expected_sequence, esd_shorten(ev->stream), table->table_name),
				 errdetail("The stream is at version " INT64_FORMAT ", so the next sequence is " INT64_FORMAT ".",
						   st->next - 1, st->next),
				 errhint("Leave sequence NULL to append at the end of the stream.")));

	/* a restore point for the innermost open savepoint */
	if (subid != TopSubTransactionId &&
		(st->nsaves == 0 || st->saves[st->nsaves - 1].subid != subid))
	{
		if (st->nsaves == st->maxsaves)
		{
			int			n = Max(4, st->maxsaves * 2);

			st->saves = grow_zeroed(st->saves, st->maxsaves, n, sizeof(StreamSave));
			st->maxsaves = n;
		}
		st->saves[st->nsaves].subid = subid;
		st->saves[st->nsaves].next = st->next;
		st->nsaves++;
	}

	seq = st->next++;

	/*
	 * The event's item text and tuple are built in a scratch context and
	 * handed to the tuplesort, which keeps its own copy (in memory up to
	 * work_mem, then in a temporary file): nothing of the event stays in
	 * memory after this.
	 */
	old = MemoryContextSwitchTo(buf.scratch);
	values[COL_RELID] = ObjectIdGetDatum(relid);
	values[COL_STREAM] = CStringGetTextDatum(ev->stream);
	values[COL_SEQ] = Int64GetDatum(seq);
	values[COL_SUBID] = Int32GetDatum((int32) subid);
	values[COL_ITEM] = CStringGetTextDatum(esd_item_json(ev, seq));
	nulls[COL_S3KEY] = ev->s3_key == NULL;
	values[COL_S3KEY] = ev->s3_key ? CStringGetTextDatum(ev->s3_key) : (Datum) 0;
	nulls[COL_S3BODY] = ev->s3_body == NULL;
	values[COL_S3BODY] = ev->s3_body ? CStringGetTextDatum(ev->s3_body) : (Datum) 0;
	values[COL_CHECKID] = BoolGetDatum(ev->id_given && table->check_given_ids);
	values[COL_EPOCH] = Int32GetDatum(find_table(relid)->epoch);

	slot = MakeSingleTupleTableSlot(buf.desc, &TTSOpsVirtual);
	ExecClearTuple(slot);
	memcpy(slot->tts_values, values, sizeof(values));
	memcpy(slot->tts_isnull, nulls, sizeof(nulls));
	ExecStoreVirtualTuple(slot);
	sort_put(slot);
	ExecDropSingleTupleTableSlot(slot);
	MemoryContextSwitchTo(old);
	MemoryContextReset(buf.scratch);

	buf.nbuffered++;
	return seq;
}

/*
 * Commit: the DynamoDB transactions, assembled in (table, stream, sequence)
 * order and sent through a rolling window of at most max_in_flight.  Each
 * goes through: the look-up of the ids its rows gave, the upload of its
 * offloaded bodies to S3, then the TransactWriteItems itself, which waits
 * for the transaction before it when it continues the same stream.
 */
typedef struct TxnAction
{
	char	   *json;			/* the TransactItems entry */
	bool		is_head;
	const char *stream;
	const char *event_id;		/* put: the item id */
	int64		expected;		/* head: the version it must find */
	int64		version;		/* head: the version it sets */
} TxnAction;

typedef enum TxnState
{
	TXN_CHECKING,				/* looking up the ids the rows gave */
	TXN_UPLOADING,				/* offloaded bodies going to S3 */
	TXN_WAITING,				/* for the transaction it continues a stream of */
	TXN_WRITING,				/* TransactWriteItems under way */
	TXN_DONE
} TxnState;

typedef struct Txn
{
	MemoryContext cxt;			/* the transaction, until it is done */
	TxnState	state;
	TxnAction  *acts;			/* in TransactItems order */
	int			nacts;
	int			nevents;
	size_t		bytes;
	int			open_head;		/* index of the current stream's head update, or -1 */
	const char *last_stream;
	int64		last_seq;
	char	   *token;
	struct Txn *after;			/* must be written first (same stream), or NULL */
	List	   *given_ids;		/* item ids the rows gave: checked against the table first */
	AwsCall   **checks;
	int			nchecks;
	List	   *uploads;		/* AwsCall * */
	AwsCall		call;			/* the TransactWriteItems of the current round */
	int			rounds;			/* rounds sent again after a cancellation */
	int			attempts;		/* attempts of the rounds before the current one */
	bool		maybe_applied;	/* an earlier round may have been applied */
	bool		written;
	bool		in_doubt;		/* its outcome could not be learnt */
} Txn;

typedef struct Flush
{
	const EsdConnOptions *conn;
	const EsdTableOptions *table;
	MemoryContext flush_cxt;
	Txn		   *cur;			/* being assembled */
	Txn		   *prev;			/* the last one assembled */
	List	   *active;			/* Txn *, under way */
	Oid			relid;			/* the foreign table being written */
	int64		written;		/* events already in DynamoDB */
	int			txns_written;
	HTAB	   *written_upto;	/* StreamWritten, by (relid, stream) */
	bool		reported;		/* the error raised says what was written */
	Txn		   *failed;			/* the first that failed: reported once the others are done */
	char	   *failed_id;		/* the given id found in the table, for a failed look-up */
} Flush;

static Txn *
txn_new(Flush *f)
{
	MemoryContext cxt = AllocSetContextCreate(f->flush_cxt, "event_store_dynamo transaction",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	Txn		   *t = palloc0(sizeof(Txn));

	t->cxt = cxt;
	t->acts = palloc(sizeof(TxnAction) * TXN_MAX_ACTIONS);
	t->open_head = -1;
	t->token = esd_uuid_v4();
	MemoryContextSwitchTo(old);
	return t;
}

/* Write the head update of the stream the transaction is on, now that its range is known. */
static void
txn_close_stream(Flush *f, Txn *t)
{
	TxnAction  *h;
	StringInfoData u;

	if (t->open_head < 0)
		return;
	h = &t->acts[t->open_head];
	h->version = t->last_seq;
	initStringInfo(&u);
	appendStringInfoString(&u, "{\"Update\":{\"TableName\":");
	escape_json(&u, f->table->table_name);
	appendStringInfoString(&u, ",\"Key\":{\"id\":{\"S\":");
	escape_json(&u, dynamo_head_id(h->stream));
	appendStringInfo(&u, "},\"created\":{\"S\":\"" ESD_HEAD_CREATED "\"}},"
					 "\"UpdateExpression\":\"SET #v = :new\","
					 "\"ConditionExpression\":\"%s\","
					 "\"ExpressionAttributeNames\":{\"#v\":\"version\"},"
					 "\"ExpressionAttributeValues\":{\":new\":{\"N\":\"" INT64_FORMAT "\"},"
					 "\":expected\":{\"N\":\"" INT64_FORMAT "\"}},"
					 "\"ReturnValuesOnConditionCheckFailure\":\"ALL_OLD\"}}",
					 h->expected == 0 ? "attribute_not_exists(#v) OR #v = :expected" : "#v = :expected",
					 h->version, h->expected);
	h->json = u.data;
	t->open_head = -1;
}

/* How far a stream was written by this commit. */
typedef struct StreamWritten
{
	StreamKey	key;			/* hash key: must be first */
	int64		upto;
} StreamWritten;

/* A DynamoDB transaction went through: note how far each of its streams now goes. */
static void
note_written(Flush *f, Txn *t)
{
	f->written += t->nevents;
	f->txns_written++;
	if (f->written_upto == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(StreamKey);
		ctl.entrysize = sizeof(StreamWritten);
		ctl.hash = stream_key_hash;
		ctl.match = stream_key_match;
		ctl.hcxt = f->flush_cxt;
		f->written_upto = hash_create("event_store_dynamo written streams", 64, &ctl,
									  HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
	}
	for (int i = 0; i < t->nacts; i++)
	{
		StreamKey	key = {f->relid, t->acts[i].stream};
		bool		found;
		StreamWritten *w;

		if (!t->acts[i].is_head)
			continue;
		w = hash_search(f->written_upto, &key, HASH_ENTER, &found);
		if (!found)
		{
			w->key.stream = MemoryContextStrdup(f->flush_cxt, t->acts[i].stream);
			w->upto = 0;
		}
		w->upto = Max(w->upto, t->acts[i].version);
	}
}

#define WRITTEN_STREAMS_LISTED 10

static int
compare_written(const void *a, const void *b)
{
	const StreamWritten *x = *(StreamWritten *const *) a;
	const StreamWritten *y = *(StreamWritten *const *) b;

	if (x->key.relid != y->key.relid)
		return x->key.relid < y->key.relid ? -1 : 1;
	return strcmp(x->key.stream, y->key.stream);
}

/*
 * What a failing commit had already written, for its error detail: how
 * many events, and up to which sequence of each stream (the first few);
 * and whether DynamoDB transactions were left under way, whose outcome is
 * then unknown.
 */
static char *
written_note(Flush *f)
{
	StringInfoData note;
	int64		in_doubt = 0;
	ListCell   *lc;

	initStringInfo(&note);
	foreach(lc, f->active)
	{
		Txn		   *t = lfirst(lc);

		if (t->state == TXN_WRITING && !t->call.done &&
			(t->call.attempts > 0 || t->maybe_applied))
			in_doubt += t->nevents;
	}
	if (f->written == 0)
		appendStringInfoString(&note, "Nothing of this commit was written.");
	else
	{
		HASH_SEQ_STATUS scan;
		StreamWritten *w;
		long		nstreams = f->written_upto ? hash_get_num_entries(f->written_upto) : 0;
		StreamWritten **sorted = palloc(sizeof(StreamWritten *) * Max(nstreams, 1));
		int			n = 0;

		if (f->written_upto)
		{
			hash_seq_init(&scan, f->written_upto);
			while ((w = hash_seq_search(&scan)) != NULL)
				sorted[n++] = w;
		}
		qsort(sorted, n, sizeof(StreamWritten *), compare_written);
		appendStringInfo(&note, "%lld events of this commit, in %d DynamoDB transactions, were written and stay:",
						 (long long) f->written, f->txns_written);
		for (int i = 0; i < n && i < WRITTEN_STREAMS_LISTED; i++)
			appendStringInfo(&note, "%s stream \"%s\" through sequence " INT64_FORMAT,
							 i > 0 ? "," : "", esd_shorten(sorted[i]->key.stream), sorted[i]->upto);
		if (n > WRITTEN_STREAMS_LISTED)
			appendStringInfo(&note, ", and %d more streams", n - WRITTEN_STREAMS_LISTED);
		appendStringInfoChar(&note, '.');
	}
	if (in_doubt > 0)
		appendStringInfo(&note, " %lld more events were sent in DynamoDB transactions whose answer was not awaited: they may have been written too.",
						 (long long) in_doubt);
	f->reported = true;
	return note.data;
}

/*
 * Was a DynamoDB transaction whose answer is in doubt applied?  It was
 * when its first event exists: event ids are unique and a transaction is
 * all or nothing.  A transaction sent more than once (its first answer was
 * lost) and then cancelled may have been applied by the first attempt, if
 * DynamoDB no longer recognised its ClientRequestToken; one whose last
 * attempt got no answer, a 5xx or TransactionInProgressException may have
 * been applied, or may still be.
 */
static bool
already_applied(Flush *f, Txn *t)
{
	const char *first_event = NULL;
	AwsCall		call;
	json_object *count;

	for (int i = 0; i < t->nacts && first_event == NULL; i++)
		if (!t->acts[i].is_head)
			first_event = t->acts[i].event_id;
	if (first_event == NULL)
		return false;

	aws_dynamodb_init(&call, f->conn, "Query", f->table->table_name,
					  dynamo_id_exists_body(f->table->table_name, first_event));
	aws_execute_one(f->conn, &call, NULL);
	return json_object_object_get_ex(call.json, "Count", &count) &&
		json_object_get_int64(count) > 0;
}

/* Raise the error of a cancelled transaction: which stream moved, or which id exists. */
static void
report_cancelled(Flush *f, Txn *t)
{
	json_object *reasons = NULL;
	const char *written = written_note(f);

	/* reasons we cannot read leave the generic error below */
	if (t->call.error_json &&
		json_object_object_get_ex(t->call.error_json, "CancellationReasons", &reasons) &&
		!json_object_is_type(reasons, json_type_array))
		reasons = NULL;

	for (int i = 0; reasons && i < (int) json_object_array_length(reasons) && i < t->nacts; i++)
	{
		json_object *r = json_object_array_get_idx(reasons, i);
		json_object *code;
		json_object *item;
		const char *c;

		if (!json_object_object_get_ex(r, "Code", &code) ||
			!json_object_is_type(code, json_type_string))
			continue;
		c = json_object_get_string(code);
		if (strcmp(c, "None") == 0)
			continue;
		/* a head whose condition failed moved; other reasons are said as they are */
		if (t->acts[i].is_head && strcmp(c, "ConditionalCheckFailed") == 0)
		{
			int64		found_version = -1;

			if (json_object_object_get_ex(r, "Item", &item))
				found_version = dynamo_head_version(item, t->acts[i].stream, f->table->table_name);
			else
				found_version = dynamo_read_head(f->conn, f->table->table_name, t->acts[i].stream);
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("concurrent append to stream \"%s\" of table \"%s\": expected version " INT64_FORMAT ", found " INT64_FORMAT,
							esd_shorten(t->acts[i].stream), f->table->table_name, t->acts[i].expected,
							found_version < 0 ? t->acts[i].expected : found_version),
					 errdetail("DynamoDB cancelled the transaction (%s). %s", c, written),
					 errhint("Another writer appended to the stream since this transaction read it; retry the transaction.")));
		}
		if (strcmp(c, "ValidationError") == 0)
		{
			json_object *m;

			ereport(ERROR,
					(errcode(ERRCODE_FDW_ERROR),
					 errmsg("DynamoDB refused event \"%s\" of stream \"%s\" in table \"%s\"",
							t->acts[i].event_id ? esd_shorten(t->acts[i].event_id + strlen(ESD_ID_PREFIX)) : "",
							esd_shorten(t->acts[i].stream), f->table->table_name),
					 errdetail("%s %s",
							   json_object_object_get_ex(r, "Message", &m) ? json_object_get_string(m) : "ValidationError",
							   written)));
		}
		if (strcmp(c, "ConditionalCheckFailed") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNIQUE_VIOLATION),
					 errmsg("duplicate event id \"%s\" in table \"%s\"",
							esd_shorten(t->acts[i].event_id + strlen(ESD_ID_PREFIX)), f->table->table_name),
					 errdetail("An event with this id already exists. %s", written)));
		/* throttled: capacity; TransactionConflict and the rest: a conflict to retry */
		ereport(ERROR,
				(errcode(strcmp(c, "ThrottlingError") == 0 ||
						 strcmp(c, "ProvisionedThroughputExceeded") == 0
						 ? ERRCODE_INSUFFICIENT_RESOURCES : ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("DynamoDB cancelled the append to stream \"%s\" of table \"%s\": %s",
						esd_shorten(t->acts[i].stream), f->table->table_name, c),
				 t->rounds > 0
				 ? errdetail("DynamoDB cancelled the transaction on each of its %d attempts. %s",
							 t->attempts + t->call.attempts, written)
				 : errdetail("%s", written),
				 errhint("Retry the transaction.")));
	}
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("DynamoDB cancelled an append transaction on table \"%s\"", f->table->table_name),
			 errdetail("%s %s", t->call.error_message ? t->call.error_message : "", written)));
}

/* Raise the failure of a transaction, once the others are done. */
static void
report_failure(Flush *f)
{
	Txn		   *t = f->failed;

	if (f->failed_id)
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("duplicate event id \"%s\" in table \"%s\"",
						esd_shorten(f->failed_id + strlen(ESD_ID_PREFIX)), f->table->table_name),
				 errdetail("An event with this id already exists. %s", written_note(f))));
	for (int i = 0; i < t->nchecks; i++)
		if (t->checks[i]->failed)
			aws_raise(t->checks[i]);
	{
		ListCell   *lc;

		foreach(lc, t->uploads)
			if (((AwsCall *) lfirst(lc))->failed)
				aws_raise(lfirst(lc));
	}
	if (t->call.error_type && strcmp(t->call.error_type, "TransactionCanceledException") == 0)
		report_cancelled(f, t);
	if (t->in_doubt)
	{
		const char *written = written_note(f);

		ereport(ERROR,
				(errcode(ERRCODE_TRANSACTION_RESOLUTION_UNKNOWN),
				 errmsg("could not learn whether DynamoDB applied an append transaction on table \"%s\"",
						f->table->table_name),
				 errdetail("A DynamoDB transaction of %d events, the last sequence " INT64_FORMAT " of stream \"%s\", was sent %d times; the last attempt ended with %s: %s. Its events were not in the table when looked up afterwards, but DynamoDB may still apply them. %s",
						   t->nevents, t->last_seq, esd_shorten(t->last_stream), t->attempts + t->call.attempts,
						   t->call.error_type, t->call.error_message, written),
				 errhint("Read the stream before retrying the transaction.")));
	}
	aws_raise(&t->call);
}

/*
 * The item key is id and created, so attribute_not_exists(id) only stops an
 * event with the same id and the same created.  Ids the rows gave are
 * therefore looked up first (a consistent Query on id): an event with that
 * id and any created is a duplicate.  Generated UUIDs need no look-up.
 */
static void
start_checks(Flush *f, Txn *t)
{
	ListCell   *lc;

	t->checks = palloc(sizeof(AwsCall *) * Max(list_length(t->given_ids), 1));
	foreach(lc, t->given_ids)
	{
		AwsCall    *call = palloc(sizeof(AwsCall));

		aws_dynamodb_init(call, f->conn, "Query", f->table->table_name,
						  dynamo_id_exists_body(f->table->table_name, lfirst(lc)));
		aws_submit(f->conn, call, NULL);
		t->checks[t->nchecks++] = call;
	}
	t->state = TXN_CHECKING;
}

/*
 * Send the transaction: round 0 at once, a round after a cancellation
 * worth retrying once its backoff has passed.
 *
 * Each round has a ClientRequestToken of its own; the attempts of one
 * round (after a lost answer, a 5xx, TransactionInProgressException) all
 * carry the same one.  DynamoDB makes a token idempotent for the request
 * that first used it ("multiple identical calls have the same effect as
 * one single call", for 10 minutes after it completed), and it does not
 * promise that a request with the token of a cancelled call is carried
 * out anew rather than answered as the first was: a retry under the same
 * token could be cancelled again and again for as long as DynamoDB
 * remembers it.  A new token makes the retry a new request, and that is
 * safe because the transaction is conditional: its head update expects
 * the version the stream had, and each Put that its id does not exist.
 * Had an earlier round been applied after all (its answer lost), the new
 * round is cancelled for those conditions, and the look-up of the first
 * event (already_applied) tells that it was written.
 */
static void
start_write(Flush *f, Txn *t, long delay_ms)
{
	StringInfoData body;

	if (t->call.body)
	{
		/* the round before is done and out of the queue: only its text is left */
		t->attempts += t->call.attempts;
		pfree(t->call.body);
		t->token = esd_uuid_v4();
	}
	initStringInfo(&body);
	appendStringInfoString(&body, "{\"TransactItems\":[");
	for (int a = 0; a < t->nacts; a++)
	{
		if (a > 0)
			appendStringInfoChar(&body, ',');
		appendStringInfoString(&body, t->acts[a].json);
	}
	appendStringInfo(&body, "],\"ClientRequestToken\":\"%s\"}", t->token);
	aws_dynamodb_init(&t->call, f->conn, "TransactWriteItems", f->table->table_name, body.data);
	pfree(body.data);
	if (delay_ms > 0)
		t->call.due = GetCurrentTimestamp() + (TimestampTz) delay_ms * 1000;
	aws_submit(f->conn, &t->call, NULL);
	t->state = TXN_WRITING;
}

/*
 * A cancellation that wrote nothing and may go through when sent again:
 * each item's reason is None, TransactionConflict (another transaction
 * was working on the item), ThrottlingError or
 * ProvisionedThroughputExceeded (capacity), and one of them is not None.  ConditionalCheckFailed (a head moved, an id exists),
 * ValidationError and any other reason would be given again.
 */
static bool
cancellation_retryable(const AwsCall *call)
{
	json_object *reasons;
	bool		worth = false;

	if (!call->failed || call->error_type == NULL ||
		strcmp(call->error_type, "TransactionCanceledException") != 0 ||
		call->error_json == NULL ||
		!json_object_object_get_ex(call->error_json, "CancellationReasons", &reasons) ||
		!json_object_is_type(reasons, json_type_array))
		return false;
	for (int i = 0; i < (int) json_object_array_length(reasons); i++)
	{
		json_object *code;
		const char *c;

		if (!json_object_object_get_ex(json_object_array_get_idx(reasons, i), "Code", &code) ||
			!json_object_is_type(code, json_type_string))
			return false;
		c = json_object_get_string(code);
		if (pg_strcasecmp(c, "None") == 0)
			continue;
		if (strcmp(c, "TransactionConflict") != 0 && strcmp(c, "ThrottlingError") != 0 &&
			strcmp(c, "ProvisionedThroughputExceeded") != 0)
			return false;
		worth = true;
	}
	return worth;
}

static void
txn_failed(Flush *f, Txn *t)
{
	if (f->failed == NULL)
		f->failed = t;
	t->state = TXN_DONE;
}

/* Move a transaction on as far as its finished requests allow. */
static void
advance_txn(Flush *f, Txn *t)
{
	MemoryContext old = MemoryContextSwitchTo(t->cxt);

	if (t->state == TXN_CHECKING && aws_all_done(t->checks, t->nchecks))
	{
		for (int i = 0; i < t->nchecks && t->state == TXN_CHECKING; i++)
		{
			json_object *count;

			if (t->checks[i]->failed)
				txn_failed(f, t);
			else if (json_object_object_get_ex(t->checks[i]->json, "Count", &count) &&
					 json_object_get_int64(count) > 0)
			{
				if (f->failed == NULL)
					f->failed_id = MemoryContextStrdup(f->flush_cxt, list_nth(t->given_ids, i));
				txn_failed(f, t);
			}
		}
		if (t->state == TXN_CHECKING)
		{
			ListCell   *lc;

			foreach(lc, t->uploads)
				aws_submit(f->conn, lfirst(lc), NULL);
			t->state = TXN_UPLOADING;
		}
	}
	if (t->state == TXN_UPLOADING)
	{
		ListCell   *lc;
		bool		done = true;

		foreach(lc, t->uploads)
		{
			AwsCall    *call = lfirst(lc);

			done = done && call->done;
			if (call->done && call->failed)
			{
				txn_failed(f, t);
				break;
			}
		}
		if (t->state == TXN_UPLOADING && done)
			t->state = TXN_WAITING;
	}
	if (t->state == TXN_WAITING && t->after == NULL)
	{
		if (f->failed)
			t->state = TXN_DONE;	/* after a failure, nothing more is written */
		else
			start_write(f, t, 0);
	}
	if (t->state == TXN_WRITING && t->call.done)
	{
		/*
		 * An attempt before this one may have been applied: one of an
		 * earlier round, or of this round when it was sent more than once
		 * (its answer lost, a 5xx, in progress).
		 */
		bool		earlier_doubt = t->maybe_applied || t->call.attempts >= 2;
		bool		cancelled = t->call.failed && t->call.error_type &&
			strcmp(t->call.error_type, "TransactionCanceledException") == 0;

		if (!t->call.failed)
		{
			t->written = true;
			note_written(f, t);
			t->state = TXN_DONE;
		}
		else if (f->failed == NULL && t->rounds < f->conn->max_retries &&
				 cancellation_retryable(&t->call))
		{
			/* wrote nothing: again, after the backoff of the retry policy */
			t->maybe_applied = earlier_doubt;
			t->rounds++;
			start_write(f, t, aws_backoff_ms(f->conn, t->rounds));
		}
		else if ((t->call.ambiguous || (cancelled && earlier_doubt)) && already_applied(f, t))
		{
			/*
			 * A cancellation after an attempt that went unanswered may be
			 * that attempt's own doing: it was applied, and DynamoDB no
			 * longer knew its token, or this round has a new one.
			 */
			t->written = true;
			note_written(f, t);
			t->state = TXN_DONE;
		}
		else
		{
			t->in_doubt = t->call.ambiguous;
			txn_failed(f, t);
		}
	}
	MemoryContextSwitchTo(old);
}

/*
 * Advance every transaction under way; wait for a request when none could
 * finish.  A transaction that is done releases the one that waits for it
 * (or, when it failed, that one is not written either) and its memory.
 */
static void
step(Flush *f)
{
	ListCell   *lc;
	bool		finished = false;

	foreach(lc, f->active)
		advance_txn(f, lfirst(lc));

	foreach(lc, f->active)
	{
		Txn		   *t = lfirst(lc);
		ListCell   *other;

		if (t->state != TXN_DONE)
			continue;
		foreach(other, f->active)
		{
			Txn		   *w = lfirst(other);

			if (w->after == t)
			{
				w->after = NULL;
				if (!t->written && w->state != TXN_DONE)
				{
					/* what continues a stream that was not written cannot be written */
					for (int i = 0; i < w->nchecks; i++)
						aws_cancel(w->checks[i]);
					w->state = TXN_DONE;
				}
			}
		}
		if (f->prev == t)
			f->prev = NULL;
		f->active = foreach_delete_current(f->active, lc);
		if (t != f->failed)
			MemoryContextDelete(t->cxt);
		finished = true;
	}
	if (!finished)
		aws_pump(100);
}

/* The transaction being assembled is full or done: start it. */
static void
finish_txn(Flush *f)
{
	Txn		   *t = f->cur;
	MemoryContext old;

	if (t == NULL || t->nacts == 0)
		return;
	old = MemoryContextSwitchTo(t->cxt);
	txn_close_stream(f, t);
	MemoryContextSwitchTo(old);
	f->cur = NULL;

	/* a stream continued from the previous transaction is written after it */
	if (f->prev && strcmp(t->acts[0].stream, f->prev->last_stream) == 0)
		t->after = f->prev;
	f->prev = t;

	old = MemoryContextSwitchTo(f->flush_cxt);
	f->active = lappend(f->active, t);
	MemoryContextSwitchTo(old);
	old = MemoryContextSwitchTo(t->cxt);
	start_checks(f, t);
	MemoryContextSwitchTo(old);

	while (list_length(f->active) >= f->conn->max_in_flight)
		step(f);
}

/* Wait until every transaction under way is done; then report a failure. */
static void
drain(Flush *f)
{
	finish_txn(f);
	while (f->active != NIL)
		step(f);
	f->prev = NULL;
	if (f->failed)
		report_failure(f);
}

/* Add one buffered event to the transaction being assembled. */
static void
add_event(Flush *f, const char *stream, int64 seq, const char *item,
		  const char *s3key, const char *s3body, bool check_id)
{
	bool		new_stream;
	int			actions;
	size_t		bytes = strlen(item) + 64;
	Txn		   *t;
	MemoryContext old;

	new_stream = f->cur == NULL || f->cur->last_stream == NULL ||
		strcmp(f->cur->last_stream, stream) != 0;
	actions = new_stream ? 2 : 1;
	if (new_stream)
		bytes += 300 + 2 * strlen(stream);

	if (f->cur && (f->cur->nacts + actions > TXN_MAX_ACTIONS ||
				   f->cur->bytes + bytes > TXN_MAX_BYTES))
	{
		finish_txn(f);
		new_stream = true;
		actions = 2;
	}
	if (f->cur == NULL)
		f->cur = txn_new(f);
	t = f->cur;
	old = MemoryContextSwitchTo(t->cxt);

	if (new_stream)
	{
		TxnAction  *h = &t->acts[t->nacts];

		txn_close_stream(f, t);
		h->is_head = true;
		h->stream = pstrdup(stream);
		h->event_id = NULL;
		h->expected = seq - 1;
		t->open_head = t->nacts++;
		t->last_stream = h->stream;
	}

	t->acts[t->nacts].is_head = false;
	t->acts[t->nacts].stream = t->last_stream;
	t->acts[t->nacts].event_id = dynamo_item_id_of(item);
	if (check_id)
		t->given_ids = lappend(t->given_ids, (char *) t->acts[t->nacts].event_id);
	t->nacts++;
	t->nevents++;
	t->last_seq = seq;
	t->bytes += bytes;
	{
		StringInfoData put;

		initStringInfo(&put);
		appendStringInfoString(&put, "{\"Put\":{\"TableName\":");
		escape_json(&put, f->table->table_name);
		appendStringInfo(&put, ",\"Item\":%s,\"ConditionExpression\":\"attribute_not_exists(id)\"}}", item);
		t->acts[t->nacts - 1].json = put.data;
	}

	if (s3key)
	{
		AwsCall    *upload = palloc(sizeof(AwsCall));

		/* with the headers of the Node adapter's upload */
		aws_s3_put_event_init(upload, f->conn, f->table->s3_bucket, s3key,
							  s3body, strlen(s3body));
		t->uploads = lappend(t->uploads, upload);
	}
	MemoryContextSwitchTo(old);
}

/*
 * Send every live buffered event, table by table, stream by stream, in
 * sequence order.
 */
static void
send_all(Flush *f)
{
	TupleTableSlot *slot;
	Oid			cur_relid = InvalidOid;
	EsdConnOptions *conn = palloc0(sizeof(EsdConnOptions));
	EsdTableOptions *table = palloc0(sizeof(EsdTableOptions));
	MemoryContext event_cxt = AllocSetContextCreate(CurrentMemoryContext, "event_store_dynamo event",
													ALLOCSET_DEFAULT_SIZES);
	MemoryContext old;

	sort_perform();
	slot = MakeSingleTupleTableSlot(buf.desc, &TTSOpsMinimalTuple);

	/*
	 * One event at a time: its columns are read in event_cxt, reset for the
	 * next; what a DynamoDB transaction keeps of it (the Put, the upload)
	 * lives in that transaction's context, deleted once it is written.
	 */
	old = MemoryContextSwitchTo(event_cxt);
	for (;;)
	{
		bool		isnull;
		Oid			relid;
		SubTransactionId subid;

		CHECK_FOR_INTERRUPTS();
		MemoryContextReset(event_cxt);
		if (!sort_get(slot))
			break;

		subid = (SubTransactionId) DatumGetInt32(slot_getattr(slot, COL_SUBID + 1, &isnull));
		if (!subxact_alive(subid))
			continue;

		relid = DatumGetObjectId(slot_getattr(slot, COL_RELID + 1, &isnull));
		if (DatumGetInt32(slot_getattr(slot, COL_EPOCH + 1, &isnull)) != find_table(relid)->epoch)
			continue;			/* appended before its table was reset */
		if (relid != cur_relid)
		{
			ListCell   *lc;

			drain(f);
			foreach(lc, buf.tables)
			{
				TableRef   *ref = lfirst(lc);

				if (ref->relid == relid)
				{
					/* the options live as long as the commit */
					MemoryContext event_old = MemoryContextSwitchTo(f->flush_cxt);

					esd_get_conn_options(ref->serverid, ref->userid, conn);
					esd_get_table_options(relid, table);
					MemoryContextSwitchTo(event_old);
				}
			}
			f->conn = conn;
			f->table = table;
			f->relid = relid;
			cur_relid = relid;
		}

		{
			Datum		s3key = slot_getattr(slot, COL_S3KEY + 1, &isnull);
			bool		offloaded = !isnull;
			Datum		s3body = slot_getattr(slot, COL_S3BODY + 1, &isnull);

			add_event(f,
					  TextDatumGetCString(slot_getattr(slot, COL_STREAM + 1, &isnull)),
					  DatumGetInt64(slot_getattr(slot, COL_SEQ + 1, &isnull)),
					  TextDatumGetCString(slot_getattr(slot, COL_ITEM + 1, &isnull)),
					  offloaded ? TextDatumGetCString(s3key) : NULL,
					  offloaded ? TextDatumGetCString(s3body) : NULL,
					  DatumGetBool(slot_getattr(slot, COL_CHECKID + 1, &isnull)));
		}
		if (f->failed)
			break;				/* stop assembling: the failure is reported once the rest is done */
	}
	MemoryContextSwitchTo(old);
	drain(f);

	ExecDropSingleTupleTableSlot(slot);
	sort_end();
	MemoryContextDelete(event_cxt);
}

/*
 * Pre-commit: send the buffered events.  Any error once part of the commit
 * went out (a cancel, a timeout, a failure of the client) says what was
 * written, as the commit's own failures do.
 */
static void
flush(void)
{
	Flush	   *f;
	MemoryContext flush_cxt;
	MemoryContext old;

	if (buf.cxt == NULL || buf.nbuffered == 0)
		return;

	/*
	 * CommitTransaction runs the serializable check after the pre-commit
	 * callbacks: a transaction that it would fail must not have sent its
	 * events by then.  Run it now, before anything is sent (running it
	 * again later, as CommitTransaction does, only repeats the check).
	 */
	if (IsolationIsSerializable())
		PreCommit_CheckForSerializationFailure();

	flush_cxt = AllocSetContextCreate(buf.cxt, "event_store_dynamo commit", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(flush_cxt);
	f = palloc0(sizeof(Flush));
	f->flush_cxt = flush_cxt;

	PG_TRY();
	{
		send_all(f);
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		char	   *note;

		if (f->reported || (f->written == 0 && f->active == NIL))
			PG_RE_THROW();
		MemoryContextSwitchTo(flush_cxt);
		edata = CopyErrorData();
		FlushErrorState();
		note = written_note(f);
		edata->detail = edata->detail ? psprintf("%s %s", edata->detail, note) : note;
		ReThrowError(edata);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
}

static void
xact_callback(XactEvent event, void *arg pg_attribute_unused())
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
			flush();
			break;
		case XACT_EVENT_PRE_PREPARE:
			if (buf.cxt != NULL && buf.nbuffered > 0)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot prepare a transaction that has appended events")));
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			/* the memory goes with TopTransactionContext, files with the resource owner */
			reset_buffer();
			break;
	}
}
