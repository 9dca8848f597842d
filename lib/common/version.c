/* version.c - what the loaded library says about its ABI: hs_version(), the
 * fill rule of the versioned structs, and the frozen layouts checked. */
#include <string.h>

#include "internal.h"

int hs_version(void) { return HS_VERSION; }

int hs__fill_versioned(void *out, size_t size, const void *full,
                       size_t full_size) {
  if (!out || size < sizeof(size_t))
    return HS_EINVAL;
  size_t n = size < full_size ? size : full_size;
  /* Only n bytes: a caller built against an older header has no room for
   * the members appended since, and those it has keep their meaning. */
  memcpy(out, full, n);
  memcpy(out, &n, sizeof n);
  return 0;
}

/* Arrays of these are indexed by callers and built by them for the format
 * functions: a change of layout is an ABI break that needs a new soname
 * (x86-64 and aarch64 LP64 sizes). */
#if UINTPTR_MAX == UINT64_MAX
_Static_assert(sizeof(hs_frame_t) == 40, "hs_frame_t is frozen for soname 1");
_Static_assert(sizeof(hs_statistic_t) == 112,
               "hs_statistic_t is frozen for soname 1");
_Static_assert(sizeof(hs_statistic_diff_t) == 160,
               "hs_statistic_diff_t is frozen for soname 1");
_Static_assert(sizeof(hs_filter_t) == 32, "hs_filter_t is frozen for soname 1");
#endif
/* The versioned structs start with their size, which is all the fill rule
 * relies on. */
_Static_assert(offsetof(hs_stats_t, struct_size) == 0, "struct_size first");
_Static_assert(offsetof(hs_snapshot_info_t, struct_size) == 0,
               "struct_size first");
_Static_assert(offsetof(hs_statistics_info_t, struct_size) == 0,
               "struct_size first");
