/**
 * `umbra capture [-o FILE] -- CMD ARGS…`: run a real program under valgrind
 * and write what it did to its address space as a program trace
 * (docs/programs.md). The tool is checked first: without it, one line saying
 * how to install it, exit 2.
 */
import type { Command } from 'commander';
import { CaptureError } from '../capture/lackey.js';
import { capture, INSTALL_HINT, valgrindVersion } from '../capture/run.js';
import { UsageError } from './errors.js';

export function registerCaptureCommand(program: Command): void {
  program
    .command('capture')
    .description('run a program under valgrind (lackey) and record its accesses and address-space system calls')
    .argument('<command...>', 'the command and its arguments (after --)')
    .option('-o, --output <file>', 'program trace to write', 'program.ump')
    .option('--keep-logs <dir>', "keep valgrind's logs in this (empty, existing) directory")
    .action(async (argv: string[], o: { output: string; keepLogs?: string }) => {
      if (valgrindVersion() === null) throw new UsageError(INSTALL_HINT);
      try {
        const t0 = performance.now();
        const r = await capture(argv, o.output, { keepLogs: o.keepLogs });
        const s = ((performance.now() - t0) / 1000).toFixed(1);
        process.stderr.write(
          `captured ${argv.join(' ')}: ${r.processes} process(es), ${r.threads} extra thread(s), ${r.accesses.toLocaleString('en-US')} page accesses in ${r.events.toLocaleString('en-US')} events; ${o.output} (${r.bytes.toLocaleString('en-US')} bytes) in ${s} s; exit status ${r.exitCode}\n`,
        );
      } catch (e) {
        if (e instanceof CaptureError) throw new UsageError(`capture: ${e.message}`);
        throw e;
      }
    });
}
