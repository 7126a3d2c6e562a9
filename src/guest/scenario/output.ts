/**
 * The output of a scenario run, written as ASCII bytes into a buffer that is
 * handed to the sink in large chunks: a million result lines cost no string
 * building and little garbage.
 *
 * The hot lines are built with whole-word stores (a DataView over the
 * buffer): constants as 32-bit words, hex digits four at a time from a table
 * of the 65,536 four-digit groups, and the line prefix `{"i":N` kept ready
 * as bytes, its decimal counted up in place from the previous line's (a
 * scenario's lines mostly follow one another), so a line costs no division.
 * Some stores reach a few bytes past what they mean to write; the methods
 * order their stores so that a later store always covers the excess (see
 * LineWriter.prefix).
 */
const HEX = new Uint8Array([...'0123456789abcdef'].map((c) => c.charCodeAt(0)));

/** HEX4[v], v < 65536: v's four hex digits as bytes in memory order, as a little-endian word. */
const HEX4 = new Uint32Array(65536);
for (let v = 0; v < 65536; v++) {
  HEX4[v] =
    ((HEX[v >>> 12] as number) |
      ((HEX[(v >>> 8) & 15] as number) << 8) |
      ((HEX[(v >>> 4) & 15] as number) << 16) |
      ((HEX[v & 15] as number) << 24)) >>>
    0;
}

/** "00" … "99" as byte pairs, for building a decimal two digits at a time. */
const DEC2 = new Uint8Array(200);
for (let v = 0; v < 100; v++) {
  DEC2[2 * v] = 48 + Math.floor(v / 10);
  DEC2[2 * v + 1] = 48 + (v % 10);
}

/** Encode constant ASCII text once, for bytes(). */
export function ascii(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

/** First chunk size; each later one doubles up to MAX_CHUNK (a short run allocates little, a long one writes in large chunks). */
const FIRST_CHUNK = 1 << 16;
const MAX_CHUNK = 1 << 20;
/** Room kept free at the end of the buffer: a line's fixed part, and the stores that reach past it. */
const SLACK = 256;
/** `{"i":` */
const LINE_START = ascii('{"i":');
/** The prefix's bytes before the line number. */
const PREFIX_HEAD = LINE_START.length;

export class LineWriter {
  private buf = new Uint8Array(FIRST_CHUNK);
  private dv = new DataView(this.buf.buffer);
  /** Bytes written into `buf`. */
  n = 0;
  /** Where lines stop fitting: past it, the next line flushes first. */
  private limit = FIRST_CHUNK - SLACK;
  /** The line prefix `{"i":N` as bytes (32 so that prefix() may copy 16 at once), its length, and N. */
  private readonly pre = new Uint8Array(32);
  private readonly preView = new DataView(this.pre.buffer);
  private pl = 0;
  private last = -100;

  /**
   * `sink` owns each chunk it is given, unless `reuse`: then a chunk is valid
   * only during the call (a sink that keeps it copies it) and the writer
   * writes on into the same buffer, whose pages are already mapped (a fresh
   * megabyte costs 256 page faults).
   */
  constructor(
    private readonly sink: (bytes: Uint8Array) => void,
    private readonly reuse = false,
  ) {
    this.pre.set(LINE_START);
  }

  /** The buffer, for stores: valid until the next begin(), reserve() or flush(). */
  get bytesView(): Uint8Array {
    return this.buf;
  }
  get view(): DataView {
    return this.dv;
  }

  /**
   * Start a line numbered `ln`: flush if the buffer is nearly full, bring
   * the prefix to `ln` and return where the line's body starts (the prefix
   * is not written yet: prefix() does that).
   */
  begin(ln: number): number {
    if (this.n > this.limit) this.flush();
    const d = ln - this.last;
    if (d > 0 && d <= 10) this.advance(d);
    else this.setLine(ln);
    this.last = ln;
    return this.n + this.pl;
  }

  /** Add `d` (1 … 10) to the prefix's decimal number in place. */
  private advance(d: number): void {
    const p = this.pre;
    let k = this.pl - 1;
    let s = (p[k] as number) + d;
    while (s > 57) {
      p[k] = s - 10;
      k--;
      if (k < PREFIX_HEAD) {
        // Every digit carried: the number gains a leading 1.
        p.copyWithin(PREFIX_HEAD + 1, PREFIX_HEAD, this.pl);
        p[PREFIX_HEAD] = 49;
        this.pl++;
        return;
      }
      s = (p[k] as number) + 1;
    }
    p[k] = s;
  }

  /** Write `ln` (a non-negative integer) into the prefix, two digits per step. */
  private setLine(ln: number): void {
    const p = this.pre;
    let digits = 1;
    for (let t = 10; t <= ln && digits < 16; t *= 10) digits++;
    let q = PREFIX_HEAD + digits;
    this.pl = q;
    let v = ln;
    while (v >= 100) {
      const r = v % 100;
      v = (v - r) / 100;
      p[--q] = DEC2[2 * r + 1] as number;
      p[--q] = DEC2[2 * r] as number;
    }
    if (v >= 10) {
      p[--q] = DEC2[2 * v + 1] as number;
      p[--q] = DEC2[2 * v] as number;
    } else p[--q] = 48 + v;
  }

  /**
   * Write the prefix at the line's start. It is copied as 16 bytes when it
   * is shorter, so it reaches up to 10 bytes into the body: every line's body
   * starts with a constant of at least 10 bytes, stored after the prefix.
   */
  prefix(): void {
    const n = this.n;
    const pl = this.pl;
    if (pl <= 16) {
      const dv = this.dv;
      const pv = this.preView;
      dv.setUint32(n, pv.getUint32(0, true), true);
      dv.setUint32(n + 4, pv.getUint32(4, true), true);
      dv.setUint32(n + 8, pv.getUint32(8, true), true);
      dv.setUint32(n + 12, pv.getUint32(12, true), true);
    } else {
      const b = this.buf;
      const p = this.pre;
      for (let k = 0; k < pl; k++) b[n + k] = p[k] as number;
    }
  }

  /**
   * Store the minimal lowercase hex of the 64-bit value (hi, lo) (no "0x")
   * so that it starts at `at`; returns where it ends. The digits are stored
   * in groups of four from the right, so up to 3 bytes before `at` are
   * overwritten: the caller stores what belongs there afterwards.
   */
  hexDigitsAt(at: number, hi: number, lo: number): number {
    const dv = this.dv;
    if (hi !== 0) {
      const e = at + 8 - (Math.clz32(hi) >>> 2);
      dv.setUint32(e, HEX4[lo >>> 16] as number, true);
      dv.setUint32(e + 4, HEX4[lo & 0xffff] as number, true);
      dv.setUint32(e - 4, HEX4[hi & 0xffff] as number, true);
      if (hi > 0xffff) dv.setUint32(e - 8, HEX4[hi >>> 16] as number, true);
      return e + 8;
    }
    const e = at + (lo === 0 ? 1 : 8 - (Math.clz32(lo) >>> 2));
    dv.setUint32(e - 4, HEX4[lo & 0xffff] as number, true);
    if (lo > 0xffff) dv.setUint32(e - 8, HEX4[lo >>> 16] as number, true);
    return e;
  }

  /** Make room for `k` more bytes at `n` (for the rare, variable-length parts: text, dump bytes). */
  reserve(k: number): void {
    if (this.n + k + SLACK > this.buf.length) {
      this.flush();
      if (k + SLACK > this.buf.length) this.replace(k + SLACK);
    }
  }

  /** Append ASCII text. */
  text(s: string): void {
    this.reserve(s.length);
    const b = this.buf;
    let n = this.n;
    for (let i = 0; i < s.length; i++) b[n++] = s.charCodeAt(i);
    this.n = n;
  }

  /** Append pre-encoded ASCII bytes (see ascii()); the caller has reserved room. */
  bytes(a: Uint8Array): void {
    const b = this.buf;
    let n = this.n;
    for (let i = 0; i < a.length; i++) b[n++] = a[i] as number;
    this.n = n;
  }

  /** Append "0x" and the minimal lowercase hex of (hi, lo), a digit at a time (the rare lines); the caller has reserved room. */
  hex64(hi: number, lo: number): void {
    const b = this.buf;
    let n = this.n;
    b[n++] = 48;
    b[n++] = 120;
    if (hi !== 0) {
      for (let s = 28 - (Math.clz32(hi) & ~3); s >= 0; s -= 4) b[n++] = HEX[(hi >>> s) & 15] as number;
      for (let s = 28; s >= 0; s -= 4) b[n++] = HEX[(lo >>> s) & 15] as number;
    } else {
      for (let s = lo === 0 ? 0 : 28 - (Math.clz32(lo) & ~3); s >= 0; s -= 4) b[n++] = HEX[(lo >>> s) & 15] as number;
    }
    this.n = n;
  }

  /** Append one byte as two hex digits. */
  hexByte(v: number): void {
    this.reserve(2);
    this.buf[this.n++] = HEX[(v >>> 4) & 15] as number;
    this.buf[this.n++] = HEX[v & 15] as number;
  }

  /** Hand what is written to the sink; the next bytes go into a new buffer (the same one once it is full size, with `reuse`). */
  flush(): void {
    if (this.n === 0) return;
    this.sink(this.buf.subarray(0, this.n));
    if (this.reuse && this.buf.length === MAX_CHUNK) this.n = 0;
    else this.replace(Math.min(this.buf.length * 2, MAX_CHUNK));
  }

  private replace(size: number): void {
    this.buf = new Uint8Array(size);
    this.dv = new DataView(this.buf.buffer);
    this.n = 0;
    this.limit = size - SLACK;
  }
}
