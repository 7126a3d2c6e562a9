export const KERNEL_MODES = ['4-level', '5-level', 'pae', '32-bit'];
const LONG4 = {
    mode: '4-level',
    indexBits: [9, 9, 9, 9],
    entrySize: 8,
    long: true,
    la57: false,
    pae: true,
    nx: true,
    directHi: 0xffff8880,
    directLo: 0,
    directLevel: 1,
    directLimit: 2 ** 46,
    textHi: 0xffffffff,
    textLo: 0x80000000,
    textGpa: 0x1000000,
    kernelFirstTop: 256,
    userTop: 0x7ffffffff000,
    mmapBase: 0x7f0000000000,
    stackTop: 0x7ffffffde000,
    textBase: 0x400000,
    maxphyaddr: 46,
};
/** PAE: 3G/1G split, 2 MiB direct-map pages, the kernel image inside the direct map. */
const PAE = {
    mode: 'pae',
    indexBits: [2, 9, 9],
    entrySize: 8,
    long: false,
    la57: false,
    pae: true,
    nx: true,
    directHi: 0,
    directLo: 0xc0000000,
    directLevel: 1,
    directLimit: 896 * 2 ** 20,
    textHi: 0,
    textLo: 0xc1000000,
    textGpa: 0x1000000,
    kernelFirstTop: 3,
    userTop: 0xc0000000,
    mmapBase: 0xb7000000,
    stackTop: 0xbffdf000,
    textBase: 0x8048000,
    maxphyaddr: 36,
};
export function layoutFor(mode) {
    switch (mode) {
        case '4-level':
            return LONG4;
        case '5-level':
            // Linux keeps user space below 47 bits unless a program asks for more.
            return { ...LONG4, mode, indexBits: [9, 9, 9, 9, 9], la57: true, directHi: 0xff110000, directLevel: 2 };
        case 'pae':
            return PAE;
        case '32-bit':
            // 2-level: 4 MiB PSE pages in the page directory, no NX.
            return {
                ...PAE,
                mode,
                indexBits: [10, 10],
                entrySize: 4,
                pae: false,
                nx: false,
                directLevel: 0,
                kernelFirstTop: 768,
            };
    }
}
/** Bytes mapped by one entry at `level` (0 = top). */
export function spanOf(l, level) {
    let shift = 12;
    for (let i = level + 1; i < l.indexBits.length; i++)
        shift += l.indexBits[i];
    return 2 ** shift;
}
/** Index of a user/kernel address (a number below 2^53 for user; split for kernel) at `level`. */
export function indexAt(l, va, level) {
    const span = spanOf(l, level);
    return Math.floor(va / span) % 2 ** l.indexBits[level];
}
//# sourceMappingURL=layout.js.map