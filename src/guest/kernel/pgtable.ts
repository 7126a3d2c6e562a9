/**
 * Page-table manipulation (Linux's pgtable.h, pgalloc and the walkers of
 * mm/memory.c): making entries, reading and writing them through the direct
 * map, allocating tables (pgd_alloc with its kernel half), descending to the
 * table for an address, visiting present entries, splitting a huge page, and
 * freeing tables that map nothing.
 *
 * Rules: tables live only in guest memory and are edited only by
 * writeEntry; the host-side index (TableNode kids and presence bits) is
 * updated beside every write so it always says what the table holds; a table
 * is freed only after its parent entry is cleared and it is all zero; PAE
 * user page directories live as long as their address space.
 */

import { PTE_A, PTE_D, PTE_P, PTE_PS, PTE_RW, PTE_US, XD_HI } from '../../arch/x86/bits.js';
import { entryFrame, entryHi } from '../../arch/x86/entry.js';
import { FRAMES_PER_HUGE } from './frames.js';
import { assertBacked, clearFrame, kread, kwrite } from './kmem.js';
import { spanOf } from './layout.js';
import { Mm, PROT_X, TableNode, type Vma } from './mm.js';
import type { KernelState } from './state.js';
import { flush } from './tlb.js';

function entryGpa(k: KernelState, t: TableNode, i: number): number {
  return t.gfn * 4096 + i * k.layout.entrySize;
}

/** Read entry `i` of `t` (its value is then the port's last read: see lastEntry). */
export function readEntry(k: KernelState, t: TableNode, i: number): void {
  k.counters.pteReads++;
  kread(k, entryGpa(k, t, i), k.layout.entrySize);
}

export function writeEntry(k: KernelState, t: TableNode, i: number, hi: number, lo: number): void {
  k.counters.pteWrites++;
  kwrite(k, entryGpa(k, t, i), k.layout.entrySize, k.layout.entrySize === 8 ? hi : 0, lo);
}

/** An entry pointing at `gfn` with `flags` (low) and `hiFlags` (e.g. XD), as [hi, lo]. */
export function makeEntry(k: KernelState, gfn: number, flags: number, hiFlags: number): [number, number] {
  return [k.layout.entrySize === 8 ? (entryHi(gfn) | hiFlags) >>> 0 : 0, ((gfn << 12) | flags) >>> 0];
}

/** Frame and flags of the last entry read (the value of the port's last read). */
export function lastEntry(k: KernelState): { gfn: number; lo: number; hi: number } {
  const c = k.port.cpu;
  const lo = c.valueLo;
  const hi = k.layout.entrySize === 8 ? c.valueHi : 0;
  return { gfn: entryFrame(lo, hi), lo, hi };
}

/** Flags of an entry pointing at a lower table. PAE PDPTEs take only P. */
export function tableFlags(k: KernelState, level: number, user: boolean): number {
  if (k.layout.mode === 'pae' && level === 0) return PTE_P;
  return PTE_P | PTE_RW | PTE_A | (user ? PTE_US : 0);
}

/** Flags [lo, hi] of a user page in area `a`. */
export function userFlags(k: KernelState, a: Vma, writable: boolean, dirty: boolean): [number, number] {
  const lo = PTE_P | PTE_US | PTE_A | (writable ? PTE_RW : 0) | (dirty ? PTE_D : 0);
  return [lo, k.layout.nx && (a.prot & PROT_X) === 0 ? XD_HI : 0];
}

/** A new, zero table at `level`. */
export function newTable(k: KernelState, level: number): TableNode {
  const leaf = level === k.layout.indexBits.length - 1;
  const { gfn, clean } = k.frames.alloc(true);
  k.counters.tablesAllocated++;
  const n = new TableNode(gfn, level, 2 ** (k.layout.indexBits[level] as number), leaf);
  if (!clean) clearFrame(k, gfn, true);
  return n;
}

/** pgd_alloc: a top table holding the kernel half; PAE preallocates its three user PDs. */
export function newMm(k: KernelState): Mm {
  const l = k.layout;
  const root = newTable(k, 0);
  for (const [i, hi, lo] of k.kernelTop) {
    writeEntry(k, root, i, hi, lo);
    (root.kids as Array<TableNode | number | null>)[i] = (k.initMm.root.kids as Array<TableNode | number | null>)[i] as
      | TableNode
      | number;
  }
  if (l.mode === 'pae') {
    for (let i = 0; i < 3; i++) {
      const pd = newTable(k, 1);
      (root.kids as Array<TableNode | number | null>)[i] = pd;
      const [hi, lo] = makeEntry(k, pd.gfn, PTE_P, 0);
      writeEntry(k, root, i, hi, lo);
    }
  }
  return new Mm(root, l.mmapBase);
}

/**
 * The table at `level` on the path of user address `va`, creating missing
 * tables; null if a huge page maps the path above it. With `walk`, each
 * entry on the way is read first, as a fault handler's walk does.
 */
export function tableAt(k: KernelState, mm: Mm, va: number, level: number, walk = false): TableNode | null {
  let t = mm.root;
  for (let lv = 0; lv < level; lv++) {
    const i = Math.floor(va / (k.spans[lv] as number)) % (k.entries[lv] as number);
    if (walk) readEntry(k, t, i);
    const kids = t.kids as Array<TableNode | number | null>;
    let c = kids[i];
    if (!(c instanceof TableNode)) {
      if (typeof c === 'number') return null;
      c = newTable(k, lv + 1);
      kids[i] = c;
      t.used++;
      const [hi, lo] = makeEntry(k, c.gfn, tableFlags(k, lv, true), 0);
      writeEntry(k, t, i, hi, lo);
    }
    t = c;
  }
  return t;
}

/** The leaf table for a user address (see tableAt). */
export function leafFor(k: KernelState, mm: Mm, va: number, walk = false): TableNode | null {
  return tableAt(k, mm, va, k.entries.length - 1, walk);
}

export function leafIndex(k: KernelState, va: number): number {
  return Math.floor(va / 4096) % (k.entries[k.entries.length - 1] as number);
}

/** Map the page at `va` to `gfn` (never a ballooned frame) in `leaf` with `flags` [lo, hi]. */
export function setPte(k: KernelState, leaf: TableNode, va: number, gfn: number, flags: [number, number]): void {
  assertBacked(k, gfn, 'user mapping');
  const i = leafIndex(k, va);
  const [hi, lo] = makeEntry(k, gfn, flags[0], flags[1]);
  writeEntry(k, leaf, i, hi, lo);
  leaf.mark(i, true);
}

/**
 * Visit present leaf entries (and huge entries) of `mm` in [start, end),
 * splitting huge pages the range covers only in part. A `leafFn` that
 * returns true wants no more entries: the rest of the range is still walked
 * for the splits (they are part of the operation) but no leaf table is
 * scanned and no further entry reported.
 */
export function forEachPresent(
  k: KernelState,
  mm: Mm,
  start: number,
  end: number,
  leafFn: (leaf: TableNode, i: number, va: number) => unknown,
  hugeFn: (node: TableNode, i: number, va: number) => void,
): void {
  const l = k.layout;
  const last = l.indexBits.length - 1;
  let done = false;
  const visit = (t: TableNode, base: number): void => {
    const span = k.spans[t.level] as number;
    if (t.level === last) {
      if (t.used === 0 || done) return;
      const n = k.entries[last] as number;
      for (let i = Math.max(0, Math.floor((start - base) / span)); i < n; i++) {
        const va = base + i * span;
        if (va >= end) break;
        if (t.isPresent(i) && leafFn(t, i, va) === true) {
          done = true;
          return;
        }
      }
      return;
    }
    const kids = t.kids as Array<TableNode | number | null>;
    const top = t.level === 0 ? l.kernelFirstTop : kids.length;
    for (let i = Math.max(0, Math.floor((start - base) / span)); i < top; i++) {
      const va = base + i * span;
      if (va >= end) break;
      let c = kids[i];
      if (typeof c === 'number' && t.level > 0 && (va < start || va + span > end)) c = splitHuge(k, mm, t, i, va);
      if (c instanceof TableNode) visit(c, va);
      else if (typeof c === 'number' && !done) hugeFn(t, i, va);
    }
  };
  visit(mm.root, 0);
}

/**
 * Split a huge page into a table of 4 KiB entries with the same rights
 * (Linux's __split_huge_pmd), when an operation covers only part of it.
 * Other address spaces may keep mapping the block whole.
 */
function splitHuge(k: KernelState, mm: Mm, node: TableNode, i: number, va: number): TableNode {
  const kids = node.kids as Array<TableNode | number | null>;
  const first = kids[i] as number;
  readEntry(k, node, i);
  const e = lastEntry(k);
  const leaf = newTable(k, node.level + 1);
  const lo = (e.lo & 0xfff & ~PTE_PS) >>> 0;
  // Every small frame already carries the block's references (FrameAllocator.allocHuge).
  for (let p = 0; p < FRAMES_PER_HUGE; p++) {
    const [h, l] = makeEntry(k, first + p, lo, e.hi & XD_HI);
    writeEntry(k, leaf, p, h, l);
    leaf.mark(p, true);
  }
  const [th, tl] = makeEntry(k, leaf.gfn, tableFlags(k, node.level, true), 0);
  writeEntry(k, node, i, th, tl);
  kids[i] = leaf;
  flush(k, mm, va, va + spanOf(k.layout, node.level));
  return leaf;
}

/**
 * Free page tables of `mm` under `t` that map nothing in [start, end) and
 * lie outside every area; clear their entries in the parent first so that
 * freed tables are all zero. With `all`, the top table and kernel half go too.
 */
export function freeTables(
  k: KernelState,
  mm: Mm,
  t: TableNode,
  base: number,
  start: number,
  end: number,
  all: boolean,
): boolean {
  const l = k.layout;
  const span = k.spans[t.level] as number;
  if (t.kids !== null) {
    const top = t.level === 0 ? l.kernelFirstTop : t.kids.length;
    for (let i = 0; i < top; i++) {
      const c = t.kids[i];
      if (!(c instanceof TableNode)) continue;
      const va = base + i * span;
      if (va + span <= start || va >= end) continue;
      // PAE keeps its three user PDs for the life of the address space.
      if (l.mode === 'pae' && t.level === 0 && !all) continue;
      if (freeTables(k, mm, c, va, start, end, all)) {
        writeEntry(k, t, i, 0, 0);
        t.kids[i] = null;
        t.used--;
      }
    }
  }
  if (t.level === 0) {
    if (!all) return false;
    for (const [i] of k.kernelTop) writeEntry(k, t, i, 0, 0);
    releaseTable(k, t);
    return true;
  }
  if (t.used !== 0 || mm.covers(base, base + span)) return false;
  releaseTable(k, t);
  return true;
}

function releaseTable(k: KernelState, t: TableNode): void {
  k.frames.put(t.gfn, true);
  k.counters.tablesFreed++;
}
