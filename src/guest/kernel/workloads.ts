/**
 * Named workloads for the guest kernel: each starts an init process whose
 * body imitates a real program mix. All choices come from the seed, so a
 * workload is deterministic; `size` scales its amount of work.
 */
import type { Kernel, Task, Yield } from './kernel.js';
import { ACCESS_READ, ACCESS_WRITE } from './kernel.js';
import { PROT_R, PROT_W } from './mm.js';
import { Proc, program, runProgram, SLICE, taskRng } from './programs.js';
import type { PageCacheState } from './state.js';

export interface WorkloadParams {
  size: number;
  seed: number;
  vcpus: number;
  memory: number;
  thp: boolean;
  /** Bytes the balloon gives back at its peak (a multiple of 4 KiB); 0 or absent: no balloon (balloon.ts). */
  balloon?: number;
}

export interface Workload {
  name: string;
  description: string;
  imitates: string;
  /** What --size scales, at size 1. */
  sizeMeans: string;
  defaults: { vcpus: number; memory: number };
  /** Guest operations at size 1 with the defaults (measured; for the progress bar's ETA and the balloon's pace). */
  opsAtSize1: number;
  /** The page cache it starts with, unless the run says otherwise (KernelOptions.pageCache); default cold. */
  pageCache?: PageCacheState;
  start(k: Kernel, p: WorkloadParams): void;
}

type Body = Generator<Yield, void, void>;
const MiB = 2 ** 20;

/** Run `prog` in a fresh child of `parent` (fork, then exec in the child). */
function spawnChild(k: Kernel, parent: Task, prog: string, seed: number, after?: (t: Task) => Body): Task {
  return k.fork(parent, prog, function* (t) {
    const rnd = taskRng(seed);
    // Between fork and exec the child writes a few stack words (copy-on-write).
    const u = new Proc(k, t, rnd);
    u.touch(ACCESS_WRITE, k.layout.stackTop - 64);
    u.touch(ACCESS_WRITE, k.layout.stackTop - 4096 - 64);
    yield* runProgram(k, t, program(prog), rnd);
    if (after !== undefined) yield* after(t);
  });
}

/**
 * A forked child that does not exec runs on in its parent's image: it
 * returns through libc and its own code (fork copies no page-table entries
 * of file-backed text, so those are fetch faults: Linux's vma_needs_copy)
 * and writes its stack and libc's data (copy-on-write).
 */
function* afterFork(u: Proc): Body {
  const l = u.k.layout;
  const text = u.t.mm.vmas.find((v) => v.name === 'libc:text');
  if (text !== undefined) yield* u.exec(text.start, (text.end - text.start) / 4096, 12, 2);
  for (const v of u.t.mm.vmas.filter(
    (a) => (a.name === 'libc:data' || a.name === 'libc:bss') && (a.prot & PROT_W) !== 0,
  )) {
    yield* u.pages(v.start, (v.end - v.start) / 4096, 1, 1);
  }
  yield* u.pages(l.stackTop - 3 * 4096, 3, 2, 1);
}

/** A parent's own work between forks: it dirties a few of its pages (they are copy-on-write after fork). */
function* parentWork(u: Proc, heap: number, pages: number): Body {
  for (let i = 0; i < pages; i++) {
    u.touch(ACCESS_WRITE, heap + i * 4096 + u.rnd.below(64) * 64);
  }
  yield* u.tick();
}

const compile: Workload = {
  name: 'compile',
  description: 'make -j2 of a C project: gcc drivers fork cc1 and as per file, then a link',
  imitates: 'make -j2 from clean of a 41-file C project with gcc -O2 -g',
  sizeMeans: '41 source files',
  defaults: { vcpus: 2, memory: 1024 * MiB },
  opsAtSize1: 12_060_000,
  start(k, p) {
    const files = Math.max(1, Math.round(41 * p.size));
    k.spawn('make', function* (make) {
      const rnd = taskRng(p.seed);
      yield* runProgram(k, make, program('make'), rnd);
      const u = new Proc(k, make, rnd);
      const heap = make.mm.brkStart;
      const jobs: Task[] = [];
      for (let f = 0; f < files; f++) {
        if (jobs.length === 2) yield { wait: jobs.shift() as Task };
        yield* parentWork(u, heap, 6);
        const seed = (p.seed * 1000003 + f) >>> 0;
        jobs.push(
          spawnChild(k, make, 'gcc', seed, function* (gcc) {
            const cc1 = spawnChild(k, gcc, 'cc1', seed ^ 0x1111);
            yield { wait: cc1 };
            const as = spawnChild(k, gcc, 'as', seed ^ 0x2222);
            yield { wait: as };
          }),
        );
      }
      for (const j of jobs) yield { wait: j };
      const link = spawnChild(k, make, 'ld', p.seed ^ 0x3333);
      yield { wait: link };
    });
  },
};

const forkexec: Workload = {
  name: 'forkexec',
  description: 'a shell running many short commands (true, ls /, cat) one after another',
  imitates: 'a shell script running 6,000 short commands',
  sizeMeans: '6,000 commands',
  defaults: { vcpus: 2, memory: 512 * MiB },
  opsAtSize1: 46_400_000,
  start(k, p) {
    const n = Math.max(1, Math.round(6000 * p.size));
    const cmds = ['true', 'ls', 'cat'];
    k.spawn('sh', function* (sh) {
      const rnd = taskRng(p.seed);
      yield* runProgram(k, sh, program('sh'), rnd);
      const u = new Proc(k, sh, rnd);
      const heap = sh.mm.brkStart;
      for (let i = 0; i < n; i++) {
        // The shell parses the next line and sets up the child: ~21 pages written after each fork.
        yield* parentWork(u, heap, 21);
        const c = spawnChild(k, sh, cmds[i % 3] as string, (p.seed * 7919 + i) >>> 0);
        yield { wait: c };
      }
    });
  },
};

const ctxswitch: Workload = {
  name: 'ctxswitch',
  description: 'pairs of processes ping-ponging short messages: context switches, few faults',
  imitates: 'lmbench lat_ctx / a pipe ping-pong between process pairs',
  sizeMeans: '8 processes exchanging 20,000 messages',
  defaults: { vcpus: 2, memory: 256 * MiB },
  opsAtSize1: 220_000,
  start(k, p) {
    const procs = 8;
    const rounds = Math.max(1, Math.round((20000 * p.size) / procs));
    k.spawn('init', function* (init) {
      const rnd = taskRng(p.seed);
      yield* runProgram(k, init, program('true'), rnd);
      const kids: Task[] = [];
      // Bytes waiting in each process's pipe; a reader finding none sleeps until its partner's write wakes it.
      const waiting = new Array<number>(procs).fill(0);
      for (let i = 0; i < procs; i++) {
        // Forked from the parent, no exec (calibrate/programs/pingpong.c): pairs (0,1), (2,3)…; the even one writes first.
        kids.push(
          k.fork(init, 'pingpong', function* (t) {
            const u = new Proc(k, t, taskRng(p.seed ^ (i * 977)));
            yield* afterFork(u);
            const buf = k.mmap(t, 4 * 4096, PROT_R | PROT_W);
            const partner = i ^ 1;
            const send = (r: number): void => {
              u.touch(ACCESS_WRITE, buf + (r % 4) * 4096 + (r % 64) * 64);
              k.sys(t, 'write');
              waiting[partner] = (waiting[partner] as number) + 1;
              const other = kids[partner];
              if (other !== undefined) k.wake(other);
            };
            const receive = function* (r: number): Body {
              while ((waiting[i] as number) === 0 && !t.killed) yield { sleep: true };
              waiting[i] = (waiting[i] as number) - 1;
              k.sys(t, 'read');
              u.touch(ACCESS_READ, buf + ((r + 1) % 4) * 4096);
              u.touch(ACCESS_READ, k.layout.stackTop - 128);
            };
            for (let r = 0; r < rounds && !t.killed; r++) {
              if ((i & 1) === 0) {
                send(r);
                yield* receive(r);
              } else {
                yield* receive(r);
                send(r);
              }
            }
          }),
        );
      }
      for (const c of kids) yield { wait: c };
    });
  },
};

const bigmem: Workload = {
  name: 'bigmem',
  description: 'random reads and writes over a large heap: TLB-miss bound, few table edits',
  imitates: 'GUPS-style random access (an in-memory key-value or graph workload)',
  sizeMeans: '256 MiB heap and 2 million random accesses',
  defaults: { vcpus: 1, memory: 512 * MiB },
  opsAtSize1: 2_800_000,
  start(k, p) {
    const bytes = Math.max(4 * MiB, Math.round((256 * MiB * p.size) / (2 * MiB)) * 2 * MiB);
    const accesses = Math.max(1, Math.round(2_000_000 * p.size));
    k.spawn('bigmem', function* (t) {
      const rnd = taskRng(p.seed);
      yield* runProgram(k, t, program('true'), rnd);
      const u = new Proc(k, t, rnd);
      const heap = k.mmap(t, bytes, PROT_R | PROT_W);
      const pages = bytes / 4096;
      yield* u.pages(heap, pages, 1, 1);
      let aged = heap;
      for (let i = 0; i < accesses && !t.killed; i++) {
        const va = heap + rnd.below(pages) * 4096 + rnd.below(64) * 64;
        if (u.touch(rnd.chance(0.25) ? ACCESS_WRITE : ACCESS_READ, va)) {
          yield* u.tick();
          // kswapd-like aging: clear accessed bits of a stretch of the heap now and then.
          if (i % (SLICE * 64) < SLICE) aged = k.age(t.mm, aged >= heap + bytes ? heap : aged, 512);
        }
      }
    });
  },
};

const mmapchurn: Workload = {
  name: 'mmapchurn',
  description: 'map, touch and unmap anonymous areas in a loop (allocator-heavy programs)',
  imitates:
    'an allocator that maps every block of 1-64 pages and unmaps it at free (calibrate/programs/churn.c; glibc does so above its mmap threshold)',
  sizeMeans: '2 processes × 5,000 map/touch/unmap rounds',
  defaults: { vcpus: 2, memory: 256 * MiB },
  opsAtSize1: 23_300_000,
  start(k, p) {
    const rounds = Math.max(1, Math.round(5000 * p.size));
    k.spawn('init', function* (init) {
      const rnd = taskRng(p.seed);
      yield* runProgram(k, init, program('true'), rnd);
      const kids = [0, 1].map((i) =>
        spawnChild(k, init, 'true', (p.seed + 17 * i) >>> 0, function* (t) {
          const r2 = taskRng(p.seed ^ (0x5151 * (i + 1)));
          const u = new Proc(k, t, r2);
          for (let r = 0; r < rounds && !t.killed; r++) {
            const pages = 1 + r2.below(64);
            const a = k.mmap(t, pages * 4096, PROT_R | PROT_W);
            yield* u.pages(a, pages, 2, 0.7);
            k.munmap(t, a, pages * 4096);
            yield* u.tick();
          }
        }),
      );
      for (const c of kids) yield { wait: c };
    });
  },
};

/** The server's static files: 64 of 16 pages each, file ids from here (programs.ts uses ids below 100). */
const SERVER_FILES = 1000;

const server: Workload = {
  name: 'server',
  description:
    'threads of one process on every vCPU: each request maps a file, reads it and a shared cache, unmaps it (shootdowns)',
  imitates:
    'a threaded static-file server that maps each file it sends, as Apache httpd does with EnableMMAP (calibrate/programs/server.c)',
  sizeMeans: '2 threads per vCPU serving 20,000 requests of 64 KiB files over a 64 MiB shared cache',
  defaults: { vcpus: 2, memory: 512 * MiB },
  opsAtSize1: 7_460_000,
  start(k, p) {
    const threads = 2 * p.vcpus;
    const requests = Math.max(1, Math.round((20000 * p.size) / threads));
    const heapBytes = 64 * MiB;
    const fileBytes = 16 * 4096;
    k.spawn('server', function* (main) {
      const rnd = taskRng(p.seed);
      yield* runProgram(k, main, program('true'), rnd);
      const heap = k.mmap(main, heapBytes, PROT_R | PROT_W);
      const u = new Proc(k, main, rnd);
      yield* u.pages(heap, heapBytes / 4096 / 4, 1, 1);
      const workers: Task[] = [];
      for (let w = 0; w < threads; w++) {
        workers.push(
          k.clone(main, `worker${w}`, function* (t) {
            const r2 = taskRng(p.seed ^ (0x9e37 * (w + 1)));
            const v = new Proc(k, t, r2);
            const stack = k.mmap(t, 16 * 4096, PROT_R | PROT_W);
            for (let r = 0; r < requests && !t.killed; r++) {
              const file = SERVER_FILES + r2.below(64);
              const f = k.mmap(t, fileBytes, PROT_R, file, 0, `file${file - SERVER_FILES}`);
              for (let pg = 0; pg < 4; pg++) v.touch(ACCESS_READ, f + pg * 4096 + (r % 64) * 64);
              for (let j = 0; j < 24; j++) {
                v.touch(ACCESS_READ, heap + r2.below(heapBytes / 4096 / 4) * 4096 + r2.below(64) * 64);
              }
              v.touch(ACCESS_WRITE, stack + 15 * 4096 + (r % 64) * 64);
              k.munmap(t, f, fileBytes);
              yield;
            }
          }),
        );
      }
      for (const w of workers) yield { wait: w };
    });
  },
};

export const WORKLOADS: readonly Workload[] = [compile, forkexec, ctxswitch, bigmem, mmapchurn, server];

export function workload(name: string): Workload | undefined {
  return WORKLOADS.find((w) => w.name === name);
}
