/* server's real counterpart: a threaded static-file server in the manner of
 * Apache httpd with EnableMMAP (its default): 2 threads per CPU; each
 * request maps a 64 KiB file read-only, reads 4 of its pages (sending
 * them), reads 24 lines of a 64 MiB shared cache, and unmaps the file,
 * which shoots down the TLBs of the CPUs running the other threads.
 * usage: server DIR REQUESTS THREADS   (DIR holds files f0..f63 of 64 KiB) */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static uint8_t *cache;
static long per_thread;
static const char *dir;
#define CACHE (64ul << 20)
#define FILE_BYTES (16 * 4096)

static void *worker(void *arg) {
  uint64_t x = 0x9e3779b97f4a7c15ull * ((uintptr_t)arg + 1), sum = 0;
  char path[4096];
  for (long r = 0; r < per_thread; r++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    snprintf(path, sizeof path, "%s/f%d", dir, (int)(x % 64));
    int fd = open(path, O_RDONLY);
    if (fd < 0) exit(1);
    const volatile uint8_t *f = mmap(0, FILE_BYTES, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (f == MAP_FAILED) exit(1);
    for (int p = 0; p < 4; p++) sum += f[p * 4096 + (r % 64) * 64];
    for (int j = 0; j < 24; j++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      sum += cache[(x % (CACHE / 4 / 4096)) * 4096 + (x >> 40) % 64 * 64];
    }
    munmap((void *)f, FILE_BYTES);
  }
  return (void *)(uintptr_t)sum;
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  dir = argv[1];
  long requests = argc > 2 ? atol(argv[2]) : 20000;
  int threads = argc > 3 ? atoi(argv[3]) : 4;
  per_thread = requests / threads;
  cache = mmap(0, CACHE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (cache == MAP_FAILED) return 1;
  memset(cache, 1, CACHE / 4);
  pthread_t t[64];
  for (int i = 0; i < threads && i < 64; i++) pthread_create(&t[i], 0, worker, (void *)(uintptr_t)i);
  for (int i = 0; i < threads && i < 64; i++) pthread_join(t[i], 0);
  return 0;
}
