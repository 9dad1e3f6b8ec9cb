// The Node side of the admin regression test (sql/admin.sql), which runs it with COPY ... FROM
// PROGRAM: it prepares the admin-* stores through the published Node adapter and raw AWS calls,
// and appends to a store through the adapter to show that a table the extension created works
// for it. It touches only tables and buckets whose names start with "admin-".
//
// Usage:
//   node test/interop/admin-store.js prepare <ddb_url> <s3_url>
//       removes every admin-* table and bucket; creates the admin-node- store with the adapter's
//       own init() and appends five events to it; creates three tables of another shape
//   node test/interop/admin-store.js append <ddb_url> <s3_url> <prefix> <bucket>
//       appends two events to the stream account/42 of <prefix>schemeless-event-store through the
//       adapter and prints the version the adapter then reads from the stream head
//
// Prints one line per step on stdout (the test shows them); everything else goes to stderr.
'use strict';

const {
  ListTablesCommand, DeleteTableCommand, DescribeTableCommand, CreateTableCommand,
} = require('@aws-sdk/client-dynamodb');
const { ListBucketsCommand, DeleteBucketCommand } = require('@aws-sdk/client-s3');
const { makeRepo, makeDynamoClient, makeS3Client, emptyBucket } = require('./adapter');

const PREFIX = 'admin-';
const TIMEOUT_MS = 60000;
const SUFFIX = 'schemeless-event-store';

// Nothing but the result lines may reach stdout: COPY reads them as rows.
console.log = console.info = console.debug = (...a) => process.stderr.write(a.join(' ') + '\n');
const say = (line) => process.stdout.write(line + '\n');

const timer = setTimeout(() => {
  process.stderr.write(`admin-store: no result within ${TIMEOUT_MS} ms\n`);
  process.exit(2);
}, TIMEOUT_MS);
timer.unref();

/* Fixed events, so that every run stores the same store. */
function event(n, domain, identifier, type, created) {
  const e = {
    id: `00000000-0000-4000-a000-0000000000${String(n).padStart(2, '0')}`,
    domain, type, created: new Date(created), payload: { n },
  };
  if (identifier !== undefined)
    e.identifier = identifier;
  return e;
}

async function waitGone(ddb, table) {
  for (let i = 0; i < 200; i++) {
    try {
      await ddb.send(new DescribeTableCommand({ TableName: table }));
    } catch (e) {
      if (e.name === 'ResourceNotFoundException')
        return;
      throw e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`table ${table} was not deleted`);
}

async function removeAdminStores(ddb, s3) {
  let start;
  const tables = [];
  do {
    const page = await ddb.send(new ListTablesCommand({ ExclusiveStartTableName: start }));
    tables.push(...page.TableNames.filter((t) => t.startsWith(PREFIX)));
    start = page.LastEvaluatedTableName;
  } while (start);
  for (const t of tables) {
    await ddb.send(new DeleteTableCommand({ TableName: t }));
    await waitGone(ddb, t);
  }
  const buckets = ((await s3.send(new ListBucketsCommand({}))).Buckets || [])
    .map((b) => b.Name).filter((b) => b.startsWith(PREFIX));
  for (const b of buckets) {
    await emptyBucket(s3, b);
    await s3.send(new DeleteBucketCommand({ Bucket: b }));
  }
}

const S = (name) => ({ AttributeName: name, AttributeType: 'S' });
const key = (hash, range) => [{ AttributeName: hash, KeyType: 'HASH' }]
  .concat(range ? [{ AttributeName: range, KeyType: 'RANGE' }] : []);
const keysOnly = { ProjectionType: 'KEYS_ONLY' };
const throughput = { ReadCapacityUnits: 5, WriteCapacityUnits: 5 };

async function prepare(ddbUrl, s3Url) {
  const ddb = makeDynamoClient(ddbUrl);
  const s3 = makeS3Client(s3Url);
  await removeAdminStores(ddb, s3);
  say('removed the admin-* tables and buckets');

  // The adapter creates its table and bucket with its own init(), then appends.
  const repo = await makeRepo({ prefix: 'admin-node-', bucket: 'admin-node-events', ddbUrl, s3Url });
  const events = [
    event(1, 'account', '42', 'opened', '2024-01-05T10:00:00.000Z'),
    event(2, 'account', '42', 'deposited', '2024-01-06T10:00:00.000Z'),
    event(3, 'account', '7', 'opened', '2024-01-07T10:00:00.000Z'),
    event(4, 'system', undefined, 'booted', '2024-02-01T00:00:00.000Z'),
    event(5, 'account', '42', 'withdrawn', '2024-02-02T10:00:00.000Z'),
  ];
  for (const e of events)
    await repo.storeEvents([e]);
  say(`adapter stored ${events.length} events in admin-node-${SUFFIX}`);

  // A table keyed on id alone, without indexes.
  await ddb.send(new CreateTableCommand({
    TableName: `admin-hashonly-${SUFFIX}`,
    AttributeDefinitions: [S('id')],
    KeySchema: key('id'),
    ProvisionedThroughput: throughput,
  }));
  // The right key names, but created a number, timeBucketIndex projecting everything and
  // causationIndex without its sort key.
  await ddb.send(new CreateTableCommand({
    TableName: `admin-wrongidx-${SUFFIX}`,
    AttributeDefinitions: [S('id'), { AttributeName: 'created', AttributeType: 'N' }, S('timeBucket'), S('causationId')],
    KeySchema: key('id', 'created'),
    GlobalSecondaryIndexes: [
      { IndexName: 'timeBucketIndex', KeySchema: key('timeBucket', 'created'), Projection: { ProjectionType: 'ALL' }, ProvisionedThroughput: throughput },
      { IndexName: 'causationIndex', KeySchema: key('causationId'), Projection: { ProjectionType: 'KEYS_ONLY' }, ProvisionedThroughput: throughput },
    ],
    ProvisionedThroughput: throughput,
  }));
  // The layout, plus a streamIndex keyed on identifier alone, sequence a string, projecting
  // everything.
  await ddb.send(new CreateTableCommand({
    TableName: `admin-wrongstream-${SUFFIX}`,
    AttributeDefinitions: [S('id'), S('timeBucket'), S('causationId'), S('created'), S('identifier'), S('sequence')],
    KeySchema: key('id', 'created'),
    GlobalSecondaryIndexes: [
      { IndexName: 'timeBucketIndex', KeySchema: key('timeBucket', 'created'), Projection: keysOnly, ProvisionedThroughput: throughput },
      { IndexName: 'causationIndex', KeySchema: key('causationId', 'created'), Projection: keysOnly, ProvisionedThroughput: throughput },
      { IndexName: 'streamIndex', KeySchema: key('identifier', 'sequence'), Projection: { ProjectionType: 'ALL' }, ProvisionedThroughput: throughput },
    ],
    ProvisionedThroughput: throughput,
  }));
  say('created three tables of another shape');
}

async function append(ddbUrl, s3Url, prefix, bucket) {
  const repo = await makeRepo({ prefix, bucket, ddbUrl, s3Url });
  const before = await repo.getStreamSequence('account', '42');
  await repo.storeEvents([
    event(11, 'account', '42', 'opened', '2024-03-01T09:00:00.000Z'),
    event(12, 'account', '42', 'closed', '2024-03-02T09:00:00.000Z'),
  ]);
  const after = await repo.getStreamSequence('account', '42');
  say(`adapter appended to account/42 of ${prefix}${SUFFIX}: version ${before} -> ${after}`);
}

async function main(argv) {
  const [mode, ...args] = argv;
  if (mode === 'prepare' && args.length === 2)
    await prepare(...args);
  else if (mode === 'append' && args.length === 4)
    await append(...args);
  else
    throw new Error('usage: admin-store.js prepare <ddb_url> <s3_url> | append <ddb_url> <s3_url> <prefix> <bucket>');
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`admin-store: ${e.stack || e}\n`);
    process.exit(1);
  });
