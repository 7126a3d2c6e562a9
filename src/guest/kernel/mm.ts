/**
 * A process's memory descriptor (Linux's mm_struct): its areas (VMAs) and a
 * host-side index of its page tables. The tables themselves are bytes in
 * guest memory, edited only through guest writes; the index records which
 * table frame sits where and which leaf entries are present, like the
 * bookkeeping a kernel keeps in struct page, so teardown and fork visit only
 * what exists instead of reading every empty entry.
 */
export const PROT_R = 1;
export const PROT_W = 2;
export const PROT_X = 4;

export interface Vma {
  start: number;
  end: number;
  prot: number;
  /** File backing: -1 for anonymous memory; else a file id and the page offset of `start`. */
  file: number;
  pgoff: number;
  growsDown: boolean;
  /** Eligible for transparent huge pages. */
  huge: boolean;
  name: string;
  /**
   * A private file mapping that holds private copies (Linux: the VMA has an
   * anon_vma): fork must copy its entries even once it is read-only (RELRO).
   */
  anon?: boolean;
}

/** A page table: its frame, level (0 = top) and children (or, at a leaf, a presence bitmap). */
export class TableNode {
  /** Non-leaf: child tables, or a number = first frame of a huge page mapped by the entry. */
  readonly kids: Array<TableNode | number | null> | null;
  readonly present: Uint32Array | null;
  used = 0;

  constructor(
    readonly gfn: number,
    readonly level: number,
    entries: number,
    leaf: boolean,
  ) {
    this.kids = leaf ? null : new Array(entries).fill(null);
    this.present = leaf ? new Uint32Array(entries >>> 5) : null;
  }

  isPresent(i: number): boolean {
    return (((this.present as Uint32Array)[i >>> 5] as number) & (1 << (i & 31))) !== 0;
  }

  mark(i: number, on: boolean): void {
    const p = this.present as Uint32Array;
    const was = this.isPresent(i);
    if (was === on) return;
    p[i >>> 5] = on ? (p[i >>> 5] as number) | (1 << (i & 31)) : (p[i >>> 5] as number) & ~(1 << (i & 31));
    this.used += on ? 1 : -1;
  }
}

let nextMmId = 1;

export class Mm {
  readonly id = nextMmId++;
  vmas: Vma[] = [];
  brkStart = 0;
  brk = 0;
  /** Next address for top-down mmap placement. */
  mmapTop: number;
  /** Tasks using this mm (threads share one). */
  users = 1;
  /** Bumped at every change that needs a TLB flush; vCPUs catch up lazily (Linux's tlb_gen). */
  tlbGen = 0;
  /** Pages of the process that are present (RSS), for statistics. */
  rss = 0;
  /** Verification: the last value written to each word (vpn * 64 + line). */
  expected: Map<number, number> | null = null;

  constructor(
    readonly root: TableNode,
    mmapTop: number,
  ) {
    this.mmapTop = mmapTop;
  }

  find(va: number): Vma | undefined {
    const v = this.vmas;
    let lo = 0;
    let hi = v.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const a = v[mid] as Vma;
      if (va < a.start) hi = mid - 1;
      else if (va >= a.end) lo = mid + 1;
      else return a;
    }
    return undefined;
  }

  /** The first area at or above `va`. */
  next(va: number): Vma | undefined {
    for (const a of this.vmas) if (a.end > va) return a;
    return undefined;
  }

  insert(a: Vma): void {
    let i = 0;
    while (i < this.vmas.length && (this.vmas[i] as Vma).start < a.start) i++;
    this.vmas.splice(i, 0, a);
  }

  /** Cut [start, end) out of the areas (splitting where needed); returns the removed pieces. */
  carve(start: number, end: number): Vma[] {
    const keep: Vma[] = [];
    const removed: Vma[] = [];
    for (const a of this.vmas) {
      if (a.end <= start || a.start >= end) {
        keep.push(a);
        continue;
      }
      if (a.start < start) keep.push({ ...a, end: start });
      const s = Math.max(a.start, start);
      const e = Math.min(a.end, end);
      removed.push({ ...a, start: s, end: e, pgoff: a.pgoff + (s - a.start) / 4096 });
      if (a.end > end) keep.push({ ...a, start: end, pgoff: a.pgoff + (end - a.start) / 4096 });
    }
    this.vmas = keep;
    return removed;
  }

  /** Is any part of [start, end) covered by an area? */
  covers(start: number, end: number): boolean {
    for (const a of this.vmas) if (a.start < end && a.end > start) return true;
    return false;
  }
}
