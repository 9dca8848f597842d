/* unwind.c - stack capture with libunwind's unw_backtrace; one frame needs no
 * unwinding at all because the interposer already knows its caller. */
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <string.h>

#include "unwind.h"

/* heapsnap's own frames above the caller: the unwinder entry, the recorder
 * and the interposed function, with room for a few more in debug builds. */
#define OWN_FRAMES_MAX 8

int hs__unwind_capture(uintptr_t *out, int max, uintptr_t caller_ret) {
  if (max <= 1 || caller_ret == 0) {
    out[0] = caller_ret;
    return 1;
  }
  void *buf[HS_MAX_FRAMES + OWN_FRAMES_MAX];
  int n = unw_backtrace(buf, max + OWN_FRAMES_MAX);
  int skip = -1;
  for (int i = 0; i < n && i < OWN_FRAMES_MAX + 1; i++) {
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

void hs__unwind_warm_up(void) {
  void *buf[4];
  (void)unw_backtrace(buf, 4);
}
