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
import { test } from 'node:test';
import fc from 'fast-check';
import { GEN_MODES } from '../src/guest/scenario/generate.js';
import { allVariants } from '../src/pagers/registry.js';
import { assertTransparent } from './support/run.js';

const RUNS = Number(process.env.UMBRA_PROPERTY_RUNS ?? 1000);
/** The generator's guests have at most this many vCPUs; a variant's pool is sized for it. */
const VARIANTS = allVariants(4);

for (const mode of GEN_MODES) {
  test(`every pager is transparent (${mode})`, () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        fc.integer({ min: 20, max: 200 }),
        fc.boolean(),
        fc.nat(VARIANTS.length - 1),
        (seed, ops, ro, v) => assertTransparent(VARIANTS[v] as string, mode, seed, ops, ro),
      ),
      { numRuns: RUNS },
    );
  });
}
