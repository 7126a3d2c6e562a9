/** Parsing of option values shared by commands. */
import { DEFAULT_TLB, NO_TLB } from '../arch/x86/tlb.js';
import { UsageError } from './errors.js';
export function parseIntOption(name, v, lo, hi) {
    const n = /^0x[0-9a-f]+$/i.test(v) ? Number.parseInt(v, 16) : /^\d+$/.test(v) ? Number(v) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < lo || n > hi)
        throw new UsageError(`${name} must be an integer from ${lo} to ${hi}, got "${v}"`);
    return n;
}
export const TINY_TLB = {
    small: { sets: 1, ways: 2 },
    large: { sets: 1, ways: 1 },
    huge: { sets: 1, ways: 1 },
};
export function parseTlb(v) {
    if (v === 'default')
        return DEFAULT_TLB;
    if (v === 'off')
        return NO_TLB;
    if (v === 'tiny')
        return TINY_TLB;
    const cfg = {
        small: { ...DEFAULT_TLB.small },
        large: { ...DEFAULT_TLB.large },
        huge: { ...DEFAULT_TLB.huge },
    };
    const names = new Map([
        ['4k', 'small'],
        ['2m', 'large'],
        ['4m', 'large'],
        ['1g', 'huge'],
    ]);
    for (const part of v.split(',')) {
        const m = /^(4k|2m|4m|1g)=(\d+)x(\d+)$/i.exec(part.trim());
        if (m === null)
            throw new UsageError(`--tlb: "${part}" is not SIZE=SETSxWAYS (e.g. 4k=64x8)`);
        const sets = Number(m[2]);
        const ways = Number(m[3]);
        if ((sets & (sets - 1)) !== 0 || sets > 65536 || ways > 64) {
            throw new UsageError(`--tlb: ${part}: sets must be a power of two up to 65536 and ways at most 64`);
        }
        const g = { sets, ways };
        cfg[names.get(m[1].toLowerCase())] = g;
    }
    return cfg;
}
//# sourceMappingURL=options.js.map