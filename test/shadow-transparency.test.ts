/**
 * Transparency of the shadow pager: for generated well-behaved scenarios in
 * every paging mode (several address spaces and vCPUs, CR3 switches with
 * PCID, PTE edits through aliases and pwrite, INVLPG/INVPCID, recursive maps,
 * superpages, read-only p2m ranges), the guest-visible output is identical
 * under native and shadow paging, in identity and scattered placement, for
 * every combination of the shadow optimizations (each run picks one) — with
 * the isolation checker run after every exit.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { GEN_MODES, generateScenario } from '../src/guest/scenario/generate.js';
import type { ShadowSwitches } from '../src/pagers/shadow/options.js';
import { ShadowPager } from '../src/pagers/shadow/shadow.js';
import { runText } from './support/run.js';

const RUNS = Number(process.env.UMBRA_PROPERTY_RUNS ?? 1000);

for (const mode of GEN_MODES) {
  test(`shadow paging is transparent (${mode})`, () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        fc.integer({ min: 20, max: 200 }),
        fc.boolean(),
        fc.record({
          oos: fc.boolean(),
          prefetch: fc.constantFrom(0, 1, 16, 512),
          fastpath: fc.boolean(),
          unshadow: fc.boolean(),
          pool: fc.constantFrom(-1, 0, 64, 80),
        }),
        (seed, ops, ro, sw: Partial<ShadowSwitches>) => {
          // Now and then a guest above 4 GiB, so scattered frames (and PSE-36 pages) lie high.
          const text = generateScenario(seed, { mode, ops, memoryBytes: seed % 8 === 0 ? 0x180000000 : 0x800000 });
          // A read-only (ROM) range over part of the data frames.
          const readOnly: Array<[number, number]> = ro ? [[0x300 + (seed % 0x100), 0x340 + (seed % 0x100)]] : [];
          const native = runText(text, { readOnly });
          assert.equal(
            runText(text, { pager: new ShadowPager({ check: true, switches: sw }), readOnly }),
            native,
            'identity placement',
          );
          const scattered = runText(text, {
            pager: new ShadowPager({ check: true, switches: sw }),
            layout: 'scatter',
            seed,
            readOnly,
          });
          assert.equal(scattered, native, 'scattered placement');
        },
      ),
      { numRuns: RUNS },
    );
  });
}
