/**
 * The Xen 3.0 profile's counters (Xen 3.0.2's perfc counters of shadow mode,
 * xen/include/xen/perfc_defn.h: shadow_fault_calls, shadow_sync_all,
 * shadow_sync_va, shadow_status_calls, remove_write_access, resync_l1, …),
 * under Umbra's names where the event is the shadow pager's too (exits,
 * faults, shadows made and freed, emulation), so `umbra compare` lines them
 * up in one row.
 *
 * Rules this module keeps:
 *  - every key stats() reports is declared here and reported from the start
 *    (test/pager-counters.test.ts holds every registered pager to it);
 *  - the record is one object literal, in the order stats() reports it;
 *  - a declaration says how the cost model prices it, with the units of
 *    PAGER_COST_UNITS only: snapshot and hl2 pages as a shadow made, an entry
 *    compared at resync or scanned in a brute-force search as the shadow
 *    pager's are (entry_scan), an entry recomputed as a revalidation.
 */
import type { CostCharge, CounterDecl, PagerCostUnit } from '../../hypervisor/pager.js';
import { SHADOW_COUNTERS } from '../shadow/counters.js';

/** Counters that mean here what they mean in the shadow pager: its declarations, by name. */
const SHARED = [
  'exits',
  'exit.page_fault',
  'exit.cr_write',
  'exit.msr_write',
  'exit.invlpg',
  'exit.invpcid',
  'exit.flush',
  'fault.fixed',
  'fault.injected',
  'emulate.mmio',
  'emulate.rom_write_discarded',
  'emulate.wp0_write',
  'emulate.loop_guard',
  'logdirty.pages_dirtied',
  'p2m.changes',
  'p2m_table_frames',
  'p2m_entries',
] as const;

function fromShadow(name: (typeof SHARED)[number]): CounterDecl {
  const d = SHADOW_COUNTERS.find((x) => x.name === name);
  if (d === undefined) throw new Error(`xen30: the shadow pager declares no counter "${name}"`);
  return d;
}

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

/** The counters of the 3.0 mechanisms. */
const OWN = [
  {
    name: 'physical_writes',
    kind: 'count',
    description: 'device or loader writes (pwrite) to a guest frame that is a shadowed page table',
    cost: [handler('physical_write_handler', 'physical_write')],
  },
  {
    name: 'emulate.pt_write',
    kind: 'count',
    description:
      'guest writes to a shadowed page table emulated (only with paging off or CR0.WP=0: every other one takes the page out of sync)',
    cost: [emulation('pt_write')],
    report: {
      row: { key: 'emulated_pt_writes', label: 'emulated page-table writes' },
      summary: { line: 'shadow', text: 'emulated page-table writes' },
    },
  },
  {
    name: 'shadows_made',
    kind: 'count',
    description: 'shadow tables made, l1 to l5 and fl1/fl2 (alloc_shadow_page; each takes a hypervisor frame)',
    cost: [upkeep('shadow_make')],
  },
  {
    name: 'shadows_freed',
    kind: 'count',
    description: 'shadow tables freed (free_shadow_page: unreferenced and unpinned)',
    cost: [upkeep('shadow_free')],
  },
  { name: 'shadow_frames', kind: 'gauge', description: 'shadow tables, hl2 tables and snapshots in existence now' },
  {
    name: 'peak_shadow_frames',
    kind: 'gauge',
    description: 'most shadow tables, hl2 tables and snapshots in existence at once (no pool bounds them)',
    report: {
      row: { key: 'peak_shadow_frames', label: 'shadow frames (peak)' },
      summary: { line: 'shadow', text: 'shadow frames at peak' },
    },
  },
  {
    name: 'superpages_splintered',
    kind: 'count',
    description: 'guest superpages splintered into fl1 shadows filled whole (l2e_rw_fault)',
  },
  {
    name: 'ht.lookups',
    kind: 'count',
    description: 'lookups in the shadow_ht hash (__shadow_status): shadows, hl2s and snapshots',
  },
  {
    name: 'ht.chain_steps',
    kind: 'count',
    description: 'hash records compared during lookups (1 when the key is at the head of its bucket)',
  },
  { name: 'ht.misses', kind: 'count', description: 'lookups that found nothing (the shadow is then made)' },
  { name: 'ht.longest_chain', kind: 'gauge', description: 'most records ever in one of the 256 buckets' },
  {
    name: 'pin.pinned',
    kind: 'count',
    description: 'top-level shadows (and hl2s) pinned when they were made (alloc_shadow_page)',
  },
  {
    name: 'pin.unpinned',
    kind: 'count',
    description:
      "pinned shadows let go because resync found their guest table empty or torn down (resync_all's unshadow rule)",
  },
  {
    name: 'oos.marked',
    kind: 'count',
    description:
      'out-of-sync list entries added: a write fault on a page-table page (shadow_mark_va_out_of_sync) or an emulated write (shadow_mark_mfn_out_of_sync)',
  },
  {
    name: 'oos.snapshots',
    kind: 'count',
    description: 'snapshots taken (shadow_make_snapshot): pages that went out of sync, of any level',
    cost: [upkeep('shadow_make')],
    report: { row: { key: 'oos_pages', label: 'pages taken out of sync' } },
  },
  {
    name: 'oos.upper_snapshots',
    kind: 'count',
    description: 'snapshots of pages shadowed above l1 (l2 to l5): the directories that went out of sync',
  },
  { name: 'oos.peak_entries', kind: 'gauge', description: 'longest the out-of-sync list ever was (it has no bound)' },
  { name: 'oos.peak_pages', kind: 'gauge', description: 'most pages out of sync at once' },
  {
    name: 'sync.all',
    kind: 'count',
    description: 'resyncs of every out-of-sync page of the domain (__shadow_sync_all), for any cause',
    report: { row: { key: 'full_resyncs', label: 'full resyncs (sync all)' } },
  },
  {
    name: 'sync.all.flush',
    kind: 'count',
    description:
      'full resyncs at a CR3 load or another flush of the whole TLB (update_pagetables, the VMX CR handlers)',
  },
  {
    name: 'sync.all.va',
    kind: 'count',
    description:
      'full resyncs because a fault or INVLPG hit an address whose entry differs from its snapshot (__shadow_sync_va)',
  },
  {
    name: 'sync.all.promote',
    kind: 'count',
    description: 'full resyncs because an out-of-sync page was about to get a new shadow (shadow_promote)',
  },
  {
    name: 'sync.all.other',
    kind: 'count',
    description: 'full resyncs for a device write, a P2M change or log-dirty (__shadow_sync_mfn, free_shadow_pages)',
  },
  {
    name: 'sync.va_checks',
    kind: 'count',
    description: 'faults and INVLPGs that checked their address against the snapshots (__shadow_out_of_sync)',
  },
  {
    name: 'sync.va_entries',
    kind: 'count',
    description: 'entries on those paths compared with their snapshot (snapshot_entry_matches)',
  },
  { name: 'resync.pages', kind: 'count', description: 'out-of-sync pages compared with their snapshot (resync_all)' },
  {
    name: 'resync.entries_compared',
    kind: 'count',
    description: "entries compared with the snapshot at resync (within each shadow's min/max range)",
    cost: [upkeep('entry_scan')],
    report: { row: { key: 'snapshot_entries_compared', label: 'snapshot entries compared' } },
  },
  {
    name: 'resync.entries_changed',
    kind: 'count',
    description: 'entries found changed at resync, their shadow (or hl2) entries recomputed (validate_pte_change, …)',
    cost: [upkeep('entry_revalidate')],
  },
  {
    name: 'hl2.made',
    kind: 'count',
    description: 'hl2 tables made for 2-level guest l2s (shadow_hl2_table)',
    cost: [upkeep('shadow_make')],
  },
  {
    name: 'hl2.entries_updated',
    kind: 'count',
    description: 'hl2 entries rewritten (update_hl2e before a fault or INVLPG uses one, validate_hl2e_change)',
    cost: [upkeep('entry_revalidate')],
  },
  {
    name: 'hl2.linear_reads',
    kind: 'count',
    description: 'guest l1 entries read through the hl2 (linear_pg_table) by the fault and INVLPG paths',
  },
  {
    name: 'write_access.removals',
    kind: 'count',
    description:
      'pages that became page tables while mapped writable: those mappings made read-only (shadow_remove_all_write_access)',
    cost: [upkeep('write_access_removal')],
  },
  {
    name: 'write_access.predicted',
    kind: 'count',
    description:
      "removals finished at the page's back pointer, the last shadow entry that mapped it (set_guest_back_ptr)",
  },
  {
    name: 'write_access.brute_force',
    kind: 'count',
    description: 'removals that searched the l1 shadows of the whole hash',
    report: { row: { key: 'write_access_searches', label: 'brute-force write-access searches' } },
  },
  {
    name: 'write_access.entries_scanned',
    kind: 'count',
    description: 'shadow l1 entries read by those searches',
    cost: [upkeep('entry_scan')],
  },
  {
    name: 'entries_revalidated',
    kind: 'count',
    description: 'shadow entries recomputed after a device wrote an in-sync page table (shadow_l1/l2_normal_pt_update)',
    cost: [upkeep('entry_revalidate')],
  },
  {
    name: 'invlpg.entries',
    kind: 'count',
    description:
      'shadow l1 entries an INVLPG cleared (shadow_invlpg_64) or propagated again (2-level guests, shadow_invlpg)',
    cost: [upkeep('entry_revalidate')],
  },
  {
    name: 'tlb_shootdowns',
    kind: 'count',
    description: "flushes of every vCPU's TLB after a shadow entry a TLB may hold changed (every sync all is one)",
    cost: [{ unit: 'shootdown', part: 'shootdowns', category: 'shootdown' }],
  },
  {
    name: 'logdirty.cleans',
    kind: 'count',
    description: 'cleans of the dirty log, each throwing every shadow away (DOM0_SHADOW_CONTROL_OP_CLEAN)',
  },
  {
    name: 'p2m.unshadowed',
    kind: 'count',
    description: 'shadowed guest tables whose shadows were removed because their frame changed type',
  },
  {
    name: 'p2m.l1_searched',
    kind: 'count',
    description: 'l1 and hl2 tables searched for mappings of a frame that changed type (shadow_remove_all_access)',
  },
  {
    name: 'p2m.mappings_removed',
    kind: 'count',
    description: 'shadow and hl2 entries removed because the guest frame they map changed type',
  },
] as const satisfies readonly CounterDecl[];

/** Every counter stats() reports: the shared ones, then the 3.0 mechanisms'. */
export const XEN30_COUNTERS: readonly CounterDecl[] = [...SHARED.map(fromShadow), ...OWN];

type DeclaredName = (typeof SHARED)[number] | (typeof OWN)[number]['name'];
type NotInRecord = 'p2m_table_frames' | 'p2m_entries';
export type Xen30Counters = Record<Exclude<DeclaredName, NotInRecord>, number>;
export type Xen30Stats = Xen30Counters & { p2m_table_frames: number; p2m_entries: number };

/** Why every out-of-sync page was resynced (the counter sync.all.CAUSE). */
export type SyncCause = 'flush' | 'va' | 'promote' | 'other';

/** A zeroed record in declaration order (every declared counter but the P2M's two gauges). */
export function newXen30Counters(): Xen30Counters {
  const c: Record<string, number> = {};
  for (const d of XEN30_COUNTERS) if (d.name !== 'p2m_table_frames' && d.name !== 'p2m_entries') c[d.name] = 0;
  return c as Xen30Counters;
}
