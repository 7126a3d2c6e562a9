/**
 * The CLI's readers of user files, each with its limit (src/import/input.ts
 * enforces them); every failure is a one-line UsageError.
 */
import { MAX_LINE_BYTES, type Scenario, ScenarioError, ScenarioParser } from '../guest/scenario/parse.js';
import { forEachLineBytes, InputError, readWholeText } from '../import/input.js';
import { type CostModel, CostsError, DEFAULT_COSTS, parseCosts } from '../metrics/costs.js';
import { userErrors } from './errors.js';

/** A scenario, parsed whole before it runs (its operations are capped too: MAX_SCENARIO_OPS). */
export const MAX_SCENARIO_BYTES = 2 ** 31;
/** Files read whole: a cost file or QEMU `info registers` text is a few KiB. */
export const MAX_SMALL_FILE = 1 << 20;

/** A scenario file (or "-"), streamed line by line and validated whole (ScenarioError → `FILE:LINE: reason`). */
export function readScenario(file: string): Scenario {
  return userErrors(file, () => {
    const parser = new ScenarioParser(file);
    parser.decode = utf8Text;
    const lines = forEachLineBytes(
      file,
      { maxLine: MAX_LINE_BYTES, maxBytes: MAX_SCENARIO_BYTES, what: 'a scenario' },
      (b, start, end, n) => parser.bytes(b, start, end, n),
    );
    return parser.finish(lines);
  }, [ScenarioError, InputError]);
}

/** A line's bytes as text, as the line reader has always decoded them (Buffer's UTF-8). */
function utf8Text(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');
}

/** A small text file read whole (`what`: "a cost file"). */
export function readSmallFile(file: string, what: string): string {
  return userErrors(file, () => readWholeText(file, MAX_SMALL_FILE, what), [InputError]);
}

/** A cost file (--costs): a JSON object overriding any subset of `base` (docs/costs.md). */
export function loadCosts(file: string, base: Readonly<CostModel> = DEFAULT_COSTS): CostModel {
  return userErrors(file, () => parseCosts(readWholeText(file, MAX_SMALL_FILE, 'a cost file'), file, base), [
    InputError,
    CostsError,
  ]);
}
