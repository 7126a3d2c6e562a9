/**
 * A short run of the differential fuzzer (npm run fuzz) with a fixed seed:
 * hostile well-behaved scenarios, each under native and six shadow pager
 * specs and layouts with the isolation checker on, must all agree.
 */
import './support/node.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fuzz } from '../src/fuzz/fuzz.js';
const CASES = Number(process.env.UMBRA_FUZZ_CASES ?? 100);
test(`${CASES} fuzz cases: every shadow spec agrees with native`, () => {
    const r = fuzz({ seed: 1, runs: CASES, minimise: false });
    const failures = r.failures.map((f) => `seed ${f.round} case ${f.caseNumber}: ${f.failure.spec} ${f.failure.layout}: ${f.failure.detail}`);
    assert.deepEqual(failures, []);
    assert.equal(r.cases, CASES);
});
//# sourceMappingURL=fuzz.test.js.map