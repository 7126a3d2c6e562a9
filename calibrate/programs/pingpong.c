/* ctxswitch's real counterpart: 8 processes in 4 pairs ping-ponging
 * one-byte messages over pipes (lmbench lat_ctx style).  usage: pingpong MESSAGES */
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
  long rounds = (argc > 1 ? atol(argv[1]) : 20000) / 8;
  for (int pair = 0; pair < 4; pair++) {
    int ab[2], ba[2];
    if (pipe(ab) || pipe(ba)) return 1;
    for (int side = 0; side < 2; side++) {
      if (fork() == 0) {
        char c = 0;
        for (long r = 0; r < rounds; r++) {
          if (side == 0) { if (write(ab[1], &c, 1) != 1 || read(ba[0], &c, 1) != 1) _exit(1); }
          else { if (read(ab[0], &c, 1) != 1 || write(ba[1], &c, 1) != 1) _exit(1); }
        }
        exit(0);
      }
    }
    close(ab[0]), close(ab[1]), close(ba[0]), close(ba[1]);
  }
  while (wait(0) > 0) {}
  return 0;
}
