import { exitCause, exitCounters, pagerCounters, runCounters } from './costs.js';
/** The counters every run has, whatever its pager (the `cpu` part of a stats document), for `umbra counters`. */
export const CPU_COUNTERS = [
    {
        name: 'ops',
        kind: 'count',
        description: 'guest operations run (every line of a scenario, every operation of a workload)',
    },
    { name: 'reads', kind: 'count', description: 'guest data reads' },
    { name: 'writes', kind: 'count', description: 'guest data writes' },
    { name: 'fetches', kind: 'count', description: 'guest instruction fetches' },
    { name: 'page_faults', kind: 'count', description: '#PF delivered to the guest (the same under every pager)' },
    { name: 'gp_faults', kind: 'count', description: '#GP delivered to the guest' },
    { name: 'cr3_writes', kind: 'count', description: 'MOV to CR3 executed by the guest' },
    { name: 'invlpg', kind: 'count', description: 'INVLPG executed by the guest' },
    { name: 'invpcid', kind: 'count', description: 'INVPCID executed by the guest' },
    { name: 'tlb_hits', kind: 'count', description: 'translations found in the TLB' },
    { name: 'tlb_misses', kind: 'count', description: 'translations that needed a hardware walk' },
    { name: 'tlb_hit_rate', kind: 'gauge', description: 'tlb_hits / (tlb_hits + tlb_misses)' },
    { name: 'tlb_fills', kind: 'count', description: 'TLB entries filled after a walk' },
    { name: 'tlb_flushes', kind: 'count', description: 'TLB flush operations (by address or by context)' },
    {
        name: 'walks',
        kind: 'count',
        description: 'hardware page walks (of whatever the MMU walks: guest tables, shadows, P2M)',
    },
    { name: 'walk_entry_reads', kind: 'count', description: 'memory references made by hardware walks' },
    { name: 'memory_refs_per_walk', kind: 'gauge', description: 'walk_entry_reads / walks' },
];
export function collectStats(pager, cpus, ops, seconds) {
    const s = {
        pager: pager.name,
        ops,
        seconds: round(seconds),
        ops_per_second: Math.round(ops / Math.max(seconds, 1e-9)),
    };
    const sum = (f) => cpus.reduce((a, c) => a + f(c), 0);
    s.reads = sum((c) => c.counters.reads);
    s.writes = sum((c) => c.counters.writes);
    s.fetches = sum((c) => c.counters.fetches);
    s.page_faults = sum((c) => c.counters.pageFaults);
    s.gp_faults = sum((c) => c.counters.gpFaults);
    s.cr3_writes = sum((c) => c.counters.cr3Writes);
    s.invlpg = sum((c) => c.counters.invlpg);
    s.invpcid = sum((c) => c.counters.invpcid);
    const hits = sum((c) => c.tlb.hits);
    const misses = sum((c) => c.tlb.misses);
    s.tlb_hits = hits;
    s.tlb_misses = misses;
    s.tlb_hit_rate = hits + misses === 0 ? 0 : round(hits / (hits + misses));
    s.tlb_fills = sum((c) => c.tlb.fills);
    s.tlb_flushes = sum((c) => c.tlb.flushes);
    const walks = sum((c) => c.walker.walks);
    const refs = sum((c) => c.walker.entryReads);
    s.walks = walks;
    s.walk_entry_reads = refs;
    s.memory_refs_per_walk = walks === 0 ? 0 : round(refs / walks);
    for (const [k, v] of Object.entries(pager.stats()))
        s[`${pager.name}.${k}`] = v;
    return s;
}
/**
 * The pager's lines of a run's summary (`umbra run`), as its counters
 * declare them (`report.summary`): [heading, text] per line, in the order
 * their first figure is declared; a line appears when the run reports one
 * of its counters. A total of exits reads "N (cause n, cause n, …)".
 */
export function pagerSummary(s, counters = runCounters(s)) {
    const values = pagerCounters(s);
    const n = (v) => v.toLocaleString('en-US');
    const lines = new Map();
    for (const d of counters) {
        const where = d.report?.summary;
        const v = values[d.name];
        if (where === undefined || v === undefined)
            continue;
        const figure = d.totalOf === 'exit'
            ? `${n(v)} (${exitCounters(s, counters)
                .map((e) => `${exitCause(e)} ${n(values[e.name] ?? 0)}`)
                .join(', ')})`
            : `${n(v)} ${where.text ?? ''}`.trimEnd();
        lines.set(where.line, [...(lines.get(where.line) ?? []), figure]);
    }
    return [...lines].map(([heading, figures]) => [heading, figures.join(', ')]);
}
function round(x) {
    return Math.round(x * 1e4) / 1e4;
}
export function formatStats(s) {
    const w = Math.max(...Object.keys(s).map((k) => k.length));
    return `${Object.entries(s)
        .map(([k, v]) => `${k.padEnd(w)}  ${typeof v === 'number' ? v.toLocaleString('en-US') : v}`)
        .join('\n')}\n`;
}
const TIMING = new Set(['seconds', 'ops_per_second']);
export function statsDocument(s, run, digest) {
    const spec = String(s.pager);
    const doc = {
        run,
        digest,
        cpu: {},
        pager: { name: spec.split(':')[0], spec, counters: {} },
        guest: {},
        timing: { seconds: Number(s.seconds ?? 0), ops_per_second: Number(s.ops_per_second ?? 0) },
    };
    for (const [k, v] of Object.entries(s)) {
        if (typeof v !== 'number' || TIMING.has(k))
            continue;
        if (k.startsWith(`${spec}.`))
            doc.pager.counters[k.slice(spec.length + 1)] = v;
        else if (k.startsWith('guest.'))
            doc.guest[k.slice('guest.'.length)] = v;
        else
            doc.cpu[k] = v;
    }
    return doc;
}
/** The flat record of a document (what the cost model and comparison tables read). */
export function flatStats(d) {
    const s = { pager: d.pager.spec, ...d.cpu, ...d.timing };
    for (const [k, v] of Object.entries(d.pager.counters))
        s[`${d.pager.spec}.${k}`] = v;
    for (const [k, v] of Object.entries(d.guest))
        s[`guest.${k}`] = v;
    return s;
}
//# sourceMappingURL=stats.js.map