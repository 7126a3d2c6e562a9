/** The cost model: unit costs, cost files, and the arithmetic of modelled cycles. */
import './support/node.js';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { UsageError } from '../src/cli/errors.js';
import { loadCosts } from '../src/cli/input.js';
import { mixWorkload } from '../src/guest/kernel/mix.js';
import { runWorkload } from '../src/guest/kernel/run.js';
import {
  COST_NAMES,
  type CostModel,
  DEFAULT_COSTS,
  exitCauses,
  modelCycles,
  pagerCounters,
  parseCosts,
} from '../src/metrics/costs.js';
import { collectStats, type Stats } from '../src/metrics/stats.js';
import { createPager } from '../src/pagers/registry.js';
import { NATIVE, SHADOW } from './support/stats.js';

test('default costs: every field a non-negative finite number, names listed once', () => {
  assert.deepEqual([...COST_NAMES].sort(), Object.keys(DEFAULT_COSTS).sort());
  for (const k of COST_NAMES) {
    const v = DEFAULT_COSTS[k];
    assert.ok(Number.isFinite(v) && v >= 0, k);
  }
  assert.ok(Object.isFrozen(DEFAULT_COSTS));
});

test('default walk costs reproduce the calibration: ~30 ns per 4-level TLB miss at 3.5 GHz, paging-structure caches on', () => {
  // /work/shared/corpus/realworkloads: dependent random accesses over 1 GiB, 204 ns (4 KiB pages) - 174 ns (2 MiB) = 30 ns per miss.
  // The same accesses in Umbra, natively, with the default caches: how many references a walk makes (set-up subtracted).
  const refsPerWalk = (setupOnly: boolean) => {
    const w = mixWorkload({ editsPerK: 0, footprintMiB: 1024, setupOnly });
    const pager = createPager('native');
    const r = runWorkload({
      workload: w,
      params: { size: 0.02, seed: 1, vcpus: 1, memory: w.defaults.memory, thp: false },
      mode: '4-level',
      pcid: true,
      pager,
      layout: 'identity',
    });
    const s = collectStats(pager, r.port.cpus, r.ops, r.seconds);
    return [s.walk_entry_reads as number, s.walks as number] as const;
  };
  const [refs, walks] = refsPerWalk(false);
  const [refs0, walks0] = refsPerWalk(true);
  const perWalk = (refs - refs0) / (walks - walks0);
  assert.ok(perWalk > 1.5 && perWalk < 2.5, `${perWalk} references per walk`);
  const ns = (DEFAULT_COSTS.tlb_miss + perWalk * DEFAULT_COSTS.walk_ref) / 3.5;
  assert.ok(ns > 27 && ns < 33, `${ns} ns`);
});

test('native run: each part is count x unit cost', () => {
  const m = modelCycles(NATIVE);
  assert.deepEqual(m.parts, {
    tlb_hit_ops: 900 * 4,
    tlb_miss_ops: 50 * 12,
    walks: 200 * 48,
    guest_control: 5 * 200 + 3 * 200,
    guest_faults: (10 + 1) * 300,
  });
  assert.equal(m.total, 3600 + 600 + 9600 + 1600 + 3300);
  assert.equal(m.total, 18700);
});

test('shadow run: exits by cause, handlers, emulation, upkeep, shootdowns', () => {
  const m = modelCycles(SHADOW);
  assert.deepEqual(m.parts, {
    tlb_hit_ops: 3600,
    tlb_miss_ops: 60 * 12,
    walks: 240 * 48,
    guest_control: 1600,
    guest_faults: 3300,
    'exit.page_fault': 30 * 1300,
    'exit.cr_write': 5 * 1300,
    'exit.invlpg': 3 * 1300,
    'exit.invpcid': 2 * 1300,
    'handler.fault_fixed': 15 * 2500,
    'handler.fault_injected': 10 * 1000,
    'handler.cr_write': 5 * 1000,
    'handler.invlpg': (3 + 2) * 300,
    'handler.physical_write': 2 * 500,
    'emulation.pt_write': 4 * 3000,
    'emulation.other': 1 * 3000,
    shadow_upkeep: 6 * 1000 + 1 * 500 + 8 * 50 + 2 * 200 + 20 * 10,
    shootdowns: 5000,
  });
  assert.equal(m.parts.shadow_upkeep, 7500);
  // 14,980 translation and guest + 52,000 exits + 55,000 handlers + 15,000 emulation + 7,500 + 5,000
  assert.equal(m.total, 155240);
  assert.equal(
    m.total,
    Object.values(m.parts).reduce((a, b) => a + b, 0),
  );
});

test('a custom cost model scales each part linearly; zero costs drop parts', () => {
  const zero = Object.fromEntries(COST_NAMES.map((k) => [k, 0])) as unknown as CostModel;
  assert.deepEqual(modelCycles(SHADOW, zero), { total: 0, parts: {} });
  const onlyExits: CostModel = { ...zero, vm_exit: 1 };
  const m = modelCycles(SHADOW, onlyExits);
  assert.equal(m.total, 40); // one cycle per exit: the causes add up to the total
  const doubled = Object.fromEntries(COST_NAMES.map((k) => [k, 2 * DEFAULT_COSTS[k]])) as unknown as CostModel;
  assert.equal(modelCycles(SHADOW, doubled).total, 2 * 155240);
});

test('exits counted under no cause are priced as exit.other', () => {
  const s: Stats = { pager: 'shadow', 'shadow.exits': 10, 'shadow.exit.page_fault': 7 };
  assert.deepEqual(modelCycles(s).parts, { 'exit.page_fault': 7 * 1300, 'exit.other': 3 * 1300 });
});

test('pager counters: the prefix before the first dot must equal stats.pager (variants too)', () => {
  const s: Stats = {
    pager: 'shadow:-oos',
    'shadow:-oos.exits': 5,
    'shadow:-oos.exit.page_fault': 3,
    'shadow:-oos.exit.flush': 1,
    'shadow:-oos.exit.oos_resync': 1, // declared by no pager: reported, not priced
    'shadow.exits': 99, // another pager's name: not this run's counters
    'guest.shootdown_ipis': 2,
  };
  assert.deepEqual(pagerCounters(s), { exits: 5, 'exit.page_fault': 3, 'exit.flush': 1, 'exit.oos_resync': 1 });
  assert.deepEqual(exitCauses(s), ['page_fault', 'flush']);
  assert.deepEqual(modelCycles(s).parts, {
    'exit.page_fault': 3 * 1300,
    'exit.flush': 1300,
    'exit.other': 1300,
    'handler.invlpg': 300,
    guest_shootdowns: 2 * 5000,
  });
});

test('guest shootdowns: one unit per IPI the guest kernel sent; the older name when that is absent', () => {
  assert.deepEqual(modelCycles({ pager: 'native', 'guest.shootdown_ipis': 3, 'guest.shootdowns': 1 }).parts, {
    guest_shootdowns: 3 * 5000,
  });
  assert.deepEqual(modelCycles({ pager: 'native', 'guest.shootdowns': 1 }).parts, { guest_shootdowns: 5000 });
});

test('string and missing values count as zero', () => {
  assert.deepEqual(modelCycles({ pager: 'native' }), { total: 0, parts: {} });
  assert.deepEqual(modelCycles({ pager: 'native', tlb_hits: '12' as unknown as number }).parts, {});
});

function tmpFile(name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'umbra-costs-'));
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

test('loadCosts: a file overrides any subset, the rest stay default', () => {
  const path = tmpFile('costs.json', '{ "vm_exit": 500, "walk_ref": 30.5 }\n');
  const c = loadCosts(path);
  assert.equal(c.vm_exit, 500);
  assert.equal(c.walk_ref, 30.5);
  assert.equal(c.tlb_hit, DEFAULT_COSTS.tlb_hit);
  assert.equal(DEFAULT_COSTS.vm_exit, 1300, 'defaults untouched');
  assert.equal(
    modelCycles({ pager: 'shadow', 'shadow.exits': 2, 'shadow.exit.invlpg': 2 }, c).parts['exit.invlpg'],
    1000,
  );
  assert.deepEqual(loadCosts(tmpFile('empty.json', '{}')), { ...DEFAULT_COSTS });
});

test('loadCosts: bad files are one-line usage errors naming the file and the key', () => {
  const cases: Array<[string, RegExp]> = [
    ['{"vm_exitt": 5}', /bad\.json: unknown cost "vm_exitt" \(known: guest_work, tlb_hit, /],
    ['{"vm_exit": "5"}', /bad\.json: cost "vm_exit" must be a number of cycles, got "5"/],
    ['{"vm_exit": null}', /bad\.json: cost "vm_exit" must be a number of cycles, got null/],
    ['{"walk_ref": -1}', /bad\.json: cost "walk_ref" must not be negative, got -1/],
    ['[1, 2]', /bad\.json: a cost file must be a JSON object/],
    ['{"vm_exit": 5', /bad\.json: not valid JSON/],
  ];
  for (const [text, re] of cases) {
    const path = tmpFile('bad.json', text);
    assert.throws(
      () => loadCosts(path),
      (e: unknown) => e instanceof UsageError && re.test(e.message) && !e.message.includes('\n'),
      text,
    );
  }
  assert.throws(() => loadCosts('/nonexistent/costs.json'), /\/nonexistent\/costs\.json: no such file/);
  assert.throws(() => parseCosts('{"__proto__": 1}', 'x.json'), /x\.json: unknown cost "__proto__"/);
});

test('faults the fast path reflected are priced without the guest walk', () => {
  const s: Stats = { ...SHADOW, 'shadow.fastpath.not_present': 4 };
  const { parts } = modelCycles(s, DEFAULT_COSTS);
  assert.equal(parts['handler.fault_injected'], (10 - 4) * DEFAULT_COSTS.fault_inject);
  assert.equal(parts['handler.fast_fault'], 4 * DEFAULT_COSTS.fast_fault);
  assert.ok(DEFAULT_COSTS.fast_fault < DEFAULT_COSTS.fault_inject);
});
