/** Test helpers: run a scenario text in-process and return its stdout text. */
import './node.js';
import { runScenarioText } from '../../src/guest/scenario/run.js';
import { NativePager } from '../../src/pagers/native/native.js';
export function runText(text, spec = {}) {
    return runScenarioText(text, {
        pager: spec.pager ?? new NativePager(),
        readOnly: spec.readOnly,
        layout: spec.layout ?? 'identity',
        seed: spec.seed ?? 0,
        tlb: spec.tlb,
    }, 'test');
}
//# sourceMappingURL=run.js.map