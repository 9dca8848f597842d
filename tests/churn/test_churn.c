/* test_churn.c - cumulative counters per line through the interposer: a
 * workload whose sites allocate known numbers of blocks, some freed at
 * once, some held 20 ms, some kept; totals, temporary counts and lifetime
 * buckets checked exactly in full mode, as estimates when sampled. With
 * "--dump PATH" it writes the workload's snapshot for go_pprof.py. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "heapsnap.h"

#define A_N 3000 /* 64 B each, freed at once: temporary both ways */
#define B_N 200  /* 1500 B each, kept */
#define C_N 50   /* 10000 B each, held 20 ms, then freed */
#define D_N 1000 /* 32 B each, kept */

static void *volatile sink;
static void *kept_b[B_N], *kept_d[D_N], *held[C_N];

__attribute__((noinline)) static void site_a(int n) {
  for (int i = 0; i < n; i++) {
    void *p = malloc(64);
    sink = p;
    free(p);
  }
}
__attribute__((noinline)) static void site_b(void) {
  for (int i = 0; i < B_N; i++)
    kept_b[i] = malloc(1500);
}
__attribute__((noinline)) static void site_c(void) {
  for (int i = 0; i < C_N; i++)
    held[i] = malloc(10000);
}
__attribute__((noinline)) static void site_d(void) {
  for (int i = 0; i < D_N; i++)
    kept_d[i] = malloc(32);
}

static void workload(void) {
  site_a(A_N);
  site_b();
  site_c();
  site_d();
  struct timespec ts = {0, 20 * 1000 * 1000};
  nanosleep(&ts, NULL);
  /* In allocation order: none is its thread's last allocation. */
  for (int i = 0; i < C_N; i++)
    free(held[i]);
}

static void release(void) {
  for (int i = 0; i < B_N; i++)
    free(kept_b[i]);
  for (int i = 0; i < D_N; i++)
    free(kept_d[i]);
}

static const hs_statistic_t *find(const hs_statistics_t *st,
                                  const char *fn) {
  for (size_t i = 0; i < hs_statistics_count(st); i++) {
    const hs_statistic_t *e = hs_statistics_get(st, i);
    if (e->nframe && e->frames[0].function &&
        strcmp(e->frames[0].function, fn) == 0)
      return e;
  }
  return NULL;
}

/* The bucket 20 ms falls in: [2^24, 2^25) ns. */
#define HELD_BUCKET 15
/* Freed at once: under 1 ms, buckets 0..10 (bucket 10 ends at 2^20 ns). */
#define QUICK_BUCKETS 11

static void check_full(hs_snapshot_t *snap) {
  hs_statistics_t *st;
  ck_assert_int_eq(hs_snapshot_statistics(snap, HS_KEY_LINENO, 0, &st), 0);
  hs_statistics_info_t si;
  ck_assert_int_eq(hs_statistics_get_info(st, &si, sizeof si), 0);
  ck_assert_int_eq(si.has_churn, 1);
  /* site_a has no live block: out of the live order, in the others. */
  ck_assert_ptr_null(find(st, "site_a"));
  ck_assert_int_eq(hs_statistics_sort(st, HS_SORT_ALLOCATED), 0);
  const hs_statistic_t *a = find(st, "site_a"), *b = find(st, "site_b"),
                       *c = find(st, "site_c"), *d = find(st, "site_d");
  ck_assert_ptr_nonnull(a);
  ck_assert_ptr_nonnull(b);
  ck_assert_ptr_nonnull(c);
  ck_assert_ptr_nonnull(d);
  ck_assert_ptr_eq(hs_statistics_get(st, 0), c); /* 500,000 bytes allocated */
  ck_assert_uint_eq(a->alloc_count, A_N);
  ck_assert_uint_eq(a->alloc_size, A_N * 64);
  ck_assert_uint_eq(a->frees, A_N);
  ck_assert_uint_eq(a->temporary, A_N);
  ck_assert_uint_eq(a->temporary_time, A_N);
  ck_assert_uint_eq(a->size, 0);
  uint64_t quick = 0;
  for (int k = 0; k < QUICK_BUCKETS; k++)
    quick += a->lifetime[k];
  ck_assert_uint_eq(quick, A_N);
  ck_assert_uint_le(a->lifetime_p99_ns, HS_LIFETIME_BUCKET_NS(QUICK_BUCKETS));
  ck_assert_uint_eq(b->alloc_count, B_N);
  ck_assert_uint_eq(b->alloc_size, B_N * 1500);
  ck_assert_uint_eq(b->frees, 0);
  ck_assert_uint_eq(b->size, B_N * 1500);
  ck_assert_uint_eq(b->count, B_N);
  ck_assert_uint_eq(c->alloc_count, C_N);
  ck_assert_uint_eq(c->alloc_size, C_N * 10000);
  ck_assert_uint_eq(c->frees, C_N);
  ck_assert_uint_eq(c->temporary, 0);
  ck_assert_uint_eq(c->temporary_time, 0);
  ck_assert_uint_eq(c->lifetime[HELD_BUCKET], C_N);
  ck_assert_uint_eq(c->lifetime_p50_ns, HS_LIFETIME_BUCKET_NS(HELD_BUCKET + 1));
  ck_assert_uint_eq(d->alloc_count, D_N);
  ck_assert_uint_eq(d->count, D_N);
  ck_assert_int_eq(hs_statistics_sort(st, HS_SORT_COUNT), 0);
  ck_assert_ptr_eq(hs_statistics_get(st, 0), find(st, "site_a"));
  ck_assert_int_eq(hs_statistics_sort(st, HS_SORT_TEMPORARY), 0);
  ck_assert_ptr_eq(hs_statistics_get(st, 0), find(st, "site_a"));
  hs_statistics_free(st);
}

START_TEST(full_mode_exact) {
  ck_assert_int_eq(hs_set_sample_rate(0, 0), 0);
  ck_assert_int_eq(hs_start(16), 0);
  workload();
  hs_snapshot_t *snap;
  ck_assert_int_eq(hs_take_snapshot(&snap), 0);
  check_full(snap);
  /* The file keeps them. */
  char path[] = "/tmp/hs_churn_XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(hs_snapshot_dump(snap, path), 0);
  hs_snapshot_t *back;
  char err[256];
  ck_assert_int_eq(hs_snapshot_load(path, &back, err, sizeof err), 0);
  check_full(back);
  hs_snapshot_info_t info;
  hs_snapshot_get_info(back, &info, sizeof info);
  ck_assert_int_eq(info.has_churn, 1);
  ck_assert_uint_ge(info.alloc_count, A_N + B_N + C_N + D_N);
  ck_assert_uint_eq(info.temporary_ns, HS_DEFAULT_TEMPORARY_NS);
  unlink(path);

  /* compare: only what came between the two. */
  site_a(500);
  hs_snapshot_t *later;
  ck_assert_int_eq(hs_take_snapshot(&later), 0);
  hs_statistics_t *cmp;
  ck_assert_int_eq(hs_snapshot_compare(later, snap, HS_KEY_LINENO, 0, &cmp), 0);
  ck_assert_int_eq(hs_statistics_sort(cmp, HS_SORT_COUNT), 0);
  const hs_statistic_diff_t *top = hs_statistics_get_diff(cmp, 0);
  ck_assert_str_eq(top->frames[0].function, "site_a");
  ck_assert_int_eq(top->alloc_count_diff, 500);
  ck_assert_int_eq(top->alloc_size_diff, 500 * 64);
  ck_assert_int_eq(top->temporary_diff, 500);
  ck_assert_uint_eq(top->alloc_count, A_N + 500);
  hs_statistics_free(cmp);
  hs_snapshot_free(later);

  /* hs_clear_traces starts the counters over. */
  hs_clear_traces();
  site_a(7);
  ck_assert_int_eq(hs_take_snapshot(&later), 0);
  hs_statistics_t *st;
  ck_assert_int_eq(hs_snapshot_statistics(later, HS_KEY_LINENO, 0, &st), 0);
  ck_assert_int_eq(hs_statistics_sort(st, HS_SORT_COUNT), 0);
  const hs_statistic_t *a = find(st, "site_a");
  ck_assert_ptr_nonnull(a);
  ck_assert_uint_eq(a->alloc_count, 7);
  ck_assert_ptr_null(find(st, "site_b"));
  hs_statistics_free(st);
  hs_snapshot_free(later);
  hs_snapshot_free(back);
  hs_snapshot_free(snap);
  hs_stop();
  release();
}
END_TEST

/* Sampled: one sample per 4 KiB; site_a's 100,000 blocks of 64 B make
 * about 1,560 samples, so its estimates have a relative standard error of
 * about 2.5%: checked within 12% (almost 5 sigma). */
#define SAMPLED_N 100000
START_TEST(sampled_estimates) {
  ck_assert_int_eq(hs_set_sample_rate(4096, 424242), 0);
  ck_assert_int_eq(hs_start(16), 0);
  site_a(SAMPLED_N);
  hs_snapshot_t *snap;
  ck_assert_int_eq(hs_take_snapshot(&snap), 0);
  hs_statistics_t *st;
  ck_assert_int_eq(hs_snapshot_statistics(snap, HS_KEY_LINENO, 0, &st), 0);
  ck_assert_int_eq(hs_statistics_sort(st, HS_SORT_ALLOCATED), 0);
  const hs_statistic_t *a = find(st, "site_a");
  ck_assert_ptr_nonnull(a);
  double want = SAMPLED_N;
  ck_assert_double_le(fabs((double)a->alloc_count - want) / want, 0.12);
  ck_assert_double_le(fabs((double)a->alloc_size - want * 64) / (want * 64),
                      0.12);
  ck_assert_double_le(fabs((double)a->frees - want) / want, 0.12);
  ck_assert_double_le(fabs((double)a->temporary - want) / want, 0.12);
  ck_assert_double_le(fabs((double)a->temporary_time - want) / want, 0.12);
  hs_statistics_free(st);
  hs_snapshot_free(snap);
  hs_stop();
  ck_assert_int_eq(hs_set_sample_rate(0, 0), 0);
}
END_TEST

static int dump_mode(const char *path) {
  hs_start(16);
  workload();
  hs_snapshot_t *snap;
  if (hs_take_snapshot(&snap) != 0 || hs_snapshot_dump(snap, path) != 0)
    return 1;
  hs_snapshot_free(snap);
  hs_stop();
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--dump") == 0)
    return dump_mode(argv[2]);
  Suite *s = suite_create("churn");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, full_mode_exact);
  tcase_add_test(tc, sampled_estimates);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_set_fork_status(sr, CK_NOFORK);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
