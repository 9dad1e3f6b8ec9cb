// The throwaway cluster of the workers' tests (run.js, feed.js beside this file): PostgreSQL with
// the library in shared_preload_libraries (the runner's cluster may not have it), taken down when
// the test ends or is stopped from outside; and the helpers both use to run SQL in it and to wait
// for a state.
'use strict';

const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');

const { Cluster } = require('../credentials/cluster');

const WAIT_MS = 60000;        // bound of every wait for a state: generous, the machine is shared

let cluster = null;

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

/* Creates and starts the cluster, with room for maxWorkers background workers. */
async function startCluster({ maxWorkers }) {
  cluster = new Cluster();
  await cluster.init();
  fs.appendFileSync(path.join(cluster.data, 'postgresql.conf'), `
shared_preload_libraries = 'event_store_dynamo'
max_worker_processes = ${maxWorkers}
log_min_messages = info
`);
  cluster.start({});
  return cluster;
}

function destroyCluster() {
  if (cluster) cluster.destroy();
  cluster = null;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/* Runs SQL that must succeed in a database; returns its rows (lines, fields split on |). */
async function rows(db, text) {
  const r = await cluster.psql(text, { db });
  assert.equal(r.code, 0, `psql in ${db} failed: ${r.stderr}\n${text}`);
  return r.stdout.split('\n').filter((l) => l !== '').map((l) => l.split('|'));
}

/* The first field of the last row. */
async function value(db, text) {
  const r = await rows(db, text);
  return r.length ? r[r.length - 1][0] : undefined;
}

/* Runs SQL whose last statement must fail; returns the SQLSTATE (VERBOSITY verbose prints it). */
async function sqlstate(db, text) {
  const r = await cluster.psql(text, { db });
  assert.notEqual(r.code, 0, `expected an error, got: ${r.stdout}`);
  const m = /ERROR:\s+([0-9A-Z]{5}):/.exec(r.stderr);
  assert.ok(m, `no SQLSTATE in: ${r.stderr}`);
  return { code: m[1], message: r.stderr };
}

/* Polls fn until it returns a truthy value, which it returns; fails after timeoutMs. */
async function waitFor(what, fn, timeoutMs = WAIT_MS) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const last = await fn();
    if (last) return last;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

module.exports = { startCluster, destroyCluster, rows, value, sqlstate, waitFor, sleep, WAIT_MS };
