/**
 * Transparency of every registered pager (src/pagers/registry.ts): for
 * generated well-behaved scenarios in every paging mode (several address
 * spaces and vCPUs, CR3 switches with PCID, PTE edits through aliases and
 * pwrite, INVLPG/INVPCID, recursive maps, superpages, read-only p2m ranges),
 * the guest-visible output is identical under native and under each pager
 * variant (every combination of a pager's switches; each run picks one), in
 * identity and scattered placement — with the pager's isolation checker run
 * after every exit. A new pager registered with its variants is tested here
 * without a line changed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { GEN_MODES, generateScenario } from '../src/guest/scenario/generate.js';
import { allVariants, createPager } from '../src/pagers/registry.js';
import { runText } from './support/run.js';
const RUNS = Number(process.env.UMBRA_PROPERTY_RUNS ?? 1000);
/** The generator's guests have at most this many vCPUs; a variant's pool is sized for it. */
const VARIANTS = allVariants(4);
for (const mode of GEN_MODES) {
    test(`every pager is transparent (${mode})`, () => {
        fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.integer({ min: 20, max: 200 }), fc.boolean(), fc.nat(VARIANTS.length - 1), (seed, ops, ro, v) => {
            const spec = VARIANTS[v];
            // Now and then a guest above 4 GiB, so scattered frames (and PSE-36 pages) lie high.
            const text = generateScenario(seed, { mode, ops, memoryBytes: seed % 8 === 0 ? 0x180000000 : 0x800000 });
            // A read-only (ROM) range over part of the data frames.
            const readOnly = ro ? [[0x300 + (seed % 0x100), 0x340 + (seed % 0x100)]] : [];
            const native = runText(text, { readOnly });
            assert.equal(runText(text, { pager: createPager(spec, { check: true }), readOnly }), native, `${spec}, identity`);
            const scattered = runText(text, {
                pager: createPager(spec, { check: true }),
                layout: 'scatter',
                seed,
                readOnly,
            });
            assert.equal(scattered, native, `${spec}, scattered placement`);
        }), { numRuns: RUNS });
    });
}
//# sourceMappingURL=shadow-transparency.test.js.map