// The Node side of the bad-items regression test (sql/baditems.sql, which runs it with COPY ...
// FROM PROGRAM): it writes, raw, a corpus of event items no one planned for into the store
// baditems-schemeless-event-store (table created through the published adapter's init(), bucket
// baditems-events), so that the test shows what a replay does with each.
//
// Usage: node test/interop/bad-items.js <ddb_url> <s3_url>
//
// Every item is in month 2024-05 (but one, filed under 2024-06 on purpose), with a fixed id
// 00000000-0000-4000-b000-0000000000NN; the test refers to them by NN. Items 21 to 23, in month
// 2024-04 (before the start_month of the test's other tables), have ids of 600 characters, so
// that the test shows how messages quote them. Prints one line on stdout.
'use strict';

const { PutItemCommand, ScanCommand, DeleteItemCommand } = require('@aws-sdk/client-dynamodb');
const { PutObjectCommand } = require('@aws-sdk/client-s3');
const { makeRepo, makeDynamoClient, makeS3Client, emptyBucket } = require('./adapter');

// Nothing but the result line may reach stdout: COPY reads it as a row.
console.log = console.info = console.debug = (...a) => process.stderr.write(a.join(' ') + '\n');

const TABLE = 'baditems-schemeless-event-store';
const BUCKET = 'baditems-events';
const id = (nn) => `00000000-0000-4000-b000-0000000000${String(nn).padStart(2, '0')}`;
const longId = (nn) => `${id(nn)}-${'x'.repeat(563)}`; // 600 characters

/* A well-formed event item of stream bad::<nn>, with `extra` replacing or adding attributes. */
function item(nn, extra, omit = []) {
  const created = `2024-05-${String(nn).padStart(2, '0')}T10:00:00.000Z`;
  const base = {
    id: { S: 'EventID#' + id(nn) },
    created: { S: created },
    timeBucket: { S: created.slice(0, 7) },
    domain: { S: 'bad' },
    type: { S: 'case-' + nn },
    identifier: { S: 'b' + nn },
    sequence: { N: '1' },
    payload: { S: `{"case":${nn}}` },
  };
  for (const k of omit) delete base[k];
  return { ...base, ...extra };
}

/* An item of month 2024-04 whose id has 600 characters. */
function longItem(nn, extra, omit = []) {
  const created = `2024-04-${String(nn).padStart(2, '0')}T10:00:00.000Z`;
  return item(nn, { id: { S: 'EventID#' + longId(nn) }, created: { S: created }, timeBucket: { S: '2024-04' }, ...extra }, omit);
}

function nested(depth) {
  let v = { S: 'bottom' };
  for (let i = 0; i < depth; i++) v = { M: { d: v } };
  return v;
}

async function main() {
  const [ddbUrl, s3Url] = process.argv.slice(2);
  const ddb = makeDynamoClient(ddbUrl);
  const s3 = makeS3Client(s3Url);

  // the table and bucket as the adapter creates them; start empty
  await makeRepo({ prefix: 'baditems-', bucket: BUCKET, ddbUrl, s3Url });
  await emptyBucket(s3, BUCKET);
  const old = await ddb.send(new ScanCommand({ TableName: TABLE, ProjectionExpression: 'id, created' }));
  for (const k of old.Items || [])
    await ddb.send(new DeleteItemCommand({ TableName: TABLE, Key: { id: k.id, created: k.created } }));

  const body = (o) => JSON.stringify(o);
  const objects = {
    'events/missing-not-written.json': null,
    [`events/${id(12)}.json`]: 'this is not JSON {',
    [`events/${id(13)}.json`]: body({ id: id(99), domain: 'bad', type: 'case-13', payload: { x: 1 } }),
    [`events/${id(20)}.json`]: body({ id: id(20), domain: 'bad', type: 'case-20', payload: '{"as":"text"}' }),
    'events/long-23.json': body({ id: longId(99), domain: 'bad', type: 'case-23', payload: { x: 1 } }),
  };
  // a payload with a 40-digit integer, as another writer's JSON.stringify would not print it but
  // a hand-written body might: written as text so every digit is there
  objects[`events/${id(19)}.json`] =
    `{"id":"${id(19)}","domain":"bad","type":"case-19","payload":{"big":1234567890123456789012345678901234567890,"f":1.50}}`;
  for (const [key, text] of Object.entries(objects))
    if (text !== null)
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: text, ContentType: 'application/json', ACL: 'private' }));

  const items = [
    item(1, { sequence: { S: '7' } }),                                  // sequence as a String holding a number
    item(2, {}, ['sequence']),                                          // sequence missing
    item(3, { sequence: { S: 'seven' } }),                              // sequence as a String that is not one
    { ...item(4, {}), created: { S: '2024-05-04 sometime' } },          // created malformed
    { ...item(5, {}), created: { S: '2024-05-05T12:00:00.000+02:00' } }, // created with an offset
    item(6, { timeBucket: { S: '2024-06' } }),                          // timeBucket disagrees with created
    item(7, { payload: { N: '42' } }),                                  // payload as a Number
    item(8, { payload: { M: { a: { N: '1' }, b: { L: [{ S: 'x' }] } } } }), // payload as a Map
    item(9, { payload: { B: Buffer.from('binary payload') } }),         // payload as Binary
    item(10, { s3Reference: { S: 'baditems-events/events/no-separator.json' } }, ['payload']),
    item(11, { s3Reference: { S: `${BUCKET}::events/missing-not-written.json` } }, ['payload']),
    item(12, { s3Reference: { S: `${BUCKET}::events/${id(12)}.json` } }, ['payload']),
    item(13, { s3Reference: { S: `${BUCKET}::events/${id(13)}.json` } }, ['payload']),
    item(14, { payload: { S: JSON.stringify({ blob: 'z'.repeat(380000) }) } }), // over 350 KB, never offloaded
    item(15, { unknownText: { S: 'extra' }, unknownNumber: { N: '5' } }), // unknown extra attributes
    item(16, { meta: nested(31) }),                                     // meta nested as deep as DynamoDB allows
    item(17, { meta: { N: '12345678901234567890123456789012345678' } }), // a 38-digit number
    item(18, {
      meta: {
        M: {
          s: { S: 'text' }, n: { N: '-1.5E+3' }, b: { B: Buffer.from([0, 1, 2]) }, t: { BOOL: true },
          z: { NULL: true }, l: { L: [{ N: '1' }, { S: 'two' }] }, ss: { SS: ['x', 'y'] },
          ns: { NS: ['1', '2.5'] }, bs: { BS: [Buffer.from('a'), Buffer.from('b')] },
        },
      },
    }),                                                                 // every DynamoDB type in meta
    item(19, { s3Reference: { S: `${BUCKET}::events/${id(19)}.json` } }, ['payload']),
    item(20, { s3Reference: { S: `${BUCKET}::events/${id(20)}.json` } }, ['payload']),
    longItem(21, { sequence: { S: 'seven' } }),                         // a 600-character id, sequence not a number
    longItem(22, { s3Reference: { S: `${BUCKET}/${'y'.repeat(600)}.json` } }, ['payload']), // and no separator
    longItem(23, { s3Reference: { S: `${BUCKET}::events/long-23.json` } }, ['payload']), // a body of another event
  ];
  for (const it of items)
    await ddb.send(new PutItemCommand({ TableName: TABLE, Item: it }));
  process.stdout.write(`${items.length} items in ${TABLE}\n`);
}

main().then(() => process.exit(0), (e) => {
  process.stderr.write(`bad-items: ${e.stack || e}\n`);
  process.stdout.write(`failed: ${e.message}\n`);
  process.exit(1);
});
