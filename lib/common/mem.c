/* mem.c - heapsnap's own memory: every internal allocation is counted here so
 * that hs_get_tracer_memory() is exact and tests can inject failures. */
#include <stdlib.h>

#include "internal.h"

int (*hs__mem_fail_hook)(size_t size);
static atomic_size_t used[HS_MEM_KINDS];

void *hs__mem_alloc(enum hs_mem_kind kind, size_t size) {
  if (HS_UNLIKELY(hs__mem_fail_hook != NULL) && hs__mem_fail_hook(size))
    return NULL;
  void *p = malloc(size);
  if (p)
    atomic_fetch_add_explicit(&used[kind], size, memory_order_relaxed);
  return p;
}

void *hs__mem_calloc(enum hs_mem_kind kind, size_t n, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(n, size, &total))
    return NULL;
  if (HS_UNLIKELY(hs__mem_fail_hook != NULL) && hs__mem_fail_hook(total))
    return NULL;
  void *p = calloc(n, size);
  if (p)
    atomic_fetch_add_explicit(&used[kind], total, memory_order_relaxed);
  return p;
}

void hs__mem_free(enum hs_mem_kind kind, void *p, size_t size) {
  if (!p)
    return;
  free(p);
  atomic_fetch_sub_explicit(&used[kind], size, memory_order_relaxed);
}

size_t hs__mem_used(enum hs_mem_kind kind) {
  return atomic_load_explicit(&used[kind], memory_order_relaxed);
}
