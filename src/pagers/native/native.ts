/**
 * The native pager: no virtualization. The hardware walks the guest's own
 * tables in guest-physical memory and every page fault goes straight to the
 * guest. It is the reference every other pager must match.
 */
import type { Cpu } from '../../arch/x86/cpu.js';
import type { Pager } from '../../hypervisor/pager.js';

export class NativePager implements Pager {
  readonly name = 'native';

  controlChanged(cpu: Cpu): void {
    const m = cpu.mmu;
    m.space = cpu.guestSpace;
    m.format = cpu.format;
    m.rootPfn = cpu.cr3RootPfn;
    m.pdpte = cpu.mode?.pdpteRegisters ? cpu.pdpte : null;
    m.ctlAnd = -1;
    m.ctlOr = 0;
  }

  pageFault(_cpu: Cpu, _vaHi: number, _vaLo: number, _access: number, _cpl: number, error: number): number {
    return error;
  }

  stats(): Record<string, number> {
    return {};
  }
}
