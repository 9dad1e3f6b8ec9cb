/* event_store_dynamo--0.1--0.2.sql: projections
 *
 * A projection keeps local tables (a read model) current from a foreign event
 * table by calling a handler once per matching event.  Everything here is
 * PL/pgSQL over the foreign table, so that the handler's effects and the
 * projection's bookkeeping commit in one transaction, batch by batch.
 *
 * The design, in the words of the state it keeps (one "run" per projection,
 * a second one while a rebuild is under way):
 *
 * - seen: every event id the run has dealt with (applied, filtered out,
 *   skipped or dead-lettered).  It is written in the same transaction as the
 *   handler's effects, and an event found in it is never handed to the
 *   handler again: that is what makes delivery exactly once, whatever path
 *   found the event and however often.
 * - through: every event visible with created <= through has been
 *   considered.  The main pass reads (through, watermark] in created order,
 *   watermark = now() - settle, batch after batch.
 * - stream_hwm: per stream (domain, identifier), the last sequence dealt
 *   with.  An event whose predecessor has not been dealt with is held in
 *   pending (its row kept as jsonb) and applied right after that
 *   predecessor, so each stream is applied in sequence order even when
 *   created disagrees with sequence (skewed clocks).
 * - The safety net, at the start of every catch_up: a keys-only walk of
 *   [through - recheck, through] compared with seen finds events that became
 *   visible late (index lag, long transactions, backdated writes); they are
 *   fetched by id and applied.  A stream with held events is read by stream
 *   (streamIndex) for the missing sequences; a gap still open after
 *   recheck is given up on (counted), and the events behind it go on.  Every
 *   full_recheck the keys-only walk covers every month.
 *
 * Privileges: the procedures run as the invoker, who must be the projection's
 * owner, a member of it, or a superuser; the handler, the reads of the
 * source and the state changes run as the owner (SET LOCAL ROLE), so a
 * projection never does more than its owner may.  Row-level security keeps
 * each role to the state of its own projections.
 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION event_store_dynamo UPDATE TO '0.2'" to load this file. \quit

CREATE TABLE projection (
  name          text PRIMARY KEY,
  owner         regrole NOT NULL,
  source        regclass NOT NULL,
  handler       text NOT NULL,            -- the regprocedure, schema-qualified, as text: pg_upgrade
                                          -- and pg_dump keep it, and any search_path finds it
  tables        regclass[],
  domains       text[],
  types         text[],
  settle        interval NOT NULL,
  recheck       interval NOT NULL,
  full_recheck  interval,
  on_error      text NOT NULL CHECK (on_error IN ('stop', 'skip', 'dead_letter')),
  run_key       uuid NOT NULL,
  rebuild_key   uuid,
  rebuild_schema text,
  last_switch   interval,                 -- how long the last rebuild's switch held the tables
  created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE projection_run (
  key               uuid PRIMARY KEY,
  projection        text NOT NULL REFERENCES projection ON DELETE CASCADE,
  owner             regrole NOT NULL,
  through           timestamptz NOT NULL DEFAULT '-infinity',
  position_created  timestamptz,
  position_id       text,
  watermark         timestamptz,
  events_applied    bigint NOT NULL DEFAULT 0,
  events_filtered   bigint NOT NULL DEFAULT 0,
  late_applied      bigint NOT NULL DEFAULT 0,
  held              bigint NOT NULL DEFAULT 0,
  gaps_skipped      bigint NOT NULL DEFAULT 0,
  out_of_order      bigint NOT NULL DEFAULT 0,
  skipped           bigint NOT NULL DEFAULT 0,
  dead_lettered     bigint NOT NULL DEFAULT 0,
  rechecks          bigint NOT NULL DEFAULT 0,
  full_rechecks     bigint NOT NULL DEFAULT 0,
  stream_reads      bigint NOT NULL DEFAULT 0,
  failed            boolean NOT NULL DEFAULT false,
  last_error        text,
  last_sqlstate     text,
  failed_event_id   text,
  last_catch_up     timestamptz,
  last_full_recheck timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE projection_seen (
  run_key   uuid NOT NULL REFERENCES projection_run ON DELETE CASCADE,
  event_id  text NOT NULL,
  owner     regrole NOT NULL,
  created   timestamptz,
  PRIMARY KEY (run_key, event_id)
);

CREATE TABLE projection_stream (
  run_key        uuid NOT NULL REFERENCES projection_run ON DELETE CASCADE,
  domain         text NOT NULL,
  identifier     text NOT NULL,           -- '' for the stream without identifier
  owner          regrole NOT NULL,
  last_sequence  bigint NOT NULL,
  PRIMARY KEY (run_key, domain, identifier)
);

CREATE TABLE projection_pending (
  run_key     uuid NOT NULL REFERENCES projection_run ON DELETE CASCADE,
  event_id    text NOT NULL,
  owner       regrole NOT NULL,
  domain      text NOT NULL,
  identifier  text NOT NULL,
  sequence    bigint NOT NULL,
  created     timestamptz,
  event       jsonb NOT NULL,
  held_since  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (run_key, event_id)
);
CREATE INDEX ON projection_pending (run_key, domain, identifier, sequence);

CREATE TABLE projection_dead_letter (
  run_key     uuid NOT NULL REFERENCES projection_run ON DELETE CASCADE,
  projection  text NOT NULL,
  event_id    text NOT NULL,
  owner       regrole NOT NULL,
  kind        text NOT NULL CHECK (kind IN ('skipped', 'dead_letter')),
  created     timestamptz,
  sequence    bigint,
  event       jsonb NOT NULL,
  sqlstate    text NOT NULL,
  message     text NOT NULL,
  failed_at   timestamptz NOT NULL DEFAULT now(),
  attempts    integer NOT NULL DEFAULT 1,
  PRIMARY KEY (run_key, event_id)
);

-- the state survives pg_dump / pg_restore
SELECT pg_catalog.pg_extension_config_dump('projection', '');
SELECT pg_catalog.pg_extension_config_dump('projection_run', '');
SELECT pg_catalog.pg_extension_config_dump('projection_seen', '');
SELECT pg_catalog.pg_extension_config_dump('projection_stream', '');
SELECT pg_catalog.pg_extension_config_dump('projection_pending', '');
SELECT pg_catalog.pg_extension_config_dump('projection_dead_letter', '');

-- Every role may keep projections; each sees and changes only those of roles
-- whose privileges it has (superusers: all).
DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['projection', 'projection_run', 'projection_seen', 'projection_stream',
                           'projection_pending', 'projection_dead_letter']
  LOOP
    EXECUTE format('ALTER TABLE event_store_dynamo.%I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY owner_only ON event_store_dynamo.%I USING (pg_catalog.pg_has_role(owner, ''USAGE''))', t);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON event_store_dynamo.%I TO PUBLIC', t);
  END LOOP;
END
$$;

/*
 * The projection a caller may work on: errors 42704 when there is none of
 * that name, 42501 when the caller is neither its owner, nor a member of the
 * owner, nor a superuser.  Reads the catalog row past row-level security, so
 * that a stranger learns "permission denied" rather than "does not exist".
 */
CREATE FUNCTION _projection_owner(p_name text)
RETURNS regrole
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT owner FROM event_store_dynamo.projection WHERE name = p_name $$;
REVOKE ALL ON FUNCTION _projection_owner(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION _projection_owner(text) TO PUBLIC;

CREATE FUNCTION _check_owner(p_name text)
RETURNS regrole
LANGUAGE plpgsql STABLE
AS $$
DECLARE
  o regrole;
BEGIN
  IF p_name IS NULL THEN
    RAISE EXCEPTION 'projection name must not be null' USING ERRCODE = '22004';
  END IF;
  o := event_store_dynamo._projection_owner(p_name);
  IF o IS NULL THEN
    RAISE EXCEPTION 'projection "%" does not exist', p_name USING ERRCODE = '42704';
  END IF;
  IF NOT pg_catalog.pg_has_role(o, 'MEMBER') THEN
    RAISE EXCEPTION 'must be owner of projection "%"', p_name USING ERRCODE = '42501',
      DETAIL = format('The projection belongs to role %s.', o);
  END IF;
  RETURN o;
END
$$;

/*
 * Become the projection's owner for the rest of the transaction, so that the
 * handler and the source run with its privileges and its user mapping.
 */
CREATE FUNCTION _as_owner(o regrole)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
  IF current_user::regrole <> o THEN
    PERFORM pg_catalog.set_config('role', o::text, true);
  END IF;
END
$$;

/* Validates what create_projection is given; errors with the SQLSTATE of each case. */
CREATE FUNCTION _check_definition(source regclass, handler regprocedure, tables regclass[],
                                  settle interval, recheck interval, on_error text)
RETURNS void
LANGUAGE plpgsql STABLE
AS $$
DECLARE
  fdw name;
  col text;
  rt oid;
  h record;
  t regclass;
BEGIN
  SELECT w.fdwname INTO fdw
    FROM pg_catalog.pg_foreign_table ft
    JOIN pg_catalog.pg_foreign_server s ON s.oid = ft.ftserver
    JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = s.srvfdw
   WHERE ft.ftrelid = source;
  IF fdw IS DISTINCT FROM 'event_store_dynamo' THEN
    RAISE EXCEPTION '"%" is not a foreign table of event_store_dynamo', source
      USING ERRCODE = '42809', HINT = 'A projection reads a foreign table of this extension.';
  END IF;
  FOREACH col IN ARRAY ARRAY['id', 'domain', 'type', 'identifier', 'sequence', 'created'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
                    WHERE attrelid = source AND attname = col AND attnum > 0 AND NOT attisdropped) THEN
      RAISE EXCEPTION 'foreign table "%" has no column "%"', source, col
        USING ERRCODE = '42703',
              HINT = 'A projection needs the columns id, domain, type, identifier, sequence and created.';
    END IF;
  END LOOP;
  IF NOT pg_catalog.has_table_privilege(source, 'SELECT') THEN
    RAISE EXCEPTION 'permission denied for foreign table %', source USING ERRCODE = '42501';
  END IF;

  SELECT reltype INTO rt FROM pg_catalog.pg_class WHERE oid = source;
  SELECT p.prokind, p.pronargs, p.proargtypes INTO h FROM pg_catalog.pg_proc p WHERE p.oid = handler;
  IF h.prokind <> 'f' THEN
    RAISE EXCEPTION 'handler % is not a plain function', handler
      USING ERRCODE = '42809', HINT = 'The handler is a function taking one argument of the source''s row type.';
  END IF;
  IF h.pronargs <> 1 OR h.proargtypes[0] <> rt THEN
    RAISE EXCEPTION 'handler % does not take one argument of type %', handler, rt::regtype
      USING ERRCODE = '42804', HINT = 'The handler is a function taking one argument of the source''s row type.';
  END IF;
  IF NOT pg_catalog.has_function_privilege(handler, 'EXECUTE') THEN
    RAISE EXCEPTION 'permission denied for function %', handler USING ERRCODE = '42501';
  END IF;

  IF tables IS NOT NULL THEN
    FOREACH t IN ARRAY tables LOOP
      IF t IS NULL THEN
        RAISE EXCEPTION 'tables must not contain null' USING ERRCODE = '22004';
      END IF;
      IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class WHERE oid = t AND relkind IN ('r', 'p')) THEN
        RAISE EXCEPTION '"%" is not a table', t USING ERRCODE = '42809';
      END IF;
      IF NOT pg_catalog.pg_has_role((SELECT relowner FROM pg_catalog.pg_class WHERE oid = t), 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table %', t USING ERRCODE = '42501',
          DETAIL = 'A rebuild replaces the read model''s tables.';
      END IF;
    END LOOP;
  END IF;

  IF settle IS NULL OR settle < interval '0' THEN
    RAISE EXCEPTION 'settle must be an interval of zero or more' USING ERRCODE = '22023';
  END IF;
  IF recheck IS NULL OR recheck < interval '0' THEN
    RAISE EXCEPTION 'recheck must be an interval of zero or more' USING ERRCODE = '22023';
  END IF;
  IF on_error IS NULL OR on_error NOT IN ('stop', 'skip', 'dead_letter') THEN
    RAISE EXCEPTION 'invalid on_error "%"', on_error
      USING ERRCODE = '22023', HINT = 'Valid values are stop, skip and dead_letter.';
  END IF;
END
$$;

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
  full_recheck interval DEFAULT '1 hour')
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
    RAISE EXCEPTION 'invalid projection name "%"', name
      USING ERRCODE = '22023', HINT = 'A name has 1 to 48 letters, digits, "_", "." or "-".';
  END IF;
  IF full_recheck IS NOT NULL AND full_recheck <= interval '0' THEN
    RAISE EXCEPTION 'full_recheck must be a positive interval or null' USING ERRCODE = '22023';
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
    (name, owner, source, handler, tables, domains, types, settle, recheck, full_recheck, on_error, run_key)
  VALUES (name, current_user::regrole, source, handler_text, tables, domains, types, settle, recheck,
          full_recheck, on_error, k);
  INSERT INTO event_store_dynamo.projection_run (key, projection, owner) VALUES (k, name, current_user::regrole);
END
$$;
COMMENT ON FUNCTION create_projection(text, regclass, regprocedure, regclass[], text[], text[], interval, text, interval, interval) IS
  'define a projection: a handler called once per matching event of a foreign event table, in the same transaction as the position';

/*
 * Deals with one event of a run: returns what happened to it.
 *   duplicate  already dealt with (seen): nothing done
 *   filtered   outside the domains or types: recorded, no handler call
 *   held       its stream's previous event has not been dealt with yet: kept in pending
 *   applied    the handler ran (or the event was skipped / dead-lettered, see the run's counters)
 *   failed     the handler failed and on_error is stop: nothing recorded, the error is in
 *              p_error (sqlstate, message)
 * p_via says who found the event: main (the main pass), late (the safety net), pending.
 * A handler error is caught in a subtransaction of its own, so it undoes only
 * that event's work.
 */
CREATE FUNCTION _deal(p projection, p_run uuid, p_ev jsonb, p_via text, p_search_path text, OUT outcome text,
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
    EXCEPTION WHEN OTHERS THEN
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

/*
 * Deals with one event, then with the events held behind it in its stream,
 * in sequence order.  Returns the first failure (stop), if any.
 */
CREATE FUNCTION _deal_and_release(p projection, p_run uuid, p_ev jsonb, p_via text, p_search_path text,
                                  OUT outcome text, OUT failed_event jsonb, OUT err_state text,
                                  OUT err_message text)
LANGUAGE plpgsql
AS $$
DECLARE
  r record;
  nxt jsonb;
  ev jsonb := p_ev;
  via text := p_via;
  first boolean := true;
BEGIN
  LOOP
    r := event_store_dynamo._deal(p, p_run, ev, via, p_search_path);
    IF first THEN
      outcome := r.outcome;
      first := false;
    END IF;
    IF r.outcome = 'failed' THEN
      outcome := 'failed';
      failed_event := ev;
      err_state := r.err_state;
      err_message := r.err_message;
      RETURN;
    END IF;
    IF r.outcome IN ('duplicate', 'held') OR ev->>'sequence' IS NULL OR ev->>'domain' IS NULL THEN
      RETURN;
    END IF;
    SELECT pe.event INTO nxt FROM event_store_dynamo.projection_pending pe
     WHERE pe.run_key = p_run AND pe.domain = ev->>'domain'
       AND pe.identifier = coalesce(ev->>'identifier', '')
       AND pe.sequence = (ev->>'sequence')::bigint + 1;
    IF nxt IS NULL THEN
      RETURN;
    END IF;
    ev := nxt;
    nxt := NULL;
    via := 'pending';
  END LOOP;
END
$$;

/*
 * The safety net over [p_from, p_to]: a keys-only walk of the source compared
 * with what the run has seen (and holds); the events missing are fetched by
 * id and dealt with in created order.  Returns the failure, if any.
 */
CREATE FUNCTION _recheck(p projection, p_run uuid, p_from timestamptz, p_to timestamptz, p_search_path text,
                         OUT failed_event jsonb, OUT err_state text, OUT err_message text)
LANGUAGE plpgsql
AS $$
DECLARE
  missing text[];
  evs jsonb;
  ev jsonb;
  r record;
BEGIN
  EXECUTE format(
    'SELECT pg_catalog.array_agg(k.id) FROM (SELECT id FROM %s WHERE created >= $1 AND created <= $2) k '
    'WHERE NOT EXISTS (SELECT 1 FROM event_store_dynamo.projection_seen s WHERE s.run_key = $3 AND s.event_id = k.id) '
    'AND NOT EXISTS (SELECT 1 FROM event_store_dynamo.projection_pending pe WHERE pe.run_key = $3 AND pe.event_id = k.id)',
    p.source)
    INTO missing USING p_from, p_to, p_run;
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

/*
 * Streams with held events: read the missing sequences by stream (a
 * streamIndex Query when the table has one) once the hold is older than
 * settle; a gap still open after recheck is given up on, and the events
 * behind it are applied (counted in gaps_skipped; the missing event, should
 * it turn up, is still applied once, out of its stream's order).
 */
CREATE FUNCTION _resolve_gaps(p projection, p_run uuid, p_search_path text,
                              OUT failed_event jsonb, OUT err_state text, OUT err_message text)
LANGUAGE plpgsql
AS $$
DECLARE
  g record;
  evs jsonb;
  ev jsonb;
  r record;
  h bigint;
BEGIN
  FOR g IN
    SELECT pe.domain, pe.identifier, min(pe.sequence) AS first_held, min(pe.held_since) AS since
      FROM event_store_dynamo.projection_pending pe
     WHERE pe.run_key = p_run
     GROUP BY pe.domain, pe.identifier
    HAVING min(pe.held_since) <= now() - p.settle
  LOOP
    SELECT last_sequence INTO h FROM event_store_dynamo.projection_stream
     WHERE run_key = p_run AND domain = g.domain AND identifier = g.identifier;
    h := coalesce(h, 0);
    IF g.identifier <> '' THEN
      EXECUTE format(
        'SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(e) ORDER BY e.sequence) FROM %s e '
        'WHERE e.domain = $1 AND e.identifier = $2 AND e.sequence > $3 AND e.sequence < $4',
        p.source)
        INTO evs USING g.domain, g.identifier, h, g.first_held;
      UPDATE event_store_dynamo.projection_run SET stream_reads = stream_reads + 1 WHERE key = p_run;
      FOR ev IN SELECT value FROM pg_catalog.jsonb_array_elements(coalesce(evs, '[]')) LOOP
        r := event_store_dynamo._deal_and_release(p, p_run, ev, 'late', p_search_path);
        IF r.outcome = 'failed' THEN
          failed_event := r.failed_event;
          err_state := r.err_state;
          err_message := r.err_message;
          RETURN;
        END IF;
      END LOOP;
    END IF;
    -- still open after recheck: go on without the missing events
    IF g.since <= now() - p.recheck AND EXISTS (
         SELECT 1 FROM event_store_dynamo.projection_pending pe
          WHERE pe.run_key = p_run AND pe.domain = g.domain AND pe.identifier = g.identifier
            AND pe.sequence = g.first_held) THEN
      SELECT last_sequence INTO h FROM event_store_dynamo.projection_stream
       WHERE run_key = p_run AND domain = g.domain AND identifier = g.identifier;
      IF coalesce(h, 0) < g.first_held - 1 THEN
        INSERT INTO event_store_dynamo.projection_stream VALUES (p_run, g.domain, g.identifier, p.owner, g.first_held - 1)
          ON CONFLICT (run_key, domain, identifier) DO UPDATE SET last_sequence = excluded.last_sequence;
        UPDATE event_store_dynamo.projection_run SET gaps_skipped = gaps_skipped + 1 WHERE key = p_run;
      END IF;
      SELECT pe.event INTO ev FROM event_store_dynamo.projection_pending pe
       WHERE pe.run_key = p_run AND pe.domain = g.domain AND pe.identifier = g.identifier
         AND pe.sequence = g.first_held;
      r := event_store_dynamo._deal_and_release(p, p_run, ev, 'pending', p_search_path);
      IF r.outcome = 'failed' THEN
        failed_event := r.failed_event;
        err_state := r.err_state;
        err_message := r.err_message;
        RETURN;
      END IF;
    END IF;
  END LOOP;
END
$$;

/* Records a stop: the run is failed at this event, with its error. */
CREATE FUNCTION _record_failure(p_run uuid, p_ev jsonb, p_state text, p_message text)
RETURNS void
LANGUAGE sql
AS $$
  UPDATE event_store_dynamo.projection_run
     SET failed = true, last_error = p_message, last_sqlstate = p_state, failed_event_id = p_ev->>'id'
   WHERE key = p_run;
$$;

/*
 * The catch-up loop of one run (the projection's own, or its rebuild's):
 * one transaction per batch, each holding the run's row lock, so that two
 * callers never work on one run at once.
 */
CREATE PROCEDURE _catch_up(p_name text, p_rebuild boolean, p_batch integer)
LANGUAGE plpgsql
AS $$
DECLARE
  o regrole;
  p event_store_dynamo.projection;
  run event_store_dynamo.projection_run;
  k uuid;
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
      k := CASE WHEN p_rebuild THEN p.rebuild_key ELSE p.run_key END;
      IF k IS NULL THEN
        RAISE EXCEPTION 'projection "%" has no rebuild under way', p_name USING ERRCODE = '55000';
      END IF;
      SELECT * INTO run FROM event_store_dynamo.projection_run WHERE key = k FOR UPDATE;
      EXIT WHEN FOUND;   -- else a rebuild replaced the run meanwhile: look again
    END LOOP;
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
 * committing after each batch of at most batch_size events.  Call it outside
 * a transaction block.  A handler failure under on_error 'stop' ends it
 * (the projection's state says failed, with the event and the error) without
 * raising an error: the events before the failing one stay applied.
 */
CREATE PROCEDURE catch_up(name text, batch_size integer DEFAULT 500)
LANGUAGE plpgsql
AS $$
BEGIN
  CALL event_store_dynamo._catch_up(name, false, batch_size);
END
$$;
COMMENT ON PROCEDURE catch_up(text, integer) IS
  'apply every matching event up to the watermark, exactly once, committing batch by batch';

CREATE FUNCTION drop_projection(name text)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
  o regrole := event_store_dynamo._check_owner(name);
  sch text;
BEGIN
  PERFORM event_store_dynamo._as_owner(o);
  SELECT rebuild_schema INTO sch FROM event_store_dynamo.projection p WHERE p.name = drop_projection.name;
  IF sch IS NOT NULL THEN
    EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', sch);
  END IF;
  -- the runs' rows first, as catch_up takes them, then the projection's
  PERFORM 1 FROM event_store_dynamo.projection_run r WHERE r.projection = drop_projection.name FOR UPDATE;
  DELETE FROM event_store_dynamo.projection p WHERE p.name = drop_projection.name;
END
$$;
COMMENT ON FUNCTION drop_projection(text) IS 'remove a projection and its state (not its tables; owner only)';

/*
 * True once the event has been dealt with (applied, or filtered out by the
 * projection's domains or types, or skipped or dead-lettered); false when
 * the timeout passes first.
 */
CREATE FUNCTION wait_for_projection(name text, event_id text, timeout interval DEFAULT '5 seconds')
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
  o regrole := event_store_dynamo._check_owner(name);
  deadline timestamptz := pg_catalog.clock_timestamp() + coalesce(timeout, interval '0');
BEGIN
  IF event_id IS NULL THEN
    RAISE EXCEPTION 'event id must not be null' USING ERRCODE = '22004';
  END IF;
  LOOP
    IF EXISTS (SELECT 1 FROM event_store_dynamo.projection p
                 JOIN event_store_dynamo.projection_seen s ON s.run_key = p.run_key
                WHERE p.name = wait_for_projection.name AND s.event_id = wait_for_projection.event_id) THEN
      RETURN true;
    END IF;
    EXIT WHEN pg_catalog.clock_timestamp() >= deadline;
    PERFORM pg_catalog.pg_sleep(least(0.05, greatest(0, extract(epoch FROM deadline - pg_catalog.clock_timestamp()))));
  END LOOP;
  RETURN false;
END
$$;

/*
 * Applies the dead letters of a projection again, in created and stream
 * order, each in a subtransaction of its own: those the handler now takes
 * leave the table; those that fail again stay, with the new error.  Returns
 * how many were applied.
 */
CREATE FUNCTION retry_dead_letters(name text)
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
  PERFORM 1 FROM event_store_dynamo.projection_run WHERE key = p.run_key FOR UPDATE;
  FOR d IN
    SELECT * FROM event_store_dynamo.projection_dead_letter
     WHERE run_key = p.run_key AND kind = 'dead_letter'
     ORDER BY created, event->>'domain', event->>'identifier', sequence, event_id
  LOOP
    BEGIN
      EXECUTE format('SELECT %s(pg_catalog.jsonb_populate_record(NULL::%s, $1))',
                     p.handler::regprocedure::regproc, p.source)
        USING d.event;
      DELETE FROM event_store_dynamo.projection_dead_letter WHERE run_key = d.run_key AND event_id = d.event_id;
      applied := applied + 1;
    EXCEPTION WHEN OTHERS THEN
      GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
      UPDATE event_store_dynamo.projection_dead_letter
         SET sqlstate = st, message = msg, failed_at = now(), attempts = attempts + 1
       WHERE run_key = d.run_key AND event_id = d.event_id;
    END;
  END LOOP;
  UPDATE event_store_dynamo.projection_run
     SET events_applied = events_applied + applied, dead_lettered = dead_lettered - applied
   WHERE key = p.run_key;
  RETURN applied;
END
$$;
COMMENT ON FUNCTION retry_dead_letters(text) IS 'apply the dead letters again, in order; returns how many the handler took';

/*
 * Rebuilds the read model without taking it away from readers: the tables
 * are created empty in a schema of their own (LIKE ... INCLUDING ALL), a
 * second run of the projection fills them from the first event on (the
 * handler finds them first on its search_path), batch by batch; then one
 * short transaction drops the old tables, moves the new ones in and makes
 * the second run the projection's own.  Readers wait only for that last
 * transaction.  The handler must name the tables without a schema.
 */
CREATE PROCEDURE rebuild_projection(name text, batch_size integer DEFAULT 500)
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
BEGIN
  PERFORM event_store_dynamo._as_owner(o);
  SELECT * INTO p FROM event_store_dynamo.projection pr WHERE pr.name = rebuild_projection.name FOR NO KEY UPDATE;
  IF p.tables IS NULL OR cardinality(p.tables) = 0 THEN
    RAISE EXCEPTION 'projection "%" has no tables to rebuild', name USING ERRCODE = '55000',
      HINT = 'Give the read model''s tables with create_projection(tables => ...).';
  END IF;
  -- a rebuild interrupted earlier is thrown away
  IF p.rebuild_schema IS NOT NULL THEN
    EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', p.rebuild_schema);
    DELETE FROM event_store_dynamo.projection_run WHERE key = p.rebuild_key;
  END IF;
  sch := 'esd_rebuild_' || pg_catalog.translate(name, '.-', '__');
  EXECUTE format('CREATE SCHEMA %I', sch);
  FOREACH t IN ARRAY p.tables LOOP
    SELECT c.relname INTO tname FROM pg_catalog.pg_class c WHERE c.oid = t;
    EXECUTE format('CREATE TABLE %I.%I (LIKE %s INCLUDING ALL)', sch, tname, t);
  END LOOP;
  INSERT INTO event_store_dynamo.projection_run (key, projection, owner) VALUES (k, p.name, p.owner);
  UPDATE event_store_dynamo.projection pr SET rebuild_key = k, rebuild_schema = sch
   WHERE pr.name = rebuild_projection.name;
  PERFORM pg_catalog.set_config('role', role_before, true);
  COMMIT;

  CALL event_store_dynamo._catch_up(name, true, batch_size);

  -- the switch: one short transaction
  o := event_store_dynamo._check_owner(name);
  PERFORM event_store_dynamo._as_owner(o);
  SELECT * INTO p FROM event_store_dynamo.projection pr WHERE pr.name = rebuild_projection.name FOR NO KEY UPDATE;
  IF p.rebuild_key IS DISTINCT FROM k THEN
    RAISE EXCEPTION 'the rebuild of projection "%" was replaced by another', name USING ERRCODE = '55000';
  END IF;
  IF (SELECT failed FROM event_store_dynamo.projection_run WHERE key = k) THEN
    RAISE EXCEPTION 'the rebuild of projection "%" stopped at a failing event', name USING ERRCODE = '55000',
      DETAIL = (SELECT format('event %s: %s (%s)', failed_event_id, last_error, last_sqlstate)
                  FROM event_store_dynamo.projection_run WHERE key = k),
      HINT = 'The old read model stays in place; fix the handler and rebuild again.';
  END IF;
  -- (NO KEY UPDATE above: a catch_up batch holding the run's row may still need a key-share lock
  -- on the projection's row for its foreign keys)
  old_key := p.run_key;
  PERFORM 1 FROM event_store_dynamo.projection_run WHERE key IN (old_key, k) FOR UPDATE;
  UPDATE event_store_dynamo.projection pr SET run_key = k, rebuild_key = NULL, rebuild_schema = NULL
   WHERE pr.name = rebuild_projection.name;
  DELETE FROM event_store_dynamo.projection_run WHERE key = old_key;
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
COMMENT ON PROCEDURE rebuild_projection(text, integer) IS
  'recompute the read model from the first event into new tables, then switch them in with one short transaction';

CREATE VIEW projections WITH (security_invoker = true) AS
SELECT p.name, p.source, coalesce(pg_catalog.to_regprocedure(p.handler)::text, p.handler) AS handler, p.owner,
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
       p.domains, p.types, p.settle, p.recheck, p.full_recheck, p.on_error, p.tables,
       rb.through AS rebuild_through, p.last_switch
  FROM event_store_dynamo.projection p
  JOIN event_store_dynamo.projection_run r ON r.key = p.run_key
  LEFT JOIN event_store_dynamo.projection_run rb ON rb.key = p.rebuild_key;
GRANT SELECT ON projections TO PUBLIC;

CREATE VIEW dead_letters WITH (security_invoker = true) AS
SELECT d.projection, d.event_id, d.kind, d.sqlstate, d.message, d.failed_at, d.attempts,
       d.created, d.event->>'domain' AS domain, d.event->>'identifier' AS identifier, d.sequence
  FROM event_store_dynamo.projection_dead_letter d
  JOIN event_store_dynamo.projection p ON p.run_key = d.run_key;
GRANT SELECT ON dead_letters TO PUBLIC;

REVOKE ALL ON PROCEDURE _catch_up(text, boolean, integer) FROM PUBLIC;
GRANT EXECUTE ON PROCEDURE _catch_up(text, boolean, integer) TO PUBLIC;
