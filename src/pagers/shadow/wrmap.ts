/**
 * Removing every writable shadow mapping of a guest frame, as Xen finds
 * them (sh_remove_write_access, shadow/common.c): Xen keeps no reverse map,
 * only the frame's count of writable mappings (its type count), so it
 * guesses where they are and searches when the guesses fail:
 *
 *  1. guesses (SHOPT_WRITABLE_HEURISTIC): where the guest OS most likely
 *     maps its page tables — a linear map at the faulting address, a direct
 *     map of all RAM at a known base — each looked up in the current vCPU's
 *     shadows (sh_guess_wrmap, shadow/multi.c);
 *  2. the l1 shadow where the last search found one (the vCPU's
 *     last_writeable_pte_smfn: a HIGHPTE kernel maps its tables through two
 *     fixmap slots);
 *  3. a brute-force scan of every l1 shadow, in hash-bucket order, until the
 *     count is zero (hash_foreach with sh_rm_write_access_from_l1). Each l1
 *     is counted as searched as in Xen; the entries the search would find
 *     are read from the writable reverse map, not from all 512.
 *
 * An out-of-sync page also keeps a fixup array (oos.ts): the last two shadow
 * slots that mapped it writable, removed first at its resync.
 *
 * With the rmap switch (Umbra's, not Xen's) the set's writable reverse map
 * finds every mapping at once instead.
 *
 * Rules this module keeps (the isolation checker tests them): after remove()
 * no shadow l1 entry maps the frame writable; every change goes through the
 * one writer (set.ts).
 */
import { PTE_P, PTE_PS } from '../../arch/x86/bits.js';
import type { Cpu } from '../../arch/x86/cpu.js';
import { entryFrame } from '../../arch/x86/entry.js';
import { vaIndex } from '../../arch/x86/walker.js';
import { isMagic } from './magic.js';
import type { ShadowSet } from './set.js';
import type { ShadowState } from './state.js';
import type { Shadow } from './types.js';

/** Xen's SHADOW_HASH_BUCKETS (shadow/common.c). */
export const HASH_BUCKETS = 251;

/**
 * Xen's sh_hash (shadow/common.c) of a frame number and shadow type: five
 * bytes of the frame (PADDR_BITS 52), mixed in 32-bit arithmetic.
 */
export function shHash(n: number, type: number): number {
  let k = type >>> 0;
  for (let i = 0; i < 5; i++, n = Math.floor(n / 256)) k = ((n % 256) + (k << 6) + (k << 16) - k) >>> 0;
  return k % HASH_BUCKETS;
}

/** Xen's shadow type of an l1 shadow (SH_type_l1_32/pae/64, fl1 one more; shadow/private.h): its hash input. */
function l1Type(sh: Shadow): number {
  const base = !sh.guestWide ? 1 : sh.fmt.mode.name === 'pae' ? 4 : 7;
  return sh.fl ? base + 1 : base;
}

/**
 * The shadow l1 slot (smfn * 1024 + index) the hardware would use for
 * (vaHi, vaLo) on `cpu`'s current shadows, or -1 if the path is not all
 * present (or ends in a superpage): the lookup of Xen's linear shadow map
 * (sh_guess_wrmap, sh_invlpg).
 */
export function hwL1Slot(st: ShadowState, cpu: Cpu, vaHi: number, vaLo: number): number {
  const m = cpu.mmu;
  const hw = m.format;
  // With paging off there is no guest linear map to look in (and with unpagedp2m no shadow at all).
  if (hw === null || cpu.format === null) return -1;
  const mode = hw.mode;
  const mem = st.domain.mem;
  let level = mode.topLevel;
  let table = m.rootPfn;
  if (m.pdpte !== null) {
    const i = vaLo >>> 30;
    const lo = m.pdpte[2 * i] as number;
    if ((lo & PTE_P) === 0) return -1;
    table = entryFrame(lo, m.pdpte[2 * i + 1] as number);
    level = 2;
  }
  for (;;) {
    const idx = vaIndex(vaHi, vaLo, mode.shift[level] as number, mode.indexMask[level] as number);
    if (level === 1) return table * 1024 + idx;
    const f = mem.read(table);
    const lo = f[2 * idx] as number;
    const hi = f[2 * idx + 1] as number;
    if ((lo & PTE_P) === 0 || (lo & PTE_PS) !== 0 || isMagic(lo, hi)) return -1;
    table = entryFrame(lo, hi);
    level--;
  }
}

/** 2^32, to build 64-bit addresses from halves. */
const TWO32 = 2 ** 32;

// The 4-level guesses' bases, as page numbers (a linear map's by the guest table level).
/** Windows' linear map at 0xfffff68000000000. */
const WIN_LINEAR = [0, 0xfffff68000000, 0xfffff6fb40000, 0xfffff6fb7da00];
/**
 * Linux's direct map at 0xffff880000000000 (older kernels: 0xffff810000000000,
 * 0x0000010000000000), Solaris' kpm at 0xfffffe0000000000.
 */
const DIRECT_MAPS = [0xffff880000000, 0xffff810000000, 0x0000010000000, 0xfffffe0000000];
/** FreeBSD's linear map at 0xffff800000000000 (its direct map at 0xffffff0000000000 is tried last). */
const BSD_LINEAR = [0, 0xffff800000000, 0xffff804000000, 0xffff804020000];

export class WriteAccess {
  /** Per vCPU: the l1 shadow (smfn) where a search last removed a writable mapping (-1: none). */
  private readonly lastSmfn: number[];

  constructor(
    private readonly st: ShadowState,
    private readonly set: ShadowSet,
  ) {
    this.lastSmfn = st.cpus.map(() => -1);
  }

  /** Shadow frame `smfn` was freed: no vCPU remembers it (shadow_free clears last_writeable_pte_smfn). */
  freed(smfn: number): void {
    for (let i = 0; i < this.lastSmfn.length; i++) if (this.lastSmfn[i] === smfn) this.lastSmfn[i] = -1;
  }

  /**
   * Remove every writable shadow mapping of `gfn`. `level` and the fault
   * address (st.fault) say why: the guest table level the frame was found at
   * on the current vCPU's fault path (0: another reason, no fault address).
   * True if a mapping was removed (the caller flushes TLBs).
   */
  remove(gfn: number, level: number): boolean {
    const st = this.st;
    const set = this.set;
    const c = st.counters;
    if (set.writableCount(gfn) === 0) return false;
    c.write_access_removals++;
    if (st.sw.rmap) {
      set.revokeWrite(gfn);
      return true;
    }
    const cpu = st.exitCpu;
    if (cpu !== null && this.guess(cpu, gfn, level)) return true;
    // The l1 shadow where the last search succeeded (Xen counts shadow_writeable_h_5).
    const last = cpu === null ? -1 : (this.lastSmfn[cpu.index] as number);
    if (last >= 0) {
      const sh = st.byMfn.get(last);
      if (sh !== undefined && sh.level === 1) {
        const before = set.writableCount(gfn);
        this.scan(sh, gfn);
        if (set.writableCount(gfn) !== before) c['wrmap.last_found']++;
        if (set.writableCount(gfn) === 0) return true;
      }
    }
    // Brute force: every l1 shadow, bucket by bucket, until none is left.
    c['wrmap.bruteforce']++;
    for (const sh of this.hashOrder()) {
      this.scan(sh, gfn);
      if (set.writableCount(gfn) === 0) break;
    }
    return true;
  }

  /**
   * Xen's guesses for the guest's paging mode (sh_remove_write_access): each
   * a lookup in the current shadows at an address where the guest likely
   * maps the frame. True once no writable mapping is left. Xen has no
   * guesses for 5-level guests (it does not shadow them).
   */
  private guess(cpu: Cpu, gfn: number, level: number): boolean {
    const fmt = cpu.format;
    if (fmt === null) return false;
    const st = this.st;
    // The fault address below 2^48 (Xen's VADDR_MASK), exact in a double; 0 without a fault.
    const v = st.faultValid ? (st.faultHi & 0xffff) * TWO32 + st.faultLo : 0;
    // Each guess is a page: a base's page plus the page of an offset (a
    // linear map's entry for v: v >> (12 + 9·(level−1)) entries of 8 bytes,
    // 4 for a 32-bit guest; a direct map's gfn).
    const at = (basePage: number, offsetPage: number): boolean => this.guessAt(cpu, gfn, basePage + offsetPage);
    const mode = fmt.mode.name;
    if (mode === '32-bit') {
      // Windows' linear map at 0xC0000000; Linux lowmem (first 896 MiB at
      // 0xC0000000); FreeBSD's linear map at 0xBFC00000.
      if (level === 1 && at(0xc0000, Math.floor(v / 2 ** 22))) return true;
      if (gfn < 0x38000 && at(0xc0000, gfn)) return true;
      if (level === 1 && at(0xbfc00, Math.floor(v / 2 ** 22))) return true;
    } else if (mode === 'pae') {
      if (level === 1 && at(0xc0000, Math.floor(v / 2 ** 21))) return true;
      if (level === 2 && at(0xc0600, Math.floor(v / 2 ** 30))) return true;
      if (gfn < 0x38000 && at(0xc0000, gfn)) return true;
      if (level === 1 && at(0xbf800, Math.floor(v / 2 ** 21))) return true;
      if (level === 2 && at(0xbfdfc, Math.floor(v / 2 ** 30))) return true;
    } else if (mode === '4-level') {
      const shift = 12 + 9 * level; // bytes of address space per page of entries at this level
      // Windows' linear map, the direct maps, FreeBSD's linear map and direct map.
      if (level >= 1 && level <= 3 && at(WIN_LINEAR[level] as number, Math.floor(v / 2 ** shift))) return true;
      for (const base of DIRECT_MAPS) if (at(base, gfn)) return true;
      if (level >= 1 && level <= 3 && at(BSD_LINEAR[level] as number, Math.floor(v / 2 ** shift))) return true;
      if (at(0xffffff0000000, gfn)) return true;
    }
    return false;
  }

  /**
   * One guess: if the current shadows map virtual page `page` (a 52-bit
   * page number) writable onto `gfn`, make it read-only. True once no
   * writable mapping of `gfn` is left.
   */
  private guessAt(cpu: Cpu, gfn: number, page: number): boolean {
    const st = this.st;
    st.counters['wrmap.guesses']++;
    const vaHi = Math.floor(page / 2 ** 20) >>> 0;
    const vaLo = ((page % 2 ** 20) * 4096) >>> 0;
    const slot = hwL1Slot(st, cpu, vaHi, vaLo);
    if (slot >= 0 && this.set.revokeSlot(slot, gfn)) st.counters['wrmap.guess_found']++;
    return this.set.writableCount(gfn) === 0;
  }

  /**
   * Make read-only every entry of l1 shadow `sh` mapping `gfn` writable, in
   * index order until none is left (sh_rm_write_access_from_l1). Counted as
   * Xen's search of the l1's entries; the reverse map says which they are.
   */
  private scan(sh: Shadow, gfn: number): void {
    const st = this.st;
    st.counters['wrmap.l1_scanned']++;
    const f = st.domain.mem.read(sh.smfn);
    for (const i of this.set.writableIn(gfn, sh.smfn)) {
      this.set.makeReadOnly(sh, i, f[2 * i] as number, f[2 * i + 1] as number);
      if (st.exitCpu !== null) this.lastSmfn[st.exitCpu.index] = sh.smfn;
      if (this.set.writableCount(gfn) === 0) return;
    }
  }

  /** hashOrder()'s working space, reused: the l1 shadows oldest first, their buckets, and where each bucket starts. */
  private readonly l1s: Shadow[] = [];
  private l1Bucket = new Int32Array(64);
  private readonly bucketStart = new Int32Array(HASH_BUCKETS + 1);
  private readonly order: Shadow[] = [];

  /**
   * The l1 and fl1 shadows in the order Xen's hash_foreach visits them: by
   * bucket, newest first within one (byMfn holds them oldest first). A
   * counting sort into a reused array: valid until the next call.
   */
  private hashOrder(): Shadow[] {
    const st = this.st;
    const placement = st.domain.placement;
    const l1s = this.l1s;
    const start = this.bucketStart;
    l1s.length = 0;
    start.fill(0);
    for (const sh of st.byMfn.values()) {
      if (sh.level !== 1) continue;
      // Xen hashes a guest table's shadow by its machine frame, an fl1 by its guest frame.
      const b = shHash(sh.fl ? sh.gfn : placement.mfnOf(sh.gfn), l1Type(sh));
      if (l1s.length === this.l1Bucket.length) {
        const grown = new Int32Array(2 * l1s.length);
        grown.set(this.l1Bucket);
        this.l1Bucket = grown;
      }
      this.l1Bucket[l1s.length] = b;
      l1s.push(sh);
      (start[b + 1] as number)++;
    }
    for (let b = 0; b < HASH_BUCKETS; b++) (start[b + 1] as number) += start[b] as number;
    // Newest first within a bucket: place from the newest down.
    const order = this.order;
    order.length = l1s.length;
    for (let i = l1s.length - 1; i >= 0; i--) {
      const b = this.l1Bucket[i] as number;
      order[(start[b] as number)++] = l1s[i] as Shadow;
    }
    return order;
  }
}
