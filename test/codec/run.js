'use strict';
// Checks src/codec.c (through the esd_codec_test module built in this folder)
// against what Node itself does: JSON.parse/JSON.stringify for JSON text and
// the AWS SDK's marshalling (@aws-sdk/util-dynamodb, as the Node adapter
// configures it) for AttributeValues.  Fixed cases first, each one
// behaviour; then a few hundred seeded random values per direction.
//
// Needs a running PostgreSQL 15 reached through PGHOST/PGPORT/PGUSER (a
// superuser) and PGDATABASE, with the module installed (`make install`).
// It makes its own databases (one UTF-8, one LATIN1) and drops them at the
// end.  Prints "N passed, N failed"; exits non-zero on any failure.

const { execFileSync } = require('child_process');
const { isDeepStrictEqual } = require('util');
const { convertToAttr } = require('@aws-sdk/util-dynamodb');

// a bug in this script still ends in the summary line
process.on('uncaughtException', (e) => {
  console.log(`FAIL the test script itself: ${e.stack}`);
  console.log('codec: 0 passed, 1 failed');
  process.exit(1);
});

const SEED = Number(process.env.CODEC_TEST_SEED || 20240601);
const RANDOM_CASES = Number(process.env.CODEC_TEST_CASES || 300);
const PSQL_TIMEOUT_MS = 120000;

// ---------------------------------------------------------------------------
// Running SQL

function psql(database, script) {
  return execFileSync('psql', ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', database, '-f', '-'], {
    input: script,
    env: { ...process.env, PGCLIENTENCODING: 'UTF8' },
    encoding: 'utf8',
    maxBuffer: 1 << 28,
    timeout: PSQL_TIMEOUT_MS,
  });
}

// A SQL expression for a string, safe whatever it holds
function sqlText(s) {
  return `convert_from(decode('${Buffer.from(s, 'utf8').toString('base64')}', 'base64'), 'UTF8')`;
}

const SETUP_SQL = `
SET client_min_messages = warning;
CREATE SCHEMA codec_test;
CREATE FUNCTION codec_test.av_to_jsonb(text, text, text) RETURNS jsonb
  AS 'esd_codec_test', 'codec_test_av_to_jsonb' LANGUAGE C;
CREATE FUNCTION codec_test.av_to_json(text) RETURNS text
  AS 'esd_codec_test', 'codec_test_av_to_json' LANGUAGE C STRICT;
CREATE FUNCTION codec_test.json_to_jsonb(text) RETURNS jsonb
  AS 'esd_codec_test', 'codec_test_json_to_jsonb' LANGUAGE C STRICT;
CREATE FUNCTION codec_test.json_text_to_jsonb(text) RETURNS jsonb
  AS 'esd_codec_test', 'codec_test_json_text_to_jsonb' LANGUAGE C STRICT;
CREATE FUNCTION codec_test.jsonb_to_av(jsonb) RETURNS text
  AS 'esd_codec_test', 'codec_test_jsonb_to_av' LANGUAGE C STRICT;
CREATE FUNCTION codec_test.compact(jsonb) RETURNS text
  AS 'esd_codec_test', 'codec_test_jsonb_to_compact_text' LANGUAGE C STRICT;

-- Runs one case: template is an expression over $1 (input) and $2
-- (expected); an error comes back as text: SQLSTATE, message, detail and
-- the innermost context line when it is not PL/pgSQL's own.
CREATE FUNCTION codec_test.outcome(template text, input text, expected text) RETURNS text
LANGUAGE plpgsql AS $fn$
DECLARE
  result text;
  st text; msg text; det text; ctx text;
BEGIN
  EXECUTE 'SELECT (' || template || ')::text' INTO result USING input, expected;
  RETURN coalesce(result, 'NULL');
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                          det = PG_EXCEPTION_DETAIL, ctx = PG_EXCEPTION_CONTEXT;
  ctx := split_part(ctx, E'\\n', 1);
  RETURN 'ERROR ' || st || ': ' || msg
    || CASE WHEN det <> '' THEN ' DETAIL: ' || det ELSE '' END
    || CASE WHEN ctx LIKE 'DynamoDB%' THEN ' CONTEXT: ' || ctx ELSE '' END;
END
$fn$;
CREATE TABLE codec_test.cases (id int PRIMARY KEY, template text, input text, expected text);
`;

// Runs every case in one psql session; returns the outcomes by case index
function runCases(database, cases) {
  const lines = [SETUP_SQL];
  cases.forEach((c, i) => {
    lines.push(`INSERT INTO codec_test.cases VALUES (${i}, ${sqlText(c.sql)}, ${sqlText(c.input)}, ${sqlText(c.expected === undefined ? '' : c.expected)});`);
  });
  lines.push("SELECT json_build_array(id, codec_test.outcome(template, input, expected))::text FROM codec_test.cases ORDER BY id;");
  lines.push('DROP SCHEMA codec_test CASCADE;');
  const out = psql(database, lines.join('\n'));
  const results = [];
  for (const line of out.split('\n')) {
    if (line === '') continue;
    const [id, outcome] = JSON.parse(line);
    results[id] = outcome;
  }
  return results;
}

// ---------------------------------------------------------------------------
// Cases: {name, sql (expression over $1 = input, $2 = expected), input,
// expected, check(outcome) -> true or a message}

const cases = { utf8: [], latin1: [] };

function exact(db, name, sql, input, want) {
  cases[db].push({ name, sql, input, check: (got) => got === want || `want ${want}` });
}

// the outcome must be an error starting with this text
function fails(db, name, sql, input, want) {
  cases[db].push({ name, sql, input, check: (got) => got.startsWith(want) || `want ${want}...` });
}

const AV = 'codec_test.av_to_jsonb($1, \'meta\', \'EventID#e1\')';
const AV_JSON = 'codec_test.av_to_json($1)';
const TEXT = 'codec_test.json_text_to_jsonb($1)';
const JSONC = 'codec_test.json_to_jsonb($1)';
const COMPACT = 'codec_test.compact($1::jsonb)';
const TO_AV = 'codec_test.jsonb_to_av($1::jsonb)';
const BAD = 'ERROR HV004: invalid DynamoDB attribute value in attribute "meta" of item "EventID#e1" DETAIL: ';

// --- Reading: AttributeValue -> jsonb, natural values, every digit kept
exact('utf8', 'S', AV, '{"S":"héllo 😀 \\"q\\""}', '"héllo 😀 \\"q\\""');
exact('utf8', 'empty S', AV, '{"S":""}', '""');
exact('utf8', 'N keeps trailing zeros', AV, '{"N":"12.50"}', '12.50');
exact('utf8', 'N with exponent', AV, '{"N":"-12.50e3"}', '-12500');
exact('utf8', 'N 1E+2 is a valid numeric', AV, '{"N":"1E+2"}', '100');
exact('utf8', 'N with 38 digits', AV, '{"N":"12345678901234567890123456789012345678"}', '12345678901234567890123456789012345678');
exact('utf8', 'N tiny', AV, '{"N":"1E-130"}', '0.' + '0'.repeat(129) + '1');
exact('utf8', 'N in forms JSON lacks', AV, '{"L":[{"N":"+5"},{"N":".5"},{"N":"5."},{"N":"007"},{"N":"-0"}]}', '[5, 0.5, 5, 7, 0]');
exact('utf8', 'B stays base64', AV, '{"B":"AAEC/w=="}', '"AAEC/w=="');
exact('utf8', 'BOOL', AV, '{"L":[{"BOOL":true},{"BOOL":false}]}', '[true, false]');
exact('utf8', 'NULL', AV, '{"NULL":true}', 'null');
exact('utf8', 'M and L nest', AV, '{"M":{"b":{"L":[{"M":{}},{"L":[]}]},"a":{"S":"x"}}}', '{"a": "x", "b": [{}, []]}');
exact('utf8', 'SS', AV, '{"SS":["b","a"]}', '["b", "a"]');
exact('utf8', 'NS keeps digits', AV, '{"NS":["1.50","-2e2"]}', '[1.50, -200]');
exact('utf8', 'BS', AV, '{"BS":["AA==","AQ=="]}', '["AA==", "AQ=="]');

// --- Reading: malformed AttributeValues
fails('utf8', 'AV not an object', AV, '"x"', BAD + 'The value at meta is a JSON string, not an object with one type key.');
fails('utf8', 'AV without a key', AV, '{}', BAD + 'The value at meta has no type key.');
fails('utf8', 'AV with two keys', AV, '{"S":"x","N":"1"}', BAD + 'The value at meta has 2 keys; an AttributeValue has exactly one.');
fails('utf8', 'AV with an unknown key', AV, '{"X":"1"}', BAD + 'The value at meta has the unknown type key "X".');
fails('utf8', 'S not a string', AV, '{"S":1}', BAD + 'The "S" value at meta is a JSON number; it must be a JSON string.');
fails('utf8', 'N not a string', AV, '{"N":1}', BAD + 'The "N" value at meta is a JSON number; it must be a JSON string.');
fails('utf8', 'BOOL not a boolean', AV, '{"BOOL":"true"}', BAD + 'The "BOOL" value at meta is a JSON string; it must be a JSON boolean.');
fails('utf8', 'NULL not a boolean', AV, '{"NULL":null}', BAD + 'The "NULL" value at meta is a JSON null; it must be a JSON boolean.');
fails('utf8', 'M not an object', AV, '{"M":[]}', BAD + 'The "M" value at meta is a JSON array; it must be a JSON object.');
fails('utf8', 'L not an array', AV, '{"L":{}}', BAD + 'The "L" value at meta is a JSON object; it must be a JSON array.');
fails('utf8', 'N not a number', AV, '{"N":"12abc"}', 'ERROR HV00A: invalid DynamoDB attribute value in attribute "meta" of item "EventID#e1" DETAIL: The "N" value at meta, "12abc", is not a valid number.');
for (const n of ['', 'NaN', 'Infinity', ' 1', '1 ', '1e', '.', '-', '0x10', '1e2147483647']) {
  fails('utf8', `N ${JSON.stringify(n)} rejected`, AV, JSON.stringify({ N: n }), 'ERROR HV00A: invalid DynamoDB attribute value');
}
fails('utf8', 'SS element not a string', AV, '{"SS":["a",1]}', BAD + 'Element 1 of the "SS" value at meta is a JSON number, not a string.');
fails('utf8', 'NS element not a number', AV, '{"NS":["1","x"]}', 'ERROR HV00A: invalid DynamoDB attribute value in attribute "meta" of item "EventID#e1" DETAIL: Element 1 of the "NS" value at meta, "x", is not a valid number.');
fails('utf8', 'error names the path', AV, '{"M":{"tags":{"L":[{"S":"a"},{"L":[{"Q":1}]}]}}}', BAD + 'The value at meta.tags[1][0] has the unknown type key "Q".');
fails('utf8', 'error without names', 'codec_test.av_to_jsonb($1, NULL, NULL)', '{}', 'ERROR HV004: invalid DynamoDB attribute value DETAIL: The value at (value) has no type key.');
fails('utf8', 'error without item', 'codec_test.av_to_jsonb($1, \'meta\', NULL)', '{}', 'ERROR HV004: invalid DynamoDB attribute value in attribute "meta" DETAIL:');
fails('utf8', 'U+0000 has no jsonb form', AV, '{"M":{"a":{"S":"x\\u0000y"}}}', 'ERROR 22P05: string contains the character U+0000, which jsonb cannot hold CONTEXT: DynamoDB attribute value meta.a of item "EventID#e1"');
fails('utf8', 'av_to_json checks too', AV_JSON, '{"L":[{"S":1}]}', 'ERROR HV004: invalid DynamoDB attribute value in attribute "attr" of item "item" DETAIL: The "S" value at attr[0] is a JSON number; it must be a JSON string.');

// --- Reading: AttributeValue -> json-c value (plain JSON, digits kept)
exact('utf8', 'av_to_json', AV_JSON, '{"M":{"n":{"N":"12.50"},"l":{"L":[{"NULL":true},{"BOOL":false},{"B":"AA=="}]}}}', '{"n":12.50,"l":[null,false,"AA=="]}');
exact('utf8', 'av_to_json numbers as valid JSON', AV_JSON, '{"NS":["+.5","5.","007","-0","1E+2","99999999999999999999999"]}', '[0.5,5,7,-0,1E+2,99999999999999999999999]');
exact('utf8', 'av_to_json sets', AV_JSON, '{"L":[{"SS":["a"]},{"BS":["AA=="]}]}', '[["a"],["AA=="]]');
exact('utf8', 'av_to_json top-level NULL', AV_JSON, '{"NULL":true}', 'null');

// --- JSON text -> jsonb (the payload attribute)
exact('utf8', 'text: JSON object', TEXT, '{"b": [1.50, "x"], "a": null}', '{"a": null, "b": [1.50, "x"]}');
exact('utf8', 'text: scalar with spaces', TEXT, ' 5 ', '5');
exact('utf8', 'text: unicode escapes', TEXT, '"\\u00e9\\ud83d\\ude00"', '"é😀"');
exact('utf8', 'text: not JSON stays a string', TEXT, 'hello world', '"hello world"');
exact('utf8', 'text: trailing garbage', TEXT, '{"a":1} x', '"{\\"a\\":1} x"');
exact('utf8', 'text: unfinished', TEXT, '[1, 2', '"[1, 2"');
exact('utf8', 'text: empty', TEXT, '', '""');
exact('utf8', 'text: single quotes', TEXT, "{'a': 1}", '"{\'a\': 1}"');
exact('utf8', 'text: \\u0000 stays a string', TEXT, '["\\u0000"]', '"[\\"\\\\u0000\\"]"');
exact('utf8', 'text: lone surrogate stays a string', TEXT, '"\\ud800"', '"\\"\\\\ud800\\""');
exact('utf8', 'text: number beyond numeric stays a string', TEXT, '[1e999999]', '"[1e999999]"');
exact('utf8', 'text: big number numeric holds', TEXT, '1e400', '1' + '0'.repeat(400));

// numeric's limits: text jsonb_in could not read stays a string; each
// verdict is checked against numeric_in itself too
for (const [number, fits] of [['1e131071', true], ['1e131072', false], ['9.9e131071', true], ['99e131071', false],
  ['0.000001e131077', true], ['0.000001e131078', false], ['1e-16383', true], ['1e-16384', false], ['1.0e-16382', true],
  ['1.00e-16382', false], ['0e-16383', true], ['0e-16384', false], ['0.0e999999999', true], ['0e1073741822', true],
  ['0e1073741823', false], ['-1e-1073741823', false], ['1e99999999999999999999', false]]) {
  cases.utf8.push({
    name: `text: ${number} ${fits ? 'fits' : 'does not fit'} numeric`, input: number,
    sql: `jsonb_typeof(${TEXT}) || ' ' || codec_test.outcome('$1::numeric IS NOT NULL', $1, '')`,
    check: (got) => got.startsWith(fits ? 'number true' : 'string ERROR 22003') || `want ${fits ? 'number true' : 'string ERROR 22003...'}`,
  });
}

// --- json-c value -> jsonb (an S3 body)
exact('utf8', 'json-c: digits kept', JSONC, '{"a":1.50,"b":[1E+2,-0.0]}', '{"a": 1.50, "b": [100, 0.0]}');
exact('utf8', 'json-c: 64-bit integers exact', JSONC, '[9223372036854775807,-9223372036854775808,18446744073709551615]', '[9223372036854775807, -9223372036854775808, 18446744073709551615]');
exact('utf8', 'json-c: NaN and Infinity become null', JSONC, '[NaN,Infinity,-Infinity,1e999999]', '[null, null, null, null]');
exact('utf8', 'json-c: strings and literals', JSONC, '{"s":"é\\n","t":true,"f":false,"n":null}', '{"f": false, "n": null, "s": "é\\n", "t": true}');
fails('utf8', 'json-c: U+0000', JSONC, '["a\\u0000"]', 'ERROR 22P05: string contains the character U+0000');

// --- Writing: compact text as JSON.stringify prints it
exact('utf8', 'compact: numbers as JavaScript prints them', COMPACT, '[1.50, 1e2, 1e21, 999999999999999999999, 0.0000001, 0.000001, -0, 12345678901234567890, 1e400, -1e400, 1e-400, 5e-324, 0.1, 1.7976931348623157e308]',
  '[1.5,100,1e+21,1e+21,1e-7,0.000001,0,12345678901234567000,null,null,0,5e-324,0.1,1.7976931348623157e+308]');
exact('utf8', 'compact: escapes', COMPACT, '"q\\" b\\\\ \\b\\f\\n\\r\\t \\u0001\\u001f \\u007f / é \\u2028"', '"q\\" b\\\\ \\b\\f\\n\\r\\t \\u0001\\u001f \u007f / é \u2028"');
exact('utf8', 'compact: keys in jsonb order, no spaces', COMPACT, '{"bb": {"x": [ ]}, "a": {}, "c": [1, {"d": null}]}', '{"a":{},"c":[1,{"d":null}],"bb":{"x":[]}}');
exact('utf8', 'compact: scalar', COMPACT, '"x"', '"x"');
exact('utf8', 'compact: empty string', COMPACT, '""', '""');

// --- Writing: jsonb -> AttributeValue
exact('utf8', 'to AV: object', TO_AV, '{"b": [1.50, true, ""], "a": null}', '{"M":{"a":{"NULL":true},"b":{"L":[{"N":"1.5"},{"BOOL":true},{"S":""}]}}}');
exact('utf8', 'to AV: scalars', TO_AV, '"x/y"', '{"S":"x/y"}');
exact('utf8', 'to AV: number', TO_AV, '1e21', '{"N":"1e+21"}');
exact('utf8', 'to AV: null', TO_AV, 'null', '{"NULL":true}');
exact('utf8', 'to AV: empty containers', TO_AV, '[{}, []]', '{"L":[{"M":{}},{"L":[]}]}');
fails('utf8', 'to AV: Infinity refused', TO_AV, '{"a": 1e400}', 'ERROR 22003: number is out of range for a DynamoDB attribute');

// --- Another database encoding: converted, never crashed
exact('latin1', 'latin1: S converted', AV, '{"S":"café"}', '"café"');
fails('latin1', 'latin1: S without a LATIN1 form', AV, '{"M":{"e":{"S":"\\ud83d\\ude00"}}}', 'ERROR 22P05: character with byte sequence 0xf0 0x9f 0x98 0x80 in encoding "UTF8" has no equivalent in encoding "LATIN1" CONTEXT: DynamoDB attribute value meta.e of item "EventID#e1"');
exact('latin1', 'latin1: JSON text converted', TEXT, '{"k":"é","u":"\\u00e9"}', '{"k": "é", "u": "é"}');
exact('latin1', 'latin1: to AV writes UTF-8', 'encode(convert_to(codec_test.jsonb_to_av($1::jsonb), \'LATIN1\'), \'hex\')', '"é"', Buffer.from('{"S":"é"}').toString('hex'));
exact('latin1', 'latin1: compact writes UTF-8', 'encode(convert_to(codec_test.compact($1::jsonb), \'LATIN1\'), \'hex\')', '{"é":"é"}', Buffer.from('{"é":"é"}').toString('hex'));

// ---------------------------------------------------------------------------
// Seeded random values

function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    float: next,
    int: (n) => Math.floor(next() * n),
    pick: (xs) => xs[Math.floor(next() * xs.length)],
    chance: (p) => next() < p,
  };
}

const r = rng(SEED);

function digits(n, leadingNonZero) {
  let s = '';
  for (let i = 0; i < n; i++) s += String(i === 0 && leadingNonZero ? 1 + r.int(9) : r.int(10));
  return s;
}

const EDGE_NUMBERS = ['0', '-0', '0.0', '1e21', '1e+21', '999999999999999999999', '100000000000000000000', '1e-7', '0.000001',
  '0.0000001', '9007199254740993', '9007199254740992', '5e-324', '2.5e-324', '1.7976931348623157e308', '1.7976931348623159e308',
  '1e400', '-1e400', '1e-400', '123456789012345678901234567890', '0.1', '0.30000000000000004', '1.5', '12345678901234567890',
  '4.35', '2e-7', '-1.5e-10', '1.2e+30', '1E2', '123e-20', '0.5e-6', '18446744073709551616', '-9223372036854775809'];

// A JSON number token; opts.jsonc keeps integers within 64 bits, because
// json-c's parser clamps longer ones before the codec sees them
function genNumberText(opts) {
  const text = genAnyNumberText();
  return opts.jsonc && /^-?\d{19,}$/.test(text) ? text.slice(0, 18) : text;
}

function genAnyNumberText() {
  const sign = r.chance(0.3) ? '-' : '';
  switch (r.int(7)) {
    case 0: return String(r.int(2001) - 1000);
    case 1: return sign + digits(1 + r.int(40), true);
    case 2: return sign + (r.chance(0.3) ? '0' : digits(1 + r.int(12), true)) + '.' + digits(1 + r.int(25)) + (r.chance(0.3) ? '000' : '');
    case 3: return sign + digits(1, true) + (r.chance(0.5) ? '.' + digits(1 + r.int(20)) : '') + r.pick(['e', 'E']) + r.pick(['', '+', '-']) + String(r.int(330));
    case 4: return String((r.float() - 0.5) * 10 ** (r.int(50) - 25));
    case 5: return String(r.int(1 << 30) * r.pick([1, 1000, 1e6, 1e-3]));
    default: return r.pick(EDGE_NUMBERS);
  }
}

// A JavaScript string mixing the characters that escaping must get right
const CHAR_POOL = ['a', 'b', 'Z', '0', ' ', '"', '\\', '/', '\b', '\f', '\n', '\r', '\t', '\u0001', '\u001f', '\u007f', '\u0080',
  'é', 'ß', '中', '😀', '\u2028', '\uffff', '{', ':', ','];

function genString(maxLen) {
  let s = '';
  const n = r.int(maxLen + 1);
  for (let i = 0; i < n; i++) s += r.pick(CHAR_POOL);
  return s;
}

// JSON text of a string, escaped in a random (valid) way
function emitString(s) {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0);
    const short = { '"': '\\"', '\\': '\\\\', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t' }[ch];
    const u = (code) => '\\u' + code.toString(16).padStart(4, '0')[r.chance(0.5) ? 'toUpperCase' : 'toLowerCase']();
    const unicode = () => (cp > 0xffff ? u(ch.charCodeAt(0)) + u(ch.charCodeAt(1)) : u(cp));
    if (short !== undefined) out += r.chance(0.7) ? short : unicode();
    else if (cp < 0x20) out += unicode();
    else if (ch === '/' && r.chance(0.5)) out += '\\/';
    else out += r.chance(0.8) ? ch : unicode();
  }
  return out + '"';
}

const ws = () => r.pick(['', '', '', ' ', '\n', '\t', '\r\n  ']);

// jsonb's key order: shorter (in bytes) first, then bytewise
function jsonbKeyOrder(a, b) {
  const ba = Buffer.from(a, 'utf8');
  const bb = Buffer.from(b, 'utf8');
  return ba.length - bb.length || Buffer.compare(ba, bb);
}

// Random JSON text; objects are written in jsonb's key order and with no
// key that looks like an array index (JavaScript would move it first), so
// that JSON.stringify(JSON.parse(text)) is the order jsonb gives back.
function genJsonText(depth, opts) {
  const kind = r.int(depth > 0 ? 9 : 6);
  switch (kind) {
    case 0: return 'null';
    case 1: return r.pick(['true', 'false']);
    case 2: case 3: return genNumberText(opts);
    case 4: case 5: return emitString(genString(8));
    case 6: case 7: {
      const keys = new Set();
      const n = r.int(5);
      while (keys.size < n) {
        const k = genString(6);
        if (!/^\d+$/.test(k) && k !== '__proto__') keys.add(k);
      }
      const members = [...keys].sort(jsonbKeyOrder)
        .map((k) => ws() + emitString(k) + ws() + ':' + ws() + genJsonText(depth - 1, opts) + ws());
      return '{' + (members.length ? members.join(',') : ws()) + '}';
    }
    default: {
      const n = r.int(5);
      const elems = [];
      for (let i = 0; i < n; i++) elems.push(ws() + genJsonText(depth - 1, opts) + ws());
      return '[' + (elems.length ? elems.join(',') : ws()) + ']';
    }
  }
}

// What the SDK's marshalling gives for a value, or the reason it refuses.
// Numbers beyond +-Number.MAX_SAFE_INTEGER need allowImpreciseNumbers in the
// SDK; the codec writes them the same way (as JavaScript prints them).
function sdkAttr(value) {
  for (const allowImpreciseNumbers of [false, true]) {
    try {
      return convertToAttr(value, { removeUndefinedValues: true, allowImpreciseNumbers });
    } catch (e) {
      if (allowImpreciseNumbers || !/SAFE_INTEGER/.test(e.message)) return { refused: e.message };
    }
  }
  return undefined;
}

// --- Number formatting over the whole double range: every power of two
// (where the rounding interval is lopsided, so the nearest short decimal
// is not always one that reads back) and random bit patterns, each written
// with 17 digits
const doubles = [];
for (let k = -1074; k <= 1023; k++) doubles.push(2 ** k);
const bits = new DataView(new ArrayBuffer(8));
while (doubles.length < 2098 + 3000) {
  bits.setUint32(0, r.int(2 ** 32));
  bits.setUint32(4, r.int(2 ** 32));
  const d = bits.getFloat64(0);
  if (Number.isFinite(d)) doubles.push(d);
}
const doublesText = '[' + doubles.map((d) => d.toPrecision(17)).join(',') + ']';
exact('utf8', 'compact: powers of two and random doubles', COMPACT, doublesText, JSON.stringify(doubles));
exact('utf8', 'to AV: powers of two and random doubles', TO_AV, doublesText,
  JSON.stringify({ L: doubles.map((d) => ({ N: String(d) })) }));

// --- Writing direction: compact text and AttributeValue of random JSON
for (let i = 0; i < RANDOM_CASES; i++) {
  const x = ws() + genJsonText(4, {}) + ws();
  const value = JSON.parse(x);
  const want = JSON.stringify(value);
  cases.utf8.push({ name: `random compact #${i}`, sql: COMPACT, input: x, check: (got) => got === want || `want ${want}` });

  const attr = sdkAttr(value);
  cases.utf8.push({
    name: `random marshall #${i}`, sql: TO_AV, input: x,
    check: (got) => {
      if (attr.refused) return got.startsWith('ERROR 22003') || `SDK refuses (${attr.refused}); want an error`;
      if (got.startsWith('ERROR')) return `want ${JSON.stringify(attr)}`;
      return isDeepStrictEqual(JSON.parse(got), attr) || `want ${JSON.stringify(attr)}`;
    },
  });
}

// --- JSON text -> jsonb: valid text as jsonb_in reads it, anything else a string
for (let i = 0; i < RANDOM_CASES; i++) {
  let x = genJsonText(4, {});
  switch (r.int(4)) {
    case 0: x = x.slice(0, r.int(x.length + 1)); break;
    case 1: x += r.pick([' x', '}', ']', ',', ' 1', '"']); break;
    case 2: x = r.pick(['hello', 'NaN', 'undefined', "{'a':1}", '01', '.5', '+1', '[1,]', '{"a" 1}', 'tru', '"\\x"', '']); break;
    default: break;
  }
  let valid = true;
  try { JSON.parse(x); } catch (e) { valid = false; }
  const sql = valid ? `(${TEXT} = $1::jsonb)` : `(${TEXT} = to_jsonb($1))`;
  exact('utf8', `random JSON text #${i} (${valid ? 'valid' : 'not JSON'})`, sql, x, 'true');
}

// --- json-c value -> jsonb: the same value as PostgreSQL reads the text
for (let i = 0; i < RANDOM_CASES; i++) {
  const x = genJsonText(4, { jsonc: true });
  exact('utf8', `random json-c value #${i}`, `(SELECT CASE WHEN j = $1::jsonb THEN 'same' ELSE j::text END FROM (SELECT ${JSONC} AS j) s)`, x, 'same');
}

// --- Reading direction: random AttributeValues with exact numbers.
// Each number is drawn as digits D and exponent E; the wire text writes
// D x 10^E in a random style, the expected JSON as "DeE".
function genDynamoNumber() {
  const d = digits(1 + r.int(38), true);
  const e = r.int(200) - 100 - d.length;
  const sign = r.chance(0.3) ? '-' : (r.chance(0.1) ? '+' : '');
  const point = r.int(d.length + 1);
  let mantissa = d.slice(0, point) + '.' + d.slice(point);
  if (point === d.length) mantissa = r.chance(0.5) ? d : d + '.';
  if (point === 0) mantissa = r.pick(['', '0', '00']) + mantissa;
  const exp = e + (d.length - point);
  const wire = sign + mantissa + (exp === 0 && r.chance(0.5) ? '' : r.pick(['e', 'E']) + (exp >= 0 ? r.pick(['', '+']) : '') + exp);
  return { wire, json: (sign === '-' ? '-' : '') + d + 'e' + e };
}

function genBase64() {
  const bytes = [];
  for (let n = r.int(12); n > 0; n--) bytes.push(r.int(256));
  return Buffer.from(bytes).toString('base64');
}

// [AttributeValue, expected JSON text]
function genAv(depth) {
  switch (r.int(depth > 0 ? 10 : 7)) {
    case 0: { const s = genString(8); return [{ S: s }, JSON.stringify(s)]; }
    case 1: { const n = genDynamoNumber(); return [{ N: n.wire }, n.json]; }
    case 2: { const b = genBase64(); return [{ B: b }, JSON.stringify(b)]; }
    case 3: { const b = r.chance(0.5); return [{ BOOL: b }, String(b)]; }
    case 4: return [{ NULL: true }, 'null'];
    case 5: {
      const ss = [...new Set(Array.from({ length: 1 + r.int(4) }, () => genString(6)))];
      return [{ SS: ss }, JSON.stringify(ss)];
    }
    case 6: {
      const ns = Array.from({ length: 1 + r.int(4) }, genDynamoNumber);
      return r.chance(0.5)
        ? [{ NS: ns.map((n) => n.wire) }, '[' + ns.map((n) => n.json).join(',') + ']']
        : (() => { const bs = Array.from({ length: 1 + r.int(3) }, genBase64); return [{ BS: bs }, JSON.stringify(bs)]; })();
    }
    case 7: case 8: {
      const m = {};
      const parts = [];
      for (let n = r.int(5); n > 0; n--) {
        const k = genString(6);
        if (k in m) continue;
        const [av, json] = genAv(depth - 1);
        m[k] = av;
        parts.push(JSON.stringify(k) + ':' + json);
      }
      return [{ M: m }, '{' + parts.join(',') + '}'];
    }
    default: {
      const items = Array.from({ length: r.int(5) }, () => genAv(depth - 1));
      return [{ L: items.map((x) => x[0]) }, '[' + items.map((x) => x[1]).join(',') + ']'];
    }
  }
}

for (let i = 0; i < RANDOM_CASES; i++) {
  const [av, json] = genAv(4);
  const wire = JSON.stringify(av);
  cases.utf8.push({
    name: `random AttributeValue #${i}`, input: wire, expected: json,
    sql: `(SELECT CASE WHEN j = $2::jsonb THEN 'same' ELSE j::text END FROM (SELECT ${AV} AS j) s)`,
    check: (got) => got === 'same' || `want ${json}`,
  });
  cases.utf8.push({
    name: `random AttributeValue as json-c #${i}`, input: wire, expected: json,
    sql: `(SELECT CASE WHEN j::jsonb = $2::jsonb THEN 'same' ELSE j END FROM (SELECT ${AV_JSON} AS j) s)`,
    check: (got) => got === 'same' || `want ${json}`,
  });
}

// --- Reading what the SDK itself writes, and writing it back the same
function genJsValue(depth) {
  switch (r.int(depth > 0 ? 8 : 6)) {
    case 0: return null;
    case 1: return r.chance(0.5);
    case 2: return r.int(2 ** 31) - 2 ** 30;
    case 3: return Number(String((r.float() - 0.5) * 10 ** (r.int(30) - 15)));
    case 4: case 5: return genString(8);
    case 6: {
      const o = {};
      for (let n = r.int(5); n > 0; n--) o[genString(6)] = genJsValue(depth - 1);
      return o;
    }
    default: return Array.from({ length: r.int(5) }, () => genJsValue(depth - 1));
  }
}

for (let i = 0; i < RANDOM_CASES; i++) {
  const value = genJsValue(4);
  const attr = convertToAttr(value, { removeUndefinedValues: true });
  const wire = JSON.stringify(attr);
  cases.utf8.push({
    name: `SDK-marshalled value #${i}`, input: wire, expected: JSON.stringify(value),
    sql: `(SELECT CASE WHEN j = $2::jsonb THEN 'same' ELSE j::text END FROM (SELECT ${AV} AS j) s)`,
    check: (got) => got === 'same' || `want ${JSON.stringify(value)}`,
  });
  cases.utf8.push({
    name: `SDK-marshalled value written back #${i}`, input: wire,
    sql: `codec_test.jsonb_to_av(${AV})`,
    check: (got) => (!got.startsWith('ERROR') && isDeepStrictEqual(JSON.parse(got), attr)) || `want ${wire}`,
  });
}

// ---------------------------------------------------------------------------
// Run

// Polls pg_isready until the server accepts connections or the time is up
function waitUntilReady(timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  while (Date.now() < deadline) {
    try {
      execFileSync('pg_isready', ['-q', '-t', '5'], { timeout: 10000 });
      return;
    } catch (notReady) {
      Atomics.wait(pause, 0, 0, 200);
    }
  }
}

// Drops the test databases; after a backend crash the server restarts, so
// wait until it accepts connections again (bounded) and retry
function dropDatabases(admin, names) {
  const sql = names.map((n) => `DROP DATABASE IF EXISTS ${n};`).join('\n');
  for (let attempt = 1; ; attempt++) {
    try {
      psql(admin, sql);
      return;
    } catch (e) {
      if (attempt === 5) {
        console.log(`could not drop the test databases: ${e.message}`);
        return;
      }
      waitUntilReady(60000);
    }
  }
}

function main() {
  const admin = process.env.PGDATABASE || 'postgres';
  const suffix = `${process.pid}`;
  const databases = {
    utf8: `esd_codec_test_utf8_${suffix}`,
    latin1: `esd_codec_test_latin1_${suffix}`,
  };
  let passed = 0;
  let failed = 0;

  try {
    psql(admin, `CREATE DATABASE ${databases.utf8} TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C';
                 CREATE DATABASE ${databases.latin1} TEMPLATE template0 ENCODING 'LATIN1' LOCALE 'C';`);
    for (const [db, list] of Object.entries(cases)) {
      const results = runCases(databases[db], list);
      list.forEach((c, i) => {
        const got = results[i];
        const verdict = got === undefined ? 'no result' : c.check(got);
        if (verdict === true) {
          passed++;
        } else {
          failed++;
          const show = (s) => (s.length > 400 ? s.slice(0, 400) + '...' : s);
          console.log(`FAIL ${c.name}\n  input: ${show(JSON.stringify(c.input))}\n  got:   ${show(String(got))}\n  ${show(String(verdict))}`);
        }
      });
    }
  } catch (e) {
    failed++;
    console.log(`FAIL running the cases: ${e.message}`);
  } finally {
    dropDatabases(admin, Object.values(databases));
  }
  console.log(`codec: ${passed} passed, ${failed} failed`);
  process.exitCode = failed === 0 ? 0 : 1;
}

main();
