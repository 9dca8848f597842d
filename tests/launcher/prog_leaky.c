/* prog_leaky.c - a deterministic C program for checking heapsnap's totals
 * against heaptrack's: known allocations, reallocs and frees, some leaks.
 * Under heapsnap it writes its peak and allocation-call count to the file
 * named by HS_STATS_FILE, reading them through a weak reference so that
 * the program allocates exactly the same under either tool. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heapsnap.h"

extern int hs_get_stats(hs_stats_t *out, size_t size) __attribute__((weak));

__attribute__((noinline)) static char *grow(char *p, size_t n) {
  return realloc(p, n);
}

static void report(void) {
  const char *path = getenv("HS_STATS_FILE");
  if (!path || !hs_get_stats)
    return;
  hs_stats_t st;
  hs_get_stats(&st, sizeof st);
  char line[128];
  int n = snprintf(line, sizeof line, "peak=%llu calls=%llu\n",
                   (unsigned long long)st.traced_peak,
                   (unsigned long long)st.alloc_calls);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) {
    ssize_t w = write(fd, line, (size_t)n);
    (void)w;
    close(fd);
  }
}

int main(void) {
  static void *blocks[1000];
  for (int i = 0; i < 1000; i++)
    blocks[i] = malloc(64 + (size_t)i);
  char *buf = NULL;
  for (size_t n = 16; n <= 65536; n *= 2)
    buf = grow(buf, n);
  volatile char *big = calloc(1000, 1000);
  big[999] = 1;
  for (int i = 0; i < 1000; i += 2)
    free(blocks[i]);
  free((void *)big);
  char *s = strdup("leaked string");
  printf("done %c %c %p\n", buf ? 'y' : 'n', s[0], (void *)blocks[1]);
  report(); /* after printf: its stdout buffer counts under both tools */
  return 0;
}
