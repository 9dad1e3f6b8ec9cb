-- Who may do what: PostgreSQL's privileges are checked before any request
-- is sent.  The server below points at an endpoint that never answers, so
-- a request would show up as a timeout (HV00N) instead of the permission
-- error.
-- every error, warning and notice shows its SQLSTATE (test/regress/psql drops the LOCATION lines)
\set VERBOSITY verbose
\getenv ddb_hang_url DDB_HANG_URL
CREATE ROLE esd_reader;
CREATE ROLE esd_stranger;
CREATE SERVER priv_srv FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (endpoint :'ddb_hang_url', request_timeout_ms '300', max_retries '0');
CREATE USER MAPPING FOR PUBLIC SERVER priv_srv
  OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
CREATE FOREIGN TABLE priv_events (id text, domain text, type text, identifier text, created timestamptz)
  SERVER priv_srv OPTIONS (table_name_prefix 'priv-', auto_create 'false', truncatable 'true');
GRANT SELECT ON priv_events TO esd_reader;
GRANT USAGE ON FOREIGN SERVER priv_srv TO esd_reader, esd_stranger;

-- a role with no privilege on the table: permission errors, no request
SET ROLE esd_stranger;
SELECT * FROM priv_events;
SELECT * FROM priv_events WHERE domain = 'd' AND identifier = 'i';
EXPLAIN (COSTS OFF) SELECT * FROM priv_events WHERE domain = 'd' AND identifier = 'i';
INSERT INTO priv_events (domain, type) VALUES ('d', 't');
TRUNCATE priv_events;
SELECT event_store_dynamo.reset_store('priv_events');
SELECT event_store_dynamo.init_store('priv_events');
SELECT event_store_dynamo.add_stream_index('priv_events');
SELECT event_store_dynamo.stream_version('priv_events', 'd', 'i');
SELECT * FROM event_store_dynamo.store_info('priv_events');
RESET ROLE;

-- SELECT alone: reading is allowed (and so reaches the endpoint, which times
-- out), appending and managing the store are not
SET ROLE esd_reader;
\set VERBOSITY terse
SELECT count(*) FROM priv_events;
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY verbose
INSERT INTO priv_events (domain, type) VALUES ('d', 't');
TRUNCATE priv_events;
SELECT event_store_dynamo.reset_store('priv_events');
RESET ROLE;

DROP SERVER priv_srv CASCADE;
DROP ROLE esd_reader;
DROP ROLE esd_stranger;
