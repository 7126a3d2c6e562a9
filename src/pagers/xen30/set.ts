/**
 * The one writer of shadow entries (Xen 3.0.2 wrote them in many places —
 * shadow_set_l1e, __shadow_set_l2e, validate_pte_change, fix_entry — each
 * keeping the counts by hand; here one function keeps them).
 *
 * Rules this module keeps (the isolation checker tests them):
 *  - setEntry() is the only writer of shadow entries: a child's reference
 *    count is the number of present entries pointing at it, plus its pin,
 *    plus the vCPUs running on it and the out-of-sync entries whose
 *    writable PTE lies in it (status.ts and oos.ts take those);
 *  - the writable count of a guest frame (Xen: the PGT_count of a
 *    PGT_writable_page, taken by shadow_get_page_from_l1e) is the number of
 *    present, writable shadow leaves mapping it;
 *  - every present leaf written records itself as its frame's back pointer
 *    (set_guest_back_ptr: the page's tlbflush_timestamp holds the shadow
 *    l1, its PGT_va_mask the index), which write-access removal tries first;
 *  - only a replaced present entry can be held by a TLB: that is what
 *    setEntry() reports, and what callers flush for (shootdown()).
 */
import { PTE_P, PTE_RW, PTE_US, XD_HI } from '../../arch/x86/bits.js';
import { entryFrame } from '../../arch/x86/entry.js';
import type { Xen30State, XenShadow } from './state.js';

/** What the writer needs from the status part above it: dropping the reference a replaced entry held. */
export interface ShadowRef {
  putShadowRef(sh: XenShadow): void;
}

export class ShadowWriter {
  /** Guest frame -> present writable shadow leaves mapping it. */
  private readonly writeRefs = new Map<number, number>();
  /** Guest frame -> the last shadow leaf slot (smfn * 1024 + index) that mapped it. */
  private readonly backPtr = new Map<number, number>();
  private refs: ShadowRef | null = null;

  constructor(private readonly st: Xen30State) {}

  bind(refs: ShadowRef): void {
    this.refs = refs;
  }

  /**
   * setEntry() for an entry above l1 in the fault path; true if what it
   * replaced may be held by a TLB or a paging-structure cache (the caller
   * flushes): a present entry replaced by one naming another frame or with
   * rights not strictly increased (Xen's SHADOW_SET_FLUSH rule, shadow/set.c).
   * It happens when an fl shadow's key (the guest superpage's flags) changed.
   */
  setUpper(sh: XenShadow, index: number, lo: number, hi: number, child: XenShadow | null): boolean {
    const f = this.st.domain.mem.read(sh.smfn);
    const oldLo = f[2 * index] as number;
    const oldHi = f[2 * index + 1] as number;
    const present = (oldLo & PTE_P) !== 0;
    if (!this.setEntry(sh, index, lo, hi, child) || !present) return false;
    if (entryFrame(oldLo, oldHi) !== entryFrame(lo, hi)) return true;
    return (oldLo & ~lo & (PTE_P | PTE_RW | PTE_US)) !== 0 || (hi & ~oldHi & XD_HI) !== 0;
  }

  /** Store (lo, hi) at `index` of `sh`; `child` is the shadow a present upper entry points at. True if a present entry was replaced. */
  setEntry(sh: XenShadow, index: number, lo: number, hi: number, child: XenShadow | null): boolean {
    const st = this.st;
    const f = st.domain.mem.write(sh.smfn);
    const w = 2 * index;
    const oldLo = f[w] as number;
    const oldHi = f[w + 1] as number;
    lo >>>= 0;
    hi >>>= 0;
    if (oldLo === lo && oldHi === hi) return false;
    f[w] = lo;
    f[w + 1] = hi;
    const placement = st.domain.placement;
    // The new entry's reference first: an entry rewritten toward the same child must not free it in between.
    if ((lo & PTE_P) !== 0) {
      if (index < sh.min) sh.min = index;
      if (index > sh.max) sh.max = index;
      if (child !== null) {
        child.refs++;
        child.ups.add(sh.smfn * 1024 + index);
      } else if (sh.level === 1) {
        const g = placement.gfnOf(entryFrame(lo, hi));
        this.backPtr.set(g, sh.smfn * 1024 + index);
        if ((lo & PTE_RW) !== 0) this.writeRefs.set(g, (this.writeRefs.get(g) ?? 0) + 1);
      }
    }
    const oldPresent = (oldLo & PTE_P) !== 0;
    if (oldPresent) {
      const target = entryFrame(oldLo, oldHi);
      if (sh.level > 1) {
        const c = st.byMfn.get(target);
        if (c !== undefined) {
          if (c !== child) c.ups.delete(sh.smfn * 1024 + index);
          (this.refs as ShadowRef).putShadowRef(c);
        }
      } else if ((oldLo & PTE_RW) !== 0) {
        const g = placement.gfnOf(target);
        const n = (this.writeRefs.get(g) ?? 1) - 1;
        if (n === 0) this.writeRefs.delete(g);
        else this.writeRefs.set(g, n);
      }
    }
    return oldPresent;
  }

  /** Present writable shadow leaves mapping `gfn`. */
  writableCount(gfn: number): number {
    return this.writeRefs.get(gfn) ?? 0;
  }

  /** The back pointer of `gfn`: the last shadow leaf slot that mapped it (-1: none). */
  backPointer(gfn: number): number {
    return this.backPtr.get(gfn) ?? -1;
  }

  /** Clear R/W of the leaf at `slot` if it maps `gfn` writable (gfn -1: whatever it maps); true if it did. */
  clearWrite(slot: number, gfn: number): boolean {
    const st = this.st;
    const sh = st.byMfn.get(Math.floor(slot / 1024));
    if (sh === undefined || sh.level !== 1) return false;
    const i = slot % 1024;
    const f = st.domain.mem.read(sh.smfn);
    const lo = f[2 * i] as number;
    const hi = f[2 * i + 1] as number;
    if ((lo & (PTE_P | PTE_RW)) !== (PTE_P | PTE_RW)) return false;
    if (gfn >= 0 && st.domain.placement.gfnOf(entryFrame(lo, hi)) !== gfn) return false;
    this.setEntry(sh, i, lo & ~PTE_RW, hi, null);
    return true;
  }

  /** Flush every vCPU's hardware TLB (flush_tlb_mask of the domain's dirty CPUs). */
  shootdown(): void {
    this.st.counters.tlb_shootdowns++;
    for (const c of this.st.cpus) c.mmu.flushContext(-1, true);
  }
}
