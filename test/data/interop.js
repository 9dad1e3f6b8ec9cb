// The INTEROP store's events, generated from a fixed seed: about 6,000 events that the Node adapter
// writes and the extension must replay exactly. 4,000 fall in 2024-06 (several GSI pages at a Query
// Limit of 500), the rest are spread over 2023-11..2025-02. The mix covers what production stores
// hold: payloads of 0.5 to 2 KB of JSON (some with escapes and non-ASCII text), meta as a Map, as a
// String or absent, streams without identifier, events without correlation or causation, first and
// last milliseconds of months, and offloaded events (one of them over DynamoDB's 400 KB item limit).
//
// generate() returns the events in the order they must be stored (created order, which is also the
// order within every stream), each with the sequence the adapter will give it. No created value
// repeats, so "created order" is a total order.
'use strict';

const PREFIX = 'interop-';
const BUCKET = 'interop-events';
const SEED = 20240601;

/* mulberry32: a small, fast PRNG with a fixed sequence for a fixed seed. */
function prng(seed) {
  let a = seed >>> 0;
  return function next() {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function generate() {
  const rnd = prng(SEED);
  const int = (lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1));
  const pick = (arr) => arr[Math.floor(rnd() * arr.length)];
  const hex = (n) => Array.from({ length: n }, () => '0123456789abcdef'[int(0, 15)]).join('');
  const uuid = () => `${hex(8)}-${hex(4)}-4${hex(3)}-${pick(['8', '9', 'a', 'b'])}${hex(3)}-${hex(12)}`;

  // --- when: distinct millisecond timestamps --------------------------------------------------
  const created = new Set([
    '2023-11-01T00:00:00.000Z', // first millisecond of the first month
    '2024-02-29T23:59:59.999Z', // leap day, last millisecond of the month
    '2024-06-01T00:00:00.000Z', // first and last millisecond of the big month
    '2024-06-30T23:59:59.999Z',
    '2024-12-31T23:59:59.999Z', // year boundary
    '2025-01-01T00:00:00.000Z',
    '2025-02-28T23:59:59.999Z', // last millisecond of the last month
  ]);
  const months = [];
  for (let y = 2023, m = 10; y < 2025 || m <= 1; m++) {
    if (m === 12) { y++; m = 0; }
    months.push([y, m]);
  }
  const monthStart = (y, m) => Date.UTC(y, m, 1);
  const inMonth = ([y, m]) => new Date(monthStart(y, m) +
    Math.floor(rnd() * (monthStart(y, m + 1) - monthStart(y, m)))).toISOString();
  const june = [2024, 5];
  let inJune = [...created].filter((c) => c.startsWith('2024-06')).length;
  while (inJune < 4000) {
    const c = inMonth(june);
    if (!created.has(c)) {
      created.add(c);
      inJune++;
    }
  }
  const others = months.filter(([y, m]) => !(y === 2024 && m === 5));
  while (created.size < 6000)
    created.add(inMonth(others[created.size % others.length]));
  const times = [...created].sort();

  // --- who: streams ----------------------------------------------------------------------------
  const streams = [];
  const addStreams = (domain, count, idPrefix, types) => {
    for (let i = 1; i <= count; i++)
      streams.push({ domain, identifier: idPrefix ? `${idPrefix}-${String(i).padStart(4, '0')}` : undefined, types, seq: 0, last: null });
  };
  addStreams('order', 120, 'ord', ['placed', 'itemAdded', 'itemRemoved', 'paid', 'shipped', 'delivered', 'cancelled']);
  addStreams('customer', 60, 'cus', ['registered', 'addressChanged', 'emailVerified', 'tierUpgraded']);
  addStreams('inventory', 40, 'sku', ['received', 'reserved', 'released', 'counted']);
  addStreams('system', 1, null, ['heartbeat', 'configChanged']); // streams without identifier
  addStreams('audit', 1, null, ['noted', 'flagged']);
  const weights = streams.map((s) => (s.identifier ? 1 : 25));
  const totalWeight = weights.reduce((a, b) => a + b, 0);
  const pickStream = () => {
    let r = rnd() * totalWeight;
    for (let i = 0; i < streams.length; i++) {
      r -= weights[i];
      if (r < 0)
        return streams[i];
    }
    return streams[streams.length - 1];
  };

  // --- what: payloads and meta -----------------------------------------------------------------
  const words = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india',
    'juliett', 'kilo', 'lima', 'mike', 'november', 'oscar', 'papa', 'quebec', 'romeo'];
  const oddities = ['café', 'naïve résumé', 'Grüße aus München', '日本語のテキスト', 'emoji 😀🚀',
    'quote " and backslash \\', 'new\nline and\ttab', '</script><b>', 'control \u0001 char',
    'slash / and unicode escape \u2028'];
  const sentence = (n) => Array.from({ length: n }, () => pick(words)).join(' ');
  const money = () => Math.round(rnd() * 100000) / 100;
  const payloadFor = (stream, type, n) => {
    const target = int(500, 1900);
    const p = {
      kind: `${stream.domain}.${type}`,
      n,
      amount: money(),
      ratio: rnd(),                 // full-precision doubles, e.g. 0.30000000000000004-like values
      quantity: int(-5, 500),
      active: rnd() < 0.5,
      tags: Array.from({ length: int(0, 4) }, () => pick(words)),
      address: { street: `${int(1, 999)} ${pick(words)} street`, city: pick(words), zip: String(int(10000, 99999)) },
      note: rnd() < 0.3 ? pick(oddities) : null,
      lines: [],
    };
    while (JSON.stringify(p).length < target)
      p.lines.push({ sku: `sku-${String(int(1, 40)).padStart(4, '0')}`, qty: int(1, 9), price: money(), text: sentence(int(2, 8)) });
    return p;
  };
  const metaFor = () => {
    const r = rnd();
    if (r < 0.6)
      return {
        source: pick(['web', 'api', 'batch', 'mobile']),
        actor: { id: int(1, 500), role: pick(['user', 'admin', 'service']) },
        traceId: hex(16),
        replayed: false,
        score: Math.round(rnd() * 1000) / 100,
        parent: rnd() < 0.2 ? null : { span: hex(8) },
      };
    if (r < 0.85)
      return `batch-import:${int(1, 99)}`;
    return undefined;
  };

  // --- the events --------------------------------------------------------------------------------
  // Offloaded events, at fixed positions among the created times (0-based index into `times`).
  const offloaded = new Map([
    [150, () => ({ kind: 'document.attached', blob: 'a'.repeat(200000), n: 1 })],              // ~200 KB JSON
    [2500, () => ({ kind: 'document.attached', blob: 'b'.repeat(450000), parts: [1, 2, 3] })], // over 400 KB
    [5800, () => ({ kind: 'document.attached', pages: Array.from({ length: 5000 }, (_, i) => ({ page: i, text: sentence(8) })) })],
  ]);
  const events = times.map((time, index) => {
    const stream = offloaded.has(index) ? streams[0] : pickStream();
    const type = offloaded.has(index) ? 'documentAttached' : pick(stream.types);
    stream.seq++;
    const payload = offloaded.has(index) ? offloaded.get(index)() : payloadFor(stream, type, stream.seq);
    const event = {
      id: uuid(),
      domain: stream.domain,
      type,
      identifier: stream.identifier,
      correlationId: rnd() < 0.8 ? `corr-${hex(12)}` : undefined,
      causationId: stream.last && rnd() < 0.6 ? stream.last : undefined,
      created: time,
      payload,
      meta: index === 2500 ? 'offloaded-with-string-meta' : metaFor(),
      sequence: stream.seq,
      offloaded: offloaded.has(index),
    };
    stream.last = event.id;
    return event;
  });
  return events;
}

module.exports = { PREFIX, BUCKET, SEED, generate, prng };
