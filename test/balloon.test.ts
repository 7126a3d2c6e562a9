/**
 * The guest kernel's balloon driver (src/guest/kernel/balloon.ts): a
 * ballooning workload is transparent under every pager's sample of
 * variants; it really gives frames back (p2m none) and takes them back
 * (p2m ram), each frame alternating; the kernel never touches a frame while
 * it is ballooned out, which an observer independent of the kernel's own
 * checks watches on the operation stream and in the page tables; memory
 * pressure deflates the balloon instead of running the guest out of memory;
 * a recorded ballooning run replays to the same outcome; and a run without
 * a balloon reports what it always did.
 */
import './support/node.js';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { entryFrame } from '../src/arch/x86/entry.js';
import { BALLOON_BATCH } from '../src/guest/kernel/balloon.js';
import { ACCESS_WRITE, Kernel, PROT_R, PROT_W, type Task } from '../src/guest/kernel/kernel.js';
import { layoutFor } from '../src/guest/kernel/layout.js';
import { TableNode } from '../src/guest/kernel/mm.js';
import { balloonConfig, runWorkload, startWorkload, type WorkloadRun } from '../src/guest/kernel/run.js';
import { workload } from '../src/guest/kernel/workloads.js';
import { OP } from '../src/guest/ops.js';
import { GuestPort, type OpRecorder } from '../src/guest/port.js';
import { replayTrace } from '../src/guest/trace/replay.js';
import { TraceWriter } from '../src/guest/trace/writer.js';
import type { Pager } from '../src/hypervisor/pager.js';
import { PHYS_NONE, PHYS_RAM } from '../src/hypervisor/physmap.js';
import { openTrace, traceFileOutput } from '../src/io/trace.js';
import { NativePager } from '../src/pagers/native/native.js';
import { createPager, defaultSpecs, sampleVariants } from '../src/pagers/registry.js';

const MiB = 2 ** 20;
const dir = mkdtempSync(join(tmpdir(), 'umbra-balloon-'));

interface Case {
  workload: string;
  size: number;
  memory: number;
  balloon: number;
  vcpus?: number;
  thp?: boolean;
}

function options(c: Case, pager: Pager) {
  return {
    workload: workload(c.workload) ?? assert.fail(c.workload),
    params: { size: c.size, seed: 1, vcpus: c.vcpus ?? 2, memory: c.memory, thp: c.thp ?? false, balloon: c.balloon },
    mode: '4-level' as const,
    pcid: true,
    verify: true,
    pager,
    layout: 'identity' as const,
  };
}

const run = (c: Case, pager: Pager, recorder?: OpRecorder): WorkloadRun =>
  runWorkload({ ...options(c, pager), recorder });

const CASES: Case[] = [
  // Forks and exits free frames all over memory: the balloon's runs are scattered.
  { workload: 'compile', size: 0.002, memory: 128 * MiB, balloon: 64 * MiB },
  // Never-used memory: long runs; 1 vCPU.
  { workload: 'bigmem', size: 0.003, memory: 128 * MiB, balloon: 48 * MiB, vcpus: 1 },
  // Frames freed and reused at once; huge pages compete for the same memory.
  { workload: 'mmapchurn', size: 0.002, memory: 96 * MiB, balloon: 40 * MiB, thp: true },
];

for (const c of CASES) {
  test(`a ballooning ${c.workload} is transparent under native and every pager's sample of variants`, () => {
    const native = run(c, new NativePager());
    const s = native.kernel.stats();
    assert.ok((s['guest.balloon.frames_out'] ?? 0) > 0, 'the balloon inflated');
    assert.ok((s['guest.balloon.frames_in'] ?? 0) > 0, 'and deflated');
    assert.equal(native.kernel.leakedFrames(), 0);
    native.kernel.checkBalloon();
    for (const spec of sampleVariants(c.vcpus ?? 2)) {
      const r = run(c, createPager(spec));
      assert.equal(r.digest, native.digest, `guest-visible output is the same under native and ${spec}`);
      assert.deepEqual(r.kernel.stats(), s, `the kernel did the same under native and ${spec}`);
    }
  });
}

test('a ballooning workload is transparent in every other paging mode and with scattered frames', () => {
  for (const mode of ['5-level', 'pae', '32-bit'] as const) {
    for (const layout of ['identity', 'scatter'] as const) {
      const c: Case = {
        workload: layout === 'identity' ? 'compile' : 'server',
        size: 0.002,
        memory: 128 * MiB,
        balloon: 48 * MiB,
      };
      const go = (pager: Pager): WorkloadRun => runWorkload({ ...options(c, pager), mode, layout });
      const native = go(new NativePager());
      assert.ok((native.kernel.stats()['guest.balloon.frames_in'] ?? 0) > 0, `${mode}: the balloon went out and back`);
      for (const spec of defaultSpecs())
        assert.equal(go(createPager(spec)).digest, native.digest, `${mode}, ${layout}, ${spec}`);
    }
  }
});

test('a ballooning workload under the isolation checker after every exit', () => {
  for (const c of CASES.slice(1)) {
    const native = run(c, new NativePager()).digest;
    for (const spec of defaultSpecs()) assert.equal(run(c, createPager(spec, { check: true })).digest, native, spec);
  }
});

/** Every p2m operation of a run, in order. */
function p2mOps(): { ops: Array<{ gfn: number; count: number; type: number }>; recorder: OpRecorder } {
  const ops: Array<{ gfn: number; count: number; type: number }> = [];
  return {
    ops,
    recorder: {
      op(op, small, _cpl, _aHi, aLo, _vHi, vLo) {
        if (op === OP.p2m) ops.push({ gfn: aLo, count: vLo, type: small });
      },
    },
  };
}

test('the balloon issues p2m operations: each frame goes none, then ram, and so on; runs batched', () => {
  const c = CASES[0] as Case;
  const { ops, recorder } = p2mOps();
  const r = run(c, new NativePager(), recorder);
  const s = r.kernel.stats();
  assert.ok(ops.length > 0, 'p2m operations were issued');
  assert.equal(ops.length, s['guest.balloon.p2m_ops']);
  const state = new Map<number, number>();
  let out = 0;
  let back = 0;
  let runs = 0;
  for (const o of ops) {
    assert.ok(o.count >= 1);
    assert.ok(o.type === PHYS_NONE || o.type === PHYS_RAM, `type ${o.type}`);
    for (let g = o.gfn; g < o.gfn + o.count; g++) {
      // Frames start as RAM; a frame goes out only if in, comes back only if out.
      assert.equal(state.get(g) ?? PHYS_RAM, o.type === PHYS_NONE ? PHYS_RAM : PHYS_NONE, `frame ${g}`);
      state.set(g, o.type);
      assert.ok(g >= (32 * MiB) / 4096 && g < c.memory / 4096, 'never the firmware or kernel image');
    }
    if (o.type === PHYS_NONE) out += o.count;
    else back += o.count;
    runs++;
  }
  assert.equal(out, s['guest.balloon.frames_out']);
  assert.equal(back, s['guest.balloon.frames_in']);
  assert.equal(runs, ops.length);
  const held = [...state.values()].filter((t) => t === PHYS_NONE).length;
  assert.equal(held, r.kernel.balloonedFrames(), 'what is still out is what the balloon holds');
  assert.equal(out - back, held);
  // A batch is one hypercall's frame list: no operation spans more.
  for (const o of ops) assert.ok(o.count <= BALLOON_BATCH, `${o.count} frames in one operation`);
  assert.ok(out / ops.length > 1, 'runs are batched');
});

/**
 * An observer outside the kernel: it follows the p2m operations to know
 * which frames are out, and checks every kernel access through the direct
 * map and every device write against them; at each p2m none it reads every
 * live address space's page tables from guest memory and checks that no
 * user entry maps a frame going out.
 */
function watcher(
  kernel: Kernel,
  port: GuestPort,
): { recorder: OpRecorder; touched: () => number; checks: () => number } {
  const l = layoutFor('4-level');
  const out = new Set<number>();
  let touched = 0;
  let checks = 0;
  const userFrames = (): Set<number> => {
    const frames = new Set<number>();
    const visit = (t: TableNode, top: boolean): void => {
      if (t.kids === null) {
        const f = port.domain.guest.frameForRead(t.gfn);
        for (let i = 0; i < 512; i++) {
          const lo = f[2 * i] as number;
          if ((lo & 1) !== 0) frames.add(entryFrame(lo, f[2 * i + 1] as number));
        }
        return;
      }
      t.kids.forEach((c, i) => {
        if (top && i >= l.kernelFirstTop) return;
        if (c instanceof TableNode) visit(c, false);
        else if (typeof c === 'number') for (let g = c; g < c + 512; g++) frames.add(g);
      });
    };
    for (const t of kernel.tasks) visit(t.mm.root, true);
    return frames;
  };
  const recorder: OpRecorder = {
    op(op, small, cpl, aHi, aLo, _vHi, vLo) {
      if (op === OP.p2m) {
        for (let g = aLo; g < aLo + vLo; g++) {
          if (small === PHYS_NONE) out.add(g);
          else out.delete(g);
        }
        if (small === PHYS_NONE) {
          const mapped = userFrames();
          checks++;
          for (let g = aLo; g < aLo + vLo; g++) if (mapped.has(g)) touched++;
        }
        return;
      }
      let gfn = -1;
      if (op === OP.pwrite || op === OP.pread) gfn = aHi * 0x100000 + (aLo >>> 12);
      else if ((op === OP.read || op === OP.write) && cpl === 0) {
        let lo = aLo - l.directLo;
        let hi = aHi - l.directHi;
        if (lo < 0) {
          lo += 2 ** 32;
          hi--;
        }
        gfn = hi * 0x100000 + Math.floor(lo / 4096);
      }
      if (gfn >= 0 && out.has(gfn)) touched++;
    },
  };
  return { recorder, touched: () => touched, checks: () => checks };
}

for (const c of CASES) {
  test(`the kernel never touches a ballooned frame, nor maps one: ${c.workload}`, () => {
    const { port, kernel } = startWorkload(options(c, new NativePager()));
    const w = watcher(kernel, port);
    port.recorder = w.recorder;
    kernel.run();
    port.finish();
    assert.ok(w.checks() > 0, 'the balloon inflated');
    assert.equal(w.touched(), 0);
  });
}

test("the kernel's own checks catch a ballooned frame in use", () => {
  // A run that ends with the balloon holding frames (which one does depends on how the balloon's pace meets the run's end).
  let r: ReturnType<typeof run> | undefined;
  for (const c of CASES) {
    r = run(c, new NativePager());
    if (r.kernel.frames.ballooned.indexOf(1) > 0) break;
  }
  assert.ok(r !== undefined);
  const f = r.kernel.frames;
  const held = f.ballooned.indexOf(1);
  assert.ok(held > 0, 'a run ends with frames out');
  r.kernel.checkBalloon();
  f.refs[held] = 1;
  assert.throws(() => r.kernel.checkBalloon(), /balloon: frame [0-9a-f]+ has 1 references/);
  f.refs[held] = 0;
  // A kernel access to a ballooned frame is a kernel bug, not a silent all-ones read: with every frame
  // marked, a new process's first table write (its kernel half) throws.
  const saved = f.ballooned.slice();
  f.ballooned.fill(1);
  assert.throws(() => {
    r.kernel.spawn('late', function* () {
      yield;
    });
    r.kernel.run();
  }, /guest kernel bug: kernel (read|write) of frame [0-9a-f]+, which is ballooned out/);
  f.ballooned.set(saved);
});

test('memory pressure deflates the balloon instead of running the guest out of memory', () => {
  const memory = 64 * MiB;
  const port = new GuestPort(
    { vcpus: 1, memory, maxphyaddr: layoutFor('4-level').maxphyaddr },
    { pager: new NativePager(), layout: 'identity', seed: 1 },
  );
  port.autoLine = true;
  // 28 of the 32 MiB the kernel can hand out; the task then wants 24 MiB.
  const config = { frames: (28 * MiB) / 4096, period: 300_000, seed: 1 };
  const k = new Kernel(port, { mode: '4-level', pcid: true, thp: false, verify: true, balloon: config });
  k.boot();
  const pages = (24 * MiB) / 4096;
  let before = 0;
  k.spawn('hog', function* (t: Task) {
    while (k.balloonedFrames() === 0) {
      k.sys(t, 'getpid');
      yield;
    }
    before = k.balloonedFrames();
    const a = k.mmap(t, pages * 4096, PROT_R | PROT_W);
    for (let i = 0; i < pages; i++) {
      assert.ok(k.access(t, ACCESS_WRITE, a + i * 4096, i + 1));
      if (i % 64 === 63) yield;
    }
  });
  k.run();
  port.finish();
  const s = k.stats();
  assert.ok(before > pages / 2, `the balloon inflated to ${before} frames, leaving too little for the task`);
  assert.ok((s['guest.balloon.oom_deflates'] ?? 0) > 0, 'allocations deflated it');
  assert.equal(k.leakedFrames(), 0);
  k.checkBalloon();
});

test('a recorded ballooning run replays to the same outcome under every pager', () => {
  const c = CASES[2] as Case;
  const path = join(dir, 'balloon.umt');
  const writer = new TraceWriter(
    traceFileOutput(path),
    { vcpus: 2, memory: c.memory, maxphyaddr: layoutFor('4-level').maxphyaddr },
    { workload: c.workload, seed: 1, balloon: c.balloon },
  );
  const liveOut: Uint8Array[] = [];
  const r = runWorkload({
    ...options(c, createPager('shadow')),
    recorder: writer,
    out: (b) => liveOut.push(b.slice()),
  });
  writer.close({ digest: r.digest, ops: r.ops });
  const live = Buffer.concat(liveOut);
  assert.ok(live.includes('"final"'));
  for (const pager of [new NativePager(), ...defaultSpecs().map((s) => createPager(s))]) {
    const out: Uint8Array[] = [];
    const rr = replayTrace(openTrace(path), {
      pager,
      layout: 'identity',
      seed: 1,
      digest: true,
      out: (b) => out.push(b.slice()),
    });
    assert.equal(rr.ops, r.ops);
    assert.equal(rr.port.digest, r.digest, `replay under ${pager.name}`);
    assert.ok(Buffer.concat(out).equals(live), `identical output under ${pager.name}`);
  }
});

test('without a balloon: no balloon counters, no p2m operations, the same digest as before', () => {
  const c: Case = { workload: 'bigmem', size: 0.003, memory: 128 * MiB, balloon: 0, vcpus: 1 };
  const { ops, recorder } = p2mOps();
  const r = run(c, new NativePager(), recorder);
  assert.equal(ops.length, 0);
  assert.deepEqual(
    Object.keys(r.kernel.stats()).filter((k) => k.includes('balloon')),
    [],
  );
  const { balloon: _, ...params } = options(c, new NativePager()).params;
  const plain = runWorkload({ ...options(c, new NativePager()), params });
  assert.equal(plain.digest, r.digest);
  assert.equal(balloonConfig(workload('bigmem') ?? assert.fail(), params), undefined);
});

test('the balloon schedule follows the seed and the workload length', () => {
  const w = workload('compile') ?? assert.fail();
  const p = { size: 1, seed: 3, vcpus: 2, memory: 256 * MiB, thp: false, balloon: 64 * MiB };
  assert.deepEqual(balloonConfig(w, p), { frames: 16384, period: Math.round(w.opsAtSize1 / 8), seed: 3 });
  assert.throws(() => balloonConfig(w, { ...p, balloon: 256 * MiB }), /below the guest's RAM/);
  assert.throws(() => balloonConfig(w, { ...p, balloon: 1000 }), /multiple of 4 KiB/);
  // The same guest (a task that only makes system calls) under schedules from two seeds.
  const when = (seed: number): number[] => {
    const port = new GuestPort(
      { vcpus: 1, memory: 64 * MiB, maxphyaddr: layoutFor('4-level').maxphyaddr },
      { pager: new NativePager(), layout: 'identity', seed: 1 },
    );
    port.autoLine = true;
    const k = new Kernel(port, {
      mode: '4-level',
      pcid: true,
      thp: false,
      verify: true,
      balloon: { frames: 1024, period: 2000, seed },
    });
    k.boot();
    const at: number[] = [];
    port.recorder = {
      op(op) {
        if (op === OP.p2m) at.push(port.ops);
      },
    };
    k.spawn('spin', function* (t: Task) {
      for (let i = 0; i < 10_000; i++) {
        k.sys(t, 'getpid');
        yield;
      }
    });
    k.run();
    return at;
  };
  const one = when(1);
  assert.ok(one.length >= 8, `${one.length} p2m operations`);
  assert.deepEqual(when(1), one, 'deterministic');
  assert.notDeepEqual(when(2), one, 'another seed, another schedule');
});
