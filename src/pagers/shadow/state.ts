/**
 * What every part of the shadow pager shares (the role of Xen's
 * shadow/private.h): the domain and its P2M, the two views of memory, the
 * vCPUs, the switches, the counters, the guest walker, and the two indexes
 * of the shadows by machine frame and by guest frame. The parts above
 * (set.ts, oos.ts, cache.ts, logdirty.ts, propagate.ts, shadow.ts) each hold
 * this object; none holds another's private state.
 *
 * Rules kept here:
 *  - byMfn and byGfn are written only by the cache (cache.ts: make, free);
 *    every other part only reads them;
 *  - `walk` is the guest walk of the fault in progress: the fault path
 *    (shadow.ts) walks into it, propagation (propagate.ts) builds from it.
 */
import type { Cpu, Cpu as CpuT } from '../../arch/x86/cpu.js';
import { formatFor, MODE_32, type WalkFormat } from '../../arch/x86/modes.js';
import { type DataSpace, Walker, WalkResult } from '../../arch/x86/walker.js';
import type { Domain } from '../../hypervisor/domain.js';
import { frameAt } from '../../machine/memory.js';
import { MachineSpace, P2M_INVALID, P2M_RAM_RO, P2M_RAM_RW, P2m, P2mSpace } from '../../p2m/p2m.js';
import type { ShadowCounters } from './counters.js';
import type { ShadowSwitches } from './options.js';
import type { Shadow } from './types.js';

/**
 * The guest frame Umbra gives the 1:1 table a vCPU with paging off runs on
 * (Xen's unpaged_pagetable): beyond every real gfn (below 2^40), exact in
 * the shadow hash's keys (below 2^44).
 */
export const UNPAGED_GFN = 2 ** 41;

/**
 * Xen's unpaged_pagetable (shadow/common.c, shadow_enable →
 * write_32bit_pse_identmap): a 32-bit page directory of 1024 4 MiB pages
 * mapping the first 4 GiB 1:1, present, writable, user, accessed and dirty.
 * Xen keeps it in a P2M page; the guest never sees or writes it.
 */
const UNPAGED_TABLE: Uint32Array = (() => {
  const t = new Uint32Array(1024);
  for (let i = 0; i < 1024; i++) t[i] = ((i << 22) | 0xe7) >>> 0;
  return t;
})();

/** The format of the 1:1 table: 32-bit paging with 4 MiB pages. */
export const UNPAGED_FORMAT: WalkFormat = formatFor(MODE_32, 32, false, true);

/** Guest-physical memory through the P2M, plus the 1:1 table at UNPAGED_GFN (read-only). */
class GuestSpace implements DataSpace {
  constructor(private readonly p2m: P2mSpace) {}
  frameForRead(gfn: number): Uint32Array {
    return gfn === UNPAGED_GFN ? UNPAGED_TABLE : this.p2m.frameForRead(gfn);
  }
  frameForWrite(gfn: number): Uint32Array | null {
    return gfn === UNPAGED_GFN ? null : this.p2m.frameForWrite(gfn);
  }
  locate(gfn: number): Uint32Array {
    return gfn === UNPAGED_GFN ? frameAt(UNPAGED_TABLE) : this.p2m.locate(gfn);
  }
  locateForWrite(gfn: number): Uint32Array | null {
    return gfn === UNPAGED_GFN ? null : this.p2m.locateForWrite(gfn);
  }
}

/** The p2m type of each physmap type (hypervisor/physmap.ts: ram, rom, none). */
const P2M_TYPE_OF = [P2M_RAM_RW, P2M_RAM_RO, P2M_INVALID] as const;

export class ShadowState {
  readonly p2m: P2m;
  /**
   * Guest-physical memory through the P2M (what the guest's tables and
   * emulation read and write), and the 1:1 table of unpaged vCPUs.
   */
  readonly guestSpace: DataSpace;
  /** Machine memory (what the hardware walks: shadows, or the P2M with guest paging off). */
  readonly hwSpace: MachineSpace;
  readonly walker = new Walker();
  /** The guest walk of the fault in progress. */
  readonly walk = new WalkResult();
  /** Shadow frame -> its shadow. */
  readonly byMfn = new Map<number, Shadow>();
  /** Guest frame -> its (non-fl) shadows. */
  readonly byGfn = new Map<number, Shadow[]>();
  /**
   * The vCPU whose exit is being handled (Xen's `current`), or null for work
   * no vCPU of the domain asked for (a device write, a P2M change).
   */
  exitCpu: Cpu | null = null;
  /**
   * Bumped whenever a shadow is made or freed, an entry above l1 changes, or
   * P2M types change: a fault's path above l1 found unchanged since then
   * needs no rebuilding (propagate.ts).
   */
  epoch = 0;
  /** During a page fault: its linear address (Xen passes it to sh_remove_write_access as a hint). */
  faultValid = false;
  faultHi = 0;
  faultLo = 0;

  /**
   * The guest paging format the shadows of `cpu` follow: its own, or with
   * paging off the 1:1 table's (Xen's way), or null when it runs on the P2M
   * itself (switch unpagedp2m, Umbra's).
   */
  guestFormat(cpu: CpuT): WalkFormat | null {
    return cpu.format ?? (this.sw.unpagedp2m ? null : UNPAGED_FORMAT);
  }

  /** The guest frame of the table `cpu`'s shadows root in (see guestFormat). */
  guestRoot(cpu: CpuT): number {
    return cpu.format !== null ? cpu.cr3RootPfn : UNPAGED_GFN;
  }

  constructor(
    readonly domain: Domain,
    readonly cpus: Cpu[],
    readonly sw: ShadowSwitches,
    readonly counters: ShadowCounters,
  ) {
    const guest = domain.guest;
    this.p2m = new P2m(domain.mem, domain.placement, (gfn) => P2M_TYPE_OF[guest.typeOf(gfn)] as number);
    this.guestSpace = new GuestSpace(new P2mSpace(this.p2m));
    this.hwSpace = new MachineSpace(domain.mem);
  }
}
