/* sig_prog.c - the host of the signal-trigger storm: ROUNDS of a fixed
 * allocation pattern, then a checksum. Not linked with heapsnap. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  unsigned rounds = argc > 1 ? (unsigned)atoi(argv[1]) : 100;
  static char *keep[4096];
  uint64_t sum = 0;
  uint32_t x = 1;
  for (unsigned r = 0; r < rounds; r++) {
    for (unsigned i = 0; i < 4096; i++) {
      x = x * 1664525u + 1013904223u;
      size_t n = (x >> 20) % 300 + 1;
      char *p = realloc(keep[i], n);
      if (!p)
        return 1;
      memset(p, (int)(i + r), n);
      keep[i] = p;
      sum = sum * 131 + (unsigned char)p[n / 2] + n;
    }
  }
  for (unsigned i = 0; i < 4096; i += 2)
    free(keep[i]); /* the odd ones leak: the snapshots hold them */
  printf("rounds %u checksum %016llx\n", rounds, (unsigned long long)sum);
  return 0;
}
