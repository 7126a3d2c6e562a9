/**
 * The scenario format's `p2m` operation and semantics rule 5: frames made ROM,
 * taken away and given back while the guest runs, under every registered
 * pager variant (the shadow ones with the isolation checker on), in every
 * guest mode, with the expected outcomes written out by hand from the spec.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseScenario, ScenarioError } from '../src/guest/scenario/parse.js';
import { allVariants, createPager } from '../src/pagers/registry.js';
import { ShadowPager } from '../src/pagers/shadow/shadow.js';
import { runText } from './support/run.js';
const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'dist/src/cli/main.js');
const hex = (v) => `"0x${v.toString(16)}"`;
const pw = (gpa, v, size = 8) => `{"op":"pwrite","gpa":${hex(gpa)},"size":${size},"value":${hex(v)}}`;
const pr = (gpa, size = 8) => `{"op":"pread","gpa":${hex(gpa)},"size":${size}}`;
const rd = (va, cpl = 0, size = 8) => `{"op":"read","va":${hex(va)},"size":${size},"cpl":${cpl}}`;
const wr = (va, v, cpl = 0) => `{"op":"write","va":${hex(va)},"size":8,"value":${hex(v)},"cpl":${cpl}}`;
const p2m = (gfn, count, type) => `{"op":"p2m","gfn":${gfn},"count":${count},"type":"${type}"}`;
const FLUSH = '{"op":"flush"}';
/**
 * A guest in `mode` whose VA 0 maps data frame 8 through tables in frames
 * 1.. (top first), and VA 0x1000 maps frame 9; `leafTable` is the frame of
 * the table holding the leaf entries. Data frame 8 holds 0x1234.
 */
function guest(mode) {
    const levels = mode === '32-bit' ? 2 : mode === 'pae' ? 3 : mode === '4-level' ? 4 : 5;
    const size = mode === '32-bit' ? 4 : 8;
    const lines = [];
    // Frame 1 is the top; each level's entry 0 points at the next frame.
    for (let l = 0; l < levels - 1; l++) {
        // PAE PDPTEs have no R/W or U/S: present only.
        const flags = mode === 'pae' && l === 0 ? 1 : 7;
        lines.push(pw((1 + l) * 4096, (2 + l) * 4096 + flags, size));
    }
    const leafTable = levels;
    lines.push(pw(leafTable * 4096, 0x8007, size), pw(leafTable * 4096 + size, 0x9007, size), pw(0x8000, 0x1234));
    const cr4 = mode === '32-bit' ? 0 : mode === '5-level' ? 0x1020 : 0x20;
    lines.push(`{"op":"wrcr","reg":"cr4","value":${hex(cr4)}}`);
    if (levels >= 4)
        lines.push('{"op":"wrmsr","msr":"efer","value":"0x100"}');
    lines.push('{"op":"wrcr","reg":"cr3","value":"0x1000"}', '{"op":"wrcr","reg":"cr0","value":"0x80010011"}');
    return { lines, leafTable };
}
const scenario = (lines, vcpus = 1) => `${[`{"op":"machine","vcpus":${vcpus},"memory":"0x100000"}`, ...lines].join('\n')}\n`;
/** Output lines as objects, keyed by "i" (the final line under "final"). */
function byLine(out) {
    const m = new Map();
    for (const l of out.trim().split('\n')) {
        const o = JSON.parse(l);
        m.set(typeof o.i === 'number' ? o.i : 'final', o);
    }
    return m;
}
/** Run under native and every registered pager variant (checker on): all must print the same; returns native's. */
function everywhere(text) {
    const native = runText(text);
    for (const spec of allVariants(2)) {
        for (const layout of ['identity', 'scatter']) {
            const out = runText(text, { pager: createPager(spec, { check: true }), layout, seed: 7 });
            assert.equal(out, native, `${spec} (${layout}) differs from native`);
        }
    }
    return native;
}
/** Line number (1-based, the machine line is 1) of the first line of `lines` equal to `op`, after `from`. */
const lineOf = (lines, op, from = 0) => lines.indexOf(op, from) + 2;
const MODES = ['32-bit', 'pae', '4-level', '5-level'];
describe('p2m rom', () => {
    for (const mode of MODES) {
        test(`${mode}: reads go on, guest writes and pwrites are discarded, flags in a ROM table stay clear`, () => {
            const { lines, leafTable } = guest(mode);
            const size = mode === '32-bit' ? 4 : 8;
            const s = [...lines, rd(0), p2m(8, 1, 'rom'), FLUSH, wr(0, 0x99), rd(0), pw(0x8000, 0x77), rd(0)];
            // The leaf table becomes ROM before the first use of VA 0x1000: its entry's A and D stay clear.
            s.push(p2m(leafTable, 1, 'rom'), FLUSH, wr(0x1000, 0x55), rd(0x1000), pr(leafTable * 4096 + size, size));
            s.push(p2m(leafTable, 1, 'ram'), p2m(8, 1, 'ram'), FLUSH, wr(0, 0x66), rd(0));
            const out = byLine(everywhere(scenario(s)));
            const at = (op, from = 0) => out.get(lineOf(s, op, from));
            const first = lines.length;
            assert.deepEqual(at(rd(0), first), { i: lineOf(s, rd(0), first), value: '0x1234' });
            const afterRom = s.indexOf(wr(0, 0x99));
            assert.equal(at(wr(0, 0x99)).ok, true);
            assert.equal(at(rd(0), afterRom).value, '0x1234');
            assert.equal(at(rd(0), s.indexOf(pw(0x8000, 0x77))).value, '0x1234');
            // The write through a leaf in a ROM table succeeds (frame 9 is RAM) and sets no flag.
            assert.equal(at(rd(0x1000)).value, '0x55');
            assert.equal(at(pr(leafTable * 4096 + size, size)).value, '0x9007');
            // Back to RAM: contents kept, writes land.
            assert.equal(at(rd(0), s.indexOf(wr(0, 0x66))).value, '0x66');
        });
    }
});
describe('p2m none', () => {
    for (const mode of MODES) {
        test(`${mode}: a frame taken away reads all ones and drops writes; its tables fault; it comes back zeroed`, () => {
            const { lines, leafTable } = guest(mode);
            const s = [...lines, rd(0), p2m(8, 1, 'none'), FLUSH, rd(0), wr(0, 0x99), pr(0x8000), rd(0)];
            s.push(p2m(8, 1, 'ram'), FLUSH, rd(0), wr(0, 0x42), rd(0x1000), p2m(leafTable, 1, 'none'), FLUSH, rd(0x1000));
            s.push(p2m(leafTable, 1, 'ram'), FLUSH, rd(0x1000));
            const native = everywhere(scenario(s));
            const out = byLine(native);
            const at = (op, from = 0) => out.get(lineOf(s, op, from));
            const gone = s.indexOf(p2m(8, 1, 'none'));
            const ones = mode === '32-bit' ? '0xffffffffffffffff' : '0xffffffffffffffff';
            assert.equal(at(rd(0), gone).value, ones);
            assert.equal(at(pr(0x8000)).value, '0xffffffffffffffff');
            assert.equal(at(rd(0), s.indexOf(pr(0x8000))).value, ones);
            assert.equal(at(rd(0), s.indexOf(p2m(8, 1, 'ram'))).value, '0x0');
            // The leaf table taken away: its entries read as all ones. With 8-byte
            // entries that sets reserved bits (#PF, RSVD); a 32-bit PTE has none and
            // maps frame 0xfffff, above RAM (reads all ones).
            const t = at(rd(0x1000), s.indexOf(p2m(leafTable, 1, 'none')));
            if (mode === '32-bit')
                assert.equal(t.value, '0xffffffffffffffff');
            else
                assert.deepEqual(t.fault, { vector: 'PF', error: '0x9', cr2: '0x1000' });
            // Given back zeroed: not present.
            const z = at(rd(0x1000), s.indexOf(p2m(leafTable, 1, 'ram')));
            assert.deepEqual(z.fault, { vector: 'PF', error: '0x0', cr2: '0x1000' });
        });
    }
    test('frames taken away are left out of memory_sha256, and the whole of RAM may go and come back', () => {
        const a = scenario([pw(0x5000, 0xabc), pw(0x6000, 0xdef), p2m(6, 1, 'none')]);
        const b = scenario([pw(0x5000, 0xabc)]);
        const hash = (out) => byLine(out).get('final').final;
        assert.deepEqual(hash(everywhere(a)), hash(everywhere(b)));
        const all = scenario([pw(0x5000, 0xabc), p2m(0, 256, 'none'), pr(0x5000), p2m(0, 256, 'ram'), pr(0x5000)]);
        const out = byLine(everywhere(all));
        assert.equal(out.get(4)?.value, '0xffffffffffffffff');
        assert.equal(out.get(6)?.value, '0x0');
        assert.deepEqual(hash(everywhere(all)), hash(everywhere(scenario([]))));
    });
});
test('shadow: a type change unshadows the frame and removes every mapping of it (Xen sh_unshadow_for_p2m_change)', () => {
    const { lines, leafTable } = guest('4-level');
    const s = [...lines, rd(0), rd(0x1000), p2m(8, 1, 'rom'), p2m(leafTable, 1, 'rom'), FLUSH, rd(0)];
    const pager = new ShadowPager({ check: true });
    const out = runText(scenario(s), { pager });
    assert.equal(out, runText(scenario(s)));
    const st = pager.stats();
    assert.equal(st['p2m.changes'], 2);
    assert.equal(st['p2m.unshadowed'], 1, 'the leaf table was shadowed');
    assert.ok(st['p2m.mappings_removed'] >= 1, 'the data frame was mapped');
    assert.ok(st['p2m.l1_searched'] >= 1);
    assert.equal(st['emulate.loop_guard'], 0);
});
test('a p2m change on one vCPU reaches the others: the hypervisor flushes every TLB it may have filled', () => {
    // vCPU 1 keeps VA 0 in its TLB; after the p2m op (and the flush the
    // well-behaved guest does on each vCPU) its writes must be discarded.
    const { lines } = guest('4-level');
    const cpu = (v) => `{"op":"cpu","vcpu":${v}}`;
    const s = [...lines, cpu(1), ...lines, wr(0, 0x10), cpu(0), p2m(8, 1, 'rom'), FLUSH, cpu(1), FLUSH, wr(0, 0x20)];
    s.push(rd(0), cpu(0), rd(0));
    const out = byLine(everywhere(scenario(s, 2)));
    const last = [...out.values()].filter((o) => 'value' in o).map((o) => o.value);
    assert.deepEqual(last.slice(-2), ['0x10', '0x10']);
});
describe('p2m validation', () => {
    const bad = [
        ['{"op":"p2m","gfn":256,"count":1,"type":"rom"}', '"gfn" must be below the 256 frames of "memory"'],
        ['{"op":"p2m","gfn":0,"count":0,"type":"rom"}', '"count" must be at least 1'],
        ['{"op":"p2m","gfn":200,"count":57,"type":"rom"}', '"count" must be at least 1 and end within the 256 frames'],
        ['{"op":"p2m","gfn":0,"count":1,"type":"mmio"}', '"type" must be "ram", "rom" or "none"'],
        ['{"op":"p2m","gfn":0,"count":1,"type":2}', '"type" must be "ram", "rom" or "none"'],
        ['{"op":"p2m","gfn":0,"count":1}', 'missing key "type"'],
        ['{"op":"p2m","gfn":0,"count":1,"type":"rom","va":0}', 'unknown key "va"'],
    ];
    for (const [line, reason] of bad) {
        test(line, () => {
            const text = `{"op":"machine","vcpus":1,"memory":"0x100000"}\n${line}\n`;
            assert.throws(() => parseScenario(text, 's.jsonl'), (e) => e instanceof ScenarioError && e.line === 2 && e.message.includes(reason));
        });
    }
    test('through the CLI: one line, exit status 2, nothing run', () => {
        const dir = mkdtempSync(join(tmpdir(), 'umbra-p2m-'));
        const file = join(dir, 's.jsonl');
        writeFileSync(file, `{"op":"machine","vcpus":1,"memory":"0x100000"}\n${pw(0, 1)}\n${bad[0]?.[0]}\n`);
        const r = spawnSync(process.execPath, [cli, 'exec', file], { encoding: 'utf8' });
        assert.equal(r.status, 2);
        assert.equal(r.stdout, '');
        assert.equal(r.stderr, `umbra: ${file}:3: "gfn" must be below the 256 frames of "memory"\n`);
    });
});
test("P2M entries as today's Xen encodes them: the type in bits 52-58, ram_rw 0, ram_ro 3, invalid entries empty", async () => {
    const { MachineMemory } = await import('../src/machine/memory.js');
    const { Placement, machineFramesFor } = await import('../src/machine/placement.js');
    const { P2m, P2M_INVALID, P2M_RAM_RO, P2M_RAM_RW, P2M_TYPE_NAMES } = await import('../src/p2m/p2m.js');
    assert.deepEqual([P2M_RAM_RW, P2M_INVALID, P2M_RAM_RO], [0, 1, 3]);
    assert.deepEqual(P2M_TYPE_NAMES.slice(0, 5), ['ram_rw', 'invalid', 'ram_logdirty', 'ram_ro', 'mmio_dm']);
    const ram = 1024;
    const types = new Map([[5, P2M_RAM_RO]]);
    const place = new Placement('scatter', ram, machineFramesFor(ram), 1, 7);
    const mem = new MachineMemory(machineFramesFor(ram));
    mem.addOwnerSource(place);
    mem.setFreeFrameSource(() => place.nextFreeFrame());
    const p = new P2m(mem, place, (g) => types.get(g) ?? P2M_RAM_RW);
    // The leaf entry of gfn g: walk the 4-level table by hand.
    const leaf = (g) => {
        let table = p.rootMfn;
        for (let level = 4; level > 1; level--) {
            const f = mem.read(table);
            const i = Math.floor(g / 2 ** (9 * (level - 1))) % 512;
            table = f[2 * i + 1] * 2 ** 20 + (f[2 * i] >>> 12);
        }
        const f = mem.read(table);
        return [f[2 * (g % 512)], f[2 * (g % 512) + 1]];
    };
    assert.equal(p.lookup(4), place.mfnOf(4));
    const [lo4, hi4] = leaf(4);
    assert.equal((hi4 >>> 20) & 0x7f, 0, 'ram_rw is type 0');
    assert.equal(lo4 & 7, 7, 'present, writable, user');
    assert.equal((lo4 >>> 12) + (hi4 & 0xfffff) * 2 ** 20, place.mfnOf(4));
    const [lo5, hi5] = leaf(5);
    assert.equal((hi5 >>> 20) & 0x7f, 3, 'ram_ro is type 3, in bits 52-58');
    assert.equal(lo5 & 7, 5, 'present, read-only');
    types.set(4, P2M_INVALID);
    assert.equal(p.retype(4, 1), true);
    assert.deepEqual(leaf(4), [0, 0], 'a frame taken away has an empty entry');
    assert.equal(p.lookup(4), -1);
    assert.equal(p.lastType, P2M_INVALID);
});
//# sourceMappingURL=p2m.test.js.map