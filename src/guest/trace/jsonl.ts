/**
 * Converting between a trace and its scenario form (JSON Lines, scenario
 * format version 1). Line 1 is the machine, line k+1 is op k, so `umbra exec`
 * of the scenario numbers its output exactly as a replay of the trace does.
 * The metadata and trailer follow the last operation as comment lines
 *
 *   # umbra-trace meta {...}
 *   # umbra-trace trailer {...}
 *
 * where they shift no line number, and a conversion back restores them.
 * Both directions stream: neither file is ever held whole in memory.
 */
import { closeSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import { forEachLine } from '../../import/input.js';
import { parseJsonObject } from '../../util/json.js';
import { recordOps } from '../port.js';
import { MAX_LINE_BYTES, OP, Scenario, ScenarioError, ScenarioParser } from '../scenario/parse.js';
import { MAX_OPS, OP_NAME } from './format.js';
import { openTrace } from './reader.js';
import { TraceWriter, type TraceWriterOptions } from './writer.js';

export const META_COMMENT = '# umbra-trace meta ';
export const TRAILER_COMMENT = '# umbra-trace trailer ';

const CR_NAME = ['cr0', '', '', 'cr3', 'cr4'];

/** A 64-bit value as the scenario format's lowercase "0x…" string, quotes included. */
function hex(hi: number, lo: number): string {
  return hi === 0 ? `"0x${lo.toString(16)}"` : `"0x${hi.toString(16)}${lo.toString(16).padStart(8, '0')}"`;
}

/** Operation i of a batch as one scenario line (without the newline). */
export function opLine(s: Scenario, i: number): string {
  const op = s.op[i] as number;
  const small = s.small[i] as number;
  const cpl = s.cpl[i] as number;
  const a = hex(s.aHi[i] as number, s.aLo[i] as number);
  const v = (): string => hex(s.vHi[i] as number, s.vLo[i] as number);
  const head = `{"op":"${OP_NAME[op]}"`;
  switch (op) {
    case OP.cpu:
      return `${head},"vcpu":${small}}`;
    case OP.wrcr:
      return `${head},"reg":"${CR_NAME[small]}","value":${v()}}`;
    case OP.wrmsr:
      return `${head},"msr":"efer","value":${v()}}`;
    case OP.wrpkru:
      return `${head},"value":${v()}}`;
    case OP.setac:
      return `${head},"value":${small}}`;
    case OP.read:
      return `${head},"va":${a},"size":${small},"cpl":${cpl}}`;
    case OP.write:
      return `${head},"va":${a},"size":${small},"value":${v()},"cpl":${cpl}}`;
    case OP.fetch:
      return `${head},"va":${a},"cpl":${cpl}}`;
    case OP.pread:
      return `${head},"gpa":${a},"size":${small}}`;
    case OP.pwrite:
      return `${head},"gpa":${a},"size":${small},"value":${v()}}`;
    case OP.invlpg:
      return `${head},"va":${a}}`;
    case OP.invpcid:
      // A pcid kept as 0x1000 ("above 0xfff") is written as 4096, which parses back to it.
      return `${head},"type":${small},"pcid":${s.vLo[i]},"va":${a}}`;
    case OP.flush:
      return `${head}}`;
    case OP.dump:
      return `${head},"gpa":${a},"length":${s.vLo[i]}}`;
    default:
      throw new Error(`op code ${op}`);
  }
}

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
    o.line(
      `{"op":"machine","vcpus":${m.vcpus},"memory":${hex(Math.floor(m.memory / 2 ** 32), m.memory >>> 0)},"maxphyaddr":${m.maxphyaddr}}`,
    );
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
    const lines = eachLine(input, (line, lineNo) => {
      parser.line(line, lineNo);
      const s = parser.scenario;
      if (s === null) return;
      if (writer === null) writer = new TraceWriter(output, s.machine, meta, opts);
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

function commentObject(file: string, lineNo: number, text: string): Record<string, unknown> {
  const o = parseJsonObject(text);
  if (typeof o === 'string') throw new ScenarioError(file, lineNo, `umbra-trace comment: ${o}`);
  return o;
}
