/**
 * Guest-physical memory of an imported image as a PhysicalSpace (what the
 * walker reads). PT_LOAD segments are RAM; any other address is not, and
 * reads as all ones (Umbra's convention for unbacked memory). Segment bytes
 * come from a Backing: the file itself, read on demand, or the frames kept
 * from a decompressed stream.
 */
import type { ImageMemory, LoadSegment } from '../inspect/image.js';
import { FRAME_AT, ONES_FRAME, ZERO_FRAME } from '../machine/memory.js';
import { FRAME_BYTES, FrameCache, newFrame } from './frames.js';

export interface Backing {
  /** Words of frame `pfn`, which lies wholly within `seg`'s file data. Shared: callers must not write. */
  frame(seg: LoadSegment, pfn: number): Uint32Array;
  /** Copy `len` bytes of `seg`'s file data, from offset `segOff` in the segment, to `dst[dstOff..]`. */
  read(seg: LoadSegment, segOff: number, dst: Uint8Array, dstOff: number, len: number): void;
  close(): void;
}

const MEMO_SLOTS = 4096;
/** Module-local: V8 checks an imported binding at each use, a local constant it folds (walker.ts). */
const frameAt = FRAME_AT;

export class GuestMemory implements ImageMemory {
  private readonly memoPfn = new Float64Array(MEMO_SLOTS).fill(-1);
  private readonly memoFrame: Uint32Array[] = new Array(MEMO_SLOTS).fill(ZERO_FRAME);
  /** The remembered frames' words, slot by slot (16 MiB of address space; only slots used are touched). */
  private readonly memoWords = new Uint32Array(MEMO_SLOTS * 1024);
  /** Frames that straddle a segment boundary, assembled once. */
  private readonly mixed = new FrameCache(64);

  constructor(
    /** By ascending address, not overlapping (elf.ts checks). */
    readonly loads: readonly LoadSegment[],
    private readonly backing: Backing,
  ) {}

  /** Index of the last segment starting at or below `addr`, or -1. */
  private segmentAt(addr: number): number {
    let lo = 0;
    let hi = this.loads.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.loads[mid] as LoadSegment).paddr <= addr) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found;
  }

  /** Segments overlapping frame `pfn`: indices first..last (empty when first > last). */
  private overlapping(pfn: number): [number, number] {
    const base = pfn * FRAME_BYTES;
    let first = this.segmentAt(base);
    const s = this.loads[first];
    if (first < 0 || (s as LoadSegment).paddr + (s as LoadSegment).memsz <= base) first++;
    return [first, this.segmentAt(base + FRAME_BYTES - 1)];
  }

  /** Does any RAM lie in frame `pfn`? */
  isRam(pfn: number): boolean {
    const [first, last] = this.overlapping(pfn);
    return first <= last;
  }

  /** The walker's read: remembered frames are copied side by side into one flat buffer, frame i at word i * 1024. */
  locate(pfn: number): Uint32Array {
    const i = pfn & (MEMO_SLOTS - 1);
    if (this.memoPfn[i] !== pfn) this.remember(i, pfn);
    frameAt[0] = i << 10;
    return this.memoWords;
  }

  frameForRead(pfn: number): Uint32Array {
    // Walks read the same few hundred table frames over and over: remember them.
    const i = pfn & (MEMO_SLOTS - 1);
    if (this.memoPfn[i] !== pfn) this.remember(i, pfn);
    return this.memoFrame[i] as Uint32Array;
  }

  /** Remember frame `pfn` in slot `i`, as a frame and as words of the flat buffer (image memory is read-only: the copy stays true). */
  private remember(i: number, pfn: number): void {
    const f = this.lookup(pfn);
    this.memoPfn[i] = pfn;
    this.memoFrame[i] = f;
    this.memoWords.set(f, i << 10);
  }

  private lookup(pfn: number): Uint32Array {
    const base = pfn * FRAME_BYTES;
    const s = this.loads[this.segmentAt(base)];
    if (s !== undefined) {
      if (base + FRAME_BYTES <= s.paddr + s.filesz) return this.backing.frame(s, pfn);
      if (base >= s.paddr + s.filesz && base + FRAME_BYTES <= s.paddr + s.memsz) return ZERO_FRAME;
    }
    if (!this.isRam(pfn)) return ONES_FRAME;
    let f = this.mixed.get(pfn);
    if (f === undefined) {
      f = this.assemble(pfn);
      this.mixed.set(pfn, f);
    }
    return f;
  }

  /** A frame partly outside RAM or across segments: ones where no RAM is, zeros past p_filesz. */
  private assemble(pfn: number): Uint32Array {
    const base = pfn * FRAME_BYTES;
    const { words, bytes } = newFrame();
    bytes.fill(0xff);
    const [first, last] = this.overlapping(pfn);
    for (let i = first; i <= last; i++) {
      const s = this.loads[i] as LoadSegment;
      const from = Math.max(base, s.paddr);
      const to = Math.min(base + FRAME_BYTES, s.paddr + s.memsz);
      const dataTo = Math.min(to, s.paddr + s.filesz);
      if (dataTo > from) this.backing.read(s, from - s.paddr, bytes, from - base, dataTo - from);
      if (to > Math.max(from, dataTo)) bytes.fill(0, Math.max(from, dataTo) - base, to - base);
    }
    return words;
  }

  close(): void {
    this.backing.close();
  }
}
