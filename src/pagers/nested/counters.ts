/**
 * The nested pager's counters: what each one means, how the cost model
 * prices it, and the record the pager counts into (one object literal, in
 * the order stats() reports it; every declared name is reported from the
 * start).
 *
 * Under nested paging the guest's page faults, CR3 writes, INVLPG and
 * INVPCID do not exit (KVM and Xen run EPT/NPT guests without #PF, CR3-load
 * or INVLPG intercepts); CR0 and CR4 writes and EFER writes do (KVM
 * intercepts CR0.PG/WP and the paging bits of CR4; EFER is not passed
 * through). Stage-2 memory references are priced per reference with every
 * walk reference (`walk_entry_reads`); `walk.stage2_refs` says how many of
 * those were the second dimension.
 */
import type { CostCharge, CounterDecl } from '../../hypervisor/pager.js';

const emulation = (part: string): CostCharge => ({
  unit: 'emulate_insn',
  part: `emulation.${part}`,
  category: 'emulation',
});

const upkeep = (unit: 'entry_revalidate' | 'stage2_split'): CostCharge => ({
  unit,
  part: 'stage2_upkeep',
  category: 'upkeep',
});

export const NESTED_COUNTERS: readonly CounterDecl[] = [
  {
    name: 'exits',
    kind: 'count',
    description: 'VM exits the pager handled, of every reason',
    totalOf: 'exit',
    report: { row: { key: 'exits', label: 'VM exits' }, summary: { line: 'exits' } },
  },
  {
    name: 'exit.ept_violation',
    kind: 'exit',
    description: 'EPT violations (a stage-2 entry missing or refusing the access)',
  },
  {
    name: 'exit.ept_misconfig',
    kind: 'exit',
    description: 'EPT misconfigurations (the MMIO entries of mmio=misconfig: emulated at once)',
  },
  { name: 'exit.npf', kind: 'exit', description: 'AMD nested page faults (#NPF), for any cause' },
  {
    name: 'exit.pml_full',
    kind: 'exit',
    description:
      "page-modification log-full exits (logdirty=pml): the vCPU's 512-entry log was full; drained, the access retried",
  },
  {
    name: 'exit.cr_write',
    kind: 'exit',
    description: 'exits on a MOV to CR0 or CR4 (CR3 writes do not exit under nested paging)',
    cost: [{ unit: 'cr_write_handler', part: 'handler.cr_write', category: 'handler' }],
  },
  {
    name: 'exit.msr_write',
    kind: 'exit',
    description: 'exits on a write to EFER',
    cost: [{ unit: 'cr_write_handler', part: 'handler.cr_write', category: 'handler' }],
  },
  {
    name: 'stage2.fixed',
    kind: 'count',
    description: 'stage-2 faults fixed by mapping the gfn (lazy population); the access is retried',
    cost: [{ unit: 'stage2_fault_fix', part: 'handler.stage2_fixed', category: 'handler' }],
  },
  { name: 'stage2.leaves_4k', kind: 'count', description: 'stage-2 4 KiB leaves made' },
  { name: 'stage2.leaves_2m', kind: 'count', description: 'stage-2 2 MiB leaves made (switch large)' },
  { name: 'stage2.leaves_1g', kind: 'count', description: 'stage-2 1 GiB leaves made (switch large)' },
  { name: 'stage2.mmio_entries', kind: 'count', description: 'MMIO entries made (switch mmio=misconfig)' },
  { name: 'stage2.table_frames', kind: 'gauge', description: 'frames holding the stage-2 tables (the root included)' },
  { name: 'stage2.entries', kind: 'gauge', description: 'present stage-2 leaves and MMIO entries' },
  {
    name: 'walk.stage2_refs',
    kind: 'count',
    description:
      'stage-2 entries read by hardware walks: the second dimension of 2-D walks (priced with walk_entry_reads)',
  },
  {
    name: 'emulate.mmio',
    kind: 'count',
    description: 'accesses to guest-physical memory with no RAM behind it, emulated (reads all ones, writes discarded)',
    cost: [emulation('other')],
  },
  {
    name: 'emulate.mmio_fast',
    kind: 'count',
    description:
      'emulations of MMIO (final or table references) found by a misconfiguration or reserved-bit exit, without a look at the physmap',
  },
  {
    name: 'emulate.rom_write_discarded',
    kind: 'count',
    description: 'guest writes to ROM frames (write-protected in stage 2), discarded after the guest walk',
    cost: [emulation('other')],
  },
  {
    name: 'emulate.table_ref',
    kind: 'count',
    description:
      'accesses emulated because a guest paging-structure reference failed in stage 2 (a guest table in ROM with EPT A/D on or where the walk sets a flag, or in MMIO)',
    cost: [emulation('other')],
  },
  {
    name: 'emulate.guest_fault',
    kind: 'count',
    description: "emulations that found the guest's own page fault, injected",
  },
  { name: 'pdpte_loads', kind: 'count', description: 'stage-2 exits of PAE PDPTE loads at MOV to CR' },
  {
    name: 'stage2.recalc_faults',
    kind: 'count',
    description:
      "stage-2 faults (EPT misconfigurations, #NPF) on entries marked for recalculation by a global type change, resolved along the gfn's path and retried (Xen's resolve_misconfig, do_recalc)",
    cost: [{ unit: 'stage2_fault_fix', part: 'handler.stage2_recalc', category: 'handler' }],
  },
  {
    name: 'stage2.recalc_marked',
    kind: 'count',
    description:
      'stage-2 entries marked for recalculation (a global type change marks the root; resolving pushes marks down)',
    cost: [upkeep('entry_revalidate')],
  },
  {
    name: 'stage2.recalc_entries',
    kind: 'count',
    description: 'stage-2 leaves whose p2m type was recalculated (ram_rw or ram_logdirty, by log-dirty mode)',
    cost: [upkeep('entry_revalidate')],
  },
  {
    name: 'stage2.splits',
    kind: 'count',
    description:
      'stage-2 superpages split whole down to 4 KiB leaves to change the type of one page in them (ept_split_super_page)',
    cost: [upkeep('stage2_split')],
  },
  { name: 'logdirty.enables', kind: 'count', description: 'log-dirty mode turned on (every RAM leaf to ram_logdirty)' },
  {
    name: 'logdirty.cleans',
    kind: 'count',
    description: 'log cleans (each RAM leaf back to ram_logdirty, lazily; every TLB flushed)',
  },
  {
    name: 'logdirty.write_faults',
    kind: 'count',
    description:
      'stage-2 write faults on a ram_logdirty leaf (logdirty=wp, or a superpage under pml): the gfn logged and made ram_rw',
    cost: [{ unit: 'stage2_fault_fix', part: 'handler.logdirty', category: 'handler' }],
  },
  {
    name: 'logdirty.made_writable',
    kind: 'count',
    description: 'leaves changed from ram_logdirty back to ram_rw (by a write fault or a PML drain)',
  },
  {
    name: 'logdirty.pages_dirtied',
    kind: 'count',
    description: 'frames newly logged dirty (by write faults, PML drains, emulation and device writes)',
  },
  {
    name: 'pml.logged',
    kind: 'count',
    description: 'guest-physical pages the CPU wrote to a page-modification log (an EPT dirty flag set from 0 to 1)',
  },
  {
    name: 'pml.drains',
    kind: 'count',
    description: "PML logs drained (at a PML-full exit, and every vCPU's before the log is read or cleaned)",
  },
  {
    name: 'pml.entries_drained',
    kind: 'count',
    description: 'PML log entries drained into the domain log',
    cost: [{ unit: 'pml_entry', part: 'handler.pml', category: 'handler' }],
  },
  { name: 'p2m.changes', kind: 'count', description: 'changes of what backs guest frames (p2m operations)' },
  { name: 'p2m.entries_zapped', kind: 'count', description: 'stage-2 entries removed by those changes' },
  {
    name: 'invept',
    kind: 'count',
    description: "INVEPTs: a vCPU's cached translations flushed after a stage-2 entry it may hold was removed",
  },
  {
    name: 'tlb_shootdowns',
    kind: 'count',
    description: "flushes of every vCPU's TLB after a stage-2 change (one INVEPT per vCPU)",
    cost: [{ unit: 'shootdown', part: 'shootdowns', category: 'shootdown' }],
  },
];

export function newCounters() {
  return {
    exits: 0,
    'exit.ept_violation': 0,
    'exit.ept_misconfig': 0,
    'exit.npf': 0,
    'exit.pml_full': 0,
    'exit.cr_write': 0,
    'exit.msr_write': 0,
    'stage2.fixed': 0,
    'emulate.mmio': 0,
    'emulate.mmio_fast': 0,
    'emulate.rom_write_discarded': 0,
    'emulate.table_ref': 0,
    'emulate.guest_fault': 0,
    pdpte_loads: 0,
    'stage2.recalc_faults': 0,
    'logdirty.enables': 0,
    'logdirty.cleans': 0,
    'logdirty.write_faults': 0,
    'logdirty.made_writable': 0,
    'logdirty.pages_dirtied': 0,
    'pml.drains': 0,
    'pml.entries_drained': 0,
    'p2m.changes': 0,
    'p2m.entries_zapped': 0,
    invept: 0,
    tlb_shootdowns: 0,
  };
}
export type NestedCounters = ReturnType<typeof newCounters>;
