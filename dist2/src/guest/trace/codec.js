/**
 * The per-operation encoding of a block (docs/trace-format.md, "Operations"):
 * one operation byte (op code in the low nibble, its small operands in the
 * high nibble), then LEB128 varints. Addresses are delta-coded, zigzagged,
 * against the previous address of their class: one class of virtual addresses
 * per vCPU (each vCPU runs its own code and data) and one of guest-physical
 * addresses. The state starts afresh in every block, so blocks decode alone.
 *
 * 64-bit quantities travel as two uint32 halves, as everywhere in the model:
 * no BigInt on the hot path.
 */
import { OP, Scenario } from '../ops.js';
import { opProblem } from './format.js';
/** Bytes an operation can take at most: op byte + vCPU or 10-byte address + 10-byte value. */
export const MAX_OP_BYTES = 21;
const LOG2_SIZE = [0, 0, 1, 0, 2, 0, 0, 0, 3];
/** Delta contexts: [hi, lo] of the previous virtual address per vCPU, then the previous guest-physical one. */
const PHYS = 64 * 2;
export class BlockEncoder {
    buf;
    n = 0;
    count = 0;
    vcpu = 0;
    prev = new Uint32Array(PHYS + 2);
    constructor(capacity) {
        this.buf = new Uint8Array(capacity + MAX_OP_BYTES);
    }
    /** Start a new block: the delta state starts afresh. */
    reset() {
        this.n = 0;
        this.count = 0;
        this.vcpu = 0;
        this.prev.fill(0);
    }
    /** Encode one valid operation (see opProblem). */
    op(op, small, cpl, aHi, aLo, vHi, vLo) {
        this.count++;
        const b = this.buf;
        const va = this.vcpu * 2;
        switch (op) {
            case OP.cpu:
                b[this.n++] = op;
                b[this.n++] = small;
                this.vcpu = small;
                return;
            case OP.wrcr:
                b[this.n++] = op | (small << 4);
                this.u64(vHi, vLo);
                return;
            case OP.wrmsr:
            case OP.wrpkru:
                b[this.n++] = op;
                this.u64(vHi, vLo);
                return;
            case OP.setac:
                b[this.n++] = op | (small << 4);
                return;
            case OP.read:
            case OP.write:
                b[this.n++] = op | (((cpl << 2) | LOG2_SIZE[small]) << 4);
                this.addr(va, aHi, aLo);
                if (op === OP.write)
                    this.u64(vHi, vLo);
                return;
            case OP.fetch:
                b[this.n++] = op | (cpl << 6);
                this.addr(va, aHi, aLo);
                return;
            case OP.pread:
            case OP.pwrite:
                b[this.n++] = op | (LOG2_SIZE[small] << 4);
                this.addr(PHYS, aHi, aLo);
                if (op === OP.pwrite)
                    this.u64(vHi, vLo);
                return;
            case OP.invlpg:
                b[this.n++] = op;
                this.addr(va, aHi, aLo);
                return;
            case OP.invpcid:
                b[this.n++] = op | (small << 4);
                this.u64(0, vLo);
                this.addr(va, aHi, aLo);
                return;
            case OP.flush:
                b[this.n++] = op;
                return;
            case OP.dump:
                b[this.n++] = op;
                this.addr(PHYS, aHi, aLo);
                this.u64(0, vLo);
                return;
            case OP.p2m:
                b[this.n++] = op | (small << 4);
                this.u64(0, aLo);
                this.u64(0, vLo);
                return;
        }
    }
    /** Unsigned LEB128 of the 64-bit (hi, lo). */
    u64(hi, lo) {
        const b = this.buf;
        let n = this.n;
        while (hi !== 0 || lo > 0x7f) {
            b[n++] = (lo & 0x7f) | 0x80;
            lo = ((lo >>> 7) | (hi << 25)) >>> 0;
            hi >>>= 7;
        }
        b[n++] = lo;
        this.n = n;
    }
    /** The address minus the previous one of its class, modulo 2^64, zigzagged so that small steps back stay short. */
    addr(k, hi, lo) {
        const p = this.prev;
        const pHi = p[k];
        const pLo = p[k + 1];
        p[k] = hi;
        p[k + 1] = lo;
        const dLo = (lo - pLo) >>> 0;
        const dHi = (hi - pHi - (lo < pLo ? 1 : 0)) >>> 0;
        const sign = dHi >> 31;
        this.u64((((dHi << 1) | (dLo >>> 31)) ^ sign) >>> 0, ((dLo << 1) ^ sign) >>> 0);
    }
}
/**
 * Decode one block's raw bytes into a Scenario batch of exactly `count`
 * operations, line numbers from `firstLine`, validating every operand by the
 * scenario format's rules. `fail(k, reason)` reports a problem with the
 * block's k-th operation (0-based) and must throw.
 */
export function decodeBlock(raw, count, machine, firstLine, fail) {
    return new BlockDecoder(raw, machine, fail).decode(count, firstLine);
}
/** A class rather than closures: its fields stay in registers and its small methods inline. */
class BlockDecoder {
    raw;
    machine;
    fail;
    p = 0;
    k = 0;
    /** The last varint or address read, as halves. */
    hi = 0;
    lo = 0;
    prev = new Uint32Array(PHYS + 2);
    constructor(raw, machine, fail) {
        this.raw = raw;
        this.machine = machine;
        this.fail = fail;
    }
    decode(count, firstLine) {
        const { raw, machine } = this;
        const s = new Scenario(machine, Math.max(count, 1));
        const { small, cpl, aHi, aLo, vHi, vLo } = s;
        let vcpu = 0;
        for (let k = 0; k < count; k++) {
            this.k = k;
            if (this.p >= raw.length)
                this.fail(k, 'the block ends before its declared operation count');
            const byte = raw[this.p++];
            const op = byte & 15;
            const nib = byte >>> 4;
            const i = s.push(op, firstLine + k);
            let reserved = nib;
            switch (op) {
                case OP.cpu:
                    if (this.p >= raw.length)
                        this.fail(k, 'the operation runs past the end of its block');
                    small[i] = raw[this.p++];
                    // Checked here, not just below: it indexes the delta contexts.
                    if (small[i] >= machine.vcpus)
                        this.fail(k, `"vcpu" must be between 0 and ${machine.vcpus - 1}`);
                    vcpu = small[i];
                    break;
                case OP.wrcr:
                    reserved = 0;
                    small[i] = nib;
                    this.u64();
                    vHi[i] = this.hi;
                    vLo[i] = this.lo;
                    break;
                case OP.wrmsr:
                case OP.wrpkru:
                    this.u64();
                    vHi[i] = this.hi;
                    vLo[i] = this.lo;
                    break;
                case OP.setac:
                    reserved = 0;
                    small[i] = nib;
                    break;
                case OP.read:
                case OP.write:
                    reserved = 0;
                    small[i] = 1 << (nib & 3);
                    cpl[i] = nib >>> 2;
                    this.addr(vcpu * 2);
                    aHi[i] = this.hi;
                    aLo[i] = this.lo;
                    if (op === OP.write) {
                        this.u64();
                        vHi[i] = this.hi;
                        vLo[i] = this.lo;
                    }
                    break;
                case OP.fetch:
                    reserved = nib & 3;
                    cpl[i] = nib >>> 2;
                    this.addr(vcpu * 2);
                    aHi[i] = this.hi;
                    aLo[i] = this.lo;
                    break;
                case OP.pread:
                case OP.pwrite:
                    reserved = nib & 12;
                    small[i] = 1 << (nib & 3);
                    this.addr(PHYS);
                    aHi[i] = this.hi;
                    aLo[i] = this.lo;
                    if (op === OP.pwrite) {
                        this.u64();
                        vHi[i] = this.hi;
                        vLo[i] = this.lo;
                    }
                    break;
                case OP.invlpg:
                    this.addr(vcpu * 2);
                    aHi[i] = this.hi;
                    aLo[i] = this.lo;
                    break;
                case OP.invpcid:
                    reserved = 0;
                    small[i] = nib;
                    this.u64();
                    vHi[i] = this.hi;
                    vLo[i] = this.lo;
                    this.addr(vcpu * 2);
                    aHi[i] = this.hi;
                    aLo[i] = this.lo;
                    break;
                case OP.flush:
                    break;
                case OP.dump:
                    this.addr(PHYS);
                    aHi[i] = this.hi;
                    aLo[i] = this.lo;
                    this.u64();
                    vHi[i] = this.hi;
                    vLo[i] = this.lo;
                    break;
                case OP.p2m:
                    reserved = 0;
                    small[i] = nib;
                    this.u64();
                    aHi[i] = this.hi;
                    aLo[i] = this.lo;
                    this.u64();
                    vHi[i] = this.hi;
                    vLo[i] = this.lo;
                    break;
                default:
                    this.fail(k, `unknown operation code ${op} (byte 0x${byte.toString(16).padStart(2, '0')})`);
            }
            if (reserved !== 0)
                this.fail(k, `reserved bits set in the operation byte 0x${byte.toString(16).padStart(2, '0')}`);
            const problem = opProblem(machine, op, small[i], cpl[i], aHi[i], aLo[i], vHi[i], vLo[i]);
            if (problem !== null)
                this.fail(k, problem);
        }
        if (this.p !== raw.length)
            this.fail(count - 1, `${raw.length - this.p} bytes follow the last operation of the block`);
        return s;
    }
    /** An unsigned LEB128 varint of at most 64 bits into (hi, lo). */
    u64() {
        const raw = this.raw;
        let p = this.p;
        let lo = 0;
        let hi = 0;
        for (let i = 0;; i++) {
            if (p >= raw.length)
                this.fail(this.k, 'the operation runs past the end of its block');
            const byte = raw[p++];
            const bits = byte & 0x7f;
            if (i < 4)
                lo |= bits << (7 * i);
            else if (i === 4) {
                lo |= bits << 28;
                hi = bits >>> 4;
            }
            else if (i < 9)
                hi |= bits << (7 * i - 32);
            else {
                if (byte > 1)
                    this.fail(this.k, 'a varint does not fit in 64 bits');
                hi |= byte << 31;
            }
            if (byte < 0x80)
                break;
        }
        this.p = p;
        this.lo = lo >>> 0;
        this.hi = hi >>> 0;
    }
    /** An address of class c: zigzag delta from the previous one, modulo 2^64. */
    addr(c) {
        this.u64();
        const { hi, lo, prev } = this;
        const sign = -(lo & 1);
        const dLo = (((lo >>> 1) | (hi << 31)) ^ sign) >>> 0;
        const dHi = ((hi >>> 1) ^ sign) >>> 0;
        const sumLo = prev[c + 1] + dLo;
        this.lo = sumLo >>> 0;
        this.hi = (prev[c] + dHi + (sumLo > 0xffffffff ? 1 : 0)) >>> 0;
        prev[c] = this.hi;
        prev[c + 1] = this.lo;
    }
}
//# sourceMappingURL=codec.js.map