/**
 * The CLI's readers of user files, each with its limit (src/import/input.ts
 * enforces them); every failure is a one-line UsageError.
 */
import { MAX_LINE_BYTES, ScenarioError, ScenarioParser } from '../guest/scenario/parse.js';
import { forEachLine, InputError, readWholeText } from '../import/input.js';
import { CostsError, DEFAULT_COSTS, parseCosts } from '../metrics/costs.js';
import { userErrors } from './errors.js';
/** A scenario, parsed whole before it runs (its operations are capped too: MAX_SCENARIO_OPS). */
export const MAX_SCENARIO_BYTES = 2 ** 31;
/** Files read whole: a cost file or QEMU `info registers` text is a few KiB. */
export const MAX_SMALL_FILE = 1 << 20;
/** A scenario file (or "-"), streamed line by line and validated whole (ScenarioError → `FILE:LINE: reason`). */
export function readScenario(file) {
    return userErrors(file, () => {
        const parser = new ScenarioParser(file);
        const lines = forEachLine(file, { maxLine: MAX_LINE_BYTES, maxBytes: MAX_SCENARIO_BYTES, what: 'a scenario' }, (line, n) => parser.line(line, n));
        return parser.finish(lines);
    }, [ScenarioError, InputError]);
}
/** A small text file read whole (`what`: "a cost file"). */
export function readSmallFile(file, what) {
    return userErrors(file, () => readWholeText(file, MAX_SMALL_FILE, what), [InputError]);
}
/** A cost file (--costs): a JSON object overriding any subset of `base` (docs/costs.md). */
export function loadCosts(file, base = DEFAULT_COSTS) {
    return userErrors(file, () => parseCosts(readWholeText(file, MAX_SMALL_FILE, 'a cost file'), file, base), [
        InputError,
        CostsError,
    ]);
}
//# sourceMappingURL=input.js.map