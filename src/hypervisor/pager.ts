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

/**
 * A run configuration the hypervisor refuses (a pool too small for the
 * vCPUs, …): the user's input is at fault, so front ends report it as one
 * line with exit status 2, not as an internal error.
 */
export class ConfigError extends Error {}
