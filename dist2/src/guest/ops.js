/**
 * The guest operation set and its batch form: the operations of the scenario
 * format (shared/spec/scenario-format.md) as numbers, the machine they run on,
 * and a batch of operations kept as a structure of arrays (one typed array
 * per operand), so that a million-operation batch stays compact and a
 * runner's loop touches no objects. Scenario files, traces, the guest kernel
 * (through the port) and recorders all speak in these terms.
 *
 * Rules: an operation's number is its identity in traces and recordings, so
 * numbers are never reused or renumbered; this module imports nothing.
 */
export const OP = {
    cpu: 1,
    wrcr: 2,
    wrmsr: 3,
    wrpkru: 4,
    setac: 5,
    read: 6,
    write: 7,
    fetch: 8,
    pread: 9,
    pwrite: 10,
    invlpg: 11,
    invpcid: 12,
    flush: 13,
    dump: 14,
    p2m: 15,
};
/** A batch of operations (a parsed scenario, a trace chunk): the machine and its operations as parallel arrays. */
export class Scenario {
    machine;
    count = 0;
    op;
    line;
    /** Small operand: vcpu, register index, size, type (invpcid; p2m: 0 ram, 1 rom, 2 none), setac value. */
    small;
    cpl;
    /** Address (va or gpa) halves; for p2m: the first gfn. */
    aHi;
    aLo;
    /** Value halves (written value, CR value, pkru); for dump: length; for invpcid: pcid (clamped); for p2m: count. */
    vHi;
    vLo;
    constructor(machine, capacity = 1024) {
        this.machine = machine;
        this.op = new Uint8Array(capacity);
        this.line = new Uint32Array(capacity);
        this.small = new Uint8Array(capacity);
        this.cpl = new Uint8Array(capacity);
        this.aHi = new Uint32Array(capacity);
        this.aLo = new Uint32Array(capacity);
        this.vHi = new Uint32Array(capacity);
        this.vLo = new Uint32Array(capacity);
    }
    /** Append one operation; returns its index. */
    push(op, line) {
        if (this.count === this.op.length)
            this.grow();
        const i = this.count++;
        this.op[i] = op;
        this.line[i] = line;
        return i;
    }
    grow() {
        const n = this.op.length * 2;
        const g = (a, C) => {
            const b = new C(n);
            b.set(a);
            return b;
        };
        this.op = g(this.op, Uint8Array);
        this.line = g(this.line, Uint32Array);
        this.small = g(this.small, Uint8Array);
        this.cpl = g(this.cpl, Uint8Array);
        this.aHi = g(this.aHi, Uint32Array);
        this.aLo = g(this.aLo, Uint32Array);
        this.vHi = g(this.vHi, Uint32Array);
        this.vLo = g(this.vLo, Uint32Array);
    }
}
//# sourceMappingURL=ops.js.map