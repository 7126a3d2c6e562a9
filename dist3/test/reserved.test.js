/**
 * Reserved bits in paging-structure entries (Intel SDM vol. 3A, 4.3 tables
 * 4-4..4-6, 4.4 tables 4-8..4-11, 4.5 tables 4-14..4-20, and 4.7 RSVD flag),
 * the PAE PDPTE registers (4.4.1) and unbacked memory (scenario spec,
 * semantics 3).
 *
 * `classify` states, from the SDM tables, what every bit of every entry kind
 * is: the P flag, a reserved bit, an address bit, the PS flag, or anything
 * else (flags, ignored bits, XD with NXE=1, PAT, protection key). A present
 * entry with a reserved bit set gives no translation: #PF with P=1 and RSVD=1
 * (plus W/R, U/S and I/D describing the access), and no accessed flag is set.
 * Setting any "other" bit leaves the translation working.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { A, CR0_PG, CR4_PAE, CR4_PGE, CR4_PSE, CR4_SMAP, CR4_SMEP, EFER_NXE, enablePaging, frame, GP, hex, hiOf, loOf, makeMachine, OK, P, PF, PF_ID, PF_P, PF_RSVD, PF_U, PF_W, put64, RW, Tables, topLevel, US, } from './support/x86.js';
const ACCESSES = ['read', 'write', 'fetch'];
const MAXPHYS = [32, 36, 40, 46, 52];
/**
 * What bit `bit` of a present entry of `kind` is, per the SDM tables.
 * M is MAXPHYADDR; for 32-bit paging the PSE-36 limit of 40 applies.
 */
function classify(mode, kind, bit, M, nxe, pse) {
    if (bit === 0)
        return 'P';
    const { level, large } = kind;
    if (mode === '32-bit') {
        const m = Math.min(M, 40);
        if (level === 2 && large) {
            // Table 4-4 (4 MiB PDE): 12 PAT, 20:13 hold PA bits 39:32 up to (M-20):13,
            // 21:(M-19) reserved, 31:22 PA bits 31:22.
            if (bit === 7)
                return 'ps';
            if (bit >= 13 && bit <= m - 20)
                return 'address';
            if (bit >= m - 19 && bit <= 21)
                return 'reserved';
            if (bit >= 22)
                return 'address';
            return 'other';
        }
        // Table 4-5 (PDE -> page table): bit 7 is PS with CR4.PSE=1, ignored otherwise.
        if (level === 2 && bit === 7)
            return pse ? 'ps' : 'other';
        // Tables 4-5, 4-6: bits 31:12 address, no reserved bits.
        return bit >= 12 ? 'address' : 'other';
    }
    const ia32e = mode !== 'pae';
    // XD (bit 63): execute-disable with NXE=1, reserved otherwise.
    if (bit === 63)
        return nxe ? 'other' : 'reserved';
    if (ia32e) {
        // Bits 62:52 are ignored (62:59 may be the protection key); 51:M reserved.
        if (bit >= 52)
            return 'other';
        if (bit >= M)
            return 'reserved';
    }
    else if (bit >= M) {
        return 'reserved'; // PAE: 62:M reserved
    }
    // PS must be 0 in a PML4E and a PML5E (tables 4-14, 4-15).
    if (level >= 4 && bit === 7)
        return 'reserved';
    if (large) {
        if (bit === 7)
            return 'ps';
        // 2 MiB PDE: 20:13 reserved (12 is PAT); 1 GiB PDPTE: 29:13 reserved.
        const lowAddr = level === 2 ? 21 : 30;
        if (bit >= 13 && bit < lowAddr)
            return 'reserved';
        if (bit >= lowAddr)
            return 'address';
        return 'other';
    }
    if (level >= 2 && bit === 7)
        return 'ps'; // PDE / PDPTE referencing a table
    if (bit >= 12)
        return 'address';
    return 'other'; // flags, bit 7 = PAT in a PTE
}
/** Error code for a reserved-bit fault (SDM 4.7). */
function rsvdError(mode, access, cpl, nxe, smep) {
    let e = PF_P | PF_RSVD;
    if (access === 'write')
        e |= PF_W;
    if (cpl === 3)
        e |= PF_U;
    if (access === 'fetch' && (smep || (mode !== '32-bit' && nxe)))
        e |= PF_ID;
    return e;
}
// One linear address for every page size; PAE uses PDPTE 1 (bits 31:30 = 01).
const VA_LO = 0x407f5008;
const vaHiFor = (mode) => (mode === '4-level' ? 0x12 : mode === '5-level' ? 0x123456 : 0);
/** Page base per leaf level (32-bit level 2 is 4 MiB) and the GPA VA_LO lands on. */
function pageFor(mode, leafLevel) {
    if (leafLevel === 1)
        return { base: 0x300000, gpa: 0x300008 };
    if (leafLevel === 3)
        return { base: 0, gpa: 0x7f5008 };
    if (mode === '32-bit')
        return { base: 0x800000, gpa: 0xbf5008 };
    return { base: 0x400000, gpa: 0x5f5008 };
}
const MARKER = 0x600df00d;
function setupMarkers(m) {
    for (const gpa of [0x300008, 0x7f5008, 0xbf5008, 0x5f5008])
        frame(m, Math.floor(gpa / 4096))[(gpa & 0xfff) / 4] = MARKER;
}
function leafLevelsOf(mode, pse) {
    if (mode === '32-bit')
        return pse ? [1, 2] : [1];
    if (mode === 'pae')
        return [1, 2];
    return [1, 2, 3];
}
function doAccess(cpu, hi, lo, access, cpl) {
    if (access === 'read')
        return cpu.read(hi, lo, 4, cpl);
    if (access === 'write')
        return cpu.write(hi, lo, 4, 0, MARKER, cpl);
    return cpu.fetch(hi, lo, cpl);
}
function configs() {
    const out = [];
    for (const mode of ['32-bit', 'pae', '4-level', '5-level']) {
        for (const M of MAXPHYS) {
            for (const nxe of [false, true]) {
                for (const pse of mode === '32-bit' ? [false, true] : [false]) {
                    // SMEP on for odd MAXPHYADDR indexes, so I/D is checked both ways.
                    out.push({ mode, M, nxe, pse, smep: M === 36 || M === 46 });
                }
            }
        }
    }
    return out;
}
describe('reserved bits in every entry kind, every MAXPHYADDR (SDM 4.3-4.5, 4.7)', () => {
    for (const mode of ['32-bit', 'pae', '4-level', '5-level']) {
        test(`${mode} paging`, () => {
            const problems = [];
            let rsvdChecked = 0;
            let otherChecked = 0;
            for (const cfg of configs().filter((c) => c.mode === mode)) {
                const wide = mode !== '32-bit';
                for (const leafLevel of leafLevelsOf(mode, cfg.pse)) {
                    const m = makeMachine({ maxPhys: cfg.M });
                    setupMarkers(m);
                    const t = new Tables(m, mode);
                    const hi = vaHiFor(mode);
                    const page = pageFor(mode, leafLevel);
                    const refs = t.map(hi, VA_LO, page.base, { leafLevel });
                    let cr4 = cfg.pse ? CR4_PSE : 0;
                    if (cfg.smep)
                        cr4 |= CR4_SMEP;
                    enablePaging(m.cpu, mode, { cr3Lo: t.cr3, nxe: cfg.nxe, cr4 });
                    const cpu = m.cpu;
                    for (const ref of refs) {
                        if (mode === 'pae' && ref.level === 3)
                            continue; // PDPTE registers: see below
                        const kind = { level: ref.level, large: ref.level === leafLevel && leafLevel > 1 };
                        const [lo0, hi0] = t.read(ref);
                        for (let bit = 0; bit < (wide ? 64 : 32); bit++) {
                            const cls = classify(mode, kind, bit, cfg.M, cfg.nxe, cfg.pse);
                            if (cls !== 'reserved' && cls !== 'other')
                                continue;
                            const lo1 = bit < 32 ? (lo0 | (1 << bit)) >>> 0 : lo0;
                            const hi1 = bit >= 32 ? (hi0 | (1 << (bit - 32))) >>> 0 : hi0;
                            t.write(ref, lo1, hi1);
                            cpu.flushAll();
                            const snapshot = refs.map((e) => t.read(e).join(':')).join(' ');
                            const tag = `M=${cfg.M} NXE=${+cfg.nxe} PSE=${+cfg.pse} SMEP=${+cfg.smep} leaf L${leafLevel}, level ${ref.level} bit ${bit} (${cls})`;
                            if (cls === 'reserved') {
                                for (const cpl of [0, 3]) {
                                    for (const access of ACCESSES) {
                                        const r = doAccess(cpu, hi, VA_LO, access, cpl);
                                        const want = rsvdError(mode, access, cpl, cfg.nxe, cfg.smep);
                                        rsvdChecked++;
                                        if (r !== PF || cpu.faultError !== want) {
                                            problems.push(`${tag} cpl=${cpl} ${access}: expected #PF ${hex(0, want)}, got ${r === PF ? `#PF ${hex(0, cpu.faultError)}` : r}`);
                                        }
                                        else if (cpu.cr2Lo >>> 0 !== VA_LO || cpu.cr2Hi !== hi) {
                                            problems.push(`${tag}: CR2=${hex(cpu.cr2Hi, cpu.cr2Lo)}`);
                                        }
                                        const now = refs.map((e) => t.read(e).join(':')).join(' ');
                                        if (now !== snapshot)
                                            problems.push(`${tag} cpl=${cpl} ${access}: a faulting walk set flags`);
                                    }
                                }
                            }
                            else {
                                // Not reserved and not changing the address or the page size:
                                // a supervisor read still translates to the same byte.
                                const r = cpu.read(hi, VA_LO, 4, 0);
                                otherChecked++;
                                if (r !== OK) {
                                    problems.push(`${tag}: expected a successful read, got ${r === PF ? `#PF ${hex(0, cpu.faultError)}` : r}`);
                                }
                                else if (cpu.valueLo >>> 0 !== MARKER) {
                                    problems.push(`${tag}: read ${hex(0, cpu.valueLo)}`);
                                }
                            }
                            t.write(ref, lo0, hi0);
                        }
                    }
                }
            }
            assert.deepEqual(problems.slice(0, 30), [], `${problems.length} problems`);
            assert.ok(rsvdChecked > 0 && otherChecked > 0);
        });
    }
    test('spot checks of the classification against the SDM tables', () => {
        // 32-bit 4 MiB PDE, M=40: bit 21 reserved, 20:13 address; M=36: 21:17 reserved.
        assert.equal(classify('32-bit', { level: 2, large: true }, 21, 40, false, true), 'reserved');
        assert.equal(classify('32-bit', { level: 2, large: true }, 20, 40, false, true), 'address');
        assert.equal(classify('32-bit', { level: 2, large: true }, 20, 52, false, true), 'address');
        assert.equal(classify('32-bit', { level: 2, large: true }, 17, 36, false, true), 'reserved');
        assert.equal(classify('32-bit', { level: 2, large: true }, 16, 36, false, true), 'address');
        assert.equal(classify('32-bit', { level: 2, large: true }, 13, 32, false, true), 'reserved');
        assert.equal(classify('32-bit', { level: 2, large: true }, 12, 32, false, true), 'other'); // PAT
        // PAE: 62:M reserved, bit 63 only without NXE.
        assert.equal(classify('pae', { level: 1, large: false }, 62, 52, true, false), 'reserved');
        assert.equal(classify('pae', { level: 1, large: false }, 63, 52, true, false), 'other');
        assert.equal(classify('pae', { level: 1, large: false }, 63, 52, false, false), 'reserved');
        // IA-32e: 62:52 ignored, 51:M reserved.
        assert.equal(classify('4-level', { level: 1, large: false }, 62, 40, true, false), 'other');
        assert.equal(classify('4-level', { level: 1, large: false }, 52, 40, true, false), 'other');
        assert.equal(classify('4-level', { level: 1, large: false }, 51, 40, true, false), 'reserved');
        assert.equal(classify('4-level', { level: 1, large: false }, 39, 40, true, false), 'address');
        assert.equal(classify('4-level', { level: 4, large: false }, 7, 52, true, false), 'reserved');
        assert.equal(classify('5-level', { level: 5, large: false }, 7, 52, true, false), 'reserved');
        assert.equal(classify('4-level', { level: 3, large: true }, 29, 52, true, false), 'reserved');
        assert.equal(classify('4-level', { level: 3, large: true }, 30, 52, true, false), 'address');
        assert.equal(classify('4-level', { level: 2, large: true }, 20, 52, true, false), 'reserved');
        assert.equal(classify('4-level', { level: 2, large: true }, 12, 52, true, false), 'other');
    });
});
describe('address bits just below MAXPHYADDR are address bits (the translation moves)', () => {
    // For every entry kind, set the highest address bit (PA bit M-1; for 32-bit
    // 4 KiB structures PA bit 31) in a present entry. Where guest RAM reaches
    // that far (up to 2^40), a copy of the next table, or a different marker in
    // the page, sits at the new address, and the walk must use it. Beyond RAM
    // the walk reads all-ones entries (scenario spec, semantics 3).
    for (const mode of ['32-bit', 'pae', '4-level', '5-level']) {
        test(`${mode} paging`, () => {
            const problems = [];
            for (const M of MAXPHYS) {
                for (const pse of mode === '32-bit' ? [false, true] : [false]) {
                    for (const leafLevel of leafLevelsOf(mode, pse)) {
                        const page = pageFor(mode, leafLevel);
                        for (let level = topLevel(mode); level >= leafLevel; level--) {
                            if (mode === 'pae' && level === 3)
                                continue;
                            const large = level === leafLevel && leafLevel > 1;
                            // Highest PA bit this entry can hold.
                            const topPaBit = mode === '32-bit' ? (large ? Math.min(M, 40) - 1 : 31) : M - 1;
                            if (mode === '32-bit' && large && topPaBit < 32)
                                continue; // M=32: no PSE-36 bits
                            const delta = 2 ** topPaBit;
                            const inRam = delta + 0x4000000 <= 2 ** 40;
                            const ramBytes = inRam ? delta + 0x4000000 : 0x1000000;
                            const m = makeMachine({ maxPhys: M, ramBytes });
                            setupMarkers(m);
                            const t = new Tables(m, mode);
                            const hi = vaHiFor(mode);
                            const refs = t.map(hi, VA_LO, page.base, { leafLevel });
                            const ref = refs.find((e) => e.level === level);
                            const [lo0, hi0] = t.read(ref);
                            // The entry's target moves by `delta`.
                            let lo1 = lo0;
                            let hi1 = hi0;
                            if (mode === '32-bit' && large)
                                lo1 = (lo0 | (1 << (13 + topPaBit - 32))) >>> 0;
                            else if (topPaBit >= 32)
                                hi1 = (hi0 | (1 << (topPaBit - 32))) >>> 0;
                            else
                                lo1 = (lo0 | (1 << topPaBit)) >>> 0;
                            t.write(ref, lo1, hi1);
                            const wide = mode !== '32-bit';
                            const isLeaf = level === leafLevel;
                            const tag = `M=${M} PSE=${+pse} leaf L${leafLevel} level ${level} PA bit ${topPaBit}`;
                            let copyGfn = -1;
                            if (inRam) {
                                if (isLeaf) {
                                    const gpa = page.gpa + delta;
                                    frame(m, Math.floor(gpa / 4096))[(gpa & 0xfff) / 4] = 0x5eed0000 | level;
                                }
                                else {
                                    // Copy the next table to its new address.
                                    const src = m.d.guest.frameForRead(nextTableGfn(t, ref, lo0, hi0));
                                    copyGfn = nextTableGfn(t, ref, lo1, hi1);
                                    frame(m, copyGfn).set(src);
                                }
                            }
                            enablePaging(m.cpu, mode, { cr3Lo: t.cr3, nxe: true, cr4: pse ? CR4_PSE : 0 });
                            const r = m.cpu.read(hi, VA_LO, 4, 0);
                            if (inRam) {
                                const want = isLeaf ? 0x5eed0000 | level : MARKER;
                                if (r !== OK || m.cpu.valueLo >>> 0 !== want) {
                                    problems.push(`${tag}: expected ${hex(0, want)}, got ${r === OK ? hex(0, m.cpu.valueLo) : `fault ${hex(0, m.cpu.faultError)}`}`);
                                }
                                if (!isLeaf) {
                                    const nextRef = refs.find((e) => e.level === level - 1);
                                    const copied = m.d.guest.frameForRead(copyGfn)[wide ? 2 * nextRef.index : nextRef.index];
                                    if ((copied & A) === 0)
                                        problems.push(`${tag}: A flag not set in the table at the new address`);
                                    if ((t.read(nextRef)[0] & A) !== 0)
                                        problems.push(`${tag}: A flag set in the table at the old address`);
                                }
                            }
                            else if (isLeaf) {
                                // Unbacked page: reads return all ones.
                                if (r !== OK || m.cpu.valueLo >>> 0 !== 0xffffffff) {
                                    problems.push(`${tag}: expected all ones from unbacked memory, got ${r === OK ? hex(0, m.cpu.valueLo) : `fault ${hex(0, m.cpu.faultError)}`}`);
                                }
                            }
                            else {
                                // The next entry reads as all ones. Expected: for IA-32e with
                                // M=52, NXE=1, an all-ones PTE is a valid 4 KiB page (bits
                                // 62:52 ignored, XD allowed) of unbacked memory; every other
                                // all-ones entry has a reserved bit set (PS in PML4E/PML5E,
                                // 29:13 or 20:13 in a large page, 51:M, PAE 62:M).
                                const validAllOnes = (mode === '4-level' || mode === '5-level') && M === 52 && level - 1 === 1;
                                if (validAllOnes) {
                                    if (r !== OK || m.cpu.valueLo >>> 0 !== 0xffffffff) {
                                        problems.push(`${tag}: expected all ones through an all-ones PTE, got ${r === OK ? hex(0, m.cpu.valueLo) : `fault ${hex(0, m.cpu.faultError)}`}`);
                                    }
                                }
                                else if (r !== PF || m.cpu.faultError !== (PF_P | PF_RSVD)) {
                                    problems.push(`${tag}: expected #PF RSVD (0x9), got ${r === PF ? hex(0, m.cpu.faultError) : r}`);
                                }
                            }
                        }
                    }
                }
            }
            assert.deepEqual(problems, []);
        });
    }
});
/** Frame number an entry points to (the given or current words). */
function nextTableGfn(t, ref, lo, hi) {
    const [l, h] = lo === undefined ? t.read(ref) : [lo, hi ?? 0];
    return t.wide ? (h & 0xfffff) * 0x100000 + (l >>> 12) : l >>> 12;
}
describe('32-bit paging with PSE-36 (SDM 4.3, table 4-4)', () => {
    for (const M of [36, 40, 46, 52]) {
        test(`MAXPHYADDR ${M}: a 4 MiB page above 4 GiB`, () => {
            const m36 = Math.min(M, 40);
            // Highest 4 MiB-aligned page below 2^min(M,40), with a few low bits too.
            const pa = 2 ** (m36 - 1) + 2 ** 32 + 0x1c00000;
            const m = makeMachine({ maxPhys: M, ramBytes: 2 ** m36 });
            const t = new Tables(m, '32-bit');
            t.map(0, 0x40000000, pa, { leafLevel: 2 });
            const gpa = pa + 0x123458;
            frame(m, Math.floor(gpa / 4096))[(gpa & 0xfff) / 4] = 0xabcdef01;
            enablePaging(m.cpu, '32-bit', { cr3Lo: t.cr3, pse: true });
            assert.equal(m.cpu.read(0, 0x40123458, 4, 0), OK);
            assert.equal(m.cpu.valueLo >>> 0, 0xabcdef01);
            assert.equal(m.cpu.write(0, 0x40123458, 4, 0, 0x11223344, 3), OK);
            assert.equal(m.d.guest.frameForRead(Math.floor(gpa / 4096))[(gpa & 0xfff) / 4], 0x11223344);
            // The PDE's D flag was set (it maps the page).
            assert.equal(m.d.guest.frameForRead(t.root)[0x40000000 >>> 22] & 0x60, 0x60);
        });
    }
    test('CR4.PSE=0: the PS bit of a PDE is ignored, the PDE references a page table', () => {
        const m = makeMachine();
        const t = new Tables(m, '32-bit');
        const refs = t.map(0, 0x40001000, 0x300000);
        const pde = refs[0];
        t.write(pde, (t.read(pde)[0] | 0x80) >>> 0);
        frame(m, 0x300)[2] = 0x77;
        enablePaging(m.cpu, '32-bit', { cr3Lo: t.cr3, pse: false });
        assert.equal(m.cpu.read(0, 0x40001008, 4, 0), OK);
        assert.equal(m.cpu.valueLo, 0x77);
    });
});
describe('PAE PDPTEs (SDM 4.4.1, table 4-8)', () => {
    /** PAE machine with PDPT at gfn 0x100, PDPTE 1 -> PD mapping VA 0x40000000 to 0x300000. */
    function paeMachine(M, nxe = false) {
        const m = makeMachine({ maxPhys: M });
        const t = new Tables(m, 'pae');
        t.map(0, 0x40000000, 0x300000);
        frame(m, 0x300)[0] = 0x1111;
        return { m, t, nxe };
    }
    for (const M of MAXPHYS) {
        for (const nxe of [false, true]) {
            test(`M=${M} NXE=${+nxe}: reserved bits 2:1, 8:5, 63:M of a present PDPTE -> #GP on MOV CR3 and on enabling paging`, () => {
                const problems = [];
                for (let bit = 1; bit < 64; bit++) {
                    const reserved = bit === 1 || bit === 2 || (bit >= 5 && bit <= 8) || bit >= M;
                    const address = bit >= 12 && bit < M;
                    if (!reserved && address)
                        continue;
                    // Enabling paging with such a PDPTE.
                    {
                        const { m, t } = paeMachine(M, nxe);
                        const [lo0, hi0] = t.read({ level: 3, gfn: t.root, index: 1 });
                        const lo = bit < 32 ? (lo0 | (1 << bit)) >>> 0 : lo0;
                        const hi = bit >= 32 ? (hi0 | (1 << (bit - 32))) >>> 0 : hi0;
                        put64(m, t.root, 1, lo, hi);
                        const cpu = m.cpu;
                        assert.equal(cpu.writeCr4(0, CR4_PAE), OK);
                        assert.equal(cpu.writeEfer(0, nxe ? EFER_NXE : 0), OK);
                        assert.equal(cpu.writeCr3(0, t.cr3), OK); // paging off: no PDPTE load
                        const r = cpu.writeCr0(0, (cpu.cr0 | CR0_PG) >>> 0);
                        if (reserved && (r !== GP || (cpu.cr0 & CR0_PG) !== 0))
                            problems.push(`bit ${bit}: enabling paging gave ${r}`);
                        if (!reserved && r !== OK)
                            problems.push(`bit ${bit} (not reserved): enabling paging gave ${r}`);
                    }
                    // MOV CR3 with paging on, to a second PDPT that has the bit.
                    {
                        const { m, t } = paeMachine(M, nxe);
                        enablePaging(m.cpu, 'pae', { cr3Lo: t.cr3, nxe });
                        const [lo0, hi0] = t.read({ level: 3, gfn: t.root, index: 1 });
                        const alt = 0x180;
                        put64(m, alt, 1, bit < 32 ? (lo0 | (1 << bit)) >>> 0 : lo0, bit >= 32 ? (hi0 | (1 << (bit - 32))) >>> 0 : hi0);
                        const r = m.cpu.writeCr3(0, alt * 4096 + 0x0);
                        if (reserved) {
                            if (r !== GP)
                                problems.push(`bit ${bit}: MOV CR3 gave ${r}, expected #GP`);
                            if (m.cpu.cr3Lo !== t.cr3)
                                problems.push(`bit ${bit}: CR3 changed despite #GP`);
                            // The old PDPTE registers are still in use.
                            if (m.cpu.read(0, 0x40000000, 4, 0) !== OK || m.cpu.valueLo !== 0x1111) {
                                problems.push(`bit ${bit}: old translation lost after a failed MOV CR3`);
                            }
                        }
                        else if (r !== OK)
                            problems.push(`bit ${bit} (not reserved): MOV CR3 gave ${r}`);
                    }
                }
                assert.deepEqual(problems, []);
            });
        }
    }
    test('a not-present PDPTE may hold anything (no #GP); an access through it is #PF with P=0', () => {
        const { m, t } = paeMachine(40);
        put64(m, t.root, 2, 0xfffffffe, 0xffffffff);
        enablePaging(m.cpu, 'pae', { cr3Lo: t.cr3, nxe: true });
        assert.equal(m.cpu.read(0, 0x80000000, 4, 0), PF);
        assert.equal(m.cpu.faultError, 0);
        assert.equal(m.cpu.fetch(0, 0x80000010, 3), PF);
        assert.equal(m.cpu.faultError, PF_U | PF_ID);
        assert.equal(m.cpu.cr2Lo >>> 0, 0x80000010);
        assert.equal(m.cpu.writeCr3(0, t.cr3), OK);
    });
    test('MOV to CR4 changing PGE, PSE or SMEP reloads the PDPTEs (and may #GP); other CR4 bits do not', () => {
        const { m, t } = paeMachine(40);
        enablePaging(m.cpu, 'pae', { cr3Lo: t.cr3 });
        const cpu = m.cpu;
        put64(m, t.root, 1, 0x1e7, 0); // present with reserved bits 2:1 and 8:5
        for (const bit of [CR4_PGE, CR4_PSE, CR4_SMEP]) {
            assert.equal(cpu.writeCr4(0, (cpu.cr4 | bit) >>> 0), GP, `setting CR4 bit ${hex(0, bit)}`);
            assert.equal(cpu.cr4 & bit, 0);
        }
        // SMAP is not in the list: no reload, so no #GP, and the old PDPTE still works.
        assert.equal(cpu.writeCr4(0, (cpu.cr4 | CR4_SMAP) >>> 0), OK);
        cpu.flushAll();
        assert.equal(cpu.read(0, 0x40000000, 4, 3), OK); // CPL 3: SMAP does not apply
        assert.equal(cpu.valueLo, 0x1111);
    });
    test('the PDPTE registers are loaded at MOV CR3: later changes to the PDPT need a reload', () => {
        const { m, t } = paeMachine(40);
        // A second PD mapping VA 0x40000000 to 0x301000.
        const pd2 = 0x190;
        const pt2 = 0x191;
        put64(m, pd2, 0, loOf(pt2 * 4096, P | RW | US), 0);
        put64(m, pt2, 0, loOf(0x301000, P | RW | US), 0);
        frame(m, 0x301)[0] = 0x2222;
        enablePaging(m.cpu, 'pae', { cr3Lo: t.cr3 });
        const cpu = m.cpu;
        const pdpt = m.d.guest.frameForRead(t.root);
        const pdpteBefore = [pdpt[2], pdpt[3]];
        assert.equal(cpu.read(0, 0x40000000, 4, 0), OK);
        assert.equal(cpu.valueLo, 0x1111);
        // PDPTEs never get accessed flags: the PDPT in memory is unchanged.
        assert.deepEqual([pdpt[2], pdpt[3]], pdpteBefore);
        put64(m, t.root, 1, loOf(pd2 * 4096, P), hiOf(pd2 * 4096));
        put64(m, t.root, 0, loOf(pd2 * 4096, P), 0); // a new PDPTE 0 as well
        cpu.flushAll();
        cpu.invlpg(0, 0x40000000);
        assert.equal(cpu.read(0, 0x40000000, 4, 0), OK);
        assert.equal(cpu.valueLo, 0x1111, 'stale PDPTE register still in use');
        assert.equal(cpu.read(0, 0x00000000, 4, 0), PF, 'PDPTE 0 was not present when loaded');
        assert.equal(cpu.faultError, 0);
        assert.equal(cpu.writeCr3(0, t.cr3), OK);
        assert.equal(cpu.read(0, 0x40000000, 4, 0), OK);
        assert.equal(cpu.valueLo, 0x2222, 'new PDPTE after MOV CR3');
        // Making a PDPTE not present in memory likewise has no effect until the reload.
        put64(m, t.root, 1, 0, 0);
        cpu.flushAll();
        assert.equal(cpu.read(0, 0x40000000, 4, 0), OK);
        assert.equal(cpu.writeCr3(0, t.cr3), OK);
        assert.equal(cpu.read(0, 0x40000000, 4, 0), PF);
        assert.equal(cpu.faultError, 0);
    });
    test('CR3 bits 31:5 locate the PDPT (32-byte aligned, anywhere in a frame); bits 4:0 are not address bits', () => {
        const m = makeMachine({ maxPhys: 40 });
        const t = new Tables(m, 'pae');
        t.map(0, 0x40000000, 0x300000);
        frame(m, 0x300)[0] = 0x1111;
        // Copy the PDPT to offset 0x60 of another frame; leave garbage at offset 0.
        const f = frame(m, 0x1a0);
        f.set(m.d.guest.frameForRead(t.root).subarray(0, 8), 0x60 / 4);
        f[0] = 0x1e7; // present PDPTE with reserved bits, not used
        enablePaging(m.cpu, 'pae', { cr3Lo: 0x1a0000 | 0x60 | 0x18 }); // PWT, PCD set
        assert.equal(m.cpu.read(0, 0x40000000, 4, 0), OK);
        assert.equal(m.cpu.valueLo, 0x1111);
    });
    test('PDPT at an unbacked address: all-ones PDPTEs have reserved bits -> #GP', () => {
        const m = makeMachine({ maxPhys: 40 });
        const cpu = m.cpu;
        assert.equal(cpu.writeCr4(0, CR4_PAE), OK);
        assert.equal(cpu.writeCr3(0, 0x40000000), OK); // 1 GiB: beyond the 16 MiB of RAM
        assert.equal(cpu.writeCr0(0, (cpu.cr0 | CR0_PG) >>> 0), GP);
        assert.equal(cpu.cr0 & CR0_PG, 0);
    });
});
describe('paging structures in unbacked memory read as all ones (scenario spec, semantics 3)', () => {
    for (const mode of ['4-level', '5-level']) {
        for (const M of [40, 52]) {
            for (const nxe of [false, true]) {
                test(`${mode} M=${M} NXE=${+nxe}: CR3 beyond RAM -> #PF RSVD (PS=1 in the top-level entry)`, () => {
                    const m = makeMachine({ maxPhys: M });
                    enablePaging(m.cpu, mode, { cr3Lo: 0x40000000, nxe });
                    for (const [access, cpl] of [
                        ['read', 0],
                        ['write', 3],
                        ['fetch', 0],
                    ]) {
                        assert.equal(doAccess(m.cpu, 0, 0x1000, access, cpl), PF);
                        assert.equal(m.cpu.faultError, rsvdError(mode, access, cpl, nxe, false));
                    }
                });
            }
        }
    }
    for (const M of [40, 52]) {
        for (const nxe of [false, true]) {
            test(`4-level M=${M} NXE=${+nxe}: a PDE pointing beyond RAM`, () => {
                const m = makeMachine({ maxPhys: M });
                const t = new Tables(m, '4-level');
                const refs = t.map(0, 0x40000000, 0x300000);
                const pde = refs[2];
                t.write(pde, loOf(0x80000000, P | RW | US), 0); // page table at 2 GiB: unbacked
                enablePaging(m.cpu, '4-level', { cr3Lo: t.cr3, nxe });
                const cpu = m.cpu;
                if (M === 52 && nxe) {
                    // The all-ones PTE is valid: P, R/W, U/S, XD, key 15, page at 2^52 - 4096 (unbacked).
                    assert.equal(cpu.read(0, 0x40000000, 4, 3), OK);
                    assert.equal(cpu.valueLo >>> 0, 0xffffffff);
                    assert.equal(cpu.write(0, 0x40000000, 4, 0, 5, 0), OK); // discarded
                    assert.equal(cpu.fetch(0, 0x40000000, 0), PF);
                    assert.equal(cpu.faultError, PF_P | PF_ID);
                }
                else {
                    // 51:40 set (M=40) or bit 63 without NXE: reserved.
                    assert.equal(cpu.read(0, 0x40000000, 4, 0), PF);
                    assert.equal(cpu.faultError, PF_P | PF_RSVD);
                }
                // A faulting or not, the in-RAM entries above got A only on success.
                const a = (t.read(refs[0])[0] & A) !== 0;
                assert.equal(a, M === 52 && nxe);
            });
        }
    }
    test('32-bit paging, CR3 beyond RAM: PSE=1 -> RSVD (bit 21 of a 4 MiB PDE); PSE=0 -> a page of all ones', () => {
        const m1 = makeMachine({ maxPhys: 40 });
        enablePaging(m1.cpu, '32-bit', { cr3Lo: 0x40000000, pse: true });
        assert.equal(m1.cpu.read(0, 0x1000, 4, 0), PF);
        assert.equal(m1.cpu.faultError, PF_P | PF_RSVD);
        const m2 = makeMachine({ maxPhys: 40 });
        enablePaging(m2.cpu, '32-bit', { cr3Lo: 0x40000000, pse: false });
        assert.equal(m2.cpu.read(0, 0x1000, 4, 3), OK);
        assert.equal(m2.cpu.valueLo >>> 0, 0xffffffff);
    });
});
//# sourceMappingURL=reserved.test.js.map