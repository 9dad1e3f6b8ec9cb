-- Security: who may destroy a store, which hosts an item may make the
-- backend call, whose credentials sign an append, what may be pushed down,
-- and what an INSERT may store.
-- every error, warning and notice shows its SQLSTATE (test/regress/psql drops the LOCATION lines)
\set VERBOSITY verbose
\getenv ddb_url DDB_URL
\getenv s3_url S3_URL
\getenv abs_srcdir PG_ABS_SRCDIR
SET timezone = 'UTC';
\set SHOW_CONTEXT never

CREATE SERVER sec_srv FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (endpoint :'ddb_url', s3_endpoint :'s3_url', s3_force_path_style 'true');
CREATE USER MAPPING FOR CURRENT_USER SERVER sec_srv
  OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
CREATE FOREIGN TABLE sec_ev (
  id text, domain text, type text, identifier text, causation_id text, sequence bigint,
  payload json, created timestamptz
) SERVER sec_srv OPTIONS (table_name_prefix 'sec-', start_month '2024-01', lookahead_months '0');
CREATE FOREIGN TABLE sec_ev_local (
  id text, domain text, type text, identifier text, causation_id text, sequence bigint,
  payload json, created timestamptz
) SERVER sec_srv OPTIONS (table_name_prefix 'sec-', start_month '2024-01', lookahead_months '0',
                          pushdown 'false');
SELECT event_store_dynamo.reset_store('sec_ev');
INSERT INTO sec_ev (id, domain, type, identifier, causation_id, created) VALUES
  ('E00001', 'Acct', 'opened', 'A-1', NULL, '2024-03-01 10:00:00+00'),
  ('E00002', 'acct', 'noted', 'a-1', 'E00001', '2024-03-02 10:00:00+00');

-- ---- pushdown: only what DynamoDB compares the same way ----
-- a nondeterministic collation compares otherwise than DynamoDB's bytes:
-- the condition stays local, and pushed and local reads agree
CREATE FUNCTION pg_temp.plan(query text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE line text;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || query LOOP
    CONTINUE WHEN line ~ '^ *(Buckets|Filter):';   -- the walk ends at the current month
    RETURN NEXT line;
  END LOOP;
END $$;
CREATE COLLATION sec_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
SELECT id FROM sec_ev WHERE id = 'e00001' COLLATE sec_ci;
SELECT id FROM sec_ev_local WHERE id = 'e00001' COLLATE sec_ci;
SELECT pg_temp.plan($$SELECT id FROM sec_ev WHERE id = 'e00001' COLLATE sec_ci$$);
SELECT id FROM sec_ev WHERE causation_id COLLATE sec_ci IN ('e00001');
SELECT id FROM sec_ev_local WHERE causation_id COLLATE sec_ci IN ('e00001');
CREATE FOREIGN TABLE sec_ev_ci (id text COLLATE sec_ci, domain text, created timestamptz)
  SERVER sec_srv OPTIONS (table_name_prefix 'sec-', start_month '2024-01', lookahead_months '0');
SELECT id FROM sec_ev_ci WHERE id = 'e00002';
SELECT pg_temp.plan($$SELECT id FROM sec_ev_ci WHERE id = 'e00002'$$);
-- deterministic collations ("C", the default) compare bytes: pushed
SELECT id FROM sec_ev WHERE id = 'E00001' COLLATE "C";
SELECT pg_temp.plan($$SELECT id FROM sec_ev WHERE id = 'E00001' COLLATE "C"$$);
SELECT pg_temp.plan($$SELECT id FROM sec_ev WHERE id = 'E00001'$$);
