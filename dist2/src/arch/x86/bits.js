/**
 * x86 architectural bit positions (Intel SDM vol. 3A, ch. 2 and 4).
 * Paging-entry bits are given for the low 32-bit half of an entry; XD and the
 * protection key live in the high half (XD_HI, PK_SHIFT_HI).
 */
// Paging-structure entry, low half.
export const PTE_P = 1 << 0;
export const PTE_RW = 1 << 1;
export const PTE_US = 1 << 2;
export const PTE_PWT = 1 << 3;
export const PTE_PCD = 1 << 4;
export const PTE_A = 1 << 5;
export const PTE_D = 1 << 6;
export const PTE_PS = 1 << 7; // PAT in a 4 KiB PTE
export const PTE_G = 1 << 8;
// High half.
export const XD_HI = 1 << 31; // bit 63
export const PK_SHIFT_HI = 27; // bits 62:59
// Page-fault error code (SDM 4.7).
export const PF_P = 1 << 0;
export const PF_W = 1 << 1;
export const PF_U = 1 << 2;
export const PF_RSVD = 1 << 3;
export const PF_ID = 1 << 4;
export const PF_PK = 1 << 5;
// CR0.
export const CR0_PE = 1 << 0;
export const CR0_MP = 1 << 1;
export const CR0_EM = 1 << 2;
export const CR0_TS = 1 << 3;
export const CR0_ET = 1 << 4;
export const CR0_NE = 1 << 5;
export const CR0_WP = 1 << 16;
export const CR0_AM = 1 << 18;
export const CR0_NW = 1 << 29;
export const CR0_CD = 1 << 30;
export const CR0_PG = 1 << 31;
// CR4.
export const CR4_PSE = 1 << 4;
export const CR4_PAE = 1 << 5;
export const CR4_PGE = 1 << 7;
export const CR4_LA57 = 1 << 12;
export const CR4_PCIDE = 1 << 17;
export const CR4_SMEP = 1 << 20;
export const CR4_SMAP = 1 << 21;
export const CR4_PKE = 1 << 22;
// IA32_EFER.
export const EFER_SCE = 1 << 0;
export const EFER_LME = 1 << 8;
export const EFER_LMA = 1 << 10;
export const EFER_NXE = 1 << 11;
export const READ = 0;
export const WRITE = 1;
export const FETCH = 2;
//# sourceMappingURL=bits.js.map