-- Reading the REGRESS store (seeded by test/interop/seed.js through the
-- published Node adapter, plus raw items it cannot write): see
-- test/data/regress.js for every value.
-- every error, warning and notice shows its SQLSTATE (test/regress/psql drops the LOCATION lines)
\set VERBOSITY verbose
\getenv ddb_url DDB_URL
\getenv s3_url S3_URL
\getenv s3_vhost_url S3_VHOST_URL
SET timezone = 'UTC';
SET extra_float_digits = 0;
-- the clock the extension reads ("now" for the walk's last month and a default created): the real
-- one, or the fixed one of event_store_dynamo.test_now (test/steps/45-regress-clock.sh sets it)
CREATE FUNCTION pg_temp.clock() RETURNS timestamptz STABLE LANGUAGE sql AS
  $$SELECT coalesce(nullif(current_setting('event_store_dynamo.test_now', true), '')::timestamptz, now())$$;

CREATE SERVER regress_srv FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (region 'us-east-1', endpoint :'ddb_url', s3_endpoint :'s3_url', s3_force_path_style 'true');
CREATE USER MAPPING FOR CURRENT_USER SERVER regress_srv
  OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');

-- the canonical table: every column of the SPEC
CREATE FOREIGN TABLE events (
  id text, domain text, type text, identifier text, correlation_id text, causation_id text,
  sequence bigint, payload jsonb, meta jsonb, created timestamptz, time_bucket text, s3_reference text
) SERVER regress_srv OPTIONS (table_name_prefix 'regress-', s3_bucket 'regress-events');

-- a replay: every event once, in created order, stream heads never; the
-- future event (dated the next month of the real clock when it was seeded)
-- is read thanks to the look-ahead
SELECT id, domain, type, identifier, correlation_id, causation_id, sequence,
       created, time_bucket, s3_reference
  FROM events WHERE id <> '00000000-0000-4000-8000-000000000099';
-- (the first millisecond of the month after the seeding: still ahead, or just past when the run
-- crossed the month's end since)
SELECT type, created = date_trunc('month', created AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
         AND created > now() - interval '1 day' AND created <= now() + interval '1 month' AS next_month,
       time_bucket = to_char(created AT TIME ZONE 'UTC', 'YYYY-MM') AS bucket_ok
  FROM events WHERE id = '00000000-0000-4000-8000-000000000099';
SELECT count(*) AS events, count(DISTINCT id) AS distinct_ids,
       count(*) FILTER (WHERE id LIKE 'HEAD%' OR id LIKE 'EventID#%') AS heads_or_prefixed
  FROM events;

-- created order holds across the whole replay
SELECT bool_and(ordered) AS in_created_order FROM (
  SELECT created >= lag(created, 1, '-infinity') OVER () AS ordered FROM events) s;

-- payloads: objects, arrays, a JSON string, null (absent), a non-JSON
-- string (a jsonb string), and the offloaded one resolved from S3
SELECT right(id, 2) AS ev, payload FROM events
 WHERE id <> '00000000-0000-4000-8000-000000000007';
SELECT right(id, 2) AS ev, jsonb_typeof(payload) AS kind, length(payload->>'blob') AS blob_length,
       payload->'n' AS n, sequence, s3_reference
  FROM events WHERE s3_reference IS NOT NULL;

-- meta of every DynamoDB type: Map, String, List, Number (every digit),
-- string set, Boolean, Null, number set; absent meta is NULL
SELECT right(id, 2) AS ev, jsonb_typeof(meta) AS kind, meta FROM events;

-- a subset of the columns, in another order
CREATE FOREIGN TABLE events_subset (
  created timestamptz, sequence int, type text, id text
) SERVER regress_srv OPTIONS (table_name_prefix 'regress-', s3_bucket 'regress-events');
SELECT * FROM events_subset WHERE created < '2024-02-01';

-- renamed columns and other types: attribute_name, payload as json (the
-- stored text verbatim) and as text, meta as text, created as text
CREATE FOREIGN TABLE events_renamed (
  event_id text OPTIONS (attribute_name 'id'),
  kind text OPTIONS (attribute_name 'type'),
  stream text OPTIONS (attribute_name 'identifier'),
  body json OPTIONS (attribute_name 'payload'),
  body_text text OPTIONS (attribute_name 'payload'),
  meta text,
  created_at text OPTIONS (attribute_name 'created'),
  bucket varchar(7) OPTIONS (attribute_name 'timeBucket'),
  seq numeric OPTIONS (attribute_name 'sequence'),
  unknown_attr text OPTIONS (attribute_name 'noSuchAttribute')
) SERVER regress_srv OPTIONS (table_name 'regress-schemeless-event-store', s3_bucket 'regress-events');
SELECT right(event_id, 2) AS ev, kind, stream, body, body_text, meta, created_at, bucket, seq, unknown_attr
  FROM events_renamed
 WHERE event_id NOT IN ('00000000-0000-4000-8000-000000000007', '00000000-0000-4000-8000-000000000099');

-- the offloaded payload through a json column equals the S3 body's payload
SELECT length(body::text) AS json_length, body::jsonb = p.payload AS same
  FROM events_renamed r JOIN events p ON p.id = r.event_id
 WHERE r.event_id = '00000000-0000-4000-8000-000000000007';

-- start_month and lookahead_months bound the walk
CREATE FOREIGN TABLE events_from_march (id text, created timestamptz)
  SERVER regress_srv OPTIONS (table_name_prefix 'regress-', s3_bucket 'regress-events', start_month '2024-03', lookahead_months '0');
SELECT right(id, 2) AS ev, created FROM events_from_march;

-- virtual-hosted S3 addressing reaches the same object
CREATE SERVER regress_vhost FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (endpoint :'ddb_url', s3_endpoint :'s3_vhost_url', s3_force_path_style 'false');
CREATE USER MAPPING FOR CURRENT_USER SERVER regress_vhost
  OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
CREATE FOREIGN TABLE events_vhost (id text, payload jsonb, s3_reference text)
  SERVER regress_vhost OPTIONS (table_name_prefix 'regress-', s3_bucket 'regress-events', start_month '2024-02', lookahead_months '0');
SELECT right(id, 2) AS ev, length(payload->>'blob') AS blob_length FROM events_vhost
 WHERE s3_reference IS NOT NULL;

-- an empty store
CREATE FOREIGN TABLE events_empty (id text) SERVER regress_srv
  OPTIONS (table_name_prefix 'regress-empty-');
SELECT count(*) FROM events_empty;

-- EXPLAIN shows the DynamoDB side (the walk ends at the current month)
CREATE FUNCTION pg_temp.plan(query text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  line text;
  this_month text := to_char(pg_temp.clock() AT TIME ZONE 'UTC', 'YYYY-MM');
  -- 2024-03 through the current month
  walk_length int := (extract(year FROM pg_temp.clock() AT TIME ZONE 'UTC')::int - 2024) * 12
                     + extract(month FROM pg_temp.clock() AT TIME ZONE 'UTC')::int - 2;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || query LOOP
    RETURN NEXT replace(replace(line, this_month, 'CURRENT'),
                        '(' || walk_length || ')', '(as many as the months)');
  END LOOP;
END $$;
SELECT * FROM pg_temp.plan('SELECT id FROM events_from_march');

-- projections and reports with SQL
SELECT domain, identifier, count(*), max(sequence) AS version
  FROM events GROUP BY domain, identifier ORDER BY domain, identifier;
SELECT e.type, c.type AS caused_by
  FROM events e JOIN events c ON c.id = e.causation_id ORDER BY e.created;

DROP SERVER regress_srv CASCADE;
DROP SERVER regress_vhost CASCADE;
