// The AWS credential chain of event_store_dynamo, source by source, against loopback stand-ins
// (test/credentials/standins.js) and a throwaway cluster restarted with each case's environment
// (test/credentials/cluster.js): the environment, the shared files (profiles, web identity in a
// profile, and the refused credential_process and AssumeRole chains), web identity through STS,
// the container endpoint, IMDSv2; the refusal of ambient credentials to non-superusers unless the
// server allows them; renewal ahead of expiry and after an ExpiredTokenException during a replay of
// the INTEROP store; a refresh that fails; and, at the end, that no secret was ever printed by the
// server or returned to a client.
//
// Usage: node test/credentials/run.js   (node:test; TAP output)
// Needs the stack's DDB_URL and S3_URL, the REGRESS and INTEROP stores seeded by
// test/interop/seed.js (step 10), the extension installed, and root or the postgres account.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');

const { Cluster } = require('./cluster');
const {
  Rotator, rotatingSecrets, startImds, startContainer, startSts, startGate,
} = require('./standins');
const interop = require('../data/interop');

const DDB_URL = process.env.DDB_URL;
const S3_URL = process.env.S3_URL;
const INTEROP_EVENTS = interop.generate().length;
const TEST_TIMEOUT_MS = 180000;

const WEB_IDENTITY_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.web-identity-token-7f3e.c2lnbmF0dXJl';
const REJECTED_WEB_IDENTITY_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.rejected-token-b52c.c2lnbmF0dXJl';
const CONTAINER_TOKEN = 'container-auth-token-6e1d';
const WRONG_CONTAINER_TOKEN = 'wrong-container-token-90ab';
const ROLE_ARN = 'arn:aws:iam::123456789012:role/events-reader';

/* Everything that must never appear in a log line or a client message. */
const SECRETS = [
  'sessionsecret', 'sessiontoken', 'cred-file-secret-3d9a', 'ignored-secret-5c0e',
  WEB_IDENTITY_TOKEN, REJECTED_WEB_IDENTITY_TOKEN, CONTAINER_TOKEN, WRONG_CONTAINER_TOKEN,
  ...rotatingSecrets(),
];

let cluster;
let refCount;                 // events in the REGRESS store, read with a user mapping's keys
const clientOutput = [];      // everything psql printed, checked for secrets at the end
const closers = [];

/* Runs SQL as postgres and keeps its output for the secrets check. */
async function sql(text, options) {
  const r = await cluster.psql(text, options);
  clientOutput.push(r.stdout, r.stderr);
  return r;
}

/* Runs SQL that must succeed; returns its rows (lines). */
async function rows(text, options) {
  const r = await sql(text, options);
  assert.equal(r.code, 0, `psql failed: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l !== '');
}

/* Runs SQL whose last statement must fail; returns psql's error output. */
async function failure(text) {
  const r = await sql(text);
  assert.notEqual(r.code, 0, `expected an error, got: ${r.stdout}`);
  return r.stderr;
}

/* credentials_in_use('amb') as [source, suffix, has expiry, detail] */
async function whoami(server = 'amb', role = null) {
  const [line] = await rows(`${role ? `SET ROLE ${role};` : ''}
SELECT source, access_key_id_suffix, expires_at IS NOT NULL, detail
  FROM event_store_dynamo.credentials_in_use('${server}');`);
  return line.split('|');
}

async function ambCount(role = null) {
  const [n] = await rows(`${role ? `SET ROLE ${role};` : ''} SELECT count(*) FROM amb_events;`);
  return Number(n);
}

/* The basic environment of every case: no instance metadata probe unless the case wants one. */
function envOf(vars) {
  return { AWS_EC2_METADATA_DISABLED: 'true', ...vars };
}

async function keep(standin) {
  closers.push(() => standin.close());
  return standin;
}

before(async () => {
  assert.ok(DDB_URL && S3_URL, 'DDB_URL and S3_URL must be set (source the stack.env)');
  cluster = new Cluster();
  await cluster.init();
  cluster.start(envOf({}));
  await rows(`
CREATE EXTENSION event_store_dynamo;
CREATE ROLE app;
GRANT USAGE ON SCHEMA event_store_dynamo TO app;
-- the reference: the REGRESS store read with a user mapping's keys
CREATE SERVER ref_srv FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (endpoint '${DDB_URL}', s3_endpoint '${S3_URL}', s3_force_path_style 'true');
CREATE USER MAPPING FOR postgres SERVER ref_srv OPTIONS (access_key_id 'S3RVER', secret_access_key 'S3RVER');
CREATE FOREIGN TABLE ref_events (id text) SERVER ref_srv OPTIONS (table_name_prefix 'regress-');
-- the same store with whatever the server process has: no user mapping at all
CREATE SERVER amb FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (endpoint '${DDB_URL}', s3_endpoint '${S3_URL}', s3_force_path_style 'true');
CREATE FOREIGN TABLE amb_events (id text) SERVER amb OPTIONS (table_name_prefix 'regress-');
GRANT USAGE ON FOREIGN SERVER amb TO app;
GRANT SELECT ON amb_events TO app;
`);
  [refCount] = (await rows('SELECT count(*) FROM ref_events;')).map(Number);
  assert.ok(refCount > 0, 'the REGRESS store is empty: run test/interop/seed.js first');
});

after(async () => {
  for (const close of closers) await close();
  if (cluster) cluster.destroy();
});

// Stopped from outside (the runner's timeout, ^C): take the cluster down before going.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    try {
      if (cluster) cluster.destroy();
    } finally {
      process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1));
    }
  });
}

test('environment: AWS_* variables; refused to non-superusers unless the server allows it', { timeout: TEST_TIMEOUT_MS }, async () => {
  cluster.restart(envOf({
    AWS_ACCESS_KEY_ID: 'ASIATESTSESSION', AWS_SECRET_ACCESS_KEY: 'sessionsecret', AWS_SESSION_TOKEN: 'sessiontoken',
  }));
  assert.deepEqual(await whoami(), ['environment', 'SION', 'f', 'AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY']);
  assert.equal(await ambCount(), refCount);

  const refused = await failure('SET ROLE app; SELECT count(*) FROM amb_events;');
  assert.match(refused, /ERROR:  42501: no AWS credentials for role "app" on server "amb"/);
  assert.match(refused, /HINT:  .*ask a superuser to set the server option use_ambient_credentials to true/);
  assert.match(await failure(`SET ROLE app; SELECT * FROM event_store_dynamo.credentials_in_use('amb');`),
    /no AWS credentials for role "app"/);

  await rows(`ALTER SERVER amb OPTIONS (ADD use_ambient_credentials 'true');`);
  assert.equal(await ambCount('app'), refCount);
  assert.equal((await whoami('amb', 'app'))[0], 'environment');
  assert.match(await failure(`SET ROLE app; ALTER SERVER amb OPTIONS (SET use_ambient_credentials 'false');`),
    /must be owner of foreign server amb/);
  await rows(`ALTER SERVER amb OPTIONS (DROP use_ambient_credentials);`);
  assert.match(await failure('SET ROLE app; SELECT count(*) FROM amb_events;'), /no AWS credentials for role "app"/);
});

test('environment: incomplete variables, and a key AWS refuses names its source', { timeout: TEST_TIMEOUT_MS }, async () => {
  cluster.restart(envOf({ AWS_ACCESS_KEY_ID: 'ASIATESTSESSION' }));
  const half = await failure('SELECT count(*) FROM amb_events;');
  assert.match(half, /could not get AWS credentials from environment for server "amb"/);
  assert.match(half, /DETAIL:  AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not/);

  cluster.restart(envOf({ AWS_ACCESS_KEY_ID: 'ASIATESTSESSION', AWS_SECRET_ACCESS_KEY: 'sessionsecret' }));
  const noToken = await failure('SELECT count(*) FROM amb_events;');
  assert.match(noToken, /failed: UnrecognizedClientException/);
  assert.match(noToken, /HINT:  The credentials came from the environment \(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY\)/);
});

test('shared files: default and named profiles, web identity in a profile, what is refused', { timeout: TEST_TIMEOUT_MS }, async () => {
  const rotator = new Rotator();
  const sts = await keep(await startSts(rotator, { token: WEB_IDENTITY_TOKEN }));
  const aws = path.join(cluster.home, '.aws');
  const tokenFile = cluster.writeFile(path.join(cluster.files, 'profile-web-identity-token'), `${WEB_IDENTITY_TOKEN}\n`);
  const ran = path.join(cluster.files, 'credential-process-ran');
  cluster.writeFile(path.join(aws, 'credentials'), `# shared credentials of the test
[default]
aws_access_key_id = AKIACREDFILETEST
aws_secret_access_key = cred-file-secret-3d9a

[session]
aws_access_key_id=ASIATESTSESSION
aws_secret_access_key=sessionsecret
aws_session_token=sessiontoken
`);
  cluster.writeFile(path.join(aws, 'config'), `[default]
region = us-east-1

[profile webid]
role_arn = ${ROLE_ARN}
web_identity_token_file = ${tokenFile}
role_session_name = profile-session

[profile process]
credential_process = /usr/bin/touch ${ran}

[profile chained]
role_arn = ${ROLE_ARN}
source_profile = default

[profile empty]
region = eu-west-1
s3 =
  max_concurrent_requests = 4
`);
  cluster.restart(envOf({ AWS_ENDPOINT_URL_STS: sts.url }));

  assert.deepEqual(await whoami(), ['shared files', 'TEST', 'f', `profile "default" in "${aws}/credentials"`]);
  assert.equal(await ambCount(), refCount);

  const useProfile = (p) => `DROP USER MAPPING IF EXISTS FOR postgres SERVER amb;
CREATE USER MAPPING FOR postgres SERVER amb OPTIONS (profile '${p}');`;
  await rows(useProfile('session'));
  assert.deepEqual(await whoami(), ['shared files', 'SION', 'f', `profile "session" in "${aws}/credentials"`]);
  assert.equal(await ambCount(), refCount);

  await rows(useProfile('webid'));
  const [source, suffix, expires, detail] = await whoami();
  assert.deepEqual([source, suffix, expires], ['shared files', 'ATE1', 't']);
  assert.equal(detail, `profile "webid" in "${aws}/config": web identity, role ${ROLE_ARN}`);
  assert.equal(await ambCount(), refCount);
  const call = sts.stats.requests[0];
  assert.equal(call.form.RoleSessionName, 'profile-session');
  assert.equal(call.form.RoleArn, ROLE_ARN);
  assert.equal(call.authorization, undefined, 'AssumeRoleWithWebIdentity is not signed');

  await rows(useProfile('process'));
  const proc = await failure('SELECT count(*) FROM amb_events;');
  assert.match(proc, /could not get AWS credentials from shared files for server "amb"/);
  assert.match(proc, /profile "process" uses credential_process, which is not run inside the database server/);
  assert.match(proc, /HINT:  Run the program outside the database server/);
  assert.equal(fs.existsSync(ran), false, 'credential_process must not run');

  await rows(useProfile('chained'));
  assert.match(await failure('SELECT count(*) FROM amb_events;'),
    /profile "chained" assumes role arn:aws:iam::123456789012:role\/events-reader with source_profile, which is not supported/);
  await rows(useProfile('empty'));
  assert.match(await failure('SELECT count(*) FROM amb_events;'), /profile "empty" has no credentials/);
  await rows(useProfile('missing'));
  assert.match(await failure('SELECT count(*) FROM amb_events;'),
    new RegExp(`no profile "missing" in "${aws}/credentials" or "${aws}/config"`));

  // a profile does not get a non-superuser past the check
  await rows(`CREATE USER MAPPING FOR app SERVER amb OPTIONS (profile 'session');`);
  assert.match(await failure('SET ROLE app; SELECT count(*) FROM amb_events;'), /no AWS credentials for role "app"/);
  await rows('DROP USER MAPPING FOR app SERVER amb; DROP USER MAPPING FOR postgres SERVER amb;');
  fs.rmSync(aws, { recursive: true, force: true });   // the later cases start without ~/.aws
});

test('shared files: AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE, AWS_PROFILE over the environment\'s keys', { timeout: TEST_TIMEOUT_MS }, async () => {
  const credFile = cluster.writeFile(path.join(cluster.files, 'custom-credentials'), `[session]
aws_access_key_id = ASIATESTSESSION
aws_secret_access_key = sessionsecret
aws_session_token = sessiontoken
`);
  cluster.restart(envOf({
    AWS_SHARED_CREDENTIALS_FILE: credFile, AWS_CONFIG_FILE: path.join(cluster.files, 'no-such-config'),
    AWS_PROFILE: 'session', AWS_ACCESS_KEY_ID: 'AKIAIGNORED', AWS_SECRET_ACCESS_KEY: 'ignored-secret-5c0e',
  }));
  assert.deepEqual(await whoami(), ['shared files', 'SION', 'f', `profile "session" in "${credFile}"`]);
  assert.equal(await ambCount(), refCount);
});

test('web identity: AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN through STS', { timeout: TEST_TIMEOUT_MS }, async () => {
  const rotator = new Rotator({ advertisedMs: 3600000 });
  const sts = await keep(await startSts(rotator, { token: WEB_IDENTITY_TOKEN }));
  const tokenFile = cluster.writeFile(path.join(cluster.files, 'web-identity-token'), WEB_IDENTITY_TOKEN);
  cluster.restart(envOf({
    AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile, AWS_ROLE_ARN: ROLE_ARN, AWS_ROLE_SESSION_NAME: 'pg-events',
    AWS_ENDPOINT_URL_STS: `${sts.url}/`,
  }));

  const [line] = await rows(`SELECT source, access_key_id_suffix, expires_at, detail
  FROM event_store_dynamo.credentials_in_use('amb');`);
  const [source, suffix, expiresAt, detail] = line.split('|');
  assert.deepEqual([source, suffix, detail], ['web identity', 'ATE1', `role ${ROLE_ARN} through ${sts.url}`]);
  assert.equal(new Date(expiresAt.replace(' ', 'T').replace(/\+00$/, 'Z')).getTime(),
    rotator.issued[0].expiration.getTime());
  assert.equal(await ambCount(), refCount);

  const call = sts.stats.requests[0];
  assert.equal(call.method, 'POST');
  assert.match(call.contentType, /^application\/x-www-form-urlencoded/);
  assert.equal(call.authorization, undefined);
  assert.deepEqual(call.form, {
    Action: 'AssumeRoleWithWebIdentity', Version: '2011-06-15', RoleArn: ROLE_ARN,
    RoleSessionName: 'pg-events', WebIdentityToken: WEB_IDENTITY_TOKEN,
  });

  // the token file is read again by every new fetch; STS refuses this one and echoes it
  cluster.writeFile(tokenFile, REJECTED_WEB_IDENTITY_TOKEN);
  const refused = await failure('SELECT count(*) FROM amb_events;');
  assert.match(refused, /could not get AWS credentials from web identity for server "amb"/);
  assert.match(refused, /InvalidIdentityToken: The web identity token \(redacted\) is not valid/);

  // an STS that never answers: statement_timeout still ends the wait
  cluster.restart(envOf({
    AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile, AWS_ROLE_ARN: ROLE_ARN, AWS_ENDPOINT_URL_STS: process.env.DDB_HANG_URL,
  }));
  // (within 3 s of what pg_sleep takes to stop the same way, measured just before so that a
  // loaded machine slows both alike; an STS request itself would wait 10 s)
  const s0 = Date.now();
  assert.match(await failure(`SET statement_timeout = '1s'; SELECT pg_sleep(60);`),
    /ERROR:  57014: canceling statement due to statement timeout/);
  const sleepMs = Date.now() - s0;
  const t0 = Date.now();
  assert.match(await failure(`SET statement_timeout = '1s'; SELECT count(*) FROM amb_events;`),
    /ERROR:  57014: canceling statement due to statement timeout/);
  const ms = Date.now() - t0;
  assert.ok(ms < sleepMs + 3000, `the cancel took ${ms} ms, pg_sleep's ${sleepMs} ms`);
});

test('container endpoint: FULL_URI with an authorization token; a wrong token, a disallowed host', { timeout: TEST_TIMEOUT_MS }, async () => {
  const rotator = new Rotator();
  const ecs = await keep(await startContainer(rotator, { token: CONTAINER_TOKEN }));
  const tokenFile = cluster.writeFile(path.join(cluster.files, 'eks-pod-identity-token'), `${CONTAINER_TOKEN}\n`);
  cluster.restart(envOf({
    AWS_CONTAINER_CREDENTIALS_FULL_URI: ecs.fullUri, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: tokenFile,
  }));
  assert.deepEqual(await whoami(), ['container endpoint', 'ATE1', 't', ecs.fullUri]);
  assert.equal(await ambCount(), refCount);
  assert.deepEqual([...new Set(ecs.stats.authorizations)], [CONTAINER_TOKEN]);

  cluster.restart(envOf({
    AWS_CONTAINER_CREDENTIALS_FULL_URI: ecs.fullUri, AWS_CONTAINER_AUTHORIZATION_TOKEN: WRONG_CONTAINER_TOKEN,
  }));
  const refused = await failure('SELECT count(*) FROM amb_events;');
  assert.match(refused, /could not get AWS credentials from container endpoint for server "amb"/);
  assert.match(refused, /answered HTTP 401: .*authorization \(redacted\) is not valid/);

  const before = ecs.stats.gets;
  cluster.restart(envOf({ AWS_CONTAINER_CREDENTIALS_FULL_URI: 'http://192.0.2.10/v2/credentials' }));
  assert.match(await failure('SELECT count(*) FROM amb_events;'),
    /AWS_CONTAINER_CREDENTIALS_FULL_URI "http:\/\/192\.0\.2\.10\/v2\/credentials" is not allowed/);
  assert.equal(ecs.stats.gets, before);

  // the ECS form: a path on 169.254.170.2 (not reachable here, or not with this path)
  cluster.restart(envOf({ AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: '/v2/credentials/rel-5d1c' }));
  assert.match(await failure('SELECT count(*) FROM amb_events;'),
    /the container endpoint http:\/\/169\.254\.170\.2\/v2\/credentials\/rel-5d1c (did not answer|answered HTTP)/);
});

test('instance metadata: IMDSv2 token first; AWS_EC2_METADATA_DISABLED; nothing found', { timeout: TEST_TIMEOUT_MS }, async () => {
  const rotator = new Rotator();
  const imds = await keep(await startImds(rotator));
  cluster.restart({ AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url });
  assert.deepEqual(await whoami(), ['instance metadata', 'ATE1', 't', `role "events-reader-role" at ${imds.url}`]);
  assert.equal(await ambCount(), refCount);
  assert.equal(imds.stats.unauthorized, 0, 'every GET carried the session token');
  assert.match(imds.stats.log[0], /^PUT \/latest\/api\/token/);
  assert.ok(imds.stats.log.every((l) => l.startsWith('PUT') || l.endsWith('(token)')), imds.stats.log.join('\n'));

  const seen = imds.stats.log.length;
  cluster.restart({ AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url, AWS_EC2_METADATA_DISABLED: 'true' });
  const none = await failure('SELECT count(*) FROM amb_events;');
  assert.match(none, /ERROR:  28000: no AWS credentials found for server "amb"/);
  assert.match(none, /DETAIL:  Looked in order at: environment: AWS_ACCESS_KEY_ID is not set; shared files: no profile "default" in .*; web identity: AWS_WEB_IDENTITY_TOKEN_FILE is not set; container endpoint: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and AWS_CONTAINER_CREDENTIALS_FULL_URI are not set; instance metadata: AWS_EC2_METADATA_DISABLED is true\./);
  assert.equal(imds.stats.log.length, seen, 'no request to a disabled metadata service');

  const closed = await keep(await startImds(rotator));
  await closed.close();
  cluster.restart({ AWS_EC2_METADATA_SERVICE_ENDPOINT: closed.url });
  assert.match(await failure('SELECT count(*) FROM amb_events;'),
    new RegExp(`instance metadata: no instance metadata service answered at ${closed.url}`));
});

/*
 * A server and a foreign table over the INTEROP store through a gate, in pages of 25 events: its
 * 4,000 events of 2024-06 alone take 160 Query pages, which no reader can fetch but one after the
 * other, so with the gate's delay a replay lasts seconds whatever else the scan does in parallel.
 */
const GATE_DELAY_MS = 25;
async function gateTable(gate) {
  await rows(`DROP SERVER IF EXISTS gate_srv CASCADE;
CREATE SERVER gate_srv FOREIGN DATA WRAPPER event_store_dynamo
  OPTIONS (endpoint '${gate.url}', s3_endpoint '${S3_URL}', s3_force_path_style 'true');
CREATE FOREIGN TABLE gate_events (id text, created timestamptz) SERVER gate_srv
  OPTIONS (table_name_prefix 'interop-', s3_bucket 'interop-events', page_size '25');`);
}

test('expiry: credentials are renewed ahead of time during a long replay', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const lifetimeMs = 1000;
  const rotator = new Rotator({ advertisedMs: lifetimeMs });
  const imds = await keep(await startImds(rotator));
  const gate = await keep(await startGate(rotator, DDB_URL, { delayMs: GATE_DELAY_MS }));
  cluster.restart({ AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url });
  await gateTable(gate);

  const [counts] = await rows('SELECT count(*), count(DISTINCT id) FROM gate_events;');
  t.diagnostic(`replay ${gate.stats.lastAt - gate.stats.firstAt} ms, ${gate.stats.requests} requests, ` +
    `${rotator.issued.length} credentials, by key ${JSON.stringify(gate.stats.byKey)}`);
  assert.equal(counts, `${INTEROP_EVENTS}|${INTEROP_EVENTS}`);
  assert.ok(gate.stats.lastAt - gate.stats.firstAt > 2 * lifetimeMs,
    `the replay outlived its first credentials (${gate.stats.lastAt - gate.stats.firstAt} ms)`);
  assert.equal(gate.stats.expiredAnswers, 0, 'no request was signed with expired credentials');
  const used = Object.keys(gate.stats.byKey).filter((k) => k.startsWith('ASIAROTATE'));
  assert.ok(used.length >= 3, `keys used: ${JSON.stringify(gate.stats.byKey)}`);
  assert.ok(rotator.issued.length >= 3, `credentials fetched: ${rotator.issued.length}`);
});

test('expiry: an ExpiredTokenException forces one refresh and one retry; the replay goes on', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  // advertised for an hour, but the gate drops each key after a second
  const rotator = new Rotator({ advertisedMs: 3600000, validMs: 1000 });
  const imds = await keep(await startImds(rotator));
  const gate = await keep(await startGate(rotator, DDB_URL, { delayMs: GATE_DELAY_MS }));
  cluster.restart({ AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url });
  await gateTable(gate);

  const [counts] = await rows('SELECT count(*), count(DISTINCT id) FROM gate_events;');
  t.diagnostic(`replay ${gate.stats.lastAt - gate.stats.firstAt} ms, ${gate.stats.requests} requests, ` +
    `${gate.stats.expiredAnswers} expired answers, ${rotator.issued.length} credentials`);
  assert.equal(counts, `${INTEROP_EVENTS}|${INTEROP_EVENTS}`);
  assert.ok(gate.stats.expiredAnswers >= 2, `expired answers: ${gate.stats.expiredAnswers}`);
  assert.ok(rotator.issued.length >= 3, `credentials fetched: ${rotator.issued.length}`);
  // every fetch after the first was caused by an expired answer
  assert.ok(rotator.issued.length - 1 <= gate.stats.expiredAnswers,
    `${rotator.issued.length} fetches for ${gate.stats.expiredAnswers} expired answers`);
});

test('expiry: a source that keeps handing out an expired key fails after one refresh', { timeout: TEST_TIMEOUT_MS }, async () => {
  const rotator = new Rotator({ stuck: true });
  const imds = await keep(await startImds(rotator));
  const gate = await keep(await startGate(rotator, DDB_URL));
  cluster.restart({ AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url });
  await gateTable(gate);

  const err = await failure('SELECT count(*) FROM gate_events;');
  assert.match(err, /DynamoDB \w+ on table "interop-schemeless-event-store" failed: ExpiredTokenException/);
  assert.match(err, /DETAIL:  The security token included in the request is expired \(HTTP status 400, 2 attempts\)/);
  assert.match(err, /HINT:  The credentials came from the instance metadata \(role "events-reader-role" at /);
  assert.equal(imds.stats.credentialGets, 2, 'fetched once, refreshed once');
  assert.equal(gate.stats.requests, 2);
});

test('refresh failure: a warning while the credentials are valid, an error once they expire', { timeout: TEST_TIMEOUT_MS }, async () => {
  // credentials for 4 to 5 s (whole seconds, rounded up): renewal due after 2 to 2.5 s; the
  // metadata service fails after the first. The second query falls between renewal and expiry,
  // the third after expiry, each with half a second to spare.
  const rotator = new Rotator({ advertisedMs: 4000 });
  const imds = await keep(await startImds(rotator, { failAfter: 1 }));
  cluster.restart({ AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url });
  const r = await sql(`SELECT count(*) FROM amb_events;
SELECT pg_sleep(3);
SELECT count(*) FROM amb_events;
SELECT pg_sleep(2.5);
SELECT count(*) FROM amb_events;`);
  assert.notEqual(r.code, 0);
  assert.deepEqual(r.stdout.split('\n').filter(Boolean), [String(refCount), String(refCount)]);
  assert.match(r.stderr, /WARNING:  01000: could not refresh the AWS credentials from role "events-reader-role" at /);
  assert.match(r.stderr, /DETAIL:  the instance metadata service at .* answered HTTP 503 for role "events-reader-role"/);
  assert.match(r.stderr, /HINT:  The current credentials stay in use until they expire at /);
  assert.match(r.stderr, /ERROR:  28000: could not refresh the AWS credentials from role "events-reader-role"/);
  assert.ok(r.stderr.indexOf('WARNING') < r.stderr.indexOf('ERROR'));
});

test('no secret in the server log or in anything a client was told', { timeout: TEST_TIMEOUT_MS }, async () => {
  cluster.stop();
  const logs = cluster.allLogs();
  const said = clientOutput.join('');
  // the logs hold the errors above, so the check is not vacuous
  for (const expected of [/no AWS credentials for role "app" on server "amb"/,
    /could not refresh the AWS credentials/, /\(redacted\)/])
    assert.ok(expected.test(logs), `the server log lacks ${expected}`);
  for (const secret of SECRETS) {
    assert.equal(logs.includes(secret), false, `the server log shows a secret (${secret.slice(0, 6)}...)`);
    assert.equal(said.includes(secret), false, `a client was shown a secret (${secret.slice(0, 6)}...)`);
  }
});
