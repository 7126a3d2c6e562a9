/**
 * Number formatting for inspection output. Linear addresses are carried as
 * doubles (page-aligned and below 2^57, so exact) and 64-bit entries as two
 * 32-bit halves; text output needs both as 16 hex digits, fast (QEMU's
 * `info tlb` of an x86-64 guest is ~70 000 lines).
 */
const BYTE_HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
export const TWO32 = 2 ** 32;
export function hex8(x) {
    return (BYTE_HEX[x >>> 24] +
        BYTE_HEX[(x >>> 16) & 0xff] +
        BYTE_HEX[(x >>> 8) & 0xff] +
        BYTE_HEX[x & 0xff]);
}
/** A 64-bit value given as halves, as %016x. */
export function hex16(hi, lo) {
    return hex8(hi) + hex8(lo);
}
/** High half of a non-negative integer-valued double below 2^64. */
function hiOf(x) {
    return Math.floor(x / TWO32) >>> 0;
}
function loOf(x) {
    return (x % TWO32) >>> 0;
}
/**
 * %016x of a linear address sign-extended from bit `signBit` (47 or 56), as
 * QEMU's addr_canonical() does; signBit 0 prints the value as is.
 */
export function canonicalHex(x, signBit) {
    let hi = hiOf(x);
    if (signBit > 32 && ((hi >>> (signBit - 32)) & 1) !== 0)
        hi = (hi | (-1 << (signBit - 32))) >>> 0;
    return hex8(hi) + hex8(loOf(x));
}
/** Short hex with 0x for a double or bigint (no padding). */
export function hx(x) {
    return `0x${x.toString(16)}`;
}
/** 0x-prefixed short hex of a 64-bit value given as halves. */
export function hx64(hi, lo) {
    return hi === 0 ? hx(lo >>> 0) : `0x${(hi >>> 0).toString(16)}${hex8(lo)}`;
}
const UNITS = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
/** 4096 → "4 KiB", 1.5 MiB → "1.5 MiB". */
export function formatBytes(n) {
    let u = 0;
    let v = n;
    while (v >= 1024 && u < UNITS.length - 1) {
        v /= 1024;
        u++;
    }
    const s = Number.isInteger(v) ? String(v) : v.toFixed(1);
    return `${s} ${UNITS[u]}`;
}
/** Names of the set bits of `value`, from a table of [bit, name]. */
export function bitNames(value, names) {
    return names
        .filter(([bit]) => ((value >> BigInt(bit)) & 1n) !== 0n)
        .map(([, name]) => name)
        .join(' ');
}
export const CR0_NAMES = [
    [0, 'PE'],
    [1, 'MP'],
    [2, 'EM'],
    [3, 'TS'],
    [4, 'ET'],
    [5, 'NE'],
    [16, 'WP'],
    [18, 'AM'],
    [29, 'NW'],
    [30, 'CD'],
    [31, 'PG'],
];
export const CR4_NAMES = [
    [0, 'VME'],
    [1, 'PVI'],
    [2, 'TSD'],
    [3, 'DE'],
    [4, 'PSE'],
    [5, 'PAE'],
    [6, 'MCE'],
    [7, 'PGE'],
    [8, 'PCE'],
    [9, 'OSFXSR'],
    [10, 'OSXMMEXCPT'],
    [11, 'UMIP'],
    [12, 'LA57'],
    [13, 'VMXE'],
    [14, 'SMXE'],
    [16, 'FSGSBASE'],
    [17, 'PCIDE'],
    [18, 'OSXSAVE'],
    [20, 'SMEP'],
    [21, 'SMAP'],
    [22, 'PKE'],
    [23, 'CET'],
    [24, 'PKS'],
];
export const EFER_NAMES = [
    [0, 'SCE'],
    [8, 'LME'],
    [10, 'LMA'],
    [11, 'NXE'],
    [12, 'SVME'],
];
//# sourceMappingURL=format.js.map