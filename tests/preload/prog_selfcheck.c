/* prog_selfcheck.c - run under LD_PRELOAD with HEAPSNAP_FRAMES=8: checks from
 * inside the process (via dlsym, it is not linked with heapsnap) that
 * tracing started at load with that limit. "absent" checks the opposite. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heapsnap.h"

#define FAIL(...)                                                             \
  do {                                                                        \
    fprintf(stderr, "prog_selfcheck: " __VA_ARGS__);                          \
    fputc('\n', stderr);                                                      \
    return 1;                                                                 \
  } while (0)

/* Loads a symbol into a typed function pointer without the
 * object-to-function pointer cast ISO C forbids. */
#define LOAD(var, name)                                                       \
  do {                                                                        \
    void *sym_ = dlsym(RTLD_DEFAULT, name);                                   \
    if (!sym_)                                                                \
      FAIL("%s not found: libheapsnap is not loaded", name);                 \
    memcpy(&(var), &sym_, sizeof sym_);                                       \
  } while (0)

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "absent") == 0) {
    if (dlsym(RTLD_DEFAULT, "hs_is_tracing"))
      FAIL("hs_is_tracing found without the preload");
    puts("not loaded, as expected");
    return 0;
  }
  int (*is_tracing)(void);
  int (*limit)(void);
  void (*traced)(size_t *, size_t *);
  int (*traceback)(const void *, uintptr_t *, int);
  LOAD(is_tracing, "hs_is_tracing");
  LOAD(limit, "hs_get_traceback_limit");
  LOAD(traced, "hs_get_traced_memory");
  LOAD(traceback, "hs_get_object_traceback");
  if (is_tracing() != 1)
    FAIL("hs_is_tracing() = %d: HEAPSNAP_FRAMES did not start tracing",
         is_tracing());
  if (limit() != 8)
    FAIL("traceback limit %d, expected 8 from HEAPSNAP_FRAMES", limit());
  size_t before, after;
  traced(&before, NULL);
  char *volatile p = malloc(4321);
  traced(&after, NULL);
  uintptr_t frames[HS_MAX_FRAMES];
  int n = traceback(p, frames, HS_MAX_FRAMES);
  free(p);
  if (after - before != 4321)
    FAIL("malloc(4321) moved current by %zu", after - before);
  if (n < 1 || n > 8)
    FAIL("traceback of a fresh block has %d frames (expected 1..8)", n);
  puts("heapsnap preload ok");
  return 0;
}
