/* mem.c - heapsnap's own memory: every internal allocation is counted here so
 * that hs_get_tracer_memory() is exact and tests can inject failures. */
#include <stdlib.h>
#include <sys/mman.h>

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

/* Large tables are mapped directly and populated at once: a fresh page
 * first read by a probe is the shared zero page, and the write that
 * follows is a copy-on-write fault whose TLB flush interrupts every CPU
 * the program runs on. */
#define HS_BIG (64u << 10)
#define HS_HUGE (2u << 20)

static size_t big_len(size_t total) {
  size_t unit = total >= HS_HUGE ? HS_HUGE : 4096;
  return (total + unit - 1) & ~(unit - 1);
}

/* Writes [a, b) of a mapping in, page by page, zeroed. */
static void populate(char *a, char *b) {
#ifdef MADV_POPULATE_WRITE
  if (madvise(a, (size_t)(b - a), MADV_POPULATE_WRITE) == 0)
    return;
#endif
  /* An older kernel: a write per page does the same (the memory is
   * zero, so writing zero changes nothing a reader could see). */
  for (char *q = a; q < b; q += 4096)
    *(volatile char *)q = 0;
}

static void *map_big(enum hs_mem_kind kind, size_t n, size_t size,
                     int populated) {
  size_t total;
  if (__builtin_mul_overflow(n, size, &total))
    return NULL;
  if (total < HS_BIG)
    return hs__mem_calloc(kind, n, size);
  if (HS_UNLIKELY(hs__mem_fail_hook != NULL) && hs__mem_fail_hook(total))
    return NULL;
  size_t len = big_len(total);
  size_t align = total >= HS_HUGE ? HS_HUGE : 0;
  /* 2 MiB alignment, so that a system that gives huge pages to every
   * mapping can give them to this one: map that much more, trim the ends.
   * No MADV_HUGEPAGE: under the usual defrag setting ("madvise") it makes
   * the fault compact memory for a free huge page, and on a fragmented
   * machine that stalled the table's growth for longer than the TLB
   * misses it saved (python3 workload: 1.0 s without it, 0.97-1.5 s with). */
  char *raw = mmap(NULL, len + align, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED)
    return NULL;
  char *p = raw;
  if (align) {
    p = (char *)(((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1));
    if (p > raw)
      munmap(raw, (size_t)(p - raw));
    if (p + len < raw + len + align)
      munmap(p + len, (size_t)(raw + len + align - (p + len)));
  }
  if (populated)
    populate(p, p + len);
  atomic_fetch_add_explicit(&used[kind], len, memory_order_relaxed);
  return p;
}

void *hs__mem_calloc_big(enum hs_mem_kind kind, size_t n, size_t size) {
  return map_big(kind, n, size, 1);
}

void *hs__mem_reserve_big(enum hs_mem_kind kind, size_t n, size_t size) {
  return map_big(kind, n, size, 0);
}

void hs__mem_populate_big(void *p, size_t size, size_t from, size_t to) {
  if (!p || size < HS_BIG)
    return; /* from hs__mem_calloc: already written */
  uintptr_t a = ((uintptr_t)p + from) & ~(uintptr_t)4095;
  uintptr_t b = ((uintptr_t)p + (to < size ? to : size) + 4095) &
                ~(uintptr_t)4095;
  if (a < b)
    populate((char *)a, (char *)b);
}

void hs__mem_release_big(void *p, size_t size, size_t from, size_t to) {
  if (!p || size < HS_BIG)
    return; /* from hs__mem_calloc: not ours to hand back */
  uintptr_t a = ((uintptr_t)p + from + 4095) & ~(uintptr_t)4095;
  uintptr_t b = ((uintptr_t)p + to) & ~(uintptr_t)4095;
  if (a < b)
    (void)madvise((void *)a, b - a, MADV_DONTNEED);
}

void hs__mem_free_big(enum hs_mem_kind kind, void *p, size_t size) {
  if (!p)
    return;
  if (size < HS_BIG) {
    hs__mem_free(kind, p, size);
    return;
  }
  size_t len = big_len(size);
  munmap(p, len);
  atomic_fetch_sub_explicit(&used[kind], len, memory_order_relaxed);
}
