/* unwind.c - the unwinders' set-up, done before tracing starts (the
 * capture itself is inline in unwind.h). */

#include "unwind.h"

atomic_uint_least64_t hs__unwind_truncated;

void hs__unwind_warm_up(void) {
  void *buf[4];
  if (hs__loader_enter()) {
    (void)unw_backtrace(buf, 4);
    hs__loader_exit();
  }
  hs__unwind_cfi_init();
  /* Modules may have come and gone while nothing was traced. */
  hs__unwind_modules_changed();
}
