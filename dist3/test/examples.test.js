/**
 * The commented scenarios in examples/ run through the real CLI and must print
 * exactly their .expected output (each expectation was worked out by hand from
 * the SDM; see the comments in the scenario), under every placement and TLB,
 * and under every registered pager (checked).
 */
import './support/node.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { defaultSpecs } from '../src/pagers/registry.js';
const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'dist/src/cli/main.js');
const dir = join(root, 'examples');
for (const name of readdirSync(dir).filter((f) => f.endsWith('.jsonl'))) {
    const expected = readFileSync(join(dir, name.replace(/\.jsonl$/, '.expected')), 'utf8');
    const runs = [
        [],
        ['--layout', 'scatter', '--seed', '7'],
        ['--tlb', 'off'],
        ...defaultSpecs().map((spec) => ['--pager', spec, '--check']),
    ];
    for (const extra of runs) {
        // pcid-switch shows a stale TLB entry on purpose (not well behaved), so only a TLB can reproduce it.
        if (name === 'pcid-switch.jsonl' && (extra.includes('off') || extra.includes('--pager')))
            continue;
        test(`examples/${name} ${extra.join(' ')}`, () => {
            const r = spawnSync(process.execPath, [cli, 'exec', join(dir, name), ...extra], { encoding: 'utf8' });
            assert.equal(r.status, 0, r.stderr);
            assert.equal(r.stdout, expected);
        });
    }
}
//# sourceMappingURL=examples.test.js.map