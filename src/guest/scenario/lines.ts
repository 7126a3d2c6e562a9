/**
 * The scenario format's output (shared/spec/scenario-format.md, "Output")
 * as an observer of the guest port: one JSON line per observable event,
 * written as ASCII into a reusable buffer, then the final line.
 */
import type { PortObserver } from '../observe.js';
import { ascii, LineWriter } from './output.js';

/** Bytes 4k … 4k+3 of the ASCII text `s` as a little-endian word (for whole-word stores of constants). */
function word(s: string, k: number): number {
  let w = 0;
  for (let j = 3; j >= 0; j--) w = (w << 8) | (s.charCodeAt(4 * k + j) || 0);
  return w >>> 0;
}

const OK_TEXT = ',"ok":true}\n';
const [OK0, OK1, OK2] = [word(OK_TEXT, 0), word(OK_TEXT, 1), word(OK_TEXT, 2)] as [number, number, number];
const VALUE_TEXT = ',"value":"0x';
const [V0, V1, V2] = [word(VALUE_TEXT, 0), word(VALUE_TEXT, 1), word(VALUE_TEXT, 2)] as [number, number, number];
/** `"}\n` and a zero byte, which the next line overwrites. */
const VALUE_END = word('"}\n', 0);
const PF = ascii(',"fault":{"vector":"PF","error":"');
const CR2 = ascii('","cr2":"');
const PF_END = ascii('"}}\n');
const GP = ascii(',"fault":{"vector":"GP","error":"0x0"}}\n');
const DUMP = ascii(',"bytes":"');
const DUMP_END = ascii('"}\n');

export class ScenarioLines implements PortObserver {
  private readonly w: LineWriter;
  /** `reuse`: the sink copies what it keeps (LineWriter). */
  constructor(sink: (chunk: Uint8Array) => void, reuse = false) {
    this.w = new LineWriter(sink, reuse);
  }

  ok(ln: number): void {
    const w = this.w;
    const p = w.begin(ln);
    w.prefix();
    const dv = w.view;
    dv.setUint32(p, OK0, true);
    dv.setUint32(p + 4, OK1, true);
    dv.setUint32(p + 8, OK2, true);
    w.n = p + 12;
  }

  value(ln: number, hi: number, lo: number): void {
    const w = this.w;
    const p = w.begin(ln);
    // The digits first: they overwrite up to 3 bytes before them, which the constant then covers.
    const e = w.hexDigitsAt(p + 12, hi, lo);
    w.prefix();
    const dv = w.view;
    dv.setUint32(p, V0, true);
    dv.setUint32(p + 4, V1, true);
    dv.setUint32(p + 8, V2, true);
    dv.setUint32(e, VALUE_END, true);
    w.n = e + 3;
  }

  /** A rare line: the prefix, then its bytes one by one (begin() leaves room for the longest). */
  private start(ln: number): LineWriter {
    const w = this.w;
    const p = w.begin(ln);
    w.prefix();
    w.n = p;
    return w;
  }

  pageFault(ln: number, error: number, cr2Hi: number, cr2Lo: number): void {
    const w = this.start(ln);
    w.bytes(PF);
    w.hex64(0, error);
    w.bytes(CR2);
    w.hex64(cr2Hi, cr2Lo);
    w.bytes(PF_END);
  }

  generalProtection(ln: number): void {
    this.start(ln).bytes(GP);
  }

  dumpStart(ln: number, _length: number): void {
    this.start(ln).bytes(DUMP);
  }

  dumpByte(b: number): void {
    this.w.hexByte(b);
  }

  dumpEnd(): void {
    this.w.reserve(DUMP_END.length);
    this.w.bytes(DUMP_END);
  }

  finish(line: string): void {
    this.w.text(line);
    this.w.flush();
  }
}
