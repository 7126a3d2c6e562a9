/** Test helpers: run a scenario text in-process and return its stdout text. */
import './node.js';
import assert from 'node:assert/strict';
import type { TlbConfig } from '../../src/arch/x86/tlb.js';
import { type GenMode, generateScenario } from '../../src/guest/scenario/generate.js';
import { runScenarioText } from '../../src/guest/scenario/run.js';
import type { Pager } from '../../src/hypervisor/pager.js';
import type { LayoutKind } from '../../src/machine/placement.js';
import { NativePager } from '../../src/pagers/native/native.js';
import { createPager } from '../../src/pagers/registry.js';

export interface RunSpec {
  layout?: LayoutKind;
  seed?: number;
  tlb?: TlbConfig;
  pager?: Pager;
  readOnly?: Array<[number, number]>;
}

export function runText(text: string, spec: RunSpec = {}): string {
  return runScenarioText(
    text,
    {
      pager: spec.pager ?? new NativePager(),
      readOnly: spec.readOnly,
      layout: spec.layout ?? 'identity',
      seed: spec.seed ?? 0,
      tlb: spec.tlb,
    },
    'test',
  );
}

/**
 * The transparency property for one generated scenario: the guest sees under
 * pager `spec` (checker on), in identity and in scattered placement, what it
 * sees natively. Now and then (seed % 8 = 0) a guest above 4 GiB, so
 * scattered frames (and PSE-36 pages) lie high; with `ro`, a read-only (ROM)
 * range over part of the data frames.
 */
export function assertTransparent(spec: string, mode: GenMode, seed: number, ops: number, ro: boolean): void {
  const text = generateScenario(seed, { mode, ops, memoryBytes: seed % 8 === 0 ? 0x180000000 : 0x800000 });
  const readOnly: Array<[number, number]> = ro ? [[0x300 + (seed % 0x100), 0x340 + (seed % 0x100)]] : [];
  const native = runText(text, { readOnly });
  assert.equal(runText(text, { pager: createPager(spec, { check: true }), readOnly }), native, `${spec}, identity`);
  const scattered = runText(text, { pager: createPager(spec, { check: true }), layout: 'scatter', seed, readOnly });
  assert.equal(scattered, native, `${spec}, scattered placement`);
}
