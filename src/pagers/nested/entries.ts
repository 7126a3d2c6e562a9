/**
 * Stage-2 entries as the nested pager writes them, one encoder per format
 * ("one algorithm, many formats": tdp.ts builds EPT and NPT tables alike
 * from these).
 *
 * The P2M *is* the stage-2 table: every leaf carries its p2m type in bits
 * 52-58 with Xen's numbers (src/p2m/p2m.ts) — ignored by the hardware in
 * both formats (EPT: bits 62:52 are ignored, SDM vol. 3C, table 29-6; Xen's
 * ept_entry_t keeps sa_p2mt there; NPT: bits 58:52 of a long-mode entry are
 * available to software) — and the type decides the rights:
 *   ram_rw   EPT R W X, memory type WB with IPAT (as KVM for RAM); NPT P RW US
 *   ram_ro   the same without write: a write exits and is discarded (rule 5)
 *   ram_logdirty  (log-dirty mode) RAM whose next write must be logged: not
 *            writable (switch logdirty=wp, and superpages always), or with
 *            logdirty=pml a writable 4 KiB leaf with its EPT dirty flag
 *            clear, so the CPU logs the first write (Xen: hap.c, p2m-ept.c)
 *   mmio_dm  (switch mmio=misconfig) EPT W X without R, a misconfiguration
 *            (KVM's VMX_EPT_MISCONFIG_WX_VALUE); NPT P RW US with reserved
 *            address bit 51 (KVM's reserved-bit MMIO SPTE on AMD): #NPF RSVD
 * Non-leaf entries grant everything (EPT R W X; NPT P RW US): the leaf
 * decides. NPT entries need U/S=1 at every level: every nested access is a
 * user access (APM vol. 2, 15.25.5).
 */
import { PTE_A, PTE_D, PTE_P, PTE_PS, PTE_RW, PTE_US } from '../../arch/x86/bits.js';
import { entryHi, entryLo } from '../../arch/x86/entry.js';
import {
  EPT_A,
  EPT_D,
  EPT_IPAT,
  EPT_MEMTYPE_SHIFT,
  EPT_MT_WB,
  EPT_PS,
  EPT_R,
  EPT_W,
  EPT_X,
  eptFormat,
  nptFormat,
  type WalkFormat,
} from '../../arch/x86/modes.js';
import { P2M_LOGDIRTY, P2M_MMIO, P2M_RAM_RO, P2M_RAM_RW } from '../../p2m/p2m.js';

/** Physical-address width of the simulated host (as under the shadow pager): machine frames fit in 46 bits. */
export const HOST_MAXPHYADDR = 46;

/**
 * The stage-2 walk format the hypervisor builds: EPT without MBEC, with
 * execute-only pages (IA32_VMX_EPT_VPID_CAP bit 0), A/D flags when `ad`; or
 * NPT under a host with EFER.NXE. One place for the nested pager, the
 * agile pager and `translate --nested`.
 */
export function stage2Format(kind: 'ept' | 'npt', levels: 4 | 5, ad: boolean): WalkFormat {
  return kind === 'ept'
    ? eptFormat(levels, HOST_MAXPHYADDR, { ad, mbec: false, executeOnly: true })
    : nptFormat(levels, HOST_MAXPHYADDR, true);
}
/** The p2m type's place in an entry's high word (entry bits 52-58). */
const TYPE_SHIFT_HI = 20;
const TYPE_MASK_HI = 0x7f << TYPE_SHIFT_HI;

/** How one stage-2 format spells its entries. */
export interface Stage2Entries {
  /** A non-leaf entry naming table frame `mfn`. */
  table(mfn: number): readonly [number, number];
  /**
   * A leaf at `level` (1: 4 KiB; 2, 3: a large page) mapping `mfn` with p2m
   * type ram_rw, ram_ro or ram_logdirty; `pml`: log-dirty by page-modification
   * logging (a 4 KiB ram_logdirty leaf is then writable with its dirty flag
   * clear, as Xen's ept_p2m_type_to_flags makes it).
   */
  leaf(mfn: number, level: number, type: number, pml: boolean): readonly [number, number];
  /** The MMIO entry (switch mmio=misconfig): present to the walker, and unusable by design. */
  readonly mmio: readonly [number, number];
  /** Rights bits of the low half that allow a write (EPT W, NPT R/W). */
  readonly writeLo: number;
  /** The dirty flag of a leaf's low half (0: the format keeps none in force). */
  readonly dirtyLo: number;
  /**
   * Entry (lo, hi) marked for recalculation of its p2m type, the next access
   * through it faulting (Xen's deferred type changes): EPT memory type 7 and
   * bit 10 (ept_invalidate_emt_subtree: an invalid memory type in a leaf,
   * reserved bits 5:3 in a non-leaf entry, so an EPT misconfiguration);
   * NPT U/S and A clear (p2m-pt.c's set_recalc: every nested access is a
   * user access, so a #NPF with P set).
   */
  markRecalc(lo: number, hi: number): readonly [number, number];
  /** Is the present entry `lo` marked for recalculation? */
  needsRecalc(lo: number): boolean;
}

const typeHi = (type: number): number => (type << TYPE_SHIFT_HI) >>> 0;

/** The p2m type an entry carries. */
export function entryType(hi: number): number {
  return (hi & TYPE_MASK_HI) >>> TYPE_SHIFT_HI;
}

/** Is a leaf of p2m type `type` writable (pml: log-dirty by PML)? Xen's ept_p2m_type_to_flags, p2m-ept.c. */
export function typeWritable(type: number, level: number, pml: boolean): boolean {
  return type === P2M_RAM_RW || (type === P2M_LOGDIRTY && pml && level === 1);
}

/** EPT bit 10 (ignored without mode-based execute control): Xen's `recalc` in ept_entry_t. */
const EPT_RECALC = 1 << 10;
const EPT_MT_MASK = 7 << EPT_MEMTYPE_SHIFT;

/**
 * EPT entries; with accessed/dirty flags on (`ad`), A is preset in every
 * entry and D in writable RAM leaves, as Xen's ept_p2m_type_to_flags and
 * ept_set_middle_entry do, so the CPU sets them only where log-dirty cleared
 * them (a ram_logdirty leaf has D clear).
 */
export function eptEntries(ad: boolean): Stage2Entries {
  const a = ad ? EPT_A : 0;
  return {
    table: (mfn) => [entryLo(mfn, EPT_R | EPT_W | EPT_X | a), entryHi(mfn)],
    leaf(mfn, level, type, pml) {
      let flags = EPT_R | EPT_X | (EPT_MT_WB << EPT_MEMTYPE_SHIFT) | EPT_IPAT | a;
      if (typeWritable(type, level, pml)) flags |= EPT_W;
      if (type === P2M_RAM_RW && ad) flags |= EPT_D;
      if (level > 1) flags |= EPT_PS;
      return [entryLo(mfn, flags), (entryHi(mfn) | typeHi(type)) >>> 0];
    },
    mmio: [EPT_W | EPT_X, typeHi(P2M_MMIO)],
    writeLo: EPT_W,
    dirtyLo: ad ? EPT_D : 0,
    markRecalc: (lo, hi) => [(lo | EPT_MT_MASK | EPT_RECALC) >>> 0, hi],
    needsRecalc: (lo) => (lo & EPT_RECALC) !== 0,
  };
}

/** Bit 51 of an NPT entry (high-half bit 19): reserved with the host's MAXPHYADDR of 46. */
const NPT_RSVD_HI = 1 << 19;

/** NPT entries: A preset everywhere and D in leaves, as Xen's p2m_type_to_flags (P2M_BASE_FLAGS, p2m-pt.c). */
export const NPT_ENTRIES: Stage2Entries = {
  table: (mfn) => [entryLo(mfn, PTE_P | PTE_RW | PTE_US | PTE_A), entryHi(mfn)],
  leaf(mfn, level, type) {
    let flags = PTE_P | PTE_US | PTE_A | PTE_D;
    if (typeWritable(type, level, false)) flags |= PTE_RW;
    if (level > 1) flags |= PTE_PS;
    return [entryLo(mfn, flags), (entryHi(mfn) | typeHi(type)) >>> 0];
  },
  mmio: [PTE_P | PTE_RW | PTE_US, (NPT_RSVD_HI | typeHi(P2M_MMIO)) >>> 0],
  writeLo: PTE_RW,
  dirtyLo: PTE_D,
  markRecalc: (lo, hi) => [(lo & ~(PTE_US | PTE_A)) >>> 0, hi],
  needsRecalc: (lo) => (lo & PTE_US) === 0,
};

export { P2M_LOGDIRTY, P2M_MMIO, P2M_RAM_RO, P2M_RAM_RW };
