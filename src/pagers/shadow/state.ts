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
import type { Cpu } from '../../arch/x86/cpu.js';
import { Walker, WalkResult } from '../../arch/x86/walker.js';
import type { Domain } from '../../hypervisor/domain.js';
import { MachineSpace, P2M_INVALID, P2M_RAM_RO, P2M_RAM_RW, P2m, P2mSpace } from '../../p2m/p2m.js';
import type { ShadowCounters } from './counters.js';
import type { ShadowSwitches } from './options.js';
import type { Shadow } from './types.js';

/** The p2m type of each physmap type (hypervisor/physmap.ts: ram, rom, none). */
const P2M_TYPE_OF = [P2M_RAM_RW, P2M_RAM_RO, P2M_INVALID] as const;

export class ShadowState {
  readonly p2m: P2m;
  /** Guest-physical memory through the P2M (what the guest's tables and emulation read and write). */
  readonly guestSpace: P2mSpace;
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
  /** During a page fault: its linear address (Xen passes it to sh_remove_write_access as a hint). */
  faultValid = false;
  faultHi = 0;
  faultLo = 0;

  constructor(
    readonly domain: Domain,
    readonly cpus: Cpu[],
    readonly sw: ShadowSwitches,
    readonly counters: ShadowCounters,
  ) {
    const guest = domain.guest;
    this.p2m = new P2m(domain.mem, domain.placement, (gfn) => P2M_TYPE_OF[guest.typeOf(gfn)] as number);
    this.guestSpace = new P2mSpace(this.p2m);
    this.hwSpace = new MachineSpace(domain.mem);
  }
}
