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

-- a stream head read that fails inside a savepoint (the table is not there
-- yet) leaves nothing behind: once the table exists, the stream starts at 1
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

-- SERIALIZABLE write skew: two on-call doctors each go off call, each
-- recording an event; the second commit fails with 40001 and its event is
-- never sent, so the retry writes it once
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
-- the retry, with the same id: written once
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT count(*) AS on_call FROM oncall WHERE on_call;
INSERT INTO shifts (id, domain, type, identifier)
  VALUES ('00000000-0000-4000-8000-00000000a11c', 'doctor', 'stays', 'alice') RETURNING sequence;
COMMIT;
SELECT identifier, type, sequence FROM shifts WHERE domain = 'doctor' AND identifier IN ('alice', 'bob')
 ORDER BY identifier;

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
