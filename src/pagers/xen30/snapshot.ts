/**
 * Snapshots (Xen 3.0.2, shadow32.c and shadow.c: shadow_make_snapshot,
 * shadow_free_snapshot; PGT_snapshot records in shadow_ht): the copy of a
 * page taken when it went out of sync, in a hypervisor frame, found in the
 * hash under the page's frame like its shadows.
 *
 * Rules kept:
 *  - at most one snapshot per page (a second writable mapping of an
 *    out-of-sync page adds an out-of-sync entry without one: Xen's
 *    SHADOW_SNAPSHOT_ELSEWHERE);
 *  - the whole page is copied (Xen copied only the min/max range its l1
 *    shadow used and treated the rest as changed: the same outcome);
 *  - Umbra's, not Xen's: when a shadow entry is propagated from a live entry
 *    of an out-of-sync page, that snapshot entry takes the live value too
 *    (follow). 3.0 did not ("can't update snapshots of linear page tables",
 *    resync_all), so a guest entry written back to its snapshot value (an
 *    accessed flag cleared by the guest after the fault path set it) went
 *    unseen at resync and its stale shadow entry stayed: a transparency hole
 *    Umbra does not copy. Shadow 3 (2008) follows the snapshot the same way.
 */
import { OWNER_HYPERVISOR } from '../../machine/memory.js';
import { type Snapshot, T_SNAPSHOT, type Xen30State } from './state.js';

const snapshotKey = (gfn: number): number => gfn * 16 + T_SNAPSHOT;

export class Snapshots {
  /** Guest frame -> its snapshot (the hash holds them too; this is the PGC_out_of_sync bit). */
  private readonly byGfn = new Map<number, Snapshot>();

  constructor(private readonly st: Xen30State) {}

  get size(): number {
    return this.byGfn.size;
  }

  has(gfn: number): boolean {
    return this.byGfn.has(gfn);
  }

  /** The snapshot's words, or undefined if `gfn` is in sync. */
  words(gfn: number): Uint32Array | undefined {
    const s = this.byGfn.get(gfn);
    return s === undefined ? undefined : this.st.domain.mem.read(s.smfn);
  }

  /** shadow_make_snapshot: copy `gfn` as it is now. */
  take(gfn: number): void {
    const st = this.st;
    const smfn = st.domain.mem.alloc(OWNER_HYPERVISOR);
    st.domain.mem.write(smfn).set(st.guestSpace.frameForRead(gfn));
    const s: Snapshot = { gfn, smfn };
    st.ht.insert(gfn, snapshotKey(gfn), s);
    this.byGfn.set(gfn, s);
    st.counters['oos.snapshots']++;
    st.frameMade();
  }

  /** shadow_free_snapshot. */
  drop(gfn: number): void {
    const s = this.byGfn.get(gfn);
    if (s === undefined) return;
    const st = this.st;
    this.byGfn.delete(gfn);
    st.ht.delete(gfn, snapshotKey(gfn));
    st.domain.mem.free(s.smfn);
    st.counters.shadow_frames--;
  }

  /** A shadow entry now follows guest entry `gi` of `gfn` = (lo, hi): so does the snapshot, if there is one. */
  follow(gfn: number, gi: number, wide: boolean, lo: number, hi: number): void {
    const s = this.byGfn.get(gfn);
    if (s === undefined) return;
    const f = this.st.domain.mem.write(s.smfn);
    if (wide) {
      f[2 * gi] = lo;
      f[2 * gi + 1] = hi;
    } else f[gi] = lo;
  }

  /** Every page out of sync. */
  gfns(): IterableIterator<number> {
    return this.byGfn.keys();
  }
}
