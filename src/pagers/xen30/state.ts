/**
 * What every part of the Xen 3.0 profile shares (the role of the fields of
 * Xen 3.0.2's struct arch_domain that shadow mode uses: shadow_ht,
 * out_of_sync, shadow_page_count, the dirty bitmap): the domain and its
 * P2M, the two views of memory, the vCPUs, the counters, the guest walker,
 * the shadow_ht hash, and the shadows by machine and by guest frame.
 *
 * Shadow types are Xen 3.0's PGT_* shadow types (xen/include/asm-x86/mm.h:
 * PGT_l1_shadow … PGT_l4_shadow, PGT_fl1_shadow, PGT_hl2_shadow,
 * PGT_snapshot), plus l5 for 5-level guests and fl2 for splintered 1 GiB
 * pages, which 3.0 did not have. A shadow record has the shape the shadow
 * pager's isolation checker reads (pagers/shadow/types.ts, Shadow).
 *
 * Rules kept here:
 *  - byMfn, byGfn and the hash are written only by the status part
 *    (status.ts: make, free); every other part only reads them;
 *  - `walk` is the guest walk of the fault in progress.
 */
import type { Cpu } from '../../arch/x86/cpu.js';
import type { WalkFormat } from '../../arch/x86/modes.js';
import { Walker, WalkResult } from '../../arch/x86/walker.js';
import type { Domain } from '../../hypervisor/domain.js';
import { MachineSpace, P2M_INVALID, P2M_RAM_RO, P2M_RAM_RW, P2m, P2mSpace } from '../../p2m/p2m.js';
import { formatIndex, type Shadow } from '../shadow/types.js';
import type { Xen30Counters } from './counters.js';
import { ShadowHt } from './shadow_ht.js';

/** Shadow types: a table's level (1-5) for l1 … l5 shadows, then these. */
export const T_FL1 = 6;
export const T_FL2 = 7;
export const T_HL2 = 8;
export const T_SNAPSHOT = 9;

/** A shadow table (l1-l5, fl1, fl2). */
export interface XenShadow extends Shadow {
  /** Its PGT_* type: the level, or T_FL1 / T_FL2. */
  readonly type: number;
  /**
   * Lowest and highest index ever made present (Xen keeps the pair in the
   * shadow page's tlbflush_timestamp, SHADOW_ENCODE_MIN_MAX): resync compares
   * only this range; min > max while the shadow is empty.
   */
  min: number;
  max: number;
}

/** An hl2 table: a hypervisor frame of l1-format entries for a guest l2 (hl2.ts). */
export interface Hl2Table {
  readonly gfn: number;
  /** Two frames of 8-byte entries: guest l2 entries 0-511, then 512-1023. */
  readonly smfns: readonly [number, number];
  pinned: boolean;
  /** vCPUs whose monitor table's linear slot holds it now. */
  users: number;
}

/** A snapshot: the copy of an out-of-sync page, in a hypervisor frame (oos.ts). */
export interface Snapshot {
  readonly gfn: number;
  readonly smfn: number;
}

/**
 * The hash key of a table shadow of guest frame `gfn`: the part of a
 * 32-bit guest table (0-3), the guest format (formatIndex, 0-15), the type.
 * Exact below 2^44 guest frames.
 */
export function shadowKey(gfn: number, part: number, format: number, type: number): number {
  return ((gfn * 4 + part) * 16 + format) * 16 + type;
}

/** The key of an fl shadow: the splintered superpage at `gfn` with guest entry (lo, hi)'s flags. */
export function flKeyOf(fmt: WalkFormat, type: number, gfn: number, lo: number, hi: number): string {
  return `${formatIndex(fmt)}:${type}:${gfn}:${lo & 0x1fff}:${(hi >>> 27) & 0x1f}`;
}

/** The p2m type of each physmap type (hypervisor/physmap.ts: ram, rom, none). */
const P2M_TYPE_OF = [P2M_RAM_RW, P2M_RAM_RO, P2M_INVALID] as const;

export class Xen30State {
  readonly p2m: P2m;
  /** Guest-physical memory through the P2M. */
  readonly guestSpace: P2mSpace;
  /** Machine memory: what the hardware walks. */
  readonly hwSpace: MachineSpace;
  readonly walker = new Walker();
  readonly walk = new WalkResult();
  /** d->arch.shadow_ht: shadows, hl2s and snapshots. */
  readonly ht: ShadowHt<XenShadow | Hl2Table | Snapshot>;
  /** Shadow frame -> its table shadow. */
  readonly byMfn = new Map<number, XenShadow>();
  /** Guest frame -> its table shadows (not fl): the frame is a page table (PGC_page_table) while listed. */
  readonly byGfn = new Map<number, XenShadow[]>();
  /** Guest frame -> its hl2 (2-level guests). */
  readonly hl2ByGfn = new Map<number, Hl2Table>();

  constructor(
    readonly domain: Domain,
    readonly cpus: readonly Cpu[],
    readonly counters: Xen30Counters,
  ) {
    const guest = domain.guest;
    this.p2m = new P2m(domain.mem, domain.placement, (gfn) => P2M_TYPE_OF[guest.typeOf(gfn)] as number);
    this.guestSpace = new P2mSpace(this.p2m);
    this.hwSpace = new MachineSpace(domain.mem);
    this.ht = new ShadowHt(counters);
  }

  /** mfn_is_page_table: is guest frame `gfn` shadowed as a table (or by an hl2)? */
  isPageTable(gfn: number): boolean {
    return this.byGfn.has(gfn) || this.hl2ByGfn.has(gfn);
  }

  /** Count a hypervisor frame made (shadow, hl2 or snapshot) toward the gauges. */
  frameMade(): void {
    const c = this.counters;
    c.shadow_frames++;
    if (c.shadow_frames > c.peak_shadow_frames) c.peak_shadow_frames = c.shadow_frames;
  }
}
