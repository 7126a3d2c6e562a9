/**
 * The native pager: no virtualization. The hardware walks the guest's own
 * tables in guest-physical memory and every page fault goes straight to the
 * guest. It is the reference every other pager must match. The CPU's events
 * reach it through the same exit entry point as a hypervisor's, but on bare
 * metal they are not exits, so it counts none.
 */
import type { Cpu } from '../../arch/x86/cpu.js';
import { EXIT_CR_WRITE, EXIT_MSR_WRITE, EXIT_PAGE_FAULT, type ExitReason } from '../../arch/x86/exits.js';
import type { Domain } from '../../hypervisor/domain.js';
import type { Pager } from '../../hypervisor/pager.js';

export class NativePager implements Pager {
  readonly name = 'native';

  attach(_domain: Domain, cpus: readonly Cpu[]): void {
    for (const c of cpus) this.load(c);
  }

  exit(cpu: Cpu, reason: ExitReason): number {
    if (reason === EXIT_PAGE_FAULT) return cpu.exitInfo.error;
    if (reason === EXIT_CR_WRITE || reason === EXIT_MSR_WRITE) this.load(cpu);
    return 0;
  }

  /** Point the MMU at the guest's own tables, as its control registers say. */
  load(cpu: Cpu): void {
    const m = cpu.mmu;
    m.space = cpu.guestSpace;
    m.format = cpu.format;
    m.rootPfn = cpu.cr3RootPfn;
    m.pdpte = cpu.mode?.pdpteRegisters ? cpu.pdpte : null;
    m.ctlAnd = -1;
    m.ctlOr = 0;
  }

  stats(): Record<string, number> {
    return {};
  }
}
