-- Query planning: conditions become key conditions, the access path follows
-- what a query asks for, and the requests sent show it.  Reads the REGRESS
-- store (test/data/regress.js).
-- every error, warning and notice shows its SQLSTATE (test/regress/psql drops the LOCATION lines)
\set VERBOSITY verbose
\getenv ddb_url DDB_URL
\getenv s3_url S3_URL
SET timezone = 'UTC';
-- the clock the extension reads ("now" for the walk's last month and a default created): the real
-- one, or the fixed one of event_store_dynamo.test_now (test/steps/45-regress-clock.sh sets it)
CREATE FUNCTION pg_temp.clock() RETURNS timestamptz STABLE LANGUAGE sql AS
  $$SELECT coalesce(nullif(current_setting('event_store_dynamo.test_now', true), '')::timestamptz, now())$$;

CREATE SERVER pd_srv FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (endpoint :'ddb_url', s3_endpoint :'s3_url', s3_force_path_style 'true');
CREATE USER MAPPING FOR CURRENT_USER SERVER pd_srv
  OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
CREATE FOREIGN TABLE events (
  id text, domain text, type text, identifier text, correlation_id text, causation_id text,
  sequence bigint, payload jsonb, meta jsonb, created timestamptz, time_bucket text, s3_reference text
) SERVER pd_srv OPTIONS (table_name_prefix 'regress-', s3_bucket 'regress-events', start_month '2024-01', lookahead_months '0');
-- the same table with pushdown off: every condition checked locally only
CREATE FOREIGN TABLE events_local (
  id text, domain text, type text, identifier text, correlation_id text, causation_id text,
  sequence bigint, payload jsonb, meta jsonb, created timestamptz, time_bucket text, s3_reference text
) SERVER pd_srv OPTIONS (table_name_prefix 'regress-', s3_bucket 'regress-events', start_month '2024-01', lookahead_months '0',
                         pushdown 'false');

-- plans and request counts; the walk ends at the current month, shown as CURRENT
CREATE FUNCTION pg_temp.plan(query text, run bool DEFAULT false) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
  line text;
  this_month text := to_char(pg_temp.clock() AT TIME ZONE 'UTC', 'YYYY-MM');
  walk_length int := (extract(year FROM pg_temp.clock() AT TIME ZONE 'UTC')::int - 2024) * 12
                     + extract(month FROM pg_temp.clock() AT TIME ZONE 'UTC')::int;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (COSTS OFF' ||
      CASE WHEN run THEN ', ANALYZE, TIMING OFF, SUMMARY OFF' ELSE '' END || ') ' || query LOOP
    CONTINUE WHEN line ~ '(Retries|Throttled|S3 GetObject Requests): 0$';
    RETURN NEXT regexp_replace(replace(replace(line, this_month, 'CURRENT'),
                                       '(' || walk_length || ')', '(all months)'), 'pg_temp_\d+\.', 'pg_temp.', 'g');
  END LOOP;
END $$;

-- a created range: only the months it touches, the range as key condition
SELECT * FROM pg_temp.plan($$SELECT id FROM events
  WHERE created >= '2024-03-01' AND created < '2024-04-01'$$, true);
SELECT * FROM pg_temp.plan($$SELECT id FROM events
  WHERE created BETWEEN '2024-01-31 23:59:59.999+00' AND '2024-02-01 09:15:00+00'$$, true);
SELECT right(id, 2) AS ev, created FROM events
  WHERE created BETWEEN '2024-01-31 23:59:59.999+00' AND '2024-02-01 09:15:00+00';
-- sub-millisecond bounds are widened to whole milliseconds and checked locally
SELECT right(id, 2) AS ev FROM events WHERE created > '2024-01-31 23:59:59.9985+00' AND created < '2024-02-01 09:15:00.0005+00';
-- a stable expression, evaluated when the scan starts: nothing is that recent (the start of
-- the current month, so that the answer is the same on every day of the month)
SELECT * FROM pg_temp.plan($$SELECT id FROM events WHERE created >= date_trunc('month', pg_temp.clock())$$, true);
-- time_bucket = and IN
SELECT * FROM pg_temp.plan($$SELECT id FROM events WHERE time_bucket IN ('2024-01', '2024-03')$$, true);
SELECT time_bucket, count(*) FROM events WHERE time_bucket IN ('2024-01', '2024-03') GROUP BY 1 ORDER BY 1;
-- contradictions send nothing
SELECT * FROM pg_temp.plan($$SELECT id FROM events
  WHERE created > '2024-03-01' AND created < '2024-02-01'$$, true);

-- id = and IN: a Query on the table's key each, never a walk
SELECT * FROM pg_temp.plan($$SELECT type FROM events WHERE id = '00000000-0000-4000-8000-000000000002'$$, true);
SELECT * FROM pg_temp.plan($$SELECT type FROM events
  WHERE id IN ('00000000-0000-4000-8000-000000000010', '00000000-0000-4000-8000-000000000002', 'no-such-id')$$, true);
SELECT right(id, 2) AS ev, type FROM events
  WHERE id IN ('00000000-0000-4000-8000-000000000010', '00000000-0000-4000-8000-000000000002', 'no-such-id');
-- the offloaded event: one Query and one S3 GetObject
SELECT * FROM pg_temp.plan($$SELECT length(payload::text) FROM events
  WHERE id = '00000000-0000-4000-8000-000000000007'$$, true);
-- with a parameter
PREPARE by_id(text) AS SELECT type, sequence FROM events WHERE id = $1;
EXECUTE by_id('00000000-0000-4000-8000-000000000005');
EXECUTE by_id('00000000-0000-4000-8000-000000000008');

-- causation_id = and IN: causationIndex
SELECT * FROM pg_temp.plan($$SELECT type FROM events WHERE causation_id = '00000000-0000-4000-8000-000000000001'$$, true);
SELECT right(id, 2) AS ev, type FROM events
  WHERE causation_id IN ('00000000-0000-4000-8000-000000000005', '00000000-0000-4000-8000-000000000002');
-- combined with other conditions, the most selective path wins
SELECT * FROM pg_temp.plan($$SELECT type FROM events WHERE causation_id = '00000000-0000-4000-8000-000000000001'
  AND id = '00000000-0000-4000-8000-000000000002' AND created > '2024-01-01'$$);

-- a stream of a table without a streamIndex: planned on streamIndex (the
-- planner does not ask DynamoDB whether the table has it); the scan finds
-- it missing, walks, filters locally and sorts by sequence
SELECT * FROM pg_temp.plan($$SELECT sequence FROM events WHERE domain = 'account' AND identifier = 'acc-1' ORDER BY sequence$$);
-- (the requests it takes grow with the months walked: not shown)
SELECT * FROM pg_temp.plan($$SELECT sequence FROM events WHERE domain = 'account' AND identifier = 'acc-1' ORDER BY sequence$$, true)
  AS line WHERE line !~ '(Requests|Capacity Units):';
SELECT sequence, type FROM events WHERE domain = 'account' AND identifier = 'acc-1' ORDER BY sequence;
SELECT sequence, type FROM events WHERE domain = 'account' AND identifier = 'acc-1' ORDER BY sequence DESC LIMIT 2;

-- order: the walk yields created order (no Sort), and newest first by walking backwards
SELECT * FROM pg_temp.plan($$SELECT id FROM events ORDER BY created$$);
SELECT * FROM pg_temp.plan($$SELECT id FROM events ORDER BY created DESC LIMIT 3$$);
SELECT * FROM pg_temp.plan($$SELECT id FROM events WHERE created < '2024-04-01' ORDER BY created DESC LIMIT 3$$, true);
SELECT right(id, 2) AS ev, created FROM events WHERE created < '2024-04-01' ORDER BY created DESC LIMIT 3;

-- LIMIT: the first page is small, so LIMIT 10 reads two buckets' worth only
SELECT * FROM pg_temp.plan($$SELECT id FROM events LIMIT 3$$, true);
SELECT * FROM pg_temp.plan($$SELECT id, type FROM events LIMIT 10$$, true);
-- count(*) and the index's own keys need no BatchGetItem at all
SELECT * FROM pg_temp.plan($$SELECT count(*) FROM events WHERE created < '2024-04-01'$$, true);

-- joins: a nested loop looks events up by id and by causation id
CREATE TABLE commands (id int, event_id text, caused text);
INSERT INTO commands VALUES (1, '00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000001'),
                            (2, '00000000-0000-4000-8000-000000000007', '00000000-0000-4000-8000-000000000007');
ANALYZE commands;
SELECT * FROM pg_temp.plan($$SELECT c.id, e.type FROM commands c JOIN events e ON e.id = c.event_id$$, true);
SELECT c.id, e.type FROM commands c JOIN events e ON e.id = c.event_id ORDER BY c.id;
SELECT * FROM pg_temp.plan($$SELECT c.id, e.type FROM commands c JOIN events e ON e.causation_id = c.caused$$, true);
SELECT c.id, e.type FROM commands c JOIN events e ON e.causation_id = c.caused ORDER BY c.id;

-- a stream read on a table with a streamIndex (a table this extension
-- creates has one): Query streamIndex, in sequence order, no Sort
CREATE FOREIGN TABLE streams (id text, domain text, type text, identifier text, sequence bigint,
  payload jsonb, created timestamptz) SERVER pd_srv
  OPTIONS (table_name_prefix 'pushdown-streams-', start_month '2024-01', lookahead_months '0');
SELECT event_store_dynamo.reset_store('streams');
INSERT INTO streams (domain, type, identifier, payload)
  SELECT 'cart', 'item-added', 'c' || (g % 3), jsonb_build_object('g', g) FROM generate_series(1, 30) g;
INSERT INTO streams (domain, type, payload) VALUES ('cart', 'no-identifier', '{}');
SELECT * FROM pg_temp.plan($$SELECT sequence, type FROM streams
  WHERE domain = 'cart' AND identifier = 'c1' ORDER BY sequence$$);
SELECT * FROM pg_temp.plan($$SELECT sequence, payload FROM streams
  WHERE domain = 'cart' AND identifier = 'c1' AND sequence BETWEEN 3 AND 5 ORDER BY sequence$$, true);
SELECT sequence, payload FROM streams
  WHERE domain = 'cart' AND identifier = 'c1' AND sequence BETWEEN 3 AND 5 ORDER BY sequence;
SELECT count(*), max(sequence) FROM streams WHERE domain = 'cart' AND identifier = 'c2';
-- several streams, or the stream without identifier (not in the index): the walk
SELECT * FROM pg_temp.plan($$SELECT count(*) FROM streams WHERE domain = 'cart' AND identifier IN ('c1', 'c2')$$);
SELECT count(*) FROM streams WHERE domain = 'cart' AND identifier IN ('c1', 'c2');
SELECT type, sequence FROM streams WHERE domain = 'cart' AND identifier = '';
SELECT type, sequence FROM streams WHERE domain = 'cart' AND identifier IS NULL;

-- pushdown off: the plain walk, every condition checked locally
SELECT * FROM pg_temp.plan($$SELECT id FROM events_local WHERE id = '00000000-0000-4000-8000-000000000002'$$);

-- every pushed query returns what the same query returns with pushdown off
CREATE FUNCTION pg_temp.same(condition text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  pushed bigint;
  local bigint;
  differ bigint;
BEGIN
  EXECUTE 'SELECT count(*) FROM events WHERE ' || condition INTO pushed;
  EXECUTE 'SELECT count(*) FROM events_local WHERE ' || condition INTO local;
  EXECUTE format('SELECT count(*) FROM ((SELECT id, created, sequence, payload::text FROM events WHERE %s
                   EXCEPT ALL SELECT id, created, sequence, payload::text FROM events_local WHERE %s)
                  UNION ALL (SELECT id, created, sequence, payload::text FROM events_local WHERE %s
                   EXCEPT ALL SELECT id, created, sequence, payload::text FROM events WHERE %s)) d',
                 condition, condition, condition, condition) INTO differ;
  RETURN format('%s rows, %s', pushed, CASE WHEN differ = 0 AND pushed = local THEN 'same' ELSE 'DIFFERENT' END);
END $$;
SELECT condition, pg_temp.same(condition) FROM (VALUES
  ($$created >= '2024-02-01' AND created < '2024-03-01'$$),
  ($$created > '2024-01-31 23:59:59.999+00'$$),
  ($$created <= '2024-01-31 23:59:59.999+00'$$),
  ($$created = '2024-02-29 23:59:59.999+00'$$),
  ($$created < '2024-01-01'$$),
  ($$time_bucket = '2024-02'$$),
  ($$time_bucket IN ('2024-01', '2024-02') AND created > '2024-01-20'$$),
  ($$id = '00000000-0000-4000-8000-000000000004'$$),
  ($$id IN ('00000000-0000-4000-8000-000000000004', '00000000-0000-4000-8000-000000000099')$$),
  ($$id = '00000000-0000-4000-8000-000000000004' AND created > '2024-02-01'$$),
  ($$causation_id = '00000000-0000-4000-8000-000000000007'$$),
  ($$causation_id IN ('00000000-0000-4000-8000-000000000001', 'x') AND created < '2024-02-01'$$),
  ($$domain = 'account' AND identifier = 'acc-1' AND sequence BETWEEN 2 AND 4$$),
  ($$identifier IS NULL$$)
) AS c(condition);
-- and on the stream store
CREATE FOREIGN TABLE streams_local (id text, domain text, identifier text, sequence bigint)
  SERVER pd_srv OPTIONS (table_name_prefix 'pushdown-streams-', start_month '2024-01', lookahead_months '0',
                         pushdown 'false');
SELECT (SELECT array_agg(id ORDER BY sequence) FROM streams WHERE domain = 'cart' AND identifier = 'c0' AND sequence > 4)
     = (SELECT array_agg(id ORDER BY sequence) FROM streams_local WHERE domain = 'cart' AND identifier = 'c0' AND sequence > 4)
       AS same_stream;

-- the table recreated outside without streamIndex (here through another
-- foreign table on the same DynamoDB table, created with stream_index
-- 'false'): a prepared plan keeps its Query on it; the stream read walks
-- instead of failing, and so does every later plan's (planning does not
-- ask DynamoDB whether the index is there)
CREATE FOREIGN TABLE streams_bare (id text, domain text, type text, identifier text, sequence bigint,
  payload jsonb, created timestamptz) SERVER pd_srv
  OPTIONS (table_name_prefix 'pushdown-streams-', start_month '2024-01', lookahead_months '0',
           stream_index 'false');
PREPARE stream_c1 AS SELECT sequence, type FROM streams WHERE domain = 'cart' AND identifier = 'c1' ORDER BY sequence;
PREPARE stream_c1_last AS SELECT sequence, type FROM streams WHERE domain = 'cart' AND identifier = 'c1'
  ORDER BY sequence DESC LIMIT 2;
SELECT * FROM pg_temp.plan($$EXECUTE stream_c1$$);
SELECT * FROM pg_temp.plan($$EXECUTE stream_c1_last$$);
SELECT event_store_dynamo.reset_store('streams_bare') IS NOT NULL AS recreated;
-- created runs against sequence here: a walk alone would return them backwards
INSERT INTO streams_bare (domain, type, identifier, created) VALUES
  ('cart', 'first', 'c1', '2024-03-03 00:00:00+00'), ('cart', 'second', 'c1', '2024-03-02 00:00:00+00'),
  ('cart', 'third', 'c1', '2024-03-01 00:00:00+00');
INSERT INTO streams_bare (domain, type, identifier, created) VALUES ('cart', 'other', 'c2', '2024-03-02 00:00:00+00');
SELECT sequence, type FROM streams WHERE domain = 'cart' AND identifier = 'c1' ORDER BY sequence;
EXECUTE stream_c1;
EXECUTE stream_c1_last;
SELECT * FROM pg_temp.plan($$SELECT sequence, type FROM streams
  WHERE domain = 'cart' AND identifier = 'c1' ORDER BY sequence$$);
DEALLOCATE stream_c1;
DEALLOCATE stream_c1_last;

-- planning sends no request, so a plain EXPLAIN of any plan works with no
-- credentials and no reachable endpoint: a role whose user mapping has no
-- keys (which may not use the server process's credentials either), on a
-- server whose endpoint nothing listens on; and the same plans through
-- the fault front (no faults set), which counts what reaches it: nothing
\getenv ddb_fault_url DDB_FAULT_URL
SELECT set_config('pushdown.fault_url', :'ddb_fault_url', false) IS NOT NULL AS fault_url_set;
CREATE TEMP TABLE front_reply (body text);
CREATE FUNCTION pg_temp.front(cfg text DEFAULT NULL) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  reply text;
BEGIN
  DELETE FROM front_reply;
  EXECUTE format('COPY front_reply FROM PROGRAM %L WITH (FORMAT csv, QUOTE %L, DELIMITER %L)',
    CASE WHEN cfg IS NULL THEN format('curl -s %s/__faults', current_setting('pushdown.fault_url'))
         ELSE format('curl -s -X POST -d %s %s/__faults', quote_literal(cfg), current_setting('pushdown.fault_url'))
    END, E'\x01', E'\x02');
  SELECT string_agg(body, E'\n') INTO reply FROM front_reply;
  RETURN reply::jsonb;
END $$;
CREATE FUNCTION pg_temp.explain_all(tbl text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  q text;
  line text;
BEGIN
  FOREACH q IN ARRAY ARRAY[
    'SELECT * FROM %s WHERE domain = ''cart'' AND identifier = ''c1'' ORDER BY sequence',
    'SELECT * FROM %s WHERE domain = ''cart'' AND identifier = ''c1'' ORDER BY sequence DESC LIMIT 2',
    'SELECT * FROM %s WHERE id IN (''a'', ''b'')',
    'SELECT * FROM %s WHERE causation_id = ''a''',
    'SELECT * FROM %s WHERE created > now() - interval ''1 day'' ORDER BY created DESC LIMIT 5',
    'SELECT count(*) FROM %s',
    'SELECT c.id FROM commands c JOIN %s e ON e.id = c.event_id',
    'INSERT INTO %s (domain, type, identifier) VALUES (''cart'', ''planned'', ''c1'')'
  ] LOOP
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || format(q, tbl) LOOP
      IF line ~ '(Foreign Scan|Insert on|DynamoDB Access)' THEN
        RETURN NEXT regexp_replace(line, 'pg_temp_\d+\.', 'pg_temp.', 'g');
      END IF;
    END LOOP;
  END LOOP;
END $$;
CREATE SERVER pd_nowhere_srv FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (endpoint 'http://127.0.0.1:1', s3_endpoint 'http://127.0.0.1:1', s3_force_path_style 'true');
CREATE SERVER pd_front_srv FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (endpoint :'ddb_fault_url', s3_endpoint :'s3_url', s3_force_path_style 'true');
CREATE USER MAPPING FOR CURRENT_USER SERVER pd_front_srv
  OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
CREATE ROLE regress_pd_nokeys;
CREATE USER MAPPING FOR regress_pd_nokeys SERVER pd_nowhere_srv;
CREATE USER MAPPING FOR regress_pd_nokeys SERVER pd_front_srv;
CREATE FOREIGN TABLE nowhere (id text, domain text, type text, identifier text, causation_id text,
  sequence bigint, created timestamptz) SERVER pd_nowhere_srv OPTIONS (table_name_prefix 'pushdown-streams-');
CREATE FOREIGN TABLE counted (id text, domain text, type text, identifier text, causation_id text,
  sequence bigint, created timestamptz) SERVER pd_front_srv OPTIONS (table_name_prefix 'pushdown-streams-');
GRANT SELECT, INSERT ON nowhere, counted, commands TO regress_pd_nokeys;
SELECT pg_temp.front('{}')->'requests' AS requests_after_reset;
SET ROLE regress_pd_nokeys;
SELECT * FROM pg_temp.explain_all('nowhere');
SELECT * FROM pg_temp.explain_all('counted');
-- a read needs the credentials, which it has not
SELECT count(*) FROM nowhere;
RESET ROLE;
SELECT * FROM pg_temp.explain_all('counted');
PREPARE counted_c1 AS SELECT sequence FROM counted WHERE domain = 'cart' AND identifier = 'c1' ORDER BY sequence;
EXPLAIN (COSTS OFF) EXECUTE counted_c1;
SELECT pg_temp.front()->'requests' AS requests_of_plain_explain;
-- EXPLAIN ANALYZE runs the scan: the table has no streamIndex any more
-- (recreated without it above), so the Query on it is refused and the
-- stream is walked instead
SELECT * FROM pg_temp.plan($$EXECUTE counted_c1$$, true) AS line WHERE line !~ '(Requests|Capacity Units):';
EXECUTE counted_c1;
SELECT (pg_temp.front()->'requests')::int > 0 AS explain_analyze_asked;
DEALLOCATE counted_c1;
SET client_min_messages = warning;
DROP SERVER pd_nowhere_srv CASCADE;
DROP SERVER pd_front_srv CASCADE;
RESET client_min_messages;
REVOKE ALL ON commands FROM regress_pd_nokeys;
DROP ROLE regress_pd_nokeys;

DROP TABLE commands;
DROP SERVER pd_srv CASCADE;
