/**
 * Boot (Linux's start_kernel and the x86 head code, much shortened): with
 * paging off, build the kernel's tables in RAM — the global large-page
 * direct map of all RAM and, in long mode, the kernel text mapping — set
 * aside the zero page, then enable paging on every vCPU in the order the
 * architecture requires (CR4.PAE/PSE/LA57, EFER, CR3, CR0.PG|WP, then
 * CR4.PGE|SMEP|SMAP|PCIDE).
 *
 * Rules: boot runs once, before any task; its tables and the zero page are
 * never freed (KernelState.bootFrames); the kernel half of the top table is
 * recorded once here and copied unchanged into every address space.
 */

import {
  CR0_ET,
  CR0_PE,
  CR0_PG,
  CR0_WP,
  CR4_LA57,
  CR4_PAE,
  CR4_PCIDE,
  CR4_PGE,
  CR4_PSE,
  CR4_SMAP,
  CR4_SMEP,
  EFER_LME,
  EFER_NXE,
  PTE_A,
  PTE_D,
  PTE_G,
  PTE_P,
  PTE_PS,
  PTE_RW,
  XD_HI,
} from '../../arch/x86/bits.js';
import { ok } from './kmem.js';
import { spanOf } from './layout.js';
import { Mm, TableNode } from './mm.js';
import { makeEntry, newTable, tableFlags, writeEntry } from './pgtable.js';
import { DYN_PCIDS, type KernelState } from './state.js';

/** init_mm and the idle state of every vCPU, before boot: paging is still off. */
export function initKernel(k: KernelState): void {
  k.initMm = new Mm(newTable(k, 0), k.layout.mmapBase);
  for (let v = 0; v < k.port.cpus.length; v++) {
    k.vcpus.push({
      current: null,
      switchedOut: false,
      loadedMm: k.initMm,
      pcidMm: new Array(DYN_PCIDS).fill(null),
      pcidGen: new Array(DYN_PCIDS).fill(0),
      nextPcid: 0,
      queue: [],
    });
  }
}

/** Build the kernel's tables with paging off, then turn paging on in every vCPU. */
export function boot(k: KernelState): void {
  const l = k.layout;
  const p = k.port;
  const ram = p.machine.memory;
  const root = k.initMm.root;
  const bigPage = PTE_P | PTE_RW | PTE_A | PTE_D | PTE_PS | PTE_G;
  // Direct map: large pages at directLevel, global, no execute (except the kernel image on 32-bit).
  const span = spanOf(l, l.directLevel);
  const dmNode = kernelPath(k, root, l.directHi, l.directLo, l.directLevel);
  const first = kindex(k, l.directHi, l.directLo, l.directLevel);
  for (let i = 0; i * span < ram; i++) {
    const gpa = i * span;
    const inImage = !l.long && gpa < l.textGpa + 16 * 2 ** 20 && gpa + span > l.textGpa;
    const [hi, lo] = makeEntry(k, gpa / 4096, bigPage, l.nx && !inImage ? XD_HI : 0);
    writeEntry(k, dmNode, first + i, hi, lo);
    (dmNode.kids as Array<TableNode | number | null>)[first + i] = gpa / 4096;
  }
  if (l.long) {
    // Kernel text: 16 MiB of 2 MiB global read-only executable pages.
    const pd = kernelPath(k, root, l.textHi, l.textLo, l.indexBits.length - 2);
    const base = kindex(k, l.textHi, l.textLo, l.indexBits.length - 2);
    for (let i = 0; i < 8; i++) {
      const [hi, lo] = makeEntry(k, l.textGpa / 4096 + i * 512, PTE_P | PTE_A | PTE_PS | PTE_G, 0);
      writeEntry(k, pd, base + i, hi, lo);
      (pd.kids as Array<TableNode | number | null>)[base + i] = l.textGpa / 4096 + i * 512;
    }
  }
  // Remember the kernel half of the top table, to copy into every process.
  const kids = root.kids as Array<TableNode | number | null>;
  for (let i = l.kernelFirstTop; i < kids.length; i++) {
    const c = kids[i];
    if (c instanceof TableNode) k.kernelTop.push([i, ...makeEntry(k, c.gfn, tableFlags(k, 0, false), 0)]);
    else if (typeof c === 'number') k.kernelTop.push([i, ...makeEntry(k, c, bigPage, 0)]); // 32-bit direct map: no NX
  }
  k.zeroPage = k.frames.alloc(true).gfn;
  k.bootFrames = k.frames.inUse;
  for (let v = 0; v < p.cpus.length; v++) {
    if (v !== 0) p.selectCpu(v);
    enablePaging(k);
  }
  if (p.cpus.length > 1) p.selectCpu(0);
}

function enablePaging(k: KernelState): void {
  const l = k.layout;
  const p = k.port;
  const cr4 = (l.pae ? CR4_PAE : CR4_PSE) | (l.la57 ? CR4_LA57 : 0);
  ok(k, p.wrcr(4, 0, cr4), 'CR4');
  if (l.nx || l.long) ok(k, p.wrmsrEfer(0, (l.long ? EFER_LME : 0) | (l.nx ? EFER_NXE : 0)), 'EFER');
  ok(k, p.wrcr(3, 0, k.initMm.root.gfn * 4096), 'CR3');
  ok(k, p.wrcr(0, 0, (CR0_PG | CR0_WP | CR0_ET | CR0_PE) >>> 0), 'CR0');
  k.pagingOn = true;
  const more = CR4_PGE | CR4_SMEP | CR4_SMAP | (k.usePcid ? CR4_PCIDE : 0);
  ok(k, p.wrcr(4, 0, cr4 | more), 'CR4');
}

/** Index of a kernel address (hi, lo) at `level`. */
function kindex(k: KernelState, hi: number, lo: number, level: number): number {
  const l = k.layout;
  let shift = 12;
  for (let i = level + 1; i < l.indexBits.length; i++) shift += l.indexBits[i] as number;
  const mask = 2 ** (l.indexBits[level] as number) - 1;
  if (shift >= 32) return (hi >>> (shift - 32)) & mask;
  return ((lo >>> shift) | (shift === 0 ? 0 : hi << (32 - shift))) & mask;
}

/** The table at `level` for a kernel address, creating tables above it. */
function kernelPath(k: KernelState, root: TableNode, hi: number, lo: number, level: number): TableNode {
  let t = root;
  for (let lv = 0; lv < level; lv++) {
    const i = kindex(k, hi, lo, lv);
    const kids = t.kids as Array<TableNode | number | null>;
    let c = kids[i];
    if (!(c instanceof TableNode)) {
      c = newTable(k, lv + 1);
      kids[i] = c;
      const [eh, el] = makeEntry(k, c.gfn, tableFlags(k, lv, false), 0);
      writeEntry(k, t, i, eh, el);
    }
    t = c;
  }
  return t;
}
