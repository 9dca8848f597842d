/* hsnap_info.c - prints a .hsnap file's totals for the shell tests:
 * "size=N count=N peak=N current=N pid=N sample_rate=N". */
#include <stdio.h>

#include "heapsnap.h"

int main(int argc, char **argv) {
  if (argc != 2)
    return 2;
  hs_snapshot_t *s;
  char err[512];
  if (hs_snapshot_load(argv[1], &s, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  hs_snapshot_info_t in;
  hs_snapshot_get_info(s, &in, sizeof in);
  printf("size=%llu count=%llu peak=%llu current=%llu pid=%llu "
         "sample_rate=%llu\n",
         (unsigned long long)in.size, (unsigned long long)in.count,
         (unsigned long long)in.traced_peak,
         (unsigned long long)in.traced_current, (unsigned long long)in.pid,
         (unsigned long long)in.sample_rate);
  hs_snapshot_free(s);
  return 0;
}
