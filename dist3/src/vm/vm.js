/**
 * The one place a machine is assembled: a Vm is a domain (guest RAM placed in
 * machine memory, which owns the P2M's backing and the ROM ranges), its
 * vCPUs, and the pager that virtualizes it, attached before the guest runs.
 * Guest drivers (scenarios, the kernel model, trace replay) reach it only
 * through the guest port above; front ends (CLI, benches, tests, later the
 * browser and sweeps) describe a run with a plain, serialisable RunSpec.
 */
import { Cpu } from '../arch/x86/cpu.js';
import { Domain } from '../hypervisor/domain.js';
import { PHYS_ROM } from '../hypervisor/physmap.js';
import { createPager } from '../pagers/registry.js';
export class Vm {
    machine;
    pager;
    domain;
    cpus;
    constructor(machine, pager, host) {
        this.machine = machine;
        this.pager = pager;
        this.domain = new Domain({ ramBytes: machine.memory, layout: host.layout, seed: host.seed });
        const guest = this.domain.guest;
        const ram = guest.ramFrames;
        for (const [first, last] of host.readOnly ?? []) {
            if (first < ram)
                this.domain.setType(first, Math.min(last, ram - 1) - first + 1, PHYS_ROM);
        }
        this.cpus = [];
        for (let v = 0; v < machine.vcpus; v++)
            this.cpus.push(new Cpu(v, guest, machine.maxphyaddr, pager, host.tlb));
        pager.attach(this.domain, this.cpus);
    }
    /** Assemble a run spec's machine, its pager built by the registry. */
    static create(spec) {
        return new Vm(spec.machine, createPager(spec.pager, spec.pagerOptions), spec);
    }
}
//# sourceMappingURL=vm.js.map