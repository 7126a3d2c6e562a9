/**
 * Where a Linux-like kernel puts things, per paging mode: the shape of its
 * page tables (levels, index bits, entry size), the direct map of RAM and its
 * page size, the split between user and kernel halves, and the user address
 * space layout. Addresses follow Linux (x86-64: direct map at
 * 0xffff888000000000 for 4-level, 0xff11000000000000 for 5-level, kernel text
 * at 0xffffffff80000000; 32-bit: PAGE_OFFSET 0xc0000000, 3G/1G split).
 */
export type KernelMode = '4-level' | '5-level' | 'pae' | '32-bit';
export const KERNEL_MODES: readonly KernelMode[] = ['4-level', '5-level', 'pae', '32-bit'];

export interface KernelLayout {
  mode: KernelMode;
  /** Levels, top (index 0) to leaf: index bits per level. */
  indexBits: readonly number[];
  /** Bytes per entry (8, or 4 for 2-level 32-bit). */
  entrySize: 4 | 8;
  /** Long mode (EFER.LME), 5-level (CR4.LA57), PAE (CR4.PAE), NX available. */
  long: boolean;
  la57: boolean;
  pae: boolean;
  nx: boolean;
  /** Direct map: virtual base (hi, lo) and the level (0 = top) whose entries map RAM as large pages. */
  directHi: number;
  directLo: number;
  directLevel: number;
  /** Bytes of RAM the direct map covers at most (lowmem on 32-bit). */
  directLimit: number;
  /** Kernel text: virtual (hi, lo) and guest-physical address. */
  textHi: number;
  textLo: number;
  textGpa: number;
  /** Top-level indices from this one up belong to the kernel and are shared by every process. */
  kernelFirstTop: number;
  /** Highest user address + 1 (hi, lo as a number below 2^53). */
  userTop: number;
  /** Where mmap places areas, top-down, and where the stack top sits. */
  mmapBase: number;
  stackTop: number;
  /** Program text base. */
  textBase: number;
  maxphyaddr: number;
}

const LONG4: KernelLayout = {
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
const PAE: KernelLayout = {
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

export function layoutFor(mode: KernelMode): KernelLayout {
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
export function spanOf(l: KernelLayout, level: number): number {
  let shift = 12;
  for (let i = level + 1; i < l.indexBits.length; i++) shift += l.indexBits[i] as number;
  return 2 ** shift;
}

/** Index of a user/kernel address (a number below 2^53 for user; split for kernel) at `level`. */
export function indexAt(l: KernelLayout, va: number, level: number): number {
  const span = spanOf(l, level);
  return Math.floor(va / span) % 2 ** (l.indexBits[level] as number);
}
