/**
 * QEMU 7.2's HMP `info tlb` and `info mem` for x86 (target/i386/monitor.c:
 * print_pte, tlb_info_*, mem_print, mem_info_*), reproduced byte for byte.
 * This is QEMU's view, not the SDM's (that is tree.ts), so its quirks are
 * kept on purpose:
 * - `info tlb` prints the leaf entry's flags only, and its address through
 *   QEMU's masks: PAE keeps bits 63:52 (XD shows in the address), 32-bit
 *   4 MiB pages drop the PSE-36 bits; bit 7 (PAT) of 4 KiB PTEs is cleared.
 * - PS is ignored at PML4/PML5; PAE PDPTEs are read from memory at
 *   CR3 & ~0x1f and none of their bits are checked beyond P.
 * - `info mem` merges by U/S, R/W, P ANDed over the levels (not the PAE
 *   PDPTE; XD ignored) and applies addr_canonical to start, end and size.
 * Exception: QEMU 7.2's 5-level `info mem` tests P the wrong way round at the
 * PDPT and PD levels and prints nothing; here it is the la48 logic extended
 * by one level, flushing at 2^57.
 * What QEMU reads at non-RAM addresses (devices, unassigned) is not in a
 * core; a table there is taken as empty (QEMU's unassigned reads give zeros),
 * not as Umbra's all-ones, which would look like 512 present entries each.
 */
import { CR0_PG, CR4_LA57, CR4_PAE, CR4_PSE } from '../arch/x86/bits.js';
import { ZERO_FRAME } from '../machine/memory.js';
import { canonicalHex, hex16 } from './format.js';
import { Descent, MAX_LEAVES, type RamSpace } from './tree.js';

/** The registers QEMU's monitor looks at. */
export interface QemuRegs {
  readonly cr0: number;
  readonly cr3: bigint;
  readonly cr4: number;
  /** EFER.LMA (QEMU: hflags & HF_LMA_MASK). */
  readonly lma: boolean;
}

interface QemuLevel {
  readonly shift: number;
  /** PS=1 makes a leaf at this level (in QEMU's eyes). */
  readonly large: boolean;
  /** QEMU's mask for the printed address of a leaf at this level, as halves. */
  readonly maskHi: number;
  readonly maskLo: number;
}

interface QemuPaging {
  readonly wide: boolean;
  readonly top: number;
  /** By level number (index 0 unused). */
  readonly levels: readonly QemuLevel[];
  /** High half of the next-table mask (0x3fffffffff000 for 8-byte entries; 32-bit: none). */
  readonly tableHi: number;
  /** Where `info mem` flushes its last range. */
  readonly end: number;
  /** addr_canonical's sign bit. */
  readonly signBit: number;
  /** PAE: the top level is the 4-entry PDPT at CR3 & ~0x1f, not ANDed into `info mem` rights. */
  readonly pdpt: boolean;
}

const lvl = (shift: number, large: boolean, maskHi: number, maskLo: number): QemuLevel => ({
  shift,
  large,
  maskHi,
  maskLo,
});
const TABLE = lvl(0, false, 0, 0);
const LA_HI = 0x3ffff; // bits 49:32 of 0x3fffffffff000 and QEMU's la48 leaf masks

function qemuPaging(r: QemuRegs): QemuPaging {
  const la57 = (r.cr4 & CR4_LA57) !== 0;
  const signBit = la57 ? 56 : 47;
  if ((r.cr4 & CR4_PAE) === 0) {
    const pse = (r.cr4 & CR4_PSE) !== 0;
    const levels = [TABLE, lvl(12, false, 0, 0xfffff000), lvl(22, pse, 0, 0xffe00000)];
    return { wide: false, top: 2, levels, tableHi: 0, end: 2 ** 32, signBit, pdpt: false };
  }
  if (!r.lma) {
    const levels = [TABLE, lvl(12, false, -1, 0xfffff000), lvl(21, true, -1, 0xfff00000), lvl(30, false, 0, 0)];
    return { wide: true, top: 3, levels, tableHi: LA_HI, end: 2 ** 32, signBit, pdpt: true };
  }
  const levels = [
    TABLE,
    lvl(12, false, LA_HI, 0xfffff000),
    lvl(21, true, LA_HI, 0xffe00000),
    lvl(30, true, LA_HI, 0xc0000000),
    lvl(39, false, 0, 0),
    lvl(48, false, 0, 0),
  ];
  return la57
    ? { wide: true, top: 5, levels, tableHi: LA_HI, end: 2 ** 57, signBit, pdpt: false }
    : { wide: true, top: 4, levels: levels.slice(0, 5), tableHi: LA_HI, end: 2 ** 48, signBit, pdpt: false };
}

/** print_pte's flag letters, indexed by XD << 8 | entry bits 8:1. */
const FLAGS: readonly string[] = Array.from({ length: 512 }, (_, i) =>
  'XGPDACTUW'
    .split('')
    .map((c, k) => ((i >>> (8 - k)) & 1 ? c : '-'))
    .join(''),
);

/** Buffers output lines and hands them on in large chunks. */
class Lines {
  private buf: string[] = [];
  count = 0;
  constructor(
    private readonly out: (s: string) => void,
    private readonly limit: number,
    private readonly descent: Descent,
  ) {}

  push(s: string): void {
    this.buf.push(s);
    if (++this.count > this.limit) throw this.descent.tooMuch(`more than ${this.limit} lines`);
    if (this.buf.length >= 8192) this.flush();
  }

  flush(): void {
    if (this.buf.length > 0) this.out(this.buf.join(''));
    this.buf = [];
  }
}

/**
 * Called for every entry that is not-present or a leaf, in QEMU's walk order
 * (present non-leaf entries are descended into). `acc` is the `info mem`
 * rights accumulated above the entry.
 */
type EntryFn = (level: number, va: number, lo: number, hi: number, leaf: boolean, acc: number) => void;

/** How `info mem` accumulates the rights of the entries above a leaf. */
type AndFn = (level: number, acc: number, lo: number) => number;

function traverse(space: RamSpace, p: QemuPaging, cr3: bigint, visit: EntryFn, and: AndFn, descent: Descent): void {
  const cr3Lo = Number(cr3 & 0xffffffffn);
  const descend = (pfn: number, off: number, count: number, level: number, vaBase: number, acc: number) => {
    descent.enter(pfn);
    const words = space.isRam(pfn) ? space.frameForRead(pfn) : ZERO_FRAME;
    const L = p.levels[level] as QemuLevel;
    const span = 2 ** L.shift;
    for (let i = 0; i < count; i++) {
      const lo = (p.wide ? words[off + 2 * i] : words[off + i]) as number;
      const hi = p.wide ? (words[off + 2 * i + 1] as number) : 0;
      const va = vaBase + i * span;
      const present = (lo & 1) !== 0;
      const leaf = present && (level === 1 || (L.large && (lo & 0x80) !== 0));
      if (!present || leaf) {
        visit(level, va, lo, hi, leaf, acc);
        continue;
      }
      const next = p.wide ? (hi & p.tableHi) * 0x100000 + (lo >>> 12) : lo >>> 12;
      descend(next, 0, p.wide ? 512 : 1024, level - 1, va, and(level, acc, lo));
    }
    descent.leave();
  };
  if (p.pdpt) {
    const pfn = cr3Lo >>> 12;
    descend(pfn, (cr3Lo & 0xfe0) >>> 2, 4, 3, 0, -1);
  } else {
    const pfn = p.wide ? Number((cr3 >> 12n) & 0x3fffffffffn) : cr3Lo >>> 12;
    descend(pfn, 0, p.wide ? 512 : 1024, p.top, 0, -1);
  }
}

/** HMP `info tlb` for these registers, written through `out` in chunks. */
export function qemuInfoTlb(space: RamSpace, r: QemuRegs, out: (s: string) => void, limit = MAX_LEAVES): void {
  if ((r.cr0 & CR0_PG) === 0) {
    out('PG disabled\n');
    return;
  }
  const p = qemuPaging(r);
  const descent = new Descent();
  const lines = new Lines(out, limit, descent);
  traverse(
    space,
    p,
    r.cr3,
    (level, va, lo, hi, leaf) => {
      if (!leaf) return;
      const L = p.levels[level] as QemuLevel;
      const e = level === 1 ? lo & ~0x80 : lo; // QEMU clears PAT of 4 KiB PTEs
      const flags = FLAGS[((hi >>> 31) << 8) | ((e >>> 1) & 0xff)] as string;
      lines.push(`${canonicalHex(va, p.signBit)}: ${hex16(hi & L.maskHi, e & L.maskLo)} ${flags}\n`);
    },
    (_level, acc) => acc,
    descent,
  );
  lines.flush();
}

/** HMP `info mem` for these registers (5-level: corrected, see above). */
export function qemuInfoMem(space: RamSpace, r: QemuRegs, out: (s: string) => void, limit = MAX_LEAVES): void {
  if ((r.cr0 & CR0_PG) === 0) {
    out('PG disabled\n');
    return;
  }
  const p = qemuPaging(r);
  const descent = new Descent();
  const lines = new Lines(out, limit, descent);
  const c = (x: number): string => canonicalHex(x, p.signBit);
  let start = -1;
  let last = 0;
  // mem_print: a range ends where the rights change.
  const print = (end: number, prot: number): void => {
    if (prot === last) return;
    if (start !== -1)
      lines.push(`${c(start)}-${c(end)} ${c(end - start)} ${last & 4 ? 'u' : '-'}r${last & 2 ? 'w' : '-'}\n`);
    start = prot !== 0 ? end : -1;
    last = prot;
  };
  const and: AndFn = (level, acc, lo) => (p.pdpt && level === 3 ? acc : acc & lo);
  traverse(space, p, r.cr3, (_level, va, lo, _hi, leaf, acc) => print(va, leaf ? lo & acc & 7 : 0), and, descent);
  print(p.end, 0);
  lines.flush();
}
