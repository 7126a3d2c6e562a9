/**
 * Machine memory (src/machine/memory.ts): frames in flat slabs behind a
 * sparse directory. Never-written frames read as zeros through the shared
 * ZERO_FRAME, scrubbed frames read as zeros again and give their slot to the
 * next frame materialized, locate() and read()/write() see the same words,
 * and a 1 TiB machine costs nothing until it is written.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FRAME_AT, FRAME_WORDS, MachineMemory, ONES_FRAME, SLAB_SHIFT, ZERO_FRAME } from '../src/machine/memory.js';
import { MachineSpace } from '../src/p2m/p2m.js';

/** The words of frame `mfn` as locate() finds them. */
function located(mem: MachineMemory, mfn: number): Uint32Array {
  const buf = mem.locate(mfn);
  const at = FRAME_AT[0] as number;
  return buf.subarray(at, at + FRAME_WORDS);
}

test('never-written frames read as the shared zero frame, through every path', () => {
  const mem = new MachineMemory(1 << 20);
  assert.equal(mem.read(12345), ZERO_FRAME);
  assert.equal(mem.locate(12345), ZERO_FRAME);
  assert.equal(FRAME_AT[0], 0);
  assert.equal(mem.isMaterialized(12345), false);
  assert.equal(mem.materializedFrames, 0);
  assert.ok(ZERO_FRAME.every((w) => w === 0));
});

test('a written frame keeps its words and one identity, and locate() reads the same words', () => {
  const mem = new MachineMemory(1 << 20);
  const f = mem.write(777);
  f[0] = 0xdeadbeef;
  f[1023] = 42;
  assert.equal(mem.write(777), f);
  assert.equal(mem.read(777), f);
  assert.equal(f.length, FRAME_WORDS);
  const g = located(mem, 777);
  assert.equal(g[0], 0xdeadbeef);
  assert.equal(g[1023], 42);
  // Writes through the located buffer land in the frame.
  const buf = mem.locateForWrite(777);
  buf[(FRAME_AT[0] as number) + 5] = 5;
  assert.equal(f[5], 5);
  // Neighbouring frames in the slab are untouched.
  const h = mem.write(778);
  assert.ok(h.every((w) => w === 0));
  assert.equal(mem.materializedFrames, 2);
});

test('frames beyond one slab get further slabs; each frame stays its own', () => {
  const mem = new MachineMemory(1 << 24);
  const n = (1 << SLAB_SHIFT) * 2 + 3;
  for (let k = 0; k < n; k++) mem.write(k * 97)[k & 1023] = k + 1;
  for (let k = 0; k < n; k++) {
    const f = located(mem, k * 97);
    assert.equal(f[k & 1023], k + 1);
    let nonZero = 0;
    for (const w of f) if (w !== 0) nonZero++;
    assert.equal(nonZero, 1, `frame ${k * 97} holds only its own word`);
  }
  assert.equal(mem.materializedFrames, n);
});

test('a scrubbed frame reads as zeros, and its slot comes back zeroed for the next frame', () => {
  const mem = new MachineMemory(1 << 20);
  mem.write(10).fill(0xffffffff);
  mem.write(11)[0] = 7;
  mem.scrub(10);
  assert.equal(mem.read(10), ZERO_FRAME);
  assert.equal(mem.isMaterialized(10), false);
  assert.equal(mem.materializedFrames, 1);
  const g = mem.write(500);
  assert.ok(
    g.every((w) => w === 0),
    'the reused slot is zeroed',
  );
  assert.equal(mem.read(11)[0], 7);
  // Scrubbing twice, or a frame never written, changes nothing.
  mem.scrub(10);
  mem.scrub(9999);
  assert.equal(mem.materializedFrames, 2);
});

test('materialized mfns come out ascending across chunks', () => {
  const mem = new MachineMemory(2 ** 28);
  const mfns = [2 ** 27 + 5, 3, 4096 * 7 + 1, 4095, 2 ** 28 - 1];
  for (const m of mfns) mem.write(m)[0] = 1;
  mem.scrub(3);
  assert.deepEqual([...mem.materializedMfns()], [4095, 4096 * 7 + 1, 2 ** 27 + 5, 2 ** 28 - 1]);
});

test('1 TiB of machine memory written sparsely allocates storage only for the frames written', () => {
  const frames = 2 ** 28; // 1 TiB
  const before = process.memoryUsage().arrayBuffers;
  const mem = new MachineMemory(frames);
  // One frame in each of 64 far-apart 16 MiB chunks.
  for (let k = 0; k < 64; k++) mem.write(k * (frames / 64) + k)[0] = k;
  const grown = process.memoryUsage().arrayBuffers - before;
  // One 4 MiB slab and 64 chunk maps of 16 KiB: far below a 16 MiB chunk per frame written.
  assert.ok(grown < 16 * 2 ** 20, `grew ${grown} bytes`);
  for (let k = 0; k < 64; k++) assert.equal(mem.read(k * (frames / 64) + k)[0], k);
});

test('outside machine memory: reads through a MachineSpace are all ones, writes are refused', () => {
  const mem = new MachineMemory(16);
  const space = new MachineSpace(mem);
  assert.equal(space.frameForRead(16), ONES_FRAME);
  assert.equal(space.locate(16), ONES_FRAME);
  assert.equal(FRAME_AT[0], 0);
  assert.equal(space.frameForWrite(16), null);
  assert.equal(space.locateForWrite(16), null);
  assert.throws(() => mem.write(16), RangeError);
  assert.ok(ONES_FRAME.every((w) => w === 0xffffffff));
});
