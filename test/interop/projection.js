// Projections under concurrent writers, kills and a lagging index, on a store of its own (`pj-`)
// and a database of its own (pj_test):
//   1. Two projections over one foreign table that reads through the fault front, made to act as
//      a GSI that shows new items only 3 s after it first could (indexLagMs): balances per
//      account (domain filter; the handler also counts stream-order violations and logs every
//      event id it is given) and counts per domain and type (types filter). settle 1 s,
//      recheck 2 minutes, full_recheck 15 s.
//   2. Writers at the same time, from fixed seeds: the Node adapter (storeEvents of 1 to 40
//      events, so chunked over several DynamoDB transactions, with created now, skewed a few
//      seconds either way, backdated 90 s or 3 hours) and SQL sessions (INSERT with created now,
//      skewed or backdated, some holding their commit 2 to 5 s after the INSERT).
//   3. Meanwhile catch_up is called over and over, two sessions per projection at once, some
//      under a statement_timeout of 300 ms; backends in catch_up are ended with
//      pg_terminate_backend, and twice killed with SIGKILL mid-batch (the server then restarts
//      every backend: a crash and recovery); mid-batch too, the whole server is restarted once
//      cleanly (pg_ctl restart -m fast) and once after a crash (-m immediate: recovery from the
//      WAL). Halfway through, rebuild_projection runs while a reader keeps counting the read
//      model's rows: it must never see fewer than before, nor wait a second or more.
//   4. When the writers are done, catch_up runs until nothing is held and a full recheck has
//      run after the last write became visible (bounded: 180 s); then every read model must
//      equal a full recompute from the events (read without the lagging front), every event
//      applied once (no id logged twice), no stream applied out of sequence order, and the
//      status view must show that the safety net did work (late_applied > 0).
//   5. pg_dump -Fc of the database and pg_restore into a new one: the projections and their
//      state come back, and a catch_up there applies nothing twice.
//   6. The cost in requests (counted by the front): per catch_up at idle, and per 1,000 events.
//
// Usage: node test/interop/projection.js   (needs PG*, PGBIN, DDB_URL, DDB_FAULT_URL, S3_URL,
// AWS_TEST_*). Prints `ok - ...` / `not ok - ...` and `N passed, N failed`; exits 1 on failure.
'use strict';

const http = require('http');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFile, execFileSync } = require('child_process');
const { makeRepo } = require('./adapter');
const { Report } = require('./report');
const { psql, psqlOk, openSession, lit } = require('./psql');
const { prng } = require('../data/interop');

const PREFIX = 'pj-';
const BUCKET = 'pj-events';
const DB = 'pj_test';
const RESTORE_DB = 'pj_restore';
const SEED = 1414;
const INDEX_LAG_MS = 3000;
const NODE_BATCHES = 36;
const SQL_TXNS = 45;
const FINAL_TIMEOUT_MS = 180000;

const env = process.env;
const report = new Report();
const rnd = prng(SEED);
const int = (lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1));
const pick = (arr) => arr[Math.floor(rnd() * arr.length)];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const hex = (n) => Array.from({ length: n }, () => '0123456789abcdef'[int(0, 15)]).join('');
// the application gives every event its id (the adapter writes what it is given)
const uuid = () => `${hex(8)}-${hex(4)}-4${hex(3)}-${pick(['8', '9', 'a', 'b'])}${hex(3)}-${hex(12)}`;
const inDb = (db, app) => ({ env: { PGDATABASE: db, PGAPPNAME: app || 'pj-test' }, timeoutMs: 300000 });

/* GET or POST the fault front's control API. */
function faults(body) {
  return new Promise((resolve, reject) => {
    const u = new URL('/__faults', env.DDB_FAULT_URL);
    const data = body === undefined ? null : Buffer.from(JSON.stringify(body));
    const req = http.request(u, {
      method: data ? 'POST' : 'GET',
      headers: data ? { 'content-type': 'application/json', 'content-length': String(data.length) } : {},
    }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) reject(new Error(`fault front: ${res.statusCode} ${text}`));
        else resolve(JSON.parse(text));
      });
    });
    req.on('error', reject);
    req.end(data || undefined);
  });
}

async function q(sql, db = DB) {
  return (await psqlOk(sql, inDb(db))).trim();
}

/* Waits until the server accepts connections again (after a SIGKILL of a backend). */
async function waitForServer() {
  for (let i = 0; i < 600; i++) {
    const r = await psql('SELECT 1', { env: { PGDATABASE: DB }, timeoutMs: 5000 });
    if (r.code === 0) return;
    await sleep(100);
  }
  throw new Error('the server did not come back within 60 s');
}

const ACCOUNT_SOURCES = `
  CREATE TABLE pj_balances (account text PRIMARY KEY, balance numeric NOT NULL, events int NOT NULL,
                            last_sequence bigint NOT NULL, order_violations int NOT NULL);
  CREATE TABLE pj_applied (event_id text NOT NULL, account text);
  CREATE FUNCTION pj_apply(e pj_events) RETURNS void LANGUAGE sql AS $$
    INSERT INTO pj_balances AS b
      VALUES (e.identifier,
              CASE e.type WHEN 'withdrawn' THEN -1 ELSE 1 END * (e.payload->>'amount')::numeric, 1,
              e.sequence, (e.sequence <> 1)::int)
    ON CONFLICT (account) DO UPDATE
      SET balance = b.balance + excluded.balance, events = b.events + 1,
          last_sequence = excluded.last_sequence,
          order_violations = b.order_violations + (excluded.last_sequence <> b.last_sequence + 1)::int;
    INSERT INTO pj_applied VALUES (e.id, e.identifier);
  $$;
  CREATE TABLE pj_type_counts (domain text, type text, n int NOT NULL, PRIMARY KEY (domain, type));
  CREATE FUNCTION pj_count(e pj_events) RETURNS void LANGUAGE sql AS $$
    INSERT INTO pj_type_counts AS c VALUES (e.domain, e.type, 1)
    ON CONFLICT (domain, type) DO UPDATE SET n = c.n + 1;
  $$;
`;

async function setUp() {
  await psql(`DROP DATABASE IF EXISTS ${DB}`, inDb('postgres'));
  await psql(`DROP DATABASE IF EXISTS ${RESTORE_DB}`, inDb('postgres'));
  await psqlOk(`CREATE DATABASE ${DB}`, inDb('postgres'));
  const startMonth = new Date(Date.now() - 32 * 86400000).toISOString().slice(0, 7);
  await q(`
    CREATE EXTENSION event_store_dynamo;
    CREATE SERVER pj_lagging FOREIGN DATA WRAPPER event_store_dynamo
      OPTIONS (endpoint ${lit(env.DDB_FAULT_URL)}, max_retries '10', retry_base_ms '5', retry_cap_ms '50');
    CREATE SERVER pj_direct FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (endpoint ${lit(env.DDB_URL)});
    CREATE USER MAPPING FOR PUBLIC SERVER pj_lagging OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
    CREATE USER MAPPING FOR PUBLIC SERVER pj_direct OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
    CREATE FOREIGN TABLE pj_events (
      id text, domain text, type text, identifier text, correlation_id text, causation_id text,
      sequence bigint, payload jsonb, meta jsonb, created timestamptz, time_bucket text, s3_reference text
    ) SERVER pj_lagging OPTIONS (table_name_prefix '${PREFIX}', start_month '${startMonth}');
    CREATE FOREIGN TABLE pj_truth (
      id text, domain text, type text, identifier text, sequence bigint, payload jsonb, created timestamptz
    ) SERVER pj_direct OPTIONS (table_name_prefix '${PREFIX}', start_month '${startMonth}');
    SELECT event_store_dynamo.reset_store('pj_truth');
    ${ACCOUNT_SOURCES}
    SELECT event_store_dynamo.create_projection('pj_balances', 'pj_events', 'pj_apply(pj_events)',
      tables => ARRAY['pj_balances', 'pj_applied']::regclass[], domains => ARRAY['account'],
      settle => '1 second', recheck => '2 minutes', full_recheck => '15 seconds', on_error => 'stop');
    SELECT event_store_dynamo.create_projection('pj_types', 'pj_events', 'pj_count(pj_events)',
      tables => ARRAY['pj_type_counts']::regclass[], types => ARRAY['deposited', 'withdrawn'],
      settle => '1 second', recheck => '2 minutes', full_recheck => '15 seconds', on_error => 'stop');
  `);
}

/* The Node adapter's writer: batches over its own streams (n0..n7, and users), skewed dates. */
async function nodeWriter(repo, stats) {
  const skews = [0, 0, 0, -4000, 2000, -90000, -3 * 3600000];
  for (let b = 0; b < NODE_BATCHES; b++) {
    const n = int(1, 40);
    const skew = pick(skews);
    const base = Date.now() + skew;
    const events = [];
    for (let i = 0; i < n; i++) {
      const user = rnd() < 0.15;
      events.push({
        id: uuid(),
        domain: user ? 'user' : 'account',
        identifier: user ? `u${int(0, 3)}` : `n${int(0, 7)}`,
        type: pick(['deposited', 'deposited', 'withdrawn', 'noted']),
        payload: { amount: int(1, 500) },
        meta: { writer: 'node' },
        created: new Date(base + i),
      });
    }
    try {
      await repo.storeEvents(events);
      stats.nodeEvents += n;
    } catch (e) {
      stats.nodeErrors.push(String(e.message || e).slice(0, 200));
    }
    await sleep(int(50, 400));
  }
}

/* A SQL writer: transactions over streams q0..q5, skewed dates, some commits held back. */
async function sqlWriter(k, stats, rndW) {
  const wint = (lo, hi) => lo + Math.floor(rndW() * (hi - lo + 1));
  const wpick = (arr) => arr[Math.floor(rndW() * arr.length)];
  for (let t = 0; t < SQL_TXNS; t++) {
    const rows = [];
    const stream = `q${wint(0, 5)}`;
    for (let i = wint(1, 4); i > 0; i--) {
      const created = wpick(['NULL', 'NULL', "now() - interval '3 seconds'", "clock_timestamp() + interval '1500 ms'",
                             "now() - interval '90 seconds'"]);
      rows.push(`('account', ${lit(wpick(['deposited', 'withdrawn']))}, ${lit(stream)}, ` +
                `jsonb_build_object('amount', ${wint(1, 300)}), ${created})`);
    }
    const hold = rndW() < 0.3 ? wint(2, 5) : 0;
    const sql = `BEGIN;
      INSERT INTO pj_events (domain, type, identifier, payload, created) VALUES ${rows.join(', ')};
      ${hold ? `SELECT pg_sleep(${hold});` : ''}
      COMMIT;`;
    const r = await psql(sql, inDb(DB, `pj-writer-${k}`));
    if (r.code === 0) stats.sqlCommits++;
    else stats.sqlFailures++;
    await sleep(wint(20, 200));
  }
}

/* Calls catch_up over and over until told to stop; some calls under a statement_timeout. */
async function catchUpLoop(name, k, control, stats) {
  let i = 0;
  while (!control.stop) {
    i++;
    const timeout = i % 5 === 0 ? "SET statement_timeout = '300ms';" : '';
    const r = await psql(`${timeout} CALL event_store_dynamo.catch_up(${lit(name)}, 40);`,
                         inDb(DB, `pj-catchup-${name}-${k}`));
    if (r.code === 0) {
      stats.catchUps++;
    } else {
      const m = r.stderr.match(/(?:ERROR|FATAL):\s+([^\n]*)/);
      const why = m ? m[1].slice(0, 60) : 'connection lost';
      stats.catchUpErrors[why] = (stats.catchUpErrors[why] || 0) + 1;
    }
    await sleep(150);
  }
}

/*
 * Restarts the whole server with pg_ctl: mode 'fast' (a clean shutdown: backends end, a
 * checkpoint is written) or 'immediate' (a crash: the start recovers from the WAL). The server
 * runs as the postgres account when the tests run as root (test/lib.sh).
 */
function restartServer(mode) {
  const data = path.join(env.RUN_DIR, 'pg', 'data');
  const args = [path.join(env.PGBIN, 'pg_ctl'), '-D', data, '-l', path.join(env.RUN_DIR, 'pg', 'server.log'),
                '-m', mode, '-w', '-t', '120', 'restart'];
  const cmd = process.getuid() === 0 ? ['runuser', '-u', 'postgres', '--', ...args] : args;
  return new Promise((resolve, reject) => {
    execFile(cmd[0], cmd.slice(1), { timeout: 180000 }, (e, stdout, stderr) =>
      (e ? reject(new Error(`pg_ctl restart -m ${mode} failed: ${e.message} ${stderr}`)) : resolve()));
  });
}

/*
 * Ends catch_up backends mid-batch (holding the batch's advisory lock, so inside a batch's
 * transaction): pg_terminate_backend mostly, SIGKILL twice (the server then restarts every
 * backend: a crash and recovery), and the whole server restarted, once cleanly and once after a
 * crash.
 */
async function killer(control, stats) {
  let round = 0;
  while (!control.stop) {
    await sleep(1500 + (round % 3) * 500);
    round++;
    if (control.paused) continue;
    let pid = NaN;
    for (let i = 0; i < 100 && !control.stop && !control.paused && Number.isNaN(pid); i++) {
      const r = await psql(`SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                             WHERE l.locktype = 'advisory' AND l.classid = 1163084868 AND l.granted
                               AND a.application_name LIKE 'pj-catchup-%' ORDER BY l.pid LIMIT 1`,
                           { env: { PGDATABASE: DB, PGAPPNAME: 'pj-killer' }, timeoutMs: 10000 });
      pid = parseInt(r.stdout.trim(), 10);
      if (Number.isNaN(pid)) await sleep(20);
    }
    if (Number.isNaN(pid) || control.paused) continue;
    control.killing = true;
    await killOne(pid, round, stats);
    control.killing = false;
  }
}

/* One kill of a backend in catch_up, or one restart of the server; returns once it is back. */
async function killOne(pid, round, stats) {
  const restart = round >= 3 && stats.restarts.fast === 0 ? 'fast'
    : round >= 5 && stats.restarts.immediate === 0 ? 'immediate' : null;
  if (restart) {
    const mode = restart;
    await restartServer(mode);
    stats.restarts[mode]++;
    await waitForServer();
  } else if (round % 4 === 2 && stats.sigkills < 2) {
    try {
      process.kill(pid, 'SIGKILL');
      stats.sigkills++;
    } catch (e) {
      return;
    }
    await sleep(500);
    await waitForServer();
  } else {
    const t = await psql(`SELECT pg_terminate_backend(${pid})`, inDb(DB, 'pj-killer'));
    if (t.stdout.trim() === 't') stats.terminated++;
  }
}

/* rebuild_projection while a reader counts the read model's rows again and again. */
async function rebuildWhileReading(control, stats) {
  control.paused = true;   // a crash would end the rebuild itself: wait for the killer's last act
  while (control.killing) await sleep(50);
  await waitForServer();
  const before = parseInt(await q('SELECT count(*) FROM pj_balances'), 10);
  let reading = true;
  let minSeen = Infinity;
  let reads = 0;
  let maxReadMs = 0;
  const failed = {};
  // one session that keeps reading: each read's time is the wait a reader sees. A read that
  // waits for a lock for a second is refused (lock_timeout, 55P03): the switch may block
  // readers, but for under a second, however slow the machine otherwise is.
  const session = openSession({ env: { PGDATABASE: DB, PGAPPNAME: 'pj-reader' }, timeoutMs: 120000 });
  await session.run("SET lock_timeout = '1s';");
  const reader = (async () => {
    while (reading) {
      const t0 = Date.now();
      const r = await session.run('SELECT count(*) FROM pj_balances;');
      maxReadMs = Math.max(maxReadMs, Date.now() - t0);
      const n = parseInt(r.stdout.trim(), 10);
      if (r.sqlstate === '00000' && !Number.isNaN(n)) {
        reads++;
        minSeen = Math.min(minSeen, n);
      } else {
        failed[r.sqlstate] = (failed[r.sqlstate] || 0) + 1;
      }
      await sleep(20);
    }
    await session.close();
  })();
  const oldOid = await q("SELECT 'pj_balances'::regclass::oid");
  const r = await psql("CALL event_store_dynamo.rebuild_projection('pj_balances', 200)", inDb(DB, 'pj-rebuild'));
  reading = false;
  await reader;
  const newOid = await q("SELECT 'pj_balances'::regclass::oid");
  const sw = await q("SELECT extract(epoch FROM last_switch) * 1000 FROM event_store_dynamo.projections WHERE name = 'pj_balances'");
  control.paused = false;
  report.check('rebuild_projection completes while writers and catch_up calls go on', r.code === 0, r.stderr);
  report.check('the rebuild switched in new tables', oldOid !== newOid, { oldOid, newOid });
  report.check(`readers never saw an empty or partial read model during the rebuild (${reads} reads, ` +
               `never fewer than the ${before} rows before it)`, reads > 0 && minSeen >= before, { before, minSeen, reads });
  report.check('no read of the read model failed during the rebuild, none waited a second for a lock ' +
               '(lock_timeout 1s)', Object.keys(failed).length === 0, failed);
  report.check(`the switch held the read model's tables for under a second (${Number(sw).toFixed(1)} ms)`,
               sw !== '' && Number(sw) < 1000, { sw });
  report.note(`the longest read of the read model during the rebuild took ${maxReadMs} ms`);
  stats.rebuilt = true;
}

/* Polls the status view while the run goes on and collects the states it shows. */
async function watchStates(control, seen) {
  while (!control.stop) {
    const r = await psql('SELECT DISTINCT state FROM event_store_dynamo.projections', inDb(DB, 'pj-watch'));
    if (r.code === 0) for (const st of r.stdout.trim().split('\n')) if (st) seen.add(st);
    await sleep(100);
  }
}

async function status(name, db = DB) {
  return JSON.parse(await q(`SELECT row_to_json(p) FROM event_store_dynamo.projections p WHERE name = ${lit(name)}`, db));
}

/* catch_up until nothing is held and a full recheck has run after the last write became visible. */
async function finalCatchUp(writersDone) {
  const deadline = Date.now() + FINAL_TIMEOUT_MS;
  const needRecheckAfter = new Date(writersDone + INDEX_LAG_MS + 2000);
  while (Date.now() < deadline) {
    await psqlOk(`CALL event_store_dynamo.catch_up('pj_balances'); CALL event_store_dynamo.catch_up('pj_types');`,
                 inDb(DB, 'pj-final'));
    const a = await status('pj_balances');
    const b = await status('pj_types');
    const ok = [a, b].every((s) => s.events_held === 0 && s.state === 'idle' &&
                                   new Date(s.last_full_recheck) > needRecheckAfter);
    if (ok) return true;
    await sleep(1000);
  }
  return false;
}

async function compare() {
  const balancesDiff = await q(`
    WITH truth AS (
      SELECT identifier AS account,
             sum(CASE type WHEN 'withdrawn' THEN -1 ELSE 1 END * (payload->>'amount')::numeric) AS balance,
             count(*)::int AS events
        FROM pj_truth WHERE domain = 'account' GROUP BY identifier),
    model AS (SELECT account, balance, events FROM pj_balances)
    SELECT count(*) FROM ((SELECT * FROM truth EXCEPT SELECT * FROM model)
                          UNION ALL (SELECT * FROM model EXCEPT SELECT * FROM truth)) d`);
  const countsDiff = await q(`
    WITH truth AS (SELECT domain, type, count(*)::int AS n FROM pj_truth
                    WHERE type IN ('deposited', 'withdrawn') GROUP BY domain, type),
    model AS (SELECT domain, type, n FROM pj_type_counts)
    SELECT count(*) FROM ((SELECT * FROM truth EXCEPT SELECT * FROM model)
                          UNION ALL (SELECT * FROM model EXCEPT SELECT * FROM truth)) d`);
  const [events, accountEvents] = (await q(`SELECT count(*), count(*) FILTER (WHERE domain = 'account') FROM pj_truth`)).split('|');
  const [logged, distinct] = (await q('SELECT count(*), count(DISTINCT event_id) FROM pj_applied')).split('|');
  const violations = await q('SELECT coalesce(sum(order_violations), 0) FROM pj_balances');
  const ordered = await q(`SELECT count(*) FROM pj_balances b
                             JOIN (SELECT identifier, max(sequence) AS m FROM pj_truth WHERE domain = 'account'
                                    GROUP BY identifier) t ON t.identifier = b.account
                            WHERE b.last_sequence <> t.m`);
  report.check(`balances equal a full recompute from the ${events} events`, balancesDiff === '0', { balancesDiff });
  report.check('counts per domain and type equal a full recompute', countsDiff === '0', { countsDiff });
  report.check(`every account event applied exactly once (${logged} handler calls, ${distinct} ids, ` +
               `${accountEvents} events)`, logged === distinct && logged === accountEvents, { logged, distinct, accountEvents });
  report.check('each stream applied in sequence order (no violation, each ends at its last sequence)',
               violations === '0' && ordered === '0', { violations, ordered });
}

async function dumpAndRestore() {
  const file = path.join(os.tmpdir(), `pj-dump-${process.pid}.dump`);
  const bin = env.PGBIN || '';
  const tool = (name) => (bin ? path.join(bin, name) : name);
  execFileSync(tool('pg_dump'), ['-Fc', '-d', DB, '-f', file], { env: process.env, stdio: ['ignore', 'ignore', 'pipe'] });
  await psqlOk(`CREATE DATABASE ${RESTORE_DB}`, inDb('postgres'));
  execFileSync(tool('pg_restore'), ['-d', RESTORE_DB, '--exit-on-error', file], { env: process.env, stdio: ['ignore', 'ignore', 'pipe'] });
  fs.unlinkSync(file);
  const stateSql = `SELECT string_agg(format('%s:%s:%s:%s', name, events_applied, events_held, position_id), ',' ORDER BY name)
                      FROM event_store_dynamo.projections`;
  const seenSql = 'SELECT count(*) FROM event_store_dynamo.projection_seen';
  const a = await q(stateSql);
  const b = await q(stateSql, RESTORE_DB);
  const sa = await q(seenSql);
  const sb = await q(seenSql, RESTORE_DB);
  report.check('pg_dump / pg_restore keeps the projections and their state', a === b && sa === sb && sa !== '0',
               { a, b, sa, sb });
  const before = await q('SELECT sum(events) FROM pj_balances', RESTORE_DB);
  await psqlOk("CALL event_store_dynamo.catch_up('pj_balances')", inDb(RESTORE_DB));
  const after = await q('SELECT sum(events) FROM pj_balances', RESTORE_DB);
  report.check('a catch_up in the restored database applies nothing twice', before === after, { before, after });
}

/* Requests the catch_up calls send, counted by the front: at idle, and for 1,000 new events. */
async function measureCost(repo) {
  const perCall = async (calls) => {
    await faults({});
    for (let i = 0; i < calls; i++)
      await psqlOk("CALL event_store_dynamo.catch_up('pj_balances')", inDb(DB, 'pj-cost'));
    const c = await faults();
    return c.requests / calls;
  };
  const idle = await perCall(10);
  report.note(`cost at idle: ${idle.toFixed(1)} requests per catch_up call (the recent recheck and the main pass), ` +
              `so ${(idle * 60).toFixed(0)} requests per minute with a catch_up every second`);
  const full = await q(`SELECT count(*) FROM pj_truth`);
  const months = await q(`SELECT count(DISTINCT time_bucket) FROM pj_events`);
  await q('UPDATE event_store_dynamo.projection_run SET last_full_recheck = last_full_recheck - interval \'1 hour\'');
  const withFull = await perCall(1);
  report.note(`a catch_up with a full recheck: ${withFull} requests (${full} events over ${months} months; ` +
              `the walk reads start_month through 3 months ahead)`);
  const write = async (n, base) => {
    const events = [];
    for (let i = 0; i < n; i++)
      events.push({ id: uuid(), domain: 'account', identifier: `c${i % 50}`, type: 'deposited', payload: { amount: 1 },
                    created: new Date(base + i) });
    for (let i = 0; i < events.length; i += 100) await repo.storeEvents(events.slice(i, i + 100));
  };
  const measure = async (what) => {
    await faults({});
    const before = await status('pj_balances');
    await psqlOk("CALL event_store_dynamo.catch_up('pj_balances', 500)", inDb(DB, 'pj-cost'));
    const c = await faults();
    const after = await status('pj_balances');
    report.note(`cost of ${what}: ${c.requests} requests (${JSON.stringify(c.byTarget)}) for ` +
                `${after.events_applied - before.events_applied} events applied, ${after.late_applied - before.late_applied} of them late`);
  };
  // 1,000 events in created order, found by the main pass
  await write(1000, Date.now() - 1000);
  await sleep(2000);
  await measure('1,000 new events');
  // 100 events dated 30 s back, behind the position: found by the recheck, fetched by id
  await write(100, Date.now() - 30000);
  await sleep(500);
  await measure('100 late events');
}

async function main() {
  await faults({});
  await setUp();
  report.check('two projections created on a fresh store', true);
  const repo = await makeRepo({ prefix: PREFIX, bucket: BUCKET });
  await faults({ indexLagMs: INDEX_LAG_MS, throttle: 0.03, seed: SEED });

  const stats = {
    nodeEvents: 0, nodeErrors: [], sqlCommits: 0, sqlFailures: 0, catchUps: 0, catchUpErrors: {},
    terminated: 0, sigkills: 0, restarts: { fast: 0, immediate: 0 }, rebuilt: false,
  };
  const control = { stop: false, paused: false, killing: false };
  const states = new Set();
  const loops = [
    catchUpLoop('pj_balances', 1, control, stats), catchUpLoop('pj_balances', 2, control, stats),
    catchUpLoop('pj_types', 1, control, stats), catchUpLoop('pj_types', 2, control, stats),
    killer(control, stats), watchStates(control, states),
  ];
  const writers = [nodeWriter(repo, stats), sqlWriter(1, stats, prng(SEED + 1)), sqlWriter(2, stats, prng(SEED + 2))];
  await sleep(25000);
  await rebuildWhileReading(control, stats);
  await Promise.all(writers);
  const writersDone = Date.now();
  control.stop = true;
  await Promise.all(loops);
  await waitForServer();
  report.note(`writers: ${stats.nodeEvents} events from the Node adapter (${stats.nodeErrors.length} batches refused), ` +
              `${stats.sqlCommits} SQL commits (${stats.sqlFailures} failed: conflicts, kills)`);
  report.note(`catch_up: ${stats.catchUps} calls completed; ended by: ${JSON.stringify(stats.catchUpErrors)}; ` +
              `${stats.terminated} pg_terminate_backend, ${stats.sigkills} SIGKILL, ` +
              `server restarts: ${JSON.stringify(stats.restarts)}`);
  report.check('backends were killed mid-catch_up (pg_terminate_backend and SIGKILL)',
               stats.terminated > 0 && stats.sigkills > 0, stats);
  report.check('the server was restarted mid-catch_up, cleanly (pg_ctl restart -m fast) and after a crash (-m immediate)',
               stats.restarts.fast > 0 && stats.restarts.immediate > 0, stats.restarts);
  report.check('some catch_up calls were ended by statement_timeout',
               Object.keys(stats.catchUpErrors).some((k) => /statement timeout/.test(k)), stats.catchUpErrors);

  report.check(`the status view showed the projections running and rebuilding (${[...states].join(', ')})`,
               states.has('running') && states.has('rebuilding'), [...states]);

  const settled = await finalCatchUp(writersDone);
  report.check('catch_up settles: nothing held, a full recheck after the last write', settled,
               [await status('pj_balances'), await status('pj_types')]);
  const front = await faults();
  report.check(`the front hid new items from index Queries (${front.hidden} times)`, front.hidden > 0, front);
  await compare();
  const s = await status('pj_balances');
  report.note(`pj_balances: ${JSON.stringify(s)}`);
  report.check(`the safety net applied late events (late_applied ${s.late_applied}, held ${s.events_held}, ` +
               `gaps skipped ${s.gaps_skipped})`, s.late_applied > 0 && s.gaps_skipped === 0, s);

  await faults({});
  await dumpAndRestore();
  await measureCost(repo);
  await psql(`DROP DATABASE IF EXISTS ${RESTORE_DB}`, inDb('postgres'));
}

main()
  .catch((e) => report.check('the test ran to its end', false, e.stack || String(e)))
  .finally(async () => {
    await faults({}).catch(() => {});
    process.exit(report.finish());
  });
