/**
 * The agile pager's isolation checker (run after every exit with --check):
 * agile.ts's rules checked from the outside, entry by entry.
 *
 *  - Shadow tables are the hypervisor's frames, recorded once; every shadow
 *    entry mirrors the guest entry at the same index (writes drop them, so
 *    a present shadow entry always has a present guest entry behind it):
 *    a leaf maps the guest frame's own machine frame, a frame with RAM or
 *    ROM the domain owns, with no right the guest leaf lacks, and write only
 *    over RAM that is dirty in the guest and not protected; a non-leaf entry
 *    names the shadow of the guest's next table, or (switching bit) that
 *    table's gfn, which has RAM or ROM behind it and is in nested mode.
 *  - Every shadowed guest frame is protected; no writable shadow leaf and no
 *    writable stage-2 leaf covers a protected frame; the writable reverse
 *    map and the up-pointers hold exactly the entries there are.
 *  - Stage 2: no leaf reaches a frame the domain does not own, each maps
 *    every gfn it covers to that gfn's own frame, only below the end of RAM
 *    over frames with RAM or ROM, writable only over RAM (read-only over RAM
 *    is write protection, possibly left behind: fewer rights, never more).
 *  - Every vCPU walks this stage 2; one with a switching bit walks its
 *    current root's shadow with CR0.WP forced on.
 */
import { CTL_WP } from '../../arch/x86/access.js';
import { PTE_D, PTE_P, PTE_RW, PTE_US, XD_HI } from '../../arch/x86/bits.js';
import { entryFrame, leafFrame } from '../../arch/x86/entry.js';
import { PHYS_NONE, PHYS_RAM } from '../../hypervisor/physmap.js';
import { OWNER_HYPERVISOR } from '../../machine/memory.js';
import { entryType, P2M_RAM_RO, P2M_RAM_RW } from '../nested/entries.js';
import type { Stage2Leaf } from '../nested/tdp.js';
import { type AgilePager, type ShadowTable, SWITCH_BIT, tableKey } from './agile.js';

export function auditAgile(p: AgilePager): string | null {
  const domain = p.domain;
  const mem = domain.mem;
  for (const c of p.cpus) {
    const m = c.mmu;
    if (m.stage2 !== p.stage2) return `vCPU ${c.index} does not walk the domain's stage 2`;
    if (m.switchBit !== 0) {
      const root = p.cpuRoot[c.index];
      const fmt = c.format;
      if (root === null || root === undefined || fmt === null)
        return `vCPU ${c.index} walks shadows with no root pinned`;
      if (m.rootPfn !== root.mfn || root.key !== tableKey(c.cr3RootPfn, fmt.mode.topLevel))
        return `vCPU ${c.index} walks a shadow root that is not its CR3's`;
      if ((m.ctlOr & CTL_WP) === 0) return `vCPU ${c.index} walks shadows without CR0.WP forced on`;
    }
  }
  const shadowGfns = new Map<number, number>();
  const writable = new Map<number, number>();
  for (const [key, sh] of p.shadows) {
    const where = (): string => `shadow of gfn ${sh.gfn} (level ${sh.level}, frame ${sh.mfn})`;
    if (sh.key !== key || p.byMfn.get(sh.mfn) !== sh) return `${where()}: recorded inconsistently`;
    if (mem.ownerOf(sh.mfn) !== OWNER_HYPERVISOR) return `${where()}: not the hypervisor's frame`;
    shadowGfns.set(sh.gfn, (shadowGfns.get(sh.gfn) ?? 0) + 1);
    if (sh.refs < sh.parents.size || sh.refs <= 0)
      return `${where()}: ${sh.refs} references, ${sh.parents.size} parents`;
    const problem = auditTable(p, sh, writable);
    if (problem !== null) return `${where()}: ${problem}`;
    for (const slot of sh.parents) {
      const parent = p.byMfn.get(Math.floor(slot / 512));
      if (parent === undefined) return `${where()}: a parent slot in no shadow`;
      const f = mem.read(parent.mfn);
      const lo = f[2 * (slot % 512)] as number;
      if ((lo & PTE_P) === 0 || (lo & SWITCH_BIT) !== 0 || entryFrame(lo, f[2 * (slot % 512) + 1] as number) !== sh.mfn)
        return `${where()}: a parent slot that does not name it`;
    }
  }
  for (const [gfn, n] of shadowGfns)
    if (p.protectedGfns.get(gfn) !== n) return `gfn ${gfn} is shadowed but not protected`;
  if (p.protectedGfns.size !== shadowGfns.size) return 'a protected gfn has no shadow';
  let rmapped = 0;
  for (const [gfn, slots] of p.writable) {
    if (p.isProtected(gfn)) return `a writable shadow leaf maps protected gfn ${gfn}`;
    rmapped += slots.size;
  }
  let counted = 0;
  for (const n of writable.values()) counted += n;
  if (counted !== rmapped) return `the writable reverse map holds ${rmapped} slots, the shadows ${counted}`;
  for (const key of p.switchSlots.keys())
    if (!p.nested.has(key)) return `switching entries to a table not in nested mode (${key})`;
  return auditStage2(p);
}

function auditTable(p: AgilePager, sh: ShadowTable, writable: Map<number, number>): string | null {
  const domain = p.domain;
  const guest = domain.guest;
  const placement = domain.placement;
  const f = domain.mem.read(sh.mfn);
  const g = guest.frameForRead(sh.gfn);
  for (let i = 0; i < 512; i++) {
    const lo = f[2 * i] as number;
    const hi = f[2 * i + 1] as number;
    if ((lo & PTE_P) === 0) {
      if (lo !== 0 || hi !== 0) return `entry ${i}: not present but holds bits`;
      continue;
    }
    const glo = g[2 * i] as number;
    const ghi = g[2 * i + 1] as number;
    if ((glo & PTE_P) === 0) return `entry ${i}: present over a guest entry that is not`;
    if ((lo & PTE_RW) !== 0 && (glo & PTE_RW) === 0) return `entry ${i}: grants write the guest entry refuses`;
    if ((lo & PTE_US) !== 0 && (glo & PTE_US) === 0) return `entry ${i}: grants user access the guest entry refuses`;
    if ((ghi & XD_HI) !== 0 && (hi & XD_HI) === 0) return `entry ${i}: lifts the guest entry's execute-disable`;
    const gframe = entryFrame(glo, ghi);
    const frame = entryFrame(lo, hi);
    const slot = sh.mfn * 512 + i;
    if (sh.level === 1) {
      const type = guest.typeOf(gframe);
      if (type === PHYS_NONE) return `entry ${i}: maps gfn ${gframe}, which has no RAM`;
      if (frame !== placement.mfnOf(gframe)) return `entry ${i}: maps frame ${frame}, not gfn ${gframe}'s own`;
      if (domain.mem.ownerOf(frame) !== domain.id) return `entry ${i}: reaches frame ${frame}, not the domain's`;
      if ((lo & PTE_RW) !== 0) {
        if (type !== PHYS_RAM) return `entry ${i}: writable over ROM`;
        if ((glo & PTE_D) === 0) return `entry ${i}: writable while the guest leaf is clean`;
        if (p.isProtected(gframe)) return `entry ${i}: writable over protected gfn ${gframe}`;
        if (!p.writable.get(gframe)?.has(slot)) return `entry ${i}: a writable leaf missing from the reverse map`;
        writable.set(gframe, (writable.get(gframe) ?? 0) + 1);
      }
    } else if ((lo & SWITCH_BIT) !== 0) {
      if (frame !== gframe) return `entry ${i}: switches to gfn ${frame}, the guest entry names ${gframe}`;
      const type = guest.typeOf(frame);
      if (type === PHYS_NONE) return `entry ${i}: switches to gfn ${frame}, which has no RAM`;
      if (!p.nested.has(tableKey(frame, sh.level - 1))) return `entry ${i}: switches to a table not in nested mode`;
      if (!p.switchSlots.get(tableKey(frame, sh.level - 1))?.has(slot))
        return `entry ${i}: a switching entry not listed`;
    } else {
      const child = p.byMfn.get(frame);
      if (child === undefined) return `entry ${i}: names frame ${frame}, not a shadow table`;
      if (child.level !== sh.level - 1 || child.gfn !== gframe)
        return `entry ${i}: names the shadow of gfn ${child.gfn} level ${child.level}, the guest entry gfn ${gframe}`;
      if (!child.parents.has(slot)) return `entry ${i}: missing from its child's up-pointers`;
    }
  }
  return null;
}

/** A stage-2 leaf as a failure message names it (built only on failure: the checker runs after every exit). */
function leafName(l: Stage2Leaf): string {
  return `stage-2 leaf for gfn ${l.gfn} (level ${l.level}, table ${l.tableMfn}[${l.index}])`;
}

function auditStage2(p: AgilePager): string | null {
  const domain = p.domain;
  const mem = domain.mem;
  const guest = domain.guest;
  const placement = domain.placement;
  const enc = p.enc;
  for (const t of p.table.tables) {
    if (mem.ownerOf(t) !== OWNER_HYPERVISOR) return `stage-2 table frame ${t} is not the hypervisor's`;
  }
  try {
    for (const l of p.table.leaves()) {
      const span = 2 ** (9 * (l.level - 1));
      const mfn = leafFrame(l.lo, l.hi, true, l.level > 1, 12 + 9 * (l.level - 1));
      const last = l.gfn + span - 1;
      if (last >= guest.ramFrames) return `${leafName(l)}: covers gfns beyond RAM`;
      const type = entryType(l.hi);
      const phys = guest.typeOf(l.gfn);
      if (phys === PHYS_NONE) return `${leafName(l)}: maps a frame taken away`;
      if (type !== P2M_RAM_RW && type !== P2M_RAM_RO) return `${leafName(l)}: p2m type ${type}`;
      const w = (l.lo & enc.writeLo) !== 0;
      if (w && phys !== PHYS_RAM) return `${leafName(l)}: writable over ROM`;
      if (w !== (type === P2M_RAM_RW)) return `${leafName(l)}: rights and p2m type disagree`;
      if (w) {
        const prot =
          span === 1
            ? p.isProtected(l.gfn)
            : span === 512
              ? p.protected2m.has(l.gfn / 512)
              : p.protected1g.has(l.gfn / 262144);
        if (prot) return `${leafName(l)}: writable over a protected frame`;
      }
      if (span > 1) {
        if (guest.physmap.anyNotRam(l.gfn, span))
          return `${leafName(l)}: a large leaf over frames that are not all RAM`;
        if (placement.mfnOf(l.gfn) !== mfn || placement.mfnOf(last) !== mfn + span - 1)
          return `${leafName(l)}: a large leaf over frames not contiguous in machine memory`;
        for (const m of [mfn, mfn + span - 1])
          if (mem.ownerOf(m) !== domain.id) return `${leafName(l)}: reaches frame ${m}, not the domain's`;
      } else {
        if (placement.mfnOf(l.gfn) !== mfn) return `${leafName(l)}: maps frame ${mfn}, not the gfn's own`;
        if (mem.ownerOf(mfn) !== domain.id) return `${leafName(l)}: reaches frame ${mfn}, not the domain's`;
      }
    }
  } catch (e) {
    return (e as Error).message;
  }
  return null;
}
