/**
 * The out-of-sync list and full resync (Xen 3.0.2, shadow32.c and shadow.c:
 * shadow_mark_va_out_of_sync, shadow_mark_mfn_out_of_sync,
 * shadow_alloc_oos_entry, __shadow_out_of_sync / is_out_of_sync,
 * snapshot_entry_matches, resync_all, __shadow_sync_all / sync_all,
 * free_out_of_sync_state, remove_out_of_sync_entries; shadow.h:
 * __shadow_sync_va, __shadow_sync_mfn, shadow_sync_all).
 *
 * In 3.0 a guest write to one of its page tables was not emulated: the
 * write fault made the faulting shadow PTE writable, snapshotted the page
 * and put an entry on the domain's out-of-sync list (l1pte_write_fault).
 * Any page-table page could go out of sync — l1, l2 (with its hl2), and on
 * x86_64 l3 and l4 — and the list had no bound (entries came from blocks
 * allocated on demand). Everything on it was resynced at once:
 *
 * Rules this module keeps (the isolation checker tests them; it reads an
 * out-of-sync page as its snapshot):
 *  - a page-table page is writable through a shadow leaf only while it is
 *    out of sync, and only through leaves recorded on the list (the PTE each
 *    write fault made writable: writable_pl1e); a second writable mapping
 *    adds an entry without a snapshot (SHADOW_SNAPSHOT_ELSEWHERE);
 *  - every entry holds a reference on the shadow l1 its writable PTE lies in;
 *  - syncAll() first takes write access away through those PTEs, then
 *    compares every snapshotted page with its snapshot — l1s, then hl2s,
 *    then l2s, l3s, l4s (and l5s) — within each shadow's min/max range,
 *    recomputes the changed entries, applies the unshadow rule to top-level
 *    shadows, flushes every TLB, and empties the list;
 *  - it runs at every CR3 load (and any flush of the whole TLB), when a
 *    fault or INVLPG meets an entry on its path that differs from its
 *    snapshot (outOfSyncVa), when an out-of-sync page is about to get a new
 *    shadow, when a device writes one, at a P2M change and a log-dirty clean.
 */
import { PTE_P } from '../../arch/x86/bits.js';
import type { Cpu } from '../../arch/x86/cpu.js';
import { leafFrame } from '../../arch/x86/entry.js';
import { vaIndex } from '../../arch/x86/walker.js';
import { guestIndex } from '../shadow/types.js';
import type { SyncCause } from './counters.js';
import type { Hl2 } from './hl2.js';
import type { LeafSlot, Propagator } from './propagate.js';
import type { ShadowWriter } from './set.js';
import type { Snapshots } from './snapshot.js';
import { T_HL2, type Xen30State, type XenShadow } from './state.js';
import { ShadowStatus } from './status.js';

/** struct out_of_sync_entry. */
interface OosEntry {
  readonly vcpu: number;
  readonly gfn: number;
  /** This entry took the page's snapshot (false: SHADOW_SNAPSHOT_ELSEWHERE). */
  readonly snapshot: boolean;
  /** writable_pl1e: the shadow leaf made writable (smfn * 1024 + index), -1 for none. */
  readonly slot: number;
  readonly slotShadow: XenShadow | null;
}

/** Resync order: l1s, the hl2s, then the directories bottom up (resync_all per type, __shadow_sync_all). */
const RESYNC_ORDER = [1, T_HL2, 2, 3, 4, 5] as const;

export class OutOfSync {
  /** d->arch.out_of_sync, newest first. */
  private list: OosEntry[] = [];
  private syncing = false;

  constructor(
    private readonly st: Xen30State,
    private readonly set: ShadowWriter,
    private readonly status: ShadowStatus,
    private readonly prop: Propagator,
    private readonly hl2: Hl2,
    readonly snaps: Snapshots,
  ) {}

  /** Entries on the list. */
  get entries(): number {
    return this.list.length;
  }

  /** Pages out of sync (with a snapshot). */
  get pages(): number {
    return this.snaps.size;
  }

  has(gfn: number): boolean {
    return this.snaps.has(gfn);
  }

  /** shadow_mark_va_out_of_sync: page `gfn` is written through the leaf at `leaf`, which is now writable. */
  markVa(cpu: Cpu, gfn: number, leaf: LeafSlot): void {
    leaf.sh.refs++; // get_shadow_ref for writable_pl1e
    this.add(cpu, gfn, leaf.sh.smfn * 1024 + leaf.index, leaf.sh);
  }

  /** shadow_mark_mfn_out_of_sync: page `gfn` is about to be written with no shadow PTE to make writable (emulation). */
  markMfn(cpu: Cpu, gfn: number): void {
    this.add(cpu, gfn, -1, null);
  }

  private add(cpu: Cpu, gfn: number, slot: number, slotShadow: XenShadow | null): void {
    const st = this.st;
    const c = st.counters;
    const own = !this.snaps.has(gfn);
    if (own) {
      this.snaps.take(gfn);
      if (st.hl2ByGfn.has(gfn) || st.byGfn.get(gfn)?.some((sh) => sh.level > 1)) c['oos.upper_snapshots']++;
    }
    this.list.unshift({ vcpu: cpu.index, gfn, snapshot: own, slot, slotShadow });
    c['oos.marked']++;
    if (this.list.length > c['oos.peak_entries']) c['oos.peak_entries'] = this.list.length;
    if (this.snaps.size > c['oos.peak_pages']) c['oos.peak_pages'] = this.snaps.size;
  }

  /**
   * __shadow_out_of_sync: does an entry on the guest's path to `va`, in a
   * page that is out of sync, differ from its snapshot? (The walk stops at
   * a not-present entry or a superpage.)
   */
  outOfSyncVa(cpu: Cpu, vaHi: number, vaLo: number): boolean {
    const fmt = cpu.format;
    if (fmt === null || this.list.length === 0) return false;
    const st = this.st;
    const c = st.counters;
    c['sync.va_checks']++;
    const mode = fmt.mode;
    const wide = mode.wide;
    let level = mode.topLevel;
    let table = cpu.cr3RootPfn;
    if (mode.pdpteRegisters) {
      const i = vaLo >>> 30;
      const lo = cpu.pdpte[2 * i] as number;
      if ((lo & PTE_P) === 0) return false;
      table = leafFrame(lo, cpu.pdpte[2 * i + 1] as number, true, false, 12);
      level = 2;
    }
    for (;;) {
      const idx = vaIndex(vaHi, vaLo, mode.shift[level] as number, mode.indexMask[level] as number);
      const g = st.guestSpace.frameForRead(table);
      const lo = (wide ? g[2 * idx] : g[idx]) as number;
      const hi = wide ? (g[2 * idx + 1] as number) : 0;
      const snap = this.snaps.words(table);
      if (snap !== undefined) {
        c['sync.va_entries']++;
        if (wide ? snap[2 * idx] !== lo || snap[2 * idx + 1] !== hi : snap[idx] !== lo) return true;
      }
      if (level === 1 || (lo & PTE_P) === 0 || ((lo >>> 7) & 1 & (fmt.largeMask >>> level)) !== 0) return false;
      table = leafFrame(lo, hi, wide, false, 12);
      level--;
    }
  }

  /** __shadow_sync_va: resync everything if `va`'s path meets a changed entry of an out-of-sync page. */
  syncVa(cpu: Cpu, vaHi: number, vaLo: number): void {
    if (this.outOfSyncVa(cpu, vaHi, vaLo)) this.syncAll('va');
  }

  /** __shadow_sync_all: bring every out-of-sync page back in sync (the rules above). */
  syncAll(cause: SyncCause): void {
    if (this.list.length === 0 || this.syncing) return;
    const st = this.st;
    const c = st.counters;
    c['sync.all']++;
    c[`sync.all.${cause}`]++;
    this.syncing = true;
    // First, remove all write permissions to the page tables.
    for (const e of this.list) if (e.slot >= 0) this.set.clearWrite(e.slot, -1);
    // Then every page with a snapshot, one shadow type after another.
    const pages = this.list.filter((e) => e.snapshot).map((e) => e.gfn);
    c['resync.pages'] += pages.length;
    for (const type of RESYNC_ORDER) for (const gfn of pages) this.resync(gfn, type);
    for (const gfn of pages) this.unshadowRule(gfn);
    // free_out_of_sync_state: the entries, their references, the snapshots.
    const list = this.list;
    this.list = [];
    for (const gfn of pages) this.snaps.drop(gfn);
    this.syncing = false;
    for (const e of list) if (e.slotShadow !== null) this.status.putShadowRef(e.slotShadow);
    this.set.shootdown();
  }

  /** resync_all for one page and one shadow type: recompute what differs from the snapshot. */
  private resync(gfn: number, type: number): void {
    const st = this.st;
    const c = st.counters;
    const snap = this.snaps.words(gfn) as Uint32Array;
    if (type === T_HL2) {
      const t = this.hl2.get(gfn);
      if (t !== undefined) this.hl2.resync(t, snap);
      return;
    }
    const live = st.guestSpace.frameForRead(gfn);
    for (const sh of [...(st.byGfn.get(gfn) ?? [])]) {
      if (sh.type !== type || !st.byMfn.has(sh.smfn)) continue;
      for (let i = sh.min; i <= sh.max; i++) {
        const gi = guestIndex(sh, i);
        c['resync.entries_compared']++;
        if (
          sh.guestWide ? live[2 * gi] === snap[2 * gi] && live[2 * gi + 1] === snap[2 * gi + 1] : live[gi] === snap[gi]
        )
          continue;
        c['resync.entries_changed']++;
        this.prop.validate(sh, i, live);
      }
    }
  }

  /**
   * resync_all's unshadow rule for top-level shadows: a guest table found
   * empty, or holding a not-present entry that is not zero ("This hack works
   * for linux guests"), is being torn down or reused as data: its pinned
   * shadows (and hl2) are let go unless a vCPU runs on one of them.
   */
  private unshadowRule(gfn: number): void {
    const st = this.st;
    const roots = (st.byGfn.get(gfn) ?? []).filter((sh) => sh.pinned && ShadowStatus.isRoot(sh.fmt, sh.type));
    if (roots.length === 0 || roots.some((sh) => this.status.inUse(sh))) return;
    const g = st.guestSpace.frameForRead(gfn);
    const wide = (roots[0] as XenShadow).guestWide;
    let any = false;
    let torn = false;
    for (let i = 0, n = wide ? 512 : 1024; i < n; i++) {
      const lo = (wide ? g[2 * i] : g[i]) as number;
      const hi = wide ? (g[2 * i + 1] as number) : 0;
      if (lo === 0 && hi === 0) continue;
      any = true;
      if ((lo & PTE_P) === 0) torn = true;
    }
    if (any && !torn) return;
    st.counters['pin.unpinned']++;
    const t = this.hl2.get(gfn);
    if (t !== undefined) {
      t.pinned = false;
      this.hl2.release(t);
    }
    for (const sh of roots) this.status.unpin(sh);
  }

  /** remove_out_of_sync_entries: `gfn` is no page table any more; its entries and snapshot go (not while syncing). */
  forget(gfn: number): void {
    if (this.syncing || !this.snaps.has(gfn)) return;
    const gone = this.list.filter((e) => e.gfn === gfn);
    this.list = this.list.filter((e) => e.gfn !== gfn);
    this.snaps.drop(gfn);
    for (const e of gone) if (e.slotShadow !== null) this.status.putShadowRef(e.slotShadow);
  }

  /** References the list holds, per shadow (for the checker's count). */
  references(): Map<XenShadow, number> {
    const m = new Map<XenShadow, number>();
    for (const e of this.list) if (e.slotShadow !== null) m.set(e.slotShadow, (m.get(e.slotShadow) ?? 0) + 1);
    return m;
  }

  /** May a shadow leaf map `gfn` writable? (Not a page table, or out of sync.) */
  writableOk(gfn: number): boolean {
    return !this.st.isPageTable(gfn) || this.snaps.has(gfn);
  }
}
