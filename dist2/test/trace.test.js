/**
 * Binary traces (docs/trace-format.md): recording through a guest port and
 * replaying gives the same output as running the scenario under every pager;
 * conversion to and from scenario JSON Lines is lossless; encoding is the
 * identity on every valid operation stream; and hostile files — truncated,
 * corrupted, lying about their sizes, holding invalid operands — end in a
 * TraceError naming the place, never in another exception or a hang.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { deflateRawSync } from 'node:zlib';
import fc from 'fast-check';
import { GuestPort, recordOps } from '../src/guest/port.js';
import { rng } from '../src/guest/rng.js';
import { GEN_MODES, generateScenario } from '../src/guest/scenario/generate.js';
import { OP, parseScenario } from '../src/guest/scenario/parse.js';
import { runOps } from '../src/guest/scenario/run.js';
import { crc32 } from '../src/guest/trace/format.js';
import { replayTrace, summarizeTrace, TraceError, TraceWriter } from '../src/guest/trace/index.js';
import { openTrace, traceFileOutput } from '../src/io/trace.js';
import { jsonlToTrace, traceToJsonl } from '../src/io/trace-jsonl.js';
import { NativePager } from '../src/pagers/native/native.js';
import { ShadowPager } from '../src/pagers/shadow/shadow.js';
import { runText } from './support/run.js';
const RUNS = Number(process.env.UMBRA_PROPERTY_RUNS ?? 200);
const dir = mkdtempSync(join(tmpdir(), 'umbra-trace-'));
let fileNo = 0;
const tmp = (ext) => join(dir, `f${fileNo++}.${ext}`);
/** Run `s` through a port with a TraceWriter listening; returns the live output. */
function record(s, path, blockOps) {
    const chunks = [];
    const port = new GuestPort(s.machine, {
        pager: new NativePager(),
        layout: 'identity',
        seed: 0,
        out: (c) => chunks.push(c),
    });
    const w = new TraceWriter(traceFileOutput(path), s.machine, { workload: 'generated', ops: s.count }, { blockOps });
    port.recorder = w;
    runOps(port, s);
    port.finish();
    w.close({ ops: port.ops, note: 'recorded by test' });
    return Buffer.concat(chunks).toString('latin1');
}
function replay(path, pager = new NativePager(), layout = 'identity') {
    const chunks = [];
    replayTrace(openTrace(path), { pager, layout, seed: 3, out: (c) => chunks.push(c) });
    return Buffer.concat(chunks).toString('latin1');
}
/** Everything a trace decodes to, as plain arrays. */
function decodeAll(path) {
    const t = openTrace(path);
    const ops = [];
    for (const s of t.blocks()) {
        for (let i = 0; i < s.count; i++) {
            assert.equal(s.line[i], ops.length + 2, 'op k is line k+1');
            ops.push([
                s.op[i],
                s.small[i],
                s.cpl[i],
                s.aHi[i],
                s.aLo[i],
                s.vHi[i],
                s.vLo[i],
            ]);
        }
    }
    return { machine: t.machine, ops };
}
for (const mode of GEN_MODES) {
    test(`record then replay is byte-identical to running the scenario, native and shadow (${mode})`, () => {
        for (const seed of [1, 2, 3]) {
            const text = generateScenario(seed, { mode, ops: 300, memoryBytes: seed === 3 ? 0x180000000 : 0x800000 });
            const s = parseScenario(text, 'gen');
            const path = tmp('umt');
            const live = record(s, path, 64 + seed * 7);
            const direct = runText(text);
            assert.equal(live, direct, 'recording does not disturb the run');
            assert.equal(replay(path), direct, 'native replay');
            assert.equal(replay(path, new ShadowPager({ check: true })), direct, 'shadow replay');
            assert.equal(replay(path, new ShadowPager(), 'scatter'), direct, 'shadow replay, scattered frames');
            // The converted scenario, run as `umbra exec` runs it, prints the same.
            const jsonl = tmp('jsonl');
            traceToJsonl(path, jsonl);
            assert.equal(runText(readFileSync(jsonl, 'utf8')), direct, 'exec of the converted scenario');
        }
    });
}
test('replay counts lines itself (autoLine), reports progress and returns metadata and trailer', () => {
    const s = parseScenario(generateScenario(9, { mode: 'pae', ops: 400 }), 'gen');
    const path = tmp('umt');
    record(s, path, 100);
    const progress = [];
    const r = replayTrace(openTrace(path), {
        pager: new NativePager(),
        layout: 'identity',
        seed: 0,
        out: () => { },
        onProgress: (done, total) => progress.push([done, total]),
    });
    assert.equal(r.port.autoLine, true);
    assert.equal(r.port.line, s.count + 1, 'the last op printed i = count + 1');
    assert.equal(r.ops, s.count);
    assert.deepEqual(r.meta, { workload: 'generated', ops: s.count });
    assert.deepEqual(r.trailer, { ops: s.count, note: 'recorded by test' });
    assert.equal(progress.length, Math.ceil(s.count / 100));
    assert.deepEqual(progress.at(-1), [s.count, s.count]);
    assert.ok(progress.every(([d], i) => i === 0 || d > progress[i - 1][0]));
});
test('binary → JSONL → binary → JSONL is the identity, and the JSONL holds the scenario', () => {
    const text = generateScenario(4, { mode: '5-level', ops: 3000, vcpus: 3 });
    const source = tmp('jsonl');
    writeFileSync(source, text);
    const t1 = tmp('umt');
    assert.deepEqual(jsonlToTrace(source, t1, { blockOps: 500 }), {
        ops: parseScenario(text, 'x').count,
        renumbered: false,
    });
    const j1 = tmp('jsonl');
    traceToJsonl(t1, j1);
    const t2 = tmp('umt');
    jsonlToTrace(j1, t2, { blockOps: 500 });
    const j2 = tmp('jsonl');
    traceToJsonl(t2, j2);
    assert.equal(readFileSync(j2, 'utf8'), readFileSync(j1, 'utf8'));
    assert.deepEqual(readFileSync(t2), readFileSync(t1));
    // Same operations as the source, metadata after the last op where it shifts no line.
    const a = parseScenario(text, 'a');
    const b = parseScenario(readFileSync(j1, 'utf8'), 'b');
    assert.equal(b.count, a.count);
    for (const k of ['op', 'line', 'small', 'cpl', 'aHi', 'aLo', 'vHi', 'vLo'])
        assert.deepEqual(b[k].subarray(0, b.count), a[k].subarray(0, a.count), k);
    const tail = readFileSync(j1, 'utf8').trimEnd().split('\n').slice(-2);
    assert.deepEqual(tail, [`# umbra-trace meta {"source":"${source.split('/').at(-1)}"}`, '# umbra-trace trailer {}']);
});
test('a scenario with comment lines between operations is renumbered (and says so)', () => {
    const src = tmp('jsonl');
    writeFileSync(src, '{"op":"machine","vcpus":1,"memory":"0x10000"}\n# a comment\n\n{"op":"pread","gpa":0,"size":4}\n# umbra-trace meta {"workload":"w"}\n');
    const t = tmp('umt');
    assert.deepEqual(jsonlToTrace(src, t), { ops: 1, renumbered: true });
    assert.deepEqual(openTrace(t).meta, { workload: 'w' });
    assert.match(replay(t), /^\{"i":2,"value":"0x0"\}\n/);
});
test('info counts operations by kind, vCPU and privilege', () => {
    const text = [
        '{"op":"machine","vcpus":2,"memory":"0x100000"}',
        '{"op":"read","va":0,"size":4,"cpl":3}',
        '{"op":"cpu","vcpu":1}',
        '{"op":"fetch","va":"0x10","cpl":0}',
        '{"op":"write","va":"0x20","size":1,"value":1,"cpl":0}',
        '{"op":"flush"}',
        '',
    ].join('\n');
    const src = tmp('jsonl');
    writeFileSync(src, text);
    const t = tmp('umt');
    jsonlToTrace(src, t, { blockOps: 2 });
    const s = summarizeTrace(openTrace(t));
    assert.equal(s.ops, 5);
    assert.equal(s.blocks, 3);
    assert.deepEqual(s.byKind, { cpu: 1, read: 1, write: 1, fetch: 1, flush: 1 });
    assert.deepEqual(s.byVcpu, [1, 3]);
    assert.deepEqual(s.byCpl, [2, 0, 0, 1]);
    assert.ok(s.compressedBytes > 0 && s.rawBytes > 0 && s.fileBytes > s.compressedBytes);
});
// ---- encode/decode identity -------------------------------------------------------------
const u32 = fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), fc.constantFrom(0, 1, 0x7f, 0x80, 0x7fffffff, 0x80000000, 0xffffffff));
const u64 = fc.tuple(u32, u32);
const size = fc.constantFrom(1, 2, 4, 8);
const cpl = fc.integer({ min: 0, max: 3 });
/** An address whose access of `sz` bytes stays inside one page. */
const inPage = (sz) => fc
    .tuple(u32, u32, fc.integer({ min: 0, max: 4096 - sz }))
    .map(([hi, lo, off]) => [hi, ((lo & ~0xfff) | off) >>> 0]);
const fitting = (sz) => sz === 8
    ? u64
    : sz === 4
        ? u32.map((lo) => [0, lo])
        : fc.integer({ min: 0, max: 2 ** (8 * sz) - 1 }).map((lo) => [0, lo]);
const opArb = (vcpus) => fc.oneof(fc.integer({ min: 0, max: vcpus - 1 }).map((v) => [OP.cpu, v, 0, 0, 0, 0, 0]), fc.tuple(fc.constantFrom(0, 3, 4), u64).map(([r, [h, l]]) => [OP.wrcr, r, 0, 0, 0, h, l]), u64.map(([h, l]) => [OP.wrmsr, 0, 0, 0, 0, h, l]), u32.map((l) => [OP.wrpkru, 0, 0, 0, 0, 0, l]), fc.integer({ min: 0, max: 1 }).map((v) => [OP.setac, v, 0, 0, 0, 0, 0]), size.chain((sz) => fc.tuple(inPage(sz), cpl).map(([[h, l], c]) => [OP.read, sz, c, h, l, 0, 0])), size.chain((sz) => fc.tuple(inPage(sz), fitting(sz), cpl).map(([[h, l], [vh, vl], c]) => [OP.write, sz, c, h, l, vh, vl])), fc.tuple(u64, cpl).map(([[h, l], c]) => [OP.fetch, 0, c, h, l, 0, 0]), size.chain((sz) => inPage(sz).map(([h, l]) => [OP.pread, sz, 0, h, l, 0, 0])), size.chain((sz) => fc.tuple(inPage(sz), fitting(sz)).map(([[h, l], [vh, vl]]) => [OP.pwrite, sz, 0, h, l, vh, vl])), u64.map(([h, l]) => [OP.invlpg, 0, 0, h, l, 0, 0]), fc
    .tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 0x1000 }), u64)
    .map(([t, p, [h, l]]) => [OP.invpcid, t, 0, h, l, 0, p]), fc.constant([OP.flush, 0, 0, 0, 0, 0, 0]), fc.tuple(u64, fc.integer({ min: 0, max: 65536 })).map(([[h, l], n]) => [OP.dump, 0, 0, h, l, 0, n]));
test('encoding then decoding any valid operation stream is the identity', () => {
    const path = tmp('umt');
    fc.assert(fc.property(fc
        .integer({ min: 1, max: 64 })
        .chain((vcpus) => fc.tuple(fc.constant(vcpus), fc.array(opArb(vcpus), { maxLength: 400 }), fc.integer({ min: 1, max: 80 }), fc.constantFrom(0x1000, 0x800000, 2 ** 40), fc.integer({ min: 32, max: 52 }))), fc.dictionary(fc.string(), fc.jsonValue()), ([vcpus, ops, blockOps, memory, maxphyaddr], meta) => {
        const machine = { vcpus, memory, maxphyaddr };
        const w = new TraceWriter(traceFileOutput(path), machine, meta, { blockOps });
        for (const o of ops)
            w.op(...o);
        w.close({ ops: ops.length, meta });
        const t = openTrace(path);
        assert.deepEqual(t.meta, JSON.parse(JSON.stringify(meta)));
        assert.equal(t.ops, ops.length);
        assert.equal(t.blockCount, Math.ceil(ops.length / blockOps));
        const back = decodeAll(path);
        assert.deepEqual(back.machine, machine);
        assert.deepEqual(back.ops, ops);
    }), { numRuns: RUNS });
});
test('the writer refuses operations the format cannot hold', () => {
    const path = tmp('umt');
    const w = new TraceWriter(traceFileOutput(path), { vcpus: 2, memory: 0x10000, maxphyaddr: 40 }, {});
    const bad = [
        [[OP.read, 3, 0, 0, 0, 0, 0], '"size" must be 1, 2, 4 or 8'],
        [[OP.read, 4, 4, 0, 0, 0, 0], '"cpl" must be between 0 and 3'],
        [[OP.cpu, 2, 0, 0, 0, 0, 0], '"vcpu" must be between 0 and 1'],
        [[OP.pwrite, 2, 0, 0, 0xfff, 0, 0], '"gpa" + "size" crosses a 4 KiB page boundary'],
        [[OP.write, 2, 0, 0, 0, 0, 0x10000], '"value" does not fit in 2 bytes'],
        [[OP.invpcid, 0, 0, 0, 0, 0, 0x1001], '"pcid" must be at most 0x1000'],
        [[0, 0, 0, 0, 0, 0, 0], 'unknown operation 0'],
    ];
    for (const [o, reason] of bad)
        assert.throws(() => w.op(...o), (e) => e instanceof TraceError && e.message.includes(reason));
    w.close({});
    assert.equal(openTrace(path).ops, 0);
});
// ---- hostile input ------------------------------------------------------------------
/** Read a whole trace; returns the TraceError's message, or null when it reads cleanly. */
function readError(path) {
    try {
        const t = openTrace(path);
        for (const _ of t.blocks())
            ;
        return null;
    }
    catch (e) {
        if (e instanceof TraceError)
            return e.message;
        throw e;
    }
}
function craft(blocks, opts = {}) {
    const parts = [];
    const meta = Buffer.from('{"crafted":true}');
    const h = Buffer.alloc(32);
    Buffer.from([0x89, 0x55, 0x4d, 0x42, 0x54, 0x52, 0x43, 0x0a]).copy(h);
    h.writeUInt16LE(opts.version ?? 1, 8);
    h.writeUInt16LE(opts.compression ?? 0, 10);
    h.writeUInt32LE(opts.vcpus ?? 2, 12);
    h.writeBigUInt64LE(0x100000n, 16);
    h.writeUInt32LE(40, 24);
    h.writeUInt32LE(meta.length, 28);
    const hc = Buffer.alloc(4);
    hc.writeUInt32LE(crc32(Buffer.concat([h, meta])));
    parts.push(h, meta, hc);
    let ops = 0;
    for (const b of blocks) {
        const z = b.z ?? deflateRawSync(b.raw);
        const r = Buffer.alloc(17);
        r[0] = 0x42;
        r.writeUInt32LE(b.count, 5);
        r.writeUInt32LE(b.rawLength ?? b.raw.length, 9);
        r.writeUInt32LE(b.zLength ?? z.length, 13);
        const rec = Buffer.concat([r, z]);
        rec.writeUInt32LE(crc32(rec, 5), 1);
        parts.push(rec);
        ops += b.count;
    }
    const offset = parts.reduce((n, p) => n + p.length, 0);
    const trailer = Buffer.from('{}');
    const t = Buffer.alloc(17);
    t[0] = 0x54;
    t.writeUInt32LE(blocks.length, 1);
    t.writeBigUInt64LE(BigInt(opts.ops ?? ops), 5);
    t.writeUInt32LE(trailer.length, 13);
    const tc = Buffer.alloc(4);
    tc.writeUInt32LE(crc32(Buffer.concat([t, trailer])));
    const f = Buffer.alloc(16);
    f.writeBigUInt64LE(BigInt(offset));
    Buffer.from('UMBTEND\n').copy(f, 8);
    parts.push(t, trailer, tc, f);
    const path = tmp('umt');
    writeFileSync(path, Buffer.concat(parts));
    return path;
}
test('a crafted trace written from the documentation reads back', () => {
    // cpu 1; read 4 bytes at 0x1000 cpl 3 (delta +0x1000 zigzagged = 0x2000); flush.
    const path = craft([{ raw: Uint8Array.of(0x01, 0x01, 0xe6, 0x80, 0x40, 0x0d), count: 3 }]);
    assert.equal(readError(path), null);
    assert.deepEqual(decodeAll(path).ops, [
        [OP.cpu, 1, 0, 0, 0, 0, 0],
        [OP.read, 4, 3, 0, 0x1000, 0, 0],
        [OP.flush, 0, 0, 0, 0, 0, 0],
    ]);
});
const block = (bytes, count = 1) => ({ raw: Uint8Array.from(bytes), count });
const hostile = [
    ['unknown version', () => craft([], { version: 2 }), 'offset 8: trace format version 2 is not supported'],
    [
        'unknown compression method',
        () => craft([], { compression: 1 }),
        'offset 10: compression method 1 is not supported',
    ],
    ['unknown opcode', () => craft([block([0x00])]), 'block 1 op 1: unknown operation code 0'],
    ['p2m type 3', () => craft([block([0x3f, 0x00, 0x01])]), 'block 1 op 1: "type" must be "ram", "rom" or "none"'],
    ['p2m beyond memory', () => craft([block([0x1f, 0x00, 0x00])]), 'block 1 op 1: "count" must be at least 1'],
    ['opcode 0', () => craft([block([0x0d, 0x00], 2)]), 'block 1 op 2: unknown operation code 0'],
    ['vcpu beyond the machine', () => craft([block([0x01, 0x02])]), 'block 1 op 1: "vcpu" must be between 0 and 1'],
    ['bad control register', () => craft([block([0x22, 0x00])]), 'block 1 op 1: "reg" must be "cr0", "cr3" or "cr4"'],
    [
        'access crossing a page',
        () => craft([block([0x36, 0xf8, 0x3f])]),
        'block 1 op 1: "va" + "size" crosses a 4 KiB page boundary',
    ],
    [
        'value wider than the size',
        () => craft([block([0x07, 0x00, 0x80, 0x02])]),
        'block 1 op 1: "value" does not fit in 1 bytes',
    ],
    ['pkru above 32 bits', () => craft([block([0x04, 0x80, 0x80, 0x80, 0x80, 0x10])]), '"value" does not fit in 4 bytes'],
    ['setac 2', () => craft([block([0x25])]), 'block 1 op 1: "value" must be between 0 and 1'],
    [
        'dump too long',
        () => craft([block([0x0e, 0x00, 0x81, 0x80, 0x04])]),
        'block 1 op 1: "length" must be at most 65536',
    ],
    ['invpcid type 4', () => craft([block([0x4c, 0x00, 0x00])]), 'block 1 op 1: "type" must be between 0 and 3'],
    [
        'invpcid pcid 0x1001',
        () => craft([block([0x0c, 0x81, 0x20, 0x00])]),
        'block 1 op 1: "pcid" must be at most 0x1000',
    ],
    [
        'size bits on a fetch',
        () => craft([block([0x18, 0x00])]),
        'block 1 op 1: reserved bits set in the operation byte 0x18',
    ],
    ['flags on a flush', () => craft([block([0x1d])]), 'reserved bits set in the operation byte 0x1d'],
    [
        'varint beyond 64 bits',
        () => craft([block([0x03, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02])]),
        'block 1 op 1: a varint does not fit in 64 bits',
    ],
    [
        'operation cut off',
        () => craft([block([0x03, 0x80])]),
        'block 1 op 1: the operation runs past the end of its block',
    ],
    [
        'fewer ops than declared',
        () => craft([block([0x03, 0x00], 2)]),
        'block 1 op 2: the block ends before its declared operation count',
    ],
    ['bytes after the last op', () => craft([block([0x0d, 0x0d], 1)]), 'block 1 op 1: 1 bytes follow the last operation'],
    [
        'more ops than the trailer says',
        () => craft([block([0x0d, 0x0d], 2)], { ops: 1 }),
        'more operations than the trailer declares (1)',
    ],
    [
        'fewer ops than the trailer says',
        () => craft([block([0x0d])], { ops: 5 }),
        'the trailer declares 1 blocks of 5 operations, the file holds 1 of 1',
    ],
    ['empty block', () => craft([{ raw: new Uint8Array(0), count: 0 }]), 'block 1: 0 operations: must be 1 to 65536'],
    ['too many ops in a block', () => craft([{ ...block([0x0d]), count: 65537 }]), 'block 1: 65537 operations'],
    [
        'raw length beyond the limit',
        () => craft([{ ...block([0x0d]), rawLength: 2 ** 21 }]),
        'block 1: raw length 2097152 is impossible for 1 operations',
    ],
    [
        'deflate bomb',
        () => craft([{ raw: new Uint8Array(1 << 24).fill(0x0d), count: 100, rawLength: 100 }]),
        'block 1: inflates beyond its declared 100 bytes',
    ],
    [
        'raw length larger than the data',
        () => craft([{ ...block([0x0d]), rawLength: 5 }]),
        'block 1: inflates to 1 bytes, not the declared 5',
    ],
    [
        'compressed length past the end',
        () => craft([{ ...block([0x0d]), zLength: 1000 }]),
        'block 1: compressed length 1000 runs past the blocks',
    ],
    [
        'garbage for deflate',
        () => craft([{ ...block([0x0d]), z: Uint8Array.of(0xff, 0xff) }]),
        'block 1: corrupt compressed data',
    ],
];
for (const [name, make, message] of hostile) {
    test(`hostile trace: ${name}`, () => {
        const path = make();
        const m = readError(path) ?? 'read cleanly';
        assert.ok(m.startsWith(`${path}: `) && m.includes(message), `${m} should contain ${message}`);
        assert.ok(!m.includes('\n'), 'one line');
    });
}
test('hostile trace: not a trace at all', () => {
    const path = tmp('jsonl');
    writeFileSync(path, '{"op":"machine","vcpus":1,"memory":"0x1000"}\n');
    assert.equal(readError(path), `${path}: offset 0: not an Umbra trace (bad magic)`);
    writeFileSync(path, '');
    assert.match(readError(path) ?? '', /offset 0: the file ends early \(0 bytes\): truncated/);
});
/** A small trace of several blocks and both JSON objects, as bytes. */
function sampleTrace() {
    const s = parseScenario(generateScenario(11, { mode: '4-level', ops: 60, vcpus: 2 }), 'gen');
    const path = tmp('umt');
    const w = new TraceWriter(traceFileOutput(path), s.machine, { workload: 'sample' }, { blockOps: 40 });
    recordOps(w, s);
    w.close({ done: true });
    return readFileSync(path);
}
test('a trace cut short anywhere is refused as a TraceError', () => {
    const bytes = sampleTrace();
    const path = tmp('umt');
    for (let n = 0; n < bytes.length; n++) {
        writeFileSync(path, bytes.subarray(0, n));
        const m = readError(path);
        assert.ok(m !== null, `truncated to ${n} of ${bytes.length} bytes yet read cleanly`);
    }
    writeFileSync(path, bytes);
    assert.equal(readError(path), null);
    writeFileSync(path, bytes.subarray(0, bytes.length - 3));
    assert.match(readError(path) ?? '', /no end marker: truncated/);
});
test('every corrupted byte is detected: a TraceError, never another exception', () => {
    const bytes = sampleTrace();
    const path = tmp('umt');
    const r = rng(7);
    for (let at = 0; at < bytes.length; at++) {
        for (const xor of [0x01, 0x80, 1 + Math.floor(r() * 255)]) {
            const b = Buffer.from(bytes);
            b[at] = b[at] ^ xor;
            writeFileSync(path, b);
            assert.notEqual(readError(path), null, `byte ${at} ^ 0x${xor.toString(16)} went unnoticed`);
        }
    }
    // A flip inside a block's compressed bytes is caught by that block's checksum.
    assert.ok(openTrace(writeAndReturn(bytes)).blockCount > 1);
    const b = Buffer.from(bytes);
    const firstBlock = 32 + b.readUInt32LE(28) + 4;
    b[firstBlock + 20] = b[firstBlock + 20] ^ 1;
    writeFileSync(path, b);
    assert.equal(readError(path), `${path}: offset ${firstBlock + 1}: block 1: checksum mismatch`);
});
function writeAndReturn(b) {
    const p = tmp('umt');
    writeFileSync(p, b);
    return p;
}
test('random bytes behind a valid magic end in a TraceError', () => {
    const path = tmp('umt');
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (tail) => {
        writeFileSync(path, Buffer.concat([Buffer.from([0x89, 0x55, 0x4d, 0x42, 0x54, 0x52, 0x43, 0x0a]), tail]));
        assert.notEqual(readError(path), null);
    }), { numRuns: RUNS });
});
//# sourceMappingURL=trace.test.js.map