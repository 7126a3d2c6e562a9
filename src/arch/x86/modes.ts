/**
 * Paging modes as data (SDM vol. 3A, 4.1.1 and tables 4-4 .. 4-20).
 *
 * One walker serves every format; what differs between 32-bit, PAE, 4-level
 * and 5-level paging is captured here: how many levels, how wide an entry is,
 * which VA bits index each level, where the PS bit makes a leaf, and which
 * bits are reserved at each level (which also depends on MAXPHYADDR, on
 * EFER.NXE and, for 32-bit paging, on CR4.PSE). Levels are numbered as the
 * SDM does: 1 = page table, 2 = page directory, 3 = PDPT, 4 = PML4, 5 = PML5.
 * The same geometries serve the stage-2 formats: EPT and AMD nested paging
 * walk a guest-physical address as 4- or 5-level paging walks a linear one.
 */
import { PTE_A, PTE_D, PTE_G, PTE_P, PTE_RW, PTE_US } from './bits.js';

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
 * Entry formats: what the bits of one paging-structure entry mean. The
 * geometry above (levels, index widths, entry size) is shared; the entry
 * format says how the one walker reads an entry of that geometry. Three
 * exist: x86 paging entries (SDM vol. 3A, 4.3-4.5), Intel EPT entries
 * (SDM vol. 3C, 29.3.2) and AMD nested-paging entries (APM vol. 2, 15.25).
 */
export const ENTRY_X86 = 0;
export const ENTRY_EPT = 1;
export const ENTRY_NPT = 2;
export type EntryKind = typeof ENTRY_X86 | typeof ENTRY_EPT | typeof ENTRY_NPT;

/**
 * A geometry and an entry format made concrete for one configuration:
 * reserved-bit masks per (level, PS), the large-page levels in force, and
 * the entry format's bits as masks the walker applies without branching on
 * the kind. Built once per configuration and shared (formatFor, eptFormat,
 * nptFormat); every format is one object shape, so walk() stays monomorphic.
 */
export interface WalkFormat {
  readonly mode: PagingMode;
  readonly kind: EntryKind;
  readonly maxPhysAddr: number;
  readonly nxe: boolean;
  readonly pse: boolean;
  /** Low-half bits any one of which makes an entry present (x86, NPT: P; EPT: R, W, X, and XU with MBEC). */
  readonly presentMask: number;
  /** Bit of the low half that makes a level-2+ entry a leaf (bit 7 in all three formats). */
  readonly psShift: number;
  /** Bit mask of levels (1 << level) where PS=1 makes a leaf. */
  readonly largeMask: number;
  /** Reserved bits of the low/high half; index level * 2 + ps. EPT: a misconfiguration, not a #PF. */
  readonly rsvdLo: Int32Array;
  readonly rsvdHi: Int32Array;
  /** Misconfigured R/W/X combinations: bit (lo & 7) set means bits 2:0 of a present entry are illegal (EPT: 29.3.3.1). */
  readonly badRwx: number;
  /** Misconfigured leaf memory types: bit ((lo >>> 3) & 7) set means illegal (EPT: types 2, 3, 7). */
  readonly badMemType: number;
  /** Low-half rights bits that are ANDed over the walk into the permission word (x86, NPT: R/W, U/S; EPT: R, W, X, XU). */
  readonly rightsLo: number;
  /** Bit 63 (XD_HI in the high half), set at any level, makes the translation execute-disable. */
  readonly xd: boolean;
  /** Accessed and dirty flags of the low half (0: the format has none in force, e.g. EPT with EPTP bit 6 clear). */
  readonly accessedBit: number;
  readonly dirtyBit: number;
  /** Global flag of a leaf (x86 only). */
  readonly globalBit: number;
  /** The leaf's protection key (bits 62:59) is part of the permission word. */
  readonly pk: boolean;
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

/** The last format asked for (every MOV to CR3 asks again, mostly for the same one): no key string then. */
let lastFormat: WalkFormat | null = null;

export function formatFor(mode: PagingMode, maxPhysAddr: number, nxe: boolean, pse: boolean): WalkFormat {
  const l = lastFormat;
  if (l !== null && l.mode === mode && l.maxPhysAddr === maxPhysAddr && l.nxe === nxe && l.pse === pse) return l;
  const key = `${mode.name}/${maxPhysAddr}/${nxe ? 1 : 0}/${pse ? 1 : 0}`;
  let f = formats.get(key);
  if (f === undefined) {
    f = buildFormat(mode, maxPhysAddr, nxe, pse);
    formats.set(key, f);
  }
  lastFormat = f;
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
  return makeFormat({
    mode,
    kind: ENTRY_X86,
    maxPhysAddr: m,
    nxe,
    pse,
    presentMask: PTE_P,
    psShift: 7,
    largeMask,
    rsvdLo,
    rsvdHi,
    badRwx: 0,
    badMemType: 0,
    rightsLo: PTE_RW | PTE_US,
    xd: mode.hasXd && nxe,
    accessedBit: PTE_A,
    dirtyBit: PTE_D,
    globalBit: PTE_G,
    pk: mode.hasPk,
    // PAE PDPTE: bits 2:1, 8:5 and 63:M reserved (SDM table 4-8).
    pdpteRsvdLo: bitRange(1, 2) | bitRange(5, 8),
    pdpteRsvdHi: highRange(m, 63),
    leafShift,
  });
}

/**
 * Every format is made here, property by property in one order, so that all
 * WalkFormat objects share one hidden class and the walker's reads of them
 * stay monomorphic whichever format it walks.
 */
function makeFormat(f: WalkFormat): WalkFormat {
  return {
    mode: f.mode,
    kind: f.kind,
    maxPhysAddr: f.maxPhysAddr,
    nxe: f.nxe,
    pse: f.pse,
    presentMask: f.presentMask,
    psShift: f.psShift,
    largeMask: f.largeMask,
    rsvdLo: f.rsvdLo,
    rsvdHi: f.rsvdHi,
    badRwx: f.badRwx,
    badMemType: f.badMemType,
    rightsLo: f.rightsLo,
    xd: f.xd,
    accessedBit: f.accessedBit,
    dirtyBit: f.dirtyBit,
    globalBit: f.globalBit,
    pk: f.pk,
    pdpteRsvdLo: f.pdpteRsvdLo,
    pdpteRsvdHi: f.pdpteRsvdHi,
    leafShift: f.leafShift,
  };
}

// EPT entry bits (SDM vol. 3C, 29.3.2, tables 29-1 .. 29-6).
export const EPT_R = 1 << 0;
export const EPT_W = 1 << 1;
export const EPT_X = 1 << 2; // with mode-based execute control: supervisor-mode linear addresses
export const EPT_MEMTYPE_SHIFT = 3; // bits 5:3 of a leaf
export const EPT_IPAT = 1 << 6;
export const EPT_PS = 1 << 7;
export const EPT_A = 1 << 8; // only with EPTP bit 6 (A/D enable)
export const EPT_D = 1 << 9; // leaves only, with EPTP bit 6
export const EPT_XU = 1 << 10; // only with mode-based execute control: user-mode linear addresses
/** EPT memory types (bits 5:3 of a leaf): UC, WC, WT, WP, WB; 2, 3 and 7 are reserved. */
export const EPT_MT_UC = 0;
export const EPT_MT_WB = 6;

/** Options of an EPT configuration: EPTP bit 6, the MBEC VM-execution control, IA32_VMX_EPT_VPID_CAP bit 0. */
export interface EptOptions {
  readonly ad: boolean;
  readonly mbec: boolean;
  readonly executeOnly: boolean;
}
export const EPT_DEFAULT: EptOptions = { ad: true, mbec: false, executeOnly: true };

/**
 * An EPT format (SDM vol. 3C, 29.3.2): 4-level, or 5-level when the EPTP's
 * page-walk length is 5. An entry is present if any of R/W/X (bits 2:0) is
 * set, or with mode-based execute control XU (bit 10). Misconfigurations
 * (29.3.3.1) are reserved bits, W without R (with or without X), X alone
 * where execute-only is unsupported, and leaf memory types 2, 3 and 7; the
 * walker reports them as it reports reserved bits.
 */
export function eptFormat(levels: 4 | 5, maxPhysAddr: number, o: EptOptions = EPT_DEFAULT): WalkFormat {
  const key = `ept${levels}/${maxPhysAddr}/${o.ad ? 1 : 0}${o.mbec ? 1 : 0}${o.executeOnly ? 1 : 0}`;
  let f = formats.get(key);
  if (f !== undefined) return f;
  const mode = levels === 5 ? MODE_LONG5 : MODE_LONG4;
  const rsvdLo = new Int32Array(12);
  const rsvdHi = new Int32Array(12);
  const addrHi = highRange(maxPhysAddr, 51); // bits 51:M; 63:52 are ignored (63: suppress #VE in leaves)
  for (let level = 1; level <= levels; level++) {
    rsvdHi[level * 2] = addrHi;
    rsvdHi[level * 2 + 1] = addrHi;
    // Non-leaf entries: bits 7:3 reserved (bit 7 is 0 where PS makes no leaf; PML4E/PML5E: bit 7 too).
    if (level > 1) rsvdLo[level * 2] = bitRange(3, 7);
  }
  rsvdLo[2 * 2 + 1] = bitRange(12, 20); // 2 MiB page: bits 20:12
  rsvdLo[3 * 2 + 1] = bitRange(12, 29); // 1 GiB page: bits 29:12
  const xu = o.mbec ? EPT_XU : 0;
  f = makeFormat({
    mode,
    kind: ENTRY_EPT,
    maxPhysAddr,
    nxe: false,
    pse: false,
    presentMask: EPT_R | EPT_W | EPT_X | xu,
    psShift: 7,
    largeMask: (1 << 2) | (1 << 3),
    rsvdLo,
    rsvdHi,
    // Bits 2:0 = W (2) or WX (6): write without read; X alone (4) without execute-only support.
    badRwx: (1 << 2) | (1 << 6) | (o.executeOnly ? 0 : 1 << 4),
    badMemType: (1 << 2) | (1 << 3) | (1 << 7),
    rightsLo: EPT_R | EPT_W | EPT_X | xu,
    xd: false,
    accessedBit: o.ad ? EPT_A : 0,
    dirtyBit: o.ad ? EPT_D : 0,
    globalBit: 0,
    pk: false,
    pdpteRsvdLo: 0,
    pdpteRsvdHi: 0,
    leafShift: mode.shift.slice(),
  });
  formats.set(key, f);
  return f;
}

/**
 * An AMD nested-paging format (APM vol. 2, 15.25.5): the host's own long-mode
 * entries (4- or 5-level, by the host's CR4.LA57), with the host's
 * MAXPHYADDR and EFER.NXE deciding reserved bits. Every nested access is a
 * user access (U/S must be 1 at every level); G and protection keys have no
 * meaning for a guest-physical translation.
 */
export function nptFormat(levels: 4 | 5, maxPhysAddr: number, nxe: boolean): WalkFormat {
  const key = `npt${levels}/${maxPhysAddr}/${nxe ? 1 : 0}`;
  let f = formats.get(key);
  if (f !== undefined) return f;
  const x86 = formatFor(levels === 5 ? MODE_LONG5 : MODE_LONG4, maxPhysAddr, nxe, false);
  f = makeFormat({ ...x86, kind: ENTRY_NPT, globalBit: 0, pk: false });
  formats.set(key, f);
  return f;
}
