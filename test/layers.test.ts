/**
 * The layer order (docs/architecture.md, "Layers"): every import in src/
 * points to the importer's own layer or a lower one, and no core file (every
 * layer but the Node-only ones) imports a Node built-in, so the core runs in
 * a browser unchanged. Imports are found by TypeScript's own pre-processor:
 * static and type-only imports, `export … from`, dynamic `import()`;
 * comments and strings are not mistaken for imports.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, posix, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/** Lowest first; directories on one line are one layer and may import each other. */
const ORDER: ReadonlyArray<readonly string[]> = [
  ['util'],
  ['arch', 'machine'],
  ['p2m'],
  ['hypervisor'],
  ['pagers'],
  ['vm'],
  ['guest'],
  ['metrics'],
  ['inspect', 'fuzz'],
  ['import'],
  ['io', 'capture'],
  ['cli'],
];
/** The only layers that may use Node built-ins: file and process I/O. */
const NODE_LAYERS = new Set(['import', 'io', 'capture', 'cli']);

/**
 * Imports that break the order and cannot be fixed here yet, each with the
 * reason. The test fails when one of them is gone, so the list only shrinks.
 */
const PENDING: ReadonlyArray<{ from: string; to: string; why: string }> = [];

const RANK = new Map(ORDER.flatMap((dirs, rank) => dirs.map((d) => [d, rank] as const)));
const BUILTINS = new Set(builtinModules.filter((m) => !m.startsWith('_')));

export interface SourceFile {
  /** Relative to the repository root, with forward slashes: src/dir/…/name.ts. */
  readonly path: string;
  readonly text: string;
}

const layerOf = (path: string): string => path.split('/')[1] ?? '';

function isBuiltin(spec: string): boolean {
  return spec.startsWith('node:') || BUILTINS.has(spec) || BUILTINS.has(spec.split('/')[0] ?? '');
}

/** Every import that breaks the rules, as "FILE:LINE: what", plus the pending ones (separately). */
export function layerViolations(files: readonly SourceFile[]): { violations: string[]; pending: string[] } {
  const violations: string[] = [];
  const pending: string[] = [];
  for (const f of files) {
    const layer = layerOf(f.path);
    const rank = RANK.get(layer);
    if (rank === undefined) {
      violations.push(`${f.path}:1: directory src/${layer}/ is in no layer (add it to the order)`);
      continue;
    }
    const lineAt = (pos: number): number => f.text.slice(0, pos).split('\n').length;
    for (const imp of ts.preProcessFile(f.text, true, true).importedFiles) {
      const spec = imp.fileName;
      const where = `${f.path}:${lineAt(imp.pos)}`;
      if (!spec.startsWith('.')) {
        if (isBuiltin(spec) && !NODE_LAYERS.has(layer))
          violations.push(`${where}: imports the Node built-in '${spec}' into the core (${layer}/)`);
        continue;
      }
      const target = posix.normalize(posix.join(posix.dirname(f.path), spec)).replace(/\.js$/, '.ts');
      if (!target.startsWith('src/')) continue;
      const to = layerOf(target);
      const toRank = RANK.get(to);
      if (toRank !== undefined && toRank <= rank) continue;
      if (PENDING.some((p) => p.from === f.path && p.to === target)) {
        pending.push(`${f.path} -> ${target}`);
        continue;
      }
      violations.push(
        toRank === undefined
          ? `${where}: imports '${spec}' from src/${to}/, which is in no layer`
          : `${where}: ${layer}/ imports '${spec}' from the higher layer ${to}/`,
      );
    }
  }
  return { violations, pending };
}

const root = fileURLToPath(new URL('../..', import.meta.url));

function sources(dir: string): SourceFile[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    if (!e.name.endsWith('.ts')) return [];
    return [{ path: relative(root, p).split(/[\\/]/).join('/'), text: readFileSync(p, 'utf8') }];
  });
}

test('layers: src/ imports only downwards, and the core imports no Node built-in', () => {
  const files = sources(join(root, 'src'));
  assert.ok(files.length > 50, `found only ${files.length} source files under ${dirname(root)}`);
  const { violations, pending } = layerViolations(files);
  assert.deepEqual(violations, [], `layer violations:\n${violations.join('\n')}`);
  assert.deepEqual(
    pending.sort(),
    PENDING.map((p) => `${p.from} -> ${p.to}`).sort(),
    'a pending exception no longer occurs: remove it from PENDING',
  );
});

/** The shadow pager's parts, lowest first (the header of src/pagers/shadow/shadow.ts). */
const SHADOW_PARTS = [
  'options',
  'magic',
  'types',
  'counters',
  'state',
  'set',
  'wrmap',
  'oos',
  'lru',
  'cache',
  'logdirty',
  'propagate',
  'audit',
  'shadow',
];

test("layers: the shadow pager's parts import only parts below them (no cycles)", () => {
  const files = sources(join(root, 'src/pagers/shadow'));
  const name = (path: string): string => posix.basename(path, '.ts');
  assert.deepEqual(files.map((f) => name(f.path)).sort(), [...SHADOW_PARTS].sort(), 'a part missing from the order');
  const upwards: string[] = [];
  for (const f of files) {
    const rank = SHADOW_PARTS.indexOf(name(f.path));
    for (const imp of ts.preProcessFile(f.text, true, true).importedFiles) {
      if (!imp.fileName.startsWith('./')) continue;
      if (SHADOW_PARTS.indexOf(name(imp.fileName.replace(/\.js$/, ''))) >= rank)
        upwards.push(`${f.path} imports ${imp.fileName}`);
    }
  }
  assert.deepEqual(upwards, []);
});

test('layers: the checker flags what it should, with file and line, and nothing else', () => {
  const files: SourceFile[] = [
    {
      path: 'src/hypervisor/bad.ts',
      text: [
        "// import { a } from 'node:fs' (a comment is not an import)",
        "import { createHash } from 'node:crypto';",
        "import type { Kernel } from '../guest/kernel/kernel.js';",
        "export { x } from 'zlib';",
        'const s = "import q from \'os\'";',
        "const m = await import('fs/promises');",
        "import { Domain } from './domain.js';",
        "import { bits } from '../arch/x86/bits.js';",
        "export * from '../cli/errors.js';",
      ].join('\n'),
    },
    {
      path: 'src/cli/ok.ts',
      text: "import { readFileSync } from 'node:fs';\nimport { migrate } from '../hypervisor/m.js';",
    },
    { path: 'src/io/ok.ts', text: "import { deflateRawSync } from 'node:zlib';\nimport '../import/x.js';" },
    { path: 'src/import/up.ts', text: "import { x } from '../io/trace.js';" },
    { path: 'src/web/new.ts', text: '' },
    { path: 'src/util/pkg.ts', text: "import { sha256 } from '@noble/hashes/sha2.js';" },
  ];
  assert.deepEqual(layerViolations(files).violations, [
    "src/hypervisor/bad.ts:2: imports the Node built-in 'node:crypto' into the core (hypervisor/)",
    "src/hypervisor/bad.ts:3: hypervisor/ imports '../guest/kernel/kernel.js' from the higher layer guest/",
    "src/hypervisor/bad.ts:4: imports the Node built-in 'zlib' into the core (hypervisor/)",
    "src/hypervisor/bad.ts:6: imports the Node built-in 'fs/promises' into the core (hypervisor/)",
    "src/hypervisor/bad.ts:9: hypervisor/ imports '../cli/errors.js' from the higher layer cli/",
    "src/import/up.ts:1: import/ imports '../io/trace.js' from the higher layer io/",
    'src/web/new.ts:1: directory src/web/ is in no layer (add it to the order)',
  ]);
});
