/* test_api.c - tracemalloc semantics of the control API, domains, and
 * hs_get_object_traceback naming the right caller, with the interposer on. */
#define _GNU_SOURCE
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "heapsnap.h"
#include "interpose_util.h"

/* ---- control API ---- */

START_TEST(start_rejects_bad_limits) {
  ck_assert_int_eq(hs_get_traceback_limit(), HS_DEFAULT_FRAMES);
  ck_assert_int_eq(hs_start(0), HS_EINVAL);
  ck_assert_int_eq(hs_start(-1), HS_EINVAL);
  ck_assert_int_eq(hs_start(HS_MAX_FRAMES + 1), HS_EINVAL);
  ck_assert_int_eq(hs_is_tracing(), 0);
  /* A refused start does not change the remembered limit. */
  ck_assert_int_eq(hs_get_traceback_limit(), HS_DEFAULT_FRAMES);
  static const int ok[] = {1, 2, 16, 100, 255, 256};
  for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++) {
    ck_assert_int_eq(hs_start(ok[k]), 0);
    ck_assert_int_eq(hs_is_tracing(), 1);
    ck_assert_int_eq(hs_get_traceback_limit(), ok[k]);
    void *p = malloc(hs_t_opaque(10));
    hs_t_escape(p);
    ck_assert_int_ge(hs_t_frames(p), 1);
    free(p);
    hs_stop();
    ck_assert_int_eq(hs_is_tracing(), 0);
    ck_assert_int_eq(hs_get_traceback_limit(), ok[k]);
  }
}
END_TEST

START_TEST(second_start_keeps_limit) {
  ck_assert_int_eq(hs_start(5), 0);
  ck_assert_int_eq(hs_start(10), 0);
  ck_assert_int_eq(hs_get_traceback_limit(), 5);
  ck_assert_int_eq(hs_start(0), HS_EINVAL);
  ck_assert_int_eq(hs_is_tracing(), 1);
  hs_stop();
  ck_assert_int_eq(hs_get_traceback_limit(), 5);
  hs_stop(); /* a second stop is harmless */
  ck_assert_int_eq(hs_get_traceback_limit(), 5);
}
END_TEST

START_TEST(traced_memory_zero_when_not_tracing) {
  size_t c = 99, p = 99;
  hs_get_traced_memory(&c, &p);
  ck_assert_uint_eq(c, 0);
  ck_assert_uint_eq(p, 0);
  hs_get_traced_memory(NULL, NULL);
  ck_assert_int_eq(hs_start(4), 0);
  void *keep = malloc(hs_t_opaque(1000));
  hs_t_escape(keep);
  hs_get_traced_memory(&c, &p);
  ck_assert_uint_ge(c, 1000);
  hs_stop();
  c = p = 99;
  hs_get_traced_memory(&c, &p);
  ck_assert_uint_eq(c, 0);
  ck_assert_uint_eq(p, 0);
  free(keep);
  hs_get_traced_memory(&c, &p);
  ck_assert_uint_eq(c, 0);
  ck_assert_uint_eq(p, 0);
}
END_TEST

START_TEST(peak_and_reset) {
  ck_assert_int_eq(hs_start(8), 0);
  size_t base = hs_t_current();
  void *big = malloc(hs_t_opaque(100000));
  hs_t_escape(big);
  size_t c1 = hs_t_current(), p1 = hs_t_peak();
  free(big);
  void *small = malloc(hs_t_opaque(10));
  hs_t_escape(small);
  size_t c2 = hs_t_current(), p2 = hs_t_peak();
  hs_reset_peak();
  size_t c3 = hs_t_current(), p3 = hs_t_peak();
  free(small);
  size_t c4 = hs_t_current(), p4 = hs_t_peak();
  ck_assert_uint_eq(c1 - base, 100000);
  ck_assert_uint_ge(p1, c1);
  ck_assert_uint_eq(c2 - base, 10);
  ck_assert_uint_ge(p2, base + 100000);
  ck_assert_uint_eq(p3, c3);
  ck_assert_uint_eq(c3, c2);
  ck_assert_uint_eq(c4, base);
  ck_assert_uint_eq(p4, c3);
}
END_TEST

START_TEST(clear_traces_forgets) {
  ck_assert_int_eq(hs_start(8), 0);
  char *old = malloc(hs_t_opaque(500));
  hs_t_escape(old);
  ck_assert_int_ge(hs_t_frames(old), 1);
  hs_clear_traces();
  size_t c0 = hs_t_current(), p0 = hs_t_peak();
  int f_old = hs_t_frames(old);
  char *fresh = malloc(hs_t_opaque(30));
  hs_t_escape(fresh);
  size_t c1 = hs_t_current();
  free(old); /* its trace is gone: must not be subtracted */
  size_t c2 = hs_t_current();
  free(fresh);
  size_t c3 = hs_t_current(), p3 = hs_t_peak();
  ck_assert_int_eq(hs_is_tracing(), 1);
  ck_assert_uint_eq(c0, 0);
  ck_assert_uint_eq(p0, 0);
  ck_assert_int_eq(f_old, HS_ENOTFOUND);
  ck_assert_uint_eq(c1, 30);
  ck_assert_msg(c2 == 30, "freeing a pre-clear block moved current to %zu",
                c2);
  ck_assert_uint_eq(c3, 0);
  ck_assert_uint_eq(p3, 30);
}
END_TEST

/* Live blocks of the cycle test; sizes kept so the sum can be checked. */
#define CYCLE_SLOTS 64
static void *cyc_ptr[CYCLE_SLOTS];
static size_t cyc_size[CYCLE_SLOTS];
static int cyc_traced[CYCLE_SLOTS];

static size_t cyc_expected(void) {
  size_t sum = 0;
  for (int k = 0; k < CYCLE_SLOTS; k++)
    if (cyc_ptr[k] && cyc_traced[k])
      sum += cyc_size[k];
  return sum;
}

START_TEST(stop_start_clear_cycles) {
  unsigned rng = 12345;
  size_t bad_cycle = (size_t)-1, got = 0, want = 0;
  for (int cycle = 0; cycle < 100 && bad_cycle == (size_t)-1; cycle++) {
    ck_assert_int_eq(hs_start(1 + cycle % 32), 0);
    for (int k = 0; k < CYCLE_SLOTS; k++)
      cyc_traced[k] = 0; /* blocks from earlier cycles pass through */
    for (int step = 0; step < 200; step++) {
      rng = rng * 1103515245u + 12345u;
      int k = (int)((rng >> 8) % CYCLE_SLOTS);
      if (cyc_ptr[k]) {
        free(cyc_ptr[k]);
        cyc_ptr[k] = NULL;
      } else {
        cyc_size[k] = (rng >> 16) % 3000 + 1;
        cyc_ptr[k] = malloc(hs_t_opaque(cyc_size[k]));
        cyc_traced[k] = 1;
      }
      if (step == 100 && cycle % 3 == 0) {
        hs_clear_traces();
        for (int j = 0; j < CYCLE_SLOTS; j++)
          cyc_traced[j] = 0;
      }
    }
    got = hs_t_current();
    want = cyc_expected();
    if (got != want)
      bad_cycle = (size_t)cycle;
    hs_stop();
    if (hs_t_current() != 0)
      bad_cycle = (size_t)cycle;
  }
  ck_assert_msg(bad_cycle == (size_t)-1,
                "cycle %zu: current %zu, live traced sum %zu", bad_cycle, got,
                want);
  for (int k = 0; k < CYCLE_SLOTS; k++)
    free(cyc_ptr[k]);
}
END_TEST

START_TEST(tracer_memory_accounting) {
  ck_assert_int_eq(hs_start(16), 0);
  void *p[100];
  for (int k = 0; k < 100; k++)
    p[k] = malloc(hs_t_opaque((size_t)k + 1));
  hs_t_escape(p);
  size_t during = hs_get_tracer_memory();
  for (int k = 0; k < 100; k++)
    free(p[k]);
  ck_assert_uint_gt(during, 0);
  hs_stop();
  /* All that stays is the event ring of deferred updates, kept for
   * threads still finishing an event (docs/design.md). */
  hs_stats_t st;
  hs_get_stats(&st, sizeof st);
  ck_assert_uint_eq(hs_get_tracer_memory(), st.event_ring_bytes);
  ck_assert_uint_le(st.event_ring_bytes, 1u << 20);
}
END_TEST

/* Ten blocks from one call site: one stack, ten traces. */
static __attribute__((noinline)) void *ten_site(size_t n) {
  void *p = malloc(hs_t_opaque(n));
  hs_t_escape(p);
  return p;
}

START_TEST(stats_consistent) {
  ck_assert_int_eq(hs_start(16), 0);
  void *p[10];
  for (int k = 0; k < 10; k++)
    p[k] = ten_site(100);
  hs_stats_t st;
  hs_get_stats(&st, sizeof st);
  size_t c, pk;
  hs_get_traced_memory(&c, &pk);
  for (int k = 0; k < 10; k++)
    free(p[k]);
  hs_stats_t after;
  hs_get_stats(&after, sizeof after);
  ck_assert_uint_eq(st.traced_current, c);
  ck_assert_uint_eq(st.traced_peak, pk);
  ck_assert_uint_eq(st.traced_current, 1000);
  ck_assert_uint_eq(st.live_traces, 10);
  ck_assert_uint_ge(st.stacks, 1);
  ck_assert_uint_gt(st.tracer_memory, 0);
  ck_assert_uint_ge(st.tracer_memory,
                    st.trace_table_bytes + st.stack_table_bytes);
  ck_assert_uint_gt(st.trace_table_bytes, 0);
  ck_assert_uint_gt(st.stack_table_bytes, 0);
  ck_assert_uint_eq(st.dropped_traces, 0);
  ck_assert_uint_eq(st.dropped_bytes, 0);
  ck_assert_uint_eq(after.live_traces, 0);
  ck_assert_uint_eq(after.traced_current, 0);
  ck_assert_uint_ge(after.stacks, st.stacks);
  hs_stop();
  hs_get_stats(&after, sizeof after);
  ck_assert_uint_eq(after.live_traces, 0);
  ck_assert_uint_eq(after.stacks, 0);
  ck_assert_uint_eq(after.traced_current, 0);
  ck_assert_uint_eq(after.tracer_memory, after.event_ring_bytes);
}
END_TEST

START_TEST(block_from_before_start_passes_through) {
  void *old = malloc(hs_t_opaque(200));
  hs_t_escape(old);
  ck_assert_int_eq(hs_start(16), 0);
  void *cur = malloc(hs_t_opaque(40));
  hs_t_escape(cur);
  size_t c0 = hs_t_current();
  int f = hs_t_frames(old);
  free(old);
  size_t c1 = hs_t_current();
  void *moved = realloc(cur, hs_t_opaque(4000));
  hs_t_escape(moved);
  size_t c2 = hs_t_current();
  free(moved);
  ck_assert_uint_eq(c0, 40);
  ck_assert_int_eq(f, HS_ENOTFOUND);
  ck_assert_uint_eq(c1, 40);
  ck_assert_uint_eq(c2, 4000);
  ck_assert_uint_eq(hs_t_current(), 0);
}
END_TEST

/* ---- domains ---- */

START_TEST(track_untrack) {
  ck_assert_int_eq(hs_track(5, 0x1000, 100), HS_ENOTTRACING);
  ck_assert_int_eq(hs_untrack(5, 0x1000), HS_ENOTTRACING);
  ck_assert_int_eq(hs_start(16), 0);
  size_t base = hs_t_current();
  ck_assert_int_eq(hs_track(5, 0x1000, 100), 0);
  ck_assert_uint_eq(hs_t_current(), base + 100);
  ck_assert_int_eq(hs_track(5, 0x1000, 50), 0); /* replaces */
  ck_assert_uint_eq(hs_t_current(), base + 50);
  hs_stats_t st;
  hs_get_stats(&st, sizeof st);
  ck_assert_uint_eq(st.live_traces, 1);
  ck_assert_int_eq(hs_untrack(5, 0x1000), 0);
  ck_assert_uint_eq(hs_t_current(), base);
  ck_assert_int_eq(hs_untrack(5, 0x1000), 0); /* untracked again: still 0 */
  ck_assert_uint_eq(hs_t_current(), base);
  /* Domain 0 lookups do not see other domains. */
  ck_assert_int_eq(hs_track(5, 0x2000, 10), 0);
  ck_assert_int_eq(hs_t_frames((void *)0x2000), HS_ENOTFOUND);
  ck_assert_int_eq(hs_untrack(5, 0x2000), 0);
  hs_stop();
  ck_assert_int_eq(hs_track(5, 0x1000, 100), HS_ENOTTRACING);
}
END_TEST

START_TEST(same_pointer_two_domains) {
  ck_assert_int_eq(hs_start(16), 0);
  size_t base = hs_t_current();
  char *p = malloc(hs_t_opaque(64));
  hs_t_escape(p);
  ck_assert_uint_eq(hs_t_current(), base + 64);
  ck_assert_int_eq(hs_track(7, (uintptr_t)p, 10), 0);
  ck_assert_uint_eq(hs_t_current(), base + 74);
  ck_assert_int_eq(hs_untrack(7, (uintptr_t)p), 0);
  ck_assert_uint_eq(hs_t_current(), base + 64);
  ck_assert_int_ge(hs_t_frames(p), 1); /* the heap trace survived */
  ck_assert_int_eq(hs_track(7, (uintptr_t)p, 10), 0);
  free(p); /* removes domain 0 only */
  ck_assert_uint_eq(hs_t_current(), base + 10);
  ck_assert_int_eq(hs_untrack(7, (uintptr_t)p), 0);
  ck_assert_uint_eq(hs_t_current(), base);
}
END_TEST

START_TEST(track_huge_wide_path) {
  ck_assert_int_eq(hs_start(16), 0);
  size_t base = hs_t_current();
  const size_t tib = (size_t)1 << 40;
  ck_assert_int_eq(hs_track(0, 0x5000, tib), 0);
  ck_assert_uint_eq(hs_t_current(), base + tib);
  ck_assert_int_ge(hs_t_frames((void *)0x5000), 1);
  ck_assert_int_eq(hs_untrack(0, 0x5000), 0);
  ck_assert_uint_eq(hs_t_current(), base);
  ck_assert_int_eq(hs_t_frames((void *)0x5000), HS_ENOTFOUND);
  /* A real block re-tracked with a huge size moves to the wide table: one
   * trace per pointer either way. */
  char *p = malloc(hs_t_opaque(16));
  hs_t_escape(p);
  ck_assert_int_eq(hs_track(0, (uintptr_t)p, 3 * tib), 0);
  ck_assert_uint_eq(hs_t_current(), base + 3 * tib);
  hs_stats_t st;
  hs_get_stats(&st, sizeof st);
  ck_assert_uint_eq(st.live_traces, 1);
  ck_assert_int_eq(hs_track(0, (uintptr_t)p, 16), 0); /* back to narrow */
  ck_assert_uint_eq(hs_t_current(), base + 16);
  ck_assert_int_eq(hs_track(0, (uintptr_t)p, 2 * tib), 0);
  ck_assert_uint_eq(hs_t_current(), base + 2 * tib);
  free(p); /* free finds the wide domain-0 trace too */
  ck_assert_uint_eq(hs_t_current(), base);
  hs_get_stats(&st, sizeof st);
  ck_assert_uint_eq(st.live_traces, 0);
}
END_TEST

/* ---- naming the caller ---- */

/* Global, not static: -rdynamic exports only global symbols for dladdr.
 * The work after each call keeps it from being a tail call, which would
 * drop the frame we look for. */
void *volatile hs_t_sink;
__attribute__((noinline)) void *alloc_here(size_t n) {
  void *p = malloc(hs_t_opaque(n));
  hs_t_escape(p);
  hs_t_sink = p;
  __asm__ volatile("" ::: "memory");
  return hs_t_sink;
}
__attribute__((noinline)) void *alloc_here_caller(void) {
  void *p = alloc_here(48);
  hs_t_sink = p;
  __asm__ volatile("" ::: "memory");
  return hs_t_sink;
}

/* The symbol at return address ra (ra - 1 lies inside the calling
 * instruction, even when the call is the last one of the function). */
static const char *sym_of(uintptr_t ra) {
  Dl_info info;
  if (!dladdr((void *)(ra - 1), &info) || !info.dli_sname)
    return "(none)";
  return info.dli_sname;
}

/* A fork while many events wait in the ring: the child applies them in its
 * fork handler, and the table that grows there allocates. That allocation
 * must not be traced (it once queued an event into the full ring from the
 * one thread that could empty it, and the child hung). */
START_TEST(fork_with_events_pending) {
  ck_assert_int_eq(hs_start(4), 0);
  /* Just under a ring of events after a clear, which empties every table:
   * applying them in the child grows every shard from nothing, a few
   * hundred allocations that would overfill the ring. (With the applier
   * thread on, fewer are pending; the totals must hold either way.) */
  enum { N = 65400 };
  void **b = malloc(N * sizeof *b);
  ck_assert_ptr_nonnull(b);
  hs_clear_traces();
  size_t before = hs_t_current();
  for (int i = 0; i < N; i++)
    b[i] = malloc(hs_t_opaque(16));
  pid_t pid = fork();
  if (pid == 0) {
    alarm(20);
    _exit(hs_t_current() == before + (size_t)N * 16 ? 0 : 1);
  }
  ck_assert_int_gt(pid, 0);
  int st = -1;
  for (int waited = 0; waited < 10000; waited++) {
    if (waitpid(pid, &st, WNOHANG) == pid)
      break;
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
    st = -1;
  }
  if (st == -1) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
  }
  ck_assert_msg(st != -1, "the child hung for 10 s after fork");
  ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                "the child's totals were wrong (status %#x)", st);
  for (int i = 0; i < N; i++)
    free(b[i]);
  free(b);
  hs_stop();
}
END_TEST

START_TEST(traceback_names_alloc_here) {
  ck_assert_int_eq(hs_start(16), 0);
  void *p = alloc_here_caller();
  uintptr_t f[16];
  int n = hs_get_object_traceback(p, f, 16);
  ck_assert_int_ge(n, 2);
  ck_assert_str_eq(sym_of(f[0]), "alloc_here");
  ck_assert_str_eq(sym_of(f[1]), "alloc_here_caller");
  /* A shorter buffer gets the most recent frames. */
  uintptr_t one[1];
  ck_assert_int_eq(hs_get_object_traceback(p, one, 1), 1);
  ck_assert_uint_eq(one[0], f[0]);
  ck_assert_int_eq(hs_get_object_traceback(p, one, 0), HS_EINVAL);
  ck_assert_int_eq(hs_get_object_traceback(p, NULL, 4), HS_EINVAL);
  free(hs_t_launder(p));
  ck_assert_int_eq(hs_get_object_traceback(p, f, 16), HS_ENOTFOUND);
}
END_TEST

START_TEST(traceback_one_frame_names_alloc_here) {
  ck_assert_int_eq(hs_start(1), 0);
  void *p = alloc_here_caller();
  uintptr_t f[16];
  int n = hs_get_object_traceback(p, f, 16);
  ck_assert_int_eq(n, 1);
  ck_assert_str_eq(sym_of(f[0]), "alloc_here");
  free(p);
}
END_TEST

int main(void) {
  Suite *s = suite_create("interpose_api");
  TCase *tc = tcase_create("control");
  tcase_add_test(tc, start_rejects_bad_limits);
  tcase_add_test(tc, second_start_keeps_limit);
  tcase_add_test(tc, traced_memory_zero_when_not_tracing);
  tcase_add_test(tc, peak_and_reset);
  tcase_add_test(tc, clear_traces_forgets);
  tcase_add_test(tc, stop_start_clear_cycles);
  tcase_add_test(tc, tracer_memory_accounting);
  tcase_add_test(tc, stats_consistent);
  tcase_add_test(tc, block_from_before_start_passes_through);
  suite_add_tcase(s, tc);
  tc = tcase_create("domains");
  tcase_add_test(tc, track_untrack);
  tcase_add_test(tc, same_pointer_two_domains);
  tcase_add_test(tc, track_huge_wide_path);
  suite_add_tcase(s, tc);
  tc = tcase_create("traceback");
  tcase_add_test(tc, traceback_names_alloc_here);
  tcase_add_test(tc, fork_with_events_pending);
  tcase_add_test(tc, traceback_one_frame_names_alloc_here);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  /* Every test starts from a process that never traced. */
  srunner_set_fork_status(sr, CK_FORK);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
