#!/usr/bin/env node
// Deletes a DynamoDB table if it exists and waits until it is gone, for the regression files that
// need a table to be missing and must give the same output when run again on the same stack.
// Uses the AWS SDK, not this project's code. Prints nothing; exits 1 on any other failure.
//
// Usage: node test/regress/drop-table.js <dynamodb-url> <table>
// Credentials are the test stack's (S3RVER / S3RVER).
'use strict';

const {
  DynamoDBClient, DeleteTableCommand, waitUntilTableNotExists,
} = require('@aws-sdk/client-dynamodb');

async function main() {
  const [url, table] = process.argv.slice(2);
  if (!url || !table) {
    console.error('usage: node test/regress/drop-table.js <dynamodb-url> <table>');
    process.exit(2);
  }
  const client = new DynamoDBClient({
    endpoint: url, region: 'us-east-1', maxAttempts: 5,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
  try {
    await client.send(new DeleteTableCommand({ TableName: table }));
  } catch (e) {
    if (e.name !== 'ResourceNotFoundException') throw e;
  }
  await waitUntilTableNotExists({ client, maxWaitTime: 60, minDelay: 1, maxDelay: 2 }, { TableName: table });
}

main().catch((e) => {
  console.error(`drop-table: ${e.message}`);
  process.exit(1);
});
