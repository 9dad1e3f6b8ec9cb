// Figures of the background workers (bench/workers.sh runs it): in a throwaway cluster with the
// library in shared_preload_libraries, the DynamoDB requests going through a recording relay
// (bench/recorder.js) in front of the local stack's signing front:
//   - idle requests per minute of one running projection, on a small and on a ten times larger
//     store (history spread over 24 months): the figure must not grow with the store;
//   - latency: from just before an INSERT to wait_for_projection returning true, with poll 1 s and
//     settle 1 s; the bound is poll + settle + 1 s;
//   - twenty running projections at idle: requests per minute and the CPU time of the workers;
//   - partitions: the time a started projection takes to apply a backlog (50 streams) with a
//     handler that does real work per event (pg_sleep(0.005), as a handler waiting on I/O would),
//     with 1, 2 and 4 partitions (one worker each); the speed-up is against 1 partition; and the
//     idle requests per minute of the projections of 2 and 4 partitions once they are current.
//
// Usage: node bench/workers.js [--quick] [--out DIR]
// Needs DDB_URL and S3_URL (the stack), PGBIN, the extension installed, and root or postgres.
'use strict';

const fs = require('fs');
const path = require('path');
const { Cluster } = require('../test/credentials/cluster');
const { startRecorder } = require('./recorder');

const QUICK = process.argv.includes('--quick');
const OUT_DIR = (() => {
  const i = process.argv.indexOf('--out');
  return i > 0 ? process.argv[i + 1] : path.join(__dirname, 'out');
})();
const SMALL = QUICK ? 500 : 2000;
const LARGE = SMALL * 10;
const IDLE_MS = QUICK ? 30000 : 60000;
const LATENCY_SAMPLES = QUICK ? 20 : 60;
const PROJECTIONS = 20;
const BACKLOG = QUICK ? 1000 : 3000;
const PARTITIONS = [1, 2, 4];
const CLK_TCK = 100;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let cluster;
let recorder;

async function sql(text, db = 'bench') {
  const r = await cluster.psql(text, { db, timeoutMs: 600000 });
  if (r.code !== 0) throw new Error(`psql failed: ${r.stderr}\n${text.slice(0, 400)}`);
  return r.stdout.split('\n').filter((l) => l !== '').map((l) => l.split('|'));
}

function countByOp(entries) {
  const counts = {};
  for (const e of entries) if (e.op !== 'mark') counts[e.op] = (counts[e.op] || 0) + 1;
  return counts;
}

/* Total CPU seconds (user + system) of the given processes, from /proc. */
function cpuSeconds(pids) {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch (e) {
      // the process went away: its time is lost, which only lowers the figure
    }
  }
  return ticks / CLK_TCK;
}

async function workerPids() {
  return (await sql(`SELECT pid FROM pg_stat_activity
 WHERE backend_type IN ('event_store_dynamo projection', 'event_store_dynamo launcher');`, 'postgres')).map((r) => Number(r[0]));
}

/* Requests per minute (by operation) and CPU of the workers while nothing is appended. */
async function idle(label) {
  const pids = await workerPids();
  const cpu0 = cpuSeconds(pids);
  recorder.reset();
  const t0 = Date.now();
  await sleep(IDLE_MS);
  const minutes = (Date.now() - t0) / 60000;
  const counts = countByOp(recorder.entries);
  const cpu = cpuSeconds(pids) - cpu0;
  const perMinute = {};
  let total = 0;
  for (const [op, n] of Object.entries(counts)) {
    perMinute[op] = Math.round(n / minutes);
    total += n;
  }
  const result = {
    label, workers: pids.length - 1, requestsPerMinute: Math.round(total / minutes), byOperation: perMinute,
    cpuPercentOfOneCore: Number(((cpu / (minutes * 60)) * 100).toFixed(2)),
  };
  console.log(`${label}: ${result.requestsPerMinute} requests/min ${JSON.stringify(perMinute)}, ` +
    `CPU ${result.cpuPercentOfOneCore}% of one core (${result.workers} workers and the launcher)`);
  return result;
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function load(table, n) {
  // backdated history over 24 months, 50 streams, as an import would write it
  const chunk = 5000;
  for (let from = 1; from <= n; from += chunk) {
    const to = Math.min(n, from + chunk - 1);
    await sql(`SET ROLE bench;
INSERT INTO ${table} (domain, type, identifier, payload, created)
SELECT 'account', 'deposited', (i % 50)::text, jsonb_build_object('amount', i),
       now() - interval '1 hour' - (i % 24) * interval '30 days' - (i % 1000) * interval '1 second'
  FROM generate_series(${from}, ${to}) i;`);
  }
}

async function projection(name, table, { poll = '1 second', settle = '1 second' } = {}) {
  await sql(`SET ROLE bench;
CREATE TABLE rm_${name} (account text PRIMARY KEY, balance numeric NOT NULL);
CREATE FUNCTION apply_${name}(e ${table}) RETURNS void LANGUAGE sql AS $$
  INSERT INTO rm_${name} VALUES (e.identifier, (e.payload->>'amount')::numeric)
    ON CONFLICT (account) DO UPDATE SET balance = rm_${name}.balance + excluded.balance $$;
SELECT event_store_dynamo.create_projection('${name}', '${table}', 'apply_${name}(${table})',
  tables => ARRAY['rm_${name}'::regclass], settle => interval '${settle}');`);
  await sql(`SET ROLE bench; CALL event_store_dynamo.catch_up('${name}');`);
  await sql(`SET ROLE bench; SELECT event_store_dynamo.start_projection('${name}', poll => interval '${poll}');`);
}

async function main() {
  if (!process.env.DDB_URL) throw new Error('DDB_URL must be set (the stack.env)');
  recorder = await startRecorder(process.env.DDB_URL);
  cluster = new Cluster();
  await cluster.init();
  fs.appendFileSync(path.join(cluster.data, 'postgresql.conf'), `
shared_preload_libraries = 'event_store_dynamo'
max_worker_processes = 40
max_connections = 60
`);
  cluster.start({});
  const results = { quick: QUICK, small: SMALL, large: LARGE, idleSeconds: IDLE_MS / 1000 };
  try {
    await sql('CREATE ROLE bench LOGIN; CREATE DATABASE bench OWNER bench;', 'postgres');
    await sql(`CREATE EXTENSION event_store_dynamo;
CREATE SERVER wb FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (endpoint '${recorder.url}');
CREATE USER MAPPING FOR bench SERVER wb OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
CREATE USER MAPPING FOR postgres SERVER wb OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
GRANT USAGE ON FOREIGN SERVER wb TO bench;
SET ROLE bench;
CREATE FOREIGN TABLE small_events (id text, domain text, type text, identifier text, sequence bigint,
  payload jsonb, created timestamptz) SERVER wb OPTIONS (table_name_prefix 'wbench-small-', start_month '${startMonth()}');
CREATE FOREIGN TABLE large_events (id text, domain text, type text, identifier text, sequence bigint,
  payload jsonb, created timestamptz) SERVER wb OPTIONS (table_name_prefix 'wbench-large-', start_month '${startMonth()}');
RESET ROLE;
SELECT event_store_dynamo.reset_store('small_events');
SELECT event_store_dynamo.reset_store('large_events');`);

    // idle cost against the size of the store
    let t = Date.now();
    await load('small_events', SMALL);
    await load('large_events', LARGE);
    console.log(`loaded ${SMALL} + ${LARGE} events in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    t = Date.now();
    await projection('small', 'small_events');
    await projection('large', 'large_events');
    console.log(`caught up both in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    await sql("SET ROLE bench; SELECT event_store_dynamo.stop_projection('large');");
    await sleep(3000);
    results.idleSmall = await idle(`one projection, ${SMALL} events`);
    await sql("SET ROLE bench; SELECT event_store_dynamo.stop_projection('small'); SELECT event_store_dynamo.start_projection('large');");
    await sleep(3000);
    results.idleLarge = await idle(`one projection, ${LARGE} events`);
    await sql("SET ROLE bench; SELECT event_store_dynamo.stop_projection('large');");

    // latency: poll 1 s, settle 1 s
    await projection('lat', 'small_events', { poll: '1 second', settle: '1 second' });
    const script = [];
    for (let i = 0; i < LATENCY_SAMPLES; i++) {
      script.push(`SELECT pg_sleep(random() * 1.0);
SELECT clock_timestamp() AS t0 \\gset
INSERT INTO small_events (domain, type, identifier, payload) VALUES ('account', 'deposited', 'lat', '{"amount": 1}') RETURNING id \\gset
SELECT event_store_dynamo.wait_for_projection('lat', :'id', interval '30 seconds'),
       extract(epoch FROM clock_timestamp() - :'t0'::timestamptz);`);
    }
    const rows = (await sql(`SET ROLE bench;\n${script.join('\n')}`)).filter((r) => r.length === 2);
    if (rows.some((r) => r[0] !== 't')) throw new Error('an event was not applied within 30 s');
    const lat = rows.map((r) => Number(r[1])).sort((a, b) => a - b);
    results.latency = {
      samples: lat.length, poll: 1, settle: 1, bound: 3,
      p50: Number(percentile(lat, 50).toFixed(3)), p99: Number(percentile(lat, 99).toFixed(3)),
      max: Number(lat[lat.length - 1].toFixed(3)),
    };
    console.log(`latency (poll 1 s, settle 1 s, bound 3 s): ${JSON.stringify(results.latency)}`);
    await sql("SET ROLE bench; SELECT event_store_dynamo.stop_projection('lat');");

    // twenty running projections at idle
    t = Date.now();
    for (let i = 1; i <= PROJECTIONS; i++) await projection(`p${i}`, 'small_events');
    console.log(`created and started ${PROJECTIONS} projections in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    await sleep(5000);
    results.idleTwenty = await idle(`${PROJECTIONS} projections, ${SMALL} events`);
    for (let i = 1; i <= PROJECTIONS; i++) await sql(`SET ROLE bench; SELECT event_store_dynamo.drop_projection('p${i}');`);

    // partitions: a backlog in a store of its own, drained by 1, 2 and 4 workers
    await sql(`SET ROLE bench;
CREATE FOREIGN TABLE backlog_events (id text, domain text, type text, identifier text, sequence bigint,
  payload jsonb, created timestamptz) SERVER wb OPTIONS (table_name_prefix 'wbench-backlog-', start_month '${startMonth()}');
RESET ROLE;
SELECT event_store_dynamo.reset_store('backlog_events');`);
    await sql(`SET ROLE bench;
INSERT INTO backlog_events (domain, type, identifier, payload, created)
SELECT 'account', 'deposited', (i % 50)::text, jsonb_build_object('amount', i),
       now() - interval '1 hour' + i * interval '1 millisecond'
  FROM generate_series(1, ${BACKLOG}) i;`);
    results.partitions = [];
    for (const n of PARTITIONS) results.partitions.push(await drain('backlog_events', BACKLOG, n));
    const one = results.partitions[0].seconds;
    for (const r of results.partitions) r.speedUp = Number((one / r.seconds).toFixed(2));
    console.log(`partitions speed-up: ${results.partitions.map((r) => `${r.partitions}: ${r.speedUp}x`).join(', ')}`);
  } finally {
    cluster.destroy();
    await recorder.close();
  }
  fs.mkdirSync(OUT_DIR, { recursive: true });
  fs.writeFileSync(path.join(OUT_DIR, 'workers.json'), JSON.stringify(results, null, 2));
  console.log(`wrote ${path.join(OUT_DIR, 'workers.json')}`);
}

/* Seconds from start_projection to every event of the backlog applied, with n partitions. */
async function drain(table, events, partitions) {
  const name = `parts${partitions}`;
  await sql(`SET ROLE bench;
CREATE TABLE rm_${name} (account text PRIMARY KEY, balance numeric NOT NULL);
CREATE FUNCTION apply_${name}(e ${table}) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_sleep(0.005);
  INSERT INTO rm_${name} VALUES (e.identifier, (e.payload->>'amount')::numeric)
    ON CONFLICT (account) DO UPDATE SET balance = rm_${name}.balance + excluded.balance;
END $$;
SELECT event_store_dynamo.create_projection('${name}', '${table}', 'apply_${name}(${table})',
  tables => ARRAY['rm_${name}'::regclass], settle => interval '1 second', partitions => ${partitions});`);
  const t0 = Date.now();
  await sql(`SET ROLE bench; SELECT event_store_dynamo.start_projection('${name}', poll => interval '200 ms');`);
  for (;;) {
    const [[applied]] = await sql(`SET ROLE bench;
SELECT events_applied FROM event_store_dynamo.projections WHERE name = '${name}';`);
    if (Number(applied) >= events) break;
    if (Date.now() - t0 > 1800000) throw new Error(`${name} did not apply ${events} events in 30 minutes`);
    await sleep(200);
  }
  const seconds = (Date.now() - t0) / 1000;
  const idleFigure = partitions > 1 ? await idle(`one projection of ${partitions} partitions, ${events} events`) : undefined;
  const [[spread]] = await sql(`SET ROLE bench;
SELECT string_agg(events_applied::text, ' ' ORDER BY partition) FROM event_store_dynamo.projection_partitions
 WHERE name = '${name}';`);
  await sql(`SET ROLE bench; SELECT event_store_dynamo.drop_projection('${name}');`);
  console.log(`${partitions} partition(s): ${events} events in ${seconds.toFixed(1)} s (per partition: ${spread})`);
  return {
    partitions, events, seconds: Number(seconds.toFixed(2)), perPartition: spread.split(' ').map(Number), idle: idleFigure,
  };
}

function startMonth() {
  const d = new Date();
  d.setUTCMonth(d.getUTCMonth() - 25);
  return d.toISOString().slice(0, 7);
}

main().catch((e) => {
  console.error(e);
  try {
    if (cluster) cluster.destroy();
  } catch (e2) {
    // already gone
  }
  process.exit(1);
});
