import { Tlb } from './tlb.js';
import { Walker, WalkResult } from './walker.js';
export class Mmu {
    /** What the hardware walks; set by the host (pager) whenever it changes. */
    space;
    /** null: paging off, VA = PA. */
    format = null;
    rootPfn = 0;
    pdpte = null;
    /**
     * Hardware rights-check control = (guest control & ctlAnd) | ctlOr. A shadow
     * pager forces CR0.WP on, for instance, and emulates the guest's WP=0.
     */
    ctlAnd = -1;
    ctlOr = 0;
    tlb;
    walker = new Walker();
    /** The result of the hardware walk of the access in progress. */
    walk = new WalkResult();
    /** Paging-structure caches, when a configuration models them (issue 11). */
    psc = null;
    constructor(space, tlbConfig) {
        this.space = space;
        this.tlb = new Tlb(tlbConfig);
    }
    /** Invalidate translations of `va` (TLB and paging-structure caches). */
    flushVa(vaHi, vaLo, pcid, globals) {
        this.tlb.flushVa(vaHi, vaLo, pcid, globals);
        if (this.psc !== null)
            this.psc.flushVa(vaHi, vaLo, pcid, globals);
    }
    /** Invalidate a PCID's translations (-1: all), global ones too if `globals`. */
    flushContext(pcid, globals) {
        this.tlb.flushContext(pcid, globals);
        if (this.psc !== null)
            this.psc.flushContext(pcid, globals);
    }
}
//# sourceMappingURL=mmu.js.map