// Appends three events to the demo store with the published Node adapter, as an application
// would, for the projection part of test/run-demo.sh: a deposit and a withdrawal on account 42,
// a deposit on account 7, dated now. Needs the stack.env variables in the environment.
// The adapter needs the same two fixes as in load.js (see there): the npm override in
// test/package.json, and a `default` on object-sizeof's export before the adapter is loaded.
'use strict';

const crypto = require('crypto');
const adapterDir = require('path').dirname(require.resolve('@schemeless/event-store-adapter-dynamodb'));
const sizeof = require(require.resolve('object-sizeof', { paths: [adapterDir] }));
if (typeof sizeof === 'function' && sizeof.default === undefined) sizeof.default = sizeof;

const { DynamoDBClient } = require('@aws-sdk/client-dynamodb');
const { S3Client } = require('@aws-sdk/client-s3');
const { EventStoreRepo } = require('@schemeless/event-store-adapter-dynamodb');

const credentials = {
  accessKeyId: process.env.AWS_TEST_ACCESS_KEY_ID,
  secretAccessKey: process.env.AWS_TEST_SECRET_ACCESS_KEY,
};
const region = process.env.AWS_TEST_REGION;

async function main() {
  const dynamodb = new DynamoDBClient({ endpoint: process.env.DDB_URL, region, credentials });
  const s3 = new S3Client({ endpoint: process.env.S3_URL, region, credentials, forcePathStyle: true });
  const repo = new EventStoreRepo(dynamodb, s3, { tableNamePrefix: 'demo-', s3BucketName: 'demo-events' });
  const now = Date.now();
  const ev = (i, identifier, type, amount) => ({
    id: crypto.randomUUID(), domain: 'account', identifier, type, payload: { amount },
    meta: { source: 'demo' }, created: new Date(now + i),
  });
  await repo.storeEvents([ev(0, '42', 'deposited', 500), ev(1, '42', 'withdrawn', 20)]);
  await repo.storeEvents([ev(2, '7', 'deposited', 24.5)]);
  dynamodb.destroy();
  s3.destroy();
  console.log('appended 3 events with the Node adapter: account 42 +500 -20, account 7 +24.5');
}

main().catch((e) => {
  process.stderr.write(`append.js: ${e.stack || e}\n`);
  process.exit(1);
});
