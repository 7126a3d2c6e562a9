/**
 * Hostile input at every door of the CLI: endless or huge files, prototype
 * keys, deep JSON, absurd numbers, shared page tables. Each must end in one
 * line on stderr and exit status 2 (or, for legal input, in a normal run),
 * quickly: a child that hangs is killed by the timeout and fails the test.
 */
import './support/node.js';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ScenarioError, ScenarioParser } from '../src/guest/scenario/parse.js';
import { crc32, END_MAGIC, FOOTER, HEADER_FIXED, MAGIC, TAG_TRAILER, TRAILER_FIXED, VERSION, } from '../src/guest/trace/format.js';
import { openImage } from '../src/import/image.js';
import { forEachLine, InputError } from '../src/import/input.js';
import { vcpuView } from '../src/inspect/context.js';
import { qemuInfoTlb } from '../src/inspect/qemu.js';
import { Descent, enumerate } from '../src/inspect/tree.js';
import { CostsError, parseCosts } from '../src/metrics/costs.js';
import { parseShadowSpec } from '../src/pagers/shadow/options.js';
import { MAX_JSON_DEPTH, parseJson } from '../src/util/json.js';
import { buildCore, ram } from './support/core.js';
const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'dist/src/cli/main.js');
const dir = mkdtempSync(join(tmpdir(), 'umbra-input-bounds-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const at = (name) => join(dir, name);
/** Run umbra; a child still running after 30 s is killed (r.error is then set). */
const umbra = (args, opts = {}) => spawnSync(process.execPath, [cli, ...args], {
    encoding: 'utf8',
    input: opts.input,
    stdio: [opts.stdin ?? 'pipe', 'pipe', 'pipe'],
    timeout: 30_000,
    maxBuffer: 64 << 20,
});
/** Exit status 2 with exactly one line on stderr, `umbra: ` followed by `message` (a string prefix or a pattern). */
function failsWith(r, message) {
    assert.equal(r.error, undefined, `ended on its own (${r.error?.message})`);
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stderr.split('\n').length, 2, `one line: ${r.stderr}`);
    assert.ok(!/internal error|\n\s+at /.test(r.stderr), r.stderr);
    if (typeof message === 'string')
        assert.ok(r.stderr.startsWith(`umbra: ${message}`), r.stderr);
    else
        assert.match(r.stderr, message);
}
const M = '{"op":"machine","vcpus":1,"memory":"0x100000"}';
// ---- endless and huge inputs ----
test('exec /dev/zero: one line longer than the limit, exit 2', () => {
    failsWith(umbra(['exec', '/dev/zero']), '/dev/zero:1: the line is longer than 1 MiB');
});
test('exec - with /dev/zero as standard input: the same limit', () => {
    const fd = openSync('/dev/zero', 'r');
    try {
        failsWith(umbra(['exec', '-'], { stdin: fd }), '-:1: the line is longer than 1 MiB');
    }
    finally {
        closeSync(fd);
    }
});
test('exec - on an endless stream: exits 2 on its own while the stream is still being written', async () => {
    const child = spawn(process.execPath, [cli, 'exec', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s) => {
        stderr += s;
    });
    child.stdin.on('error', () => { }); // EPIPE once the child has stopped reading
    const chunk = Buffer.alloc(1 << 16, 0x20); // blanks, never a newline
    let written = 0;
    let exited = false;
    const status = new Promise((resolve) => child.on('exit', (code) => {
        exited = true;
        resolve(code);
    }));
    const timer = setTimeout(() => child.kill(), 30_000);
    child.stdin.write(`${M}\n`);
    while (!exited) {
        if (!child.stdin.write(chunk))
            await new Promise((r) => setTimeout(r, 1));
        written += chunk.length;
    }
    clearTimeout(timer);
    assert.equal(await status, 2, stderr);
    assert.equal(stderr, 'umbra: -:2: the line is longer than 1 MiB, the limit for a line of a scenario\n');
    assert.ok(written >= 1 << 20, 'the stream ran past the limit before the child gave up');
});
test('trace convert /dev/zero: the scenario line limit, no output left behind', () => {
    failsWith(umbra(['trace', 'convert', '/dev/zero', at('zero.umt')]), '/dev/zero:1: the line is longer than 1 MiB');
});
test('--costs /dev/zero and inspect --registers /dev/zero: files read whole stop at 1 MiB', () => {
    failsWith(umbra(['run', '--workload', 'compile', '--size', '0.01', '--costs', '/dev/zero']), '/dev/zero: larger than 1 MiB, the limit for a cost file');
    failsWith(umbra(['inspect', join(root, 'fixtures/x86_64-4level-2/dump.elf.xz'), '--registers', '/dev/zero']), "/dev/zero: larger than 1 MiB, the limit for QEMU 'info registers' text");
});
test('the line reader: total size and line limits, lines numbered as the parser numbers them', () => {
    const path = at('lines.txt');
    writeFileSync(path, 'ab\n\ncd');
    const seen = [];
    assert.equal(forEachLine(path, { maxLine: 2, what: 'a test' }, (l, n) => seen.push([l, n])), 3);
    assert.deepEqual(seen, [
        ['ab', 1],
        ['', 2],
        ['cd', 3],
    ]);
    assert.throws(() => forEachLine(path, { maxLine: 1, what: 'a test' }, () => { }), (e) => e instanceof InputError &&
        e.message === `${path}:1: the line is longer than 1 bytes, the limit for a line of a test`);
    assert.throws(() => forEachLine(path, { maxLine: 8, maxBytes: 4, what: 'a test' }, () => { }), (e) => e instanceof InputError && e.message === `${path}: larger than 4 bytes, the limit for a test`);
});
test('a scenario holds at most its operation limit (the parser counts over batches)', () => {
    const p = new ScenarioParser('f', 2);
    p.line(M, 1);
    p.line('{"op":"flush"}', 2);
    p.line('{"op":"flush"}', 3);
    assert.throws(() => p.line('{"op":"flush"}', 4), (e) => e instanceof ScenarioError && e.message === 'f:4: more than 2 operations, the limit for a scenario');
});
// ---- prototype keys ----
for (const name of ['__proto__', 'toString', 'constructor', 'hasOwnProperty', 'valueOf']) {
    test(`op "${name}" is an unknown op, and "reg":"${name}" a bad register, not Object.prototype's`, () => {
        failsWith(umbra(['exec', '-'], { input: `${M}\n{"op":"${name}"}\n` }), `-:2: unknown op "${name}"`);
        const wrcr = umbra(['exec', '-'], { input: `${M}\n{"op":"wrcr","reg":"${name}","value":0}\n` });
        failsWith(wrcr, '-:2: "reg" must be "cr0", "cr3" or "cr4"');
        assert.equal(wrcr.stdout, '', 'nothing ran');
        failsWith(umbra(['exec', '-'], { input: `${M}\n{"op":"flush","${name}":1}\n` }), `-:2: unknown key "${name}"`);
    });
}
test('cost files: prototype keys are unknown costs; values must be finite, non-negative, at most 1e6', () => {
    for (const key of ['__proto__', 'toString', 'constructor']) {
        assert.throws(() => parseCosts(`{"${key}": 1}`, 'c.json'), (e) => e instanceof CostsError && e.message.startsWith(`c.json: unknown cost "${key}"`));
    }
    assert.throws(() => parseCosts('{"vm_exit": 1e308}', 'c.json'), CostsError);
    assert.equal(parseCosts('{"vm_exit": 1e6}', 'c.json').vm_exit, 1e6);
    assert.throws(() => parseCosts(`{"vm_exit": ${'['.repeat(100)}1${']'.repeat(100)}}`, 'c.json'), /nested more than 64/);
    const path = at('huge.json');
    writeFileSync(path, '{"guest_work": 1e308}');
    failsWith(umbra(['run', '--workload', 'compile', '--size', '0.01', '--costs', path]), `${path}: cost "guest_work" must be at most 1000000 cycles, got 1e+308`);
});
// ---- deep JSON and hostile trace metadata ----
/** A trace with no operations whose metadata (and trailer) are the given JSON texts, written byte by byte. */
function craftTrace(name, meta, trailer = '{}') {
    const m = Buffer.from(meta, 'utf8');
    const h = Buffer.alloc(HEADER_FIXED + m.length + 4);
    h.set(MAGIC, 0);
    h.writeUInt16LE(VERSION, 8);
    h.writeUInt16LE(0, 10);
    h.writeUInt32LE(1, 12);
    h.writeBigUInt64LE(0x100000n, 16);
    h.writeUInt32LE(40, 24);
    h.writeUInt32LE(m.length, 28);
    m.copy(h, HEADER_FIXED);
    h.writeUInt32LE(crc32(h, 0, HEADER_FIXED + m.length), HEADER_FIXED + m.length);
    const tj = Buffer.from(trailer, 'utf8');
    const t = Buffer.alloc(TRAILER_FIXED + tj.length + 4 + FOOTER);
    t[0] = TAG_TRAILER;
    t.writeUInt32LE(tj.length, 13);
    tj.copy(t, TRAILER_FIXED);
    const end = TRAILER_FIXED + tj.length;
    t.writeUInt32LE(crc32(t, 0, end), end);
    t.writeBigUInt64LE(BigInt(h.length), end + 4);
    t.set(END_MAGIC, end + 12);
    const path = at(name);
    writeFileSync(path, Buffer.concat([h, t]));
    return path;
}
test('the JSON depth check: linear, outside strings only, before JSON.parse', () => {
    assert.equal(typeof parseJson(`${'['.repeat(MAX_JSON_DEPTH)}${']'.repeat(MAX_JSON_DEPTH)}`), 'object');
    assert.equal(parseJson(`${'['.repeat(MAX_JSON_DEPTH + 1)}${']'.repeat(MAX_JSON_DEPTH + 1)}`), 'nested more than 64 levels deep');
    assert.deepEqual(parseJson(`["${'[{\\"'.repeat(1000)}"]`), { value: ['[{"'.repeat(1000)] });
    assert.equal(parseJson('[1,'), 'not valid JSON (Unexpected end of JSON input)');
});
test('trace metadata nested 100,000 deep: replay, trace info and trace convert refuse it in one line', () => {
    const deep = `{"a":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    const path = craftTrace('deep.umt', deep);
    const message = `${path}: offset ${HEADER_FIXED}: metadata: nested more than 64 levels deep`;
    failsWith(umbra(['replay', path]), message);
    failsWith(umbra(['trace', 'info', path]), message);
    failsWith(umbra(['trace', 'convert', path, at('deep.jsonl')]), message);
    const trailer = craftTrace('deep-trailer.umt', '{}', deep);
    failsWith(umbra(['trace', 'info', trailer]), /: trailer: nested more than 64 levels deep$/m);
});
test('trace metadata with prototype keys and object values: shown as data, never called', () => {
    const meta = '{"workload":"toString","__proto__":{"polluted":1},"constructor":{"x":1},"size":{"toString":1},' +
        '"seed":{"valueOf":1},"memory":{"valueOf":1},"mode":["a"]}';
    const trailer = '{"guest":{"__proto__":5,"guest.processes":"x","guest.kills":3},"digest":{"toString":1}}';
    const path = craftTrace('proto.umt', meta, trailer);
    const r = umbra(['replay', path]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^workload {3}toString\n/);
    assert.match(r.stdout, /size \{"toString":1\}, seed \{"valueOf":1\}/);
    assert.match(r.stdout, /0 killed|3 killed/);
    const info = umbra(['trace', 'info', path, '--json']);
    assert.equal(info.status, 0, info.stderr);
    assert.deepEqual(JSON.parse(info.stdout).meta, JSON.parse(meta));
    const out = at('proto.jsonl');
    const c = umbra(['trace', 'convert', path, out]);
    assert.equal(c.status, 0, c.stderr);
    const back = umbra(['trace', 'convert', out, at('proto-back.umt')]);
    assert.equal(back.status, 0, back.stderr);
    assert.deepEqual(JSON.parse(umbra(['trace', 'info', at('proto-back.umt'), '--json']).stdout).meta, JSON.parse(meta));
    assert.equal({}.polluted, undefined);
});
// ---- absurd numbers ----
test('shadow:pool=huge and prefetch=huge are refused; the pool is at most 2^26 frames', () => {
    assert.equal(parseShadowSpec('shadow:pool=99999999999999999999999'), '"pool=99999999999999999999999": 99999999999999999999999 is too large');
    assert.match(String(parseShadowSpec('shadow:pool=67108865')), /the pool needs at least 64 frames and at most 67108864/);
    assert.equal(parseShadowSpec('shadow:pool=67108864').pool, 2 ** 26);
    assert.match(String(parseShadowSpec('shadow:prefetch=99999999999999999999999')), /too large/);
    failsWith(umbra(['exec', join(root, 'examples/boot-32bit.jsonl'), '--pager', 'shadow:pool=99999999999999999999999']), '--pager: "pool=99999999999999999999999": 99999999999999999999999 is too large');
    failsWith(umbra(['exec', join(root, 'examples/boot-32bit.jsonl'), '--pager', 'shadow', '--shadow-pool', '99999999999']), '--shadow-pool must be an integer from 64 to 67108864');
});
test('--size is a decimal fraction: hex, exponents and blanks are refused', () => {
    for (const size of ['0x10', '1e1', ' 1', 'Infinity', '', '-1', '0']) {
        failsWith(umbra(['run', '--workload', 'compile', '--size', size]), `--size ${size}: must be a decimal number`);
    }
});
// ---- inspect: shared tables are not loops ----
/**
 * A 4-level image whose PML4 (frame 1) has all 512 entries pointing at one
 * PDPT (frame 2) of 512 1 GiB pages: legal sharing, 2^18 mappings, no loop.
 */
function sharedCore() {
    const words = [];
    for (let i = 0; i < 512; i++)
        words.push([0x1000 + i * 8, 0x2007n]); // PML4E -> PDPT, P RW US
    for (let i = 0; i < 512; i++)
        words.push([0x2000 + i * 8, BigInt(i % 2) * 0x40000000n + 0x87n]); // 1 GiB pages
    const path = at('shared.elf');
    writeFileSync(path, buildCore({
        loads: [{ paddr: 0, data: ram(3, words, true) }],
        cpus: [{ cr0: 0x80000011n, cr3: 0x1000n, cr4: 0x20n }],
    }));
    return path;
}
test('inspect: a PDPT shared by every PML4 entry is listed, not called a loop', () => {
    const path = sharedCore();
    const regs = at('regs.txt');
    writeFileSync(regs, 'CPU#0\nEFER=0000000000000d00\n');
    const r = umbra(['inspect', path, '--registers', regs]);
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stdout + r.stderr, /loop/);
    assert.match(r.stdout, /262144 x 1 GiB/);
});
test('enumeration limits: shared tables say they do not loop; a table below itself is a loop', async () => {
    const img = await openImage(sharedCore());
    try {
        const v = vcpuView(img, 0, { registers: { path: 'r', text: { efer: 0xd00n } } });
        assert.throws(() => enumerate(img.memory, v.fmt, v.root, {}, 1000), /^Error: more than 1000 mappings: page tables shared by many entries map too much to list \(they do not loop\)$/);
        const regs = { cr0: 0x80000011, cr3: 0x1000n, cr4: 0x20, lma: true };
        assert.throws(() => qemuInfoTlb(img.memory, regs, () => { }, 1000), /more than 1000 lines: .*\(they do not loop\)/);
    }
    finally {
        img.close();
    }
    // Every PML4 entry points at the PML4 itself.
    const words = [];
    for (let i = 0; i < 512; i++)
        words.push([0x1000 + i * 8, 0x1007n]);
    const self = at('self.elf');
    writeFileSync(self, buildCore({
        loads: [{ paddr: 0, data: ram(2, words, true) }],
        cpus: [{ cr0: 0x80000011n, cr3: 0x1000n, cr4: 0x20n }],
    }));
    const looped = await openImage(self);
    try {
        const v = vcpuView(looped, 0, { registers: { path: 'r', text: { efer: 0xd00n } } });
        assert.throws(() => enumerate(looped.memory, v.fmt, v.root, {}, 1000), /more than 1000 mappings: the page tables loop \(the table at 0x1000 is reached again below itself\)/);
    }
    finally {
        looped.close();
    }
});
test('inspect: shared tables with no leaves are bounded in work (table visits are capped)', async () => {
    // PML4 -> one PDPT -> one PD (all 512 entries each); the PD is empty: 2^18 + 2^9 + 1 visits, no leaf.
    const words = [];
    for (let i = 0; i < 512; i++) {
        words.push([0x1000 + i * 8, 0x2007n], [0x2000 + i * 8, 0x3007n]);
    }
    const path = at('empty-shared.elf');
    writeFileSync(path, buildCore({
        loads: [{ paddr: 0, data: ram(5, words, true) }],
        cpus: [{ cr0: 0x80000011n, cr3: 0x1000n, cr4: 0x20n }],
    }));
    const img = await openImage(path);
    try {
        const v = vcpuView(img, 0, { registers: { path: 'r', text: { efer: 0xd00n } } });
        let tables = 0;
        const t0 = Date.now();
        enumerate(img.memory, v.fmt, v.root, { table: () => tables++ });
        assert.equal(tables, 1 + 512 + 512 * 512);
        assert.ok(Date.now() - t0 < 20_000);
        assert.throws(() => enumerate(img.memory, v.fmt, v.root, {}, undefined, new Descent(1000)), /^Error: more than 1000 page-table visits: .*\(they do not loop\)$/);
    }
    finally {
        img.close();
    }
});
//# sourceMappingURL=input-bounds.test.js.map