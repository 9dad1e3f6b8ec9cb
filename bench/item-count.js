// The item count of a DynamoDB table, from DescribeTable: node bench/item-count.js TABLE
// With --heads DOMAIN N: also the sum of the versions of the stream heads of DOMAIN with identifiers
// 0 to N-1 (read with BatchGetItem), printed as a second number: the events appended to them.
//
// Used by bench/append-memory.sh to follow a commit and to check its result without a Query on the
// index (which DynamoDB Local answers slowly on a month of a million events). DynamoDB Local counts
// the items at each call; DynamoDB itself updates ItemCount about every six hours, so this is for the
// local stack only. Reads DDB_URL and the AWS_TEST_* credentials that test/lib.sh exports.
'use strict';

const { AwsClient } = require('./aws');

async function main() {
  const table = process.argv[2];
  if (!table)
    throw new Error('usage: node bench/item-count.js TABLE');
  const client = new AwsClient({
    ddbUrl: process.env.DDB_URL,
    region: process.env.AWS_TEST_REGION || 'us-east-1',
    accessKeyId: process.env.AWS_TEST_ACCESS_KEY_ID,
    secretAccessKey: process.env.AWS_TEST_SECRET_ACCESS_KEY,
  });
  const answer = await client.call('DescribeTable', { TableName: table });
  const out = [answer.Table.ItemCount];
  if (process.argv[3] === '--heads') {
    const domain = process.argv[4];
    const streams = Number(process.argv[5]);
    let versions = 0;
    let found = 0;
    for (let from = 0; from < streams; from += 100) {
      let keys = [];
      for (let i = from; i < Math.min(streams, from + 100); i++)
        keys.push({ id: { S: `EventID#HEAD::${domain}::${i}` }, created: { S: 'HEAD' } });
      for (let attempt = 0; keys.length > 0; attempt++) {
        if (attempt > 20)
          throw new Error('BatchGetItem: keys still unprocessed after 20 tries');
        const page = await client.call('BatchGetItem', {
          RequestItems: { [table]: { Keys: keys, ConsistentRead: true, ProjectionExpression: 'version' } },
        });
        for (const item of page.Responses[table] || []) {
          versions += Number(item.version.N);
          found++;
        }
        keys = (page.UnprocessedKeys && page.UnprocessedKeys[table] && page.UnprocessedKeys[table].Keys) || [];
      }
    }
    if (found !== streams)
      throw new Error(`${found} of ${streams} stream heads found`);
    out.push(versions);
  }
  process.stdout.write(`${out.join(' ')}\n`);
}

main().catch((err) => {
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
});
