-- Reads in the order a projection needs, at a cost that follows what they
-- return.  Reads the COST store (test/data/cost.js): empty months from
-- 2020-01 to 2023-12, 1,200 events in 2024-01, a chunk of 40 events that
-- share one millisecond in 2024-02, and one event in the current month.
-- every error, warning and notice shows its SQLSTATE (test/regress/psql drops the LOCATION lines)
\set VERBOSITY verbose
\getenv ddb_url DDB_URL
\getenv s3_url S3_URL
SET timezone = 'UTC';

CREATE SERVER cost_srv FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (endpoint :'ddb_url', s3_endpoint :'s3_url', s3_force_path_style 'true');
CREATE USER MAPPING FOR CURRENT_USER SERVER cost_srv
  OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
CREATE FOREIGN TABLE events (
  id text, domain text, type text, identifier text, correlation_id text, causation_id text,
  sequence bigint, payload jsonb, meta jsonb, created timestamptz, time_bucket text, s3_reference text
) SERVER cost_srv OPTIONS (table_name_prefix 'cost-', start_month '2020-01', lookahead_months '0');
-- pages of 7 events: the millisecond of the chunk spans several Query pages
CREATE FOREIGN TABLE events_paged (
  id text, domain text, type text, identifier text, sequence bigint, created timestamptz,
  time_bucket text
) SERVER cost_srv OPTIONS (table_name_prefix 'cost-', start_month '2020-01', lookahead_months '0',
                           page_size '7');

-- Does a replay (rows in the order the scan returns them) follow the replay
-- order: created, domain, identifier (absent as empty), sequence, id, strings
-- byte by byte?  And is every stream in sequence order?
CREATE FUNCTION pg_temp.check_order(query text, descending bool DEFAULT false)
RETURNS TABLE (events bigint, in_replay_order bool, streams_in_sequence bool)
LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY EXECUTE format($q$
    WITH r AS MATERIALIZED (%s),
    n AS (SELECT row_number() OVER () AS n, * FROM r),
    m AS (SELECT n, row_number() OVER (ORDER BY created %2$s, domain %2$s,
                   coalesce(identifier, '') %2$s, sequence %2$s, id %2$s) AS m,
                 sequence - lag(sequence) OVER (PARTITION BY domain, identifier ORDER BY n) AS step
            FROM n)
    SELECT count(*), bool_and(n = m), bool_and(coalesce(step, %3$s) = %3$s) FROM m$q$,
    query, CASE WHEN descending THEN 'DESC' ELSE 'ASC' END,
    CASE WHEN descending THEN '-1' ELSE '1' END);
END $$;

-- the chunk the Node adapter wrote in one call, and the events around it
SELECT domain, coalesce(identifier, '') AS identifier, sequence, right(id, 4) AS ev,
       to_char(created, 'HH24:MI:SS.MS') AS at
  FROM events WHERE time_bucket = '2024-02';
-- the whole store, forwards and backwards, in default pages and in pages of 7
SELECT * FROM pg_temp.check_order('SELECT created, domain, identifier, sequence, id FROM events');
SELECT * FROM pg_temp.check_order('SELECT created, domain, identifier, sequence, id FROM events_paged');
SELECT * FROM pg_temp.check_order('SELECT created, domain, identifier, sequence, id FROM events
                                   ORDER BY created DESC', true);
SELECT * FROM pg_temp.check_order('SELECT created, domain, identifier, sequence, id FROM events_paged
                                   ORDER BY created DESC', true);
-- a query that reads neither domain, identifier nor sequence gets the same order
SELECT * FROM pg_temp.check_order($$SELECT e.created, x.domain, x.identifier, x.sequence, e.id
  FROM (SELECT row_number() OVER () AS n, id, created FROM events_paged
         WHERE time_bucket = '2024-02' AND type = 'tied') e
  JOIN events x USING (id) ORDER BY e.n$$);
-- lookups by id put what they find in the same order
SELECT domain, coalesce(identifier, '') AS identifier, sequence, right(id, 4) AS ev FROM events
  WHERE id IN ('c0000000-0000-4000-8000-000000002000', 'c0000000-0000-4000-8000-000000002001',
               'c0000000-0000-4000-8000-000000002002', 'c0000000-0000-4000-8000-000000002003',
               'c0000000-0000-4000-8000-000000002004', 'c0000000-0000-4000-8000-000000002005');

-- a multi-row INSERT: one millisecond for every row, ids in no relation to the sequence
CREATE FOREIGN TABLE ins (
  id text, domain text, type text, identifier text, sequence bigint, created timestamptz,
  time_bucket text
) SERVER cost_srv OPTIONS (table_name_prefix 'costins-', start_month '2024-01', lookahead_months '0');
SELECT event_store_dynamo.reset_store('ins');
INSERT INTO ins (id, domain, type, identifier, created)
SELECT 'i-' || to_char((n * 7) % 11, 'FM00'), 'order', 'step', CASE WHEN n % 3 = 0 THEN 'b' ELSE 'a' END,
       '2024-05-05 05:05:05.555+00'
  FROM generate_series(1, 10) n;
SELECT identifier, sequence, id FROM ins;
SELECT * FROM pg_temp.check_order('SELECT created, domain, identifier, sequence, id FROM ins');
