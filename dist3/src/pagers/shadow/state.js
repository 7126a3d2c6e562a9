import { Walker, WalkResult } from '../../arch/x86/walker.js';
import { MachineSpace, P2M_INVALID, P2M_RAM_RO, P2M_RAM_RW, P2m, P2mSpace } from '../../p2m/p2m.js';
/** The p2m type of each physmap type (hypervisor/physmap.ts: ram, rom, none). */
const P2M_TYPE_OF = [P2M_RAM_RW, P2M_RAM_RO, P2M_INVALID];
export class ShadowState {
    domain;
    cpus;
    sw;
    counters;
    p2m;
    /** Guest-physical memory through the P2M (what the guest's tables and emulation read and write). */
    guestSpace;
    /** Machine memory (what the hardware walks: shadows, or the P2M with guest paging off). */
    hwSpace;
    walker = new Walker();
    /** The guest walk of the fault in progress. */
    walk = new WalkResult();
    /** Shadow frame -> its shadow. */
    byMfn = new Map();
    /** Guest frame -> its (non-fl) shadows. */
    byGfn = new Map();
    /**
     * The vCPU whose exit is being handled (Xen's `current`), or null for work
     * no vCPU of the domain asked for (a device write, a P2M change).
     */
    exitCpu = null;
    /** During a page fault: its linear address (Xen passes it to sh_remove_write_access as a hint). */
    faultValid = false;
    faultHi = 0;
    faultLo = 0;
    constructor(domain, cpus, sw, counters) {
        this.domain = domain;
        this.cpus = cpus;
        this.sw = sw;
        this.counters = counters;
        const guest = domain.guest;
        this.p2m = new P2m(domain.mem, domain.placement, (gfn) => P2M_TYPE_OF[guest.typeOf(gfn)]);
        this.guestSpace = new P2mSpace(this.p2m);
        this.hwSpace = new MachineSpace(domain.mem);
    }
}
//# sourceMappingURL=state.js.map