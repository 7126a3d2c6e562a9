/**
 * Machine memory: the simulated host's RAM as sparse 4 KiB frames.
 *
 * Rules this module keeps:
 * - A frame is materialized (given storage) on its first write; until then it
 *   reads as zeros through the shared ZERO_FRAME, which nobody may write.
 * - Frames are Uint32Array(1024) in host byte order; the simulator assumes a
 *   little-endian host (x86, Arm), so word i holds bytes 4i..4i+3 as x86 does.
 *   A 64-bit paging entry is two words: low half (flags, low frame bits) and
 *   high half (high frame bits, protection key, XD). No BigInt here.
 * - Every frame has an owner: a domain id, OWNER_HYPERVISOR, or OWNER_FREE.
 *   Guest RAM ownership comes from the domain's placement (a function, so a
 *   sparse 1 TiB guest costs nothing up front); hypervisor frames are recorded
 *   explicitly by the allocator.
 */
export const FRAME_WORDS = 1024;
export const FRAME_BYTES = 4096;
/** Shared all-zero frame for reads of never-written memory. Never written. */
export const ZERO_FRAME = new Uint32Array(FRAME_WORDS);
/** Shared all-ones frame for reads of unbacked addresses. Never written. */
export const ONES_FRAME = new Uint32Array(FRAME_WORDS).fill(0xffffffff);
export const OWNER_FREE = 0;
export const OWNER_HYPERVISOR = 0xffff;
const CHUNK_SHIFT = 12; // 4096 frames (16 MiB) per directory chunk
const CHUNK_MASK = (1 << CHUNK_SHIFT) - 1;
export class MachineMemory {
    /** Number of machine frames; valid mfns are 0..frames-1. */
    frames;
    /** Chunk directory, allocated dense up front so lookups stay on V8's fast path. */
    dir;
    explicitOwner = new Map();
    ownerSources = [];
    materialized = 0;
    /** Materialized frames handed out by alloc() (hypervisor frames), so the rest is guest RAM in use. */
    materializedAllocated = 0;
    freeList = [];
    nextFree = null;
    constructor(frames) {
        if (!Number.isInteger(frames) || frames <= 0 || frames > 2 ** 40) {
            throw new RangeError(`machine memory of ${frames} frames is impossible`);
        }
        this.frames = frames;
        this.dir = new Array(Math.ceil(frames / (1 << CHUNK_SHIFT))).fill(undefined);
    }
    /** Frames that hold storage (were written at least once). */
    get materializedFrames() {
        return this.materialized;
    }
    /** The frame's words for reading: ZERO_FRAME if never written. */
    read(mfn) {
        const chunk = this.dir[mfn >>> CHUNK_SHIFT];
        if (chunk === undefined)
            return ZERO_FRAME;
        return chunk[mfn & CHUNK_MASK] ?? ZERO_FRAME;
    }
    /** The frame's words for writing, materializing it on first use. */
    write(mfn) {
        const hi = mfn >>> CHUNK_SHIFT;
        let chunk = this.dir[hi];
        if (chunk === undefined) {
            chunk = new Array(1 << CHUNK_SHIFT).fill(undefined);
            this.dir[hi] = chunk;
        }
        let f = chunk[mfn & CHUNK_MASK];
        if (f === undefined) {
            if (mfn < 0 || mfn >= this.frames || !Number.isInteger(mfn)) {
                throw new RangeError(`mfn ${mfn} is outside machine memory`);
            }
            f = new Uint32Array(FRAME_WORDS);
            chunk[mfn & CHUNK_MASK] = f;
            this.materialized++;
            if (this.explicitOwner.has(mfn))
                this.materializedAllocated++;
        }
        return f;
    }
    /** Materialized frames not handed out by alloc(): the guest RAM that holds data. */
    get materializedUnallocated() {
        return this.materialized - this.materializedAllocated;
    }
    /** True if the frame has storage. */
    isMaterialized(mfn) {
        const chunk = this.dir[mfn >>> CHUNK_SHIFT];
        return chunk?.[mfn & CHUNK_MASK] !== undefined;
    }
    /** Drop a frame's storage (it reads as zeros again). */
    scrub(mfn) {
        const chunk = this.dir[mfn >>> CHUNK_SHIFT];
        if (chunk?.[mfn & CHUNK_MASK] !== undefined) {
            chunk[mfn & CHUNK_MASK] = undefined;
            this.materialized--;
        }
    }
    /** Every materialized mfn, ascending. */
    *materializedMfns() {
        for (let hi = 0; hi < this.dir.length; hi++) {
            const chunk = this.dir[hi];
            if (chunk === undefined)
                continue;
            for (let lo = 0; lo < chunk.length; lo++) {
                if (chunk[lo] !== undefined)
                    yield (hi << CHUNK_SHIFT) | lo;
            }
        }
    }
    addOwnerSource(src) {
        this.ownerSources.push(src);
    }
    ownerOf(mfn) {
        const o = this.explicitOwner.get(mfn);
        if (o !== undefined)
            return o;
        for (const s of this.ownerSources) {
            const d = s.ownerOf(mfn);
            if (d !== OWNER_FREE)
                return d;
        }
        return OWNER_FREE;
    }
    /**
     * Where free frames come from: a generator of candidate mfns supplied by the
     * placement (frames no domain's RAM occupies). Candidates already owned are
     * skipped.
     */
    setFreeFrameSource(next) {
        this.nextFree = next;
    }
    /** Allocate a zeroed frame for `owner`. Throws when machine memory is exhausted. */
    alloc(owner) {
        let mfn = this.freeList.pop();
        while (mfn === undefined) {
            const c = this.nextFree ? this.nextFree() : -1;
            if (c < 0)
                throw new RangeError('machine memory exhausted');
            if (this.ownerOf(c) === OWNER_FREE)
                mfn = c;
        }
        this.explicitOwner.set(mfn, owner);
        return mfn;
    }
    free(mfn) {
        if (!this.explicitOwner.has(mfn))
            throw new Error(`free of unallocated mfn ${mfn}`);
        if (this.isMaterialized(mfn))
            this.materializedAllocated--;
        this.explicitOwner.delete(mfn);
        this.scrub(mfn);
        this.freeList.push(mfn);
    }
    /** Frames handed out by alloc() and not yet freed. */
    get allocatedFrames() {
        return this.explicitOwner.size;
    }
}
//# sourceMappingURL=memory.js.map