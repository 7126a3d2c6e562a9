/**
 * The shadow pager's optimizations (issue: out-of-sync shadows and the rest):
 * each one, switched on and off, leaves the guest's outcome unchanged (with
 * the isolation checker on) and has the effect it exists for; pager specs;
 * the pool bound; log-dirty migration verified end to end.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { migratingGuest } from '../src/cli/workload.js';
import { runWorkload, startWorkload } from '../src/guest/kernel/run.js';
import { workload } from '../src/guest/kernel/workloads.js';
import { migrate } from '../src/hypervisor/migrate.js';
import { NativePager } from '../src/pagers/native/native.js';
import type { ShadowStats } from '../src/pagers/shadow/counters.js';
import { DEFAULT_SWITCHES, defaultPoolFrames, parseShadowSpec } from '../src/pagers/shadow/options.js';
import { ShadowPager } from '../src/pagers/shadow/shadow.js';
import { runText } from './support/run.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'dist/src/cli/main.js');

function shadow(spec: string, check = true): ShadowPager {
  const sw = parseShadowSpec(spec);
  if (typeof sw === 'string') throw new Error(sw);
  return new ShadowPager({ check, name: spec, switches: sw });
}

function run(name: string, size: number, pager: NativePager | ShadowPager) {
  const w = workload(name);
  if (w === undefined) throw new Error(name);
  return runWorkload({
    workload: w,
    params: { size, seed: 7, vcpus: w.defaults.vcpus, memory: w.defaults.memory, thp: false },
    mode: '4-level',
    pcid: true,
    verify: true,
    pager,
    layout: 'identity',
  });
}

/** Run a workload natively and under `spec` (checked): same outcome; the shadow pager's counters. */
function counters(name: string, size: number, spec: string): ShadowStats {
  const p = shadow(spec);
  assert.equal(run(name, size, p).digest, run(name, size, new NativePager()).digest, `${name} under ${spec}`);
  return p.stats();
}

test('pager specs: defaults as in Xen, switches by name, clear errors', () => {
  assert.deepEqual(parseShadowSpec('shadow'), DEFAULT_SWITCHES);
  const sw = parseShadowSpec('shadow:-oos:prefetch=8:-fastpath:pool=128');
  assert.deepEqual(sw, { ...DEFAULT_SWITCHES, oos: false, prefetch: 8, fastpath: false, pool: 128 });
  assert.equal((parseShadowSpec('shadow:-pool') as { pool: number }).pool, -1);
  assert.equal((parseShadowSpec('shadow:-prefetch') as { prefetch: number }).prefetch, 0);
  assert.match(parseShadowSpec('shadow:-bogus') as string, /unknown shadow optimization "bogus"/);
  assert.match(parseShadowSpec('shadow:pool=10') as string, /at least 64 frames/);
  assert.match(parseShadowSpec('shadow:-oos=3') as string, /takes no value/);
  assert.match(parseShadowSpec('shadow:oos=3') as string, /oos takes no value/);
  // libxl: 1 MiB per vCPU + 8 KiB per MiB of RAM.
  assert.equal(defaultPoolFrames(2, 2 ** 30), 256 * 2 + 2 * 1024);
});

test('out of sync: l1 writes go direct between flushes; resyncs compare snapshots', () => {
  const on = counters('forkexec', 0.005, 'shadow');
  const off = counters('forkexec', 0.005, 'shadow:-oos');
  assert.ok(on['oos.unsynced'] > 0 && on['oos.resyncs'] > 0);
  assert.ok(on['oos.resync.guest_flush'] > 0, 'resyncs happen where the guest flushes');
  assert.ok(on['oos.entries_changed'] > 0 && on['oos.entries_changed'] <= on['oos.entries_compared']);
  assert.ok(on['oos.peak_pages'] <= 3 * 2, 'at most 3 pages per vCPU');
  assert.equal(off['oos.unsynced'], 0);
  assert.ok(on['emulate.pt_write'] < off['emulate.pt_write'], 'fewer emulated page-table writes');
});

test('prefetch propagates neighbours and saves shadow faults', () => {
  const on = counters('ctxswitch', 0.01, 'shadow:prefetch=32');
  const off = counters('ctxswitch', 0.01, 'shadow:-prefetch');
  assert.ok(on['prefetch.entries'] > 0);
  assert.equal(off['prefetch.entries'], 0);
  assert.ok(on['fault.fixed'] < off['fault.fixed'], `${on['fault.fixed']} vs ${off['fault.fixed']}`);
});

test('fast path: guest-not-present faults classified without a walk', () => {
  const on = counters('mmapchurn', 0.01, 'shadow:-oos');
  const off = counters('mmapchurn', 0.01, 'shadow:-oos:-fastpath');
  assert.ok(on['fastpath.not_present'] > 0);
  assert.equal(off['fastpath.not_present'], 0);
  assert.equal(on['fault.injected'], off['fault.injected'], 'the same guest faults, however found');
});

test('fast path for MMIO: a guest mapping of unbacked memory reads all ones, emulated without a walk', () => {
  const pw = (gpa: number, v: number): string =>
    `{"op":"pwrite","gpa":"0x${gpa.toString(16)}","size":8,"value":"0x${v.toString(16)}"}`;
  const lines = [
    '{"op":"machine","vcpus":1,"memory":"0x100000"}',
    pw(0x1000, 0x2007),
    pw(0x2000, 0x3007),
    pw(0x3000, 0x4007),
    pw(0x4008, 0x200067), // VA 0x1000 -> gfn 0x200, beyond the 1 MiB of RAM: MMIO
    '{"op":"wrcr","reg":"cr4","value":"0x20"}',
    '{"op":"wrmsr","msr":"efer","value":"0x900"}',
    '{"op":"wrcr","reg":"cr3","value":"0x1000"}',
    '{"op":"wrcr","reg":"cr0","value":"0x80010011"}',
  ];
  for (let i = 0; i < 6; i++) lines.push(`{"op":"read","va":"0x${(0x1000 + 8 * i).toString(16)}","size":8,"cpl":0}`);
  lines.push(
    '{"op":"write","va":"0x1008","size":8,"value":"0x5","cpl":0}',
    '{"op":"read","va":"0x1008","size":4,"cpl":3}',
  );
  const text = `${lines.join('\n')}\n`;
  const p = shadow('shadow');
  assert.equal(runText(text, { pager: p }), runText(text));
  assert.ok(p.stats()['fastpath.mmio'] >= 4, `${p.stats()['fastpath.mmio']}`);
});

test('early unshadow: tables being zeroed are unshadowed instead of emulating every write', () => {
  const on = counters('forkexec', 0.005, 'shadow:-oos');
  const off = counters('forkexec', 0.005, 'shadow:-oos:-unshadow');
  assert.ok(on['unshadow.frames'] > 0);
  assert.equal(off['unshadow.frames'], 0);
  assert.ok(on['emulate.pt_write'] < off['emulate.pt_write']);
});

/**
 * Two address spaces (PML4s 0x10000 and 0x20000) sharing a kernel half whose
 * 2 MiB direct map covers both PML4s; each is loaded once, so both top-level
 * shadows are pinned. Then, running on `runOn`, the kernel zeroes two entries
 * of `zeroed`'s PML4 through the direct map: two emulated zero writes in a row;
 * then it loads CR3 0x10000 (a flush) and reads through PML4[0].
 */
function zeroPml4(runOn: number, zeroed: number): string {
  const hex = (n: number) => `"0x${n.toString(16)}"`;
  const lines = ['{"op":"machine","vcpus":1,"memory":"0x1000000"}'];
  const pw = (gpa: number, v: number) => lines.push(`{"op":"pwrite","gpa":${hex(gpa)},"size":8,"value":${hex(v)}}`);
  for (const [pml4, user] of [
    [0x10000, 0x50000],
    [0x20000, 0x60000],
  ] as const) {
    pw(pml4 + 0xff8, 0x30003);
    pw(pml4, pml4 + 0x1007);
    pw(pml4 + 0x1000, pml4 + 0x2007);
    pw(pml4 + 0x2010, pml4 + 0x3007);
    pw(pml4 + 0x3000, user | 7);
  }
  pw(0x30ff8, 0x31003);
  pw(0x31ff8, 0x83);
  lines.push('{"op":"wrcr","reg":"cr4","value":"0x20"}', '{"op":"wrmsr","msr":"efer","value":"0x900"}');
  lines.push('{"op":"wrcr","reg":"cr3","value":"0x10000"}', '{"op":"wrcr","reg":"cr0","value":"0x80010011"}');
  for (const cr3 of [0x10000, 0x20000, runOn]) {
    lines.push(`{"op":"wrcr","reg":"cr3","value":${hex(cr3)}}`, '{"op":"read","va":"0x400000","size":4,"cpl":3}');
  }
  for (const at of [0, 8]) {
    lines.push(`{"op":"write","va":${hex(0xffffffffffe00000 + zeroed + at)},"size":8,"value":"0x0","cpl":0}`);
  }
  lines.push('{"op":"wrcr","reg":"cr3","value":"0x10000"}', '{"op":"read","va":"0x400000","size":4,"cpl":3}');
  return `${lines.join('\n')}\n`;
}

test("early unshadow unpins another address space's top-level shadow, as Xen's sh_remove_shadows does (sh_unpin)", () => {
  const text = zeroPml4(0x20000, 0x10000);
  const p = shadow('shadow');
  assert.equal(runText(text, { pager: p }), runText(text));
  const s = p.stats();
  assert.equal(s['unshadow.frames'], 1, 'the PML4 being zeroed lost its pinned shadow');
  assert.equal(s['unshadow.shadows'], 1);
  assert.equal(s['emulate.pt_write'], 2);
  assert.ok(s.shadows_freed >= 1, `${s.shadows_freed}`);
});

test('early unshadow leaves the top-level shadow a vCPU runs on', () => {
  const text = zeroPml4(0x10000, 0x10000);
  const p = shadow('shadow');
  assert.equal(runText(text, { pager: p }), runText(text));
  const s = p.stats();
  assert.equal(s['unshadow.frames'], 0);
  assert.equal(s['unshadow.shadows'], 0);
});

test('a small pool evicts least recently used roots and never overflows', () => {
  const s = counters('ctxswitch', 0.01, 'shadow:pool=64');
  assert.equal(s['pool.frames'], 64);
  assert.ok(s['pool.evictions'] + s['pool.blowouts'] > 0);
  assert.ok(s.peak_shadow_frames <= 64, `peak ${s.peak_shadow_frames}`);
  const unbounded = counters('ctxswitch', 0.01, 'shadow:-pool');
  assert.equal(unbounded['pool.evictions'], 0);
  assert.ok(unbounded.peak_shadow_frames > 64);
});

test('oos.resync.blowout counts the resyncs a blowout causes (reported from the start: test/pager-counters.test.ts)', () => {
  // A small pool with out-of-sync l1s: blowouts resync them.
  const p = shadow('shadow:pool=64', false);
  run('compile', 0.05, p);
  const s = p.stats();
  assert.ok(s['pool.blowouts'] > 0 && s['oos.resync.blowout'] > 0, JSON.stringify(s));
  assert.deepEqual(
    Object.keys(s),
    ShadowPager.counters.map((c) => c.name),
    'stats() in declared order',
  );
});

test('every optimization off at once is still transparent', () => {
  counters('server', 0.005, 'shadow:-oos:-prefetch:-fastpath:-unshadow:-pool');
  counters('ctxswitch', 0.01, 'shadow:prefetch=512:pool=80');
});

/** Pre-copy migration of a compile under `spec`: the result and the pager's counters. */
function migrateCompile(spec: string) {
  const w = workload('compile');
  if (w === undefined) throw new Error('compile');
  const pager = shadow(spec, false); // the checker runs in the CLI test below
  const { port, kernel } = startWorkload({
    workload: w,
    params: { size: 0.05, seed: 3, vcpus: 2, memory: 256 * 2 ** 20, thp: false },
    mode: '4-level',
    pcid: true,
    pager,
    layout: 'scatter',
  });
  const r = migrate({
    domain: port.domain,
    cpus: port.cpus,
    guest: migratingGuest({ port, kernel }),
    logDirty: port.domain.logDirty,
    warmupOps: 200_000,
    opsPerPage: 66,
    maxRounds: 30,
    stopPages: 50,
    maxFactor: 3,
  });
  return { r, s: pager.stats() };
}

test('pre-copy migration with log-dirty: rounds shrink, the copy equals the source; cleaning blows the tables as Xen', () => {
  const { r, s } = migrateCompile('shadow');
  assert.ok(r.verified, `${r.destinationSha256} vs ${r.sourceSha256}`);
  assert.ok(r.rounds.length >= 2);
  assert.ok(r.pausePages < (r.rounds[0]?.pagesSent ?? 0), 'the pause copies less than a full copy');
  assert.ok(s['logdirty.pages_dirtied'] > 0);
  // Umbra's per-page revoke keeps the shadows: fewer are rebuilt than after Xen's blow-outs.
  const revoke = migrateCompile('shadow:+ldrevoke');
  assert.ok(revoke.r.verified);
  assert.equal(revoke.s['logdirty.cleans'], s['logdirty.cleans']);
  assert.ok(revoke.s.shadows_made < s.shadows_made, `${revoke.s.shadows_made} vs ${s.shadows_made}`);
});

test('umbra migrate and compare take pager specs; bad specs are one-line errors', () => {
  const ok = spawnSync(
    process.execPath,
    [cli, 'migrate', '--workload', 'server', '--size', '0.01', '--warmup', '20000', '--check', '--max-rounds', '4'],
    { encoding: 'utf8' },
  );
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /^verified {3}destination = source: sha256 [0-9a-f]{64}$/m);
  const stop = spawnSync(
    process.execPath,
    [cli, 'migrate', '--workload', 'ctxswitch', '--size', '0.01', '--warmup', '1000', '--pager', 'shadow:-logdirty'],
    { encoding: 'utf8' },
  );
  assert.equal(stop.status, 0, stop.stderr);
  assert.match(stop.stdout, /stop-and-copy/);
  // Bare metal cannot track dirty pages: the domain's log-dirty mode has no pager half.
  const native = spawnSync(
    process.execPath,
    [cli, 'migrate', '--workload', 'ctxswitch', '--size', '0.01', '--pager', 'native'],
    { encoding: 'utf8' },
  );
  assert.equal(native.status, 2);
  assert.equal(
    native.stderr,
    'umbra: --pager native: this pager cannot track dirty pages; migration needs log-dirty mode\n',
  );
  const cmp = spawnSync(
    process.execPath,
    [cli, 'compare', '--workload', 'ctxswitch', '--size', '0.01', '--pagers', 'shadow,shadow:-oos', '--json'],
    { encoding: 'utf8' },
  );
  assert.equal(cmp.status, 0, cmp.stderr);
  assert.deepEqual(JSON.parse(cmp.stdout).pagers, ['shadow', 'shadow:-oos']);
  const pooled = spawnSync(
    process.execPath,
    [cli, 'run', '--workload', 'ctxswitch', '--size', '0.01', '--pager', 'shadow', '--shadow-pool', '64', '--stats'],
    { encoding: 'utf8' },
  );
  assert.equal(pooled.status, 0, pooled.stderr);
  assert.match(pooled.stderr, /^shadow\.pool\.frames\s+64$/m);
  assert.match(pooled.stderr, /^shadow\.pool\.evictions\s+[1-9]/m);
  const bad = spawnSync(process.execPath, [cli, 'run', '--workload', 'ctxswitch', '--pager', 'shadow:-nope'], {
    encoding: 'utf8',
  });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /^umbra: --pager: unknown shadow optimization "nope"/);
  assert.equal(bad.stderr.trim().split('\n').length, 1);
});
