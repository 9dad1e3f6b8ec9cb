-- Background workers for projections: start_projection, stop_projection, the
-- projection_workers view, wait_for_projection.  This cluster does not preload
-- the library, so start_projection starts a dynamic worker at commit and
-- stop_projection (or drop_projection) ends it; the launcher, restarts and
-- NOTIFY are the workers step's (test/workers/run.js).  Every error shows its
-- SQLSTATE.
\getenv ddb_url DDB_URL
\getenv s3_url S3_URL
SET timezone = 'UTC';
\set VERBOSITY verbose
\set SHOW_CONTEXT never

CREATE ROLE regress_wk_owner LOGIN;
CREATE ROLE regress_wk_stranger LOGIN;
CREATE ROLE regress_wk_nologin NOLOGIN;
CREATE SERVER wk_srv FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (endpoint :'ddb_url', s3_endpoint :'s3_url', s3_force_path_style 'true');
CREATE USER MAPPING FOR PUBLIC SERVER wk_srv
  OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
GRANT USAGE ON FOREIGN SERVER wk_srv TO regress_wk_owner, regress_wk_nologin;
GRANT CREATE ON SCHEMA public TO regress_wk_owner, regress_wk_nologin;

SET ROLE regress_wk_owner;
CREATE FOREIGN TABLE wk (
  id text, domain text, type text, identifier text, correlation_id text, causation_id text,
  sequence bigint, payload jsonb, meta jsonb, created timestamptz, time_bucket text, s3_reference text
) SERVER wk_srv OPTIONS (table_name_prefix 'workers-');
RESET ROLE;
SELECT event_store_dynamo.reset_store('wk');
SET ROLE regress_wk_owner;
CREATE TABLE wk_balances (account text PRIMARY KEY, balance numeric NOT NULL);
CREATE FUNCTION wk_apply(e wk) RETURNS void LANGUAGE sql AS $$
  INSERT INTO wk_balances VALUES (e.identifier, (e.payload->>'amount')::numeric)
    ON CONFLICT (account) DO UPDATE SET balance = wk_balances.balance + excluded.balance
$$;
SELECT event_store_dynamo.create_projection('wk_balances', 'wk', 'wk_apply(wk)',
  tables => ARRAY['wk_balances'::regclass], settle => interval '0 seconds');
GRANT SELECT ON wk TO regress_wk_nologin;
RESET ROLE;

-- errors
SELECT event_store_dynamo.start_projection('no_such_projection');
SET ROLE regress_wk_stranger;
SELECT event_store_dynamo.start_projection('wk_balances');
SELECT event_store_dynamo.stop_projection('wk_balances');
SELECT event_store_dynamo.repartition_projection('wk_balances', 2);
RESET ROLE;
SET ROLE regress_wk_owner;
SELECT event_store_dynamo.start_projection('wk_balances', poll => interval '1 millisecond');
SELECT event_store_dynamo.start_projection('wk_balances', poll => interval '2 days');
SELECT event_store_dynamo.start_projection(NULL);
RESET ROLE;
-- the worker connects as the owner, so the owner must be able to log in
SET ROLE regress_wk_nologin;
SELECT event_store_dynamo.create_projection('wk_nologin', 'wk', 'wk_apply(wk)');
SELECT event_store_dynamo.start_projection('wk_nologin');
SELECT event_store_dynamo.drop_projection('wk_nologin');
RESET ROLE;

-- a start that rolls back leaves nothing running; nor does one stopped in its own transaction
SET ROLE regress_wk_owner;
BEGIN;
SELECT event_store_dynamo.start_projection('wk_balances', poll => interval '200 ms');
SELECT projection, poll FROM event_store_dynamo.projection_runs;
ROLLBACK;
SELECT count(*) FROM event_store_dynamo.projection_runs;
BEGIN;
SELECT event_store_dynamo.start_projection('wk_balances', poll => interval '200 ms');
SELECT event_store_dynamo.stop_projection('wk_balances');
COMMIT;
SELECT event_store_dynamo.stop_projection('wk_balances');
RESET ROLE;
SELECT pg_sleep(0.5);
SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'event_store_dynamo projection';

-- Waits (at most 30 s) until the number of workers of this database is n.
CREATE FUNCTION wk_workers_become(n int) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1..300 LOOP
    PERFORM pg_stat_clear_snapshot();
    IF (SELECT count(*) FROM pg_stat_activity
         WHERE backend_type = 'event_store_dynamo projection' AND datname = current_database()) = n THEN
      RETURN true;
    END IF;
    PERFORM pg_sleep(0.1);
  END LOOP;
  RETURN false;
END $$;

-- started for real: a dynamic worker, connected as the owner, applies what is appended
SET ROLE regress_wk_owner;
SELECT event_store_dynamo.start_projection('wk_balances', poll => interval '200 ms');
RESET ROLE;
SELECT wk_workers_become(1);
SELECT usename, application_name, backend_type FROM pg_stat_activity
 WHERE backend_type = 'event_store_dynamo projection' AND datname = current_database();
SET ROLE regress_wk_owner;
INSERT INTO wk (id, domain, type, identifier, payload) VALUES
  ('00000000-0000-4000-8000-0000000b0001', 'account', 'deposited', 'w1', '{"amount": 7}'),
  ('00000000-0000-4000-8000-0000000b0002', 'account', 'deposited', 'w2', '{"amount": 3}');
SELECT event_store_dynamo.wait_for_projection('wk_balances', '00000000-0000-4000-8000-0000000b0002', interval '30 seconds');
SELECT event_store_dynamo.wait_for_projection('wk_balances', '00000000-0000-4000-8000-0000000b0001', interval '30 seconds');
SELECT * FROM wk_balances ORDER BY account;
-- without the launcher the view has no rows
SELECT count(*) FROM event_store_dynamo.projection_workers;
-- wait_for_projection: an event never written, a null id, a stranger
SELECT event_store_dynamo.wait_for_projection('wk_balances', 'no-such-event', interval '0.2 seconds');
SELECT event_store_dynamo.wait_for_projection('wk_balances', NULL);
RESET ROLE;
SET ROLE regress_wk_stranger;
SELECT event_store_dynamo.wait_for_projection('wk_balances', 'no-such-event');
RESET ROLE;

-- stopped: the worker goes; a second stop says it was not running
SET ROLE regress_wk_owner;
SELECT event_store_dynamo.stop_projection('wk_balances');
SELECT event_store_dynamo.stop_projection('wk_balances');
RESET ROLE;
SELECT wk_workers_become(0);

-- dropped while running: the worker goes with it
SET ROLE regress_wk_owner;
SELECT event_store_dynamo.start_projection('wk_balances', poll => interval '200 ms');
RESET ROLE;
SELECT wk_workers_become(1);
SET ROLE regress_wk_owner;
SELECT event_store_dynamo.drop_projection('wk_balances');
SELECT count(*) FROM event_store_dynamo.projection_runs;
RESET ROLE;
SELECT wk_workers_become(0);

DROP FUNCTION wk_workers_become(int);
DROP OWNED BY regress_wk_owner, regress_wk_stranger, regress_wk_nologin CASCADE;
DROP USER MAPPING FOR PUBLIC SERVER wk_srv;
DROP SERVER wk_srv;
DROP ROLE regress_wk_owner, regress_wk_stranger, regress_wk_nologin;
