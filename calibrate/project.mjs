// Writes compile's real counterpart into DIR: a 41-file C project and its
// Makefile (each file a few hundred lines of ordinary C: structs, loops,
// string handling, a lookup table), deterministic.  node project.mjs DIR
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2];
if (!dir) throw new Error('usage: node project.mjs DIR');
mkdirSync(dir, { recursive: true });
let seed = 12345;
const rnd = (n) => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % n;
const FILES = 40; // with main.c, 41 sources
const objs = [];
for (let f = 0; f < FILES; f++) {
  const lines = ['#include <stdio.h>', '#include <stdlib.h>', '#include <string.h>', '#include "common.h"', ''];
  lines.push(`struct rec${f} { int id; double w[${4 + rnd(8)}]; char name[${16 + rnd(32)}]; struct rec${f} *next; };`);
  lines.push(`static const int table${f}[] = { ${Array.from({ length: 64 }, () => rnd(1000)).join(', ')} };`);
  const fns = 10 + rnd(8);
  for (let i = 0; i < fns; i++) {
    const body = [];
    body.push(`  int acc = ${rnd(100)};`);
    body.push(`  for (int i = 0; i < n; i++) {`);
    body.push(`    acc += table${f}[(i * ${1 + rnd(7)}) & 63] ^ (i << ${rnd(5)});`);
    body.push(`    if (acc % ${2 + rnd(9)} == 0) acc = acc * 3 + ${rnd(50)};`);
    body.push(`    else acc -= i / ${1 + rnd(4)};`);
    body.push('  }');
    body.push(`  struct rec${f} *r = calloc(1, sizeof *r);`);
    body.push('  if (r == NULL) return -1;');
    body.push(`  snprintf(r->name, sizeof r->name, "f${f}_${i}_%d", acc);`);
    body.push('  for (size_t k = 0; k < sizeof r->w / sizeof r->w[0]; k++) r->w[k] = acc * 0.5 + (double)k;');
    body.push(`  acc += (int)strlen(r->name) + common_mix(acc, ${rnd(1000)});`);
    body.push('  free(r);');
    body.push('  return acc;');
    lines.push(`int f${f}_${i}(int n) {`, ...body, '}', '');
  }
  lines.push(`int run${f}(int n) {`, '  int s = 0;');
  for (let i = 0; i < fns; i++) lines.push(`  s += f${f}_${i}(n + ${i});`);
  lines.push('  return s;', '}');
  writeFileSync(join(dir, `m${f}.c`), `${lines.join('\n')}\n`);
  objs.push(`m${f}.o`);
}
writeFileSync(join(dir, 'common.h'), 'static inline int common_mix(int a, int b) { return (a * 31) ^ (b + 7); }\n');
const decls = Array.from({ length: FILES }, (_, f) => `int run${f}(int);`).join('\n');
const calls = Array.from({ length: FILES }, (_, f) => `  s += run${f}(argc);`).join('\n');
writeFileSync(join(dir, 'main.c'), `#include <stdio.h>\n${decls}\nint main(int argc, char **argv) {\n  (void)argv;\n  int s = 0;\n${calls}\n  printf("%d\\n", s);\n  return 0;\n}\n`);
writeFileSync(
  join(dir, 'Makefile'),
  `CFLAGS = -O2 -g\nOBJS = main.o ${objs.join(' ')}\nprog: $(OBJS)\n\t$(CC) -o $@ $(OBJS)\n%.o: %.c common.h\n\t$(CC) $(CFLAGS) -c -o $@ $<\nclean:\n\trm -f prog $(OBJS)\n`,
);
