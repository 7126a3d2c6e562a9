/**
 * Regression scenarios found by `npm run fuzz` (test/regressions/*.jsonl,
 * picked up automatically): each is well behaved, and its output under
 * every shadow pager spec, in identity and scattered placement, with the
 * isolation checker on, is the native output.
 */
import './support/node.js';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { compareRun, runNative } from '../src/fuzz/differential.js';
import { staleAccess } from '../src/guest/scenario/coherence.js';
import { parseScenario } from '../src/guest/scenario/parse.js';
import { allVariants } from '../src/pagers/registry.js';
// tsc does not copy .jsonl files: read them from the source tree.
const DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../test/regressions');
const files = readdirSync(DIR)
    .filter((f) => f.endsWith('.jsonl'))
    .sort();
test('the regression directory holds scenarios', () => {
    assert.ok(files.length > 0);
});
for (const file of files) {
    test(`regression ${file}: every shadow spec sees what native sees`, () => {
        const text = readFileSync(join(DIR, file), 'utf8');
        const { machine } = parseScenario(text, file);
        assert.equal(staleAccess(text), null, 'the scenario is well behaved');
        const seed = Number(/layout scatter seed (\d+)/.exec(text)?.[1] ?? 1);
        const native = runNative(text);
        const failures = [];
        for (const spec of allVariants(machine.vcpus)) {
            for (const layout of ['identity', 'scatter']) {
                const f = compareRun(text, native, { spec, layout, seed });
                if (f !== null)
                    failures.push(`${spec} ${layout}: ${f.kind}: ${f.detail}`);
            }
        }
        assert.deepEqual(failures, []);
    });
}
//# sourceMappingURL=regressions.test.js.map