/**
 * Log-dirty and live migration under nested paging (src/pagers/nested/
 * logdirty.ts, tdp.ts rule 5, arch/x86/pml.ts): Xen's HAP way (stage-2
 * leaves ram_logdirty and write-protected, a write fault logs the page) and
 * page-modification logging, switch `logdirty=wp|pml`.
 *
 *  - Specs: the default is pml with EPT A/D, wp without A/D and under NPT
 *    (Xen: PML needs EPT A/D; Umbra's NPT has no PML); asking for pml there is a
 *    one-line error.
 *  - A guest whose only writes are the CPU's accessed-flag updates in its
 *    own page tables, plus device writes (pwrite), migrates exactly under
 *    every nested variant: the A-flag writes reach the log as EPT/NPT write
 *    faults (wp; with EPT A/D even the table reads do) or as PML entries.
 *  - PML: the log holds 512 entries, a full one is a PML-full exit; the logs
 *    are drained before each clean; a superpage is split on its first write.
 *  - The isolation checker refuses a writable ram_logdirty leaf under wp and
 *    a written (dirty-flagged) leaf whose page is not logged under pml.
 *  - A kernel workload migrates under every nested variant and the copy is
 *    verified, as with shadow paging.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Cpu, OK } from '../src/arch/x86/cpu.js';
import { entryLo } from '../src/arch/x86/entry.js';
import { EPT_D, EPT_W } from '../src/arch/x86/modes.js';
import { PML_ENTRIES, PmlLog } from '../src/arch/x86/pml.js';
import { migratingGuest } from '../src/cli/workload.js';
import { startWorkload } from '../src/guest/kernel/run.js';
import { workload } from '../src/guest/kernel/workloads.js';
import { type MigratingGuest, migrate } from '../src/hypervisor/migrate.js';
import { parseAgileSpec } from '../src/pagers/agile/options.js';
import { entryType, P2M_LOGDIRTY } from '../src/pagers/nested/entries.js';
import type { NestedPager } from '../src/pagers/nested/nested.js';
import { parseNestedSpec } from '../src/pagers/nested/options.js';
import { createPager, PAGERS } from '../src/pagers/registry.js';
import { Vm } from '../src/vm/vm.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'dist/src/cli/main.js');
const nestedKind = PAGERS.find((k) => k.name === 'nested');
if (nestedKind === undefined) throw new Error('no nested pager');
const VARIANTS = nestedKind.variants(1);

/** A counter of the pager's (every declared one is reported). */
function stat(p: NestedPager, name: string): number {
  const v = p.stats()[name];
  if (v === undefined) throw new Error(`no counter ${name}`);
  return v;
}

test('specs of the pagers over a stage 2 (nested, agile): format first, each switch once, well formed', () => {
  for (const [pager, parse] of [
    ['nested', parseNestedSpec],
    ['agile', parseAgileSpec],
  ] as const) {
    const kind = (spec: string) => {
      const sw = parse(spec);
      return typeof sw === 'string' ? sw : sw.kind;
    };
    assert.equal(kind(pager), 'ept');
    assert.equal(kind(`${pager}:npt`), 'npt');
    assert.equal(kind(`${pager}:levels=5:levels=4`), `"${pager}:levels=5:levels=4": switch "levels" given twice`);
    assert.equal(
      kind(`${pager}:levels=4:npt`),
      `"${pager}:levels=4:npt": the format (ept or npt) comes first, right after "${pager}"`,
    );
    assert.equal(kind(`${pager}:Levels`), `"${pager}:Levels": bad switch "Levels"`);
    assert.match(kind(`shadow:${pager}`), /not an? (nested|agile) pager spec/);
    assert.match(kind(`${pager}:bogus=1`), /unknown switch "bogus"/);
  }
  // Agile's switches all take values: a sign is not one of its forms.
  assert.equal(parseAgileSpec('agile:+start'), '"agile:+start": bad switch "+start"');
});

test('logdirty switch: pml by default where Xen would use it, wp otherwise; pml without EPT A/D is refused', () => {
  const mode = (spec: string) => {
    const sw = parseNestedSpec(spec);
    return typeof sw === 'string' ? sw : sw.logdirty;
  };
  assert.equal(mode('nested'), 'pml');
  assert.equal(mode('nested:ept:-ad'), 'wp');
  assert.equal(mode('nested:npt'), 'wp');
  assert.equal(mode('nested:ept:logdirty=wp'), 'wp');
  assert.match(mode('nested:ept:logdirty=pml:-ad'), /needs EPT accessed\/dirty flags/);
  assert.match(mode('nested:npt:logdirty=pml'), /Umbra's NPT has none/);
  assert.match(mode('nested:logdirty=on'), /logdirty takes =wp or =pml/);
  const both = VARIANTS.map(mode);
  assert.ok(both.includes('pml') && both.includes('wp'), 'the variants run both ways');
  const bad = spawnSync(process.execPath, [
    cli,
    'migrate',
    '--workload',
    'ctxswitch',
    '--pager',
    'nested:npt:logdirty=pml',
  ]);
  assert.equal(bad.status, 2);
  assert.equal(bad.stderr.toString().trim().split('\n').length, 1);
});

/** Pages the small guest maps: VA i*4096 -> gfn DATA + i. */
const PAGES = 700;
const DATA = 16;

/**
 * A 4-level guest: PML4 gfn 1 -> PDPT 2 -> PD 3 -> PTs 4, 5 -> data pages;
 * every accessed flag clear, the PTEs' dirty flags set if `dirty`.
 */
function smallGuest(spec: string, dirty = false): { vm: Vm; pager: NestedPager; cpu: Cpu } {
  const pager = createPager(spec, { check: true }) as NestedPager;
  const vm = new Vm({ vcpus: 1, memory: 0x800000, maxphyaddr: 40 }, pager, { layout: 'identity', seed: 0 });
  const g = vm.domain.guest;
  const put = (gfn: number, i: number, lo: number): void => {
    (g.frameForWrite(gfn) as Uint32Array)[2 * i] = lo;
  };
  put(1, 0, entryLo(2, 7));
  put(2, 0, entryLo(3, 7));
  put(3, 0, entryLo(4, 7));
  put(3, 1, entryLo(5, 7));
  for (let i = 0; i < PAGES; i++) put(4 + (i >> 9), i & 511, entryLo(DATA + i, dirty ? 0x47 : 7));
  const cpu = vm.cpus[0] as Cpu;
  assert.equal(cpu.writeCr4(0, 0x20), OK);
  assert.equal(cpu.writeCr3(0, 0x1000), OK);
  assert.equal(cpu.writeEfer(0, 0x100), OK);
  assert.equal(cpu.writeCr0(0, 0x80010011), OK);
  return { vm, pager, cpu };
}

/**
 * The guest as migration drives it: operation s reads VA (s mod PAGES)
 * pages in (setting accessed flags in its page tables the first time),
 * and every fifth a device writes a data page (pwrite). No guest store.
 */
function readerGuest(vm: Vm, cpu: Cpu, total: number): MigratingGuest {
  let ops = 0;
  return {
    get ops() {
      return ops;
    },
    runUntil(target) {
      for (; ops < target && ops < total; ops++) {
        assert.equal(cpu.read(0, (ops % PAGES) * 4096, 4, 0), OK);
        if (ops % 5 === 0) {
          const gfn = DATA + ((ops * 7) % PAGES);
          (vm.domain.guest.frameForWrite(gfn) as Uint32Array)[1] = ops;
          vm.pager.physicalWrite?.(gfn, 4, 4);
        }
      }
      return ops >= total;
    },
  };
}

function migrateReader(spec: string) {
  const { vm, pager, cpu } = smallGuest(spec);
  const r = migrate({
    domain: vm.domain,
    cpus: vm.cpus,
    guest: readerGuest(vm, cpu, 3 * PAGES),
    logDirty: vm.domain.logDirty,
    warmupOps: 0,
    opsPerPage: 40,
    maxRounds: 30,
    stopPages: 0,
    maxFactor: 3,
  });
  return { r, vm, pager };
}

test('accessed-flag writes and device writes alone: the copy is exact under every nested variant', () => {
  for (const spec of VARIANTS) {
    const { r, vm, pager } = migrateReader(spec);
    const s = (name: string): number => stat(pager, name);
    assert.ok(r.verified, `${spec}: ${r.destinationSha256} vs ${r.sourceSha256}`);
    assert.ok(r.rounds.length >= 2, spec);
    // The guest set accessed flags in both page tables after round 0 had copied them.
    const pt = vm.domain.guest.frameForRead(5);
    assert.notEqual((pt[2 * ((PAGES - 1) & 511)] as number) & 0x20, 0, `${spec}: the last PTE is accessed`);
    if (/logdirty=pml/.test(spec)) {
      assert.ok(s('pml.logged') > 0 && s('pml.entries_drained') === s('pml.logged'), spec);
      assert.equal(s('logdirty.write_faults'), /-large/.test(spec) ? 0 : s('stage2.splits'), spec);
    } else {
      assert.ok(s('logdirty.write_faults') > 0, spec);
      assert.equal(s('pml.logged'), 0, spec);
    }
    assert.ok(s('stage2.recalc_faults') > 0 && s('logdirty.cleans') >= 1, spec);
  }
});

test('PML: 512 entries, a full log exits and is drained; logs are drained before a clean; superpages split', () => {
  const { vm, pager, cpu } = smallGuest('nested:ept:+large:logdirty=pml', true);
  vm.domain.logDirty.enable();
  // Guest stores to 600 pages, each after a read. The guest's own dirty flags are set, but the read
  // caches the page as clean (its EPT dirty flag is clear), so the store walks again, sets the EPT
  // flag and logs the page.
  for (let i = 0; i < 600; i++) {
    assert.equal(cpu.read(0, i * 4096, 4, 0), OK);
    assert.equal(cpu.write(0, i * 4096, 4, 0, i, 0), OK);
  }
  assert.equal(stat(pager, 'stage2.splits'), 2, 'the two 2 MiB leaves over the data went whole to 4 KiB leaves');
  assert.ok(stat(pager, 'exit.pml_full') >= 1 && stat(pager, 'pml.drains') >= 1);
  const dirty = vm.domain.logDirty.clean();
  for (let i = 0; i < 600; i++) assert.ok(dirty.includes(DATA + i), `page ${i} logged`);
  for (const gfn of [1, 2, 3, 4, 5]) assert.ok(dirty.includes(gfn), `table ${gfn}: read as a write with EPT A/D`);
  assert.equal(stat(pager, 'pml.entries_drained'), stat(pager, 'pml.logged'), 'every entry reached the log');
  assert.equal(pager.checkInvariants(), null);
  // The log object itself: index 511 down to 0, then 0xffff (full).
  const log = new PmlLog();
  for (let i = 0; i < PML_ENTRIES; i++) log.log(i * 4096 + 5);
  assert.ok(log.full);
  assert.equal(log.index, 0xffff);
  const out = log.drain();
  assert.equal(out.length, PML_ENTRIES);
  assert.equal(out[0], 0);
  assert.equal(out[511], 511 * 4096);
  assert.equal(log.index, PML_ENTRIES - 1);
});

test('the isolation checker: no writable ram_logdirty leaf under wp, no written unlogged leaf under pml', () => {
  for (const spec of ['nested:ept:-large:logdirty=wp', 'nested:ept:-large:logdirty=pml']) {
    const { vm, pager, cpu } = smallGuest(spec);
    assert.equal(cpu.read(0, 0, 4, 0), OK);
    vm.domain.logDirty.enable();
    assert.equal(cpu.read(0, 0, 4, 0), OK); // resolves the marks on the path to the data page
    assert.equal(pager.checkInvariants(), null);
    const leaf = [...pager.table.leaves()].find((l) => l.gfn === DATA);
    assert.ok(leaf !== undefined && entryType(leaf.hi) === P2M_LOGDIRTY && !leaf.pending, spec);
    const f = vm.domain.mem.write(leaf.tableMfn);
    // wp: grant write; pml (already writable): set the dirty flag as if written without logging.
    f[2 * leaf.index] = ((f[2 * leaf.index] as number) | EPT_W | (spec.endsWith('pml') ? EPT_D : 0)) >>> 0;
    assert.match(
      pager.checkInvariants() ?? '',
      spec.endsWith('pml') ? /its gfn is not logged/ : /writable ram_logdirty leaf \(logdirty=wp\)/,
    );
  }
});

test('a kernel workload migrates under every nested variant; the copy is verified', () => {
  const w = workload('compile');
  if (w === undefined) throw new Error('compile');
  for (const spec of VARIANTS) {
    const pager = createPager(spec, {}) as NestedPager;
    const { port, kernel } = startWorkload({
      workload: w,
      params: { size: 0.02, seed: 3, vcpus: 2, memory: 256 * 2 ** 20, thp: false },
      mode: '4-level',
      pcid: true,
      pager,
      layout: /levels=5/.test(spec) ? 'scatter' : 'identity',
    });
    const r = migrate({
      domain: port.domain,
      cpus: port.cpus,
      guest: migratingGuest({ port, kernel }),
      logDirty: port.domain.logDirty,
      warmupOps: 100_000,
      opsPerPage: 66,
      maxRounds: 30,
      stopPages: 50,
      maxFactor: 3,
    });
    assert.ok(r.verified, `${spec}: ${r.destinationSha256} vs ${r.sourceSha256}`);
    assert.ok(r.rounds.length >= 2, spec);
    assert.ok(stat(pager, 'logdirty.pages_dirtied') > 0, spec);
  }
});

test('umbra migrate --pager nested: checked, verified', () => {
  for (const pager of ['nested', 'nested:npt']) {
    const ok = spawnSync(
      process.execPath,
      [cli, 'migrate', '--workload', 'server', '--size', '0.01', '--warmup', '20000', '--check', '--pager', pager],
      { encoding: 'utf8' },
    );
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /^verified {3}destination = source: sha256 [0-9a-f]{64}$/m);
  }
});
