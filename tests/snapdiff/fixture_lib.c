/* fixture_lib.c - a second source file for the snapdiff fixtures, so that
 * --include/--exclude and --by filename have two files to tell apart. */
#include <stddef.h>
#include <stdint.h>

#include "heapsnap.h"

uintptr_t sd_fixture_ptr(void);

__attribute__((noinline)) void lib_alloc(size_t n, int count) {
  for (int i = 0; i < count; i++)
    hs_track(0, sd_fixture_ptr(), n);
  __asm__ volatile("" ::: "memory");
}
