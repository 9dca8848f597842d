/* snapcheck.c - loads .hsnap files for the fault, stress and security
 * scripts: one line of totals per file, exit 1 if any fails to load. */
#include <stdio.h>

#include "heapsnap.h"

int main(int argc, char **argv) {
  int bad = 0;
  for (int i = 1; i < argc; i++) {
    hs_snapshot_t *s;
    char err[512];
    if (hs_snapshot_load(argv[i], &s, err, sizeof err) != 0) {
      fprintf(stderr, "snapcheck: %s\n", err);
      bad = 1;
      continue;
    }
    hs_snapshot_info_t in;
    hs_snapshot_get_info(s, &in, sizeof in);
    printf("%s pid=%llu count=%llu size=%llu current=%llu dropped=%llu "
           "dropped_bytes=%llu\n",
           argv[i], (unsigned long long)in.pid, (unsigned long long)in.count,
           (unsigned long long)in.size,
           (unsigned long long)in.traced_current,
           (unsigned long long)in.dropped_traces,
           (unsigned long long)in.dropped_bytes);
    hs_snapshot_free(s);
  }
  return bad;
}
