/**
 * Machine memory: the simulated host's RAM as sparse 4 KiB frames.
 *
 * Rules this module keeps:
 * - A frame is materialized (given storage) on its first write; until then it
 *   reads as zeros through the shared ZERO_FRAME, which nobody may write.
 * - A frame is 1024 32-bit words in host byte order; the simulator assumes a
 *   little-endian host (x86, Arm), so word i holds bytes 4i..4i+3 as x86 does.
 *   Materialized frames live side by side in large flat buffers (slabs of
 *   1024 frames, 4 MiB, allocated as needed), found through a sparse
 *   directory of per-16 MiB chunks mapping frame -> slot; a scrubbed frame's
 *   slot is reused. Hot paths use locate() (buffer and word offset, no
 *   allocation); read()/write() give a frame-sized view for the rest.
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
export const ZERO_FRAME: Uint32Array = new Uint32Array(FRAME_WORDS);
/** Shared all-ones frame for reads of unbacked addresses. Never written. */
export const ONES_FRAME: Uint32Array = new Uint32Array(FRAME_WORDS).fill(0xffffffff);

export const OWNER_FREE = 0;
export const OWNER_HYPERVISOR = 0xffff;

const CHUNK_SHIFT = 12; // 4096 frames (16 MiB) per directory chunk
const CHUNK_MASK = (1 << CHUNK_SHIFT) - 1;
/** Frames per slab: 1024 (4 MiB), allocated as frames are materialized. */
export const SLAB_SHIFT = 10;
const SLAB_MASK = (1 << SLAB_SHIFT) - 1;

/** Who owns guest RAM: a placement reports the domain owning an mfn it placed. */
export interface OwnerSource {
  ownerOf(mfn: number): number;
}

/**
 * Where the last locate() found its frame: the word offset of the frame's
 * first word in the buffer locate() returned. One shared cell (not a field of
 * each space) so every reader loads it the same way.
 */
const located = new Int32Array(1);
export const FRAME_AT: Int32Array = located;

/** A standalone frame-sized array as locate() gives it: the array, the frame at word 0. */
export function frameAt(f: Uint32Array): Uint32Array {
  FRAME_AT[0] = 0;
  return f;
}

/** locate() of an unbacked frame: ONES_FRAME at word 0. */
export function onesAt(): Uint32Array {
  FRAME_AT[0] = 0;
  return ONES_FRAME;
}

export class MachineMemory {
  /** Number of machine frames; valid mfns are 0..frames-1. */
  readonly frames: number;
  /**
   * Chunk directory, allocated dense up front (one slot per 4096 frames) so
   * lookups stay on V8's fast path; a chunk maps each of its frames to its
   * slot in the slabs, or -1 while the frame has no storage.
   */
  private readonly dir: (Int32Array | undefined)[];
  /**
   * Frame storage: slot s is words (s & SLAB_MASK) * 1024 .. +1023 of slab
   * s >> SLAB_SHIFT. Frames live side by side in large buffers, so a read is
   * two dependent loads (chunk, slab) and no per-frame object.
   */
  private readonly slabs: Uint32Array[] = [];
  /** Per slot, the frame's view for read()/write() (made on first use), so a frame keeps one identity while it has storage. */
  private readonly views: (Uint32Array | undefined)[] = [];
  /** Slots of scrubbed frames, reused before new ones. */
  private readonly freeSlots: number[] = [];
  private slotsUsed = 0;
  private readonly explicitOwner = new Map<number, number>();
  private readonly ownerSources: OwnerSource[] = [];
  private materialized = 0;
  /** Materialized frames handed out by alloc() (hypervisor frames), so the rest is guest RAM in use. */
  private materializedAllocated = 0;
  private freeList: number[] = [];
  private nextFree: (() => number) | null = null;

  constructor(frames: number) {
    if (!Number.isInteger(frames) || frames <= 0 || frames > 2 ** 40) {
      throw new RangeError(`machine memory of ${frames} frames is impossible`);
    }
    this.frames = frames;
    this.dir = new Array(Math.ceil(frames / (1 << CHUNK_SHIFT))).fill(undefined);
  }

  /** Frames that hold storage (were written at least once). */
  get materializedFrames(): number {
    return this.materialized;
  }

  /** The frame's storage slot, or -1 if it has none. */
  private slotOf(mfn: number): number {
    const chunk = this.dir[mfn >>> CHUNK_SHIFT];
    return chunk === undefined ? -1 : (chunk[mfn & CHUNK_MASK] as number);
  }

  /**
   * The hot read path: the buffer holding frame `mfn`, with the frame's first
   * word at FRAME_AT[0] (ZERO_FRAME at 0 if never written). No allocation.
   */
  locate(mfn: number): Uint32Array {
    const chunk = this.dir[mfn >>> CHUNK_SHIFT];
    const s = chunk === undefined ? -1 : (chunk[mfn & CHUNK_MASK] as number);
    if (s < 0) {
      located[0] = 0;
      return ZERO_FRAME;
    }
    // located, not FRAME_AT: V8 checks an exported binding at each use, not a module-local one (walker.ts).
    located[0] = (s & SLAB_MASK) << 10;
    return this.slabs[s >>> SLAB_SHIFT] as Uint32Array;
  }

  /** The hot write path: as locate(), materializing the frame on first use. */
  locateForWrite(mfn: number): Uint32Array {
    let s = this.slotOf(mfn);
    if (s < 0) s = this.materialize(mfn);
    located[0] = (s & SLAB_MASK) << 10;
    return this.slabs[s >>> SLAB_SHIFT] as Uint32Array;
  }

  /** The frame's words for reading: ZERO_FRAME if never written (a view of its slab otherwise; not for hot paths). */
  read(mfn: number): Uint32Array {
    const s = this.slotOf(mfn);
    return s < 0 ? ZERO_FRAME : this.view(s);
  }

  /** The frame's words for writing, materializing it on first use. */
  write(mfn: number): Uint32Array {
    let s = this.slotOf(mfn);
    if (s < 0) s = this.materialize(mfn);
    return this.view(s);
  }

  /** Slot `s` as a frame-sized view, one per slot while it holds a frame. */
  private view(s: number): Uint32Array {
    let v = this.views[s];
    if (v === undefined) {
      const at = (s & SLAB_MASK) << 10;
      v = (this.slabs[s >>> SLAB_SHIFT] as Uint32Array).subarray(at, at + FRAME_WORDS);
      this.views[s] = v;
    }
    return v;
  }

  /** Give frame `mfn` a zeroed slot; returns the slot. */
  private materialize(mfn: number): number {
    if (mfn < 0 || mfn >= this.frames || !Number.isInteger(mfn)) {
      throw new RangeError(`mfn ${mfn} is outside machine memory`);
    }
    const hi = mfn >>> CHUNK_SHIFT;
    let chunk = this.dir[hi];
    if (chunk === undefined) {
      chunk = new Int32Array(1 << CHUNK_SHIFT).fill(-1);
      this.dir[hi] = chunk;
    }
    let s = this.freeSlots.pop();
    if (s === undefined) {
      s = this.slotsUsed++;
      // New slabs come zeroed (and untouched pages cost no resident memory).
      if ((s & SLAB_MASK) === 0) {
        this.slabs.push(new Uint32Array(FRAME_WORDS << SLAB_SHIFT));
        // Views are made in any slot order: keep their array dense (a far write would make it a dictionary).
        for (let k = 0; k <= SLAB_MASK; k++) this.views.push(undefined);
      }
    } else {
      const at = (s & SLAB_MASK) << 10;
      (this.slabs[s >>> SLAB_SHIFT] as Uint32Array).fill(0, at, at + FRAME_WORDS);
    }
    chunk[mfn & CHUNK_MASK] = s;
    this.materialized++;
    if (this.explicitOwner.has(mfn)) this.materializedAllocated++;
    return s;
  }

  /** Materialized frames not handed out by alloc(): the guest RAM that holds data. */
  get materializedUnallocated(): number {
    return this.materialized - this.materializedAllocated;
  }

  /** True if the frame has storage. */
  isMaterialized(mfn: number): boolean {
    return this.slotOf(mfn) >= 0;
  }

  /**
   * Drop a frame's storage (it reads as zeros again); its slot is reused. A
   * view of the frame from read()/write() must not be kept past this.
   */
  scrub(mfn: number): void {
    const chunk = this.dir[mfn >>> CHUNK_SHIFT];
    if (chunk === undefined) return;
    const s = chunk[mfn & CHUNK_MASK] as number;
    if (s < 0) return;
    chunk[mfn & CHUNK_MASK] = -1;
    this.views[s] = undefined;
    this.freeSlots.push(s);
    this.materialized--;
  }

  /** Every materialized mfn, ascending. */
  *materializedMfns(): Generator<number> {
    for (let hi = 0; hi < this.dir.length; hi++) {
      const chunk = this.dir[hi];
      if (chunk === undefined) continue;
      for (let lo = 0; lo < chunk.length; lo++) {
        if ((chunk[lo] as number) >= 0) yield hi * (1 << CHUNK_SHIFT) + lo;
      }
    }
  }

  addOwnerSource(src: OwnerSource): void {
    this.ownerSources.push(src);
  }

  ownerOf(mfn: number): number {
    const o = this.explicitOwner.get(mfn);
    if (o !== undefined) return o;
    for (const s of this.ownerSources) {
      const d = s.ownerOf(mfn);
      if (d !== OWNER_FREE) return d;
    }
    return OWNER_FREE;
  }

  /**
   * Where free frames come from: a generator of candidate mfns supplied by the
   * placement (frames no domain's RAM occupies). Candidates already owned are
   * skipped.
   */
  setFreeFrameSource(next: () => number): void {
    this.nextFree = next;
  }

  /** Allocate a zeroed frame for `owner`. Throws when machine memory is exhausted. */
  alloc(owner: number): number {
    let mfn = this.freeList.pop();
    while (mfn === undefined) {
      const c = this.nextFree ? this.nextFree() : -1;
      if (c < 0) throw new RangeError('machine memory exhausted');
      if (this.ownerOf(c) === OWNER_FREE) mfn = c;
    }
    this.explicitOwner.set(mfn, owner);
    return mfn;
  }

  free(mfn: number): void {
    if (!this.explicitOwner.has(mfn)) throw new Error(`free of unallocated mfn ${mfn}`);
    if (this.isMaterialized(mfn)) this.materializedAllocated--;
    this.explicitOwner.delete(mfn);
    this.scrub(mfn);
    this.freeList.push(mfn);
  }

  /** Frames handed out by alloc() and not yet freed. */
  get allocatedFrames(): number {
    return this.explicitOwner.size;
  }
}
