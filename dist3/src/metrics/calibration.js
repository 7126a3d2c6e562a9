/**
 * How close a workload comes to the real program it imitates: its figures
 * next to those measured on a real Linux machine
 * (shared/corpus/realworkloads/README.md, Linux 6.18, 2 vCPUs, PCID on).
 * Figures that scale with --size are compared per process.
 */
import { own } from '../util/json.js';
const per = (a, b) => (b === 0 ? 0 : a / b);
const MM_SYSCALLS = ['mmap', 'munmap', 'mprotect', 'brk'];
const mmSyscalls = (g) => MM_SYSCALLS.reduce((s, k) => s + g(`guest.syscalls.${k}`), 0);
const REFERENCES = {
    compile: [
        { label: 'processes created', real: 127, model: (g) => g('guest.processes'), perRun: true },
        { label: 'page faults per process', real: 1204, model: (g) => per(g('guest.page_faults'), g('guest.processes')) },
        {
            label: 'faults that are writes',
            real: 82,
            unit: '%',
            model: (g) => 100 * per(g('guest.page_faults.write'), g('guest.page_faults')),
        },
        // 5,420 memory-management syscalls/s over 1.48 s and 127 processes.
        {
            label: 'mm syscalls per process',
            real: (5420 * 1.48) / 127,
            model: (g) => per(mmSyscalls(g), g('guest.processes')),
        },
        { label: 'TLB shootdown IPIs per run', real: 27, model: (g) => g('guest.shootdown_ipis'), perRun: true },
    ],
    forkexec: [
        { label: 'page faults per process', real: 135, model: (g) => per(g('guest.page_faults'), g('guest.processes')) },
        {
            label: 'faults that are copy-on-write',
            real: 36,
            unit: '%',
            model: (g) => 100 * per(g('guest.page_faults.cow') + g('guest.page_faults.cow_reuse'), g('guest.page_faults')),
        },
        {
            label: 'faults on instruction fetch',
            real: 28,
            unit: '%',
            model: (g) => 100 * per(g('guest.page_faults.fetch'), g('guest.page_faults')),
        },
        // 23 k mm syscalls/s at 1,095 commands/s.
        { label: 'mm syscalls per process', real: 23000 / 1095, model: (g) => per(mmSyscalls(g), g('guest.processes')) },
        // 128 shootdowns over 6,000 commands.
        {
            label: 'TLB shootdown IPIs per 1,000 processes',
            real: (128 / 6000) * 1000,
            model: (g) => (1000 * g('guest.shootdown_ipis')) / Math.max(1, g('guest.processes')),
        },
    ],
};
/** Lines "figure: model vs real (difference)" for a workload with reference figures. */
export function calibration(workload, s, size) {
    const refs = own(REFERENCES, workload);
    if (refs === undefined)
        return [];
    const g = (k) => (typeof s[k] === 'number' ? s[k] : 0);
    const w = Math.max(...refs.map((r) => r.label.length));
    return refs.map((r) => {
        const m = r.model(g);
        const real = r.perRun ? r.real * size : r.real;
        const fmt = (v) => r.unit === '%' ? `${v.toFixed(1)}%` : v >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(1);
        const diff = real === 0 ? '' : ` (${m >= real ? '+' : ''}${((100 * (m - real)) / real).toFixed(0)}%)`;
        return `${r.label.padEnd(w)}  ${fmt(m).padStart(8)}  real ${fmt(real)}${diff}`;
    });
}
/** The reference figures, for docs and tests. */
export function referenceFigures(workload) {
    return (own(REFERENCES, workload) ?? []).map((r) => ({ label: r.label, real: r.real }));
}
//# sourceMappingURL=calibration.js.map