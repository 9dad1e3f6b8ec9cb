// The raw ceilings: the same DynamoDB calls a replay and an append need, issued as fast as a lean
// client can (aws.js: keep-alive http, SigV4, nothing else), so that the extension's figures can be
// read as a share of what DynamoDB Local can serve on this machine.
//   replay: Query on timeBucketIndex (no Limit, so pages of up to 1 MB of keys) for every bucket,
//           BatchGetItem of 100 keys for the full items, GetObject for offloaded events, 16 requests
//           in flight, every answer parsed. Order is not kept: a ceiling, not a replay.
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
 * Replays the buckets of `table` (month names) as fast as possible; resolves to
 * { events, seconds, requests: {query, batchGet, s3Get}, payloadChars }.
 */
async function rawReplay(client, { table, buckets, inFlight = 16 }) {
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

module.exports = { rawReplay, rawAppend, packTransactions };
