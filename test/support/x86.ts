/**
 * Shared helpers for the SDM conformance tests (permissions, reserved bits,
 * control registers). This module only builds machines and pokes memory; it
 * holds no expectation logic. Architectural constants are restated here from
 * the Intel SDM (vol. 3A ch. 2 and 4) rather than imported from src/, so that
 * the tests do not inherit a mistake from the code under test.
 *
 * No top-level side effects: `node --test dist/test/` loads this file too.
 */
import './node.js';
import { Cpu } from '../../src/arch/x86/cpu.js';
import { DEFAULT_TLB, NO_TLB, type TlbConfig } from '../../src/arch/x86/tlb.js';
import { Domain } from '../../src/hypervisor/domain.js';
import { NativePager } from '../../src/pagers/native/native.js';

export { DEFAULT_TLB, NO_TLB };

// CR0 (SDM 2.5).
export const CR0_PE = 1 << 0;
export const CR0_ET = 1 << 4;
export const CR0_WP = 1 << 16;
export const CR0_NW = 1 << 29;
export const CR0_CD = 1 << 30;
export const CR0_PG = 0x80000000;
// CR4 (SDM 2.5).
export const CR4_PSE = 1 << 4;
export const CR4_PAE = 1 << 5;
export const CR4_PGE = 1 << 7;
export const CR4_LA57 = 1 << 12;
export const CR4_VMXE = 1 << 13;
export const CR4_PCIDE = 1 << 17;
export const CR4_SMEP = 1 << 20;
export const CR4_SMAP = 1 << 21;
export const CR4_PKE = 1 << 22;
// IA32_EFER (SDM 2.2.1).
export const EFER_SCE = 1 << 0;
export const EFER_LME = 1 << 8;
export const EFER_LMA = 1 << 10;
export const EFER_NXE = 1 << 11;
// Paging-structure entry bits (SDM 4.3-4.5), low word.
export const P = 1 << 0;
export const RW = 1 << 1;
export const US = 1 << 2;
export const PWT = 1 << 3;
export const PCD = 1 << 4;
export const A = 1 << 5;
export const D = 1 << 6;
export const PS = 1 << 7;
export const G = 1 << 8;
/** XD (bit 63) in the high word. */
export const XD_HI = 0x80000000;
/** Protection key: bits 62:59, i.e. bits 30:27 of the high word. */
export function pkHi(key: number): number {
  return (key & 0xf) << 27;
}
// Page-fault error code (SDM 4.7).
export const PF_P = 1 << 0;
export const PF_W = 1 << 1;
export const PF_U = 1 << 2;
export const PF_RSVD = 1 << 3;
export const PF_ID = 1 << 4;
export const PF_PK = 1 << 5;
// Cpu operation results.
export const OK = 0;
export const PF = 1;
export const GP = 2;

export type ModeName = '32-bit' | 'pae' | '4-level' | '5-level';
export const MODES: readonly ModeName[] = ['32-bit', 'pae', '4-level', '5-level'];

export interface Machine {
  d: Domain;
  cpu: Cpu;
  pager: NativePager;
}

export interface MachineOptions {
  ramBytes?: number;
  maxPhys?: number;
  tlb?: TlbConfig;
  /**
   * Paging-structure caches: default on, except on a machine with no TLB
   * (NO_TLB: every access walks memory, as the SDM conformance tests that
   * rewrite entries without invalidating expect).
   */
  pwc?: boolean;
}

export function makeMachine(opts: MachineOptions = {}): Machine {
  const d = new Domain({ ramBytes: opts.ramBytes ?? 0x1000000, layout: 'identity', seed: 0 });
  const pwc = opts.pwc ?? opts.tlb !== NO_TLB;
  const pager = new NativePager(pwc ? {} : { pwc: null });
  const cpu = new Cpu(0, d.guest, opts.maxPhys ?? 40, pager, opts.tlb ?? DEFAULT_TLB);
  pager.attach(d, [cpu]);
  return { d, cpu, pager };
}

/** Frame number of a physical address given as a JS number (exact up to 2^53). */
export function gfnOf(pa: number): number {
  return Math.floor(pa / 4096);
}

export function frame(m: Machine, gfn: number): Uint32Array {
  const f = m.d.guest.frameForWrite(gfn);
  if (f === null) throw new Error(`gfn ${gfn} is not writable RAM`);
  return f;
}

/** Write 8-byte entry `idx` of table frame `gfn`. */
export function put64(m: Machine, gfn: number, idx: number, lo: number, hi = 0): void {
  const f = frame(m, gfn);
  f[2 * idx] = lo >>> 0;
  f[2 * idx + 1] = hi >>> 0;
}

/** Write 4-byte entry `idx` of table frame `gfn` (32-bit paging). */
export function put32(m: Machine, gfn: number, idx: number, v: number): void {
  frame(m, gfn)[idx] = v >>> 0;
}

export function word(m: Machine, gfn: number, idx: number): number {
  return m.d.guest.frameForRead(gfn)[idx] as number;
}

/** Low word of a 64-bit entry whose table is at `gfn`, or the 32-bit entry. */
export function entryLo(m: Machine, wide: boolean, gfn: number, idx: number): number {
  return word(m, gfn, wide ? 2 * idx : idx);
}

/** Low word of an 8-byte entry that points to physical address `pa` with `flags`. */
export function loOf(pa: number, flags: number): number {
  return ((pa % 0x100000000) & ~0xfff & 0xffffffff) | flags;
}
/** High word of an 8-byte entry pointing to `pa`. */
export function hiOf(pa: number, extra = 0): number {
  return (Math.floor(pa / 0x100000000) | extra) >>> 0;
}

export interface PagingOptions {
  cr3Lo: number;
  cr3Hi?: number;
  /** CR4.PSE (32-bit paging only). */
  pse?: boolean;
  nxe?: boolean;
  /** Extra CR4 bits to set before paging is enabled. */
  cr4?: number;
  /** Extra CR0 bits (e.g. WP) to set together with PG. */
  cr0?: number;
}

/**
 * Enable paging in `mode` the architectural way (SDM 9.8.5 / 4.1.2):
 * CR4 first, then EFER, then CR3, then CR0.PG. Throws if any step faults.
 */
export function enablePaging(cpu: Cpu, mode: ModeName, o: PagingOptions): void {
  const step = (what: string, r: number): void => {
    if (r !== OK) throw new Error(`enabling ${mode} paging: ${what} returned ${r}`);
  };
  let cr4 = o.cr4 ?? 0;
  if (mode === '32-bit') {
    if (o.pse) cr4 |= CR4_PSE;
  } else cr4 |= CR4_PAE;
  if (mode === '5-level') cr4 |= CR4_LA57;
  step('MOV CR4', cpu.writeCr4(0, cr4));
  let efer = o.nxe ? EFER_NXE : 0;
  if (mode === '4-level' || mode === '5-level') efer |= EFER_LME;
  step('WRMSR EFER', cpu.writeEfer(0, efer));
  step('MOV CR3', cpu.writeCr3(o.cr3Hi ?? 0, o.cr3Lo));
  step('MOV CR0', cpu.writeCr0(0, (cpu.cr0 | CR0_PG | (o.cr0 ?? 0)) >>> 0));
}

/** Shift of the VA index for `level` in `mode` (SDM figures 4-2, 4-5, 4-8, 4-9). */
export function levelShift(mode: ModeName, level: number): number {
  if (mode === '32-bit') return level === 1 ? 12 : 22;
  return 12 + 9 * (level - 1);
}

/** Linear address (hi, lo) from per-level indexes plus an in-page offset. */
export function vaFrom(mode: ModeName, indexes: Record<number, number>, offset: number): [number, number] {
  let hi = 0;
  let lo = 0;
  for (const [ls, ix] of Object.entries(indexes)) {
    const shift = levelShift(mode, Number(ls));
    const v = ix * 2 ** shift;
    hi += Math.floor(v / 0x100000000);
    lo += v % 0x100000000;
  }
  lo += offset;
  hi += Math.floor(lo / 0x100000000);
  lo %= 0x100000000;
  // Canonical sign extension (bit 47 or 56) is left to the caller.
  return [hi >>> 0, lo >>> 0];
}

export function hex(hi: number, lo: number): string {
  return `0x${hi.toString(16)}_${(lo >>> 0).toString(16).padStart(8, '0')}`;
}

/** Index into the table at `level` for linear address (hi, lo). */
export function indexAt(mode: ModeName, level: number, hi: number, lo: number): number {
  const shift = levelShift(mode, level);
  const mask = mode === '32-bit' ? 0x3ff : mode === 'pae' && level === 3 ? 3 : 0x1ff;
  const v = shift >= 32 ? hi >>> (shift - 32) : (lo >>> shift) | (hi << (32 - shift));
  return v & mask;
}

/** Top level of a mode (PAE: 3, the PDPT). */
export function topLevel(mode: ModeName): number {
  return mode === '32-bit' ? 2 : mode === 'pae' ? 3 : mode === '4-level' ? 4 : 5;
}

/** Where one entry of a mapping lives. */
export interface EntryRef {
  level: number;
  gfn: number;
  index: number;
}

export interface MapOptions {
  /** Level of the leaf: 1 (4 KiB), 2 (2 or 4 MiB, PS=1), 3 (1 GiB, PS=1). */
  leafLevel?: number;
  /** Flags of the leaf's low word (P is always added; PS added for large leaves). */
  leafFlags?: number;
  /** Extra bits of the leaf's high word (XD, protection key). */
  leafHi?: number;
  /** Flags of the non-leaf entries created (default P|RW|US). */
  tableFlags?: number;
}

/**
 * A minimal page-table builder over guest-physical memory, allocating table
 * frames upwards from `firstGfn`. For PAE the root frame holds the PDPT
 * (4 entries at offset 0; PDPTEs get P only, their other flags are reserved).
 */
export class Tables {
  readonly root: number;
  private nextGfn: number;
  readonly wide: boolean;

  constructor(
    readonly m: Machine,
    readonly mode: ModeName,
    firstGfn = 0x100,
  ) {
    this.wide = mode !== '32-bit';
    this.nextGfn = firstGfn;
    this.root = this.alloc();
  }

  alloc(): number {
    const g = this.nextGfn++;
    frame(this.m, g).fill(0);
    return g;
  }

  get cr3(): number {
    return this.root * 4096;
  }

  read(e: EntryRef): [number, number] {
    const f = this.m.d.guest.frameForRead(e.gfn);
    return this.wide ? [f[2 * e.index] as number, f[2 * e.index + 1] as number] : [f[e.index] as number, 0];
  }

  write(e: EntryRef, lo: number, hi = 0): void {
    if (this.wide) put64(this.m, e.gfn, e.index, lo, hi);
    else put32(this.m, e.gfn, e.index, lo);
  }

  /**
   * Map the page containing (vaHi, vaLo) to physical address `pa` (aligned to
   * the page size). Returns the entries used, top level first.
   */
  map(vaHi: number, vaLo: number, pa: number, o: MapOptions = {}): EntryRef[] {
    const leafLevel = o.leafLevel ?? 1;
    const tableFlags = o.tableFlags ?? P | RW | US;
    const refs: EntryRef[] = [];
    let gfn = this.root;
    for (let level = topLevel(this.mode); level >= leafLevel; level--) {
      const ref = { level, gfn, index: indexAt(this.mode, level, vaHi, vaLo) };
      refs.push(ref);
      if (level === leafLevel) {
        const flags = P | (o.leafFlags ?? RW | US) | (level > 1 ? PS : 0);
        if (this.wide) this.write(ref, loOf(pa, flags), hiOf(pa, o.leafHi ?? 0));
        else if (level === 2) {
          // 32-bit 4 MiB page (PSE-36): PA bits 39:32 go to PDE bits 20:13.
          const hiBits = Math.floor(pa / 0x100000000) & 0xff;
          this.write(ref, ((pa & 0xffc00000) | (hiBits << 13) | flags) >>> 0);
        } else this.write(ref, ((pa & ~0xfff) | flags) >>> 0);
        break;
      }
      const [lo, hi] = this.read(ref);
      let next: number;
      if ((lo & P) !== 0) {
        next = this.wide ? (hi & 0xfffff) * 0x100000 + (lo >>> 12) : lo >>> 12;
      } else {
        next = this.alloc();
        const flags = this.mode === 'pae' && level === 3 ? P : P | tableFlags;
        if (this.wide) this.write(ref, loOf(next * 4096, flags), hiOf(next * 4096));
        else this.write(ref, ((next << 12) | flags) >>> 0);
      }
      gfn = next;
    }
    return refs;
  }
}
