-- Keys as long as DynamoDB allows: 600-character ids come back as 300
-- distinct events when hydrated, and streams whose 600-character names
-- share all but their last character keep their own versions.
\getenv ddb_url DDB_URL
\getenv s3_url S3_URL
SET timezone = 'UTC';
\set VERBOSITY verbose

CREATE SERVER longkeys_srv FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (endpoint :'ddb_url', s3_endpoint :'s3_url', s3_force_path_style 'true');
CREATE USER MAPPING FOR CURRENT_USER SERVER longkeys_srv
  OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
CREATE FOREIGN TABLE lk (
  id text, domain text, type text, identifier text, sequence bigint, payload jsonb, created timestamptz
) SERVER longkeys_srv OPTIONS (table_name_prefix 'longkeys-', start_month '2024-03',
                               lookahead_months '0', check_given_ids 'false');
SELECT event_store_dynamo.reset_store('lk');

-- 300 events whose ids differ only in their last ten of 600 characters
INSERT INTO lk (id, domain, type, identifier, payload, created)
  SELECT repeat('i', 590) || lpad(n::text, 10, '0'), 'long', 'e', 'ids', jsonb_build_object('n', n),
         '2024-03-01'::timestamptz + n * interval '1 second'
    FROM generate_series(1, 300) n;
-- hydrated (payload is not in the index): every event once, with its own item
SELECT count(*) AS events, count(DISTINCT id) AS ids, count(DISTINCT payload) AS payloads,
       min(length(id)) AS shortest, max(length(id)) AS longest,
       bool_and(right(id, 10)::int = (payload->>'n')::int) AS own_item
  FROM lk WHERE created < '2024-04-01';
-- looked up by id
SELECT payload FROM lk WHERE id = repeat('i', 590) || lpad('123', 10, '0');

-- two streams whose names differ only in their 600th character
INSERT INTO lk (domain, type, identifier)
  SELECT 'long', 'a', repeat('s', 599) || 'a' FROM generate_series(1, 3);
SELECT event_store_dynamo.stream_version('lk', 'long', repeat('s', 599) || 'a') AS version_a,
       event_store_dynamo.stream_version('lk', 'long', repeat('s', 599) || 'b') AS version_b;
-- one statement appending to both reads both heads at once: each its own
INSERT INTO lk (domain, type, identifier)
  VALUES ('long', 'b', repeat('s', 599) || 'b'), ('long', 'a', repeat('s', 599) || 'a')
  RETURNING right(identifier, 1) AS stream, sequence;
SELECT event_store_dynamo.stream_version('lk', 'long', repeat('s', 599) || 'a') AS version_a,
       event_store_dynamo.stream_version('lk', 'long', repeat('s', 599) || 'b') AS version_b;
SELECT right(identifier, 1) AS stream, type, sequence FROM lk
 WHERE domain = 'long' AND identifier IN (repeat('s', 599) || 'a', repeat('s', 599) || 'b')
 ORDER BY 1, 3;

DROP SERVER longkeys_srv CASCADE;
