/* v0_stub.c - stands in for libheapsnap.so.0 (the 0.1 release) so that a
 * program can be linked against the 0.1 header and its soname; the test
 * then runs that program against the 1.x library, which must refuse it. */
#include <stdlib.h>

#include "heapsnap.h" /* tests/abi/v0: the 0.1 header, as released */

int hs_start(int nframe) { return nframe > 0 ? 0 : HS_EINVAL; }
void hs_stop(void) {}
void hs_get_stats(hs_stats_t *out) {
  if (out)
    *out = (hs_stats_t){0};
}
int hs_take_snapshot(hs_snapshot_t **out) {
  *out = NULL;
  return HS_ENOTTRACING;
}
void hs_snapshot_free(hs_snapshot_t *snap) { (void)snap; }
int hs_snapshot_statistics(hs_snapshot_t *snap, hs_key_t key, int cumulative,
                           hs_statistics_t **out) {
  (void)snap, (void)key, (void)cumulative;
  *out = calloc(1, sizeof **out);
  return *out ? 0 : HS_ENOMEM;
}
void hs_statistics_free(hs_statistics_t *st) { free(st); }
