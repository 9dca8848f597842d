/* workload_c.h - what the generated call paths of the no-frame-pointer C
 * workload share with its driver (workload_c.c). */
#ifndef NOFP_WORKLOAD_C_H
#define NOFP_WORKLOAD_C_H
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define NOFP_PATHS 64
/* noipa: every call is a real call into a frame laid out on its own, as
 * across translation units, instead of being inlined, cloned or given a
 * caller-specific register convention. */
#define NOFP_FN __attribute__((noipa))

typedef struct {
  uint64_t rng;
  void **window;
  size_t window_len;
  long allocs;
} ctx_t;

typedef void (*path_fn)(ctx_t *c, uint64_t a);

extern const path_fn nofp_paths[NOFP_PATHS];
extern const int nofp_depths[NOFP_PATHS];
/* Read after every call, so that no call is a tail call (a frame that a
 * jmp replaced would not be on the stack to unwind). */
extern volatile uint64_t sink;

#endif
