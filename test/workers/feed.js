// The change feed, in a throwaway cluster that has the library in shared_preload_libraries: a
// projection whose source has a feed (enable_change_feed, DynamoDB Local's Streams) learns of new
// events from the stream. Its settle is an hour and its full recheck off, so the index walk
// cannot apply what the tests append: whatever reaches the read model came through the feed.
// Then: events appended out of created order (backdated hours, behind the watermark and outside
// the recheck window) applied exactly once and in stream order; the feed and the index walk
// racing for the same events; a stream that is gone falls back to the index walk; the positions
// survive a server restart; a position the shard no longer has is read again from the shard's
// start; a projection of three partitions alongside, whose first worker reads
// the feed and hands each event to its partition's run. After each case the read models equal a
// full recompute.
// Then the cases of real DynamoDB Streams that DynamoDB Local never shows, against the stack's
// scripted streams front (test/stack/README.md): a closed parent shard and its child, a split
// found through a paged DescribeStream, expired iterators, positions before the trim horizon,
// shards that disappear, Streams throttling; see the section further down.
//
// Usage: node test/workers/feed.js   (node:test; TAP output)
// Needs the stack's DDB_URL and S3_URL, the extension installed, and root or the postgres account.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('http');
const { DynamoDBClient, ScanCommand } = require('@aws-sdk/client-dynamodb');

const { startCluster, destroyCluster, rows, value, waitFor, sleep } = require('./cluster');

const DDB_URL = process.env.DDB_URL;
const S3_URL = process.env.S3_URL;
const TEST_TIMEOUT_MS = 300000;
const DB = 'feed_a';

let cluster;

/* A projection's read model against the full recompute from the events: balance and count per account. */
async function readModelCurrent(table) {
  const [[equal]] = await rows(DB, `SET ROLE app;
SELECT (SELECT coalesce(jsonb_agg(jsonb_build_array(account, balance, events) ORDER BY account), '[]') FROM ${table})
     = (SELECT coalesce(jsonb_agg(jsonb_build_array(account, balance, events) ORDER BY account), '[]')
          FROM (SELECT identifier AS account, sum((payload->>'amount')::numeric) AS balance, count(*) AS events
                  FROM events GROUP BY identifier) r);`);
  return equal === 't';
}

/* Each event handed to the projection's handler once, and each stream in sequence order. */
async function appliedOnceInOrder(projection) {
  const [[dups, disorder, logged, events]] = await rows(DB, `SET ROLE app;
SELECT (SELECT count(*) FROM (SELECT event_id FROM applied_log WHERE projection = '${projection}'
                              GROUP BY event_id HAVING count(*) > 1) d),
       (SELECT count(*) FROM (SELECT sequence < lag(sequence) OVER (PARTITION BY account ORDER BY n) AS back
                                FROM applied_log WHERE projection = '${projection}') o WHERE back),
       (SELECT count(*) FROM applied_log WHERE projection = '${projection}'),
       (SELECT count(*) FROM events);`);
  return { dups: Number(dups), disorder: Number(disorder), logged: Number(logged), events: Number(events) };
}

async function feedStats(projection) {
  const r = await rows(DB, `SELECT records, applied, fallbacks, coalesce(last_fallback, ''), open_shards
  FROM event_store_dynamo.projection_feeds WHERE projection = '${projection}';`);
  if (!r.length) return null;
  const [records, applied, fallbacks, lastFallback, openShards] = r[0];
  return { records: Number(records), applied: Number(applied), fallbacks: Number(fallbacks), lastFallback,
           openShards: Number(openShards) };
}

async function seenCount(projection) {
  return Number(await value(DB, `SELECT count(*) FROM event_store_dynamo.projection_seen s
  JOIN event_store_dynamo.projection p ON p.run_key = s.run_key WHERE p.name = '${projection}';`));
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

before(async () => {
  assert.ok(DDB_URL && S3_URL, 'DDB_URL and S3_URL must be set (source the stack.env)');
  cluster = await startCluster({ maxWorkers: 20 });
  await rows('postgres', `CREATE ROLE app LOGIN; CREATE DATABASE ${DB};`);
  await rows(DB, `
CREATE EXTENSION event_store_dynamo;
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
) SERVER events_srv OPTIONS (table_name_prefix 'feed-step-');
RESET ROLE;
-- destroying and creating the store, and turning its stream on, need the server's owner
SELECT event_store_dynamo.reset_store('events');
SELECT event_store_dynamo.enable_change_feed('events');
SET ROLE app;
CREATE TABLE applied_log (n bigserial PRIMARY KEY, projection text, event_id text, account text, sequence bigint);
CREATE TABLE feed_balances (account text PRIMARY KEY, balance numeric NOT NULL, events int NOT NULL);
CREATE TABLE race_balances (account text PRIMARY KEY, balance numeric NOT NULL, events int NOT NULL);
CREATE TABLE parted_balances (account text PRIMARY KEY, balance numeric NOT NULL, events int NOT NULL);
CREATE FUNCTION apply_feed(e events) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO applied_log (projection, event_id, account, sequence) VALUES ('feed', e.id, e.identifier, e.sequence);
  INSERT INTO feed_balances VALUES (e.identifier, (e.payload->>'amount')::numeric, 1)
    ON CONFLICT (account) DO UPDATE SET balance = feed_balances.balance + excluded.balance,
                                        events = feed_balances.events + 1;
END $$;
CREATE FUNCTION apply_race(e events) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO applied_log (projection, event_id, account, sequence) VALUES ('race', e.id, e.identifier, e.sequence);
  INSERT INTO race_balances VALUES (e.identifier, (e.payload->>'amount')::numeric, 1)
    ON CONFLICT (account) DO UPDATE SET balance = race_balances.balance + excluded.balance,
                                        events = race_balances.events + 1;
END $$;
CREATE FUNCTION apply_parted(e events) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO applied_log (projection, event_id, account, sequence) VALUES ('parted', e.id, e.identifier, e.sequence);
  INSERT INTO parted_balances VALUES (e.identifier, (e.payload->>'amount')::numeric, 1)
    ON CONFLICT (account) DO UPDATE SET balance = parted_balances.balance + excluded.balance,
                                        events = parted_balances.events + 1;
END $$;
-- settle an hour, no full recheck: the index walk applies nothing new during the test
-- (parted: the same in three partitions, whose first worker reads the feed for all three)
SELECT event_store_dynamo.create_projection(name => 'parted', source => 'events'::regclass,
  handler => 'apply_parted(events)'::regprocedure, tables => ARRAY['parted_balances'::regclass],
  settle => interval '1 hour', full_recheck => NULL, partitions => 3);
SELECT event_store_dynamo.create_projection(name => 'feed', source => 'events'::regclass,
  handler => 'apply_feed(events)'::regprocedure, tables => ARRAY['feed_balances'::regclass],
  settle => interval '1 hour', full_recheck => NULL);
`);
  await setUpFront();
  await rows(DB, `SET ROLE app;
SELECT event_store_dynamo.start_projection('parted', poll => interval '1 second');
SELECT event_store_dynamo.start_projection('feed', poll => interval '1 second');`);
});

after(() => destroyCluster());

test('a new event reaches the read model through the feed, within a second plus poll', { timeout: TEST_TIMEOUT_MS }, async () => {
  // the workers have read the stream once: their shard positions are stored
  for (const p of ['feed', 'parted']) {
    await waitFor(`the feed of ${p} to start`, async () => {
      const s = await feedStats(p);
      return s && s.openShards >= 1;
    });
  }
  const latencies = [];
  for (let i = 1; i <= 10; i++) {
    const r = await cluster.psql(`SET ROLE app;
INSERT INTO events (domain, type, identifier, payload)
  VALUES ('account', 'deposited', 'n${i % 3}', '{"amount": ${i}}') RETURNING id \\gset
SELECT extract(epoch FROM clock_timestamp()) AS t0 \\gset
SELECT event_store_dynamo.wait_for_projection('feed', :'id', interval '30 seconds'),
       extract(epoch FROM clock_timestamp()) - :t0;`, { db: DB });
    assert.equal(r.code, 0, r.stderr);
    const [seen, seconds] = r.stdout.trim().split('\n').pop().split('|');
    assert.equal(seen, 't', `event ${i} was not applied`);
    latencies.push(Number(seconds));
  }
  latencies.sort((a, b) => a - b);
  console.log(`# latency INSERT to applied through the feed (poll 1 s, settle 1 hour, 10 events): ` +
    `p50 ${percentile(latencies, 50).toFixed(2)} s, max ${latencies[latencies.length - 1].toFixed(2)} s`);
  const s = await feedStats('feed');
  assert.equal(s.applied, 10, 'the feed applied every event (the watermark is an hour behind)');
  assert.ok(s.records >= 10);
  assert.equal(s.fallbacks, 0, `no fallback (the last: ${s.lastFallback})`);
  assert.ok(await readModelCurrent('feed_balances'));
  await waitFor('the partitioned projection', () => readModelCurrent('parted_balances'));
  assert.equal((await feedStats('parted')).applied, 10, 'the partitioned projection: all through the feed');
});

test('events appended out of created order, backdated hours: applied once, in stream order', { timeout: TEST_TIMEOUT_MS }, async () => {
  const before = await seenCount('feed');
  // one stream whose sequence 2 and 3 are dated before its sequence 1, hours behind the watermark
  // and outside the recheck window; another stream dated a day back; a multi-row append
  await rows(DB, `SET ROLE app;
BEGIN;
INSERT INTO events (domain, type, identifier, sequence, payload, created)
  VALUES ('account', 'deposited', 'late', 1, '{"amount": 100}', now() - interval '10 minutes');
INSERT INTO events (domain, type, identifier, sequence, payload, created)
  VALUES ('account', 'deposited', 'late', 2, '{"amount": 200}', now() - interval '3 hours'),
         ('account', 'deposited', 'late', 3, '{"amount": 300}', now() - interval '2 hours');
COMMIT;
INSERT INTO events (domain, type, identifier, payload, created)
  VALUES ('account', 'deposited', 'old', '{"amount": 7}', now() - interval '1 day');
INSERT INTO events (domain, type, identifier, payload)
SELECT 'account', 'deposited', 'bulk' || (i % 4), jsonb_build_object('amount', i) FROM generate_series(1, 25) i;`);
  await waitFor('the late events', async () => (await seenCount('feed')) === before + 29);
  assert.ok(await readModelCurrent('feed_balances'));
  const o = await appliedOnceInOrder('feed');
  assert.equal(o.dups, 0, 'no event applied twice');
  assert.equal(o.disorder, 0, 'each stream applied in sequence order');
  assert.equal(o.logged, o.events, 'every event applied');
  const s = await feedStats('feed');
  assert.equal(s.applied, 39, 'all through the feed');
  // sequence 2 and 3 came before sequence 1 in created order: held, then released after it
  const [[held]] = await rows(DB, "SELECT events_held FROM event_store_dynamo.projections WHERE name = 'feed';");
  assert.equal(held, '0');
  // a while later nothing more is applied: exactly once, however often the stream is read
  await sleep(3000);
  assert.equal(await seenCount('feed'), before + 29);
  assert.equal((await appliedOnceInOrder('feed')).dups, 0);

  // the partitioned projection: each event dealt with by the run of its stream's partition, once
  await waitFor('the partitioned projection', () => readModelCurrent('parted_balances'));
  const q = await appliedOnceInOrder('parted');
  assert.equal(q.dups, 0, 'parted: no event applied twice');
  assert.equal(q.disorder, 0, 'parted: each stream in sequence order');
  assert.equal(q.logged, q.events, 'parted: every event applied');
  assert.equal((await feedStats('parted')).applied, 39, 'parted: all through the feed');
  const [[runs]] = await rows(DB, `SELECT count(DISTINCT s.run_key) FROM event_store_dynamo.projection_seen s
  JOIN event_store_dynamo.projection_run r ON r.key = s.run_key
  JOIN event_store_dynamo.projection p ON p.run_key = r.generation WHERE p.name = 'parted';`);
  assert.equal(runs, '3', 'the events went to the runs of the three partitions');
});

test('the feed and the index walk racing for the same events: each applied once', { timeout: TEST_TIMEOUT_MS }, async () => {
  await rows(DB, `SET ROLE app;
SELECT event_store_dynamo.create_projection(name => 'race', source => 'events'::regclass,
  handler => 'apply_race(events)'::regprocedure, tables => ARRAY['race_balances'::regclass],
  settle => interval '0 seconds');
SELECT event_store_dynamo.start_projection('race', poll => interval '200 ms');`);
  await waitFor('the race projection to catch up', () => readModelCurrent('race_balances'));
  await waitFor('its feed to start', async () => {
    const s = await feedStats('race');
    return s && s.openShards >= 1;
  });
  for (let i = 0; i < 5; i++) {
    await rows(DB, `SET ROLE app;
INSERT INTO events (domain, type, identifier, payload)
SELECT 'account', 'deposited', 'race' || (g % 3), jsonb_build_object('amount', g) FROM generate_series(1, 8) g;`);
  }
  await waitFor('the race read model', () => readModelCurrent('race_balances'));
  await waitFor('the feed read model', () => readModelCurrent('feed_balances'));
  for (const p of ['race', 'feed']) {
    const o = await appliedOnceInOrder(p);
    assert.equal(o.dups, 0, `${p}: no event applied twice`);
    assert.equal(o.disorder, 0, `${p}: each stream in sequence order`);
    assert.equal(o.logged, o.events, `${p}: every event applied`);
  }
  const s = await feedStats('race');
  console.log(`# race: of ${(await appliedOnceInOrder('race')).events} events, the feed applied ${s.applied} first`);
});

test('a stream that is gone falls back to the index walk, never to a loss', { timeout: TEST_TIMEOUT_MS }, async () => {
  // point the workers at a stream that does not exist (as a stream turned off and trimmed would be)
  await rows(DB, "UPDATE event_store_dynamo.change_feed SET stream_arn = stream_arn || '9';");
  await waitFor('the fallback', async () => {
    const s = await feedStats('race');
    return s && s.fallbacks >= 1 && /is gone/.test(s.lastFallback);
  });
  await rows(DB, `SET ROLE app;
INSERT INTO events (domain, type, identifier, payload)
SELECT 'account', 'deposited', 'race' || (g % 3), jsonb_build_object('amount', g) FROM generate_series(1, 6) g;`);
  // the index walk (settle 0) applies them
  await waitFor('the race read model without the feed', () => readModelCurrent('race_balances'));
  const o = await appliedOnceInOrder('race');
  assert.equal(o.dups, 0);
  assert.equal(o.logged, o.events);
  // the stream back: the feed goes on from its stored positions (the feed projection, whose
  // watermark is an hour behind, gets the events appended meanwhile: nothing lost for it either)
  await rows(DB, "UPDATE event_store_dynamo.change_feed SET stream_arn = left(stream_arn, -1);");
  await waitFor('the feed read model after the stream came back', () => readModelCurrent('feed_balances'), 120000);
  const f = await appliedOnceInOrder('feed');
  assert.equal(f.dups, 0);
  assert.equal(f.logged, f.events);
  await waitFor('the partitioned read model after the stream came back', () => readModelCurrent('parted_balances'), 120000);
  assert.equal((await appliedOnceInOrder('parted')).dups, 0);
});

test('the positions survive a server restart', { timeout: TEST_TIMEOUT_MS }, async () => {
  const [[stored]] = await rows(DB, `SELECT count(*) FROM event_store_dynamo.projection_feed_shard s
  JOIN event_store_dynamo.projection p ON p.run_key = s.run_key WHERE p.name = 'feed' AND s.position IS NOT NULL;`);
  assert.ok(Number(stored) >= 1, 'a position is stored');
  const before = (await feedStats('feed')).applied;
  cluster.restart({});
  // appended while the worker is coming back: the stored position still covers it
  await waitFor('the database after the restart', async () => {
    const r = await cluster.psql('SELECT 1;', { db: DB });
    return r.code === 0;
  });
  await rows(DB, `SET ROLE app;
INSERT INTO events (domain, type, identifier, payload) VALUES ('account', 'deposited', 'restart', '{"amount": 1}');`);
  await waitFor('the event after the restart', () => readModelCurrent('feed_balances'));
  assert.equal((await feedStats('feed')).applied, before + 1);
  for (const p of ['feed', 'parted']) {
    if (p === 'parted') await waitFor('the partitioned read model after the restart', () => readModelCurrent('parted_balances'));
    const o = await appliedOnceInOrder(p);
    assert.equal(o.dups, 0, `${p}: no event applied twice`);
    assert.equal(o.disorder, 0, `${p}: each stream in sequence order`);
    assert.equal(o.logged, o.events, `${p}: every event applied`);
  }
});

test('a position the shard no longer has (as after trimming): the shard is read again from its start, nothing lost, nothing twice', { timeout: TEST_TIMEOUT_MS }, async () => {
  const before = await feedStats('feed');
  await rows(DB, "SET ROLE app; SELECT event_store_dynamo.stop_projection('feed');");
  await waitFor('the worker to stop', async () => (await value('postgres', `SELECT count(*) FROM pg_stat_activity
 WHERE backend_type = 'event_store_dynamo projection' AND application_name = 'projection feed';`)) === '0', 20000);
  await rows(DB, `UPDATE event_store_dynamo.projection_feed_shard s SET position = '99999999999999999999999'
  FROM event_store_dynamo.projection p WHERE p.name = 'feed' AND s.run_key = p.run_key AND NOT s.ended;`);
  // appended while stopped: with the watermark an hour behind, only the feed can apply them
  await rows(DB, `SET ROLE app;
INSERT INTO events (domain, type, identifier, payload)
SELECT 'account', 'deposited', 'trimmed' || (g % 2), jsonb_build_object('amount', g) FROM generate_series(1, 3) g;`);
  await rows(DB, "SET ROLE app; SELECT event_store_dynamo.start_projection('feed', poll => interval '1 second');");
  // (DynamoDB Local answers such a position with a 500 after every retry: that takes a while)
  await waitFor('the events after the fallback', () => readModelCurrent('feed_balances'), 180000);
  const s = await feedStats('feed');
  assert.equal(s.fallbacks, before.fallbacks + 1);
  assert.match(s.lastFallback, /cannot be read/);
  assert.equal(s.applied, before.applied + 3);
  const o = await appliedOnceInOrder('feed');
  assert.equal(o.dups, 0, 'the records read again applied nothing twice');
  assert.equal(o.logged, o.events);
});

// ---------------------------------------------------------------------------------------------
// The cases DynamoDB Local's Streams never show, against the stack's scripted streams front
// (DDB_STREAMS_URL): shards that close and split, iterators that expire, records trimmed away,
// shards that disappear. The foreign table `fevents` reaches DynamoDB Local through that front,
// whose script says what DescribeStream, GetShardIterator and GetRecords answer; the records name
// items this test wrote (their keys read back from DynamoDB Local). Each case has a projection of
// its own over one domain; after each, its read model equals a full recompute from that domain's
// events, and the projection's counters say what the feed did.

const DDB_LOCAL_URL = process.env.DDB_LOCAL_URL;
const STREAMS_URL = process.env.DDB_STREAMS_URL;
const FRONT_TABLE = 'feedfront-schemeless-event-store';
const FRONT_ARN = `arn:aws:dynamodb:us-east-1:000000000000:table/${FRONT_TABLE}/stream/2024-01-01T00:00:00.000`;

/* A call of the streams front's control API. */
function streamsControl(method, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? '' : JSON.stringify(body);
    const req = http.request(`${STREAMS_URL}/__streams`, {
      method, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const out = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        if (res.statusCode !== 200) reject(new Error(`streams front: ${res.statusCode} ${out.error}`));
        else resolve(out);
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}

/*
 * A stream as the test scripts it: shards (id, parent, closed, trimmed, records) whose records are
 * events appended through fevents. set() sends it to the front with the options given.
 */
class Script {
  constructor(options = {}) {
    this.shards = [];
    this.options = options;
  }

  shard(id, { parent = null } = {}) {
    const s = { id, parent, closed: false, trimmed: 0, records: [] };
    this.shards.push(s);
    return s;
  }

  remove(id) {
    this.shards = this.shards.filter((s) => s.id !== id);
  }

  set(extra = {}) {
    return streamsControl('POST', { streamArn: FRONT_ARN, ...this.options, ...extra, shards: this.shards });
  }
}

/* The keys (id, created) of the items of these events, as DynamoDB Local holds them. */
async function itemKeys(events) {
  const ddb = new DynamoDBClient({
    endpoint: DDB_LOCAL_URL, region: 'us-east-1', maxAttempts: 3,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
  const byId = new Map();
  try {
    let start;
    do {
      const page = await ddb.send(new ScanCommand({
        TableName: FRONT_TABLE, ProjectionExpression: 'id, created', ExclusiveStartKey: start, ConsistentRead: true,
      }));
      for (const item of page.Items) byId.set(item.id.S.replace(/^EventID#/, ''), item);
      start = page.LastEvaluatedKey;
    } while (start);
  } finally {
    ddb.destroy();
  }
  return events.map((e) => {
    const keys = byId.get(e.id);
    assert.ok(keys, `no item for event ${e.id}`);
    return { Keys: { id: keys.id, created: keys.created } };
  });
}

/*
 * Appends events through fevents, one INSERT each so that each has an item written before the next:
 * [[identifier, amount], ...] in `domain`; returns them ({ id, identifier }) with their records.
 */
async function appendFront(domain, list) {
  const values = list.map(([ident, amount]) => `('${domain}', 'deposited', '${ident}', '{"amount": ${amount}}')`);
  const r = await rows(DB, `SET ROLE app;
${values.map((v) => `INSERT INTO fevents (domain, type, identifier, payload) VALUES ${v} RETURNING id, identifier;`).join('\n')}`);
  const events = r.map(([id, identifier]) => ({ id, identifier }));
  const records = await itemKeys(events);
  return events.map((e, i) => ({ ...e, record: records[i] }));
}

async function frontReadModelCurrent(domain) {
  const [[equal]] = await rows(DB, `SET ROLE app;
SELECT (SELECT coalesce(jsonb_agg(jsonb_build_array(account, balance, events) ORDER BY account), '[]')
          FROM front_balances WHERE domain = '${domain}')
     = (SELECT coalesce(jsonb_agg(jsonb_build_array(account, balance, events) ORDER BY account), '[]')
          FROM (SELECT identifier AS account, sum((payload->>'amount')::numeric) AS balance, count(*) AS events
                  FROM fevents WHERE domain = '${domain}' GROUP BY identifier) r);`);
  return equal === 't';
}

/* Each event of the domain applied once, each stream in sequence order; the order events were applied in. */
async function frontApplied(domain) {
  const [[dups, disorder, logged, events]] = await rows(DB, `SET ROLE app;
SELECT (SELECT count(*) FROM (SELECT event_id FROM front_log WHERE domain = '${domain}'
                              GROUP BY event_id HAVING count(*) > 1) d),
       (SELECT count(*) FROM (SELECT sequence <> coalesce(lag(sequence) OVER (PARTITION BY account ORDER BY n), 0) + 1 AS gap
                                FROM front_log WHERE domain = '${domain}') o WHERE gap),
       (SELECT count(*) FROM front_log WHERE domain = '${domain}'),
       (SELECT count(*) FROM fevents WHERE domain = '${domain}');`);
  const order = (await rows(DB, `SELECT event_id FROM front_log WHERE domain = '${domain}' ORDER BY n;`)).map((x) => x[0]);
  return { dups: Number(dups), disorder: Number(disorder), logged: Number(logged), events: Number(events), order };
}

async function assertAppliedOnce(domain) {
  assert.ok(await frontReadModelCurrent(domain), `${domain}: the read model equals a full recompute`);
  const a = await frontApplied(domain);
  assert.equal(a.dups, 0, `${domain}: no event applied twice`);
  assert.equal(a.disorder, 0, `${domain}: each stream applied in sequence order, none left out`);
  assert.equal(a.logged, a.events, `${domain}: every event applied`);
  return a;
}

/* The stored shards of a projection: { shard_id: { parent, position, ended } }. */
async function storedShards(projection) {
  const r = await rows(DB, `SELECT s.shard_id, coalesce(s.parent_shard_id, ''), coalesce(s.position, ''), s.ended
  FROM event_store_dynamo.projection_feed_shard s
  JOIN event_store_dynamo.projection p ON p.run_key = s.run_key WHERE p.name = '${projection}';`);
  return Object.fromEntries(r.map(([id, parent, position, ended]) => [id, { parent, position, ended: ended === 't' }]));
}

/* The front's log of Streams requests since the last reset, from index `from`. */
async function frontLog(from = 0) {
  return (await streamsControl('GET')).log.slice(from);
}

/* The last sequence number the front handed out for a shard. */
function lastHandedOut(log, shard) {
  const reads = log.filter((e) => e.operation === 'GetRecords' && e.shard === shard && e.sequenceNumbers);
  return reads.length ? reads[reads.length - 1].sequenceNumbers[1] : null;
}

async function startFrontProjection(name, domain, { settle = '1 hour' } = {}) {
  await rows(DB, `SET ROLE app;
SELECT event_store_dynamo.create_projection(name => '${name}', source => 'fevents'::regclass,
  handler => 'apply_front(fevents)'::regprocedure, tables => ARRAY['front_balances'::regclass],
  domains => ARRAY['${domain}'], settle => interval '${settle}', full_recheck => NULL);
SELECT event_store_dynamo.start_projection('${name}', poll => interval '200 ms');`);
  // its first round has read the stream: from here on, what the shards get is the feed's
  await waitFor(`the feed of ${name} to start`, async () => {
    const s = await feedStats(name);
    return s && s.openShards >= 1;
  });
}

async function stopWorker(name) {
  await rows(DB, `SET ROLE app; SELECT event_store_dynamo.stop_projection('${name}');`);
  await waitFor(`the worker of ${name} to stop`, async () => (await value('postgres', `SELECT count(*) FROM pg_stat_activity
 WHERE backend_type = 'event_store_dynamo projection' AND application_name = 'projection ${name}';`)) === '0', 20000);
}

async function startWorker(name) {
  await rows(DB, `SET ROLE app; SELECT event_store_dynamo.start_projection('${name}', poll => interval '200 ms');`);
}

async function dropFrontProjection(name) {
  await rows(DB, `SET ROLE app; SELECT event_store_dynamo.drop_projection('${name}');`);
  await streamsControl('DELETE');
}

/* The foreign table over the streams front, its store and stream, and the case's handler. */
async function setUpFront() {
  assert.ok(STREAMS_URL && DDB_LOCAL_URL, 'DDB_STREAMS_URL and DDB_LOCAL_URL must be set (source the stack.env)');
  await streamsControl('DELETE');
  await rows(DB, `
CREATE SERVER front_srv FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (endpoint '${STREAMS_URL}', s3_endpoint '${S3_URL}', s3_force_path_style 'true');
GRANT USAGE ON FOREIGN SERVER front_srv TO app;
CREATE USER MAPPING FOR app SERVER front_srv OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
CREATE USER MAPPING FOR postgres SERVER front_srv OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
SET ROLE app;
CREATE FOREIGN TABLE fevents (
  id text, domain text, type text, identifier text, correlation_id text, causation_id text,
  sequence bigint, payload jsonb, meta jsonb, created timestamptz, time_bucket text, s3_reference text
) SERVER front_srv OPTIONS (table_name_prefix 'feedfront-');
CREATE TABLE front_log (n bigserial PRIMARY KEY, domain text, event_id text, account text, sequence bigint);
CREATE TABLE front_balances (domain text, account text, balance numeric NOT NULL, events int NOT NULL,
                             PRIMARY KEY (domain, account));
CREATE FUNCTION apply_front(e fevents) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO front_log (domain, event_id, account, sequence) VALUES (e.domain, e.id, e.identifier, e.sequence);
  INSERT INTO front_balances VALUES (e.domain, e.identifier, (e.payload->>'amount')::numeric, 1)
    ON CONFLICT (domain, account) DO UPDATE SET balance = front_balances.balance + excluded.balance,
                                                events = front_balances.events + 1;
END $$;
RESET ROLE;
SELECT event_store_dynamo.reset_store('fevents');
-- the feed of a stream the front scripts: recorded as enable_change_feed records one, without
-- turning on a stream in DynamoDB Local (which cuts short the iterators of its other streams)
INSERT INTO event_store_dynamo.change_feed (source, table_name, stream_arn, view_type, stream_was_enabled, enabled_by)
VALUES ('fevents', '${FRONT_TABLE}', '${FRONT_ARN}', 'KEYS_ONLY', false, 'postgres');`);
}

test('scripted stream: a closed parent shard and its child, parent first, across a worker restart', { timeout: TEST_TIMEOUT_MS }, async () => {
  // the other projections are done with: their workers would only load the machine
  await rows(DB, `SET ROLE app; SELECT event_store_dynamo.stop_projection(name) FROM event_store_dynamo.projections
 WHERE name IN ('feed', 'parted', 'race');`);
  const D = 'lineage';
  const script = new Script({ pageSize: 1 });
  const parent = script.shard('shardId-00000001-lineage-parent');
  await script.set();
  await startFrontProjection('lineage', D);
  await stopWorker('lineage');

  // while the worker is away, the parent gets six records and closes, and its child gets six:
  // stream "split" runs 1 to 3 in the parent and 4 to 6 in the child; "a" is the parent's, "b" the child's
  const inParent = await appendFront(D, [['split', 1], ['a', 10], ['split', 2], ['a', 20], ['split', 3], ['a', 30]]);
  const inChild = await appendFront(D, [['split', 4], ['b', 100], ['split', 5], ['b', 200], ['split', 6], ['b', 300]]);
  parent.records.push(...inParent.map((e) => e.record));
  parent.closed = true;
  const child = script.shard('shardId-00000002-lineage-child', { parent: parent.id });
  child.records.push(...inChild.map((e) => e.record));
  await script.set();

  // one record a GetRecords, four GetRecords a shard and round: the parent takes two rounds,
  // and the worker knows of the child from its first one (DescribeStream when it starts)
  await startWorker('lineage');
  await waitFor('the lineage events', () => frontReadModelCurrent(D));
  const a = await assertAppliedOnce(D);
  const lastParent = Math.max(...inParent.map((e) => a.order.indexOf(e.id)));
  const firstChild = Math.min(...inChild.map((e) => a.order.indexOf(e.id)));
  assert.ok(lastParent < firstChild, `every event of the parent was applied before any of the child's (${a.order})`);
  let s = await feedStats('lineage');
  assert.equal(s.records, 12, 'each record read once');
  assert.equal(s.applied, 12, 'every event applied by the feed (settle is an hour)');
  assert.equal(s.fallbacks, 0);

  // the parent is finished: its stored position is its last record, and it is not read again
  const log = await frontLog();
  const ended = log.findIndex((e) => e.operation === 'GetRecords' && e.shard === parent.id && e.ended);
  assert.ok(ended >= 0, 'the parent was read to its end');
  const firstChildRead = log.findIndex((e) => e.shard === child.id);
  assert.ok(firstChildRead > ended, 'the child was first asked for after the parent was read to its end');
  const stored = await storedShards('lineage');
  assert.equal(stored[parent.id].ended, true);
  assert.equal(stored[parent.id].position, lastHandedOut(log, parent.id));
  assert.equal(stored[child.id].parent, parent.id);
  const parentRequests = () => frontLog().then((l) => l.filter((e) => e.shard === parent.id).length);
  const before = await parentRequests();

  const more = await appendFront(D, [['split', 7], ['b', 400]]);
  child.records.push(...more.map((e) => e.record));
  await script.set();
  await waitFor('the child\'s new records', () => frontReadModelCurrent(D));
  // and across a worker restart: the stored positions say the parent is done
  await stopWorker('lineage');
  const after = await appendFront(D, [['split', 8]]);
  child.records.push(...after.map((e) => e.record));
  await script.set();
  await startWorker('lineage');
  await waitFor('the child\'s records after the restart', () => frontReadModelCurrent(D));
  await assertAppliedOnce(D);
  assert.equal(await parentRequests(), before, 'the parent was not read again');
  s = await feedStats('lineage');
  assert.equal(s.records, 15);
  assert.equal(s.applied, 15);
  assert.equal(s.fallbacks, 0);
  assert.equal((await storedShards('lineage'))[child.id].position, lastHandedOut(await frontLog(), child.id),
    'the child\'s position is its last record');
  await dropFrontProjection('lineage');
});

test('scripted stream: a parent split in two children, found through a paged DescribeStream', { timeout: TEST_TIMEOUT_MS }, async () => {
  const D = 'split';
  // one shard a DescribeStream page: every listing takes as many pages as there are shards
  const script = new Script({ describePageSize: 1 });
  const other = script.shard('shardId-00000003-split-other');   // an open shard with nothing for this case
  const parent = script.shard('shardId-00000004-split-parent');
  await script.set();
  await startFrontProjection('split', D);

  // read live: two records in the parent
  const first = await appendFront(D, [['s', 1], ['x', 5]]);
  parent.records.push(...first.map((e) => e.record));
  await script.set();
  await waitFor('the parent\'s first records', () => frontReadModelCurrent(D));

  // the parent gets one more and closes; stream "s" goes on in both children (3 in the second
  // child, 4 in the first: read in the other order, it is held until 3 is applied)
  const last = await appendFront(D, [['x', 6]]);
  const s3 = await appendFront(D, [['s', 3]]);
  const s4 = await appendFront(D, [['s', 4], ['y', 7]]);
  const s5 = await appendFront(D, [['s', 5], ['z', 8]]);
  parent.records.push(...last.map((e) => e.record));
  parent.closed = true;
  const left = script.shard('shardId-00000005-split-left', { parent: parent.id });
  const right = script.shard('shardId-00000006-split-right', { parent: parent.id });
  left.records.push(...s4.map((e) => e.record));
  right.records.push(...s3.map((e) => e.record), ...s5.map((e) => e.record));
  await script.set();
  await waitFor('the children\'s events', () => frontReadModelCurrent(D));
  await assertAppliedOnce(D);
  const s = await feedStats('split');
  assert.equal(s.records, 8, 'each record read once');
  assert.equal(s.applied, 8, 'all through the feed');
  assert.equal(s.fallbacks, 0);

  // the listings were read page after page, each from the shard where the one before stopped
  const log = await frontLog();
  const describes = log.filter((e) => e.operation === 'DescribeStream');
  assert.ok(describes.some((e) => e.shards.includes(left.id)) && describes.some((e) => e.shards.includes(right.id)),
    'the children were found on later pages');
  for (let i = 0; i + 1 < describes.length; i++) {
    if (describes[i].last) assert.equal(describes[i + 1].exclusiveStart, describes[i].last, 'the next page starts where the last stopped');
  }
  const stored = await storedShards('split');
  assert.deepEqual(Object.keys(stored).sort(), [other.id, parent.id, left.id, right.id].sort());
  assert.equal(stored[parent.id].ended, true);
  assert.equal(stored[left.id].parent, parent.id);
  assert.equal(stored[right.id].parent, parent.id);
  for (const child of [left, right]) {
    const firstRead = log.findIndex((e) => e.shard === child.id);
    const parentEnd = log.findIndex((e) => e.operation === 'GetRecords' && e.shard === parent.id && e.ended);
    assert.ok(parentEnd >= 0 && firstRead > parentEnd, `${child.id} first asked for after its parent was read to its end`);
    assert.equal(log[firstRead].type, 'TRIM_HORIZON', 'a child is read from its first record');
  }
  await dropFrontProjection('split');
});

test('scripted stream: an expired iterator, between rounds and within one, renewed from the position', { timeout: TEST_TIMEOUT_MS }, async () => {
  const D = 'expiry';
  const script = new Script({ pageSize: 2 });
  const shard = script.shard('shardId-00000007-expiry');
  await script.set();
  await startFrontProjection('expiry', D);
  const add = async (list) => {
    const evs = await appendFront(D, list);
    shard.records.push(...evs.map((e) => e.record));
    return evs;
  };

  // the iterator the worker got at the shard's latest record expires before any record came:
  // the new one starts at the shard's oldest record (LATEST would skip what came meanwhile)
  await add([['e', 1], ['f', 2], ['e', 3]]);
  await script.set({ expireIterators: true });
  await waitFor('the first records', () => frontReadModelCurrent(D));
  let log = await frontLog();
  const first = log.findIndex((e) => e.error === 'ExpiredIteratorException');
  assert.ok(first >= 0, 'the worker met the expired iterator');
  assert.equal(log.slice(first + 1).find((e) => e.operation === 'GetShardIterator').type, 'TRIM_HORIZON');
  const position = lastHandedOut(log, shard.id);
  const from0 = log.length;

  // between rounds: the iterator the worker keeps expires (as after 15 minutes)
  await add([['e', 4], ['f', 5], ['e', 6]]);
  await script.set({ expireIterators: true });
  await waitFor('the records after the expiry', () => frontReadModelCurrent(D));
  log = await frontLog(from0);
  let expired = log.findIndex((e) => e.error === 'ExpiredIteratorException');
  assert.ok(expired >= 0, 'the worker met the expired iterator');
  let renewal = log.slice(expired + 1).find((e) => e.operation === 'GetShardIterator');
  assert.equal(renewal.type, 'AFTER_SEQUENCE_NUMBER');
  assert.equal(renewal.sequenceNumber, position, 'renewed after the stored position');

  // within a round: the second GetRecords of the next batch answers ExpiredIteratorException
  const from = (await frontLog()).length;
  const midPosition = shard.records.length;
  await add([['e', 7], ['f', 8], ['e', 9], ['f', 10], ['e', 11], ['f', 12]]);
  await script.set({ faults: [{ operation: 'GetRecords', shard: shard.id, skip: 1, error: 'ExpiredIteratorException' }] });
  await waitFor('the records after the expiry within a round', () => frontReadModelCurrent(D));
  log = await frontLog(from);
  expired = log.findIndex((e) => e.error === 'ExpiredIteratorException');
  assert.ok(expired >= 1, 'the scripted expiry was met');
  renewal = log.slice(expired + 1).find((e) => e.operation === 'GetShardIterator');
  assert.equal(renewal.type, 'AFTER_SEQUENCE_NUMBER');
  assert.equal(renewal.sequenceNumber, log[expired - 1].sequenceNumbers[1], 'renewed after the last record read');
  assert.equal(renewal.position, midPosition + 2);

  await assertAppliedOnce(D);
  const s = await feedStats('expiry');
  assert.equal(s.records, 12, 'each record read once: nothing read again, nothing skipped');
  assert.equal(s.applied, 12, 'all through the feed');
  assert.equal(s.fallbacks, 0, 'an expired iterator is no fallback');
  assert.equal((await storedShards('expiry'))[shard.id].position, lastHandedOut(await frontLog(), shard.id));

  // Streams throttling (LimitExceededException) is retried, not taken for a position refused
  await stopWorker('expiry');
  await add([['e', 13]]);
  await script.set({ faults: [{ operation: 'GetShardIterator', shard: shard.id, error: 'LimitExceededException', times: 2 }] });
  await startWorker('expiry');
  await waitFor('the record after the throttled restart', () => frontReadModelCurrent(D));
  const t = await feedStats('expiry');
  assert.equal(t.records, 13, 'read on from the stored position');
  assert.equal(t.fallbacks, 0, 'throttling is no fallback');
  log = await frontLog();
  assert.equal(log.filter((e) => e.error === 'LimitExceededException').length, 2);
  await dropFrontProjection('expiry');
});

test('scripted stream: positions before the trim horizon start the shard there; the index walk covers the rest', { timeout: TEST_TIMEOUT_MS }, async () => {
  const D = 'trim';
  const script = new Script();
  const shard = script.shard('shardId-00000008-trim');
  await script.set();
  // settle 3 seconds: the index walk applies what the feed could not read
  await startFrontProjection('trim', D, { settle: '3 seconds' });
  const add = async (list) => {
    const evs = await appendFront(D, list);
    shard.records.push(...evs.map((e) => e.record));
    return evs;
  };
  await add([['t', 1], ['u', 2]]);
  await script.set();
  await waitFor('the first position', async () => (await storedShards('trim'))[shard.id].position === lastHandedOut(await frontLog(), shard.id));
  await waitFor('the first records', () => frontReadModelCurrent(D));

  // the worker away, six more records, and the first five trimmed: the stored position is gone
  await stopWorker('trim');
  await add([['t', 3], ['u', 4], ['t', 5], ['u', 6], ['t', 7], ['u', 8]]);
  shard.trimmed = 5;
  await script.set();
  let from = (await frontLog()).length;
  await startWorker('trim');
  await waitFor('the trimmed events', () => frontReadModelCurrent(D));
  await waitFor('the feed after the trim horizon', async () => (await feedStats('trim')).records === 5);
  let log = await frontLog(from);
  const refused = log.findIndex((e) => e.operation === 'GetShardIterator' && e.error === 'TrimmedDataAccessException');
  assert.ok(refused >= 0, 'the stored position was refused');
  assert.equal(log[refused].type, 'AFTER_SEQUENCE_NUMBER');
  const again = log.slice(refused + 1).find((e) => e.operation === 'GetShardIterator');
  assert.equal(again.type, 'TRIM_HORIZON', 'then the shard was read from its trim horizon');
  assert.equal(again.position, 5);
  let s = await feedStats('trim');
  assert.equal(s.fallbacks, 1);
  assert.match(s.lastFallback, /cannot be read \(TrimmedDataAccessException\)/);

  // an iterator the worker holds, whose records are trimmed before it is used
  from = (await frontLog()).length;
  await add([['t', 9], ['u', 10]]);
  shard.trimmed = shard.records.length;
  await script.set();
  await waitFor('the events trimmed under the iterator', () => frontReadModelCurrent(D));
  await waitFor('the fallback', async () => (await feedStats('trim')).fallbacks === 2);
  log = await frontLog(from);
  const trimmed = log.findIndex((e) => e.operation === 'GetRecords' && e.error === 'TrimmedDataAccessException');
  assert.ok(trimmed >= 0);
  assert.equal(log.slice(trimmed + 1).find((e) => e.operation === 'GetShardIterator').type, 'TRIM_HORIZON');
  s = await feedStats('trim');
  assert.match(s.lastFallback, /trimmed past the iterator/);
  assert.equal(s.records, 5, 'nothing read twice');
  await add([['t', 11]]);
  await script.set();
  await waitFor('a record after the trim horizon', async () => (await feedStats('trim')).records === 6);
  await waitFor('the last event', () => frontReadModelCurrent(D));
  await assertAppliedOnce(D);
  await dropFrontProjection('trim');
});

test('scripted stream: shards that disappear, after their children were read and before their end', { timeout: TEST_TIMEOUT_MS }, async () => {
  const D = 'gone';
  const script = new Script();
  const parent = script.shard('shardId-00000009-gone-parent');
  await script.set();
  // settle 3 seconds: the index walk applies what a shard took away with it
  await startFrontProjection('gone', D, { settle: '3 seconds' });
  const put = async (shard, list) => {
    const evs = await appendFront(D, list);
    shard.records.push(...evs.map((e) => e.record));
    await script.set();
  };
  await put(parent, [['g', 1], ['h', 2]]);
  parent.closed = true;
  const child = script.shard('shardId-00000010-gone-child', { parent: parent.id });
  await put(child, [['g', 3]]);
  await waitFor('the child\'s record', async () => (await feedStats('gone')).records === 3);

  // the parent, read to its end, is trimmed away: nothing is lost, nothing asks for it, and the
  // next listing (when the worker starts again) forgets it
  script.remove(parent.id);
  await put(child, [['h', 4], ['g', 5]]);
  await waitFor('the child read on', async () => (await feedStats('gone')).records === 5);
  await stopWorker('gone');
  await put(child, [['h', 6]]);
  let from = (await frontLog()).length;
  await startWorker('gone');
  await waitFor('the child read on after a restart', async () => (await feedStats('gone')).records === 6);
  let log = await frontLog(from);
  assert.equal(log.filter((e) => e.shard === parent.id).length, 0, 'the parent gone is not asked for');
  assert.equal((await storedShards('gone'))[parent.id], undefined, 'the parent gone is forgotten, its stored row too');
  let s = await feedStats('gone');
  assert.equal(s.fallbacks, 0, 'a shard gone after its end is no fallback');

  // the child closes, splits into a grandchild, and disappears before the worker read its last
  // records: given up (the index walk applies those), and the grandchild is read at once
  from = (await frontLog()).length;
  const lost = await appendFront(D, [['g', 7], ['h', 8]]);
  child.records.push(...lost.map((e) => e.record));
  child.closed = true;
  const grandchild = script.shard('shardId-00000011-gone-grandchild', { parent: child.id });
  grandchild.records.push(...(await appendFront(D, [['g', 9], ['h', 10]])).map((e) => e.record));
  script.remove(child.id);
  await script.set();
  await waitFor('the grandchild\'s records', async () => (await feedStats('gone')).records === 8);
  await waitFor('the events of the shard gone', () => frontReadModelCurrent(D));
  s = await feedStats('gone');
  assert.equal(s.fallbacks, 1);
  assert.match(s.lastFallback, new RegExp(`shard ${child.id} is gone`));
  log = await frontLog(from);
  assert.equal(log.find((e) => e.shard === grandchild.id).type, 'TRIM_HORIZON');
  // given up, then (as the next listing no longer has it) forgotten
  assert.equal((await storedShards('gone'))[child.id], undefined);
  await assertAppliedOnce(D);
  await dropFrontProjection('gone');
});
