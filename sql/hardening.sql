-- Hardening: what users type and what the network answers.
--
-- Part 1: values typed at the SQL surface.  Option values are checked when
-- they are set; strings in events (ids, domains, identifiers, types,
-- correlation and causation ids, JSON keys) and attribute names travel as
-- ExpressionAttributeValues and ExpressionAttributeNames or as escaped JSON,
-- never spliced into an expression, and come back exactly.  Values over
-- DynamoDB's size limits fail with 54000.
--
-- Part 2: answers no AWS service gives, from the local stack's odd front
-- (test/stack/README.md): truncated, cut off, empty, HTML, huge, trickling,
-- redirecting, of the wrong shape, not UTF-8.  Each is an error with its
-- SQLSTATE; 5xx and malformed answers are retried, redirects and oversized
-- bodies are not; nothing outlasts the timeouts and memory stays bounded by
-- the 64 MB cap.  Messages show the attempts made ("(HTTP status 502, 3
-- attempts)" with max_retries 2); port numbers are masked.
-- every error, warning and notice shows its SQLSTATE (test/regress/psql drops the LOCATION lines)
\set VERBOSITY verbose
\getenv ddb_url DDB_URL
\getenv s3_url S3_URL
\getenv ddb_odd_url DDB_ODD_URL
\getenv s3_odd_url S3_ODD_URL
SET timezone = 'UTC';

-- SQLSTATE and message of a statement's error (long runs of one character
-- shortened), or its result
CREATE FUNCTION pg_temp.outcome(query text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  state text;
  msg text;
  n text;
BEGIN
  IF query ~* '^\s*select' THEN
    EXECUTE query INTO n;
  ELSE
    EXECUTE query;
  END IF;
  RETURN 'ok' || coalesce(': ' || n, '');
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
  RETURN state || ': ' || regexp_replace(msg, '(.)\1{15,}', '\1\1\1...', 'g');
END $$;

-- ---------------------------------------------------------------------------
-- Part 1a: option values (beyond sql/options.sql)

-- server
CREATE SERVER hopt FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (region '');
CREATE SERVER hopt FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (region 'us-east-1"');
CREATE SERVER hopt FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (region E'us-east-1\n');
CREATE SERVER hopt FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (endpoint E'http://127.0.0.1:1/\nX-Injected: 1');
CREATE SERVER hopt FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (endpoint 'http://127.0.0.1:1/a b');
CREATE SERVER hopt FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (endpoint 'http://127.0.0.1:1"/');
CREATE SERVER hopt FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (endpoint 'http://127.0.0.1:99999');
CREATE SERVER hopt FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (s3_endpoint 'file:///etc/passwd');
CREATE SERVER hopt FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (connect_timeout_ms ' ');
CREATE SERVER hopt FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (request_timeout_ms '99999999999999999999');
CREATE SERVER hopt FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (request_timeout_ms '3600001');
CREATE SERVER hopt FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (max_retries '101');
CREATE SERVER hopt FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (retry_base_ms '0');
CREATE SERVER hopt FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (retry_cap_ms '600001');
CREATE SERVER hopt FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (max_in_flight '0');
CREATE SERVER hopt FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (max_in_flight '65');
CREATE SERVER hopt FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (use_ambient_credentials 'maybe');
CREATE SERVER hopt FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (s3_force_path_style '');
CREATE SERVER hopt FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (endpoint 'http://user@127.0.0.1:1');
CREATE SERVER hopt FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (endpoint 'http://127.0.0.1:1/#x');

-- user mapping
CREATE SERVER hopt FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (endpoint 'http://127.0.0.1:1');
CREATE USER MAPPING FOR CURRENT_USER SERVER hopt OPTIONS (profile '');
CREATE USER MAPPING FOR CURRENT_USER SERVER hopt
  OPTIONS (profile 'default', access_key_id 'a', secret_access_key 'b');
CREATE USER MAPPING FOR CURRENT_USER SERVER hopt OPTIONS (secret_access_key '');
CREATE USER MAPPING FOR CURRENT_USER SERVER hopt
  OPTIONS (access_key_id 'a', secret_access_key 'b', session_token '');

-- foreign table: a table name is checked as DynamoDB would, whatever it holds
CREATE FOREIGN TABLE hopt_t (id text) SERVER hopt OPTIONS (table_name 'events"; DROP TABLE x; --');
CREATE FOREIGN TABLE hopt_t (id text) SERVER hopt OPTIONS (table_name 'it''s');
CREATE FOREIGN TABLE hopt_t (id text) SERVER hopt OPTIONS (table_name 'a::b');
CREATE FOREIGN TABLE hopt_t (id text) SERVER hopt OPTIONS (table_name E'events\n');
CREATE FOREIGN TABLE hopt_t (id text) SERVER hopt OPTIONS (table_name 'évents');
CREATE FOREIGN TABLE hopt_t (id text) SERVER hopt OPTIONS (table_name_prefix '#');
CREATE FOREIGN TABLE hopt_t (id text) SERVER hopt OPTIONS (table_name_prefix 'p"');
-- 255 characters at most
SELECT pg_temp.outcome(format('CREATE FOREIGN TABLE hopt_t (id text) SERVER hopt OPTIONS (table_name_prefix %L)',
                              repeat('p', 234)));
SELECT pg_temp.outcome(format('CREATE FOREIGN TABLE hopt_t (id text) SERVER hopt OPTIONS (table_name %L)',
                              repeat('t', 256)));
SELECT pg_temp.outcome(format('CREATE FOREIGN TABLE hopt_long (id text) SERVER hopt OPTIONS (table_name %L)',
                              repeat('t', 255)));
CREATE FOREIGN TABLE hopt_t (id text) SERVER hopt OPTIONS (start_month '1969-12');
CREATE FOREIGN TABLE hopt_t (id text) SERVER hopt OPTIONS (start_month '2020-00');
CREATE FOREIGN TABLE hopt_t (id text) SERVER hopt OPTIONS (start_month ' 2020-01');
CREATE FOREIGN TABLE hopt_t (id text) SERVER hopt OPTIONS (start_month '2020-01''');
CREATE FOREIGN TABLE hopt_t (id text) SERVER hopt OPTIONS (lookahead_months '121');
CREATE FOREIGN TABLE hopt_t (id text) SERVER hopt OPTIONS (lookahead_months '-1');
CREATE FOREIGN TABLE hopt_t (id text) SERVER hopt OPTIONS (page_size '1000001');
CREATE FOREIGN TABLE hopt_t (id text) SERVER hopt OPTIONS (page_size '1e3');
CREATE FOREIGN TABLE hopt_t (id text) SERVER hopt OPTIONS (read_capacity_units '0');
CREATE FOREIGN TABLE hopt_t (id text) SERVER hopt OPTIONS (write_capacity_units '1000001');
CREATE FOREIGN TABLE hopt_t (id text) SERVER hopt OPTIONS (billing_mode 'ON_DEMAND');
CREATE FOREIGN TABLE hopt_t (id text) SERVER hopt OPTIONS (offload_threshold '1023');
CREATE FOREIGN TABLE hopt_t (id text) SERVER hopt OPTIONS (offload_threshold '409601');
CREATE FOREIGN TABLE hopt_t (id text) SERVER hopt OPTIONS (on_bad_item 'skip');
CREATE FOREIGN TABLE hopt_t (id text) SERVER hopt OPTIONS (auto_create 'maybe');
CREATE FOREIGN TABLE hopt_t (id text) SERVER hopt OPTIONS (truncatable 'yes please');
CREATE FOREIGN TABLE hopt_t (id text) SERVER hopt OPTIONS (pushdown '');
CREATE FOREIGN TABLE hopt_t (id text) SERVER hopt OPTIONS (stream_index '2');
CREATE FOREIGN TABLE hopt_t (id text) SERVER hopt OPTIONS (check_given_ids 'maybe');
-- a bucket goes into host names and into "<bucket>::<key>" references
CREATE FOREIGN TABLE hopt_t (id text) SERVER hopt OPTIONS (s3_bucket 'a::b');
CREATE FOREIGN TABLE hopt_t (id text) SERVER hopt OPTIONS (s3_bucket 'a"b');
CREATE FOREIGN TABLE hopt_t (id text) SERVER hopt OPTIONS (s3_bucket E'a\nbc');
CREATE FOREIGN TABLE hopt_t (id text) SERVER hopt OPTIONS (s3_bucket 'a/b');
CREATE FOREIGN TABLE hopt_t (id text) SERVER hopt OPTIONS (s3_bucket 'ab');
-- what passed validation is stored as given
CREATE FOREIGN TABLE hopt_t (id text) SERVER hopt
  OPTIONS (table_name_prefix 'a.b_c-', s3_bucket 'bucket', s3_key_prefix E'we"ird::\nprefix/');
SELECT ftoptions FROM pg_foreign_table WHERE ftrelid = 'hopt_t'::regclass;
DROP SERVER hopt CASCADE;

-- ---------------------------------------------------------------------------
-- Part 1b: strings in events, written and read back exactly

CREATE SERVER h_srv FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (endpoint :'ddb_url', s3_endpoint :'s3_url', s3_force_path_style 'true');
CREATE USER MAPPING FOR CURRENT_USER SERVER h_srv
  OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
CREATE FOREIGN TABLE h (
  id text, domain text, type text, identifier text, correlation_id text, causation_id text,
  sequence bigint, payload jsonb, meta jsonb, created timestamptz, time_bucket text, s3_reference text
) SERVER h_srv OPTIONS (table_name_prefix 'hardening-', s3_bucket 'hardening-events',
                        start_month '2024-03', lookahead_months '0');
-- the stored text of payload and meta, and the raw id
CREATE FOREIGN TABLE h_raw (raw_id text OPTIONS (attribute_name 'id'), payload text, meta text)
  SERVER h_srv OPTIONS (table_name_prefix 'hardening-', start_month '2024-03', lookahead_months '0');
SELECT event_store_dynamo.reset_store('h');

-- quotes, the layout's own separators (::, #, EventID#, HEAD), expression
-- syntax (#name, :value, attribute_not_exists), JSON and AttributeValue
-- look-alikes, control characters, unicode beyond the BMP, long values
CREATE TEMP TABLE cases (
  n int PRIMARY KEY, id text, domain text, type text, identifier text,
  correlation_id text, causation_id text, payload jsonb, meta jsonb);
INSERT INTO cases VALUES
 (1, 'q"uote''s', 'dom"ain', 'ty''pe', 'id"ent''', 'corr"', 'cause"1', '{"q": "\"x\""}', '{"by": "o''brien"}'),
 (2, 'co::lon', 'a::b', '::', 'c::d', '::corr', 'x::y', '"::"', NULL),
 (3, 'ha#sh', '#d', '#t', '#i', '#c', '#cause', '{"#i": "#v"}', '{"#k": 1}'),
 (4, ':colon', ':d', ':t', ':i', ':c', ':cause', '{":i": ":v"}', '{":k": 1}'),
 (5, 'üñí€😀', 'dömaïn😀', 'typ€', 'ïd😀', 'çorr', 'cäuse', '"😀"', '{"ü😀": "\\"}'),
 (6, E'new\nline\ttab\\back', E'd\r\n', E'\b\f', E'i\u0001\u001f', E'c\n', E'c\t', '3', NULL),
 (7, '{"S":"x"}', '}}]]', '"}', '{"#i":"id"}', '{"N":"1"}', ':i', '4', '{"S": "not an AttributeValue"}'),
 (8, 'x) OR (1=1', 'attribute_not_exists(id)', '#i = :i', 'a = :a OR b', ' ', 'SET #v = :new', '5', NULL),
 (9, 'HEAD', 'HEAD', 'HEAD', 'HEAD', NULL, 'EventID#x', NULL, '"HEAD"'),
 (10, 'meta-keys', 'keys', 'keys', 'k', NULL, NULL,
  '{"": 0, "#a": 1, ":b": 2, "a.b": 3, "q\"t": 4, "[0]": 5}',
  '{"#a": 1, ":b": 2, "a.b": 3, "q\"t": 4, "[0]": 5, "n\nl": {"x y": [null, "\u0001"]}}'),
 (11, repeat('long', 250), repeat('d', 900), repeat('t', 10000), repeat('i', 900),
  repeat('c', 10000), repeat('k', 1000), jsonb_build_object('s', repeat('p', 100000)), NULL);
INSERT INTO h (id, domain, type, identifier, correlation_id, causation_id, payload, meta, created)
  SELECT id, domain, type, identifier, correlation_id, causation_id, payload, meta,
         timestamptz '2024-03-01' + n * interval '1 second'
    FROM cases ORDER BY n
  RETURNING to_json(left(id, 20)) AS id, sequence, s3_reference IS NOT NULL AS offloaded;

-- a replay returns every value exactly
SELECT c.n, to_json(left(h.id, 20)) AS id,
       (c.domain, c.type, c.identifier, c.correlation_id, c.causation_id, c.payload, c.meta)
         IS NOT DISTINCT FROM
       (h.domain, h.type, h.identifier, h.correlation_id, h.causation_id, h.payload, h.meta) AS same,
       h.sequence
  FROM cases c LEFT JOIN h ON h.id = c.id AND h.created < '2024-03-02' ORDER BY c.n;
SELECT to_json(domain) AS domain, to_json(type) AS type, to_json(identifier) AS identifier,
       to_json(causation_id) AS causation_id
  FROM h WHERE id IN (SELECT id FROM cases WHERE n BETWEEN 1 AND 9) ORDER BY created;
-- the stored text of payload (compact JSON) and meta
SELECT to_json(raw_id) AS id, payload, meta FROM h_raw
 WHERE raw_id IN ('HEAD', 'meta-keys', 'q"uote''s')
 ORDER BY raw_id;
-- an id that starts with the layout's prefix is an id like any other: stored as EventID# and the
-- id given (as the Node adapter stores it, README "Appending"), read back as given, and another
-- event than the id without the prefix
INSERT INTO h (id, domain, type, created) VALUES ('EventID#prefixed', 'p', 'p', '2024-03-02')
  RETURNING id;
INSERT INTO h (id, domain, type, created) VALUES ('prefixed', 'p', 'q', '2024-03-02')
  RETURNING id;
SELECT id, type FROM h WHERE id IN ('prefixed', 'EventID#prefixed') ORDER BY type;
CREATE TEMP TABLE raw_items (item jsonb);
\getenv abs_srcdir PG_ABS_SRCDIR
\set raw_items 'node ' :abs_srcdir '/test/regress/raw-items.js ' :ddb_url ' hardening-schemeless-event-store domain=p'
COPY raw_items FROM PROGRAM :'raw_items' WITH (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02');
SELECT item->'id' AS stored_id, item->'type' AS type FROM raw_items ORDER BY 1;

-- every lookup finds its event: id, id IN, causation id, a stream, joins
SELECT c.n, (SELECT count(*) FROM h WHERE h.id = c.id) AS by_id,
       (SELECT count(*) FROM h WHERE h.causation_id = c.causation_id) AS by_causation,
       (SELECT count(*) FROM h WHERE h.domain = c.domain AND h.identifier = c.identifier) AS by_stream,
       event_store_dynamo.stream_version('h', c.domain, c.identifier) AS version
  FROM cases c ORDER BY c.n;
SELECT count(*) FROM h WHERE id IN (SELECT id FROM cases);
SELECT count(*) FROM h WHERE id = ANY (ARRAY['q"uote''s', 'co::lon', 'ha#sh', ':colon', 'üñí€😀']);
SELECT count(*) FROM h WHERE causation_id IN ('x::y', '#cause', ':cause', 'SET #v = :new');
SET enable_hashjoin = off;
SET enable_mergejoin = off;
EXPLAIN (COSTS OFF) SELECT c.n FROM cases c JOIN h ON h.causation_id = c.causation_id;
SELECT array_agg(c.n ORDER BY c.n) FROM cases c JOIN h ON h.causation_id = c.causation_id;
SELECT array_agg(c.n ORDER BY c.n) FROM cases c JOIN h ON h.id = c.id;
RESET enable_hashjoin;
RESET enable_mergejoin;
-- what looks like an expression is only a value: nothing else matches
SELECT count(*) FROM h WHERE id = 'x'' OR ''1''=''1';
SELECT count(*) FROM h WHERE causation_id = ':i OR #i <> :i';
SELECT event_store_dynamo.stream_version('h', 'a::b'' OR 1=1 --', 'c::d');

-- the layout names a stream's head "EventID#HEAD::<domain>::<identifier>":
-- streams whose domain or identifier hold "::" can share a head, and then
-- share its numbering, as they do with the Node adapter
SELECT event_store_dynamo.stream_version('h', 'a', 'b::c::d');
INSERT INTO h (domain, type, identifier, created) VALUES ('a', 'shared', 'b::c::d', '2024-03-03')
  RETURNING sequence;
SELECT event_store_dynamo.stream_version('h', 'a::b', 'c::d');

-- column attribute names that look like placeholders or paths
CREATE FOREIGN TABLE h_attrs (
  id text, domain text, type text, created timestamptz,
  a1 text OPTIONS (attribute_name 'we"ird #at:tr'),
  a2 text OPTIONS (attribute_name ' '),
  a3 text OPTIONS (attribute_name '#p0'),
  a4 text OPTIONS (attribute_name ':i'),
  a5 text OPTIONS (attribute_name 'a.b[0]'),
  a6 text OPTIONS (attribute_name 'x) OR (y'),
  a7 jsonb OPTIONS (attribute_name 'ünï😀')
) SERVER h_srv OPTIONS (table_name_prefix 'hardening-', start_month '2024-03', lookahead_months '0');
INSERT INTO h_attrs VALUES ('attrs', 'attrs', 'attrs', '2024-03-04', 'v1', 'v2', 'v3', 'v4', 'v5', 'v6', '{"k": ["v7"]}');
SELECT a1, a2, a3, a4, a5, a6, a7 FROM h_attrs WHERE a1 IS NOT NULL;
SELECT id, a7 FROM h_attrs WHERE id = 'attrs';

-- Part 1c: DynamoDB's limits.  A payload of any size goes to S3 and comes
-- back whole; anything else over the limits (items hold 400 KB, keys 2048
-- bytes) is refused with 54000 and a hint, and nothing is written.
INSERT INTO h (id, domain, type, payload, created)
  VALUES ('00000000-0000-4000-8000-00000000000d', 'big', 'payload',
          jsonb_build_object('s', repeat('p', 1048576)), '2024-03-05')
  RETURNING s3_reference;
SELECT md5(payload::text) = md5(jsonb_build_object('s', repeat('p', 1048576))::text) AS same
  FROM h WHERE id = '00000000-0000-4000-8000-00000000000d';
-- an id is part of its S3 key as it is: "..", "." and "//" stay in the key
INSERT INTO h (id, domain, type, payload, created) VALUES
  ('../../escape', 'big', 'path', jsonb_build_object('s', repeat('p', 400000)), '2024-03-05'),
  ('a/./b//c?x=1#f%20+', 'big', 'path', jsonb_build_object('s', repeat('q', 400000)), '2024-03-05')
  RETURNING s3_reference;
SELECT id, length(payload->>'s') FROM h WHERE id IN ('../../escape', 'a/./b//c?x=1#f%20+') ORDER BY id;
-- (the errors come from DynamoDB, at INSERT or at commit: psql's
-- LAST_ERROR_SQLSTATE shows their SQLSTATE)
INSERT INTO h (domain, type, identifier, created) VALUES (repeat('d', 1048576), 't', 'i', '2024-03-05');
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY terse
INSERT INTO h (domain, type, identifier, created) VALUES ('d', repeat('t', 1048576), 'i', '2024-03-05');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO h (domain, type, identifier, created) VALUES ('d', 't', repeat('i', 1048576), '2024-03-05');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO h (id, domain, type, created) VALUES (repeat('x', 1048576), 'd', 't', '2024-03-05');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO h (domain, type, causation_id, created) VALUES ('d', 't', repeat('c', 1048576), '2024-03-05');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO h (domain, type, meta, created)
  VALUES ('d', 't', jsonb_build_object('m', repeat('m', 1048576)), '2024-03-05');
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY verbose
-- looking up such a value is refused the same way
SELECT pg_temp.outcome($$SELECT count(*) FROM h WHERE id = repeat('x', 1048576)$$);
SELECT pg_temp.outcome($$SELECT count(*) FROM h WHERE causation_id = repeat('c', 1048576)$$);
SELECT pg_temp.outcome($$SELECT count(*) FROM h WHERE domain = repeat('d', 1048576) AND identifier = 'i'$$);
SELECT pg_temp.outcome($$SELECT event_store_dynamo.stream_version('h', repeat('d', 1048576), 'i')$$);
-- none of it was written
SELECT count(*) AS events, count(*) FILTER (WHERE type = 'shared') AS shared FROM h;

-- ---------------------------------------------------------------------------
-- Part 2: answers no AWS service gives.  Each mode of the odd front gets a
-- server whose endpoint path names it; max_retries 2, short backoff, and a
-- request_timeout_ms of 1 s.

-- a fresh backend, so that its peak memory (VmHWM) says what the answers cost
\c
SET timezone = 'UTC';
-- SQLSTATE, message and detail (or only the attempts it tells) of a
-- statement's error, and its hint when asked, or its result
CREATE FUNCTION pg_temp.outcome(query text, with_detail bool DEFAULT true, with_hint bool DEFAULT false)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  state text;
  msg text;
  detail text;
  hint text;
  n text;
BEGIN
  EXECUTE query INTO n;
  RETURN 'ok: ' || coalesce(n, 'NULL');
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                          detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
  detail = regexp_replace(coalesce(detail, ''), '127\.0\.0\.1:[0-9]+', '127.0.0.1:PORT', 'g');
  IF NOT with_detail THEN
    detail = substring(detail from '\(HTTP status [0-9]+, [0-9]+ attempts?\)$');
  END IF;
  RETURN state || ': ' || msg || coalesce(E'\n' || nullif(detail, ''), '') ||
         CASE WHEN with_hint THEN coalesce(E'\nhint: ' || hint, '') ELSE '' END;
END $$;
CREATE FUNCTION pg_temp.vmhwm_mb() RETURNS int LANGUAGE sql AS $$
  SELECT (regexp_match(pg_read_file('/proc/self/status'), 'VmHWM:\s*([0-9]+) kB'))[1]::int / 1024
$$;
CREATE FUNCTION pg_temp.seconds(query text) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE
  t0 timestamptz := clock_timestamp();
BEGIN
  BEGIN
    EXECUTE query;
  EXCEPTION WHEN OTHERS THEN
    NULL;
  END;
  RETURN extract(epoch FROM clock_timestamp() - t0);
END $$;
CREATE TEMP TABLE hwm (what text, mb int);
INSERT INTO hwm VALUES ('start', pg_temp.vmhwm_mb());

-- a server per mode and per operation answered oddly (others go to DynamoDB
-- Local); S3 servers read the real table and send GetObject to the odd front
CREATE TEMP TABLE modes (name text, mode text, operation text, s3 bool);
INSERT INTO modes VALUES
  ('ok', 'ok', NULL, false), ('truncated', 'truncated', NULL, false), ('cut', 'cut', NULL, false),
  ('empty', 'empty', NULL, false), ('html200', 'html200', NULL, false),
  ('html502', 'html502', NULL, false), ('huge', 'huge', NULL, false),
  ('huge_chunked', 'huge-chunked', NULL, false), ('trickle', 'trickle', NULL, false),
  ('redirect301', 'redirect301', NULL, false), ('redirect307', 'redirect307', NULL, false),
  ('items_not_array', 'items-not-array', NULL, false), ('count_string', 'count-string', NULL, false),
  ('not_json', 'not-json', NULL, false), ('bad_utf8', 'bad-utf8', NULL, false),
  ('get_truncated', 'truncated', 'BatchGetItem', false),
  ('get_responses', 'responses-not-object', 'BatchGetItem', false),
  ('get_items', 'items-not-array', 'BatchGetItem', false),
  ('get_html502', 'html502', 'BatchGetItem', false),
  ('get_bad_number', 'bad-number', 'BatchGetItem', false), ('get_nul_string', 'nul-string', 'BatchGetItem', false),
  ('head_count', 'count-string', 'GetItem', false),
  ('write_html502', 'html502', 'TransactWriteItems', false),
  ('write_truncated', 'truncated', 'TransactWriteItems', false),
  ('write_redirect', 'redirect307', 'TransactWriteItems', false),
  ('s3_ok', 'ok', NULL, true), ('s3_truncated', 'truncated', NULL, true), ('s3_cut', 'cut', NULL, true),
  ('s3_empty', 'empty', NULL, true), ('s3_html200', 'html200', NULL, true),
  ('s3_html502', 'html502', NULL, true), ('s3_huge', 'huge', NULL, true),
  ('s3_huge_chunked', 'huge-chunked', NULL, true), ('s3_trickle', 'trickle', NULL, true),
  ('s3_redirect301', 'redirect301', NULL, true), ('s3_redirect307', 'redirect307', NULL, true),
  ('s3_not_json', 'not-json', NULL, true), ('s3_not_object', 'items-not-array', NULL, true),
  ('s3_bad_utf8', 'bad-utf8', NULL, true);
-- (not echoed: the statements hold the stack's ports)
\set ECHO none
SELECT format('CREATE SERVER %I FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (endpoint %L, s3_endpoint %L, '
              's3_force_path_style ''true'', max_retries ''2'', retry_base_ms ''1'', retry_cap_ms ''2'', '
              'request_timeout_ms ''1000'')',
              'odd_' || name,
              CASE WHEN s3 THEN :'ddb_url' ELSE :'ddb_odd_url' || '/' || mode || coalesce('/' || operation, '') END,
              CASE WHEN s3 THEN :'s3_odd_url' || '/' || mode ELSE :'s3_url' END),
       format('CREATE USER MAPPING FOR CURRENT_USER SERVER %I OPTIONS (access_key_id ''S3RVER'', secret_access_key ''S3RVER'')',
              'odd_' || name),
       format('CREATE FOREIGN TABLE %I (id text, domain text, type text, identifier text, payload jsonb, created timestamptz) '
              'SERVER %I OPTIONS (table_name_prefix ''hardening-'', s3_bucket ''hardening-events'', start_month ''2024-03'', lookahead_months ''0'', '
              'auto_create ''false'')',
              name, 'odd_' || name)
  FROM modes ORDER BY name \gexec
\set ECHO all

-- the front itself: "ok" is an empty answer of the right shape
SELECT pg_temp.outcome('SELECT count(*) FROM ok');

-- a Query answered oddly: malformed answers (truncated, empty, HTML, not
-- JSON, not UTF-8, the wrong shape) and 5xx are retried, then HV000; a body
-- cut short is a broken transfer, retried, then HV00N
SELECT pg_temp.outcome('SELECT count(*) FROM truncated');
SELECT pg_temp.outcome('SELECT count(*) FROM cut');
SELECT pg_temp.outcome('SELECT count(*) FROM empty');
SELECT pg_temp.outcome('SELECT count(*) FROM html200');
SELECT pg_temp.outcome('SELECT count(*) FROM html502');
SELECT pg_temp.outcome('SELECT count(*) FROM not_json');
SELECT pg_temp.outcome('SELECT count(*) FROM bad_utf8');
SELECT pg_temp.outcome('SELECT count(*) FROM items_not_array');
SELECT pg_temp.outcome('SELECT count(*) FROM count_string');
-- the hint says where to look
SELECT pg_temp.outcome('SELECT count(*) FROM html200', false, true);
SELECT pg_temp.outcome('SELECT count(*) FROM cut', false, true);

-- a redirect is not followed (its Location would answer "ok"), nor retried
CREATE TEMP TABLE odd_reply (body text);
\set odd_reset 'curl -s -X POST ' :ddb_odd_url '/__odd'
\set odd_counts 'curl -s ' :ddb_odd_url '/__odd'
COPY odd_reply FROM PROGRAM :'odd_reset';
SELECT pg_temp.outcome('SELECT count(*) FROM redirect301');
SELECT pg_temp.outcome('SELECT count(*) FROM redirect307', true, true);
DELETE FROM odd_reply;
COPY odd_reply FROM PROGRAM :'odd_counts';
SELECT body::jsonb -> 'byMode' AS answered FROM odd_reply;

-- a trickle ends at request_timeout_ms, each attempt: 3 attempts of 1 s (at
-- least 3 s, and far less than the 600 s a whole trickle takes)
SELECT pg_temp.outcome('SELECT count(*) FROM trickle', false);
SELECT pg_temp.seconds('SELECT count(*) FROM trickle') BETWEEN 2.9 AND 60 AS within_timeouts;
-- and statement_timeout (or a cancel) stops it at once: within a second of
-- what PostgreSQL's own pg_sleep takes to stop under the same statement_timeout
-- (measured just before, so that a loaded machine slows both alike)
ALTER SERVER odd_trickle OPTIONS (SET request_timeout_ms '60000');
SELECT clock_timestamp() AS t0 \gset
SET statement_timeout = '500ms';
SELECT pg_sleep(60);
RESET statement_timeout;
SELECT clock_timestamp() - :'t0'::timestamptz AS sleep_stop \gset
SELECT clock_timestamp() AS t0 \gset
SET statement_timeout = '500ms';
SELECT count(*) FROM trickle;
RESET statement_timeout;
SELECT clock_timestamp() - :'t0'::timestamptz < :'sleep_stop'::interval + interval '1 s' AS prompt;

-- a body over 64 MB is refused, not retried: announced by its Content-Length
-- before a byte of it is read, or counted as it comes (chunked); the backend
-- never holds more than the cap (a request timeout of 10 minutes: 64 MB come
-- in well before it, however loaded the machine is)
ALTER SERVER odd_huge OPTIONS (SET request_timeout_ms '600000');
ALTER SERVER odd_huge_chunked OPTIONS (SET request_timeout_ms '600000');
ALTER SERVER odd_s3_huge OPTIONS (SET request_timeout_ms '600000');
ALTER SERVER odd_s3_huge_chunked OPTIONS (SET request_timeout_ms '600000');
SELECT pg_temp.outcome('SELECT count(*) FROM huge');
INSERT INTO hwm VALUES ('huge', pg_temp.vmhwm_mb());
SELECT pg_temp.outcome('SELECT count(*) FROM huge_chunked');
INSERT INTO hwm VALUES ('huge_chunked', pg_temp.vmhwm_mb());
SELECT pg_temp.outcome('SELECT count(*) FROM huge_chunked');
INSERT INTO hwm VALUES ('huge_chunked again', pg_temp.vmhwm_mb());
-- (under a sanitizer or Valgrind, the runtime's own memory makes the figure meaningless)
SELECT what, mb - (SELECT mb FROM hwm WHERE what = 'start') < CASE what WHEN 'huge' THEN 16 ELSE 100 END
         OR current_setting('esd_test.instrumented', true) IS NOT NULL AS bounded
  FROM hwm WHERE what <> 'start' ORDER BY what;

-- BatchGetItem answered oddly (the Query before it is answered for real)
SELECT pg_temp.outcome('SELECT count(type) FROM get_truncated');
SELECT pg_temp.outcome('SELECT count(type) FROM get_responses');
SELECT pg_temp.outcome('SELECT count(type) FROM get_items');
SELECT pg_temp.outcome('SELECT count(type) FROM get_html502');
-- well-formed answers holding values no row can take: a number that is not one (HV00A), a string
-- with U+0000 (22P05)
SELECT pg_temp.outcome('SELECT count(payload) FROM get_bad_number');
SELECT pg_temp.outcome('SELECT count(payload) FROM get_nul_string');
-- a stream head read (GetItem) of the wrong shape; only the operation named
-- is answered oddly (get_html502 reads the head for real)
SELECT pg_temp.outcome($$SELECT event_store_dynamo.stream_version('get_html502', 'a::b', 'c::d')$$);
SELECT pg_temp.outcome($$SELECT event_store_dynamo.stream_version('head_count', 'a::b', 'c::d')$$);

-- a commit answered oddly fails (5xx and malformed answers after the
-- retries, a redirect at once), and nothing is written
INSERT INTO write_html502 (domain, type, identifier, created) VALUES ('odd', 'write', '1', '2024-03-06');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO write_truncated (domain, type, identifier, created) VALUES ('odd', 'write', '1', '2024-03-06');
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY terse
INSERT INTO write_redirect (domain, type, identifier, created) VALUES ('odd', 'write', '1', '2024-03-06');
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY verbose
SELECT event_store_dynamo.stream_version('h', 'odd', '1') AS version, count(*) AS events
  FROM h WHERE domain = 'odd';

-- S3 GetObject answered oddly, for the offloaded event: a body that is not
-- a JSON object is the event's problem (HV004, not retried); the transport
-- failures are as for DynamoDB
SELECT pg_temp.outcome($$SELECT payload->>'note' FROM s3_ok WHERE id = '00000000-0000-4000-8000-00000000000d'$$);
-- (a query that needs nothing from S3 does not ask it)
SELECT pg_temp.outcome($$SELECT count(*) FROM s3_not_json WHERE id = '00000000-0000-4000-8000-00000000000d'$$);
SELECT name, pg_temp.outcome(format('SELECT payload::text FROM %I WHERE id = %L',
                                    name, '00000000-0000-4000-8000-00000000000d'),
                             name <> 's3_trickle')
  FROM modes WHERE s3 AND name NOT IN ('s3_ok', 's3_huge_chunked') ORDER BY name;
SELECT pg_temp.outcome($$SELECT count(*) FROM s3_huge_chunked WHERE id = '00000000-0000-4000-8000-00000000000d'$$);
SELECT pg_temp.outcome($$SELECT count(payload) FROM s3_huge_chunked WHERE id = '00000000-0000-4000-8000-00000000000d'$$);
INSERT INTO hwm VALUES ('s3_huge_chunked', pg_temp.vmhwm_mb());
SELECT mb - (SELECT mb FROM hwm WHERE what = 'start') < 100
         OR current_setting('esd_test.instrumented', true) IS NOT NULL AS bounded
  FROM hwm WHERE what = 's3_huge_chunked';

SET client_min_messages = warning;
SELECT format('DROP SERVER %I CASCADE', 'odd_' || name) FROM modes ORDER BY name \gexec
DROP SERVER h_srv CASCADE;
