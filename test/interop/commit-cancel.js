// A cancel during a large commit, on a fresh store of its own (`cc-`): a transaction appends 20,000
// events over 20 streams and commits; once DynamoDB holds the first of them, the commit is
// cancelled (pg_cancel_backend). The error is 57014, and its DETAIL says how many events were
// written and through which sequence of each stream, and how many more were under way. Then the
// store is read with the AWS SDK and the report is checked against it: every stream the DETAIL
// names holds events 1..n with n at least the sequence it gives, the total is at least the count
// written and at most that plus what was under way, and every stream is contiguous from 1.
//
// Usage: node test/interop/commit-cancel.js   (needs PG*, DDB_URL, AWS_TEST_*). Prints `ok - ...`
// / `not ok - ...` and `N passed, N failed`; exits 1 on failure.
'use strict';

const { ScanCommand, GetItemCommand } = require('@aws-sdk/client-dynamodb');
const { unmarshall } = require('@aws-sdk/util-dynamodb');
const { makeDynamoClient } = require('./adapter');
const { Report } = require('./report');
const { psqlOk, startPsql, openSession } = require('./psql');

const PREFIX = 'cc-';
const TABLE = `${PREFIX}schemeless-event-store`;
const EVENTS = 20000;
const STREAMS = 20;
const WAIT_MS = 300000;
const env = process.env;
const report = new Report();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function headVersion(ddb, stream) {
  const r = await ddb.send(new GetItemCommand({
    TableName: TABLE, ConsistentRead: true,
    Key: { id: { S: `EventID#HEAD::${stream}` }, created: { S: 'HEAD' } },
  }));
  return r.Item ? Number(r.Item.version.N) : 0;
}

async function scanAll(ddb) {
  const items = [];
  let start;
  do {
    const r = await ddb.send(new ScanCommand({ TableName: TABLE, ConsistentRead: true, ExclusiveStartKey: start }));
    items.push(...r.Items.map((i) => unmarshall(i)));
    start = r.LastEvaluatedKey;
  } while (start);
  return items;
}

async function main() {
  const ddb = makeDynamoClient(env.DDB_URL);
  await psqlOk(`
    SET client_min_messages = warning;
    CREATE EXTENSION IF NOT EXISTS event_store_dynamo;
    DROP SERVER IF EXISTS cc_srv CASCADE;
    CREATE SERVER cc_srv FOREIGN DATA WRAPPER event_store_dynamo
      OPTIONS (endpoint '${env.DDB_URL}', max_in_flight '4');
    CREATE USER MAPPING FOR CURRENT_USER SERVER cc_srv
      OPTIONS (access_key_id '${env.AWS_TEST_ACCESS_KEY_ID}', secret_access_key '${env.AWS_TEST_SECRET_ACCESS_KEY}');
    CREATE FOREIGN TABLE cc (domain text, type text, identifier text, sequence bigint)
      SERVER cc_srv OPTIONS (table_name_prefix '${PREFIX}');
    SELECT event_store_dynamo.reset_store('cc');`);

  // the streams sort as 0, 1, 10, 11, ...: stream cancel::0 goes out first
  const commit = startPsql(`\\set VERBOSITY verbose
BEGIN;
INSERT INTO cc (domain, type, identifier)
  SELECT 'cancel', 'e', (n % ${STREAMS})::text FROM generate_series(1, ${EVENTS}) n;
COMMIT;`, { env: { PGAPPNAME: 'esd-commit-cancel' }, timeoutMs: WAIT_MS });

  // wait until part of the commit is in DynamoDB, then cancel it
  const ctl = openSession({ timeoutMs: 60000 });
  const deadline = Date.now() + WAIT_MS;
  let started = false;
  while (Date.now() < deadline) {
    try {
      if (await headVersion(ddb, 'cancel::0') > 0) {
        started = true;
        break;
      }
    } catch (e) {
      // the table is being created by reset_store's neighbour steps: try again
    }
    await sleep(20);
  }
  const cancelled = started && (await ctl.run(
    `SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'esd-commit-cancel' AND query LIKE 'COMMIT%';`)).stdout.trim() === 't';
  await ctl.close();
  const r = await commit.done;
  report.check('the commit was under way when it was cancelled (part of it in DynamoDB)', started && cancelled,
    `started ${started}, cancelled ${cancelled}; ${r.stderr}`);

  report.check('the COMMIT fails with 57014', /ERROR:\s+57014/.test(r.stderr), r.stderr);
  const detail = (r.stderr.match(/DETAIL:\s+(.*)/) || [])[1] || '';
  const written = detail.match(/(\d+) events of this commit, in (\d+) DynamoDB transactions, were written and stay:(.*?)\.( |$)/);
  const inDoubt = Number((detail.match(/ (\d+) more events were sent in DynamoDB transactions whose answer was not awaited/) || [])[1] || 0);
  report.check('the DETAIL says how many events were written, stream by stream', written !== null, detail || r.stderr);

  const items = await scanAll(ddb);
  const events = items.filter((i) => i.created !== 'HEAD');
  const byStream = new Map();
  for (const e of events) {
    const key = `${e.domain}::${e.identifier}`;
    if (!byStream.has(key))
      byStream.set(key, []);
    byStream.get(key).push(Number(e.sequence));
  }
  const gaps = [];
  for (const [key, seqs] of byStream) {
    seqs.sort((a, b) => a - b);
    if (seqs.some((s, i) => s !== i + 1))
      gaps.push(key);
  }
  report.check('every stream in DynamoDB runs from 1 without a gap', gaps.length === 0, gaps.join(', '));
  if (written) {
    const count = Number(written[1]);
    report.check(`the store holds at least the ${count} events reported written and at most ${inDoubt} more (under way)`,
      events.length >= count && events.length <= count + inDoubt,
      `store ${events.length}, written ${count}, under way ${inDoubt}`);
    report.check('some but not all of the 20,000 events were written', count > 0 && count < EVENTS, detail);
    const named = [...written[3].matchAll(/stream "([^"]+)" through sequence (\d+)/g)];
    const wrong = named.filter(([, stream, upto]) => (byStream.get(stream) || []).length < Number(upto))
      .map(([, stream, upto]) => `${stream}: reported through ${upto}, stored ${(byStream.get(stream) || []).length}`);
    report.check(`each stream named (${named.length}) holds at least the events reported`, named.length > 0 && wrong.length === 0,
      wrong.join('\n') || detail);
    if (inDoubt === 0) {
      const exact = named.every(([, stream, upto]) => (byStream.get(stream) || []).length === Number(upto));
      report.check('nothing was under way: the store holds exactly what was reported', events.length === count && exact,
        `store ${events.length}, written ${count}`);
    }
  }
  await psqlOk('DROP SERVER cc_srv CASCADE;');
  return report.finish();
}

main().then((status) => process.exit(status), (e) => {
  console.log(`not ok - commit-cancel: ${e.stack || e}`);
  process.exit(1);
});
