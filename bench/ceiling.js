// The raw ceilings: the same DynamoDB calls a replay and an append need, issued as fast as a lean
// client can (aws.js: keep-alive http, SigV4, nothing else), so that the extension's figures can be
// read as a share of what DynamoDB Local can serve on this machine.
//   replay (rawReplay, the ceiling): pipelined as the SQL side is, with its page sizes: Queries on
//           timeBucketIndex with Limit 100 for the scan's first page and 500 after, several month
//           buckets queried at once and each month's next page asked for as soon as a page comes
//           (before its keys are hydrated), BatchGetItem of 100 keys with many in flight at once
//           (a lane of their own, so hydration never waits behind the Queries), GetObject for
//           offloaded events, every answer parsed. Order is not kept and nothing else is done with
//           an event: a ceiling, not a replay. bench.js picks its concurrency in the warm-up (the
//           fastest of a few settings).
//   replay (rawReplayPaged, the earlier raw client, kept for comparison with earlier figures):
//           Queries without Limit (pages of up to 1 MB of keys), BatchGetItem of 100 keys, one
//           queue of 16 requests in flight, a month's next page only after the page before it.
//   append: TransactWriteItems packed to 100 actions (stream head updates with their version
//           conditions, event puts with attribute_not_exists(id)), several transactions in flight.
'use strict';

const { pool } = require('./aws');
const { eventItem, streamKey } = require('./data');

/* Runs tasks (functions returning a promise of more tasks) with at most `inFlight` running. */
function runTasks(initial, inFlight) {
  return new Promise((resolve, reject) => {
    const queue = [...initial];
    let active = 0;
    let failed = false;
    const pump = () => {
      if (failed)
        return;
      if (active === 0 && queue.length === 0) {
        resolve();
        return;
      }
      while (active < inFlight && queue.length > 0) {
        const task = queue.shift();
        active++;
        task().then((more) => {
          active--;
          if (more)
            queue.unshift(...more);
          pump();
        }, (e) => {
          failed = true;
          reject(e);
        });
      }
    };
    pump();
  });
}

/*
 * The ceiling: replays the buckets of `table` (month names) pipelined, as fast as possible.
 *   queryInFlight: month buckets queried at once (each month's pages follow one another, the next
 *                  asked for as soon as the one before answers);
 *   batchInFlight: BatchGetItem (and S3 GetObject) requests in flight at once;
 *   firstPage, pageSize: the Query Limit of the scan's first page and of every later one (the SQL
 *                  side's 100 and 500);
 *   maxQueuedBatches: Queries pause while this many BatchGetItems wait for a lane (the memory bound).
 * Resolves to { events, seconds, requests: {query, batchGet, s3Get}, payloadChars, settings }.
 */
async function rawReplay(client, { table, buckets, queryInFlight = 4, batchInFlight = 16, firstPage = 100,
  pageSize = 500, maxQueuedBatches = 64 }) {
  const counts = { query: 0, batchGet: 0, s3Get: 0 };
  let events = 0;
  let payloadChars = 0;
  const months = [...buckets];
  const continuations = [];              // [bucket, ExclusiveStartKey] of months whose next page is due
  const batches = [];                    // key lists waiting for a BatchGetItem lane
  const s3Refs = [];                     // references waiting for a GetObject lane
  let queries = 0;
  let hydrations = 0;
  let firstAsked = false;

  const started = process.hrtime.bigint();
  await new Promise((resolve, reject) => {
    let failed = false;
    const fail = (e) => {
      if (!failed) {
        failed = true;
        reject(e);
      }
    };

    const startQuery = (bucket, startKey) => {
      queries++;
      counts.query++;
      const request = {
        TableName: table, IndexName: 'timeBucketIndex', KeyConditionExpression: 'timeBucket = :b',
        ExpressionAttributeValues: { ':b': { S: bucket } }, ScanIndexForward: true,
        Limit: firstAsked ? pageSize : firstPage,
      };
      firstAsked = true;
      if (startKey)
        request.ExclusiveStartKey = startKey;
      client.call('Query', request).then((page) => {
        queries--;
        // the month's next page first, then the keys of this one
        if (page.LastEvaluatedKey)
          continuations.push([bucket, page.LastEvaluatedKey]);
        for (let i = 0; i < page.Items.length; i += 100)
          batches.push(page.Items.slice(i, i + 100).map((k) => ({ id: k.id, created: k.created })));
        pump();
      }, fail);
    };

    const startBatch = (keys) => {
      hydrations++;
      counts.batchGet++;
      client.call('BatchGetItem', { RequestItems: { [table]: { Keys: keys } } }).then((answer) => {
        hydrations--;
        for (const item of (answer.Responses && answer.Responses[table]) || []) {
          events++;
          if (item.payload)
            payloadChars += item.payload.S.length;
          else if (item.s3Reference)
            s3Refs.push(item.s3Reference.S);
        }
        const unprocessed = answer.UnprocessedKeys && answer.UnprocessedKeys[table];
        if (unprocessed && unprocessed.Keys.length > 0)
          batches.unshift(unprocessed.Keys);
        pump();
      }, fail);
    };

    const startS3 = (reference) => {
      hydrations++;
      counts.s3Get++;
      const sep = reference.indexOf('::');
      client.s3Get(reference.slice(0, sep), reference.slice(sep + 2)).then((body) => {
        hydrations--;
        payloadChars += JSON.stringify(JSON.parse(body.toString('utf8')).payload).length;
        pump();
      }, fail);
    };

    function pump() {
      if (failed)
        return;
      while (hydrations < batchInFlight && (s3Refs.length > 0 || batches.length > 0)) {
        if (s3Refs.length > 0)
          startS3(s3Refs.shift());
        else
          startBatch(batches.shift());
      }
      while (queries < queryInFlight && batches.length < maxQueuedBatches && (continuations.length > 0 || months.length > 0)) {
        if (continuations.length > 0)
          startQuery(...continuations.shift());
        else
          startQuery(months.shift(), null);
      }
      if (queries === 0 && hydrations === 0 && batches.length === 0 && s3Refs.length === 0 &&
          continuations.length === 0 && months.length === 0)
        resolve();
    }
    pump();
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return {
    events, seconds, requests: counts, payloadChars,
    settings: { queryInFlight, batchInFlight, firstPage, pageSize, maxQueuedBatches },
  };
}

/*
 * The earlier raw client: replays the buckets of `table` (month names), a month's pages one after
 * the other, 16 requests in flight from one queue; resolves to
 * { events, seconds, requests: {query, batchGet, s3Get}, payloadChars }.
 */
async function rawReplayPaged(client, { table, buckets, inFlight = 16 }) {
  const counts = { query: 0, batchGet: 0, s3Get: 0 };
  let events = 0;
  let payloadChars = 0;

  const s3Task = (reference) => async () => {
    counts.s3Get++;
    const sep = reference.indexOf('::');
    const body = JSON.parse((await client.s3Get(reference.slice(0, sep), reference.slice(sep + 2))).toString('utf8'));
    payloadChars += JSON.stringify(body.payload).length;
    return null;
  };
  const batchGetTask = (keys) => async () => {
    counts.batchGet++;
    const answer = await client.call('BatchGetItem', { RequestItems: { [table]: { Keys: keys } } });
    const more = [];
    for (const item of (answer.Responses && answer.Responses[table]) || []) {
      events++;
      if (item.payload)
        payloadChars += item.payload.S.length;
      else if (item.s3Reference)
        more.push(s3Task(item.s3Reference.S));
    }
    const unprocessed = answer.UnprocessedKeys && answer.UnprocessedKeys[table];
    if (unprocessed && unprocessed.Keys.length > 0)
      more.push(batchGetTask(unprocessed.Keys));
    return more;
  };
  const queryTask = (bucket, startKey) => async () => {
    counts.query++;
    const request = {
      TableName: table, IndexName: 'timeBucketIndex', KeyConditionExpression: 'timeBucket = :b',
      ExpressionAttributeValues: { ':b': { S: bucket } }, ScanIndexForward: true,
    };
    if (startKey)
      request.ExclusiveStartKey = startKey;
    const page = await client.call('Query', request);
    const more = [];
    for (let i = 0; i < page.Items.length; i += 100)
      more.push(batchGetTask(page.Items.slice(i, i + 100).map((k) => ({ id: k.id, created: k.created }))));
    if (page.LastEvaluatedKey)
      more.push(queryTask(bucket, page.LastEvaluatedKey));
    return more;
  };

  const started = process.hrtime.bigint();
  await runTasks(buckets.map((b) => queryTask(b, null)), inFlight);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { events, seconds, requests: counts, payloadChars };
}

/*
 * Cuts `events` (created order) into TransactWriteItems requests of at most `maxActions` actions:
 * per stream in a transaction, one head update and its next events. A stream is in at most one
 * transaction of a wave, so the transactions of a wave are independent and can run at once; a
 * stream whose events did not all fit goes on in the next wave. Returns waves of JSON bodies.
 */
function packTransactions(table, events, maxActions = 100) {
  const byStream = new Map();
  for (const e of events) {
    const key = streamKey(e);
    if (!byStream.has(key))
      byStream.set(key, []);
    byStream.get(key).push(e);
  }
  const written = new Map([...byStream.keys()].map((k) => [k, 0]));
  const waves = [];
  for (;;) {
    const pending = [...byStream.entries()].filter(([k, list]) => written.get(k) < list.length);
    if (pending.length === 0)
      break;
    const wave = [];
    let actions = [];
    for (const [key, list] of pending) {
      if (maxActions - actions.length < 2) {
        wave.push(actions);
        actions = [];
      }
      const expected = written.get(key);
      const take = Math.min(list.length - expected, maxActions - actions.length - 1);
      actions.push({
        Update: {
          TableName: table,
          Key: { id: { S: `EventID#HEAD::${key}` }, created: { S: 'HEAD' } },
          UpdateExpression: 'SET version = :new',
          ConditionExpression: expected === 0 ? 'attribute_not_exists(version) OR version = :expected' : 'version = :expected',
          ExpressionAttributeValues: { ':new': { N: String(expected + take) }, ':expected': { N: String(expected) } },
        },
      });
      for (let i = 0; i < take; i++)
        actions.push({
          Put: { TableName: table, Item: eventItem({ ...list[expected + i], sequence: expected + i + 1 }), ConditionExpression: 'attribute_not_exists(id)' },
        });
      written.set(key, expected + take);
    }
    if (actions.length > 0)
      wave.push(actions);
    waves.push(wave.map((TransactItems) => JSON.stringify({ TransactItems })));
  }
  return waves;
}

/*
 * Appends `events` to `table` with packed transactions, `inFlight` at once; the request bodies are
 * built before the clock starts. Resolves to { events, seconds, transactions, waves }.
 */
async function rawAppend(client, { table, events, inFlight = 4, maxActions = 100 }) {
  const waves = packTransactions(table, events, maxActions);
  const started = process.hrtime.bigint();
  for (const wave of waves)
    await pool(wave, inFlight, (body) => client.call('TransactWriteItems', body));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { events: events.length, seconds, transactions: waves.reduce((n, w) => n + w.length, 0), waves: waves.length };
}

module.exports = { rawReplay, rawReplayPaged, rawAppend, packTransactions };
