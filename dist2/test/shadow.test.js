/**
 * The shadow pager on hand-made guests: hostile page tables, ROM ranges,
 * the cache across CR3 switches, recursive maps, statistics through the CLI.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ShadowPager } from '../src/pagers/shadow/shadow.js';
import { runText } from './support/run.js';
const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'dist/src/cli/main.js');
const pw = (gpa, v, size = 8) => `{"op":"pwrite","gpa":"0x${gpa.toString(16)}","size":${size},"value":"0x${v.toString(16)}"}`;
const rd = (va, cpl = 0, size = 8) => `{"op":"read","va":"0x${va.toString(16)}","size":${size},"cpl":${cpl}}`;
/** A write, then a full flush: the guest may be writing its own tables, and a well-behaved guest invalidates. */
const wr = (va, v, cpl = 0) => `{"op":"write","va":"0x${va.toString(16)}","size":8,"value":"0x${v.toString(16)}","cpl":${cpl}}\n{"op":"flush"}`;
const LONG = [
    '{"op":"wrcr","reg":"cr4","value":"0x20"}',
    '{"op":"wrmsr","msr":"efer","value":"0x900"}',
    '{"op":"wrcr","reg":"cr3","value":"0x1000"}',
    '{"op":"wrcr","reg":"cr0","value":"0x80010011"}',
];
const scenario = (lines, memory = 0x100000) => `${[`{"op":"machine","vcpus":1,"memory":"0x${memory.toString(16)}"}`, ...lines].join('\n')}\n`;
/** Run under both pagers (shadow with the isolation checker) and require identical output. */
function same(text, readOnly = []) {
    const pager = new ShadowPager({ check: true });
    const out = runText(text, { pager, readOnly });
    assert.equal(out, runText(text, { readOnly }));
    assert.equal(pager.stats()['emulate.loop_guard'], 0);
    return { out, stats: pager.stats() };
}
test('a table that maps itself at every level: reads and writes through it stay transparent and bounded', () => {
    // PML4[0] -> PML4 itself: every level walks the same frame.
    const lines = [pw(0x1000, 0x1007), pw(0x1008, 0x2007), pw(0x2000, 0x3007), ...LONG];
    for (let i = 0; i < 50; i++)
        lines.push(rd(i * 8), wr(0x8 * (i % 4) + 0x1000 * (i % 3), i));
    const { stats } = same(scenario(lines));
    // One shadow per (frame, level) at most: the cache cannot grow without bound.
    assert.ok(stats.peak_shadow_frames <= 3 * 4 + 2, `peak ${stats.peak_shadow_frames}`);
    assert.ok(stats['emulate.pt_write'] > 0);
});
test('entries pointing at unbacked frames and at frames beyond MAXPHYADDR fault exactly as natively', () => {
    const lines = [
        pw(0x1000, 0x2007),
        pw(0x2000, 0x3007),
        pw(0x3000, 0x4007),
        pw(0x4000, 0x10000007), // data frame beyond RAM: MMIO, reads all ones
        pw(0x4008, 0x5000007), // page table... data beyond RAM
        pw(0x3008, 0x7ff000007), // table pointer far beyond RAM: all-ones entries, reserved bits
        pw(0x2008, 0xfff0000000007n), // beyond MAXPHYADDR 40: reserved
        ...LONG,
        rd(0),
        wr(0, 1),
        rd(0x1000),
        rd(0x200000),
        rd(0x40000000),
        rd(0x200000, 3),
    ];
    const { out, stats } = same(scenario(lines));
    assert.match(out, /"i":13,"value":"0xffffffffffffffff"/);
    assert.match(out, /"error":"0x9"/);
    assert.ok(stats['emulate.mmio'] >= 2);
});
test('page-table loops between two frames never make the hypervisor loop', () => {
    const lines = [pw(0x1000, 0x2007), pw(0x2000, 0x1007), pw(0x1ff8, 0x2007), pw(0x2ff8, 0x1007), ...LONG];
    for (let i = 0; i < 20; i++)
        lines.push(rd(BigInt(i) * 0x8040201000n), wr(0xff8 + 0x1000 * (i % 2), 0x1007));
    same(scenario(lines));
});
test('a read-only p2m range behaves like ROM: reads work, writes vanish, under both pagers', () => {
    const lines = [
        pw(0x1000, 0x2007),
        pw(0x2000, 0x3007),
        pw(0x3000, 0x4007),
        pw(0x4000, 0x9007),
        ...LONG,
        rd(0),
        wr(0, 0x1234),
        rd(0),
    ];
    const { out, stats } = same(scenario(lines), [[9, 9]]);
    assert.match(out, /"value":"0x0"\}\n\{"i":\d+,"ok":true\}\n\{"i":\d+,"value":"0x0"\}/);
    assert.equal(stats['emulate.rom_write_discarded'], 1);
    // The guest's PTE got A and D as on bare metal: the write was allowed, then discarded by the ROM.
    assert.match(out, /"memory_sha256"/);
});
test('the shadow cache survives CR3 switches: switching back finds the shadows', () => {
    const lines = [
        pw(0x1000, 0x3007),
        pw(0x2000, 0x3007), // two address spaces sharing lower tables
        pw(0x3000, 0x4007),
        pw(0x4000, 0x5007),
        pw(0x5000, 0x6007),
        ...LONG,
    ];
    for (let i = 0; i < 20; i++)
        lines.push(`{"op":"wrcr","reg":"cr3","value":"0x${i % 2 ? '2000' : '1000'}"}`, rd(0));
    const { stats } = same(scenario(lines));
    assert.equal(stats['fault.fixed'], 2, 'each space faults once, then its pinned shadows are found');
    assert.ok(stats.shadow_cache_hits >= 18);
});
test('exec --pager shadow --stats prints exits by cause and shadow counters; --p2m-ro is parsed', () => {
    const r = spawnSync(process.execPath, [
        cli,
        'exec',
        join(root, 'examples/recursive-4level.jsonl'),
        '--pager',
        'shadow',
        '--check',
        '--stats',
        '--p2m-ro',
        '0x100-0x1ff',
    ], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    for (const k of [
        'shadow.exit.page_fault',
        'shadow.emulate.pt_write',
        'shadow.shadows_made',
        'shadow.peak_shadow_frames',
    ]) {
        assert.match(r.stderr, new RegExp(`^${k.replace('.', '\\.')}\\s+\\d`, 'm'));
    }
    const bad = spawnSync(process.execPath, [cli, 'exec', '-', '--p2m-ro', '9-3'], { encoding: 'utf8', input: '' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /^umbra: --p2m-ro 9-3: the range ends before it starts\n$/);
});
test('guest superpages become shadow superpages when the P2M is contiguous, and are splintered otherwise', () => {
    const lines = [
        pw(0x1000, 0x2007),
        pw(0x2000, 0x3007),
        pw(0x3008, 0x200087), // VA 2 MiB -> 2 MiB page at guest 2 MiB
        pw(0x3010, 0x3007), // VA 4 MiB -> the PD itself as a page table: frame 0x3 becomes a shadowed table
        ...LONG,
        rd(0x200000),
        wr(0x200010, 5),
        rd(0x200010),
    ];
    const identity = new ShadowPager({ check: true });
    const native = runText(scenario(lines, 0x800000));
    assert.equal(runText(scenario(lines, 0x800000), { pager: identity }), native);
    assert.equal(identity.stats().superpages_mapped, 2, 'read, then write once D is set');
    const scattered = new ShadowPager({ check: true });
    assert.equal(runText(scenario(lines, 0x800000), { pager: scattered, layout: 'scatter', seed: 3 }), native);
    assert.equal(scattered.stats().superpages_mapped, 0);
    assert.ok(scattered.stats().superpages_splintered > 0);
});
test('a shadow superpage over a frame that becomes a guest table is dropped and splintered', () => {
    // Tables live above 2 MiB; VA 0 maps guest 0-2 MiB as one superpage. Later a PDE
    // points at frame 0x4 (inside that superpage) as a page table: it becomes shadowed.
    const lines = [
        pw(0x201000, 0x202007),
        pw(0x202000, 0x203007),
        pw(0x203000, 0x87), // VA 0 -> 2 MiB page at guest 0
        pw(0x4000, 0x6007), // will be a page table: VA 4 MiB -> frame 6
        '{"op":"wrcr","reg":"cr4","value":"0x20"}',
        '{"op":"wrmsr","msr":"efer","value":"0x900"}',
        '{"op":"wrcr","reg":"cr3","value":"0x201000"}',
        '{"op":"wrcr","reg":"cr0","value":"0x80010011"}',
        rd(0x5000),
        pw(0x203010, 0x4007), // PD[2] -> PT at frame 4
        '{"op":"flush"}',
        rd(0x400000),
        wr(0x4000, 0x7007), // write the PT through VA 0's mapping: now trapped and emulated
        rd(0x400000),
        rd(0x5000), // VA 0's 2 MiB page again: rebuilt splintered, frame 4 read-only
    ];
    const { stats } = same(scenario(lines, 0x800000));
    assert.ok(stats.superpages_mapped >= 1);
    assert.ok(stats.superpages_splintered >= 1, 'rebuilt splintered after frame 4 became a table');
    assert.ok(stats['emulate.pt_write'] + stats['oos.unsynced'] >= 1, 'the write to the table inside the old superpage trapped');
});
//# sourceMappingURL=shadow.test.js.map