/* common.c - reclayout's allocation seam, error codes and detail messages,
 * and the string hash every name lookup shares. */
#include <stdarg.h>
#include <stdlib.h>

#include "rl_internal.h"

/* ---- Allocation seam --------------------------------------------------- */

static void *sys_alloc(size_t size, int zero, void *ud) {
  (void)ud;
  return zero ? calloc(1, size) : malloc(size);
}
static void sys_free(void *p, size_t size, void *ud) {
  (void)size;
  (void)ud;
  free(p);
}

static rl__allocator_t allocator = {sys_alloc, sys_free, NULL};

void rl__set_allocator(const rl__allocator_t *a) {
  if (a)
    allocator = *a;
  else
    allocator = (rl__allocator_t){sys_alloc, sys_free, NULL};
}

void *rl__alloc(size_t size) { return allocator.alloc(size, 0, allocator.ud); }
void *rl__calloc(size_t size) { return allocator.alloc(size, 1, allocator.ud); }
void rl__free(void *p, size_t size) {
  if (p)
    allocator.free(p, size, allocator.ud);
}

char *rl__strdup(const char *s, size_t *size_out) {
  size_t n = strlen(s) + 1;
  char *p = rl__alloc(n);
  if (p)
    memcpy(p, s, n);
  if (size_out)
    *size_out = n;
  return p;
}

/* ---- Errors ------------------------------------------------------------ */

const char *rl_strerror(int err) {
  switch (err) {
  case 0:
    return "success";
#define RL_ERRNO_CASE(name, value, text)                                      \
  case RL_##name:                                                             \
    return text;
    RL_ERRNO_MAP(RL_ERRNO_CASE)
#undef RL_ERRNO_CASE
  }
  return "unknown reclayout error";
}

/* Thread-local so concurrent users of a shared class each see their own
 * failure; formatted with vsnprintf into a fixed buffer so reporting an
 * out-of-memory condition never allocates. */
static _Thread_local char last_error[256];

const char *rl_last_error(void) { return last_error; }

int rl__err(int err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
  return err;
}

/* ---- Hash -------------------------------------------------------------- */

/* FNV-1a folded to 32 bits: names are short, so a simple byte loop beats
 * block hashes here, and 32 bits fit in a dict entry's spare cell bytes. */
uint32_t rl__hash(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    h ^= *p;
    h *= 1099511628211ull;
  }
  return (uint32_t)(h ^ (h >> 32));
}
