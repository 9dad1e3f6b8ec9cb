#!/usr/bin/env node
// Prints the items of a DynamoDB table exactly as DynamoDB stores them, one JSON object of
// AttributeValues per line ({"id":{"S":"EventID#..."},"sequence":{"N":"1"},...}), for the
// regression files that check the stored layout without reading it back through the extension.
// A consistent Scan with the AWS SDK, not this project's code.
//
// Usage: node test/regress/raw-items.js <dynamodb-url> <table> [<attribute>=<string value>]
// The optional filter keeps the items whose attribute is that string (S). Lines come sorted by
// id and created. Credentials are the test stack's (S3RVER / S3RVER).
'use strict';

const { DynamoDBClient, ScanCommand } = require('@aws-sdk/client-dynamodb');

async function main() {
  const [url, table, filter] = process.argv.slice(2);
  if (!url || !table) {
    console.error('usage: node test/regress/raw-items.js <dynamodb-url> <table> [<attribute>=<value>]');
    process.exit(2);
  }
  const client = new DynamoDBClient({
    endpoint: url, region: 'us-east-1', maxAttempts: 5,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
  const params = { TableName: table, ConsistentRead: true };
  if (filter) {
    const eq = filter.indexOf('=');
    params.FilterExpression = '#a = :v';
    params.ExpressionAttributeNames = { '#a': filter.slice(0, eq) };
    params.ExpressionAttributeValues = { ':v': { S: filter.slice(eq + 1) } };
  }
  const items = [];
  let start;
  do {
    const out = await client.send(new ScanCommand({ ...params, ExclusiveStartKey: start }));
    items.push(...(out.Items || []));
    start = out.LastEvaluatedKey;
  } while (start);
  const key = (i) => `${i.id && i.id.S}\u0000${i.created && i.created.S}`;
  items.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  for (const item of items)
    process.stdout.write(`${JSON.stringify(item)}\n`);
}

main().catch((e) => {
  console.error(`raw-items: ${e.message}`);
  process.exit(1);
});
