/**
 * The domain's physmap: what backs each guest frame below the end of RAM, as
 * the hypervisor decided it (scenario spec: the `p2m` op and rule 5; Xen
 * changes it with XENMEM_populate_physmap / decrease_reservation, ballooning,
 * and p2m_change_type_range). Pagers derive their own structures from it:
 * the shadow pager's P2M table, native hardware's view of guest memory.
 *
 *   ram   ordinary memory;
 *   rom   reads normally, every write (guest, device, A/D update) discarded;
 *   none  taken away (ballooned out): reads all ones, writes discarded, like
 *         memory above the end of RAM; it comes back zero-filled.
 *
 * Kept as sorted, disjoint intervals of the frames that are not RAM, so a
 * change over a whole 1 TiB guest is one interval, and a lookup in a domain
 * that never changed a type is one comparison.
 */
export const PHYS_RAM = 0;
export const PHYS_ROM = 1;
export const PHYS_NONE = 2;
/** Names as the scenario format spells them. */
export const PHYS_TYPE_NAMES = ['ram', 'rom', 'none'];
export class Physmap {
    /** Interval starts, exclusive ends and types, ascending; RAM is never stored. */
    starts = [];
    ends = [];
    types = [];
    /** True while every frame is RAM (the fast path of every guest-memory access). */
    get allRam() {
        return this.starts.length === 0;
    }
    /** Index of the interval holding `gfn`, or -1. */
    find(gfn) {
        let lo = 0;
        let hi = this.starts.length - 1;
        while (lo <= hi) {
            const mid = (lo + hi) >>> 1;
            if (gfn < this.starts[mid])
                hi = mid - 1;
            else if (gfn >= this.ends[mid])
                lo = mid + 1;
            else
                return mid;
        }
        return -1;
    }
    typeOf(gfn) {
        if (this.starts.length === 0)
            return PHYS_RAM;
        const i = this.find(gfn);
        return i < 0 ? PHYS_RAM : this.types[i];
    }
    /** Is any frame of [first, first+count) not RAM? */
    anyNotRam(first, count) {
        const end = first + count;
        for (let i = 0; i < this.starts.length; i++) {
            if (this.starts[i] < end && this.ends[i] > first)
                return true;
        }
        return false;
    }
    /** Give frames [first, first+count) type `type`. */
    set(first, count, type) {
        const end = first + count;
        const starts = [];
        const ends = [];
        const types = [];
        const push = (s, e, t) => {
            if (e <= s || t === PHYS_RAM)
                return;
            const n = starts.length - 1;
            // Merge with the previous interval when they touch and agree.
            if (n >= 0 && ends[n] === s && types[n] === t)
                ends[n] = e;
            else {
                starts.push(s);
                ends.push(e);
                types.push(t);
            }
        };
        let placed = false;
        for (let i = 0; i < this.starts.length; i++) {
            const s = this.starts[i];
            const e = this.ends[i];
            const t = this.types[i];
            if (!placed && s >= first) {
                push(first, end, type);
                placed = true;
            }
            // The parts of the old interval outside [first, end).
            push(s, Math.min(e, first), t);
            if (!placed && e > first) {
                push(first, end, type);
                placed = true;
            }
            push(Math.max(s, end), e, t);
        }
        if (!placed)
            push(first, end, type);
        this.starts = starts;
        this.ends = ends;
        this.types = types;
    }
}
//# sourceMappingURL=physmap.js.map