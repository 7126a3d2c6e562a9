/**
 * The shadow cache and pool (Xen's shadow/common.c: the shadow hash,
 * sh_make/destroy_shadow, pinning, shadow_prealloc, shadow_blow_tables,
 * sh_remove_shadows): which shadows exist, what keeps them alive, and the
 * frames they take.
 *
 * Rules this module keeps (the isolation checker tests them):
 *  1. Every shadow is keyed by its role — (guest frame, part, format, level),
 *     packed by roleKey() — in the shadow hash; a guest frame used at several
 *     levels (recursive maps) has one shadow per level. Splintered superpages
 *     (fl shadows) are keyed by (format, level, first frame, flags), flKey().
 *     The cache survives CR3 switches; top-level shadows are pinned.
 *  - A shadow lives while it is pinned or referenced (by a parent entry,
 *    set.ts, or a PAE hardware PDPTE register); the last release frees it,
 *    and the last shadow of a guest frame takes its write protection and its
 *    out-of-sync state with it. checkRefs() recounts.
 *  - When a guest frame gets its first shadow, every writable mapping of it
 *    is revoked and every shadow superpage over it dropped (rule 3,
 *    propagate.ts), and its P2M entry is write-protected (for paging off).
 *  7. The pool never overflows and never holds less than the roots of every
 *    vCPU plus one exit's headroom (attach refuses a smaller one): prealloc()
 *    runs before any exit that may build shadows, evicting idle roots in
 *    least-recently-loaded order, then blowing the tables below the roots in
 *    use; roots in use are never freed, so a fault always makes progress.
 */

import { PTE_P, PTE_PS } from '../../arch/x86/bits.js';
import type { Cpu } from '../../arch/x86/cpu.js';
import { entryFrame, entryHi, entryLo } from '../../arch/x86/entry.js';
import type { WalkFormat } from '../../arch/x86/modes.js';
import { ConfigError } from '../../hypervisor/pager.js';
import { OWNER_HYPERVISOR } from '../../machine/memory.js';
import { ShadowLru } from './lru.js';
import { isMagic } from './magic.js';
import type { OutOfSync } from './oos.js';
import { defaultPoolFrames, minPoolFrames, PREALLOC_FRAMES } from './options.js';
import type { ShadowReleaser, ShadowSet } from './set.js';
import type { ShadowState } from './state.js';
import { formatIndex, HI_COPY, type Shadow, shadowName } from './types.js';
import type { WriteAccess } from './wrmap.js';

/**
 * The shadow hash key of a role: everything that makes two shadows of one
 * guest frame differ (KVM's shadow-page role) — the guest frame, which part
 * of a 32-bit guest table (0-3), the format (formatIndex: mode, NXE, PSE:
 * they change what entries mean, 0-15) and the level (1-5) — as one integer,
 * exact for guest frames below 2^44.
 */
export function roleKey(gfn: number, part: number, format: number, level: number): number {
  return ((gfn * 4 + part) * 16 + format) * 8 + level;
}

/**
 * The hash key of an fl shadow: a splintered guest superpage at `gfn` with
 * guest entry (lo, hi)'s flags (bits 12:0 of lo, XD and the protection key of
 * hi), as one integer. `gfn` is a multiple of 512 below 2^40 (a superpage's
 * first frame, MAXPHYADDR ≤ 52) and the entry is present (bit 0 is set), so
 * 31 + 1 (level 1-2) + 4 (format) + 12 + 5 bits: below 2^53, exact.
 */
export function flKey(format: number, level: number, gfn: number, lo: number, hi: number): number {
  const flags = ((lo & 0x1fff) >>> 1) * 32 + ((hi & HI_COPY) >>> 27);
  return (((gfn / 512) * 2 + level - 1) * 16 + format) * 2 ** 17 + flags;
}

/** A vCPU's hardware PDPTE registers (PAE and 32-bit guests) and the shadows they hold references to. */
interface HwPdpte {
  regs: Uint32Array;
  refs: Shadow[];
}

export class ShadowCache implements ShadowReleaser {
  /** The shadow hash: role key -> shadow; fl shadows by flKey(). */
  private readonly hash = new Map<number, Shadow>();
  private readonly flHash = new Map<number, Shadow>();
  /** 2 MiB guest region -> how many of its frames are shadowed guest tables. */
  private readonly shadowedInRegion = new Map<number, number>();
  /** Per vCPU: the PAE hardware PDPTEs. */
  private readonly hwPdpte = new Map<Cpu, HwPdpte>();
  /**
   * The shadow pool: its size in frames (fixed by pool=N, or following the
   * populated memory by Xen's rule), and the pinned top-level shadows in
   * least-recently-loaded order (a load moves a shadow to the end), so
   * eviction takes the oldest without a sort.
   */
  private poolFrames = Number.POSITIVE_INFINITY;
  private poolDefault = false;
  private readonly pinnedLru = new ShadowLru();

  constructor(
    private readonly st: ShadowState,
    private readonly set: ShadowSet,
    private readonly oos: OutOfSync,
    private readonly wrmap: WriteAccess,
  ) {
    set.bind(this);
  }

  // ---- the pool ------------------------------------------------------------

  /** Size the pool from the pool switch; a pool too small for the vCPUs is refused (ConfigError). */
  sizePool(): void {
    const st = this.st;
    const pool = st.sw.pool;
    if (pool > 0) {
      // Xen raises a too-small allocation to its minimum (shadow_set_allocation,
      // shadow/common.c); Umbra refuses it, so a measured figure is never for a
      // pool other than the one asked for.
      const min = minPoolFrames(st.cpus.length);
      if (pool < min) {
        throw new ConfigError(
          `a shadow pool of ${pool} frames is too small for ${st.cpus.length} vCPUs: at least ${min}`,
        );
      }
      this.poolFrames = pool;
    } else if (pool === 0) {
      this.poolDefault = true;
      this.poolFrames = this.defaultPool();
    }
    if (pool >= 0) st.counters['pool.frames'] = this.poolFrames;
  }

  /** Xen's rule applied to the guest memory populated so far (a sparse guest is not charged for its holes). */
  private defaultPool(): number {
    return defaultPoolFrames(this.st.cpus.length, this.st.domain.populatedFrames() * 4096);
  }

  /**
   * Frames the pool holds: shadows, out-of-sync snapshots and the P2M's
   * tables, which Xen takes from the same pool (shadow_alloc_p2m_page,
   * shadow/common.c; half of libxl's default allocation is for them).
   */
  private poolUsed(): number {
    const c = this.st.counters;
    c['pool.p2m_frames'] = this.st.p2m.tableFrames;
    return c.shadow_frames + this.oos.size + this.st.p2m.tableFrames;
  }

  /**
   * The pool's bound: its size, or more when the P2M has grown into the
   * room the shadows need at least. Xen would then fail the P2M allocation
   * and crash the domain (shadow_alloc_p2m_page keeps the shadows their
   * shadow_min_acceptable_pages); Umbra lets the pool grow by what the
   * P2M overdraws, so a run with a small pool=N still completes.
   */
  private poolLimit(): number {
    return Math.max(this.poolFrames, this.st.p2m.tableFrames + minPoolFrames(this.st.cpus.length));
  }

  /**
   * Make room before an exit that may build shadows (at most one per level,
   * plus splinters and PAE's four PDs): unpin and free the least recently
   * loaded top-level shadows no vCPU is running on; if that is not enough,
   * blow the tables (unhook everything below the roots in use). The pool
   * never overflows, and the roots in use are never freed, so a fault always
   * makes progress: attach() refused any pool smaller than the roots of every
   * vCPU plus this headroom (minPoolFrames).
   */
  prealloc(): void {
    const need = PREALLOC_FRAMES;
    const c = this.st.counters;
    // Every fault comes here: the pool's use is counted once on the way that frees nothing.
    const used = this.poolUsed();
    if (this.poolDefault && used + need > this.poolFrames) {
      this.poolFrames = this.defaultPool();
      c['pool.frames'] = this.poolFrames;
    }
    const limit = this.poolLimit();
    if (used + need <= limit) return;
    for (const sh of this.pinnedLru.toArray()) {
      if (this.poolUsed() + need <= limit) return;
      if (this.running(sh)) continue;
      c['pool.evictions']++;
      this.unpin(sh);
    }
    if (this.poolUsed() + need <= limit) return;
    c['pool.blowouts']++;
    this.blowTables();
  }

  /**
   * Xen's shadow_blow_tables (shadow/common.c): unpin every top-level shadow
   * no vCPU runs on (freeing it and all below it), then unhook everything
   * below the roots in use; all is rebuilt on demand. (Xen unpins the roots
   * in use too, which its vCPUs' shadow_table references keep alive until
   * their next CR3 load re-pins them; here their pin is that reference.)
   */
  blowTables(): void {
    this.oos.resyncAll('blowout');
    for (const sh of this.pinnedLru.toArray()) {
      if (!this.running(sh)) this.unpin(sh);
    }
    for (const sh of [...this.hash.values()]) {
      if (!(sh.pinned || this.inPdpte(sh)) || !this.st.byMfn.has(sh.smfn)) continue;
      for (let i = 0; i < 512; i++) this.set.setEntry(sh, i, 0, 0, null);
    }
    this.set.shootdown();
  }

  // ---- roots ---------------------------------------------------------------

  /** The top-level shadow of guest root `gfn`, pinned and made the most recently loaded. */
  pinRoot(fmt: WalkFormat, gfn: number): Shadow {
    const top = this.get(fmt, fmt.mode.topLevel, gfn);
    this.pin(top);
    return top;
  }

  /**
   * Pin a top-level shadow (Xen's sh_pin, from sh_set_toplevel_shadow at
   * every CR3 load): it outlives the CR3 that loaded it, so switching back
   * finds it. Top level means what Xen's sh_type_is_pinnable says: the l4
   * (and here l5) of a long-mode guest, the l2s a PAE guest's PDPTEs name,
   * and the l2 of a 32-bit guest (four quarter shadows here, 2-on-3).
   */
  private pin(sh: Shadow): void {
    if (!sh.pinned) {
      sh.pinned = true;
      sh.refs++;
    }
    this.pinnedLru.touch(sh);
  }

  /** Drop the pin (Xen's sh_unpin): the shadow goes unless something else refers to it. */
  private unpin(sh: Shadow): void {
    this.pinnedLru.delete(sh);
    sh.pinned = false;
    this.release(sh);
  }

  /** Pinned top-level shadows, least recently loaded first. */
  pinned(): Iterable<Shadow> {
    return this.pinnedLru;
  }

  /**
   * Hardware PDPTE registers: for a PAE guest, shadows of the PDs its own
   * PDPTE registers name; for a 32-bit guest (2-on-3, as Xen ran them), the
   * four quarter-shadows of its page directory.
   */
  pdptes(cpu: Cpu, fmt: WalkFormat, root: number): Uint32Array {
    let st = this.hwPdpte.get(cpu);
    if (st === undefined) {
      st = { regs: new Uint32Array(8), refs: [] };
      this.hwPdpte.set(cpu, st);
    }
    const old = st.refs;
    st.refs = [];
    for (let i = 0; i < 4; i++) {
      let sh: Shadow;
      if (fmt.mode.pdpteRegisters) {
        const lo = cpu.pdpte[2 * i] as number;
        const hi = cpu.pdpte[2 * i + 1] as number;
        if ((lo & PTE_P) === 0) {
          st.regs[2 * i] = 0;
          st.regs[2 * i + 1] = 0;
          continue;
        }
        sh = this.get(fmt, 2, entryFrame(lo, hi));
      } else {
        sh = this.get(fmt, 2, root, i);
      }
      this.pin(sh);
      sh.refs++;
      st.refs.push(sh);
      st.regs[2 * i] = entryLo(sh.smfn, PTE_P);
      st.regs[2 * i + 1] = entryHi(sh.smfn);
    }
    for (const sh of old) this.release(sh);
    return st.regs;
  }

  /** Is `sh` a root a vCPU runs on: its hardware CR3, or named by a PAE PDPTE register? */
  private running(sh: Shadow): boolean {
    return this.isCr3(sh) || this.inPdpte(sh);
  }

  /** Is `sh` a vCPU's hardware CR3? */
  private isCr3(sh: Shadow): boolean {
    for (const cpu of this.st.cpus) if (cpu.mmu.rootPfn === sh.smfn) return true;
    return false;
  }

  /** Is `sh` named by a vCPU's hardware PDPTE register (a root in use)? */
  private inPdpte(sh: Shadow): boolean {
    for (const st of this.hwPdpte.values()) if (st.refs.includes(sh)) return true;
    return false;
  }

  // ---- the shadow hash -----------------------------------------------------

  /** formatIndex(fmt), remembered for the last format asked (a fault asks for one format at every level). */
  private formatIndex(fmt: WalkFormat): number {
    if (fmt !== this.lastFmt) {
      this.lastFmt = fmt;
      this.lastFmtIndex = formatIndex(fmt);
    }
    return this.lastFmtIndex;
  }
  private lastFmt: WalkFormat | null = null;
  private lastFmtIndex = 0;

  /**
   * Per level, the key of the shadow get() last found there and the shadow
   * (-1: none): consecutive faults mostly share their path above l1, so the
   * hash is not asked again. A shadow leaves when it is freed.
   */
  private readonly recentKey = new Float64Array(6).fill(-1);
  private readonly recent: (Shadow | null)[] = [null, null, null, null, null, null];

  /** The shadow of guest table `gfn` at `level` for `fmt` (`part` of a 32-bit guest's table), made if missing. */
  get(fmt: WalkFormat, level: number, gfn: number, part = 0): Shadow {
    const st = this.st;
    const key = roleKey(gfn, part, this.formatIndex(fmt), level);
    if (this.recentKey[level] === key) {
      st.counters.shadow_cache_hits++;
      return this.recent[level] as Shadow;
    }
    const found = this.hash.get(key);
    if (found !== undefined) {
      st.counters.shadow_cache_hits++;
      this.recentKey[level] = key;
      this.recent[level] = found;
      return found;
    }
    // Only l1s go out of sync: a frame about to be shadowed at another level comes back first.
    if (level > 1 && this.oos.has(gfn)) this.oos.resync(gfn, 'promoted');
    const sh = this.make(fmt, key, gfn, level, part, false, 0, 0);
    let list = st.byGfn.get(gfn);
    if (list === undefined) {
      list = [];
      st.byGfn.set(gfn, list);
      this.removeWriteAccess(gfn, level);
      st.p2m.protect(gfn, true);
    }
    list.push(sh);
    return sh;
  }

  /** The shadow of guest table `gfn` at `level` for `fmt` if there is one (Xen's get_shadow_status): none is made. */
  find(fmt: WalkFormat, level: number, gfn: number, part = 0): Shadow | undefined {
    return this.hash.get(roleKey(gfn, part, this.formatIndex(fmt), level));
  }

  /** The fl shadow at `level` of the guest superpage (lo, hi) splintered from guest frame `gfn`, made if missing. */
  getFl(fmt: WalkFormat, level: number, gfn: number, lo: number, hi: number): Shadow {
    const key = flKey(this.formatIndex(fmt), level, gfn, lo, hi);
    const found = this.flHash.get(key);
    if (found !== undefined) {
      this.st.counters.shadow_cache_hits++;
      return found;
    }
    return this.make(fmt, key, gfn, level, 0, true, lo, hi);
  }

  private make(
    fmt: WalkFormat,
    key: number,
    gfn: number,
    level: number,
    part: number,
    fl: boolean,
    flLo: number,
    flHi: number,
  ): Shadow {
    const st = this.st;
    st.epoch++;
    // Zeroed; storage comes with the first entry written (an empty shadow costs no frame).
    const smfn = st.domain.mem.alloc(OWNER_HYPERVISOR);
    const guestWide = fmt.mode.wide;
    const sh: Shadow = {
      key,
      smfn,
      fmt,
      gfn,
      level,
      guestWide,
      part,
      fl,
      flLo,
      flHi,
      refs: 0,
      pinned: false,
      ups: new Set(),
      lruPrev: null,
      lruNext: null,
    };
    if (fl) this.flHash.set(key, sh);
    else this.hash.set(key, sh);
    st.byMfn.set(smfn, sh);
    const c = st.counters;
    c.shadows_made++;
    c.shadow_frames++;
    if (c.shadow_frames > c.peak_shadow_frames) {
      c.peak_shadow_frames = c.shadow_frames;
    }
    return sh;
  }

  /**
   * Make every existing shadow mapping of guest frame `gfn` read-only (it is
   * now a shadowed table at `level`): Xen does this for each guest table on
   * a fault's walk (gw_remove_write_accesses, shadow/multi.c) and for the
   * roots at a CR3 load (sh_update_cr3); wrmap.ts finds the mappings.
   */
  private removeWriteAccess(gfn: number, level: number): void {
    const region = Math.floor(gfn / 512);
    this.shadowedInRegion.set(region, (this.shadowedInRegion.get(region) ?? 0) + 1);
    // A shadow superpage over a frame that is now a guest table: drop it (it is rebuilt splintered).
    this.set.dropSuperpages(region);
    if (this.wrmap.remove(gfn, level)) this.set.shootdown();
  }

  /** Does 2 MiB guest region `region` hold a shadowed guest table (no shadow superpage may cover it)? */
  hasShadowedTable(region: number): boolean {
    return this.shadowedInRegion.has(region);
  }

  /** Drop a reference; free the shadow when nothing refers to it. */
  release(sh: Shadow): void {
    sh.refs--;
    if (sh.refs > 0 || sh.pinned) return;
    this.free(sh);
  }

  private free(sh: Shadow): void {
    const st = this.st;
    st.epoch++;
    const key = sh.key as number; // this cache makes only integer keys (xen30 keeps strings)
    if (!(sh.fl ? this.flHash.delete(key) : this.hash.delete(key))) return;
    if (this.recent[sh.level] === sh) {
      this.recentKey[sh.level] = -1;
      this.recent[sh.level] = null;
    }
    const f = st.domain.mem.read(sh.smfn);
    for (let i = 0; i < 512; i++) {
      const w = 2 * i;
      if (((f[w] as number) & PTE_P) !== 0) this.set.setEntry(sh, i, 0, 0, null);
    }
    st.byMfn.delete(sh.smfn);
    this.pinnedLru.delete(sh);
    if (!sh.fl) {
      const list = st.byGfn.get(sh.gfn);
      if (list !== undefined) {
        const i = list.indexOf(sh);
        if (i >= 0) list.splice(i, 1);
        if (list.length === 0) {
          st.byGfn.delete(sh.gfn);
          this.oos.forget(sh.gfn);
          st.p2m.protect(sh.gfn, false);
          const region = Math.floor(sh.gfn / 512);
          const n = (this.shadowedInRegion.get(region) ?? 1) - 1;
          if (n === 0) this.shadowedInRegion.delete(region);
          else this.shadowedInRegion.set(region, n);
        }
      }
    }
    st.domain.mem.free(sh.smfn);
    if (sh.level === 1) this.wrmap.freed(sh.smfn);
    st.counters.shadows_freed++;
    st.counters.shadow_frames--;
  }

  /**
   * Remove the shadows of `gfn` (Xen's sh_remove_shadows, fast: its
   * DO_UNSHADOW in shadow/common.c): a top-level shadow is unpinned (sh_unpin),
   * a lower one unhooked from its parents. A root a vCPU runs on stays, as in
   * blowTables: its pin stands for the vCPU's shadow_table reference, which
   * keeps it alive in Xen. True if none is left.
   */
  unshadow(gfn: number): boolean {
    const st = this.st;
    const list = st.byGfn.get(gfn);
    if (list === undefined) return true;
    let flush = false;
    // Unhooking the last parent frees a shadow (free() splices it from the
    // list): walk a copy when there are several. Each unhook deletes only the
    // slot being visited from `ups`, which a Set's iteration allows.
    for (const sh of list.length === 1 ? list : [...list]) {
      if (this.running(sh)) continue;
      // A top-level shadow has no parents: unpinning frees it.
      if (sh.pinned) this.unpin(sh);
      for (const slot of sh.ups) {
        const parent = st.byMfn.get(Math.floor(slot / 1024));
        if (parent !== undefined && this.set.setEntry(parent, slot % 1024, 0, 0, null)) flush = true;
      }
      st.counters['unshadow.shadows']++;
    }
    if (flush) this.set.shootdown();
    return !st.byGfn.has(gfn);
  }

  // ---- P2M changes -----------------------------------------------------------

  /**
   * Guest frame `gfn` changed type (Xen's sh_remove_all_shadows_and_parents,
   * called from sh_unshadow_for_p2m_change in shadow/hvm.c): every shadow of
   * it is unhooked from its parents and unpinned, and its out-of-sync state
   * dropped; a root a vCPU is running on (its CR3 or a PAE PDPTE register)
   * cannot go and is emptied instead, so it is rebuilt from what the frame
   * holds now. True if a removed entry may be held by a TLB.
   */
  removeAll(gfn: number): boolean {
    const st = this.st;
    const list = st.byGfn.get(gfn);
    if (list === undefined) return false;
    this.oos.forget(gfn);
    let flush = false;
    for (const sh of [...list]) {
      for (const slot of [...sh.ups]) {
        const parent = st.byMfn.get(Math.floor(slot / 1024));
        if (parent !== undefined && this.set.setEntry(parent, slot % 1024, 0, 0, null)) flush = true;
      }
      if (sh.pinned && st.byMfn.has(sh.smfn) && !this.isCr3(sh)) this.unpin(sh);
      if (!st.byMfn.has(sh.smfn)) continue;
      for (let i = 0; i < 512; i++) if (this.set.setEntry(sh, i, 0, 0, null)) flush = true;
    }
    return flush;
  }

  /**
   * Remove every shadow entry mapping a guest frame of [first, first+count)
   * (Xen's sh_remove_all_mappings, shadow/common.c: a brute-force search of
   * every l1 and fl1 shadow), and every shadow superpage over one. True if
   * any was removed (a TLB may hold it).
   */
  removeMappings(first: number, count: number): boolean {
    const st = this.st;
    const c = st.counters;
    const mem = st.domain.mem;
    const placement = st.domain.placement;
    const end = first + count;
    let flush = this.set.dropSuperpagesIn(first, count);
    for (const table of [this.hash, this.flHash] as const) {
      for (const sh of table.values()) {
        if (sh.level !== 1) continue;
        c['p2m.l1_searched']++;
        const f = mem.read(sh.smfn);
        for (let i = 0; i < 512; i++) {
          const lo = f[2 * i] as number;
          const hi = f[2 * i + 1] as number;
          // Magic entries map no frame (and MMIO ones only frames above RAM, which never change).
          if ((lo & PTE_P) === 0 || isMagic(lo, hi)) continue;
          const gfn = placement.gfnOf(entryFrame(lo, hi));
          if (gfn < first || gfn >= end) continue;
          this.set.setEntry(sh, i, 0, 0, null);
          c['p2m.mappings_removed']++;
          flush = true;
        }
      }
    }
    return flush;
  }

  // ---- what the isolation checker asks -----------------------------------

  /** The pool bound and every shadow's reference count (one per parent entry, per PDPTE register, per pin); null if they hold. */
  checkRefs(): string | null {
    const st = this.st;
    const mem = st.domain.mem;
    if (this.poolUsed() > this.poolLimit())
      return `shadow pool overflow: ${this.poolUsed()} frames in a pool of ${this.poolLimit()}`;
    const counted = new Map<Shadow, number>();
    const all = [...this.hash.values(), ...this.flHash.values()];
    for (const sh of all) counted.set(sh, sh.pinned ? 1 : 0);
    for (const p of this.hwPdpte.values()) for (const sh of p.refs) counted.set(sh, (counted.get(sh) ?? 0) + 1);
    for (const sh of all) {
      if (mem.ownerOf(sh.smfn) !== OWNER_HYPERVISOR) return `${shadowName(sh)} in a frame the hypervisor does not own`;
      if (sh.level === 1) continue;
      const f = mem.read(sh.smfn);
      for (let i = 0; i < 512; i++) {
        const lo = f[2 * i] as number;
        if ((lo & PTE_P) === 0 || (lo & PTE_PS) !== 0 || isMagic(lo, f[2 * i + 1] as number)) continue;
        const c = st.byMfn.get(entryFrame(lo, f[2 * i + 1] as number));
        if (c !== undefined) counted.set(c, (counted.get(c) ?? 0) + 1);
      }
    }
    for (const [sh, n] of counted)
      if (n !== sh.refs) return `${shadowName(sh)} has ${sh.refs} references counted but ${n} exist`;
    return null;
  }
}
