/**
 * Typed VM exits: one exit per architectural event, filed under its reason,
 * and none for attaching the pager. Pinned on hand-made scenarios under the
 * shadow pager with every optimization off (so page-fault counts are the
 * plain ones), and checked to be none at all under native paging.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NativePager } from '../src/pagers/native/native.js';
import { ShadowPager } from '../src/pagers/shadow/shadow.js';
import { runText } from './support/run.js';

const MACHINE = '{"op":"machine","vcpus":1,"memory":"0x1000000"}';
// PML4 0x1000 -> PDPT 0x2000 -> PD 0x3000 -> PT 0x4000 -> frame 0x5000 at VA 0.
const TABLES = [
  '{"op":"pwrite","gpa":"0x1000","size":8,"value":"0x2027"}',
  '{"op":"pwrite","gpa":"0x2000","size":8,"value":"0x3027"}',
  '{"op":"pwrite","gpa":"0x3000","size":8,"value":"0x4027"}',
  '{"op":"pwrite","gpa":"0x4000","size":8,"value":"0x5027"}',
];
const BOOT = [
  '{"op":"wrcr","reg":"cr4","value":"0x20"}',
  '{"op":"wrmsr","msr":"efer","value":"0x900"}',
  '{"op":"wrcr","reg":"cr3","value":"0x1000"}',
  '{"op":"wrcr","reg":"cr0","value":"0x80010011"}',
];

const plain = { oos: false, prefetch: 0, fastpath: false, unshadow: false, pool: -1 };

function exits(text: string): Record<string, number> {
  const pager = new ShadowPager({ switches: plain });
  runText(text, { pager });
  const s = pager.stats();
  return Object.fromEntries(Object.entries(s).filter(([k]) => k === 'exits' || k.startsWith('exit.')));
}

test('attaching the pager is not an exit', () => {
  const e = exits(MACHINE);
  assert.equal(e.exits, 0);
});

test('each guest event is one exit, filed under its reason', () => {
  const base = [MACHINE, ...TABLES, ...BOOT].join('\n');
  const boot = exits(base);
  // MOV CR4, MOV CR3, MOV CR0: three CR writes; WRMSR EFER: one MSR write; nothing else.
  assert.deepEqual(boot, {
    exits: 4,
    'exit.page_fault': 0,
    'exit.cr_write': 3,
    'exit.msr_write': 1,
    'exit.invlpg': 0,
    'exit.invpcid': 0,
    'exit.flush': 0,
  });
  const more = exits(
    [
      base,
      // One read: one shadow fault (the path is built at once), then a TLB hit.
      '{"op":"read","va":"0x0","size":4,"cpl":3}',
      '{"op":"read","va":"0x8","size":4,"cpl":3}',
      '{"op":"invlpg","va":"0x0"}',
      '{"op":"wrcr","reg":"cr3","value":"0x1000"}',
      '{"op":"invpcid","type":2,"pcid":0,"va":"0x0"}',
      '{"op":"flush"}',
    ].join('\n'),
  );
  assert.deepEqual(more, {
    exits: 4 + 1 + 1 + 1 + 1 + 1,
    'exit.page_fault': 1,
    'exit.cr_write': 4,
    'exit.msr_write': 1,
    'exit.invlpg': 1,
    'exit.invpcid': 1,
    'exit.flush': 1,
  });
});

test('an instruction that faults (#GP) is not an exit, and native paging counts none', () => {
  // INVPCID type 0 with a non-canonical address #GPs before it reaches the host.
  const text = [MACHINE, ...TABLES, ...BOOT, '{"op":"invpcid","type":0,"pcid":0,"va":"0x800000000000"}'].join('\n');
  assert.equal(exits(text).exits, 4);
  const native = new NativePager();
  runText(text, { pager: native });
  // Its only counters are the hardware's paging-structure caches'.
  assert.deepEqual(
    Object.keys(native.stats()).filter((k) => !k.startsWith('pwc.')),
    [],
  );
});
