/**
 * The guest port: the only door between a guest driver (a scenario, the
 * guest kernel model, a trace being replayed) and the machine. Each method is
 * one guest operation of the scenario format (shared/spec/scenario-format.md);
 * it runs on the current vCPU and reports the outcome to its observers
 * (observe.ts): the output lines the spec defines (scenario/lines.ts) and the
 * digest of what the guest saw, each if asked for; a recorder, if one
 * listens, receives the operation itself. Whatever drives the port, the
 * output for the same operations is the same bytes, so a recorded workload
 * converted to a scenario prints exactly what the live run digested.
 */
import { FAULT_GP, FAULT_PF, readValue, writeValue } from '../arch/x86/cpu.js';
import { Vm } from '../vm/vm.js';
import { OutcomeDigest } from './observe.js';
import { OP } from './ops.js';
import { ScenarioLines } from './scenario/lines.js';
/** Hand every operation of a parsed batch to a recorder (a trace writer). */
export function recordOps(rec, s) {
    const { op, small, cpl, aHi, aLo, vHi, vLo } = s;
    for (let i = 0; i < s.count; i++) {
        rec.op(op[i], small[i], cpl[i], aHi[i], aLo[i], vHi[i], vLo[i]);
    }
}
export class GuestPort {
    machine;
    /** The machine behind the port (src/vm/). */
    vm;
    domain;
    cpus;
    pager;
    cpu;
    /**
     * The output line number ("i") of the next operation. A scenario runner
     * sets it from the file; a generated stream (kernel model, trace) counts it
     * up from 2, the line after the machine line of its scenario form.
     */
    line = 1;
    /** Count lines automatically (generated streams). */
    autoLine = false;
    /** Operations run through the port. */
    ops = 0;
    recorder = null;
    /** The observers (observe.ts): the output lines and the digest, each optional, called in that order. */
    out;
    outcome;
    value = { valueLo: 0, valueHi: 0 };
    constructor(machine, opts) {
        this.machine = machine;
        this.vm = new Vm(machine, opts.pager, opts);
        this.domain = this.vm.domain;
        this.cpus = this.vm.cpus;
        this.pager = opts.pager;
        this.cpu = this.cpus[0];
        this.out = opts.out === undefined ? null : new ScenarioLines(opts.out);
        this.outcome = opts.digest ? new OutcomeDigest() : null;
    }
    /** The digest of what the guest observed (OutcomeDigest, observe.ts); available after finish(). */
    get digest() {
        return this.outcome?.hex ?? '';
    }
    ln() {
        this.ops++;
        return this.autoLine ? ++this.line : this.line;
    }
    selectCpu(v) {
        this.ops++;
        if (this.autoLine)
            this.line++;
        this.recorder?.op(OP.cpu, v, 0, 0, 0, 0, 0);
        this.cpu = this.cpus[v];
    }
    /** MOV to CR0/CR3/CR4 (reg 0, 3 or 4). */
    wrcr(reg, hi, lo) {
        const ln = this.ln();
        this.recorder?.op(OP.wrcr, reg, 0, 0, 0, hi, lo);
        const c = this.cpu;
        return this.fault(ln, reg === 0 ? c.writeCr0(hi, lo) : reg === 3 ? c.writeCr3(hi, lo) : c.writeCr4(hi, lo));
    }
    wrmsrEfer(hi, lo) {
        const ln = this.ln();
        this.recorder?.op(OP.wrmsr, 0, 0, 0, 0, hi, lo);
        return this.fault(ln, this.cpu.writeEfer(hi, lo));
    }
    wrpkru(v) {
        const ln = this.ln();
        this.recorder?.op(OP.wrpkru, 0, 0, 0, 0, 0, v);
        return this.fault(ln, this.cpu.writePkru(v));
    }
    setac(v) {
        const ln = this.ln();
        this.recorder?.op(OP.setac, v, 0, 0, 0, 0, 0);
        return this.fault(ln, this.cpu.setAc(v));
    }
    /** Data read; on success the value is in cpu.valueHi/valueLo. */
    read(hi, lo, size, cpl) {
        const ln = this.ln();
        this.recorder?.op(OP.read, size, cpl, hi, lo, 0, 0);
        const c = this.cpu;
        const r = c.read(hi, lo, size, cpl);
        if (r === 0)
            this.valueLine(ln, c.valueHi, c.valueLo);
        else
            this.fault(ln, r);
        return r;
    }
    write(hi, lo, size, vHi, vLo, cpl) {
        const ln = this.ln();
        this.recorder?.op(OP.write, size, cpl, hi, lo, vHi, vLo);
        const r = this.cpu.write(hi, lo, size, vHi, vLo, cpl);
        if (r === 0)
            this.okLine(ln);
        else
            this.fault(ln, r);
        return r;
    }
    /** Instruction fetch of one byte; on success the byte is in cpu.valueLo. */
    fetch(hi, lo, cpl) {
        const ln = this.ln();
        this.recorder?.op(OP.fetch, 0, cpl, hi, lo, 0, 0);
        const c = this.cpu;
        const r = c.fetch(hi, lo, cpl);
        if (r === 0)
            this.valueLine(ln, 0, c.valueLo);
        else
            this.fault(ln, r);
        return r;
    }
    /** Guest-physical read (cannot fault); the value is in preadHi/preadLo. */
    pread(hi, lo, size) {
        const ln = this.ln();
        this.recorder?.op(OP.pread, size, 0, hi, lo, 0, 0);
        const gfn = hi * 0x100000 + (lo >>> 12);
        readValue(this.domain.guest.frameForRead(gfn), lo & 0xfff, size, this.value);
        this.valueLine(ln, this.value.valueHi, this.value.valueLo);
    }
    get preadHi() {
        return this.value.valueHi;
    }
    get preadLo() {
        return this.value.valueLo;
    }
    /** Guest-physical write by a device or loader; the pager keeps its derived state coherent. */
    pwrite(hi, lo, size, vHi, vLo) {
        const ln = this.ln();
        this.recorder?.op(OP.pwrite, size, 0, hi, lo, vHi, vLo);
        const gfn = hi * 0x100000 + (lo >>> 12);
        const f = this.domain.guest.frameForWrite(gfn);
        if (f !== null) {
            writeValue(f, lo & 0xfff, size, vHi, vLo);
            this.pager.physicalWrite?.(gfn, lo & 0xfff, size);
        }
        this.okLine(ln);
    }
    invlpg(hi, lo) {
        const ln = this.ln();
        this.recorder?.op(OP.invlpg, 0, 0, hi, lo, 0, 0);
        return this.fault(ln, this.cpu.invlpg(hi, lo));
    }
    invpcid(type, pcid, hi, lo) {
        const ln = this.ln();
        this.recorder?.op(OP.invpcid, type, 0, hi, lo, 0, pcid);
        return this.fault(ln, this.cpu.invpcid(type, pcid, hi, lo));
    }
    flush() {
        const ln = this.ln();
        this.recorder?.op(OP.flush, 0, 0, 0, 0, 0, 0);
        return this.fault(ln, this.cpu.flushAll());
    }
    /**
     * The hypervisor changes what backs guest frames [gfn, gfn+count) to
     * `type` (0 ram, 1 rom, 2 none: hypervisor/physmap.ts); the pager drops
     * what it derived from them.
     */
    p2m(gfn, count, type) {
        const ln = this.ln();
        this.recorder?.op(OP.p2m, type, 0, 0, gfn, 0, count);
        this.domain.setType(gfn, count, type);
        this.pager.physmapChanged?.(gfn, count);
        this.okLine(ln);
    }
    /** Print `length` guest-physical bytes from (hi, lo) as hex; unbacked bytes read as ff. */
    dump(hi, lo, length) {
        const ln = this.ln();
        this.recorder?.op(OP.dump, 0, 0, hi, lo, 0, length);
        this.out?.dumpStart(ln, length);
        this.outcome?.dumpStart(ln, length);
        let gfn = hi * 0x100000 + (lo >>> 12);
        let off = lo & 0xfff;
        let left = length;
        while (left > 0) {
            const take = Math.min(left, 4096 - off);
            const f = this.domain.guest.frameForRead(gfn);
            for (let b = off; b < off + take; b++) {
                const v = (f[b >>> 2] >>> ((b & 3) * 8)) & 0xff;
                this.out?.dumpByte(v);
                this.outcome?.dumpByte(v);
            }
            gfn++;
            off = 0;
            left -= take;
        }
        this.out?.dumpEnd();
        this.outcome?.dumpEnd();
    }
    /** Write the final-state line, flush the output and complete the digest. */
    finish() {
        let line = `{"final":{"memory_sha256":"${this.domain.memorySha256()}","vcpus":[`;
        this.cpus.forEach((c, v) => {
            line += `${v === 0 ? '' : ','}{"cr0":"${hex(0, c.cr0)}","cr3":"${hex(c.cr3Hi, c.cr3Lo)}","cr4":"${hex(0, c.cr4)}","efer":"${hex(0, c.efer)}"}`;
        });
        line += ']}}\n';
        this.out?.finish(line);
        this.outcome?.finish(line);
    }
    fault(ln, r) {
        if (r === FAULT_PF) {
            const c = this.cpu;
            this.out?.pageFault(ln, c.faultError, c.cr2Hi, c.cr2Lo);
            this.outcome?.pageFault(ln, c.faultError, c.cr2Hi, c.cr2Lo);
        }
        else if (r === FAULT_GP) {
            this.out?.generalProtection(ln);
            this.outcome?.generalProtection(ln);
        }
        return r;
    }
    valueLine(ln, hi, lo) {
        this.out?.value(ln, hi, lo);
        this.outcome?.value(ln, hi, lo);
    }
    okLine(ln) {
        this.out?.ok(ln);
        this.outcome?.ok(ln);
    }
}
/** Minimal lowercase hex with 0x of a 64-bit value (hi, lo). */
function hex(hi, lo) {
    return hi === 0 ? `0x${lo.toString(16)}` : `0x${hi.toString(16)}${lo.toString(16).padStart(8, '0')}`;
}
//# sourceMappingURL=port.js.map