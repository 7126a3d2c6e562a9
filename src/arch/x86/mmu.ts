/**
 * The per-vCPU MMU: what the hardware walks (set by the host, the pager),
 * the walker and the result of its current walk, the TLB, and a place for
 * paging-structure caches.
 *
 * The walk result is the hardware walk of the access in progress: a host
 * handling a page-fault exit reads it (the shadow pager's fast path reads the
 * entry whose reserved bits ended the walk) — it is the MMU's own object,
 * filled by each walk, never scratch state of the walker.
 */
import type { WalkFormat } from './modes.js';
import type { WalkCaches } from './psc.js';
import { Tlb, type TlbConfig } from './tlb.js';
import { type DataSpace, type Stage2, Walker, WalkResult } from './walker.js';

export class Mmu {
  /** What the hardware walks; set by the host (pager) whenever it changes. */
  space: DataSpace;
  /** null: paging off, VA = PA. */
  format: WalkFormat | null = null;
  rootPfn = 0;
  pdpte: Uint32Array | null = null;
  /**
   * Hardware rights-check control = (guest control & ctlAnd) | ctlOr. A shadow
   * pager forces CR0.WP on, for instance, and emulates the guest's WP=0.
   */
  ctlAnd = -1;
  ctlOr = 0;
  /**
   * Nested paging: the EPT or NPT tables (in `space`) every guest-physical
   * address is translated through; null for one-stage paging (native,
   * shadow). `format`, `rootPfn` and `pdpte` are then the guest's own.
   */
  stage2: Stage2 | null = null;
  /**
   * Agile paging (a proposed extension, docs/agile.md): with `stage2` set and
   * this bit non-zero, `rootPfn` is a machine frame (a shadow root) and stage
   * 2 applies only below a non-leaf entry with this bit set (Walker.walk's
   * switchBit). 0: stage 2, if any, from the root.
   */
  switchBit = 0;
  /**
   * Guest pages of which the TLB holds smaller pieces (a stage-2 page
   * smaller than the guest's: "fractured" pages), by page number and size.
   * INVLPG of any address in such a page must invalidate every piece:
   * flushVa then flushes everything, as the SDM allows (an invalidation may
   * do more). Emptied by a full flush.
   */
  private readonly fractured = new Set<number>();

  readonly tlb: Tlb;
  readonly walker = new Walker();
  /** The result of the hardware walk of the access in progress. */
  readonly walk = new WalkResult();
  /**
   * Paging-structure caches (psc.ts; SDM vol. 3A, 4.10.3, vol. 3C, 29.4),
   * set by the pager from its spec (switch pwc); null: none. Invalidated with
   * the TLB, as 4.10.4.1 says for each operation.
   */
  psc: WalkCaches | null = null;
  /**
   * Told of every hardware walk the CPU finishes, its result in `walk`
   * (`umbra exec --trace-walks`): the address, the access, and how it ended
   * ('ok', '#PF', 'stage-2 exit'). null: nobody listens.
   */
  walkObserver: ((vaHi: number, vaLo: number, access: number, outcome: string) => void) | null = null;

  constructor(space: DataSpace, tlbConfig: TlbConfig) {
    this.space = space;
    this.tlb = new Tlb(tlbConfig);
  }

  /**
   * Invalidate translations of `va` (TLB and paging-structure caches): of
   * the caches, every entry of `pcid` for INVLPG (`wholePcid`), else those
   * `va` would use (a #PF, INVPCID type 0; SDM 4.10.4.1).
   */
  flushVa(vaHi: number, vaLo: number, pcid: number, globals: boolean, wholePcid = false): void {
    if (this.fractured.size !== 0 && this.inFractured(vaHi, vaLo)) {
      this.flushContext(-1, true);
      return;
    }
    this.tlb.flushVa(vaHi, vaLo, pcid, globals);
    const psc = this.psc;
    if (psc !== null) {
      if (wholePcid) psc.flushPcid(pcid);
      else psc.flushVa(vaHi, vaLo, pcid);
    }
  }

  /** The TLB now holds a piece of the guest page of 2^shift bytes (21, 22 or 30) holding `va`. */
  noteFractured(vaHi: number, vaLo: number, shift: number): void {
    if (this.fractured.size >= 4096) this.flushContext(-1, true); // bound the record: start afresh
    this.fractured.add(fracturedKey(vaHi, vaLo, shift));
  }

  private inFractured(vaHi: number, vaLo: number): boolean {
    const f = this.fractured;
    return (
      f.has(fracturedKey(vaHi, vaLo, 21)) || f.has(fracturedKey(vaHi, vaLo, 22)) || f.has(fracturedKey(vaHi, vaLo, 30))
    );
  }

  /** Invalidate a PCID's translations (-1: all), global ones too if `globals`. */
  flushContext(pcid: number, globals: boolean): void {
    // Set.clear() allocates a new table even when empty: shadow paging flushes everything tens of thousands of times a run.
    if (pcid < 0 && globals && this.fractured.size !== 0) this.fractured.clear();
    this.tlb.flushContext(pcid, globals);
    if (this.psc !== null) this.psc.flushContext(pcid);
  }

  /**
   * INVEPT of the stage 2 this MMU walks (SDM vol. 3C, 29.4.3.1): every
   * combined mapping (TLB, guest paging-structure caches) and every
   * guest-physical one (stage-2 caches, guest-physical TLB).
   */
  invept(): void {
    this.flushContext(-1, true);
    if (this.psc !== null) this.psc.invept();
  }
}

/** A guest page of 2^shift bytes (shift >= 21) as one exact number: its page number (at most 36 bits) and its size. */
function fracturedKey(vaHi: number, vaLo: number, shift: number): number {
  return ((vaHi >>> 0) * 2 ** (32 - shift) + (vaLo >>> shift)) * 64 + shift;
}
