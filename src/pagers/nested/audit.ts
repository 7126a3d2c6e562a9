/**
 * The nested pager's isolation checker (run after every exit with --check):
 * the rules of tdp.ts checked from the outside, entry by entry.
 *
 *  - No stage-2 leaf reaches a machine frame the domain does not own, and
 *    each maps every gfn it covers to that gfn's own frame (placement).
 *  - Rights never exceed guest ∩ p2m: the guest's rights are the first
 *    stage's, enforced by the hardware walk of the guest's own tables; a
 *    leaf grants write only over RAM, never over ROM, and no leaf exists for
 *    a gfn with no RAM but the unusable MMIO entry (level 1 only).
 *  - The p2m type an entry carries is the physmap's.
 *  - Every table frame is the hypervisor's and the pager's; no table is
 *    reached twice; non-present entries hold no bits.
 *  - Every vCPU's MMU walks this stage 2 in machine memory, and what its
 *    paging-structure caches hold of stage 2 (combined entries' host
 *    frames, stage-2 upper entries, the guest-physical TLB) is what stage 2
 *    gives now: INVEPT followed every change (psc.ts, auditWalkCaches).
 *  - Log-dirty (logdirty.ts), for leaves the hardware can use (none above
 *    them marked for recalculation): RAM is ram_rw, or ram_logdirty only in
 *    log-dirty mode; a ram_logdirty leaf is writable only under pml and at
 *    4 KiB; in log-dirty mode a writable leaf is a 4 KiB one whose gfn is
 *    logged (the domain's log, or a vCPU's PML log), or a clean (dirty flag
 *    clear) ram_logdirty leaf under pml.
 */

import type { Cpu } from '../../arch/x86/cpu.js';
import { leafFrame } from '../../arch/x86/entry.js';
import { auditWalkCaches } from '../../arch/x86/psc.js';
import type { Stage2 } from '../../arch/x86/walker.js';
import type { Domain } from '../../hypervisor/domain.js';
import { PHYS_NONE, PHYS_RAM } from '../../hypervisor/physmap.js';
import { OWNER_HYPERVISOR } from '../../machine/memory.js';
import { entryType, P2M_LOGDIRTY, P2M_RAM_RO, P2M_RAM_RW, type Stage2Entries } from './entries.js';
import type { LogDirtyMode } from './options.js';
import type { Stage2Table } from './tdp.js';

/** Log-dirty state as the checker needs it. */
export interface LogDirtyView {
  readonly mode: LogDirtyMode;
  readonly on: boolean;
  /** Is gfn logged (the domain's log or a vCPU's PML log)? */
  logged(gfn: number): boolean;
}

export function auditStage2(
  domain: Domain,
  cpus: readonly Cpu[],
  table: Stage2Table,
  enc: Stage2Entries,
  stage2: Stage2,
  dirty: LogDirtyView,
): string | null {
  const mem = domain.mem;
  const guest = domain.guest;
  const placement = domain.placement;
  for (const c of cpus) {
    if (c.mmu.stage2 !== stage2) return `vCPU ${c.index} does not walk the domain's stage 2`;
    // Its caches: combined entries' host frames and guest-physical ones are stage 2's now (psc.ts).
    const p = auditWalkCaches(c.mmu);
    if (p !== null) return `vCPU ${c.index}: ${p}`;
  }
  for (const t of table.tables) {
    if (mem.ownerOf(t) !== OWNER_HYPERVISOR) return `stage-2 table frame ${t} is not the hypervisor's`;
  }
  try {
    for (const l of table.leaves()) {
      const where = (): string => `stage-2 leaf for gfn ${l.gfn} (level ${l.level}, table ${l.tableMfn}[${l.index}])`;
      if (l.lo === enc.mmio[0] && l.hi === enc.mmio[1]) {
        if (l.level !== 1) return `${where()}: an MMIO entry above level 1`;
        if (guest.typeOf(l.gfn) !== PHYS_NONE) return `${where()}: an MMIO entry over a frame with RAM`;
        continue;
      }
      const span = 2 ** (9 * (l.level - 1));
      const mfn = leafFrame(l.lo, l.hi, true, l.level > 1, 12 + 9 * (l.level - 1));
      const last = l.gfn + span - 1;
      if (last >= guest.ramFrames) return `${where()}: covers gfns beyond RAM`;
      const type = entryType(l.hi);
      const phys = guest.typeOf(l.gfn);
      if (phys === PHYS_NONE) return `${where()}: maps a frame taken away`;
      const ramType = type === P2M_RAM_RW || (type === P2M_LOGDIRTY && (dirty.on || l.pending));
      if (!(phys === PHYS_RAM ? ramType : type === P2M_RAM_RO)) return `${where()}: p2m type ${type}, physmap ${phys}`;
      const writable = (l.lo & enc.writeLo) !== 0;
      if (writable && phys !== PHYS_RAM) return `${where()}: writable over ROM`;
      if (!l.pending && writable && type === P2M_LOGDIRTY && (dirty.mode !== 'pml' || l.level > 1))
        return `${where()}: a writable ram_logdirty leaf${dirty.mode === 'pml' ? ' above 4 KiB' : ' (logdirty=wp)'}`;
      if (!l.pending && writable && dirty.on) {
        const clean = type === P2M_LOGDIRTY && (l.lo & enc.dirtyLo) === 0;
        if (!clean && !dirty.logged(l.gfn)) return `${where()}: writable in log-dirty mode, and its gfn is not logged`;
      }
      if (span > 1) {
        if (guest.physmap.anyNotRam(l.gfn, span)) return `${where()}: a large leaf over frames that are not all RAM`;
        if (placement.mfnOf(l.gfn) !== mfn || placement.mfnOf(last) !== mfn + span - 1)
          return `${where()}: a large leaf over frames not contiguous in machine memory`;
        for (const m of [mfn, mfn + span - 1])
          if (mem.ownerOf(m) !== domain.id) return `${where()}: reaches frame ${m}, not the domain's`;
      } else {
        if (placement.mfnOf(l.gfn) !== mfn) return `${where()}: maps frame ${mfn}, not the gfn's own`;
        if (mem.ownerOf(mfn) !== domain.id) return `${where()}: reaches frame ${mfn}, not the domain's`;
      }
    }
  } catch (e) {
    return (e as Error).message;
  }
  return null;
}
