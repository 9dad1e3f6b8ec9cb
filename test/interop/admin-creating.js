// A DynamoDB endpoint whose tables are forever being created, for the admin regression test
// (sql/admin.sql): DescribeTable always answers with an event store table, of the right shape,
// whose table and indexes are CREATING, so that init_store waits, and the test shows that
// statement_timeout (or a cancel) ends the wait. A table whose name starts with admin-backfill-
// is ACTIVE instead, with its two layout indexes, but has a streamIndex forever CREATING (being
// backfilled): waits must wait for that index too. No signature is checked; nothing else is
// served.
//
// Usage: node test/interop/admin-creating.js
//   starts the endpoint in a detached process on a free 127.0.0.1 port, prints its URL and exits,
//   so that COPY ... FROM PROGRAM returns at once. The endpoint stops on GET /__quit, or by itself
//   after LIFETIME_MS whatever happens.
'use strict';

const http = require('http');
const { spawn } = require('child_process');

const LIFETIME_MS = 120000;
const READY_TIMEOUT_MS = 10000;

function creatingTable(name) {
  const S = (n) => ({ AttributeName: n, AttributeType: 'S' });
  const key = (hash, range) => [].concat(hash).map((h) => ({ AttributeName: h, KeyType: 'HASH' }))
    .concat([{ AttributeName: range, KeyType: 'RANGE' }]);
  const backfill = name.startsWith('admin-backfill-');
  const status = backfill ? 'ACTIVE' : 'CREATING';
  const index = (name, hash, range, indexStatus) => ({
    IndexName: name, KeySchema: key(hash, range), Projection: { ProjectionType: 'KEYS_ONLY' },
    IndexStatus: indexStatus, ProvisionedThroughput: { ReadCapacityUnits: 10, WriteCapacityUnits: 10 },
    ItemCount: 0, IndexSizeBytes: 0,
  });
  const table = {
    TableName: name, TableStatus: status, ItemCount: 0, TableSizeBytes: 0,
    AttributeDefinitions: [S('id'), S('timeBucket'), S('causationId'), S('created')],
    KeySchema: key('id', 'created'),
    ProvisionedThroughput: { ReadCapacityUnits: 10, WriteCapacityUnits: 10 },
    GlobalSecondaryIndexes: [index('timeBucketIndex', 'timeBucket', 'created', status),
      index('causationIndex', 'causationId', 'created', status)],
  };
  if (backfill) {
    table.AttributeDefinitions.push(S('domain'), S('identifier'), { AttributeName: 'sequence', AttributeType: 'N' });
    table.GlobalSecondaryIndexes.push(
      { ...index('streamIndex', ['domain', 'identifier'], 'sequence', 'CREATING'), Backfilling: true });
  }
  return { Table: table };
}

function serve() {
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/__quit') {
      res.end('bye\n');
      server.close();
      process.exit(0);
    }
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const target = String(req.headers['x-amz-target'] || '');
      let body;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
      } catch (e) {
        body = {};
      }
      res.setHeader('Content-Type', 'application/x-amz-json-1.0');
      if (target.endsWith('.DescribeTable')) {
        res.end(JSON.stringify(creatingTable(body.TableName)));
      } else {
        res.statusCode = 400;
        res.end(JSON.stringify({
          __type: 'com.amazonaws.dynamodb.v20120810#ResourceInUseException',
          message: 'the table is being created',
        }));
      }
    });
  });
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`http://127.0.0.1:${server.address().port}\n`);
  });
  setTimeout(() => process.exit(0), LIFETIME_MS).unref();
}

if (process.argv[2] === '--serve') {
  serve();
} else {
  // Start the endpoint detached, pass its URL on, and leave it running.
  const child = spawn(process.execPath, [__filename, '--serve'], {
    detached: true, stdio: ['ignore', 'pipe', 'ignore'],
  });
  const timer = setTimeout(() => {
    process.stderr.write('admin-creating: the endpoint did not start\n');
    child.kill();
    process.exit(2);
  }, READY_TIMEOUT_MS);
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
    if (out.includes('\n')) {
      clearTimeout(timer);
      process.stdout.write(out);
      child.stdout.destroy();
      child.unref();
      process.exit(0);
    }
  });
  child.on('exit', (code) => {
    process.stderr.write(`admin-creating: the endpoint exited with ${code}\n`);
    process.exit(2);
  });
}
