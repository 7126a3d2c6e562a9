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
import { Descent, MAX_LEAVES } from './tree.js';
const lvl = (shift, large, maskHi, maskLo) => ({
    shift,
    large,
    maskHi,
    maskLo,
});
const TABLE = lvl(0, false, 0, 0);
const LA_HI = 0x3ffff; // bits 49:32 of 0x3fffffffff000 and QEMU's la48 leaf masks
function qemuPaging(r) {
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
const FLAGS = Array.from({ length: 512 }, (_, i) => 'XGPDACTUW'
    .split('')
    .map((c, k) => ((i >>> (8 - k)) & 1 ? c : '-'))
    .join(''));
/** Buffers output lines and hands them on in large chunks. */
class Lines {
    out;
    limit;
    descent;
    buf = [];
    count = 0;
    constructor(out, limit, descent) {
        this.out = out;
        this.limit = limit;
        this.descent = descent;
    }
    push(s) {
        this.buf.push(s);
        if (++this.count > this.limit)
            throw this.descent.tooMuch(`more than ${this.limit} lines`);
        if (this.buf.length >= 8192)
            this.flush();
    }
    flush() {
        if (this.buf.length > 0)
            this.out(this.buf.join(''));
        this.buf = [];
    }
}
function traverse(space, p, cr3, visit, and, descent) {
    const cr3Lo = Number(cr3 & 0xffffffffn);
    const descend = (pfn, off, count, level, vaBase, acc) => {
        descent.enter(pfn);
        const words = space.isRam(pfn) ? space.frameForRead(pfn) : ZERO_FRAME;
        const L = p.levels[level];
        const span = 2 ** L.shift;
        for (let i = 0; i < count; i++) {
            const lo = (p.wide ? words[off + 2 * i] : words[off + i]);
            const hi = p.wide ? words[off + 2 * i + 1] : 0;
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
    }
    else {
        const pfn = p.wide ? Number((cr3 >> 12n) & 0x3fffffffffn) : cr3Lo >>> 12;
        descend(pfn, 0, p.wide ? 512 : 1024, p.top, 0, -1);
    }
}
/** HMP `info tlb` for these registers, written through `out` in chunks. */
export function qemuInfoTlb(space, r, out, limit = MAX_LEAVES) {
    if ((r.cr0 & CR0_PG) === 0) {
        out('PG disabled\n');
        return;
    }
    const p = qemuPaging(r);
    const descent = new Descent();
    const lines = new Lines(out, limit, descent);
    traverse(space, p, r.cr3, (level, va, lo, hi, leaf) => {
        if (!leaf)
            return;
        const L = p.levels[level];
        const e = level === 1 ? lo & ~0x80 : lo; // QEMU clears PAT of 4 KiB PTEs
        const flags = FLAGS[((hi >>> 31) << 8) | ((e >>> 1) & 0xff)];
        lines.push(`${canonicalHex(va, p.signBit)}: ${hex16(hi & L.maskHi, e & L.maskLo)} ${flags}\n`);
    }, (_level, acc) => acc, descent);
    lines.flush();
}
/** HMP `info mem` for these registers (5-level: corrected, see above). */
export function qemuInfoMem(space, r, out, limit = MAX_LEAVES) {
    if ((r.cr0 & CR0_PG) === 0) {
        out('PG disabled\n');
        return;
    }
    const p = qemuPaging(r);
    const descent = new Descent();
    const lines = new Lines(out, limit, descent);
    const c = (x) => canonicalHex(x, p.signBit);
    let start = -1;
    let last = 0;
    // mem_print: a range ends where the rights change.
    const print = (end, prot) => {
        if (prot === last)
            return;
        if (start !== -1)
            lines.push(`${c(start)}-${c(end)} ${c(end - start)} ${last & 4 ? 'u' : '-'}r${last & 2 ? 'w' : '-'}\n`);
        start = prot !== 0 ? end : -1;
        last = prot;
    };
    const and = (level, acc, lo) => (p.pdpt && level === 3 ? acc : acc & lo);
    traverse(space, p, r.cr3, (_level, va, lo, _hi, leaf, acc) => print(va, leaf ? lo & acc & 7 : 0), and, descent);
    print(p.end, 0);
    lines.flush();
}
//# sourceMappingURL=qemu.js.map