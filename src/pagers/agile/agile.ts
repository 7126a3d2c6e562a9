/**
 * The agile pager, after Gandhi, Hill and Swift, "Agile Paging: Exceeding the
 * Best of Nested and Shadow Paging" (ISCA 2016): each walk starts in shadow
 * tables (gVA → machine frames, as under shadow paging) and, at a shadow
 * entry carrying the switching bit, goes on as a nested walk of the guest's
 * own tables with every guest-physical address translated through stage 2
 * (the nested pager's EPT/NPT table, reused: ../nested/tdp.ts). The walker
 * does both in one walk (arch/x86/walker.ts, switchBit); the switching bit
 * is a proposed hardware extension, not an x86 feature (docs/agile.md).
 *
 * Per guest table (a guest frame at a level), the pager decides:
 *  - shadow mode: a shadow table mirrors it (filled lazily on shadow
 *    faults), and its frame is write-protected — read-only in every shadow
 *    leaf and in stage 2 — so every guest write to it traps (a write trap),
 *    is emulated, and drops the shadow entries it wrote;
 *  - nested mode: the parent's shadow entry carries the switching bit and
 *    the guest-physical address of the guest table; the table and all below
 *    it are walked nested, and the guest writes them freely.
 * Policy (the paper's idea; Umbra's thresholds and clock): a shadowed
 * table that takes more than `threshold` write traps in one interval
 * switches to nested; at the end of each interval, a nested-mode table
 * whose contents (accessed and dirty flags aside) did not change over a
 * whole interval switches back to shadow.
 *
 * Rules this file keeps (audit.ts checks them from the outside):
 *  1. setEntry() is the one writer of shadow entries; it keeps the reference
 *     counts, the up-pointers, the writable reverse map and the switching
 *     entries' list in step with the entries.
 *  2. A shadow entry is made only from a guest walk that succeeded, and only
 *     with rights the guest entry grants: a non-leaf entry the guest entry's
 *     P, R/W, U/S, PWT, PCD, A and XD with the frame of the child's shadow
 *     (or the child's gfn and the switching bit); a leaf the guest leaf's
 *     flags with the frame's own machine frame, writable only if the guest
 *     leaf is writable and dirty and the frame is RAM and not protected.
 *  3. A guest frame with a shadow table is protected: no writable shadow
 *     leaf and no writable stage-2 leaf maps it, and no TLB holds a writable
 *     translation of it (protect() revokes, then flushes every vCPU).
 *  4. Every guest write to a protected frame (a trap, a device write) drops
 *     the shadow entries it covers before the guest runs again; a p2m change
 *     or a change of the guest's entry format throws every shadow away.
 *  5. The hardware runs with CR0.WP forced on; a supervisor write the guest's
 *     WP=0 allows is emulated.
 */
import { CTL_WP, checkAccess, faultError } from '../../arch/x86/access.js';
import {
  type AccessKind,
  FETCH,
  PF_RSVD,
  PTE_A,
  PTE_D,
  PTE_G,
  PTE_P,
  PTE_PCD,
  PTE_PS,
  PTE_PWT,
  PTE_RW,
  PTE_US,
  WRITE,
  XD_HI,
} from '../../arch/x86/bits.js';
import { type Cpu, HOST_DONE, HOST_RETRY, readValue, writeValue } from '../../arch/x86/cpu.js';
import { entryFrame, entryHi, entryLo } from '../../arch/x86/entry.js';
import {
  EXIT_CR_WRITE,
  EXIT_EPT_MISCONFIG,
  EXIT_EPT_VIOLATION,
  EXIT_FLUSH,
  EXIT_INVLPG,
  EXIT_INVPCID,
  EXIT_MSR_WRITE,
  EXIT_NPF,
  EXIT_PAGE_FAULT,
  type ExitReason,
} from '../../arch/x86/exits.js';
import type { WalkFormat } from '../../arch/x86/modes.js';
import { type Stage2, WALK_OK, Walker, WalkResult } from '../../arch/x86/walker.js';
import type { Domain, GuestPhysicalSpace } from '../../hypervisor/domain.js';
import type { CounterDecl, Pager } from '../../hypervisor/pager.js';
import { PHYS_NONE, PHYS_RAM } from '../../hypervisor/physmap.js';
import { OWNER_HYPERVISOR } from '../../machine/memory.js';
import { MachineSpace } from '../../p2m/p2m.js';
import {
  eptEntries,
  NPT_ENTRIES,
  P2M_RAM_RO,
  P2M_RAM_RW,
  type Stage2Entries,
  stage2Format,
} from '../nested/entries.js';
import { Stage2Table } from '../nested/tdp.js';
import { auditAgile } from './audit.js';
import { AGILE_COUNTERS, type AgileCounters, newCounters } from './counters.js';
import { type AgileSwitches, DEFAULT_AGILE } from './options.js';

/**
 * The switching bit: bit 11 of a non-leaf shadow entry, which 4-level and
 * 5-level paging ignore (SDM vol. 3A, 4.5: bits 11:8 of a non-leaf entry;
 * only HLAT paging gives bit 11 a meaning). The pager writes shadow entries,
 * and the walker looks for the bit only in shadow tables.
 */
export const SWITCH_BIT = 1 << 11;

/** Guest non-leaf flags a shadow non-leaf entry copies (rule 2). */
const NONLEAF_FLAGS = PTE_P | PTE_RW | PTE_US | PTE_PWT | PTE_PCD | PTE_A;
/** Guest 4 KiB leaf flags a shadow leaf copies (bit 7 is PAT there); R/W is decided apart. */
const LEAF_FLAGS = PTE_P | PTE_US | PTE_PWT | PTE_PCD | PTE_A | PTE_D | PTE_PS | PTE_G;
/** High-half bits a shadow entry copies: XD, and in a leaf the protection key (bits 62:59). */
const LEAF_HI = (XD_HI | (0xf << 27)) >>> 0;

/** A shadow table: the shadow of guest frame `gfn` as a table of level `level`. */
export interface ShadowTable {
  readonly key: number;
  readonly gfn: number;
  readonly level: number;
  readonly mfn: number;
  /** Parent entries naming it, plus root pins. */
  refs: number;
  /** Parent entries naming it, as slots (mfn * 512 + index). */
  readonly parents: Set<number>;
  /** Write traps this interval. */
  writes: number;
}

/** A guest table in nested mode. */
export interface NestedTable {
  readonly gfn: number;
  readonly level: number;
  /** Its contents at the last interval's end (null until one ended). */
  snap: Uint32Array | null;
}

/** Key of a guest table: its frame and level. */
export const tableKey = (gfn: number, level: number): number => gfn * 8 + level;

export interface AgileOptions {
  /** Run the isolation checker after every exit (tests). */
  check?: boolean;
  /** The pager's name in statistics (its spec). */
  name?: string;
  switches?: Partial<AgileSwitches>;
}

/** Roots kept shadowed (pinned) besides the vCPUs' current ones, so a context switch finds its shadow. */
const PINNED_ROOTS = 16;

export class AgilePager implements Pager {
  static readonly counters: readonly CounterDecl[] = AGILE_COUNTERS;
  readonly name: string;
  readonly sw: AgileSwitches;
  private readonly counters: AgileCounters = newCounters();
  readonly enc: Stage2Entries;
  domain!: Domain;
  private guest!: GuestPhysicalSpace;
  cpus: readonly Cpu[] = [];
  private space!: MachineSpace;
  table!: Stage2Table;
  stage2!: Stage2;

  /** Shadow tables by key and by machine frame; shadows per guest frame (the protected frames). */
  readonly shadows = new Map<number, ShadowTable>();
  readonly byMfn = new Map<number, ShadowTable>();
  readonly protectedGfns = new Map<number, number>();
  /** Protected frames per 2 MiB and 1 GiB region of gfns (no stage-2 large leaf over them). */
  readonly protected2m = new Map<number, number>();
  readonly protected1g = new Map<number, number>();
  /** Writable shadow leaves by the gfn they map, as slots. */
  readonly writable = new Map<number, Set<number>>();
  /** Gfns a dropped writable shadow leaf mapped since the last full flush: a TLB may still hold the write. */
  private readonly staleWritable = new Set<number>();
  /** Guest tables in nested mode, and the shadow entries switching to each (slots). */
  readonly nested = new Map<number, NestedTable>();
  readonly switchSlots = new Map<number, Set<number>>();
  /** Each vCPU's pinned shadow root (null: walked wholly nested), and recently used roots kept pinned. */
  readonly cpuRoot: Array<ShadowTable | null> = [];
  private readonly lru: ShadowTable[] = [];
  /** Roots seen (start=nested puts each new one in nested mode once). */
  private readonly rootsSeen = new Set<number>();
  /** The guest entry format the shadows were built for. */
  private shadowFmt: WalkFormat | null = null;
  private peak = 0;
  /** Policy clock: guest operations at which the current interval ends. */
  private intervalEnd = 0;
  /** The last page-fault exit fixed (vCPU, VA) and how often in a row: a fix that fixes nothing is a bug. */
  private lastFix = -1;
  private lastFixOp = 0;
  private repeats = 0;

  /** The emulator's software walk of the guest's tables; stage-2 look-ups. */
  private readonly walker = new Walker();
  private readonly walk = new WalkResult();
  private readonly s2res = new WalkResult();

  constructor(private readonly opts: AgileOptions = {}) {
    this.name = opts.name ?? 'agile';
    this.sw = { ...DEFAULT_AGILE, ...opts.switches };
    this.enc = this.sw.kind === 'ept' ? eptEntries(true) : NPT_ENTRIES;
  }

  attach(domain: Domain, cpus: readonly Cpu[]): void {
    this.domain = domain;
    this.guest = domain.guest;
    this.cpus = cpus;
    this.space = new MachineSpace(domain.mem);
    const sw = this.sw;
    const fmt = stage2Format(sw.kind, sw.levels, true);
    const guest = domain.guest;
    const placement = domain.placement;
    this.table = new Stage2Table(
      domain.mem,
      fmt,
      this.enc,
      {
        ramFrames: guest.ramFrames,
        mfnOf: (gfn) => placement.mfnOf(gfn),
        // No large leaf over a protected frame: protection is per 4 KiB frame.
        contiguousRam: (first, count) =>
          placement.kind === 'identity' &&
          !guest.physmap.anyNotRam(first, count) &&
          !(count === 512 ? this.protected2m.has(first / 512) : this.protected1g.has(first / 262144)),
      },
      true,
    );
    this.stage2 = { fmt, rootPfn: this.table.rootMfn };
    this.intervalEnd = sw.interval;
    for (const c of cpus) {
      this.cpuRoot[c.index] = null;
      this.load(c);
    }
  }

  // ---- loading the MMU ----

  /** Can the shadow part hold this guest format? Long mode only, and machine frames the format can name. */
  private shadowable(fmt: WalkFormat | null): fmt is WalkFormat {
    if (fmt === null) return false;
    return fmt.mode.wide && !fmt.mode.pdpteRegisters && this.domain.mem.frames <= 2 ** (fmt.maxPhysAddr - 12);
  }

  /** Point the MMU at the shadow root of the guest's CR3, or at the guest's own tables wholly nested. */
  private load(cpu: Cpu): void {
    const m = cpu.mmu;
    const c = this.counters;
    this.unpinCpu(cpu);
    m.space = this.space;
    m.format = cpu.format;
    m.stage2 = this.stage2;
    m.ctlAnd = -1;
    m.ctlOr = 0;
    m.switchBit = 0;
    m.pdpte = cpu.mode?.pdpteRegisters ? cpu.pdpte : null;
    m.rootPfn = cpu.cr3RootPfn;
    const fmt = cpu.format;
    if (!this.shadowable(fmt)) {
      c['cr3.nested_mode']++;
      return;
    }
    if (this.shadowFmt !== fmt) {
      // Shadows are built for one guest entry format: another vCPU using them in another format walks nested.
      if (this.cpus.some((o) => o !== cpu && this.cpuRoot[o.index] !== null)) {
        c['cr3.nested_mode']++;
        return;
      }
      if (this.shadows.size > 0) this.blowAll(false);
      this.shadowFmt = fmt;
    }
    const gfn = cpu.cr3RootPfn;
    const key = tableKey(gfn, fmt.mode.topLevel);
    if (!this.rootsSeen.has(key)) {
      this.rootsSeen.add(key);
      if (this.sw.start === 'nested' && !this.shadows.has(key))
        this.nested.set(key, { gfn, level: fmt.mode.topLevel, snap: null });
    }
    if (this.nested.has(key)) {
      c['cr3.nested_root']++;
      return;
    }
    const root = this.getOrMake(gfn, fmt.mode.topLevel);
    root.refs++;
    this.cpuRoot[cpu.index] = root;
    const i = this.lru.indexOf(root);
    if (i >= 0) this.lru.splice(i, 1);
    else root.refs++;
    this.lru.push(root);
    if (this.lru.length > PINNED_ROOTS) this.unref(this.lru.shift() as ShadowTable);
    m.rootPfn = root.mfn;
    m.switchBit = SWITCH_BIT;
    m.ctlOr = CTL_WP;
    c['cr3.shadow_root']++;
  }

  private unpinCpu(cpu: Cpu): void {
    const r = this.cpuRoot[cpu.index];
    if (r !== null && r !== undefined) {
      this.cpuRoot[cpu.index] = null;
      this.unref(r);
    }
  }

  /** Reload every vCPU whose current root is guest table `key`. */
  private reloadUsers(key: number): void {
    for (const cpu of this.cpus) {
      const fmt = cpu.format;
      if (this.shadowable(fmt) && tableKey(cpu.cr3RootPfn, fmt.mode.topLevel) === key) this.load(cpu);
    }
  }

  // ---- shadow tables and the one writer of their entries ----

  private getOrMake(gfn: number, level: number): ShadowTable {
    const key = tableKey(gfn, level);
    let sh = this.shadows.get(key);
    if (sh !== undefined) return sh;
    const mfn = this.domain.mem.alloc(OWNER_HYPERVISOR);
    sh = { key, gfn, level, mfn, refs: 0, parents: new Set(), writes: 0 };
    this.shadows.set(key, sh);
    this.byMfn.set(mfn, sh);
    this.counters.shadows_made++;
    if (this.byMfn.size > this.peak) this.peak = this.byMfn.size;
    this.protect(gfn);
    return sh;
  }

  private unref(sh: ShadowTable): void {
    if (--sh.refs === 0) this.free(sh);
  }

  private free(sh: ShadowTable): void {
    const f = this.domain.mem.read(sh.mfn);
    for (let i = 0; i < 512; i++) if (((f[2 * i] as number) & PTE_P) !== 0) this.setEntry(sh, i, 0, 0);
    const i = this.lru.indexOf(sh);
    if (i >= 0) this.lru.splice(i, 1);
    this.shadows.delete(sh.key);
    this.byMfn.delete(sh.mfn);
    this.domain.mem.free(sh.mfn);
    this.counters.shadows_freed++;
    this.unprotect(sh.gfn);
    // A paging-structure cache may hold entries of the freed frame.
    this.flushPsc();
  }

  /** Rule 1: write shadow entry `idx` of `sh`, keeping every record in step. */
  private setEntry(sh: ShadowTable, idx: number, lo: number, hi: number): void {
    const f = this.domain.mem.write(sh.mfn);
    const oldLo = f[2 * idx] as number;
    const oldHi = f[2 * idx + 1] as number;
    if (oldLo === lo && oldHi === hi) return;
    f[2 * idx] = lo;
    f[2 * idx + 1] = hi;
    // Same target and kind (flags aside): the records stand as they are.
    if (
      (lo & oldLo & PTE_P) !== 0 &&
      ((lo ^ oldLo) & (sh.level === 1 ? PTE_RW : SWITCH_BIT)) === 0 &&
      entryFrame(lo, hi) === entryFrame(oldLo, oldHi)
    )
      return;
    const slot = sh.mfn * 512 + idx;
    if ((lo & PTE_P) !== 0) {
      this.counters.entries_made++;
      this.link(sh, slot, lo, hi);
    }
    if ((oldLo & PTE_P) !== 0) this.unlink(sh, slot, oldLo, oldHi);
  }

  private link(sh: ShadowTable, slot: number, lo: number, hi: number): void {
    const frame = entryFrame(lo, hi);
    if (sh.level === 1) {
      if ((lo & PTE_RW) !== 0) {
        const gfn = this.domain.placement.gfnOf(frame);
        let s = this.writable.get(gfn);
        if (s === undefined) {
          s = new Set();
          this.writable.set(gfn, s);
        }
        s.add(slot);
      }
    } else if ((lo & SWITCH_BIT) !== 0) {
      const key = tableKey(frame, sh.level - 1);
      let s = this.switchSlots.get(key);
      if (s === undefined) {
        s = new Set();
        this.switchSlots.set(key, s);
      }
      s.add(slot);
    } else {
      const child = this.byMfn.get(frame) as ShadowTable;
      child.refs++;
      child.parents.add(slot);
    }
  }

  private unlink(sh: ShadowTable, slot: number, lo: number, hi: number): void {
    const frame = entryFrame(lo, hi);
    if (sh.level === 1) {
      if ((lo & PTE_RW) !== 0) {
        const gfn = this.domain.placement.gfnOf(frame);
        const s = this.writable.get(gfn);
        if (s !== undefined) {
          s.delete(slot);
          if (s.size === 0) this.writable.delete(gfn);
        }
        this.staleWritable.add(gfn);
      }
    } else if ((lo & SWITCH_BIT) !== 0) {
      const key = tableKey(frame, sh.level - 1);
      const s = this.switchSlots.get(key);
      if (s !== undefined) {
        s.delete(slot);
        if (s.size === 0) this.switchSlots.delete(key);
      }
    } else {
      const child = this.byMfn.get(frame) as ShadowTable;
      child.parents.delete(slot);
      this.unref(child);
    }
  }

  /** Clear the shadow entry at `slot`. */
  private dropSlot(slot: number): void {
    const sh = this.byMfn.get(Math.floor(slot / 512));
    if (sh === undefined) return;
    const idx = slot % 512;
    const f = this.domain.mem.read(sh.mfn);
    if (((f[2 * idx] as number) & PTE_P) === 0) return;
    this.setEntry(sh, idx, 0, 0);
    this.counters.entries_dropped++;
  }

  // ---- protection of shadowed guest frames (rule 3) ----

  isProtected(gfn: number): boolean {
    return this.protectedGfns.has(gfn);
  }

  private protect(gfn: number): void {
    const n = this.protectedGfns.get(gfn) ?? 0;
    this.protectedGfns.set(gfn, n + 1);
    if (n > 0) return;
    bump(this.protected2m, Math.floor(gfn / 512), 1);
    bump(this.protected1g, Math.floor(gfn / 262144), 1);
    let flush = this.staleWritable.has(gfn);
    const slots = this.writable.get(gfn);
    if (slots !== undefined) {
      for (const slot of [...slots]) {
        const sh = this.byMfn.get(Math.floor(slot / 512)) as ShadowTable;
        const idx = slot % 512;
        const f = this.domain.mem.read(sh.mfn);
        this.setEntry(sh, idx, ((f[2 * idx] as number) & ~PTE_RW) >>> 0, f[2 * idx + 1] as number);
        this.counters.write_access_removals++;
      }
      flush = true;
    }
    // Remove whatever stage 2 holds (the next fault maps the frame read-only); a large leaf is split at once.
    if (gfn < this.guest.ramFrames) {
      const level = this.stage2Leaf(gfn) >= 0 ? this.s2res.level : 0;
      if (level > 0 && this.table.zap(gfn, 1) > 0) flush = true;
      if (level > 1) this.split(gfn, level);
    }
    if (flush) this.shootdown();
  }

  /**
   * Remake the large stage-2 leaf of `level` that covered protected `gfn`, as
   * KVM splits a huge page eagerly: 2 MiB leaves for the other 2 MiB regions
   * of a 1 GiB page, 4 KiB leaves for the region holding `gfn` (read-only for
   * protected frames). The guest then takes no stage-2 fault for the rest of
   * the page.
   */
  private split(gfn: number, level: number): void {
    const span = 2 ** (9 * (level - 1));
    const base = gfn - (gfn % span);
    this.counters['stage2.splits']++;
    for (let first = base; first < base + span; first += 512) {
      if (gfn - first >= 512 || gfn < first) this.table.map(first, P2M_RAM_RW);
      else for (let g = first; g < first + 512; g++) this.table.map(g, this.isProtected(g) ? P2M_RAM_RO : P2M_RAM_RW);
    }
  }

  private unprotect(gfn: number): void {
    const n = this.protectedGfns.get(gfn) ?? 0;
    if (n > 1) {
      this.protectedGfns.set(gfn, n - 1);
      return;
    }
    this.protectedGfns.delete(gfn);
    bump(this.protected2m, Math.floor(gfn / 512), -1);
    bump(this.protected1g, Math.floor(gfn / 262144), -1);
    // Read-only leaves left behind regain write on their next fault.
  }

  private shootdown(): void {
    this.counters.tlb_shootdowns++;
    if (this.staleWritable.size !== 0) this.staleWritable.clear(); // clear() allocates even when empty
    for (const cpu of this.cpus) cpu.mmu.flushContext(-1, true);
  }

  private flushPsc(): void {
    // Every cached upper entry and stage-2 translation (agile installs no caches today: the walk does not use them).
    for (const cpu of this.cpus) cpu.mmu.psc?.invept();
  }

  // ---- switching ----

  /** Shadow → nested: the table's shadow goes, its parents' entries are dropped (they come back as switching entries). */
  private toNested(
    sh: ShadowTable,
    why: 'switch.to_nested_writes' | 'switch.to_nested_large' | 'switch.to_nested_shared',
  ): void {
    const c = this.counters;
    c['switch.to_nested']++;
    c[why]++;
    this.nested.set(sh.key, { gfn: sh.gfn, level: sh.level, snap: null });
    sh.refs++; // held while its parents go
    for (const slot of [...sh.parents]) this.dropSlot(slot);
    const i = this.lru.indexOf(sh);
    if (i >= 0) {
      this.lru.splice(i, 1);
      sh.refs--;
    }
    this.unref(sh);
    if (this.shadows.get(sh.key) === sh) this.reloadUsers(sh.key);
  }

  /** Nested → shadow: the switching entries are dropped; the next fault through them shadows the table. */
  private toShadow(key: number): void {
    this.nested.delete(key);
    this.counters['switch.to_shadow']++;
    const slots = this.switchSlots.get(key);
    if (slots !== undefined) for (const slot of [...slots]) this.dropSlot(slot);
    this.reloadUsers(key);
    this.flushPsc();
  }

  /** Does guest table (gfn, level) hold a large page? */
  private holdsLarge(gfn: number, level: number): boolean {
    if (level < 2 || level > 3) return false;
    const f = this.guest.frameForRead(gfn);
    for (let i = 0; i < 1024; i += 2) {
      const lo = f[i] as number;
      if ((lo & PTE_P) !== 0 && (lo & PTE_PS) !== 0) return true;
    }
    return false;
  }

  /** The policy clock (guest operations of every vCPU): end the interval if it is over. */
  private clock(): void {
    let ops = 0;
    for (const cpu of this.cpus) ops += cpu.counters.reads + cpu.counters.writes + cpu.counters.fetches;
    if (ops < this.intervalEnd) return;
    this.intervalEnd = ops + this.sw.interval;
    const c = this.counters;
    c['policy.intervals']++;
    for (const sh of this.shadows.values()) sh.writes = 0;
    for (const [key, t] of [...this.nested]) {
      if (this.guest.typeOf(t.gfn) !== PHYS_RAM) continue;
      c['nested.compares']++;
      const cur = this.guest.frameForRead(t.gfn);
      if (t.snap !== null && sameBesidesAd(t.snap, cur) && !this.holdsLarge(t.gfn, t.level)) this.toShadow(key);
      else t.snap = cur.slice();
    }
  }

  // ---- exits ----

  stats(): Record<string, number> {
    const t = this.table;
    let refs = 0;
    for (const c of this.cpus) refs += c.walker.stage2Reads;
    return {
      ...this.counters,
      'shadow.frames': this.byMfn.size,
      'shadow.frames_peak': this.peak,
      'nested.tables': this.nested.size,
      'protected.frames': this.protectedGfns.size,
      'stage2.table_frames': t?.tables.size ?? 0,
      'stage2.entries': t?.present ?? 0,
      'walk.stage2_refs': refs,
    };
  }

  exit(cpu: Cpu, reason: ExitReason): number {
    const c = this.counters;
    let r = 0;
    switch (reason) {
      case EXIT_PAGE_FAULT:
        // Walked wholly nested: the #PF intercept is off, the fault is the guest's.
        if (cpu.mmu.switchBit === 0) return cpu.exitInfo.error;
        c.exits++;
        c['exit.page_fault']++;
        this.clock();
        r = this.pageFault(cpu);
        break;
      case EXIT_CR_WRITE:
      case EXIT_MSR_WRITE:
        c.exits++;
        c[reason === EXIT_CR_WRITE ? 'exit.cr_write' : 'exit.msr_write']++;
        this.clock();
        this.load(cpu);
        break;
      case EXIT_INVLPG:
      case EXIT_INVPCID:
      case EXIT_FLUSH:
        return 0; // shadows are kept in sync at every write: the CPU's own invalidation suffices
      case EXIT_EPT_VIOLATION:
      case EXIT_EPT_MISCONFIG:
      case EXIT_NPF:
        c.exits++;
        c[
          reason === EXIT_EPT_VIOLATION ? 'exit.ept_violation' : reason === EXIT_NPF ? 'exit.npf' : 'exit.ept_misconfig'
        ]++;
        this.clock();
        r = this.stage2Fault(cpu, reason);
        break;
      default:
        throw new Error(`agile pager: exit reason ${reason}, which it never enables`);
    }
    this.maybeCheck();
    return r;
  }

  /**
   * A page fault in the walk of an address space with a shadowed part: the
   * guest's own fault (injected), an access to emulate, or a shadow path to
   * fill from the guest walk (rule 2).
   */
  private pageFault(cpu: Cpu): number {
    const x = cpu.exitInfo;
    const w = this.walk;
    const r = this.guestWalk(cpu);
    if (r >= 0) {
      this.counters['fault.injected']++;
      return r;
    }
    const done = this.emulateIfNeeded(cpu, false);
    if (done !== 0) return done;
    // Guard: one access faulting again and again means the fix fixes nothing (a bug, not a guest's doing).
    const op = cpu.counters.reads + cpu.counters.writes + cpu.counters.fetches;
    if (this.lastFix === cpu.index && this.lastFixOp === op && ++this.repeats > 8)
      throw new Error(
        `agile pager: the shadow fault at ${x.vaHi.toString(16)}:${x.vaLo.toString(16)} keeps coming back`,
      );
    if (this.lastFix !== cpu.index || this.lastFixOp !== op) this.repeats = 0;
    this.lastFix = cpu.index;
    this.lastFixOp = op;
    this.fill(cpu, w);
    return HOST_RETRY;
  }

  /**
   * Walk the guest's tables in guest-physical memory for the access in
   * progress as native hardware would, setting its accessed and dirty flags
   * if it succeeds. Returns the error code of the guest's #PF, or -1.
   */
  private guestWalk(cpu: Cpu): number {
    const x = cpu.exitInfo;
    const access = x.access as AccessKind;
    const fmt = cpu.format;
    if (fmt === null) return -1;
    const w = this.walk;
    const r = this.walker.walk(
      this.guest,
      fmt,
      cpu.cr3RootPfn,
      fmt.mode.pdpteRegisters ? cpu.pdpte : null,
      x.vaHi,
      x.vaLo,
      w,
    );
    const error = r === WALK_OK ? checkAccess(w.perm, access, x.cpl, cpu.ctl, cpu.pkru) : -1;
    if (error !== 0) return r === WALK_OK ? error : faultError(r, access, x.cpl, cpu.ctl);
    w.commit(access === WRITE, this.guest);
    return -1;
  }

  /** The gfn the successful guest walk reached (paging off: the address itself). */
  private targetGfn(cpu: Cpu): number {
    const x = cpu.exitInfo;
    if (cpu.format === null) return x.vaLo >>> 12;
    const w = this.walk;
    return w.pfn + (((x.vaLo >>> 12) | (x.vaHi << 20)) & ((1 << (w.shift - 12)) - 1));
  }

  /**
   * After a successful guest walk: perform the access here if the hardware
   * cannot be made to — MMIO, a write to ROM, a write trap, a WP=0 write, a
   * write whose dirty flag cannot be set — and return HOST_DONE; else 0.
   * `always`: perform it in any case (a table reference stage 2 refused).
   */
  private emulateIfNeeded(cpu: Cpu, always: boolean): number {
    const x = cpu.exitInfo;
    const c = this.counters;
    const gfn = this.targetGfn(cpu);
    const type = this.guest.typeOf(gfn);
    const write = x.access === WRITE;
    let why: keyof AgileCounters | null = null;
    if (type === PHYS_NONE) why = 'emulate.mmio';
    else if (write) {
      const fmt = cpu.format;
      if (type !== PHYS_RAM) why = 'emulate.rom_write_discarded';
      else if (this.isProtected(gfn)) why = 'emulate.pt_write';
      else if (fmt !== null && checkAccess(this.walk.perm, WRITE, x.cpl, cpu.ctl | CTL_WP, cpu.pkru) !== 0)
        why = 'emulate.wp0_write';
      else if (fmt !== null && this.walk.shift === 12 && (this.walk.entryLo & PTE_D) === 0)
        // The leaf lies in a ROM table: its dirty flag cannot be set, so its shadow leaf never becomes writable.
        why = 'emulate.dirty_in_rom';
    }
    if (why === null && always) why = 'emulate.table_ref';
    if (why === null) return 0;
    c[why]++;
    const offset = x.vaLo & 0xfff;
    if (write) {
      const f = this.guest.frameForWrite(gfn);
      if (f !== null) writeValue(f, offset, cpu.pendingSize, cpu.pendingHi, cpu.pendingLo);
      if (why === 'emulate.pt_write') this.written(gfn, offset, cpu.pendingSize, true);
    } else {
      readValue(this.guest.frameForRead(gfn), offset, x.access === FETCH ? 1 : cpu.pendingSize, cpu);
    }
    return HOST_DONE;
  }

  /** Fill the shadow path of the successful guest walk `w` (rule 2), down to its leaf or a nested-mode table. */
  private fill(cpu: Cpu, w: WalkResult): void {
    this.counters['fault.fixed']++;
    let sh = this.cpuRoot[cpu.index] as ShadowTable;
    for (let k = 0; k < w.n; k++) {
      const level = w.levelAt(k);
      const idx = w.indexAt(k);
      const lo = w.loAt(k);
      const hi = w.hiAt(k);
      if (k === w.n - 1) {
        if (level > 1) {
          // A large page: Umbra shadows 4 KiB leaves only, so this table is walked nested.
          this.toNested(sh, 'switch.to_nested_large');
          return;
        }
        const gfn = entryFrame(lo, hi);
        const type = this.guest.typeOf(gfn);
        if (type === PHYS_NONE) return; // emulated on every access
        const mfn = this.domain.placement.mfnOf(gfn);
        let flags = lo & LEAF_FLAGS;
        if ((lo & PTE_RW) !== 0 && (lo & PTE_D) !== 0 && type === PHYS_RAM && !this.isProtected(gfn)) flags |= PTE_RW;
        this.setEntry(sh, idx, entryLo(mfn, flags), (entryHi(mfn) | (hi & LEAF_HI)) >>> 0);
        return;
      }
      const child = w.tables[k + 1] as number;
      const ck = tableKey(child, level - 1);
      if (this.nested.has(ck)) {
        this.setEntry(
          sh,
          idx,
          entryLo(child, (lo & NONLEAF_FLAGS) | SWITCH_BIT),
          (entryHi(child) | (hi & XD_HI)) >>> 0,
        );
        return;
      }
      const next = this.getOrMake(child, level - 1);
      next.refs++; // held while linked
      this.setEntry(sh, idx, entryLo(next.mfn, lo & NONLEAF_FLAGS), (entryHi(next.mfn) | (hi & XD_HI)) >>> 0);
      this.unref(next);
      // getOrMake may have protected `child` and revoked the write of a leaf on this very path: harmless, it refaults.
      if (this.shadows.get(ck) !== next) return;
      sh = next;
    }
  }

  /** Guest-physical bytes [offset, offset+size) of `gfn` were written: drop the shadow entries they cover (rule 4). */
  private written(gfn: number, offset: number, size: number, trap: boolean): void {
    const first = offset >>> 3;
    const last = (offset + size - 1) >>> 3;
    for (let level = 1; level <= 5; level++) {
      const sh = this.shadows.get(tableKey(gfn, level));
      if (sh === undefined) continue;
      for (let i = first; i <= last && i < 512; i++) this.dropSlot(sh.mfn * 512 + i);
      if (trap && ++sh.writes > this.sw.threshold && this.shadows.get(sh.key) === sh)
        this.toNested(sh, 'switch.to_nested_writes');
    }
  }

  /** What stage 2 holds for `gfn`: -1 nothing, 0 a read-only leaf, 1 a writable one. */
  private stage2Leaf(gfn: number): number {
    const r = this.walker.walk(
      this.space,
      this.stage2.fmt,
      this.stage2.rootPfn,
      null,
      Math.floor(gfn / 0x100000),
      (gfn % 0x100000) * 4096,
      this.s2res,
    );
    if (r !== WALK_OK) return -1;
    return (this.s2res.entryLo & this.enc.writeLo) !== 0 ? 1 : 0;
  }

  private stage2Fault(cpu: Cpu, reason: ExitReason): number {
    const c = this.counters;
    const x = cpu.exitInfo;
    const gfn = Math.floor(x.gpa / 4096);
    const misconfig = reason === EXIT_EPT_MISCONFIG || (reason === EXIT_NPF && (x.qualification & PF_RSVD) !== 0);
    if (misconfig) throw new Error(`agile pager: a stage-2 misconfiguration at gfn ${gfn}; it makes no MMIO entries`);
    const type = this.guest.typeOf(gfn);
    const wantRw = type === PHYS_RAM && !this.isProtected(gfn);
    if (type !== PHYS_NONE) {
      const leaf = x.gpa < 2 ** this.stage2.fmt.mode.vaBits ? this.stage2Leaf(gfn) : 1;
      if (leaf < 0 || (leaf === 0 && wantRw)) {
        if (leaf === 0) this.table.zap(gfn, 1); // protection gone: write comes back (more rights, no flush)
        this.table.map(gfn, wantRw ? P2M_RAM_RW : P2M_RAM_RO);
        c['stage2.fixed']++;
        return HOST_RETRY;
      }
      if (!x.gpaFinal && x.linear && type === PHYS_RAM && this.isProtected(gfn)) {
        // A nested-mode walk reached a shadowed table: it goes nested too, as what lies below a nested table does.
        for (let level = 1; level <= 5; level++) {
          const sh = this.shadows.get(tableKey(gfn, level));
          if (sh !== undefined) this.toNested(sh, 'switch.to_nested_shared');
        }
        if (!this.isProtected(gfn)) return HOST_RETRY; // the next exit restores write
      }
    }
    if (!x.linear) {
      // A PAE PDPTE load (PAE is walked wholly nested): read guest memory for the CPU.
      c.pdpte_loads++;
      return HOST_DONE;
    }
    const r = this.guestWalk(cpu);
    if (r >= 0) {
      c['emulate.guest_fault']++;
      return r;
    }
    return this.emulateIfNeeded(cpu, true);
  }

  // ---- the hypervisor's changes ----

  /** Throw every shadow away (rule 4), and reload every vCPU if `reload`. */
  private blowAll(reload: boolean): void {
    this.counters.shadows_blown++;
    for (const cpu of this.cpus) this.cpuRoot[cpu.index] = null;
    this.lru.length = 0;
    for (const sh of this.shadows.values()) this.domain.mem.free(sh.mfn);
    this.counters.shadows_freed += this.shadows.size;
    this.shadows.clear();
    this.byMfn.clear();
    this.protectedGfns.clear();
    this.protected2m.clear();
    this.protected1g.clear();
    this.writable.clear();
    this.switchSlots.clear();
    this.shootdown();
    if (reload) for (const cpu of this.cpus) this.load(cpu);
  }

  physicalWrite(gfn: number, offset: number, size: number): void {
    if (this.isProtected(gfn)) this.written(gfn, offset, size, false);
    this.maybeCheck();
  }

  physmapChanged(first: number, count: number): void {
    const c = this.counters;
    c['p2m.changes']++;
    c['p2m.entries_zapped'] += this.table.zap(first, count);
    this.blowAll(true);
    this.maybeCheck();
  }

  private maybeCheck(): void {
    if (!this.opts.check) return;
    const problem = this.checkInvariants();
    if (problem !== null) throw new Error(`agile isolation invariant broken: ${problem}`);
  }

  /** The isolation checker (audit.ts); null if every rule holds. */
  checkInvariants(): string | null {
    return auditAgile(this);
  }
}

function bump(m: Map<number, number>, k: number, d: number): void {
  const n = (m.get(k) ?? 0) + d;
  if (n === 0) m.delete(k);
  else m.set(k, n);
}

/** Are two 8-byte-entry tables equal but for accessed and dirty flags (which the hardware sets)? */
function sameBesidesAd(a: Uint32Array, b: Uint32Array): boolean {
  const mask = ~(PTE_A | PTE_D);
  for (let i = 0; i < 1024; i += 2) {
    if ((((a[i] as number) ^ (b[i] as number)) & mask) !== 0 || a[i + 1] !== b[i + 1]) return false;
  }
  return true;
}
