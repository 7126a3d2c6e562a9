/**
 * Out-of-sync l1s and their snapshots (Xen's SHOPT_OUT_OF_SYNC, the oos
 * half of shadow/common.c and multi.c; KVM's unsync shadow pages): a
 * shadowed guest l1 the guest writes may be let out of sync — writable in
 * place, no more emulation — until the guest's next TLB flush, when it is
 * compared with the snapshot taken when it went out of sync and only the
 * changed entries are recomputed.
 *
 * Rules this module keeps (the isolation checker tests them; it reads an
 * out-of-sync frame as its snapshot):
 *  - only l1s go out of sync: the hardware walks through higher-level shadows,
 *    so their guest tables stay write-protected (canUnsync); a frame about
 *    to be shadowed above l1 is resynced first (cache.ts);
 *  - a frame is write-protected (rule 3 of propagate.ts) unless it is out of
 *    sync (writeProtected); at resync it is write-protected again, in the P2M
 *    and in every shadow (its fixup array, then wrmap.ts's search; or the
 *    reverse map with the rmap switch);
 *  - an out-of-sync l1's shadow entries follow its snapshot: a shadow entry
 *    made from a live entry updates the snapshot too (followSnapshot), or a
 *    later change back to the snapshot's old value would go unseen;
 *  - at most OOS_PER_VCPU pages per vCPU, placed by machine frame with a
 *    second chance (as Xen's oos_hash_add); each resync compares at most
 *    512 entries per shadow of the page.
 */
import { PTE_P } from '../../arch/x86/bits.js';
import type { Cpu } from '../../arch/x86/cpu.js';
import { entryFrame, leafFrame } from '../../arch/x86/entry.js';
import type { ResyncCause } from './counters.js';
import type { FixupRecorder, ShadowSet } from './set.js';
import type { ShadowState } from './state.js';
import { guestIndex, type Shadow } from './types.js';
import type { WriteAccess } from './wrmap.js';

/**
 * Out-of-sync pages per vCPU, placed by machine frame: Xen's
 * SHADOW_OOS_PAGES is 3. A small set bounds the cost of each resync-all
 * (every guest TLB flush diffs at most this many pages per vCPU) and of the
 * snapshots; a collision evicts the older page by resyncing it.
 */
export const OOS_PER_VCPU = 3;

/** A guest l1 the guest may write directly, and the snapshot taken when it went out of sync. */
interface OosPage {
  gfn: number;
  vcpu: number;
  slot: number;
  snapshot: Uint32Array;
  /** Fixup array: shadow l1 slots that last mapped it writable (Xen's oos_fixup), and the next to reuse. */
  fixups: number[];
  nextFixup: number;
}

/** Writable mappings an out-of-sync page remembers for its resync: Xen's SHADOW_OOS_FIXUPS. */
export const OOS_FIXUPS = 2;

/** What resync needs from propagation above it: recomputing a shadow l1 entry (propagate.ts). */
export interface LeafSetter {
  setLeaf(sh: Shadow, index: number, gfn: number, lo: number, hi: number): boolean;
}

export class OutOfSync implements FixupRecorder {
  /** Out-of-sync guest l1s by frame, and each vCPU's slots. */
  private readonly pages = new Map<number, OosPage>();
  private readonly slots: Array<Array<OosPage | null>>;
  /** Snapshot buffers of pages back in sync, for the next pages to go out of sync (no allocation per unsync). */
  private readonly spare: Uint32Array[] = [];
  private leaves: LeafSetter | null = null;

  constructor(
    private readonly st: ShadowState,
    private readonly set: ShadowSet,
    private readonly wrmap: WriteAccess,
  ) {
    this.slots = st.cpus.map(() => new Array<OosPage | null>(OOS_PER_VCPU).fill(null));
    if (!st.sw.rmap) set.bindFixups(this);
  }

  isOutOfSync(gfn: number): boolean {
    return this.pages.has(gfn);
  }

  /**
   * Shadow l1 slot `slot` is about to map out-of-sync `gfn` writable: note
   * it in the page's fixup array, so its resync finds it without a search.
   * A full array reuses its oldest slot, whose mapping is made read-only now
   * (Xen's oos_fixup_add; no flush: the page is out of sync anyway, and its
   * resync always flushes).
   */
  fixupAdd(gfn: number, slot: number): void {
    const page = this.pages.get(gfn);
    if (page === undefined) return;
    const c = this.st.counters;
    c['oos.fixup_add']++;
    if (page.fixups.includes(slot)) return;
    const next = page.nextFixup;
    const old = page.fixups[next];
    if (old !== undefined) {
      this.set.revokeSlot(old, gfn);
      c['oos.fixup_evict']++;
    }
    page.fixups[next] = slot;
    page.nextFixup = (next + 1) % OOS_FIXUPS;
  }

  /** Connect propagation, which recomputes changed entries at resync (once, at attach). */
  bind(leaves: LeafSetter): void {
    this.leaves = leaves;
  }

  /** Pages out of sync now (each holds a snapshot frame of the pool). */
  get size(): number {
    return this.pages.size;
  }

  has(gfn: number): boolean {
    return this.pages.has(gfn);
  }

  /** The snapshot of out-of-sync `gfn` (what its shadow entries follow), or undefined. */
  snapshot(gfn: number): Uint32Array | undefined {
    return this.pages.get(gfn)?.snapshot;
  }

  /** Must guest writes to `gfn` trap? (A shadowed table, unless it is out of sync.) */
  writeProtected(gfn: number): boolean {
    return this.st.byGfn.has(gfn) && !this.pages.has(gfn);
  }

  /**
   * May `gfn` go out of sync? Only when the option is on and every shadow of
   * it is an l1: the hardware walks through higher-level shadows, so their
   * guest tables must stay write-protected; an l1's shadow entries are only
   * translations the guest must invalidate before relying on a change.
   */
  canUnsync(gfn: number): boolean {
    const st = this.st;
    if (!st.sw.oos) return false;
    const list = st.byGfn.get(gfn);
    if (list === undefined) return false;
    // Xen's sh_unsync (oos.c): shadowed only as an l1 and in one guest paging
    // mode (sh_page_has_multiple_shadows: one shadow type; a 32-bit l1's
    // 8 KiB shadow is two parts here), and only while every vCPU has paging
    // on (oos_active, set in sh_update_paging_modes).
    const mode = list[0]?.fmt.mode;
    for (const sh of list) if (sh.level !== 1 || sh.fmt.mode !== mode) return false;
    for (const c of st.cpus) if (c.format === null) return false;
    return true;
  }

  /** Take a snapshot of `gfn` and let the guest write it directly (its mappings may become writable). */
  unsync(cpu: Cpu, gfn: number): void {
    const st = this.st;
    const slots = this.slots[cpu.index] as Array<OosPage | null>;
    // Xen's oos_hash_add (oos.c): a page's home slot is its machine frame
    // mod 3. A page at home there moves on to the next slot, whose occupant
    // is evicted (resynced); one that had moved on is evicted itself.
    const placement = st.domain.placement;
    const slot = placement.mfnOf(gfn) % OOS_PER_VCPU;
    const occupant = slots[slot];
    if (occupant != null && placement.mfnOf(occupant.gfn) % OOS_PER_VCPU === slot) {
      const next = (slot + 1) % OOS_PER_VCPU;
      const victim = slots[next];
      if (victim != null) this.resync(victim.gfn, 'evicted');
      occupant.slot = next;
      slots[next] = occupant;
      slots[slot] = null;
    } else if (occupant != null) this.resync(occupant.gfn, 'evicted');
    const snapshot = this.spare.pop() ?? new Uint32Array(1024);
    snapshot.set(st.guestSpace.frameForRead(gfn));
    const page: OosPage = { gfn, vcpu: cpu.index, slot, snapshot, fixups: [], nextFixup: 0 };
    slots[slot] = page;
    this.pages.set(gfn, page);
    st.p2m.protect(gfn, false);
    st.counters['oos.unsynced']++;
    if (this.pages.size > st.counters['oos.peak_pages']) st.counters['oos.peak_pages'] = this.pages.size;
  }

  resyncAll(cause: ResyncCause): void {
    if (this.pages.size === 0) return;
    for (const gfn of [...this.pages.keys()]) this.resync(gfn, cause);
  }

  /**
   * A guest TLB flush on vCPU `v` (MOV to CR0/CR3/CR4, EFER, a full flush),
   * as Xen's sh_update_cr3 handles it (shadow/multi.c, sh_resync_all in
   * oos.c): before `v` switches tables, the pages `v` put out of sync are
   * resynced and write-protected again (shadow_resync_current_vcpu); after,
   * other vCPUs' pages only have their shadow entries brought up to date and
   * stay out of sync (shadow_sync_other_vcpus), unless `v`'s new tables
   * cannot reach them (sh_skip_sync).
   */
  flushedOwn(v: number): void {
    if (this.pages.size === 0) return;
    for (const page of [...this.pages.values()]) if (page.vcpu === v) this.resync(page.gfn, 'guest_flush');
  }

  /** The second half of a flush on vCPU `v`, once it runs on its new tables (see flushedOwn). */
  flushedOthers(v: number): void {
    if (this.pages.size === 0) return;
    for (const page of [...this.pages.values()]) {
      if (page.vcpu === v) continue;
      if (this.safeNotToSync(v, page.gfn)) this.st.counters['oos.others_skipped']++;
      else this.update(page);
    }
  }

  /**
   * Xen's sh_safe_not_to_sync (shadow/multi.c, via sh_skip_sync): may vCPU
   * `v`'s flush leave another vCPU's out-of-sync l1 `gfn` as it is? Yes if
   * its shadow hangs from exactly one parent at every level up to a single
   * top-level shadow, and `v` does not run on that one — `v` cannot reach
   * the page. Never for a 32-bit guest (Xen's 32-bit l1 and l2 shadows are
   * two pages and keep no up-pointer, sh_type_has_up_pointer).
   */
  private safeNotToSync(v: number, gfn: number): boolean {
    const st = this.st;
    const list = st.byGfn.get(gfn);
    let sh = list?.length === 1 ? list[0] : undefined;
    if (sh === undefined || !sh.guestWide) return false;
    const top = sh.fmt.mode.pdpteRegisters ? 2 : sh.fmt.mode.topLevel;
    while (sh.level < top) {
      if (sh.refs !== 1 || sh.ups.size !== 1) return false;
      const [up] = sh.ups as Set<number>;
      sh = st.byMfn.get(Math.floor((up as number) / 1024));
      if (sh === undefined) return false;
    }
    const m = (st.cpus[v] as Cpu).mmu;
    if (m.pdpte === null) return m.rootPfn !== sh.smfn;
    for (let i = 0; i < 4; i++) {
      const lo = m.pdpte[2 * i] as number;
      if ((lo & PTE_P) !== 0 && entryFrame(lo, m.pdpte[2 * i + 1] as number) === sh.smfn) return false;
    }
    return true;
  }

  /** Bring `page`'s shadow entries up to date with the guest's and its snapshot with them; it stays out of sync. */
  private update(page: OosPage): void {
    this.st.counters['oos.others_updated']++;
    if (this.diff(page.gfn, page.snapshot, true)) this.set.shootdown();
  }

  /**
   * Bring out-of-sync `gfn` back in sync: compare it with its snapshot,
   * recompute the shadow entries of the guest entries that changed (only
   * those), and write-protect it again in every shadow that maps it.
   */
  resync(gfn: number, cause: ResyncCause): void {
    const page = this.pages.get(gfn);
    if (page === undefined) return;
    const st = this.st;
    const c = st.counters;
    this.detach(page);
    c['oos.resyncs']++;
    c[`oos.resync.${cause}`]++;
    let flush = this.diff(gfn, page.snapshot, false);
    this.spare.push(page.snapshot);
    st.p2m.protect(gfn, true);
    if (st.sw.rmap) {
      if (this.set.revokeWrite(gfn)) flush = true;
      if (flush) this.set.shootdown();
      return;
    }
    // Xen's oos_remove_write_access (oos.c): the fixups first, then the
    // search for any mapping left, and always a flush (oos_fixup_flush_gmfn).
    for (const slot of page.fixups) this.set.revokeSlot(slot, gfn);
    this.wrmap.remove(gfn, 0);
    this.set.shootdown();
  }

  /**
   * Recompute the shadow entries of out-of-sync l1 `gfn` whose guest entry
   * differs from the snapshot; with `keep` (the page stays out of sync) the
   * snapshot follows. Only entries whose shadow is present (magic ones
   * included) can be stale; an empty one is rebuilt from the guest at its
   * next fault (Xen's sh_resync_l1 walks FOREACH_PRESENT_L1E, shadow/multi.c).
   * True if a present shadow entry changed (a TLB may hold it).
   */
  private diff(gfn: number, snap: Uint32Array, keep: boolean): boolean {
    const st = this.st;
    const c = st.counters;
    const leaves = this.leaves as LeafSetter;
    const live = st.guestSpace.frameForRead(gfn);
    let flush = false;
    // Words of guest entries to copy into the snapshot once every shadow has been compared with it.
    const follow: number[] = [];
    for (const sh of [...(st.byGfn.get(gfn) ?? [])]) {
      const sf = st.domain.mem.read(sh.smfn);
      for (let i = 0; i < 512; i++) {
        if (((sf[2 * i] as number) & PTE_P) === 0) continue;
        const gi = guestIndex(sh, i);
        c['oos.entries_compared']++;
        const lo = sh.guestWide ? (live[2 * gi] as number) : (live[gi] as number);
        const hi = sh.guestWide ? (live[2 * gi + 1] as number) : 0;
        if (sh.guestWide ? lo === snap[2 * gi] && hi === snap[2 * gi + 1] : lo === snap[gi]) continue;
        c['oos.entries_changed']++;
        // An entry with reserved bits set faults in the guest's walk: its shadow stays not present.
        const bad = (lo & (sh.fmt.rsvdLo[2] as number)) !== 0 || (hi & (sh.fmt.rsvdHi[2] as number)) !== 0;
        const target = leafFrame(lo, hi, sh.guestWide, false, 12);
        if (bad ? this.set.setEntry(sh, i, 0, 0, null) : leaves.setLeaf(sh, i, target, lo, hi)) flush = true;
        if (keep) {
          if (sh.guestWide) follow.push(2 * gi, 2 * gi + 1);
          else follow.push(gi);
        }
      }
    }
    for (const w of follow) snap[w] = live[w] as number;
    return flush;
  }

  /** Forget that `gfn` is out of sync (its snapshot goes). */
  forget(gfn: number): void {
    const page = this.pages.get(gfn);
    if (page === undefined) return;
    this.detach(page);
    this.spare.push(page.snapshot);
  }

  /** `page` is no longer out of sync (its snapshot is the caller's to recycle). */
  private detach(page: OosPage): void {
    this.pages.delete(page.gfn);
    (this.slots[page.vcpu] as Array<OosPage | null>)[page.slot] = null;
  }

  /**
   * A shadow entry of out-of-sync l1 `gfn` now follows its guest entry `gi`
   * = (lo, hi): so must the snapshot, or a later change back to the
   * snapshot's old value would go unseen at resync (Xen does the same).
   */
  followSnapshot(gfn: number, gi: number, wide: boolean, lo: number, hi: number): void {
    const page = this.pages.get(gfn);
    if (page === undefined) return;
    if (wide) {
      page.snapshot[2 * gi] = lo;
      page.snapshot[2 * gi + 1] = hi;
    } else page.snapshot[gi] = lo;
  }
}
