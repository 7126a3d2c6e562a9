/**
 * Observers of the guest port: what the guest saw, one call per operation
 * that the scenario format prints a line for. The port (port.ts) performs
 * operations; observers turn their outcomes into output lines
 * (scenario/lines.ts), a digest (OutcomeDigest, below) or anything else a
 * front end wants (a browser view); trace recorders observe the operations
 * themselves (OpRecorder, port.ts). An observer never changes the outcome.
 *
 * `ln` is the operation's output line number ("i").
 */
import { createSha256 } from '../util/sha256.js';
/** Digest record tags: one per operation that the scenario format prints a line for. */
const D_OK = 0;
const D_VALUE = 1;
const D_PF = 2;
const D_GP = 3;
const D_DUMP = 4;
/**
 * The digest of what the guest observed: SHA-256 over, for each operation
 * that the scenario format prints a line for, in order, little-endian
 * 32-bit words — [0] for a completed write, [1, lo, hi] for a value read,
 * [2, error, cr2 lo, cr2 hi] for #PF, [3] for #GP, [4, length] then the
 * bytes for a dump — followed by the final line of the scenario output.
 * It carries the same information as the output (whose line numbers follow
 * from the operation stream) at a fraction of the cost of printing it.
 */
export class OutcomeDigest {
    /** The hex digest, once finish() has run. */
    hex = '';
    d = new Uint32Array(16384);
    n = 0;
    hash = createSha256();
    word(a) {
        if (this.n + 4 > this.d.length)
            this.flush();
        this.d[this.n++] = a;
    }
    words3(a, b, c) {
        if (this.n + 4 > this.d.length)
            this.flush();
        const d = this.d;
        d[this.n++] = a;
        d[this.n++] = b;
        d[this.n++] = c;
    }
    flush() {
        this.hash.update(new Uint8Array(this.d.buffer, 0, this.n * 4));
        this.n = 0;
    }
    ok(_ln) {
        this.word(D_OK);
    }
    value(_ln, hi, lo) {
        this.words3(D_VALUE, lo, hi);
    }
    pageFault(_ln, error, cr2Hi, cr2Lo) {
        this.word(D_PF);
        this.words3(error, cr2Lo, cr2Hi);
    }
    generalProtection(_ln) {
        this.word(D_GP);
    }
    dumpStart(_ln, length) {
        this.words3(D_DUMP, length, 0);
    }
    dumpByte(b) {
        this.word(b);
    }
    dumpEnd() { }
    finish(line) {
        this.flush();
        this.hash.update(line);
        this.hex = this.hash.hex();
    }
}
//# sourceMappingURL=observe.js.map