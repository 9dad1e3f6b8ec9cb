// A recording relay for the request-count figures: listens on a free loopback port, forwards every
// request unchanged (headers included, so signatures still hold) to a target such as DynamoDB Local
// or the S3 front, and keeps what went through: the DynamoDB operation (X-Amz-Target) or the S3
// method, the request body of DynamoDB calls, and the size of each answer. It checks independently of
// EXPLAIN how many requests a statement made and what it asked for (e.g. ProjectionExpression).
// A GET of /__mark is answered by the relay itself and only marks the log (see split()).
'use strict';

const http = require('http');

/*
 * Starts a relay to `targetUrl`; resolves to { url, entries, reset(), split(), close() }, where
 * split() gives [entries before the first mark, entries after it].
 */
function startRecorder(targetUrl) {
  const target = new URL(targetUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const entries = [];
  const server = http.createServer((req, res) => {
    if (req.url === '/__mark') {
      // Not forwarded: splits what came before from what comes after (see mark()).
      entries.push({ op: 'mark' });
      res.end('marked\n');
      return;
    }
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const entry = {
        op: req.headers['x-amz-target'] ? String(req.headers['x-amz-target']).replace(/^.*\./, '') : `S3 ${req.method}`,
        path: req.url,
        body: req.headers['x-amz-target'] ? body.toString('utf8') : null,
        status: null,
        responseBytes: 0,
      };
      entries.push(entry);
      const upstream = http.request({
        host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, agent,
      }, (up) => {
        entry.status = up.statusCode;
        res.writeHead(up.statusCode, up.headers);
        up.on('data', (c) => {
          entry.responseBytes += c.length;
          res.write(c);
        });
        up.on('end', () => res.end());
      });
      upstream.on('error', (e) => {
        entry.status = 'error: ' + e.message;
        res.destroy();
      });
      upstream.end(body);
    });
  });
  return new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      resolve({
        url: `http://127.0.0.1:${server.address().port}`,
        entries,
        reset: () => entries.splice(0, entries.length),
        split: () => {
          const at = entries.findIndex((e) => e.op === 'mark');
          return at < 0 ? [entries.slice(), []] : [entries.slice(0, at), entries.slice(at + 1).filter((e) => e.op !== 'mark')];
        },
        close: () => new Promise((r) => {
          agent.destroy();
          server.close(() => r());
          server.closeAllConnections();
        }),
      });
    });
  });
}

module.exports = { startRecorder };
