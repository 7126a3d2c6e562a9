/**
 * Page aging (what kswapd's LRU scan does): clear the accessed bits of an
 * address space's present pages, counting the young ones, so that the next
 * scan sees which pages were used since.
 *
 * Rules: unlike Linux's ptep_clear_flush_young, which skips the flush, every
 * cleared accessed bit is flushed — otherwise whether the CPU sets it again
 * would depend on TLB size and replacement (docs/kernel.md).
 */

import { PTE_A } from '../../arch/x86/bits.js';
import type { Mm } from './mm.js';
import { forEachPresent, lastEntry, readEntry, writeEntry } from './pgtable.js';
import type { KernelState } from './state.js';
import { flush } from './tlb.js';

/**
 * Clear the accessed bit of up to `max` present pages of `mm` from `from`,
 * then flush; returns the address after the last page seen (where to go on).
 */
export function age(k: KernelState, mm: Mm, from: number, max: number): number {
  let seen = 0;
  let young = 0;
  let last = from;
  for (const a of mm.vmas) {
    if (a.end <= from || seen >= max) continue;
    forEachPresent(
      k,
      mm,
      Math.max(a.start, from),
      a.end,
      (leaf, i, va) => {
        seen++;
        last = va + 4096;
        readEntry(k, leaf, i);
        const e = lastEntry(k);
        if ((e.lo & PTE_A) !== 0) {
          young++;
          writeEntry(k, leaf, i, e.hi, (e.lo & ~PTE_A) >>> 0);
        }
        return seen >= max;
      },
      () => {},
    );
  }
  if (young > 0) flush(k, mm, from, last);
  k.counters.agedYoung += young;
  return last;
}
