/** What a trace holds: one pass over its blocks, counting (for `umbra trace info`). */
import { type Machine, OP } from '../ops.js';
import { OP_NAME } from './format.js';
import type { TraceFile } from './reader.js';

export interface TraceSummary {
  file: string;
  version: number;
  machine: Machine;
  meta: Record<string, unknown>;
  ops: number;
  /** Operations by kind, in op-code order; kinds that do not occur are left out. */
  byKind: Record<string, number>;
  /** Operations run on each vCPU (the `cpu` switches themselves not counted). */
  byVcpu: number[];
  /** Accesses that have a privilege level (read, write, fetch) by CPL 0–3: 3 is user, 0 kernel. */
  byCpl: number[];
  blocks: number;
  rawBytes: number;
  compressedBytes: number;
  fileBytes: number;
  trailer: Record<string, unknown>;
}

export function summarizeTrace(t: TraceFile): TraceSummary {
  const kinds = new Array<number>(16).fill(0);
  const byVcpu = new Array<number>(t.machine.vcpus).fill(0);
  const byCpl = [0, 0, 0, 0];
  let vcpu = 0;
  let ops = 0;
  for (const s of t.blocks()) {
    for (let i = 0; i < s.count; i++) {
      const op = s.op[i] as number;
      kinds[op] = (kinds[op] as number) + 1;
      if (op === OP.cpu) {
        vcpu = s.small[i] as number;
        continue;
      }
      byVcpu[vcpu] = (byVcpu[vcpu] as number) + 1;
      if (op === OP.read || op === OP.write || op === OP.fetch) {
        const c = s.cpl[i] as number;
        byCpl[c] = (byCpl[c] as number) + 1;
      }
    }
    ops += s.count;
  }
  const byKind: Record<string, number> = {};
  kinds.forEach((n, op) => {
    if (n > 0) byKind[OP_NAME[op] as string] = n;
  });
  return {
    file: t.path,
    version: t.version,
    machine: t.machine,
    meta: t.meta,
    ops,
    byKind,
    byVcpu,
    byCpl,
    blocks: t.stats.blocks,
    rawBytes: t.stats.rawBytes,
    compressedBytes: t.stats.compressedBytes,
    fileBytes: t.fileBytes,
    trailer: t.trailer,
  };
}
