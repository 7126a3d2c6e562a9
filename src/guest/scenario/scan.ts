/**
 * The fast path of the scenario parser (parse.ts): a scanner of the JSON
 * Lines subset real scenarios are written in — one flat object per line,
 * keys the format knows, values that are small JSON integers or plain ASCII
 * strings — straight from the file's bytes, with no string, object or
 * closure made per line.
 *
 * It only ever accepts: a line it does not recognise as a valid operation
 * of that subset (any other syntax, escapes, non-ASCII text, duplicate keys,
 * floats, the machine and p2m lines, and every invalid line) is left to the
 * general parser (ScenarioParser.line, JSON.parse and the checks there),
 * which accepts it or reports the error exactly as before. The checks
 * below are therefore the general parser's, restated, and a line they pass
 * yields the operands the general parser would store.
 */
import { OP, type Scenario } from '../ops.js';

// Keys the format knows, numbered; a line's keys are a bit mask of these.
const K_OP = 0;
const K_VA = 1;
const K_SIZE = 2;
const K_CPL = 3;
const K_VALUE = 4;
const K_GPA = 5;
const K_VCPU = 6;
const K_REG = 7;
const K_MSR = 8;
const K_TYPE = 9;
const K_PCID = 10;
const K_LENGTH = 11;
const KEY_NAMES = ['op', 'va', 'size', 'cpl', 'value', 'gpa', 'vcpu', 'reg', 'msr', 'type', 'pcid', 'length'];
const KEYS = KEY_NAMES.length;

/**
 * A name of 1 to 10 lowercase letters as a number: base 32, a letter's digit
 * its place in the alphabet (1 … 26), so different names give different
 * numbers (below 2^50, exact in a double). The scanner builds it while it
 * reads the name's bytes; a name is then found by comparing one number.
 */
const MAX_NAME = 10;
function nameCode(name: string): number {
  let c = 0;
  for (let i = 0; i < name.length; i++) c = c * 32 + (name.charCodeAt(i) - 96);
  return c;
}

/** A set of names found by their codes: an open-addressed table of 64 slots. */
class NameTable {
  private readonly codes = new Float64Array(64);
  private readonly index = new Int8Array(64);
  constructor(names: readonly string[]) {
    names.forEach((n, i) => {
      const c = nameCode(n);
      let h = NameTable.slot(c);
      while (this.codes[h] !== 0) h = (h + 1) & 63;
      this.codes[h] = c;
      this.index[h] = i;
    });
  }

  private static slot(code: number): number {
    return Math.imul(code | 0, 0x9e3779b1) >>> 26;
  }

  /** The index of the name with this code, or -1 (0 and negative codes are no name). */
  find(code: number): number {
    if (code <= 0) return -1;
    for (let h = NameTable.slot(code); ; h = (h + 1) & 63) {
      const c = this.codes[h] as number;
      if (c === code) return this.index[h] as number;
      if (c === 0) return -1;
    }
  }
}

const KEY_TABLE = new NameTable(KEY_NAMES);

// Ops the fast path takes (machine and p2m go to the general parser), with the keys each needs.
const OP_NAMES = [
  'cpu',
  'wrcr',
  'wrmsr',
  'wrpkru',
  'setac',
  'read',
  'write',
  'fetch',
  'pread',
  'pwrite',
  'invlpg',
  'invpcid',
  'flush',
  'dump',
] as const;
const OP_TABLE = new NameTable(OP_NAMES);
const bit = (...ks: number[]): number => ks.reduce((m, k) => m | (1 << k), 1 << K_OP);
const OP_KEYS: Record<(typeof OP_NAMES)[number], number> = {
  cpu: bit(K_VCPU),
  wrcr: bit(K_REG, K_VALUE),
  wrmsr: bit(K_MSR, K_VALUE),
  wrpkru: bit(K_VALUE),
  setac: bit(K_VALUE),
  read: bit(K_VA, K_SIZE, K_CPL),
  write: bit(K_VA, K_SIZE, K_VALUE, K_CPL),
  fetch: bit(K_VA, K_CPL),
  pread: bit(K_GPA, K_SIZE),
  pwrite: bit(K_GPA, K_SIZE, K_VALUE),
  invlpg: bit(K_VA),
  invpcid: bit(K_TYPE, K_PCID, K_VA),
  flush: bit(),
  dump: bit(K_GPA, K_LENGTH),
};
const OP_CODE = OP_NAMES.map((n) => OP[n]);
const OP_MASK = OP_NAMES.map((n) => OP_KEYS[n]);

/** Longest JSON integer taken here: 15 digits stay below 2^53. */
const MAX_DIGITS = 15;

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d;
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 0x20;
  if (l >= 97 && l <= 102) return l - 87;
  return -1;
}

/** What the scanner found for each key of the current line: a number, or a string's byte range. */
export class LineScanner {
  private readonly isString = new Uint8Array(KEYS);
  private readonly num = new Float64Array(KEYS);
  private readonly strStart = new Int32Array(KEYS);
  private readonly strEnd = new Int32Array(KEYS);
  private readonly strCode = new Float64Array(KEYS);
  private b: Uint8Array = new Uint8Array(0);
  /** The integer last read by int(), as halves. */
  private hi = 0;
  private lo = 0;

  /**
   * Scan one line (bytes [start, end) of `b`, no newline). Returns 1 for a
   * blank or comment line, 2 when the line is an operation it added to
   * `s` (as the op at index s.count - 1), 0 when the general parser must
   * take the line (nothing was changed).
   */
  scan(b: Uint8Array, start: number, end: number, lineNo: number, s: Scenario | null, room: boolean): number {
    let p = start;
    while (p < end && isSpace(b[p] as number)) p++;
    if (p === end || b[p] === 0x23) return 1;
    // Anything but plain ASCII JSON after this point (a BOM, a non-breaking space) goes to the general parser.
    if (s === null || !room || b[p] !== 0x7b) return 0;
    this.b = b;
    let seen = 0;
    p++;
    // Most lines start `{"op":"`: that key is taken without a look-up.
    let k = -1;
    if (
      p + 5 < end &&
      b[p] === 0x22 &&
      b[p + 1] === 0x6f &&
      b[p + 2] === 0x70 &&
      b[p + 3] === 0x22 &&
      b[p + 4] === 0x3a
    ) {
      k = K_OP;
      seen = 1 << K_OP;
      p += 5;
    }
    for (;;) {
      if (k < 0) {
        while (p < end && isSpace(b[p] as number)) p++;
        if (b[p] !== 0x22 || p >= end) return 0;
        const ks = ++p;
        let code = 0;
        for (; p < end; p++) {
          const x = b[p] as number;
          if (x < 0x61 || x > 0x7a) break;
          code = code * 32 + (x - 96);
        }
        if (b[p] !== 0x22 || p >= end || p - ks > MAX_NAME) return 0;
        k = KEY_TABLE.find(code);
        if (k < 0 || (seen & (1 << k)) !== 0) return 0;
        seen |= 1 << k;
        p++;
        while (p < end && isSpace(b[p] as number)) p++;
        if (b[p] !== 0x3a || p >= end) return 0;
        p++;
      }
      while (p < end && isSpace(b[p] as number)) p++;
      if (p >= end) return 0;
      const c = b[p] as number;
      if (c === 0x22) {
        const vs = ++p;
        // The string's name code too, while it is all letters (the op's name is found by it).
        let code = 0;
        for (;;) {
          if (p >= end) return 0;
          const x = b[p] as number;
          if (x === 0x22) break;
          if (x === 0x5c || x < 0x20 || x >= 0x80) return 0;
          code = x >= 0x61 && x <= 0x7a && code >= 0 ? code * 32 + (x - 96) : -1;
          p++;
        }
        this.isString[k] = 1;
        this.strStart[k] = vs;
        this.strEnd[k] = p;
        this.strCode[k] = p - vs > MAX_NAME ? -1 : code;
        p++;
      } else if (c >= 0x30 && c <= 0x39) {
        const ds = p;
        let v = 0;
        while (p < end && (b[p] as number) >= 0x30 && (b[p] as number) <= 0x39) {
          v = v * 10 + ((b[p] as number) - 48);
          p++;
        }
        // JSON has no leading zeros; fractions and exponents are the general parser's.
        if (p - ds > MAX_DIGITS || (c === 0x30 && p - ds > 1)) return 0;
        if (p < end && (b[p] === 0x2e || b[p] === 0x65 || b[p] === 0x45)) return 0;
        this.isString[k] = 0;
        this.num[k] = v;
      } else return 0;
      k = -1;
      while (p < end && isSpace(b[p] as number)) p++;
      if (p >= end) return 0;
      if (b[p] === 0x2c) {
        p++;
        continue;
      }
      if (b[p] !== 0x7d) return 0;
      p++;
      break;
    }
    while (p < end && isSpace(b[p] as number)) p++;
    if (p !== end || (seen & 1) === 0 || this.isString[K_OP] === 0) return 0;
    const op = OP_TABLE.find(this.strCode[K_OP] as number);
    if (op < 0 || seen !== OP_MASK[op]) return 0;
    return this.operands(OP_CODE[op] as number, s, lineNo) ? 2 : 0;
  }

  /** Key k as a scenario integer (parse.ts parseU64) into hi/lo; false if it is not one. */
  private int(k: number): boolean {
    if (this.isString[k] === 0) {
      const v = this.num[k] as number;
      this.hi = Math.floor(v / 0x100000000);
      this.lo = v >>> 0;
      return true;
    }
    const b = this.b;
    let p = this.strStart[k] as number;
    const e = this.strEnd[k] as number;
    if (e - p < 3 || b[p] !== 0x30 || ((b[p + 1] as number) | 0x20) !== 0x78) return false;
    p += 2;
    while (p < e - 1 && b[p] === 0x30) p++;
    if (e - p > 16) return false;
    let hi = 0;
    let lo = 0;
    for (; p < e; p++) {
      const d = hexDigit(b[p] as number);
      if (d < 0) return false;
      hi = ((hi << 4) | (lo >>> 28)) >>> 0;
      lo = ((lo << 4) | d) >>> 0;
    }
    this.hi = hi;
    this.lo = lo;
    return true;
  }

  /** Key k as an integer in [min, max] (parse.ts small()), or -1. */
  private small(k: number, min: number, max: number): number {
    if (!this.int(k) || this.hi !== 0 || this.lo < min || this.lo > max) return -1;
    return this.lo;
  }

  /** "size": 1, 2, 4 or 8, or -1. */
  private size(): number {
    if (!this.int(K_SIZE) || this.hi !== 0) return -1;
    const v = this.lo;
    return v === 1 || v === 2 || v === 4 || v === 8 ? v : -1;
  }

  /** Check the operands as parse.ts does and, if they pass, append the operation to `s`. */
  private operands(op: number, s: Scenario, lineNo: number): boolean {
    let small = 0;
    let cpl = 0;
    let aHi = 0;
    let aLo = 0;
    let vHi = 0;
    let vLo = 0;
    if (op === OP.read || op === OP.write || op === OP.pread || op === OP.pwrite) {
      const size = this.size();
      if (size < 0 || !this.int(op === OP.read || op === OP.write ? K_VA : K_GPA)) return false;
      aHi = this.hi;
      aLo = this.lo;
      if ((aLo & 0xfff) + size > 4096) return false;
      small = size;
      if (op === OP.write || op === OP.pwrite) {
        if (!this.int(K_VALUE)) return false;
        if (size < 8 && (this.hi !== 0 || (size < 4 && this.lo >= 2 ** (8 * size)))) return false;
        vHi = this.hi;
        vLo = this.lo;
      }
      if (op === OP.read || op === OP.write) {
        cpl = this.small(K_CPL, 0, 3);
        if (cpl < 0) return false;
      }
    } else if (op === OP.fetch || op === OP.invlpg) {
      if (!this.int(K_VA)) return false;
      aHi = this.hi;
      aLo = this.lo;
      if (op === OP.fetch) {
        cpl = this.small(K_CPL, 0, 3);
        if (cpl < 0) return false;
      }
    } else if (op === OP.wrcr) {
      small = this.crIndex();
      if (small < 0 || !this.int(K_VALUE)) return false;
      vHi = this.hi;
      vLo = this.lo;
    } else if (op === OP.wrmsr) {
      if (this.isString[K_MSR] === 0 || !this.isEfer() || !this.int(K_VALUE)) return false;
      vHi = this.hi;
      vLo = this.lo;
    } else if (op === OP.wrpkru) {
      if (!this.int(K_VALUE) || this.hi !== 0) return false;
      vLo = this.lo;
    } else if (op === OP.setac) {
      small = this.small(K_VALUE, 0, 1);
      if (small < 0) return false;
    } else if (op === OP.cpu) {
      small = this.small(K_VCPU, 0, s.machine.vcpus - 1);
      if (small < 0) return false;
    } else if (op === OP.invpcid) {
      small = this.small(K_TYPE, 0, 3);
      if (small < 0 || !this.int(K_PCID)) return false;
      vLo = this.hi !== 0 || this.lo > 0xfff ? 0x1000 : this.lo;
      if (!this.int(K_VA)) return false;
      aHi = this.hi;
      aLo = this.lo;
    } else if (op === OP.dump) {
      if (!this.int(K_GPA)) return false;
      aHi = this.hi;
      aLo = this.lo;
      if (!this.int(K_LENGTH) || this.hi !== 0 || this.lo > 65536) return false;
      vLo = this.lo;
    } else if (op !== OP.flush) return false;
    // A batch's slots past its count are still zero (Scenario.push): zero operands are not stored, so
    // the pages of an operand that is always zero (aHi and vHi below 4 GiB) are never touched.
    const i = s.push(op, lineNo);
    if (small !== 0) s.small[i] = small;
    if (cpl !== 0) s.cpl[i] = cpl;
    if (aHi !== 0) s.aHi[i] = aHi;
    if (aLo !== 0) s.aLo[i] = aLo;
    if (vHi !== 0) s.vHi[i] = vHi;
    if (vLo !== 0) s.vLo[i] = vLo;
    return true;
  }

  /** "reg": "cr0", "cr3" or "cr4" as 0, 3, 4; or -1. */
  private crIndex(): number {
    if (this.isString[K_REG] === 0) return -1;
    const b = this.b;
    const p = this.strStart[K_REG] as number;
    if ((this.strEnd[K_REG] as number) - p !== 3 || b[p] !== 0x63 || b[p + 1] !== 0x72) return -1;
    const d = b[p + 2];
    return d === 0x30 ? 0 : d === 0x33 ? 3 : d === 0x34 ? 4 : -1;
  }

  private isEfer(): boolean {
    const b = this.b;
    const p = this.strStart[K_MSR] as number;
    return (
      (this.strEnd[K_MSR] as number) - p === 4 &&
      b[p] === 0x65 &&
      b[p + 1] === 0x66 &&
      b[p + 2] === 0x65 &&
      b[p + 3] === 0x72
    );
  }
}
