/**
 * `umbra trace convert`: a trace file to its scenario form (JSON Lines) and
 * back (the format: src/guest/trace/jsonl.ts). Both directions stream:
 * neither file is ever held whole in memory.
 */
import { closeSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import { recordOps } from '../guest/port.js';
import { MAX_LINE_BYTES, Scenario, ScenarioParser } from '../guest/scenario/parse.js';
import { MAX_OPS } from '../guest/trace/format.js';
import { commentObject, META_COMMENT, machineLine, opLine, TRAILER_COMMENT } from '../guest/trace/jsonl.js';
import { TraceWriter, type TraceWriterOptions } from '../guest/trace/writer.js';
import { forEachLine, forEachLineBytes } from '../import/input.js';
import { openTrace, traceFileOutput } from './trace.js';

/** Buffered text output to a file descriptor. */
class TextOut {
  private parts: string[] = [];
  private size = 0;
  constructor(private readonly fd: number) {}
  line(s: string): void {
    this.parts.push(s, '\n');
    this.size += s.length + 1;
    if (this.size >= 1 << 20) this.flush();
  }
  flush(): void {
    const b = Buffer.from(this.parts.join(''), 'utf8');
    let done = 0;
    while (done < b.length) done += writeSync(this.fd, b, done, b.length - done);
    this.parts = [];
    this.size = 0;
  }
}

/** Write `out` with `fill`; on any failure, remove the partial file and rethrow. */
function produce(out: string, fill: (fd: number) => void): void {
  const fd = openSync(out, 'w');
  try {
    fill(fd);
    closeSync(fd);
  } catch (e) {
    closeSync(fd);
    unlinkSync(out);
    throw e;
  }
}

/** Trace → scenario JSON Lines. Throws TraceError. Returns the number of operations. */
export function traceToJsonl(input: string, output: string): number {
  const t = openTrace(input);
  let ops = 0;
  produce(output, (fd) => {
    const o = new TextOut(fd);
    const m = t.machine;
    o.line(machineLine(m));
    for (const batch of t.blocks()) {
      for (let i = 0; i < batch.count; i++) o.line(opLine(batch, i));
      ops += batch.count;
    }
    o.line(`${META_COMMENT}${JSON.stringify(t.meta)}`);
    o.line(`${TRAILER_COMMENT}${JSON.stringify(t.trailer)}`);
    o.flush();
  });
  return ops;
}

/** Lines of a scenario file, each at most MAX_LINE_BYTES; held one at a time. */
const eachLine = (path: string, each: (line: string, lineNo: number) => void): number =>
  forEachLine(path, { maxLine: MAX_LINE_BYTES, what: 'a scenario' }, each);

export interface JsonlConversion {
  ops: number;
  /**
   * Some operation is not on line k+1 (blank or comment lines precede it):
   * the trace numbers operations consecutively, so a replay's "i" values
   * differ from `umbra exec` of this input.
   */
  renumbered: boolean;
}

/**
 * Scenario JSON Lines → trace. Throws ScenarioError (then no output file
 * remains). Metadata and trailer come from `# umbra-trace` comment lines when
 * present; otherwise the metadata names the source and the trailer is empty.
 */
export function jsonlToTrace(input: string, output: string, opts: TraceWriterOptions = {}): JsonlConversion {
  // First pass: the metadata, which the header needs but the file keeps at its end.
  let meta: Record<string, unknown> = { source: basename(input) };
  let trailer: Record<string, unknown> = {};
  eachLine(input, (line, lineNo) => {
    if (line.startsWith(META_COMMENT)) meta = commentObject(input, lineNo, line.slice(META_COMMENT.length));
    else if (line.startsWith(TRAILER_COMMENT))
      trailer = commentObject(input, lineNo, line.slice(TRAILER_COMMENT.length));
  });

  const parser = new ScenarioParser(input, MAX_OPS);
  parser.decode = (b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');
  let writer = null as TraceWriter | null;
  let ops = 0;
  let renumbered = false;
  const drain = (s: Scenario): void => {
    const w = writer as TraceWriter;
    recordOps(w, s);
    // A fresh batch: the parser sets only the operands an op has, the rest must read as zero.
    parser.scenario = new Scenario(s.machine, BATCH);
  };
  try {
    const limits = { maxLine: MAX_LINE_BYTES, what: 'a scenario' };
    const lines = forEachLineBytes(input, limits, (b, start, end, lineNo) => {
      parser.bytes(b, start, end, lineNo);
      const s = parser.scenario;
      if (s === null) return;
      if (writer === null) writer = new TraceWriter(traceFileOutput(output), s.machine, meta, opts);
      if (s.count > 0 && s.line[s.count - 1] === lineNo) {
        ops++;
        if (lineNo !== ops + 1) renumbered = true;
        if (s.count === BATCH) drain(s);
      }
    });
    const s = parser.finish(lines);
    drain(s);
    writer?.close(trailer);
  } catch (e) {
    if (writer !== null) {
      writer.abort();
      unlinkSync(output);
    }
    throw e;
  }
  return { ops, renumbered };
}

const BATCH = 4096;
