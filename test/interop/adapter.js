// Loads the published Node adapter, @schemeless/event-store-adapter-dynamodb 5.0.0, exactly as an
// application would use it, so that the interop tests write and replay events through the real thing
// rather than through our own idea of the layout. Also builds the AWS SDK clients every interop
// script needs from the test environment (DDB_*_URL, S3_URL, AWS_TEST_*).
'use strict';

const path = require('path');

// The SDK warns on every run that future releases will need Node 22; the warning says nothing about
// these tests and would only bury their output.
if (process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED === undefined)
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const { DynamoDBClient } = require('@aws-sdk/client-dynamodb');
const { S3Client, ListObjectsV2Command, DeleteObjectsCommand } = require('@aws-sdk/client-s3');

const ADAPTER = '@schemeless/event-store-adapter-dynamodb';
const adapterDir = path.dirname(require.resolve(ADAPTER + '/package.json'));

// The adapter is compiled TypeScript that calls `object_sizeof_1.default(event)` to decide which
// events to offload to S3, but object-sizeof 1.x is a plain CommonJS module whose export is the
// function itself, with no `default`: unpatched, every storeEvents throws
// "object_sizeof_1.default is not a function". Giving the export a `default` pointing at itself,
// before the adapter is first required, is the smallest fix that leaves the adapter's own code (and
// so the layout it writes) untouched. Resolve the module from the adapter's directory so we patch
// the very instance it will load.
const sizeof = require(require.resolve('object-sizeof', { paths: [adapterDir] }));
if (typeof sizeof.default !== 'function')
  sizeof.default = sizeof;

// The second fix is not here but in test/package.json: the adapter depends on
// @schemeless/event-store-types@^3.2.2, which was never published, so npm cannot install it without
// the `overrides` entry pointing that dependency at 6.0.0-rc.5 (it only uses ConcurrencyError).
const { EventStoreRepo } = require(ADAPTER);

/* The test credentials and region, from the environment the runner exports. */
function testCredentials() {
  return {
    region: process.env.AWS_TEST_REGION || 'us-east-1',
    credentials: {
      accessKeyId: process.env.AWS_TEST_ACCESS_KEY_ID || 'S3RVER',
      secretAccessKey: process.env.AWS_TEST_SECRET_ACCESS_KEY || 'S3RVER',
    },
  };
}

/* The DynamoDB endpoint seeding should use: DynamoDB Local directly when known. */
function defaultDdbUrl() {
  const url = process.env.DDB_LOCAL_URL || process.env.DDB_URL;
  if (!url)
    throw new Error('neither DDB_LOCAL_URL nor DDB_URL is set');
  return url;
}

function defaultS3Url() {
  if (!process.env.S3_URL)
    throw new Error('S3_URL is not set');
  return process.env.S3_URL;
}

function makeDynamoClient(ddbUrl = defaultDdbUrl()) {
  return new DynamoDBClient({ ...testCredentials(), endpoint: ddbUrl, maxAttempts: 5 });
}

function makeS3Client(s3Url = defaultS3Url()) {
  return new S3Client({
    ...testCredentials(),
    endpoint: s3Url,
    forcePathStyle: true,
    // s3rver predates the SDK's default CRC checksums; only send them where S3 requires them.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/*
 * An initialised EventStoreRepo for the store <prefix>schemeless-event-store with offloaded events
 * in `bucket`. init() creates the table and the bucket when they do not exist yet.
 */
async function makeRepo({ prefix, bucket, ddbUrl = defaultDdbUrl(), s3Url = defaultS3Url() }) {
  const repo = new EventStoreRepo(makeDynamoClient(ddbUrl), makeS3Client(s3Url), {
    tableNamePrefix: prefix,
    s3BucketName: bucket,
  });
  await repo.init();
  return repo;
}

/* Deletes every object in `bucket` (the adapter's resetStore leaves S3 alone). */
async function emptyBucket(s3, bucket) {
  let token;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    const keys = (page.Contents || []).map((o) => ({ Key: o.Key }));
    if (keys.length > 0)
      await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
}

module.exports = { EventStoreRepo, makeRepo, makeDynamoClient, makeS3Client, emptyBucket, testCredentials };
