-- on_bad_item 'warn' inside a parallel operation: a plan with a Gather runs
-- every node in parallel mode, where no subtransaction can be started; a
-- row that cannot be converted is still skipped with a WARNING.
\getenv ddb_url DDB_URL
\getenv s3_url S3_URL
SET timezone = 'UTC';
\set VERBOSITY verbose

CREATE SERVER parallel_srv FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (endpoint :'ddb_url', s3_endpoint :'s3_url', s3_force_path_style 'true');
CREATE USER MAPPING FOR CURRENT_USER SERVER parallel_srv
  OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
CREATE FOREIGN TABLE pw (id text, domain text, type text, identifier text, created timestamptz)
  SERVER parallel_srv OPTIONS (table_name_prefix 'parallel-', start_month '2024-03', lookahead_months '0');
SELECT event_store_dynamo.reset_store('pw');
INSERT INTO pw (id, domain, type, identifier, created)
  SELECT format('00000000-0000-4000-8000-%s', lpad(n::text, 12, '0')), 'p', CASE WHEN n % 4 = 0 THEN 'not-a-number' ELSE n::text END, '1',
         '2024-03-01'::timestamptz + n * interval '1 minute'
    FROM generate_series(1, 12) n;
-- the same events, type read as an integer: every fourth cannot be
CREATE FOREIGN TABLE pw_int (type int, time_bucket text)
  SERVER parallel_srv OPTIONS (table_name_prefix 'parallel-', start_month '2024-03', lookahead_months '0',
                               on_bad_item 'warn');
CREATE FOREIGN TABLE pw_text (type text, time_bucket text)
  SERVER parallel_srv OPTIONS (table_name_prefix 'parallel-', start_month '2024-03', lookahead_months '0',
                               on_bad_item 'warn');
CREATE TABLE local_rows AS SELECT generate_series(1, 1000) AS n;
ANALYZE local_rows;

SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET force_parallel_mode = on;
-- the plan has a Gather (its other lines depend on the date: not shown)
CREATE FUNCTION pg_temp.plan_has(query text, node text) RETURNS bool LANGUAGE plpgsql AS $$
DECLARE
  line text;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || query LOOP
    IF line LIKE '%' || node || '%' THEN
      RETURN true;
    END IF;
  END LOOP;
  RETURN false;
END $$;
SELECT pg_temp.plan_has($$SELECT type, (SELECT count(*) FROM local_rows) AS local
                            FROM pw_int WHERE time_bucket = '2024-03'$$, 'Gather') AS gather;
SELECT type, (SELECT count(*) FROM local_rows) AS local FROM pw_int WHERE time_bucket = '2024-03';
-- without any bad item
SELECT count(*) AS events, (SELECT count(*) FROM local_rows) AS local
  FROM pw_text WHERE time_bucket = '2024-03';
RESET force_parallel_mode;
RESET max_parallel_workers_per_gather;
RESET min_parallel_table_scan_size;
RESET parallel_tuple_cost;
RESET parallel_setup_cost;

DROP TABLE local_rows;
DROP SERVER parallel_srv CASCADE;
