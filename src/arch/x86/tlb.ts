/**
 * Translation lookaside buffer (SDM vol. 3A, 4.10).
 *
 * Three set-associative arrays, one per page-size class: 4 KiB, large
 * (2 MiB or 4 MiB, the entry remembers which) and 1 GiB. Entries are tagged
 * with a PCID (0 when CR4.PCIDE=0) or marked global; a lookup matches an
 * entry of the current PCID or a global one. Replacement is LRU per set,
 * by integer use stamps (a 31-bit clock; before it would overflow, each
 * set's stamps are renumbered by rank, which keeps every set's order). A
 * miss skips the arrays that hold no valid entry (each keeps a count).
 *
 * What is cached is the translation's permission word (access.ts), never an
 * access decision: rights are re-checked on every hit against the current
 * CR0.WP, SMEP, SMAP, AC, PKRU and CPL.
 *
 * A set count or way count of 0 disables a class (`--tlb off` disables all).
 */
import { PERM_G } from './access.js';

export interface TlbGeometry {
  sets: number;
  ways: number;
}

export interface TlbConfig {
  small: TlbGeometry; // 4 KiB
  large: TlbGeometry; // 2 MiB / 4 MiB
  huge: TlbGeometry; // 1 GiB
}

/** Default geometry: roughly a modern core's second-level TLB. */
export const DEFAULT_TLB: TlbConfig = {
  small: { sets: 128, ways: 12 },
  large: { sets: 32, ways: 8 },
  huge: { sets: 1, ways: 16 },
};

export const NO_TLB: TlbConfig = {
  small: { sets: 0, ways: 0 },
  large: { sets: 0, ways: 0 },
  huge: { sets: 0, ways: 0 },
};

const GLOBAL_TAG = 0x2000;
/** Fills an array logs between emptyings (TlbArray.empty). */
const FILL_LOG = 64;
const CTX_MASK = 0x1fff;

class TlbArray {
  readonly sets: number;
  readonly ways: number;
  /** pcid + 1 (0 = invalid), | GLOBAL_TAG for global entries. */
  readonly ctx: Int32Array;
  readonly vpnLo: Int32Array;
  readonly vpnHi: Int32Array;
  readonly shift: Uint8Array;
  readonly pfn: Float64Array;
  readonly perm: Int32Array;
  /** Last use (the Tlb's clock, at least 1); only the order within a set matters. 0 exactly where ctx is 0 (a free way). */
  readonly stamp: Int32Array;
  valid = 0;
  /**
   * The ways filled since the array was last emptied, while there are at
   * most FILL_LOG of them (filled counts past it: then the log is not
   * kept). A shadow pager empties the TLB at every CR3 load and the guest
   * refills a handful of ways in between, so emptying clears those ways,
   * not every way.
   */
  private readonly log = new Int32Array(FILL_LOG);
  private filled = 0;
  constructor(g: TlbGeometry) {
    if (g.sets !== 0 && (g.sets & (g.sets - 1)) !== 0)
      throw new RangeError(`TLB sets must be a power of two, got ${g.sets}`);
    this.sets = g.ways === 0 ? 0 : g.sets;
    this.ways = this.sets === 0 ? 0 : g.ways;
    const n = this.sets * this.ways;
    this.ctx = new Int32Array(n);
    this.vpnLo = new Int32Array(n);
    this.vpnHi = new Int32Array(n);
    this.shift = new Uint8Array(n);
    this.pfn = new Float64Array(n);
    this.perm = new Int32Array(n);
    this.stamp = new Int32Array(n);
  }

  /** Renumber each set's stamps 1..ways by rank among its valid ways (same order; free ways stay 0); the largest number used. */
  renumber(): number {
    const ways = this.ways;
    const s = this.stamp;
    const old = new Int32Array(ways);
    for (let base = 0; base < s.length; base += ways) {
      for (let j = 0; j < ways; j++) old[j] = s[base + j] as number;
      for (let j = 0; j < ways; j++) {
        const mine = old[j] as number;
        if (mine === 0) continue;
        let rank = 1;
        for (let k = 0; k < ways; k++) if ((old[k] as number) !== 0 && (old[k] as number) < mine) rank++;
        s[base + j] = rank;
      }
    }
    return ways;
  }

  /** Way `i`, which was free, now holds an entry. */
  occupy(i: number): void {
    this.valid++;
    const n = this.filled;
    if (n < FILL_LOG) this.log[n] = i;
    if (n <= FILL_LOG) this.filled = n + 1;
  }

  /** Invalidate every way: only the logged ones, when the log was kept (every other way is free: ctx and stamp 0). */
  empty(): void {
    const n = this.filled;
    if (n <= FILL_LOG) {
      for (let k = 0; k < n; k++) {
        const i = this.log[k] as number;
        this.ctx[i] = 0;
        this.stamp[i] = 0;
      }
    } else {
      this.ctx.fill(0);
      this.stamp.fill(0);
    }
    this.filled = 0;
    this.valid = 0;
  }

  /** Invalidate way `i`. */
  drop(i: number): void {
    this.ctx[i] = 0;
    this.stamp[i] = 0;
    this.valid--;
  }
}

/** Where the Tlb's clock is renumbered (below 2^31: stamps stay small integers). */
export const TLB_CLOCK_LIMIT = 2 ** 30;

/** Page number of a VA at `shift`, as two halves. */
function vpnLoOf(vaHi: number, vaLo: number, shift: number): number {
  return (vaLo >>> shift) | (vaHi << (32 - shift)) | 0;
}
function vpnHiOf(vaHi: number, shift: number): number {
  return (vaHi >>> shift) | 0;
}

/** Slots of the level-0 TLB (direct-mapped, 4 KiB granularity). */
const L0_SLOTS = 1024;
/** The last level-0 epoch (4,095) in place: epochs live in bits 31:20 of a 32-bit word and are never 0. */
const L0_LAST_EPOCH = (0xfff << 20) | 0;

/**
 * The TLB, with a small direct-mapped level-0 array in front (as real cores
 * put an L1 dTLB in front of the STLB). A level-0 slot remembers, for one
 * 4 KiB page, which (access kind, user/supervisor) pairs the current control
 * state allows, so a repeated access is a few compares. Any invalidation, and
 * any change of the control state the rights depend on (resetL0), empties it.
 */
export class Tlb {
  private readonly arrays: TlbArray[];
  private readonly small: TlbArray;
  private readonly large: TlbArray;
  private readonly huge: TlbArray;
  private clock = 0;
  private readonly enabled: boolean;
  /**
   * Level-0 slots, two words each: the page number's low half, and its high
   * half (20 bits) with the epoch above it, so one compare checks both; a
   * slot of an older epoch, or 0, never matches. resetL0() starts a new
   * epoch (every 4,095th one clears the slots instead).
   */
  private readonly l0 = new Int32Array(L0_SLOTS * 2);
  private readonly l0Allow = new Int32Array(L0_SLOTS);
  /** The current epoch, shifted into place above a page number's high half. */
  private epochTag = 1 << 20;
  private readonly l0Pfn = new Float64Array(L0_SLOTS);
  /** Some level-0 slot came from a large page (so one INVLPG may concern many slots). */
  private l0HasLarge = false;
  /** Counters. */
  hits = 0;
  misses = 0;
  fills = 0;
  flushes = 0;
  /** Result of the last hit. */
  hitPfn = 0;
  hitPerm = 0;
  hitShift = 12;
  private hitArray: TlbArray | null = null;
  private hitIndex = 0;
  /** The address and PCID of the last lookup that missed (missPcid -1: none since the last fill). */
  private missHi = 0;
  private missLo = 0;
  private missPcid = -1;
  /** The large-page size that lookup probed (a fill of another size, 2 MiB pieces of a 4 MiB page, was not looked for). */
  private missLargeShift = 21;

  /** `clockLimit`: where use stamps are renumbered (tests lower it to exercise renumbering). */
  constructor(
    readonly config: TlbConfig = DEFAULT_TLB,
    private readonly clockLimit = TLB_CLOCK_LIMIT,
  ) {
    this.small = new TlbArray(config.small);
    this.large = new TlbArray(config.large);
    this.huge = new TlbArray(config.huge);
    this.arrays = [this.small, this.large, this.huge];
    this.enabled = this.arrays.some((a) => a.sets !== 0);
  }

  /** The next use stamp. */
  private tick(): number {
    if (this.clock >= this.clockLimit) {
      let top = 0;
      for (const a of this.arrays) if (a.ways > 0) top = Math.max(top, a.renumber());
      this.clock = top;
    }
    return ++this.clock;
  }

  /** Level-0 lookup of 4 KiB page (vpnLo, vpnHi) for the access/privilege bit `allow`; the frame or -1. */
  l0Lookup(vpnLo: number, vpnHi: number, allow: number): number {
    const i = vpnLo & (L0_SLOTS - 1);
    const l0 = this.l0;
    const k = i << 1;
    if (l0[k] === vpnLo && l0[k + 1] === (this.epochTag | vpnHi) && ((this.l0Allow[i] as number) & allow) !== 0) {
      this.hits++;
      return this.l0Pfn[i] as number;
    }
    return -1;
  }

  /** Remember in level 0 that `allow` is permitted on page (vpnLo, vpnHi) -> frame `pfn` (from a page of 2^shift bytes). */
  l0Record(vpnLo: number, vpnHi: number, pfn: number, allow: number, shift: number): void {
    if (!this.enabled) return;
    if (shift !== 12) this.l0HasLarge = true;
    const i = vpnLo & (L0_SLOTS - 1);
    const l0 = this.l0;
    const k = i << 1;
    const tagHi = this.epochTag | vpnHi;
    if (l0[k] === vpnLo && l0[k + 1] === tagHi) {
      this.l0Allow[i] = (this.l0Allow[i] as number) | allow;
      return;
    }
    l0[k] = vpnLo;
    l0[k + 1] = tagHi;
    this.l0Allow[i] = allow;
    this.l0Pfn[i] = pfn;
  }

  /** Forget level 0 (rights depend on control state that changed, or entries were invalidated). */
  resetL0(): void {
    if (this.epochTag === L0_LAST_EPOCH) {
      this.l0.fill(0);
      this.epochTag = 1 << 20;
    } else this.epochTag = (this.epochTag + (1 << 20)) | 0;
    this.l0HasLarge = false;
  }

  /**
   * Look `va` up for `pcid`, trying the 4 KiB, large (with `largeShift`, 21 or
   * 22) and 1 GiB arrays. On a hit sets hitPfn (4 KiB frame of the VA) and
   * hitPerm and returns true.
   */
  lookup(vaHi: number, vaLo: number, pcid: number, largeShift: number): boolean {
    // Arrays with no valid entry cannot hit: most runs never fill the large or 1 GiB ones.
    if (
      (this.small.valid !== 0 && this.probe(this.small, vaHi, vaLo, pcid, 12)) ||
      (this.large.valid !== 0 && this.probe(this.large, vaHi, vaLo, pcid, largeShift)) ||
      (this.huge.valid !== 0 && this.probe(this.huge, vaHi, vaLo, pcid, 30))
    ) {
      return true;
    }
    this.misses++;
    this.missHi = vaHi;
    this.missLo = vaLo;
    this.missPcid = pcid;
    this.missLargeShift = largeShift;
    return false;
  }

  /** One array's set for `va` at `shift`: on a hit, record it (hit* fields) and return true. */
  private probe(a: TlbArray, vaHi: number, vaLo: number, pcid: number, shift: number): boolean {
    const want = pcid + 1;
    const lo = vpnLoOf(vaHi, vaLo, shift);
    const hi = vpnHiOf(vaHi, shift);
    const base = (lo & (a.sets - 1)) * a.ways;
    for (let i = base, end = base + a.ways; i < end; i++) {
      // The page number first: it tells the ways apart; the context rarely does.
      if (a.vpnLo[i] !== lo) continue;
      const x = a.ctx[i] as number;
      if (x !== 0 && a.vpnHi[i] === hi && a.shift[i] === shift && ((x & CTX_MASK) === want || (x & GLOBAL_TAG) !== 0)) {
        a.stamp[i] = this.tick();
        this.hits++;
        const within = shift === 12 ? 0 : ((vaLo >>> 12) | (vaHi << 20)) & ((1 << (shift - 12)) - 1);
        this.hitPfn = (a.pfn[i] as number) + within;
        this.hitPerm = a.perm[i] as number;
        this.hitShift = shift;
        this.hitArray = a;
        this.hitIndex = i;
        return true;
      }
    }
    return false;
  }

  /** Update the permission word of the entry found by the last lookup (e.g. D set). */
  updateLastHit(perm: number): void {
    if (this.hitArray !== null) this.hitArray.perm[this.hitIndex] = perm;
  }

  /** Cache a successful translation of a page of size 2^shift at base frame `pfn`. */
  fill(vaHi: number, vaLo: number, pcid: number, shift: number, pfn: number, perm: number): void {
    const a = this.arrays[shift === 12 ? 0 : shift === 30 ? 2 : 1] as TlbArray;
    if (a.sets === 0) return;
    this.fills++;
    const lo = vpnLoOf(vaHi, vaLo, shift);
    const hi = vpnHiOf(vaHi, shift);
    const ctx = (perm & PERM_G) !== 0 ? GLOBAL_TAG | (pcid + 1) : pcid + 1;
    const base = (lo & (a.sets - 1)) * a.ways;
    let victim = -1;
    let lru = base;
    let oldest = 0x7fffffff;
    // After a lookup of this address missed, no way holds the page for this
    // context: the first free way, else the least recently used, is the victim.
    const missed =
      vaLo === this.missLo &&
      vaHi === this.missHi &&
      pcid === this.missPcid &&
      (shift === 12 || shift === 30 || shift === this.missLargeShift);
    this.missPcid = -1;
    const st = a.stamp;
    if (missed) {
      // Free ways have stamp 0, below every valid one: the first least stamp is the first free way, else the LRU one.
      lru = base;
      oldest = st[base] as number;
      for (let i = base + 1, end = base + a.ways; oldest !== 0 && i < end; i++) {
        const s = st[i] as number;
        if (s < oldest) {
          oldest = s;
          lru = i;
        }
      }
    } else {
      for (let i = base, end = base + a.ways; i < end; i++) {
        const x = a.ctx[i] as number;
        if (x === 0) {
          if (victim < 0) victim = i;
          continue;
        }
        // A refill of a page already cached for this context replaces that entry.
        if (a.vpnLo[i] === lo && a.vpnHi[i] === hi && a.shift[i] === shift && (x & CTX_MASK) === pcid + 1) {
          victim = i;
          break;
        }
        const s = st[i] as number;
        if (s < oldest) {
          oldest = s;
          lru = i;
        }
      }
    }
    if (victim < 0) victim = lru;
    if (a.ctx[victim] === 0) a.occupy(victim);
    a.ctx[victim] = ctx;
    a.vpnLo[victim] = lo;
    a.vpnHi[victim] = hi;
    a.shift[victim] = shift;
    a.pfn[victim] = pfn;
    a.perm[victim] = perm;
    a.stamp[victim] = this.tick();
  }

  /**
   * Invalidate entries whose page contains `va`: those of `pcid` and, if
   * `globals`, global ones; `pcid` -1 means every PCID.
   */
  flushVa(vaHi: number, vaLo: number, pcid: number, globals: boolean): void {
    if (this.l0HasLarge) this.resetL0();
    else {
      // Only this 4 KiB page's slot can hold the address.
      const vpnLo = vpnLoOf(vaHi, vaLo, 12);
      const k = (vpnLo & (L0_SLOTS - 1)) << 1;
      if (this.l0[k] === vpnLo) this.l0[k + 1] = 0;
    }
    // A lookup of this page for this PCID missed and nothing was filled since
    // (a #PF after its walk): no way holds an entry this flush would drop,
    // except in the large array at the size the lookup did not probe.
    if (pcid >= 0 && pcid === this.missPcid && vaLo === this.missLo && vaHi === this.missHi) {
      const other = this.missLargeShift === 21 ? 22 : 21;
      this.flushSet(this.arrays[1] as TlbArray, vaHi, vaLo, other, pcid, globals);
      return;
    }
    // Only the set the page indexes can hold it: 4 KiB, 2 MiB or 4 MiB, 1 GiB.
    this.flushSet(this.arrays[0] as TlbArray, vaHi, vaLo, 12, pcid, globals);
    this.flushSet(this.arrays[1] as TlbArray, vaHi, vaLo, 21, pcid, globals);
    this.flushSet(this.arrays[1] as TlbArray, vaHi, vaLo, 22, pcid, globals);
    this.flushSet(this.arrays[2] as TlbArray, vaHi, vaLo, 30, pcid, globals);
  }

  private flushSet(a: TlbArray, vaHi: number, vaLo: number, shift: number, pcid: number, globals: boolean): void {
    if (a.valid === 0) return;
    const lo = vpnLoOf(vaHi, vaLo, shift);
    const hi = vpnHiOf(vaHi, shift);
    const base = (lo & (a.sets - 1)) * a.ways;
    for (let i = base, end = base + a.ways; i < end; i++) {
      const x = a.ctx[i] as number;
      if (x === 0 || a.shift[i] !== shift || a.vpnLo[i] !== lo || a.vpnHi[i] !== hi) continue;
      if ((x & GLOBAL_TAG) !== 0 ? globals : pcid < 0 || (x & CTX_MASK) === pcid + 1) a.drop(i);
    }
  }

  /**
   * Invalidate every entry of `pcid` (-1: every PCID); global entries too if
   * `globals`.
   */
  flushContext(pcid: number, globals: boolean): void {
    this.flushes++;
    this.resetL0();
    for (const a of this.arrays) {
      if (a.valid === 0) continue;
      if (pcid < 0 && globals) {
        // Everything goes: no test per entry.
        a.empty();
        continue;
      }
      for (let i = 0; i < a.ctx.length; i++) {
        const x = a.ctx[i] as number;
        if (x === 0) continue;
        if ((x & GLOBAL_TAG) !== 0 ? globals : pcid < 0 || (x & CTX_MASK) === pcid + 1) a.drop(i);
      }
    }
  }

  /** Entries currently valid. */
  get size(): number {
    return this.arrays.reduce((s, a) => s + a.valid, 0);
  }
}
