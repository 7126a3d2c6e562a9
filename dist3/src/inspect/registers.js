/** The registers text does not fit the image (the message names the file). */
export class RegistersError extends Error {
}
export function parseInfoRegisters(text) {
    const reg = (name) => {
        const m = new RegExp(`(?:^|\\s)${name}=([0-9a-fA-F]+)\\b`, 'm').exec(text);
        return m ? BigInt(`0x${m[1]}`) : undefined;
    };
    const cpu = /^CPU#(\d+)\s*$/m.exec(text);
    const cpl = /\bCPL=(\d)\b/.exec(text);
    return {
        cpu: cpu ? Number(cpu[1]) : undefined,
        efer: reg('EFER'),
        cr0: reg('CR0'),
        cr3: reg('CR3'),
        cr4: reg('CR4'),
        cpl: cpl ? Number(cpl[1]) : undefined,
    };
}
const hx = (v) => `0x${v.toString(16)}`;
/** EFER from the text, after checking that the text describes vCPU `s` at the moment of the image. */
export function eferFrom(path, r, s) {
    if (r.efer === undefined)
        throw new RegistersError(`${path}: no EFER= line (expected QEMU 'info registers' output)`);
    if (r.cpu !== undefined && r.cpu !== s.index) {
        throw new RegistersError(`${path}: registers of CPU#${r.cpu}, but vCPU ${s.index} was asked for (--cpu)`);
    }
    for (const [name, v, img] of [
        ['CR0', r.cr0, s.cr0],
        ['CR3', r.cr3, s.cr3],
        ['CR4', r.cr4, s.cr4],
    ]) {
        if (v !== undefined && v !== img) {
            throw new RegistersError(`${path}: ${name}=${hx(v)} but the image has ${hx(img)} for vCPU ${s.index}: not the same moment`);
        }
    }
    return Number(r.efer & 0xffffffffn);
}
//# sourceMappingURL=registers.js.map