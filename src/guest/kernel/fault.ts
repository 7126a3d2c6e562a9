/**
 * User accesses and the page-fault handler (Linux's do_user_addr_fault and
 * handle_mm_fault): an access that faults enters the kernel with CR2 and the
 * error code, the handler finds the area (or grows the stack), checks the
 * access against the area's rights and resolves it — demand zero, the shared
 * zero page, a page-cache page, copy-on-write (or reuse by the sole owner),
 * a transparent huge page — or kills the task (SIGSEGV); the access is then
 * retried.
 *
 * The kernel's own writes to user memory (copy_to_user) fault into the same
 * handler with U/S = 0; where a user access would be SIGSEGV, they fail
 * with EFAULT instead.
 *
 * Rules: new entries are made with A set (and D for a write), as mk_pte
 * does; every replaced entry is flushed before the retry; a reserved-bit
 * fault or a fault loop is a kernel bug, not a signal; EFLAGS.AC is set only
 * inside copyToUser (SMAP guards every other kernel access to user pages).
 */

import { PF_ID, PF_P, PF_RSVD, PF_U, PF_W, PTE_A, PTE_D, PTE_P, PTE_PS, PTE_RW } from '../../arch/x86/bits.js';
import { FAULT_PF } from '../../arch/x86/cpu.js';
import { FRAMES_PER_HUGE, OutOfMemory } from './frames.js';
import { bug, clearFrame, copyLines, kfetch, ok } from './kmem.js';
import { spanOf } from './layout.js';
import { type Mm, PROT_R, PROT_W, PROT_X, TableNode, type Vma } from './mm.js';
import { allocZeroed, copyPage, pageCachePage, putPage } from './pages.js';
import {
  lastEntry,
  leafFor,
  leafIndex,
  makeEntry,
  readEntry,
  setPte,
  tableAt,
  userFlags,
  writeEntry,
} from './pgtable.js';
import { ACCESS_READ, ACCESS_WRITE, type Access, ENTRY_PAGE_FAULT, type KernelState, type Task } from './state.js';
import { flush } from './tlb.js';
import { verifyAccess } from './verify.js';

/** Linux's stack limit (RLIMIT_STACK) and stack guard gap in pages. */
const STACK_LIMIT = 8 * 2 ** 20;
const STACK_GUARD_PAGES = 256;

/**
 * A user-mode access by `t` (its vCPU must be current). Faults go to the
 * kernel's handler and the access is retried; returns false if the task
 * was killed instead (SIGSEGV).
 */
export function access(k: KernelState, t: Task, kind: Access, va: number, value: number): boolean {
  if (t.killed) return false;
  k.counters.userAccesses++;
  const p = k.port;
  const hi = Math.floor(va / 2 ** 32);
  const lo = va >>> 0;
  for (let tries = 0; ; tries++) {
    const r =
      kind === ACCESS_READ
        ? p.read(hi, lo, 8, 3)
        : kind === ACCESS_WRITE
          ? p.write(hi, lo, 8, t.pid, value >>> 0, 3)
          : p.fetch(hi, lo, 3);
    if (r === 0) {
      if (t.mm.expected !== null) verifyAccess(k, t, kind, va, value);
      return true;
    }
    if (r !== FAULT_PF) bug(k, r, `user access at ${va.toString(16)}`);
    if (tries === 4) throw new Error(`guest kernel bug: fault loop at ${va.toString(16)} (error ${p.cpu.faultError})`);
    if (!pageFault(k, t, va, p.cpu.faultError)) {
      k.counters.faultSegv++;
      k.counters.kills++;
      t.killed = true;
      return false;
    }
  }
}

/**
 * copy_to_user (Linux's raw_copy_to_user between stac and clac): the kernel
 * writes the user range [va, va + bytes) of `t` for a system call such as
 * read(), one word per page (the first line the range covers in it), at
 * CPL 0 with EFLAGS.AC set so that SMAP lets it touch user pages. A fault
 * goes to the same handler as a user one (do_user_addr_fault with U/S = 0):
 * a write fault allocates or copies the page, and the write is retried.
 * Returns false where the task has no writable mapping (the call fails with
 * EFAULT; the task is not killed).
 */
export function copyToUser(k: KernelState, t: Task, va: number, bytes: number, value: number): boolean {
  const p = k.port;
  ok(k, p.setac(1), 'EFLAGS.AC (stac)');
  let done = true;
  const end = va + bytes;
  for (let at = va; at < end && done; at = (Math.floor(at / 4096) + 1) * 4096) {
    const line = Math.floor(at / 64) * 64;
    const hi = Math.floor(line / 2 ** 32);
    const lo = line >>> 0;
    for (let tries = 0; ; tries++) {
      const r = p.write(hi, lo, 8, t.pid, value >>> 0, 0);
      if (r === 0) {
        k.counters.copyToUserPages++;
        if (t.mm.expected !== null) verifyAccess(k, t, ACCESS_WRITE, line, value);
        break;
      }
      if (r !== FAULT_PF) bug(k, r, `copy_to_user at ${line.toString(16)}`);
      if (tries === 4) throw new Error(`guest kernel bug: fault loop in copy_to_user at ${line.toString(16)}`);
      if (!pageFault(k, t, line, p.cpu.faultError)) {
        k.counters.copyToUserFaults++;
        done = false;
        break;
      }
    }
  }
  ok(k, p.setac(0), 'EFLAGS.AC (clac)');
  return done;
}

/**
 * do_page_fault for a user- or kernel-mode fault on a user address: returns
 * true if the access may be retried, false for SIGSEGV (user) or EFAULT
 * (kernel). A kernel-mode fault is also counted apart, with what it did.
 */
function pageFault(k: KernelState, t: Task, va: number, error: number): boolean {
  if ((error & PF_U) !== 0) return handleFault(k, t, va, error);
  const c = k.counters;
  c.faultKernel++;
  if ((error & PF_W) !== 0) c.faultKernelWrite++;
  const present = c.faultCow + c.faultCowReuse - c.faultCowFile;
  const r = handleFault(k, t, va, error);
  c.faultKernelCow += c.faultCow + c.faultCowReuse - c.faultCowFile - present;
  return r;
}

function handleFault(k: KernelState, t: Task, va: number, error: number): boolean {
  k.counters.pageFaults++;
  kfetch(k, ENTRY_PAGE_FAULT);
  if ((error & PF_RSVD) !== 0) throw new Error(`guest kernel bug: reserved-bit fault at ${va.toString(16)}`);
  const mm = t.mm;
  let a = mm.find(va);
  if (a === undefined) {
    a = growStack(k, mm, va);
    if (a === undefined) return false;
  }
  const write = (error & PF_W) !== 0;
  const fetch = (error & PF_ID) !== 0;
  if (write) k.counters.faultWrite++;
  if (fetch) k.counters.faultFetch++;
  if (write && (a.prot & PROT_W) === 0) return false;
  if (fetch && (a.prot & PROT_X) === 0) return false;
  if (!write && !fetch && (a.prot & PROT_R) === 0) return false;
  if (a.huge && hugeFault(k, mm, a, va, write)) return true;
  const leaf = leafFor(k, mm, va, true);
  if (leaf === null) return hugeFault(k, mm, a, va, write);
  const i = leafIndex(k, va);
  readEntry(k, leaf, i);
  const e = lastEntry(k);
  const page = Math.floor(va / 4096) * 4096;
  if ((e.lo & PTE_P) === 0) {
    faultIn(k, mm, a, leaf, page, write);
    return true;
  }
  if (write && (e.lo & PTE_RW) === 0) {
    wpFault(k, mm, a, leaf, page, e);
    return true;
  }
  // The entry already allows the access: a stale TLB entry (spurious fault).
  k.counters.faultSpurious++;
  if ((error & PF_P) !== 0) ok(k, k.port.invlpg(Math.floor(page / 2 ** 32), page >>> 0), 'INVLPG');
  return true;
}

/** expand_stack: a fault just below a grows-down area extends it, up to the stack limit. */
function growStack(k: KernelState, mm: Mm, va: number): Vma | undefined {
  const s = mm.next(va);
  if (s === undefined || !s.growsDown) return undefined;
  const page = Math.floor(va / 4096) * 4096;
  if (s.end - page > STACK_LIMIT) return undefined;
  const prev = mm.vmas[mm.vmas.indexOf(s) - 1];
  if (prev !== undefined && prev.end > page - STACK_GUARD_PAGES * 4096) return undefined;
  s.start = page;
  k.counters.faultStackGrowth++;
  return s;
}

/** A not-present page: demand zero, the shared zero page, or a page-cache page. */
function faultIn(k: KernelState, mm: Mm, a: Vma, leaf: TableNode, page: number, write: boolean): void {
  mm.rss++;
  if (a.file >= 0) {
    const pgoff = a.pgoff + (page - a.start) / 4096;
    // do_read_fault maps the cached neighbours first (fault-around), then the page itself.
    if (!write) faultAround(k, mm, a, leaf, page);
    if (!k.pageCache.has(a.file, pgoff)) readAround(k, a, pgoff);
    const pg = pageCachePage(k, a.file, pgoff);
    if (write) {
      // Private file mapping: the first write copies the page.
      const copy = copyPage(k, pg);
      setPte(k, leaf, page, copy, userFlags(k, a, true, true));
      k.counters.faultCow++;
      k.counters.faultCowFile++;
      a.anon = true;
      return;
    }
    k.frames.get(pg);
    setPte(k, leaf, page, pg, userFlags(k, a, false, false));
    k.counters.faultFile++;
    return;
  }
  if (!write) {
    setPte(k, leaf, page, k.zeroPage, userFlags(k, a, false, false));
    k.counters.faultZeroPage++;
    return;
  }
  setPte(k, leaf, page, allocZeroed(k), userFlags(k, a, true, true));
  k.counters.faultDemandZero++;
}

/**
 * mmap read-around on a page-cache miss (Linux's do_sync_mmap_readahead in
 * mm/filemap.c): the file's pages in a window of ra_pages (32, i.e.
 * VM_READAHEAD_PAGES = 128 KiB) starting half a window before the missing
 * page are read into the page cache, clamped here to the part of the file
 * the area maps (the model knows no file sizes). Nothing is mapped: the
 * next faults nearby find them for fault-around.
 */
function readAround(k: KernelState, a: Vma, pgoff: number): void {
  const ra = k.opts.readahead ?? 32;
  if (ra <= 1) return;
  const start = Math.max(a.pgoff, pgoff - Math.floor(ra / 2));
  const end = Math.min(a.pgoff + (a.end - a.start) / 4096, start + ra);
  for (let p = start; p < end; p++) {
    if (p === pgoff || k.pageCache.has(a.file, p)) continue;
    pageCachePage(k, a.file, p);
    k.counters.readaheadPages++;
  }
}

/**
 * Fault-around (Linux's do_fault_around in mm/memory.c, fault_around_bytes =
 * 64 KiB): on a read fault on a file mapping, first map the other pages of
 * the 16-page window around it (aligned, then clamped to the area and to the
 * faulting page's leaf table) that are not mapped yet, read-only — those the
 * page cache already holds, as filemap_map_pages maps only up-to-date cached
 * pages and starts no I/O (readAround brings pages in on a miss); with a warm
 * page cache every page of the window is cached. Nothing to flush: the
 * entries were not present.
 */
function faultAround(k: KernelState, mm: Mm, a: Vma, leaf: TableNode, page: number): void {
  const n = k.opts.faultAround ?? 16;
  if (n <= 1) return;
  const per = k.entries[k.entries.length - 1] as number;
  const pteOff = leafIndex(k, page);
  const vmaOff = (page - a.start) / 4096;
  const from = Math.max(Math.floor(pteOff / n) * n, pteOff - Math.min(pteOff, vmaOff));
  const to = Math.min(from + n, per, pteOff + (a.end - a.start) / 4096 - vmaOff);
  const f = userFlags(k, a, false, false);
  for (let i = from; i < to; i++) {
    if (i === pteOff) continue;
    readEntry(k, leaf, i);
    if ((lastEntry(k).lo & PTE_P) !== 0) continue;
    const va = page + (i - pteOff) * 4096;
    const pgoff = a.pgoff + (va - a.start) / 4096;
    const pg = k.warmPageCache ? pageCachePage(k, a.file, pgoff) : k.pageCache.get(a.file, pgoff);
    if (pg < 0) continue;
    k.frames.get(pg);
    setPte(k, leaf, va, pg, f);
    mm.rss++;
    k.counters.faultAroundPages++;
  }
}

/** A write to a present read-only page of a writable area: copy-on-write (or reuse if sole owner). */
function wpFault(
  k: KernelState,
  mm: Mm,
  a: Vma,
  leaf: TableNode,
  page: number,
  e: { gfn: number; lo: number; hi: number },
): void {
  // The zero page and page-cache pages always have other holders.
  const shared = e.gfn === k.zeroPage || (k.frames.refs[e.gfn] as number) > 1;
  const i = leafIndex(k, page);
  if (!shared) {
    writeEntry(k, leaf, i, e.hi, (e.lo | PTE_RW | PTE_D | PTE_A) >>> 0);
    k.counters.faultCowReuse++;
  } else {
    let gfn: number;
    if (e.gfn === k.zeroPage) gfn = allocZeroed(k);
    else {
      gfn = copyPage(k, e.gfn);
      putPage(k, e.gfn);
    }
    setPte(k, leaf, page, gfn, userFlags(k, a, true, true));
    k.counters.faultCow++;
    if (a.file >= 0) a.anon = true;
  }
  flush(k, mm, page, page + 4096);
}

/** A fault in a huge-page area: map a 2 MiB page if the whole block fits the area; false to fall back. */
function hugeFault(k: KernelState, mm: Mm, a: Vma, va: number, write: boolean): boolean {
  const l = k.layout;
  const level = l.indexBits.length - 2;
  const span = spanOf(l, level);
  const base = Math.floor(va / span) * span;
  if (base < a.start || base + span > a.end) return false;
  const node = tableAt(k, mm, va, level);
  if (node === null) return false;
  const kids = node.kids as Array<TableNode | number | null>;
  const i = Math.floor(va / span) % (k.entries[level] as number);
  const c = kids[i];
  if (c instanceof TableNode) return false;
  const f = userFlags(k, a, true, true);
  if (typeof c === 'number') {
    // Present huge page: a write to a shared one copies it; otherwise the entry already allows it.
    readEntry(k, node, i);
    const e = lastEntry(k);
    if (!write || (e.lo & PTE_RW) !== 0) {
      k.counters.faultSpurious++;
      ok(k, k.port.invlpg(Math.floor(va / 2 ** 32), va >>> 0), 'INVLPG');
      return true;
    }
    let first = c;
    if (k.frames.hugeShared(c)) {
      first = k.frames.allocHuge();
      if (first < 0) throw new OutOfMemory('out of huge pages');
      for (let p = 0; p < FRAMES_PER_HUGE; p++) copyLines(k, c + p, first + p);
      k.frames.putHuge(c);
      kids[i] = first;
    }
    const [hi, lo] = makeEntry(k, first, f[0] | PTE_PS, f[1]);
    writeEntry(k, node, i, hi, lo);
    k.counters.faultCow++;
    flush(k, mm, base, base + span);
    return true;
  }
  const first = k.frames.allocHuge();
  if (first < 0) return false;
  for (let p = 0; p < FRAMES_PER_HUGE; p++) clearFrame(k, first + p, false);
  const [hi, lo] = makeEntry(k, first, f[0] | PTE_PS, f[1]);
  writeEntry(k, node, i, hi, lo);
  kids[i] = first;
  node.used++;
  mm.rss += FRAMES_PER_HUGE;
  k.counters.faultHuge++;
  return true;
}
