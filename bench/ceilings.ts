/**
 * JavaScript ceilings: the same work as a figure, written as tight
 * typed-array code with nothing of the model around it (no pager, no
 * counters, no switches, one paging mode), so each figure can be given as a
 * fraction of what the language reaches on this machine. They are
 * measurements, not the model: each is checked against the model's own
 * result (same walk outcomes, same output bytes) so that it does the work
 * it claims.
 */
import type { Scenario } from '../src/guest/scenario/parse.js';
import { OP } from '../src/guest/scenario/parse.js';

/**
 * A 4-level walker over page tables copied into one flat Uint32Array: the
 * table frames a set of walks uses, each at a slot, found from its frame
 * number through an Int32Array (one dependent load per level, as a
 * hardware walker's memory access).
 */
export class FlatTables {
  readonly words: Uint32Array;
  readonly slotOf: Int32Array;
  constructor(frames: ReadonlyMap<number, Uint32Array>) {
    let maxPfn = 0;
    for (const pfn of frames.keys()) maxPfn = Math.max(maxPfn, pfn);
    this.slotOf = new Int32Array(maxPfn + 1).fill(-1);
    this.words = new Uint32Array(frames.size * 1024);
    let slot = 0;
    for (const [pfn, f] of frames) {
      this.words.set(f, slot * 1024);
      this.slotOf[pfn] = slot++;
    }
  }

  /**
   * Walk (vaHi, vaLo) from the table at `rootPfn`: the page frame number
   * (4 KiB, 2 MiB or 1 GiB page, offset bits folded in), or -1 when not present.
   */
  walk(rootPfn: number, vaHi: number, vaLo: number): number {
    const w = this.words;
    const slotOf = this.slotOf;
    let slot = slotOf[rootPfn] as number;
    // Level 4 (PML4): VA bits 39-47.
    let i = (slot << 10) | (((vaHi >>> 7) & 511) << 1);
    let lo = w[i] as number;
    if ((lo & 1) === 0) return -1;
    slot = slotOf[((w[i + 1] as number) & 0xfffff) * 0x100000 + (lo >>> 12)] as number;
    if (slot < 0) return -1;
    // Level 3 (PDPT): bits 30-38; PS means a 1 GiB page.
    i = (slot << 10) | ((((vaHi & 0x7f) << 2) | (vaLo >>> 30)) << 1);
    lo = w[i] as number;
    if ((lo & 1) === 0) return -1;
    if ((lo & 0x80) !== 0)
      return ((w[i + 1] as number) & 0xfffff) * 0x100000 + ((lo >>> 12) & ~0x3ffff) + ((vaLo >>> 12) & 0x3ffff);
    slot = slotOf[((w[i + 1] as number) & 0xfffff) * 0x100000 + (lo >>> 12)] as number;
    if (slot < 0) return -1;
    // Level 2 (PD): bits 21-29; PS means a 2 MiB page.
    i = (slot << 10) | (((vaLo >>> 21) & 511) << 1);
    lo = w[i] as number;
    if ((lo & 1) === 0) return -1;
    if ((lo & 0x80) !== 0)
      return ((w[i + 1] as number) & 0xfffff) * 0x100000 + ((lo >>> 12) & ~0x1ff) + ((vaLo >>> 12) & 0x1ff);
    slot = slotOf[((w[i + 1] as number) & 0xfffff) * 0x100000 + (lo >>> 12)] as number;
    if (slot < 0) return -1;
    // Level 1 (PT): bits 12-20.
    i = (slot << 10) | (((vaLo >>> 12) & 511) << 1);
    lo = w[i] as number;
    if ((lo & 1) === 0) return -1;
    return ((w[i + 1] as number) & 0xfffff) * 0x100000 + (lo >>> 12);
  }
}

/** Table frames (pfn → words) the walks of `vas` read, through `frameOf` (the image's memory). */
export function tableFrames(
  frameOf: (pfn: number) => Uint32Array,
  rootPfn: number,
  hi: Uint32Array,
  lo: Uint32Array,
): Map<number, Uint32Array> {
  const frames = new Map<number, Uint32Array>();
  const get = (pfn: number): Uint32Array => {
    let f = frames.get(pfn);
    if (f === undefined) {
      f = frameOf(pfn).slice();
      frames.set(pfn, f);
    }
    return f;
  };
  for (let k = 0; k < hi.length; k++) {
    const vaHi = hi[k] as number;
    const vaLo = lo[k] as number;
    let table = get(rootPfn);
    const idx = [(vaHi >>> 7) & 511, ((vaHi & 0x7f) << 2) | (vaLo >>> 30), (vaLo >>> 21) & 511, (vaLo >>> 12) & 511];
    for (let level = 0; level < 3; level++) {
      const e = table[(idx[level] as number) * 2] as number;
      if ((e & 1) === 0 || (level > 0 && (e & 0x80) !== 0)) break;
      table = get(((table[(idx[level] as number) * 2 + 1] as number) & 0xfffff) * 0x100000 + (e >>> 12));
    }
  }
  return frames;
}

/**
 * TLB-hit lookups: a direct-mapped array of tags, frame numbers and rights,
 * probed with the access's rights; the ceiling for `Cpu.translate` hits.
 */
export function tlbCeiling(n: number, pages: number): number {
  const SETS = 1024;
  const tag = new Int32Array(SETS).fill(-1);
  const pfn = new Int32Array(SETS);
  const rights = new Uint8Array(SETS);
  for (let p = 0; p < pages; p++) {
    tag[p & (SETS - 1)] = p;
    pfn[p & (SETS - 1)] = 0x1000 + p;
    rights[p & (SETS - 1)] = 7;
  }
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const va = (i & (pages - 1)) << 12;
    const vpn = va >>> 12;
    const s = vpn & (SETS - 1);
    if (tag[s] === vpn && ((rights[s] as number) & 1) !== 0) sum += (((pfn[s] as number) << 12) | (va & 0xfff)) >>> 0;
    else sum -= 1;
  }
  return sum;
}

const HEX = new Uint8Array([...'0123456789abcdef'].map((c) => c.charCodeAt(0)));
/** HEX4[v]: v's four hex digits as a little-endian word of bytes. */
const HEX4 = new Uint32Array(65536);
for (let v = 0; v < 65536; v++) {
  HEX4[v] =
    ((HEX[v >>> 12] as number) |
      ((HEX[(v >>> 8) & 15] as number) << 8) |
      ((HEX[(v >>> 4) & 15] as number) << 16) |
      ((HEX[v & 15] as number) << 24)) >>>
    0;
}
const word = (s: string, k: number): number => {
  let w = 0;
  for (let j = 3; j >= 0; j--) w = (w << 8) | (s.charCodeAt(4 * k + j) || 0);
  return w >>> 0;
};
const OK = ',"ok":true}\n';
const VALUE = ',"value":"0x';
const [OK0, OK1, OK2] = [word(OK, 0), word(OK, 1), word(OK, 2)];
const [V0, V1, V2] = [word(VALUE, 0), word(VALUE, 1), word(VALUE, 2)];
const VEND = word('"}\n', 0);

/**
 * The output lines of the scenario format (value and ok lines only) into a
 * 1 MiB buffer handed to `sink` when full: the ceiling for the output
 * writer. Whole-word stores, hex four digits per table look-up, the line
 * number's digits kept and counted up in place; every line written in one
 * method with its state in locals.
 */
export class CeilingLines {
  private buf = new Uint8Array(1 << 20);
  private dv = new DataView(this.buf.buffer);
  private n = 0;
  /** `{"i":` and the line number's digits (a word view copies them 16 bytes at a time). */
  private readonly pre = new Uint8Array(32);
  private readonly preView = new DataView(this.pre.buffer);
  private pl = 5;
  private last = -100;
  constructor(private readonly sink: (b: Uint8Array) => void) {
    this.pre.set([123, 34, 105, 34, 58]);
  }

  /** Start a line: the prefix written (up to 16 bytes, the excess covered by the body's constant); returns where the body begins. */
  private start(ln: number): number {
    if (this.n > this.buf.length - 128) this.flush();
    const d = this.pre;
    if (ln === this.last + 1) {
      let k = this.pl - 1;
      while (d[k] === 57) d[k--] = 48;
      if (k < 5) {
        d[5] = 49;
        d[this.pl++] = 48;
      } else d[k] = (d[k] as number) + 1;
    } else {
      const t = String(ln);
      for (let k = 0; k < t.length; k++) d[5 + k] = t.charCodeAt(k);
      this.pl = 5 + t.length;
    }
    this.last = ln;
    const dv = this.dv;
    const sv = this.preView;
    const n = this.n;
    dv.setUint32(n, sv.getUint32(0, true), true);
    dv.setUint32(n + 4, sv.getUint32(4, true), true);
    dv.setUint32(n + 8, sv.getUint32(8, true), true);
    dv.setUint32(n + 12, sv.getUint32(12, true), true);
    return n + this.pl;
  }

  ok(ln: number): void {
    const p = this.start(ln);
    const dv = this.dv;
    dv.setUint32(p, OK0, true);
    dv.setUint32(p + 4, OK1, true);
    dv.setUint32(p + 8, OK2, true);
    this.n = p + 12;
  }

  value(ln: number, hi: number, lo: number): void {
    const p = this.start(ln);
    const dv = this.dv;
    let e: number;
    if (hi !== 0) {
      e = p + 12 + 8 - (Math.clz32(hi) >>> 2);
      dv.setUint32(e, HEX4[lo >>> 16] as number, true);
      dv.setUint32(e + 4, HEX4[lo & 0xffff] as number, true);
      dv.setUint32(e - 4, HEX4[hi & 0xffff] as number, true);
      if (hi > 0xffff) dv.setUint32(e - 8, HEX4[hi >>> 16] as number, true);
      e += 8;
    } else {
      e = p + 12 + (lo === 0 ? 1 : 8 - (Math.clz32(lo) >>> 2));
      dv.setUint32(e - 4, HEX4[lo & 0xffff] as number, true);
      if (lo > 0xffff) dv.setUint32(e - 8, HEX4[lo >>> 16] as number, true);
    }
    dv.setUint32(p, V0, true);
    dv.setUint32(p + 4, V1, true);
    dv.setUint32(p + 8, V2, true);
    dv.setUint32(e, VEND, true);
    this.n = e + 3;
  }

  flush(): void {
    if (this.n > 0) this.sink(this.buf.subarray(0, this.n));
    this.n = 0;
  }
}

/** Output events of a run (kind 0: ok line, 1: value line), for replaying through a writer. */
export class Events {
  n = 0;
  readonly kind: Uint8Array;
  readonly line: Uint32Array;
  readonly hi: Uint32Array;
  readonly lo: Uint32Array;
  constructor(max: number) {
    this.kind = new Uint8Array(max);
    this.line = new Uint32Array(max);
    this.hi = new Uint32Array(max);
    this.lo = new Uint32Array(max);
  }
  push(kind: number, line: number, hi: number, lo: number): void {
    const i = this.n++;
    this.kind[i] = kind;
    this.line[i] = line;
    this.hi[i] = hi;
    this.lo[i] = lo;
  }
}

/**
 * The scenario benchmarks' guest (bench/figures.ts longModeSetup: 4-level
 * tables, 4 KiB pages, everything user-writable, aligned 8-byte accesses)
 * run by a tight loop: flat guest memory, a 4-way 1,536-entry TLB with
 * round-robin replacement, a 4-level walk setting accessed/dirty flags on a
 * miss, and the output lines (when `out` is given). It refuses what it does
 * not model (faults, other ops than the setup's and read/write/fetch/invlpg).
 */
export function ceilingExec(s: Scenario, out: CeilingLines | null, events: Events | null = null): number {
  // The guest's tables and pages lie below 64 MiB (bench/figures.ts longModeSetup): zeroing more would be setup.
  const mem = new Uint32Array(Math.min(s.machine.memory, 0x4000000) / 4);
  const WAYS = 4;
  const SETS = 384;
  const tag = new Int32Array(WAYS * SETS).fill(-1);
  const tpfn = new Int32Array(WAYS * SETS);
  const tdirty = new Uint8Array(WAYS * SETS);
  const next = new Uint8Array(SETS);
  let root = 0;
  let walks = 0;
  const { op, line, small, aLo, vHi, vLo } = s;
  const n = s.count;
  for (let i = 0; i < n; i++) {
    const o = op[i] as number;
    const ln = line[i] as number;
    if (o === OP.read || o === OP.write || o === OP.fetch) {
      const va = aLo[i] as number;
      const vpn = va >>> 12;
      const set = vpn % SETS;
      const write = o === OP.write;
      let e = -1;
      for (let w = set * WAYS, end = w + WAYS; w < end; w++) {
        if (tag[w] === vpn) {
          e = w;
          break;
        }
      }
      if (e < 0 || (write && tdirty[e] === 0)) {
        walks++;
        let table = root;
        let acc = 7;
        let wi = 0;
        for (let level = 3; level >= 0; level--) {
          const idx = level === 3 ? 0 : level === 2 ? va >>> 30 : (va >>> (12 + 9 * level)) & 511;
          wi = (table << 10) | (idx << 1);
          const x = mem[wi] as number;
          if ((x & 1) === 0) throw new Error('the ceiling does not model faults');
          acc &= x;
          if ((x & 0x20) === 0) mem[wi] = x | 0x20;
          table = ((mem[wi + 1] as number) & 0xfffff) * 0x100000 + (x >>> 12);
        }
        if ((acc & 6) !== 6) throw new Error('the ceiling does not model faults');
        if (write) mem[wi] = (mem[wi] as number) | 0x40;
        if (e < 0) {
          e = set * WAYS + (next[set] as number);
          next[set] = ((next[set] as number) + 1) % WAYS;
        }
        tag[e] = vpn;
        tpfn[e] = table;
        tdirty[e] = write ? 1 : 0;
      }
      const word = (tpfn[e] as number) * 1024 + ((va & 0xfff) >>> 2);
      if (word >= mem.length) throw new Error('the ceiling models only the low 64 MiB');
      if (o === OP.read) {
        const lo = mem[word] as number;
        const hi = mem[word + 1] as number;
        out?.value(ln, hi, lo);
        events?.push(1, ln, hi, lo);
      } else if (write) {
        mem[word] = vLo[i] as number;
        mem[word + 1] = vHi[i] as number;
        out?.ok(ln);
        events?.push(0, ln, 0, 0);
      } else {
        const b = ((mem[word] as number) >>> ((va & 3) * 8)) & 0xff;
        out?.value(ln, 0, b);
        events?.push(1, ln, 0, b);
      }
    } else if (o === OP.invlpg) {
      const vpn = (aLo[i] as number) >>> 12;
      const set = vpn % SETS;
      for (let w = set * WAYS, end = w + WAYS; w < end; w++) if (tag[w] === vpn) tag[w] = -1;
    } else if (o === OP.pwrite) {
      const word = (aLo[i] as number) >>> 2;
      mem[word] = vLo[i] as number;
      if (small[i] === 8) mem[word + 1] = vHi[i] as number;
      out?.ok(ln);
      events?.push(0, ln, 0, 0);
    } else if (o === OP.wrcr) {
      if (small[i] === 3) {
        root = (vLo[i] as number) >>> 12;
        tag.fill(-1);
      }
    } else if (o !== OP.wrmsr) throw new Error(`the ceiling does not model op ${o}`);
  }
  out?.flush();
  return walks;
}
