/**
 * Output of a scenario run, written as ASCII bytes into a reusable buffer:
 * a million result lines cost no string building and little garbage.
 */
const HEX = new Uint8Array([...'0123456789abcdef'].map((c) => c.charCodeAt(0)));
/** Encode constant ASCII text once, for bytes(). */
export function ascii(s) {
    return Uint8Array.from(s, (c) => c.charCodeAt(0));
}
export class OutputBuffer {
    sink;
    buf = new Uint8Array(1 << 16);
    n = 0;
    constructor(sink) {
        this.sink = sink;
    }
    /**
     * Make room for `k` more bytes. bytes(), dec() and hex64() do not check:
     * a caller reserves once for a whole line (at most 80 bytes of them).
     */
    reserve(k) {
        if (this.n + k > this.buf.length) {
            this.flush();
            if (k > this.buf.length)
                this.buf = new Uint8Array(k * 2);
        }
    }
    /** Append ASCII text. */
    text(s) {
        this.reserve(s.length);
        const b = this.buf;
        let n = this.n;
        for (let i = 0; i < s.length; i++)
            b[n++] = s.charCodeAt(i);
        this.n = n;
    }
    /** Append pre-encoded ASCII bytes (see ascii()). */
    bytes(a) {
        const b = this.buf;
        let n = this.n;
        for (let i = 0; i < a.length; i++)
            b[n++] = a[i];
        this.n = n;
    }
    /** Append a non-negative integer in decimal. */
    dec(v) {
        if (v > 0xffffffff) {
            const t = String(v);
            for (let i = 0; i < t.length; i++)
                this.buf[this.n++] = t.charCodeAt(i);
            return;
        }
        let digits = 1;
        for (let t = v; t >= 10; t = (t / 10) >>> 0)
            digits++;
        let p = this.n + digits;
        this.n = p;
        const b = this.buf;
        let t = v;
        do {
            const q = (t / 10) >>> 0;
            b[--p] = 48 + t - q * 10;
            t = q;
        } while (t !== 0);
    }
    /** Append "0x" and the minimal lowercase hex of the 64-bit value (hi, lo). */
    hex64(hi, lo) {
        const b = this.buf;
        let n = this.n;
        b[n++] = 48;
        b[n++] = 120;
        if (hi !== 0) {
            for (let s = 28 - (Math.clz32(hi) & ~3); s >= 0; s -= 4)
                b[n++] = HEX[(hi >>> s) & 15];
            for (let s = 28; s >= 0; s -= 4)
                b[n++] = HEX[(lo >>> s) & 15];
        }
        else {
            for (let s = lo === 0 ? 0 : 28 - (Math.clz32(lo) & ~3); s >= 0; s -= 4)
                b[n++] = HEX[(lo >>> s) & 15];
        }
        this.n = n;
    }
    /** Append one byte as two hex digits. */
    hexByte(v) {
        this.reserve(2);
        this.buf[this.n++] = HEX[(v >>> 4) & 15];
        this.buf[this.n++] = HEX[v & 15];
    }
    flush() {
        if (this.n === 0)
            return;
        this.sink(this.buf.slice(0, this.n));
        this.n = 0;
    }
}
//# sourceMappingURL=output.js.map