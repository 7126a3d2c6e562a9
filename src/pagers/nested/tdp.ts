/**
 * The stage-2 table (KVM's "TDP" page table, Xen's p2m-ept.c / p2m-pt.c
 * under HAP): the domain's P2M as EPT or NPT tables in hypervisor-owned
 * machine frames, which the CPU walks for every guest-physical address.
 *
 * Populated lazily, as KVM's TDP MMU does (kvm_tdp_mmu_map on an EPT
 * violation or #NPF): the table starts as one empty root, and a stage-2
 * fault on a gfn that has RAM (or ROM) behind it maps that gfn — with a
 * 1 GiB or 2 MiB leaf when the whole aligned range is RAM, placed
 * contiguously in machine memory, and no table lies in the way there
 * (switch `large`), else a 4 KiB leaf. A sparse 1 TiB guest costs only
 * what it touches.
 *
 * Rules this module keeps (audit.ts checks them from the outside):
 *  1. A leaf maps gfn g to the domain's own frame placement.mfnOf(g), for
 *     every gfn it covers, and only gfns below the end of RAM whose physmap
 *     type is ram or rom; writable only for ram.
 *  2. MMIO entries (entries.ts) sit only at level 1, for gfns with no RAM.
 *  3. Every table frame is the hypervisor's and is listed in `tables`.
 *  4. Only this module writes stage-2 entries (set()); zap() removes them.
 *  5. Log-dirty (Xen's HAP way, hap.c): a type change of the whole table
 *     (enable, clean, disable: p2m_change_entry_type_global) only marks the
 *     root's entries for recalculation (markAll: ept_change_entry_type_global,
 *     p2m_pt_change_entry_type_global); the next access through a marked
 *     entry faults, and resolve() recalculates lazily along that gfn's path
 *     (resolve_misconfig in p2m-ept.c, do_recalc in p2m-pt.c), pushing the
 *     mark one level down at each step. ram_rw and ram_logdirty are the
 *     changeable types; a recalculated leaf is ram_logdirty while log-dirty
 *     mode is on, else ram_rw. A type change of one 4 KiB page inside a
 *     superpage splits it whole down to 4 KiB leaves first
 *     (p2m_change_type_one -> ept_set_entry -> ept_split_super_page).
 */
import { entryFrame, leafFrame } from '../../arch/x86/entry.js';
import type { WalkFormat } from '../../arch/x86/modes.js';
import { type MachineMemory, OWNER_HYPERVISOR } from '../../machine/memory.js';
import { entryType, P2M_LOGDIRTY, P2M_RAM_RW, type Stage2Entries } from './entries.js';

/** What the table needs to know about the domain. */
export interface Stage2Source {
  readonly ramFrames: number;
  /** Machine frame of RAM gfn `gfn`. */
  mfnOf(gfn: number): number;
  /** Are the frames [first, first+count) all ordinary RAM, contiguous and aligned in machine memory? */
  contiguousRam(first: number, count: number): boolean;
}

/** A present leaf, as leaves() reports it. */
export interface Stage2Leaf {
  readonly gfn: number;
  readonly level: number;
  readonly lo: number;
  readonly hi: number;
  readonly tableMfn: number;
  readonly index: number;
  /** The leaf or an entry above it is marked for recalculation: the hardware cannot use it as it stands. */
  readonly pending: boolean;
}

/** A present leaf found by leafOf(). */
export interface Stage2LeafAt {
  tableMfn: number;
  index: number;
  level: number;
  lo: number;
  hi: number;
}

export class Stage2Table {
  readonly rootMfn: number;
  /** Every table frame (the root first). */
  readonly tables = new Set<number>();
  /** Counters: leaves made (by level 1, 2, 3), MMIO entries made, entries zapped. */
  leaves4k = 0;
  leaves2m = 0;
  leaves1g = 0;
  mmioEntries = 0;
  zapped = 0;
  /** Present leaves now (gauge). */
  present = 0;
  /** Log-dirty mode, as recalculation sees it (Xen's p2m->global_logdirty), and whether it is PML's. */
  globalLogdirty = false;
  pml = false;
  /** Counters: entries marked for recalculation, entries recalculated, superpages split, leaves made by splits. */
  recalcMarked = 0;
  recalcEntries = 0;
  splits = 0;

  constructor(
    private readonly mem: MachineMemory,
    readonly fmt: WalkFormat,
    private readonly enc: Stage2Entries,
    private readonly src: Stage2Source,
    private readonly large: boolean,
  ) {
    this.rootMfn = this.newTable();
  }

  private newTable(): number {
    const mfn = this.mem.alloc(OWNER_HYPERVISOR);
    this.tables.add(mfn);
    return mfn;
  }

  private index(gfn: number, level: number): number {
    return Math.floor(gfn / 2 ** (9 * (level - 1))) % 512;
  }

  /** Rule 4: the one writer of stage-2 entries. */
  private set(tableMfn: number, idx: number, e: readonly [number, number]): void {
    const f = this.mem.write(tableMfn);
    f[2 * idx] = e[0];
    f[2 * idx + 1] = e[1];
  }

  private isLeaf(lo: number, level: number): boolean {
    return level === 1 || ((lo >>> this.fmt.psShift) & 1) !== 0;
  }

  /**
   * Walk down to `gfn`'s entry at level `stop` (1, or higher for a large
   * leaf), making missing tables on the way. Returns [table, index], or null
   * when a present leaf lies above `stop` (the gfn is mapped already).
   */
  private descend(gfn: number, stop: number): [number, number] | null {
    const present = this.fmt.presentMask;
    let table = this.rootMfn;
    for (let level = this.fmt.mode.topLevel; ; level--) {
      const idx = this.index(gfn, level);
      if (level === stop) return [table, idx];
      const f = this.mem.read(table);
      const lo = f[2 * idx] as number;
      if ((lo & present) !== 0) {
        if (this.isLeaf(lo, level)) return null;
        table = entryFrame(lo, f[2 * idx + 1] as number);
        continue;
      }
      const next = this.newTable();
      this.set(table, idx, this.enc.table(next));
      table = next;
    }
  }

  /** Is the entry for `gfn` at `level` empty, with no table below it on the way down? */
  private emptyAt(gfn: number, level: number): boolean {
    const present = this.fmt.presentMask;
    let table = this.rootMfn;
    for (let l = this.fmt.mode.topLevel; l >= level; l--) {
      const f = this.mem.read(table);
      const idx = this.index(gfn, l);
      const lo = f[2 * idx] as number;
      if ((lo & present) === 0) return true;
      if (l === level || this.isLeaf(lo, l)) return false;
      table = entryFrame(lo, f[2 * idx + 1] as number);
    }
    return false;
  }

  /**
   * Map RAM or ROM gfn `gfn` (p2m type `type`) with the largest leaf rule 1
   * and the `large` switch allow. Returns the level of the leaf made, or 0 if
   * a leaf was there already.
   */
  map(gfn: number, type: number): number {
    let level = 1;
    if (this.large && (type === P2M_RAM_RW || type === P2M_LOGDIRTY)) {
      for (const l of [3, 2]) {
        const span = 2 ** (9 * (l - 1));
        const first = gfn - (gfn % span);
        if (first + span <= this.src.ramFrames && this.src.contiguousRam(first, span) && this.emptyAt(gfn, l)) {
          level = l;
          break;
        }
      }
    }
    const span = 2 ** (9 * (level - 1));
    const first = gfn - (gfn % span);
    const at = this.descend(gfn, level);
    if (at === null) return 0;
    const f = this.mem.read(at[0]);
    if (((f[2 * at[1]] as number) & this.fmt.presentMask) !== 0) return 0;
    this.set(at[0], at[1], this.enc.leaf(this.src.mfnOf(first), level, type, this.pml));
    this.present++;
    if (level === 1) this.leaves4k++;
    else if (level === 2) this.leaves2m++;
    else this.leaves1g++;
    return level;
  }

  /** Install the MMIO entry for `gfn` (rule 2); false if an entry is there already. */
  mapMmio(gfn: number): boolean {
    const at = this.descend(gfn, 1);
    if (at === null) return false;
    const f = this.mem.read(at[0]);
    if (((f[2 * at[1]] as number) & this.fmt.presentMask) !== 0) return false;
    this.set(at[0], at[1], this.enc.mmio);
    this.present++;
    this.mmioEntries++;
    return true;
  }

  /**
   * Remove every leaf and MMIO entry that covers any gfn of [first,
   * first+count) — a large leaf that covers part of the range goes whole, to
   * be made again, smaller, on the next fault. Tables stay. Returns the
   * number of entries removed.
   */
  zap(first: number, count: number): number {
    const n = this.zapIn(this.rootMfn, this.fmt.mode.topLevel, 0, first, first + count);
    this.zapped += n;
    this.present -= n;
    return n;
  }

  private zapIn(table: number, level: number, base: number, first: number, end: number): number {
    const span = 2 ** (9 * (level - 1));
    const f = this.mem.read(table);
    const lo0 = Math.max(0, Math.floor((first - base) / span));
    const hi0 = Math.min(511, Math.floor((end - 1 - base) / span));
    let n = 0;
    for (let i = lo0; i <= hi0; i++) {
      const lo = f[2 * i] as number;
      if ((lo & this.fmt.presentMask) === 0) continue;
      if (this.isLeaf(lo, level)) {
        this.set(table, i, [0, 0]);
        n++;
      } else {
        n += this.zapIn(entryFrame(lo, f[2 * i + 1] as number), level - 1, base + i * span, first, end);
      }
    }
    return n;
  }

  /** Is (lo) the MMIO entry? */
  private isMmio(lo: number, hi: number): boolean {
    return lo === this.enc.mmio[0] && hi === this.enc.mmio[1];
  }

  /**
   * Rule 5: mark every present entry of the root for recalculation (Xen's
   * ept_change_entry_type_global / p2m_pt_change_entry_type_global). True if
   * any entry was marked: the caller then flushes what the TLBs hold.
   */
  markAll(): boolean {
    return this.markTable(this.rootMfn, this.fmt.mode.topLevel) > 0;
  }

  /** Mark the present entries of one table not marked yet (ept_invalidate_emt_subtree); MMIO entries stay as they are. */
  private markTable(table: number, level: number): number {
    const f = this.mem.read(table);
    let n = 0;
    for (let i = 0; i < 512; i++) {
      const lo = f[2 * i] as number;
      const hi = f[2 * i + 1] as number;
      if ((lo & this.fmt.presentMask) === 0 || this.enc.needsRecalc(lo)) continue;
      if (level === 1 && this.isMmio(lo, hi)) continue;
      this.set(table, i, this.enc.markRecalc(lo, hi));
      n++;
    }
    this.recalcMarked += n;
    return n;
  }

  /** A marked leaf recalculated: a changeable type becomes ram_logdirty in log-dirty mode, else ram_rw (p2m_recalc_type). */
  private recalcLeaf(lo: number, hi: number, level: number): readonly [number, number] {
    let type = entryType(hi);
    if (type === P2M_RAM_RW || type === P2M_LOGDIRTY) type = this.globalLogdirty ? P2M_LOGDIRTY : P2M_RAM_RW;
    const mfn = leafFrame(lo, hi, true, level > 1, 12 + 9 * (level - 1));
    this.recalcEntries++;
    return this.enc.leaf(mfn, level, type, this.pml);
  }

  /**
   * Rule 5: resolve what is marked on `gfn`'s path (resolve_misconfig,
   * do_recalc): a marked table entry passes its mark to every entry of the
   * table below and is cleared; a marked superpage is recalculated; in a
   * table of 4 KiB leaves every marked entry is recalculated at once, as Xen
   * does. Returns the number of entries changed (0: nothing was pending, the
   * fault has another cause).
   */
  resolve(gfn: number): number {
    const present = this.fmt.presentMask;
    let table = this.rootMfn;
    let n = 0;
    for (let level = this.fmt.mode.topLevel; ; level--) {
      const f = this.mem.read(table);
      const idx = this.index(gfn, level);
      const lo = f[2 * idx] as number;
      const hi = f[2 * idx + 1] as number;
      if ((lo & present) === 0) return n;
      const leaf = this.isLeaf(lo, level);
      if (!this.enc.needsRecalc(lo) || (leaf && level === 1 && this.isMmio(lo, hi))) {
        if (leaf) return n;
        table = entryFrame(lo, hi);
        continue;
      }
      if (!leaf) {
        const child = entryFrame(lo, hi);
        this.markTable(child, level - 1);
        this.set(table, idx, this.enc.table(child));
        n++;
        table = child;
        continue;
      }
      if (level > 1) {
        this.set(table, idx, this.recalcLeaf(lo, hi, level));
        return n + 1;
      }
      for (let i = 0; i < 512; i++) {
        const l = f[2 * i] as number;
        const h = f[2 * i + 1] as number;
        if ((l & present) === 0 || !this.enc.needsRecalc(l) || this.isMmio(l, h)) continue;
        this.set(table, i, this.recalcLeaf(l, h, 1));
        n++;
      }
      return n;
    }
  }

  /** The present leaf that maps `gfn` (null: none, or the MMIO entry). */
  leafOf(gfn: number): Stage2LeafAt | null {
    const present = this.fmt.presentMask;
    let table = this.rootMfn;
    for (let level = this.fmt.mode.topLevel; ; level--) {
      const f = this.mem.read(table);
      const idx = this.index(gfn, level);
      const lo = f[2 * idx] as number;
      const hi = f[2 * idx + 1] as number;
      if ((lo & present) === 0) return null;
      if (this.isLeaf(lo, level)) {
        if (level === 1 && this.isMmio(lo, hi)) return null;
        return { tableMfn: table, index: idx, level, lo, hi };
      }
      table = entryFrame(lo, hi);
    }
  }

  /**
   * Change the p2m type of the one page `gfn` from `from` to `to`
   * (p2m_change_type_one): pending recalculation on its path first, then a
   * superpage over it is split down to 4 KiB leaves of its own type
   * (ept_split_super_page, which splits every piece, not only the one on
   * the path). False if `gfn` has no leaf of type `from`.
   */
  changeTypeOne(gfn: number, from: number, to: number): boolean {
    this.resolve(gfn);
    let at = this.leafOf(gfn);
    if (at === null || entryType(at.hi) !== from) return false;
    if (at.level > 1) {
      this.set(at.tableMfn, at.index, this.enc.table(this.split(at.lo, at.hi, at.level)));
      this.splits++;
      this.present += 512 ** (at.level - 1) - 1;
      at = this.leafOf(gfn) as Stage2LeafAt;
    }
    const mfn = leafFrame(at.lo, at.hi, true, false, 12);
    this.set(at.tableMfn, at.index, this.enc.leaf(mfn, 1, to, this.pml));
    return true;
  }

  /** A new table holding superpage (lo, hi) of `level` as 512 leaves one level down, themselves split to 4 KiB. */
  private split(lo: number, hi: number, level: number): number {
    const t = this.newTable();
    const type = entryType(hi);
    const mfn = leafFrame(lo, hi, true, true, 12 + 9 * (level - 1));
    const span = 2 ** (9 * (level - 2));
    for (let i = 0; i < 512; i++) {
      const piece = this.enc.leaf(mfn + i * span, level - 1, type, this.pml);
      this.set(t, i, level - 1 > 1 ? this.enc.table(this.split(piece[0], piece[1], level - 1)) : piece);
    }
    return t;
  }

  /** Every present leaf and MMIO entry (for the isolation checker). */
  leaves(): Stage2Leaf[] {
    const out: Stage2Leaf[] = [];
    this.leavesIn(this.rootMfn, this.fmt.mode.topLevel, 0, new Set(), false, out);
    return out;
  }

  // An array filled by plain recursion, not nested generators: the isolation checkers list the leaves after every exit.
  private leavesIn(
    table: number,
    level: number,
    base: number,
    seen: Set<number>,
    pending: boolean,
    out: Stage2Leaf[],
  ): void {
    if (seen.has(table)) throw new Error(`stage-2 table ${table} reached twice`);
    if (!this.tables.has(table)) throw new Error(`stage-2 entry names frame ${table}, not a table of the pager's`);
    seen.add(table);
    const span = 2 ** (9 * (level - 1));
    const f = this.mem.read(table);
    for (let i = 0; i < 512; i++) {
      const lo = f[2 * i] as number;
      const hi = f[2 * i + 1] as number;
      if ((lo & this.fmt.presentMask) === 0) {
        if (lo !== 0 || hi !== 0) throw new Error(`stage-2 table ${table}[${i}]: a non-present entry holds bits`);
        continue;
      }
      const marked = pending || (this.enc.needsRecalc(lo) && !(level === 1 && this.isMmio(lo, hi)));
      if (this.isLeaf(lo, level))
        out.push({ gfn: base + i * span, level, lo, hi, tableMfn: table, index: i, pending: marked });
      else this.leavesIn(entryFrame(lo, hi), level - 1, base + i * span, seen, marked, out);
    }
  }
}
