/**
 * The mix workload's dials do what they say: table edits per 1,000 heap
 * accesses and the heap roamed (so the TLB miss rate); the guest sees the
 * same under native, shadow and nested paging.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mixWorkload } from '../src/guest/kernel/mix.js';
import { runWorkload } from '../src/guest/kernel/run.js';
import { collectStats } from '../src/metrics/stats.js';
import { createPager } from '../src/pagers/registry.js';

function run(editsPerK: number, footprintMiB: number, spec: string, setupOnly = false) {
  const w = mixWorkload({ editsPerK, footprintMiB, setupOnly });
  const pager = createPager(spec, { check: true });
  const r = runWorkload({
    workload: w,
    params: { size: 0.01, seed: 3, vcpus: 1, memory: w.defaults.memory, thp: false },
    mode: '4-level',
    pcid: true,
    pager,
    layout: 'identity',
  });
  return { digest: r.digest, stats: { ...collectStats(pager, r.port.cpus, r.ops, r.seconds), ...r.kernel.stats() } };
}

test('each edit maps, faults and unmaps one page: 2 PTE writes, 10,000 accesses at size 0.01', () => {
  const full = run(20, 4, 'native');
  const setup = run(20, 4, 'native', true);
  const less = (k: string) =>
    ((full.stats[k] as number | undefined) ?? 0) - ((setup.stats[k] as number | undefined) ?? 0);
  assert.equal(less('guest.user_accesses'), 10_000 + 200); // the heap accesses and one write per edit
  assert.equal(less('guest.syscalls.mmap'), 200);
  assert.equal(less('guest.syscalls.munmap'), 200);
  assert.equal(less('guest.pte_writes'), 400);
});

test('the heap roamed sets the TLB miss rate: within the TLB reach few misses, far beyond it most accesses miss', () => {
  const rate = (mib: number) => {
    const full = run(0, mib, 'native');
    const setup = run(0, mib, 'native', true);
    return ((full.stats.tlb_misses as number) - (setup.stats.tlb_misses as number)) / 10_000;
  };
  assert.ok(rate(2) < 0.01, `2 MiB: ${rate(2)}`);
  assert.ok(rate(256) > 0.9, `256 MiB: ${rate(256)}`);
});

test('the guest sees the same under native, shadow and nested paging (checkers on)', () => {
  const native = run(30, 16, 'native').digest;
  for (const spec of ['shadow', 'shadow:xen30', 'nested', 'nested:npt'])
    assert.equal(run(30, 16, spec).digest, native, spec);
});

test('dials out of range are refused', () => {
  assert.throws(() => mixWorkload({ editsPerK: -1, footprintMiB: 4 }), RangeError);
  assert.throws(() => mixWorkload({ editsPerK: 1, footprintMiB: 0 }), RangeError);
  assert.throws(() => mixWorkload({ editsPerK: 1, footprintMiB: 1.5 }), RangeError);
});
