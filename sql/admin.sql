-- Store management: init_store, reset_store, TRUNCATE, add_stream_index,
-- stream_version, store_info and IMPORT FOREIGN SCHEMA, on stores of their
-- own (admin-*).  test/interop/admin-store.js prepares them: the
-- admin-node- store is created by the published Node adapter's own init()
-- and holds five events (account/42: 3, account/7: 1, system without
-- identifier: 1); admin-hashonly-, admin-wrongidx- and admin-wrongstream-
-- have other shapes.
-- every error, warning and notice shows its SQLSTATE (test/regress/psql drops the LOCATION lines)
\set VERBOSITY verbose
-- the clock the extension reads ("now" for the walk's last month and a default created): the real
-- one, or the fixed one of event_store_dynamo.test_now (test/steps/45-regress-clock.sh sets it)
CREATE FUNCTION pg_temp.clock() RETURNS timestamptz STABLE LANGUAGE sql AS
  $$SELECT coalesce(nullif(current_setting('event_store_dynamo.test_now', true), '')::timestamptz, now())$$;
\getenv ddb_url DDB_URL
\getenv s3_url S3_URL
\getenv abs_srcdir PG_ABS_SRCDIR
SET timezone = 'UTC';

CREATE TEMP TABLE node_says (line text);
\set node_store 'node ' :abs_srcdir '/test/interop/admin-store.js'
\set prepare :node_store ' prepare ' :ddb_url ' ' :s3_url
COPY node_says FROM PROGRAM :'prepare';
SELECT line FROM node_says;
TRUNCATE node_says;

-- errors that come from AWS show their SQLSTATE and message only
CREATE FUNCTION pg_temp.outcome(query text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  state text;
  msg text;
  result text;
BEGIN
  EXECUTE query INTO result;
  RETURN 'ok: ' || coalesce(result, 'NULL');
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
  RETURN state || ': ' || msg;
END $$;

-- EXPLAIN, without the end of a walk's month range, which moves with the calendar
CREATE FUNCTION pg_temp.plan(query text, run bool DEFAULT false) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  line text;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (COSTS OFF' ||
      CASE WHEN run THEN ', ANALYZE, TIMING OFF, SUMMARY OFF' ELSE '' END || ') ' || query LOOP
    RETURN NEXT regexp_replace(line, '(Buckets: \d{4}-\d{2} \.\. ).*', '\1(now + look-ahead)');
  END LOOP;
END $$;

CREATE SERVER admin_srv FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (endpoint :'ddb_url', s3_endpoint :'s3_url', s3_force_path_style 'true');
CREATE USER MAPPING FOR PUBLIC SERVER admin_srv
  OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');

--
-- init_store creates what is missing and says so; a second call finds it.
-- The table has the layout's indexes and streamIndex, ours, for reading a
-- stream (domain and identifier, sequence)
--
CREATE FOREIGN TABLE admin_sql (
  id text, domain text, type text, identifier text, sequence bigint, created timestamptz
) SERVER admin_srv
  OPTIONS (table_name_prefix 'admin-sql-', s3_bucket 'admin-sql-events',
           read_capacity_units '3', write_capacity_units '4');
SELECT event_store_dynamo.init_store('admin_sql');
SELECT event_store_dynamo.init_store('admin_sql');
SELECT table_name, table_status, item_count, billing_mode, read_capacity_units,
       write_capacity_units, indexes
  FROM event_store_dynamo.store_info('admin_sql');
SELECT count(*) AS events FROM admin_sql;
SELECT event_store_dynamo.stream_version('admin_sql', 'account', '42');

-- the table init_store created works for the Node adapter: it appends,
-- and SQL replays what it wrote and reads the same stream head
\set append_sql :node_store ' append ' :ddb_url ' ' :s3_url ' admin-sql- admin-sql-events'
COPY node_says FROM PROGRAM :'append_sql';
SELECT line FROM node_says;
TRUNCATE node_says;
SELECT domain, identifier, type, sequence, created FROM admin_sql;
SELECT event_store_dynamo.stream_version('admin_sql', 'account', '42');

-- billing_mode PAY_PER_REQUEST: an on-demand table, no capacity units
CREATE FOREIGN TABLE admin_ondemand (id text) SERVER admin_srv
  OPTIONS (table_name_prefix 'admin-ondemand-', billing_mode 'PAY_PER_REQUEST');
SELECT event_store_dynamo.init_store('admin_ondemand');
SELECT table_status, billing_mode, read_capacity_units, write_capacity_units, indexes
  FROM event_store_dynamo.store_info('admin_ondemand');

--
-- the store the Node adapter created with its own init has the layout;
-- it has no streamIndex, and init_store says how to add one
--
CREATE FOREIGN TABLE admin_node (
  id text, domain text, type text, identifier text, sequence bigint, created timestamptz
) SERVER admin_srv OPTIONS (table_name_prefix 'admin-node-', s3_bucket 'admin-node-events');
SELECT event_store_dynamo.init_store('admin_node');
SELECT table_name, table_status, item_count AS events_and_heads, size_bytes > 0 AS has_size,
       billing_mode, read_capacity_units, write_capacity_units, indexes
  FROM event_store_dynamo.store_info('admin_node');

-- stream_version reads the stream head: the events in the stream, 0 for a
-- stream never written; a NULL identifier is the stream without one
SELECT event_store_dynamo.stream_version('admin_node', 'account', '42') AS account_42,
       event_store_dynamo.stream_version('admin_node', 'account', '7') AS account_7,
       event_store_dynamo.stream_version('admin_node', 'system', NULL) AS system,
       event_store_dynamo.stream_version('admin_node', 'system', '') AS system_empty,
       event_store_dynamo.stream_version('admin_node', 'account', 'nobody') AS nobody,
       event_store_dynamo.stream_version('admin_node', 'Account', '42') AS other_case,
       event_store_dynamo.stream_version('admin_node', NULL, '42') AS null_domain;
SELECT identifier, count(*) AS events, max(sequence) AS last_sequence,
       event_store_dynamo.stream_version('admin_node', domain, identifier) AS head
  FROM admin_node GROUP BY domain, identifier ORDER BY domain, identifier;

--
-- streamIndex: the table option stream_index 'false' leaves it out;
-- add_stream_index adds it, billed as the table is (here on demand), and a
-- second call finds it
--
CREATE FOREIGN TABLE admin_nostream (id text) SERVER admin_srv
  OPTIONS (table_name_prefix 'admin-nostream-', billing_mode 'PAY_PER_REQUEST',
           stream_index 'false');
SELECT event_store_dynamo.init_store('admin_nostream');
SELECT indexes FROM event_store_dynamo.store_info('admin_nostream');
SELECT event_store_dynamo.add_stream_index('admin_nostream');
SELECT event_store_dynamo.add_stream_index('admin_nostream');
SELECT billing_mode, indexes FROM event_store_dynamo.store_info('admin_nostream');
\set VERBOSITY terse
ALTER FOREIGN TABLE admin_nostream OPTIONS (SET stream_index 'sometimes');
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY verbose

-- the Node adapter's table has no streamIndex and the layout all the same
-- (init_store accepted it above): a stream read, planned on streamIndex
-- (the planner does not ask), finds it missing and walks every month
SELECT indexes FROM event_store_dynamo.store_info('admin_node');
SELECT * FROM pg_temp.plan($$SELECT sequence, type FROM admin_node
  WHERE domain = 'account' AND identifier = '42' ORDER BY sequence$$, true) AS line
  WHERE line ~ '(Foreign Scan|DynamoDB Access|Stream Read)';
SELECT sequence, type FROM admin_node
  WHERE domain = 'account' AND identifier = '42' ORDER BY sequence;
-- add_stream_index adds it; DynamoDB indexes the events already there, as
-- the adapter wrote them, and the stream read uses it
SELECT event_store_dynamo.add_stream_index('admin_node');
SELECT table_status, indexes FROM event_store_dynamo.store_info('admin_node');
EXPLAIN (COSTS OFF) SELECT sequence, type FROM admin_node
  WHERE domain = 'account' AND identifier = '42' ORDER BY sequence;
SELECT * FROM pg_temp.plan($$SELECT sequence, type FROM admin_node
  WHERE domain = 'account' AND identifier = '42' ORDER BY sequence$$, true) AS line
  WHERE line ~ '(Foreign Scan|DynamoDB Access|Stream Read)';
SELECT sequence, type FROM admin_node
  WHERE domain = 'account' AND identifier = '42' ORDER BY sequence;
SELECT sequence, type FROM admin_node
  WHERE domain = 'account' AND identifier = '42' AND sequence >= 2 ORDER BY sequence;
SELECT sequence, type FROM admin_node WHERE domain = 'account' AND identifier = '7';
SELECT count(*) AS events FROM admin_node WHERE domain = 'account' AND identifier = 'nobody';
-- what the adapter appends later is in the index too
\set append_node :node_store ' append ' :ddb_url ' ' :s3_url ' admin-node- admin-node-events'
COPY node_says FROM PROGRAM :'append_node';
SELECT line FROM node_says;
TRUNCATE node_says;
SELECT sequence, type FROM admin_node
  WHERE domain = 'account' AND identifier = '42' ORDER BY sequence;

--
-- the first INSERT creates a missing store, table and bucket, as the Node
-- adapter's init() does, unless the table option auto_create is false
--
CREATE FOREIGN TABLE admin_auto (domain text, type text, payload jsonb, sequence bigint)
  SERVER admin_srv OPTIONS (table_name_prefix 'admin-auto-', s3_bucket 'admin-auto-events');
INSERT INTO admin_auto (domain, type, payload) VALUES ('account', 'opened', '{"n": 1}');
INSERT INTO admin_auto (domain, type, payload) VALUES ('account', 'closed', '{"n": 2}');
SELECT domain, type, payload, sequence FROM admin_auto ORDER BY sequence;
SELECT event_store_dynamo.init_store('admin_auto');
CREATE FOREIGN TABLE admin_noauto (domain text, type text)
  SERVER admin_srv OPTIONS (table_name_prefix 'admin-noauto-', auto_create 'false');
\set VERBOSITY sqlstate
INSERT INTO admin_noauto VALUES ('account', 'opened');
\set VERBOSITY verbose
SELECT event_store_dynamo.store_info('admin_noauto');

--
-- a table of another shape: init_store names every difference
--
CREATE FOREIGN TABLE admin_hashonly (id text) SERVER admin_srv
  OPTIONS (table_name_prefix 'admin-hashonly-');
SELECT event_store_dynamo.init_store('admin_hashonly');
CREATE FOREIGN TABLE admin_wrongidx (id text) SERVER admin_srv
  OPTIONS (table_name_prefix 'admin-wrongidx-');
SELECT event_store_dynamo.init_store('admin_wrongidx');
-- streamIndex may be missing, but not keyed otherwise
CREATE FOREIGN TABLE admin_wrongstream (id text) SERVER admin_srv
  OPTIONS (table_name_prefix 'admin-wrongstream-');
SELECT event_store_dynamo.init_store('admin_wrongstream');
SELECT event_store_dynamo.add_stream_index('admin_wrongstream');
SELECT event_store_dynamo.add_stream_index('admin_hashonly');
-- store_info describes any table, whatever its shape
SELECT table_status, indexes FROM event_store_dynamo.store_info('admin_wrongidx');
SELECT table_status, indexes FROM event_store_dynamo.store_info('admin_wrongstream');

--
-- reset_store: delete and recreate, with streamIndex; every event and
-- stream head is gone
--
SELECT event_store_dynamo.reset_store('admin_node');
SELECT count(*) AS events FROM admin_node;
SELECT event_store_dynamo.stream_version('admin_node', 'account', '42');
SELECT table_status, item_count, indexes FROM event_store_dynamo.store_info('admin_node');
-- the Node adapter appends to the recreated table from version 0
COPY node_says FROM PROGRAM :'append_node';
SELECT line FROM node_says;
TRUNCATE node_says;
SELECT type, sequence FROM admin_node;

-- reset_store on a missing table creates it
CREATE FOREIGN TABLE admin_fresh (id text) SERVER admin_srv
  OPTIONS (table_name_prefix 'admin-fresh-');
SELECT event_store_dynamo.reset_store('admin_fresh');
SELECT table_name, table_status FROM event_store_dynamo.store_info('admin_fresh');

--
-- TRUNCATE runs reset_store, only when the table option truncatable says so
--
TRUNCATE admin_node;
ALTER FOREIGN TABLE admin_node OPTIONS (ADD truncatable 'false');
TRUNCATE admin_node;
ALTER FOREIGN TABLE admin_node OPTIONS (SET truncatable 'true');
-- several tables: every one is checked before any is reset
TRUNCATE admin_node, admin_sql;
SELECT count(*) AS events FROM admin_node;
ALTER FOREIGN TABLE admin_sql OPTIONS (ADD truncatable 'true');
TRUNCATE admin_node, admin_sql;
SELECT count(*) AS events FROM admin_node;
SELECT count(*) AS events FROM admin_sql;
SELECT event_store_dynamo.stream_version('admin_node', 'account', '42');
-- two foreign tables over one DynamoDB table
CREATE FOREIGN TABLE admin_node_again (id text) SERVER admin_srv
  OPTIONS (table_name 'admin-node-schemeless-event-store', truncatable 'true');
TRUNCATE admin_node, admin_node_again;
SELECT table_status, item_count FROM event_store_dynamo.store_info('admin_node_again');

--
-- missing tables and what is not an event store foreign table
--
CREATE FOREIGN TABLE admin_missing (id text) SERVER admin_srv
  OPTIONS (table_name_prefix 'admin-missing-');
SELECT event_store_dynamo.store_info('admin_missing');
SELECT pg_temp.outcome($$SELECT event_store_dynamo.stream_version('admin_missing', 'account', '42')$$);
SELECT event_store_dynamo.add_stream_index('admin_missing');
SELECT event_store_dynamo.reset_store('pg_class');
SELECT event_store_dynamo.add_stream_index('pg_class');
SELECT event_store_dynamo.init_store('node_says');
SELECT event_store_dynamo.stream_version(NULL, 'account', '42') AS null_table;

--
-- waiting is bounded and interruptible: against an endpoint whose tables
-- stay CREATING, init_store waits until statement_timeout cancels it; so
-- do add_stream_index, and both for a table whose streamIndex stays
-- CREATING (being backfilled)
--
\set creating 'node ' :abs_srcdir '/test/interop/admin-creating.js'
COPY node_says FROM PROGRAM :'creating';
SELECT line AS creating_url FROM node_says \gset
TRUNCATE node_says;
CREATE SERVER admin_creating FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (endpoint :'creating_url', max_retries '0');
CREATE USER MAPPING FOR PUBLIC SERVER admin_creating
  OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
CREATE FOREIGN TABLE admin_creating_t (id text) SERVER admin_creating
  OPTIONS (table_name_prefix 'admin-creating-');
SELECT table_status, indexes FROM event_store_dynamo.store_info('admin_creating_t');
SET statement_timeout = '1s';
SELECT event_store_dynamo.init_store('admin_creating_t');
SELECT event_store_dynamo.reset_store('admin_creating_t');
SELECT event_store_dynamo.add_stream_index('admin_creating_t');
RESET statement_timeout;
CREATE FOREIGN TABLE admin_backfill_t (id text) SERVER admin_creating
  OPTIONS (table_name_prefix 'admin-backfill-');
SELECT table_status, indexes FROM event_store_dynamo.store_info('admin_backfill_t');
SET statement_timeout = '1s';
SELECT event_store_dynamo.init_store('admin_backfill_t');
SELECT event_store_dynamo.add_stream_index('admin_backfill_t');
RESET statement_timeout;
\set quit 'curl -s ' :creating_url '/__quit'
COPY node_says FROM PROGRAM :'quit';
TRUNCATE node_says;

--
-- who may do what: reset_store, init_store, add_stream_index and TRUNCATE
-- need ownership, stream_version and store_info SELECT
--
CREATE ROLE regress_admin_other;
SET ROLE regress_admin_other;
SELECT event_store_dynamo.reset_store('admin_node');
SELECT event_store_dynamo.init_store('admin_node');
SELECT event_store_dynamo.add_stream_index('admin_node');
SELECT event_store_dynamo.stream_version('admin_node', 'account', '42');
SELECT event_store_dynamo.store_info('admin_node');
TRUNCATE admin_node;
RESET ROLE;
GRANT SELECT, TRUNCATE ON admin_node TO regress_admin_other;
SET ROLE regress_admin_other;
SELECT event_store_dynamo.stream_version('admin_node', 'account', '42');
SELECT table_status FROM event_store_dynamo.store_info('admin_node');
SELECT event_store_dynamo.reset_store('admin_node');
SELECT event_store_dynamo.init_store('admin_node');
SELECT event_store_dynamo.add_stream_index('admin_node');
TRUNCATE admin_node;
RESET ROLE;
-- a member of the owning role counts as owner of the foreign table, which is
-- not enough to change the AWS resources behind it: that needs the owner of
-- its server (or superuser)
ALTER FOREIGN TABLE admin_fresh OWNER TO regress_admin_other;
CREATE ROLE regress_admin_member IN ROLE regress_admin_other;
SET ROLE regress_admin_member;
SELECT event_store_dynamo.init_store('admin_fresh');
SELECT event_store_dynamo.add_stream_index('admin_fresh');
RESET ROLE;

--
-- IMPORT FOREIGN SCHEMA "<prefix>": the table <prefix>schemeless-event-store
-- as "events", with every column of the layout
--
CREATE SCHEMA admin_import;
IMPORT FOREIGN SCHEMA "admin-sql-" FROM SERVER admin_srv INTO admin_import;
\d admin_import.events
SELECT count(*) AS events FROM admin_import.events;
DROP FOREIGN TABLE admin_import.events;
-- the full table name works too (the only way to name an empty prefix),
-- and the statement's OPTIONS become table options
COPY node_says FROM PROGRAM :'append_sql';
TRUNCATE node_says;
IMPORT FOREIGN SCHEMA "admin-sql-schemeless-event-store" FROM SERVER admin_srv INTO admin_import
  OPTIONS (s3_bucket 'admin-sql-events', start_month '2024-03');
SELECT ftoptions FROM pg_foreign_table WHERE ftrelid = 'admin_import.events'::regclass;
SELECT id, domain, type, identifier, correlation_id, causation_id, sequence, payload, meta,
       created, time_bucket, s3_reference FROM admin_import.events;
DROP FOREIGN TABLE admin_import.events;
-- LIMIT TO and EXCEPT name the local table
IMPORT FOREIGN SCHEMA "admin-sql-" LIMIT TO (other) FROM SERVER admin_srv INTO admin_import;
IMPORT FOREIGN SCHEMA "admin-sql-" EXCEPT (events) FROM SERVER admin_srv INTO admin_import;
SELECT count(*) AS imported FROM pg_class WHERE relnamespace = 'admin_import'::regnamespace;
IMPORT FOREIGN SCHEMA "admin-sql-" LIMIT TO (events) FROM SERVER admin_srv INTO admin_import;
SELECT count(*) AS imported FROM pg_class WHERE relnamespace = 'admin_import'::regnamespace;
-- the imported table takes a bare INSERT (domain, type, payload): the id,
-- created, sequence and time bucket are filled in
INSERT INTO admin_import.events (domain, type, payload) VALUES ('profile', 'created', '{"name": "x"}');
SELECT domain, identifier, type, payload, sequence, id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' AS uuid_v4,
       created BETWEEN pg_temp.clock() - interval '1 hour' AND pg_temp.clock() AS created_now, time_bucket = to_char(created, 'YYYY-MM') AS bucket_ok
  FROM admin_import.events WHERE domain = 'profile';
SELECT event_store_dynamo.stream_version('admin_import.events', 'profile', NULL);
-- a second import collides with the first like any CREATE
IMPORT FOREIGN SCHEMA "admin-sql-" FROM SERVER admin_srv INTO admin_import;
DROP FOREIGN TABLE admin_import.events;
-- the table must exist and have the layout
IMPORT FOREIGN SCHEMA "admin-missing-" FROM SERVER admin_srv INTO admin_import;
IMPORT FOREIGN SCHEMA "admin-wrongidx-" FROM SERVER admin_srv INTO admin_import;
IMPORT FOREIGN SCHEMA "no such prefix" FROM SERVER admin_srv INTO admin_import;
IMPORT FOREIGN SCHEMA "admin-sql-" FROM SERVER admin_srv INTO admin_import
  OPTIONS (table_name_prefix 'other-');
\set VERBOSITY terse
IMPORT FOREIGN SCHEMA "admin-sql-" FROM SERVER admin_srv INTO admin_import
  OPTIONS (no_such_option 'x');
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY verbose

SET client_min_messages = warning;
DROP SCHEMA admin_import CASCADE;
DROP SERVER admin_srv, admin_creating CASCADE;
DROP ROLE regress_admin_member;
DROP ROLE regress_admin_other;
RESET client_min_messages;
