// Self-check of the local test stack (test/stack/stack.js): signed requests pass the SigV4 fronts,
// wrong or stale signatures and unknown keys are refused the way AWS refuses them, S3 answers both
// path-style and virtual-hosted requests, the fault front injects faults at about the configured
// rates (deterministically for a seed) and counts requests, records arrivals and holds requests, the
// hanging front hangs, a connection to the pending front stays pending, and the streams front
// answers DynamoDB Streams requests from its script.
// Needs the stack.env variables in the environment. Run: node test/stack/check.js

'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('http');
const dns = require('dns');
const { execFileSync } = require('child_process');
const { SignatureV4 } = require('@smithy/signature-v4');
const { Sha256 } = require('@aws-crypto/sha256-js');
const {
  DynamoDBClient, CreateTableCommand, PutItemCommand, GetItemCommand, ListTablesCommand, DeleteTableCommand,
  QueryCommand,
} = require('@aws-sdk/client-dynamodb');
const {
  S3Client, CreateBucketCommand, PutObjectCommand, GetObjectCommand, ListObjectsV2Command,
} = require('@aws-sdk/client-s3');

const need = ['DDB_URL', 'DDB_LOCAL_URL', 'DDB_FAULT_URL', 'DDB_HANG_URL', 'DDB_PENDING_URL', 'DDB_STREAMS_URL', 'S3_URL', 'S3_VHOST_URL',
  'AWS_TEST_ACCESS_KEY_ID', 'AWS_TEST_SECRET_ACCESS_KEY', 'AWS_TEST_REGION'];
for (const n of need) {
  if (!process.env[n]) {
    process.stderr.write(`check.js: ${n} is not set (source the stack's stack.env first)\n`);
    process.exit(2);
  }
}
const E = process.env;
const REGION = E.AWS_TEST_REGION;
const GOOD = { accessKeyId: E.AWS_TEST_ACCESS_KEY_ID, secretAccessKey: E.AWS_TEST_SECRET_ACCESS_KEY };
const SESSION = { accessKeyId: 'ASIATESTSESSION', secretAccessKey: 'sessionsecret', sessionToken: 'sessiontoken' };
const TABLE = `stackcheck-${process.pid}`;

function ddbClient(endpoint, credentials) {
  return new DynamoDBClient({ endpoint, region: REGION, credentials, maxAttempts: 1 });
}

// *.localhost resolves to loopback (as curl does it), whatever the system resolver says.
function localhostLookup(hostname, options, cb) {
  if (/(^|\.)localhost$/i.test(hostname)) {
    if (options && options.all) return cb(null, [{ address: '127.0.0.1', family: 4 }]);
    return cb(null, '127.0.0.1', 4);
  }
  return dns.lookup(hostname, options, cb);
}

function s3Client(endpoint, forcePathStyle, credentials) {
  return new S3Client({
    endpoint, region: REGION, credentials: credentials || GOOD, forcePathStyle, maxAttempts: 1,
    requestHandler: { httpAgent: new http.Agent({ lookup: localhostLookup }) },
  });
}

// Signs a DynamoDB JSON request by hand, so a test controls every byte and every retry.
async function signDdb(url, target, payload, { credentials = GOOD, date, api = 'DynamoDB_20120810' } = {}) {
  const u = new URL(url);
  const body = typeof payload === 'string' ? payload : JSON.stringify(payload);
  const signer = new SignatureV4({ credentials, region: REGION, service: 'dynamodb', sha256: Sha256 });
  return signer.sign({
    method: 'POST', protocol: 'http:', hostname: u.hostname, port: Number(u.port), path: '/', query: {},
    headers: {
      host: u.host,
      'content-type': 'application/x-amz-json-1.0',
      'x-amz-target': `${api}.${target}`,
    },
    body,
  }, { signingDate: date });
}

// Sends a (signed) request once; resolves { status, headers, body } or { error } for a broken connection.
function send(url, req, { timeoutMs = 5000, bodyOverride } = {}) {
  return new Promise((resolve) => {
    const u = new URL(url);
    const body = bodyOverride !== undefined ? bodyOverride : req.body;
    const r = http.request({
      host: u.hostname, port: u.port, method: req.method, path: req.path, headers: req.headers,
      agent: false,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({
        status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'),
      }));
      res.on('error', (e) => resolve({ error: e }));
    });
    r.setTimeout(timeoutMs, () => { resolve({ error: new Error('timeout'), timedOut: true }); r.destroy(); });
    r.on('error', (e) => resolve({ error: e }));
    r.end(body);
  });
}

function errType(res) {
  return JSON.parse(res.body).__type;
}

async function getFaults() {
  const r = await send(E.DDB_FAULT_URL, { method: 'GET', path: '/__faults', headers: {} });
  assert.equal(r.status, 200);
  return JSON.parse(r.body);
}

async function setFaults(cfg) {
  const body = JSON.stringify(cfg);
  const r = await send(E.DDB_FAULT_URL, {
    method: 'POST', path: '/__faults', headers: { 'content-type': 'application/json' }, body,
  });
  assert.equal(r.status, 200, r.body);
  return JSON.parse(r.body);
}

test('DynamoDB front: signed requests pass and reach DynamoDB Local', async () => {
  const c = ddbClient(E.DDB_URL, GOOD);
  await c.send(new CreateTableCommand({
    TableName: TABLE,
    KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
    AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
    BillingMode: 'PAY_PER_REQUEST',
  }));
  await c.send(new PutItemCommand({ TableName: TABLE, Item: { id: { S: 'a' }, v: { N: '1' } } }));
  const got = await c.send(new GetItemCommand({ TableName: TABLE, Key: { id: { S: 'a' } } }));
  assert.deepEqual(got.Item, { id: { S: 'a' }, v: { N: '1' } });
  // The same table is visible directly on DynamoDB Local (one shared database).
  const direct = ddbClient(E.DDB_LOCAL_URL, GOOD);
  const tables = await direct.send(new ListTablesCommand({}));
  assert.ok(tables.TableNames.includes(TABLE));
  // Any region named in the credential scope is accepted.
  const other = new DynamoDBClient({ endpoint: E.DDB_URL, region: 'eu-west-3', credentials: GOOD, maxAttempts: 1 });
  await other.send(new ListTablesCommand({}));
  const raw = await send(E.DDB_URL, await signDdb(E.DDB_URL, 'ListTables', {}));
  assert.equal(raw.status, 200);
  assert.equal(raw.headers['content-type'], 'application/x-amz-json-1.0');
});

test('DynamoDB front: the Streams API (DynamoDBStreams_20120810, signed for dynamodb) passes, checked as the rest', async () => {
  const api = 'DynamoDBStreams_20120810';
  const ok = await send(E.DDB_URL, await signDdb(E.DDB_URL, 'ListStreams', {}, { api }));
  assert.equal(ok.status, 200, ok.body);
  assert.ok(Array.isArray(JSON.parse(ok.body).Streams), ok.body);
  const bad = await send(E.DDB_URL, await signDdb(E.DDB_URL, 'ListStreams', {},
    { api, credentials: { ...GOOD, secretAccessKey: 'wrong' } }));
  assert.equal(bad.status, 400);
  assert.match(errType(bad), /InvalidSignatureException/);
});

test('DynamoDB front: session credentials need their token', async () => {
  await ddbClient(E.DDB_URL, SESSION).send(new ListTablesCommand({}));
  const noToken = { accessKeyId: SESSION.accessKeyId, secretAccessKey: SESSION.secretAccessKey };
  await assert.rejects(ddbClient(E.DDB_URL, noToken).send(new ListTablesCommand({})),
    (e) => e.name === 'UnrecognizedClientException' && e.$metadata.httpStatusCode === 400);
  const wrongToken = { ...SESSION, sessionToken: 'other' };
  await assert.rejects(ddbClient(E.DDB_URL, wrongToken).send(new ListTablesCommand({})),
    (e) => e.name === 'UnrecognizedClientException');
});

test('DynamoDB front: wrong secret, unknown key, tampering, stale date, no auth are refused', async () => {
  await assert.rejects(
    ddbClient(E.DDB_URL, { ...GOOD, secretAccessKey: 'wrong' }).send(new ListTablesCommand({})),
    (e) => e.name === 'InvalidSignatureException' && e.$metadata.httpStatusCode === 400 &&
      /does not match the signature you provided/.test(e.message));
  await assert.rejects(
    ddbClient(E.DDB_URL, { accessKeyId: 'AKIDUNKNOWN', secretAccessKey: 'x' }).send(new ListTablesCommand({})),
    (e) => e.name === 'UnrecognizedClientException' &&
      e.message === 'The security token included in the request is invalid.');

  const signed = await signDdb(E.DDB_URL, 'ListTables', { Limit: 5 });
  const tampered = await send(E.DDB_URL, signed, { bodyOverride: JSON.stringify({ Limit: 6 }) });
  assert.equal(tampered.status, 400);
  assert.equal(errType(tampered), 'com.amazon.coral.service#InvalidSignatureException');
  assert.equal(tampered.headers['content-type'], 'application/x-amz-json-1.0');

  const hostChanged = await send(E.DDB_URL, { ...signed, headers: { ...signed.headers, host: 'example.invalid' } });
  assert.equal(errType(hostChanged), 'com.amazon.coral.service#InvalidSignatureException');

  const stale = await signDdb(E.DDB_URL, 'ListTables', {}, { date: new Date(Date.now() - 20 * 60 * 1000) });
  const staleRes = await send(E.DDB_URL, stale);
  assert.equal(staleRes.status, 400);
  assert.equal(errType(staleRes), 'com.amazon.coral.service#InvalidSignatureException');
  assert.match(JSON.parse(staleRes.body).message, /Signature expired/);

  const future = await signDdb(E.DDB_URL, 'ListTables', {}, { date: new Date(Date.now() + 20 * 60 * 1000) });
  assert.match(JSON.parse((await send(E.DDB_URL, future)).body).message, /not yet current/);

  const noDate = { ...signed, headers: { ...signed.headers } };
  delete noDate.headers['x-amz-date'];
  const noDateRes = await send(E.DDB_URL, noDate);
  assert.equal(noDateRes.status, 400);
  assert.match(errType(noDateRes), /IncompleteSignatureException/);

  const noAuth = { ...signed, headers: { ...signed.headers } };
  delete noAuth.headers.authorization;
  const noAuthRes = await send(E.DDB_URL, noAuth);
  assert.equal(noAuthRes.status, 400);
  assert.equal(errType(noAuthRes), 'com.amazon.coral.service#MissingAuthenticationTokenException');
});

test('S3 front: path-style and virtual-hosted requests, signatures verified', async () => {
  const bucket = `stackcheck-${process.pid}`;
  const pathStyle = s3Client(E.S3_URL, true);
  const vhost = s3Client(E.S3_VHOST_URL, false);
  await pathStyle.send(new CreateBucketCommand({ Bucket: bucket }));
  const json = 'application/json';
  const acl = 'private';
  await pathStyle.send(new PutObjectCommand({ Bucket: bucket, Key: 'events/a.json', Body: '{"a":1}', ContentType: json, ACL: acl }));
  await vhost.send(new PutObjectCommand({ Bucket: bucket, Key: 'events/b c.json', Body: '{"b":2}', ContentType: json, ACL: acl }));
  // an upload must say it is JSON and private, as the Node adapter's do
  for (const [client, type, a] of [[pathStyle, undefined, acl], [vhost, 'application/x-www-form-urlencoded', acl],
    [pathStyle, json, undefined], [vhost, json, 'public-read']]) {
    await assert.rejects(
      client.send(new PutObjectCommand({ Bucket: bucket, Key: 'events/c.json', Body: '{"c":3}', ContentType: type, ACL: a })),
      (e) => e.name === 'InvalidArgument' && e.$metadata.httpStatusCode === 400);
  }
  const a = await vhost.send(new GetObjectCommand({ Bucket: bucket, Key: 'events/a.json' }));
  assert.equal(await a.Body.transformToString(), '{"a":1}');
  const b = await pathStyle.send(new GetObjectCommand({ Bucket: bucket, Key: 'events/b c.json' }));
  assert.equal(await b.Body.transformToString(), '{"b":2}');
  const list = await vhost.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'events/' }));
  assert.deepEqual(list.Contents.map((o) => o.Key).sort(), ['events/a.json', 'events/b c.json']);

  await s3Client(E.S3_URL, true, SESSION).send(new GetObjectCommand({ Bucket: bucket, Key: 'events/a.json' }));
  for (const [url, style] of [[E.S3_URL, true], [E.S3_VHOST_URL, false]]) {
    await assert.rejects(
      s3Client(url, style, { ...GOOD, secretAccessKey: 'wrong' }).send(new GetObjectCommand({ Bucket: bucket, Key: 'events/a.json' })),
      (e) => e.name === 'SignatureDoesNotMatch' && e.$metadata.httpStatusCode === 403);
  }
  await assert.rejects(
    s3Client(E.S3_URL, true, { accessKeyId: 'AKIDUNKNOWN', secretAccessKey: 'x' })
      .send(new GetObjectCommand({ Bucket: bucket, Key: 'events/a.json' })),
    (e) => e.name === 'InvalidAccessKeyId');
  // Unsigned requests are refused, as on a private bucket.
  const anon = await send(E.S3_URL, { method: 'GET', path: `/${bucket}/events/a.json`, headers: {} });
  assert.equal(anon.status, 403);

  // curl resolves <bucket>.localhost itself and signs with its own SigV4 code (an independent
  // signer). S3 requires x-amz-content-sha256 on SigV4 requests; curl 7.88 does not add it itself.
  const port = new URL(E.S3_VHOST_URL).port;
  const curlS3 = (url, extra = []) => execFileSync('curl', ['-sS', '--fail-with-body', '--aws-sigv4',
    `aws:amz:${REGION}:s3`, '--user', `${GOOD.accessKeyId}:${GOOD.secretAccessKey}`, ...extra, url],
  { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const emptyHash = ['-H', 'x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'];
  assert.equal(curlS3(`http://${bucket}.localhost:${port}/events/a.json`, emptyHash), '{"a":1}');
  assert.equal(curlS3(`${E.S3_URL}/${bucket}/events/a.json`, emptyHash), '{"a":1}');
  assert.throws(() => curlS3(`${E.S3_URL}/${bucket}/events/a.json`), /400/);
});

test('DynamoDB front: accepts an independent signer (curl --aws-sigv4)', () => {
  const out = execFileSync('curl', ['-sS', '--fail-with-body', '--aws-sigv4', `aws:amz:${REGION}:dynamodb`,
    '--user', `${GOOD.accessKeyId}:${GOOD.secretAccessKey}`,
    '-H', 'Content-Type: application/x-amz-json-1.0', '-H', 'X-Amz-Target: DynamoDB_20120810.ListTables',
    '--data', '{}', E.DDB_URL], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  assert.ok(Array.isArray(JSON.parse(out).TableNames));
  assert.throws(() => execFileSync('curl', ['-sS', '--fail-with-body', '--aws-sigv4', `aws:amz:${REGION}:dynamodb`,
    '--user', `${GOOD.accessKeyId}:wrong`,
    '-H', 'Content-Type: application/x-amz-json-1.0', '-H', 'X-Amz-Target: DynamoDB_20120810.ListTables',
    '--data', '{}', E.DDB_URL], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }),
  (e) => /InvalidSignatureException/.test(e.stdout));
});

test('fault front: rates, determinism, counters, at most 3 faults in a row', async () => {
  // Pass-through by default after a reset: counts requests by target.
  await setFaults({});
  const okRes = await send(E.DDB_FAULT_URL, await signDdb(E.DDB_FAULT_URL, 'ListTables', {}));
  assert.equal(okRes.status, 200);
  let f = await getFaults();
  assert.equal(f.requests, 1);
  assert.equal(f.forwarded, 1);
  assert.equal(f.byTarget['DynamoDB_20120810.ListTables'], 1);

  // Signature checks still apply behind the fault front.
  const bad = await send(E.DDB_FAULT_URL,
    await signDdb(E.DDB_FAULT_URL, 'ListTables', {}, { credentials: { ...GOOD, secretAccessKey: 'wrong' } }));
  assert.equal(errType(bad), 'com.amazon.coral.service#InvalidSignatureException');

  const rates = { throttle: 0.2, error5xx: 0.1, drop: 0.05 };
  async function run(seed) {
    await setFaults({ ...rates, seed });
    const seen = [];
    const N = 400;
    for (let i = 0; i < N; i++) {
      const req = await signDdb(E.DDB_FAULT_URL, 'GetItem', { TableName: TABLE, Key: { id: { S: `k${i}` } } });
      const r = await send(E.DDB_FAULT_URL, req);
      if (r.error) seen.push('drop');
      else if (r.status === 200) seen.push('ok');
      else {
        const t = errType(r);
        assert.equal(r.headers['content-type'], 'application/x-amz-json-1.0');
        if (r.status === 400 && /ProvisionedThroughputExceededException|ThrottlingException/.test(t)) seen.push('throttle');
        else if ((r.status === 500 && /InternalServerError/.test(t)) || (r.status === 503 && /ServiceUnavailable/.test(t))) seen.push('error5xx');
        else assert.fail(`unexpected answer ${r.status} ${r.body}`);
      }
    }
    return { seen, counters: await getFaults(), N };
  }
  const one = await run(42);
  const tally = (k) => one.seen.filter((s) => s === k).length;
  assert.equal(one.counters.requests, one.N);
  assert.equal(one.counters.byTarget['DynamoDB_20120810.GetItem'], one.N);
  for (const k of ['throttle', 'error5xx', 'drop']) {
    assert.equal(one.counters[k], tally(k), `${k} counter matches what the client saw`);
    const expected = rates[k] * one.N;
    const sd = Math.sqrt(one.N * rates[k] * (1 - rates[k]));
    assert.ok(Math.abs(tally(k) - expected) <= 4 * sd, `${k}: ${tally(k)} not near ${expected}`);
  }
  assert.equal(one.counters.forwarded, tally('ok'));
  // Same seed, same requests: the same faults.
  const two = await run(42);
  assert.deepEqual(two.seen, one.seen);
  const three = await run(7);
  assert.notDeepEqual(three.seen, one.seen);

  // Everything faulted: the same request fails 3 times, the 4th passes; a new request fails again.
  await setFaults({ throttle: 0.5, error5xx: 0.5, seed: 1 });
  const req = await signDdb(E.DDB_FAULT_URL, 'ListTables', { Limit: 1 });
  const statuses = [];
  for (let i = 0; i < 5; i++) statuses.push((await send(E.DDB_FAULT_URL, req)).status);
  assert.ok(statuses.slice(0, 3).every((s) => s !== 200), `first three faulted: ${statuses}`);
  assert.equal(statuses[3], 200);
  assert.notEqual(statuses[4], 200);
  await setFaults({ drop: 1, seed: 3 });
  const dropped = await send(E.DDB_FAULT_URL, await signDdb(E.DDB_FAULT_URL, 'ListTables', {}));
  assert.ok(dropped.error && !dropped.timedOut, 'connection dropped without an answer');

  const badCfg = await send(E.DDB_FAULT_URL, {
    method: 'POST', path: '/__faults', headers: {}, body: '{"throttle":2}',
  });
  assert.equal(badCfg.status, 400);
  await setFaults({});
  f = await getFaults();
  assert.equal(f.requests, 0);
});

test('fault front: a lagging index hides new items from index Queries for indexLagMs', async () => {
  const c = ddbClient(E.DDB_FAULT_URL, GOOD);
  const table = `${TABLE}-lag`;
  await c.send(new CreateTableCommand({
    TableName: table,
    KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
    AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }, { AttributeName: 'b', AttributeType: 'S' }],
    GlobalSecondaryIndexes: [{ IndexName: 'lagidx', KeySchema: [{ AttributeName: 'b', KeyType: 'HASH' }],
                               Projection: { ProjectionType: 'KEYS_ONLY' } }],
    BillingMode: 'PAY_PER_REQUEST',
  }));
  await c.send(new PutItemCommand({ TableName: table, Item: { id: { S: 'x' }, b: { S: 'B' } } }));
  await setFaults({ indexLagMs: 1000 });
  const onIndex = () => c.send(new QueryCommand({
    TableName: table, IndexName: 'lagidx', KeyConditionExpression: 'b = :b', ExpressionAttributeValues: { ':b': { S: 'B' } },
  }));
  const first = await onIndex();
  assert.equal(first.Count, 0, 'hidden when first seen');
  const onKey = await c.send(new QueryCommand({
    TableName: table, KeyConditionExpression: 'id = :id', ExpressionAttributeValues: { ':id': { S: 'x' } },
  }));
  assert.equal(onKey.Count, 1, 'a Query on the key sees it at once');
  await new Promise((r) => setTimeout(r, 1100));
  const later = await onIndex();
  assert.equal(later.Count, 1, 'shown once indexLagMs has passed');
  assert.equal(later.Items[0].id.S, 'x');
  const f = await getFaults();
  assert.equal(f.hidden, 1);
  assert.equal(f.indexLagMs, 1000);
  const bad = await send(E.DDB_FAULT_URL, { method: 'POST', path: '/__faults', headers: {}, body: '{"indexLagMs":-1}' });
  assert.equal(bad.status, 400);
  await setFaults({});
  await c.send(new DeleteTableCommand({ TableName: table }));
});

test('fault front: BatchGetItem answered in part (UnprocessedKeys), requests recorded', async () => {
  const c = ddbClient(E.DDB_URL, GOOD);
  for (let i = 0; i < 10; i++)
    await c.send(new PutItemCommand({ TableName: TABLE, Item: { id: { S: `u${i}` }, v: { N: String(i) } } }));
  const keys = Array.from({ length: 10 }, (_, i) => ({ id: { S: `u${i}` } }));
  await setFaults({ unprocessed: 1, unprocessedShare: 0.5, record: true, seed: 5 });
  const payload = { RequestItems: { [TABLE]: { Keys: keys, ConsistentRead: true } } };
  const r = await send(E.DDB_FAULT_URL, await signDdb(E.DDB_FAULT_URL, 'BatchGetItem', payload));
  assert.equal(r.status, 200, r.body);
  const out = JSON.parse(r.body);
  const got = out.Responses[TABLE].map((i) => i.id.S);
  const held = out.UnprocessedKeys[TABLE].Keys.map((k) => k.id.S);
  assert.ok(got.length > 0 && held.length > 0, `answered ${got.length}, held back ${held.length}`);
  assert.deepEqual([...got, ...held].sort(), keys.map((k) => k.id.S).sort(), 'every key either answered or held back');
  assert.equal(out.UnprocessedKeys[TABLE].ConsistentRead, true, 'the request parameters come back with the keys');
  const f = await getFaults();
  assert.equal(f.unprocessed, 1);
  assert.equal(f.unprocessedKeys, held.length);
  assert.equal(f.rates.unprocessed, 1);
  // the same seed holds back the same keys
  await setFaults({ unprocessed: 1, unprocessedShare: 0.5, record: true, seed: 5 });
  const again = JSON.parse((await send(E.DDB_FAULT_URL, await signDdb(E.DDB_FAULT_URL, 'BatchGetItem', payload))).body);
  assert.deepEqual(again.UnprocessedKeys[TABLE].Keys.map((k) => k.id.S), held);
  const rec = await send(E.DDB_FAULT_URL, { method: 'GET', path: '/__faults/requests', headers: {} });
  const recorded = JSON.parse(rec.body);
  assert.equal(recorded.length, 1);
  assert.equal(recorded[0].target, 'DynamoDB_20120810.BatchGetItem');
  assert.equal(recorded[0].body.RequestItems[TABLE].Keys.length, 10);
  await setFaults({});
  assert.deepEqual(JSON.parse((await send(E.DDB_FAULT_URL, { method: 'GET', path: '/__faults/requests', headers: {} })).body), []);
});

test('fault front: arrivals recorded, faulted or not; holds until held, until answered', async () => {
  await setFaults({ throttle: 1, maxConsecutive: 1, record: true, seed: 3 });
  const list = async () => send(E.DDB_FAULT_URL, await signDdb(E.DDB_FAULT_URL, 'ListTables', {}));
  assert.equal((await list()).status, 400);
  assert.equal((await list()).status, 200);
  const arrivals = JSON.parse((await send(E.DDB_FAULT_URL, { method: 'GET', path: '/__faults/arrivals', headers: {} })).body);
  assert.deepEqual(arrivals.map((a) => [a.target, a.fault]),
    [['DynamoDB_20120810.ListTables', 'throttle'], ['DynamoDB_20120810.ListTables', 'pass']]);
  assert.ok(arrivals[1].at >= arrivals[0].at && arrivals[0].at >= 0);
  // two ListTables held until both wait
  await setFaults({ hold: { target: 'ListTables', untilHeld: 2 } });
  const both = await Promise.all([list(), list()]);
  assert.deepEqual(both.map((r) => r.status), [200, 200]);
  let f = await getFaults();
  assert.equal(f.holdReleased, 'held');
  assert.equal(f.maxHeld, 2);
  assert.equal(f.maxInFlight, 2);
  // a ListTables held until a DescribeTable has been answered
  await setFaults({ hold: { target: 'ListTables', untilAnswered: 'DescribeTable' } });
  const held = list();
  const described = await send(E.DDB_FAULT_URL, await signDdb(E.DDB_FAULT_URL, 'DescribeTable', { TableName: TABLE }));
  assert.equal(described.status, 200);
  assert.equal((await held).status, 200);
  f = await getFaults();
  assert.equal(f.holdReleased, 'answered');
  assert.equal(f.held, 1);
  const bad = await send(E.DDB_FAULT_URL, { method: 'POST', path: '/__faults', headers: {}, body: '{"hold":{"target":"Query"}}' });
  assert.equal(bad.status, 400);
  await setFaults({});
});

test('pending front: a connection to it does not complete', async () => {
  const { port } = new URL(E.DDB_PENDING_URL);
  const connected = await new Promise((resolve) => {
    const sock = require('net').connect(Number(port), '127.0.0.1');
    const timer = setTimeout(() => { sock.destroy(); resolve(false); }, 1500);
    sock.on('connect', () => { clearTimeout(timer); sock.destroy(); resolve(true); });
    sock.on('error', () => { clearTimeout(timer); resolve(true); });
  });
  assert.equal(connected, false, 'the connect neither completed nor failed within 1.5 s');
});

test('hang front: accepts the request and never answers', async () => {
  const req = await signDdb(E.DDB_HANG_URL, 'ListTables', {});
  const r = await send(E.DDB_HANG_URL, req, { timeoutMs: 1500 });
  assert.ok(r.timedOut, 'no answer before the timeout');
});

test('streams front: scripted DescribeStream pages, iterators, records, expiry, trimming, faults; the rest relayed', async () => {
  const U = E.DDB_STREAMS_URL;
  const control = async (method, cfg) => {
    const r = await send(U, { method, path: '/__streams', headers: { 'content-type': 'application/json' },
                              body: cfg === undefined ? '' : JSON.stringify(cfg) });
    return { status: r.status, body: JSON.parse(r.body) };
  };
  const call = async (target, payload) => {
    const r = await send(U, await signDdb(U, target, payload, { api: 'DynamoDBStreams_20120810' }));
    return { status: r.status, body: JSON.parse(r.body) };
  };
  const arn = 'arn:aws:dynamodb:us-east-1:000000000000:table/check/stream/2024-01-01T00:00:00.000';
  const keys = (n) => ({ Keys: { id: { S: `EventID#${n}` }, created: { S: '2024-01-15T00:00:00.000Z' } } });
  assert.equal((await control('DELETE')).status, 200);
  // unsigned: refused as on the other fronts; no script: relayed to DynamoDB Local
  const unsigned = await send(U, { method: 'POST', path: '/', headers: { 'x-amz-target': 'DynamoDB_20120810.ListTables' }, body: '{}' });
  assert.equal(unsigned.status, 400);
  assert.match(errType(unsigned), /MissingAuthenticationToken/);
  assert.equal((await send(U, await signDdb(U, 'ListTables', {}))).status, 200);
  assert.equal((await control('POST', { streamArn: arn, shards: 'no' })).status, 400);
  assert.equal((await control('POST', {
    streamArn: arn, describePageSize: 1, pageSize: 2,
    shards: [{ id: 'p', closed: true, trimmed: 1, records: [keys(1), keys(2), keys(3)] },
             { id: 'c', parent: 'p', records: [keys(4)] }],
    faults: [{ operation: 'GetRecords', shard: 'c', skip: 1, error: 'LimitExceededException' }],
  })).status, 200);
  // DescribeStream: one shard a page, LastEvaluatedShardId to go on from
  let d = await call('DescribeStream', { StreamArn: arn });
  assert.deepEqual(d.body.StreamDescription.Shards.map((x) => x.ShardId), ['p']);
  assert.ok(d.body.StreamDescription.Shards[0].SequenceNumberRange.EndingSequenceNumber, 'p is closed');
  assert.equal(d.body.StreamDescription.LastEvaluatedShardId, 'p');
  d = await call('DescribeStream', { StreamArn: arn, ExclusiveStartShardId: 'p' });
  assert.deepEqual(d.body.StreamDescription.Shards.map((x) => [x.ShardId, x.ParentShardId]), [['c', 'p']]);
  assert.equal(d.body.StreamDescription.LastEvaluatedShardId, undefined);
  assert.equal((await call('DescribeStream', { StreamArn: `${arn}x` })).body.__type.split('#')[1], 'ResourceNotFoundException');
  // the closed parent from its trim horizon: records 2 and 3, then no next iterator
  let it = await call('GetShardIterator', { StreamArn: arn, ShardId: 'p', ShardIteratorType: 'TRIM_HORIZON' });
  let page = await call('GetRecords', { ShardIterator: it.body.ShardIterator });
  assert.deepEqual(page.body.Records.map((x) => x.dynamodb.Keys.id.S), ['EventID#2', 'EventID#3']);
  assert.equal(page.body.Records[0].eventName, 'INSERT');
  assert.equal(page.body.NextShardIterator, undefined, 'the closed shard was read to its end');
  const [second, third] = page.body.Records.map((x) => x.dynamodb.SequenceNumber);
  assert.ok(BigInt(third) > BigInt(second));
  it = await call('GetShardIterator', { StreamArn: arn, ShardId: 'p', ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: second });
  assert.deepEqual((await call('GetRecords', { ShardIterator: it.body.ShardIterator })).body.Records.map((x) => x.dynamodb.SequenceNumber), [third]);
  const before = String(BigInt(second) - 1n);
  assert.equal((await call('GetShardIterator', { StreamArn: arn, ShardId: 'p', ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: before })).body.__type.split('#')[1],
    'TrimmedDataAccessException');
  // the open child: a next iterator even with nothing more; the scripted fault on its second read
  it = await call('GetShardIterator', { StreamArn: arn, ShardId: 'c', ShardIteratorType: 'TRIM_HORIZON' });
  page = await call('GetRecords', { ShardIterator: it.body.ShardIterator });
  assert.equal(page.body.Records.length, 1);
  assert.ok(BigInt(page.body.Records[0].dynamodb.SequenceNumber) > BigInt(third), 'a child\'s records come after its parent\'s');
  const failed = await call('GetRecords', { ShardIterator: page.body.NextShardIterator });
  assert.equal(failed.status, 400);
  assert.equal(failed.body.__type.split('#')[1], 'LimitExceededException');
  assert.deepEqual((await call('GetRecords', { ShardIterator: page.body.NextShardIterator })).body.Records, []);
  // every iterator handed out so far expires
  assert.equal((await control('POST', { streamArn: arn, shards: [{ id: 'c', records: [keys(4)] }], expireIterators: true })).status, 200);
  assert.equal((await call('GetRecords', { ShardIterator: page.body.NextShardIterator })).body.__type.split('#')[1], 'ExpiredIteratorException');
  assert.equal((await call('GetShardIterator', { StreamArn: arn, ShardId: 'p', ShardIteratorType: 'LATEST' })).body.__type.split('#')[1],
    'ResourceNotFoundException', 'a shard gone from the script');
  const { body: state } = await control('GET');
  assert.deepEqual(state.log.filter((x) => x.error).map((x) => x.error), ['ResourceNotFoundException',
    'TrimmedDataAccessException', 'LimitExceededException', 'ExpiredIteratorException', 'ResourceNotFoundException']);
  assert.equal((await control('DELETE')).status, 200);
});

test('cleanup', async () => {
  await ddbClient(E.DDB_URL, GOOD).send(new DeleteTableCommand({ TableName: TABLE }));
});
