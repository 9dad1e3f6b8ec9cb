/* event_store_dynamo--0.4--0.5.sql: changing a projection's partition count; a handler that
 * deadlocks is tried again
 *
 * repartition_projection(name, partitions) gives a projection another
 * number of partitions, while its workers run and events arrive.  In one
 * transaction it takes the projection's row and then the row locks of all
 * its runs in partition order, that is, it waits for the batches under way
 * (a worker's, a catch_up's, the change feed's) and keeps any other from
 * starting: every partition is stopped where it is.  A new generation of
 * runs (one per new partition, partition 0 keyed by the generation, as
 * create_projection makes them) then takes over the old one's state:
 *
 * - through: every new run starts from the least through of the old runs,
 *   the common position behind which every partition has considered every
 *   event.  What the partitions that were further ahead applied after it is
 *   met again, and found seen.
 * - seen: every id the old runs dealt with goes to the new partition 0 (the
 *   safety net and the feed look across the generation); the ids of events
 *   created after the common position, which the main pass of any new
 *   partition reads again, go to every new run, so the main pass finds them
 *   seen whichever partition their stream now lies in.
 * - stream heads, held events and dead letters: to the run of their
 *   stream's new partition, so each stream goes on in sequence order from
 *   where it was.
 * - the change feed's positions stay with the generation's key; the other
 *   partitions' events a run's safety net remembered are forgotten (fetched
 *   again if needed); a partition stopped at a failing event is not failed
 *   any more, and meets that event again at its next catch-up.
 * - counters: each new partition takes the old partition of the same
 *   number's, partition 0 also those of old partitions that are gone, so
 *   the projection's totals stay; positions likewise.
 *
 * The old runs are deleted in the same transaction: a batch that waited for
 * one of their locks finds it gone and looks again (as after a rebuild's
 * switch), so no batch of the old partitioning runs after the commit.
 * Running workers are restarted with the new count at commit.
 *
 * _deal: a handler that hits a deadlock (40P01) or a serialization failure
 * (40001), typically against another partition writing the same rows, no
 * longer counts as a failing event: the error is raised, the batch rolls
 * back whole (the other transaction then goes on), and the worker tries it
 * again after its backoff, whatever on_error says.  on_error is for the
 * event's own errors; these say nothing about the event.
 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION event_store_dynamo UPDATE TO '0.5'" to load this file. \quit

-- _deal as in 0.2, but a deadlock or serialization failure in the handler is raised
CREATE OR REPLACE FUNCTION _deal(p projection, p_run uuid, p_ev jsonb, p_via text, p_search_path text, OUT outcome text,
                      OUT err_state text, OUT err_message text)
LANGUAGE plpgsql
AS $$
DECLARE
  ev_id text := p_ev->>'id';
  dom text := p_ev->>'domain';
  ident text := coalesce(p_ev->>'identifier', '');
  seq bigint := (p_ev->>'sequence')::bigint;
  created timestamptz := (p_ev->>'created')::timestamptz;
  h bigint;
  kind text;
  old_path text;
BEGIN
  IF EXISTS (SELECT 1 FROM event_store_dynamo.projection_seen WHERE run_key = p_run AND event_id = ev_id) THEN
    outcome := 'duplicate';
    RETURN;
  END IF;
  IF p.domains IS NOT NULL AND NOT (dom = ANY (p.domains)) THEN
    INSERT INTO event_store_dynamo.projection_seen VALUES (p_run, ev_id, p.owner, created);
    UPDATE event_store_dynamo.projection_run SET events_filtered = events_filtered + 1 WHERE key = p_run;
    outcome := 'filtered';
    RETURN;
  END IF;

  IF seq IS NOT NULL AND dom IS NOT NULL THEN
    SELECT last_sequence INTO h FROM event_store_dynamo.projection_stream
     WHERE run_key = p_run AND domain = dom AND identifier = ident;
    h := coalesce(h, 0);
    IF seq > h + 1 THEN
      INSERT INTO event_store_dynamo.projection_pending
        (run_key, event_id, owner, domain, identifier, sequence, created, event)
      VALUES (p_run, ev_id, p.owner, dom, ident, seq, created, p_ev)
      ON CONFLICT DO NOTHING;
      IF FOUND THEN
        UPDATE event_store_dynamo.projection_run SET held = held + 1 WHERE key = p_run;
      END IF;
      outcome := 'held';
      RETURN;
    END IF;
    IF seq <= h THEN
      UPDATE event_store_dynamo.projection_run SET out_of_order = out_of_order + 1 WHERE key = p_run;
    END IF;
  END IF;

  outcome := 'applied';
  IF p.types IS NOT NULL AND NOT (p_ev->>'type' = ANY (p.types)) THEN
    outcome := 'filtered';
  ELSE
    BEGIN
      IF p_search_path IS NOT NULL THEN
        old_path := pg_catalog.current_setting('search_path');
        PERFORM pg_catalog.set_config('search_path', p_search_path, true);
      END IF;
      EXECUTE format('SELECT %s(pg_catalog.jsonb_populate_record(NULL::%s, $1))',
                     p.handler::regprocedure::regproc, p.source)
        USING p_ev;
      IF p_search_path IS NOT NULL THEN
        PERFORM pg_catalog.set_config('search_path', old_path, true);
      END IF;
    EXCEPTION WHEN deadlock_detected OR serialization_failure THEN
      -- not the event's fault: the whole batch is rolled back and tried again
      RAISE;
    WHEN OTHERS THEN
      GET STACKED DIAGNOSTICS err_state = RETURNED_SQLSTATE, err_message = MESSAGE_TEXT;
      IF p_search_path IS NOT NULL THEN
        PERFORM pg_catalog.set_config('search_path', old_path, true);
      END IF;
      IF p.on_error = 'stop' THEN
        outcome := 'failed';
        RETURN;
      END IF;
      kind := CASE p.on_error WHEN 'skip' THEN 'skipped' ELSE 'dead_letter' END;
      INSERT INTO event_store_dynamo.projection_dead_letter
        (run_key, projection, event_id, owner, kind, created, sequence, event, sqlstate, message)
      VALUES (p_run, p.name, ev_id, p.owner, kind, created, seq, p_ev, err_state, err_message)
      ON CONFLICT (run_key, event_id) DO UPDATE
        SET sqlstate = excluded.sqlstate, message = excluded.message, failed_at = excluded.failed_at,
            attempts = projection_dead_letter.attempts + 1;
      outcome := kind;
    END;
  END IF;

  INSERT INTO event_store_dynamo.projection_seen VALUES (p_run, ev_id, p.owner, created);
  IF seq IS NOT NULL AND dom IS NOT NULL AND seq > h THEN
    INSERT INTO event_store_dynamo.projection_stream AS s VALUES (p_run, dom, ident, p.owner, seq)
      ON CONFLICT (run_key, domain, identifier) DO UPDATE SET last_sequence = excluded.last_sequence;
  END IF;
  DELETE FROM event_store_dynamo.projection_pending WHERE run_key = p_run AND event_id = ev_id;
  UPDATE event_store_dynamo.projection_run
     SET events_applied = events_applied + (outcome = 'applied')::int,
         events_filtered = events_filtered + (outcome = 'filtered')::int,
         skipped = skipped + (outcome = 'skipped')::int,
         dead_lettered = dead_lettered + (outcome = 'dead_letter')::int,
         late_applied = late_applied + (p_via = 'late' AND outcome = 'applied')::int
   WHERE key = p_run;
END
$$;

CREATE FUNCTION repartition_projection(name text, partitions integer)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
  o regrole := event_store_dynamo._check_owner(name);
  role_before text := pg_catalog.current_setting('role');
  p event_store_dynamo.projection;
  k uuid := pg_catalog.gen_random_uuid();
  old_key uuid;
  common timestamptz;
  n integer := partitions;
  poll interval;
BEGIN
  IF n IS NULL OR n < 1 OR n > 64 THEN
    RAISE EXCEPTION 'partitions must be between 1 and 64' USING ERRCODE = '22023';
  END IF;
  PERFORM event_store_dynamo._as_owner(o);
  SELECT * INTO p FROM event_store_dynamo.projection pr WHERE pr.name = repartition_projection.name
     FOR NO KEY UPDATE;
  IF p.rebuild_key IS NOT NULL THEN
    RAISE EXCEPTION 'projection "%" has a rebuild under way', name USING ERRCODE = '55000',
      HINT = 'Let rebuild_projection finish (or call it again), then change the partitions.';
  END IF;
  IF p.partitions = n THEN
    PERFORM pg_catalog.set_config('role', role_before, true);
    RETURN;
  END IF;
  old_key := p.run_key;
  -- every partition stops where it is: the batches under way commit first, no other starts
  PERFORM 1 FROM event_store_dynamo.projection_run WHERE generation = old_key ORDER BY part FOR UPDATE;
  SELECT pg_catalog.min(through) INTO common FROM event_store_dynamo.projection_run WHERE generation = old_key;
  PERFORM event_store_dynamo._new_runs(p.name, p.owner, k, n);

  -- positions and counters: partition i's from old partition i, and partition 0 those of partitions gone
  UPDATE event_store_dynamo.projection_run nr
     SET through = common,
         position_created = (SELECT r.position_created FROM event_store_dynamo.projection_run r
                              WHERE r.generation = old_key AND r.part = nr.part),
         position_id = (SELECT r.position_id FROM event_store_dynamo.projection_run r
                         WHERE r.generation = old_key AND r.part = nr.part),
         last_catch_up = (SELECT r.last_catch_up FROM event_store_dynamo.projection_run r
                           WHERE r.generation = old_key AND r.part = nr.part),
         events_applied = c.events_applied, events_filtered = c.events_filtered,
         late_applied = c.late_applied, held = c.held, gaps_skipped = c.gaps_skipped,
         out_of_order = c.out_of_order, skipped = c.skipped, dead_lettered = c.dead_lettered,
         rechecks = c.rechecks, full_rechecks = c.full_rechecks, stream_reads = c.stream_reads,
         last_full_recheck = c.last_full_recheck
    FROM (SELECT np.part,
                 pg_catalog.sum(r.events_applied) AS events_applied,
                 pg_catalog.sum(r.events_filtered) AS events_filtered,
                 pg_catalog.sum(r.late_applied) AS late_applied, pg_catalog.sum(r.held) AS held,
                 pg_catalog.sum(r.gaps_skipped) AS gaps_skipped,
                 pg_catalog.sum(r.out_of_order) AS out_of_order, pg_catalog.sum(r.skipped) AS skipped,
                 pg_catalog.sum(r.dead_lettered) AS dead_lettered, pg_catalog.sum(r.rechecks) AS rechecks,
                 pg_catalog.sum(r.full_rechecks) AS full_rechecks,
                 pg_catalog.sum(r.stream_reads) AS stream_reads,
                 pg_catalog.min(r.last_full_recheck) AS last_full_recheck
            FROM pg_catalog.generate_series(0, n - 1) np(part)
            JOIN event_store_dynamo.projection_run r
              ON r.generation = old_key AND (r.part = np.part OR (np.part = 0 AND r.part >= n))
           GROUP BY np.part) c
   WHERE nr.generation = k AND nr.part = c.part;
  UPDATE event_store_dynamo.projection_run nr
     SET through = common,
         last_full_recheck = (SELECT pg_catalog.min(r.last_full_recheck) FROM event_store_dynamo.projection_run r
                               WHERE r.generation = old_key)
   WHERE nr.generation = k AND nr.part >= p.partitions;

  -- seen: all to partition 0; those the main pass reads again (after the common position) to every run
  INSERT INTO event_store_dynamo.projection_seen (run_key, event_id, owner, created)
  SELECT nr.key, s.event_id, s.owner, s.created
    FROM event_store_dynamo.projection_run r
    JOIN event_store_dynamo.projection_seen s ON s.run_key = r.key
    JOIN event_store_dynamo.projection_run nr
      ON nr.generation = k AND (nr.part = 0 OR s.created IS NULL OR s.created >= common)
   WHERE r.generation = old_key
  ON CONFLICT DO NOTHING;

  -- stream heads, held events and dead letters: to their stream's new partition
  UPDATE event_store_dynamo.projection_stream s SET run_key = nr.key
    FROM event_store_dynamo.projection_run r, event_store_dynamo.projection_run nr
   WHERE s.run_key = r.key AND r.generation = old_key
     AND nr.generation = k AND nr.part = event_store_dynamo._partition_of(s.domain, s.identifier, n);
  UPDATE event_store_dynamo.projection_pending pe SET run_key = nr.key
    FROM event_store_dynamo.projection_run r, event_store_dynamo.projection_run nr
   WHERE pe.run_key = r.key AND r.generation = old_key
     AND nr.generation = k AND nr.part = event_store_dynamo._partition_of(pe.domain, pe.identifier, n);
  UPDATE event_store_dynamo.projection_dead_letter d SET run_key = nr.key
    FROM event_store_dynamo.projection_run r, event_store_dynamo.projection_run nr
   WHERE d.run_key = r.key AND r.generation = old_key
     AND nr.generation = k
     AND nr.part = event_store_dynamo._partition_of(d.event->>'domain', d.event->>'identifier', n);

  -- the change feed's state belongs to the generation's key
  UPDATE event_store_dynamo.projection_feed SET run_key = k WHERE run_key = old_key;
  UPDATE event_store_dynamo.projection_feed_shard SET run_key = k WHERE run_key = old_key;

  UPDATE event_store_dynamo.projection pr SET run_key = k, partitions = n
   WHERE pr.name = repartition_projection.name;
  DELETE FROM event_store_dynamo.projection_run WHERE generation = old_key;
  PERFORM pg_catalog.set_config('role', role_before, true);

  -- running: its workers are restarted with the new count at commit
  SELECT r.poll INTO poll FROM event_store_dynamo.projection_runs r WHERE r.projection = repartition_projection.name;
  IF FOUND THEN
    PERFORM event_store_dynamo.start_projection(name, poll);
  END IF;
END
$$;
COMMENT ON FUNCTION repartition_projection(text, integer) IS
  'give the projection another number of partitions (1 to 64): every partition stops where it is, the streams are dealt out anew, exactly once and in stream order (owner only)';
