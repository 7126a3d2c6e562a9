/**
 * Processes and threads (Linux's kernel/fork.c, exec.c, exit.c): the first
 * process, fork with copy-on-write sharing (copy_page_range), clone of a
 * thread, execve building a fresh address space, and exit.
 *
 * Rules: fork write-protects the parent's writable private entries and
 * flushes the parent before the child can run; the child's entries start old
 * (pte_mkold) and read-only file mappings are not copied (the child refaults
 * them); exec switches to the new address space before the old one is torn
 * down; an address space is destroyed when its last user exits.
 */

import { PTE_A, PTE_RW } from '../../arch/x86/bits.js';
import { FRAMES_PER_HUGE } from './frames.js';
import { enterSyscall, kwrite } from './kmem.js';
import { PROT_R, PROT_W, PROT_X, type TableNode, type Vma } from './mm.js';
import { destroyMm } from './mmap.js';
import { allocZeroed, getPage } from './pages.js';
import {
  forEachPresent,
  lastEntry,
  leafFor,
  newMm,
  readEntry,
  setPte,
  tableAt,
  userFlags,
  writeEntry,
} from './pgtable.js';
import { dequeue, enqueue, pickVcpu, wakeWaiters } from './sched.js';
import { type KernelState, LINES_PER_PAGE, Task, type TaskBody } from './state.js';
import { flush, switchMm } from './tlb.js';

/** Linux's initial stack area (setup_arg_pages expands it by 128 KiB). */
const STACK_INITIAL = 128 * 1024;

/** The first user task (init), with an empty address space, on the least busy vCPU. */
export function spawn(k: KernelState, name: string, body: (t: Task) => TaskBody): Task {
  const t = new Task(k.nextPid++, newMm(k), pickVcpu(k), name);
  t.mm.expected = k.opts.verify ? new Map() : null;
  k.counters.processes++;
  enqueue(k, t, body);
  return t;
}

/** fork(): a copy of the parent's address space, private pages shared copy-on-write. */
export function fork(k: KernelState, parent: Task, name: string, body: (t: Task) => TaskBody): Task {
  enterSyscall(k, 'fork');
  const pm = parent.mm;
  const mm = newMm(k);
  mm.vmas = pm.vmas.map((a) => ({ ...a }));
  mm.brkStart = pm.brkStart;
  mm.brk = pm.brk;
  mm.mmapTop = pm.mmapTop;
  mm.expected = pm.expected === null ? null : new Map(pm.expected);
  let wrprotected = false;
  for (const a of pm.vmas) {
    // Like Linux (vma_needs_copy), read-only file mappings without private copies are not copied: the child refaults them.
    if (a.file >= 0 && (a.prot & PROT_W) === 0 && a.anon !== true) continue;
    const cow = (a.prot & PROT_W) !== 0;
    forEachPresent(
      k,
      pm,
      a.start,
      a.end,
      (leaf, i, va) => {
        readEntry(k, leaf, i);
        const e = lastEntry(k);
        let lo = e.lo;
        if (cow && (lo & PTE_RW) !== 0) {
          lo &= ~PTE_RW;
          writeEntry(k, leaf, i, e.hi, lo >>> 0);
          wrprotected = true;
        }
        const child = leafFor(k, mm, va) as TableNode;
        // The child's copy starts old (pte_mkold), as in Linux's copy_present_pte.
        const clo = (lo & ~PTE_A) >>> 0;
        writeEntry(k, child, i, k.layout.entrySize === 8 ? e.hi : 0, clo);
        child.mark(i, true);
        getPage(k, e.gfn);
        mm.rss++;
      },
      (node, i, va) => {
        // A huge page: share it write-protected.
        const first = (node.kids as Array<TableNode | number | null>)[i] as number;
        readEntry(k, node, i);
        const e = lastEntry(k);
        const lo = cow ? (e.lo & ~PTE_RW) >>> 0 : e.lo;
        if (lo !== e.lo) {
          writeEntry(k, node, i, e.hi, lo);
          wrprotected = true;
        }
        const cnode = tableAt(k, mm, va, node.level) as TableNode;
        writeEntry(k, cnode, i, e.hi, lo);
        (cnode.kids as Array<TableNode | number | null>)[i] = first;
        cnode.used++;
        k.frames.getHuge(first);
        mm.rss += FRAMES_PER_HUGE;
      },
    );
  }
  if (wrprotected) flush(k, pm, -1, 0);
  const t = new Task(k.nextPid++, mm, pickVcpu(k), name);
  k.counters.processes++;
  enqueue(k, t, body);
  return t;
}

/** A new thread of `parent` (shares its address space), placed on the least busy vCPU. */
export function clone(k: KernelState, parent: Task, name: string, body: (t: Task) => TaskBody): Task {
  enterSyscall(k, 'clone');
  parent.mm.users++;
  const t = new Task(k.nextPid++, parent.mm, pickVcpu(k), name);
  k.counters.threads++;
  enqueue(k, t, body);
  return t;
}

/** exit(): tear the address space down (if this was its last user) and wake the parent. */
export function exit(k: KernelState, t: Task): void {
  if (t.state === 'dead') return;
  enterSyscall(k, 'exit');
  t.state = 'dead';
  k.counters.exits++;
  if (k.port.cpu.index !== t.vcpu) k.port.selectCpu(t.vcpu);
  dequeue(k, t);
  const mm = t.mm;
  if (--mm.users === 0) destroyMm(k, mm);
  wakeWaiters(k, t);
}

/** What execve needs of a program: its file and the page counts of its sections. */
export interface ExecImage {
  file: number;
  textPages: number;
  dataPages: number;
  bssPages: number;
  name: string;
}

/**
 * execve(): a fresh address space with the program's text and data (file
 * backed), bss, heap and stack; the arguments are written onto the stack
 * by the kernel; the old address space is torn down.
 */
export function exec(k: KernelState, t: Task, p: ExecImage): void {
  const l = k.layout;
  const areas: Vma[] = [];
  const area = (start: number, pages: number, prot: number, file: number, pgoff: number, name: string): number => {
    const end = start + pages * 4096;
    areas.push({ start, end, prot, file, pgoff, growsDown: false, huge: false, name });
    return end;
  };
  let va = area(l.textBase, p.textPages, PROT_R | PROT_X, p.file, 0, 'text');
  va = area(va, p.dataPages, PROT_R | PROT_W, p.file, p.textPages, 'data');
  va = area(va, p.bssPages, PROT_R | PROT_W, -1, 0, 'bss');
  const stackEnd = l.stackTop;
  areas.push({
    start: stackEnd - STACK_INITIAL,
    end: stackEnd,
    prot: PROT_R | PROT_W,
    file: -1,
    pgoff: 0,
    growsDown: true,
    huge: false,
    name: 'stack',
  });
  execAreas(k, t, areas, va, p.name);
}

/**
 * execve() of a given image: a fresh address space holding `areas` (what
 * the ELF loader mapped: the program, its interpreter, the stack, which must
 * be the grows-down area), the heap starting at `brk`; the arguments are
 * written onto the stack's top page by the kernel; the old address space is
 * torn down.
 */
export function execAreas(k: KernelState, t: Task, areas: readonly Vma[], brk: number, name: string): void {
  enterSyscall(k, 'execve');
  k.counters.execs++;
  const old = t.mm;
  const mm = newMm(k);
  mm.expected = old.expected === null ? null : new Map();
  for (const a of areas) mm.insert({ ...a });
  mm.brkStart = mm.brk = brk;
  const stack = areas.find((a) => a.growsDown);
  if (stack === undefined) throw new Error('guest kernel bug: an executable image without a stack');
  const stackEnd = stack.end;
  // Arguments and environment: the kernel writes them onto the new stack's top page.
  const top = stackEnd - 4096;
  const gfn = allocZeroed(k);
  for (let line = LINES_PER_PAGE - 8; line < LINES_PER_PAGE; line++) {
    const v = (t.pid * 64 + line) >>> 0;
    kwrite(k, gfn * 4096 + line * 64, 8, 0, v);
    mm.expected?.set((top / 4096) * LINES_PER_PAGE + line, v);
  }
  const leaf = leafFor(k, mm, top) as TableNode;
  setPte(k, leaf, top, gfn, userFlags(k, mm.find(top) as Vma, true, true));
  mm.rss++;
  t.mm = mm;
  t.name = name;
  switchMm(k, mm);
  if (--old.users === 0) destroyMm(k, old);
}
