/**
 * Bounded reading of user-supplied files (or standard input, "-"): a file
 * read whole must fit a stated limit, a text read line by line has a limit
 * per line and optionally on its total size. Reading stops at the limit, so
 * /dev/zero or an endless pipe ends in an InputError at once instead of
 * growing memory.
 */
import { closeSync, openSync, readSync } from 'node:fs';

/** Bad input: the message is complete (`FILE: reason` or `FILE:LINE: reason`). */
export class InputError extends Error {}

const CHUNK = 1 << 16;

/** "1 MiB", "16 MiB", "2 GiB", "512 bytes". */
export function sizeText(bytes: number): string {
  for (const [unit, shift] of [
    ['GiB', 30],
    ['MiB', 20],
    ['KiB', 10],
  ] as const) {
    if (bytes >= 2 ** shift && bytes % 2 ** shift === 0) return `${bytes / 2 ** shift} ${unit}`;
  }
  return `${bytes} bytes`;
}

function openInput(path: string): number {
  if (path === '-') return 0;
  try {
    return openSync(path, 'r');
  } catch (e) {
    throw systemError(path, e);
  }
}

function systemError(path: string, e: unknown): unknown {
  const err = e as NodeJS.ErrnoException;
  if (err.code === 'ENOENT') return new InputError(`${path}: no such file`);
  if (err.code === 'EISDIR') return new InputError(`${path}: is a directory`);
  if (typeof err.code === 'string') return new InputError(`${path}: ${err.message}`);
  return e;
}

/** Read up to `length` bytes at the current position; EAGAIN (a non-blocking pipe) waits and retries. */
function readSome(path: string, fd: number, buf: Uint8Array, length: number): number {
  for (;;) {
    try {
      return readSync(fd, buf, 0, length, null);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
        continue;
      }
      if ((e as NodeJS.ErrnoException).code === 'EOF') return 0;
      throw systemError(path, e);
    }
  }
}

/** The whole file as bytes, refused (InputError) once it passes `limit` bytes; `what` names the kind of file. */
export function readWhole(path: string, limit: number, what: string): Buffer {
  const fd = openInput(path);
  try {
    const parts: Buffer[] = [];
    let total = 0;
    for (;;) {
      const b = Buffer.allocUnsafe(Math.min(CHUNK, limit + 1 - total));
      const n = readSome(path, fd, b, b.length);
      if (n === 0) break;
      parts.push(b.subarray(0, n));
      total += n;
      if (total > limit) throw new InputError(`${path}: larger than ${sizeText(limit)}, the limit for ${what}`);
    }
    return Buffer.concat(parts, total);
  } finally {
    if (fd !== 0) closeSync(fd);
  }
}

/** The whole file as UTF-8 text (see readWhole). */
export function readWholeText(path: string, limit: number, what: string): string {
  return readWhole(path, limit, what).toString('utf8');
}

export interface LineLimits {
  /** Longest line in bytes, newline excluded. */
  maxLine: number;
  /** Largest input in bytes (default: no limit beyond line numbers fitting 32 bits). */
  maxBytes?: number;
  /** What the input is, for messages: "a scenario". */
  what: string;
}

/** Lines are numbered in 32 bits downstream (Scenario.line). */
const MAX_LINES = 2 ** 32 - 2;

/**
 * Call `each(line, lineNo)` for every line of a UTF-8 text, read in chunks:
 * numbered from 1, the text after the last newline a line too (even when
 * empty), as parseScenario numbers them. Returns the number of lines. Only
 * the current line is held, so memory is bounded by `maxLine`.
 */
export function forEachLine(path: string, limits: LineLimits, each: (line: string, lineNo: number) => void): number {
  return forEachLineBytes(path, limits, (b, start, end, lineNo) => each(b.toString('utf8', start, end), lineNo));
}

/**
 * forEachLine without making strings: `each(bytes, start, end, lineNo)`
 * gets the line as bytes [start, end) of a buffer that is reused once it
 * returns.
 */
export function forEachLineBytes(
  path: string,
  limits: LineLimits,
  each: (bytes: Buffer, start: number, end: number, lineNo: number) => void,
): number {
  const fd = openInput(path);
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    const carry: Buffer[] = []; // the start of the current line, from earlier chunks
    let carried = 0;
    let lineNo = 0;
    let total = 0;
    const tooLong = (): never => {
      throw new InputError(
        `${path}:${lineNo + 1}: the line is longer than ${sizeText(limits.maxLine)}, the limit for a line of ${limits.what}`,
      );
    };
    const emit = (b: Buffer, start: number, end: number): void => {
      if (++lineNo > MAX_LINES) throw new InputError(`${path}: more than ${MAX_LINES} lines`);
      if (carried === 0) each(b, start, end, lineNo);
      else {
        const line = Buffer.concat([...carry, b.subarray(start, end)]);
        carry.length = 0;
        carried = 0;
        each(line, 0, line.length, lineNo);
      }
    };
    for (;;) {
      const n = readSome(path, fd, buf, buf.length);
      if (n === 0) break;
      total += n;
      if (limits.maxBytes !== undefined && total > limits.maxBytes)
        throw new InputError(`${path}: larger than ${sizeText(limits.maxBytes)}, the limit for ${limits.what}`);
      let start = 0;
      for (let nl = buf.indexOf(10, 0); nl >= 0 && nl < n; nl = buf.indexOf(10, start)) {
        if (carried + nl - start > limits.maxLine) tooLong();
        emit(buf, start, nl);
        start = nl + 1;
      }
      if (start < n) {
        if (carried + n - start > limits.maxLine) tooLong();
        carry.push(Buffer.from(buf.subarray(start, n)));
        carried += n - start;
      }
    }
    emit(buf, 0, 0);
    return lineNo;
  } finally {
    if (fd !== 0) closeSync(fd);
  }
}
