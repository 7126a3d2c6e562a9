/**
 * Encoding and decoding the frame of a paging-structure entry held as two
 * 32-bit halves (SDM vol. 3A, 4.3-4.5; the same layout in EPT and AMD NPT
 * entries): bits 51:12 of an 8-byte entry are the frame, 20 of them in the
 * high half. Frame numbers reach 2^40, past 32-bit integer arithmetic, so the
 * split is by multiplication and division, done only here.
 */

/** Bits 51:32 of an 8-byte entry: the high half's share of the frame number. */
export const FRAME_HI_MASK = 0xfffff;
/** Frames per unit of the high half's frame bits (2^20: bit 32 of an address is frame bit 20). */
export const FRAMES_PER_HI = 0x100000;

/** Frame (bits 51:12) of an 8-byte entry: the next table, or a 4 KiB page. */
export function entryFrame(lo: number, hi: number): number {
  // Literals, not FRAME_HI_MASK and FRAMES_PER_HI: a walk inlines this, and V8 reloads and checks an exported binding at every use.
  return (hi & 0xfffff) * 0x100000 + (lo >>> 12);
}

/** Frame an entry of either width names: 8-byte entries as entryFrame, 4-byte ones bits 31:12. */
export function entryFrameOf(wide: boolean, lo: number, hi: number): number {
  return wide ? entryFrame(lo, hi) : lo >>> 12;
}

/** Low half of an 8-byte entry naming frame `pfn`, with the flags of bits 11:0 (and bit 12 if given). */
export function entryLo(pfn: number, flags: number): number {
  return ((pfn % FRAMES_PER_HI) * 4096 + flags) >>> 0;
}

/** High half's frame bits (51:32) of an 8-byte entry naming frame `pfn`; OR in XD, keys, software bits. */
export function entryHi(pfn: number): number {
  return Math.floor(pfn / FRAMES_PER_HI);
}

/**
 * Base frame of the page a leaf entry maps: bits 51:12 of an 8-byte entry
 * (large pages: above the page size), or for 32-bit paging bits 31:12, and
 * for a 4 MiB page bits 31:22 plus PSE-36 bits 20:13 as address bits 39:32.
 */
export function leafFrame(lo: number, hi: number, wide: boolean, large: boolean, shift: number): number {
  if (wide) return (hi & FRAME_HI_MASK) * FRAMES_PER_HI + ((lo >>> 12) & ~((1 << (shift - 12)) - 1));
  if (large) return ((lo >>> 22) << 10) + ((lo >>> 13) & 0xff) * FRAMES_PER_HI;
  return lo >>> 12;
}
