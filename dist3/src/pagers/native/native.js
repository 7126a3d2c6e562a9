import { EXIT_CR_WRITE, EXIT_MSR_WRITE, EXIT_PAGE_FAULT } from '../../arch/x86/exits.js';
export class NativePager {
    name = 'native';
    attach(_domain, cpus) {
        for (const c of cpus)
            this.load(c);
    }
    exit(cpu, reason) {
        if (reason === EXIT_PAGE_FAULT)
            return cpu.exitInfo.error;
        if (reason === EXIT_CR_WRITE || reason === EXIT_MSR_WRITE)
            this.load(cpu);
        return 0;
    }
    /** Point the MMU at the guest's own tables, as its control registers say. */
    load(cpu) {
        const m = cpu.mmu;
        m.space = cpu.guestSpace;
        m.format = cpu.format;
        m.rootPfn = cpu.cr3RootPfn;
        m.pdpte = cpu.mode?.pdpteRegisters ? cpu.pdpte : null;
        m.ctlAnd = -1;
        m.ctlOr = 0;
    }
    stats() {
        return {};
    }
}
//# sourceMappingURL=native.js.map