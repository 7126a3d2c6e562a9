/**
 * The kernel's self-checks: with verification on, every user read is
 * compared with what the process last wrote to that word (or zero for
 * anonymous memory, or the file's contents), and a leak count of frames.
 * They turn "the pager changed nothing the guest can see" and "teardown
 * frees everything" into exceptions rather than hopes.
 *
 * Rules: expectations are kept per address space, one per cache-line word
 * (vpn * LINES_PER_PAGE + line); they follow the data — copied by fork,
 * dropped by unmap, fresh on exec — and a mismatch throws at once.
 */
import { fileWord } from './pages.js';
import { ACCESS_FETCH, ACCESS_WRITE, LINES_PER_PAGE } from './state.js';
/** After a successful user access: remember a write, or check a read or fetch against the last write. */
export function verifyAccess(k, t, kind, va, value) {
    const exp = t.mm.expected;
    const key = Math.floor(va / 4096) * LINES_PER_PAGE + ((va & 4095) >>> 6);
    if (kind === ACCESS_WRITE) {
        exp.set(key, t.pid * 2 ** 32 + (value >>> 0));
        return;
    }
    const c = k.port.cpu;
    const got = kind === ACCESS_FETCH ? c.valueLo : c.valueHi * 2 ** 32 + c.valueLo;
    let want = exp.get(key);
    if (want === undefined) {
        const a = t.mm.find(va);
        want = a.file < 0 ? 0 : fileWord(a.file, a.pgoff + (va - a.start) / 4096, (va & 4095) >>> 6);
    }
    if (kind === ACCESS_FETCH)
        want = want % 256;
    if (got !== want) {
        throw new Error(`guest memory corrupted: pid ${t.pid} read ${got.toString(16)} at ${va.toString(16)}, expected ${want.toString(16)}`);
    }
}
/** Forget what was written to [start, end) of `mm` (it was unmapped). */
export function forgetRange(mm, start, end) {
    if (mm.expected === null)
        return;
    for (const key of mm.expected.keys()) {
        const va = Math.floor(key / LINES_PER_PAGE) * 4096;
        if (va >= start && va < end)
            mm.expected.delete(key);
    }
}
/** Frames the kernel holds beyond boot, the page cache and live processes (must be 0 when all exited). */
export function leakedFrames(k) {
    return k.frames.inUse - k.bootFrames - k.pageCache.size;
}
//# sourceMappingURL=verify.js.map