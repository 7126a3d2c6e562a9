/** End-to-end tests of `umbra exec`: validation errors, stdin, statistics. */
import './support/node.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PAGERS } from '../src/pagers/registry.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'dist/src/cli/main.js');
const umbra = (args: string[], input?: string) =>
  spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', input });

const M = '{"op":"machine","vcpus":2,"memory":"0x100000"}';

const invalid: Array<[string, string]> = [
  ['{"op":"read","va":0,"size":4,"cpl":0}', '-:1: the first operation must be "machine"'],
  [`${M}\n{"op":"read","va":0,"size":3,"cpl":0}`, '-:2: "size" must be 1, 2, 4 or 8'],
  [`${M}\n{"op":"read","va":"0xffe","size":4,"cpl":0}`, '-:2: "va" + "size" crosses a 4 KiB page boundary'],
  [`${M}\n{"op":"write","va":0,"size":1,"value":256,"cpl":0}`, '-:2: "value" does not fit in 1 bytes'],
  [`${M}\n{"op":"read","va":0,"size":4}`, '-:2: missing key "cpl" for op "read"'],
  [`${M}\n{"op":"read","va":0,"size":4,"cpl":0,"x":1}`, '-:2: unknown key "x" for op "read"'],
  [`${M}\n{"op":"jump"}`, '-:2: unknown op "jump"'],
  [`${M}\n{"op":"cpu","vcpu":2}`, '-:2: "vcpu" must be between 0 and 1'],
  [`${M}\n\n# comment\n{"op":"read","va":"0xg","size":4,"cpl":0}`, '-:4: "va": "0xg" is not a "0x..." hex integer'],
  [
    `${M}\n{"op":"read","va":9007199254740992,"size":4,"cpl":0}`,
    '-:2: "va": numbers at or above 2^53 must be written as "0x..." strings',
  ],
  [
    `${M}\n{"op":"read","va":"0x10000000000000000","size":4,"cpl":0}`,
    '-:2: "va": 0x10000000000000000 does not fit in 64 bits',
  ],
  [`${M}\n{"op":"wrcr","reg":"cr2","value":0}`, '-:2: "reg" must be "cr0", "cr3" or "cr4"'],
  [`${M}\n{"op":"dump","gpa":0,"length":65537}`, '-:2: "length" must be at most 65536'],
  [`${M}\n{"op":"read",`, '-:2: not valid JSON'],
  [
    '{"op":"machine","vcpus":1,"memory":"0x1001"}',
    '-:1: "memory" must be a non-zero multiple of 4096 no larger than 2^40',
  ],
  ['{"op":"machine","vcpus":65,"memory":"0x1000"}', '-:1: "vcpus" must be between 1 and 64'],
  ['{"op":"machine","vcpus":1,"memory":"0x1000","maxphyaddr":53}', '-:1: "maxphyaddr" must be between 32 and 52'],
  [`${M}\n${M}`, '-:2: "machine" may appear only once, on the first line'],
];

for (const [text, message] of invalid) {
  test(`invalid scenario is rejected before running: ${message}`, () => {
    const r = umbra(['exec', '-'], `${text}\n{"op":"pwrite","gpa":0,"size":1,"value":1}\n`);
    assert.equal(r.status, 2);
    assert.equal(r.stdout, '', 'nothing runs');
    assert.equal(r.stderr.split('\n').length, 2, 'one line');
    assert.ok(r.stderr.startsWith(`umbra: ${message}`), r.stderr);
  });
}

test('an empty scenario is an error', () => {
  const r = umbra(['exec', '-'], '# nothing here\n\n');
  assert.equal(r.status, 2);
  assert.equal(r.stderr, 'umbra: -:3: no "machine" line: empty scenario\n');
});

test('unbacked guest-physical memory reads as all ones and discards writes', () => {
  const r = umbra(
    ['exec', '-'],
    `${M}\n{"op":"pwrite","gpa":"0x100000","size":4,"value":"0x12345678"}\n{"op":"pread","gpa":"0x100000","size":4}\n{"op":"dump","gpa":"0xffffe","length":4}\n`,
  );
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines[0], '{"i":2,"ok":true}');
  assert.equal(lines[1], '{"i":3,"value":"0xffffffff"}');
  assert.equal(lines[2], '{"i":4,"bytes":"0000ffff"}');
  // Memory that is all zero does not enter the hash: the SHA-256 of nothing.
  assert.match(lines[3] ?? '', /"memory_sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"/);
  assert.match(lines[3] ?? '', /"vcpus":\[\{"cr0":"0x11","cr3":"0x0","cr4":"0x0","efer":"0x0"\},\{"cr0":"0x11"/);
});

test('memory hash follows the spec: gfn (8 bytes LE) then the 4096 bytes, ascending gfn', async () => {
  const { createHash } = await import('node:crypto');
  const r = umbra(
    ['exec', '-'],
    `${M}\n{"op":"pwrite","gpa":"0x3004","size":4,"value":"0x1"}\n{"op":"pwrite","gpa":"0x1000","size":1,"value":"0x2"}\n`,
  );
  const h = createHash('sha256');
  for (const [gfn, off, byte] of [
    [1, 0, 2],
    [3, 4, 1],
  ] as const) {
    const key = Buffer.alloc(8);
    key.writeUInt32LE(gfn, 0);
    const page = Buffer.alloc(4096);
    page[off] = byte;
    h.update(key);
    h.update(page);
  }
  assert.ok(r.stdout.includes(`"memory_sha256":"${h.digest('hex')}"`), r.stdout);
});

test('--stats goes to stderr and --stats-json to a file, never to stdout', () => {
  const dir = mkdtempSync(join(tmpdir(), 'umbra-'));
  const json = join(dir, 's.json');
  const file = join(root, 'examples/long-mode-4level.jsonl');
  const plain = umbra(['exec', file]);
  const r = umbra(['exec', file, '--stats', '--stats-json', json]);
  assert.equal(r.status, 0);
  assert.equal(r.stdout, plain.stdout);
  assert.match(r.stderr, /tlb_hits/);
  const s = JSON.parse(readFileSync(json, 'utf8'));
  assert.deepEqual(s.pager, { name: 'native', spec: 'native', counters: {} });
  assert.equal(s.run.scenario, file);
  assert.equal(s.run.layout, 'identity');
  assert.match(s.digest, /^[0-9a-f]{64}$/);
  assert.equal(s.cpu.page_faults, 3);
  assert.equal(s.cpu.gp_faults, 1);
  assert.ok(s.cpu.walks > 0 && s.cpu.memory_refs_per_walk >= 2 && s.cpu.memory_refs_per_walk <= 4);
  // The same figure has the same key whatever the pager spec.
  const sh = umbra(['exec', file, '--pager', 'shadow:-oos', '--stats-json', json]);
  assert.equal(sh.status, 0);
  const t = JSON.parse(readFileSync(json, 'utf8'));
  assert.equal(t.pager.spec, 'shadow:-oos');
  assert.equal(t.pager.name, 'shadow');
  assert.ok(t.pager.counters['exit.page_fault'] > 0);
  assert.equal(t.digest, s.digest, 'the guest saw the same under both pagers');
});

test('bad options and missing files end in one line with status 2', () => {
  for (const args of [
    ['exec', '/no/such/file'],
    ['exec', '-', '--tlb', '4k=3x2'],
    ['exec', '-', '--seed', 'x'],
  ]) {
    const r = umbra(args, `${M}\n`);
    assert.equal(r.status, 2, args.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.doesNotMatch(r.stderr, /at .*\.js:\d+/);
  }
});

test('a scenario from a file works the same as from stdin', () => {
  const dir = mkdtempSync(join(tmpdir(), 'umbra-'));
  const f = join(dir, 'a.jsonl');
  const text = `${M}\n{"op":"pwrite","gpa":8,"size":8,"value":"0xffffffffffffffff"}\n{"op":"pread","gpa":8,"size":8}\n`;
  writeFileSync(f, text);
  assert.equal(umbra(['exec', f]).stdout, umbra(['exec', '-'], text).stdout);
  assert.match(umbra(['exec', f]).stdout, /"value":"0xffffffffffffffff"/);
});

test('exec refuses a shadow pool too small for the vCPUs in one line, exit 2, before running', () => {
  const text = '{"op":"machine","vcpus":20,"memory":"0x100000"}\n{"op":"read","va":"0x0","size":4,"cpl":0}\n';
  const r = umbra(['exec', '-', '--pager', 'shadow:pool=64'], text);
  assert.equal(r.status, 2);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr, 'umbra: a shadow pool of 64 frames is too small for 20 vCPUs: at least 176\n');
  const ok = umbra(['exec', '-', '--pager', 'shadow', '--shadow-pool', '176', '--check'], text);
  assert.equal(ok.status, 0, ok.stderr);
});

test('umbra counters lists exactly the counters runs report, under every pager', () => {
  const decls = JSON.parse(umbra(['counters', '--json']).stdout) as Array<{
    group: string;
    counters: Array<{ name: string }>;
  }>;
  const names = (g: string): string[] => (decls.find((d) => d.group === g)?.counters ?? []).map((c) => c.name).sort();
  const dir = mkdtempSync(join(tmpdir(), 'umbra-'));
  const json = join(dir, 'c.json');
  for (const pager of PAGERS.map((k) => k.name)) {
    const r = umbra(['exec', join(root, 'examples/shadow-cache-cr3.jsonl'), '--pager', pager, '--stats-json', json]);
    assert.equal(r.status, 0, r.stderr);
    const doc = JSON.parse(readFileSync(json, 'utf8'));
    assert.deepEqual(Object.keys(doc.cpu).sort(), names('cpu'), 'cpu counters');
    assert.deepEqual(Object.keys(doc.pager.counters).sort(), names(pager), `${pager} counters`);
  }
  const bad = umbra(['counters', '--pager', 'nope']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /^umbra: --pager: unknown pager "nope"/);
});
