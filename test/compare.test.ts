/** The comparison table: rows, baseline, and the text, JSON and CSV renderings, cell by cell. */
import './support/node.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CompareError, compareRows, formatCell, renderCsv, renderJson, renderText } from '../src/metrics/compare.js';
import { DEFAULT_COSTS, modelCycles } from '../src/metrics/costs.js';
import { flatStats, type Stats, type StatsDocument } from '../src/metrics/stats.js';
import { NATIVE, SHADOW } from './support/stats.js';

/** Label -> cells of the rendered text table. */
function cells(text: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const line of text.trimEnd().split('\n').slice(1)) {
    const parts = line.split(/ {2,}/);
    m.set(parts[0] as string, parts.slice(1));
  }
  return m;
}

test('text: pagers as columns, native first, thousands separators, "-" where nothing applies', () => {
  const c = compareRows([SHADOW, NATIVE]); // native moves to the front
  assert.deepEqual(c.pagers, ['native', 'shadow']);
  assert.equal(c.baseline, 'native');
  const text = renderText(c);
  const lines = text.split('\n');
  assert.equal(lines[0], '                                 native    shadow');
  assert.equal(lines[1], 'guest operations                  1,000     1,000');
  assert.equal(lines[2], 'TLB hit rate                    94.74 %   93.75 %');
  assert.ok(text.endsWith('\n') && !text.endsWith('\n\n'));
  const t = cells(text);
  assert.deepEqual(t.get('page walks'), ['50', '60']);
  assert.deepEqual(t.get('memory refs per walk'), ['4', '4']);
  assert.deepEqual(t.get('VM exits'), ['-', '40']);
  assert.deepEqual(t.get('exits: page_fault'), ['-', '30']);
  assert.deepEqual(t.get('exits: cr_write'), ['-', '5']);
  assert.deepEqual(t.get('exits: invlpg'), ['-', '3']);
  assert.deepEqual(t.get('exits: invpcid'), ['-', '2']);
  assert.deepEqual(t.get('emulated page-table writes'), ['-', '4']);
  assert.deepEqual(t.get('shadow frames (peak)'), ['-', '6']);
  assert.deepEqual(t.get('guest page faults'), ['10', '10']);
  // 18,700 and 155,240: the arithmetic is checked part by part in costs.test.ts
  assert.deepEqual(t.get('modelled cycles'), ['18,700', '155,240']);
  // (155,240 - 18,700) / 18,700 = 730.16 %
  assert.deepEqual(t.get('overhead vs native'), ['0.0 %', '+730.2 %']);
  assert.deepEqual(t.get('cycles: walks'), ['9,600', '11,520']);
  assert.deepEqual(t.get('cycles: exit.page_fault'), ['0', '39,000']);
  assert.deepEqual(t.get('cycles: handler.fault_fixed'), ['0', '37,500']);
  assert.deepEqual(t.get('cycles: emulation.pt_write'), ['0', '12,000']);
  assert.deepEqual(t.get('cycles: shadow_upkeep'), ['0', '7,500']);
  assert.deepEqual(t.get('guest.processes'), ['3', '3']);
  assert.deepEqual(t.get('guest.page_faults.cow'), ['4', '4']);
  // Row order: the figures first, then the cycle breakdown, the guest counters last.
  const labels = [...t.keys()];
  assert.deepEqual(labels.slice(0, 14), [
    'guest operations',
    'TLB hit rate',
    'page walks',
    'memory refs per walk',
    'VM exits',
    'exits: page_fault',
    'exits: cr_write',
    'exits: invlpg',
    'exits: invpcid',
    'emulated page-table writes',
    'shadow frames (peak)',
    'guest page faults',
    'modelled cycles',
    'overhead vs native',
  ]);
  assert.deepEqual(labels.slice(-2), ['guest.processes', 'guest.page_faults.cow']);
});

test('every column sums its cycle parts to its modelled cycles', () => {
  const c = compareRows([NATIVE, SHADOW]);
  for (let i = 0; i < c.pagers.length; i++) {
    const total = c.rows.find((r) => r.key === 'cycles')?.values[i];
    const parts = c.rows.filter((r) => r.key.startsWith('cycles.')).reduce((a, r) => a + (r.values[i] ?? 0), 0);
    assert.equal(parts, total);
  }
});

test('JSON: raw numbers keyed by pager, null where nothing applies', () => {
  const j = JSON.parse(renderJson(compareRows([NATIVE, SHADOW])));
  assert.equal(j.baseline, 'native');
  assert.deepEqual(j.pagers, ['native', 'shadow']);
  const row = (key: string) => j.rows.find((r: { key: string }) => r.key === key);
  assert.deepEqual(row('ops').values, { native: 1000, shadow: 1000 });
  assert.deepEqual(row('tlb_hit_rate').values, { native: 0.9474, shadow: 0.9375 });
  assert.deepEqual(row('exits').values, { native: null, shadow: 40 });
  assert.deepEqual(row('cycles').values, { native: 18700, shadow: 155240 });
  assert.equal(row('overhead_percent').values.native, 0);
  assert.ok(Math.abs(row('overhead_percent').values.shadow - (136540 / 18700) * 100) < 1e-9);
  assert.equal(row('exits.page_fault').label, 'exits: page_fault');
  assert.equal(row('tlb_hit_rate').kind, 'ratio');
});

test('CSV: header, raw numbers, empty cells, quoted fields', () => {
  const csv = renderCsv(compareRows([NATIVE, SHADOW]));
  const lines = csv.split('\n');
  assert.equal(lines[0], 'key,label,native,shadow');
  assert.equal(lines[1], 'ops,guest operations,1000,1000');
  assert.equal(lines[2], 'tlb_hit_rate,TLB hit rate,0.9474,0.9375');
  assert.ok(lines.includes('exits,VM exits,,40'));
  assert.ok(lines.includes('cycles,modelled cycles,18700,155240'));
  assert.ok(lines.includes('guest.processes,guest.processes,3,3'));
  assert.equal(lines.at(-1), '');
  const odd = renderCsv(compareRows([NATIVE, { ...NATIVE, pager: 'a,"b"' }]));
  assert.equal(odd.split('\n')[0], 'key,label,native,"a,""b"""');
});

test('baseline: native by default, else the first run, or the one named', () => {
  assert.deepEqual(compareRows([SHADOW, SHADOW]).pagers, ['shadow', 'shadow (2)']);
  const named = compareRows([NATIVE, SHADOW], DEFAULT_COSTS, { baseline: 'shadow' });
  assert.deepEqual(named.pagers, ['shadow', 'native']);
  const t = cells(renderText(named));
  assert.deepEqual(t.get('overhead vs shadow'), ['0.0 %', '-88.0 %']);
  assert.throws(() => compareRows([NATIVE], DEFAULT_COSTS, { baseline: 'shadow' }), CompareError);
  assert.throws(() => compareRows([]), /nothing to compare/);
});

test('exit causes: the union over runs, in first-seen order; a run without a cause shows "-"', () => {
  const oos: Stats = {
    pager: 'shadow:-oos',
    ops: 1,
    'shadow:-oos.exits': 3,
    'shadow:-oos.exit.page_fault': 1,
    'shadow:-oos.exit.flush': 2,
  };
  const t = cells(renderText(compareRows([NATIVE, SHADOW, oos])));
  assert.deepEqual(t.get('VM exits'), ['-', '40', '3']);
  assert.deepEqual(t.get('exits: page_fault'), ['-', '30', '1']);
  assert.deepEqual(t.get('exits: flush'), ['-', '-', '2']);
  assert.deepEqual(t.get('guest operations'), ['1,000', '1,000', '1']);
  assert.deepEqual(t.get('guest.processes'), ['3', '3', '-']);
});

test('cell formats', () => {
  assert.equal(formatCell(1234567, 'count'), '1,234,567');
  assert.equal(formatCell(1234.5678, 'decimal'), '1,234.57');
  assert.equal(formatCell(0.5, 'ratio'), '50.00 %');
  assert.equal(formatCell(12345.67, 'percent'), '+12,345.7 %');
  assert.equal(formatCell(-0.01, 'percent'), '0.0 %');
  assert.equal(formatCell(0.01, 'percent'), '0.0 %');
  assert.equal(formatCell(-5, 'percent'), '-5.0 %');
  assert.equal(formatCell(null, 'count'), '-');
});

test('real runs through the CLI: the table reports the counters the runs produced', () => {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), 'umbra-compare-'));
  const runs = ['native', 'shadow'].map((pager) => {
    const out = join(dir, `${pager}.json`);
    const r = spawnSync(
      process.execPath,
      [
        join(root, 'dist/src/cli/main.js'),
        'exec',
        join(root, 'examples/long-mode-4level.jsonl'),
        '--pager',
        pager,
        '--stats-json',
        out,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    return flatStats(JSON.parse(readFileSync(out, 'utf8')) as StatsDocument);
  });
  const [native, shadow] = runs as [Stats, Stats];
  const c = compareRows(runs);
  const value = (key: string, col: number) => c.rows.find((r) => r.key === key)?.values[col];
  assert.equal(value('exits', 1), shadow['shadow.exits']);
  assert.equal(value('exits.page_fault', 1), shadow['shadow.exit.page_fault']);
  assert.equal(value('page_faults', 0), native.page_faults);
  assert.equal(value('page_faults', 1), native.page_faults, 'the guest sees the same faults');
  assert.equal(value('cycles', 0), modelCycles(native).total);
  assert.equal(value('cycles', 1), modelCycles(shadow).total);
  assert.ok((value('overhead_percent', 1) ?? 0) > 0);
});
