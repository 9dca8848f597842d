/* unwind.h - stack capture: the raw return addresses of the allocating call
 * stack, without heapsnap's own frames. */
#ifndef HS_UNWIND_H
#define HS_UNWIND_H

#include <stdint.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <string.h>

#include "../common/internal.h"

/* heapsnap's own frames above the caller: the unwinder entry, the recorder
 * and the interposed function, with room for a few more in debug builds. */
#define HS_OWN_FRAMES_MAX 8

/* How stacks are captured: frame pointers with libunwind per frame where
 * they are missing (the default), or libunwind's unw_backtrace for every
 * frame (HEAPSNAP_UNWIND=libunwind, to compare). */
enum { HS_UNWIND_FAST, HS_UNWIND_LIBUNWIND };
extern int hs__unwind_mode;
HS_HIDDEN void hs__unwind_set_mode(int mode);
/* The fast capture (fast.c), from frame, the frame address of the function
 * that inlined hs__unwind_capture: 0 when it cannot start there (then
 * unw_backtrace does the work). With memo, *memo is set to the id cell
 * that goes with exactly these frames, or NULL; and when that cell already
 * holds an id for tracing state s (non-zero), the frames after the first
 * few are not written, since the caller will not read them. */
HS_HIDDEN int hs__unwind_fast(uintptr_t *out, int max, uintptr_t caller_ret,
                              uintptr_t frame, hs_stack_memo_t **memo,
                              unsigned s);

/* Stores up to max frames in out, most recent first, starting at the frame
 * whose return address is caller_ret (the interposed function's
 * __builtin_return_address(0)). Returns the number stored (>= 1), and
 * in *memo the id cell that goes with exactly these frames, or NULL.
 * Given a tracing state s, a returned cell that holds the id for s may
 * come with frames left unwritten: the caller must take the id from it.
 * Inline, so that the function that calls it is the only heapsnap frame
 * the unwinder walks through.
 * hot path: no allocation, no lock of heapsnap's. */
static inline __attribute__((always_inline)) int
hs__unwind_capture_memo(uintptr_t *out, int max, uintptr_t caller_ret,
                        hs_stack_memo_t **memo, unsigned s) {
  *memo = NULL;
  if (max <= 1 || caller_ret == 0) {
    out[0] = caller_ret;
    return 1;
  }
  if (HS_LIKELY(__atomic_load_n(&hs__unwind_mode, __ATOMIC_RELAXED) ==
                HS_UNWIND_FAST)) {
    int got = hs__unwind_fast(out, max, caller_ret,
                              (uintptr_t)__builtin_frame_address(0), memo, s);
    if (got > 0)
      return got;
  }
  void *buf[HS_MAX_FRAMES + HS_OWN_FRAMES_MAX];
  int n = unw_backtrace(buf, max + HS_OWN_FRAMES_MAX);
  int skip = -1;
  for (int i = 0; i < n && i < HS_OWN_FRAMES_MAX + 1; i++) {
    if ((uintptr_t)buf[i] == caller_ret) {
      skip = i;
      break;
    }
  }
  if (skip < 0) {
    /* The unwinder lost the caller (no unwind info for it): the address the
     * interposer saw is still exact, so keep that one frame. */
    out[0] = caller_ret;
    return 1;
  }
  int got = n - skip;
  if (got > max)
    got = max;
  memcpy(out, buf + skip, (size_t)got * sizeof *out);
  return got;
}

/* The same, without the id cell. */
static inline __attribute__((always_inline)) int
hs__unwind_capture(uintptr_t *out, int max, uintptr_t caller_ret) {
  hs_stack_memo_t *memo;
  return hs__unwind_capture_memo(out, max, caller_ret, &memo, 0);
}

/* Unwinds once so that libunwind's lazy set-up (and its first, slow
 * dl_iterate_phdr) happens before tracing, not inside a host's malloc. */
HS_HIDDEN void hs__unwind_warm_up(void);

#endif
