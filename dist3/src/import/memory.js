import { ONES_FRAME, ZERO_FRAME } from '../machine/memory.js';
import { FRAME_BYTES, FrameCache, newFrame } from './frames.js';
const MEMO_SLOTS = 4096;
export class GuestMemory {
    loads;
    backing;
    memoPfn = new Float64Array(MEMO_SLOTS).fill(-1);
    memoFrame = new Array(MEMO_SLOTS).fill(ZERO_FRAME);
    /** Frames that straddle a segment boundary, assembled once. */
    mixed = new FrameCache(64);
    constructor(
    /** By ascending address, not overlapping (elf.ts checks). */
    loads, backing) {
        this.loads = loads;
        this.backing = backing;
    }
    /** Index of the last segment starting at or below `addr`, or -1. */
    segmentAt(addr) {
        let lo = 0;
        let hi = this.loads.length - 1;
        let found = -1;
        while (lo <= hi) {
            const mid = (lo + hi) >>> 1;
            if (this.loads[mid].paddr <= addr) {
                found = mid;
                lo = mid + 1;
            }
            else {
                hi = mid - 1;
            }
        }
        return found;
    }
    /** Segments overlapping frame `pfn`: indices first..last (empty when first > last). */
    overlapping(pfn) {
        const base = pfn * FRAME_BYTES;
        let first = this.segmentAt(base);
        const s = this.loads[first];
        if (first < 0 || s.paddr + s.memsz <= base)
            first++;
        return [first, this.segmentAt(base + FRAME_BYTES - 1)];
    }
    /** Does any RAM lie in frame `pfn`? */
    isRam(pfn) {
        const [first, last] = this.overlapping(pfn);
        return first <= last;
    }
    frameForRead(pfn) {
        // Walks read the same few hundred table frames over and over: remember them.
        const i = pfn & (MEMO_SLOTS - 1);
        if (this.memoPfn[i] === pfn)
            return this.memoFrame[i];
        const f = this.lookup(pfn);
        this.memoPfn[i] = pfn;
        this.memoFrame[i] = f;
        return f;
    }
    lookup(pfn) {
        const base = pfn * FRAME_BYTES;
        const s = this.loads[this.segmentAt(base)];
        if (s !== undefined) {
            if (base + FRAME_BYTES <= s.paddr + s.filesz)
                return this.backing.frame(s, pfn);
            if (base >= s.paddr + s.filesz && base + FRAME_BYTES <= s.paddr + s.memsz)
                return ZERO_FRAME;
        }
        if (!this.isRam(pfn))
            return ONES_FRAME;
        let f = this.mixed.get(pfn);
        if (f === undefined) {
            f = this.assemble(pfn);
            this.mixed.set(pfn, f);
        }
        return f;
    }
    /** A frame partly outside RAM or across segments: ones where no RAM is, zeros past p_filesz. */
    assemble(pfn) {
        const base = pfn * FRAME_BYTES;
        const { words, bytes } = newFrame();
        bytes.fill(0xff);
        const [first, last] = this.overlapping(pfn);
        for (let i = first; i <= last; i++) {
            const s = this.loads[i];
            const from = Math.max(base, s.paddr);
            const to = Math.min(base + FRAME_BYTES, s.paddr + s.memsz);
            const dataTo = Math.min(to, s.paddr + s.filesz);
            if (dataTo > from)
                this.backing.read(s, from - s.paddr, bytes, from - base, dataTo - from);
            if (to > Math.max(from, dataTo))
                bytes.fill(0, Math.max(from, dataTo) - base, to - base);
        }
        return words;
    }
    close() {
        this.backing.close();
    }
}
//# sourceMappingURL=memory.js.map