/**
 * The x86 CPU model: architectural registers and the MMU access path.
 * The same code runs under every pager; what a pager changes is what the
 * hardware walks (its Mmu, mmu.ts: space, root, format, PDPTE registers) and
 * what happens on a page fault before the guest sees it.
 *
 * Guest-visible state (CR0, CR3, CR4, EFER, PKRU, RFLAGS.AC, CR2 and the PAE
 * PDPTE registers) follows the SDM: MOV to CR and WRMSR EFER perform the
 * architectural checks (#GP) and TLB/PDPTE side effects here, then tell the
 * host so that it can follow (a shadow pager switches shadows; native just
 * points the hardware at the guest's tables).
 */
import { FRAME_AT } from '../../machine/memory.js';
import {
  CTL_AC,
  CTL_ID,
  CTL_PKE,
  CTL_SMAP,
  CTL_SMEP,
  CTL_WP,
  checkAccess,
  faultError,
  PERM_D,
  PERM_G,
  PERM_U,
  PERM_XD,
  stage2Allows,
} from './access.js';
import {
  type AccessKind,
  CR0_AM,
  CR0_CD,
  CR0_EM,
  CR0_ET,
  CR0_MP,
  CR0_NE,
  CR0_NW,
  CR0_PE,
  CR0_PG,
  CR0_TS,
  CR0_WP,
  CR4_LA57,
  CR4_PAE,
  CR4_PCIDE,
  CR4_PGE,
  CR4_PKE,
  CR4_PSE,
  CR4_SMAP,
  CR4_SMEP,
  EFER_LMA,
  EFER_LME,
  EFER_NXE,
  EFER_SCE,
  FETCH,
  READ,
  WRITE,
} from './bits.js';
import { entryFrame } from './entry.js';
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
  type ExitInfo,
  type ExitReason,
  newExitInfo,
} from './exits.js';
import { Mmu } from './mmu.js';
import {
  bitRange,
  ENTRY_EPT,
  formatFor,
  MODE_32,
  MODE_LONG4,
  MODE_LONG5,
  MODE_PAE,
  type PagingMode,
  type WalkFormat,
} from './modes.js';
import { DEFAULT_TLB, type Tlb, type TlbConfig } from './tlb.js';
import {
  type DataSpace,
  S2_MISCONFIG,
  S2_PML_FULL,
  type Stage2,
  WALK_OK,
  WALK_STAGE2,
  type Walker,
  type WalkResult,
} from './walker.js';

export type { DataSpace };

/** CpuHost.pageFault results besides an error code to deliver (>= 0). */
export const HOST_RETRY = -1; // the host fixed the tables: translate again
export const HOST_DONE = -2; // the host performed the access itself (emulation)

/** The host side of a vCPU (a pager): it gets control only on exits. */
export interface CpuHost {
  /**
   * A VM exit for `reason` (exits.ts); what the host needs is in
   * cpu.exitInfo and the guest's registers. For EXIT_PAGE_FAULT and the
   * stage-2 exits (EPT violation or misconfiguration, #NPF) return
   * HOST_RETRY after fixing the hardware's tables, HOST_DONE after performing
   * the access itself (see Cpu.pending*; for a PDPTE load, the host read
   * guest memory itself), or the error code of the #PF to deliver to the
   * guest; for the other reasons the host has followed the guest's change,
   * and returns 0.
   */
  exit(cpu: Cpu, reason: ExitReason): number;
}

/** Outcome of an operation, besides the value: none, #PF or #GP. */
export const OK = 0;
export const FAULT_PF = 1;
export const FAULT_GP = 2;
/** translate() result when the host completed the access itself. */
const TRANSLATE_DONE = -2;

const CR0_DEFINED = CR0_PE | CR0_MP | CR0_EM | CR0_TS | CR0_ET | CR0_NE | CR0_WP | CR0_AM | CR0_NW | CR0_CD | CR0_PG;
/** CR4 bits this CPU supports: VME..UMIP (0-11), LA57, FSGSBASE, PCIDE, OSXSAVE, SMEP, SMAP, PKE. */
const CR4_SUPPORTED = bitRange(0, 12) | (1 << 16) | CR4_PCIDE | (1 << 18) | CR4_SMEP | CR4_SMAP | CR4_PKE;
const EFER_WRITABLE = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;
/** CR4 bits whose change reloads PAE PDPTEs (SDM 4.4.1), with CR0.CD/NW/PG. */
const CR4_PDPTE_RELOAD = CR4_PAE | CR4_PGE | CR4_PSE | CR4_SMEP;

export interface CpuCounters {
  reads: number;
  writes: number;
  fetches: number;
  pageFaults: number;
  gpFaults: number;
  cr3Writes: number;
  invlpg: number;
  invpcid: number;
}

export class Cpu {
  // Guest-visible architectural state.
  cr0 = CR0_PE | CR0_ET;
  cr2Hi = 0;
  cr2Lo = 0;
  cr3Hi = 0;
  cr3Lo = 0;
  cr4 = 0;
  efer = 0;
  pkru = 0;
  ac = 0;
  /** PAE PDPTE registers, lo/hi pairs (valid while PAE paging is on). */
  readonly pdpte = new Uint32Array(8);

  /** Derived: paging mode (null when paging is off), current PCID, rights-check control bits. */
  mode: PagingMode | null = null;
  format: WalkFormat | null = null;
  pcid = 0;
  ctl = 0;

  /** The MMU: what the hardware walks (set by the host), its walker, walk result and TLB. */
  readonly mmu: Mmu;
  /** The MMU's TLB and walker (for counters and the host's flushes). */
  readonly tlb: Tlb;
  readonly walker: Walker;
  readonly counters: CpuCounters = {
    reads: 0,
    writes: 0,
    fetches: 0,
    pageFaults: 0,
    gpFaults: 0,
    cr3Writes: 0,
    invlpg: 0,
    invpcid: 0,
  };

  /** The exit in progress, as the host reads it (a VMCS's exit qualification). */
  readonly exitInfo: ExitInfo = newExitInfo();

  /** The access in progress (for a host that emulates it): size and value to write. */
  pendingSize = 0;
  pendingHi = 0;
  pendingLo = 0;

  // Result of the last operation.
  fault = OK;
  faultError = 0;
  valueLo = 0;
  valueHi = 0;

  constructor(
    readonly index: number,
    /** Guest-physical memory (PDPTE loads read it). */
    readonly guestSpace: DataSpace,
    readonly maxPhysAddr: number,
    public host: CpuHost,
    tlbConfig: TlbConfig = DEFAULT_TLB,
  ) {
    this.mmu = new Mmu(guestSpace, tlbConfig);
    this.tlb = this.mmu.tlb;
    this.walker = this.mmu.walker;
    this.recompute();
  }

  get lma(): boolean {
    return (this.efer & EFER_LMA) !== 0;
  }

  /** Frame of the top-level table CR3 designates (for PAE, the frame holding the PDPT). */
  get cr3RootPfn(): number {
    return this.lma ? entryFrame(this.cr3Lo, this.cr3Hi) : this.cr3Lo >>> 12;
  }

  /**
   * Restore captured register state (a memory dump's vCPU) as it was,
   * without the architectural checks or side effects of MOV to CR: the
   * registers were legal when captured, and QEMU dumps may hold PDPTE bits
   * that a fresh PDPTE load would refuse.
   */
  loadState(cr0: number, cr3Hi: number, cr3Lo: number, cr4: number, efer: number, ac: number): void {
    this.cr0 = cr0 >>> 0;
    this.cr3Hi = cr3Hi >>> 0;
    this.cr3Lo = cr3Lo >>> 0;
    this.cr4 = cr4 >>> 0;
    this.efer = efer >>> 0;
    this.ac = ac ? 1 : 0;
    this.recompute();
  }

  private recompute(): void {
    const pg = (this.cr0 & CR0_PG) !== 0;
    const lma = (this.efer & EFER_LMA) !== 0;
    const pae = (this.cr4 & CR4_PAE) !== 0;
    this.mode = !pg ? null : lma ? ((this.cr4 & CR4_LA57) !== 0 ? MODE_LONG5 : MODE_LONG4) : pae ? MODE_PAE : MODE_32;
    this.format =
      this.mode === null
        ? null
        : formatFor(this.mode, this.maxPhysAddr, (this.efer & EFER_NXE) !== 0, (this.cr4 & CR4_PSE) !== 0);
    this.pcid = (this.cr4 & CR4_PCIDE) !== 0 ? this.cr3Lo & 0xfff : 0;
    let ctl = 0;
    if ((this.cr0 & CR0_WP) !== 0) ctl |= CTL_WP;
    if ((this.cr4 & CR4_SMEP) !== 0) ctl |= CTL_SMEP | CTL_ID;
    if ((this.cr4 & CR4_SMAP) !== 0) ctl |= CTL_SMAP;
    if (this.ac !== 0) ctl |= CTL_AC;
    if ((this.cr4 & CR4_PKE) !== 0 && lma) ctl |= CTL_PKE;
    if (pae && (this.efer & EFER_NXE) !== 0) ctl |= CTL_ID;
    this.ctl = ctl;
    this.tlb.resetL0();
  }

  private changed(reason: ExitReason, cr: number): void {
    this.recompute();
    this.exitInfo.cr = cr;
    this.host.exit(this, reason);
  }

  private gp(): number {
    this.counters.gpFaults++;
    this.fault = FAULT_GP;
    this.faultError = 0;
    return FAULT_GP;
  }

  private ok(): number {
    this.fault = OK;
    return OK;
  }

  /**
   * Load the four PDPTE registers from guest memory at CR3 (value cr3Lo).
   * Returns false (#GP, registers unchanged) if a present PDPTE has reserved bits.
   */
  private loadPdptes(cr3Lo: number, cr4: number): boolean {
    const fmt = formatFor(MODE_PAE, this.maxPhysAddr, (this.efer & EFER_NXE) !== 0, (cr4 & CR4_PSE) !== 0);
    const f = this.mmu.stage2 === null ? this.guestSpace.frameForRead(cr3Lo >>> 12) : this.pdptFrame(cr3Lo);
    const w0 = (cr3Lo & 0xfe0) >>> 2;
    for (let i = 0; i < 4; i++) {
      const lo = f[w0 + 2 * i] as number;
      const hi = f[w0 + 2 * i + 1] as number;
      if ((lo & 1) !== 0 && ((lo & fmt.pdpteRsvdLo) | (hi & fmt.pdpteRsvdHi)) !== 0) return false;
    }
    for (let i = 0; i < 8; i++) this.pdpte[i] = f[w0 + i] as number;
    return true;
  }

  /**
   * Nested paging: the frame holding the PDPT at guest-physical `cr3Lo`,
   * read through stage 2 as the hardware does when MOV to CR loads the PDPTE
   * registers (SDM vol. 3C, 29.3.1). A stage-2 fault is an exit without a
   * guest-linear address; the host fixes stage 2 (retry) or reads guest
   * memory itself (done).
   */
  private pdptFrame(cr3Lo: number): Uint32Array {
    const mmu = this.mmu;
    const s2 = mmu.stage2 as Stage2;
    const res = mmu.walk;
    for (;;) {
      res.pfn = cr3Lo >>> 12;
      res.shift = 12;
      res.perm = 0;
      const mfn = mmu.walker.translateFinal(mmu.space, s2, res, 0, cr3Lo & 0xfe0, READ);
      if (mfn >= 0) return mmu.space.frameForRead(mfn);
      const h = this.stage2Exit(res, 0, cr3Lo & 0xfe0, READ, 0, false);
      if (h !== HOST_RETRY) return this.guestSpace.frameForRead(cr3Lo >>> 12);
    }
  }

  /** Raise the stage-2 exit a walk's result describes; the host's answer (CpuHost.exit). */
  private stage2Exit(
    res: WalkResult,
    vaHi: number,
    vaLo: number,
    access: AccessKind,
    cpl: number,
    linear: boolean,
  ): number {
    const x = this.exitInfo;
    x.vaHi = vaHi;
    x.vaLo = vaLo >>> 0;
    x.access = access;
    x.cpl = cpl;
    x.error = 0;
    x.gpa = res.stage2Gpa;
    x.gpaFinal = res.stage2Final;
    x.linear = linear;
    const fmt = (this.mmu.stage2 as Stage2).fmt;
    let reason: ExitReason = EXIT_NPF;
    if (res.stage2Fault === S2_PML_FULL) {
      reason = EXIT_PML_FULL;
      x.qualification = 0;
    } else if (fmt.kind === ENTRY_EPT) {
      reason = res.stage2Fault === S2_MISCONFIG ? EXIT_EPT_MISCONFIG : EXIT_EPT_VIOLATION;
      // Bit 7 (guest-linear address valid) is clear for a PDPTE load.
      x.qualification = linear ? res.stage2Qual : res.stage2Qual & ~(1 << 7);
    } else {
      x.qualification = res.stage2Qual;
    }
    return this.host.exit(this, reason);
  }

  writeCr0(hi: number, lo: number): number {
    if (hi !== 0) return this.gp();
    const v = ((lo & CR0_DEFINED) | CR0_ET) >>> 0;
    const old = this.cr0;
    if ((v & CR0_PG) !== 0 && (v & CR0_PE) === 0) return this.gp();
    if ((v & CR0_NW) !== 0 && (v & CR0_CD) === 0) return this.gp();
    const pgOn = (v & CR0_PG) !== 0;
    const wasPg = (old & CR0_PG) !== 0;
    let efer = this.efer;
    if (pgOn && !wasPg) {
      if ((efer & EFER_LME) !== 0) {
        if ((this.cr4 & CR4_PAE) === 0) return this.gp();
        efer |= EFER_LMA;
      } else if ((this.cr4 & CR4_PAE) !== 0 && !this.loadPdptes(this.cr3Lo, this.cr4)) {
        return this.gp();
      }
    } else if (!pgOn && wasPg) {
      if ((this.cr4 & CR4_PCIDE) !== 0) return this.gp();
      efer &= ~EFER_LMA;
    } else if (
      pgOn &&
      (efer & EFER_LMA) === 0 &&
      (this.cr4 & CR4_PAE) !== 0 &&
      ((v ^ old) & (CR0_CD | CR0_NW)) !== 0 &&
      !this.loadPdptes(this.cr3Lo, this.cr4)
    ) {
      return this.gp();
    }
    this.cr0 = v;
    this.efer = efer;
    if (wasPg && !pgOn) this.mmu.flushContext(-1, true);
    this.changed(EXIT_CR_WRITE, 0);
    return this.ok();
  }

  writeCr4(hi: number, lo: number): number {
    if (hi !== 0) return this.gp();
    const v = lo >>> 0;
    if ((v & ~CR4_SUPPORTED) !== 0) return this.gp();
    const old = this.cr4;
    const diff = v ^ old;
    const lma = (this.efer & EFER_LMA) !== 0;
    if (lma && (v & CR4_PAE) === 0) return this.gp();
    if (lma && (diff & CR4_LA57) !== 0) return this.gp();
    if ((v & CR4_PCIDE) !== 0 && (old & CR4_PCIDE) === 0 && (!lma || (this.cr3Lo & 0xfff) !== 0)) return this.gp();
    const paging = (this.cr0 & CR0_PG) !== 0;
    if (paging && !lma && (v & CR4_PAE) !== 0 && (diff & CR4_PDPTE_RELOAD) !== 0 && !this.loadPdptes(this.cr3Lo, v)) {
      return this.gp();
    }
    this.cr4 = v;
    if ((diff & CR4_PGE) !== 0 || ((old & CR4_PCIDE) !== 0 && (v & CR4_PCIDE) === 0)) {
      this.mmu.flushContext(-1, true);
    } else if ((diff & CR4_PAE) !== 0 || (v & ~old & CR4_SMEP) !== 0) {
      this.mmu.flushContext(this.pcid, true);
    }
    this.changed(EXIT_CR_WRITE, 4);
    return this.ok();
  }

  writeCr3(hi: number, lo: number): number {
    this.counters.cr3Writes++;
    let noFlush = false;
    let vHi = hi >>> 0;
    const vLo = lo >>> 0;
    if ((this.efer & EFER_LMA) !== 0) {
      if ((this.cr4 & CR4_PCIDE) !== 0 && (vHi & 0x80000000) !== 0) {
        noFlush = true;
        vHi &= 0x7fffffff;
      }
      // Bits 63:MAXPHYADDR are reserved.
      if ((vHi & ~bitRange(0, this.maxPhysAddr - 33)) !== 0) return this.gp();
    } else {
      vHi = 0; // outside IA-32e mode CR3 is loaded from a 32-bit register
      if (this.mode === MODE_PAE && !this.loadPdptes(vLo, this.cr4)) return this.gp();
    }
    this.cr3Hi = vHi;
    this.cr3Lo = vLo;
    this.recompute();
    if (!noFlush) this.mmu.flushContext(this.pcid, false);
    this.exitInfo.cr = 3;
    this.host.exit(this, EXIT_CR_WRITE);
    return this.ok();
  }

  writeEfer(hi: number, lo: number): number {
    if (hi !== 0 || (lo & ~EFER_WRITABLE) !== 0) return this.gp();
    if ((this.cr0 & CR0_PG) !== 0 && ((lo ^ this.efer) & EFER_LME) !== 0) return this.gp();
    this.efer = ((lo & ~EFER_LMA) | (this.efer & EFER_LMA)) >>> 0;
    this.changed(EXIT_MSR_WRITE, 0);
    return this.ok();
  }

  writePkru(v: number): number {
    this.pkru = v >>> 0;
    this.tlb.resetL0();
    return this.ok();
  }

  setAc(v: number): number {
    this.ac = v ? 1 : 0;
    this.recompute();
    return this.ok();
  }

  /** Is `va` canonical for the current mode (always true outside IA-32e paging)? */
  canonical(vaHi: number): boolean {
    const m = this.mode;
    if (m === null || m.vaBits === 32) return true;
    const t = vaHi >> (m.vaBits - 33);
    return t === 0 || t === -1;
  }

  invlpg(vaHi: number, vaLo: number): number {
    this.counters.invlpg++;
    const hi = this.lma ? vaHi : 0;
    if (this.canonical(hi)) this.mmu.flushVa(hi, vaLo >>> 0, this.pcid, true, true);
    this.exitInfo.vaHi = hi;
    this.exitInfo.vaLo = vaLo >>> 0;
    this.host.exit(this, EXIT_INVLPG);
    return this.ok();
  }

  invpcid(type: number, pcid: number, vaHi: number, vaLo: number): number {
    this.counters.invpcid++;
    if (type < 0 || type > 3 || pcid < 0 || pcid > 0xfff) return this.gp();
    if ((this.cr4 & CR4_PCIDE) === 0 && type <= 1 && pcid !== 0) return this.gp();
    if (type === 0) {
      if (this.lma ? !this.canonical(vaHi) : vaHi !== 0) return this.gp();
      this.mmu.flushVa(vaHi, vaLo >>> 0, pcid, false);
    } else if (type === 1) {
      this.mmu.flushContext(pcid, false);
    } else {
      this.mmu.flushContext(-1, type === 2);
    }
    const x = this.exitInfo;
    x.invpcidType = type;
    x.pcid = pcid;
    x.vaHi = vaHi;
    x.vaLo = vaLo >>> 0;
    this.host.exit(this, EXIT_INVPCID);
    return this.ok();
  }

  flushAll(): number {
    this.mmu.flushContext(-1, true);
    this.host.exit(this, EXIT_FLUSH);
    return this.ok();
  }

  /**
   * Translate `va` for `access` at `cpl` through the TLB and the hardware
   * walk. Returns the 4 KiB frame in the MMU's space, or -1 after a fault
   * (this.fault / this.faultError / CR2 set).
   */
  translate(vaHi: number, vaLo: number, access: AccessKind, cpl: number): number {
    // The level-0 TLB first, on the address as given: its slots hold only
    // translations made in the current mode (any mode change empties it) of
    // canonical addresses with the high half as translated (0 outside IA-32e
    // mode), so an address that mode would truncate or refuse cannot hit.
    const vpnLo = (vaLo >>> 12) | (vaHi << 20) | 0;
    const vpnHi = (vaHi >>> 12) | 0;
    const allow = 1 << (access * 2 + (cpl === 3 ? 1 : 0));
    const pfn = this.tlb.l0Lookup(vpnLo, vpnHi, allow);
    return pfn >= 0 ? pfn : this.translateSlow(vaHi, vaLo, access, cpl);
  }

  /** translate() past a level-0 miss: mode checks, then the TLB proper and the walk. */
  private translateSlow(vaHi: number, vaLo: number, access: AccessKind, cpl: number): number {
    const fmt = this.mmu.format;
    const given = vaHi;
    if (!this.lma)
      vaHi = 0; // outside IA-32e mode linear addresses are 32 bits
    else if (!this.canonical(vaHi)) {
      this.gp();
      return -1;
    }
    if (fmt === null) return this.mmu.stage2 === null ? vaLo >>> 12 : this.translatePhysical(vaLo, access, cpl); // paging off: VA = PA
    const vpnLo = (vaLo >>> 12) | (vaHi << 20) | 0;
    const vpnHi = (vaHi >>> 12) | 0;
    const allow = 1 << (access * 2 + (cpl === 3 ? 1 : 0));
    if (given !== vaHi) {
      // Truncated to 32 bits: the level-0 TLB may hold the address after all.
      const pfn = this.tlb.l0Lookup(vpnLo, vpnHi, allow);
      if (pfn >= 0) return pfn;
    }
    return this.translateMiss(fmt, vaHi, vaLo, access, cpl, vpnLo, vpnHi, allow);
  }

  /** translate() past the level-0 TLB: the TLB proper, then the hardware walk. */
  private translateMiss(
    fmt: WalkFormat,
    vaHi: number,
    vaLo: number,
    access: AccessKind,
    cpl: number,
    vpnLo: number,
    vpnHi: number,
    allow: number,
  ): number {
    const tlb = this.tlb;
    if (tlb.lookup(vaHi, vaLo, this.pcid, fmt.leafShift[2] as number)) {
      const perm = tlb.hitPerm;
      const ctl = (this.ctl & this.mmu.ctlAnd) | this.mmu.ctlOr;
      if ((access !== WRITE || (perm & PERM_D) !== 0) && checkAccess(perm, access, cpl, ctl, this.pkru) === 0) {
        tlb.l0Record(vpnLo, vpnHi, tlb.hitPfn, allow, tlb.hitShift);
        return tlb.hitPfn;
      }
      // A write to a clean page, or rights refused by a cached entry: walk again.
    }
    const mmu = this.mmu;
    const res = mmu.walk;
    const s2 = mmu.stage2;
    const psc = mmu.psc;
    if (psc !== null) {
      psc.pcid = this.pcid;
      psc.mode = fmt.mode;
    }
    for (;;) {
      let error: number;
      const r = mmu.walker.walk(mmu.space, fmt, mmu.rootPfn, mmu.pdpte, vaHi, vaLo, res, s2, psc, mmu.switchBit);
      if (r === WALK_OK) {
        if ((this.cr4 & CR4_PGE) === 0) res.perm &= ~PERM_G;
        // Agile: a walk that switched to nested checks the guest's own rights (the host's forced bits are the shadows').
        const ctlOr = mmu.switchBit !== 0 && res.s2From >= 0 ? 0 : mmu.ctlOr;
        error = checkAccess(res.perm, access, cpl, (this.ctl & mmu.ctlAnd) | ctlOr, this.pkru);
        // An agile walk that met no switching entry ended in a machine frame: one stage, as under shadow paging.
        if (error === 0 && s2 !== null && res.s2From >= 0) {
          const mfn = mmu.walker.translateFinal(mmu.space, s2, res, vaHi, vaLo, access, psc);
          if (mfn >= 0 && mmu.walker.flagWrites(mmu.space, s2, res, access === WRITE)) {
            const pfn = this.fillNested(s2, res, vaHi, vaLo, access, vpnLo, vpnHi, allow, mfn);
            if (mmu.walkObserver !== null) mmu.walkObserver(vaHi, vaLo, access, 'ok');
            return pfn;
          }
          if (mmu.walkObserver !== null) mmu.walkObserver(vaHi, vaLo, access, 'stage-2 exit');
          const h = this.stage2Exit(res, vaHi, vaLo, access, cpl, true);
          if (h === HOST_RETRY) continue;
          if (h === HOST_DONE) return TRANSLATE_DONE;
          return this.deliverPf(vaHi, vaLo, h);
        }
        if (error === 0) {
          res.commit(access === WRITE, mmu.space);
          // A walk that read one entry (below a cached PDE, mostly) has no upper entry to cache.
          if (psc !== null && psc.upper !== null && res.n > 1) mmu.walker.fillCaches(res, psc.upper, this.pcid);
          if (mmu.walkObserver !== null) mmu.walkObserver(vaHi, vaLo, access, 'ok');
          const shift = res.shift;
          tlb.fill(vaHi, vaLo, this.pcid, shift, res.pfn, res.perm);
          const pfn = res.pfn + (vpnLo & ((1 << (shift - 12)) - 1));
          tlb.l0Record(vpnLo, vpnHi, pfn, allow, shift);
          return pfn;
        }
      } else if (r === WALK_STAGE2) {
        if (mmu.walkObserver !== null) mmu.walkObserver(vaHi, vaLo, access, 'stage-2 exit');
        const h = this.stage2Exit(res, vaHi, vaLo, access, cpl, true);
        if (h === HOST_RETRY) continue;
        if (h === HOST_DONE) return TRANSLATE_DONE;
        return this.deliverPf(vaHi, vaLo, h);
      } else {
        error = faultError(r, access, cpl, this.ctl);
      }
      if (mmu.walkObserver !== null) mmu.walkObserver(vaHi, vaLo, access, '#PF');
      // A page fault invalidates the TLB entries for the faulting address.
      mmu.flushVa(vaHi, vaLo, this.pcid, true);
      const x = this.exitInfo;
      x.vaHi = vaHi;
      x.vaLo = vaLo >>> 0;
      x.access = access;
      x.cpl = cpl;
      x.error = error;
      // Agile: a fault in the nested part of a walk is the guest's own, delivered without an exit (as under nested paging).
      const h = mmu.switchBit !== 0 && res.s2From >= 0 ? error : this.host.exit(this, EXIT_PAGE_FAULT);
      if (h === HOST_RETRY) continue;
      if (h === HOST_DONE) return TRANSLATE_DONE;
      this.counters.pageFaults++;
      this.fault = FAULT_PF;
      this.faultError = h;
      this.cr2Hi = vaHi;
      this.cr2Lo = vaLo >>> 0;
      return -1;
    }
  }

  /** Deliver a #PF with error code `error` that a host's emulation found (the TLB entries for `va` go first). */
  private deliverPf(vaHi: number, vaLo: number, error: number): number {
    this.mmu.flushVa(vaHi, vaLo, this.pcid, true);
    this.counters.pageFaults++;
    this.fault = FAULT_PF;
    this.faultError = error;
    this.cr2Hi = vaHi;
    this.cr2Lo = vaLo >>> 0;
    return -1;
  }

  /**
   * A two-stage translation succeeded: set the guest's accessed and dirty
   * flags (in guest-physical memory, so a ROM table keeps its own, rule 5)
   * and cache the combined translation (SDM vol. 3C, 29.4.1) with rights no
   * wider than stage 2 grants: a page stage 2 will not let be written, or
   * whose stage-2 dirty flag is clear, caches as clean (a write walks again),
   * one it will not let be executed as execute-disable (a fetch walks
   * again), one it will not let be read is not cached. A combined page is the smaller of the two stages' pages; a piece
   * of a larger guest page is recorded as fractured (Mmu.noteFractured).
   */
  private fillNested(
    s2: Stage2,
    res: WalkResult,
    vaHi: number,
    vaLo: number,
    access: AccessKind,
    vpnLo: number,
    vpnHi: number,
    allow: number,
    mfn: number,
  ): number {
    res.commit(access === WRITE, this.guestSpace, res.s2From);
    const psc = this.mmu.psc;
    if (psc !== null && psc.upper !== null && res.n > 1) this.mmu.walker.fillCaches(res, psc.upper, this.pcid);
    const fin = res.final as WalkResult;
    const user = (res.perm & PERM_U) !== 0;
    let perm = res.perm;
    // A stage-2 dirty flag still clear caches as clean too: a write walks again to set it (and PML logs it).
    if (!stage2Allows(s2.fmt, fin.perm, WRITE, user) || (fin.perm & PERM_D) === 0) perm &= ~PERM_D;
    if (!stage2Allows(s2.fmt, fin.perm, FETCH, user)) perm |= PERM_XD;
    let shift = Math.min(fin.shift, res.shift);
    // The TLB looks large pages up at the guest format's large-page size (21 or 22) and at 30.
    if (shift !== res.shift && shift !== 12 && shift !== ((res.fmt as WalkFormat).leafShift[2] as number)) shift = 12;
    if (stage2Allows(s2.fmt, fin.perm, READ, user)) {
      if (shift !== res.shift) this.mmu.noteFractured(vaHi, vaLo, res.shift);
      this.tlb.fill(vaHi, vaLo, this.pcid, shift, mfn - (vpnLo & ((1 << (shift - 12)) - 1)), perm);
    }
    this.tlb.l0Record(vpnLo, vpnHi, mfn, allow, shift);
    return mfn;
  }

  /**
   * Guest paging off under nested paging: the linear address is the
   * guest-physical one, translated by stage 2 alone. Only the level-0 TLB
   * remembers such translations (any change of control state empties it), so
   * none survives into paging.
   */
  private translatePhysical(vaLo: number, access: AccessKind, cpl: number): number {
    const vpnLo = vaLo >>> 12;
    const allow = 1 << (access * 2 + (cpl === 3 ? 1 : 0));
    const tlb = this.tlb;
    const pfn = tlb.l0Lookup(vpnLo, 0, allow);
    if (pfn >= 0) return pfn;
    const mmu = this.mmu;
    const s2 = mmu.stage2 as Stage2;
    const res = mmu.walk;
    for (;;) {
      res.pfn = vpnLo;
      res.shift = 12;
      res.perm = 0;
      const mfn = mmu.walker.translateFinal(mmu.space, s2, res, 0, vaLo, access, mmu.psc);
      if (mfn >= 0) {
        tlb.l0Record(vpnLo, 0, mfn, allow, 12);
        return mfn;
      }
      const h = this.stage2Exit(res, 0, vaLo, access, cpl, true);
      if (h === HOST_RETRY) continue;
      if (h === HOST_DONE) return TRANSLATE_DONE;
      return this.deliverPf(0, vaLo, h);
    }
  }

  /** Data read of `size` bytes; value in valueHi/valueLo. */
  read(vaHi: number, vaLo: number, size: number, cpl: number): number {
    this.counters.reads++;
    this.pendingSize = size;
    const pfn = this.translate(vaHi, vaLo, 0, cpl);
    if (pfn < 0) return pfn === TRANSLATE_DONE ? this.ok() : this.fault;
    const f = this.mmu.space.locate(pfn);
    readValue(f, (FRAME_AT[0] as number) * 4 + (vaLo & 0xfff), size, this);
    return this.ok();
  }

  write(vaHi: number, vaLo: number, size: number, valueHi: number, valueLo: number, cpl: number): number {
    this.counters.writes++;
    this.pendingSize = size;
    this.pendingHi = valueHi;
    this.pendingLo = valueLo;
    const pfn = this.translate(vaHi, vaLo, WRITE, cpl);
    if (pfn < 0) return pfn === TRANSLATE_DONE ? this.ok() : this.fault;
    const f = this.mmu.space.locateForWrite(pfn);
    if (f !== null) writeValue(f, (FRAME_AT[0] as number) * 4 + (vaLo & 0xfff), size, valueHi, valueLo);
    return this.ok();
  }

  fetch(vaHi: number, vaLo: number, cpl: number): number {
    this.counters.fetches++;
    this.pendingSize = 1;
    const pfn = this.translate(vaHi, vaLo, FETCH, cpl);
    if (pfn < 0) return pfn === TRANSLATE_DONE ? this.ok() : this.fault;
    const f = this.mmu.space.locate(pfn);
    readValue(f, (FRAME_AT[0] as number) * 4 + (vaLo & 0xfff), 1, this);
    return this.ok();
  }
}

/** Read `size` bytes at byte `off` of a frame (or of the buffer locate() gave, the frame's offset added) into out.valueLo/valueHi (little-endian). */
export function readValue(f: Uint32Array, off: number, size: number, out: { valueLo: number; valueHi: number }): void {
  if ((off & 3) === 0 && size >= 4) {
    out.valueLo = f[off >>> 2] as number;
    out.valueHi = size === 8 ? (f[(off >>> 2) + 1] as number) : 0;
    return;
  }
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < size; i++) {
    const b = off + i;
    const byte = ((f[b >>> 2] as number) >>> ((b & 3) * 8)) & 0xff;
    if (i < 4) lo |= byte << (8 * i);
    else hi |= byte << (8 * (i - 4));
  }
  out.valueLo = lo >>> 0;
  out.valueHi = hi >>> 0;
}

/** Write `size` bytes of value (hi, lo) at byte `off` of a frame (or of a located buffer), little-endian. */
export function writeValue(f: Uint32Array, off: number, size: number, hi: number, lo: number): void {
  if ((off & 3) === 0 && size >= 4) {
    f[off >>> 2] = lo;
    if (size === 8) f[(off >>> 2) + 1] = hi;
    return;
  }
  for (let i = 0; i < size; i++) {
    const b = off + i;
    const byte = i < 4 ? (lo >>> (8 * i)) & 0xff : (hi >>> (8 * (i - 4))) & 0xff;
    const w = b >>> 2;
    const s = (b & 3) * 8;
    f[w] = (((f[w] as number) & ~(0xff << s)) | (byte << s)) >>> 0;
  }
}
