/**
 * Scenario format, version 1 (shared/spec/scenario-format.md): parsing and
 * validation. The whole file is validated before anything runs; the first
 * problem is reported as `FILE:LINE: reason`.
 *
 * Parsed operations go into a batch (`Scenario`, src/guest/ops.ts: one
 * typed array per operand); the operation set and batch type are re-exported
 * here for the parser's callers.
 */
import { PHYS_TYPE_NAMES } from '../../hypervisor/physmap.js';
import { own, parseJson } from '../../util/json.js';
import { OP, Scenario } from '../ops.js';
export { OP, Scenario };
/** Allowed keys per op (besides "op"); all are required. */
const KEYS = {
    machine: ['vcpus', 'memory', 'maxphyaddr'],
    cpu: ['vcpu'],
    wrcr: ['reg', 'value'],
    wrmsr: ['msr', 'value'],
    wrpkru: ['value'],
    setac: ['value'],
    read: ['va', 'size', 'cpl'],
    write: ['va', 'size', 'value', 'cpl'],
    fetch: ['va', 'cpl'],
    pread: ['gpa', 'size'],
    pwrite: ['gpa', 'size', 'value'],
    invlpg: ['va'],
    invpcid: ['type', 'pcid', 'va'],
    flush: [],
    dump: ['gpa', 'length'],
    p2m: ['gfn', 'count', 'type'],
};
const OPTIONAL = new Set(['machine.maxphyaddr']);
export const CR_INDEX = { cr0: 0, cr3: 3, cr4: 4 };
/**
 * Most operations a scenario may hold: parsed operations take 23 bytes each
 * and the whole file is parsed before it runs, so this bounds memory
 * (~400 MB). Longer streams go through traces, which are never held whole.
 */
export const MAX_SCENARIO_OPS = 1 << 24;
/** Longest scenario line a reader accepts, in bytes (real ones are under 200). */
export const MAX_LINE_BYTES = 1 << 20;
export class ScenarioError extends Error {
    file;
    line;
    reason;
    constructor(file, line, reason) {
        super(`${file}:${line}: ${reason}`);
        this.file = file;
        this.line = line;
        this.reason = reason;
    }
}
const HEX = /^0[xX]([0-9a-fA-F]+)$/;
/** Parse a scenario integer (JSON number below 2^53, or "0x..." up to 64 bits). */
export function parseU64(v) {
    if (typeof v === 'number') {
        if (!Number.isInteger(v) || v < 0)
            return 'must be a non-negative integer';
        if (v >= 2 ** 53)
            return 'numbers at or above 2^53 must be written as "0x..." strings';
        return { hi: Math.floor(v / 0x100000000), lo: v >>> 0 };
    }
    if (typeof v === 'string') {
        const m = HEX.exec(v);
        if (m === null)
            return `"${v.length > 40 ? `${v.slice(0, 40)}...` : v}" is not a "0x..." hex integer`;
        const digits = m[1].replace(/^0+(?=.)/, '');
        if (digits.length > 16)
            return `${v} does not fit in 64 bits`;
        const lo = Number.parseInt(digits.slice(-8), 16);
        const hi = digits.length > 8 ? Number.parseInt(digits.slice(0, -8), 16) : 0;
        return { hi, lo };
    }
    return 'must be an integer (a JSON number or a "0x..." string)';
}
function toNumber(x) {
    return x.hi * 0x100000000 + x.lo;
}
/** Parse and validate a whole scenario. Throws ScenarioError on the first problem. */
export function parseScenario(text, file) {
    const parser = new ScenarioParser(file);
    let lineNo = 0;
    let start = 0;
    while (start <= text.length) {
        let end = text.indexOf('\n', start);
        if (end < 0)
            end = text.length;
        parser.line(text.slice(start, end), ++lineNo);
        start = end + 1;
        if (end === text.length)
            break;
    }
    return parser.finish(lineNo);
}
/**
 * The parser one line at a time, so that a reader can stream a file too large
 * to hold as one string (trace conversion). Operations are appended to
 * `scenario`, which a streaming caller may replace by an empty batch at any
 * time; `lineNo` counts every line, blank and comment lines included.
 */
export class ScenarioParser {
    file;
    maxOps;
    scenario = null;
    /** Operations parsed so far, over every batch. */
    ops = 0;
    /** `maxOps`: a streaming reader that keeps only batches may allow more than a whole scenario. */
    constructor(file, maxOps = MAX_SCENARIO_OPS) {
        this.file = file;
        this.maxOps = maxOps;
    }
    /** After the last line: the scenario, or the empty-scenario error (`lines` = lines seen). */
    finish(lines) {
        if (this.scenario === null)
            throw new ScenarioError(this.file, Math.max(lines, 1), 'no "machine" line: empty scenario');
        return this.scenario;
    }
    /** Parse one line (without its newline). Throws ScenarioError. */
    line(raw, lineNo) {
        const file = this.file;
        const fail = (reason) => {
            throw new ScenarioError(file, lineNo, reason);
        };
        const t = raw.trim();
        if (t === '' || t.startsWith('#'))
            return;
        const parsed = parseJson(t);
        if (typeof parsed === 'string')
            throw new ScenarioError(file, lineNo, parsed);
        const obj = parsed.value;
        if (typeof obj !== 'object' || obj === null || Array.isArray(obj))
            fail('expected a JSON object');
        const o = obj;
        const name = o.op;
        if (typeof name !== 'string')
            fail('missing "op"');
        const opName = name;
        // Own properties only: "__proto__", "toString" and the like are unknown ops and keys, not Object.prototype's.
        const allowed = own(KEYS, opName);
        if (allowed === undefined)
            throw new ScenarioError(file, lineNo, `unknown op "${opName}"`);
        for (const k of Object.keys(o)) {
            if (k !== 'op' && !allowed.includes(k))
                fail(`unknown key "${k}" for op "${opName}"`);
        }
        for (const k of allowed) {
            if (!Object.hasOwn(o, k) && !OPTIONAL.has(`${opName}.${k}`))
                fail(`missing key "${k}" for op "${opName}"`);
        }
        const int = (k) => {
            const r = parseU64(o[k]);
            if (typeof r === 'string')
                fail(`"${k}": ${r}`);
            return r;
        };
        const small = (k, lo, hi) => {
            const v = int(k);
            if (v.hi !== 0 || v.lo < lo || v.lo > hi)
                fail(`"${k}" must be between ${lo} and ${hi}`);
            return v.lo;
        };
        if (opName === 'machine') {
            if (this.scenario !== null)
                fail('"machine" may appear only once, on the first line');
            const vcpus = small('vcpus', 1, 64);
            const memory = toNumber(int('memory'));
            if (memory === 0 || memory % 4096 !== 0 || memory > 2 ** 40) {
                fail('"memory" must be a non-zero multiple of 4096 no larger than 2^40');
            }
            const maxphyaddr = Object.hasOwn(o, 'maxphyaddr') ? small('maxphyaddr', 32, 52) : 40;
            this.scenario = new Scenario({ vcpus, memory, maxphyaddr });
            return;
        }
        if (this.scenario === null)
            fail('the first operation must be "machine"');
        const s = this.scenario;
        if (++this.ops > this.maxOps)
            fail(`more than ${this.maxOps} operations, the limit for a scenario`);
        const i = s.push(OP[opName], lineNo);
        const sizeOf = () => {
            const v = int('size');
            if (v.hi !== 0 || ![1, 2, 4, 8].includes(v.lo))
                fail('"size" must be 1, 2, 4 or 8');
            return v.lo;
        };
        const addr = (k) => {
            const a = int(k);
            s.aHi[i] = a.hi;
            s.aLo[i] = a.lo;
            return a;
        };
        const inPage = (a, size, k) => {
            if ((a.lo & 0xfff) + size > 4096)
                fail(`"${k}" + "size" crosses a 4 KiB page boundary`);
        };
        const value = (size) => {
            const v = int('value');
            if (size < 8 && (v.hi !== 0 || (size < 4 && v.lo >= 2 ** (8 * size))))
                fail(`"value" does not fit in ${size} bytes`);
            s.vHi[i] = v.hi;
            s.vLo[i] = v.lo;
        };
        switch (opName) {
            case 'cpu':
                s.small[i] = small('vcpu', 0, s.machine.vcpus - 1);
                break;
            case 'wrcr': {
                const cr = typeof o.reg === 'string' ? own(CR_INDEX, o.reg) : undefined;
                if (cr === undefined)
                    throw new ScenarioError(file, lineNo, '"reg" must be "cr0", "cr3" or "cr4"');
                s.small[i] = cr;
                value(8);
                break;
            }
            case 'wrmsr':
                if (o.msr !== 'efer')
                    fail('"msr" must be "efer"');
                value(8);
                break;
            case 'wrpkru':
                value(4);
                break;
            case 'setac':
                s.small[i] = small('value', 0, 1);
                break;
            case 'read': {
                const size = sizeOf();
                inPage(addr('va'), size, 'va');
                s.small[i] = size;
                s.cpl[i] = small('cpl', 0, 3);
                break;
            }
            case 'write': {
                const size = sizeOf();
                inPage(addr('va'), size, 'va');
                s.small[i] = size;
                value(size);
                s.cpl[i] = small('cpl', 0, 3);
                break;
            }
            case 'fetch':
                addr('va');
                s.cpl[i] = small('cpl', 0, 3);
                break;
            case 'pread': {
                const size = sizeOf();
                inPage(addr('gpa'), size, 'gpa');
                s.small[i] = size;
                break;
            }
            case 'pwrite': {
                const size = sizeOf();
                inPage(addr('gpa'), size, 'gpa');
                s.small[i] = size;
                value(size);
                break;
            }
            case 'invlpg':
                addr('va');
                break;
            case 'invpcid': {
                s.small[i] = small('type', 0, 3);
                const p = int('pcid');
                // PCIDs above 0xfff are legal input and #GP at run time; keep them distinguishable.
                s.vLo[i] = p.hi !== 0 || p.lo > 0xfff ? 0x1000 : p.lo;
                addr('va');
                break;
            }
            case 'flush':
                break;
            case 'dump': {
                addr('gpa');
                const len = int('length');
                if (len.hi !== 0 || len.lo > 65536)
                    fail('"length" must be at most 65536');
                s.vLo[i] = len.lo;
                break;
            }
            case 'p2m': {
                // Numbered as the physmap's types (hypervisor/physmap.ts).
                const type = PHYS_TYPE_NAMES.indexOf(o.type);
                if (type < 0)
                    throw new ScenarioError(file, lineNo, '"type" must be "ram", "rom" or "none"');
                const frames = s.machine.memory / 4096;
                const gfn = toNumber(int('gfn'));
                if (gfn >= frames)
                    fail(`"gfn" must be below the ${frames} frames of "memory"`);
                const count = toNumber(int('count'));
                if (count < 1 || gfn + count > frames)
                    fail(`"count" must be at least 1 and end within the ${frames} frames of "memory"`);
                s.small[i] = type;
                s.aLo[i] = gfn;
                s.vLo[i] = count;
                break;
            }
        }
    }
}
//# sourceMappingURL=parse.js.map