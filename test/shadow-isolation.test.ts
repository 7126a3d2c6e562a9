/**
 * Isolation holes an attacker found in the shadow fast path, as scenarios in
 * every guest paging mode, run under native and under every combination of
 * the shadow pager's switches (checker on, identity and scattered frames):
 *
 *  1. One page table reached through a user and a supervisor-only page
 *     directory entry, mapping unbacked (MMIO) guest-physical memory: the
 *     magic entry in the shared shadow l1 must not carry the rights of the
 *     path that made it. CPL 3 through the supervisor path faults (0x5 read,
 *     0x7 write); CPL 3 through the user path is allowed, in either order.
 *  2. A leaf pointing at unbacked gfn 0x400000005 (MAXPHYADDR 52): the magic
 *     entry must keep all 40 bits, or the second access reaches RAM frame 5
 *     (which holds a secret here).
 *
 * The native outputs are asserted too, so the scenarios test what they claim.
 * Every variant of every registered pager runs them (src/pagers/registry.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError } from '../src/hypervisor/pager.js';
import { allVariants, createPager } from '../src/pagers/registry.js';
import { minPoolFrames } from '../src/pagers/shadow/options.js';
import { ShadowPager } from '../src/pagers/shadow/shadow.js';
import { A, D, hx, P, PS, RW, US, XD } from './support/entries.js';
import { runText } from './support/run.js';

type Mode = '32-bit' | 'pae' | '4-level' | '5-level';
const MODES: readonly Mode[] = ['32-bit', 'pae', '4-level', '5-level'];

/** Table frames: the top at gfn 1, then one table per level down to the page directory; the PT at gfn 10. */
const PT = 10;
const SECRET_GFN = 5;
const SECRET = 0x5ec12e7n;

interface Build {
  wide: boolean;
  /** VA of page-directory entry `i`'s range. */
  vaOf(pde: number, pte: number): bigint;
  pde(i: number, value: bigint): void;
  pte(i: number, value: bigint): void;
}

/**
 * A machine in `mode` with the upper levels built down to one page directory
 * (gfn 3); `setup` adds entries and returns the operations to run once paging is on.
 */
function machine(mode: Mode, maxphyaddr: number, setup: (b: Build) => string[]): string {
  const wide = mode !== '32-bit';
  const lines = [`{"op":"machine","vcpus":1,"memory":"0x100000","maxphyaddr":${maxphyaddr}}`];
  const put = (gfn: number, i: number, v: bigint): void => {
    const size = wide ? 8 : 4;
    lines.push(`{"op":"pwrite","gpa":${hx(gfn * 4096 + i * size)},"size":${size},"value":${hx(v)}}`);
  };
  // Upper levels: 5-level 1 -> 4 -> 2 -> 3; 4-level 1 -> 2 -> 3; PAE PDPT at gfn 1 -> 3; 32-bit: the PD is the top.
  const upper = (gfn: number, next: number, flags: bigint): void => put(gfn, 0, BigInt(next * 4096) | flags);
  if (mode === '5-level') {
    upper(1, 4, P | RW | US | A);
    upper(4, 2, P | RW | US | A);
    upper(2, 3, P | RW | US | A);
  } else if (mode === '4-level') {
    upper(1, 2, P | RW | US | A);
    upper(2, 3, P | RW | US | A);
  } else if (mode === 'pae') {
    upper(1, 3, P);
  }
  const pdShift = wide ? 21n : 22n;
  const b: Build = {
    wide,
    vaOf: (pde, pte) => (BigInt(pde) << pdShift) + (BigInt(pte) << 12n),
    pde: (i, v) => put(3, i, v),
    pte: (i, v) => put(PT, i, v),
  };
  lines.push(`{"op":"pwrite","gpa":${hx(SECRET_GFN * 4096)},"size":8,"value":${hx(SECRET)}}`);
  const ops = setup(b);
  const cr4 = mode === '32-bit' ? 0x10 : mode === '5-level' ? 0x1020 : 0x20;
  lines.push(`{"op":"wrcr","reg":"cr4","value":${hx(cr4)}}`);
  if (wide) lines.push(`{"op":"wrmsr","msr":"efer","value":${hx(mode === 'pae' ? 0x800 : 0x900)}}`);
  lines.push(`{"op":"wrcr","reg":"cr3","value":${hx(mode === '32-bit' ? 3 * 4096 : 4096)}}`);
  lines.push(`{"op":"wrcr","reg":"cr0","value":"0x80010011"}`, ...ops);
  return lines.join('\n');
}

const op = {
  read: (va: bigint, cpl: number) => `{"op":"read","va":${hx(va)},"size":4,"cpl":${cpl}}`,
  write: (va: bigint, cpl: number) => `{"op":"write","va":${hx(va)},"size":4,"value":"0x41414141","cpl":${cpl}}`,
  fetch: (va: bigint, cpl: number) => `{"op":"fetch","va":${hx(va)},"cpl":${cpl}}`,
  invlpg: (va: bigint) => `{"op":"invlpg","va":${hx(va)}}`,
};

/**
 * Case 1: PDE 0 (user) and PDE 1 (supervisor-only, and execute-disable in
 * the 8-byte formats) both point at the PT; PTE 0 maps an unbacked frame just
 * above RAM. `supFirst` picks which path touches it first.
 */
function sharedTableMmio(mode: Mode, supFirst: boolean): string {
  return machine(mode, 40, (b) => {
    b.pde(0, BigInt(PT * 4096) | P | RW | US | A);
    b.pde(1, BigInt(PT * 4096) | P | RW | A | (b.wide ? XD : 0n));
    b.pte(0, (0x100n << 12n) | P | RW | US | A | D); // gfn 0x100: memory is 0x100 frames
    const user = b.vaOf(0, 0);
    const sup = b.vaOf(1, 0);
    const first = supFirst
      ? [op.read(sup, 0), op.write(sup, 0), op.fetch(sup, 0)]
      : [op.read(user, 3), op.write(user, 3), op.fetch(user, 3)];
    const probe = [
      op.read(sup, 3),
      op.write(sup, 3),
      op.fetch(sup, 3),
      op.read(user, 3),
      op.write(user, 3),
      op.fetch(user, 3),
      op.read(sup, 0),
      op.write(sup, 0),
      op.fetch(sup, 0),
    ];
    return [...first, ...probe, op.invlpg(user), op.invlpg(sup), ...probe];
  });
}

/** Case 2: PTE 1 maps unbacked gfn 0x400000005 (above 2^34); frame 5 holds a secret. */
function highMmio(mode: Mode): string {
  return machine(mode, 52, (b) => {
    b.pde(0, BigInt(PT * 4096) | P | RW | US | A);
    b.pte(1, (0x400000005n << 12n) | P | RW | US | A | D);
    // And a 2 MiB page over unbacked memory above 2^34 frames (splintered: fl shadows hold magic entries too).
    b.pde(2, (0x400000000n << 12n) | P | RW | US | A | D | PS);
    const va = b.vaOf(0, 1);
    const big = b.vaOf(2, 5);
    const ops: string[] = [];
    for (let k = 0; k < 3; k++) ops.push(op.read(va, 3), op.write(va, 3), op.read(big, 3), op.write(big, 3));
    return [...ops, `{"op":"pread","gpa":${hx(SECRET_GFN * 4096)},"size":8}`];
  });
}

/** Under every variant of every registered pager (checker on), in both placements, the guest sees what it sees natively. */
function assertSameUnderShadow(text: string, native: string): void {
  for (const spec of allVariants(1)) {
    for (const layout of ['identity', 'scatter'] as const) {
      const out = runText(text, { pager: createPager(spec, { check: true }), layout, seed: 7 });
      assert.equal(out, native, `${spec} ${layout}`);
    }
  }
}

const faults = (out: string): string[] => [...out.matchAll(/"error":"(0x[0-9a-f]+)"/g)].map((m) => m[1] as string);

for (const mode of MODES) {
  test(`a page table shared by user and supervisor paths, mapping MMIO (${mode})`, () => {
    for (const supFirst of [false, true]) {
      const text = sharedTableMmio(mode, supFirst);
      const native = runText(text);
      // CPL 3 through the supervisor path: read 0x5, write 0x7, fetch 0x15 (or 0x5 without I/D reporting).
      const f = faults(native);
      assert.ok(f.includes('0x5') && f.includes('0x7'), `native faults ${f.join(',')}`);
      assert.ok(native.includes('"value":"0xffffffff"'), 'MMIO reads return all ones');
      assertSameUnderShadow(text, native);
    }
  });
  if (mode !== '32-bit') {
    test(`a leaf above 2^34 frames over MMIO keeps its whole frame number (${mode})`, () => {
      const text = highMmio(mode);
      const native = runText(text);
      assert.ok(!native.includes('fault'), native);
      assert.ok(native.includes(`"value":"0x${SECRET.toString(16)}"`), 'the secret is untouched natively');
      assert.equal((native.match(/"value":"0xffffffff"/g) ?? []).length, 6);
      assertSameUnderShadow(text, native);
    });
  }
}

test('a pool too small for the vCPUs is refused with the minimum named', () => {
  const text = '{"op":"machine","vcpus":20,"memory":"0x100000"}\n{"op":"read","va":"0x0","size":4,"cpl":0}';
  assert.throws(
    () => runText(text, { pager: new ShadowPager({ switches: { pool: 64 } }) }),
    (e: unknown) => e instanceof ConfigError && e.message.includes(`at least ${minPoolFrames(20)}`),
  );
  const min = minPoolFrames(20);
  assert.equal(runText(text, { pager: new ShadowPager({ check: true, switches: { pool: min } }) }), runText(text));
});

test('the checker sees a magic entry with a truncated frame or path-dependent rights', () => {
  const pager = new ShadowPager({ switches: { oos: false, prefetch: 0 } });
  runText(sharedTableMmio('4-level', false), { pager });
  // Reach into the pager as an attacker's bug would: rewrite the magic entry of the shared l1.
  const inner = (
    pager as unknown as {
      st: {
        byGfn: Map<number, Array<{ smfn: number; level: number }>>;
        domain: { mem: { write(mfn: number): Uint32Array } };
      };
    }
  ).st;
  const l1 = (inner.byGfn.get(PT) ?? []).find((sh) => sh.level === 1);
  assert.ok(l1 !== undefined, 'the shared page table is shadowed');
  const f = inner.domain.mem.write(l1.smfn);
  const [lo, hi] = [f[0] as number, f[1] as number];
  assert.equal(pager.checkInvariants(), null);
  // The rights of the supervisor path stored in the entry (U/S cleared): wrong through the user path.
  f[0] = lo & ~4;
  assert.match(pager.checkInvariants() ?? '', /fast path grants/);
  // Only the low 34 bits of the frame kept.
  f[0] = lo;
  f[1] = hi & ~0x3f00000;
  f[0] = ((lo & 0xfff) | (5 << 12)) >>> 0;
  assert.match(pager.checkInvariants() ?? '', /MMIO entry for gfn 5/);
  f[0] = lo;
  f[1] = hi;
  assert.equal(pager.checkInvariants(), null);
});

test('the checker sees a writable shadow entry missing from the writable reverse map', () => {
  // 4-level tables at 0x1000..0x4000; VA 0 maps the data page at gfn 0x10, writable; one write makes its shadow writable.
  const pw = (gpa: number, v: bigint): string => `{"op":"pwrite","gpa":${hx(gpa)},"size":8,"value":${hx(v)}}`;
  const text = `${[
    '{"op":"machine","vcpus":1,"memory":"0x1000000"}',
    pw(0x1000, 0x2000n | P | RW | US),
    pw(0x2000, 0x3000n | P | RW | US),
    pw(0x3000, 0x4000n | P | RW | US),
    pw(0x4000, 0x10000n | P | RW | US),
    '{"op":"wrcr","reg":"cr4","value":"0x20"}',
    '{"op":"wrmsr","msr":"efer","value":"0x900"}',
    '{"op":"wrcr","reg":"cr3","value":"0x1000"}',
    '{"op":"wrcr","reg":"cr0","value":"0x80010011"}',
    '{"op":"write","va":"0x8","size":8,"value":"0x1","cpl":3}',
  ].join('\n')}\n`;
  const pager = new ShadowPager({ switches: { oos: false } });
  runText(text, { pager });
  assert.equal(pager.checkInvariants(), null);
  // Reach into the pager as a bug would: forget the writable mapping of gfn 0x10.
  const inner = pager as unknown as { set: { writable: { take(gfn: number): number[] } } };
  assert.equal(inner.set.writable.take(0x10).length, 1, 'one shadow entry maps the data page writable');
  assert.match(pager.checkInvariants() ?? '', /missing from the writable reverse map/);
});
