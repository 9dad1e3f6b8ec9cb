-- Cursors over a foreign scan, and who owns its requests: savepoints
-- rolled back while pages are under way, a FETCH that fails inside a
-- savepoint, scrollable and held cursors, PL/pgSQL exception loops, and a
-- commit that fails while offloaded bodies are being uploaded.
-- The store holds 1500 events of one stream (sequence = position in created
-- order), read in the usual pages: 1-100, 101-600, 601-1100, 1101-1500.
-- 32 rows into a page, a scan asks for the next page without waiting for
-- it: at rows 132 and 632.  A savepoint around those rows has requests of
-- the cursor under way when it is rolled back.  Read in pages of 7, every
-- few rows start requests.  A hang would end at statement_timeout.
\getenv ddb_url DDB_URL
\getenv s3_url S3_URL
SET timezone = 'UTC';
SET statement_timeout = '120s';
\set VERBOSITY verbose

CREATE SERVER cursors_srv FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (endpoint :'ddb_url', s3_endpoint :'s3_url', s3_force_path_style 'true');
CREATE USER MAPPING FOR CURRENT_USER SERVER cursors_srv
  OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
CREATE FOREIGN TABLE cur (
  id text, domain text, type text, identifier text, sequence bigint, payload jsonb, created timestamptz
) SERVER cursors_srv OPTIONS (table_name_prefix 'cursors-', s3_bucket 'cursors-events',
                              start_month '2024-03', lookahead_months '0');
CREATE FOREIGN TABLE cur7 (sequence bigint)
  SERVER cursors_srv OPTIONS (table_name_prefix 'cursors-', start_month '2024-03',
                              lookahead_months '0', page_size '7');
SELECT event_store_dynamo.reset_store('cur');
INSERT INTO cur (domain, type, identifier, payload, created)
  SELECT 'ledger', 'entry', '1', jsonb_build_object('n', n),
         '2024-03-01'::timestamptz + n * interval '1 minute'
    FROM generate_series(1, 1500) n;
SELECT count(*) AS events, min(sequence), max(sequence) FROM cur;

-- what is left in a cursor: how many rows, the first and the last, and
-- whether they come in order without a gap
CREATE FUNCTION drain(c refcursor, OUT rows int, OUT first bigint, OUT last bigint, OUT in_order bool)
LANGUAGE plpgsql AS $$
DECLARE
  r record;
BEGIN
  rows := 0;
  in_order := true;
  LOOP
    FETCH c INTO r;
    EXIT WHEN NOT FOUND;
    IF last IS NOT NULL AND r.sequence <> last + 1 THEN
      in_order := false;
    END IF;
    rows := rows + 1;
    first := coalesce(first, r.sequence);
    last := r.sequence;
  END LOOP;
END $$;

-- a savepoint rolled back while the cursor's next pages are under way: the
-- cursor keeps its place and its requests, as a cursor outlives ROLLBACK TO
BEGIN;
DECLARE c CURSOR FOR SELECT sequence FROM cur;
MOVE 620 IN c;
SAVEPOINT s;
MOVE 20 IN c;
ROLLBACK TO s;
FETCH 3 FROM c;
SAVEPOINT s2;
MOVE 600 IN c;
RELEASE s2;
FETCH 1 FROM c;
SELECT * FROM drain('c');
CLOSE c;
COMMIT;

-- several savepoints, each rolled back in the middle of a page
BEGIN;
DECLARE c CURSOR FOR SELECT sequence FROM cur;
SAVEPOINT a;
FETCH 5 FROM c;
SAVEPOINT b;
MOVE 130 IN c;
ROLLBACK TO b;
MOVE 50 IN c;
ROLLBACK TO a;
FETCH 2 FROM c;
SELECT * FROM drain('c');
COMMIT;

-- a FETCH that fails inside a savepoint fails its cursor; the requests it
-- had under way go with it, and CLOSE and the next scans are unharmed
BEGIN;
DECLARE f CURSOR FOR SELECT sequence, 1 / (633 - sequence)::int AS x FROM cur;
FETCH 2 FROM f;
MOVE 630 IN f;
SAVEPOINT s;
FETCH 10 FROM f;
ROLLBACK TO s;
FETCH 1 FROM f;
ROLLBACK TO s;
CLOSE f;
SELECT count(*) AS events, sum(sequence) AS total FROM cur;
COMMIT;
SELECT count(*) AS events FROM cur;

-- a failed FETCH, the savepoint released instead: the transaction is aborted
BEGIN;
DECLARE f CURSOR FOR SELECT 1 / (640 - sequence)::int AS x FROM cur;
MOVE 620 IN f;
SAVEPOINT s;
FETCH 30 FROM f;
RELEASE s;
ROLLBACK;
SELECT count(*) AS events FROM cur;

-- a scrollable cursor (a Material node keeps what was read) moves back and
-- forth across a rolled-back savepoint
BEGIN;
DECLARE b SCROLL CURSOR FOR SELECT sequence FROM cur;
MOVE 620 IN b;
SAVEPOINT s;
MOVE 20 IN b;
FETCH 1 FROM b;
ROLLBACK TO s;
FETCH BACKWARD 2 FROM b;
FETCH ABSOLUTE 1300 FROM b;
FETCH PRIOR FROM b;
FETCH RELATIVE -100 FROM b;
FETCH LAST FROM b;
FETCH FIRST FROM b;
SELECT * FROM drain('b');
CLOSE b;
COMMIT;

-- a cursor WITH HOLD is read to the end at commit, pages of a rolled-back
-- savepoint included, and read from after it
BEGIN;
DECLARE h CURSOR WITH HOLD FOR SELECT sequence FROM cur;
FETCH 2 FROM h;
SAVEPOINT s;
MOVE 630 IN h;
ROLLBACK TO s;
COMMIT;
FETCH 2 FROM h;
SELECT * FROM drain('h');
CLOSE h;

-- a cursor WITH HOLD in a transaction that rolls back goes with it
BEGIN;
DECLARE h2 CURSOR WITH HOLD FOR SELECT sequence FROM cur;
FETCH 2 FROM h2;
ROLLBACK;
FETCH 1 FROM h2;

-- PL/pgSQL: every row handled in a block with an exception handler; every
-- tenth row fails, and so do rows 132 and 632, whose FETCH asked for the
-- next page.  The FETCH inside the block ...
CREATE FUNCTION handle_all_inside(OUT handled int, OUT failed int, OUT last bigint)
LANGUAGE plpgsql AS $$
DECLARE
  c CURSOR FOR SELECT sequence FROM cur;
  r record;
BEGIN
  handled := 0;
  failed := 0;
  OPEN c;
  LOOP
    BEGIN
      FETCH c INTO r;
      EXIT WHEN NOT FOUND;
      last := r.sequence;
      PERFORM 1 / (r.sequence % 10)::int / (r.sequence NOT IN (132, 632))::int;
      handled := handled + 1;
    EXCEPTION WHEN division_by_zero THEN
      failed := failed + 1;
    END;
  END LOOP;
  CLOSE c;
END $$;
SELECT * FROM handle_all_inside();

-- ... and outside it, in pages of 7, the handler reading the store itself
-- before it fails
CREATE FUNCTION handle_all_outside(OUT handled int, OUT failed int, OUT last bigint)
LANGUAGE plpgsql AS $$
DECLARE
  c CURSOR FOR SELECT sequence FROM cur7;
  r record;
  n int;
BEGIN
  handled := 0;
  failed := 0;
  OPEN c;
  LOOP
    FETCH c INTO r;
    EXIT WHEN NOT FOUND;
    last := r.sequence;
    BEGIN
      IF r.sequence % 50 = 0 THEN
        SELECT count(*) INTO n FROM cur
         WHERE domain = 'ledger' AND identifier = '1' AND sequence = r.sequence;
        PERFORM 1 / (n - n);
      END IF;
      handled := handled + 1;
    EXCEPTION WHEN division_by_zero THEN
      failed := failed + 1;
    END;
  END LOOP;
  CLOSE c;
END $$;
SELECT * FROM handle_all_outside();

-- a FOR loop over the scan, with an exception block in its body
DO $$
DECLARE
  r record;
  n int := 0;
BEGIN
  FOR r IN SELECT sequence FROM cur7 LOOP
    BEGIN
      IF r.sequence % 7 = 0 THEN
        RAISE EXCEPTION 'row %', r.sequence;
      END IF;
      n := n + 1;
    EXCEPTION WHEN raise_exception THEN
      NULL;
    END;
  END LOOP;
  IF n <> 1500 - 1500 / 7 THEN
    RAISE EXCEPTION 'handled % rows', n;
  END IF;
END $$;

-- a commit that fails while offloaded bodies are being uploaded: 110 events
-- on one stream, the last ten offloaded, and the first DynamoDB transaction
-- refused because another session appended to the stream meanwhile
CREATE FOREIGN TABLE cur_w (id text, domain text, type text, identifier text, sequence bigint, payload jsonb)
  SERVER cursors_srv OPTIONS (table_name_prefix 'cursors-', s3_bucket 'cursors-events',
                              offload_threshold '1024');
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS dblink;
RESET client_min_messages;
SELECT dblink_connect('other', format('host=%s port=%s dbname=%s user=%s',
  split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'),
  current_database(), current_user));
BEGIN;
INSERT INTO cur_w (domain, type, identifier, payload)
  SELECT 'upload', 'e', '1',
         CASE WHEN n > 100 THEN jsonb_build_object('blob', repeat('b', 3000)) ELSE jsonb_build_object('n', n) END
    FROM generate_series(1, 110) n;
SELECT dblink_exec('other', format(
  $$INSERT INTO %s (domain, type, identifier) VALUES ('upload', 'theirs', '1')$$, 'cur_w'::regclass));
COMMIT;
SELECT type, sequence FROM cur_w WHERE domain = 'upload' AND identifier = '1';
SELECT dblink_disconnect('other');

DROP FUNCTION drain(refcursor);
DROP FUNCTION handle_all_inside();
DROP FUNCTION handle_all_outside();
DROP SERVER cursors_srv CASCADE;
