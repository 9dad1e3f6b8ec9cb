// Background workers that keep projections current, in a throwaway cluster that has the library in
// shared_preload_libraries (the runner's cluster may not): workers run as the projection's owner
// and show in pg_stat_activity; a new event reaches the read model without anyone calling
// catch_up; NOTIFY and wait_for_projection; the server restarted with workers running; a worker
// terminated and a worker killed with SIGKILL (a crash of the whole cluster) come back; stop and
// drop while a catch-up is under way; a failing handler under on_error 'stop' and 'skip'; two
// databases with projections of the same name; a partitioned projection (a worker per partition)
// through concurrent appends, a killed worker and a restart, each stream in sequence order; DROP
// DATABASE and DROP EXTENSION with workers running; repartition_projection while the workers run
// and writers append (3, 5, then 2 partitions); handlers of two partitions that deadlock on shared
// rows (the victim's batch is tried again: nothing skipped or applied twice); ALTER EXTENSION
// UPDATE from 0.2 to 0.3, then to 0.4 and 0.5 with the worker running, and a repartition. After
// each case every read model equals a full recompute from the events.
//
// Usage: node test/workers/run.js   (node:test; TAP output)
// Needs the stack's DDB_URL and S3_URL, the extension installed, and root or the postgres account.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const {
  startCluster, destroyCluster, rows, value, sqlstate, waitFor, sleep,
} = require('./cluster');

const DDB_URL = process.env.DDB_URL;
const S3_URL = process.env.S3_URL;
const TEST_TIMEOUT_MS = 300000;
const WORKER = 'event_store_dynamo projection';

let cluster;

/* The projection workers of a database: [{pid, user, superuser, appname}] */
async function workers(db) {
  const r = await rows('postgres', `
SELECT a.pid, a.usename, r.rolsuper, a.application_name
  FROM pg_stat_activity a JOIN pg_roles r ON r.oid = a.usesysid
 WHERE a.backend_type = '${WORKER}' AND a.datname = '${db}' ORDER BY a.application_name;`);
  return r.map(([pid, user, superuser, appname]) => ({ pid: Number(pid), user, superuser: superuser === 't', appname }));
}

async function workerPids(db, appname) {
  return (await workers(db)).filter((w) => w.appname === appname).map((w) => w.pid);
}

/* Appends n deposits over 7 accounts as the application role; returns the last event's id. */
async function deposit(db, n, { poison = false } = {}) {
  const r = await rows(db, `SET ROLE app;
INSERT INTO events (domain, type, identifier, payload)
SELECT 'account', 'deposited', (i % 7)::text,
       jsonb_build_object('amount', i, 'poison', ${poison ? 'i = 1' : 'false'})
  FROM generate_series(1, ${n}) i
RETURNING id;`);
  return r[r.length - 1][0];
}

/*
 * Writers appending to the same streams at once: a commit that finds its stream moved fails whole
 * (40001, nothing written) and is tried again; during a crash a writer's connection may fail too.
 */
async function depositConcurrently(db, writers, n) {
  await Promise.all(Array.from({ length: writers }, async () => {
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        return await deposit(db, n);
      } catch (e) {
        await sleep(100 * (attempt + 1));
      }
    }
    return null;
  }));
}

/* Whether a read model equals the full recompute from the events (of the projection's filter). */
async function readModelCurrent(db, table) {
  const [[equal]] = await rows(db, `SET ROLE app;
SELECT (SELECT coalesce(jsonb_agg(jsonb_build_array(account, balance) ORDER BY account), '[]') FROM ${table})
     = (SELECT coalesce(jsonb_agg(jsonb_build_array(account, balance) ORDER BY account), '[]')
          FROM (SELECT identifier AS account, sum((payload->>'amount')::numeric) AS balance
                  FROM events WHERE NOT (payload->>'poison')::boolean GROUP BY identifier) r);`);
  return equal === 't';
}

async function projectionState(db, name) {
  const r = await rows(db, `SELECT state, coalesce(last_error, '') FROM event_store_dynamo.projections WHERE name = '${name}';`);
  return r.length ? { state: r[0][0], lastError: r[0][1] } : null;
}

/* A database with the extension, a store of its own and the balances projection (not started). */
async function setUpDatabase(db, { version } = {}) {
  await rows('postgres', `CREATE DATABASE ${db};`);
  await rows(db, `
CREATE EXTENSION event_store_dynamo ${version ? `VERSION '${version}'` : ''};
CREATE SERVER events_srv FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (endpoint '${DDB_URL}', s3_endpoint '${S3_URL}', s3_force_path_style 'true');
GRANT USAGE ON FOREIGN SERVER events_srv TO app;
CREATE USER MAPPING FOR app SERVER events_srv OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
CREATE USER MAPPING FOR postgres SERVER events_srv OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
GRANT CREATE ON SCHEMA public TO app;
SET ROLE app;
CREATE FOREIGN TABLE events (
  id text, domain text, type text, identifier text, correlation_id text, causation_id text,
  sequence bigint, payload jsonb, meta jsonb, created timestamptz, time_bucket text, s3_reference text
) SERVER events_srv OPTIONS (table_name_prefix 'workers-${db}-');
RESET ROLE;
-- destroying and creating the store needs the server's owner
SELECT event_store_dynamo.reset_store('events');
SET ROLE app;
CREATE TABLE balances (account text PRIMARY KEY, balance numeric NOT NULL);
CREATE TABLE fragile_balances (account text PRIMARY KEY, balance numeric NOT NULL);
-- slows each event down when asked, so that a catch-up can be caught under way
CREATE TABLE handler_delay (seconds float8 NOT NULL);
INSERT INTO handler_delay VALUES (0);
CREATE FUNCTION apply_balance(e events) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_sleep(seconds) FROM handler_delay;
  IF (e.payload->>'poison')::boolean THEN RETURN; END IF;
  INSERT INTO balances VALUES (e.identifier, (e.payload->>'amount')::numeric)
    ON CONFLICT (account) DO UPDATE SET balance = balances.balance + excluded.balance;
END $$;
CREATE FUNCTION apply_fragile(e events) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF (e.payload->>'poison')::boolean THEN
    RAISE EXCEPTION 'poisoned event %', e.id USING ERRCODE = 'P0001';
  END IF;
  INSERT INTO fragile_balances VALUES (e.identifier, (e.payload->>'amount')::numeric)
    ON CONFLICT (account) DO UPDATE SET balance = fragile_balances.balance + excluded.balance;
END $$;
`);
}

async function createBalances(db) {
  await rows(db, `SET ROLE app;
SELECT event_store_dynamo.create_projection(name => 'balances', source => 'events'::regclass,
  handler => 'apply_balance(events)'::regprocedure, tables => ARRAY['balances'::regclass],
  settle => interval '0 seconds', on_error => 'stop');`);
}

before(async () => {
  assert.ok(DDB_URL && S3_URL, 'DDB_URL and S3_URL must be set (source the stack.env)');
  cluster = await startCluster({ maxWorkers: 40 });
  await rows('postgres', `
CREATE ROLE app LOGIN;
CREATE ROLE outsider LOGIN;
CREATE ROLE no_login NOLOGIN;`);
  await setUpDatabase('shop_a');
  await setUpDatabase('shop_b');
});

after(() => destroyCluster());

test('start_projection: a worker connected as the owner keeps the read model current', { timeout: TEST_TIMEOUT_MS }, async () => {
  await deposit('shop_a', 20);
  await createBalances('shop_a');
  await rows('shop_a', `SET ROLE app; SELECT event_store_dynamo.start_projection('balances', poll => interval '200 ms');`);
  const [w] = await waitFor('the worker', async () => (await workers('shop_a')).length === 1 && workers('shop_a'));
  assert.equal(w.user, 'app');
  assert.equal(w.superuser, false);
  assert.equal(w.appname, 'projection balances');
  await waitFor('the first catch-up', () => readModelCurrent('shop_a', 'balances'));
  // nobody calls catch_up: the worker applies what is appended
  await deposit('shop_a', 15);
  await waitFor('the new events', () => readModelCurrent('shop_a', 'balances'));
  const [[state, pid]] = await rows('shop_a', "SELECT state, pid FROM event_store_dynamo.projection_workers WHERE projection = 'balances';");
  assert.equal(state, 'running');
  assert.equal(Number(pid), w.pid);
});

test('NOTIFY after a commit, and wait_for_projection', { timeout: TEST_TIMEOUT_MS }, async () => {
  const r = await cluster.psql(`LISTEN event_store_dynamo_projection;
SET ROLE app;
INSERT INTO events (domain, type, identifier, payload)
  VALUES ('account', 'deposited', 'n1', '{"amount": 5, "poison": false}') RETURNING id \\gset
SELECT event_store_dynamo.wait_for_projection('balances', :'id', interval '30 seconds');
SELECT pg_sleep(0.5);
SELECT 'done';`, { db: 'shop_a' });
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n');
  assert.ok(lines.includes('t'), `wait_for_projection did not see the event: ${r.stdout}`);
  const note = lines.find((l) => l.startsWith('Asynchronous notification "event_store_dynamo_projection"'));
  assert.ok(note, `no notification: ${r.stdout}`);
  const payload = JSON.parse(/with payload "(.*)" received/.exec(note)[1]);
  assert.equal(payload.projection, 'balances');
  assert.ok(payload.position, 'the payload carries the position');
  assert.equal(payload.partition, 0, 'the payload carries the run\'s partition');
  assert.ok(await readModelCurrent('shop_a', 'balances'));
});

test('the server restarts with a worker running: the worker comes back', { timeout: TEST_TIMEOUT_MS }, async () => {
  const [before] = await workerPids('shop_a', 'projection balances');
  cluster.restart({});
  const [after] = await waitFor('the worker after the restart', async () => {
    const p = await workerPids('shop_a', 'projection balances');
    return p.length === 1 && p;
  });
  assert.notEqual(after, before);
  await deposit('shop_a', 10);
  await waitFor('events after the restart', () => readModelCurrent('shop_a', 'balances'));
});

test('a terminated worker and a killed worker come back', { timeout: TEST_TIMEOUT_MS }, async () => {
  const [first] = await workerPids('shop_a', 'projection balances');
  await rows('postgres', `SELECT pg_terminate_backend(${first});`);
  const [second] = await waitFor('a new worker after pg_terminate_backend', async () => {
    const p = await workerPids('shop_a', 'projection balances');
    return p.length === 1 && p[0] !== first && p;
  });
  const [[restarts]] = await rows('shop_a', "SELECT restarts FROM event_store_dynamo.projection_workers WHERE projection = 'balances';");
  assert.ok(Number(restarts) >= 1);
  await deposit('shop_a', 5);
  await waitFor('events after the termination', () => readModelCurrent('shop_a', 'balances'));

  // SIGKILL: the postmaster resets every backend and shared memory; the launcher scans again
  process.kill(second, 'SIGKILL');
  await waitFor('a new worker after SIGKILL', async () => {
    try {
      const p = await workerPids('shop_a', 'projection balances');
      return p.length === 1 && p[0] !== second;
    } catch (e) {
      return false;   // connections are refused while the cluster recovers
    }
  });
  await deposit('shop_a', 5);
  await waitFor('events after the crash', () => readModelCurrent('shop_a', 'balances'));
});

test('stop_projection and drop_projection while a catch-up is under way', { timeout: TEST_TIMEOUT_MS }, async () => {
  await rows('shop_a', 'SET ROLE app; UPDATE handler_delay SET seconds = 0.2;');
  await deposit('shop_a', 20);
  // the worker is inside catch_up, applying slowly
  await waitFor('a catch-up under way', async () => (await value('postgres', `
SELECT count(*) FROM pg_stat_activity
 WHERE backend_type = '${WORKER}' AND datname = 'shop_a' AND state = 'active' AND query LIKE 'CALL%';`)) === '1');
  assert.equal(await value('shop_a', "SET ROLE app; SELECT event_store_dynamo.stop_projection('balances');"), 't');
  await waitFor('the worker to stop', async () => (await workers('shop_a')).length === 0, 20000);
  assert.equal(await value('shop_a', "SELECT count(*) FROM event_store_dynamo.projection_workers;"), '0');
  assert.equal(await value('shop_a', "SET ROLE app; SELECT event_store_dynamo.stop_projection('balances');"), 'f');
  // stopped means stopped: nothing is applied, nothing restarts it
  await rows('shop_a', 'SET ROLE app; UPDATE handler_delay SET seconds = 0;');
  await sleep(1500);
  assert.equal((await workers('shop_a')).length, 0);

  // started again, it finishes the work exactly once
  await rows('shop_a', `SET ROLE app; SELECT event_store_dynamo.start_projection('balances', poll => interval '200 ms');`);
  await waitFor('the restarted projection', () => readModelCurrent('shop_a', 'balances'));

  // dropped while a catch-up is under way
  await rows('shop_a', 'SET ROLE app; UPDATE handler_delay SET seconds = 0.2;');
  await deposit('shop_a', 20);
  await waitFor('a catch-up under way', async () => (await value('postgres', `
SELECT count(*) FROM pg_stat_activity
 WHERE backend_type = '${WORKER}' AND datname = 'shop_a' AND state = 'active' AND query LIKE 'CALL%';`)) === '1');
  await rows('shop_a', "SET ROLE app; SELECT event_store_dynamo.drop_projection('balances');");
  await waitFor('the worker to leave', async () => (await workers('shop_a')).length === 0, 20000);
  assert.equal(await value('shop_a', 'SELECT count(*) FROM event_store_dynamo.projection_runs;'), '0');
  await rows('shop_a', 'SET ROLE app; UPDATE handler_delay SET seconds = 0; TRUNCATE balances;');

  // created again from nothing, it recomputes the whole read model
  await createBalances('shop_a');
  await rows('shop_a', `SET ROLE app; SELECT event_store_dynamo.start_projection('balances', poll => interval '200 ms');`);
  await waitFor('the recreated projection', () => readModelCurrent('shop_a', 'balances'));
});

test('a failing handler: on_error stop halts and shows it, skip goes on', { timeout: TEST_TIMEOUT_MS }, async () => {
  await rows('shop_b', `SET ROLE app;
SELECT event_store_dynamo.create_projection(name => 'fragile', source => 'events'::regclass,
  handler => 'apply_fragile(events)'::regprocedure, tables => ARRAY['fragile_balances'::regclass],
  settle => interval '0 seconds', on_error => 'stop');
SELECT event_store_dynamo.start_projection('fragile', poll => interval '200 ms');`);
  await deposit('shop_b', 10);
  await waitFor('the healthy events', async () => (await value('shop_b', 'SELECT count(*) FROM fragile_balances;')) === '7');
  await deposit('shop_b', 3, { poison: true });
  const failed = await waitFor('the failed state', async () => {
    const s = await projectionState('shop_b', 'fragile');
    return s && s.state === 'failed' && s;
  });
  assert.match(failed.lastError, /poisoned event/);
  // nothing after the failing event is applied, however long the worker keeps going
  const before = await value('shop_b', 'SELECT sum(balance) FROM fragile_balances;');
  await deposit('shop_b', 5);
  await sleep(1500);
  assert.equal(await value('shop_b', 'SELECT sum(balance) FROM fragile_balances;'), before);
  assert.equal((await workerPids('shop_b', 'projection fragile')).length, 1, 'the worker stays');

  // the same handler under skip: the poisoned event is recorded and the rest applied
  await rows('shop_b', `SET ROLE app;
SELECT event_store_dynamo.drop_projection('fragile');
TRUNCATE fragile_balances;
SELECT event_store_dynamo.create_projection(name => 'fragile', source => 'events'::regclass,
  handler => 'apply_fragile(events)'::regprocedure, tables => ARRAY['fragile_balances'::regclass],
  settle => interval '0 seconds', on_error => 'skip');
SELECT event_store_dynamo.start_projection('fragile', poll => interval '200 ms');`);
  await waitFor('every healthy event', () => readModelCurrent('shop_b', 'fragile_balances'));
  const s = await projectionState('shop_b', 'fragile');
  assert.notEqual(s.state, 'failed');
});

test('two databases with projections of the same name', { timeout: TEST_TIMEOUT_MS }, async () => {
  await createBalances('shop_b');
  await rows('shop_b', `SET ROLE app; SELECT event_store_dynamo.start_projection('balances', poll => interval '200 ms');`);
  await deposit('shop_b', 12);
  await deposit('shop_a', 9);
  await waitFor('shop_b', () => readModelCurrent('shop_b', 'balances'));
  await waitFor('shop_a', () => readModelCurrent('shop_a', 'balances'));
  const a = await workerPids('shop_a', 'projection balances');
  const b = await workerPids('shop_b', 'projection balances');
  assert.equal(a.length, 1);
  assert.equal(b.length, 1);
  // stopping one leaves the other alone
  await rows('shop_b', "SET ROLE app; SELECT event_store_dynamo.stop_projection('balances');");
  await waitFor('shop_b stopped', async () => (await workerPids('shop_b', 'projection balances')).length === 0, 20000);
  assert.deepEqual(await workerPids('shop_a', 'projection balances'), a);
  await deposit('shop_a', 4);
  await waitFor('shop_a still current', () => readModelCurrent('shop_a', 'balances'));
  await rows('shop_b', "SET ROLE app; SELECT event_store_dynamo.start_projection('balances', poll => interval '200 ms');");
  await waitFor('shop_b current again', () => readModelCurrent('shop_b', 'balances'));
});

test('partitions: a worker per partition through appends, a killed worker and a restart', { timeout: TEST_TIMEOUT_MS }, async () => {
  await setUpDatabase('shop_p');
  // a handler that does some work per event and logs the order it saw
  await rows('shop_p', `SET ROLE app;
CREATE TABLE parted_balances (account text PRIMARY KEY, balance numeric NOT NULL);
CREATE TABLE parted_log (n bigserial, id text, account text, sequence bigint, pid int DEFAULT pg_backend_pid());
CREATE FUNCTION apply_parted(e events) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_sleep(0.002);
  IF NOT (e.payload->>'poison')::boolean THEN
    INSERT INTO parted_balances VALUES (e.identifier, (e.payload->>'amount')::numeric)
      ON CONFLICT (account) DO UPDATE SET balance = parted_balances.balance + excluded.balance;
  END IF;
  INSERT INTO parted_log (id, account, sequence) VALUES (e.id, e.identifier, e.sequence);
END $$;
SELECT event_store_dynamo.create_projection(name => 'parted', source => 'events'::regclass,
  handler => 'apply_parted(events)'::regprocedure, tables => ARRAY['parted_balances'::regclass],
  settle => interval '0 seconds', on_error => 'stop', partitions => 3);`);
  await deposit('shop_p', 30);
  await rows('shop_p', "SET ROLE app; SELECT event_store_dynamo.start_projection('parted', poll => interval '200 ms');");
  const names = ['projection parted 1/3', 'projection parted 2/3', 'projection parted 3/3'];
  const ws = await waitFor('three workers', async () => {
    const w = await workers('shop_p');
    return w.length === 3 && w;
  });
  assert.deepEqual(ws.map((w) => w.appname), names);
  for (const w of ws) {
    assert.equal(w.user, 'app');
    assert.equal(w.superuser, false);
  }
  const [[n, parts]] = await rows('shop_p', `
SELECT count(*), string_agg(partition || '/' || partitions, ',' ORDER BY partition)
  FROM event_store_dynamo.projection_workers WHERE projection = 'parted';`);
  assert.equal(n, '3');
  assert.equal(parts, '0/3,1/3,2/3');

  // writers append concurrently while one partition's worker is killed with SIGKILL (a crash of
  // the whole cluster: every backend is reset, the workers come back)
  const [victim] = await workerPids('shop_p', names[1]);
  const writers = depositConcurrently('shop_p', 3, 40);
  await sleep(300);
  process.kill(victim, 'SIGKILL');
  await writers;
  await waitFor('the three workers after the crash', async () => {
    try {
      const w = await workers('shop_p');
      return w.length === 3 && !w.some((x) => x.pid === victim);
    } catch (e) {
      return false;   // connections are refused while the cluster recovers
    }
  });
  await deposit('shop_p', 25);

  // and the server restarted with the workers running
  cluster.restart({});
  await waitFor('the three workers after the restart', async () => (await workers('shop_p')).length === 3);
  await depositConcurrently('shop_p', 2, 20);
  await waitFor('the partitioned read model', () => readModelCurrent('shop_p', 'parted_balances'));

  // every event applied once, each stream in sequence order, each stream by one partition's runs
  const [[once, ordered, events, logged]] = await rows('shop_p', `SET ROLE app;
SELECT (SELECT count(*) = count(DISTINCT id) FROM parted_log),
       (SELECT bool_and(sequence = 1 OR sequence = prev + 1)
          FROM (SELECT sequence, lag(sequence) OVER (PARTITION BY account ORDER BY n) AS prev FROM parted_log) l),
       (SELECT count(*) FROM events), (SELECT count(*) FROM parted_log);`);
  assert.equal(once, 't', 'an event was applied twice');
  assert.equal(ordered, 't', 'a stream was applied out of sequence order');
  assert.equal(logged, events);
  const [[state, applied, partitions]] = await rows('shop_p', `SET ROLE app;
SELECT state, events_applied, partitions FROM event_store_dynamo.projections WHERE name = 'parted';`);
  assert.notEqual(state, 'failed');
  assert.equal(applied, events);
  assert.equal(partitions, '3');
  // the streams were spread: more than one partition applied events
  assert.ok(Number(await value('shop_p', `SET ROLE app;
SELECT count(*) FROM event_store_dynamo.projection_partitions WHERE name = 'parted' AND events_applied > 0;`)) > 1);

  // DROP DATABASE takes the partition workers with it
  await rows('postgres', 'DROP DATABASE shop_p;');
  assert.equal((await workers('shop_p')).length, 0);
});

test('repartition_projection while the workers run and events arrive: 3, then 5, then 2 partitions', { timeout: TEST_TIMEOUT_MS }, async () => {
  await setUpDatabase('shop_r');
  await rows('shop_r', `SET ROLE app;
CREATE TABLE moving_balances (account text PRIMARY KEY, balance numeric NOT NULL);
CREATE TABLE moving_log (n bigserial, id text, account text, sequence bigint);
CREATE FUNCTION apply_moving(e events) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_sleep(0.002);
  INSERT INTO moving_balances VALUES (e.identifier, (e.payload->>'amount')::numeric)
    ON CONFLICT (account) DO UPDATE SET balance = moving_balances.balance + excluded.balance;
  INSERT INTO moving_log (id, account, sequence) VALUES (e.id, e.identifier, e.sequence);
END $$;
SELECT event_store_dynamo.create_projection(name => 'moving', source => 'events'::regclass,
  handler => 'apply_moving(events)'::regprocedure, tables => ARRAY['moving_balances'::regclass],
  settle => interval '0 seconds', on_error => 'stop', partitions => 3);
SELECT event_store_dynamo.start_projection('moving', poll => interval '200 ms');`);
  await deposit('shop_r', 30);
  await waitFor('three workers', async () => (await workers('shop_r')).length === 3);

  // writers append while the count changes twice under them
  const writers = depositConcurrently('shop_r', 3, 40);
  await sleep(300);
  await rows('shop_r', "SET ROLE app; SELECT event_store_dynamo.repartition_projection('moving', 5);");
  const five = await waitFor('five workers', async () => {
    const w = await workers('shop_r');
    return w.length === 5 && w.every((x) => x.appname.endsWith('/5')) && w;
  });
  assert.deepEqual(five.map((w) => w.appname),
    [1, 2, 3, 4, 5].map((i) => `projection moving ${i}/5`));
  await deposit('shop_r', 20);
  await rows('shop_r', "SET ROLE app; SELECT event_store_dynamo.repartition_projection('moving', 2);");
  await writers;
  await deposit('shop_r', 15);
  const two = await waitFor('two workers', async () => {
    const w = await workers('shop_r');
    return w.length === 2 && w.every((x) => x.appname.endsWith('/2')) && w;
  });
  assert.deepEqual(two.map((w) => w.appname), ['projection moving 1/2', 'projection moving 2/2']);
  await waitFor('the repartitioned read model', () => readModelCurrent('shop_r', 'moving_balances'));

  // every event applied once, each stream in sequence order, the counters kept across the changes
  const [[once, ordered, events, logged]] = await rows('shop_r', `SET ROLE app;
SELECT (SELECT count(*) = count(DISTINCT id) FROM moving_log),
       (SELECT bool_and(sequence = 1 OR sequence = prev + 1)
          FROM (SELECT sequence, lag(sequence) OVER (PARTITION BY account ORDER BY n) AS prev FROM moving_log) l),
       (SELECT count(*) FROM events), (SELECT count(*) FROM moving_log);`);
  assert.equal(once, 't', 'an event was applied twice');
  assert.equal(ordered, 't', 'a stream was applied out of sequence order');
  assert.equal(logged, events);
  const [[state, applied, partitions, runs]] = await rows('shop_r', `SET ROLE app;
SELECT state, events_applied, partitions, (SELECT count(*) FROM event_store_dynamo.projection_run)
  FROM event_store_dynamo.projections WHERE name = 'moving';`);
  assert.notEqual(state, 'failed');
  assert.equal(applied, events);
  assert.equal(partitions, '2');
  assert.equal(runs, '2', 'the old runs are gone');
});

test('handlers of two partitions deadlock on shared rows: the victim\'s batch is tried again, nothing lost or applied twice', { timeout: TEST_TIMEOUT_MS }, async () => {
  // Each partition's handler updates two shared rows, in opposite orders.  The first event of
  // each partition (a sequence, which no rollback resets, says which) waits until the other
  // partition holds its first row (an advisory lock marks it), so the two deadlock for certain;
  // later events go through at once.  on_error 'skip': before, the victim's event was skipped.
  try {
    await rows('shop_r', `SET ROLE app;
CREATE TABLE shared_rows (k int PRIMARY KEY, n bigint NOT NULL);
INSERT INTO shared_rows VALUES (1, 0), (2, 0);
CREATE TABLE shared_balances (account text PRIMARY KEY, balance numeric NOT NULL);
CREATE TABLE shared_log (n bigserial, id text, account text, sequence bigint);
CREATE SEQUENCE shared_first_0;
CREATE SEQUENCE shared_first_1;
CREATE FUNCTION apply_shared(e events) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  part int := event_store_dynamo._partition_of(e.domain, e.identifier, 2);
BEGIN
  UPDATE shared_rows SET n = n + 1 WHERE k = 1 + part;
  IF nextval(('shared_first_' || part)::regclass) = 1 THEN
    PERFORM pg_advisory_xact_lock(4100 + part);
    FOR i IN 1..300 LOOP
      EXIT WHEN EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1
                        AND objid = 4100 + (1 - part) AND granted);
      PERFORM pg_sleep(0.1);
    END LOOP;
  END IF;
  UPDATE shared_rows SET n = n + 1 WHERE k = 2 - part;
  INSERT INTO shared_balances VALUES (e.identifier, (e.payload->>'amount')::numeric)
    ON CONFLICT (account) DO UPDATE SET balance = shared_balances.balance + excluded.balance;
  INSERT INTO shared_log (id, account, sequence) VALUES (e.id, e.identifier, e.sequence);
END $$;
SELECT event_store_dynamo.create_projection(name => 'shared', source => 'events'::regclass,
  handler => 'apply_shared(events)'::regprocedure, tables => ARRAY['shared_balances'::regclass],
  settle => interval '0 seconds', on_error => 'skip', partitions => 2);
SELECT event_store_dynamo.start_projection('shared', poll => interval '200 ms');`);
    await waitFor('the shared read model', () => readModelCurrent('shop_r', 'shared_balances'));
    await deposit('shop_r', 14);
    await waitFor('the new events', () => readModelCurrent('shop_r', 'shared_balances'));

    // PostgreSQL's deadlock detector aborted one of them: the worker reported it and stayed
    assert.match(cluster.allLogs(), /ERROR:\s+(40P01:\s+)?deadlock detected/);
    const ws = await rows('shop_r', `SELECT partition, restarts, coalesce(last_error, '') FROM event_store_dynamo.projection_workers
 WHERE projection = 'shared' ORDER BY partition;`);
    assert.equal(ws.length, 2);
    assert.ok(ws.some(([, , error]) => /deadlock detected/.test(error)), `no worker reports the deadlock: ${JSON.stringify(ws)}`);
    assert.ok(ws.every(([, restarts]) => restarts === '0'), 'the workers stayed');
    // nothing skipped, nothing applied twice; both shared rows counted every event twice over
    const [[once, ordered, events, logged, row1, row2]] = await rows('shop_r', `SET ROLE app;
SELECT (SELECT count(*) = count(DISTINCT id) FROM shared_log),
       (SELECT bool_and(sequence = 1 OR sequence = prev + 1)
          FROM (SELECT sequence, lag(sequence) OVER (PARTITION BY account ORDER BY n) AS prev FROM shared_log) l),
       (SELECT count(*) FROM events), (SELECT count(*) FROM shared_log),
       (SELECT n FROM shared_rows WHERE k = 1), (SELECT n FROM shared_rows WHERE k = 2);`);
    assert.equal(once, 't', 'an event was applied twice');
    assert.equal(ordered, 't');
    assert.equal(logged, events);
    assert.equal(row1, events);
    assert.equal(row2, events);
    const [[state, skipped, dead, applied]] = await rows('shop_r', `SET ROLE app;
SELECT state, skipped, (SELECT count(*) FROM event_store_dynamo.dead_letters WHERE projection = 'shared'), events_applied
  FROM event_store_dynamo.projections WHERE name = 'shared';`);
    assert.notEqual(state, 'failed');
    assert.equal(skipped, '0');
    assert.equal(dead, '0');
    assert.equal(applied, events);
  } finally {
    // (the workers of this database would otherwise outlive the case)
    await rows('postgres', 'DROP DATABASE IF EXISTS shop_r;');
  }
});

test('who may start and stop: the owner, a role that may log in', { timeout: TEST_TIMEOUT_MS }, async () => {
  let e = await sqlstate('shop_a', "SET ROLE outsider; SELECT event_store_dynamo.start_projection('balances');");
  assert.equal(e.code, '42501');
  e = await sqlstate('shop_a', "SET ROLE outsider; SELECT event_store_dynamo.stop_projection('balances');");
  assert.equal(e.code, '42501');
  e = await sqlstate('shop_a', "SELECT event_store_dynamo.start_projection('no such projection');");
  assert.equal(e.code, '42704');
  e = await sqlstate('shop_a', "SELECT event_store_dynamo.start_projection('balances', poll => interval '1 millisecond');");
  assert.equal(e.code, '22023');
  // a worker connects as the owner: an owner that may not log in is refused at once
  await rows('postgres', 'GRANT app TO no_login;');
  await rows('shop_a', `SET ROLE app; GRANT USAGE ON FOREIGN SERVER events_srv TO no_login;
SET ROLE no_login;
SELECT event_store_dynamo.create_projection(name => 'nologin', source => 'events'::regclass,
  handler => 'apply_balance(events)'::regprocedure);`);
  e = await sqlstate('shop_a', "SET ROLE no_login; SELECT event_store_dynamo.start_projection('nologin');");
  assert.equal(e.code, '28000');
  await rows('shop_a', "SET ROLE no_login; SELECT event_store_dynamo.drop_projection('nologin');");
});

test('DROP DATABASE and DROP EXTENSION with workers running', { timeout: TEST_TIMEOUT_MS }, async () => {
  assert.equal((await workers('shop_b')).length, 2);
  await rows('postgres', 'DROP DATABASE shop_b;');
  assert.equal((await workers('shop_b')).length, 0);

  assert.equal((await workers('shop_a')).length, 1);
  // the drop first sends the workers away and waits for them (a worker's transaction reads the
  // tables the drop locks one by one: the two would deadlock); rolled back, the workers come back
  await rows('shop_a', 'BEGIN; DROP EXTENSION event_store_dynamo CASCADE; ROLLBACK;');
  await waitFor('the worker back after the rollback', async () => (await workers('shop_a')).length === 1);
  await deposit('shop_a', 3);
  await waitFor('shop_a current after the rollback', () => readModelCurrent('shop_a', 'balances'));
  await rows('shop_a', 'DROP EXTENSION event_store_dynamo CASCADE;');
  assert.equal((await workers('shop_a')).length, 0, 'the workers left before the drop returned');
  // nothing comes back after a restart either
  cluster.restart({});
  await sleep(2000);
  assert.equal((await rows('postgres', `SELECT count(*) FROM pg_stat_activity WHERE backend_type = '${WORKER}';`))[0][0], '0');
});

test('ALTER EXTENSION UPDATE from 0.2 brings the workers (and the latest version)', { timeout: TEST_TIMEOUT_MS }, async () => {
  await setUpDatabase('shop_c', { version: '0.2' });
  await deposit('shop_c', 8);
  await createBalances('shop_c');
  await rows('shop_c', "ALTER EXTENSION event_store_dynamo UPDATE TO '0.3';");
  assert.equal(await value('shop_c', "SELECT extversion FROM pg_extension WHERE extname = 'event_store_dynamo';"), '0.3');
  await rows('shop_c', `SET ROLE app; SELECT event_store_dynamo.start_projection('balances', poll => interval '200 ms');`);
  await waitFor('shop_c current', () => readModelCurrent('shop_c', 'balances'));

  // and on to 0.4 with the worker running: the projection goes on as one partition
  await rows('shop_c', "ALTER EXTENSION event_store_dynamo UPDATE TO '0.4';");
  assert.equal(await value('shop_c', "SELECT extversion FROM pg_extension WHERE extname = 'event_store_dynamo';"), '0.4');
  await deposit('shop_c', 6);
  await waitFor('shop_c current after the update', () => readModelCurrent('shop_c', 'balances'));
  assert.deepEqual((await workers('shop_c')).map((w) => w.appname), ['projection balances']);
  assert.equal(await value('shop_c', "SELECT partitions FROM event_store_dynamo.projections WHERE name = 'balances';"), '1');

  // and on to the latest (0.5) with the worker running, then given three partitions while it runs
  await rows('shop_c', 'ALTER EXTENSION event_store_dynamo UPDATE;');
  assert.equal(await value('shop_c', "SELECT extversion FROM pg_extension WHERE extname = 'event_store_dynamo';"), '0.5');
  await deposit('shop_c', 6);
  await waitFor('shop_c current after the update to 0.5', () => readModelCurrent('shop_c', 'balances'));
  await rows('shop_c', "SET ROLE app; SELECT event_store_dynamo.repartition_projection('balances', 3);");
  await deposit('shop_c', 9);
  await waitFor('three workers in shop_c', async () => (await workers('shop_c')).length === 3);
  await waitFor('shop_c current with three partitions', () => readModelCurrent('shop_c', 'balances'));
  const [[applied, events]] = await rows('shop_c', `SET ROLE app;
SELECT events_applied, (SELECT count(*) FROM events) FROM event_store_dynamo.projections WHERE name = 'balances';`);
  assert.equal(applied, events);
});
