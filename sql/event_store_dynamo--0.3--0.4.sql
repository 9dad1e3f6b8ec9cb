/* event_store_dynamo--0.3--0.4.sql: partitioned projections, and the change feed (src/feed.c, at the end)
 *
 * create_projection(partitions => N) splits a projection's streams into N
 * partitions by a stable hash of the stream (_partition_of: the first 32
 * bits of md5(domain || U+001F || identifier), modulo N), and each
 * partition has a run of its own: its own position (through), lock,
 * stream heads, held events, safety net and counters.  Every stream lies in
 * one partition, so each stream's events are applied in sequence order by
 * one run, exactly once, as before; partitions are applied independently of
 * each other (one background worker each), so order across streams holds
 * within a partition only.
 *
 * The runs of a projection share a generation: projection.run_key (and,
 * during a rebuild, projection.rebuild_key) names the generation, and the
 * run of partition 0 has the generation's key as its own, so a projection of
 * 0.3 is a generation of one partition without any change to its state.
 *
 * Each partition's main pass reads every event of the window (the items say
 * which stream an event is in) and deals only with its own.  Its safety net
 * takes as missing the events that no run of the generation has seen;
 * missing events of another partition are fetched once and remembered
 * (projection_foreign) until their own run deals with them.
 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION event_store_dynamo UPDATE TO '0.4'" to load this file. \quit

/*
 * The partition of a stream: stable across PostgreSQL versions and
 * platforms (md5 of the stream's text, not the server's internal hash).
 */
-- A value quoted in a message: at most 80 bytes, then "...", as the C code cuts them.
CREATE FUNCTION _shorten(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT CASE WHEN pg_catalog.octet_length(value) <= 80 THEN value
              ELSE (SELECT pg_catalog.string_agg(c, '' ORDER BY i)
                      FROM (SELECT i, c, pg_catalog.sum(pg_catalog.octet_length(c)) OVER (ORDER BY i) AS upto
                              FROM pg_catalog.regexp_split_to_table(value, '') WITH ORDINALITY AS t(c, i)) chars
                     WHERE upto <= 80) || '...'
         END
$$;

CREATE FUNCTION _partition_of(domain text, identifier text, partitions integer)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT CASE WHEN partitions <= 1 THEN 0 ELSE
    (('x' || pg_catalog.substr(pg_catalog.md5(coalesce(domain, '') || pg_catalog.chr(31) || coalesce(identifier, '')), 1, 8))::bit(32)::bigint
     % partitions)::integer END
$$;
COMMENT ON FUNCTION _partition_of(text, text, integer) IS
  'the partition (0 .. partitions - 1) of the stream (domain, identifier): the first 32 bits of md5(domain || U+001F || identifier) modulo partitions';

ALTER TABLE projection ADD COLUMN partitions integer NOT NULL DEFAULT 1
  CHECK (partitions BETWEEN 1 AND 64);

ALTER TABLE projection_run ADD COLUMN generation uuid;
ALTER TABLE projection_run ADD COLUMN part integer NOT NULL DEFAULT 0 CHECK (part >= 0);
UPDATE projection_run SET generation = key;
ALTER TABLE projection_run ALTER COLUMN generation SET NOT NULL;
CREATE UNIQUE INDEX projection_run_generation_part ON projection_run (generation, part);

-- events of other partitions that a run's safety net fetched: not fetched again
CREATE TABLE projection_foreign (
  run_key   uuid NOT NULL REFERENCES projection_run ON DELETE CASCADE,
  event_id  text NOT NULL,
  owner     regrole NOT NULL,
  created   timestamptz,
  PRIMARY KEY (run_key, event_id)
);
SELECT pg_catalog.pg_extension_config_dump('projection_foreign', '');
ALTER TABLE projection_foreign ENABLE ROW LEVEL SECURITY;
CREATE POLICY owner_only ON projection_foreign USING (pg_catalog.pg_has_role(owner, 'USAGE'));
GRANT SELECT, INSERT, UPDATE, DELETE ON projection_foreign TO PUBLIC;

/* The runs of a new generation: partition 0 takes the generation's key. */
CREATE FUNCTION _new_runs(p_name text, p_owner regrole, p_generation uuid, p_partitions integer)
RETURNS void
LANGUAGE sql
AS $$
  INSERT INTO event_store_dynamo.projection_run (key, projection, owner, generation, part)
  SELECT CASE WHEN i = 0 THEN p_generation ELSE pg_catalog.gen_random_uuid() END, p_name, p_owner, p_generation, i
    FROM pg_catalog.generate_series(0, p_partitions - 1) i;
$$;

DROP FUNCTION create_projection(text, regclass, regprocedure, regclass[], text[], text[], interval, text, interval, interval);
CREATE FUNCTION create_projection(
  name         text,
  source       regclass,
  handler      regprocedure,
  tables       regclass[] DEFAULT NULL,
  domains      text[] DEFAULT NULL,
  types        text[] DEFAULT NULL,
  settle       interval DEFAULT '5 seconds',
  on_error     text DEFAULT 'stop',
  recheck      interval DEFAULT '5 minutes',
  full_recheck interval DEFAULT '1 hour',
  partitions   integer DEFAULT 1)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
  k uuid := pg_catalog.gen_random_uuid();
  path_before text := pg_catalog.current_setting('search_path');
  handler_text text;
BEGIN
  IF name IS NULL OR source IS NULL OR handler IS NULL THEN
    RAISE EXCEPTION 'name, source and handler must not be null' USING ERRCODE = '22004';
  END IF;
  IF name !~ '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,47}$' THEN
    RAISE EXCEPTION 'invalid projection name "%"', event_store_dynamo._shorten(name)
      USING ERRCODE = '22023', HINT = 'A name has 1 to 48 letters, digits, "_", "." or "-".';
  END IF;
  IF full_recheck IS NOT NULL AND full_recheck <= interval '0' THEN
    RAISE EXCEPTION 'full_recheck must be a positive interval or null' USING ERRCODE = '22023';
  END IF;
  IF partitions IS NULL OR partitions < 1 OR partitions > 64 THEN
    RAISE EXCEPTION 'partitions must be between 1 and 64' USING ERRCODE = '22023';
  END IF;
  PERFORM event_store_dynamo._check_definition(source, handler, tables, settle, recheck, on_error);
  IF event_store_dynamo._projection_owner(name) IS NOT NULL THEN
    RAISE EXCEPTION 'projection "%" already exists', name USING ERRCODE = '42710';
  END IF;
  -- the handler's name with its schema and its argument type's, whatever the caller's search_path
  PERFORM pg_catalog.set_config('search_path', 'pg_catalog', true);
  handler_text := handler::text;
  PERFORM pg_catalog.set_config('search_path', path_before, true);
  INSERT INTO event_store_dynamo.projection
    (name, owner, source, handler, tables, domains, types, settle, recheck, full_recheck, on_error, run_key,
     partitions)
  VALUES (name, current_user::regrole, source, handler_text, tables, domains, types, settle, recheck,
          full_recheck, on_error, k, partitions);
  PERFORM event_store_dynamo._new_runs(name, current_user::regrole, k, partitions);
END
$$;
COMMENT ON FUNCTION create_projection(text, regclass, regprocedure, regclass[], text[], text[], interval, text, interval, interval, integer) IS
  'define a projection: a handler called once per matching event of a foreign event table, in the same transaction as the position; partitions => N applies the streams in N independent partitions';

/*
 * The safety net over [p_from, p_to] for one run: a keys-only walk of the
 * source compared with what the runs of its generation have seen (and hold),
 * and with the other partitions' events this run fetched before; the events
 * missing are fetched by id, those of this run's partition dealt with in
 * created order, the others remembered.  Returns the failure, if any.
 */
CREATE OR REPLACE FUNCTION _recheck(p projection, p_run uuid, p_from timestamptz, p_to timestamptz, p_search_path text,
                                    OUT failed_event jsonb, OUT err_state text, OUT err_message text)
LANGUAGE plpgsql
AS $$
DECLARE
  missing text[];
  evs jsonb;
  ev jsonb;
  r record;
  gen uuid;
  my_part integer;
BEGIN
  SELECT generation, part INTO gen, my_part FROM event_store_dynamo.projection_run WHERE key = p_run;
  -- remembered events that their own run has dealt with, or that fell out of the window
  DELETE FROM event_store_dynamo.projection_foreign f
   WHERE f.run_key = p_run
     AND (f.created < p_from
          OR EXISTS (SELECT 1 FROM event_store_dynamo.projection_run ru
                       JOIN event_store_dynamo.projection_seen s ON s.run_key = ru.key
                      WHERE ru.generation = gen AND s.event_id = f.event_id));
  EXECUTE format(
    'SELECT pg_catalog.array_agg(k.id) FROM (SELECT id FROM %s WHERE created >= $1 AND created <= $2) k '
    'WHERE NOT EXISTS (SELECT 1 FROM event_store_dynamo.projection_run ru '
    '                    JOIN event_store_dynamo.projection_seen s ON s.run_key = ru.key '
    '                   WHERE ru.generation = $3 AND s.event_id = k.id) '
    'AND NOT EXISTS (SELECT 1 FROM event_store_dynamo.projection_run ru '
    '                  JOIN event_store_dynamo.projection_pending pe ON pe.run_key = ru.key '
    '                 WHERE ru.generation = $3 AND pe.event_id = k.id) '
    'AND NOT EXISTS (SELECT 1 FROM event_store_dynamo.projection_foreign f WHERE f.run_key = $4 AND f.event_id = k.id)',
    p.source)
    INTO missing USING p_from, p_to, gen, p_run;
  IF missing IS NULL THEN
    RETURN;
  END IF;
  IF cardinality(missing) <= 25 THEN
    -- a few: one Query on the table's key each
    EXECUTE format(
      'SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(e) ORDER BY e.created, e.sequence, e.id) FROM %s e WHERE e.id = ANY ($1)',
      p.source)
      INTO evs USING missing;
  ELSE
    -- many: the window read again with its items (BatchGetItem, 100 a request), filtered here
    -- (OFFSET 0 keeps the id condition from becoming one Query per id)
    EXECUTE format(
      'SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(e) ORDER BY e.created, e.sequence, e.id) '
      '  FROM (SELECT * FROM %s WHERE created >= $1 AND created <= $2 OFFSET 0) e WHERE e.id = ANY ($3)',
      p.source)
      INTO evs USING p_from, p_to, missing;
  END IF;
  FOR ev IN SELECT value FROM pg_catalog.jsonb_array_elements(coalesce(evs, '[]')) LOOP
    IF event_store_dynamo._partition_of(ev->>'domain', ev->>'identifier', p.partitions) <> my_part THEN
      INSERT INTO event_store_dynamo.projection_foreign VALUES (p_run, ev->>'id', p.owner, (ev->>'created')::timestamptz)
        ON CONFLICT DO NOTHING;
      CONTINUE;
    END IF;
    r := event_store_dynamo._deal_and_release(p, p_run, ev, 'late', p_search_path);
    IF r.outcome = 'failed' THEN
      failed_event := r.failed_event;
      err_state := r.err_state;
      err_message := r.err_message;
      RETURN;
    END IF;
  END LOOP;
END
$$;

-- catch_up and its runs, partition by partition (new signatures)
DROP PROCEDURE catch_up(text, integer);
DROP PROCEDURE _catch_up(text, boolean, integer);

/*
 * The catch-up loop of one run: the given partition of the projection's
 * own generation, or of its rebuild's.  One transaction per batch, each
 * holding the run's row lock, so that two callers never work on one run at
 * once; the main pass deals only with the events of the run's partition.
 */
CREATE PROCEDURE _catch_up(p_name text, p_rebuild boolean, p_batch integer, p_part integer)
LANGUAGE plpgsql
AS $$
DECLARE
  o regrole;
  p event_store_dynamo.projection;
  run event_store_dynamo.projection_run;
  k uuid;
  gen uuid;
  role_before text := pg_catalog.current_setting('role');
  w timestamptz;
  evs jsonb;
  ev jsonb;
  n integer;
  c_min timestamptz;
  c_max timestamptz;
  new_through timestamptz;
  r record;
  f_event jsonb;
  f_state text;
  f_message text;
  first_batch boolean := true;
  done boolean := false;
  stopped boolean;
  search text;
  pos_created timestamptz;
  pos_id text;
BEGIN
  IF p_batch IS NULL OR p_batch < 1 THEN
    RAISE EXCEPTION 'batch_size must be at least 1' USING ERRCODE = '22023';
  END IF;
  WHILE NOT done LOOP
    o := event_store_dynamo._check_owner(p_name);
    PERFORM event_store_dynamo._as_owner(o);
    -- the run's row lock: a second caller waits here, then sees what the first committed
    LOOP
      SELECT * INTO p FROM event_store_dynamo.projection WHERE name = p_name;
      IF NOT FOUND THEN
        RAISE EXCEPTION 'projection "%" does not exist', p_name USING ERRCODE = '42704';
      END IF;
      IF p_part IS NULL OR p_part < 0 OR p_part >= p.partitions THEN
        RAISE EXCEPTION 'projection "%" has no partition %', p_name, p_part USING ERRCODE = '22023',
          DETAIL = format('Its partitions are numbered 0 to %s.', p.partitions - 1);
      END IF;
      gen := CASE WHEN p_rebuild THEN p.rebuild_key ELSE p.run_key END;
      IF gen IS NULL THEN
        RAISE EXCEPTION 'projection "%" has no rebuild under way', p_name USING ERRCODE = '55000';
      END IF;
      SELECT * INTO run FROM event_store_dynamo.projection_run WHERE generation = gen AND part = p_part FOR UPDATE;
      EXIT WHEN FOUND;   -- else a rebuild replaced the runs meanwhile: look again
    END LOOP;
    k := run.key;
    search := CASE WHEN p_rebuild THEN
                pg_catalog.quote_ident(p.rebuild_schema) || ', ' || pg_catalog.current_setting('search_path')
              END;
    w := now() - p.settle;
    stopped := false;
    -- shows the run as running in the projections view while the batch is under way
    PERFORM pg_catalog.pg_advisory_xact_lock(1163084868, pg_catalog.hashtext(k::text));
    UPDATE event_store_dynamo.projection_run SET watermark = w WHERE key = k;

    IF first_batch THEN
      first_batch := false;
      -- the safety net first: late events behind the position, then held streams
      f_event := NULL;
      IF p.full_recheck IS NOT NULL AND run.last_full_recheck <= now() - p.full_recheck
         AND run.through > '-infinity' THEN
        SELECT * INTO f_event, f_state, f_message
          FROM event_store_dynamo._recheck(p, k, '-infinity', run.through, search);
        UPDATE event_store_dynamo.projection_run
           SET full_rechecks = full_rechecks + 1, last_full_recheck = now() WHERE key = k;
      ELSIF run.through > '-infinity' THEN
        SELECT * INTO f_event, f_state, f_message
          FROM event_store_dynamo._recheck(p, k, run.through - p.recheck, run.through, search);
        UPDATE event_store_dynamo.projection_run SET rechecks = rechecks + 1 WHERE key = k;
      END IF;
      IF f_event IS NULL THEN
        SELECT * INTO f_event, f_state, f_message FROM event_store_dynamo._resolve_gaps(p, k, search);
      END IF;
      IF f_event IS NOT NULL THEN
        PERFORM event_store_dynamo._record_failure(k, f_event, f_state, f_message);
        stopped := true;
      END IF;
    END IF;

    IF NOT stopped THEN
      -- the main pass: the next batch of (through, watermark] in created order
      EXECUTE format(
        'SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(e) ORDER BY e.created, e.sequence, e.id), '
        '       pg_catalog.count(*), pg_catalog.min(e.created), pg_catalog.max(e.created) '
        '  FROM (SELECT * FROM %s WHERE created > $1 AND created <= $2 ORDER BY created LIMIT $3) e',
        p.source)
        INTO evs, n, c_min, c_max USING run.through, w, p_batch;
      IF n < p_batch THEN
        new_through := w;
        done := true;
      ELSIF c_min = c_max THEN
        -- a whole batch within one millisecond: take all of that millisecond
        EXECUTE format(
          'SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(e) ORDER BY e.created, e.sequence, e.id) '
          '  FROM %s e WHERE e.created = $1', p.source)
          INTO evs USING c_max;
        new_through := c_max;
      ELSE
        -- the last millisecond may be cut off by the limit: leave it to the next batch
        new_through := c_max - interval '1 microsecond';
      END IF;
      pos_created := run.position_created;
      pos_id := run.position_id;
      FOR ev IN SELECT value FROM pg_catalog.jsonb_array_elements(coalesce(evs, '[]')) LOOP
        EXIT WHEN (ev->>'created')::timestamptz > new_through;
        -- another partition's stream: its own run deals with it
        CONTINUE WHEN p.partitions > 1
          AND event_store_dynamo._partition_of(ev->>'domain', ev->>'identifier', p.partitions) <> p_part;
        r := event_store_dynamo._deal_and_release(p, k, ev, 'main', search);
        IF r.outcome = 'failed' THEN
          PERFORM event_store_dynamo._record_failure(k, r.failed_event, r.err_state, r.err_message);
          new_through := (ev->>'created')::timestamptz - interval '1 microsecond';
          stopped := true;
          EXIT;
        END IF;
        pos_created := (ev->>'created')::timestamptz;
        pos_id := ev->>'id';
      END LOOP;
      UPDATE event_store_dynamo.projection_run
         SET through = greatest(through, new_through), position_created = pos_created, position_id = pos_id
       WHERE key = k;
    END IF;

    IF stopped THEN
      done := true;
    ELSE
      UPDATE event_store_dynamo.projection_run
         SET failed = false, last_error = NULL, last_sqlstate = NULL, failed_event_id = NULL
       WHERE key = k AND failed;
    END IF;
    UPDATE event_store_dynamo.projection_run SET last_catch_up = now() WHERE key = k;
    PERFORM pg_catalog.set_config('role', role_before, true);
    COMMIT;
  END LOOP;
END
$$;



/*
 * Applies every matching event up to the watermark (now() - settle),
 * committing after each batch of at most batch_size events: the given
 * partition only, or (null) every partition in turn.  Call it outside a
 * transaction block.  A handler failure under on_error 'stop' ends that
 * partition's catch-up (its state says failed, with the event and the
 * error) without raising an error; the other partitions go on.
 */
CREATE PROCEDURE catch_up(name text, batch_size integer DEFAULT 500, partition integer DEFAULT NULL)
LANGUAGE plpgsql
AS $$
DECLARE
  o regrole := event_store_dynamo._check_owner(name);
  role_before text := pg_catalog.current_setting('role');
  n integer;
BEGIN
  IF batch_size IS NULL OR batch_size < 1 THEN
    RAISE EXCEPTION 'batch_size must be at least 1' USING ERRCODE = '22023';
  END IF;
  IF partition IS NOT NULL THEN
    CALL event_store_dynamo._catch_up(name, false, batch_size, partition);
    RETURN;
  END IF;
  PERFORM event_store_dynamo._as_owner(o);
  SELECT p.partitions INTO n FROM event_store_dynamo.projection p WHERE p.name = catch_up.name;
  PERFORM pg_catalog.set_config('role', role_before, true);
  FOR i IN 0 .. coalesce(n, 1) - 1 LOOP
    CALL event_store_dynamo._catch_up(name, false, batch_size, i);
  END LOOP;
END
$$;
COMMENT ON PROCEDURE catch_up(text, integer, integer) IS
  'apply every matching event up to the watermark, exactly once, committing batch by batch (one partition, or all in turn)';

/*
 * Applies the dead letters of a projection again (of every partition), in
 * created and stream order, each in a subtransaction of its own: those the
 * handler now takes leave the table; those that fail again stay, with the
 * new error.  Returns how many were applied.
 */
CREATE OR REPLACE FUNCTION retry_dead_letters(name text)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
  o regrole := event_store_dynamo._check_owner(name);
  p event_store_dynamo.projection;
  d record;
  applied bigint := 0;
  st text;
  msg text;
BEGIN
  PERFORM event_store_dynamo._as_owner(o);
  SELECT * INTO p FROM event_store_dynamo.projection pr WHERE pr.name = retry_dead_letters.name;
  PERFORM 1 FROM event_store_dynamo.projection_run WHERE generation = p.run_key ORDER BY part FOR UPDATE;
  FOR d IN
    SELECT dl.* FROM event_store_dynamo.projection_dead_letter dl
      JOIN event_store_dynamo.projection_run ru ON ru.key = dl.run_key
     WHERE ru.generation = p.run_key AND dl.kind = 'dead_letter'
     ORDER BY dl.created, dl.event->>'domain', dl.event->>'identifier', dl.sequence, dl.event_id
  LOOP
    BEGIN
      EXECUTE format('SELECT %s(pg_catalog.jsonb_populate_record(NULL::%s, $1))',
                     p.handler::regprocedure::regproc, p.source)
        USING d.event;
      DELETE FROM event_store_dynamo.projection_dead_letter WHERE run_key = d.run_key AND event_id = d.event_id;
      UPDATE event_store_dynamo.projection_run
         SET events_applied = events_applied + 1, dead_lettered = dead_lettered - 1
       WHERE key = d.run_key;
      applied := applied + 1;
    EXCEPTION WHEN OTHERS THEN
      GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
      UPDATE event_store_dynamo.projection_dead_letter
         SET sqlstate = st, message = msg, failed_at = now(), attempts = attempts + 1
       WHERE run_key = d.run_key AND event_id = d.event_id;
    END;
  END LOOP;
  RETURN applied;
END
$$;

/*
 * Rebuilds the read model without taking it away from readers, as in 0.2,
 * with a run per partition: the new tables are filled by the new
 * generation's runs, partition after partition, then one short transaction
 * switches tables and runs.
 */
CREATE OR REPLACE PROCEDURE rebuild_projection(name text, batch_size integer DEFAULT 500)
LANGUAGE plpgsql
AS $$
DECLARE
  o regrole := event_store_dynamo._check_owner(name);
  p event_store_dynamo.projection;
  role_before text := pg_catalog.current_setting('role');
  sch text;
  k uuid := pg_catalog.gen_random_uuid();
  t regclass;
  tname text;
  tschema text;
  old_key uuid;
  switch_started timestamptz;
  failure text;
BEGIN
  IF batch_size IS NULL OR batch_size < 1 THEN
    RAISE EXCEPTION 'batch_size must be at least 1' USING ERRCODE = '22023';
  END IF;
  PERFORM event_store_dynamo._as_owner(o);
  SELECT * INTO p FROM event_store_dynamo.projection pr WHERE pr.name = rebuild_projection.name FOR NO KEY UPDATE;
  IF p.tables IS NULL OR cardinality(p.tables) = 0 THEN
    RAISE EXCEPTION 'projection "%" has no tables to rebuild', name USING ERRCODE = '55000',
      HINT = 'Give the read model''s tables with create_projection(tables => ...).';
  END IF;
  -- a rebuild interrupted earlier is thrown away
  IF p.rebuild_schema IS NOT NULL THEN
    EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', p.rebuild_schema);
    DELETE FROM event_store_dynamo.projection_run WHERE generation = p.rebuild_key;
  END IF;
  sch := 'esd_rebuild_' || pg_catalog.translate(name, '.-', '__');
  EXECUTE format('CREATE SCHEMA %I', sch);
  FOREACH t IN ARRAY p.tables LOOP
    SELECT c.relname INTO tname FROM pg_catalog.pg_class c WHERE c.oid = t;
    EXECUTE format('CREATE TABLE %I.%I (LIKE %s INCLUDING ALL)', sch, tname, t);
  END LOOP;
  PERFORM event_store_dynamo._new_runs(p.name, p.owner, k, p.partitions);
  UPDATE event_store_dynamo.projection pr SET rebuild_key = k, rebuild_schema = sch
   WHERE pr.name = rebuild_projection.name;
  PERFORM pg_catalog.set_config('role', role_before, true);
  COMMIT;

  FOR i IN 0 .. p.partitions - 1 LOOP
    CALL event_store_dynamo._catch_up(name, true, batch_size, i);
  END LOOP;

  -- the switch: one short transaction
  o := event_store_dynamo._check_owner(name);
  PERFORM event_store_dynamo._as_owner(o);
  SELECT * INTO p FROM event_store_dynamo.projection pr WHERE pr.name = rebuild_projection.name FOR NO KEY UPDATE;
  IF p.rebuild_key IS DISTINCT FROM k THEN
    RAISE EXCEPTION 'the rebuild of projection "%" was replaced by another', name USING ERRCODE = '55000';
  END IF;
  SELECT format('event %s: %s (%s)', event_store_dynamo._shorten(failed_event_id), last_error, last_sqlstate) INTO failure
    FROM event_store_dynamo.projection_run WHERE generation = k AND failed ORDER BY part LIMIT 1;
  IF failure IS NOT NULL THEN
    RAISE EXCEPTION 'the rebuild of projection "%" stopped at a failing event', name USING ERRCODE = '55000',
      DETAIL = failure,
      HINT = 'The old read model stays in place; fix the handler and rebuild again.';
  END IF;
  -- (NO KEY UPDATE above: a catch_up batch holding a run's row may still need a key-share lock
  -- on the projection's row for its foreign keys)
  old_key := p.run_key;
  PERFORM 1 FROM event_store_dynamo.projection_run WHERE generation IN (old_key, k) ORDER BY generation, part FOR UPDATE;
  UPDATE event_store_dynamo.projection pr SET run_key = k, rebuild_key = NULL, rebuild_schema = NULL
   WHERE pr.name = rebuild_projection.name;
  DELETE FROM event_store_dynamo.projection_run WHERE generation = old_key;
  switch_started := pg_catalog.clock_timestamp();
  FOREACH t IN ARRAY p.tables LOOP
    SELECT c.relname, n.nspname INTO tname, tschema
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = t;
    EXECUTE format('LOCK TABLE %I.%I, %I.%I IN ACCESS EXCLUSIVE MODE', tschema, tname, sch, tname);
  END LOOP;
  FOREACH t IN ARRAY p.tables LOOP
    SELECT c.relname, n.nspname INTO tname, tschema
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = t;
    EXECUTE format('DROP TABLE %I.%I', tschema, tname);
    EXECUTE format('ALTER TABLE %I.%I SET SCHEMA %I', sch, tname, tschema);
    EXECUTE format('UPDATE event_store_dynamo.projection pr SET tables = pg_catalog.array_replace(pr.tables, $1, %L::regclass) WHERE pr.name = $2',
                   pg_catalog.quote_ident(tschema) || '.' || pg_catalog.quote_ident(tname))
      USING t, name;
  END LOOP;
  EXECUTE format('DROP SCHEMA %I', sch);
  UPDATE event_store_dynamo.projection pr SET last_switch = pg_catalog.clock_timestamp() - switch_started
   WHERE pr.name = rebuild_projection.name;
  PERFORM pg_catalog.set_config('role', role_before, true);
  COMMIT;
END
$$;

/*
 * One row per partition of each projection: its run's state and counters.
 * The state of a partition is failed (its run stopped at a failing event),
 * rebuilding, running (a catch-up of it is under way) or idle.
 */
CREATE VIEW projection_partitions WITH (security_invoker = true) AS
SELECT p.name, r.part AS partition, p.partitions,
       CASE WHEN r.failed THEN 'failed'
            WHEN p.rebuild_key IS NOT NULL THEN 'rebuilding'
            WHEN EXISTS (
                   SELECT 1 FROM pg_catalog.pg_locks l
                    WHERE l.locktype = 'advisory' AND l.classid = 1163084868::oid
                      AND l.objid = pg_catalog.hashtext(r.key::text)::oid AND l.objsubid = 2
                      AND l.granted) THEN 'running'
            ELSE 'idle' END AS state,
       r.position_created AS position, r.position_id,
       r.through AS checked_through,
       r.watermark,
       CASE WHEN r.through > '-infinity' THEN now() - r.through END AS lag,
       r.events_applied, r.events_filtered, r.late_applied,
       (SELECT count(*) FROM event_store_dynamo.projection_pending pe WHERE pe.run_key = r.key) AS events_held,
       r.gaps_skipped, r.out_of_order, r.skipped, r.dead_lettered,
       r.rechecks, r.full_rechecks, r.stream_reads,
       r.last_error, r.last_sqlstate, r.failed_event_id,
       r.last_catch_up, r.last_full_recheck,
       rb.through AS rebuild_through
  FROM event_store_dynamo.projection p
  JOIN event_store_dynamo.projection_run r ON r.generation = p.run_key
  LEFT JOIN event_store_dynamo.projection_run rb ON rb.generation = p.rebuild_key AND rb.part = r.part;
GRANT SELECT ON projection_partitions TO PUBLIC;

/*
 * One row per projection, its partitions summed up: failed when any
 * partition is, running when a catch-up of any is under way; the position
 * of the partition that got furthest; checked_through, watermark and lag of
 * the one furthest behind; the counters summed; the error of the first
 * failed partition.
 */
CREATE OR REPLACE VIEW projections WITH (security_invoker = true) AS
SELECT p.name, p.source, coalesce(pg_catalog.to_regprocedure(p.handler)::text, p.handler) AS handler, p.owner,
       a.state, a.position, a.position_id, a.checked_through, a.watermark,
       CASE WHEN a.checked_through > '-infinity' THEN now() - a.checked_through END AS lag,
       a.events_applied, a.events_filtered, a.late_applied, a.events_held,
       a.gaps_skipped, a.out_of_order, a.skipped, a.dead_lettered,
       a.rechecks, a.full_rechecks, a.stream_reads,
       a.last_error, a.last_sqlstate, a.failed_event_id,
       a.last_catch_up, a.last_full_recheck,
       p.domains, p.types, p.settle, p.recheck, p.full_recheck, p.on_error, p.tables,
       a.rebuild_through, p.last_switch, p.partitions
  FROM event_store_dynamo.projection p
  CROSS JOIN LATERAL (
    SELECT CASE WHEN pg_catalog.bool_or(pp.state = 'failed') THEN 'failed'
                WHEN pg_catalog.bool_or(pp.state = 'rebuilding') THEN 'rebuilding'
                WHEN pg_catalog.bool_or(pp.state = 'running') THEN 'running'
                ELSE 'idle' END AS state,
           pg_catalog.max(pp.position) AS position,
           (pg_catalog.array_agg(pp.position_id ORDER BY pp.position DESC NULLS LAST, pp.partition))[1] AS position_id,
           pg_catalog.min(pp.checked_through) AS checked_through,
           pg_catalog.min(pp.watermark) AS watermark,
           pg_catalog.sum(pp.events_applied)::bigint AS events_applied,
           pg_catalog.sum(pp.events_filtered)::bigint AS events_filtered,
           pg_catalog.sum(pp.late_applied)::bigint AS late_applied,
           pg_catalog.sum(pp.events_held)::bigint AS events_held,
           pg_catalog.sum(pp.gaps_skipped)::bigint AS gaps_skipped,
           pg_catalog.sum(pp.out_of_order)::bigint AS out_of_order,
           pg_catalog.sum(pp.skipped)::bigint AS skipped,
           pg_catalog.sum(pp.dead_lettered)::bigint AS dead_lettered,
           pg_catalog.sum(pp.rechecks)::bigint AS rechecks,
           pg_catalog.sum(pp.full_rechecks)::bigint AS full_rechecks,
           pg_catalog.sum(pp.stream_reads)::bigint AS stream_reads,
           (pg_catalog.array_agg(pp.last_error ORDER BY pp.partition) FILTER (WHERE pp.state = 'failed'))[1] AS last_error,
           (pg_catalog.array_agg(pp.last_sqlstate ORDER BY pp.partition) FILTER (WHERE pp.state = 'failed'))[1] AS last_sqlstate,
           (pg_catalog.array_agg(pp.failed_event_id ORDER BY pp.partition) FILTER (WHERE pp.state = 'failed'))[1] AS failed_event_id,
           pg_catalog.min(pp.last_catch_up) AS last_catch_up,
           pg_catalog.min(pp.last_full_recheck) AS last_full_recheck,
           pg_catalog.min(pp.rebuild_through) AS rebuild_through
      FROM event_store_dynamo.projection_partitions pp
     WHERE pp.name = p.name) a;

CREATE OR REPLACE VIEW dead_letters WITH (security_invoker = true) AS
SELECT d.projection, d.event_id, d.kind, d.sqlstate, d.message, d.failed_at, d.attempts,
       d.created, d.event->>'domain' AS domain, d.event->>'identifier' AS identifier, d.sequence,
       r.part AS partition
  FROM event_store_dynamo.projection_dead_letter d
  JOIN event_store_dynamo.projection_run r ON r.key = d.run_key
  JOIN event_store_dynamo.projection p ON p.run_key = r.generation;


REVOKE ALL ON PROCEDURE _catch_up(text, boolean, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON PROCEDURE _catch_up(text, boolean, integer, integer) TO PUBLIC;

/*
 * The change feed: a foreign table's DynamoDB Stream (KEYS_ONLY), turned on
 * by enable_change_feed and read by the projection workers between their
 * catch-ups.  The feed only adds: the events its records name are read by
 * id and dealt with as the main pass deals with events (projection_seen
 * keeps each applied once); the index walk stays, and covers whatever the
 * feed misses (an expired or trimmed position, a stream turned off).
 */

-- Whether the role may change the AWS resources behind a foreign table
-- (reset_store's rule: owner of the foreign table and of its server, or
-- superuser).  False for anything that is not a foreign table of ours.
CREATE FUNCTION _may_change_store(rel regclass)
RETURNS boolean
AS 'MODULE_PATHNAME', 'esd_may_change_store'
LANGUAGE C STABLE STRICT;

-- The foreign tables whose stream the workers read.  Everyone may see
-- them; a row is written by enable_change_feed and disable_change_feed,
-- as the caller, whom row-level security holds to the same rule as the
-- functions.
CREATE TABLE change_feed (
  source             regclass PRIMARY KEY,
  table_name         text NOT NULL,
  stream_arn         text NOT NULL,
  view_type          text NOT NULL,
  stream_was_enabled boolean NOT NULL,  -- enabled before enable_change_feed: disable leaves it on
  enabled_by         regrole NOT NULL,
  enabled_at         timestamptz NOT NULL DEFAULT now()
);
SELECT pg_catalog.pg_extension_config_dump('change_feed', '');
ALTER TABLE change_feed ENABLE ROW LEVEL SECURITY;
CREATE POLICY everyone_reads ON change_feed FOR SELECT USING (true);
CREATE POLICY store_changers_insert ON change_feed FOR INSERT
  WITH CHECK (event_store_dynamo._may_change_store(source));
CREATE POLICY store_changers_update ON change_feed FOR UPDATE
  USING (event_store_dynamo._may_change_store(source))
  WITH CHECK (event_store_dynamo._may_change_store(source));
CREATE POLICY store_changers_delete ON change_feed FOR DELETE
  USING (event_store_dynamo._may_change_store(source));
GRANT SELECT, INSERT, UPDATE, DELETE ON change_feed TO PUBLIC;

CREATE FUNCTION enable_change_feed(source regclass)
RETURNS text
AS 'MODULE_PATHNAME', 'esd_enable_change_feed'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION enable_change_feed(regclass) IS
  'turn on the DynamoDB Stream (KEYS_ONLY) of the foreign table''s table, wait until it is ENABLED, and let the projection workers read it; returns the stream''s ARN (owner of the foreign table and of its server, or superuser)';

CREATE FUNCTION disable_change_feed(source regclass)
RETURNS boolean
AS 'MODULE_PATHNAME', 'esd_disable_change_feed'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION disable_change_feed(regclass) IS
  'stop the workers reading the stream and turn it off (unless it was on before enable_change_feed); true if there was a feed';

-- Per projection run: what its worker read from the stream.
CREATE TABLE projection_feed (
  run_key        uuid PRIMARY KEY REFERENCES projection_run ON DELETE CASCADE,
  owner          regrole NOT NULL,
  stream_arn     text NOT NULL,
  records        bigint NOT NULL DEFAULT 0,  -- stream records read
  applied        bigint NOT NULL DEFAULT 0,  -- events the feed applied before the index walk found them
  fallbacks      bigint NOT NULL DEFAULT 0,  -- rounds that left events to the index walk
  last_fallback  text,
  last_read      timestamptz,
  started_at     timestamptz NOT NULL DEFAULT now()
);

-- Per projection run and shard: the sequence number of the last record
-- dealt with, written with the events it led to.
CREATE TABLE projection_feed_shard (
  run_key          uuid NOT NULL REFERENCES projection_run ON DELETE CASCADE,
  shard_id         text NOT NULL,
  owner            regrole NOT NULL,
  stream_arn       text NOT NULL,
  parent_shard_id  text,
  position         text,                  -- NULL: no record read yet
  from_start       boolean NOT NULL,      -- without a position: TRIM_HORIZON (a child shard), else LATEST
  ended            boolean NOT NULL DEFAULT false,  -- read to its end (closed), or given up
  PRIMARY KEY (run_key, shard_id)
);

SELECT pg_catalog.pg_extension_config_dump('projection_feed', '');
SELECT pg_catalog.pg_extension_config_dump('projection_feed_shard', '');
DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['projection_feed', 'projection_feed_shard'] LOOP
    EXECUTE format('ALTER TABLE event_store_dynamo.%I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY owner_only ON event_store_dynamo.%I USING (pg_catalog.pg_has_role(owner, ''USAGE''))', t);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON event_store_dynamo.%I TO PUBLIC', t);
  END LOOP;
END
$$;

/*
 * One round of a projection's feed (called by its first worker, as the
 * owner): the events named by p_ids that no run of the projection has dealt
 * with are read by id and dealt with in created order, each by the run of
 * its stream's partition, under the runs' row locks (taken in partition
 * order); the shards' positions are stored in the same transaction.  An
 * event whose partition is stopped at a failing event (on_error 'stop') is
 * left alone, and then the positions stay: returns false, and the records
 * are read again.
 */
CREATE FUNCTION _feed_apply(p_name text, p_stream_arn text, p_ids text[], p_shards jsonb,
                            p_records bigint, p_fallbacks integer, p_note text)
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
  o regrole := event_store_dynamo._check_owner(p_name);
  role_before text := pg_catalog.current_setting('role');
  p event_store_dynamo.projection;
  run event_store_dynamo.projection_run;
  missing text[];
  evs jsonb;
  ev jsonb;
  r record;
  ev_part integer;
  applied_before bigint;
  n_applied bigint;
  halted boolean := false;
BEGIN
  PERFORM event_store_dynamo._as_owner(o);
  SELECT * INTO p FROM event_store_dynamo.projection WHERE name = p_name;
  PERFORM 1 FROM event_store_dynamo.projection_run WHERE generation = p.run_key ORDER BY part FOR UPDATE;
  SELECT pg_catalog.sum(events_applied) INTO applied_before
    FROM event_store_dynamo.projection_run WHERE generation = p.run_key;
  INSERT INTO event_store_dynamo.projection_feed (run_key, owner, stream_arn)
    VALUES (p.run_key, p.owner, p_stream_arn)
    ON CONFLICT (run_key) DO UPDATE SET stream_arn = excluded.stream_arn;

  SELECT pg_catalog.array_agg(DISTINCT i) INTO missing
    FROM pg_catalog.unnest(p_ids) i
   WHERE NOT EXISTS (SELECT 1 FROM event_store_dynamo.projection_seen s
                       JOIN event_store_dynamo.projection_run pr ON pr.key = s.run_key
                      WHERE pr.generation = p.run_key AND s.event_id = i)
     AND NOT EXISTS (SELECT 1 FROM event_store_dynamo.projection_pending pe
                       JOIN event_store_dynamo.projection_run pr ON pr.key = pe.run_key
                      WHERE pr.generation = p.run_key AND pe.event_id = i);
  IF missing IS NOT NULL THEN
    -- one Query on the table's key per id
    EXECUTE format(
      'SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(e) ORDER BY e.created, e.sequence, e.id) FROM %s e WHERE e.id = ANY ($1)',
      p.source)
      INTO evs USING missing;
    FOR ev IN SELECT value FROM pg_catalog.jsonb_array_elements(coalesce(evs, '[]')) LOOP
      ev_part := event_store_dynamo._partition_of(ev->>'domain', ev->>'identifier', p.partitions);
      SELECT * INTO run FROM event_store_dynamo.projection_run
       WHERE generation = p.run_key AND part = ev_part;
      IF run.failed THEN
        halted := true;
        CONTINUE;
      END IF;
      r := event_store_dynamo._deal_and_release(p, run.key, ev, 'feed', NULL);
      IF r.outcome = 'failed' THEN
        PERFORM event_store_dynamo._record_failure(run.key, r.failed_event, r.err_state, r.err_message);
        halted := true;
      END IF;
    END LOOP;
  END IF;

  -- (the events released from held ones count too)
  SELECT pg_catalog.sum(events_applied) - applied_before INTO n_applied
    FROM event_store_dynamo.projection_run WHERE generation = p.run_key;
  IF NOT halted AND pg_catalog.jsonb_array_length(p_shards) > 0 THEN
    -- a stream that replaced another (the feed turned off and on): the old one's positions go
    DELETE FROM event_store_dynamo.projection_feed_shard
     WHERE run_key = p.run_key AND stream_arn <> p_stream_arn;
    INSERT INTO event_store_dynamo.projection_feed_shard AS s
      (run_key, shard_id, owner, stream_arn, parent_shard_id, position, from_start, ended)
    SELECT p.run_key, x.shard_id, p.owner, p_stream_arn, x.parent, x.position, x.from_start, x.ended
      FROM pg_catalog.jsonb_to_recordset(p_shards)
           AS x(shard_id text, parent text, position text, from_start boolean, ended boolean)
    ON CONFLICT (run_key, shard_id) DO UPDATE
      SET position = excluded.position, from_start = excluded.from_start, ended = excluded.ended,
          stream_arn = excluded.stream_arn;
  END IF;
  UPDATE event_store_dynamo.projection_feed
     SET records = records + p_records, applied = applied + n_applied,
         fallbacks = fallbacks + p_fallbacks,
         last_fallback = coalesce(p_note, last_fallback), last_read = now()
   WHERE run_key = p.run_key;
  PERFORM pg_catalog.set_config('role', role_before, true);
  RETURN NOT halted;
END
$$;

-- The feeds the projections read, with what they did (each role sees its own projections').
CREATE VIEW projection_feeds WITH (security_invoker = true) AS
SELECT p.name AS projection, p.source, f.stream_arn,
       (SELECT pg_catalog.count(*) FROM event_store_dynamo.projection_feed_shard s
         WHERE s.run_key = f.run_key AND s.stream_arn = f.stream_arn AND NOT s.ended) AS open_shards,
       f.records, f.applied, f.fallbacks, f.last_fallback, f.last_read, f.started_at
  FROM event_store_dynamo.projection p
  JOIN event_store_dynamo.projection_feed f ON f.run_key = p.run_key;
GRANT SELECT ON projection_feeds TO PUBLIC;
