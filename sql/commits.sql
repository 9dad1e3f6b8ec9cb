-- Commits that fail, and what they leave: a stream head read that fails
-- inside a savepoint, SERIALIZABLE write skew (refused before anything is
-- sent), a commit refused part-way (its error says what was written, up to
-- which sequence of each stream).
\getenv ddb_url DDB_URL
\getenv s3_url S3_URL
SET timezone = 'UTC';
\set VERBOSITY verbose

CREATE SERVER commits_srv FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (endpoint :'ddb_url', s3_endpoint :'s3_url', s3_force_path_style 'true', max_in_flight '1');
CREATE USER MAPPING FOR CURRENT_USER SERVER commits_srv
  OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS dblink;
RESET client_min_messages;
SELECT dblink_connect('other', format('host=%s port=%s dbname=%s user=%s',
  split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'),
  current_database(), current_user));

\getenv abs_srcdir PG_ABS_SRCDIR

-- a stream head read that fails inside a savepoint (the table is not there
-- yet) leaves nothing behind: once the table exists, the stream starts at 1
-- (a run of this file before, on the same stack, created it: gone first)
\set drop_late 'node ' :abs_srcdir '/test/regress/drop-table.js ' :ddb_url ' commits-late-schemeless-event-store'
CREATE TEMP TABLE dropped (line text);
COPY dropped FROM PROGRAM :'drop_late';
DROP TABLE dropped;
CREATE FOREIGN TABLE late (id text, domain text, type text, identifier text, sequence bigint)
  SERVER commits_srv OPTIONS (table_name_prefix 'commits-late-', auto_create 'false');
BEGIN;
SAVEPOINT s;
INSERT INTO late (domain, type, identifier) VALUES ('h', 'first', '1') RETURNING sequence;
ROLLBACK TO s;
SELECT event_store_dynamo.init_store('late') IS NOT NULL AS created;
INSERT INTO late (domain, type, identifier) VALUES ('h', 'first', '1') RETURNING sequence;
INSERT INTO late (domain, type, identifier) VALUES ('h', 'second', '1') RETURNING sequence;
COMMIT;
SELECT type, sequence FROM late WHERE domain = 'h' AND identifier = '1';

-- What DynamoDB holds, read with the AWS SDK (test/regress/raw-items.js),
-- not through this extension: a bug of the read path cannot hide a write.
\set raw_items 'node ' :abs_srcdir '/test/regress/raw-items.js ' :ddb_url ' commits-schemeless-event-store domain=roster'
\set doctor_items 'node ' :abs_srcdir '/test/regress/raw-items.js ' :ddb_url ' commits-schemeless-event-store domain=doctor'
CREATE TEMP TABLE raw_items (item jsonb);
CREATE FUNCTION pg_temp.load_raw(cmd text) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM raw_items;
  EXECUTE format('COPY raw_items FROM PROGRAM %L WITH (FORMAT csv, QUOTE %L, DELIMITER %L)', cmd, E'\x01', E'\x02');
  RETURN (SELECT count(*) FROM raw_items);
END $$;

-- SERIALIZABLE write skew: two on-call doctors each go off call, each
-- recording an event; the second commit fails with 40001 and its event is
-- never sent, so the retry writes it once (counted in DynamoDB itself)
CREATE TABLE oncall (name text PRIMARY KEY, on_call bool);
INSERT INTO oncall VALUES ('alice', true), ('bob', true);
CREATE FOREIGN TABLE shifts (id text, domain text, type text, identifier text, sequence bigint)
  SERVER commits_srv OPTIONS (table_name_prefix 'commits-');
SELECT event_store_dynamo.reset_store('shifts');
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT count(*) AS on_call FROM oncall WHERE on_call;
SELECT dblink_exec('other', 'BEGIN ISOLATION LEVEL SERIALIZABLE');
SELECT * FROM dblink('other', 'SELECT count(*) FROM oncall WHERE on_call') AS t(on_call bigint);
SELECT dblink_exec('other', $$UPDATE oncall SET on_call = false WHERE name = 'bob'$$);
SELECT dblink_exec('other', format(
  $$INSERT INTO %s (domain, type, identifier) VALUES ('doctor', 'off-call', 'bob')$$, 'shifts'::regclass));
UPDATE oncall SET on_call = false WHERE name = 'alice';
INSERT INTO shifts (id, domain, type, identifier)
  VALUES ('00000000-0000-4000-8000-00000000a11c', 'doctor', 'off-call', 'alice') RETURNING sequence;
SELECT dblink_exec('other', 'COMMIT');
COMMIT;
SELECT identifier, type, sequence FROM shifts WHERE domain = 'doctor' AND identifier IN ('alice', 'bob')
 ORDER BY identifier;
SELECT pg_temp.load_raw(:'doctor_items') AS items;
SELECT item->'identifier'->>'S' AS identifier, item->'type'->>'S' AS type, item->'sequence'->>'N' AS sequence
  FROM raw_items ORDER BY 1, 3;
-- the retry, with the same id: written once
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT count(*) AS on_call FROM oncall WHERE on_call;
INSERT INTO shifts (id, domain, type, identifier)
  VALUES ('00000000-0000-4000-8000-00000000a11c', 'doctor', 'stays', 'alice') RETURNING sequence;
COMMIT;
SELECT identifier, type, sequence FROM shifts WHERE domain = 'doctor' AND identifier IN ('alice', 'bob')
 ORDER BY identifier;
SELECT pg_temp.load_raw(:'doctor_items') AS items;
SELECT item->'identifier'->>'S' AS identifier, item->'type'->>'S' AS type, item->'sequence'->>'N' AS sequence
  FROM raw_items ORDER BY 1, 3;

-- PostgreSQL can still fail a commit after this extension sent its events:
-- here ON COMMIT DELETE ROWS on a table a foreign key refers to fails it
-- after the pre-commit callbacks ran. The event stays in DynamoDB (counted
-- there with the AWS SDK). A retry that gives the same id is refused with
-- 23505 and writes nothing: the id says the event is already there. A retry
-- that lets the id be generated writes the event a second time.
BEGIN;
CREATE TEMP TABLE shift_parent (k int PRIMARY KEY) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE shift_child (k int REFERENCES shift_parent);
INSERT INTO shifts (id, domain, type, identifier)
  VALUES ('00000000-0000-4000-8000-0000000ca201', 'roster', 'on-call', 'carol') RETURNING sequence;
COMMIT;
SELECT pg_temp.load_raw(:'raw_items') AS items;
SELECT item->'id'->>'S' AS id, item->'sequence'->>'N' AS sequence FROM raw_items ORDER BY 2;
-- the retry with the same id: refused, nothing more written
BEGIN;
INSERT INTO shifts (id, domain, type, identifier)
  VALUES ('00000000-0000-4000-8000-0000000ca201', 'roster', 'on-call', 'carol') RETURNING sequence;
COMMIT;
SELECT pg_temp.load_raw(:'raw_items') AS items;
-- the same with a generated id: the retry writes a second event
BEGIN;
CREATE TEMP TABLE shift_parent (k int PRIMARY KEY) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE shift_child (k int REFERENCES shift_parent);
INSERT INTO shifts (domain, type, identifier) VALUES ('roster', 'on-call', 'dave') RETURNING sequence;
COMMIT;
INSERT INTO shifts (domain, type, identifier) VALUES ('roster', 'on-call', 'dave') RETURNING sequence;
SELECT pg_temp.load_raw(:'raw_items') AS items;
SELECT item->'identifier'->>'S' AS identifier, item->'sequence'->>'N' AS sequence FROM raw_items
 WHERE item->'identifier'->>'S' = 'dave' ORDER BY 2;

-- a commit refused part-way: 250 events of stream "p::a" go out in three
-- DynamoDB transactions (one at a time: max_in_flight 1), the third also
-- holding stream "p::b", which another session moved meanwhile; the first
-- two stay, and the error says so, stream by stream
CREATE FOREIGN TABLE parts (domain text, type text, identifier text, sequence bigint)
  SERVER commits_srv OPTIONS (table_name_prefix 'commits-');
BEGIN;
INSERT INTO parts (domain, type, identifier) SELECT 'p', 'e', 'a' FROM generate_series(1, 250);
INSERT INTO parts (domain, type, identifier) SELECT 'p', 'e', 'b' FROM generate_series(1, 10);
SELECT dblink_exec('other', format(
  $$INSERT INTO %s (domain, type, identifier) VALUES ('p', 'theirs', 'b')$$, 'parts'::regclass));
COMMIT;
SELECT identifier, count(*) AS events, max(sequence) AS last FROM parts
 WHERE domain = 'p' AND identifier IN ('a', 'b') GROUP BY identifier ORDER BY identifier;

SELECT dblink_disconnect('other');
DROP TABLE oncall;
DROP SERVER commits_srv CASCADE;
