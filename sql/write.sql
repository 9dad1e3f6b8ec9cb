-- Appending events with INSERT and COPY: the layout of the SPEC, stream
-- numbering, buffering until commit, conflicts.
-- every error, warning and notice shows its SQLSTATE (test/regress/psql drops the LOCATION lines)
\set VERBOSITY verbose
\getenv ddb_url DDB_URL
\getenv ddb_local_url DDB_LOCAL_URL
\getenv s3_url S3_URL
SET timezone = 'UTC';
-- the clock the extension reads ("now" for the walk's last month and a default created): the real
-- one, or the fixed one of event_store_dynamo.test_now (test/steps/45-regress-clock.sh sets it)
CREATE FUNCTION pg_temp.clock() RETURNS timestamptz STABLE LANGUAGE sql AS
  $$SELECT coalesce(nullif(current_setting('event_store_dynamo.test_now', true), '')::timestamptz, now())$$;

CREATE SERVER write_srv FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (endpoint :'ddb_url', s3_endpoint :'s3_url', s3_force_path_style 'true');
CREATE USER MAPPING FOR CURRENT_USER SERVER write_srv
  OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
CREATE FOREIGN TABLE w (
  id text, domain text, type text, identifier text, correlation_id text, causation_id text,
  sequence bigint, payload jsonb, meta jsonb, created timestamptz, time_bucket text, s3_reference text
) SERVER write_srv OPTIONS (table_name_prefix 'write-', s3_bucket 'write-events');
-- a fresh store (the first INSERT would create it too: auto_create)
SELECT event_store_dynamo.reset_store('w');

-- the raw items, straight from DynamoDB (a Scan with the AWS SDK, test/regress/raw-items.js), to
-- see the stored layout: every attribute with its DynamoDB type, as the Node adapter reads it
\getenv abs_srcdir PG_ABS_SRCDIR
\set raw_items 'node ' :abs_srcdir '/test/regress/raw-items.js ' :ddb_url ' write-schemeless-event-store'
CREATE TEMP TABLE raw_items (item jsonb);
CREATE FUNCTION pg_temp.load_raw(cmd text) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM raw_items;
  EXECUTE format('COPY raw_items FROM PROGRAM %L WITH (FORMAT csv, QUOTE %L, DELIMITER %L)', cmd, E'\x01', E'\x02');
  RETURN (SELECT count(*) FROM raw_items);
END $$;

-- defaults: a fresh UUID v4 id, the current time, sequence 1; RETURNING shows them
INSERT INTO w (domain, type, identifier, payload)
  VALUES ('account', 'opened', '42', '{"owner": "ada", "limit": 100}')
  RETURNING id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' AS uuid_v4,
            created >= date_trunc('milliseconds', pg_temp.clock()) AND created < pg_temp.clock() + interval '1 minute' AS recent, sequence,
            time_bucket = to_char(created, 'YYYY-MM') AS bucket_derived, s3_reference;

-- explicit ids and times: sub-millisecond input is truncated, any zone converted to UTC
INSERT INTO w (id, domain, type, identifier, correlation_id, causation_id, payload, meta, created)
  VALUES ('00000000-0000-4000-8000-000000000a01', 'account', 'deposited', '42', 'corr-1', 'cause-1',
          '{"amount": 10.50, "note": "first"}', '{"user": "ada", "tags": ["a", "b"], "n": 1.50}',
          '2024-05-01 02:00:00.123999+02')
  RETURNING id, sequence, created, time_bucket;
INSERT INTO w (id, domain, type, identifier, payload, meta, created)
  VALUES ('00000000-0000-4000-8000-000000000a02', 'account', 'withdrawn', '42', '"cash"', '"a string meta"',
          '2024-04-30 23:59:59.9999-05'),
         ('00000000-0000-4000-8000-000000000a03', 'account', 'noted', '42', '[1, 2, 3]', '[true, null]',
          '2024-05-31 23:59:59.999+00')
  RETURNING id, sequence, created, time_bucket;
SELECT pg_temp.load_raw(:'raw_items' || ' domain=account') > 0 AS loaded;
SELECT right(item->'id'->>'S', 3) AS ev, item->'id' AS id, item->'created' AS created, item->'timeBucket' AS time_bucket,
       item->'domain' AS domain, item->'type' AS type, item->'identifier' AS identifier,
       item->'correlationId' AS correlation_id, item->'causationId' AS causation_id, item->'sequence' AS sequence,
       item->'payload' AS payload, item->'meta' AS meta,
       (SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(item) k) AS attributes
  FROM raw_items WHERE item->'id'->>'S' LIKE 'EventID#%0a0_' ORDER BY 1;

-- required columns: 23502
INSERT INTO w (type) VALUES ('x');
INSERT INTO w (domain) VALUES ('x');
-- derived columns are not accepted
INSERT INTO w (domain, type, time_bucket) VALUES ('x', 'y', '2024-01');
INSERT INTO w (domain, type, s3_reference) VALUES ('x', 'y', 'b::k');

-- events are immutable
UPDATE w SET type = 'changed';
DELETE FROM w;
INSERT INTO w (domain, type) VALUES ('x', 'y') ON CONFLICT DO NOTHING;

-- a rolled-back transaction writes nothing
BEGIN;
INSERT INTO w (domain, type, identifier) VALUES ('account', 'ghost', '42') RETURNING sequence;
ROLLBACK;
SELECT count(*) AS ghosts FROM w WHERE type = 'ghost';
SELECT event_store_dynamo.stream_version('w', 'account', '42') AS version;

-- a rolled-back savepoint drops its events and gives their sequences back
BEGIN;
INSERT INTO w (domain, type, identifier) VALUES ('account', 'kept-1', '42') RETURNING sequence;
SAVEPOINT s1;
INSERT INTO w (domain, type, identifier) VALUES ('account', 'dropped', '42'), ('account', 'dropped', '42')
  RETURNING sequence;
SAVEPOINT s2;
INSERT INTO w (domain, type, identifier) VALUES ('account', 'dropped-inner', '42') RETURNING sequence;
RELEASE SAVEPOINT s2;
ROLLBACK TO SAVEPOINT s1;
INSERT INTO w (domain, type, identifier) VALUES ('account', 'kept-2', '42') RETURNING sequence;
SAVEPOINT s3;
INSERT INTO w (domain, type, identifier) VALUES ('account', 'kept-3', '42') RETURNING sequence;
RELEASE SAVEPOINT s3;
COMMIT;
SELECT type, sequence FROM w WHERE identifier = '42' ORDER BY sequence;

-- an explicit sequence is the caller's expected position
INSERT INTO w (domain, type, identifier, sequence) VALUES ('account', 'expected', '42', 8) RETURNING sequence;
INSERT INTO w (domain, type, identifier, sequence) VALUES ('account', 'stale', '42', 8);
INSERT INTO w (domain, type, identifier, sequence) VALUES ('account', 'gap', '42', 20);
INSERT INTO w (domain, type, identifier, sequence) VALUES ('account', 'new-stream', '43', 1) RETURNING sequence;

-- no identifier: the stream "<domain>::"
INSERT INTO w (domain, type) VALUES ('system', 'started'), ('system', 'stopped') RETURNING type, sequence;
SELECT event_store_dynamo.stream_version('w', 'system', NULL) AS version;

-- multi-row, INSERT ... SELECT over many streams, in one commit
INSERT INTO w (domain, type, identifier, payload)
  SELECT 'bulk', 'item-' || g, 's' || (g % 7), jsonb_build_object('g', g) FROM generate_series(1, 700) g;
SELECT identifier, count(*), min(sequence), max(sequence),
       bool_and(sequence = (payload->>'g')::int / 7 + CASE WHEN identifier = 's0' THEN 0 ELSE 1 END) AS in_order
  FROM w WHERE domain = 'bulk' GROUP BY identifier ORDER BY identifier;

-- past work_mem, the events waiting for the commit spill to a temporary file
BEGIN;
SET LOCAL work_mem = '64kB';
INSERT INTO w (domain, type, identifier, payload)
  SELECT 'spill', 'item-' || g, 's' || (g % 5), jsonb_build_object('g', g, 'pad', repeat('p', 200))
  FROM generate_series(1, 2000) g;
SELECT count(*) > 0 AS spilled FROM pg_ls_tmpdir();
COMMIT;
SELECT count(*), count(DISTINCT identifier), max(sequence) FROM w WHERE domain = 'spill';

-- COPY FROM appends too
COPY w (domain, type, identifier, payload) FROM STDIN;
copy	one	c1	{"n": 1}
copy	two	c1	{"n": 2}
\.
SELECT type, sequence, payload FROM w WHERE domain = 'copy' ORDER BY sequence;

-- from a trigger: each order placed appends an event
CREATE TABLE orders (id int PRIMARY KEY, customer text, total numeric);
CREATE FUNCTION order_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO w (domain, type, identifier, payload)
    VALUES ('order', 'placed', NEW.customer, jsonb_build_object('order', NEW.id, 'total', NEW.total));
  RETURN NEW;
END $$;
CREATE TRIGGER orders_events AFTER INSERT ON orders FOR EACH ROW EXECUTE FUNCTION order_event();
INSERT INTO orders VALUES (1, 'c-1', 9.99), (2, 'c-1', 20), (3, 'c-2', 5);
SELECT identifier, sequence, payload FROM w WHERE domain = 'order' ORDER BY identifier, sequence;

-- an oversized event is offloaded to S3 and read back whole
INSERT INTO w (id, domain, type, identifier, payload)
  VALUES ('00000000-0000-4000-8000-000000000b01', 'doc', 'uploaded', 'd1',
          jsonb_build_object('blob', repeat('x', 400000), 'n', 1))
  RETURNING s3_reference, sequence;
SELECT type, sequence, length(payload->>'blob') AS blob, payload->'n' AS n, s3_reference
  FROM w WHERE domain = 'doc';
-- without s3_bucket an oversized event is refused before anything is sent
CREATE FOREIGN TABLE w_nobucket (id text, domain text, type text, payload jsonb)
  SERVER write_srv OPTIONS (table_name_prefix 'write-');
INSERT INTO w_nobucket (id, domain, type, payload)
  VALUES ('00000000-0000-4000-8000-000000000b02', 'doc', 'too-big', jsonb_build_object('blob', repeat('x', 400000)));
-- a lower offload threshold offloads smaller events
ALTER FOREIGN TABLE w OPTIONS (ADD offload_threshold '2000');
INSERT INTO w (domain, type, identifier, payload)
  VALUES ('doc', 'medium', 'd1', jsonb_build_object('text', repeat('y', 3000))) RETURNING sequence, s3_reference IS NOT NULL AS offloaded;
ALTER FOREIGN TABLE w OPTIONS (DROP offload_threshold);

-- a duplicate id fails with 23505, and nothing of its transaction is written:
-- an id already stored (whatever its created) at commit, an id given twice at once
BEGIN;
INSERT INTO w (domain, type, identifier) VALUES ('account', 'before-dup', '44');
INSERT INTO w (id, domain, type, identifier) VALUES ('00000000-0000-4000-8000-000000000a01', 'account', 'dup', '44');
COMMIT;
SELECT count(*) AS dup_written FROM w WHERE type IN ('dup', 'before-dup');
SELECT event_store_dynamo.stream_version('w', 'account', '44') AS version;
INSERT INTO w (id, domain, type) VALUES ('00000000-0000-4000-8000-000000000c01', 'x', 'once'),
                                        ('00000000-0000-4000-8000-000000000c01', 'x', 'twice');
-- an id given in a rolled-back savepoint may be given again
BEGIN;
SAVEPOINT s;
INSERT INTO w (id, domain, type) VALUES ('00000000-0000-4000-8000-000000000c02', 'x', 'rolled-back');
ROLLBACK TO s;
INSERT INTO w (id, domain, type) VALUES ('00000000-0000-4000-8000-000000000c02', 'x', 'kept');
COMMIT;
SELECT type FROM w WHERE id = '00000000-0000-4000-8000-000000000c02';

-- two sessions append to one stream: the first commit wins, the other gets 40001
CREATE EXTENSION IF NOT EXISTS dblink;
SELECT dblink_connect('other', format('host=%s port=%s dbname=%s user=%s',
  split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'),
  current_database(), current_user));
BEGIN;
INSERT INTO w (domain, type, identifier) VALUES ('race', 'mine', 'r1') RETURNING sequence;
SELECT dblink_exec('other', format(
  $$INSERT INTO %s (domain, type, identifier) VALUES ('race', 'theirs', 'r1')$$, 'w'::regclass));
COMMIT;
SELECT type, sequence FROM w WHERE domain = 'race';
SELECT dblink_disconnect('other');

-- a reset cannot be undone, so TRUNCATE and reset_store refuse to run where a rollback could
-- follow (25001), and the store keeps its events; on their own they empty it
CREATE FOREIGN TABLE w_reset (id text, domain text, type text, identifier text, sequence bigint)
  SERVER write_srv OPTIONS (table_name_prefix 'write-reset-', truncatable 'true');
SELECT event_store_dynamo.reset_store('w_reset');
INSERT INTO w_reset (domain, type, identifier) VALUES ('r', 'kept', '1'), ('r', 'kept', '1');
BEGIN;
TRUNCATE w_reset;
ROLLBACK;
BEGIN;
INSERT INTO w_reset (domain, type, identifier) VALUES ('r', 'in-transaction', '1');
SELECT event_store_dynamo.reset_store('w_reset');
ROLLBACK;
BEGIN;
SAVEPOINT s;
ROLLBACK TO s;
TRUNCATE w_reset;
COMMIT;
-- in a function's exception block (a subtransaction), and as one of several statements sent at once
DO $$
BEGIN
  PERFORM event_store_dynamo.reset_store('w_reset');
EXCEPTION WHEN active_sql_transaction THEN
  RAISE NOTICE 'refused: %', SQLSTATE;
END $$;
SELECT 1 AS first \; TRUNCATE w_reset;
SELECT type, sequence FROM w_reset ORDER BY sequence;
SELECT event_store_dynamo.stream_version('w_reset', 'r', '1') AS version;
-- on its own, TRUNCATE resets the store: the events and the stream head are gone
TRUNCATE w_reset;
SELECT count(*) AS after_truncate FROM w_reset;
SELECT event_store_dynamo.stream_version('w_reset', 'r', '1') AS version;
INSERT INTO w_reset (domain, type, identifier) VALUES ('r', 'after-reset', '1') RETURNING sequence;
SELECT event_store_dynamo.reset_store('w_reset');
SELECT count(*) AS after_reset FROM w_reset;

-- the stored layout, as the Node adapter would have written it
SELECT pg_temp.load_raw(:'raw_items') > 0 AS loaded;
SELECT item->'created'->>'S' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$' AS iso_ms,
       item->'timeBucket'->>'S' = left(item->'created'->>'S', 7) AS bucket,
       item->'id'->>'S' ~ '^EventID#[0-9a-f-]{36}$' AS uuid, item->'sequence' AS sequence, item->'payload' AS payload,
       (SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(item) k) AS attributes
  FROM raw_items WHERE item->'domain'->>'S' IN ('copy', 'order')
 ORDER BY item->'domain'->>'S', item->'identifier'->>'S', (item->'sequence'->>'N')::int;
-- stream heads, as the Node adapter keeps them
SELECT item->'id' AS id, item->'version' AS version,
       (SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(item) k) AS attributes
  FROM raw_items WHERE item->'id'->>'S' LIKE 'EventID#HEAD::copy::%' OR item->'id'->>'S' LIKE 'EventID#HEAD::order::%'
 ORDER BY 1;

DROP TABLE orders;
DROP FUNCTION order_event();
DROP SERVER write_srv CASCADE;
