/**
 * `umbra capture -- ls /` and then `umbra compare --program` on what it
 * wrote, with the real valgrind: the "works on a fresh machine
 * after the documented install step". CI installs valgrind (.ci/run) and
 * sets UMBRA_REQUIRE_VALGRIND=1, so there this test cannot pass without
 * running; elsewhere it runs when valgrind is installed.
 */
import './support/node.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openProgram } from '../src/io/program.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'dist/src/cli/main.js');
const haveValgrind = spawnSync('sh', ['-c', 'command -v valgrind']).status === 0;
const required = process.env.UMBRA_REQUIRE_VALGRIND === '1';

test('capture -- ls /, then compare --program on the capture', { skip: !haveValgrind && !required }, () => {
  assert.ok(haveValgrind, 'UMBRA_REQUIRE_VALGRIND=1 but valgrind is not installed (apt-get install valgrind)');
  const dir = mkdtempSync(join(tmpdir(), 'umbra-capture-e2e-'));
  const file = join(dir, 'ls.ump');
  const cap = spawnSync(process.execPath, [cli, 'capture', '-o', file, '--', 'ls', '/'], { encoding: 'utf8' });
  assert.equal(cap.status, 0, cap.stderr);
  assert.match(cap.stdout + cap.stderr, /captured ls \/: 1 process\(es\), 0 extra thread\(s\), [\d,]+ page accesses/);
  const f = openProgram(file);
  assert.equal(f.streams.length, 1);
  assert.ok((f.streams[0]?.accesses ?? 0) > 100_000, 'ls makes hundreds of thousands of accesses');
  const cmp = spawnSync(process.execPath, [cli, 'compare', '--program', file, '--pagers', 'native,shadow,nested'], {
    encoding: 'utf8',
  });
  assert.equal(cmp.status, 0, cmp.stderr);
  assert.match(cmp.stdout, /guest-visible output identical under native, shadow, nested/);
});
