/**
 * Differential runs: a scenario under `native` (the reference) and under
 * shadow pager specs, with the isolation checker after every exit; any
 * difference in the output text, or any thrown error, is a failure.
 */
import { runScenarioText } from '../guest/scenario/run.js';
import { ConfigError } from '../hypervisor/pager.js';
import { NativePager } from '../pagers/native/native.js';
import { createPager } from '../pagers/registry.js';
export function runNative(text) {
    return runScenarioText(text, { pager: new NativePager(), layout: 'identity', seed: 0 });
}
/** The output under one shadow spec; null when the pager refuses the pool at attach as too small for the vCPUs. */
export function runShadow(text, run) {
    try {
        return runScenarioText(text, { layout: run.layout, seed: run.seed, pager: createPager(run.spec, { check: true }) });
    }
    catch (e) {
        if (e instanceof ConfigError)
            return null; // refused at attach, before the guest ran
        throw e;
    }
}
/** The failure of one run against the native output, or null. */
export function compareRun(text, native, run) {
    let out;
    try {
        out = runShadow(text, run);
    }
    catch (e) {
        return { ...run, kind: 'error', detail: firstLine(e.message) };
    }
    if (out === null || out === native)
        return null;
    const a = native.split('\n');
    const b = out.split('\n');
    let i = 0;
    while (a[i] === b[i])
        i++;
    return { ...run, kind: 'mismatch', detail: `native ${a[i] ?? '(end)'} but ${b[i] ?? '(end)'}` };
}
/** The first failing run, or null. */
export function firstFailure(text, runs, native = runNative(text)) {
    for (const run of runs) {
        const f = compareRun(text, native, run);
        if (f !== null)
            return f;
    }
    return null;
}
function firstLine(s) {
    const i = s.indexOf('\n');
    return i < 0 ? s : s.slice(0, i);
}
//# sourceMappingURL=differential.js.map