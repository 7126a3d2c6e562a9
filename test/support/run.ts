/** Test helpers: run a scenario text in-process and return its stdout text. */
import './node.js';
import type { TlbConfig } from '../../src/arch/x86/tlb.js';
import { runScenarioText } from '../../src/guest/scenario/run.js';
import type { Pager } from '../../src/hypervisor/pager.js';
import type { LayoutKind } from '../../src/machine/placement.js';
import { NativePager } from '../../src/pagers/native/native.js';

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
