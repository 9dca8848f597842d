/* real.h - the contract with the allocator underneath heapsnap: the functions
 * the interposer forwards to, found with dlsym(RTLD_NEXT) so that another
 * allocator loaded after heapsnap (jemalloc, tcmalloc) is honoured. */
#ifndef HS_REAL_H
#define HS_REAL_H

#include <stddef.h>

typedef struct hs_real_allocator {
  void *(*malloc)(size_t);
  void *(*calloc)(size_t, size_t);
  void *(*realloc)(void *, size_t);
  void (*free)(void *);
  void *(*memalign)(size_t, size_t);
  int (*posix_memalign)(void **, size_t, size_t);
  void *(*aligned_alloc)(size_t, size_t);
  void *(*valloc)(size_t);
  void *(*pvalloc)(size_t);
  size_t (*malloc_usable_size)(void *);
} hs_real_allocator_t;

#endif
