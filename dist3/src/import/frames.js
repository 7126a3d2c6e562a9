/**
 * Non-zero 4 KiB frames of a decompressed image, keyed by guest frame
 * number. A stream can only be read once, so what translation may need later
 * is kept: in memory up to a budget, then in a temporary file read on demand
 * (sanitized dumps are almost all zeros, real ones are not). Frames never
 * stored read as zeros.
 */
import { closeSync, mkdtempSync, openSync, readSync, rmdirSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
export const FRAME_BYTES = 4096;
export const DEFAULT_MEMORY_BUDGET = 256 << 20;
/** A small least-recently-used cache of frames (Map keeps insertion order). */
export class FrameCache {
    capacity;
    map = new Map();
    constructor(capacity) {
        this.capacity = capacity;
    }
    get(key) {
        const f = this.map.get(key);
        if (f !== undefined) {
            this.map.delete(key);
            this.map.set(key, f);
        }
        return f;
    }
    set(key, f) {
        this.map.set(key, f);
        if (this.map.size > this.capacity)
            this.map.delete(this.map.keys().next().value);
    }
    delete(key) {
        this.map.delete(key);
    }
}
/** A fresh frame whose bytes can be filled through a Buffer view. */
export function newFrame() {
    const words = new Uint32Array(FRAME_BYTES / 4);
    return { words, bytes: Buffer.from(words.buffer) };
}
export class FrameStore {
    budgetBytes;
    inMemory = new Map();
    spilled = new Map(); // pfn -> slot in the spill file
    cache = new FrameCache(256);
    fd = -1;
    constructor(budgetBytes = DEFAULT_MEMORY_BUDGET) {
        this.budgetBytes = budgetBytes;
    }
    get frames() {
        return this.inMemory.size + this.spilled.size;
    }
    get spilledFrames() {
        return this.spilled.size;
    }
    /**
     * Store the 4096 bytes at `src[off..]` as frame `pfn`. A frame stored twice
     * (segments sharing a frame, each supplying its own bytes, zeros elsewhere)
     * is merged by OR.
     */
    put(pfn, src, off) {
        const old = this.get(pfn);
        const { words, bytes } = newFrame();
        bytes.set(src.subarray(off, off + FRAME_BYTES));
        if (old !== undefined)
            for (let i = 0; i < words.length; i++)
                words[i] = words[i] | old[i];
        if (this.inMemory.has(pfn) ||
            (!this.spilled.has(pfn) && (this.inMemory.size + 1) * FRAME_BYTES <= this.budgetBytes)) {
            this.inMemory.set(pfn, words);
            return;
        }
        let slot = this.spilled.get(pfn);
        if (slot === undefined) {
            slot = this.spilled.size;
            this.spilled.set(pfn, slot);
        }
        writeSync(this.spillFd(), bytes, 0, FRAME_BYTES, slot * FRAME_BYTES);
        this.cache.delete(pfn);
    }
    /** The frame's words (shared: callers must not write), or undefined for a frame of zeros. */
    get(pfn) {
        const f = this.inMemory.get(pfn);
        if (f !== undefined)
            return f;
        const slot = this.spilled.get(pfn);
        if (slot === undefined)
            return undefined;
        let c = this.cache.get(pfn);
        if (c === undefined) {
            const { words, bytes } = newFrame();
            readSync(this.fd, bytes, 0, FRAME_BYTES, slot * FRAME_BYTES);
            c = words;
            this.cache.set(pfn, c);
        }
        return c;
    }
    close() {
        if (this.fd >= 0)
            closeSync(this.fd);
        this.fd = -1;
    }
    /** The spill file, created on first use and unlinked at once: the open descriptor keeps it until close or exit. */
    spillFd() {
        if (this.fd < 0) {
            const dir = mkdtempSync(join(tmpdir(), 'umbra-image-'));
            const path = join(dir, 'frames');
            this.fd = openSync(path, 'w+', 0o600);
            try {
                unlinkSync(path);
                rmdirSync(dir);
            }
            catch {
                // Systems that cannot unlink open files: remove at exit instead.
                process.once('exit', () => {
                    this.close();
                    rmSync(dir, { recursive: true, force: true });
                });
            }
        }
        return this.fd;
    }
}
//# sourceMappingURL=frames.js.map