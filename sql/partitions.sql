-- Partitioned projections (version 0.4): create_projection(partitions => N)
-- applies the streams of each partition in a run of its own; catch_up
-- applies every partition in turn, or the one it is given; each stream keeps
-- its order and each event is applied once; the safety net per partition;
-- on_error 'stop' halts one partition; the status views; wait_for_projection,
-- rebuild and drop over every partition; a worker per partition; the update
-- from 0.3 keeps a projection working as one partition.  Version 0.5:
-- repartition_projection changes the count (with partitions at different
-- positions, a held event, workers running), and the update from 0.4 keeps
-- the projection going.  Every error shows its SQLSTATE.
\getenv ddb_url DDB_URL
\getenv s3_url S3_URL
SET timezone = 'UTC';
\set VERBOSITY verbose
\set SHOW_CONTEXT never

SELECT date_trunc('second', now()) - interval '2 hours' AS t0,
       to_char(now() - interval '1 month', 'YYYY-MM') AS start_month \gset

CREATE SERVER part_srv FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (endpoint :'ddb_url', s3_endpoint :'s3_url', s3_force_path_style 'true');
CREATE USER MAPPING FOR PUBLIC SERVER part_srv
  OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
CREATE FOREIGN TABLE pt (
  id text, domain text, type text, identifier text, correlation_id text, causation_id text,
  sequence bigint, payload jsonb, meta jsonb, created timestamptz, time_bucket text, s3_reference text
) SERVER part_srv OPTIONS (table_name_prefix 'parts-', start_month :'start_month');
SELECT event_store_dynamo.reset_store('pt');

-- the partition of a stream: md5 of domain, U+001F and identifier, first 32 bits, modulo N
SELECT event_store_dynamo._partition_of('account', 'a1', 3) AS a1,
       event_store_dynamo._partition_of('account', 'a2', 3) AS a2,
       event_store_dynamo._partition_of('account', 'a3', 3) AS a3,
       event_store_dynamo._partition_of('account', 'a4', 3) AS a4,
       event_store_dynamo._partition_of('account', 'a5', 3) AS a5,
       event_store_dynamo._partition_of('account', 'a6', 3) AS a6,
       event_store_dynamo._partition_of('account', 'a1', 64) AS a1_of_64,
       event_store_dynamo._partition_of('account', NULL, 3) = event_store_dynamo._partition_of('account', '', 3) AS no_identifier,
       event_store_dynamo._partition_of('account', 'a1', 1) AS one;
SELECT ('x' || substr(md5('account' || chr(31) || 'a1'), 1, 8))::bit(32)::bigint % 3
       = event_store_dynamo._partition_of('account', 'a1', 3) AS by_definition;

-- the read model, and a log of the order the handler saw
CREATE TABLE pt_balances (account text PRIMARY KEY, balance numeric NOT NULL);
CREATE TABLE pt_log (n serial, id text, account text, sequence bigint);
CREATE TABLE pt_poison (stop boolean NOT NULL);
INSERT INTO pt_poison VALUES (true);
CREATE FUNCTION pt_apply(e pt) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF e.payload->>'amount' = 'poison' AND (SELECT stop FROM pt_poison) THEN
    RAISE EXCEPTION 'cannot apply event %', e.id USING ERRCODE = '22000';
  END IF;
  IF e.payload->>'amount' <> 'poison' THEN
    INSERT INTO pt_balances VALUES (e.identifier, (e.payload->>'amount')::numeric)
      ON CONFLICT (account) DO UPDATE SET balance = pt_balances.balance + excluded.balance;
  END IF;
  INSERT INTO pt_log (id, account, sequence) VALUES (e.id, e.identifier, e.sequence);
END
$$;
-- whether the read model equals a full recompute from the events
CREATE FUNCTION pt_current() RETURNS boolean LANGUAGE sql AS $$
  SELECT (SELECT coalesce(jsonb_agg(jsonb_build_array(account, balance) ORDER BY account), '[]') FROM pt_balances)
       = (SELECT coalesce(jsonb_agg(jsonb_build_array(account, balance) ORDER BY account), '[]')
            FROM (SELECT identifier AS account, sum((payload->>'amount')::numeric) AS balance
                    FROM pt WHERE payload->>'amount' <> 'poison' GROUP BY identifier) r)
$$;
-- each event applied once, each stream in sequence order
CREATE FUNCTION pt_in_order() RETURNS TABLE (once boolean, ordered boolean) LANGUAGE sql AS $$
  SELECT (SELECT count(*) = count(DISTINCT id) FROM pt_log),
         (SELECT bool_and(s = 1 OR s = prev + 1)
            FROM (SELECT sequence AS s, lag(sequence) OVER (PARTITION BY account ORDER BY n) AS prev FROM pt_log) l)
$$;

-- six streams of three; a1's second event is stamped before its first (a skewed clock)
INSERT INTO pt (id, domain, type, identifier, payload, created)
SELECT format('00000000-0000-4000-8000-0000000c%s%s', a, s), 'account', 'deposited', 'a' || a,
       jsonb_build_object('amount', a * 10 + s),
       :'t0'::timestamptz + (a * 3 + s) * interval '1 second'
         - CASE WHEN a = 1 AND s = 2 THEN interval '10 seconds' ELSE interval '0' END
  FROM generate_series(1, 6) a, generate_series(1, 3) s ORDER BY a, s;

-- errors
SELECT event_store_dynamo.create_projection('pb', 'pt', 'pt_apply(pt)', partitions => 0);
SELECT event_store_dynamo.create_projection('pb', 'pt', 'pt_apply(pt)', partitions => 65);
SELECT event_store_dynamo.create_projection('pb', 'pt', 'pt_apply(pt)', partitions => NULL);
SELECT event_store_dynamo.create_projection('pb', 'pt', 'pt_apply(pt)', tables => ARRAY['pt_balances'::regclass],
  settle => interval '0', partitions => 3);
CALL event_store_dynamo.catch_up('pb', partition => 3);
CALL event_store_dynamo.catch_up('pb', partition => -1);
CALL event_store_dynamo.catch_up('pb', batch_size => 0, partition => 0);
CALL event_store_dynamo.catch_up('nope', partition => 0);

-- a run per partition, all idle
SELECT name, partition, partitions, state, events_applied, checked_through FROM event_store_dynamo.projection_partitions
 ORDER BY partition;

-- one partition by hand: only its streams
CALL event_store_dynamo.catch_up('pb', partition => 1);
SELECT account, event_store_dynamo._partition_of('account', account, 3) AS partition, balance
  FROM pt_balances ORDER BY account;
SELECT partition, events_applied, state FROM event_store_dynamo.projection_partitions ORDER BY partition;

-- then every partition in turn
CALL event_store_dynamo.catch_up('pb', batch_size => 4);
SELECT pt_current() AS current, * FROM pt_in_order();
SELECT account, array_agg(sequence ORDER BY n) FROM pt_log GROUP BY account ORDER BY account;
SELECT partition, events_applied, out_of_order, events_held, state FROM event_store_dynamo.projection_partitions
 ORDER BY partition;
SELECT name, state, partitions, events_applied, events_held, position_id,
       checked_through = (SELECT min(checked_through) FROM event_store_dynamo.projection_partitions) AS least_through,
       lag IS NOT NULL AS has_lag
  FROM event_store_dynamo.projections;
-- once more: nothing is applied twice
CALL event_store_dynamo.catch_up('pb');
SELECT events_applied FROM event_store_dynamo.projections;

-- more events, then one behind every partition's position, which only the safety net finds:
-- its own partition applies it; the others fetch it once and remember it until it is seen
INSERT INTO pt (id, domain, type, identifier, payload) VALUES
  ('00000000-0000-4000-8000-0000000d0001', 'account', 'deposited', 'a2', '{"amount": 1000}'),
  ('00000000-0000-4000-8000-0000000d0002', 'account', 'deposited', 'a5', '{"amount": 2000}');
SELECT pg_sleep(0.01);
CALL event_store_dynamo.catch_up('pb');
SELECT min(checked_through) - interval '1 second' AS late_created FROM event_store_dynamo.projection_partitions \gset
INSERT INTO pt (id, domain, type, identifier, payload, created) VALUES
  ('00000000-0000-4000-8000-0000000d0003', 'account', 'deposited', 'a4', '{"amount": 3000}', :'late_created');
SELECT event_store_dynamo._partition_of('account', 'a4', 3) AS late_partition;
CALL event_store_dynamo.catch_up('pb', partition => 0);
CALL event_store_dynamo.catch_up('pb', partition => 2);
SELECT r.part, f.event_id FROM event_store_dynamo.projection_foreign f
  JOIN event_store_dynamo.projection_run r ON r.key = f.run_key ORDER BY r.part;
CALL event_store_dynamo.catch_up('pb', partition => 1);
SELECT partition, late_applied FROM event_store_dynamo.projection_partitions ORDER BY partition;
CALL event_store_dynamo.catch_up('pb');
SELECT count(*) AS remembered FROM event_store_dynamo.projection_foreign;
SELECT pt_current() AS current, * FROM pt_in_order();
-- wait_for_projection sees an event of any partition
SELECT event_store_dynamo.wait_for_projection('pb', '00000000-0000-4000-8000-0000000d0003', '0'),
       event_store_dynamo.wait_for_projection('pb', '00000000-0000-4000-8000-0000000d0002', '0'),
       event_store_dynamo.wait_for_projection('pb', '00000000-0000-4000-8000-0000000c63', '0'),
       event_store_dynamo.wait_for_projection('pb', 'no-such-event', '0');

-- on_error 'stop' halts the failing event's partition (a3's, 1); the others (a2's, 2; a5's, 0) go on
INSERT INTO pt (id, domain, type, identifier, payload) VALUES
  ('00000000-0000-4000-8000-0000000e0001', 'account', 'deposited', 'a3', '{"amount": "poison"}');
SELECT pg_sleep(0.01);
INSERT INTO pt (id, domain, type, identifier, payload) VALUES
  ('00000000-0000-4000-8000-0000000e0002', 'account', 'deposited', 'a3', '{"amount": 7}'),
  ('00000000-0000-4000-8000-0000000e0003', 'account', 'deposited', 'a2', '{"amount": 8}'),
  ('00000000-0000-4000-8000-0000000e0004', 'account', 'deposited', 'a5', '{"amount": 9}');
CALL event_store_dynamo.catch_up('pb');
SELECT partition, state, failed_event_id, last_sqlstate FROM event_store_dynamo.projection_partitions ORDER BY partition;
SELECT state, failed_event_id, last_sqlstate, last_error FROM event_store_dynamo.projections;
SELECT event_store_dynamo.wait_for_projection('pb', '00000000-0000-4000-8000-0000000e0002', '0') AS behind_the_failure,
       event_store_dynamo.wait_for_projection('pb', '00000000-0000-4000-8000-0000000e0003', '0') AS other_partition,
       event_store_dynamo.wait_for_projection('pb', '00000000-0000-4000-8000-0000000e0004', '0') AS another;
UPDATE pt_poison SET stop = false;
CALL event_store_dynamo.catch_up('pb');
SELECT state, last_error FROM event_store_dynamo.projections;
SELECT pt_current() AS current, * FROM pt_in_order();

-- repartition_projection (0.5): every partition stops where it is, and each stream goes on in its
-- new partition from where it was.  The errors first; the same count changes nothing.
SELECT event_store_dynamo.repartition_projection('pb', 0);
SELECT event_store_dynamo.repartition_projection('pb', 65);
SELECT event_store_dynamo.repartition_projection('pb', NULL);
SELECT event_store_dynamo.repartition_projection('nope', 2);
SELECT event_store_dynamo.repartition_projection(NULL, 2);
SELECT array_agg(key ORDER BY part) AS runs_before FROM event_store_dynamo.projection_run \gset
SELECT event_store_dynamo.repartition_projection('pb', 3);
SELECT array_agg(key ORDER BY part) = :'runs_before' AS same_runs FROM event_store_dynamo.projection_run;
-- partitions at different positions: new events everywhere, and a9's second event whose first is
-- backdated behind every position (only a read of the stream finds it), so the second is held;
-- only partition 2 (a2, a4, a9 of 3) catches up
SELECT pg_sleep(0.01);
INSERT INTO pt (id, domain, type, identifier, payload)
SELECT format('00000000-0000-4000-8000-0000001a000%s', a), 'account', 'deposited', 'a' || a,
       jsonb_build_object('amount', 100 * a)
  FROM generate_series(1, 6) a;
INSERT INTO pt (id, domain, type, identifier, payload, created) VALUES
  ('00000000-0000-4000-8000-0000001a0091', 'account', 'deposited', 'a9', '{"amount": 91}', now() - interval '10 minutes'),
  ('00000000-0000-4000-8000-0000001a0092', 'account', 'deposited', 'a9', '{"amount": 92}', now());
CALL event_store_dynamo.catch_up('pb', partition => 2);
SELECT partition, events_applied, events_held,
       checked_through > (SELECT min(checked_through) FROM event_store_dynamo.projection_partitions) AS ahead
  FROM event_store_dynamo.projection_partitions ORDER BY partition;
SELECT events_applied AS applied_before FROM event_store_dynamo.projections \gset
-- 3 to 2: a9 (with its held event) and a2 go to partition 1, a4 to 0
SELECT event_store_dynamo._partition_of('account', 'a2', 2) AS a2, event_store_dynamo._partition_of('account', 'a4', 2) AS a4,
       event_store_dynamo._partition_of('account', 'a9', 2) AS a9;
SELECT event_store_dynamo.repartition_projection('pb', 2);
SELECT name, partition, partitions, state, events_held,
       checked_through = (SELECT max(checked_through) FROM event_store_dynamo.projection_partitions) AS common
  FROM event_store_dynamo.projection_partitions ORDER BY partition;
SELECT events_applied = :applied_before AS counters_kept, partitions FROM event_store_dynamo.projections;
SELECT r.part, s.identifier, s.last_sequence FROM event_store_dynamo.projection_stream s
  JOIN event_store_dynamo.projection_run r ON r.key = s.run_key
 WHERE s.identifier IN ('a2', 'a4', 'a9') ORDER BY s.identifier;
SELECT r.part, pe.identifier, pe.sequence FROM event_store_dynamo.projection_pending pe
  JOIN event_store_dynamo.projection_run r ON r.key = pe.run_key;
SELECT count(*) AS runs, count(*) FILTER (WHERE key = (SELECT run_key FROM event_store_dynamo.projection)) AS generation
  FROM event_store_dynamo.projection_run;
-- what partition 2 applied after the common position is met again and found seen; the held event
-- goes behind its predecessor, read from the stream
CALL event_store_dynamo.catch_up('pb');
SELECT pt_current() AS current, * FROM pt_in_order();
SELECT account, array_agg(sequence ORDER BY n) FROM pt_log WHERE account = 'a9' GROUP BY account;
SELECT events_applied = (SELECT count(*) FROM pt_log) AS counted, events_held FROM event_store_dynamo.projections;
-- 2 to 5 with new events not yet applied, then back to 3
INSERT INTO pt (id, domain, type, identifier, payload)
SELECT format('00000000-0000-4000-8000-0000001b000%s', a), 'account', 'deposited', 'a' || a, '{"amount": 1}'
  FROM generate_series(1, 9) a;
SELECT event_store_dynamo.repartition_projection('pb', 5);
CALL event_store_dynamo.catch_up('pb', batch_size => 3);
SELECT partition, events_applied > 0 AS applied FROM event_store_dynamo.projection_partitions ORDER BY partition;
SELECT event_store_dynamo.repartition_projection('pb', 3);
CALL event_store_dynamo.catch_up('pb');
SELECT pt_current() AS current, * FROM pt_in_order();
SELECT partitions, events_applied, state FROM event_store_dynamo.projections;

-- a worker per partition (this cluster does not preload the library: dynamic workers)
CREATE FUNCTION pt_workers_become(n int) RETURNS boolean LANGUAGE plpgsql AS $$
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
-- (and until the workers are those named: a worker shows its name a moment after it connects)
CREATE FUNCTION pt_workers_are(names text[]) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1..300 LOOP
    PERFORM pg_stat_clear_snapshot();
    IF (SELECT coalesce(array_agg(application_name::text ORDER BY application_name), '{}') FROM pg_stat_activity
         WHERE backend_type = 'event_store_dynamo projection' AND datname = current_database()) = names THEN
      RETURN true;
    END IF;
    PERFORM pg_sleep(0.1);
  END LOOP;
  RETURN false;
END $$;
SELECT event_store_dynamo.start_projection('pb', poll => interval '200 ms');
SELECT pt_workers_are(ARRAY['projection pb 1/3', 'projection pb 2/3', 'projection pb 3/3']);
INSERT INTO pt (id, domain, type, identifier, payload)
SELECT format('00000000-0000-4000-8000-0000000f%s', a), 'account', 'deposited', 'a' || a, '{"amount": 1}'
  FROM generate_series(1, 6) a;
SELECT bool_and(event_store_dynamo.wait_for_projection('pb', format('00000000-0000-4000-8000-0000000f%s', a),
                                                       interval '30 seconds')) AS applied
  FROM generate_series(1, 6) a;
-- repartitioned while running: the workers of 3 partitions give way to 2 at commit
SELECT event_store_dynamo.repartition_projection('pb', 2);
SELECT pt_workers_are(ARRAY['projection pb 1/2', 'projection pb 2/2']);
INSERT INTO pt (id, domain, type, identifier, payload)
SELECT format('00000000-0000-4000-8000-0000001c000%s', a), 'account', 'deposited', 'a' || a, '{"amount": 1}'
  FROM generate_series(1, 9) a;
SELECT bool_and(event_store_dynamo.wait_for_projection('pb', format('00000000-0000-4000-8000-0000001c000%s', a),
                                                       interval '30 seconds')) AS applied
  FROM generate_series(1, 9) a;
SELECT event_store_dynamo.stop_projection('pb');
SELECT pt_workers_become(0);
SELECT pt_current() AS current, * FROM pt_in_order();

-- rebuild: a new run per partition fills new tables, then takes over
CALL event_store_dynamo.rebuild_projection('pb', batch_size => 5);
SELECT pt_current() AS current;
SELECT partition, state, events_applied > 0 AS applied, rebuild_through FROM event_store_dynamo.projection_partitions
 ORDER BY partition;
SELECT count(*) AS runs FROM event_store_dynamo.projection_run;

-- drop: every partition's state goes
SELECT event_store_dynamo.drop_projection('pb');
SELECT (SELECT count(*) FROM event_store_dynamo.projection_run) AS runs,
       (SELECT count(*) FROM event_store_dynamo.projection_seen) AS seen,
       (SELECT count(*) FROM event_store_dynamo.projection_foreign) AS remembered,
       (SELECT count(*) FROM event_store_dynamo.projection_partitions) AS partitions;

-- 0.3 to 0.4 with ALTER EXTENSION UPDATE, in a database of its own: a projection of 0.3 is one
-- partition and goes on from where it was
SELECT current_database() AS regress_db \gset
CREATE DATABASE esd_upgrade_04;
\c esd_upgrade_04
SET timezone = 'UTC';
CREATE EXTENSION event_store_dynamo VERSION '0.3';
CREATE SERVER part_srv FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (endpoint :'ddb_url', s3_endpoint :'s3_url', s3_force_path_style 'true');
CREATE USER MAPPING FOR PUBLIC SERVER part_srv
  OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
CREATE FOREIGN TABLE pt (
  id text, domain text, type text, identifier text, correlation_id text, causation_id text,
  sequence bigint, payload jsonb, meta jsonb, created timestamptz, time_bucket text, s3_reference text
) SERVER part_srv OPTIONS (table_name_prefix 'parts-', start_month :'start_month');
CREATE TABLE pt_count (n bigint NOT NULL);
INSERT INTO pt_count VALUES (0);
CREATE FUNCTION pt_count(e pt) RETURNS void LANGUAGE sql AS 'UPDATE pt_count SET n = n + 1';
SELECT event_store_dynamo.create_projection('counter', 'pt', 'pt_count(pt)', settle => interval '0');
CALL event_store_dynamo.catch_up('counter');
SELECT (SELECT n FROM pt_count) = (SELECT count(*) FROM pt) AS counted;
ALTER EXTENSION event_store_dynamo UPDATE TO '0.4';
SELECT extversion FROM pg_extension WHERE extname = 'event_store_dynamo';
SELECT name, partition, partitions, state, events_applied = (SELECT n FROM pt_count) AS same
  FROM event_store_dynamo.projection_partitions;
INSERT INTO pt (id, domain, type, identifier, payload) VALUES
  ('00000000-0000-4000-8000-0000000f0101', 'account', 'deposited', 'a7', '{"amount": 1}');
CALL event_store_dynamo.catch_up('counter');
CALL event_store_dynamo.catch_up('counter', partition => 0);
SELECT (SELECT n FROM pt_count) = (SELECT count(*) FROM pt) AS counted,
       event_store_dynamo.wait_for_projection('counter', '00000000-0000-4000-8000-0000000f0101', '0') AS seen;
SELECT partitions, events_applied = (SELECT n FROM pt_count) AS same FROM event_store_dynamo.projections;
-- and on to 0.5: the projection goes on, and may be given partitions
ALTER EXTENSION event_store_dynamo UPDATE TO '0.5';
SELECT extversion FROM pg_extension WHERE extname = 'event_store_dynamo';
SELECT event_store_dynamo.repartition_projection('counter', 4);
INSERT INTO pt (id, domain, type, identifier, payload) VALUES
  ('00000000-0000-4000-8000-0000000f0102', 'account', 'deposited', 'a8', '{"amount": 1}');
CALL event_store_dynamo.catch_up('counter');
SELECT (SELECT n FROM pt_count) = (SELECT count(*) FROM pt) AS counted,
       event_store_dynamo.wait_for_projection('counter', '00000000-0000-4000-8000-0000000f0102', '0') AS seen;
SELECT partitions, events_applied = (SELECT n FROM pt_count) AS same FROM event_store_dynamo.projections;
\c :regress_db
DROP DATABASE esd_upgrade_04;

DROP FUNCTION pt_apply(pt), pt_current(), pt_in_order(), pt_workers_become(int), pt_workers_are(text[]);
DROP TABLE pt_balances, pt_log, pt_poison;
DROP SERVER part_srv CASCADE;
