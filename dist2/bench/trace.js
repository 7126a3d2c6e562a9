/**
 * The figures in docs/trace-format.md: bytes per operation and encode/decode
 * speed on a generated ~1M-operation scenario, the zlib alternatives on its
 * blocks, and what replay (with and without its verification pass) costs next
 * to running the parsed scenario; then, for each trace named on the command
 * line (recorded kernel workloads: `umbra run --workload W --record W.umt`),
 * its size, decode speed and the zlib alternatives on its first 2M operations.
 *
 *   npm run bench:trace --  [TRACE …]
 */
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import { recordOps } from '../src/guest/port.js';
import { generateScenario } from '../src/guest/scenario/generate.js';
import { parseScenario } from '../src/guest/scenario/parse.js';
import { runScenario } from '../src/guest/scenario/run.js';
import { BlockEncoder } from '../src/guest/trace/codec.js';
import { BLOCK_OPS, BLOCK_RAW_FLUSH } from '../src/guest/trace/format.js';
import { replayTrace } from '../src/guest/trace/replay.js';
import { TraceWriter } from '../src/guest/trace/writer.js';
import { useNodeSha256 } from '../src/io/sha256.js';
import { openTrace, traceFileOutput } from '../src/io/trace.js';
import { jsonlToTrace, traceToJsonl } from '../src/io/trace-jsonl.js';
import { NativePager } from '../src/pagers/native/native.js';
useNodeSha256();
const ROUNDS = Number(process.env.UMBRA_BENCH_ROUNDS ?? 3);
/** Median seconds of `fn` over `rounds` rounds after one warm-up. */
function seconds(fn, rounds = ROUNDS) {
    if (rounds > 1)
        fn();
    const t = [];
    for (let r = 0; r < rounds; r++) {
        const t0 = process.hrtime.bigint();
        fn();
        t.push(Number(process.hrtime.bigint() - t0) / 1e9);
    }
    return t.sort((a, b) => a - b)[Math.floor(t.length / 2)];
}
function writeAll(s, path, level) {
    const w = new TraceWriter(traceFileOutput(path), s.machine, { workload: 'generated', mode: '4-level', seed: 1 }, { level });
    recordOps(w, s);
    w.close({ ops: s.count });
    return w;
}
/** The raw (uncompressed) blocks the writer would compress, from batches of operations. */
function rawBlocks(batches, limit = Number.POSITIVE_INFINITY) {
    const e = new BlockEncoder(BLOCK_RAW_FLUSH);
    const blocks = [];
    let ops = 0;
    for (const s of batches) {
        for (let i = 0; i < s.count && ops < limit; i++, ops++) {
            e.op(s.op[i], s.small[i], s.cpl[i], s.aHi[i], s.aLo[i], s.vHi[i], s.vLo[i]);
            if (e.count === BLOCK_OPS || e.n >= BLOCK_RAW_FLUSH) {
                blocks.push(e.buf.slice(0, e.n));
                e.reset();
            }
        }
        if (ops >= limit)
            break;
    }
    if (e.count > 0)
        blocks.push(e.buf.slice(0, e.n));
    return { blocks, ops };
}
const q = zlib.constants.BROTLI_PARAM_QUALITY;
const brotli = (quality) => (b) => zlib.brotliCompressSync(b, { params: { [q]: quality } });
const CODECS = [
    ['deflate-raw 1', (b) => zlib.deflateRawSync(b, { level: 1 }), (b) => zlib.inflateRawSync(b)],
    ['deflate-raw 6', (b) => zlib.deflateRawSync(b, { level: 6 }), (b) => zlib.inflateRawSync(b)],
    ['deflate-raw 9', (b) => zlib.deflateRawSync(b, { level: 9 }), (b) => zlib.inflateRawSync(b)],
    ['gzip 6', (b) => zlib.gzipSync(b), (b) => zlib.gunzipSync(b)],
    ['brotli 1', brotli(1), (b) => zlib.brotliDecompressSync(b)],
    ['brotli 2', brotli(2), (b) => zlib.brotliDecompressSync(b)],
    ['brotli 5', brotli(5), (b) => zlib.brotliDecompressSync(b)],
    ['brotli 11', brotli(11), (b) => zlib.brotliDecompressSync(b)],
];
/** Brotli 11 (about 0.05 M ops/s) only on the generated scenario. */
function codecTable(blocks, n, slow = true) {
    for (const [name, compress, inflate] of CODECS) {
        if (name === 'brotli 11' && !slow)
            continue;
        let z = [];
        const c = seconds(() => (z = blocks.map(compress)), name === 'brotli 11' ? 1 : ROUNDS);
        const d = seconds(() => z.map(inflate));
        const size = z.reduce((a, b) => a + b.length, 0);
        console.log(`  ${name.padEnd(14)} ${perOp(size, n)}  compress ${M(n, c)}  inflate ${M(n, d)}`);
    }
}
const M = (n, s) => `${(n / s / 1e6).toFixed(2)} M ops/s`;
const perOp = (bytes, n) => `${(bytes / n).toFixed(2)} B/op`;
const dir = tmpdir();
const text = generateScenario(1, { mode: '4-level', ops: 590_000, vcpus: 2, p2m: false });
const s = parseScenario(text, 'generated');
const n = s.count;
const trace = join(dir, `umbra-measure-${process.pid}.umt`);
const jsonl = join(dir, `umbra-measure-${process.pid}.jsonl`);
writeFileSync(jsonl, text);
console.log(`scenario: generated 4-level, 2 vCPUs, seed 1: ${n} operations, JSONL ${perOp(text.length, n)}`);
const enc = seconds(() => writeAll(s, trace));
const w = writeAll(s, trace);
const { blocks } = rawBlocks([s]);
const raw = blocks.reduce((a, b) => a + b.length, 0);
console.log(`trace: ${w.blocks} blocks, raw ${perOp(raw, n)}, file ${perOp(statSync(trace).size, n)}`);
console.log(`encode (TraceWriter.op … close, file written): ${M(n, enc)}`);
const dec = seconds(() => {
    for (const _ of openTrace(trace).blocks())
        ;
});
console.log(`decode (openTrace … blocks(), checked): ${M(n, dec)}`);
console.log('zlib on the same raw blocks:');
codecTable(blocks, n);
const tj = seconds(() => traceToJsonl(trace, `${jsonl}.out`));
const jt = seconds(() => jsonlToTrace(`${jsonl}.out`, `${trace}.out`));
console.log(`convert trace → JSONL ${M(n, tj)}, JSONL → trace ${M(n, jt)}`);
const opts = { pager: new NativePager(), layout: 'identity', seed: 0, out: () => { } };
const exec = seconds(() => runScenario(parseScenario(text, 'g'), { ...opts, pager: new NativePager() }));
const run = seconds(() => runScenario(s, { ...opts, pager: new NativePager() }));
const replay = seconds(() => replayTrace(openTrace(trace), { ...opts, pager: new NativePager() }));
const replayNoVerify = seconds(() => replayTrace(openTrace(trace), { ...opts, pager: new NativePager(), verify: false }));
console.log(`native: run parsed ${M(n, run)}, exec (parse + run) ${M(n, exec)}, replay ${M(n, replay)}, replay without verify ${M(n, replayNoVerify)}`);
console.log(`check: trace → JSONL → trace gives the same bytes: ${readFileSync(`${trace}.out`).equals(readFileSync(trace))}`);
for (const f of [trace, jsonl, `${trace}.out`, `${jsonl}.out`])
    rmSync(f, { force: true });
for (const path of process.argv.slice(2)) {
    const t = openTrace(path);
    const d = seconds(() => {
        for (const _ of openTrace(path).blocks())
            ;
    });
    console.log(`${path}: ${JSON.stringify(t.meta)}: ${t.ops} operations, file ${perOp(t.fileBytes, t.ops)}, decode ${M(t.ops, d)}`);
    const r = rawBlocks(t.blocks(), 2_000_000);
    console.log(`zlib on its first ${r.ops} operations (raw ${perOp(r.blocks.reduce((a, b) => a + b.length, 0), r.ops)}):`);
    codecTable(r.blocks, r.ops, false);
}
//# sourceMappingURL=trace.js.map