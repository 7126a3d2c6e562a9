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
import { type Machine, OP, Scenario } from '../scenario/parse.js';
import { opProblem } from './format.js';

/** Bytes an operation can take at most: op byte + vCPU or 10-byte address + 10-byte value. */
export const MAX_OP_BYTES = 21;

const LOG2_SIZE = [0, 0, 1, 0, 2, 0, 0, 0, 3];

/** Delta contexts: [hi, lo] of the previous virtual address per vCPU, then the previous guest-physical one. */
const PHYS = 64 * 2;

export class BlockEncoder {
  readonly buf: Uint8Array;
  n = 0;
  count = 0;
  private vcpu = 0;
  private readonly prev = new Uint32Array(PHYS + 2);

  constructor(capacity: number) {
    this.buf = new Uint8Array(capacity + MAX_OP_BYTES);
  }

  /** Start a new block: the delta state starts afresh. */
  reset(): void {
    this.n = 0;
    this.count = 0;
    this.vcpu = 0;
    this.prev.fill(0);
  }

  /** Encode one valid operation (see opProblem). */
  op(op: number, small: number, cpl: number, aHi: number, aLo: number, vHi: number, vLo: number): void {
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
        b[this.n++] = op | (((cpl << 2) | (LOG2_SIZE[small] as number)) << 4);
        this.addr(va, aHi, aLo);
        if (op === OP.write) this.u64(vHi, vLo);
        return;
      case OP.fetch:
        b[this.n++] = op | (cpl << 6);
        this.addr(va, aHi, aLo);
        return;
      case OP.pread:
      case OP.pwrite:
        b[this.n++] = op | ((LOG2_SIZE[small] as number) << 4);
        this.addr(PHYS, aHi, aLo);
        if (op === OP.pwrite) this.u64(vHi, vLo);
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
    }
  }

  /** Unsigned LEB128 of the 64-bit (hi, lo). */
  private u64(hi: number, lo: number): void {
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
  private addr(k: number, hi: number, lo: number): void {
    const p = this.prev;
    const pHi = p[k] as number;
    const pLo = p[k + 1] as number;
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
export function decodeBlock(
  raw: Uint8Array,
  count: number,
  machine: Machine,
  firstLine: number,
  fail: (k: number, reason: string) => never,
): Scenario {
  const s = new Scenario(machine, Math.max(count, 1));
  const prev = new Uint32Array(PHYS + 2);
  const end = raw.length;
  let p = 0;
  let k = 0;
  let vcpu = 0;
  // The last varint read, as halves (a pair of locals is cheaper than an object per read).
  let hi = 0;
  let lo = 0;
  const u64 = (): void => {
    lo = 0;
    hi = 0;
    for (let i = 0; ; i++) {
      if (p >= end) fail(k, 'the operation runs past the end of its block');
      const byte = raw[p++] as number;
      const bits = byte & 0x7f;
      if (i < 4) lo |= bits << (7 * i);
      else if (i === 4) {
        lo |= bits << 28;
        hi = bits >>> 4;
      } else if (i < 9) hi |= bits << (7 * i - 32);
      else {
        if (byte > 1) fail(k, 'a varint does not fit in 64 bits');
        hi |= byte << 31;
      }
      if (byte < 0x80) break;
    }
    lo >>>= 0;
    hi >>>= 0;
  };
  const addr = (c: number): void => {
    u64();
    const sign = -(lo & 1);
    const dLo = (((lo >>> 1) | (hi << 31)) ^ sign) >>> 0;
    const dHi = ((hi >>> 1) ^ sign) >>> 0;
    const sumLo = (prev[c + 1] as number) + dLo;
    lo = sumLo >>> 0;
    hi = ((prev[c] as number) + dHi + (sumLo > 0xffffffff ? 1 : 0)) >>> 0;
    prev[c] = hi;
    prev[c + 1] = lo;
  };
  const { small, cpl, aHi, aLo, vHi, vLo } = s;
  for (; k < count; k++) {
    if (p >= end) fail(k, 'the block ends before its declared operation count');
    const byte = raw[p++] as number;
    const op = byte & 15;
    const nib = byte >>> 4;
    const i = s.push(op, firstLine + k);
    let reserved = nib;
    switch (op) {
      case OP.cpu:
        if (p >= end) fail(k, 'the operation runs past the end of its block');
        small[i] = raw[p++] as number;
        // Checked here, not just below: it indexes the delta contexts.
        if ((small[i] as number) >= machine.vcpus) fail(k, `"vcpu" must be between 0 and ${machine.vcpus - 1}`);
        vcpu = small[i] as number;
        break;
      case OP.wrcr:
        reserved = 0;
        small[i] = nib;
        u64();
        vHi[i] = hi;
        vLo[i] = lo;
        break;
      case OP.wrmsr:
      case OP.wrpkru:
        u64();
        vHi[i] = hi;
        vLo[i] = lo;
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
        addr(vcpu * 2);
        aHi[i] = hi;
        aLo[i] = lo;
        if (op === OP.write) {
          u64();
          vHi[i] = hi;
          vLo[i] = lo;
        }
        break;
      case OP.fetch:
        reserved = nib & 3;
        cpl[i] = nib >>> 2;
        addr(vcpu * 2);
        aHi[i] = hi;
        aLo[i] = lo;
        break;
      case OP.pread:
      case OP.pwrite:
        reserved = nib & 12;
        small[i] = 1 << (nib & 3);
        addr(PHYS);
        aHi[i] = hi;
        aLo[i] = lo;
        if (op === OP.pwrite) {
          u64();
          vHi[i] = hi;
          vLo[i] = lo;
        }
        break;
      case OP.invlpg:
        addr(vcpu * 2);
        aHi[i] = hi;
        aLo[i] = lo;
        break;
      case OP.invpcid:
        reserved = 0;
        small[i] = nib;
        u64();
        vHi[i] = hi;
        vLo[i] = lo;
        addr(vcpu * 2);
        aHi[i] = hi;
        aLo[i] = lo;
        break;
      case OP.flush:
        break;
      case OP.dump:
        addr(PHYS);
        aHi[i] = hi;
        aLo[i] = lo;
        u64();
        vHi[i] = hi;
        vLo[i] = lo;
        break;
      default:
        fail(k, `unknown operation code ${op} (byte 0x${byte.toString(16).padStart(2, '0')})`);
    }
    if (reserved !== 0) fail(k, `reserved bits set in the operation byte 0x${byte.toString(16).padStart(2, '0')}`);
    const problem = opProblem(
      machine.vcpus,
      op,
      small[i] as number,
      cpl[i] as number,
      aLo[i] as number,
      vHi[i] as number,
      vLo[i] as number,
    );
    if (problem !== null) fail(k, problem);
  }
  if (p !== end) fail(count - 1, `${end - p} bytes follow the last operation of the block`);
  return s;
}
