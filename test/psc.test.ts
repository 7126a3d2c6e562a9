/**
 * Paging-structure caches (src/arch/x86/psc.ts, switch pwc of every pager):
 *
 *  - with every cache off, one translation of a cold address reads
 *    (n+1)(m+1)-1 entries for an n-level guest on m-level stage 2: 24 for
 *    4 on 4, 35 for 5 on 5, under EPT and NPT alike (Bhargava et al.,
 *    ASPLOS'08, figure 2);
 *  - warm, with the caches on, a neighbouring page takes 2 references under
 *    nested paging (the guest PTE, through a combined PDE-cache entry, and
 *    the stage-2 leaf below a cached stage-2 entry) and 1 natively;
 *  - SDM 4.10.3 and 4.10.4.1 behaviour a guest can see: a cached PDE is used
 *    after the PDE changes in memory until INVLPG or MOV to CR3 (which drop
 *    every entry of the PCID), a #PF drops only the entries of its address,
 *    MOV to CR3 with the no-flush bit keeps them, an entry is cached only
 *    with its accessed flag set;
 *  - under shadow paging the caches hold shadow entries: the pager must
 *    flush them on every vCPU when it unhooks shadows, and the isolation
 *    checker finds a stale one (a test runs the pager without its flush);
 *  - the pwc grammar and its one-line errors.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Cpu, OK } from '../src/arch/x86/cpu.js';
import { entryLo } from '../src/arch/x86/entry.js';
import { auditWalkCaches, type UpperCaches, type WalkCaches } from '../src/arch/x86/psc.js';
import type { Pager } from '../src/hypervisor/pager.js';
import { PHYS_NONE } from '../src/hypervisor/physmap.js';
import type { NestedPager } from '../src/pagers/nested/nested.js';
import { parsePwc } from '../src/pagers/pwc.js';
import { createPager, PagerSpecError, pagerKind } from '../src/pagers/registry.js';
import { Vm } from '../src/vm/vm.js';

const CR4_PAE = 0x20;
const CR4_LA57 = 0x1000;
const CR4_PCIDE = 0x20000;
const EFER_LME = 0x100;
const CR0_PG_WP_PE = 0x80010011;

/**
 * A guest of `levels` levels: tables at gfns 1..levels, each entry 0 naming
 * the next, the page table's entries 0 and 1 naming data gfns levels+1 and
 * levels+2; VA 0 and 0x1000 are those pages. Paging on.
 */
function guest(spec: string, levels: 4 | 5, vcpus = 1): { vm: Vm; pager: Pager; cpu: Cpu } {
  const pager = createPager(spec, { check: true });
  const vm = new Vm({ vcpus, memory: 0x800000, maxphyaddr: 40 }, pager, { layout: 'identity', seed: 0 });
  const g = vm.domain.guest;
  const put = (gfn: number, i: number, lo: number): void => {
    const f = g.frameForWrite(gfn) as Uint32Array;
    f[2 * i] = lo;
    f[2 * i + 1] = 0;
  };
  for (let gfn = 1; gfn <= levels; gfn++) put(gfn, 0, entryLo(gfn + 1, 7));
  put(levels, 1, entryLo(levels + 2, 7));
  (g.frameForWrite(levels + 1) as Uint32Array)[0] = 0xc0ffee;
  for (const cpu of vm.cpus) {
    assert.equal(cpu.writeCr4(0, CR4_PAE | (levels === 5 ? CR4_LA57 : 0)), OK);
    assert.equal(cpu.writeCr3(0, 0x1000), OK);
    assert.equal(cpu.writeEfer(0, EFER_LME), OK);
    assert.equal(cpu.writeCr0(0, CR0_PG_WP_PE), OK);
  }
  return { vm, pager, cpu: vm.cpus[0] as Cpu };
}

/** Entries the hardware walk of one read of `va` reads. */
function refs(cpu: Cpu, va: number): number {
  const before = cpu.walker.entryReads;
  assert.equal(cpu.read(0, va, 4, 0), OK);
  return cpu.walker.entryReads - before;
}

test('every cache off: a cold translation reads 24 entries for 4-level on 4-level, 35 for 5 on 5 (EPT and NPT)', () => {
  for (const kind of ['ept', 'npt'] as const) {
    for (const [levels, want] of [
      [4, 24],
      [5, 35],
    ] as const) {
      const { cpu } = guest(`nested:${kind}:levels=${levels}:-large:-pwc`, levels);
      assert.equal(cpu.read(0, 0, 4, 0), OK); // stage 2 filled in by its violations
      assert.equal(cpu.valueLo, 0xc0ffee);
      cpu.mmu.invept(); // cold again: nothing cached anywhere
      assert.equal(refs(cpu, 8), want, `${kind} ${levels} on ${levels}`);
      assert.equal(refs(cpu, 12), 0, 'the TLB holds it now');
    }
  }
});

test('caches on, warm: a neighbouring page takes 2 references or 1 under nested paging (4 on 4), 1 natively', () => {
  for (const spec of ['nested', 'nested:ept:-large', 'nested:npt', 'nested:npt:-large']) {
    const { pager, cpu } = guest(spec, 4);
    const large = !spec.endsWith('-large');
    // Without stage-2 superpages stage 2 maps each gfn at its first use (an exit): use both pages first,
    // then let the TLB lose them (as a full TLB would: the caches keep their entries).
    assert.equal(cpu.read(0, 0, 4, 0), OK);
    if (!large) {
      assert.equal(cpu.read(0, 0x1000, 4, 0), OK);
      cpu.tlb.flushContext(-1, true);
    }
    const s = pager.stats();
    const pde = s['pwc.pde_hits'] as number;
    // The guest PTE through the combined PDE-cache entry (no stage-2 walk of the page table), then the
    // data page's stage-2 leaf below the deepest cached stage-2 entry (2 MiB leaves), or nothing at all:
    // the guest-physical TLB has the page since its first use.
    assert.equal(refs(cpu, 0x1000), large ? 2 : 1, spec);
    assert.equal((pager.stats()['pwc.pde_hits'] as number) - pde, 1, spec);
    // Cold (everything flushed), the first stage-2 walk fills the stage-2 caches the walk's later ones use:
    // 4 guest entries, one full stage-2 walk (4 entries to a 4 KiB leaf, 3 to a 2 MiB one: this guest's
    // 8 MiB do not fill a 1 GiB page), then the leaf alone for each of the other 4 stage-2 translations.
    cpu.mmu.invept();
    assert.equal(refs(cpu, 0x1008), spec.endsWith('-large') ? 4 + 4 + 4 : 4 + 3 + 4, spec);
  }
  const { pager, cpu } = guest('native', 4);
  assert.equal(refs(cpu, 0), 4);
  assert.equal(refs(cpu, 0x1000), 1, 'native: the PTE only, below the cached PDE');
  assert.equal(pager.stats()['pwc.refs_saved'], 3);
  const off = guest('native:-pwc', 4);
  assert.equal(refs(off.cpu, 0), 4);
  assert.equal(refs(off.cpu, 0x1000), 4, 'native:-pwc walks from the top');
});

test('SDM 4.10.3/4.10.4.1: a cached PDE is used until INVLPG or MOV to CR3; a #PF drops only its address', () => {
  const { vm, cpu } = guest('native', 4);
  const g = vm.domain.guest;
  const upper = (): UpperCaches => (cpu.mmu.psc as WalkCaches).upper as UpperCaches;
  const levels = (): number[] => [...upper().entries()].map((e) => e.level).sort();
  // A second 2 MiB region: PD entry 1 -> page table gfn 11 -> gfn 12.
  (g.frameForWrite(3) as Uint32Array)[2] = entryLo(11, 7);
  (g.frameForWrite(11) as Uint32Array)[0] = entryLo(12, 7);
  assert.equal(refs(cpu, 0), 4);
  assert.equal(refs(cpu, 0x200000), 2, 'below the cached PDPTE: the PDE and the PTE');
  assert.deepEqual(levels(), [2, 2, 3, 4]);
  // The guest repoints PD entry 0 to a new page table (gfn 9: VA 0x1000 -> gfn 10) without invalidating.
  (g.frameForWrite(9) as Uint32Array)[2] = entryLo(10, 7);
  (g.frameForWrite(10) as Uint32Array)[0] = 0xbeef;
  (g.frameForWrite(3) as Uint32Array)[0] = entryLo(9, 7);
  assert.equal(cpu.read(0, 0x1000, 4, 0), OK);
  assert.equal(cpu.valueLo, 0, 'the cached PDE still names the old page table (VA 0x1000 -> gfn 6, zeros)');
  cpu.invlpg(0, 0x1000); // every paging-structure-cache entry of the PCID goes, whatever the address
  assert.deepEqual(levels(), []);
  assert.equal(cpu.read(0, 0x1000, 4, 0), OK);
  assert.equal(cpu.valueLo, 0xbeef, 'walked from memory: the new page table');
  cpu.invlpg(0, 0x200000);
  assert.equal(refs(cpu, 0x200000), 4, 'the INVLPG emptied the caches: from the top');
  assert.deepEqual(levels(), [2, 3, 4]);
  // A #PF (VA 0x2000: not mapped by the new table) drops the entries VA 0x2000 would use, not region 1's PDE.
  assert.notEqual(cpu.read(0, 0x2000, 4, 0), OK);
  assert.deepEqual(levels(), [2]);
  assert.equal(
    [...upper().entries()][0]?.next,
    11,
    "what is left is region 1's PDE-cache entry (its page table, gfn 11)",
  );
  // MOV to CR3 with CR4.PCIDE=1 and bit 63 set keeps the PCID's entries; without it they go.
  assert.equal(cpu.writeCr4(0, CR4_PAE | CR4_PCIDE), OK);
  assert.deepEqual(levels(), [2]);
  assert.equal(cpu.writeCr3(0x80000000, 0x1000), OK);
  assert.deepEqual(levels(), [2], 'no-flush bit: kept');
  assert.equal(cpu.writeCr3(0, 0x1000), OK);
  assert.deepEqual(levels(), [], "MOV to CR3: the PCID's entries dropped");
});

test('an upper entry is cached only once its accessed flag is set: a faulting walk caches nothing', () => {
  const { vm, cpu } = guest('native', 4);
  const g = vm.domain.guest;
  (g.frameForWrite(4) as Uint32Array)[0] = 0; // the PTE of VA 0: not present
  assert.notEqual(cpu.read(0, 0, 4, 0), OK);
  assert.equal([...((cpu.mmu.psc as WalkCaches).upper as UpperCaches).entries()].length, 0);
  for (let gfn = 1; gfn <= 3; gfn++) assert.equal((g.frameForRead(gfn)[0] as number) & 0x20, 0, 'A clear');
  assert.equal(cpu.read(0, 0x1000, 4, 0), OK);
  assert.deepEqual(
    [...((cpu.mmu.psc as WalkCaches).upper as UpperCaches).entries()].map((e) => e.level),
    [2, 3, 4],
  );
  for (let gfn = 1; gfn <= 3; gfn++) assert.notEqual((g.frameForRead(gfn)[0] as number) & 0x20, 0, 'A set');
});

test('shadow paging: unhooking a shadow flushes every vCPU, else the checker finds the stale cache entry', () => {
  for (const flush of [true, false]) {
    const { vm, pager, cpu } = guest('shadow:-oos', 4, 2);
    assert.equal(cpu.read(0, 0, 4, 0), OK);
    assert.equal(vm.cpus[1]?.read(0, 0, 4, 0), OK);
    const set = (pager as unknown as { set: { shootdown(): void } }).set;
    if (!flush) set.shootdown = () => {}; // the pager without its flush
    // The hypervisor takes the guest's page table away (p2m none): its shadows are unhooked and freed.
    let problem: string | null = null;
    try {
      vm.domain.setType(4, 1, PHYS_NONE);
      pager.physmapChanged?.(4, 1);
    } catch (e) {
      problem = (e as Error).message;
    }
    if (flush) {
      assert.equal(problem, null);
      for (const c of vm.cpus) assert.equal(auditWalkCaches(c.mmu), null);
    } else {
      assert.match(String(problem), /paging-structure cache|cached level-2 entry/, 'the checker sees the stale entry');
    }
  }
});

test('pwc grammar: one switch for every pager, sizes per level, one-line errors', () => {
  assert.deepEqual(parsePwc('pwc=0,1,2,3', false), { upper: [0, 1, 2, 3], stage2: [0, 0, 0, 0], ntlb: 0 });
  assert.deepEqual(parsePwc('pwc=2,2,4,32/1,1,1,1/8', true), { upper: [2, 2, 4, 32], stage2: [1, 1, 1, 1], ntlb: 8 });
  assert.equal(parsePwc('-pwc', true), null);
  assert.equal(parsePwc('oos', false), undefined);
  for (const spec of [
    'native:pwc=1,2,3',
    'native:pwc=1,2,3,4/1,1,1,1',
    'native:oos',
    'shadow:pwc=1,2,3,999',
    'shadow:-pwc=1,2,3,4',
    'nested:pwc=1,2,3,4/5/6/7',
    'nested:pwc=1,2,3,4/1,1,1,1/x',
    'shadow:xen30:pwc=a',
  ]) {
    assert.throws(() => createPager(spec), PagerSpecError, spec);
    try {
      createPager(spec);
    } catch (e) {
      assert.ok(!(e as Error).message.includes('\n'), spec);
    }
  }
  for (const spec of ['native:-pwc', 'native:pwc=0,0,0,8', 'shadow:-pwc', 'shadow:xen30:-pwc', 'nested:npt:-pwc']) {
    assert.equal(createPager(spec).name, spec);
  }
  assert.deepEqual(pagerKind('native')?.variants(1), ['native', 'native:-pwc']);
  const nestedPager = createPager('nested:pwc=0,0,0,4/0,0,0,0/0') as NestedPager;
  assert.deepEqual(nestedPager.sw.pwc, { upper: [0, 0, 0, 4], stage2: [0, 0, 0, 0], ntlb: 0 });
});
