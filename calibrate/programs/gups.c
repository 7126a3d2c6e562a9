/* bigmem's real counterpart: GUPS-style random reads and writes over a heap.
 * usage: gups HEAP_MIB ACCESSES   (the workload at size 1: 256 MiB, 2,000,000) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

int main(int argc, char **argv) {
  size_t bytes = (argc > 1 ? strtoull(argv[1], 0, 10) : 256) << 20;
  long accesses = argc > 2 ? atol(argv[2]) : 2000000;
  uint8_t *heap = mmap(0, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (heap == MAP_FAILED) return 1;
  madvise(heap, bytes, MADV_NOHUGEPAGE); /* the workload runs with THP off */
  for (size_t p = 0; p < bytes; p += 4096) heap[p] = 1;
  uint64_t x = 88172645463325252ull, sum = 0;
  for (long i = 0; i < accesses; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    size_t at = (x % (bytes / 64)) * 64;
    if ((x >> 60) < 4) heap[at]++; /* one in four a write */
    else sum += heap[at];
  }
  printf("%llu\n", (unsigned long long)sum);
  return 0;
}
