/**
 * The pinned roots' load order (src/pagers/shadow/lru.ts) against the Map it
 * replaced: random touches and deletes of a few shadows must leave the same
 * members in the same order as a Map's insertion order with "delete, then
 * set" as a touch.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ShadowLru } from '../src/pagers/shadow/lru.js';
import type { Shadow } from '../src/pagers/shadow/types.js';

const RUNS = Number(process.env.UMBRA_PROPERTY_RUNS ?? 200);

function shadows(n: number): Shadow[] {
  return Array.from({ length: n }, (_, i) => ({ smfn: i, lruPrev: null, lruNext: null }) as unknown as Shadow);
}

test('the shadow LRU keeps a Map’s order under touch and delete', () => {
  const opArb = fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 7 }));
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 120 }), (ops) => {
      const all = shadows(8);
      const lru = new ShadowLru();
      const model = new Map<Shadow, true>();
      for (const [touch, k] of ops) {
        const sh = all[k] as Shadow;
        if (touch) {
          lru.touch(sh);
          model.delete(sh);
          model.set(sh, true);
        } else {
          lru.delete(sh);
          model.delete(sh);
        }
        assert.deepEqual(lru.toArray(), [...model.keys()]);
        assert.deepEqual([...lru], [...model.keys()]);
        assert.equal(lru.size, model.size);
        for (const s of all) assert.equal(lru.has(s), model.has(s));
      }
    }),
    { numRuns: RUNS },
  );
});
