/* unwind.c - the unwinders' set-up, done before tracing starts (the
 * capture itself is inline in unwind.h). */

#include "unwind.h"

void hs__unwind_warm_up(void) {
  void *buf[4];
  (void)unw_backtrace(buf, 4);
  hs__unwind_cfi_init();
  /* Modules may have come and gone while nothing was traced. */
  hs__unwind_modules_changed();
}
