/**
 * Translation lookaside buffer (SDM vol. 3A, 4.10).
 *
 * Three set-associative arrays, one per page-size class: 4 KiB, large
 * (2 MiB or 4 MiB, the entry remembers which) and 1 GiB. Entries are tagged
 * with a PCID (0 when CR4.PCIDE=0) or marked global; a lookup matches an
 * entry of the current PCID or a global one. Replacement is LRU per set.
 *
 * What is cached is the translation's permission word (access.ts), never an
 * access decision: rights are re-checked on every hit against the current
 * CR0.WP, SMEP, SMAP, AC, PKRU and CPL.
 *
 * A set count or way count of 0 disables a class (`--tlb off` disables all).
 */
import { PERM_G } from './access.js';
/** Default geometry: roughly a modern core's second-level TLB. */
export const DEFAULT_TLB = {
    small: { sets: 128, ways: 12 },
    large: { sets: 32, ways: 8 },
    huge: { sets: 1, ways: 16 },
};
export const NO_TLB = {
    small: { sets: 0, ways: 0 },
    large: { sets: 0, ways: 0 },
    huge: { sets: 0, ways: 0 },
};
const GLOBAL_TAG = 0x2000;
const CTX_MASK = 0x1fff;
class TlbArray {
    sets;
    ways;
    /** pcid + 1 (0 = invalid), | GLOBAL_TAG for global entries. */
    ctx;
    vpnLo;
    vpnHi;
    shift;
    pfn;
    perm;
    stamp;
    valid = 0;
    constructor(g) {
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
        this.stamp = new Float64Array(n);
    }
}
/** Page number of a VA at `shift`, as two halves. */
function vpnLoOf(vaHi, vaLo, shift) {
    return (vaLo >>> shift) | (vaHi << (32 - shift)) | 0;
}
function vpnHiOf(vaHi, shift) {
    return (vaHi >>> shift) | 0;
}
/** Slots of the level-0 TLB (direct-mapped, 4 KiB granularity). */
const L0_SLOTS = 1024;
/**
 * The TLB, with a small direct-mapped level-0 array in front (as real cores
 * put an L1 dTLB in front of the STLB). A level-0 slot remembers, for one
 * 4 KiB page, which (access kind, user/supervisor) pairs the current control
 * state allows, so a repeated access is a few compares. Any invalidation, and
 * any change of the control state the rights depend on (resetL0), empties it.
 */
export class Tlb {
    config;
    arrays;
    clock = 0;
    enabled;
    epoch = 1;
    l0Epoch = new Int32Array(L0_SLOTS);
    l0Lo = new Int32Array(L0_SLOTS);
    l0Hi = new Int32Array(L0_SLOTS);
    l0Allow = new Int32Array(L0_SLOTS);
    l0Pfn = new Float64Array(L0_SLOTS);
    /** Some level-0 slot came from a large page (so one INVLPG may concern many slots). */
    l0HasLarge = false;
    /** Counters. */
    hits = 0;
    misses = 0;
    fills = 0;
    flushes = 0;
    /** Result of the last hit. */
    hitPfn = 0;
    hitPerm = 0;
    hitShift = 12;
    hitArray = null;
    hitIndex = 0;
    constructor(config = DEFAULT_TLB) {
        this.config = config;
        this.arrays = [new TlbArray(config.small), new TlbArray(config.large), new TlbArray(config.huge)];
        this.enabled = this.arrays.some((a) => a.sets !== 0);
    }
    /** Level-0 lookup of 4 KiB page (vpnLo, vpnHi) for the access/privilege bit `allow`; the frame or -1. */
    l0Lookup(vpnLo, vpnHi, allow) {
        const i = vpnLo & (L0_SLOTS - 1);
        if (this.l0Epoch[i] === this.epoch &&
            this.l0Lo[i] === vpnLo &&
            this.l0Hi[i] === vpnHi &&
            (this.l0Allow[i] & allow) !== 0) {
            this.hits++;
            return this.l0Pfn[i];
        }
        return -1;
    }
    /** Remember in level 0 that `allow` is permitted on page (vpnLo, vpnHi) -> frame `pfn` (from a page of 2^shift bytes). */
    l0Record(vpnLo, vpnHi, pfn, allow, shift) {
        if (!this.enabled)
            return;
        if (shift !== 12)
            this.l0HasLarge = true;
        const i = vpnLo & (L0_SLOTS - 1);
        if (this.l0Epoch[i] === this.epoch && this.l0Lo[i] === vpnLo && this.l0Hi[i] === vpnHi) {
            this.l0Allow[i] = this.l0Allow[i] | allow;
            return;
        }
        this.l0Epoch[i] = this.epoch;
        this.l0Lo[i] = vpnLo;
        this.l0Hi[i] = vpnHi;
        this.l0Pfn[i] = pfn;
        this.l0Allow[i] = allow;
    }
    /** Forget level 0 (rights depend on control state that changed, or entries were invalidated). */
    resetL0() {
        this.epoch++;
        this.l0HasLarge = false;
    }
    /**
     * Look `va` up for `pcid`, trying the 4 KiB, large (with `largeShift`, 21 or
     * 22) and 1 GiB arrays. On a hit sets hitPfn (4 KiB frame of the VA) and
     * hitPerm and returns true.
     */
    lookup(vaHi, vaLo, pcid, largeShift) {
        const want = pcid + 1;
        for (let c = 0; c < 3; c++) {
            const a = this.arrays[c];
            if (a.sets === 0)
                continue;
            const shift = c === 0 ? 12 : c === 1 ? largeShift : 30;
            const lo = vpnLoOf(vaHi, vaLo, shift);
            const hi = vpnHiOf(vaHi, shift);
            const base = (lo & (a.sets - 1)) * a.ways;
            for (let i = base, end = base + a.ways; i < end; i++) {
                const x = a.ctx[i];
                if (x !== 0 &&
                    a.vpnLo[i] === lo &&
                    a.vpnHi[i] === hi &&
                    a.shift[i] === shift &&
                    ((x & CTX_MASK) === want || (x & GLOBAL_TAG) !== 0)) {
                    a.stamp[i] = ++this.clock;
                    this.hits++;
                    const within = shift === 12 ? 0 : ((vaLo >>> 12) | (vaHi << 20)) & ((1 << (shift - 12)) - 1);
                    this.hitPfn = a.pfn[i] + within;
                    this.hitPerm = a.perm[i];
                    this.hitShift = shift;
                    this.hitArray = a;
                    this.hitIndex = i;
                    return true;
                }
            }
        }
        this.misses++;
        return false;
    }
    /** Update the permission word of the entry found by the last lookup (e.g. D set). */
    updateLastHit(perm) {
        if (this.hitArray !== null)
            this.hitArray.perm[this.hitIndex] = perm;
    }
    /** Cache a successful translation of a page of size 2^shift at base frame `pfn`. */
    fill(vaHi, vaLo, pcid, shift, pfn, perm) {
        const a = this.arrays[shift === 12 ? 0 : shift === 30 ? 2 : 1];
        if (a.sets === 0)
            return;
        this.fills++;
        const lo = vpnLoOf(vaHi, vaLo, shift);
        const hi = vpnHiOf(vaHi, shift);
        const ctx = (perm & PERM_G) !== 0 ? GLOBAL_TAG | (pcid + 1) : pcid + 1;
        const base = (lo & (a.sets - 1)) * a.ways;
        let victim = -1;
        let lru = base;
        let oldest = Number.POSITIVE_INFINITY;
        for (let i = base, end = base + a.ways; i < end; i++) {
            const x = a.ctx[i];
            if (x === 0) {
                if (victim < 0)
                    victim = i;
                continue;
            }
            // A refill of a page already cached for this context replaces that entry.
            if (a.vpnLo[i] === lo && a.vpnHi[i] === hi && a.shift[i] === shift && (x & CTX_MASK) === pcid + 1) {
                victim = i;
                break;
            }
            const s = a.stamp[i];
            if (s < oldest) {
                oldest = s;
                lru = i;
            }
        }
        if (victim < 0)
            victim = lru;
        if (a.ctx[victim] === 0)
            a.valid++;
        a.ctx[victim] = ctx;
        a.vpnLo[victim] = lo;
        a.vpnHi[victim] = hi;
        a.shift[victim] = shift;
        a.pfn[victim] = pfn;
        a.perm[victim] = perm;
        a.stamp[victim] = ++this.clock;
    }
    /**
     * Invalidate entries whose page contains `va`: those of `pcid` and, if
     * `globals`, global ones; `pcid` -1 means every PCID.
     */
    flushVa(vaHi, vaLo, pcid, globals) {
        if (this.l0HasLarge)
            this.resetL0();
        else {
            // Only this 4 KiB page's slot can hold the address.
            const vpnLo = vpnLoOf(vaHi, vaLo, 12);
            const i = vpnLo & (L0_SLOTS - 1);
            if (this.l0Lo[i] === vpnLo)
                this.l0Epoch[i] = 0;
        }
        // Only the set the page indexes can hold it: 4 KiB, 2 MiB or 4 MiB, 1 GiB.
        this.flushSet(this.arrays[0], vaHi, vaLo, 12, pcid, globals);
        this.flushSet(this.arrays[1], vaHi, vaLo, 21, pcid, globals);
        this.flushSet(this.arrays[1], vaHi, vaLo, 22, pcid, globals);
        this.flushSet(this.arrays[2], vaHi, vaLo, 30, pcid, globals);
    }
    flushSet(a, vaHi, vaLo, shift, pcid, globals) {
        if (a.valid === 0)
            return;
        const lo = vpnLoOf(vaHi, vaLo, shift);
        const hi = vpnHiOf(vaHi, shift);
        const base = (lo & (a.sets - 1)) * a.ways;
        for (let i = base, end = base + a.ways; i < end; i++) {
            const x = a.ctx[i];
            if (x === 0 || a.shift[i] !== shift || a.vpnLo[i] !== lo || a.vpnHi[i] !== hi)
                continue;
            if ((x & GLOBAL_TAG) !== 0 ? globals : pcid < 0 || (x & CTX_MASK) === pcid + 1) {
                a.ctx[i] = 0;
                a.valid--;
            }
        }
    }
    /**
     * Invalidate every entry of `pcid` (-1: every PCID); global entries too if
     * `globals`.
     */
    flushContext(pcid, globals) {
        this.flushes++;
        this.resetL0();
        for (const a of this.arrays) {
            if (a.valid === 0)
                continue;
            for (let i = 0; i < a.ctx.length; i++) {
                const x = a.ctx[i];
                if (x === 0)
                    continue;
                if ((x & GLOBAL_TAG) !== 0 ? globals : pcid < 0 || (x & CTX_MASK) === pcid + 1) {
                    a.ctx[i] = 0;
                    a.valid--;
                }
            }
        }
    }
    /** Entries currently valid. */
    get size() {
        return this.arrays.reduce((s, a) => s + a.valid, 0);
    }
}
//# sourceMappingURL=tlb.js.map