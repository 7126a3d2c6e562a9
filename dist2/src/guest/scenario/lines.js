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
export class ScenarioLines {
    o;
    constructor(sink) {
        this.o = new OutputBuffer(sink);
    }
    ok(ln) {
        const o = this.o;
        o.reserve(64);
        o.bytes(LINE_START);
        o.dec(ln);
        o.bytes(OK);
    }
    value(ln, hi, lo) {
        const o = this.o;
        o.reserve(64);
        o.bytes(LINE_START);
        o.dec(ln);
        o.bytes(VALUE);
        o.hex64(hi, lo);
        o.bytes(VALUE_END);
    }
    pageFault(ln, error, cr2Hi, cr2Lo) {
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
    generalProtection(ln) {
        const o = this.o;
        o.reserve(80);
        o.bytes(LINE_START);
        o.dec(ln);
        o.bytes(GP);
    }
    dumpStart(ln, _length) {
        const o = this.o;
        o.reserve(32);
        o.bytes(LINE_START);
        o.dec(ln);
        o.bytes(DUMP);
    }
    dumpByte(b) {
        this.o.hexByte(b);
    }
    dumpEnd() {
        this.o.reserve(8);
        this.o.bytes(DUMP_END);
    }
    finish(line) {
        this.o.text(line);
        this.o.flush();
    }
}
//# sourceMappingURL=lines.js.map