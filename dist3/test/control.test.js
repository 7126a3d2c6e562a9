/**
 * MOV to CR0/CR3/CR4 and WRMSR IA32_EFER checks (SDM vol. 2B "MOV—Move
 * to/from Control Registers", vol. 3A 2.5 control registers, 2.2.1 EFER,
 * 4.1.1-4.1.3 mode switching, 4.10.4 TLB invalidation, vol. 2A INVLPG and
 * INVPCID), and TLB semantics observed from outside: a CPU with the default
 * TLB, tables changed behind its back, and what reads return afterwards.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { A, CR0_CD, CR0_ET, CR0_NW, CR0_PE, CR0_PG, CR0_WP, CR4_LA57, CR4_PAE, CR4_PCIDE, CR4_PGE, CR4_PKE, CR4_SMAP, CR4_SMEP, CR4_VMXE, D, EFER_LMA, EFER_LME, EFER_NXE, EFER_SCE, enablePaging, frame, G, GP, makeMachine, OK, PF, PF_P, PF_PK, PF_U, PF_W, RW, Tables, US, } from './support/x86.js';
const cr0Of = (m) => m.cpu.cr0 >>> 0;
describe('MOV to CR0 (SDM vol. 2B MOV CR, vol. 3A 2.5)', () => {
    test('PG=1 with PE=0 -> #GP, CR0 unchanged', () => {
        const m = makeMachine();
        assert.equal(m.cpu.writeCr0(0, (CR0_PG | CR0_ET) >>> 0), GP);
        assert.equal(cr0Of(m), CR0_PE | CR0_ET);
    });
    test('NW=1 with CD=0 -> #GP; CD=1 NW=1 and CD=1 NW=0 are fine', () => {
        const m = makeMachine();
        assert.equal(m.cpu.writeCr0(0, CR0_PE | CR0_ET | CR0_NW), GP);
        assert.equal(cr0Of(m), CR0_PE | CR0_ET);
        assert.equal(m.cpu.writeCr0(0, (CR0_PE | CR0_ET | CR0_NW | CR0_CD) >>> 0), OK);
        assert.equal(m.cpu.writeCr0(0, (CR0_PE | CR0_ET | CR0_CD) >>> 0), OK);
        assert.equal(cr0Of(m), (CR0_PE | CR0_ET | CR0_CD) >>> 0);
    });
    test('bits 63:32 set -> #GP', () => {
        const m = makeMachine();
        for (let b = 0; b < 32; b++)
            assert.equal(m.cpu.writeCr0(1 << b, CR0_PE | CR0_ET), GP, `bit ${32 + b}`);
        assert.equal(cr0Of(m), CR0_PE | CR0_ET);
    });
    test('reserved low bits stay clear and do not fault; ET stays 1', () => {
        const m = makeMachine();
        // Defined: PE 0, MP 1, EM 2, TS 3, ET 4, NE 5, WP 16, AM 18, NW 29, CD 30, PG 31.
        const reserved = [6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28];
        for (const b of reserved) {
            assert.equal(m.cpu.writeCr0(0, ((1 << b) | CR0_PE) >>> 0), OK, `bit ${b}`);
            assert.equal(cr0Of(m), CR0_PE | CR0_ET, `bit ${b} must read back as 0`);
        }
    });
    test('PG with EFER.LME=1 and CR4.PAE=0 -> #GP (no IA-32e mode without PAE)', () => {
        const m = makeMachine();
        assert.equal(m.cpu.writeEfer(0, EFER_LME), OK);
        assert.equal(m.cpu.writeCr3(0, 0x100000), OK);
        assert.equal(m.cpu.writeCr0(0, (cr0Of(m) | CR0_PG) >>> 0), GP);
        assert.equal(cr0Of(m) & CR0_PG, 0);
        assert.equal(m.cpu.efer & EFER_LMA, 0);
    });
    test('enabling paging with LME=1 sets LMA; clearing PG (PCIDE=0) clears LMA', () => {
        const m = makeMachine();
        const t = new Tables(m, '4-level');
        enablePaging(m.cpu, '4-level', { cr3Lo: t.cr3 });
        assert.equal(m.cpu.efer & (EFER_LMA | EFER_LME), EFER_LMA | EFER_LME);
        assert.equal(m.cpu.writeCr0(0, cr0Of(m) & ~CR0_PG), OK);
        assert.equal(m.cpu.efer & (EFER_LMA | EFER_LME), EFER_LME);
    });
    test('clearing PG while CR4.PCIDE=1 -> #GP', () => {
        const m = makeMachine();
        const t = new Tables(m, '4-level');
        enablePaging(m.cpu, '4-level', { cr3Lo: t.cr3 });
        assert.equal(m.cpu.writeCr4(0, m.cpu.cr4 | CR4_PCIDE), OK);
        assert.equal(m.cpu.writeCr0(0, cr0Of(m) & ~CR0_PG), GP);
        assert.notEqual(cr0Of(m) & CR0_PG, 0);
        assert.equal(m.cpu.efer & EFER_LMA, EFER_LMA);
    });
    test('PAE paging: changing CD or NW reloads the PDPTEs (SDM 4.4.1), #GP if one is bad', () => {
        const m = makeMachine();
        const t = new Tables(m, 'pae');
        t.map(0, 0x40000000, 0x300000);
        enablePaging(m.cpu, 'pae', { cr3Lo: t.cr3 });
        frame(m, t.root)[2] = (frame(m, t.root)[2] | 0x6) >>> 0; // PDPTE 1: reserved bits 2:1
        assert.equal(m.cpu.writeCr0(0, (cr0Of(m) | CR0_CD) >>> 0), GP);
        assert.equal(cr0Of(m) & CR0_CD, 0);
        // WP is not in the list: no reload, no #GP.
        assert.equal(m.cpu.writeCr0(0, (cr0Of(m) | CR0_WP) >>> 0), OK);
    });
});
describe('MOV to CR4', () => {
    test('bits 63:32 set -> #GP', () => {
        const m = makeMachine();
        for (let b = 0; b < 32; b++)
            assert.equal(m.cpu.writeCr4(1 << b, 0), GP, `bit ${32 + b}`);
        assert.equal(m.cpu.cr4, 0);
    });
    test('bits of features the model lacks -> #GP (VMXE 13, SMXE 14, 15, 19, 23-31)', () => {
        const m = makeMachine();
        for (const b of [13, 14, 15, 19, 23, 24, 25, 26, 27, 28, 29, 30, 31]) {
            assert.equal(m.cpu.writeCr4(0, (1 << b) >>> 0), GP, `bit ${b}`);
        }
        assert.equal(m.cpu.writeCr4(0, CR4_VMXE), GP);
        assert.equal(m.cpu.cr4, 0);
    });
    test('supported bits are accepted with paging off', () => {
        const m = makeMachine();
        const supported = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 16, 18, 20, 21, 22];
        for (const b of supported) {
            assert.equal(m.cpu.writeCr4(0, (1 << b) >>> 0), OK, `bit ${b}`);
            assert.equal(m.cpu.cr4 >>> 0, (1 << b) >>> 0);
        }
    });
    test('clearing PAE while LMA=1 -> #GP', () => {
        const m = makeMachine();
        const t = new Tables(m, '4-level');
        enablePaging(m.cpu, '4-level', { cr3Lo: t.cr3 });
        assert.equal(m.cpu.writeCr4(0, m.cpu.cr4 & ~CR4_PAE), GP);
        assert.equal(m.cpu.cr4 & CR4_PAE, CR4_PAE);
    });
    test('changing LA57 while LMA=1 -> #GP, both ways', () => {
        const m4 = makeMachine();
        enablePaging(m4.cpu, '4-level', { cr3Lo: new Tables(m4, '4-level').cr3 });
        assert.equal(m4.cpu.writeCr4(0, m4.cpu.cr4 | CR4_LA57), GP);
        const m5 = makeMachine();
        enablePaging(m5.cpu, '5-level', { cr3Lo: new Tables(m5, '5-level').cr3 });
        assert.equal(m5.cpu.writeCr4(0, m5.cpu.cr4 & ~CR4_LA57), GP);
        assert.equal(m5.cpu.cr4 & CR4_LA57, CR4_LA57);
    });
    test('LA57 may change while paging is off (and PAE may be cleared with LME=1 but PG=0)', () => {
        const m = makeMachine();
        assert.equal(m.cpu.writeEfer(0, EFER_LME), OK);
        assert.equal(m.cpu.writeCr4(0, CR4_PAE | CR4_LA57), OK);
        assert.equal(m.cpu.writeCr4(0, CR4_PAE), OK);
        assert.equal(m.cpu.writeCr4(0, 0), OK);
    });
    test('setting PCIDE outside IA-32e mode -> #GP', () => {
        const m = makeMachine();
        assert.equal(m.cpu.writeCr4(0, CR4_PCIDE), GP); // paging off
        const p = makeMachine();
        const t = new Tables(p, 'pae');
        t.map(0, 0, 0x300000);
        enablePaging(p.cpu, 'pae', { cr3Lo: t.cr3 });
        assert.equal(p.cpu.writeCr4(0, p.cpu.cr4 | CR4_PCIDE), GP); // PAE paging
        assert.equal(p.cpu.cr4 & CR4_PCIDE, 0);
    });
    test('setting PCIDE with CR3[11:0] != 0 -> #GP; with CR3[11:0] = 0 it is fine', () => {
        const m = makeMachine();
        const t = new Tables(m, '4-level');
        enablePaging(m.cpu, '4-level', { cr3Lo: t.cr3 | 0x008 }); // PWT set in CR3
        assert.equal(m.cpu.writeCr4(0, m.cpu.cr4 | CR4_PCIDE), GP);
        assert.equal(m.cpu.writeCr3(0, t.cr3), OK);
        assert.equal(m.cpu.writeCr4(0, m.cpu.cr4 | CR4_PCIDE), OK);
    });
});
describe('MOV to CR3 in IA-32e mode', () => {
    for (const M of [32, 36, 40, 46, 52]) {
        test(`MAXPHYADDR ${M}: bits 62:M set -> #GP; bit 63 -> #GP unless PCIDE=1`, () => {
            const m = makeMachine({ maxPhys: M });
            const t = new Tables(m, '4-level');
            enablePaging(m.cpu, '4-level', { cr3Lo: t.cr3 });
            for (let b = M; b < 64; b++) {
                const hi = (1 << (b - 32)) >>> 0;
                assert.equal(m.cpu.writeCr3(hi, t.cr3), GP, `bit ${b}`);
                assert.equal(m.cpu.cr3Hi, 0);
            }
            // Address bits below M are accepted (they are not checked against RAM).
            if (M > 32)
                assert.equal(m.cpu.writeCr3((1 << (M - 33)) >>> 0, t.cr3), OK);
            assert.equal(m.cpu.writeCr3(0, t.cr3), OK);
            assert.equal(m.cpu.writeCr4(0, m.cpu.cr4 | CR4_PCIDE), OK);
            assert.equal(m.cpu.writeCr3(0x80000000, t.cr3 | 5), OK);
            assert.equal(m.cpu.cr3Hi, 0, 'bit 63 is not stored in CR3');
            assert.equal(m.cpu.cr3Lo, t.cr3 | 5);
            // With PCIDE=1 bit 63 is the no-flush bit, but bits 62:M stay reserved.
            assert.equal(m.cpu.writeCr3((0x80000000 | (1 << (M - 32))) >>> 0, t.cr3), GP);
        });
    }
});
describe('WRMSR IA32_EFER (SDM 2.2.1)', () => {
    test('reserved bits -> #GP', () => {
        const m = makeMachine();
        // Defined: SCE 0, LME 8, LMA 10, NXE 11 (the model has no SVM/LMSLE/FFXSR/TCE).
        for (const b of [1, 2, 3, 4, 5, 6, 7, 9, 12, 13, 14, 15, 16, 20, 31]) {
            assert.equal(m.cpu.writeEfer(0, (1 << b) >>> 0), GP, `bit ${b}`);
        }
        for (let b = 0; b < 32; b++)
            assert.equal(m.cpu.writeEfer(1 << b, 0), GP, `bit ${32 + b}`);
        assert.equal(m.cpu.efer, 0);
        assert.equal(m.cpu.writeEfer(0, EFER_SCE | EFER_NXE | EFER_LME), OK);
    });
    test('changing LME while paging is on -> #GP (both ways); NXE may change', () => {
        const m = makeMachine();
        const t = new Tables(m, '4-level');
        enablePaging(m.cpu, '4-level', { cr3Lo: t.cr3 });
        assert.equal(m.cpu.writeEfer(0, m.cpu.efer & ~EFER_LME), GP);
        assert.equal(m.cpu.writeEfer(0, (m.cpu.efer | EFER_NXE) >>> 0), OK);
        const p = makeMachine();
        const tp = new Tables(p, 'pae');
        tp.map(0, 0, 0x300000);
        enablePaging(p.cpu, 'pae', { cr3Lo: tp.cr3 });
        assert.equal(p.cpu.writeEfer(0, EFER_LME), GP);
        assert.equal(p.cpu.efer & EFER_LME, 0);
    });
    test('LMA cannot be set or cleared by WRMSR: it follows paging', () => {
        const m = makeMachine();
        const r = m.cpu.writeEfer(0, EFER_LMA);
        assert.ok(r === OK || r === GP);
        assert.equal(m.cpu.efer & EFER_LMA, 0);
        const t = new Tables(m, '4-level');
        enablePaging(m.cpu, '4-level', { cr3Lo: t.cr3 });
        const r2 = m.cpu.writeEfer(0, EFER_LME);
        assert.ok(r2 === OK || r2 === GP);
        assert.equal(m.cpu.efer & EFER_LMA, EFER_LMA);
    });
});
// ---------------------------------------------------------------------------
// TLB behaviour, observed.
const VA = 0x40000000;
const VA2 = 0x40001000;
const PAGE_A = 0x300000;
const PAGE_B = 0x301000;
const PAGE_C = 0x302000;
const VAL = { [PAGE_A]: 0xaaaa0001, [PAGE_B]: 0xbbbb0002, [PAGE_C]: 0xcccc0003 };
function rig(o = {}) {
    const m = makeMachine();
    const t = new Tables(m, '4-level');
    for (const pa of [PAGE_A, PAGE_B, PAGE_C])
        frame(m, pa / 4096)[0] = VAL[pa];
    let cr4 = 0;
    if (o.pge)
        cr4 |= CR4_PGE;
    if (o.smap)
        cr4 |= CR4_SMAP;
    enablePaging(m.cpu, '4-level', { cr3Lo: t.cr3, cr4, nxe: true });
    if (o.pcide)
        assert.equal(m.cpu.writeCr4(0, m.cpu.cr4 | CR4_PCIDE), OK);
    return {
        m,
        t,
        point: (va, pa, flags = RW | US) => t.map(0, va, pa, { leafFlags: flags }),
        rd: (va, cpl = 0, vaHi = 0) => {
            const r = m.cpu.read(vaHi, va, 4, cpl);
            if (r === OK)
                return m.cpu.valueLo >>> 0;
            return r === PF ? `PF:${m.cpu.faultError}` : 'GP';
        },
    };
}
const a = VAL[PAGE_A];
const b = VAL[PAGE_B];
const c = VAL[PAGE_C];
describe('TLB: stale translations until invalidation (SDM 4.10.4)', () => {
    test('INVLPG of the page drops its entry; INVLPG of another page does not', () => {
        const { point, rd, m } = rig();
        point(VA, PAGE_A);
        assert.equal(rd(VA), a);
        point(VA, PAGE_B);
        assert.equal(rd(VA), a, 'cached translation used');
        m.cpu.invlpg(0, VA2);
        assert.equal(rd(VA), a);
        m.cpu.invlpg(0, VA + 0x123);
        assert.equal(rd(VA), b);
    });
    test('MOV to CR3 (PCIDE=0) drops non-global entries', () => {
        const { point, rd, m, t } = rig();
        point(VA, PAGE_A);
        assert.equal(rd(VA), a);
        point(VA, PAGE_B);
        assert.equal(m.cpu.writeCr3(0, t.cr3), OK);
        assert.equal(rd(VA), b);
    });
    test('INVLPG of any address inside a 2 MiB page drops that page', () => {
        const { rd, m, t } = rig();
        const big = 0x40200000;
        frame(m, 0x400)[0] = 0x22220000;
        frame(m, 0x800)[0] = 0x44440000;
        t.map(0, big, 0x400000, { leafLevel: 2 });
        assert.equal(rd(big), 0x22220000);
        t.map(0, big, 0x800000, { leafLevel: 2 });
        assert.equal(rd(big), 0x22220000);
        m.cpu.invlpg(0, big + 0x1ff000);
        assert.equal(rd(big), 0x44440000);
    });
    test('global pages survive MOV CR3, not INVLPG, CR4.PGE changes or flush', () => {
        const { point, rd, m, t } = rig({ pge: true });
        point(VA, PAGE_A, RW | US | G);
        assert.equal(rd(VA), a);
        point(VA, PAGE_B, RW | US | G);
        assert.equal(m.cpu.writeCr3(0, t.cr3), OK);
        assert.equal(rd(VA), a, 'global entry survives MOV CR3');
        m.cpu.invlpg(0, VA);
        assert.equal(rd(VA), b, 'INVLPG drops a global entry');
        point(VA, PAGE_C, RW | US | G);
        assert.equal(m.cpu.writeCr4(0, m.cpu.cr4 & ~CR4_PGE), OK);
        assert.equal(rd(VA), c, 'clearing PGE flushes globals');
        // PGE=0: G is ignored, the entry is not global.
        point(VA, PAGE_A, RW | US | G);
        assert.equal(m.cpu.writeCr3(0, t.cr3), OK);
        assert.equal(rd(VA), a);
        point(VA, PAGE_B, RW | US | G);
        assert.equal(m.cpu.writeCr4(0, m.cpu.cr4 | CR4_PGE), OK);
        assert.equal(rd(VA), b, 'setting PGE flushes too');
        point(VA, PAGE_C, RW | US | G);
        m.cpu.flushAll();
        assert.equal(rd(VA), c, 'flush drops globals');
    });
    test('CR0.PG off and on flushes everything, globals included', () => {
        const { point, rd, m } = rig({ pge: true });
        point(VA, PAGE_A, RW | US | G);
        assert.equal(rd(VA), a);
        point(VA, PAGE_B, RW | US | G);
        assert.equal(m.cpu.writeCr0(0, cr0Of(m) & ~CR0_PG), OK);
        assert.equal(m.cpu.writeCr0(0, (cr0Of(m) | CR0_PG) >>> 0), OK);
        assert.equal(rd(VA), b);
    });
    test('CR4.SMEP 0 -> 1 flushes the current PCID', () => {
        const { point, rd, m } = rig();
        point(VA, PAGE_A);
        assert.equal(rd(VA), a);
        point(VA, PAGE_B);
        assert.equal(m.cpu.writeCr4(0, m.cpu.cr4 | CR4_SMEP), OK);
        assert.equal(rd(VA), b);
    });
    test('not-present translations are not cached', () => {
        const { point, rd } = rig();
        assert.equal(rd(VA), `PF:0`);
        point(VA, PAGE_A);
        assert.equal(rd(VA), a);
    });
});
describe('TLB: PCIDs (SDM 4.10.1, 4.10.4.1)', () => {
    test('MOV CR3 with bit 63 = 1 does not flush; with bit 63 = 0 it flushes only the new PCID', () => {
        const { point, rd, m, t } = rig({ pcide: true });
        assert.equal(m.cpu.writeCr3(0, t.cr3 | 1), OK);
        point(VA, PAGE_A);
        assert.equal(rd(VA), a); // cached for PCID 1
        point(VA, PAGE_B);
        assert.equal(m.cpu.writeCr3(0x80000000, t.cr3 | 1), OK);
        assert.equal(rd(VA), a, 'no-flush MOV CR3 keeps the entry');
        assert.equal(m.cpu.writeCr3(0, t.cr3 | 2), OK); // flushes PCID 2 only
        assert.equal(rd(VA), b, 'PCID 2 walks');
        point(VA, PAGE_C);
        assert.equal(m.cpu.writeCr3(0x80000000, t.cr3 | 1), OK);
        assert.equal(rd(VA), a, 'PCID 1 entries survive a switch to PCID 2 (with or without flush)');
        assert.equal(m.cpu.writeCr3(0x80000000, t.cr3 | 2), OK);
        assert.equal(rd(VA), b, 'PCID 2 entry kept');
        assert.equal(m.cpu.writeCr3(0, t.cr3 | 1), OK);
        assert.equal(rd(VA), c, 'MOV CR3 to PCID 1 without bit 63 flushes PCID 1');
    });
    test('INVLPG acts on the current PCID (and globals) only', () => {
        const { point, rd, m, t } = rig({ pcide: true });
        assert.equal(m.cpu.writeCr3(0, t.cr3 | 1), OK);
        point(VA, PAGE_A);
        assert.equal(rd(VA), a); // cached for PCID 1
        assert.equal(m.cpu.writeCr3(0, t.cr3 | 2), OK);
        point(VA, PAGE_B);
        m.cpu.invlpg(0, VA); // PCID 2
        assert.equal(rd(VA), b);
        assert.equal(m.cpu.writeCr3(0x80000000, t.cr3 | 1), OK);
        assert.equal(rd(VA), a, 'PCID 1 entry untouched by INVLPG under PCID 2');
        m.cpu.invlpg(0, VA);
        assert.equal(rd(VA), b);
    });
    test('CR4.PCIDE 1 -> 0 flushes everything, globals included', () => {
        const { point, rd, m, t } = rig({ pcide: true, pge: true });
        point(VA, PAGE_A, RW | US | G);
        point(VA2, PAGE_A);
        assert.equal(rd(VA), a);
        assert.equal(rd(VA2), a);
        point(VA, PAGE_B, RW | US | G);
        point(VA2, PAGE_B);
        assert.equal(m.cpu.writeCr3(0x80000000, t.cr3), OK);
        assert.equal(m.cpu.writeCr4(0, m.cpu.cr4 & ~CR4_PCIDE), OK);
        assert.equal(rd(VA), b);
        assert.equal(rd(VA2), b);
    });
});
describe('INVPCID (SDM vol. 2A)', () => {
    /** PCID 1 current; VA global, VA2 and VA3 not; all cached as A, then repointed to B. */
    function setup() {
        const r = rig({ pcide: true, pge: true });
        const { point, rd, m, t } = r;
        assert.equal(m.cpu.writeCr3(0, t.cr3 | 1), OK);
        point(VA, PAGE_A, RW | US | G);
        point(VA2, PAGE_A);
        point(VA2 + 0x1000, PAGE_A);
        for (const v of [VA, VA2, VA2 + 0x1000])
            assert.equal(rd(v), a);
        point(VA, PAGE_B, RW | US | G);
        point(VA2, PAGE_B);
        point(VA2 + 0x1000, PAGE_B);
        return r;
    }
    test('type 0: one address, one PCID, not globals', () => {
        const { rd, m } = setup();
        assert.equal(m.cpu.invpcid(0, 2, 0, VA2), OK); // other PCID: no effect here
        assert.equal(rd(VA2), a);
        assert.equal(m.cpu.invpcid(0, 1, 0, VA2), OK);
        assert.equal(rd(VA2), b);
        assert.equal(rd(VA2 + 0x1000), a);
        assert.equal(m.cpu.invpcid(0, 1, 0, VA), OK);
        assert.equal(rd(VA), a, 'global translation kept by type 0');
    });
    test('type 1: one PCID, not globals', () => {
        const { rd, m } = setup();
        assert.equal(m.cpu.invpcid(1, 3, 0, 0), OK);
        assert.equal(rd(VA2), a);
        assert.equal(m.cpu.invpcid(1, 1, 0, 0), OK);
        assert.equal(rd(VA2), b);
        assert.equal(rd(VA2 + 0x1000), b);
        assert.equal(rd(VA), a, 'global translation kept by type 1');
    });
    test('type 2: everything, globals included', () => {
        const { rd, m } = setup();
        assert.equal(m.cpu.invpcid(2, 0, 0, 0), OK);
        assert.equal(rd(VA), b);
        assert.equal(rd(VA2), b);
    });
    test('type 3: everything but globals', () => {
        const { rd, m } = setup();
        assert.equal(m.cpu.invpcid(3, 0, 0, 0), OK);
        assert.equal(rd(VA), a);
        assert.equal(rd(VA2), b);
        assert.equal(rd(VA2 + 0x1000), b);
    });
    test('#GP: type > 3, PCID > 0xfff, non-canonical type-0 address, PCIDE=0 with PCID != 0 for types 0/1', () => {
        const { m } = setup();
        assert.equal(m.cpu.invpcid(4, 0, 0, 0), GP);
        assert.equal(m.cpu.invpcid(1, 0x1000, 0, 0), GP);
        assert.equal(m.cpu.invpcid(0, 1, 0x00008000, 0), GP);
        const r = rig();
        assert.equal(r.m.cpu.invpcid(0, 1, 0, VA), GP);
        assert.equal(r.m.cpu.invpcid(1, 1, 0, 0), GP);
        assert.equal(r.m.cpu.invpcid(0, 0, 0, VA), OK);
        assert.equal(r.m.cpu.invpcid(2, 0, 0, 0), OK);
    });
});
describe('TLB: dirty flags and faults', () => {
    test('a write hitting a clean TLB entry walks again and sets D in memory', () => {
        const { point, rd, m, t } = rig();
        const refs = point(VA, PAGE_A);
        const pte = refs[refs.length - 1];
        assert.equal(rd(VA), a);
        assert.equal(t.read(pte)[0] & (A | D), A, 'read: A set, D clear');
        assert.equal(m.cpu.write(0, VA, 4, 0, 0x1234, 0), OK);
        assert.equal(t.read(pte)[0] & (A | D), A | D, 'write: D set in memory');
        assert.equal(m.d.guest.frameForRead(PAGE_A / 4096)[0], 0x1234);
    });
    test('scenario spec semantics 2: that walk uses the current entry', () => {
        const { point, rd, m } = rig();
        point(VA, PAGE_A);
        assert.equal(rd(VA), a);
        point(VA, PAGE_B); // clean, no invalidation
        assert.equal(m.cpu.write(0, VA, 4, 0, 0x5678, 0), OK);
        assert.equal(m.d.guest.frameForRead(PAGE_B / 4096)[0], 0x5678);
        assert.equal(m.d.guest.frameForRead(PAGE_A / 4096)[0], a);
    });
    test('a page fault invalidates the stale entry for the faulting address (R/W)', () => {
        const { point, rd, m } = rig();
        point(VA, PAGE_A, US); // read-only user page
        assert.equal(rd(VA, 3), a);
        point(VA, PAGE_B, US);
        assert.equal(m.cpu.write(0, VA, 4, 0, 1, 3), PF);
        assert.equal(m.cpu.faultError, PF_P | PF_W | PF_U);
        assert.equal(rd(VA, 3), b, 'the fault dropped the cached translation');
    });
    test('a page fault invalidates the stale entry for the faulting address (SMAP)', () => {
        const { point, rd, m } = rig({ smap: true });
        point(VA, PAGE_A);
        assert.equal(rd(VA, 3), a);
        point(VA, PAGE_B);
        assert.equal(rd(VA, 0), `PF:${PF_P}`);
        assert.equal(m.cpu.cr2Lo, VA);
        assert.equal(rd(VA, 3), b);
    });
});
describe('TLB: control state is applied on every hit (no invalidation needed)', () => {
    test('RFLAGS.AC with SMAP, PKRU, CR0.WP and CPL act on a cached translation', () => {
        const { point, rd, m } = rig({ smap: true });
        assert.equal(m.cpu.writeCr4(0, m.cpu.cr4 | CR4_PKE), OK);
        point(VA, PAGE_A, US); // user, read-only, key 0
        assert.equal(rd(VA, 3), a); // cached
        assert.equal(rd(VA, 0), `PF:${PF_P}`, 'SMAP, AC=0');
        assert.equal(rd(VA, 3), a);
        m.cpu.setAc(1);
        assert.equal(rd(VA, 0), a, 'SMAP, AC=1');
        m.cpu.writePkru(1); // AD for key 0
        assert.equal(rd(VA, 3), `PF:${PF_P | PF_U | PF_PK}`);
        assert.equal(rd(VA, 3), `PF:${PF_P | PF_U | PF_PK}`);
        m.cpu.writePkru(0);
        assert.equal(rd(VA, 3), a);
        // Supervisor write to a read-only user page with AC=1: WP decides.
        assert.equal(m.cpu.writeCr0(0, cr0Of(m) & ~CR0_WP), OK);
        assert.equal(m.cpu.write(0, VA, 4, 0, a, 0), OK);
        assert.equal(rd(VA, 3), a);
        assert.equal(m.cpu.writeCr0(0, (cr0Of(m) | CR0_WP) >>> 0), OK);
        assert.equal(m.cpu.write(0, VA, 4, 0, a, 0), PF);
        assert.equal(m.cpu.faultError, PF_P | PF_W);
    });
});
describe('canonical addresses (SDM 3.3.7.1)', () => {
    test('4-level: a non-canonical access is #GP, not #PF; INVLPG of it is a no-op', () => {
        const { rd, m } = rig();
        assert.equal(rd(0, 0, 0x00008000), 'GP');
        assert.equal(rd(0, 0, 0xffff7fff), 'GP');
        assert.equal(rd(0, 0, 0xffff8000), 'PF:0'); // canonical, unmapped
        assert.equal(m.cpu.invlpg(0x00008000, 0), OK);
    });
    test('5-level: bits 63:57 must equal bit 56', () => {
        const m = makeMachine();
        const t = new Tables(m, '5-level');
        enablePaging(m.cpu, '5-level', { cr3Lo: t.cr3 });
        assert.equal(m.cpu.read(0x01000000, 0, 4, 0), GP);
        assert.equal(m.cpu.read(0x00ff0000, 0, 4, 0), PF);
        assert.equal(m.cpu.read(0xff000000, 0, 4, 0), PF);
        assert.equal(m.cpu.read(0xfe000000, 0, 4, 0), GP);
    });
});
//# sourceMappingURL=control.test.js.map