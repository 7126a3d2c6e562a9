/**
 * Write-access removal (Xen 3.0.2, shadow32.c and shadow.c:
 * shadow_remove_all_write_access, remove_all_write_access_in_ptpage,
 * fix_entry): when a guest frame becomes a page table, every writable shadow
 * mapping of it must become read-only. Xen had no reverse map. It knew how
 * many writable mappings to find (the page's writable type count), tried
 * the one slot its back pointer names (set_guest_back_ptr; in shadow_mode
 * external, i.e. for HVM guests), and then searched every l1 shadow in the
 * hash, bucket by bucket, until it had found them all.
 *
 * Writable-page *prediction* (predict_writable_pte_page,
 * increase_/decrease_writable_pte_prediction, PGT_writable_pred records in
 * the hash) is in the 3.0.2 sources but nothing calls it: the back pointer
 * is the only prediction 3.0.2 made, and it is what this module models.
 *
 * Rules kept: afterwards no present shadow leaf maps the frame writable
 * (the isolation checker tests it); the search stops as soon as the count
 * is reached, and visits fl1 shadows too (they map guest pages as l1s do).
 */
import { PTE_P, PTE_RW } from '../../arch/x86/bits.js';
import { entryFrame } from '../../arch/x86/entry.js';
import type { ShadowWriter } from './set.js';
import type { Xen30State, XenShadow } from './state.js';

export class WriteAccess {
  constructor(
    private readonly st: Xen30State,
    private readonly set: ShadowWriter,
  ) {}

  /** Make every shadow mapping of `gfn` read-only; true if one was writable (the caller flushes). */
  removeAll(gfn: number): boolean {
    const st = this.st;
    const c = st.counters;
    const want = this.set.writableCount(gfn);
    if (want === 0) return false;
    c['write_access.removals']++;
    let found = 0;
    const back = this.set.backPointer(gfn);
    if (back >= 0 && this.set.clearWrite(back, gfn)) found++;
    if (found === want) {
      c['write_access.predicted']++;
      return true;
    }
    c['write_access.brute_force']++;
    const mem = st.domain.mem;
    const placement = st.domain.placement;
    for (const rec of st.ht.values()) {
      const sh = rec as XenShadow;
      if (sh.level !== 1 || sh.type === undefined || sh.min > sh.max) continue;
      const f = mem.read(sh.smfn);
      for (let i = sh.min; i <= sh.max; i++) {
        c['write_access.entries_scanned']++;
        const lo = f[2 * i] as number;
        if ((lo & (PTE_P | PTE_RW)) !== (PTE_P | PTE_RW)) continue;
        if (placement.gfnOf(entryFrame(lo, f[2 * i + 1] as number)) !== gfn) continue;
        this.set.setEntry(sh, i, lo & ~PTE_RW, f[2 * i + 1] as number, null);
        if (++found === want) return true;
      }
    }
    throw new Error(`xen30: ${want - found} writable mappings of gfn ${gfn} not found`);
  }
}
