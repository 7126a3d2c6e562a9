/**
 * The SDM-correct picture of one vCPU's address space (what `inspect
 * --format summary|json` show): effective rights over all levels, table and
 * leaf counts, the KPTI twin, and anomalies reported rather than hidden.
 * Built from the tree enumeration; rendered by summary.ts or as JSON.
 */
import { PERM_U, PERM_W, PERM_XD } from '../arch/x86/access.js';
import { XD_HI } from '../arch/x86/bits.js';
import { LEVEL_NAMES, type WalkFormat } from '../arch/x86/modes.js';
import type { VcpuView } from './context.js';
import { bitNames, CR0_NAMES, CR4_NAMES, canonicalHex, EFER_NAMES, hx, hx64 } from './format.js';
import { pageSizeText, type Translation, translate } from './translate.js';
import { type Anomaly, type AnomalyKind, enumerate, type Leaf, type Root } from './tree.js';

export interface RightsTotals {
  /** Bytes mapped (sum of page sizes). */
  bytes: number;
  writable: number;
  executable: number;
  writableAndExecutable: number;
}

export interface AnomalyReport {
  readonly kind: AnomalyKind | 'nx-above-leaf' | 'us-above-leaf' | 'rw-above-leaf';
  count: number;
  readonly description: string;
  readonly examples: string[];
}

/** Leaves merged into ranges, like `info mem` but by effective rights and page size; periodic runs folded. */
export interface RangeReport {
  readonly start: string;
  end: string;
  size: string;
  readonly pageSize: number;
  readonly user: boolean;
  readonly writable: boolean;
  readonly executable: boolean;
  /** Present when the range repeats `count` times, `stride` bytes apart (end is then the last copy's end). */
  count?: number;
  stride?: string;
}

export interface SpaceReport {
  readonly cr3: string;
  readonly kind: 'kernel' | 'user' | null;
  /** Distinct page-table frames by level (PAE: the frame holding the PDPT counts as PDPT). */
  readonly tableFrames: Record<string, number>;
  readonly tableFramesTotal: number;
  /** Leaves by page size ("4 KiB", "2 MiB", ...). */
  readonly leaves: Record<string, number>;
  readonly leafCount: number;
  readonly mappedBytes: number;
  readonly user: RightsTotals;
  readonly supervisor: RightsTotals;
  /** Leaves whose page is not guest RAM (device memory such as the local APIC). */
  readonly nonRam: { leaves: number; bytes: number };
  readonly firstUserPage: string | null;
  readonly firstSupervisorPage: string | null;
  readonly anomalies: AnomalyReport[];
  ranges?: RangeReport[];
}

export interface Report {
  readonly image: {
    readonly path: string;
    readonly format: string;
    readonly compressed: boolean;
    readonly elfBytes: number;
    readonly machine: number;
    readonly vcpus: number;
    readonly ram: readonly { start: string; end: string; bytes: number }[];
  };
  readonly vcpu: {
    readonly index: number;
    readonly cpl: number;
    readonly cr0: string;
    readonly cr0Flags: string;
    readonly cr2: string;
    readonly cr3: string;
    readonly cr4: string;
    readonly cr4Flags: string;
    readonly efer: string;
    readonly eferFlags: string;
    readonly eferSource: string;
    readonly rip: string;
    readonly maxPhysAddr: number;
    readonly maxPhysAddrSource: string;
    readonly inferred: readonly string[];
  };
  /** Paging mode name, or "off". */
  readonly paging: string;
  readonly root: SpaceReport | null;
  readonly twin: SpaceReport | null;
  samples?: Sample[];
}

export interface Sample {
  readonly label: string;
  readonly translation: Translation;
}

const EXAMPLES = 3;

const DESCRIPTIONS: Record<AnomalyReport['kind'], string> = {
  reserved:
    'present entries with reserved bits set: a walk through them faults (#PF with RSVD), so nothing below is mapped',
  'pdpte-accessed':
    "PAE PDPTEs with bit 5 (A) set: reserved in a PDPTE per the SDM; QEMU's TCG walker sets it; ignored as noise",
  'pdpte-reserved': 'PAE PDPTEs with reserved bits set: MOV CR3 would have raised #GP with these',
  'table-outside-ram': 'entries pointing to a page table outside guest RAM (it would read as all ones)',
  'root-outside-ram': 'the root table lies outside guest RAM: there is nothing to walk',
  'nx-above-leaf':
    "pages not executable although the leaf's XD=0: XD is set at a higher level (XD is ORed over the walk)",
  'us-above-leaf': 'pages supervisor-only although the leaf has U/S=1: U/S=0 at a higher level',
  'rw-above-leaf': 'pages read-only although the leaf has R/W=1: R/W=0 at a higher level',
};

export function buildReport(view: VcpuView, opts: { sample?: boolean; ranges?: boolean } = {}): Report {
  const s = view.state;
  const img = view.image;
  const report: Report = {
    image: {
      path: img.path,
      format: `ELF${img.elfClass} core`,
      compressed: img.compressed,
      elfBytes: img.bytes,
      machine: img.machine,
      vcpus: img.cpus.length,
      ram: img.loads.map((l) => ({ start: hx(l.paddr), end: hx(l.paddr + l.memsz), bytes: l.memsz })),
    },
    vcpu: {
      index: s.index,
      cpl: s.cpl,
      cr0: hx(s.cr0),
      cr0Flags: bitNames(s.cr0, CR0_NAMES),
      cr2: hx(s.cr2),
      cr3: hx(s.cr3),
      cr4: hx(s.cr4),
      cr4Flags: bitNames(s.cr4, CR4_NAMES),
      efer: hx(view.efer),
      eferFlags: bitNames(BigInt(view.efer), EFER_NAMES),
      eferSource: view.eferSource,
      rip: hx(s.rip),
      maxPhysAddr: view.maxPhysAddr,
      maxPhysAddrSource: view.maxPhysSource,
      inferred: view.inferred.map((i) => i.text),
    },
    paging: view.mode?.name ?? 'off',
    root: null,
    twin: null,
  };
  const fmt = view.fmt;
  if (fmt === null || view.root === null) return report;
  const twinKind = view.rootKind === 'kernel' ? 'user' : view.rootKind === 'user' ? 'kernel' : null;
  const root = analyze(view, fmt, view.root, view.rootKind, opts.ranges === true);
  const twin = view.twin ? analyze(view, fmt, view.twin, twinKind, opts.ranges === true) : null;
  const samples = opts.sample ? sampleTranslations(view, fmt, root) : undefined;
  return { ...report, root, twin, ...(samples ? { samples } : {}) };
}

/** Sign bit for canonical display: 47 or 56 in IA-32e paging, none for 32-bit linear addresses. */
function signBit(fmt: WalkFormat): number {
  return fmt.mode.vaBits === 57 ? 56 : fmt.mode.vaBits === 48 ? 47 : 0;
}

function analyze(
  view: VcpuView,
  fmt: WalkFormat,
  root: Root,
  kind: 'kernel' | 'user' | null,
  withRanges: boolean,
): SpaceReport {
  const mem = view.image.memory;
  const names = LEVEL_NAMES[fmt.mode.name];
  const sb = signBit(fmt);
  const va = (x: number): string => `0x${canonicalHex(x, sb)}`;
  const frames: Set<number>[] = names.map(() => new Set<number>());
  const leaves = new Map<number, number>();
  const totals = (): RightsTotals => ({ bytes: 0, writable: 0, executable: 0, writableAndExecutable: 0 });
  const user = totals();
  const supervisor = totals();
  const nonRam = { leaves: 0, bytes: 0 };
  const anomalies = new Map<AnomalyReport['kind'], AnomalyReport>();
  const note = (k: AnomalyReport['kind'], example: () => string): void => {
    let a = anomalies.get(k);
    if (a === undefined) {
      a = { kind: k, count: 0, description: DESCRIPTIONS[k], examples: [] };
      anomalies.set(k, a);
    }
    a.count++;
    if (a.examples.length < EXAMPLES) a.examples.push(example());
  };
  let firstUser = -1;
  let firstSupervisor = -1;
  let count = 0;
  let mapped = 0;
  const ranges = withRanges ? new RangeBuilder(va) : null;
  enumerate(mem, fmt, root, {
    table: (level, pfn) => frames[level]?.add(pfn),
    anomaly: (a: Anomaly) =>
      note(a.kind, () =>
        a.kind === 'root-outside-ram'
          ? `CR3 ${hx(root.cr3)}`
          : `${names[a.level]} for ${va(a.va)} = ${hx64(a.hi, a.lo)} (bits ${hx64(a.bitsHi, a.bitsLo)})`,
      ),
    leaf: (l: Leaf) => {
      const size = 2 ** l.shift;
      count++;
      mapped += size;
      leaves.set(size, (leaves.get(size) ?? 0) + 1);
      const isUser = (l.perm & PERM_U) !== 0;
      const w = (l.perm & PERM_W) !== 0;
      const x = (l.perm & PERM_XD) === 0;
      const t = isUser ? user : supervisor;
      t.bytes += size;
      if (w) t.writable += size;
      if (x) t.executable += size;
      if (w && x) t.writableAndExecutable += size;
      if (isUser && firstUser < 0) firstUser = l.va;
      if (!isUser && firstSupervisor < 0) firstSupervisor = l.va;
      if (!mem.isRam(l.pfn)) {
        nonRam.leaves++;
        nonRam.bytes += size;
      }
      const example = (): string => `${va(l.va)} (${names[l.level]} ${hx64(l.hi, l.lo)})`;
      if (fmt.nxe && !x && (l.hi & XD_HI) === 0) note('nx-above-leaf', example);
      if (!isUser && (l.lo & 4) !== 0) note('us-above-leaf', example);
      if (!w && (l.lo & 2) !== 0) note('rw-above-leaf', example);
      ranges?.add(l.va, size, isUser, w, x);
    },
  });
  const tableFrames: Record<string, number> = {};
  let tableFramesTotal = 0;
  const all = new Set<number>();
  for (let level = names.length - 1; level >= 1; level--) {
    const set = frames[level] as Set<number>;
    if (set.size === 0) continue;
    tableFrames[(names[level] as string).replace(/E$/, '')] = set.size; // PDE -> PD
    for (const f of set) all.add(f);
  }
  tableFramesTotal = all.size;
  const bySize: Record<string, number> = {};
  for (const [size, n] of [...leaves].sort((a, b) => a[0] - b[0])) bySize[pageSizeText(size)] = n;
  return {
    cr3: hx(root.cr3),
    kind,
    tableFrames,
    tableFramesTotal,
    leaves: bySize,
    leafCount: count,
    mappedBytes: mapped,
    user,
    supervisor,
    nonRam,
    firstUserPage: firstUser < 0 ? null : va(firstUser),
    firstSupervisorPage: firstSupervisor < 0 ? null : va(firstSupervisor),
    anomalies: [...anomalies.values()],
    ...(ranges ? { ranges: ranges.finish() } : {}),
  };
}

/**
 * Merges leaves (in address order) into ranges of equal rights and page size,
 * then folds runs of equal ranges at a constant stride (Linux's espfix area
 * maps one page every 64 KiB, 65 536 times) into one record.
 */
class RangeBuilder {
  private readonly out: RangeReport[] = [];
  private cur: { start: number; end: number; key: number; pageSize: number } | null = null;
  /** Last emitted record, as numbers: first start, size, copies, stride. */
  private last: { start: number; size: number; key: number; pageSize: number; count: number; stride: number } | null =
    null;

  constructor(private readonly va: (x: number) => string) {}

  add(start: number, size: number, user: boolean, w: boolean, x: boolean): void {
    const key = (user ? 1 : 0) | (w ? 2 : 0) | (x ? 4 : 0);
    const c = this.cur;
    if (c && c.end === start && c.key === key && c.pageSize === size) {
      c.end += size;
      return;
    }
    if (c) this.emit(c.start, c.end - c.start, c.key, c.pageSize);
    this.cur = { start, end: start + size, key, pageSize: size };
  }

  finish(): RangeReport[] {
    const c = this.cur;
    if (c) this.emit(c.start, c.end - c.start, c.key, c.pageSize);
    this.cur = null;
    return this.out;
  }

  private emit(start: number, size: number, key: number, pageSize: number): void {
    const l = this.last;
    const rec = this.out[this.out.length - 1];
    if (l && rec && l.key === key && l.size === size && l.pageSize === pageSize) {
      const lastStart = l.start + (l.count - 1) * l.stride;
      const stride = l.count === 1 ? start - l.start : l.stride;
      if (start - lastStart === stride && stride > size) {
        l.count++;
        l.stride = stride;
        rec.count = l.count;
        rec.stride = hx(stride);
        rec.end = this.va(start + size);
        return;
      }
    }
    this.last = { start, size, key, pageSize, count: 1, stride: 0 };
    this.out.push({
      start: this.va(start),
      end: this.va(start + size),
      size: hx(size),
      pageSize,
      user: (key & 1) !== 0,
      writable: (key & 2) !== 0,
      executable: (key & 4) !== 0,
    });
  }
}

/** A few translations worth looking at: first user and supervisor pages, CR2, RIP. */
function sampleTranslations(view: VcpuView, fmt: WalkFormat, space: SpaceReport): Sample[] {
  const narrow = fmt.mode.vaBits === 32; // 32-bit linear addresses: EIP, not RIP
  const out: Sample[] = [];
  const add = (label: string, va: string | bigint | null, access: 0 | 2, cpl: number): void => {
    if (va === null) return;
    const v = BigInt(va) & (narrow ? 0xffffffffn : 0xffffffffffffffffn);
    const vaHi = Number(v >> 32n);
    const vaLo = Number(v & 0xffffffffn);
    out.push({ label, translation: translate(view, { vaHi, vaLo, access, cpl }) });
  };
  const cpl = view.state.cpl;
  add('first user page, read from user mode', space.firstUserPage, 0, 3);
  add('first supervisor page, read by the kernel', space.firstSupervisorPage, 0, 0);
  add('CR2 (the last page-fault address), read at the current CPL', view.state.cr2, 0, cpl);
  add('RIP (the next instruction), fetched at the current CPL', view.state.rip, 2, cpl);
  return out;
}
