/**
 * A Linux-like guest kernel that runs on the simulated CPU and touches it
 * only through guest operations (the GuestPort), the way a real kernel does:
 * it boots with paging off and builds its tables in guest RAM, enables
 * paging, keeps a global large-page direct map of RAM, and from then on edits
 * every page-table entry with ordinary writes through that direct map,
 * followed by the INVLPG / CR3 reload / INVPCID / shootdown a real kernel
 * issues. Page faults reach it only as #PF delivered by the CPU.
 *
 * Host-side bookkeeping stands in for the kernel's own data structures
 * (struct page, VMAs, the run queues); page tables live only in guest memory.
 * Where Linux deliberately skips a flush (clearing accessed bits, permission
 * upgrades) this kernel flushes: a guest that relies on a stale TLB entry is
 * not well behaved, and its output would depend on TLB size (docs/kernel.md).
 *
 * This class is the façade that workloads, the runner, migration and tests
 * use; the kernel itself is the modules beside it (docs/kernel.md lists
 * them), each handed the shared KernelState explicitly.
 */

import type { GuestPort } from '../port.js';
import { age } from './aging.js';
import { initBalloon } from './balloon.js';
import { boot, initKernel } from './boot.js';
import { counterStats, KernelCounters } from './counters.js';
import { access, copyToUser } from './fault.js';
import type { FrameAllocator } from './frames.js';
import { enterSyscall } from './kmem.js';
import type { KernelLayout } from './layout.js';
import { type Mm, PROT_R, PROT_W, PROT_X, type Vma } from './mm.js';
import { brk, madviseDontneed, mmap, mmapFixed, mprotect, mremap, munmap } from './mmap.js';
import { clone, type ExecImage, exec, execAreas, exit, fork, spawn } from './process.js';
import { runTasks, wake } from './sched.js';
import {
  ACCESS_FETCH,
  ACCESS_READ,
  ACCESS_WRITE,
  type Access,
  type BalloonConfig,
  type KernelOptions,
  KernelState,
  LINES_PER_PAGE,
  Task,
  type TaskBody,
  type VcpuState,
  type Yield,
} from './state.js';
import { flush } from './tlb.js';
import { checkBalloon, leakedFrames } from './verify.js';

export { fileWord } from './pages.js';
export {
  ACCESS_FETCH,
  ACCESS_READ,
  ACCESS_WRITE,
  type Access,
  type BalloonConfig,
  KernelCounters,
  type KernelOptions,
  LINES_PER_PAGE,
  PROT_R,
  PROT_W,
  PROT_X,
  Task,
  type TaskBody,
  type Vma,
  type Yield,
};

export class Kernel {
  private readonly k: KernelState;
  readonly layout: KernelLayout;
  readonly frames: FrameAllocator;
  readonly counters: KernelCounters;
  readonly vcpus: VcpuState[];
  readonly initMm: Mm;
  readonly tasks: Set<Task>;
  private readonly exitTask = (t: Task): void => exit(this.k, t);

  constructor(
    readonly port: GuestPort,
    readonly opts: KernelOptions,
  ) {
    const k = new KernelState(port, opts);
    initKernel(k);
    if (opts.balloon !== undefined) initBalloon(k, opts.balloon);
    this.k = k;
    this.layout = k.layout;
    this.frames = k.frames;
    this.counters = k.counters;
    this.vcpus = k.vcpus;
    this.initMm = k.initMm;
    this.tasks = k.tasks;
  }

  /** Build the kernel's tables with paging off, then turn paging on in every vCPU. */
  boot(): void {
    boot(this.k);
  }

  /** Flush `mm`'s entries in [start, end) (everything if start < 0) wherever they may be cached. */
  flush(mm: Mm, start: number, end: number): void {
    flush(this.k, mm, start, end);
  }

  /** Create the first user task (init) with an empty address space. */
  spawn(name: string, body: (t: Task) => TaskBody): Task {
    return spawn(this.k, name, body);
  }

  /**
   * Run every task until all have exited: each vCPU in turn runs its next
   * runnable task for one time slice (the body runs until it yields).
   * With `untilOps`, stop (returning false) once the port has run that many
   * operations; run() again to go on. True when every task has exited.
   */
  run(onSlice?: () => void, untilOps = Number.POSITIVE_INFINITY): boolean {
    return runTasks(this.k, this.exitTask, onSlice, untilOps);
  }

  /** fork(): a copy of the parent's address space, private pages shared copy-on-write. */
  fork(parent: Task, name: string, body: (t: Task) => TaskBody): Task {
    return fork(this.k, parent, name, body);
  }

  /** A new thread of `parent` (shares its address space), placed on the least busy vCPU. */
  clone(parent: Task, name: string, body: (t: Task) => TaskBody): Task {
    return clone(this.k, parent, name, body);
  }

  /** exit(): tear the address space down (if this was its last user) and wake the parent. */
  exit(t: Task): void {
    exit(this.k, t);
  }

  /** A system call with no memory-management effect (read, write, ...): kernel entry only. */
  sys(t: Task, name: string): void {
    void t;
    enterSyscall(this.k, name);
  }

  /** mmap(): place an area top-down below the previous ones; pages come on demand. */
  mmap(t: Task, bytes: number, prot: number, file = -1, pgoff = 0, name = 'anon'): number {
    return mmap(this.k, t, bytes, prot, file, pgoff, name);
  }

  /** mmap(MAP_FIXED) at `start`: whatever was mapped there is unmapped first. */
  mmapFixed(t: Task, start: number, bytes: number, prot: number, file = -1, pgoff = 0, name = 'anon'): void {
    mmapFixed(this.k, t, start, bytes, prot, file, pgoff, name);
  }

  /** madvise(MADV_DONTNEED): drop the pages of the range (they refault zero-filled or from the file). */
  madviseDontneed(t: Task, start: number, bytes: number): void {
    madviseDontneed(this.k, t, start, bytes);
  }

  /** mremap(): shrink, grow in place, or move the mapping at `from` to `to`, entries and all. */
  mremap(t: Task, from: number, oldBytes: number, newBytes: number, to: number): void {
    mremap(this.k, t, from, oldBytes, newBytes, to);
  }

  /** Wake a task that yielded { sleep: true }. */
  wake(t: Task): void {
    wake(t);
  }

  /** munmap(): remove [start, start+bytes), free its pages and empty tables, flush. */
  munmap(t: Task, start: number, bytes: number): void {
    munmap(this.k, t, start, bytes);
  }

  /** mprotect(): change the rights of [start, end) and rewrite present entries. */
  mprotect(t: Task, start: number, bytes: number, prot: number): void {
    mprotect(this.k, t, start, bytes, prot);
  }

  /** brk(): move the end of the heap; shrinking unmaps. */
  brk(t: Task, newEnd: number): void {
    brk(this.k, t, newEnd);
  }

  /** execve(): a fresh address space for program `p`; the old one is torn down. */
  exec(t: Task, p: ExecImage): void {
    exec(this.k, t, p);
  }

  /** execve() of an image given as areas (one grows down: the stack) and a heap start. */
  execAreas(t: Task, areas: readonly Vma[], brk: number, name: string): void {
    execAreas(this.k, t, areas, brk, name);
  }

  /**
   * A user-mode access by `t` (its vCPU must be current). Faults go to the
   * kernel's handler and the access is retried; returns false if the task
   * was killed instead (SIGSEGV).
   */
  access(t: Task, kind: Access, va: number, value = 0): boolean {
    return access(this.k, t, kind, va, value);
  }

  /**
   * copy_to_user: the kernel writes [va, va + bytes) of `t`'s memory for a
   * system call (its vCPU must be current), faulting pages in as a kernel-mode
   * write; false if part of the range has no writable mapping (EFAULT).
   */
  copyToUser(t: Task, va: number, bytes: number, value = 0): boolean {
    return copyToUser(this.k, t, va, bytes, value);
  }

  /** Page aging: clear the accessed bits of up to `max` present pages of `mm` from `from` (see aging.ts). */
  age(mm: Mm, from: number, max: number): number {
    return age(this.k, mm, from, max);
  }

  /** Frames the kernel holds beyond boot, the page cache and live processes (must be 0 when all exited). */
  leakedFrames(): number {
    return leakedFrames(this.k);
  }

  /** Frames the balloon holds now (given back to the hypervisor). */
  balloonedFrames(): number {
    return this.k.frames.balloonedFrames;
  }

  /** Throw unless every frame the balloon holds is out of every use (verify.ts checkBalloon). */
  checkBalloon(): void {
    checkBalloon(this.k);
  }

  /** Counters as a flat record, names prefixed "guest.". */
  stats(): Record<string, number> {
    return counterStats(this.k.counters, this.k.frames, this.k.balloon !== null);
  }
}
