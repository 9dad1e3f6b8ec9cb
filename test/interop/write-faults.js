// Writes under contention and injected faults, on a fresh store of its own (`wf-`, bucket `wf-events`):
//   1. Two psql sessions append to one stream at the same time (held at a gate, an advisory lock,
//      until both have buffered their events, then released together): one commit wins, the other
//      fails with SQLSTATE 40001 naming the stream and the versions, and none of its events exist,
//      not even those it appended to a stream of its own in the same transaction. Four rounds, on
//      new streams and on streams with events.
//   2. Through the fault-injecting front (throttling, 5xx, dropped connections at fixed seeded
//      rates; retries 10, backoff 5..50 ms), 60 seeded transactions of 1 to 150 events over 30
//      streams, some rolled back, some with savepoints rolled back or released, some with given
//      ids, three with an oversized event: every commit succeeds, every committed event then exists
//      exactly once with the sequence RETURNING gave it, sequences run 1..n in every stream and its
//      head says n, no event of a rollback exists (nor its S3 body), and the front's counters show
//      that every kind of fault happened.
//   3. Through a front of this script's own that lets DynamoDB apply every TransactWriteItems and
//      then drops the connection before the answer (the front of step 2 drops requests before they
//      are forwarded, so it never produces this case): the retry carries the same
//      ClientRequestToken and the same body, DynamoDB treats it as already done, and the commit
//      succeeds: no spurious 40001, no event twice.
// At the end the whole table is scanned with the AWS SDK: exactly the events and heads expected.
//
// Usage: node test/interop/write-faults.js   (needs PG*, DDB_URL, DDB_FAULT_URL, DDB_LOCAL_URL,
// S3_URL, AWS_TEST_*). Prints `ok - ...` / `not ok - ...` and `N passed, N failed`; exits 1 on failure.
'use strict';

const fs = require('fs');
const http = require('http');
const path = require('path');
const util = require('util');
const { ScanCommand } = require('@aws-sdk/client-dynamodb');
const { ListObjectsV2Command } = require('@aws-sdk/client-s3');
const { unmarshall } = require('@aws-sdk/util-dynamodb');
const { makeDynamoClient, makeS3Client, emptyBucket } = require('./adapter');
const { Report } = require('./report');
const { psql, openSession, lit } = require('./psql');

const PREFIX = 'wf-';
const TABLE = `${PREFIX}schemeless-event-store`;
const BUCKET = 'wf-events';
const SEED = 4242;
const FAULTS = { throttle: 0.2, error5xx: 0.05, drop: 0.02, seed: 11 };
const NO_FAULTS = { throttle: 0, error5xx: 0, drop: 0, seed: 11 };
const RETRY_OPTIONS = `max_retries '10', retry_base_ms '5', retry_cap_ms '50'`;
const TXNS = 60;
const FAULT_STREAMS = 30;
const GATE_TIMEOUT_MS = 20000;
const TXN_TIMEOUT_MS = 300000;
const BIG = 360000;            // characters of padding that push an event over the offload threshold

const env = process.env;
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/* mulberry32: a small PRNG with a fixed sequence for a fixed seed. */
const { prng } = require('../data/interop'); // the seeded generator the seed data uses
const rnd = prng(SEED);
const int = (lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1));
const pick = (arr) => arr[Math.floor(rnd() * arr.length)];
const hex = (n) => Array.from({ length: n }, () => '0123456789abcdef'[int(0, 15)]).join('');
const uuid = () => `${hex(8)}-${hex(4)}-4${hex(3)}-${pick(['8', '9', 'a', 'b'])}${hex(3)}-${hex(12)}`;

const streamKey = (domain, identifier) => `${domain}::${identifier === null || identifier === undefined ? '' : identifier}`;
const jsonb = (v) => (v === null || v === undefined ? 'NULL' : `${lit(JSON.stringify(v))}::jsonb`);
const text = (v) => (v === null || v === undefined ? 'NULL' : lit(v));
const RETURN_JSON = `RETURNING json_build_object('id', id, 'sequence', sequence, 'tag', payload->>'tag')`;

/*
 * What the store must hold when the script ends: every committed event (id -> { stream,
 * sequence, tag }), the version of every stream, and the ids that must not exist.
 */
const store = {
  events: new Map(),
  versions: new Map(),
  absent: new Map(),          // id -> why it must not exist
  offloaded: new Set(),       // ids whose S3 body must exist
  notOffloaded: new Set(),    // ids whose S3 body must not exist
  version(key) {
    return this.versions.get(key) || 0;
  },
};

/* Parses the JSON lines psql printed. */
function jsonLines(stdout) {
  return stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
}

function setupSql(dropUrl) {
  const mapping = (server) => `CREATE USER MAPPING FOR CURRENT_USER SERVER ${server} OPTIONS (
  access_key_id ${lit(env.AWS_TEST_ACCESS_KEY_ID || 'S3RVER')},
  secret_access_key ${lit(env.AWS_TEST_SECRET_ACCESS_KEY || 'S3RVER')});`;
  const common = `region ${lit(env.AWS_TEST_REGION || 'us-east-1')}, s3_endpoint ${lit(env.S3_URL)}, s3_force_path_style 'true'`;
  const cols = `id text, domain text, type text, identifier text, sequence bigint, payload jsonb, meta jsonb,
  created timestamptz, s3_reference text`;
  const opts = `table_name_prefix ${lit(PREFIX)}, s3_bucket ${lit(BUCKET)}`;
  return `
CREATE EXTENSION IF NOT EXISTS event_store_dynamo;
DROP SERVER IF EXISTS wf_srv CASCADE;
DROP SERVER IF EXISTS wf_fault_srv CASCADE;
DROP SERVER IF EXISTS wf_drop_srv CASCADE;
DROP SCHEMA IF EXISTS wf CASCADE;
CREATE SCHEMA wf;
CREATE SERVER wf_srv FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (${common}, endpoint ${lit(env.DDB_URL)});
${mapping('wf_srv')}
CREATE SERVER wf_fault_srv FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (${common},
  endpoint ${lit(env.DDB_FAULT_URL)}, ${RETRY_OPTIONS});
${mapping('wf_fault_srv')}
CREATE SERVER wf_drop_srv FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (${common},
  endpoint ${lit(dropUrl)}, ${RETRY_OPTIONS});
${mapping('wf_drop_srv')}
CREATE FOREIGN TABLE wf.events (${cols}) SERVER wf_srv OPTIONS (${opts});
CREATE FOREIGN TABLE wf.events_faulty (${cols}) SERVER wf_fault_srv OPTIONS (${opts});
CREATE FOREIGN TABLE wf.events_dropped (${cols}) SERVER wf_drop_srv OPTIONS (${opts});
SELECT event_store_dynamo.reset_store('wf.events');
`;
}

/* GET or POST the fault front's control endpoint; returns the counters. */
async function faultControl(body) {
  const res = await fetch(`${env.DDB_FAULT_URL}/__faults`, body === undefined ? {} : {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  });
  const t = await res.text();
  if (!res.ok)
    throw new Error(`fault front answered ${res.status}: ${t}`);
  return JSON.parse(t);
}

// --- 1. two sessions, one stream ---------------------------------------------------------------

/* Waits (bounded) until `n` sessions of `apps` wait for an advisory lock. */
async function waitForGate(apps, n) {
  const deadline = Date.now() + GATE_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const r = await psql(`SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
      WHERE l.locktype = 'advisory' AND NOT l.granted AND a.application_name IN (${apps.map(lit).join(', ')});`, { timeoutMs: 10000 });
    if (r.code === 0 && Number(r.stdout.trim()) >= n)
      return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return false;
}

async function raceRound(report, round, prior) {
  const label = `race ${round + 1} (${prior ? `stream at version ${prior}` : 'new stream'})`;
  const shared = `shared-${round}`;
  const sharedKey = streamKey('race', shared);
  const gate = 57000 + round;
  if (prior > 0) {
    const ids = Array.from({ length: prior }, () => uuid());
    const r = await psql(`INSERT INTO wf.events (id, domain, type, identifier, payload) VALUES
      ${ids.map((id, k) => `(${lit(id)}, 'race', 'before', ${lit(shared)}, ${jsonb({ tag: `before-${k}` })})`).join(', ')};`);
    if (!report.check(`${label}: ${prior} events appended first`, r.code === 0, r.stderr.trim()))
      return;
    ids.forEach((id, k) => store.events.set(id, { key: sharedKey, sequence: k + 1, tag: `before-${k}` }));
    store.versions.set(sharedKey, prior);
  }

  const tag = `${process.pid}-${round}`;
  const names = ['A', 'B'];
  const sessions = {};
  const ctl = openSession({ env: { PGAPPNAME: `wf-gate-${tag}` }, timeoutMs: 60000 });
  try {
    await ctl.run(`SELECT pg_advisory_lock(${gate});`);
    const plans = {};
    for (const who of names) {
      sessions[who] = openSession({ env: { PGAPPNAME: `wf-race-${who}-${tag}` }, timeoutMs: 60000 });
      plans[who] = [
        { id: uuid(), identifier: shared, tag: `${who}-1` },
        { id: uuid(), identifier: `own-${who}-${round}`, tag: `${who}-own` },
        { id: uuid(), identifier: shared, tag: `${who}-2` },
      ];
      const r = await sessions[who].run(`BEGIN;
INSERT INTO wf.events (id, domain, type, identifier, payload) VALUES
  ${plans[who].map((p) => `(${lit(p.id)}, 'race', ${lit(who)}, ${lit(p.identifier)}, ${jsonb({ tag: p.tag })})`).join(',\n  ')}
  ${RETURN_JSON};`);
      const seqs = jsonLines(r.stdout).map((x) => x.sequence);
      report.check(`${label}: session ${who} buffers its events at sequences ${prior + 1}, 1, ${prior + 2}`,
        r.sqlstate === '00000' && util.isDeepStrictEqual(seqs, [prior + 1, 1, prior + 2]), r.stderr.trim() || `got ${seqs}`);
    }
    // both commit as soon as the gate opens
    const commits = names.map((who) => sessions[who].run(`SELECT pg_advisory_xact_lock_shared(${gate});\nCOMMIT;`));
    const waiting = await waitForGate(names.map((who) => `wf-race-${who}-${tag}`), 2);
    report.check(`${label}: both sessions wait at the gate before COMMIT`, waiting);
    await ctl.run(`SELECT pg_advisory_unlock(${gate});`);
    const results = await Promise.all(commits);
    const outcome = Object.fromEntries(names.map((who, i) => [who, results[i]]));
    const winners = names.filter((who) => outcome[who].sqlstate === '00000');
    const losers = names.filter((who) => outcome[who].sqlstate === '40001');
    const summary = names.map((who) => `${who}: ${outcome[who].sqlstate} ${outcome[who].stderr.trim()}`).join('\n');
    report.check(`${label}: one commit wins, the other fails with 40001`, winners.length === 1 && losers.length === 1, summary);
    report.note(`${label}: ${summary.replace(/\n/g, ' | ')}`);
    if (winners.length !== 1 || losers.length !== 1) {
      // whatever happened, record what committed so that the final scan knows
      for (const who of winners)
        recordRaceEvents(plans[who], prior, sharedKey);
      for (const who of names.filter((w) => !winners.includes(w)))
        plans[who].forEach((p) => store.absent.set(p.id, `${label}: session ${who} did not commit`));
      return;
    }
    const [winner] = winners;
    const [loser] = losers;
    const msg = outcome[loser].stderr;
    report.check(`${label}: the error names the stream, the expected and the found version`,
      msg.includes(`concurrent append to stream "${sharedKey}" of table "${TABLE}": expected version ${prior}, found ${prior + 2}`), msg.trim());
    recordRaceEvents(plans[winner], prior, sharedKey);
    plans[loser].forEach((p) => store.absent.set(p.id, `${label}: the losing session ${loser}`));

    const r = await psql(`SELECT json_build_object('id', id, 'identifier', identifier, 'sequence', sequence, 'tag', payload->>'tag')
      FROM wf.events WHERE domain = 'race' AND identifier IN (${lit(shared)}, ${lit(`own-A-${round}`)}, ${lit(`own-B-${round}`)});
      SELECT json_build_object('loserOwn', event_store_dynamo.stream_version('wf.events', 'race', ${lit(`own-${loser}-${round}`)}),
        'shared', event_store_dynamo.stream_version('wf.events', 'race', ${lit(shared)}));`);
    const rows = jsonLines(r.stdout);
    const events = rows.filter((x) => x.id).sort((a, b) => (a.identifier + a.sequence).localeCompare(b.identifier + b.sequence));
    const versions = rows.find((x) => x.loserOwn !== undefined) || {};
    const loserIds = new Set(plans[loser].map((p) => p.id));
    const sharedSeqs = events.filter((x) => x.identifier === shared).map((x) => x.sequence).sort((a, b) => a - b);
    report.check(`${label}: none of the loser's events exist, not even on its own stream, whose head was never written`,
      r.code === 0 && events.every((x) => !loserIds.has(x.id)) && versions.loserOwn === 0, r.stderr.trim() || { events, versions });
    report.check(`${label}: the winner's events are there, the shared stream runs 1..${prior + 2} and its head says ${prior + 2}`,
      r.code === 0 && plans[winner].every((p) => events.some((x) => x.id === p.id)) &&
      util.isDeepStrictEqual(sharedSeqs, Array.from({ length: prior + 2 }, (_, k) => k + 1)) && versions.shared === prior + 2,
      r.stderr.trim() || { query: `WHERE domain = 'race' AND identifier IN (${lit(shared)}, ...) gave`, events, versions });
  } finally {
    await Promise.all([ctl, ...Object.values(sessions)].map((s) => s.close()));
  }
}

function recordRaceEvents(plan, prior, sharedKey) {
  let next = prior;
  for (const p of plan) {
    const key = streamKey('race', p.identifier);
    const sequence = key === sharedKey ? ++next : 1;
    store.events.set(p.id, { key, sequence, tag: p.tag });
    store.versions.set(key, Math.max(store.version(key), sequence));
  }
}

// --- 2. many transactions under faults ---------------------------------------------------------

/*
 * The plan of one transaction: statements of events (each with a stream and a tag), some inside
 * savepoints that are rolled back or released, and whether it commits.
 */
function planTransaction(i, streams) {
  const commit = rnd() >= 0.12;
  const total = rnd() < 0.25 ? int(100, 150) : int(1, 60);
  const mine = Array.from({ length: int(1, 5) }, () => pick(streams));
  const givenIds = i % 5 === 0;
  const statements = [];
  let n = 0;
  while (n < total) {
    const size = Math.min(total - n, int(1, 60));
    const savepoint = statements.length > 0 && rnd() < 0.3 ? (rnd() < 0.6 ? 'rollback' : 'release') : null;
    const events = Array.from({ length: size }, () => {
      const identifier = pick(mine);
      return { identifier, tag: `t${i}-e${n++}`, id: givenIds ? uuid() : null, big: false };
    });
    statements.push({ savepoint, events });
  }
  return { i, commit, statements };
}

function transactionSql(plan) {
  const lines = ['BEGIN;'];
  plan.statements.forEach((st, k) => {
    if (st.savepoint)
      lines.push(`SAVEPOINT s${k};`);
    const rows = st.events.map((e) => {
      const payload = { tag: e.tag, tx: plan.i, fate: e.fate, pad: e.big ? 'y'.repeat(BIG) : 'x'.repeat(e.tag.length * 3) };
      return `(${text(e.id)}, 'fault', 'step', ${text(e.identifier)}, ${jsonb(payload)}, ${jsonb({ tx: plan.i })})`;
    });
    lines.push(`INSERT INTO wf.events_faulty (id, domain, type, identifier, payload, meta) VALUES\n  ${rows.join(',\n  ')}\n  ${RETURN_JSON};`);
    if (st.savepoint === 'rollback')
      lines.push(`ROLLBACK TO SAVEPOINT s${k};`);
    else if (st.savepoint === 'release')
      lines.push(`RELEASE SAVEPOINT s${k};`);
  });
  lines.push(plan.commit ? 'COMMIT;' : 'ROLLBACK;');
  return lines.join('\n');
}

async function faultTransactions(report) {
  const streams = Array.from({ length: FAULT_STREAMS - 1 }, (_, k) => `s${String(k).padStart(2, '0')}`).concat([null]);
  const plans = Array.from({ length: TXNS }, (_, i) => planTransaction(i, streams));
  // each event's fate; three oversized events: committed, in a rolled-back savepoint, in a rollback
  for (const p of plans)
    for (const st of p.statements)
      for (const e of st.events)
        e.fate = !p.commit ? 'rolled-back' : st.savepoint === 'rollback' ? 'savepoint-rolled-back' : 'kept';
  const all = plans.flatMap((p) => p.statements.flatMap((st) => st.events));
  for (const fate of ['kept', 'savepoint-rolled-back', 'rolled-back']) {
    const e = all.find((x) => x.fate === fate);
    if (e) {
      e.big = true;
      e.id = e.id || uuid();
      (fate === 'kept' ? store.offloaded : store.notOffloaded).add(e.id);
    }
  }
  const nEvents = all.length;
  const nKept = all.filter((e) => e.fate === 'kept').length;
  report.note(`plan: ${TXNS} transactions (${plans.filter((p) => !p.commit).length} rolled back, ` +
    `${plans.filter((p) => p.statements.some((s) => s.savepoint === 'rollback')).length} with a savepoint rolled back), ` +
    `${nEvents} events of which ${nKept} are meant to stay`);

  const logFile = env.RUN_DIR ? path.join(env.RUN_DIR, 'stack.log') : null;
  const logStart = logSize(logFile);
  try {
    await faultControl(FAULTS);
  } catch (e) {
    report.check(`fault front accepts ${JSON.stringify(FAULTS)}`, false, e.message);
    return;
  }
  const failures = [];
  const seqProblems = [];
  const started = Date.now();
  let counters;
  try {
    for (const plan of plans) {
      // the sequence every event must get: from the committed versions, savepoints giving theirs back
      const local = new Map();
      for (const st of plan.statements) {
        const saved = new Map(local);
        for (const e of st.events) {
          const key = streamKey('fault', e.identifier);
          const next = (local.has(key) ? local.get(key) : store.version(key)) + 1;
          local.set(key, next);
          e.key = key;
          e.sequence = next;
        }
        if (st.savepoint === 'rollback') {
          local.clear();
          saved.forEach((v, k) => local.set(k, v));
        }
      }
      const r = await psql(transactionSql(plan), { timeoutMs: TXN_TIMEOUT_MS });
      const byTag = new Map(jsonLines(r.stdout).map((x) => [x.tag, x]));
      const events = plan.statements.flatMap((st) => st.events);
      for (const e of events) {
        const got = byTag.get(e.tag);
        if (got && e.id === null)
          e.id = got.id;
        if (got && (got.sequence !== e.sequence || got.id !== e.id || !UUID_V4.test(got.id)))
          seqProblems.push(`tx ${plan.i} ${e.tag}: RETURNING ${JSON.stringify(got)}, expected id ${e.id} sequence ${e.sequence}`);
      }
      if (r.code !== 0 || r.timedOut) {
        failures.push(`tx ${plan.i} (${events.length} events, ${plan.commit ? 'COMMIT' : 'ROLLBACK'}): ${r.timedOut ? 'timed out' : r.stderr.trim()}`);
        for (const e of events)
          if (e.id)
            store.absent.set(e.id, `tx ${plan.i} failed`);
        continue;
      }
      for (const e of events) {
        if (e.fate === 'kept') {
          store.events.set(e.id, { key: e.key, sequence: e.sequence, tag: e.tag });
          store.versions.set(e.key, Math.max(store.version(e.key), e.sequence));
        } else {
          store.absent.set(e.id, `${e.fate} in tx ${plan.i}`);
        }
      }
    }
  } finally {
    counters = await faultControl().catch((e) => ({ error: e.message }));
    await faultControl(NO_FAULTS).catch(() => {});
  }
  report.note(`${TXNS} transactions through the fault front took ${Date.now() - started} ms; counters ${JSON.stringify(counters)}`);
  report.check(`under faults: all ${plans.filter((p) => p.commit).length} commits and ${plans.filter((p) => !p.commit).length} rollbacks succeed`,
    failures.length === 0, failures.slice(0, 5).join('\n'));
  report.check('under faults: RETURNING gives every event its id and the sequence expected (savepoint rollbacks give theirs back)',
    seqProblems.length === 0, seqProblems.slice(0, 5).join('\n'));
  const spurious = failures.filter((f) => /40001|concurrent append|cancelled/.test(f));
  if (spurious.length > 0)
    report.note(`SPURIOUS CONFLICTS under faults (no other writer touched these streams): ${spurious.join(' | ')}`);
  const ok = counters && !counters.error;
  for (const kind of ['throttle', 'error5xx', 'drop'])
    report.check(`the front injected ${kind} faults (${ok ? counters[kind] : '?'})`, ok && counters[kind] > 0,
      ok ? JSON.stringify(counters) : counters.error);
  const tw = ok ? counters.byTarget['DynamoDB_20120810.TransactWriteItems'] || 0 : 0;
  report.check(`the writes went through the front (${tw} TransactWriteItems requests)`, tw > 0, JSON.stringify(counters));
  // The counters do not say which requests were faulted; the stack's log does, a line per fault.
  const onCommits = commitFaults(logFile, logStart);
  if (onCommits === null)
    report.note('the stack log (RUN_DIR/stack.log) is not readable here: faults per request type not counted');
  else
    report.check(`faults hit the commits themselves: TransactWriteItems throttled ${onCommits.throttle}, ` +
      `5xx ${onCommits.error5xx}, dropped ${onCommits.drop} times`, onCommits.throttle + onCommits.error5xx + onCommits.drop > 0);
}

function logSize(file) {
  try {
    return file ? fs.statSync(file).size : null;
  } catch (e) {
    return null;
  }
}

/* Faults the front logged for TransactWriteItems since `start` bytes into its log, by kind; null when unknown. */
function commitFaults(file, start) {
  if (file === null || start === null)
    return null;
  let textAfter;
  try {
    const buf = fs.readFileSync(file);
    textAfter = buf.subarray(start).toString('utf8');
  } catch (e) {
    return null;
  }
  const out = { throttle: 0, error5xx: 0, drop: 0 };
  for (const line of textAfter.split('\n')) {
    let m = /fault front: drop DynamoDB_20120810\.TransactWriteItems$/.exec(line);
    if (m) {
      out.drop++;
      continue;
    }
    m = /fault front: (\d{3}) \S+ for DynamoDB_20120810\.TransactWriteItems$/.exec(line);
    if (m)
      out[m[1] === '400' ? 'throttle' : 'error5xx']++;
  }
  return out;
}

// --- 3. applied, then dropped ------------------------------------------------------------------

/*
 * A front before DDB_URL that forwards every request, and for each TransactWriteItems whose
 * ClientRequestToken it has not seen yet, waits for DynamoDB's answer and then closes the
 * connection without passing it on. Later tries with the same token go through. Records, per
 * token, the body and the status of every try.
 */
function startApplyThenDropFront() {
  const upstream = new URL(env.DDB_URL);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const tokens = new Map();
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const target = req.headers['x-amz-target'] || '';
      let token = null;
      if (target.endsWith('.TransactWriteItems')) {
        try {
          token = JSON.parse(body.toString('utf8')).ClientRequestToken || '(none)';
        } catch (e) {
          token = '(unparsable body)';
        }
      }
      const record = token === null ? null : (tokens.get(token) || { tries: [] });
      if (record)
        tokens.set(token, record);
      const drop = record !== null && record.tries.length === 0;
      const up = http.request({
        host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers, agent,
      }, (upRes) => {
        const out = [];
        upRes.on('data', (c) => out.push(c));
        upRes.on('end', () => {
          const answer = Buffer.concat(out);
          if (record)
            record.tries.push({ body: body.toString('utf8'), status: upRes.statusCode, dropped: drop, answer: answer.toString('utf8').slice(0, 300) });
          if (drop) {
            req.socket.destroy();
            return;
          }
          res.writeHead(upRes.statusCode, upRes.headers);
          res.end(answer);
        });
      });
      up.on('error', (e) => {
        if (!res.headersSent) {
          res.writeHead(502);
          res.end(String(e));
        }
      });
      up.end(body);
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({
      url: `http://127.0.0.1:${server.address().port}`, tokens,
      close: () => new Promise((r) => { agent.destroy(); server.close(() => r()); server.closeAllConnections(); }),
    }));
  });
}

async function appliedThenDropped(report, front) {
  // single event; several streams in one DynamoDB transaction; 260 events (three or more
  // transactions, sent in waves); given ids (looked up first); a stream that already has events
  const cases = [
    { name: 'one event', streams: ['d1'], n: 1 },
    { name: '30 events over 3 streams', streams: ['d2', 'd3', 'd4'], n: 30 },
    { name: '260 events over 2 streams', streams: ['d5', 'd6'], n: 260 },
    { name: '20 events with given ids', streams: ['d7'], n: 20, givenIds: true },
    { name: '10 more events on a stream with events', streams: ['d1'], n: 10 },
  ];
  const problems = [];
  for (const c of cases) {
    const events = Array.from({ length: c.n }, (_, k) => {
      const identifier = c.streams[k % c.streams.length];
      return { identifier, key: streamKey('dropped', identifier), tag: `${c.name}#${k}`, id: c.givenIds ? uuid() : null };
    });
    const expectSeq = new Map();
    for (const e of events) {
      const next = (expectSeq.has(e.key) ? expectSeq.get(e.key) : store.version(e.key)) + 1;
      expectSeq.set(e.key, next);
      e.sequence = next;
    }
    const before = new Set(front.tokens.keys());
    const r = await psql(`BEGIN;
INSERT INTO wf.events_dropped (id, domain, type, identifier, payload) VALUES
  ${events.map((e) => `(${text(e.id)}, 'dropped', 'step', ${lit(e.identifier)}, ${jsonb({ tag: e.tag })})`).join(',\n  ')}
  ${RETURN_JSON};
COMMIT;`, { timeoutMs: TXN_TIMEOUT_MS });
    const byTag = new Map(jsonLines(r.stdout).map((x) => [x.tag, x]));
    for (const e of events) {
      const got = byTag.get(e.tag);
      if (got && e.id === null)
        e.id = got.id;
    }
    const tokens = [...front.tokens.entries()].filter(([t]) => !before.has(t));
    const committed = r.code === 0 && !r.timedOut;
    report.check(`applied-then-dropped, ${c.name}: the commit succeeds (no spurious conflict)`, committed, r.timedOut ? 'timed out' : r.stderr.trim());
    if (!committed && /40001|concurrent append|duplicate event id/.test(r.stderr))
      report.note(`SPURIOUS CONFLICT after a dropped but applied TransactWriteItems (${c.name}): ${r.stderr.trim()}`);
    if (committed) {
      for (const e of events) {
        store.events.set(e.id, { key: e.key, sequence: e.sequence, tag: e.tag });
        store.versions.set(e.key, Math.max(store.version(e.key), e.sequence));
      }
    } else {
      // the data decides: what DynamoDB holds is checked by the final scan against what was meant
      for (const e of events)
        if (e.id)
          store.events.set(e.id, { key: e.key, sequence: e.sequence, tag: e.tag, uncertain: true });
    }
    for (const [token, rec] of tokens) {
      const [first, ...rest] = rec.tries;
      if (!UUID_V4.test(token) && token.length < 16)
        problems.push(`${c.name}: token ${token} looks wrong`);
      if (!first || first.status !== 200 || !first.dropped)
        problems.push(`${c.name}: token ${token}: first try ${first ? `answered ${first.status}` : 'missing'}: ${first && first.answer}`);
      if (rest.length === 0)
        problems.push(`${c.name}: token ${token}: dropped after DynamoDB applied it, never retried`);
      for (const t of rest)
        if (t.body !== first.body || t.status !== 200)
          problems.push(`${c.name}: token ${token}: retry ${t.body === first.body ? 'same body' : 'with another body'}, answered ${t.status}: ${t.answer}`);
    }
    if (tokens.length === 0)
      problems.push(`${c.name}: no TransactWriteItems reached the front`);
    report.note(`applied-then-dropped, ${c.name}: ${tokens.length} DynamoDB transaction(s), tries ${tokens.map(([, rec]) => rec.tries.length).join(', ')}`);
  }
  report.check('applied-then-dropped: each TransactWriteItems was applied, its answer dropped, and retried with the same token and body, answered 200',
    problems.length === 0, problems.slice(0, 6).join('\n'));
}

// --- the final scan ----------------------------------------------------------------------------

async function scanAll(ddb) {
  const items = [];
  let key;
  do {
    const page = await ddb.send(new ScanCommand({ TableName: TABLE, ExclusiveStartKey: key, ConsistentRead: true }));
    items.push(...page.Items);
    key = page.LastEvaluatedKey;
  } while (key);
  return items;
}

async function finalScan(report) {
  const ddb = makeDynamoClient();
  let items;
  try {
    items = await scanAll(ddb);
  } catch (e) {
    report.check(`scan ${TABLE}`, false, e.message);
    return;
  }
  const events = items.filter((it) => it.created.S !== 'HEAD').map((it) => unmarshall(it));
  const heads = new Map(items.filter((it) => it.created.S === 'HEAD').map((it) => [it.id.S.replace(/^EventID#HEAD::/, ''), Number(it.version.N)]));
  const count = new Map();
  for (const e of events)
    count.set(e.id, (count.get(e.id) || 0) + 1);

  const missing = [];
  const wrong = [];
  for (const [id, want] of store.events) {
    const n = count.get('EventID#' + id) || 0;
    if (n !== 1) {
      missing.push(`${id} (${want.tag}${want.uncertain ? ', commit failed' : ''}): ${n} items`);
      continue;
    }
    const got = events.find((e) => e.id === 'EventID#' + id);
    const tag = got.payload ? JSON.parse(got.payload).tag : null;
    if (streamKey(got.domain, got.identifier) !== want.key || got.sequence !== want.sequence || (tag !== null && tag !== want.tag))
      wrong.push(`${id}: ${got.domain}::${got.identifier} #${got.sequence} tag ${tag}, expected ${want.key} #${want.sequence} ${want.tag}`);
  }
  report.check(`every one of the ${store.events.size} committed events exists exactly once`, missing.length === 0,
    missing.slice(0, 6).join('\n'));
  report.check('... in its stream, at the sequence RETURNING gave it', wrong.length === 0, wrong.slice(0, 6).join('\n'));

  const present = store.absent.size - [...store.absent.keys()].filter((id) => !count.has('EventID#' + id)).length;
  report.check(`none of the ${store.absent.size} events of rollbacks, rolled-back savepoints and losing sessions exists`,
    present === 0, [...store.absent].filter(([id]) => count.has('EventID#' + id)).slice(0, 6).map(([id, why]) => `${id}: ${why}`).join('\n'));
  const unknown = events.filter((e) => !store.events.has(e.id.replace(/^EventID#/, '')));
  report.check(`no other event in ${TABLE} (${events.length} items, ${store.events.size} expected)`, unknown.length === 0,
    unknown.slice(0, 5).map((e) => `${e.id} ${e.domain}::${e.identifier} #${e.sequence} ${String(e.payload).slice(0, 80)}`).join('\n'));
  const fates = events.filter((e) => e.payload && /"fate":"(rolled-back|savepoint-rolled-back)"/.test(e.payload));
  report.check('no stored payload belongs to a rolled-back statement or transaction', fates.length === 0,
    fates.slice(0, 3).map((e) => e.id).join(', '));

  // sequences 1..n per stream, heads = n
  const byStream = new Map();
  for (const e of events) {
    const key = streamKey(e.domain, e.identifier);
    (byStream.get(key) || byStream.set(key, []).get(key)).push(e.sequence);
  }
  const seqProblems = [];
  for (const [key, version] of store.versions) {
    const seqs = (byStream.get(key) || []).sort((a, b) => a - b);
    const contiguous = seqs.length === version && seqs.every((s, k) => s === k + 1);
    if (!contiguous || heads.get(key) !== version)
      seqProblems.push(`${key}: sequences ${seqs.length > 12 ? `${seqs.slice(0, 6)}...${seqs.slice(-3)} (${seqs.length})` : seqs}, head ${heads.get(key)}, expected 1..${version}`);
  }
  for (const key of heads.keys())
    if (!store.versions.has(key))
      seqProblems.push(`${key}: a head (version ${heads.get(key)}) for a stream that should have no events`);
  report.check(`all ${store.versions.size} streams: sequences contiguous 1..n, the head's version = n, no other head`,
    seqProblems.length === 0, seqProblems.slice(0, 6).join('\n'));

  // stream_version through SQL agrees with the heads
  const keys = [...store.versions.keys()];
  const r = await psql(`SELECT json_build_object('key', k, 'v', event_store_dynamo.stream_version('wf.events', split_part(k, '::', 1), nullif(split_part(k, '::', 2), '')))
    FROM unnest(ARRAY[${keys.map(lit).join(', ')}]::text[]) AS k;`, { timeoutMs: 120000 });
  const sv = jsonLines(r.stdout);
  const svBad = sv.filter((x) => x.v !== store.versions.get(x.key));
  report.check('stream_version agrees for every stream', r.code === 0 && sv.length === keys.length && svBad.length === 0,
    r.stderr.trim() || svBad.slice(0, 5).map((x) => `${x.key}: ${x.v}, expected ${store.versions.get(x.key)}`).join('\n'));

  // S3: the committed oversized event's body exists, the rolled-back ones' do not
  try {
    const list = await makeS3Client().send(new ListObjectsV2Command({ Bucket: BUCKET }));
    const keysInBucket = new Set((list.Contents || []).map((o) => o.Key));
    const want = [...store.offloaded].map((id) => `events/${id}.json`);
    const unwanted = [...store.notOffloaded].map((id) => `events/${id}.json`);
    report.check(`S3: the body of the committed oversized event is stored, those of the ${unwanted.length} rolled back are not, nothing else`,
      want.length === 1 && want.every((k) => keysInBucket.has(k)) && unwanted.every((k) => !keysInBucket.has(k)) && keysInBucket.size === want.length,
      `bucket holds ${[...keysInBucket].join(', ') || 'nothing'}; wanted ${want.join(', ')}`);
  } catch (e) {
    report.check(`S3: list bucket ${BUCKET}`, false, e.message);
  }
}

async function main() {
  const report = new Report();
  for (const name of ['DDB_URL', 'DDB_FAULT_URL', 'S3_URL'])
    if (!env[name]) {
      report.check(`${name} is set`, false);
      return report.finish();
    }
  const front = await startApplyThenDropFront();
  try {
    const setup = await psql(setupSql(front.url), { timeoutMs: 120000 });
    if (!report.check('create the servers, foreign tables and a fresh store (reset_store)', setup.code === 0 && !setup.timedOut,
      setup.stderr.trim() || `psql exited with ${setup.code}`))
      return report.finish();
    await emptyBucket(makeS3Client(), BUCKET);

    for (const [round, prior] of [[0, 0], [1, 0], [2, 3], [3, 5]])
      await raceRound(report, round, prior);
    await faultTransactions(report);
    await appliedThenDropped(report, front);
    await finalScan(report);
  } finally {
    await front.close();
  }
  return report.finish();
}

main().then((status) => process.exit(status), (e) => {
  console.log(`not ok - write-faults.js ran to the end\n    ${e.stack}`);
  process.exit(1);
});
