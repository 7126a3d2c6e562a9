/**
 * The kernel's own operations on the machine: reads and writes of guest
 * physical memory through the direct map (physically, before paging is on),
 * the instruction fetch that marks each kernel entry, clear_page and
 * copy_page, and the check that each of them, and each control-register or
 * INVLPG operation, succeeded.
 *
 * Rules: the kernel never faults — any status but 0 from one of its own
 * operations is a kernel bug and throws; it never touches a frame it gave
 * to the balloon (assertBacked, checked on every read and write here and on
 * every mapping it makes); data pages are touched one 8-byte word per cache
 * line (LINES_PER_PAGE), page tables entry by entry.
 */

import { FAULT_GP, FAULT_PF } from '../../arch/x86/cpu.js';
import { ENTRY_SYSCALL, type KernelState, LINES_PER_PAGE } from './state.js';

export function bug(k: KernelState, r: number, what: string): never {
  const c = k.port.cpu;
  const why = r === FAULT_PF ? `#PF error ${c.faultError.toString(16)}` : r === FAULT_GP ? '#GP' : `status ${r}`;
  throw new Error(`guest kernel bug: ${what} took ${why}`);
}

/** Check the status of a control operation (CR or MSR write, INVLPG, INVPCID). */
export function ok(k: KernelState, r: number, what: string): void {
  if (r !== 0) bug(k, r, `write to ${what}`);
}

/** Scratch for kva's result: the address is used at once, so one pair serves every call. */
const va2: [number, number] = [0, 0];

/** The kernel address of `gpa`: in the direct map, or the address itself before paging. */
function kva(k: KernelState, gpa: number): [number, number] {
  const l = k.layout;
  const ghi = Math.floor(gpa / 2 ** 32);
  const glo = gpa >>> 0;
  if (!k.pagingOn) {
    va2[0] = ghi;
    va2[1] = glo;
  } else {
    va2[0] = l.directHi + ghi;
    va2[1] = (l.directLo + glo) >>> 0;
  }
  return va2;
}

/** The kernel is about to use guest frame `gfn`: it must not be one the balloon gave back. */
export function assertBacked(k: KernelState, gfn: number, what: string): void {
  if (k.frames.ballooned[gfn] === 1) {
    throw new Error(`guest kernel bug: ${what} of frame ${gfn.toString(16)}, which is ballooned out`);
  }
}

export function kread(k: KernelState, gpa: number, size: number): void {
  assertBacked(k, Math.floor(gpa / 4096), 'kernel read');
  const hiLo = kva(k, gpa);
  const r = k.port.read(hiLo[0], hiLo[1], size, 0);
  if (r !== 0) bug(k, r, `kernel read of ${gpa.toString(16)}`);
}

export function kwrite(k: KernelState, gpa: number, size: number, hi: number, lo: number): void {
  assertBacked(k, Math.floor(gpa / 4096), 'kernel write');
  const hiLo = kva(k, gpa);
  const r = k.port.write(hiLo[0], hiLo[1], size, hi, lo, 0);
  if (r !== 0) bug(k, r, `kernel write of ${gpa.toString(16)}`);
}

/** A kernel entry: the fetch of its entry point in kernel text. */
export function kfetch(k: KernelState, entry: number): void {
  const l = k.layout;
  const r = k.port.fetch(l.textHi, (l.textLo + entry) >>> 0, 0);
  if (r !== 0) bug(k, r, 'kernel instruction fetch');
}

/** Entry by a system call: counted per name. */
export function enterSyscall(k: KernelState, name: string): void {
  k.counters.syscalls[name] = (k.counters.syscalls[name] ?? 0) + 1;
  kfetch(k, ENTRY_SYSCALL);
}

/**
 * `count` kernel writes of (hi, lo) at `step`-byte strides from byte `off`
 * of frame `gfn`: one backing check and one direct-map address for the
 * frame (its words share both), then the writes in order.
 */
function kwriteFrame(k: KernelState, gfn: number, off: number, step: number, count: number, size: number): void {
  assertBacked(k, gfn, 'kernel write');
  const a = kva(k, gfn * 4096);
  const hi = a[0];
  const base = a[1];
  const p = k.port;
  for (let n = 0, o = off; n < count; n++, o += step) {
    const r = p.write(hi, (base + o) >>> 0, size, 0, 0, 0);
    if (r !== 0) bug(k, r, `kernel write of ${(gfn * 4096 + o).toString(16)}`);
  }
}

/** clear_page: every entry for a table; one word per cache line for data (all the model ever writes). */
export function clearFrame(k: KernelState, gfn: number, table: boolean): void {
  const step = table ? k.layout.entrySize : 4096 / LINES_PER_PAGE;
  kwriteFrame(k, gfn, 0, step, 4096 / step, table ? k.layout.entrySize : 8);
}

/** copy_page from frame `src` to `dst` (one word per cache line, through the direct map). */
export function copyLines(k: KernelState, src: number, dst: number): void {
  assertBacked(k, src, 'kernel read');
  assertBacked(k, dst, 'kernel write');
  const s = kva(k, src * 4096);
  const sHi = s[0];
  const sLo = s[1];
  const d = kva(k, dst * 4096);
  const dHi = d[0];
  const dLo = d[1];
  const p = k.port;
  const c = p.cpu;
  for (let line = 0; line < LINES_PER_PAGE; line++) {
    const off = line * 64;
    let r = p.read(sHi, (sLo + off) >>> 0, 8, 0);
    if (r !== 0) bug(k, r, `kernel read of ${(src * 4096 + off).toString(16)}`);
    r = p.write(dHi, (dLo + off) >>> 0, 8, c.valueHi, c.valueLo, 0);
    if (r !== 0) bug(k, r, `kernel write of ${(dst * 4096 + off).toString(16)}`);
  }
}
