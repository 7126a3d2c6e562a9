/**
 * The native pager: no virtualization. The hardware walks the guest's own
 * tables in guest-physical memory and every page fault goes straight to the
 * guest. It is the reference every other pager must match. The CPU's events
 * reach it through the same exit entry point as a hypervisor's, but on bare
 * metal they are not exits, so it counts none.
 */
import type { Cpu } from '../../arch/x86/cpu.js';
import { EXIT_CR_WRITE, EXIT_MSR_WRITE, EXIT_PAGE_FAULT, type ExitReason } from '../../arch/x86/exits.js';
import type { WalkCacheConfig } from '../../arch/x86/psc.js';
import type { Domain } from '../../hypervisor/domain.js';
import type { Pager } from '../../hypervisor/pager.js';
import { installPwc, ONE_STAGE_DEFAULT, pwcStats } from '../pwc.js';

export interface NativeOptions {
  /** The pager's name in statistics (its spec). */
  name?: string;
  /** The paging-structure caches (pwc.ts; default on, null: none). */
  pwc?: WalkCacheConfig | null;
}

export class NativePager implements Pager {
  readonly name: string;
  private cpus: readonly Cpu[] = [];

  constructor(private readonly opts: NativeOptions = {}) {
    this.name = opts.name ?? 'native';
  }

  attach(_domain: Domain, cpus: readonly Cpu[]): void {
    this.cpus = cpus;
    installPwc(cpus, this.opts.pwc === undefined ? ONE_STAGE_DEFAULT : this.opts.pwc);
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
    return pwcStats(this.cpus, false);
  }
}
