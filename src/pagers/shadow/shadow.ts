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
 * through an interface the lower part declares, ShadowReleaser and LeafSetter;
 * propagation, shadow entries from guest entries, is still here):
 *   counters.ts   the counters and what each one means (SHADOW_COUNTERS)
 *   state.ts      what every part shares (domain, P2M, vCPUs, byMfn, byGfn)
 *   set.ts        the one writer of shadow entries, the reverse maps (rule 4)
 *   oos.ts        out-of-sync l1s and their snapshots
 *   cache.ts      the shadow hash, pinning, the pool (rules 1, 7)
 *   logdirty.ts   log-dirty mode
 *   magic.ts, types.ts, options.ts, audit.ts: entries, records, switches, checker
 *
 * Rules this file keeps (the isolation checker, audit.ts, checks the rules of
 * every part from the outside, path by path, after every exit with --check):
 *  2. A present shadow entry exists only for a guest entry that is present,
 *     has no reserved bits and has its accessed flag set; a leaf is writable
 *     only if the guest leaf is writable and dirty, the p2m type is ram_rw,
 *     the target frame is not itself a shadowed guest table and (in
 *     log-dirty mode) it is logged dirty. Rights are never more than guest
 *     rights ∩ p2m rights.
 *  3. Every guest frame that has a shadow is mapped read-only in every shadow
 *     (the cache revokes write access when it becomes shadowed), so every
 *     guest write to a guest table traps; it is emulated and the shadow
 *     entries derived from the written entries are dropped (rebuilt lazily).
 *  5. Hardware CR0.WP is forced on; the guest's WP=0 (supervisor writes to
 *     read-only pages) is emulated, as are MMIO, ROM writes and writes to
 *     shadowed guest tables.
 *  6. Magic entries (the fast path) hold only what the guest l1 entry says,
 *     never the rights of the path that made them (magic.ts).
 *  - The pool is made room in (cache.ts, prealloc) before every exit that
 *    may build shadows: a guest fault, and a load of a new MMU context.
 *  - Every exit but a page fault is a point where the guest must expect its
 *    TLB to be flushed: out-of-sync l1s are resynced there.
 *  - A fault that would be fixed again without progress is emulated instead
 *    (emulate.loop_guard), so the fault path always terminates.
 */
import { CTL_WP, checkAccess, faultError, PERM_D } from '../../arch/x86/access.js';
import { type AccessKind, FETCH, PF_RSVD, PTE_A, PTE_D, PTE_P, PTE_PS, PTE_RW, WRITE } from '../../arch/x86/bits.js';
import { type Cpu, HOST_DONE, HOST_RETRY, readValue, writeValue } from '../../arch/x86/cpu.js';
import { EXIT_CR_WRITE, EXIT_MSR_WRITE, EXIT_NAMES, EXIT_PAGE_FAULT, type ExitReason } from '../../arch/x86/exits.js';
import { formatFor, type WalkFormat } from '../../arch/x86/modes.js';
import { leafFrame, leafPermission, type PhysicalSpace, vaIndex, WALK_OK } from '../../arch/x86/walker.js';
import type { Domain } from '../../hypervisor/domain.js';
import type { CounterDecl, LogDirty, Pager } from '../../hypervisor/pager.js';
import { ZERO_FRAME } from '../../machine/memory.js';
import { P2M_RAM_RO, P2M_RAM_RW } from '../../p2m/p2m.js';
import { type AuditRoot, type AuditView, auditPaths } from './audit.js';
import { ShadowCache } from './cache.js';
import { newCounters, SHADOW_COUNTERS, type ShadowCounters } from './counters.js';
import { DirtyLog } from './logdirty.js';
import { GNP, HOST_MAXPHYADDR, isMagic, isMmioMagic, MAGIC_GFN_LIMIT, mmioMagic, mmioMagicGfn } from './magic.js';
import { type LeafSetter, OutOfSync } from './oos.js';
import { DEFAULT_SWITCHES, type ShadowSwitches } from './options.js';
import { NOT_PRESENT, ShadowSet } from './set.js';
import { ShadowState } from './state.js';
import {
  derivedEntries,
  guestIndex,
  HI_COPY,
  hardwareMode,
  LEAF_COPY_LO,
  NONLEAF_COPY_LO,
  type Shadow,
} from './types.js';

export { SHADOW_COUNTERS } from './counters.js';

/** Counter of each exit reason. */
const EXIT_KEYS = EXIT_NAMES.map((n) => `exit.${n}`);

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

export class ShadowPager implements Pager, LeafSetter {
  /** Every counter stats() reports, with what it means. */
  static readonly counters: readonly CounterDecl[] = SHADOW_COUNTERS;
  readonly name: string;
  private readonly sw: ShadowSwitches;
  private readonly counters: ShadowCounters = newCounters();
  // The parts (made at attach).
  private st!: ShadowState;
  private set!: ShadowSet;
  private oos!: OutOfSync;
  private cache!: ShadowCache;
  private dirty!: DirtyLog;
  /** Early unshadow: the frame of the last emulated write of zero (-1: none). */
  private lastZeroWrite = -1;
  /** The loop guard: the last fault fixed, and how often in a row. */
  private lastFaultOp = -1;
  private lastFaultHi = 0;
  private lastFaultLo = -1;
  private lastFaultAccess = -1;
  private repeats = 0;
  /** The Pager interface's log-dirty capability (what migration uses). */
  readonly logDirty: LogDirty = {
    enable: () => {
      if (!this.sw.logdirty) throw new Error(`${this.name}: log-dirty mode is switched off`);
      this.dirty.enable();
    },
    clean: () => this.dirty.clean(),
    disable: () => this.dirty.disable(),
  };

  constructor(private readonly opts: ShadowOptions = {}) {
    this.name = opts.name ?? 'shadow';
    this.sw = { ...DEFAULT_SWITCHES, ...opts.switches };
  }

  attach(domain: Domain, cpus: Cpu[]): void {
    const st = new ShadowState(domain, cpus, this.sw, this.counters);
    const set = new ShadowSet(st);
    const oos = new OutOfSync(st, set);
    const cache = new ShadowCache(st, set, oos);
    const dirty = new DirtyLog(st, set, cache);
    this.st = st;
    this.set = set;
    this.oos = oos;
    this.cache = cache;
    this.dirty = dirty;
    oos.bind(this);
    cache.sizePool();
    for (const c of cpus) this.load(c);
  }

  stats(): Record<string, number> {
    const p2m = this.st.p2m;
    return { ...this.counters, p2m_table_frames: p2m.tableFrames, p2m_entries: p2m.populated };
  }

  // ---- exits ----------------------------------------------------------------

  exit(cpu: Cpu, reason: ExitReason): number {
    this.counters.exits++;
    // Exit reasons this pager never sees (EPT's) get a counter on first use.
    const c = this.counters as Record<string, number>;
    const key = EXIT_KEYS[reason] as string;
    c[key] = (c[key] ?? 0) + 1;
    if (reason === EXIT_PAGE_FAULT) {
      const r = this.pageFault(cpu);
      this.maybeCheck();
      return r;
    }
    // Every other exit is a point where the guest must expect its TLB to be
    // flushed (MOV to CR0/CR3/CR4 and EFER writes change what the tables mean
    // or which are in use; INVLPG, INVPCID and flush invalidate): out-of-sync
    // l1s come back in sync here.
    this.oos.resyncAll('guest_flush');
    if (reason === EXIT_CR_WRITE || reason === EXIT_MSR_WRITE) this.load(cpu);
    this.maybeCheck();
    return 0;
  }

  // ---- control state -----------------------------------------------------

  /** Point the vCPU's MMU at the shadows (or the P2M) for its current control state. */
  private load(cpu: Cpu): void {
    const fmt = cpu.format;
    const m = cpu.mmu;
    m.space = this.st.hwSpace;
    if (fmt === null) {
      // Paging off: the hardware walks the P2M itself, VA = GPA. Shadowed guest
      // tables are read-only there too, so writes to them still trap.
      m.format = this.st.p2m.format;
      m.rootPfn = this.st.p2m.rootMfn;
      m.pdpte = null;
      m.ctlAnd = 0;
      m.ctlOr = CTL_WP;
    } else {
      m.format = formatFor(hardwareMode(fmt), HOST_MAXPHYADDR, true, fmt.pse);
      m.ctlAnd = -1;
      m.ctlOr = CTL_WP;
      if (hardwareMode(fmt).pdpteRegisters) {
        this.cache.prealloc();
        m.pdpte = this.cache.pdptes(cpu, fmt);
        m.rootPfn = 0;
      } else {
        m.pdpte = null;
        this.cache.prealloc();
        m.rootPfn = this.cache.pinRoot(fmt, cpu.cr3RootPfn).smfn;
      }
    }
    cpu.tlb.flushContext(-1, true);
  }

  /** A device or loader wrote guest memory (pwrite): keep shadows of that frame coherent. */
  physicalWrite(gfn: number, offset = 0, size = 4096): void {
    this.dirty.markDirty(gfn);
    if (!this.st.byGfn.has(gfn)) return;
    this.counters.physical_writes++;
    // A device does not invalidate TLBs: an out-of-sync page is resynced at once.
    if (this.oos.has(gfn)) this.oos.resync(gfn, 'physical_write');
    else this.revalidate(gfn, offset, size);
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
    const w = cpu.walker;
    const lo = w.rsvdLo;
    const hi = w.rsvdHi;
    const fmt = cpu.format;
    if (!isMagic(lo, hi) || fmt === null) return NOT_FAST;
    const sh = this.st.byMfn.get(w.rsvdTable);
    if (sh === undefined || sh.level !== 1 || (!sh.fl && this.oos.has(sh.gfn))) return NOT_FAST;
    if (!isMmioMagic(lo, hi)) {
      this.counters['fastpath.not_present']++;
      this.counters['fault.injected']++;
      return faultError(0, access, cpl, cpu.ctl);
    }
    const perm = leafPermission(fmt, w.rsvdAcc & lo, w.rsvdXd | hi, lo, hi);
    if (access === WRITE && (perm & PERM_D) === 0) return NOT_FAST;
    const error = checkAccess(perm, access, cpl, cpu.ctl, cpu.pkru);
    if (error !== 0) {
      this.counters['fault.injected']++;
      return error;
    }
    this.counters['fastpath.mmio']++;
    this.counters['emulate.mmio']++;
    return this.emulate(cpu, mmioMagicGfn(lo, hi), vaLo & 0xfff, access);
  }

  private handleFault(cpu: Cpu, vaHi: number, vaLo: number, access: AccessKind, cpl: number): number {
    const fmt = cpu.format;
    const st = this.st;
    this.cache.prealloc();
    if (fmt === null) return this.physicalAccess(cpu, vaLo >>> 12, vaLo & 0xfff, access);
    // Walk the guest's own tables, as the hardware would natively.
    const w = st.walker;
    const r = w.walk(st.guestSpace, fmt, cpu.cr3RootPfn, fmt.mode.pdpteRegisters ? cpu.pdpte : null, vaHi, vaLo);
    if (r !== WALK_OK) {
      this.counters['fault.injected']++;
      if (r === 0 && w.level === 1 && this.sw.fastpath) this.markNotPresent(fmt, vaHi, vaLo);
      return faultError(r, access, cpl, cpu.ctl);
    }
    const error = checkAccess(w.perm, access, cpl, cpu.ctl, cpu.pkru);
    if (error !== 0) {
      this.counters['fault.injected']++;
      return error;
    }
    w.commit(access === WRITE); // the guest's A and D flags, exactly as native hardware sets them
    if (this.dirty.on) {
      // Setting A/D flags writes the guest's tables: those frames are dirty too.
      for (let k = 0; k < w.pathLen; k++) this.dirty.markDirty(w.pathTable[k] as number);
    }
    const within = ((vaLo >>> 12) | (vaHi << 20)) & ((1 << (w.pageShift - 12)) - 1);
    const gfn = w.leafPfn + within;
    const mfn = st.p2m.lookup(gfn);
    const type = st.p2m.lastType;
    if (mfn < 0) {
      this.counters['emulate.mmio']++;
      // With the fast path, leave an MMIO magic entry: the next access is emulated without a walk.
      if (this.sw.fastpath) this.fix(fmt, vaHi, vaLo);
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
      if (checkAccess(w.perm, access, cpl, cpu.ctl | CTL_WP, cpu.pkru) !== 0) {
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
    this.fix(fmt, vaHi, vaLo);
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
        if (this.st.byGfn.has(gfn)) this.revalidate(gfn, offset, cpu.pendingSize);
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

  // ---- propagation -------------------------------------------------------

  /**
   * Build the shadow path for `va` from the last guest walk (guest A/D
   * already committed). Returns the l1 shadow when the walk ended at a
   * not-present l1 entry (for markNotPresent), else null.
   */
  private fix(fmt: WalkFormat, vaHi: number, vaLo: number): Shadow | null {
    const st = this.st;
    const cache = this.cache;
    const guestWide = fmt.mode.wide;
    const hw = hardwareMode(fmt);
    // For a 32-bit guest, which 2 MiB half of a 4 MiB guest PDE's range the VA is in.
    const half = (vaLo >>> 21) & 1;
    let sh: Shadow | null = null;
    const w = st.walker;
    for (let k = 0; k < w.pathLen; k++) {
      const level = w.pathLevel[k] as number;
      const table = w.pathTable[k] as number;
      const index = w.pathIndex[k] as number;
      // Where this guest entry lands in the shadows: the same index, or for a
      // 32-bit guest a quarter of its PD (two shadow entries per guest PDE) or a half of its PT.
      const part = guestWide ? 0 : level === 2 ? index >>> 8 : index >>> 9;
      const sIndex = guestWide ? index : level === 2 ? ((index & 255) << 1) | half : index & 511;
      if (sh === null) sh = cache.get(fmt, level, table, part);
      // The guest entry as it is now in memory (after the A/D commit), where the walk read it.
      const g = w.pathFrame[k] as Uint32Array;
      const word = w.pathWord[k] as number;
      const lo = g[word] as number;
      const hi = guestWide ? (g[word + 1] as number) : 0;
      const large = level > 1 && ((lo >>> 7) & 1 & (fmt.largeMask >>> level)) !== 0;
      if (level === 1) {
        this.setLeaf(sh, sIndex, leafFrame(lo, hi, guestWide, false, 12), lo, hi);
        if (st.sw.prefetch > 0) this.prefetch(sh, sIndex, g);
        this.oos.followSnapshot(table, index, guestWide, lo, hi);
        return null;
      }
      if (!large) {
        const child = cache.get(fmt, level - 1, leafFrame(lo, hi, guestWide, false, 12), guestWide ? 0 : half);
        this.set.setEntry(sh, sIndex, this.nonLeaf(child.smfn, lo, hi), child);
        sh = child;
        continue;
      }
      // A guest superpage; a 32-bit guest's 4 MiB page is two 2 MiB halves here.
      const hwShift = hw.shift[level] as number;
      const base = leafFrame(lo, hi, guestWide, true, fmt.leafShift[level] as number) + (guestWide ? 0 : half * 512);
      if (this.canMapLarge(base, 2 ** (hwShift - 12))) {
        // The P2M maps the whole range contiguously and uniformly: one shadow superpage.
        st.counters.superpages_mapped++;
        this.set.setEntry(sh, sIndex, this.largeLeaf(base, lo, hi), null);
        return null;
      }
      // Otherwise splinter it into fl shadows of 4 KiB entries.
      st.counters.superpages_splintered++;
      let flLevel = level - 1;
      let parent = sh;
      let parentIndex = sIndex;
      let first = base;
      for (;;) {
        const child = cache.getFl(fmt, flLevel, first, lo, hi);
        this.set.setEntry(parent, parentIndex, this.nonLeaf(child.smfn, lo, hi), child);
        const shift = hw.shift[flLevel] as number;
        const idx = ((vaLo >>> shift) | (vaHi << (32 - shift))) & (hw.indexMask[flLevel] as number);
        if (flLevel === 1) {
          this.setLeaf(child, idx, first + idx, lo, hi);
          if (st.sw.prefetch > 0) this.prefetchFl(child, idx, first, lo, hi);
          return null;
        }
        parent = child;
        parentIndex = idx;
        first += idx * 2 ** (shift - 12);
        flLevel--;
      }
    }
    // The walk ended above l1 (a not-present l1 entry): the last shadow made is that l1's.
    return sh;
  }

  /**
   * The fast path's other half: after a guest walk that ended at a not-present
   * l1 entry, build the shadow path down to that l1 and put a guest-not-present
   * magic entry there, so the next fault on it is classified without a walk.
   * Only if every entry above already has its accessed flag set: a faulting
   * walk sets none, and a shadow entry needs it. Not for a guest l1 that was
   * never written: every entry of it is not present, a walk of it costs
   * nothing, and a shadow of it would cost a frame the guest does not spend.
   */
  private markNotPresent(fmt: WalkFormat, vaHi: number, vaLo: number): void {
    const st = this.st;
    const w = st.walker;
    const n = w.pathLen;
    if (n !== fmt.mode.topLevel - 1 && !(fmt.mode.pdpteRegisters && n === 1)) return;
    let lo = 0;
    for (let k = 0; k < n; k++) {
      lo = (w.pathFrame[k] as Uint32Array)[w.pathWord[k] as number] as number;
      if ((lo & PTE_A) === 0 || ((lo >>> 7) & 1 & (fmt.largeMask >>> (w.pathLevel[k] as number))) !== 0) return;
    }
    const hi = fmt.mode.wide ? ((w.pathFrame[n - 1] as Uint32Array)[(w.pathWord[n - 1] as number) + 1] as number) : 0;
    if (st.guestSpace.frameForRead(leafFrame(lo, hi, fmt.mode.wide, false, 12)) === ZERO_FRAME) return;
    const l1 = this.fix(fmt, vaHi, vaLo);
    if (l1 === null) return;
    const gi = vaIndex(vaHi, vaLo, 12, fmt.mode.wide ? 511 : 1023);
    this.set.setEntry(l1, fmt.mode.wide ? gi : gi & 511, GNP, null);
    if (this.oos.has(l1.gfn)) {
      const g = st.guestSpace.frameForRead(l1.gfn);
      const wide = fmt.mode.wide;
      this.oos.followSnapshot(l1.gfn, gi, wide, g[wide ? 2 * gi : gi] as number, wide ? (g[2 * gi + 1] as number) : 0);
    }
  }

  /**
   * Prefetch: after fixing entry `from` of l1 shadow `sh`, propagate the
   * following guest entries of the same table (up to the window) whose
   * shadow entries are empty — present, accessed ones as mappings, not-present
   * ones as magic entries with the fast path. Entries with the accessed flag
   * clear stay empty: the hardware would set it, so the first access must trap.
   */
  private prefetch(sh: Shadow, from: number, g: Uint32Array): void {
    const st = this.st;
    const f = st.domain.mem.read(sh.smfn);
    const rsvdLo = sh.fmt.rsvdLo[2] as number;
    const rsvdHi = sh.fmt.rsvdHi[2] as number;
    for (let i = from + 1, end = Math.min(512, from + 1 + st.sw.prefetch); i < end; i++) {
      if (((f[2 * i] as number) & PTE_P) !== 0) continue;
      const gi = guestIndex(sh, i);
      const lo = sh.guestWide ? (g[2 * gi] as number) : (g[gi] as number);
      const hi = sh.guestWide ? (g[2 * gi + 1] as number) : 0;
      if ((lo & PTE_P) !== 0 && ((lo & PTE_A) === 0 || (lo & rsvdLo) !== 0 || (hi & rsvdHi) !== 0)) continue;
      this.setLeaf(sh, i, leafFrame(lo, hi, sh.guestWide, false, 12), lo, hi);
      if (((f[2 * i] as number) & PTE_P) === 0) continue;
      st.counters['prefetch.entries']++;
      this.oos.followSnapshot(sh.gfn, gi, sh.guestWide, lo, hi);
    }
  }

  /** Prefetch in a splintered superpage: the following 4 KiB pieces of the same guest superpage. */
  private prefetchFl(sh: Shadow, from: number, first: number, lo: number, hi: number): void {
    const st = this.st;
    const f = st.domain.mem.read(sh.smfn);
    for (let i = from + 1, end = Math.min(512, from + 1 + st.sw.prefetch); i < end; i++) {
      if (((f[2 * i] as number) & PTE_P) !== 0) continue;
      this.setLeaf(sh, i, first + i, lo, hi);
      if (((f[2 * i] as number) & PTE_P) !== 0) st.counters['prefetch.entries']++;
    }
  }

  /**
   * May guest frames [base, base+span) be one shadow superpage? Only when the
   * P2M maps them contiguously (identity placement), all RAM of one type, and
   * none is a shadowed guest table (whose writes must trap).
   */
  private canMapLarge(base: number, span: number): boolean {
    if (this.dirty.on) return false; // writes are tracked per 4 KiB page
    const domain = this.st.domain;
    const placement = domain.placement;
    if (placement.kind !== 'identity' || base + span > placement.ramFrames) return false;
    if (domain.guest.anyReadOnly(base, base + span - 1)) return false;
    for (let r = base >>> 9, end = (base + span - 1) >>> 9; r <= end; r++) {
      if (this.cache.hasShadowedTable(r)) return false;
    }
    return true;
  }

  /** Shadow superpage entry for guest superpage (lo, hi) at guest frame `base` (identity: mfn = gfn). */
  private largeLeaf(base: number, lo: number, hi: number): [number, number] {
    let flags = (lo & (LEAF_COPY_LO | 0x1000) & ~PTE_RW) | PTE_P | PTE_A | PTE_PS;
    if ((lo & PTE_RW) !== 0 && (lo & PTE_D) !== 0) flags |= PTE_RW | PTE_D;
    return [
      ((base % 0x100000) * 4096 + (flags & 0xfff) + (lo & 0x1000)) >>> 0,
      Math.floor(base / 0x100000) | (hi & HI_COPY),
    ];
  }

  /** Shadow non-leaf entry pointing at shadow frame `smfn`, with guest entry (lo, hi)'s rights. */
  private nonLeaf(smfn: number, lo: number, hi: number): [number, number] {
    const l = ((smfn % 0x100000) * 4096 + PTE_P + PTE_A + (lo & NONLEAF_COPY_LO)) >>> 0;
    return [l, Math.floor(smfn / 0x100000) | (hi & 0x80000000)];
  }

  /**
   * Shadow leaf for guest leaf (lo, hi) mapping guest frame `gfn` (for an fl
   * shadow, (lo, hi) is the guest superpage entry); not present when nothing
   * may be cached.
   */
  setLeaf(sh: Shadow, index: number, gfn: number, lo: number, hi: number): boolean {
    const st = this.st;
    const set = this.set;
    if ((lo & PTE_P) === 0) return set.setEntry(sh, index, st.sw.fastpath && !sh.fl ? GNP : NOT_PRESENT, null);
    const p2m = st.p2m;
    const mfn = p2m.lookup(gfn);
    const type = p2m.lastType;
    if ((lo & PTE_A) === 0) return set.setEntry(sh, index, NOT_PRESENT, null);
    if (mfn < 0) {
      // MMIO: with the fast path, a magic entry holding the gfn and the leaf's own rights.
      const magic = st.sw.fastpath && gfn < MAGIC_GFN_LIMIT;
      return set.setEntry(sh, index, magic ? mmioMagic(gfn, lo, sh.guestWide ? hi : 0) : NOT_PRESENT, null);
    }
    let l = (lo & LEAF_COPY_LO & ~PTE_RW) | PTE_P | PTE_A;
    if (
      (lo & PTE_RW) !== 0 &&
      (lo & PTE_D) !== 0 &&
      type === P2M_RAM_RW &&
      !this.oos.writeProtected(gfn) &&
      this.dirty.writableOk(gfn)
    )
      l |= PTE_RW | PTE_D;
    return set.setEntry(
      sh,
      index,
      [((mfn % 0x100000) * 4096 + l) >>> 0, Math.floor(mfn / 0x100000) | (hi & HI_COPY)],
      null,
    );
  }

  /** Guest frame `gfn` (a shadowed table) changed at [offset, offset+size): drop derived shadow entries. */
  private revalidate(gfn: number, offset: number, size: number): void {
    const st = this.st;
    const list = st.byGfn.get(gfn);
    if (list === undefined) return;
    let dropped = false;
    for (const sh of [...list]) {
      const entryBytes = sh.guestWide ? 8 : 4;
      for (
        let gi = Math.floor(offset / entryBytes), last = Math.floor((offset + size - 1) / entryBytes);
        gi <= last;
        gi++
      ) {
        for (const i of derivedEntries(sh, gi)) {
          st.counters.entries_revalidated++;
          if (this.set.setEntry(sh, i, NOT_PRESENT, null)) dropped = true;
        }
      }
    }
    // Only a shadow entry that was present can be cached in a TLB: filling an
    // empty slot (the common case, a guest mapping a new page) needs no flush.
    if (dropped) this.set.shootdown();
  }
  // ---- isolation checker -------------------------------------------------

  private maybeCheck(): void {
    if (!this.opts.check) return;
    const problem = this.checkInvariants();
    if (problem !== null) throw new Error(`shadow isolation invariant broken: ${problem}`);
  }

  /** Verify the pool bound, reference counts, and every path through the shadows (audit.ts); null if all hold. */
  checkInvariants(): string | null {
    return this.cache.checkRefs() ?? auditPaths(this.auditView());
  }

  /** What the checker may read: shadows, the P2M, and the guest as the shadows should reflect it. */
  private auditView(): AuditView {
    const st = this.st;
    const guest = st.guestSpace;
    const oos = this.oos;
    const guestView: PhysicalSpace = {
      frameForRead: (gfn) => oos.snapshot(gfn) ?? guest.frameForRead(gfn),
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
      superpageOk: (first, count) => {
        if (this.dirty.on) return 'a shadow superpage in log-dirty mode';
        if (!this.canMapLarge(first, count)) return `a shadow superpage over gfns ${first}+${count} it may not cover`;
        return null;
      },
      roots: () => this.auditRoots(),
    };
  }

  /** Every vCPU's hardware root, and every pinned top-level shadow no vCPU runs on. */
  private *auditRoots(): Generator<AuditRoot> {
    const current = new Set<number>();
    for (const c of this.st.cpus) {
      const fmt = c.format;
      const hw = c.mmu.format;
      if (fmt === null || hw === null) continue;
      current.add(c.mmu.rootPfn);
      const guestPdpte = fmt.mode.pdpteRegisters ? c.pdpte : null;
      yield {
        guestFmt: fmt,
        hwFmt: hw,
        guestRoot: c.cr3RootPfn,
        guestPdpte,
        hwRoot: c.mmu.rootPfn,
        hwPdpte: c.mmu.pdpte,
      };
    }
    for (const sh of this.cache.pinned()) {
      if (current.has(sh.smfn)) continue;
      const hwFmt = formatFor(hardwareMode(sh.fmt), HOST_MAXPHYADDR, true, sh.fmt.pse);
      yield { guestFmt: sh.fmt, hwFmt, guestRoot: sh.gfn, guestPdpte: null, hwRoot: sh.smfn, hwPdpte: null };
    }
  }
}
