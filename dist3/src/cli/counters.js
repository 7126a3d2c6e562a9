import { CPU_COUNTERS } from '../metrics/stats.js';
import { PAGERS, pagerKind } from '../pagers/registry.js';
import { UsageError } from './errors.js';
export function countersCommand(o) {
    const kinds = o.pager === undefined ? PAGERS : [pagerKind(o.pager)];
    if (kinds.some((k) => k === undefined)) {
        throw new UsageError(`--pager: unknown pager "${o.pager}" (known: ${PAGERS.map((k) => k.name).join(', ')})`);
    }
    const groups = [
        { group: 'cpu', counters: CPU_COUNTERS },
        ...kinds.flatMap((k) => (k === undefined ? [] : [{ group: k.name, counters: k.counters }])),
    ];
    if (o.json) {
        process.stdout.write(`${JSON.stringify(groups, null, 2)}\n`);
        return;
    }
    const width = Math.max(...groups.flatMap((g) => g.counters.map((c) => c.name.length)));
    const lines = [];
    for (const g of groups) {
        const where = g.group === 'cpu' ? 'every run' : `the ${g.group} pager; --stats SPEC.NAME, JSON pager.counters.NAME`;
        lines.push(`${g.group} counters (${where})${g.counters.length === 0 ? ': none' : ''}`);
        for (const c of g.counters)
            lines.push(`  ${c.name.padEnd(width)}  ${c.kind.padEnd(5)}  ${c.description}`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
}
//# sourceMappingURL=counters.js.map