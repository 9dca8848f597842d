/* site_lib.c - one call site inside a shared library, built three ways
 * (with DWARF, without, with DWARF split off by build-id) for the tests. */
#include <stdint.h>

#define SITE_API __attribute__((visibility("default")))

volatile uintptr_t site_sink;

static __attribute__((noipa)) uintptr_t site_record(void) {
  return (uintptr_t)__builtin_return_address(0);
}

SITE_API uintptr_t hs_site_capture(int *line);
SITE_API uintptr_t hs_site_capture(int *line) {
  uintptr_t r = site_record(); *line = __LINE__;
  site_sink = r; /* keeps the call above from becoming a tail call */
  return r;
}
