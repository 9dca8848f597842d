/* test_leak.c - the leak engine without interposition: blocks traced with
 * hs_track, a graph built for each of valgrind's cases, the classes checked
 * exactly, and their trip through the .hsnap file. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/hsnap.h"
#include "heapsnap.h"
#include "snapshot/snapshot.h"

#define NOINLINE __attribute__((noinline))
#define KEY ((uintptr_t)0xa5a5a5a5a5a5a5a5ull)

/* The roots the test keeps: globals (the test program's data segment). */
void *volatile root_a;     /* -> A (start) */
void *volatile root_zero;  /* -> Z, a zero-sized block */
void *volatile root_int;   /* -> inside J */
/* Every block, XOR-ed so that these copies are not pointers. */
uintptr_t enc[16];
size_t sizes[16];
enum { A, B, C, D, E, F, G, Z, J, K, NB };

static void *blk(int i) { return (void *)(enc[i] ^ KEY); }

NOINLINE static void scrub(void) {
  volatile char buf[16384];
  memset((char *)buf, 0, sizeof buf);
  __asm__ volatile("" ::"r"(buf) : "memory");
}

/* A -interior-> B -start-> C: B and C only possibly
 * lost (a chain with an interior link). D <-> E: a lost cycle, one leader
 * (definite), one member (indirect). F -> G: G indirect. Z: zero-sized,
 * its start pointer kept: reachable. J: only an interior pointer from a
 * root: possible; J -start-> K: K possible (the prior is not definite). */
NOINLINE static void build(void) {
  static const size_t sz[NB] = {64, 64, 32, 48, 48, 40, 24, 0, 96, 16};
  for (int i = 0; i < NB; i++) {
    void *p = calloc(1, sz[i] ? sz[i] : 1);
    enc[i] = (uintptr_t)p ^ KEY;
    sizes[i] = sz[i];
    ck_assert_int_eq(hs_track(0, (uintptr_t)p, sz[i]), 0);
  }
  ((void **)blk(A))[0] = (char *)blk(B) + 8;
  ((void **)blk(B))[1] = blk(C);
  ((void **)blk(D))[0] = blk(E);
  ((void **)blk(E))[2] = blk(D);
  ((void **)blk(F))[0] = blk(G);
  ((void **)blk(J))[3] = blk(K);
  root_a = blk(A);
  root_zero = blk(Z);
  root_int = (char *)blk(J) + 40;
}

NOINLINE static void teardown_blocks(void) {
  for (int i = 0; i < NB; i++) {
    hs_untrack(0, enc[i] ^ KEY);
    free(blk(i));
  }
  root_a = root_zero = root_int = NULL;
}

/* Every block was traced from one line (build's loop): one key, split by
 * class into exactly the summary's four groups; unsplit, one entry. */
static void grouped_by_class(hs_snapshot_t *s) {
  static const uint64_t want_size[HS_LEAK_KINDS] = {
      [HS_LEAK_DEFINITE] = 40 + 48, [HS_LEAK_INDIRECT] = 24 + 48,
      [HS_LEAK_POSSIBLE] = 64 + 32 + 96 + 16, [HS_LEAK_REACHABLE] = 64};
  static const uint64_t want_count[HS_LEAK_KINDS] = {
      [HS_LEAK_DEFINITE] = 2, [HS_LEAK_INDIRECT] = 2,
      [HS_LEAK_POSSIBLE] = 4, [HS_LEAK_REACHABLE] = 2};
  hs_statistics_t *st;
  ck_assert_int_eq(hs_snapshot_statistics(s, HS_KEY_LINENO, 0, &st), 0);
  ck_assert_uint_eq(hs_statistics_count(st), 1);
  ck_assert_int_eq(hs_statistics_leak_kind(st, 0), -1);
  hs_statistics_free(st);
  for (int cmp = 0; cmp < 2; cmp++) {
    hs_key_t key = (hs_key_t)(HS_KEY_LINENO | HS_KEY_BY_LEAK);
    ck_assert_int_eq(cmp ? hs_snapshot_compare(s, s, key, 0, &st)
                         : hs_snapshot_statistics(s, key, 0, &st),
                     0);
    hs_statistics_info_t in;
    ck_assert_int_eq(hs_statistics_get_info(st, &in, sizeof in), 0);
    ck_assert_int_eq(in.key, HS_KEY_LINENO);
    ck_assert_uint_eq(hs_statistics_count(st), 4);
    /* Reordered by the blocks allocated, the classes move with their
     * entries; the key's churn comes in as its unchecked entry. */
    ck_assert_int_eq(hs_statistics_sort(st, HS_SORT_COUNT), 0);
    size_t n = hs_statistics_count(st);
    ck_assert(n == 4 || n == 5);
    unsigned seen = 0;
    for (size_t i = 0; i < n; i++) {
      int k = hs_statistics_leak_kind(st, i);
      if (k == HS_LEAK_UNCHECKED && n == 5) {
        ck_assert_uint_eq(cmp ? hs_statistics_get_diff(st, i)->size
                              : hs_statistics_get(st, i)->size, 0);
        continue;
      }
      ck_assert_int_ge(k, HS_LEAK_DEFINITE);
      ck_assert_int_le(k, HS_LEAK_REACHABLE);
      seen |= 1u << k;
      uint64_t size = cmp ? hs_statistics_get_diff(st, i)->size
                          : hs_statistics_get(st, i)->size;
      uint64_t count = cmp ? hs_statistics_get_diff(st, i)->count
                           : hs_statistics_get(st, i)->count;
      ck_assert_uint_eq(size, want_size[k]);
      ck_assert_uint_eq(count, want_count[k]);
      if (cmp)
        ck_assert_int_eq(hs_statistics_get_diff(st, i)->size_diff, 0);
      char line[512], name[64];
      ck_assert_int_gt(hs_statistics_format(st, i, line, sizeof line), 0);
      snprintf(name, sizeof name, " (%s): size=", hs_leak_kind_name(k));
      ck_assert_msg(strstr(line, name), "%s lacks %s", line, name);
    }
    ck_assert_uint_eq(seen, 0x1e);
    ck_assert_int_eq(hs_statistics_leak_kind(st, n), -1);
    ck_assert_int_eq(hs_statistics_format(st, n, NULL, 0), HS_EINVAL);
    hs_statistics_free(st);
  }
}

START_TEST(classes_as_valgrind) {
  ck_assert_int_eq(hs_start(4), 0);
  build();
  scrub();
  hs_leak_summary_t sum;
  ck_assert_int_eq(hs_leak_check(&sum), 0);
  /* Check's timer thread (SIGEV_THREAD) blocks every signal: it may be
   * missed, which only makes the result partial. */
  ck_assert_uint_le(sum.threads_missed, 1);
  /* definite: F and the cycle's leader; indirect: G and the member. */
  ck_assert_uint_eq(sum.blocks[HS_LEAK_DEFINITE], 2);
  ck_assert_uint_eq(sum.blocks[HS_LEAK_INDIRECT], 2);
  ck_assert_uint_eq(sum.bytes[HS_LEAK_DEFINITE] + sum.bytes[HS_LEAK_INDIRECT],
                    40 + 24 + 48 + 48);
  /* possible: B, C (through A's interior pointer), J, K. */
  ck_assert_uint_eq(sum.blocks[HS_LEAK_POSSIBLE], 4);
  ck_assert_uint_eq(sum.bytes[HS_LEAK_POSSIBLE], 64 + 32 + 96 + 16);
  /* reachable: A and Z. */
  ck_assert_uint_eq(sum.blocks[HS_LEAK_REACHABLE], 2);
  ck_assert_uint_eq(sum.bytes[HS_LEAK_REACHABLE], 64);

  /* The snapshot carries them, and so does its file. */
  hs_snapshot_t *s, *f, *back;
  ck_assert_int_eq(hs_take_snapshot(&s), 0);
  hs_leak_summary_t ss;
  ck_assert_int_eq(hs_snapshot_leak_summary(s, &ss), 1);
  for (int k = 0; k < HS_LEAK_KINDS; k++)
    ck_assert_uint_eq(ss.blocks[k], sum.blocks[k]);
  ck_assert_int_eq(hs_snapshot_filter_leaks(s, 1u << HS_LEAK_DEFINITE, &f), 0);
  hs_snapshot_info_t in;
  hs_snapshot_get_info(f, &in, sizeof in);
  ck_assert_uint_eq(in.count, 2);
  hs_snapshot_free(f);
  ck_assert_int_eq(hs__snapshot_symbolize(s), 0);
  uint8_t *b;
  size_t len;
  ck_assert_int_eq(hs__hsnap_encode(s, &b, &len), 0);
  char err[256];
  ck_assert_int_eq(hs__hsnap_read_mem(b, len, "t", &back, err, sizeof err), 0);
  ck_assert_int_eq(hs_snapshot_leak_summary(back, &ss), 1);
  for (int k = 0; k < HS_LEAK_KINDS; k++)
    ck_assert_uint_eq(ss.blocks[k], sum.blocks[k]);
  grouped_by_class(s);
  grouped_by_class(back); /* the classes the file carried */
  hs_snapshot_free(back);
  free(b);
  hs_snapshot_free(s);

  /* A block traced after the check is unchecked; a clear forgets them. */
  hs_clear_traces();
  ck_assert_int_eq(hs_track(0, enc[A] ^ KEY, 64), 0);
  ck_assert_int_eq(hs_take_snapshot(&s), 0);
  ck_assert_int_eq(hs_snapshot_leak_summary(s, &ss), 0);
  ck_assert_int_eq(hs__snapshot_symbolize(s), 0);
  ck_assert_int_eq(hs__hsnap_encode(s, &b, &len), 0);
  ck_assert_int_eq(hs__hsnap_read_mem(b, len, "t", &back, err, sizeof err), 0);
  ck_assert_int_eq(hs_snapshot_leak_summary(back, &ss), 0);
  ck_assert_uint_eq(ss.blocks[HS_LEAK_UNCHECKED], 1);
  hs_snapshot_free(back);
  free(b);
  hs_snapshot_free(s);
  teardown_blocks();
  hs_stop();
}
END_TEST

/* A damaged class table is refused, not believed. */
START_TEST(bad_class_rejected) {
  ck_assert_int_eq(hs_start(4), 0);
  build();
  scrub();
  ck_assert_int_eq(hs_leak_check(NULL), 0);
  hs_snapshot_t *s, *back;
  ck_assert_int_eq(hs_take_snapshot(&s), 0);
  ck_assert_int_eq(hs__snapshot_symbolize(s), 0);
  s->group_leak[0] = 77;
  uint8_t *b;
  size_t len;
  ck_assert_int_eq(hs__hsnap_encode(s, &b, &len), 0);
  char err[256];
  ck_assert_int_eq(hs__hsnap_read_mem(b, len, "t", &back, err, sizeof err),
                   HS_ECORRUPT);
  ck_assert_ptr_nonnull(strstr(err, "leak class 77"));
  free(b);
  hs_snapshot_free(s);
  teardown_blocks();
  hs_stop();
}
END_TEST

START_TEST(not_tracing) {
  hs_leak_summary_t sum;
  ck_assert_int_eq(hs_leak_check(&sum), HS_ENOTTRACING);
  ck_assert_str_eq(hs_leak_kind_name(HS_LEAK_DEFINITE), "definitely lost");
  ck_assert_str_eq(hs_leak_kind_name(HS_LEAK_REACHABLE), "still reachable");
}
END_TEST

int main(void) {
  Suite *su = suite_create("leak");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, classes_as_valgrind);
  tcase_add_test(tc, bad_class_rejected);
  tcase_add_test(tc, not_tracing);
  suite_add_tcase(su, tc);
  SRunner *sr = srunner_create(su);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
