/**
 * The shadow pager: a translated guest on shadow page tables (Xen's shadow
 * mode with SHM_translate; KVM's shadow MMU).
 *
 * The guest's tables map VA -> gfn; the P2M maps gfn -> mfn; shadows are real
 * x86 tables in hypervisor frames mapping VA -> mfn, and CR3 points at one.
 *
 * Rules this module keeps (the isolation checker tests exactly these):
 *  1. Every shadow is keyed by (guest frame, shadow type) in the shadow hash;
 *     a guest frame used at several levels (recursive maps) has one shadow per
 *     level. The cache survives CR3 switches; top-level shadows are pinned.
 *  2. A present shadow entry exists only for a guest entry that is present,
 *     has no reserved bits and has its accessed flag set; a leaf is writable
 *     only if the guest leaf is writable and dirty, the p2m type is ram_rw and
 *     the target frame is not itself a shadowed guest table. Rights are never
 *     more than guest rights ∩ p2m rights.
 *  3. Every guest frame that has a shadow is mapped read-only in every shadow
 *     (remove-write-access through the writable reverse map when it becomes
 *     shadowed), so every guest write to a guest table traps; it is emulated
 *     and the shadow entries derived from the written entries are dropped
 *     (rebuilt lazily).
 *  4. setEntry() is the only writer of shadow entries (write revocation
 *     included): it keeps reference counts and the writable reverse map.
 *     Unreferenced, unpinned shadows are freed.
 *  6. Magic entries (the fast path) hold only what the guest l1 entry says,
 *     never the rights of the path that made them (magic.ts).
 *  7. The pool never overflows and never holds less than the roots of every
 *     vCPU plus one exit's headroom (attach refuses a smaller one).
 * audit.ts checks these from the outside, path by path, after every exit with --check.
 *  5. Hardware CR0.WP is forced on; the guest's WP=0 (supervisor writes to
 *     read-only pages) is emulated, as are MMIO, ROM writes and writes to
 *     shadowed guest tables.
 * A guest superpage becomes a shadow superpage when the P2M maps its range
 * contiguously and uniformly and no frame in it is a shadowed guest table;
 * otherwise it is splintered into fl1 (and, for 1 GiB, fl2) shadows of 4 KiB
 * entries keyed by (base gfn, flags). A superpage over a frame that becomes
 * a shadowed table is dropped and rebuilt splintered. PAE guests have no shadow of the
 * PDPT: each vCPU's hardware PDPTE registers point at shadows of the PDs the
 * guest's PDPTE registers name. 32-bit guests run on PAE-format shadows
 * (Xen's "2-on-3"), so shadows reach machine frames above 4 GiB: a guest
 * page directory is four shadow PDs, a guest page table two shadow PTs. With guest paging off the hardware walks the
 * P2M itself (VA = GPA).
 */
import { CTL_WP, checkAccess, faultError, PERM_D } from '../../arch/x86/access.js';
import { type AccessKind, FETCH, PF_RSVD, PTE_A, PTE_D, PTE_P, PTE_PS, PTE_RW, WRITE } from '../../arch/x86/bits.js';
import { type Cpu, HOST_DONE, HOST_RETRY, readValue, writeValue } from '../../arch/x86/cpu.js';
import { EXIT_CR_WRITE, EXIT_MSR_WRITE, EXIT_NAMES, EXIT_PAGE_FAULT, type ExitReason } from '../../arch/x86/exits.js';
import { formatFor, type WalkFormat } from '../../arch/x86/modes.js';
import { leafFrame, leafPermission, type PhysicalSpace, vaIndex, WALK_OK, Walker } from '../../arch/x86/walker.js';
import type { Domain } from '../../hypervisor/domain.js';
import { ConfigError, type CounterDecl, type LogDirty, type Pager } from '../../hypervisor/pager.js';
import { OWNER_HYPERVISOR, ZERO_FRAME } from '../../machine/memory.js';
import { MachineSpace, P2M_RAM_RO, P2M_RAM_RW, P2m, P2mSpace } from '../../p2m/p2m.js';
import { type AuditRoot, type AuditView, auditPaths } from './audit.js';
import { newCounters, type ResyncCause, SHADOW_COUNTERS, type ShadowCounters } from './counters.js';
import { GNP, HOST_MAXPHYADDR, isMagic, isMmioMagic, MAGIC_GFN_LIMIT, mmioMagic, mmioMagicGfn } from './magic.js';
import { DEFAULT_SWITCHES, defaultPoolFrames, minPoolFrames, PREALLOC_FRAMES, type ShadowSwitches } from './options.js';
import { derivedEntries, formatIndex, guestIndex, hardwareMode, type Shadow, shadowName } from './types.js';

/** Bits of a guest leaf copied into a shadow leaf: RW, US, PWT, PCD, G (+ XD and PK in the high half). */
const LEAF_COPY_LO = 0x11e;
const NONLEAF_COPY_LO = 0x1e; // RW, US, PWT, PCD
const HI_COPY = 0x80000000 | (0xf << 27);

const NOT_PRESENT: readonly [number, number] = [0, 0];
/** Counter of each exit reason. */
const EXIT_KEYS = EXIT_NAMES.map((n) => `exit.${n}`);

/** fastFault(): not a fast-path fault, take the slow path. */
const NOT_FAST = -100;

/**
 * Writable reverse map: guest frame -> the shadow leaf slots (smfn * 1024 +
 * index) that map it *writable*. Revoking write access (a frame becomes a
 * shadowed table, an out-of-sync l1 is resynced, the dirty log is cleaned)
 * visits only these, and empties the set, so each writable mapping is paid
 * for once however many read-only mappings a frame has. Most frames have one
 * writable mapping: it is stored as a number; shared frames get a Set.
 */
class WritableMap {
  private readonly map = new Map<number, number | Set<number>>();
  add(gfn: number, slot: number): void {
    const v = this.map.get(gfn);
    if (v === undefined) this.map.set(gfn, slot);
    else if (typeof v === 'number') {
      if (v !== slot) this.map.set(gfn, new Set([v, slot]));
    } else v.add(slot);
  }
  remove(gfn: number, slot: number): void {
    const v = this.map.get(gfn);
    if (v === slot) this.map.delete(gfn);
    else if (typeof v === 'object') {
      v.delete(slot);
      if (v.size === 0) this.map.delete(gfn);
    }
  }
  /** Remove and return every slot mapping `gfn` writable. */
  take(gfn: number): number[] {
    const v = this.map.get(gfn);
    if (v === undefined) return [];
    this.map.delete(gfn);
    return typeof v === 'number' ? [v] : [...v];
  }
}

export interface ShadowOptions {
  /** Run the isolation checker after every exit (tests). */
  check?: boolean;
  /** The pager's name in statistics (its spec, e.g. "shadow:-oos"). */
  name?: string;
  /** Optimizations to change from their defaults (options.ts). */
  switches?: Partial<ShadowSwitches>;
}

/**
 * Out-of-sync pages per vCPU, direct-mapped by guest frame: Xen's
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
}

export { SHADOW_COUNTERS } from './counters.js';

export class ShadowPager implements Pager {
  /** Every counter stats() reports, with what it means. */
  static readonly counters: readonly CounterDecl[] = SHADOW_COUNTERS;
  readonly name: string;
  private readonly sw: ShadowSwitches;
  private domain!: Domain;
  private p2m!: P2m;
  private guestSpace!: P2mSpace;
  private hwSpace!: MachineSpace;
  private cpus: Cpu[] = [];
  /** The shadow hash: (format, level, gfn) -> shadow, numeric keys; fl shadows by string key. */
  private readonly hash = new Map<number, Shadow>();
  private readonly flHash = new Map<string, Shadow>();
  private readonly byMfn = new Map<number, Shadow>();
  /** Guest frame -> its (non-fl) shadows. */
  private readonly byGfn = new Map<number, Shadow[]>();
  /** Guest frame -> shadow leaf slots (smfn * 1024 + index) mapping it writable. */
  private readonly writable = new WritableMap();
  /** 2 MiB guest region (gfn >> 9) -> shadow superpage entries (slots) covering it. */
  private readonly superSlots = new Map<number, Set<number>>();
  /** 2 MiB guest region -> how many of its frames are shadowed guest tables. */
  private readonly shadowedInRegion = new Map<number, number>();
  /** Per vCPU: the guest configuration the shadows were built for, and PAE hardware PDPTEs. */
  private readonly hwPdpte = new Map<Cpu, { regs: Uint32Array; refs: Shadow[] }>();
  private readonly walker = new Walker();
  /** Out-of-sync guest l1s by frame, and each vCPU's slots. */
  private readonly oos = new Map<number, OosPage>();
  private oosSlots: Array<Array<OosPage | null>> = [];
  /** Early unshadow: the frame of the last emulated write of zero (-1: none). */
  private lastZeroWrite = -1;
  /**
   * The shadow pool: its size in frames (fixed by pool=N, or following the
   * populated memory by Xen's rule), and the pinned top-level shadows in
   * least-recently-loaded order (a Map keeps insertion order; a load moves
   * a shadow to the end), so eviction takes the oldest without a sort.
   */
  private poolFrames = Number.POSITIVE_INFINITY;
  private poolDefault = false;
  private readonly pinnedLru = new Map<Shadow, true>();
  /** Log-dirty mode: one byte per guest frame, 1 = written since the log was last cleaned (null: off). */
  private dirtyBitmap: Uint8Array | null = null;
  private dirtyList: number[] = [];
  /** The Pager interface's log-dirty capability (what migration uses). */
  readonly logDirty: LogDirty = {
    enable: () => this.logDirtyEnable(),
    clean: () => this.logDirtyClean(),
    disable: () => this.logDirtyDisable(),
  };
  private lastFaultOp = -1;
  private lastFaultHi = 0;
  private lastFaultLo = -1;
  private lastFaultAccess = -1;
  private repeats = 0;
  private readonly counters: ShadowCounters = newCounters();

  constructor(private readonly opts: ShadowOptions = {}) {
    this.name = opts.name ?? 'shadow';
    this.sw = { ...DEFAULT_SWITCHES, ...opts.switches };
  }

  attach(domain: Domain, cpus: Cpu[]): void {
    this.domain = domain;
    this.cpus = cpus;
    this.oosSlots = cpus.map(() => new Array<OosPage | null>(OOS_PER_VCPU).fill(null));
    this.p2m = new P2m(domain.mem, domain.placement, (gfn) => domain.guest.isReadOnly(gfn));
    this.guestSpace = new P2mSpace(this.p2m);
    this.hwSpace = new MachineSpace(domain.mem);
    if (this.sw.pool > 0) {
      // Xen raises a too-small allocation to its minimum (shadow_set_allocation,
      // shadow/common.c); Umbra refuses it, so a measured figure is never for a
      // pool other than the one asked for.
      const min = minPoolFrames(cpus.length);
      if (this.sw.pool < min) {
        throw new ConfigError(
          `a shadow pool of ${this.sw.pool} frames is too small for ${cpus.length} vCPUs: at least ${min}`,
        );
      }
      this.poolFrames = this.sw.pool;
    } else if (this.sw.pool === 0) {
      this.poolDefault = true;
      this.poolFrames = this.defaultPool();
    }
    if (this.sw.pool >= 0) this.counters['pool.frames'] = this.poolFrames;
    for (const c of cpus) this.load(c);
  }

  /** Xen's rule applied to the guest memory populated so far (a sparse guest is not charged for its holes). */
  private defaultPool(): number {
    return defaultPoolFrames(this.cpus.length, this.domain.populatedFrames() * 4096);
  }

  stats(): Record<string, number> {
    return { ...this.counters, p2m_table_frames: this.p2m.tableFrames, p2m_entries: this.p2m.populated };
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
    this.resyncAll('guest_flush');
    if (reason === EXIT_CR_WRITE || reason === EXIT_MSR_WRITE) this.load(cpu);
    this.maybeCheck();
    return 0;
  }

  // ---- control state -----------------------------------------------------

  /** Point the vCPU's MMU at the shadows (or the P2M) for its current control state. */
  private load(cpu: Cpu): void {
    const fmt = cpu.format;
    const m = cpu.mmu;
    m.space = this.hwSpace;
    if (fmt === null) {
      // Paging off: the hardware walks the P2M itself, VA = GPA. Shadowed guest
      // tables are read-only there too, so writes to them still trap.
      m.format = this.p2m.format;
      m.rootPfn = this.p2m.rootMfn;
      m.pdpte = null;
      m.ctlAnd = 0;
      m.ctlOr = CTL_WP;
    } else {
      m.format = formatFor(hardwareMode(fmt), HOST_MAXPHYADDR, true, fmt.pse);
      m.ctlAnd = -1;
      m.ctlOr = CTL_WP;
      if (hardwareMode(fmt).pdpteRegisters) {
        this.prealloc();
        m.pdpte = this.pdptes(cpu, fmt);
        m.rootPfn = 0;
      } else {
        m.pdpte = null;
        this.prealloc();
        const top = this.get(fmt, fmt.mode.topLevel, cpu.cr3RootPfn);
        if (!top.pinned) {
          top.pinned = true;
          top.refs++;
        }
        this.pinnedLru.delete(top);
        this.pinnedLru.set(top, true);
        m.rootPfn = top.smfn;
      }
    }
    cpu.tlb.flushContext(-1, true);
  }

  /**
   * Hardware PDPTE registers: for a PAE guest, shadows of the PDs its own
   * PDPTE registers name; for a 32-bit guest (2-on-3, as Xen ran them), the
   * four quarter-shadows of its page directory.
   */
  private pdptes(cpu: Cpu, fmt: WalkFormat): Uint32Array {
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
        sh = this.get(fmt, 2, (hi & 0xfffff) * 0x100000 + (lo >>> 12));
      } else {
        sh = this.get(fmt, 2, cpu.cr3RootPfn, i);
      }
      sh.refs++;
      st.refs.push(sh);
      st.regs[2 * i] = ((sh.smfn % 0x100000) * 4096 + PTE_P) >>> 0;
      st.regs[2 * i + 1] = Math.floor(sh.smfn / 0x100000);
    }
    for (const sh of old) this.release(sh);
    return st.regs;
  }

  /** A device or loader wrote guest memory (pwrite): keep shadows of that frame coherent. */
  physicalWrite(gfn: number, offset = 0, size = 4096): void {
    this.markDirty(gfn);
    if (!this.byGfn.has(gfn)) return;
    this.counters.physical_writes++;
    // A device does not invalidate TLBs: an out-of-sync page is resynced at once.
    if (this.oos.has(gfn)) this.resync(gfn, 'physical_write');
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
    const sh = this.byMfn.get(w.rsvdTable);
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
    this.prealloc();
    if (fmt === null) return this.physicalAccess(cpu, vaLo >>> 12, vaLo & 0xfff, access);
    // Walk the guest's own tables, as the hardware would natively.
    const w = this.walker;
    const r = w.walk(this.guestSpace, fmt, cpu.cr3RootPfn, fmt.mode.pdpteRegisters ? cpu.pdpte : null, vaHi, vaLo);
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
    if (this.dirtyBitmap !== null) {
      // Setting A/D flags writes the guest's tables: those frames are dirty too.
      for (let k = 0; k < w.pathLen; k++) this.markDirty(w.pathTable[k] as number);
    }
    const within = ((vaLo >>> 12) | (vaHi << 20)) & ((1 << (w.pageShift - 12)) - 1);
    const gfn = w.leafPfn + within;
    const mfn = this.p2m.lookup(gfn);
    const type = this.p2m.lastType;
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
      this.markDirty(gfn);
      if (this.writeProtected(gfn)) {
        if (!this.canUnsync(gfn)) {
          this.counters['emulate.pt_write']++;
          const r = this.emulate(cpu, gfn, vaLo & 0xfff, access);
          this.earlyUnshadow(cpu, gfn);
          return r;
        }
        // Let the guest write this l1 directly until it next flushes its TLB.
        this.unsync(cpu, gfn);
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
    const mfn = this.p2m.lookup(gfn);
    if (mfn < 0) {
      this.counters['emulate.mmio']++;
      return this.emulate(cpu, gfn, offset, access);
    }
    if (access === WRITE && this.p2m.lastType === P2M_RAM_RO) {
      this.counters['emulate.rom_write_discarded']++;
      return HOST_DONE;
    }
    if (access === WRITE && this.byGfn.has(gfn)) {
      this.counters['emulate.pt_write']++;
      return this.emulate(cpu, gfn, offset, access);
    }
    this.counters['fault.fixed']++;
    return HOST_RETRY; // lookup() populated the entry
  }

  /** Perform the pending access on guest frame `gfn` (read all ones / discard for MMIO). */
  private emulate(cpu: Cpu, gfn: number, offset: number, access: AccessKind): number {
    if (access === WRITE) {
      const f = this.guestSpace.frameForWrite(gfn);
      if (f !== null) {
        this.markDirty(gfn);
        writeValue(f, offset, cpu.pendingSize, cpu.pendingHi, cpu.pendingLo);
        if (this.byGfn.has(gfn)) this.revalidate(gfn, offset, cpu.pendingSize);
      }
    } else {
      readValue(this.guestSpace.frameForRead(gfn), offset, access === FETCH ? 1 : cpu.pendingSize, cpu);
    }
    return HOST_DONE;
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
    const w = this.walker;
    const n = w.pathLen;
    if (n !== fmt.mode.topLevel - 1 && !(fmt.mode.pdpteRegisters && n === 1)) return;
    let lo = 0;
    for (let k = 0; k < n; k++) {
      lo = (w.pathFrame[k] as Uint32Array)[w.pathWord[k] as number] as number;
      if ((lo & PTE_A) === 0 || ((lo >>> 7) & 1 & (fmt.largeMask >>> (w.pathLevel[k] as number))) !== 0) return;
    }
    const hi = fmt.mode.wide ? ((w.pathFrame[n - 1] as Uint32Array)[(w.pathWord[n - 1] as number) + 1] as number) : 0;
    if (this.guestSpace.frameForRead(leafFrame(lo, hi, fmt.mode.wide, false, 12)) === ZERO_FRAME) return;
    const l1 = this.fix(fmt, vaHi, vaLo);
    if (l1 === null) return;
    const gi = vaIndex(vaHi, vaLo, 12, fmt.mode.wide ? 511 : 1023);
    this.setEntry(l1, fmt.mode.wide ? gi : gi & 511, GNP, null);
    if (this.oos.has(l1.gfn)) {
      const g = this.guestSpace.frameForRead(l1.gfn);
      const wide = fmt.mode.wide;
      this.followSnapshot(l1.gfn, gi, wide, g[wide ? 2 * gi : gi] as number, wide ? (g[2 * gi + 1] as number) : 0);
    }
  }

  /**
   * A shadow entry of out-of-sync l1 `gfn` now follows its guest entry `gi`
   * = (lo, hi): so must the snapshot, or a later change back to the
   * snapshot's old value would go unseen at resync (Xen does the same).
   */
  private followSnapshot(gfn: number, gi: number, wide: boolean, lo: number, hi: number): void {
    const page = this.oos.get(gfn);
    if (page === undefined) return;
    if (wide) {
      page.snapshot[2 * gi] = lo;
      page.snapshot[2 * gi + 1] = hi;
    } else page.snapshot[gi] = lo;
  }

  /** Build the shadow path for `va` from the last guest walk (guest A/D already committed). */
  private fix(fmt: WalkFormat, vaHi: number, vaLo: number): Shadow | null {
    const guestWide = fmt.mode.wide;
    const hw = hardwareMode(fmt);
    // For a 32-bit guest, which 2 MiB half of a 4 MiB guest PDE's range the VA is in.
    const half = (vaLo >>> 21) & 1;
    let sh: Shadow | null = null;
    const w = this.walker;
    for (let k = 0; k < w.pathLen; k++) {
      const level = w.pathLevel[k] as number;
      const table = w.pathTable[k] as number;
      const index = w.pathIndex[k] as number;
      // Where this guest entry lands in the shadows: the same index, or for a
      // 32-bit guest a quarter of its PD (two shadow entries per guest PDE) or a half of its PT.
      const part = guestWide ? 0 : level === 2 ? index >>> 8 : index >>> 9;
      const sIndex = guestWide ? index : level === 2 ? ((index & 255) << 1) | half : index & 511;
      if (sh === null) sh = this.get(fmt, level, table, part);
      // The guest entry as it is now in memory (after the A/D commit), where the walk read it.
      const g = w.pathFrame[k] as Uint32Array;
      const word = w.pathWord[k] as number;
      const lo = g[word] as number;
      const hi = guestWide ? (g[word + 1] as number) : 0;
      const large = level > 1 && ((lo >>> 7) & 1 & (fmt.largeMask >>> level)) !== 0;
      if (level === 1) {
        this.setLeaf(sh, sIndex, leafFrame(lo, hi, guestWide, false, 12), lo, hi);
        if (this.sw.prefetch > 0) this.prefetch(sh, sIndex, g);
        this.followSnapshot(table, index, guestWide, lo, hi);
        return null;
      }
      if (!large) {
        const child = this.get(fmt, level - 1, leafFrame(lo, hi, guestWide, false, 12), guestWide ? 0 : half);
        this.setEntry(sh, sIndex, this.nonLeaf(child.smfn, lo, hi), child);
        sh = child;
        continue;
      }
      // A guest superpage; a 32-bit guest's 4 MiB page is two 2 MiB halves here.
      const hwShift = hw.shift[level] as number;
      const base = leafFrame(lo, hi, guestWide, true, fmt.leafShift[level] as number) + (guestWide ? 0 : half * 512);
      if (this.canMapLarge(base, 2 ** (hwShift - 12))) {
        // The P2M maps the whole range contiguously and uniformly: one shadow superpage.
        this.counters.superpages_mapped++;
        this.setEntry(sh, sIndex, this.largeLeaf(base, lo, hi), null);
        return null;
      }
      // Otherwise splinter it into fl shadows of 4 KiB entries.
      this.counters.superpages_splintered++;
      let flLevel = level - 1;
      let parent = sh;
      let parentIndex = sIndex;
      let first = base;
      for (;;) {
        const child = this.getFl(fmt, flLevel, first, lo, hi);
        this.setEntry(parent, parentIndex, this.nonLeaf(child.smfn, lo, hi), child);
        const shift = hw.shift[flLevel] as number;
        const idx = ((vaLo >>> shift) | (vaHi << (32 - shift))) & (hw.indexMask[flLevel] as number);
        if (flLevel === 1) {
          this.setLeaf(child, idx, first + idx, lo, hi);
          if (this.sw.prefetch > 0) this.prefetchFl(child, idx, first, lo, hi);
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
   * Prefetch: after fixing entry `from` of l1 shadow `sh`, propagate the
   * following guest entries of the same table (up to the window) whose
   * shadow entries are empty — present, accessed ones as mappings, not-present
   * ones as magic entries with the fast path. Entries with the accessed flag
   * clear stay empty: the hardware would set it, so the first access must trap.
   */
  private prefetch(sh: Shadow, from: number, g: Uint32Array): void {
    const f = this.domain.mem.read(sh.smfn);
    const rsvdLo = sh.fmt.rsvdLo[2] as number;
    const rsvdHi = sh.fmt.rsvdHi[2] as number;
    for (let i = from + 1, end = Math.min(512, from + 1 + this.sw.prefetch); i < end; i++) {
      if (((f[2 * i] as number) & PTE_P) !== 0) continue;
      const gi = guestIndex(sh, i);
      const lo = sh.guestWide ? (g[2 * gi] as number) : (g[gi] as number);
      const hi = sh.guestWide ? (g[2 * gi + 1] as number) : 0;
      if ((lo & PTE_P) !== 0 && ((lo & PTE_A) === 0 || (lo & rsvdLo) !== 0 || (hi & rsvdHi) !== 0)) continue;
      this.setLeaf(sh, i, leafFrame(lo, hi, sh.guestWide, false, 12), lo, hi);
      if (((f[2 * i] as number) & PTE_P) === 0) continue;
      this.counters['prefetch.entries']++;
      this.followSnapshot(sh.gfn, gi, sh.guestWide, lo, hi);
    }
  }

  /** Prefetch in a splintered superpage: the following 4 KiB pieces of the same guest superpage. */
  private prefetchFl(sh: Shadow, from: number, first: number, lo: number, hi: number): void {
    const f = this.domain.mem.read(sh.smfn);
    for (let i = from + 1, end = Math.min(512, from + 1 + this.sw.prefetch); i < end; i++) {
      if (((f[2 * i] as number) & PTE_P) !== 0) continue;
      this.setLeaf(sh, i, first + i, lo, hi);
      if (((f[2 * i] as number) & PTE_P) !== 0) this.counters['prefetch.entries']++;
    }
  }

  /**
   * May guest frames [base, base+span) be one shadow superpage? Only when the
   * P2M maps them contiguously (identity placement), all RAM of one type, and
   * none is a shadowed guest table (whose writes must trap).
   */
  private canMapLarge(base: number, span: number): boolean {
    if (this.dirtyBitmap !== null) return false; // writes are tracked per 4 KiB page
    const placement = this.domain.placement;
    if (placement.kind !== 'identity' || base + span > placement.ramFrames) return false;
    if (this.domain.guest.anyReadOnly(base, base + span - 1)) return false;
    for (let r = base >>> 9, end = (base + span - 1) >>> 9; r <= end; r++) {
      if (this.shadowedInRegion.has(r)) return false;
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

  /** Guest frames covered by a shadow superpage entry at `level` (first frame, count). */
  private superRange(sh: Shadow, lo: number, hi: number): [number, number] {
    const span = sh.level === 3 ? 1 << 18 : 512;
    const mfn = (hi & 0xfffff) * 0x100000 + ((lo >>> 12) & ~(span - 1));
    return [this.domain.placement.gfnOf(mfn), span];
  }

  private nonLeaf(smfn: number, lo: number, hi: number): [number, number] {
    const l = ((smfn % 0x100000) * 4096 + PTE_P + PTE_A + (lo & NONLEAF_COPY_LO)) >>> 0;
    return [l, Math.floor(smfn / 0x100000) | (hi & 0x80000000)];
  }

  /**
   * Shadow leaf for guest leaf (lo, hi) mapping guest frame `gfn` (for an fl
   * shadow, (lo, hi) is the guest superpage entry); not present when nothing
   * may be cached.
   */
  private setLeaf(sh: Shadow, index: number, gfn: number, lo: number, hi: number): boolean {
    if ((lo & PTE_P) === 0) return this.setEntry(sh, index, this.sw.fastpath && !sh.fl ? GNP : NOT_PRESENT, null);
    const mfn = this.p2m.lookup(gfn);
    const type = this.p2m.lastType;
    if ((lo & PTE_A) === 0) return this.setEntry(sh, index, NOT_PRESENT, null);
    if (mfn < 0) {
      // MMIO: with the fast path, a magic entry holding the gfn and the leaf's own rights.
      const magic = this.sw.fastpath && gfn < MAGIC_GFN_LIMIT;
      return this.setEntry(sh, index, magic ? mmioMagic(gfn, lo, sh.guestWide ? hi : 0) : NOT_PRESENT, null);
    }
    let l = (lo & LEAF_COPY_LO & ~PTE_RW) | PTE_P | PTE_A;
    if (
      (lo & PTE_RW) !== 0 &&
      (lo & PTE_D) !== 0 &&
      type === P2M_RAM_RW &&
      !this.writeProtected(gfn) &&
      (this.dirtyBitmap === null || this.dirtyBitmap[gfn] === 1)
    )
      l |= PTE_RW | PTE_D;
    return this.setEntry(
      sh,
      index,
      [((mfn % 0x100000) * 4096 + l) >>> 0, Math.floor(mfn / 0x100000) | (hi & HI_COPY)],
      null,
    );
  }

  // ---- the shadow cache --------------------------------------------------

  /** The shadow of guest table `gfn` at `level` for `mode`, made if missing. */
  private get(fmt: WalkFormat, level: number, gfn: number, part = 0): Shadow {
    // The key says everything that makes two shadows of one frame differ:
    // format (mode, NXE, PSE change what entries mean), level, guest frame.
    const key = ((gfn * 4 + part) * 16 + formatIndex(fmt)) * 8 + level;
    const found = this.hash.get(key);
    if (found !== undefined) {
      this.counters.shadow_cache_hits++;
      return found;
    }
    // Only l1s go out of sync: a frame about to be shadowed at another level comes back first.
    if (level > 1 && this.oos.has(gfn)) this.resync(gfn, 'promoted');
    const sh = this.make(fmt, key, gfn, level, part, false, 0, 0);
    let list = this.byGfn.get(gfn);
    if (list === undefined) {
      list = [];
      this.byGfn.set(gfn, list);
      this.removeWriteAccess(gfn);
      this.p2m.protect(gfn, true);
    }
    list.push(sh);
    return sh;
  }

  private getFl(fmt: WalkFormat, level: number, gfn: number, lo: number, hi: number): Shadow {
    const key = `${formatIndex(fmt)}:fl${level}:${gfn}:${lo & 0x1fff}:${hi & HI_COPY}`;
    const found = this.flHash.get(key);
    if (found !== undefined) {
      this.counters.shadow_cache_hits++;
      return found;
    }
    return this.make(fmt, key, gfn, level, 0, true, lo, hi);
  }

  private make(
    fmt: WalkFormat,
    key: number | string,
    gfn: number,
    level: number,
    part: number,
    fl: boolean,
    flLo: number,
    flHi: number,
  ): Shadow {
    // Zeroed; storage comes with the first entry written (an empty shadow costs no frame).
    const smfn = this.domain.mem.alloc(OWNER_HYPERVISOR);
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
    };
    if (typeof key === 'number') this.hash.set(key, sh);
    else this.flHash.set(key, sh);
    this.byMfn.set(smfn, sh);
    this.counters.shadows_made++;
    this.counters.shadow_frames++;
    if (this.counters.shadow_frames > this.counters.peak_shadow_frames) {
      this.counters.peak_shadow_frames = this.counters.shadow_frames;
    }
    return sh;
  }

  /** Make every existing shadow mapping of guest frame `gfn` read-only (it is now a shadowed table). */
  private removeWriteAccess(gfn: number): void {
    const region = gfn >>> 9;
    this.shadowedInRegion.set(region, (this.shadowedInRegion.get(region) ?? 0) + 1);
    const supers = this.superSlots.get(region);
    if (supers !== undefined) {
      // A shadow superpage over a frame that is now a guest table: drop it (it is rebuilt splintered).
      for (const slot of [...supers]) {
        const sh = this.byMfn.get(Math.floor(slot / 1024)) as Shadow;
        this.setEntry(sh, slot % 1024, NOT_PRESENT, null);
      }
      this.shootdown();
    }
    if (this.revokeWrite(gfn)) {
      this.counters.write_access_removals++;
      this.shootdown();
    }
  }

  /**
   * The one writer of shadow entries: stores (lo, hi) at `index` of `sh`,
   * dropping the reference / reverse-map record of the old entry and making
   * the new one's. True if a present (non-magic) entry was replaced, which a
   * TLB may hold.
   */
  private setEntry(sh: Shadow, index: number, [lo, hi]: readonly [number, number], child: Shadow | null): boolean {
    const f = this.domain.mem.write(sh.smfn);
    const w = 2 * index;
    const oldLo = f[w] as number;
    const oldHi = f[w + 1] as number;
    lo >>>= 0;
    hi >>>= 0;
    if (oldLo === lo && oldHi === hi) return false;
    f[w] = lo;
    f[w + 1] = hi;
    // Magic entries (fast path) map nothing: no reverse map, and no TLB can hold them.
    const oldReal = (oldLo & PTE_P) !== 0 && !isMagic(oldLo, oldHi);
    if (oldReal) {
      const oldMfn = (oldHi & 0xfffff) * 0x100000 + (oldLo >>> 12);
      if (sh.level > 1 && (oldLo & PTE_PS) !== 0) {
        this.superTrack(sh, index, oldLo, oldHi, false);
      } else if (sh.level > 1) {
        const c = this.byMfn.get(oldMfn);
        if (c !== undefined) {
          c.ups.delete(sh.smfn * 1024 + index);
          this.release(c);
        }
      } else if ((oldLo & PTE_RW) !== 0) {
        this.writable.remove(this.domain.placement.gfnOf(oldMfn), sh.smfn * 1024 + index);
      }
    }
    if ((lo & PTE_P) !== 0 && !isMagic(lo, hi)) {
      if (child !== null) {
        child.refs++;
        child.ups.add(sh.smfn * 1024 + index);
      } else if (sh.level > 1 && (lo & PTE_PS) !== 0) this.superTrack(sh, index, lo, hi, true);
      else if (sh.level === 1 && (lo & PTE_RW) !== 0) {
        const g = this.domain.placement.gfnOf((hi & 0xfffff) * 0x100000 + (lo >>> 12));
        this.writable.add(g, sh.smfn * 1024 + index);
      }
    }
    return oldReal;
  }

  /** Record (or forget) which 2 MiB regions a shadow superpage entry covers. */
  private superTrack(sh: Shadow, index: number, lo: number, hi: number, add: boolean): void {
    const [first, span] = this.superRange(sh, lo, hi);
    const slot = sh.smfn * 1024 + index;
    for (let r = first >>> 9, end = (first + span - 1) >>> 9; r <= end; r++) {
      let set = this.superSlots.get(r);
      if (add) {
        if (set === undefined) {
          set = new Set();
          this.superSlots.set(r, set);
        }
        set.add(slot);
      } else if (set !== undefined) {
        set.delete(slot);
        if (set.size === 0) this.superSlots.delete(r);
      }
    }
  }

  /** Drop a reference; free the shadow when nothing refers to it. */
  private release(sh: Shadow): void {
    sh.refs--;
    if (sh.refs > 0 || sh.pinned) return;
    this.free(sh);
  }

  private free(sh: Shadow): void {
    if (!(typeof sh.key === 'number' ? this.hash.delete(sh.key) : this.flHash.delete(sh.key))) return;
    const f = this.domain.mem.read(sh.smfn);
    for (let i = 0; i < 512; i++) {
      const w = 2 * i;
      if (((f[w] as number) & PTE_P) !== 0) this.setEntry(sh, i, NOT_PRESENT, null);
    }
    this.byMfn.delete(sh.smfn);
    this.pinnedLru.delete(sh);
    if (!sh.fl) {
      const list = this.byGfn.get(sh.gfn);
      if (list !== undefined) {
        const i = list.indexOf(sh);
        if (i >= 0) list.splice(i, 1);
        if (list.length === 0) {
          this.byGfn.delete(sh.gfn);
          this.forgetOos(sh.gfn);
          this.p2m.protect(sh.gfn, false);
          const region = sh.gfn >>> 9;
          const n = (this.shadowedInRegion.get(region) ?? 1) - 1;
          if (n === 0) this.shadowedInRegion.delete(region);
          else this.shadowedInRegion.set(region, n);
        }
      }
    }
    this.domain.mem.free(sh.smfn);
    this.counters.shadows_freed++;
    this.counters.shadow_frames--;
  }

  // ---- log-dirty mode ------------------------------------------------------

  /**
   * Start tracking writes to guest RAM (live migration): every shadow
   * mapping becomes read-only until its page is dirtied, so the first write
   * to each page after every clean is an exit that records it. Writes the
   * hypervisor makes for the guest (emulation, A/D flags) and devices make
   * (pwrite) are recorded directly. Writes of a vCPU running with paging off
   * go through the P2M unwatched: enable this only with paging on.
   */
  logDirtyEnable(): void {
    if (!this.sw.logdirty) throw new Error(`${this.name}: log-dirty mode is switched off`);
    this.dirtyBitmap = new Uint8Array(this.domain.placement.ramFrames);
    this.dirtyList = [];
    this.blowTables();
  }

  /** The frames written since the last call (ascending), which become write-protected again. */
  logDirtyClean(): number[] {
    const d = this.dirtyBitmap;
    if (d === null) return [];
    this.counters['logdirty.cleans']++;
    const list = this.dirtyList.sort((a, b) => a - b);
    this.dirtyList = [];
    let flush = false;
    for (const gfn of list) {
      d[gfn] = 0;
      if (this.revokeWrite(gfn)) flush = true;
    }
    if (flush) this.shootdown();
    return list;
  }

  logDirtyDisable(): void {
    this.dirtyBitmap = null;
    this.dirtyList = [];
  }

  private markDirty(gfn: number): void {
    const d = this.dirtyBitmap;
    if (d === null || gfn >= d.length || d[gfn] === 1) return;
    d[gfn] = 1;
    this.dirtyList.push(gfn);
    this.counters['logdirty.pages_dirtied']++;
  }

  /** Unhook everything below the roots in use (Xen's shadow_blow_tables): all rebuilt on demand. */
  private blowTables(): void {
    this.resyncAll('blowout');
    for (const sh of [...this.hash.values()]) {
      if (!(sh.pinned || this.inPdpte(sh)) || !this.byMfn.has(sh.smfn)) continue;
      for (let i = 0; i < 512; i++) this.setEntry(sh, i, NOT_PRESENT, null);
    }
    this.shootdown();
  }

  // ---- early unshadow ------------------------------------------------------

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
    if (this.unshadow(gfn)) this.counters['unshadow.frames']++;
  }

  /**
   * Remove the shadows of `gfn` by unhooking them from their parents; a
   * shadow in use as a root (pinned, or named by a PAE PDPTE register) stays.
   * True if none is left.
   */
  private unshadow(gfn: number): boolean {
    let flush = false;
    for (const sh of [...(this.byGfn.get(gfn) ?? [])]) {
      if (sh.pinned || this.inPdpte(sh)) continue;
      for (const slot of [...sh.ups]) {
        const parent = this.byMfn.get(Math.floor(slot / 1024));
        if (parent !== undefined && this.setEntry(parent, slot % 1024, NOT_PRESENT, null)) flush = true;
      }
      this.counters['unshadow.shadows']++;
    }
    if (flush) this.shootdown();
    return !this.byGfn.has(gfn);
  }

  private inPdpte(sh: Shadow): boolean {
    for (const st of this.hwPdpte.values()) if (st.refs.includes(sh)) return true;
    return false;
  }

  // ---- the shadow pool -----------------------------------------------------

  /** Frames the pool holds: shadows and out-of-sync snapshots. */
  private poolUsed(): number {
    return this.counters.shadow_frames + this.oos.size;
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
  private prealloc(): void {
    const need = PREALLOC_FRAMES;
    if (this.poolDefault && this.poolUsed() + need > this.poolFrames) {
      this.poolFrames = this.defaultPool();
      this.counters['pool.frames'] = this.poolFrames;
    }
    if (this.poolUsed() + need <= this.poolFrames) return;
    const inUse = new Set(this.cpus.map((c) => c.mmu.rootPfn));
    for (const sh of [...this.pinnedLru.keys()]) {
      if (this.poolUsed() + need <= this.poolFrames) return;
      if (inUse.has(sh.smfn)) continue;
      this.counters['pool.evictions']++;
      this.pinnedLru.delete(sh);
      sh.pinned = false;
      this.release(sh);
    }
    if (this.poolUsed() + need <= this.poolFrames) return;
    this.counters['pool.blowouts']++;
    this.blowTables();
  }

  // ---- out-of-sync l1s and snapshots -------------------------------------

  /** Must guest writes to `gfn` trap? (A shadowed table, unless it is out of sync.) */
  private writeProtected(gfn: number): boolean {
    return this.byGfn.has(gfn) && !this.oos.has(gfn);
  }

  /**
   * May `gfn` go out of sync? Only when the option is on and every shadow of
   * it is an l1: the hardware walks through higher-level shadows, so their
   * guest tables must stay write-protected; an l1's shadow entries are only
   * translations the guest must invalidate before relying on a change.
   */
  private canUnsync(gfn: number): boolean {
    if (!this.sw.oos) return false;
    const list = this.byGfn.get(gfn);
    if (list === undefined) return false;
    for (const sh of list) if (sh.level !== 1) return false;
    return true;
  }

  /** Take a snapshot of `gfn` and let the guest write it directly (its mappings may become writable). */
  private unsync(cpu: Cpu, gfn: number): void {
    const slots = this.oosSlots[cpu.index] as Array<OosPage | null>;
    const slot = gfn % OOS_PER_VCPU;
    const old = slots[slot];
    if (old != null) this.resync(old.gfn, 'evicted');
    const page: OosPage = { gfn, vcpu: cpu.index, slot, snapshot: this.guestSpace.frameForRead(gfn).slice() };
    slots[slot] = page;
    this.oos.set(gfn, page);
    this.p2m.protect(gfn, false);
    this.counters['oos.unsynced']++;
    if (this.oos.size > this.counters['oos.peak_pages']) this.counters['oos.peak_pages'] = this.oos.size;
  }

  private resyncAll(cause: ResyncCause): void {
    if (this.oos.size === 0) return;
    for (const gfn of [...this.oos.keys()]) this.resync(gfn, cause);
  }

  /**
   * Bring out-of-sync `gfn` back in sync: compare it with its snapshot,
   * recompute the shadow entries of the guest entries that changed (only
   * those), and write-protect it again in every shadow that maps it.
   */
  private resync(gfn: number, cause: ResyncCause): void {
    const page = this.oos.get(gfn);
    if (page === undefined) return;
    this.forgetOos(gfn);
    this.counters['oos.resyncs']++;
    this.counters[`oos.resync.${cause}`] = (this.counters[`oos.resync.${cause}`] ?? 0) + 1;
    const live = this.guestSpace.frameForRead(gfn);
    const snap = page.snapshot;
    let flush = false;
    for (const sh of [...(this.byGfn.get(gfn) ?? [])]) {
      const first = sh.guestWide ? 0 : sh.part * 512;
      for (let gi = first; gi < first + 512; gi++) {
        this.counters['oos.entries_compared']++;
        const lo = sh.guestWide ? (live[2 * gi] as number) : (live[gi] as number);
        const hi = sh.guestWide ? (live[2 * gi + 1] as number) : 0;
        if (sh.guestWide ? lo === snap[2 * gi] && hi === snap[2 * gi + 1] : lo === snap[gi]) continue;
        this.counters['oos.entries_changed']++;
        // An entry with reserved bits set faults in the guest's walk: its shadow stays not present.
        const bad = (lo & (sh.fmt.rsvdLo[2] as number)) !== 0 || (hi & (sh.fmt.rsvdHi[2] as number)) !== 0;
        const target = leafFrame(lo, hi, sh.guestWide, false, 12);
        for (const i of derivedEntries(sh, gi)) {
          if (bad ? this.setEntry(sh, i, NOT_PRESENT, null) : this.setLeaf(sh, i, target, lo, hi)) flush = true;
        }
      }
    }
    this.p2m.protect(gfn, true);
    if (this.revokeWrite(gfn)) flush = true;
    if (flush) this.shootdown();
  }

  /** Forget that `gfn` is out of sync (its snapshot goes). */
  private forgetOos(gfn: number): void {
    const page = this.oos.get(gfn);
    if (page === undefined) return;
    this.oos.delete(gfn);
    (this.oosSlots[page.vcpu] as Array<OosPage | null>)[page.slot] = null;
  }

  /** Clear the write permission of every shadow leaf mapping `gfn` (through the writer); true if any had it. */
  private revokeWrite(gfn: number): boolean {
    const slots = this.writable.take(gfn);
    for (const slot of slots) {
      this.counters.rmap_entries_searched++;
      const sh = this.byMfn.get(Math.floor(slot / 1024)) as Shadow;
      const i = slot % 1024;
      const f = this.domain.mem.read(sh.smfn);
      this.setEntry(sh, i, [(f[2 * i] as number) & ~(PTE_RW | PTE_D), f[2 * i + 1] as number], null);
    }
    return slots.length > 0;
  }

  /** Guest frame `gfn` (a shadowed table) changed at [offset, offset+size): drop derived shadow entries. */
  private revalidate(gfn: number, offset: number, size: number): void {
    const list = this.byGfn.get(gfn);
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
          this.counters.entries_revalidated++;
          if (this.setEntry(sh, i, NOT_PRESENT, null)) dropped = true;
        }
      }
    }
    // Only a shadow entry that was present can be cached in a TLB: filling an
    // empty slot (the common case, a guest mapping a new page) needs no flush.
    if (dropped) this.shootdown();
  }

  /** Flush every vCPU's hardware TLB (a real hypervisor sends IPIs). */
  private shootdown(): void {
    this.counters.tlb_shootdowns++;
    for (const c of this.cpus) c.tlb.flushContext(-1, true);
  }

  // ---- isolation checker -------------------------------------------------

  private maybeCheck(): void {
    if (!this.opts.check) return;
    const problem = this.checkInvariants();
    if (problem !== null) throw new Error(`shadow isolation invariant broken: ${problem}`);
  }

  /** Verify the pool bound, reference counts, and every path through the shadows (audit.ts); null if all hold. */
  checkInvariants(): string | null {
    const mem = this.domain.mem;
    if (this.poolUsed() > this.poolFrames)
      return `shadow pool overflow: ${this.poolUsed()} frames in a pool of ${this.poolFrames}`;
    // Reference counts: one per parent entry, per PAE hardware PDPTE, and one for the pin.
    const counted = new Map<Shadow, number>();
    const all = [...this.hash.values(), ...this.flHash.values()];
    for (const sh of all) counted.set(sh, sh.pinned ? 1 : 0);
    for (const st of this.hwPdpte.values()) for (const sh of st.refs) counted.set(sh, (counted.get(sh) ?? 0) + 1);
    for (const sh of all) {
      if (mem.ownerOf(sh.smfn) !== OWNER_HYPERVISOR) return `${shadowName(sh)} in a frame the hypervisor does not own`;
      if (sh.level === 1) continue;
      const f = mem.read(sh.smfn);
      for (let i = 0; i < 512; i++) {
        const lo = f[2 * i] as number;
        if ((lo & PTE_P) === 0 || (lo & PTE_PS) !== 0 || isMagic(lo, f[2 * i + 1] as number)) continue;
        const c = this.byMfn.get(((f[2 * i + 1] as number) & 0xfffff) * 0x100000 + (lo >>> 12));
        if (c !== undefined) counted.set(c, (counted.get(c) ?? 0) + 1);
      }
    }
    for (const [sh, n] of counted)
      if (n !== sh.refs) return `${shadowName(sh)} has ${sh.refs} references counted but ${n} exist`;
    return auditPaths(this.auditView());
  }

  /** What the checker may read: shadows, the P2M, and the guest as the shadows should reflect it. */
  private auditView(): AuditView {
    const guest = this.guestSpace;
    const oos = this.oos;
    const guestView: PhysicalSpace = {
      frameForRead: (gfn) => oos.get(gfn)?.snapshot ?? guest.frameForRead(gfn),
    };
    const p2m = this.p2m;
    return {
      domainId: this.domain.id,
      shadowFrame: (smfn) => this.domain.mem.read(smfn),
      ownerOf: (mfn) => this.domain.mem.ownerOf(mfn),
      shadowAt: (smfn) => this.byMfn.get(smfn),
      guestView,
      mfnOf: (gfn) => p2m.lookup(gfn),
      isRamRw: (gfn) => p2m.lookup(gfn) >= 0 && p2m.lastType === P2M_RAM_RW,
      writableOk: (gfn) => {
        if (this.writeProtected(gfn)) return `writable over shadowed guest table ${gfn}`;
        if (this.dirtyBitmap !== null && this.dirtyBitmap[gfn] !== 1) return `writable, gfn ${gfn} not logged dirty`;
        return null;
      },
      superpageOk: (first, count) => {
        if (this.dirtyBitmap !== null) return 'a shadow superpage in log-dirty mode';
        if (!this.canMapLarge(first, count)) return `a shadow superpage over gfns ${first}+${count} it may not cover`;
        return null;
      },
      roots: () => this.auditRoots(),
    };
  }

  /** Every vCPU's hardware root, and every pinned top-level shadow no vCPU runs on. */
  private *auditRoots(): Generator<AuditRoot> {
    const current = new Set<number>();
    for (const c of this.cpus) {
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
    for (const sh of this.pinnedLru.keys()) {
      if (current.has(sh.smfn)) continue;
      const hwFmt = formatFor(hardwareMode(sh.fmt), HOST_MAXPHYADDR, true, sh.fmt.pse);
      yield { guestFmt: sh.fmt, hwFmt, guestRoot: sh.gfn, guestPdpte: null, hwRoot: sh.smfn, hwPdpte: null };
    }
  }
}
