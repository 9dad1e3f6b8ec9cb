/* event_store_dynamo--0.1.sql: the foreign-data wrapper and its functions */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION event_store_dynamo" to load this file. \quit

CREATE FUNCTION event_store_dynamo_handler()
RETURNS fdw_handler
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FUNCTION event_store_dynamo_validator(text[], oid)
RETURNS void
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FOREIGN DATA WRAPPER event_store_dynamo
  HANDLER event_store_dynamo_handler
  VALIDATOR event_store_dynamo_validator;

-- Store management (src/admin.c).  The functions check privileges on the
-- foreign table themselves, so the schema is open to every role.
GRANT USAGE ON SCHEMA @extschema@ TO PUBLIC;

CREATE FUNCTION reset_store(regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'esd_reset_store'
LANGUAGE C STRICT;
COMMENT ON FUNCTION reset_store(regclass) IS
  'delete the DynamoDB table behind a foreign table, with every event in it, and create it again (owner only)';

CREATE FUNCTION init_store(regclass)
RETURNS text
AS 'MODULE_PATHNAME', 'esd_init_store'
LANGUAGE C STRICT;
COMMENT ON FUNCTION init_store(regclass) IS
  'create the DynamoDB table (and S3 bucket) behind a foreign table when missing, check its shape when not (owner only)';

CREATE FUNCTION stream_version(regclass, domain text, identifier text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'esd_stream_version'
LANGUAGE C;
COMMENT ON FUNCTION stream_version(regclass, text, text) IS
  'the number of events in a stream, read from its head item; 0 for a stream never written';

CREATE FUNCTION store_info(regclass,
  OUT table_name text, OUT table_status text, OUT item_count bigint, OUT size_bytes bigint,
  OUT billing_mode text, OUT read_capacity_units bigint, OUT write_capacity_units bigint,
  OUT indexes jsonb)
RETURNS record
AS 'MODULE_PATHNAME', 'esd_store_info'
LANGUAGE C STRICT;
COMMENT ON FUNCTION store_info(regclass) IS
  'the DynamoDB table behind a foreign table as DescribeTable reports it; indexes maps each index to its status';

-- Which AWS credentials the current role gets for a server: their source
-- (user mapping, environment, shared files, web identity, container
-- endpoint, instance metadata), the last four characters of the access key
-- id, when they expire (NULL: never) and where exactly they came from.
-- Never a secret.  Needs USAGE on the server.
CREATE FUNCTION credentials_in_use(server name,
  OUT source text, OUT access_key_id_suffix text, OUT expires_at timestamptz, OUT detail text)
RETURNS record
AS 'MODULE_PATHNAME', 'event_store_dynamo_credentials_in_use'
LANGUAGE C STRICT VOLATILE;

CREATE FUNCTION add_stream_index(regclass)
RETURNS text
AS 'MODULE_PATHNAME', 'esd_add_stream_index'
LANGUAGE C STRICT;
COMMENT ON FUNCTION add_stream_index(regclass) IS
  'add streamIndex (domain and identifier, sequence) to the DynamoDB table behind a foreign table and wait until its events are indexed; returns created or exists (owner only)';
