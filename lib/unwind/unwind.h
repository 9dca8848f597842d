/* unwind.h - stack capture: the raw return addresses of the allocating call
 * stack, without heapsnap's own frames. */
#ifndef HS_UNWIND_H
#define HS_UNWIND_H

#include <stdint.h>

#include "../common/internal.h"

/* Stores up to max frames in out, most recent first, starting at the frame
 * whose return address is caller_ret (the interposed function's
 * __builtin_return_address(0)). Returns the number stored (>= 1).
 * hot path: no allocation, no lock of heapsnap's. */
HS_HIDDEN int hs__unwind_capture(uintptr_t *out, int max, uintptr_t caller_ret);

/* Unwinds once so that libunwind's lazy set-up (and its first, slow
 * dl_iterate_phdr) happens before tracing, not inside a host's malloc. */
HS_HIDDEN void hs__unwind_warm_up(void);

#endif
