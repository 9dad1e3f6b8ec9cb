// The COST store: shaped for sql/cost.sql, which counts the requests and read units that reads cost
// and checks the order events sharing a millisecond come back in. Fixed, except for the NOW event.
//
// Store: table `cost-schemeless-event-store`, bucket `cost-events`. The SQL tables over it start in
// 2020-01, so the first four years are empty months.
//   2024-01  1,200 events, one a second from 2024-01-01T00:00:00Z, over 48 streams bulk::b-00..47
//            (event n is sequence ceil(n / 48) of stream (n - 1) % 48): more than one default page.
//   2024-02  a chunk of 40 events written by one storeEvents call, all created
//            2024-02-10T10:00:00.000Z: tie::t-1 (25 events), tie::t-2 (10), tie:: without identifier
//            (5), interleaved, with ids in no relation to their sequence; plus one event before and
//            one after that millisecond (stream edge::e).
//   NOW      one event (clock::now) at the first millisecond of the current month (UTC), so that a
//            walk backwards from the current month finds an event at once.
// Event ids are c0000000-0000-4000-8000-NNNNNNNNNNNN: bulk 1..1200, ties 2000..2039, edge 3001 and
// 3002, NOW 9999.
'use strict';

const PREFIX = 'cost-';
const BUCKET = 'cost-events';
const TABLE = PREFIX + 'schemeless-event-store';
const START_MONTH = '2020-01';
const TIE_CREATED = '2024-02-10T10:00:00.000Z';

const eventId = (n) => 'c0000000-0000-4000-8000-' + String(n).padStart(12, '0');

const BULK_STREAMS = 48;
const BULK_EVENTS = 1200;

/* The bulk month, as storeEvents batches: four whole streams (100 events) a call. */
function bulkBatches() {
  const start = Date.parse('2024-01-01T00:00:00.000Z');
  const byStream = Array.from({ length: BULK_STREAMS }, () => []);
  for (let n = 1; n <= BULK_EVENTS; n++) {
    const s = (n - 1) % BULK_STREAMS;
    byStream[s].push({
      id: eventId(n), domain: 'bulk', type: 'counted', identifier: 'b-' + String(s).padStart(2, '0'),
      created: new Date(start + (n - 1) * 1000).toISOString(),
      payload: { n },
      sequence: byStream[s].length + 1,
    });
  }
  const batches = [];
  for (let s = 0; s < BULK_STREAMS; s += 4)
    batches.push(byStream.slice(s, s + 4).flat());
  return batches;
}

/* The tie chunk: one storeEvents call, every event in the same millisecond. */
function tieChunk() {
  const streams = [['t-1', 25], ['t-2', 10], [undefined, 5]];
  const out = [];
  const seq = new Map();
  for (let k = 0; k < 25; k++) {
    for (const [identifier, count] of streams) {
      if (k >= count)
        continue;
      const key = identifier === undefined ? '' : identifier;
      seq.set(key, (seq.get(key) || 0) + 1);
      const e = {
        id: eventId(2000 + ((out.length * 23) % 40)), domain: 'tie', type: 'tied',
        created: TIE_CREATED, payload: { k }, sequence: seq.get(key),
      };
      if (identifier !== undefined)
        e.identifier = identifier;
      out.push(e);
    }
  }
  return out;
}

const EDGE_EVENTS = [
  { id: eventId(3001), domain: 'edge', type: 'before', identifier: 'e', created: '2024-02-10T09:59:59.999Z', payload: { at: 'before' }, sequence: 1 },
  { id: eventId(3002), domain: 'edge', type: 'after', identifier: 'e', created: '2024-02-10T10:00:00.001Z', payload: { at: 'after' }, sequence: 2 },
];

/* The first millisecond of the month `now` falls in, UTC, as an ISO string. */
function monthStart(now = new Date()) {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)).toISOString();
}

function nowEvent(now = new Date()) {
  return { id: eventId(9999), domain: 'clock', type: 'ticked', identifier: 'now', created: monthStart(now), payload: { now: true }, sequence: 1 };
}

module.exports = {
  PREFIX, BUCKET, TABLE, START_MONTH, TIE_CREATED, BULK_EVENTS, eventId, bulkBatches, tieChunk,
  EDGE_EVENTS, nowEvent, monthStart,
};
