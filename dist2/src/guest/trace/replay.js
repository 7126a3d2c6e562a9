/**
 * Replaying a trace: its operations run through a fresh GuestPort exactly as
 * a scenario runner would run its converted scenario, so the output is the
 * same bytes as `umbra exec` of `umbra trace convert`'s JSONL.
 */
import { GuestPort } from '../port.js';
import { runOps } from '../scenario/run.js';
/** Replay `trace`; throws TraceError on a bad trace. */
export function replayTrace(trace, opts) {
    if (opts.verify ?? true)
        for (const _ of trace.blocks())
            ;
    const port = new GuestPort(trace.machine, opts);
    port.autoLine = true;
    const t0 = performance.now(); // a global in Node and browsers alike
    let done = 0;
    for (const batch of trace.blocks()) {
        runOps(port, batch);
        done += batch.count;
        opts.onProgress?.(done, trace.ops);
    }
    const seconds = (performance.now() - t0) / 1e3;
    port.finish();
    return { port, meta: trace.meta, trailer: trace.trailer, ops: done, seconds };
}
//# sourceMappingURL=replay.js.map