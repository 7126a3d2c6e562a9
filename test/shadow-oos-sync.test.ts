/**
 * A guest TLB flush and other vCPUs' out-of-sync pages, as Xen's
 * sh_update_cr3 handles them: the flushing vCPU's own pages are resynced
 * before it switches tables; another vCPU's page is brought up to date after,
 * unless the flushing vCPU's new tables cannot reach it (sh_skip_sync,
 * sh_safe_not_to_sync: its shadow hangs from one parent at every level up to
 * a top-level shadow the vCPU does not run on).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ShadowPager } from '../src/pagers/shadow/shadow.js';
import { runText } from './support/run.js';

const hex = (v: number): string => `"0x${v.toString(16)}"`;
const pw = (gpa: number, v: number): string => `{"op":"pwrite","gpa":${hex(gpa)},"size":8,"value":${hex(v)}}`;
const cr3 = (root: number): string => `{"op":"wrcr","reg":"cr3","value":${hex(root)}}`;

/** Two 4-level address spaces: A (tables 1-4, data 10) and B (tables 11-14, data 20; VA 0x1000 maps B's l1 itself). */
function scenario(): string {
  const lines = ['{"op":"machine","vcpus":2,"memory":"0x400000"}'];
  for (const [t, data] of [
    [1, 10],
    [11, 20],
  ] as const) {
    lines.push(pw(t * 4096, (t + 1) * 4096 + 7), pw((t + 1) * 4096, (t + 2) * 4096 + 7));
    lines.push(pw((t + 2) * 4096, (t + 3) * 4096 + 7), pw((t + 3) * 4096, data * 4096 + 0x67));
  }
  lines.push(pw(14 * 4096 + 8, 14 * 4096 + 0x67));
  for (const [cpu, root] of [
    [0, 1],
    [1, 11],
  ] as const) {
    lines.push(`{"op":"cpu","vcpu":${cpu}}`, '{"op":"wrcr","reg":"cr4","value":"0x20"}');
    lines.push('{"op":"wrmsr","msr":"efer","value":"0x100"}', cr3(root * 4096));
    lines.push('{"op":"wrcr","reg":"cr0","value":"0x80000011"}', '{"op":"read","va":"0x0","size":8,"cpl":3}');
  }
  // vCPU 1 writes its own l1 (B's table 14) through VA 0x1000: the page goes out of sync.
  lines.push(`{"op":"write","va":"0x1010","size":8,"value":${hex(21 * 4096 + 0x67)},"cpl":0}`);
  // vCPU 0 reloads A, which cannot reach table 14: skipped; then loads B: brought up to date.
  lines.push('{"op":"cpu","vcpu":0}', cr3(4096), cr3(11 * 4096), '{"op":"read","va":"0x2000","size":8,"cpl":3}');
  return `${lines.join('\n')}\n`;
}

test("a flush leaves another vCPU's out-of-sync l1 alone when its new tables cannot reach it (sh_skip_sync)", () => {
  const text = scenario();
  const pager = new ShadowPager({ check: true });
  assert.equal(runText(text, { pager }), runText(text));
  const s = pager.stats();
  assert.equal(s['oos.unsynced'], 1);
  assert.equal(s['oos.others_skipped'], 1, 'the reload of A skips it');
  assert.equal(s['oos.others_updated'], 1, 'the load of B updates it');
  assert.equal(s['oos.resyncs'], 0, 'it stays out of sync: vCPU 1 never flushed');
});
