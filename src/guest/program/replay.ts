/**
 * Replaying a captured program tree through the guest kernel: each captured
 * process becomes a guest process and each of its threads a guest task; the
 * kernel performs the captured system calls (exec of the captured image,
 * mmap at the captured address, munmap, mprotect, brk, madvise, mremap,
 * fork, clone, wait, exit) and the captured accesses become user accesses.
 * Faults, copy-on-write, page tables, TLB misses and exits come from the
 * kernel model under whatever pager runs it: nothing of the capture is used
 * but what the program did.
 *
 * Threads of one process take turns as they did under the capturing tool
 * (which runs one thread at a time): a thread runs while the stream's current
 * thread is its own and sleeps otherwise, so a thread on another vCPU never
 * touches memory before the mmap that made it. Processes run concurrently,
 * as the kernel schedules them; a captured wait() waits for that child.
 *
 * A uwrite is the kernel's copy_to_user for a call that filled a buffer
 * (read, pread64, getdents64): the kernel writes those pages in kernel mode
 * before the program touches them, as on the real machine; a range the
 * program has no writable mapping for would have been EFAULT, which a
 * capture that recorded the call as successful cannot hold: a bad capture.
 *
 * A run of identical consecutive accesses is one user access: the repeats
 * could not fault and would hit the TLB entry the first one loaded. Files are
 * numbered from FILE_BASE so that they never meet the built-in programs'.
 */
import type { Kernel, Task, TaskBody, Vma } from '../kernel/kernel.js';
import { SLICE } from '../kernel/programs.js';
import type { Workload, WorkloadParams } from '../kernel/workloads.js';
import type { ProgramFile } from './file.js';
import { EV, EV_NAME, type EventBlock, ProgramError, SEG_BRK, SEG_STACK } from './format.js';

/** Guest file id of the capture's file 0. */
export const FILE_BASE = 1000;
const MADV_DONTNEED = 4;

/** What a replay counted beyond the kernel's counters (reported as "guest.program.*"). */
export interface ReplayCounters {
  events: number;
  accessRuns: number;
  accesses: number;
  syscalls: number;
  processes: number;
  threads: number;
  killed: number;
  madviseIgnored: number;
  sharedMappings: number;
}

const COUNTERS = new WeakMap<Kernel, ReplayCounters>();

/** The replay counters of a kernel running a program (undefined for other workloads). */
export function replayCounters(k: Kernel): ReplayCounters | undefined {
  return COUNTERS.get(k);
}

/** Guest RAM a program needs by default: twice the pages its processes touch, plus room, at least 256 MiB. */
export function programMemory(f: ProgramFile): number {
  let pages = 0;
  for (const s of f.streams) pages += s.pages;
  const bytes = 2 * pages * 4096 + 128 * 2 ** 20;
  return Math.min(2 ** 40, Math.max(256 * 2 ** 20, Math.ceil(bytes / 2 ** 26) * 2 ** 26));
}

/** Highest address + 1 the program names. */
export function programTop(f: ProgramFile): number {
  let top = 0;
  for (const s of f.streams) top = Math.max(top, (s.maxPage + 1) * 4096);
  return top;
}

/** A captured program tree as a workload (size, seed and balloon pacing do not change what it does). */
export function programWorkload(f: ProgramFile, name: string): Workload {
  let events = 0;
  for (const s of f.streams) events += s.events;
  const command = typeof f.meta.command === 'string' ? f.meta.command : (f.streams[0]?.command ?? '?');
  return {
    name,
    description: `captured: ${command} (${f.streams.length} process(es))`,
    imitates: command,
    sizeMeans: 'the whole capture (fixed)',
    defaults: { vcpus: 2, memory: programMemory(f) },
    opsAtSize1: events,
    // The real counterpart runs after a warm-up (bench/calibrate.ts), its files cached.
    pageCache: 'warm',
    start(k: Kernel, _p: WorkloadParams): void {
      const c: ReplayCounters = {
        events: 0,
        accessRuns: 0,
        accesses: 0,
        syscalls: 0,
        processes: 0,
        threads: 0,
        killed: 0,
        madviseIgnored: 0,
        sharedMappings: 0,
      };
      COUNTERS.set(k, c);
      const root = new Proc(k, f, 0, c);
      root.spawn();
    },
  };
}

/** One captured process being replayed: its event cursor and its threads. */
class Proc {
  private blocks: Generator<EventBlock, void, undefined> | null = null;
  private blk: EventBlock | null = null;
  private i = 0;
  /** Events of the stream taken so far (the last one's number, for errors). */
  private at = 0;
  private readonly tasks = new Map<number, Task>();
  /** The thread the stream is at. */
  private current: number;
  private done = false;
  private value = 1;
  main: Task | null = null;

  constructor(
    private readonly k: Kernel,
    private readonly f: ProgramFile,
    readonly stream: number,
    private readonly c: ReplayCounters,
  ) {
    this.current = (f.streams[stream] as { tid: number }).tid;
    c.processes++;
  }

  private get tid0(): number {
    return (this.f.streams[this.stream] as { tid: number }).tid;
  }

  spawn(): void {
    const tid = this.tid0;
    this.main = this.k.spawn(this.name(), (t) => this.body(t, tid));
    this.tasks.set(tid, this.main);
  }

  forked(parent: Task): Task {
    const tid = this.tid0;
    this.main = this.k.fork(parent, this.name(), (t) => this.body(t, tid));
    this.tasks.set(tid, this.main);
    return this.main;
  }

  private name(): string {
    const cmd = (this.f.streams[this.stream] as { command: string }).command;
    return cmd.split(' ')[0]?.split('/').pop() || `proc${this.stream}`;
  }

  /** The next event (its block and index), or null at the end of the stream. */
  private next(): [EventBlock, number] | null {
    for (;;) {
      if (this.blk !== null && this.i < this.blk.count) {
        this.at++;
        return [this.blk, this.i++];
      }
      if (this.blocks === null) this.blocks = this.f.blocks(this.stream);
      const r = this.blocks.next();
      if (r.done === true) return null;
      this.blk = r.value;
      this.i = 0;
    }
  }

  private end(): void {
    this.done = true;
    for (const t of this.tasks.values()) this.k.wake(t);
  }

  private switchTo(tid: number): void {
    this.current = tid;
    const t = this.tasks.get(tid);
    if (t !== undefined) this.k.wake(t);
  }

  private *body(t: Task, tid: number): TaskBody {
    const k = this.k;
    const c = this.c;
    let budget = SLICE;
    for (;;) {
      if (this.done || t.killed) {
        if (t.killed && !this.done) {
          c.killed++;
          this.end();
        }
        return;
      }
      if (this.current !== tid) {
        // Waiting for its turn: idle if the capture saw it block, else still running (its vCPU stays busy).
        yield { sleep: true, busy: !this.idle.has(tid) };
        continue;
      }
      const ev = this.next();
      if (ev === null) {
        this.end();
        return;
      }
      const [b, e] = ev;
      c.events++;
      const code = b.code[e] as number;
      if (code === EV.access) {
        const kind = b.kind[e] as 0 | 1 | 2;
        c.accessRuns++;
        c.accesses += b.repeat[e] as number;
        k.access(t, kind, (b.page[e] as number) * 4096, kind === 1 ? this.value++ : 0);
        if (--budget <= 0) {
          budget = SLICE;
          yield;
        }
        continue;
      }
      const a = b.args[e] as number[];
      if (code !== EV.thread) c.syscalls++;
      switch (code) {
        case EV.thread:
          if (b.kind[e] === 1) this.idle.add(tid);
          else this.idle.delete(tid);
          this.switchTo(a[0] as number);
          break;
        case EV.mmap: {
          const [, len, prot, flags, file, offset, result] = a as [
            number,
            number,
            number,
            number,
            number,
            number,
            number,
          ];
          if ((flags & 1) !== 0) c.sharedMappings++;
          k.mmapFixed(
            t,
            result,
            len,
            prot & 7,
            file < 0 ? -1 : FILE_BASE + file,
            Math.floor(offset / 4096),
            file < 0 ? 'anon' : (this.f.files[file] ?? 'file'),
          );
          break;
        }
        case EV.munmap:
          k.munmap(t, a[0] as number, a[1] as number);
          break;
        case EV.mprotect:
          k.mprotect(t, a[0] as number, a[1] as number, (a[2] as number) & 7);
          break;
        case EV.brk:
          if ((a[1] as number) !== t.mm.brk) k.brk(t, a[1] as number);
          else k.sys(t, 'brk');
          break;
        case EV.madvise:
          if (a[2] === MADV_DONTNEED) k.madviseDontneed(t, a[0] as number, a[1] as number);
          else {
            c.madviseIgnored++;
            k.sys(t, 'madvise');
          }
          break;
        case EV.mremap:
          k.mremap(t, a[0] as number, a[1] as number, a[2] as number, a[4] as number);
          break;
        case EV.fork: {
          const child = new Proc(k, this.f, a[0] as number, c);
          this.children.set(a[0] as number, child);
          child.forked(t);
          break;
        }
        case EV.clone: {
          const ntid = a[0] as number;
          c.threads++;
          this.tasks.set(
            ntid,
            k.clone(t, `${t.name}:${ntid}`, (nt) => this.body(nt, ntid)),
          );
          break;
        }
        case EV.exec:
          k.execAreas(t, this.image(a), this.brkOf(a), this.name());
          break;
        case EV.threadExit:
          if (a[0] === tid) {
            this.tasks.delete(tid);
            // Hand the stream on: find the next thread switch.
            this.handOn();
            return;
          }
          break;
        case EV.exit:
          this.end();
          return;
        case EV.uwrite:
          if (!k.copyToUser(t, a[0] as number, a[1] as number, this.value++))
            throw new ProgramError(
              this.f.path,
              `stream ${this.stream} event ${this.at}`,
              `the kernel wrote ${a[1]} bytes at 0x${(a[0] as number).toString(16)} for a call that succeeded, but the process has no writable mapping there (EFAULT): a bad capture`,
            );
          break;
        case EV.wait: {
          const child = this.children.get(a[0] as number)?.main;
          k.sys(t, 'wait4');
          if (child !== undefined && child !== null && child.state !== 'dead') yield { wait: child };
          break;
        }
      }
    }
  }

  private readonly children = new Map<number, Proc>();
  /** Threads that left the stream blocked in a system call (their vCPU may go lazy). */
  private readonly idle = new Set<number>();

  /**
   * After a thread's exit the next event is the switch to the thread that
   * runs next (the capture names the thread before each event), or the end.
   */
  private handOn(): void {
    for (;;) {
      const ev = this.next();
      if (ev === null) {
        this.end();
        return;
      }
      const [b, e] = ev;
      this.c.events++;
      if (b.code[e] === EV.thread) {
        this.switchTo((b.args[e] as number[])[0] as number);
        return;
      }
      if (b.code[e] === EV.exit) {
        this.end();
        return;
      }
      throw new ProgramError(
        this.f.path,
        `stream ${this.stream}`,
        `${EV_NAME[b.code[e] as number]} event after a thread's exit, before any thread switch`,
      );
    }
  }

  private image(a: readonly number[]): Vma[] {
    const areas: Vma[] = [];
    for (let i = 2; i < a.length; i += 6) {
      const [start, end, prot, file, offset, kind] = a.slice(i, i + 6) as [
        number,
        number,
        number,
        number,
        number,
        number,
      ];
      if (kind === SEG_BRK) continue;
      areas.push({
        start,
        end,
        prot: prot & 7,
        file: file < 0 ? -1 : FILE_BASE + file,
        pgoff: Math.floor(offset / 4096),
        growsDown: kind === SEG_STACK,
        huge: false,
        name: kind === SEG_STACK ? 'stack' : file < 0 ? 'anon' : (this.f.files[file] ?? 'file'),
      });
    }
    return areas;
  }

  private brkOf(a: readonly number[]): number {
    for (let i = 2; i < a.length; i += 6) if (a[i + 5] === SEG_BRK) return a[i] as number;
    // No heap segment: the heap starts above the highest non-stack segment.
    let top = 0;
    for (let i = 2; i < a.length; i += 6) if (a[i + 5] !== SEG_STACK) top = Math.max(top, a[i + 1] as number);
    return top;
  }
}
