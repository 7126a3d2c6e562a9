/**
 * A domain: one guest's RAM (gfn 0 .. ramFrames-1, placed in machine memory
 * by a Placement), its vCPUs and the pager that virtualizes its memory.
 *
 * Guest-physical space: gfns below ramFrames are backed by machine frames
 * (the placement's gfn -> mfn map) with the type the physmap gives them
 * (physmap.ts: ram, rom, none); everything above is unbacked: reads return
 * all ones, writes are discarded (scenario spec, semantics 3 and 5).
 */
import type { DataSpace } from '../arch/x86/cpu.js';
import { FRAME_AT, MachineMemory, ONES_FRAME, onesAt } from '../machine/memory.js';
import { type LayoutKind, machineFramesFor, Placement } from '../machine/placement.js';
import { createSha256, type Sha256 } from '../util/sha256.js';
import { LogDirty } from './logdirty.js';
import { PHYS_NONE, PHYS_RAM, Physmap, type PhysType } from './physmap.js';

export const GUEST_DOMAIN_ID = 1;

/** Guest-physical memory as the guest (and native hardware) sees it. */
export class GuestPhysicalSpace implements DataSpace {
  /** What backs each frame below the end of RAM (physmap.ts). */
  readonly physmap = new Physmap();
  constructor(
    readonly mem: MachineMemory,
    readonly placement: Placement,
  ) {}

  get ramFrames(): number {
    return this.placement.ramFrames;
  }

  isRam(gfn: number): boolean {
    return gfn >= 0 && gfn < this.placement.ramFrames;
  }

  /** The frame's physmap type (frames above the end of RAM are unbacked: none). */
  typeOf(gfn: number): PhysType {
    return gfn >= this.placement.ramFrames ? PHYS_NONE : this.physmap.typeOf(gfn);
  }

  frameForRead(gfn: number): Uint32Array {
    if (gfn >= this.placement.ramFrames) return ONES_FRAME;
    if (!this.physmap.allRam && this.physmap.typeOf(gfn) === PHYS_NONE) return ONES_FRAME;
    return this.mem.read(this.placement.mfnOf(gfn));
  }

  frameForWrite(gfn: number): Uint32Array | null {
    if (gfn >= this.placement.ramFrames) return null;
    if (!this.physmap.allRam && this.physmap.typeOf(gfn) !== PHYS_RAM) return null;
    return this.mem.write(this.placement.mfnOf(gfn));
  }

  locate(gfn: number): Uint32Array {
    if (gfn >= this.placement.ramFrames) return onesAt();
    if (!this.physmap.allRam && this.physmap.typeOf(gfn) === PHYS_NONE) return onesAt();
    return this.mem.locate(this.placement.mfnOf(gfn));
  }

  locateForWrite(gfn: number): Uint32Array | null {
    if (gfn >= this.placement.ramFrames) return null;
    if (!this.physmap.allRam && this.physmap.typeOf(gfn) !== PHYS_RAM) return null;
    return this.mem.locateForWrite(this.placement.mfnOf(gfn));
  }
}

export interface DomainOptions {
  ramBytes: number;
  layout: LayoutKind;
  seed: number;
}

export class Domain {
  readonly mem: MachineMemory;
  readonly placement: Placement;
  readonly guest: GuestPhysicalSpace;
  readonly id = GUEST_DOMAIN_ID;
  /** Log-dirty mode for live migration: the log is the domain's, its pager makes writes show (logdirty.ts). */
  readonly logDirty: LogDirty;

  constructor(opts: DomainOptions) {
    const ramFrames = Math.floor(opts.ramBytes / 4096);
    const machineFrames = machineFramesFor(ramFrames);
    this.mem = new MachineMemory(machineFrames);
    this.placement = new Placement(opts.layout, ramFrames, machineFrames, this.id, opts.seed);
    this.mem.addOwnerSource(this.placement);
    this.mem.setFreeFrameSource(() => this.placement.nextFreeFrame());
    this.guest = new GuestPhysicalSpace(this.mem, this.placement);
    this.logDirty = new LogDirty(ramFrames);
  }

  /** Guest RAM frames that hold data (were written): what a sparse guest has populated. */
  populatedFrames(): number {
    return this.mem.materializedUnallocated;
  }

  /**
   * The hypervisor changes what backs guest frames [first, first+count), all
   * below the end of RAM (the scenario format's `p2m` op): frames taken away
   * lose their contents at once, so they come back zero-filled. Pagers drop
   * what they derived from those frames (Pager.physmapChanged).
   */
  setType(first: number, count: number, type: PhysType): void {
    const guest = this.guest;
    if (type === PHYS_NONE) {
      const placement = this.placement;
      const end = first + count;
      if (count <= this.mem.materializedFrames) {
        for (let g = first; g < end; g++) this.mem.scrub(placement.mfnOf(g));
      } else {
        for (const mfn of [...this.mem.materializedMfns()]) {
          const g = placement.gfnOf(mfn);
          if (g >= first && g < end) this.mem.scrub(mfn);
        }
      }
    }
    guest.physmap.set(first, count, type);
  }

  /**
   * SHA-256 over every guest RAM frame holding a non-zero byte, in ascending
   * gfn order, each as gfn (8 bytes LE) then its 4096 bytes (scenario spec).
   * Only materialized frames can hold data; their gfns are sorted as numbers
   * (a typed-array sort, no comparator), then each frame is found again from
   * its gfn, checked for a non-zero word and hashed while it is in the cache.
   */
  memorySha256(): string {
    const placement = this.placement;
    let gfns = new Float64Array(1024);
    let n = 0;
    const mem = this.mem;
    for (const mfn of mem.materializedMfns()) {
      const gfn = placement.gfnOf(mfn);
      if (gfn < 0) continue;
      if (n === gfns.length) {
        const g = new Float64Array(n * 2);
        g.set(gfns);
        gfns = g;
      }
      gfns[n++] = gfn;
    }
    const sorted = gfns.subarray(0, n).sort();
    const h = new FrameHasher(createSha256());
    for (let i = 0; i < n; i++) {
      const gfn = sorted[i] as number;
      const buf = mem.locate(placement.mfnOf(gfn));
      const at = FRAME_AT[0] as number;
      if (nonZero(buf, at)) h.add(gfn, buf, at);
    }
    return h.hex();
  }
}

/** Whether any word of the frame at word `at` of `buf` is non-zero (most data frames answer at their first word). */
function nonZero(buf: Uint32Array, at: number): boolean {
  for (let i = at, end = at + 1024; i < end; i++) if (buf[i] !== 0) return true;
  return false;
}

/** Frames staged per hash update: one update per 64 KiB, not two per frame (each update has a fixed cost). */
const STAGED = 16;
const RECORD = 8 + 4096;

/** The memory hash's input, gfn (8 bytes LE) then the frame's bytes per frame, fed to a hash in large updates. */
class FrameHasher {
  private readonly stage = new Uint8Array(STAGED * RECORD);
  private readonly words = new Uint32Array(this.stage.buffer);
  private k = 0;
  constructor(private readonly h: Sha256) {}

  /** Add frame `gfn`, whose words are `buf` from word `at` (a slab of machine memory, or a frame at 0). */
  add(gfn: number, buf: Uint32Array, at: number): void {
    const st = this.stage;
    const k = this.k;
    const lo = gfn >>> 0;
    const hi = Math.floor(gfn / 0x100000000);
    st[k] = lo & 0xff;
    st[k + 1] = (lo >>> 8) & 0xff;
    st[k + 2] = (lo >>> 16) & 0xff;
    st[k + 3] = lo >>> 24;
    st[k + 4] = hi & 0xff;
    st[k + 5] = (hi >>> 8) & 0xff;
    st[k + 6] = (hi >>> 16) & 0xff;
    st[k + 7] = hi >>> 24;
    // The frame's words in memory order, as its bytes (RECORD keeps every frame 4-byte aligned).
    this.words.set(at === 0 && buf.length === 1024 ? buf : buf.subarray(at, at + 1024), (k + 8) >>> 2);
    this.k = k + RECORD;
    if (this.k === st.length) this.drain();
  }

  private drain(): void {
    if (this.k > 0) this.h.update(this.stage.subarray(0, this.k));
    this.k = 0;
  }

  hex(): string {
    this.drain();
    return this.h.hex();
  }
}

/**
 * The scenario spec's memory hash of an image given as (gfn, frame) pairs:
 * SHA-256 over every frame holding a non-zero byte, in ascending gfn order,
 * each as gfn (8 bytes LE) then its 4096 bytes.
 */
export function imageSha256(frames: ReadonlyArray<readonly [number, Uint32Array]>): string {
  const kept = frames.filter(([, f]) => nonZero(f, 0)).sort((a, b) => a[0] - b[0]);
  const h = new FrameHasher(createSha256());
  for (const [gfn, f] of kept) h.add(gfn, f, 0);
  return h.hex();
}
