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

const {
  QUICK, sleep, startBench, stopBench, sql, idle: idleFor, latencySamples, summary, loadAverage, startMonth,
  writeResults, run,
} = require('./workers-common');

const SMALL = QUICK ? 500 : 2000;
const LARGE = SMALL * 10;
const IDLE_MS = QUICK ? 30000 : 60000;
const LATENCY_SAMPLES = QUICK ? 20 : 60;
const PROJECTIONS = 20;
const BACKLOG = QUICK ? 1000 : 3000;
const PARTITIONS = [1, 2, 4];

const idle = (label) => idleFor(label, IDLE_MS);

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
  const { recorder } = await startBench('max_worker_processes = 40\nmax_connections = 60');
  const results = { quick: QUICK, small: SMALL, large: LARGE, idleSeconds: IDLE_MS / 1000, loadAverageBefore: loadAverage() };
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
    const lat = await latencySamples('lat', 'small_events', LATENCY_SAMPLES);
    results.latency = { poll: 1, settle: 1, bound: 3, ...summary(lat.seconds) };
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
    results.loadAverageAfter = loadAverage();
    await stopBench();
  }
  console.log(`load average before ${results.loadAverageBefore.join(' ')}, after ${results.loadAverageAfter.join(' ')}`);
  writeResults('workers', results);
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

run(main);
