/**
 * The shadow pager's counters (Xen's perfc counters for shadow mode): what
 * each one means, and the record the parts of the pager count into.
 *
 * Rules this module keeps:
 *  - every key stats() reports is declared in SHADOW_COUNTERS, and every
 *    declared name is reported from the start, 0 until it happens (a test
 *    holds every registered pager to this);
 *  - the record is one object literal (V8 keeps it in fast mode: the fault
 *    path increments it), in the order stats() reports it;
 *  - a declaration says how the cost model prices the counter (`cost`) and
 *    where reports show it (`report`): metrics/ and cli/ know no name here.
 */
import type { CostCharge, CounterDecl, PagerCostUnit } from '../../hypervisor/pager.js';

/** Handler work per count, in the cost-model part handler.PART. */
const handler = (unit: PagerCostUnit, part: string): CostCharge => ({
  unit,
  part: `handler.${part}`,
  category: 'handler',
});
/** One instruction emulated per count, in the part emulation.PART. */
const emulation = (part: string): CostCharge => ({
  unit: 'emulate_insn',
  part: `emulation.${part}`,
  category: 'emulation',
});
/** Upkeep of the shadow tables, per count. */
const upkeep = (unit: PagerCostUnit): CostCharge => ({ unit, part: 'shadow_upkeep', category: 'upkeep' });

export const SHADOW_COUNTERS = [
  {
    name: 'exits',
    kind: 'count',
    description: 'VM exits the pager handled, of every reason',
    totalOf: 'exit',
    report: { row: { key: 'exits', label: 'VM exits' }, summary: { line: 'exits' } },
  },
  { name: 'exit.page_fault', kind: 'exit', description: 'exits on a page fault in the shadows (shadow faults)' },
  {
    name: 'exit.cr_write',
    kind: 'exit',
    description: 'exits on a MOV to CR0, CR3 or CR4',
    cost: [handler('cr_write_handler', 'cr_write')],
  },
  {
    name: 'exit.msr_write',
    kind: 'exit',
    description: 'exits on a write to EFER',
    cost: [handler('cr_write_handler', 'cr_write')],
  },
  { name: 'exit.invlpg', kind: 'exit', description: 'exits on INVLPG', cost: [handler('invlpg_handler', 'invlpg')] },
  { name: 'exit.invpcid', kind: 'exit', description: 'exits on INVPCID', cost: [handler('invlpg_handler', 'invlpg')] },
  {
    name: 'exit.flush',
    kind: 'exit',
    description: 'exits on any other guest TLB flush',
    cost: [handler('invlpg_handler', 'invlpg')],
  },
  {
    name: 'physical_writes',
    kind: 'count',
    description: 'device or loader writes (pwrite) to a guest frame that has shadows',
    cost: [handler('physical_write_handler', 'physical_write')],
  },
  {
    name: 'fault.fixed',
    kind: 'count',
    description: 'shadow faults fixed by building shadow (or P2M) entries; the access is retried',
    cost: [handler('shadow_fault_fix', 'fault_fixed')],
  },
  {
    name: 'fault.injected',
    kind: 'count',
    description: "page faults delivered to the guest: its own walk or rights refuse the access (fast path's included)",
    cost: [handler('fault_inject', 'fault_injected')],
  },
  {
    name: 'emulate.pt_write',
    kind: 'count',
    description: 'guest writes to a write-protected (shadowed) guest page table, emulated',
    cost: [emulation('pt_write')],
    report: {
      row: { key: 'emulated_pt_writes', label: 'emulated page-table writes' },
      summary: { line: 'shadow', text: 'emulated page-table writes' },
    },
  },
  {
    name: 'emulate.mmio',
    kind: 'count',
    description: 'accesses to guest frames with no RAM behind them, emulated (reads all ones, writes discarded)',
    cost: [emulation('other')],
  },
  {
    name: 'emulate.rom_write_discarded',
    kind: 'count',
    description: 'guest writes to ram_ro frames, discarded',
    cost: [emulation('other')],
  },
  {
    name: 'emulate.wp0_write',
    kind: 'count',
    description: 'supervisor writes allowed only by the guest running with CR0.WP=0, emulated',
    cost: [emulation('other')],
  },
  {
    name: 'emulate.loop_guard',
    kind: 'count',
    description: 'faults repeated without progress, emulated instead of fixed again (a missing case: stays 0)',
    cost: [emulation('other')],
  },
  { name: 'superpages_mapped', kind: 'count', description: 'guest superpages mapped by one shadow superpage entry' },
  {
    name: 'superpages_splintered',
    kind: 'count',
    description: 'guest superpages splintered into fl shadows of 4 KiB entries',
  },
  {
    name: 'shadows_made',
    kind: 'count',
    description: 'shadow tables made (each takes a hypervisor frame)',
    cost: [upkeep('shadow_make')],
  },
  {
    name: 'shadow_cache_hits',
    kind: 'count',
    description: 'shadow hash lookups that found an existing shadow (CR3 loads, path builds)',
  },
  {
    name: 'shadows_freed',
    kind: 'count',
    description: 'shadow tables freed (unreferenced and unpinned)',
    cost: [upkeep('shadow_free')],
  },
  { name: 'shadow_frames', kind: 'gauge', description: 'shadow tables in existence now' },
  {
    name: 'peak_shadow_frames',
    kind: 'gauge',
    description: 'most shadow tables in existence at once',
    report: {
      row: { key: 'peak_shadow_frames', label: 'shadow frames (peak)' },
      summary: { line: 'shadow', text: 'shadow frames at peak' },
    },
  },
  {
    name: 'write_access_removals',
    kind: 'count',
    description:
      "guest frames whose writable shadow mappings were removed: they became shadowed tables, or an out-of-sync l1 was resynced (Xen's shadow_writeable)",
    cost: [upkeep('write_access_removal')],
  },
  {
    name: 'rmap_entries_searched',
    kind: 'count',
    description: 'writable reverse-map slots visited to revoke write access (switch rmap, Umbra’s)',
    cost: [upkeep('rmap_entry')],
  },
  {
    name: 'wrmap.guesses',
    kind: 'count',
    description:
      "guesses where a writable mapping is, each a lookup in the current shadows (Xen's sh_guess_wrmap: a linear or direct map of the guest OS)",
    cost: [upkeep('wrmap_guess')],
  },
  {
    name: 'wrmap.guess_found',
    kind: 'count',
    description: "guesses that found a writable mapping (Xen's shadow_writeable_h_1 .. h_4, h_6)",
  },
  {
    name: 'wrmap.last_found',
    kind: 'count',
    description:
      "searches helped by the l1 shadow where the last search found one (Xen's last_writeable_pte_smfn, shadow_writeable_h_5)",
  },
  {
    name: 'wrmap.bruteforce',
    kind: 'count',
    description: "brute-force searches of every l1 shadow for writable mappings (Xen's shadow_writeable_bf, _bf_1)",
  },
  {
    name: 'wrmap.l1_scanned',
    kind: 'count',
    description: 'l1 shadows scanned entry by entry for writable mappings (the last one found, then brute force)',
    cost: [upkeep('l1_scan')],
  },
  {
    name: 'entries_revalidated',
    kind: 'count',
    description:
      "shadow entries recomputed because the guest entry they derive from was written (Xen's sh_validate_guest_entry)",
    cost: [upkeep('entry_revalidate')],
  },
  {
    name: 'tlb_shootdowns',
    kind: 'count',
    description: "flushes of every vCPU's TLB after a shadow entry a TLB may hold changed",
    cost: [{ unit: 'shootdown', part: 'shootdowns', category: 'shootdown' }],
  },
  { name: 'oos.unsynced', kind: 'count', description: 'guest l1s let out of sync (snapshot taken, written directly)' },
  { name: 'oos.resyncs', kind: 'count', description: 'out-of-sync l1s brought back in sync, for any cause' },
  {
    name: 'oos.resync.guest_flush',
    kind: 'count',
    description:
      'resyncs at a guest TLB flush of the vCPU that unsynced the page (control register or EFER write, INVPCID other than one address, flush; with resyncall: any vCPU, INVLPG too)',
  },
  {
    name: 'oos.resync.evicted',
    kind: 'count',
    description: "resyncs because another l1 took the page's out-of-sync slot on its vCPU",
  },
  {
    name: 'oos.resync.promoted',
    kind: 'count',
    description: 'resyncs because the frame was about to be shadowed above l1',
  },
  {
    name: 'oos.resync.physical_write',
    kind: 'count',
    description: 'resyncs because a device or loader wrote the frame',
  },
  {
    name: 'oos.entries_compared',
    kind: 'count',
    description: 'guest l1 entries compared with their snapshot at resync',
    cost: [upkeep('entry_scan')],
  },
  {
    name: 'oos.entries_changed',
    kind: 'count',
    description: 'guest l1 entries found changed at resync (their shadow entries recomputed)',
  },
  { name: 'oos.peak_pages', kind: 'gauge', description: 'most l1s out of sync at once' },
  {
    name: 'fastpath.not_present',
    kind: 'count',
    description: 'faults on a guest-not-present magic entry, delivered to the guest without a walk', // Among fault.injected, and priced without the guest walk instead.
    cost: [{ ...handler('fault_inject', 'fault_injected'), weight: -1 }, handler('fast_fault', 'fast_fault')],
  },
  {
    name: 'fastpath.mmio',
    kind: 'count',
    description: 'MMIO accesses emulated from a magic entry without a walk',
  },
  { name: 'prefetch.entries', kind: 'count', description: 'shadow l1 entries made present by prefetch' },
  {
    name: 'unshadow.frames',
    kind: 'count',
    description: 'guest tables left with no shadow by early unshadow (two emulated zero writes in a row)',
  },
  {
    name: 'unshadow.shadows',
    kind: 'count',
    description: 'shadows removed by early unshadow: top-level ones unpinned, lower ones unhooked from their parents',
  },
  {
    name: 'pool.frames',
    kind: 'gauge',
    description: "size of the shadow pool in frames, the P2M's tables included (0: no bound, the pool switched off)",
  },
  {
    name: 'pool.p2m_frames',
    kind: 'gauge',
    description: "frames of the P2M's tables, taken from the shadow pool as Xen does",
  },
  {
    name: 'pool.evictions',
    kind: 'count',
    description: 'least recently loaded top-level shadows unpinned to make room in the pool',
  },
  {
    name: 'pool.blowouts',
    kind: 'count',
    description: 'times everything below the roots in use was unhooked to make room in the pool',
  },
  {
    name: 'logdirty.pages_dirtied',
    kind: 'count',
    description: 'guest frames logged dirty (first write since the log was last cleaned)',
  },
  { name: 'logdirty.cleans', kind: 'count', description: 'cleans of the dirty log (one per migration round)' },
  {
    name: 'p2m.changes',
    kind: 'count',
    description: 'changes of what backs guest frames (p2m operations, ballooning), each over a range of frames',
  },
  {
    name: 'p2m.unshadowed',
    kind: 'count',
    description: 'shadowed guest tables whose shadows were removed because their frame changed type',
  },
  {
    name: 'p2m.l1_searched',
    kind: 'count',
    description: 'l1 shadows searched entry by entry for mappings of a frame that changed type (brute force, as Xen)',
    cost: [upkeep('l1_scan')],
  },
  {
    name: 'p2m.mappings_removed',
    kind: 'count',
    description: 'shadow entries removed because the guest frame they map changed type',
    cost: [upkeep('entry_revalidate')],
  },
  {
    name: 'oos.resync.blowout',
    kind: 'count',
    description: 'resyncs because the shadow tables were blown (pool pressure, log-dirty enable)',
  },
  {
    name: 'oos.resync.hookup',
    kind: 'count',
    description:
      "resyncs because a fault hooked a new shadow in below an l4 or l3 entry (Xen's shadow_resync_all from shadow_get_and_create_l2e)",
  },
  {
    name: 'oos.others_updated',
    kind: 'count',
    description:
      "another vCPU's out-of-sync l1s brought up to date at a guest TLB flush and left out of sync (Xen's shadow_sync_other_vcpus)",
  },
  {
    name: 'oos.others_skipped',
    kind: 'count',
    description:
      "another vCPU's out-of-sync l1s left alone at a guest TLB flush because the flushing vCPU cannot reach them (Xen's sh_skip_sync)",
  },
  {
    name: 'oos.fixup_add',
    kind: 'count',
    description:
      "writable mappings of out-of-sync l1s offered to their fixup arrays, two per page (Xen's shadow_oos_fixup_add)",
  },
  {
    name: 'oos.fixup_evict',
    kind: 'count',
    description:
      "writable mappings made read-only at once because the page's fixup array was full (Xen's shadow_oos_fixup_evict)",
    cost: [upkeep('write_access_removal')],
  },
  {
    name: 'oos.invlpg_dropped',
    kind: 'count',
    description:
      "shadow entries of out-of-sync l1s dropped by the guest's INVLPG, rebuilt at the next fault (Xen's sh_invlpg)",
    cost: [upkeep('entry_revalidate')],
  },
  { name: 'p2m_table_frames', kind: 'gauge', description: 'frames holding the P2M table (itself a page table)' },
  { name: 'p2m_entries', kind: 'gauge', description: 'P2M entries populated (guest frames given a machine frame)' },
] as const satisfies readonly CounterDecl[];

type DeclaredName = (typeof SHADOW_COUNTERS)[number]['name'];

/** Why an out-of-sync l1 came back in sync (the counter oos.resync.CAUSE). */
export type ResyncCause = 'guest_flush' | 'evicted' | 'promoted' | 'physical_write' | 'blowout' | 'hookup';

/** Counters stats() adds from the P2M. */
type NotInRecord = 'p2m_table_frames' | 'p2m_entries';

/** The record the pager counts into: every declared counter but those above. */
export type ShadowCounters = Record<Exclude<DeclaredName, NotInRecord>, number>;

/** What stats() reports: the record and the P2M's two gauges, every name typed (a typo does not compile). */
export type ShadowStats = ShadowCounters & { p2m_table_frames: number; p2m_entries: number };

/** A zeroed record, in the order stats() reports it. */
export function newCounters(): ShadowCounters {
  return {
    exits: 0,
    'exit.page_fault': 0,
    'exit.cr_write': 0,
    'exit.msr_write': 0,
    'exit.invlpg': 0,
    'exit.invpcid': 0,
    'exit.flush': 0,
    physical_writes: 0,
    'fault.fixed': 0,
    'fault.injected': 0,
    'emulate.pt_write': 0,
    'emulate.mmio': 0,
    'emulate.rom_write_discarded': 0,
    'emulate.wp0_write': 0,
    'emulate.loop_guard': 0,
    superpages_mapped: 0,
    superpages_splintered: 0,
    shadows_made: 0,
    shadow_cache_hits: 0,
    shadows_freed: 0,
    shadow_frames: 0,
    peak_shadow_frames: 0,
    write_access_removals: 0,
    rmap_entries_searched: 0,
    'wrmap.guesses': 0,
    'wrmap.guess_found': 0,
    'wrmap.last_found': 0,
    'wrmap.bruteforce': 0,
    'wrmap.l1_scanned': 0,
    entries_revalidated: 0,
    tlb_shootdowns: 0,
    'oos.unsynced': 0,
    'oos.resyncs': 0,
    'oos.resync.guest_flush': 0,
    'oos.resync.evicted': 0,
    'oos.resync.promoted': 0,
    'oos.resync.physical_write': 0,
    'oos.entries_compared': 0,
    'oos.entries_changed': 0,
    'oos.peak_pages': 0,
    'fastpath.not_present': 0,
    'fastpath.mmio': 0,
    'prefetch.entries': 0,
    'unshadow.frames': 0,
    'unshadow.shadows': 0,
    'pool.frames': 0,
    'pool.p2m_frames': 0,
    'pool.evictions': 0,
    'pool.blowouts': 0,
    'logdirty.pages_dirtied': 0,
    'logdirty.cleans': 0,
    'p2m.changes': 0,
    'p2m.unshadowed': 0,
    'p2m.l1_searched': 0,
    'p2m.mappings_removed': 0,
    'oos.resync.blowout': 0,
    'oos.resync.hookup': 0,
    'oos.others_updated': 0,
    'oos.others_skipped': 0,
    'oos.fixup_add': 0,
    'oos.fixup_evict': 0,
    'oos.invlpg_dropped': 0,
  };
}
