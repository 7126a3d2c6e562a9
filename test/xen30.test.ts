/**
 * The Xen 3.0 profile (`shadow:xen30`, src/pagers/xen30/): each mechanism of
 * Xen 3.0.2's shadow code that the profile models, on hand-made guests whose
 * outcome depends on it — and transparency with the isolation checker on,
 * on generated guests of every mode (the shared property test draws this
 * pager once in a couple of hundred variants, so it gets its own runs here).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { GEN_MODES, generateScenario } from '../src/guest/scenario/generate.js';
import type { Xen30Stats } from '../src/pagers/xen30/counters.js';
import { SHADOW_HT_BUCKETS } from '../src/pagers/xen30/shadow_ht.js';
import { Xen30Pager } from '../src/pagers/xen30/xen30.js';
import { runText } from './support/run.js';

type Op = Record<string, string | number>;
const text = (ops: Op[]): string => `${ops.map((o) => JSON.stringify(o)).join('\n')}\n`;
const pw = (gpa: number, value: number | string, size = 8): Op => ({
  op: 'pwrite',
  gpa: `0x${gpa.toString(16)}`,
  size,
  value: typeof value === 'number' ? `0x${value.toString(16)}` : value,
});
const rd = (va: number, cpl = 0): Op => ({ op: 'read', va: `0x${va.toString(16)}`, size: 4, cpl });
const wr = (va: number, value: number, size = 8): Op => ({
  op: 'write',
  va: `0x${va.toString(16)}`,
  size,
  value: `0x${value.toString(16)}`,
  cpl: 0,
});
const cr = (reg: string, value: number): Op => ({ op: 'wrcr', reg, value: `0x${value.toString(16)}` });
const invlpg = (va: number): Op => ({ op: 'invlpg', va: `0x${va.toString(16)}` });

/**
 * A 4-level guest: PML4 0x1000 -> PDPT 0x2000 -> PD 0x3000 -> PT 0x4000,
 * whose entries map VA 0x1000 to data frame 0x5000, VA 0x2000 to the PT
 * itself and VA 0x3000 to the PD (aliases through which the guest edits its
 * tables), VA 0x4000 to data frame 0x6000.
 */
const LONG_BOOT: Op[] = [
  { op: 'machine', vcpus: 1, memory: '0x1000000' },
  pw(0x1000, 0x2007),
  pw(0x2000, 0x3007),
  pw(0x3000, 0x4007),
  pw(0x4008, 0x5007),
  pw(0x4010, 0x4007),
  pw(0x4018, 0x3007),
  pw(0x4020, 0x6007),
  pw(0x5000, 0xaaaa, 4),
  pw(0x6000, 0xbbbb, 4),
  cr('cr4', 0x20),
  { op: 'wrmsr', msr: 'efer', value: '0x100' },
  cr('cr3', 0x1000),
  cr('cr0', 0x80010011),
  rd(0x1000),
  rd(0x4000),
];

/** Run `ops` under a fresh Xen 3.0 pager (checker on) and under native; both outputs must agree. */
function run(ops: Op[]): { pager: Xen30Pager; stats: Xen30Stats } {
  const pager = new Xen30Pager({ check: true });
  const t = text(ops);
  assert.equal(runText(t, { pager }), runText(t), 'the guest saw something native hardware would not show it');
  return { pager, stats: pager.stats() };
}

test('a write to a shadowed l1 takes it out of sync with a snapshot, and the next CR3 load resyncs it', () => {
  const unsync = [...LONG_BOOT, wr(0x2008, 0x6007)]; // PTE[1] through the PT's alias: VA 0x1000 -> frame 0x6000
  const a = run(unsync);
  assert.deepEqual(a.pager.outOfSync().pages, [4], 'the PT is out of sync');
  assert.equal(a.stats['emulate.pt_write'], 0, 'the write was not emulated');
  assert.equal(a.stats['oos.snapshots'], 1);
  const b = run([...unsync, wr(0x2020, 0x5007), cr('cr3', 0x1000), rd(0x1000), rd(0x4000)]);
  assert.deepEqual(b.pager.outOfSync().pages, [], 'the CR3 load brought it back in sync');
  assert.equal(b.stats['sync.all.flush'], 1);
  assert.ok(b.stats['resync.entries_changed'] >= 2, 'both rewritten entries were recomputed from the snapshot diff');
  assert.equal(b.stats['oos.snapshots'], 1, 'later writes to an out-of-sync page cost nothing');
});

test('an l2 (page directory) goes out of sync too, and is snapshotted', () => {
  // PD[1] through the PD's alias: a new page table (the PT again) for VA 0x200000.
  const { pager, stats } = run([...LONG_BOOT, wr(0x3008, 0x4007), rd(0x201000)]);
  assert.equal(stats['oos.upper_snapshots'], 1, 'the PD went out of sync');
  assert.ok(stats['sync.all.va'] >= 1, 'the fault on VA 0x200000 met the changed PD entry and resynced');
  assert.deepEqual(pager.outOfSync().pages, []);
});

test('__shadow_sync_va: an INVLPG resyncs everything only when its address meets a changed entry', () => {
  const base = [...LONG_BOOT, wr(0x2008, 0x6007)]; // PT out of sync, entry of VA 0x1000 changed
  const same = run([...base, invlpg(0x4000)]); // VA 0x4000's entry is as in the snapshot
  assert.equal(same.stats['sync.all'], 0);
  assert.ok(same.stats['sync.va_checks'] >= 1 && same.stats['sync.va_entries'] >= 1);
  assert.deepEqual(same.pager.outOfSync().pages, [4]);
  const hit = run([...base, invlpg(0x1000), rd(0x1000)]);
  assert.equal(hit.stats['sync.all.va'], 1, 'INVLPG of the changed entry resynced every page');
  assert.deepEqual(hit.pager.outOfSync().pages, []);
});

test('the out-of-sync list has no bound: many page tables out of sync at once, one entry per writable mapping', () => {
  const ops = [...LONG_BOOT, pw(0x4048, 0x4007)]; // VA 0x9000: a second alias of the first PT
  // Eight more page tables at 0x10000.. mapped by PD[1..8], each aliased at VA 0x10000 + n*0x1000 via the first PT.
  for (let n = 1; n <= 8; n++) {
    const pt = 0x10000 + n * 0x1000;
    ops.push(pw(0x3000 + 8 * n, pt + 7), pw(0x4000 + 8 * (0x10 + n), pt + 7), pw(pt, 0x5007));
  }
  for (let n = 1; n <= 8; n++) ops.push(rd(n * 0x200000)); // shadow each PT
  for (let n = 1; n <= 8; n++) ops.push(wr(0x10000 + n * 0x1000 + 8, 0x6007)); // write each through its alias
  ops.push(wr(0x2008, 0x6007), wr(0x9020, 0x6007)); // the first PT through both its aliases
  const { pager, stats } = run(ops);
  assert.equal(stats['oos.peak_pages'], 9, 'nine pages out of sync at once (Shadow 3 keeps 3 per vCPU)');
  assert.equal(pager.outOfSync().pages.length, 9);
  assert.equal(pager.outOfSync().entries, 10, 'the second writable mapping of the first PT has an entry of its own');
  assert.equal(stats['oos.snapshots'], 9, 'but no second snapshot (SHADOW_SNAPSHOT_ELSEWHERE)');
});

test('shadow_ht: 256 buckets keyed by guest frame; frames 256 apart share a chain, pulled to the front on a hit', () => {
  const ops = [...LONG_BOOT];
  // Page tables at gfns 0x100, 0x200, 0x300, 0x400 (PD[1..4]): all in bucket 0.
  for (let n = 1; n <= 4; n++) {
    const pt = n * 0x100000;
    ops.push(pw(0x3000 + 8 * n, pt + 7), pw(pt, 0x5007));
  }
  for (let n = 1; n <= 4; n++) ops.push(rd(n * 0x200000));
  const made = run(ops);
  const chains = made.pager.hashChains();
  assert.equal(chains.length, SHADOW_HT_BUCKETS);
  assert.equal(SHADOW_HT_BUCKETS, 256);
  assert.equal(chains[0], 4, 'bucket 0 holds the four PTs');
  assert.equal(made.stats['ht.longest_chain'], 4);
  // INVLPG clears each l1 entry (shadow_invlpg_64): the next fault looks every shadow of the path up again.
  for (let n = 1; n <= 4; n++) ops.push(invlpg(n * 0x200000), rd(n * 0x200000));
  const again = run(ops);
  const lookups = again.stats['ht.lookups'] - made.stats['ht.lookups'];
  const steps = again.stats['ht.chain_steps'] - made.stats['ht.chain_steps'];
  assert.equal(again.stats.shadows_made, made.stats.shadows_made, 'every lookup was a hit');
  assert.ok(
    steps > lookups,
    `some hits were found behind the head of their chain (${steps} steps, ${lookups} lookups)`,
  );
});

/** A 32-bit guest with two address spaces: page directories at 0x1000 and 0x7000, both mapping PT 0x2000 at VA 0. */
const TWO_SPACES_32: Op[] = [
  { op: 'machine', vcpus: 1, memory: '0x400000' },
  pw(0x1000, 0x2007, 4),
  pw(0x7000, 0x2007, 4),
  pw(0x1004, 0x8007, 4), // space A also maps PT 0x8000 at VA 0x400000
  pw(0x2004, 0x3007, 4), // VA 0x1000 -> 0x3000
  pw(0x2008, 0x2007, 4), // VA 0x2000 -> the PT itself
  pw(0x200c, 0x1007, 4), // VA 0x3000 -> PD A
  pw(0x8000, 0x4007, 4), // VA 0x400000 -> 0x4000
  pw(0x3000, 0x1111, 4),
  pw(0x4000, 0x2222, 4),
  cr('cr3', 0x1000),
  cr('cr0', 0x80010011),
  rd(0x1000),
  rd(0x400000),
];

test('2-level guests in translate mode get an hl2 per page directory, the machine frames of their l1s', () => {
  const { pager, stats } = run([...TWO_SPACES_32, cr('cr3', 0x7000), rd(0x1000)]);
  const a = pager.shadowsOf(1).hl2;
  const b = pager.shadowsOf(7).hl2;
  assert.ok(a !== null && b !== null, 'each page directory has its hl2');
  assert.equal(a[0], b[0], 'both map the same guest l1 (PT 0x2000) by its machine frame');
  assert.ok((a[0] as number) >= 0 && (a[1] as number) >= 0 && (a[2] as number) === -1);
  assert.equal(b[1], -1, 'PD B has no second page table');
  assert.equal(stats['hl2.made'], 2);
  assert.ok(stats['hl2.linear_reads'] > 0, "the fault path read the guests' PTEs through the hl2s");
  const long = run(LONG_BOOT);
  assert.equal(long.pager.shadowsOf(1).hl2, null, 'no hl2 for a 4-level guest');
  assert.equal(long.stats['hl2.made'], 0);
});

test('the hl2 follows the page directory: a PDE rewritten through an alias is read through the new hl2 entry', () => {
  // PDE[1] of space A now names PT 0x2000 (VA 0x400000 -> frame 0x2000's first entry: nothing... ) then VA 0x401000 -> 0x3000.
  const { pager, stats } = run([...TWO_SPACES_32, wr(0x3004, 0x2007, 4), invlpg(0x401000), rd(0x401000)]);
  const hl2 = pager.shadowsOf(1).hl2 as number[];
  assert.equal(hl2[1], hl2[0], 'entry 1 now maps the machine frame of PT 0x2000');
  assert.ok(stats['hl2.entries_updated'] >= 1);
});

test('l2 shadows are pinned when made and survive CR3 switches: switching back makes nothing', () => {
  const ping = [...TWO_SPACES_32, cr('cr3', 0x7000), rd(0x1000), cr('cr3', 0x1000), rd(0x1000)];
  const first = run(ping);
  const again = run([...ping, cr('cr3', 0x7000), rd(0x1000), cr('cr3', 0x1000), rd(0x1000), rd(0x400000)]);
  for (const gfn of [1, 7]) {
    const s = again.pager.shadowsOf(gfn);
    assert.deepEqual(s.levels, [2, 2, 2, 2], 'four PAE-format quarters of the PD');
    assert.ok(
      s.pinned.every((p) => p),
      `the shadows of PD ${gfn} are pinned`,
    );
  }
  assert.equal(again.stats.shadows_made, first.stats.shadows_made, 'the second round of switches found every shadow');
  assert.equal(again.stats.shadows_freed, 0);
});

test('the unshadow rule: a torn-down page directory lets its pinned shadows and hl2 go', () => {
  // Space B's PD (0x7000) is emptied through an alias while A runs; the next CR3 load resyncs it.
  const ops = [
    ...TWO_SPACES_32,
    cr('cr3', 0x7000),
    rd(0x1000),
    cr('cr3', 0x1000),
    pw(0x2010, 0x7007, 4), // VA 0x4000 -> PD B (a device write keeps the PT's shadow coherent)
    rd(0x4000),
    wr(0x4000, 0, 4), // PD B's only entry cleared through the alias: PD B goes out of sync
    cr('cr3', 0x1000),
  ];
  const { pager, stats } = run(ops);
  assert.equal(stats['pin.unpinned'], 1);
  assert.deepEqual(pager.shadowsOf(7).levels, []);
  assert.equal(pager.shadowsOf(7).hl2, null);
});

test('write-access removal: the back pointer, then a brute-force search of every l1 shadow', () => {
  // Frame 0x6000 is mapped writable at VA 0x4000 (the guest writes a PTE into it); PD[1] makes it a page table:
  // one writable mapping, found at the back pointer.
  const one = run([...LONG_BOOT, wr(0x4000, 0x5007), pw(0x3008, 0x6007), rd(0x200000)]);
  assert.equal(one.stats['write_access.removals'], 1);
  assert.equal(one.stats['write_access.predicted'], 1);
  assert.equal(one.stats['write_access.brute_force'], 0);
  // Mapped writable twice (VA 0x4000 and 0x5000): the back pointer names the last, the search finds the other.
  const two = run([
    ...LONG_BOOT,
    pw(0x4028, 0x6007),
    wr(0x4000, 0x5007),
    wr(0x5000, 0x5007),
    pw(0x3008, 0x6007),
    rd(0x200000),
    wr(0x4008, 0x5007),
  ]);
  assert.equal(two.stats['write_access.removals'], 1);
  assert.equal(two.stats['write_access.brute_force'], 1);
  assert.ok(two.stats['write_access.entries_scanned'] >= 1);
  assert.equal(two.stats['oos.snapshots'], 1, 'the write after promotion faulted and took the new table out of sync');
});

test('log-dirty: enabling and every clean throw every shadow away; writes are logged', () => {
  const pager = new Xen30Pager({ check: true });
  const ops = [...LONG_BOOT, wr(0x4000, 5), wr(0x1000, 6)];
  assert.equal(runText(text(ops), { pager }), runText(text(ops)));
  const log = (pager as unknown as { st: { domain: { logDirty: import('../src/hypervisor/logdirty.js').LogDirty } } })
    .st.domain.logDirty;
  assert.ok(log.supported);
  const before = pager.stats().shadows_freed;
  log.enable();
  assert.ok(pager.stats().shadows_freed > before, 'enabling freed the shadows');
  assert.equal(pager.checkInvariants(), null);
  log.clean();
  assert.equal(pager.stats()['logdirty.cleans'], 1);
  assert.equal(pager.checkInvariants(), null);
});

const RUNS = Number(process.env.UMBRA_PROPERTY_RUNS ?? 1000) / 10;

for (const mode of GEN_MODES) {
  test(`shadow:xen30 is transparent, with its checker on (${mode})`, () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        fc.integer({ min: 20, max: 200 }),
        fc.boolean(),
        (seed, ops, ro) => {
          const t = generateScenario(seed, { mode, ops, memoryBytes: seed % 8 === 0 ? 0x180000000 : 0x800000 });
          const readOnly: Array<[number, number]> = ro ? [[0x300 + (seed % 0x100), 0x340 + (seed % 0x100)]] : [];
          const native = runText(t, { readOnly });
          assert.equal(runText(t, { pager: new Xen30Pager({ check: true }), readOnly }), native, 'identity');
          const scattered = runText(t, { pager: new Xen30Pager({ check: true }), layout: 'scatter', seed, readOnly });
          assert.equal(scattered, native, 'scattered placement');
        },
      ),
      { numRuns: RUNS },
    );
  });
}
