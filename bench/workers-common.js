// What bench/workers.js and bench/feed.js share: the command line (--quick, --out DIR), a
// throwaway cluster with the library in shared_preload_libraries whose DynamoDB requests go
// through a recording relay (bench/recorder.js) in front of the local stack's signing front, SQL
// through psql, the idle window (requests per minute by operation, and the CPU of the workers),
// the latency samples (INSERT to wait_for_projection), percentiles, and the run's end.
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
const CLK_TCK = 100;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let cluster;
let recorder;

/* Starts the recorder and the cluster (postgresql.conf gets conf after the preload line). */
async function startBench(conf) {
  if (!process.env.DDB_URL) throw new Error('DDB_URL must be set (the stack.env)');
  recorder = await startRecorder(process.env.DDB_URL);
  cluster = new Cluster();
  await cluster.init();
  fs.appendFileSync(path.join(cluster.data, 'postgresql.conf'), `
shared_preload_libraries = 'event_store_dynamo'
${conf}
`);
  cluster.start({});
  return { cluster, recorder };
}

async function stopBench() {
  try {
    if (cluster) cluster.destroy();
  } finally {
    cluster = undefined;
    if (recorder) await recorder.close();
    recorder = undefined;
  }
}

/* Runs SQL that must succeed; returns its rows (lines, fields split on |). */
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

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
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

/* Requests per minute (by operation) and CPU of the workers while nothing is appended, for ms. */
async function idle(label, ms) {
  const pids = await workerPids();
  const cpu0 = cpuSeconds(pids);
  recorder.reset();
  const t0 = Date.now();
  await sleep(ms);
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

/*
 * Latency samples: n INSERTs into table (a random pause of up to a second before each, so they
 * fall anywhere in a worker's round), each timed from just before the INSERT to
 * wait_for_projection returning true; fails if one is not applied within 30 s.  Returns the
 * sorted seconds and the requests recorded meanwhile, by operation.
 */
async function latencySamples(projection, table, n) {
  const script = [];
  for (let i = 0; i < n; i++) {
    script.push(`SELECT pg_sleep(random() * 1.0);
SELECT clock_timestamp() AS t0 \\gset
INSERT INTO ${table} (domain, type, identifier, payload) VALUES ('account', 'deposited', 'lat', '{"amount": 1}') RETURNING id \\gset
SELECT event_store_dynamo.wait_for_projection('${projection}', :'id', interval '30 seconds'),
       extract(epoch FROM clock_timestamp() - :'t0'::timestamptz);`);
  }
  recorder.reset();
  const rows = (await sql(`SET ROLE bench;\n${script.join('\n')}`)).filter((r) => r.length === 2);
  const requests = countByOp(recorder.entries);
  if (rows.some((r) => r[0] !== 't')) throw new Error('an event was not applied within 30 s');
  return { seconds: rows.map((r) => Number(r[1])).sort((a, b) => a - b), requests };
}

/* p50, p99 and max of sorted seconds, to the millisecond. */
function summary(sorted) {
  return {
    samples: sorted.length,
    p50: Number(percentile(sorted, 50).toFixed(3)), p99: Number(percentile(sorted, 99).toFixed(3)),
    max: Number(sorted[sorted.length - 1].toFixed(3)),
  };
}

/* The load average of the machine (1, 5, 15 minutes), which shares it with others. */
function loadAverage() {
  return fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
}

/* The start_month option for a store whose history goes back 24 months. */
function startMonth() {
  const d = new Date();
  d.setUTCMonth(d.getUTCMonth() - 25);
  return d.toISOString().slice(0, 7);
}

/* Writes the results to OUT_DIR/name.json. */
function writeResults(name, results) {
  fs.mkdirSync(OUT_DIR, { recursive: true });
  fs.writeFileSync(path.join(OUT_DIR, `${name}.json`), JSON.stringify(results, null, 2));
  console.log(`wrote ${path.join(OUT_DIR, `${name}.json`)}`);
}

/* Runs main; on a failure takes the cluster down and exits 1. */
function run(main) {
  main().catch(async (e) => {
    console.error(e);
    try {
      await stopBench();
    } catch (e2) {
      // already gone
    }
    process.exit(1);
  });
}

module.exports = {
  QUICK, sleep, startBench, stopBench, sql, countByOp, percentile, idle, latencySamples, summary,
  loadAverage, startMonth, writeResults, run,
};
