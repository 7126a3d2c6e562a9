/**
 * Turning valgrind's logs into a program trace (docs/programs.md).
 *
 * Input, per process (pid): its log segments in the order they were written
 * — the part a fork child ran before it executed anything (if the process
 * was forked by a traced one), then one per program it executed — each the
 * text lackey (--trace-mem=yes) and the core (--trace-syscalls=yes,
 * --trace-sched=yes) printed; and the address space valgrind's loader built
 * at each exec (the "Memory layout at client startup" dump of -d). Output:
 * one stream per process, in the order the processes were forked, written
 * with ProgramWriter.
 *
 * Lines used: `I  addr,size` (an instruction fetch), ` L`, ` S`, ` M`
 * (load, store, modify: a read-modify-write operand, recorded as the store it
 * is to paging — the processor reads it with intent to write, so a page not
 * present takes one fault with W/R = 1, not a read fault and then a
 * copy-on-write; an access that straddles a page is one per page), `SYSCALL[pid,tid](nr) …` (arguments, and the result on
 * the same line or, for a blocking call, on a later `… [async] --> …` line),
 * `SCHED[tid]:  acquired lock` (which thread runs from here on). Failed
 * calls change nothing and are left out. A successful read, pread64 or
 * getdents64 becomes a uwrite of [buffer, buffer + result): the kernel wrote
 * it, which lackey (tracing only the program's own accesses) does not see.
 */

import type { ProgramWriter } from '../guest/program/file.js';
import {
  EV,
  KIND_FETCH,
  KIND_READ,
  KIND_WRITE,
  SEG_BRK,
  SEG_MAP,
  SEG_STACK,
  THREAD_LEAVES_BLOCKED,
} from '../guest/program/format.js';

/** One client segment of valgrind's startup dump. */
export interface LayoutSegment {
  start: number;
  end: number;
  prot: number;
  /** Path of the mapped file, or null for anonymous memory. */
  path: string | null;
  offset: number;
  kind: number;
}

/** A log segment: its lines, and whether it is the pre-exec part of a forked child. */
export interface LogSegment {
  name: string;
  forkPart: boolean;
  lines(): Iterable<string>;
}

export interface ProcessLogs {
  pid: number;
  segments: LogSegment[];
  layouts: LayoutSegment[][];
}

/** What the parse counted (the capture's summary, kept in the trailer). */
export interface CaptureCounts {
  accesses: number;
  accessesDropped: number;
  syscalls: Record<string, number>;
  processes: number;
  threads: number;
  unknownFds: number;
}

export class CaptureError extends Error {}

/** Resolves a path the program opened to the identity of the file (the capture resolves symlinks). */
export type PathResolver = (path: string) => string;

const CLONE_VM = 0x100;
const CLONE_THREAD = 0x10000;
const MAP_ANONYMOUS = 0x20;
const F_DUPFD = 0;
const F_DUPFD_CLOEXEC = 1030;
const AT_FDCWD = 4294967196;
/** Pages at and above this are not user memory (x86-64 canonical lower half ends at 2^47). */
const USER_PAGES = 2 ** 35;

/** Parse valgrind's `-d` stderr: the startup layout dumps, per pid, in order. */
export function parseLayouts(lines: Iterable<string>): Map<number, LayoutSegment[][]> {
  const out = new Map<number, LayoutSegment[][]>();
  let pid = -1;
  let names = new Map<number, string>();
  let segs: LayoutSegment[] | null = null;
  let expect = 0;
  let seen = 0;
  const prefix = /^--(\d+):\d+: aspacem (.*)$/;
  for (const line of lines) {
    const m = prefix.exec(line);
    if (m === null) continue;
    const p = Number(m[1]);
    const body = m[2] as string;
    if (body.includes('Memory layout at client startup')) {
      pid = p;
      names = new Map();
      segs = [];
      expect = Number(/\((\d+) segments\)/.exec(body)?.[1] ?? -1);
      seen = 0;
      continue;
    }
    if (segs === null || p !== pid) continue;
    if (body.startsWith('>>>')) {
      // Concurrent processes' debug output can interleave mid-line: a dump that lost a line is not trusted.
      if (seen !== expect)
        throw new CaptureError(
          `valgrind's startup layout of pid ${pid} came out garbled (${seen} of ${expect} segments): capture again`,
        );
      const list = out.get(pid) ?? [];
      list.push(classify(segs, body));
      out.set(pid, list);
      segs = null;
      continue;
    }
    const nm = /^\((\d+),\d+,\d+\) (.*)$/.exec(body);
    if (nm !== null) {
      names.set(Number(nm[1]), nm[2] as string);
      continue;
    }
    if (/^\s*\d+: /.test(body)) seen++;
    const sm =
      /^\s*\d+: (file|anon|RSVN|ANON|FILE|SHMC|shmc|\s*) ?([0-9a-f]+)-([0-9a-f]+)\s+\S+\s+([r-])([w-])([x-])\S*\s*(.*)$/.exec(
        body,
      );
    if (sm === null) continue;
    const kind = sm[1] as string;
    const start = Number.parseInt(sm[2] as string, 16);
    const end = Number.parseInt(sm[3] as string, 16) + 1;
    const rest = sm[7] as string;
    if (kind === 'RSVN') {
      // Reservations mark where the stack grows (SmUpper) and where the heap grows (SmLower).
      if (rest.includes('SmUpper')) segs.push({ start, end, prot: 0, path: '<stack-reserve>', offset: 0, kind: -1 });
      if (rest.includes('SmLower')) segs.push({ start, end, prot: 0, path: '<brk-reserve>', offset: 0, kind: -1 });
      continue;
    }
    if (kind !== 'file' && kind !== 'anon') continue;
    const prot = (sm[4] === 'r' ? 1 : 0) | (sm[5] === 'w' ? 2 : 0) | (sm[6] === 'x' ? 4 : 0);
    let path: string | null = null;
    let offset = 0;
    if (kind === 'file') {
      const fm = /o=(\d+)\s+\((\d+),\d+\)$/.exec(rest);
      if (fm === null) throw new CaptureError(`valgrind layout of pid ${pid}: file segment without offset: ${body}`);
      offset = Number(fm[1]);
      path = names.get(Number(fm[2])) ?? null;
      if (path === null) throw new CaptureError(`valgrind layout of pid ${pid}: unnamed file segment: ${body}`);
    }
    segs.push({ start, end, prot, path, offset, kind: SEG_MAP });
  }
  return out;
}

/** Mark the stack (the anonymous segment just above the SmUpper reservation) and the brk segment (just below SmLower). */
function classify(segs: LayoutSegment[], where: string): LayoutSegment[] {
  const out: LayoutSegment[] = [];
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i] as LayoutSegment;
    if (s.kind === -1) continue;
    const prev = segs[i - 1];
    const next = segs[i + 1];
    if (s.path === null && prev?.path === '<stack-reserve>' && prev.end === s.start)
      out.push({ ...s, kind: SEG_STACK });
    else if (s.path === null && next?.path === '<brk-reserve>' && next.start === s.end)
      out.push({ ...s, kind: SEG_BRK });
    else out.push(s);
  }
  if (!out.some((s) => s.kind === SEG_STACK))
    throw new CaptureError(`valgrind layout without a client stack (${where})`);
  return out;
}

interface Pending {
  nr: number;
  name: string;
  args: string[];
}

/** Per-process state carried from a parent to the child it forks. */
interface ProcState {
  fds: Map<number, string>;
}

/**
 * Parse the logs of every process, root first, children in the order they
 * were forked, writing one stream each. `files` collects file identities.
 */
export function writeCapture(
  w: ProgramWriter,
  root: number,
  logs: Map<number, ProcessLogs>,
  resolve: PathResolver,
  files: string[],
): CaptureCounts {
  const counts: CaptureCounts = {
    accesses: 0,
    accessesDropped: 0,
    syscalls: {},
    processes: 0,
    threads: 0,
    unknownFds: 0,
  };
  const fileIds = new Map<string, number>();
  const fileId = (path: string): number => {
    let id = fileIds.get(path);
    if (id === undefined) {
      id = files.length;
      files.push(path);
      fileIds.set(path, id);
    }
    return id;
  };
  // Streams in fork order: [pid, parent stream, first tid, inherited state].
  const queue: Array<{ pid: number; parent: number; tid: number; state: ProcState }> = [
    { pid: root, parent: -1, tid: 1, state: { fds: new Map() } },
  ];
  for (let q = 0; q < queue.length; q++) {
    const job = queue[q] as (typeof queue)[number];
    const pl = logs.get(job.pid);
    counts.processes++;
    const index = w.beginStream({ pid: job.pid, parent: job.parent, tid: job.tid, command: '' });
    if (pl !== undefined) {
      const execs = pl.segments.filter((s) => !s.forkPart);
      if (execs.length !== pl.layouts.length)
        throw new CaptureError(
          `pid ${job.pid}: ${execs.length} logs of executed programs but ${pl.layouts.length} startup layouts (a log was lost: capture again)`,
        );
      new StreamParser(w, job, index, pl, queue, counts, resolve, fileId).run();
    }
    w.endStream();
  }
  return counts;
}

class StreamParser {
  private tid: number;
  private emittedTid: number;
  private readonly live = new Set<number>();
  private readonly pending = new Map<number, Pending>();
  private readonly fds: Map<number, string>;
  private readonly children = new Map<number, number>();
  /** Child streams in fork order, and those already waited for. */
  private readonly childOrder: number[] = [];
  private readonly waited = new Set<number>();
  /** Threads whose last release of valgrind's lock was into a blocking system call. */
  private readonly blocked = new Set<number>();
  private exited = false;

  constructor(
    private readonly w: ProgramWriter,
    job: { pid: number; tid: number; state: ProcState },
    private readonly index: number,
    private readonly pl: ProcessLogs,
    private readonly queue: Array<{ pid: number; parent: number; tid: number; state: ProcState }>,
    private readonly counts: CaptureCounts,
    private readonly resolve: PathResolver,
    private readonly fileId: (path: string) => number,
  ) {
    this.tid = job.tid;
    this.emittedTid = job.tid;
    this.live.add(job.tid);
    this.fds = new Map(job.state.fds);
  }

  run(): void {
    let exec = 0;
    for (const seg of this.pl.segments) {
      if (!seg.forkPart) {
        this.exec(this.pl.layouts[exec++] as LayoutSegment[], seg);
      }
      for (const line of seg.lines()) this.line(line);
    }
    if (!this.exited) this.w.event(EV.exit, [0]);
  }

  private exec(layout: LayoutSegment[], seg: LogSegment): void {
    // A new program: valgrind's main thread is tid 1 again.
    this.live.clear();
    this.tid = 1;
    this.live.add(1);
    this.thread(1);
    const args: number[] = [];
    let exe = -1;
    for (const s of layout) {
      const file = s.path === null ? -1 : this.fileId(this.resolve(s.path));
      if (exe < 0 && file >= 0) exe = file;
      args.push(s.start, s.end, s.prot, file, s.offset, s.kind);
    }
    this.w.event(EV.exec, [exe, layout.length, ...args]);
    const cmd = this.commandOf(seg);
    if (cmd !== null) this.w.setCommand(cmd);
  }

  private commandOf(seg: LogSegment): string | null {
    for (const line of seg.lines()) {
      const m = /^==\d+== Command: (.*)$/.exec(line);
      if (m !== null) return (m[1] as string).replace(/\\ /g, ' ');
      if (!line.startsWith('==')) return null;
    }
    return null;
  }

  private thread(tid: number): void {
    if (tid === this.emittedTid) return;
    // Did the thread we leave block in a system call (idle on a real CPU), or was it preempted?
    const blocked = this.blocked.has(this.emittedTid) || !this.live.has(this.emittedTid);
    this.w.event(EV.thread | (blocked ? THREAD_LEAVES_BLOCKED : 0), [tid]);
    this.emittedTid = tid;
  }

  private access(kind: number, addr: number, size: number): void {
    const first = Math.floor(addr / 4096);
    const last = Math.floor((addr + Math.max(1, size) - 1) / 4096);
    for (let p = first; p <= last; p++) {
      if (p >= USER_PAGES) {
        this.counts.accessesDropped++;
        continue;
      }
      this.thread(this.tid);
      this.w.access(kind, p);
      this.counts.accesses++;
    }
  }

  line(line: string): void {
    const c0 = line.charCodeAt(0);
    // "I  addr,size"
    if (c0 === 73 && line.charCodeAt(1) === 32) {
      this.memLine(line, 3, KIND_FETCH);
      return;
    }
    if (c0 === 32 && line.charCodeAt(2) === 32) {
      const c1 = line.charCodeAt(1);
      if (c1 === 76) this.memLine(line, 3, KIND_READ);
      else if (c1 === 83) this.memLine(line, 3, KIND_WRITE);
      // A modify is one access checked for writing (a locked or read-modify-write operand): its fault is a write.
      else if (c1 === 77) this.memLine(line, 3, KIND_WRITE);
      // A syscall's result can follow on its own line (" --> [pre-success] Success(…)").
      return;
    }
    if (c0 === 83 && line.startsWith('SYSCALL[')) {
      const cut = line.search(/--\d+-- {2,}SCHED\[/);
      this.syscall(cut < 0 ? line : line.slice(0, cut));
      if (cut >= 0) this.sched(line.slice(cut));
      return;
    }
    if (line.includes('SCHED[')) this.sched(line);
  }

  private memLine(line: string, from: number, kind: number): void {
    let addr = 0;
    let i = from;
    for (; i < line.length; i++) {
      const c = line.charCodeAt(i);
      const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : -1;
      if (d < 0) break;
      addr = addr * 16 + d;
    }
    if (line.charCodeAt(i) !== 44) return;
    let size = 0;
    for (i++; i < line.length; i++) {
      const c = line.charCodeAt(i);
      if (c < 48 || c > 57) break;
      size = size * 10 + (c - 48);
    }
    this.access(kind, addr, size);
  }

  private sched(text: string): void {
    const rel = /SCHED\[(\d+)\]: releasing lock \(.*\) -> (\w+)/.exec(text);
    if (rel !== null) {
      if (rel[2] === 'VgTs_WaitSys') this.blocked.add(Number(rel[1]));
      else this.blocked.delete(Number(rel[1]));
    }
    const m = /SCHED\[(\d+)\]: {1,2}acquired lock \(([^)]*)/.exec(text);
    if (m === null) return;
    const tid = Number(m[1]);
    const p = this.pending.get(tid);
    if (p !== undefined && (p.name === 'wait4' || p.name === 'waitid') && m[2] === 'async_signalhandler') {
      // A blocking wait cut short by SIGCHLD: valgrind prints no result. A child exited: take the
      // earliest one not yet waited for (shells reap in order; documented in docs/programs.md).
      this.pending.delete(tid);
      this.tid = tid;
      const s = this.childOrder.find((c) => !this.waited.has(c));
      if (s !== undefined) this.waitFor(s);
    }
    if ((m[2] as string).startsWith('thread_wrapper') && !this.live.has(tid))
      throw new CaptureError(`pid ${this.pl.pid}: thread ${tid} started without a clone the parser saw`);
    this.tid = tid;
  }

  private syscall(line: string): void {
    const m = /^SYSCALL\[(\d+),(\d+)\]\((\d+)\) (.*)$/.exec(line);
    if (m === null) return;
    const tid = Number(m[2]);
    const nr = Number(m[3]);
    const body = m[4] as string;
    this.tid = tid;
    if (body.startsWith('... [async] --> ')) {
      const p = this.pending.get(tid);
      this.pending.delete(tid);
      if (p === undefined || p.nr !== nr) return;
      this.done(p, body.slice('... [async] --> '.length));
      return;
    }
    const open = body.indexOf('(');
    if (open < 0) return;
    // The argument list ends at its matching parenthesis (path arguments hold their own).
    let depth = 0;
    let close = open;
    for (; close < body.length; close++) {
      if (body[close] === '(') depth++;
      else if (body[close] === ')' && --depth === 0) break;
    }
    const p: Pending = {
      nr,
      name: body.slice(0, open).trim().replace(/^sys_/, ''),
      args: splitArgs(body.slice(open + 1, close).trim()),
    };
    const child = /created child (\d+)/.exec(body);
    if (child !== null) {
      this.fork(Number(child[1]));
      return;
    }
    const arrow = body.indexOf('--> ');
    if (arrow < 0) return;
    const rest = body.slice(arrow + 4);
    if (rest.startsWith('[async] ...')) {
      this.pending.set(tid, p);
      return;
    }
    this.done(p, rest);
  }

  private count(name: string): void {
    this.counts.syscalls[name] = (this.counts.syscalls[name] ?? 0) + 1;
  }

  private fork(pid: number): void {
    this.count('fork');
    const index = this.queue.length;
    this.queue.push({ pid, parent: this.index, tid: this.tid, state: { fds: new Map(this.fds) } });
    this.children.set(pid, index);
    this.childOrder.push(index);
    this.thread(this.tid);
    this.w.event(EV.fork, [index, this.tid]);
  }

  /** A finished call: `result` is "[…] Success(0x…)" or a failure. */
  private done(p: Pending, result: string): void {
    const rm = /Success\(0x([0-9a-f]+)\)/.exec(result);
    if (rm === null) return;
    const r = Number.parseInt(rm[1] as string, 16);
    const a = p.args.map(num);
    this.thread(this.tid);
    switch (p.name) {
      case 'mmap': {
        const flags = a[3] as number;
        let file = -1;
        if ((flags & MAP_ANONYMOUS) === 0) {
          const path = this.fds.get(a[4] as number);
          if (path === undefined) this.counts.unknownFds++;
          file = this.fileId(path ?? `<fd ${a[4]} of pid ${this.pl.pid}>`);
        }
        this.count('mmap');
        this.w.event(EV.mmap, [a[0] as number, a[1] as number, a[2] as number, flags, file, a[5] as number, r]);
        break;
      }
      case 'munmap':
        this.count('munmap');
        this.w.event(EV.munmap, [a[0] as number, a[1] as number]);
        break;
      case 'mprotect':
        this.count('mprotect');
        this.w.event(EV.mprotect, [a[0] as number, a[1] as number, a[2] as number]);
        break;
      case 'brk':
        this.count('brk');
        this.w.event(EV.brk, [a[0] as number, r]);
        break;
      case 'madvise':
        this.count('madvise');
        this.w.event(EV.madvise, [a[0] as number, a[1] as number, a[2] as number]);
        break;
      case 'mremap':
        this.count('mremap');
        this.w.event(EV.mremap, [a[0] as number, a[1] as number, a[2] as number, a[3] as number, r]);
        break;
      case 'clone':
      case 'clone3': {
        // valgrind prints clone's flags in hex without 0x.
        const flags = Number.parseInt(p.args[0] ?? '0', 16);
        if ((flags & CLONE_THREAD) !== 0 && (flags & CLONE_VM) !== 0) {
          // valgrind gives a new thread the lowest free thread slot (VG_(alloc_ThreadState)).
          let t = 1;
          while (this.live.has(t)) t++;
          this.live.add(t);
          this.count('clone');
          this.counts.threads++;
          this.w.event(EV.clone, [t]);
        }
        break;
      }
      case 'exit':
        this.live.delete(this.tid);
        if (this.live.size === 0) {
          this.count('exit');
          this.w.event(EV.exit, [a[0] ?? 0]);
          this.exited = true;
        } else this.w.event(EV.threadExit, [this.tid]);
        break;
      case 'exit_group':
        this.count('exit');
        this.w.event(EV.exit, [a[0] ?? 0]);
        this.exited = true;
        break;
      case 'read':
      case 'pread64':
      case 'getdents64':
        // The kernel filled [buffer, buffer + result) (copy_to_user) before the program saw it. readv,
        // preadv and recvmsg are left out: their buffers are in iovecs the log does not show.
        if (r > 0) {
          this.count(p.name);
          this.uwrite(a[1] as number, r);
        }
        break;
      case 'wait4':
      case 'waitid': {
        const s = this.children.get(r);
        if (s !== undefined && !this.waited.has(s)) this.waitFor(s);
        break;
      }
      case 'open':
      case 'openat':
      case 'creat': {
        const pathArg = p.args[p.name === 'openat' ? 1 : 0] ?? '';
        const pm = /\((.*)\)$/.exec(pathArg);
        if (pm === null) break;
        let path = pm[1] as string;
        if (p.name === 'openat' && !path.startsWith('/') && a[0] !== AT_FDCWD) {
          const dir = this.fds.get(a[0] as number);
          if (dir !== undefined) path = `${dir}/${path}`;
        }
        this.fds.set(r, this.resolve(path));
        break;
      }
      case 'memfd_create': {
        const pm = /\((.*)\)$/.exec(p.args[0] ?? '');
        this.fds.set(r, `memfd:${pm?.[1] ?? ''}:${this.pl.pid}:${r}`);
        break;
      }
      case 'close':
        this.fds.delete(a[0] as number);
        break;
      case 'dup':
        this.dupFd(a[0] as number, r);
        break;
      case 'dup2':
      case 'dup3':
        this.dupFd(a[0] as number, a[1] as number);
        break;
      case 'fcntl':
        if (a[1] === F_DUPFD || a[1] === F_DUPFD_CLOEXEC) this.dupFd(a[0] as number, r);
        break;
    }
  }

  /** A kernel write to user memory; the part at or above the user range is dropped, as accesses there are. */
  private uwrite(addr: number, bytes: number): void {
    const end = Math.min(addr + bytes, USER_PAGES * 4096);
    if (end > addr) this.w.event(EV.uwrite, [addr, end - addr]);
  }

  private waitFor(stream: number): void {
    this.waited.add(stream);
    this.count('wait');
    this.thread(this.tid);
    this.w.event(EV.wait, [stream]);
  }

  private dupFd(from: number, to: number): void {
    const path = this.fds.get(from);
    if (path === undefined) this.fds.delete(to);
    else this.fds.set(to, path);
  }
}

/** Split "a, b(c, d), e" at top-level commas. */
function splitArgs(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      out.push(s.slice(start, i).trim());
      start = i + 1;
    }
  }
  if (s.trim() !== '') out.push(s.slice(start).trim());
  return out;
}

/** valgrind prints arguments as 0x-hex or decimal; a path argument keeps its pointer. */
function num(s: string): number {
  const m = /^(0x[0-9a-f]+|\d+)/.exec(s);
  if (m === null) return 0;
  return Number(m[1]);
}
