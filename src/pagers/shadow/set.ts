/**
 * The one writer of shadow entries (Xen's shadow/set.c): setEntry() stores
 * every shadow entry there is, and keeps what depends on entries — the
 * children's reference counts and up-pointers, the writable reverse map and
 * the shadow superpages' regions. Write revocation and the TLB shootdown
 * live here too, since they exist to keep those records honest.
 *
 * Rules this module keeps (the isolation checker tests them):
 *  4. setEntry() is the only writer of shadow entries (write revocation
 *     included): a child's reference count is the number of present shadow
 *     entries pointing at it (plus its pin and PAE PDPTE registers, kept by
 *     the cache), and a replaced entry's reference is dropped at once, so an
 *     unreferenced, unpinned shadow is freed (cache.ts).
 *  - The writable reverse map holds exactly the present, writable, non-magic
 *    shadow l1 entries, by the guest frame they map; magic entries map
 *    nothing and appear in no record. Xen keeps only their count (the type
 *    count); so does the default search for them (wrmap.ts), and only the
 *    rmap switch reads the slots.
 *  - Only a replaced present (non-magic) entry can be held by a TLB: that is
 *    what setEntry() reports, and what callers flush for (shootdown()).
 */

import { PTE_D, PTE_P, PTE_PS, PTE_RW, PTE_US, XD_HI } from '../../arch/x86/bits.js';
import { entryFrame, leafFrame } from '../../arch/x86/entry.js';
import { isMagic } from './magic.js';
import type { ShadowState } from './state.js';
import type { Shadow } from './types.js';

/** Guest frames per chunk of the writable map's directory (4096: 16 MiB of guest memory, 32 KiB of chunk). */
const WR_CHUNK_SHIFT = 12;
const WR_CHUNK_MASK = (1 << WR_CHUNK_SHIFT) - 1;
/** A chunk's value for a frame with no writable mapping; below it, -2 - k names shared set k. */
const WR_NONE = -1;
/**
 * k of a chunk's value -2 - k, as a small integer: the chunk holds doubles,
 * and an array indexed by a double takes V8's slow path.
 */
const sharedIndex = (v: number): number => (-2 - v) | 0;

/**
 * Writable reverse map: guest frame -> the shadow leaf slots (smfn * 1024 +
 * index) that map it *writable*. Revoking write access (a frame becomes a
 * shadowed table, an out-of-sync l1 is resynced, the dirty log is cleaned)
 * visits only these, and empties the set, so each writable mapping is paid
 * for once however many read-only mappings a frame has. Most frames have one
 * writable mapping: it is stored in place, in a per-16 MiB chunk of a sparse
 * directory (a 1 TiB guest pays only for the regions it maps writable);
 * shared frames name a Set.
 */
export class WritableMap {
  /** Chunk per 4096 guest frames (made on first use): each frame's slot (≥ 0), WR_NONE, or -2 - k. */
  private readonly dir: (Float64Array | undefined)[] = [];
  /** The sets of frames with more than one writable mapping, and the free indexes among them. */
  private readonly shared: (Set<number> | undefined)[] = [];
  private readonly freeShared: number[] = [];

  /** The value for `gfn` (WR_NONE when its chunk does not exist). */
  private at(gfn: number): number {
    const chunk = this.dir[Math.floor(gfn / (WR_CHUNK_MASK + 1))];
    return chunk === undefined ? WR_NONE : (chunk[gfn & WR_CHUNK_MASK] as number);
  }

  private put(gfn: number, v: number): void {
    const hi = Math.floor(gfn / (WR_CHUNK_MASK + 1));
    // Grow the directory densely (a far write would make it a dictionary).
    while (this.dir.length <= hi) this.dir.push(undefined);
    let chunk = this.dir[hi];
    if (chunk === undefined) {
      chunk = new Float64Array(WR_CHUNK_MASK + 1).fill(WR_NONE);
      this.dir[hi] = chunk;
    }
    chunk[gfn & WR_CHUNK_MASK] = v;
  }

  add(gfn: number, slot: number): void {
    const v = this.at(gfn);
    if (v === WR_NONE) this.put(gfn, slot);
    else if (v >= 0) {
      if (v === slot) return;
      const k = this.freeShared.pop() ?? this.shared.length;
      this.shared[k] = new Set<number>().add(v).add(slot);
      this.put(gfn, -2 - k);
    } else this.sharedSet(v).add(slot);
  }

  remove(gfn: number, slot: number): void {
    const v = this.at(gfn);
    if (v === slot) this.put(gfn, WR_NONE);
    else if (v < WR_NONE) {
      const set = this.sharedSet(v);
      set.delete(slot);
      if (set.size === 0) this.drop(gfn, v);
    }
  }

  /** Forget shared set `v` of `gfn`. */
  private drop(gfn: number, v: number): void {
    const k = sharedIndex(v);
    this.shared[k] = undefined;
    this.freeShared.push(k);
    this.put(gfn, WR_NONE);
  }

  /** The shared set a chunk's value `v` (< WR_NONE) names. */
  private sharedSet(v: number): Set<number> {
    return this.shared[sharedIndex(v)] as Set<number>;
  }

  /** How many slots map `gfn` writable (Xen: the frame's type count). */
  count(gfn: number): number {
    const v = this.at(gfn);
    return v === WR_NONE ? 0 : v >= 0 ? 1 : this.sharedSet(v).size;
  }

  /** Is `slot` recorded as mapping `gfn` writable? */
  has(gfn: number, slot: number): boolean {
    const v = this.at(gfn);
    return v === WR_NONE ? false : v >= 0 ? v === slot : this.sharedSet(v).has(slot);
  }

  /** The indexes of the entries of shadow frame `smfn` that map `gfn` writable, ascending. */
  indexesIn(gfn: number, smfn: number): number[] {
    const v = this.at(gfn);
    if (v === WR_NONE) return [];
    if (v >= 0) return Math.floor(v / 1024) === smfn ? [v % 1024] : [];
    const out: number[] = [];
    for (const slot of this.sharedSet(v)) if (Math.floor(slot / 1024) === smfn) out.push(slot % 1024);
    return out.sort((a, b) => a - b);
  }

  /** Remove and return every slot mapping `gfn` writable. */
  take(gfn: number): number[] {
    const v = this.at(gfn);
    if (v === WR_NONE) return [];
    if (v >= 0) {
      this.put(gfn, WR_NONE);
      return [v];
    }
    const slots = [...this.sharedSet(v)];
    this.drop(gfn, v);
    return slots;
  }
}

/** What the writer needs from the cache above it: dropping the reference a replaced entry held (cache.ts). */
export interface ShadowReleaser {
  release(sh: Shadow): void;
}

/**
 * What the writer tells out-of-sync tracking above it (oos.ts): a shadow
 * l1 slot is about to map out-of-sync guest frame `gfn` writable (Xen's
 * oos_fixup_add, called from shadow_set_l1e).
 */
export interface FixupRecorder {
  isOutOfSync(gfn: number): boolean;
  fixupAdd(gfn: number, slot: number): void;
}

export class ShadowSet {
  /** Guest frame -> shadow leaf slots (smfn * 1024 + index) mapping it writable. */
  private readonly writable = new WritableMap();
  /** 2 MiB guest region (gfn >> 9) -> shadow superpage entries (slots) covering it. */
  private readonly superSlots = new Map<number, Set<number>>();
  private releaser: ShadowReleaser | null = null;
  private fixups: FixupRecorder | null = null;

  constructor(private readonly st: ShadowState) {}

  /** Connect the cache, which frees what the writer stops referring to (once, at attach). */
  bind(releaser: ShadowReleaser): void {
    this.releaser = releaser;
  }

  /** Connect out-of-sync tracking, which keeps fixup arrays (once, at attach; not with the rmap switch). */
  bindFixups(fixups: FixupRecorder): void {
    this.fixups = fixups;
  }

  /** How many shadow l1 entries map `gfn` writable (Xen: its type count; not where they are). */
  writableCount(gfn: number): number {
    return this.writable.count(gfn);
  }

  /** Does the writable reverse map record shadow slot `slot` (smfn * 1024 + index) as mapping `gfn`? (The audit's check.) */
  recordsWritable(gfn: number, slot: number): boolean {
    return this.writable.has(gfn, slot);
  }

  /**
   * The entries of l1 shadow frame `smfn` that map `gfn` writable, ascending:
   * exactly those a search of its 512 entries finds (the reverse map holds
   * every present, writable, non-magic l1 entry).
   */
  writableIn(gfn: number, smfn: number): number[] {
    return this.writable.indexesIn(gfn, smfn);
  }

  /**
   * The one writer of shadow entries: stores (lo, hi) at `index` of `sh`,
   * dropping the reference / reverse-map record of the old entry and making
   * the new one's. True if a present (non-magic) entry was replaced, which a
   * TLB may hold.
   */
  setEntry(sh: Shadow, index: number, lo: number, hi: number, child: Shadow | null): boolean {
    const st = this.st;
    const f = st.domain.mem.write(sh.smfn);
    const w = 2 * index;
    const oldLo = f[w] as number;
    const oldHi = f[w + 1] as number;
    lo >>>= 0;
    hi >>>= 0;
    const fx = this.fixups;
    if (fx !== null && sh.level === 1 && (lo & (PTE_P | PTE_RW)) === (PTE_P | PTE_RW) && !isMagic(lo, hi)) {
      const g = st.domain.placement.gfnOf(entryFrame(lo, hi));
      if (fx.isOutOfSync(g)) fx.fixupAdd(g, sh.smfn * 1024 + index);
    }
    if (oldLo === lo && oldHi === hi) return false;
    f[w] = lo;
    f[w + 1] = hi;
    if (sh.level > 1) st.epoch++;
    const newReal = (lo & PTE_P) !== 0 && !isMagic(lo, hi);
    // The new child's reference first: re-linking the same child with other
    // rights must not free it in between.
    if (newReal && child !== null) {
      child.refs++;
      child.ups.add(sh.smfn * 1024 + index);
    }
    // Magic entries (fast path) map nothing: no reverse map, and no TLB can hold them.
    const oldReal = (oldLo & PTE_P) !== 0 && !isMagic(oldLo, oldHi);
    if (oldReal) {
      const oldMfn = entryFrame(oldLo, oldHi);
      if (sh.level > 1 && (oldLo & PTE_PS) !== 0) {
        this.superTrack(sh, index, oldLo, oldHi, false);
      } else if (sh.level > 1) {
        const c = st.byMfn.get(oldMfn);
        if (c !== undefined) {
          if (c !== child) c.ups.delete(sh.smfn * 1024 + index);
          (this.releaser as ShadowReleaser).release(c);
        }
      } else if ((oldLo & PTE_RW) !== 0) {
        this.writable.remove(st.domain.placement.gfnOf(oldMfn), sh.smfn * 1024 + index);
      }
    }
    if (newReal && child === null) {
      if (sh.level > 1 && (lo & PTE_PS) !== 0) this.superTrack(sh, index, lo, hi, true);
      else if (sh.level === 1 && (lo & PTE_RW) !== 0) {
        const g = st.domain.placement.gfnOf(entryFrame(lo, hi));
        this.writable.add(g, sh.smfn * 1024 + index);
      }
    }
    return oldReal;
  }

  /**
   * setEntry() for an entry above l1 in the fault path; true if what it
   * replaced may be held by a TLB or a paging-structure cache of any vCPU
   * (the caller flushes): the old entry was present and the new one names
   * another frame or does not strictly increase its rights — Xen's
   * SHADOW_SET_FLUSH rule (shadow/set.c, shadow_set_l2e and friends,
   * perms_strictly_increased). Xen's fault path never replaces a present
   * entry (it asserts so); Umbra's does when an fl shadow's key (the guest
   * superpage's flags) changed, so it must flush.
   */
  setUpper(sh: Shadow, index: number, lo: number, hi: number, child: Shadow | null): boolean {
    const f = this.st.domain.mem.read(sh.smfn);
    const oldLo = f[2 * index] as number;
    const oldHi = f[2 * index + 1] as number;
    if (!this.setEntry(sh, index, lo, hi, child)) return false;
    if (entryFrame(oldLo, oldHi) !== entryFrame(lo, hi)) return true;
    return (oldLo & ~lo & (PTE_P | PTE_RW | PTE_US)) !== 0 || (hi & ~oldHi & XD_HI) !== 0;
  }

  /** Guest frames covered by a shadow superpage entry at `level` (first frame, count). */
  private superRange(sh: Shadow, lo: number, hi: number): [number, number] {
    const shift = sh.level === 3 ? 30 : 21;
    const mfn = leafFrame(lo, hi, true, true, shift);
    return [this.st.domain.placement.gfnOf(mfn), 1 << (shift - 12)];
  }

  /** Record (or forget) which 2 MiB regions a shadow superpage entry covers. */
  private superTrack(sh: Shadow, index: number, lo: number, hi: number, add: boolean): void {
    const [first, span] = this.superRange(sh, lo, hi);
    const slot = sh.smfn * 1024 + index;
    for (let r = Math.floor(first / 512), end = Math.floor((first + span - 1) / 512); r <= end; r++) {
      let set = this.superSlots.get(r);
      if (add) {
        if (set === undefined) {
          set = new Set();
          this.superSlots.set(r, set);
        }
        set.add(slot);
      } else if (set !== undefined) {
        set.delete(slot);
        if (set.size === 0) this.superSlots.delete(r);
      }
    }
  }

  /**
   * A frame in 2 MiB guest region `region` became a shadowed guest table:
   * drop every shadow superpage over it (it is rebuilt splintered) and flush.
   */
  dropSuperpages(region: number): void {
    if (this.dropRegion(region)) this.shootdown();
  }

  /** Drop every shadow superpage entry over guest frames [first, first+count); true if there was one (the caller flushes). */
  dropSuperpagesIn(first: number, count: number): boolean {
    const r0 = Math.floor(first / 512);
    const r1 = Math.floor((first + count - 1) / 512);
    let any = false;
    if (r1 - r0 < this.superSlots.size) {
      for (let r = r0; r <= r1; r++) if (this.dropRegion(r)) any = true;
    } else {
      for (const r of [...this.superSlots.keys()]) if (r >= r0 && r <= r1 && this.dropRegion(r)) any = true;
    }
    return any;
  }

  private dropRegion(region: number): boolean {
    const supers = this.superSlots.get(region);
    if (supers === undefined) return false;
    for (const slot of [...supers]) {
      const sh = this.st.byMfn.get(Math.floor(slot / 1024)) as Shadow;
      this.setEntry(sh, slot % 1024, 0, 0, null);
    }
    return true;
  }

  /**
   * Clear the write permission of shadow l1 slot `slot` (smfn * 1024 +
   * index) if it maps `gfn` writable (Xen's sh_rm_write_access_from_sl1p);
   * true if it did. A slot whose shadow has gone, or holds something else
   * now, is left alone.
   */
  revokeSlot(slot: number, gfn: number): boolean {
    const st = this.st;
    const sh = st.byMfn.get(Math.floor(slot / 1024));
    if (sh === undefined || sh.level !== 1) return false;
    const i = slot % 1024;
    const f = st.domain.mem.read(sh.smfn);
    const lo = f[2 * i] as number;
    const hi = f[2 * i + 1] as number;
    if ((lo & (PTE_P | PTE_RW)) !== (PTE_P | PTE_RW) || isMagic(lo, hi)) return false;
    if (st.domain.placement.gfnOf(entryFrame(lo, hi)) !== gfn) return false;
    this.makeReadOnly(sh, i, lo, hi);
    return true;
  }

  /** Make l1 entry `i` of `sh`, now (lo, hi), read-only and clean: the next write faults (every revocation's last step). */
  makeReadOnly(sh: Shadow, i: number, lo: number, hi: number): void {
    this.setEntry(sh, i, lo & ~(PTE_RW | PTE_D), hi, null);
  }

  /** Clear the write permission of every shadow leaf mapping `gfn` (through the writer); true if any had it. */
  revokeWrite(gfn: number): boolean {
    const st = this.st;
    const slots = this.writable.take(gfn);
    for (const slot of slots) {
      st.counters.rmap_entries_searched++;
      const sh = st.byMfn.get(Math.floor(slot / 1024)) as Shadow;
      const i = slot % 1024;
      const f = st.domain.mem.read(sh.smfn);
      this.makeReadOnly(sh, i, f[2 * i] as number, f[2 * i + 1] as number);
    }
    return slots.length > 0;
  }

  /** Flush every vCPU's hardware TLB (a real hypervisor sends IPIs). */
  shootdown(): void {
    this.st.counters.tlb_shootdowns++;
    for (const c of this.st.cpus) c.mmu.flushContext(-1, true);
  }
}
