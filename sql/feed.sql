-- The change feed's SQL surface: enable_change_feed and disable_change_feed
-- against DynamoDB Local's Streams, who may call them (reset_store's rule),
-- what they record, and ALTER EXTENSION UPDATE from 0.3.  The workers
-- reading the feed are the feed step's (test/workers/feed.js).  Every error
-- shows its SQLSTATE.
\getenv ddb_url DDB_URL
\getenv s3_url S3_URL
SET timezone = 'UTC';
\set VERBOSITY verbose
\set SHOW_CONTEXT never

CREATE ROLE regress_feed_table_owner LOGIN;   -- owns the foreign table, not its server
CREATE ROLE regress_feed_both LOGIN;          -- owns both
CREATE ROLE regress_feed_stranger LOGIN;
CREATE SERVER feed_srv FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (endpoint :'ddb_url', s3_endpoint :'s3_url', s3_force_path_style 'true');
CREATE USER MAPPING FOR PUBLIC SERVER feed_srv
  OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
GRANT USAGE ON FOREIGN SERVER feed_srv TO regress_feed_table_owner, regress_feed_both;
CREATE FOREIGN TABLE feed_ev (
  id text, domain text, type text, identifier text, correlation_id text, causation_id text,
  sequence bigint, payload jsonb, meta jsonb, created timestamptz, time_bucket text, s3_reference text
) SERVER feed_srv OPTIONS (table_name_prefix 'feed-');
CREATE FOREIGN TABLE feed_missing (id text, created timestamptz)
  SERVER feed_srv OPTIONS (table_name 'feed-no-such-table');
SELECT event_store_dynamo.reset_store('feed_ev');
ALTER FOREIGN TABLE feed_ev OWNER TO regress_feed_table_owner;
CREATE TABLE feed_plain (id text);

-- errors: not a foreign table of ours, no DynamoDB table, NULL
SELECT event_store_dynamo.enable_change_feed('feed_plain');
SELECT event_store_dynamo.enable_change_feed('feed_missing');
SELECT event_store_dynamo.enable_change_feed(NULL) IS NULL AS null_in_null_out;

-- owning the foreign table is not enough: it changes the production table
SET ROLE regress_feed_table_owner;
SELECT event_store_dynamo.enable_change_feed('feed_ev');
SELECT event_store_dynamo.disable_change_feed('feed_ev');
-- nor can the workers be pointed at a stream by writing the table
INSERT INTO event_store_dynamo.change_feed (source, table_name, stream_arn, view_type, stream_was_enabled, enabled_by)
  VALUES ('feed_ev', 'feed-schemeless-event-store', 'arn:aws:dynamodb:x', 'KEYS_ONLY', false, 'regress_feed_table_owner');
RESET ROLE;
SET ROLE regress_feed_stranger;
SELECT event_store_dynamo.enable_change_feed('feed_ev');
RESET ROLE;

-- the superuser may; the stream is KEYS_ONLY and ENABLED when it returns
SELECT event_store_dynamo.enable_change_feed('feed_ev') AS arn \gset
SELECT :'arn' LIKE 'arn:aws:dynamodb:%:table/feed-schemeless-event-store/stream/%' AS stream_arn;
SELECT source, table_name, stream_arn = :'arn' AS same_arn, view_type, stream_was_enabled, enabled_by
  FROM event_store_dynamo.change_feed;
-- again: the same stream, nothing to say
SELECT event_store_dynamo.enable_change_feed('feed_ev') = :'arn' AS same_stream;
-- everyone sees which tables have a feed; only who may change the store may change the rows
SET ROLE regress_feed_stranger;
SELECT source, view_type FROM event_store_dynamo.change_feed;
DELETE FROM event_store_dynamo.change_feed;
SELECT count(*) FROM event_store_dynamo.change_feed;
RESET ROLE;

SELECT event_store_dynamo.disable_change_feed('feed_ev');
SELECT event_store_dynamo.disable_change_feed('feed_ev');
SELECT count(*) FROM event_store_dynamo.change_feed;

-- the owner of the foreign table and of its server may, without being superuser
ALTER SERVER feed_srv OWNER TO regress_feed_both;
ALTER FOREIGN TABLE feed_ev OWNER TO regress_feed_both;
SET ROLE regress_feed_both;
SELECT event_store_dynamo.enable_change_feed('feed_ev') <> :'arn' AS a_new_stream;
SELECT enabled_by, stream_was_enabled FROM event_store_dynamo.change_feed;
RESET ROLE;

-- a stream that was on before enable_change_feed is used, and left on by disable_change_feed
DELETE FROM event_store_dynamo.change_feed;
SELECT event_store_dynamo.enable_change_feed('feed_ev') IS NOT NULL AS enabled;
SELECT stream_was_enabled FROM event_store_dynamo.change_feed;
SELECT event_store_dynamo.disable_change_feed('feed_ev');

-- what the projections read of it (no worker here)
SELECT * FROM event_store_dynamo.projection_feeds;

-- the feed's state tables are part of a dump
SELECT tbl::regclass FROM pg_extension, unnest(extconfig) AS tbl
 WHERE extname = 'event_store_dynamo' AND tbl::regclass::text ~ 'feed' ORDER BY 1::text;

-- 0.3 to 0.4 with ALTER EXTENSION UPDATE, in a database of its own
SELECT current_database() AS regress_db \gset
CREATE DATABASE esd_feed_upgrade;
\c esd_feed_upgrade
CREATE EXTENSION event_store_dynamo VERSION '0.3';
SELECT count(*) FROM pg_proc WHERE proname = 'enable_change_feed';
ALTER EXTENSION event_store_dynamo UPDATE TO '0.4';
SELECT extversion FROM pg_extension WHERE extname = 'event_store_dynamo';
SELECT count(*) FROM pg_proc WHERE proname IN ('enable_change_feed', 'disable_change_feed');
\c :regress_db
DROP DATABASE esd_feed_upgrade;

RESET ROLE;
SELECT event_store_dynamo.reset_store('feed_ev');
DROP SERVER feed_srv CASCADE;
DROP TABLE feed_plain;
DROP ROLE regress_feed_table_owner, regress_feed_both, regress_feed_stranger;
