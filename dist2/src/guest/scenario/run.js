import { GuestPort } from '../port.js';
import { OP, parseScenario } from './parse.js';
export function runScenario(s, opts) {
    const port = new GuestPort(s.machine, opts);
    const t0 = performance.now(); // a global in Node and browsers alike
    runOps(port, s);
    const seconds = (performance.now() - t0) / 1e3;
    port.finish();
    return { domain: port.domain, cpus: port.cpus, ops: s.count, seconds, digest: port.digest };
}
/** Parse and run a scenario text; returns what `umbra exec` would print (ASCII). */
export function runScenarioText(text, opts, file = 'scenario') {
    const chunks = [];
    runScenario(parseScenario(text, file), { ...opts, out: (c) => chunks.push(c.slice()) });
    const ascii = new TextDecoder();
    return chunks.map((c) => ascii.decode(c)).join('');
}
/**
 * Run a batch of operations (a whole scenario, or one block of a trace)
 * through the port. Line numbers come from the batch unless the port counts
 * them itself.
 */
export function runOps(port, s) {
    const n = s.count;
    const { op, line, small, cpl, aHi, aLo, vHi, vLo } = s;
    const fileLines = !port.autoLine;
    for (let i = 0; i < n; i++) {
        if (fileLines)
            port.line = line[i];
        switch (op[i]) {
            case OP.cpu:
                port.selectCpu(small[i]);
                break;
            case OP.wrcr:
                port.wrcr(small[i], vHi[i], vLo[i]);
                break;
            case OP.wrmsr:
                port.wrmsrEfer(vHi[i], vLo[i]);
                break;
            case OP.wrpkru:
                port.wrpkru(vLo[i]);
                break;
            case OP.setac:
                port.setac(small[i]);
                break;
            case OP.read:
                port.read(aHi[i], aLo[i], small[i], cpl[i]);
                break;
            case OP.write:
                port.write(aHi[i], aLo[i], small[i], vHi[i], vLo[i], cpl[i]);
                break;
            case OP.fetch:
                port.fetch(aHi[i], aLo[i], cpl[i]);
                break;
            case OP.pread:
                port.pread(aHi[i], aLo[i], small[i]);
                break;
            case OP.pwrite:
                port.pwrite(aHi[i], aLo[i], small[i], vHi[i], vLo[i]);
                break;
            case OP.invlpg:
                port.invlpg(aHi[i], aLo[i]);
                break;
            case OP.invpcid:
                port.invpcid(small[i], vLo[i], aHi[i], aLo[i]);
                break;
            case OP.flush:
                port.flush();
                break;
            case OP.dump:
                port.dump(aHi[i], aLo[i], vLo[i]);
                break;
            case OP.p2m:
                port.p2m(aLo[i], vLo[i], small[i]);
                break;
        }
    }
}
//# sourceMappingURL=run.js.map