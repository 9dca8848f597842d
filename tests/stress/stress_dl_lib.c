/* stress_dl_lib.c - the library stress_dlopen loads and unloads: it
 * allocates blocks that outlive it, from a line the test knows. */
#include <stdlib.h>
#include <string.h>

__attribute__((visibility("default"))) unsigned stress_dl_line;

__attribute__((visibility("default"), noinline)) void *stress_dl_alloc(
    size_t n) {
  stress_dl_line = __LINE__; void *p = malloc(n);
  if (p)
    memset(p, 0x5a, n);
  return p;
}

/* Blocks allocated and freed inside the library: traced then forgotten. */
__attribute__((visibility("default"), noinline)) unsigned stress_dl_churn(
    unsigned k) {
  unsigned sum = 0;
  for (unsigned i = 0; i < k; i++) {
    unsigned char *p = calloc(1, 16 + i);
    sum += p ? p[i] + 1 : 0;
    free(p);
  }
  return sum;
}
