/* dl_alloc.c - a library the snapshot tests dlopen, allocate from, and
 * dlclose before the snapshot is symbolized. */
#include <stdlib.h>

unsigned dl_alloc_line;

__attribute__((visibility("default"), noinline)) void *dl_alloc(size_t n) {
  dl_alloc_line = __LINE__; void *p = malloc(n);
  __asm__ volatile("" ::: "memory");
  return p;
}
