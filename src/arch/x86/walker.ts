/**
 * The page walker: one implementation for every x86 paging format, driven by
 * a WalkFormat (see modes.ts), the way KVM compiles paging_tmpl.h per format.
 * It walks guest tables, shadow tables and P2M tables alike; what it reads
 * from is a PhysicalSpace, so the same code serves guest-physical memory (a
 * guest's own tables), machine memory (shadows) or an imported image.
 *
 * walk() only translates: it finds the leaf or the first not-present /
 * reserved-bit entry, and sums the walk up as a permission word (access.ts).
 * The caller checks rights and, only if the access is allowed, calls
 * commit() to set accessed and dirty flags: a translation that faults sets no
 * flag (scenario spec, semantics 1).
 *
 * Hot path: no allocation, 64-bit entries as two 32-bit halves.
 */

import { PERM_D, PERM_G, PERM_PK_SHIFT, PERM_XD } from './access.js';
import { PF_P, PF_RSVD, PK_SHIFT_HI, PTE_A, PTE_D, PTE_G, XD_HI } from './bits.js';
import type { WalkFormat } from './modes.js';

/** Where paging structures are read from. */
export interface PhysicalSpace {
  /**
   * Words of frame `pfn` (1024 little-endian 32-bit words). A frame that was
   * never written reads as zeros; an unbacked frame reads as all ones (scenario
   * spec, semantics 3). Writes into the returned array of a present entry's
   * frame are how accessed/dirty flags land in memory.
   */
  frameForRead(pfn: number): Uint32Array;
}

/** Where paging structures are read from and their accessed/dirty flags written to. */
export interface DataSpace extends PhysicalSpace {
  /** Frame for a write, or null when the write is discarded (unbacked, ROM). */
  frameForWrite(pfn: number): Uint32Array | null;
}

/** One step of a traced walk (for `umbra translate`). */
export interface WalkStep {
  level: number;
  tablePfn: number; // -1 for a PAE PDPTE register
  index: number;
  lo: number;
  hi: number;
}

/** walk() result for a successful translation (fault reasons are 0 or PF_P|PF_RSVD). */
export const WALK_OK = -1;

/**
 * Base frame of the page a leaf entry maps: bits 51:12 of an 8-byte entry
 * (large pages: above the page size), or for 32-bit paging bits 31:12, and
 * for a 4 MiB page bits 31:22 plus PSE-36 bits 20:13 as address bits 39:32.
 */
export function leafFrame(lo: number, hi: number, wide: boolean, large: boolean, shift: number): number {
  if (wide) return (hi & 0xfffff) * 0x100000 + ((lo >>> 12) & ~((1 << (shift - 12)) - 1));
  if (large) return ((lo >>> 22) << 10) + ((lo >>> 13) & 0xff) * 0x100000;
  return lo >>> 12;
}

/**
 * The permission word (access.ts) of a translation ending at leaf (lo, hi),
 * given the AND of the low halves (`acc`) and the OR of the high halves (`xd`)
 * of every entry the walk used.
 */
export function leafPermission(fmt: WalkFormat, acc: number, xd: number, lo: number, hi: number): number {
  let perm = acc & 6;
  if (fmt.mode.wide && fmt.nxe && (xd & XD_HI) !== 0) perm |= PERM_XD;
  if ((lo & PTE_D) !== 0) perm |= PERM_D;
  if ((lo & PTE_G) !== 0) perm |= PERM_G;
  if (fmt.mode.hasPk) perm |= ((hi >>> PK_SHIFT_HI) & 0xf) << PERM_PK_SHIFT;
  return perm;
}

/** Index of `va` at bit `shift`, for a VA given as two 32-bit halves. */
export function vaIndex(vaHi: number, vaLo: number, shift: number, mask: number): number {
  return (shift >= 32 ? vaHi >>> (shift - 32) : (vaLo >>> shift) | (vaHi << (32 - shift))) & mask;
}

export class Walker {
  /** Result of the last successful walk: leaf page base frame and size. */
  leafPfn = 0;
  pageShift = 12;
  perm = 0;
  /** Level of the entry that ended the last walk (leaf or faulting entry). */
  level = 0;
  /** Raw leaf entry of the last successful walk (low and high halves). */
  leafLo = 0;
  leafHi = 0;
  /** Counters. */
  walks = 0;
  entryReads = 0;
  /** When set, every entry read is appended here. */
  trace: WalkStep[] | null = null;

  /** The last walk's entries: the frame (words) holding each, and the word index of its low half. */
  readonly pathFrame: Uint32Array[] = [];
  readonly pathWord = new Int32Array(8);
  /**
   * The last walk's entries, top first: table frame, index and level of each
   * (after a not-present fault: the entries above the not-present one).
   */
  readonly pathTable = new Float64Array(8);
  readonly pathIndex = new Int32Array(8);
  readonly pathLevel = new Int32Array(8);
  pathLen = 0;
  /** The entry whose reserved bits ended the last walk with PF_RSVD: its table frame and halves. */
  rsvdTable = -1;
  rsvdLo = 0;
  rsvdHi = 0;
  /** For that entry: the AND of the low halves and the OR of the high halves of the entries above it. */
  rsvdAcc = 0;
  rsvdXd = 0;

  /**
   * Translate `va` through the tables rooted at `rootPfn` (or, for PAE, the
   * PDPTE registers `pdpte`: lo/hi pairs, 8 words). Returns WALK_OK, or the
   * reason bits of a #PF: 0 (not present) or PF_P|PF_RSVD.
   */
  walk(
    space: PhysicalSpace,
    fmt: WalkFormat,
    rootPfn: number,
    pdpte: Uint32Array | null,
    vaHi: number,
    vaLo: number,
  ): number {
    this.walks++;
    const mode = fmt.mode;
    const wide = mode.wide;
    let level = mode.topLevel;
    let tablePfn = rootPfn;
    let acc = -1; // AND of low halves: R/W and U/S survive only if set everywhere
    let xd = 0;
    let n = 0;
    if (mode.pdpteRegisters && pdpte !== null) {
      const i = vaLo >>> 30;
      const lo = pdpte[2 * i] as number;
      const hi = pdpte[2 * i + 1] as number;
      if (this.trace) this.trace.push({ level: 3, tablePfn: -1, index: i, lo, hi });
      this.level = 3;
      if ((lo & 1) === 0) return 0;
      // Reserved bits were checked when the register was loaded.
      tablePfn = (hi & 0xfffff) * 0x100000 + (lo >>> 12);
      level = 2;
    }
    for (;;) {
      const idx = vaIndex(vaHi, vaLo, mode.shift[level] as number, mode.indexMask[level] as number);
      const f = space.frameForRead(tablePfn);
      this.entryReads++;
      let lo: number;
      let hi: number;
      let w: number;
      if (wide) {
        w = idx << 1;
        lo = f[w] as number;
        hi = f[w + 1] as number;
      } else {
        w = idx;
        lo = f[w] as number;
        hi = 0;
      }
      if (this.trace) this.trace.push({ level, tablePfn, index: idx, lo, hi });
      this.level = level;
      if ((lo & 1) === 0) {
        this.pathLen = n; // the entries above the not-present one (the shadow fast path builds on them)
        return 0;
      }
      const ps = (lo >>> 7) & 1 & (fmt.largeMask >>> level);
      const r = level * 2 + ps;
      if (((lo & (fmt.rsvdLo[r] as number)) | (hi & (fmt.rsvdHi[r] as number))) !== 0) {
        this.rsvdTable = tablePfn;
        this.rsvdLo = lo;
        this.rsvdHi = hi;
        this.rsvdAcc = acc;
        this.rsvdXd = xd;
        return PF_P | PF_RSVD;
      }
      acc &= lo;
      xd |= hi;
      this.pathFrame[n] = f;
      this.pathTable[n] = tablePfn;
      this.pathIndex[n] = idx;
      this.pathLevel[n] = level;
      this.pathWord[n++] = w;
      if (level === 1 || ps !== 0) {
        const shift = fmt.leafShift[level] as number;
        const pfn = leafFrame(lo, hi, wide, ps !== 0, shift);
        this.leafPfn = pfn;
        this.pageShift = shift;
        this.leafLo = lo;
        this.leafHi = hi;
        this.perm = leafPermission(fmt, acc, xd, lo, hi);
        this.pathLen = n;
        return WALK_OK;
      }
      tablePfn = wide ? (hi & 0xfffff) * 0x100000 + (lo >>> 12) : lo >>> 12;
      level--;
    }
  }

  /**
   * Set the accessed flag in every entry the last successful walk used and,
   * for a write, the dirty flag in the leaf. Entries already flagged are not
   * written (so shared read-only frames, zeros or all-ones, are never touched).
   * The flags are written through `space`, which may refuse: an entry in a
   * ROM frame keeps its flags (scenario spec, semantics 5) while the
   * translation still succeeds.
   */
  commit(write: boolean, space: DataSpace): void {
    const n = this.pathLen;
    for (let i = 0; i < n; i++) {
      const f = this.pathFrame[i] as Uint32Array;
      const w = this.pathWord[i] as number;
      const e = f[w] as number;
      if ((e & PTE_A) === 0) {
        const wf = space.frameForWrite(this.pathTable[i] as number);
        if (wf !== null) wf[w] = e | PTE_A;
      }
    }
    if (write) {
      const f = this.pathFrame[n - 1] as Uint32Array;
      const w = this.pathWord[n - 1] as number;
      const e = f[w] as number;
      if ((e & PTE_D) === 0) {
        const wf = space.frameForWrite(this.pathTable[n - 1] as number);
        if (wf !== null) wf[w] = (wf[w] as number) | PTE_D;
      }
      this.perm |= PERM_D;
    }
  }
}
