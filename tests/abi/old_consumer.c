/* old_consumer.c - a program written for and built against the 0.1 header
 * (tests/abi/v0/heapsnap.h): it reads hs_statistics_t's members and passes
 * an unversioned hs_stats_t, which the 1.x library must never see. */
#include <stdio.h>

#include "heapsnap.h"

int main(void) {
  if (hs_start(8) != 0)
    return 2;
  hs_stats_t st;
  hs_get_stats(&st);
  hs_snapshot_t *s = NULL;
  hs_statistics_t *stats;
  if (hs_take_snapshot(&s) == 0) {
    if (hs_snapshot_statistics(s, HS_KEY_LINENO, 0, &stats) == 0) {
      for (size_t i = 0; i < stats->count; i++)
        printf("%llu\n", (unsigned long long)stats->stats[i].size);
      hs_statistics_free(stats);
    }
    hs_snapshot_free(s);
  }
  hs_stop();
  printf("old consumer ran (traced %llu)\n",
         (unsigned long long)st.traced_current);
  return 0;
}
