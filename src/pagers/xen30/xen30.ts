/**
 * The Xen 3.0 profile (`--pager shadow:xen30`): HVM shadow paging as Xen
 * 3.0.2 (April 2006) did it, the design the seed question asked about, in
 * translate mode over a P2M (SHM_enable | SHM_refcounts | SHM_translate |
 * SHM_external | SHM_wr_pt_pte, vmx.c). Mechanism by mechanism, with the
 * 3.0.2 file and function each part models (docs/history.md):
 *   shadow_ht.ts   the 256-bucket shadow hash, pull-to-front chains
 *   state.ts       what the parts share; the PGT_* shadow types
 *   set.ts         the one writer of shadow entries; back pointers
 *   writeaccess.ts shadow_remove_all_write_access: back pointer, then brute force
 *   status.ts      alloc_shadow_page, promote/demote, pins, references
 *   snapshot.ts    shadow_make_snapshot
 *   propagate.ts   l1pte_propagate_from_guest, l1pte_write_fault, the path build
 *   hl2.ts         hl2 tables and the linear read of 2-level guests' PTEs
 *   oos.ts         the out-of-sync list, __shadow_sync_va, __shadow_sync_all
 *   xen30.ts       this file: attach, exits (shadow_fault, shadow_invlpg, the
 *                  VMX CR handlers, update_pagetables), devices, P2M changes,
 *                  log-dirty, the isolation checker's view
 *
 * Where 3.0 had no such feature (PAE guests' PDPTE registers, 5-level
 * paging, 1 GiB pages, PCID and INVPCID, NX/SMEP/SMAP/PKU rights), the
 * design is extended the obvious way: the l2s a PAE guest's PDPTEs name are
 * its roots, l5 shadows are pinned as l4s are, a 1 GiB page splinters into
 * an fl2 of fl1s, INVPCID of one address is an INVLPG and any wider
 * invalidation a CR3 reload, and rights are copied as the shadow pager
 * copies them. 2-level guests run on PAE-format shadows, as x86_64 Xen 3.0
 * ran them (two shadow l1 pages per guest l1, shadow.c), with the hl2 of
 * the 32-bit build (shadow32.c).
 *
 * Rules this file keeps (the checker, run after every exit with --check,
 * tests every part's rules from the outside):
 *  - hardware CR0.WP is forced on; the guest's WP=0 is emulated, as are
 *    MMIO, ROM writes and, with paging off, writes to page tables;
 *  - every exit but a page fault and an INVLPG is a flush of the whole TLB
 *    and resyncs every out-of-sync page first (3.0: every CR3 load; Xen
 *    skipped it when the CR3 load made a new top-level shadow, need_sync in
 *    __update_pagetables — which left stale entries of hooked l1 shadows
 *    visible, so Umbra does not skip it);
 *  - a page fault and an INVLPG first check their address against the
 *    snapshots (__shadow_sync_va), and a 2-level guest's hl2 entry for it
 *    is refreshed before the guest's PTE is read through it.
 */
import { CTL_WP, checkAccess, faultError } from '../../arch/x86/access.js';
import { type AccessKind, FETCH, PTE_P, PTE_PS, PTE_RW, WRITE } from '../../arch/x86/bits.js';
import { type Cpu, type DataSpace, HOST_DONE, HOST_RETRY, readValue, writeValue } from '../../arch/x86/cpu.js';
import { entryFrame, entryHi, entryLo, leafFrame } from '../../arch/x86/entry.js';
import {
  EXIT_CR_WRITE,
  EXIT_FLUSH,
  EXIT_INVLPG,
  EXIT_INVPCID,
  EXIT_MSR_WRITE,
  EXIT_NAMES,
  EXIT_PAGE_FAULT,
  type ExitReason,
} from '../../arch/x86/exits.js';
import { formatFor } from '../../arch/x86/modes.js';
import type { WalkCacheConfig } from '../../arch/x86/psc.js';
import { type PhysicalSpace, vaIndex, WALK_OK } from '../../arch/x86/walker.js';
import type { Domain } from '../../hypervisor/domain.js';
import type { LogDirtyOps } from '../../hypervisor/logdirty.js';
import type { CounterDecl, Pager } from '../../hypervisor/pager.js';
import { frameAt } from '../../machine/memory.js';
import { P2M_RAM_RO, P2M_RAM_RW } from '../../p2m/p2m.js';
import { installPwc, ONE_STAGE_DEFAULT, PWC_COUNTERS, pwcStats } from '../pwc.js';
import { type AuditRoot, type AuditView, auditHardwareCaches, auditPaths } from '../shadow/audit.js';
import { HOST_MAXPHYADDR } from '../shadow/magic.js';
import { derivedEntries, hardwareMode } from '../shadow/types.js';
import { newXen30Counters, XEN30_COUNTERS, type Xen30Counters, type Xen30Stats } from './counters.js';
import { Hl2 } from './hl2.js';
import { OutOfSync } from './oos.js';
import { Propagator } from './propagate.js';
import { ShadowWriter } from './set.js';
import { Snapshots } from './snapshot.js';
import type { Hl2Table, XenShadow } from './state.js';
import { Xen30State } from './state.js';
import { ShadowStatus } from './status.js';
import { WriteAccess } from './writeaccess.js';

export interface Xen30Options {
  /** Run the isolation checker after every exit. */
  check?: boolean;
  /** The pager's name in statistics (its spec). */
  name?: string;
  /** Log-dirty mode available for migration (shadow_mode_log_dirty); default on. */
  logdirty?: boolean;
  /** The hardware's paging-structure caches (pwc.ts; default on, null: none). */
  pwc?: WalkCacheConfig | null;
}

export class Xen30Pager implements Pager, LogDirtyOps {
  static readonly counters: readonly CounterDecl[] = [...XEN30_COUNTERS, ...PWC_COUNTERS];
  readonly name: string;
  private readonly counters: Xen30Counters = newXen30Counters();
  private st!: Xen30State;
  private set!: ShadowWriter;
  private status!: ShadowStatus;
  private prop!: Propagator;
  private hl2!: Hl2;
  private oos!: OutOfSync;
  /** Per vCPU: the hl2 in its monitor table's linear slot. */
  private readonly hl2InUse = new Map<Cpu, Hl2Table>();
  /** Per vCPU: its hardware PDPTE registers (PAE and 32-bit guests). */
  private readonly pdpteRegs = new Map<Cpu, Uint32Array>();
  /** The loop guard: the last fault fixed and how often in a row. */
  private lastFault = '';
  private repeats = 0;

  constructor(private readonly opts: Xen30Options = {}) {
    this.name = opts.name ?? 'shadow:xen30';
  }

  attach(domain: Domain, cpus: Cpu[]): void {
    const st = new Xen30State(domain, cpus, this.counters);
    const set = new ShadowWriter(st);
    const status = new ShadowStatus(st, set, new WriteAccess(st, set));
    const snaps = new Snapshots(st);
    const prop = new Propagator(st, set, status, snaps);
    const hl2 = new Hl2(st);
    const oos = new OutOfSync(st, set, status, prop, hl2, snaps);
    status.bind({
      promote: (gfn) => {
        if (oos.has(gfn)) oos.syncAll('promote');
      },
      demoted: (gfn) => oos.forget(gfn),
    });
    Object.assign(this, { st, set, status, prop, hl2, oos });
    if (this.opts.logdirty !== false) domain.logDirty.register(this);
    installPwc(cpus, this.opts.pwc === undefined ? ONE_STAGE_DEFAULT : this.opts.pwc);
    for (const c of cpus) this.load(c);
  }

  stats(): Xen30Stats {
    const p2m = this.st.p2m;
    return {
      ...this.counters,
      p2m_table_frames: p2m.tableFrames,
      p2m_entries: p2m.populated,
      ...pwcStats(this.st.cpus, false),
    };
  }

  // ---- exits -------------------------------------------------------------------

  exit(cpu: Cpu, reason: ExitReason): number {
    const c = this.counters;
    c.exits++;
    const x = cpu.exitInfo;
    switch (reason) {
      case EXIT_PAGE_FAULT: {
        c['exit.page_fault']++;
        const r = this.shadowFault(cpu);
        this.maybeCheck();
        return r;
      }
      case EXIT_INVLPG:
      case EXIT_INVPCID:
      case EXIT_CR_WRITE:
      case EXIT_MSR_WRITE:
      case EXIT_FLUSH:
        c[`exit.${EXIT_NAMES[reason] as 'invlpg' | 'invpcid' | 'cr_write' | 'msr_write' | 'flush'}`]++;
        // One address (shadow_invlpg), or the whole TLB: a CR3 reload's sync-all (and a new root for a CR/EFER write).
        if (reason === EXIT_INVLPG || (reason === EXIT_INVPCID && x.invpcidType === 0))
          this.invlpg(cpu, x.vaHi, x.vaLo);
        else this.oos.syncAll('flush');
        if (reason === EXIT_CR_WRITE || reason === EXIT_MSR_WRITE) this.load(cpu);
        break;
      default:
        throw new Error(`xen30 pager: an ${EXIT_NAMES[reason]} exit, which shadow paging never causes`);
    }
    this.maybeCheck();
    return 0;
  }

  /**
   * update_pagetables / __update_pagetables: point the vCPU's MMU at the
   * shadow of its top-level table (made and pinned if new; 2-level guests
   * also get their hl2), or at the P2M with paging off.
   */
  private load(cpu: Cpu): void {
    const fmt = cpu.format;
    const m = cpu.mmu;
    const st = this.st;
    m.space = st.hwSpace;
    let roots: XenShadow[] = [];
    let hl2: Hl2Table | undefined;
    if (fmt === null) {
      m.format = st.p2m.format;
      m.rootPfn = st.p2m.rootMfn;
      m.pdpte = null;
      m.ctlAnd = 0;
      m.ctlOr = CTL_WP;
    } else {
      const hw = hardwareMode(fmt);
      m.format = formatFor(hw, HOST_MAXPHYADDR, true, fmt.pse);
      m.ctlAnd = -1;
      m.ctlOr = CTL_WP;
      const root = cpu.cr3RootPfn;
      if (hw.pdpteRegisters) {
        let regs = this.pdpteRegs.get(cpu);
        if (regs === undefined) {
          regs = new Uint32Array(8);
          this.pdpteRegs.set(cpu, regs);
        }
        regs.fill(0);
        for (let i = 0; i < 4; i++) {
          let sh: XenShadow;
          if (fmt.mode.pdpteRegisters) {
            const lo = cpu.pdpte[2 * i] as number;
            if ((lo & PTE_P) === 0) continue;
            sh = this.status.get(fmt, 2, entryFrame(lo, cpu.pdpte[2 * i + 1] as number));
          } else sh = this.status.get(fmt, 2, root, i);
          roots.push(sh);
          regs[2 * i] = entryLo(sh.smfn, PTE_P);
          regs[2 * i + 1] = entryHi(sh.smfn);
        }
        m.pdpte = regs;
        m.rootPfn = 0;
        if (!fmt.mode.wide) hl2 = this.hl2.make(root);
      } else {
        const sh = this.status.get(fmt, fmt.mode.topLevel, root);
        roots = [sh];
        m.pdpte = null;
        m.rootPfn = sh.smfn;
      }
    }
    this.status.setRoots(cpu, roots);
    this.useHl2(cpu, hl2);
    m.flushContext(-1, true);
  }

  /** Put `t` in the vCPU's monitor table's linear slot (or nothing); an unpinned hl2 nobody uses goes. */
  private useHl2(cpu: Cpu, t: Hl2Table | undefined): void {
    const old = this.hl2InUse.get(cpu);
    if (t !== undefined) {
      t.users++;
      this.hl2InUse.set(cpu, t);
    } else this.hl2InUse.delete(cpu);
    if (old !== undefined) {
      old.users--;
      this.hl2.release(old);
    }
  }

  /**
   * shadow_invlpg: resync everything if the address meets a changed entry
   * of an out-of-sync page; then the shadow l1 entry of the address is
   * cleared (shadow_invlpg_64, shadow.c) or, for a 2-level guest, propagated
   * again from the guest's PTE read through the hl2 (shadow_invlpg,
   * shadow32.c).
   */
  private invlpg(cpu: Cpu, vaHi: number, vaLo: number): void {
    const fmt = cpu.format;
    if (fmt === null) return;
    this.oos.syncVa(cpu, vaHi, vaLo);
    const wide = fmt.mode.wide;
    if (!wide) this.hl2.update(cpu, vaLo);
    const sh = this.shadowL1(cpu, vaHi, vaLo);
    if (sh === undefined || sh.fl) return;
    const m = cpu.mmu;
    const hw = m.format as NonNullable<typeof m.format>;
    const idx = vaIndex(vaHi, vaLo, 12, hw.mode.indexMask[1] as number);
    const st = this.st;
    let eLo = 0;
    let eHi = 0;
    if (!wide) {
      this.hl2.beginLinear(cpu.cr3RootPfn, vaLo);
      const g = this.hl2.linearSpace.frameForRead(sh.gfn);
      this.hl2.endLinear();
      const lo = g[(vaLo >>> 12) & 1023] as number;
      const e = this.prop.leaf(fmt, leafFrame(lo, 0, false, false, 12), lo, 0, false);
      eLo = e[0] as number;
      eHi = e[1] as number;
    }
    const f = st.domain.mem.read(sh.smfn);
    if ((f[2 * idx] as number) === eLo && (f[2 * idx + 1] as number) === eHi) return;
    this.counters['invlpg.entries']++;
    this.set.setEntry(sh, idx, eLo, eHi, null);
  }

  /** The shadow l1 the hardware would use for `va` on this vCPU (__shadow_get_l1e), if its path is present. */
  private shadowL1(cpu: Cpu, vaHi: number, vaLo: number): XenShadow | undefined {
    const m = cpu.mmu;
    const hw = m.format;
    if (hw === null) return undefined;
    const mode = hw.mode;
    const mem = this.st.domain.mem;
    let level = mode.topLevel;
    let table = m.rootPfn;
    if (m.pdpte !== null) {
      const lo = m.pdpte[2 * (vaLo >>> 30)] as number;
      if ((lo & PTE_P) === 0) return undefined;
      table = entryFrame(lo, m.pdpte[2 * (vaLo >>> 30) + 1] as number);
      level = 2;
    }
    for (; level > 1; level--) {
      const f = mem.read(table);
      const i = vaIndex(vaHi, vaLo, mode.shift[level] as number, mode.indexMask[level] as number);
      const lo = f[2 * i] as number;
      if ((lo & PTE_P) === 0 || (lo & PTE_PS) !== 0) return undefined;
      table = entryFrame(lo, f[2 * i + 1] as number);
    }
    return this.st.byMfn.get(table);
  }

  // ---- page faults ---------------------------------------------------------------

  /** shadow_fault (shadow_fault_32 / shadow_fault_64). */
  private shadowFault(cpu: Cpu): number {
    const { vaHi, vaLo, cpl } = cpu.exitInfo;
    const access = cpu.exitInfo.access as AccessKind;
    const fmt = cpu.format;
    const st = this.st;
    const c = this.counters;
    if (fmt === null) return this.physicalAccess(cpu, vaLo >>> 12, vaLo & 0xfff, access);
    // STEP 1: is the fault caused by an out-of-sync entry? Then resync everything.
    this.oos.syncVa(cpu, vaHi, vaLo);
    // STEP 2: the guest's own walk; a 2-level guest's PTE is read through the hl2.
    let space: DataSpace = st.guestSpace;
    if (!fmt.mode.wide) {
      this.hl2.update(cpu, vaLo);
      this.hl2.beginLinear(cpu.cr3RootPfn, vaLo);
      space = this.hl2.linearSpace;
    }
    const w = st.walk;
    const r = st.walker.walk(space, fmt, cpu.cr3RootPfn, fmt.mode.pdpteRegisters ? cpu.pdpte : null, vaHi, vaLo, w);
    // The guest's own #PF (error code 0 is one: a supervisor read of a not-present page).
    const error =
      r !== WALK_OK ? faultError(r, access, cpl, cpu.ctl) : checkAccess(w.perm, access, cpl, cpu.ctl, cpu.pkru);
    if (r !== WALK_OK || error !== 0) {
      this.hl2.endLinear();
      c['fault.injected']++;
      return error;
    }
    // A table that is out of sync and about to get a new shadow is resynced first (shadow_promote).
    if (this.oos.pages > 0) this.promoteWalk(fmt);
    w.commit(access === WRITE, space); // the guest's A and D flags, as native hardware sets them
    this.hl2.endLinear();
    const logging = st.domain.logDirty.on;
    if (logging) for (let k = 0; k < w.n; k++) this.markDirty(w.tables[k] as number);
    const within = ((vaLo >>> 12) | (vaHi << 20)) & ((1 << (w.shift - 12)) - 1);
    const gfn = w.pfn + within;
    const mfn = st.p2m.lookup(gfn);
    if (mfn < 0) {
      c['emulate.mmio']++;
      return this.emulate(cpu, gfn, vaLo & 0xfff, access);
    }
    const write = access === WRITE;
    if (write) {
      if (st.p2m.lastType === P2M_RAM_RO) {
        c['emulate.rom_write_discarded']++;
        return HOST_DONE;
      }
      if (checkAccess(w.perm, access, cpl, cpu.ctl | CTL_WP, cpu.pkru) !== 0) {
        // Allowed only because the guest runs with CR0.WP=0; the hardware runs with WP=1.
        c['emulate.wp0_write']++;
        if (st.isPageTable(gfn) && !this.oos.has(gfn)) this.oos.markMfn(cpu, gfn);
        return this.emulate(cpu, gfn, vaLo & 0xfff, access);
      }
      this.markDirty(gfn);
    }
    const key = `${cpu.index}:${cpu.counters.reads + cpu.counters.writes + cpu.counters.fetches}:${vaHi}:${vaLo}:${access}`;
    if (key === this.lastFault) {
      if (++this.repeats >= 4) {
        c['emulate.loop_guard']++;
        this.repeats = 0;
        return this.emulate(cpu, gfn, vaLo & 0xfff, access);
      }
    } else {
      this.lastFault = key;
      this.repeats = 0;
    }
    // STEP 3: the shadow path and leaf; a write to a page table takes it out of sync (l1pte_write_fault).
    const leaf = this.prop.build(fmt, vaHi, vaLo, write);
    if (this.prop.replaced) this.set.shootdown();
    if (write && st.isPageTable(gfn)) {
      const f = st.domain.mem.read(leaf.sh.smfn);
      if (((f[2 * leaf.index] as number) & PTE_RW) !== 0) this.oos.markVa(cpu, gfn, leaf);
    }
    c['fault.fixed']++;
    return HOST_RETRY;
  }

  /** shadow_promote on the path about to be built: an out-of-sync table with no shadow at its level is resynced first. */
  private promoteWalk(fmt: NonNullable<Cpu['format']>): void {
    const w = this.st.walk;
    const wide = fmt.mode.wide;
    for (let k = 0; k < w.n; k++) {
      const table = w.tables[k] as number;
      if (!this.oos.has(table)) continue;
      const level = w.levelAt(k);
      const index = w.indexAt(k);
      const part = wide ? 0 : level === 2 ? index >>> 8 : index >>> 9;
      if (this.status.lookup(fmt, level, table, part) === undefined) {
        this.oos.syncAll('promote');
        return;
      }
    }
  }

  /** Guest paging off: the hardware walked the P2M and could not complete the access. */
  private physicalAccess(cpu: Cpu, gfn: number, offset: number, access: AccessKind): number {
    const st = this.st;
    const mfn = st.p2m.lookup(gfn);
    if (mfn < 0) {
      this.counters['emulate.mmio']++;
      return this.emulate(cpu, gfn, offset, access);
    }
    if (access === WRITE && st.p2m.lastType === P2M_RAM_RO) {
      this.counters['emulate.rom_write_discarded']++;
      return HOST_DONE;
    }
    if (access === WRITE && st.isPageTable(gfn)) {
      // No shadow PTE to make writable: shadow_mark_mfn_out_of_sync, then the write.
      this.counters['emulate.pt_write']++;
      if (!this.oos.has(gfn)) this.oos.markMfn(cpu, gfn);
      return this.emulate(cpu, gfn, offset, access);
    }
    this.counters['fault.fixed']++;
    return HOST_RETRY; // lookup() populated the P2M entry
  }

  /** Perform the pending access on guest frame `gfn` (MMIO: reads all ones, writes discarded). */
  private emulate(cpu: Cpu, gfn: number, offset: number, access: AccessKind): number {
    const guest = this.st.guestSpace;
    if (access === WRITE) {
      const f = guest.frameForWrite(gfn);
      if (f !== null) {
        this.markDirty(gfn);
        writeValue(f, offset, cpu.pendingSize, cpu.pendingHi, cpu.pendingLo);
      }
    } else {
      readValue(guest.frameForRead(gfn), offset, access === FETCH ? 1 : cpu.pendingSize, cpu);
    }
    return HOST_DONE;
  }

  // ---- devices, the P2M, log-dirty -------------------------------------------------

  /**
   * A device or loader wrote guest memory (pwrite). A page out of sync is
   * resynced with everything else (__shadow_sync_mfn); a page table in sync
   * has the shadow (and hl2) entries of the written entries recomputed, as
   * shadow_l1_normal_pt_update / shadow_l2_normal_pt_update did for updates
   * Xen made itself.
   */
  physicalWrite(gfn: number, offset = 0, size = 4096): void {
    this.markDirty(gfn);
    const st = this.st;
    if (!st.isPageTable(gfn)) return;
    this.counters.physical_writes++;
    if (this.oos.has(gfn)) {
      this.oos.syncAll('other');
      return;
    }
    const live = st.guestSpace.frameForRead(gfn);
    let flush = false;
    for (const sh of [...(st.byGfn.get(gfn) ?? [])]) {
      const bytes = sh.guestWide ? 8 : 4;
      for (let gi = Math.floor(offset / bytes); gi <= Math.floor((offset + size - 1) / bytes); gi++) {
        for (const i of derivedEntries(sh, gi)) {
          this.counters.entries_revalidated++;
          if (this.prop.validate(sh, i, live)) flush = true;
        }
      }
    }
    this.hl2.revalidate(gfn, offset >>> 2, (offset + size - 1) >>> 2);
    if (flush) this.set.shootdown();
  }

  /**
   * What backs guest frames [first, first+count) changed: every shadow of
   * them goes (their tables are ROM or gone now), and every shadow and hl2
   * entry mapping them (shadow_remove_all_access: a search of every l1 and
   * hl2 in the hash), then every TLB is flushed.
   */
  physmapChanged(first: number, count: number): void {
    const st = this.st;
    const c = this.counters;
    c['p2m.changes']++;
    this.oos.syncAll('other');
    let flush = st.p2m.retype(first, count);
    const end = first + count;
    const tables = [...new Set([...st.byGfn.keys(), ...st.hl2ByGfn.keys()])].filter((g) => g >= first && g < end);
    for (const gfn of tables) {
      c['p2m.unshadowed']++;
      if (this.status.removeShadowsOf(gfn)) flush = true;
      const t = this.hl2.get(gfn);
      if (t !== undefined) {
        t.pinned = false;
        // One a vCPU still uses stays, rewritten from what the frame holds now.
        if (!this.hl2.release(t)) this.hl2.revalidate(gfn, 0, 1023);
      }
    }
    const placement = st.domain.placement;
    const gone = (mfn: number): boolean => {
      const g = placement.gfnOf(mfn);
      return g >= first && g < end;
    };
    for (const rec of [...st.ht.values()]) {
      const sh = rec as XenShadow;
      if (sh.level !== 1 || sh.min > sh.max || !st.byMfn.has(sh.smfn)) continue;
      c['p2m.l1_searched']++;
      const f = st.domain.mem.read(sh.smfn);
      for (let i = sh.min; i <= sh.max; i++) {
        const lo = f[2 * i] as number;
        if ((lo & PTE_P) === 0 || !gone(entryFrame(lo, f[2 * i + 1] as number))) continue;
        this.set.setEntry(sh, i, 0, 0, null);
        c['p2m.mappings_removed']++;
        flush = true;
      }
    }
    if (this.hl2.removeMappings(gone)) flush = true;
    if (flush) this.set.shootdown();
    this.maybeCheck();
  }

  /** Log-dirty mode starts (shadow_mode_enable with SHM_log_dirty): every shadow goes, rebuilt read-only. */
  enable(): void {
    this.freeShadowPages();
  }

  /** DOM0_SHADOW_CONTROL_OP_CLEAN: the log is read and cleared, and every shadow thrown away (free_shadow_pages). */
  clean(_gfns: readonly number[]): void {
    this.counters['logdirty.cleans']++;
    this.freeShadowPages();
  }

  disable(): void {}

  /** free_shadow_pages, then __update_pagetables for every vCPU: everything is rebuilt from the guest's tables. */
  private freeShadowPages(): void {
    this.oos.syncAll('other');
    for (const t of [...this.st.hl2ByGfn.values()]) {
      t.pinned = false;
      this.hl2.release(t);
    }
    if (this.status.freeAll()) this.set.shootdown();
    for (const c of this.st.cpus) this.load(c);
    this.maybeCheck();
  }

  private markDirty(gfn: number): void {
    if (this.st.domain.logDirty.mark(gfn)) this.counters['logdirty.pages_dirtied']++;
  }

  // ---- the isolation checker -------------------------------------------------------

  private maybeCheck(): void {
    if (!this.opts.check) return;
    const problem = this.checkInvariants();
    if (problem !== null) throw new Error(`xen30 isolation invariant broken: ${problem}`);
  }

  /** Reference counts, the hl2s, and every path through the shadows (pagers/shadow/audit.ts); null if all hold. */
  checkInvariants(): string | null {
    return (
      this.status.checkRefs(this.oos.references()) ??
      this.hl2.check((gfn) => this.oos.snaps.words(gfn)) ??
      auditPaths(this.auditView()) ??
      auditHardwareCaches(this.st.cpus, this.auditView())
    );
  }

  private auditView(): AuditView {
    const st = this.st;
    const guest = st.guestSpace;
    const oos = this.oos;
    const guestView: PhysicalSpace = {
      frameForRead: (gfn) => oos.snaps.words(gfn) ?? guest.frameForRead(gfn),
      locate: (gfn) => frameAt(guestView.frameForRead(gfn)),
    };
    const p2m = st.p2m;
    const mem = st.domain.mem;
    const log = st.domain.logDirty;
    return {
      domainId: st.domain.id,
      shadowFrame: (smfn) => mem.read(smfn),
      ownerOf: (mfn) => mem.ownerOf(mfn),
      shadowAt: (smfn) => st.byMfn.get(smfn),
      guestView,
      mfnOf: (gfn) => p2m.lookup(gfn),
      isRamRw: (gfn) => p2m.lookup(gfn) >= 0 && p2m.lastType === P2M_RAM_RW,
      writableOk: (gfn) => {
        if (!oos.writableOk(gfn)) return `writable over page table ${gfn}, which is not out of sync`;
        if (log.on && !log.isDirty(gfn)) return `writable, gfn ${gfn} not logged dirty`;
        return null;
      },
      superpageOk: () => 'a shadow superpage (Xen 3.0 splintered every guest superpage)',
      roots: () => this.auditRoots(),
    };
  }

  /** Every vCPU's hardware root, and every pinned top-level shadow no vCPU runs on. */
  private *auditRoots(): Generator<AuditRoot> {
    const current = new Set<XenShadow>();
    for (const c of this.st.cpus) {
      const fmt = c.format;
      const hw = c.mmu.format;
      if (fmt === null || hw === null) continue;
      const top = this.st.byMfn.get(c.mmu.rootPfn);
      if (top !== undefined && c.mmu.pdpte === null) current.add(top);
      const pd = fmt.mode.pdpteRegisters ? c.pdpte : null;
      yield {
        guestFmt: fmt,
        hwFmt: hw,
        guestRoot: c.cr3RootPfn,
        guestPdpte: pd,
        hwRoot: c.mmu.rootPfn,
        hwPdpte: c.mmu.pdpte,
      };
    }
    for (const sh of this.status.pinned()) {
      if (current.has(sh)) continue;
      const hwFmt = formatFor(hardwareMode(sh.fmt), HOST_MAXPHYADDR, true, sh.fmt.pse);
      if (sh.level === hwFmt.mode.topLevel && !hwFmt.mode.pdpteRegisters) {
        yield { guestFmt: sh.fmt, hwFmt, guestRoot: sh.gfn, guestPdpte: null, hwRoot: sh.smfn, hwPdpte: null };
        continue;
      }
      // A pinned l2 of a PAE or 32-bit guest, as if a PDPTE register named it.
      const slot = sh.fmt.mode.pdpteRegisters ? 0 : sh.part;
      const hwPdpte = new Uint32Array(8);
      hwPdpte[2 * slot] = entryLo(sh.smfn, PTE_P);
      hwPdpte[2 * slot + 1] = entryHi(sh.smfn);
      const guestPdpte = sh.fmt.mode.pdpteRegisters
        ? Uint32Array.of(entryLo(sh.gfn, PTE_P), entryHi(sh.gfn), 0, 0, 0, 0, 0, 0)
        : null;
      yield { guestFmt: sh.fmt, hwFmt, guestRoot: sh.gfn, guestPdpte, hwRoot: 0, hwPdpte };
    }
  }

  // ---- what the tests look at ----------------------------------------------------

  /** The shadow_ht chain lengths, bucket by bucket. */
  hashChains(): number[] {
    return this.st.ht.chainLengths();
  }

  /** Guest frames out of sync now, and the entries on the list. */
  outOfSync(): { pages: number[]; entries: number } {
    return { pages: [...this.oos.snaps.gfns()], entries: this.oos.entries };
  }

  /** The shadows of guest frame `gfn`: level, pinned, and whether it has an hl2 (and the frame each hl2 entry maps). */
  shadowsOf(gfn: number): { levels: number[]; pinned: boolean[]; hl2: number[] | null } {
    const list = this.st.byGfn.get(gfn) ?? [];
    const t = this.hl2.get(gfn);
    return {
      levels: list.map((sh) => sh.level),
      pinned: list.map((sh) => sh.pinned),
      hl2: t === undefined ? null : Array.from({ length: 1024 }, (_, i) => this.hl2.entry(t, i)),
    };
  }
}
