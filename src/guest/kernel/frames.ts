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
 *
 * The balloon driver (balloon.ts) takes free 4 KiB frames out of the
 * allocator (balloonTake) and later gives them back (balloonGive): a
 * ballooned frame is neither free nor in use, it is marked in `ballooned`,
 * and it comes back zero (the hypervisor zero-fills memory it gives back),
 * so onto the clean list. When a 4 KiB allocation finds nothing free,
 * `onExhausted` (the balloon's deflate-on-OOM) may give frames back before
 * the allocator gives up.
 */
export class OutOfMemory extends Error {}

export const FRAMES_PER_HUGE = 512;

export class FrameAllocator {
  /** References per frame; 0 = free (or never used). */
  readonly refs: Int32Array;
  private bump: number;
  private hugeBump: number;
  private readonly clean: number[] = [];
  private readonly dirty: number[] = [];
  private readonly hugeFree: number[] = [];
  inUse = 0;
  peakInUse = 0;
  /** 1 for a frame the balloon holds (given back to the hypervisor): the kernel must not touch it. */
  readonly ballooned: Uint8Array;
  /** Frames the balloon holds. */
  balloonedFrames = 0;
  /** Called when a 4 KiB allocation finds no free frame; returns how many frames it freed. */
  onExhausted: (() => number) | null = null;

  constructor(
    readonly frames: number,
    /** First frame the allocator may hand out (below: firmware and kernel image). */
    firstFree: number,
  ) {
    this.refs = new Int32Array(frames);
    this.ballooned = new Uint8Array(frames);
    this.bump = firstFree;
    this.hugeBump = Math.floor(frames / FRAMES_PER_HUGE) * FRAMES_PER_HUGE;
  }

  /** Reserve frames [first, last] for the kernel (image, boot tables) with one reference each. */
  reserve(first: number, last: number): void {
    for (let f = first; f <= last; f++) {
      if (this.refs[f] === 0) this.count(1);
      this.refs[f] = (this.refs[f] as number) + 1;
    }
  }

  /**
   * One frame with one reference. `zero` says whether the caller needs it
   * zero; the result's `clean` says whether it is (else the caller clears it).
   */
  alloc(wantClean: boolean): { gfn: number; clean: boolean } {
    let gfn: number | undefined;
    let clean = true;
    if (wantClean) gfn = this.clean.pop();
    if (gfn === undefined) {
      gfn = this.dirty.pop();
      clean = false;
    }
    if (gfn === undefined && !wantClean) {
      gfn = this.clean.pop();
      clean = true;
    }
    if (gfn === undefined) {
      if (this.bump >= this.hugeBump) {
        if (this.onExhausted !== null && this.onExhausted() > 0) return this.alloc(wantClean);
        throw new OutOfMemory('out of guest memory');
      }
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
  allocHuge(): number {
    let first = this.hugeFree.pop();
    if (first === undefined) {
      const next = this.hugeBump - FRAMES_PER_HUGE;
      if (next < this.bump) return -1;
      this.hugeBump = next;
      first = next;
    }
    this.refs.fill(1, first, first + FRAMES_PER_HUGE);
    this.count(FRAMES_PER_HUGE);
    return first;
  }

  /** One more whole-block mapping (fork). */
  getHuge(first: number): void {
    for (let f = first; f < first + FRAMES_PER_HUGE; f++) this.refs[f] = (this.refs[f] as number) + 1;
  }

  /** Does anyone but one holder reference any frame of the block? */
  hugeShared(first: number): boolean {
    for (let f = first; f < first + FRAMES_PER_HUGE; f++) if ((this.refs[f] as number) > 1) return true;
    return false;
  }

  get(gfn: number): void {
    this.refs[gfn] = (this.refs[gfn] as number) + 1;
  }

  /** Drop a reference; the frame is freed at zero. `clean`: its contents are all zero. */
  put(gfn: number, clean: boolean): void {
    const r = (this.refs[gfn] as number) - 1;
    if (r < 0) throw new Error(`guest kernel: frame ${gfn} freed twice`);
    this.refs[gfn] = r;
    if (r === 0) {
      (clean ? this.clean : this.dirty).push(gfn);
      this.inUse--;
    }
  }

  /** Drop a whole-block mapping; the block is freed whole if nothing else holds any of it. */
  putHuge(first: number): void {
    let freed = 0;
    for (let f = first; f < first + FRAMES_PER_HUGE; f++) {
      const r = (this.refs[f] as number) - 1;
      if (r < 0) throw new Error(`guest kernel: frame ${f} freed twice`);
      this.refs[f] = r;
      if (r === 0) freed++;
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

  /** Free 4 KiB frames: on the free lists or never handed out (free 2 MiB blocks not counted). */
  get freeFrames(): number {
    return this.clean.length + this.dirty.length + (this.hugeBump - this.bump);
  }

  /**
   * A free frame for the balloon, in the order alloc(false) would hand it
   * out (a frame to be cleared, a clean one, a never-used one), or -1. A
   * never-used frame is taken only while more than `keepUnused` remain, so
   * that room for 2 MiB blocks is not ballooned away. The frame stops being
   * free without being in use.
   */
  balloonTake(keepUnused: number): number {
    let gfn = this.dirty.pop();
    if (gfn === undefined) gfn = this.clean.pop();
    if (gfn === undefined) {
      if (this.hugeBump - this.bump <= keepUnused) return -1;
      gfn = this.bump++;
    }
    this.ballooned[gfn] = 1;
    this.balloonedFrames++;
    return gfn;
  }

  /** A ballooned frame back from the hypervisor, zero-filled: free and clean. */
  balloonGive(gfn: number): void {
    if (this.ballooned[gfn] !== 1) throw new Error(`guest kernel: frame ${gfn} given back but not ballooned`);
    this.ballooned[gfn] = 0;
    this.balloonedFrames--;
    this.clean.push(gfn);
  }

  /** The frames on the free lists (for the balloon's self-check). */
  freeListed(): Set<number> {
    return new Set([...this.clean, ...this.dirty]);
  }

  private count(n: number): void {
    this.inUse += n;
    if (this.inUse > this.peakInUse) this.peakInUse = this.inUse;
  }
}
