/** `umbra inspect` and `umbra translate`: real guest images (QEMU dump-guest-memory ELF cores). */
import { type AccessKind, EFER_LMA, FETCH, READ, WRITE } from '../arch/x86/bits.js';
import { openImage } from '../import/image.js';
import { type VcpuView, vcpuView } from '../inspect/context.js';
import { type GuestImage, ImageError } from '../inspect/image.js';
import { qemuInfoMem, qemuInfoTlb } from '../inspect/qemu.js';
import { parseInfoRegisters, RegistersError } from '../inspect/registers.js';
import { buildReport } from '../inspect/report.js';
import { renderSummary } from '../inspect/summary.js';
import { parseVa, renderTranslation, translate } from '../inspect/translate.js';
import { translateNested, Walk2dError } from '../inspect/walk2d.js';
import { type NestedSwitches, parseNestedSpec } from '../pagers/nested/options.js';
import { own } from '../util/json.js';
import { UsageError } from './errors.js';
import { readSmallFile } from './input.js';
import { parseIntOption } from './options.js';

export interface ImageOptions {
  cpu: string;
  registers?: string;
  maxphyaddr?: string;
}

export interface InspectOptions extends ImageOptions {
  format: string;
  sample?: boolean;
}

export interface TranslateOptions extends ImageOptions {
  access: string;
  cpl: string;
  root: string;
  nested?: string | boolean;
  layout: string;
  seed: string;
  warm?: boolean;
}

const ACCESS: Record<string, AccessKind> = { r: READ, w: WRITE, x: FETCH };

/** Stop quietly when stdout's reader goes away (`umbra inspect ... | head`). */
let pipeGuard = false;
function guardStdout(): void {
  if (pipeGuard) return;
  pipeGuard = true;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
}

/** Check the options, open the image and prepare the vCPU; the caller closes the image. */
async function openView(path: string, opts: ImageOptions): Promise<{ image: GuestImage; view: VcpuView }> {
  const cpu = parseIntOption('--cpu', opts.cpu, 0, 4095);
  const maxPhysAddr =
    opts.maxphyaddr === undefined ? undefined : parseIntOption('--maxphyaddr', opts.maxphyaddr, 32, 52);
  let registers: { path: string; text: ReturnType<typeof parseInfoRegisters> } | undefined;
  if (opts.registers !== undefined) {
    const text = readSmallFile(opts.registers, "QEMU 'info registers' text");
    registers = { path: opts.registers, text: parseInfoRegisters(text) };
  }
  let image: GuestImage;
  try {
    image = await openImage(path);
  } catch (e) {
    throw e instanceof ImageError ? new UsageError(`${path}: ${e.message}`) : e;
  }
  try {
    if (cpu >= image.cpus.length) {
      throw new UsageError(`--cpu ${cpu}: ${path} has ${image.cpus.length} vCPUs (0-${image.cpus.length - 1})`);
    }
    return { image, view: withImageErrors(path, () => vcpuView(image, cpu, { registers, maxPhysAddr })) };
  } catch (e) {
    image.close();
    throw e;
  }
}

/** Image problems found while walking (e.g. looping tables) and mismatched registers are the user's input too. */
function withImageErrors<T>(path: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ImageError) throw new UsageError(`${path}: ${e.message}`);
    if (e instanceof RegistersError) throw new UsageError(e.message);
    throw e;
  }
}

export async function inspectCommand(path: string, opts: InspectOptions): Promise<void> {
  const { image, view } = await openView(path, opts);
  guardStdout();
  try {
    withImageErrors(path, () => inspect(view, opts));
  } finally {
    image.close();
  }
}

function inspect(view: VcpuView, opts: InspectOptions): void {
  const write = (s: string): void => {
    process.stdout.write(s);
  };
  if (opts.format === 'qemu-tlb' || opts.format === 'qemu-mem') {
    // QEMU's text goes to stdout unchanged; what Umbra had to assume goes to stderr.
    for (const n of view.inferred) if (n.subject === 'EFER') process.stderr.write(`umbra: note: ${n.text}\n`);
    const s = view.state;
    const regs = {
      cr0: Number(s.cr0 & 0xffffffffn),
      cr3: s.cr3,
      cr4: Number(s.cr4 & 0xffffffffn),
      lma: (view.efer & EFER_LMA) !== 0,
    };
    if (opts.format === 'qemu-tlb') {
      qemuInfoTlb(view.image.memory, regs, write);
    } else {
      if (view.mode?.name === '5-level') {
        process.stderr.write(
          "umbra: note: QEMU 7.2's 5-level 'info mem' prints nothing (it tests P the wrong way round); these are the ranges it means\n",
        );
      }
      qemuInfoMem(view.image.memory, regs, write);
    }
    return;
  }
  const report = buildReport(view, { sample: opts.sample === true, ranges: opts.format === 'json' });
  write(opts.format === 'json' ? `${JSON.stringify(report, null, 1)}\n` : renderSummary(report));
}

export async function translateCommand(path: string, va: string, opts: TranslateOptions): Promise<void> {
  const at = parseVa(va);
  if (at === undefined) throw new UsageError(`"${va}" is not a linear address (hex with 0x, or decimal, below 2^64)`);
  const access = own(ACCESS, opts.access);
  if (access === undefined) throw new UsageError(`--access must be r, w or x, got "${opts.access}"`);
  const cpl = parseIntOption('--cpl', opts.cpl, 0, 3);
  if (opts.root !== 'cr3' && opts.root !== 'twin')
    throw new UsageError(`--root must be cr3 or twin, got "${opts.root}"`);
  let nested: NestedSwitches | null = null;
  if (opts.nested !== undefined) {
    const sw = parseNestedSpec(opts.nested === true ? 'nested' : String(opts.nested));
    if (typeof sw === 'string') throw new UsageError(`--nested ${sw}`);
    nested = sw;
    if (opts.root !== 'cr3') throw new UsageError('--nested walks from CR3 only');
  } else if (opts.warm) throw new UsageError('--warm goes with --nested');
  if (opts.layout !== 'identity' && opts.layout !== 'scatter')
    throw new UsageError(`--layout must be identity or scatter, got "${opts.layout}"`);
  const seed = parseIntOption('--seed', opts.seed, 0, 2 ** 31 - 1);
  const { image, view } = await openView(path, opts);
  guardStdout();
  try {
    if (nested !== null) {
      if ((view.mode === null || view.mode.vaBits === 32) && at.hi !== 0)
        throw new UsageError(`${va} does not fit in 32-bit linear addresses`);
      const sw = nested;
      const layout = opts.layout;
      const t = withImageErrors(path, () => {
        try {
          return translateNested(view, at.hi, at.lo, access, cpl, { sw, layout, seed, warm: opts.warm === true });
        } catch (e) {
          if (e instanceof Walk2dError) throw new UsageError(`${path}: ${e.message}`);
          throw e;
        }
      });
      let text = t.text;
      for (const n of view.inferred) text += `note: ${n.text}\n`;
      process.stdout.write(text);
      return;
    }
    if (opts.root === 'twin' && view.twin === null) {
      throw new UsageError(`${path}: vCPU ${view.state.index} has no KPTI twin root (see inspect --format summary)`);
    }
    if ((view.mode === null || view.mode.vaBits === 32) && at.hi !== 0) {
      const what = view.mode === null ? 'with paging off' : `of ${view.mode.name} paging`;
      throw new UsageError(`${va} does not fit in the 32-bit linear addresses ${what}`);
    }
    const t = withImageErrors(path, () =>
      translate(view, { vaHi: at.hi, vaLo: at.lo, access, cpl, twin: opts.root === 'twin' }),
    );
    let text = renderTranslation(t);
    for (const n of view.inferred) text += `note: ${n.text}\n`;
    process.stdout.write(text);
  } finally {
    image.close();
  }
}
