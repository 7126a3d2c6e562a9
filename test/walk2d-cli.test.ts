/**
 * End-to-end tests of the 2-D walk views: `umbra translate IMAGE VA
 * --nested` on the bundled real image, and `umbra exec --trace-walks`.
 */
import './support/node.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { unxzFile } from '../src/import/xz.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'dist/src/cli/main.js');
const FIXTURE = join(root, 'fixtures/x86_64-4level-2');
const REGS0 = join(FIXTURE, 'registers-cpu0.txt');
const tmp = mkdtempSync(join(tmpdir(), 'umbra-walk2d-test-'));
const PLAIN = join(tmp, 'dump.elf');
const SCENARIO = join(root, 'examples/long-mode-4level.jsonl');

const umbra = (...args: string[]) =>
  spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });

before(async () => writeFileSync(PLAIN, await unxzFile(join(FIXTURE, 'dump.elf.xz'))));
after(() => rmSync(tmp, { recursive: true, force: true }));

const translate = (...extra: string[]) =>
  umbra('translate', PLAIN, '0x401000', '--cpl', '3', '--registers', REGS0, '--nested', ...extra);

test('translate --nested without caches: the 24-reference grid of a real guest, 29 on 5-level NPT', () => {
  const r = translate('nested:-large:-pwc');
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.split('\n');
  assert.match(lines[1] ?? '', /gPA\s+EPT PML4E\s+EPT PDPTE\s+EPT PDE\s+EPT PTE\s+guest entry/);
  assert.match(lines[2] ?? '', /^ {2}PML4E\s+0x62e6000\s+1\s+2\s+3\s+4\s+5$/);
  assert.match(lines[6] ?? '', /^ {2}page\s+0x4413000\s+21\s+22\s+23\s+24$/);
  assert.ok(lines.includes('  24 memory references'));
  // 24 numbered references, each with where it was read and the entry.
  assert.equal(lines.filter((l) => /^ {2}(\s\d|\d\d) {2}\S/.test(l)).length, 24);
  assert.match(r.stdout, /guest-physical 0x4413000 -> host-physical 0x4413000/);
  const npt = translate('nested:npt:levels=5:-large:-pwc');
  assert.equal(npt.status, 0, npt.stderr);
  assert.match(npt.stdout, /on 5-level NPT/);
  assert.ok(npt.stdout.includes('  29 memory references\n'), '(4+1)(5+1)-1');
});

test('translate --nested: a scattered placement moves the host frames, the guest sees the same walk', () => {
  const r = translate('nested:-pwc', '--layout', 'scatter', '--seed', '7');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /scatter placement \(seed 7\)/);
  assert.ok(r.stdout.includes('  24 memory references\n'), 'no stage-2 superpages when frames are scattered');
  const m = /guest-physical 0x4413000 -> host-physical (0x[0-9a-f]+)/.exec(r.stdout);
  assert.ok(m !== null);
  assert.notEqual(m[1], '0x4413000');
  assert.match(r.stdout, /PTE 0x6305000\[1\] = 0x0000000004413025/);
});

test('translate --nested, warm caches: one reference, the rest served by the caches', () => {
  const r = translate('nested', '--warm');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /warm paging-structure caches/);
  assert.ok(r.stdout.includes('  1 memory references; the guest walk started below a cached PDE'));
  assert.match(r.stdout, /\n {2}page\s+0x4413000\s+NTLB/);
});

test('translate --nested refuses bad requests in one line, exit status 2', () => {
  for (const args of [
    ['translate', PLAIN, '0x401000', '--nested', 'nested:bogus'],
    ['translate', PLAIN, '0x401000', '--warm'],
    ['translate', PLAIN, '0x401000', '--nested', '--root', 'twin'],
    ['translate', PLAIN, '0x401000', '--nested', '--layout', 'sideways'],
    ['translate', PLAIN, '0x401000', '--nested', 'nested:pwc=1,2'],
  ]) {
    const r = umbra(...args);
    assert.equal(r.status, 2, args.join(' '));
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^umbra: [^\n]+\n$/, args.join(' '));
  }
});

test('exec --trace-walks: every walk to stderr or a file; stdout is what it is without', () => {
  for (const pager of ['native', 'shadow', 'nested', 'nested:-pwc']) {
    const plain = umbra('exec', SCENARIO, '--pager', pager);
    assert.equal(plain.status, 0);
    const traced = umbra('exec', SCENARIO, '--pager', pager, '--trace-walks');
    assert.equal(traced.status, 0);
    assert.equal(traced.stdout, plain.stdout, pager);
    assert.match(traced.stderr, /^vCPU 0 read 0x0000000000000008: /);
    const file = join(tmp, `walks-${pager}.txt`);
    const toFile = umbra('exec', SCENARIO, '--pager', pager, '--trace-walks', file);
    assert.equal(toFile.stdout, plain.stdout);
    assert.equal(toFile.stderr, '');
    assert.equal(readFileSync(file, 'utf8'), traced.stderr, pager);
    if (pager.startsWith('nested')) assert.match(traced.stderr, /EPT PML4E/);
    else assert.match(traced.stderr, /\n {2}PML4E {2}1 {2}0x/);
  }
  const bad = umbra('exec', SCENARIO, '--trace-walks', join(tmp, 'no/such/dir/walks.txt'));
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /^umbra: --trace-walks [^\n]+\n$/);
});
