// The SQL side of the comparisons: psql sessions against the throwaway cluster (PG* variables), one
// fresh backend per measurement so that its peak memory (VmHWM, read by the backend itself from
// /proc/self/status) belongs to that statement alone. Statement times are psql's \timing, which
// covers the statement and, in autocommit, its commit.
'use strict';

const { spawn } = require('child_process');

/* Quotes a string as an SQL literal. */
function lit(s) {
  return "'" + String(s).replace(/'/g, "''") + "'";
}

/* Runs an SQL script through psql (stops at the first error); resolves to stdout, rejects with stderr. */
function psql(script, { timeoutMs = 60 * 60 * 1000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-At', '-f', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out = [];
    const err = [];
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
    child.stdin.on('error', () => {});
    child.stdin.end(script);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8').trim();
      if (code === 0)
        resolve(stdout);
      else
        reject(Object.assign(new Error(signal ? `psql killed (${signal}) after ${timeoutMs} ms` : (stderr || `psql exited with ${code}`)), { stdout, stderr }));
    });
  });
}

// The backend's peak and current resident memory (kB) and its CPU time (clock ticks), as it reads
// them itself from /proc/self.
const MEMORY_QUERY = "SELECT 'mem', (regexp_match(s, 'VmHWM:\\s+(\\d+)'))[1], (regexp_match(s, 'VmRSS:\\s+(\\d+)'))[1], " +
  "(SELECT (f[12]::bigint + f[13]::bigint) FROM regexp_split_to_array(regexp_replace(rtrim(pg_read_file('/proc/self/stat'), E'\\n'), '^.*\\) ', ''), ' ') f) " +
  "FROM pg_read_file('/proc/self/status') s;";

/*
 * Runs `statement` (one SQL statement, no trailing semicolon) in a fresh session under \timing, with
 * the backend's memory and CPU time read before and after. Resolves to { ms, rows (from the command
 * tag), tag, output (the other lines), hwmBeforeKB, hwmKB, rssKB, cpuTicks (spent by the backend
 * between the two readings) }.
 */
async function timed(statement, { setup = '', timeoutMs } = {}) {
  const script = `${setup}\n${MEMORY_QUERY}\n\\timing on\n${statement};\n\\timing off\n${MEMORY_QUERY}\n`;
  const out = await psql(script, { timeoutMs });
  const lines = out.split('\n');
  const mem = lines.filter((l) => l.startsWith('mem|')).map((l) => l.split('|').map(Number));
  const timeLine = lines.find((l) => /^Time: [\d.]+ ms/.test(l));
  if (mem.length !== 2 || !timeLine)
    throw new Error(`unexpected psql output:\n${out.slice(0, 2000)}`);
  const on = lines.indexOf('Timing is on.');
  const body = lines.slice(on + 1, lines.indexOf(timeLine));
  const tagLine = body.find((l) => /^(COPY|INSERT \d+|SELECT|UPDATE|DELETE) \d+$/.test(l));
  return {
    ms: Number(/^Time: ([\d.]+) ms/.exec(timeLine)[1]),
    rows: tagLine ? Number(tagLine.split(' ').pop()) : null,
    tag: tagLine || null,
    output: body.filter((l) => l !== tagLine),
    hwmBeforeKB: mem[0][1],
    hwmKB: mem[1][1],
    rssKB: mem[1][2],
    cpuTicks: mem[1][3] - mem[0][3],
  };
}

/*
 * The request counters EXPLAIN ANALYZE prints for the foreign scans of `query`, run twice in one
 * session: { cold, warm }, each { query, batchGet, s3Get, total, readUnits (the consumed read capacity
 * the plan reports), rows (of the plan's top node), plan } (counters the plan lacks are null). `between` (psql lines) runs between the two, e.g. to mark a recording relay.
 */
async function requestCounts(query, between = '') {
  const explain = `EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ${query};`;
  const out = await psql(`${explain}\n${between}\n\\echo @@warm\n${explain}\n`);
  const [cold, warm] = out.split('@@warm\n');
  return { cold: parseCounts(cold), warm: parseCounts(warm || '') };
}

function parseCounts(out) {
  const get = (label) => {
    let sum = null;
    for (const m of out.matchAll(new RegExp(`${label}: (\\d+)`, 'g')))
      sum = (sum || 0) + Number(m[1]);
    return sum;
  };
  const r = {
    query: get('DynamoDB Query Requests'),
    batchGet: get('DynamoDB BatchGetItem Requests'),
    s3Get: get('S3 GetObject Requests'),
  };
  let units = null;
  for (const m of out.matchAll(/Consumed Read Capacity Units: ([\d.]+)/g))
    units = (units || 0) + Number(m[1]);
  r.readUnits = units;
  const top = /actual rows=(\d+)/.exec(out);
  r.rows = top ? Number(top[1]) : null;
  r.total = r.query === null && r.batchGet === null && r.s3Get === null ? null : (r.query || 0) + (r.batchGet || 0) + (r.s3Get || 0);
  r.plan = out.trim();
  return r;
}

const COLUMNS = `id text, domain text, type text, identifier text, correlation_id text, causation_id text,
  sequence bigint, payload jsonb, meta jsonb, created timestamptz, time_bucket text, s3_reference text`;

/* A foreign table over `prefix` with every column of the SPEC. */
function foreignTable(name, { prefix, bucket, startMonth, extra = [] }) {
  const options = [`table_name_prefix ${lit(prefix)}`, ...extra];
  if (bucket)
    options.push(`s3_bucket ${lit(bucket)}`);
  if (startMonth)
    options.push(`start_month ${lit(startMonth)}`);
  return `CREATE FOREIGN TABLE ${name} (\n  ${COLUMNS}\n) SERVER bench OPTIONS (${options.join(', ')});`;
}

module.exports = { psql, lit, timed, requestCounts, foreignTable };
