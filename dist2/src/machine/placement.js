/**
 * Placement: where a domain's guest frames sit in machine memory.
 *
 * `identity` puts gfn g at mfn g. `scatter` puts it at a pseudo-random mfn
 * chosen by a seeded permutation of the whole machine (a Feistel network with
 * cycle walking), so no table is needed even for a sparse 1 TiB guest, the
 * reverse map mfn -> gfn is the inverse permutation, and the frames no guest
 * frame maps to are the hypervisor's free memory.
 */
import { OWNER_FREE } from './memory.js';
const identity = { forward: (x) => x, inverse: (y) => y };
function mix32(x) {
    x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
    x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
    return (x ^ (x >>> 16)) >>> 0;
}
class FeistelPermutation {
    size;
    half;
    mask;
    keys;
    constructor(size, seed) {
        this.size = size;
        let bits = 2;
        while (2 ** bits < size)
            bits += 2;
        this.half = bits / 2;
        this.mask = 2 ** this.half - 1;
        this.keys = [1, 2, 3, 4].map((r) => mix32(seed * 4 + r));
    }
    round(x, dir) {
        const h = 2 ** this.half;
        let l = Math.floor(x / h);
        let r = x % h;
        if (dir === 1) {
            for (const k of this.keys) {
                const t = r;
                r = (l ^ (mix32(r ^ k) & this.mask)) >>> 0;
                l = t;
            }
        }
        else {
            for (let i = this.keys.length - 1; i >= 0; i--) {
                const t = l;
                l = (r ^ (mix32(l ^ this.keys[i]) & this.mask)) >>> 0;
                r = t;
            }
        }
        return l * h + r;
    }
    forward(x) {
        do
            x = this.round(x, 1);
        while (x >= this.size);
        return x;
    }
    inverse(y) {
        do
            y = this.round(y, -1);
        while (y >= this.size);
        return y;
    }
}
/** Size of the machine for a guest of `ramFrames`: room for the hypervisor's own frames too. */
export function machineFramesFor(ramFrames) {
    return ramFrames + Math.max(ramFrames, 1 << 16);
}
export class Placement {
    kind;
    ramFrames;
    machineFrames;
    domainId;
    perm;
    cache;
    freeCursor;
    identity;
    constructor(kind, ramFrames, machineFrames, domainId, seed = 0) {
        this.kind = kind;
        this.ramFrames = ramFrames;
        this.machineFrames = machineFrames;
        this.domainId = domainId;
        this.identity = kind === 'identity';
        this.perm = this.identity ? identity : new FeistelPermutation(machineFrames, seed);
        // A direct table for guests up to 4 GiB makes scattered lookups one load.
        this.cache = kind === 'scatter' && ramFrames <= 1 << 20 ? new Float64Array(ramFrames).fill(-1) : null;
        this.freeCursor = ramFrames;
    }
    /** Machine frame holding guest frame `gfn` (gfn < ramFrames). */
    mfnOf(gfn) {
        if (this.identity)
            return gfn;
        const c = this.cache;
        if (c === null)
            return this.perm.forward(gfn);
        let m = c[gfn];
        if (m < 0) {
            m = this.perm.forward(gfn);
            c[gfn] = m;
        }
        return m;
    }
    /** Guest frame at machine frame `mfn`, or -1 if it is not guest RAM. */
    gfnOf(mfn) {
        const g = this.perm.inverse(mfn);
        return g < this.ramFrames ? g : -1;
    }
    ownerOf(mfn) {
        return mfn < this.machineFrames && this.gfnOf(mfn) >= 0 ? this.domainId : OWNER_FREE;
    }
    /** Next machine frame that is not guest RAM, or -1 when none is left. */
    nextFreeFrame() {
        if (this.freeCursor >= this.machineFrames)
            return -1;
        return this.perm.forward(this.freeCursor++);
    }
}
//# sourceMappingURL=placement.js.map