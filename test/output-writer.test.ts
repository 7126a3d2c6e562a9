/**
 * The scenario output writer (src/guest/scenario/output.ts, lines.ts) against
 * the spec's line formats built with plain strings: line numbers counted up
 * in place across carries (9 → 10, 999 → 1000) and jumps, hex of every width,
 * all line kinds, and chunk boundaries (many lines, a sink that keeps chunks).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rng } from '../src/guest/rng.js';
import { ScenarioLines } from '../src/guest/scenario/lines.js';

const hex = (hi: number, lo: number): string =>
  hi === 0 ? `0x${lo.toString(16)}` : `0x${hi.toString(16)}${lo.toString(16).padStart(8, '0')}`;

type Event =
  | { k: 'ok'; ln: number }
  | { k: 'value'; ln: number; hi: number; lo: number }
  | { k: 'pf'; ln: number; error: number; hi: number; lo: number }
  | { k: 'gp'; ln: number }
  | { k: 'dump'; ln: number; bytes: number[] };

function expected(events: Event[], final: string): string {
  let s = '';
  for (const e of events) {
    const head = `{"i":${e.ln}`;
    if (e.k === 'ok') s += `${head},"ok":true}\n`;
    else if (e.k === 'value') s += `${head},"value":"${hex(e.hi, e.lo)}"}\n`;
    else if (e.k === 'pf')
      s += `${head},"fault":{"vector":"PF","error":"${hex(0, e.error)}","cr2":"${hex(e.hi, e.lo)}"}}\n`;
    else if (e.k === 'gp') s += `${head},"fault":{"vector":"GP","error":"0x0"}}\n`;
    else s += `${head},"bytes":"${e.bytes.map((b) => b.toString(16).padStart(2, '0')).join('')}"}\n`;
  }
  return s + final;
}

function written(events: Event[], final: string, reuse = false): string {
  const chunks: Uint8Array[] = [];
  // A reused buffer's chunks are copied, as such a sink must; owned ones are kept as given.
  const o = new ScenarioLines((c) => chunks.push(reuse ? c.slice() : c), reuse);
  for (const e of events) {
    if (e.k === 'ok') o.ok(e.ln);
    else if (e.k === 'value') o.value(e.ln, e.hi, e.lo);
    else if (e.k === 'pf') o.pageFault(e.ln, e.error, e.hi, e.lo);
    else if (e.k === 'gp') o.generalProtection(e.ln);
    else {
      o.dumpStart(e.ln, e.bytes.length);
      for (const b of e.bytes) o.dumpByte(b);
      o.dumpEnd();
    }
  }
  o.finish(final);
  // Chunks are the sink's: each must still hold its bytes after later writes.
  return chunks.map((c) => Buffer.from(c).toString('latin1')).join('');
}

/** A value of a random hex width (1 … 16 digits), zero included. */
function value(r: () => number): [number, number] {
  const digits = Math.floor(r() * 17);
  if (digits === 0) return [0, 0];
  const v = BigInt.asUintN(64, (BigInt(Math.floor(r() * 2 ** 32)) << 32n) | BigInt(Math.floor(r() * 2 ** 32)));
  const w = v >> BigInt(64 - 4 * digits);
  return [Number(w >> 32n), Number(w & 0xffffffffn)];
}

test('every line kind, line numbers across carries and jumps, hex of every width', () => {
  const r = rng(11);
  const events: Event[] = [];
  let ln = 1;
  for (let i = 0; i < 200_000; i++) {
    const k = r();
    const [hi, lo] = value(r);
    if (k < 0.4) events.push({ k: 'value', ln, hi, lo });
    else if (k < 0.8) events.push({ k: 'ok', ln });
    else if (k < 0.9) events.push({ k: 'pf', ln, error: Math.floor(r() * 64), hi, lo });
    else if (k < 0.95) events.push({ k: 'gp', ln });
    else
      events.push({ k: 'dump', ln, bytes: Array.from({ length: Math.floor(r() * 40) }, () => Math.floor(r() * 256)) });
    // Mostly the next line; sometimes a jump of up to 10 (silent ops), of more (comments), or to a big number.
    const j = r();
    ln +=
      j < 0.8
        ? 1
        : j < 0.95
          ? 2 + Math.floor(r() * 9)
          : j < 0.999
            ? 11 + Math.floor(r() * 1000)
            : 1 + Math.floor(r() * 2 ** 31);
  }
  const final = '{"final":{"memory_sha256":"00","vcpus":[]}}\n';
  assert.equal(written(events, final), expected(events, final));
  assert.equal(written(events, final, true), expected(events, final));
});

test('line numbers from 0 across every decimal carry, one or ten at a time', () => {
  for (const step of [1, 3, 10]) {
    const events: Event[] = [];
    for (let ln = 0; ln < 120_000; ln += step) events.push({ k: 'ok', ln });
    for (let ln = 999_990; ln < 1_000_100; ln += step) events.push({ k: 'value', ln, hi: 0, lo: ln });
    events.push({ k: 'ok', ln: 4_294_967_295 }, { k: 'ok', ln: 9_007_199_254_740_000 });
    assert.equal(written(events, ''), expected(events, ''));
  }
});

test('a long dump and a long final line cross chunk boundaries', () => {
  const bytes = Array.from({ length: 65536 }, (_, i) => (i * 7) & 255);
  const events: Event[] = [
    { k: 'dump', ln: 5, bytes },
    { k: 'ok', ln: 6 },
    { k: 'dump', ln: 7, bytes: [] },
  ];
  const final = `{"final":{"x":"${'a'.repeat(300_000)}"}}\n`;
  assert.equal(written(events, final), expected(events, final));
  assert.equal(written(events, final, true), expected(events, final));
});
