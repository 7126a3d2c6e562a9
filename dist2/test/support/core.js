/** Building QEMU dump-guest-memory ELF cores in tests: headers, notes, memory images, xz. */
import lzma from 'lzma-native';
export function note(name, type, desc) {
    const pad = (n) => (n + 3) & ~3;
    const nm = Buffer.alloc(pad(name.length + 1));
    nm.write(name, 'latin1');
    const h = Buffer.alloc(12);
    h.writeUInt32LE(name.length + 1, 0);
    h.writeUInt32LE(desc.length, 4);
    h.writeUInt32LE(type, 8);
    return Buffer.concat([h, nm, desc, Buffer.alloc(pad(desc.length) - desc.length)]);
}
/** QEMU's QEMUCPUState note (version 1, 440 bytes). */
export function qemuNote(c) {
    const d = Buffer.alloc(440);
    d.writeUInt32LE(1, 0);
    d.writeUInt32LE(440, 4);
    d.writeUInt32LE((c.cpl ?? 0) << 13, 152 + 5 * 24 + 8); // SS flags: DPL
    d.writeBigUInt64LE(c.cr0, 392);
    d.writeBigUInt64LE(c.cr3, 416);
    d.writeBigUInt64LE(c.cr4, 424);
    return note('QEMU', 0, d);
}
export function buildCore(s) {
    const is64 = (s.cls ?? 64) === 64;
    const ehsize = is64 ? 64 : 52;
    const phentsize = is64 ? 56 : 32;
    const shentsize = is64 ? 64 : 40;
    const notes = s.notes === undefined ? Buffer.concat((s.cpus ?? []).map(qemuNote)) : s.notes;
    const phnum = s.loads.length + (notes ? 1 : 0);
    const shoff = s.xnum ? ehsize : 0;
    const phoff = ehsize + (s.xnum ? shentsize : 0);
    let off = phoff + phnum * phentsize;
    const h = Buffer.alloc(ehsize);
    h.writeUInt32BE(0x7f454c46, 0);
    h[4] = is64 ? 2 : 1;
    h[5] = 1;
    h[6] = 1;
    h.writeUInt16LE(s.type ?? 4, 16);
    h.writeUInt16LE(s.machine ?? (is64 ? 62 : 3), 18);
    h.writeUInt32LE(1, 20);
    const word = (b, at, v) => {
        if (is64)
            b.writeBigUInt64LE(BigInt(v), at);
        else
            b.writeUInt32LE(Number(v), at);
    };
    word(h, is64 ? 32 : 28, phoff);
    word(h, is64 ? 40 : 32, shoff);
    const at = is64 ? 52 : 40;
    h.writeUInt16LE(ehsize, at);
    h.writeUInt16LE(phentsize, at + 2);
    h.writeUInt16LE(s.xnum ? 0xffff : phnum, at + 4);
    h.writeUInt16LE(shentsize, at + 6);
    h.writeUInt16LE(s.xnum ? 1 : 0, at + 8);
    const parts = [h];
    if (s.xnum) {
        const sh = Buffer.alloc(shentsize);
        sh.writeUInt32LE(phnum, is64 ? 44 : 28);
        parts.push(sh);
    }
    const phdrs = Buffer.alloc(phnum * phentsize);
    const data = [];
    const phdr = (i, type, paddr, bytes, memsz) => {
        const p = i * phentsize;
        phdrs.writeUInt32LE(type, p);
        word(phdrs, p + (is64 ? 8 : 4), off);
        word(phdrs, p + (is64 ? 16 : 8), paddr);
        word(phdrs, p + (is64 ? 24 : 12), paddr);
        word(phdrs, p + (is64 ? 32 : 16), bytes.length);
        word(phdrs, p + (is64 ? 40 : 20), memsz);
        data.push(bytes);
        off += bytes.length;
    };
    let i = 0;
    if (notes)
        phdr(i++, 4, 0, notes, 0);
    for (const l of s.loads)
        phdr(i++, 1, l.paddr, l.data, l.memsz ?? l.data.length);
    return Buffer.concat([...parts, phdrs, ...data]);
}
/** A little memory image: `frames` frames of zeros with 32- or 64-bit words set at byte addresses. */
export function ram(frames, words, wide) {
    const b = Buffer.alloc(frames * 4096);
    for (const [addr, v] of words) {
        if (wide)
            b.writeBigUInt64LE(v, addr);
        else
            b.writeUInt32LE(Number(v), addr);
    }
    return b;
}
export function xz(data) {
    return new Promise((resolve, reject) => {
        const parts = [];
        const c = lzma.createCompressor({ preset: 1 });
        c.on('data', (b) => parts.push(b));
        c.on('end', () => resolve(Buffer.concat(parts)));
        c.on('error', reject);
        c.end(data);
    });
}
//# sourceMappingURL=core.js.map