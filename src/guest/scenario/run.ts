/**
 * The scenario runner: drives a domain's vCPUs through a parsed scenario via
 * the guest port, which produces exactly the output the spec defines (one
 * JSON line per observable event, then the final state). Statistics never go
 * to the output.
 */
import type { Cpu } from '../../arch/x86/cpu.js';
import type { Domain } from '../../hypervisor/domain.js';
import { GuestPort, type PortOptions } from '../port.js';
import { OP, parseScenario, type Scenario } from './parse.js';

export type RunOptions = PortOptions;

export interface RunResult {
  domain: Domain;
  cpus: Cpu[];
  ops: number;
  seconds: number;
  /** The digest of what the guest observed (GuestPort.digest), when asked for with `digest`. */
  digest: string;
}

export function runScenario(s: Scenario, opts: RunOptions): RunResult {
  const port = new GuestPort(s.machine, opts);
  const t0 = performance.now(); // a global in Node and browsers alike
  runOps(port, s);
  const seconds = (performance.now() - t0) / 1e3;
  port.finish();
  return { domain: port.domain, cpus: port.cpus, ops: s.count, seconds, digest: port.digest };
}

/** Parse and run a scenario text; returns what `umbra exec` would print (ASCII). */
export function runScenarioText(text: string, opts: Omit<RunOptions, 'out'>, file = 'scenario'): string {
  const chunks: Uint8Array[] = [];
  runScenario(parseScenario(text, file), { ...opts, out: (c) => chunks.push(c.slice()) });
  const ascii = new TextDecoder();
  return chunks.map((c) => ascii.decode(c)).join('');
}

/**
 * Run a batch of operations (a whole scenario, or one block of a trace)
 * through the port. Line numbers come from the batch unless the port counts
 * them itself.
 */
export function runOps(port: GuestPort, s: Scenario): void {
  const n = s.count;
  const { op, line, small, cpl, aHi, aLo, vHi, vLo } = s;
  const fileLines = !port.autoLine;
  for (let i = 0; i < n; i++) {
    if (fileLines) port.line = line[i] as number;
    switch (op[i]) {
      case OP.cpu:
        port.selectCpu(small[i] as number);
        break;
      case OP.wrcr:
        port.wrcr(small[i] as number, vHi[i] as number, vLo[i] as number);
        break;
      case OP.wrmsr:
        port.wrmsrEfer(vHi[i] as number, vLo[i] as number);
        break;
      case OP.wrpkru:
        port.wrpkru(vLo[i] as number);
        break;
      case OP.setac:
        port.setac(small[i] as number);
        break;
      case OP.read:
        port.read(aHi[i] as number, aLo[i] as number, small[i] as number, cpl[i] as number);
        break;
      case OP.write:
        port.write(
          aHi[i] as number,
          aLo[i] as number,
          small[i] as number,
          vHi[i] as number,
          vLo[i] as number,
          cpl[i] as number,
        );
        break;
      case OP.fetch:
        port.fetch(aHi[i] as number, aLo[i] as number, cpl[i] as number);
        break;
      case OP.pread:
        port.pread(aHi[i] as number, aLo[i] as number, small[i] as number);
        break;
      case OP.pwrite:
        port.pwrite(aHi[i] as number, aLo[i] as number, small[i] as number, vHi[i] as number, vLo[i] as number);
        break;
      case OP.invlpg:
        port.invlpg(aHi[i] as number, aLo[i] as number);
        break;
      case OP.invpcid:
        port.invpcid(small[i] as number, vLo[i] as number, aHi[i] as number, aLo[i] as number);
        break;
      case OP.flush:
        port.flush();
        break;
      case OP.dump:
        port.dump(aHi[i] as number, aLo[i] as number, vLo[i] as number);
        break;
      case OP.p2m:
        port.p2m(aLo[i] as number, vLo[i] as number, small[i] as number);
        break;
    }
  }
}
