/**
 * Importing ELF cores: ELF32 and ELF64, plain and xz, PN_XNUM, segments that
 * do not fill their frames, frames spilled to disk, and every kind of broken
 * image (one clear error, exit status 2). The cores are built here.
 */
import './support/node.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openImage } from '../src/import/image.js';
import { vcpuView } from '../src/inspect/context.js';
import { ImageError } from '../src/inspect/image.js';
import { qemuInfoMem, qemuInfoTlb } from '../src/inspect/qemu.js';
import { buildReport } from '../src/inspect/report.js';
import { parseVa, translate } from '../src/inspect/translate.js';
import { enumerate } from '../src/inspect/tree.js';
import { buildCore, note, qemuNote, ram, xz } from './support/core.js';
const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'dist/src/cli/main.js');
const dir = mkdtempSync(join(tmpdir(), 'umbra-import-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
function file(data) {
    const p = join(dir, `core-${files++}.elf`);
    writeFileSync(p, data);
    return p;
}
async function text(path, cpu, fn, opts = {}) {
    const img = await openImage(path, opts);
    try {
        const v = vcpuView(img, cpu);
        const parts = [];
        const regs = { cr0: Number(v.state.cr0), cr3: v.state.cr3, cr4: Number(v.state.cr4), lma: (v.efer & 0x400) !== 0 };
        fn(img.memory, regs, (s) => parts.push(s));
        return parts.join('');
    }
    finally {
        img.close();
    }
}
// ---- a 32-bit guest in an ELF32 core ----
// PD at 0x1000: PDE 0 -> PT at 0x2000 (P RW US); PDE 0x300 -> 4 MiB page at 0x1_0040_0000 (PSE-36 bit 13 = PA bit 32).
// PT: PTE 1 -> 0x5000 (P US A), PTE 2 -> 0x6000 (P RW A D PAT).
const elf32 = buildCore({
    cls: 32,
    loads: [
        {
            paddr: 0,
            data: ram(16, [
                [0x1000, 0x2007n],
                [0x1000 + 0x300 * 4, 0x004021e3n],
                [0x2004, 0x5025n],
                [0x2008, 0x60e3n],
            ], false),
        },
    ],
    cpus: [{ cr0: 0x80000011n, cr3: 0x1000n, cr4: 0x10n, cpl: 3 }],
});
test('an ELF32 core of a 32-bit guest: vCPU state, QEMU views, SDM view', async () => {
    const path = file(elf32);
    const img = await openImage(path);
    try {
        assert.equal(img.elfClass, 32);
        assert.equal(img.machine, 3);
        assert.equal(img.cpus.length, 1);
        assert.equal(img.cpus[0]?.cpl, 3);
        assert.deepEqual(img.loads.map((l) => [l.paddr, l.memsz]), [[0, 0x10000]]);
        const v = vcpuView(img, 0);
        assert.equal(v.mode?.name, '32-bit');
        assert.equal(v.efer, 0);
        assert.equal(v.maxPhysAddr, 36);
        assert.equal(v.twin, null);
        const r = buildReport(v);
        assert.equal(r.root?.leafCount, 3);
        assert.deepEqual(r.root?.leaves, { '4 KiB': 2, '4 MiB': 1 });
        assert.deepEqual(r.root?.tableFrames, { PD: 1, PT: 1 });
        assert.deepEqual(r.root?.nonRam, { leaves: 1, bytes: 4 << 20 }); // the PSE-36 page lies above 4 GiB
        const at = parseVa('0xc0012345');
        const t = translate(v, { vaHi: at.hi, vaLo: at.lo, access: 0, cpl: 0 });
        assert.equal(t.physical, '0x100412345');
        assert.equal(t.pageSize, 4 << 20);
        const u = translate(v, { vaHi: 0, vaLo: 0x1abc, access: 1, cpl: 3 });
        assert.equal(u.physical, '0x5abc');
        assert.equal(u.errorCode, 7); // write to a read-only user page from user mode
    }
    finally {
        img.close();
    }
    // QEMU clears PAT (bit 7) of 4 KiB PTEs and drops the PSE-36 bits of 4 MiB pages.
    assert.equal(await text(path, 0, qemuInfoTlb), '0000000000001000: 0000000000005000 ----A--U-\n' +
        '0000000000002000: 0000000000006000 ---DA---W\n' +
        '00000000c0000000: 0000000000400000 -GPDA---W\n');
    assert.equal(await text(path, 0, qemuInfoMem), '0000000000001000-0000000000002000 0000000000001000 ur-\n' +
        '0000000000002000-0000000000003000 0000000000001000 -rw\n' +
        '00000000c0000000-00000000c0400000 0000000000400000 -rw\n');
});
test('the same core xz-compressed, and with every frame spilled to disk, reads the same', async () => {
    const plain = await text(file(elf32), 0, qemuInfoTlb);
    const packed = file(await xz(elf32));
    assert.equal(await text(packed, 0, qemuInfoTlb), plain);
    assert.equal(await text(packed, 0, qemuInfoTlb, { memoryBudget: 0 }), plain);
});
// ---- segments that do not fill their frames, PN_XNUM ----
const odd = {
    loads: [
        { paddr: 0, data: Buffer.alloc(0x1000, 0x11), memsz: 0x1800 }, // 0x1000-0x17ff: zeros past p_filesz
        { paddr: 0x2800, data: Buffer.alloc(0x800, 0xab) }, // starts mid-frame
        { paddr: 0x3000, data: Buffer.alloc(0x1000, 0) },
    ],
    cpus: [{ cr0: 0x11n, cr3: 0n, cr4: 0n }],
    xnum: true,
};
test('RAM is what PT_LOAD covers: zeros past p_filesz, all ones outside (plain, xz, spilled)', async () => {
    const core = buildCore(odd);
    for (const [path, opts] of [
        [file(core), {}],
        [file(await xz(core)), {}],
        [file(await xz(core)), { memoryBudget: 0 }],
    ]) {
        const img = await openImage(path, opts);
        try {
            assert.equal(img.loads.length, 3, 'PN_XNUM: count from section header 0');
            const bytes = (pfn) => {
                const f = img.memory.frameForRead(pfn);
                return Buffer.from(f.buffer, f.byteOffset, 4096);
            };
            assert.ok(bytes(0).every((b) => b === 0x11));
            assert.deepEqual([bytes(1)[0], bytes(1)[0x7ff], bytes(1)[0x800], bytes(1)[0xfff]], [0, 0, 0xff, 0xff]);
            assert.deepEqual([bytes(2)[0], bytes(2)[0x7ff], bytes(2)[0x800], bytes(2)[0xfff]], [0xff, 0xff, 0xab, 0xab]);
            assert.ok(bytes(3).every((b) => b === 0));
            assert.ok(bytes(4).every((b) => b === 0xff));
            assert.deepEqual([1, 2, 3, 4, 1 << 30].map((p) => img.memory.isRam(p)), [true, true, true, false, false]);
            const v = vcpuView(img, 0);
            assert.equal(v.mode, null);
            assert.equal(buildReport(v).paging, 'off');
            assert.equal(translate(v, { vaHi: 0, vaLo: 0x1234, access: 0, cpl: 0 }).physical, '0x1234');
        }
        finally {
            img.close();
        }
    }
});
test('page tables that loop are stopped, not followed forever', async () => {
    // Every PML4 entry points at the PML4 itself: 512^4 "pages".
    const words = [];
    for (let i = 0; i < 512; i++)
        words.push([i * 8, 0x0007n]);
    const path = file(buildCore({ loads: [{ paddr: 0, data: ram(1, words, true) }], cpus: [{ cr0: 0x80000011n, cr3: 0n, cr4: 0x20n }] }));
    const img = await openImage(path);
    try {
        const v = vcpuView(img, 0, { registers: { path: 'r', text: { efer: 0x500n } } });
        assert.equal(v.mode?.name, '4-level');
        assert.throws(() => enumerate(img.memory, v.fmt, v.root, {}, 1000), /more than 1000 mappings/);
        const regs = { cr0: 0x80000011, cr3: 0n, cr4: 0x20, lma: true };
        let out = 0;
        assert.throws(() => qemuInfoTlb(img.memory, regs, (s) => (out += s.length), 1000), /more than 1000 lines/);
        assert.ok(out < 100_000);
    }
    finally {
        img.close();
    }
});
test('a root outside RAM: reported by the SDM view, an empty table to the QEMU views', async () => {
    const path = file(buildCore({
        loads: [{ paddr: 0, data: Buffer.alloc(0x2000) }],
        cpus: [{ cr0: 0x80000011n, cr3: 0x100000n, cr4: 0x20n }],
    }));
    const img = await openImage(path);
    try {
        const v = vcpuView(img, 0, { registers: { path: 'r', text: { efer: 0xd00n } } });
        const r = buildReport(v);
        assert.deepEqual(r.root?.anomalies.map((a) => [a.kind, a.examples]), [['root-outside-ram', ['CR3 0x100000']]]);
        assert.equal(r.root?.leafCount, 0);
        const regs = { cr0: 0x80000011, cr3: 0x100000n, cr4: 0x20, lma: true };
        const out = [];
        qemuInfoTlb(img.memory, regs, (s) => out.push(s));
        qemuInfoMem(img.memory, regs, (s) => out.push(s));
        assert.deepEqual(out, []);
        const t = translate(v, { vaHi: 0, vaLo: 0x1000, access: 0, cpl: 0 });
        assert.equal(t.errorCode, 0x9); // the walker reads all ones there: reserved bits
    }
    finally {
        img.close();
    }
});
// ---- broken images ----
const good = { loads: [{ paddr: 0, data: Buffer.alloc(0x2000) }], cpus: [{ cr0: 0x11n, cr3: 0n, cr4: 0n }] };
function patched(core, at, bytes) {
    const b = Buffer.from(core);
    Buffer.from(bytes).copy(b, at);
    return b;
}
const bad = [
    ['empty file', () => '', /not an ELF core: the file is empty \(at offset 0\)/],
    ['not an ELF file', () => 'hello, world\n', /not an ELF core: no ELF magic \(at offset 0\)/],
    ['truncated ELF header', () => buildCore(good).subarray(0, 30), /truncated: the ELF header needs bytes up to 64/],
    [
        'truncated segment data',
        () => buildCore(good).subarray(0, 0x1000),
        /truncated: segment 1 has data up to \d+ but the file has 4096 bytes/,
    ],
    ['unknown class', () => patched(buildCore(good), 4, [3]), /unknown EI_CLASS 3 \(at offset 4\)/],
    ['big-endian', () => patched(buildCore(good), 5, [2]), /not a little-endian ELF/],
    ['not a core', () => buildCore({ ...good, type: 2 }), /not a core file: e_type 2 .*\(at offset 16\)/],
    ['wrong machine', () => buildCore({ ...good, machine: 40 }), /wrong machine: e_machine 40 .*\(at offset 18\)/],
    ['no program headers', () => patched(buildCore(good), 56, [0, 0]), /no program headers/],
    ['no PT_NOTE', () => buildCore({ ...good, notes: null }), /missing notes: no PT_NOTE segment/],
    [
        'no QEMU note',
        () => buildCore({ ...good, notes: note('CORE', 1, Buffer.alloc(336)) }),
        /missing notes: no QEMU CPU-state note/,
    ],
    [
        'short QEMU note',
        () => buildCore({ ...good, notes: note('QEMU', 0, Buffer.alloc(100)) }),
        /QEMU CPU-state note of 100 bytes is too short/,
    ],
    [
        'note overrunning its segment',
        () => buildCore({ ...good, notes: qemuNote(good.cpus[0]).subarray(0, 200) }),
        /truncated note: .* overrun the segment/,
    ],
    [
        'overlapping segments',
        () => buildCore({ ...good, loads: [...good.loads, { paddr: 0x1000, data: Buffer.alloc(0x1000) }] }),
        /overlapping segments 1 \(0x0-0x2000\) and 2 \(from 0x1000\)/,
    ],
    [
        'p_paddr beyond 2^53',
        () => buildCore({ ...good, loads: [{ paddr: 1n << 60n, data: Buffer.alloc(16) }] }),
        /absurd p_paddr 0x1000000000000000/,
    ],
    [
        'segment beyond 52-bit physical addresses',
        () => buildCore({ ...good, loads: [{ paddr: 2 ** 51, data: Buffer.alloc(16), memsz: 2 ** 52 }] }),
        /absurd segment 1: .* beyond 52-bit physical addresses/,
    ],
    [
        'p_filesz above p_memsz',
        () => buildCore({ ...good, loads: [{ paddr: 0, data: Buffer.alloc(0x2000), memsz: 0x1000 }] }),
        /segment 1: p_filesz 0x2000 exceeds p_memsz 0x1000/,
    ],
    [
        'absurd program header count (PN_XNUM)',
        () => patched(buildCore({ ...good, xnum: true }), 64 + 44, [0xff, 0xff, 0xff, 0xff]),
        /absurd program header count 4294967295 in section header 0/,
    ],
    [
        'corrupt xz data (block check)',
        async () => {
            const x = await xz(buildCore(good));
            return patched(x, x.length - 28, [0x55, 0xaa, 0x55, 0xaa]);
        },
        /xz data is corrupt or truncated/,
    ],
    [
        'truncated xz data',
        async () => {
            const x = await xz(buildCore({ ...good, loads: [{ paddr: 0, data: Buffer.alloc(0x2000, 7) }] }));
            return x.subarray(0, x.length - 40);
        },
        /xz data is corrupt or truncated|truncated: the data ends/,
    ],
    ['xz of something else', async () => xz(Buffer.from('not a core at all')), /not an ELF core: no ELF magic/],
];
for (const [name, make, message] of bad) {
    test(`bad image, ${name}: one ImageError, and exit status 2 with one line`, async () => {
        const path = file(await make());
        await assert.rejects(openImage(path), (e) => {
            assert.ok(e instanceof ImageError, `not an ImageError: ${e}`);
            assert.match(e.message, message);
            return true;
        });
        const r = spawnSync(process.execPath, [cli, 'inspect', path], { encoding: 'utf8' });
        assert.equal(r.status, 2);
        assert.equal(r.stdout, '');
        assert.match(r.stderr, /^umbra: \S+core-\d+\.elf: [^\n]+\n$/);
        assert.match(r.stderr, message);
    });
}
test('a missing file and a directory are one-line errors too', () => {
    const sub = join(dir, 'a-directory');
    mkdirSync(sub);
    for (const [path, message] of [
        [join(dir, 'nothing-here'), 'no such file'],
        [sub, 'not a regular file'],
    ]) {
        const r = spawnSync(process.execPath, [cli, 'inspect', path], { encoding: 'utf8' });
        assert.equal(r.status, 2);
        assert.equal(r.stderr, `umbra: ${path}: ${message}\n`);
    }
});
//# sourceMappingURL=import.test.js.map