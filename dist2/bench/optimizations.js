/**
 * The tables of docs/optimizations.md: every workload under the shadow pager
 * with all optimizations, with each one switched off in turn, and with all
 * off; per run the exits by cause, emulated page-table writes, resyncs,
 * shadow memory and modelled cycles (overhead against native). The guest's
 * outcome is checked to be identical under every variant.
 *
 *   npm run bench:opt [-- SIZE]      (default size 0.25)
 */
import { runWorkload } from '../src/guest/kernel/run.js';
import { WORKLOADS } from '../src/guest/kernel/workloads.js';
import { useNodeSha256 } from '../src/io/sha256.js';
import { DEFAULT_COSTS, modelCycles } from '../src/metrics/costs.js';
import { collectStats } from '../src/metrics/stats.js';
import { createPager } from '../src/pagers/registry.js';
useNodeSha256();
const size = Number(process.argv[2] ?? 0.25);
const VARIANTS = [
    'shadow',
    'shadow:-oos',
    'shadow:-prefetch',
    'shadow:-fastpath',
    'shadow:-unshadow',
    'shadow:pool=64',
    'shadow:+rmap',
    'shadow:-oos:-prefetch:-fastpath:-unshadow:-pool',
];
function run(name, spec) {
    const w = WORKLOADS.find((x) => x.name === name);
    if (w === undefined)
        throw new Error(name);
    const pager = createPager(spec);
    const r = runWorkload({
        workload: w,
        params: { size, seed: 1, vcpus: w.defaults.vcpus, memory: w.defaults.memory, thp: false },
        mode: '4-level',
        pcid: true,
        pager,
        layout: 'identity',
    });
    return { stats: { ...collectStats(pager, r.port.cpus, r.ops, r.seconds), ...r.kernel.stats() }, digest: r.digest };
}
const n = (v) => Math.round(v).toLocaleString('en-US');
console.log(`Shadow optimizations, size ${size}, seed 1, 4-level guest, PCID on, default costs\n`);
for (const w of WORKLOADS) {
    const native = run(w.name, 'native');
    const base = modelCycles(native.stats, DEFAULT_COSTS).total;
    console.log(`### ${w.name} (${n(native.stats.ops)} guest operations)\n`);
    console.log('| pager | exits | page faults | CR writes | INVLPG | emulated PT writes | resyncs | entries changed / compared | prefetched | fast faults | unshadowed | pool evictions | shadow frames (peak) | overhead vs native |');
    console.log('|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|');
    for (const spec of VARIANTS) {
        const r = run(w.name, spec);
        if (r.digest !== native.digest)
            throw new Error(`${w.name} under ${spec}: the guest saw something else than natively`);
        const s = r.stats;
        const c = (k) => (typeof s[`${spec}.${k}`] === 'number' ? s[`${spec}.${k}`] : 0);
        const over = (100 * (modelCycles(s, DEFAULT_COSTS).total - base)) / base;
        console.log(`| \`${spec}\` | ${n(c('exits'))} | ${n(c('exit.page_fault'))} | ${n(c('exit.cr_write'))} | ${n(c('exit.invlpg'))} | ${n(c('emulate.pt_write'))} | ${n(c('oos.resyncs'))} | ${n(c('oos.entries_changed'))} / ${n(c('oos.entries_compared'))} | ${n(c('prefetch.entries'))} | ${n(c('fastpath.not_present') + c('fastpath.mmio'))} | ${n(c('unshadow.frames'))} | ${n(c('pool.evictions') + c('pool.blowouts'))} | ${n(c('peak_shadow_frames'))} | +${over.toFixed(1)}% |`);
    }
    console.log('');
}
//# sourceMappingURL=optimizations.js.map