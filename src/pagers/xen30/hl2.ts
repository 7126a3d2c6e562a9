/**
 * hl2 tables (Xen 3.0.2, shadow32.c: shadow_hl2_table, resync_all for
 * PGT_hl2_shadow; shadow.h: hl2e_propagate_from_guest, update_hl2e,
 * validate_hl2e_change, __linear_hl2_table). The seed's last question.
 *
 * In translate mode on 2-level paging, Xen read a guest's PTEs through its
 * own linear page-table slot, linear_pg_table[va >> 12]. The guest's l2
 * holds guest frame numbers, which the MMU would take for machine frames,
 * so the slot held an hl2 instead: per guest l2, a table of l1-format
 * entries mapping the *machine* frame of each guest l1, with the
 * hypervisor's rights (__PAGE_HYPERVISOR: present, writable, accessed,
 * dirty, supervisor). An HVM ("external") domain had it in the vCPU's
 * monitor table, put there at each CR3 load (__update_pagetables).
 *
 * The hl2 of a 2-level Xen was one page of 4-byte entries; Umbra's holds
 * 8-byte (PAE-format) entries, since machine frames may lie above 4 GiB, so
 * it is two pages, as 2-level guests' l1 shadows are on x86_64 Xen.
 *
 * Umbra has no hypervisor address space for the slot, so the linear read is
 * what the slot would give: linearSpace() is the guest-physical space the
 * fault and INVLPG paths walk a 2-level guest's tables through, in which
 * the guest l1 a PDE names is read from the machine frame its hl2 entry
 * maps. A stale hl2 makes the guest walk read the wrong table.
 *
 * Rules this module keeps (the isolation checker tests them):
 *  - every 2-level guest l2 with an l2 shadow has an hl2, made with it,
 *    pinned (alloc_shadow_page pins PGT_hl2_shadow in external mode) and
 *    unpinned with it; the hl2 makes its frame a page table as an l1 would;
 *  - an hl2 entry maps, supervisor-only, the machine frame the P2M gives
 *    for the frame its guest entry names — the entry as the guest table
 *    holds it now or as its snapshot holds it — or is empty; update_hl2e
 *    refreshes the entry of an address before a fault or INVLPG reads
 *    through it.
 */
import { PTE_A, PTE_D, PTE_P, PTE_RW, PTE_US } from '../../arch/x86/bits.js';
import type { Cpu, DataSpace } from '../../arch/x86/cpu.js';
import { entryFrame, entryHi, entryLo } from '../../arch/x86/entry.js';
import { frameAt, OWNER_HYPERVISOR } from '../../machine/memory.js';
import { P2M_RAM_RW } from '../../p2m/p2m.js';
import { type Hl2Table, T_HL2, type Xen30State } from './state.js';

/** __PAGE_HYPERVISOR: present, writable, accessed, dirty; supervisor only. */
const PAGE_HYPERVISOR = PTE_P | PTE_RW | PTE_A | PTE_D;

const hl2Key = (gfn: number): number => gfn * 16 + T_HL2;

export class Hl2 {
  /** The guest l1 frame and the machine frame the linear read of the walk in progress takes it from (-1: none). */
  private linearGfn = -1;
  private linearMfn = -1;
  /** linear_pg_table as the fault path sees it: the guest's memory, with the l1 read through the hl2. */
  readonly linearSpace: DataSpace;

  constructor(private readonly st: Xen30State) {
    const guest = st.guestSpace;
    const mem = st.domain.mem;
    const space: DataSpace = {
      frameForRead: (gfn) => {
        if (gfn !== this.linearGfn) return guest.frameForRead(gfn);
        st.counters['hl2.linear_reads']++;
        return mem.read(this.linearMfn);
      },
      frameForWrite: (gfn) => {
        if (gfn !== this.linearGfn) return guest.frameForWrite(gfn);
        st.p2m.lookup(gfn);
        return st.p2m.lastType === P2M_RAM_RW ? mem.write(this.linearMfn) : null;
      },
      locate: (gfn) => frameAt(space.frameForRead(gfn)),
      locateForWrite: (gfn) => {
        const f = space.frameForWrite(gfn);
        return f === null ? null : frameAt(f);
      },
    };
    this.linearSpace = space;
  }

  /** hl2e_propagate_from_guest: the machine frame an hl2 entry maps for guest l2 entry `gpde` (-1: empty). */
  private mfnFor(gpde: number): number {
    if ((gpde & PTE_P) === 0) return -1;
    return this.st.p2m.lookup(gpde >>> 12);
  }

  /** Entry `i` of `t`: the frame holding it and the index of its low word. */
  private at(t: Hl2Table, i: number, write: boolean): [Uint32Array, number] {
    const smfn = t.smfns[i >>> 9] as number;
    const mem = this.st.domain.mem;
    return [write ? mem.write(smfn) : mem.read(smfn), 2 * (i & 511)];
  }

  /** The machine frame entry `i` of `t` maps (-1: empty). */
  entry(t: Hl2Table, i: number): number {
    const [f, w] = this.at(t, i, false);
    const lo = f[w] as number;
    return (lo & PTE_P) === 0 ? -1 : entryFrame(lo, f[w + 1] as number);
  }

  get(gfn: number): Hl2Table | undefined {
    return this.st.hl2ByGfn.get(gfn);
  }

  /** shadow_hl2_table: the hl2 of guest l2 `gfn`, made (filled from the guest l2, pinned) if missing. */
  make(gfn: number): Hl2Table {
    const st = this.st;
    const found = st.ht.lookup(gfn, hl2Key(gfn)) as Hl2Table | undefined;
    if (found !== undefined) {
      found.pinned = true; // made again with its l2 shadow
      return found;
    }
    const mem = st.domain.mem;
    const t: Hl2Table = {
      gfn,
      smfns: [mem.alloc(OWNER_HYPERVISOR), mem.alloc(OWNER_HYPERVISOR)],
      pinned: true,
      users: 0,
    };
    st.ht.insert(gfn, hl2Key(gfn), t);
    st.hl2ByGfn.set(gfn, t);
    const g = st.guestSpace.frameForRead(gfn);
    for (let i = 0; i < 1024; i++) this.write(t, i, this.mfnFor(g[i] as number));
    st.counters['hl2.made']++;
    st.counters['pin.pinned']++;
    st.frameMade();
    st.frameMade();
    return t;
  }

  /** Free the hl2 of `gfn` if it is unpinned and no vCPU uses it; true if it went. */
  release(t: Hl2Table): boolean {
    if (t.pinned || t.users > 0) return false;
    const st = this.st;
    st.ht.delete(t.gfn, hl2Key(t.gfn));
    st.hl2ByGfn.delete(t.gfn);
    for (const smfn of t.smfns) st.domain.mem.free(smfn);
    st.counters.shadow_frames -= 2;
    return true;
  }

  /** Store in entry `i` of `t` a mapping of machine frame `mfn` (-1: empty). */
  private write(t: Hl2Table, i: number, mfn: number): void {
    const [f, w] = this.at(t, i, true);
    f[w] = mfn < 0 ? 0 : entryLo(mfn, PAGE_HYPERVISOR);
    f[w + 1] = mfn < 0 ? 0 : entryHi(mfn);
  }

  /** Rewrite entry `i` of `t` from guest l2 entry `gpde`; true if a present entry changed. */
  private setEntry(t: Hl2Table, i: number, gpde: number): boolean {
    const old = this.entry(t, i);
    const mfn = this.mfnFor(gpde);
    if (old === mfn) return false;
    this.write(t, i, mfn);
    this.st.counters['hl2.entries_updated']++;
    return old >= 0;
  }

  /** update_hl2e: refresh the entry for `va` of the hl2 of the l2 `cpu` runs on, from the guest l2 as it is now. */
  update(cpu: Cpu, vaLo: number): void {
    const t = this.get(cpu.cr3RootPfn);
    if (t === undefined) return;
    const i = vaLo >>> 22;
    this.setEntry(t, i, this.st.guestSpace.frameForRead(t.gfn)[i] as number);
  }

  /** validate_hl2e_change at resync: every entry whose guest entry differs from the snapshot. */
  resync(t: Hl2Table, snap: Uint32Array): boolean {
    const g = this.st.guestSpace.frameForRead(t.gfn);
    let flush = false;
    for (let i = 0; i < 1024; i++) {
      this.st.counters['resync.entries_compared']++;
      if (g[i] === snap[i]) continue;
      this.st.counters['resync.entries_changed']++;
      if (this.setEntry(t, i, g[i] as number)) flush = true;
    }
    return flush;
  }

  /** A device wrote guest l2 `gfn` at [first, last] (entry indexes): rewrite those entries. */
  revalidate(gfn: number, first: number, last: number): void {
    const t = this.get(gfn);
    if (t === undefined) return;
    const g = this.st.guestSpace.frameForRead(gfn);
    for (let i = first; i <= last; i++) this.setEntry(t, i, g[i] as number);
  }

  /**
   * Point the linear read at the guest l1 the PDE for `va` names in root
   * `l2gfn`, through its hl2 entry; a PDE not present, a 4 MiB page or an
   * empty hl2 entry leaves the plain guest space in force.
   */
  beginLinear(l2gfn: number, vaLo: number): void {
    this.linearGfn = -1;
    const t = this.get(l2gfn);
    if (t === undefined) return;
    const i = vaLo >>> 22;
    const gpde = this.st.guestSpace.frameForRead(l2gfn)[i] as number;
    const mfn = this.entry(t, i);
    if ((gpde & PTE_P) === 0 || (gpde & 0x80) !== 0 || mfn < 0) return;
    this.linearGfn = gpde >>> 12;
    this.linearMfn = mfn;
  }

  endLinear(): void {
    this.linearGfn = -1;
  }

  /** Remove every hl2 entry mapping one of machine frames `mfns` (shadow_remove_all_access); true if one went. */
  removeMappings(isGone: (mfn: number) => boolean): boolean {
    const st = this.st;
    let flush = false;
    for (const t of st.hl2ByGfn.values()) {
      st.counters['p2m.l1_searched']++;
      for (let i = 0; i < 1024; i++) {
        const mfn = this.entry(t, i);
        if (mfn < 0 || !isGone(mfn)) continue;
        this.write(t, i, -1);
        st.counters['p2m.mappings_removed']++;
        flush = true;
      }
    }
    return flush;
  }

  /** The isolation checker's rules for every hl2; null if they hold. */
  check(snapshotOf: (gfn: number) => Uint32Array | undefined): string | null {
    const st = this.st;
    for (const t of st.hl2ByGfn.values()) {
      for (const smfn of t.smfns)
        if (st.domain.mem.ownerOf(smfn) !== OWNER_HYPERVISOR)
          return `hl2 of gfn ${t.gfn} in a frame the hypervisor does not own`;
      if (!st.byGfn.get(t.gfn)?.some((sh) => sh.level === 2 && !sh.fmt.mode.wide) && t.pinned)
        return `pinned hl2 of gfn ${t.gfn} without an l2 shadow`;
      const live = st.guestSpace.frameForRead(t.gfn);
      const snap = snapshotOf(t.gfn);
      for (let i = 0; i < 1024; i++) {
        const [f, w] = this.at(t, i, false);
        const lo = f[w] as number;
        if ((lo & PTE_P) === 0) continue;
        if ((lo & ~0xfffff000) !== PAGE_HYPERVISOR || (lo & PTE_US) !== 0)
          return `hl2 of gfn ${t.gfn}[${i}] has rights 0x${(lo & 0xfff).toString(16)}`;
        const mfn = this.entry(t, i);
        const ok =
          mfn === this.mfnFor(live[i] as number) || (snap !== undefined && mfn === this.mfnFor(snap[i] as number));
        if (!ok) return `hl2 of gfn ${t.gfn}[${i}] maps mfn ${mfn}, not the guest's l1 of entry ${i}`;
      }
    }
    return null;
  }
}
