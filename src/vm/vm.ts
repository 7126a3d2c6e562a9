/**
 * The one place a machine is assembled: a Vm is a domain (guest RAM placed in
 * machine memory, which owns the P2M's backing and the ROM ranges), its
 * vCPUs, and the pager that virtualizes it, attached before the guest runs.
 * Guest drivers (scenarios, the kernel model, trace replay) reach it only
 * through the guest port above; front ends (CLI, benches, tests, later the
 * browser and sweeps) describe a run with a plain, serialisable RunSpec.
 */
import { Cpu } from '../arch/x86/cpu.js';
import type { TlbConfig } from '../arch/x86/tlb.js';
import { Domain } from '../hypervisor/domain.js';
import type { Pager } from '../hypervisor/pager.js';
import { PHYS_ROM } from '../hypervisor/physmap.js';
import type { LayoutKind } from '../machine/placement.js';
import { createPager, type PagerOptions } from '../pagers/registry.js';

/** The guest machine: what a scenario's first line says. */
export interface MachineConfig {
  readonly vcpus: number;
  /** Guest RAM in bytes, from guest-physical address 0. */
  readonly memory: number;
  readonly maxphyaddr: number;
}

/** Where the machine lives and which TLB it has: everything but the pager. */
export interface HostConfig {
  layout: LayoutKind;
  /** Seed of the scattered layout. */
  seed: number;
  tlb?: TlbConfig;
  /** Guest frame ranges (inclusive) that are read-only, like ROM, under every pager. */
  readOnly?: ReadonlyArray<readonly [number, number]>;
}

/** A run as data: the machine, the host, and the pager by its spec (src/pagers/registry.ts). */
export interface RunSpec extends HostConfig {
  machine: MachineConfig;
  pager: string;
  pagerOptions?: PagerOptions;
}

export class Vm {
  readonly domain: Domain;
  readonly cpus: Cpu[];

  constructor(
    readonly machine: MachineConfig,
    readonly pager: Pager,
    host: HostConfig,
  ) {
    this.domain = new Domain({ ramBytes: machine.memory, layout: host.layout, seed: host.seed });
    const guest = this.domain.guest;
    const ram = guest.ramFrames;
    for (const [first, last] of host.readOnly ?? []) {
      if (first < ram) this.domain.setType(first, Math.min(last, ram - 1) - first + 1, PHYS_ROM);
    }
    this.cpus = [];
    for (let v = 0; v < machine.vcpus; v++) this.cpus.push(new Cpu(v, guest, machine.maxphyaddr, pager, host.tlb));
    pager.attach(this.domain, this.cpus);
  }

  /** Assemble a run spec's machine, its pager built by the registry. */
  static create(spec: RunSpec): Vm {
    return new Vm(spec.machine, createPager(spec.pager, spec.pagerOptions), spec);
  }
}
