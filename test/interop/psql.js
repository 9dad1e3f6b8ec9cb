// Runs psql as a child process for the interop tests: the connection comes from the PG* variables
// the runner exports, scripts stop at the first error (ON_ERROR_STOP), output is unaligned and
// tuples-only so that every row is one line. Every run is bounded by a timeout, after which the
// child is killed and the result says so.
'use strict';

const { spawn } = require('child_process');

const PSQL_ARGS = ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-At'];

/*
 * Starts psql on `sql` (fed on stdin) and returns { child, done }, where `done` resolves to
 * { code, signal, stdout, stderr, startedAt, endedAt, timedOut }. `env` is added to the
 * environment (e.g. PGAPPNAME so that the session can be found in pg_stat_activity).
 */
function startPsql(sql, { env = {}, timeoutMs = 120000 } = {}) {
  const startedAt = Date.now();
  const child = spawn('psql', [...PSQL_ARGS, '-f', '-'], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const out = [];
  const err = [];
  child.stdout.on('data', (d) => out.push(d));
  child.stderr.on('data', (d) => err.push(d));
  child.stdin.on('error', () => {}); // psql may exit before reading all of its input
  child.stdin.end(sql);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  const done = new Promise((resolve) => {
    child.on('error', (e) => err.push(Buffer.from(String(e))));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code, signal, timedOut, startedAt, endedAt: Date.now(),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
  });
  return { child, done };
}

/* Runs `sql` to completion; see startPsql. */
function psql(sql, options) {
  return startPsql(sql, options).done;
}

/* Runs `sql` and throws, with psql's error output, unless it succeeded. */
async function psqlOk(sql, options) {
  const r = await psql(sql, options);
  if (r.code !== 0 || r.timedOut)
    throw new Error(r.timedOut ? 'psql timed out' : (r.stderr.trim() || `psql exited with ${r.code}`));
  return r.stdout;
}

/* Quotes a string as an SQL literal. */
function lit(s) {
  return "'" + String(s).replace(/'/g, "''") + "'";
}

module.exports = { startPsql, psql, psqlOk, lit };
