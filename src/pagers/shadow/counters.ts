/**
 * The shadow pager's counters (Xen's perfc counters for shadow mode): what
 * each one means, and the record the parts of the pager count into.
 *
 * Rules this module keeps:
 *  - every key stats() reports is declared in SHADOW_COUNTERS, and every
 *    declared name is reported (a test runs a guest that makes the one
 *    counter created on first use, oos.resync.blowout, appear);
 *  - the record is one object literal (V8 keeps it in fast mode: the fault
 *    path increments it), in the order stats() reports it.
 */
import type { CounterDecl } from '../../hypervisor/pager.js';

export const SHADOW_COUNTERS = [
  { name: 'exits', kind: 'count', description: 'VM exits the pager handled, of every reason' },
  { name: 'exit.page_fault', kind: 'exit', description: 'exits on a page fault in the shadows (shadow faults)' },
  { name: 'exit.cr_write', kind: 'exit', description: 'exits on a MOV to CR0, CR3 or CR4' },
  { name: 'exit.msr_write', kind: 'exit', description: 'exits on a write to EFER' },
  { name: 'exit.invlpg', kind: 'exit', description: 'exits on INVLPG' },
  { name: 'exit.invpcid', kind: 'exit', description: 'exits on INVPCID' },
  { name: 'exit.flush', kind: 'exit', description: 'exits on any other guest TLB flush' },
  {
    name: 'physical_writes',
    kind: 'count',
    description: 'device or loader writes (pwrite) to a guest frame that has shadows',
  },
  {
    name: 'fault.fixed',
    kind: 'count',
    description: 'shadow faults fixed by building shadow (or P2M) entries; the access is retried',
  },
  {
    name: 'fault.injected',
    kind: 'count',
    description: "page faults delivered to the guest: its own walk or rights refuse the access (fast path's included)",
  },
  {
    name: 'emulate.pt_write',
    kind: 'count',
    description: 'guest writes to a write-protected (shadowed) guest page table, emulated',
  },
  {
    name: 'emulate.mmio',
    kind: 'count',
    description: 'accesses to guest frames with no RAM behind them, emulated (reads all ones, writes discarded)',
  },
  { name: 'emulate.rom_write_discarded', kind: 'count', description: 'guest writes to ram_ro frames, discarded' },
  {
    name: 'emulate.wp0_write',
    kind: 'count',
    description: 'supervisor writes allowed only by the guest running with CR0.WP=0, emulated',
  },
  {
    name: 'emulate.loop_guard',
    kind: 'count',
    description: 'faults repeated without progress, emulated instead of fixed again (a missing case: stays 0)',
  },
  { name: 'superpages_mapped', kind: 'count', description: 'guest superpages mapped by one shadow superpage entry' },
  {
    name: 'superpages_splintered',
    kind: 'count',
    description: 'guest superpages splintered into fl shadows of 4 KiB entries',
  },
  { name: 'shadows_made', kind: 'count', description: 'shadow tables made (each takes a hypervisor frame)' },
  {
    name: 'shadow_cache_hits',
    kind: 'count',
    description: 'shadow hash lookups that found an existing shadow (CR3 loads, path builds)',
  },
  { name: 'shadows_freed', kind: 'count', description: 'shadow tables freed (unreferenced and unpinned)' },
  { name: 'shadow_frames', kind: 'gauge', description: 'shadow tables in existence now' },
  { name: 'peak_shadow_frames', kind: 'gauge', description: 'most shadow tables in existence at once' },
  {
    name: 'write_access_removals',
    kind: 'count',
    description: 'guest frames that became shadowed tables while mapped writable: those mappings revoked',
  },
  {
    name: 'rmap_entries_searched',
    kind: 'count',
    description: 'writable reverse-map slots visited to revoke write access',
  },
  {
    name: 'entries_revalidated',
    kind: 'count',
    description: 'shadow entries dropped because the guest entry they derive from was written',
  },
  {
    name: 'tlb_shootdowns',
    kind: 'count',
    description: "flushes of every vCPU's TLB after a shadow entry a TLB may hold changed",
  },
  { name: 'oos.unsynced', kind: 'count', description: 'guest l1s let out of sync (snapshot taken, written directly)' },
  { name: 'oos.resyncs', kind: 'count', description: 'out-of-sync l1s brought back in sync, for any cause' },
  {
    name: 'oos.resync.guest_flush',
    kind: 'count',
    description: 'resyncs at a guest TLB flush (control register or EFER write, INVLPG, INVPCID, flush)',
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
    description: 'faults on a guest-not-present magic entry, delivered to the guest without a walk',
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
  { name: 'unshadow.shadows', kind: 'count', description: 'shadows unhooked from their parents by early unshadow' },
  {
    name: 'pool.frames',
    kind: 'gauge',
    description: 'size of the shadow pool in frames (0: no bound, the pool switched off)',
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
  },
  {
    name: 'p2m.mappings_removed',
    kind: 'count',
    description: 'shadow entries removed because the guest frame they map changed type',
  },
  {
    name: 'oos.resync.blowout',
    kind: 'count',
    description:
      'resyncs because the shadow tables were blown (pool pressure, log-dirty enable); reported once it happened',
  },
  { name: 'p2m_table_frames', kind: 'gauge', description: 'frames holding the P2M table (itself a page table)' },
  { name: 'p2m_entries', kind: 'gauge', description: 'P2M entries populated (guest frames given a machine frame)' },
] as const satisfies readonly CounterDecl[];

type DeclaredName = (typeof SHADOW_COUNTERS)[number]['name'];

/** Why an out-of-sync l1 came back in sync (the counter oos.resync.CAUSE). */
export type ResyncCause = 'guest_flush' | 'evicted' | 'promoted' | 'physical_write' | 'blowout';

/** Counters stats() adds from the P2M, and the one the record gets on first use. */
type NotInRecord = 'p2m_table_frames' | 'p2m_entries' | 'oos.resync.blowout';

/**
 * The record the pager counts into: every declared counter but those above,
 * plus oos.resync.blowout once a blowout resynced a page (kept so: the
 * key's presence and position in stats() are part of every recorded output).
 */
export type ShadowCounters = Record<Exclude<DeclaredName, NotInRecord>, number> & {
  'oos.resync.blowout'?: number;
};

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
    'pool.evictions': 0,
    'pool.blowouts': 0,
    'logdirty.pages_dirtied': 0,
    'logdirty.cleans': 0,
    'p2m.changes': 0,
    'p2m.unshadowed': 0,
    'p2m.l1_searched': 0,
    'p2m.mappings_removed': 0,
  };
}
