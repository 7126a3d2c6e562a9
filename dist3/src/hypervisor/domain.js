import { MachineMemory, ONES_FRAME } from '../machine/memory.js';
import { machineFramesFor, Placement } from '../machine/placement.js';
import { createSha256 } from '../util/sha256.js';
import { LogDirty } from './logdirty.js';
import { PHYS_NONE, PHYS_RAM, Physmap } from './physmap.js';
export const GUEST_DOMAIN_ID = 1;
/** Guest-physical memory as the guest (and native hardware) sees it. */
export class GuestPhysicalSpace {
    mem;
    placement;
    /** What backs each frame below the end of RAM (physmap.ts). */
    physmap = new Physmap();
    constructor(mem, placement) {
        this.mem = mem;
        this.placement = placement;
    }
    get ramFrames() {
        return this.placement.ramFrames;
    }
    isRam(gfn) {
        return gfn >= 0 && gfn < this.placement.ramFrames;
    }
    /** The frame's physmap type (frames above the end of RAM are unbacked: none). */
    typeOf(gfn) {
        return gfn >= this.placement.ramFrames ? PHYS_NONE : this.physmap.typeOf(gfn);
    }
    frameForRead(gfn) {
        if (gfn >= this.placement.ramFrames)
            return ONES_FRAME;
        if (!this.physmap.allRam && this.physmap.typeOf(gfn) === PHYS_NONE)
            return ONES_FRAME;
        return this.mem.read(this.placement.mfnOf(gfn));
    }
    frameForWrite(gfn) {
        if (gfn >= this.placement.ramFrames)
            return null;
        if (!this.physmap.allRam && this.physmap.typeOf(gfn) !== PHYS_RAM)
            return null;
        return this.mem.write(this.placement.mfnOf(gfn));
    }
}
export class Domain {
    mem;
    placement;
    guest;
    id = GUEST_DOMAIN_ID;
    /** Log-dirty mode for live migration: the log is the domain's, its pager makes writes show (logdirty.ts). */
    logDirty;
    constructor(opts) {
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
    populatedFrames() {
        return this.mem.materializedUnallocated;
    }
    /**
     * The hypervisor changes what backs guest frames [first, first+count), all
     * below the end of RAM (the scenario format's `p2m` op): frames taken away
     * lose their contents at once, so they come back zero-filled. Pagers drop
     * what they derived from those frames (Pager.physmapChanged).
     */
    setType(first, count, type) {
        const guest = this.guest;
        if (type === PHYS_NONE) {
            const placement = this.placement;
            const end = first + count;
            if (count <= this.mem.materializedFrames) {
                for (let g = first; g < end; g++)
                    this.mem.scrub(placement.mfnOf(g));
            }
            else {
                for (const mfn of [...this.mem.materializedMfns()]) {
                    const g = placement.gfnOf(mfn);
                    if (g >= first && g < end)
                        this.mem.scrub(mfn);
                }
            }
        }
        guest.physmap.set(first, count, type);
    }
    /**
     * SHA-256 over every guest RAM frame holding a non-zero byte, in ascending
     * gfn order, each as gfn (8 bytes LE) then its 4096 bytes (scenario spec).
     */
    memorySha256() {
        const frames = [];
        for (const mfn of this.mem.materializedMfns()) {
            const gfn = this.placement.gfnOf(mfn);
            if (gfn >= 0)
                frames.push([gfn, this.mem.read(mfn)]);
        }
        return imageSha256(frames);
    }
}
/**
 * The scenario spec's memory hash of an image given as (gfn, frame) pairs:
 * SHA-256 over every frame holding a non-zero byte, in ascending gfn order,
 * each as gfn (8 bytes LE) then its 4096 bytes.
 */
export function imageSha256(frames) {
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
//# sourceMappingURL=domain.js.map