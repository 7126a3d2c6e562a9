/**
 * The Pager interface: how a hypervisor virtualizes a domain's memory. A pager
 * gets control only through typed VM exits (arch/x86/exits.ts: page fault,
 * CR or EFER write, INVLPG, INVPCID, flush, EPT violation and
 * misconfiguration, AMD nested page fault, PML log full), one per
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
}

/**
 * A run configuration the hypervisor refuses (a pool too small for the
 * vCPUs, …): the user's input is at fault, so front ends report it as one
 * line with exit status 2, not as an internal error.
 */
export class ConfigError extends Error {}

/**
 * A counter a pager declares, so reports, the cost model and `umbra
 * counters` can treat every pager's figures alike without knowing its names:
 * metrics/ prices and prints a pager's counters from these declarations
 * alone (a test runs a made-up pager through them).
 */
export interface CounterDecl {
  /** Key in stats(), e.g. "exit.page_fault", "oos.resyncs". */
  readonly name: string;
  /** What one count means, for `umbra counters` and docs. */
  readonly description: string;
  /**
   * exit: a VM exit, named `exit.<cause>` (counted once under the pager's
   * total of exits too; the cost model prices each as a `vm_exit` round
   * trip, part `exit.<cause>`, and reports list it as `exits: <cause>`);
   * count: events; gauge: a level or size, not a count of events (peak
   * frames, pool size).
   */
  readonly kind: 'exit' | 'count' | 'gauge';
  /**
   * This counter is the total of every counter of that kind, and more if
   * some are counted under none ("exit": every VM exit of every reason).
   * The cost model prices what it counts beyond them as `exit.other`.
   */
  readonly totalOf?: 'exit';
  /** How the cost model prices each count, beyond an exit's round trip (docs/costs.md). */
  readonly cost?: readonly CostCharge[];
  /** Where reports show it. */
  readonly report?: CounterReport;
}

/**
 * Unit costs, in the cost model's order (the fields of metrics' CostModel,
 * docs/costs.md), that a pager's counters may be priced with.
 */
export const PAGER_COST_UNITS = [
  'vm_exit',
  'shadow_fault_fix',
  'stage2_fault_fix',
  'stage2_split',
  'pml_entry',
  'fault_inject',
  'fast_fault',
  'emulate_insn',
  'cr_write_handler',
  'invlpg_handler',
  'physical_write_handler',
  'shadow_make',
  'shadow_free',
  'entry_revalidate',
  'write_access_removal',
  'rmap_entry',
  'wrmap_guess',
  'l1_scan',
  'entry_scan',
  'shootdown',
] as const;
export type PagerCostUnit = (typeof PAGER_COST_UNITS)[number];

/**
 * What a pager's cycles go to, in the order the cost model lists its parts
 * (and a plot stacks them): exit round trips, handler work, instruction
 * emulation, upkeep of the pager's own tables, TLB shootdowns.
 */
export const COST_CATEGORIES = ['exit', 'handler', 'emulation', 'upkeep', 'shootdown'] as const;
export type CostCategory = (typeof COST_CATEGORIES)[number];

/**
 * One price of a count: `weight` × `unit` cycles per count, added to the
 * cost-model part `part` ("handler.cr_write", "shadow_upkeep"; counters may
 * share a part). A part's category is `category`; within a category parts
 * come in the order of their units in PAGER_COST_UNITS, then as declared.
 */
export interface CostCharge {
  readonly unit: PagerCostUnit;
  readonly part: string;
  readonly category: CostCategory;
  /**
   * -1: these events are counted under another counter of this part too, and
   * are priced here instead (the fast path's reflected faults are among the
   * injected ones, and cheaper). Default 1.
   */
  readonly weight?: 1 | -1;
}

/** Where a report shows a counter. */
export interface CounterReport {
  /**
   * A row of the comparison table (`umbra compare`): its key (JSON, CSV)
   * and label (text). A `totalOf: "exit"` counter's row is followed by one
   * row per exit cause the runs report.
   */
  readonly row?: { readonly key: string; readonly label: string };
  /**
   * A figure in a run's summary (`umbra run`, `umbra replay`): the line
   * (named by its heading) and the words after the number; figures of one
   * line are joined by commas. A `totalOf: "exit"` counter is followed by
   * the exits by cause, in parentheses, instead of words.
   */
  readonly summary?: { readonly line: string; readonly text?: string };
}
