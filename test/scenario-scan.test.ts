/**
 * The scenario parser's fast path (src/guest/scenario/scan.ts) against the
 * general parser (ScenarioParser.line, JSON.parse): for generated lines —
 * valid operations of every kind in every spelling the syntax allows, and
 * the same lines broken in the ways a user breaks them — both must store
 * the same operands or throw the same located error.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rng } from '../src/guest/rng.js';
import { parseScenario, type Scenario, ScenarioError, ScenarioParser } from '../src/guest/scenario/parse.js';

const MACHINE = '{"op":"machine","vcpus":4,"memory":"0x10000000"}';

type Outcome = { error: string } | { ops: number[][] };

function operands(s: Scenario): number[][] {
  const rows: number[][] = [];
  for (let i = 0; i < s.count; i++) {
    rows.push([s.op, s.line, s.small, s.cpl, s.aHi, s.aLo, s.vHi, s.vLo].map((a) => a[i] as number));
  }
  return rows;
}

function outcome(line: string, fast: boolean, maxOps = 1 << 24): Outcome {
  const p = new ScenarioParser('f', maxOps);
  try {
    p.line(MACHINE, 1);
    if (fast) {
      const b = new TextEncoder().encode(line);
      // Inside a larger buffer, as the line reader gives it.
      const big = new Uint8Array(b.length + 8);
      big.set(b, 3);
      big[2] = 10;
      big[3 + b.length] = 10;
      p.bytes(big, 3, 3 + b.length, 2);
    } else p.line(line, 2);
    return { ops: operands(p.finish(2)) };
  } catch (e) {
    if (!(e instanceof ScenarioError)) throw e;
    return { error: e.message };
  }
}

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;

/** An integer in one of the spellings the format allows, or a near miss. */
function integer(r: () => number, max: number): string {
  const v = Math.floor(r() * max);
  const k = r();
  if (k < 0.35) return String(v);
  if (k < 0.6) return `"0x${v.toString(16)}"`;
  if (k < 0.65) return `"0X${v.toString(16).toUpperCase()}"`;
  if (k < 0.7) return `"0x000000000000${v.toString(16)}"`;
  if (k < 0.73) return `"0x${'f'.repeat(Math.floor(r() * 20) + 1)}"`;
  return pick(r, [
    `${v}.0`,
    `${v}.5`,
    `${v}e0`,
    `-${v}`,
    `0${v}`,
    '9007199254740992',
    '999999999999999',
    '1000000000000000',
    `"${v}"`,
    '"0x"',
    '"0xg1"',
    'true',
    'null',
    `[${v}]`,
    `"0x${v}\\u0030"`,
    `"\\u0030x${v}"`,
    '"0x1ffffffffffffffff"',
    '"0x10000000000000000"',
    '"0x00000000000000000001"',
  ]);
}

const OPS: Record<string, Array<[string, number]>> = {
  read: [
    ['va', 2 ** 40],
    ['size', 9],
    ['cpl', 5],
  ],
  write: [
    ['va', 2 ** 40],
    ['size', 9],
    ['value', 2 ** 36],
    ['cpl', 5],
  ],
  fetch: [
    ['va', 2 ** 40],
    ['cpl', 5],
  ],
  pread: [
    ['gpa', 2 ** 30],
    ['size', 9],
  ],
  pwrite: [
    ['gpa', 2 ** 30],
    ['size', 9],
    ['value', 2 ** 20],
  ],
  invlpg: [['va', 2 ** 48]],
  invpcid: [
    ['type', 5],
    ['pcid', 0x2000],
    ['va', 2 ** 40],
  ],
  flush: [],
  dump: [
    ['gpa', 2 ** 30],
    ['length', 70000],
  ],
  cpu: [['vcpu', 6]],
  wrcr: [
    ['reg', 0],
    ['value', 2 ** 40],
  ],
  wrmsr: [
    ['msr', 0],
    ['value', 2 ** 12],
  ],
  wrpkru: [['value', 2 ** 33]],
  setac: [['value', 3]],
  p2m: [
    ['gfn', 70000],
    ['count', 10],
    ['type', 0],
  ],
  machine: [
    ['vcpus', 2],
    ['memory', 2 ** 20],
  ],
};

function line(r: () => number): string {
  const op = pick(r, [...Object.keys(OPS), 'reads', 'Read', 'rea', '__proto__', 'toString']);
  const keys = (Object.hasOwn(OPS, op) ? OPS[op] : OPS.read) as Array<[string, number]>;
  const fields: string[] = [`"op":${r() < 0.97 ? `"${op}"` : pick(r, ['1', '"re\\u0061d"', 'null'])}`];
  for (const [k, max] of keys) {
    if (r() < 0.03) continue; // a missing key
    let v: string;
    if (k === 'reg') v = pick(r, ['"cr0"', '"cr3"', '"cr4"', '"cr2"', '"CR0"', '3', '"cr"', '"cr00"']);
    else if (k === 'msr') v = pick(r, ['"efer"', '"EFER"', '"efe"', '1']);
    else if (k === 'type' && op === 'p2m') v = pick(r, ['"ram"', '"rom"', '"none"', '"x"']);
    else v = integer(r, r() < 0.8 ? Math.min(max, 16) : max);
    fields.push(`"${k}":${v}`);
  }
  if (r() < 0.03) fields.push(`"${pick(r, ['x', 'va', 'op', 'size', 'maxphyaddr', 'é', 'v'])}":1`);
  if (r() < 0.3) fields.sort(() => r() - 0.5);
  const sp = (): string => (r() < 0.15 ? pick(r, [' ', '\t', '  ', '\r', '\u00a0', '\f']) : '');
  let text = `${sp()}{${fields.map((f) => `${sp()}${f.replace(':', `${sp()}:${sp()}`)}${sp()}`).join(',')}}${sp()}`;
  const k = r();
  if (k < 0.02) text = text.slice(0, Math.floor(r() * text.length));
  else if (k < 0.03) text += pick(r, ['x', '}', ',', '\ufeff']);
  else if (k < 0.04) text = `${pick(r, ['#', ' #', '\ufeff', '[', ''])}${text}`;
  return text;
}

test('fast and general parser agree on generated lines, valid and broken', () => {
  const r = rng(2024);
  let fastTaken = 0;
  for (let i = 0; i < 60_000; i++) {
    const l = line(r);
    const a = outcome(l, true);
    const b = outcome(l, false);
    assert.deepEqual(a, b, `line ${JSON.stringify(l)}`);
    if ('ops' in a && a.ops.length > 0) {
      const p = new ScenarioParser('f');
      p.line(MACHINE, 1);
      const bytes = new TextEncoder().encode(l);
      if (p.scanLine(bytes, 0, bytes.length, 2)) fastTaken++;
    }
  }
  // The scanner takes most valid lines itself (the rest: machine, p2m, unusual spellings).
  assert.ok(fastTaken > 5_000, `the scanner took only ${fastTaken} lines`);
});

test('fast path: the operation limit and the first line are checked as before', () => {
  const l = '{"op":"read","va":0,"size":4,"cpl":0}';
  assert.deepEqual(outcome(l, true, 0), outcome(l, false, 0));
  assert.deepEqual(outcome(l, true, 0), { error: 'f:2: more than 0 operations, the limit for a scenario' });
  assert.throws(
    () => parseScenario(`${l}\n${MACHINE}\n`, 'g'),
    (e) => e instanceof ScenarioError && e.message === 'g:1: the first operation must be "machine"',
  );
});

test('parseScenario: lines numbered alike on both paths, non-ASCII text, a final line without newline', () => {
  const text = [
    '# é comment',
    MACHINE,
    '',
    '{"op":"read","va":"0x1000","size":8,"cpl":3}',
    '{"op":"write","va":4096,"size":8,"value":"0xffffffffffffffff","cpl":0} ',
    '  {"op":"p2m","gfn":1,"count":2,"type":"rom"}',
    '{"op":"invpcid","type":0,"pcid":4096,"va":0}',
    '{"op":"read","va":1.0,"size":8,"cpl":3}',
    '{"op":"fetch","va":"0x2000","cpl":3}',
  ].join('\n');
  const s = parseScenario(text, 'p');
  assert.deepEqual(Array.from(s.line.subarray(0, s.count)), [4, 5, 6, 7, 8, 9]);
  assert.deepEqual(Array.from(s.vHi.subarray(0, s.count)), [0, 0xffffffff, 0, 0, 0, 0]);
  assert.deepEqual(Array.from(s.vLo.subarray(0, s.count)), [0, 0xffffffff, 2, 0x1000, 0, 0]);
  assert.throws(
    () => parseScenario(`${text}\n{"op":"read","va":"0xé","size":8,"cpl":3}`, 'p'),
    (e) => e instanceof ScenarioError && e.message === 'p:10: "va": "0xé" is not a "0x..." hex integer',
  );
});
