#!/usr/bin/env node
/**
 * The `umbra` command. Every user-facing failure ends in one line on stderr
 * and a non-zero status (2 for bad input), never a stack trace.
 */
import { Command, CommanderError, Option } from 'commander';
import { ConfigError } from '../hypervisor/pager.js';
import { useNodeSha256 } from '../io/sha256.js';
import { CompareError } from '../metrics/compare.js';
import { registerCaptureCommand } from './capture.js';
import { countersCommand } from './counters.js';
import { UsageError } from './errors.js';
import { execCommand } from './exec.js';
import { inspectCommand, translateCommand } from './image.js';
import { registerTraceCommands } from './trace.js';
import { registerWorkloadCommands } from './workload.js';

useNodeSha256(); // native hashing: the memory hash of big guests is on the hot path

const program = new Command();
program
  .name('umbra')
  .description(
    'Run, inspect and measure x86 memory virtualization: paging, TLB, native and shadow pagers, real guest images',
  )
  .version('0.1.0')
  .exitOverride()
  .configureOutput({
    outputError: (str, write) => write(str.split('\n')[0] ? `${str.trimEnd().split('\n')[0]}\n` : str),
  });

program
  .command('exec')
  .description('run a scenario (JSON Lines, spec version 1) and print what the guest observes')
  .argument('<file>', 'scenario file, or - for standard input')
  .option('--pager <spec>', 'pager: native, shadow, or shadow with switches (shadow:-oos:+prefetch=8)', 'native')
  .addOption(
    new Option('--layout <kind>', 'where guest frames sit in machine memory')
      .choices(['identity', 'scatter'])
      .default('identity'),
  )
  .option('--seed <n>', 'seed for --layout scatter', '0')
  .option('--tlb <geometry>', 'TLB geometry: default, off, tiny, or 4k=SETSxWAYS,2m=SETSxWAYS,1g=SETSxWAYS', 'default')
  .option('--stats', 'print statistics to stderr')
  .option('--stats-json <file>', 'write statistics as JSON')
  .option(
    '--p2m-ro <gfns>',
    'make guest frames GFN or GFN-GFN read-only (ROM); repeatable',
    (v: string, acc: string[]) => [...acc, v],
    [] as string[],
  )
  .option('--check', 'run the shadow isolation checker after every exit')
  .option('--shadow-pool <frames>', "shadow pager's pool size in frames (default: Xen's rule; see shadow:pool=N)")
  .option('--trace-walks [file]', 'print every hardware walk (the 2-D grid under nested paging) to stderr, or to FILE')
  .action(execCommand);

program
  .command('inspect')
  .description("show a real guest image's address space (QEMU dump-guest-memory ELF core, .xz or not)")
  .argument('<image>', 'ELF core file (.elf or .elf.xz)')
  .option('--cpu <n>', 'vCPU index', '0')
  .addOption(
    new Option('--format <fmt>', 'output format')
      .choices(['qemu-tlb', 'qemu-mem', 'json', 'summary'])
      .default('summary'),
  )
  .option('--registers <file>', "QEMU 'info registers' text for this vCPU (gives EFER)")
  .option('--maxphyaddr <n>', 'physical-address width of the guest CPU')
  .option('--sample', 'with summary: also translate a few sample addresses')
  .action(inspectCommand);

program
  .command('translate')
  .description('walk one linear address through a real guest image step by step')
  .argument('<image>', 'ELF core file (.elf or .elf.xz)')
  .argument('<va>', 'linear address (hex with 0x, or decimal)')
  .option('--cpu <n>', 'vCPU index', '0')
  .addOption(new Option('--access <kind>', 'access type').choices(['r', 'w', 'x']).default('r'))
  .option('--cpl <n>', 'current privilege level 0-3', '0')
  .option('--registers <file>', "QEMU 'info registers' text for this vCPU (gives EFER)")
  .option('--maxphyaddr <n>', 'physical-address width of the guest CPU')
  .option('--root <which>', 'walk from CR3 (cr3) or the KPTI twin table (twin)', 'cr3')
  .option(
    '--nested [spec]',
    'show the 2-D walk with the image behind a stage 2 built as the nested pager builds it (spec: nested[:npt][:levels=5][:-large][:-pwc]…)',
  )
  .option('--layout <kind>', 'with --nested: where guest frames sit in machine memory, identity or scatter', 'identity')
  .option('--seed <n>', 'with --nested --layout scatter: the placement seed', '1')
  .option('--warm', 'with --nested: walk the address once first, so the paging-structure caches are warm')
  .action(translateCommand);

program
  .command('counters')
  .description("list every counter a run reports and what it means (the CPU's and each pager's)")
  .option('--pager <spec>', "only this pager's counters (native, shadow, …)")
  .option('--json', 'as JSON')
  .action(countersCommand);

registerTraceCommands(program);
registerCaptureCommand(program);
registerWorkloadCommands(program);

async function main(): Promise<void> {
  try {
    await program.parseAsync(process.argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      process.exitCode = e.exitCode === 0 ? 0 : 2;
      return;
    }
    if (e instanceof UsageError || e instanceof ConfigError || e instanceof CompareError) {
      process.stderr.write(`umbra: ${e.message}\n`);
      process.exitCode = 2;
      return;
    }
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`umbra: internal error: ${msg}\n`);
    process.exitCode = 70;
  }
}

await main();
