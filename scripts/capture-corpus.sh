#!/bin/sh
# Re-capture the bundled program corpus (fixtures/programs/README.md says what
# each is). Needs valgrind (apt-get install valgrind), gcc, git and python3;
# run from the repository root after `npm run build`. Writes fixtures/programs/*.ump.
set -eu
out=fixtures/programs
umbra="node dist/src/cli/main.js"
work=$(mktemp -d /tmp/umbra-corpus.XXXXXX)
trap 'rm -rf "$work"' EXIT
cap() { name=$1; shift; $umbra capture -o "$out/$name.ump" -- "$@" > /dev/null; }

cc -O1 -pthread -o "$work/threads" "$out/src/threads.c"
gcc -O2 -S -o "$work/hello.s" "$out/src/hello.c"
# A small repository with one file changed; one status first, so the capture sees a settled index.
mkdir "$work/repo"
cp "$out"/src/*.c "$work/repo"
git -C "$work/repo" init -q
git -C "$work/repo" add .
git -C "$work/repo" -c user.name=umbra -c user.email=umbra@localhost commit -qm corpus
echo '/* changed */' >> "$work/repo/hello.c"
git -C "$work/repo" status --short > /dev/null
seq 1 2000 | awk '{ printf "%08d %s\n", ($1 * 7919) % 100003, $1 }' > "$work/sort-input.txt"

cap true true
cap ls ls /
cap cat cat "$out/src/threads.c"
cap pipeline sh -c 'ls / | wc -l'
cap threads "$work/threads"
cap gcc gcc -c "$work/hello.s" -o "$work/hello.o"
cap git git -C "$work/repo" status --short
cap sort sort "$work/sort-input.txt" -o "$work/sorted.txt"
ls -l "$out"/*.ump
