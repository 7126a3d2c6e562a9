/**
 * The shadow pager: a translated guest on shadow page tables (Xen's shadow
 * mode with SHM_translate; KVM's shadow MMU).
 *
 * The guest's tables map VA -> gfn; the P2M maps gfn -> mfn; shadows are real
 * x86 tables in hypervisor frames mapping VA -> mfn, and CR3 points at one.
 * With guest paging off the hardware walks the P2M itself (VA = GPA).
 *
 * This file is the façade: attach, the exits and their dispatch, the fault
 * path's policy (fast path, guest walk, emulation decisions, early unshadow),
 * loading each vCPU's MMU context, stats and the isolation checker's view.
 * It composes the parts, each with one job and the rules it keeps in its
 * header, bottom up (no part imports one above it; the two calls upwards go
 * through an interface the lower part declares: ShadowReleaser, FixupRecorder, LeafSetter):
 *   counters.ts   the counters and what each one means (SHADOW_COUNTERS)
 *   state.ts      what every part shares (domain, P2M, vCPUs, byMfn, byGfn)
 *   set.ts        the one writer of shadow entries, the reverse maps (rule 4)
 *   wrmap.ts      finding writable mappings as Xen does (guesses, brute force)
 *   oos.ts        out-of-sync l1s, their snapshots and fixup arrays
 *   lru.ts        the pinned roots' load order, threaded through the records
 *   cache.ts      the shadow hash, pinning, the pool (rules 1, 7)
 *   logdirty.ts   log-dirty mode
 *   propagate.ts  shadow entries from guest entries (rules 2, 3, 6)
 *   magic.ts, types.ts, options.ts, audit.ts: entries, records, switches, checker
 *
 * Rules this file keeps (the isolation checker, audit.ts, checks the rules of
 * every part from the outside, path by path, after every exit with --check):
 *  5. Hardware CR0.WP is forced on; the guest's WP=0 (supervisor writes to
 *     read-only pages) is emulated, as are MMIO, ROM writes and writes to
 *     shadowed guest tables.
 *  - The pool is made room in (cache.ts, prealloc) before every exit that
 *    may build shadows: a guest fault, and a load of a new MMU context.
 *  - Every exit but a page fault is a point where the guest must expect its
 *    TLB to be flushed: out-of-sync l1s are resynced there.
 *  - A fault that would be fixed again without progress is emulated instead
 *    (emulate.loop_guard), so the fault path always terminates.
 */
import { CTL_WP, checkAccess, faultError, PERM_D } from '../../arch/x86/access.js';
import { type AccessKind, FETCH, PF_RSVD, PTE_P, WRITE } from '../../arch/x86/bits.js';
import { type Cpu, HOST_DONE, HOST_RETRY, readValue, writeValue } from '../../arch/x86/cpu.js';
import { entryHi, entryLo } from '../../arch/x86/entry.js';
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
import { leafPermission, type PhysicalSpace, WALK_OK } from '../../arch/x86/walker.js';
import type { Domain } from '../../hypervisor/domain.js';
import type { CounterDecl, Pager } from '../../hypervisor/pager.js';
import { frameAt } from '../../machine/memory.js';
import { P2M_MMIO, P2M_RAM_RO, P2M_RAM_RW } from '../../p2m/p2m.js';
import { installPwc, PWC_COUNTERS, pwcStats } from '../pwc.js';
import { type AuditRoot, type AuditView, auditHardwareCaches, auditPaths } from './audit.js';
import { ShadowCache } from './cache.js';
import { newCounters, SHADOW_COUNTERS, type ShadowCounters, type ShadowStats } from './counters.js';
import { DirtyLog } from './logdirty.js';
import { HOST_MAXPHYADDR, isMagic, isMmioMagic, mmioMagicGfn } from './magic.js';
import { OutOfSync } from './oos.js';
import { DEFAULT_SWITCHES, type ShadowSwitches } from './options.js';
import { Propagator } from './propagate.js';
import { ShadowSet } from './set.js';
import { ShadowState } from './state.js';
import { hardwareMode } from './types.js';
import { hwL1Slot, WriteAccess } from './wrmap.js';

export { SHADOW_COUNTERS } from './counters.js';

/** fastFault(): not a fast-path fault, take the slow path. */
const NOT_FAST = -100;

export interface ShadowOptions {
  /** Run the isolation checker after every exit (tests). */
  check?: boolean;
  /** The pager's name in statistics (its spec, e.g. "shadow:-oos"). */
  name?: string;
  /** Optimizations to change from their defaults (options.ts). */
  switches?: Partial<ShadowSwitches>;
}

export class ShadowPager implements Pager {
  /** Every counter stats() reports, with what it means. */
  static readonly counters: readonly CounterDecl[] = [...SHADOW_COUNTERS, ...PWC_COUNTERS];
  readonly name: string;
  private readonly sw: ShadowSwitches;
  private readonly counters: ShadowCounters = newCounters();
  // The parts (made at attach).
  private st!: ShadowState;
  private oos!: OutOfSync;
  private cache!: ShadowCache;
  private dirty!: DirtyLog;
  private prop!: Propagator;
  private set!: ShadowSet;
  /** Early unshadow: the frame of the last emulated write of zero (-1: none). */
  private lastZeroWrite = -1;
  /** The loop guard: the last fault fixed, and how often in a row. */
  private lastFaultOp = -1;
  private lastFaultHi = 0;
  private lastFaultLo = -1;
  private lastFaultAccess = -1;
  private repeats = 0;

  constructor(private readonly opts: ShadowOptions = {}) {
    this.name = opts.name ?? 'shadow';
    this.sw = { ...DEFAULT_SWITCHES, ...opts.switches };
  }

  attach(domain: Domain, cpus: Cpu[]): void {
    const st = new ShadowState(domain, cpus, this.sw, this.counters);
    const set = new ShadowSet(st);
    const wrmap = new WriteAccess(st, set);
    const oos = new OutOfSync(st, set, wrmap);
    const cache = new ShadowCache(st, set, oos, wrmap);
    const dirty = new DirtyLog(st, set, cache);
    this.st = st;
    this.set = set;
    this.oos = oos;
    this.cache = cache;
    this.dirty = dirty;
    this.prop = new Propagator(st, set, oos, cache, dirty);
    cache.sizePool();
    installPwc(cpus, this.sw.pwc);
    for (const c of cpus) this.load(c);
  }

  stats(): ShadowStats {
    const p2m = this.st.p2m;
    return {
      ...this.counters,
      p2m_table_frames: p2m.tableFrames,
      p2m_entries: p2m.populated,
      ...pwcStats(this.st.cpus, false),
    };
  }

  // ---- exits ----------------------------------------------------------------

  exit(cpu: Cpu, reason: ExitReason): number {
    const c = this.counters;
    c.exits++;
    this.st.exitCpu = cpu;
    switch (reason) {
      case EXIT_PAGE_FAULT: {
        c['exit.page_fault']++;
        const st = this.st;
        st.faultValid = true;
        st.faultHi = cpu.exitInfo.vaHi;
        st.faultLo = cpu.exitInfo.vaLo;
        const r = this.pageFault(cpu);
        st.faultValid = false;
        this.maybeCheck();
        return r;
      }
      case EXIT_CR_WRITE:
        c['exit.cr_write']++;
        break;
      case EXIT_MSR_WRITE:
        c['exit.msr_write']++;
        break;
      case EXIT_INVLPG:
        c['exit.invlpg']++;
        break;
      case EXIT_INVPCID:
        c['exit.invpcid']++;
        break;
      case EXIT_FLUSH:
        c['exit.flush']++;
        break;
      default:
        // EPT/NPT exits come only from hardware the shadow pager does not set up.
        throw new Error(`shadow pager: an ${EXIT_NAMES[reason]} exit, which shadow paging never causes`);
    }
    // Every other exit is a point where the guest must expect its TLB to be
    // flushed (MOV to CR0/CR3/CR4 and EFER writes change what the tables mean
    // or which are in use; INVLPG, INVPCID and flush invalidate), so
    // out-of-sync l1s must not be relied on past it. As Xen: an INVLPG (or
    // INVPCID of one address) drops the one shadow entry it names if its l1
    // is out of sync (sh_invlpg); anything wider resyncs this vCPU's pages
    // and updates the others' (sh_update_cr3). resyncall (Umbra's): resync all.
    const x = cpu.exitInfo;
    if (this.sw.resyncall) this.oos.resyncAll('guest_flush');
    else if (reason === EXIT_INVLPG || (reason === EXIT_INVPCID && x.invpcidType === 0))
      this.invlpg(cpu, x.vaHi, x.vaLo);
    else {
      this.oos.flushedOwn(cpu.index);
      if (reason === EXIT_CR_WRITE || reason === EXIT_MSR_WRITE) this.load(cpu);
      this.oos.flushedOthers(cpu.index);
      this.maybeCheck();
      return 0;
    }
    if (reason === EXIT_CR_WRITE || reason === EXIT_MSR_WRITE) this.load(cpu);
    this.maybeCheck();
    return 0;
  }

  /**
   * Xen's sh_invlpg: find the l1 shadow the hardware would use for `va` on
   * this vCPU; if it shadows an out-of-sync l1, drop the entry for `va`, so
   * the next access rebuilds it from the guest's entry. (An l1 in sync needs
   * nothing: every guest write to it was trapped and revalidated.)
   */
  private invlpg(cpu: Cpu, vaHi: number, vaLo: number): void {
    if (this.oos.size === 0) return;
    const slot = hwL1Slot(this.st, cpu, vaHi, vaLo);
    if (slot < 0) return;
    const sh = this.st.byMfn.get(Math.floor(slot / 1024));
    const idx = slot % 1024;
    if (sh === undefined || sh.fl || !this.oos.has(sh.gfn)) return;
    if (((this.st.domain.mem.read(sh.smfn)[2 * idx] as number) & PTE_P) === 0) return;
    this.set.setEntry(sh, idx, 0, 0, null);
    this.counters['oos.invlpg_dropped']++;
  }

  // ---- control state -----------------------------------------------------

  /** Point the vCPU's MMU at the shadows (or the P2M) for its current control state. */
  private load(cpu: Cpu): void {
    const fmt = this.st.guestFormat(cpu);
    const m = cpu.mmu;
    m.space = this.st.hwSpace;
    if (fmt === null) {
      // Paging off, switch unpagedp2m (Umbra's): the hardware walks the P2M
      // itself, VA = GPA. Shadowed guest tables are read-only there too, so
      // writes to them still trap.
      m.format = this.st.p2m.format;
      m.rootPfn = this.st.p2m.rootMfn;
      m.pdpte = null;
      m.ctlAnd = 0;
      m.ctlOr = CTL_WP;
    } else {
      // Paging on, or off as Xen runs it: on shadows of the 1:1 table
      // (UNPAGED_GFN), where no paging control (SMEP, SMAP, WP, keys) applies.
      m.format = formatFor(hardwareMode(fmt), HOST_MAXPHYADDR, true, fmt.pse);
      m.ctlAnd = cpu.format === null ? 0 : -1;
      m.ctlOr = CTL_WP;
      const root = this.st.guestRoot(cpu);
      if (hardwareMode(fmt).pdpteRegisters) {
        this.cache.prealloc();
        m.pdpte = this.cache.pdptes(cpu, fmt, root);
        m.rootPfn = 0;
      } else {
        m.pdpte = null;
        this.cache.prealloc();
        m.rootPfn = this.cache.pinRoot(fmt, root).smfn;
      }
    }
    cpu.mmu.flushContext(-1, true);
  }

  /** A device or loader wrote guest memory (pwrite): keep shadows of that frame coherent. */
  physicalWrite(gfn: number, offset = 0, size = 4096): void {
    this.st.exitCpu = null;
    this.dirty.markDirty(gfn);
    if (!this.st.byGfn.has(gfn)) return;
    this.counters.physical_writes++;
    // A device does not invalidate TLBs: an out-of-sync page is resynced at once.
    if (this.oos.has(gfn)) this.oos.resync(gfn, 'physical_write');
    else this.prop.revalidate(gfn, offset, size);
  }

  /**
   * What backs guest frames [first, first+count) changed (a p2m operation,
   * ballooning): as Xen's sh_unshadow_for_p2m_change (shadow/hvm.c) does for
   * every P2M entry it rewrites, the frames' shadows go (they shadow tables
   * that are now ROM or gone) and so does every shadow mapping of them, then
   * every vCPU's TLB is flushed. The P2M entries are rewritten from the
   * domain's physmap; with guest paging off the hardware walks them, so a
   * change of a present one flushes too.
   */
  physmapChanged(first: number, count: number): void {
    const st = this.st;
    st.exitCpu = null;
    const c = this.counters;
    c['p2m.changes']++;
    st.epoch++; // table frames may have changed type (propagate.ts reads it for their flags)
    let flush = st.p2m.retype(first, count);
    const end = first + count;
    const shadowed =
      count <= st.byGfn.size
        ? Array.from({ length: count }, (_, i) => first + i).filter((g) => st.byGfn.has(g))
        : [...st.byGfn.keys()].filter((g) => g >= first && g < end);
    for (const gfn of shadowed) {
      c['p2m.unshadowed']++;
      if (this.cache.removeAll(gfn)) flush = true;
    }
    if (this.cache.removeMappings(first, count)) flush = true;
    if (flush) this.set.shootdown();
    this.maybeCheck();
  }

  // ---- page faults -------------------------------------------------------

  private pageFault(cpu: Cpu): number {
    const { vaHi, vaLo, cpl, error } = cpu.exitInfo;
    const access = cpu.exitInfo.access as AccessKind;
    if ((error & PF_RSVD) !== 0 && this.sw.fastpath) {
      const fast = this.fastFault(cpu, vaLo, access, cpl);
      if (fast !== NOT_FAST) return fast;
    }
    return this.handleFault(cpu, vaHi, vaLo, access, cpl);
  }

  /**
   * The fast path: the hardware hit a magic entry, which says what the fault
   * is without walking the guest's tables — a guest not-present entry (the
   * guest's own #PF) or MMIO (emulate). An out-of-sync l1 may have been
   * written since, and a write through an entry whose guest D flag is clear
   * must set it: both take the slow path. The rights of an MMIO access are
   * the magic entry's own (the guest leaf's) with those of the entries above
   * it on the path the hardware walked (magic.ts, rule 1).
   */
  private fastFault(cpu: Cpu, vaLo: number, access: AccessKind, cpl: number): number {
    const w = cpu.mmu.walk; // the hardware walk that faulted, ended by the entry with reserved bits
    const lo = w.entryLo;
    const hi = w.entryHi;
    const fmt = this.st.guestFormat(cpu);
    if (!isMagic(lo, hi) || fmt === null) return NOT_FAST;
    // With paging off no paging control applies (the 1:1 table's rights are all).
    const ctl = cpu.format === null ? 0 : cpu.ctl;
    const sh = this.st.byMfn.get(w.entryTable);
    if (sh === undefined || sh.level !== 1 || (!sh.fl && this.oos.has(sh.gfn))) return NOT_FAST;
    if (!isMmioMagic(lo, hi)) {
      this.counters['fastpath.not_present']++;
      this.counters['fault.injected']++;
      return faultError(0, access, cpl, ctl);
    }
    const perm = leafPermission(fmt, w.acc & lo, w.xd | hi, lo, hi);
    if (access === WRITE && (perm & PERM_D) === 0) return NOT_FAST;
    const error = checkAccess(perm, access, cpl, ctl, cpu.pkru);
    if (error !== 0) {
      this.counters['fault.injected']++;
      return error;
    }
    this.counters['fastpath.mmio']++;
    this.counters['emulate.mmio']++;
    return this.emulate(cpu, mmioMagicGfn(lo, hi), vaLo & 0xfff, access);
  }

  private handleFault(cpu: Cpu, vaHi: number, vaLo: number, access: AccessKind, cpl: number): number {
    const st = this.st;
    const fmt = st.guestFormat(cpu);
    this.cache.prealloc();
    if (fmt === null) return this.physicalAccess(cpu, vaLo >>> 12, vaLo & 0xfff, access);
    // With paging off (the 1:1 table) no paging control applies.
    const ctl = cpu.format === null ? 0 : cpu.ctl;
    // Walk the guest's own tables, as the hardware would natively.
    const w = st.walk;
    const r = st.walker.walk(
      st.guestSpace,
      fmt,
      st.guestRoot(cpu),
      fmt.mode.pdpteRegisters ? cpu.pdpte : null,
      vaHi,
      vaLo,
      w,
    );
    if (r !== WALK_OK) {
      this.counters['fault.injected']++;
      // Umbra's, not Xen's (switch gnp): remember the guest's not-present l1 entry as a magic entry.
      if (r === 0 && w.level === 1 && this.sw.fastpath && this.sw.gnp) this.prop.markNotPresent(fmt, vaHi, vaLo);
      return faultError(r, access, cpl, ctl);
    }
    const error = checkAccess(w.perm, access, cpl, ctl, cpu.pkru);
    if (error !== 0) {
      this.counters['fault.injected']++;
      return error;
    }
    w.commit(access === WRITE, st.guestSpace); // the guest's A and D flags, exactly as native hardware sets them
    if (this.dirty.on) {
      // Setting A/D flags writes the guest's tables: those frames are dirty too.
      for (let k = 0; k < w.n; k++) this.dirty.markDirty(w.tables[k] as number);
    }
    const within = ((vaLo >>> 12) | (vaHi << 20)) & ((1 << (w.shift - 12)) - 1);
    const gfn = w.pfn + within;
    const mfn = st.p2m.lookup(gfn);
    const type = st.p2m.lastType;
    if (mfn < 0) {
      this.counters['emulate.mmio']++;
      // With the fast path, leave an MMIO magic entry: the next access is emulated without a walk
      // (not for a frame taken away: it may come back, propagate.ts).
      if (this.sw.fastpath && type === P2M_MMIO) this.prop.fix(fmt, vaHi, vaLo);
      return this.emulate(cpu, gfn, vaLo & 0xfff, access);
    }
    if (access === WRITE) {
      if (type === P2M_RAM_RO) {
        this.counters['emulate.rom_write_discarded']++;
        return HOST_DONE;
      }
      this.dirty.markDirty(gfn);
      if (this.oos.writeProtected(gfn)) {
        if (!this.oos.canUnsync(gfn)) {
          this.counters['emulate.pt_write']++;
          const r = this.emulate(cpu, gfn, vaLo & 0xfff, access);
          this.earlyUnshadow(cpu, gfn);
          return r;
        }
        // Let the guest write this l1 directly until it next flushes its TLB.
        this.oos.unsync(cpu, gfn);
      }
      if (checkAccess(w.perm, access, cpl, ctl | CTL_WP, cpu.pkru) !== 0) {
        // Allowed only because the guest runs with CR0.WP=0 (a read-only page,
        // or a protection key's write-disable): the hardware runs with WP=1.
        this.counters['emulate.wp0_write']++;
        return this.emulate(cpu, gfn, vaLo & 0xfff, access);
      }
    }
    // Termination guard: a fix that does not let the hardware proceed would
    // loop; emulate instead (counted: it means a missing case above).
    const op = cpu.counters.reads + cpu.counters.writes + cpu.counters.fetches;
    if (
      op === this.lastFaultOp &&
      vaHi === this.lastFaultHi &&
      vaLo === this.lastFaultLo &&
      access === this.lastFaultAccess
    ) {
      if (++this.repeats >= 4) {
        this.counters['emulate.loop_guard']++;
        this.repeats = 0;
        return this.emulate(cpu, gfn, vaLo & 0xfff, access);
      }
    } else {
      this.lastFaultOp = op;
      this.lastFaultHi = vaHi;
      this.lastFaultLo = vaLo;
      this.lastFaultAccess = access;
      this.repeats = 0;
    }
    this.prop.fix(fmt, vaHi, vaLo);
    this.counters['fault.fixed']++;
    return HOST_RETRY;
  }

  /** Guest paging off: the hardware walked the P2M and found nothing usable. */
  private physicalAccess(cpu: Cpu, gfn: number, offset: number, access: AccessKind): number {
    const p2m = this.st.p2m;
    const mfn = p2m.lookup(gfn);
    if (mfn < 0) {
      this.counters['emulate.mmio']++;
      return this.emulate(cpu, gfn, offset, access);
    }
    if (access === WRITE && p2m.lastType === P2M_RAM_RO) {
      this.counters['emulate.rom_write_discarded']++;
      return HOST_DONE;
    }
    if (access === WRITE && this.st.byGfn.has(gfn)) {
      this.counters['emulate.pt_write']++;
      return this.emulate(cpu, gfn, offset, access);
    }
    this.counters['fault.fixed']++;
    return HOST_RETRY; // lookup() populated the entry
  }

  /** Perform the pending access on guest frame `gfn` (read all ones / discard for MMIO). */
  private emulate(cpu: Cpu, gfn: number, offset: number, access: AccessKind): number {
    const guest = this.st.guestSpace;
    if (access === WRITE) {
      const f = guest.frameForWrite(gfn);
      if (f !== null) {
        this.dirty.markDirty(gfn);
        writeValue(f, offset, cpu.pendingSize, cpu.pendingHi, cpu.pendingLo);
        this.prop.revalidate(gfn, offset, cpu.pendingSize); // nothing unless `gfn` is shadowed
      }
    } else {
      readValue(guest.frameForRead(gfn), offset, access === FETCH ? 1 : cpu.pendingSize, cpu);
    }
    return HOST_DONE;
  }

  /**
   * Xen's early unshadow: two emulated writes of zero in a row to the same
   * table mean the guest is most likely tearing it down (exit, munmap): drop
   * its shadows instead of emulating every further write. Safe whatever the
   * guess: shadows are rebuilt from the guest's tables on the next fault.
   */
  private earlyUnshadow(cpu: Cpu, gfn: number): void {
    if (!this.sw.unshadow) return;
    if (cpu.pendingLo !== 0 || cpu.pendingHi !== 0) {
      this.lastZeroWrite = -1;
      return;
    }
    if (this.lastZeroWrite !== gfn) {
      this.lastZeroWrite = gfn;
      return;
    }
    this.lastZeroWrite = -1;
    if (this.cache.unshadow(gfn)) this.counters['unshadow.frames']++;
  }

  // ---- isolation checker -------------------------------------------------

  private maybeCheck(): void {
    if (!this.opts.check) return;
    const problem = this.checkInvariants();
    if (problem !== null) throw new Error(`shadow isolation invariant broken: ${problem}`);
  }

  /** Verify the pool bound, reference counts, and every path through the shadows (audit.ts); null if all hold. */
  checkInvariants(): string | null {
    const view = this.auditView();
    return this.cache.checkRefs() ?? auditPaths(view) ?? auditHardwareCaches(this.st.cpus, view);
  }

  /** What the checker may read: shadows, the P2M, and the guest as the shadows should reflect it. */
  private auditView(): AuditView {
    const st = this.st;
    const guest = st.guestSpace;
    const oos = this.oos;
    const guestView: PhysicalSpace = {
      frameForRead: (gfn) => oos.snapshot(gfn) ?? guest.frameForRead(gfn),
      locate: (gfn) => frameAt(guestView.frameForRead(gfn)),
    };
    const p2m = st.p2m;
    const mem = st.domain.mem;
    return {
      domainId: st.domain.id,
      shadowFrame: (smfn) => mem.read(smfn),
      ownerOf: (mfn) => mem.ownerOf(mfn),
      shadowAt: (smfn) => st.byMfn.get(smfn),
      guestView,
      mfnOf: (gfn) => p2m.lookup(gfn),
      isRamRw: (gfn) => p2m.lookup(gfn) >= 0 && p2m.lastType === P2M_RAM_RW,
      writableOk: (gfn) => {
        if (oos.writeProtected(gfn)) return `writable over shadowed guest table ${gfn}`;
        if (!this.dirty.writableOk(gfn)) return `writable, gfn ${gfn} not logged dirty`;
        return null;
      },
      recordedWritable: (gfn, smfn, index) => this.set.recordsWritable(gfn, smfn * 1024 + index),
      superpageOk: (first, count) => {
        if (this.dirty.on) return 'a shadow superpage in log-dirty mode';
        if (!this.prop.canMapLarge(first, count))
          return `a shadow superpage over gfns ${first}+${count} it may not cover`;
        return null;
      },
      roots: () => this.auditRoots(),
    };
  }

  /** Every vCPU's hardware root, and every pinned top-level shadow no vCPU runs on. */
  private *auditRoots(): Generator<AuditRoot> {
    const current = new Set<number>();
    for (const c of this.st.cpus) {
      const fmt = this.st.guestFormat(c);
      const hw = c.mmu.format;
      if (fmt === null || hw === null) continue;
      current.add(c.mmu.rootPfn);
      const guestPdpte = fmt.mode.pdpteRegisters ? c.pdpte : null;
      yield {
        guestFmt: fmt,
        hwFmt: hw,
        guestRoot: this.st.guestRoot(c),
        guestPdpte,
        hwRoot: c.mmu.rootPfn,
        hwPdpte: c.mmu.pdpte,
      };
    }
    for (const sh of this.cache.pinned()) {
      if (current.has(sh.smfn)) continue;
      const hwFmt = formatFor(hardwareMode(sh.fmt), HOST_MAXPHYADDR, true, sh.fmt.pse);
      if (sh.level === hardwareMode(sh.fmt).topLevel) {
        yield { guestFmt: sh.fmt, hwFmt, guestRoot: sh.gfn, guestPdpte: null, hwRoot: sh.smfn, hwPdpte: null };
        continue;
      }
      // A pinned l2 of a PAE or 32-bit guest: checked as if a PDPTE register
      // named it (slot 0 for PAE, its own quarter for a 32-bit PD).
      const slot = sh.fmt.mode.pdpteRegisters ? 0 : sh.part;
      const hwPdpte = new Uint32Array(8);
      hwPdpte[2 * slot] = entryLo(sh.smfn, PTE_P);
      hwPdpte[2 * slot + 1] = entryHi(sh.smfn);
      let guestPdpte: Uint32Array | null = null;
      if (sh.fmt.mode.pdpteRegisters) {
        guestPdpte = new Uint32Array(8);
        guestPdpte[0] = entryLo(sh.gfn, PTE_P);
        guestPdpte[1] = entryHi(sh.gfn);
      }
      yield { guestFmt: sh.fmt, hwFmt, guestRoot: sh.gfn, guestPdpte, hwRoot: 0, hwPdpte };
    }
  }
}
