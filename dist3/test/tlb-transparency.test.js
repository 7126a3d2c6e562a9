/**
 * Property: for well-behaved scenarios the TLB never changes the outcome, and
 * neither does where guest frames sit in machine memory — natively, and
 * under a variant of a registered pager (src/pagers/registry.ts; each run
 * picks one) with the smallest TLB. Scenarios come from the generator
 * (every mode, several address spaces and vCPUs, edits by alias and pwrite,
 * PCID, globals, recursive maps, superpages).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { NO_TLB } from '../src/arch/x86/tlb.js';
import { TINY_TLB } from '../src/cli/options.js';
import { GEN_MODES, generateScenario } from '../src/guest/scenario/generate.js';
import { allVariants, createPager } from '../src/pagers/registry.js';
import { runText } from './support/run.js';
const RUNS = Number(process.env.UMBRA_PROPERTY_RUNS ?? 60);
/** The generator's guests have at most this many vCPUs; a variant's pool is sized for it. */
const VARIANTS = allVariants(4);
for (const mode of GEN_MODES) {
    test(`TLB and placement do not change well-behaved output (${mode})`, () => {
        fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.integer({ min: 20, max: 200 }), fc.nat(VARIANTS.length - 1), (seed, ops, v) => {
            const text = generateScenario(seed, { mode, ops, memoryBytes: seed % 8 === 0 ? 0x180000000 : 0x800000 });
            const reference = runText(text);
            assert.equal(runText(text, { tlb: NO_TLB }), reference, 'TLB off');
            assert.equal(runText(text, { tlb: TINY_TLB }), reference, 'tiny TLB');
            assert.equal(runText(text, { layout: 'scatter', seed: seed ^ 0x5a5a }), reference, 'scattered placement');
            const spec = VARIANTS[v];
            assert.equal(runText(text, { pager: createPager(spec), tlb: TINY_TLB }), reference, `${spec}, tiny TLB`);
        }), { numRuns: RUNS });
    });
}
test('the generator produces scenarios that do something: reads, faults and edits', () => {
    const text = generateScenario(1, { mode: '4-level', ops: 400 });
    const out = runText(text);
    assert.ok((out.match(/"value"/g) ?? []).length > 20);
    assert.ok((out.match(/"fault"/g) ?? []).length > 5);
    assert.ok(text.includes('"invlpg"') || text.includes('"flush"'));
});
//# sourceMappingURL=tlb-transparency.test.js.map