/* snapshot_bench.c - the snapshot layer's benchmark: 1,000,000 live
 * allocations from 1,000 distinct stacks; times take_snapshot, dump, load
 * and compare_to by line, and the file's size, in one run. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "heapsnap.h"

/* The totals of a statistics list, by value for use in assertions. */
static hs_statistics_info_t stats_info(const hs_statistics_t *st) {
  hs_statistics_info_t in;
  hs_statistics_get_info(st, &in, sizeof in);
  return in;
}

#define LIVE 1000000
#define STACKS 1000
#define LEVELS 5 /* 4^5 = 1024 >= STACKS distinct paths */

static void **blocks;
static size_t nblocks;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Two bits of path choose one of four functions at each level, so every
 * path is a distinct call stack, and all of it fits in 16 frames. */
static void step(int depth, unsigned path, int n);
#define LEVEL_FN(k)                                                           \
  static void __attribute__((noinline)) level##k(int depth, unsigned path,    \
                                                 int n) {                     \
    step(depth + 1, path, n);                                                 \
    __asm__ volatile("" ::: "memory");                                        \
  }
LEVEL_FN(0)
LEVEL_FN(1)
LEVEL_FN(2)
LEVEL_FN(3)
static void __attribute__((noinline)) step(int depth, unsigned path, int n) {
  static void (*const fns[4])(int, unsigned, int) = {level0, level1, level2,
                                                     level3};
  if (depth == LEVELS) {
    for (int i = 0; i < n; i++)
      blocks[nblocks++] = malloc(16 + (path % 7) * 8);
    return;
  }
  fns[path >> (2 * depth) & 3](depth, path, n);
}

static void report(const char *what, double secs, double target) {
  printf("  %-28s %8.3f s   target <= %.1f s  %s\n", what, secs, target,
         secs <= target ? "PASS" : "MISS");
}

int main(int argc, char **argv) {
  const char *path = argc > 1 ? argv[1] : "/tmp/heapsnap-bench.hsnap";
  blocks = malloc(sizeof *blocks * (LIVE + 1));
  hs_start(HS_DEFAULT_FRAMES);
  for (unsigned p = 0; p < STACKS; p++)
    step(0, p, LIVE / STACKS);
  hs_snapshot_t *a;
  double t0 = now();
  if (hs_take_snapshot(&a) != 0)
    return 1;
  double t_take = now() - t0;
  hs_snapshot_info_t in;
  hs_snapshot_get_info(a, &in, sizeof in);
  t0 = now();
  int rc = hs_snapshot_dump(a, path);
  double t_dump = now() - t0; /* includes the one symbolization */
  if (rc != 0) {
    perror("dump");
    return 1;
  }
  struct stat st;
  stat(path, &st);
  hs_snapshot_t *b;
  char err[256];
  t0 = now();
  rc = hs_snapshot_load(path, &b, err, sizeof err);
  double t_load = now() - t0;
  if (rc != 0) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  /* Free a tenth of the blocks so the comparison has work to do. */
  for (size_t i = 0; i < nblocks; i += 10)
    free(blocks[i]);
  hs_snapshot_t *c;
  hs_take_snapshot(&c);
  hs_snapshot_dump(c, path); /* symbolize c outside the timed compare */
  hs_statistics_t *diff;
  t0 = now();
  rc = hs_snapshot_compare(c, b, HS_KEY_LINENO, 0, &diff);
  double t_cmp = now() - t0;
  hs_statistics_t *tb;
  t0 = now();
  hs_snapshot_compare(c, b, HS_KEY_TRACEBACK, 0, &tb);
  double t_cmp_tb = now() - t0;
  printf("snapshot_bench: %llu live allocations, %llu distinct stacks, "
         "nframe=%d\n",
         (unsigned long long)in.count, (unsigned long long)in.stacks,
         HS_DEFAULT_FRAMES);
  report("take_snapshot", t_take, 0.2);
  report("dump (symbolize + write)", t_dump, 0.5);
  report("load", t_load, 0.3);
  report("compare_to by lineno", t_cmp, 0.2);
  printf("  %-28s %8.3f s   (no target)\n", "compare_to by traceback",
         t_cmp_tb);
  printf("  %-28s %8.1f KiB  target <= 1024 KiB  %s\n", "file size",
         (double)st.st_size / 1024, st.st_size <= 1 << 20 ? "PASS" : "MISS");
  printf("  compare: %zu keys, size diff %lld B, count diff %lld\n",
         hs_statistics_count(diff), (long long)stats_info(diff).total_size_diff,
         (long long)stats_info(diff).total_count_diff);
  hs_statistics_free(diff);
  hs_statistics_free(tb);
  hs_snapshot_free(a);
  hs_snapshot_free(b);
  hs_snapshot_free(c);
  unlink(path);
  return rc;
}
