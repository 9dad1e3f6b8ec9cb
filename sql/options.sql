-- Option validation: every bad value is refused at CREATE/ALTER time.
-- every error, warning and notice shows its SQLSTATE (test/regress/psql drops the LOCATION lines)
\set VERBOSITY verbose
\getenv ddb_url DDB_URL
\getenv s3_url S3_URL

-- the wrapper exists, with its handler and validator
SELECT fdwname, fdwhandler::regproc, fdwvalidator::regproc
  FROM pg_foreign_data_wrapper WHERE fdwname = 'event_store_dynamo';

-- the wrapper itself takes no options
ALTER FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (region 'us-east-1');

-- server options
CREATE SERVER opt_srv FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (regoin 'us-east-1');
CREATE SERVER opt_srv FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (endpoint 'not a url');
CREATE SERVER opt_srv FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (endpoint 'ftp://127.0.0.1:1');
CREATE SERVER opt_srv FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (endpoint 'http://');
CREATE SERVER opt_srv FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (endpoint 'http://127.0.0.1:1/?x=1');
CREATE SERVER opt_srv FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (s3_endpoint '127.0.0.1:9000');
CREATE SERVER opt_srv FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (region 'us east 1');
CREATE SERVER opt_srv FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (s3_force_path_style 'sometimes');
CREATE SERVER opt_srv FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (connect_timeout_ms '0');
CREATE SERVER opt_srv FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (request_timeout_ms '10s');
CREATE SERVER opt_srv FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (max_retries '-1');
CREATE SERVER opt_srv FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (max_in_flight '1000');
CREATE SERVER opt_srv FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (table_name 'x');
CREATE SERVER opt_srv FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (region 'us-east-1', endpoint 'http://127.0.0.1:1', s3_endpoint 'https://s3.example.com/',
           s3_force_path_style 'true', connect_timeout_ms '1000', request_timeout_ms '5000',
           max_retries '3', retry_base_ms '10', retry_cap_ms '100', max_in_flight '4');
ALTER SERVER opt_srv OPTIONS (SET endpoint 'http//wrong');
ALTER SERVER opt_srv OPTIONS (SET endpoint 'https://dynamodb.eu-west-1.amazonaws.com');
SELECT srvoptions FROM pg_foreign_server WHERE srvname = 'opt_srv';

-- user mapping options
CREATE USER MAPPING FOR CURRENT_USER SERVER opt_srv OPTIONS (access_key 'x');
CREATE USER MAPPING FOR CURRENT_USER SERVER opt_srv OPTIONS (access_key_id '', secret_access_key 'x');
CREATE USER MAPPING FOR CURRENT_USER SERVER opt_srv
  OPTIONS (access_key_id 'AKIDEXAMPLE', secret_access_key 'secret', session_token 'token');

-- foreign table options
CREATE FOREIGN TABLE opt_t (id text) SERVER opt_srv OPTIONS (table_prefix 'prod-');
CREATE FOREIGN TABLE opt_t (id text) SERVER opt_srv
  OPTIONS (table_name_prefix 'prod-', table_name 'prod-schemeless-event-store');
CREATE FOREIGN TABLE opt_t (id text) SERVER opt_srv OPTIONS (table_name 'a b');
CREATE FOREIGN TABLE opt_t (id text) SERVER opt_srv OPTIONS (table_name 'ab');
CREATE FOREIGN TABLE opt_t (id text) SERVER opt_srv OPTIONS (table_name_prefix 'bad/');
CREATE FOREIGN TABLE opt_t (id text) SERVER opt_srv OPTIONS (start_month '2020-13');
CREATE FOREIGN TABLE opt_t (id text) SERVER opt_srv OPTIONS (start_month '2020-1');
CREATE FOREIGN TABLE opt_t (id text) SERVER opt_srv OPTIONS (start_month 'January');
CREATE FOREIGN TABLE opt_t (id text) SERVER opt_srv OPTIONS (lookahead_months 'three');
CREATE FOREIGN TABLE opt_t (id text) SERVER opt_srv OPTIONS (page_size '-5');
CREATE FOREIGN TABLE opt_t (id text) SERVER opt_srv OPTIONS (s3_bucket '');
CREATE FOREIGN TABLE opt_t (id text) SERVER opt_srv OPTIONS (region 'us-east-1');
CREATE FOREIGN TABLE opt_t (id text OPTIONS (attribute 'id')) SERVER opt_srv;
CREATE FOREIGN TABLE opt_t (id text OPTIONS (attribute_name '')) SERVER opt_srv;
CREATE FOREIGN TABLE opt_t (
  id text, kind text OPTIONS (attribute_name 'type')
) SERVER opt_srv OPTIONS (table_name_prefix 'prod-', s3_bucket 'archive', s3_key_prefix 'ev/',
                          start_month '2021-06', lookahead_months '2', page_size '250');
-- both names, reached through ALTER
ALTER FOREIGN TABLE opt_t OPTIONS (ADD table_name 'other-table');
ALTER FOREIGN TABLE opt_t OPTIONS (SET start_month '21-06');
ALTER FOREIGN TABLE opt_t OPTIONS (DROP table_name_prefix, ADD table_name 'other-table');
ALTER FOREIGN TABLE opt_t ALTER COLUMN kind OPTIONS (SET attribute_name '');
SELECT ftoptions FROM pg_foreign_table WHERE ftrelid = 'opt_t'::regclass;

-- a user mapping with half of a key pair is caught when a query needs it
CREATE SERVER opt_nocred FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (endpoint 'http://127.0.0.1:1');
CREATE USER MAPPING FOR CURRENT_USER SERVER opt_nocred OPTIONS (access_key_id 'AKIDEXAMPLE');
CREATE FOREIGN TABLE opt_nocred_t (id text) SERVER opt_nocred;
SELECT * FROM opt_nocred_t;

DROP SERVER opt_srv CASCADE;
DROP SERVER opt_nocred CASCADE;
