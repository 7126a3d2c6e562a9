/**
 * Shadow entries from guest entries (Xen 3.0.2, shadow.h:
 * l1pte_propagate_from_guest, l1pte_read_fault, l1pte_write_fault,
 * l2pde_general, l2pde_propagate_from_guest, validate_pte_change,
 * validate_pde_change; shadow32.c: shadow_map_l1_into_current_l2;
 * shadow.c: shadow_map_into_current, validate_entry_change, l2e_rw_fault).
 *
 * Rules this module keeps (the isolation checker tests them):
 *  - a present shadow entry exists only for a guest entry that is present,
 *    free of reserved bits and accessed (a table that discards writes, ROM,
 *    counts as accessed: its flags never change);
 *  - a shadow leaf is writable only if the guest leaf is writable and dirty,
 *    its frame is ram_rw and — except for the entry a write fault is fixing
 *    (l1pte_write_fault) — the frame is no page table and log-dirty mode is
 *    off (l1pte_propagate_from_guest: shadow_mode_log_dirty or
 *    mfn_is_page_table remove _PAGE_RW); rights never exceed guest ∩ P2M;
 *  - a shadow upper entry copies the guest's R/W, U/S and XD. Xen 3.0's
 *    l2pde_general ORed _PAGE_RW into every shadow l2 entry (and set the
 *    guest's accessed flag when it hooked an existing l1 shadow at resync);
 *    both would show the guest something native hardware would not, so
 *    Umbra does neither;
 *  - guest superpages are splintered into fl1 shadows, filled whole when
 *    made (l2e_rw_fault); 1 GiB pages (not in 3.0) into an fl2 of fl1s;
 *  - a new l1 shadow is filled from its guest table at once, the run of
 *    valid entries from 0 and the run from the faulting index on
 *    (shadow_map_l1_into_current_l2's init_table loop): 3.0's prefetch;
 *  - a shadow entry made from a live entry of an out-of-sync page updates
 *    its snapshot (snapshot.ts, follow).
 */
import { PTE_A, PTE_D, PTE_P, PTE_RW, XD_HI } from '../../arch/x86/bits.js';
import { entryHi, entryLo, leafFrame } from '../../arch/x86/entry.js';
import type { WalkFormat } from '../../arch/x86/modes.js';
import { P2M_RAM_RW } from '../../p2m/p2m.js';
import { guestIndex, HI_COPY, hardwareMode, LEAF_COPY_LO, NONLEAF_COPY_LO } from '../shadow/types.js';
import type { ShadowWriter } from './set.js';
import type { Snapshots } from './snapshot.js';
import { T_FL1, T_FL2, type Xen30State, type XenShadow } from './state.js';
import type { ShadowStatus } from './status.js';

/** Where build() put the leaf of the faulting address: its shadow and index. */
export interface LeafSlot {
  sh: XenShadow;
  index: number;
}

export class Propagator {
  /** The entry leaf(), upper() or nonLeaf() computed last (low, high half): a pair per entry would be garbage. */
  readonly entry = new Uint32Array(2);

  constructor(
    private readonly st: Xen30State,
    private readonly set: ShadowWriter,
    private readonly status: ShadowStatus,
    private readonly snaps: Snapshots,
  ) {}

  /** Does guest table frame `gfn` discard writes (ROM), so its entries' A/D flags never change? */
  private flagsFixed(gfn: number): boolean {
    const p2m = this.st.p2m;
    return p2m.lookup(gfn) >= 0 && p2m.lastType !== P2M_RAM_RW;
  }

  /**
   * l1pte_propagate_from_guest (and, with `writeFault`, l1pte_write_fault's
   * shadow half): the shadow leaf for guest leaf (lo, hi) mapping `gfn`.
   */
  leaf(fmt: WalkFormat, gfn: number, lo: number, hi: number, writeFault: boolean): Uint32Array {
    const e = this.entry;
    e[0] = 0;
    e[1] = 0;
    if ((lo & (PTE_P | PTE_A)) !== (PTE_P | PTE_A)) return e;
    if ((lo & (fmt.rsvdLo[2] as number)) !== 0 || (hi & (fmt.rsvdHi[2] as number)) !== 0) return e;
    const st = this.st;
    const mfn = st.p2m.lookup(gfn);
    if (mfn < 0) return e; // MMIO or taken away: every access faults and is emulated (3.0 had no fast path)
    let flags = (lo & LEAF_COPY_LO & ~PTE_RW) | PTE_P | PTE_A;
    if (
      (lo & (PTE_RW | PTE_D)) === (PTE_RW | PTE_D) &&
      st.p2m.lastType === P2M_RAM_RW &&
      (writeFault || !(st.isPageTable(gfn) || st.domain.logDirty.on))
    )
      flags |= PTE_RW | PTE_D;
    e[0] = entryLo(mfn, flags);
    e[1] = entryHi(mfn) | (hi & HI_COPY);
    return e;
  }

  /** l2pde_propagate_from_guest: the upper entry for guest entry (lo, hi) at `level`, toward an existing child only. */
  private upper(sh: XenShadow, i: number, lo: number, hi: number): XenShadow | null {
    const fmt = sh.fmt;
    const level = sh.level;
    const large = ((lo >>> 7) & 1 & (fmt.largeMask >>> level)) !== 0;
    const r = level * 2 + (large ? 1 : 0);
    const e = this.entry;
    e[0] = 0;
    e[1] = 0;
    if ((lo & PTE_P) === 0 || large) return null;
    if ((lo & (fmt.rsvdLo[r] as number)) !== 0 || (hi & (fmt.rsvdHi[r] as number)) !== 0) return null;
    if ((lo & PTE_A) === 0 && !this.flagsFixed(sh.gfn)) return null;
    const child = this.status.lookup(
      fmt,
      level - 1,
      leafFrame(lo, hi, sh.guestWide, false, 12),
      sh.guestWide ? 0 : i & 1,
    );
    if (child === undefined) return null;
    this.nonLeaf(child.smfn, lo, hi);
    return child;
  }

  /** The non-leaf entry toward shadow `smfn` for guest entry (lo, hi), into `entry`. */
  private nonLeaf(smfn: number, lo: number, hi: number): Uint32Array {
    const e = this.entry;
    e[0] = entryLo(smfn, PTE_P | PTE_A | (lo & NONLEAF_COPY_LO));
    e[1] = entryHi(smfn) | (hi & XD_HI);
    return e;
  }

  /**
   * Set by build(): it replaced a present upper entry in a way a TLB or a
   * paging-structure cache may hold (set.setUpper); the caller flushes.
   */
  replaced = false;

  /** Low and high half of the guest entry shadow entry `i` of table shadow `sh` derives from, as memory holds it now. */
  private guestLo(sh: XenShadow, i: number, frame: Uint32Array): number {
    const gi = guestIndex(sh, i);
    return (sh.guestWide ? frame[2 * gi] : frame[gi]) as number;
  }
  private guestHi(sh: XenShadow, i: number, frame: Uint32Array): number {
    return sh.guestWide ? (frame[2 * guestIndex(sh, i) + 1] as number) : 0;
  }

  /**
   * validate_pte_change / validate_pde_change / validate_entry_change:
   * recompute entry `i` of table shadow `sh` from the live guest entry.
   * True if a present entry changed (a TLB may hold it).
   */
  validate(sh: XenShadow, i: number, frame: Uint32Array): boolean {
    const lo = this.guestLo(sh, i, frame);
    const hi = this.guestHi(sh, i, frame);
    if (sh.level === 1) {
      const e = this.leaf(sh.fmt, leafFrame(lo, hi, sh.guestWide, false, 12), lo, hi, false);
      return this.set.setEntry(sh, i, e[0] as number, e[1] as number, null);
    }
    const child = this.upper(sh, i, lo, hi);
    const e = this.entry;
    return this.set.setEntry(sh, i, e[0] as number, e[1] as number, child);
  }

  /**
   * shadow_map_into_current and shadow_set_l1e: build the shadow path of the
   * faulting address from the guest walk just committed (st.walk), every
   * shadow made or found in the hash, and set its leaf (writable when
   * `writeFault` and the guest allows it). The walk succeeded.
   */
  build(fmt: WalkFormat, vaHi: number, vaLo: number, writeFault: boolean): LeafSlot {
    this.replaced = false;
    const st = this.st;
    const w = st.walk;
    const wide = fmt.mode.wide;
    const half = (vaLo >>> 21) & 1; // a 32-bit guest: which 2 MiB half of a 4 MiB range
    let sh: XenShadow | null = null;
    for (let k = 0; k < w.n; k++) {
      const level = w.levelAt(k);
      const table = w.tables[k] as number;
      const index = w.indexAt(k);
      const part = wide ? 0 : level === 2 ? index >>> 8 : index >>> 9;
      const sIndex = wide ? index : level === 2 ? ((index & 255) << 1) | half : index & 511;
      if (sh === null) sh = this.status.get(fmt, level, table, part);
      let lo = w.loAt(k);
      const hi = w.hiAt(k);
      this.snaps.follow(table, index, wide, lo, hi);
      const large = level > 1 && ((lo >>> 7) & 1 & (fmt.largeMask >>> level)) !== 0;
      if (
        ((lo & PTE_A) === 0 || ((level === 1 || large) && (lo & (PTE_D | PTE_RW)) === PTE_RW)) &&
        this.flagsFixed(table)
      )
        lo |= PTE_A | PTE_D;
      if (level === 1) {
        const e = this.leaf(fmt, leafFrame(lo, hi, wide, false, 12), lo, hi, writeFault);
        this.set.setEntry(sh, sIndex, e[0] as number, e[1] as number, null);
        return { sh, index: sIndex };
      }
      if (large) return this.splinter(sh, sIndex, level, lo, hi, vaHi, vaLo, writeFault);
      const childPart = wide ? 0 : half;
      const childGfn = leafFrame(lo, hi, wide, false, 12);
      let child = this.status.lookup(fmt, level - 1, childGfn, childPart);
      if (child === undefined) {
        child = this.status.get(fmt, level - 1, childGfn, childPart);
        if (level === 2) this.initL1(child, (vaLo >>> 12) & 511);
      }
      const e = this.nonLeaf(child.smfn, lo, hi);
      if (this.set.setUpper(sh, sIndex, e[0] as number, e[1] as number, child)) this.replaced = true;
      sh = child;
    }
    throw new Error('xen30: build() on a walk that did not reach a leaf');
  }

  /**
   * The init_table loop of shadow_map_l1_into_current_l2: a new l1 shadow
   * takes the run of valid guest entries from index 0 and the run from the
   * faulting index on, each up to the first that propagates to nothing.
   */
  private initL1(sh: XenShadow, from: number): void {
    const g = this.st.guestSpace.frameForRead(sh.gfn);
    for (let i = 0; i < 512; i++) {
      const lo = this.guestLo(sh, i, g);
      const hi = this.guestHi(sh, i, g);
      const e = this.leaf(sh.fmt, leafFrame(lo, hi, sh.guestWide, false, 12), lo, hi, false);
      if (((e[0] as number) & PTE_P) === 0) {
        if (i < from) {
          i = from - 1;
          continue;
        }
        break;
      }
      this.set.setEntry(sh, i, e[0] as number, e[1] as number, null);
    }
  }

  /**
   * A guest superpage at `level` (entry (lo, hi) at index `sIndex` of `parent`):
   * its fl shadows down to the 4 KiB leaf of the address (l2e_rw_fault).
   */
  private splinter(
    parent: XenShadow,
    sIndex: number,
    level: number,
    lo: number,
    hi: number,
    vaHi: number,
    vaLo: number,
    writeFault: boolean,
  ): LeafSlot {
    const fmt = parent.fmt;
    const wide = fmt.mode.wide;
    const hw = hardwareMode(fmt);
    let first = leafFrame(lo, hi, wide, true, fmt.leafShift[level] as number) + (wide ? 0 : ((vaLo >>> 21) & 1) * 512);
    let up = parent;
    let upIndex = sIndex;
    for (let flLevel = level - 1; ; flLevel--) {
      const { sh, made } = this.status.getFl(fmt, flLevel === 1 ? T_FL1 : T_FL2, first, lo, hi);
      if (made) {
        this.st.counters.superpages_splintered++;
        if (flLevel === 1)
          for (let i = 0; i < 512; i++) {
            const e = this.leaf(fmt, first + i, lo, hi, false);
            this.set.setEntry(sh, i, e[0] as number, e[1] as number, null);
          }
      }
      const e = this.nonLeaf(sh.smfn, lo, hi);
      if (this.set.setUpper(up, upIndex, e[0] as number, e[1] as number, sh)) this.replaced = true;
      const shift = hw.shift[flLevel] as number;
      const idx = ((vaLo >>> shift) | (vaHi << (32 - shift))) & (hw.indexMask[flLevel] as number);
      if (flLevel === 1) {
        const leaf = this.leaf(fmt, first + idx, lo, hi, writeFault);
        this.set.setEntry(sh, idx, leaf[0] as number, leaf[1] as number, null);
        return { sh, index: idx };
      }
      up = sh;
      upIndex = idx;
      first += idx * 512;
    }
  }
}
