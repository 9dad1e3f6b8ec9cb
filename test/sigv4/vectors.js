#!/usr/bin/env node
// Cross-checks the C SigV4 signer (src/sigv4.c, run through
// test/sigv4/sigv4_check) against the AWS SDK's own signer
// (@smithy/signature-v4 with @aws-crypto/sha256-js).
//
// It generates requests with a seeded PRNG -- every method, the services the
// extension talks to, paths and query strings full of characters that need
// encoding, headers in mixed case with untidy whitespace and repeated names,
// bodies from empty to 1 MB, with and without session tokens, S3 unsigned
// payloads -- plus requests AWS published with their expected signatures.
// Each request is signed by both sides; the Authorization headers and the
// canonical requests must be identical.  Mismatches are printed with both
// canonical requests; the last line is "sigv4: N passed, N failed" and the
// exit status is non-zero on any failure.
//
// Usage: node test/sigv4/vectors.js [--count N] [--seed S] [--bin PATH]
// (build the program first with test/sigv4/build.sh).

'use strict';

const crypto = require('node:crypto');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { SignatureV4, getCanonicalHeaders, getPayloadHash } = require('@smithy/signature-v4');
const { HttpRequest, escapeUriPath } = require('@smithy/core/protocols');
const { Sha256 } = require('@aws-crypto/sha256-js');

const MAX_REPORTED = 10;

function parseArgs(argv) {
  const opts = { count: 500, seed: 20240229, bin: path.join(__dirname, 'sigv4_check') };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--count') opts.count = Number(argv[++i]);
    else if (arg === '--seed') opts.seed = Number(argv[++i]);
    else if (arg === '--bin') opts.bin = argv[++i];
    else throw new Error(`unknown argument ${arg}`);
  }
  if (!Number.isInteger(opts.count) || opts.count < 0) throw new Error('--count must be a non-negative integer');
  return opts;
}

// mulberry32: small, fast, and the same sequence on every run for a seed.
function makeRandom(seed) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n) => Math.floor(next() * n);
  return {
    next,
    int,
    chance: (p) => next() < p,
    pick: (list) => list[int(list.length)],
    string: (alphabet, len) => {
      let s = '';
      for (let i = 0; i < len; i++) s += alphabet[int(alphabet.length)];
      return s;
    },
    bytes: (len) => {
      const buf = Buffer.allocUnsafe(len);
      for (let i = 0; i < len; i++) buf[i] = int(256);
      return buf;
    },
  };
}

const utc = (iso) => Date.parse(iso) / 1000;

const METHODS = ['GET', 'PUT', 'POST', 'DELETE', 'HEAD'];
const SERVICES = ['dynamodb', 's3', 'sts'];
const REGIONS = ['us-east-1', 'eu-west-1', 'ap-southeast-2', 'us-gov-west-1', 'cn-north-1', 'eu-central-1', 'local'];
const TIMES = [
  utc('2015-08-30T12:36:00Z'),
  utc('1970-01-01T00:00:00Z'),
  utc('1999-12-31T23:59:59Z'),
  utc('2000-01-01T00:00:00Z'),
  utc('2024-02-29T23:59:59Z'),
  utc('2038-01-19T03:14:08Z'),
  utc('2026-12-31T23:59:59Z'),
];
const PATH_SEGMENTS = [
  'bucket', 'events', 'my bucket', 'ü.json', '日本語', '😀', 'a+b', 'a=b&c', "!*'()", '@:$,;',
  '~user', '%41', '100%', '..', '.', '', '[x]', '#frag?', 'a"b', 'tab\there', 'v1.2_3-4',
  'stream#0001', 'ÆØÅ', 'é', '\u00a0nbsp',
];
const QUERY_NAMES = [
  'Action', 'Version', 'a', 'a-', 'a.', 'A', 'b', '', 'x y', 'ü', 'k=v', '&', '+', '%', 'list-type',
  'prefix', 'max-keys', 'continuation-token', '~tilde', '*', 'uploads', 'partNumber',
];
const QUERY_VALUES = [
  '', '1', '2', 'a b', 'a+b', 'ü', '😀', '=', '&', '/', 'x/y/z', '%20', '~', "!'()*", 'Zoo', 'aha',
  'AAAA', 'events/2024-02-29/', 'null', '日本',
];
const HEADER_NAMES = [
  'content-type', 'x-amz-target', 'x-amz-meta-a', 'x-amz-meta-a-b', 'x-amz-meta-ab', 'x-amz-grant-read',
  'x-amz-grant-read-acp', 'range', 'content-md5', 'if-match', 'accept', 'accept-encoding',
  'content-length', 'my-header1', 'x-amz-server-side-encryption-customer-key',
  'x-amz-server-side-encryption-customer-key-md5', 'x-amz-copy-source', 'amz-sdk-invocation-id',
  'amz-sdk-request', 'content-encoding', 'x-amz-api-version',
];
const HEADER_VALUES = [
  'application/x-amz-json-1.0', 'DynamoDB_20120810.Query', '  leading', 'trailing  ', ' both ',
  'a   b\t\tc', '\tx\t', '', '   ', 'a,b', '"quoted  value"', 'ünï', 'bytes=0-9', 'attempt=1; max=3',
  'gzip, deflate', '1048576', 'x\t \ty',
];
const HOSTS = {
  dynamodb: ['dynamodb.us-east-1.amazonaws.com', '127.0.0.1:8000', 'localhost:41234'],
  s3: ['bucket.s3.eu-west-1.amazonaws.com', '127.0.0.1:4569', 's3.amazonaws.com'],
  sts: ['sts.amazonaws.com', 'sts.eu-west-1.amazonaws.com', '127.0.0.1:9000'],
};
const KEY_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const SECRET_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

function randomCase(rnd, name) {
  switch (rnd.int(4)) {
    case 0: return name;
    case 1: return name.toUpperCase();
    case 2: return name.replace(/(^|-)([a-z])/g, (m, dash, c) => dash + c.toUpperCase());
    default: return [...name].map((c) => (rnd.chance(0.5) ? c.toUpperCase() : c)).join('');
  }
}

function randomPath(rnd) {
  if (rnd.chance(0.05)) return '';
  if (rnd.chance(0.1)) return '/';
  const segments = [];
  const n = 1 + rnd.int(5);
  for (let i = 0; i < n; i++) segments.push(rnd.pick(PATH_SEGMENTS));
  let p = segments.join('/');
  if (rnd.chance(0.9)) p = '/' + p;
  if (rnd.chance(0.2)) p += '/';
  if (rnd.chance(0.1)) p = p.replace('/', '//');
  return p;
}

function randomQuery(rnd) {
  const query = [];
  if (rnd.chance(0.3)) return query;
  const n = 1 + rnd.int(6);
  // a small name pool per request makes repeated names common
  const names = [rnd.pick(QUERY_NAMES), rnd.pick(QUERY_NAMES), rnd.pick(QUERY_NAMES)];
  for (let i = 0; i < n; i++) {
    const value = rnd.chance(0.1) ? rnd.string(SECRET_ALPHABET + ' %=&', 1 + rnd.int(40)) : rnd.pick(QUERY_VALUES);
    query.push([rnd.pick(names), value]);
  }
  return query;
}

function randomHeaders(rnd, service) {
  const headers = [[randomCase(rnd, 'host'), rnd.pick(HOSTS[service])]];
  const n = rnd.int(6);
  for (let i = 0; i < n; i++) {
    const name = rnd.pick(HEADER_NAMES);
    const value = rnd.chance(0.1) ? rnd.string(SECRET_ALPHABET + ' \t', rnd.int(30)) : rnd.pick(HEADER_VALUES);
    headers.push([randomCase(rnd, name), value]);
    // the same header again, in another case, with another value
    if (rnd.chance(0.2)) headers.push([randomCase(rnd, name), rnd.pick(HEADER_VALUES)]);
  }
  // shuffle: the signer must sort
  for (let i = headers.length - 1; i > 0; i--) {
    const j = rnd.int(i + 1);
    [headers[i], headers[j]] = [headers[j], headers[i]];
  }
  return headers;
}

function randomBody(rnd, index) {
  if (index % 50 === 49) return rnd.bytes(1024 * 1024);
  const kind = rnd.int(10);
  if (kind < 3) return undefined;
  if (kind < 4) return Buffer.alloc(0);
  if (kind < 7) {
    return JSON.stringify({
      TableName: 'events',
      KeyConditionExpression: 'bucket = :b',
      ExpressionAttributeValues: { ':b': { S: `stream-${rnd.int(1000)} ü 😀` } },
      Limit: rnd.int(1000),
    });
  }
  return rnd.bytes(rnd.int(4096));
}

function randomVector(rnd, index) {
  const service = rnd.pick(SERVICES);
  return {
    id: `random-${index}`,
    method: rnd.pick(METHODS),
    path: randomPath(rnd),
    query: randomQuery(rnd),
    headers: randomHeaders(rnd, service),
    body: randomBody(rnd, index),
    region: rnd.pick(REGIONS),
    service,
    accessKeyId: 'AKIA' + rnd.string(KEY_ALPHABET, 16),
    secretAccessKey: rnd.string(SECRET_ALPHABET, 40),
    sessionToken: rnd.chance(0.4) ? rnd.string(SECRET_ALPHABET + '=', 100 + rnd.int(300)) : null,
    time: rnd.pick(TIMES),
    unsignedPayload: service === 's3' && rnd.chance(0.3),
  };
}

// Requests AWS documents together with the signature they must produce.
function publishedVectors() {
  const suite = {
    method: 'GET',
    query: [],
    body: undefined,
    region: 'us-east-1',
    service: 'service',
    accessKeyId: 'AKIDEXAMPLE',
    secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
    sessionToken: null,
    time: utc('2015-08-30T12:36:00Z'),
    unsignedPayload: false,
  };
  return [
    {
      // the IAM ListUsers example of the SigV4 documentation
      ...suite,
      id: 'aws-doc-iam-list-users',
      path: '/',
      query: [['Action', 'ListUsers'], ['Version', '2010-05-08']],
      headers: [['Host', 'iam.amazonaws.com'], ['Content-Type', 'application/x-www-form-urlencoded; charset=utf-8']],
      service: 'iam',
      expect: {
        canonicalRequestSha256: 'f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59',
        signature: '5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7',
      },
    },
    {
      // the S3 "GET Object" example (single-chunk payload signing)
      ...suite,
      id: 'aws-doc-s3-get-object',
      path: '/test.txt',
      headers: [['Host', 'examplebucket.s3.amazonaws.com'], ['Range', 'bytes=0-9']],
      service: 's3',
      accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
      secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
      time: utc('2013-05-24T00:00:00Z'),
      expect: {
        canonicalRequest: [
          'GET', '/test.txt', '',
          'host:examplebucket.s3.amazonaws.com', 'range:bytes=0-9',
          'x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
          'x-amz-date:20130524T000000Z', '',
          'host;range;x-amz-content-sha256;x-amz-date',
          'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
        ].join('\n'),
        canonicalRequestSha256: '7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972',
        signature: 'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
      },
    },
    {
      // the SigV4 test suite: get-vanilla
      ...suite,
      id: 'aws-suite-get-vanilla',
      path: '/',
      headers: [['Host', 'example.amazonaws.com']],
      expect: { signature: '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31' },
    },
    {
      // the SigV4 test suite: normalize-path/get-slashes
      ...suite,
      id: 'aws-suite-get-slashes',
      path: '//example//',
      headers: [['Host', 'example.amazonaws.com']],
      expect: { signature: '9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84' },
    },
    {
      // the SigV4 test suite: normalize-path/get-slash-pointless-dot
      ...suite,
      id: 'aws-suite-get-slash-pointless-dot',
      path: '/./example',
      headers: [['Host', 'example.amazonaws.com']],
      expect: { signature: 'ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5' },
    },
    {
      // the SigV4 test suite: get-header-value-order (canonical request published)
      ...suite,
      id: 'aws-suite-get-header-value-order',
      path: '/',
      headers: [
        ['Host', 'example.amazonaws.com'],
        ['My-Header1', 'value4'], ['My-Header1', 'value1'], ['My-Header1', 'value3'], ['My-Header1', 'value2'],
      ],
      expect: {
        canonicalRequest: [
          'GET', '/', '',
          'host:example.amazonaws.com', 'my-header1:value4,value1,value3,value2',
          'x-amz-date:20150830T123600Z', '',
          'host;my-header1;x-amz-date',
          'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
        ].join('\n'),
      },
    },
  ];
}

function bodyBytes(body) {
  if (body === undefined) return Buffer.alloc(0);
  return typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
}

// The request as the C program reads it (one JSON line).
function toCLine(v) {
  return JSON.stringify({
    id: v.id,
    method: v.method,
    path: v.path,
    query: v.query,
    headers: v.headers,
    body_b64: bodyBytes(v.body).toString('base64'),
    region: v.region,
    service: v.service,
    access_key_id: v.accessKeyId,
    secret_access_key: v.secretAccessKey,
    session_token: v.sessionToken,
    time: v.time,
    unsigned_payload: v.unsignedPayload,
  });
}

// The SDK's header trimming, for joining repeated headers the way the
// SigV4 specification says (each value trimmed, then joined with ',').
const foldValue = (value) => value.replace(/[\r\n]/g, ' ').replace(/[ \t]+/g, ' ').replace(/^ | $/g, '');

// The request as the SDK sees it: the path percent-encoded as the S3 client
// and the HTTP layer put it on the wire, repeated query names as arrays,
// repeated headers folded into one (an HTTP request object holds one value
// per name).
function toSdkRequest(v) {
  const query = {};
  for (const [name, value] of v.query) {
    if (!Object.prototype.hasOwnProperty.call(query, name)) query[name] = value;
    else if (Array.isArray(query[name])) query[name].push(value);
    else query[name] = [query[name], value];
  }
  const groups = new Map();
  for (const [name, value] of v.headers) {
    const key = name.toLowerCase();
    if (!groups.has(key)) groups.set(key, { name, values: [] });
    groups.get(key).values.push(value);
  }
  const headers = {};
  for (const { name, values } of groups.values()) {
    headers[name] = values.length === 1 ? values[0] : values.map(foldValue).join(',');
  }
  if (v.unsignedPayload) headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
  const host = v.headers.find(([name]) => name.toLowerCase() === 'host')[1];
  return new HttpRequest({
    method: v.method,
    protocol: 'https:',
    hostname: host.split(':')[0],
    path: escapeUriPath(v.path),
    query,
    headers,
    body: v.body,
  });
}

async function signWithSdk(v) {
  const isS3 = v.service === 's3';
  const signer = new SignatureV4({
    service: v.service,
    region: v.region,
    sha256: Sha256,
    credentials: {
      accessKeyId: v.accessKeyId,
      secretAccessKey: v.secretAccessKey,
      ...(v.sessionToken ? { sessionToken: v.sessionToken } : {}),
    },
    // as the SDK's clients configure it: S3 signs the path as sent and the
    // payload hash header; the others encode the path again and do not
    applyChecksum: isS3,
    uriEscapePath: !isS3,
  });
  const signed = await signer.sign(toSdkRequest(v), { signingDate: new Date(v.time * 1000) });
  // Recompute the canonical request the signer used, for comparison and
  // diagnostics, from the signed request (Authorization is never signed).
  const canonicalRequest = signer.createCanonicalRequest(
    signed,
    getCanonicalHeaders(signed),
    await getPayloadHash(signed, Sha256),
  );
  return { authorization: signed.headers.authorization, amzDate: signed.headers['x-amz-date'], canonicalRequest };
}

function sha256Hex(text) {
  return crypto.createHash('sha256').update(text, 'utf8').digest('hex');
}

function runC(bin, vectors) {
  const input = vectors.map(toCLine).join('\n') + '\n';
  const run = spawnSync(bin, [], { input, maxBuffer: 1 << 30, encoding: 'utf8', timeout: 120000 });
  if (run.error) throw new Error(`could not run ${bin}: ${run.error.message} (build it with test/sigv4/build.sh)`);
  if (run.status !== 0) throw new Error(`${bin} exited with status ${run.status}: ${run.stderr}`);
  const lines = run.stdout.split('\n').filter((line) => line.length > 0);
  if (lines.length !== vectors.length) {
    throw new Error(`${bin} answered ${lines.length} lines for ${vectors.length} requests`);
  }
  return lines.map((line) => JSON.parse(line));
}

async function check(v, c) {
  const problems = [];
  const sdk = await signWithSdk(v);
  if (c.id !== v.id) problems.push(`answer is for ${c.id}`);
  if (c.authorization !== sdk.authorization) problems.push('Authorization differs from the SDK');
  if (c.canonical_request !== sdk.canonicalRequest) problems.push('canonical request differs from the SDK');
  if (c.amz_date !== sdk.amzDate) problems.push(`x-amz-date ${c.amz_date}, SDK ${sdk.amzDate}`);
  if (c.encoded_path !== escapeUriPath(v.path)) {
    problems.push(`encoded path ${c.encoded_path}, SDK ${escapeUriPath(v.path)}`);
  }
  if (v.expect) {
    const signature = c.authorization.replace(/^.*Signature=/, '');
    if (v.expect.signature && signature !== v.expect.signature) {
      problems.push(`signature ${signature}, published ${v.expect.signature}`);
    }
    if (v.expect.canonicalRequest && c.canonical_request !== v.expect.canonicalRequest) {
      problems.push('canonical request differs from the published one');
    }
    if (v.expect.canonicalRequestSha256 && sha256Hex(c.canonical_request) !== v.expect.canonicalRequestSha256) {
      problems.push('canonical request hash differs from the published one');
    }
  }
  return { problems, sdk };
}

function describe(v) {
  const body = bodyBytes(v.body);
  return JSON.stringify({
    method: v.method,
    path: v.path,
    query: v.query,
    headers: v.headers,
    body: `${body.length} bytes`,
    service: v.service,
    region: v.region,
    sessionToken: v.sessionToken ? 'yes' : 'no',
    unsignedPayload: v.unsignedPayload,
  });
}

function coverage(vectors) {
  const random = vectors.filter((v) => !v.expect);
  const count = (pred) => random.filter(pred).length;
  const lower = (v) => v.headers.map(([n]) => n.toLowerCase());
  return {
    ...Object.fromEntries(METHODS.map((m) => [m, count((v) => v.method === m)])),
    ...Object.fromEntries(SERVICES.map((s) => [s, count((v) => v.service === s)])),
    'session token': count((v) => v.sessionToken),
    'unsigned payload': count((v) => v.unsignedPayload),
    '1 MB body': count((v) => bodyBytes(v.body).length === 1024 * 1024),
    'empty body': count((v) => bodyBytes(v.body).length === 0),
    'repeated header': count((v) => new Set(lower(v)).size !== v.headers.length),
    'repeated query name': count((v) => new Set(v.query.map(([n]) => n)).size !== v.query.length),
    'empty query value': count((v) => v.query.some(([, value]) => value === '')),
    'double slash': count((v) => v.path.includes('//')),
    'dot segment': count((v) => /(^|\/)\.\.?(\/|$)/.test(v.path)),
    'non-ASCII path': count((v) => /[^\x00-\x7f]/.test(v.path)),
    'no leading slash': count((v) => v.path !== '' && !v.path.startsWith('/')),
    'empty path': count((v) => v.path === ''),
  };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const rnd = makeRandom(opts.seed);
  const vectors = publishedVectors();
  for (let i = 0; i < opts.count; i++) vectors.push(randomVector(rnd, i));

  const answers = runC(opts.bin, vectors);
  let passed = 0;
  let failed = 0;
  for (let i = 0; i < vectors.length; i++) {
    const v = vectors[i];
    const c = answers[i];
    const { problems, sdk } = await check(v, c);
    if (problems.length === 0) {
      passed++;
      continue;
    }
    failed++;
    if (failed > MAX_REPORTED) continue;
    console.log(`FAIL ${v.id}: ${problems.join('; ')}`);
    console.log(`  request: ${describe(v)}`);
    console.log(`  C:   ${c.authorization}`);
    console.log(`  SDK: ${sdk.authorization}`);
    console.log('  --- canonical request (C) ---');
    console.log(c.canonical_request.replace(/^/gm, '  | '));
    console.log('  --- canonical request (SDK) ---');
    console.log(sdk.canonicalRequest.replace(/^/gm, '  | '));
  }
  if (failed > MAX_REPORTED) console.log(`(${failed - MAX_REPORTED} more failures not shown)`);

  const cov = coverage(vectors);
  console.log(`seed ${opts.seed}; coverage of ${opts.count} random requests: ` +
    Object.entries(cov).map(([k, n]) => `${k} ${n}`).join(', '));
  if (opts.count >= 200) {
    for (const [k, n] of Object.entries(cov)) {
      if (n === 0) {
        console.log(`FAIL coverage: no random request has ${k}`);
        failed++;
      }
    }
  }
  console.log(`sigv4: ${passed} passed, ${failed} failed`);
  process.exitCode = failed === 0 ? 0 : 1;
}

main().catch((err) => {
  console.error(err.stack || String(err));
  process.exitCode = 2;
});
