/**
 * The nested pager: hardware-assisted paging (Intel EPT, AMD NPT; Xen's HAP,
 * KVM's TDP MMU). The guest's own tables are walked by the hardware as they
 * are natively, with every guest-physical address — each guest table
 * reference, the final one, PAE PDPTE loads — translated through the
 * domain's stage-2 table (tdp.ts), which *is* its P2M: built from the
 * domain's physmap and placement, lazily, on stage-2 faults.
 *
 * The pager gets control on EPT violations, EPT misconfigurations and AMD
 * nested page faults, on CR0/CR4 and EFER writes, and when the hypervisor
 * changes what backs guest frames. It never sees the guest's page faults,
 * CR3 writes or INVLPGs: the CPU delivers and performs those itself.
 *
 * Rules this file keeps (audit.ts checks tdp.ts's from the outside):
 *  1. A stage-2 fault on a gfn with RAM or ROM and no entry maps it and
 *     retries; anything else — MMIO, a write to ROM, a guest table reference
 *     stage 2 refused — is emulated: a software walk of the guest's tables
 *     in guest-physical memory (setting A/D flags exactly as native
 *     hardware, and refusing where a ROM frame would, rule 5), the guest's
 *     own #PF if it faults, else the access performed on guest-physical
 *     memory (MMIO reads all ones; writes to ROM or MMIO vanish).
 *  2. A change of the physmap removes every stage-2 entry over the frames
 *     changed and then flushes every vCPU's cached translations (INVEPT on
 *     each) before the guest runs again.
 *  3. Every vCPU's MMU walks the guest's current tables (reloaded at every
 *     CR and EFER write) with this one stage 2.
 *  4. A stage-2 fault is first offered to pending recalculation (tdp.ts,
 *     rule 5), then to log-dirty (a write to a ram_logdirty leaf:
 *     logdirty.ts), then handled as rule 1 says. A PML-full exit drains the
 *     vCPU's log and retries.
 */
import { checkAccess, faultError } from '../../arch/x86/access.js';
import { type AccessKind, FETCH, PF_RSVD, WRITE } from '../../arch/x86/bits.js';
import { type Cpu, HOST_DONE, HOST_RETRY, readValue, writeValue } from '../../arch/x86/cpu.js';
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
  EXIT_PML_FULL,
  type ExitReason,
} from '../../arch/x86/exits.js';
import { type Stage2, WALK_OK, Walker, WalkResult } from '../../arch/x86/walker.js';
import type { Domain, GuestPhysicalSpace } from '../../hypervisor/domain.js';
import type { CounterDecl, Pager } from '../../hypervisor/pager.js';
import { PHYS_NONE, PHYS_ROM } from '../../hypervisor/physmap.js';
import { MachineSpace } from '../../p2m/p2m.js';
import { installPwc, pwcStats } from '../pwc.js';
import { auditStage2 } from './audit.js';
import { NESTED_COUNTERS, type NestedCounters, newCounters } from './counters.js';
import {
  eptEntries,
  NPT_ENTRIES,
  P2M_LOGDIRTY,
  P2M_RAM_RO,
  P2M_RAM_RW,
  type Stage2Entries,
  stage2Format,
} from './entries.js';
import { NestedDirtyLog } from './logdirty.js';
import { DEFAULT_NESTED, type NestedSwitches } from './options.js';
import { Stage2Table } from './tdp.js';

export interface NestedOptions {
  /** Run the isolation checker after every exit (tests). */
  check?: boolean;
  /** The pager's name in statistics (its spec). */
  name?: string;
  switches?: Partial<NestedSwitches>;
}

export class NestedPager implements Pager {
  static readonly counters: readonly CounterDecl[] = NESTED_COUNTERS;
  readonly name: string;
  readonly sw: NestedSwitches;
  private readonly counters: NestedCounters = newCounters();
  private readonly enc: Stage2Entries;
  private domain!: Domain;
  private guest!: GuestPhysicalSpace;
  private cpus: readonly Cpu[] = [];
  private space!: MachineSpace;
  /** The stage-2 table, and what each MMU holds of it (format and root). */
  table!: Stage2Table;
  stage2!: Stage2;
  /** Log-dirty mode, the pager's half. */
  dirty!: NestedDirtyLog;
  /** The emulator's software walk of the guest's tables. */
  private readonly walker = new Walker();
  private readonly walk = new WalkResult();

  constructor(private readonly opts: NestedOptions = {}) {
    this.name = opts.name ?? 'nested';
    this.sw = { ...DEFAULT_NESTED, ...opts.switches };
    this.enc = this.sw.kind === 'ept' ? eptEntries(this.sw.ad) : NPT_ENTRIES;
  }

  attach(domain: Domain, cpus: readonly Cpu[]): void {
    this.domain = domain;
    this.guest = domain.guest;
    this.cpus = cpus;
    this.space = new MachineSpace(domain.mem);
    const sw = this.sw;
    // EPT without MBEC, with execute-only pages (IA32_VMX_EPT_VPID_CAP bit 0); NPT under a host with EFER.NXE.
    const fmt = stage2Format(sw.kind, sw.levels, sw.ad);
    const guest = domain.guest;
    const placement = domain.placement;
    this.table = new Stage2Table(
      domain.mem,
      fmt,
      this.enc,
      {
        ramFrames: guest.ramFrames,
        mfnOf: (gfn) => placement.mfnOf(gfn),
        // Identity placement keeps gfns contiguous and aligned in machine memory; a scattered one never.
        contiguousRam: (first, count) => placement.kind === 'identity' && !guest.physmap.anyNotRam(first, count),
      },
      sw.large,
    );
    this.stage2 = { fmt, rootPfn: this.table.rootMfn };
    this.dirty = new NestedDirtyLog(domain.logDirty, sw.logdirty, this.table, cpus, this.counters, () =>
      this.flushAll(),
    );
    installPwc(cpus, sw.pwc);
    for (const c of cpus) this.load(c);
  }

  /**
   * Flush every vCPU's cached translations after a stage-2 change that took
   * rights away: INVEPT on each, which drops combined and guest-physical
   * mappings alike (SDM vol. 3C, 29.4.3.1).
   */
  private flushAll(): void {
    const c = this.counters;
    c.tlb_shootdowns++;
    for (const cpu of this.cpus) {
      cpu.mmu.invept();
      c.invept++;
    }
  }

  /** Point the MMU at the guest's own tables, through this stage 2 (rule 3). */
  private load(cpu: Cpu): void {
    const m = cpu.mmu;
    m.space = this.space;
    m.format = cpu.format;
    m.rootPfn = cpu.cr3RootPfn;
    m.pdpte = cpu.mode?.pdpteRegisters ? cpu.pdpte : null;
    m.ctlAnd = -1;
    m.ctlOr = 0;
    m.stage2 = this.stage2;
  }

  stats(): Record<string, number> {
    const t = this.table;
    let refs = 0;
    for (const c of this.cpus) refs += c.walker.stage2Reads;
    const all: Record<string, number> = {
      ...this.counters,
      'stage2.leaves_4k': t?.leaves4k ?? 0,
      'stage2.leaves_2m': t?.leaves2m ?? 0,
      'stage2.leaves_1g': t?.leaves1g ?? 0,
      'stage2.mmio_entries': t?.mmioEntries ?? 0,
      'stage2.table_frames': t?.tables.size ?? 0,
      'stage2.entries': t?.present ?? 0,
      'walk.stage2_refs': refs,
      'stage2.recalc_marked': t?.recalcMarked ?? 0,
      'stage2.recalc_entries': t?.recalcEntries ?? 0,
      'stage2.splits': t?.splits ?? 0,
      'pml.logged': this.dirty?.pmlLogged() ?? 0,
      ...pwcStats(this.cpus, true),
    };
    const out: Record<string, number> = {};
    for (const d of NESTED_COUNTERS) out[d.name] = all[d.name] as number;
    return out;
  }

  exit(cpu: Cpu, reason: ExitReason): number {
    const c = this.counters;
    switch (reason) {
      case EXIT_PAGE_FAULT:
        // Not an exit under nested paging: the guest's #PF goes to the guest.
        return cpu.exitInfo.error;
      case EXIT_CR_WRITE:
        if (cpu.exitInfo.cr !== 3) {
          c.exits++;
          c['exit.cr_write']++;
        }
        this.load(cpu);
        return 0;
      case EXIT_MSR_WRITE:
        c.exits++;
        c['exit.msr_write']++;
        this.load(cpu);
        return 0;
      case EXIT_INVLPG:
      case EXIT_INVPCID:
      case EXIT_FLUSH:
        return 0; // performed by the CPU on its own TLB, no exit
      case EXIT_EPT_VIOLATION:
        c['exit.ept_violation']++;
        break;
      case EXIT_EPT_MISCONFIG:
        c['exit.ept_misconfig']++;
        break;
      case EXIT_NPF:
        c['exit.npf']++;
        break;
      case EXIT_PML_FULL:
        c.exits++;
        c['exit.pml_full']++;
        this.dirty.drain(cpu);
        this.maybeCheck();
        return HOST_RETRY;
    }
    c.exits++;
    const r = this.stage2Fault(cpu, reason);
    this.maybeCheck();
    return r;
  }

  /** Does gfn have no RAM behind it (above RAM, or taken away)? */
  private isMmio(gfn: number): boolean {
    return this.guest.typeOf(gfn) === PHYS_NONE;
  }

  /** Map `gfn` if it has RAM or ROM and no stage-2 entry yet (rule 1); false if there is nothing to map. */
  private populate(gfn: number): boolean {
    if (this.isMmio(gfn)) return false;
    const ram = this.table.globalLogdirty ? P2M_LOGDIRTY : P2M_RAM_RW;
    const type = this.guest.typeOf(gfn) === PHYS_ROM ? P2M_RAM_RO : ram;
    return this.table.map(gfn, type) > 0;
  }

  private stage2Fault(cpu: Cpu, reason: ExitReason): number {
    const c = this.counters;
    const x = cpu.exitInfo;
    const gfn = Math.floor(x.gpa / 4096);
    const misconfig = reason === EXIT_EPT_MISCONFIG || (reason === EXIT_NPF && (x.qualification & PF_RSVD) !== 0);
    if (x.gpa < 2 ** this.stage2.fmt.mode.vaBits && this.table.resolve(gfn) > 0) {
      // An entry marked by a global type change (log-dirty): recalculated on the way to gfn; retry.
      c['stage2.recalc_faults']++;
      return HOST_RETRY;
    }
    // Bit 1 is the write bit of both the EPT qualification and the #NPF error code.
    if (!misconfig && (x.qualification & 2) !== 0 && this.dirty.writeFault(gfn)) return HOST_RETRY;
    if (!x.linear) {
      // A PAE PDPTE load: map and retry, or read guest memory for the CPU (MMIO: all ones).
      c.pdpte_loads++;
      if (!misconfig && this.populate(gfn)) {
        c['stage2.fixed']++;
        return HOST_RETRY;
      }
      return HOST_DONE;
    }
    if (misconfig) {
      // KVM's fast MMIO path: the entry itself says MMIO.
      if (!this.isMmio(gfn)) throw new Error(`nested pager: a stage-2 misconfiguration at gfn ${gfn}, which has RAM`);
      c['emulate.mmio_fast']++;
      return this.emulate(cpu, x.gpaFinal ? 'emulate.mmio' : 'emulate.table_ref');
    }
    if (this.populate(gfn)) {
      c['stage2.fixed']++;
      return HOST_RETRY;
    }
    if (this.isMmio(gfn)) {
      if (this.sw.mmio === 'misconfig' && x.gpa < 2 ** this.stage2.fmt.mode.vaBits) this.table.mapMmio(gfn);
      return this.emulate(cpu, x.gpaFinal ? 'emulate.mmio' : 'emulate.table_ref');
    }
    return this.emulate(cpu, x.gpaFinal ? 'emulate.rom_write_discarded' : 'emulate.table_ref');
  }

  /**
   * Emulate the access in progress (rule 1): walk the guest's tables in
   * guest-physical memory as the hardware would natively, then perform the
   * access there. Returns HOST_DONE, or the error code of the guest's #PF.
   */
  private emulate(cpu: Cpu, why: 'emulate.mmio' | 'emulate.rom_write_discarded' | 'emulate.table_ref'): number {
    const x = cpu.exitInfo;
    const access = x.access as AccessKind;
    const guest = this.guest;
    const fmt = cpu.format;
    let gfn = x.vaLo >>> 12; // paging off: VA = GPA
    if (fmt !== null) {
      const w = this.walk;
      const r = this.walker.walk(
        guest,
        fmt,
        cpu.cr3RootPfn,
        fmt.mode.pdpteRegisters ? cpu.pdpte : null,
        x.vaHi,
        x.vaLo,
        w,
      );
      // A not-present fault of a supervisor read has error code 0: test the walk, then the rights.
      const error = r === WALK_OK ? checkAccess(w.perm, access, x.cpl, cpu.ctl, cpu.pkru) : -1;
      if (error !== 0) {
        this.counters['emulate.guest_fault']++;
        return r === WALK_OK ? error : faultError(r, access, x.cpl, cpu.ctl);
      }
      w.commit(access === WRITE, guest);
      // The A/D flags just set are writes to the guest's tables (log-dirty: paging_mark_dirty).
      if (this.dirty.on) for (let k = 0; k < w.n; k++) this.dirty.mark(w.tables[k] as number);
      gfn = w.pfn + (((x.vaLo >>> 12) | (x.vaHi << 20)) & ((1 << (w.shift - 12)) - 1));
    }
    this.counters[why]++;
    const offset = x.vaLo & 0xfff;
    if (access === WRITE) {
      const f = guest.frameForWrite(gfn);
      if (f !== null) {
        writeValue(f, offset, cpu.pendingSize, cpu.pendingHi, cpu.pendingLo);
        this.dirty.mark(gfn);
      }
    } else {
      readValue(guest.frameForRead(gfn), offset, access === FETCH ? 1 : cpu.pendingSize, cpu);
    }
    return HOST_DONE;
  }

  /** What backs guest frames [first, first+count) changed (rule 2). */
  physmapChanged(first: number, count: number): void {
    const c = this.counters;
    c['p2m.changes']++;
    const n = this.table.zap(first, count);
    c['p2m.entries_zapped'] += n;
    if (n > 0) this.flushAll();
    this.maybeCheck();
  }

  /** A device or loader wrote guest frame `gfn` (pwrite): in log-dirty mode it is logged, as Xen's device model does. */
  physicalWrite(gfn: number): void {
    this.dirty.mark(gfn);
  }

  private maybeCheck(): void {
    if (!this.opts.check) return;
    const problem = this.checkInvariants();
    if (problem !== null) throw new Error(`nested isolation invariant broken: ${problem}`);
  }

  /** The isolation checker (audit.ts); null if every rule holds. */
  checkInvariants(): string | null {
    return auditStage2(this.domain, this.cpus, this.table, this.enc, this.stage2, {
      mode: this.sw.logdirty,
      on: this.dirty.on,
      logged: (gfn) => this.dirty.logged(gfn),
    });
  }
}
