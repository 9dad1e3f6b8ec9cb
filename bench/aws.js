// A minimal DynamoDB and S3 client for the benchmark: plain Node http with a keep-alive agent, SigV4
// from @smithy/signature-v4 (hashing with node:crypto), JSON in and out, nothing else. It measures the
// raw ceilings (what DynamoDB Local serves to a lean client, see ceiling.js) and loads the data sets
// with BatchWriteItem. Errors carry DynamoDB's __type; there is no retry policy beyond re-sending
// unprocessed items, which is all DynamoDB Local ever asks for, and re-sending a read whose kept-alive
// connection was dropped before any answer (see call()).
'use strict';

const http = require('http');
const crypto = require('crypto');
const { SignatureV4 } = require('./modules')('@smithy/signature-v4');

/* The hash the signer needs, over node:crypto (SHA-256, or HMAC-SHA-256 when given a secret). */
class NodeSha256 {
  constructor(secret) {
    this.hash = secret ? crypto.createHmac('sha256', secret) : crypto.createHash('sha256');
  }

  update(data) {
    this.hash.update(typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
  }

  async digest() {
    return new Uint8Array(this.hash.digest());
  }
}

// Calls that may be sent again after a dropped connection: reads, and puts of whole items.
const RESENDABLE = new Set(['Query', 'BatchGetItem', 'GetItem', 'Scan', 'DescribeTable', 'BatchWriteItem']);

const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

class AwsClient {
  /*
   * ddbUrl and s3Url: http://host:port; maxSockets bounds the kept-alive connections (set it at least
   * to the number of requests in flight).
   */
  constructor({ ddbUrl, s3Url, region = 'us-east-1', accessKeyId, secretAccessKey, maxSockets = 32 }) {
    this.ddb = new URL(ddbUrl);
    this.s3 = s3Url ? new URL(s3Url) : null;
    this.agent = new http.Agent({ keepAlive: true, maxSockets });
    const credentials = { accessKeyId, secretAccessKey };
    this.ddbSigner = new SignatureV4({ credentials, region, service: 'dynamodb', sha256: NodeSha256 });
    this.s3Signer = new SignatureV4({ credentials, region, service: 's3', sha256: NodeSha256, uriEscapePath: false });
    this.requests = 0;
    this.resent = 0;
  }

  close() {
    this.agent.destroy();
  }

  /* Sends a signed request; resolves to { status, body (Buffer) }. */
  async send(url, signer, method, path, headers, body) {
    const signed = await signer.sign({
      method, protocol: url.protocol, hostname: url.hostname, port: Number(url.port), path,
      headers: { host: url.host, ...headers }, body,
    });
    this.requests++;
    return new Promise((resolve, reject) => {
      const req = http.request({
        host: url.hostname, port: url.port, method, path, headers: signed.headers, agent: this.agent,
      }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.setTimeout(120000, () => req.destroy(new Error(`${method} ${path}: no answer in 120 s`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  /*
   * One DynamoDB call: `op` is e.g. 'Query'; `request` an object or a ready JSON string. A read (or
   * a BatchWriteItem of puts, which may be applied twice) whose connection was dropped before an
   * answer (a kept-alive socket the server had just closed) is sent again, up to 3 times; anything
   * else fails at once.
   */
  async call(op, request) {
    const body = typeof request === 'string' ? request : JSON.stringify(request);
    const again = RESENDABLE.has(op);
    let r;
    for (let attempt = 0; ; attempt++) {
      try {
        r = await this.send(this.ddb, this.ddbSigner, 'POST', '/', {
          'content-type': 'application/x-amz-json-1.0',
          'x-amz-target': `DynamoDB_20120810.${op}`,
        }, body);
        break;
      } catch (e) {
        if (!again || attempt >= 3 || !(e.code === 'ECONNRESET' || /socket hang up/.test(e.message)))
          throw e;
        this.resent++;
      }
    }
    const answer = r.body.length > 0 ? JSON.parse(r.body.toString('utf8')) : {};
    if (r.status !== 200) {
      const type = String(answer.__type || 'unknown').replace(/^.*#/, '');
      const err = new Error(`${op}: ${type}: ${answer.message || answer.Message || r.status}`);
      err.type = type;
      err.answer = answer;
      throw err;
    }
    return answer;
  }

  /* The body of s3://bucket/key, as a Buffer. */
  async s3Get(bucket, key) {
    const r = await this.send(this.s3, this.s3Signer, 'GET', `/${bucket}/${key}`, { 'x-amz-content-sha256': EMPTY_SHA256 });
    if (r.status !== 200)
      throw new Error(`GetObject ${bucket}/${key}: HTTP ${r.status}: ${r.body.toString('utf8').slice(0, 200)}`);
    return r.body;
  }
}

/* Runs `worker(item)` over `items` with at most `inFlight` at once; resolves when all are done. */
async function pool(items, inFlight, worker) {
  let next = 0;
  const lanes = Array.from({ length: Math.min(inFlight, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++];
      await worker(item);
    }
  });
  await Promise.all(lanes);
}

/* Writes marshalled items with BatchWriteItem (25 a request, `inFlight` requests at once). */
async function batchWrite(client, table, items, inFlight = 8) {
  const chunks = [];
  for (let i = 0; i < items.length; i += 25)
    chunks.push(items.slice(i, i + 25));
  await pool(chunks, inFlight, async (chunk) => {
    let requests = chunk.map((Item) => ({ PutRequest: { Item } }));
    for (let attempt = 0; requests.length > 0; attempt++) {
      if (attempt > 20)
        throw new Error(`BatchWriteItem on ${table}: items still unprocessed after 20 tries`);
      if (attempt > 0)
        await new Promise((r) => setTimeout(r, Math.min(1000, 20 * 2 ** attempt)));
      const answer = await client.call('BatchWriteItem', { RequestItems: { [table]: requests } });
      requests = (answer.UnprocessedItems && answer.UnprocessedItems[table]) || [];
    }
  });
}

/* Every item of a table (projected to `projection` attributes), read with 4 parallel Scan segments. */
async function scanAll(client, table, projection) {
  const segments = 4;
  const parts = await Promise.all(Array.from({ length: segments }, async (_, Segment) => {
    const items = [];
    let ExclusiveStartKey;
    do {
      const request = { TableName: table, Segment, TotalSegments: segments, ExclusiveStartKey };
      if (projection) {
        request.ProjectionExpression = projection.map((_, i) => `#a${i}`).join(', ');
        request.ExpressionAttributeNames = Object.fromEntries(projection.map((a, i) => [`#a${i}`, a]));
      }
      const page = await client.call('Scan', request);
      items.push(...page.Items);
      ExclusiveStartKey = page.LastEvaluatedKey;
    } while (ExclusiveStartKey);
    return items;
  }));
  return parts.flat();
}

async function deleteTable(client, table) {
  try {
    await client.call('DeleteTable', { TableName: table });
  } catch (e) {
    if (e.type !== 'ResourceNotFoundException')
      throw e;
  }
}

module.exports = { AwsClient, pool, batchWrite, scanAll, deleteTable };
