/**
 * The Pager interface: how a hypervisor virtualizes a domain's memory. A pager
 * gets control only through the CPU's host hooks (control-register changes,
 * page faults, invalidations), exactly as a real hypervisor gets control only
 * on exits and intercepted instructions.
 */
import type { Cpu, CpuHost } from '../arch/x86/cpu.js';
import type { Domain } from './domain.js';

export interface Pager extends CpuHost {
  readonly name: string;
  /** Take charge of a domain and its vCPUs (before any control change). */
  attach?(domain: Domain, cpus: Cpu[]): void;
  /** A device or loader wrote guest-physical memory directly (pwrite). */
  physicalWrite?(gfn: number, offset: number, size: number): void;
  /** Counters for --stats (name -> value). */
  stats(): Record<string, number>;
}
