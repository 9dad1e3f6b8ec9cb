-- Security: who may destroy a store, which hosts an item may make the
-- backend call, whose credentials sign an append, what may be pushed down,
-- and what an INSERT may store.
-- every error, warning and notice shows its SQLSTATE (test/regress/psql drops the LOCATION lines)
\set VERBOSITY verbose
\getenv ddb_url DDB_URL
\getenv s3_url S3_URL
\getenv abs_srcdir PG_ABS_SRCDIR
SET timezone = 'UTC';
\set SHOW_CONTEXT never

CREATE SERVER sec_srv FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (endpoint :'ddb_url', s3_endpoint :'s3_url', s3_force_path_style 'true');
CREATE USER MAPPING FOR CURRENT_USER SERVER sec_srv
  OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
CREATE FOREIGN TABLE sec_ev (
  id text, domain text, type text, identifier text, causation_id text, sequence bigint,
  payload json, created timestamptz
) SERVER sec_srv OPTIONS (table_name_prefix 'sec-', start_month '2024-01', lookahead_months '0');
CREATE FOREIGN TABLE sec_ev_local (
  id text, domain text, type text, identifier text, causation_id text, sequence bigint,
  payload json, created timestamptz
) SERVER sec_srv OPTIONS (table_name_prefix 'sec-', start_month '2024-01', lookahead_months '0',
                          pushdown 'false');
SELECT event_store_dynamo.reset_store('sec_ev');
INSERT INTO sec_ev (id, domain, type, identifier, causation_id, created) VALUES
  ('E00001', 'Acct', 'opened', 'A-1', NULL, '2024-03-01 10:00:00+00'),
  ('E00002', 'acct', 'noted', 'a-1', 'E00001', '2024-03-02 10:00:00+00');

-- ---- pushdown: only what DynamoDB compares the same way ----
-- a nondeterministic collation compares otherwise than DynamoDB's bytes:
-- the condition stays local, and pushed and local reads agree
CREATE FUNCTION pg_temp.plan(query text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE line text;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || query LOOP
    CONTINUE WHEN line ~ '^ *(Buckets|Filter):';   -- the walk ends at the current month
    RETURN NEXT line;
  END LOOP;
END $$;
CREATE COLLATION sec_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
SELECT id FROM sec_ev WHERE id = 'e00001' COLLATE sec_ci;
SELECT id FROM sec_ev_local WHERE id = 'e00001' COLLATE sec_ci;
SELECT pg_temp.plan($$SELECT id FROM sec_ev WHERE id = 'e00001' COLLATE sec_ci$$);
SELECT id FROM sec_ev WHERE causation_id COLLATE sec_ci IN ('e00001');
SELECT id FROM sec_ev_local WHERE causation_id COLLATE sec_ci IN ('e00001');
CREATE FOREIGN TABLE sec_ev_ci (id text COLLATE sec_ci, domain text, created timestamptz)
  SERVER sec_srv OPTIONS (table_name_prefix 'sec-', start_month '2024-01', lookahead_months '0');
SELECT id FROM sec_ev_ci WHERE id = 'e00002';
SELECT pg_temp.plan($$SELECT id FROM sec_ev_ci WHERE id = 'e00002'$$);
-- deterministic collations ("C", the default) compare bytes: pushed
SELECT id FROM sec_ev WHERE id = 'E00001' COLLATE "C";
SELECT pg_temp.plan($$SELECT id FROM sec_ev WHERE id = 'E00001' COLLATE "C"$$);
SELECT pg_temp.plan($$SELECT id FROM sec_ev WHERE id = 'E00001'$$);

-- errors shown as SQLSTATE and message, for values that change with the date
CREATE FUNCTION pg_temp.refusal(query text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE query;
  RETURN 'accepted';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- the Node side: a DynamoDB table that is not an event store, and an event
-- store with hostile items (test/interop/security-items.js)
CREATE TEMP TABLE node_says (line text);
\set node_cmd 'node ' :abs_srcdir '/test/interop/security-items.js '
\set setup_cmd :node_cmd 'setup ' :ddb_url ' ' :s3_url
\set customers_cmd :node_cmd 'customers ' :ddb_url ' ' :s3_url
COPY node_says FROM PROGRAM :'setup_cmd';
SELECT line FROM node_says;

-- ---- who may destroy a store ----
-- a foreign table naming a table that is not an event store: nothing is
-- deleted or changed, whoever asks
CREATE FOREIGN TABLE sec_customers (id text, created timestamptz) SERVER sec_srv
  OPTIONS (table_name 'sec-customers', truncatable 'true', auto_create 'false');
SELECT event_store_dynamo.reset_store('sec_customers');
TRUNCATE sec_customers;
SELECT event_store_dynamo.init_store('sec_customers');
SELECT event_store_dynamo.add_stream_index('sec_customers');
TRUNCATE node_says;
COPY node_says FROM PROGRAM :'customers_cmd';
SELECT line FROM node_says;

-- a role with USAGE on a server that has a PUBLIC user mapping may create
-- a foreign table naming any DynamoDB table and owns it; that does not let
-- it delete, create or change AWS resources
CREATE ROLE sec_low;
CREATE SERVER sec_pub_srv FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (endpoint :'ddb_url', s3_endpoint :'s3_url', s3_force_path_style 'true');
CREATE USER MAPPING FOR PUBLIC SERVER sec_pub_srv
  OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
GRANT USAGE ON FOREIGN SERVER sec_pub_srv TO sec_low;
CREATE SCHEMA sec_low_schema AUTHORIZATION sec_low;
SET ROLE sec_low;
CREATE FOREIGN TABLE sec_low_schema.victim (id text, domain text, type text, created timestamptz)
  SERVER sec_pub_srv OPTIONS (table_name_prefix 'sec-', truncatable 'true', start_month '2024-01',
                              lookahead_months '0');
SELECT event_store_dynamo.reset_store('sec_low_schema.victim');
TRUNCATE sec_low_schema.victim;
SELECT event_store_dynamo.init_store('sec_low_schema.victim');
SELECT event_store_dynamo.add_stream_index('sec_low_schema.victim');
-- the first INSERT would create a missing table (auto_create): refused too
CREATE FOREIGN TABLE sec_low_schema.fresh (id text, domain text, type text)
  SERVER sec_pub_srv OPTIONS (table_name_prefix 'sec-low-fresh-');
INSERT INTO sec_low_schema.fresh (domain, type) VALUES ('d', 't');
-- reading is what the mapping allows
SELECT id FROM sec_low_schema.victim WHERE id = 'E00001';
RESET ROLE;
SELECT id FROM sec_ev ORDER BY id;

-- the owner of a server (not a superuser) may: he chose its credentials
CREATE ROLE sec_owner;
GRANT USAGE ON FOREIGN DATA WRAPPER event_store_dynamo TO sec_owner;
CREATE SCHEMA sec_owner_schema AUTHORIZATION sec_owner;
SET ROLE sec_owner;
CREATE SERVER sec_own_srv FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (endpoint :'ddb_url', s3_endpoint :'s3_url', s3_force_path_style 'true');
CREATE USER MAPPING FOR sec_owner SERVER sec_own_srv
  OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
CREATE FOREIGN TABLE sec_owner_schema.own (id text, domain text, type text)
  SERVER sec_own_srv OPTIONS (table_name_prefix 'sec-owned-', stream_index 'false');
SELECT event_store_dynamo.reset_store('sec_owner_schema.own');
SELECT event_store_dynamo.init_store('sec_owner_schema.own');
-- but not on the foreign table of another server
SELECT event_store_dynamo.reset_store('public.sec_ev');
RESET ROLE;

-- ---- which hosts an item may make the backend call ----
-- an s3Reference's bucket must be an S3 bucket name and, by default, the
-- table's s3_bucket: anything else is refused before any request is sent
CREATE FOREIGN TABLE sec_hostile (id text, type text, payload json, s3_reference text)
  SERVER sec_srv OPTIONS (table_name_prefix 'sec-hostile-', s3_bucket 'sec-hostile-events',
                          start_month '2024-05', lookahead_months '0', on_bad_item 'warn');
SELECT right(id, 2) AS nn, payload FROM sec_hostile;
ALTER FOREIGN TABLE sec_hostile OPTIONS (SET on_bad_item 'error');
SELECT payload FROM sec_hostile WHERE id = '00000000-0000-4000-c000-000000000001';
SELECT payload FROM sec_hostile WHERE id = '00000000-0000-4000-c000-000000000002';
SELECT payload FROM sec_hostile WHERE id = '00000000-0000-4000-c000-000000000005';
-- virtual-hosted addressing puts the bucket in the host name: the same
-- item still sends nothing (127.0.0.1:9 would refuse the connection)
\getenv s3_vhost_url S3_VHOST_URL
CREATE SERVER sec_vhost_srv FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (endpoint :'ddb_url', s3_endpoint :'s3_vhost_url', max_retries '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER sec_vhost_srv
  OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
CREATE FOREIGN TABLE sec_hostile_vh (id text, type text, payload json)
  SERVER sec_vhost_srv OPTIONS (table_name_prefix 'sec-hostile-', s3_bucket 'sec-hostile-events',
                                start_month '2024-05', lookahead_months '0');
SELECT payload FROM sec_hostile_vh WHERE id = '00000000-0000-4000-c000-000000000001';
-- keys are percent-encoded: URL syntax in a key stays in the key
SELECT payload FROM sec_hostile_vh WHERE id = '00000000-0000-4000-c000-000000000003';
-- other buckets: s3_allowed_buckets names them, or '*' allows any bucket name
ALTER FOREIGN TABLE sec_hostile OPTIONS (ADD s3_allowed_buckets 'sec-archive, sec-other');
SELECT payload FROM sec_hostile WHERE id = '00000000-0000-4000-c000-000000000002';
ALTER FOREIGN TABLE sec_hostile OPTIONS (SET s3_allowed_buckets '*');
SELECT payload FROM sec_hostile WHERE id = '00000000-0000-4000-c000-000000000002';
SELECT payload FROM sec_hostile WHERE id = '00000000-0000-4000-c000-000000000005';
-- checked when set
ALTER FOREIGN TABLE sec_hostile OPTIONS (SET s3_allowed_buckets '127.0.0.1:9/internal-admin?x=');
ALTER FOREIGN TABLE sec_hostile OPTIONS (SET s3_allowed_buckets 'sec-other,,sec-archive');
ALTER FOREIGN TABLE sec_hostile OPTIONS (SET s3_allowed_buckets '');
CREATE FOREIGN TABLE sec_bad_bucket (id text) SERVER sec_srv OPTIONS (s3_bucket '-sec-');

-- ---- uploads carry the Node adapter's headers ----
-- (the test stack's S3 front refuses an upload without Content-Type
-- application/json and x-amz-acl private, signed, or whose x-amz-checksum-crc32
-- is not the body's)
CREATE FOREIGN TABLE sec_offload (id text, domain text, type text, payload json, created timestamptz,
                                  s3_reference text)
  SERVER sec_srv OPTIONS (table_name_prefix 'sec-offload-', s3_bucket 'sec-hostile-events',
                          offload_threshold '1024', start_month '2024-01', lookahead_months '0');
SELECT event_store_dynamo.reset_store('sec_offload');
INSERT INTO sec_offload (id, domain, type, payload, created)
  VALUES ('E00003', 'big', 'offloaded', json_build_object('blob', repeat('b', 2000)),
          '2024-03-03 10:00:00+00')
  RETURNING s3_reference;
SELECT id, length(payload::text) AS payload_length FROM sec_offload WHERE id = 'E00003';
\set ct_cmd :node_cmd 'content-type ' :ddb_url ' ' :s3_url ' sec-hostile-events events/E00003.json'
TRUNCATE node_says;
COPY node_says FROM PROGRAM :'ct_cmd';
SELECT line AS content_type FROM node_says;

-- ---- whose credentials sign an append ----
-- a SECURITY DEFINER trigger appends as its owner; a role with a user
-- mapping of its own may not append to the same table in that transaction
CREATE ROLE sec_writer;
CREATE USER MAPPING FOR sec_writer SERVER sec_srv
  OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
GRANT SELECT, INSERT ON sec_ev TO sec_writer;
CREATE TABLE sec_commands (name text);
CREATE FUNCTION sec_record_command() RETURNS trigger SECURITY DEFINER LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO sec_ev (domain, type, identifier, created)
    VALUES ('cmd', NEW.name, 'c-1', '2024-03-10 00:00:00+00');
  RETURN NEW;
END $$;
CREATE TRIGGER sec_record AFTER INSERT ON sec_commands
  FOR EACH ROW EXECUTE FUNCTION sec_record_command();
GRANT INSERT ON sec_commands TO sec_writer;
SET ROLE sec_writer;
BEGIN;
INSERT INTO sec_ev (domain, type, identifier, created)
  VALUES ('cmd', 'direct', 'c-2', '2024-03-10 00:00:01+00');
INSERT INTO sec_commands VALUES ('via-trigger');
ROLLBACK;
-- in transactions of their own, each is written with its role's credentials
INSERT INTO sec_commands VALUES ('via-trigger');
INSERT INTO sec_ev (domain, type, identifier, created)
  VALUES ('cmd', 'direct', 'c-2', '2024-03-10 00:00:01+00');
RESET ROLE;
SELECT type, identifier FROM sec_ev WHERE domain = 'cmd' ORDER BY created;

-- tuple routing into a foreign partition appends as the statement's role:
-- here the view's owner, though the role inserting has no user mapping
CREATE ROLE sec_nomap;
CREATE TABLE sec_routed (id text, domain text, type text, identifier text, created timestamptz)
  PARTITION BY LIST (domain);
CREATE FOREIGN TABLE sec_routed_ev PARTITION OF sec_routed FOR VALUES IN ('routed')
  SERVER sec_srv OPTIONS (table_name_prefix 'sec-', start_month '2024-01', lookahead_months '0');
CREATE VIEW sec_routed_v AS SELECT * FROM sec_routed;
GRANT INSERT ON sec_routed_v TO sec_nomap;
SET ROLE sec_nomap;
INSERT INTO sec_routed_v (domain, type, identifier, created)
  VALUES ('routed', 'through-view', 'r-1', '2024-03-11 00:00:00+00');
RESET ROLE;
SELECT type, identifier FROM sec_ev WHERE domain = 'routed';

-- ---- events no replay would read are refused ----
SELECT pg_temp.refusal($$INSERT INTO sec_ev (domain, type, identifier, created)
  VALUES ('early', 'x', 'e-1', '2023-12-31 23:59:59.999+00')$$);
SELECT pg_temp.refusal($$INSERT INTO sec_ev (domain, type, identifier, created)
  VALUES ('early', 'x', 'e-1', '2999-01-01 00:00:00+00')$$);
SELECT regexp_replace(pg_temp.refusal($$INSERT INTO sec_ev (domain, type, identifier, created)
  VALUES ('early', 'x', 'e-1', now() + interval '1 month')$$), 'created \S+', 'created <next month>');
SELECT pg_temp.refusal($$INSERT INTO sec_ev (domain, type, identifier, created)
  VALUES ('early', 'x', 'e-1', '2024-01-01 00:00:00+00')$$);
SELECT count(*) AS pushed, (SELECT count(*) FROM sec_ev_local WHERE domain = 'early') AS local
  FROM sec_ev WHERE domain = 'early' AND identifier = 'e-1';

-- ---- payloads: JSON as JSON.stringify prints it ----
CREATE FOREIGN TABLE sec_text (id text, domain text, type text, payload text, created timestamptz)
  SERVER sec_srv OPTIONS (table_name_prefix 'sec-', start_month '2024-01', lookahead_months '0');
INSERT INTO sec_text (domain, type, payload) VALUES ('p', 'nan', 'NaN');
INSERT INTO sec_text (domain, type, payload) VALUES ('p', 'inf', '{"a": Infinity}');
INSERT INTO sec_text (domain, type, payload) VALUES ('p', 'quotes', $${'a': 1}$$);
INSERT INTO sec_text (domain, type, payload) VALUES ('p', 'comma', '[1, 2,]');
INSERT INTO sec_text (domain, type, payload) VALUES ('p', 'comment', '{"a": 1 /* no */}');
INSERT INTO sec_text (domain, type, payload) VALUES ('p', 'big', '{"a": 1e400}');
INSERT INTO sec_ev (domain, type, payload) VALUES ('p', 'big', '[-1e999]');
CREATE FOREIGN TABLE sec_jsonb (id text, domain text, type text, payload jsonb, created timestamptz)
  SERVER sec_srv OPTIONS (table_name_prefix 'sec-', start_month '2024-01', lookahead_months '0');
INSERT INTO sec_jsonb (domain, type, payload) VALUES ('p', 'big', '{"a": 1e400}');
-- stored as written but compact: -0 and 1.50 stay, strings escaped as
-- JSON.stringify escapes them; what JSON.stringify printed comes back byte for byte
INSERT INTO sec_ev (id, domain, type, payload, created) VALUES
  ('P1', 'p', 'numbers', '{ "n": -0, "f": 1.50, "e": 1E+2, "s": "\u00e9\/\u0001" }', '2024-03-20 00:00:00+00'),
  ('P2', 'p', 'stringify', '{"a":[1,{"b":null}],"c":"x\ny \"q\" \\ é 😀","d":-0.5,"e":1e+21}', '2024-03-20 00:00:01+00');
INSERT INTO sec_text (id, domain, type, payload, created) VALUES
  ('P3', 'p', 'text', E'[1,\n  "two" ,\t{}]', '2024-03-20 00:00:02+00');
SELECT id, payload FROM sec_ev WHERE id IN ('P1', 'P2', 'P3') ORDER BY id;

-- ---- messages ----
-- a missing table: the HINT says which table was tried and how its name is made
CREATE FOREIGN TABLE sec_missing (id text) SERVER sec_srv
  OPTIONS (table_name_prefix 'sec-typo-', auto_create 'false');
SELECT count(*) FROM sec_missing;
-- an id or identifier too long for a DynamoDB key: our message, the value shortened
INSERT INTO sec_ev (id, domain, type) VALUES (repeat('i', 3000), 'd', 't');
INSERT INTO sec_ev (domain, type, identifier) VALUES ('d', 't', repeat('x', 2100));
INSERT INTO sec_ev (domain, type, causation_id) VALUES ('d', 't', repeat('c', 2100));
-- a long stream name is shortened the same way in every message that quotes it
INSERT INTO sec_ev (domain, type, identifier, sequence, created)
  VALUES ('d', 't', repeat('s', 1500), 5, '2024-03-21 00:00:00+00');
-- a region that is not one
CREATE SERVER sec_region FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (region 'us-east-1x');
CREATE SERVER sec_region FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (region 'useast1');
CREATE SERVER sec_region FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (region 'us-gov-west-1');
ALTER SERVER sec_region OPTIONS (SET region 'eu-central-1 ');
DROP SERVER sec_region;

-- clean up
DROP SERVER sec_own_srv CASCADE;
DROP SERVER sec_pub_srv CASCADE;
DROP SERVER sec_vhost_srv CASCADE;
DROP SCHEMA sec_low_schema CASCADE;
DROP SCHEMA sec_owner_schema CASCADE;
DROP VIEW sec_routed_v;
DROP TABLE sec_routed;
DROP TABLE sec_commands;
DROP FUNCTION sec_record_command();
DROP USER MAPPING FOR sec_writer SERVER sec_srv;
REVOKE ALL ON sec_ev FROM sec_writer;
REVOKE USAGE ON FOREIGN DATA WRAPPER event_store_dynamo FROM sec_owner;
DROP ROLE sec_low;
DROP ROLE sec_owner;
DROP ROLE sec_writer;
DROP ROLE sec_nomap;
