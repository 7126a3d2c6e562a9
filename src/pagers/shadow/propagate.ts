/**
 * Propagation: shadow entries computed from guest entries (Xen's
 * shadow/multi.c, sh_propagate and friends; KVM's FNAME(fetch)). Builds the
 * shadow path of a faulting address from the guest walk that just
 * succeeded, one format-independent algorithm for every guest mode, and
 * drops derived entries when a guest table is written.
 *
 * Rules this module keeps (the isolation checker tests them):
 *  2. A present shadow entry exists only for a guest entry that is present,
 *     has no reserved bits and has its accessed flag set; a leaf is writable
 *     only if the guest leaf is writable and dirty, the p2m type is ram_rw,
 *     the target frame is not itself a shadowed guest table and (in
 *     log-dirty mode) it is logged dirty. Rights are never more than guest
 *     rights ∩ p2m rights.
 *  3. Every guest frame that has a shadow is mapped read-only in every shadow
 *     (the cache revokes write access when it becomes shadowed), so every
 *     guest write to a guest table traps; it is emulated and the shadow
 *     entries derived from the written entries are recomputed (revalidate,
 *     as Xen's sh_validate_guest_entry).
 *  6. Magic entries (the fast path) hold only what the guest l1 entry says,
 *     never the rights of the path that made them (magic.ts).
 *  - A guest superpage is splintered into fl1 (and, for 1 GiB, fl2) shadows
 *    of 4 KiB entries, as Xen does; with the switch superpages (Umbra's) it
 *    becomes a shadow superpage when the P2M maps its range contiguously and
 *    uniformly and no frame in it is a shadowed guest table (canMapLarge). 32-bit guests run on PAE-format
 *    shadows (Xen's "2-on-3"): a guest page directory is four shadow PDs
 *    (two shadow entries per 4 MiB guest entry), a guest page table two
 *    shadow PTs.
 */
import { PTE_A, PTE_D, PTE_P, PTE_PS, PTE_RW, XD_HI } from '../../arch/x86/bits.js';
import { entryHi, entryLo, leafFrame } from '../../arch/x86/entry.js';
import type { WalkFormat } from '../../arch/x86/modes.js';
import { vaIndex, WALK_OK } from '../../arch/x86/walker.js';
import { ZERO_FRAME } from '../../machine/memory.js';
import { P2M_MMIO, P2M_RAM_RW } from '../../p2m/p2m.js';
import type { ShadowCache } from './cache.js';
import type { DirtyLog } from './logdirty.js';
import { GNP_HI, GNP_LO, MAGIC_GFN_LIMIT, mmioMagicHi, mmioMagicLo } from './magic.js';
import type { LeafSetter, OutOfSync } from './oos.js';
import type { ShadowSet } from './set.js';
import type { ShadowState } from './state.js';
import {
  derivedCount,
  firstDerived,
  guestIndex,
  HI_COPY,
  hardwareMode,
  LEAF_COPY_LO,
  NONLEAF_COPY_LO,
  type Shadow,
} from './types.js';

export class Propagator implements LeafSetter {
  constructor(
    private readonly st: ShadowState,
    private readonly set: ShadowSet,
    private readonly oos: OutOfSync,
    private readonly cache: ShadowCache,
    private readonly dirty: DirtyLog,
  ) {
    oos.bind(this);
  }

  /**
   * Build the shadow path for `va` from the guest walk of the fault in
   * progress (st.walk; guest A/D already committed): every entry it used. Returns the l1 shadow when the walk ended at a
   * not-present l1 entry (for markNotPresent), else null.
   */
  fix(fmt: WalkFormat, vaHi: number, vaLo: number): Shadow | null {
    this.hookup = false;
    this.replaced = false;
    const l1 = this.build(fmt, vaHi, vaLo);
    if (this.replaced) this.set.shootdown();
    // Xen resyncs every out-of-sync page when a fault hooks a shadow in below
    // an l4 or l3 entry (shadow_get_and_create_l3e/l2e, shadow/multi.c): a
    // subtree reachable afresh must not show stale out-of-sync entries.
    if (this.hookup && this.oos.size > 0) this.oos.resyncAll('hookup');
    return l1;
  }

  /** Set by build(): it filled an empty l5, l4 or l3 shadow entry of a 4- or 5-level guest. */
  private hookup = false;
  /** Set by build(): it replaced a present entry above l1 in a way a cache may hold (set.setUpper). */
  private replaced = false;

  /**
   * The last path built down to an l1 shadow: its format, 2 MiB region
   * (vaHi, vaLo >>> 21) and step count, each upper step's guest table and
   * entry, the l1 shadow, and st.epoch after it was built (-1: none).
   */
  private memoEpoch = -1;
  private memoFmt: WalkFormat | null = null;
  private memoVaHi = 0;
  private memoRegion = 0;
  private memoUsed = 0;
  private readonly memoTables = new Float64Array(8);
  private readonly memoEntryLo = new Uint32Array(8);
  private readonly memoEntryHi = new Uint32Array(8);
  private memoL1: Shadow | null = null;

  /**
   * Is the walk in st.walk's path above l1 the memo's, with no shadow made
   * or freed and no upper entry changed since? Then building it again would
   * find every shadow in the cache and change no entry.
   */
  private memoHolds(fmt: WalkFormat, vaHi: number, vaLo: number, used: number): boolean {
    const w = this.st.walk;
    if (
      this.memoEpoch !== this.st.epoch ||
      fmt !== this.memoFmt ||
      used !== this.memoUsed ||
      vaHi !== this.memoVaHi ||
      vaLo >>> 21 !== this.memoRegion
    )
      return false;
    const wide = fmt.mode.wide;
    for (let k = 0; k < used - 1; k++) {
      const g = w.frames[k] as Uint32Array;
      const word = w.words[k] as number;
      if (
        w.tables[k] !== this.memoTables[k] ||
        g[word] !== this.memoEntryLo[k] ||
        (wide && g[word + 1] !== this.memoEntryHi[k])
      )
        return false;
    }
    return true;
  }

  private build(fmt: WalkFormat, vaHi: number, vaLo: number): Shadow | null {
    const st = this.st;
    const cache = this.cache;
    const guestWide = fmt.mode.wide;
    const hw = hardwareMode(fmt);
    // For a 32-bit guest, which 2 MiB half of a 4 MiB guest PDE's range the VA is in.
    const half = (vaLo >>> 21) & 1;
    let sh: Shadow | null = null;
    const w = st.walk;
    // After a not-present fault, the entries above the one that ended the walk.
    const used = w.status === WALK_OK ? w.n : w.n - 1;
    let k = 0;
    // Consecutive faults mostly share their path above l1: skip to the l1 (its lookups counted as the cache's hits).
    const memo = w.status === WALK_OK && this.memoHolds(fmt, vaHi, vaLo, used);
    if (memo) {
      sh = this.memoL1;
      k = used - 1;
      st.counters.shadow_cache_hits += used;
    } else this.memoEpoch = -1;
    for (; k < used; k++) {
      const level = w.levelAt(k);
      const table = w.tables[k] as number;
      const index = w.indexAt(k);
      // Where this guest entry lands in the shadows: the same index, or for a
      // 32-bit guest a quarter of its PD (two shadow entries per guest PDE) or a half of its PT.
      const part = guestWide ? 0 : level === 2 ? index >>> 8 : index >>> 9;
      const sIndex = guestWide ? index : level === 2 ? ((index & 255) << 1) | half : index & 511;
      if (sh === null) sh = cache.get(fmt, level, table, part);
      // The guest entry as it is now in memory (after the A/D commit), where the walk read it.
      const g = w.frames[k] as Uint32Array;
      const word = w.words[k] as number;
      let lo = g[word] as number;
      const hi = guestWide ? (g[word + 1] as number) : 0;
      if (level > 1) {
        this.memoTables[k] = table;
        this.memoEntryLo[k] = lo;
        this.memoEntryHi[k] = hi;
      } else if (!memo) this.remember(fmt, vaHi, vaLo, used, sh);
      const large = level > 1 && ((lo >>> 7) & 1 & (fmt.largeMask >>> level)) !== 0;
      // An entry in a ROM table keeps its flags clear whatever the hardware does
      // (scenario spec, semantics 5): a shadow entry need not wait for them.
      if (
        ((lo & PTE_A) === 0 || ((level === 1 || large) && (lo & (PTE_D | PTE_RW)) === PTE_RW)) &&
        this.flagsFixed(table)
      )
        lo |= PTE_A | PTE_D;
      if (level === 1) {
        this.setLeaf(sh, sIndex, leafFrame(lo, hi, guestWide, false, 12), lo, hi);
        if (st.sw.prefetch > 0) this.prefetch(sh, sIndex, g, word & ~1023);
        this.oos.followSnapshot(table, index, guestWide, lo, hi);
        return null;
      }
      if (!large) {
        const child = cache.get(fmt, level - 1, leafFrame(lo, hi, guestWide, false, 12), guestWide ? 0 : half);
        const f = st.domain.mem.read(sh.smfn);
        const oldLo = f[2 * sIndex] as number;
        if (level >= 3 && fmt.mode.topLevel >= 4 && (oldLo & PTE_P) === 0) this.hookup = true;
        const sLo = nonLeafLo(child.smfn, lo);
        const sHi = nonLeafHi(child.smfn, hi);
        // Most faults find the path above l1 built already: the writer would change nothing.
        if ((oldLo !== sLo || (f[2 * sIndex + 1] as number) !== sHi) && this.set.setUpper(sh, sIndex, sLo, sHi, child))
          this.replaced = true;
        sh = child;
        continue;
      }
      // A guest superpage; a 32-bit guest's 4 MiB page is two 2 MiB halves here.
      const hwShift = hw.shift[level] as number;
      const base = leafFrame(lo, hi, guestWide, true, fmt.leafShift[level] as number) + (guestWide ? 0 : half * 512);
      if (this.canMapLarge(base, 2 ** (hwShift - 12))) {
        // The P2M maps the whole range contiguously and uniformly: one shadow superpage.
        st.counters.superpages_mapped++;
        if (this.set.setUpper(sh, sIndex, largeLeafLo(base, lo), largeLeafHi(base, hi), null)) this.replaced = true;
        return null;
      }
      // Otherwise splinter it into fl shadows of 4 KiB entries.
      st.counters.superpages_splintered++;
      let flLevel = level - 1;
      let parent = sh;
      let parentIndex = sIndex;
      let first = base;
      for (;;) {
        const child = cache.getFl(fmt, flLevel, first, lo, hi);
        if (this.set.setUpper(parent, parentIndex, nonLeafLo(child.smfn, lo), nonLeafHi(child.smfn, hi), child))
          this.replaced = true;
        const shift = hw.shift[flLevel] as number;
        const idx = ((vaLo >>> shift) | (vaHi << (32 - shift))) & (hw.indexMask[flLevel] as number);
        if (flLevel === 1) {
          this.setLeaf(child, idx, first + idx, lo, hi);
          if (st.sw.prefetch > 0) this.prefetchFl(child, idx, first, lo, hi);
          return null;
        }
        parent = child;
        parentIndex = idx;
        first += idx * 2 ** (shift - 12);
        flLevel--;
      }
    }
    // The walk ended above l1 (a not-present l1 entry): the last shadow made is that l1's.
    return sh;
  }

  /** The path above l1 just built (memoTables.. hold its steps) ends at l1 shadow `l1`. */
  private remember(fmt: WalkFormat, vaHi: number, vaLo: number, used: number, l1: Shadow): void {
    this.memoFmt = fmt;
    this.memoVaHi = vaHi;
    this.memoRegion = vaLo >>> 21;
    this.memoUsed = used;
    this.memoL1 = l1;
    this.memoEpoch = this.st.epoch;
  }

  /**
   * The fast path's other half: after a guest walk that ended at a not-present
   * l1 entry, build the shadow path down to that l1 and put a guest-not-present
   * magic entry there, so the next fault on it is classified without a walk.
   * Only if every entry above already has its accessed flag set: a faulting
   * walk sets none, and a shadow entry needs it. Not for a guest l1 that was
   * never written: every entry of it is not present, a walk of it costs
   * nothing, and a shadow of it would cost a frame the guest does not spend.
   */
  markNotPresent(fmt: WalkFormat, vaHi: number, vaLo: number): void {
    const st = this.st;
    const w = st.walk;
    const n = w.n - 1; // the entries above the not-present l1 entry
    if (n !== fmt.mode.topLevel - 1 && !(fmt.mode.pdpteRegisters && n === 1)) return;
    let lo = 0;
    for (let k = 0; k < n; k++) {
      lo = (w.frames[k] as Uint32Array)[w.words[k] as number] as number;
      if ((lo & PTE_A) === 0 || ((lo >>> 7) & 1 & (fmt.largeMask >>> w.levelAt(k))) !== 0) return;
    }
    const hi = fmt.mode.wide ? ((w.frames[n - 1] as Uint32Array)[(w.words[n - 1] as number) + 1] as number) : 0;
    if (st.guestSpace.frameForRead(leafFrame(lo, hi, fmt.mode.wide, false, 12)) === ZERO_FRAME) return;
    const l1 = this.fix(fmt, vaHi, vaLo);
    if (l1 === null) return;
    const gi = vaIndex(vaHi, vaLo, 12, fmt.mode.wide ? 511 : 1023);
    this.set.setEntry(l1, fmt.mode.wide ? gi : gi & 511, GNP_LO, GNP_HI, null);
    if (this.oos.has(l1.gfn)) {
      const g = st.guestSpace.frameForRead(l1.gfn);
      const wide = fmt.mode.wide;
      this.oos.followSnapshot(l1.gfn, gi, wide, g[wide ? 2 * gi : gi] as number, wide ? (g[2 * gi + 1] as number) : 0);
    }
  }

  /**
   * Prefetch: after fixing entry `from` of l1 shadow `sh`, propagate the
   * following guest entries of the same table (up to the window) whose
   * shadow entries are empty — present, accessed ones as mappings, not-present
   * ones as magic entries with the fast path. The guest table is words
   * `base`.. of `g`, as the walk found it (WalkResult.frames and words). Entries with the accessed flag
   * clear stay empty: the hardware would set it, so the first access must trap.
   */
  private prefetch(sh: Shadow, from: number, g: Uint32Array, base: number): void {
    const st = this.st;
    const f = st.domain.mem.read(sh.smfn);
    const rsvdLo = sh.fmt.rsvdLo[2] as number;
    const rsvdHi = sh.fmt.rsvdHi[2] as number;
    // Xen's sh_prefetch: up to the distance, stopping at an entry that is
    // already shadowed (magic ones too) or whose first use would fault again
    // anyway to set an accessed or dirty flag.
    for (let i = from + 1, end = Math.min(512, from + st.sw.prefetch); i < end; i++) {
      if ((f[2 * i] as number) !== 0 || (f[2 * i + 1] as number) !== 0) break;
      const gi = guestIndex(sh, i);
      const lo = sh.guestWide ? (g[base + 2 * gi] as number) : (g[base + gi] as number);
      const hi = sh.guestWide ? (g[base + 2 * gi + 1] as number) : 0;
      if ((lo & PTE_P) !== 0 && ((lo & PTE_A) === 0 || (lo & (PTE_RW | PTE_D)) === PTE_RW)) break;
      if ((lo & PTE_P) !== 0 && ((lo & rsvdLo) !== 0 || (hi & rsvdHi) !== 0)) continue;
      this.setLeaf(sh, i, leafFrame(lo, hi, sh.guestWide, false, 12), lo, hi);
      if (((f[2 * i] as number) & PTE_P) === 0) continue;
      st.counters['prefetch.entries']++;
      this.oos.followSnapshot(sh.gfn, gi, sh.guestWide, lo, hi);
    }
  }

  /** Prefetch in a splintered superpage: the following 4 KiB pieces of the same guest superpage. */
  private prefetchFl(sh: Shadow, from: number, first: number, lo: number, hi: number): void {
    const st = this.st;
    const f = st.domain.mem.read(sh.smfn);
    for (let i = from + 1, end = Math.min(512, from + st.sw.prefetch); i < end; i++) {
      if ((f[2 * i] as number) !== 0 || (f[2 * i + 1] as number) !== 0) break;
      this.setLeaf(sh, i, first + i, lo, hi);
      if (((f[2 * i] as number) & PTE_P) !== 0) st.counters['prefetch.entries']++;
    }
  }

  /** Does guest table frame `gfn` discard writes (ROM), so that its entries' accessed and dirty flags never change? */
  private flagsFixed(gfn: number): boolean {
    const p2m = this.st.p2m;
    return p2m.lookup(gfn) >= 0 && p2m.lastType !== P2M_RAM_RW;
  }

  /**
   * May guest frames [base, base+span) be one shadow superpage? Only when the
   * P2M maps them contiguously (identity placement), all RAM of one type, and
   * none is a shadowed guest table (whose writes must trap).
   */
  canMapLarge(base: number, span: number): boolean {
    // Xen always splinters (fl1 shadows); shadow superpages are Umbra's (switch superpages).
    if (!this.st.sw.superpages || this.dirty.on) return false; // log-dirty: writes are tracked per 4 KiB page
    const domain = this.st.domain;
    const placement = domain.placement;
    if (placement.kind !== 'identity' || base + span > placement.ramFrames) return false;
    if (domain.guest.physmap.anyNotRam(base, span)) return false;
    for (let r = Math.floor(base / 512), end = Math.floor((base + span - 1) / 512); r <= end; r++) {
      if (this.cache.hasShadowedTable(r)) return false;
    }
    return true;
  }

  /**
   * Shadow leaf for guest leaf (lo, hi) mapping guest frame `gfn` (for an fl
   * shadow, (lo, hi) is the guest superpage entry); not present when nothing
   * may be cached.
   */
  setLeaf(sh: Shadow, index: number, gfn: number, lo: number, hi: number): boolean {
    const st = this.st;
    const set = this.set;
    if ((lo & PTE_P) === 0) {
      // Xen makes guest-not-present magic entries only when built without
      // out-of-sync l1s (_sh_propagate, shadow/multi.c); gnp makes them anyway.
      const gnp = st.sw.fastpath && !sh.fl && (!st.sw.oos || st.sw.gnp);
      return gnp ? set.setEntry(sh, index, GNP_LO, GNP_HI, null) : set.setEntry(sh, index, 0, 0, null);
    }
    const p2m = st.p2m;
    const mfn = p2m.lookup(gfn);
    const type = p2m.lastType;
    if ((lo & PTE_A) === 0) return set.setEntry(sh, index, 0, 0, null);
    if (mfn < 0) {
      // MMIO: with the fast path, a magic entry holding the gfn and the leaf's own rights.
      // A frame taken away (p2m invalid) gets none, as in Xen (only p2m_mmio_dm
      // is cached in the shadows, _sh_propagate in shadow/multi.c), so nothing
      // stale is left when it comes back.
      const magic = st.sw.fastpath && type === P2M_MMIO && gfn < MAGIC_GFN_LIMIT;
      if (!magic) return set.setEntry(sh, index, 0, 0, null);
      return set.setEntry(sh, index, mmioMagicLo(gfn, lo), mmioMagicHi(gfn, sh.guestWide ? hi : 0), null);
    }
    let l = (lo & LEAF_COPY_LO & ~PTE_RW) | PTE_P | PTE_A;
    if (
      (lo & PTE_RW) !== 0 &&
      (lo & PTE_D) !== 0 &&
      type === P2M_RAM_RW &&
      !this.oos.writeProtected(gfn) &&
      this.dirty.writableOk(gfn)
    )
      l |= PTE_RW | PTE_D;
    return set.setEntry(sh, index, entryLo(mfn, l), entryHi(mfn) | (hi & HI_COPY), null);
  }

  /**
   * Guest frame `gfn` (a shadowed table) changed at [offset, offset+size)
   * by an emulated or device write: recompute the shadow entries derived
   * from the written guest entries, as Xen's sh_validate_guest_entry does
   * (validate_gl1e .. validate_gl4e, shadow/multi.c). An l1 entry is
   * propagated as a prefetch would (not present until the guest's accessed
   * flag is set, read-only until its dirty flag is); a higher entry links the
   * child's shadow if one exists (get_shadow_status: none is made) and is
   * left empty otherwise, as is a guest superpage (rebuilt at its next fault).
   * Linking an existing shadow below an l4 or l3 entry resyncs every
   * out-of-sync page, as validate_gl4e and validate_gl3e do.
   */
  revalidate(gfn: number, offset: number, size: number): void {
    const st = this.st;
    const list = st.byGfn.get(gfn);
    if (list === undefined) return;
    const g = st.guestSpace.frameForRead(gfn);
    let flush = false;
    let hookup = false;
    // A change may free a shadow of this frame (cache.ts splices it from the
    // list): walk a copy when there are several (most frames have one).
    const several = list.length > 1;
    for (const sh of several ? [...list] : list) {
      if (several && !st.byMfn.has(sh.smfn)) continue; // freed by an earlier shadow's change
      const wide = sh.guestWide;
      const entryBytes = wide ? 8 : 4;
      const fmt = sh.fmt;
      for (
        let gi = Math.floor(offset / entryBytes), last = Math.floor((offset + size - 1) / entryBytes);
        gi <= last;
        gi++
      ) {
        const lo = wide ? (g[2 * gi] as number) : (g[gi] as number);
        const hi = wide ? (g[2 * gi + 1] as number) : 0;
        const level = sh.level;
        const bad = (lo & (fmt.rsvdLo[2 * level] as number)) !== 0 || (hi & (fmt.rsvdHi[2 * level] as number)) !== 0;
        const first = firstDerived(sh, gi);
        for (let i = first, end = first < 0 ? first : first + derivedCount(sh); i < end; i++) {
          st.counters.entries_revalidated++;
          if (level === 1) {
            const target = leafFrame(lo, hi, wide, false, 12);
            if (bad ? this.set.setEntry(sh, i, 0, 0, null) : this.setLeaf(sh, i, target, lo, hi)) flush = true;
            // An out-of-sync page's snapshot follows (validate_gl1e updates it too).
            this.oos.followSnapshot(gfn, gi, wide, lo, hi);
            continue;
          }
          const large = ((lo >>> 7) & 1 & (fmt.largeMask >>> level)) !== 0;
          const child =
            (lo & (PTE_P | PTE_A)) === (PTE_P | PTE_A) && !bad && !large
              ? this.cache.find(fmt, level - 1, leafFrame(lo, hi, wide, false, 12), wide ? 0 : i & 1)
              : undefined;
          const set =
            child === undefined
              ? this.set.setEntry(sh, i, 0, 0, null)
              : this.set.setEntry(sh, i, nonLeafLo(child.smfn, lo), nonLeafHi(child.smfn, hi), child);
          if (set) flush = true;
          if (child !== undefined && level >= 3 && fmt.mode.topLevel >= 4) hookup = true;
        }
      }
    }
    // Only a shadow entry that was present can be cached in a TLB: filling an
    // empty slot (the common case, a guest mapping a new page) needs no flush.
    if (flush) this.set.shootdown();
    if (hookup && this.oos.size > 0) this.oos.resyncAll('hookup');
  }
}

/**
 * Shadow superpage entry for guest superpage (lo, hi) at guest frame `base`
 * (identity: mfn = gfn): low and high half (no pair is allocated per entry).
 */
function largeLeafLo(base: number, lo: number): number {
  let flags = (lo & (LEAF_COPY_LO | 0x1000) & ~PTE_RW) | PTE_P | PTE_A | PTE_PS;
  if ((lo & PTE_RW) !== 0 && (lo & PTE_D) !== 0) flags |= PTE_RW | PTE_D;
  return entryLo(base, (flags & 0xfff) + (lo & 0x1000));
}
function largeLeafHi(base: number, hi: number): number {
  return entryHi(base) | (hi & HI_COPY);
}

/** Shadow non-leaf entry pointing at shadow frame `smfn`, with guest entry (lo, hi)'s rights: low and high half. */
function nonLeafLo(smfn: number, lo: number): number {
  return entryLo(smfn, PTE_P + PTE_A + (lo & NONLEAF_COPY_LO));
}
function nonLeafHi(smfn: number, hi: number): number {
  return (entryHi(smfn) | (hi & XD_HI)) >>> 0;
}
