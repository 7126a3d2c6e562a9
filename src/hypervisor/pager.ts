/**
 * The Pager interface: how a hypervisor virtualizes a domain's memory. A pager
 * gets control only through the CPU's host hooks (control-register changes,
 * page faults, invalidations), exactly as a real hypervisor gets control only
 * on exits and intercepted instructions.
 */
import type { CpuHost } from '../arch/x86/cpu.js';

export interface Pager extends CpuHost {
  readonly name: string;
  /** Counters for --stats (name -> value). */
  stats(): Record<string, number>;
}
