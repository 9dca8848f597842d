/* test_snapshot.c - snapshots without the interposer: traces are made with
 * hs_track() from functions at known lines, so every key, compare, filter
 * and format can be checked exactly (and under ASan/UBSan). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heapsnap.h"
#include "snapshot/snapshot.h"

/* The totals of a statistics list, by value for use in assertions. */
static hs_statistics_info_t stats_info(const hs_statistics_t *st) {
  hs_statistics_info_t in;
  hs_statistics_get_info(st, &in, sizeof in);
  return in;
}

#ifndef GOLDEN_SIZES
#error "GOLDEN_SIZES must name tests/snapshot/golden_sizes.txt"
#endif

static uintptr_t next_ptr = 0x100000;
static uintptr_t fresh(void) { return next_ptr += 16; }

/* Each call to hs_track sits on the line recorded next to it. */
static unsigned line_a, line_b, line_c, line_rec, line_rec_call, line_wrap,
    line_wrap_caller, line_call_a;

__attribute__((noinline)) void site_a(size_t n, int count) {
  for (int i = 0; i < count; i++) {
    line_a = __LINE__; hs_track(0, fresh(), n);
  }
}

__attribute__((noinline)) void site_b(size_t n, int count) {
  for (int i = 0; i < count; i++) {
    line_b = __LINE__; hs_track(0, fresh(), n);
  }
}

/* site_c keeps its pointers so a test can untrack them. */
static uintptr_t c_ptrs[64];
__attribute__((noinline)) void site_c(size_t n, int count) {
  for (int i = 0; i < count; i++) {
    c_ptrs[i] = fresh();
    line_c = __LINE__; hs_track(0, c_ptrs[i], n);
  }
}

__attribute__((noinline)) void rec(int depth, size_t n) {
  if (depth == 0) {
    line_rec = __LINE__; hs_track(0, fresh(), n);
  } else {
    line_rec_call = __LINE__; rec(depth - 1, n);
  }
  __asm__ volatile("" ::: "memory"); /* keep the recursion a real call */
}

__attribute__((noinline)) void my_xmalloc(unsigned domain, size_t n) {
  line_wrap = __LINE__; hs_track(domain, fresh(), n);
  __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void uses_wrapper(unsigned domain, size_t n,
                                            int count) {
  for (int i = 0; i < count; i++) {
    line_wrap_caller = __LINE__; my_xmalloc(domain, n);
  }
}

__attribute__((noinline)) void calls_a(void) {
  line_call_a = __LINE__; site_a(100, 100);
  __asm__ volatile("" ::: "memory");
}

static hs_snapshot_t *snap(void) {
  hs_snapshot_t *s = NULL;
  ck_assert_int_eq(hs_take_snapshot(&s), 0);
  ck_assert_ptr_nonnull(s);
  return s;
}

static int ends_with(const char *s, const char *suffix) {
  size_t a = s ? strlen(s) : 0, b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

static const char *base(const char *p) {
  const char *s = strrchr(p, '/');
  return s ? s + 1 : p;
}

static void setup(void) {
  ck_assert_int_eq(hs_start(16), 0);
}
static void teardown(void) { hs_stop(); }

/* Standard population: a: 100 x 100 B (through calls_a), b: 50 x 10 B. */
static hs_snapshot_t *population(void) {
  calls_a();
  site_b(10, 50);
  return snap();
}

START_TEST(not_tracing) {
  hs_stop();
  hs_snapshot_t *s = (hs_snapshot_t *)1;
  ck_assert_int_eq(hs_take_snapshot(&s), HS_ENOTTRACING);
  ck_assert_ptr_null(s);
}
END_TEST

START_TEST(info_fields) {
  hs_snapshot_t *s = population();
  hs_snapshot_info_t in;
  hs_snapshot_get_info(s, &in, sizeof in);
  ck_assert_uint_eq(in.size, 100 * 100 + 50 * 10);
  ck_assert_uint_eq(in.count, 150);
  ck_assert_uint_eq(in.traced_current, 100 * 100 + 50 * 10);
  ck_assert_int_eq(in.traceback_limit, 16);
  ck_assert_uint_eq(in.pid, (uint64_t)getpid());
  ck_assert_uint_ge(in.modules, 2);
  ck_assert(ends_with(in.program, "test_snapshot"));
  ck_assert_uint_gt(in.time_ns, 1500000000ull * 1000000000ull);
  hs_snapshot_free(s);
}
END_TEST

START_TEST(by_lineno) {
  hs_snapshot_t *s = population();
  hs_statistics_t *st;
  ck_assert_int_eq(hs_snapshot_statistics(s, HS_KEY_LINENO, 0, &st), 0);
  ck_assert_uint_eq(hs_statistics_count(st), 2);
  ck_assert_uint_eq(stats_info(st).total_size, 10500);
  ck_assert_uint_eq(stats_info(st).total_count, 150);
  ck_assert(ends_with(hs_statistics_get(st, 0)->frames[0].filename,
                      "test_snapshot.c"));
  ck_assert_uint_eq(hs_statistics_get(st, 0)->frames[0].lineno, line_a);
  ck_assert_str_eq(hs_statistics_get(st, 0)->frames[0].function, "site_a");
  ck_assert_uint_eq(hs_statistics_get(st, 0)->size, 10000);
  ck_assert_uint_eq(hs_statistics_get(st, 0)->count, 100);
  ck_assert_uint_eq(hs_statistics_get(st, 1)->frames[0].lineno, line_b);
  char buf[512], want[512];
  hs_statistic_format(hs_statistics_get(st, 0), HS_KEY_LINENO, buf, sizeof buf);
  snprintf(want, sizeof want, "%s:%u: size=10000 B, count=100, average=100 B",
           hs_statistics_get(st, 0)->frames[0].filename, line_a);
  ck_assert_str_eq(buf, want);
  hs_statistics_free(st);
  hs_snapshot_free(s);
}
END_TEST

START_TEST(by_filename_and_function) {
  hs_snapshot_t *s = population();
  hs_statistics_t *st;
  ck_assert_int_eq(hs_snapshot_statistics(s, HS_KEY_FILENAME, 0, &st), 0);
  ck_assert_uint_eq(hs_statistics_count(st), 1);
  ck_assert_uint_eq(hs_statistics_get(st, 0)->size, 10500);
  ck_assert_uint_eq(hs_statistics_get(st, 0)->count, 150);
  char buf[512], want[512];
  hs_statistic_format(hs_statistics_get(st, 0), HS_KEY_FILENAME, buf,
                      sizeof buf);
  snprintf(want, sizeof want, "%s: size=10.3 KiB, count=150, average=70 B",
           hs_statistics_get(st, 0)->frames[0].filename);
  ck_assert_str_eq(buf, want);
  hs_statistics_free(st);

  ck_assert_int_eq(hs_snapshot_statistics(s, HS_KEY_FUNCTION, 0, &st), 0);
  ck_assert_uint_eq(hs_statistics_count(st), 2);
  ck_assert_str_eq(hs_statistics_get(st, 0)->frames[0].function, "site_a");
  ck_assert_str_eq(hs_statistics_get(st, 1)->frames[0].function, "site_b");
  hs_statistic_format(hs_statistics_get(st, 1), HS_KEY_FUNCTION, buf,
                      sizeof buf);
  ck_assert(strncmp(buf, "site_b (", 8) == 0);
  ck_assert(strstr(buf, "test_snapshot.c): size=500 B, count=50, average=10 B"));
  hs_statistics_free(st);
  hs_snapshot_free(s);
}
END_TEST

START_TEST(by_traceback) {
  hs_snapshot_t *s = population();
  hs_statistics_t *st;
  ck_assert_int_eq(hs_snapshot_statistics(s, HS_KEY_TRACEBACK, 0, &st), 0);
  ck_assert_uint_eq(hs_statistics_count(st), 2);
  const hs_statistic_t *a = hs_statistics_get(st, 0);
  ck_assert_uint_ge(a->nframe, 3);
  ck_assert_uint_eq(a->site, 0);
  ck_assert_str_eq(a->frames[0].function, "site_a");
  ck_assert_str_eq(a->frames[1].function, "calls_a");
  ck_assert_uint_eq(a->frames[1].lineno, line_call_a);
  /* The whole stack counts: all 100 calls share one traceback. */
  ck_assert_uint_eq(a->count, 100);
  hs_statistics_free(st);
  ck_assert_int_eq(hs_snapshot_statistics(s, HS_KEY_TRACEBACK, 1, &st),
                   HS_EINVAL);
  ck_assert_ptr_null(st);
  hs_statistics_free(NULL);
  hs_snapshot_free(s);
}
END_TEST

/* Every traceback of s, frame by frame, as one string (caller frees). */
static char *tracebacks_text(hs_snapshot_t *s) {
  hs_statistics_t *st;
  ck_assert_int_eq(hs_snapshot_statistics(s, HS_KEY_TRACEBACK, 0, &st), 0);
  size_t cap = 1 << 16, len = 0;
  char *out = malloc(cap);
  ck_assert_ptr_nonnull(out);
  out[0] = '\0';
  for (size_t i = 0; i < hs_statistics_count(st); i++)
    for (size_t k = 0; k < hs_statistics_get(st, i)->nframe; k++) {
      const hs_frame_t *f = &hs_statistics_get(st, i)->frames[k];
      int w =
          snprintf(out + len, cap - len, "%zu %zu %s:%u %s %s+%llx\n",
                   (size_t)hs_statistics_get(st, i)->size, k,
                   f->filename ? f->filename : "?", f->lineno,
                   f->function ? f->function : "?", f->module ? f->module : "?",
                   (unsigned long long)f->offset);
      ck_assert(w > 0 && (size_t)w < cap - len);
      len += (size_t)w;
    }
  hs_statistics_free(st);
  return out;
}

/* The symbolizer that snapshots keep, filled ahead by the background
 * warm-up, gives what a fresh one gives; a stopped warm-up does nothing. */
START_TEST(kept_and_warmed_symbolizer) {
  calls_a();
  site_b(10, 50);
  rec(5, 7);
  atomic_int stop = 1;
  ck_assert_int_eq(hs__symbols_warm(&stop), 0);
  atomic_store(&stop, 0);
  hs__symbols_drop();
  /* The population's stacks run through this program and libc at least. */
  ck_assert_int_ge(hs__symbols_warm(&stop), 2);
  hs_snapshot_t *warmed = snap();
  char *a = tracebacks_text(warmed);
  hs__symbols_drop();
  hs_snapshot_t *fresh_s = snap();
  char *b = tracebacks_text(fresh_s);
  ck_assert_str_eq(a, b);
  ck_assert_ptr_nonnull(strstr(a, "site_a"));
  ck_assert_ptr_nonnull(strstr(a, "calls_a"));
  /* Kept from that snapshot to the next: the same again. */
  hs_snapshot_t *kept = snap();
  char *c = tracebacks_text(kept);
  ck_assert_str_eq(c, b);
  free(a);
  free(b);
  free(c);
  hs_snapshot_free(warmed);
  hs_snapshot_free(fresh_s);
  hs_snapshot_free(kept);
}
END_TEST

START_TEST(cumulative) {
  rec(2, 8);
  rec(2, 8);
  calls_a();
  hs_snapshot_t *s = snap();
  hs_statistics_t *st;
  ck_assert_int_eq(hs_snapshot_statistics(s, HS_KEY_LINENO, 1, &st), 0);
  int seen_rec = 0, seen_call = 0, seen_calls_a = 0;
  for (size_t i = 0; i < hs_statistics_count(st); i++) {
    const hs_frame_t *f = &hs_statistics_get(st, i)->frames[0];
    if (!f->filename || !ends_with(f->filename, "test_snapshot.c"))
      continue;
    if (f->lineno == line_rec) {
      seen_rec = 1;
      ck_assert_uint_eq(hs_statistics_get(st, i)->count, 2);
      ck_assert_uint_eq(hs_statistics_get(st, i)->size, 16);
    } else if (f->lineno == line_rec_call) {
      /* Two recursive frames per trace: counted twice, as tracemalloc. */
      seen_call = 1;
      ck_assert_uint_eq(hs_statistics_get(st, i)->count, 4);
      ck_assert_uint_eq(hs_statistics_get(st, i)->size, 32);
    } else if (f->lineno == line_call_a) {
      seen_calls_a = 1;
      ck_assert_uint_eq(hs_statistics_get(st, i)->count, 100);
      ck_assert_uint_eq(hs_statistics_get(st, i)->size, 10000);
    }
  }
  ck_assert(seen_rec && seen_call && seen_calls_a);
  hs_statistics_free(st);

  /* Cumulative by file: every frame in this file credits it. */
  ck_assert_int_eq(hs_snapshot_statistics(s, HS_KEY_FILENAME, 1, &st), 0);
  int found = 0;
  for (size_t i = 0; i < hs_statistics_count(st); i++)
    if (hs_statistics_get(st, i)->frames[0].filename &&
        ends_with(hs_statistics_get(st, i)->frames[0].filename,
                  "test_snapshot.c")) {
      found = 1;
      ck_assert_uint_ge(hs_statistics_get(st, i)->count, 2 * 4 + 100 * 2);
    }
  ck_assert(found);
  hs_statistics_free(st);
  hs_snapshot_free(s);
}
END_TEST

START_TEST(sorted_as_tracemalloc) {
  site_a(10, 10);  /* 100 B, 10 blocks */
  site_b(20, 5);   /* 100 B, 5 blocks: same size, fewer blocks */
  site_c(300, 1);  /* 300 B: first */
  hs_snapshot_t *s = snap();
  hs_statistics_t *st;
  ck_assert_int_eq(hs_snapshot_statistics(s, HS_KEY_LINENO, 0, &st), 0);
  ck_assert_uint_eq(hs_statistics_count(st), 3);
  ck_assert_uint_eq(hs_statistics_get(st, 0)->frames[0].lineno, line_c);
  ck_assert_uint_eq(hs_statistics_get(st, 1)->frames[0].lineno, line_a);
  ck_assert_uint_eq(hs_statistics_get(st, 2)->frames[0].lineno, line_b);
  hs_statistics_free(st);
  hs_snapshot_free(s);
}
END_TEST

START_TEST(compare_new_vanished_unchanged) {
  site_a(100, 100);
  site_c(100, 10);
  site_b(7, 3);
  hs_snapshot_t *old = snap();
  site_a(100, 50);                 /* grew by 5000 B */
  for (int i = 0; i < 10; i++)     /* site_c vanishes */
    ck_assert_int_eq(hs_untrack(0, c_ptrs[i]), 0);
  uses_wrapper(0, 64, 4);          /* new key */
  hs_snapshot_t *now = snap();
  hs_statistics_t *st;
  ck_assert_int_eq(hs_snapshot_compare(now, old, HS_KEY_LINENO, 0, &st), 0);
  ck_assert_uint_eq(hs_statistics_count(st), 4);
  ck_assert_int_eq(stats_info(st).total_size_diff, 5000 - 1000 + 256);
  ck_assert_int_eq(stats_info(st).total_count_diff, 50 - 10 + 4);
  const hs_statistic_diff_t *d = hs_statistics_get_diff(st, 0);
  ck_assert_uint_eq(d[0].frames[0].lineno, line_a);
  ck_assert_int_eq(d[0].size_diff, 5000);
  ck_assert_uint_eq(d[0].size, 15000);
  ck_assert_int_eq(d[0].count_diff, 50);
  ck_assert_uint_eq(d[1].frames[0].lineno, line_c);
  ck_assert_uint_eq(d[1].size, 0);
  ck_assert_int_eq(d[1].size_diff, -1000);
  ck_assert_int_eq(d[1].count_diff, -10);
  ck_assert_uint_eq(d[2].frames[0].lineno, line_wrap);
  ck_assert_int_eq(d[2].size_diff, 256);
  ck_assert_uint_eq(d[3].frames[0].lineno, line_b);
  ck_assert_int_eq(d[3].size_diff, 0);
  char buf[512], want[512];
  hs_statistic_diff_format(&d[1], HS_KEY_LINENO, buf, sizeof buf);
  snprintf(want, sizeof want, "%s:%u: size=0 B (-1000 B), count=0 (-10)",
           d[1].frames[0].filename, line_c);
  ck_assert_str_eq(buf, want);
  hs_statistic_diff_format(&d[0], HS_KEY_LINENO, buf, sizeof buf);
  snprintf(want, sizeof want,
           "%s:%u: size=14.6 KiB (+5000 B), count=150 (+50), average=100 B",
           d[0].frames[0].filename, line_a);
  ck_assert_str_eq(buf, want);
  hs_statistic_diff_format(&d[3], HS_KEY_LINENO, buf, sizeof buf);
  snprintf(want, sizeof want, "%s:%u: size=21 B (+0 B), count=3 (+0), average=7 B",
           d[3].frames[0].filename, line_b);
  ck_assert_str_eq(buf, want);
  hs_statistics_free(st);
  ck_assert_int_eq(hs_snapshot_compare(now, NULL, HS_KEY_LINENO, 0, &st),
                   HS_EINVAL);
  hs_snapshot_free(old);
  hs_snapshot_free(now);
}
END_TEST

START_TEST(compare_cumulative_and_traceback) {
  hs_snapshot_t *old = NULL, *now = NULL;
  for (int i = 0; i < 2; i++) { /* one call line: one traceback */
    calls_a();
    if (i == 0)
      old = snap();
  }
  now = snap();
  hs_statistics_t *st;
  ck_assert_int_eq(hs_snapshot_compare(now, old, HS_KEY_LINENO, 1, &st), 0);
  int found = 0;
  for (size_t i = 0; i < hs_statistics_count(st); i++)
    if (hs_statistics_get_diff(st, i)->frames[0].lineno == line_call_a &&
        ends_with(hs_statistics_get_diff(st, i)->frames[0].filename,
                  "test_snapshot.c")) {
      found = 1;
      ck_assert_int_eq(hs_statistics_get_diff(st, i)->size_diff, 10000);
    }
  ck_assert(found);
  hs_statistics_free(st);
  ck_assert_int_eq(hs_snapshot_compare(now, old, HS_KEY_TRACEBACK, 0, &st), 0);
  ck_assert_uint_eq(hs_statistics_count(st), 1);
  ck_assert_int_eq(hs_statistics_get_diff(st, 0)->count_diff, 100);
  hs_statistics_free(st);
  hs_snapshot_free(old);
  hs_snapshot_free(now);
}
END_TEST

static uint64_t total_size(hs_snapshot_t *s) {
  hs_snapshot_info_t in;
  hs_snapshot_get_info(s, &in, sizeof in);
  return in.size;
}

static hs_snapshot_t *filtered(hs_snapshot_t *s, const hs_filter_t *f,
                               size_t n) {
  hs_snapshot_t *out = NULL;
  ck_assert_int_eq(hs_snapshot_filter(s, f, n, &out), 0);
  return out;
}

START_TEST(filters) {
  site_a(100, 10);         /* 1000 B, domain 0 */
  site_b(10, 10);          /* 100 B, domain 0 */
  uses_wrapper(5, 1, 7);   /* 7 B, domain 5 */
  hs_snapshot_t *s = snap(), *f;
  const char *pat = "*test_snapshot.c";
  hs_filter_t incl_a = {1, pat, line_a, 0, -1};
  f = filtered(s, &incl_a, 1);
  ck_assert_uint_eq(total_size(f), 1000);
  hs_snapshot_free(f);
  hs_filter_t excl_a = {0, pat, line_a, 0, -1};
  f = filtered(s, &excl_a, 1);
  ck_assert_uint_eq(total_size(f), 107);
  hs_snapshot_free(f);
  /* Every site is in this file; an exclusive file filter drops them all. */
  hs_filter_t excl_file = {0, pat, 0, 0, -1};
  f = filtered(s, &excl_file, 1);
  ck_assert_uint_eq(total_size(f), 0);
  hs_snapshot_free(f);
  /* all_frames: the wrapper's caller line appears only deeper in a stack. */
  hs_filter_t deep = {1, pat, line_wrap_caller, 1, -1};
  f = filtered(s, &deep, 1);
  ck_assert_uint_eq(total_size(f), 7);
  hs_snapshot_free(f);
  hs_filter_t deep_site_only = {1, pat, line_wrap_caller, 0, -1};
  f = filtered(s, &deep_site_only, 1);
  ck_assert_uint_eq(total_size(f), 0);
  hs_snapshot_free(f);
  /* Domain filters. */
  hs_filter_t dom5 = {1, NULL, 0, 0, 5};
  f = filtered(s, &dom5, 1);
  ck_assert_uint_eq(total_size(f), 7);
  hs_snapshot_free(f);
  hs_filter_t not5 = {0, NULL, 0, 0, 5};
  f = filtered(s, &not5, 1);
  ck_assert_uint_eq(total_size(f), 1100);
  hs_snapshot_free(f);
  /* Filter with a domain: inclusive needs both, exclusive drops only
   * matching traces of that domain. */
  hs_filter_t incl_file_d0 = {1, pat, 0, 0, 0};
  f = filtered(s, &incl_file_d0, 1);
  ck_assert_uint_eq(total_size(f), 1100);
  hs_snapshot_free(f);
  hs_filter_t excl_file_d5 = {0, pat, 0, 0, 5};
  f = filtered(s, &excl_file_d5, 1);
  ck_assert_uint_eq(total_size(f), 1100);
  hs_snapshot_free(f);
  /* Two inclusive filters: either may match; an exclusive one still wins. */
  hs_filter_t pair[3] = {{1, pat, line_a, 0, -1},
                         {1, pat, line_b, 0, -1},
                         {0, pat, line_b, 0, -1}};
  f = filtered(s, pair, 2);
  ck_assert_uint_eq(total_size(f), 1100);
  hs_snapshot_free(f);
  f = filtered(s, pair, 3);
  ck_assert_uint_eq(total_size(f), 1000);
  hs_snapshot_free(f);
  /* No filters: a copy. A filtered snapshot's statistics still work. */
  f = filtered(s, NULL, 0);
  ck_assert_uint_eq(total_size(f), 1107);
  hs_statistics_t *st;
  ck_assert_int_eq(hs_snapshot_statistics(f, HS_KEY_LINENO, 0, &st), 0);
  ck_assert_uint_eq(hs_statistics_count(st), 3);
  hs_statistics_free(st);
  hs_snapshot_free(f);
  hs_snapshot_free(s);
}
END_TEST

START_TEST(wrappers_and_raw) {
  uses_wrapper(0, 32, 3);
  hs_snapshot_t *s = snap();
  hs_statistics_t *st;
  /* my_xmalloc has a source line and is no wrapper yet: it is the site. */
  ck_assert_int_eq(hs_snapshot_statistics(s, HS_KEY_LINENO, 0, &st), 0);
  ck_assert_uint_eq(hs_statistics_get(st, 0)->frames[0].lineno, line_wrap);
  hs_statistics_free(st);
  ck_assert_int_eq(hs_snapshot_add_wrapper(s, HS_WRAP_FUNCTION, "my_x*"), 0);
  ck_assert_int_eq(hs_snapshot_statistics(s, HS_KEY_LINENO, 0, &st), 0);
  ck_assert_uint_eq(hs_statistics_get(st, 0)->frames[0].lineno,
                    line_wrap_caller);
  ck_assert_str_eq(hs_statistics_get(st, 0)->frames[0].function,
                   "uses_wrapper");
  hs_statistics_free(st);
  /* The traceback key keeps every frame and says which one is the site. */
  ck_assert_int_eq(hs_snapshot_statistics(s, HS_KEY_TRACEBACK, 0, &st), 0);
  ck_assert_uint_eq(hs_statistics_get(st, 0)->site, 1);
  hs_statistics_free(st);
  /* Raw mode ignores wrappers: frame 0, as tracemalloc. */
  hs_snapshot_set_raw(s, 1);
  ck_assert_int_eq(hs_snapshot_statistics(s, HS_KEY_LINENO, 0, &st), 0);
  ck_assert_uint_eq(hs_statistics_get(st, 0)->frames[0].lineno, line_wrap);
  hs_statistics_free(st);
  ck_assert_int_eq(hs_snapshot_add_wrapper(s, 99, "x"), HS_EINVAL);
  hs_snapshot_free(s);

  /* A process-wide wrapper applies to snapshots taken afterwards. */
  ck_assert_int_eq(hs_add_wrapper(HS_WRAP_FILE, "*/no-such-dir/*"), 0);
  ck_assert_int_eq(hs_add_wrapper(HS_WRAP_FUNCTION, "my_xmalloc"), 0);
  s = snap();
  ck_assert_int_eq(hs_snapshot_statistics(s, HS_KEY_LINENO, 0, &st), 0);
  ck_assert_uint_eq(hs_statistics_get(st, 0)->frames[0].lineno,
                    line_wrap_caller);
  hs_statistics_free(st);
  hs_snapshot_free(s);
}
END_TEST

START_TEST(format_sizes_golden) {
  FILE *f = fopen(GOLDEN_SIZES, "r");
  ck_assert_ptr_nonnull(f);
  char line[256];
  int checked = 0;
  while (fgets(line, sizeof line, f)) {
    if (line[0] == '#')
      continue;
    double v;
    int sign;
    char want[64];
    ck_assert_int_eq(sscanf(line, "%lf\t%d\t%63[^\n]", &v, &sign, want), 3);
    char got[64];
    hs_format_size(v, sign, got, sizeof got);
    ck_assert_msg(strcmp(got, want) == 0, "%s (sign %d): got '%s', want '%s'",
                  line, sign, got, want);
    checked++;
  }
  fclose(f);
  ck_assert_int_ge(checked, 80);
}
END_TEST

START_TEST(format_traceback) {
  calls_a();
  hs_snapshot_t *s = snap();
  hs_statistics_t *st;
  ck_assert_int_eq(hs_snapshot_statistics(s, HS_KEY_TRACEBACK, 0, &st), 0);
  const hs_statistic_t *a = hs_statistics_get(st, 0);
  char buf[8192], want[512];
  /* limit 2, oldest first (tracemalloc's default order). */
  hs_traceback_format(a->frames, a->nframe, 2, 0, buf, sizeof buf);
  snprintf(want, sizeof want,
           "  File \"%s\", line %u\n    line_call_a = __LINE__; "
           "site_a(100, 100);\n  File \"%s\", line %u\n    line_a = "
           "__LINE__; hs_track(0, fresh(), n);\n",
           a->frames[1].filename, line_call_a, a->frames[0].filename, line_a);
  ck_assert_str_eq(buf, want);
  /* most_recent_first reverses the kept frames. */
  hs_traceback_format(a->frames, a->nframe, 2, 1, buf, sizeof buf);
  ck_assert(strstr(buf, "line_a = __LINE__") < strstr(buf, "line_call_a ="));
  /* A negative limit keeps the oldest frames: not site_a's line. */
  int n = hs_traceback_format(a->frames, a->nframe, -1, 0, buf, sizeof buf);
  ck_assert_int_gt(n, 0);
  ck_assert_ptr_null(strstr(buf, "hs_track(0, fresh(), n)"));
  /* Truncation reports the full length like snprintf. */
  char small[8];
  int full = hs_traceback_format(a->frames, a->nframe, 2, 0, small, sizeof small);
  ck_assert_int_eq(full, (int)strlen(want));
  ck_assert_uint_eq(strlen(small), 7);
  hs_statistics_free(st);
  hs_snapshot_free(s);
}
END_TEST

START_TEST(dump_load_round_trip) {
  calls_a();
  uses_wrapper(3, 5, 2);
  hs_snapshot_t *s = snap();
  char path[] = "/tmp/hs-test-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(path));
  char file[64];
  snprintf(file, sizeof file, "%s/a.hsnap", path);
  ck_assert_int_eq(hs_snapshot_dump(s, file), 0);
  hs_snapshot_t *l = NULL;
  char err[256];
  ck_assert_int_eq(hs_snapshot_load(file, &l, err, sizeof err), 0);
  hs_snapshot_info_t a, b;
  hs_snapshot_get_info(s, &a, sizeof a);
  hs_snapshot_get_info(l, &b, sizeof b);
  ck_assert_uint_eq(a.pid, b.pid);
  ck_assert_uint_eq(a.time_ns, b.time_ns);
  ck_assert_int_eq(a.traceback_limit, b.traceback_limit);
  ck_assert_uint_eq(a.traced_current, b.traced_current);
  ck_assert_uint_eq(a.traced_peak, b.traced_peak);
  ck_assert_uint_eq(a.size, b.size);
  ck_assert_uint_eq(a.count, b.count);
  ck_assert_uint_eq(a.stacks, b.stacks);
  ck_assert_uint_eq(a.modules, b.modules);
  ck_assert_str_eq(a.program, b.program);
  /* The same statistics, frame by frame, from the file. */
  hs_statistics_t *x, *y;
  ck_assert_int_eq(hs_snapshot_statistics(s, HS_KEY_TRACEBACK, 0, &x), 0);
  ck_assert_int_eq(hs_snapshot_statistics(l, HS_KEY_TRACEBACK, 0, &y), 0);
  ck_assert_uint_eq(hs_statistics_count(x), hs_statistics_count(y));
  for (size_t i = 0; i < hs_statistics_count(x); i++) {
    ck_assert_uint_eq(hs_statistics_get(x, i)->size,
                      hs_statistics_get(y, i)->size);
    ck_assert_uint_eq(hs_statistics_get(x, i)->nframe,
                      hs_statistics_get(y, i)->nframe);
    for (size_t k = 0; k < hs_statistics_get(x, i)->nframe; k++) {
      const hs_frame_t *p = &hs_statistics_get(x, i)->frames[k],
                       *q = &hs_statistics_get(y, i)->frames[k];
      ck_assert_uint_eq(p->lineno, q->lineno);
      ck_assert_uint_eq(p->offset, q->offset);
      ck_assert(p->filename == q->filename || !strcmp(p->filename, q->filename));
      ck_assert(p->function == q->function || !strcmp(p->function, q->function));
      ck_assert(p->module == q->module || !strcmp(p->module, q->module));
    }
  }
  hs_statistics_free(x);
  hs_statistics_free(y);
  /* Compare across a file and a live snapshot: nothing changed. */
  ck_assert_int_eq(hs_snapshot_compare(s, l, HS_KEY_LINENO, 0, &x), 0);
  for (size_t i = 0; i < hs_statistics_count(x); i++)
    ck_assert_int_eq(hs_statistics_get_diff(x, i)->size_diff, 0);
  hs_statistics_free(x);
  hs_snapshot_free(l);

  /* Bad files: one line naming the file, a distinct code, no snapshot. */
  char bad[64];
  snprintf(bad, sizeof bad, "%s/bad.hsnap", path);
  FILE *f = fopen(bad, "w");
  fputs("not a snapshot at all, just text\n", f);
  fclose(f);
  l = (hs_snapshot_t *)1;
  ck_assert_int_eq(hs_snapshot_load(bad, &l, err, sizeof err), HS_EFORMAT);
  ck_assert_ptr_null(l);
  ck_assert(strstr(err, bad) == err);
  ck_assert_ptr_null(strchr(err, '\n'));
  ck_assert_int_eq(hs_snapshot_load("/nonexistent/x.hsnap", &l, err, sizeof err),
                   HS_EIO);
  ck_assert(strstr(err, "/nonexistent/x.hsnap"));
  /* Truncated copies of the real file. */
  FILE *in = fopen(file, "rb");
  static char data[1 << 20];
  size_t len = fread(data, 1, sizeof data, in);
  fclose(in);
  ck_assert_uint_gt(len, 64);
  size_t cuts[] = {0, 7, 8, 16, 40, len / 2, len - 1};
  for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
    f = fopen(bad, "wb");
    fwrite(data, 1, cuts[i], f);
    fclose(f);
    int rc = hs_snapshot_load(bad, &l, err, sizeof err);
    ck_assert_msg(rc == HS_ETRUNC || rc == HS_EFORMAT || rc == HS_ECORRUPT,
                  "cut at %zu: rc %d", cuts[i], rc);
  }
  /* One flipped bit in the middle. */
  data[len / 2] ^= 0x10;
  f = fopen(bad, "wb");
  fwrite(data, 1, len, f);
  fclose(f);
  ck_assert_int_eq(hs_snapshot_load(bad, &l, err, sizeof err), HS_ECORRUPT);
  unlink(bad);
  unlink(file);
  rmdir(path);
  hs_snapshot_free(s);
}
END_TEST

START_TEST(dump_fails_cleanly) {
  site_a(1, 1);
  hs_snapshot_t *s = snap();
  ck_assert_int_eq(hs_snapshot_dump(s, "/nonexistent-dir/x.hsnap"), HS_EIO);
  ck_assert_int_eq(access("/nonexistent-dir/x.hsnap", F_OK), -1);
  hs_snapshot_free(s);
}
END_TEST

int main(void) {
  Suite *su = suite_create("snapshot");
  TCase *tc = tcase_create("snapshot");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, not_tracing);
  tcase_add_test(tc, info_fields);
  tcase_add_test(tc, by_lineno);
  tcase_add_test(tc, by_filename_and_function);
  tcase_add_test(tc, by_traceback);
  tcase_add_test(tc, kept_and_warmed_symbolizer);
  tcase_add_test(tc, cumulative);
  tcase_add_test(tc, sorted_as_tracemalloc);
  tcase_add_test(tc, compare_new_vanished_unchanged);
  tcase_add_test(tc, compare_cumulative_and_traceback);
  tcase_add_test(tc, filters);
  tcase_add_test(tc, wrappers_and_raw);
  tcase_add_test(tc, format_sizes_golden);
  tcase_add_test(tc, format_traceback);
  tcase_add_test(tc, dump_load_round_trip);
  tcase_add_test(tc, dump_fails_cleanly);
  suite_add_tcase(su, tc);
  SRunner *sr = srunner_create(su);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  (void)base;
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
