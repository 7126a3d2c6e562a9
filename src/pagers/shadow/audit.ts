/**
 * The shadow isolation checker (Xen's sh_audit_*, run after every exit with
 * `--check`). It does not trust the pager's own reasoning: it walks the
 * shadow tables as the hardware does, from every root in use or pinned, and
 * for every present or magic entry it reaches compares what the hardware (or
 * the fast path, for a magic entry) would let each access kind at each CPL do
 * through *that path* with what the guest's own walk of the same address
 * allows. A shadow l1 reached by several paths is checked on each distinct
 * set of rights above it (paths with equal rights above an entry have equal
 * outcomes below it, given the upper entries, which are checked on every path).
 *
 * What must hold, besides reference counts and the pool bound:
 *  - upper entries: the guest entry at the same place is present, accessed and
 *    free of reserved bits, with the same R/W, U/S and XD, and the child shadow
 *    is the shadow of the table (or splintered superpage) it names;
 *  - a present leaf: the guest walk succeeds with every accessed flag already
 *    set, maps a page at least as large, to the machine frame the P2M gives;
 *    user/supervisor, execute-disable and protection key exactly as the guest
 *    says; writable only if the guest allows it, its dirty flag is set, the
 *    P2M type is ram_rw, the frame is not a write-protected guest table, and
 *    (in log-dirty mode) it is logged dirty;
 *  - a guest-not-present magic entry: the guest walk ends at a not-present l1
 *    entry; an MMIO magic entry: the guest walk succeeds with accessed flags
 *    set, to the frame the entry holds, which is not RAM, with exactly the
 *    rights and key the fast path will compute from the entry and the path's
 *    upper entries (and a dirty flag no more than the guest's: one less only
 *    sends a write to the slow path).
 * An out-of-sync l1's shadow entries follow its snapshot, not its live
 * contents (the guest has not invalidated since), so the guest walk reads the
 * snapshot for such a frame.
 */
import { PERM_D, PERM_PK_SHIFT, PERM_U, PERM_W, PERM_XD } from '../../arch/x86/access.js';
import { PTE_A, PTE_D, PTE_P, PTE_PS, PTE_RW, PTE_US, XD_HI } from '../../arch/x86/bits.js';
import type { Cpu } from '../../arch/x86/cpu.js';
import { entryFrame, leafFrame } from '../../arch/x86/entry.js';
import type { WalkFormat } from '../../arch/x86/modes.js';
import { auditWalkCaches } from '../../arch/x86/psc.js';
import { leafPermission, type PhysicalSpace, vaIndex, WALK_OK, Walker, WalkResult } from '../../arch/x86/walker.js';
import { isMagic, isMmioMagic, mmioMagicGfn } from './magic.js';
import { guestIndex, type Shadow, shadowName } from './types.js';

/** A root the hardware walks or may walk again (a vCPU's, or a pinned top-level shadow). */
export interface AuditRoot {
  readonly guestFmt: WalkFormat;
  readonly hwFmt: WalkFormat;
  /** Guest top-level table frame (unused with guestPdpte). */
  readonly guestRoot: number;
  readonly guestPdpte: Uint32Array | null;
  /** Hardware top-level shadow (unused with hwPdpte). */
  readonly hwRoot: number;
  readonly hwPdpte: Uint32Array | null;
}

/** What the checker reads of the pager and the domain. */
export interface AuditView {
  readonly domainId: number;
  /** Machine frame contents (shadows). */
  shadowFrame(smfn: number): Uint32Array;
  ownerOf(mfn: number): number;
  shadowAt(smfn: number): Shadow | undefined;
  /** Guest-physical memory with out-of-sync frames read as their snapshots. */
  readonly guestView: PhysicalSpace;
  /** Machine frame of a guest frame, and whether it is ordinary writable RAM (-1: not RAM). */
  mfnOf(gfn: number): number;
  isRamRw(gfn: number): boolean;
  /** May a shadow map `gfn` writable (not a write-protected guest table, logged dirty if logging)? */
  writableOk(gfn: number): string | null;
  /**
   * Does the pager's writable reverse map record entry `index` of l1 shadow
   * `smfn` as mapping `gfn` writable? (Revoking write access finds the
   * entries through it, so a writable entry it misses would stay writable.)
   * Absent: the pager keeps no such map.
   */
  recordedWritable?(gfn: number, smfn: number, index: number): boolean;
  /** May a shadow superpage cover guest frames [first, first+count) at all? */
  superpageOk(first: number, count: number): string | null;
  roots(): Iterable<AuditRoot>;
}

const RIGHTS = PTE_RW | PTE_US;
/** Flags of a guest superpage entry that key its splinter (shadow.ts getFl). */
const FL_KEY_LO = 0x1fff;
const FL_KEY_HI = 0x80000000 | (0xf << 27);
const PK_MASK = 0xf << PERM_PK_SHIFT;

/**
 * The hardware's paging-structure caches over the shadows (psc.ts): on every
 * vCPU, each cached upper entry is what the shadows it walks now give
 * (auditWalkCaches), and names a live shadow of the level below, or a frame
 * that is not the guest's (the P2M's, walked with paging off). A stale one
 * would let a freed and reused shadow frame translate for the guest: the
 * pager must flush every vCPU after it unhooks or frees a shadow, as Xen
 * does (shadow/common.c: sh_remove_shadows and shadow_blow_tables end with
 * guest_flush_tlb_mask; shadow_alloc flushes before reusing a freed frame).
 */
export function auditHardwareCaches(cpus: readonly Cpu[], v: AuditView): string | null {
  for (const c of cpus) {
    const p = auditWalkCaches(c.mmu);
    if (p !== null) return `vCPU ${c.index}: ${p}`;
    const upper = c.mmu.psc?.upper;
    if (upper === null || upper === undefined) continue;
    for (const e of upper.entries()) {
      const sh = v.shadowAt(e.next);
      const where = `vCPU ${c.index}: cached level-${e.level} entry names frame ${e.next}`;
      if (sh === undefined && v.ownerOf(e.next) === v.domainId) return `${where}, a guest frame`;
      if (sh !== undefined && sh.level !== e.level - 1) return `${where}, a level-${sh.level} shadow`;
    }
  }
  return null;
}

/** The first violation found, or null. */
export function auditPaths(v: AuditView): string | null {
  const a = new PathAudit(v);
  for (const root of v.roots()) {
    const p = a.root(root);
    if (p !== null) return p;
  }
  return null;
}

class PathAudit {
  private readonly walker = new Walker();
  /** The guest walk of the entry being checked. */
  private readonly w = new WalkResult();
  /** Subtrees already checked: smfn with the rights above it. */
  private readonly seen = new Set<number>();
  private cur!: AuditRoot;

  constructor(private readonly v: AuditView) {}

  root(r: AuditRoot): string | null {
    this.cur = r;
    if (r.hwPdpte === null) {
      const top = this.v.shadowAt(r.hwRoot);
      if (top === undefined) return `root ${r.hwRoot} is not a shadow`;
      return this.table(top, -1, 0, 0, 0);
    }
    for (let i = 0; i < 4; i++) {
      const lo = r.hwPdpte[2 * i] as number;
      if ((lo & PTE_P) === 0) continue;
      const smfn = entryFrame(lo, r.hwPdpte[2 * i + 1] as number);
      const sh = this.v.shadowAt(smfn);
      if (sh === undefined || sh.level !== 2) return `PDPTE register ${i} names mfn ${smfn}, not a shadow PD`;
      if (r.guestPdpte !== null) {
        const glo = r.guestPdpte[2 * i] as number;
        const gfn = entryFrame(glo, r.guestPdpte[2 * i + 1] as number);
        if ((glo & PTE_P) === 0 || gfn !== sh.gfn) return `PDPTE register ${i}: ${shadowName(sh)}, guest says ${gfn}`;
      } else if (sh.gfn !== r.guestRoot || sh.part !== i) {
        return `PDPTE register ${i}: ${shadowName(sh)} for a guest PD at ${r.guestRoot}`;
      }
      const p = this.table(sh, -1, 0, 0, i * 0x40000000);
      if (p !== null) return p;
    }
    return null;
  }

  /** Check shadow `sh` reached with rights (acc, xd) from the entries above, at VA (vaHi, vaLo) of its entry 0. */
  private table(sh: Shadow, acc: number, xd: number, vaHi: number, vaLo: number): string | null {
    const key = sh.smfn * 8 + (acc & RIGHTS) + (xd < 0 ? 1 : 0);
    if (this.seen.has(key)) return null;
    this.seen.add(key);
    const f = this.v.shadowFrame(sh.smfn);
    const mode = this.cur.hwFmt.mode;
    const shift = mode.shift[sh.level] as number;
    for (let i = 0; i < 512; i++) {
      const lo = f[2 * i] as number;
      if ((lo & PTE_P) === 0) continue;
      const hi = f[2 * i + 1] as number;
      // VA of this entry: the index at this level's bits (sign extension does not matter to a walk).
      const eHi = shift >= 32 ? vaHi + i * 2 ** (shift - 32) : vaHi + Math.floor((i * 2 ** shift) / 2 ** 32);
      const eLo = shift >= 32 ? vaLo : (vaLo + ((i * 2 ** shift) % 2 ** 32)) >>> 0;
      const where = `${shadowName(sh)}[${i}] (va 0x${(eHi * 2 ** 32 + eLo).toString(16)})`;
      let p: string | null;
      if (isMagic(lo, hi)) {
        p = sh.level === 1 ? this.magic(acc, xd, lo, hi, eHi, eLo, where) : `${where}: magic entry above l1`;
      } else if (sh.level === 1 || (lo & PTE_PS) !== 0) {
        p = this.leaf(sh, i, acc, xd, lo, hi, eHi, eLo, where);
      } else {
        p = this.upper(sh, i, lo, hi, where);
        if (p === null) {
          const child = this.v.shadowAt(entryFrame(lo, hi)) as Shadow;
          p = this.table(child, acc & lo, xd | hi, eHi, eLo);
        }
      }
      if (p !== null) return p;
    }
    return null;
  }

  /** A non-leaf shadow entry against the guest entry it was derived from. */
  private upper(sh: Shadow, i: number, lo: number, hi: number, where: string): string | null {
    const child = this.v.shadowAt(entryFrame(lo, hi));
    if (child === undefined || child.level !== sh.level - 1) return `${where}: points at no shadow of the level below`;
    const fmt = sh.fmt;
    let glo: number;
    let ghi: number;
    if (sh.fl) {
      glo = sh.flLo;
      ghi = sh.flHi;
      if (!child.fl || child.gfn !== sh.gfn + i * 512) return `${where}: splinter child ${shadowName(child)}`;
    } else {
      const gi = guestIndex(sh, i);
      const g = this.v.guestView.frameForRead(sh.gfn);
      glo = sh.guestWide ? (g[2 * gi] as number) : (g[gi] as number);
      ghi = sh.guestWide ? (g[2 * gi + 1] as number) : 0;
      // In a ROM table the flags never change (semantics 5): propagation takes them as set.
      if ((glo & PTE_P) !== 0 && !this.v.isRamRw(sh.gfn)) glo |= PTE_A | PTE_D;
      const large = ((glo >>> 7) & 1 & (fmt.largeMask >>> sh.level)) !== 0;
      const r = sh.level * 2 + (large ? 1 : 0);
      if ((glo & PTE_P) === 0 || (glo & PTE_A) === 0)
        return `${where}: present, guest entry not present or not accessed`;
      if ((glo & (fmt.rsvdLo[r] as number)) !== 0 || (ghi & (fmt.rsvdHi[r] as number)) !== 0)
        return `${where}: present, guest entry has reserved bits`;
      const half = sh.guestWide ? 0 : i & 1;
      if (large) {
        const shiftG = fmt.leafShift[sh.level] as number;
        const base = leafFrame(glo, ghi, sh.guestWide, true, shiftG) + half * 512;
        // The splinter is keyed by the entry's flags; only a dirty flag set since (by an
        // emulated write's flag update) may differ, and a clean splinter grants less.
        const same = ((child.flLo ^ glo) & FL_KEY_LO & ~PTE_D) === 0 && ((child.flHi ^ ghi) & FL_KEY_HI) === 0;
        if (!child.fl || child.gfn !== base || !same || (child.flLo & ~glo & PTE_D) !== 0)
          return `${where}: guest superpage at gfn ${base}, child is ${shadowName(child)}`;
      } else {
        const table = leafFrame(glo, ghi, sh.guestWide, false, 12);
        if (child.fl || child.gfn !== table || child.fmt !== fmt || child.part !== half)
          return `${where}: guest table at gfn ${table}, child is ${shadowName(child)}`;
      }
    }
    if ((lo & RIGHTS) !== (glo & RIGHTS)) return `${where}: rights 0x${(lo & RIGHTS).toString(16)}, guest's differ`;
    if ((hi & XD_HI) !== (ghi & XD_HI)) return `${where}: execute-disable differs from the guest's`;
    return null;
  }

  /** Walk the guest for the entry's VA into this.w; the walk's status. */
  private guestWalk(vaHi: number, vaLo: number): number {
    const r = this.cur;
    return this.walker.walk(this.v.guestView, r.guestFmt, r.guestRoot, r.guestPdpte, vaHi, vaLo, this.w);
  }

  /**
   * Every entry of the last successful guest walk has its accessed flag set,
   * or lies in a table that discards writes (ROM, semantics 5), so no flag
   * update is skipped.
   */
  private accessed(): boolean {
    const w = this.w;
    for (let k = 0; k < w.n; k++) {
      if ((w.loAt(k) & PTE_A) === 0 && this.v.isRamRw(w.tables[k] as number)) return false;
    }
    return true;
  }

  /** The last guest walk's leaf lies in a table that discards writes: its dirty flag can never be set. */
  private dirtyFixed(): boolean {
    const w = this.w;
    return !this.v.isRamRw(w.tables[w.n - 1] as number);
  }

  private leaf(
    sh: Shadow,
    index: number,
    acc: number,
    xd: number,
    lo: number,
    hi: number,
    vaHi: number,
    vaLo: number,
    where: string,
  ): string | null {
    const v = this.v;
    const hwShift = this.cur.hwFmt.leafShift[sh.level] as number;
    const mfn = leafFrame(lo, hi, true, sh.level > 1, hwShift);
    if (v.ownerOf(mfn) !== v.domainId) return `${where}: maps mfn ${mfn}, not the domain's`;
    const w = this.w;
    if (this.guestWalk(vaHi, vaLo) !== WALK_OK) return `${where}: present, but the guest's walk faults`;
    if (!this.accessed()) return `${where}: present, but the guest's walk would set an accessed flag`;
    if (w.shift < hwShift) return `${where}: a ${2 ** (hwShift - 10)} KiB shadow page inside a smaller guest page`;
    const within = vaIndex(vaHi, vaLo, 12, (1 << (w.shift - 12)) - 1);
    const gfn = w.pfn + within;
    const expect = v.mfnOf(gfn);
    if (expect !== mfn) return `${where}: maps mfn ${mfn}, the guest's gfn ${gfn} is mfn ${expect}`;
    const hwPerm = leafPermission(this.cur.hwFmt, acc & lo, xd | hi, lo, hi);
    const gPerm = w.perm;
    const exact = PERM_U | PERM_XD | PK_MASK;
    if ((hwPerm & exact) !== (gPerm & exact))
      return `${where}: U/XD/key 0x${(hwPerm & exact).toString(16)}, the guest's 0x${(gPerm & exact).toString(16)}`;
    if (sh.level > 1) {
      const p = v.superpageOk(gfn, 2 ** (hwShift - 12));
      if (p !== null) return `${where}: ${p}`;
    }
    if ((hwPerm & PERM_W) === 0) return null;
    if ((gPerm & PERM_W) === 0 || ((gPerm & PERM_D) === 0 && !this.dirtyFixed()))
      return `${where}: writable, the guest's page is read-only or clean`;
    if (sh.level > 1) return null; // superpageOk: all ram_rw, none a shadowed table, not logging
    if (!v.isRamRw(gfn)) return `${where}: writable over gfn ${gfn}, which is not ram_rw`;
    if (v.recordedWritable !== undefined && !v.recordedWritable(gfn, sh.smfn, index))
      return `${where}: writable over gfn ${gfn}, missing from the writable reverse map`;
    const p = v.writableOk(gfn);
    return p === null ? null : `${where}: ${p}`;
  }

  private magic(acc: number, xd: number, lo: number, hi: number, vaHi: number, vaLo: number, where: string) {
    const w = this.w;
    const r = this.guestWalk(vaHi, vaLo);
    if (!isMmioMagic(lo, hi)) {
      return r === 0 && w.level === 1 ? null : `${where}: guest-not-present entry, the guest's l1 entry is present`;
    }
    if (r !== WALK_OK) return `${where}: MMIO entry, but the guest's walk faults`;
    if (!this.accessed()) return `${where}: MMIO entry, but the guest's walk would set an accessed flag`;
    const gfn = w.pfn + vaIndex(vaHi, vaLo, 12, (1 << (w.shift - 12)) - 1);
    const held = mmioMagicGfn(lo, hi);
    if (held !== gfn) return `${where}: MMIO entry for gfn ${held}, the guest's walk reaches ${gfn}`;
    if (this.v.mfnOf(gfn) >= 0) return `${where}: MMIO entry over RAM gfn ${gfn}`;
    // What the fast path will decide from this entry and the path above it.
    // A dirty flag the entry lacks only sends writes to the slow path (which sets the guest's).
    const fast = leafPermission(this.cur.guestFmt, acc & lo, xd | hi, lo, hi);
    const m = PERM_W | PERM_U | PERM_XD | PK_MASK;
    if ((fast & m) !== (w.perm & m) || ((fast & ~w.perm & PERM_D) !== 0 && !this.dirtyFixed()))
      return `${where}: the fast path grants 0x${(fast & m).toString(16)}, the guest 0x${(w.perm & m).toString(16)}`;
    return null;
  }
}
