import { BlockEncoder } from './codec.js';
import { BLOCK_HEADER, BLOCK_OPS, BLOCK_RAW_FLUSH, crc32, DEFLATE_RAW, END_MAGIC, FOOTER, HEADER_FIXED, MAGIC, MAX_BLOCK_OPS, MAX_JSON, MAX_OPS, machineProblem, opProblem, TAG_BLOCK, TAG_TRAILER, TRAILER_FIXED, TraceError, VERSION, } from './format.js';
export class TraceWriter {
    output;
    machine;
    /** Operations recorded so far. */
    ops = 0;
    blocks = 0;
    /** Bytes written so far. */
    bytes = 0;
    path;
    sink;
    enc;
    blockOps;
    level;
    constructor(output, machine, meta, opts = {}) {
        this.output = output;
        this.machine = machine;
        const path = output.path;
        this.path = path;
        const bad = machineProblem(machine);
        if (bad !== null)
            throw new TraceError(path, 'machine', bad);
        this.blockOps = opts.blockOps ?? BLOCK_OPS;
        if (!(this.blockOps >= 1 && this.blockOps <= MAX_BLOCK_OPS))
            throw new RangeError('blockOps must be 1..65536');
        this.level = opts.level ?? 1;
        this.enc = new BlockEncoder(BLOCK_RAW_FLUSH);
        const json = jsonBytes(path, 'metadata', meta);
        const h = new Uint8Array(HEADER_FIXED + json.length + 4);
        const dv = view(h);
        h.set(MAGIC, 0);
        dv.setUint16(8, VERSION, true);
        dv.setUint16(10, DEFLATE_RAW, true);
        dv.setUint32(12, machine.vcpus, true);
        dv.setBigUint64(16, BigInt(machine.memory), true);
        dv.setUint32(24, machine.maxphyaddr, true);
        dv.setUint32(28, json.length, true);
        h.set(json, HEADER_FIXED);
        dv.setUint32(HEADER_FIXED + json.length, crc32(h, 0, HEADER_FIXED + json.length), true);
        this.sink = output.open();
        this.write(h);
    }
    op(op, small, cpl, aHi, aLo, vHi, vLo) {
        // Refuse here what a reader would refuse: a trace that cannot be replayed is worse than none.
        const bad = opProblem(this.machine, op, small, cpl, aHi, aLo, vHi, vLo);
        if (bad !== null)
            throw new TraceError(this.path, `op ${this.ops + 1}`, bad);
        if (this.ops === MAX_OPS)
            throw new TraceError(this.path, `op ${this.ops + 1}`, 'more operations than a trace holds');
        if (this.sink === null)
            throw new Error(`${this.path}: trace already closed`);
        const e = this.enc;
        e.op(op, small, cpl, aHi, aLo, vHi, vLo);
        this.ops++;
        if (e.count === this.blockOps || e.n >= BLOCK_RAW_FLUSH)
            this.flushBlock();
    }
    /** Write the last block, the trailer (a run summary: caller's counters) and the end marker. */
    close(trailer) {
        if (this.sink === null)
            throw new Error(`${this.path}: trace already closed`);
        this.flushBlock();
        const json = jsonBytes(this.path, 'trailer', trailer);
        const t = new Uint8Array(TRAILER_FIXED + json.length + 4 + FOOTER);
        const dv = view(t);
        t[0] = TAG_TRAILER;
        dv.setUint32(1, this.blocks, true);
        dv.setBigUint64(5, BigInt(this.ops), true);
        dv.setUint32(13, json.length, true);
        t.set(json, TRAILER_FIXED);
        const end = TRAILER_FIXED + json.length;
        dv.setUint32(end, crc32(t, 0, end), true);
        dv.setBigUint64(end + 4, BigInt(this.bytes), true);
        t.set(END_MAGIC, end + 12);
        this.write(t);
        this.sink.close();
        this.sink = null;
    }
    /** Give up: close the file without a trailer (a reader will call it truncated). */
    abort() {
        if (this.sink !== null)
            this.sink.close();
        this.sink = null;
    }
    flushBlock() {
        const e = this.enc;
        if (e.count === 0)
            return;
        const raw = e.buf.subarray(0, e.n);
        const z = this.output.deflate(raw, this.level);
        const r = new Uint8Array(BLOCK_HEADER + z.length);
        const dv = view(r);
        r[0] = TAG_BLOCK;
        dv.setUint32(5, e.count, true);
        dv.setUint32(9, e.n, true);
        dv.setUint32(13, z.length, true);
        r.set(z, BLOCK_HEADER);
        // The checksum covers the counts and the compressed bytes: corruption is caught before inflating.
        dv.setUint32(1, crc32(r, 5), true);
        this.write(r);
        this.blocks++;
        e.reset();
    }
    write(b) {
        if (this.sink === null)
            throw new Error(`${this.path}: trace already closed`);
        this.sink.write(b);
        this.bytes += b.length;
    }
}
function view(b) {
    return new DataView(b.buffer, b.byteOffset, b.byteLength);
}
function jsonBytes(path, what, o) {
    if (typeof o !== 'object' || o === null || Array.isArray(o))
        throw new TraceError(path, what, `the ${what} must be a JSON object`);
    const b = new TextEncoder().encode(JSON.stringify(o));
    if (b.length > MAX_JSON)
        throw new TraceError(path, what, `the ${what} exceeds ${MAX_JSON} bytes as JSON`);
    return b;
}
//# sourceMappingURL=writer.js.map