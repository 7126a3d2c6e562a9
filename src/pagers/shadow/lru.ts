/**
 * The pinned top-level shadows in least-recently-loaded order (cache.ts):
 * a doubly-linked list threaded through the shadow records themselves.
 * Every CR3 load moves its root to the end; a list does that with four
 * pointer stores, where a Map's delete and re-insert churned its hash table
 * on every load. The order is modelled state (it decides which roots the
 * pool evicts first), so it is exactly a Map's insertion order with
 * "delete, then set" as the move.
 */
import type { Shadow } from './types.js';

export class ShadowLru {
  private head: Shadow | null = null;
  private tail: Shadow | null = null;
  private count = 0;

  get size(): number {
    return this.count;
  }

  has(sh: Shadow): boolean {
    return sh.lruPrev !== null || this.head === sh;
  }

  /** Make `sh` the most recent, adding it if absent. */
  touch(sh: Shadow): void {
    if (this.tail === sh) return;
    if (this.has(sh)) this.unlink(sh);
    else this.count++;
    sh.lruPrev = this.tail;
    sh.lruNext = null;
    if (this.tail === null) this.head = sh;
    else this.tail.lruNext = sh;
    this.tail = sh;
  }

  /** Take `sh` out of the order (nothing if absent). */
  delete(sh: Shadow): void {
    if (!this.has(sh)) return;
    this.unlink(sh);
    sh.lruPrev = null;
    sh.lruNext = null;
    this.count--;
  }

  private unlink(sh: Shadow): void {
    const prev = sh.lruPrev;
    const next = sh.lruNext;
    if (prev === null) this.head = next;
    else prev.lruNext = next;
    if (next === null) this.tail = prev;
    else next.lruPrev = prev;
  }

  /** The shadows, least recently loaded first, as a copy (callers unpin while they go through it). */
  toArray(): Shadow[] {
    const out: Shadow[] = [];
    for (let sh = this.head; sh !== null; sh = sh.lruNext) out.push(sh);
    return out;
  }

  *[Symbol.iterator](): IterableIterator<Shadow> {
    for (let sh = this.head; sh !== null; sh = sh.lruNext) yield sh;
  }
}
