// A minimal test reporter for the interop scripts: one line per check, `ok - ...` or
// `not ok - ...` (with a short reason indented below), and a closing `N passed, N failed` line.
// Scripts exit with status 1 when any check failed, which is what the step runner looks at.
'use strict';

const util = require('util');

class Report {
  constructor() {
    this.passed = 0;
    this.failed = 0;
  }

  /* Records one check; `detail` (string or value) is printed only when it failed. */
  check(name, condition, detail) {
    if (condition) {
      this.passed++;
      console.log(`ok - ${name}`);
    } else {
      this.failed++;
      console.log(`not ok - ${name}`);
      if (detail !== undefined) {
        const text = typeof detail === 'string' ? detail : util.inspect(detail, { depth: 6, maxStringLength: 300 });
        console.log(text.split('\n').map((l) => '    ' + l).join('\n'));
      }
    }
    return condition;
  }

  /* A remark that is neither a pass nor a failure (a known defect of the adapter, a timing). */
  note(text) {
    console.log(`# ${text}`);
  }

  /* Prints the closing line and returns the exit status. */
  finish() {
    console.log(`${this.passed} passed, ${this.failed} failed`);
    return this.failed === 0 && this.passed > 0 ? 0 : 1;
  }
}

/*
 * Compares two lists of records field by field and returns at most `limit` human-readable
 * differences (`[index] field: got ... expected ...`), so that a failed check says what differs.
 */
function diffRecords(got, expected, fields, limit = 5) {
  const out = [];
  const n = Math.min(got.length, expected.length);
  for (let i = 0; i < n && out.length < limit; i++) {
    for (const f of fields) {
      if (!util.isDeepStrictEqual(got[i][f], expected[i][f])) {
        const show = (v) => util.inspect(v, { depth: 4, maxStringLength: 120, breakLength: Infinity });
        out.push(`[${i}] id ${expected[i].id} ${f}: got ${show(got[i][f])}, expected ${show(expected[i][f])}`);
        if (out.length >= limit)
          break;
      }
    }
  }
  if (got.length !== expected.length)
    out.push(`got ${got.length} records, expected ${expected.length}`);
  return out;
}

module.exports = { Report, diffRecords };
