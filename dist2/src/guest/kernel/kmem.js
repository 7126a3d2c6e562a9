/**
 * The kernel's own operations on the machine: reads and writes of guest
 * physical memory through the direct map (physically, before paging is on),
 * the instruction fetch that marks each kernel entry, clear_page and
 * copy_page, and the check that each of them, and each control-register or
 * INVLPG operation, succeeded.
 *
 * Rules: the kernel never faults — any status but 0 from one of its own
 * operations is a kernel bug and throws; data pages are touched one 8-byte
 * word per cache line (LINES_PER_PAGE), page tables entry by entry.
 */
import { FAULT_GP, FAULT_PF } from '../../arch/x86/cpu.js';
import { ENTRY_SYSCALL, LINES_PER_PAGE } from './state.js';
export function bug(k, r, what) {
    const c = k.port.cpu;
    const why = r === FAULT_PF ? `#PF error ${c.faultError.toString(16)}` : r === FAULT_GP ? '#GP' : `status ${r}`;
    throw new Error(`guest kernel bug: ${what} took ${why}`);
}
/** Check the status of a control operation (CR or MSR write, INVLPG, INVPCID). */
export function ok(k, r, what) {
    if (r !== 0)
        bug(k, r, `write to ${what}`);
}
/** Scratch for kva's result: the address is used at once, so one pair serves every call. */
const va2 = [0, 0];
/** The kernel address of `gpa`: in the direct map, or the address itself before paging. */
function kva(k, gpa) {
    const l = k.layout;
    const ghi = Math.floor(gpa / 2 ** 32);
    const glo = gpa >>> 0;
    if (!k.pagingOn) {
        va2[0] = ghi;
        va2[1] = glo;
    }
    else {
        va2[0] = l.directHi + ghi;
        va2[1] = (l.directLo + glo) >>> 0;
    }
    return va2;
}
export function kread(k, gpa, size) {
    const hiLo = kva(k, gpa);
    const r = k.port.read(hiLo[0], hiLo[1], size, 0);
    if (r !== 0)
        bug(k, r, `kernel read of ${gpa.toString(16)}`);
}
export function kwrite(k, gpa, size, hi, lo) {
    const hiLo = kva(k, gpa);
    const r = k.port.write(hiLo[0], hiLo[1], size, hi, lo, 0);
    if (r !== 0)
        bug(k, r, `kernel write of ${gpa.toString(16)}`);
}
/** A kernel entry: the fetch of its entry point in kernel text. */
export function kfetch(k, entry) {
    const l = k.layout;
    const r = k.port.fetch(l.textHi, (l.textLo + entry) >>> 0, 0);
    if (r !== 0)
        bug(k, r, 'kernel instruction fetch');
}
/** Entry by a system call: counted per name. */
export function enterSyscall(k, name) {
    k.counters.syscalls[name] = (k.counters.syscalls[name] ?? 0) + 1;
    kfetch(k, ENTRY_SYSCALL);
}
/** clear_page: every entry for a table; one word per cache line for data (all the model ever writes). */
export function clearFrame(k, gfn, table) {
    const step = table ? k.layout.entrySize : 4096 / LINES_PER_PAGE;
    const size = table ? k.layout.entrySize : 8;
    for (let off = 0; off < 4096; off += step)
        kwrite(k, gfn * 4096 + off, size, 0, 0);
}
/** copy_page from frame `src` to `dst` (one word per cache line, through the direct map). */
export function copyLines(k, src, dst) {
    const c = k.port.cpu;
    for (let line = 0; line < LINES_PER_PAGE; line++) {
        kread(k, src * 4096 + line * 64, 8);
        kwrite(k, dst * 4096 + line * 64, 8, c.valueHi, c.valueLo);
    }
}
//# sourceMappingURL=kmem.js.map