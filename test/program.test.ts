/**
 * Real programs as guests (docs/programs.md): the kernel mechanisms captures
 * need (fault-around, madvise(DONTNEED), mremap, lazy TLB), the program-trace
 * format (round trip, malformed files), the parser of valgrind's logs on
 * recorded snippets, and the bundled corpus replayed under every kind of
 * pager with identical digests. Nothing here needs valgrind.
 */
import './support/node.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { parseLayouts, writeCapture } from '../src/capture/lackey.js';
import {
  ACCESS_READ,
  ACCESS_WRITE,
  Kernel,
  PROT_R,
  PROT_W,
  PROT_X,
  type TaskBody,
} from '../src/guest/kernel/kernel.js';
import { layoutFor } from '../src/guest/kernel/layout.js';
import { runWorkload } from '../src/guest/kernel/run.js';
import { GuestPort } from '../src/guest/port.js';
import { type ProgramFile, ProgramWriter, readProgram } from '../src/guest/program/file.js';
import { EV, ProgramError, SEG_BRK, SEG_MAP, SEG_STACK } from '../src/guest/program/format.js';
import { programWorkload, replayCounters } from '../src/guest/program/replay.js';
import { crc32, type TraceInput, type TraceOutput } from '../src/guest/trace/format.js';
import { openProgram } from '../src/io/program.js';
import { traceFileOutput } from '../src/io/trace.js';
import { NativePager } from '../src/pagers/native/native.js';
import { createPager, sampleVariants } from '../src/pagers/registry.js';

const MiB = 2 ** 20;
const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'dist/src/cli/main.js');
const corpus = join(root, 'fixtures/programs');
/** A capture in format version 1 (before uwrite events), kept to hold the reader to it. */
const corpusV1 = join(root, 'fixtures/programs-v1');
const dir = mkdtempSync(join(tmpdir(), 'umbra-program-'));
const umbra = (args: string[], env?: NodeJS.ProcessEnv) =>
  spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', maxBuffer: 64 * MiB, env: env ?? process.env });

// ---- the kernel mechanisms ----

function boot(
  vcpus = 2,
  opts: { lazyTlb?: boolean; faultAround?: number; readahead?: number; pageCache?: 'cold' | 'warm' } = {},
): { k: Kernel; port: GuestPort } {
  const port = new GuestPort(
    { vcpus, memory: 128 * MiB, maxphyaddr: layoutFor('4-level').maxphyaddr },
    { pager: new NativePager(), layout: 'identity', seed: 3, out: () => {} },
  );
  port.autoLine = true;
  const k = new Kernel(port, { mode: '4-level', pcid: true, thp: false, verify: true, ...opts });
  k.boot();
  return { k, port };
}

const TRUE = { file: 31, textPages: 8, dataPages: 1, bssPages: 1, name: 'true' };

function finish(k: Kernel, port: GuestPort): void {
  k.run();
  port.finish();
  assert.equal(k.tasks.size, 0);
  assert.equal(k.leakedFrames(), 0, 'no frame leaked');
  assert.equal(k.counters.kills, 0, 'nothing killed');
}

test('fault-around: a read fault on a file mapping maps the cached pages of its 16-page window', () => {
  for (const n of [16, 1]) {
    const { k, port } = boot(1, { faultAround: n });
    let faults = 0;
    k.spawn('p', function* (t): TaskBody {
      k.exec(t, TRUE);
      // 40 pages of file 77 from page 0 at a 2 MiB boundary: the window of page 20 is pages 16..31.
      const a = 0x7e0000000000;
      k.mmapFixed(t, a, 40 * 4096, PROT_R, 77, 0, 'file');
      // Another mapping of the file brings pages 0..39 into the page cache.
      const b = k.mmap(t, 40 * 4096, PROT_R, 77, 0, 'other');
      for (let p = 0; p < 40; p++) k.access(t, ACCESS_READ, b + p * 4096);
      const before = k.counters.pageFaults;
      const around = k.counters.faultAroundPages;
      k.access(t, ACCESS_READ, a + 20 * 4096);
      for (let p = 16; p < 32; p++) k.access(t, ACCESS_READ, a + p * 4096);
      faults = k.counters.pageFaults - before;
      if (n === 16) assert.equal(k.counters.faultAroundPages - around, 15);
      yield;
    });
    finish(k, port);
    if (n === 16) assert.equal(faults, 1, 'one fault maps the whole window');
    else {
      assert.equal(faults, 16, 'without fault-around every page faults');
      assert.equal(k.counters.faultAroundPages, 0);
    }
  }
});

test('fault-around stops at the area and maps only what the page cache holds', () => {
  const { k, port } = boot(1);
  k.spawn('p', function* (t): TaskBody {
    k.exec(t, TRUE);
    const warm = k.mmap(t, 8 * 4096, PROT_R, 78, 0, 'warm');
    for (let p = 4; p < 8; p++) k.access(t, ACCESS_READ, warm + p * 4096);
    const before = k.counters.faultAroundPages;
    // Pages 5..7 of the file: 5 faults, 6 and 7 are cached and in the area; 8 is outside it.
    const a = k.mmap(t, 3 * 4096, PROT_R | PROT_X, 78, 5, 'small');
    k.access(t, ACCESS_READ, a);
    assert.equal(k.counters.faultAroundPages - before, 2);
    // A cold file: nothing to map around.
    const cold = k.mmap(t, 8 * 4096, PROT_R, 79, 0, 'cold');
    k.access(t, ACCESS_READ, cold);
    assert.equal(k.counters.faultAroundPages - before, 2);
    yield;
  });
  finish(k, port);
});

test('a warm page cache: the first read fault on a file maps its whole window, clamped to the area; writes copy', () => {
  for (const pageCache of ['warm', 'cold'] as const) {
    const { k, port } = boot(1, { pageCache });
    k.spawn('p', function* (t): TaskBody {
      k.exec(t, TRUE);
      const a = 0x7e0000000000;
      // 20 pages of a file never read in this run: page 3's window is pages 0..15.
      k.mmapFixed(t, a, 20 * 4096, PROT_R | PROT_W, 83, 0, 'file');
      const before = k.counters.pageFaults;
      const around = k.counters.faultAroundPages;
      k.access(t, ACCESS_READ, a + 3 * 4096);
      assert.equal(k.counters.faultAroundPages - around, pageCache === 'warm' ? 15 : 0);
      for (let p = 0; p < 16; p++) k.access(t, ACCESS_READ, a + p * 4096);
      assert.equal(k.counters.pageFaults - before, pageCache === 'warm' ? 1 : 2, 'cold: read-around, then one more');
      // A page mapped by fault-around is read-only in a private writable area: the write copies it.
      const cow = k.counters.faultCow;
      const cowFile = k.counters.faultCowFile;
      k.access(t, ACCESS_WRITE, a + 5 * 4096);
      assert.equal(k.counters.faultCow - cow, 1);
      assert.equal(k.counters.faultCowFile - cowFile, 0, 'the page was present');
      // Page 16's window (16..31) is clamped to the area's 20 pages.
      const more = k.counters.faultAroundPages;
      k.access(t, ACCESS_READ, a + 17 * 4096);
      assert.equal(k.counters.faultAroundPages - more, 3);
      yield;
    });
    finish(k, port);
  }
});

test('read-around: a page-cache miss reads 32 pages around it; the next fault nearby maps them by fault-around', () => {
  for (const ra of [32, 1]) {
    const { k, port } = boot(1, { readahead: ra });
    k.spawn('p', function* (t): TaskBody {
      k.exec(t, TRUE);
      const a = 0x7e0000000000;
      k.mmapFixed(t, a, 64 * 4096, PROT_R, 81, 0, 'file');
      const before = k.counters.pageFaults;
      k.access(t, ACCESS_READ, a + 20 * 4096);
      // Pages 4..35 are read; page 24's window (16..31) is then mapped in one fault.
      assert.equal(k.counters.readaheadPages, ra === 32 ? 31 : 0);
      for (let p = 16; p < 32; p++) k.access(t, ACCESS_READ, a + p * 4096);
      assert.equal(k.counters.pageFaults - before, ra === 32 ? 2 : 16);
      yield;
    });
    finish(k, port);
  }
});

test('madvise(DONTNEED): anonymous pages refault zero-filled, private file pages from the file', () => {
  const { k, port } = boot(1);
  let checked = false;
  k.spawn('p', function* (t): TaskBody {
    k.exec(t, TRUE);
    const a = k.mmap(t, 4 * 4096, PROT_R | PROT_W);
    for (let p = 0; p < 4; p++) k.access(t, ACCESS_WRITE, a + p * 4096, 10 + p);
    const f = k.mmap(t, 2 * 4096, PROT_R | PROT_W, 79, 0, 'file');
    k.access(t, ACCESS_WRITE, f, 99);
    const faults = k.counters.pageFaults;
    k.madviseDontneed(t, a, 2 * 4096);
    k.madviseDontneed(t, f, 4096);
    // --verify checks each read: zero for the dropped anonymous pages, the file's word for the file page.
    k.access(t, ACCESS_READ, a);
    k.access(t, ACCESS_READ, a + 4096);
    k.access(t, ACCESS_READ, a + 2 * 4096);
    k.access(t, ACCESS_READ, f);
    assert.equal(port.cpu.valueHi, 79 & 0xffff, 'the file word, not the write');
    assert.equal(k.counters.pageFaults - faults, 3, 'the dropped pages refault, the kept one does not');
    checked = true;
    yield;
  });
  finish(k, port);
  assert.ok(checked);
  assert.equal(k.counters.madviseDontneed, 2);
});

test('mremap: a move carries the pages (no copy), a shrink unmaps the tail, a grow in place extends', () => {
  const { k, port } = boot(1);
  let checked = false;
  k.spawn('p', function* (t): TaskBody {
    k.exec(t, TRUE);
    const a = k.mmap(t, 4 * 4096, PROT_R | PROT_W);
    for (let p = 0; p < 4; p++) k.access(t, ACCESS_WRITE, a + p * 4096, 50 + p);
    const to = 0x7e0000000000;
    const faults = k.counters.pageFaults;
    k.mremap(t, a, 4 * 4096, 8 * 4096, to);
    for (let p = 0; p < 4; p++) {
      k.access(t, ACCESS_READ, to + p * 4096);
      assert.deepEqual([port.cpu.valueHi, port.cpu.valueLo], [t.pid, 50 + p]);
    }
    assert.equal(k.counters.pageFaults, faults, 'moved pages are present at the new place');
    assert.equal(k.access(t, ACCESS_WRITE, to + 6 * 4096, 1), true, 'the grown part is mapped');
    assert.equal(k.counters.mremapMoves, 1);
    k.mremap(t, to, 8 * 4096, 2 * 4096, to);
    k.mremap(t, to, 2 * 4096, 3 * 4096, to);
    k.access(t, ACCESS_READ, to + 4096);
    assert.equal(port.cpu.valueLo, 51);
    checked = true;
    yield;
  });
  k.run();
  port.finish();
  assert.ok(checked);
  assert.equal(k.leakedFrames(), 0);
});

test('a read of the old place after mremap moved it is a kill (SIGSEGV)', () => {
  const { k, port } = boot(1);
  let alive = true;
  k.spawn('p', function* (t): TaskBody {
    k.exec(t, TRUE);
    const a = k.mmap(t, 2 * 4096, PROT_R | PROT_W);
    k.access(t, ACCESS_WRITE, a, 1);
    k.mremap(t, a, 2 * 4096, 2 * 4096, 0x7e0000000000);
    alive = k.access(t, ACCESS_READ, a);
    yield;
  });
  k.run();
  port.finish();
  assert.equal(alive, false);
  assert.equal(k.leakedFrames(), 0);
});

test('fork copies a read-only file mapping that holds private copies (RELRO), not the file', () => {
  const { k, port } = boot(1);
  let seen: number[] = [];
  k.spawn('p', function* (t): TaskBody {
    k.exec(t, TRUE);
    // The loader relocates a private file mapping, then makes it read-only.
    const a = k.mmap(t, 2 * 4096, PROT_R | PROT_W, 80, 0, 'data');
    k.access(t, ACCESS_WRITE, a, 42);
    k.mprotect(t, a, 2 * 4096, PROT_R);
    const c = k.fork(t, 'c', function* (ct): TaskBody {
      k.access(ct, ACCESS_READ, a);
      seen = [port.cpu.valueHi, port.cpu.valueLo];
      k.access(ct, ACCESS_READ, a + 4096);
      yield;
    });
    yield { wait: c };
    seen.push(t.pid);
  });
  finish(k, port);
  assert.deepEqual(seen, [seen[2], 42, seen[2]], "the child reads the parent's relocated word");
});

/**
 * Two threads of one process on two vCPUs: B blocks (its vCPU idles with the
 * address space loaded); A unmaps a page. With lazy TLB, B's vCPU gets no IPI
 * and flushes when B runs again; without, it is interrupted.
 */
function lazyCase(lazyTlb: boolean, freeTables: boolean): Kernel {
  const { k, port } = boot(2, { lazyTlb });
  let phase = 0;
  k.spawn('a', function* (a): TaskBody {
    k.exec(a, TRUE);
    const m = k.mmap(a, 4 * 4096, PROT_R | PROT_W);
    // Far from everything else, so that unmapping it empties its tables.
    const far = 0x500000000000;
    k.mmapFixed(a, far, 4096, PROT_R | PROT_W);
    k.access(a, ACCESS_WRITE, m, 1);
    k.access(a, ACCESS_WRITE, far, 1);
    const b = k.clone(a, 'b', function* (bt): TaskBody {
      k.access(bt, ACCESS_READ, m);
      phase = 1;
      yield { sleep: true };
      k.access(bt, ACCESS_READ, m + 4096);
    });
    while (phase < 1) yield;
    yield;
    if (freeTables) k.munmap(a, far, 4096);
    else k.munmap(a, m + 2 * 4096, 4096);
    k.wake(b);
    yield { wait: b };
  });
  finish(k, port);
  return k;
}

test('lazy TLB: an idle vCPU gets no shootdown IPI and catches up when it runs the address space again', () => {
  const lazy = lazyCase(true, false);
  assert.equal(lazy.counters.lazySkips, 1);
  assert.equal(lazy.counters.lazyCatchups, 1);
  const eager = lazyCase(false, false);
  assert.equal(eager.counters.lazySkips, 0);
  assert.equal(eager.counters.shootdownIpis, lazy.counters.shootdownIpis + 1);
});

test('lazy TLB: when page tables are freed the idle vCPU is interrupted and leaves for the kernel tables', () => {
  const k = lazyCase(true, true);
  assert.equal(k.counters.lazySkips, 0);
  assert.equal(k.counters.lazyLeaves, 1);
  assert.ok(k.counters.shootdownIpis >= 1);
});

// ---- the format ----

function memOutput(): { out: TraceOutput; bytes: () => Uint8Array } {
  const chunks: Uint8Array[] = [];
  return {
    out: {
      path: 'mem.ump',
      open: () => ({ write: (b) => chunks.push(b.slice()), close: () => {} }),
      deflate: (raw, level) => deflateRawSync(raw, { level }),
    },
    bytes: () => Buffer.concat(chunks),
  };
}

function memInput(bytes: Uint8Array, path = 'mem.ump'): TraceInput {
  return {
    path,
    open: () => ({
      size: bytes.length,
      read: (dst, offset) => {
        const n = Math.max(0, Math.min(dst.length, bytes.length - offset));
        dst.set(bytes.subarray(offset, offset + n));
        return n;
      },
      close: () => {},
    }),
    inflate: (z, limit) => {
      try {
        return inflateRawSync(z, { maxOutputLength: limit });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return null;
        throw e;
      }
    },
  };
}

const STACK_TOP = 0x7ffffffde000;
/** exec operands: the program's text (file 0) at 0x400000, a heap at 0x600000, a stack. */
const IMAGE = [
  0,
  3,
  ...[0x400000, 0x410000, 5, 0, 0, SEG_MAP],
  ...[0x600000, 0x601000, 3, -1, 0, SEG_BRK],
  ...[STACK_TOP - 0x20000, STACK_TOP, 3, -1, 0, SEG_STACK],
];

/** A synthetic program tree: a parent that maps, forks a child, starts a thread, waits. */
function synthetic(blockEvents = 0): Uint8Array {
  const { out, bytes } = memOutput();
  const w = new ProgramWriter(out, { command: 'synthetic' });
  w.beginStream({ pid: 10, parent: -1, tid: 1, command: 'parent' });
  w.event(EV.exec, IMAGE);
  for (let i = 0; i < 3 + blockEvents; i++) w.access(2, 0x400 + (i % 16));
  w.event(EV.mmap, [0, 8 * 4096, 3, 0x22, -1, 0, 0x7f0000000000]);
  for (let i = 0; i < 8; i++) w.access(1, 0x7f0000000 + i);
  w.access(1, 0x7f0000000 + 7);
  w.event(EV.brk, [0, 0x600000]);
  w.event(EV.brk, [0x604000, 0x604000]);
  w.access(1, 0x600);
  w.event(EV.fork, [1, 1]);
  w.event(EV.clone, [2]);
  w.event(EV.thread, [2]);
  w.access(0, 0x7f0000000);
  w.event(EV.munmap, [0x7f0000004000, 4096]);
  w.event(EV.threadExit, [2]);
  w.event(EV.thread, [1]);
  w.event(EV.wait, [1]);
  w.event(EV.madvise, [0x7f0000000000, 4096, 4]);
  w.event(EV.mremap, [0x7f0000000000, 4096, 2 * 4096, 1, 0x7e0000000000]);
  w.access(0, 0x7e0000000);
  w.event(EV.exit, [0]);
  w.endStream();
  w.beginStream({ pid: 11, parent: 0, tid: 1, command: 'child' });
  // The child writes a page the parent wrote before the fork (copy-on-write).
  w.access(1, 0x7f0000001);
  w.event(EV.exec, [1, 3, ...IMAGE.slice(2)]);
  w.access(2, 0x401);
  w.event(EV.exit, [0]);
  w.endStream();
  w.close(['/bin/parent', '/bin/child']);
  return bytes();
}

test('format: what the writer wrote reads back, runs collapsed exactly', () => {
  const f = readProgram(memInput(synthetic()));
  assert.equal(f.streams.length, 2);
  assert.deepEqual(f.files, ['/bin/parent', '/bin/child']);
  assert.equal(f.meta.command, 'synthetic');
  const blocks = [...f.blocks(0)];
  const codes = blocks.flatMap((b) => [...b.code]);
  const accesses = blocks.reduce((n, b) => n + b.repeat.reduce((x, y) => x + y, 0), 0);
  assert.equal(accesses, f.streams[0]?.accesses);
  assert.equal(accesses, 3 + 9 + 1 + 1 + 1);
  // The repeated write of page 0x7f0000007 is one event standing for two.
  assert.equal(codes.filter((c) => c === EV.access).length, 3 + 8 + 1 + 1 + 1);
  const b0 = blocks[0] as (typeof blocks)[number];
  const exec = b0.args[0] as number[];
  assert.deepEqual(exec, IMAGE);
  assert.equal(f.streams[1]?.parent, 0);
});

test('format: a stream longer than a block spans several, read back in order', () => {
  const f = readProgram(memInput(synthetic(40000)));
  const blocks = [...f.blocks(0)];
  assert.ok(blocks.length >= 3);
  let n = 0;
  for (const b of blocks) n += b.count;
  assert.equal(n, f.streams[0]?.events);
});

test('format: malformed files fail with one located line', () => {
  const good = synthetic();
  const cases: Array<[string, (b: Uint8Array) => Uint8Array, RegExp]> = [
    ['empty', () => new Uint8Array(0), /^x\.ump: offset 0: 0 bytes/],
    ['bad magic', (b) => b.map((v, i) => (i === 1 ? 0 : v)), /offset 0: not a program trace/],
    ['future version', (b) => b.map((v, i) => (i === 8 ? 9 : v)), /offset 8: unsupported version 9/],
    ['truncated', (b) => b.subarray(0, b.length - 3), /no end marker: the file is truncated/],
    ['header flip', (b) => b.map((v, i) => (i === 20 ? v ^ 1 : v)), /header checksum mismatch/],
    ['trailer flip', (b) => b.map((v, i) => (i === b.length - 30 ? v ^ 1 : v)), /trailer/],
  ];
  for (const [name, mutate, re] of cases) {
    assert.throws(
      () => {
        const f = readProgram(memInput(mutate(good), 'x.ump'));
        for (let s = 0; s < f.streams.length; s++) for (const _ of f.blocks(s));
      },
      (e: unknown) => e instanceof ProgramError && re.test(e.message) && !e.message.includes('\n'),
      name,
    );
  }
  // A flipped byte inside the first block: the block's CRC catches it, named by stream and block.
  const f = readProgram(memInput(good));
  const at = (f.streams[0]?.offset as number) + 20;
  const bad = good.map((v, i) => (i === at ? v ^ 0x40 : v));
  assert.throws(() => {
    const g = readProgram(memInput(bad, 'x.ump'));
    for (const _ of g.blocks(0));
  }, /x\.ump: stream 0 block 0: checksum mismatch/);
});

// ---- replay ----

function replay(f: ProgramFile, spec: string, vcpus = 2): { digest: string; k: Kernel; ops: number } {
  const w = programWorkload(f, 'test');
  const r = runWorkload({
    workload: w,
    params: { size: 1, seed: 1, vcpus, memory: w.defaults.memory, thp: false },
    mode: '4-level',
    pcid: true,
    verify: true,
    pager: createPager(spec),
    layout: 'identity',
  });
  return { digest: r.digest, k: r.kernel, ops: r.ops };
}

const PAGERS = ['native', 'shadow', 'shadow:xen30', 'nested', 'agile'];

test('replay: a synthetic program tree runs to the end with identical digests under every pager kind', () => {
  const f = readProgram(memInput(synthetic()));
  const base = replay(f, 'native');
  const c = replayCounters(base.k);
  assert.equal(c?.processes, 2);
  assert.equal(c?.threads, 1);
  assert.equal(c?.killed, 0);
  assert.equal(base.k.counters.kills, 0);
  assert.equal(base.k.counters.execs, 2);
  assert.ok(base.k.counters.faultCow >= 1, 'the child copied a page the parent wrote');
  assert.equal(base.k.counters.mremapMoves, 1);
  assert.equal(base.k.counters.madviseDontneed, 1);
  assert.equal(base.k.leakedFrames(), 0);
  for (const spec of PAGERS.slice(1)) assert.equal(replay(f, spec).digest, base.digest, spec);
});

const BUF = 0x7f0000000000;

/** One process: an anonymous buffer of 4 pages, then `body` (uwrites and accesses of it). */
function bufferProgram(body: (w: ProgramWriter) => void): Uint8Array {
  const { out, bytes } = memOutput();
  const w = new ProgramWriter(out, { command: 'reader' });
  w.beginStream({ pid: 20, parent: -1, tid: 1, command: 'reader' });
  w.event(EV.exec, IMAGE);
  w.access(2, 0x400);
  w.event(EV.mmap, [0, 4 * 4096, 3, 0x22, -1, 0, BUF]);
  body(w);
  w.event(EV.exit, [0]);
  w.endStream();
  w.close(['/bin/reader']);
  return bytes();
}

const PAGE0 = BUF / 4096;

test('uwrite: a read() into an untouched buffer is one kernel-mode write fault; the program then reads and writes it without faulting', () => {
  const readThenWrite = (w: ProgramWriter): void => {
    w.access(0, PAGE0);
    w.access(1, PAGE0);
  };
  const f = readProgram(
    memInput(
      bufferProgram((w) => {
        w.event(EV.uwrite, [BUF + 100, 200]);
        readThenWrite(w);
      }),
    ),
  );
  assert.equal(f.version, 2);
  const without = readProgram(memInput(bufferProgram(readThenWrite)));
  const a = replay(f, 'native').k.counters;
  const b = replay(without, 'native').k.counters;
  assert.equal(a.faultKernel, 1);
  assert.equal(a.faultKernelWrite, 1);
  assert.equal(a.faultKernelCow, 0, 'the page was not present: demand zero, no copy');
  assert.equal(a.copyToUserPages, 1);
  // Without the kernel's write the program's read maps the zero page and its write copies it.
  assert.equal(b.faultZeroPage - a.faultZeroPage, 1);
  assert.equal(b.faultCow - a.faultCow, 1);
  assert.equal(a.faultDemandZero - b.faultDemandZero, 1);
  assert.equal(a.pageFaults - a.faultKernel, b.pageFaults - 2, 'no user fault on the buffer');
  assert.equal(a.pageFaults, b.pageFaults - 1);
  const base = replay(f, 'native').digest;
  for (const spec of PAGERS.slice(1)) assert.equal(replay(f, spec).digest, base, spec);
});

test('uwrite: a range over three pages faults each in; a page mapped to the zero page is copied', () => {
  const f = readProgram(
    memInput(
      bufferProgram((w) => {
        // The program reads page 1 first: it maps the zero page there.
        w.access(0, PAGE0 + 1);
        w.event(EV.uwrite, [BUF + 4000, 2 * 4096]);
        w.access(1, PAGE0 + 2);
      }),
    ),
  );
  const c = replay(f, 'native').k.counters;
  assert.equal(c.copyToUserPages, 3);
  assert.equal(c.faultKernel, 3);
  assert.equal(c.faultKernelCow, 1, 'the zero page under page 1 is replaced by a copy');
  assert.equal(c.kills, 0);
});

test('uwrite: a range the process has no writable mapping for (EFAULT) is a bad capture, one located line', () => {
  for (const at of [0x500000000, 0x400000]) {
    const f = readProgram(
      memInput(
        bufferProgram((w) => {
          w.event(EV.uwrite, [at, 64]);
        }),
        'bad.ump',
      ),
    );
    assert.throws(
      () => replay(f, 'native'),
      (e: unknown) =>
        e instanceof ProgramError &&
        /^bad\.ump: stream 0 event 4: the kernel wrote 64 bytes at 0x[0-9a-f]+ .*EFAULT/.test(e.message) &&
        !e.message.includes('\n'),
      at.toString(16),
    );
  }
});

test('uwrite: lengths of 0 or beyond MAX_RW_COUNT, and ranges past the user space, are refused when read', () => {
  const cases: Array<[number, number, RegExp]> = [
    [BUF, 0, /^x\.ump: stream 0 block 0: event 4: uwrite of 0 bytes/],
    [BUF, 2 ** 31, /^x\.ump: stream 0 block 0: event 4: uwrite of 2147483648 bytes/],
    // The writer's trailer names the top of the range, so the trailer check refuses it first.
    [2 ** 57 - 4096, 8192, /^x\.ump: trailer: stream 0: "maxPage" outside the user address space/],
  ];
  for (const [at, len, re] of cases) {
    const bytes = bufferProgram((w) => w.event(EV.uwrite, [at, len]));
    assert.throws(
      () => {
        for (const _ of readProgram(memInput(bytes, 'x.ump')).blocks(0));
      },
      (e: unknown) => e instanceof ProgramError && re.test(e.message) && !e.message.includes('\n'),
      String(len),
    );
  }
});

test('format version 1: a bundled version-1 capture still reads and replays; a uwrite in a version-1 file is refused', () => {
  const f = openProgram(join(corpusV1, 'true.ump'));
  assert.equal(f.version, 1);
  const base = replay(f, 'native');
  assert.equal(base.k.counters.kills, 0);
  assert.equal(base.k.counters.faultKernel, 0);
  assert.equal(replay(f, 'shadow').digest, base.digest);
  // The same bytes labelled version 1 (header checksum redone): event code 15 is unknown there.
  const v2 = bufferProgram((w) => w.event(EV.uwrite, [BUF, 64]));
  const v1 = v2.slice();
  v1[8] = 1;
  const m = v1[12] as number | 0;
  const mlen = m | ((v1[13] as number) << 8) | ((v1[14] as number) << 16) | ((v1[15] as number) << 24);
  const crc = crc32(v1, 0, 16 + mlen);
  for (let i = 0; i < 4; i++) v1[16 + mlen + i] = (crc >>> (8 * i)) & 255;
  assert.throws(() => {
    for (const _ of readProgram(memInput(v1, 'x.ump')).blocks(0));
  }, /x\.ump: stream 0 block 0: event 4: unknown event code 15 in a version 1 file/);
});

const bundled = readdirSync(corpus)
  .filter((n) => n.endsWith('.ump'))
  .sort();

test('the bundled corpus is there', () => {
  for (const n of ['true', 'ls', 'cat', 'pipeline', 'threads', 'gcc', 'git', 'sort'])
    assert.ok(bundled.includes(`${n}.ump`), n);
});

for (const name of bundled) {
  test(`bundled capture ${name}: no process killed, identical digests under ${PAGERS.join(', ')}`, () => {
    const f = openProgram(join(corpus, name));
    const base = replay(f, 'native');
    assert.equal(base.k.counters.kills, 0, 'no access outside what the program mapped');
    assert.equal(replayCounters(base.k)?.processes, f.streams.length);
    assert.equal(base.k.leakedFrames(), 0);
    for (const spec of PAGERS.slice(1)) assert.equal(replay(f, spec).digest, base.digest, spec);
  });
}

test("bundled captures true and threads: identical digests under every pager's sample of variants", () => {
  for (const name of ['true.ump', 'threads.ump']) {
    const f = openProgram(join(corpus, name));
    const base = replay(f, 'native').digest;
    for (const spec of sampleVariants(2)) assert.equal(replay(f, spec).digest, base, `${name} under ${spec}`);
  }
});

// ---- the parser of valgrind's logs ----

const LAYOUT = [
  '--500:1: aspacem <<< SHOW_SEGMENTS: Memory layout at client startup (7 segments)',
  '--500:1: aspacem (0,4,9) /usr/libexec/valgrind/lackey-amd64-linux',
  '--500:1: aspacem (1,49,7) /usr/bin/true',
  '--500:1: aspacem   0: RSVN 0000000000-0000107fff 1081344 ----- SmFixed',
  '--500:1: aspacem   1: file 0000108000-0000109fff    8192 r-x-- d=0xfe00 i=260958  o=0       (1,49)',
  '--500:1: aspacem   2: anon 0004035000-0004035fff    4096 rwx--',
  '--500:1: aspacem   3: RSVN 0004036000-0004834fff 8384512 ----- SmLower',
  '--500:1: aspacem   4: FILE 0058000000-0058000fff    4096 r---- d=0xfe00 i=341618  o=0       (0,4)',
  '--500:1: aspacem   5: RSVN 1ffe801000-1ffeffefff 8380416 ----- SmUpper',
  '--500:1: aspacem   6: anon 1ffefff000-1fff000fff    8192 rw---',
  '--500:1: aspacem >>>',
];

const LOG = [
  '==500== Command: true',
  '--500--   SCHED[1]:  acquired lock (thread_wrapper(starting new thread))',
  'I  00108000,4',
  'I  00108004,3',
  ' S 1fff000ff8,8',
  ' M 1fff000ffc,8',
  'SYSCALL[500,1](12) sys_brk ( 0x0 ) --> [pre-success] Success(0x4035000) ',
  'SYSCALL[500,1](257) sys_openat ( 4294967196, 0x4034bb0(/usr/bin/true), 524288 ) --> [async] ... ',
  'SYSCALL[500,1](257) ... [async] --> Success(0x3) ',
  'SYSCALL[500,1](9) sys_mmap ( 0x0, 8192, 1, 2, 3, 0 ) --> [pre-success] Success(0x4835000) ',
  'SYSCALL[500,1](9) sys_mmap ( 0x0, 4096, 3, 34, 4294967295, 0 ) --> [pre-success] Success(0x4837000) ',
  'SYSCALL[500,1](9) sys_mmap ( 0x0, 4096, 3, 34, 4294967295, 0 ) --> [pre-fail] Failure(0xc) ',
  'SYSCALL[500,1](56) sys_clone ( 3d0f00, 0x5229f70, 0x522a990, 0x522a990, 0x522a6c0 ) --> [pre-success] Success(0x3abe) --500--   SCHED[1]: releasing lock (VG_(vg_yield)) -> VgTs_Yielding',
  '--500--   SCHED[2]:  acquired lock (thread_wrapper(starting new thread))',
  ' L 04835010,8',
  'SYSCALL[500,2](28) sys_madvise ( 0x4837000, 4096, 4 ) --> [async] ... ',
  '--500--   SCHED[2]: releasing lock (VG_(client_syscall)[async]) -> VgTs_WaitSys',
  '--500--   SCHED[1]:  acquired lock (VG_(scheduler):timeslice)',
  ' L 04837000,8',
  'SYSCALL[500,2](28) ... [async] --> Success(0x0) ',
  'SYSCALL[500,2](60) exit( 0 ) --> [pre-success] Success(0x0) ',
  '--500--   SCHED[1]:  acquired lock (VG_(scheduler):timeslice)',
  'SYSCALL[500,1](231) exit_group( 0 ) --> [pre-success] Success(0x0) ',
];

test('parser: valgrind log lines become the events of a stream, in order, with threads', () => {
  const layouts = parseLayouts(LAYOUT);
  const l = layouts.get(500)?.[0];
  assert.ok(l !== undefined);
  assert.deepEqual(
    l.map((s) => [s.start.toString(16), s.kind]),
    [
      ['108000', SEG_MAP],
      ['4035000', SEG_BRK],
      ['1ffefff000', SEG_STACK],
    ],
  );
  const { out, bytes } = memOutput();
  const w = new ProgramWriter(out, {});
  const files: string[] = [];
  const logs = new Map([
    [500, { pid: 500, segments: [{ name: 'log', forkPart: false, lines: () => LOG }], layouts: [l] }],
  ]);
  const counts = writeCapture(w, 500, logs, (p) => p, files);
  w.close(files);
  assert.deepEqual(files, ['/usr/bin/true']);
  assert.equal(counts.threads, 1);
  assert.deepEqual(counts.syscalls, { brk: 1, mmap: 2, clone: 1, madvise: 1, exit: 1 });
  const f = readProgram(memInput(bytes()));
  const events: string[] = [];
  for (const b of f.blocks(0)) {
    for (let e = 0; e < b.count; e++) {
      const c = b.code[e] as number;
      if (c === EV.access)
        events.push(`${['r', 'w', 'x'][b.kind[e] as number]}${(b.page[e] as number).toString(16)}*${b.repeat[e]}`);
      else {
        // A thread switch away from a thread blocked in a system call is marked "b".
        const flag = c === EV.thread && b.kind[e] === 1 ? 'b' : '';
        events.push(`${c}${flag}:${(b.args[e] as number[]).slice(0, c === EV.exec ? 2 : 7).join(',')}`);
      }
    }
  }
  assert.deepEqual(events, [
    `${EV.exec}:0,3`,
    'x108*2',
    // The store, then the modify (a write to paging) of 8 bytes that straddle two stack pages.
    'w1fff000*2',
    'w1fff001*1',
    `${EV.brk}:0,${0x4035000}`,
    // A file mapping names the file the fd was opened on; the failed mmap is left out.
    `${EV.mmap}:0,8192,1,2,0,0,${0x4835000}`,
    `${EV.mmap}:0,4096,3,34,-1,0,${0x4837000}`,
    `${EV.clone}:2`,
    // Thread 1 was preempted (VgTs_Yielding): it is still running.
    `${EV.thread}:2`,
    'r4835*1',
    // Thread 2 blocked in its madvise (VgTs_WaitSys).
    `${EV.thread}b:1`,
    'r4837*1',
    // The blocking madvise completes on thread 2's behalf.
    `${EV.thread}:2`,
    `${EV.madvise}:${0x4837000},4096,4`,
    `${EV.threadExit}:2`,
    `${EV.thread}b:1`,
    `${EV.exit}:0`,
  ]);
});

test('parser: read, pread64 and getdents64 that succeed become uwrites of their result, async results included', () => {
  const l = parseLayouts(LAYOUT).get(500)?.[0];
  assert.ok(l !== undefined);
  const lines = [
    '==500== Command: cat',
    '--500--   SCHED[1]:  acquired lock (thread_wrapper(starting new thread))',
    'SYSCALL[500,1](0) sys_read ( 3, 0x1ffeffee28, 832 ) --> [async] ... ',
    'SYSCALL[500,1](0) ... [async] --> Success(0x340) ',
    'SYSCALL[500,1](17) sys_pread64 ( 3, 0x1ffefff5a0, 784, 64 ) --> [async] ... ',
    'SYSCALL[500,1](17) ... [async] --> Success(0x310) ',
    'SYSCALL[500,1](217) sys_getdents64 ( 3, 0x4835000, 32768 ) --> [async] ... ',
    'SYSCALL[500,1](217) ... [async] --> Success(0x1f8) ',
    // End of file (nothing written) and a failure: no event.
    'SYSCALL[500,1](0) sys_read ( 3, 0x4835000, 4096 ) --> [async] ... ',
    'SYSCALL[500,1](0) ... [async] --> Success(0x0) ',
    'SYSCALL[500,1](0) sys_read ( 9, 0x4835000, 4096 ) --> [pre-fail] Failure(0x9) ',
    'SYSCALL[500,1](17) sys_pread64 ( 3, 0x4836000, 100, 0 ) --> [pre-success] Success(0x64) ',
    'SYSCALL[500,1](231) exit_group( 0 ) --> [pre-success] Success(0x0) ',
  ];
  const { out, bytes } = memOutput();
  const w = new ProgramWriter(out, {});
  const files: string[] = [];
  const logs = new Map([
    [500, { pid: 500, segments: [{ name: 'log', forkPart: false, lines: () => lines }], layouts: [l] }],
  ]);
  const counts = writeCapture(w, 500, logs, (p) => p, files);
  w.close(files);
  assert.deepEqual(counts.syscalls, { read: 1, pread64: 2, getdents64: 1, exit: 1 });
  const uwrites: number[][] = [];
  for (const b of readProgram(memInput(bytes())).blocks(0))
    for (let e = 0; e < b.count; e++) if (b.code[e] === EV.uwrite) uwrites.push(b.args[e] as number[]);
  assert.deepEqual(uwrites, [
    [0x1ffeffee28, 0x340],
    [0x1ffefff5a0, 0x310],
    [0x4835000, 0x1f8],
    [0x4836000, 0x64],
  ]);
});

// ---- the command line ----

test('capture without valgrind: one line saying how to install it, exit 2', () => {
  const r = umbra(['capture', '-o', join(dir, 'x.ump'), '--', 'true'], { ...process.env, PATH: '/nonexistent' });
  assert.equal(r.status, 2, r.stderr);
  assert.equal(r.stderr, 'umbra: umbra capture needs valgrind: install it with `apt-get install valgrind`\n');
});

test('run --program: a bad file is one located line, exit 2; --workload and --program exclude each other', () => {
  const bad = join(dir, 'bad.ump');
  writeFileSync(bad, readFileSync(join(corpus, 'true.ump')).subarray(0, 100));
  const r = umbra(['run', '--program', bad]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^umbra: .*bad\.ump: offset \d+: .*\n$/);
  const both = umbra(['run', '--program', bad, '--workload', 'compile']);
  assert.equal(both.status, 2);
  assert.equal(both.stderr, 'umbra: give --workload NAME or --program FILE (one of them)\n');
  // A damaged block is found when the replay reaches it: still one located line.
  const good = readFileSync(join(corpus, 'true.ump'));
  const f = openProgram(join(corpus, 'true.ump'));
  const flipped = Buffer.from(good);
  const at = (f.streams[0]?.offset as number) + 40;
  flipped[at] = (flipped[at] as number) ^ 0x10;
  const damaged = join(dir, 'damaged.ump');
  writeFileSync(damaged, flipped);
  const d = umbra(['run', '--program', damaged]);
  assert.equal(d.status, 2, d.stderr);
  assert.match(d.stderr, /^umbra: .*damaged\.ump: stream 0 block 0: checksum mismatch\n$/);
  const pae = umbra(['run', '--program', join(corpus, 'true.ump'), '--mode', 'pae']);
  assert.equal(pae.status, 2);
  assert.match(
    pae.stderr,
    /^umbra: --program .*true\.ump: uses addresses up to 0x[0-9a-f]+, above .* \(use --mode 4-level\)\n$/,
  );
});

test('run --program: a guest too small for the program is one line naming --memory, exit 2', () => {
  const big = join(dir, 'big.ump');
  const w = new ProgramWriter(traceFileOutput(big), { command: 'big' });
  w.beginStream({ pid: 1, parent: -1, tid: 1, command: 'big' });
  w.event(EV.exec, IMAGE);
  w.event(EV.mmap, [0, 96 * MiB, 3, 0x22, -1, 0, 0x7f0000000000]);
  for (let p = 0; p < (96 * MiB) / 4096; p++) w.access(1, 0x7f0000000 + p);
  w.event(EV.exit, [0]);
  w.endStream();
  w.close(['/bin/big']);
  const r = umbra(['run', '--program', big, '--memory', '64M']);
  assert.equal(r.status, 2, r.stderr);
  assert.match(
    r.stderr,
    /^umbra: program:big\.ump: the guest ran out of memory \(.*\) in 64 MiB of RAM: give it more with --memory\n$/,
  );
  // The default RAM follows the program's footprint.
  assert.equal(umbra(['run', '--program', big]).status, 0);
});

test('compare --program: the same digest under native and shadow, and program counters in --stats-json', () => {
  const out = umbra(['compare', '--program', join(corpus, 'true.ump'), '--pagers', 'native,shadow']);
  assert.equal(out.status, 0, out.stderr);
  assert.match(out.stdout, /guest-visible output identical under native, shadow/);
  const json = join(dir, 'true.json');
  const run = umbra(['run', '--program', join(corpus, 'true.ump'), '--stats-json', json]);
  assert.equal(run.status, 0, run.stderr);
  // What a calibration script reads: faults by kind, COW, page tables, mm system calls, switches, shootdowns.
  const doc = JSON.parse(readFileSync(json, 'utf8')) as { guest: Record<string, number> };
  for (const k of [
    'program.accesses',
    'page_faults.file',
    'page_faults.cow',
    'tables_allocated',
    'syscalls.mmap',
    'context_switches',
    'shootdown_ipis',
  ])
    assert.equal(typeof doc.guest[k], 'number', k);
  assert.ok((doc.guest['program.accesses'] as number) > 100000);
});

test('run --program starts with a warm page cache; --page-cache cold gives fewer pages mapped around and more faults', () => {
  const faults = (extra: string[]): { faults: number; around: number } => {
    const json = join(dir, `pc${extra.join('')}.json`);
    const r = umbra(['run', '--program', join(corpus, 'git.ump'), '--stats-json', json, ...extra]);
    assert.equal(r.status, 0, r.stderr);
    const g = (JSON.parse(readFileSync(json, 'utf8')) as { guest: Record<string, number> }).guest;
    return { faults: g.page_faults as number, around: g['page_faults.fault_around_pages'] as number };
  };
  const byDefault = faults([]);
  assert.deepEqual(faults(['--page-cache', 'warm']), byDefault);
  const cold = faults(['--page-cache', 'cold']);
  assert.ok(cold.faults > byDefault.faults * 1.2, `${cold.faults} cold against ${byDefault.faults} warm`);
  assert.ok(cold.around < byDefault.around);
  const bad = umbra(['run', '--program', join(corpus, 'true.ump'), '--page-cache', 'lukewarm']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--page-cache/);
});
