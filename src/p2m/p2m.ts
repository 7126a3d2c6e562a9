/**
 * The P2M: a domain's guest-physical -> machine map, kept as a real 4-level
 * x86 page table in hypervisor-owned machine frames, indexed by GPA as a page
 * table is by VA, and read with the same walker as every other table. Because
 * it *is* a page table, the hardware can run a guest whose paging is off on
 * it directly (VA = GPA) — Umbra's choice: Xen under shadow runs such a guest
 * on shadows of a 1:1 table (unpaged_pagetable, since 3.2; docs/p2m.md).
 *
 * Entry format (docs/p2m.md): an ordinary 4-level entry whose frame is the
 * mfn; P, R/W and U/S are what the hardware may do (U/S=1 so any CPL can use
 * the identity map); bits 52-58, ignored by the hardware, hold the p2m type
 * with Xen's numbering (p2m_type_to_flags in xen/arch/x86/mm/p2m-pt.c,
 * p2m_type_t in asm/p2m.h): ram_rw is 0, so a present entry with no type
 * bits is ordinary RAM.
 * The type, not the R/W bit, is the truth: a `ram_ro` frame is read-only in
 * every shadow whatever the guest's PTE says (rights are intersected).
 *
 * Entries are populated on first use from the domain's placement, so a
 * sparse 1 TiB guest costs only the frames it touches. The M2P (mfn -> gfn)
 * is the placement's inverse, and frame owners come from machine memory.
 */

import type { DataSpace } from '../arch/x86/cpu.js';
import { formatFor, MODE_LONG4, type WalkFormat } from '../arch/x86/modes.js';
import { WALK_OK, Walker, WalkResult } from '../arch/x86/walker.js';
import { type MachineMemory, ONES_FRAME, OWNER_HYPERVISOR, onesAt } from '../machine/memory.js';
import type { Placement } from '../machine/placement.js';

// Xen's p2m_type_t numbers (asm/p2m.h); Umbra uses the first five.
export const P2M_RAM_RW = 0;
export const P2M_INVALID = 1;
export const P2M_LOGDIRTY = 2;
export const P2M_RAM_RO = 3;
/** Xen's p2m_mmio_dm: accesses go to the device model (emulated). */
export const P2M_MMIO = 4;
export const P2M_TYPE_NAMES = ['ram_rw', 'invalid', 'ram_logdirty', 'ram_ro', 'mmio_dm'] as const;

/** The type's place in an entry's high word: bits 52-58 of the entry (7 bits). */
const TYPE_SHIFT_HI = 20;
const TYPE_MASK = 0x7f;
/** An entry's high word: the frame's bits above 31 and the type. */
const hiWord = (mfn: number, type: number): number => (Math.floor(mfn / 0x100000) | (type << TYPE_SHIFT_HI)) >>> 0;
/** The type held in an entry's high word. */
const typeOfHi = (hi: number): number => (hi >>> TYPE_SHIFT_HI) & TYPE_MASK;
const US_RW_P = 7;

/** Machine memory as a PhysicalSpace/DataSpace: what hardware and shadows see. */
export class MachineSpace implements DataSpace {
  constructor(readonly mem: MachineMemory) {}
  frameForRead(mfn: number): Uint32Array {
    return mfn < this.mem.frames ? this.mem.read(mfn) : ONES_FRAME;
  }
  frameForWrite(mfn: number): Uint32Array | null {
    return mfn < this.mem.frames ? this.mem.write(mfn) : null;
  }
  locate(mfn: number): Uint32Array {
    return mfn < this.mem.frames ? this.mem.locate(mfn) : onesAt();
  }
  locateForWrite(mfn: number): Uint32Array | null {
    return mfn < this.mem.frames ? this.mem.locateForWrite(mfn) : null;
  }
}

export class P2m {
  readonly rootMfn: number;
  readonly format: WalkFormat = formatFor(MODE_LONG4, 52, false, false);
  readonly space: MachineSpace;
  /** Type of the last lookup. */
  lastType = P2M_INVALID;
  tableFrames = 1;
  populated = 0;
  lookups = 0;
  private readonly walker = new Walker();
  /** The result of the last private walk (lookup and protect read it at once). */
  private readonly res = new WalkResult();
  private readonly protectedGfns = new Set<number>();
  /**
   * What lookup() found, per guest frame (-1: ask the table): the mfn, and its
   * type. 32-bit so a cached mfn comes back a small integer, which every
   * entry computation after it keeps in integer arithmetic (a Float64Array's
   * doubles would reach entryLo's `%` as a floating-point remainder).
   */
  private readonly cacheMfn: Int32Array | null;
  private readonly cacheType: Uint8Array | null;

  constructor(
    readonly mem: MachineMemory,
    readonly placement: Placement,
    /** The p2m type the domain gives a RAM frame now (ram_rw, ram_ro, or invalid when taken away). */
    private readonly typeOf: (gfn: number) => number,
  ) {
    this.space = new MachineSpace(mem);
    this.rootMfn = mem.alloc(OWNER_HYPERVISOR);
    // For guests up to 16 GiB (the cache's 4 bytes a frame stay small) on machines whose mfns fit in 31 bits.
    const n = placement.ramFrames <= 1 << 22 && mem.frames <= 2 ** 31 ? placement.ramFrames : 0;
    this.cacheMfn = n > 0 ? new Int32Array(n).fill(-1) : null;
    this.cacheType = n > 0 ? new Uint8Array(n) : null;
  }

  /** Machine frame of `gfn`, or -1 if it has none (MMIO, invalid); the type is in lastType. */
  lookup(gfn: number): number {
    const c = this.cacheMfn;
    if (c !== null && gfn < c.length) {
      const m = c[gfn] as number;
      if (m >= 0) {
        this.lastType = (this.cacheType as Uint8Array)[gfn] as number;
        return m;
      }
    }
    if (gfn >= this.placement.ramFrames) {
      this.lastType = P2M_MMIO;
      return -1;
    }
    this.lookups++;
    let mfn: number;
    if (this.walk(gfn)) {
      mfn = this.res.pfn;
      this.lastType = typeOfHi(this.res.entryHi);
    } else {
      const type = this.typeOf(gfn);
      this.lastType = type;
      // A frame taken away has no entry (Xen: p2m_invalid, INVALID_MFN).
      if (type === P2M_INVALID) return -1;
      this.populateBlock(gfn);
      mfn = this.placement.mfnOf(gfn);
    }
    if (c !== null) {
      c[gfn] = mfn;
      (this.cacheType as Uint8Array)[gfn] = this.lastType;
    }
    return mfn;
  }

  private walk(gfn: number): boolean {
    const hi = Math.floor(gfn / 0x100000);
    const lo = (gfn * 4096) >>> 0;
    return this.walker.walk(this.space, this.format, this.rootMfn, null, hi, lo, this.res) === WALK_OK;
  }

  /** Set the entry for `gfn` (mfn and type). */
  set(gfn: number, mfn: number, type: number): void {
    this.write(gfn, mfn, type);
    this.populated++;
  }

  /**
   * Populate the 512 entries of the leaf table holding `gfn` that are not
   * present yet (one descent instead of 512: guests touch memory in runs),
   * and cache each entry made, as a later lookup's walk would (every change
   * of an entry, write() and retype(), drops what is cached of it).
   */
  private populateBlock(gfn: number): void {
    const f = this.mem.write(this.leafTable(gfn));
    const first = gfn - (gfn % 512);
    const end = Math.min(first + 512, this.placement.ramFrames);
    const c = this.cacheMfn;
    const ct = this.cacheType;
    const prot = this.protectedGfns.size > 0 ? this.protectedGfns : null;
    for (let g = first; g < end; g++) {
      const idx = g % 512;
      if (((f[2 * idx] as number) & 1) !== 0) continue;
      const type = this.typeOf(g);
      if (type === P2M_INVALID) continue;
      const mfn = this.placement.mfnOf(g);
      const writable = type === P2M_RAM_RW && (prot === null || !prot.has(g));
      f[2 * idx] = ((mfn % 0x100000) * 4096 + 5 + (writable ? 2 : 0)) >>> 0;
      f[2 * idx + 1] = hiWord(mfn, type);
      this.populated++;
      if (c !== null && ct !== null && g < c.length) {
        c[g] = mfn;
        ct[g] = type;
      }
    }
  }

  /** The leaf table (level 1) covering `gfn`, building intermediate tables as needed. */
  private leafTable(gfn: number): number {
    let table = this.rootMfn;
    for (let level = 4; level > 1; level--) {
      const idx = Math.floor(gfn / 2 ** (9 * (level - 1))) % 512;
      const f = this.mem.write(table);
      let lo = f[2 * idx] as number;
      if ((lo & 1) === 0) {
        const t = this.mem.alloc(OWNER_HYPERVISOR);
        this.tableFrames++;
        lo = ((t % 0x100000) * 4096 + US_RW_P) >>> 0;
        f[2 * idx] = lo;
        f[2 * idx + 1] = Math.floor(t / 0x100000);
      }
      table = (f[2 * idx + 1] as number) * 0x100000 + (lo >>> 12);
    }
    return table;
  }

  /** Write the entry for `gfn`, building intermediate tables as needed. */
  private write(gfn: number, mfn: number, type: number): void {
    const f = this.mem.write(this.leafTable(gfn));
    const idx = gfn % 512;
    const ram = type === P2M_RAM_RW || type === P2M_RAM_RO || type === P2M_LOGDIRTY;
    const writable = type === P2M_RAM_RW && !this.protectedGfns.has(gfn);
    const flags = (ram ? 5 : 0) | (writable ? 2 : 0);
    f[2 * idx] = type === P2M_INVALID ? 0 : ((mfn % 0x100000) * 4096 + flags) >>> 0;
    f[2 * idx + 1] = type === P2M_INVALID ? 0 : hiWord(mfn, type);
    if (this.cacheMfn !== null && gfn < this.cacheMfn.length) this.cacheMfn[gfn] = -1;
  }

  /**
   * Write-protect (or release) `gfn` in the hardware view of the P2M, used
   * when the hardware runs on the P2M itself (guest paging off): a shadowed
   * guest table must not be writable through any mapping. The type is kept.
   */
  protect(gfn: number, on: boolean): void {
    if (on) this.protectedGfns.add(gfn);
    else this.protectedGfns.delete(gfn);
    if (gfn >= this.placement.ramFrames || !this.walk(gfn)) return;
    this.write(gfn, this.res.pfn, typeOfHi(this.res.entryHi));
  }

  /** Change the type of a populated or unpopulated RAM frame. */
  setType(gfn: number, type: number): void {
    const mfn = this.lookup(gfn);
    if (mfn >= 0) this.set(gfn, mfn, type);
  }

  /**
   * The domain changed the types of frames [first, first+count): rewrite
   * every populated entry among them from typeOf() (unpopulated ones take
   * their type when first used). Visits only the tables that exist, so a
   * change over a sparse guest's whole range costs what it populated.
   * Returns true if a present entry changed (a TLB may hold it).
   */
  retype(first: number, count: number): boolean {
    const c = this.cacheMfn;
    if (c !== null && first < c.length) c.fill(-1, first, Math.min(first + count, c.length));
    return this.retypeIn(this.rootMfn, 4, 0, first, first + count);
  }

  private retypeIn(table: number, level: number, base: number, first: number, end: number): boolean {
    const span = 2 ** (9 * (level - 1));
    const f = this.mem.read(table);
    let changed = false;
    const i0 = Math.max(0, Math.floor((first - base) / span));
    const i1 = Math.min(511, Math.floor((end - 1 - base) / span));
    for (let i = i0; i <= i1; i++) {
      const lo = f[2 * i] as number;
      if ((lo & 1) === 0) continue;
      const hi = f[2 * i + 1] as number;
      const mfn = (hi & 0xfffff) * 0x100000 + (lo >>> 12);
      const gfn = base + i * span;
      if (level > 1) {
        if (this.retypeIn(mfn, level - 1, gfn, first, end)) changed = true;
        continue;
      }
      const type = this.typeOf(gfn);
      if (type === typeOfHi(hi)) continue;
      this.write(gfn, mfn, type);
      if (type === P2M_INVALID) this.populated--;
      changed = true;
    }
    return changed;
  }
}

/** Guest-physical memory reached through the P2M (how the shadow pager reads guest tables). */
export class P2mSpace implements DataSpace {
  constructor(private readonly p2m: P2m) {}
  frameForRead(gfn: number): Uint32Array {
    const mfn = this.p2m.lookup(gfn);
    return mfn < 0 ? ONES_FRAME : this.p2m.mem.read(mfn);
  }
  frameForWrite(gfn: number): Uint32Array | null {
    const mfn = this.p2m.lookup(gfn);
    return mfn < 0 || this.p2m.lastType === P2M_RAM_RO ? null : this.p2m.mem.write(mfn);
  }
  locate(gfn: number): Uint32Array {
    const mfn = this.p2m.lookup(gfn);
    return mfn < 0 ? onesAt() : this.p2m.mem.locate(mfn);
  }
  locateForWrite(gfn: number): Uint32Array | null {
    const mfn = this.p2m.lookup(gfn);
    return mfn < 0 || this.p2m.lastType === P2M_RAM_RO ? null : this.p2m.mem.locateForWrite(mfn);
  }
}
