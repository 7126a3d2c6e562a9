/**
 * A workload with two dials, for sweeps: how often the guest edits its page
 * tables and how far its accesses roam (so how often they miss the TLB).
 * Shadow paging pays for the first (every table edit traps or goes out of
 * sync), nested paging for the second (every TLB miss is a 2-D walk); the
 * crossover between them is where the dials balance (bench/crossover.ts,
 * docs/nested.md).
 *
 * One process maps a heap of `footprintMiB`, touches every page once, then
 * makes random reads and writes (one in four) over it. After every
 * 1000 / `editsPerK` accesses it makes one table edit the way an allocator
 * does: map a page, write it (a demand-zero fault fills its PTE), unmap it
 * (the PTE is cleared and the page flushed). Not one of the named
 * workloads: bench and tests build it with the dials they want.
 */
import { ACCESS_READ, ACCESS_WRITE } from './kernel.js';
import { PROT_R, PROT_W } from './mm.js';
import { Proc, program, runProgram, taskRng } from './programs.js';
import type { Workload } from './workloads.js';

const MiB = 2 ** 20;

export interface MixDials {
  /** Page-table edits (a map, fault and unmap of one page) per 1,000 heap accesses; 0 for none. */
  editsPerK: number;
  /** Heap the accesses roam over, in MiB (the default TLB reaches 6 MiB with 4 KiB pages). */
  footprintMiB: number;
  /** Map and populate the heap, then stop: a sweep subtracts this run to measure the steady state alone. */
  setupOnly?: boolean;
}

/** Heap accesses at size 1. */
const ACCESSES = 1_000_000;

export function mixWorkload(d: MixDials): Workload {
  if (!(d.editsPerK >= 0 && d.editsPerK <= 1000)) throw new RangeError(`editsPerK ${d.editsPerK}: 0..1000`);
  if (!(Number.isInteger(d.footprintMiB) && d.footprintMiB >= 1 && d.footprintMiB <= 4096)) {
    throw new RangeError(`footprintMiB ${d.footprintMiB}: an integer 1..4096`);
  }
  const memory = 2 ** Math.ceil(Math.log2(Math.max(256, 2 * d.footprintMiB))) * MiB;
  return {
    name: `mix:edits=${d.editsPerK}:footprint=${d.footprintMiB}`,
    description: `random accesses over ${d.footprintMiB} MiB, ${d.editsPerK} page-table edits per 1,000`,
    imitates: 'no one program: a dial setting between bigmem (TLB misses) and mmapchurn (table edits)',
    sizeMeans: `${ACCESSES.toLocaleString('en-US')} heap accesses`,
    defaults: { vcpus: 1, memory },
    opsAtSize1: Math.round(ACCESSES * (1 + (d.editsPerK * 3) / 1000) + d.footprintMiB * 256),
    start(k, p) {
      const accesses = d.setupOnly === true ? 0 : Math.max(1, Math.round(ACCESSES * p.size));
      const every = d.editsPerK > 0 ? 1000 / d.editsPerK : Number.POSITIVE_INFINITY;
      k.spawn('mix', function* (t) {
        const rnd = taskRng(p.seed);
        yield* runProgram(k, t, program('true'), rnd);
        const u = new Proc(k, t, rnd);
        const bytes = d.footprintMiB * MiB;
        const pages = bytes / 4096;
        const heap = k.mmap(t, bytes, PROT_R | PROT_W);
        yield* u.pages(heap, pages, 1, 1);
        let nextEdit = every;
        for (let i = 0; i < accesses && !t.killed; i++) {
          const va = heap + rnd.below(pages) * 4096 + rnd.below(64) * 64;
          let done = u.touch(rnd.chance(0.25) ? ACCESS_WRITE : ACCESS_READ, va);
          // Edits land at fractional positions so a rate such as 3 per 1,000 is exact over the run.
          while (i + 1 >= nextEdit && !t.killed) {
            nextEdit += every;
            const a = k.mmap(t, 4096, PROT_R | PROT_W);
            done = u.touch(ACCESS_WRITE, a) || done;
            k.munmap(t, a, 4096);
          }
          if (done) yield* u.tick();
        }
      });
    },
  };
}
