/**
 * The shadow hash, d->arch.shadow_ht (Xen 3.0.2, xen/include/asm-x86/shadow.h:
 * shadow_ht_buckets, hash_bucket, __shadow_status, set_shadow_status,
 * delete_shadow_status). One table for everything keyed by a guest frame:
 * the shadows of every type, the hl2 tables and the snapshots.
 *
 * Rules this module keeps:
 *  - 256 buckets; a record's bucket is its guest frame mod 256, whatever its
 *    type, so every shadow, hl2 and snapshot of one frame share a chain;
 *  - a hit is pulled to the front of its chain (Xen swaps it with the head
 *    record); a new record goes right after the head (Xen's head is a slot
 *    in the bucket array, new records come from a free list behind it);
 *  - a key is never inserted twice (Xen BUG()s).
 * Xen's key is `gpfn | PGT_type`; Umbra's says more (which part of a 32-bit
 * guest table, the paging format, a splinter's flags), since one profile
 * runs every guest mode at once (types.ts, shadowKey).
 */
import type { Xen30Counters } from './counters.js';

/** shadow_ht_buckets. */
export const SHADOW_HT_BUCKETS = 256;

interface HtRecord<T> {
  readonly key: number | string;
  readonly value: T;
}

export class ShadowHt<T> {
  private readonly buckets: HtRecord<T>[][] = Array.from({ length: SHADOW_HT_BUCKETS }, () => []);
  private count = 0;

  constructor(private readonly counters: Xen30Counters) {}

  /** Records in the table. */
  get size(): number {
    return this.count;
  }

  private bucketOf(gfn: number): HtRecord<T>[] {
    return this.buckets[gfn % SHADOW_HT_BUCKETS] as HtRecord<T>[];
  }

  /** __shadow_status: the record of (gfn, key), pulled to the front of its chain; undefined if none. */
  lookup(gfn: number, key: number | string): T | undefined {
    const c = this.counters;
    c['ht.lookups']++;
    const chain = this.bucketOf(gfn);
    for (let i = 0; i < chain.length; i++) {
      c['ht.chain_steps']++;
      const r = chain[i] as HtRecord<T>;
      if (r.key !== key) continue;
      if (i > 0) {
        chain[i] = chain[0] as HtRecord<T>;
        chain[0] = r;
      }
      return r.value;
    }
    c['ht.misses']++;
    return undefined;
  }

  /** set_shadow_status: a new record, after the head of its chain. */
  insert(gfn: number, key: number | string, value: T): void {
    const chain = this.bucketOf(gfn);
    for (const r of chain) if (r.key === key) throw new Error(`shadow_ht: key ${key} inserted twice`);
    chain.splice(chain.length === 0 ? 0 : 1, 0, { key, value });
    this.count++;
    if (chain.length > this.counters['ht.longest_chain']) this.counters['ht.longest_chain'] = chain.length;
  }

  /** delete_shadow_status; false if there was no such record. */
  delete(gfn: number, key: number | string): boolean {
    const chain = this.bucketOf(gfn);
    const i = chain.findIndex((r) => r.key === key);
    if (i < 0) return false;
    chain.splice(i, 1);
    this.count--;
    return true;
  }

  /** Every record, bucket by bucket and down each chain (the order of Xen's brute-force searches). */
  *values(): Generator<T> {
    for (const chain of this.buckets) for (const r of [...chain]) yield r.value;
  }

  /** Chain lengths, bucket by bucket (for tests and the docs). */
  chainLengths(): number[] {
    return this.buckets.map((b) => b.length);
  }
}
