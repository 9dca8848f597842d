/* prog_leaky.c - a deterministic C program for checking heapsnap's totals
 * against heaptrack's: known allocations, reallocs and frees, some leaks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) static char *grow(char *p, size_t n) {
  return realloc(p, n);
}

int main(void) {
  void *blocks[1000];
  for (int i = 0; i < 1000; i++)
    blocks[i] = malloc(64 + (size_t)i);
  char *buf = NULL;
  for (size_t n = 16; n <= 65536; n *= 2)
    buf = grow(buf, n);
  void *big = calloc(1000, 1000);
  for (int i = 0; i < 1000; i += 2)
    free(blocks[i]);
  free(big);
  char *s = strdup("leaked string");
  printf("done %c %c\n", buf ? 'y' : 'n', s[0]);
  return 0;
}
