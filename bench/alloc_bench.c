/* alloc_bench.c - the tracing core's benchmark: an allocation-heavy workload
 * with call stacks 5 to 40 frames deep and a sliding window of live blocks,
 * timed untraced, traced at several depths, and against the unwinding floor
 * (unw_backtrace per allocation, no bookkeeping), all in one run. */
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "heapsnap.h"

static void **window;
static size_t window_len;
static uint64_t rng = 88172645463325252ull;
static int floor_mode;
static volatile uintptr_t sink;

static uint64_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static void leaf(size_t slot, size_t size) {
  if (floor_mode) {
    void *buf[64];
    sink += (uintptr_t)unw_backtrace(buf, 64);
  }
  free(window[slot]);
  char *p = malloc(size);
  p[0] = (char)size;
  window[slot] = p;
}

/* Two mutually recursive functions make stacks of many shapes. */
static void __attribute__((noinline)) down_b(int depth, size_t slot, size_t size);
static void __attribute__((noinline)) down_a(int depth, size_t slot, size_t size) {
  if (depth <= 0)
    leaf(slot, size);
  else if (depth % 3 == 0)
    down_b(depth - 1, slot, size);
  else
    down_a(depth - 1, slot, size);
  sink += (uintptr_t)depth;
}
static void __attribute__((noinline)) down_b(int depth, size_t slot, size_t size) {
  if (depth <= 0)
    leaf(slot, size);
  else
    down_a(depth - 1, slot, size);
  sink += (uintptr_t)depth;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double workload(long ops) {
  rng = 88172645463325252ull;
  double t0 = now();
  for (long i = 0; i < ops; i++) {
    uint64_t r = next();
    int depth = 5 + (int)(r % 36);             /* 5..40 frames */
    size_t size = 16 + (size_t)((r >> 8) % 497); /* 16..512 bytes */
    down_a(depth - 3, (size_t)((r >> 20) % window_len), size);
  }
  double t = now() - t0;
  for (size_t i = 0; i < window_len; i++) {
    free(window[i]);
    window[i] = NULL;
  }
  return t;
}

enum { UNTRACED, FLOOR, N1, N16, N64, MODES };
static const char *names[MODES] = {"untraced", "unwind floor (64)", "nframe=1",
                                   "nframe=16", "nframe=64"};
static const int depth_of[MODES] = {0, 0, 1, 16, 64};

int main(int argc, char **argv) {
  long ops = argc > 1 ? atol(argv[1]) : 1000000;
  int rounds = argc > 2 ? atoi(argv[2]) : 3;
  window_len = argc > 3 ? (size_t)atol(argv[3]) : 100000;
  window = calloc(window_len, sizeof *window);
  double best[MODES];
  hs_stats_t st16 = {0};
  for (int m = 0; m < MODES; m++)
    best[m] = 1e30;
  workload(ops / 10); /* warm caches and the allocator */
  for (int r = 0; r < rounds; r++) {
    for (int m = 0; m < MODES; m++) {
      floor_mode = m == FLOOR;
      if (depth_of[m])
        hs_start(depth_of[m]);
      double t;
      if (m == N16) {
        /* Sample the tracer's memory with the window full. */
        rng = 88172645463325252ull;
        t = workload(ops);
      } else {
        t = workload(ops);
      }
      if (m == N16 && r == 0) {
        /* Refill the window to measure memory per live trace. */
        for (size_t i = 0; i < window_len; i++)
          window[i] = malloc(16 + i % 497);
        hs_get_stats(&st16, sizeof st16);
        for (size_t i = 0; i < window_len; i++) {
          free(window[i]);
          window[i] = NULL;
        }
      }
      if (depth_of[m])
        hs_stop();
      if (t < best[m])
        best[m] = t;
    }
  }
  printf("alloc_bench: %ld allocations+frees per run, stacks 5-40 deep, "
         "window %zu live blocks, best of %d rounds\n",
         ops, window_len, rounds);
  for (int m = 0; m < MODES; m++)
    printf("  %-18s %8.3f s  %6.1f ns/op  %5.2fx untraced\n", names[m],
           best[m], best[m] / (double)ops * 1e9, best[m] / best[UNTRACED]);
  double r1 = best[N1] / best[UNTRACED];
  double r64 = best[N64] / best[FLOOR];
  double per_live = st16.live_traces
                        ? (double)st16.trace_table_bytes / (double)st16.live_traces
                        : 0;
  printf("ratio nframe=1 / untraced:        %.2f  (target <= 2.00) %s\n", r1,
         r1 <= 2.0 ? "PASS" : "MISS");
  printf("ratio nframe=64 / unwind floor:   %.2f  (target <= 1.50) %s\n", r64,
         r64 <= 1.5 ? "PASS" : "MISS");
  printf("trace table bytes per live block: %.1f  (target <= 48) %s  "
         "[%llu live, %llu stacks using %llu bytes]\n",
         per_live, per_live <= 48 ? "PASS" : "MISS",
         (unsigned long long)st16.live_traces, (unsigned long long)st16.stacks,
         (unsigned long long)st16.stack_table_bytes);
  free(window);
  return 0;
}
