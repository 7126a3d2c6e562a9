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

const SIZES = [12, 12, 12, 21, 30] as const;
const WITH_4M = [12, 12, 12, 21, 22, 30] as const;

/** A random page of a random size of `sizes` (mostly 4 KiB) among the first `pages` of its size, for a random PCID of two. */
function randomPage(
  r: () => number,
  pages: number,
  sizes: readonly number[] = SIZES,
): { page: number; pcid: number; shift: number; hi: number; lo: number } {
  const page = Math.floor(r() * pages);
  const pcid = Math.floor(r() * 2);
  const shift = sizes[Math.floor(r() * sizes.length)] as number;
  const va = page * 2 ** shift;
  return { page, pcid, shift, hi: Math.floor(va / 2 ** 32), lo: va >>> 0 };
}

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
    const { page, pcid, shift, hi, lo } = randomPage(r, 48);
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

test('emptied, the TLB hits, misses and evicts as a new one does, however many ways were filled before', () => {
  // Few ways filled before the flush: only the logged ones are cleared; many (flushVa frees ways to refill): the log overflowed and every way is.
  for (const [seed, before] of [
    [1, 3],
    [2, 40],
    [3, 63],
    [4, 64],
    [5, 65],
    [6, 400],
    [7, 2000],
  ] as const) {
    const r = rng(seed);
    // More ways than the log holds, so an unlogged way can stay filled if the log is wrong.
    const geometry: TlbConfig = {
      small: { sets: 64, ways: 4 },
      large: { sets: 8, ways: 2 },
      huge: { sets: 1, ways: 4 },
    };
    const used = new Tlb(geometry);
    const step = (tlbs: Tlb[], i: number, noLookups: boolean): void => {
      const { page, pcid, shift, hi, lo } = randomPage(r, 400);
      const perm = r() < 0.2 ? PERM_G : 0;
      const k = noLookups ? 1 + Math.floor(r() * 2) : Math.floor(r() * 3);
      if (k === 0) {
        const hits = tlbs.map((t) => (t.lookup(hi, lo, pcid, 21) ? t.hitPfn : -1));
        assert.equal(new Set(hits).size, 1, `seed ${seed}, op ${i}: lookup ${hits}`);
      } else if (k === 1) for (const t of tlbs) t.fill(hi, lo, pcid, shift, page * 7, perm);
      else for (const t of tlbs) t.flushVa(hi, lo, pcid, false);
    };
    for (let i = 0; i < before; i++) step([used], i, true);
    used.flushContext(-1, true);
    assert.equal(used.size, 0);
    const fresh = new Tlb(geometry);
    for (let i = 0; i < 3000; i++) {
      step([used, fresh], i, false);
      assert.equal(used.size, fresh.size, `seed ${seed}, op ${i}: entries`);
      // Empty both again now and then: the log must be right after a refill too.
      if (i % 500 === 499) for (const t of [used, fresh]) t.flushContext(-1, true);
    }
  }
});

test('a flush of an address whose lookup just missed drops what a flush with no such miss drops', () => {
  // The TLB skips the sets a missed lookup searched (nothing there for that
  // page and PCID, globals included); `plain` forgets each miss first by a
  // lookup of a page never filled, so its flushes search every set.
  const r = rng(11);
  const fast = new Tlb(SMALL);
  const plain = new Tlb(SMALL);
  let extra = 0;
  for (let i = 0; i < 20_000; i++) {
    const kind = Math.floor(r() * 10);
    // 4 MiB pages too: a lookup probes one large size, the flush both.
    const { page, pcid, shift, hi, lo } = randomPage(r, 48, WITH_4M);
    const large = r() < 0.5 ? 21 : 22;
    if (kind < 5) {
      // A #PF: the lookup, then (if it missed) the flush of the address.
      const a = fast.lookup(hi, lo, pcid, large);
      assert.equal(a, plain.lookup(hi, lo, pcid, large), `op ${i}: lookup`);
      if (a) continue;
      fast.flushVa(hi, lo, pcid, true);
      plain.lookup(0x7fff, 0, 3, large);
      extra++;
      plain.flushVa(hi, lo, pcid, true);
    } else if (kind < 9) {
      const perm = r() < 0.2 ? PERM_G : 0;
      fast.fill(hi, lo, pcid, shift, page * 7, perm);
      plain.fill(hi, lo, pcid, shift, page * 7, perm);
    } else {
      const globals = r() < 0.5;
      fast.flushVa(hi, lo, pcid, globals);
      plain.flushVa(hi, lo, pcid, globals);
    }
    assert.equal(fast.size, plain.size, `op ${i}: entries`);
  }
  assert.equal(fast.hits, plain.hits);
  assert.equal(fast.misses + extra, plain.misses);
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
