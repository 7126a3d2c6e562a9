/**
 * Scenario format, version 1 (shared/spec/scenario-format.md): parsing and
 * validation. The whole file is validated before anything runs; the first
 * problem is reported as `FILE:LINE: reason`.
 *
 * Parsed operations go into a batch (`Scenario`, src/guest/ops.ts: one
 * typed array per operand); the operation set and batch type are re-exported
 * here for the parser's callers.
 */
import { PHYS_TYPE_NAMES } from '../../hypervisor/physmap.js';
import { own, parseJson } from '../../util/json.js';
import { type Machine, OP, type OpName, Scenario } from '../ops.js';
import { LineScanner } from './scan.js';

export { type Machine, OP, type OpName, Scenario };

/** Allowed keys per op (besides "op"); all are required. */
const KEYS: Record<OpName | 'machine', readonly string[]> = {
  machine: ['vcpus', 'memory', 'maxphyaddr'],
  cpu: ['vcpu'],
  wrcr: ['reg', 'value'],
  wrmsr: ['msr', 'value'],
  wrpkru: ['value'],
  setac: ['value'],
  read: ['va', 'size', 'cpl'],
  write: ['va', 'size', 'value', 'cpl'],
  fetch: ['va', 'cpl'],
  pread: ['gpa', 'size'],
  pwrite: ['gpa', 'size', 'value'],
  invlpg: ['va'],
  invpcid: ['type', 'pcid', 'va'],
  flush: [],
  dump: ['gpa', 'length'],
  p2m: ['gfn', 'count', 'type'],
};
const OPTIONAL = new Set(['machine.maxphyaddr']);

const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

export const CR_INDEX: Readonly<Record<string, number>> = { cr0: 0, cr3: 3, cr4: 4 };

/**
 * Most operations a scenario may hold: parsed operations take 23 bytes each
 * and the whole file is parsed before it runs, so this bounds memory
 * (~400 MB). Longer streams go through traces, which are never held whole.
 */
export const MAX_SCENARIO_OPS = 1 << 24;
/** Longest scenario line a reader accepts, in bytes (real ones are under 200). */
export const MAX_LINE_BYTES = 1 << 20;

export class ScenarioError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly reason: string,
  ) {
    super(`${file}:${line}: ${reason}`);
  }
}

/** A 64-bit integer as two halves. */
export interface U64 {
  hi: number;
  lo: number;
}

const HEX = /^0[xX]([0-9a-fA-F]+)$/;

/** Parse a scenario integer (JSON number below 2^53, or "0x..." up to 64 bits). */
export function parseU64(v: unknown): U64 | string {
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < 0) return 'must be a non-negative integer';
    if (v >= 2 ** 53) return 'numbers at or above 2^53 must be written as "0x..." strings';
    return { hi: Math.floor(v / 0x100000000), lo: v >>> 0 };
  }
  if (typeof v === 'string') {
    const m = HEX.exec(v);
    if (m === null) return `"${v.length > 40 ? `${v.slice(0, 40)}...` : v}" is not a "0x..." hex integer`;
    const digits = (m[1] as string).replace(/^0+(?=.)/, '');
    if (digits.length > 16) return `${v} does not fit in 64 bits`;
    const lo = Number.parseInt(digits.slice(-8), 16);
    const hi = digits.length > 8 ? Number.parseInt(digits.slice(0, -8), 16) : 0;
    return { hi, lo };
  }
  return 'must be an integer (a JSON number or a "0x..." string)';
}

function toNumber(x: U64): number {
  return x.hi * 0x100000000 + x.lo;
}

/** Characters of a scenario text encoded at a time (a chunk stretches to hold a longer line). */
const TEXT_CHUNK = 1 << 16;

/**
 * Parse and validate a whole scenario. Throws ScenarioError on the first problem.
 *
 * The scanner reads bytes: the text is encoded a chunk of whole lines at a
 * time into one reused buffer (UTF-8 takes at most 3 bytes per UTF-16 unit),
 * rather than whole, which would touch as many fresh bytes as the text
 * holds. A line the scanner leaves to the general parser is taken from
 * `text` (line k of both is the same line), whose position is brought
 * forward only then.
 */
export function parseScenario(text: string, file: string): Scenario {
  const parser = new ScenarioParser(file);
  const encoder = new TextEncoder();
  let buf = new Uint8Array(3 * TEXT_CHUNK);
  let lineNo = 0;
  let textLine = 1;
  let textStart = 0;
  const line = (start: number, end: number): void => {
    if (parser.scanLine(buf, start, end, ++lineNo)) return;
    for (; textLine < lineNo; textLine++) textStart = text.indexOf('\n', textStart) + 1;
    let textEnd = text.indexOf('\n', textStart);
    if (textEnd < 0) textEnd = text.length;
    parser.line(text.slice(textStart, textEnd), lineNo);
  };
  for (let at = 0; ; ) {
    // The chunk [at, stop) ends just after a newline, or at the end of the text.
    let stop = text.length;
    if (at + TEXT_CHUNK < text.length) {
      stop = text.lastIndexOf('\n', at + TEXT_CHUNK - 1) + 1;
      if (stop <= at) stop = text.indexOf('\n', at) + 1 || text.length;
    }
    if (3 * (stop - at) > buf.length) buf = new Uint8Array(3 * (stop - at));
    const n = encoder.encodeInto(text.substring(at, stop), buf).written;
    let start = 0;
    for (let end = buf.indexOf(10, 0); end >= 0 && end < n; end = buf.indexOf(10, start)) {
      line(start, end);
      start = end + 1;
    }
    at = stop;
    // The text after its last newline is a line too, even when empty.
    if (stop === text.length) {
      line(start, n);
      return parser.finish(lineNo);
    }
  }
}

/**
 * The parser one line at a time, so that a reader can stream a file too large
 * to hold as one string (trace conversion). Operations are appended to
 * `scenario`, which a streaming caller may replace by an empty batch at any
 * time; `lineNo` counts every line, blank and comment lines included.
 */
export class ScenarioParser {
  scenario: Scenario | null = null;
  /** Operations parsed so far, over every batch. */
  ops = 0;
  /** `maxOps`: a streaming reader that keeps only batches may allow more than a whole scenario. */
  constructor(
    readonly file: string,
    readonly maxOps = MAX_SCENARIO_OPS,
  ) {}

  /** The fast path for the lines of the common subset (scan.ts). */
  private readonly scanner = new LineScanner();
  /** How a line's bytes become text for the general parser: UTF-8, a BOM kept (a front end may give its own). */
  decode: (bytes: Uint8Array) => string = (b) => utf8.decode(b);

  /**
   * Parse one line given as bytes [start, end) of `b` (UTF-8, no newline):
   * the scanner takes it if it can, else the general parser. Throws ScenarioError.
   */
  bytes(b: Uint8Array, start: number, end: number, lineNo: number): void {
    if (!this.scanLine(b, start, end, lineNo)) this.line(this.decode(b.subarray(start, end)), lineNo);
  }

  /** The scanner's attempt at a line: true when it took it (a blank line, a comment or a valid operation). */
  scanLine(b: Uint8Array, start: number, end: number, lineNo: number): boolean {
    const r = this.scanner.scan(b, start, end, lineNo, this.scenario, this.ops < this.maxOps);
    if (r === 2) this.ops++;
    return r !== 0;
  }

  /** After the last line: the scenario, or the empty-scenario error (`lines` = lines seen). */
  finish(lines: number): Scenario {
    if (this.scenario === null)
      throw new ScenarioError(this.file, Math.max(lines, 1), 'no "machine" line: empty scenario');
    return this.scenario;
  }

  /** Parse one line (without its newline). Throws ScenarioError. */
  line(raw: string, lineNo: number): void {
    const file = this.file;
    const fail = (reason: string): never => {
      throw new ScenarioError(file, lineNo, reason);
    };
    const t = raw.trim();
    if (t === '' || t.startsWith('#')) return;
    const parsed = parseJson(t);
    if (typeof parsed === 'string') throw new ScenarioError(file, lineNo, parsed);
    const obj = parsed.value;
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) fail('expected a JSON object');
    const o = obj as Record<string, unknown>;
    const name = o.op;
    if (typeof name !== 'string') fail('missing "op"');
    const opName = name as string;
    // Own properties only: "__proto__", "toString" and the like are unknown ops and keys, not Object.prototype's.
    const allowed = own(KEYS, opName);
    if (allowed === undefined) throw new ScenarioError(file, lineNo, `unknown op "${opName}"`);
    for (const k of Object.keys(o)) {
      if (k !== 'op' && !allowed.includes(k)) fail(`unknown key "${k}" for op "${opName}"`);
    }
    for (const k of allowed) {
      if (!Object.hasOwn(o, k) && !OPTIONAL.has(`${opName}.${k}`)) fail(`missing key "${k}" for op "${opName}"`);
    }
    const int = (k: string): U64 => {
      const r = parseU64(o[k]);
      if (typeof r === 'string') fail(`"${k}": ${r}`);
      return r as U64;
    };
    const small = (k: string, lo: number, hi: number): number => {
      const v = int(k);
      if (v.hi !== 0 || v.lo < lo || v.lo > hi) fail(`"${k}" must be between ${lo} and ${hi}`);
      return v.lo;
    };
    if (opName === 'machine') {
      if (this.scenario !== null) fail('"machine" may appear only once, on the first line');
      const vcpus = small('vcpus', 1, 64);
      const memory = toNumber(int('memory'));
      if (memory === 0 || memory % 4096 !== 0 || memory > 2 ** 40) {
        fail('"memory" must be a non-zero multiple of 4096 no larger than 2^40');
      }
      const maxphyaddr = Object.hasOwn(o, 'maxphyaddr') ? small('maxphyaddr', 32, 52) : 40;
      this.scenario = new Scenario({ vcpus, memory, maxphyaddr });
      return;
    }
    if (this.scenario === null) fail('the first operation must be "machine"');
    const s = this.scenario as Scenario;
    if (++this.ops > this.maxOps) fail(`more than ${this.maxOps} operations, the limit for a scenario`);
    const i = s.push(OP[opName as OpName], lineNo);
    const sizeOf = (): number => {
      const v = int('size');
      if (v.hi !== 0 || ![1, 2, 4, 8].includes(v.lo)) fail('"size" must be 1, 2, 4 or 8');
      return v.lo;
    };
    const addr = (k: string): U64 => {
      const a = int(k);
      s.aHi[i] = a.hi;
      s.aLo[i] = a.lo;
      return a;
    };
    const inPage = (a: U64, size: number, k: string): void => {
      if ((a.lo & 0xfff) + size > 4096) fail(`"${k}" + "size" crosses a 4 KiB page boundary`);
    };
    const value = (size: number): void => {
      const v = int('value');
      if (size < 8 && (v.hi !== 0 || (size < 4 && v.lo >= 2 ** (8 * size))))
        fail(`"value" does not fit in ${size} bytes`);
      s.vHi[i] = v.hi;
      s.vLo[i] = v.lo;
    };
    switch (opName as OpName) {
      case 'cpu':
        s.small[i] = small('vcpu', 0, s.machine.vcpus - 1);
        break;
      case 'wrcr': {
        const cr = typeof o.reg === 'string' ? own(CR_INDEX, o.reg) : undefined;
        if (cr === undefined) throw new ScenarioError(file, lineNo, '"reg" must be "cr0", "cr3" or "cr4"');
        s.small[i] = cr;
        value(8);
        break;
      }
      case 'wrmsr':
        if (o.msr !== 'efer') fail('"msr" must be "efer"');
        value(8);
        break;
      case 'wrpkru':
        value(4);
        break;
      case 'setac':
        s.small[i] = small('value', 0, 1);
        break;
      case 'read': {
        const size = sizeOf();
        inPage(addr('va'), size, 'va');
        s.small[i] = size;
        s.cpl[i] = small('cpl', 0, 3);
        break;
      }
      case 'write': {
        const size = sizeOf();
        inPage(addr('va'), size, 'va');
        s.small[i] = size;
        value(size);
        s.cpl[i] = small('cpl', 0, 3);
        break;
      }
      case 'fetch':
        addr('va');
        s.cpl[i] = small('cpl', 0, 3);
        break;
      case 'pread': {
        const size = sizeOf();
        inPage(addr('gpa'), size, 'gpa');
        s.small[i] = size;
        break;
      }
      case 'pwrite': {
        const size = sizeOf();
        inPage(addr('gpa'), size, 'gpa');
        s.small[i] = size;
        value(size);
        break;
      }
      case 'invlpg':
        addr('va');
        break;
      case 'invpcid': {
        s.small[i] = small('type', 0, 3);
        const p = int('pcid');
        // PCIDs above 0xfff are legal input and #GP at run time; keep them distinguishable.
        s.vLo[i] = p.hi !== 0 || p.lo > 0xfff ? 0x1000 : p.lo;
        addr('va');
        break;
      }
      case 'flush':
        break;
      case 'dump': {
        addr('gpa');
        const len = int('length');
        if (len.hi !== 0 || len.lo > 65536) fail('"length" must be at most 65536');
        s.vLo[i] = len.lo;
        break;
      }
      case 'p2m': {
        // Numbered as the physmap's types (hypervisor/physmap.ts).
        const type = PHYS_TYPE_NAMES.indexOf(o.type as (typeof PHYS_TYPE_NAMES)[number]);
        if (type < 0) throw new ScenarioError(file, lineNo, '"type" must be "ram", "rom" or "none"');
        const frames = s.machine.memory / 4096;
        const gfn = toNumber(int('gfn'));
        if (gfn >= frames) fail(`"gfn" must be below the ${frames} frames of "memory"`);
        const count = toNumber(int('count'));
        if (count < 1 || gfn + count > frames)
          fail(`"count" must be at least 1 and end within the ${frames} frames of "memory"`);
        s.small[i] = type;
        s.aLo[i] = gfn;
        s.vLo[i] = count;
        break;
      }
    }
  }
}
