// Fault tests: the extension under a misbehaving DynamoDB.
//   1. Through the fault-injecting front (throttling, 5xx, dropped connections at fixed seeded
//      rates, and BatchGetItems answered in part with UnprocessedKeys), a full replay of the INTEROP store still returns every event exactly once, in
//      created order, with the right sequences and payloads, and the front's counters prove that
//      every kind of fault was actually injected.
//   2. Against the front that never answers (and a 10-minute request timeout, so that nothing but
//      the cancel can end the wait), pg_cancel_backend stops the query, and statement_timeout =
//      500ms ends it, each within a second of what PostgreSQL's own pg_sleep takes to stop the
//      same way, measured just before (so that a loaded machine slows both alike).
//
// Usage: node test/interop/faults.js   (after seed.js; needs PG*, DDB_FAULT_URL, DDB_HANG_URL,
// S3_URL, AWS_TEST_*). Prints `ok - ...` / `not ok - ...` and `N passed, N failed`; exits 1 on failure.
'use strict';

const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { Report, diffRecords } = require('./report');
const { psql, startPsql, lit } = require('./psql');
const { TABLE_OPTIONS } = require('./read');

const EXPECTED_FILE = path.join(__dirname, '..', '.stack', 'run', 'interop-expected.json');
// and a third of the BatchGetItems that get through answered in part (UnprocessedKeys)
const FAULTS = { throttle: 0.2, error5xx: 0.05, drop: 0.02, unprocessed: 0.33, unprocessedShare: 0.5, seed: 7 };
const NO_FAULTS = { throttle: 0, error5xx: 0, drop: 0, seed: 7 };
const REPLAY_TIMEOUT_MS = 300000;
const READY_TIMEOUT_MS = 10000;      // for the hanging query to show up as waiting
// the extension stops a wait on a cancel or statement_timeout within a second more than
// pg_sleep(600) needs to stop the same way
const PROMPT_MARGIN_MS = 1000;
const HANG_APP = `interop-hang-${process.pid}`;
const SLEEP_APP = `interop-sleep-${process.pid}`;

const env = process.env;
const CREATED_ISO = `to_char(created AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

function setupSql() {
  const mapping = (server) => `CREATE USER MAPPING FOR CURRENT_USER SERVER ${server} OPTIONS (
  access_key_id ${lit(env.AWS_TEST_ACCESS_KEY_ID || 'S3RVER')},
  secret_access_key ${lit(env.AWS_TEST_SECRET_ACCESS_KEY || 'S3RVER')});`;
  const common = `region ${lit(env.AWS_TEST_REGION || 'us-east-1')}, s3_endpoint ${lit(env.S3_URL)},
  s3_force_path_style 'true'`;
  return `
CREATE EXTENSION IF NOT EXISTS event_store_dynamo;
DROP SERVER IF EXISTS interop_fault_srv CASCADE;
DROP SERVER IF EXISTS interop_hang_srv CASCADE;
CREATE SCHEMA IF NOT EXISTS interop;
CREATE SERVER interop_fault_srv FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (${common},
  endpoint ${lit(env.DDB_FAULT_URL)}, max_retries '10', retry_base_ms '5', retry_cap_ms '50');
${mapping('interop_fault_srv')}
CREATE FOREIGN TABLE interop.events_faulty (id text, created timestamptz, sequence bigint, payload json)
  SERVER interop_fault_srv OPTIONS (${TABLE_OPTIONS});
CREATE SERVER interop_hang_srv FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (${common},
  endpoint ${lit(env.DDB_HANG_URL)}, request_timeout_ms '600000');
${mapping('interop_hang_srv')}
CREATE FOREIGN TABLE interop.events_hang (id text)
  SERVER interop_hang_srv OPTIONS (${TABLE_OPTIONS});
`;
}

/* GET or POST the fault front's control endpoint; returns the counters. */
async function faultControl(body) {
  const res = await fetch(`${env.DDB_FAULT_URL}/__faults`, body === undefined ? {} : {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok)
    throw new Error(`fault front answered ${res.status}: ${text}`);
  return JSON.parse(text);
}

async function checkReplayUnderFaults(report, expected) {
  try {
    await faultControl(FAULTS);
  } catch (e) {
    report.check(`fault front accepts ${JSON.stringify(FAULTS)}`, false, e.message);
    return;
  }
  let r;
  let counters;
  try {
    r = await psql(`SELECT json_build_object('id', id, 'created', ${CREATED_ISO}, 'sequence', sequence,
        'md5', md5(payload::text)) FROM interop.events_faulty;`, { timeoutMs: REPLAY_TIMEOUT_MS });
  } finally {
    counters = await faultControl().catch((e) => ({ error: e.message }));
    await faultControl(NO_FAULTS).catch(() => {});
  }
  const ran = report.check('full replay through the fault front completes',
    r.code === 0 && !r.timedOut, r.timedOut ? `no answer within ${REPLAY_TIMEOUT_MS} ms` : r.stderr.trim());
  report.note(`replay under faults took ${r.endedAt - r.startedAt} ms; front counters ${JSON.stringify(counters)}`);

  if (ran) {
    const rows = r.stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));
    const count = new Map();
    for (const row of rows)
      count.set(row.id, (count.get(row.id) || 0) + 1);
    const dups = [...count].filter(([, n]) => n > 1).map(([id, n]) => `${id} x${n}`);
    const missing = expected.filter((e) => !count.has(e.id)).map((e) => e.id);
    const expectedIds = new Set(expected.map((e) => e.id));
    const extra = [...count.keys()].filter((id) => !expectedIds.has(id));
    report.check(`every one of the ${expected.length} events exactly once`,
      rows.length === expected.length && dups.length === 0 && missing.length === 0 && extra.length === 0,
      `got ${rows.length} rows; duplicated: ${dups.slice(0, 5).join(', ') || 'none'}; ` +
      `missing: ${missing.slice(0, 5).join(', ') || 'none'}; unexpected: ${extra.slice(0, 5).join(', ') || 'none'}`);
    const firstOff = expected.findIndex((e, i) => !rows[i] || rows[i].id !== e.id);
    report.check('rows in created order', firstOff === -1 && rows.length === expected.length,
      firstOff === -1 ? 'extra rows at the end' : `first difference at row ${firstOff}`);
    const byId = new Map(rows.map((row) => [row.id, row]));
    const want = expected.map((e) => ({
      id: e.id, created: e.created, sequence: e.sequence,
      md5: e.payloadText === null ? null : crypto.createHash('md5').update(e.payloadText, 'utf8').digest('hex'),
    }));
    const diffs = diffRecords(want.map((w) => byId.get(w.id) || {}), want, ['created', 'sequence', 'md5']);
    report.check('created, sequence and payload text (md5) equal for every event', diffs.length === 0, diffs.join('\n'));
  }

  const ok = counters && !counters.error;
  for (const kind of ['throttle', 'error5xx', 'drop', 'unprocessed', 'unprocessedKeys'])
    report.check(`the front injected ${kind} faults (${ok ? counters[kind] : '?'})`, ok && counters[kind] > 0,
      ok ? `counters: ${JSON.stringify(counters)}` : counters.error);
}

/* The socket inodes a process holds open (empty when /proc cannot tell, e.g. without privileges). */
function socketInodes(pid) {
  const inodes = new Set();
  try {
    for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m)
        inodes.add(m[1]);
    }
  } catch (e) {
    return null;
  }
  return inodes;
}

/* True when one of `inodes` is an established TCP connection to local port `port`. */
function connectedTo(inodes, port) {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let lines;
    try {
      lines = fs.readFileSync(file, 'utf8').split('\n').slice(1);
    } catch (e) {
      continue;
    }
    for (const line of lines) {
      const f = line.trim().split(/\s+/);
      // f[2] = remote address:port, f[3] = state (01 = ESTABLISHED), f[9] = inode
      if (f.length > 9 && f[2].endsWith(':' + hexPort) && f[3] === '01' && inodes.has(f[9]))
        return true;
    }
  }
  return false;
}

/*
 * Waits (bounded) until the hanging query is running: its backend is active in pg_stat_activity
 * and, where /proc lets us see it, connected to the hanging front. Returns the backend pid, or
 * null when the query ended or never got there.
 */
async function waitForHangingBackend(report, child, hangPort) {
  let exited = false;
  child.once('close', () => { exited = true; });
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let pid = null;
  let sawConnection = null;
  while (Date.now() < deadline && !exited) {
    const r = await psql(`SELECT pid FROM pg_stat_activity WHERE application_name = ${lit(HANG_APP)}
      AND state = 'active' AND query LIKE '%interop.events_hang%';`, { timeoutMs: 5000 });
    pid = r.code === 0 && r.stdout.trim() ? Number(r.stdout.trim().split('\n')[0]) : null;
    if (pid) {
      const inodes = socketInodes(pid);
      if (inodes === null) {
        sawConnection = false;
        break;                      // cannot look into the backend: active is the best we know
      }
      if (connectedTo(inodes, hangPort)) {
        sawConnection = true;
        break;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  if (pid && sawConnection !== null)
    report.note(sawConnection ? `backend ${pid} is active and connected to the hanging front`
      : `backend ${pid} is active (its sockets are not visible here)`);
  return pid && sawConnection !== null ? pid : null;
}

/* Terminates whatever is left of our hanging sessions, so a failed test leaves no stuck backend. */
async function cleanUpHangingSessions() {
  await psql(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name IN (${lit(HANG_APP)}, ${lit(SLEEP_APP)});`,
    { timeoutMs: 10000 });
}

/*
 * The reference: how long a cancel of pg_sleep(600) takes from pg_cancel_backend to psql's exit,
 * on this machine now; null when it could not be measured.
 */
async function cancelReferenceMs(report) {
  const { child, done } = startPsql('SELECT pg_sleep(600);', { env: { PGAPPNAME: SLEEP_APP }, timeoutMs: READY_TIMEOUT_MS + 20000 });
  let exited = false;
  child.once('close', () => { exited = true; });
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let pid = null;
  while (Date.now() < deadline && !exited && pid === null) {
    const r = await psql(`SELECT pid FROM pg_stat_activity WHERE application_name = ${lit(SLEEP_APP)}
      AND state = 'active' AND wait_event = 'PgSleep';`, { timeoutMs: 5000 });
    pid = r.code === 0 && r.stdout.trim() ? Number(r.stdout.trim().split('\n')[0]) : null;
    if (pid === null) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  if (pid === null) {
    child.kill('SIGKILL');
    await done;
    report.check('pg_sleep(600) is running, for the reference', false);
    return null;
  }
  const cancelAt = Date.now();
  await psql(`SELECT pg_cancel_backend(${pid});`, { timeoutMs: 10000 });
  const r = await done;
  if (!report.check('the reference pg_sleep(600) ends with "canceling statement due to user request"',
    /canceling statement due to user request/.test(r.stderr), r.stderr.trim() || `exit ${r.code}`))
    return null;
  return r.endedAt - cancelAt;
}

async function checkCancel(report) {
  const hangPort = Number(new URL(env.DDB_HANG_URL).port);
  const referenceMs = await cancelReferenceMs(report);
  if (referenceMs === null) return;
  const { child, done } = startPsql('SELECT count(*) FROM interop.events_hang;',
    { env: { PGAPPNAME: HANG_APP }, timeoutMs: READY_TIMEOUT_MS + 20000 });
  const pid = await waitForHangingBackend(report, child, hangPort);
  if (pid === null) {
    const running = child.exitCode === null && child.signalCode === null;
    if (running)
      child.kill('SIGKILL');
    const r = await done;
    report.check('the query against the hanging front is running and waiting', false,
      running ? `not seen waiting within ${READY_TIMEOUT_MS} ms` : `it ended: ${r.stderr.trim() || `exit ${r.code}`}`);
    return;
  }
  report.check('the query against the hanging front is running and waiting', true);
  const cancelAt = Date.now();
  const cancel = await psql(`SELECT pg_cancel_backend(${pid});`, { timeoutMs: 10000 });
  report.check('pg_cancel_backend from another session', cancel.code === 0 && cancel.stdout.trim() === 't',
    cancel.stderr.trim() || cancel.stdout.trim());
  const r = await done;
  const ms = r.endedAt - cancelAt;
  const canceled = report.check('the query ends with "canceling statement due to user request"',
    r.code !== 0 && /canceling statement due to user request/.test(r.stderr), r.stderr.trim() || `exit ${r.code}`);
  const budget = referenceMs + PROMPT_MARGIN_MS;
  report.check(`... within ${budget} ms of the cancel (${ms} ms; pg_sleep took ${referenceMs} ms)`,
    canceled && !r.timedOut && ms <= budget, canceled ? undefined : 'it did not end by the cancel');
}

async function checkStatementTimeout(report) {
  const ref = await psql(`SET statement_timeout = '500ms';\nSELECT pg_sleep(600);`,
    { env: { PGAPPNAME: SLEEP_APP }, timeoutMs: 30000 });
  if (!report.check('the reference pg_sleep(600) ends with "canceling statement due to statement timeout"',
    /canceling statement due to statement timeout/.test(ref.stderr), ref.stderr.trim() || `exit ${ref.code}`))
    return;
  const referenceMs = ref.endedAt - ref.startedAt;
  const r = await psql(`SET statement_timeout = '500ms';\nSELECT count(*) FROM interop.events_hang;`,
    { env: { PGAPPNAME: HANG_APP }, timeoutMs: 30000 });
  const ms = r.endedAt - r.startedAt;
  const timedOut = report.check('statement_timeout = 500ms ends the query with "canceling statement due to statement timeout"',
    r.code !== 0 && /canceling statement due to statement timeout/.test(r.stderr), r.stderr.trim() || `exit ${r.code}`);
  const budget = referenceMs + PROMPT_MARGIN_MS;
  report.check(`... within ${budget} ms of its start (${ms} ms; pg_sleep took ${referenceMs} ms)`,
    timedOut && !r.timedOut && ms <= budget, timedOut ? undefined : 'it did not end by the timeout');
}

async function main() {
  const report = new Report();
  let expected;
  try {
    expected = JSON.parse(fs.readFileSync(EXPECTED_FILE, 'utf8')).events;
    expected.sort((a, b) => (a.created < b.created ? -1 : a.created > b.created ? 1 : 0));
  } catch (e) {
    report.check(`expected events readable from ${EXPECTED_FILE} (run test/steps/10-seed.sh first)`, false, e.message);
    return report.finish();
  }
  for (const name of ['DDB_FAULT_URL', 'DDB_HANG_URL', 'S3_URL'])
    if (!env[name]) {
      report.check(`${name} is set`, false);
      return report.finish();
    }

  const setup = await psql(setupSql(), { timeoutMs: 60000 });
  if (!report.check('create the extension, servers, user mappings and foreign tables',
    setup.code === 0 && !setup.timedOut, setup.stderr.trim() || `psql exited with ${setup.code}`))
    return report.finish();

  try {
    await checkReplayUnderFaults(report, expected);
    await checkCancel(report);
    await checkStatementTimeout(report);
  } finally {
    await cleanUpHangingSessions();
  }
  return report.finish();
}

main().then((status) => process.exit(status), (e) => {
  console.log(`not ok - faults.js ran to the end\n    ${e.stack}`);
  process.exit(1);
});
