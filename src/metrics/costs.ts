/**
 * Cost model: modelled CPU cycles for a run, computed from its counters
 * (a `Stats` record) and a unit cost, in cycles, for each kind of event.
 * The defaults and where each comes from are in docs/costs.md; a JSON file
 * (`parseCosts`; the CLI reads it) overrides any subset of them.
 *
 * The model prices what differs between pagers — translation, VM exits and
 * the hypervisor's work — not the guest's own computation: the guest
 * kernel's fault handlers and the workload's instructions are the same under
 * every pager and are left out.
 */
import {
  COST_CATEGORIES,
  type CostCategory,
  type CounterDecl,
  PAGER_COST_UNITS,
  type PagerCostUnit,
} from '../hypervisor/pager.js';
import { pagerKind } from '../pagers/registry.js';
import { parseJsonObject } from '../util/json.js';
import type { Stats } from './stats.js';

/**
 * Unit costs, in cycles. Field names are also the keys of a cost file. The
 * pager's work is priced with the units its counters declare
 * (PAGER_COST_UNITS; a unit that is not a field here does not compile).
 */
export interface CostModel extends Record<PagerCostUnit, number> {
  /**
   * The guest's own work that one modelled user access of a workload stands
   * for (the guest kernel model scales a program's memory references down
   * about a thousandfold); the same under every pager. Derived from the real
   * compile run (docs/costs.md). 0 prices translation overheads alone.
   */
  guest_work: number;
  /** A guest memory operation whose translation hits the TLB: one L1 data access. */
  tlb_hit: number;
  /** A TLB miss before the walk starts (second-level TLB lookup), plus the access made after the fill. */
  tlb_miss: number;
  /** One memory reference made by a hardware page walk (`walk_entry_reads`). */
  walk_ref: number;
  /** A guest MOV to CR3 executed by the CPU (the refills it causes are priced as walks). */
  cr3_write: number;
  /** A guest INVLPG executed by the CPU. */
  invlpg: number;
  /** A guest INVPCID executed by the CPU. */
  invpcid: number;
  /** Hardware delivery of an exception (#PF, #GP) to the guest's handler and the IRET back. */
  fault_delivery: number;
  /** A VM exit and the VM entry back: world switch plus the hypervisor's minimal dispatch. */
  vm_exit: number;
  /** Handler work for a shadow fault fixed by the hypervisor (guest walk, shadow lookup, entry write). */
  shadow_fault_fix: number;
  /** Handler work for a stage-2 fault fixed by mapping the gfn (EPT violation / #NPF; tables it makes included). */
  stage2_fault_fix: number;
  /** Splitting a stage-2 superpage down to 4 KiB leaves: tables allocated and every entry written. */
  stage2_split: number;
  /** Draining one page-modification log entry: a stage-2 type change of one page and a bit set in the log. */
  pml_entry: number;
  /** Handler work for a page fault that is the guest's own, reflected to it (guest walk, event injection). */
  fault_inject: number;
  /** Handler work for a guest fault the fast path classified from a magic entry (no guest walk). */
  fast_fault: number;
  /** Fetching, decoding and performing one guest instruction in the hypervisor's emulator. */
  emulate_insn: number;
  /** Handler work for a control-register (or EFER) write exit (CR3 switch: find and pin the shadow root). */
  cr_write_handler: number;
  /** Handler work for an INVLPG (or INVPCID, or flush) exit. */
  invlpg_handler: number;
  /** Handler work when a device or loader writes a shadowed guest frame. */
  physical_write_handler: number;
  /** Creating a shadow page-table frame (allocate, zero, hash insert). */
  shadow_make: number;
  /** Freeing a shadow frame (unhook, hash removal). */
  shadow_free: number;
  /** Recomputing one shadow entry after its guest entry changed. */
  entry_revalidate: number;
  /** Removing write access to a guest frame that became a page table (one mapping). */
  write_access_removal: number;
  /** Examining one reverse-map entry while looking for writable mappings. */
  rmap_entry: number;
  /** One guess where a writable mapping is: a lookup of an address in the current shadows. */
  wrmap_guess: number;
  /** Scanning one l1 shadow's entries for mappings of a frame (brute-force search): 512 × entry_scan. */
  l1_scan: number;
  /** Reading and testing one entry in a sequential scan (a snapshot compare, an entry-by-entry search). */
  entry_scan: number;
  /** A TLB shootdown (or one shootdown IPI of the guest kernel): IPI, remote flush, acknowledgement. */
  shootdown: number;
}

/** Defaults: see docs/costs.md for each figure's source and how firm it is. */
export const DEFAULT_COSTS: Readonly<CostModel> = Object.freeze({
  guest_work: 2800,
  tlb_hit: 4,
  tlb_miss: 12,
  walk_ref: 24,
  cr3_write: 200,
  invlpg: 200,
  invpcid: 200,
  fault_delivery: 300,
  vm_exit: 1300,
  shadow_fault_fix: 2500,
  stage2_fault_fix: 1500,
  stage2_split: 2000,
  pml_entry: 150,
  fault_inject: 1000,
  fast_fault: 300,
  emulate_insn: 3000,
  cr_write_handler: 1000,
  invlpg_handler: 300,
  physical_write_handler: 500,
  shadow_make: 1000,
  shadow_free: 500,
  entry_revalidate: 50,
  write_access_removal: 200,
  rmap_entry: 10,
  wrmap_guess: 60,
  l1_scan: 768,
  entry_scan: 1.5,
  shootdown: 5000,
});

export const COST_NAMES: readonly (keyof CostModel)[] = Object.keys(DEFAULT_COSTS) as (keyof CostModel)[];

/** A bad cost file: the message names the file and says what is wrong, on one line. */
export class CostsError extends Error {}

/**
 * Largest unit cost accepted, in cycles: the dearest real event (a VM exit
 * with emulation) is a few thousand; with this bound and counters below
 * 2^53 every total stays finite.
 */
export const MAX_UNIT_COST = 1e6;

/** Parse a cost file's text: a JSON object overriding any subset of `base`. Throws CostsError. */
export function parseCosts(text: string, file: string, base: Readonly<CostModel> = DEFAULT_COSTS): CostModel {
  const json = parseJsonObject(text);
  if (typeof json === 'string') {
    throw new CostsError(
      json === 'expected a JSON object'
        ? `${file}: a cost file must be a JSON object of cost name -> cycles`
        : `${file}: ${json}`,
    );
  }
  const costs: CostModel = { ...base };
  for (const [key, value] of Object.entries(json)) {
    if (!Object.hasOwn(DEFAULT_COSTS, key)) {
      throw new CostsError(`${file}: unknown cost "${key}" (known: ${COST_NAMES.join(', ')})`);
    }
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new CostsError(`${file}: cost "${key}" must be a number of cycles, got ${JSON.stringify(value)}`);
    }
    if (value < 0) throw new CostsError(`${file}: cost "${key}" must not be negative, got ${value}`);
    if (value > MAX_UNIT_COST)
      throw new CostsError(`${file}: cost "${key}" must be at most ${MAX_UNIT_COST} cycles, got ${value}`);
    costs[key as keyof CostModel] = value;
  }
  return costs;
}

/**
 * The pager's own counters, without their prefix: keys "<pager>.<name>"
 * where the part before the first '.' equals `stats.pager`.
 */
export function pagerCounters(stats: Stats): Record<string, number> {
  const out: Record<string, number> = {};
  const pager = stats.pager;
  if (typeof pager !== 'string') return out;
  for (const [k, v] of Object.entries(stats)) {
    const dot = k.indexOf('.');
    if (dot > 0 && k.slice(0, dot) === pager && typeof v === 'number') out[k.slice(dot + 1)] = v;
  }
  return out;
}

/**
 * What a pager spec's pager declares it counts (pagers/registry.ts), with how
 * each counter is priced and reported; none for a pager Umbra does not know.
 */
export function declaredCounters(spec: unknown): readonly CounterDecl[] {
  return typeof spec === 'string' ? (pagerKind(spec)?.counters ?? []) : [];
}

/**
 * The declarations a run's counters are read with: by default its pager's
 * (from the registry, by the run's pager spec); a front end or a test may
 * pass others (a pager not registered).
 */
export type CounterDecls = (spec: string) => readonly CounterDecl[];

export function runCounters(stats: Stats, decls: CounterDecls = declaredCounters): readonly CounterDecl[] {
  return typeof stats.pager === 'string' ? decls(stats.pager) : [];
}

/** The cause of an exit counter (kind "exit", named "exit.<cause>"). */
export function exitCause(c: CounterDecl): string {
  return c.name.startsWith('exit.') ? c.name.slice('exit.'.length) : c.name;
}

/**
 * The declared exit counters a run reports, in the run's order: the VM exit
 * causes ("exit.<cause>" pager counters of kind exit).
 */
export function exitCounters(stats: Stats, counters: readonly CounterDecl[] = runCounters(stats)): CounterDecl[] {
  const byName = new Map(counters.filter((c) => c.kind === 'exit').map((c) => [c.name, c]));
  return Object.keys(pagerCounters(stats)).flatMap((k) => byName.get(k) ?? []);
}

/** VM exit causes a run reports, in their order. */
export function exitCauses(stats: Stats, counters: readonly CounterDecl[] = runCounters(stats)): string[] {
  return exitCounters(stats, counters).map(exitCause);
}

export interface ModelledCycles {
  total: number;
  /** Cycles by part; only parts with a non-zero count appear. */
  parts: Record<string, number>;
}

/** A part of a pager's modelled cycles: its category and the counters priced in it, per unit. */
interface PagerPart {
  part: string;
  category: CostCategory;
  charges: Array<{ counter: string; unit: PagerCostUnit; weight: number }>;
}

/**
 * A pager's cost parts from its declarations, in the order the model lists
 * them: by category (COST_CATEGORIES), then by the order of their first unit
 * in PAGER_COST_UNITS, then as declared.
 */
export function pagerParts(counters: readonly CounterDecl[]): PagerPart[] {
  const charges = counters.flatMap((c, i) =>
    (c.cost ?? []).map((ch) => ({ ...ch, counter: c.name, i, weight: ch.weight ?? 1 })),
  );
  charges.sort(
    (a, b) =>
      COST_CATEGORIES.indexOf(a.category) - COST_CATEGORIES.indexOf(b.category) ||
      PAGER_COST_UNITS.indexOf(a.unit) - PAGER_COST_UNITS.indexOf(b.unit) ||
      a.i - b.i,
  );
  const parts = new Map<string, PagerPart>();
  for (const ch of charges) {
    let p = parts.get(ch.part);
    if (p === undefined) {
      p = { part: ch.part, category: ch.category, charges: [] };
      parts.set(ch.part, p);
    }
    p.charges.push({ counter: ch.counter, unit: ch.unit, weight: ch.weight });
  }
  return [...parts.values()];
}

/**
 * Modelled cycles of a run. Parts: tlb_hit_ops, tlb_miss_ops, walks,
 * guest_control (CR3 writes, INVLPG, INVPCID), guest_faults (exception
 * delivery); then the pager's, from what its counters declare
 * (`CounterDecl`): exit.<cause> (one VM exit round trip per exit counted;
 * exit.other for exits counted in the total but under no cause), then the
 * parts its counters are priced in (for shadow: handler.<what>,
 * emulation.pt_write, emulation.other, shadow_upkeep, shootdowns); last
 * guest_shootdowns (the guest kernel's shootdown IPIs, when a workload
 * reports them as guest.shootdown_ipis). `counters` are the run's pager's
 * declarations (by default the registry's for `stats.pager`).
 */
export function modelCycles(
  stats: Stats,
  costs: Readonly<CostModel> = DEFAULT_COSTS,
  counters: readonly CounterDecl[] = runCounters(stats),
): ModelledCycles {
  const n = (k: string): number => {
    const v = stats[k];
    return typeof v === 'number' ? v : 0;
  };
  const p = pagerCounters(stats);
  const c = (k: string): number => p[k] ?? 0;
  const parts: Record<string, number> = {};
  const add = (part: string, cycles: number): void => {
    if (cycles !== 0) parts[part] = (parts[part] ?? 0) + cycles;
  };

  add('guest_work', n('guest.user_accesses') * costs.guest_work);
  add('tlb_hit_ops', n('tlb_hits') * costs.tlb_hit);
  add('tlb_miss_ops', n('tlb_misses') * costs.tlb_miss);
  add('walks', n('walk_entry_reads') * costs.walk_ref);
  add('guest_control', n('cr3_writes') * costs.cr3_write + n('invlpg') * costs.invlpg + n('invpcid') * costs.invpcid);
  add('guest_faults', (n('page_faults') + n('gp_faults')) * costs.fault_delivery);

  // The pager's: each exit is a round trip, whatever its handler costs on top.
  let byCause = 0;
  for (const e of exitCounters(stats, counters)) {
    byCause += c(e.name);
    add(`exit.${exitCause(e)}`, c(e.name) * costs.vm_exit);
  }
  for (const total of counters.filter((d) => d.totalOf === 'exit')) {
    add('exit.other', Math.max(0, c(total.name) - byCause) * costs.vm_exit);
  }
  for (const part of pagerParts(counters)) {
    // Counts summed per unit, the units in their order, so each product is taken once.
    const perUnit = new Map<PagerCostUnit, number>();
    for (const ch of part.charges) perUnit.set(ch.unit, (perUnit.get(ch.unit) ?? 0) + ch.weight * c(ch.counter));
    let cycles = 0;
    for (const [unit, count] of [...perUnit].sort(
      (a, b) => PAGER_COST_UNITS.indexOf(a[0]) - PAGER_COST_UNITS.indexOf(b[0]),
    ))
      cycles += count * costs[unit];
    add(part.part, cycles);
  }

  // The guest kernel counts one IPI per remote vCPU flushed; "guest.shootdowns" is the older, coarser name.
  const guestIpis =
    typeof stats['guest.shootdown_ipis'] === 'number' ? n('guest.shootdown_ipis') : n('guest.shootdowns');
  add('guest_shootdowns', guestIpis * costs.shootdown);

  const total = Object.values(parts).reduce((a, x) => a + x, 0);
  return { total, parts };
}
