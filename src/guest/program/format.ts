/**
 * Program-trace format, version 2 (docs/program-format.md; version 1 lacks
 * the uwrite event and is still read): what a real
 * program did to its address space — page-granular accesses in order and the
 * system calls that change the address space or the process tree — one
 * event stream per process. A sibling of the trace format (same container:
 * header, CRC-checked raw-DEFLATE blocks, trailer, footer; same byte
 * interfaces), not an extension of it: a trace holds the guest operations a
 * kernel issued, a program trace what a user program asked of its kernel.
 *
 * This module: constants, the event set, and the block codec.
 */
import { TraceError } from '../trace/format.js';

/** "\x89UMBPRG\n". */
export const PROGRAM_MAGIC = Uint8Array.of(0x89, 0x55, 0x4d, 0x42, 0x50, 0x52, 0x47, 0x0a);
/** "UMBPEND\n": the last 8 bytes of a complete file. */
export const PROGRAM_END = Uint8Array.of(0x55, 0x4d, 0x42, 0x50, 0x45, 0x4e, 0x44, 0x0a);
/** The version the writer writes; the reader also reads version 1 (no uwrite events). */
export const PROGRAM_VERSION = 2;
export const PROGRAM_VERSION_MIN = 1;

export const P_HEADER_FIXED = 16; // magic, version, compression, meta length
export const P_BLOCK_HEADER = 17; // tag, crc32, events, raw length, compressed length
export const P_TRAILER_FIXED = 5; // tag, trailer length
export const P_FOOTER = 16; // trailer offset, end magic

/** Reader limits (a hostile file cannot make a reader allocate more). */
export const MAX_BLOCK_EVENTS = 16384;
export const MAX_BLOCK_RAW = 1 << 18;
export const MAX_BLOCK_Z = MAX_BLOCK_RAW + 1024;
export const MAX_META = 1 << 20;
export const MAX_TRAILER = 16 << 20;
/** The writer closes a block before its raw bytes could pass the limit (an event is at most ~1 KiB). */
export const BLOCK_RAW_FLUSH = MAX_BLOCK_RAW - 4096;
/** Segments of one exec image at most. */
export const MAX_SEGMENTS = 1024;
/** Highest page number an event may name: user addresses below 2^57 (5-level). */
export const MAX_PAGE = 2 ** 45;
/** Longest kernel write to user memory one call reports: Linux's MAX_RW_COUNT (INT_MAX rounded down to a page). */
export const MAX_UWRITE = 2 ** 31 - 4096;

/** Event codes (the low nibble of the event byte). */
export const EV = {
  access: 1,
  thread: 2,
  mmap: 3,
  munmap: 4,
  mprotect: 5,
  brk: 6,
  madvise: 7,
  mremap: 8,
  fork: 9,
  clone: 10,
  exec: 11,
  threadExit: 12,
  exit: 13,
  wait: 14,
  uwrite: 15,
} as const;

export const EV_NAME: readonly string[] = [
  '',
  'access',
  'thread',
  'mmap',
  'munmap',
  'mprotect',
  'brk',
  'madvise',
  'mremap',
  'fork',
  'clone',
  'exec',
  'thread_exit',
  'exit',
  'wait',
  'uwrite',
];

/** Operands (varints) per event code; exec is 2 + 6 per segment. */
export const ARITY: readonly number[] = [0, 0, 1, 7, 2, 3, 2, 3, 5, 2, 1, -1, 1, 1, 1, 2];

/** Flag of a thread event: the thread switched away from is blocked in a system call (idle), not preempted. */
export const THREAD_LEAVES_BLOCKED = 0x10;

export const KIND_READ = 0;
export const KIND_WRITE = 1;
export const KIND_FETCH = 2;
export const KIND_NAME = ['read', 'write', 'fetch'] as const;

/** mmap operands: addr, len, prot, flags, file (-1 anonymous), offset (bytes), result. */
export const MMAP_SHARED = 0x01;
/** exec segment kinds. */
export const SEG_MAP = 0;
export const SEG_STACK = 1;
export const SEG_BRK = 2;

/** One decoded block: events in structure-of-arrays form. */
export interface EventBlock {
  count: number;
  /** Event code per event. */
  code: Uint8Array;
  /** access: kind (read, write, fetch). */
  kind: Uint8Array;
  /** access: page number. */
  page: Float64Array;
  /** access: how many identical consecutive accesses the event stands for (≥ 1). */
  repeat: Float64Array;
  /** Every other event: its operands (see ARITY), file ids as given (−1: none). */
  args: Array<number[] | undefined>;
}

/** A bad program trace: `FILE: where: reason`, one line. */
export class ProgramError extends TraceError {}

// --- varints (unsigned LEB128 of numbers below 2^53) ---

export class ByteBuf {
  bytes = new Uint8Array(1 << 16);
  length = 0;
  private room(n: number): void {
    if (this.length + n <= this.bytes.length) return;
    const b = new Uint8Array(Math.max(this.bytes.length * 2, this.length + n));
    b.set(this.bytes.subarray(0, this.length));
    this.bytes = b;
  }
  u8(v: number): void {
    this.room(1);
    this.bytes[this.length++] = v;
  }
  varint(v: number): void {
    this.room(8);
    while (v >= 128) {
      this.bytes[this.length++] = (v % 128) | 128;
      v = Math.floor(v / 128);
    }
    this.bytes[this.length++] = v;
  }
  reset(): void {
    this.length = 0;
  }
}

const zigzag = (d: number): number => (d < 0 ? -2 * d - 1 : 2 * d);
const unzigzag = (z: number): number => (z % 2 === 1 ? -(z + 1) / 2 : z / 2);

/** Encoder state of one block: the previous page (access pages are deltas). */
export class BlockEncoder {
  readonly buf = new ByteBuf();
  events = 0;
  private prev = 0;

  access(kind: number, page: number, repeat: number): void {
    this.buf.u8(EV.access | (kind << 4) | (repeat > 1 ? 0x80 : 0));
    this.buf.varint(zigzag(page - this.prev));
    if (repeat > 1) this.buf.varint(repeat - 2);
    this.prev = page;
    this.events++;
  }

  /** Any other event; file ids are written +1 so that −1 (none) is 0. */
  event(code: number, args: readonly number[]): void {
    this.buf.u8(code);
    for (const a of args) this.buf.varint(a);
    this.events++;
  }

  reset(): void {
    this.buf.reset();
    this.events = 0;
    this.prev = 0;
  }
}

/** Which operands of an event are file ids (stored +1). */
export function isFileOperand(code: number, i: number): boolean {
  if (code === EV.mmap) return i === 4;
  if (code === EV.exec) return i === 0 || (i >= 2 && (i - 2) % 6 === 3);
  return false;
}

/**
 * Decode `n` events from `raw`, which they must use up exactly. Throws a
 * string (the reason) on the first bad byte; the reader adds the location.
 */
export function decodeEvents(raw: Uint8Array, n: number, version = PROGRAM_VERSION): EventBlock {
  const b: EventBlock = {
    count: n,
    code: new Uint8Array(n),
    kind: new Uint8Array(n),
    page: new Float64Array(n),
    repeat: new Float64Array(n),
    args: new Array(n),
  };
  let p = 0;
  let prev = 0;
  let e = 0;
  const varint = (): number => {
    let v = 0;
    let mul = 1;
    for (let i = 0; ; i++) {
      if (p >= raw.length) throw `event ${e + 1}: ends inside a number`;
      if (i === 8) throw `event ${e + 1}: number longer than 8 bytes`;
      const c = raw[p++] as number;
      v += (c & 127) * mul;
      if (c < 128) return v;
      mul *= 128;
    }
  };
  for (; e < n; e++) {
    if (p >= raw.length) throw `event ${e + 1}: the block ends after ${e} of ${n} events`;
    const op = raw[p++] as number;
    const code = op & 15;
    b.code[e] = code;
    if (code === EV.access) {
      const kind = (op >> 4) & 7;
      if (kind > 2) throw `event ${e + 1}: access kind ${kind} (0 read, 1 write, 2 fetch)`;
      const page = prev + unzigzag(varint());
      if (!Number.isSafeInteger(page) || page < 0 || page >= MAX_PAGE)
        throw `event ${e + 1}: page ${page} outside the user address space`;
      b.kind[e] = kind;
      b.page[e] = page;
      b.repeat[e] = (op & 0x80) !== 0 ? varint() + 2 : 1;
      prev = page;
      continue;
    }
    if (code === 0 || code >= ARITY.length || (code === EV.uwrite && version < 2))
      throw `event ${e + 1}: unknown event code ${code}${code < ARITY.length ? ` in a version ${version} file` : ''}`;
    // A thread switch's flag 0x10: the thread it leaves is blocked (in a system call), not preempted.
    if (code === EV.thread && (op & 0xf0) === THREAD_LEAVES_BLOCKED) b.kind[e] = 1;
    else if ((op & 0xf0) !== 0) throw `event ${e + 1}: ${EV_NAME[code]} with flag bits 0x${(op & 0xf0).toString(16)}`;
    let arity = ARITY[code] as number;
    const args: number[] = [];
    if (arity < 0) {
      args.push(varint());
      const segs = varint();
      args.push(segs);
      if (segs < 1 || segs > MAX_SEGMENTS) throw `event ${e + 1}: exec with ${segs} segments (1 to ${MAX_SEGMENTS})`;
      arity = segs * 6;
    }
    for (let i = 0; i < arity; i++) args.push(varint());
    for (let i = 0; i < args.length; i++) if (isFileOperand(code, i)) args[i] = (args[i] as number) - 1;
    b.args[e] = args;
  }
  if (p !== raw.length) throw `${raw.length - p} bytes left over after ${n} events`;
  return b;
}
