// Loopback stand-ins for the places AWS credentials come from, for test/credentials/run.js:
//   - an EC2 instance metadata service that speaks IMDSv2 only (PUT a session token, then GET the
//     role and its credentials with that token),
//   - an ECS / EKS Pod Identity container credentials endpoint that checks the Authorization header,
//   - STS AssumeRoleWithWebIdentity (form-encoded POST in, XML out),
//   - a "gate" in front of the stack's DynamoDB front that answers ExpiredTokenException for keys
//     whose time is up and forwards everything else unchanged.
// The first three hand out keys from a Rotator, which cycles through keys the stack knows
// (test/stack/sigv4.js KEYS: ASIAROTATE1..4) and tells the gate when each one stops being valid.
// Every stand-in listens on 127.0.0.1, on a port the OS picks, counts what it saw, and can be told
// to fail. Nothing here is a secret: the keys are the stack's test keys.
'use strict';

const http = require('http');
const crypto = require('crypto');
const { KEYS } = require('../stack/sigv4');

const ROTATING = ['ASIAROTATE1', 'ASIAROTATE2', 'ASIAROTATE3', 'ASIAROTATE4'];

/*
 * Hands out temporary credentials. `advertisedMs`: the lifetime written in Expiration;
 * `validMs`: how long the gate accepts the key (the "real" lifetime, default the advertised one);
 * `stuck`: always the same key, already invalid at the gate (a source that never renews).
 */
class Rotator {
  constructor({ advertisedMs = 3600000, validMs, stuck = false } = {}) {
    this.advertisedMs = advertisedMs;
    this.validMs = validMs === undefined ? advertisedMs : validMs;
    this.stuck = stuck;
    this.next = 0;
    this.issued = [];              // { key, at, expiration, validUntil }
    this.validUntil = new Map();   // key -> ms since epoch
  }

  issue() {
    const now = Date.now();
    const key = this.stuck ? ROTATING[0] : ROTATING[this.next++ % ROTATING.length];
    // AWS writes expirations in whole seconds: round up, so that no key lives less than promised
    const expiration = new Date(Math.ceil((now + this.advertisedMs) / 1000) * 1000);
    const validUntil = this.stuck ? 0
      : this.validMs === this.advertisedMs ? expiration.getTime() : now + this.validMs;
    this.validUntil.set(key, validUntil);
    this.issued.push({ key, at: now, expiration, validUntil });
    return {
      AccessKeyId: key,
      SecretAccessKey: KEYS[key].secret,
      Token: KEYS[key].token,
      Expiration: expiration.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    };
  }

  /* Whether the gate must refuse this key now; keys the rotator never issued pass. */
  expired(key) {
    return this.validUntil.has(key) && Date.now() > this.validUntil.get(key);
  }
}

/* Every secret a rotator can hand out, for the log check. */
function rotatingSecrets() {
  return ROTATING.flatMap((k) => [KEYS[k].secret, KEYS[k].token]);
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

function send(res, status, type, body) {
  const buf = Buffer.from(body);
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': String(buf.length) });
  res.end(buf);
}

/* Starts an http server on loopback; returns { url, port, close }. */
async function serve(handler) {
  const sockets = new Set();
  const server = http.createServer((req, res) => {
    handler(req, res).catch((e) => {
      if (!res.headersSent) send(res, 500, 'text/plain', `stand-in error: ${e.message}`);
      else res.destroy();
    });
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  const port = await listen(server);
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

/*
 * IMDSv2. PUT /latest/api/token (with X-aws-ec2-metadata-token-ttl-seconds) gives a session
 * token; GET /latest/meta-data/iam/security-credentials/ the role name and
 * GET .../<role> its credentials, both only with a valid X-aws-ec2-metadata-token (401
 * otherwise, as when IMDSv1 is disabled). After `failAfter` credentials handed out, credential
 * GETs are answered 503 (a metadata service in trouble).
 */
async function startImds(rotator, { role = 'events-reader-role', failAfter = Infinity } = {}) {
  const tokens = new Set();
  const stats = { tokenPuts: 0, roleGets: 0, credentialGets: 0, issued: 0, unauthorized: 0, log: [] };
  const s = await serve(async (req, res) => {
    await readBody(req);
    const token = req.headers['x-aws-ec2-metadata-token'];
    stats.log.push(`${req.method} ${req.url}${token ? ' (token)' : ''}`);
    if (req.method === 'PUT' && req.url === '/latest/api/token') {
      const ttl = Number(req.headers['x-aws-ec2-metadata-token-ttl-seconds']);
      if (!(ttl >= 1 && ttl <= 21600)) return send(res, 400, 'text/plain', 'bad ttl');
      stats.tokenPuts++;
      const t = `imds-session-${crypto.randomBytes(12).toString('hex')}`;
      tokens.add(t);
      return send(res, 200, 'text/plain', t);
    }
    if (req.method !== 'GET') return send(res, 405, 'text/plain', 'method not allowed');
    if (!tokens.has(token)) {
      stats.unauthorized++;
      return send(res, 401, 'text/plain', 'Unauthorized');
    }
    const base = '/latest/meta-data/iam/security-credentials/';
    if (req.url === base) {
      stats.roleGets++;
      return send(res, 200, 'text/plain', role);
    }
    if (req.url === base + role) {
      stats.credentialGets++;
      if (stats.issued >= failAfter) return send(res, 503, 'text/plain', 'Service Unavailable');
      stats.issued++;
      const c = rotator.issue();
      return send(res, 200, 'text/plain', JSON.stringify({
        Code: 'Success', LastUpdated: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
        Type: 'AWS-HMAC', ...c,
      }, null, 2));
    }
    return send(res, 404, 'text/plain', 'Not Found');
  });
  return { ...s, stats, role };
}

/*
 * The container credentials endpoint: GET <path> with Authorization: <token>. A wrong token is
 * answered 401 with a message that echoes it, as a careless endpoint might: the extension must not
 * pass it on.
 */
async function startContainer(rotator, { token, path = '/v2/credentials/3c1f7d2e' }) {
  const stats = { gets: 0, authorized: 0, authorizations: [] };
  const s = await serve(async (req, res) => {
    await readBody(req);
    stats.gets++;
    const auth = req.headers.authorization;
    stats.authorizations.push(auth === undefined ? null : auth);
    if (req.method !== 'GET' || req.url !== path) return send(res, 404, 'application/json', '{"message":"not found"}');
    if (auth !== token) {
      return send(res, 401, 'application/json',
        JSON.stringify({ Code: 'AccessDenied', Message: `authorization ${auth} is not valid` }));
    }
    stats.authorized++;
    return send(res, 200, 'application/json',
      JSON.stringify({ ...rotator.issue(), RoleArn: 'arn:aws:iam::123456789012:role/events-task' }));
  });
  return { ...s, stats, fullUri: `${s.url}${path}` };
}

function xmlEscape(s) {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/*
 * STS AssumeRoleWithWebIdentity: an unsigned POST of a form; answers the XML of the real service.
 * A token other than `token` gets InvalidIdentityToken, with a message that echoes the token.
 */
async function startSts(rotator, { token }) {
  const stats = { calls: 0, requests: [] };
  const s = await serve(async (req, res) => {
    const body = (await readBody(req)).toString('utf8');
    const form = Object.fromEntries(new URLSearchParams(body));
    stats.calls++;
    stats.requests.push({
      method: req.method, url: req.url, contentType: req.headers['content-type'],
      authorization: req.headers.authorization, form,
    });
    const error = (status, code, message) => send(res, status, 'text/xml',
      `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>` +
      `<Code>${code}</Code><Message>${xmlEscape(message)}</Message></Error>` +
      `<RequestId>${crypto.randomUUID()}</RequestId></ErrorResponse>`);
    if (req.method !== 'POST' || form.Action !== 'AssumeRoleWithWebIdentity' || form.Version !== '2011-06-15')
      return error(400, 'InvalidAction', 'Could not find operation');
    if (!form.RoleArn || !form.RoleSessionName)
      return error(400, 'MissingParameter', 'RoleArn and RoleSessionName are required');
    if (form.WebIdentityToken !== token)
      return error(400, 'InvalidIdentityToken', `The web identity token ${form.WebIdentityToken} is not valid`);
    const c = rotator.issue();
    return send(res, 200, 'text/xml',
      `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:events:reader</SubjectFromWebIdentityToken>
    <AssumedRoleUser>
      <Arn>${xmlEscape(form.RoleArn)}/${xmlEscape(form.RoleSessionName)}</Arn>
      <AssumedRoleId>AROA000000000000EXAMPLE:${xmlEscape(form.RoleSessionName)}</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>${xmlEscape(c.Token)}</SessionToken>
      <SecretAccessKey>${xmlEscape(c.SecretAccessKey)}</SecretAccessKey>
      <Expiration>${c.Expiration}</Expiration>
      <AccessKeyId>${c.AccessKeyId}</AccessKeyId>
    </Credentials>
    <Audience>sts.amazonaws.com</Audience>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>${crypto.randomUUID()}</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>`);
  });
  return { ...s, stats };
}

/*
 * The gate: in front of the stack's DynamoDB front (`target`, a URL). A request signed with a key
 * the rotator says has expired gets DynamoDB's 400 ExpiredTokenException; the rest is forwarded
 * as received (the Host header too, which the signature covers). `delayMs` slows every request
 * down, so that a replay lasts long enough for credentials to expire during it.
 */
async function startGate(rotator, target, { delayMs = 0 } = {}) {
  const up = new URL(target);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const stats = { requests: 0, expiredAnswers: 0, byKey: {}, firstAt: null, lastAt: null };
  const s = await serve(async (req, res) => {
    const body = await readBody(req);
    const m = /Credential=([^/,\s]+)\//.exec(req.headers.authorization || '');
    const key = m ? m[1] : '(none)';
    const now = Date.now();
    stats.requests++;
    stats.firstAt = stats.firstAt || now;
    stats.lastAt = now;
    stats.byKey[key] = (stats.byKey[key] || 0) + 1;
    if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
    if (rotator.expired(key)) {
      stats.expiredAnswers++;
      return send(res, 400, 'application/x-amz-json-1.0', JSON.stringify({
        __type: 'com.amazon.coral.service#ExpiredTokenException',
        message: 'The security token included in the request is expired',
      }));
    }
    await new Promise((resolve) => {
      const headers = { ...req.headers, 'content-length': String(body.length) };
      delete headers.connection;
      delete headers.expect;
      const fwd = http.request({
        host: up.hostname, port: up.port, method: req.method, path: req.url, headers, agent,
      }, (upRes) => {
        res.writeHead(upRes.statusCode, upRes.headers);
        upRes.pipe(res);
        upRes.on('end', resolve);
        upRes.on('error', () => { res.destroy(); resolve(); });
      });
      fwd.on('error', (e) => {
        if (!res.headersSent) send(res, 502, 'text/plain', `gate: ${e.message}`);
        else res.destroy();
        resolve();
      });
      fwd.end(body);
    });
  });
  const close = s.close;
  return { ...s, stats, close: async () => { agent.destroy(); await close(); } };
}

module.exports = {
  Rotator, rotatingSecrets, startImds, startContainer, startSts, startGate, ROTATING,
};
