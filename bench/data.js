// The benchmark's data sets, generated from fixed seeds so that every run (and both sides of every
// comparison) works on the same events:
//   - replaySet(): 100,000 events over 36 months in the SPEC layout, payloads of 0.5 to 2 KB of JSON,
//     meta as a Map, a String or absent, correlation and causation ids, a few offloaded events (their
//     own streams, written through the published adapter). The last 4 months hold exactly 10,000
//     events and the last 12 exactly 30,000, so that a start_month gives replays of 10k, 30k, 100k.
//   - millionSet(): 1,000,000 events over the same months with small payloads, for the memory figure.
//   - appendSet(): 10,000 events over 500 streams (20 each), the appended batch of the write figures.
// The months end with the one before the current month, so that the Node adapter (which stops at the
// current month) replays every event. Events come month by month, in created order, each with the
// sequence it has in its stream; no created value repeats within a set.
'use strict';

const { marshall } = require('./modules')('@aws-sdk/util-dynamodb');

/* mulberry32: a tiny PRNG with a fixed sequence for a fixed seed. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/* Helpers over one PRNG: integers, picks, hex strings, v4-shaped UUIDs. */
function randomTools(seed) {
  const rnd = prng(seed);
  const int = (lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1));
  const pick = (arr) => arr[Math.floor(rnd() * arr.length)];
  const hex = (n) => {
    let s = '';
    for (let i = 0; i < n; i++)
      s += '0123456789abcdef'[Math.floor(rnd() * 16)];
    return s;
  };
  const uuid = () => `${hex(8)}-${hex(4)}-4${hex(3)}-${pick(['8', '9', 'a', 'b'])}${hex(3)}-${hex(12)}`;
  return { rnd, int, pick, hex, uuid };
}

/* The `count` months ending with the month before `now`, as [year, month0] pairs. */
function monthsBefore(count, now = new Date()) {
  const last = now.getUTCFullYear() * 12 + now.getUTCMonth() - 1;
  return Array.from({ length: count }, (_, i) => {
    const m = last - count + 1 + i;
    return [Math.floor(m / 12), m % 12];
  });
}

const monthName = ([y, m]) => `${y}-${String(m + 1).padStart(2, '0')}`;

/* `count` distinct sorted ISO timestamps (millisecond precision) inside the month. */
function timesInMonth(tools, [y, m], count) {
  const start = Date.UTC(y, m, 1);
  const span = Date.UTC(y, m + 1, 1) - start;
  const seen = new Set();
  while (seen.size < count)
    seen.add(start + Math.floor(tools.rnd() * span));
  return [...seen].sort((a, b) => a - b).map((t) => new Date(t).toISOString());
}

const WORDS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliett',
  'kilo', 'lima', 'mike', 'november', 'oscar', 'papa', 'quebec', 'romeo', 'sierra', 'tango'];
const NOTES = ['café au lait', 'Grüße aus Köln', 'naïve résumé', '東京の倉庫', 'quote " and \\ backslash',
  'line\nbreak', 'tab\there', 'emoji 🚚📦', null, null, null, null];

/* A realistic business payload whose JSON text is about `target` characters long. */
function bigPayload(t, domain, type, n, target) {
  const p = {
    kind: `${domain}.${type}`,
    n,
    amount: Math.round(t.rnd() * 1e6) / 100,
    currency: t.pick(['EUR', 'USD', 'GBP', 'JPY']),
    quantity: t.int(1, 400),
    active: t.rnd() < 0.5,
    tags: Array.from({ length: t.int(0, 4) }, () => t.pick(WORDS)),
    customer: { id: `cus-${t.int(1, 99999)}`, name: `${t.pick(WORDS)} ${t.pick(WORDS)}`, tier: t.pick(['free', 'pro', 'gold']) },
    address: { street: `${t.int(1, 999)} ${t.pick(WORDS)} road`, city: t.pick(WORDS), zip: String(t.int(10000, 99999)) },
    note: t.pick(NOTES),
    lines: [],
  };
  let length = JSON.stringify(p).length;
  while (length < target) {
    const line = {
      sku: `sku-${String(t.int(1, 5000)).padStart(5, '0')}`, qty: t.int(1, 9),
      price: Math.round(t.rnd() * 50000) / 100, title: Array.from({ length: t.int(2, 7) }, () => t.pick(WORDS)).join(' '),
    };
    p.lines.push(line);
    length += JSON.stringify(line).length + 1;
  }
  return p;
}

/* meta as applications pass it: mostly a Map, sometimes a String, sometimes absent. */
function metaFor(t) {
  const r = t.rnd();
  if (r < 0.6)
    return {
      source: t.pick(['web', 'api', 'batch', 'mobile']),
      actor: { id: t.int(1, 5000), role: t.pick(['user', 'admin', 'service']) },
      traceId: t.hex(16),
      retries: t.int(0, 3),
      replayed: false,
    };
  if (r < 0.85)
    return `import:${t.int(1, 999)}`;
  return undefined;
}

/* Streams: domain, identifier (absent for the two system-wide streams), event types, a weight. */
function makeStreams(t, counts) {
  const types = {
    order: ['placed', 'itemAdded', 'itemRemoved', 'paid', 'shipped', 'delivered', 'cancelled'],
    customer: ['registered', 'addressChanged', 'emailVerified', 'tierChanged'],
    inventory: ['received', 'reserved', 'released', 'counted'],
    payment: ['authorized', 'captured', 'refunded'],
  };
  const streams = [];
  for (const [domain, count] of Object.entries(counts))
    for (let i = 1; i <= count; i++)
      streams.push({ domain, identifier: `${domain.slice(0, 3)}-${String(i).padStart(6, '0')}`, types: types[domain], seq: 0, last: null });
  streams.push({ domain: 'system', identifier: undefined, types: ['heartbeat', 'configChanged'], seq: 0, last: null });
  streams.push({ domain: 'audit', identifier: undefined, types: ['noted', 'flagged'], seq: 0, last: null });
  return streams;
}

const streamKey = (e) => `${e.domain}::${e.identifier === undefined ? '' : e.identifier}`;

/*
 * The DynamoDB item the Node adapter writes for `e` (its EventStoreEntity.toItem() marshalled by the
 * document client with removeUndefinedValues): payload as JSON text, absent keys left out.
 */
function eventItem(e) {
  return marshall({
    id: `EventID#${e.id}`,
    domain: e.domain,
    type: e.type,
    identifier: e.identifier,
    correlationId: e.correlationId,
    causationId: e.causationId,
    payload: e.payload ? JSON.stringify(e.payload) : undefined,
    meta: e.meta,
    created: e.created,
    timeBucket: e.created.slice(0, 7),
    sequence: e.sequence,
  }, { removeUndefinedValues: true });
}

/* The stream head item for a stream of `version` events. */
function headItem(key, version) {
  return marshall({ id: `EventID#HEAD::${key}`, created: 'HEAD', version });
}

/*
 * The replay set. Returns { prefix, bucket, months, monthCounts, total, subsets, offloaded, generate }
 * where generate() yields, month after month, { month, events } (events in created order; an event
 * with `offloaded: true` must go through the adapter), and finally the stream heads via heads().
 */
function replaySet({ total = 100000, months = 36, now } = {}) {
  const ms = monthsBefore(months, now);
  // The last 4 months hold 10% of the events, the last 12 months 30% (exactly 10k and 30k for 100k).
  const counts = new Array(months).fill(0);
  const spread = (from, to, n) => {
    const k = to - from;
    for (let i = 0; i < k; i++)
      counts[from + i] = Math.floor(n / k) + (i < n % k ? 1 : 0);
  };
  spread(months - 4, months, Math.round(total * 0.1));
  spread(months - 12, months - 4, Math.round(total * 0.3) - Math.round(total * 0.1));
  spread(0, months - 12, total - Math.round(total * 0.3));
  const subsets = [
    { label: `${Math.round(total * 0.1)}`, events: Math.round(total * 0.1), startMonth: monthName(ms[months - 4]) },
    { label: `${Math.round(total * 0.3)}`, events: Math.round(total * 0.3), startMonth: monthName(ms[months - 12]) },
    { label: `${total}`, events: total, startMonth: monthName(ms[0]) },
  ];
  // Offloaded events: month index and JSON size (object-sizeof counts 2 bytes a character, so
  // anything over ~175,000 characters crosses the adapter's 350,000-byte limit; one is over 400 KB).
  const offloadedAt = [[2, 200000], [months - 20, 260000], [months - 9, 300000], [months - 3, 450000], [months - 1, 220000]];

  const state = { heads: new Map(), samples: [] };
  function* generate() {
    const t = randomTools(20260101);
    const streams = makeStreams(t, { order: 900, customer: 600, inventory: 300, payment: 200 });
    const weights = streams.map((s) => (s.identifier ? 1 : 40));
    const cumulative = [];
    weights.reduce((acc, w, i) => (cumulative[i] = acc + w), 0);
    const weightTotal = cumulative[cumulative.length - 1];
    const pickStream = () => {
      const r = t.rnd() * weightTotal;
      let lo = 0;
      let hi = cumulative.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (cumulative[mid] > r) hi = mid; else lo = mid + 1;
      }
      return streams[lo];
    };
    let docs = 0;
    for (let mi = 0; mi < months; mi++) {
      const times = timesInMonth(t, ms[mi], counts[mi]);
      const offloadedHere = offloadedAt.filter(([at]) => at === mi).map(([, size]) => size);
      const offloadIndex = new Map(offloadedHere.map((size, k) => [Math.floor((k + 1) * times.length / (offloadedHere.length + 1)), size]));
      const events = times.map((created, i) => {
        if (offloadIndex.has(i)) {
          docs++;
          const size = offloadIndex.get(i);
          const pages = [];
          let length = 0;
          for (let p = 1; length < size; p++) {
            const text = Array.from({ length: 40 }, () => t.pick(WORDS)).join(' ');
            pages.push({ page: p, text });
            length += text.length + 22;
          }
          const e = {
            id: t.uuid(), domain: 'document', identifier: `doc-${String(docs).padStart(4, '0')}`, type: 'attached',
            correlationId: `corr-${t.hex(12)}`, created, sequence: 1, offloaded: true,
            payload: { kind: 'document.attached', title: `${t.pick(WORDS)} report`, pages }, meta: { source: 'upload', bytes: length },
          };
          state.heads.set(streamKey(e), 1);
          return e;
        }
        const s = pickStream();
        s.seq++;
        const type = t.pick(s.types);
        const e = {
          id: t.uuid(), domain: s.domain, identifier: s.identifier, type,
          correlationId: t.rnd() < 0.8 ? `corr-${t.hex(12)}` : undefined,
          causationId: s.last && t.rnd() < 0.5 ? s.last : undefined,
          created, sequence: s.seq,
          payload: bigPayload(t, s.domain, type, s.seq, t.int(500, 2000)),
          meta: metaFor(t),
        };
        s.last = e.id;
        state.heads.set(streamKey(e), s.seq);
        return e;
      });
      // Samples for the lookups: the first plain event of the month, and every offloaded one.
      const plain = events.find((e) => !e.offloaded);
      if (plain && (mi === Math.floor(months / 2)))
        state.samples.push({ id: plain.id, offloaded: false, payload: JSON.stringify(plain.payload), sequence: plain.sequence });
      for (const e of events.filter((x) => x.offloaded))
        state.samples.push({ id: e.id, offloaded: true, payload: null, sequence: e.sequence });
      yield { month: monthName(ms[mi]), events };
    }
  }
  return {
    prefix: 'bench-replay-', bucket: 'bench-events', total, months: ms.map(monthName), monthCounts: counts,
    subsets, offloadedCount: offloadedAt.length, generate,
    heads: () => state.heads, samples: () => state.samples,
  };
}

/* The million set: small payloads, 10,000 streams; generate() yields month after month. */
function millionSet({ total = 1000000, months = 36, now } = {}) {
  const ms = monthsBefore(months, now);
  const counts = Array.from({ length: months }, (_, i) => Math.floor(total / months) + (i < total % months ? 1 : 0));
  const heads = new Map();
  function* generate() {
    const t = randomTools(20260202);
    const streams = makeStreams(t, { order: 4000, customer: 3000, inventory: 2000, payment: 998 });
    for (let mi = 0; mi < months; mi++) {
      const events = timesInMonth(t, ms[mi], counts[mi]).map((created) => {
        const s = streams[t.int(0, streams.length - 1)];
        s.seq++;
        const e = {
          id: t.uuid(), domain: s.domain, identifier: s.identifier, type: t.pick(s.types), created, sequence: s.seq,
          correlationId: t.rnd() < 0.5 ? `corr-${t.hex(8)}` : undefined,
          payload: { n: s.seq, amount: t.int(1, 100000) / 100, ok: t.rnd() < 0.9 },
          meta: t.rnd() < 0.5 ? { source: t.pick(['web', 'api']) } : undefined,
        };
        heads.set(streamKey(e), s.seq);
        return e;
      });
      yield { month: monthName(ms[mi]), events };
    }
  }
  return { prefix: 'bench-million-', bucket: 'bench-events', total, months: ms.map(monthName), startMonth: monthName(ms[0]), generate, heads: () => heads };
}

/*
 * The appended batch: `total` events over `streams` streams, in created order; event i belongs to
 * stream (i * 7919) mod streams, so that every run of `streams` consecutive events touches every
 * stream once and a storeEvents batch of 100 holds 100 different streams. Dated in the month before
 * the current one, with payloads like the replay set's. No sequence: the writer assigns it.
 */
function appendSet({ total = 10000, streams = 500, now } = {}) {
  const t = randomTools(20260303);
  const [month] = monthsBefore(1, now);
  const times = timesInMonth(t, month, total);
  const types = ['placed', 'itemAdded', 'paid', 'shipped'];
  const last = new Map();
  return times.map((created, i) => {
    const s = (i * 7919) % streams;
    const identifier = `app-${String(s).padStart(5, '0')}`;
    const type = t.pick(types);
    const id = t.uuid();
    const e = {
      id, domain: 'order', identifier, type, created,
      correlationId: `corr-${t.hex(12)}`,
      causationId: last.get(s),
      payload: bigPayload(t, 'order', type, i, t.int(500, 2000)),
      meta: metaFor(t),
    };
    last.set(s, id);
    return e;
  });
}

module.exports = { replaySet, millionSet, appendSet, eventItem, headItem, streamKey, monthName, monthsBefore };
