/**
 * Writing and reading program traces (docs/program-format.md). The writer
 * takes one process's events at a time (its blocks lie together in the file)
 * and collapses runs of identical consecutive accesses; the reader reads the
 * header and, from the end, the trailer that indexes the streams, then
 * streams any one process's blocks on demand, each checked (limits, CRC,
 * events) before it is returned — memory is one block per stream being read,
 * whatever the file declares.
 */
import { parseJsonObject } from '../../util/json.js';
import { type ByteSink, crc32, type TraceInput, type TraceOutput } from '../trace/format.js';
import {
  BLOCK_RAW_FLUSH,
  BlockEncoder,
  decodeEvents,
  EV,
  EV_NAME,
  type EventBlock,
  isFileOperand,
  MAX_BLOCK_EVENTS,
  MAX_BLOCK_RAW,
  MAX_BLOCK_Z,
  MAX_META,
  MAX_PAGE,
  MAX_TRAILER,
  MAX_UWRITE,
  P_BLOCK_HEADER,
  P_FOOTER,
  P_HEADER_FIXED,
  P_TRAILER_FIXED,
  PROGRAM_END,
  PROGRAM_MAGIC,
  PROGRAM_VERSION,
  PROGRAM_VERSION_MIN,
  ProgramError,
  SEG_BRK,
  SEG_STACK,
} from './format.js';

const TAG_BLOCK = 0x42;
const TAG_TRAILER = 0x54;
const DEFLATE_LEVEL = 9;

/** One process of the capture, as the trailer indexes it. */
export interface ProgramStream {
  /** Index in the trailer's stream list (fork and wait events name streams by it). */
  index: number;
  /** Process id on the capturing machine (a label: the replay numbers its own). */
  pid: number;
  /** Stream that forked it, −1 for the first process. */
  parent: number;
  /** Thread id of its first thread. */
  tid: number;
  /** Its command (the last program it executed). */
  command: string;
  offset: number;
  blocks: number;
  events: number;
  /** Accesses the events stand for (repeats included) and distinct pages touched. */
  accesses: number;
  pages: number;
  /** Highest page number it names. */
  maxPage: number;
}

export interface ProgramFile {
  path: string;
  version: number;
  meta: Record<string, unknown>;
  trailer: Record<string, unknown>;
  streams: ProgramStream[];
  /** File identities (paths on the capturing machine) by file id. */
  files: string[];
  fileBytes: number;
  /** The blocks of one stream in order, each checked; reads the file afresh. */
  blocks(stream: number): Generator<EventBlock, void, undefined>;
}

const u32 = (b: Uint8Array, o: number): number =>
  ((b[o] as number) | ((b[o + 1] as number) << 8) | ((b[o + 2] as number) << 16) | ((b[o + 3] as number) << 24)) >>> 0;
const u16 = (b: Uint8Array, o: number): number => (b[o] as number) | ((b[o + 1] as number) << 8);
const putU32 = (b: Uint8Array, o: number, v: number): void => {
  b[o] = v & 255;
  b[o + 1] = (v >>> 8) & 255;
  b[o + 2] = (v >>> 16) & 255;
  b[o + 3] = (v >>> 24) & 255;
};

/** Does `lead` start with the program-trace magic? */
export function isProgramStart(lead: Uint8Array): boolean {
  if (lead.length < PROGRAM_MAGIC.length) return false;
  for (let i = 0; i < PROGRAM_MAGIC.length; i++) if (lead[i] !== PROGRAM_MAGIC[i]) return false;
  return true;
}

// ---------------------------------------------------------------- writer

export class ProgramWriter {
  private readonly sink: ByteSink;
  private offset = 0;
  private readonly enc = new BlockEncoder();
  private readonly streams: ProgramStream[] = [];
  private cur: ProgramStream | null = null;
  private pages = new Set<number>();
  /** The pending run of identical accesses. */
  private runKind = -1;
  private runPage = 0;
  private runCount = 0;
  private closed = false;

  constructor(
    private readonly out: TraceOutput,
    meta: Record<string, unknown>,
  ) {
    const m = new TextEncoder().encode(JSON.stringify(meta));
    if (m.length > MAX_META) throw new RangeError('program metadata above 1 MiB');
    const h = new Uint8Array(P_HEADER_FIXED + m.length + 4);
    h.set(PROGRAM_MAGIC, 0);
    h[8] = PROGRAM_VERSION;
    h[10] = 0;
    putU32(h, 12, m.length);
    h.set(m, P_HEADER_FIXED);
    putU32(h, P_HEADER_FIXED + m.length, crc32(h, 0, P_HEADER_FIXED + m.length));
    this.sink = out.open();
    this.write(h);
  }

  private write(b: Uint8Array): void {
    this.sink.write(b);
    this.offset += b.length;
  }

  /** Start the events of one process; returns its stream index. */
  beginStream(s: { pid: number; parent: number; tid: number; command: string }): number {
    if (this.cur !== null) throw new Error('ProgramWriter: a stream is already open');
    const index = this.streams.length;
    this.cur = { index, ...s, offset: this.offset, blocks: 0, events: 0, accesses: 0, pages: 0, maxPage: 0 };
    this.pages = new Set();
    return index;
  }

  /** Events written so far, over every stream. */
  get eventCount(): number {
    let n = this.cur?.events ?? 0;
    for (const s of this.streams) n += s.events;
    return n;
  }

  /** Rename the open stream's command (after an exec). */
  setCommand(command: string): void {
    if (this.cur !== null) this.cur.command = command;
  }

  /** One access; identical consecutive ones become one event with a repeat count. */
  access(kind: number, page: number): void {
    const s = this.cur as ProgramStream;
    s.accesses++;
    if (kind === this.runKind && page === this.runPage) {
      this.runCount++;
      return;
    }
    this.flushRun();
    this.runKind = kind;
    this.runPage = page;
    this.runCount = 1;
    if (page > s.maxPage) s.maxPage = page;
    this.pages.add(page);
  }

  private flushRun(): void {
    if (this.runCount === 0) return;
    this.enc.access(this.runKind, this.runPage, this.runCount);
    this.runCount = 0;
    this.runKind = -1;
    this.counted();
  }

  /** Any other event (file operands as file ids, −1 for none). */
  event(code: number, args: readonly number[]): void {
    this.flushRun();
    const s = this.cur as ProgramStream;
    this.enc.event(
      code,
      args.map((a, i) => (isFileOperand(code, i) ? a + 1 : a)),
    );
    if (code === EV.mmap || code === EV.mremap || code === EV.uwrite) {
      const at = args[code === EV.mmap ? 6 : code === EV.mremap ? 4 : 0] as number;
      const top = Math.floor((at + (args[1] as number) + 4095) / 4096);
      if (top > s.maxPage) s.maxPage = top;
    }
    this.counted();
  }

  private counted(): void {
    (this.cur as ProgramStream).events++;
    if (this.enc.events >= MAX_BLOCK_EVENTS || this.enc.buf.length >= BLOCK_RAW_FLUSH) this.flushBlock();
  }

  private flushBlock(): void {
    if (this.enc.events === 0) return;
    const raw = this.enc.buf.bytes.subarray(0, this.enc.buf.length);
    const z = this.out.deflate(raw, DEFLATE_LEVEL);
    const h = new Uint8Array(P_BLOCK_HEADER + z.length);
    h[0] = TAG_BLOCK;
    putU32(h, 5, this.enc.events);
    putU32(h, 9, raw.length);
    putU32(h, 13, z.length);
    h.set(z, P_BLOCK_HEADER);
    putU32(h, 1, crc32(h, 5, h.length));
    this.write(h);
    (this.cur as ProgramStream).blocks++;
    this.enc.reset();
  }

  endStream(): void {
    this.flushRun();
    this.flushBlock();
    const s = this.cur as ProgramStream;
    s.pages = this.pages.size;
    this.streams.push(s);
    this.cur = null;
  }

  /** Write the trailer (stream index, file table, `extra`) and the footer. */
  close(files: readonly string[], extra: Record<string, unknown> = {}): void {
    if (this.closed) return;
    this.closed = true;
    if (this.cur !== null) this.endStream();
    const trailer = { ...extra, files, streams: this.streams };
    const t = new TextEncoder().encode(JSON.stringify(trailer));
    const at = this.offset;
    const b = new Uint8Array(P_TRAILER_FIXED + t.length + 4 + P_FOOTER);
    b[0] = TAG_TRAILER;
    putU32(b, 1, t.length);
    b.set(t, P_TRAILER_FIXED);
    putU32(b, P_TRAILER_FIXED + t.length, crc32(b, 0, P_TRAILER_FIXED + t.length));
    const f = P_TRAILER_FIXED + t.length + 4;
    putU32(b, f, at % 2 ** 32);
    putU32(b, f + 4, Math.floor(at / 2 ** 32));
    b.set(PROGRAM_END, f + 8);
    this.write(b);
    this.sink.close();
  }
}

// ---------------------------------------------------------------- reader

function readAt(input: TraceInput, src: ReturnType<TraceInput['open']>, offset: number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  if (offset + n > src.size || src.read(b, offset) !== n)
    throw new ProgramError(input.path, `offset ${offset}`, `file ends before ${n} bytes`);
  return b;
}

const isCount = (v: unknown, max = Number.MAX_SAFE_INTEGER): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= max;

/** Open a program trace: header and trailer now (so truncation fails at once), blocks on demand. */
export function readProgram(input: TraceInput): ProgramFile {
  const path = input.path;
  const bad = (where: string, reason: string): ProgramError => new ProgramError(path, where, reason);
  const src = input.open();
  try {
    const size = src.size;
    if (size < P_HEADER_FIXED + 4 + P_TRAILER_FIXED + 4 + P_FOOTER)
      throw bad('offset 0', `${size} bytes: too short for a program trace`);
    const fixed = readAt(input, src, 0, P_HEADER_FIXED);
    if (!isProgramStart(fixed)) throw bad('offset 0', 'not a program trace (bad magic)');
    const version = u16(fixed, 8);
    if (version < PROGRAM_VERSION_MIN || version > PROGRAM_VERSION)
      throw bad(
        'offset 8',
        `unsupported version ${version} (this reader knows ${PROGRAM_VERSION_MIN} to ${PROGRAM_VERSION})`,
      );
    if (u16(fixed, 10) !== 0) throw bad('offset 10', `unknown compression method ${u16(fixed, 10)} (0: raw DEFLATE)`);
    const mlen = u32(fixed, 12);
    if (mlen > MAX_META || P_HEADER_FIXED + mlen + 4 > size)
      throw bad('offset 12', `metadata length ${mlen} too large`);
    const head = readAt(input, src, 0, P_HEADER_FIXED + mlen + 4);
    if (u32(head, P_HEADER_FIXED + mlen) !== crc32(head, 0, P_HEADER_FIXED + mlen))
      throw bad(`offset ${P_HEADER_FIXED + mlen}`, 'header checksum mismatch');
    const meta = parseJson(new TextDecoder().decode(head.subarray(P_HEADER_FIXED, P_HEADER_FIXED + mlen)), (why) =>
      bad(`offset ${P_HEADER_FIXED}`, `metadata: ${why}`),
    );
    const headerEnd = P_HEADER_FIXED + mlen + 4;
    const foot = readAt(input, src, size - P_FOOTER, P_FOOTER);
    for (let i = 0; i < 8; i++)
      if (foot[8 + i] !== PROGRAM_END[i]) throw bad(`offset ${size - 8}`, 'no end marker: the file is truncated');
    const at = u32(foot, 0) + u32(foot, 4) * 2 ** 32;
    if (at < headerEnd || at + P_TRAILER_FIXED + 4 > size - P_FOOTER)
      throw bad(`offset ${size - P_FOOTER}`, `trailer offset ${at} outside the file`);
    const tfix = readAt(input, src, at, P_TRAILER_FIXED);
    if (tfix[0] !== TAG_TRAILER) throw bad(`offset ${at}`, 'no trailer record there');
    const tlen = u32(tfix, 1);
    if (tlen > MAX_TRAILER || at + P_TRAILER_FIXED + tlen + 4 !== size - P_FOOTER)
      throw bad(`offset ${at + 1}`, `trailer length ${tlen} does not end at the footer`);
    const tb = readAt(input, src, at, P_TRAILER_FIXED + tlen + 4);
    if (u32(tb, P_TRAILER_FIXED + tlen) !== crc32(tb, 0, P_TRAILER_FIXED + tlen))
      throw bad(`offset ${at + P_TRAILER_FIXED + tlen}`, 'trailer checksum mismatch');
    const trailer = parseJson(new TextDecoder().decode(tb.subarray(P_TRAILER_FIXED, P_TRAILER_FIXED + tlen)), (why) =>
      bad(`offset ${at + P_TRAILER_FIXED}`, `trailer: ${why}`),
    );
    const where = `trailer`;
    const files = trailer.files;
    if (!Array.isArray(files) || !files.every((f) => typeof f === 'string'))
      throw bad(where, '"files" must be an array of strings');
    const list = trailer.streams;
    if (!Array.isArray(list) || list.length === 0) throw bad(where, '"streams" must be a non-empty array');
    const streams: ProgramStream[] = [];
    let end = headerEnd;
    for (let i = 0; i < list.length; i++) {
      const s = list[i] as Record<string, unknown>;
      const w = `${where}: stream ${i}`;
      if (typeof s !== 'object' || s === null) throw bad(w, 'not an object');
      for (const f of ['pid', 'tid', 'offset', 'blocks', 'events', 'accesses', 'pages', 'maxPage'])
        if (!isCount(s[f])) throw bad(w, `"${f}" must be a non-negative integer`);
      if (s.index !== i) throw bad(w, `"index" must be ${i}`);
      if (typeof s.command !== 'string') throw bad(w, '"command" must be a string');
      const parent = s.parent;
      if (!(parent === -1 && i === 0) && !(isCount(parent) && parent < i))
        throw bad(w, `"parent" must be an earlier stream${i === 0 ? ' or -1' : ''}`);
      if ((s.offset as number) !== end)
        throw bad(w, `"offset" ${s.offset} is not where the previous stream ended (${end})`);
      if ((s.maxPage as number) >= MAX_PAGE) throw bad(w, '"maxPage" outside the user address space');
      streams.push(s as unknown as ProgramStream);
      // Blocks are checked when read; here only that the streams tile the file in order.
      end = (s.offset as number) + blockBytes(input, src, s.offset as number, s.blocks as number, at, w);
    }
    if (end !== at) throw bad(where, `the streams end at offset ${end}, the trailer starts at ${at}`);
    return {
      path,
      version,
      meta,
      trailer,
      streams,
      files: files as string[],
      fileBytes: size,
      blocks: (stream) => readBlocks(input, version, streams, files.length, stream),
    };
  } finally {
    src.close();
  }
}

function parseJson(text: string, err: (why: string) => ProgramError): Record<string, unknown> {
  const r = parseJsonObject(text);
  if (typeof r === 'string') throw err(r);
  return r;
}

/** Bytes the `n` blocks from `offset` take (headers only are read). */
function blockBytes(
  input: TraceInput,
  src: ReturnType<TraceInput['open']>,
  offset: number,
  n: number,
  limit: number,
  where: string,
): number {
  let o = offset;
  for (let b = 0; b < n; b++) {
    if (o + P_BLOCK_HEADER > limit) throw new ProgramError(input.path, `${where} block ${b}`, 'runs past the trailer');
    const h = readAt(input, src, o, P_BLOCK_HEADER);
    if (h[0] !== TAG_BLOCK) throw new ProgramError(input.path, `offset ${o}`, `${where} block ${b}: no block there`);
    const z = u32(h, 13);
    if (z > MAX_BLOCK_Z || o + P_BLOCK_HEADER + z > limit)
      throw new ProgramError(input.path, `offset ${o + 13}`, `${where} block ${b}: compressed length ${z} too large`);
    o += P_BLOCK_HEADER + z;
  }
  return o - offset;
}

function* readBlocks(
  input: TraceInput,
  version: number,
  streams: readonly ProgramStream[],
  nfiles: number,
  index: number,
): Generator<EventBlock, void, undefined> {
  const s = streams[index];
  if (s === undefined) throw new RangeError(`no stream ${index}`);
  const src = input.open();
  try {
    let o = s.offset;
    let events = 0;
    for (let b = 0; b < s.blocks; b++) {
      const loc = `stream ${index} block ${b}`;
      const bad = (reason: string): ProgramError => new ProgramError(input.path, loc, reason);
      const h = readAt(input, src, o, P_BLOCK_HEADER);
      const n = u32(h, 5);
      const r = u32(h, 9);
      const zl = u32(h, 13);
      if (zl > MAX_BLOCK_Z) throw bad(`compressed length ${zl} too large`);
      const z = readAt(input, src, o + P_BLOCK_HEADER, zl);
      const whole = new Uint8Array(12 + zl);
      whole.set(h.subarray(5, 17), 0);
      whole.set(z, 12);
      if (crc32(whole) !== u32(h, 1)) throw bad('checksum mismatch');
      if (n < 1 || n > MAX_BLOCK_EVENTS) throw bad(`${n} events (1 to ${MAX_BLOCK_EVENTS})`);
      if (r < n || r > MAX_BLOCK_RAW) throw bad(`raw length ${r} (${n} to ${MAX_BLOCK_RAW})`);
      let raw: Uint8Array | null;
      try {
        raw = input.inflate(z, r);
      } catch {
        throw bad('corrupt DEFLATE data');
      }
      if (raw === null || raw.length !== r)
        throw bad(`inflates to ${raw === null ? 'more' : raw.length} bytes, not ${r}`);
      let blk: EventBlock;
      try {
        blk = decodeEvents(raw, n, version);
        checkEvents(blk, streams, nfiles, index);
      } catch (e) {
        if (typeof e === 'string') throw bad(e);
        throw e;
      }
      events += n;
      o += P_BLOCK_HEADER + zl;
      yield blk;
    }
    if (events !== s.events)
      throw new ProgramError(input.path, `stream ${index}`, `${events} events, the trailer says ${s.events}`);
  } finally {
    src.close();
  }
}

/** Operand rules beyond the encoding: file ids, stream references, segment shapes, uwrite ranges. */
function checkEvents(b: EventBlock, streams: readonly ProgramStream[], nfiles: number, self: number): void {
  const file = (f: number, e: number): void => {
    if (f < -1 || f >= nfiles) throw `event ${e + 1}: file id ${f} not in the file table (${nfiles} files)`;
  };
  for (let e = 0; e < b.count; e++) {
    const code = b.code[e] as number;
    if (code === EV.access) continue;
    const a = b.args[e] as number[];
    const name = EV_NAME[code];
    switch (code) {
      case EV.mmap:
        file(a[4] as number, e);
        if ((a[6] as number) % 4096 !== 0) throw `event ${e + 1}: mmap result ${a[6]} not page aligned`;
        break;
      case EV.munmap:
      case EV.mprotect:
      case EV.madvise:
        if ((a[0] as number) % 4096 !== 0) throw `event ${e + 1}: ${name} address not page aligned`;
        break;
      case EV.mremap:
        if ((a[0] as number) % 4096 !== 0 || (a[4] as number) % 4096 !== 0)
          throw `event ${e + 1}: mremap addresses not page aligned`;
        break;
      case EV.uwrite: {
        const [at, len] = a as [number, number];
        if (len < 1 || len > MAX_UWRITE) throw `event ${e + 1}: uwrite of ${len} bytes (1 to ${MAX_UWRITE})`;
        if (at + len > MAX_PAGE * 4096) throw `event ${e + 1}: uwrite past the user address space`;
        break;
      }
      case EV.fork:
      case EV.wait: {
        const c = streams[a[0] as number];
        if (c === undefined || c.parent !== self)
          throw `event ${e + 1}: ${name} of stream ${a[0]}, not a child of stream ${self}`;
        break;
      }
      case EV.exec: {
        file(a[0] as number, e);
        let stacks = 0;
        for (let i = 2; i < a.length; i += 6) {
          const start = a[i] as number;
          const end = a[i + 1] as number;
          const f = a[i + 3] as number;
          const kind = a[i + 5] as number;
          if (start % 4096 !== 0 || end % 4096 !== 0 || end <= start || end / 4096 > MAX_PAGE)
            throw `event ${e + 1}: exec segment ${(i - 2) / 6} is not a page-aligned range`;
          file(f, e);
          if (kind > SEG_BRK) throw `event ${e + 1}: exec segment kind ${kind}`;
          if (kind === SEG_STACK) stacks++;
        }
        if (stacks !== 1) throw `event ${e + 1}: exec image with ${stacks} stacks (must be 1)`;
        break;
      }
    }
  }
}
