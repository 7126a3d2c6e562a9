/**
 * The page walker: one implementation for every paging format, driven by a
 * WalkFormat (modes.ts: a geometry and an entry format), the way KVM
 * compiles paging_tmpl.h for 32-bit, 64-bit and EPT entries. It walks guest
 * tables, shadow tables, P2M tables, and EPT and AMD nested tables alike.
 *
 * The reader: a walk reads its tables from a PhysicalSpace — guest-physical
 * memory (a guest's own tables), machine memory (shadows, the P2M) or an
 * imported image. Given a Stage2 as well, the walk is the first stage of a
 * two-stage (nested) walk: every table frame it names is guest-physical and
 * is first translated through the stage-2 tables (EPT or NPT, also in the
 * space), by this same walker; a stage-2 fault ends the walk.
 *
 * The result: walk() fills a WalkResult the caller owns — every entry read
 * (level, table, index, value, where it lies), each one's stage-2 sub-walk,
 * the leaf's page and permission word, or what ended the walk. walk() only
 * translates; the caller checks rights and, only if the access is allowed,
 * calls result.commit() to set accessed and dirty flags: a translation that
 * faults sets no flag (scenario spec, semantics 1). translateFinal() is the
 * two-stage walk's last step, the stage-2 translation of the page reached.
 *
 * Paging-structure caches (psc.ts): given a WalkCaches, a walk starts
 * below the deepest upper entry cached for its address (4.10.3.2), a stage-2
 * translation is first looked up in the guest-physical TLB, and a stage-2
 * walk starts below its own deepest cached entry. A WalkResult records what
 * the caches served (cachedLevel, via). fillCaches() caches a walk's upper
 * entries once commit() has set their accessed flags.
 *
 * Hot path: no allocation (results are reused; stage-2 sub-results are made
 * once per slot), 64-bit entries as two 32-bit halves.
 */

import { FRAME_AT } from '../../machine/memory.js';
import { PERM_D, PERM_G, PERM_PK_SHIFT, PERM_U, PERM_XD, stage2Allows, stage2Qualification } from './access.js';
import { type AccessKind, PF_P, PF_RSVD, PK_SHIFT_HI, READ, WRITE, XD_HI } from './bits.js';
import { entryFrame, leafFrame } from './entry.js';
import { ENTRY_EPT, type WalkFormat } from './modes.js';
import { type PmlLog, setsStage2Flag } from './pml.js';
import type { LevelCache, UpperCaches, WalkCaches } from './psc.js';

// The walk uses module-local names for these: V8 reads an imported binding
// (or one this module exports) from its cell and checks it at each use, but
// folds a module-local constant into the code (walks: +11%).
const frameAt = FRAME_AT;
const frameOf = entryFrame;
const pageFrameOf = leafFrame;

/** Where paging structures are read from. */
export interface PhysicalSpace {
  /**
   * Words of frame `pfn` (1024 little-endian 32-bit words). A frame that was
   * never written reads as zeros; an unbacked frame reads as all ones (scenario
   * spec, semantics 3). Writes into the returned array of a present entry's
   * frame are how accessed/dirty flags land in memory.
   */
  frameForRead(pfn: number): Uint32Array;
  /**
   * The hot path's frameForRead: the buffer holding frame `pfn`, with the
   * frame's first word at FRAME_AT[0] (machine/memory.ts). Allocates nothing;
   * a space whose frames are standalone arrays returns the array at 0.
   */
  locate(pfn: number): Uint32Array;
}

/** Where paging structures are read from and their accessed/dirty flags written to. */
export interface DataSpace extends PhysicalSpace {
  /** Frame for a write, or null when the write is discarded (unbacked, ROM). */
  frameForWrite(pfn: number): Uint32Array | null;
  /** frameForWrite as locate() gives frameForRead: buffer and FRAME_AT[0], or null. */
  locateForWrite(pfn: number): Uint32Array | null;
}

/** The second stage of a two-stage walk: EPT or NPT tables rooted at `rootPfn`, in the walk's space. */
export interface Stage2 {
  readonly fmt: WalkFormat;
  readonly rootPfn: number;
}

/** walk() outcomes. The fault reasons are #PF reason bits (access.ts, faultError). */
export const WALK_OK = -1;
/** An entry is not present (EPT: none of R/W/X; a stage-2 walk: an EPT violation or #NPF). */
export const WALK_NOT_PRESENT = 0;
/** Reserved bits set (EPT: a misconfiguration, 29.3.3.1, which includes bad R/W/X and memory types). */
export const WALK_RSVD = PF_P | PF_RSVD;
/** A stage-2 walk faulted; the result's stage2* fields say where and how. */
export const WALK_STAGE2 = -2;

/** Stage-2 fault kinds (WalkResult.stage2Fault). */
export const S2_NONE = 0;
/** EPT violation, or NPT #NPF for a not-present entry or refused rights. */
export const S2_VIOLATION = 1;
/** EPT misconfiguration, or NPT #NPF with reserved bits. */
export const S2_MISCONFIG = 2;
/** A page-modification log-full event (SDM vol. 3C, 29.3.6): an EPT A/D flag was due and the PML index was out of range. */
export const S2_PML_FULL = 3;

/** WalkResult.via: how a two-stage walk's table (or final) address was translated. */
export const VIA_WALK = 0;
/** By the combined upper-cache entry the walk started from (its next table's host frame). */
export const VIA_PSC = 1;
/** By the guest-physical TLB. */
export const VIA_NTLB = 2;

/** Most entries one walk reads (5-level paging). */
const MAX_STEPS = 8;
const NO_FRAME = new Uint32Array(0);

/** One step of a walk, as a view (for `umbra translate`). */
export interface WalkStep {
  level: number;
  tablePfn: number; // -1 for a PAE PDPTE register
  index: number;
  lo: number;
  hi: number;
}

/**
 * What one walk found, owned by the caller and reused walk after walk. Steps
 * are the entries read from memory, top first; the last one ended the walk
 * (the leaf, or the entry that faulted). A PAE walk starts at a PDPTE
 * register, recorded apart (pdpteIndex).
 */
export class WalkResult {
  /** WALK_OK, WALK_NOT_PRESENT, WALK_RSVD or WALK_STAGE2. */
  status = WALK_OK;
  /** The format walked (commit() uses its A/D bits). */
  fmt: WalkFormat | null = null;
  /** Level of the entry that ended the walk (3 for a PAE PDPTE register). */
  level = 0;
  /** PAE: the PDPTE register the walk began at (0-3) and its value; -1 when it began in memory. */
  pdpteIndex = -1;
  pdpteLo = 0;
  pdpteHi = 0;
  /** The address walked, and the level of the first entry read from memory. */
  vaHi = 0;
  vaLo = 0;
  top = 0;
  /**
   * Entries read from memory, and of each its table frame (guest-physical in
   * a two-stage walk) and where it lies: the buffer holding its (machine)
   * frame and the index of its low half there (frames are 1024-word aligned
   * in it, so `& 1023` is the index in the frame). A step's level, index and value are derived
   * (levelAt, indexAt, loAt, hiAt): a walk stores only what it cannot
   * recompute, three words a step, on the hot path.
   */
  n = 0;
  readonly tables = new Float64Array(MAX_STEPS);
  readonly frames: Uint32Array[] = Array.from({ length: MAX_STEPS }, () => NO_FRAME);
  readonly words = new Int32Array(MAX_STEPS);
  /**
   * Paging-structure caches: the level of the cached entry the walk started
   * below (0: none; the walk then began at the top), with the AND/OR of
   * rights it held; each step's table's host frame (mfnAt: stored only for
   * steps read through stage 2); and, in a two-stage walk, how each step's table was
   * translated (VIA_*) and how the final address was.
   */
  cachedLevel = 0;
  /** The cached entry's AND of low halves and OR of high halves (valid while cachedLevel > 0): typed, not to box them. */
  readonly cachedRights = Int32Array.of(-1, 0);
  readonly mfns = new Float64Array(MAX_STEPS);
  readonly via = new Uint8Array(MAX_STEPS);
  finalVia = VIA_WALK;
  /** The AND of the low halves and the OR of the high halves of the entries used (after a fault: those above it). */
  acc = -1;
  xd = 0;
  /** After WALK_OK: the page's first 4 KiB frame, its size as a shift, the permission word (access.ts). */
  pfn = 0;
  shift = 12;
  perm = 0;
  /** Two-stage walks: the stage-2 walk of each step's table (sub(k)), and of the final address. */
  private readonly subs: Array<WalkResult | null> = [null, null, null, null, null, null, null, null];
  final: WalkResult | null = null;
  /** A stage-2 fault: its kind, the guest-physical address, and whether it was the final translation (else a table reference). */
  stage2Fault = S2_NONE;
  stage2Gpa = 0;
  stage2Final = false;
  /** The EPT exit qualification or NPT EXITINFO1 low half (access.ts, stage2Qualification). */
  stage2Qual = 0;
  /**
   * Two-stage walks: the first step read through stage 2 — 0 for a nested
   * walk, k after a switching entry (agile paging) at step k-1 — or -1 when
   * every table was a machine frame (no stage 2, or no switching entry met):
   * then the leaf names a machine frame and there is no final translation.
   */
  s2From = -1;

  /** Level of step `k`. */
  levelAt(k: number): number {
    return this.top - k;
  }

  /** Host frame of step `k`'s table: the table frame itself where it was read in one stage (before s2From). */
  mfnAt(k: number): number {
    return this.s2From < 0 || k < this.s2From ? (this.tables[k] as number) : (this.mfns[k] as number);
  }

  /** Index of step `k`'s entry in its table. */
  indexAt(k: number): number {
    const mode = (this.fmt as WalkFormat).mode;
    const level = this.top - k;
    return vaIndex(this.vaHi, this.vaLo, mode.shift[level] as number, mode.indexMask[level] as number);
  }

  /** Low and high half of step `k`'s entry as memory holds it now (commit() may since have set A/D flags). */
  loAt(k: number): number {
    return (this.frames[k] as Uint32Array)[this.words[k] as number] as number;
  }
  hiAt(k: number): number {
    if (!(this.fmt as WalkFormat).mode.wide) return 0;
    return (this.frames[k] as Uint32Array)[(this.words[k] as number) + 1] as number;
  }

  /** The stage-2 sub-walk of step `k`'s table (made on first use; a table the walk could not read is step n). */
  sub(k: number): WalkResult {
    let s = this.subs[k];
    if (s === null || s === undefined) {
      s = new WalkResult();
      this.subs[k] = s;
    }
    return s;
  }

  /** Low and high half of the entry that ended the walk (the leaf after WALK_OK). */
  get entryLo(): number {
    return this.n === 0 ? this.pdpteLo : this.loAt(this.n - 1);
  }
  get entryHi(): number {
    return this.n === 0 ? this.pdpteHi : this.hiAt(this.n - 1);
  }
  /** Table frame of the entry that ended the walk (-1: a PDPTE register). */
  get entryTable(): number {
    return this.n === 0 ? -1 : (this.tables[this.n - 1] as number);
  }

  /** Every step, register first, as views (allocates: for inspection, not the hot path). */
  steps(): WalkStep[] {
    const out: WalkStep[] = [];
    if (this.pdpteIndex >= 0) {
      out.push({ level: 3, tablePfn: -1, index: this.pdpteIndex, lo: this.pdpteLo, hi: this.pdpteHi });
    }
    for (let k = 0; k < this.n; k++) {
      out.push({
        level: this.levelAt(k),
        tablePfn: this.tables[k] as number,
        index: this.indexAt(k),
        lo: this.loAt(k),
        hi: this.hiAt(k),
      });
    }
    return out;
  }

  /**
   * Set the accessed flag in every entry a successful walk used and, for a
   * write, the dirty flag in the leaf (the format's bits; a format without
   * them, such as EPT with A/D off, is not written). Entries already flagged
   * are not written, so shared read-only frames (zeros, all ones) are never
   * touched. The flags are written through `space` by table frame, which may
   * refuse: an entry in a ROM frame keeps its flags (scenario spec,
   * semantics 5) while the translation still succeeds. With `space` null
   * they are written where the walk read them (stage-2 tables, which the
   * hypervisor owns outright).
   */
  commit(write: boolean, space: DataSpace | null, from = 0): void {
    const fmt = this.fmt as WalkFormat;
    const a = fmt.accessedBit;
    const n = this.n;
    if (a !== 0) {
      for (let i = 0; i < n; i++) {
        const f = this.frames[i] as Uint32Array;
        const w = this.words[i] as number;
        const e = f[w] as number;
        if ((e & a) === 0) {
          // Steps before `from` (agile paging: the shadow part of a switched walk) are machine frames, flagged in place.
          if (space === null || i < from) f[w] = e | a;
          else {
            const wf = space.locateForWrite(this.tables[i] as number);
            if (wf !== null) wf[(frameAt[0] as number) + (w & 1023)] = e | a;
          }
        }
      }
    }
    if (write) {
      const d = fmt.dirtyBit;
      if (d !== 0) {
        const f = this.frames[n - 1] as Uint32Array;
        const w = this.words[n - 1] as number;
        const e = f[w] as number;
        if ((e & d) === 0) {
          if (space === null || n - 1 < from) f[w] = e | d;
          else {
            const wf = space.locateForWrite(this.tables[n - 1] as number);
            if (wf !== null) {
              const at = (frameAt[0] as number) + (w & 1023);
              wf[at] = (wf[at] as number) | d;
            }
          }
        }
      }
      this.perm |= PERM_D;
    }
  }
}

/**
 * The permission word (access.ts) of a translation ending at leaf (lo, hi),
 * given the AND of the low halves (`acc`) and the OR of the high halves (`xd`)
 * of every entry the walk used. A format without a dirty flag reads as dirty.
 */
export function leafPermission(fmt: WalkFormat, acc: number, xd: number, lo: number, hi: number): number {
  // Bits that vary entry by entry are moved without a branch (`(x | -x) >>> 31`: 1 when x is not 0): walks mispredict them.
  let perm = acc & fmt.rightsLo;
  if (fmt.xd) perm |= ((xd & XD_HI) >>> 31) * PERM_XD;
  const d = lo & fmt.dirtyBit;
  perm |= fmt.dirtyBit === 0 ? PERM_D : ((d | -d) >>> 31) * PERM_D;
  const g = lo & fmt.globalBit;
  perm |= ((g | -g) >>> 31) * PERM_G;
  if (fmt.pk) perm |= ((hi >>> PK_SHIFT_HI) & 0xf) << PERM_PK_SHIFT;
  return perm;
}

/** Index of `va` at bit `shift`, for a VA given as two 32-bit halves. */
export function vaIndex(vaHi: number, vaLo: number, shift: number, mask: number): number {
  // Arithmetic shifts: the mask drops the sign bits, and an int32 (not a uint32, which V8 holds as a double) stays in a register.
  return (shift >= 32 ? vaHi >> (shift - 32) : (vaLo >>> shift) | (vaHi << (32 - shift))) & mask;
}

/** The walk's names for these two exports (see frameAt above). */
const indexOf = vaIndex;
const permissionOf = leafPermission;

export class Walker {
  /** Counters: walks (stage-2 sub-walks included) and entries read. */
  walks = 0;
  entryReads = 0;
  /** Entries read by stage-2 walks (included in entryReads): the second dimension of 2-D walks. */
  stage2Reads = 0;
  /** The vCPU's page-modification log while PML is enabled (pml.ts); null: PML off. */
  pml: PmlLog | null = null;
  /** The caches of the two-stage walk in progress (for its stage-2 translations). */
  private caches: WalkCaches | null = null;

  /**
   * Translate `va` through the tables rooted at `rootPfn` (or, for PAE, the
   * PDPTE registers `pdpte`: lo/hi pairs, 8 words) into `out`. With `stage2`,
   * table frames are guest-physical and translated through it first. With
   * `caches` (a hardware walk), its paging-structure caches are used (not
   * filled: fillCaches()). With `stage2` and a `switchBit` (agile paging, a
   * proposed extension: Gandhi et al., ISCA 2016), the walk starts in
   * machine frames (shadow tables) and stage 2 applies only below the first
   * present non-leaf entry with that bit set, whose address is then the
   * guest-physical address of the next table (out.s2From says where); such a
   * walk uses no paging-structure caches (an entry would have to record
   * where its walk switched). Returns out.status: WALK_OK, WALK_NOT_PRESENT,
   * WALK_RSVD or WALK_STAGE2.
   */
  walk(
    space: PhysicalSpace,
    fmt: WalkFormat,
    rootPfn: number,
    pdpte: Uint32Array | null,
    vaHi: number,
    vaLo: number,
    out: WalkResult,
    stage2: Stage2 | null = null,
    caches: WalkCaches | null = null,
    switchBit = 0,
  ): number {
    this.caches = caches;
    const upper = caches === null || switchBit !== 0 ? null : caches.upper;
    out.vaHi = vaHi;
    out.vaLo = vaLo;
    return this.walkIn(
      space,
      fmt,
      rootPfn,
      pdpte,
      vaHi | 0,
      vaLo | 0,
      out,
      stage2,
      upper,
      caches === null ? 0 : caches.pcid,
      switchBit,
    );
  }

  /**
   * walk() proper. The caller stores out.vaHi/vaLo and passes them as int32
   * (`| 0`), the walk using them only in bit operations: a uint32 of 2^31 or
   * more passed to a call that is not inlined is a heap number, one per walk.
   */
  private walkIn(
    space: PhysicalSpace,
    fmt: WalkFormat,
    rootPfn: number,
    pdpte: Uint32Array | null,
    vaHi: number,
    vaLo: number,
    out: WalkResult,
    stage2: Stage2 | null,
    upper: UpperCaches | null,
    pcid: number,
    switchBit = 0,
  ): number {
    this.walks++;
    const mode = fmt.mode;
    const wide = mode.wide;
    let level = mode.topLevel;
    let tablePfn = rootPfn;
    let acc = -1; // AND of low halves: rights survive only if set everywhere
    let xd = 0;
    let n = 0;
    const present = fmt.presentMask;
    const rsvdLo = fmt.rsvdLo;
    const rsvdHi = fmt.rsvdHi;
    const badRwx = fmt.badRwx;
    const psShift = fmt.psShift;
    const largeMask = fmt.largeMask;
    out.fmt = fmt;
    out.pdpteIndex = -1;
    // Agile: machine frames until a switching entry; otherwise stage 2 (if any) from the root.
    let s2 = switchBit === 0 ? stage2 : null;
    out.s2From = s2 === null ? -1 : 0;
    if (mode.pdpteRegisters && pdpte !== null) {
      const i = vaLo >>> 30;
      const lo = pdpte[2 * i] as number;
      const hi = pdpte[2 * i + 1] as number;
      out.pdpteIndex = i;
      out.pdpteLo = lo;
      out.pdpteHi = hi;
      // Reserved bits were checked when the register was loaded.
      if ((lo & present) === 0) return this.end(out, WALK_NOT_PRESENT, 3, 0, acc, xd);
      tablePfn = frameOf(lo, hi);
      level = 2;
    }
    // The deepest cached upper entry for this address: start below it.
    let skipMfn = -1;
    out.cachedLevel = 0;
    if (upper !== null) {
      const hit = upper.lookup(mode, level, vaHi, vaLo, pcid);
      if (hit !== 0) {
        const c = upper.levels[hit] as LevelCache;
        const i = upper.hitSlot;
        out.cachedLevel = hit;
        level = hit - 1;
        tablePfn = c.next[i] as number;
        skipMfn = c.mfn[i] as number;
        acc = c.acc[i] as number;
        xd = c.xd[i] as number;
        const cr = out.cachedRights;
        cr[0] = acc;
        cr[1] = xd;
      }
    }
    out.top = level;
    // Each level's index starts `step` bits below the one above, and only a top level can have a narrower index (PAE's PDPT).
    let shift = mode.shift[level] as number;
    let mask = mode.indexMask[level] as number;
    const step = (mode.shift[2] as number) - (mode.shift[1] as number);
    const lowMask = mode.indexMask[1] as number;
    const tables = out.tables;
    const frames = out.frames;
    const words = out.words;
    for (;;) {
      const idx = indexOf(vaHi, vaLo, shift, mask);
      const w = wide ? idx << 1 : idx;
      let f: Uint32Array;
      if (s2 === null) {
        // One stage: the table frame is the host frame (mfnAt), not stored twice.
        f = space.locate(tablePfn);
      } else if (skipMfn >= 0) {
        // A combined cache entry gave this table's host frame (29.4.1).
        f = space.locate(skipMfn);
        out.mfns[n] = skipMfn;
        out.via[n] = VIA_PSC;
        skipMfn = -1;
      } else {
        // SDM 29.3.3.2: with EPT A/D on, guest paging-structure accesses count as writes.
        const s2f = s2.fmt;
        const access = s2f.kind === ENTRY_EPT && s2f.accessedBit !== 0 ? WRITE : READ;
        const sub = out.sub(n);
        const mfn = this.stage2Frame(space, s2, out, sub, tablePfn * 4096 + w * 4, access, false, false);
        if (mfn < 0) return this.end(out, WALK_STAGE2, level, n, acc, xd);
        out.via[n] = sub.n === 0 && sub.status === WALK_OK ? VIA_NTLB : VIA_WALK;
        out.mfns[n] = mfn;
        f = space.locate(mfn);
      }
      // The entry's word in the buffer holding its frame (a slab of machine memory, frames 1024-word aligned).
      const at = (frameAt[0] as number) + w;
      const lo = f[at] as number;
      const hi = wide ? (f[at + 1] as number) : 0;
      tables[n] = tablePfn;
      // Mostly the same buffer walk after walk: skip the store (and its write barrier) then.
      if (frames[n] !== f) frames[n] = f;
      words[n++] = at;
      if ((lo & present) === 0) return this.end(out, WALK_NOT_PRESENT, level, n, acc, xd);
      const ps = (lo >>> psShift) & 1 & (largeMask >>> level);
      const r = level * 2 + ps;
      if (
        ((lo & (rsvdLo[r] as number)) | (hi & (rsvdHi[r] as number))) !== 0 ||
        (badRwx !== 0 && ((badRwx >>> (lo & 7)) & 1) !== 0)
      ) {
        return this.end(out, WALK_RSVD, level, n, acc, xd);
      }
      if (level === 1 || ps !== 0) {
        const badMt = fmt.badMemType;
        if (badMt !== 0 && ((badMt >>> ((lo >>> 3) & 7)) & 1) !== 0) return this.end(out, WALK_RSVD, level, n, acc, xd);
        acc &= lo;
        xd |= hi;
        const shift = fmt.leafShift[level] as number;
        out.pfn = pageFrameOf(lo, hi, wide, ps !== 0, shift);
        out.shift = shift;
        out.perm = permissionOf(fmt, acc, xd, lo, hi);
        return this.end(out, WALK_OK, level, n, acc, xd);
      }
      acc &= lo;
      xd |= hi;
      tablePfn = wide ? frameOf(lo, hi) : lo >>> 12;
      if (s2 === null && (lo & switchBit) !== 0 && stage2 !== null) {
        s2 = stage2;
        out.s2From = n;
      }
      level--;
      shift -= step;
      mask = lowMask;
    }
  }

  private end(out: WalkResult, status: number, level: number, n: number, acc: number, xd: number): number {
    this.entryReads += n;
    out.status = status;
    out.level = level;
    out.n = n;
    out.acc = acc;
    out.xd = xd;
    if (status !== WALK_STAGE2 && out.stage2Fault !== S2_NONE) out.stage2Fault = S2_NONE;
    return status;
  }

  /**
   * Cache the upper entries a successful walk read (after its commit(): SDM
   * 4.10.3.1 caches an entry only once its accessed flag is 1; a format with
   * no accessed flag, EPT with A/D off, has none to wait for). Only the
   * levels below the entry the walk started from are new: those above it are
   * cached already.
   */
  fillCaches(out: WalkResult, upper: UpperCaches, pcid: number): void {
    const fmt = out.fmt as WalkFormat;
    const mode = fmt.mode;
    const a = fmt.accessedBit;
    const cached = out.cachedLevel !== 0;
    let acc = cached ? (out.cachedRights[0] as number) : -1;
    let xd = cached ? (out.cachedRights[1] as number) : 0;
    for (let k = 0, last = out.n - 1; k < last; k++) {
      const lo = out.loAt(k);
      if ((lo & a) !== a) return;
      acc &= lo;
      xd |= out.hiAt(k);
      upper.fill(
        mode,
        out.top - k,
        out.vaHi | 0,
        out.vaLo | 0,
        pcid,
        out.tables[k + 1] as number,
        out.mfnAt(k + 1),
        acc,
        xd,
      );
    }
  }

  /**
   * The last step of a two-stage walk: after `out` (a first-stage walk with
   * `stage2`) ended WALK_OK and the access passed the first stage's rights
   * check, translate the guest-physical address it reached for `access`.
   * Returns the machine frame of `va`'s 4 KiB page, or -1 with out.status
   * WALK_STAGE2 and the fault in out.stage2*. The sub-walk is out.final.
   */
  translateFinal(
    space: PhysicalSpace,
    stage2: Stage2,
    out: WalkResult,
    vaHi: number,
    vaLo: number,
    access: AccessKind,
    caches: WalkCaches | null = null,
  ): number {
    this.caches = caches;
    let fin = out.final;
    if (fin === null) {
      fin = new WalkResult();
      out.final = fin;
    }
    const within = ((vaLo >>> 12) | (vaHi << 20)) & ((1 << (out.shift - 12)) - 1);
    const gpa = (out.pfn + within) * 4096 + (vaLo & 0xfff);
    const user = (out.perm & PERM_U) !== 0;
    const mfn = this.stage2Frame(space, stage2, out, fin, gpa, access, user, true);
    if (mfn < 0) out.status = WALK_STAGE2;
    else out.finalVia = fin.n === 0 ? VIA_NTLB : VIA_WALK;
    return mfn;
  }

  /**
   * Before a two-stage walk `out` sets the guest's accessed and dirty flags
   * (`write`: the leaf's dirty flag too): those updates are data writes to
   * the guest's tables as far as stage 2 is concerned (SDM vol. 3C,
   * 29.3.3.2; with EPT A/D on every table reference was one already). Each
   * table whose entry gets a flag and whose stage-2 translation was not
   * walked for a write is translated again for one. Returns false after
   * recording the stage-2 fault (a write-protected table: log-dirty, ROM).
   */
  flagWrites(space: PhysicalSpace, stage2: Stage2, out: WalkResult, write: boolean): boolean {
    const fmt = out.fmt as WalkFormat;
    const s2 = stage2.fmt;
    if (s2.kind === ENTRY_EPT && s2.accessedBit !== 0) return true;
    const a = fmt.accessedBit;
    const n = out.n;
    // Agile paging: steps before s2From are shadow tables in machine frames, not the guest's.
    for (let k = Math.max(out.s2From, 0); k < n; k++) {
      const lo = out.loAt(k);
      if ((lo & a) !== 0 && !(write && k === n - 1 && (lo & fmt.dirtyBit) === 0)) continue;
      const sub = out.sub(k);
      // A table reached through a combined cache entry had no stage-2 translation in this walk: its sub is stale.
      if (out.via[k] !== VIA_PSC && stage2Allows(s2, sub.perm, WRITE, false)) continue;
      const gpa = (out.tables[k] as number) * 4096 + ((out.words[k] as number) & 1023) * 4;
      if (this.stage2Frame(space, stage2, out, sub, gpa, WRITE, false, false) < 0) return false;
    }
    return true;
  }

  /**
   * Translate guest-physical `gpa` through `stage2` into `sub` for `access`,
   * setting the stage-2 A/D flags it uses. Returns the 4 KiB machine frame, or
   * -1 after recording the stage-2 fault in `out`.
   */
  private stage2Frame(
    space: PhysicalSpace,
    stage2: Stage2,
    out: WalkResult,
    sub: WalkResult,
    gpa: number,
    access: AccessKind,
    user: boolean,
    final: boolean,
  ): number {
    const fmt = stage2.fmt;
    const caches = this.caches;
    const ntlb = caches === null ? null : caches.ntlb;
    const gfn = Math.floor(gpa / 4096);
    if (ntlb !== null) {
      // The guest-physical TLB: a hit whose rights allow the access (a write
      // needs a cached dirty flag) stands for the whole stage-2 walk.
      const i = ntlb.find(gfn);
      if (i >= 0) {
        const perm = ntlb.hitPerm;
        if (stage2Allows(fmt, perm, access, user) && (access !== WRITE || (perm & PERM_D) !== 0)) {
          ntlb.touch(i);
          const shift = ntlb.hitShift;
          sub.fmt = fmt;
          sub.status = WALK_OK;
          sub.n = 0;
          sub.cachedLevel = 0;
          sub.perm = perm;
          sub.shift = shift;
          sub.pfn = ntlb.hitMfn - (gfn & ((1 << (shift - 12)) - 1));
          return ntlb.hitMfn;
        }
        ntlb.misses++; // cached, but not for this access: walk
      }
    }
    // A guest-physical address wider than the stage-2 tables can name (48
    // bits with 4 levels) never aliases a lower one: Umbra reports it as a
    // not-present stage-2 entry (a violation / #NPF), which a pager emulates.
    const s2upper = caches === null ? null : caches.stage2;
    let r: number;
    if (gpa < 2 ** fmt.mode.vaBits) {
      const hi = Math.floor(gpa / 0x100000000);
      sub.vaHi = hi;
      sub.vaLo = gpa >>> 0;
      r = this.walkIn(space, fmt, stage2.rootPfn, null, hi | 0, gpa | 0, sub, null, s2upper, 0);
    } else r = this.end(sub, WALK_NOT_PRESENT, fmt.mode.topLevel, 0, -1, 0);
    this.stage2Reads += sub.n;
    let status = r;
    if (r === WALK_OK) {
      if (stage2Allows(fmt, sub.perm, access, user)) {
        const write = access === WRITE;
        const pml = this.pml;
        if (pml !== null && setsStage2Flag(sub, fmt, write)) {
          // SDM 29.3.6: the index is checked before any EPT A/D update; a D flag set 0 -> 1 logs the GPA.
          if (pml.full) {
            pml.fullEvents++;
            out.stage2Fault = S2_PML_FULL;
            out.stage2Gpa = gpa;
            out.stage2Final = final;
            out.stage2Qual = 0;
            return -1;
          }
          if (write && (sub.loAt(sub.n - 1) & fmt.dirtyBit) === 0) pml.log(gpa);
        }
        sub.commit(write, null);
        const mfn = sub.pfn + (gfn & ((1 << (sub.shift - 12)) - 1));
        if (caches !== null) {
          if (s2upper !== null) this.fillCaches(sub, s2upper, 0);
          if (ntlb !== null) ntlb.fill(gfn, mfn, sub.perm, sub.shift, fmt.mode.topLevel - sub.level + 1);
        }
        return mfn;
      }
      status = PF_P; // present, but the rights refuse the access
    }
    out.stage2Fault = status === WALK_RSVD ? S2_MISCONFIG : S2_VIOLATION;
    out.stage2Gpa = gpa;
    out.stage2Final = final;
    out.stage2Qual = stage2Qualification(fmt, status, r === WALK_OK ? sub.perm : 0, access, final);
    return -1;
  }
}
