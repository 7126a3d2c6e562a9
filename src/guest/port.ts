/**
 * The guest port: the only door between a guest driver (a scenario, the
 * guest kernel model, a trace being replayed) and the machine. Each method is
 * one guest operation of the scenario format (shared/spec/scenario-format.md);
 * it runs on the current vCPU, writes the line the spec defines for it to the
 * output, and hands the operation to a recorder if one listens. Whatever
 * drives the port, the output for the same operations is the same bytes, so
 * a recorded workload converted to a scenario prints exactly what the live
 * run digested.
 */
import { Cpu, FAULT_GP, FAULT_PF, readValue, writeValue } from '../arch/x86/cpu.js';
import type { TlbConfig } from '../arch/x86/tlb.js';
import { Domain } from '../hypervisor/domain.js';
import type { Pager } from '../hypervisor/pager.js';
import type { LayoutKind } from '../machine/placement.js';
import { ascii, OutputBuffer } from './scenario/output.js';
import { type Machine, OP } from './scenario/parse.js';

/** Receives every operation in the operands of the scenario structure of arrays. */
export interface OpRecorder {
  op(op: number, small: number, cpl: number, aHi: number, aLo: number, vHi: number, vLo: number): void;
}

export interface PortOptions {
  pager: Pager;
  layout: LayoutKind;
  seed: number;
  tlb?: TlbConfig;
  /** Guest frame ranges (inclusive) that are read-only, like ROM, under every pager. */
  readOnly?: ReadonlyArray<readonly [number, number]>;
  /** Receives output (ASCII) in chunks. */
  out: (chunk: Uint8Array) => void;
}

export class GuestPort {
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
  private readonly o: OutputBuffer;
  private readonly value = { valueLo: 0, valueHi: 0 };

  constructor(
    readonly machine: Machine,
    opts: PortOptions,
  ) {
    this.domain = new Domain({ ramBytes: machine.memory, layout: opts.layout, seed: opts.seed });
    const guest = this.domain.guest;
    for (const [first, last] of opts.readOnly ?? []) guest.addReadOnly(first, last);
    this.cpus = [];
    for (let v = 0; v < machine.vcpus; v++) this.cpus.push(new Cpu(v, guest, machine.maxphyaddr, opts.pager, opts.tlb));
    this.pager = opts.pager;
    opts.pager.attach?.(this.domain, this.cpus);
    for (const c of this.cpus) opts.pager.controlChanged(c);
    this.cpu = this.cpus[0] as Cpu;
    this.o = new OutputBuffer(opts.out);
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
    readValue(this.domain.guest.frameForRead(gfn), lo & 0xfff, size, this.value);
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
    const f = this.domain.guest.frameForWrite(gfn);
    if (f !== null) {
      writeValue(f, lo & 0xfff, size, vHi, vLo);
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

  /** Print `length` guest-physical bytes from (hi, lo) as hex; unbacked bytes read as ff. */
  dump(hi: number, lo: number, length: number): void {
    const ln = this.ln();
    this.recorder?.op(OP.dump, 0, 0, hi, lo, 0, length);
    const o = this.o;
    o.reserve(32);
    o.text('{"i":');
    o.dec(ln);
    o.text(',"bytes":"');
    let gfn = hi * 0x100000 + (lo >>> 12);
    let off = lo & 0xfff;
    let left = length;
    while (left > 0) {
      const take = Math.min(left, 4096 - off);
      const f = this.domain.guest.frameForRead(gfn);
      for (let b = off; b < off + take; b++) o.hexByte(((f[b >>> 2] as number) >>> ((b & 3) * 8)) & 0xff);
      gfn++;
      off = 0;
      left -= take;
    }
    o.text('"}\n');
  }

  /** Write the final-state line and flush the output. */
  finish(): void {
    const o = this.o;
    o.text(`{"final":{"memory_sha256":"${this.domain.memorySha256()}","vcpus":[`);
    this.cpus.forEach((c, v) => {
      o.reserve(128);
      o.text(v === 0 ? '{"cr0":"' : ',{"cr0":"');
      o.hex64(0, c.cr0);
      o.text('","cr3":"');
      o.hex64(c.cr3Hi, c.cr3Lo);
      o.text('","cr4":"');
      o.hex64(0, c.cr4);
      o.text('","efer":"');
      o.hex64(0, c.efer);
      o.text('"}');
    });
    o.text(']}}\n');
    o.flush();
  }

  private fault(ln: number, r: number): number {
    const o = this.o;
    if (r === FAULT_PF) {
      const c = this.cpu;
      o.reserve(80);
      o.bytes(LINE_START);
      o.dec(ln);
      o.bytes(PF);
      o.hex64(0, c.faultError);
      o.bytes(CR2);
      o.hex64(c.cr2Hi, c.cr2Lo);
      o.bytes(PF_END);
    } else if (r === FAULT_GP) {
      o.reserve(80);
      o.bytes(LINE_START);
      o.dec(ln);
      o.bytes(GP);
    }
    return r;
  }

  private valueLine(ln: number, hi: number, lo: number): void {
    const o = this.o;
    o.reserve(64);
    o.bytes(LINE_START);
    o.dec(ln);
    o.bytes(VALUE);
    o.hex64(hi, lo);
    o.bytes(VALUE_END);
  }

  private okLine(ln: number): void {
    const o = this.o;
    o.reserve(64);
    o.bytes(LINE_START);
    o.dec(ln);
    o.bytes(OK);
  }
}

const LINE_START = ascii('{"i":');
const VALUE = ascii(',"value":"');
const VALUE_END = ascii('"}\n');
const OK = ascii(',"ok":true}\n');
const PF = ascii(',"fault":{"vector":"PF","error":"');
const CR2 = ascii('","cr2":"');
const PF_END = ascii('"}}\n');
const GP = ascii(',"fault":{"vector":"GP","error":"0x0"}}\n');
