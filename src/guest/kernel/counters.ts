/**
 * The guest kernel's event counters (what a kernel exports in /proc/vmstat
 * and perf counters): one named counter per event, reported with the
 * "guest." prefix under --stats and in every comparison.
 *
 * Rules: a counter counts one kind of event and is only ever incremented;
 * names in the report are stable (tests, docs and saved comparisons use them).
 */

import type { FrameAllocator } from './frames.js';

export class KernelCounters {
  processes = 0;
  threads = 0;
  exits = 0;
  kills = 0;
  execs = 0;
  contextSwitches = 0;
  /** Of contextSwitches: a task that could have run on was switched out at the end of its slice. */
  contextSwitchesPreempted = 0;
  cr3Switches = 0;
  pageFaults = 0;
  faultWrite = 0;
  faultFetch = 0;
  faultDemandZero = 0;
  faultZeroPage = 0;
  faultFile = 0;
  faultCow = 0;
  faultCowReuse = 0;
  /** Of faultCow: first writes to a not-present page of a private file mapping (no page was present). */
  faultCowFile = 0;
  faultStackGrowth = 0;
  faultHuge = 0;
  faultSpurious = 0;
  faultSegv = 0;
  /**
   * Of pageFaults: faults taken in kernel mode on a user address (copy_to_user),
   * those that were writes, and those that wrote a present page (counted in
   * faultCow or faultCowReuse, not faultCowFile). The other kinds count both
   * modes; user-mode figures are the kind less its kernel part.
   */
  faultKernel = 0;
  faultKernelWrite = 0;
  faultKernelCow = 0;
  /** Pages of user memory the kernel wrote for a system call (copy_to_user), and calls that failed with EFAULT. */
  copyToUserPages = 0;
  copyToUserFaults = 0;
  syscalls: Record<string, number> = {};
  shootdownIpis = 0;
  /** Lazy TLB: IPIs not sent to idle vCPUs, their catch-up flushes, and lazy vCPUs sent off a freed table. */
  lazySkips = 0;
  lazyCatchups = 0;
  lazyLeaves = 0;
  /** Pages mapped by fault-around beyond the faulting one; madvise(DONTNEED) and mremap calls. */
  faultAroundPages = 0;
  readaheadPages = 0;
  madviseDontneed = 0;
  mremapMoves = 0;
  flushesLocal = 0;
  flushesFull = 0;
  tablesAllocated = 0;
  /** Page tables below the root of each address space as it was torn down, summed (Linux's VmPTE at exit). */
  tablesAtExit = 0;
  /** Address spaces torn down. */
  mmsDestroyed = 0;
  tablesFreed = 0;
  pteWrites = 0;
  pteReads = 0;
  pageCacheFills = 0;
  agedYoung = 0;
  userAccesses = 0;
  /** The balloon driver (balloon.ts); reported only when the kernel has one. */
  balloonTargetChanges = 0;
  balloonRuns = 0;
  balloonFramesOut = 0;
  balloonFramesIn = 0;
  balloonP2mOps = 0;
  balloonShort = 0;
  balloonOomDeflates = 0;
  balloonPeak = 0;
}

/**
 * Counters as a flat record, names prefixed "guest."; the balloon's only
 * with `balloon` (a kernel without one reports what it always did).
 */
export function counterStats(c: KernelCounters, frames: FrameAllocator, balloon = false): Record<string, number> {
  const s: Record<string, number> = {
    'guest.processes': c.processes,
    'guest.threads': c.threads,
    'guest.execs': c.execs,
    'guest.exits': c.exits,
    'guest.kills': c.kills,
    'guest.context_switches': c.contextSwitches,
    'guest.context_switches.preempted': c.contextSwitchesPreempted,
    'guest.cr3_switches': c.cr3Switches,
    'guest.page_faults': c.pageFaults,
    'guest.page_faults.write': c.faultWrite,
    'guest.page_faults.fetch': c.faultFetch,
    'guest.page_faults.demand_zero': c.faultDemandZero,
    'guest.page_faults.zero_page': c.faultZeroPage,
    'guest.page_faults.file': c.faultFile,
    'guest.page_faults.cow': c.faultCow,
    'guest.page_faults.cow_reuse': c.faultCowReuse,
    'guest.page_faults.cow_file': c.faultCowFile,
    'guest.page_faults.stack_growth': c.faultStackGrowth,
    'guest.page_faults.huge': c.faultHuge,
    'guest.page_faults.spurious': c.faultSpurious,
    'guest.page_faults.segv': c.faultSegv,
    'guest.page_faults.kernel': c.faultKernel,
    'guest.page_faults.kernel_write': c.faultKernelWrite,
    'guest.page_faults.kernel_cow': c.faultKernelCow,
    'guest.copy_to_user_pages': c.copyToUserPages,
    'guest.copy_to_user_efault': c.copyToUserFaults,
    'guest.user_accesses': c.userAccesses,
    'guest.pte_reads': c.pteReads,
    'guest.pte_writes': c.pteWrites,
    'guest.tables_allocated': c.tablesAllocated,
    'guest.tables_at_exit': c.tablesAtExit,
    'guest.mms_destroyed': c.mmsDestroyed,
    'guest.tables_freed': c.tablesFreed,
    'guest.page_cache_fills': c.pageCacheFills,
    'guest.tlb_flushes.pages': c.flushesLocal,
    'guest.tlb_flushes.full': c.flushesFull,
    'guest.shootdown_ipis': c.shootdownIpis,
    'guest.lazy_tlb.skipped_ipis': c.lazySkips,
    'guest.lazy_tlb.catchup_flushes': c.lazyCatchups,
    'guest.lazy_tlb.left_for_init_mm': c.lazyLeaves,
    'guest.page_faults.fault_around_pages': c.faultAroundPages,
    'guest.page_cache_readahead': c.readaheadPages,
    'guest.madvise_dontneed': c.madviseDontneed,
    'guest.mremap_moves': c.mremapMoves,
    'guest.pages_aged_young': c.agedYoung,
    'guest.frames_peak': frames.peakInUse,
  };
  let total = 0;
  for (const [k, v] of Object.entries(c.syscalls).sort()) {
    s[`guest.syscalls.${k}`] = v;
    total += v;
  }
  s['guest.syscalls'] = total;
  if (balloon) {
    s['guest.balloon.target_changes'] = c.balloonTargetChanges;
    s['guest.balloon.runs'] = c.balloonRuns;
    s['guest.balloon.frames_out'] = c.balloonFramesOut;
    s['guest.balloon.frames_in'] = c.balloonFramesIn;
    s['guest.balloon.p2m_ops'] = c.balloonP2mOps;
    s['guest.balloon.short'] = c.balloonShort;
    s['guest.balloon.oom_deflates'] = c.balloonOomDeflates;
    s['guest.balloon.frames_peak'] = c.balloonPeak;
  }
  return s;
}
