/**
 * How the shadow pager finds the writable mappings of a frame that becomes
 * a guest table, and what an emulated write to a shadowed table does, as
 * Xen does them: guesses by the guest OS's layout, the l1 where the last
 * search succeeded, fixup arrays for out-of-sync pages, a brute-force
 * search (sh_remove_write_access, oos_fixup_add); re-propagation of written
 * entries (sh_validate_guest_entry). Each scenario runs natively and under
 * the checked pager with the same output.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ShadowStats } from '../src/pagers/shadow/counters.js';
import { parseShadowSpec } from '../src/pagers/shadow/options.js';
import { WritableMap } from '../src/pagers/shadow/set.js';
import { ShadowPager } from '../src/pagers/shadow/shadow.js';
import { shHash } from '../src/pagers/shadow/wrmap.js';
import { runText } from './support/run.js';

const hex = (v: bigint | number): string => `"0x${v.toString(16)}"`;
const pw = (gpa: number, v: bigint | number, size = 8): string =>
  `{"op":"pwrite","gpa":${hex(gpa)},"size":${size},"value":${hex(v)}}`;
const write = (va: bigint | number, v: number, cpl = 0): string =>
  `{"op":"write","va":${hex(va)},"size":8,"value":${hex(v)},"cpl":${cpl}}`;
const read = (va: bigint | number, cpl = 3): string => `{"op":"read","va":${hex(va)},"size":8,"cpl":${cpl}}`;

function stats(text: string, spec = 'shadow'): ShadowStats {
  const sw = parseShadowSpec(spec);
  if (typeof sw === 'string') throw new Error(sw);
  const pager = new ShadowPager({ check: true, name: spec, switches: sw });
  assert.equal(runText(text, { pager }), runText(text));
  return pager.stats();
}

/**
 * A 4-level guest with a direct map of its first 512 frames at `base`
 * (PML4 frame 1; user VA 0: PDPT 2, PD 3; direct map: PDPT 6, PD 7, PT 8).
 * The guest writes frames 20 and 21 through the direct map, then makes them
 * page tables for VA 0x200000 and 0x400000 and reads there.
 */
function directMapGuest(base: bigint, extra: string[] = []): string {
  const pml4 = Number((base >> 39n) & 511n);
  const lines = ['{"op":"machine","vcpus":1,"memory":"0x400000"}'];
  lines.push(pw(0x1000, 0x2000 + 7), pw(0x2000, 0x3000 + 7));
  lines.push(pw(0x1000 + pml4 * 8, 0x6000 + 3), pw(0x6000, 0x7000 + 3), pw(0x7000, 0x8000 + 3));
  for (let i = 0; i < 512; i++) lines.push(pw(0x8000 + i * 8, i * 4096 + 3));
  lines.push('{"op":"wrcr","reg":"cr4","value":"0x20"}', '{"op":"wrmsr","msr":"efer","value":"0x100"}');
  lines.push('{"op":"wrcr","reg":"cr3","value":"0x1000"}', '{"op":"wrcr","reg":"cr0","value":"0x80000011"}');
  const dm = (frame: number): bigint => base + BigInt(frame * 4096);
  // Each new table's first entry maps a data page (present, user, accessed).
  lines.push(write(dm(20), 30 * 4096 + 0x27), write(dm(21), 31 * 4096 + 0x27));
  lines.push(pw(0x3000 + 8, 20 * 4096 + 0x27), read(0x200000));
  lines.push(pw(0x3000 + 16, 21 * 4096 + 0x27), read(0x400000));
  lines.push(...extra);
  return `${lines.join('\n')}\n`;
}

test("Xen's guess finds a mapping in an old Linux's direct map (0xffff880000000000)", () => {
  const s = stats(directMapGuest(0xffff880000000000n));
  assert.equal(s.write_access_removals, 2);
  assert.equal(s['wrmap.guess_found'], 2);
  assert.equal(s['wrmap.bruteforce'], 0);
  assert.equal(s['wrmap.l1_scanned'], 0);
});

test("a modern Linux's direct map (0xffff888000000000) defeats the guesses: brute force once, then the last l1 found", () => {
  const s = stats(directMapGuest(0xffff888000000000n));
  assert.equal(s.write_access_removals, 2);
  assert.equal(s['wrmap.guess_found'], 0);
  assert.ok(s['wrmap.guesses'] >= 2 * 4, 'every direct-map guess tried for each frame');
  assert.equal(s['wrmap.bruteforce'], 1);
  assert.equal(s['wrmap.last_found'], 1);
  assert.ok(s['wrmap.l1_scanned'] >= 2);
});

test('with the rmap switch the reverse map finds them: no guess, no search', () => {
  const s = stats(directMapGuest(0xffff888000000000n), 'shadow:+rmap');
  assert.equal(s.write_access_removals, 2);
  assert.equal(s.rmap_entries_searched, 2);
  assert.equal(s['wrmap.guesses'] + s['wrmap.bruteforce'] + s['wrmap.l1_scanned'], 0);
});

test('an out-of-sync page keeps its writable mappings in a fixup array; its resync needs no search', () => {
  // The guest writes its table (frame 20) through the direct map: it goes out
  // of sync, the writable mapping is a fixup; a CR3 write resyncs it.
  const base = 0xffff888000000000n;
  const s = stats(
    directMapGuest(base, [
      write(base + 20n * 4096n + 8n, 32 * 4096 + 0x27),
      '{"op":"wrcr","reg":"cr3","value":"0x1000"}',
    ]),
  );
  assert.equal(s['oos.unsynced'], 1);
  assert.equal(s['oos.fixup_add'], 1);
  assert.equal(s['oos.resyncs'], 1);
  assert.equal(s['wrmap.bruteforce'], 1, 'only the first frame needed a search');
  const rmap = stats(
    directMapGuest(base, [
      write(base + 20n * 4096n + 8n, 32 * 4096 + 0x27),
      '{"op":"wrcr","reg":"cr3","value":"0x1000"}',
    ]),
    'shadow:+rmap',
  );
  assert.equal(rmap['oos.fixup_add'], 0, 'no fixups with the reverse map');
});

test('an emulated write to a shadowed l1 re-propagates the entry: the next access takes no shadow fault', () => {
  const base = 0xffff888000000000n;
  // Without out-of-sync l1s every write to frame 20 is emulated; entry 1 maps VA 0x201000.
  const extra = [write(base + 20n * 4096n + 8n, 33 * 4096 + 0x27), read(0x201000)];
  const before = stats(directMapGuest(base), 'shadow:-oos');
  const after = stats(directMapGuest(base, extra), 'shadow:-oos');
  assert.equal(after['emulate.pt_write'], before['emulate.pt_write'] + 1);
  assert.equal(after.entries_revalidated, before.entries_revalidated + 1);
  assert.equal(after['exit.page_fault'], before['exit.page_fault'] + 1, 'only the emulated write exits');
});

test("Xen's shadow hash: 251 buckets, the frame's five low bytes mixed into the type", () => {
  // k = t; five times k = byte + (k << 6) + (k << 16) - k (32-bit), then k mod 251.
  let k = 7;
  for (const b of [0x34, 0x12, 0, 0, 0]) k = (b + (k << 6) + (k << 16) - k) >>> 0;
  assert.equal(shHash(0x1234, 7), k % 251);
  assert.ok(shHash(2 ** 40 - 1, 1) < 251);
});

test('the writable reverse map: one slot in place, shared frames as a set, any guest frame of a sparse 1 TiB guest', () => {
  const m = new WritableMap();
  const far = 2 ** 28 - 1; // the last frame of a 1 TiB guest
  const slot = (smfn: number, i: number): number => smfn * 1024 + i;
  assert.equal(m.count(7), 0);
  assert.deepEqual(m.take(far), []);
  m.add(7, slot(2 ** 39, 511)); // a slot beyond 2^32 stays exact
  m.add(7, slot(2 ** 39, 511)); // the same slot again is one mapping
  assert.equal(m.count(7), 1);
  m.add(far, slot(9, 1));
  m.add(far, slot(9, 2));
  m.add(far, slot(8, 0));
  assert.equal(m.count(far), 3);
  m.remove(far, slot(9, 2));
  assert.equal(m.count(far), 2);
  assert.deepEqual(m.take(far), [slot(9, 1), slot(8, 0)]); // in the order they were added
  assert.equal(m.count(far), 0);
  // A freed set is reused, and a frame whose last slot goes has none.
  m.add(8, slot(3, 3));
  m.add(8, slot(3, 4));
  m.remove(8, slot(3, 3));
  m.remove(8, slot(3, 4));
  assert.equal(m.count(8), 0);
  assert.deepEqual(m.take(7), [slot(2 ** 39, 511)]);
  assert.equal(m.count(7), 0);
});
