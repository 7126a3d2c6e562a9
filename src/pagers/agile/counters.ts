/**
 * The agile pager's counters: what each one means, how the cost model
 * prices it, and the record the pager counts into (one object literal, in
 * the order stats() reports it; every declared name is reported from the
 * start).
 *
 * Exits: the guest's page faults exit while any part of its address space
 * is shadowed (the exception bitmap's #PF bit; reflected faults are priced
 * as injections), and not while it is walked wholly nested; every MOV to CR0,
 * CR3 or CR4 and every EFER write exits (a shadow root follows CR3); INVLPG
 * and INVPCID do not exit, because shadowed tables are kept in sync at every
 * write (write traps), so the CPU's own invalidation is all they need.
 * Stage-2 references are priced with every walk reference
 * (`walk_entry_reads`).
 */
import type { CostCharge, CounterDecl, PagerCostUnit } from '../../hypervisor/pager.js';

const handler = (unit: PagerCostUnit, part: string): CostCharge => ({
  unit,
  part: `handler.${part}`,
  category: 'handler',
});
const emulation = (part: string): CostCharge => ({
  unit: 'emulate_insn',
  part: `emulation.${part}`,
  category: 'emulation',
});
const upkeep = (unit: PagerCostUnit): CostCharge => ({ unit, part: 'shadow_upkeep', category: 'upkeep' });

export const AGILE_COUNTERS: readonly CounterDecl[] = [
  {
    name: 'exits',
    kind: 'count',
    description: 'VM exits the pager handled, of every reason',
    totalOf: 'exit',
    report: { row: { key: 'exits', label: 'VM exits' }, summary: { line: 'exits' } },
  },
  {
    name: 'exit.page_fault',
    kind: 'exit',
    description: 'exits on a page fault while the address space has a shadowed part (shadow faults, write traps)',
  },
  {
    name: 'exit.cr_write',
    kind: 'exit',
    description: 'exits on a MOV to CR0, CR3 or CR4 (CR3 loads exit: the shadow root follows them)',
    cost: [handler('cr_write_handler', 'cr_write')],
  },
  {
    name: 'exit.msr_write',
    kind: 'exit',
    description: 'exits on a write to EFER',
    cost: [handler('cr_write_handler', 'cr_write')],
  },
  { name: 'exit.ept_violation', kind: 'exit', description: 'EPT violations in the nested part of walks' },
  { name: 'exit.ept_misconfig', kind: 'exit', description: 'EPT misconfigurations (none expected: no MMIO entries)' },
  { name: 'exit.npf', kind: 'exit', description: 'AMD nested page faults in the nested part of walks' },
  {
    name: 'fault.fixed',
    kind: 'count',
    description: 'shadow faults fixed by filling the shadow path (and switching entries) from the guest walk',
    cost: [handler('shadow_fault_fix', 'fault_fixed')],
  },
  {
    name: 'fault.injected',
    kind: 'count',
    description: "page-fault exits that were the guest's own fault, injected",
    cost: [handler('fault_inject', 'fault_injected')],
  },
  {
    name: 'stage2.fixed',
    kind: 'count',
    description:
      'stage-2 faults fixed by mapping the gfn (lazy population), or by restoring write to a frame no longer protected',
    cost: [handler('stage2_fault_fix', 'stage2_fixed')],
  },
  {
    name: 'stage2.splits',
    kind: 'count',
    description: 'large stage-2 leaves split at once because a frame they cover became protected',
    cost: [{ unit: 'stage2_split', part: 'stage2_upkeep', category: 'upkeep' }],
  },
  {
    name: 'emulate.pt_write',
    kind: 'count',
    description:
      'write traps: guest writes to a shadowed guest table, emulated (the shadow entries written are dropped)',
    cost: [emulation('pt_write')],
    report: { row: { key: 'emulated_pt_writes', label: 'emulated page-table writes' } },
  },
  {
    name: 'emulate.mmio',
    kind: 'count',
    description: 'accesses to guest-physical memory with no RAM behind it, emulated',
    cost: [emulation('other')],
  },
  {
    name: 'emulate.rom_write_discarded',
    kind: 'count',
    description: 'guest writes to ROM frames, discarded after the guest walk',
    cost: [emulation('other')],
  },
  {
    name: 'emulate.wp0_write',
    kind: 'count',
    description: 'supervisor writes to read-only pages with CR0.WP=0, emulated (the hardware runs with WP forced on)',
    cost: [emulation('other')],
  },
  {
    name: 'emulate.dirty_in_rom',
    kind: 'count',
    description:
      'writes through a leaf in a ROM table, emulated (its dirty flag cannot be set, so no shadow leaf may grant write)',
    cost: [emulation('other')],
  },
  {
    name: 'emulate.table_ref',
    kind: 'count',
    description: 'accesses emulated because stage 2 refused a guest table reference (a table in ROM)',
    cost: [emulation('other')],
  },
  {
    name: 'emulate.guest_fault',
    kind: 'count',
    description: "stage-2 emulations that found the guest's own page fault, injected",
  },
  {
    name: 'switch.to_nested',
    kind: 'count',
    description: 'guest tables switched from shadow to nested mode, for any reason',
    report: { row: { key: 'agile_to_nested', label: 'agile: switches to nested' } },
  },
  {
    name: 'switch.to_nested_writes',
    kind: 'count',
    description: 'of those, tables that took more write traps in an interval than the threshold',
  },
  {
    name: 'switch.to_nested_large',
    kind: 'count',
    description: 'of those, tables holding a large page (Umbra shadows only 4 KiB leaves)',
  },
  {
    name: 'switch.to_nested_shared',
    kind: 'count',
    description:
      'of those, shadowed tables a nested-mode walk reached (a shared table; EPT A/D makes the reference a write)',
  },
  {
    name: 'switch.to_shadow',
    kind: 'count',
    description: 'nested-mode tables switched back to shadow mode, unchanged for a whole interval',
    report: { row: { key: 'agile_to_shadow', label: 'agile: switches to shadow' } },
  },
  {
    name: 'nested.compares',
    kind: 'count',
    description: 'nested-mode tables compared with their snapshot at an interval (a 4 KiB scan each)',
    cost: [upkeep('l1_scan')],
  },
  { name: 'policy.intervals', kind: 'count', description: 'intervals of the policy clock ended' },
  {
    name: 'shadows_made',
    kind: 'count',
    description: 'shadow tables made',
    cost: [upkeep('shadow_make')],
  },
  {
    name: 'shadows_freed',
    kind: 'count',
    description: 'shadow tables freed (no parent entry and no root pin left)',
    cost: [upkeep('shadow_free')],
  },
  {
    name: 'entries_made',
    kind: 'count',
    description:
      'shadow entries written present, with a new target or kind (fills; write-access removals), priced with the fault that made them',
  },
  {
    name: 'entries_dropped',
    kind: 'count',
    description: 'shadow entries cleared by a write trap, a device write or a switch',
    cost: [upkeep('entry_revalidate')],
  },
  {
    name: 'write_access_removals',
    kind: 'count',
    description: 'writable shadow leaves made read-only because their frame became a shadowed guest table',
    cost: [upkeep('write_access_removal')],
  },
  {
    name: 'cr3.shadow_root',
    kind: 'count',
    description: 'MMU loads with a shadow root (the walk starts in shadow tables)',
  },
  {
    name: 'cr3.nested_root',
    kind: 'count',
    description: 'MMU loads of a long-mode address space wholly in nested mode (its root switched)',
  },
  {
    name: 'cr3.nested_mode',
    kind: 'count',
    description:
      'MMU loads in a mode the shadow part does not cover (paging off, 32-bit, PAE, or machine frames beyond the guest MAXPHYADDR): walked wholly nested',
  },
  { name: 'pdpte_loads', kind: 'count', description: 'stage-2 exits of PAE PDPTE loads at MOV to CR' },
  { name: 'p2m.changes', kind: 'count', description: 'changes of what backs guest frames (p2m operations)' },
  { name: 'p2m.entries_zapped', kind: 'count', description: 'stage-2 entries removed by those changes' },
  {
    name: 'shadows_blown',
    kind: 'count',
    description: 'times every shadow was thrown away (a p2m change, or a change of the guest entry format)',
  },
  {
    name: 'tlb_shootdowns',
    kind: 'count',
    description: "flushes of every vCPU's TLB after a stage-2 or shadow change that removed rights",
    cost: [{ unit: 'shootdown', part: 'shootdowns', category: 'shootdown' }],
  },
  { name: 'shadow.frames', kind: 'gauge', description: 'frames holding shadow tables now' },
  { name: 'shadow.frames_peak', kind: 'gauge', description: 'most frames shadow tables held at once' },
  { name: 'nested.tables', kind: 'gauge', description: 'guest tables in nested mode now' },
  { name: 'protected.frames', kind: 'gauge', description: 'guest frames write-protected now (shadowed tables)' },
  { name: 'stage2.table_frames', kind: 'gauge', description: 'frames holding the stage-2 tables (the root included)' },
  { name: 'stage2.entries', kind: 'gauge', description: 'present stage-2 leaves' },
  {
    name: 'walk.stage2_refs',
    kind: 'count',
    description: 'stage-2 entries read by hardware walks: the second dimension of nested-mode walks',
  },
];

export function newCounters() {
  return {
    exits: 0,
    'exit.page_fault': 0,
    'exit.cr_write': 0,
    'exit.msr_write': 0,
    'exit.ept_violation': 0,
    'exit.ept_misconfig': 0,
    'exit.npf': 0,
    'fault.fixed': 0,
    'fault.injected': 0,
    'stage2.fixed': 0,
    'stage2.splits': 0,
    'emulate.pt_write': 0,
    'emulate.mmio': 0,
    'emulate.rom_write_discarded': 0,
    'emulate.wp0_write': 0,
    'emulate.dirty_in_rom': 0,
    'emulate.table_ref': 0,
    'emulate.guest_fault': 0,
    'switch.to_nested': 0,
    'switch.to_nested_writes': 0,
    'switch.to_nested_large': 0,
    'switch.to_nested_shared': 0,
    'switch.to_shadow': 0,
    'nested.compares': 0,
    'policy.intervals': 0,
    shadows_made: 0,
    shadows_freed: 0,
    entries_made: 0,
    entries_dropped: 0,
    write_access_removals: 0,
    'cr3.shadow_root': 0,
    'cr3.nested_root': 0,
    'cr3.nested_mode': 0,
    pdpte_loads: 0,
    'p2m.changes': 0,
    'p2m.entries_zapped': 0,
    shadows_blown: 0,
    tlb_shootdowns: 0,
  };
}
export type AgileCounters = ReturnType<typeof newCounters>;
