// Figures of the change feed (bench/feed.sh runs it): in a throwaway cluster with the library in
// shared_preload_libraries, the DynamoDB requests going through a recording relay
// (bench/recorder.js) in front of the local stack's signing front:
//   - idle requests per minute of one running projection (poll 1 s) without the feed, then with
//     it (enable_change_feed on its source): what the feed adds at idle, by operation;
//   - latency: from just before an INSERT to wait_for_projection returning true, through the feed,
//     for a projection whose settle is an hour (the index walk cannot apply the event), poll 1 s
//     (the worker reads the feed every event_store_dynamo.feed_interval, 500 ms, meanwhile);
//   - what reading one new event costs through the feed.
//
// Usage: node bench/feed.js [--quick] [--out DIR]
// Needs DDB_URL and S3_URL (the stack), PGBIN, the extension installed, and root or postgres.
'use strict';

const {
  QUICK, sleep, startBench, stopBench, sql, idle: idleFor, latencySamples, summary, loadAverage, startMonth,
  writeResults, run,
} = require('./workers-common');

const EVENTS = QUICK ? 500 : 2000;
const IDLE_MS = QUICK ? 30000 : 60000;
const LATENCY_SAMPLES = QUICK ? 20 : 60;

const idle = (label) => idleFor(label, IDLE_MS);

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
  const { recorder } = await startBench('max_worker_processes = 20');
  const results = { quick: QUICK, events: EVENTS, idleSeconds: IDLE_MS / 1000, loadAverageBefore: loadAverage() };
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
    const lat = await latencySamples('lat', 'events', LATENCY_SAMPLES);
    const [[applied]] = await sql("SELECT applied FROM event_store_dynamo.projection_feeds WHERE projection = 'lat';");
    if (Number(applied) !== lat.seconds.length) throw new Error(`the feed applied ${applied} of ${lat.seconds.length} events`);
    results.latency = { poll: 1, settle: 3600, bound: 1, appliedByFeed: Number(applied), ...summary(lat.seconds) };
    results.requestsDuringLatency = lat.requests;
    console.log(`latency through the feed (poll 1 s, settle 1 hour, bound 1 s): ${JSON.stringify(results.latency)}`);
    console.log(`requests while the ${lat.seconds.length} events were appended and applied: ${JSON.stringify(lat.requests)}`);
  } finally {
    results.loadAverageAfter = loadAverage();
    await stopBench();
  }
  console.log(`load average before ${results.loadAverageBefore.join(' ')}, after ${results.loadAverageAfter.join(' ')}`);
  writeResults('feed', results);
}

run(main);
