/**
 * The TLB's replacement: LRU per set by integer use stamps, renumbered by
 * rank before the clock would overflow. A TLB whose clock is renumbered
 * every few uses must hit, miss and evict exactly as one that never is, and
 * evict as the order of uses says.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PERM_G } from '../src/arch/x86/access.js';
import { Tlb, type TlbConfig } from '../src/arch/x86/tlb.js';
import { rng } from '../src/guest/rng.js';

const SMALL: TlbConfig = {
  small: { sets: 4, ways: 4 },
  large: { sets: 2, ways: 2 },
  huge: { sets: 1, ways: 2 },
};

test('the least recently used way of a full set is evicted', () => {
  const tlb = new Tlb(SMALL, 5);
  // Pages 0, 4, 8, 12, 16 all index set 0 of the 4 KiB array (4 sets).
  for (const p of [0, 4, 8, 12]) tlb.fill(0, p << 12, 0, 12, 100 + p, 1);
  for (const p of [0, 8, 4]) assert.ok(tlb.lookup(0, p << 12, 0, 21));
  tlb.fill(0, 16 << 12, 0, 12, 116, 1); // evicts 12, the least recently used
  assert.equal(tlb.lookup(0, 12 << 12, 0, 21), false);
  for (const p of [0, 4, 8, 16]) {
    assert.ok(tlb.lookup(0, p << 12, 0, 21), `page ${p}`);
    assert.equal(tlb.hitPfn, 100 + p);
  }
});

test('renumbering the clock keeps every hit, miss and eviction', () => {
  const r = rng(7);
  const often = new Tlb(SMALL, 3);
  const never = new Tlb(SMALL);
  const ops = 20_000;
  for (let i = 0; i < ops; i++) {
    const kind = Math.floor(r() * 10);
    const page = Math.floor(r() * 48);
    const pcid = Math.floor(r() * 2);
    const shift = [12, 12, 12, 21, 30][Math.floor(r() * 5)] as number;
    const va = page * 2 ** shift;
    const hi = Math.floor(va / 2 ** 32);
    const lo = va >>> 0;
    if (kind < 6) {
      const a = often.lookup(hi, lo, pcid, 21);
      const b = never.lookup(hi, lo, pcid, 21);
      assert.equal(a, b, `op ${i}: lookup`);
      if (a) assert.equal(often.hitPfn, never.hitPfn, `op ${i}: frame`);
    } else if (kind < 9) {
      const perm = r() < 0.1 ? PERM_G : 0;
      often.fill(hi, lo, pcid, shift, page * 7, perm);
      never.fill(hi, lo, pcid, shift, page * 7, perm);
    } else if (r() < 0.8) {
      often.flushVa(hi, lo, pcid, false);
      never.flushVa(hi, lo, pcid, false);
    } else {
      const globals = r() < 0.5;
      often.flushContext(pcid, globals);
      never.flushContext(pcid, globals);
    }
    assert.equal(often.size, never.size, `op ${i}: entries`);
  }
  assert.ok(often.hits > 1000 && often.misses > 1000, 'the sequence exercises hits and misses');
  assert.equal(often.hits, never.hits);
  assert.equal(often.misses, never.misses);
});

test('level 0: a reset forgets every slot, across the wrap of its epoch counter', () => {
  const tlb = new Tlb();
  // vpnHi 0xfffff: a kernel address's high page bits fill the 20 bits below the epoch.
  const pages: Array<[number, number]> = [
    [5, 0],
    [0x12345, 0xfffff],
    [-1, 0xfffff],
  ];
  for (let reset = 0; reset < 2 * 4096 + 3; reset++) {
    for (const [lo, hi] of pages) assert.equal(tlb.l0Lookup(lo, hi, 1), -1, `stale slot after ${reset} resets`);
    for (const [lo, hi] of pages) tlb.l0Record(lo, hi, 77, 1, 12);
    for (const [lo, hi] of pages) {
      assert.equal(tlb.l0Lookup(lo, hi, 1), 77, `recorded slot after ${reset} resets`);
      assert.equal(tlb.l0Lookup(lo, hi, 2), -1, 'an access kind not recorded');
    }
    tlb.resetL0();
  }
});
