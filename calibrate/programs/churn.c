/* mmapchurn's real counterpart: two processes allocating, touching and
 * freeing blocks of 1-64 pages, 5,000 rounds each, with an allocator that
 * maps every block and unmaps it at free (what glibc does for blocks above
 * its mmap threshold; its dynamic threshold soon moves blocks of this size
 * to the heap, and then almost nothing reaches the kernel: run with
 * --glibc to see that). Each page gets two accesses, each a write with
 * probability 0.7.  usage: churn ROUNDS [--glibc] */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static uint64_t x;
static uint64_t next(void) { x ^= x << 13, x ^= x >> 7, x ^= x << 17; return x; }

static int glibc;

static void work(long rounds) {
  for (long r = 0; r < rounds; r++) {
    size_t pages = 1 + next() % 64;
    volatile uint8_t *a = glibc ? malloc(pages * 4096)
                                : mmap(0, pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (a == NULL || a == MAP_FAILED) exit(1);
    for (size_t p = 0; p < pages; p++)
      for (int j = 0; j < 2; j++) {
        size_t at = p * 4096 + (next() % 64) * 64;
        if (next() % 10 < 7) a[at] = 1; else (void)a[at];
      }
    if (glibc) free((void *)a);
    else munmap((void *)a, pages * 4096);
  }
}

int main(int argc, char **argv) {
  long rounds = argc > 1 ? atol(argv[1]) : 5000;
  glibc = argc > 2 && strcmp(argv[2], "--glibc") == 0;
  for (int i = 0; i < 2; i++)
    if (fork() == 0) { x = 0x9e3779b97f4a7c15ull * (i + 1); work(rounds); exit(0); }
  while (wait(0) > 0) {}
  return 0;
}
