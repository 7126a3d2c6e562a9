/**
 * The agile pager (src/pagers/agile/): its mechanism — a guest table written
 * often switches to nested mode and its writes stop exiting; it switches back
 * once it settles; large pages and the modes the shadow part does not cover
 * run nested — and its transparency: generated scenarios in every paging
 * mode, under every agile variant, give native's output with the isolation
 * checker on; so does each kernel workload at a small size.
 */
import './support/node.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { runWorkload } from '../src/guest/kernel/run.js';
import { WORKLOADS } from '../src/guest/kernel/workloads.js';
import { GEN_MODES, generateScenario } from '../src/guest/scenario/generate.js';
import { createPager, PAGERS } from '../src/pagers/registry.js';
import { assertTransparent, runText } from './support/run.js';

const RUNS = Number(process.env.UMBRA_PROPERTY_RUNS ?? 150);
const AGILE = PAGERS.find((k) => k.name === 'agile');
const VARIANTS = AGILE === undefined ? [] : AGILE.variants(4);

test('agile is registered with variants', () => {
  assert.ok(AGILE !== undefined && VARIANTS.length > 10);
});

// Every variant meets every mode: RUNS scenarios per mode, dealt out over the variants in turn (6 each at the default).
for (const mode of GEN_MODES) {
  test(`every agile variant is transparent, checker on (${mode})`, () => {
    for (const spec of VARIANTS) {
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: 2 ** 31 - 1 }),
          fc.integer({ min: 20, max: 300 }),
          fc.boolean(),
          (seed, ops, ro) => assertTransparent(spec, mode, seed, ops, ro),
        ),
        { numRuns: Math.max(1, Math.round(RUNS / VARIANTS.length)) },
      );
    }
  });
}

/**
 * A 4-level guest whose page table (gfn 4) is mapped writable at VA 0x1000:
 * PML4 0x1000 → PDPT 0x2000 → PD 0x3000 → PT 0x4000; VA 0 → frame 0x5000.
 * `edits` times it points PT[2] (VA 0x2000) at another frame through that
 * alias, invalidates and reads through it; then `quiet` rounds of reads, each
 * followed by a CR3 reload (a context switch: an exit, so the policy's clock
 * is looked at); then `late` more edits.
 */
function ptEdits(edits: number, quiet: number, late: number): string {
  const lines = [
    '{"op":"machine","vcpus":1,"memory":"0x4000000"}',
    '{"op":"pwrite","gpa":"0x1000","size":8,"value":"0x2007"}',
    '{"op":"pwrite","gpa":"0x2000","size":8,"value":"0x3007"}',
    '{"op":"pwrite","gpa":"0x3000","size":8,"value":"0x4007"}',
    '{"op":"pwrite","gpa":"0x4000","size":8,"value":"0x5007"}',
    '{"op":"pwrite","gpa":"0x4008","size":8,"value":"0x4007"}',
    '{"op":"pwrite","gpa":"0x4010","size":8,"value":"0x6007"}',
    '{"op":"wrcr","reg":"cr4","value":"0x20"}',
    '{"op":"wrmsr","msr":"efer","value":"0x900"}',
    '{"op":"wrcr","reg":"cr3","value":"0x1000"}',
    '{"op":"wrcr","reg":"cr0","value":"0x80010011"}',
    '{"op":"read","va":"0x0","size":8,"cpl":0}',
    '{"op":"read","va":"0x2000","size":8,"cpl":0}',
  ];
  const edit = (i: number): void => {
    lines.push(`{"op":"write","va":"0x1010","size":8,"value":"0x${(0x6007 + 0x1000 * (i % 8)).toString(16)}","cpl":0}`);
    lines.push('{"op":"invlpg","va":"0x2000"}');
    lines.push(`{"op":"write","va":"0x2000","size":4,"value":${i},"cpl":0}`);
  };
  for (let i = 0; i < edits; i++) edit(i);
  for (let i = 0; i < quiet; i++) {
    for (let j = 0; j < 20; j++)
      lines.push(`{"op":"read","va":"0x${(j % 2 === 0 ? 0 : 0x2000).toString(16)}","size":8,"cpl":0}`);
    lines.push('{"op":"wrcr","reg":"cr3","value":"0x1000"}');
  }
  for (let i = 0; i < late; i++) edit(edits + i);
  return `${lines.join('\n')}\n`;
}

function runAgile(spec: string, text: string): Record<string, number> {
  const pager = createPager(spec, { check: true });
  assert.equal(runText(text, { pager }), runText(text), `${spec}: the guest sees what it sees natively`);
  return pager.stats();
}

test('a page table written more often than the threshold switches to nested, and its writes stop exiting', () => {
  const text = ptEdits(20, 0, 0);
  const never = runAgile('agile:threshold=1000000000000', text);
  assert.equal(never['emulate.pt_write'], 20, 'shadowed: every edit of the table traps');
  assert.equal(never['switch.to_nested'], 0);
  assert.equal(never.entries_dropped, 20, 'each edit dropped the shadow entry it wrote');
  assert.ok((never.entries_made as number) >= 20, 'and the next access made it again');
  const s = runAgile('agile:threshold=2', text);
  assert.equal(s['switch.to_nested_writes'], 1, 'the page table switched once');
  assert.equal(s['emulate.pt_write'], 3, 'the third write trap switched it; later edits do not exit');
  assert.ok((s.exits as number) < (never.exits as number) - 15);
  assert.equal(s['nested.tables'], 1);
  const t0 = runAgile('agile:threshold=0', text);
  assert.equal(t0['emulate.pt_write'], 1, 'threshold 0: the first write trap switches');
});

test('a nested-mode table unchanged over a whole interval switches back to shadow, and traps again', () => {
  // Interval 30 operations: the quiet rounds (21 operations each) end several intervals.
  const s = runAgile('agile:threshold=2:interval=30', ptEdits(6, 8, 4));
  assert.equal(s['switch.to_nested_writes'], 2, 'to nested after the first burst, and again after the late one');
  assert.ok((s['switch.to_shadow'] as number) >= 1, 'back to shadow while quiet');
  assert.equal(s['emulate.pt_write'], 6, 'three traps per burst');
  assert.ok((s['nested.compares'] as number) >= 2);
  // Without the quiet rounds it never settles.
  const busy = runAgile('agile:threshold=2:interval=30', ptEdits(10, 0, 0));
  assert.equal(busy['switch.to_shadow'], 0);
});

test('start=nested: the address space starts wholly nested (no shadow faults) and goes to shadow once it settles', () => {
  const s = runAgile('agile:start=nested:interval=30', ptEdits(0, 8, 0));
  assert.ok((s['cr3.nested_root'] as number) >= 1);
  assert.equal(s['switch.to_shadow'], 1, 'the root settled');
  assert.ok((s['cr3.shadow_root'] as number) >= 1, 'then walked from a shadow root');
});

test('a table holding a large page is walked nested; the modes the shadow part does not cover run wholly nested', () => {
  const text = [
    '{"op":"machine","vcpus":1,"memory":"0x4000000"}',
    '{"op":"pwrite","gpa":"0x1000","size":8,"value":"0x2007"}',
    '{"op":"pwrite","gpa":"0x2000","size":8,"value":"0x3007"}',
    '{"op":"pwrite","gpa":"0x3008","size":8,"value":"0x400083"}',
    '{"op":"wrcr","reg":"cr4","value":"0x20"}',
    '{"op":"wrmsr","msr":"efer","value":"0x900"}',
    '{"op":"wrcr","reg":"cr3","value":"0x1000"}',
    '{"op":"wrcr","reg":"cr0","value":"0x80010011"}',
    '{"op":"write","va":"0x200010","size":4,"value":"0x1234","cpl":0}',
    '{"op":"read","va":"0x200010","size":4,"cpl":0}',
  ].join('\n');
  const s = runAgile('agile', `${text}\n`);
  assert.equal(s['switch.to_nested_large'], 1);
  assert.ok((s['walk.stage2_refs'] as number) > 0, 'the 2 MiB page is reached by a nested walk');
  for (const mode of ['32-bit', 'pae'] as const) {
    const scenario = generateScenario(7, { mode, ops: 100, memoryBytes: 0x800000 });
    const m = runAgile('agile', scenario);
    assert.equal(m['cr3.shadow_root'], 0, `${mode}: no shadow root`);
    assert.ok((m['cr3.nested_mode'] as number) > 0, `${mode}: walked nested`);
  }
});

test('every kernel workload gives native digest under agile, checker on (4-level and 5-level, PCID, THP)', () => {
  for (const w of WORKLOADS) {
    for (const [mode, spec, thp] of [
      ['4-level', 'agile', false],
      ['5-level', 'agile:npt:threshold=0:interval=1', true],
    ] as const) {
      const params = { size: 0.001, seed: 3, vcpus: 2, memory: 256 * 2 ** 20, thp };
      const base = { workload: w, params, mode, pcid: true, verify: true, layout: 'identity' as const };
      const native = runWorkload({ ...base, pager: createPager('native') });
      const r = runWorkload({ ...base, pager: createPager(spec, { check: true }) });
      assert.equal(r.digest, native.digest, `${w.name} (${mode}) under ${spec}`);
    }
  }
});
