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
import { type Cpu, FAULT_GP, FAULT_PF, readValue, writeValue } from '../arch/x86/cpu.js';
import type { Domain } from '../hypervisor/domain.js';
import type { Pager } from '../hypervisor/pager.js';
import type { PhysType } from '../hypervisor/physmap.js';
import { FRAME_AT } from '../machine/memory.js';
import { type HostConfig, Vm } from '../vm/vm.js';
import { OutcomeDigest } from './observe.js';
import { type Machine, OP, type Scenario } from './ops.js';
import { ScenarioLines } from './scenario/lines.js';

/** Receives every operation in the operands of the scenario structure of arrays. */
export interface OpRecorder {
  op(op: number, small: number, cpl: number, aHi: number, aLo: number, vHi: number, vLo: number): void;
}

/** Hand every operation of a parsed batch to a recorder (a trace writer). */
export function recordOps(rec: OpRecorder, s: Scenario): void {
  const { op, small, cpl, aHi, aLo, vHi, vLo } = s;
  for (let i = 0; i < s.count; i++) {
    rec.op(
      op[i] as number,
      small[i] as number,
      cpl[i] as number,
      aHi[i] as number,
      aLo[i] as number,
      vHi[i] as number,
      vLo[i] as number,
    );
  }
}

export interface PortOptions extends HostConfig {
  pager: Pager;
  /** Receives the output (ASCII JSON Lines, the scenario format) in chunks, each its own unless `outReused`. */
  out?: (chunk: Uint8Array) => void;
  /** `out` copies what it keeps: its chunks are views of one buffer the writer reuses. */
  outReused?: boolean;
  /** Keep a digest of the guest-visible outcome (see GuestPort.digest). */
  digest?: boolean;
}

export class GuestPort {
  /** The machine behind the port (src/vm/). */
  readonly vm: Vm;
  readonly domain: Domain;
  readonly cpus: Cpu[];
  readonly pager: Pager;
  cpu: Cpu;
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
  recorder: OpRecorder | null = null;
  /** The observers (observe.ts): the output lines and the digest, each optional, called in that order. */
  private readonly out: ScenarioLines | null;
  private readonly outcome: OutcomeDigest | null;
  private readonly value = { valueLo: 0, valueHi: 0 };

  constructor(
    readonly machine: Machine,
    opts: PortOptions,
  ) {
    this.vm = new Vm(machine, opts.pager, opts);
    this.domain = this.vm.domain;
    this.cpus = this.vm.cpus;
    this.pager = opts.pager;
    this.cpu = this.cpus[0] as Cpu;
    this.out = opts.out === undefined ? null : new ScenarioLines(opts.out, opts.outReused === true);
    this.outcome = opts.digest ? new OutcomeDigest() : null;
  }

  /** The digest of what the guest observed (OutcomeDigest, observe.ts); available after finish(). */
  get digest(): string {
    return this.outcome?.hex ?? '';
  }

  private ln(): number {
    this.ops++;
    return this.autoLine ? ++this.line : this.line;
  }

  selectCpu(v: number): void {
    this.ops++;
    if (this.autoLine) this.line++;
    this.recorder?.op(OP.cpu, v, 0, 0, 0, 0, 0);
    this.cpu = this.cpus[v] as Cpu;
  }

  /** MOV to CR0/CR3/CR4 (reg 0, 3 or 4). */
  wrcr(reg: number, hi: number, lo: number): number {
    const ln = this.ln();
    this.recorder?.op(OP.wrcr, reg, 0, 0, 0, hi, lo);
    const c = this.cpu;
    return this.fault(ln, reg === 0 ? c.writeCr0(hi, lo) : reg === 3 ? c.writeCr3(hi, lo) : c.writeCr4(hi, lo));
  }

  wrmsrEfer(hi: number, lo: number): number {
    const ln = this.ln();
    this.recorder?.op(OP.wrmsr, 0, 0, 0, 0, hi, lo);
    return this.fault(ln, this.cpu.writeEfer(hi, lo));
  }

  wrpkru(v: number): number {
    const ln = this.ln();
    this.recorder?.op(OP.wrpkru, 0, 0, 0, 0, 0, v);
    return this.fault(ln, this.cpu.writePkru(v));
  }

  setac(v: number): number {
    const ln = this.ln();
    this.recorder?.op(OP.setac, v, 0, 0, 0, 0, 0);
    return this.fault(ln, this.cpu.setAc(v));
  }

  /** Data read; on success the value is in cpu.valueHi/valueLo. */
  read(hi: number, lo: number, size: number, cpl: number): number {
    const ln = this.ln();
    this.recorder?.op(OP.read, size, cpl, hi, lo, 0, 0);
    const c = this.cpu;
    const r = c.read(hi, lo, size, cpl);
    if (r === 0) this.valueLine(ln, c.valueHi, c.valueLo);
    else this.fault(ln, r);
    return r;
  }

  write(hi: number, lo: number, size: number, vHi: number, vLo: number, cpl: number): number {
    const ln = this.ln();
    this.recorder?.op(OP.write, size, cpl, hi, lo, vHi, vLo);
    const r = this.cpu.write(hi, lo, size, vHi, vLo, cpl);
    if (r === 0) this.okLine(ln);
    else this.fault(ln, r);
    return r;
  }

  /** Instruction fetch of one byte; on success the byte is in cpu.valueLo. */
  fetch(hi: number, lo: number, cpl: number): number {
    const ln = this.ln();
    this.recorder?.op(OP.fetch, 0, cpl, hi, lo, 0, 0);
    const c = this.cpu;
    const r = c.fetch(hi, lo, cpl);
    if (r === 0) this.valueLine(ln, 0, c.valueLo);
    else this.fault(ln, r);
    return r;
  }

  /** Guest-physical read (cannot fault); the value is in preadHi/preadLo. */
  pread(hi: number, lo: number, size: number): void {
    const ln = this.ln();
    this.recorder?.op(OP.pread, size, 0, hi, lo, 0, 0);
    const gfn = hi * 0x100000 + (lo >>> 12);
    const f = this.domain.guest.locate(gfn);
    readValue(f, (FRAME_AT[0] as number) * 4 + (lo & 0xfff), size, this.value);
    this.valueLine(ln, this.value.valueHi, this.value.valueLo);
  }

  get preadHi(): number {
    return this.value.valueHi;
  }
  get preadLo(): number {
    return this.value.valueLo;
  }

  /** Guest-physical write by a device or loader; the pager keeps its derived state coherent. */
  pwrite(hi: number, lo: number, size: number, vHi: number, vLo: number): void {
    const ln = this.ln();
    this.recorder?.op(OP.pwrite, size, 0, hi, lo, vHi, vLo);
    const gfn = hi * 0x100000 + (lo >>> 12);
    const f = this.domain.guest.locateForWrite(gfn);
    if (f !== null) {
      writeValue(f, (FRAME_AT[0] as number) * 4 + (lo & 0xfff), size, vHi, vLo);
      this.pager.physicalWrite?.(gfn, lo & 0xfff, size);
    }
    this.okLine(ln);
  }

  invlpg(hi: number, lo: number): number {
    const ln = this.ln();
    this.recorder?.op(OP.invlpg, 0, 0, hi, lo, 0, 0);
    return this.fault(ln, this.cpu.invlpg(hi, lo));
  }

  invpcid(type: number, pcid: number, hi: number, lo: number): number {
    const ln = this.ln();
    this.recorder?.op(OP.invpcid, type, 0, hi, lo, 0, pcid);
    return this.fault(ln, this.cpu.invpcid(type, pcid, hi, lo));
  }

  flush(): number {
    const ln = this.ln();
    this.recorder?.op(OP.flush, 0, 0, 0, 0, 0, 0);
    return this.fault(ln, this.cpu.flushAll());
  }

  /**
   * The hypervisor changes what backs guest frames [gfn, gfn+count) to
   * `type` (0 ram, 1 rom, 2 none: hypervisor/physmap.ts); the pager drops
   * what it derived from them.
   */
  p2m(gfn: number, count: number, type: number): void {
    const ln = this.ln();
    this.recorder?.op(OP.p2m, type, 0, 0, gfn, 0, count);
    this.domain.setType(gfn, count, type as PhysType);
    this.pager.physmapChanged?.(gfn, count);
    this.okLine(ln);
  }

  /** Print `length` guest-physical bytes from (hi, lo) as hex; unbacked bytes read as ff. */
  dump(hi: number, lo: number, length: number): void {
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
        const v = ((f[b >>> 2] as number) >>> ((b & 3) * 8)) & 0xff;
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
  finish(): void {
    let line = `{"final":{"memory_sha256":"${this.domain.memorySha256()}","vcpus":[`;
    this.cpus.forEach((c, v) => {
      line += `${v === 0 ? '' : ','}{"cr0":"${hex(0, c.cr0)}","cr3":"${hex(c.cr3Hi, c.cr3Lo)}","cr4":"${hex(0, c.cr4)}","efer":"${hex(0, c.efer)}"}`;
    });
    line += ']}}\n';
    this.out?.finish(line);
    this.outcome?.finish(line);
  }

  private fault(ln: number, r: number): number {
    if (r === FAULT_PF) {
      const c = this.cpu;
      this.out?.pageFault(ln, c.faultError, c.cr2Hi, c.cr2Lo);
      this.outcome?.pageFault(ln, c.faultError, c.cr2Hi, c.cr2Lo);
    } else if (r === FAULT_GP) {
      this.out?.generalProtection(ln);
      this.outcome?.generalProtection(ln);
    }
    return r;
  }

  private valueLine(ln: number, hi: number, lo: number): void {
    this.out?.value(ln, hi, lo);
    this.outcome?.value(ln, hi, lo);
  }

  private okLine(ln: number): void {
    this.out?.ok(ln);
    this.outcome?.ok(ln);
  }
}

/** Minimal lowercase hex with 0x of a 64-bit value (hi, lo). */
function hex(hi: number, lo: number): string {
  return hi === 0 ? `0x${lo.toString(16)}` : `0x${hi.toString(16)}${lo.toString(16).padStart(8, '0')}`;
}
