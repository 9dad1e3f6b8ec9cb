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
