/**
 * The Pager interface: how a hypervisor virtualizes a domain's memory. A pager
 * gets control only through typed VM exits (arch/x86/exits.ts: page fault,
 * CR or EFER write, INVLPG, INVPCID, flush; later EPT/NPT exits), one per
 * architectural event, exactly as a real hypervisor does.
 */
import type { Cpu, CpuHost } from '../arch/x86/cpu.js';
import type { Domain } from './domain.js';

export interface Pager extends CpuHost {
  readonly name: string;
  /**
   * Take charge of a domain and its vCPUs: set up what each vCPU's MMU walks
   * for its current control state. Not an exit (it happens before the guest runs).
   */
  attach(domain: Domain, cpus: readonly Cpu[]): void;
  /** A device or loader wrote guest-physical memory directly (pwrite): not an exit, no vCPU stopped. */
  physicalWrite?(gfn: number, offset: number, size: number): void;
  /**
   * The hypervisor changed what backs guest frames [first, first+count)
   * (Domain.setType, already applied): drop or rewrite everything derived
   * from them, and flush what a TLB may hold of it, before the guest runs
   * again. Not an exit: the guest did nothing.
   */
  physmapChanged?(first: number, count: number): void;
  /** Counters for --stats (name -> value). */
  stats(): Record<string, number>;
  /** Dirty-page tracking for live migration, if the pager can do it. */
  readonly logDirty?: LogDirty;
}

/** Log-dirty mode (Xen's): which guest frames were written since the last look. */
export interface LogDirty {
  /** Start tracking writes to guest RAM. */
  enable(): void;
  /** The frames written since the last call, ascending; tracking goes on from empty. */
  clean(): number[];
  disable(): void;
}

/**
 * A run configuration the hypervisor refuses (a pool too small for the
 * vCPUs, …): the user's input is at fault, so front ends report it as one
 * line with exit status 2, not as an internal error.
 */
export class ConfigError extends Error {}

/**
 * A counter a pager declares, so reports, the cost model and `umbra
 * counters` can treat every pager's figures alike without knowing its names.
 */
export interface CounterDecl {
  /** Key in stats(), e.g. "exit.page_fault", "oos.resyncs". */
  readonly name: string;
  /** What one count means, for `umbra counters` and docs. */
  readonly description: string;
  /**
   * exit: a VM exit (counted once under "exits" too); count: events; gauge:
   * a level or size, not a count of events (peak frames, pool size).
   */
  readonly kind: 'exit' | 'count' | 'gauge';
}
