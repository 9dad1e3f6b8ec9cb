-- Projections: a read model kept by a handler, applied exactly once from a
-- foreign event table, on a store of its own (proj-).  Every error shows its
-- SQLSTATE.
\getenv ddb_url DDB_URL
\getenv s3_url S3_URL
SET timezone = 'UTC';
-- every error, warning and notice shows its SQLSTATE (test/regress/psql drops the LOCATION lines)
\set VERBOSITY verbose
\set SHOW_CONTEXT never

-- times relative to now, and the walk starting the month before
SELECT date_trunc('second', now()) - interval '2 hours' AS t0,
       to_char(now() - interval '1 month', 'YYYY-MM') AS start_month \gset

CREATE SERVER proj_srv FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (endpoint :'ddb_url', s3_endpoint :'s3_url', s3_force_path_style 'true');
CREATE USER MAPPING FOR PUBLIC SERVER proj_srv
  OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
CREATE FOREIGN TABLE pe (
  id text, domain text, type text, identifier text, correlation_id text, causation_id text,
  sequence bigint, payload jsonb, meta jsonb, created timestamptz, time_bucket text, s3_reference text
) SERVER proj_srv OPTIONS (table_name_prefix 'proj-', start_month :'start_month');
SELECT event_store_dynamo.reset_store('pe');

-- the read model, and a log of the order the handler saw
CREATE TABLE balances (account text PRIMARY KEY, balance numeric NOT NULL, events int NOT NULL);
CREATE TABLE applied_log (n serial, account text, sequence bigint, type text);
CREATE FUNCTION apply_balance(e pe) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF e.payload->>'amount' = 'poison' THEN
    RAISE EXCEPTION 'cannot apply event %', e.id USING ERRCODE = '22000';
  END IF;
  INSERT INTO balances VALUES (e.identifier,
      CASE e.type WHEN 'withdrawn' THEN -1 ELSE 1 END * (e.payload->>'amount')::numeric, 1)
    ON CONFLICT (account) DO UPDATE
      SET balance = balances.balance + excluded.balance, events = balances.events + 1;
  INSERT INTO applied_log (account, sequence, type) VALUES (e.identifier, e.sequence, e.type);
END
$$;

-- events over two accounts, and one of another domain
INSERT INTO pe (id, domain, type, identifier, payload, created) VALUES
  ('00000000-0000-4000-8000-00000000a001', 'account', 'deposited', 'a1', '{"amount": 100}', :'t0'::timestamptz + interval '1 second'),
  ('00000000-0000-4000-8000-00000000a002', 'account', 'deposited', 'a2', '{"amount": 50}',  :'t0'::timestamptz + interval '2 seconds'),
  ('00000000-0000-4000-8000-00000000a003', 'account', 'withdrawn', 'a1', '{"amount": 30}',  :'t0'::timestamptz + interval '3 seconds'),
  ('00000000-0000-4000-8000-00000000a004', 'user',    'renamed',   'u1', '{"name": "ada"}', :'t0'::timestamptz + interval '4 seconds'),
  ('00000000-0000-4000-8000-00000000a005', 'account', 'deposited', 'a2', '{"amount": 5}',   :'t0'::timestamptz + interval '4 seconds'),
  ('00000000-0000-4000-8000-00000000a006', 'account', 'deposited', 'a1', '{"amount": 1}',   :'t0'::timestamptz + interval '4 seconds');

-- definition errors
SELECT event_store_dynamo.create_projection('b', 'balances', 'apply_balance(pe)');
CREATE FOREIGN TABLE pe_narrow (id text, created timestamptz) SERVER proj_srv OPTIONS (table_name_prefix 'proj-');
CREATE FUNCTION narrow_handler(e pe_narrow) RETURNS void LANGUAGE sql AS 'SELECT';
SELECT event_store_dynamo.create_projection('b', 'pe_narrow', 'narrow_handler(pe_narrow)');
CREATE FUNCTION wrong_handler(e balances) RETURNS void LANGUAGE sql AS 'SELECT';
SELECT event_store_dynamo.create_projection('b', 'pe', 'wrong_handler(balances)');
CREATE PROCEDURE proc_handler(e pe) LANGUAGE sql AS 'SELECT';
SELECT event_store_dynamo.create_projection('b', 'pe', 'proc_handler(pe)');
SELECT event_store_dynamo.create_projection('b', 'pe', 'apply_balance(pe)', on_error => 'ignore');
SELECT event_store_dynamo.create_projection('b', 'pe', 'apply_balance(pe)', settle => '-1 second');
SELECT event_store_dynamo.create_projection('b', 'pe', 'apply_balance(pe)', recheck => NULL);
SELECT event_store_dynamo.create_projection('b', 'pe', 'apply_balance(pe)', full_recheck => '0');
SELECT event_store_dynamo.create_projection('no spaces', 'pe', 'apply_balance(pe)');
SELECT event_store_dynamo.create_projection(NULL, 'pe', 'apply_balance(pe)');
SELECT event_store_dynamo.create_projection('b', 'pe', 'apply_balance(pe)', tables => ARRAY['pe'::regclass]);
SELECT event_store_dynamo.create_projection('b', 'pe', 'apply_balance(pe)', tables => ARRAY[NULL::regclass]);

-- the projection: accounts only, settle 0 (DynamoDB Local's index is current)
SELECT event_store_dynamo.create_projection(
  name => 'balances', source => 'pe', handler => 'apply_balance(pe)',
  tables => ARRAY['balances'::regclass], domains => ARRAY['account'], settle => '0', on_error => 'stop');
SELECT event_store_dynamo.create_projection('balances', 'pe', 'apply_balance(pe)');
SELECT name, source, handler, state, position, events_applied, lag IS NULL AS no_lag_yet
  FROM event_store_dynamo.projections;

-- batches of 2: the three events of one millisecond are taken together
CALL event_store_dynamo.catch_up('balances', batch_size => 2);
SELECT * FROM balances ORDER BY account;
SELECT name, state, position_id, events_applied, events_filtered, late_applied, events_held,
       lag >= interval '0' AS lag_ok, watermark <= now() AS watermark_ok, last_error
  FROM event_store_dynamo.projections;
-- the order the handler saw: created, then sequence within a millisecond
SELECT account, sequence, type FROM applied_log ORDER BY n;
-- the read model equals a recompute from the events
SELECT identifier AS account,
       sum(CASE type WHEN 'withdrawn' THEN -1 ELSE 1 END * (payload->>'amount')::numeric) AS balance,
       count(*)::int AS events
  FROM pe WHERE domain = 'account' GROUP BY identifier
EXCEPT SELECT * FROM balances;

-- again: nothing is applied twice
CALL event_store_dynamo.catch_up('balances');
SELECT events_applied FROM event_store_dynamo.projections;
SELECT event_store_dynamo.wait_for_projection('balances', '00000000-0000-4000-8000-00000000a003', '1 second');
SELECT event_store_dynamo.wait_for_projection('balances', '00000000-0000-4000-8000-00000000ffff', '0.1 second');

-- a late event: created before the position (a long transaction, a lagging
-- index, a backdated write), within recheck (5 minutes): the safety net
-- applies it
INSERT INTO pe (id, domain, type, identifier, payload, created) VALUES
  ('00000000-0000-4000-8000-00000000a007', 'account', 'deposited', 'a9', '{"amount": 7}', now() - interval '1 minute');
CALL event_store_dynamo.catch_up('balances');
SELECT balance FROM balances WHERE account = 'a9';
SELECT events_applied, late_applied, rechecks > 0 AS rechecked FROM event_store_dynamo.projections;
-- older than recheck: found by the next full recheck (made due here by
-- moving the time of the last one back an hour)
INSERT INTO pe (id, domain, type, identifier, payload, created) VALUES
  ('00000000-0000-4000-8000-00000000a013', 'account', 'deposited', 'a8', '{"amount": 8}', :'t0'::timestamptz + interval '5 seconds');
CALL event_store_dynamo.catch_up('balances');
SELECT count(*) FROM balances WHERE account = 'a8';
UPDATE event_store_dynamo.projection_run SET last_full_recheck = last_full_recheck - interval '1 hour';
CALL event_store_dynamo.catch_up('balances');
SELECT balance FROM balances WHERE account = 'a8';
SELECT events_applied, late_applied, full_rechecks FROM event_store_dynamo.projections;

-- created disagreeing with sequence (a skewed writer): sequence 2 is dated
-- before sequence 1; it is held until 1 is applied, then applied after it
INSERT INTO pe (id, domain, type, identifier, payload, created) VALUES
  ('00000000-0000-4000-8000-00000000a008', 'account', 'deposited', 'a3', '{"amount": 1}', now() - interval '1 second');
INSERT INTO pe (id, domain, type, identifier, payload, created) VALUES
  ('00000000-0000-4000-8000-00000000a009', 'account', 'deposited', 'a3', '{"amount": 2}', now() - interval '3 seconds');
CALL event_store_dynamo.catch_up('balances');
SELECT sequence FROM applied_log WHERE account = 'a3' ORDER BY n;
SELECT events_applied, events_held, gaps_skipped FROM event_store_dynamo.projections;

-- on_error 'stop': the failing event and its error in the status view, nothing after it applied
INSERT INTO pe (id, domain, type, identifier, payload, created) VALUES
  ('00000000-0000-4000-8000-00000000a010', 'account', 'deposited', 'a4', '{"amount": "poison"}', now() - interval '2 seconds'),
  ('00000000-0000-4000-8000-00000000a011', 'account', 'deposited', 'a5', '{"amount": 11}', now() - interval '1 second');
CALL event_store_dynamo.catch_up('balances');
SELECT state, failed_event_id, last_sqlstate, last_error, events_applied FROM event_store_dynamo.projections;
SELECT count(*) FROM balances WHERE account IN ('a4', 'a5');
CALL event_store_dynamo.catch_up('balances');
SELECT state, failed_event_id FROM event_store_dynamo.projections;
-- the handler fixed: the next catch_up goes on from the failing event
CREATE OR REPLACE FUNCTION apply_balance(e pe) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO balances VALUES (e.identifier,
      CASE e.type WHEN 'withdrawn' THEN -1 ELSE 1 END
        * CASE WHEN e.payload->>'amount' = 'poison' THEN 0 ELSE (e.payload->>'amount')::numeric END, 1)
    ON CONFLICT (account) DO UPDATE
      SET balance = balances.balance + excluded.balance, events = balances.events + 1;
  INSERT INTO applied_log (account, sequence, type) VALUES (e.identifier, e.sequence, e.type);
END
$$;
CALL event_store_dynamo.catch_up('balances');
SELECT state, failed_event_id, last_error, events_applied FROM event_store_dynamo.projections;
SELECT * FROM balances WHERE account IN ('a4', 'a5') ORDER BY account;

-- on_error 'dead_letter' and 'skip', on a second read model
CREATE TABLE counts (type text PRIMARY KEY, n int NOT NULL);
CREATE FUNCTION count_type(e pe) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF e.payload->>'amount' = 'poison' AND NOT EXISTS (SELECT 1 FROM counts WHERE type = 'cured') THEN
    RAISE EXCEPTION 'poisoned event %', e.id USING ERRCODE = '22000';
  END IF;
  INSERT INTO counts VALUES (e.type, 1) ON CONFLICT (type) DO UPDATE SET n = counts.n + 1;
END
$$;
SELECT event_store_dynamo.create_projection('counts', 'pe', 'count_type(pe)', tables => ARRAY['counts'::regclass],
                                            settle => '0', on_error => 'dead_letter');
SELECT event_store_dynamo.create_projection('skipper', 'pe', 'count_type(pe)', types => ARRAY['deposited'],
                                            settle => '0', on_error => 'skip');
CALL event_store_dynamo.catch_up('counts');
CALL event_store_dynamo.catch_up('skipper');
SELECT * FROM counts ORDER BY type;
SELECT projection, event_id, kind, sqlstate, message, attempts FROM event_store_dynamo.dead_letters ORDER BY projection;
SELECT name, state, events_applied, events_filtered, skipped, dead_lettered
  FROM event_store_dynamo.projections ORDER BY name;
SELECT event_store_dynamo.retry_dead_letters('counts');   -- still failing: stays
SELECT event_id, attempts FROM event_store_dynamo.dead_letters WHERE projection = 'counts';
INSERT INTO counts VALUES ('cured', 0);
SELECT event_store_dynamo.retry_dead_letters('counts');
SELECT count(*) FROM event_store_dynamo.dead_letters WHERE projection = 'counts';
SELECT n FROM counts WHERE type = 'deposited';

-- rebuild: a new read model from the first event, switched in at the end
-- (a function taking the table's row type would keep the old table from
-- being dropped)
DROP FUNCTION wrong_handler(balances);
SELECT 'balances'::regclass::oid AS old_oid \gset
CALL event_store_dynamo.rebuild_projection('balances');
SELECT 'balances'::regclass::oid <> :old_oid AS replaced;
SELECT * FROM balances ORDER BY account;
SELECT state, events_applied, events_held, rebuild_through, last_switch IS NOT NULL AS switched
  FROM event_store_dynamo.projections WHERE name = 'balances';
SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'esd_rebuild_%';
-- and it goes on from where the rebuild ended
INSERT INTO pe (id, domain, type, identifier, payload) VALUES
  ('00000000-0000-4000-8000-00000000a012', 'account', 'deposited', 'a1', '{"amount": 1000}');
CALL event_store_dynamo.catch_up('balances');
SELECT balance FROM balances WHERE account = 'a1';
CALL event_store_dynamo.rebuild_projection('skipper');

-- privileges: only the owner (or a member, or a superuser) may act on a projection
CREATE ROLE esd_proj_owner;
CREATE ROLE esd_proj_stranger;
GRANT SELECT ON pe TO esd_proj_owner;
GRANT USAGE ON FOREIGN SERVER proj_srv TO esd_proj_owner;
GRANT CREATE ON SCHEMA public TO esd_proj_owner;
SET ROLE esd_proj_owner;
CREATE TABLE owner_counts (n int);
CREATE FUNCTION owner_count(e pe) RETURNS void LANGUAGE sql AS 'INSERT INTO owner_counts VALUES (1)';
SELECT event_store_dynamo.create_projection('owned', 'pe', 'owner_count(pe)', settle => '0');
CALL event_store_dynamo.catch_up('owned');
SELECT count(*) FROM owner_counts;
SELECT name FROM event_store_dynamo.projections;      -- sees its own only
CALL event_store_dynamo.catch_up('balances');
SELECT event_store_dynamo.drop_projection('balances');
UPDATE event_store_dynamo.projection SET on_error = 'skip' WHERE name = 'balances';   -- no row of another role
RESET ROLE;
SET ROLE esd_proj_stranger;
CALL event_store_dynamo.catch_up('owned');
SELECT event_store_dynamo.drop_projection('owned');
SELECT event_store_dynamo.retry_dead_letters('owned');
SELECT event_store_dynamo.wait_for_projection('owned', 'x', '0');
SELECT count(*) FROM event_store_dynamo.projection_seen;
RESET ROLE;
-- a superuser runs it as its owner: the handler cannot do more than the owner may
CREATE TABLE secret (x int);
CREATE OR REPLACE FUNCTION owner_count(e pe) RETURNS void LANGUAGE sql AS 'INSERT INTO secret VALUES (1)';
INSERT INTO pe (domain, type, identifier, payload) VALUES ('account', 'deposited', 'a1', '{"amount": 1}');
CALL event_store_dynamo.catch_up('owned');
SELECT state, last_sqlstate, last_error FROM event_store_dynamo.projections WHERE name = 'owned';
SELECT event_store_dynamo.drop_projection('owned');
DROP FUNCTION owner_count(pe);
DROP TABLE owner_counts, secret;
REVOKE CREATE ON SCHEMA public FROM esd_proj_owner;
DROP OWNED BY esd_proj_owner;
DROP ROLE esd_proj_owner;
DROP ROLE esd_proj_stranger;

-- catch_up commits batch by batch, so not inside a transaction block
BEGIN;
CALL event_store_dynamo.catch_up('balances');
ROLLBACK;
BEGIN;
CALL event_store_dynamo.rebuild_projection('balances');
ROLLBACK;
CALL event_store_dynamo.catch_up('balances', batch_size => 0);
CALL event_store_dynamo.catch_up('nope');
CALL event_store_dynamo.rebuild_projection('nope');
SELECT event_store_dynamo.retry_dead_letters('nope');
SELECT event_store_dynamo.wait_for_projection('nope', 'x', '0');
SELECT event_store_dynamo.wait_for_projection('balances', NULL, '0');

-- retry_dead_letters applies the dead letters again in created order, then
-- sequence order within a stream (not in the order of their ids)
CREATE TABLE dl_log (n serial, identifier text, sequence bigint);
CREATE TABLE dl_cured (ok boolean);
CREATE FUNCTION dl_apply(e pe) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM dl_cured) THEN
    RAISE EXCEPTION 'not yet' USING ERRCODE = '22000';
  END IF;
  INSERT INTO dl_log (identifier, sequence) VALUES (e.identifier, e.sequence);
END
$$;
INSERT INTO pe (id, domain, type, identifier, payload, created) VALUES
  ('00000000-0000-4000-8000-00000000a0f9', 'dl', 'x', 'd1', '{}', :'t0'::timestamptz + interval '21 seconds'),
  ('00000000-0000-4000-8000-00000000a0f1', 'dl', 'x', 'd1', '{}', :'t0'::timestamptz + interval '21 seconds'),
  ('00000000-0000-4000-8000-00000000a0f5', 'dl', 'x', 'd2', '{}', :'t0'::timestamptz + interval '20 seconds'),
  ('00000000-0000-4000-8000-00000000a0f0', 'dl', 'x', 'd2', '{}', :'t0'::timestamptz + interval '23 seconds');
SELECT event_store_dynamo.create_projection('dl_order', 'pe', 'dl_apply(pe)', domains => ARRAY['dl'],
                                            settle => '0', on_error => 'dead_letter');
CALL event_store_dynamo.catch_up('dl_order');
SELECT event_id, kind, identifier, sequence FROM event_store_dynamo.dead_letters
 WHERE projection = 'dl_order' ORDER BY event_id;
INSERT INTO dl_cured VALUES (true);
SELECT event_store_dynamo.retry_dead_letters('dl_order');
SELECT identifier, sequence FROM dl_log ORDER BY n;
SELECT count(*) FROM event_store_dynamo.dead_letters WHERE projection = 'dl_order';
SELECT event_store_dynamo.drop_projection('dl_order');
DROP FUNCTION dl_apply(pe);
DROP TABLE dl_log, dl_cured;

-- on_error 'stop' in the middle of a batch: the events before the failing one
-- stay applied, nothing after it is; once the handler is fixed the next
-- catch_up goes on from the failing event, in order
CREATE TABLE sm_log (n serial, id text);
CREATE FUNCTION sm_apply(e pe) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF e.payload->>'poison' = 'yes' THEN
    RAISE EXCEPTION 'poisoned' USING ERRCODE = '22000';
  END IF;
  INSERT INTO sm_log (id) VALUES (e.id);
END
$$;
INSERT INTO pe (id, domain, type, identifier, payload, created) VALUES
  ('00000000-0000-4000-8000-00000000a0e1', 'sm', 'x', 's1', '{}', :'t0'::timestamptz + interval '30 seconds'),
  ('00000000-0000-4000-8000-00000000a0e2', 'sm', 'x', 's2', '{"poison": "yes"}', :'t0'::timestamptz + interval '31 seconds'),
  ('00000000-0000-4000-8000-00000000a0e3', 'sm', 'x', 's3', '{}', :'t0'::timestamptz + interval '32 seconds');
SELECT event_store_dynamo.create_projection('stop_mid', 'pe', 'sm_apply(pe)', domains => ARRAY['sm'],
                                            settle => '0', on_error => 'stop');
CALL event_store_dynamo.catch_up('stop_mid', batch_size => 10);
SELECT state, failed_event_id, last_sqlstate, last_error, events_applied
  FROM event_store_dynamo.projections WHERE name = 'stop_mid';
SELECT id FROM sm_log ORDER BY n;
CREATE OR REPLACE FUNCTION sm_apply(e pe) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO sm_log (id) VALUES (e.id);
END
$$;
CALL event_store_dynamo.catch_up('stop_mid', batch_size => 10);
SELECT state, failed_event_id, events_applied FROM event_store_dynamo.projections WHERE name = 'stop_mid';
SELECT id FROM sm_log ORDER BY n;
SELECT event_store_dynamo.drop_projection('stop_mid');
DROP FUNCTION sm_apply(pe);
DROP TABLE sm_log;

-- dropping a projection removes its state, never its tables
SELECT event_store_dynamo.drop_projection('balances');
SELECT event_store_dynamo.drop_projection('balances');
SELECT event_store_dynamo.drop_projection('counts');
SELECT event_store_dynamo.drop_projection('skipper');
SELECT count(*) FROM balances;
SELECT (SELECT count(*) FROM event_store_dynamo.projection_run) AS runs,
       (SELECT count(*) FROM event_store_dynamo.projection_seen) AS seen,
       (SELECT count(*) FROM event_store_dynamo.projection_dead_letter) AS dead;

-- the state tables are part of a dump
SELECT tbl::regclass FROM pg_extension, unnest(extconfig) AS tbl
 WHERE extname = 'event_store_dynamo' ORDER BY 1::text;

-- values quoted in messages are cut to 80 bytes, as everywhere: a long
-- invalid name, and a rebuild stopped at an event with a 600-character id
SELECT event_store_dynamo.create_projection(repeat('n', 600), 'pe', 'apply_balance(pe)');
CREATE TABLE lf_model (id text);
CREATE FUNCTION lf_apply(e pe) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF length(e.id) > 100 THEN
    RAISE EXCEPTION 'poisoned' USING ERRCODE = '22000';
  END IF;
  INSERT INTO lf_model VALUES (e.id);
END
$$;
INSERT INTO pe (id, domain, type, identifier, payload, created) VALUES
  ('00000000-0000-4000-8000-00000000a0d1', 'lf', 'x', 'l1', '{}', :'t0'::timestamptz + interval '40 seconds'),
  (repeat('L', 600), 'lf', 'x', 'l1', '{}', :'t0'::timestamptz + interval '41 seconds');
SELECT event_store_dynamo.create_projection('long_fail', 'pe', 'lf_apply(pe)', domains => ARRAY['lf'],
                                            tables => ARRAY['lf_model'::regclass],
                                            settle => '0', on_error => 'stop');
CALL event_store_dynamo.rebuild_projection('long_fail');
SELECT id FROM lf_model;
SELECT event_store_dynamo.drop_projection('long_fail');
DROP FUNCTION lf_apply(pe);
DROP TABLE lf_model;

-- 0.1 to 0.2 with ALTER EXTENSION UPDATE, in a database of its own
SELECT current_database() AS regress_db \gset
CREATE DATABASE esd_upgrade;
\c esd_upgrade
CREATE EXTENSION event_store_dynamo VERSION '0.1';
SELECT extversion FROM pg_extension WHERE extname = 'event_store_dynamo';
SELECT count(*) FROM pg_proc WHERE proname = 'create_projection';
ALTER EXTENSION event_store_dynamo UPDATE TO '0.2';
SELECT extversion FROM pg_extension WHERE extname = 'event_store_dynamo';
SELECT count(*) FROM pg_proc WHERE proname = 'create_projection';
\c :regress_db
DROP DATABASE esd_upgrade;

DROP FUNCTION apply_balance(pe), count_type(pe), narrow_handler(pe_narrow);
DROP TABLE balances, applied_log, counts;
DROP PROCEDURE proc_handler(pe);
DROP SERVER proj_srv CASCADE;
