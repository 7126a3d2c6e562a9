/**
 * Open a QEMU dump-guest-memory ELF core (ELF32 or ELF64, plain or xz, told
 * apart by magic bytes, not by name): guest-physical memory as a
 * PhysicalSpace plus the vCPUs' control registers from the QEMU notes.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { ImageError } from '../inspect/image.js';
import { qemuCpuStates } from './elf.js';
import { loadPlain } from './file.js';
import { DEFAULT_MEMORY_BUDGET } from './frames.js';
import { GuestMemory } from './memory.js';
import { loadXz, XZ_MAGIC } from './xz.js';
/** Open and import `path`; errors about the file are ImageErrors. */
export async function openImage(path, opts = {}) {
    let fd;
    try {
        fd = openSync(path, 'r');
    }
    catch (e) {
        throw systemError(e);
    }
    let loaded;
    let compressed = false;
    try {
        const st = fstatSync(fd);
        if (!st.isFile())
            throw new ImageError('not a regular file');
        const magic = Buffer.alloc(XZ_MAGIC.length);
        const n = readSync(fd, magic, 0, magic.length, 0);
        compressed = n === magic.length && magic.equals(XZ_MAGIC);
        loaded = compressed ? await loadXz(fd, opts.memoryBudget ?? DEFAULT_MEMORY_BUDGET) : loadPlain(fd, st.size);
        const cpus = qemuCpuStates(loaded.notes);
        const { layout } = loaded;
        const memory = new GuestMemory(layout.loads, loaded.backing);
        if (compressed)
            closeSync(fd); // everything needed was kept
        return {
            path,
            compressed,
            elfClass: layout.elfClass,
            machine: layout.machine,
            bytes: loaded.bytes,
            loads: layout.loads,
            cpus,
            memory,
            close: () => memory.close(),
        };
    }
    catch (e) {
        if (loaded !== undefined)
            loaded.backing.close();
        if (compressed || loaded === undefined)
            closeSync(fd);
        throw systemError(e);
    }
}
/** File-system failures become one-line ImageErrors too. */
function systemError(e) {
    if (e instanceof ImageError)
        return e;
    const err = e;
    if (err.code === 'ENOENT')
        return new ImageError('no such file');
    if (err.code === 'EACCES')
        return new ImageError('permission denied');
    if (err.code === 'EISDIR')
        return new ImageError('not a regular file');
    if (typeof err.code === 'string')
        return new ImageError(err.message);
    return e;
}
//# sourceMappingURL=image.js.map