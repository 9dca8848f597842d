/* test_abi.c - the versioned structs as callers built against other headers
 * see them: an older header's smaller struct gets exactly the members it
 * knows, a newer header's bigger one learns what was filled; the version. */
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "heapsnap.h"

#define CANARY 0xA5

/* hs_stats_t as a header from before the later counters were appended
 * would have declared it: the same members, fewer of them. */
typedef struct stats_older {
  size_t struct_size;
  uint64_t traced_current;
  uint64_t traced_peak;
  uint64_t live_traces;
} stats_older_t;

typedef struct snapshot_info_older {
  size_t struct_size;
  uint64_t pid;
  uint64_t time_ns;
} snapshot_info_older_t;

typedef struct statistics_info_older {
  size_t struct_size;
  hs_key_t key;
  int cumulative;
  int compare;
  size_t count;
} statistics_info_older_t;

/* A struct of an older size followed by bytes a library that wrote past it
 * would change. */
#define WITH_CANARY(type)                                                      \
  struct {                                                                     \
    type s;                                                                    \
    unsigned char after[64];                                                   \
  }

static int untouched(const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != CANARY)
      return 0;
  return 1;
}

static void track_some(void) {
  ck_assert_int_eq(hs_start(4), 0);
  ck_assert_int_eq(hs_track(7, 0x1000, 100), 0);
  ck_assert_int_eq(hs_track(7, 0x2000, 23), 0);
}

START_TEST(version_matches_header) {
  ck_assert_int_eq(hs_version(), HS_VERSION);
  ck_assert_int_eq(HS_VERSION, HS_VERSION_MAJOR * 10000 +
                                   HS_VERSION_MINOR * 100 + HS_VERSION_PATCH);
  char want[32];
  snprintf(want, sizeof want, "%d.%d.%d", HS_VERSION_MAJOR, HS_VERSION_MINOR,
           HS_VERSION_PATCH);
  ck_assert_str_eq(HS_VERSION_STRING, want);
  ck_assert_int_eq(HS_VERSION_MAJOR, 1);
}
END_TEST

START_TEST(stats_older_size_gets_its_members) {
  track_some();
  hs_stats_t full;
  ck_assert_int_eq(hs_get_stats(&full, sizeof full), 0);
  ck_assert_uint_eq(full.struct_size, sizeof full);
  WITH_CANARY(stats_older_t) old;
  memset(&old, CANARY, sizeof old);
  /* No allocation between the two calls: the counters cannot move. */
  ck_assert_int_eq(hs_get_stats((hs_stats_t *)&old.s, sizeof old.s), 0);
  ck_assert_uint_eq(old.s.struct_size, sizeof old.s);
  ck_assert_uint_eq(old.s.traced_current, full.traced_current);
  ck_assert_uint_eq(old.s.traced_peak, full.traced_peak);
  ck_assert_uint_eq(old.s.live_traces, full.live_traces);
  ck_assert_uint_ge(old.s.traced_current, 123);
  ck_assert_msg(untouched(old.after, sizeof old.after),
                "hs_get_stats wrote past the caller's struct");
  hs_stop();
}
END_TEST

START_TEST(stats_newer_size_learns_what_was_filled) {
  track_some();
  /* A header newer than the library: members the library does not know. */
  WITH_CANARY(hs_stats_t) nw;
  memset(&nw, CANARY, sizeof nw);
  ck_assert_int_eq(hs_get_stats(&nw.s, sizeof nw), 0);
  ck_assert_uint_eq(nw.s.struct_size, sizeof(hs_stats_t));
  ck_assert_uint_ge(nw.s.traced_current, 123);
  ck_assert_msg(untouched(nw.after, sizeof nw.after),
                "hs_get_stats filled members it does not have");
  hs_stop();
}
END_TEST

START_TEST(sizes_too_small_are_refused) {
  hs_stats_t st;
  ck_assert_int_eq(hs_get_stats(NULL, sizeof st), HS_EINVAL);
  ck_assert_int_eq(hs_get_stats(&st, 0), HS_EINVAL);
  ck_assert_int_eq(hs_get_stats(&st, sizeof(size_t) - 1), HS_EINVAL);
  ck_assert_int_eq(hs_get_stats(&st, sizeof(size_t)), 0);
  ck_assert_uint_eq(st.struct_size, sizeof(size_t));
  hs_snapshot_info_t in;
  ck_assert_int_eq(hs_snapshot_get_info(NULL, &in, sizeof in), HS_EINVAL);
  hs_statistics_info_t si;
  ck_assert_int_eq(hs_statistics_get_info(NULL, &si, sizeof si), HS_EINVAL);
}
END_TEST

START_TEST(snapshot_info_older_size) {
  track_some();
  hs_snapshot_t *s;
  ck_assert_int_eq(hs_take_snapshot(&s), 0);
  hs_snapshot_info_t full;
  ck_assert_int_eq(hs_snapshot_get_info(s, &full, sizeof full), 0);
  ck_assert_uint_eq(full.struct_size, sizeof full);
  WITH_CANARY(snapshot_info_older_t) old;
  memset(&old, CANARY, sizeof old);
  ck_assert_int_eq(
      hs_snapshot_get_info(s, (hs_snapshot_info_t *)&old.s, sizeof old.s), 0);
  ck_assert_uint_eq(old.s.struct_size, sizeof old.s);
  ck_assert_uint_eq(old.s.pid, (uint64_t)getpid());
  ck_assert_uint_eq(old.s.time_ns, full.time_ns);
  ck_assert(untouched(old.after, sizeof old.after));
  ck_assert_uint_ge(full.size, 123);
  ck_assert(full.program && full.program[0] == '/');
  hs_snapshot_free(s);
  hs_stop();
}
END_TEST

START_TEST(statistics_info_older_size_and_getters) {
  track_some();
  hs_snapshot_t *s;
  ck_assert_int_eq(hs_take_snapshot(&s), 0);
  hs_statistics_t *st, *cmp;
  ck_assert_int_eq(hs_snapshot_statistics(s, HS_KEY_FILENAME, 0, &st), 0);
  ck_assert_int_eq(hs_snapshot_compare(s, s, HS_KEY_FILENAME, 0, &cmp), 0);
  WITH_CANARY(statistics_info_older_t) old;
  memset(&old, CANARY, sizeof old);
  ck_assert_int_eq(
      hs_statistics_get_info(st, (hs_statistics_info_t *)&old.s, sizeof old.s),
      0);
  ck_assert_uint_eq(old.s.struct_size, sizeof old.s);
  ck_assert_int_eq(old.s.key, HS_KEY_FILENAME);
  ck_assert_int_eq(old.s.compare, 0);
  ck_assert_uint_eq(old.s.count, hs_statistics_count(st));
  ck_assert(untouched(old.after, sizeof old.after));

  size_t n = hs_statistics_count(st);
  ck_assert_uint_ge(n, 1);
  ck_assert_ptr_nonnull(hs_statistics_get(st, n - 1));
  ck_assert_ptr_null(hs_statistics_get(st, n));
  ck_assert_ptr_null(hs_statistics_get_diff(st, 0));
  ck_assert_ptr_null(hs_statistics_get(cmp, 0));
  ck_assert_ptr_nonnull(hs_statistics_get_diff(cmp, 0));
  ck_assert_uint_eq(hs_statistics_count(NULL), 0);
  hs_statistics_info_t ci;
  ck_assert_int_eq(hs_statistics_get_info(cmp, &ci, sizeof ci), 0);
  ck_assert_int_eq(ci.compare, 1);
  ck_assert_int_eq(ci.total_size_diff, 0);
  hs_statistics_free(cmp);
  hs_statistics_free(st);
  hs_snapshot_free(s);
  hs_stop();
}
END_TEST

int main(void) {
  Suite *s = suite_create("abi");
  TCase *tc = tcase_create("versioned");
  tcase_add_test(tc, version_matches_header);
  tcase_add_test(tc, stats_older_size_gets_its_members);
  tcase_add_test(tc, stats_newer_size_learns_what_was_filled);
  tcase_add_test(tc, sizes_too_small_are_refused);
  tcase_add_test(tc, snapshot_info_older_size);
  tcase_add_test(tc, statistics_info_older_size_and_getters);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
