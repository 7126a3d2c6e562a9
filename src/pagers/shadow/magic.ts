/**
 * The fast path's "magic" shadow l1 entries (Xen's SH_L1E_MAGIC, shadow/types.h):
 * entries with reserved address bits set, so the hardware faults with
 * PF_RSVD instead of using them, and the fault handler learns what the fault
 * is from the entry alone, without walking the guest's tables.
 *
 * Rules (the isolation checker tests them):
 *  1. A shadow l1 is shared by every path that reaches its guest l1 (it is
 *     keyed by the guest frame), so a magic entry holds only what the guest
 *     l1 entry itself says: its frame number and its own R/W, U/S, D, XD and
 *     protection key. The rights of the entries above come from the path the
 *     hardware walked (the shadow's upper entries copy the guest's), as Xen's
 *     sh_l1e_mmio() keeps only the leaf's _PAGE_USER|_PAGE_RW.
 *  2. The guest frame number is stored whole: 40 bits (MAXPHYADDR 52) in
 *     entry bits 31:12, 45:32 and 57:52. Bits 51:46 — reserved on the
 *     simulated host (MAXPHYADDR 46) — mark the entry; bits 57:52 are ignored
 *     by the hardware, so they can carry frame bits.
 *
 * Layout of an MMIO magic entry (low half / high half):
 *   lo: P=1, bit 1 R/W, bit 2 U/S, bit 6 D (the guest leaf's), bit 9 MMIO,
 *       bits 31:12 gfn bits 19:0
 *   hi: bits 13:0 gfn bits 33:20, bits 19:14 magic (entry bits 51:46),
 *       bits 25:20 gfn bits 39:34, bits 30:27 protection key, bit 31 XD
 * A guest-not-present entry is P=1 with the magic bits and nothing else.
 */
import { PTE_D, PTE_P, PTE_RW, PTE_US } from '../../arch/x86/bits.js';

/** Physical-address width of the simulated host CPU: machine frames fit in 46 bits. */
export const HOST_MAXPHYADDR = 46;
/** Entry bits 51:46 in the high half: reserved on the host, set in every magic entry. */
export const MAGIC_HI = 0xfc000;
/** Entry bit 9 (ignored by hardware): an MMIO magic entry. */
const MAGIC_MMIO = 0x200;
/** The guest leaf's own bits an MMIO magic entry keeps, at their own positions. */
const LEAF_LO = PTE_RW | PTE_US | PTE_D;
const LEAF_HI = 0x80000000 | (0xf << 27); // XD, protection key
/** Largest guest frame number a magic entry can hold: 2^40 - 1 (MAXPHYADDR 52). */
export const MAGIC_GFN_LIMIT = 2 ** 40;

/** The guest-not-present magic entry (low and high half). */
export const GNP_LO = PTE_P;
export const GNP_HI = MAGIC_HI;

export function isMagic(lo: number, hi: number): boolean {
  return (lo & PTE_P) !== 0 && (hi & MAGIC_HI) === MAGIC_HI;
}

export function isMmioMagic(lo: number, hi: number): boolean {
  return isMagic(lo, hi) && (lo & MAGIC_MMIO) !== 0;
}

/**
 * An MMIO magic entry for guest frame `gfn` mapped by guest leaf (lo, hi)
 * (8-byte form; 32-bit guests: hi = 0): its low half, and its high half
 * (two functions, not a pair: the fault path allocates nothing).
 */
export function mmioMagicLo(gfn: number, lo: number): number {
  return (PTE_P | MAGIC_MMIO | (lo & LEAF_LO) | ((gfn % 0x100000) << 12)) >>> 0;
}
export function mmioMagicHi(gfn: number, hi: number): number {
  const mid = Math.floor(gfn / 0x100000);
  return ((mid & 0x3fff) | MAGIC_HI | (Math.floor(mid / 0x4000) << 20) | (hi & LEAF_HI)) >>> 0;
}

/** The guest frame number an MMIO magic entry holds. */
export function mmioMagicGfn(lo: number, hi: number): number {
  return (((hi >>> 20) & 0x3f) * 0x4000 + (hi & 0x3fff)) * 0x100000 + (lo >>> 12);
}
