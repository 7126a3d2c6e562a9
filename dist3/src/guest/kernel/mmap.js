/**
 * Areas of an address space (Linux's mm/mmap.c and mprotect.c): the
 * mmap, munmap, mprotect and brk system calls, top-down placement, and
 * unmapping — zap (clear entries, drop pages) and exit_mmap (tear a whole
 * address space down).
 *
 * Rules: areas change first, then entries, then the flush; pages come on
 * demand (nothing is mapped at mmap time); rights are only removed here (a
 * later write fault grants write and breaks COW); tables left empty are freed
 * before the flush; an address space is freed only once no CR3 reaches it.
 */
import { PTE_RW, XD_HI } from '../../arch/x86/bits.js';
import { FRAMES_PER_HUGE, OutOfMemory } from './frames.js';
import { enterSyscall } from './kmem.js';
import { PROT_R, PROT_W, PROT_X } from './mm.js';
import { putPage } from './pages.js';
import { forEachPresent, freeTables, lastEntry, readEntry, writeEntry } from './pgtable.js';
import { dropPcids, flush, onCpusRunning, switchMm } from './tlb.js';
import { forgetRange } from './verify.js';
/** Unmap [start, end) within one area: clear the entries and drop the pages. */
export function zap(k, mm, start, end) {
    forEachPresent(k, mm, start, end, (leaf, i) => {
        readEntry(k, leaf, i);
        const e = lastEntry(k);
        writeEntry(k, leaf, i, 0, 0);
        leaf.mark(i, false);
        putPage(k, e.gfn);
        mm.rss--;
    }, (node, i) => {
        const first = node.kids[i];
        writeEntry(k, node, i, 0, 0);
        node.kids[i] = null;
        node.used--;
        k.frames.putHuge(first);
        mm.rss -= FRAMES_PER_HUGE;
    });
    forgetRange(mm, start, end);
}
/**
 * exit_mmap: tear down every mapping and table of `mm` and free them. First
 * every vCPU still holding it in CR3 (the exiting one, or one that ran a
 * thread of it and kept it loaded, like Linux's lazy TLB mode) switches to
 * the kernel's own tables: a table must not be freed while a CR3 can reach it.
 */
export function destroyMm(k, mm) {
    onCpusRunning(k, mm, () => switchMm(k, k.initMm));
    for (const a of mm.vmas)
        zap(k, mm, a.start, a.end);
    mm.vmas = [];
    freeTables(k, mm, mm.root, 0, 0, Number.POSITIVE_INFINITY, true);
    dropPcids(k, mm);
}
/** Unmap [start, end) of `mm` whatever areas it holds, free emptied tables, flush. */
function unmapRange(k, mm, start, end) {
    for (const a of mm.carve(start, end))
        zap(k, mm, a.start, a.end);
    freeTables(k, mm, mm.root, 0, start, end, false);
    flush(k, mm, start, end);
}
/** mmap(): place an area top-down below the previous ones; pages come on demand. */
export function mmap(k, t, bytes, prot, file, pgoff, name) {
    enterSyscall(k, 'mmap');
    const mm = t.mm;
    const len = Math.ceil(bytes / 4096) * 4096;
    // Like Linux, transparent huge pages only where a 2 MiB page exists (x86-64 and PAE).
    const huge = k.opts.thp && k.layout.mode !== '32-bit' && file < 0 && len >= 2 * 2 ** 20;
    // Huge-eligible areas are 2 MiB aligned, as Linux's THP-aware placement does.
    const start = findGap(mm, len, huge ? 2 * 2 ** 20 : 4096);
    mm.insert({ start, end: start + len, prot, file, pgoff, growsDown: false, huge, name });
    return start;
}
/** unmapped_area_topdown: the highest gap below the mmap base that fits `len` at `align`. */
function findGap(mm, len, align) {
    let top = mm.mmapTop;
    for (let i = mm.vmas.length - 1; i >= 0; i--) {
        const a = mm.vmas[i];
        if (a.start >= top)
            continue;
        const start = Math.floor((top - len) / align) * align;
        if (start >= a.end)
            return start;
        top = Math.min(top, a.start);
    }
    const start = Math.floor((top - len) / align) * align;
    if (start < mm.brk + 2 ** 20)
        throw new OutOfMemory('out of virtual address space');
    return start;
}
/** munmap(): remove [start, start+bytes), free its pages and empty tables, flush. */
export function munmap(k, t, start, bytes) {
    enterSyscall(k, 'munmap');
    unmapRange(k, t.mm, start, start + Math.ceil(bytes / 4096) * 4096);
}
/** mprotect(): change the rights of [start, end) and rewrite present entries. */
export function mprotect(k, t, start, bytes, prot) {
    enterSyscall(k, 'mprotect');
    const mm = t.mm;
    const end = start + Math.ceil(bytes / 4096) * 4096;
    const pieces = mm.carve(start, end);
    let changed = false;
    // Only remove rights here; a later write fault grants write access (and breaks COW).
    const restrict = (node, i) => {
        readEntry(k, node, i);
        const e = lastEntry(k);
        const lo = (prot & PROT_W) === 0 ? (e.lo & ~PTE_RW) >>> 0 : e.lo;
        const hi = k.layout.nx && (prot & PROT_X) === 0 ? (e.hi | XD_HI) >>> 0 : (e.hi & ~XD_HI) >>> 0;
        if (lo !== e.lo || hi !== e.hi) {
            writeEntry(k, node, i, hi, lo);
            changed = true;
        }
    };
    for (const a of pieces) {
        a.prot = prot;
        mm.insert(a);
        forEachPresent(k, mm, a.start, a.end, restrict, restrict);
    }
    if (changed)
        flush(k, mm, start, end);
}
/** brk(): move the end of the heap; shrinking unmaps. */
export function brk(k, t, newEnd) {
    enterSyscall(k, 'brk');
    const mm = t.mm;
    const end = Math.ceil(newEnd / 4096) * 4096;
    const old = Math.ceil(mm.brk / 4096) * 4096;
    if (end > old) {
        const heap = mm.find(old - 1);
        if (heap !== undefined && heap.name === 'heap')
            heap.end = end;
        else
            mm.insert({
                start: old,
                end,
                prot: PROT_R | PROT_W,
                file: -1,
                pgoff: 0,
                growsDown: false,
                huge: false,
                name: 'heap',
            });
    }
    else if (end < old)
        unmapRange(k, mm, end, old);
    mm.brk = newEnd;
}
//# sourceMappingURL=mmap.js.map