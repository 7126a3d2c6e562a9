/**
 * Access rights and page-fault error codes, checked exhaustively against the
 * Intel SDM vol. 3A: 4.6.1 (determination of access rights), 4.6.2
 * (protection keys) and 4.7 (page-fault error code).
 *
 * For every paging mode and every page size the mode has, one set of tables
 * holds every combination of (U/S, R/W, XD) at every level that has those
 * bits: each level's table has one entry per combination and every entry of
 * a level points to the same next table, so a linear address picks one
 * combination per level through its indexes (a DAG instead of a tree: five
 * table frames cover 2^15 combinations in 5-level paging). Every such
 * address is then accessed under every combination of CR0.WP, EFER.NXE,
 * CR4.SMEP, CR4.SMAP, RFLAGS.AC, CR4.PKE and PKRU rights (AD, WD) for the
 * page's key (see CONTROLS), at CPL 0 and 3, for read, write and fetch
 * (5-level paging with 4 KiB and 2 MiB pages: a covering subset, see
 * isHuge). The expected
 * outcome comes from `expectedOutcome` below, written from the SDM text and
 * nothing else (it does not call src/arch/x86/access.ts or walker.ts).
 *
 * The CPU runs without a TLB here, so every access walks the tables, and the
 * test checks what each walk leaves in memory: A in every entry used and D
 * in the leaf for a write when the access succeeds, nothing at all when it
 * faults (scenario spec, semantics 1). CR2 must hold the faulting address.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { A, CR0_WP, CR4_LA57, CR4_PAE, CR4_PKE, CR4_PSE, CR4_SMAP, CR4_SMEP, D, EFER_NXE, enablePaging, frame, hex, hiOf, loOf, makeMachine, NO_TLB, OK, P, PF, PF_ID, PF_P, PF_PK, PF_RSVD, PF_U, PF_W, PS, pkHi, put32, put64, RW, Tables, topLevel, US, vaFrom, word, XD_HI, } from './support/x86.js';
const ACCESSES = ['read', 'write', 'fetch'];
/**
 * What the SDM says happens: 0 for success, otherwise the #PF error code.
 * `entries` are the paging-structure entries that control the translation
 * (the PAE PDPTE is not one of them: it has no R/W, U/S or XD bits).
 * All entries are present; `key` is the leaf's protection key.
 */
function expectedOutcome(mode, entries, key, c, cpl, access) {
    const ia32e = mode === '4-level' || mode === '5-level';
    const hasXdBit = mode !== '32-bit'; // 32-bit paging entries have no bit 63
    const supervisor = cpl < 3; // 4.6.1: accesses at CPL < 3 are supervisor-mode accesses
    // 4.7 error code bits that describe the access, not the cause.
    let describe = 0;
    if (access === 'write')
        describe |= PF_W;
    if (!supervisor)
        describe |= PF_U;
    // I/D: fetch, and either CR4.SMEP=1 or (CR4.PAE=1 and EFER.NXE=1).
    if (access === 'fetch' && (c.smep || (mode !== '32-bit' && c.nxe)))
        describe |= PF_ID;
    // 4.4.2 / 4.5: with NXE=0, bit 63 is reserved in PAE and IA-32e entries, so
    // the translation does not exist: P=1, RSVD=1.
    if (hasXdBit && !c.nxe && entries.some((e) => e.xd))
        return PF_P | PF_RSVD | describe;
    // 4.6.1: a user-mode address has U/S=1 in every entry; writable means R/W=1
    // in every entry; execute-disable means XD=1 in some entry (only with NXE).
    const userAddr = entries.every((e) => e.us);
    const writable = entries.every((e) => e.rw);
    const noExec = hasXdBit && c.nxe && entries.some((e) => e.xd);
    let allowed;
    if (supervisor) {
        if (access === 'fetch') {
            // Fetch from a user-mode address: forbidden with SMEP; XD forbids any fetch.
            allowed = !noExec && !(userAddr && c.smep);
        }
        else if (userAddr && c.smap && !c.ac) {
            // Explicit supervisor data access to a user-mode address with SMAP on and AC clear.
            allowed = false;
        }
        else if (access === 'read') {
            allowed = true;
        }
        else {
            // Supervisor write: anything with WP=0; with WP=1 only writable translations.
            allowed = !c.wp || writable;
        }
    }
    else if (access === 'fetch') {
        allowed = userAddr && !noExec;
    }
    else if (access === 'read') {
        allowed = userAddr;
    }
    else {
        allowed = userAddr && writable;
    }
    // 4.6.2 / 4.7: protection keys apply with IA-32e paging and CR4.PKE=1, to
    // data accesses to user-mode addresses, at any CPL. AD forbids every data
    // access; WD forbids user-mode writes, and supervisor-mode writes if CR0.WP=1.
    // The PK error bit is reported whenever this condition holds.
    let pkViolation = false;
    if (ia32e && c.pke && userAddr && access !== 'fetch') {
        const ad = ((c.pkru >>> (2 * key)) & 1) !== 0;
        const wd = ((c.pkru >>> (2 * key + 1)) & 1) !== 0;
        if (ad)
            pkViolation = true;
        else if (wd && access === 'write' && (!supervisor || c.wp))
            pkViolation = true;
    }
    if (allowed && !pkViolation)
        return 0;
    return PF_P | describe | (pkViolation ? PF_PK : 0);
}
const LAYOUTS = [
    { mode: '32-bit', leafLevel: 1, pse: false, label: '4 KiB pages, CR4.PSE=0' },
    { mode: '32-bit', leafLevel: 1, pse: true, label: '4 KiB pages, CR4.PSE=1' },
    { mode: '32-bit', leafLevel: 2, pse: true, label: '4 MiB pages' },
    { mode: 'pae', leafLevel: 1, pse: false, label: '4 KiB pages' },
    { mode: 'pae', leafLevel: 2, pse: false, label: '2 MiB pages' },
    { mode: '4-level', leafLevel: 1, pse: false, label: '4 KiB pages' },
    { mode: '4-level', leafLevel: 2, pse: false, label: '2 MiB pages' },
    { mode: '4-level', leafLevel: 3, pse: false, label: '1 GiB pages' },
    { mode: '5-level', leafLevel: 1, pse: false, label: '4 KiB pages' },
    { mode: '5-level', leafLevel: 2, pse: false, label: '2 MiB pages' },
    { mode: '5-level', leafLevel: 3, pse: false, label: '1 GiB pages' },
];
const TOP = { '32-bit': 2, pae: 3, '4-level': 4, '5-level': 5 };
/** Table frame for level l: gfn 0x100 + l. */
const tableGfn = (level) => 0x100 + level;
/** PAE: the PDPTE used (index 1: VA bits 31:30 = 01). */
const PAE_PDPTE_INDEX = 1;
const MARKER = 0xc0de5a17;
/** Where the leaf points and the in-page offset the test uses. */
function leafTarget(layout) {
    if (layout.leafLevel === 1)
        return { base: 0x200000, offset: 0x8 };
    if (layout.leafLevel === 3)
        return { base: 0, offset: 0x7f5008 }; // 1 GiB page at 0
    if (layout.mode === '32-bit')
        return { base: 0x800000, offset: 0x1f5008 }; // 4 MiB page
    return { base: 0x400000, offset: 0x1f5008 }; // 2 MiB page
}
/**
 * Protection key of the leaf for combination c: 8 distinct keys, with both
 * even and odd keys (and every residue mod 4) among the user-mode (odd c)
 * and the supervisor-mode (even c) combinations, so that sliced runs still
 * meet every right for user-mode pages. Upper levels get junk in bits 62:59.
 */
const LEAF_KEYS = [3, 6, 9, 13, 0, 10, 14, 5];
const leafKey = (c) => LEAF_KEYS[c];
const junkKey = (level, c) => (level * 5 + c * 3 + 2) & 15;
/**
 * PKRU value number r (0..3): every key k gets rights ((r + k) mod 4) as
 * (WD, AD), so over r = 0..3 each key sees every right combination while
 * neighbouring keys differ (a lookup of the wrong key would show).
 */
const pkruFor = (r) => {
    let v = 0;
    for (let k = 0; k < 16; k++)
        v |= ((r + k) & 3) << (2 * k);
    return v >>> 0;
};
const bitsOf = (c, hasXd) => ({
    us: (c & 1) !== 0,
    rw: (c & 2) !== 0,
    xd: hasXd && (c & 4) !== 0,
});
function buildTables(m, layout) {
    const { mode, leafLevel } = layout;
    const wide = mode !== '32-bit';
    const hasXd = wide;
    const perLevel = hasXd ? 8 : 4;
    const top = TOP[mode];
    const levels = [];
    for (let l = mode === 'pae' ? 2 : top; l >= leafLevel; l--)
        levels.push(l);
    const target = leafTarget(layout);
    // The marker the reads must return.
    const dataPa = target.base + target.offset;
    const df = m.d.guest.frameForWrite(Math.floor(dataPa / 4096));
    df[(dataPa & 0xfff) >>> 2] = MARKER;
    if (mode === 'pae') {
        // PDPTE: only P and the address (bits 2:1, 8:5 and 63:M are reserved).
        put64(m, tableGfn(3), PAE_PDPTE_INDEX, loOf(tableGfn(2) * 4096, P), 0);
    }
    const originals = new Map();
    for (const l of levels) {
        const leaf = l === leafLevel;
        const next = leaf ? target.base : tableGfn(l - 1) * 4096;
        const words = [];
        for (let c = 0; c < perLevel; c++) {
            const b = bitsOf(c, hasXd);
            let flags = P | (b.us ? US : 0) | (b.rw ? RW : 0);
            if (leaf && l > 1)
                flags |= PS;
            if (wide) {
                let hi = hiOf(next, b.xd ? XD_HI : 0);
                if (mode !== 'pae')
                    hi |= pkHi(leaf ? leafKey(c) : junkKey(l, c)); // bits 62:59
                const lo = loOf(next, flags);
                put64(m, tableGfn(l), c, lo, hi);
                words.push(lo >>> 0);
            }
            else {
                const lo = ((next & ~0xfff) | flags) >>> 0;
                put32(m, tableGfn(l), c, lo);
                words.push(lo);
            }
        }
        originals.set(l, words);
    }
    return { levels, perLevel, originals };
}
function cr3For(mode) {
    return (mode === 'pae' ? tableGfn(3) : tableGfn(TOP[mode])) * 4096;
}
/** Set the control state, checking that each architectural write succeeds. */
function applyControls(m, layout, c) {
    const cpu = m.cpu;
    let cr4 = 0;
    if (layout.mode === '32-bit')
        cr4 |= layout.pse ? CR4_PSE : 0;
    else
        cr4 |= CR4_PAE;
    if (layout.mode === '5-level')
        cr4 |= CR4_LA57;
    if (c.smep)
        cr4 |= CR4_SMEP;
    if (c.smap)
        cr4 |= CR4_SMAP;
    if (c.pke)
        cr4 |= CR4_PKE;
    assert.equal(cpu.writeCr4(0, cr4), OK, 'MOV CR4');
    assert.equal(cpu.writeCr0(0, ((cpu.cr0 & ~CR0_WP) | (c.wp ? CR0_WP : 0)) >>> 0), OK, 'MOV CR0');
    assert.equal(cpu.writeEfer(0, ((cpu.efer & ~EFER_NXE) | (c.nxe ? EFER_NXE : 0)) >>> 0), OK, 'WRMSR EFER');
    cpu.setAc(c.ac ? 1 : 0);
    cpu.writePkru(c.pkru);
}
/**
 * Every control state: the 64 combinations of WP, NXE, SMEP, SMAP, AC and
 * PKE; with PKE=1, four PKRU values (every key sees every (AD, WD) pair);
 * with PKE=0, one PKRU value that denies everything to every key, which the
 * CPU must ignore (SDM 4.6.2). 32 * 4 + 32 = 160 states.
 */
const CONTROLS = (() => {
    const out = [];
    for (let i = 0; i < 64; i++) {
        const pke = (i & 32) !== 0;
        const pkrus = pke ? [0, 1, 2, 3].map(pkruFor) : [0xffffffff];
        for (const pkru of pkrus) {
            out.push({
                wp: (i & 1) !== 0,
                nxe: (i & 2) !== 0,
                smep: (i & 4) !== 0,
                smap: (i & 8) !== 0,
                ac: (i & 16) !== 0,
                pke,
                pkru,
            });
        }
    }
    return out;
})();
const ctlText = (c) => `WP=${+c.wp} NXE=${+c.nxe} SMEP=${+c.smep} SMAP=${+c.smap} AC=${+c.ac} PKE=${+c.pke} PKRU=${hex(0, c.pkru)}`;
const entryText = (bits) => bits.map((b) => `${b.us ? 'U' : 'S'}${b.rw ? 'W' : 'R'}${b.xd ? 'X' : '-'}`).join(',');
function describeAccess(access, cpl, hi, lo, bits, key, c) {
    return `${access} cpl=${cpl} va=${hex(hi, lo)} entries=${entryText(bits)} key=${key} ${ctlText(c)}`;
}
/**
 * A small TLB for the TLB pass: big enough for the ~16 translations used per
 * control state, small enough that invalidations (which scan it) stay cheap.
 */
const SMALL_TLB = { small: { sets: 8, ways: 4 }, large: { sets: 4, ways: 4 }, huge: { sets: 1, ways: 8 } };
const CPLS = [0, 3];
/** Enumerate one layout. */
function runLayout(layout, opts) {
    const m = makeMachine({ tlb: opts.tlb ? SMALL_TLB : NO_TLB });
    const { mode } = layout;
    const wide = mode !== '32-bit';
    const hasXd = wide;
    const { levels, perLevel, originals } = buildTables(m, layout);
    const target = leafTarget(layout);
    enablePaging(m.cpu, mode, { cr3Lo: cr3For(mode), pse: layout.pse });
    const cpu = m.cpu;
    const nLevels = levels.length;
    const total = perLevel ** nLevels;
    const frames = levels.map((l) => m.d.guest.frameForWrite(tableGfn(l)));
    const origs = levels.map((l) => originals.get(l));
    const stride = wide ? 2 : 1;
    const origFlat = Uint32Array.from(origs.flat());
    // Addresses and per-level picks per combination, in flat arrays (a
    // combination's entry bits are rebuilt from shared objects when used).
    const shared = Array.from({ length: perLevel }, (_, c) => bitsOf(c, hasXd));
    const vaHi = new Uint32Array(total);
    const vaLo = new Uint32Array(total);
    const picks = new Uint8Array(total * nLevels);
    const byResidue = [[], [], [], [], [], [], [], []];
    for (let n = 0; n < total; n++) {
        const idx = {};
        let rest = n;
        let sum = 0;
        for (let i = nLevels - 1; i >= 0; i--) {
            const c = rest % perLevel;
            rest = Math.floor(rest / perLevel);
            picks[n * nLevels + i] = c;
            idx[levels[i]] = c;
            sum += c;
        }
        if (mode === 'pae')
            idx[3] = PAE_PDPTE_INDEX;
        const [hi, lo] = vaFrom(mode, idx, target.offset);
        vaHi[n] = hi;
        vaLo[n] = lo;
        byResidue[sum % 8].push(n);
    }
    const everything = Array.from({ length: total }, (_, n) => n);
    const pick = new Array(nLevels).fill(0);
    const bits = new Array(nLevels).fill(shared[0]);
    const res = { checked: 0, combos: total, mismatches: [], mismatchCount: 0 };
    const fail = (msg) => {
        res.mismatchCount++;
        if (res.mismatches.length < 25)
            res.mismatches.push(msg);
    };
    const outcomeText = (r) => r === PF ? `#PF ${hex(0, cpu.faultError)}` : r === OK ? 'success' : `result ${r}`;
    const restore = () => {
        for (let i = 0; i < nLevels; i++) {
            const f = frames[i];
            const o = origs[i];
            for (let c = 0; c < perLevel; c++)
                f[c * stride] = o[c];
        }
    };
    const sel = opts.select;
    for (let s = 0; s < CONTROLS.length; s++) {
        const c = CONTROLS[s];
        applyControls(m, layout, c);
        if (opts.tlb) {
            // Start each control state from an empty TLB and clean A/D flags, so
            // that nothing cached under other controls (e.g. NXE) is reused.
            restore();
            cpu.flushAll();
        }
        const chosen = sel === 'digits' ? byResidue[s % 8] : everything;
        for (const n of chosen) {
            if (typeof sel === 'number' && (n + s) % sel !== 0)
                continue;
            for (let i = 0; i < nLevels; i++) {
                const c = picks[n * nLevels + i];
                pick[i] = c;
                bits[i] = shared[c];
            }
            const key = leafKey(pick[nLevels - 1]);
            const hi = vaHi[n];
            const lo = vaLo[n];
            for (const cpl of opts.cpls ?? CPLS) {
                for (const access of ACCESSES) {
                    const want = expectedOutcome(mode, bits, key, c, cpl, access);
                    cpu.cr2Hi = 0xdead;
                    cpu.cr2Lo = 0xbeef;
                    let r;
                    if (access === 'read')
                        r = cpu.read(hi, lo, 4, cpl);
                    else if (access === 'write')
                        r = cpu.write(hi, lo, 4, 0, MARKER, cpl);
                    else
                        r = cpu.fetch(hi, lo, cpl);
                    res.checked++;
                    if (want === 0) {
                        if (r !== OK)
                            fail(`${describeAccess(access, cpl, hi, lo, bits, key, c)}: expected success, got ${outcomeText(r)}`);
                        else if (access === 'read' && cpu.valueLo >>> 0 !== MARKER)
                            fail(`${describeAccess(access, cpl, hi, lo, bits, key, c)}: read ${hex(0, cpu.valueLo)} instead of ${hex(0, MARKER)}`);
                        else if (access === 'fetch' && cpu.valueLo !== (MARKER & 0xff))
                            fail(`${describeAccess(access, cpl, hi, lo, bits, key, c)}: fetched ${hex(0, cpu.valueLo)} instead of ${hex(0, MARKER & 0xff)}`);
                    }
                    else if (r !== PF || cpu.faultError !== want) {
                        fail(`${describeAccess(access, cpl, hi, lo, bits, key, c)}: expected #PF ${hex(0, want)}, got ${outcomeText(r)}`);
                    }
                    else if (cpu.cr2Lo >>> 0 !== lo || cpu.cr2Hi >>> 0 !== hi) {
                        fail(`${describeAccess(access, cpl, hi, lo, bits, key, c)}: CR2=${hex(cpu.cr2Hi, cpu.cr2Lo)}, expected ${hex(hi, lo)}`);
                    }
                    if (opts.tlb) {
                        // A write that succeeds leaves the leaf dirty in memory, even when
                        // a clean TLB entry (from an earlier read) was hit.
                        if (want === 0 && access === 'write') {
                            const leafWord = frames[nLevels - 1][pick[nLevels - 1] * stride];
                            if ((leafWord & D) === 0)
                                fail(`${describeAccess(access, cpl, hi, lo, bits, key, c)}: leaf D flag not set in memory`);
                        }
                        continue;
                    }
                    // Without a TLB every access walks: A in every entry used and D in
                    // the leaf for a write on success, nothing on a fault. Restore after.
                    for (let i = 0; i < nLevels; i++) {
                        const f = frames[i];
                        const w = pick[i] * stride;
                        const orig = origFlat[i * perLevel + pick[i]];
                        const now = f[w];
                        let exp = orig;
                        if (want === 0) {
                            exp |= A;
                            if (i === nLevels - 1 && access === 'write')
                                exp |= D;
                        }
                        if (now !== exp >>> 0) {
                            fail(`${describeAccess(access, cpl, hi, lo, bits, key, c)}: level ${levels[i]} entry low word ${hex(0, now)}, expected ${hex(0, exp >>> 0)}`);
                        }
                        f[w] = orig;
                    }
                }
            }
        }
    }
    if (!opts.tlb) {
        // No walk may have written anywhere else in the tables.
        for (let i = 0; i < nLevels; i++) {
            const f = frames[i];
            for (let w = 0; w < 1024; w++) {
                const exp = w % stride === 0 && w / stride < perLevel ? origs[i][w / stride] : undefined;
                if (exp !== undefined ? f[w] !== exp : false)
                    fail(`level ${levels[i]} word ${w} changed to ${hex(0, f[w])}`);
            }
        }
    }
    if (mode === 'pae') {
        // The PDPT in memory is only read (into the PDPTE registers), never written.
        const w = word(m, tableGfn(3), 2 * PAE_PDPTE_INDEX);
        if (w !== loOf(tableGfn(2) * 4096, P))
            fail(`PAE PDPTE in memory changed to ${hex(0, w)}`);
    }
    return res;
}
/**
 * 5-level paging with 4 KiB or 2 MiB pages has 8^5 or 8^4 entry combinations:
 * crossed with all 160 control states, 2 CPLs and 3 access kinds that is 31M
 * (resp. 4M) walks, too slow here. These two use the 'digits' selection:
 * 1/8 of the pairs, still covering every combination of all levels but one
 * under every control state.
 */
const isHuge = (l) => l.mode === '5-level' && l.leafLevel <= 2;
describe('access rights (SDM 4.6) and #PF error codes (SDM 4.7), exhaustive, every access walks', () => {
    for (const layout of LAYOUTS) {
        const sliced = isHuge(layout);
        test(`${layout.mode} paging, ${layout.label}${sliced ? ' (every combination of all levels but one)' : ''}`, (t) => {
            const r = runLayout(layout, { tlb: false, select: sliced ? 'digits' : 'all' });
            t.diagnostic(`${r.combos} entry combinations x ${CONTROLS.length} control states x 2 CPLs x 3 accesses${sliced ? ' / 8' : ''} = ${r.checked} accesses`);
            assert.deepEqual(r.mismatches, [], `${r.mismatchCount} of ${r.checked} accesses disagree with the SDM`);
            assert.equal(r.checked, (r.combos * CONTROLS.length * 6) / (sliced ? 8 : 1));
        });
    }
});
describe('the same rights through TLB hits (rights re-checked against current controls)', () => {
    for (const layout of LAYOUTS) {
        test(`${layout.mode} paging, ${layout.label} (sampled)`, (t) => {
            // Up to about 16 entry combinations per control state.
            const perLevel = layout.mode === '32-bit' ? 4 : 8;
            const levels = (layout.mode === 'pae' ? 2 : TOP[layout.mode]) - layout.leafLevel + 1;
            const k = Math.max(1, Math.floor(perLevel ** levels / 16));
            const r = runLayout(layout, { tlb: true, select: k });
            t.diagnostic(`${r.checked} accesses`);
            assert.deepEqual(r.mismatches, [], `${r.mismatchCount} of ${r.checked} accesses disagree with the SDM`);
        });
    }
});
test('CPL 1 and 2 are supervisor-mode accesses like CPL 0 (SDM 4.6.1): 4-level paging, 2 MiB pages', () => {
    const layout = LAYOUTS.find((l) => l.mode === '4-level' && l.leafLevel === 2);
    const r = runLayout(layout, { tlb: false, select: 'digits', cpls: [1, 2] });
    assert.deepEqual(r.mismatches, [], `${r.mismatchCount} of ${r.checked} accesses disagree with the SDM`);
    assert.equal(r.checked, (r.combos * CONTROLS.length * 6) / 8);
});
describe('protection keys: every key, every right (SDM 4.6.2)', () => {
    for (const mode of ['4-level', '5-level']) {
        test(`${mode} paging: the key comes from the leaf entry, rights from PKRU[2k+1:2k]`, () => {
            const m = makeMachine({ tlb: NO_TLB });
            const t = new Tables(m, mode);
            // Page k (k = 0..15) at VA 0x40000000 + k * 4 KiB, user-mode and writable, key k.
            // Upper-level entries carry other values in bits 62:59 (ignored there).
            const vaOf = (k) => 0x40000000 + k * 0x1000;
            for (let k = 0; k < 16; k++) {
                const refs = t.map(0, vaOf(k), 0x300000 + k * 0x1000, { leafHi: pkHi(k) });
                for (const e of refs.slice(0, -1)) {
                    const [lo, hi] = t.read(e);
                    t.write(e, lo, (hi & ~pkHi(15)) | pkHi(15 - k));
                }
                frame(m, 0x300 + k)[0] = 0x1000 + k;
            }
            enablePaging(m.cpu, mode, { cr3Lo: t.cr3, cr4: CR4_PKE });
            const cpu = m.cpu;
            const problems = [];
            for (let k = 0; k < 16; k++) {
                for (let rights = 0; rights < 4; rights++) {
                    for (const other of [0, 0xffffffff]) {
                        // Key k gets `rights`; every other key gets all or nothing.
                        const pkru = ((other & ~(3 << (2 * k))) | (rights << (2 * k))) >>> 0;
                        for (const wp of [false, true]) {
                            const c = { wp, nxe: true, smep: false, smap: false, ac: false, pke: true, pkru };
                            applyLong(cpu, mode, c);
                            for (const cpl of [0, 3]) {
                                for (const access of ACCESSES) {
                                    const want = expectedOutcome(mode, [{ us: true, rw: true, xd: false }], k, c, cpl, access);
                                    const r = access === 'read'
                                        ? cpu.read(0, vaOf(k), 4, cpl)
                                        : access === 'write'
                                            ? cpu.write(0, vaOf(k), 4, 0, 0x1000 + k, cpl)
                                            : cpu.fetch(0, vaOf(k), cpl);
                                    const got = r === OK ? 0 : r === PF ? cpu.faultError : -r;
                                    if (got !== want) {
                                        problems.push(`key ${k} ${ctlText(c)} cpl=${cpl} ${access}: expected ${hex(0, want)}, got ${hex(0, got)}`);
                                    }
                                }
                            }
                        }
                    }
                }
            }
            assert.deepEqual(problems, []);
        });
    }
    test('PKRU has no effect outside IA-32e paging even with CR4.PKE=1 (PAE)', () => {
        const m = makeMachine({ tlb: NO_TLB });
        const t = new Tables(m, 'pae');
        t.map(0, 0x40000000, 0x300000);
        enablePaging(m.cpu, 'pae', { cr3Lo: t.cr3, cr4: CR4_PKE });
        m.cpu.writePkru(0xffffffff);
        assert.equal(m.cpu.read(0, 0x40000000, 4, 3), OK);
        assert.equal(m.cpu.write(0, 0x40000000, 4, 0, 1, 3), OK);
        assert.equal(m.cpu.write(0, 0x40000000, 4, 0, 1, 0), OK);
    });
});
function applyLong(cpu, mode, c) {
    let cr4 = CR4_PAE | (mode === '5-level' ? CR4_LA57 : 0);
    if (c.smep)
        cr4 |= CR4_SMEP;
    if (c.smap)
        cr4 |= CR4_SMAP;
    if (c.pke)
        cr4 |= CR4_PKE;
    assert.equal(cpu.writeCr4(0, cr4), OK);
    assert.equal(cpu.writeCr0(0, ((cpu.cr0 & ~CR0_WP) | (c.wp ? CR0_WP : 0)) >>> 0), OK);
    assert.equal(cpu.writeEfer(0, ((cpu.efer & ~EFER_NXE) | (c.nxe ? EFER_NXE : 0)) >>> 0), OK);
    cpu.setAc(c.ac ? 1 : 0);
    cpu.writePkru(c.pkru);
}
describe('not-present entries (SDM 4.7: P=0), at every level', () => {
    const cases = [
        { mode: '32-bit', leafLevel: 1 },
        { mode: '32-bit', leafLevel: 2, pse: true },
        { mode: 'pae', leafLevel: 1 },
        { mode: 'pae', leafLevel: 2 },
        { mode: '4-level', leafLevel: 1 },
        { mode: '4-level', leafLevel: 2 },
        { mode: '4-level', leafLevel: 3 },
        { mode: '5-level', leafLevel: 1 },
        { mode: '5-level', leafLevel: 3 },
    ];
    for (const cs of cases) {
        test(`${cs.mode} paging, leaf at level ${cs.leafLevel}`, () => {
            const problems = [];
            const wide = cs.mode !== '32-bit';
            const top = topLevel(cs.mode);
            for (let level = top; level >= cs.leafLevel; level--) {
                for (const nxe of [false, true]) {
                    for (const smep of [false, true]) {
                        const m = makeMachine();
                        const t = new Tables(m, cs.mode);
                        // A canonical address with a high half in IA-32e modes.
                        const hi = cs.mode === '4-level' ? 0x00007f12 : cs.mode === '5-level' ? 0x00ab7f12 : 0;
                        const lo = 0x89a3c5d8;
                        const pageBase = cs.leafLevel === 1 ? 0x300000 : cs.leafLevel === 2 ? 0xc00000 : 0;
                        const refs = t.map(hi, lo, pageBase, { leafLevel: cs.leafLevel });
                        const target = refs.find((e) => e.level === level);
                        // Not present, every other bit set: reserved bits are not checked
                        // in an entry whose P flag is 0 (SDM 4.7, RSVD flag).
                        t.write(target, 0xfffffffe, 0xffffffff);
                        const snapshot = refs.map((e) => t.read(e).join(','));
                        let cr4 = smep ? CR4_SMEP : 0;
                        if (cs.pse)
                            cr4 |= CR4_PSE;
                        enablePaging(m.cpu, cs.mode, { cr3Lo: t.cr3, nxe, cr4 });
                        for (const cpl of [0, 3]) {
                            for (const access of ACCESSES) {
                                m.cpu.cr2Hi = 0;
                                m.cpu.cr2Lo = 0;
                                const r = access === 'read'
                                    ? m.cpu.read(hi, lo, 4, cpl)
                                    : access === 'write'
                                        ? m.cpu.write(hi, lo, 4, 0, 7, cpl)
                                        : m.cpu.fetch(hi, lo, cpl);
                                // P=0, W/R = write, U/S = CPL 3, I/D = fetch with SMEP or (PAE and NXE).
                                let want = 0;
                                if (access === 'write')
                                    want |= PF_W;
                                if (cpl === 3)
                                    want |= PF_U;
                                if (access === 'fetch' && (smep || (cs.mode !== '32-bit' && nxe)))
                                    want |= PF_ID;
                                const tag = `level ${level} NXE=${+nxe} SMEP=${+smep} cpl=${cpl} ${access}`;
                                if (r !== PF || m.cpu.faultError !== want) {
                                    problems.push(`${tag}: expected #PF ${hex(0, want)}, got ${r === PF ? hex(0, m.cpu.faultError) : r}`);
                                }
                                else if (m.cpu.cr2Lo >>> 0 !== lo || m.cpu.cr2Hi >>> 0 !== (wide && cs.mode !== 'pae' ? hi : 0)) {
                                    problems.push(`${tag}: CR2=${hex(m.cpu.cr2Hi, m.cpu.cr2Lo)}`);
                                }
                                const now = refs.map((e) => t.read(e).join(','));
                                if (now.join(' ') !== snapshot.join(' '))
                                    problems.push(`${tag}: a faulting walk changed entries`);
                            }
                        }
                    }
                }
            }
            assert.deepEqual(problems, []);
        });
    }
});
//# sourceMappingURL=permissions.test.js.map