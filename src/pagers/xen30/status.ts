/**
 * Shadow status: which shadows exist and what keeps them alive (Xen 3.0.2,
 * shadow32.c and shadow.c: alloc_shadow_page, shadow_promote,
 * shadow_demote, free_shadow_page, remove_shadow; shadow.h: __shadow_status,
 * get_shadow_ref, put_shadow_ref, shadow_pin, shadow_unpin).
 *
 * Rules this module keeps (the isolation checker tests them):
 *  - every table shadow is in shadow_ht under (guest frame, part, format,
 *    type); a guest frame used at several levels has one shadow per level;
 *    a splintered superpage is an fl1 (fl2) shadow keyed by its frame and
 *    flags;
 *  - a top-level shadow is pinned when it is made (alloc_shadow_page pins
 *    PGT_root_page_table shadows: the l2 of a 2-level Xen, the l4 of x86_64
 *    Xen; here the l2s of 32-bit and PAE guests and the l4/l5 of long-mode
 *    ones) and stays pinned until resync finds its guest table torn down
 *    (oos.ts) or its frame changes type; nothing else unpins, and no pool
 *    bounds the shadows (3.0 had none);
 *  - a shadow lives while pinned or referenced (parent entries, vCPUs on it,
 *    out-of-sync entries); the last reference frees it, and the last shadow
 *    of a frame demotes it (no longer a page table, out-of-sync state gone);
 *  - shadow_promote: a frame about to get its first shadow loses every
 *    writable mapping (writeaccess.ts); one about to get any new shadow
 *    while out of sync is resynced first (the hooks), so no new shadow is
 *    ever made of a page that has a snapshot.
 */
import { PTE_P } from '../../arch/x86/bits.js';
import type { Cpu } from '../../arch/x86/cpu.js';
import { entryFrame } from '../../arch/x86/entry.js';
import type { WalkFormat } from '../../arch/x86/modes.js';
import { OWNER_HYPERVISOR } from '../../machine/memory.js';
import { formatIndex, shadowName } from '../shadow/types.js';
import type { ShadowRef, ShadowWriter } from './set.js';
import { flKeyOf, shadowKey, T_FL1, type Xen30State, type XenShadow } from './state.js';
import type { WriteAccess } from './writeaccess.js';

/** What promotion and demotion need from the out-of-sync part above (oos.ts, bound by the façade). */
export interface StatusHooks {
  /** `gfn` is about to get a new shadow: if it is out of sync, resync (shadow_promote → __shadow_sync_mfn). */
  promote(gfn: number): void;
  /** `gfn` has no shadow left: drop its out-of-sync state (shadow_demote → remove_out_of_sync_entries). */
  demoted(gfn: number): void;
}

export class ShadowStatus implements ShadowRef {
  private hooks: StatusHooks | null = null;
  /** Per vCPU: the shadows it runs on now (its CR3's, or its PDPTE registers'), each holding a reference. */
  private readonly roots = new Map<Cpu, XenShadow[]>();

  constructor(
    private readonly st: Xen30State,
    private readonly set: ShadowWriter,
    private readonly wa: WriteAccess,
  ) {
    set.bind(this);
  }

  bind(hooks: StatusHooks): void {
    this.hooks = hooks;
  }

  /** Is a shadow of this type pinned at allocation (Xen's PGT_root_page_table)? */
  static isRoot(fmt: WalkFormat, type: number): boolean {
    return type === (fmt.mode.pdpteRegisters || !fmt.mode.wide ? 2 : fmt.mode.topLevel);
  }

  /** __shadow_status for a table shadow. */
  lookup(fmt: WalkFormat, type: number, gfn: number, part = 0): XenShadow | undefined {
    return this.st.ht.lookup(gfn, shadowKey(gfn, part, formatIndex(fmt), type)) as XenShadow | undefined;
  }

  /** The shadow of guest table `gfn` at `level` (part of a 32-bit table), made if missing. */
  get(fmt: WalkFormat, level: number, gfn: number, part = 0): XenShadow {
    return this.lookup(fmt, level, gfn, part) ?? this.make(fmt, level, gfn, part, false, 0, 0);
  }

  /** The fl shadow (T_FL1 or T_FL2) of the guest superpage (lo, hi) splintered from `gfn`, made if missing. */
  getFl(fmt: WalkFormat, type: number, gfn: number, lo: number, hi: number): { sh: XenShadow; made: boolean } {
    const found = this.st.ht.lookup(gfn, flKeyOf(fmt, type, gfn, lo, hi)) as XenShadow | undefined;
    if (found !== undefined) return { sh: found, made: false };
    return { sh: this.make(fmt, type, gfn, 0, true, lo, hi), made: true };
  }

  /** alloc_shadow_page with shadow_promote. */
  private make(
    fmt: WalkFormat,
    type: number,
    gfn: number,
    part: number,
    fl: boolean,
    lo: number,
    hi: number,
  ): XenShadow {
    const st = this.st;
    if (!fl) {
      (this.hooks as StatusHooks).promote(gfn);
      if (!st.isPageTable(gfn)) this.promoteFirst(gfn);
    }
    const smfn = st.domain.mem.alloc(OWNER_HYPERVISOR);
    const level = fl ? type - T_FL1 + 1 : type;
    const key = fl ? flKeyOf(fmt, type, gfn, lo, hi) : shadowKey(gfn, part, formatIndex(fmt), type);
    const sh: XenShadow = {
      key,
      smfn,
      fmt,
      gfn,
      level,
      type,
      guestWide: fmt.mode.wide,
      part,
      fl,
      flLo: lo,
      flHi: hi,
      refs: 0,
      pinned: false,
      ups: new Set(),
      lruPrev: null,
      lruNext: null,
      min: 512,
      max: -1,
    };
    st.ht.insert(gfn, key, sh);
    st.byMfn.set(smfn, sh);
    if (!fl) {
      const list = st.byGfn.get(gfn);
      if (list === undefined) st.byGfn.set(gfn, [sh]);
      else list.push(sh);
    }
    st.counters.shadows_made++;
    st.frameMade();
    if (!fl && ShadowStatus.isRoot(fmt, type)) this.pin(sh);
    return sh;
  }

  /** A frame becomes a page table: no writable mapping of it may stay, in the shadows or the P2M. */
  promoteFirst(gfn: number): void {
    if (this.wa.removeAll(gfn)) this.set.shootdown();
    this.st.p2m.protect(gfn, true);
  }

  pin(sh: XenShadow): void {
    if (sh.pinned) return;
    sh.pinned = true;
    sh.refs++;
    this.st.counters['pin.pinned']++;
  }

  unpin(sh: XenShadow): void {
    if (!sh.pinned) return;
    sh.pinned = false;
    this.putShadowRef(sh);
  }

  /** put_shadow_ref: drop a reference; free the shadow when none is left. */
  putShadowRef(sh: XenShadow): void {
    sh.refs--;
    if (sh.refs <= 0 && !sh.pinned) this.free(sh);
  }

  private free(sh: XenShadow): void {
    const st = this.st;
    if (!st.ht.delete(sh.gfn, sh.key)) return;
    for (let i = sh.min; i <= sh.max; i++) this.set.setEntry(sh, i, 0, 0, null);
    st.byMfn.delete(sh.smfn);
    if (!sh.fl) {
      const list = st.byGfn.get(sh.gfn) as XenShadow[];
      list.splice(list.indexOf(sh), 1);
      if (list.length === 0) st.byGfn.delete(sh.gfn);
      if (!st.isPageTable(sh.gfn)) this.demote(sh.gfn);
    }
    st.domain.mem.free(sh.smfn);
    st.counters.shadows_freed++;
    st.counters.shadow_frames--;
  }

  /** shadow_demote: the frame is no longer a page table. */
  demote(gfn: number): void {
    (this.hooks as StatusHooks).demoted(gfn);
    this.st.p2m.protect(gfn, false);
  }

  // ---- what the vCPUs run on -----------------------------------------------------

  /** vCPU `cpu` now runs on `shadows` (its top-level shadow, or the PDs its PDPTE registers name). */
  setRoots(cpu: Cpu, shadows: XenShadow[]): void {
    for (const sh of shadows) sh.refs++;
    const old = this.roots.get(cpu) ?? [];
    this.roots.set(cpu, shadows);
    for (const sh of old) this.putShadowRef(sh);
  }

  /** Does a vCPU run on `sh`? */
  inUse(sh: XenShadow): boolean {
    for (const list of this.roots.values()) if (list.includes(sh)) return true;
    return false;
  }

  /** Every pinned shadow (top-level shadows no vCPU need run on). */
  *pinned(): Generator<XenShadow> {
    for (const sh of this.st.byMfn.values()) if (sh.pinned) yield sh;
  }

  // ---- removal -------------------------------------------------------------------

  /** Clear every entry of `sh`; true if a present one went. */
  empty(sh: XenShadow): boolean {
    let flush = false;
    for (let i = sh.min; i <= sh.max; i++) if (this.set.setEntry(sh, i, 0, 0, null)) flush = true;
    return flush;
  }

  /**
   * Remove every shadow of `gfn`: unhook it from its parents, unpin it;
   * one a vCPU runs on stays, emptied (rebuilt from the frame as it is
   * now). True if a removed entry may be held by a TLB.
   */
  removeShadowsOf(gfn: number): boolean {
    const st = this.st;
    let flush = false;
    for (const sh of [...(st.byGfn.get(gfn) ?? [])]) {
      for (const slot of [...sh.ups]) {
        const parent = st.byMfn.get(Math.floor(slot / 1024));
        if (parent !== undefined && this.set.setEntry(parent, slot % 1024, 0, 0, null)) flush = true;
      }
      if (st.byMfn.has(sh.smfn) && !this.inUse(sh)) this.unpin(sh);
      if (st.byMfn.has(sh.smfn) && this.empty(sh)) flush = true;
    }
    return flush;
  }

  /** Drop every pinned shadow no vCPU runs on, and empty the ones they run on (free_shadow_pages). */
  freeAll(): boolean {
    let flush = false;
    for (const sh of [...this.pinned()]) if (!this.inUse(sh)) this.unpin(sh);
    for (const list of [...this.roots.values()]) for (const sh of list) if (this.empty(sh)) flush = true;
    return flush;
  }

  // ---- what the isolation checker asks -------------------------------------------

  /** Every shadow's reference count against the references that exist; null if they agree. */
  checkRefs(extra: Map<XenShadow, number>): string | null {
    const st = this.st;
    const mem = st.domain.mem;
    const counted = new Map<XenShadow, number>();
    for (const sh of st.byMfn.values()) counted.set(sh, (sh.pinned ? 1 : 0) + (extra.get(sh) ?? 0));
    for (const list of this.roots.values()) for (const sh of list) counted.set(sh, (counted.get(sh) ?? 0) + 1);
    for (const sh of st.byMfn.values()) {
      if (mem.ownerOf(sh.smfn) !== OWNER_HYPERVISOR) return `${shadowName(sh)} in a frame the hypervisor does not own`;
      if (sh.level === 1) continue;
      const f = mem.read(sh.smfn);
      for (let i = 0; i < 512; i++) {
        const lo = f[2 * i] as number;
        if ((lo & PTE_P) === 0) continue;
        const c = st.byMfn.get(entryFrame(lo, f[2 * i + 1] as number));
        if (c === undefined) return `${shadowName(sh)}[${i}] points at no shadow`;
        counted.set(c, (counted.get(c) ?? 0) + 1);
      }
    }
    for (const [sh, n] of counted)
      if (n !== sh.refs) return `${shadowName(sh)} has ${sh.refs} references counted but ${n} exist`;
    for (const sh of st.byMfn.values()) {
      const f = mem.read(sh.smfn);
      for (let i = 0; i < 512; i++) {
        if (((f[2 * i] as number) & PTE_P) !== 0 && (i < sh.min || i > sh.max))
          return `${shadowName(sh)}[${i}] present outside its min/max range ${sh.min}..${sh.max}`;
      }
    }
    return null;
  }
}
