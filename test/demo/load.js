// Loads a handful of sample events into the local stack with the published Node adapter
// (@schemeless/event-store-adapter-dynamodb 5.0.0), for test/run-demo.sh: table
// "demo-schemeless-event-store", bucket "demo-events", one event large enough to be offloaded to S3.
// Needs the stack.env variables (DDB_URL, S3_URL, AWS_TEST_*) in the environment.
//
// The published adapter needs two fixes to work at all:
//  1. It depends on @schemeless/event-store-types@^3.2.2, which was never published; test/package.json
//     carries an npm "overrides" entry pointing it at 6.0.0-rc.5 so that it installs.
//  2. It calls require('object-sizeof').default(...), but object-sizeof is CommonJS and exports the
//     function itself, so storeEvents throws "object_sizeof_1.default is not a function". Giving that
//     export a `default` property pointing at itself, before the adapter is first required, fixes it.

'use strict';

// Resolved from the adapter's own directory, so that this is the module instance it will load.
const adapterDir = require('path').dirname(require.resolve('@schemeless/event-store-adapter-dynamodb'));
const sizeof = require(require.resolve('object-sizeof', { paths: [adapterDir] }));
if (typeof sizeof === 'function' && sizeof.default === undefined) sizeof.default = sizeof;

const { DynamoDBClient } = require('@aws-sdk/client-dynamodb');
const { S3Client } = require('@aws-sdk/client-s3');
const { EventStoreRepo } = require('@schemeless/event-store-adapter-dynamodb');

for (const n of ['DDB_URL', 'S3_URL', 'AWS_TEST_ACCESS_KEY_ID', 'AWS_TEST_SECRET_ACCESS_KEY', 'AWS_TEST_REGION']) {
  if (!process.env[n]) {
    process.stderr.write(`load.js: ${n} is not set (source the stack's stack.env first)\n`);
    process.exit(2);
  }
}

const credentials = {
  accessKeyId: process.env.AWS_TEST_ACCESS_KEY_ID,
  secretAccessKey: process.env.AWS_TEST_SECRET_ACCESS_KEY,
};
const region = process.env.AWS_TEST_REGION;

// Fixed ids and dates, so that every run shows the same rows.
function ev(n, domain, identifier, type, payload, created, extra = {}) {
  return {
    id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
    domain, identifier, type, payload,
    meta: { source: 'demo' },
    correlationId: `demo-${domain}-${identifier}`,
    created: new Date(created),
    ...extra,
  };
}

const EVENTS = [
  ev(1, 'account', '42', 'opened', { owner: 'Ada' }, '2024-01-05T09:00:00.000Z'),
  ev(2, 'account', '42', 'deposited', { amount: 100 }, '2024-01-05T09:05:00.000Z'),
  ev(3, 'account', '7', 'opened', { owner: 'Grace' }, '2024-01-20T14:30:00.000Z'),
  ev(4, 'account', '7', 'deposited', { amount: 250 }, '2024-02-02T08:00:00.000Z'),
  ev(5, 'account', '42', 'withdrawn', { amount: 30 }, '2024-02-11T17:45:00.000Z',
    { causationId: '00000000-0000-4000-8000-000000000002' }),
  ev(6, 'account', '7', 'withdrawn', { amount: 75.5 }, '2024-03-01T10:00:00.000Z'),
  // About 400 KB: the adapter writes this one to S3 and keeps only a reference in DynamoDB.
  ev(7, 'document', 'contract-1', 'attached',
    { name: 'contract.txt', text: 'x'.repeat(400 * 1024) }, '2024-03-03T12:00:00.000Z'),
];

async function main() {
  const dynamodb = new DynamoDBClient({ endpoint: process.env.DDB_URL, region, credentials });
  const s3 = new S3Client({ endpoint: process.env.S3_URL, region, credentials, forcePathStyle: true });
  const repo = new EventStoreRepo(dynamodb, s3, { tableNamePrefix: 'demo-', s3BucketName: 'demo-events' });
  await repo.resetStore();
  // One event per call, in date order, so that sequences count 1, 2, 3 within each stream.
  for (const e of EVENTS) await repo.storeEvents([e]);
  const replay = await repo.getAllEvents(100);
  let count = 0;
  for await (const page of replay) count += page.length;
  dynamodb.destroy();
  s3.destroy();
  console.log(`loaded ${EVENTS.length} events into demo-schemeless-event-store ` +
    `and bucket demo-events (replay through the adapter sees ${count})`);
  if (count !== EVENTS.length) throw new Error(`the adapter replays ${count} events, not ${EVENTS.length}`);
}

main().catch((e) => {
  process.stderr.write(`load.js: ${e.stack || e}\n`);
  process.exit(1);
});
