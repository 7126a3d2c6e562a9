/**
 * The guest kernel's physical memory manager: which guest frames are free,
 * who holds how many references to each (struct page's refcount), and which
 * free frames are known to be zero. Frames never used since boot are zero;
 * a page table is freed only after the kernel cleared every entry it had set,
 * so it goes back clean too; anything else must be cleared before reuse.
 *
 * 4 KiB frames are handed out bottom-up, 2 MiB blocks (transparent huge
 * pages) top-down from the end of RAM, each with its own free list, so no
 * buddy allocator is needed to find an aligned block.
 */
export class OutOfMemory extends Error {
}
export const FRAMES_PER_HUGE = 512;
export class FrameAllocator {
    frames;
    /** References per frame; 0 = free (or never used). */
    refs;
    bump;
    hugeBump;
    clean = [];
    dirty = [];
    hugeFree = [];
    inUse = 0;
    peakInUse = 0;
    constructor(frames, 
    /** First frame the allocator may hand out (below: firmware and kernel image). */
    firstFree) {
        this.frames = frames;
        this.refs = new Int32Array(frames);
        this.bump = firstFree;
        this.hugeBump = Math.floor(frames / FRAMES_PER_HUGE) * FRAMES_PER_HUGE;
    }
    /** Reserve frames [first, last] for the kernel (image, boot tables) with one reference each. */
    reserve(first, last) {
        for (let f = first; f <= last; f++) {
            if (this.refs[f] === 0)
                this.count(1);
            this.refs[f] = this.refs[f] + 1;
        }
    }
    /**
     * One frame with one reference. `zero` says whether the caller needs it
     * zero; the result's `clean` says whether it is (else the caller clears it).
     */
    alloc(wantClean) {
        let gfn;
        let clean = true;
        if (wantClean)
            gfn = this.clean.pop();
        if (gfn === undefined) {
            gfn = this.dirty.pop();
            clean = false;
        }
        if (gfn === undefined && !wantClean) {
            gfn = this.clean.pop();
            clean = true;
        }
        if (gfn === undefined) {
            if (this.bump >= this.hugeBump)
                throw new OutOfMemory('out of guest memory');
            gfn = this.bump++;
            clean = true;
        }
        this.refs[gfn] = 1;
        this.count(1);
        return { gfn, clean };
    }
    /**
     * A 2 MiB-aligned block of 512 frames, or -1. References are counted per
     * small frame: a huge mapping holds one on each, so that an address space
     * that splits the mapping (and then unmaps part of it) and another that
     * still maps the block whole account consistently.
     */
    allocHuge() {
        let first = this.hugeFree.pop();
        if (first === undefined) {
            const next = this.hugeBump - FRAMES_PER_HUGE;
            if (next < this.bump)
                return -1;
            this.hugeBump = next;
            first = next;
        }
        this.refs.fill(1, first, first + FRAMES_PER_HUGE);
        this.count(FRAMES_PER_HUGE);
        return first;
    }
    /** One more whole-block mapping (fork). */
    getHuge(first) {
        for (let f = first; f < first + FRAMES_PER_HUGE; f++)
            this.refs[f] = this.refs[f] + 1;
    }
    /** Does anyone but one holder reference any frame of the block? */
    hugeShared(first) {
        for (let f = first; f < first + FRAMES_PER_HUGE; f++)
            if (this.refs[f] > 1)
                return true;
        return false;
    }
    get(gfn) {
        this.refs[gfn] = this.refs[gfn] + 1;
    }
    /** Drop a reference; the frame is freed at zero. `clean`: its contents are all zero. */
    put(gfn, clean) {
        const r = this.refs[gfn] - 1;
        if (r < 0)
            throw new Error(`guest kernel: frame ${gfn} freed twice`);
        this.refs[gfn] = r;
        if (r === 0) {
            (clean ? this.clean : this.dirty).push(gfn);
            this.inUse--;
        }
    }
    /** Drop a whole-block mapping; the block is freed whole if nothing else holds any of it. */
    putHuge(first) {
        let freed = 0;
        for (let f = first; f < first + FRAMES_PER_HUGE; f++) {
            const r = this.refs[f] - 1;
            if (r < 0)
                throw new Error(`guest kernel: frame ${f} freed twice`);
            this.refs[f] = r;
            if (r === 0)
                freed++;
        }
        if (freed === FRAMES_PER_HUGE) {
            this.hugeFree.push(first);
            this.inUse -= FRAMES_PER_HUGE;
            return;
        }
        // Part of the block is still mapped in small pages elsewhere: free the rest one by one.
        for (let f = first; f < first + FRAMES_PER_HUGE; f++) {
            if (this.refs[f] === 0) {
                this.dirty.push(f);
                this.inUse--;
            }
        }
    }
    count(n) {
        this.inUse += n;
        if (this.inUse > this.peakInUse)
            this.peakInUse = this.inUse;
    }
}
//# sourceMappingURL=frames.js.map