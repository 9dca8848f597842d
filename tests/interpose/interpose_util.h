/* interpose_util.h - helpers shared by the interpose suites: reading the
 * traced totals, and sizes the compiler cannot see through. */
#ifndef HS_TEST_INTERPOSE_UTIL_H
#define HS_TEST_INTERPOSE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "heapsnap.h"

/* Sizes routed through a volatile so gcc's -Walloc-size-larger-than and
 * constant folding cannot turn a runtime failure into a compile error. */
static inline size_t hs_t_opaque(size_t n) {
  volatile size_t v = n;
  return v;
}

static inline size_t hs_t_current(void) {
  size_t c = (size_t)-1;
  hs_get_traced_memory(&c, NULL);
  return c;
}

static inline size_t hs_t_peak(void) {
  size_t p = (size_t)-1;
  hs_get_traced_memory(NULL, &p);
  return p;
}

static inline int hs_t_frames(const void *p) {
  uintptr_t f[HS_MAX_FRAMES];
  return hs_get_object_traceback(p, f, HS_MAX_FRAMES);
}

/* Keeps a pointer observable so that new/delete or malloc/free pairs are
 * not elided by the optimiser (C++14 allows it, gcc does it). */
static inline void hs_t_escape(const void *p) {
  __asm__ volatile("" : : "g"(p) : "memory");
}

/* The same pointer value with its provenance hidden: lets a test look a
 * pointer up after free() or a failed realloc() without gcc's
 * -Wuse-after-free (the value is only compared, or known still valid). */
static inline void *hs_t_launder(void *p) {
  __asm__("" : "+r"(p));
  return p;
}

#endif
