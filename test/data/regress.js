// The REGRESS store: a small, fully fixed event store that the pg_regress tests read. Every value here
// ends up in expected output, so nothing may depend on the clock or on chance, with one deliberate
// exception: the FUTURE event, dated the first millisecond of the month after the current one.
//
// Store: table `regress-schemeless-event-store`, bucket `regress-events` (offloaded events under
// `events/`). Beside it: `regress-empty-schemeless-event-store` exists with no events, and
// `regress-missing-schemeless-event-store` does not exist.
//
// Streams and sequences (event ids are 00000000-0000-4000-8000-0000000000NN, NN below):
//   account::acc-1   01 02 04 05 09      sequences 1..5
//   audit:: (empty)  03 06               sequences 1..2   (no identifier)
//   document::doc-1  07 08               sequences 1..2   (07 is offloaded to S3)
//   account::acc-2   10                  sequence 1
//   raw::r1          11..16, 99          sequences 1..7   (written with PutItem, not the adapter)
// Event 99 is the FUTURE event: created = first day of next month (UTC) at 00:00:00.000Z, type
// `scheduled`. It is the only row whose created and time_bucket change with the date the suite runs.
'use strict';

const PREFIX = 'regress-';
const BUCKET = 'regress-events';
const EMPTY_PREFIX = 'regress-empty-';
const MISSING_TABLE = 'regress-missing-schemeless-event-store';
const TABLE = PREFIX + 'schemeless-event-store';

const eventId = (nn) => '00000000-0000-4000-8000-0000000000' + String(nn).padStart(2, '0');
const FUTURE_EVENT_ID = eventId(99);

// A payload big enough for the adapter to offload it (it measures objects at two bytes a character
// and offloads above 350,000).
const OFFLOADED_PAYLOAD = { blob: 'x'.repeat(360000), n: 1 };

/*
 * The events written through the adapter's storeEvents, one call per event, in this order. Absent
 * keys are absent on purpose (no identifier, no meta, no correlation or causation).
 */
const ADAPTER_EVENTS = [
  {
    id: eventId(1), domain: 'account', type: 'opened', identifier: 'acc-1',
    correlationId: 'corr-0001',
    created: '2024-01-01T00:00:00.000Z',          // first millisecond of a month
    payload: { owner: 'Ada Lovelace', currency: 'EUR', limits: { daily: 500, monthly: 2000.75 } },
    meta: {                                        // a Map with nested maps, booleans, null, decimals
      source: 'web',
      actor: { id: 7, roles: ['admin', 'ops'], verified: true },
      flags: { beta: true, internal: false },
      trace: null,
      ratio: 0.25,
      price: 19.99,
      deep: { a: { b: { c: 'd' } } },
    },
  },
  {
    id: eventId(2), domain: 'account', type: 'deposited', identifier: 'acc-1',
    correlationId: 'corr-0001', causationId: eventId(1),
    created: '2024-01-15T12:30:45.123Z',
    payload: { amount: 100.5, note: 'salary' },
    meta: 'imported-from-legacy',                  // meta as a String
  },
  {
    id: eventId(3), domain: 'audit', type: 'noted',  // no identifier: the stream `audit::`
    created: '2024-01-20T08:00:00.500Z',
    payload: { text: 'audit without identifier', level: 1 },
    meta: { user: 'system' },
  },
  {
    id: eventId(4), domain: 'account', type: 'deposited', identifier: 'acc-1',
    correlationId: 'corr-0001', causationId: eventId(2),
    created: '2024-01-31T23:59:59.999Z',          // last millisecond of a month
    payload: [1, 2.5, 'three', true, null, { four: 4 }],   // an array payload
    meta: ['tag-a', 2, false, null, { k: 'v' }],           // meta as an array (a List)
  },
  {
    id: eventId(5), domain: 'account', type: 'withdrawn', identifier: 'acc-1',
    correlationId: 'corr-0002',                    // correlation without causation
    created: '2024-02-01T09:15:00.000Z',
    payload: 'cash withdrawal',                    // a JSON string value: stored as "\"cash withdrawal\""
  },                                               // no meta
  {
    id: eventId(6), domain: 'audit', type: 'noted',
    created: '2024-02-14T14:14:14.140Z',
    payload: {
      text: 'line\nbreak "quoted" back\\slash tab\t',
      unicode: 'café ✓ 日本語 😀',
      html: '</script>',
    },
  },
  {
    id: eventId(7), domain: 'document', type: 'uploaded', identifier: 'doc-1',
    correlationId: 'corr-0003',
    created: '2024-02-20T10:00:00.000Z',
    payload: OFFLOADED_PAYLOAD,                    // offloaded: no payload attribute, s3Reference set
    meta: { filename: 'big.bin', size: 360000 },
  },
  {
    id: eventId(8), domain: 'document', type: 'renamed', identifier: 'doc-1',
    correlationId: 'corr-0003', causationId: eventId(7),
    created: '2024-02-29T23:59:59.999Z',          // leap day, last millisecond of February
    payload: { name: 'renamed.bin', previous: 'big.bin' },
    meta: { renamedBy: 'ada' },
  },
  {
    id: eventId(9), domain: 'account', type: 'closed', identifier: 'acc-1',
    causationId: eventId(5),                       // causation without correlation
    created: '2024-03-01T00:00:00.000Z',
    payload: null,                                 // null payload: the attribute is absent
  },
  {
    id: eventId(10), domain: 'account', type: 'opened', identifier: 'acc-2',
    created: '2024-03-31T23:59:59.999Z',
    payload: {
      owner: 'Grace Hopper', empty: {}, list: [], zero: 0, no: false, nothing: null,
      big: 9007199254740991, small: -0.0125,
    },
    meta: { source: 'api', version: 2.5 },
  },
];

/* The first millisecond of the month after the one `now` falls in, UTC, as an ISO string. */
function nextMonthStart(now = new Date()) {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)).toISOString();
}

/*
 * Items the adapter cannot write, as low-level DynamoDB AttributeValue maps for PutItem: a payload
 * that is not JSON, and meta of every remaining DynamoDB type. All in the stream raw::r1, whose head
 * is written too so that the stream is consistent (version = number of events).
 */
function rawItems(now = new Date()) {
  const item = (nn, sequence, created, type, extra) => ({
    id: { S: 'EventID#' + eventId(nn) },
    created: { S: created },
    timeBucket: { S: created.slice(0, 7) },
    domain: { S: 'raw' },
    type: { S: type },
    identifier: { S: 'r1' },
    sequence: { N: String(sequence) },
    ...extra,
  });
  const future = nextMonthStart(now);
  return [
    item(11, 1, '2024-02-05T06:00:00.000Z', 'bad-payload', { payload: { S: 'not json {' } }),
    item(12, 2, '2024-02-10T06:00:00.000Z', 'meta-number', {
      payload: { S: '{"i":12}' }, meta: { N: '12345678901234567890.5' },
    }),
    item(13, 3, '2024-02-25T06:00:00.000Z', 'meta-string-set', {
      payload: { S: '{"i":13}' }, meta: { SS: ['b', 'a'] },
    }),
    item(14, 4, '2024-03-05T06:00:00.000Z', 'meta-bool', {
      payload: { S: '{"i":14}' }, meta: { BOOL: true },
    }),
    item(15, 5, '2024-03-10T06:00:00.000Z', 'meta-null', {
      payload: { S: '{"i":15}' }, meta: { NULL: true },
    }),
    item(16, 6, '2024-03-15T06:00:00.000Z', 'meta-number-set', {
      payload: { S: '{"i":16}' }, meta: { NS: ['1', '2.5'] },
    }),
    item(99, 7, future, 'scheduled', {
      payload: { S: '{"i":99}' }, correlationId: { S: 'corr-future' },
    }),
  ];
}

const RAW_HEAD = {
  id: { S: 'EventID#HEAD::raw::r1' },
  created: { S: 'HEAD' },
  version: { N: '7' },
};

module.exports = {
  PREFIX, BUCKET, TABLE, EMPTY_PREFIX, MISSING_TABLE, FUTURE_EVENT_ID,
  eventId, ADAPTER_EVENTS, OFFLOADED_PAYLOAD, rawItems, RAW_HEAD, nextMonthStart,
};
