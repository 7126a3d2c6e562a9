/**
 * Inspecting real guest images (QEMU 7.2 dump-guest-memory cores of Linux
 * guests): QEMU's `info tlb` / `info mem` byte for byte, the SDM view (every
 * leaf checked against the walker, counts against the capture's meta.json),
 * KPTI twins, and translations checked against QEMU's own lines. The bundled
 * fixture always runs; the whole corpus when ../shared/corpus/realguests exists.
 */
import './support/node.js';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { EFER_LMA } from '../src/arch/x86/bits.js';
import { WALK_OK, Walker, WalkResult } from '../src/arch/x86/walker.js';
import { openImage } from '../src/import/image.js';
import { unxzFile } from '../src/import/xz.js';
import { vcpuView } from '../src/inspect/context.js';
import { canonicalHex } from '../src/inspect/format.js';
import { qemuInfoMem, qemuInfoTlb } from '../src/inspect/qemu.js';
import { parseInfoRegisters } from '../src/inspect/registers.js';
import { buildReport } from '../src/inspect/report.js';
import { translate } from '../src/inspect/translate.js';
import { enumerate } from '../src/inspect/tree.js';
const root = fileURLToPath(new URL('../..', import.meta.url));
const FIXTURE = join(root, 'fixtures/x86_64-4level-2');
const CORPUS = join(root, '../shared/corpus/realguests');
const corpus = existsSync(CORPUS)
    ? readdirSync(CORPUS)
        .filter((d) => existsSync(join(CORPUS, d, 'meta.json')))
        .sort()
    : [];
const tmp = mkdtempSync(join(tmpdir(), 'umbra-inspect-test-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const unxz = unxzFile;
/** Images are opened once per directory and kept for the whole file. */
const images = new Map();
function image(dir) {
    let p = images.get(dir);
    if (p === undefined) {
        p = openImage(join(dir, 'dump.elf.xz'));
        images.set(dir, p);
    }
    return p;
}
after(async () => {
    for (const p of images.values())
        (await p).close();
});
async function view(dir, cpu, registers = true) {
    const img = await image(dir);
    const path = join(dir, `registers-cpu${cpu}.txt`);
    return vcpuView(img, cpu, registers ? { registers: { path, text: parseInfoRegisters(readFileSync(path, 'utf8')) } } : {});
}
function qemu(v, kind) {
    const s = v.state;
    const regs = { cr0: Number(s.cr0), cr3: s.cr3, cr4: Number(s.cr4), lma: (v.efer & EFER_LMA) !== 0 };
    const parts = [];
    (kind === 'tlb' ? qemuInfoTlb : qemuInfoMem)(v.image.memory, regs, (x) => parts.push(x));
    return parts.join('');
}
const meta = (dir) => JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8'));
/** Run `check` for every vCPU of the fixture, or of every corpus image (skipped without the corpus). */
function eachVcpu(name, which, check) {
    test(`${name} (${which})`, async (t) => {
        if (which === 'corpus' && corpus.length === 0) {
            t.skip(`no corpus at ${CORPUS}`);
            return;
        }
        const dirs = which === 'fixture' ? [FIXTURE] : corpus.map((d) => join(CORPUS, d));
        for (const dir of dirs)
            for (const cpu of [0, 1])
                await check(dir, cpu);
    });
}
// ---- QEMU's views, byte for byte ----
for (const which of ['fixture', 'corpus']) {
    eachVcpu("qemu-tlb and qemu-mem are byte-identical to QEMU's info tlb / info mem", which, async (dir, cpu) => {
        const v = await view(dir, cpu);
        const where = `${dir} vCPU ${cpu}`;
        assert.ok(qemu(v, 'tlb') === (await unxz(join(dir, `tlb-cpu${cpu}.txt.xz`))).toString(), `info tlb of ${where}`);
        const mem = (await unxz(join(dir, `mem-cpu${cpu}.txt.xz`))).toString();
        // QEMU 7.2's 5-level info mem prints nothing (README): there the ranges are checked below instead.
        if (v.mode?.name === '5-level')
            assert.equal(mem, '');
        else
            assert.ok(qemu(v, 'mem') === mem, `info mem of ${where}`);
    });
}
/**
 * `info mem` rebuilt from the SDM leaves (U/S and R/W ANDed over the levels,
 * as the walker computes them), with mem_print's display: a range ends where
 * the rights change or a gap starts, and start, end and size are printed
 * through addr_canonical.
 */
function memFromLeaves(v) {
    const fmt = v.fmt;
    assert.ok(fmt && v.root);
    const bit = fmt.mode.vaBits === 57 ? 56 : 47;
    const c = (x) => canonicalHex(x, bit);
    const out = [];
    let start = -1;
    let last = 0;
    let end = 0;
    const print = (at, prot) => {
        if (prot === last)
            return;
        if (start !== -1)
            out.push(`${c(start)}-${c(at)} ${c(at - start)} ${last & 4 ? 'u' : '-'}r${last & 2 ? 'w' : '-'}\n`);
        start = prot !== 0 ? at : -1;
        last = prot;
    };
    enumerate(v.image.memory, fmt, v.root, {
        leaf: (l) => {
            if (l.va !== end)
                print(end, 0);
            print(l.va, (l.perm & 6) | 1);
            end = l.va + 2 ** l.shift;
        },
    });
    print(end, 0);
    return out.join('');
}
for (const which of ['fixture', 'corpus']) {
    eachVcpu('qemu-mem equals the ranges of the SDM leaves (so 5-level prints the right ranges)', which, async (dir, cpu) => {
        const v = await view(dir, cpu);
        assert.ok(memFromLeaves(v) === qemu(v, 'mem'), `${dir} vCPU ${cpu}`);
    });
}
test('EFER inferred without --registers gives the same QEMU views (fixture)', async () => {
    for (const cpu of [0, 1]) {
        const v = await view(FIXTURE, cpu, false);
        assert.equal(v.efer, 0xd00); // LMA LME NXE (SCE is not knowable)
        assert.equal(v.eferSource, 'inferred');
        assert.match(v.inferred.map((i) => i.text).join('\n'), /LMA=LME=1 inferred from e_machine 62/);
        assert.ok(qemu(v, 'tlb') === (await unxz(join(FIXTURE, `tlb-cpu${cpu}.txt.xz`))).toString());
    }
});
test('an uncompressed core reads the same as its xz original (random access)', async () => {
    const plain = join(tmp, 'dump.elf');
    writeFileSync(plain, await unxz(join(FIXTURE, 'dump.elf.xz')));
    const img = await openImage(plain);
    try {
        assert.equal(img.compressed, false);
        const packed = await image(FIXTURE);
        assert.deepEqual(img.cpus, packed.cpus);
        assert.deepEqual(img.loads, packed.loads);
        for (const pfn of [0, 0x62e6, 0x62e7, 0x4413, 0x7fff, 0xfffc0, 0x8000, 0x100000]) {
            assert.deepEqual(img.memory.frameForRead(pfn), packed.memory.frameForRead(pfn), `frame ${pfn.toString(16)}`);
        }
        const v = vcpuView(img, 1);
        assert.ok(qemu(v, 'tlb') === (await unxz(join(FIXTURE, 'tlb-cpu1.txt.xz'))).toString());
    }
    finally {
        img.close();
    }
});
// ---- the SDM view ----
/** Every leaf the enumeration reports is exactly what the walker finds at the leaf's first address. */
function checkLeaves(v, r) {
    const fmt = v.fmt;
    assert.ok(fmt);
    const walker = new Walker();
    const w = new WalkResult();
    let n = 0;
    enumerate(v.image.memory, fmt, r, {
        leaf: (l) => {
            const hi = Math.floor(l.va / 2 ** 32) >>> 0;
            const res = walker.walk(v.image.memory, fmt, r.pfn, r.pdpte, hi, l.va % 2 ** 32, w);
            if (res !== WALK_OK || w.pfn !== l.pfn || w.shift !== l.shift || w.perm !== l.perm || w.level !== l.level) {
                assert.fail(`leaf at ${l.va.toString(16)}: walker ${res} ${w.pfn} ${w.shift} ${w.perm}, tree ${l.pfn} ${l.shift} ${l.perm}`);
            }
            n++;
        },
    });
    return n;
}
for (const which of ['fixture', 'corpus']) {
    eachVcpu('every enumerated leaf (CR3 root and KPTI twin) is what Walker.walk finds', which, async (dir, cpu) => {
        const v = await view(dir, cpu);
        assert.ok(checkLeaves(v, v.root) > 0);
        if (v.twin)
            assert.ok(checkLeaves(v, v.twin) > 0);
    });
    eachVcpu('counts, KPTI twin and rights anomalies agree with the capture (meta.json)', which, async (dir, cpu) => {
        const m = meta(dir).per_cpu[cpu];
        assert.ok(m);
        const v = await view(dir, cpu);
        const where = `${dir} vCPU ${cpu}`;
        assert.equal(v.mode?.name, m.mode, where);
        assert.equal(v.efer, Number(m.efer), where);
        assert.equal(v.state.cpl, m.cpl, where);
        assert.equal(v.twin ? `0x${v.twin.cr3.toString(16)}` : null, m.kpti_twin_root, where);
        assert.equal(v.rootKind, m.kpti_root_kind, where);
        const r = buildReport(v);
        assert.ok(r.root);
        assert.equal(r.root.leafCount, m.leaves, where);
        const bySize = {};
        for (const [size, n] of Object.entries(m.leaves_by_size)) {
            const s = Number(size);
            bySize[s >= 2 ** 30 ? `${s / 2 ** 30} GiB` : s >= 2 ** 20 ? `${s / 2 ** 20} MiB` : `${s / 1024} KiB`] = n;
        }
        assert.deepEqual(r.root.leaves, bySize, where);
        assert.deepEqual(r.root.tableFrames, m.page_table_frames_by_level, where);
        const nx = r.root.anomalies.find((a) => a.kind === 'nx-above-leaf');
        assert.equal(nx?.count ?? 0, m.walker_vs_info_tlb.effective_NX_differs_from_leaf, where);
        assert.equal(r.twin?.leafCount ?? 0, m.kpti_twin_leaves, where);
        assert.equal(r.twin?.tableFramesTotal ?? 0, m.kpti_twin_page_table_frames, where);
    });
}
test('the KPTI kernel root of the fixture: user pages not executable, QEMU-invisible, reported', async () => {
    const r = buildReport(await view(FIXTURE, 0), { ranges: true });
    assert.ok(r.root && r.twin);
    assert.equal(r.root.kind, 'kernel');
    assert.equal(r.twin.kind, 'user');
    assert.equal(r.twin.cr3, '0x62e7000');
    assert.equal(r.root.user.executable, 0); // XD in the kernel root's user-half PML4Es
    assert.ok(r.twin.user.executable > 0);
    assert.ok(r.root.anomalies.some((a) => a.kind === 'nx-above-leaf' && a.examples[0]?.startsWith('0x0000000000401000')));
    // Ranges are merged and periodic runs folded: the 65 536 espfix pages stay a handful of records.
    assert.ok((r.root.ranges?.length ?? 0) < 500);
    const pages = (r.root.ranges ?? []).reduce((n, x) => n + (Number(x.size) / x.pageSize) * (x.count ?? 1), 0);
    assert.equal(pages, 71947 + 80);
});
test('PAE: the PDPTE accessed bit is reported as QEMU noise, not an error', async (t) => {
    if (corpus.length === 0) {
        t.skip(`no corpus at ${CORPUS}`);
        return;
    }
    const r = buildReport(await view(join(CORPUS, 'i386-pae-1'), 0));
    const a = r.root?.anomalies.find((x) => x.kind === 'pdpte-accessed');
    assert.equal(a?.count, 3);
    assert.ok(!r.root?.anomalies.some((x) => x.kind === 'pdpte-reserved' || x.kind === 'reserved'));
});
// ---- translations ----
/** QEMU's info tlb lines as [va, pa] for every `step`-th line; PAE's XD-in-the-address masked off. */
async function tlbLines(dir, cpu, step) {
    const text = (await unxz(join(dir, `tlb-cpu${cpu}.txt.xz`))).toString();
    const lines = text.split('\n').filter((l, i) => l.length > 0 && i % step === 0);
    return lines.map((l) => [`0x${l.slice(0, 16)}`, BigInt(`0x${l.slice(18, 34)}`) & 0xfffffffffffffn]);
}
for (const which of ['fixture', 'corpus']) {
    eachVcpu("translate finds the physical address of QEMU's info tlb lines", which, async (dir, cpu) => {
        const v = await view(dir, cpu);
        for (const [va, pa] of await tlbLines(dir, cpu, 97)) {
            const x = BigInt(va) + 0x123n;
            const t = translate(v, { vaHi: Number(x >> 32n), vaLo: Number(x & 0xffffffffn), access: 0, cpl: 0 });
            assert.equal(t.physical, `0x${(pa + 0x123n).toString(16)}`, `${dir} vCPU ${cpu} ${va}`);
        }
    });
}
test('translate: walk steps, rights, faults and error codes (fixture vCPU 0, KPTI kernel root)', async () => {
    const v = await view(FIXTURE, 0);
    const at = (va, access, cpl, twin = false) => translate(v, { vaHi: Number(va >> 32n), vaLo: Number(va & 0xffffffffn), access, cpl, twin });
    // 0000000000401000: 0000000004413000 ----A--U-
    const user = at(0x401abcn, 0, 3);
    assert.equal(user.result, 'ok');
    assert.equal(user.physical, '0x4413abc');
    assert.deepEqual(user.steps.map((s) => [s.entry, s.where, s.value]), [
        ['PML4E', '0x62e6000[0]', '0x8000000006303067'],
        ['PDPTE', '0x6303000[0]', '0x0000000006304067'],
        ['PDE', '0x6304000[2]', '0x0000000006305067'],
        ['PTE', '0x6305000[1]', '0x0000000004413025'],
    ]);
    assert.match(user.rights, /^user, read-only \(R\/W=0 at PTE\), no-execute \(XD at PML4E\)/);
    assert.equal(at(0x401abcn, 2, 3).errorCode, 0x15); // fetch: P U I/D (XD from the kernel root's PML4E)
    assert.equal(at(0x401abcn, 2, 3, true).result, 'ok'); // the user root has no XD there
    assert.equal(at(0x401abcn, 1, 3).errorCode, 0x7); // write to a read-only page
    assert.equal(at(0x401abcn, 0, 0).errorCode, 0x1); // SMAP
    assert.match(at(0x401abcn, 0, 0).explanation, /SMAP/);
    assert.equal(at(0x1000n, 0, 3).errorCode, 0x4); // not present
    // ffff8b8d00200000: 0000000000200000 X-PDA---W
    const big = at(0xffff8b8d00212345n, 1, 0);
    assert.equal(big.physical, '0x212345');
    assert.equal(big.pageSize, 2 << 20);
    assert.equal(big.result, 'ok');
    assert.equal(at(0x0000800000000000n, 0, 0).result, 'gp');
});
//# sourceMappingURL=inspect.test.js.map