/**
 * User page frames beyond the allocator (Linux's struct page users): the
 * shared zero page, reference get/put that leaves it alone, the page cache
 * (file pages filled from "disk" by DMA on first use), copy_page into a new
 * frame, and what every file holds.
 *
 * Rules: the zero page and page-cache pages are never freed (leakedFrames
 * allows for them); the zero page is shared by everyone and never
 * reference counted; a file's contents are a pure function of (file, page,
 * line), so verification can say what any file-backed read must return.
 */

import { assertBacked, clearFrame, copyLines } from './kmem.js';
import { type KernelState, LINES_PER_PAGE } from './state.js';

/** Take a reference to a mapped user frame. */
export function getPage(k: KernelState, gfn: number): void {
  if (gfn !== k.zeroPage) k.frames.get(gfn);
}

/** Drop a reference to a mapped user frame. */
export function putPage(k: KernelState, gfn: number): void {
  if (gfn === k.zeroPage) return;
  k.frames.put(gfn, false);
}

/** The page-cache frame of (file, page), read from "disk" by DMA on a miss. */
export function pageCachePage(k: KernelState, file: number, page: number): number {
  let gfn = k.pageCache.get(file, page);
  if (gfn >= 0) return gfn;
  gfn = k.frames.alloc(false).gfn;
  assertBacked(k, gfn, 'page-cache fill');
  for (let line = 0; line < LINES_PER_PAGE; line++) {
    const w = fileWord(file, page, line);
    const gpa = gfn * 4096 + line * 64;
    k.port.pwrite(Math.floor(gpa / 2 ** 32), gpa >>> 0, 8, Math.floor(w / 2 ** 32), w >>> 0);
  }
  k.pageCache.set(file, page, gfn);
  k.counters.pageCacheFills++;
  return gfn;
}

/** A new frame for user data, cleared unless the allocator knows it is zero. */
export function allocZeroed(k: KernelState): number {
  const { gfn, clean } = k.frames.alloc(false);
  if (!clean) clearFrame(k, gfn, false);
  return gfn;
}

/** copy_page into a new frame. */
export function copyPage(k: KernelState, src: number): number {
  const { gfn } = k.frames.alloc(false);
  copyLines(k, src, gfn);
  return gfn;
}

/** The content of line `line` of page `page` of file `file`, as a number below 2^53. */
export function fileWord(file: number, page: number, line: number): number {
  let h = Math.imul(file + 1, 0x9e3779b1) ^ Math.imul(page + 1, 0x85ebca6b) ^ Math.imul(line + 1, 0xc2b2ae35);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  return (file & 0xffff) * 2 ** 32 + (h >>> 0);
}
