/**
 * The kernel's self-checks: with verification on, every user read is
 * compared with what the process last wrote to that word (or zero for
 * anonymous memory, or the file's contents), and a leak count of frames.
 * They turn "the pager changed nothing the guest can see" and "teardown
 * frees everything" into exceptions rather than hopes; a third check says
 * the balloon holds only frames nobody uses.
 *
 * Rules: expectations are kept per address space, one per cache-line word
 * (vpn * LINES_PER_PAGE + line); they follow the data — copied by fork,
 * dropped by unmap, fresh on exec — and a mismatch throws at once.
 */

import { type Mm, TableNode, type Vma } from './mm.js';
import { fileWord } from './pages.js';
import { ACCESS_FETCH, ACCESS_WRITE, type Access, type KernelState, LINES_PER_PAGE, type Task } from './state.js';

/** After a successful user access: remember a write, or check a read or fetch against the last write. */
export function verifyAccess(k: KernelState, t: Task, kind: Access, va: number, value: number): void {
  const exp = t.mm.expected as Map<number, number>;
  const key = Math.floor(va / 4096) * LINES_PER_PAGE + ((va & 4095) >>> 6);
  if (kind === ACCESS_WRITE) {
    exp.set(key, t.pid * 2 ** 32 + (value >>> 0));
    return;
  }
  const c = k.port.cpu;
  const got = kind === ACCESS_FETCH ? c.valueLo : c.valueHi * 2 ** 32 + c.valueLo;
  let want = exp.get(key);
  if (want === undefined) {
    const a = t.mm.find(va) as Vma;
    want = a.file < 0 ? 0 : fileWord(a.file, a.pgoff + (va - a.start) / 4096, (va & 4095) >>> 6);
  }
  if (kind === ACCESS_FETCH) want = want % 256;
  if (got !== want) {
    throw new Error(
      `guest memory corrupted: pid ${t.pid} read ${got.toString(16)} at ${va.toString(16)}, expected ${want.toString(16)}`,
    );
  }
}

/** Forget what was written to [start, end) of `mm` (it was unmapped). */
export function forgetRange(mm: Mm, start: number, end: number): void {
  if (mm.expected === null) return;
  for (const key of mm.expected.keys()) {
    const va = Math.floor(key / LINES_PER_PAGE) * 4096;
    if (va >= start && va < end) mm.expected.delete(key);
  }
}

/** Frames the kernel holds beyond boot, the page cache and live processes (must be 0 when all exited). */
export function leakedFrames(k: KernelState): number {
  return k.frames.inUse - k.bootFrames - k.pageCache.size;
}

/**
 * The balloon's frames are out of every use: each is marked ballooned,
 * held once, referenced by no one, on no free list, neither the zero page
 * nor a page-cache page nor a page table of any live address space (or of
 * the kernel's own), and the allocator's count agrees. Throws on the first
 * frame that is not.
 */
export function checkBalloon(k: KernelState): void {
  const b = k.balloon;
  if (b === null) return;
  const f = k.frames;
  if (f.balloonedFrames !== b.held.length) {
    throw new Error(
      `balloon: the allocator counts ${f.balloonedFrames} ballooned frames, the balloon holds ${b.held.length}`,
    );
  }
  const inUse = new Set<number>([k.zeroPage, ...k.pageCache.frames(), ...f.freeListed()]);
  const mms = new Set<Mm>([k.initMm]);
  for (const t of k.tasks) mms.add(t.mm);
  for (const mm of mms) tableFrames(mm.root, inUse);
  const seen = new Set<number>();
  for (const gfn of b.held) {
    const why =
      f.ballooned[gfn] !== 1
        ? 'is not marked ballooned'
        : seen.has(gfn)
          ? 'is held twice'
          : f.refs[gfn] !== 0
            ? `has ${f.refs[gfn]} references`
            : inUse.has(gfn)
              ? 'is in use (free list, zero page, page cache or page table)'
              : '';
    if (why !== '') throw new Error(`balloon: frame ${gfn.toString(16)} ${why}`);
    seen.add(gfn);
  }
}

function tableFrames(t: TableNode, out: Set<number>): void {
  out.add(t.gfn);
  if (t.kids === null) return;
  for (const c of t.kids) if (c instanceof TableNode) tableFrames(c, out);
}
