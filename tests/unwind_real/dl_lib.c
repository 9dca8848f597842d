/* dl_lib.c - built twice with different frame sizes (FRAME), so that the
 * two libraries have the same code layout but different unwinding rules at
 * the same offsets: a rule kept after dlclose would unwind the other one
 * wrongly. */
#include <stdlib.h>
#include <string.h>

/* Where each call returns to: the frames the allocation's stack must have
 * above its own. */
void *dl_ret[2];

void *__attribute__((noinline)) dl_inner(size_t n) {
  volatile char pad[FRAME];
  dl_ret[0] = __builtin_return_address(0);
  pad[0] = (char)n;
  void *p = malloc(n + (size_t)pad[0] % 2);
  memset(p, 1, n);
  return p;
}

void *__attribute__((noinline)) dl_outer(size_t n) {
  volatile char pad[FRAME];
  pad[FRAME - 1] = 0;
  dl_ret[1] = __builtin_return_address(0);
  return (char *)dl_inner(n) + pad[FRAME - 1];
}
