/**
 * The guest kernel's event counters (what a kernel exports in /proc/vmstat
 * and perf counters): one named counter per event, reported with the
 * "guest." prefix under --stats and in every comparison.
 *
 * Rules: a counter counts one kind of event and is only ever incremented;
 * names in the report are stable (tests, docs and saved comparisons use them).
 */
export class KernelCounters {
    processes = 0;
    threads = 0;
    exits = 0;
    kills = 0;
    execs = 0;
    contextSwitches = 0;
    cr3Switches = 0;
    pageFaults = 0;
    faultWrite = 0;
    faultFetch = 0;
    faultDemandZero = 0;
    faultZeroPage = 0;
    faultFile = 0;
    faultCow = 0;
    faultCowReuse = 0;
    faultStackGrowth = 0;
    faultHuge = 0;
    faultSpurious = 0;
    faultSegv = 0;
    syscalls = {};
    shootdownIpis = 0;
    flushesLocal = 0;
    flushesFull = 0;
    tablesAllocated = 0;
    tablesFreed = 0;
    pteWrites = 0;
    pteReads = 0;
    pageCacheFills = 0;
    agedYoung = 0;
    userAccesses = 0;
}
/** Counters as a flat record, names prefixed "guest.". */
export function counterStats(c, frames) {
    const s = {
        'guest.processes': c.processes,
        'guest.threads': c.threads,
        'guest.execs': c.execs,
        'guest.exits': c.exits,
        'guest.kills': c.kills,
        'guest.context_switches': c.contextSwitches,
        'guest.cr3_switches': c.cr3Switches,
        'guest.page_faults': c.pageFaults,
        'guest.page_faults.write': c.faultWrite,
        'guest.page_faults.fetch': c.faultFetch,
        'guest.page_faults.demand_zero': c.faultDemandZero,
        'guest.page_faults.zero_page': c.faultZeroPage,
        'guest.page_faults.file': c.faultFile,
        'guest.page_faults.cow': c.faultCow,
        'guest.page_faults.cow_reuse': c.faultCowReuse,
        'guest.page_faults.stack_growth': c.faultStackGrowth,
        'guest.page_faults.huge': c.faultHuge,
        'guest.page_faults.spurious': c.faultSpurious,
        'guest.page_faults.segv': c.faultSegv,
        'guest.user_accesses': c.userAccesses,
        'guest.pte_reads': c.pteReads,
        'guest.pte_writes': c.pteWrites,
        'guest.tables_allocated': c.tablesAllocated,
        'guest.tables_freed': c.tablesFreed,
        'guest.page_cache_fills': c.pageCacheFills,
        'guest.tlb_flushes.pages': c.flushesLocal,
        'guest.tlb_flushes.full': c.flushesFull,
        'guest.shootdown_ipis': c.shootdownIpis,
        'guest.pages_aged_young': c.agedYoung,
        'guest.frames_peak': frames.peakInUse,
    };
    let total = 0;
    for (const [k, v] of Object.entries(c.syscalls).sort()) {
        s[`guest.syscalls.${k}`] = v;
        total += v;
    }
    s['guest.syscalls'] = total;
    return s;
}
//# sourceMappingURL=counters.js.map