/** `umbra exec --trace-walks [FILE]`: every hardware walk of a run, to stderr or a file (stdout stays the guest's). */
import { closeSync, openSync, writeSync } from 'node:fs';
import type { Pager } from '../hypervisor/pager.js';
import { traceWalk } from '../inspect/walk2d.js';
import { UsageError } from './errors.js';

/**
 * Make `pager` tell each vCPU's MMU to report its walks once it attaches
 * (the vCPUs exist only then). Returns the function that closes the file.
 */
export function traceWalks(pager: Pager, to: string | true): () => void {
  let fd = 2;
  if (to !== true) {
    try {
      fd = openSync(to, 'w');
    } catch (e) {
      throw new UsageError(`--trace-walks ${to}: ${(e as Error).message}`);
    }
  }
  const attach = pager.attach.bind(pager);
  pager.attach = (domain, cpus) => {
    attach(domain, cpus);
    for (const c of cpus) {
      const mmu = c.mmu;
      mmu.walkObserver = (vaHi, vaLo, access, outcome) => {
        writeSync(fd, traceWalk(mmu, c.index, vaHi, vaLo, access, outcome));
      };
    }
  };
  return () => {
    if (fd !== 2) closeSync(fd);
  };
}
