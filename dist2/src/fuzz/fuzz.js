/**
 * The differential fuzzer: fast-check draws a case (a hostile scenario's
 * knobs and a handful of shadow pager runs), the scenario runs under native
 * and under each run's spec and layout; the first failure is shrunk by
 * fast-check (fewer operations, vCPUs, tables…), then minimised line by line
 * (minimise.ts). Several rounds run until the time or case budget is spent:
 * round r uses fast-check seed `seed + r`, so `--seed S --runs K` replays
 * the K-th case of round S.
 */
import fc from 'fast-check';
import { GEN_MODES } from '../guest/scenario/generate.js';
import { generateHostile } from '../guest/scenario/hostile.js';
import { allVariants } from '../pagers/registry.js';
import { compareRun, firstFailure, runNative } from './differential.js';
import { minimiseLines } from './minimise.js';
export const RUNS_PER_CASE = 6;
const SPEC_COUNT = allVariants(1).length;
const MIB = 0x100000;
export const fuzzCase = fc.record({
    seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    mode: fc.constantFrom(...GEN_MODES),
    ops: fc.integer({ min: 10, max: 250 }),
    vcpus: fc.oneof({ arbitrary: fc.integer({ min: 1, max: 4 }), weight: 4 }, fc.integer({ min: 1, max: 64 })),
    maxphyaddr: fc.integer({ min: 32, max: 52 }),
    memoryBytes: fc.oneof({ arbitrary: fc.constantFrom(MIB, 4 * MIB, 16 * MIB), weight: 6 }, fc.constant(0x180000000)),
    roots: fc.integer({ min: 1, max: 5 }),
    tables: fc.integer({ min: 4, max: 40 }),
    pcid: fc.boolean(),
    runs: fc.array(fc.record({ spec: fc.nat(SPEC_COUNT - 1), scatter: fc.boolean() }), {
        minLength: RUNS_PER_CASE,
        maxLength: RUNS_PER_CASE,
    }),
});
export function scenarioOf(c) {
    return generateHostile(c.seed, c);
}
export function runsOf(c) {
    const specs = allVariants(c.vcpus);
    return c.runs.map((r) => ({
        spec: specs[r.spec],
        layout: r.scatter ? 'scatter' : 'identity',
        seed: c.seed,
    }));
}
/** Property calls fast-check may spend shrinking one failure. */
const SHRINK_BUDGET = 40;
/** Two failures alike enough that minimising may trade one for the other (numbers aside). */
function sameFailure(a, b) {
    const shape = (f) => (f.kind === 'mismatch' ? f.kind : f.detail.replace(/\d+/g, 'N'));
    return shape(a) === shape(b);
}
export function fuzz(o) {
    const start = Date.now();
    const deadline = start + (o.timeMs ?? Number.POSITIVE_INFINITY);
    const limit = o.runs ?? Number.POSITIVE_INFINITY;
    const failures = [];
    let cases = 0;
    for (let round = o.seed; cases < limit && Date.now() < deadline; round++) {
        let count = 0;
        let shrinkCalls = -1;
        const property = fc.property(fuzzCase, (c) => {
            if (shrinkCalls >= 0 && (++shrinkCalls > SHRINK_BUDGET || Date.now() > deadline))
                return true;
            if (shrinkCalls < 0)
                count++;
            const failed = firstFailure(scenarioOf(c), runsOf(c)) !== null;
            if (failed && shrinkCalls < 0)
                shrinkCalls = 0;
            return !failed;
        });
        const d = fc.check(property, {
            seed: round,
            numRuns: Math.min(limit - cases, 2 ** 31 - 1),
            interruptAfterTimeLimit: Number.isFinite(deadline) ? Math.max(1, deadline - Date.now()) : undefined,
        });
        cases += count;
        if (!d.failed || d.counterexample === null)
            break;
        const c = d.counterexample[0];
        const scenario = scenarioOf(c);
        const failure = firstFailure(scenario, runsOf(c));
        const stillFails = (t) => {
            const f = compareRun(t, runNative(t), failure);
            return f !== null && sameFailure(f, failure);
        };
        const minimised = o.minimise === false ? null : minimiseLines(scenario, stillFails);
        const found = { round, caseNumber: count, fuzzCase: c, failure, scenario, minimised };
        failures.push(found);
        o.onFailure?.(found);
    }
    return { cases, failures, ms: Date.now() - start };
}
//# sourceMappingURL=fuzz.js.map