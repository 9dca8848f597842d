/* inline_site.c - an always_inline function around a call, compiled at -O2
 * so that the return address expands to an inline frame and its caller. */
#include "sites.h"

volatile uintptr_t inline_sink;

static __attribute__((noipa)) uintptr_t inline_record(void) {
  return (uintptr_t)__builtin_return_address(0);
}

static inline __attribute__((always_inline)) uintptr_t
inl_helper(int *inner_line) {
  uintptr_t r = inline_record(); *inner_line = __LINE__;
  inline_sink = r;
  return r;
}

__attribute__((noinline, noipa)) uintptr_t inline_site(int *inner_line,
                                                       int *outer_line) {
  uintptr_t r = inl_helper(inner_line); *outer_line = __LINE__;
  inline_sink += 1; /* no tail call: the return address stays in here */
  return r;
}
