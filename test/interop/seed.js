// Seeds the event stores the SQL tests read, through the published Node adapter, and then
// verifies, item by item, that DynamoDB and S3 hold exactly what was meant:
//   - REGRESS (test/data/regress.js): small and fixed, for the pg_regress expected output;
//   - COST (test/data/cost.js): empty years, a large month and a chunk of events sharing one
//     millisecond, for the request counts and the replay order of sql/cost.sql;
//   - INTEROP (test/data/interop.js): ~6,000 generated events, for test/interop/read.js and
//     faults.js, which read what this script saves to test/.stack/run/interop-expected.json.
// Both stores are reset first, so running this again gives the same stores.
//
// Usage: node test/interop/seed.js [regress|cost|interop]...   (all when no argument)
// Needs DDB_LOCAL_URL (or DDB_URL), S3_URL and the AWS_TEST_* variables.
'use strict';

const fs = require('fs');
const path = require('path');
const util = require('util');
const {
  PutItemCommand, DeleteTableCommand, DescribeTableCommand, ScanCommand,
} = require('@aws-sdk/client-dynamodb');
const { GetObjectCommand } = require('@aws-sdk/client-s3');
const { unmarshall } = require('@aws-sdk/util-dynamodb');
const { makeRepo, makeDynamoClient, makeS3Client, emptyBucket } = require('./adapter');
const { Report } = require('./report');
const regress = require('../data/regress');
const cost = require('../data/cost');
const interop = require('../data/interop');

const RUN_DIR = path.join(__dirname, '..', '.stack', 'run');
const INTEROP_EXPECTED = path.join(RUN_DIR, 'interop-expected.json');
const REGRESS_EXPECTED = path.join(RUN_DIR, 'regress-expected.json');
const WORKERS = 8;          // parallel storeEvents callers in the interop seeding
const BATCH = 100;          // events per storeEvents call

const ddb = makeDynamoClient();
const s3 = makeS3Client();

/* The event as the adapter takes it: `created` a Date, absent keys left out. */
function toAdapterEvent(e) {
  const out = { id: e.id, domain: e.domain, type: e.type, created: new Date(e.created), payload: e.payload };
  for (const k of ['identifier', 'correlationId', 'causationId', 'meta'])
    if (e[k] !== undefined)
      out[k] = e[k];
  return out;
}

const streamKey = (e) => `${e.domain}::${e.identifier === undefined ? '' : e.identifier}`;

/*
 * The record the read tests compare against: every column, null when absent, with the payload
 * both as a value and as the exact JSON text stored (in the item, or for an offloaded event,
 * JSON.stringify of the payload value in the S3 body, which is the same string).
 */
function expectedRecord(e, bucket, offloaded) {
  const payloadText = e.payload === null || e.payload === undefined ? null : JSON.stringify(e.payload);
  return {
    id: e.id,
    domain: e.domain,
    type: e.type,
    identifier: e.identifier === undefined ? null : e.identifier,
    correlationId: e.correlationId === undefined ? null : e.correlationId,
    causationId: e.causationId === undefined ? null : e.causationId,
    sequence: e.sequence,
    created: e.created,
    timeBucket: e.created.slice(0, 7),
    payload: payloadText === null ? null : e.payload,
    payloadText,
    meta: e.meta === undefined ? null : e.meta,
    s3Reference: offloaded ? `${bucket}::events/${e.id}.json` : null,
  };
}

/* Every item of a table, low-level AttributeValue maps, read with parallel Scan segments. */
async function scanAll(tableName) {
  const segments = 4;
  const parts = await Promise.all(Array.from({ length: segments }, async (_, segment) => {
    const items = [];
    let key;
    do {
      const page = await ddb.send(new ScanCommand({
        TableName: tableName, Segment: segment, TotalSegments: segments, ExclusiveStartKey: key,
      }));
      items.push(...page.Items);
      key = page.LastEvaluatedKey;
    } while (key);
    return items;
  }));
  return parts.flat();
}

async function tableExists(tableName) {
  try {
    await ddb.send(new DescribeTableCommand({ TableName: tableName }));
    return true;
  } catch (e) {
    if (e.name === 'ResourceNotFoundException')
      return false;
    throw e;
  }
}

async function s3Body(reference) {
  const [Bucket, Key] = reference.split('::');
  const r = await s3.send(new GetObjectCommand({ Bucket, Key }));
  return JSON.parse(await r.Body.transformToString());
}

/*
 * Checks that the items in `tableName` are exactly the events of `records` (written by the
 * adapter) plus `extraItems` (written raw) plus the stream heads `heads` ({key: version}).
 */
async function verifyStore(report, label, tableName, records, extraItems, heads) {
  const items = await scanAll(tableName);
  const byId = new Map(items.map((it) => [it.id.S, it]));
  report.check(`${label}: ${items.length} items in ${tableName} (events, raw items, stream heads)`,
    items.length === records.length + extraItems.length + Object.keys(heads).length && byId.size === items.length,
    `expected ${records.length} + ${extraItems.length} + ${Object.keys(heads).length}`);

  const problems = [];
  for (const r of records) {
    const it = byId.get('EventID#' + r.id);
    if (!it) {
      problems.push(`${r.id}: missing`);
      continue;
    }
    const item = unmarshall(it);
    const want = {
      id: 'EventID#' + r.id, created: r.created, timeBucket: r.timeBucket, domain: r.domain, type: r.type,
      sequence: r.sequence,
    };
    if (r.identifier !== null) want.identifier = r.identifier;
    if (r.correlationId !== null) want.correlationId = r.correlationId;
    if (r.causationId !== null) want.causationId = r.causationId;
    if (r.meta !== null) want.meta = r.meta;
    if (r.s3Reference !== null) want.s3Reference = r.s3Reference;
    else if (r.payloadText !== null) want.payload = r.payloadText;
    if (!util.isDeepStrictEqual(item, want))
      problems.push(`${r.id}: item ${util.inspect(item, { maxStringLength: 80, depth: 4 })} expected ${util.inspect(want, { maxStringLength: 80, depth: 4 })}`);
    if (r.s3Reference !== null) {
      const body = await s3Body(r.s3Reference);
      if (JSON.stringify(body.payload) !== r.payloadText || body.id !== r.id || body.sequence !== undefined)
        problems.push(`${r.id}: S3 body at ${r.s3Reference} does not hold the payload`);
    }
  }
  report.check(`${label}: every adapter-written item holds exactly the expected attributes` +
    ' (payload text byte for byte, sequence, meta, s3Reference)', problems.length === 0, problems.slice(0, 5).join('\n'));

  const rawProblems = [];
  for (const want of extraItems) {
    const got = byId.get(want.id.S);
    const norm = (item) => item && Object.fromEntries(Object.entries(item).map(([k, v]) =>
      [k, v.SS ? { SS: [...v.SS].sort() } : v.NS ? { NS: [...v.NS].sort() } : v]));
    if (!util.isDeepStrictEqual(norm(got), norm(want)))
      rawProblems.push(`${want.id.S}: got ${JSON.stringify(got)}`);
  }
  if (extraItems.length > 0)
    report.check(`${label}: ${extraItems.length} raw items read back as written`, rawProblems.length === 0, rawProblems.join('\n'));

  const headProblems = [];
  for (const [key, version] of Object.entries(heads)) {
    const it = byId.get(`EventID#HEAD::${key}`);
    if (!it || it.created.S !== 'HEAD' || it.version.N !== String(version) || it.timeBucket)
      headProblems.push(`${key}: ${JSON.stringify(it)} expected version ${version}`);
  }
  report.check(`${label}: ${Object.keys(heads).length} stream heads with version = events in the stream`,
    headProblems.length === 0, headProblems.slice(0, 5).join('\n'));
}

async function seedRegress(report) {
  const started = Date.now();
  const repo = await makeRepo({ prefix: regress.PREFIX, bucket: regress.BUCKET });
  await repo.resetStore();
  await emptyBucket(s3, regress.BUCKET);

  // Adapter-written events, one storeEvents call each, in the fixed order.
  const seq = {};
  const records = [];
  for (const e of regress.ADAPTER_EVENTS) {
    await repo.storeEvents([toAdapterEvent(e)]);
    const key = streamKey(e);
    seq[key] = (seq[key] || 0) + 1;
    const offloaded = e.payload === regress.OFFLOADED_PAYLOAD;
    records.push(expectedRecord({ ...e, sequence: seq[key] }, regress.BUCKET, offloaded));
  }

  // What the adapter cannot write: raw items, and their stream head.
  const raw = regress.rawItems();
  for (const Item of [...raw, regress.RAW_HEAD])
    await ddb.send(new PutItemCommand({ TableName: regress.TABLE, Item }));

  // The empty store, and the store that must not exist.
  const empty = await makeRepo({ prefix: regress.EMPTY_PREFIX, bucket: regress.BUCKET });
  await empty.resetStore();
  try {
    await ddb.send(new DeleteTableCommand({ TableName: regress.MISSING_TABLE }));
  } catch (e) {
    if (e.name !== 'ResourceNotFoundException')
      throw e;
  }
  console.log(`# seeded REGRESS in ${Date.now() - started} ms`);

  await verifyStore(report, 'regress', regress.TABLE, records, raw,
    { ...seq, 'raw::r1': raw.length });
  const emptyItems = await scanAll(regress.EMPTY_PREFIX + 'schemeless-event-store');
  report.check(`regress: ${regress.EMPTY_PREFIX}schemeless-event-store exists and holds nothing`, emptyItems.length === 0,
    `${emptyItems.length} items`);
  report.check(`regress: ${regress.MISSING_TABLE} does not exist`, !(await tableExists(regress.MISSING_TABLE)));
  report.note(`regress: the future event ${regress.FUTURE_EVENT_ID} is dated ${regress.nextMonthStart()}`);

  fs.mkdirSync(RUN_DIR, { recursive: true });
  fs.writeFileSync(REGRESS_EXPECTED, JSON.stringify({
    futureEventId: regress.FUTURE_EVENT_ID,
    futureCreated: regress.nextMonthStart(),
    adapterEvents: records.map((r) => (r.s3Reference === null ? r
      : { ...r, payload: `<offloaded: ${r.payloadText.length} characters>`, payloadText: undefined })),
    rawItems: regress.rawItems(),
  }, null, 1));
}

async function seedCost(report) {
  const started = Date.now();
  const repo = await makeRepo({ prefix: cost.PREFIX, bucket: cost.BUCKET });
  await repo.resetStore();
  await emptyBucket(s3, cost.BUCKET);

  const written = [];
  for (const batch of cost.bulkBatches()) {
    await repo.storeEvents(batch.map(toAdapterEvent));
    written.push(...batch);
  }
  await repo.storeEvents([toAdapterEvent(cost.EDGE_EVENTS[0])]);
  // one call: the adapter writes the chunk's streams in transactions of their own, one millisecond
  const chunk = cost.tieChunk();
  await repo.storeEvents(chunk.map(toAdapterEvent));
  await repo.storeEvents([toAdapterEvent(cost.EDGE_EVENTS[1])]);
  const now = cost.nowEvent();
  await repo.storeEvents([toAdapterEvent(now)]);
  written.push(cost.EDGE_EVENTS[0], ...chunk, cost.EDGE_EVENTS[1], now);
  console.log(`# seeded COST (${written.length} events) in ${Date.now() - started} ms`);

  const heads = {};
  for (const e of written)
    heads[streamKey(e)] = Math.max(heads[streamKey(e)] || 0, e.sequence);
  await verifyStore(report, 'cost', cost.TABLE, written.map((e) => expectedRecord(e, cost.BUCKET, false)), [], heads);
  report.check('cost: 40 events share the millisecond ' + cost.TIE_CREATED,
    written.filter((e) => e.created === cost.TIE_CREATED).length === 40);
  report.note(`cost: the NOW event is dated ${now.created}`);
}

/*
 * Cuts a worker's queue, in order, into storeEvents batches of at most BATCH events, of which at
 * most MAX_NEW_STREAM belong to a stream that has no head yet. That limit works around a defect of
 * the adapter: it splits a stream's events into transactions of 25 and, when it does, conditions
 * every one of them on `version = :expected`, the first included; for a stream with no head yet
 * that condition cannot hold, so a first write of more than 25 events to a stream is cancelled (and
 * then, since @schemeless/event-store-types 6 no longer exports ConcurrencyError, reported as
 * "ConcurrencyError is not a constructor").
 */
const MAX_NEW_STREAM = 25;
function batches(queue) {
  const out = [];
  const written = new Set();          // streams whose head an earlier batch created
  let batch = [];
  let perStream = new Map();
  const flush = () => {
    out.push(batch);
    for (const key of perStream.keys())
      written.add(key);
    batch = [];
    perStream = new Map();
  };
  for (const e of queue) {
    const key = streamKey(e);
    if (batch.length === BATCH || (!written.has(key) && (perStream.get(key) || 0) === MAX_NEW_STREAM))
      flush();
    batch.push(e);
    perStream.set(key, (perStream.get(key) || 0) + 1);
  }
  if (batch.length > 0)
    flush();
  return out;
}

async function seedInterop(report) {
  const started = Date.now();
  const repo = await makeRepo({ prefix: interop.PREFIX, bucket: interop.BUCKET });
  await repo.resetStore();
  await emptyBucket(s3, interop.BUCKET);
  const events = interop.generate();

  // Streams go round-robin to the workers. A worker's queue holds its streams one after the other,
  // each stream's events in created (= sequence) order; it stores them in batches of up to 100
  // (spanning several streams), one batch at a time, so every stream is written in order. Keeping a
  // stream's events together means fewer, fuller transactions than batches in global created order.
  const streamWorker = new Map();
  const streamEvents = new Map();
  for (const e of events) {
    const key = streamKey(e);
    if (!streamWorker.has(key)) {
      streamWorker.set(key, streamWorker.size % WORKERS);
      streamEvents.set(key, []);
    }
    streamEvents.get(key).push(e);
  }
  const queues = Array.from({ length: WORKERS }, () => []);
  for (const [key, list] of streamEvents)
    queues[streamWorker.get(key)].push(...list);
  await Promise.all(queues.map(async (queue) => {
    for (const batch of batches(queue))
      await repo.storeEvents(batch.map(toAdapterEvent));
  }));
  console.log(`# stored ${events.length} INTEROP events over ${streamWorker.size} streams in ${Date.now() - started} ms`);

  const records = events.map((e) => expectedRecord(e, interop.BUCKET, e.offloaded));
  const heads = {};
  for (const e of events)
    heads[streamKey(e)] = e.sequence;
  await verifyStore(report, 'interop', interop.PREFIX + 'schemeless-event-store', records, [], heads);
  report.check('interop: 4,000 events in 2024-06 and events in every month 2023-11..2025-02',
    records.filter((r) => r.timeBucket === '2024-06').length >= 4000 &&
    new Set(records.map((r) => r.timeBucket)).size === 16);
  report.check('interop: at least two offloaded events, one over 400 KB',
    records.filter((r) => r.s3Reference).length >= 2 &&
    records.some((r) => r.s3Reference && Buffer.byteLength(r.payloadText) > 400 * 1024));

  fs.mkdirSync(RUN_DIR, { recursive: true });
  fs.writeFileSync(INTEROP_EXPECTED, JSON.stringify({
    prefix: interop.PREFIX, bucket: interop.BUCKET, seed: interop.SEED, events: records,
  }));
  console.log(`# wrote ${path.relative(process.cwd(), INTEROP_EXPECTED)} (${records.length} events); seeding took ${Date.now() - started} ms`);
}

async function main() {
  const which = process.argv.slice(2);
  const want = (name) => which.length === 0 || which.includes(name);
  const report = new Report();
  try {
    if (want('regress'))
      await seedRegress(report);
    if (want('cost'))
      await seedCost(report);
    if (want('interop'))
      await seedInterop(report);
  } catch (e) {
    report.check('seeding ran to the end', false, e.stack || String(e));
  }
  return report.finish();
}

main().then((status) => process.exit(status));
