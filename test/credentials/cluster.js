// A throwaway PostgreSQL 15 cluster for test/credentials/run.js, started again and again with a
// chosen environment: the ambient credential sources are read from the server process's
// environment and files, so each case needs its own postmaster environment. The cluster runs as
// the postgres account (PostgreSQL refuses root), with only a Unix socket in a private directory,
// on a free port; its environment is exactly PATH, HOME (a private directory, so ~/.aws is what
// the test writes), LANG, TZ and what the case adds. Each start logs to its own file, so the test
// can grep every line the server ever printed.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const net = require('net');
const { spawn, execFileSync } = require('child_process');

const PGBIN = process.env.PGBIN || '/usr/lib/postgresql/15/bin';
const IS_ROOT = typeof process.getuid === 'function' && process.getuid() === 0;
const START_TIMEOUT_S = 60;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/* argv run as the postgres account when we are root. */
function asPostgres(argv) {
  return IS_ROOT ? ['runuser', '-u', 'postgres', '--', ...argv] : argv;
}

function run(argv, { env, timeoutMs = 120000 } = {}) {
  const [cmd, ...args] = asPostgres(argv);
  return execFileSync(cmd, args, { env, timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}

class Cluster {
  constructor() {
    this.base = fs.mkdtempSync(path.join(os.tmpdir(), 'esd-cred-'));
    fs.chmodSync(this.base, 0o755);
    this.data = path.join(this.base, 'data');
    this.sock = path.join(this.base, 'sock');
    this.home = path.join(this.base, 'home');
    this.files = path.join(this.base, 'files');
    this.logs = [];
    this.running = false;
    for (const d of [this.sock, this.home, this.files]) fs.mkdirSync(d, { mode: 0o700 });
    this.chown(this.base, this.sock, this.home, this.files);
  }

  chown(...paths) {
    if (IS_ROOT) execFileSync('chown', ['postgres:', ...paths]);
  }

  /* Writes a file the server can read (and nobody else), creating its directory. */
  writeFile(file, content) {
    const dir = path.dirname(file);
    if (!fs.existsSync(dir)) {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      this.chown(dir);
    }
    fs.writeFileSync(file, content, { mode: 0o600 });
    this.chown(file);
    return file;
  }

  async init() {
    run([path.join(PGBIN, 'initdb'), '-D', this.data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8',
      '--locale=C', '--no-sync']);
    this.port = await freePort();
    fs.appendFileSync(path.join(this.data, 'postgresql.conf'), `
# throwaway cluster of test/credentials/run.js
listen_addresses = ''
unix_socket_directories = '${this.sock}'
port = ${this.port}
fsync = off
synchronous_commit = off
max_connections = 20
shared_buffers = 32MB
timezone = 'UTC'
lc_messages = 'C'
log_min_messages = debug1
log_min_error_statement = error
log_error_verbosity = verbose
`);
  }

  /* Starts the postmaster with exactly this environment added to the basic one. */
  start(extraEnv = {}) {
    const log = path.join(this.base, `server-${this.logs.length + 1}.log`);
    fs.writeFileSync(log, '');
    this.chown(log);
    this.logs.push(log);
    const env = {
      PATH: '/usr/local/bin:/usr/bin:/bin', HOME: this.home, LANG: 'C.UTF-8', TZ: 'UTC', ...extraEnv,
    };
    const envArgs = Object.entries(env).map(([k, v]) => `${k}=${v}`);
    run(['env', '-i', ...envArgs, path.join(PGBIN, 'pg_ctl'), '-D', this.data, '-l', log, '-w',
      '-t', String(START_TIMEOUT_S), 'start']);
    this.running = true;
  }

  stop() {
    if (!this.running) return;
    try {
      run([path.join(PGBIN, 'pg_ctl'), '-D', this.data, '-m', 'fast', '-w', '-t', '30', 'stop']);
    } catch (e) {
      run([path.join(PGBIN, 'pg_ctl'), '-D', this.data, '-m', 'immediate', 'stop']);
    }
    this.running = false;
  }

  restart(extraEnv) {
    this.stop();
    this.start(extraEnv);
  }

  /*
   * Runs SQL with psql as the superuser postgres (ON_ERROR_STOP, unaligned, tuples only, errors
   * with their SQLSTATE);
   * resolves to { code, stdout, stderr }, never rejects. Bounded by timeoutMs.
   */
  psql(sql, { timeoutMs = 120000, db = 'postgres' } = {}) {
    return new Promise((resolve) => {
      const child = spawn('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-v', 'VERBOSITY=verbose', '-At', '-h', this.sock,
        '-p', String(this.port), '-U', 'postgres', '-d', db, '-f', '-'], {
        env: { ...process.env, PGOPTIONS: '', PGAPPNAME: 'credentials-test' },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      const out = [];
      const err = [];
      child.stdout.on('data', (d) => out.push(d));
      child.stderr.on('data', (d) => err.push(d));
      child.stdin.on('error', () => {});
      child.stdin.end(sql);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve({
          code: signal ? `killed by ${signal}` : code,
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: Buffer.concat(err).toString('utf8'),
        });
      });
    });
  }

  /* Every line every start of the server logged. */
  allLogs() {
    return this.logs.map((f) => fs.readFileSync(f, 'utf8')).join('');
  }

  destroy() {
    try {
      this.stop();
    } finally {
      fs.rmSync(this.base, { recursive: true, force: true });
    }
  }
}

module.exports = { Cluster };
