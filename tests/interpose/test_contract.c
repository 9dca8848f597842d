/* test_contract.c - the glibc contract of every interposed malloc-family
 * function, run in four modes: never started, tracing, after hs_stop, and
 * sampling at the largest rate (so every call takes sampling's fast path
 * and nothing is recorded). */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heapsnap.h"
#include "interpose_util.h"

enum { MODE_NEVER, MODE_TRACING, MODE_STOPPED, MODE_SAMPLED, MODE_COUNT };
static const char *const mode_name[] = {"never started", "tracing",
                                        "after hs_stop", "sampled, none taken"};
static int mode;

/* Each loop iteration runs in its own forked child (fork status forced in
 * main), so "never started" really is a process that never started. */
static void enter_mode(int m) {
  mode = m;
  ck_assert_int_eq(hs_is_tracing(), 0);
  /* One sample per TiB on average: in practice none is taken. */
  if (m == MODE_SAMPLED)
    ck_assert_int_eq(hs_set_sample_rate((size_t)1 << 40, 1), 0);
  if (m != MODE_NEVER)
    ck_assert_int_eq(hs_start(16), 0);
  if (m == MODE_STOPPED)
    hs_stop();
  ck_assert_int_eq(hs_is_tracing(), m == MODE_TRACING || m == MODE_SAMPLED);
}

/* What hs_get_object_traceback says of a block that was not recorded. */
static int untraced(void) {
  return mode == MODE_SAMPLED ? HS_ENOTFOUND : HS_ENOTTRACING;
}

/* What one allocation did to the totals, gathered with no assertion in
 * between: Check's passing assertions allocate and free (balanced). */
typedef struct {
  size_t before, during, after;
  int frames;
} probe_t;

/* Asserts the trace of a successful allocation of `size` bytes. */
static void expect_traced(const probe_t *pr, size_t size, const char *what) {
  if (mode == MODE_TRACING) {
    ck_assert_msg(pr->during - pr->before == size,
                  "%s (%s): current rose by %zu, expected %zu", what,
                  mode_name[mode], pr->during - pr->before, size);
    ck_assert_msg(pr->frames >= 1, "%s: traceback returned %d", what,
                  pr->frames);
    ck_assert_msg(pr->after == pr->before, "%s: current %zu after free, was %zu",
                  what, pr->after, pr->before);
  } else {
    ck_assert_msg(pr->before == 0 && pr->during == 0 && pr->after == 0,
                  "%s (%s): totals not 0 with nothing recorded", what,
                  mode_name[mode]);
    ck_assert_msg(pr->frames == untraced(),
                  "%s (%s): traceback returned %d, expected %d", what,
                  mode_name[mode], pr->frames, untraced());
  }
}

START_TEST(malloc_zero) {
  enter_mode(_i);
  probe_t pr;
  pr.before = hs_t_current();
  void *p = malloc(hs_t_opaque(0));
  hs_t_escape(p);
  void *q = malloc(hs_t_opaque(0));
  hs_t_escape(q);
  pr.during = hs_t_current();
  pr.frames = hs_t_frames(p);
  int qframes = hs_t_frames(q);
  ck_assert_ptr_nonnull(p);
  ck_assert_ptr_nonnull(q);
  ck_assert_ptr_ne(p, q);
  free(p);
  free(q);
  pr.after = hs_t_current();
  expect_traced(&pr, 0, "malloc(0)");
  if (mode == MODE_TRACING)
    ck_assert_int_ge(qframes, 1);
  else
    ck_assert_int_eq(qframes, untraced());
}
END_TEST

START_TEST(malloc_huge_fails) {
  enter_mode(_i);
  size_t before = hs_t_current();
  errno = 0;
  void *p = malloc(hs_t_opaque(SIZE_MAX));
  hs_t_escape(p);
  int e = errno;
  size_t after = hs_t_current();
  ck_assert_ptr_null(p);
  ck_assert_int_eq(e, ENOMEM);
  ck_assert_uint_eq(after, before);
  hs_stats_t st;
  hs_get_stats(&st, sizeof st);
  /* A failed allocation is not a dropped trace: nothing to trace. */
  ck_assert_uint_eq(st.dropped_traces, 0);
}
END_TEST

START_TEST(calloc_overflow_fails) {
  enter_mode(_i);
  size_t before = hs_t_current();
  errno = 0;
  void *p = calloc(hs_t_opaque(SIZE_MAX / 2 + 1), hs_t_opaque(4));
  hs_t_escape(p);
  int e = errno;
  size_t after = hs_t_current();
  ck_assert_ptr_null(p);
  ck_assert_int_eq(e, ENOMEM);
  ck_assert_uint_eq(after, before);
}
END_TEST

START_TEST(calloc_zeroes_and_traces) {
  enter_mode(_i);
  /* Dirty blocks of a fastbin size, free more than the tcache holds (7),
   * so calloc (which skips the tcache) is handed a dirty recycled chunk. */
  enum { N = 32, SZ = 100 };
  void *dirty[N];
  for (int k = 0; k < N; k++) {
    dirty[k] = malloc(hs_t_opaque(SZ));
    ck_assert_ptr_nonnull(dirty[k]);
    memset(dirty[k], 0xAB, SZ);
    hs_t_escape(dirty[k]); /* keeps the dirtying stores */
  }
  for (int k = 0; k < N; k++)
    free(dirty[k]);
  probe_t pr;
  pr.before = hs_t_current();
  unsigned char *p = calloc(hs_t_opaque(10), hs_t_opaque(SZ / 10));
  hs_t_escape(p);
  pr.during = hs_t_current();
  pr.frames = hs_t_frames(p);
  ck_assert_ptr_nonnull(p);
  for (int k = 0; k < SZ; k++)
    ck_assert_msg(p[k] == 0, "calloc byte %d is 0x%02x", k, p[k]);
  free(p);
  pr.after = hs_t_current();
  expect_traced(&pr, SZ, "calloc(10, 10)");
}
END_TEST

START_TEST(realloc_null_is_malloc) {
  enter_mode(_i);
  probe_t pr;
  pr.before = hs_t_current();
  char *p = realloc(NULL, hs_t_opaque(77));
  hs_t_escape(p);
  pr.during = hs_t_current();
  pr.frames = hs_t_frames(p);
  ck_assert_ptr_nonnull(p);
  memset(p, 1, 77);
  free(p);
  pr.after = hs_t_current();
  expect_traced(&pr, 77, "realloc(NULL, 77)");
}
END_TEST

START_TEST(realloc_grow_keeps_contents) {
  enter_mode(_i);
  size_t before = hs_t_current();
  char *p = malloc(hs_t_opaque(10));
  hs_t_escape(p);
  ck_assert_ptr_nonnull(p);
  memcpy(p, "123456789", 10);
  size_t one = hs_t_current();
  char *q = realloc(p, hs_t_opaque(5000));
  hs_t_escape(q);
  size_t two = hs_t_current();
  int frames = hs_t_frames(q);
  ck_assert_ptr_nonnull(q);
  ck_assert_str_eq(q, "123456789");
  char *r = realloc(q, hs_t_opaque(3));
  hs_t_escape(r);
  size_t three = hs_t_current();
  ck_assert_ptr_nonnull(r);
  ck_assert_int_eq(memcmp(r, "123", 3), 0);
  free(r);
  size_t after = hs_t_current();
  if (mode == MODE_TRACING) {
    ck_assert_uint_eq(one - before, 10);
    ck_assert_uint_eq(two - before, 5000);
    ck_assert_uint_eq(three - before, 3);
    ck_assert_int_ge(frames, 1);
    ck_assert_uint_eq(after, before);
  } else {
    ck_assert_uint_eq(one | two | three | after, 0);
    ck_assert_int_eq(frames, untraced());
  }
}
END_TEST

START_TEST(realloc_zero_frees) {
  enter_mode(_i);
  size_t before = hs_t_current();
  char *p = malloc(hs_t_opaque(50));
  hs_t_escape(p);
  ck_assert_ptr_nonnull(p);
  size_t during = hs_t_current();
  char *r = realloc(hs_t_launder(p), hs_t_opaque(0));
  hs_t_escape(r);
  size_t after = hs_t_current();
  int frames = hs_t_frames(p);
  /* glibc 2.36 (REALLOC_ZERO_BYTES_FREES): frees and returns NULL. */
  ck_assert_ptr_null(r);
  if (mode == MODE_TRACING) {
    ck_assert_uint_eq(during - before, 50);
    ck_assert_uint_eq(after, before);
    ck_assert_int_eq(frames, HS_ENOTFOUND);
  } else {
    ck_assert_uint_eq(during | after, 0);
  }
}
END_TEST

START_TEST(realloc_failure_keeps_block_and_trace) {
  enter_mode(_i);
  size_t before = hs_t_current();
  unsigned char *p = malloc(hs_t_opaque(64));
  hs_t_escape(p);
  ck_assert_ptr_nonnull(p);
  for (int k = 0; k < 64; k++)
    p[k] = (unsigned char)k;
  size_t during = hs_t_current();
  errno = 0;
  void *r = realloc(hs_t_launder(p), hs_t_opaque(SIZE_MAX));
  hs_t_escape(r);
  int e = errno;
  size_t after_fail = hs_t_current();
  int frames = hs_t_frames(p);
  ck_assert_ptr_null(r);
  ck_assert_int_eq(e, ENOMEM);
  for (int k = 0; k < 64; k++)
    ck_assert_int_eq(p[k], k);
  ck_assert_uint_eq(after_fail, during);
  if (mode == MODE_TRACING) {
    ck_assert_uint_eq(during - before, 64);
    ck_assert_msg(frames >= 1, "the failed realloc lost p's trace (%d)",
                  frames);
  }
  free(p);
  ck_assert_uint_eq(hs_t_current(), before);
}
END_TEST

START_TEST(reallocarray_overflow_keeps_block) {
  enter_mode(_i);
  size_t before = hs_t_current();
  unsigned char *p = malloc(hs_t_opaque(32));
  hs_t_escape(p);
  ck_assert_ptr_nonnull(p);
  memset(p, 0x5A, 32);
  size_t during = hs_t_current();
  errno = 0;
  void *r = reallocarray(hs_t_launder(p), hs_t_opaque(SIZE_MAX / 2 + 1),
                         hs_t_opaque(4));
  hs_t_escape(r);
  int e = errno;
  size_t after_fail = hs_t_current();
  int frames = hs_t_frames(p);
  ck_assert_ptr_null(r);
  ck_assert_int_eq(e, ENOMEM);
  for (int k = 0; k < 32; k++)
    ck_assert_int_eq(p[k], 0x5A);
  ck_assert_uint_eq(after_fail, during);
  if (mode == MODE_TRACING) {
    ck_assert_uint_eq(during - before, 32);
    ck_assert_int_ge(frames, 1);
  }
  free(p);
  ck_assert_uint_eq(hs_t_current(), before);
}
END_TEST

START_TEST(reallocarray_normal) {
  enter_mode(_i);
  size_t before = hs_t_current();
  uint64_t *p = reallocarray(NULL, hs_t_opaque(10), sizeof *p);
  hs_t_escape(p);
  size_t one = hs_t_current();
  ck_assert_ptr_nonnull(p);
  for (int k = 0; k < 10; k++)
    p[k] = (uint64_t)k * 3;
  uint64_t *q = reallocarray(p, hs_t_opaque(20), sizeof *q);
  hs_t_escape(q);
  size_t two = hs_t_current();
  int frames = hs_t_frames(q);
  ck_assert_ptr_nonnull(q);
  for (int k = 0; k < 10; k++)
    ck_assert_uint_eq(q[k], (uint64_t)k * 3);
  free(q);
  size_t after = hs_t_current();
  if (mode == MODE_TRACING) {
    ck_assert_uint_eq(one - before, 80);
    ck_assert_uint_eq(two - before, 160);
    ck_assert_int_ge(frames, 1);
    ck_assert_uint_eq(after, before);
  } else {
    ck_assert_uint_eq(one | two | after, 0);
  }
}
END_TEST

START_TEST(free_null_is_noop) {
  enter_mode(_i);
  size_t before = hs_t_current();
  errno = 1234;
  free(NULL);
  int e = errno;
  ck_assert_int_eq(e, 1234);
  ck_assert_uint_eq(hs_t_current(), before);
}
END_TEST

START_TEST(errno_preserved_on_success) {
  enter_mode(_i);
  /* Many distinct sizes and call sites so that new stacks are interned and
   * the tables grow: the paths most likely to clobber errno. */
  for (int k = 0; k < 2000; k++) {
    errno = 1234;
    void *p = malloc(hs_t_opaque((size_t)k + 1));
    hs_t_escape(p);
    ck_assert_int_eq(errno, 1234);
    void *q = calloc(hs_t_opaque(3), hs_t_opaque((size_t)k + 1));
    hs_t_escape(q);
    ck_assert_int_eq(errno, 1234);
    p = realloc(p, hs_t_opaque((size_t)k * 2 + 8));
    ck_assert_int_eq(errno, 1234);
    void *a = NULL;
    ck_assert_int_eq(posix_memalign(&a, 64, hs_t_opaque(100)), 0);
    ck_assert_int_eq(errno, 1234);
    void *m = memalign(256, hs_t_opaque(10));
    ck_assert_int_eq(errno, 1234);
    hs_t_escape(p);
    hs_t_escape(q);
    hs_t_escape(a);
    hs_t_escape(m);
    free(p);
    free(q);
    free(a);
    free(m);
    ck_assert_int_eq(errno, 1234);
  }
  if (mode == MODE_TRACING)
    ck_assert_uint_eq(hs_t_current(), 0);
}
END_TEST

START_TEST(posix_memalign_contract) {
  enter_mode(_i);
  size_t before = hs_t_current();
  static const size_t bad[] = {3, 0, 24, 4, 1};
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    void *out = NULL;
    int rc = posix_memalign(&out, hs_t_opaque(bad[k]), 16);
    ck_assert_msg(rc == EINVAL, "posix_memalign(align=%zu) returned %d",
                  bad[k], rc);
  }
  ck_assert_uint_eq(hs_t_current(), before);
  static const size_t good[] = {64, 4096, 65536};
  for (size_t k = 0; k < 3; k++) {
    void *out = NULL;
    probe_t pr;
    pr.before = hs_t_current();
    int rc = posix_memalign(&out, good[k], hs_t_opaque(100));
    pr.during = hs_t_current();
    pr.frames = hs_t_frames(out);
    ck_assert_int_eq(rc, 0);
    ck_assert_ptr_nonnull(out);
    ck_assert_uint_eq((uintptr_t)out % good[k], 0);
    free(out);
    pr.after = hs_t_current();
    expect_traced(&pr, 100, "posix_memalign");
  }
  void *out = NULL;
  int rc = posix_memalign(&out, 64, hs_t_opaque(SIZE_MAX - 4096));
  ck_assert_int_eq(rc, ENOMEM);
  ck_assert_uint_eq(hs_t_current(), before);
}
END_TEST

/* One aligned allocator: checks alignment, requested-size tracing, free. */
static void check_aligned(void *(*fn)(size_t, size_t), size_t align,
                          size_t size, const char *what) {
  probe_t pr;
  pr.before = hs_t_current();
  void *p = fn(align, size);
  hs_t_escape(p);
  pr.during = hs_t_current();
  pr.frames = hs_t_frames(p);
  ck_assert_msg(p != NULL, "%s returned NULL", what);
  ck_assert_msg((uintptr_t)p % align == 0, "%s: %p not %zu-aligned", what, p,
                align);
  memset(p, 0xCD, size);
  free(p);
  pr.after = hs_t_current();
  expect_traced(&pr, size, what);
}

static void *call_aligned_alloc(size_t a, size_t n) {
  return aligned_alloc(hs_t_opaque(a), hs_t_opaque(n));
}
static void *call_memalign(size_t a, size_t n) {
  return memalign(hs_t_opaque(a), hs_t_opaque(n));
}

START_TEST(aligned_alloc_aligned) {
  enter_mode(_i);
  check_aligned(call_aligned_alloc, 64, 128, "aligned_alloc(64, 128)");
}
END_TEST

START_TEST(memalign_aligned) {
  enter_mode(_i);
  check_aligned(call_memalign, 4096, 10, "memalign(4096, 10)");
  size_t before = hs_t_current();
  errno = 0;
  void *p = memalign(64, hs_t_opaque(SIZE_MAX - 4096));
  hs_t_escape(p);
  ck_assert_ptr_null(p);
  ck_assert_int_eq(errno, ENOMEM);
  ck_assert_uint_eq(hs_t_current(), before);
}
END_TEST

START_TEST(valloc_page_aligned) {
  enter_mode(_i);
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  probe_t pr;
  pr.before = hs_t_current();
  void *p = valloc(hs_t_opaque(100));
  hs_t_escape(p);
  pr.during = hs_t_current();
  pr.frames = hs_t_frames(p);
  ck_assert_ptr_nonnull(p);
  ck_assert_uint_eq((uintptr_t)p % page, 0);
  free(p);
  pr.after = hs_t_current();
  expect_traced(&pr, 100, "valloc(100)");
}
END_TEST

START_TEST(pvalloc_page_aligned) {
  enter_mode(_i);
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  probe_t pr;
  pr.before = hs_t_current();
  void *p = pvalloc(hs_t_opaque(100));
  hs_t_escape(p);
  pr.during = hs_t_current();
  pr.frames = hs_t_frames(p);
  ck_assert_ptr_nonnull(p);
  ck_assert_uint_eq((uintptr_t)p % page, 0);
  ck_assert_uint_ge(malloc_usable_size(p), page);
  memset(p, 0xEE, page); /* pvalloc rounds up: the whole page is ours */
  free(p);
  pr.after = hs_t_current();
  /* Requested size, not the rounded page. */
  expect_traced(&pr, 100, "pvalloc(100)");
}
END_TEST

START_TEST(malloc_usable_size_contract) {
  enter_mode(_i);
  ck_assert_uint_eq(malloc_usable_size(NULL), 0);
  for (size_t n = 1; n < 5000; n = n * 3 + 1) {
    void *p = malloc(hs_t_opaque(n));
    hs_t_escape(p);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_ge(malloc_usable_size(p), n);
    free(p);
  }
}
END_TEST

int main(void) {
  Suite *s = suite_create("interpose_contract");
  TCase *tc = tcase_create("contract");
  tcase_add_loop_test(tc, malloc_zero, 0, MODE_COUNT);
  tcase_add_loop_test(tc, malloc_huge_fails, 0, MODE_COUNT);
  tcase_add_loop_test(tc, calloc_overflow_fails, 0, MODE_COUNT);
  tcase_add_loop_test(tc, calloc_zeroes_and_traces, 0, MODE_COUNT);
  tcase_add_loop_test(tc, realloc_null_is_malloc, 0, MODE_COUNT);
  tcase_add_loop_test(tc, realloc_grow_keeps_contents, 0, MODE_COUNT);
  tcase_add_loop_test(tc, realloc_zero_frees, 0, MODE_COUNT);
  tcase_add_loop_test(tc, realloc_failure_keeps_block_and_trace, 0,
                      MODE_COUNT);
  tcase_add_loop_test(tc, reallocarray_overflow_keeps_block, 0, MODE_COUNT);
  tcase_add_loop_test(tc, reallocarray_normal, 0, MODE_COUNT);
  tcase_add_loop_test(tc, free_null_is_noop, 0, MODE_COUNT);
  tcase_add_loop_test(tc, errno_preserved_on_success, 0, MODE_COUNT);
  tcase_add_loop_test(tc, posix_memalign_contract, 0, MODE_COUNT);
  tcase_add_loop_test(tc, aligned_alloc_aligned, 0, MODE_COUNT);
  tcase_add_loop_test(tc, memalign_aligned, 0, MODE_COUNT);
  tcase_add_loop_test(tc, valloc_page_aligned, 0, MODE_COUNT);
  tcase_add_loop_test(tc, pvalloc_page_aligned, 0, MODE_COUNT);
  tcase_add_loop_test(tc, malloc_usable_size_contract, 0, MODE_COUNT);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_set_fork_status(sr, CK_FORK);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
