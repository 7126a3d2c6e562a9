/**
 * A domain: one guest's RAM (gfn 0 .. ramFrames-1, placed in machine memory
 * by a Placement), its vCPUs and the pager that virtualizes its memory.
 *
 * Guest-physical space: gfns below ramFrames are RAM (reached through the
 * placement's gfn -> mfn map); everything above is unbacked: reads return all
 * ones, writes are discarded (scenario spec, semantics 3). Read-only ranges
 * (ROM) read normally and discard writes.
 */
import type { DataSpace } from '../arch/x86/cpu.js';
import { MachineMemory, ONES_FRAME } from '../machine/memory.js';
import { type LayoutKind, machineFramesFor, Placement } from '../machine/placement.js';
import { createSha256 } from '../util/sha256.js';

export const GUEST_DOMAIN_ID = 1;

/** Guest-physical memory as the guest (and native hardware) sees it. */
export class GuestPhysicalSpace implements DataSpace {
  private readonly readOnly: Array<[number, number]> = [];
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

  addReadOnly(first: number, last: number): void {
    this.readOnly.push([first, last]);
  }

  /** Does any read-only range overlap gfns [first, last]? */
  anyReadOnly(first: number, last: number): boolean {
    return this.readOnly.some(([a, b]) => a <= last && b >= first);
  }

  isReadOnly(gfn: number): boolean {
    for (const [a, b] of this.readOnly) if (gfn >= a && gfn <= b) return true;
    return false;
  }

  frameForRead(gfn: number): Uint32Array {
    if (gfn >= this.placement.ramFrames) return ONES_FRAME;
    return this.mem.read(this.placement.mfnOf(gfn));
  }

  frameForWrite(gfn: number): Uint32Array | null {
    if (gfn >= this.placement.ramFrames) return null;
    if (this.readOnly.length !== 0 && this.isReadOnly(gfn)) return null;
    return this.mem.write(this.placement.mfnOf(gfn));
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

  constructor(opts: DomainOptions) {
    const ramFrames = Math.floor(opts.ramBytes / 4096);
    const machineFrames = machineFramesFor(ramFrames);
    this.mem = new MachineMemory(machineFrames);
    this.placement = new Placement(opts.layout, ramFrames, machineFrames, this.id, opts.seed);
    this.mem.addOwnerSource(this.placement);
    this.mem.setFreeFrameSource(() => this.placement.nextFreeFrame());
    this.guest = new GuestPhysicalSpace(this.mem, this.placement);
  }

  /** Guest RAM frames that hold data (were written): what a sparse guest has populated. */
  populatedFrames(): number {
    return this.mem.materializedUnallocated;
  }

  /**
   * SHA-256 over every guest RAM frame holding a non-zero byte, in ascending
   * gfn order, each as gfn (8 bytes LE) then its 4096 bytes (scenario spec).
   */
  memorySha256(): string {
    const frames: Array<[number, Uint32Array]> = [];
    for (const mfn of this.mem.materializedMfns()) {
      const gfn = this.placement.gfnOf(mfn);
      if (gfn >= 0) frames.push([gfn, this.mem.read(mfn)]);
    }
    return imageSha256(frames);
  }
}

/**
 * The scenario spec's memory hash of an image given as (gfn, frame) pairs:
 * SHA-256 over every frame holding a non-zero byte, in ascending gfn order,
 * each as gfn (8 bytes LE) then its 4096 bytes.
 */
export function imageSha256(frames: ReadonlyArray<readonly [number, Uint32Array]>): string {
  const nonZero = frames.filter(([, f]) => f.some((w) => w !== 0)).sort((a, b) => a[0] - b[0]);
  const h = createSha256();
  const key = new Uint8Array(8);
  const keyView = new DataView(key.buffer);
  for (const [gfn, f] of nonZero) {
    keyView.setUint32(0, gfn % 0x100000000, true);
    keyView.setUint32(4, Math.floor(gfn / 0x100000000), true);
    h.update(key);
    h.update(new Uint8Array(f.buffer, f.byteOffset, 4096));
  }
  return h.hex();
}
