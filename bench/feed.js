// Figures of the change feed (bench/feed.sh runs it): in a throwaway cluster with the library in
// shared_preload_libraries, the DynamoDB requests going through a recording relay
// (bench/recorder.js) in front of the local stack's signing front:
//   - idle requests per minute of one running projection (poll 1 s) without the feed, then with
//     it (enable_change_feed on its source): what the feed adds at idle, by operation;
//   - latency: from just before an INSERT to wait_for_projection returning true, through the feed,
//     for a projection whose settle is an hour (the index walk cannot apply the event), poll 1 s;
//   - what reading one new event costs through the feed.
//
// Usage: node bench/feed.js [--quick] [--out DIR]
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
const EVENTS = QUICK ? 500 : 2000;
const IDLE_MS = QUICK ? 30000 : 60000;
const LATENCY_SAMPLES = QUICK ? 20 : 60;

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

/* Requests per minute (by operation) while nothing is appended. */
async function idle(label) {
  recorder.reset();
  const t0 = Date.now();
  await sleep(IDLE_MS);
  const minutes = (Date.now() - t0) / 60000;
  const counts = countByOp(recorder.entries);
  const perMinute = {};
  let total = 0;
  for (const [op, n] of Object.entries(counts)) {
    perMinute[op] = Math.round(n / minutes);
    total += n;
  }
  const result = { label, requestsPerMinute: Math.round(total / minutes), byOperation: perMinute };
  console.log(`${label}: ${result.requestsPerMinute} requests/min ${JSON.stringify(perMinute)}`);
  return result;
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function projection(name, { poll = '1 second', settle = '1 second', fullRecheck = "'1 hour'" } = {}) {
  await sql(`SET ROLE bench;
CREATE TABLE rm_${name} (account text PRIMARY KEY, balance numeric NOT NULL);
CREATE FUNCTION apply_${name}(e events) RETURNS void LANGUAGE sql AS $$
  INSERT INTO rm_${name} VALUES (e.identifier, (e.payload->>'amount')::numeric)
    ON CONFLICT (account) DO UPDATE SET balance = rm_${name}.balance + excluded.balance $$;
SELECT event_store_dynamo.create_projection('${name}', 'events', 'apply_${name}(events)',
  tables => ARRAY['rm_${name}'::regclass], settle => interval '${settle}', full_recheck => ${fullRecheck});
CALL event_store_dynamo.catch_up('${name}');
SELECT event_store_dynamo.start_projection('${name}', poll => interval '${poll}');`);
}

async function main() {
  if (!process.env.DDB_URL) throw new Error('DDB_URL must be set (the stack.env)');
  recorder = await startRecorder(process.env.DDB_URL);
  cluster = new Cluster();
  await cluster.init();
  fs.appendFileSync(path.join(cluster.data, 'postgresql.conf'), `
shared_preload_libraries = 'event_store_dynamo'
max_worker_processes = 20
`);
  cluster.start({});
  const results = { quick: QUICK, events: EVENTS, idleSeconds: IDLE_MS / 1000 };
  try {
    await sql('CREATE ROLE bench LOGIN; CREATE DATABASE bench OWNER bench;', 'postgres');
    await sql(`CREATE EXTENSION event_store_dynamo;
CREATE SERVER wb FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (endpoint '${recorder.url}');
CREATE USER MAPPING FOR bench SERVER wb OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
CREATE USER MAPPING FOR postgres SERVER wb OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
GRANT USAGE ON FOREIGN SERVER wb TO bench;
SET ROLE bench;
CREATE FOREIGN TABLE events (id text, domain text, type text, identifier text, sequence bigint,
  payload jsonb, created timestamptz) SERVER wb OPTIONS (table_name_prefix 'fbench-', start_month '${startMonth()}');
RESET ROLE;
SELECT event_store_dynamo.reset_store('events');
SET ROLE bench;
INSERT INTO events (domain, type, identifier, payload, created)
SELECT 'account', 'deposited', (i % 50)::text, jsonb_build_object('amount', i),
       now() - interval '1 hour' - (i % 24) * interval '30 days' - (i % 1000) * interval '1 second'
  FROM generate_series(1, ${EVENTS}) i;`);

    // one projection, poll 1 s, settle 1 s: at idle without the feed, then with it
    await projection('idle');
    await sleep(3000);
    results.idleWithout = await idle('one projection at idle, no feed');
    await sql("SELECT event_store_dynamo.enable_change_feed('events');");
    for (let i = 0; i < 300; i++) {
      const [[n]] = await sql("SELECT count(*) FROM event_store_dynamo.projection_feeds WHERE projection = 'idle' AND open_shards > 0;");
      if (n === '1') break;
      await sleep(100);
    }
    results.idleWith = await idle('one projection at idle, with the feed');
    await sql("SET ROLE bench; SELECT event_store_dynamo.stop_projection('idle');");

    // latency through the feed: settle an hour, no full recheck, so only the feed applies new events
    await projection('lat', { settle: '1 hour', fullRecheck: 'NULL' });
    for (let i = 0; i < 300; i++) {
      const [[n]] = await sql("SELECT count(*) FROM event_store_dynamo.projection_feeds WHERE projection = 'lat' AND open_shards > 0;");
      if (n === '1') break;
      await sleep(100);
    }
    const script = [];
    for (let i = 0; i < LATENCY_SAMPLES; i++) {
      script.push(`SELECT pg_sleep(random() * 1.0);
SELECT clock_timestamp() AS t0 \\gset
INSERT INTO events (domain, type, identifier, payload) VALUES ('account', 'deposited', 'lat', '{"amount": 1}') RETURNING id \\gset
SELECT event_store_dynamo.wait_for_projection('lat', :'id', interval '30 seconds'),
       extract(epoch FROM clock_timestamp() - :'t0'::timestamptz);`);
    }
    recorder.reset();
    const rows = (await sql(`SET ROLE bench;\n${script.join('\n')}`)).filter((r) => r.length === 2);
    const during = countByOp(recorder.entries);
    if (rows.some((r) => r[0] !== 't')) throw new Error('an event was not applied within 30 s');
    const [[applied]] = await sql("SELECT applied FROM event_store_dynamo.projection_feeds WHERE projection = 'lat';");
    if (Number(applied) !== rows.length) throw new Error(`the feed applied ${applied} of ${rows.length} events`);
    const lat = rows.map((r) => Number(r[1])).sort((a, b) => a - b);
    results.latency = {
      samples: lat.length, poll: 1, settle: 3600, bound: 2, appliedByFeed: Number(applied),
      p50: Number(percentile(lat, 50).toFixed(3)), p99: Number(percentile(lat, 99).toFixed(3)),
      max: Number(lat[lat.length - 1].toFixed(3)),
    };
    results.requestsDuringLatency = during;
    console.log(`latency through the feed (poll 1 s, settle 1 hour, bound poll + 1 s = 2 s): ${JSON.stringify(results.latency)}`);
    console.log(`requests while the ${lat.length} events were appended and applied: ${JSON.stringify(during)}`);
  } finally {
    cluster.destroy();
    await recorder.close();
  }
  fs.mkdirSync(OUT_DIR, { recursive: true });
  fs.writeFileSync(path.join(OUT_DIR, 'feed.json'), JSON.stringify(results, null, 2));
  console.log(`wrote ${path.join(OUT_DIR, 'feed.json')}`);
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
