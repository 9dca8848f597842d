/* rl_test_alloc.h - the counting allocator the reclayout suites install
 * through rl__set_allocator: requested bytes per live block, injected
 * failures, and a check that every free names the size it was allocated with. */
#ifndef RL_TEST_ALLOC_H
#define RL_TEST_ALLOC_H

#include <check.h>
#include <stdlib.h>

#include "reclayout.h"
#include "reclayout/rl_internal.h"

/* Not every suite uses every helper. */
#define TA_FN static __attribute__((unused))

/* Requested bytes and blocks currently live, allocations attempted, and the
 * attempt number that fails (-1: none). Per process: Check forks per test. */
static size_t ta_live_bytes, ta_live_blocks;
static long ta_attempts, ta_fail_at = -1;
static int ta_bad_free;

/* ptr -> requested size, open addressing; enough for the suites' peaks. */
#define TA_CAP (1u << 17)
static struct {
  void *p;
  size_t size;
} ta_tab[TA_CAP];

TA_FN size_t ta_slot(void *p) {
  size_t i = ((uintptr_t)p >> 4) * 11400714819323198485ull >> 47;
  while (ta_tab[i & (TA_CAP - 1)].p && ta_tab[i & (TA_CAP - 1)].p != p)
    i++;
  return i & (TA_CAP - 1);
}

TA_FN void *ta_alloc(size_t size, int zero, void *ud) {
  (void)ud;
  if (ta_fail_at >= 0 && ta_attempts++ == ta_fail_at)
    return NULL;
  void *p = zero ? calloc(1, size) : malloc(size);
  if (!p)
    return NULL;
  size_t i = ta_slot(p);
  ta_tab[i].p = p;
  ta_tab[i].size = size;
  ta_live_bytes += size;
  ta_live_blocks++;
  return p;
}

/* Deletion with backward shift keeps probe chains intact. */
TA_FN void ta_forget(size_t i) {
  size_t j = i;
  ta_tab[i].p = NULL;
  for (;;) {
    j = (j + 1) & (TA_CAP - 1);
    if (!ta_tab[j].p)
      return;
    size_t home = ((uintptr_t)ta_tab[j].p >> 4) * 11400714819323198485ull >> 47;
    home &= TA_CAP - 1;
    /* move j back to i if its home is not in (i, j] cyclically */
    if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
      ta_tab[i] = ta_tab[j];
      ta_tab[j].p = NULL;
      i = j;
    }
  }
}

TA_FN void ta_free(void *p, size_t size, void *ud) {
  (void)ud;
  size_t i = ta_slot(p);
  if (ta_tab[i].p != p || ta_tab[i].size != size)
    ta_bad_free++;
  else
    ta_forget(i);
  ta_live_bytes -= size;
  ta_live_blocks--;
  free(p);
}

TA_FN void ta_setup(void) {
  static const rl__allocator_t a = {ta_alloc, ta_free, NULL};
  ta_live_bytes = ta_live_blocks = 0;
  ta_attempts = 0;
  ta_fail_at = -1;
  ta_bad_free = 0;
  rl__set_allocator(&a);
}

/* Every test must leave nothing behind and free with honest sizes. */
TA_FN void ta_teardown(void) {
  rl__set_allocator(NULL);
  ck_assert_int_eq(ta_bad_free, 0);
  ck_assert_uint_eq(ta_live_blocks, 0);
  ck_assert_uint_eq(ta_live_bytes, 0);
}

/* Fail the n-th allocation from now (0 = the next one). */
static inline void ta_fail_nth(long n) {
  ta_attempts = 0;
  ta_fail_at = n;
}
static inline void ta_no_fail(void) { ta_fail_at = -1; }

static inline int ta_run(Suite *s) {
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
