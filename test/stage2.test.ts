/**
 * The walker's stage-2 formats and its two-stage reader, on hand-built
 * tables: Intel EPT (SDM vol. 3C, 29.3.2 entry formats, 29.3.3.1
 * misconfigurations, 29.3.3.2 violations, 28.2.1 table 28-7 exit
 * qualification) and AMD nested paging (APM vol. 2, 15.25.5-15.25.6), with
 * 4 KiB, 2 MiB and 1 GiB pages, 4- and 5-level EPT, and a 4-level guest
 * walked through EPT and NPT (every guest table reference translated).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  EPTQ_EXECUTABLE,
  EPTQ_FETCH,
  EPTQ_FINAL,
  EPTQ_LINEAR_VALID,
  EPTQ_READABLE,
  EPTQ_USER_EXECUTABLE,
  EPTQ_WRITABLE,
  EPTQ_WRITE,
  PERM_D,
  PERM_U,
  PERM_W,
} from '../src/arch/x86/access.js';
import {
  FETCH,
  PF_P,
  PF_RSVD,
  PF_U,
  PF_W,
  PTE_A,
  PTE_D,
  PTE_P,
  PTE_RW,
  PTE_US,
  READ,
  WRITE,
} from '../src/arch/x86/bits.js';
import { entryHi, entryLo } from '../src/arch/x86/entry.js';
import {
  EPT_A,
  EPT_D,
  EPT_MEMTYPE_SHIFT,
  EPT_MT_WB,
  EPT_PS,
  EPT_R,
  EPT_W,
  EPT_X,
  EPT_XU,
  eptFormat,
  formatFor,
  MODE_LONG4,
  nptFormat,
  type WalkFormat,
} from '../src/arch/x86/modes.js';
import { DEFAULT_WALK_CACHES, type UpperCaches, WalkCaches } from '../src/arch/x86/psc.js';
import {
  type PhysicalSpace,
  S2_MISCONFIG,
  S2_NONE,
  S2_VIOLATION,
  type Stage2,
  WALK_NOT_PRESENT,
  WALK_OK,
  WALK_RSVD,
  WALK_STAGE2,
  Walker,
  WalkResult,
} from '../src/arch/x86/walker.js';
import { frameAt } from '../src/machine/memory.js';
import { makeMachine } from './support/x86.js';

/** Sparse memory of 4 KiB frames; an absent frame reads as zeros. */
class Mem implements PhysicalSpace {
  readonly frames = new Map<number, Uint32Array>();
  private readonly zero = new Uint32Array(1024);
  frameForRead(pfn: number): Uint32Array {
    return this.frames.get(pfn) ?? this.zero;
  }
  locate(pfn: number): Uint32Array {
    return frameAt(this.frameForRead(pfn));
  }
  frame(pfn: number): Uint32Array {
    let f = this.frames.get(pfn);
    if (f === undefined) {
      f = new Uint32Array(1024);
      this.frames.set(pfn, f);
    }
    return f;
  }
  set(pfn: number, index: number, lo: number, hi: number): void {
    const f = this.frame(pfn);
    f[2 * index] = lo >>> 0;
    f[2 * index + 1] = hi >>> 0;
  }
  lo(pfn: number, index: number): number {
    return this.frameForRead(pfn)[2 * index] as number;
  }
  /** Point entry `index` of table `pfn` at frame `target` with low flags `flags` (high flags `hiFlags`). */
  entry(pfn: number, index: number, target: number, flags: number, hiFlags = 0): void {
    this.set(pfn, index, entryLo(target, flags), entryHi(target) | hiFlags);
  }
}

const RWX = EPT_R | EPT_W | EPT_X;
const WB = EPT_MT_WB << EPT_MEMTYPE_SHIFT;
const M = 46; // MAXPHYADDR of these tests

/** Walk guest-physical `gpa` (a number below 2^53) through `fmt` rooted at `root`. */
function walkGpa(mem: Mem, fmt: WalkFormat, root: number, gpa: number, res = new WalkResult()): WalkResult {
  new Walker().walk(mem, fmt, root, null, Math.floor(gpa / 2 ** 32), gpa >>> 0, res);
  return res;
}

/**
 * EPT tables rooted at 10: PML4 10 -> PDPT 11 -> PD 12 -> PT 13, with
 *  - gpa 0x5000 (gfn 5): a 4 KiB page at mfn 0x805 (PT 13[5]),
 *  - gpa 0x400000 (PD 12[2]): a 2 MiB page at mfn 0x1000 (machine 0x1000000),
 *  - gpa 0x80000000 (PDPT 11[2]): a 1 GiB page at machine 0x40000000 (mfn 0x40000).
 */
function eptTables(mem: Mem, root = 10, top = 4): void {
  mem.entry(root, 0, 11, RWX);
  mem.entry(11, 0, 12, RWX);
  mem.entry(12, 0, 13, RWX);
  mem.entry(13, 5, 0x805, RWX | WB);
  mem.entry(12, 2, 0x1000, RWX | WB | EPT_PS);
  mem.entry(11, 2, 0x40000, RWX | WB | EPT_PS);
  if (top === 5) {
    // A PML5 at 9 above PML4 10 (gpa bits 56:48 = 0).
    mem.entry(9, 0, root, RWX);
  }
}

describe('EPT entries (SDM vol. 3C, 29.3.2)', () => {
  for (const levels of [4, 5] as const) {
    test(`${levels}-level EPT: 4 KiB, 2 MiB and 1 GiB pages, rights, A/D flags`, () => {
      const mem = new Mem();
      eptTables(mem, 10, levels);
      const root = levels === 5 ? 9 : 10;
      const fmt = eptFormat(levels, M);
      const small = walkGpa(mem, fmt, root, 0x5123);
      assert.equal(small.status, WALK_OK);
      assert.equal(small.pfn, 0x805);
      assert.equal(small.shift, 12);
      assert.equal(small.n, levels);
      assert.equal(small.perm & RWX, RWX);
      assert.equal(small.perm & PERM_D, 0, 'clean until written');
      const two = walkGpa(mem, fmt, root, 0x400000 + 0x12345);
      assert.equal(two.status, WALK_OK);
      assert.equal(two.shift, 21);
      assert.equal(two.pfn, 0x1000);
      const one = walkGpa(mem, fmt, root, 0x80000000 + 0x1234567);
      assert.equal(one.status, WALK_OK);
      assert.equal(one.shift, 30);
      assert.equal(one.pfn, 0x40000);
      assert.deepEqual(
        one.steps().map((s) => s.level),
        levels === 5 ? [5, 4, 3] : [4, 3],
      );
      // A/D flags are EPT bits 8 and 9 (with EPTP bit 6), set only by commit.
      assert.equal(mem.lo(13, 5) & (EPT_A | EPT_D), 0);
      small.commit(true, null);
      assert.equal(mem.lo(13, 5) & (EPT_A | EPT_D), EPT_A | EPT_D);
      assert.equal(mem.lo(12, 0) & (EPT_A | EPT_D), EPT_A, 'non-leaf entries get A only');
      assert.equal(mem.lo(13, 5) & 0x78, WB, 'bits 6:3 (memory type, IPAT; x86 A/D positions) untouched');
      assert.notEqual(small.perm & PERM_D, 0);
    });
  }

  test('without A/D (EPTP bit 6 clear) no flag is written and bits 8-9 are ignored', () => {
    const mem = new Mem();
    eptTables(mem);
    const fmt = eptFormat(4, M, { ad: false, mbec: false, executeOnly: true });
    const r = walkGpa(mem, fmt, 10, 0x5000);
    assert.equal(r.status, WALK_OK);
    r.commit(true, null);
    assert.equal(mem.lo(13, 5) & (EPT_A | EPT_D), 0);
    assert.notEqual(r.perm & PERM_D, 0, 'nothing to set: a write needs no D flag');
  });

  test('rights are ANDed over every level; an entry with R=W=X=0 is not present', () => {
    const mem = new Mem();
    eptTables(mem);
    const fmt = eptFormat(4, M);
    mem.entry(11, 0, 12, EPT_R | EPT_X); // no W above
    const r = walkGpa(mem, fmt, 10, 0x5000);
    assert.equal(r.status, WALK_OK);
    assert.equal(r.perm & RWX, EPT_R | EPT_X);
    mem.entry(13, 5, 0x805, WB); // no R/W/X: not present, whatever else is set
    const np = walkGpa(mem, fmt, 10, 0x5000);
    assert.equal(np.status, WALK_NOT_PRESENT);
    assert.equal(np.level, 1);
  });

  test('misconfigurations (29.3.3.1): W without R, WX without R, X alone without execute-only support', () => {
    const mem = new Mem();
    eptTables(mem);
    const fmt = eptFormat(4, M);
    for (const bad of [EPT_W, EPT_W | EPT_X]) {
      mem.entry(12, 0, 13, bad);
      assert.equal(walkGpa(mem, fmt, 10, 0x5000).status, WALK_RSVD, `non-leaf rights ${bad}`);
      mem.entry(12, 0, 13, RWX);
      mem.entry(13, 5, 0x805, bad | WB);
      assert.equal(walkGpa(mem, fmt, 10, 0x5000).status, WALK_RSVD, `leaf rights ${bad}`);
      mem.entry(13, 5, 0x805, RWX | WB);
    }
    mem.entry(13, 5, 0x805, EPT_X | WB);
    assert.equal(walkGpa(mem, fmt, 10, 0x5000).status, WALK_OK, 'execute-only, supported');
    const noXo = eptFormat(4, M, { ad: true, mbec: false, executeOnly: false });
    assert.equal(walkGpa(mem, noXo, 10, 0x5000).status, WALK_RSVD, 'execute-only, unsupported');
  });

  test('misconfigurations: leaf memory types 2, 3 and 7; every other type is fine', () => {
    const mem = new Mem();
    eptTables(mem);
    const fmt = eptFormat(4, M);
    for (let mt = 0; mt < 8; mt++) {
      const bad = mt === 2 || mt === 3 || mt === 7;
      mem.entry(13, 5, 0x805, RWX | (mt << EPT_MEMTYPE_SHIFT));
      assert.equal(walkGpa(mem, fmt, 10, 0x5000).status, bad ? WALK_RSVD : WALK_OK, `4 KiB, type ${mt}`);
      mem.entry(12, 2, 0x1000, RWX | EPT_PS | (mt << EPT_MEMTYPE_SHIFT));
      assert.equal(walkGpa(mem, fmt, 10, 0x400000).status, bad ? WALK_RSVD : WALK_OK, `2 MiB, type ${mt}`);
      mem.entry(11, 2, 0x40000, RWX | EPT_PS | (mt << EPT_MEMTYPE_SHIFT));
      assert.equal(walkGpa(mem, fmt, 10, 0x80000000).status, bad ? WALK_RSVD : WALK_OK, `1 GiB, type ${mt}`);
    }
  });

  test('misconfigurations: reserved bits per entry kind', () => {
    const fmt = eptFormat(4, M);
    const cases: Array<[string, (m: Mem) => void, number]> = [
      ['PML4E bit 3', (m) => m.entry(10, 0, 11, RWX | (1 << 3)), 0x5000],
      ['PML4E bit 7', (m) => m.entry(10, 0, 11, RWX | (1 << 7)), 0x5000],
      ['PDPTE (table) bit 6', (m) => m.entry(11, 0, 12, RWX | (1 << 6)), 0x5000],
      ['PDE (table) bits 5:3', (m) => m.entry(12, 0, 13, RWX | WB), 0x5000],
      ['2 MiB page bit 12', (m) => m.entry(12, 2, 0x1001, RWX | WB | EPT_PS), 0x400000],
      ['1 GiB page bit 29', (m) => m.entry(11, 2, 0x40000 + 0x20000, RWX | WB | EPT_PS), 0x80000000],
      ['PTE address bit M', (m) => m.entry(13, 5, 0x805, RWX | WB, 1 << (M - 32)), 0x5000],
      ['PML4E bit 51', (m) => m.entry(10, 0, 11, RWX, 1 << 19), 0x5000],
    ];
    for (const [name, spoil, gpa] of cases) {
      const mem = new Mem();
      eptTables(mem);
      assert.equal(walkGpa(mem, fmt, 10, gpa).status, WALK_OK, `${name}: clean tables`);
      spoil(mem);
      assert.equal(walkGpa(mem, fmt, 10, gpa).status, WALK_RSVD, name);
    }
    // Ignored bits are not reserved: 11, 63:52 (63 is suppress-#VE in a leaf), IPAT and bit 7 of a PTE.
    const mem = new Mem();
    eptTables(mem);
    mem.entry(13, 5, 0x805, RWX | WB | (1 << 6) | (1 << 7) | (1 << 11), 0xfff00000);
    mem.entry(10, 0, 11, RWX | (1 << 11), 0xfff00000);
    assert.equal(walkGpa(mem, fmt, 10, 0x5000).status, WALK_OK);
  });

  test('mode-based execute control: XU (bit 10) makes an entry present and is ANDed like X', () => {
    const mem = new Mem();
    eptTables(mem);
    const mbec = eptFormat(4, M, { ad: true, mbec: true, executeOnly: true });
    mem.entry(13, 5, 0x805, EPT_XU | WB);
    const r = walkGpa(mem, mbec, 10, 0x5000);
    assert.equal(r.status, WALK_OK);
    assert.equal(r.perm & (RWX | EPT_XU), 0, 'XU not granted above');
    for (const t of [10, 11, 12]) mem.entry(t, 0, t + 1, RWX | EPT_XU);
    assert.equal(walkGpa(mem, mbec, 10, 0x5000).perm & (RWX | EPT_XU), EPT_XU);
    assert.equal(walkGpa(mem, eptFormat(4, M), 10, 0x5000).status, WALK_NOT_PRESENT, 'without MBEC bit 10 is ignored');
  });
});

describe('AMD nested-paging entries (APM vol. 2, 15.25)', () => {
  test('the long-mode format: 4 KiB, 2 MiB and 1 GiB pages, x86 A/D positions, no G or keys', () => {
    const mem = new Mem();
    const URW = PTE_P | PTE_RW | PTE_US;
    mem.entry(10, 0, 11, URW);
    mem.entry(11, 0, 12, URW);
    mem.entry(12, 0, 13, URW);
    mem.entry(13, 5, 0x805, URW | (1 << 8), 0x7800_0000); // G and key 15: meaningless here
    mem.entry(12, 2, 0x1000, URW | (1 << 7));
    mem.entry(11, 2, 0x40000, URW | (1 << 7));
    const fmt = nptFormat(4, M, true);
    const r = walkGpa(mem, fmt, 10, 0x5000);
    assert.equal(r.status, WALK_OK);
    assert.equal(r.pfn, 0x805);
    assert.equal(r.perm, PERM_W | PERM_U, 'no G, no key, clean');
    r.commit(true, null);
    assert.equal(mem.lo(13, 5) & (PTE_A | PTE_D), PTE_A | PTE_D);
    assert.equal(walkGpa(mem, fmt, 10, 0x400000).shift, 21);
    assert.equal(walkGpa(mem, fmt, 10, 0x80000000).shift, 30);
    mem.entry(12, 2, 0x1001, URW | (1 << 7));
    assert.equal(walkGpa(mem, fmt, 10, 0x400000).status, WALK_OK, '2 MiB page bit 12 is PAT');
    mem.entry(12, 2, 0x1002, URW | (1 << 7));
    assert.equal(walkGpa(mem, fmt, 10, 0x400000).status, WALK_RSVD, '2 MiB page bit 13');
  });
});

/**
 * A 4-level guest (stage 1) whose tables are at gfns 1-4 and whose page at
 * VA 0x12345000 is gfn 0x10; stage 2 maps gfn g to mfn 0x100 + g for g < 512
 * with 4 KiB pages, its tables at mfns 10-13.
 */
function twoStage(kind: 'ept' | 'npt'): { mem: Mem; s2: Stage2; s2pt: number } {
  const mem = new Mem();
  const g = (gfn: number): number => 0x100 + gfn;
  const URW = PTE_P | PTE_RW | PTE_US;
  mem.entry(g(1), 0, 2, URW);
  mem.entry(g(2), 0, 3, URW);
  mem.entry(g(3), 0x91, 4, URW);
  mem.entry(g(4), 0x145, 0x10, URW);
  const upper = kind === 'ept' ? RWX : URW;
  const leaf = kind === 'ept' ? RWX | WB : URW;
  mem.entry(10, 0, 11, upper);
  mem.entry(11, 0, 12, upper);
  mem.entry(12, 0, 13, upper);
  for (let gfn = 0; gfn < 512; gfn++) mem.entry(13, gfn, g(gfn), leaf);
  const fmt = kind === 'ept' ? eptFormat(4, M) : nptFormat(4, M, true);
  return { mem, s2: { fmt, rootPfn: 10 }, s2pt: 13 };
}

const GUEST = formatFor(MODE_LONG4, M, true, false);
const VA = 0x12345000;

describe('two-stage walks: every guest table reference translated', () => {
  test('EPT: steps, sub-walks, the final translation, 24 memory references, stage-2 A/D', () => {
    const { mem, s2, s2pt } = twoStage('ept');
    const w = new Walker();
    const res = new WalkResult();
    assert.equal(w.walk(mem, GUEST, 1, null, 0, VA + 0x10, res, s2), WALK_OK);
    assert.deepEqual([...res.tables.subarray(0, 4)], [1, 2, 3, 4], 'table frames are guest-physical');
    assert.deepEqual(
      res.steps().map((s) => s.index),
      [0, 0, 0x91, 0x145],
    );
    for (let k = 0; k < 4; k++) {
      assert.equal(res.sub(k).status, WALK_OK);
      assert.equal(res.sub(k).pfn, 0x101 + k, `step ${k}'s table is at mfn 0x${(0x101 + k).toString(16)}`);
    }
    assert.equal(res.pfn, 0x10);
    assert.equal(res.stage2Fault, S2_NONE);
    assert.equal(w.translateFinal(mem, s2, res, 0, VA + 0x10, READ), 0x110);
    assert.equal(res.final?.pfn, 0x110);
    assert.equal(w.entryReads, 24, '4 guest entries + 5 stage-2 walks of 4');
    assert.equal(w.walks, 6);
    // EPT A/D on: guest paging-structure references are writes to stage 2 (SDM 29.3.3.2).
    for (const gfn of [1, 2, 3, 4]) assert.equal(mem.lo(s2pt, gfn) & (EPT_A | EPT_D), EPT_A | EPT_D);
    assert.equal(mem.lo(s2pt, 0x10) & (EPT_A | EPT_D), EPT_A, 'a read of the page: A only');
    assert.equal(mem.lo(0x104, 0x145) & PTE_A, 0, 'the guest A flag waits for commit');
    res.commit(false, null); // here: into the machine frames the walk read
    assert.notEqual(mem.lo(0x104, 0x145) & PTE_A, 0, 'the guest entry, at its machine frame');
  });

  test('EPT violation on a table reference: the GPA, not final, the rights the path allowed', () => {
    const { mem, s2, s2pt } = twoStage('ept');
    mem.entry(s2pt, 3, 0x103, EPT_R | WB); // the guest PD read-only in stage 2
    const res = new WalkResult();
    const w = new Walker();
    assert.equal(w.walk(mem, GUEST, 1, null, 0, VA, res, s2), WALK_STAGE2);
    assert.equal(res.stage2Fault, S2_VIOLATION);
    assert.equal(res.stage2Final, false);
    assert.equal(res.stage2Gpa, 3 * 4096 + 0x91 * 8, 'the guest PDE the walk was to read');
    assert.equal(res.n, 2, 'the PML4E and PDPTE were read');
    assert.equal(res.level, 2);
    assert.equal(res.sub(2).pfn, 0x103, 'the failed sub-walk');
    assert.equal(res.stage2Qual, EPTQ_WRITE | EPTQ_READABLE | EPTQ_LINEAR_VALID, 'A/D on: a write; readable only');
    // With A/D off, table references are reads and the read-only PD is fine.
    const { mem: m2, s2pt: pt2 } = twoStage('ept');
    m2.entry(pt2, 3, 0x103, EPT_R | WB);
    const off: Stage2 = { fmt: eptFormat(4, M, { ad: false, mbec: false, executeOnly: true }), rootPfn: 10 };
    assert.equal(w.walk(m2, GUEST, 1, null, 0, VA, res, off), WALK_OK);
    // Not present in stage 2: a violation that allowed nothing.
    mem.entry(s2pt, 3, 0x103, 0);
    assert.equal(w.walk(mem, GUEST, 1, null, 0, VA, res, s2), WALK_STAGE2);
    assert.equal(res.stage2Fault, S2_VIOLATION);
    assert.equal(res.stage2Qual, EPTQ_WRITE | EPTQ_LINEAR_VALID);
  });

  test('EPT violation on the final translation: which of R/W/X were allowed', () => {
    const { mem, s2, s2pt } = twoStage('ept');
    mem.entry(s2pt, 0x10, 0x110, EPT_R | EPT_X | WB);
    const w = new Walker();
    const res = new WalkResult();
    assert.equal(w.walk(mem, GUEST, 1, null, 0, VA, res, s2), WALK_OK);
    assert.equal(w.translateFinal(mem, s2, res, 0, VA, READ), 0x110);
    assert.equal(w.translateFinal(mem, s2, res, 0, VA, FETCH), 0x110);
    assert.equal(w.translateFinal(mem, s2, res, 0, VA, WRITE), -1);
    assert.equal(res.status, WALK_STAGE2);
    assert.equal(res.stage2Fault, S2_VIOLATION);
    assert.equal(res.stage2Final, true);
    assert.equal(res.stage2Gpa, 0x10000);
    assert.equal(
      res.stage2Qual,
      EPTQ_WRITE | EPTQ_READABLE | EPTQ_EXECUTABLE | EPTQ_LINEAR_VALID | EPTQ_FINAL,
      'a write to a readable, executable page',
    );
    mem.entry(s2pt, 0x10, 0x110, EPT_R | EPT_W | WB);
    assert.equal(w.walk(mem, GUEST, 1, null, 0, VA, res, s2), WALK_OK);
    assert.equal(w.translateFinal(mem, s2, res, 0, VA, FETCH), -1);
    assert.equal(res.stage2Qual, EPTQ_FETCH | EPTQ_READABLE | EPTQ_WRITABLE | EPTQ_LINEAR_VALID | EPTQ_FINAL);
    mem.entry(s2pt, 0x10, 0x110, EPT_R | EPT_W | (3 << EPT_MEMTYPE_SHIFT));
    assert.equal(w.walk(mem, GUEST, 1, null, 0, VA, res, s2), WALK_OK);
    assert.equal(w.translateFinal(mem, s2, res, 0, VA, READ), -1);
    assert.equal(res.stage2Fault, S2_MISCONFIG, 'memory type 3 in the leaf');
    assert.equal(res.stage2Qual, 0, 'a misconfiguration has no qualification');
  });

  test('EPT with mode-based execute control: a user-mode page needs XU, a supervisor one X', () => {
    const { mem, s2pt } = twoStage('ept');
    const s2: Stage2 = { fmt: eptFormat(4, M, { ad: true, mbec: true, executeOnly: true }), rootPfn: 10 };
    for (const t of [10, 11, 12]) mem.entry(t, 0, t + 1, RWX | EPT_XU);
    mem.entry(s2pt, 0x10, 0x110, EPT_R | EPT_X | WB); // X (supervisor) only
    for (let gfn = 1; gfn <= 4; gfn++) mem.entry(s2pt, gfn, 0x100 + gfn, RWX | EPT_XU | WB);
    const w = new Walker();
    const res = new WalkResult();
    assert.equal(w.walk(mem, GUEST, 1, null, 0, VA, res, s2), WALK_OK);
    assert.notEqual(res.perm & PERM_U, 0, 'a user-mode linear address');
    assert.equal(w.translateFinal(mem, s2, res, 0, VA, FETCH), -1);
    assert.equal(res.stage2Qual & (EPTQ_EXECUTABLE | EPTQ_USER_EXECUTABLE), EPTQ_EXECUTABLE);
    mem.entry(s2pt, 0x10, 0x110, EPT_R | EPT_XU | WB);
    assert.equal(w.walk(mem, GUEST, 1, null, 0, VA, res, s2), WALK_OK);
    assert.equal(w.translateFinal(mem, s2, res, 0, VA, FETCH), 0x110);
    // The same page as supervisor-mode (guest U/S=0 in its PTE) needs X.
    mem.entry(0x104, 0x145, 0x10, PTE_P | PTE_RW);
    assert.equal(w.walk(mem, GUEST, 1, null, 0, VA, res, s2), WALK_OK);
    assert.equal(w.translateFinal(mem, s2, res, 0, VA, FETCH), -1);
  });

  test('EPT misconfiguration on a table reference', () => {
    const { mem, s2 } = twoStage('ept');
    mem.entry(12, 0, 13, EPT_W); // W without R above every guest table
    const res = new WalkResult();
    assert.equal(new Walker().walk(mem, GUEST, 1, null, 0, VA, res, s2), WALK_STAGE2);
    assert.equal(res.stage2Fault, S2_MISCONFIG);
    assert.equal(res.stage2Gpa, 1 * 4096, 'the first reference, the guest PML4E');
    assert.equal(res.n, 0);
  });

  test('NPT: every nested access is a user access; #NPF error codes, final vs table', () => {
    const { mem, s2, s2pt } = twoStage('npt');
    const w = new Walker();
    const res = new WalkResult();
    assert.equal(w.walk(mem, GUEST, 1, null, 0, VA, res, s2), WALK_OK);
    assert.equal(w.translateFinal(mem, s2, res, 0, VA, WRITE), 0x110);
    assert.equal(mem.lo(s2pt, 0x10) & (PTE_A | PTE_D), PTE_A | PTE_D, 'nested A/D at x86 positions');
    assert.equal(mem.lo(s2pt, 2) & (PTE_A | PTE_D), PTE_A, 'table references are reads under NPT');
    // A nested entry without U/S refuses every access, even the guest's supervisor ones.
    mem.entry(s2pt, 2, 0x102, PTE_P | PTE_RW);
    assert.equal(w.walk(mem, GUEST, 1, null, 0, VA, res, s2), WALK_STAGE2);
    assert.equal(res.stage2Fault, S2_VIOLATION);
    assert.equal(res.stage2Final, false);
    assert.equal(res.stage2Gpa, 2 * 4096);
    assert.equal(res.stage2Qual, PF_P | PF_U);
    // Read-only final page, written: #NPF P|W|U, final.
    mem.entry(s2pt, 2, 0x102, PTE_P | PTE_RW | PTE_US);
    mem.entry(s2pt, 0x10, 0x110, PTE_P | PTE_US);
    assert.equal(w.walk(mem, GUEST, 1, null, 0, VA, res, s2), WALK_OK);
    assert.equal(w.translateFinal(mem, s2, res, 0, VA, WRITE), -1);
    assert.equal(res.stage2Final, true);
    assert.equal(res.stage2Qual, PF_P | PF_W | PF_U);
    // Reserved bits: #NPF with RSVD, a misconfiguration in this model's words.
    mem.entry(s2pt, 0x10, 0x110, PTE_P | PTE_US, 1 << (M - 32));
    assert.equal(w.walk(mem, GUEST, 1, null, 0, VA, res, s2), WALK_OK);
    assert.equal(w.translateFinal(mem, s2, res, 0, VA, READ), -1);
    assert.equal(res.stage2Fault, S2_MISCONFIG);
    assert.equal(res.stage2Qual, PF_P | PF_RSVD | PF_U);
  });

  test('a stage-1 fault is the guest #PF, not a stage-2 one', () => {
    const { mem, s2 } = twoStage('ept');
    mem.entry(0x103, 0x91, 4, 0); // guest PDE not present
    const res = new WalkResult();
    assert.equal(new Walker().walk(mem, GUEST, 1, null, 0, VA, res, s2), WALK_NOT_PRESENT);
    assert.equal(res.stage2Fault, S2_NONE);
    assert.equal(res.level, 2);
    assert.equal(res.n, 3);
  });
});

describe('the per-vCPU MMU', () => {
  test('owns the TLB and walk result; paging-structure caches are installed by the pager, and are flushed with the TLB', () => {
    const { cpu } = makeMachine({ pwc: false });
    assert.equal(cpu.mmu.psc, null);
    assert.equal(cpu.tlb, cpu.mmu.tlb);
    const psc = new WalkCaches(DEFAULT_WALK_CACHES);
    cpu.mmu.psc = psc;
    const cached = (): number => [...(psc.upper as UpperCaches).entries()].length;
    (psc.upper as UpperCaches).fill(MODE_LONG4, 2, 0, 0x5000, 0, 7, 7, -1, 0);
    cpu.invlpg(0, 0x7000_0000); // INVLPG drops every entry of the PCID, whatever its address (SDM 4.10.4.1)
    assert.equal(cached(), 0);
    (psc.upper as UpperCaches).fill(MODE_LONG4, 2, 0, 0x5000, 0, 7, 7, -1, 0);
    cpu.writeCr3(0, 0x1000);
    assert.equal(cached(), 0, 'MOV to CR3');
  });
});
