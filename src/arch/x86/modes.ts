/**
 * Paging modes as data (SDM vol. 3A, 4.1.1 and tables 4-4 .. 4-20).
 *
 * One walker serves every format; what differs between 32-bit, PAE, 4-level
 * and 5-level paging is captured here: how many levels, how wide an entry is,
 * which VA bits index each level, where the PS bit makes a leaf, and which
 * bits are reserved at each level (which also depends on MAXPHYADDR, on
 * EFER.NXE and, for 32-bit paging, on CR4.PSE). Levels are numbered as the
 * SDM does: 1 = page table, 2 = page directory, 3 = PDPT, 4 = PML4, 5 = PML5.
 */

export type PagingModeName = '32-bit' | 'pae' | '4-level' | '5-level';

export interface PagingMode {
  readonly name: PagingModeName;
  /** Level of the table CR3 points to (PAE: 3, the PDPT held in PDPTE registers). */
  readonly topLevel: number;
  /** 8-byte entries (false: 4-byte entries of 32-bit paging). */
  readonly wide: boolean;
  /** VA bit at which the index for each level starts; shift[level]. */
  readonly shift: readonly number[];
  /** Index mask for each level; indexMask[level]. */
  readonly indexMask: readonly number[];
  /** Linear-address width: 32, 48 or 57 bits (non-canonical addresses #GP). */
  readonly vaBits: 32 | 48 | 57;
  /** PAE: the top level is four PDPTE registers loaded at MOV CR3, not memory. */
  readonly pdpteRegisters: boolean;
  /** Levels at which PS=1 can map a page (32-bit: only with CR4.PSE). */
  readonly largeLevels: readonly number[];
  /** Protection keys and the XD bit exist in this format. */
  readonly hasXd: boolean;
  readonly hasPk: boolean;
}

export const MODE_32: PagingMode = {
  name: '32-bit',
  topLevel: 2,
  wide: false,
  shift: [0, 12, 22],
  indexMask: [0, 0x3ff, 0x3ff],
  vaBits: 32,
  pdpteRegisters: false,
  largeLevels: [2],
  hasXd: false,
  hasPk: false,
};

export const MODE_PAE: PagingMode = {
  name: 'pae',
  topLevel: 3,
  wide: true,
  shift: [0, 12, 21, 30],
  indexMask: [0, 0x1ff, 0x1ff, 0x3],
  vaBits: 32,
  pdpteRegisters: true,
  largeLevels: [2],
  hasXd: true,
  hasPk: false,
};

export const MODE_LONG4: PagingMode = {
  name: '4-level',
  topLevel: 4,
  wide: true,
  shift: [0, 12, 21, 30, 39],
  indexMask: [0, 0x1ff, 0x1ff, 0x1ff, 0x1ff],
  vaBits: 48,
  pdpteRegisters: false,
  largeLevels: [2, 3],
  hasXd: true,
  hasPk: true,
};

export const MODE_LONG5: PagingMode = {
  ...MODE_LONG4,
  name: '5-level',
  topLevel: 5,
  shift: [0, 12, 21, 30, 39, 48],
  indexMask: [0, 0x1ff, 0x1ff, 0x1ff, 0x1ff, 0x1ff],
  vaBits: 57,
};

export const LEVEL_NAMES: Record<PagingModeName, readonly string[]> = {
  '32-bit': ['', 'PTE', 'PDE'],
  pae: ['', 'PTE', 'PDE', 'PDPTE'],
  '4-level': ['', 'PTE', 'PDE', 'PDPTE', 'PML4E'],
  '5-level': ['', 'PTE', 'PDE', 'PDPTE', 'PML4E', 'PML5E'],
};

/**
 * A mode made concrete for one CPU configuration: reserved-bit masks per
 * (level, PS) and the large-page levels actually in force. Built once per
 * configuration and shared (see formatFor).
 */
export interface WalkFormat {
  readonly mode: PagingMode;
  readonly maxPhysAddr: number;
  readonly nxe: boolean;
  readonly pse: boolean;
  /** Bit mask of levels (1 << level) where PS=1 makes a leaf. */
  readonly largeMask: number;
  /** Reserved bits of the low/high half; index level * 2 + ps. */
  readonly rsvdLo: Int32Array;
  readonly rsvdHi: Int32Array;
  /** Reserved bits of a PAE PDPTE (checked when the PDPTE registers load). */
  readonly pdpteRsvdLo: number;
  readonly pdpteRsvdHi: number;
  /** Page shift of a leaf at each level (level 2: 21, or 22 for 32-bit). */
  readonly leafShift: readonly number[];
}

/** Mask of bits lo..hi (inclusive) of a 32-bit word; empty when lo > hi. */
export function bitRange(lo: number, hi: number): number {
  if (lo > hi) return 0;
  const width = hi - lo + 1;
  return (width >= 32 ? -1 : ((1 << width) - 1) << lo) | 0;
}

/** Reserved high-half bits for "bits top:M are reserved" (top given as a bit of the 64-bit entry). */
function highRange(m: number, top: number): number {
  return bitRange(Math.max(m, 32) - 32, top - 32);
}

const formats = new Map<string, WalkFormat>();

export function formatFor(mode: PagingMode, maxPhysAddr: number, nxe: boolean, pse: boolean): WalkFormat {
  const key = `${mode.name}/${maxPhysAddr}/${nxe ? 1 : 0}/${pse ? 1 : 0}`;
  let f = formats.get(key);
  if (f === undefined) {
    f = buildFormat(mode, maxPhysAddr, nxe, pse);
    formats.set(key, f);
  }
  return f;
}

function buildFormat(mode: PagingMode, m: number, nxe: boolean, pse: boolean): WalkFormat {
  const rsvdLo = new Int32Array(12);
  const rsvdHi = new Int32Array(12);
  let largeMask = 0;
  for (const l of mode.largeLevels) {
    if (mode.name !== '32-bit' || pse) largeMask |= 1 << l;
  }
  const leafShift = mode.shift.slice();
  if (mode.name === '32-bit') {
    // 4 MiB PDE (PSE-36): bits (M-20):13 hold address bits (M-1):32 and
    // bits 21:(M-19) are reserved, with M = min(MAXPHYADDR, 40).
    const m36 = Math.min(m, 40);
    rsvdLo[2 * 2 + 1] = bitRange(m36 - 19, 21);
  } else {
    const xd = nxe ? 0 : 1 << 31;
    // PAE: bits 62:M reserved; IA-32e: bits 51:M reserved (62:52 ignored).
    const addrHi = mode.name === 'pae' ? highRange(m, 62) : highRange(m, 51);
    for (let level = 1; level <= mode.topLevel; level++) {
      for (let ps = 0; ps < 2; ps++) {
        rsvdHi[level * 2 + ps] = addrHi | xd;
      }
    }
    // PS must be 0 in a PML4E and PML5E.
    for (let level = 4; level <= mode.topLevel; level++) rsvdLo[level * 2] = 1 << 7;
    rsvdLo[2 * 2 + 1] = bitRange(13, 20); // 2 MiB page: bits 20:13
    rsvdLo[3 * 2 + 1] = bitRange(13, 29); // 1 GiB page: bits 29:13
  }
  return {
    mode,
    maxPhysAddr: m,
    nxe,
    pse,
    largeMask,
    rsvdLo,
    rsvdHi,
    // PAE PDPTE: bits 2:1, 8:5 and 63:M reserved (SDM table 4-8).
    pdpteRsvdLo: bitRange(1, 2) | bitRange(5, 8),
    pdpteRsvdHi: highRange(m, 63),
    leafShift,
  };
}
