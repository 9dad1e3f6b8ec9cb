-- Credentials: which ones a query signs with, and which roles may use
-- which.  The server process's ambient credentials (environment, shared
-- files, web identity, container endpoint, instance metadata) need a server
-- started with a chosen environment: test/credentials/run.js covers them.
-- This file covers what does not depend on the server's environment.
-- every error, warning and notice shows its SQLSTATE (test/regress/psql drops the LOCATION lines)
\set VERBOSITY verbose
\getenv ddb_url DDB_URL
\getenv s3_url S3_URL

CREATE SERVER cred_srv FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (endpoint :'ddb_url', s3_endpoint :'s3_url', s3_force_path_style 'true');
CREATE FOREIGN TABLE cred_events (id text, type text)
  SERVER cred_srv OPTIONS (table_name_prefix 'regress-');

-- the options: a profile of the server's shared files, or keys, not both
CREATE USER MAPPING FOR CURRENT_USER SERVER cred_srv OPTIONS (profile '');
CREATE USER MAPPING FOR CURRENT_USER SERVER cred_srv
  OPTIONS (profile 'ci', access_key_id 'S3RVER', secret_access_key 'S3RVER');
ALTER SERVER cred_srv OPTIONS (ADD use_ambient_credentials 'sometimes');
CREATE USER MAPPING FOR CURRENT_USER SERVER cred_srv OPTIONS (use_ambient_credentials 'true');

-- a user mapping's keys: the source, the key id's last four characters,
-- no expiry
CREATE USER MAPPING FOR CURRENT_USER SERVER cred_srv
  OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
SELECT * FROM event_store_dynamo.credentials_in_use('cred_srv');
SELECT count(*) > 0 AS rows_read FROM cred_events;

-- temporary keys: the session token is sent and checked
ALTER USER MAPPING FOR CURRENT_USER SERVER cred_srv
  OPTIONS (SET access_key_id 'ASIATESTSESSION', SET secret_access_key 'sessionsecret',
           ADD session_token 'sessiontoken');
SELECT * FROM event_store_dynamo.credentials_in_use('cred_srv');
SELECT count(*) > 0 AS rows_read FROM cred_events;

-- EXPLAIN never shows them
CREATE FUNCTION pg_temp.explain_mentions(query text, secret text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  line text;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || query LOOP
    IF strpos(line, secret) > 0 THEN
      RETURN true;
    END IF;
  END LOOP;
  RETURN false;
END $$;
SELECT pg_temp.explain_mentions('SELECT * FROM cred_events', 'sessionsecret') AS secret_shown,
       pg_temp.explain_mentions('SELECT * FROM cred_events', 'sessiontoken') AS token_shown;

-- keys given by halves are an error, not a reason to look elsewhere
ALTER USER MAPPING FOR CURRENT_USER SERVER cred_srv OPTIONS (DROP secret_access_key);
SELECT count(*) FROM cred_events;
ALTER USER MAPPING FOR CURRENT_USER SERVER cred_srv
  OPTIONS (DROP access_key_id, ADD secret_access_key 'sessionsecret');
SELECT * FROM event_store_dynamo.credentials_in_use('cred_srv');
DROP USER MAPPING FOR CURRENT_USER SERVER cred_srv;

-- roles: alice has keys, bob names a profile, carol has no user mapping
CREATE ROLE regress_cred_alice;
CREATE ROLE regress_cred_bob;
CREATE ROLE regress_cred_carol;
GRANT USAGE ON FOREIGN SERVER cred_srv TO regress_cred_alice, regress_cred_bob;
GRANT SELECT ON cred_events TO regress_cred_alice, regress_cred_bob, regress_cred_carol;
GRANT USAGE ON SCHEMA event_store_dynamo TO regress_cred_alice, regress_cred_bob, regress_cred_carol;
CREATE USER MAPPING FOR regress_cred_alice SERVER cred_srv
  OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
CREATE USER MAPPING FOR regress_cred_bob SERVER cred_srv OPTIONS (profile 'bob');

SET ROLE regress_cred_alice;
SELECT * FROM event_store_dynamo.credentials_in_use('cred_srv');
SELECT count(*) > 0 AS rows_read FROM cred_events;
RESET ROLE;

-- without keys, a role that is not a superuser may not use the server
-- process's credentials: refused before any ambient source is looked at
SET ROLE regress_cred_bob;
SELECT count(*) FROM cred_events;
SELECT * FROM event_store_dynamo.credentials_in_use('cred_srv');
-- credentials are resolved when a request first needs them: planning a
-- scan looks the options up without them, so EXPLAIN works
EXPLAIN (COSTS OFF) SELECT * FROM cred_events;
EXPLAIN (COSTS OFF) SELECT * FROM cred_events WHERE id = 'x' ORDER BY type LIMIT 1;
RESET ROLE;
SET ROLE regress_cred_carol;
SELECT count(*) FROM cred_events;
EXPLAIN (COSTS OFF) SELECT * FROM cred_events;
-- and credentials_in_use needs USAGE on the server
SELECT * FROM event_store_dynamo.credentials_in_use('cred_srv');
RESET ROLE;

-- only a superuser may let them: a server's owner cannot, and once a
-- superuser has, the owner can no longer change the server's options
GRANT USAGE ON FOREIGN DATA WRAPPER event_store_dynamo TO regress_cred_alice;
SET ROLE regress_cred_alice;
CREATE SERVER cred_alice_srv FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (use_ambient_credentials 'true');
CREATE SERVER cred_alice_srv FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (use_ambient_credentials 'false');
ALTER SERVER cred_alice_srv OPTIONS (SET use_ambient_credentials 'true');
RESET ROLE;
ALTER SERVER cred_alice_srv OPTIONS (SET use_ambient_credentials 'true');
SET ROLE regress_cred_alice;
ALTER SERVER cred_alice_srv OPTIONS (ADD region 'eu-west-1');
RESET ROLE;
SELECT srvname, srvoptions FROM pg_foreign_server WHERE srvname = 'cred_alice_srv';

-- a user mapping's options are shown only to its own role, the server's
-- owner for PUBLIC mappings, and superusers
SET ROLE regress_cred_bob;
SELECT usename, umoptions FROM pg_user_mappings WHERE srvname = 'cred_srv' ORDER BY usename;
SELECT umoptions FROM pg_user_mapping;
RESET ROLE;
SET ROLE regress_cred_alice;
SELECT usename, umoptions FROM pg_user_mappings WHERE srvname = 'cred_srv' ORDER BY usename;
RESET ROLE;
SELECT usename, umoptions FROM pg_user_mappings WHERE srvname = 'cred_srv' ORDER BY usename;

-- only servers of this wrapper
CREATE FOREIGN DATA WRAPPER cred_other_fdw;
CREATE SERVER cred_other FOREIGN DATA WRAPPER cred_other_fdw;
SELECT * FROM event_store_dynamo.credentials_in_use('cred_other');
SELECT * FROM event_store_dynamo.credentials_in_use('cred_missing');

DROP FOREIGN DATA WRAPPER cred_other_fdw CASCADE;
DROP SERVER cred_alice_srv CASCADE;
DROP SERVER cred_srv CASCADE;
REVOKE USAGE ON FOREIGN DATA WRAPPER event_store_dynamo FROM regress_cred_alice;
REVOKE USAGE ON SCHEMA event_store_dynamo FROM regress_cred_alice, regress_cred_bob, regress_cred_carol;
DROP ROLE regress_cred_alice;
DROP ROLE regress_cred_bob;
DROP ROLE regress_cred_carol;
