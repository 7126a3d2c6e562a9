import { GuestPort } from '../port.js';
import { Kernel } from './kernel.js';
import { layoutFor } from './layout.js';
/** A booted guest kernel with the workload's first process started, not yet run. */
export function startWorkload(o) {
    const machine = { vcpus: o.params.vcpus, memory: o.params.memory, maxphyaddr: layoutFor(o.mode).maxphyaddr };
    const port = new GuestPort(machine, {
        pager: o.pager,
        layout: o.layout,
        seed: o.params.seed,
        tlb: o.tlb,
        out: o.out,
        digest: true,
    });
    port.autoLine = true;
    port.recorder = o.recorder ?? null;
    const kernel = new Kernel(port, { mode: o.mode, pcid: o.pcid, thp: o.params.thp, verify: o.verify ?? false });
    kernel.boot();
    o.workload.start(kernel, o.params);
    return { port, kernel };
}
export function runWorkload(o) {
    const t0 = performance.now();
    const { port, kernel } = startWorkload(o);
    let slices = 0;
    const progress = o.onProgress;
    kernel.run(progress === undefined ? undefined : () => (++slices & 255) === 0 && progress(port.ops));
    const seconds = (performance.now() - t0) / 1000;
    port.finish();
    return { port, kernel, digest: port.digest, ops: port.ops, seconds };
}
//# sourceMappingURL=run.js.map