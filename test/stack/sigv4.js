// SigV4 verification for the local test stack: recomputes the AWS Signature Version 4 of a request
// as it was received (method, path, query, the headers named in SignedHeaders, payload hash) with
// @smithy/signature-v4 and the secret of the access key id, and says whether the client's signature
// matches. Used by the DynamoDB front (service "dynamodb") and the S3 front (service "s3").

'use strict';

const crypto = require('crypto');
const { SignatureV4, getCanonicalHeaders } = require('@smithy/signature-v4');
const { Sha256 } = require('@aws-crypto/sha256-js');

// The credentials the stack knows. A key with a token only passes with that exact
// x-amz-security-token header (temporary credentials).
const KEYS = {
  S3RVER: { secret: 'S3RVER' },
  ASIATESTSESSION: { secret: 'sessionsecret', token: 'sessiontoken' },
  // test/credentials: a long-term key for the shared-files source, and the temporary keys the
  // credential stand-ins rotate through in the expiry and refresh tests
  AKIACREDFILETEST: { secret: 'cred-file-secret-3d9a' },
  ASIAROTATE1: { secret: 'rotate-secret-1-b71e', token: 'rotate-token-1-0c4f' },
  ASIAROTATE2: { secret: 'rotate-secret-2-5a90', token: 'rotate-token-2-e813' },
  ASIAROTATE3: { secret: 'rotate-secret-3-c2d7', token: 'rotate-token-3-77a1' },
  ASIAROTATE4: { secret: 'rotate-secret-4-19fe', token: 'rotate-token-4-4b36' },
};

const MAX_SKEW_MS = 15 * 60 * 1000;
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

function sha256Hex(buf) {
  return crypto.createHash('sha256').update(buf).digest('hex');
}

// "20240102T030405Z" for a Date.
function basicDate(d) {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
}

// Parses "YYYYMMDDTHHMMSSZ"; null when it is not exactly that.
function parseBasicDate(s) {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s || '');
  if (!m) return null;
  const t = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
  const d = new Date(t);
  if (Number.isNaN(t) || basicDate(d) !== s) return null;
  return d;
}

// Splits "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..." into its parts.
function parseAuthorization(value) {
  const space = value.indexOf(' ');
  const algorithm = space < 0 ? value : value.slice(0, space);
  const params = {};
  if (space >= 0) {
    for (const part of value.slice(space + 1).split(',')) {
      const eq = part.indexOf('=');
      if (eq < 0) continue;
      params[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
    }
  }
  return { algorithm, params };
}

// Decodes a raw query string into { name: value | [values] } as the signer expects.
function parseQuery(raw) {
  const query = {};
  if (!raw) return query;
  for (const piece of raw.split('&')) {
    if (piece === '') continue;
    const eq = piece.indexOf('=');
    const dec = (s) => {
      try { return decodeURIComponent(s); } catch (e) { return s; }
    };
    const k = dec(eq < 0 ? piece : piece.slice(0, eq));
    const v = dec(eq < 0 ? '' : piece.slice(eq + 1));
    if (Object.prototype.hasOwnProperty.call(query, k)) {
      query[k] = [].concat(query[k], v);
    } else {
      query[k] = v;
    }
  }
  return query;
}

function fail(kind, code, message, details) {
  return { ok: false, kind, code, message, details };
}

/**
 * Verifies a header-signed SigV4 request.
 *
 * req: { method, url (raw path and query as received), headers (Node's lower-cased object) }
 * opts: { service, uriEscapePath, payloadHash (hex or literal as the canonical request's last line),
 *         now (Date, optional) }
 *
 * Returns { ok: true, accessKeyId, region } or
 * { ok: false, kind, code, message, details } where kind is one of
 * missing-auth, incomplete, unknown-key, bad-token, bad-date, skew, wrong-scope, mismatch;
 * the caller turns that into the service's own error shape. details carries the canonical request
 * and string to sign on a mismatch (for the log, never for the response).
 */
async function verify(req, opts) {
  const headers = req.headers;
  const auth = headers.authorization;
  if (!auth) {
    return fail('missing-auth', 'MissingAuthenticationToken', 'Request is missing Authentication Token');
  }
  const { algorithm, params } = parseAuthorization(auth);
  if (algorithm !== 'AWS4-HMAC-SHA256') {
    return fail('incomplete', 'IncompleteSignature', `Unsupported AWS 'algorithm': '${algorithm}'`);
  }
  const missing = ['Credential', 'SignedHeaders', 'Signature'].filter((p) => !params[p]);
  if (missing.length) {
    return fail('incomplete', 'IncompleteSignature',
      missing.map((p) => `Authorization header requires '${p}' parameter.`).join(' ') +
      ` Authorization=${algorithm}`);
  }
  const scopeParts = params.Credential.split('/');
  if (scopeParts.length !== 5 || scopeParts[4] !== 'aws4_request') {
    return fail('incomplete', 'IncompleteSignature',
      `Credential should be scoped to a valid region, not a malformed credential: '${params.Credential}'.`);
  }
  const [accessKeyId, scopeDate, region, service] = scopeParts;
  if (service !== opts.service) {
    return fail('wrong-scope', 'InvalidSignature',
      `Credential should be scoped to correct service: '${opts.service}'. `);
  }
  if (!region) {
    return fail('wrong-scope', 'InvalidSignature', 'Credential should be scoped to a valid region. ');
  }
  const key = KEYS[accessKeyId];
  if (!key) {
    return fail('unknown-key', 'UnrecognizedClient', 'The security token included in the request is invalid.');
  }
  if (key.token && headers['x-amz-security-token'] !== key.token) {
    return fail('bad-token', 'UnrecognizedClient', 'The security token included in the request is invalid.');
  }

  const signedNames = params.SignedHeaders.split(';').map((h) => h.trim().toLowerCase()).filter(Boolean);
  if (!signedNames.includes('host')) {
    return fail('incomplete', 'InvalidSignature',
      "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
  }

  // The request time: x-amz-date, or failing that an HTTP Date header.
  let when;
  let dateHeader;
  if (headers['x-amz-date'] !== undefined) {
    dateHeader = 'x-amz-date';
    when = parseBasicDate(headers['x-amz-date']);
    if (!when) {
      return fail('bad-date', 'InvalidSignature',
        `Date must be in ISO-8601 'basic format'. Got '${headers['x-amz-date']}'.`);
    }
  } else if (headers.date !== undefined) {
    dateHeader = 'date';
    const t = Date.parse(headers.date);
    if (Number.isNaN(t)) {
      return fail('bad-date', 'InvalidSignature', `Date must be in RFC 1123 format. Got '${headers.date}'.`);
    }
    when = new Date(Math.floor(t / 1000) * 1000);
  } else {
    return fail('bad-date', 'IncompleteSignature',
      "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. " +
      `Authorization=${algorithm}`);
  }
  if (!signedNames.includes(dateHeader)) {
    return fail('incomplete', 'InvalidSignature',
      `The '${dateHeader === 'date' ? 'Date' : 'X-Amz-Date'}' header must be a 'SignedHeader' in the AWS Authorization.`);
  }
  const longDate = basicDate(when);
  if (scopeDate !== longDate.slice(0, 8)) {
    return fail('bad-date', 'InvalidSignature',
      `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: ` +
      `'${scopeDate}' != '${longDate.slice(0, 8)}', from '${longDate}'.`);
  }
  const now = opts.now || new Date();
  if (when.getTime() < now.getTime() - MAX_SKEW_MS) {
    return fail('skew', 'InvalidSignature',
      `Signature expired: ${longDate} is now earlier than ${basicDate(new Date(now.getTime() - MAX_SKEW_MS))} ` +
      `(${basicDate(now)} - 15 min.)`);
  }
  if (when.getTime() > now.getTime() + MAX_SKEW_MS) {
    return fail('skew', 'InvalidSignature',
      `Signature not yet current: ${longDate} is still later than ${basicDate(new Date(now.getTime() + MAX_SKEW_MS))} ` +
      `(${basicDate(now)} + 15 min.)`);
  }

  // Recompute: only the headers the client named, with the values we received.
  const onlySigned = {};
  for (const name of signedNames) {
    onlySigned[name] = headers[name] === undefined ? '' : String(headers[name]);
  }
  const canonicalHeaders = getCanonicalHeaders({ headers: onlySigned }, undefined, new Set(signedNames));
  for (const name of signedNames) {
    if (canonicalHeaders[name] === undefined) canonicalHeaders[name] = '';
  }
  const url = req.url || '/';
  const q = url.indexOf('?');
  const request = {
    method: req.method,
    path: q < 0 ? url : url.slice(0, q),
    query: parseQuery(q < 0 ? '' : url.slice(q + 1)),
  };
  const signer = new SignatureV4({
    credentials: { accessKeyId, secretAccessKey: key.secret },
    region,
    service: opts.service,
    sha256: Sha256,
    uriEscapePath: opts.uriEscapePath,
  });
  const canonicalRequest = signer.createCanonicalRequest(request, canonicalHeaders, opts.payloadHash);
  const scope = `${longDate.slice(0, 8)}/${region}/${opts.service}/aws4_request`;
  const stringToSign = await signer.createStringToSign(longDate, scope, canonicalRequest, 'AWS4-HMAC-SHA256');
  const expected = await signer.getSignature(
    longDate, scope, signer.getSigningKey({ accessKeyId, secretAccessKey: key.secret }, region, longDate.slice(0, 8), opts.service),
    canonicalRequest);
  const given = params.Signature;
  const same = given.length === expected.length &&
    crypto.timingSafeEqual(Buffer.from(given), Buffer.from(expected));
  if (!same) {
    return fail('mismatch', 'InvalidSignature',
      'The request signature we calculated does not match the signature you provided. ' +
      'Check your AWS Secret Access Key and signing method. Consult the service documentation for details.',
      { canonicalRequest, stringToSign });
  }
  return { ok: true, accessKeyId, region };
}

module.exports = { verify, KEYS, sha256Hex, EMPTY_SHA256, basicDate, parseBasicDate };
