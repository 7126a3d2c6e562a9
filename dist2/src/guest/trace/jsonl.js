/**
 * A trace's scenario form (JSON Lines, scenario format version 1): line 1 is
 * the machine, line k+1 is op k, so `umbra exec` of the scenario numbers its
 * output exactly as a replay of the trace does. The metadata and trailer
 * follow the last operation as comment lines
 *
 *   # umbra-trace meta {...}
 *   # umbra-trace trailer {...}
 *
 * where they shift no line number, and a conversion back restores them.
 * The file-to-file conversions are in src/io/trace-jsonl.ts.
 */
import { PHYS_TYPE_NAMES } from '../../hypervisor/physmap.js';
import { parseJsonObject } from '../../util/json.js';
import { OP, ScenarioError } from '../scenario/parse.js';
import { OP_NAME } from './format.js';
export const META_COMMENT = '# umbra-trace meta ';
export const TRAILER_COMMENT = '# umbra-trace trailer ';
const CR_NAME = ['cr0', '', '', 'cr3', 'cr4'];
/** A 64-bit value as the scenario format's lowercase "0x…" string, quotes included. */
function hex(hi, lo) {
    return hi === 0 ? `"0x${lo.toString(16)}"` : `"0x${hi.toString(16)}${lo.toString(16).padStart(8, '0')}"`;
}
/** The scenario's first line. */
export function machineLine(m) {
    return `{"op":"machine","vcpus":${m.vcpus},"memory":${hex(Math.floor(m.memory / 2 ** 32), m.memory >>> 0)},"maxphyaddr":${m.maxphyaddr}}`;
}
/** Operation i of a batch as one scenario line (without the newline). */
export function opLine(s, i) {
    const op = s.op[i];
    const small = s.small[i];
    const cpl = s.cpl[i];
    const a = hex(s.aHi[i], s.aLo[i]);
    const v = () => hex(s.vHi[i], s.vLo[i]);
    const head = `{"op":"${OP_NAME[op]}"`;
    switch (op) {
        case OP.cpu:
            return `${head},"vcpu":${small}}`;
        case OP.wrcr:
            return `${head},"reg":"${CR_NAME[small]}","value":${v()}}`;
        case OP.wrmsr:
            return `${head},"msr":"efer","value":${v()}}`;
        case OP.wrpkru:
            return `${head},"value":${v()}}`;
        case OP.setac:
            return `${head},"value":${small}}`;
        case OP.read:
            return `${head},"va":${a},"size":${small},"cpl":${cpl}}`;
        case OP.write:
            return `${head},"va":${a},"size":${small},"value":${v()},"cpl":${cpl}}`;
        case OP.fetch:
            return `${head},"va":${a},"cpl":${cpl}}`;
        case OP.pread:
            return `${head},"gpa":${a},"size":${small}}`;
        case OP.pwrite:
            return `${head},"gpa":${a},"size":${small},"value":${v()}}`;
        case OP.invlpg:
            return `${head},"va":${a}}`;
        case OP.invpcid:
            // A pcid kept as 0x1000 ("above 0xfff") is written as 4096, which parses back to it.
            return `${head},"type":${small},"pcid":${s.vLo[i]},"va":${a}}`;
        case OP.flush:
            return `${head}}`;
        case OP.dump:
            return `${head},"gpa":${a},"length":${s.vLo[i]}}`;
        case OP.p2m:
            return `${head},"gfn":${a},"count":${s.vLo[i]},"type":"${PHYS_TYPE_NAMES[small]}"}`;
        default:
            throw new Error(`op code ${op}`);
    }
}
/** The JSON object of an `# umbra-trace` comment line. */
export function commentObject(file, lineNo, text) {
    const o = parseJsonObject(text);
    if (typeof o === 'string')
        throw new ScenarioError(file, lineNo, `umbra-trace comment: ${o}`);
    return o;
}
//# sourceMappingURL=jsonl.js.map