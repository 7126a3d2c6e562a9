/**
 * The shadow record, the index arithmetic between a shadow and the guest
 * table it shadows, and which guest entry bits shadow entries copy (the role
 * of Xen's shadow/types.h).
 */
import { MODE_PAE, type PagingMode, type WalkFormat } from '../../arch/x86/modes.js';

/** Bits of a guest leaf copied into a shadow leaf: RW, US, PWT, PCD, G (+ XD and PK in the high half). */
export const LEAF_COPY_LO = 0x11e;
/** Bits of a guest non-leaf entry copied into a shadow non-leaf entry: RW, US, PWT, PCD (+ XD). */
export const NONLEAF_COPY_LO = 0x1e;
/** High-half bits a shadow leaf copies: XD and the protection key. */
export const HI_COPY = 0x80000000 | (0xf << 27);

/** A shadow page table. */
export interface Shadow {
  readonly key: number | string;
  readonly smfn: number;
  /** The guest paging format whose entries it shadows. */
  readonly fmt: WalkFormat;
  /** Guest frame shadowed (for fl shadows: first frame of the splintered range). */
  readonly gfn: number;
  /** Hardware level of this table. */
  readonly level: number;
  /** The guest table has 8-byte entries (false: a 32-bit guest, shadowed in PAE format). */
  readonly guestWide: boolean;
  /**
   * Which part of a 32-bit guest table this PAE-format shadow covers: a
   * 1024-entry guest PD is four 512-entry shadow PDs (part 0-3, 256 guest
   * entries each), a 1024-entry guest PT two shadow PTs (part 0-1).
   */
  readonly part: number;
  /** Splintered superpage (no guest table behind it). */
  readonly fl: boolean;
  /** fl shadows: the guest superpage entry's halves (rights, caching, key). */
  readonly flLo: number;
  readonly flHi: number;
  refs: number;
  pinned: boolean;
  /** Parent entries pointing at it (slots smfn * 1024 + index), so it can be unhooked. */
  readonly ups: Set<number>;
  /** Neighbours in the pinned roots' load order (lru.ts); null when not in it. */
  lruPrev: Shadow | null;
  lruNext: Shadow | null;
}

/** The hardware format of the shadows for a guest format: 32-bit guests run on PAE shadows. */
export function hardwareMode(fmt: WalkFormat): PagingMode {
  return fmt.mode.wide ? fmt.mode : MODE_PAE;
}

/** Index in the guest table of the entry shadow entry `i` of `sh` derives from. */
export function guestIndex(sh: Shadow, i: number): number {
  if (sh.guestWide || sh.fl) return i;
  return sh.level === 2 ? sh.part * 256 + (i >>> 1) : sh.part * 512 + i;
}

/**
 * The first shadow entry of `sh` derived from guest entry `gi` of the table
 * it shadows, or -1 if none is; derivedCount(sh) consecutive entries are.
 */
export function firstDerived(sh: Shadow, gi: number): number {
  if (sh.guestWide) return gi;
  if (sh.level === 2) return gi >>> 8 === sh.part ? (gi & 255) << 1 : -1;
  return gi >>> 9 === sh.part ? gi & 511 : -1;
}

/** How many shadow entries of `sh` one guest entry derives: two per 4 MiB entry of a 32-bit guest's PD, else one. */
export function derivedCount(sh: Shadow): number {
  return !sh.guestWide && sh.level === 2 ? 2 : 1;
}

/** Shadow entries of `sh` derived from guest entry `gi` of the table it shadows (allocates: not for hot paths). */
export function derivedEntries(sh: Shadow, gi: number): number[] {
  const first = firstDerived(sh, gi);
  return first < 0 ? [] : Array.from({ length: derivedCount(sh) }, (_, k) => first + k);
}

/** Small integer for a walk format (mode, NXE, PSE): part of the shadow key. */
export function formatIndex(fmt: WalkFormat): number {
  const m = fmt.mode.name === '32-bit' ? 0 : fmt.mode.name === 'pae' ? 1 : fmt.mode.name === '4-level' ? 2 : 3;
  return m * 4 + (fmt.nxe ? 2 : 0) + (fmt.pse ? 1 : 0);
}

/** A shadow as a reader would name it: level, guest frame, part, format. */
export function shadowName(sh: Shadow): string {
  if (sh.fl) return `fl${sh.level}@gfn ${sh.gfn}`;
  return `l${sh.level}@gfn ${sh.gfn}${sh.part ? ` part ${sh.part}` : ''} (${sh.fmt.mode.name})`;
}
