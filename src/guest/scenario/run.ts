/**
 * The scenario runner: drives a domain's vCPUs through a parsed scenario and
 * produces exactly the output the spec defines (one JSON line per observable
 * event, then the final state). Statistics never go to the output.
 */
import { Cpu, FAULT_GP, FAULT_PF, readValue, writeValue } from '../../arch/x86/cpu.js';
import type { TlbConfig } from '../../arch/x86/tlb.js';
import { Domain } from '../../hypervisor/domain.js';
import type { Pager } from '../../hypervisor/pager.js';
import type { LayoutKind } from '../../machine/placement.js';
import { ascii, OutputBuffer } from './output.js';
import { OP, type Scenario } from './parse.js';

export interface RunOptions {
  pager: Pager;
  layout: LayoutKind;
  seed: number;
  tlb?: TlbConfig;
  /** Guest frame ranges (inclusive) that are read-only, like ROM, under every pager. */
  readOnly?: ReadonlyArray<readonly [number, number]>;
  /** Receives output (ASCII) in chunks. */
  out: (chunk: Uint8Array) => void;
}

export interface RunResult {
  domain: Domain;
  cpus: Cpu[];
  ops: number;
  seconds: number;
}

export function runScenario(s: Scenario, opts: RunOptions): RunResult {
  const domain = new Domain({ ramBytes: s.machine.memory, layout: opts.layout, seed: opts.seed });
  const guest = domain.guest;
  for (const [first, last] of opts.readOnly ?? []) guest.addReadOnly(first, last);
  const cpus: Cpu[] = [];
  for (let v = 0; v < s.machine.vcpus; v++) cpus.push(new Cpu(v, guest, s.machine.maxphyaddr, opts.pager, opts.tlb));
  opts.pager.attach?.(domain, cpus);
  for (const c of cpus) opts.pager.controlChanged(c);
  const pager = opts.pager;
  let cpu = cpus[0] as Cpu;
  const o = new OutputBuffer(opts.out);
  const value = { valueLo: 0, valueHi: 0 };
  const t0 = process.hrtime.bigint();
  const n = s.count;
  const { op, line, small, cpl, aHi, aLo, vHi, vLo } = s;
  for (let i = 0; i < n; i++) {
    const ln = line[i] as number;
    let r = 0;
    switch (op[i]) {
      case OP.cpu:
        cpu = cpus[small[i] as number] as Cpu;
        continue;
      case OP.wrcr: {
        const reg = small[i];
        const hi = vHi[i] as number;
        const lo = vLo[i] as number;
        r = reg === 0 ? cpu.writeCr0(hi, lo) : reg === 3 ? cpu.writeCr3(hi, lo) : cpu.writeCr4(hi, lo);
        break;
      }
      case OP.wrmsr:
        r = cpu.writeEfer(vHi[i] as number, vLo[i] as number);
        break;
      case OP.wrpkru:
        r = cpu.writePkru(vLo[i] as number);
        break;
      case OP.setac:
        r = cpu.setAc(small[i] as number);
        break;
      case OP.read:
        r = cpu.read(aHi[i] as number, aLo[i] as number, small[i] as number, cpl[i] as number);
        if (r === 0) valueLine(o, ln, cpu.valueHi, cpu.valueLo);
        break;
      case OP.write:
        r = cpu.write(
          aHi[i] as number,
          aLo[i] as number,
          small[i] as number,
          vHi[i] as number,
          vLo[i] as number,
          cpl[i] as number,
        );
        if (r === 0) okLine(o, ln);
        break;
      case OP.fetch:
        r = cpu.fetch(aHi[i] as number, aLo[i] as number, cpl[i] as number);
        if (r === 0) valueLine(o, ln, 0, cpu.valueLo);
        break;
      case OP.pread: {
        const gfn = (aHi[i] as number) * 0x100000 + ((aLo[i] as number) >>> 12);
        readValue(guest.frameForRead(gfn), (aLo[i] as number) & 0xfff, small[i] as number, value);
        valueLine(o, ln, value.valueHi, value.valueLo);
        continue;
      }
      case OP.pwrite: {
        const gfn = (aHi[i] as number) * 0x100000 + ((aLo[i] as number) >>> 12);
        const f = guest.frameForWrite(gfn);
        if (f !== null) {
          writeValue(f, (aLo[i] as number) & 0xfff, small[i] as number, vHi[i] as number, vLo[i] as number);
          pager.physicalWrite?.(gfn, (aLo[i] as number) & 0xfff, small[i] as number);
        }
        okLine(o, ln);
        continue;
      }
      case OP.invlpg:
        r = cpu.invlpg(aHi[i] as number, aLo[i] as number);
        break;
      case OP.invpcid:
        r = cpu.invpcid(small[i] as number, vLo[i] as number, aHi[i] as number, aLo[i] as number);
        break;
      case OP.flush:
        r = cpu.flushAll();
        break;
      case OP.dump:
        o.reserve(32);
        o.text('{"i":');
        o.dec(ln);
        o.text(',"bytes":"');
        dumpHex(o, domain, aHi[i] as number, aLo[i] as number, vLo[i] as number);
        o.text('"}\n');
        continue;
    }
    if (r === FAULT_PF) {
      o.reserve(80);
      o.text('{"i":');
      o.dec(ln);
      o.text(',"fault":{"vector":"PF","error":"');
      o.hex64(0, cpu.faultError);
      o.text('","cr2":"');
      o.hex64(cpu.cr2Hi, cpu.cr2Lo);
      o.text('"}}\n');
    } else if (r === FAULT_GP) {
      o.reserve(80);
      o.text('{"i":');
      o.dec(ln);
      o.text(',"fault":{"vector":"GP","error":"0x0"}}\n');
    }
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  o.text(`{"final":{"memory_sha256":"${domain.memorySha256()}","vcpus":[`);
  cpus.forEach((c, v) => {
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
  return { domain, cpus, ops: n, seconds };
}

const LINE_START = ascii('{"i":');
const VALUE = ascii(',"value":"');
const VALUE_END = ascii('"}\n');
const OK = ascii(',"ok":true}\n');

function valueLine(o: OutputBuffer, line: number, hi: number, lo: number): void {
  o.reserve(64);
  o.bytes(LINE_START);
  o.dec(line);
  o.bytes(VALUE);
  o.hex64(hi, lo);
  o.bytes(VALUE_END);
}

function okLine(o: OutputBuffer, line: number): void {
  o.reserve(64);
  o.bytes(LINE_START);
  o.dec(line);
  o.bytes(OK);
}

/** Hex of `length` guest-physical bytes from (hi, lo); unbacked bytes read as ff. */
function dumpHex(o: OutputBuffer, domain: Domain, hi: number, lo: number, length: number): void {
  let gfn = hi * 0x100000 + (lo >>> 12);
  let off = lo & 0xfff;
  let left = length;
  while (left > 0) {
    const take = Math.min(left, 4096 - off);
    const f = domain.guest.frameForRead(gfn);
    for (let b = off; b < off + take; b++) o.hexByte(((f[b >>> 2] as number) >>> ((b & 3) * 8)) & 0xff);
    gfn++;
    off = 0;
    left -= take;
  }
}
