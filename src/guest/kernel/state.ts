/**
 * The guest kernel's shared structures: its options, tasks, per-vCPU state
 * and the one `KernelState` every part of the kernel is handed explicitly —
 * what Linux keeps in globals and per-CPU variables (init_mm, the run
 * queues, cpu_tlbstate, the zero page, the page cache index).
 *
 * Rules: this module holds data and constants, no behaviour that touches the
 * port; every other kernel module may import it, it imports none of them
 * (only the host-side bookkeeping in mm.ts, frames.ts, layout.ts).
 */

import type { GuestPort } from '../port.js';
import { KernelCounters } from './counters.js';
import { FrameAllocator } from './frames.js';
import { type KernelLayout, type KernelMode, layoutFor, spanOf } from './layout.js';
import type { Mm } from './mm.js';

export interface KernelOptions {
  mode: KernelMode;
  /** Tag address spaces with PCIDs (long modes only), like Linux on CPUs with PCID. */
  pcid: boolean;
  /** Transparent huge pages for large anonymous areas. */
  thp: boolean;
  /** Check every user read against the value the process last wrote (tests). */
  verify: boolean;
  /** A balloon driver following a target that goes up and down (balloon.ts); absent: none. */
  balloon?: BalloonConfig;
  /**
   * Lazy TLB mode (Linux's cpu_tlbstate_shared.is_lazy): a vCPU left idle keeps its
   * address space loaded and gets no shootdown IPIs for it unless page tables
   * were freed; it catches up when it runs that address space again. Default on.
   */
  lazyTlb?: boolean;
  /** Pages mapped around a read fault on a file mapping (Linux's fault_around_bytes / 4096); default 16, 1 = off. */
  faultAround?: number;
  /** Pages read into the page cache around a file fault that misses it (Linux's ra_pages); default 32, 1 = off. */
  readahead?: number;
  /**
   * The page cache at boot: 'cold' (empty: files come in as they fault, with
   * read-around) or 'warm' (every file page already cached, as on a machine
   * that ran the program before — fault-around then maps its whole window).
   * Default: what the workload asks for (Workload.pageCache), else cold.
   */
  pageCache?: PageCacheState;
}

export type PageCacheState = 'cold' | 'warm';

/** What the host asks of the balloon: how much memory at the peak, and how often the target changes. */
export interface BalloonConfig {
  /** Frames to give back at the peak (the target while inflated). */
  frames: number;
  /** Guest operations a target lasts, on average (each phase is 0.75–1.25 times this, from the seed). */
  period: number;
  /** Seed of the schedule. */
  seed: number;
}

/** The balloon driver's state (Linux's balloon_stats and its list of ballooned pages). */
export class BalloonState {
  /** Ballooned frames in the order they went (deflation gives back the newest first). */
  readonly held: number[] = [];
  /** Frames the balloon should hold now: 0 or config.frames. */
  target = 0;
  /** Operation count at which the target next changes. */
  nextChange = 0;
  /** Operation count before which the worker does not run again (backoff after running short). */
  retryAt = 0;
  /** Free frames inflation leaves alone (the low watermark). */
  readonly reserve: number;

  constructor(
    readonly config: BalloonConfig,
    ramFrames: number,
    /** The schedule's random source (rng.ts), from config.seed. */
    readonly rnd: () => number,
  ) {
    this.reserve = Math.max(2048, Math.floor(ramFrames / 32));
  }
}

export const ACCESS_READ = 0;
export const ACCESS_WRITE = 1;
export const ACCESS_FETCH = 2;
export type Access = 0 | 1 | 2;

/** Kernel entry points (offsets into kernel text) whose fetch marks each kernel entry. */
export const ENTRY_PAGE_FAULT = 0x1000;
export const ENTRY_SYSCALL = 0x2000;
export const ENTRY_IPI = 0x3000;
export const ENTRY_SCHEDULE = 0x4000;
export const ENTRY_BALLOON = 0x5000;

/** Linux's TLB_NR_DYN_ASIDS: PCIDs per CPU handed out to recently run address spaces. */
export const DYN_PCIDS = 6;
/** User data is modelled at cache-line granularity: one 8-byte word per 64-byte line. */
export const LINES_PER_PAGE = 64;

export type TaskBody = Generator<Yield, void, void>;
/**
 * What a task's body yields: end of its time slice, a wait for a child's
 * exit, or sleep until another task wakes it (Kernel.wake, a futex wake).
 * A sleep with `busy` stands for a task that is in fact still running (a
 * replayed thread waiting for its turn): its vCPU does not go lazy.
 */
export type Yield = undefined | { wait: Task } | { sleep: true; busy?: boolean };

export class Task {
  state: 'runnable' | 'blocked' | 'dead' = 'runnable';
  body: TaskBody | null = null;
  waitingFor: Task | null = null;
  killed = false;
  constructor(
    readonly pid: number,
    public mm: Mm,
    readonly vcpu: number,
    public name: string,
  ) {}
}

export interface VcpuState {
  current: Task | null;
  /** `current` has already been counted as switched out (it blocked or exited). */
  switchedOut: boolean;
  loadedMm: Mm;
  /** Idle with loadedMm still loaded (Linux's enter_lazy_tlb): shootdowns skip it unless tables were freed. */
  lazy: boolean;
  /** loadedMm's tlb_gen this vCPU's TLB is up to date with (cpu_tlbstate.ctxs[].tlb_gen). */
  loadedGen: number;
  pcidMm: Array<Mm | null>;
  pcidGen: number[];
  nextPcid: number;
  queue: Task[];
}

/** Pages of a file per chunk of the page cache index. */
const CHUNK_SHIFT = 12;
const CHUNK_MASK = (1 << CHUNK_SHIFT) - 1;
/** Pages a file's index spans (the key space of (file, page) pairs: page offsets beyond it carry into the file id). */
const FILE_PAGES = 2 ** 24;

/**
 * The page cache index (Linux's address_space i_pages): (file, page) to
 * frame, looked up on every file fault and fault-around slot. Per file, a
 * sparse array of chunks of frame numbers (0 = not cached: frame 0 is never
 * a page-cache page), so a lookup is two array loads and no hashing.
 */
export class PageCacheIndex {
  /** Per file id, its chunks (index page >>> CHUNK_SHIFT). */
  private readonly files: Array<Array<Int32Array | undefined> | undefined> = [];
  /** Cached pages. */
  size = 0;

  /** The frame caching (file, page), or -1. */
  get(file: number, page: number): number {
    if (page >= FILE_PAGES) return this.get(file + Math.floor(page / FILE_PAGES), page % FILE_PAGES);
    const chunk = this.files[file]?.[page >>> CHUNK_SHIFT];
    const gfn = chunk === undefined ? 0 : (chunk[page & CHUNK_MASK] as number);
    return gfn === 0 ? -1 : gfn;
  }

  has(file: number, page: number): boolean {
    return this.get(file, page) >= 0;
  }

  /** Cache (file, page) in frame `gfn` (not yet cached). */
  set(file: number, page: number, gfn: number): void {
    if (page >= FILE_PAGES) {
      this.set(file + Math.floor(page / FILE_PAGES), page % FILE_PAGES, gfn);
      return;
    }
    let chunks = this.files[file];
    if (chunks === undefined) {
      chunks = [];
      this.files[file] = chunks;
    }
    let chunk = chunks[page >>> CHUNK_SHIFT];
    if (chunk === undefined) {
      chunk = new Int32Array(1 << CHUNK_SHIFT);
      chunks[page >>> CHUNK_SHIFT] = chunk;
    }
    if (chunk[page & CHUNK_MASK] === 0) this.size++;
    chunk[page & CHUNK_MASK] = gfn;
  }

  /** Every cached frame. */
  frames(): number[] {
    const out: number[] = [];
    for (const chunks of this.files) {
      if (chunks === undefined) continue;
      for (const chunk of chunks) if (chunk !== undefined) for (const gfn of chunk) if (gfn !== 0) out.push(gfn);
    }
    return out;
  }
}

export class KernelState {
  readonly layout: KernelLayout;
  readonly frames: FrameAllocator;
  readonly counters = new KernelCounters();
  readonly vcpus: VcpuState[] = [];
  /** init_mm: the kernel's own tables (set up by boot.ts's startKernel). */
  initMm!: Mm;
  /** Entries per table, per level. */
  readonly entries: number[];
  /** Bytes mapped by one entry, per level. */
  readonly spans: number[];
  pagingOn = false;
  zeroPage = 0;
  /** Page cache: (file, page) -> frame. */
  readonly pageCache = new PageCacheIndex();
  /** Every file page counts as cached (KernelOptions.pageCache 'warm'): set at boot. */
  warmPageCache = false;
  nextPid = 1;
  readonly tasks = new Set<Task>();
  /** Frames in use once boot finished (tables, zero page): never freed. */
  bootFrames = 0;
  /** Kernel top-level entries [index, hi, lo] copied into every process's top table. */
  readonly kernelTop: Array<[number, number, number]> = [];
  /** The balloon driver, if one was asked for (balloon.ts). */
  balloon: BalloonState | null = null;

  constructor(
    readonly port: GuestPort,
    readonly opts: KernelOptions,
  ) {
    this.layout = layoutFor(opts.mode);
    this.warmPageCache = opts.pageCache === 'warm';
    const l = this.layout;
    const ram = port.machine.memory;
    if (ram < 64 * 2 ** 20) throw new RangeError('the guest kernel needs at least 64 MiB of RAM');
    if (ram > l.directLimit) {
      throw new RangeError(`${opts.mode} guests model low memory only: at most ${l.directLimit / 2 ** 20} MiB of RAM`);
    }
    this.entries = l.indexBits.map((b) => 2 ** b);
    this.spans = l.indexBits.map((_, level) => spanOf(l, level));
    // Firmware and the kernel image: the first 32 MiB.
    this.frames = new FrameAllocator(ram / 4096, (l.textGpa + 16 * 2 ** 20) / 4096);
    this.frames.reserve(0, (l.textGpa + 16 * 2 ** 20) / 4096 - 1);
  }

  get usePcid(): boolean {
    return this.opts.pcid && this.layout.long;
  }
}
