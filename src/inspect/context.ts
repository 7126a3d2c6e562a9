/**
 * One vCPU of an imported image, made ready for walking: EFER (given by an
 * `info registers` text, or inferred, with the reasons kept), MAXPHYADDR,
 * the paging mode, format and rights-check control bits (derived by the CPU
 * model itself), the root tables and the KPTI twin root.
 */
import { PERM_XD } from '../arch/x86/access.js';
import { CR0_PG, CR4_LA57, CR4_PAE, EFER_LMA, EFER_LME, EFER_NXE } from '../arch/x86/bits.js';
import { Cpu, type CpuHost, type DataSpace } from '../arch/x86/cpu.js';
import { EXIT_PAGE_FAULT } from '../arch/x86/exits.js';
import { formatFor, type PagingMode, type WalkFormat } from '../arch/x86/modes.js';
import { NO_TLB } from '../arch/x86/tlb.js';
import { frameAt } from '../machine/memory.js';
import { type CpuState, EM_X86_64, type GuestImage } from './image.js';
import { eferFrom, type RegisterText } from './registers.js';
import { enumerate, PDPTE_QEMU_A, type Root, tableFrame } from './tree.js';

export interface ViewOptions {
  /** Parsed `info registers` text and its file name. */
  readonly registers?: { readonly path: string; readonly text: RegisterText };
  readonly maxPhysAddr?: number;
}

export interface Inference {
  readonly subject: 'EFER' | 'MAXPHYADDR';
  readonly text: string;
}

export interface VcpuView {
  readonly image: GuestImage;
  readonly state: CpuState;
  readonly efer: number;
  readonly eferSource: string;
  readonly maxPhysAddr: number;
  readonly maxPhysSource: string;
  /** What was inferred and why, one sentence each. */
  readonly inferred: readonly Inference[];
  /** The CPU model holding this vCPU's registers: mode, format, ctl (rights-check control bits). */
  readonly cpu: Cpu;
  readonly mode: PagingMode | null;
  readonly fmt: WalkFormat | null;
  readonly root: Root | null;
  /** The other half of a KPTI pair, when the frame next to the root holds a matching table. */
  readonly twin: Root | null;
  /** Which half of the KPTI pair CR3 holds (null without KPTI). */
  readonly rootKind: 'kernel' | 'user' | null;
}

const u32 = (v: bigint): number => Number(v & 0xffffffffn);

/** Read-only view of image memory for the CPU model (data writes are discarded). */
function dataSpace(image: GuestImage): DataSpace {
  const m = image.memory;
  return {
    frameForRead: (pfn) => m.frameForRead(pfn),
    frameForWrite: () => null,
    locate: (pfn) => frameAt(m.frameForRead(pfn)),
    locateForWrite: () => null,
  };
}

/** Nothing runs on this CPU model: it only derives mode, format and rights-check bits from the registers. */
const idleHost: CpuHost = {
  exit: (cpu, reason) => (reason === EXIT_PAGE_FAULT ? cpu.exitInfo.error : 0), // deliver a fault (never called)
};

export function vcpuView(image: GuestImage, index: number, opts: ViewOptions = {}): VcpuView {
  const state = image.cpus[index] as CpuState;
  const inferred: Inference[] = [];
  const x64 = image.machine === EM_X86_64;
  const maxPhysAddr = opts.maxPhysAddr ?? (x64 ? 40 : 36);
  const maxPhysSource = opts.maxPhysAddr !== undefined ? '--maxphyaddr' : 'inferred';
  if (opts.maxPhysAddr === undefined) {
    inferred.push({
      subject: 'MAXPHYADDR',
      text: `MAXPHYADDR ${maxPhysAddr} assumed (typical of ${x64 ? 'an x86-64' : 'an i386'} guest, e_machine ${image.machine}); set it with --maxphyaddr`,
    });
  }
  let efer: number;
  let eferSource: string;
  if (opts.registers) {
    efer = eferFrom(opts.registers.path, opts.registers.text, state);
    eferSource = opts.registers.path;
  } else {
    efer = inferLongMode(state, image.machine, inferred);
    eferSource = 'inferred';
  }
  const cpu = new Cpu(index, dataSpace(image), maxPhysAddr, idleHost, NO_TLB);
  const load = (e: number): void => {
    const ac = Number((state.rflags >> 18n) & 1n); // RFLAGS.AC (SMAP)
    cpu.loadState(u32(state.cr0), u32(state.cr3 >> 32n), u32(state.cr3), u32(state.cr4), e, ac);
  };
  load(efer);
  if (!opts.registers && cpu.mode?.hasXd) {
    efer = inferNxe(cpu, image, state, efer, inferred);
    load(efer);
  }
  const root = cpu.format ? rootAt(image, cpu.format, state.cr3, cpu.cr3RootPfn) : null;
  const twin = cpu.format && root ? findTwin(image, cpu.format, root) : null;
  const rootKind = twin && root ? ((root.pfn & 1) === 0 ? 'kernel' : 'user') : null;
  return {
    image,
    state,
    efer,
    eferSource,
    maxPhysAddr,
    maxPhysSource,
    inferred,
    cpu,
    mode: cpu.mode,
    fmt: cpu.format,
    root,
    twin,
    rootKind,
  };
}

/** LMA/LME: paging with PAE in a guest QEMU dumped as x86-64 (or with CR4.LA57, only possible in IA-32e mode). */
function inferLongMode(s: CpuState, machine: number, inferred: Inference[]): number {
  const pg = (u32(s.cr0) & CR0_PG) !== 0;
  const pae = (u32(s.cr4) & CR4_PAE) !== 0;
  const la57 = (u32(s.cr4) & CR4_LA57) !== 0;
  const lma = pg && pae && (machine === EM_X86_64 || la57);
  const why = !pg
    ? 'CR0.PG=0'
    : !pae
      ? 'CR4.PAE=0'
      : la57
        ? 'CR4.LA57=1'
        : machine === EM_X86_64
          ? 'e_machine 62 (QEMU writes EM_X86_64 when vCPU 0 is in IA-32e mode) and CR4.PAE=1'
          : 'e_machine 3 (vCPU 0 was not in IA-32e mode)';
  inferred.push({ subject: 'EFER', text: `EFER not given (--registers): LMA=LME=${lma ? 1 : 0} inferred from ${why}` });
  return lma ? EFER_LMA | EFER_LME : 0;
}

/**
 * NXE: an XD bit in a present entry proves NXE=1 (with NXE=0 the entry would
 * fault, and the guest runs); in IA-32e mode it is assumed (every 64-bit OS
 * sets it). Without XD bits anywhere, NXE changes no translation.
 */
function inferNxe(cpu: Cpu, image: GuestImage, s: CpuState, efer: number, inferred: Inference[]): number {
  const fmt = cpu.format as WalkFormat;
  const probe = rootAt(image, fmt, s.cr3, cpu.cr3RootPfn);
  let xd = 0;
  enumerate(image.memory, formatFor(fmt.mode, fmt.maxPhysAddr, true, fmt.pse), probe, {
    leaf: (l) => {
      if ((l.perm & PERM_XD) !== 0) xd++;
    },
  });
  const lma = (efer & EFER_LMA) !== 0;
  const nxe = xd > 0 || lma;
  inferred.push({
    subject: 'EFER',
    text:
      xd > 0
        ? `EFER.NXE=1 inferred: ${xd} mappings have XD set at some level, which would fault unless NXE=1`
        : lma
          ? 'EFER.NXE=1 assumed (IA-32e mode; no XD bit seen in the leaves)'
          : 'EFER.NXE=0 assumed (no XD bit seen in the leaves, so it changes no translation)',
  });
  return nxe ? efer | EFER_NXE : efer & ~EFER_NXE;
}

/** Root of the tables CR3 designates; for PAE the four PDPTEs at CR3 & ~0x1f, as MOV CR3 loads them. */
export function rootAt(image: GuestImage, fmt: WalkFormat, cr3: bigint, pfn: number): Root {
  if (!fmt.mode.pdpteRegisters) return { cr3, pfn, pdpte: null };
  const f = image.memory.frameForRead(pfn);
  const w = (u32(cr3) & 0xfe0) >>> 2;
  return { cr3, pfn, pdpte: f.slice(w, w + 8) };
}

/**
 * KPTI (Linux PTI) keeps the kernel and user top-level tables as the two 4 KiB
 * halves of an 8 KiB block (kernel first). The other half of the root's block
 * is taken as the twin when it looks like that partner: every present entry
 * is free of reserved bits and points into RAM, the user halves of the two
 * tables map the same lower tables (Linux mirrors user-space entries into
 * both; the kernel copy adds XD), and the kernel half has at least one entry
 * (the user table must still map the entry code). An unrelated neighbour
 * such as another process's table fails the user-half check.
 */
function findTwin(image: GuestImage, fmt: WalkFormat, root: Root): Root | null {
  if (fmt.mode.name === '32-bit') return null; // PTI needs PAE
  const mem = image.memory;
  const pfn = root.pfn ^ 1;
  if (!mem.isRam(pfn)) return null;
  const twin = rootAt(image, fmt, root.cr3 ^ 0x1000n, pfn);
  const top = fmt.mode.topLevel;
  const entries = (r: Root): Uint32Array => r.pdpte ?? mem.frameForRead(r.pfn);
  const a = entries(root);
  const b = entries(twin);
  const rsvdLo = twin.pdpte ? fmt.pdpteRsvdLo & ~PDPTE_QEMU_A : (fmt.rsvdLo[top * 2] as number);
  const rsvdHi = twin.pdpte ? fmt.pdpteRsvdHi : (fmt.rsvdHi[top * 2] as number);
  const n = b.length / 2;
  let kernelEntries = 0;
  for (let i = 0; i < n; i++) {
    const lo = b[2 * i] as number;
    const hi = b[2 * i + 1] as number;
    const present = (lo & 1) !== 0;
    if (present) {
      if ((lo & rsvdLo) !== 0 || (hi & rsvdHi) !== 0 || !mem.isRam(tableFrame(true, lo, hi))) return null;
      if (i >= n / 2) kernelEntries++;
    }
    const rlo = a[2 * i] as number;
    if (
      i < n / 2 &&
      (((rlo ^ lo) & 1) !== 0 ||
        (present && tableFrame(true, rlo, a[2 * i + 1] as number) !== tableFrame(true, lo, hi)))
    ) {
      return null;
    }
  }
  return kernelEntries > 0 ? twin : null;
}
