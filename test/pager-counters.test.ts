/**
 * Pagers' counters are known to the rest of Umbra only by their declarations
 * (`CounterDecl`, pagers/registry.ts): every registered pager's stats()
 * reports exactly what it declares, from the first run on; the cost model,
 * the comparison table, the plot and the run summary price and print any
 * pager's counters from the declarations alone (a made-up pager with names
 * of its own is priced and reported here); and metrics/ and cli/ name no
 * registered pager's counter.
 */
import './support/node.js';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import type { CounterDecl } from '../src/hypervisor/pager.js';
import { compareRows, renderText } from '../src/metrics/compare.js';
import { DEFAULT_COSTS, declaredCounters, exitCauses, modelCycles } from '../src/metrics/costs.js';
import { partGroup, plotData } from '../src/metrics/plot.js';
import { pagerSummary, type Stats } from '../src/metrics/stats.js';
import { createPager, PAGERS } from '../src/pagers/registry.js';
import { runText } from './support/run.js';
import { NATIVE, SHADOW } from './support/stats.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

test('every variant of every registered pager reports exactly its declared counters, each from the start', () => {
  // A short guest that exits for every reason but meets no pool pressure: counters made on first use would be missing.
  const text = readFileSync(join(root, 'examples/shadow-cache-cr3.jsonl'), 'utf8');
  for (const kind of PAGERS) {
    const names = kind.counters.map((c) => c.name);
    assert.equal(new Set(names).size, names.length, `${kind.name}: a counter declared twice`);
    for (const c of kind.counters) {
      assert.ok(c.description.length > 10, `${c.name} has no description`);
      assert.equal(c.kind === 'exit', c.name.startsWith('exit.'), `${kind.name}: ${c.name} is of kind ${c.kind}`);
    }
    for (const spec of kind.variants(1)) {
      const pager = createPager(spec);
      runText(text, { pager });
      const stats = pager.stats();
      assert.deepEqual(Object.keys(stats).sort(), [...names].sort(), spec);
      for (const [k, v] of Object.entries(stats)) assert.ok(Number.isFinite(v), `${spec}: ${k} = ${v}`);
    }
  }
});

test('every declared price names a unit of the cost model; a part is of one category', () => {
  for (const kind of PAGERS) {
    const category = new Map<string, string>();
    for (const c of kind.counters) {
      for (const ch of c.cost ?? []) {
        assert.ok(Object.hasOwn(DEFAULT_COSTS, ch.unit), `${c.name}: ${ch.unit}`);
        assert.equal(category.get(ch.part) ?? ch.category, ch.category, `${kind.name}: part ${ch.part}`);
        category.set(ch.part, ch.category);
      }
    }
  }
});

/**
 * A pager Umbra does not have (say, an agile-paging one), with names of its own,
 * declared in an order unlike the model's: handler work on an exit, a part
 * priced in two units with a refinement taken off (weight -1), emulation,
 * upkeep and flushes, a summary line and table rows.
 */
const NESTED: readonly CounterDecl[] = [
  {
    name: 'ept.invepts',
    kind: 'count',
    description: 'INVEPT executed by the hypervisor',
    cost: [{ unit: 'shootdown', part: 'invept', category: 'shootdown' }],
    report: { summary: { line: 'ept', text: 'INVEPTs' } },
  },
  {
    name: 'ept.tables_made',
    kind: 'count',
    description: 'EPT table frames made',
    cost: [{ unit: 'shadow_make', part: 'ept_upkeep', category: 'upkeep' }],
    report: { row: { key: 'ept_tables', label: 'EPT tables made' }, summary: { line: 'ept', text: 'tables made' } },
  },
  {
    name: 'mmio.emulated',
    kind: 'count',
    description: 'MMIO accesses emulated on an EPT misconfiguration',
    cost: [{ unit: 'emulate_insn', part: 'emulation.mmio', category: 'emulation' }],
  },
  {
    name: 'vmexits',
    kind: 'count',
    description: 'VM exits of every reason',
    totalOf: 'exit',
    report: { row: { key: 'exits', label: 'VM exits' }, summary: { line: 'exits' } },
  },
  {
    name: 'exit.ept_violation',
    kind: 'exit',
    description: 'exits on an EPT violation',
    cost: [{ unit: 'shadow_fault_fix', part: 'handler.ept', category: 'handler' }],
  },
  { name: 'exit.ept_misconfig', kind: 'exit', description: 'exits on an EPT misconfiguration' },
  {
    name: 'ept.quick_fixes',
    kind: 'count',
    description: 'EPT violations fixed without a walk: among those above, priced as fast faults instead',
    cost: [
      { unit: 'fast_fault', part: 'handler.ept', category: 'handler' },
      { unit: 'shadow_fault_fix', part: 'handler.ept', category: 'handler', weight: -1 },
    ],
  },
];

const RUN: Stats = {
  pager: 'madeup:big',
  ops: 100,
  tlb_hits: 10,
  'madeup:big.ept.invepts': 2,
  'madeup:big.ept.tables_made': 4,
  'madeup:big.mmio.emulated': 1,
  'madeup:big.vmexits': 12,
  'madeup:big.exit.ept_violation': 7,
  'madeup:big.exit.ept_misconfig': 3,
  'madeup:big.ept.quick_fixes': 5,
  'madeup:big.tlb_shootdowns': 1000, // another pager's name, not declared by this one: not priced
};
const decls = (spec: string): readonly CounterDecl[] => (spec.startsWith('madeup') ? NESTED : declaredCounters(spec));

test("a pager's own counters are priced by their declarations, parts in the model's order", () => {
  const c = DEFAULT_COSTS;
  const m = modelCycles(RUN, c, NESTED);
  assert.deepEqual(Object.entries(m.parts), [
    ['tlb_hit_ops', 10 * c.tlb_hit],
    ['exit.ept_violation', 7 * c.vm_exit],
    ['exit.ept_misconfig', 3 * c.vm_exit],
    ['exit.other', 2 * c.vm_exit],
    ['handler.ept', (7 - 5) * c.shadow_fault_fix + 5 * c.fast_fault],
    ['emulation.mmio', c.emulate_insn],
    ['ept_upkeep', 4 * c.shadow_make],
    ['invept', 2 * c.shootdown],
  ]);
  assert.equal(
    m.total,
    Object.values(m.parts).reduce((a, b) => a + b, 0),
  );
  assert.deepEqual(exitCauses(RUN, NESTED), ['ept_violation', 'ept_misconfig']);
  // Unregistered and no declarations given: the CPU's figures only.
  assert.deepEqual(modelCycles(RUN).parts, { tlb_hit_ops: 10 * c.tlb_hit });
});

test("a pager's own counters are reported by their declarations: table rows, summary, plot", () => {
  const cmp = compareRows([NATIVE, SHADOW, RUN], DEFAULT_COSTS, { counters: decls });
  const row = (key: string) => cmp.rows.find((r) => r.key === key);
  // The same row from differently named counters: shadow's exits, nested's vmexits.
  assert.deepEqual(row('exits')?.values, [null, 40, 12]);
  assert.equal(row('exits')?.label, 'VM exits');
  assert.deepEqual(row('exits.ept_violation')?.values, [null, null, 7]);
  assert.deepEqual(row('exits.page_fault')?.values, [null, 30, null]);
  assert.deepEqual(row('ept_tables')?.values, [null, null, 4]);
  assert.equal(row('ept_tables')?.label, 'EPT tables made');
  assert.deepEqual(row('emulated_pt_writes')?.values, [null, 4, null]);
  assert.deepEqual(row('cycles.invept')?.values, [0, 0, 2 * DEFAULT_COSTS.shootdown]);
  assert.equal(row('cycles')?.values[2], modelCycles(RUN, DEFAULT_COSTS, NESTED).total);
  const keys = cmp.rows.map((r) => r.key);
  // Each exit total is followed by the causes of every run.
  assert.deepEqual(keys.slice(keys.indexOf('exits'), keys.indexOf('exits') + 8), [
    'exits',
    'exits.page_fault',
    'exits.cr_write',
    'exits.invlpg',
    'exits.invpcid',
    'exits.ept_violation',
    'exits.ept_misconfig',
    'emulated_pt_writes',
  ]);
  assert.match(renderText(cmp), /\nEPT tables made +- +- +4\n/);

  assert.deepEqual(pagerSummary(RUN, NESTED), [
    ['ept', '2 INVEPTs, 4 tables made'],
    ['exits', '12 (ept_violation 7, ept_misconfig 3)'],
  ]);
  assert.deepEqual(pagerSummary(SHADOW), [
    ['exits', '40 (page_fault 30, cr_write 5, invlpg 3, invpcid 2)'],
    ['shadow', '4 emulated page-table writes, 6 shadow frames at peak'],
  ]);
  assert.deepEqual(pagerSummary(NATIVE), []);

  assert.equal(partGroup('invept', NESTED), 'TLB shootdowns');
  assert.equal(partGroup('ept_upkeep', NESTED), 'shadow table upkeep');
  assert.equal(partGroup('ept_upkeep'), 'other');
  const plot = plotData([NATIVE, RUN], DEFAULT_COSTS, { counters: decls });
  assert.deepEqual(plot.exits, [
    { pager: 'madeup:big', cause: 'ept_violation', exits: 7 },
    { pager: 'madeup:big', cause: 'ept_misconfig', exits: 3 },
  ]);
  assert.ok(plot.groups.includes('exit handlers') && plot.groups.includes('instruction emulation'));
});

/**
 * String literals of metrics/ and cli/ that may equal a counter's name,
 * because they mean something else there: file, literal, why.
 */
const NOT_COUNTERS: ReadonlyArray<[file: string, literal: string, why: string]> = [
  ['src/metrics/plot.ts', 'exits', "the chart's own data field (exits by cause)"],
  ['src/metrics/calibration.ts', 'guest.exits', "the guest kernel's process exits, not VM exits"],
];

test("metrics/ and cli/ name no registered pager's counter: they know them only by declaration", () => {
  const names = new Set(PAGERS.flatMap((k) => k.counters.map((c) => c.name)));
  const hits: string[] = [];
  for (const dir of ['src/metrics', 'src/cli']) {
    for (const f of readdirSync(join(root, dir)).filter((x) => x.endsWith('.ts'))) {
      const file = `${dir}/${f}`;
      const text = readFileSync(join(root, file), 'utf8');
      const src = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
      const visit = (node: ts.Node): void => {
        // String literals and the text parts of template literals ("${pager}.exit." is one too).
        if (
          ts.isStringLiteral(node) ||
          ts.isNoSubstitutionTemplateLiteral(node) ||
          ts.isTemplateHead(node) ||
          ts.isTemplateMiddle(node) ||
          ts.isTemplateTail(node)
        ) {
          const value = node.text;
          for (const n of names) {
            if (value !== n && !value.endsWith(`.${n}`)) continue;
            if (NOT_COUNTERS.some(([nf, nl]) => nf === file && nl === value)) continue;
            const { line } = src.getLineAndCharacterOfPosition(node.getStart());
            hits.push(`${file}:${line + 1}: ${JSON.stringify(value)}`);
          }
        }
        ts.forEachChild(node, visit);
      };
      visit(src);
    }
  }
  assert.deepEqual(hits, []);
});
