/* test_sampling.c - sampled tracing: a known population of reclayout
 * records, sampled at the default rate, is estimated within 5% of what it
 * really holds in total, and each population within four standard errors
 * of its own size; large blocks are always seen; the estimate survives a
 * dump and load; a seed makes the choice repeatable. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heapsnap.h"
#include "reclayout.h"

/* The totals of a statistics list, by value for use in assertions. */
static hs_statistics_info_t stats_info(const hs_statistics_t *st) {
  hs_statistics_info_t in;
  hs_statistics_get_info(st, &in, sizeof in);
  return in;
}

/* A million records of each layout: 318 MB, about 4,900 samples at the
 * default rate, so the total's standard error is 1.4%. */
#define N 1000000

static const char *xyz[] = {"x", "y", "z"};

static rl_class_t *mk(rl_class_spec_t spec) {
  rl_class_t *c;
  ck_assert_int_eq(rl_class_new(&spec, &c), 0);
  return c;
}

/* Check records every assertion with a write(2); the loops below count
 * failures instead and assert once. */
static long failures;

static void fill(rl_obj_t *o, int i) {
  for (int k = 0; k < 3; k++)
    failures += rl_set(o, xyz[k], rl_double(i + k * 0.5)) != 0;
}

/* One population per function: each is its own site. */
__attribute__((noinline)) static size_t pop_dict(rl_class_t *c, rl_obj_t **o) {
  size_t bytes = 0;
  for (int i = 0; i < N; i++) {
    failures += rl_new(c, &o[i]) != 0;
    fill(o[i], i);
    bytes += rl_deep_sizeof(o[i]);
  }
  return bytes;
}

__attribute__((noinline)) static size_t pop_slots(rl_class_t *c, rl_obj_t **o) {
  size_t bytes = 0;
  for (int i = 0; i < N; i++) {
    failures += rl_new(c, &o[i]) != 0;
    fill(o[i], i);
    bytes += rl_deep_sizeof(o[i]);
  }
  return bytes;
}

struct point {
  double x, y, z;
};

__attribute__((noinline)) static size_t pop_struct(struct point **o) {
  for (int i = 0; i < N; i++) {
    o[i] = malloc(sizeof **o);
    o[i]->x = i;
  }
  return (size_t)N * sizeof **o;
}

static int within(double est, double exact, double tol) {
  return fabs(est - exact) <= tol * exact;
}

START_TEST(estimates_within_five_percent) {
  rl_class_t *dict = mk((rl_class_spec_t){.name = "PointWithDict"});
  rl_class_t *shared = mk((rl_class_spec_t){.name = "SharedPoint",
      .dict_kind = RL_DICT_SHARED, .dict_keys = xyz, .ndict_keys = 3});
  rl_slot_spec_t tagged[] = {{"x", RL_T_TAGGED}, {"y", RL_T_TAGGED}, {"z", RL_T_TAGGED}};
  rl_class_t *slots = mk((rl_class_spec_t){.name = "PointWithSlots",
      RL_SLOTS(tagged)});
  rl_obj_t **a = malloc(N * sizeof *a), **b = malloc(N * sizeof *b),
           **c = malloc(N * sizeof *c);
  struct point **d = malloc(N * sizeof *d);

  ck_assert_int_eq(hs_set_sample_rate(HS_DEFAULT_SAMPLE_RATE, 20261123), 0);
  ck_assert_int_eq(hs_start(16), 0);
  ck_assert_uint_eq(hs_get_sample_rate(), HS_DEFAULT_SAMPLE_RATE);
  size_t exact[4];
  exact[0] = pop_dict(dict, a);
  exact[1] = pop_dict(shared, b);
  exact[2] = pop_slots(slots, c);
  exact[3] = pop_struct(d);
  ck_assert_int_eq(failures, 0);
  hs_snapshot_t *s;
  ck_assert_int_eq(hs_take_snapshot(&s), 0);
  hs_snapshot_info_t in;
  hs_snapshot_get_info(s, &in, sizeof in);
  ck_assert_uint_eq(in.sample_rate, HS_DEFAULT_SAMPLE_RATE);
  size_t total = exact[0] + exact[1] + exact[2] + exact[3];
  printf("sampled at %d B: estimate %llu B in %llu blocks, exact %zu B\n",
         HS_DEFAULT_SAMPLE_RATE, (unsigned long long)in.size,
         (unsigned long long)in.count, total);
  /* Everything live was allocated by these populations (and a few blocks
   * of the test's own); the estimate is within 5% of the exact total. */
  ck_assert_msg(within((double)in.size, (double)total, 0.05),
                "estimate %llu, exact %zu", (unsigned long long)in.size, total);

  /* Per population, by function and cumulative (the sites themselves are
   * fill() and reclayout's callers): each within four standard errors. */
  hs_statistics_t *st;
  ck_assert_int_eq(hs_snapshot_statistics(s, HS_KEY_FUNCTION, 1, &st), 0);
  ck_assert_uint_eq(stats_info(st).sample_rate, HS_DEFAULT_SAMPLE_RATE);
  const char *names[] = {"pop_dict", "pop_dict", "pop_slots", "pop_struct"};
  size_t want[3] = {exact[0] + exact[1], exact[2], exact[3]};
  const char *fns[3] = {names[0], names[2], names[3]};
  for (int k = 0; k < 3; k++) {
    uint64_t est = 0;
    for (size_t i = 0; i < hs_statistics_count(st); i++)
      if (hs_statistics_get(st, i)->frames[0].function &&
          !strcmp(hs_statistics_get(st, i)->frames[0].function, fns[k]))
        est += hs_statistics_get(st, i)->size;
    /* A Poisson count of about bytes/rate samples: its relative standard
     * error is sqrt(rate/bytes). */
    double se = sqrt((double)HS_DEFAULT_SAMPLE_RATE / (double)want[k]);
    printf("  %-10s estimate %10llu B, exact %10zu B (%+.2f%%, 4 s.e. = "
           "%.1f%%)\n", fns[k], (unsigned long long)est, want[k],
           100.0 * ((double)est - (double)want[k]) / (double)want[k],
           400 * se);
    ck_assert_msg(within((double)est, (double)want[k], 4 * se),
                  "%s: estimate %llu, exact %zu", fns[k],
                  (unsigned long long)est, want[k]);
  }
  hs_statistics_free(st);

  /* Few blocks were really recorded: sampling keeps the tables small. */
  hs_stats_t hst;
  hs_get_stats(&hst, sizeof hst);
  ck_assert_uint_lt(hst.live_traces, (uint64_t)total / 20000);
  ck_assert_uint_gt(hst.live_traces, 100);

  /* The estimate survives the file. */
  char path[] = "/tmp/hs-sampled-XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  close(fd);
  ck_assert_int_eq(hs_snapshot_dump(s, path), 0);
  hs_snapshot_t *l;
  char err[256];
  ck_assert_int_eq(hs_snapshot_load(path, &l, err, sizeof err), 0);
  hs_snapshot_info_t lin;
  hs_snapshot_get_info(l, &lin, sizeof lin);
  ck_assert_uint_eq(lin.sample_rate, in.sample_rate);
  ck_assert_uint_eq(lin.size, in.size);
  ck_assert_uint_eq(lin.count, in.count);
  hs_snapshot_free(l);
  unlink(path);
  hs_snapshot_free(s);

  /* Freeing everything: the traced (sampled) bytes go back to zero. */
  for (int i = 0; i < N; i++) {
    rl_free(a[i]);
    rl_free(b[i]);
    rl_free(c[i]);
    free(d[i]);
  }
  size_t cur;
  hs_get_traced_memory(&cur, NULL);
  ck_assert_uint_lt(cur, 4096); /* at most the test's own stdout buffer */
  hs_stop();
  ck_assert_int_eq(hs_set_sample_rate(0, 0), 0);
  free(a);
  free(b);
  free(c);
  free(d);
  rl_class_free(dict);
  rl_class_free(shared);
  rl_class_free(slots);
}
END_TEST

START_TEST(large_blocks_always_seen) {
  ck_assert_int_eq(hs_set_sample_rate(HS_DEFAULT_SAMPLE_RATE, 7), 0);
  ck_assert_int_eq(hs_start(8), 0);
  /* A block 64 times the rate is missed with probability e^-64. */
  void *big[20];
  for (int i = 0; i < 20; i++)
    big[i] = malloc(64 * HS_DEFAULT_SAMPLE_RATE);
  for (int i = 0; i < 20; i++) {
    uintptr_t f[8];
    ck_assert_int_ge(hs_get_object_traceback(big[i], f, 8), 1);
    free(big[i]);
  }
  ck_assert_int_eq(hs_set_sample_rate((size_t)1 << 41, 0), HS_EINVAL);
  hs_stop();
  ck_assert_int_eq(hs_set_sample_rate(0, 0), 0);
  ck_assert_uint_eq(hs_get_sample_rate(), 0);
}
END_TEST

/* A sampled block moved by realloc into a block that is not sampled: the
 * old address was freed by the move, so its trace must not come back. */
START_TEST(realloc_to_unsampled_forgets_old) {
  ck_assert_int_eq(hs_set_sample_rate(HS_DEFAULT_SAMPLE_RATE, 11), 0);
  ck_assert_int_eq(hs_start(8), 0);
  enum { NBLK = 4000 };
  static char *blk[NBLK], *fence[NBLK];
  int checked = 0;
  for (int i = 0; i < NBLK && checked < 5; i++) {
    /* 1000-byte blocks, sampled about once in 65; each with a neighbour
     * in use, so that growing it must move it. */
    blk[i] = malloc(1000);
    fence[i] = malloc(1000);
    ck_assert_ptr_nonnull(blk[i]);
    ck_assert_ptr_nonnull(fence[i]);
    uintptr_t f[8];
    if (hs_get_object_traceback(blk[i], f, 8) < 1)
      continue;
    size_t before;
    hs_get_traced_memory(&before, NULL);
    /* Volatile: only the address is looked up, never the freed block. */
    volatile uintptr_t was = (uintptr_t)blk[i];
    char *moved = realloc(blk[i], 3000);
    ck_assert_ptr_nonnull(moved);
    blk[i] = moved;
    if ((uintptr_t)moved == was || hs_get_object_traceback(moved, f, 8) >= 0)
      continue;
    size_t after;
    hs_get_traced_memory(&after, NULL);
    ck_assert_int_eq(hs_get_object_traceback((void *)was, f, 8),
                     HS_ENOTFOUND);
    ck_assert_uint_eq(after, before - 1000);
    checked++;
  }
  ck_assert_int_gt(checked, 0);
  for (int i = 0; i < NBLK; i++) {
    free(blk[i]);
    free(fence[i]);
  }
  hs_stop();
  ck_assert_int_eq(hs_set_sample_rate(0, 0), 0);
}
END_TEST

START_TEST(same_seed_same_samples) {
  uint64_t n[2];
  for (int r = 0; r < 2; r++) {
    ck_assert_int_eq(hs_set_sample_rate(4096, 99), 0);
    ck_assert_int_eq(hs_start(4), 0);
    void *p[2000];
    for (int i = 0; i < 2000; i++)
      p[i] = malloc(16 + (size_t)(i % 50));
    hs_stats_t st;
    hs_get_stats(&st, sizeof st);
    n[r] = st.live_traces;
    for (int i = 0; i < 2000; i++)
      free(p[i]);
    hs_stop();
  }
  ck_assert_uint_eq(n[0], n[1]);
  ck_assert_uint_gt(n[0], 0);
  ck_assert_int_eq(hs_set_sample_rate(0, 0), 0);
}
END_TEST

int main(void) {
  Suite *su = suite_create("sampling");
  TCase *tc = tcase_create("sampling");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, estimates_within_five_percent);
  tcase_add_test(tc, large_blocks_always_seen);
  tcase_add_test(tc, realloc_to_unsampled_forgets_old);
  tcase_add_test(tc, same_seed_same_samples);
  suite_add_tcase(su, tc);
  SRunner *sr = srunner_create(su);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
