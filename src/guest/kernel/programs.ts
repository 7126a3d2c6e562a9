/**
 * User programs for the guest kernel: how a process of a given kind lays out
 * and touches its memory. A program is a file (text and data), the shared
 * libraries the dynamic loader maps, and a pattern of work: which pages it
 * executes, reads and writes, how its heap grows (brk), which anonymous areas
 * it maps, what it protects and unmaps. The figures per program come from
 * shared/corpus/realworkloads/README.md where it measured them (cc1, as, ls).
 */

import { Rng } from '../rng.js';
import { ACCESS_FETCH, ACCESS_READ, ACCESS_WRITE, type Kernel, type Task, type Yield } from './kernel.js';
import { PROT_R, PROT_W, PROT_X } from './mm.js';

/** A shared library: file id and the page counts of its text, read-only data, data and bss. */
export interface Library {
  file: number;
  name: string;
  text: number;
  rodata: number;
  data: number;
  bss: number;
}

export const LIBS: Record<string, Library> = {
  ld: { file: 1, name: 'ld-linux', text: 40, rodata: 8, data: 2, bss: 1 },
  libc: { file: 2, name: 'libc', text: 380, rodata: 50, data: 5, bss: 3 },
  libm: { file: 3, name: 'libm', text: 120, rodata: 30, data: 1, bss: 1 },
  libz: { file: 4, name: 'libz', text: 20, rodata: 4, data: 1, bss: 1 },
  libgmp: { file: 5, name: 'libgmp', text: 120, rodata: 10, data: 1, bss: 1 },
  libmpfr: { file: 6, name: 'libmpfr', text: 110, rodata: 10, data: 1, bss: 1 },
  libmpc: { file: 7, name: 'libmpc', text: 25, rodata: 3, data: 1, bss: 1 },
  libselinux: { file: 8, name: 'libselinux', text: 40, rodata: 6, data: 1, bss: 2 },
  libpcre: { file: 9, name: 'libpcre2', text: 140, rodata: 8, data: 1, bss: 1 },
};

export interface Program {
  name: string;
  file: number;
  textPages: number;
  dataPages: number;
  bssPages: number;
  libs: Library[];
  /** Distinct pages executed in its own text and in each library's text. */
  hotText: number;
  hotLibText: number;
  /** Data pages written (copy-on-write from the file) and read. */
  dataWrites: number;
  /** Heap grown with brk in `brkSteps` steps to `heapPages`, all written. */
  heapPages: number;
  brkSteps: number;
  /** Anonymous areas mapped and written (malloc arenas, obstacks), and how many are unmapped again. */
  anonMaps: number;
  anonPages: number;
  anonUnmaps: number;
  /** Extra mprotect calls beyond the loader's one per library. */
  mprotects: number;
  /** Stack pages written below the initial page. */
  stackPages: number;
  /** Accesses per touched page (later ones hit the TLB or walk), and the share that are writes. */
  touches: number;
  writeShare: number;
}

const PROGRAMS: Record<string, Program> = {
  // cc1 per file: ~3,000 faults, 61 mmap, 2 munmap, 10 mprotect, 43 brk (corpus README).
  cc1: {
    name: 'cc1',
    file: 20,
    textPages: 6400,
    dataPages: 60,
    bssPages: 80,
    libs: [LIBS.ld, LIBS.libc, LIBS.libm, LIBS.libz, LIBS.libgmp, LIBS.libmpfr, LIBS.libmpc] as Library[],
    hotText: 330,
    hotLibText: 30,
    dataWrites: 50,
    heapPages: 1600,
    brkSteps: 43,
    anonMaps: 33,
    anonPages: 16,
    anonUnmaps: 2,
    mprotects: 3,
    stackPages: 40,
    touches: 6,
    writeShare: 0.5,
  },
  // as: ~470 faults.
  as: {
    name: 'as',
    file: 21,
    textPages: 180,
    dataPages: 8,
    bssPages: 8,
    libs: [LIBS.ld, LIBS.libc, LIBS.libz] as Library[],
    hotText: 90,
    hotLibText: 25,
    dataWrites: 8,
    heapPages: 230,
    brkSteps: 12,
    anonMaps: 2,
    anonPages: 8,
    anonUnmaps: 0,
    mprotects: 1,
    stackPages: 6,
    touches: 5,
    writeShare: 0.5,
  },
  // The gcc driver: small, forks cc1 and as.
  gcc: {
    name: 'gcc',
    file: 22,
    textPages: 250,
    dataPages: 6,
    bssPages: 4,
    libs: [LIBS.ld, LIBS.libc] as Library[],
    hotText: 60,
    hotLibText: 20,
    dataWrites: 5,
    heapPages: 60,
    brkSteps: 6,
    anonMaps: 1,
    anonPages: 4,
    anonUnmaps: 0,
    mprotects: 0,
    stackPages: 4,
    touches: 4,
    writeShare: 0.5,
  },
  ld: {
    name: 'collect2',
    file: 23,
    textPages: 400,
    dataPages: 10,
    bssPages: 10,
    libs: [LIBS.ld, LIBS.libc, LIBS.libz] as Library[],
    hotText: 150,
    hotLibText: 25,
    dataWrites: 8,
    heapPages: 600,
    brkSteps: 20,
    anonMaps: 4,
    anonPages: 16,
    anonUnmaps: 1,
    mprotects: 1,
    stackPages: 8,
    touches: 5,
    writeShare: 0.5,
  },
  make: {
    name: 'make',
    file: 24,
    textPages: 60,
    dataPages: 4,
    bssPages: 4,
    libs: [LIBS.ld, LIBS.libc] as Library[],
    hotText: 30,
    hotLibText: 15,
    dataWrites: 4,
    heapPages: 40,
    brkSteps: 4,
    anonMaps: 0,
    anonPages: 0,
    anonUnmaps: 0,
    mprotects: 0,
    stackPages: 3,
    touches: 4,
    writeShare: 0.5,
  },
  // Short shell commands: `ls /` faults ~90 distinct pages over 48 mappings.
  ls: {
    name: 'ls',
    file: 30,
    textPages: 35,
    dataPages: 2,
    bssPages: 2,
    libs: [LIBS.ld, LIBS.libc, LIBS.libselinux, LIBS.libpcre] as Library[],
    hotText: 24,
    hotLibText: 8,
    dataWrites: 2,
    heapPages: 40,
    brkSteps: 2,
    anonMaps: 2,
    anonPages: 2,
    anonUnmaps: 1,
    mprotects: 1,
    stackPages: 3,
    touches: 3,
    writeShare: 0.5,
  },
  true: {
    name: 'true',
    file: 31,
    textPages: 8,
    dataPages: 1,
    bssPages: 1,
    libs: [LIBS.ld, LIBS.libc] as Library[],
    hotText: 2,
    hotLibText: 6,
    dataWrites: 1,
    heapPages: 0,
    brkSteps: 1,
    anonMaps: 1,
    anonPages: 1,
    anonUnmaps: 0,
    mprotects: 0,
    stackPages: 1,
    touches: 2,
    writeShare: 0.5,
  },
  cat: {
    name: 'cat',
    file: 32,
    textPages: 10,
    dataPages: 1,
    bssPages: 1,
    libs: [LIBS.ld, LIBS.libc] as Library[],
    hotText: 4,
    hotLibText: 8,
    dataWrites: 1,
    heapPages: 16,
    brkSteps: 1,
    anonMaps: 2,
    anonPages: 32,
    anonUnmaps: 1,
    mprotects: 0,
    stackPages: 1,
    touches: 3,
    writeShare: 0.5,
  },
  // A shell: forks children between bursts of its own work.
  sh: {
    name: 'sh',
    file: 33,
    textPages: 300,
    dataPages: 12,
    bssPages: 6,
    libs: [LIBS.ld, LIBS.libc] as Library[],
    hotText: 60,
    hotLibText: 20,
    dataWrites: 10,
    heapPages: 60,
    brkSteps: 3,
    anonMaps: 0,
    anonPages: 0,
    anonUnmaps: 0,
    mprotects: 0,
    stackPages: 4,
    touches: 3,
    writeShare: 0.5,
  },
};

export function program(name: string): Program {
  const p = PROGRAMS[name];
  if (p === undefined) throw new Error(`no program "${name}"`);
  return p;
}

/** Accesses between two voluntary yields of a task (its time slice, in operations). */
export const SLICE = 256;

/** The guest's random source (src/guest/rng.ts), one per task so scheduling does not change choices. */
export const taskRng = (seed: number): Rng => new Rng(seed);

/** A running process's view: its task, random source and access budget within the slice. */
/**
 * Accesses a program makes to pages it already uses, per page it faults in.
 * Real programs touch each page thousands of times between faults (cc1 makes
 * on the order of 10^8 memory references in its 61 ms and ~3,000 faults); the
 * model keeps the proportions at a scale of about one access per thousand,
 * which puts most of them in the TLB, as on real hardware.
 */
export const WORK_PER_PAGE = 24;
const RING = 64;

export class Proc {
  private budget = SLICE;
  value = 1;
  /** Recently used pages, by kind: the working set that `work` revisits. */
  private readonly text: number[] = [];
  private readonly data: number[] = [];
  private readonly dirty: number[] = [];
  constructor(
    readonly k: Kernel,
    readonly t: Task,
    readonly rnd: Rng,
  ) {}

  /** One access (line-aligned word of the page); true if the slice is used up. */
  touch(kind: 0 | 1 | 2, va: number): boolean {
    this.k.access(this.t, kind, va, kind === ACCESS_WRITE ? this.value++ : 0);
    return --this.budget <= 0;
  }

  /** Yield at the end of a slice. */
  *tick(): Generator<Yield, void, void> {
    if (this.budget <= 0) {
      this.budget = SLICE;
      yield;
    }
  }

  /** Touch `n` pages from `start`, `per` accesses each, writes with probability `w`. */
  *pages(start: number, n: number, per: number, w: number): Generator<Yield, void, void> {
    for (let p = 0; p < n && !this.t.killed; p++) {
      let wrote = false;
      for (let j = 0; j < per; j++) {
        const kind = j === 0 && w >= 1 ? ACCESS_WRITE : this.rnd.chance(w) ? ACCESS_WRITE : ACCESS_READ;
        if (kind === ACCESS_WRITE) wrote = true;
        if (this.touch(kind, start + p * 4096 + this.rnd.below(64) * 64)) yield* this.tick();
      }
      remember(wrote ? this.dirty : this.data, start + p * 4096);
    }
  }

  /** Drop a page from the working set (it was protected or unmapped). */
  forget(page: number): void {
    for (const ring of [this.text, this.data, this.dirty]) {
      for (let i = ring.indexOf(page); i >= 0; i = ring.indexOf(page)) ring.splice(i, 1);
    }
  }

  /**
   * `n` accesses to the working set: instruction fetches from recently run
   * text, reads of recently used pages, writes to pages already written (so
   * no new faults, only TLB hits and, past the TLB's reach, walks).
   */
  *work(n: number): Generator<Yield, void, void> {
    const { text, data, dirty, rnd } = this;
    for (let i = 0; i < n && !this.t.killed; i++) {
      // One draw per access: bits 0-5 pick the line, 6-25 the page, 26-31 the kind (40/40/20%).
      const x = rnd.next() >>> 0;
      const line = (x & 63) * 64;
      const at = (x >>> 6) & 0xfffff;
      const kind = x >>> 26;
      let done: boolean;
      if (kind < 26 && text.length > 0) done = this.touch(ACCESS_FETCH, (text[at % text.length] as number) + line);
      else if (kind < 51 && data.length + dirty.length > 0) {
        const k = at % (data.length + dirty.length);
        done = this.touch(ACCESS_READ, ((k < data.length ? data[k] : dirty[k - data.length]) as number) + line);
      } else if (dirty.length > 0) done = this.touch(ACCESS_WRITE, (dirty[at % dirty.length] as number) + line);
      else continue;
      if (done) yield* this.tick();
    }
  }

  /** Execute `n` distinct text pages of an area (instruction fetches). */
  *exec(start: number, pages: number, n: number, per: number): Generator<Yield, void, void> {
    const stride = Math.max(1, Math.floor(pages / Math.max(1, n)));
    for (let p = 0; p < Math.min(n, pages) && !this.t.killed; p++) {
      for (let j = 0; j < per; j++) {
        if (this.touch(ACCESS_FETCH, start + p * stride * 4096 + this.rnd.below(64) * 64)) yield* this.tick();
      }
      remember(this.text, start + p * stride * 4096);
    }
  }
}

function remember(ring: number[], page: number): void {
  if (ring.length < RING) ring.push(page);
  else ring[(page >>> 12) % RING] = page;
}

/** Map a library the way ld.so does: text, rodata, data (private), bss; then RELRO mprotect. */
export function mapLibrary(k: Kernel, t: Task, lib: Library): { text: number; data: number; bss: number } {
  const text = k.mmap(t, lib.text * 4096, PROT_R | PROT_X, lib.file, 0, `${lib.name}:text`);
  k.mmap(t, lib.rodata * 4096, PROT_R, lib.file, lib.text, `${lib.name}:rodata`);
  const data = k.mmap(t, lib.data * 4096, PROT_R | PROT_W, lib.file, lib.text + lib.rodata, `${lib.name}:data`);
  const bss = k.mmap(t, lib.bss * 4096, PROT_R | PROT_W, -1, 0, `${lib.name}:bss`);
  k.mprotect(t, data, 4096, PROT_R);
  return { text, data: data + 4096, bss };
}

/**
 * The life of a process running `p` after exec: the loader maps libraries
 * and relocates (writes their data), then main runs: executes text, writes
 * data, grows the heap, maps and uses anonymous areas, uses its stack, and
 * finally returns (the caller exits).
 */
export function* runProgram(k: Kernel, t: Task, p: Program, rnd: Rng): Generator<Yield, void, void> {
  const l = k.layout;
  k.exec(t, { file: p.file, textPages: p.textPages, dataPages: p.dataPages, bssPages: p.bssPages, name: p.name });
  const u = new Proc(k, t, rnd);
  const libs = p.libs.map((lib) => ({ lib, at: mapLibrary(k, t, lib) }));
  for (const { lib, at } of libs) {
    yield* u.exec(at.text, lib.text, p.hotLibText, 2);
    if (lib.data > 1) yield* u.pages(at.data, lib.data - 1, 2, 1);
    yield* u.pages(at.bss, lib.bss, 1, 1);
  }
  const text = l.textBase;
  const data = text + p.textPages * 4096;
  const bss = data + p.dataPages * 4096;
  yield* u.exec(text, p.textPages, p.hotText, p.touches);
  yield* u.pages(data, Math.min(p.dataWrites, p.dataPages), p.touches, 1);
  yield* u.pages(data + p.dataWrites * 4096, Math.max(0, p.dataPages - p.dataWrites), 2, 0);
  yield* u.pages(bss, p.bssPages, p.touches, p.writeShare);
  // Stack: the top page holds the arguments; deeper frames grow it downwards.
  yield* u.pages(l.stackTop - (p.stackPages + 1) * 4096, p.stackPages, p.touches, 1);
  yield* u.work(WORK_PER_PAGE * (p.hotText + p.hotLibText * p.libs.length + p.dataPages + p.bssPages + p.stackPages));
  const heap = t.mm.brk;
  const step = Math.ceil(p.heapPages / Math.max(1, p.brkSteps));
  let grown = 0;
  const anon: number[] = [];
  let protects = p.mprotects;
  for (let s = 0; s < p.brkSteps && !t.killed; s++) {
    const n = Math.min(step, p.heapPages - grown);
    k.brk(t, heap + (grown + n) * 4096);
    yield* u.pages(heap + grown * 4096, n, p.touches, 1);
    grown += n;
    let touched = n;
    if (anon.length < p.anonMaps) {
      const per = Math.ceil((p.anonMaps - anon.length) / (p.brkSteps - s));
      for (let m = 0; m < per; m++) {
        const a = k.mmap(t, p.anonPages * 4096, PROT_R | PROT_W);
        anon.push(a);
        yield* u.pages(a, p.anonPages, p.touches, p.writeShare);
        touched += p.anonPages;
      }
    }
    yield* u.work(WORK_PER_PAGE * touched);
    if (protects > 0 && anon.length > 0 && rnd.chance(0.3)) {
      k.mprotect(t, anon[anon.length - 1] as number, 4096, PROT_R);
      u.forget(anon[anon.length - 1] as number);
      protects--;
    }
    // Revisit recent heap pages: TLB hits and, past the TLB's reach, walks.
    yield* u.pages(heap + rnd.below(Math.max(1, grown - 8)) * 4096, Math.min(8, grown), p.touches, p.writeShare);
  }
  for (let m = 0; m < p.anonUnmaps && m < anon.length; m++) k.munmap(t, anon[m] as number, p.anonPages * 4096);
}
