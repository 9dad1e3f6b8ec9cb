// Interop, write side: what SQL appends must read back through the published Node adapter, and the
// two writers must be able to take turns on the same streams. On a fresh store of its own
// (`iw-schemeless-event-store`, offloads in bucket `iw-events`), this script
//   1. appends through SQL: single rows (defaults, explicit ids and times in other zones, NULL
//      optional columns, every JSON shape of payload and meta), a COPY, an offloaded event, the
//      events of an AFTER INSERT trigger, and 10,000 rows from one INSERT ... SELECT over 500
//      streams; a rolled-back transaction and a rolled-back trigger write nothing;
//   2. reads the raw items back with @aws-sdk/client-dynamodb and the offloaded body from S3 and
//      checks the layout of the SPEC attribute by attribute (ids, created, timeBucket, compact
//      payload text, meta types, absent NULLs, stream heads, nothing else in the table or bucket);
//   3. replays the store with the adapter's getAllEvents: every event equal; and asks the
//      adapter's getStreamSequence for every stream: equal to stream_version and to the highest
//      sequence SQL shows;
//   4. appends through the adapter's storeEvents to streams SQL wrote (and to new ones): no
//      concurrency error, the next sequences, as SQL then sees them;
//   5. continues through SQL the streams the adapter wrote: the next sequences, no conflict;
//   6. replays everything once more, through the adapter and through SQL.
// Known defects of the adapter, not failures: its replay stops at the current month (every event
// here is older or of this month), an offloaded event comes back without `sequence` (compared
// through the item instead), and its first write of more than 25 events to a stream without a
// head fails (its batches to new streams here stay at 25 or less).
//
// Usage: node test/interop/write.js   (needs PG*, DDB_URL, DDB_LOCAL_URL, S3_URL, AWS_TEST_*)
// Prints `ok - ...` / `not ok - ...` per check and `N passed, N failed`; exits 1 on any failure.
'use strict';

const util = require('util');
const { ScanCommand } = require('@aws-sdk/client-dynamodb');
const { GetObjectCommand, ListObjectsV2Command } = require('@aws-sdk/client-s3');
const { unmarshall } = require('@aws-sdk/util-dynamodb');
const { makeRepo, makeDynamoClient, makeS3Client, emptyBucket } = require('./adapter');
const { Report, diffRecords } = require('./report');
const { psql, lit } = require('./psql');

const PREFIX = 'iw-';
const TABLE = `${PREFIX}schemeless-event-store`;
const BUCKET = 'iw-events';
const SEED = 20240917;
const BULK_EVENTS = 10000;
const BULK_STREAMS = 500;
const PAGE_SIZE = 500;
const QUERY_TIMEOUT_MS = 600000;

const env = process.env;
const CREATED_ISO = `to_char(created AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
const ALL_COLUMNS = `id text, domain text, type text, identifier text, correlation_id text, causation_id text,
  sequence bigint, payload jsonb, meta jsonb, created timestamptz, time_bucket text, s3_reference text`;
/* What RETURNING and replays give for each event, one JSON object a row. */
const ROW_JSON = `json_build_object('id', id, 'domain', domain, 'type', type, 'identifier', identifier,
  'correlationId', correlation_id, 'causationId', causation_id, 'sequence', sequence, 'payload', payload,
  'meta', meta, 'created', ${CREATED_ISO}, 'timeBucket', time_bucket, 's3Reference', s3_reference)`;

/* mulberry32: a small PRNG with a fixed sequence for a fixed seed. */
const { prng } = require('../data/interop'); // the seeded generator the seed data uses

const rnd = prng(SEED);
const int = (lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1));
const pick = (arr) => arr[Math.floor(rnd() * arr.length)];
const hex = (n) => Array.from({ length: n }, () => '0123456789abcdef'[int(0, 15)]).join('');
const uuid = () => `${hex(8)}-${hex(4)}-4${hex(3)}-${pick(['8', '9', 'a', 'b'])}${hex(3)}-${hex(12)}`;
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const streamKey = (domain, identifier) => `${domain}::${identifier === null || identifier === undefined ? '' : identifier}`;

/*
 * What the store must hold: every event appended (the record the checks compare against, with
 * every column, null when absent) and the number of events of every stream.
 */
class Model {
  constructor() {
    this.events = [];
    this.byId = new Map();
    this.versions = new Map();
  }

  /* The sequence the next event of the stream gets. */
  next(domain, identifier) {
    return (this.versions.get(streamKey(domain, identifier)) || 0) + 1;
  }

  /* Records an appended event; `e` holds at least id, domain, type and created. */
  add(e) {
    const key = streamKey(e.domain, e.identifier);
    const sequence = (this.versions.get(key) || 0) + 1;
    this.versions.set(key, sequence);
    const r = {
      id: e.id, domain: e.domain, type: e.type,
      identifier: e.identifier === undefined ? null : e.identifier,
      correlationId: e.correlationId === undefined ? null : e.correlationId,
      causationId: e.causationId === undefined ? null : e.causationId,
      sequence,
      payload: e.payload === undefined ? null : e.payload,
      meta: e.meta === undefined ? null : e.meta,
      created: e.created,
      timeBucket: e.created === undefined ? undefined : e.created.slice(0, 7),
      s3Reference: e.offloaded ? `${BUCKET}::events/${e.id}.json` : null,
      writer: e.writer || 'sql',
    };
    this.events.push(r);
    this.byId.set(r.id, r);
    return r;
  }

  streams() {
    return [...this.versions].map(([key, version]) => {
      const i = key.indexOf('::');
      const identifier = key.slice(i + 2);
      return { key, domain: key.slice(0, i), identifier: identifier === '' ? null : identifier, version };
    });
  }
}

// --- SQL helpers -----------------------------------------------------------------------------

/* Runs `sql` (stopping at the first error) and returns its output lines parsed as JSON. */
async function jsonRows(sql, { timeoutMs = QUERY_TIMEOUT_MS } = {}) {
  const r = await psql(sql, { timeoutMs });
  if (r.timedOut)
    throw new Error(`psql did not finish within ${timeoutMs} ms`);
  if (r.code !== 0)
    throw new Error(r.stderr.trim() || `psql exited with ${r.code}`);
  const rows = r.stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));
  rows.elapsedMs = r.endedAt - r.startedAt;
  return rows;
}

const jsonb = (v) => (v === null || v === undefined ? 'NULL' : `${lit(JSON.stringify(v))}::jsonb`);
const text = (v) => (v === null || v === undefined ? 'NULL' : lit(v));

/* One VALUES row for iw.events (id, domain, type, identifier, correlation_id, causation_id, payload, meta, created). */
function valuesRow(e) {
  return `(${text(e.id)}, ${text(e.domain)}, ${text(e.type)}, ${text(e.identifier)}, ${text(e.correlationId)}, ` +
    `${text(e.causationId)}, ${jsonb(e.payload)}, ${jsonb(e.meta)}, ${e.createdSql ? lit(e.createdSql) : 'NULL'})`;
}
const INSERT_COLUMNS = 'INSERT INTO iw.events (id, domain, type, identifier, correlation_id, causation_id, payload, meta, created)';

/* A value as one field of COPY's CSV format: NULL unquoted and empty, everything else quoted. */
function csv(v) {
  if (v === null || v === undefined)
    return '';
  return '"' + String(v).replace(/"/g, '""') + '"';
}

function setupSql() {
  return `
CREATE EXTENSION IF NOT EXISTS event_store_dynamo;
DROP SERVER IF EXISTS iw_srv CASCADE;
DROP SCHEMA IF EXISTS iw CASCADE;
CREATE SCHEMA iw;
CREATE SERVER iw_srv FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (
  region ${lit(env.AWS_TEST_REGION || 'us-east-1')}, endpoint ${lit(env.DDB_URL)},
  s3_endpoint ${lit(env.S3_URL)}, s3_force_path_style 'true', max_retries '10');
CREATE USER MAPPING FOR CURRENT_USER SERVER iw_srv OPTIONS (
  access_key_id ${lit(env.AWS_TEST_ACCESS_KEY_ID || 'S3RVER')},
  secret_access_key ${lit(env.AWS_TEST_SECRET_ACCESS_KEY || 'S3RVER')});
CREATE FOREIGN TABLE iw.events (${ALL_COLUMNS})
  SERVER iw_srv OPTIONS (table_name_prefix ${lit(PREFIX)}, s3_bucket ${lit(BUCKET)}, page_size '${PAGE_SIZE}');
SELECT event_store_dynamo.reset_store('iw.events');
`;
}

// --- what SQL writes -------------------------------------------------------------------------

/* A timestamptz literal for `iso` (a whole millisecond) as seen at `offsetMin` from UTC, with `extraMicros` (0..999) after the millisecond. */
function timestampIn(iso, offsetMin, extraMicros) {
  const local = new Date(Date.parse(iso) + offsetMin * 60000).toISOString();
  const sign = offsetMin < 0 ? '-' : '+';
  const abs = Math.abs(offsetMin);
  const zone = `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
  return `${local.slice(0, 10)} ${local.slice(11, 23)}${String(extraMicros).padStart(3, '0')}${zone}`;
}

const NAMES = ['Ada Lovelace', 'Grace Hopper', 'Jürgen Müller', 'Zoë Ørsted', '山田 太郎', 'Ólafur Arnalds',
  'Seán O\'Brien', 'Chloé "Coco" Dubois', 'Ægir\tTab', 'Line\nBreak'];
const CURRENCIES = ['EUR', 'USD', 'GBP', 'JPY', 'CHF'];
const AMOUNTS = [0.01, 0.1, 0.99, 1, 1.5, 9.99, 12.5, 100, 250.75, 1000, 12345.67, 1e-7, 1e21, -42.5];

function payloadFor(domain, type, i) {
  switch (domain) {
    case 'account':
      return { amount: pick(AMOUNTS), currency: pick(CURRENCIES), reference: `tx-${i}`, balanceAfter: int(-500, 100000) / 100,
        note: rnd() < 0.3 ? pick(NAMES) : null };
    case 'order':
      return {
        lines: Array.from({ length: int(1, 5) }, (_, k) => ({ sku: `SKU-${int(100, 999)}`, qty: int(1, 9), unitPrice: pick(AMOUNTS), line: k + 1 })),
        shipping: { name: pick(NAMES), street: `${int(1, 200)} Rue de l'Église`, city: pick(['Paris', 'Zürich', 'Kraków', 'São Paulo']), zip: String(int(10000, 99999)) },
        gift: rnd() < 0.2, coupon: rnd() < 0.1 ? 'SPRING-10%' : null, status: type,
      };
    case 'customer':
      return { name: pick(NAMES), email: `user${i}@example.com`, marketing: rnd() < 0.5, tags: rnd() < 0.5 ? [] : ['vip', 'b2b'].slice(0, int(1, 2)),
        address: rnd() < 0.5 ? {} : { country: pick(['DE', 'FR', 'JP', 'BR']) } };
    case 'inventory':
      return { warehouse: pick(['BER-1', 'PAR-2', 'NRT-3']), delta: int(-50, 50), reason: pick(['sale', 'restock', 'audit', 'damaged']), bins: [int(1, 9), int(10, 99)] };
    case 'shipment':
      return { carrier: pick(['DHL', 'UPS', 'La Poste']), tracking: hex(12).toUpperCase(), weightKg: int(1, 5000) / 100,
        events: Array.from({ length: int(0, 3) }, () => ({ at: `2024-0${int(1, 6)}-1${int(0, 9)}T0${int(0, 9)}:00:00Z`, code: pick(['PU', 'IT', 'OD', 'DL']) })) };
    case 'audit':
      return { actor: pick(['system', 'admin', 'cron']), action: type, detail: `${pick(NAMES)} — ${'x'.repeat(int(0, 40))}`, ok: rnd() < 0.9 };
    case 'system':
      return { node: `pg-${int(1, 3)}`, version: `1.${int(0, 9)}.${int(0, 20)}`, uptimeSeconds: int(0, 1e6) };
    default:
      return { samples: Array.from({ length: int(1, 8) }, () => int(0, 1000) / 10), unit: 'ms', host: `app-${int(1, 9)}` };
  }
}

const TYPES = {
  account: ['opened', 'deposited', 'withdrawn', 'frozen'], order: ['placed', 'paid', 'shipped', 'cancelled'],
  customer: ['registered', 'renamed', 'moved'], inventory: ['adjusted', 'counted'], shipment: ['created', 'dispatched', 'delivered'],
  audit: ['login', 'logout', 'export'], system: ['started', 'stopped', 'upgraded'], metrics: ['latency', 'throughput'],
};

function metaFor(i) {
  const u = rnd();
  if (u < 0.55)
    return { userId: `u-${int(1, 500)}`, source: pick(['api', 'import', 'backoffice']), requestId: uuid(),
      client: { name: 'web', version: `3.${int(0, 9)}.${int(0, 9)}`, beta: rnd() < 0.1 }, tags: rnd() < 0.5 ? [] : ['a', 'b'],
      note: rnd() < 0.2 ? null : '', ratio: pick([0.5, 1, 2.25]) };
  if (u < 0.75)
    return `batch-import-${i % 17}`;
  return null;
}

/* The 500 streams of the bulk insert: 497 with an identifier, and three domains without. */
function bulkStreams() {
  const domains = ['account', 'order', 'customer', 'inventory', 'shipment'];
  const streams = [];
  for (let i = 0; streams.length < BULK_STREAMS - 3; i++) {
    const domain = domains[i % domains.length];
    const identifier = {
      account: `acc-${1000 + i}`, order: `ord-2024-${String(i).padStart(5, '0')}`, customer: `cust-${hex(10)}`,
      inventory: `sku-${i}`, shipment: i % 50 === 4 ? `shipment für Zoë ${i}` : `shp-${i}`,
    }[domain];
    streams.push({ domain, identifier });
  }
  streams.push({ domain: 'audit', identifier: null }, { domain: 'system', identifier: null }, { domain: 'metrics', identifier: null });
  return streams;
}

/*
 * The 10,000 bulk events, in insertion order: every stream gets one of the first 500, the rest go
 * to streams chosen at random (a tenth of the streams get half of them). Times rise through
 * 2023-11..2024-06 with random gaps; a fifth are written in another zone and with microseconds
 * that must be truncated; a fifth have no id (the extension makes one).
 */
function bulkEvents(model) {
  const streams = bulkStreams();
  const hot = streams.slice(0, 50);
  const out = [];
  const last = new Map();
  let t = Date.UTC(2023, 10, 1, 0, 0, 0, 0);
  const end = Date.UTC(2024, 5, 30, 23, 0, 0, 0);
  const step = Math.floor((end - t) / BULK_EVENTS);
  for (let i = 0; i < BULK_EVENTS; i++) {
    const s = i < streams.length ? streams[i] : (rnd() < 0.5 ? pick(hot) : pick(streams));
    t += int(0, 2 * step);
    const created = new Date(t).toISOString();
    const zoned = rnd() < 0.2;
    const offset = zoned ? pick([330, -480, 60, 120, -300, 545, -210]) : 0;
    const key = streamKey(s.domain, s.identifier);
    const type = pick(TYPES[s.domain]);
    const e = {
      id: rnd() < 0.2 ? null : uuid(),
      domain: s.domain, type, identifier: s.identifier,
      correlationId: rnd() < 0.5 ? uuid() : null,
      causationId: rnd() < 0.3 && last.has(key) ? last.get(key) : null,
      payload: payloadFor(s.domain, type, i), meta: metaFor(i),
      created, createdSql: zoned || rnd() < 0.2 ? timestampIn(created, offset, int(0, 999)) : created,
      ord: i,
    };
    out.push(e);
    if (e.id !== null)
      last.set(key, e.id);
  }
  return out;
}

/* A document of about 420 KB of JSON: over the 350,000-byte offload threshold. */
function bigDocument() {
  const pages = [];
  for (let p = 1; p <= 300; p++)
    pages.push({ n: p, text: `Page ${p}: ` + Array.from({ length: 40 }, () => pick(['lorem', 'ipsum', 'dolor', 'sit', 'amet', 'Größe', 'naïve', '数据'])).join(' ').repeat(6),
      figures: [int(0, 100), int(0, 100) / 4] });
  return { document: { title: 'Quarterly report — Q2/2024', pages }, checksum: hex(64), final: true };
}

/*
 * Appends through SQL everything but the bulk insert. Returns the names of the steps that failed
 * (their events are not in the model).
 */
async function sqlSingles(report, model) {
  // 1. defaults: no id, no created; RETURNING shows what was made
  const r1 = await jsonRows(`${INSERT_COLUMNS} VALUES
    (NULL, 'account', 'opened', 'acc-1000', NULL, NULL, ${jsonb({ owner: 'Ada Lovelace', limit: 100, currency: 'EUR' })},
     ${jsonb({ userId: 'u-1', source: 'api' })}, NULL)
    RETURNING ${ROW_JSON};`);
  const now = Date.now();
  const d = r1[0];
  report.check('INSERT with defaults: a UUID v4 id, the current time, sequence 1, RETURNING shows them',
    r1.length === 1 && UUID_V4.test(d.id) && Math.abs(Date.parse(d.created) - now) < 120000 && d.sequence === 1 &&
    d.timeBucket === d.created.slice(0, 7) && d.s3Reference === null, d);
  model.add({ id: d.id, domain: 'account', type: 'opened', identifier: 'acc-1000', created: d.created,
    payload: { owner: 'Ada Lovelace', limit: 100, currency: 'EUR' }, meta: { userId: 'u-1', source: 'api' } });

  // 2. explicit everything, a time in another zone with microseconds, every JSON shape of payload and meta
  const shapes = [
    { payload: { amount: 10.50, note: 'first', nested: { a: [1, 2.5, { b: null }], e: {}, l: [] }, unicode: 'é😀\u2028\u0001"\\/</x>' },
      meta: { user: 'ada', tags: ['a', 'b'], n: 1.50, none: null, empty: '', deep: { list: [true, false, 0] } },
      createdSql: '2024-05-01 02:00:00.123999+02', created: '2024-05-01T00:00:00.123Z' },
    { payload: 'cash', meta: 'a string meta', createdSql: '2024-04-30 23:59:59.9999-05', created: '2024-05-01T04:59:59.999Z' },
    { payload: [1, 'two', { three: 3 }], meta: ['x', 1, null], createdSql: '2024-03-01 03:00:00.0005+05:30', created: '2024-02-29T21:30:00.000Z' },
    { payload: 42.5, meta: 7, createdSql: '2023-12-31 23:59:59.999-00', created: '2023-12-31T23:59:59.999Z' },
    { payload: true, meta: true, createdSql: '2024-01-01 00:00:00+00', created: '2024-01-01T00:00:00.000Z' },
    { payload: null, meta: null, createdSql: '2024-02-10 12:00:00.001+00', created: '2024-02-10T12:00:00.001Z' },
  ];
  const evs2 = shapes.map((s, k) => ({ id: uuid(), domain: 'account', type: `shape-${k}`, identifier: 'acc-1000',
    correlationId: k % 2 ? null : uuid(), causationId: k === 0 ? d.id : null, ...s }));
  const r2 = await jsonRows(`${INSERT_COLUMNS} VALUES ${evs2.map(valuesRow).join(',\n')} RETURNING ${ROW_JSON};`);
  const want2 = evs2.map((e) => ({ id: e.id, sequence: model.next('account', 'acc-1000') + evs2.indexOf(e), created: e.created, timeBucket: e.created.slice(0, 7) }));
  const diffs2 = diffRecords(r2, want2, ['id', 'sequence', 'created', 'timeBucket']);
  report.check('multi-row INSERT: RETURNING gives the ids, the next sequences, created truncated to the millisecond in UTC, the bucket',
    diffs2.length === 0, diffs2.join('\n'));
  evs2.forEach((e) => model.add(e));

  // 3. streams without identifier, NULL optional columns
  const evs3 = [
    { id: uuid(), domain: 'system', type: 'started', payload: { node: 'pg-1' }, createdSql: '2024-06-01 00:00:00+00', created: '2024-06-01T00:00:00.000Z' },
    { id: uuid(), domain: 'system', type: 'heartbeat', payload: null, meta: 'cron', createdSql: '2024-06-01 00:00:01+00', created: '2024-06-01T00:00:01.000Z' },
  ];
  await jsonRows(`${INSERT_COLUMNS} VALUES ${evs3.map(valuesRow).join(', ')};`);
  evs3.forEach((e) => model.add(e));

  // 4. COPY FROM STDIN
  const evs4 = [1, 2, 3].map((n) => ({ id: uuid(), domain: 'customer', type: 'imported', identifier: 'cust-copy', correlationId: 'import-7',
    payload: { row: n, name: NAMES[n] }, meta: { file: 'customers.csv', line: n }, created: `2024-04-0${n}T08:00:00.00${n}Z` }));
  await jsonRows(`COPY iw.events (id, domain, type, identifier, correlation_id, payload, meta, created) FROM STDIN WITH (FORMAT csv);
${evs4.map((e) => [e.id, e.domain, e.type, e.identifier, e.correlationId, JSON.stringify(e.payload), JSON.stringify(e.meta), e.created].map(csv).join(',')).join('\n')}
\\.
`);
  evs4.forEach((e) => model.add(e));

  // 5. a transaction over several streams, and one rolled back (with an oversized event in it)
  const evs5 = [
    { id: uuid(), domain: 'order', type: 'placed', identifier: 'ord-x1', payload: { total: 19.99 }, created: '2024-06-02T10:00:00.000Z' },
    { id: uuid(), domain: 'shipment', type: 'created', identifier: 'shp-x1', payload: { order: 'ord-x1' }, created: '2024-06-02T10:00:00.500Z' },
    { id: uuid(), domain: 'order', type: 'paid', identifier: 'ord-x1', payload: { via: 'card' }, created: '2024-06-02T10:00:01.000Z' },
  ];
  evs5.forEach((e) => { e.createdSql = e.created; });
  const ghosts = [
    { id: uuid(), domain: 'order', type: 'ghost', identifier: 'ord-x1', payload: { never: true }, createdSql: '2024-06-03T00:00:00Z' },
    { id: uuid(), domain: 'ghost', type: 'ghost', identifier: 'g1', payload: bigDocument(), createdSql: '2024-06-03T00:00:00Z' },
  ];
  await jsonRows(`BEGIN;
${evs5.map((e) => `${INSERT_COLUMNS} VALUES ${valuesRow(e)};`).join('\n')}
COMMIT;
BEGIN;
${ghosts.map((e) => `${INSERT_COLUMNS} VALUES ${valuesRow(e)};`).join('\n')}
ROLLBACK;`);
  evs5.forEach((e) => model.add(e));

  // 6. an offloaded event
  const big = { id: uuid(), domain: 'doc', type: 'uploaded', identifier: 'doc-7', correlationId: uuid(), causationId: evs5[0].id,
    payload: bigDocument(), meta: { uploadedBy: 'u-7', mime: 'application/json' }, createdSql: '2024-06-05 12:34:56.789+00',
    created: '2024-06-05T12:34:56.789Z', offloaded: true };
  const r6 = await jsonRows(`${INSERT_COLUMNS} VALUES ${valuesRow(big)} RETURNING json_build_object('s3Reference', s3_reference, 'sequence', sequence);`);
  report.check(`an event of ${JSON.stringify(big.payload).length} bytes of payload is offloaded: RETURNING shows its s3_reference`,
    r6.length === 1 && r6[0].s3Reference === `${BUCKET}::events/${big.id}.json` && r6[0].sequence === 1, r6);
  model.add(big);

  // 7. a trigger's events: each order row appends two events, in two streams
  const orders = [
    [1, 'cust-t1', 'SKU-1', 2, '9.99', 'corr-o1'], [2, 'cust-t1', 'SKU-2', 1, '20', null], [3, 'cust-t2', 'SKU-1', 5, '0.50', 'corr-o3'],
  ];
  const ordersSql = (rows) => rows.map(([id, c, sku, q, total, corr]) => `(${id}, ${lit(c)}, ${lit(sku)}, ${q}, ${total}, ${text(corr)})`).join(', ');
  const r7 = await jsonRows(`
CREATE TABLE iw.orders (id int PRIMARY KEY, customer text, sku text, qty int, total numeric, correlation text);
CREATE TABLE iw.trigger_log (order_id int, kind text, event_id text, sequence bigint, created text);
CREATE FUNCTION iw.order_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  ev_id text; ev_seq bigint; ev_created text;
BEGIN
  INSERT INTO iw.events (domain, type, identifier, correlation_id, payload, meta)
    VALUES ('shop', 'order-placed', NEW.customer, NEW.correlation,
            jsonb_build_object('order', NEW.id, 'sku', NEW.sku, 'qty', NEW.qty, 'total', NEW.total),
            jsonb_build_object('table', TG_TABLE_NAME, 'op', TG_OP))
    RETURNING id, sequence, ${CREATED_ISO} INTO ev_id, ev_seq, ev_created;
  INSERT INTO iw.trigger_log VALUES (NEW.id, 'placed', ev_id, ev_seq, ev_created);
  INSERT INTO iw.events (domain, type, identifier, causation_id, payload)
    VALUES ('stock', 'reserved', NEW.sku, ev_id, jsonb_build_object('order', NEW.id, 'qty', NEW.qty))
    RETURNING id, sequence, ${CREATED_ISO} INTO ev_id, ev_seq, ev_created;
  INSERT INTO iw.trigger_log VALUES (NEW.id, 'reserved', ev_id, ev_seq, ev_created);
  RETURN NEW;
END $$;
CREATE TRIGGER order_events AFTER INSERT ON iw.orders FOR EACH ROW EXECUTE FUNCTION iw.order_events();
INSERT INTO iw.orders VALUES ${ordersSql(orders)};
BEGIN;
INSERT INTO iw.orders VALUES ${ordersSql([[4, 'cust-t1', 'SKU-1', 1, '1', null]])};
SELECT json_build_object('ghost', event_id) FROM iw.trigger_log WHERE order_id = 4;
ROLLBACK;
SELECT json_build_object('order', order_id, 'kind', kind, 'id', event_id, 'sequence', sequence, 'created', created)
  FROM iw.trigger_log ORDER BY order_id, kind;`);
  const log = r7.filter((x) => x.order !== undefined);
  ghosts.push(...r7.filter((x) => x.ghost).map((x) => ({ id: x.ghost })));
  const byOrder = new Map(log.map((x) => [`${x.order}/${x.kind}`, x]));
  const trigWant = [];
  for (const [id, customer, sku, qty, total, corr] of orders) {
    const placed = byOrder.get(`${id}/placed`);
    const reserved = byOrder.get(`${id}/reserved`);
    if (!placed || !reserved)
      continue;
    trigWant.push({ seqGot: placed.sequence, seqWant: model.next('shop', customer) });
    model.add({ id: placed.id, domain: 'shop', type: 'order-placed', identifier: customer, correlationId: corr,
      payload: { order: id, sku, qty, total: Number(total) }, meta: { table: 'orders', op: 'INSERT' }, created: placed.created });
    trigWant.push({ seqGot: reserved.sequence, seqWant: model.next('stock', sku) });
    model.add({ id: reserved.id, domain: 'stock', type: 'reserved', identifier: sku, causationId: placed.id,
      payload: { order: id, qty }, created: reserved.created });
  }
  report.check('an AFTER INSERT trigger appends two events per row, numbered in their streams (RETURNING INTO in PL/pgSQL)',
    log.length === 6 && trigWant.every((x) => x.seqGot === x.seqWant) && log.every((x) => UUID_V4.test(x.id)), { log, trigWant });
  return ghosts;
}

/* The bulk insert: 10,000 rows staged in a local table, appended by one INSERT ... SELECT. */
async function sqlBulk(report, model) {
  const events = bulkEvents(model);
  // the sequence each will get, and the stream versions after them
  const seqs = new Map();
  for (const e of events) {
    const key = streamKey(e.domain, e.identifier);
    const s = (seqs.get(key) || model.next(e.domain, e.identifier) - 1) + 1;
    seqs.set(key, s);
    e.sequence = s;
  }
  const lines = events.map((e) => [e.ord, e.id, e.domain, e.type, e.identifier, e.correlationId, e.causationId,
    JSON.stringify(e.payload), e.meta === null ? null : JSON.stringify(e.meta), e.createdSql].map(csv).join(','));
  let rows;
  try {
    rows = await jsonRows(`
CREATE TABLE iw.bulk (ord int PRIMARY KEY, id text, domain text, type text, identifier text, correlation_id text,
  causation_id text, payload jsonb, meta jsonb, created timestamptz);
COPY iw.bulk FROM STDIN WITH (FORMAT csv);
${lines.join('\n')}
\\.
INSERT INTO iw.events (id, domain, type, identifier, correlation_id, causation_id, payload, meta, created)
  SELECT id, domain, type, identifier, correlation_id, causation_id, payload, meta, created FROM iw.bulk ORDER BY ord
  RETURNING json_build_object('id', id, 'domain', domain, 'identifier', identifier, 'sequence', sequence,
    'created', ${CREATED_ISO}, 'timeBucket', time_bucket);`);
  } catch (e) {
    report.check(`INSERT ... SELECT of ${events.length} rows over ${BULK_STREAMS} streams commits`, false, e.message);
    return;
  }
  report.check(`INSERT ... SELECT of ${events.length} rows over ${new Set(events.map((e) => streamKey(e.domain, e.identifier))).size} streams commits`,
    rows.length === events.length, `RETURNING gave ${rows.length} rows`);
  report.note(`the bulk insert took ${rows.elapsedMs} ms`);
  // RETURNING comes in insertion order; generated ids are taken from it
  const bad = [];
  events.forEach((e, i) => {
    const r = rows[i] || {};
    if (e.id === null) {
      if (!UUID_V4.test(r.id || ''))
        bad.push(`row ${i}: generated id ${r.id} is not a UUID v4`);
      e.id = r.id;
    } else if (r.id !== e.id) {
      bad.push(`row ${i}: id ${r.id}, expected ${e.id}`);
    }
    if (r.sequence !== e.sequence || r.created !== e.created || r.timeBucket !== e.created.slice(0, 7) ||
        r.domain !== e.domain || r.identifier !== e.identifier)
      bad.push(`row ${i} (${e.id}): got ${JSON.stringify(r)}, expected sequence ${e.sequence}, created ${e.created} from ${e.createdSql}`);
  });
  report.check('INSERT ... SELECT: RETURNING gives each row its id, its place in its stream, created in UTC truncated to the millisecond',
    bad.length === 0, bad.slice(0, 5).join('\n'));
  const ids = new Set(events.map((e) => e.id));
  report.check('INSERT ... SELECT: generated ids are all distinct', ids.size === events.length, `${ids.size} distinct of ${events.length}`);
  for (const e of events)
    model.add(e);
}

// --- raw items -------------------------------------------------------------------------------

async function scanAll(ddb, tableName) {
  const segments = 4;
  const parts = await Promise.all(Array.from({ length: segments }, async (_, segment) => {
    const items = [];
    let key;
    do {
      const page = await ddb.send(new ScanCommand({ TableName: tableName, Segment: segment, TotalSegments: segments, ExclusiveStartKey: key }));
      items.push(...page.Items);
      key = page.LastEvaluatedKey;
    } while (key);
    return items;
  }));
  return parts.flat();
}

/* The DynamoDB type the Node adapter's marshalling gives a JSON value. */
function attrType(v) {
  if (Array.isArray(v))
    return 'L';
  if (typeof v === 'object')
    return 'M';
  return { string: 'S', number: 'N', boolean: 'BOOL' }[typeof v];
}

const show = (v) => util.inspect(v, { depth: 4, maxStringLength: 100, breakLength: Infinity });

async function checkRawItems(report, model, ghosts) {
  const ddb = makeDynamoClient();
  const s3 = makeS3Client();
  let items;
  try {
    items = await scanAll(ddb, TABLE);
  } catch (e) {
    report.check(`Scan of ${TABLE} with the AWS SDK`, false, e.message);
    return;
  }
  const byId = new Map(items.map((it) => [it.id && it.id.S, it]));
  const streams = model.streams();
  const sqlEvents = model.events.filter((e) => e.writer === 'sql');
  report.check(`${TABLE} holds ${sqlEvents.length} events and ${streams.length} stream heads, nothing else`,
    items.length === sqlEvents.length + streams.length && byId.size === items.length,
    `got ${items.length} items (${byId.size} distinct ids)`);

  const problems = { id: [], created: [], bucket: [], payload: [], attrs: [], types: [], nulls: [] };
  let missing = 0;
  for (const r of sqlEvents) {
    const it = byId.get('EventID#' + r.id);
    if (!it) {
      missing++;
      problems.attrs.push(`${r.id}: no item`);
      continue;
    }
    const created = it.created && it.created.S;
    if (!it.id.S.startsWith('EventID#') || it.id.S !== 'EventID#' + r.id)
      problems.id.push(`${r.id}: id ${it.id.S}`);
    if (typeof created !== 'string' || created.length !== 24 || !created.endsWith('Z') || created !== r.created ||
        new Date(created).toISOString() !== created)
      problems.created.push(`${r.id}: created ${show(it.created)}, expected ${r.created}`);
    if (!it.timeBucket || it.timeBucket.S !== (created || '').slice(0, 7))
      problems.bucket.push(`${r.id}: timeBucket ${show(it.timeBucket)} for created ${created}`);
    for (const [k, v] of Object.entries(it))
      if (v.NULL !== undefined || (v.S !== undefined && v.S === ''))
        problems.nulls.push(`${r.id}: ${k} = ${JSON.stringify(v)}`);

    const want = { id: 'EventID#' + r.id, created: r.created, timeBucket: r.timeBucket, domain: r.domain, type: r.type, sequence: r.sequence };
    const types = { id: 'S', created: 'S', timeBucket: 'S', domain: 'S', type: 'S', sequence: 'N' };
    for (const k of ['identifier', 'correlationId', 'causationId', 's3Reference'])
      if (r[k] !== null) {
        want[k] = r[k];
        types[k] = 'S';
      }
    if (r.meta !== null) {
      want.meta = r.meta;
      types.meta = attrType(r.meta);
    }
    if (r.s3Reference === null && r.payload !== null)
      types.payload = 'S';
    const got = unmarshall(it);
    if (types.payload) {
      const p = it.payload && it.payload.S;
      let parsed;
      try {
        parsed = JSON.parse(p);
      } catch (e) {
        parsed = e;
      }
      if (typeof p !== 'string' || JSON.stringify(parsed) !== p || !util.isDeepStrictEqual(parsed, r.payload))
        problems.payload.push(`${r.id}: payload ${show(it.payload)}, expected the text of ${show(r.payload)}`);
      delete got.payload;
    }
    const gotTypes = Object.fromEntries(Object.entries(it).map(([k, v]) => [k, Object.keys(v)[0]]));
    if (!util.isDeepStrictEqual(gotTypes, types))
      problems.types.push(`${r.id}: attributes ${show(gotTypes)}, expected ${show(types)}`);
    if (!util.isDeepStrictEqual(got, want))
      problems.attrs.push(`${r.id}: ${show(got)}, expected ${show(want)}`);
  }
  const n = sqlEvents.length;
  report.check(`raw items: every one of the ${n} SQL events has an item, id "EventID#<id>"`, missing === 0 && problems.id.length === 0,
    [`${missing} missing`, ...problems.id].slice(0, 6).join('\n'));
  report.check('raw items: created is the 24-character millisecond UTC form ending in Z, the instant written', problems.created.length === 0,
    problems.created.slice(0, 5).join('\n'));
  report.check('raw items: timeBucket is the first 7 characters of created', problems.bucket.length === 0, problems.bucket.slice(0, 5).join('\n'));
  report.check('raw items: payload is compact JSON text, exactly as JSON.stringify prints the value', problems.payload.length === 0,
    problems.payload.slice(0, 5).join('\n'));
  report.check('raw items: no NULL-typed attribute and no empty string in place of a NULL column', problems.nulls.length === 0,
    problems.nulls.slice(0, 5).join('\n'));
  report.check('raw items: exactly the attributes of the layout, NULL columns absent, meta as the type the adapter would marshal',
    problems.types.length === 0, problems.types.slice(0, 5).join('\n'));
  report.check('raw items: every attribute value equal to what was inserted', problems.attrs.length === 0, problems.attrs.slice(0, 5).join('\n'));
  const shapes = ['M', 'S', 'L', 'N', 'BOOL'].map((t) => `${t} ${sqlEvents.filter((r) => r.meta !== null && attrType(r.meta) === t).length}`);
  report.note(`meta stored as: ${shapes.join(', ')}; absent ${sqlEvents.filter((r) => r.meta === null).length}`);

  const headProblems = [];
  for (const s of streams) {
    const it = byId.get(`EventID#HEAD::${s.key}`);
    if (!it || !util.isDeepStrictEqual(it, { id: { S: `EventID#HEAD::${s.key}` }, created: { S: 'HEAD' }, version: { N: String(s.version) } }))
      headProblems.push(`${s.key}: ${JSON.stringify(it)}, expected version ${s.version}`);
  }
  report.check(`raw items: ${streams.length} stream heads, id "EventID#HEAD::<domain>::<identifier>", created HEAD, version = events in the stream, no other attribute`,
    headProblems.length === 0, headProblems.slice(0, 5).join('\n'));

  const ghostFound = ghosts.filter((g) => byId.has('EventID#' + g.id)).map((g) => g.id);
  report.check(`no item for the ${ghosts.length} events of rolled-back transactions (direct and by trigger)`,
    ghostFound.length === 0 && ghosts.length >= 3, ghostFound.join(', ') || `only ${ghosts.length} ghosts known`);

  // the offloaded event: no payload in the item, the body in S3 in the SPEC's shape
  const offloaded = sqlEvents.filter((r) => r.s3Reference !== null);
  const bodyProblems = [];
  const SPEC_BODY_KEYS = ['id', 'domain', 'type', 'payload', 'meta', 'identifier', 'correlationId', 'causationId', 'created', 'timeBucket'];
  for (const r of offloaded) {
    let body;
    try {
      const o = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: `events/${r.id}.json` }));
      body = JSON.parse(await o.Body.transformToString());
    } catch (e) {
      bodyProblems.push(`${r.id}: ${e.name} ${e.message}`);
      continue;
    }
    const keys = Object.keys(body).sort();
    const want = { id: r.id, domain: r.domain, type: r.type, payload: r.payload, meta: r.meta, identifier: r.identifier,
      correlationId: r.correlationId, causationId: r.causationId, created: r.created, timeBucket: r.timeBucket };
    if (!util.isDeepStrictEqual(keys, [...SPEC_BODY_KEYS].sort()))
      bodyProblems.push(`${r.id}: body keys ${keys.join(', ')}, expected ${[...SPEC_BODY_KEYS].sort().join(', ')}`);
    for (const k of SPEC_BODY_KEYS)
      if (!util.isDeepStrictEqual(body[k], want[k]))
        bodyProblems.push(`${r.id}: body ${k} ${show(body[k])}, expected ${show(want[k])}`);
  }
  report.check(`the offloaded event's S3 body (events/<id>.json): the SPEC's fields, payload as a JSON value, no sequence`,
    offloaded.length === 1 && bodyProblems.length === 0, bodyProblems.slice(0, 5).join('\n') || `${offloaded.length} offloaded`);
  try {
    const list = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET }));
    const keys = (list.Contents || []).map((o) => o.Key).sort();
    const wantKeys = offloaded.map((r) => `events/${r.id}.json`).sort();
    report.check(`bucket ${BUCKET} holds the offloaded body and nothing else (not the rolled-back one)`,
      util.isDeepStrictEqual(keys, wantKeys), `got ${keys.join(', ')}`);
  } catch (e) {
    report.check(`bucket ${BUCKET} can be listed`, false, e.message);
  }
}

// --- the adapter -----------------------------------------------------------------------------

/* The adapter's replay, as records shaped like the model's. */
async function adapterReplay(repo) {
  const events = [];
  for await (const page of await repo.getAllEvents(PAGE_SIZE))
    events.push(...page);
  return events.map((e) => ({
    id: e.id, domain: e.domain, type: e.type,
    identifier: e.identifier === undefined ? null : e.identifier,
    correlationId: e.correlationId === undefined ? null : e.correlationId,
    causationId: e.causationId === undefined ? null : e.causationId,
    sequence: e.sequence === undefined ? null : e.sequence,
    payload: e.payload === undefined ? null : e.payload,
    meta: e.meta === undefined ? null : e.meta,
    created: e.created instanceof Date ? e.created.toISOString() : e.created,
  }));
}

/* Compares a replay (adapter or SQL) with the model: each event once, every field equal. */
function checkReplay(report, label, rows, events, { sequenceOfOffloaded }) {
  const count = new Map();
  for (const r of rows)
    count.set(r.id, (count.get(r.id) || 0) + 1);
  const dups = [...count].filter(([, c]) => c > 1);
  const missing = events.filter((e) => !count.has(e.id));
  const known = new Set(events.map((e) => e.id));
  const extra = rows.filter((r) => !known.has(r.id));
  report.check(`${label}: all ${events.length} events, each once, nothing else`,
    rows.length === events.length && dups.length === 0 && missing.length === 0 && extra.length === 0,
    `got ${rows.length} rows; duplicated ${dups.slice(0, 3).map(([id]) => id).join(', ') || 'none'}; ` +
    `missing ${missing.slice(0, 3).map((e) => e.id).join(', ') || 'none'}; unexpected ${extra.slice(0, 3).map((r) => show(r)).join(', ') || 'none'}`);
  const firstBack = rows.findIndex((r, i) => i > 0 && r.created < rows[i - 1].created);
  report.check(`${label}: in created order`, firstBack === -1,
    `row ${firstBack} (${rows[firstBack] && rows[firstBack].created}) before row ${firstBack - 1} (${rows[firstBack - 1] && rows[firstBack - 1].created})`);
  const byId = new Map(rows.map((r) => [r.id, r]));
  const aligned = events.map((e) => byId.get(e.id) || {});
  const diffs = diffRecords(aligned, events, ['domain', 'type', 'identifier', 'correlationId', 'causationId', 'created']);
  report.check(`${label}: domain, type, identifier, correlation and causation ids equal, created the same instant`, diffs.length === 0, diffs.join('\n'));
  const pd = diffRecords(aligned, events, ['payload']);
  report.check(`${label}: payload deep-equal for every event (${events.filter((e) => e.s3Reference).length} offloaded)`, pd.length === 0, pd.join('\n'));
  const md = diffRecords(aligned, events, ['meta']);
  report.check(`${label}: meta deep-equal for every event`, md.length === 0, md.join('\n'));
  const seqEvents = sequenceOfOffloaded ? events : events.filter((e) => e.s3Reference === null);
  const sd = diffRecords(seqEvents.map((e) => byId.get(e.id) || {}), seqEvents, ['sequence']);
  report.check(`${label}: sequence equal for every ${sequenceOfOffloaded ? '' : 'inline '}event`, sd.length === 0, sd.join('\n'));
}

async function sqlReplay() {
  const rows = await jsonRows(`SELECT ${ROW_JSON} FROM iw.events;`);
  return rows;
}

/* stream_version, the highest sequence and the count per stream, through SQL. */
async function sqlStreams() {
  const rows = await jsonRows(`SELECT json_build_object('domain', domain, 'identifier', identifier,
      'version', event_store_dynamo.stream_version('iw.events', domain, identifier), 'max', max(sequence), 'count', count(*))
    FROM iw.events GROUP BY domain, identifier;`);
  return new Map(rows.map((r) => [streamKey(r.domain, r.identifier), r]));
}

async function checkStreamSequences(report, label, repo, model) {
  let sql;
  try {
    sql = await sqlStreams();
  } catch (e) {
    report.check(`${label}: stream_version and max(sequence) per stream through SQL`, false, e.message);
    return;
  }
  const streams = model.streams();
  const bad = [];
  for (const s of streams) {
    const a = await repo.getStreamSequence(s.domain, s.identifier === null ? undefined : s.identifier);
    const q = sql.get(s.key) || {};
    if (a !== s.version || q.version !== s.version || q.max !== s.version || q.count !== s.version)
      bad.push(`${s.key}: adapter ${a}, stream_version ${q.version}, max(sequence) ${q.max}, count ${q.count}; expected ${s.version}`);
  }
  report.check(`${label}: for all ${streams.length} streams the adapter's getStreamSequence = stream_version = max(sequence) = events`,
    bad.length === 0 && sql.size === streams.length, bad.slice(0, 5).join('\n') || `SQL shows ${sql.size} streams`);
}

/*
 * The adapter appends: a few events to 60 streams SQL wrote (three without identifier, the
 * trigger's and the offloaded event's among them), 30 to one of them (chunked by the adapter:
 * fine on a stream with a head), and 25 to each of two new streams. One storeEvents call.
 */
async function adapterAppends(report, repo, model) {
  const sqlStreamList = model.streams();
  const chosen = [];
  const must = ['audit::', 'system::', 'metrics::', 'shop::cust-t1', 'stock::SKU-1', 'doc::doc-7', 'account::acc-1000', 'customer::cust-copy'];
  for (const key of must)
    chosen.push(sqlStreamList.find((s) => s.key === key));
  while (chosen.length < 60) {
    const s = pick(sqlStreamList);
    if (!chosen.includes(s))
      chosen.push(s);
  }
  const events = [];
  let t = Date.UTC(2024, 6, 1, 9, 0, 0, 0);
  const make = (domain, identifier) => {
    t += int(1, 5000);
    const type = pick(TYPES[domain] || ['noted']);
    const e = { id: uuid(), domain, type, created: new Date(t), payload: payloadFor(domain, type, events.length) };
    if (identifier !== null)
      e.identifier = identifier;
    const meta = metaFor(events.length);
    if (meta !== null)
      e.meta = meta;
    if (rnd() < 0.5)
      e.correlationId = uuid();
    events.push(e);
  };
  for (const s of chosen)
    for (let k = int(1, 3); k > 0; k--)
      make(s.domain, s.identifier);
  for (let k = 0; k < 30; k++)
    make(chosen[7].domain, chosen[7].identifier);
  for (const id of ['adapter-new-1', 'adapter-new-2'])
    for (let k = 0; k < 25; k++)
      make('ledger', id);

  try {
    await repo.storeEvents(events);
    report.check(`adapter storeEvents of ${events.length} events to ${chosen.length} SQL-written and 2 new streams: no concurrency error`, true);
  } catch (e) {
    report.check(`adapter storeEvents of ${events.length} events to ${chosen.length} SQL-written and 2 new streams: no concurrency error`, false,
      e.stack || String(e));
    return [];
  }
  // the adapter groups by stream in first-seen order and numbers each group from its head
  const added = events.map((e) => model.add({ ...e, created: e.created.toISOString(), writer: 'adapter' }));
  const want = added.map((r) => ({ id: r.id, sequence: r.sequence }));
  let got;
  try {
    const ids = added.map((r) => lit(r.id)).join(',');
    got = await jsonRows(`SELECT json_build_object('id', id, 'sequence', sequence) FROM iw.events WHERE id IN (${ids});`);
  } catch (e) {
    report.check('SQL reads the adapter-written events', false, e.message);
    return [...new Set(added.map((r) => streamKey(r.domain, r.identifier)))];
  }
  const byId = new Map(got.map((r) => [r.id, r]));
  const diffs = diffRecords(want.map((w) => byId.get(w.id) || {}), want, ['sequence']);
  report.check('SQL sees the adapter\'s events at the next sequences of the streams SQL wrote (head + 1, + 2, ...)',
    got.length === want.length && diffs.length === 0, diffs.join('\n') || `got ${got.length} rows`);
  return [...new Set(added.map((r) => streamKey(r.domain, r.identifier)))];
}

/* SQL continues every stream the adapter just wrote to: one transaction, then one with explicit sequences. */
async function sqlContinues(report, model, keys) {
  const streams = model.streams().filter((s) => keys.includes(s.key));
  const evs = streams.map((s, k) => ({ id: uuid(), domain: s.domain, type: 'continued', identifier: s.identifier,
    payload: { after: s.version, k }, meta: { by: 'sql' }, createdSql: `2024-07-02T00:00:${String(k % 60).padStart(2, '0')}.${String(k).padStart(3, '0')}Z` }));
  evs.forEach((e) => { e.created = new Date(Date.parse(e.createdSql)).toISOString(); });
  const want = evs.map((e) => ({ id: e.id, sequence: model.next(e.domain, e.identifier) }));
  let got;
  try {
    got = await jsonRows(`BEGIN;
${INSERT_COLUMNS} VALUES ${evs.map(valuesRow).join(',\n')}
  RETURNING json_build_object('id', id, 'sequence', sequence);
COMMIT;`);
  } catch (e) {
    report.check(`SQL appends to the ${streams.length} streams the adapter wrote: the commit succeeds (no conflict)`, false, e.message);
    return;
  }
  report.check(`SQL appends to the ${streams.length} streams the adapter wrote: the commit succeeds (no conflict)`, true);
  const diffs = diffRecords(got, want, ['id', 'sequence']);
  report.check('... each at the next sequence after the adapter\'s events', diffs.length === 0, diffs.join('\n'));
  evs.forEach((e) => model.add(e));

  // an explicit sequence, the next one, on the two streams only the adapter had written before
  const fresh = model.streams().filter((s) => s.domain === 'ledger');
  const evs2 = fresh.map((s) => ({ id: uuid(), domain: s.domain, type: 'closed', identifier: s.identifier, payload: { final: true },
    createdSql: '2024-07-03T00:00:00.000Z', created: '2024-07-03T00:00:00.000Z', sequence: s.version + 1 }));
  try {
    const r = await jsonRows(evs2.map((e) => `INSERT INTO iw.events (id, domain, type, identifier, payload, created, sequence)
      VALUES (${lit(e.id)}, ${lit(e.domain)}, ${lit(e.type)}, ${lit(e.identifier)}, ${jsonb(e.payload)}, ${lit(e.createdSql)}, ${e.sequence})
      RETURNING to_json(sequence);`).join('\n'));
    report.check('SQL appends with an explicit sequence = the next one after the adapter\'s events',
      util.isDeepStrictEqual([...r], evs2.map((e) => e.sequence)), `got ${r}, expected ${evs2.map((e) => e.sequence)}`);
    evs2.forEach((e) => model.add(e));
  } catch (e) {
    report.check('SQL appends with an explicit sequence = the next one after the adapter\'s events', false, e.message);
  }
}

async function main() {
  const report = new Report();
  for (const name of ['DDB_URL', 'S3_URL'])
    if (!env[name]) {
      report.check(`${name} is set`, false);
      return report.finish();
    }
  const setup = await psql(setupSql(), { timeoutMs: 120000 });
  if (!report.check('create the server, the foreign table and a fresh store (reset_store)', setup.code === 0 && !setup.timedOut,
    setup.stderr.trim() || `psql exited with ${setup.code}`))
    return report.finish();
  // the adapter over the same store; init() also makes the bucket if reset_store did not
  const repo = await makeRepo({ prefix: PREFIX, bucket: BUCKET });
  await emptyBucket(makeS3Client(), BUCKET);

  const model = new Model();
  let ghosts = [];
  try {
    ghosts = await sqlSingles(report, model);
  } catch (e) {
    report.check('the single-row, COPY, offload and trigger appends run', false, e.message);
    return report.finish();
  }
  await sqlBulk(report, model);
  const sqlWritten = model.events.length;
  report.note(`SQL wrote ${sqlWritten} events in ${model.streams().length} streams`);

  await checkRawItems(report, model, ghosts);

  try {
    const started = Date.now();
    const rows = await adapterReplay(repo);
    report.note(`adapter replay of ${rows.length} events took ${Date.now() - started} ms`);
    checkReplay(report, 'adapter getAllEvents of what SQL wrote', rows, model.events, { sequenceOfOffloaded: false });
  } catch (e) {
    report.check('adapter getAllEvents replays what SQL wrote', false, e.stack || String(e));
  }
  await checkStreamSequences(report, 'after the SQL appends', repo, model);

  const keys = await adapterAppends(report, repo, model);
  if (keys.length > 0)
    await sqlContinues(report, model, keys);
  await checkStreamSequences(report, 'after the adapter and SQL took turns', repo, model);

  try {
    const rows = await adapterReplay(repo);
    checkReplay(report, 'final adapter replay', rows, model.events, { sequenceOfOffloaded: false });
  } catch (e) {
    report.check('final adapter replay', false, e.stack || String(e));
  }
  try {
    const rows = await sqlReplay();
    report.note(`SQL replay of ${rows.length} events took ${rows.elapsedMs} ms`);
    checkReplay(report, 'final SQL replay', rows, model.events, { sequenceOfOffloaded: true });
  } catch (e) {
    report.check('final SQL replay', false, e.message);
  }
  return report.finish();
}

main().then((status) => process.exit(status), (e) => {
  console.log(`not ok - write.js ran to the end\n    ${e.stack}`);
  process.exit(1);
});
