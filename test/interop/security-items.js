// The Node side of the security regression test (sql/security.sql, which runs it with COPY ... FROM
// PROGRAM). Commands:
//
//   setup <ddb_url> <s3_url>      writes, raw, what the test needs:
//       - sec-customers: a DynamoDB table that is not an event store (key pk) with 5 items;
//       - sec-hostile-schemeless-event-store (created through the published adapter's init(),
//         bucket sec-hostile-events): event items whose s3Reference names hosts, other buckets and
//         odd keys, ids 00000000-0000-4000-c000-0000000000NN, all in month 2024-05;
//       - bucket sec-other with an object that only an allowed reference may read.
//   customers <ddb_url> <s3_url>  prints whether sec-customers exists and how many items it holds
//   content-type <ddb_url> <s3_url> <bucket> <key>
//                                 prints the Content-Type S3 stored with the object
//
// Nothing but the result lines may reach stdout: COPY reads them as rows.
'use strict';

const {
  PutItemCommand, CreateTableCommand, DeleteTableCommand, DescribeTableCommand, ScanCommand,
  DeleteItemCommand, waitUntilTableExists, waitUntilTableNotExists,
} = require('@aws-sdk/client-dynamodb');
const { PutObjectCommand, CreateBucketCommand, HeadObjectCommand } = require('@aws-sdk/client-s3');
const { makeRepo, makeDynamoClient, makeS3Client, emptyBucket } = require('./adapter');

console.log = console.info = console.debug = (...a) => process.stderr.write(a.join(' ') + '\n');

const CUSTOMERS = 'sec-customers';
const HOSTILE = 'sec-hostile-schemeless-event-store';
const BUCKET = 'sec-hostile-events';
const OTHER_BUCKET = 'sec-other';
const id = (nn) => `00000000-0000-4000-c000-0000000000${String(nn).padStart(2, '0')}`;

/* An offloaded event item of stream sec::<nn> whose s3Reference is `ref`. */
function item(nn, ref) {
  const created = `2024-05-${String(nn).padStart(2, '0')}T10:00:00.000Z`;
  return {
    id: { S: 'EventID#' + id(nn) },
    created: { S: created },
    timeBucket: { S: created.slice(0, 7) },
    domain: { S: 'sec' },
    type: { S: 'case-' + nn },
    identifier: { S: 's' + nn },
    sequence: { N: '1' },
    s3Reference: { S: ref },
  };
}

async function tableExists(ddb, name) {
  try {
    await ddb.send(new DescribeTableCommand({ TableName: name }));
    return true;
  } catch (e) {
    if (e.name === 'ResourceNotFoundException') return false;
    throw e;
  }
}

async function ensureBucket(s3, bucket) {
  try {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (e) {
    if (e.name !== 'BucketAlreadyOwnedByYou' && e.name !== 'BucketAlreadyExists') throw e;
  }
}

const body = (nn, payload) => JSON.stringify({ id: id(nn), domain: 'sec', type: 'case-' + nn, payload });

async function setup(ddb, s3, ddbUrl, s3Url) {
  // a table that is not an event store
  if (await tableExists(ddb, CUSTOMERS)) {
    await ddb.send(new DeleteTableCommand({ TableName: CUSTOMERS }));
    await waitUntilTableNotExists({ client: ddb, maxWaitTime: 60 }, { TableName: CUSTOMERS });
  }
  await ddb.send(new CreateTableCommand({
    TableName: CUSTOMERS,
    AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
    KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
    BillingMode: 'PAY_PER_REQUEST',
  }));
  await waitUntilTableExists({ client: ddb, maxWaitTime: 60 }, { TableName: CUSTOMERS });
  for (let i = 1; i <= 5; i++)
    await ddb.send(new PutItemCommand({ TableName: CUSTOMERS, Item: { pk: { S: 'customer-' + i } } }));
  process.stdout.write(`5 items in ${CUSTOMERS}\n`);

  // the hostile store; start empty
  await makeRepo({ prefix: 'sec-hostile-', bucket: BUCKET, ddbUrl, s3Url });
  await emptyBucket(s3, BUCKET);
  await ensureBucket(s3, OTHER_BUCKET);
  const old = await ddb.send(new ScanCommand({ TableName: HOSTILE, ProjectionExpression: 'id, created' }));
  for (const k of old.Items || [])
    await ddb.send(new DeleteItemCommand({ TableName: HOSTILE, Key: { id: k.id, created: k.created } }));

  const put = (bucket, key, text) => s3.send(new PutObjectCommand({
    Bucket: bucket, Key: key, Body: text, ContentType: 'application/json', ACL: 'private',
  }));
  await put(OTHER_BUCKET, 'events/secret.json', body(2, { secret: 'from another bucket' }));
  await put(BUCKET, 'events/a?b#c%d e+f&g=h.json', body(3, { key: 'with ? # % space + & =' }));
  await put(BUCKET, `events/${id(6)}.json`, body(6, { plain: true }));

  const items = [
    item(1, '127.0.0.1:9/internal-admin?x=::events/x.json'), // a host and path as "bucket"
    item(2, `${OTHER_BUCKET}::events/secret.json`),          // a valid bucket the table does not name
    item(3, `${BUCKET}::events/a?b#c%d e+f&g=h.json`),       // a key with URL syntax in it
    item(4, `${BUCKET}::events/../../${OTHER_BUCKET}/events/secret.json`), // dot segments in a key
    item(5, '..::events/x.json'),                            // a bucket of dots
    item(6, `${BUCKET}::events/${id(6)}.json`),              // an ordinary offloaded event
  ];
  for (const it of items)
    await ddb.send(new PutItemCommand({ TableName: HOSTILE, Item: it }));
  process.stdout.write(`${items.length} items in ${HOSTILE}\n`);
}

async function customers(ddb) {
  if (!(await tableExists(ddb, CUSTOMERS))) {
    process.stdout.write(`${CUSTOMERS} does not exist\n`);
    return;
  }
  const r = await ddb.send(new ScanCommand({ TableName: CUSTOMERS, Select: 'COUNT' }));
  process.stdout.write(`${CUSTOMERS}: ${r.Count} items\n`);
}

async function contentType(s3, bucket, key) {
  const r = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  process.stdout.write(`${r.ContentType}\n`);
}

async function main() {
  const [command, ddbUrl, s3Url, ...rest] = process.argv.slice(2);
  const ddb = makeDynamoClient(ddbUrl);
  const s3 = makeS3Client(s3Url);
  if (command === 'setup') await setup(ddb, s3, ddbUrl, s3Url);
  else if (command === 'customers') await customers(ddb);
  else if (command === 'content-type') await contentType(s3, rest[0], rest[1]);
  else throw new Error(`unknown command ${command}`);
}

main().then(() => process.exit(0), (e) => {
  process.stderr.write(`security-items: ${e.stack || e}\n`);
  process.stdout.write(`failed: ${e.name}: ${e.message}\n`);
  process.exit(1);
});
