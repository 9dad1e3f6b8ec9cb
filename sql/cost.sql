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

-- Conditions that narrow the months walked.  plan() shows the plan, and with
-- run the requests sent and the read units they consumed.
CREATE FUNCTION pg_temp.plan(query text, run bool DEFAULT false) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
  line text;
  this_month text := to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM');
  walk_length int := (extract(year FROM now() AT TIME ZONE 'UTC')::int - 2020) * 12
                     + extract(month FROM now() AT TIME ZONE 'UTC')::int;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (COSTS OFF' ||
      CASE WHEN run THEN ', ANALYZE, TIMING OFF, SUMMARY OFF' ELSE '' END || ') ' || query LOOP
    CONTINUE WHEN line ~ '(Retries|Throttled|S3 GetObject Requests): 0$';
    RETURN NEXT regexp_replace(replace(replace(line, this_month, 'CURRENT'),
                                       '(' || walk_length || ')', '(all months)'),
                               '(\d{4}-\d\d) \.\. CURRENT \(\d+\)', '\1 .. CURRENT (through now)');
  END LOOP;
END $$;
CREATE FOREIGN TABLE events_local (
  id text, domain text, type text, identifier text, sequence bigint, created timestamptz,
  time_bucket text
) SERVER cost_srv OPTIONS (table_name_prefix 'cost-', start_month '2020-01', lookahead_months '0',
                           pushdown 'false');

-- the cursor of a catch-up, (created, id) > (...): the months from the cursor's on,
-- created from the cursor's millisecond on as the key condition
SELECT * FROM pg_temp.plan($$SELECT id FROM events
  WHERE (created, id) > ('2024-02-10 10:00:00+00', 'c0000000-0000-4000-8000-000000002020')
    AND created < '2024-03-01'$$, true);
SELECT count(*) FROM events
  WHERE (created, id) > ('2024-02-10 10:00:00+00', 'c0000000-0000-4000-8000-000000002020')
    AND created < '2024-03-01';
-- backwards, and with the stable expressions a catch-up would use
SELECT * FROM pg_temp.plan($$SELECT id FROM events
  WHERE (created, id) < ('2024-01-01 00:05:00+00', 'c0000000-0000-4000-8000-000000000100')$$, true);
SELECT * FROM pg_temp.plan($$SELECT right(id, 4) FROM events
  WHERE (created, id) > (date_trunc('month', now()), '')$$, true);
SELECT right(id, 4) AS ev FROM events WHERE (created, id) > (date_trunc('month', now()), '');
-- created compared with a date or a timestamp without time zone (in the session's zone)
SELECT * FROM pg_temp.plan($$SELECT id FROM events
  WHERE created >= DATE '2024-02-10' AND created < DATE '2024-02-11'$$, true);
SELECT * FROM pg_temp.plan($$SELECT id FROM events
  WHERE created > TIMESTAMP '2024-02-10 10:00:00' AND created < TIMESTAMP '2024-04-01 00:00:00'$$);
SELECT count(*) FROM events WHERE created > TIMESTAMP '2024-02-10 10:00:00' AND created < DATE '2024-03-01';
-- 19:00 in Tokyo is 10:00 UTC, the chunk's millisecond
SET timezone = 'Asia/Tokyo';
SELECT count(*) AS pushed, (SELECT count(*) FROM events_local
  WHERE created >= TIMESTAMP '2024-02-10 19:00:00' AND created < DATE '2024-03-01') AS local
  FROM events WHERE created >= TIMESTAMP '2024-02-10 19:00:00' AND created < DATE '2024-03-01';
SET timezone = 'UTC';
SELECT count(*) FROM events WHERE created >= TIMESTAMP '2024-02-10 19:00:00' AND created < DATE '2024-03-01';
SELECT * FROM pg_temp.plan($$SELECT id FROM events WHERE created > current_date - 7$$);
SELECT (SELECT count(*) FROM events WHERE created > current_date - 7) =
       (SELECT count(*) FROM events_local WHERE created > current_date - 7) AS same_count;
-- time_bucket ranges
SELECT * FROM pg_temp.plan($$SELECT id FROM events WHERE time_bucket BETWEEN '2023-12' AND '2024-02'$$);
SELECT * FROM pg_temp.plan($$SELECT id FROM events WHERE time_bucket >= '2024-02' AND time_bucket < '2024-03'$$, true);
SELECT * FROM pg_temp.plan($$SELECT id FROM events WHERE time_bucket > '2024-01' AND time_bucket <= '2024-02'$$);
SELECT time_bucket, count(*) FROM events WHERE time_bucket BETWEEN '2023-12' AND '2024-02' GROUP BY 1 ORDER BY 1;
-- under a collation that does not order as bytes do, time_bucket ranges are checked locally
SELECT * FROM pg_temp.plan($$SELECT id FROM events WHERE time_bucket COLLATE "en-x-icu" >= '2024-02'$$);

-- resume after an event: the lookup of the event, then the range after it
SELECT * FROM pg_temp.plan($$SELECT right(id, 4) FROM events
  WHERE (created, domain, coalesce(identifier, ''), sequence, id) >
        (SELECT created, domain, coalesce(identifier, ''), sequence, id FROM events
          WHERE id = 'c0000000-0000-4000-8000-000000002020')
    AND created < '2024-03-01'$$, true);
SELECT domain, coalesce(identifier, '') AS identifier, sequence, right(id, 4) AS ev FROM events
  WHERE (created, domain, coalesce(identifier, ''), sequence, id) >
        (SELECT created, domain, coalesce(identifier, ''), sequence, id FROM events
          WHERE id = 'c0000000-0000-4000-8000-000000002020')
    AND created < '2024-03-01';
-- an event that does not exist: nothing after it, and no walk
SELECT * FROM pg_temp.plan($$SELECT id FROM events
  WHERE (created, id) > (SELECT created, id FROM events WHERE id = 'no-such-event')$$, true);

-- a stream read backwards: newest first, no Sort (the table reset_store made has a streamIndex)
SELECT * FROM pg_temp.plan($$SELECT sequence FROM ins WHERE domain = 'order' AND identifier = 'a'
  ORDER BY sequence DESC$$, true);
SELECT sequence, id FROM ins WHERE domain = 'order' AND identifier = 'a' ORDER BY sequence DESC;
SELECT sequence FROM ins WHERE domain = 'order' AND identifier = 'a' AND sequence < 5
  ORDER BY sequence DESC LIMIT 2;

-- LIMIT: the rows it needs are asked for (Rows Wanted), and only those are
-- hydrated.  The first event is four years after start_month: 48 empty months,
-- one small probe each, a few at a time, then 10 keys and their 10 events.
SELECT * FROM pg_temp.plan($$SELECT * FROM events LIMIT 10$$, true);
SELECT right(id, 4) AS ev FROM events LIMIT 3;
-- newest first: the current month has an event
SELECT * FROM pg_temp.plan($$SELECT * FROM events ORDER BY created DESC LIMIT 1$$, true);
-- the newest event of a month of 1,200
SELECT * FROM pg_temp.plan($$SELECT * FROM events WHERE time_bucket = '2024-01'
  ORDER BY created DESC LIMIT 1$$, true);
-- OFFSET counts too; a month of 1,200 events reads 15 of them
SELECT * FROM pg_temp.plan($$SELECT * FROM events WHERE time_bucket = '2024-01' OFFSET 5 LIMIT 10$$, true);
-- conditions checked locally drop rows: the scan reads on, asking for twice as many each time
SELECT * FROM pg_temp.plan($$SELECT id FROM events WHERE time_bucket = '2024-01'
  AND payload->>'n' IN ('7', '14', '30') LIMIT 3$$, true);
-- a catch-up that reads the 10 events after its cursor, out of a month of 1,200
SELECT * FROM pg_temp.plan($$SELECT * FROM events
  WHERE (created, id) > ('2024-01-01 00:19:49+00', 'c0000000-0000-4000-8000-000000001190')
  ORDER BY created LIMIT 10$$, true);
SELECT min(right(id, 4)), max(right(id, 4)), count(*) FROM (SELECT id FROM events
  WHERE (created, id) > ('2024-01-01 00:19:49+00', 'c0000000-0000-4000-8000-000000001190')
  ORDER BY created LIMIT 10) x;
-- resume after an event, a page at a time: after the first event of the chunk (in replay
-- order), the events of its millisecond are read from the first on, and checked locally
SELECT * FROM pg_temp.plan($$SELECT right(id, 4) FROM events
  WHERE (created, domain, coalesce(identifier, ''), sequence, id) >
        (SELECT created, domain, coalesce(identifier, ''), sequence, id FROM events
          WHERE id = 'c0000000-0000-4000-8000-000000002006')
  ORDER BY created LIMIT 5$$, true);
SELECT domain, coalesce(identifier, '') AS identifier, sequence, right(id, 4) AS ev FROM events
  WHERE (created, domain, coalesce(identifier, ''), sequence, id) >
        (SELECT created, domain, coalesce(identifier, ''), sequence, id FROM events
          WHERE id = 'c0000000-0000-4000-8000-000000002006')
  ORDER BY created LIMIT 5;
-- after the last event of the month before the chunk: no tie to read past
SELECT * FROM pg_temp.plan($$SELECT right(id, 4) FROM events
  WHERE (created, domain, coalesce(identifier, ''), sequence, id) >
        (SELECT created, domain, coalesce(identifier, ''), sequence, id FROM events
          WHERE id = 'c0000000-0000-4000-8000-000000001200')
  ORDER BY created LIMIT 5$$, true);
-- no LIMIT hint where rows are sorted, grouped or aggregated before the LIMIT
SELECT * FROM pg_temp.plan($$SELECT * FROM events WHERE time_bucket = '2024-02' ORDER BY type LIMIT 1$$);
SELECT * FROM pg_temp.plan($$SELECT count(*) FROM events WHERE time_bucket = '2024-02' LIMIT 1$$);
-- a replay of a month reads it in pages that grow with the rows returned (how many pages
-- are asked for depends on when the answers come in: bounds, not counts)
CREATE FUNCTION pg_temp.requests(query text)
RETURNS TABLE (queries int, batch_gets int, pages_ahead int) LANGUAGE plpgsql AS $$
DECLARE
  j jsonb;
BEGIN
  EXECUTE 'EXPLAIN (ANALYZE, VERBOSE, FORMAT JSON) ' || query INTO j;
  RETURN QUERY SELECT
    (SELECT sum(x::int)::int FROM jsonb_path_query(j, 'strict $.**."DynamoDB Query Requests"') x),
    (SELECT sum(x::int)::int FROM jsonb_path_query(j, 'strict $.**."DynamoDB BatchGetItem Requests"') x),
    (SELECT sum(x::int)::int FROM jsonb_path_query(j, 'strict $.**."Pages Asked Ahead"') x);
END $$;
SELECT queries BETWEEN 3 AND 12 AS few_queries, batch_gets BETWEEN 12 AND 24 AS batches_of_100,
       pages_ahead > 0 AS pipelined
  FROM pg_temp.requests($$SELECT count(payload) FROM events WHERE time_bucket = '2024-01'$$);

-- a query on the index's keys alone (id, created, time_bucket, count(*)) is answered without
-- BatchGetItem, and the index knows no stream: its ties come in id order, not in replay order;
-- with sequence in the select list the same millisecond comes in replay order
SELECT * FROM pg_temp.requests($$SELECT id FROM events WHERE created = '2024-02-10 10:00:00+00'$$);
SELECT string_agg(right(id, 4), ' ') AS keys_only
  FROM (SELECT id FROM events WHERE created = '2024-02-10 10:00:00+00') k;
SELECT string_agg(right(id, 4) || '#' || sequence, ' ') AS with_sequence
  FROM (SELECT id, sequence FROM events WHERE created = '2024-02-10 10:00:00+00') k;
-- ... but a subquery's sequence that nothing above it uses is dropped by the planner: the index alone
SELECT string_agg(right(id, 4), ' ') AS sequence_unused
  FROM (SELECT id, sequence FROM events WHERE created = '2024-02-10 10:00:00+00') k;
-- created against a date known only when the scan starts: the months from it on, not the walk of
-- every month (one Query for the current month, one more when the date falls in the month before)
SELECT queries BETWEEN 1 AND 2 AS from_that_month_on, batch_gets = 0 AS keys_only
  FROM pg_temp.requests($$SELECT id FROM events WHERE created > current_date - 7$$);

-- Pipelining within one partition: the next page is asked for as soon as a
-- page starts being returned (EXPLAIN VERBOSE counts the pages asked ahead).
-- A stream read in pages of 2: 7 events, 4 pages, the last 3 asked ahead.
CREATE FOREIGN TABLE ins_paged (
  id text, domain text, type text, identifier text, sequence bigint, causation_id text,
  created timestamptz
) SERVER cost_srv OPTIONS (table_name_prefix 'costins-', start_month '2024-01', lookahead_months '0',
                           page_size '2');
SELECT * FROM pg_temp.requests($$SELECT sequence, type FROM ins_paged
  WHERE domain = 'order' AND identifier = 'a'$$);
SELECT string_agg(sequence::text, ' ') FROM ins_paged WHERE domain = 'order' AND identifier = 'a';
-- a causation lookup with 250 events: hydrated 100 at a time, the next 100 under way
INSERT INTO ins_paged (domain, type, identifier, causation_id, created)
SELECT 'caused', 'effect', 'x', 'cause-1', '2024-05-06 00:00:00+00'::timestamptz + n * interval '1 second'
  FROM generate_series(1, 250) n;
SELECT * FROM pg_temp.requests($$SELECT sequence, type FROM ins_paged WHERE causation_id = 'cause-1'$$);
SELECT count(*), min(sequence), max(sequence),
       bool_and(sequence = n) AS in_order
  FROM (SELECT sequence, row_number() OVER () AS n FROM ins_paged WHERE causation_id = 'cause-1') x;
SELECT count(payload), count(DISTINCT id) FROM events WHERE time_bucket = '2024-01';

DROP SERVER cost_srv CASCADE;
