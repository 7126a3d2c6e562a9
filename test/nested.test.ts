/**
 * The nested pager (src/pagers/nested): the exits the hardware raises and
 * what the pager makes of them, on small guests driven through the CPU, and
 * transparency — the guest sees what it sees natively — under every nested
 * variant on generated scenarios.
 *
 *  - An EPT violation's qualification (SDM vol. 3C, table 28-7): a guest
 *    paging-structure reference (bit 8 clear; a write with EPT A/D on) vs the
 *    final translation (bit 8 set).
 *  - An execute-only EPT page: fetches pass, a read is a violation that says
 *    the page is executable.
 *  - NPT's user-bit rule (APM vol. 2, 15.25.5): a nested leaf without U/S
 *    refuses the guest's supervisor access (#NPF, EXITINFO1 P|U).
 *  - 5-level EPT: a 2-D walk of a 4-level guest reads (4+1)×(5+1)−1 = 29
 *    entries, 24 with 4-level EPT.
 *  - ROM writes discarded, p2m none/ram at run time (INVEPT on every vCPU),
 *    PAE PDPTE loads through stage 2, a GPA beyond 4-level EPT's reach.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EPTQ_EXECUTABLE, EPTQ_FINAL, EPTQ_LINEAR_VALID, EPTQ_READ, EPTQ_WRITE } from '../src/arch/x86/access.js';
import { PF_P, PF_RSVD, PF_U } from '../src/arch/x86/bits.js';
import { type Cpu, OK } from '../src/arch/x86/cpu.js';
import { entryLo } from '../src/arch/x86/entry.js';
import { EXIT_EPT_MISCONFIG, EXIT_EPT_VIOLATION, EXIT_NPF, type ExitReason } from '../src/arch/x86/exits.js';
import { EPT_MEMTYPE_SHIFT, EPT_MT_WB, EPT_X } from '../src/arch/x86/modes.js';
import { GEN_MODES, generateScenario } from '../src/guest/scenario/generate.js';
import type { Domain } from '../src/hypervisor/domain.js';
import type { Pager } from '../src/hypervisor/pager.js';
import type { NestedPager } from '../src/pagers/nested/nested.js';
import { createPager, PAGERS, PagerSpecError } from '../src/pagers/registry.js';
import { Vm } from '../src/vm/vm.js';
import { runText } from './support/run.js';

interface Seen {
  reason: ExitReason;
  gpa: number;
  qual: number;
  final: boolean;
  linear: boolean;
}

/** A pager that records every stage-2 exit and passes it on (or, with `swallow`, performs nothing and says done). */
class Recorder implements Pager {
  readonly seen: Seen[] = [];
  swallow = false;
  constructor(readonly inner: NestedPager) {}
  get name(): string {
    return this.inner.name;
  }
  attach(d: Domain, cpus: readonly Cpu[]): void {
    this.inner.attach(d, cpus);
  }
  exit(cpu: Cpu, reason: ExitReason): number {
    if (reason >= EXIT_EPT_VIOLATION) {
      const x = cpu.exitInfo;
      this.seen.push({ reason, gpa: x.gpa, qual: x.qualification, final: x.gpaFinal, linear: x.linear });
      if (this.swallow) return -2;
    }
    return this.inner.exit(cpu, reason);
  }
  physmapChanged(first: number, count: number): void {
    this.inner.physmapChanged(first, count);
  }
  stats(): Record<string, number> {
    return this.inner.stats();
  }
}

const nested = (spec: string): NestedPager => createPager(spec, { check: true }) as NestedPager;

/** A 4-level guest: PML4 gfn 1 -> PDPT 2 -> PD 3 -> PT 4 -> data page gfn 5 at VA 0, paging on. */
function longGuest(spec: string, vcpus = 1): { vm: Vm; rec: Recorder; cpu: Cpu } {
  const rec = new Recorder(nested(spec));
  const vm = new Vm({ vcpus, memory: 0x800000, maxphyaddr: 40 }, rec, { layout: 'identity', seed: 0 });
  const g = vm.domain.guest;
  const put = (gfn: number, i: number, lo: number, hi = 0): void => {
    const f = g.frameForWrite(gfn) as Uint32Array;
    f[2 * i] = lo;
    f[2 * i + 1] = hi;
  };
  for (let gfn = 1; gfn <= 4; gfn++) put(gfn, 0, entryLo(gfn + 1, 7));
  (g.frameForWrite(5) as Uint32Array)[0] = 0xc0ffee;
  for (const cpu of vm.cpus) {
    assert.equal(cpu.writeCr4(0, 0x20), OK);
    assert.equal(cpu.writeCr3(0, 0x1000), OK);
    assert.equal(cpu.writeEfer(0, 0x100), OK);
    assert.equal(cpu.writeCr0(0, 0x80010011), OK);
  }
  return { vm, rec, cpu: vm.cpus[0] as Cpu };
}

test('EPT violations: guest table references (writes with A/D on, reads without), then the final translation', () => {
  for (const ad of [true, false]) {
    const { rec, cpu } = longGuest(`nested:ept:${ad ? '+' : '-'}ad:-large`);
    assert.equal(cpu.read(0, 8, 8, 0), OK);
    assert.equal(cpu.valueLo, 0, 'offset 8 of the page');
    const table = (ad ? EPTQ_WRITE : EPTQ_READ) | EPTQ_LINEAR_VALID;
    assert.deepEqual(
      rec.seen.map((s) => [s.reason, s.gpa, s.qual, s.final]),
      [
        [EXIT_EPT_VIOLATION, 0x1000, table, false],
        [EXIT_EPT_VIOLATION, 0x2000, table, false],
        [EXIT_EPT_VIOLATION, 0x3000, table, false],
        [EXIT_EPT_VIOLATION, 0x4000, table, false],
        [EXIT_EPT_VIOLATION, 0x5008, EPTQ_READ | EPTQ_LINEAR_VALID | EPTQ_FINAL, true],
      ],
      `ad ${ad}`,
    );
    assert.equal(rec.stats()['stage2.fixed'], 5);
  }
});

test('an execute-only EPT page: a fetch passes, a read is a violation saying the page is executable', () => {
  const { vm, rec, cpu } = longGuest('nested:ept:-large');
  assert.equal(cpu.fetch(0, 0, 0), OK);
  assert.equal(cpu.valueLo, 0xee);
  // Make the stage-2 leaf of gfn 5 execute-only (execute-only is supported: IA32_VMX_EPT_VPID_CAP bit 0).
  const leaf = [...rec.inner.table.leaves()].find((l) => l.gfn === 5);
  assert.ok(leaf !== undefined);
  const f = vm.domain.mem.write(leaf.tableMfn);
  f[2 * leaf.index] = entryLo(5, EPT_X | (EPT_MT_WB << EPT_MEMTYPE_SHIFT));
  for (const c of vm.cpus) c.mmu.invept();
  rec.seen.length = 0;
  rec.swallow = true;
  assert.equal(cpu.fetch(0, 1, 0), OK);
  assert.equal(cpu.valueLo, 0xff);
  assert.equal(rec.seen.length, 0, 'the fetch needs no exit');
  assert.equal(cpu.read(0, 0, 4, 0), OK);
  assert.deepEqual(
    rec.seen.map((s) => [s.reason, s.gpa, s.qual, s.final]),
    [[EXIT_EPT_VIOLATION, 0x5000, EPTQ_READ | EPTQ_EXECUTABLE | EPTQ_LINEAR_VALID | EPTQ_FINAL, true]],
  );
});

test("NPT: a nested leaf without U/S refuses even the guest's supervisor access (#NPF P|U)", () => {
  const { vm, rec, cpu } = longGuest('nested:npt:-large');
  assert.equal(cpu.read(0, 0, 4, 0), OK);
  assert.equal(cpu.valueLo, 0xc0ffee);
  const leaf = [...rec.inner.table.leaves()].find((l) => l.gfn === 5);
  assert.ok(leaf !== undefined);
  const f = vm.domain.mem.write(leaf.tableMfn);
  f[2 * leaf.index] = (f[2 * leaf.index] as number) & ~4;
  cpu.mmu.invept();
  rec.seen.length = 0;
  rec.swallow = true;
  assert.equal(cpu.read(0, 0, 4, 0), OK);
  assert.deepEqual(
    rec.seen.map((s) => [s.reason, s.gpa, s.qual, s.final]),
    [[EXIT_NPF, 0x5000, PF_P | PF_U, true]],
  );
});

test('2-D walks without caches: 24 references with 4-level EPT, 29 with 5-level, for a 4-level guest', () => {
  for (const [levels, refs, s2] of [
    [4, 24, 20],
    [5, 29, 25],
  ] as const) {
    const { rec, cpu } = longGuest(`nested:ept:levels=${levels}:-large:-pwc`);
    assert.equal(cpu.read(0, 0, 4, 0), OK); // populates stage 2
    cpu.mmu.flushContext(-1, true);
    const reads = cpu.walker.entryReads;
    const before = rec.stats()['walk.stage2_refs'] as number;
    assert.equal(cpu.read(0, 4, 4, 0), OK);
    assert.equal(cpu.walker.entryReads - reads, refs, `levels=${levels}`);
    assert.equal((rec.stats()['walk.stage2_refs'] as number) - before, s2);
    assert.equal(rec.inner.stage2.fmt.mode.topLevel, levels);
  }
});

test('MMIO: a violation makes the misconfigured entry, the next access is a misconfiguration (EPT) or #NPF with RSVD (NPT)', () => {
  for (const spec of ['nested:ept', 'nested:npt', 'nested:ept:mmio=violation']) {
    const { vm, rec, cpu } = longGuest(spec);
    // PTE 1 maps gfn 0x1000, beyond the 8 MiB of RAM.
    (vm.domain.guest.frameForWrite(4) as Uint32Array)[2] = entryLo(0x1000, 7);
    for (let k = 0; k < 3; k++) {
      assert.equal(cpu.read(0, 0x1000, 4, 0), OK);
      assert.equal(cpu.valueLo, 0xffffffff);
    }
    const mmio = rec.seen.filter((s) => s.gpa === 0x1000000);
    if (spec === 'nested:ept:mmio=violation') {
      assert.deepEqual(
        mmio.map((s) => s.reason),
        [EXIT_EPT_VIOLATION, EXIT_EPT_VIOLATION, EXIT_EPT_VIOLATION],
      );
    } else {
      const later = spec === 'nested:ept' ? EXIT_EPT_MISCONFIG : EXIT_NPF;
      assert.deepEqual(
        mmio.map((s) => s.reason),
        [spec === 'nested:ept' ? EXIT_EPT_VIOLATION : EXIT_NPF, later, later],
      );
      if (spec === 'nested:npt') assert.equal((mmio[1] as Seen).qual & PF_RSVD, PF_RSVD);
    }
    assert.equal(rec.stats()['emulate.mmio'], 3);
  }
});

test('ROM: a write is discarded after the guest walk sets A and D, as natively', () => {
  const text = [
    '{"op":"machine","vcpus":1,"memory":"0x800000","maxphyaddr":40}',
    '{"op":"pwrite","gpa":"0x1000","size":8,"value":"0x2007"}',
    '{"op":"pwrite","gpa":"0x2000","size":8,"value":"0x3007"}',
    '{"op":"pwrite","gpa":"0x3000","size":8,"value":"0x4007"}',
    '{"op":"pwrite","gpa":"0x4000","size":8,"value":"0x5007"}',
    '{"op":"pwrite","gpa":"0x5000","size":8,"value":"0x1111"}',
    '{"op":"wrcr","reg":"cr4","value":"0x20"}',
    '{"op":"wrcr","reg":"cr3","value":"0x1000"}',
    '{"op":"wrmsr","msr":"efer","value":"0x100"}',
    '{"op":"wrcr","reg":"cr0","value":"0x80010011"}',
    '{"op":"read","va":"0x0","size":8,"cpl":3}',
    '{"op":"p2m","gfn":5,"count":1,"type":"rom"}',
    '{"op":"write","va":"0x0","size":8,"value":"0x2222","cpl":3}',
    '{"op":"read","va":"0x0","size":8,"cpl":3}',
    '{"op":"pread","gpa":"0x4000","size":8}',
  ].join('\n');
  const native = runText(text);
  assert.ok(native.includes('{"i":14,"value":"0x1111"}'), native);
  assert.ok(native.includes('{"i":15,"value":"0x5067"}'), 'A and D set in the guest PTE');
  for (const kind of PAGERS.filter((k) => k.name === 'nested'))
    for (const spec of kind.variants(1)) {
      const pager = nested(spec);
      assert.equal(runText(text, { pager }), native, spec);
      assert.equal(pager.stats()['emulate.rom_write_discarded'], 1, spec);
    }
});

test('p2m none and ram at run time on two vCPUs: stage-2 entries zapped, INVEPT on every vCPU', () => {
  const { vm, rec } = longGuest('nested:ept:-large', 2);
  const [c0, c1] = vm.cpus as [Cpu, Cpu];
  for (const c of [c0, c1]) {
    assert.equal(c.read(0, 0, 4, 0), OK);
    assert.equal(c.valueLo, 0xc0ffee);
  }
  vm.domain.setType(5, 1, 2); // none
  rec.physmapChanged(5, 1);
  const s = rec.stats();
  assert.equal(s['p2m.entries_zapped'], 1);
  assert.equal(s.invept, 2);
  for (const c of [c0, c1]) {
    assert.equal(c.read(0, 0, 4, 0), OK);
    assert.equal(c.valueLo, 0xffffffff, `vCPU ${c.index} sees the frame gone (no stale TLB entry)`);
  }
  vm.domain.setType(5, 1, 0); // ram again, zero-filled
  rec.physmapChanged(5, 1);
  assert.equal(c1.write(0, 0, 4, 0, 0x55, 0), OK);
  assert.equal(c0.read(0, 0, 4, 0), OK);
  assert.equal(c0.valueLo, 0x55);
  assert.equal(rec.inner.checkInvariants(), null);
});

test('PAE: the PDPTE registers load through stage 2 (an exit without a linear address), MMIO PDPTEs read all ones', () => {
  const lines = (cr3: string) =>
    [
      '{"op":"machine","vcpus":1,"memory":"0x800000","maxphyaddr":40}',
      '{"op":"pwrite","gpa":"0x1000","size":8,"value":"0x2001"}',
      '{"op":"pwrite","gpa":"0x2000","size":8,"value":"0x3007"}',
      '{"op":"pwrite","gpa":"0x3000","size":8,"value":"0x4007"}',
      '{"op":"pwrite","gpa":"0x4000","size":4,"value":"0xabcd"}',
      '{"op":"wrcr","reg":"cr4","value":"0x20"}',
      `{"op":"wrcr","reg":"cr3","value":"${cr3}"}`,
      '{"op":"wrcr","reg":"cr0","value":"0x80000011"}',
      '{"op":"read","va":"0x0","size":4,"cpl":0}',
    ].join('\n');
  for (const cr3 of ['0x1000', '0x9000000']) {
    const text = lines(cr3);
    const native = runText(text);
    if (cr3 === '0x1000') assert.ok(native.includes('"value":"0xabcd"'), native);
    else assert.ok(native.includes('"vector":"GP"'), 'all-ones PDPTEs have reserved bits');
    for (const spec of ['nested', 'nested:npt', 'nested:ept:-ad:mmio=violation']) {
      const rec = new Recorder(nested(spec));
      assert.equal(runText(text, { pager: rec }), native, `${spec} cr3 ${cr3}`);
      const load = rec.seen.find((s) => !s.linear);
      assert.ok(load !== undefined, 'the PDPT frame is not mapped yet: the load exits');
      assert.equal(load.gpa, Number(cr3));
      if (spec !== 'nested:npt') assert.equal(load.qual & EPTQ_LINEAR_VALID, 0);
      assert.ok((rec.stats().pdpte_loads as number) >= 1);
    }
  }
});

test('a GPA beyond what 4-level EPT can name is MMIO, never an alias of a low frame', () => {
  const text = [
    '{"op":"machine","vcpus":1,"memory":"0x800000","maxphyaddr":52}',
    '{"op":"pwrite","gpa":"0x1000","size":8,"value":"0x2007"}',
    '{"op":"pwrite","gpa":"0x2000","size":8,"value":"0x3007"}',
    '{"op":"pwrite","gpa":"0x3000","size":8,"value":"0x4007"}',
    // PTE 0: frame 2^36 + 5 (GPA 2^48 + 0x5000); frame 5 holds a secret.
    '{"op":"pwrite","gpa":"0x4000","size":8,"value":"0x1000000005007"}',
    '{"op":"pwrite","gpa":"0x5000","size":8,"value":"0x5ec12e7"}',
    '{"op":"wrcr","reg":"cr4","value":"0x20"}',
    '{"op":"wrcr","reg":"cr3","value":"0x1000"}',
    '{"op":"wrmsr","msr":"efer","value":"0x100"}',
    '{"op":"wrcr","reg":"cr0","value":"0x80010011"}',
    '{"op":"read","va":"0x0","size":8,"cpl":0}',
    '{"op":"write","va":"0x0","size":8,"value":"0x1","cpl":0}',
    '{"op":"read","va":"0x0","size":8,"cpl":0}',
    '{"op":"pread","gpa":"0x5000","size":8}',
  ].join('\n');
  const native = runText(text);
  assert.ok(native.includes('{"i":11,"value":"0xffffffffffffffff"}'), native);
  assert.ok(native.includes('"value":"0x5ec12e7"'));
  for (const spec of ['nested', 'nested:npt', 'nested:ept:mmio=violation', 'nested:ept:levels=5'])
    assert.equal(runText(text, { pager: nested(spec) }), native, spec);
});

test('bad nested specs are refused in one line', () => {
  for (const spec of [
    'nested:vmx',
    'nested:ept:levels=3',
    'nested:npt:+ad',
    'nested:ept:mmio=dm',
    'nested:ept:-ad:-ad',
    'nested:ept:large=2',
    'nested:ept:npt',
  ]) {
    assert.throws(
      () => createPager(spec),
      (e: unknown) => e instanceof PagerSpecError && !e.message.includes('\n'),
      spec,
    );
  }
});

test('every nested variant is transparent on generated scenarios (identity and scattered frames, read-only ranges)', () => {
  const kind = PAGERS.find((k) => k.name === 'nested');
  assert.ok(kind !== undefined);
  const variants = kind.variants(4);
  let n = 0;
  for (const mode of GEN_MODES) {
    for (let seed = 1; seed <= 4; seed++) {
      const text = generateScenario(seed * 7919 + mode.length, { mode, ops: 120, memoryBytes: 0x800000 });
      const readOnly: Array<[number, number]> = seed % 2 === 0 ? [[0x300, 0x340]] : [];
      const native = runText(text, { readOnly });
      for (const spec of variants) {
        const layout = (n++ & 1) === 0 ? 'identity' : 'scatter';
        assert.equal(
          runText(text, { pager: nested(spec), readOnly, layout, seed }),
          native,
          `${spec} ${mode} ${seed} ${layout}`,
        );
      }
    }
  }
});
