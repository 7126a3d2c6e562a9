/**
 * Trace format, version 1 (docs/trace-format.md): the constants both ends
 * share, the error every reader failure becomes, CRC-32, and the operand rules
 * (the scenario format's, applied to the structure-of-arrays operands).
 */
import { OP } from '../ops.js';
/** "\x89UMBTRC\n": the high byte keeps it from ever being read as text (a scenario starts with `{`, `#` or blank). */
export const MAGIC = Uint8Array.of(0x89, 0x55, 0x4d, 0x42, 0x54, 0x52, 0x43, 0x0a);
/** Last 8 bytes of a complete trace: a file cut short anywhere lacks them. */
export const END_MAGIC = Uint8Array.of(0x55, 0x4d, 0x42, 0x54, 0x45, 0x4e, 0x44, 0x0a); // "UMBTEND\n"
export const VERSION = 1;
/** Header field `compression`: the only method of version 1 is raw DEFLATE (RFC 1951). */
export const DEFLATE_RAW = 0;
export const HEADER_FIXED = 32; // magic, version, compression, vcpus, memory, maxphyaddr, meta length
export const BLOCK_HEADER = 17; // tag, crc32, ops, raw length, compressed length
export const TRAILER_FIXED = 17; // tag, blocks, ops, trailer length
export const FOOTER = 16; // trailer offset, end magic
export const TAG_BLOCK = 0x42; // 'B'
export const TAG_TRAILER = 0x54; // 'T'
/** Reader limits: nothing a hostile file declares can make us allocate more. */
export const MAX_BLOCK_OPS = 65536;
export const MAX_BLOCK_RAW = 1 << 20;
/** Raw deflate never grows 1 MiB by more than a few hundred bytes; anything larger is corrupt. */
export const MAX_BLOCK_COMPRESSED = MAX_BLOCK_RAW + 4096;
export const MAX_JSON = 1 << 20;
/** Op k is line k+1 of the scenario form, and lines are Uint32. */
export const MAX_OPS = 2 ** 32 - 2;
/** Writer defaults (measured in docs/trace-format.md). */
export const BLOCK_OPS = 65536;
/** The writer closes a block before its raw bytes could pass MAX_BLOCK_RAW (an op is at most 21 bytes). */
export const BLOCK_RAW_FLUSH = MAX_BLOCK_RAW - 32;
export class TraceError extends Error {
    file;
    where;
    reason;
    constructor(file, where, reason) {
        super(`${file}: ${where}: ${reason}`);
        this.file = file;
        this.where = where;
        this.reason = reason;
    }
}
const CRC_TABLE = (() => {
    const t = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
        let c = n;
        for (let k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
        t[n] = c;
    }
    return t;
})();
/** CRC-32 (IEEE 802.3, as zlib and gzip): Node 20 has no zlib.crc32. */
export function crc32(b, start = 0, end = b.length) {
    let c = -1;
    for (let i = start; i < end; i++)
        c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
    return (c ^ -1) >>> 0;
}
/** Machine rules of the scenario format's first line; null when valid. */
export function machineProblem(m) {
    if (!Number.isInteger(m.vcpus) || m.vcpus < 1 || m.vcpus > 64)
        return '"vcpus" must be between 1 and 64';
    if (!Number.isInteger(m.memory) || m.memory === 0 || m.memory % 4096 !== 0 || m.memory > 2 ** 40)
        return '"memory" must be a non-zero multiple of 4096 no larger than 2^40';
    if (!Number.isInteger(m.maxphyaddr) || m.maxphyaddr < 32 || m.maxphyaddr > 52)
        return '"maxphyaddr" must be between 32 and 52';
    return null;
}
const badSize = (size) => size !== 1 && size !== 2 && size !== 4 && size !== 8;
const fits = (size, hi, lo) => size === 8 || (hi === 0 && (size === 4 || lo < 2 ** (8 * size)));
/**
 * The scenario format's operand rules, in its words; null when valid. The
 * writer checks each operation before encoding it, the reader after decoding,
 * so a trace the writer produced is always one the reader accepts. (Called
 * per operation: plain branches, no closures.)
 */
export function opProblem(machine, op, small, cpl, aHi, aLo, vHi, vLo) {
    const vcpus = machine.vcpus;
    switch (op) {
        case OP.cpu:
            return small < vcpus ? null : `"vcpu" must be between 0 and ${vcpus - 1}`;
        case OP.wrcr:
            return small === 0 || small === 3 || small === 4 ? null : '"reg" must be "cr0", "cr3" or "cr4"';
        case OP.wrmsr:
        case OP.flush:
        case OP.invlpg:
            return null;
        case OP.wrpkru:
            return vHi === 0 ? null : '"value" does not fit in 4 bytes';
        case OP.setac:
            return small <= 1 ? null : '"value" must be between 0 and 1';
        case OP.read:
        case OP.write:
        case OP.pread:
        case OP.pwrite: {
            if (badSize(small))
                return '"size" must be 1, 2, 4 or 8';
            const phys = op === OP.pread || op === OP.pwrite;
            if ((aLo & 0xfff) + small > 4096)
                return `"${phys ? 'gpa' : 'va'}" + "size" crosses a 4 KiB page boundary`;
            if ((op === OP.write || op === OP.pwrite) && !fits(small, vHi, vLo))
                return `"value" does not fit in ${small} bytes`;
            return phys || cpl <= 3 ? null : '"cpl" must be between 0 and 3';
        }
        case OP.fetch:
            return cpl <= 3 ? null : '"cpl" must be between 0 and 3';
        case OP.invpcid:
            if (small > 3)
                return '"type" must be between 0 and 3';
            // The scenario keeps PCIDs above 0xfff as 0x1000 (they #GP when run).
            return vHi === 0 && vLo <= 0x1000 ? null : '"pcid" must be at most 0x1000 (0x1000: any PCID above 0xfff)';
        case OP.dump:
            return vHi === 0 && vLo <= 65536 ? null : '"length" must be at most 65536';
        case OP.p2m: {
            if (small > 2)
                return '"type" must be "ram", "rom" or "none"';
            const frames = machine.memory / 4096;
            if (aHi !== 0 || aLo >= frames)
                return `"gfn" must be below the ${frames} frames of "memory"`;
            if (vHi !== 0 || vLo < 1 || aLo + vLo > frames)
                return `"count" must be at least 1 and end within the ${frames} frames of "memory"`;
            return null;
        }
        default:
            return `unknown operation ${op}`;
    }
}
/** Names by op code, for messages, info and the scenario form. */
export const OP_NAME = (() => {
    const names = [];
    for (const [name, code] of Object.entries(OP))
        names[code] = name;
    return names;
})();
//# sourceMappingURL=format.js.map