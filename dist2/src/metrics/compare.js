/**
 * Side-by-side comparison of runs of the same workload under different
 * pagers: one column per run (the baseline first, normally native), one row
 * per figure, rendered as aligned text, JSON or CSV.
 */
import { DEFAULT_COSTS, declaredCounters, exitCause, exitCounters, modelCycles, pagerCounters, runCounters, } from './costs.js';
/** Build the comparison rows. The baseline run moves to column 0; the others keep their order. */
export function compareRows(runs, costs = DEFAULT_COSTS, opts = {}) {
    const ordered = orderRuns(runs, opts.baseline);
    const pagers = columnNames(ordered);
    const counters = ordered.map(pagerCounters);
    const decls = ordered.map((r) => runCounters(r, opts.counters ?? declaredCounters));
    const cycles = ordered.map((r, i) => modelCycles(r, costs, decls[i]));
    const rows = [];
    const row = (key, label, kind, values) => {
        rows.push({ key, label, kind, values });
    };
    const stat = (k) => ordered.map((r) => (typeof r[k] === 'number' ? r[k] : null));
    row('ops', 'guest operations', 'count', stat('ops'));
    row('tlb_hit_rate', 'TLB hit rate', 'ratio', stat('tlb_hit_rate'));
    row('walks', 'page walks', 'count', stat('walks'));
    row('memory_refs_per_walk', 'memory refs per walk', 'decimal', stat('memory_refs_per_walk'));
    // The pagers' rows, as their counters declare them: the union over the runs, first seen first;
    // each run's cell is its own counter declared with that row.
    const byRow = (key) => ordered.map((_, i) => {
        const d = decls[i]?.find((x) => x.report?.row?.key === key);
        return d === undefined ? null : (counters[i]?.[d.name] ?? null);
    });
    const shown = new Set();
    for (const d of decls.flat()) {
        const r = d.report?.row;
        if (r === undefined || shown.has(r.key))
            continue;
        shown.add(r.key);
        row(r.key, r.label, 'count', byRow(r.key));
        if (d.totalOf !== 'exit')
            continue;
        // After the total of exits, the exits by cause: every cause a run reports.
        const exits = ordered.map((run, i) => new Map(exitCounters(run, decls[i]).map((e) => [exitCause(e), e.name])));
        for (const cause of union(exits.map((m) => [...m.keys()]))) {
            row(`exits.${cause}`, `exits: ${cause}`, 'count', exits.map((m, i) => {
                const name = m.get(cause);
                return name === undefined ? null : (counters[i]?.[name] ?? null);
            }));
        }
    }
    row('page_faults', 'guest page faults', 'count', stat('page_faults'));
    row('cycles', 'modelled cycles', 'count', cycles.map((m) => m.total));
    const base = cycles[0]?.total ?? 0;
    row('overhead_percent', `overhead vs ${pagers[0]}`, 'percent', cycles.map((m) => (base > 0 ? ((m.total - base) / base) * 100 : null)));
    for (const part of union(cycles.map((m) => Object.keys(m.parts)))) {
        row(`cycles.${part}`, `cycles: ${part}`, 'count', cycles.map((m) => m.parts[part] ?? 0));
    }
    for (const k of union(ordered.map((r) => Object.keys(r).filter((x) => x.startsWith('guest.'))))) {
        row(k, k, 'count', stat(k));
    }
    return { pagers, baseline: pagers[0], rows };
}
/** The runs given cannot be compared as asked (the user's input): front ends report it as one line, exit status 2. */
export class CompareError extends Error {
}
/**
 * The runs in column order: the baseline (`baseline`, else "native" when a
 * native run is given, else the first run) first, the others in their order.
 */
export function orderRuns(runs, baseline) {
    if (runs.length === 0)
        throw new CompareError('nothing to compare: no runs given');
    const wanted = baseline ?? (runs.some((r) => r.pager === 'native') ? 'native' : undefined);
    let b = 0;
    if (wanted !== undefined) {
        b = runs.findIndex((r) => r.pager === wanted);
        if (b < 0)
            throw new CompareError(`baseline pager "${wanted}" is not among the runs`);
    }
    return [runs[b], ...runs.filter((_, i) => i !== b)];
}
/** Aligned text: labels left, numbers right with thousands separators, "-" where a figure does not apply. */
export function renderText(c) {
    const header = ['', ...c.pagers];
    const body = c.rows.map((r) => [r.label, ...r.values.map((v) => formatCell(v, r.kind))]);
    const all = [header, ...body];
    const widths = header.map((_, i) => Math.max(...all.map((line) => line[i].length)));
    return all
        .map((line) => line
        .map((cell, i) => (i === 0 ? cell.padEnd(widths[0]) : cell.padStart(widths[i])))
        .join('  ')
        .trimEnd())
        .join('\n')
        .concat('\n');
}
/**
 * JSON: the run compared (workload, size, seed, layout, …) and the digest of
 * what the guest observed (the same under every pager, or there would be no
 * comparison), then raw numbers, one object per row with its values keyed by
 * column name.
 */
export function renderJson(c, run = {}, digest = null) {
    const rows = c.rows.map((r) => ({
        key: r.key,
        label: r.label,
        kind: r.kind,
        values: Object.fromEntries(c.pagers.map((p, i) => [p, r.values[i] ?? null])),
    }));
    return `${JSON.stringify({ run, digest, baseline: c.baseline, pagers: c.pagers, rows }, null, 2)}\n`;
}
/** CSV (RFC 4180 quoting, LF line ends): key, label, then one raw-number column per pager; empty where a figure does not apply. */
export function renderCsv(c) {
    const lines = [['key', 'label', ...c.pagers], ...c.rows.map((r) => [r.key, r.label, ...r.values.map(rawCell)])];
    return lines
        .map((l) => l.map(csvField).join(','))
        .join('\n')
        .concat('\n');
}
export function formatCell(v, kind) {
    if (v === null || Number.isNaN(v))
        return '-';
    switch (kind) {
        case 'ratio':
            return `${(v * 100).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })} %`;
        case 'percent': {
            const s = v.toLocaleString('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 });
            return `${v > 0 && s !== '0.0' ? '+' : ''}${s === '-0.0' ? '0.0' : s} %`;
        }
        case 'decimal':
            return v.toLocaleString('en-US', { maximumFractionDigits: 2 });
        default:
            return v.toLocaleString('en-US', { maximumFractionDigits: 0 });
    }
}
function rawCell(v) {
    return v === null || Number.isNaN(v) ? '' : String(v);
}
function csvField(s) {
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
/** Items of several lists, each once, in first-seen order. */
function union(lists) {
    return [...new Set(lists.flat())];
}
/** Column names: the runs' pager names, a repeated one numbered ("shadow", "shadow (2)"). */
export function columnNames(runs) {
    const seen = new Map();
    return runs.map((r) => {
        const n = String(r.pager ?? '?');
        const k = (seen.get(n) ?? 0) + 1;
        seen.set(n, k);
        return k === 1 ? n : `${n} (${k})`;
    });
}
//# sourceMappingURL=compare.js.map