/**
 * ELF core layout (System V gABI) as QEMU's dump-guest-memory writes it:
 * ELF header, program headers (PT_NOTE, PT_LOAD per RAM block) and notes.
 *
 * Pure functions over byte buffers, shared by the random-access importer
 * (plain file) and the streaming one (xz). The class comes from EI_CLASS,
 * never from e_machine (QEMU writes ELF64 for i386 guests). Every count and
 * size is checked against limits, and against the file size when it is known,
 * before anything is allocated.
 */
import { EM_386, EM_X86_64, ImageError } from '../inspect/image.js';
const ET_CORE = 4;
const PT_LOAD = 1;
const PT_NOTE = 4;
/** e_phnum value meaning "the count is in section header 0's sh_info". */
const PN_XNUM = 0xffff;
/** More program headers than this is not a core anyone wrote. */
export const MAX_PHNUM = 1 << 20;
/** Largest program-header table, and largest total of note segments (each is read whole), we accept. */
export const MAX_TABLE_BYTES = 64 << 20;
/** Guest-physical addresses are at most 52 bits wide (SDM vol. 3A, 4.1.4). */
const PHYS_LIMIT = 2 ** 52;
/** QEMU CPU-state note: CR0 at 392 ... CR4 at 424 (u64 each). */
const QEMU_CR0 = 392;
const QEMU_NOTE_MIN = 432;
/** QEMUCPUState: 18 u64 registers from offset 8, then segments (24 bytes each) at 152; SS is the sixth. */
const QEMU_RIP = 8 + 16 * 8;
const QEMU_RFLAGS = QEMU_RIP + 8;
const QEMU_SS_FLAGS = 152 + 5 * 24 + 8;
const hex = (n) => `0x${n.toString(16)}`;
/** An unsigned 64-bit field as a number; beyond 2^53 no real core goes. */
function u64(b, at, what, fileOff) {
    const v = b.readBigUInt64LE(at);
    if (v > BigInt(Number.MAX_SAFE_INTEGER))
        throw new ImageError(`absurd ${what} ${hex(v)}`, fileOff + at);
    return Number(v);
}
function fetch(read, off, len, fileSize, what) {
    const b = read(off, len);
    if (b === undefined && fileSize !== null) {
        throw new ImageError(`truncated: ${what} needs bytes up to ${off + len}, the image has ${fileSize}`, off);
    }
    return b;
}
/**
 * Parse the ELF header and program headers. Returns undefined when `read`
 * lacks bytes and `fileSize` is null (a stream that may deliver more later).
 */
export function parseLayout(read, fileSize) {
    const magic = read(0, 4);
    if (magic === undefined) {
        if (fileSize === null)
            return undefined;
        throw new ImageError(fileSize === 0 ? 'not an ELF core: the file is empty' : 'not an ELF core: too short', 0);
    }
    if (magic.readUInt32BE(0) !== 0x7f454c46)
        throw new ImageError('not an ELF core: no ELF magic', 0);
    const id = fetch(read, 0, 20, fileSize, 'the ELF header');
    if (id === undefined)
        return undefined;
    const cls = id[4];
    if (cls !== 1 && cls !== 2)
        throw new ImageError(`not an ELF core: unknown EI_CLASS ${cls}`, 4);
    if (id[5] !== 1)
        throw new ImageError(`not a little-endian ELF (EI_DATA ${id[5]}); x86 cores are`, 5);
    const is64 = cls === 2;
    const h = fetch(read, 0, is64 ? 64 : 52, fileSize, 'the ELF header');
    if (h === undefined)
        return undefined;
    const type = h.readUInt16LE(16);
    if (type !== ET_CORE)
        throw new ImageError(`not a core file: e_type ${type} (a core is ET_CORE, 4)`, 16);
    const machine = h.readUInt16LE(18);
    if (machine !== EM_386 && machine !== EM_X86_64) {
        throw new ImageError(`wrong machine: e_machine ${machine} is not x86 (EM_386 3 or EM_X86_64 62)`, 18);
    }
    const phoff = is64 ? u64(h, 32, 'e_phoff', 0) : h.readUInt32LE(28);
    const shoff = is64 ? u64(h, 40, 'e_shoff', 0) : h.readUInt32LE(32);
    const at = is64 ? 54 : 42; // e_phentsize, then e_phnum, e_shentsize
    const phentsize = h.readUInt16LE(at);
    let phnum = h.readUInt16LE(at + 2);
    const shentsize = h.readUInt16LE(at + 4);
    const phMin = is64 ? 56 : 32;
    if (phnum === 0 || phoff === 0)
        throw new ImageError('not a usable core: no program headers', at + 2);
    if (phentsize < phMin)
        throw new ImageError(`e_phentsize ${phentsize} is too small (ELF${cls * 32} needs ${phMin})`, at);
    if (phnum === PN_XNUM) {
        // More segments than e_phnum can hold: section header 0's sh_info has the count.
        const shMin = is64 ? 64 : 40;
        if (shoff === 0)
            throw new ImageError('e_phnum is PN_XNUM (0xffff) but there is no section header 0', at + 2);
        if (shentsize < shMin)
            throw new ImageError(`e_shentsize ${shentsize} is too small for section header 0`, at + 4);
        const sh = fetch(read, shoff, shMin, fileSize, 'section header 0 (the program header count)');
        if (sh === undefined)
            return undefined;
        phnum = sh.readUInt32LE(is64 ? 44 : 28);
        if (phnum === 0 || phnum > MAX_PHNUM) {
            throw new ImageError(`absurd program header count ${phnum} in section header 0`, shoff + (is64 ? 44 : 28));
        }
    }
    if (phnum * phentsize > MAX_TABLE_BYTES)
        throw new ImageError(`absurd program header table: ${phnum} entries`, at);
    const ph = fetch(read, phoff, phnum * phentsize, fileSize, 'the program header table');
    if (ph === undefined)
        return undefined;
    return segments(ph, phoff, phnum, phentsize, is64, fileSize, machine);
}
function segments(ph, phoff, phnum, phentsize, is64, fileSize, machine) {
    const loads = [];
    const notes = [];
    let noteBytes = 0;
    for (let i = 0; i < phnum; i++) {
        const p = i * phentsize;
        const where = phoff + p;
        const type = ph.readUInt32LE(p);
        if (type !== PT_LOAD && type !== PT_NOTE)
            continue;
        const offset = is64 ? u64(ph, p + 8, 'p_offset', phoff) : ph.readUInt32LE(p + 4);
        const paddr = is64 ? u64(ph, p + 24, 'p_paddr', phoff) : ph.readUInt32LE(p + 12);
        const filesz = is64 ? u64(ph, p + 32, 'p_filesz', phoff) : ph.readUInt32LE(p + 16);
        const memsz = is64 ? u64(ph, p + 40, 'p_memsz', phoff) : ph.readUInt32LE(p + 20);
        if (fileSize !== null && offset + filesz > fileSize) {
            throw new ImageError(`truncated: segment ${i} has data up to ${offset + filesz} but the file has ${fileSize} bytes`, fileSize);
        }
        if (type === PT_NOTE) {
            if (filesz > MAX_TABLE_BYTES)
                throw new ImageError(`absurd note segment size ${hex(filesz)}`, where);
            // Many segments may name the same bytes: the total bounds what is allocated.
            noteBytes += filesz;
            if (noteBytes > MAX_TABLE_BYTES)
                throw new ImageError(`note segments total more than ${MAX_TABLE_BYTES >> 20} MiB`, where);
            if (filesz > 0)
                notes.push({ offset, size: filesz });
            continue;
        }
        if (filesz > memsz)
            throw new ImageError(`segment ${i}: p_filesz ${hex(filesz)} exceeds p_memsz ${hex(memsz)}`, where);
        if (paddr + memsz > PHYS_LIMIT) {
            throw new ImageError(`absurd segment ${i}: ${hex(paddr)}+${hex(memsz)} goes beyond 52-bit physical addresses`, where);
        }
        if (memsz > 0)
            loads.push({ index: i, paddr, memsz, filesz, offset });
    }
    if (loads.length === 0)
        throw new ImageError('not a usable core: no PT_LOAD segment (no guest memory)', phoff);
    if (notes.length === 0)
        throw new ImageError('missing notes: no PT_NOTE segment (QEMU puts the vCPU state there)', phoff);
    loads.sort((a, b) => a.paddr - b.paddr);
    for (let i = 1; i < loads.length; i++) {
        const a = loads[i - 1];
        const b = loads[i];
        if (a.paddr + a.memsz > b.paddr) {
            throw new ImageError(`overlapping segments ${a.index} (${hex(a.paddr)}-${hex(a.paddr + a.memsz)}) and ${b.index} (from ${hex(b.paddr)})`, phoff + b.index * phentsize);
        }
    }
    return { elfClass: is64 ? 64 : 32, machine, loads, notes };
}
/** Split a note segment into notes (names and descriptors are 4-byte aligned in QEMU cores of both classes). */
export function parseNotes(buf, fileOffset) {
    const notes = [];
    const align = (n) => (n + 3) & ~3;
    let p = 0;
    while (p < buf.length) {
        if (buf.length - p < 12) {
            if (buf.subarray(p).every((b) => b === 0))
                break; // trailing padding
            throw new ImageError('truncated note header', fileOffset + p);
        }
        const namesz = buf.readUInt32LE(p);
        const descsz = buf.readUInt32LE(p + 4);
        const type = buf.readUInt32LE(p + 8);
        const nameAt = p + 12;
        const descAt = nameAt + align(namesz);
        if (namesz > buf.length || descsz > buf.length || descAt + descsz > buf.length) {
            throw new ImageError(`truncated note: name ${namesz} and descriptor ${descsz} bytes overrun the segment`, fileOffset + p);
        }
        const name = buf.toString('latin1', nameAt, nameAt + namesz).replace(/\0+$/, '');
        notes.push({ name, type, desc: buf.subarray(descAt, descAt + descsz), offset: fileOffset + p });
        p = descAt + align(descsz);
    }
    return notes;
}
/** The vCPUs: one QEMU/type-0 note each, in vCPU order. */
export function qemuCpuStates(notes) {
    const cpus = [];
    for (const n of notes) {
        if (n.name !== 'QEMU' || n.type !== 0)
            continue;
        const d = n.desc;
        if (d.length < QEMU_NOTE_MIN) {
            throw new ImageError(`QEMU CPU-state note of ${d.length} bytes is too short for CR0-CR4 (needs 432)`, n.offset);
        }
        const cr = (i) => d.readBigUInt64LE(QEMU_CR0 + 8 * i);
        cpus.push({
            index: cpus.length,
            cr0: cr(0),
            cr2: cr(2),
            cr3: cr(3),
            cr4: cr(4),
            rip: d.readBigUInt64LE(QEMU_RIP),
            rflags: d.readBigUInt64LE(QEMU_RFLAGS),
            cpl: (d.readUInt32LE(QEMU_SS_FLAGS) >>> 13) & 3,
        });
    }
    if (cpus.length === 0) {
        throw new ImageError('missing notes: no QEMU CPU-state note (name "QEMU", type 0), so no CR3 to start from');
    }
    return cpus;
}
//# sourceMappingURL=elf.js.map