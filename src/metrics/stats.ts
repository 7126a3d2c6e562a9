/**
 * Run statistics: every counter a user may want, gathered after a run, as a
 * flat name -> number record (for --stats-json) and as aligned text (--stats).
 */
import type { Cpu } from '../arch/x86/cpu.js';
import type { Pager } from '../hypervisor/pager.js';

export type Stats = Record<string, number | string>;

export function collectStats(pager: Pager, cpus: Cpu[], ops: number, seconds: number): Stats {
  const s: Stats = {
    pager: pager.name,
    ops,
    seconds: round(seconds),
    ops_per_second: Math.round(ops / Math.max(seconds, 1e-9)),
  };
  const sum = (f: (c: Cpu) => number): number => cpus.reduce((a, c) => a + f(c), 0);
  s.reads = sum((c) => c.counters.reads);
  s.writes = sum((c) => c.counters.writes);
  s.fetches = sum((c) => c.counters.fetches);
  s.page_faults = sum((c) => c.counters.pageFaults);
  s.gp_faults = sum((c) => c.counters.gpFaults);
  s.cr3_writes = sum((c) => c.counters.cr3Writes);
  s.invlpg = sum((c) => c.counters.invlpg);
  s.invpcid = sum((c) => c.counters.invpcid);
  const hits = sum((c) => c.tlb.hits);
  const misses = sum((c) => c.tlb.misses);
  s.tlb_hits = hits;
  s.tlb_misses = misses;
  s.tlb_hit_rate = hits + misses === 0 ? 0 : round(hits / (hits + misses));
  s.tlb_fills = sum((c) => c.tlb.fills);
  s.tlb_flushes = sum((c) => c.tlb.flushes);
  const walks = sum((c) => c.walker.walks);
  const refs = sum((c) => c.walker.entryReads);
  s.walks = walks;
  s.walk_entry_reads = refs;
  s.memory_refs_per_walk = walks === 0 ? 0 : round(refs / walks);
  for (const [k, v] of Object.entries(pager.stats())) s[`${pager.name}.${k}`] = v;
  return s;
}

function round(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}

export function formatStats(s: Stats): string {
  const w = Math.max(...Object.keys(s).map((k) => k.length));
  return `${Object.entries(s)
    .map(([k, v]) => `${k.padEnd(w)}  ${typeof v === 'number' ? v.toLocaleString('en-US') : v}`)
    .join('\n')}\n`;
}
