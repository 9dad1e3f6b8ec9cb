-- What the README promises about appends and reads, each checked against the
-- real local stack: given ids without the look-up (check_given_ids 'false')
-- and two writers of one id; a month bigger than a page read with LIMIT and
-- the default paging; json and text payload columns; a non-default
-- s3_key_prefix; the BatchGetItem of stream heads for INSERT ... SELECT; a
-- commit over 4 MB and one failing part-way; max_in_flight; the
-- ProjectionExpression of real queries.  The requests are seen through the
-- fault front (no faults set), which counts and records what it passes on.
-- every error, warning and notice shows its SQLSTATE (test/regress/psql drops the LOCATION lines)
\set VERBOSITY verbose
\getenv ddb_url DDB_URL
\getenv ddb_fault_url DDB_FAULT_URL
\getenv s3_url S3_URL
SET timezone = 'UTC';
SELECT set_config('promises.fault_url', :'ddb_fault_url', false) IS NOT NULL AS fault_url_set;

CREATE TEMP TABLE front_reply (body text);
-- the fault front's control API: configure (and reset the counters), read the counters, read
-- the recorded request bodies
CREATE FUNCTION pg_temp.front(cfg text DEFAULT NULL) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  reply text;
BEGIN
  DELETE FROM front_reply;
  EXECUTE format('COPY front_reply FROM PROGRAM %L WITH (FORMAT csv, QUOTE %L, DELIMITER %L)',
    CASE WHEN cfg IS NULL THEN format('curl -s %s/__faults', current_setting('promises.fault_url'))
         ELSE format('curl -s -X POST -d %s %s/__faults', quote_literal(cfg), current_setting('promises.fault_url'))
    END, E'\x01', E'\x02');
  SELECT string_agg(body, E'\n') INTO reply FROM front_reply;
  RETURN reply::jsonb;
END $$;
CREATE FUNCTION pg_temp.recorded(op text) RETURNS SETOF jsonb LANGUAGE plpgsql AS $$
DECLARE
  reply text;
BEGIN
  DELETE FROM front_reply;
  EXECUTE format('COPY front_reply FROM PROGRAM %L WITH (FORMAT csv, QUOTE %L, DELIMITER %L)',
    format('curl -s %s/__faults/requests', current_setting('promises.fault_url')), E'\x01', E'\x02');
  SELECT string_agg(body, E'\n') INTO reply FROM front_reply;
  RETURN QUERY SELECT r->'body' FROM jsonb_array_elements(reply::jsonb) r
                WHERE r->>'target' = 'DynamoDB_20120810.' || op;
END $$;
-- the arrival of every request at the front (faulted or not), in ms since the last configuration
CREATE FUNCTION pg_temp.arrivals() RETURNS TABLE (n bigint, target text, at float8, fault text) LANGUAGE plpgsql AS $$
DECLARE
  reply text;
BEGIN
  DELETE FROM front_reply;
  EXECUTE format('COPY front_reply FROM PROGRAM %L WITH (FORMAT csv, QUOTE %L, DELIMITER %L)',
    format('curl -s %s/__faults/arrivals', current_setting('promises.fault_url')), E'\x01', E'\x02');
  SELECT string_agg(body, E'\n') INTO reply FROM front_reply;
  RETURN QUERY SELECT o - 1, r->>'target', (r->>'at')::float8, r->>'fault'
                 FROM jsonb_array_elements(reply::jsonb) WITH ORDINALITY AS a(r, o);
END $$;
-- an error's SQLSTATE, message and detail, for the cases whose detail is asserted too
CREATE FUNCTION pg_temp.outcome(query text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  state text;
  msg text;
  detail text;
BEGIN
  EXECUTE query;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL;
  RETURN state || ': ' || msg || E'\n' || coalesce(detail, '');
END $$;
SELECT pg_temp.front('{"record":true}') ->> 'record' AS recording;

CREATE SERVER pr_srv FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (endpoint :'ddb_url', s3_endpoint :'s3_url', s3_force_path_style 'true');
CREATE USER MAPPING FOR CURRENT_USER SERVER pr_srv
  OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
CREATE SERVER pr_front FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (endpoint :'ddb_fault_url', s3_endpoint :'s3_url', s3_force_path_style 'true');
CREATE USER MAPPING FOR CURRENT_USER SERVER pr_front
  OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
CREATE FOREIGN TABLE pr (
  id text, domain text, type text, identifier text, sequence bigint, payload jsonb, created timestamptz,
  s3_reference text
) SERVER pr_srv OPTIONS (table_name_prefix 'promises-', s3_bucket 'promises-events', start_month '2024-01',
                         lookahead_months '0');
SELECT event_store_dynamo.reset_store('pr');

-- ---- given ids with check_given_ids 'false': only the Put's condition catches a duplicate ----
CREATE FOREIGN TABLE pr_nocheck (
  id text, domain text, type text, identifier text, sequence bigint, payload jsonb, created timestamptz
) SERVER pr_srv OPTIONS (table_name_prefix 'promises-', start_month '2024-01', lookahead_months '0',
                         check_given_ids 'false');
INSERT INTO pr_nocheck (id, domain, type, identifier, payload, created)
  VALUES ('00000000-0000-4000-8000-00000000d001', 'given', 'first', 'g1', '{"v": 1}', '2024-02-01 10:00:00+00');
-- the same id and created again: refused at commit (23505), the first event is left as it was
INSERT INTO pr_nocheck (id, domain, type, identifier, payload, created)
  VALUES ('00000000-0000-4000-8000-00000000d001', 'given', 'second', 'g2', '{"v": 2}', '2024-02-01 10:00:00+00');
SELECT type, identifier, sequence, payload FROM pr WHERE id = '00000000-0000-4000-8000-00000000d001';
SELECT event_store_dynamo.stream_version('pr', 'given', 'g2') AS g2_version;
-- the same id with another created is another item of the table's key: without the look-up it is
-- written, as the Node adapter writes it (the README's caveat); with it (the default), refused
INSERT INTO pr_nocheck (id, domain, type, identifier, created)
  VALUES ('00000000-0000-4000-8000-00000000d001', 'given', 'other-created', 'g3', '2024-02-02 10:00:00+00');
SELECT type, created FROM pr WHERE id = '00000000-0000-4000-8000-00000000d001' ORDER BY created;
INSERT INTO pr (id, domain, type, identifier, created)
  VALUES ('00000000-0000-4000-8000-00000000d001', 'given', 'third-created', 'g4', '2024-02-03 10:00:00+00');

-- ---- two writers of one id (different streams, so no head conflict) ----
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS dblink;
RESET client_min_messages;
SELECT dblink_connect('other', format('host=%s port=%s dbname=%s user=%s',
  split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'),
  current_database(), current_user));
-- the same id and created: the one committing second gets 23505 and writes nothing
BEGIN;
INSERT INTO pr (id, domain, type, identifier, payload, created)
  VALUES ('00000000-0000-4000-8000-00000000d002', 'race', 'mine', 'mine', '{"who": "me"}', '2024-02-05 00:00:00+00');
SELECT dblink_exec('other', format($$INSERT INTO %s (id, domain, type, identifier, payload, created)
  VALUES ('00000000-0000-4000-8000-00000000d002', 'race', 'theirs', 'theirs', '{"who": "them"}',
          '2024-02-05 00:00:00+00')$$, 'pr'::regclass));
COMMIT;
SELECT type, payload FROM pr WHERE id = '00000000-0000-4000-8000-00000000d002';
SELECT event_store_dynamo.stream_version('pr', 'race', 'mine') AS mine_version;
-- the same, under check_given_ids 'false'
BEGIN;
INSERT INTO pr_nocheck (id, domain, type, identifier, created)
  VALUES ('00000000-0000-4000-8000-00000000d003', 'race', 'mine', 'mine2', '2024-02-05 00:00:00+00');
SELECT dblink_exec('other', format($$INSERT INTO %s (id, domain, type, identifier, created)
  VALUES ('00000000-0000-4000-8000-00000000d003', 'race', 'theirs', 'theirs2', '2024-02-05 00:00:00+00')$$,
  'pr_nocheck'::regclass));
COMMIT;
SELECT type FROM pr WHERE id = '00000000-0000-4000-8000-00000000d003';
-- the same id with another created: the look-up at commit finds the other writer's event
BEGIN;
INSERT INTO pr (id, domain, type, identifier, created)
  VALUES ('00000000-0000-4000-8000-00000000d004', 'race', 'mine', 'mine3', '2024-02-06 00:00:00+00');
SELECT dblink_exec('other', format($$INSERT INTO %s (id, domain, type, identifier, created)
  VALUES ('00000000-0000-4000-8000-00000000d004', 'race', 'theirs', 'theirs3', '2024-02-07 00:00:00+00')$$,
  'pr'::regclass));
COMMIT;
SELECT type, created FROM pr WHERE id = '00000000-0000-4000-8000-00000000d004';
SELECT dblink_disconnect('other');

-- ---- a month bigger than a page, read with LIMIT and the default paging ----
-- 700 events in 2024-05; LIMIT 10 takes one Query (its Limit sized by the LIMIT) and one
-- BatchGetItem, not the month's 700 events
CREATE FOREIGN TABLE pr_front_t (
  id text, domain text, type text, identifier text, sequence bigint, payload jsonb, created timestamptz
) SERVER pr_front OPTIONS (table_name_prefix 'promises-', start_month '2024-05', lookahead_months '0');
INSERT INTO pr (domain, type, identifier, payload, created)
  SELECT 'month', 'm', 's' || (g % 10), jsonb_build_object('g', g, 'pad', repeat('p', 100)),
         '2024-05-01'::timestamptz + g * interval '1 minute'
  FROM generate_series(1, 700) g;
SELECT count(*) AS in_may FROM pr WHERE created >= '2024-05-01' AND created < '2024-06-01';
SELECT pg_temp.front('{"record":true}') ->> 'requests' AS reset;
CREATE FUNCTION pg_temp.counts(query text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  line text;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || query LOOP
    CONTINUE WHEN line !~ '(Requests|Capacity|actual rows)';
    RETURN NEXT line;
  END LOOP;
END $$;
SELECT * FROM pg_temp.counts('SELECT * FROM pr_front_t LIMIT 10');
SELECT (SELECT count(*) FROM pg_temp.recorded('Query')) AS queries,
       (SELECT string_agg(coalesce(b->>'Limit', 'none'), ',') FROM pg_temp.recorded('Query') b) AS query_limits,
       (SELECT count(*) FROM pg_temp.recorded('BatchGetItem')) AS batch_gets;
SELECT type, payload->'g' AS g FROM pr_front_t LIMIT 3;
-- without a LIMIT the planner knows of (a cursor read 10 rows at a time), the default paging: a
-- first page of 100 keys, one BatchGetItem for them, nothing more before the 100 are returned
SELECT pg_temp.front('{"record":true}') ->> 'requests' AS reset;
BEGIN;
DECLARE c CURSOR FOR SELECT * FROM pr_front_t;
MOVE 10 IN c;
SELECT (SELECT count(*) FROM pg_temp.recorded('Query')) AS queries,
       (SELECT string_agg(coalesce(b->>'Limit', 'none'), ',') FROM pg_temp.recorded('Query') b) AS query_limits,
       (SELECT string_agg(jsonb_array_length(b->'RequestItems'->'promises-schemeless-event-store'->'Keys')::text, ',')
          FROM pg_temp.recorded('BatchGetItem') b) AS batch_get_keys;
COMMIT;

-- ---- the ProjectionExpression of real queries: only the attributes a query needs (and the keys
-- of the replay order), never payload or meta ----
SELECT pg_temp.front('{"record":true}') ->> 'requests' AS reset;
SELECT count(type) FROM pr_front_t WHERE created < '2024-05-01 02:00:00+00';
SELECT b->'RequestItems'->'promises-schemeless-event-store'->>'ProjectionExpression' AS projection,
       (SELECT string_agg(v, ',' ORDER BY v) FROM jsonb_each_text(b->'RequestItems'->'promises-schemeless-event-store'->'ExpressionAttributeNames') n(k, v)) AS attributes,
       jsonb_array_length(b->'RequestItems'->'promises-schemeless-event-store'->'Keys') AS keys
  FROM pg_temp.recorded('BatchGetItem') b;
-- count(*) needs the index's keys only: no BatchGetItem at all
SELECT pg_temp.front('{"record":true}') ->> 'requests' AS reset;
SELECT count(*) FROM pr_front_t WHERE created < '2024-05-01 02:00:00+00';
SELECT (SELECT count(*) FROM pg_temp.recorded('BatchGetItem')) AS batch_gets,
       (SELECT count(*) FROM pg_temp.recorded('Query')) AS queries;

-- ---- max_in_flight: at most that many requests under way at once ----
ALTER SERVER pr_front OPTIONS (ADD max_in_flight '1');
SELECT pg_temp.front('{"record":true}') ->> 'requests' AS reset;
SELECT count(payload) FROM pr_front_t WHERE created < '2024-06-01';
SELECT (c->>'maxInFlight')::int AS max_in_flight, (c->'byTarget'->>'DynamoDB_20120810.BatchGetItem')::int > 1 AS several_batches
  FROM pg_temp.front() c;
-- ... and that many indeed: pages of 500 keys are hydrated by five BatchGetItems each; the front
-- holds every BatchGetItem until four wait at once (or 10 s went by: "timeout"), so four under
-- way together are seen however fast the machine is, and never more
ALTER SERVER pr_front OPTIONS (SET max_in_flight '4');
ALTER FOREIGN TABLE pr_front_t OPTIONS (ADD page_size '500');
SELECT pg_temp.front('{"record":true,"hold":{"target":"BatchGetItem","untilHeld":4}}') ->> 'requests' AS reset;
SELECT count(payload) FROM pr_front_t WHERE created < '2024-06-01';
SELECT c->>'holdReleased' AS released, (c->>'maxHeld')::int AS batch_gets_at_once,
       (c->>'maxInFlight')::int AS max_in_flight
  FROM pg_temp.front() c;
ALTER FOREIGN TABLE pr_front_t OPTIONS (DROP page_size);
ALTER SERVER pr_front OPTIONS (DROP max_in_flight);

-- ---- INSERT ... SELECT reads the heads of its streams 100 to a BatchGetItem ----
CREATE FOREIGN TABLE pr_front_w (
  id text, domain text, type text, identifier text, sequence bigint, payload jsonb, created timestamptz
) SERVER pr_front OPTIONS (table_name_prefix 'promises-', start_month '2024-01', lookahead_months '0',
                           s3_bucket 'promises-events');
SELECT pg_temp.front('{"record":true}') ->> 'requests' AS reset;
INSERT INTO pr_front_w (domain, type, identifier, created)
  SELECT 'heads', 'h', 'h' || g, '2024-07-01'::timestamptz + g * interval '1 second' FROM generate_series(1, 250) g;
SELECT count(*) AS batch_gets, string_agg(n::text, ',' ORDER BY n DESC) AS keys_each, bool_and(consistent) AS consistent
  FROM (SELECT jsonb_array_length(b->'RequestItems'->'promises-schemeless-event-store'->'Keys') AS n,
               (b->'RequestItems'->'promises-schemeless-event-store'->>'ConsistentRead')::bool AS consistent
          FROM pg_temp.recorded('BatchGetItem') b) s;
SELECT count(*), min(sequence), max(sequence) FROM pr WHERE domain = 'heads';

-- ---- a commit over 4 MB of items: several DynamoDB transactions, each at most 4 MB ----
SELECT pg_temp.front('{"record":true}') ->> 'requests' AS reset;
INSERT INTO pr_front_w (domain, type, identifier, payload, created)
  SELECT 'big', 'b', 'b1', jsonb_build_object('g', g, 'blob', repeat('z', 300000)),
         '2024-08-01'::timestamptz + g * interval '1 second'
  FROM generate_series(1, 20) g;
SELECT count(*) AS transactions, bool_and(length(b::text) < 4 * 1024 * 1024) AS each_under_4mb,
       sum(jsonb_array_length(b->'TransactItems')) AS actions
  FROM pg_temp.recorded('TransactWriteItems') b;
SELECT count(*), min(sequence), max(sequence), sum(length(payload->>'blob')) AS blob_bytes,
       count(s3_reference) AS offloaded
  FROM pr WHERE domain = 'big';
SELECT event_store_dynamo.stream_version('pr', 'big', 'b1') AS version;

-- ---- a commit of several DynamoDB transactions failing part-way ----
-- one stream of 250 events goes out as three transactions, one after the other; an id that
-- already exists (with the same created) makes the second fail: the first stays written, the
-- third is never sent, and the detail counts the events written
CREATE FOREIGN TABLE pr_front_nocheck (
  id text, domain text, type text, identifier text, sequence bigint, created timestamptz
) SERVER pr_front OPTIONS (table_name_prefix 'promises-', check_given_ids 'false');
SELECT pg_temp.front('{"record":true}') ->> 'requests' AS reset;
SELECT pg_temp.outcome($$INSERT INTO pr_front_nocheck (id, domain, type, identifier, created)
  SELECT CASE WHEN g = 150 THEN '00000000-0000-4000-8000-00000000d001' ELSE NULL END, 'partial', 'p', 'p1',
         CASE WHEN g = 150 THEN '2024-02-01 10:00:00+00'::timestamptz
              ELSE '2024-09-01'::timestamptz + g * interval '1 second' END
  FROM generate_series(1, 250) g$$);
SELECT count(*) AS transactions FROM pg_temp.recorded('TransactWriteItems');
SELECT count(*), min(sequence), max(sequence) FROM pr WHERE domain = 'partial';
SELECT event_store_dynamo.stream_version('pr', 'partial', 'p1') AS version;

-- ---- after a failed DynamoDB transaction, none of the others is sent ----
-- a commit of two streams in two DynamoDB transactions: the first (99 events of after-a) fails
-- its head condition, because another session appended to after-a since this one read its head
-- (40001); the second (after-b, an event with a given id, offloaded to S3) is still checking its
-- id, held at the front until the first one's answer is given, then uploading: it is not written.
CREATE FOREIGN TABLE pr_front_after (
  id text, domain text, type text, identifier text, sequence bigint, payload jsonb, created timestamptz
) SERVER pr_front OPTIONS (table_name_prefix 'promises-', s3_bucket 'promises-events', offload_threshold '2000');
SELECT dblink_connect('other', format('host=%s port=%s dbname=%s user=%s',
  split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'),
  current_database(), current_user));
BEGIN;
INSERT INTO pr_front_after (domain, type, identifier, created)
  SELECT 'after-a', 'a', 'x', '2024-09-02'::timestamptz + g * interval '1 second' FROM generate_series(1, 99) g;
SELECT dblink_exec('other', format($$INSERT INTO %s (domain, type, identifier, created)
  VALUES ('after-a', 'theirs', 'x', '2024-09-02 12:00:00+00')$$, 'pr'::regclass));
INSERT INTO pr_front_after (id, domain, type, identifier, payload, created)
  VALUES ('00000000-0000-4000-8000-00000000d005', 'after-b', 'b', 'x', jsonb_build_object('blob', repeat('b', 5000)),
          '2024-09-03 00:00:00+00');
SELECT pg_temp.front('{"record":true,"hold":{"target":"Query","untilAnswered":"TransactWriteItems"}}') ->> 'requests' AS reset;
COMMIT;
SELECT c->>'holdReleased' AS released, (c->>'held')::int AS checks_held FROM pg_temp.front() c;
SELECT count(*) AS transactions, min(jsonb_array_length(b->'TransactItems')) AS actions
  FROM pg_temp.recorded('TransactWriteItems') b;
SELECT domain, type, sequence FROM pr WHERE domain IN ('after-a', 'after-b') ORDER BY domain, sequence;
SELECT dblink_disconnect('other');

-- ---- payload columns of type json and text ----
CREATE FOREIGN TABLE pr_json (id text, domain text, type text, payload json, created timestamptz)
  SERVER pr_srv OPTIONS (table_name_prefix 'promises-', start_month '2024-10', lookahead_months '0');
CREATE FOREIGN TABLE pr_text (id text, domain text, type text, payload text, created timestamptz)
  SERVER pr_srv OPTIONS (table_name_prefix 'promises-', start_month '2024-10', lookahead_months '0');
-- json keeps the writer's key order and duplicate-free text, compacted as JSON.stringify prints it
INSERT INTO pr_json (id, domain, type, payload, created)
  VALUES ('00000000-0000-4000-8000-00000000e001', 'pl', 'json', '{"b": 1,  "a": [1, 2.50, "x"], "c": {"z": null}}',
          '2024-10-01 00:00:00+00');
INSERT INTO pr_text (id, domain, type, payload, created)
  VALUES ('00000000-0000-4000-8000-00000000e002', 'pl', 'text', '{ "z" : true , "y" : "é\u00e9" }',
          '2024-10-02 00:00:00+00');
-- a text payload that is not JSON is refused (22P02)
INSERT INTO pr_text (domain, type, payload, created) VALUES ('pl', 'not-json', 'not json {', '2024-10-03');
SELECT id, type, payload FROM pr_text WHERE domain = 'pl' ORDER BY created;
SELECT type, payload->'a' AS a FROM pr_json WHERE domain = 'pl' ORDER BY created;

-- ---- a non-default s3_key_prefix, on write and on read ----
CREATE FOREIGN TABLE pr_prefix (id text, domain text, type text, payload jsonb, s3_reference text, created timestamptz)
  SERVER pr_srv OPTIONS (table_name_prefix 'promises-', s3_bucket 'promises-events', s3_key_prefix 'archive/2024/',
                         offload_threshold '2000', start_month '2024-11', lookahead_months '0');
INSERT INTO pr_prefix (id, domain, type, payload, created)
  VALUES ('00000000-0000-4000-8000-00000000f001', 'prefix', 'big', jsonb_build_object('blob', repeat('q', 5000)),
          '2024-11-01 00:00:00+00')
  RETURNING s3_reference;
SELECT type, length(payload->>'blob') AS blob, s3_reference FROM pr_prefix;
-- the reference holds the whole key: a table with the default prefix reads it the same
SELECT type, length(payload->>'blob') AS blob FROM pr WHERE id = '00000000-0000-4000-8000-00000000f001';

-- ---- created outside years 1 to 9999 (22008) ----
INSERT INTO pr (domain, type, created) VALUES ('far', 'future', '10000-01-01 00:00:00+00');
INSERT INTO pr (domain, type, created) VALUES ('far', 'past', '0001-01-01 00:00:00+00'::timestamptz - interval '1 day');

-- ---- the test clock (event_store_dynamo.test_now): the walk's last month and a default created ----
CREATE FOREIGN TABLE pr_clock (id text, domain text, type text, created timestamptz, time_bucket text)
  SERVER pr_front OPTIONS (table_name_prefix 'promises-', start_month '2024-01', lookahead_months '1');
SET event_store_dynamo.test_now = '2024-02-29 23:59:59.999+00';
INSERT INTO pr_clock (domain, type) VALUES ('clock', 'leap-day-end') RETURNING created, time_bucket;
EXPLAIN (COSTS OFF) SELECT id FROM pr_clock;
SET event_store_dynamo.test_now = '2024-03-01 00:00:00+00';
INSERT INTO pr_clock (domain, type) VALUES ('clock', 'march-first') RETURNING created, time_bucket;
EXPLAIN (COSTS OFF) SELECT id FROM pr_clock;
SELECT type, created FROM pr_clock WHERE domain = 'clock' ORDER BY created;
SET event_store_dynamo.test_now = 'not a time';
RESET event_store_dynamo.test_now;
-- hidden from SHOW ALL, and only a superuser may set it
SELECT count(*) AS shown FROM pg_settings WHERE name = 'event_store_dynamo.test_now';
CREATE ROLE regress_promises_clock;
SET ROLE regress_promises_clock;
SET event_store_dynamo.test_now = '2024-03-01 00:00:00+00';
RESET ROLE;
DROP ROLE regress_promises_clock;

-- ---- the retry backoff: retry n waits at least half of retry_base_ms * 2^(n-1) ----
-- a GetItem throttled every time: its six arrivals at the front, and the gap before each retry
-- (each gap holds the whole wait; 1 ms is left for the two clocks)
CREATE SERVER pr_backoff FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (endpoint :'ddb_fault_url', max_retries '5', retry_base_ms '100', retry_cap_ms '100000');
CREATE USER MAPPING FOR CURRENT_USER SERVER pr_backoff
  OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
CREATE FOREIGN TABLE pr_backoff_t (id text) SERVER pr_backoff OPTIONS (table_name_prefix 'promises-');
SELECT pg_temp.front('{"record":true,"throttle":1,"maxConsecutive":1000}') ->> 'requests' AS reset;
SELECT pg_temp.outcome($$SELECT event_store_dynamo.stream_version('pr_backoff_t', 'backoff', 'x')$$);
SELECT n AS retry, target, fault, at - lag(at) OVER (ORDER BY n) >= 100 * 2 ^ (n - 1) / 2 - 1 AS waited_enough
  FROM pg_temp.arrivals() ORDER BY n;
SELECT pg_temp.front('{}') ->> 'requests' AS reset;
DROP SERVER pr_backoff CASCADE;

-- ---- connect_timeout_ms: a connection that never completes ----
-- the pending front's accept queue is full, so a connect to it stays pending: each of the two
-- attempts (max_retries 1) gives up after connect_timeout_ms (at least 1 s in all), long before
-- request_timeout_ms would end them (40 s in all)
\getenv ddb_pending_url DDB_PENDING_URL
CREATE SERVER pr_pending FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (endpoint :'ddb_pending_url', connect_timeout_ms '500', request_timeout_ms '20000', max_retries '1',
           retry_base_ms '1', retry_cap_ms '1');
CREATE USER MAPPING FOR CURRENT_USER SERVER pr_pending
  OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
CREATE FOREIGN TABLE pr_pending_t (id text) SERVER pr_pending OPTIONS (table_name_prefix 'promises-');
CREATE FUNCTION pg_temp.timed(query text, OUT outcome text, OUT ms float8) LANGUAGE plpgsql AS $$
DECLARE
  t0 timestamptz := clock_timestamp();
BEGIN
  outcome := pg_temp.outcome(query);
  ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
END $$;
SELECT regexp_replace(regexp_replace(outcome, 'port [0-9]+', 'port PORT'), 'after [0-9]+ ms', 'after N ms') AS outcome,
       ms >= 2 * 500 AS after_two_timeouts, ms < 15000 AS long_before_the_request_timeout
  FROM pg_temp.timed($$SELECT event_store_dynamo.stream_version('pr_pending_t', 'pending', 'x')$$);
DROP SERVER pr_pending CASCADE;

SELECT pg_temp.front('{}') ->> 'record' AS recording;
DROP SERVER pr_srv, pr_front CASCADE;
