-- Failures map to SQLSTATEs, and each message names the operation, the
-- table and the remote error.  (Details carry ports and request ids, so
-- this file shows the SQLSTATE and the message only.)
-- every error, warning and notice shows its SQLSTATE (test/regress/psql drops the LOCATION lines)
\set VERBOSITY verbose
\getenv ddb_url DDB_URL
\getenv ddb_local_url DDB_LOCAL_URL
\getenv ddb_fault_url DDB_FAULT_URL
\getenv ddb_hang_url DDB_HANG_URL
\getenv s3_url S3_URL

CREATE FUNCTION pg_temp.outcome(query text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  state text;
  msg text;
  n bigint;
BEGIN
  EXECUTE query INTO n;
  RETURN 'ok: ' || n;
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
  RETURN state || ': ' || msg;
END $$;

CREATE SERVER err_srv FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (endpoint :'ddb_url', s3_endpoint :'s3_url', s3_force_path_style 'true');
CREATE USER MAPPING FOR CURRENT_USER SERVER err_srv
  OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');

-- the table does not exist: HV00R
CREATE FOREIGN TABLE err_missing (id text) SERVER err_srv
  OPTIONS (table_name_prefix 'regress-missing-');
SELECT pg_temp.outcome('SELECT count(*) FROM err_missing');

-- wrong secret, unknown key: 28000
CREATE SERVER err_badsig FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (endpoint :'ddb_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER err_badsig
  OPTIONS (access_key_id 'S3RVER', secret_access_key 'not-the-secret');
CREATE FOREIGN TABLE err_badsig_t (id text) SERVER err_badsig OPTIONS (table_name_prefix 'regress-', s3_bucket 'regress-events');
SELECT pg_temp.outcome('SELECT count(*) FROM err_badsig_t');
ALTER USER MAPPING FOR CURRENT_USER SERVER err_badsig
  OPTIONS (SET access_key_id 'AKIAUNKNOWN', SET secret_access_key 'whatever');
SELECT pg_temp.outcome('SELECT count(*) FROM err_badsig_t');

-- a session token is signed and checked too
ALTER USER MAPPING FOR CURRENT_USER SERVER err_badsig
  OPTIONS (SET access_key_id 'ASIATESTSESSION', SET secret_access_key 'sessionsecret', ADD session_token 'sessiontoken');
SELECT pg_temp.outcome('SELECT count(*) FROM err_badsig_t');
ALTER USER MAPPING FOR CURRENT_USER SERVER err_badsig OPTIONS (SET session_token 'stale-token');
SELECT pg_temp.outcome('SELECT count(*) FROM err_badsig_t');

-- S3 checks its own signatures: behind a DynamoDB endpoint that checks
-- none, a wrong secret fails on the offloaded event's GetObject with 28000;
-- a query that needs no S3 content does not fetch it and succeeds
CREATE SERVER err_s3 FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (endpoint :'ddb_local_url', s3_endpoint :'s3_url', s3_force_path_style 'true');
CREATE USER MAPPING FOR CURRENT_USER SERVER err_s3
  OPTIONS (access_key_id 'S3RVER', secret_access_key 'not-the-secret');
CREATE FOREIGN TABLE err_s3_t (id text, payload jsonb) SERVER err_s3
  OPTIONS (table_name_prefix 'regress-', s3_bucket 'regress-events', start_month '2024-02', lookahead_months '0');
SELECT pg_temp.outcome('SELECT count(payload) FROM err_s3_t');
SELECT pg_temp.outcome('SELECT count(id) FROM err_s3_t');

-- nothing listens: HV00N, after two quick retries
CREATE SERVER err_down FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (endpoint 'http://127.0.0.1:1', retry_base_ms '1', retry_cap_ms '2');
CREATE USER MAPPING FOR CURRENT_USER SERVER err_down
  OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
CREATE FOREIGN TABLE err_down_t (id text) SERVER err_down OPTIONS (table_name_prefix 'regress-', s3_bucket 'regress-events');
SELECT pg_temp.outcome('SELECT count(*) FROM err_down_t');

-- no answer within request_timeout_ms: HV00N
CREATE SERVER err_hang FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (endpoint :'ddb_hang_url', request_timeout_ms '200', max_retries '1', retry_base_ms '1');
CREATE USER MAPPING FOR CURRENT_USER SERVER err_hang
  OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
CREATE FOREIGN TABLE err_hang_t (id text) SERVER err_hang OPTIONS (table_name_prefix 'regress-', s3_bucket 'regress-events');
SELECT pg_temp.outcome('SELECT count(*) FROM err_hang_t');

-- throttled on every attempt: 53000 once the retry budget is spent;
-- 5xx on every attempt: HV000
CREATE SERVER err_fault FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (endpoint :'ddb_fault_url', max_retries '3', retry_base_ms '1', retry_cap_ms '5');
CREATE USER MAPPING FOR CURRENT_USER SERVER err_fault
  OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
CREATE FOREIGN TABLE err_fault_t (id text) SERVER err_fault
  OPTIONS (table_name_prefix 'regress-', s3_bucket 'regress-events', start_month '2024-01', lookahead_months '0');
CREATE TEMP TABLE fault_reply (body text);
\set throttle_always 'curl -s -X POST -d ''{"throttle":1,"seed":1,"maxConsecutive":1000}'' ' :ddb_fault_url '/__faults'
\set fail_always 'curl -s -X POST -d ''{"error5xx":1,"seed":1,"maxConsecutive":1000}'' ' :ddb_fault_url '/__faults'
\set throttle_thrice 'curl -s -X POST -d ''{"throttle":1,"seed":1}'' ' :ddb_fault_url '/__faults'
\set no_faults 'curl -s -X POST -d ''{"throttle":0,"error5xx":0,"drop":0,"seed":1}'' ' :ddb_fault_url '/__faults'
COPY fault_reply FROM PROGRAM :'throttle_always';
SELECT pg_temp.outcome('SELECT count(*) FROM err_fault_t');
COPY fault_reply FROM PROGRAM :'fail_always';
SELECT pg_temp.outcome('SELECT count(*) FROM err_fault_t');
-- faults that stop after three in a row are absorbed by the retries
COPY fault_reply FROM PROGRAM :'throttle_thrice';
ALTER SERVER err_fault OPTIONS (SET max_retries '5');
SELECT pg_temp.outcome('SELECT count(*) FROM err_fault_t');
COPY fault_reply FROM PROGRAM :'no_faults';

DROP SERVER err_srv, err_badsig, err_s3, err_down, err_hang, err_fault CASCADE;
