/**
 * The scenario format's output (shared/spec/scenario-format.md, "Output")
 * as an observer of the guest port: one JSON line per observable event,
 * written as ASCII into a reusable buffer, then the final line.
 */
import type { PortObserver } from '../observe.js';
import { ascii, OutputBuffer } from './output.js';

const LINE_START = ascii('{"i":');
const VALUE = ascii(',"value":"');
const VALUE_END = ascii('"}\n');
const OK = ascii(',"ok":true}\n');
const PF = ascii(',"fault":{"vector":"PF","error":"');
const CR2 = ascii('","cr2":"');
const PF_END = ascii('"}}\n');
const GP = ascii(',"fault":{"vector":"GP","error":"0x0"}}\n');
const DUMP = ascii(',"bytes":"');
const DUMP_END = ascii('"}\n');

export class ScenarioLines implements PortObserver {
  private readonly o: OutputBuffer;
  constructor(sink: (chunk: Uint8Array) => void) {
    this.o = new OutputBuffer(sink);
  }

  ok(ln: number): void {
    const o = this.o;
    o.reserve(64);
    o.bytes(LINE_START);
    o.dec(ln);
    o.bytes(OK);
  }

  value(ln: number, hi: number, lo: number): void {
    const o = this.o;
    o.reserve(64);
    o.bytes(LINE_START);
    o.dec(ln);
    o.bytes(VALUE);
    o.hex64(hi, lo);
    o.bytes(VALUE_END);
  }

  pageFault(ln: number, error: number, cr2Hi: number, cr2Lo: number): void {
    const o = this.o;
    o.reserve(80);
    o.bytes(LINE_START);
    o.dec(ln);
    o.bytes(PF);
    o.hex64(0, error);
    o.bytes(CR2);
    o.hex64(cr2Hi, cr2Lo);
    o.bytes(PF_END);
  }

  generalProtection(ln: number): void {
    const o = this.o;
    o.reserve(80);
    o.bytes(LINE_START);
    o.dec(ln);
    o.bytes(GP);
  }

  dumpStart(ln: number, _length: number): void {
    const o = this.o;
    o.reserve(32);
    o.bytes(LINE_START);
    o.dec(ln);
    o.bytes(DUMP);
  }

  dumpByte(b: number): void {
    this.o.hexByte(b);
  }

  dumpEnd(): void {
    this.o.reserve(8);
    this.o.bytes(DUMP_END);
  }

  finish(line: string): void {
    this.o.text(line);
    this.o.flush();
  }
}
