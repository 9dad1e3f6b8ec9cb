// Commits whose TransactWriteItems get an answer other than success, on a fresh store of its own
// (`oc-`), through a scripted front of this script's own before DDB_URL. The front forwards every
// request but TransactWriteItems, which it answers as the case in hand says:
//   1. TransactionInProgressException twice, then passed on: the commit succeeds, every try carried
//      the same ClientRequestToken and body, the events are in DynamoDB once.
//   2. Passed on (DynamoDB applies it), then TransactionInProgressException on that try and every
//      later one: no try gets a definitive answer, the first event is looked up, found, and the
//      commit succeeds; the events are in DynamoDB once.
//   3. Passed on and applied, its answer cut off, then TransactionCanceledException (the head's
//      condition failed, as DynamoDB answers once it no longer knows the token): looked up, found,
//      the commit succeeds.
//   4. Never passed on, HTTP 500 (or the connection dropped) on every try: 08007, the message says
//      DynamoDB's outcome is unknown, and nothing is in DynamoDB; the stream then starts at 1.
//   5. Never passed on, TransactionCanceledException whose reason is ThrottlingError,
//      ProvisionedThroughputExceeded or TransactionConflict, on the stream head or on an event, or
//      ConditionalCheckFailed on an event: each reason's SQLSTATE and message (never "expected
//      version N, found N"), nothing written. ThrottlingError, ProvisionedThroughputExceeded and
//      TransactionConflict wrote nothing and may pass another time: sent again, each time under a new ClientRequestToken with the
//      same TransactItems, 1 + max_retries times in all before the commit fails; the other reasons
//      are sent once.
//   6. TransactionConflict once, then passed on: the commit succeeds on the second try (a new
//      token), the events are in DynamoDB once.
//   7. Passed on and applied, its answer cut off; the same token then cancelled for
//      TransactionConflict; the retry under a new token passed on, which DynamoDB cancels (the
//      head moved, the ids exist, by the first try's doing): looked up, found, the commit
//      succeeds, the events are in DynamoDB once.
//   8. A BatchGetItem that hydrates 30 events answered in part: two keys held back as
//      UnprocessedKeys and five items left out (as an eventually consistent read may): the two are
//      sent again, then the five are asked once more with a consistent read (more keys than that
//      round's two), and the scan returns all 30 events with their payloads.
// Counts come from DynamoDB itself (a consistent Scan with the AWS SDK), not through the extension.
//
// Usage: node test/interop/outcomes.js   (needs PG*, DDB_URL, S3_URL, AWS_TEST_*). Prints
// `ok - ...` / `not ok - ...` and `N passed, N failed`; exits 1 on failure.
'use strict';

const http = require('http');
const { ScanCommand } = require('@aws-sdk/client-dynamodb');
const { makeDynamoClient } = require('./adapter');
const { Report } = require('./report');
const { psql, lit } = require('./psql');

const PREFIX = 'oc-';
const TABLE = `${PREFIX}schemeless-event-store`;
const MAX_RETRIES = 3;           // four tries in all
const env = process.env;

/*
 * The scripted front. `front.mode` says what a TransactWriteItems gets, per try of its token:
 * { forward: [bool per try], answer: [what per try] } where an answer is 'pass' (relay DynamoDB's),
 * 'inprogress', 'error500', 'drop', or { cancel: code, at: 'head' | 'event' }. With `byCall: true`
 * the lists go by the tries since the mode was set, whatever their tokens. A try beyond the
 * lists repeats their last entry. Records every try: token, body, what it got (`front.calls`: all
 * of them in order).
 */
function startFront() {
  const upstream = new URL(env.DDB_URL);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const front = { mode: null, tries: new Map(), calls: [], url: null, close: null, batch: null };

  function sendError(res, status, type, message, extra = {}) {
    const body = Buffer.from(JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${type}`, message, ...extra }));
    res.writeHead(status, { 'Content-Type': 'application/x-amz-json-1.0', 'Content-Length': String(body.length) });
    res.end(body);
  }

  function forward(req, body, onAnswer) {
    const up = http.request({
      host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers, agent,
    }, (upRes) => {
      const out = [];
      upRes.on('data', (c) => out.push(c));
      upRes.on('end', () => onAnswer(upRes, Buffer.concat(out)));
    });
    up.on('error', (e) => onAnswer(null, Buffer.from(String(e))));
    up.end(body);
  }

  function cancelReasons(parsed, code, at) {
    const items = parsed.TransactItems || [];
    // the head is the Update; an event is a Put
    const index = items.findIndex((x) => (at === 'head' ? x.Update : x.Put));
    return items.map((x, i) => (i === index
      ? { Code: code, Message: `${code} (scripted)` }
      : { Code: 'None' }));
  }

  function answer(res, req, what, parsed) {
    if (what === 'drop') {
      req.socket.destroy();
      return;
    }
    if (what === 'truncate') {
      // part of an answer, then the connection closed: the transfer fails after the request was
      // sent (a connection closed before any byte of the answer, libcurl sends again by itself)
      res.writeHead(200, { 'Content-Type': 'application/x-amz-json-1.0', 'Content-Length': '100' });
      res.write('{"', () => req.socket.destroy());
      return;
    }
    if (what === 'inprogress') {
      sendError(res, 400, 'TransactionInProgressException', 'Transaction is ongoing for the idempotency token');
      return;
    }
    if (what === 'error500') {
      sendError(res, 500, 'InternalServerError', 'Internal server error (scripted)');
      return;
    }
    const reasons = cancelReasons(parsed, what.cancel, what.at);
    sendError(res, 400, 'TransactionCanceledException',
      `Transaction cancelled, please refer cancellation reasons for specific reasons [${reasons.map((r) => r.Code).join(', ')}]`,
      { CancellationReasons: reasons });
  }

  /*
   * front.batch = { hold, leave, done: false, requests: [] }: the first eventually consistent
   * BatchGetItem of more than hold + leave keys is answered without the items of its first `hold`
   * keys (returned as UnprocessedKeys) and of the next `leave` keys (simply absent); every
   * request's key count and ConsistentRead are recorded.
   */
  function batchGet(req, res, body) {
    const b = front.batch;
    const parsed = JSON.parse(body.toString('utf8'));
    const table = Object.keys(parsed.RequestItems)[0];
    const keys = parsed.RequestItems[table].Keys;
    const consistent = parsed.RequestItems[table].ConsistentRead === true;
    const trick = !b.done && !consistent && keys.length > b.hold + b.leave;
    b.requests.push({ keys: keys.length, consistent, trick });
    forward(req, body, (upRes, out) => {
      if (upRes === null || upRes.statusCode !== 200 || !trick) {
        res.writeHead(upRes ? upRes.statusCode : 502, upRes ? upRes.headers : {});
        res.end(out);
        return;
      }
      b.done = true;
      const answer = JSON.parse(out.toString('utf8'));
      const keyOf = (k) => `${k.id.S}\u0000${k.created.S}`;
      const held = keys.slice(0, b.hold);
      const gone = new Set(keys.slice(0, b.hold + b.leave).map(keyOf));
      answer.Responses[table] = answer.Responses[table].filter((item) => !gone.has(keyOf(item)));
      answer.UnprocessedKeys = { [table]: { ...parsed.RequestItems[table], Keys: held } };
      const text = Buffer.from(JSON.stringify(answer));
      res.writeHead(200, { 'Content-Type': 'application/x-amz-json-1.0', 'Content-Length': String(text.length) });
      res.end(text);
    });
  }

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const target = req.headers['x-amz-target'] || '';
      if (target.endsWith('.BatchGetItem') && front.batch !== null) {
        batchGet(req, res, body);
        return;
      }
      if (!target.endsWith('.TransactWriteItems') || front.mode === null) {
        forward(req, body, (upRes, out) => {
          if (upRes === null) {
            res.writeHead(502);
            res.end(out);
            return;
          }
          res.writeHead(upRes.statusCode, upRes.headers);
          res.end(out);
        });
        return;
      }
      let parsed = {};
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch (e) {
        parsed = {};
      }
      const token = parsed.ClientRequestToken || '(none)';
      const record = front.tries.get(token) || [];
      front.tries.set(token, record);
      const n = front.mode.byCall ? front.mode.calls++ : record.length;
      const pick = (list) => list[Math.min(n, list.length - 1)];
      const doForward = pick(front.mode.forward);
      const what = pick(front.mode.answer);
      const entry = { token, body: body.toString('utf8'), forwarded: doForward, answer: what, status: null };
      record.push(entry);
      front.calls.push(entry);
      if (!doForward) {
        answer(res, req, what, parsed);
        return;
      }
      forward(req, body, (upRes, out) => {
        entry.status = upRes ? upRes.statusCode : null;
        entry.upstream = out.toString('utf8').slice(0, 300);
        if (what === 'pass' && upRes) {
          res.writeHead(upRes.statusCode, upRes.headers);
          res.end(out);
        } else {
          answer(res, req, what === 'pass' ? 'error500' : what, parsed);
        }
      });
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      front.url = `http://127.0.0.1:${server.address().port}`;
      front.close = () => new Promise((r) => { agent.destroy(); server.close(() => r()); server.closeAllConnections(); });
      resolve(front);
    });
  });
}

function setupSql(frontUrl) {
  const mapping = (server) => `CREATE USER MAPPING FOR CURRENT_USER SERVER ${server} OPTIONS (
  access_key_id ${lit(env.AWS_TEST_ACCESS_KEY_ID || 'S3RVER')},
  secret_access_key ${lit(env.AWS_TEST_SECRET_ACCESS_KEY || 'S3RVER')});`;
  const common = `region ${lit(env.AWS_TEST_REGION || 'us-east-1')}, s3_endpoint ${lit(env.S3_URL)}, s3_force_path_style 'true'`;
  const cols = 'id text, domain text, type text, identifier text, sequence bigint, payload jsonb';
  return `
CREATE EXTENSION IF NOT EXISTS event_store_dynamo;
DROP SERVER IF EXISTS oc_srv CASCADE;
DROP SERVER IF EXISTS oc_front_srv CASCADE;
DROP SCHEMA IF EXISTS oc CASCADE;
CREATE SCHEMA oc;
CREATE SERVER oc_srv FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (${common}, endpoint ${lit(env.DDB_URL)});
${mapping('oc_srv')}
CREATE SERVER oc_front_srv FOREIGN DATA WRAPPER event_store_dynamo OPTIONS (${common},
  endpoint ${lit(frontUrl)}, max_retries '${MAX_RETRIES}', retry_base_ms '5', retry_cap_ms '20');
${mapping('oc_front_srv')}
CREATE FOREIGN TABLE oc.events (${cols}) SERVER oc_srv OPTIONS (table_name_prefix ${lit(PREFIX)});
CREATE FOREIGN TABLE oc.front (${cols}) SERVER oc_front_srv OPTIONS (table_name_prefix ${lit(PREFIX)});
SELECT event_store_dynamo.reset_store('oc.events');
`;
}

/* The events of stream oc::<identifier> in DynamoDB: a consistent Scan with the AWS SDK. */
async function eventsInDynamo(ddb, identifier) {
  const items = [];
  let start;
  do {
    const page = await ddb.send(new ScanCommand({
      TableName: TABLE, ConsistentRead: true, ExclusiveStartKey: start,
      FilterExpression: '#d = :d AND #i = :i',
      ExpressionAttributeNames: { '#d': 'domain', '#i': 'identifier' },
      ExpressionAttributeValues: { ':d': { S: 'oc' }, ':i': { S: identifier } },
    }));
    items.push(...(page.Items || []));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}

/* Appends n events to stream oc::<identifier> through the front, in one commit. */
function appendSql(identifier, n) {
  return `\\set VERBOSITY verbose
BEGIN;
INSERT INTO oc.front (domain, type, identifier, payload)
  SELECT 'oc', 'step', ${lit(identifier)}, jsonb_build_object('k', k) FROM generate_series(1, ${n}) AS k;
COMMIT;`;
}

/* The next sequence of a stream, as a plain commit (not through the front) hands it out. */
async function nextSequence(identifier) {
  const r = await psql(`INSERT INTO oc.events (domain, type, identifier) VALUES ('oc', 'after', ${lit(identifier)}) RETURNING sequence;`);
  return r.code === 0 ? Number(r.stdout.trim()) : `failed: ${r.stderr.trim()}`;
}

/* The tries of the tokens first seen since `before`. */
function newTries(front, before) {
  return [...front.tries.entries()].filter(([t]) => !before.has(t));
}

async function resolvedCase(report, ddb, front, { name, identifier, mode, tries }) {
  const before = new Set(front.tries.keys());
  front.mode = mode;
  const r = await psql(appendSql(identifier, 3), { timeoutMs: 60000 });
  front.mode = null;
  report.check(`${name}: the commit succeeds`, r.code === 0 && !r.timedOut, r.stderr.trim());
  const tokens = newTries(front, before);
  const problems = [];
  if (tokens.length !== 1)
    problems.push(`${tokens.length} tokens, expected 1`);
  for (const [token, rec] of tokens) {
    if (rec.length !== tries)
      problems.push(`token ${token}: ${rec.length} tries, expected ${tries}`);
    if (rec.some((t) => t.body !== rec[0].body))
      problems.push(`token ${token}: a retry with another body`);
  }
  report.check(`${name}: ${tries} tries, all with the same ClientRequestToken and body`, problems.length === 0, problems.join('\n'));
  const items = await eventsInDynamo(ddb, identifier);
  report.check(`${name}: DynamoDB holds the 3 events once, sequences 1..3`,
    items.length === 3 && items.map((i) => Number(i.sequence.N)).sort().join(',') === '1,2,3',
    items.map((i) => `${i.id.S} ${i.sequence && i.sequence.N}`).join('\n'));
  const next = await nextSequence(identifier);
  report.check(`${name}: the stream head says 3 (the next append gets 4)`, next === 4, String(next));
}

async function unknownCase(report, ddb, front, { name, identifier, what }) {
  front.mode = { forward: [false], answer: [what] };
  const r = await psql(appendSql(identifier, 3), { timeoutMs: 60000 });
  front.mode = null;
  const err = r.stderr;
  report.check(`${name}: the commit fails with 08007, saying DynamoDB's outcome is unknown`,
    r.code !== 0 && /ERROR:\s+08007: could not learn whether DynamoDB applied an append transaction on table "oc-schemeless-event-store"/.test(err) &&
    /sent 4 times/.test(err) && /DynamoDB may still apply them/.test(err) && /HINT:\s+Read the stream before retrying/.test(err),
    err.trim());
  const items = await eventsInDynamo(ddb, identifier);
  report.check(`${name}: none of its events is in DynamoDB`, items.length === 0, `${items.length} items`);
  const next = await nextSequence(identifier);
  report.check(`${name}: the stream starts at 1 afterwards`, next === 1, String(next));
}

/* The TransactItems of a try, without its token. */
const itemsOf = (entry) => JSON.stringify(JSON.parse(entry.body).TransactItems);

async function cancelCase(report, ddb, front, { code, at, sqlstate, message, identifier, retried }) {
  const name = `cancelled with ${code} on the ${at}${retried ? ' every time' : ''}`;
  const start = front.calls.length;
  front.mode = { forward: [false], answer: [{ cancel: code, at }] };
  const r = await psql(appendSql(identifier, 3), { timeoutMs: 60000 });
  front.mode = null;
  const err = r.stderr;
  const calls = front.calls.slice(start);
  const tokens = new Set(calls.map((c) => c.token));
  const tries = retried ? MAX_RETRIES + 1 : 1;
  report.check(`${name}: ${sqlstate}, ${message}`,
    r.code !== 0 && new RegExp(`ERROR:\\s+${sqlstate}: ${message}`).test(err) &&
    !/expected version/.test(err) &&
    (!retried || new RegExp(`DETAIL:\\s+DynamoDB cancelled the transaction on each of its ${tries} attempts\\. Nothing of this commit was written\\.`).test(err)),
    err.trim());
  if (retried)
    report.check(`${name}: sent ${tries} times (1 + max_retries), each under a token of its own, the same TransactItems`,
      calls.length === tries && tokens.size === tries && calls.every((c) => itemsOf(c) === itemsOf(calls[0])),
      calls.map((c) => c.token).join(', '));
  else
    report.check(`${name}: sent once (a cancellation for this reason is not retried)`,
      calls.length === 1, calls.map((c) => c.token).join(', '));
  const items = await eventsInDynamo(ddb, identifier);
  report.check(`${name}: nothing of it is in DynamoDB`, items.length === 0, `${items.length} items`);
}

/*
 * A commit whose DynamoDB transaction is cancelled for a reason worth retrying, then answered as
 * the script says (by the tries since it started, whatever their tokens): it succeeds, each
 * round under a new token with the same TransactItems, and its events are in DynamoDB once.
 */
async function retriedCase(report, ddb, front, { name, identifier, mode, tries, tokens }) {
  const start = front.calls.length;
  front.mode = { ...mode, byCall: true, calls: 0 };
  const r = await psql(appendSql(identifier, 3), { timeoutMs: 60000 });
  front.mode = null;
  const calls = front.calls.slice(start);
  const distinct = new Set(calls.map((c) => c.token));
  report.check(`${name}: the commit succeeds`, r.code === 0 && !r.timedOut, r.stderr.trim());
  report.check(`${name}: ${tries} tries under ${tokens} tokens, all with the same TransactItems`,
    calls.length === tries && distinct.size === tokens && calls.every((c) => itemsOf(c) === itemsOf(calls[0])),
    calls.map((c) => `${c.token} ${JSON.stringify(c.answer)}`).join('\n'));
  const items = await eventsInDynamo(ddb, identifier);
  report.check(`${name}: DynamoDB holds the 3 events once, sequences 1..3`,
    items.length === 3 && items.map((i) => Number(i.sequence.N)).sort().join(',') === '1,2,3',
    items.map((i) => `${i.id.S} ${i.sequence && i.sequence.N}`).join('\n'));
  const next = await nextSequence(identifier);
  report.check(`${name}: the stream head says 3 (the next append gets 4)`, next === 4, String(next));
}

async function partialHydration(report, front) {
  const identifier = 'hydrate';
  const seed = await psql(`INSERT INTO oc.events (domain, type, identifier, payload)
  SELECT 'oc', 'step', ${lit(identifier)}, jsonb_build_object('k', k) FROM generate_series(1, 30) AS k;`);
  if (!report.check('partial hydration: 30 events written', seed.code === 0, seed.stderr.trim()))
    return;
  front.batch = { hold: 2, leave: 5, done: false, requests: [] };
  const r = await psql(`SELECT count(*), count(DISTINCT payload->>'k'), min(sequence), max(sequence)
  FROM oc.front WHERE domain = 'oc' AND identifier = ${lit(identifier)};`, { timeoutMs: 60000 });
  const b = front.batch;
  front.batch = null;
  report.check('partial hydration: every event comes back, with its payload', r.code === 0 && r.stdout.trim() === '30|30|1|30',
    r.stdout.trim() || r.stderr.trim());
  const trick = b.requests.findIndex((q) => q.trick);
  const later = b.requests.slice(trick + 1);
  report.check('partial hydration: the 2 unprocessed keys sent again, then the 5 missing ones read consistently',
    trick >= 0 && later.length >= 2 && later[0].keys === 2 && !later[0].consistent &&
    later[1].keys === 5 && later[1].consistent, JSON.stringify(b.requests));
}

async function main() {
  const report = new Report();
  for (const name of ['DDB_URL', 'S3_URL'])
    if (!env[name]) {
      report.check(`${name} is set`, false);
      return report.finish();
    }
  const front = await startFront();
  try {
    const setup = await psql(setupSql(front.url), { timeoutMs: 120000 });
    if (!report.check('create the servers, the foreign tables and a fresh store (reset_store)',
      setup.code === 0 && !setup.timedOut, setup.stderr.trim() || `psql exited with ${setup.code}`))
      return report.finish();
    const ddb = makeDynamoClient(env.DDB_URL);

    await resolvedCase(report, ddb, front, {
      name: 'TransactionInProgressException twice, then passed on', identifier: 'inprogress',
      mode: { forward: [false, false, true], answer: ['inprogress', 'inprogress', 'pass'] }, tries: 3,
    });
    await resolvedCase(report, ddb, front, {
      name: 'applied, then TransactionInProgressException on every try', identifier: 'applied-inprogress',
      mode: { forward: [true, false], answer: ['inprogress'] }, tries: MAX_RETRIES + 1,
    });
    await resolvedCase(report, ddb, front, {
      name: 'applied and its answer cut off, then cancelled (the token forgotten)', identifier: 'applied-cancelled',
      mode: { forward: [true, false], answer: ['truncate', { cancel: 'ConditionalCheckFailed', at: 'head' }] }, tries: 2,
    });
    await unknownCase(report, ddb, front, { name: 'HTTP 500 on every try, never applied', identifier: 'unknown-500', what: 'error500' });
    await unknownCase(report, ddb, front, { name: 'the connection dropped on every try, never applied', identifier: 'unknown-drop', what: 'drop' });

    const cancelled = 'DynamoDB cancelled the append to stream "oc::[a-z-]+" of table "oc-schemeless-event-store": ';
    for (const c of [
      { code: 'ThrottlingError', at: 'head', sqlstate: '53000', message: `${cancelled}ThrottlingError`, retried: true },
      { code: 'ThrottlingError', at: 'event', sqlstate: '53000', message: `${cancelled}ThrottlingError`, retried: true },
      { code: 'ProvisionedThroughputExceeded', at: 'event', sqlstate: '53000', message: `${cancelled}ProvisionedThroughputExceeded`, retried: true },
      { code: 'TransactionConflict', at: 'head', sqlstate: '40001', message: `${cancelled}TransactionConflict`, retried: true },
      { code: 'TransactionConflict', at: 'event', sqlstate: '40001', message: `${cancelled}TransactionConflict`, retried: true },
      { code: 'ConditionalCheckFailed', at: 'event', sqlstate: '23505', message: 'duplicate event id "[0-9a-f-]+" in table "oc-schemeless-event-store"' },
    ])
      await cancelCase(report, ddb, front, { ...c, identifier: `cancel-${c.code}-${c.at}`.toLowerCase() });
    await retriedCase(report, ddb, front, {
      name: 'cancelled with TransactionConflict once, then passed on', identifier: 'conflict-then-pass',
      mode: { forward: [false, true], answer: [{ cancel: 'TransactionConflict', at: 'head' }, 'pass'] },
      tries: 2, tokens: 2,
    });
    await retriedCase(report, ddb, front, {
      name: 'applied and its answer cut off, then TransactionConflict, then cancelled by DynamoDB',
      identifier: 'applied-conflict',
      mode: { forward: [true, false, true], answer: ['truncate', { cancel: 'TransactionConflict', at: 'event' }, 'pass'] },
      tries: 3, tokens: 2,
    });
    await partialHydration(report, front);
  } finally {
    await front.close();
  }
  return report.finish();
}

main().then((status) => process.exit(status), (e) => {
  console.log(`not ok - outcomes.js ran to the end\n    ${e.stack}`);
  process.exit(1);
});
