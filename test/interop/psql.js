// Runs psql as a child process for the interop tests: the connection comes from the PG* variables
// the runner exports, scripts stop at the first error (ON_ERROR_STOP), output is unaligned and
// tuples-only so that every row is one line. Every run is bounded by a timeout, after which the
// child is killed and the result says so. openSession keeps one psql open for tests that interleave
// several sessions.
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

/*
 * An interactive psql session for tests that must interleave several sessions (two writers racing
 * to one stream): statements are fed to one psql process as the test goes, and each run() waits
 * until psql has finished them. Errors do not end the session (no ON_ERROR_STOP); run() returns
 * what the statements printed on stdout and stderr, and `sqlstate`, psql's SQLSTATE variable
 * after the last statement ('00000' on success, null before any statement ran). Every run() is bounded by `timeoutMs`, after
 * which the session is killed and run() rejects.
 */
function openSession({ env = {}, timeoutMs = 120000 } = {}) {
  const child = spawn('psql', ['-X', '-q', '-At'], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  let waiter = null;
  let exited = false;
  let serial = 0;
  const settle = () => {
    if (waiter)
      waiter.poll();
  };
  child.stdout.on('data', (d) => { out += d; settle(); });
  child.stderr.on('data', (d) => { err += d; settle(); });
  child.stdin.on('error', () => {});
  child.on('error', (e) => { err += String(e); });
  child.on('close', () => { exited = true; settle(); });

  function run(sql) {
    if (waiter)
      return Promise.reject(new Error('run() while another run() is in progress'));
    const mark = `__esd_session_mark_${++serial}__`;
    const outMark = new RegExp(`(?:^|\n)([0-9A-Z]{5}|:SQLSTATE) ${mark}\n`);
    const errMark = `${mark}\n`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiter = null;
        child.kill('SIGKILL');
        reject(new Error(`psql session: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      waiter = {
        poll() {
          const m = outMark.exec(out);
          const e = err.indexOf(errMark);
          if (m && e >= 0) {
            clearTimeout(timer);
            waiter = null;
            const stdout = out.slice(0, m.index + (out[m.index] === '\n' ? 1 : 0));
            const stderr = err.slice(0, e);
            out = out.slice(m.index + m[0].length);
            err = err.slice(e + errMark.length);
            resolve({ stdout, stderr, sqlstate: m[1] === ':SQLSTATE' ? null : m[1] });
          } else if (exited) {
            clearTimeout(timer);
            waiter = null;
            reject(new Error(`psql session ended: ${err.trim() || 'no error output'}`));
          }
        },
      };
      child.stdin.write(`${sql}\n\\echo :SQLSTATE ${mark}\n\\warn ${mark}\n`);
      waiter.poll();
    });
  }

  /* Ends the session (stdin closed) and waits for psql to exit, killing it after `graceMs`. */
  function close(graceMs = 10000) {
    return new Promise((resolve) => {
      if (exited)
        return resolve();
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      child.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      child.stdin.end();
    });
  }

  return { child, run, close };
}

/* Quotes a string as an SQL literal. */
function lit(s) {
  return "'" + String(s).replace(/'/g, "''") + "'";
}

module.exports = { startPsql, psql, psqlOk, openSession, lit };
