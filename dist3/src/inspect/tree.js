import { PTE_A } from '../arch/x86/bits.js';
import { entryFrameOf, leafFrame as entryLeafFrame } from '../arch/x86/entry.js';
import { leafPermission } from '../arch/x86/walker.js';
import { ImageError } from './image.js';
/** More leaves than this is not an address space to list (2^24 leaves of 4 KiB = 64 GiB). */
export const MAX_LEAVES = 1 << 24;
/**
 * More table visits than this is not an address space either: 64 GiB of
 * 4 KiB pages takes 2^15 page tables. Bounds the work when shared tables
 * hold no leaves (every entry not present) yet are reached 512^3 times.
 */
export const MAX_TABLE_VISITS = 1 << 20;
/**
 * The tables on the current descent path and the work done so far, so that
 * an enumeration that must stop says why: tables that loop (a table reached
 * again below itself, e.g. a recursive self-map) or tables merely shared by
 * many entries, which is legal and loop-free but may map too much to list.
 */
export class Descent {
    maxVisits;
    path = [];
    visits = 0;
    /** Frame of the first table found on its own descent path, or -1. */
    loopAt = -1;
    constructor(maxVisits = MAX_TABLE_VISITS) {
        this.maxVisits = maxVisits;
    }
    enter(pfn) {
        if (++this.visits > this.maxVisits)
            throw this.tooMuch(`more than ${this.maxVisits} page-table visits`);
        if (this.loopAt < 0 && this.path.includes(pfn))
            this.loopAt = pfn;
        this.path.push(pfn);
    }
    leave() {
        this.path.pop();
    }
    /** The error for a limit passed (`what`: "more than N mappings"), naming the loop when there is one. */
    tooMuch(what) {
        return new ImageError(this.loopAt >= 0
            ? `${what}: the page tables loop (the table at 0x${(this.loopAt * 4096).toString(16)} is reached again below itself)`
            : `${what}: page tables shared by many entries map too much to list (they do not loop)`);
    }
}
/** PAE PDPTE bit 5: QEMU's TCG walker sets it; the SDM reserves it (README: treat as noise). */
export const PDPTE_QEMU_A = PTE_A;
/** Next-level table frame of a non-leaf entry. */
export function tableFrame(wide, lo, hi) {
    return entryFrameOf(wide, lo, hi);
}
/** First 4 KiB frame mapped by a leaf entry at `level` (a format with PS honoured there, or level 1). */
export function leafFrame(fmt, level, lo, hi) {
    return entryLeafFrame(lo, hi, fmt.mode.wide, level > 1, fmt.leafShift[level]);
}
export function enumerate(space, fmt, root, v, limit = MAX_LEAVES, descent = new Descent()) {
    const mode = fmt.mode;
    const wide = mode.wide;
    const leaf = { va: 0, level: 0, shift: 0, lo: 0, hi: 0, perm: 0, pfn: 0 };
    let leaves = 0;
    const report = (kind, level, va, lo, hi, bLo = 0, bHi = 0) => v.anomaly?.({ kind, level, va, lo, hi, bitsLo: bLo, bitsHi: bHi });
    const table = (pfn, level, vaBase, acc, xd) => {
        descent.enter(pfn);
        v.table?.(level, pfn);
        const f = space.frameForRead(pfn);
        const span = 2 ** mode.shift[level];
        const n = mode.indexMask[level] + 1;
        for (let i = 0; i < n; i++) {
            const lo = (wide ? f[2 * i] : f[i]);
            if ((lo & 1) === 0)
                continue;
            const hi = wide ? f[2 * i + 1] : 0;
            entry(level, lo, hi, vaBase + i * span, acc, xd);
        }
        descent.leave();
    };
    const entry = (level, lo, hi, va, acc, xd) => {
        const ps = (lo >>> 7) & 1 & (fmt.largeMask >>> level);
        const r = level * 2 + ps;
        const bLo = lo & fmt.rsvdLo[r];
        const bHi = hi & fmt.rsvdHi[r];
        if ((bLo | bHi) !== 0) {
            report('reserved', level, va, lo, hi, bLo, bHi);
            return;
        }
        acc &= lo;
        xd |= hi;
        if (level === 1 || ps !== 0) {
            if (++leaves > limit)
                throw descent.tooMuch(`more than ${limit} mappings`);
            const perm = leafPermission(fmt, acc, xd, lo, hi);
            leaf.va = va;
            leaf.level = level;
            leaf.shift = fmt.leafShift[level];
            leaf.lo = lo;
            leaf.hi = hi;
            leaf.perm = perm;
            leaf.pfn = leafFrame(fmt, level, lo, hi);
            v.leaf?.(leaf);
            return;
        }
        const next = tableFrame(wide, lo, hi);
        if (!space.isRam(next)) {
            report('table-outside-ram', level, va, lo, hi);
            return;
        }
        table(next, level - 1, va, acc, xd);
    };
    if (!space.isRam(root.pfn)) {
        report('root-outside-ram', mode.topLevel, 0, Number(root.cr3 & 0xffffffffn), Number(root.cr3 >> 32n));
        return;
    }
    if (root.pdpte === null) {
        table(root.pfn, mode.topLevel, 0, -1, 0);
        return;
    }
    // PAE: the PDPTE registers. They carry no R/W, U/S or XD, so they add no rights.
    descent.enter(root.pfn);
    v.table?.(3, root.pfn);
    for (let i = 0; i < 4; i++) {
        const lo = root.pdpte[2 * i];
        const hi = root.pdpte[2 * i + 1];
        if ((lo & 1) === 0)
            continue;
        const va = i * 2 ** 30;
        if ((lo & PDPTE_QEMU_A) !== 0)
            report('pdpte-accessed', 3, va, lo, hi, PDPTE_QEMU_A, 0);
        const bLo = lo & fmt.pdpteRsvdLo & ~PDPTE_QEMU_A;
        const bHi = hi & fmt.pdpteRsvdHi;
        // MOV CR3 would have refused this (#GP); the walker, like QEMU, uses the entry anyway.
        if ((bLo | bHi) !== 0)
            report('pdpte-reserved', 3, va, lo, hi, bLo, bHi);
        const next = tableFrame(true, lo, hi);
        if (!space.isRam(next))
            report('table-outside-ram', 3, va, lo, hi);
        else
            table(next, 2, va, -1, 0);
    }
}
//# sourceMappingURL=tree.js.map