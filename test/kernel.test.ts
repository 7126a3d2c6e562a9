/**
 * The guest kernel model (src/guest/kernel): transparency of every workload
 * under every registered pager (src/pagers/registry.ts), the kernel's own
 * invariants after a run, copy-on-write and protection semantics through
 * the Kernel API, determinism, and record/replay between every pager and
 * native.
 *
 * A workload per variant is too slow for every switch combination, so the
 * workload digests are checked under each pager's fixed sample
 * (`PagerKind.sample`: its default, each switch flipped once from its
 * default, all off, all on at edge values); with the isolation checker
 * after every exit, under each pager's default spec. A new pager or switch
 * registered with its sample is tested here without a line changed.
 */
import './support/node.js';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TlbConfig } from '../src/arch/x86/tlb.js';
import { parseTlb } from '../src/cli/options.js';
import {
  ACCESS_FETCH,
  ACCESS_READ,
  ACCESS_WRITE,
  type Access,
  Kernel,
  PROT_R,
  PROT_W,
  PROT_X,
  type Task,
  type TaskBody,
} from '../src/guest/kernel/kernel.js';
import { type KernelMode, layoutFor } from '../src/guest/kernel/layout.js';
import { runWorkload, type WorkloadRun } from '../src/guest/kernel/run.js';
import { WORKLOADS, workload } from '../src/guest/kernel/workloads.js';
import { GuestPort } from '../src/guest/port.js';
import { replayTrace } from '../src/guest/trace/replay.js';
import { TraceWriter } from '../src/guest/trace/writer.js';
import type { Pager } from '../src/hypervisor/pager.js';
import { openTrace, traceFileOutput } from '../src/io/trace.js';
import type { LayoutKind } from '../src/machine/placement.js';
import { NativePager } from '../src/pagers/native/native.js';
import { createPager, defaultSpecs, sampleVariants } from '../src/pagers/registry.js';

const MiB = 2 ** 20;
const dir = mkdtempSync(join(tmpdir(), 'umbra-kernel-'));

/**
 * Page tables the kernel allocates at boot and holds for its whole life: the
 * init mm's top table and the tables of the direct map and kernel text paths
 * (4-level: PML4, a PDPT for the direct map, PDPT + PD for the text; 5-level
 * adds a level to each path; PAE: the PDPT and the kernel PD; 32-bit: the
 * page directory alone, whose 4 MiB entries map RAM).
 */
const BOOT_TABLES: Record<KernelMode, number> = { '4-level': 4, '5-level': 6, pae: 2, '32-bit': 1 };

interface Case {
  workload: string;
  size: number;
  mode?: KernelMode;
  pcid?: boolean;
  thp?: boolean;
  layout?: LayoutKind;
  tlb?: TlbConfig;
  vcpus?: number;
  memory?: number;
  seed?: number;
  verify?: boolean;
}

function run(
  c: Case,
  pager: Pager,
  extra: { out?: (b: Uint8Array) => void; recorder?: TraceWriter } = {},
): WorkloadRun {
  const w = workload(c.workload);
  assert.ok(w !== undefined, c.workload);
  return runWorkload({
    workload: w,
    params: {
      size: c.size,
      seed: c.seed ?? 1,
      vcpus: c.vcpus ?? 2,
      memory: c.memory ?? 256 * MiB,
      thp: c.thp ?? false,
    },
    mode: c.mode ?? '4-level',
    pcid: c.pcid ?? true,
    verify: c.verify ?? true,
    pager,
    layout: c.layout ?? 'identity',
    tlb: c.tlb,
    ...extra,
  });
}

/** The kernel's bookkeeping balances after every process has exited. */
function assertClean(r: WorkloadRun, mode: KernelMode, kills = 0): Record<string, number> {
  const s = r.kernel.stats();
  const g = (k: string): number => s[k] ?? Number.NaN;
  assert.equal(r.kernel.leakedFrames(), 0, 'no frame leaked');
  assert.equal(r.kernel.tasks.size, 0, 'every task exited');
  assert.equal(
    g('guest.tables_allocated') - g('guest.tables_freed'),
    BOOT_TABLES[mode],
    `only the boot tables are left (allocated ${g('guest.tables_allocated')}, freed ${g('guest.tables_freed')})`,
  );
  assert.equal(g('guest.kills'), kills, 'kills');
  assert.equal(g('guest.page_faults.segv'), kills, 'SIGSEGVs');
  assert.equal(g('guest.page_faults.spurious'), 0, 'no spurious faults: the kernel flushes after every change');
  assert.equal(g('guest.exits'), g('guest.processes') + g('guest.threads'), 'every task exits once');
  assert.ok(g('guest.user_accesses') > 0 && g('guest.page_faults') > 0, 'the workload did something');
  assert.ok(r.ops > g('guest.user_accesses'), 'operations include the kernel');
  return s;
}

/**
 * Run a case natively and under each pager spec given; the guest must see the same thing (and its kernel
 * must stay clean and do the same under each).
 */
function transparent(c: Case, specs: readonly string[], check = false): WorkloadRun {
  const native = run(c, new NativePager());
  assertClean(native, c.mode ?? '4-level');
  for (const spec of specs) {
    const r = run(c, createPager(spec, { check }));
    assert.equal(r.digest, native.digest, `guest-visible output is the same under native and ${spec}`);
    assert.equal(r.ops, native.ops, spec);
    assert.deepEqual(r.kernel.stats(), native.kernel.stats(), `the kernel did the same under native and ${spec}`);
  }
  return native;
}

const label = (c: Case): string =>
  [
    c.workload,
    `size ${c.size}`,
    c.mode ?? '4-level',
    c.pcid === false ? 'no pcid' : 'pcid',
    c.thp ? 'thp' : '',
    c.layout === 'scatter' ? 'scatter' : '',
    c.vcpus !== undefined ? `${c.vcpus} vCPU` : '',
  ]
    .filter((x) => x !== '')
    .join(', ');

// ---- 1. transparency ----

test('boot tables: derived from a fresh boot, per mode', () => {
  for (const mode of ['4-level', '5-level', 'pae', '32-bit'] as const) {
    const { k } = boot(mode);
    assert.equal(k.counters.tablesAllocated, BOOT_TABLES[mode], mode);
    assert.equal(k.counters.tablesFreed, 0, mode);
    assert.equal(k.leakedFrames(), 0, mode);
  }
});

// Every workload at its smallest, 4-level: under every pager's default spec with the isolation checker after
// every exit, and under every pager's sample of variants without it.
const CHECKED: Case[] = [
  { workload: 'compile', size: 0.001 },
  { workload: 'forkexec', size: 0.001 },
  { workload: 'ctxswitch', size: 0.001 },
  { workload: 'bigmem', size: 0.001 },
  { workload: 'mmapchurn', size: 0.001 },
  { workload: 'server', size: 0.0005, vcpus: 1 },
];
assert.deepEqual(CHECKED.map((c) => c.workload).sort(), WORKLOADS.map((w) => w.name).sort(), 'every workload');

for (const c of CHECKED) {
  test(`transparent under every checked pager: ${label(c)}`, () => {
    transparent(c, defaultSpecs(), true);
  });
  test(`transparent under every pager's sample of variants: ${label(c)}`, () => {
    transparent(c, sampleVariants(c.vcpus ?? 2));
  });
}

// Other modes and knobs, without the checker (it runs in the cases above): under every pager's default
// spec and one variant of the sample, a different one for each case in turn.
const MATRIX: Case[] = [
  { workload: 'forkexec', size: 0.003, mode: '5-level' },
  { workload: 'server', size: 0.002, mode: '5-level', thp: true },
  { workload: 'mmapchurn', size: 0.003, mode: 'pae' },
  { workload: 'ctxswitch', size: 0.003, mode: 'pae', pcid: false },
  { workload: 'bigmem', size: 0.003, mode: '32-bit' },
  { workload: 'server', size: 0.002, mode: '32-bit' },
  { workload: 'forkexec', size: 0.003, pcid: false },
  { workload: 'server', size: 0.002, pcid: false, vcpus: 3 },
  { workload: 'bigmem', size: 0.003, thp: true },
  { workload: 'server', size: 0.002, thp: true },
  { workload: 'compile', size: 0.001, layout: 'scatter' },
  { workload: 'mmapchurn', size: 0.003, layout: 'scatter', seed: 5 },
];

/** Each pager's default spec and the `i`-th variant of the samples (round robin). */
function specsFor(c: Case, i: number): string[] {
  const sample = sampleVariants(c.vcpus ?? 2).filter((s) => !defaultSpecs().includes(s));
  return [...defaultSpecs(), ...(sample.length === 0 ? [] : [sample[i % sample.length] as string])];
}

for (const [i, c] of MATRIX.entries()) {
  const specs = specsFor(c, i);
  test(`transparent: ${label(c)} (${specs.join(', ')})`, () => {
    transparent(c, specs);
  });
}

for (const name of ['forkexec', 'server', 'bigmem']) {
  test(`the guest sees the same thing whatever the TLB geometry: ${name}`, () => {
    const c: Case = { workload: name, size: 0.002, thp: name === 'bigmem' };
    const base = run(c, new NativePager()).digest;
    for (const tlb of ['off', 'tiny']) {
      const cc = { ...c, tlb: parseTlb(tlb) };
      assert.equal(run(cc, new NativePager()).digest, base, `native, TLB ${tlb}`);
      for (const spec of defaultSpecs()) assert.equal(run(cc, createPager(spec)).digest, base, `${spec}, TLB ${tlb}`);
    }
  });
}

// 32-bit guests reuse freed data frames: clear_page must clear whole 8-byte words there too.
test('transparent and verified in 32-bit: forkexec, ctxswitch, mmapchurn, compile', () => {
  for (const name of ['forkexec', 'ctxswitch', 'mmapchurn', 'compile']) {
    transparent({ workload: name, size: 0.001, mode: '32-bit' }, defaultSpecs());
  }
});

test('32-bit guest: THP asked for is not used (2-level paging has 4 MiB pages, Linux no THP)', () => {
  transparent({ workload: 'server', size: 0.001, mode: '32-bit', thp: true }, defaultSpecs());
  const r = run({ workload: 'server', size: 0.001, mode: '32-bit', thp: true }, new NativePager());
  assert.equal(r.kernel.stats()['guest.page_faults.huge'], 0);
});

// ---- 2. invariants and plausible counts ----

test('compile: every process execs; forks make children that fault copy-on-write', () => {
  const r = run({ workload: 'compile', size: 0.03 }, new NativePager());
  const s = assertClean(r, '4-level');
  const files = Math.max(1, Math.round(41 * 0.03));
  // make, then gcc, cc1 and as per file, then ld.
  assert.equal(s['guest.processes'], 2 + 3 * files);
  assert.equal(s['guest.execs'], s['guest.processes']);
  assert.equal(s['guest.syscalls.fork'], s['guest.processes'] - 1);
  assert.equal(s['guest.threads'], 0);
  assert.ok((s['guest.page_faults.cow'] ?? 0) > 0);
  assert.ok((s['guest.page_faults.file'] ?? 0) > 0, 'text comes from the page cache');
  assert.ok((s['guest.page_cache_fills'] ?? 0) > 0);
  assert.ok((s['guest.page_faults.fetch'] ?? 0) > 0);
  assert.equal(s['guest.page_faults.huge'], 0, 'no THP unless asked');
});

test('forkexec: one child per command, copy-on-write faults after each fork', () => {
  const r = run({ workload: 'forkexec', size: 0.002 }, new NativePager());
  const s = assertClean(r, '4-level');
  const n = Math.max(1, Math.round(6000 * 0.002));
  assert.equal(s['guest.processes'], n + 1);
  assert.equal(s['guest.execs'], n + 1);
  assert.ok((s['guest.page_faults.cow'] ?? 0) > 0);
  assert.ok(
    (s['guest.page_faults.cow'] ?? 0) + (s['guest.page_faults.cow_reuse'] ?? 0) >= n,
    'the shell rewrites its pages',
  );
  assert.ok((s['guest.page_faults.zero_page'] ?? 0) + (s['guest.page_faults.demand_zero'] ?? 0) > 0);
});

test('server: threads on 2 vCPUs need TLB shootdowns', () => {
  const r = run({ workload: 'server', size: 0.002, vcpus: 2 }, new NativePager());
  const s = assertClean(r, '4-level');
  assert.equal(s['guest.processes'], 1);
  assert.equal(s['guest.threads'], 4);
  assert.ok((s['guest.shootdown_ipis'] ?? 0) > 0);
  assert.ok((s['guest.syscalls.munmap'] ?? 0) >= 4);
  const one = run({ workload: 'server', size: 0.002, vcpus: 1 }, new NativePager()).kernel.stats();
  assert.equal(one['guest.shootdown_ipis'], 0, 'no other vCPU to interrupt');
});

test('bigmem with THP maps huge pages; without, none', () => {
  const thp = assertClean(run({ workload: 'bigmem', size: 0.003, thp: true }, new NativePager()), '4-level');
  assert.ok((thp['guest.page_faults.huge'] ?? 0) > 0);
  const small = assertClean(run({ workload: 'bigmem', size: 0.003 }, new NativePager()), '4-level');
  assert.equal(small['guest.page_faults.huge'], 0);
  assert.ok((small['guest.page_faults'] ?? 0) > (thp['guest.page_faults'] ?? 0), 'huge pages take fewer faults');
  assert.ok((small['guest.pages_aged_young'] ?? 0) > 0, 'aging found young pages');
});

test('mmapchurn and ctxswitch: counts follow the workload', () => {
  const m = assertClean(run({ workload: 'mmapchurn', size: 0.002 }, new NativePager()), '4-level');
  const rounds = Math.max(1, Math.round(5000 * 0.002));
  assert.equal(m['guest.processes'], 3);
  assert.ok((m['guest.syscalls.munmap'] ?? 0) >= 2 * rounds);
  assert.ok((m['guest.syscalls.mmap'] ?? 0) >= 2 * rounds);
  const c = assertClean(run({ workload: 'ctxswitch', size: 0.004 }, new NativePager()), '4-level');
  const msgs = 8 * Math.max(1, Math.round((20000 * 0.004) / 8));
  assert.equal(c['guest.processes'], 9);
  // Every process writes its partner's pipe and reads its own once a round; a reader finding it empty blocks.
  assert.equal(c['guest.syscalls.read'] ?? 0, msgs);
  assert.equal(c['guest.syscalls.write'] ?? 0, msgs);
  assert.ok((c['guest.context_switches'] ?? 0) >= msgs, 'each message switches');
});

// ---- 3. the Kernel API: copy-on-write, protection errors, stack growth ----

interface Booted {
  k: Kernel;
  port: GuestPort;
}

function boot(mode: KernelMode, o: { vcpus?: number; thp?: boolean; memory?: number } = {}): Booted {
  const port = new GuestPort(
    { vcpus: o.vcpus ?? 2, memory: o.memory ?? 128 * MiB, maxphyaddr: layoutFor(mode).maxphyaddr },
    { pager: new NativePager(), layout: 'identity', seed: 3, out: () => {} },
  );
  port.autoLine = true;
  const k = new Kernel(port, { mode, pcid: true, thp: o.thp ?? false, verify: true });
  k.boot();
  return { k, port };
}

/** One user access; for a read, the 8-byte word read as [hi, lo] (hi = writer's pid), else null if killed. */
function word(b: Booted, t: Task, kind: Access, va: number, value = 0): [number, number] | null {
  if (!b.k.access(t, kind, va, value)) return null;
  return [b.port.cpu.valueHi, b.port.cpu.valueLo];
}

/** A task body that does `fn` in one time slice, then exits (at its next slice, unless killed). */
function once(fn: (t: Task) => void): (t: Task) => TaskBody {
  return function* (t) {
    fn(t);
    yield;
  };
}

/** A minimal program image, as runProgram execs it. */
const TRUE = { file: 31, textPages: 8, dataPages: 1, bssPages: 1, name: 'true' };

/** Run to completion and check the kernel gave everything back. */
function finish(b: Booted): void {
  b.k.run();
  b.port.finish();
  assert.equal(b.k.tasks.size, 0);
  assert.equal(b.k.leakedFrames(), 0, 'no frame leaked');
  assert.equal(b.k.counters.tablesAllocated - b.k.counters.tablesFreed, BOOT_TABLES[b.k.layout.mode], 'tables');
}

for (const mode of ['4-level', '5-level', 'pae', '32-bit'] as const) {
  test(`copy-on-write keeps parent and child apart (${mode})`, () => {
    const b = boot(mode);
    const { k } = b;
    const PAGES = 6;
    let phase = 0;
    let checked = 0;
    const at = (base: number, i: number): number => base + i * 4096 + ((i * 7) % 64) * 64;
    k.spawn('parent', function* (p): TaskBody {
      k.exec(p, TRUE);
      const area = k.mmap(p, PAGES * 4096, PROT_R | PROT_W);
      const heap = p.mm.brk;
      k.brk(p, heap + 2 * 4096);
      for (let i = 0; i < PAGES; i++) assert.deepEqual(word(b, p, ACCESS_WRITE, at(area, i), 100 + i), [0, 0]);
      word(b, p, ACCESS_WRITE, heap + 64, 555);
      const child = k.fork(p, 'child', function* (c): TaskBody {
        // The child sees what the parent wrote before the fork.
        for (let i = 0; i < PAGES; i++) assert.deepEqual(word(b, c, ACCESS_READ, at(area, i)), [p.pid, 100 + i]);
        assert.deepEqual(word(b, c, ACCESS_READ, heap + 64), [p.pid, 555]);
        for (let i = 0; i < PAGES; i++) word(b, c, ACCESS_WRITE, at(area, i), 200 + i);
        for (let i = 0; i < PAGES; i++) assert.deepEqual(word(b, c, ACCESS_READ, at(area, i)), [c.pid, 200 + i]);
        phase = 1;
        while (phase < 2) yield;
        // The parent's later writes do not reach the child.
        for (let i = 0; i < PAGES; i++) assert.deepEqual(word(b, c, ACCESS_READ, at(area, i)), [c.pid, 200 + i]);
        assert.deepEqual(word(b, c, ACCESS_READ, heap + 64), [p.pid, 555]);
        checked++;
      });
      while (phase < 1) yield;
      // The child's writes do not reach the parent.
      for (let i = 0; i < PAGES; i++) assert.deepEqual(word(b, p, ACCESS_READ, at(area, i)), [p.pid, 100 + i]);
      for (let i = 0; i < PAGES; i += 2) word(b, p, ACCESS_WRITE, at(area, i), 300 + i);
      word(b, p, ACCESS_WRITE, heap + 64, 666);
      phase = 2;
      yield { wait: child };
      for (let i = 0; i < PAGES; i++) {
        assert.deepEqual(word(b, p, ACCESS_READ, at(area, i)), [p.pid, i % 2 === 0 ? 300 + i : 100 + i]);
      }
      assert.deepEqual(word(b, p, ACCESS_READ, heap + 64), [p.pid, 666]);
      checked++;
    });
    finish(b);
    assert.equal(checked, 2, 'both bodies ran to the end');
    assert.equal(k.counters.kills, 0);
    assert.ok(k.counters.faultCow >= PAGES, 'the child copied every page it wrote');
    assert.ok(k.counters.faultCowReuse > 0, 'the parent, sole owner after the child copied, reused its pages');
  });
}

for (const mode of ['4-level', 'pae', '32-bit'] as const) {
  test(`a protection error kills only the offending process and frees everything (${mode})`, () => {
    const b = boot(mode);
    const { k } = b;
    const l = k.layout;
    const bad: Array<[string, (c: Task, ro: number, data: number) => boolean]> = [
      ['write to a read-only area', (c, ro) => k.access(c, ACCESS_WRITE, ro + 64, 1)],
      ['write to a page made read-only', (c, _ro, data) => k.access(c, ACCESS_WRITE, data + 4096, 1)],
      ['fetch from a fresh page of a data area', (c, _ro, data) => k.access(c, ACCESS_FETCH, data + 2 * 4096)],
      ['read of an unmapped address', (c) => k.access(c, ACCESS_READ, 0x1000)],
      ['write below the text, far from any area', (c) => k.access(c, ACCESS_WRITE, l.textBase - 16 * 4096, 1)],
      ['read of kernel memory', (c) => k.access(c, ACCESS_READ, l.directHi * 2 ** 32 + l.directLo + 0x100000)],
    ];
    if (l.nx) bad.push(['fetch from a present non-executable page', (c, _ro, data) => k.access(c, ACCESS_FETCH, data)]);
    const outcomes: Array<[string, boolean, boolean, number]> = [];
    let parentOk = false;
    k.spawn('parent', function* (p): TaskBody {
      k.exec(p, TRUE);
      const ro = k.mmap(p, 4 * 4096, PROT_R);
      const data = k.mmap(p, 4 * 4096, PROT_R | PROT_W);
      word(b, p, ACCESS_WRITE, data, 7);
      word(b, p, ACCESS_WRITE, data + 4096, 8);
      assert.deepEqual(word(b, p, ACCESS_READ, ro + 64), [0, 0], 'a read-only area reads as zero');
      k.mprotect(p, data + 4096, 4096, PROT_R);
      for (const [what, act] of bad) {
        const before = k.counters.kills;
        const child = k.fork(p, what, function* (c): TaskBody {
          const ok = act(c, ro, data);
          // Once killed, nothing more runs in user mode.
          const again = k.access(c, ACCESS_READ, data);
          outcomes.push([what, ok, again, k.counters.kills - before]);
          yield;
          outcomes.push([`${what}: ran after its death`, true, true, 0]);
        });
        yield { wait: child };
        assert.equal(child.state, 'dead', what);
        assert.ok(child.killed, what);
      }
      // The parent is untouched.
      assert.deepEqual(word(b, p, ACCESS_READ, data), [p.pid, 7]);
      assert.deepEqual(word(b, p, ACCESS_READ, data + 4096), [p.pid, 8]);
      assert.ok(word(b, p, ACCESS_WRITE, data + 3 * 4096, 9) !== null);
      parentOk = !p.killed;
    });
    finish(b);
    assert.deepEqual(
      outcomes,
      bad.map(([what]) => [what, false, false, 1]),
    );
    assert.ok(parentOk);
    assert.equal(k.counters.kills, bad.length);
    assert.equal(k.counters.faultSegv, bad.length);
    assert.equal(k.counters.exits, bad.length + 1);
  });

  test(`the stack grows down on demand up to its limit; further down is a kill (${mode})`, () => {
    const b = boot(mode);
    const { k } = b;
    const top = k.layout.stackTop;
    const LIMIT = 8 * MiB;
    let killedAt = -1;
    k.spawn('p', function* (p): TaskBody {
      k.exec(p, TRUE);
      const stack = p.mm.find(top - 4096);
      assert.ok(stack?.growsDown);
      const initial = stack.start;
      // Just below the initial area: the area grows to the faulting page.
      assert.deepEqual(word(b, p, ACCESS_READ, initial - 3 * 4096 + 128), [0, 0]);
      assert.equal(stack.start, initial - 3 * 4096);
      assert.equal(k.counters.faultStackGrowth, 1);
      word(b, p, ACCESS_WRITE, initial - 3 * 4096 + 128, 42);
      assert.deepEqual(word(b, p, ACCESS_READ, initial - 3 * 4096 + 128), [p.pid, 42]);
      // Down to the limit exactly.
      assert.ok(word(b, p, ACCESS_WRITE, top - LIMIT, 43) !== null);
      assert.equal(stack.start, top - LIMIT);
      assert.equal(k.counters.faultStackGrowth, 2);
      assert.equal(k.counters.kills, 0);
      const child = k.fork(
        p,
        'deep',
        once((c) => {
          // One page beyond the limit.
          if (!k.access(c, ACCESS_WRITE, top - LIMIT - 4096 + 8, 1)) killedAt = k.counters.kills;
        }),
      );
      yield { wait: child };
      const far = k.fork(
        p,
        'far',
        once((c) => {
          if (!k.access(c, ACCESS_READ, top - 64 * MiB)) killedAt = k.counters.kills;
        }),
      );
      yield { wait: far };
      assert.deepEqual(word(b, p, ACCESS_READ, top - LIMIT), [p.pid, 43]);
      assert.deepEqual(word(b, p, ACCESS_READ, initial - 3 * 4096 + 128), [p.pid, 42]);
    });
    finish(b);
    assert.equal(killedAt, 2);
    assert.equal(k.counters.kills, 2);
    assert.equal(k.counters.faultStackGrowth, 2);
  });
}

test('munmap, mprotect and brk shrinking free pages and tables; a later access to them is a kill', () => {
  const b = boot('4-level');
  const { k } = b;
  let killed = false;
  k.spawn('p', function* (p): TaskBody {
    k.exec(p, TRUE);
    const a = k.mmap(p, 64 * 4096, PROT_R | PROT_W);
    for (let i = 0; i < 64; i++) word(b, p, ACCESS_WRITE, a + i * 4096, i);
    const inUse = k.frames.inUse;
    k.munmap(p, a + 16 * 4096, 32 * 4096);
    assert.equal(k.frames.inUse, inUse - 32, 'the 32 pages went back');
    assert.deepEqual(word(b, p, ACCESS_READ, a + 15 * 4096), [p.pid, 15]);
    assert.deepEqual(word(b, p, ACCESS_READ, a + 48 * 4096), [p.pid, 48]);
    k.mprotect(p, a, 4096, PROT_R | PROT_X);
    assert.deepEqual(word(b, p, ACCESS_READ, a), [p.pid, 0]);
    assert.ok(k.access(p, ACCESS_FETCH, a), 'executable now');
    const heap = p.mm.brk;
    k.brk(p, heap + 8 * 4096);
    for (let i = 0; i < 8; i++) word(b, p, ACCESS_WRITE, heap + i * 4096, i);
    k.brk(p, heap + 2 * 4096);
    assert.deepEqual(word(b, p, ACCESS_READ, heap + 4096), [p.pid, 1]);
    const c = k.fork(
      p,
      'c',
      once((t) => {
        killed = !k.access(t, ACCESS_READ, a + 20 * 4096) && !k.access(t, ACCESS_READ, heap + 5 * 4096);
      }),
    );
    yield { wait: c };
  });
  finish(b);
  assert.ok(killed);
  assert.equal(k.counters.kills, 1);
});

test('copy-on-write of a transparent huge page', () => {
  const b = boot('4-level', { thp: true, vcpus: 1 });
  const { k } = b;
  k.spawn('p', function* (p): TaskBody {
    const a = k.mmap(p, 2 * MiB, PROT_R | PROT_W);
    assert.equal(a % (2 * MiB), 0, 'huge-eligible areas are 2 MiB aligned');
    for (let i = 0; i < 512; i += 37) word(b, p, ACCESS_WRITE, a + i * 4096, i);
    assert.equal(k.counters.faultHuge, 1);
    const c = k.fork(
      p,
      'c',
      once((t) => {
        assert.deepEqual(word(b, t, ACCESS_READ, a + 37 * 4096), [p.pid, 37]);
        word(b, t, ACCESS_WRITE, a + 37 * 4096, 1000);
        assert.deepEqual(word(b, t, ACCESS_READ, a + 37 * 4096), [t.pid, 1000]);
      }),
    );
    yield { wait: c };
    assert.deepEqual(word(b, p, ACCESS_READ, a + 37 * 4096), [p.pid, 37]);
    word(b, p, ACCESS_WRITE, a + 74 * 4096, 2000);
    // Unmapping part of it splits it.
    k.munmap(p, a, 4096);
    assert.deepEqual(word(b, p, ACCESS_READ, a + 74 * 4096), [p.pid, 2000]);
  });
  finish(b);
  assert.equal(k.counters.kills, 0);
});

test('splitting a huge page still shared with a forked child keeps both copies', () => {
  const b = boot('4-level', { thp: true, vcpus: 1 });
  const { k } = b;
  k.spawn('p', function* (p): TaskBody {
    const a = k.mmap(p, 2 * MiB, PROT_R | PROT_W);
    for (let i = 0; i < 512; i++) word(b, p, ACCESS_WRITE, a + i * 4096, i + 1);
    let release = false;
    const c = k.fork(p, 'c', function* (t): TaskBody {
      word(b, t, ACCESS_READ, a + 4096);
      while (!release) yield;
    });
    k.munmap(p, a, 4096); // split in the parent while the child still maps the block huge
    release = true;
    yield { wait: c };
    // If the child's exit freed the block, the next huge area reuses it.
    const other = k.mmap(p, 2 * MiB, PROT_R | PROT_W);
    for (let i = 0; i < 512; i++) word(b, p, ACCESS_WRITE, other + i * 4096, 0x7777);
    for (let i = 1; i < 512; i++) assert.deepEqual(word(b, p, ACCESS_READ, a + i * 4096), [p.pid, i + 1]);
  });
  finish(b);
});

test('a fresh anonymous page reads as zero in 32-bit mode', () => {
  const b = boot('32-bit', { vcpus: 1 });
  const { k } = b;
  k.spawn('p', function* (p): TaskBody {
    const first = k.fork(
      p,
      'writer',
      once((t) => {
        const a = k.mmap(t, 4096, PROT_R | PROT_W);
        for (let line = 0; line < 64; line++) word(b, t, ACCESS_WRITE, a + line * 64, line + 1);
      }),
    );
    yield { wait: first };
    // The writer's page is free again (dirty); the next demand-zero page is cleared from it.
    const a = k.mmap(p, 4096, PROT_R | PROT_W);
    word(b, p, ACCESS_WRITE, a, 5);
    for (let line = 1; line < 64; line++) assert.deepEqual(word(b, p, ACCESS_READ, a + line * 64), [0, 0]);
  });
  finish(b);
});

// ---- 4. determinism ----

test('same seed, same run; another seed, another run (under every pager)', () => {
  for (const spec of ['native', ...defaultSpecs()]) {
    for (const name of ['forkexec', 'mmapchurn']) {
      const c: Case = { workload: name, size: 0.003, seed: 11, layout: 'scatter' };
      const a = run(c, createPager(spec));
      const b = run(c, createPager(spec));
      assert.equal(b.digest, a.digest, `${spec}: ${name}`);
      assert.equal(b.ops, a.ops, `${spec}: ${name}`);
      assert.deepEqual(b.kernel.stats(), a.kernel.stats(), `${spec}: ${name}`);
      assert.deepEqual(
        b.port.cpus.map((cpu) => [cpu.cr3Hi, cpu.cr3Lo]),
        a.port.cpus.map((cpu) => [cpu.cr3Hi, cpu.cr3Lo]),
      );
      const other = run({ ...c, seed: 12 }, createPager(spec));
      assert.notEqual(other.digest, a.digest, `${spec}: ${name}: the seed matters`);
    }
  }
});

// ---- 5. record and replay ----

for (const [live, replay] of defaultSpecs().flatMap(
  (spec): Array<[string, string]> => [
    ['native', spec],
    [spec, 'native'],
  ],
)) {
  test(`a run recorded under ${live} replays under ${replay} to the same output bytes`, () => {
    const c: Case = { workload: 'forkexec', size: 0.002, layout: 'scatter', seed: 9, vcpus: 2 };
    const mode: KernelMode = '4-level';
    const path = join(dir, `rec-${live}-${replay}.umt`);
    const writer = new TraceWriter(
      traceFileOutput(path),
      { vcpus: 2, memory: 256 * MiB, maxphyaddr: layoutFor(mode).maxphyaddr },
      {
        workload: c.workload,
        seed: c.seed,
      },
    );
    const liveOut: Uint8Array[] = [];
    const pager = (spec: string): Pager => createPager(spec);
    const r = run(c, pager(live), { out: (b) => liveOut.push(Buffer.from(b)), recorder: writer });
    writer.close({ digest: r.digest, ops: r.ops });
    assert.equal(writer.ops, r.ops, 'every operation recorded');
    const replayOut: Uint8Array[] = [];
    const rr = replayTrace(openTrace(path), {
      pager: pager(replay),
      layout: 'scatter',
      seed: 9,
      out: (b) => replayOut.push(Buffer.from(b)),
    });
    assert.equal(rr.ops, r.ops);
    assert.deepEqual(rr.meta, { workload: c.workload, seed: c.seed });
    assert.equal(rr.trailer.digest, r.digest);
    const a = Buffer.concat(liveOut);
    const bytes = Buffer.concat(replayOut);
    assert.ok(a.length > 0);
    assert.ok(bytes.equals(a), 'identical output');
    assert.match(a.subarray(a.lastIndexOf(10, a.length - 2) + 1).toString('latin1'), /^\{"final":/);
  });
}
