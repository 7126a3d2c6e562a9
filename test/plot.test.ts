/** The SVG chart: its data, and a rendering that is well-formed and names what it shows. */
import './support/node.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { partGroup, plotData, plotSpec, plotSvg } from '../src/metrics/plot.js';
import { NATIVE, SHADOW } from './support/stats.js';

/** Check that tags nest and close, attributes are quoted, and text holds no markup. */
function assertWellFormed(xml: string): void {
  const stack: string[] = [];
  const tag = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>/y;
  let i = xml.startsWith('<?xml') ? xml.indexOf('?>') + 2 : 0;
  let roots = 0;
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    const text = xml.slice(i, lt < 0 ? xml.length : lt);
    assert.ok(!/&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-f]+);)/i.test(text), `bare & in text near ${i}`);
    if (stack.length === 0) assert.equal(text.trim(), '', `text outside the root near ${i}`);
    if (lt < 0) break;
    tag.lastIndex = lt;
    const m = tag.exec(xml);
    assert.ok(m, `malformed tag at ${lt}: ${xml.slice(lt, lt + 80)}`);
    const [, close, name, , selfClose] = m;
    if (close) assert.equal(stack.pop(), name, `</${name}> at ${lt}`);
    else if (!selfClose) {
      if (stack.length === 0) roots++;
      stack.push(name as string);
    } else if (stack.length === 0) roots++;
    i = tag.lastIndex;
  }
  assert.deepEqual(stack, [], 'unclosed tags');
  assert.equal(roots, 1, 'one root element');
}

/** The text content of every <text> element. */
function texts(svg: string): string[] {
  return [...svg.matchAll(/<text\b[^>]*>([^<]*)<\/text>/g)].map((m) => m[1] as string);
}

test('plot data: cycles grouped by part, exits by cause, totals with overhead labels', () => {
  const d = plotData([SHADOW, NATIVE]);
  assert.deepEqual(d.pagers, ['native', 'shadow']);
  const get = (pager: string, group: string) => d.cycles.find((c) => c.pager === pager && c.group === group)?.cycles;
  assert.equal(get('native', 'TLB misses and page walks'), 600 + 200 * 48);
  assert.equal(get('shadow', 'VM exit round trips'), 40 * 1300);
  assert.equal(get('shadow', 'exit handlers'), 37500 + 10000 + 5000 + 1500 + 1000);
  assert.equal(get('native', 'VM exit round trips'), undefined);
  assert.deepEqual(
    d.exits.filter((e) => e.pager === 'shadow').map((e) => [e.cause, e.exits]),
    [
      ['page_fault', 30],
      ['cr_write', 5],
      ['invlpg', 3],
      ['invpcid', 2],
    ],
  );
  assert.deepEqual(d.totals, [
    { pager: 'native', cycles: 18700, label: 'baseline' },
    { pager: 'shadow', cycles: 155240, label: '+730.2 %' },
  ]);
  assert.equal(d.groups[0], 'TLB-hit operations');
  assert.equal(partGroup('exit.resync'), 'VM exit round trips');
  assert.equal(partGroup('something_new'), 'other');
});

test('plot spec: two charts sharing the pager axis', () => {
  const spec = plotSpec(plotData([NATIVE, SHADOW]), 'T') as { vconcat: unknown[]; title: { text: string } };
  assert.equal(spec.vconcat.length, 2);
  assert.equal(spec.title.text, 'T');
});

test('SVG: well-formed, names the pagers, the axes, the legends and the overhead', async () => {
  const svg = await plotSvg([NATIVE, SHADOW]);
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"[^>]* width="\d+" height="\d+"/);
  assert.ok(svg.trimEnd().endsWith('</svg>'));
  assertWellFormed(svg);
  const t = texts(svg);
  for (const want of [
    'native',
    'shadow',
    'pager',
    'modelled cycles',
    'VM exits',
    'part',
    'exit cause',
    'Modelled cycles by where they go',
    'VM exits by cause',
    'Umbra: pagers compared',
    'VM exit round trips',
    'page_fault',
    'baseline',
    '+730.2 %',
  ]) {
    assert.ok(t.includes(want), `no <text>${want}</text> in ${JSON.stringify(t)}`);
  }
  // The same input renders the same document.
  assert.equal(await plotSvg([NATIVE, SHADOW]), svg);
});

test('SVG: a single native run and a named baseline render too', async () => {
  const one = await plotSvg([NATIVE], undefined, { title: 'native & co <1>' });
  assertWellFormed(one);
  assert.ok(texts(one).includes('native &amp; co &lt;1&gt;'));
  const flipped = await plotSvg([NATIVE, SHADOW], undefined, { baseline: 'shadow' });
  assertWellFormed(flipped);
  assert.ok(texts(flipped).includes('-88.0 %'));
});
