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
import { type Cpu, FAULT_GP, FAULT_PF, readValue, writeValue } from '../arch/x86/cpu.js';
import type { Domain } from '../hypervisor/domain.js';
import type { Pager } from '../hypervisor/pager.js';
import type { PhysType } from '../hypervisor/physmap.js';
import { createSha256, type Sha256 } from '../util/sha256.js';
import { type HostConfig, Vm } from '../vm/vm.js';
import { type Machine, OP, type Scenario } from './ops.js';
import { ascii, OutputBuffer } from './scenario/output.js';

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
  /** Receives the output (ASCII JSON Lines, the scenario format) in chunks. */
  out?: (chunk: Uint8Array) => void;
  /** Keep a digest of the guest-visible outcome (see GuestPort.digest). */
  digest?: boolean;
}

/** Digest record tags: one per operation that the scenario format prints a line for. */
const D_OK = 0;
const D_VALUE = 1;
const D_PF = 2;
const D_GP = 3;
const D_DUMP = 4;

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
  private readonly o: OutputBuffer | null;
  /** Digest: words of the outcome stream, hashed a buffer at a time. */
  private readonly d: Uint32Array | null;
  private dn = 0;
  private readonly hash: Sha256 | null;
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
    this.o = opts.out === undefined ? null : new OutputBuffer(opts.out);
    this.d = opts.digest ? new Uint32Array(16384) : null;
    this.hash = opts.digest ? createSha256() : null;
  }

  /**
   * The digest of what the guest observed: SHA-256 over, for each operation
   * that the scenario format prints a line for, in order, little-endian
   * 32-bit words — [0] for a completed write, [1, lo, hi] for a value read,
   * [2, error, cr2 lo, cr2 hi] for #PF, [3] for #GP, [4, length] then the
   * bytes for a dump — followed by the final line of the scenario output.
   * It carries the same information as the output (whose line numbers follow
   * from the operation stream) at a fraction of the cost of printing it.
   * Available after finish().
   */
  digest = '';

  private dig(a: number): void {
    const d = this.d as Uint32Array;
    if (this.dn + 4 > d.length) this.digFlush();
    d[this.dn++] = a;
  }

  private dig3(a: number, b: number, c: number): void {
    const d = this.d as Uint32Array;
    if (this.dn + 4 > d.length) this.digFlush();
    d[this.dn++] = a;
    d[this.dn++] = b;
    d[this.dn++] = c;
  }

  private digFlush(): void {
    (this.hash as Sha256).update(new Uint8Array((this.d as Uint32Array).buffer, 0, this.dn * 4));
    this.dn = 0;
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
    const o = this.o;
    if (o !== null) {
      o.reserve(32);
      o.text('{"i":');
      o.dec(ln);
      o.text(',"bytes":"');
    }
    if (this.d !== null) this.dig3(D_DUMP, length, 0);
    let gfn = hi * 0x100000 + (lo >>> 12);
    let off = lo & 0xfff;
    let left = length;
    while (left > 0) {
      const take = Math.min(left, 4096 - off);
      const f = this.domain.guest.frameForRead(gfn);
      for (let b = off; b < off + take; b++) {
        const v = ((f[b >>> 2] as number) >>> ((b & 3) * 8)) & 0xff;
        o?.hexByte(v);
        if (this.d !== null) this.dig(v);
      }
      gfn++;
      off = 0;
      left -= take;
    }
    o?.text('"}\n');
  }

  /** Write the final-state line, flush the output and complete the digest. */
  finish(): void {
    let line = `{"final":{"memory_sha256":"${this.domain.memorySha256()}","vcpus":[`;
    this.cpus.forEach((c, v) => {
      line += `${v === 0 ? '' : ','}{"cr0":"${hex(0, c.cr0)}","cr3":"${hex(c.cr3Hi, c.cr3Lo)}","cr4":"${hex(0, c.cr4)}","efer":"${hex(0, c.efer)}"}`;
    });
    line += ']}}\n';
    if (this.o !== null) {
      this.o.text(line);
      this.o.flush();
    }
    if (this.hash !== null) {
      this.digFlush();
      this.hash.update(line);
      this.digest = this.hash.hex();
    }
  }

  private fault(ln: number, r: number): number {
    if (r === 0) return r;
    const o = this.o;
    const c = this.cpu;
    if (r === FAULT_PF) {
      if (o !== null) {
        o.reserve(80);
        o.bytes(LINE_START);
        o.dec(ln);
        o.bytes(PF);
        o.hex64(0, c.faultError);
        o.bytes(CR2);
        o.hex64(c.cr2Hi, c.cr2Lo);
        o.bytes(PF_END);
      }
      if (this.d !== null) {
        this.dig(D_PF);
        this.dig3(c.faultError, c.cr2Lo, c.cr2Hi);
      }
    } else if (r === FAULT_GP) {
      if (o !== null) {
        o.reserve(80);
        o.bytes(LINE_START);
        o.dec(ln);
        o.bytes(GP);
      }
      if (this.d !== null) this.dig(D_GP);
    }
    return r;
  }

  private valueLine(ln: number, hi: number, lo: number): void {
    const o = this.o;
    if (o !== null) {
      o.reserve(64);
      o.bytes(LINE_START);
      o.dec(ln);
      o.bytes(VALUE);
      o.hex64(hi, lo);
      o.bytes(VALUE_END);
    }
    if (this.d !== null) this.dig3(D_VALUE, lo, hi);
  }

  private okLine(ln: number): void {
    const o = this.o;
    if (o !== null) {
      o.reserve(64);
      o.bytes(LINE_START);
      o.dec(ln);
      o.bytes(OK);
    }
    if (this.d !== null) this.dig(D_OK);
  }
}

/** Minimal lowercase hex with 0x of a 64-bit value (hi, lo). */
function hex(hi: number, lo: number): string {
  return hi === 0 ? `0x${lo.toString(16)}` : `0x${hi.toString(16)}${lo.toString(16).padStart(8, '0')}`;
}

const LINE_START = ascii('{"i":');
const VALUE = ascii(',"value":"');
const VALUE_END = ascii('"}\n');
const OK = ascii(',"ok":true}\n');
const PF = ascii(',"fault":{"vector":"PF","error":"');
const CR2 = ascii('","cr2":"');
const PF_END = ascii('"}}\n');
const GP = ascii(',"fault":{"vector":"GP","error":"0x0"}}\n');
