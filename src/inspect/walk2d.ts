/**
 * The 2-D walk shown as the grid it is (issue 11): guest levels down, stage-2
 * levels across. Each guest paging-structure reference and the final
 * guest-physical address is translated by a stage-2 walk (a row); then the
 * guest entry itself is read (the last column). Every cell is one memory
 * reference, numbered in the order the hardware makes them, or says which
 * cache served it instead (psc.ts): a combined upper-cache entry (the guest
 * walk started below it, and it gave the next table's host frame), the
 * guest-physical TLB, or a stage-2 upper-cache entry.
 *
 * walk2d() reads what a finished walk left in its WalkResult (the one
 * walker's record); gridOf() is used by `umbra translate --nested` on an
 * image placed behind a stage 2 (nestedImage) and by `umbra exec
 * --trace-walks` on the CPU's own walks.
 */
import { checkAccess } from '../arch/x86/access.js';
import type { AccessKind } from '../arch/x86/bits.js';
import type { Mmu } from '../arch/x86/mmu.js';
import { ENTRY_EPT, LEVEL_NAMES, type WalkFormat } from '../arch/x86/modes.js';
import { WalkCaches } from '../arch/x86/psc.js';
import {
  type PhysicalSpace,
  type Stage2,
  VIA_NTLB,
  VIA_PSC,
  WALK_OK,
  WALK_STAGE2,
  Walker,
  WalkResult,
} from '../arch/x86/walker.js';
import { Domain } from '../hypervisor/domain.js';
import { frameAt } from '../machine/memory.js';
import type { LayoutKind } from '../machine/placement.js';
import { eptEntries, NPT_ENTRIES, P2M_RAM_RW, stage2Format } from '../pagers/nested/entries.js';
import type { NestedSwitches } from '../pagers/nested/options.js';
import { Stage2Table } from '../pagers/nested/tdp.js';
import type { VcpuView } from './context.js';
import { hex16, hx } from './format.js';
import type { GuestImage } from './image.js';
import type { Root } from './tree.js';

/** One memory reference, or a cached stand-in for it. */
export interface Cell {
  /** 1-based order among the references read from memory; 0 when a cache served it or the walk never got there. */
  readonly ref: number;
  /**
   * What served it instead (the grid's legend, LEGEND): '' (memory, or a
   * cell covered by the one to its left), 'gPSC', 's2PSC', 'NTLB', 'leaf',
   * 'reg', 'x' (not reached).
   */
  readonly by: string;
  /** Where it was read and what it held (references read from memory only). */
  readonly text: string;
}

export interface GridRow {
  /** 'PML4E' .. 'PTE' for a guest entry, 'page' for the final translation. */
  readonly label: string;
  /** The guest-physical address translated in this row. */
  readonly gpa: string;
  /** Stage-2 levels, top first. */
  readonly stage2: readonly Cell[];
  /** The guest entry (null on the final row). */
  readonly guest: Cell | null;
}

export interface Grid {
  readonly guestFmt: WalkFormat;
  readonly stage2Fmt: WalkFormat;
  readonly rows: readonly GridRow[];
  /** References read from memory. */
  readonly refs: number;
  /** Guest levels above the first row, served by a combined paging-structure-cache entry (0: none). */
  readonly cachedLevel: number;
}

const NOT_REACHED: Cell = { ref: 0, by: 'x', text: '' };

/** What the grid's cells say. */
export const LEGEND =
  "numbers: memory references in order; gPSC: a guest paging-structure-cache entry (combined: it holds the next guest table's host frame); s2PSC: a stage-2 one; NTLB: the guest-physical TLB; leaf: a stage-2 leaf above ended the walk; '.': covered by the cell to its left; reg: a PDPTE register; x: not reached";

function entryText(fmt: WalkFormat, res: WalkResult, k: number): string {
  const lo = res.loAt(k);
  const hi = res.hiAt(k);
  const v = fmt.mode.wide ? `0x${hex16(hi, lo)}` : `0x${hex16(0, lo).slice(8)}`;
  return `${hx((res.tables[k] as number) * 4096)}[${res.indexAt(k)}] = ${v}`;
}

/**
 * The grid of a two-stage walk `res` (walked with a stage 2) and, if it
 * succeeded and was translated, its final stage-2 walk (res.final).
 */
export function gridOf(res: WalkResult, stage2Fmt: WalkFormat, withFinal: boolean): Grid {
  const fmt = res.fmt as WalkFormat;
  const names = LEVEL_NAMES[fmt.mode.name];
  const s2top = stage2Fmt.mode.topLevel;
  let refs = 0;
  const rows: GridRow[] = [];
  const s2cells = (sub: WalkResult | null, via: number): Cell[] => {
    const cells: Cell[] = [];
    for (let level = s2top; level >= 1; level--) {
      if (sub === null) {
        cells.push(NOT_REACHED);
        continue;
      }
      if (via === VIA_PSC) {
        cells.push({ ref: 0, by: level === s2top ? 'gPSC' : '', text: '' });
        continue;
      }
      if (via === VIA_NTLB) {
        cells.push({ ref: 0, by: level === s2top ? 'NTLB' : '', text: '' });
        continue;
      }
      const k = sub.top - level;
      if (k < 0) cells.push({ ref: 0, by: 's2PSC', text: '' });
      else if (k < sub.n) cells.push({ ref: ++refs, by: '', text: entryText(stage2Fmt, sub, k) });
      else cells.push({ ref: 0, by: sub.status === WALK_OK ? 'leaf' : 'x', text: '' });
    }
    return cells;
  };
  // Guest levels the walk skipped: a combined cache entry stood for them.
  for (let level = fmt.mode.topLevel; level > res.top; level--) {
    if (fmt.mode.pdpteRegisters && level === 3) {
      rows.push({
        label: names[level] as string,
        gpa: '(PDPTE register)',
        stage2: s2cells(null, 0).map(() => ({ ref: 0, by: 'reg', text: '' })),
        guest: { ref: 0, by: 'reg', text: `register ${res.pdpteIndex}` },
      });
      continue;
    }
    rows.push({
      label: names[level] as string,
      gpa: '',
      stage2: s2cells(null, 0).map(() => ({ ref: 0, by: '', text: '' })),
      guest: { ref: 0, by: 'gPSC', text: '' },
    });
  }
  for (let k = 0; k < res.n; k++) {
    const level = res.levelAt(k);
    const sub = res.sub(k);
    const via = res.via[k] as number;
    const stage2 = s2cells(sub, via);
    const gpa = hx((res.tables[k] as number) * 4096 + res.indexAt(k) * (fmt.mode.wide ? 8 : 4));
    const guest: Cell = { ref: ++refs, by: '', text: entryText(fmt, res, k) };
    rows.push({ label: names[level] as string, gpa, stage2, guest });
  }
  if (res.n === 0 || res.status === -2) {
    // A stage-2 fault on a table reference: the sub-walk of step n that failed.
    if (res.status === -2 && res.stage2Final === false) {
      const sub = res.sub(res.n);
      rows.push({
        label: names[res.level] as string,
        gpa: hx(res.stage2Gpa),
        stage2: s2cells(sub, 0),
        guest: NOT_REACHED,
      });
    }
  }
  if (withFinal && res.final !== null) {
    const within = ((res.vaLo >>> 12) | (res.vaHi << 20)) & ((1 << (res.shift - 12)) - 1);
    const gpa = hx((res.pfn + within) * 4096 + (res.vaLo & 0xfff));
    rows.push({ label: 'page', gpa, stage2: s2cells(res.final, res.finalVia), guest: null });
  }
  return { guestFmt: fmt, stage2Fmt, rows, refs, cachedLevel: res.cachedLevel };
}

/** The grid as text: a table of cells, then each reference with where it was read and what it held. */
export function renderGrid(g: Grid, stage2Name: string): string {
  const s2names = LEVEL_NAMES[g.stage2Fmt.mode.name];
  const top = g.stage2Fmt.mode.topLevel;
  const head = ['', 'gPA'];
  for (let l = top; l >= 1; l--) head.push(`${stage2Name} ${s2names[l]}`);
  head.push('guest entry');
  const cell = (c: Cell | null): string => (c === null ? '' : c.ref > 0 ? String(c.ref) : c.by === '' ? '.' : c.by);
  const table = [head, ...g.rows.map((r) => [r.label, r.gpa, ...r.stage2.map(cell), cell(r.guest)])];
  const widths = head.map((_, i) => Math.max(...table.map((row) => (row[i] as string).length)));
  let out = '';
  for (const row of table) {
    out += `  ${row
      .map((c, i) => (i < 2 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number)))
      .join('  ')
      .trimEnd()}\n`;
  }
  out += `  ${g.refs} memory references`;
  const served = g.rows.flatMap((r) => [...r.stage2, ...(r.guest === null ? [] : [r.guest])]);
  const n = (by: string): number => served.filter((c) => c.by === by).length;
  const cached: string[] = [];
  if (g.cachedLevel > 0)
    cached.push(`the guest walk started below a cached ${LEVEL_NAMES[g.guestFmt.mode.name][g.cachedLevel]}`);
  if (n('NTLB') > 0) cached.push(`${n('NTLB')} stage-2 walk(s) served by the guest-physical TLB`);
  const s2psc = g.rows.filter((r) => r.stage2.some((c) => c.by === 's2PSC')).length;
  if (s2psc > 0) cached.push(`${s2psc} stage-2 walk(s) started below a cached stage-2 entry`);
  out += cached.length > 0 ? `; ${cached.join('; ')}\n` : '\n';
  for (const r of g.rows) {
    for (const [i, c] of r.stage2.entries()) {
      if (c.ref > 0) out += `  ${String(c.ref).padStart(2)}  ${stage2Name} ${s2names[top - i]} ${c.text}\n`;
    }
    if (r.guest !== null && r.guest.ref > 0)
      out += `  ${String(r.guest.ref).padStart(2)}  ${r.label} ${r.guest.text}\n`;
  }
  return out;
}

/** The grid's legend, as the last line of a shown walk. */
export function legendLine(): string {
  return `  key: ${LEGEND}\n`;
}

/** How `umbra translate --nested` places an image behind a stage 2. */
export interface NestedImageOptions {
  /** The nested pager's switches (format, levels, A/D, superpages, caches). */
  readonly sw: NestedSwitches;
  readonly layout: LayoutKind;
  readonly seed: number;
  /** Walk the address once first, so the caches are warm (the shown walk is one after a TLB miss). */
  readonly warm: boolean;
}

export interface NestedTranslation {
  readonly text: string;
  /** References the shown walk read (the walker's own count). */
  readonly refs: number;
}

/**
 * An image's guest-physical memory placed in machine memory by a layout
 * (identity, or a seeded scatter), behind a stage 2 built the nested
 * pager's way (tdp.ts: filled in on each stage-2 fault of a walk, superpages
 * where the layout allows): what `umbra translate --nested` and the walk
 * benchmark (bench/walks.ts) walk.
 */
export class NestedImage {
  readonly stage2: Stage2;
  readonly space: PhysicalSpace;
  readonly walker = new Walker();
  private readonly table: Stage2Table;

  constructor(
    private readonly image: GuestImage,
    readonly sw: NestedSwitches,
    layout: LayoutKind,
    seed: number,
  ) {
    const mem = image.memory;
    let ramFrames = 0;
    for (const l of image.loads) ramFrames = Math.max(ramFrames, Math.ceil((l.paddr + l.memsz) / 4096));
    const domain = new Domain({ ramBytes: ramFrames * 4096, layout, seed });
    const placement = domain.placement;
    const s2fmt = stage2Format(sw.kind, sw.levels, sw.ad);
    const allRam = (first: number, count: number): boolean => {
      for (let g = first; g < first + count; g++) if (!mem.isRam(g)) return false;
      return true;
    };
    const table = new Stage2Table(
      domain.mem,
      s2fmt,
      sw.kind === 'ept' ? eptEntries(sw.ad) : NPT_ENTRIES,
      {
        ramFrames,
        mfnOf: (gfn) => placement.mfnOf(gfn),
        contiguousRam: (first, count) => layout === 'identity' && allRam(first, count),
      },
      sw.large,
    );
    this.table = table;
    const ALL_ONES = new Uint32Array(1024).fill(0xffffffff);
    // Machine memory as the walk sees it: stage-2 tables, and the image's frames where the layout put them.
    this.space = {
      frameForRead(mfn) {
        if (table.tables.has(mfn)) return domain.mem.read(mfn);
        const gfn = placement.gfnOf(mfn);
        return gfn < 0 ? ALL_ONES : mem.frameForRead(gfn);
      },
      locate(mfn) {
        return frameAt(this.frameForRead(mfn));
      },
    };
    this.stage2 = { fmt: s2fmt, rootPfn: table.rootMfn };
  }

  /**
   * One 2-D walk of `va` into `res` to its end, stage 2 filled in on its
   * faults, the final translation only if the guest's rights (`ctl`, PKRU 0)
   * allow the access; the caches used and filled. Returns null, or why the
   * walk stopped short of a host-physical address.
   */
  walk(
    fmt: WalkFormat,
    root: Root,
    vaHi: number,
    vaLo: number,
    access: AccessKind,
    cpl: number,
    ctl: number,
    res: WalkResult,
    caches: WalkCaches | null,
    pcid: number,
  ): string | null {
    const walker = this.walker;
    const stage2 = this.stage2;
    const space = this.space;
    if (caches !== null) caches.pcid = pcid;
    for (let tries = 0; tries < 64; tries++) {
      const r = walker.walk(space, fmt, root.pfn, root.pdpte, vaHi, vaLo, res, stage2, caches);
      if (r === WALK_OK) {
        const error = checkAccess(res.perm, access, cpl, ctl, 0);
        if (error !== 0) return `the guest refuses the access (#PF, error code ${hx(error)}): no final translation`;
        const mfn = walker.translateFinal(space, stage2, res, vaHi, vaLo, access, caches);
        if (mfn >= 0) {
          if (caches?.upper) walker.fillCaches(res, caches.upper, pcid);
          return null;
        }
      } else if (r !== WALK_STAGE2) {
        return `the guest walk faults at its ${LEVEL_NAMES[fmt.mode.name][res.level]} (#PF)`;
      }
      const gfn = Math.floor(res.stage2Gpa / 4096);
      if (!this.image.memory.isRam(gfn) || this.table.map(gfn, P2M_RAM_RW) === 0)
        return `guest-physical ${hx(res.stage2Gpa)} is not RAM in the image: a stage-2 fault the pager would emulate`;
    }
    throw new Walk2dError(`0x${hex16(vaHi, vaLo)}: the 2-D walk did not settle`);
  }
}

/**
 * One linear address of an image's vCPU through a 2-D walk (NestedImage):
 * walked once to fill stage 2 in, then shown from cold caches (or warm
 * ones, `warm`).
 */
export function translateNested(
  view: VcpuView,
  vaHi: number,
  vaLo: number,
  access: AccessKind,
  cpl: number,
  opts: NestedImageOptions,
): NestedTranslation {
  const fmt = view.fmt;
  const root = view.root;
  const va = `0x${hex16(vaHi, vaLo)}`;
  if (fmt === null || root === null) throw new Walk2dError('paging is off: there is no guest walk to show');
  const sw = opts.sw;
  const img = new NestedImage(view.image, sw, opts.layout, opts.seed);
  const ctl = view.cpu.ctl;
  const pcid = view.cpu.pcid;
  img.walk(fmt, root, vaHi, vaLo, access, cpl, ctl, new WalkResult(), null, pcid);
  const caches = sw.pwc === null ? null : new WalkCaches(sw.pwc);
  const res = new WalkResult();
  if (opts.warm) img.walk(fmt, root, vaHi, vaLo, access, cpl, ctl, res, caches, pcid);
  const before = img.walker.entryReads;
  const stop = img.walk(fmt, root, vaHi, vaLo, access, cpl, ctl, res, caches, pcid);
  const refs = img.walker.entryReads - before;
  const s2fmt = img.stage2.fmt;
  const grid = gridOf(res, s2fmt, stop === null);
  const s2name = sw.kind === 'ept' ? 'EPT' : 'nPT';
  let text = `${va}, ${['read', 'write', 'instruction fetch'][access]} at CPL ${cpl}: ${fmt.mode.name} guest (CR3 ${hx(root.cr3)}) on ${sw.levels}-level ${sw.kind.toUpperCase()}, ${opts.layout} placement${opts.layout === 'scatter' ? ` (seed ${opts.seed})` : ''}, ${sw.pwc === null ? 'no paging-structure caches' : `${opts.warm ? 'warm' : 'cold'} paging-structure caches`}\n`;
  text += renderGrid(grid, s2name) + legendLine();
  if (stop !== null) text += `  ${stop}\n`;
  else {
    const fin = res.final as WalkResult;
    const within = ((vaLo >>> 12) | (vaHi << 20)) & ((1 << (res.shift - 12)) - 1);
    const gpa = (res.pfn + within) * 4096 + (vaLo & 0xfff);
    const hpa = (fin.pfn + (Math.floor(gpa / 4096) & ((1 << (fin.shift - 12)) - 1))) * 4096 + (vaLo & 0xfff);
    text += `  guest-physical ${hx(gpa)} -> host-physical ${hx(hpa)}\n`;
  }
  return { text, refs };
}

/** A request `translateNested` cannot show (one line, for the CLI). */
export class Walk2dError extends Error {}

/**
 * One hardware walk as `umbra exec --trace-walks` prints it: a header line,
 * then under nested paging the grid (guest levels down, stage-2 levels
 * across), else one line per guest level (its reference, or the cache that
 * stood for it).
 */
export function traceWalk(
  mmu: Mmu,
  index: number,
  vaHi: number,
  vaLo: number,
  access: number,
  outcome: string,
): string {
  const res = mmu.walk;
  const fmt = res.fmt as WalkFormat;
  const head = `vCPU ${index} ${['read', 'write', 'fetch'][access]} 0x${hex16(vaHi, vaLo)}: ${outcome}`;
  const s2 = mmu.stage2;
  if (s2 !== null) {
    const g = gridOf(res, s2.fmt, outcome === 'ok');
    return `${head}, ${g.refs} references\n${renderGrid(g, s2.fmt.kind === ENTRY_EPT ? 'EPT' : 'nPT')}`;
  }
  const names = LEVEL_NAMES[fmt.mode.name];
  let out = `${head}, ${res.n} references\n`;
  for (let level = fmt.mode.topLevel; level > res.top; level--) {
    out += `  ${(names[level] as string).padEnd(5)}  ${fmt.mode.pdpteRegisters && level === 3 ? `register ${res.pdpteIndex}` : 'PSC'}\n`;
  }
  for (let k = 0; k < res.n; k++) {
    out += `  ${(names[res.levelAt(k)] as string).padEnd(5)}  ${k + 1}  ${entryText(fmt, res, k)}\n`;
  }
  return out;
}
