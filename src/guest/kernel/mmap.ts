/**
 * Areas of an address space (Linux's mm/mmap.c and mprotect.c): the
 * mmap, munmap, mprotect and brk system calls, top-down placement, and
 * unmapping — zap (clear entries, drop pages) and exit_mmap (tear a whole
 * address space down).
 *
 * Rules: areas change first, then entries, then the flush; pages come on
 * demand (nothing is mapped at mmap time); rights are only removed here (a
 * later write fault grants write and breaks COW); tables left empty are freed
 * before the flush; an address space is freed only once no CR3 reaches it.
 */

import { PTE_RW, XD_HI } from '../../arch/x86/bits.js';
import { FRAMES_PER_HUGE, OutOfMemory } from './frames.js';
import { enterSyscall } from './kmem.js';
import { type Mm, PROT_R, PROT_W, PROT_X, TableNode, type Vma } from './mm.js';
import { putPage } from './pages.js';
import { forEachPresent, freeTables, lastEntry, leafFor, leafIndex, readEntry, writeEntry } from './pgtable.js';
import { type KernelState, LINES_PER_PAGE, type Task } from './state.js';
import { dropPcids, flush, onCpusRunning, switchMm } from './tlb.js';
import { forgetRange } from './verify.js';

/** Unmap [start, end) within one area: clear the entries and drop the pages. */
export function zap(k: KernelState, mm: Mm, start: number, end: number): void {
  forEachPresent(
    k,
    mm,
    start,
    end,
    (leaf, i) => {
      readEntry(k, leaf, i);
      const e = lastEntry(k);
      writeEntry(k, leaf, i, 0, 0);
      leaf.mark(i, false);
      putPage(k, e.gfn);
      mm.rss--;
    },
    (node, i) => {
      const first = (node.kids as Array<TableNode | number | null>)[i] as number;
      writeEntry(k, node, i, 0, 0);
      (node.kids as Array<TableNode | number | null>)[i] = null;
      node.used--;
      k.frames.putHuge(first);
      mm.rss -= FRAMES_PER_HUGE;
    },
  );
  forgetRange(mm, start, end);
}

/**
 * exit_mmap: tear down every mapping and table of `mm` and free them. First
 * every vCPU still holding it in CR3 (the exiting one, or one that ran a
 * thread of it and kept it loaded, like Linux's lazy TLB mode) switches to
 * the kernel's own tables: a table must not be freed while a CR3 can reach it.
 */
export function destroyMm(k: KernelState, mm: Mm): void {
  // What Linux's VmPTE shows at exit (mm_pgtables_bytes: every table below the root).
  k.counters.tablesAtExit += countTables(mm.root) - 1;
  k.counters.mmsDestroyed++;
  onCpusRunning(k, mm, () => switchMm(k, k.initMm));
  for (const a of mm.vmas) zap(k, mm, a.start, a.end);
  mm.vmas = [];
  freeTables(k, mm, mm.root, 0, 0, Number.POSITIVE_INFINITY, true);
  dropPcids(k, mm);
}

/** Tables in the tree under `t`, `t` included. */
function countTables(t: TableNode): number {
  let n = 1;
  if (t.kids !== null) for (const c of t.kids) if (c instanceof TableNode) n += countTables(c);
  return n;
}

/** Unmap [start, end) of `mm` whatever areas it holds, free emptied tables, flush. */
function unmapRange(k: KernelState, mm: Mm, start: number, end: number): void {
  for (const a of mm.carve(start, end)) zap(k, mm, a.start, a.end);
  const freed = k.counters.tablesFreed;
  freeTables(k, mm, mm.root, 0, start, end, false);
  flush(k, mm, start, end, k.counters.tablesFreed !== freed);
}

/**
 * mmap(MAP_FIXED) at `start`: what was mapped in [start, start+bytes) is
 * unmapped first, as Linux's mmap_region does; pages come on demand. Replays
 * of captured programs map where the real program's mmap returned.
 */
export function mmapFixed(
  k: KernelState,
  t: Task,
  start: number,
  bytes: number,
  prot: number,
  file: number,
  pgoff: number,
  name: string,
): void {
  enterSyscall(k, 'mmap');
  const mm = t.mm;
  const end = start + Math.ceil(bytes / 4096) * 4096;
  if (mm.covers(start, end)) unmapRange(k, mm, start, end);
  mm.insert({ start, end, prot, file, pgoff, growsDown: false, huge: false, name });
}

/**
 * madvise(MADV_DONTNEED) (Linux's madvise_dontneed_free → zap_page_range):
 * the pages of [start, end) go — entries cleared, frames dropped, the range
 * flushed — while the areas stay; the next touch refaults: zero-filled for
 * anonymous memory, the file's contents for a private file mapping.
 */
export function madviseDontneed(k: KernelState, t: Task, start: number, bytes: number): void {
  enterSyscall(k, 'madvise');
  k.counters.madviseDontneed++;
  const mm = t.mm;
  const end = start + Math.ceil(bytes / 4096) * 4096;
  for (const a of mm.vmas) {
    const s = Math.max(a.start, start);
    const e = Math.min(a.end, end);
    if (s < e) zap(k, mm, s, e);
  }
  flush(k, mm, start, end);
}

/**
 * mremap(): shrink in place (unmapping the tail), grow in place, or move to
 * `to` (Linux's move_vma → move_page_tables): the area goes to its new place
 * and every present entry moves with its frame — nothing is copied — then the
 * old range is flushed and its emptied tables freed. `to` is where the
 * captured call put it (equal to `from` when it stayed).
 */
export function mremap(k: KernelState, t: Task, from: number, oldBytes: number, newBytes: number, to: number): void {
  enterSyscall(k, 'mremap');
  const mm = t.mm;
  const oldLen = Math.ceil(oldBytes / 4096) * 4096;
  const newLen = Math.ceil(newBytes / 4096) * 4096;
  if (to === from) {
    if (newLen < oldLen) unmapRange(k, mm, from + newLen, from + oldLen);
    else if (newLen > oldLen) {
      const a = mm.find(from + oldLen - 1);
      if (a !== undefined) {
        if (mm.covers(from + oldLen, from + newLen)) unmapRange(k, mm, from + oldLen, from + newLen);
        mm.insert({
          ...a,
          start: from + oldLen,
          end: from + newLen,
          pgoff: a.pgoff + (from + oldLen - a.start) / 4096,
        });
      }
    }
    return;
  }
  k.counters.mremapMoves++;
  if (mm.covers(to, to + newLen)) unmapRange(k, mm, to, to + newLen);
  const moving = Math.min(oldLen, newLen);
  // The areas move first (rules above), then the entries.
  const pieces = mm.carve(from, from + oldLen);
  for (const a of pieces) {
    if (a.start >= from + moving) continue;
    const end = Math.min(a.end, from + moving);
    mm.insert({ ...a, start: to + (a.start - from), end: to + (end - from), growsDown: false });
  }
  const last = pieces[pieces.length - 1];
  if (newLen > oldLen && last !== undefined) {
    mm.insert({
      ...last,
      start: to + oldLen,
      end: to + newLen,
      pgoff: last.pgoff + (last.end - last.start) / 4096,
      growsDown: false,
    });
  }
  const moves: Array<[number, number, number]> = [];
  forEachPresent(
    k,
    mm,
    from,
    from + oldLen,
    (leaf, i, va) => {
      readEntry(k, leaf, i);
      const e = lastEntry(k);
      writeEntry(k, leaf, i, 0, 0);
      leaf.mark(i, false);
      if (va < from + moving) moves.push([va - from + to, e.hi, e.lo]);
      else {
        putPage(k, e.gfn);
        mm.rss--;
      }
    },
    () => {
      throw new Error('guest kernel bug: mremap of a huge page (split by forEachPresent)');
    },
  );
  for (const [va, hi, lo] of moves) {
    const leaf = leafFor(k, mm, va) as TableNode;
    const i = leafIndex(k, va);
    writeEntry(k, leaf, i, hi, lo);
    leaf.mark(i, true);
  }
  if (mm.expected !== null) {
    // --verify: what was written moves with the pages.
    const moved: Array<[number, number]> = [];
    for (const [key, v] of mm.expected) {
      const va = Math.floor(key / LINES_PER_PAGE) * 4096;
      if (va >= from && va < from + moving) moved.push([key + ((to - from) / 4096) * LINES_PER_PAGE, v]);
    }
    forgetRange(mm, from, from + oldLen);
    for (const [key, v] of moved) mm.expected.set(key, v);
  }
  const freed = k.counters.tablesFreed;
  freeTables(k, mm, mm.root, 0, from, from + oldLen, false);
  flush(k, mm, from, from + oldLen, k.counters.tablesFreed !== freed);
}

/** mmap(): place an area top-down below the previous ones; pages come on demand. */
export function mmap(
  k: KernelState,
  t: Task,
  bytes: number,
  prot: number,
  file: number,
  pgoff: number,
  name: string,
): number {
  enterSyscall(k, 'mmap');
  const mm = t.mm;
  const len = Math.ceil(bytes / 4096) * 4096;
  // Like Linux, transparent huge pages only where a 2 MiB page exists (x86-64 and PAE).
  const huge = k.opts.thp && k.layout.mode !== '32-bit' && file < 0 && len >= 2 * 2 ** 20;
  // Huge-eligible areas are 2 MiB aligned, as Linux's THP-aware placement does.
  const start = findGap(mm, len, huge ? 2 * 2 ** 20 : 4096);
  mm.insert({ start, end: start + len, prot, file, pgoff, growsDown: false, huge, name });
  return start;
}

/** unmapped_area_topdown: the highest gap below the mmap base that fits `len` at `align`. */
function findGap(mm: Mm, len: number, align: number): number {
  let top = mm.mmapTop;
  for (let i = mm.vmas.length - 1; i >= 0; i--) {
    const a = mm.vmas[i] as Vma;
    if (a.start >= top) continue;
    const start = Math.floor((top - len) / align) * align;
    if (start >= a.end) return start;
    top = Math.min(top, a.start);
  }
  const start = Math.floor((top - len) / align) * align;
  if (start < mm.brk + 2 ** 20) throw new OutOfMemory('out of virtual address space');
  return start;
}

/** munmap(): remove [start, start+bytes), free its pages and empty tables, flush. */
export function munmap(k: KernelState, t: Task, start: number, bytes: number): void {
  enterSyscall(k, 'munmap');
  unmapRange(k, t.mm, start, start + Math.ceil(bytes / 4096) * 4096);
}

/** mprotect(): change the rights of [start, end) and rewrite present entries. */
export function mprotect(k: KernelState, t: Task, start: number, bytes: number, prot: number): void {
  enterSyscall(k, 'mprotect');
  const mm = t.mm;
  const end = start + Math.ceil(bytes / 4096) * 4096;
  const pieces = mm.carve(start, end);
  let changed = false;
  // Only remove rights here; a later write fault grants write access (and breaks COW).
  const restrict = (node: TableNode, i: number): void => {
    readEntry(k, node, i);
    const e = lastEntry(k);
    const lo = (prot & PROT_W) === 0 ? (e.lo & ~PTE_RW) >>> 0 : e.lo;
    const hi = k.layout.nx && (prot & PROT_X) === 0 ? (e.hi | XD_HI) >>> 0 : (e.hi & ~XD_HI) >>> 0;
    if (lo !== e.lo || hi !== e.hi) {
      writeEntry(k, node, i, hi, lo);
      changed = true;
    }
  };
  for (const a of pieces) {
    a.prot = prot;
    mm.insert(a);
    forEachPresent(k, mm, a.start, a.end, restrict, restrict);
  }
  if (changed) flush(k, mm, start, end);
}

/** brk(): move the end of the heap; shrinking unmaps. */
export function brk(k: KernelState, t: Task, newEnd: number): void {
  enterSyscall(k, 'brk');
  const mm = t.mm;
  const end = Math.ceil(newEnd / 4096) * 4096;
  const old = Math.ceil(mm.brk / 4096) * 4096;
  if (end > old) {
    const heap = mm.find(old - 1);
    if (heap !== undefined && heap.name === 'heap') heap.end = end;
    else
      mm.insert({
        start: old,
        end,
        prot: PROT_R | PROT_W,
        file: -1,
        pgoff: 0,
        growsDown: false,
        huge: false,
        name: 'heap',
      });
  } else if (end < old) unmapRange(k, mm, end, old);
  mm.brk = newEnd;
}
