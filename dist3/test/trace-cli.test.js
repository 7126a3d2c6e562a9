/** End-to-end tests of `umbra trace convert` and `umbra trace info`. */
import './support/node.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { generateScenario } from '../src/guest/scenario/generate.js';
import { replayTrace } from '../src/guest/trace/index.js';
import { openTrace } from '../src/io/trace.js';
import { ShadowPager } from '../src/pagers/shadow/shadow.js';
const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'dist/src/cli/main.js');
const umbra = (args, input) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', input });
const dir = mkdtempSync(join(tmpdir(), 'umbra-trace-cli-'));
const at = (name) => join(dir, name);
/** A non-zero exit with exactly one line on stderr, starting `umbra: `, and no stack trace. */
function failsWith(r, message) {
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stderr.split('\n').length, 2, `one line: ${r.stderr}`);
    assert.ok(r.stderr.startsWith(`umbra: ${message}`), r.stderr);
}
test('convert both ways: exec of the converted scenario prints what exec of the original does, and what a replay does', () => {
    const src = at('gen.jsonl');
    writeFileSync(src, generateScenario(21, { mode: '4-level', ops: 2000, vcpus: 2 }));
    const r1 = umbra(['trace', 'convert', src, at('gen.umt')]);
    assert.equal(r1.status, 0, r1.stderr);
    assert.equal(r1.stderr, '');
    assert.deepEqual(readFileSync(at('gen.umt')).subarray(0, 8), Buffer.from('\x89UMBTRC\n', 'latin1'));
    const r2 = umbra(['trace', 'convert', at('gen.umt'), at('back.jsonl')]);
    assert.equal(r2.status, 0, r2.stderr);
    const original = umbra(['exec', src, '--pager', 'shadow']);
    const converted = umbra(['exec', at('back.jsonl'), '--pager', 'shadow']);
    assert.equal(original.status, 0);
    assert.equal(converted.stdout, original.stdout);
    const chunks = [];
    replayTrace(openTrace(at('gen.umt')), {
        pager: new ShadowPager(),
        layout: 'identity',
        seed: 0,
        out: (c) => chunks.push(c),
    });
    assert.equal(Buffer.concat(chunks).toString('latin1'), converted.stdout);
    // And back again: the same trace, byte for byte.
    assert.equal(umbra(['trace', 'convert', at('back.jsonl'), at('again.umt')]).status, 0);
    assert.deepEqual(readFileSync(at('again.umt')), readFileSync(at('gen.umt')));
});
test('info prints a summary, and --json the same as JSON', () => {
    const src = at('info.jsonl');
    writeFileSync(src, [
        '{"op":"machine","vcpus":2,"memory":"0x200000","maxphyaddr":46}',
        '{"op":"pwrite","gpa":"0x1000","size":8,"value":"0xffffffffffffffff"}',
        '{"op":"read","va":"0x1000","size":8,"cpl":3}',
        '{"op":"cpu","vcpu":1}',
        '{"op":"read","va":"0x1008","size":4,"cpl":0}',
        '# umbra-trace meta {"workload":"tiny","seed":5}',
        '# umbra-trace trailer {"faults":0}',
        '',
    ].join('\n'));
    assert.equal(umbra(['trace', 'convert', src, at('info.umt')]).status, 0);
    const text = umbra(['trace', 'info', at('info.umt')]);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /^machine +2 vCPUs, memory 0x200000 \(2 MiB\), maxphyaddr 46$/m);
    assert.match(text.stdout, /^metadata +\{"workload":"tiny","seed":5\}$/m);
    assert.match(text.stdout, /^operations +4 in 1 block$/m);
    assert.match(text.stdout, /by kind +cpu 1, read 2, pwrite 1$/m);
    assert.match(text.stdout, /by vCPU +0: 2, 1: 1$/m);
    assert.match(text.stdout, /kernel \(cpl 0\) 1, user \(cpl 3\) 1$/m);
    assert.match(text.stdout, /^trailer +\{"faults":0\}$/m);
    const json = umbra(['trace', 'info', at('info.umt'), '--json']);
    const s = JSON.parse(json.stdout);
    assert.equal(s.ops, 4);
    assert.deepEqual(s.machine, { vcpus: 2, memory: 0x200000, maxphyaddr: 46 });
    assert.deepEqual(s.meta, { workload: 'tiny', seed: 5 });
    assert.deepEqual(s.by_kind, { cpu: 1, read: 2, pwrite: 1 });
    assert.deepEqual(s.by_vcpu, [2, 1]);
    assert.deepEqual(s.by_cpl, [1, 0, 0, 1]);
    assert.equal(s.user_accesses, 1);
    assert.equal(s.kernel_accesses, 1);
    assert.equal(s.blocks, 1);
    assert.equal(s.file_bytes, readFileSync(at('info.umt')).length);
    assert.equal(s.bytes_per_op, Math.round((s.file_bytes / 4) * 1000) / 1000);
    assert.deepEqual(s.trailer, { faults: 0 });
});
test('a scenario whose operations are not on consecutive lines converts with a note', () => {
    const src = at('gaps.jsonl');
    writeFileSync(src, '{"op":"machine","vcpus":1,"memory":"0x1000"}\n\n{"op":"flush"}\n');
    const r = umbra(['trace', 'convert', src, at('gaps.umt')]);
    assert.equal(r.status, 0);
    assert.match(r.stderr, /^umbra: note: .*gaps\.jsonl has blank or comment lines between operations/);
});
test('bad input ends in one line, status 2, and leaves no output file', () => {
    const good = at('good.jsonl');
    writeFileSync(good, '{"op":"machine","vcpus":1,"memory":"0x1000"}\n{"op":"flush"}\n{"op":"flush"}\n');
    assert.equal(umbra(['trace', 'convert', good, at('good.umt')]).status, 0);
    const bytes = readFileSync(at('good.umt'));
    const bad = at('bad.jsonl');
    writeFileSync(bad, '{"op":"machine","vcpus":1,"memory":"0x1000"}\n{"op":"flush"}\n{"op":"read","va":0,"size":3,"cpl":0}\n');
    failsWith(umbra(['trace', 'convert', bad, at('bad.umt')]), `${bad}:3: "size" must be 1, 2, 4 or 8`);
    assert.equal(existsSync(at('bad.umt')), false, 'no partial trace');
    const cut = at('cut.umt');
    writeFileSync(cut, bytes.subarray(0, bytes.length - 5));
    failsWith(umbra(['trace', 'convert', cut, at('cut.jsonl')]), `${cut}: offset `);
    assert.match(umbra(['trace', 'info', cut]).stderr, /no end marker: truncated/);
    assert.equal(existsSync(at('cut.jsonl')), false);
    const flipped = at('flipped.umt');
    const f = Buffer.from(bytes);
    const firstBlock = 32 + f.readUInt32LE(28) + 4;
    f[firstBlock + 18] = f[firstBlock + 18] ^ 0x40;
    writeFileSync(flipped, f);
    failsWith(umbra(['trace', 'convert', flipped, at('flipped.jsonl')]), `${flipped}: offset ${firstBlock + 1}: block 1: checksum mismatch`);
    assert.equal(existsSync(at('flipped.jsonl')), false, 'no partial scenario');
    const v2 = at('v2.umt');
    const v = Buffer.from(bytes);
    v.writeUInt16LE(2, 8);
    writeFileSync(v2, v);
    failsWith(umbra(['trace', 'info', v2]), `${v2}: offset 8: trace format version 2 is not supported`);
    failsWith(umbra(['trace', 'info', good]), `${good}: offset 0: not an Umbra trace (bad magic)`);
    failsWith(umbra(['trace', 'info', at('missing.umt')]), `${at('missing.umt')}: no such file or directory`);
    failsWith(umbra(['trace', 'convert', at('missing.umt'), at('x.jsonl')]), `${at('missing.umt')}: no such file or directory`);
    failsWith(umbra(['trace', 'convert', good, good]), `${good}: input and output are the same file`);
    assert.equal(umbra(['trace', 'convert', good]).status, 2, 'missing argument');
});
//# sourceMappingURL=trace-cli.test.js.map