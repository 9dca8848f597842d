/* clock_bench.c - the lifetime clock's cost per read: the stamp heapsnap
 * takes at each allocation and free (rdtsc and a multiply, calibrated), and
 * the vDSO's clock_gettime(CLOCK_MONOTONIC) it was chosen over. */
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "trace/trace.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(void) {
  enum { N = 50 * 1000 * 1000 };
  volatile uint64_t sink = 0;
  hs__clock_calibrate();
  printf("clock_bench: %d reads each, best of 5; tsc %s\n", N,
         hs__tsc_mult ? "invariant (rdtsc used)" : "not used");
  double best_stamp = 1e9, best_gettime = 1e9;
  for (int round = 0; round < 5; round++) {
    double t0 = now();
    for (int i = 0; i < N; i++)
      sink += hs__stamp_now();
    double t1 = now();
    for (int i = 0; i < N; i++) {
      struct timespec ts;
      clock_gettime(CLOCK_MONOTONIC, &ts);
      sink += (uint64_t)ts.tv_nsec;
    }
    double t2 = now();
    if (t1 - t0 < best_stamp)
      best_stamp = t1 - t0;
    if (t2 - t1 < best_gettime)
      best_gettime = t2 - t1;
  }
  printf("hs__stamp_now:                 %.1f ns per read\n",
         best_stamp / N * 1e9);
  printf("clock_gettime(CLOCK_MONOTONIC): %.1f ns per read\n",
         best_gettime / N * 1e9);
  return (int)(sink & 0);
}
