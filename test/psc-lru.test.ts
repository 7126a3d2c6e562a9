/**
 * The paging-structure caches' bookkeeping (src/arch/x86/psc.ts) against a
 * plain model: per level a list of entries, most recently used first, of at
 * most `size` entries, searched one by one. Random sequences of lookups,
 * fills (right after a lookup of the same address, as a walk makes them,
 * or of another address), flushes of everything or of one PCID, and
 * invalidations of one address must give the same hit levels, the same
 * entries in the same recency order and the same hit, miss, fill and
 * saved-reference counters. The cache's shortcuts — its hash index, an
 * empty level not searched, a fill after a missed lookup that inserts
 * without searching again, a lookup after a flush of the same address
 * that searches nothing — must not show.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { MODE_LONG4, MODE_LONG5, MODE_PAE, type PagingMode } from '../src/arch/x86/modes.js';
import { UpperCaches, type UpperSizes } from '../src/arch/x86/psc.js';

const RUNS = Number(process.env.UMBRA_PROPERTY_RUNS ?? 200);

interface ModelEntry {
  tag: bigint;
  pcid: number;
  next: number;
  mfn: number;
  acc: number;
  xd: number;
}

/** The model: by level, entries most recently used first. */
class Model {
  readonly levels: ModelEntry[][] = [[], [], [], [], [], []];
  readonly hits = [0, 0, 0, 0, 0, 0];
  readonly misses = [0, 0, 0, 0, 0, 0];
  readonly fills = [0, 0, 0, 0, 0, 0];
  readonly saved = [0, 0, 0, 0, 0, 0];
  constructor(readonly sizes: UpperSizes) {}

  size(level: number): number {
    return this.sizes[5 - level] as number;
  }

  lookup(mode: PagingMode, from: number, va: bigint, pcid: number): number {
    for (let level = 2; level <= from; level++) {
      if (this.size(level) === 0) continue;
      const tag = va >> BigInt(mode.shift[level] as number);
      const list = this.levels[level] as ModelEntry[];
      const i = list.findIndex((e) => e.tag === tag && e.pcid === pcid);
      if (i < 0) {
        (this.misses[level] as number)++;
        continue;
      }
      (this.hits[level] as number)++;
      this.saved[level] = (this.saved[level] as number) + from - level + 1;
      list.unshift(...list.splice(i, 1));
      return level;
    }
    return 0;
  }

  fill(mode: PagingMode, level: number, va: bigint, pcid: number, e: Omit<ModelEntry, 'tag' | 'pcid'>): void {
    const size = this.size(level);
    if (size === 0) return;
    const tag = va >> BigInt(mode.shift[level] as number);
    const list = this.levels[level] as ModelEntry[];
    const i = list.findIndex((x) => x.tag === tag && x.pcid === pcid);
    if (i >= 0) list.splice(i, 1);
    else if (list.length === size) list.pop();
    list.unshift({ tag, pcid, ...e });
    (this.fills[level] as number)++;
  }

  flush(pcid: number): void {
    for (let level = 2; level <= 5; level++) {
      this.levels[level] = pcid < 0 ? [] : (this.levels[level] as ModelEntry[]).filter((e) => e.pcid !== pcid);
    }
  }

  flushVa(mode: PagingMode, va: bigint, pcid: number): void {
    for (let level = 2; level <= 5; level++) {
      const list = this.levels[level] as ModelEntry[];
      if (level > mode.topLevel) this.levels[level] = list.filter((e) => e.pcid !== pcid);
      else {
        const tag = va >> BigInt(mode.shift[level] as number);
        this.levels[level] = list.filter((e) => !(e.tag === tag && e.pcid === pcid));
      }
    }
  }
}

type Op =
  | { kind: 'walk'; va: bigint; pcid: number; depth: number; payload: number }
  | { kind: 'fault'; va: bigint; pcid: number; depth: number; payload: number }
  | { kind: 'lookup'; va: bigint; pcid: number }
  | { kind: 'fill'; va: bigint; pcid: number; level: number; payload: number }
  | { kind: 'flush'; pcid: number }
  | { kind: 'flushVa'; va: bigint; pcid: number };

/** Addresses from a few 1 GiB and 512 GiB regions, so tags collide at every level and walks repeat. */
const vaArb = fc
  .tuple(fc.integer({ min: 0, max: 1 }), fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 3 }))
  .map(([top, mid, low]) => (BigInt(top) << 39n) | (BigInt(mid) << 30n) | (BigInt(low) << 21n) | 0x5000n);
const pcidArb = fc.integer({ min: 0, max: 1 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('walk' as const),
      va: vaArb,
      pcid: pcidArb,
      depth: fc.integer({ min: 0, max: 3 }),
      payload: fc.nat(1000),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('fault' as const),
      va: vaArb,
      pcid: pcidArb,
      depth: fc.integer({ min: 0, max: 3 }),
      payload: fc.nat(1000),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('lookup' as const), va: vaArb, pcid: pcidArb }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('fill' as const),
      va: vaArb,
      pcid: pcidArb,
      level: fc.integer({ min: 2, max: 5 }),
      payload: fc.nat(1000),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('flush' as const), pcid: fc.integer({ min: -1, max: 2 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('flushVa' as const), va: vaArb, pcid: pcidArb }) },
);
const sizesArb: fc.Arbitrary<UpperSizes> = fc.tuple(
  fc.constantFrom(0, 1, 2),
  fc.constantFrom(0, 1, 2),
  fc.constantFrom(0, 1, 4),
  fc.constantFrom(0, 1, 3, 32),
);

function halves(va: bigint): [number, number] {
  return [Number(va >> 32n), Number(va & 0xffffffffn)];
}

function entryOf(payload: number, level: number): Omit<ModelEntry, 'tag' | 'pcid'> {
  return { next: payload * 8 + level, mfn: payload * 8 + level + 1, acc: payload & 7, xd: payload & 0x80000000 };
}

function same(caches: UpperCaches, model: Model, where: string): void {
  for (let level = 2; level <= 5; level++) {
    const got = [...caches.entries()].filter((e) => e.level === level);
    const want = model.levels[level] as ModelEntry[];
    assert.deepEqual(
      got.map((e) => [e.tag, e.pcid, e.next, e.mfn, e.acc, e.xd]),
      want.map((e) => [Number(e.tag), e.pcid, e.next, e.mfn, e.acc, e.xd]),
      `${where}: level ${level} entries`,
    );
    const c = caches.counts(level);
    if (c === null) continue;
    assert.deepEqual(
      [c.hits, c.misses, c.fills, c.saved],
      [model.hits[level], model.misses[level], model.fills[level], model.saved[level]],
      `${where}: level ${level} counters`,
    );
  }
}

for (const mode of [MODE_LONG4, MODE_LONG5, MODE_PAE]) {
  test(`paging-structure caches behave as a plain LRU model (${mode.topLevel}-level ${mode === MODE_PAE ? 'PAE' : 'long mode'})`, () => {
    fc.assert(
      fc.property(sizesArb, fc.array(opArb, { minLength: 40, maxLength: 160 }), (sizes, ops) => {
        const caches = new UpperCaches(sizes);
        const model = new Model(sizes);
        const from = mode === MODE_PAE ? 2 : mode.topLevel;
        ops.forEach((op, n) => {
          const where = `op ${n} (${op.kind})`;
          if (op.kind === 'walk' || op.kind === 'fault') {
            const [hi, lo] = halves(op.va);
            if (op.kind === 'fault') {
              // As a #PF does: the faulting walk's lookup, the flush of the address, then the retried walk.
              assert.equal(caches.lookup(mode, from, hi, lo, op.pcid), model.lookup(mode, from, op.va, op.pcid), where);
              caches.flushVa(mode, hi, lo, op.pcid);
              model.flushVa(mode, op.va, op.pcid);
            }
            // As a walk does: a lookup, then fills of the levels below the hit, deepest last.
            const hit = caches.lookup(mode, from, hi, lo, op.pcid);
            assert.equal(hit, model.lookup(mode, from, op.va, op.pcid), `${where}: hit level`);
            // The levels below the hit, down to the one above the walk's leaf.
            for (let level = hit === 0 ? from : hit - 1; level >= 2 + op.depth; level--) {
              const e = entryOf(op.payload, level);
              caches.fill(mode, level, hi, lo, op.pcid, e.next, e.mfn, e.acc, e.xd);
              model.fill(mode, level, op.va, op.pcid, e);
            }
          } else if (op.kind === 'lookup') {
            const [hi, lo] = halves(op.va);
            assert.equal(caches.lookup(mode, from, hi, lo, op.pcid), model.lookup(mode, from, op.va, op.pcid), where);
          } else if (op.kind === 'fill') {
            if (op.level > from) return;
            const [hi, lo] = halves(op.va);
            const e = entryOf(op.payload, op.level);
            caches.fill(mode, op.level, hi, lo, op.pcid, e.next, e.mfn, e.acc, e.xd);
            model.fill(mode, op.level, op.va, op.pcid, e);
          } else if (op.kind === 'flush') {
            caches.flush(op.pcid);
            model.flush(op.pcid);
          } else {
            const [hi, lo] = halves(op.va);
            caches.flushVa(mode, hi, lo, op.pcid);
            model.flushVa(mode, op.va, op.pcid);
          }
          same(caches, model, where);
        });
      }),
      { numRuns: RUNS },
    );
  });
}
