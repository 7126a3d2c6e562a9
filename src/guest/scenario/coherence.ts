/**
 * Which vCPUs may hold stale translations: a reference machine (the
 * architectural CPU on the native pager, over plain guest memory) that
 * follows a scenario operation by operation and applies the spec's rule for
 * well-behaved scenarios conservatively. A generator asks it, before each
 * access, whether the current vCPU must invalidate first; a minimiser asks it
 * whether a shortened scenario is still well behaved.
 *
 * A vCPU *may cache* once it has made a translated access, until a full
 * invalidation (flush, INVPCID type 2, paging off, a CR4 write that flushes
 * everything, MOV CR3 when neither PCIDs nor global pages can keep entries).
 * It becomes *stale* when, while it may cache:
 *  - a guest write or pwrite changes the bytes of a frame that may be a
 *    paging structure (any vCPU; accessed/dirty updates by walks do not count);
 *  - its interpretation of entries changes (paging mode, EFER.NXE, CR4.PSE,
 *    the PAE PDPTE registers);
 *  - a p2m operation changes what backs any frame (the spec counts it as
 *    changing every entry of its frames; this is simpler and as sound);
 *  - MOV CR3 moves it to another root while global pages may be cached, or
 *    keeps (no-flush) a PCID whose entries came from another root.
 * "May be a paging structure" is every frame reachable from any root ever
 * loaded (and from the PDPTE registers), following every present entry at
 * every level as if it pointed to a table, superpages included: an
 * over-approximation, so the rule stays sound for hostile tables
 * (self-maps, tables shared across levels, CR4.PSE toggles).
 */
import { Cpu, writeValue } from '../../arch/x86/cpu.js';
import { PHYS_NONE, PHYS_RAM, Physmap, type PhysType } from '../../hypervisor/physmap.js';
import { frameAt, ONES_FRAME, ZERO_FRAME } from '../../machine/memory.js';
import { NativePager } from '../../pagers/native/native.js';
import { type Machine, OP, parseScenario, type Scenario } from './parse.js';

const CR4_PSE = 1 << 4;
const CR4_PGE = 1 << 7;
const CR4_PCIDE = 1 << 17;
const EFER_NXE = 1 << 11;

/** Guest-physical memory of the reference machine; remembers the last data write's frame as it was. */
class ReferenceMemory {
  private readonly frames = new Map<number, Uint32Array>();
  readonly physmap = new Physmap();
  lastWrite = -1;
  lastBefore: Uint32Array | null = null;
  constructor(readonly ramFrames: number) {}

  frameForRead(pfn: number): Uint32Array {
    if (pfn >= this.ramFrames || this.physmap.typeOf(pfn) === PHYS_NONE) return ONES_FRAME;
    return this.frames.get(pfn) ?? ZERO_FRAME;
  }

  /** The p2m operation (spec: frames taken away come back zero-filled). */
  setType(first: number, count: number, type: PhysType): void {
    if (type === PHYS_NONE)
      for (const g of [...this.frames.keys()]) if (g >= first && g < first + count) this.frames.delete(g);
    this.physmap.set(first, count, type);
  }

  frameForWrite(pfn: number): Uint32Array | null {
    if (pfn >= this.ramFrames || this.physmap.typeOf(pfn) !== PHYS_RAM) return null;
    let f = this.frames.get(pfn);
    if (f === undefined) {
      f = new Uint32Array(1024);
      this.frames.set(pfn, f);
    }
    this.lastWrite = pfn;
    this.lastBefore = f.slice();
    return f;
  }

  locate(pfn: number): Uint32Array {
    return frameAt(this.frameForRead(pfn));
  }

  locateForWrite(pfn: number): Uint32Array | null {
    const f = this.frameForWrite(pfn);
    return f === null ? null : frameAt(f);
  }
}

interface Root {
  pfn: number;
  level: number;
  wide: boolean;
}

export class CoherenceTracker {
  readonly cpus: Cpu[] = [];
  readonly memory: ReferenceMemory;
  cur = 0;
  private readonly mayCache: boolean[];
  private readonly stale: boolean[];
  private readonly globalsSeen: boolean[];
  /** Per vCPU: PCID -> root its entries came from. */
  private readonly pcidRoot: Array<Map<number, number>>;
  private readonly roots = new Map<number, Root>();
  private tables: Set<number> | null = null;

  constructor(readonly machine: Machine) {
    this.memory = new ReferenceMemory(machine.memory / 4096);
    const host = new NativePager();
    for (let v = 0; v < machine.vcpus; v++) {
      const c = new Cpu(v, this.memory, machine.maxphyaddr, host);
      host.load(c);
      this.cpus.push(c);
    }
    this.mayCache = this.cpus.map(() => false);
    this.stale = this.cpus.map(() => false);
    this.globalsSeen = this.cpus.map(() => false);
    this.pcidRoot = this.cpus.map(() => new Map());
  }

  get cpu(): Cpu {
    return this.cpus[this.cur] as Cpu;
  }

  /** Must vCPU `v` invalidate before its next access? */
  isStale(v: number): boolean {
    return this.stale[v] as boolean;
  }

  /** Frames that may be paging structures now. */
  tableFrames(): Set<number> {
    if (this.tables === null) this.tables = this.reachable();
    return this.tables;
  }

  /** Run operation `i` of `s` on the reference machine and update staleness. */
  apply(s: Scenario, i: number): void {
    const c = this.cpu;
    const v = this.cur;
    const hi = s.aHi[i] as number;
    const lo = s.aLo[i] as number;
    const vHi = s.vHi[i] as number;
    const vLo = s.vLo[i] as number;
    switch (s.op[i]) {
      case OP.cpu:
        this.cur = s.small[i] as number;
        break;
      case OP.wrcr:
      case OP.wrmsr:
        this.control(s.op[i] === OP.wrmsr ? -1 : (s.small[i] as number), vHi, vLo);
        break;
      case OP.wrpkru:
        c.writePkru(vLo);
        break;
      case OP.setac:
        c.setAc(s.small[i] as number);
        break;
      case OP.read:
      case OP.fetch:
        this.accessed(v);
        if (s.op[i] === OP.read) c.read(hi, lo, s.small[i] as number, s.cpl[i] as number);
        else c.fetch(hi, lo, s.cpl[i] as number);
        break;
      case OP.write:
        this.accessed(v);
        this.memory.lastWrite = -1;
        if (c.write(hi, lo, s.small[i] as number, vHi, vLo, s.cpl[i] as number) === 0)
          this.wrote(lo, s.small[i] as number);
        break;
      case OP.pwrite: {
        const f = this.memory.frameForWrite(hi * 0x100000 + (lo >>> 12));
        if (f !== null) {
          writeValue(f, lo & 0xfff, s.small[i] as number, vHi, vLo);
          this.wrote(lo, s.small[i] as number);
        }
        break;
      }
      case OP.invlpg:
        c.invlpg(hi, lo);
        break;
      case OP.invpcid: {
        const type = s.small[i] as number;
        const full = type === 2 || (type === 3 && (c.cr4 & CR4_PGE) === 0);
        if (c.invpcid(type, vLo, hi, lo) === 0) {
          if (full) this.flushed(v);
          else if (type === 1) this.pcidRoot[v]?.delete(vLo);
        }
        break;
      }
      case OP.flush:
        c.flushAll();
        this.flushed(v);
        break;
      case OP.p2m:
        this.memory.setType(lo, vLo, s.small[i] as PhysType);
        this.tables = null;
        for (let u = 0; u < this.cpus.length; u++) if (this.mayCache[u]) this.stale[u] = true;
        break;
    }
  }

  /** A translated access: from now on this vCPU may cache (global entries too, with CR4.PGE). */
  private accessed(v: number): void {
    const c = this.cpus[v] as Cpu;
    if (c.mode === null) return;
    this.mayCache[v] = true;
    if ((c.cr4 & CR4_PGE) !== 0) this.globalsSeen[v] = true;
    if (!this.pcidRoot[v]?.has(c.pcid)) this.pcidRoot[v]?.set(c.pcid, this.rootKey(c));
  }

  /** After a data write (guest or pwrite) of the frame the memory recorded: did it change a table? */
  private wrote(lo: number, size: number): void {
    const m = this.memory;
    const gfn = m.lastWrite;
    if (gfn < 0 || m.lastBefore === null || !this.tableFrames().has(gfn)) return;
    const now = m.frameForRead(gfn);
    // Only the written words: a walk may have set A/D bits elsewhere in the frame.
    let changed = false;
    for (let w = (lo & 0xfff) >>> 2; w <= ((lo & 0xfff) + size - 1) >>> 2; w++) changed ||= m.lastBefore[w] !== now[w];
    if (!changed) return;
    this.tables = null;
    for (let v = 0; v < this.cpus.length; v++) if (this.mayCache[v]) this.stale[v] = true;
  }

  private flushed(v: number): void {
    this.mayCache[v] = false;
    this.stale[v] = false;
    this.globalsSeen[v] = false;
    this.pcidRoot[v]?.clear();
  }

  private control(reg: number, hi: number, lo: number): void {
    const c = this.cpu;
    const v = this.cur;
    const before = this.interpretation(c);
    const oldCr4 = c.cr4;
    const oldRoot = this.rootKey(c);
    const pg = c.mode !== null;
    const noFlush = reg === 3 && c.lma && (c.cr4 & CR4_PCIDE) !== 0 && hi >>> 31 === 1;
    const r =
      reg === 0
        ? c.writeCr0(hi, lo)
        : reg === 3
          ? c.writeCr3(hi, lo)
          : reg === 4
            ? c.writeCr4(hi, lo)
            : c.writeEfer(hi, lo);
    if (r !== 0) return;
    if (c.mode !== null) {
      const root = this.rootKey(c);
      if (!this.roots.has(root)) {
        this.roots.set(root, { pfn: c.cr3RootPfn, level: c.mode.topLevel, wide: c.mode.wide });
        this.tables = null;
      }
      if (c.mode.pdpteRegisters) this.tables = null; // the registers are roots of their own
    }
    const diff = oldCr4 ^ c.cr4;
    const flushedAll =
      (pg && c.mode === null) ||
      (reg === 4 && ((diff & CR4_PGE) !== 0 || (oldCr4 & CR4_PCIDE & ~c.cr4) !== 0)) ||
      (reg === 3 && !noFlush && (c.cr4 & (CR4_PCIDE | CR4_PGE)) === 0);
    if (flushedAll) {
      this.flushed(v);
      return;
    }
    if (!this.mayCache[v]) return;
    if (this.interpretation(c) !== before) this.stale[v] = true;
    if (reg !== 3) return;
    const root = this.rootKey(c);
    if (this.globalsSeen[v] && root !== oldRoot) this.stale[v] = true;
    const map = this.pcidRoot[v] as Map<number, number>;
    if (noFlush && map.has(c.pcid) && map.get(c.pcid) !== root) this.stale[v] = true;
    if (!noFlush) map.delete(c.pcid);
  }

  /** What decides how this vCPU reads entries, as a string to compare. */
  private interpretation(c: Cpu): string {
    const pdpte = c.mode?.pdpteRegisters ? Array.from(c.pdpte).join(',') : '';
    return `${c.mode?.name}/${c.efer & EFER_NXE}/${c.cr4 & CR4_PSE}/${pdpte}`;
  }

  /** The table CR3 designates (PAE: the PDPT's 32-byte-aligned address). */
  private rootKey(c: Cpu): number {
    return c.lma ? c.cr3RootPfn * 4096 : c.cr3Lo & ~0x1f;
  }

  /** Every frame reachable as a table, at any level, from every root and PDPTE register. */
  private reachable(): Set<number> {
    const frames = new Set<number>();
    const seen = new Set<number>();
    const ram = this.memory.ramFrames;
    const visit = (pfn: number, level: number, wide: boolean): void => {
      if (pfn >= ram || seen.has(pfn * 8 + level)) return;
      seen.add(pfn * 8 + level);
      frames.add(pfn);
      if (level === 1) return;
      const f = this.memory.frameForRead(pfn);
      if (f === ZERO_FRAME) return;
      const step = wide ? 2 : 1;
      for (let w = 0; w < 1024; w += step) {
        const e = f[w] as number;
        if ((e & 1) === 0) continue;
        visit(wide ? ((f[w + 1] as number) & 0xfffff) * 0x100000 + (e >>> 12) : e >>> 12, level - 1, wide);
      }
    };
    for (const r of this.roots.values()) visit(r.pfn, r.level, r.wide);
    for (const c of this.cpus) {
      if (!c.mode?.pdpteRegisters) continue;
      for (let i = 0; i < 4; i++) {
        const e = c.pdpte[2 * i] as number;
        if ((e & 1) !== 0) visit(((c.pdpte[2 * i + 1] as number) & 0xfffff) * 0x100000 + (e >>> 12), 2, true);
      }
    }
    return frames;
  }
}

/**
 * Null if every access of the scenario happens on a vCPU with no stale
 * translations (by the tracker's conservative rule), else the first line that
 * relies on a change it has not invalidated.
 */
export function staleAccess(text: string): string | null {
  const s = parseScenario(text, 'scenario');
  const t = new CoherenceTracker(s.machine);
  for (let i = 0; i < s.count; i++) {
    const op = s.op[i];
    if ((op === OP.read || op === OP.write || op === OP.fetch) && t.isStale(t.cur)) {
      return `line ${s.line[i]}: an access on vCPU ${t.cur} relies on a change it has not invalidated`;
    }
    t.apply(s, i);
  }
  return null;
}
