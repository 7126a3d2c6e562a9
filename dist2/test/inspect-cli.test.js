/** End-to-end tests of `umbra inspect` and `umbra translate` on the bundled fixture. */
import './support/node.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { unxzFile } from '../src/import/xz.js';
const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'dist/src/cli/main.js');
const FIXTURE = join(root, 'fixtures/x86_64-4level-2');
const XZ = join(FIXTURE, 'dump.elf.xz');
const REGS0 = join(FIXTURE, 'registers-cpu0.txt');
const REGS1 = join(FIXTURE, 'registers-cpu1.txt');
const tmp = mkdtempSync(join(tmpdir(), 'umbra-cli-test-'));
/** The fixture uncompressed: imports by random access, so most runs here are quick. */
const PLAIN = join(tmp, 'dump.elf');
const umbra = (...args) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
const unxz = unxzFile;
before(async () => writeFileSync(PLAIN, await unxz(XZ)));
after(() => rmSync(tmp, { recursive: true, force: true }));
test('inspect --format qemu-tlb of the xz image: QEMU info tlb byte for byte, inferences on stderr', async () => {
    const r = umbra('inspect', XZ, '--cpu', '1', '--format', 'qemu-tlb');
    assert.equal(r.status, 0);
    assert.ok(r.stdout === (await unxz(join(FIXTURE, 'tlb-cpu1.txt.xz'))).toString());
    assert.match(r.stderr, /^umbra: note: EFER not given \(--registers\): LMA=LME=1 inferred/);
});
test('inspect --format qemu-mem with --registers: QEMU info mem byte for byte, nothing on stderr', async () => {
    const r = umbra('inspect', PLAIN, '--format', 'qemu-mem', '--registers', REGS0);
    assert.equal(r.status, 0);
    assert.equal(r.stderr, '');
    assert.ok(r.stdout === (await unxz(join(FIXTURE, 'mem-cpu0.txt.xz'))).toString());
});
test('inspect --format summary --sample (what npm start shows)', () => {
    const r = umbra('inspect', PLAIN, '--registers', REGS0, '--format', 'summary', '--sample');
    assert.equal(r.status, 0);
    assert.equal(r.stderr, '');
    for (const want of [
        'ELF64 core, e_machine 62 (x86-64), 2 vCPUs',
        `EFER        0xd01       SCE LME LMA NXE  (from ${REGS0})`,
        'paging      4-level',
        'note: MAXPHYADDR 40 assumed',
        'Address space of CR3 0x62e6000: the kernel half of a KPTI pair',
        'page tables   112 frames: PML4 1, PDPT 72, PD 10, PT 29',
        'leaves        72027: 71947 x 4 KiB, 80 x 2 MiB',
        "212 pages not executable although the leaf's XD=0",
        'KPTI twin root 0x62e7000, not in CR3: the user half of a KPTI pair',
        'Sample translations',
        'PTE   0x6305000[1] = 0x0000000004413025  P US A  -> 4 KiB page at 0x4413000',
        'read at CPL 0 refused: SMAP',
    ]) {
        assert.ok(r.stdout.includes(want), `missing: ${want}`);
    }
});
test('inspect --format json: the same picture, machine-readable, with merged ranges', () => {
    const r = umbra('inspect', PLAIN, '--cpu', '1', '--format', 'json');
    assert.equal(r.status, 0);
    const j = JSON.parse(r.stdout);
    assert.equal(j.paging, '4-level');
    assert.equal(j.vcpu.efer, '0xd00');
    assert.equal(j.vcpu.eferSource, 'inferred');
    assert.equal(j.root.kind, 'user');
    assert.equal(j.root.leafCount, 65904);
    assert.equal(j.twin.cr3, '0x6296000');
    assert.ok(j.root.ranges.length > 0 && j.root.ranges.length < 500);
    assert.deepEqual(Object.keys(j.root.ranges[0]), [
        'start',
        'end',
        'size',
        'pageSize',
        'user',
        'writable',
        'executable',
    ]);
    assert.ok(r.stdout.length < 200_000);
});
test('translate: the walk step by step, then the result', () => {
    const r = umbra('translate', PLAIN, '0x401abc', '--cpu', '0', '--access', 'x', '--cpl', '3', '--registers', REGS0);
    assert.equal(r.status, 0);
    assert.equal(r.stdout, [
        '0x0000000000401abc, instruction fetch at CPL 3, from CR3 0x62e6000 (kernel half of a KPTI pair)',
        '  PML4E 0x62e6000[0] = 0x8000000006303067  P RW US A XD  -> PDPT at 0x6303000',
        '  PDPTE 0x6303000[0] = 0x0000000006304067  P RW US A  -> PD at 0x6304000',
        '  PDE   0x6304000[2] = 0x0000000006305067  P RW US A  -> PT at 0x6305000',
        '  PTE   0x6305000[1] = 0x0000000004413025  P US A  -> 4 KiB page at 0x4413000',
        '  physical address 0x4413abc (4 KiB page)',
        '  effective rights: user, read-only (R/W=0 at PTE), no-execute (XD at PML4E), key 0',
        '  #PF, error code 0x15 (P: protection violation, U: user mode, I/D: instruction fetch): instruction fetch at CPL 3 refused: the page is no-execute',
        'note: MAXPHYADDR 40 assumed (typical of an x86-64 guest, e_machine 62); set it with --maxphyaddr',
        '',
    ].join('\n'));
    const twin = umbra('translate', PLAIN, '0x401abc', '--access', 'x', '--cpl', '3', '--root', 'twin', '--maxphyaddr', '40');
    assert.equal(twin.status, 0);
    assert.match(twin.stdout, /from KPTI twin of CR3, 0x62e7000 \(user half of a KPTI pair\)/);
    assert.match(twin.stdout, /instruction fetch at CPL 3: allowed\n/);
    const gp = umbra('translate', PLAIN, '0x0000800000000000', '--maxphyaddr', '40', '--registers', REGS0);
    assert.match(gp.stdout, /#GP\(0\): 0x0000800000000000 is not canonical \(bits 63:47 must all equal bit 47\)/);
});
test('bad options and mismatched inputs: one line on stderr, exit status 2', () => {
    const cases = [
        [['inspect', PLAIN, '--cpu', '2'], /^umbra: --cpu 2: \S+ has 2 vCPUs \(0-1\)\n$/],
        [['inspect', PLAIN, '--cpu', 'one'], /^umbra: --cpu must be an integer from 0 to 4095, got "one"\n$/],
        [['inspect', PLAIN, '--maxphyaddr', '64'], /^umbra: --maxphyaddr must be an integer from 32 to 52, got "64"\n$/],
        [['inspect', PLAIN, '--format', 'xml'], /^error: option '--format <fmt>' argument 'xml' is invalid/],
        [['inspect', PLAIN, '--registers', join(tmp, 'none.txt')], /^umbra: \S+none.txt: no such file\n$/],
        [
            ['inspect', PLAIN, '--registers', REGS1],
            /^umbra: \S+registers-cpu1.txt: registers of CPU#1, but vCPU 0 was asked for/,
        ],
        [['inspect', PLAIN, '--registers', XZ], /^umbra: \S+dump.elf.xz: no EFER= line/],
        [['translate', PLAIN, 'zz'], /^umbra: "zz" is not a linear address \(hex with 0x, or decimal, below 2\^64\)\n$/],
        [['translate', PLAIN, '0x10000000000000000'], /^umbra: "0x10000000000000000" is not a linear address/],
        [['translate', PLAIN, '0', '--cpl', '4'], /^umbra: --cpl must be an integer from 0 to 3, got "4"\n$/],
    ];
    for (const [args, message] of cases) {
        const r = umbra(...args);
        assert.equal(r.status, 2, args.join(' '));
        assert.equal(r.stdout, '');
        assert.match(r.stderr, message);
        assert.equal(r.stderr.split('\n').length, 2, `one line: ${r.stderr}`);
    }
});
//# sourceMappingURL=inspect-cli.test.js.map