/**
 * Paging-structure caches (SDM vol. 3A, 4.10.3; under EPT vol. 3C, 29.4):
 * what a walk may use instead of the upper-level entries in memory.
 *
 * UpperCaches is one stage's set: a PML5E, PML4E, PDPTE and PDE cache (the
 * levels 5..2 of modes.ts), each a small fully associative array with LRU
 * replacement. An entry at level L is tagged by the address bits above
 * level L-1's index (PDE cache, 4-level: bits 47:21) and by PCID, and holds
 * what 4.10.3.1 lists: the next table's address, the AND of the low halves
 * (R/W, U/S; P and A, always 1) and the OR of the high halves (XD) of every
 * entry from the top down to it. A walk starts below the deepest entry it
 * finds, the PDE cache first (4.10.3.2). An entry is made only from entries
 * with P=1, no reserved bits, PS=0 and the accessed flag set in memory
 * (4.10.3.1): Umbra fills after a successful walk's commit(), which set A.
 *
 * WalkCaches is one vCPU's caches (tagged by VPID on real hardware; here each
 * vCPU has its own): the upper caches of the one-stage or guest walk, and
 * under nested paging the upper caches of stage-2 walks (EPT paging-structure
 * caches, 29.4.1 "guest-physical mappings") and a guest-physical TLB (the
 * "nested TLB" of Bhargava et al., ASPLOS'08; 29.4.1's guest-physical
 * mappings of pages). Guest upper-cache entries are then *combined* mappings
 * (29.4.1): they hold the next guest table's host frame as well, so a hit
 * skips that table's stage-2 translation too.
 *
 * Invalidation is 4.10.4.1's: INVLPG drops every entry of the current PCID;
 * a #PF and INVPCID type 0 those the address would use; MOV to CR3 (no
 * no-flush bit) and INVPCID type 1 a PCID's; type 2/3, CR4.PGE and
 * CR4.PCIDE 1->0 all (Mmu, cpu.ts). Global pages are never here (only
 * leaves are global). INVEPT (29.4.3.1) drops the stage-2 caches as well,
 * which guest-TLB invalidations leave alone.
 */
import { XD_HI } from './bits.js';
import type { Mmu } from './mmu.js';
import type { PagingMode, WalkFormat } from './modes.js';
import { type PhysicalSpace, type Stage2, WALK_OK, Walker, WalkResult } from './walker.js';

/** The per-level sizes of one stage's upper caches: [PML5E, PML4E, PDPTE, PDE]. */
export type UpperSizes = readonly [number, number, number, number];

export interface WalkCacheConfig {
  /** One-stage (or guest) walks. */
  readonly upper: UpperSizes;
  /** Stage-2 walks (nested paging only). */
  readonly stage2: UpperSizes;
  /** Guest-physical TLB entries (nested paging only; 0: none). */
  readonly ntlb: number;
}

/**
 * Default sizes. PML4E 2, PDPTE 4, PDE 32: Intel's caches as Barr, Cox and
 * Rixner measured them (ISCA'10, "Translation caching: skip, don't walk").
 * PML5E 2: no published figure; Umbra gives it the PML4E cache's size.
 * Stage 2: no published sizes for EPT's caches; Umbra uses the same.
 * Guest-physical TLB 16: Umbra's choice (Bhargava et al. vary its size).
 */
export const DEFAULT_WALK_CACHES: WalkCacheConfig = {
  upper: [2, 2, 4, 32],
  stage2: [2, 2, 4, 32],
  ntlb: 16,
};

/**
 * One level's cache: fully associative, LRU. Found in O(1) (a hash index
 * over the entries' keys, linear probing) and kept in recency order (a
 * doubly linked list), so a lookup that misses costs a probe or two, not a
 * scan of every entry. A key is two 32-bit integers (keyLo, keyHi: see
 * keyHiOf), never a double: the walk computes and compares it with integer
 * operations only. The caller hashes it (homeOf) and each slot keeps its
 * hash for deletion.
 */
export class LevelCache {
  readonly size: number;
  /** Key: the tag's (address bits from the level's index up) low 32 bits, and keyHiOf(its high bits, PCID). */
  readonly keyLo: Int32Array;
  readonly keyHi: Int32Array;
  readonly pcid: Int32Array;
  /** The next table (guest-physical under nested paging) and its host frame. */
  readonly next: Float64Array;
  readonly mfn: Float64Array;
  readonly acc: Int32Array;
  readonly xd: Int32Array;
  /** Each slot's home in the hash index. */
  private readonly home: Int32Array;
  /** Recency list (slot numbers, -1 at the ends): head most recently used. */
  private readonly prev: Int32Array;
  private readonly nxt: Int32Array;
  private head = -1;
  private tail = -1;
  /** Hash index: slot + 1, 0 empty. */
  private readonly index: Int32Array;
  private readonly mask: number;
  private readonly hashShift: number;
  /** Free slots (a stack). */
  private readonly free: Int32Array;
  private freeTop: number;
  /** The least freeTop since the last clear(): the free stack below it is as clear() left it. */
  private lowWater: number;
  used = 0;
  hits = 0;
  misses = 0;
  fills = 0;
  saved = 0;

  constructor(size: number) {
    this.size = size;
    this.keyLo = new Int32Array(size);
    this.keyHi = new Int32Array(size);
    this.pcid = new Int32Array(size);
    this.next = new Float64Array(size);
    this.mfn = new Float64Array(size);
    this.acc = new Int32Array(size);
    this.xd = new Int32Array(size);
    this.home = new Int32Array(size);
    this.prev = new Int32Array(size).fill(-1);
    this.nxt = new Int32Array(size).fill(-1);
    // An index eight times the entries: a miss mostly ends at an empty home
    // slot, and deletion shifts back little (measured: 3× cheaper misses and
    // evictions than at twice the entries).
    let bits = 2;
    while (1 << bits < 8 * size) bits++;
    this.index = new Int32Array(1 << bits);
    this.mask = (1 << bits) - 1;
    this.hashShift = 32 - bits;
    this.free = Int32Array.from({ length: size }, (_, i) => size - 1 - i);
    this.freeTop = size;
    this.lowWater = size;
  }

  /** The hash-index home of an entry whose tag's low 32 bits are `tagLo`, for `pcid`. */
  homeOf(tagLo: number, pcid: number): number {
    return Math.imul(tagLo ^ Math.imul(pcid, 0x85ebca6b), 0x9e3779b1) >>> this.hashShift;
  }

  /** The slot holding key (keyLo, keyHi), whose home is `home`, or -1. */
  find(keyLo: number, keyHi: number, home: number): number {
    const index = this.index;
    const los = this.keyLo;
    const his = this.keyHi;
    const mask = this.mask;
    for (let h = home; ; h = (h + 1) & mask) {
      const s = index[h] as number;
      if (s === 0) return -1;
      if (los[s - 1] === keyLo && his[s - 1] === keyHi) return s - 1;
    }
  }

  /** Make slot `i` the most recently used. */
  touch(i: number): void {
    if (this.head === i) return;
    this.unlink(i);
    this.linkFront(i);
  }

  /** A slot for a new entry with `key`: a free one, else the least recently used (evicted); it is made most recent. */
  insert(keyLo: number, keyHi: number, home: number, pcid: number): number {
    let i: number;
    if (this.freeTop > 0) {
      i = this.free[--this.freeTop] as number;
      if (this.freeTop < this.lowWater) this.lowWater = this.freeTop;
    } else {
      i = this.tail;
      this.unindex(i);
      this.unlink(i);
      this.used--;
    }
    this.keyLo[i] = keyLo;
    this.keyHi[i] = keyHi;
    this.pcid[i] = pcid;
    this.home[i] = home;
    const index = this.index;
    let h = home;
    while (index[h] !== 0) h = (h + 1) & this.mask;
    index[h] = i + 1;
    this.linkFront(i);
    this.used++;
    return i;
  }

  /** Drop the entry at slot `i`. */
  drop(i: number): void {
    this.unindex(i);
    this.unlink(i);
    this.free[this.freeTop++] = i;
    this.used--;
  }

  /**
   * Drop every entry. Only what holds entries is reset — their index cells,
   * and the free stack above its low-water mark — not the whole index: a
   * shadow pager clears the caches at every CR3 load, a few entries later.
   */
  clear(): void {
    if (this.used === 0) return;
    const index = this.index;
    const mask = this.mask;
    for (let i = this.head; i >= 0; i = this.nxt[i] as number) {
      let h = this.home[i] as number;
      while (index[h] !== i + 1) h = (h + 1) & mask;
      index[h] = 0;
    }
    this.head = -1;
    this.tail = -1;
    for (let i = this.lowWater; i < this.size; i++) this.free[i] = this.size - 1 - i;
    this.freeTop = this.size;
    this.lowWater = this.size;
    this.used = 0;
  }

  /** Drop every entry of `pcid`. */
  clearPcid(pcid: number): void {
    for (let i = this.head; i >= 0; ) {
      const n = this.nxt[i] as number;
      if (this.pcid[i] === pcid) this.drop(i);
      i = n;
    }
  }

  /** Valid slots, most recently used first. */
  *slots(): Generator<number> {
    for (let i = this.head; i >= 0; i = this.nxt[i] as number) yield i;
  }

  private linkFront(i: number): void {
    this.prev[i] = -1;
    this.nxt[i] = this.head;
    if (this.head >= 0) this.prev[this.head] = i;
    this.head = i;
    if (this.tail < 0) this.tail = i;
  }

  private unlink(i: number): void {
    const p = this.prev[i] as number;
    const n = this.nxt[i] as number;
    if (p >= 0) this.nxt[p] = n;
    else this.head = n;
    if (n >= 0) this.prev[n] = p;
    else this.tail = p;
  }

  /** Remove slot `i` from the hash index (backward-shift deletion keeps probe chains whole). */
  private unindex(i: number): void {
    const index = this.index;
    const mask = this.mask;
    let h = this.home[i] as number;
    while (index[h] !== i + 1) h = (h + 1) & mask;
    for (let j = (h + 1) & mask; ; j = (j + 1) & mask) {
      const s = index[j] as number;
      if (s === 0) break;
      const home = this.home[s - 1] as number;
      // Move s back into the hole at h unless its home lies cyclically in (h, j].
      if (((j - home) & mask) >= ((j - h) & mask)) {
        index[h] = s;
        h = j;
      }
    }
    index[h] = 0;
  }
}

/** The low 32 bits of the tag of `va` at a level indexed from bit `shift` up (SDM 4.10.3.1: PML4E cache, bits 47:39). */
function tagLo(vaHi: number, vaLo: number, shift: number): number {
  return shift >= 32 ? vaHi >>> (shift - 32) : (vaLo >>> shift) | (vaHi << (32 - shift));
}

/** The rest of an entry's key: the tag's bits above 32 (at most 11 with shift >= 21), then the PCID (12 bits). */
function keyHiOf(vaHi: number, shift: number, pcid: number): number {
  return shift >= 32 ? pcid : ((vaHi >>> shift) << 12) | pcid;
}

/** One stage's PML5E/PML4E/PDPTE/PDE caches. */
export class UpperCaches {
  /** By level (2 = PDE .. 5 = PML5E); a size of 0 is no cache. */
  readonly levels: Array<LevelCache | null> = [null, null, null, null, null, null];
  readonly enabled: boolean;
  /**
   * After a hit: the slot of the entry in levels[level] (the walker reads
   * the entry from the typed arrays itself: fields holding the entry's
   * values would box numbers on the hot path).
   */
  hitSlot = 0;
  /**
   * The last lookup: its address, PCID and mode, and by level (bit `level`)
   * whether the entry was absent there — the level was empty (`absent` only)
   * or its search missed (`keyed` too, with the key and hash home it
   * computed). A fill of that level for that address then inserts at once
   * (the entry is known absent) instead of searching again; any other insert
   * at the level clears the bits.
   */
  private lastHi = 0;
  private lastLo = 0;
  private lastPcid = -1;
  private lastMode: PagingMode | null = null;
  private absent = 0;
  private keyed = 0;
  private readonly missLo = new Int32Array(6);
  private readonly missHi = new Int32Array(6);
  private readonly missHome = new Int32Array(6);

  constructor(sizes: UpperSizes) {
    let any = false;
    for (let level = 2; level <= 5; level++) {
      const n = sizes[5 - level] as number;
      if (n > 0) {
        this.levels[level] = new LevelCache(n);
        any = true;
      }
    }
    this.enabled = any;
  }

  /**
   * Find the deepest cached entry for `va` in `mode` below `from` (the level
   * the walk would read first); its level (0: none) and hit* fields. Each
   * cache looked in and missed counts a miss: the deeper ones are looked in
   * first.
   */
  lookup(mode: PagingMode, from: number, vaHi: number, vaLo: number, pcid: number): number {
    const shifts = mode.shift;
    const levels = this.levels;
    // Levels known to hold no entry for this address since it was last looked
    // up or flushed (a fill at a level clears its bit): the walk after a
    // fault's flush need not search them again.
    const same = vaLo === this.lastLo && vaHi === this.lastHi && pcid === this.lastPcid && mode === this.lastMode;
    const known = same ? this.absent : 0;
    const knownKeyed = same ? this.keyed : 0;
    this.lastHi = vaHi;
    this.lastLo = vaLo;
    this.lastPcid = pcid;
    this.lastMode = mode;
    let absent = 0;
    let keyed = 0;
    for (let level = 2; level <= from; level++) {
      const c = levels[level] as LevelCache | null;
      if (c === null) continue;
      const bit = 1 << level;
      if ((known & bit) !== 0) {
        c.misses++;
        absent |= bit;
        keyed |= knownKeyed & bit;
        continue;
      }
      // An empty cache (after every flush) needs no key: a fill computes it.
      if (c.used === 0) {
        c.misses++;
        absent |= 1 << level;
        continue;
      }
      const shift = shifts[level] as number;
      const lo = tagLo(vaHi, vaLo, shift);
      const hi = keyHiOf(vaHi, shift, pcid);
      const home = c.homeOf(lo, pcid);
      const i = c.find(lo, hi, home);
      if (i < 0) {
        c.misses++;
        absent |= 1 << level;
        keyed |= 1 << level;
        this.missLo[level] = lo;
        this.missHi[level] = hi;
        this.missHome[level] = home;
        continue;
      }
      c.hits++;
      c.saved += from - level + 1;
      c.touch(i);
      this.hitSlot = i;
      this.absent = absent;
      this.keyed = keyed;
      return level;
    }
    this.absent = absent;
    this.keyed = keyed;
    return 0;
  }

  /** Cache the entry at `level` for `va` (LRU replacement). */
  fill(
    mode: PagingMode,
    level: number,
    vaHi: number,
    vaLo: number,
    pcid: number,
    next: number,
    mfn: number,
    acc: number,
    xd: number,
  ): void {
    const c = this.levels[level] as LevelCache | null;
    if (c === null) return;
    const bit = 1 << level;
    // Absent at the last lookup of this address: insert without searching (with the key it computed, if any).
    const absent =
      (this.absent & bit) !== 0 &&
      vaLo === this.lastLo &&
      vaHi === this.lastHi &&
      pcid === this.lastPcid &&
      mode === this.lastMode;
    let i: number;
    if (absent && (this.keyed & bit) !== 0) {
      i = c.insert(this.missLo[level] as number, this.missHi[level] as number, this.missHome[level] as number, pcid);
    } else {
      const shift = mode.shift[level] as number;
      const lo = tagLo(vaHi, vaLo, shift);
      const hi = keyHiOf(vaHi, shift, pcid);
      const home = c.homeOf(lo, pcid);
      i = absent ? -1 : c.find(lo, hi, home);
      if (i >= 0) c.touch(i);
      else i = c.insert(lo, hi, home, pcid);
    }
    this.absent &= ~bit;
    this.keyed &= ~bit;
    c.fills++;
    c.next[i] = next;
    c.mfn[i] = mfn;
    c.acc[i] = acc;
    c.xd[i] = xd;
  }

  /** Drop every entry (pcid -1) or a PCID's. */
  flush(pcid: number): void {
    for (const c of this.levels) {
      if (c === null || c === undefined || c.used === 0) continue;
      if (pcid < 0) c.clear();
      else c.clearPcid(pcid);
    }
  }

  /** Drop the entries of `pcid` that `va` would use (a #PF, INVPCID type 0). */
  flushVa(mode: PagingMode | null, vaHi: number, vaLo: number, pcid: number): void {
    if (mode === null) {
      this.flush(pcid);
      return;
    }
    // Afterwards no level holds an entry for this address: record it as a
    // lookup that missed everywhere would (the retried walk then searches nothing).
    const same = vaLo === this.lastLo && vaHi === this.lastHi && pcid === this.lastPcid && mode === this.lastMode;
    let absent = same ? this.absent : 0;
    let keyed = same ? this.keyed : 0;
    for (let level = 2; level <= 5; level++) {
      const c = this.levels[level];
      if (c === null || c === undefined) continue;
      const bit = 1 << level;
      if (level > mode.topLevel) {
        if (c.used !== 0) c.clearPcid(pcid);
        continue;
      }
      if (c.used === 0 || (absent & bit) !== 0) {
        absent |= bit;
        continue;
      }
      const shift = mode.shift[level] as number;
      const lo = tagLo(vaHi, vaLo, shift);
      const hi = keyHiOf(vaHi, shift, pcid);
      const home = c.homeOf(lo, pcid);
      const i = c.find(lo, hi, home);
      if (i >= 0) c.drop(i);
      absent |= bit;
      keyed |= bit;
      this.missLo[level] = lo;
      this.missHi[level] = hi;
      this.missHome[level] = home;
    }
    this.lastHi = vaHi;
    this.lastLo = vaLo;
    this.lastPcid = pcid;
    this.lastMode = mode;
    this.absent = absent;
    this.keyed = keyed;
  }

  /** Every valid entry (for the isolation checkers and inspection; allocates). */
  *entries(): Generator<CachedEntry> {
    for (let level = 2; level <= 5; level++) {
      const c = this.levels[level];
      if (c === null || c === undefined) continue;
      for (const i of c.slots()) {
        yield {
          level,
          tag: ((c.keyHi[i] as number) >>> 12) * 2 ** 32 + ((c.keyLo[i] as number) >>> 0),
          pcid: c.pcid[i] as number,
          next: c.next[i] as number,
          mfn: c.mfn[i] as number,
          acc: c.acc[i] as number,
          xd: c.xd[i] as number,
        };
      }
    }
  }

  /** Counters of the cache at `level` (null: no cache there). */
  counts(level: number): { hits: number; misses: number; fills: number; saved: number } | null {
    const c = this.levels[level];
    return c === null || c === undefined ? null : c;
  }
}

/** A cached upper entry, as the checkers see it. */
export interface CachedEntry {
  level: number;
  tag: number;
  pcid: number;
  next: number;
  mfn: number;
  acc: number;
  xd: number;
}

/**
 * The guest-physical TLB: 4 KiB guest-physical page -> host frame, with the
 * stage-2 permission word and page size, LRU. An entry is made after a
 * successful stage-2 walk whose A flags are set (commit()).
 */
export class GuestPhysicalTlb {
  readonly size: number;
  private readonly gfn: Float64Array;
  private readonly mfn: Float64Array;
  private readonly perm: Int32Array;
  /** The stage-2 page's size as a shift, and how many entries its walk read from the top. */
  private readonly shift: Uint8Array;
  private readonly depth: Uint8Array;
  private readonly stamp: Float64Array;
  private used = 0;
  private clock = 0;
  hits = 0;
  misses = 0;
  fills = 0;
  saved = 0;
  /** After a hit: the entry. */
  hitMfn = 0;
  hitPerm = 0;
  hitShift = 12;

  constructor(size: number) {
    this.size = size;
    this.gfn = new Float64Array(size).fill(-1);
    this.mfn = new Float64Array(size);
    this.perm = new Int32Array(size);
    this.shift = new Uint8Array(size);
    this.depth = new Uint8Array(size);
    this.stamp = new Float64Array(size);
  }

  /** Index of `gfn`'s entry, or -1 (counts a miss; a hit is counted by the caller that uses it). */
  find(gfn: number): number {
    const g = this.gfn;
    for (let i = 0, n = this.used; i < n; i++) {
      if (g[i] === gfn) {
        this.hitMfn = this.mfn[i] as number;
        this.hitPerm = this.perm[i] as number;
        this.hitShift = this.shift[i] as number;
        return i;
      }
    }
    this.misses++;
    return -1;
  }

  /** The entry at `i` served a translation. */
  touch(i: number): void {
    this.hits++;
    this.saved += this.depth[i] as number;
    this.stamp[i] = ++this.clock;
  }

  fill(gfn: number, mfn: number, perm: number, shift: number, depth: number): void {
    let i = -1;
    const g = this.gfn;
    for (let j = 0; j < this.used; j++) if (g[j] === gfn) i = j;
    if (i < 0) {
      if (this.used < this.size) i = this.used++;
      else {
        i = 0;
        const s = this.stamp;
        for (let j = 1; j < this.size; j++) if ((s[j] as number) < (s[i] as number)) i = j;
      }
    }
    this.fills++;
    g[i] = gfn;
    this.mfn[i] = mfn;
    this.perm[i] = perm;
    this.shift[i] = shift;
    this.depth[i] = depth;
    this.stamp[i] = ++this.clock;
  }

  flush(): void {
    this.gfn.fill(-1);
    this.used = 0;
  }

  *entries(): Generator<{ gfn: number; mfn: number; perm: number }> {
    for (let i = 0; i < this.used; i++) {
      yield { gfn: this.gfn[i] as number, mfn: this.mfn[i] as number, perm: this.perm[i] as number };
    }
  }
}

/** One vCPU's paging-structure caches (Mmu.psc). */
export class WalkCaches {
  readonly config: WalkCacheConfig;
  /** Upper caches of one-stage or guest walks (null: none). */
  readonly upper: UpperCaches | null;
  /** Upper caches of stage-2 walks, and the guest-physical TLB (nested paging). */
  readonly stage2: UpperCaches | null;
  readonly ntlb: GuestPhysicalTlb | null;
  /** The PCID of the walk in progress (set by the CPU before it walks). */
  pcid = 0;
  /** The paging mode the upper caches were filled in (for flushVa). */
  mode: PagingMode | null = null;

  constructor(config: WalkCacheConfig) {
    this.config = config;
    const u = new UpperCaches(config.upper);
    this.upper = u.enabled ? u : null;
    const s = new UpperCaches(config.stage2);
    this.stage2 = s.enabled ? s : null;
    this.ntlb = config.ntlb > 0 ? new GuestPhysicalTlb(config.ntlb) : null;
  }

  /** INVLPG: every entry of `pcid`. */
  flushPcid(pcid: number): void {
    this.upper?.flush(pcid);
  }

  /** A #PF or INVPCID type 0: the entries of `pcid` that `va` would use. */
  flushVa(vaHi: number, vaLo: number, pcid: number): void {
    this.upper?.flushVa(this.mode, vaHi, vaLo, pcid);
  }

  /** MOV to CR3/CR4, INVPCID types 1-3: a PCID's entries (-1: every PCID's). */
  flushContext(pcid: number): void {
    this.upper?.flush(pcid);
  }

  /** INVEPT (29.4.3.1): the guest-physical caches and every combined entry. */
  invept(): void {
    this.upper?.flush(-1);
    this.stage2?.flush(-1);
    this.ntlb?.flush();
  }
}

/**
 * The isolation checkers' view of one vCPU's caches (shadow/audit.ts,
 * nested/audit.ts): every cached entry must still be what the tables the
 * MMU walks now give — a hypervisor that removes or changes an upper entry
 * of tables it owns, or frees a table, must have invalidated what was
 * cached of it on every vCPU. Checked by walking those tables afresh (a
 * walker of its own: no caches, no accessed flags set):
 *  - an upper-cache entry at level L for address prefix P: the walk of P
 *    reads a present, non-leaf entry at L whose next table is the cached
 *    one, and the cached rights are no wider than the walk's (R/W, U/S, or
 *    EPT's R/W/X: never set where the walk has them clear; XD never clear
 *    where the walk has it set);
 *  - under nested paging, a guest entry's host frame is what stage 2 maps
 *    the guest table's frame to now (the guest's own entries are the
 *    guest's to invalidate, as natively); a stage-2 entry is checked as
 *    above against the stage-2 tables; a guest-physical TLB entry maps its
 *    page to the frame stage 2 gives, with no wider rights.
 * Returns null, or what is wrong.
 */
export function auditWalkCaches(mmu: Mmu): string | null {
  const psc = mmu.psc;
  if (psc === null) return null;
  const walker = new Walker();
  const res = new WalkResult();
  const s2 = mmu.stage2;
  const s2frame = (gfn: number): { mfn: number; perm: number } | null => {
    const st = s2 as Stage2;
    const gpa = gfn * 4096;
    if (gpa >= 2 ** st.fmt.mode.vaBits) return null;
    const r = walker.walk(mmu.space, st.fmt, st.rootPfn, null, Math.floor(gpa / 0x100000000), gpa >>> 0, res);
    if (r !== WALK_OK) return null;
    return { mfn: res.pfn + (gfn & ((1 << (res.shift - 12)) - 1)), perm: res.perm };
  };
  const upper = psc.upper;
  if (upper !== null) {
    for (const e of upper.entries()) {
      const where = `vCPU paging-structure cache: level-${e.level} entry (prefix 0x${e.tag.toString(16)}, PCID ${e.pcid})`;
      if (s2 === null) {
        const fmt = mmu.format;
        if (fmt === null || psc.mode !== fmt.mode) return `${where}: cached in another paging mode than the one walked`;
        const p = checkUpper(walker, res, mmu.space, fmt, mmu.rootPfn, mmu.pdpte, e);
        if (p !== null) return `${where}: ${p}`;
      } else {
        const now = s2frame(e.next);
        if (now === null) return `${where}: its guest table gfn ${e.next} has no stage-2 mapping now`;
        if (now.mfn !== e.mfn) return `${where}: caches gfn ${e.next} at frame ${e.mfn}, stage 2 maps it to ${now.mfn}`;
      }
    }
  }
  if (s2 !== null && psc.stage2 !== null) {
    for (const e of psc.stage2.entries()) {
      const p = checkUpper(walker, res, mmu.space, s2.fmt, s2.rootPfn, null, e);
      if (p !== null)
        return `stage-2 paging-structure cache: level-${e.level} entry (prefix 0x${e.tag.toString(16)}): ${p}`;
    }
  }
  if (s2 !== null && psc.ntlb !== null) {
    const rights = s2.fmt.rightsLo;
    for (const e of psc.ntlb.entries()) {
      const now = s2frame(e.gfn);
      const where = `guest-physical TLB entry for gfn ${e.gfn}`;
      if (now === null) return `${where}: stage 2 maps it no more`;
      if (now.mfn !== e.mfn) return `${where}: caches frame ${e.mfn}, stage 2 maps ${now.mfn}`;
      if ((e.perm & rights & ~now.perm) !== 0) return `${where}: rights 0x${e.perm.toString(16)} wider than stage 2's`;
    }
  }
  return null;
}

/** One upper-cache entry against the tables rooted at `root` (see auditWalkCaches); null or the problem. */
function checkUpper(
  walker: Walker,
  res: WalkResult,
  space: PhysicalSpace,
  fmt: WalkFormat,
  root: number,
  pdpte: Uint32Array | null,
  e: CachedEntry,
): string | null {
  const shift = fmt.mode.shift[e.level] as number;
  const va = e.tag * 2 ** shift;
  walker.walk(space, fmt, root, pdpte, Math.floor(va / 0x100000000), va >>> 0, res);
  const k = res.top - e.level;
  if (k < 0 || k + 1 >= res.n) return 'the tables have no present non-leaf entry there now';
  if (res.tables[k + 1] !== e.next)
    return `caches next table ${e.next}, the tables name ${res.tables[k + 1] as number} now`;
  let acc = -1;
  let xd = 0;
  for (let j = 0; j <= k; j++) {
    acc &= res.loAt(j);
    xd |= res.hiAt(j);
  }
  if ((e.acc & fmt.rightsLo & ~acc) !== 0) return 'cached rights wider than the tables give';
  if (fmt.xd && (xd & XD_HI) !== 0 && (e.xd & XD_HI) === 0) return 'cached without the execute-disable the tables set';
  return null;
}
