-- Items no one planned for (test/interop/bad-items.js writes them raw, ids
-- ...b000-0000000000NN): a replay reads each into a value that keeps every
-- bit of information, or stops with an error naming the item and the
-- attribute; with on_bad_item 'warn' it skips such an event with a WARNING.
-- every error, warning and notice shows its SQLSTATE (test/regress/psql drops the LOCATION lines)
\set VERBOSITY verbose
\getenv ddb_url DDB_URL
\getenv s3_url S3_URL
\getenv abs_srcdir PG_ABS_SRCDIR
SET timezone = 'UTC';

CREATE TEMP TABLE node_says (line text);
\set corpus 'node ' :abs_srcdir '/test/interop/bad-items.js ' :ddb_url ' ' :s3_url
COPY node_says FROM PROGRAM :'corpus';
SELECT line FROM node_says;

CREATE SERVER bad_srv FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (endpoint :'ddb_url', s3_endpoint :'s3_url', s3_force_path_style 'true');
CREATE USER MAPPING FOR CURRENT_USER SERVER bad_srv
  OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');

-- every attribute as text: nothing is lost (the events whose S3 body
-- cannot be read are skipped with on_bad_item 'warn'; see below)
CREATE FOREIGN TABLE bad_text (
  id text, created text, time_bucket text, sequence text, payload text, meta text,
  s3_reference text, unknown_text text OPTIONS (attribute_name 'unknownText'),
  unknown_number numeric OPTIONS (attribute_name 'unknownNumber')
) SERVER bad_srv OPTIONS (table_name_prefix 'baditems-', s3_bucket 'baditems-events', start_month '2024-05', lookahead_months '0',
                          on_bad_item 'warn');
\set VERBOSITY terse
SELECT right(id, 2) AS nn, created, time_bucket, sequence, left(payload, 40) AS payload,
       length(payload) AS payload_length, left(meta, 60) AS meta, s3_reference, unknown_text, unknown_number
  FROM bad_text;
\set VERBOSITY verbose
-- the item filed under 2024-06 is in that bucket's walk
SELECT right(id, 2) AS nn, time_bucket FROM bad_text WHERE time_bucket = '2024-06';

-- typed columns: the values that fit keep every bit
CREATE FOREIGN TABLE bad_typed (
  id text, created timestamptz, sequence bigint, payload jsonb, meta jsonb, s3_reference text
) SERVER bad_srv OPTIONS (table_name_prefix 'baditems-', s3_bucket 'baditems-events', start_month '2024-05', lookahead_months '1');
SELECT right(id, 2) AS nn, sequence FROM bad_typed WHERE id IN (
  '00000000-0000-4000-b000-000000000001', '00000000-0000-4000-b000-000000000002');
SELECT right(id, 2) AS nn, created FROM bad_typed WHERE id = '00000000-0000-4000-b000-000000000005';
SELECT right(id, 2) AS nn, payload FROM bad_typed WHERE id IN (
  '00000000-0000-4000-b000-000000000007', '00000000-0000-4000-b000-000000000008',
  '00000000-0000-4000-b000-000000000009');
SELECT right(id, 2) AS nn, length(payload->>'blob') AS blob FROM bad_typed
 WHERE id = '00000000-0000-4000-b000-000000000014';
SELECT right(id, 2) AS nn, meta FROM bad_typed WHERE id IN (
  '00000000-0000-4000-b000-000000000017', '00000000-0000-4000-b000-000000000018');
SELECT right(id, 2) AS nn, jsonb_path_query(meta, 'strict $.**.d ? (@ == "bottom")') AS bottom,
       (SELECT count(*) FROM jsonb_path_query(meta, 'lax $.**')) AS values_in_meta
  FROM bad_typed WHERE id = '00000000-0000-4000-b000-000000000016';
-- offloaded: a 40-digit integer in the S3 body keeps every digit, a payload
-- given as JSON text is parsed
SELECT right(id, 2) AS nn, payload FROM bad_typed WHERE id IN (
  '00000000-0000-4000-b000-000000000019', '00000000-0000-4000-b000-000000000020');
CREATE FOREIGN TABLE bad_json (id text, payload json)
  SERVER bad_srv OPTIONS (table_name_prefix 'baditems-', s3_bucket 'baditems-events', start_month '2024-05', lookahead_months '0');
SELECT right(id, 2) AS nn, payload FROM bad_json WHERE id = '00000000-0000-4000-b000-000000000019';

-- what cannot be read stops the replay with an error naming the item and the attribute
\set VERBOSITY verbose
SELECT sequence FROM bad_typed WHERE id = '00000000-0000-4000-b000-000000000003';
SELECT created FROM bad_typed WHERE id = '00000000-0000-4000-b000-000000000004';
SELECT payload FROM bad_typed WHERE id = '00000000-0000-4000-b000-000000000010';
SELECT payload FROM bad_typed WHERE id = '00000000-0000-4000-b000-000000000012';
SELECT payload FROM bad_typed WHERE id = '00000000-0000-4000-b000-000000000013';
SELECT count(payload) FROM bad_typed;
SELECT payload FROM bad_typed WHERE id = '00000000-0000-4000-b000-000000000011';

-- on_bad_item 'warn': the replay goes on, each skipped event in a WARNING, and a count
ALTER FOREIGN TABLE bad_typed OPTIONS (ADD on_bad_item 'warn');
\set VERBOSITY terse
SELECT count(*) AS read, count(payload) AS with_payload FROM bad_typed;
SELECT right(id, 2) AS nn, sequence, created FROM bad_typed
 WHERE id BETWEEN '00000000-0000-4000-b000-000000000001' AND '00000000-0000-4000-b000-000000000006';
\set VERBOSITY verbose
ALTER FOREIGN TABLE bad_typed OPTIONS (SET on_bad_item 'nonsense');

-- a message quotes a 600-character id, or any other value of an item, by its
-- first 80 bytes and "..." (items 21 to 23, month 2024-04)
CREATE FOREIGN TABLE bad_long (id text, created timestamptz, sequence bigint, payload jsonb)
  SERVER bad_srv OPTIONS (table_name_prefix 'baditems-', s3_bucket 'baditems-events', start_month '2024-04', lookahead_months '0');
SELECT right(left(id, 36), 2) AS nn, length(id) AS id_length FROM bad_long WHERE created < '2024-05-01';
SELECT sequence FROM bad_long WHERE created < '2024-05-01';
SELECT payload FROM bad_long WHERE created >= '2024-04-22' AND created < '2024-04-23';
SELECT payload FROM bad_long WHERE created >= '2024-04-23' AND created < '2024-04-24';
ALTER FOREIGN TABLE bad_long OPTIONS (ADD on_bad_item 'warn');
SELECT right(left(id, 36), 2) AS nn, length(id) AS id_length, payload
  FROM bad_long WHERE created < '2024-05-01';

DROP SERVER bad_srv CASCADE;
