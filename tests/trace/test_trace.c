/* test_trace.c - the trace tables without the interposer: interning,
 * insert/remove/replace, totals, domains, and concurrent use with
 * start/stop/clear racing. Runs under ASan, UBSan and TSan. */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>

#include "heapsnap.h"
#include "trace/trace.h"
#include "unwind/unwind.h"

static uintptr_t fake(unsigned i) { return 0x10000u + (uintptr_t)i * 16u; }

static size_t cur(void) {
  size_t c;
  hs_get_traced_memory(&c, NULL);
  return c;
}

static void setup(void) { ck_assert_int_eq(hs_start(8), 0); }
static void teardown(void) { hs_stop(); }

START_TEST(intern_dedups) {
  uintptr_t a[3] = {1, 2, 3}, b[3] = {1, 2, 4};
  uint32_t ia, ia2, ib;
  unsigned s = hs__state_now();
  ck_assert_int_eq(hs__stack_intern(a, 3, s, &ia, NULL), 0);
  ck_assert_int_eq(hs__stack_intern(b, 3, s, &ib, NULL), 0);
  ck_assert_int_eq(hs__stack_intern(a, 3, s, &ia2, NULL), 0);
  ck_assert_uint_eq(ia, ia2);
  ck_assert_uint_ne(ia, ib);
  ck_assert_uint_eq(hs__stack_count(), 2);
  uintptr_t out[8];
  ck_assert_int_eq(hs__stack_get(ib, out, 8), 3);
  ck_assert_uint_eq(out[2], 4);
  /* A prefix is a different stack. */
  ck_assert_int_eq(hs__stack_intern(a, 2, s, &ib, NULL), 0);
  ck_assert_uint_ne(ia, ib);
  /* A stale state is refused. */
  ck_assert_int_eq(hs__stack_intern(a, 3, s + 2, &ia2, NULL), HS_ENOTTRACING);
}
END_TEST

START_TEST(many_stacks_and_traces) {
  unsigned s = hs__state_now();
  enum { N = 200000 };
  for (unsigned i = 0; i < N; i++) {
    uintptr_t f[2] = {i, i * 7u};
    uint32_t id;
    ck_assert_int_eq(hs__stack_intern(f, 2, s, &id, NULL), 0);
    ck_assert_int_eq(hs__traces_insert(0, fake(i), i % 100 + 1, id, s), 0);
  }
  ck_assert_uint_eq(hs__stack_count(), N);
  ck_assert_uint_eq(hs__traces_count(), N);
  size_t expect = 0;
  for (unsigned i = 0; i < N; i++)
    expect += i % 100 + 1;
  ck_assert_uint_eq(cur(), expect);
  /* Every stack still resolves to what was interned. */
  for (unsigned i = 0; i < N; i += 997) {
    uint32_t id;
    size_t size;
    ck_assert(hs__traces_lookup(0, fake(i), &size, &id));
    ck_assert_uint_eq(size, i % 100 + 1);
    uintptr_t f[4];
    ck_assert_int_eq(hs__stack_get(id, f, 4), 2);
    ck_assert_uint_eq(f[0], i);
    ck_assert_uint_eq(f[1], i * 7u);
  }
  /* Remove every other one; the rest must stay findable (backward shift). */
  for (unsigned i = 0; i < N; i += 2)
    ck_assert(hs__traces_remove(0, fake(i), NULL, NULL));
  for (unsigned i = 0; i < N; i++)
    ck_assert_int_eq(hs__traces_lookup(0, fake(i), NULL, NULL), (int)(i & 1));
  ck_assert_uint_eq(hs__traces_count(), N / 2);
}
END_TEST

START_TEST(replace_and_domains) {
  unsigned s = hs__state_now();
  uintptr_t f[1] = {42};
  uint32_t id;
  ck_assert_int_eq(hs__stack_intern(f, 1, s, &id, NULL), 0);
  ck_assert_int_eq(hs__traces_insert(0, 0x5000, 100, id, s), 0);
  ck_assert_int_eq(hs__traces_insert(0, 0x5000, 30, id, s), 0);
  ck_assert_uint_eq(cur(), 30);
  ck_assert_int_eq(hs__traces_insert(3, 0x5000, 7, id, s), 0);
  ck_assert_uint_eq(cur(), 37);
  /* Sizes of 1 TiB and more do not fit the packed slot. */
  size_t huge = (size_t)1 << 41;
  ck_assert_int_eq(hs__traces_insert(0, 0x5000, huge, id, s), 0);
  ck_assert_uint_eq(cur(), huge + 7);
  ck_assert_uint_eq(hs__traces_count(), 2);
  ck_assert_int_eq(hs__traces_insert(0, 0x5000, 5, id, s), 0);
  ck_assert_uint_eq(cur(), 12);
  ck_assert(hs__traces_remove(3, 0x5000, NULL, NULL));
  ck_assert(!hs__traces_remove(3, 0x5000, NULL, NULL));
  ck_assert(hs__traces_remove(0, 0x5000, NULL, NULL));
  ck_assert_uint_eq(cur(), 0);
  /* NULL pointers are legal in domains. */
  ck_assert_int_eq(hs__traces_insert(9, 0, 11, id, s), 0);
  ck_assert_uint_eq(cur(), 11);
  size_t peak;
  hs_get_traced_memory(NULL, &peak);
  ck_assert_uint_ge(peak, huge);
  hs_reset_peak();
  hs_get_traced_memory(NULL, &peak);
  ck_assert_uint_eq(peak, 11);
}
END_TEST

static int fail_all(size_t n) {
  (void)n;
  return 1;
}

START_TEST(drop_when_out_of_memory) {
  hs_stats_t st;
  hs__mem_fail_hook = fail_all;
  hs__guard++;
  int dummy;
  hs__record_alloc(&dummy, 123, (uintptr_t)__builtin_return_address(0));
  hs__guard--;
  hs__mem_fail_hook = NULL;
  hs_get_stats(&st);
  ck_assert_uint_eq(st.dropped_traces, 1);
  ck_assert_uint_eq(st.dropped_bytes, 123);
  ck_assert_uint_eq(cur(), 0);
}
END_TEST

/* ---- concurrency: threads record and free while control calls race ---- */
enum { THREADS = 4, OPS = 40000, WIN = 64 };
#ifdef __SANITIZE_THREAD__
/* libunwind's per-thread cache destructor locks a mutex after TSan has
 * torn the exiting thread down; one frame needs no unwinding, and the
 * tables under test are the same. */
#define THREAD_FRAMES 1
#else
#define THREAD_FRAMES 8
#endif
static void thread_setup(void) { ck_assert_int_eq(hs_start(THREAD_FRAMES), 0); }

static void *worker(void *arg) {
  unsigned seed = (unsigned)(uintptr_t)arg;
  uintptr_t live[WIN] = {0};
  hs__guard++;
  for (int i = 0; i < OPS; i++) {
    seed = seed * 1103515245u + 12345u;
    int k = (int)((seed >> 8) % WIN);
    if (live[k])
      hs__record_free((void *)live[k]);
    live[k] = ((uintptr_t)arg << 32) | ((uintptr_t)i << 4) | 0x10;
    hs__record_alloc((void *)live[k], (seed >> 4) % 512 + 1,
                     (uintptr_t)__builtin_return_address(0));
  }
  for (int k = 0; k < WIN; k++)
    if (live[k])
      hs__record_free((void *)live[k]);
  hs__guard--;
  return NULL;
}

START_TEST(threads_exact_totals) {
  pthread_t t[THREADS];
  for (uintptr_t i = 0; i < THREADS; i++)
    pthread_create(&t[i], NULL, worker, (void *)(i + 1));
  for (int i = 0; i < THREADS; i++)
    pthread_join(t[i], NULL);
  ck_assert_uint_eq(cur(), 0);
  ck_assert_uint_eq(hs__traces_count(), 0);
}
END_TEST

static atomic_int workers_done;
static void *counted_worker(void *arg) {
  worker(arg);
  atomic_fetch_add(&workers_done, 1);
  return NULL;
}

START_TEST(threads_race_control) {
  pthread_t t[THREADS];
  atomic_store(&workers_done, 0);
  for (uintptr_t i = 0; i < THREADS; i++)
    pthread_create(&t[i], NULL, counted_worker, (void *)(i + 1));
  /* The control calls run on this thread: it never exits, so libunwind's
   * thread-exit destructor (see THREAD_FRAMES) does not run under TSan. */
  for (int i = 0; atomic_load(&workers_done) < THREADS; i++) {
    switch (i % 4) {
    case 0:
      hs_clear_traces();
      break;
    case 1:
      hs_stop();
      break;
    case 2:
      hs_start(THREAD_FRAMES == 1 ? 1 : 4 + i % 12);
      break;
    default: {
      size_t c, p;
      hs_get_traced_memory(&c, &p);
      hs_stats_t st;
      hs_get_stats(&st);
    }
    }
  }
  for (int i = 0; i < THREADS; i++)
    pthread_join(t[i], NULL);
  /* Whatever interleaving happened, every trace was freed again. */
  hs_start(THREAD_FRAMES);
  ck_assert_uint_eq(cur(), 0);
  ck_assert_uint_eq(hs__traces_count(), 0);
}
END_TEST

START_TEST(unwind_skips_own_frames) {
  uintptr_t f[8];
  uintptr_t me = (uintptr_t)__builtin_return_address(0);
  int n = hs__unwind_capture(f, 8, me);
  ck_assert_int_ge(n, 1);
  ck_assert_uint_eq(f[0], me);
  ck_assert_int_eq(hs__unwind_capture(f, 1, me), 1);
  ck_assert_uint_eq(f[0], me);
}
END_TEST

/* ---- sampling's fast paths: the mode hint, the filter, the guard ---- */

START_TEST(fast_mode_follows_state) {
  hs__fast_allow();
  ck_assert_uint_eq(hs__fast_now(), HS_FAST_OFF);
  ck_assert_int_eq(hs_set_sample_rate(4096, 1), 0);
  ck_assert_int_eq(hs_start(4), 0);
  ck_assert_uint_eq(hs__fast_now(), HS_FAST_SAMPLED);
  hs_clear_traces();
  ck_assert_uint_eq(hs__fast_now(), HS_FAST_SAMPLED);
  hs_stop();
  ck_assert_uint_eq(hs__fast_now(), HS_FAST_OFF);
  ck_assert_int_eq(hs_set_sample_rate(0, 0), 0);
  ck_assert_int_eq(hs_start(4), 0);
  ck_assert_uint_eq(hs__fast_now(), HS_FAST_NONE);
  hs_stop();
  ck_assert_uint_eq(hs__fast_now(), HS_FAST_OFF);
}
END_TEST

/* Fake, 16-aligned addresses whose filter counter is the one of base. */
static int same_counter(uintptr_t base, uintptr_t *out, int n) {
  int k = 0;
  for (uintptr_t p = base + 16; k < n && p < base + (1ull << 36); p += 16)
    if (hs__filter_slot(p) == hs__filter_slot(base))
      out[k++] = p;
  return k;
}

START_TEST(filter_pins_survive_clears) {
  uintptr_t pinned = fake(7), other = fake(1000);
  ck_assert_ptr_ne(hs__filter_slot(pinned), hs__filter_slot(other));
  hs__filter_pin(pinned);
  ck_assert_int_eq(hs_set_sample_rate(4096, 1), 0);
  for (int round = 0; round < 2; round++) {
    ck_assert_int_eq(hs_start(4), 0);
    ck_assert_int_eq(hs__traces_may_hold(pinned), 1);
    ck_assert_int_eq(hs__traces_may_hold(other), 0);
    unsigned s = hs__state_now();
    uint32_t id;
    uintptr_t f[1] = {42};
    ck_assert_int_eq(hs__stack_intern(f, 1, s, &id, NULL), 0);
    ck_assert_int_eq(hs__traces_insert(0, other, 32, id, s), 0);
    ck_assert_int_eq(hs__traces_may_hold(other), 1);
    hs_clear_traces();
    ck_assert_int_eq(hs__traces_may_hold(other), 0);
    ck_assert_int_eq(hs__traces_may_hold(pinned), 1);
    /* A pinned pointer is looked up, and found absent. */
    ck_assert_int_eq(hs__traces_remove(0, pinned, NULL, NULL), 0);
    hs_stop();
  }
  ck_assert_int_eq(hs_set_sample_rate(0, 0), 0);
}
END_TEST

START_TEST(filter_counter_saturates) {
  enum { N = 300 };
  static uintptr_t p[N + 1];
  ck_assert_int_eq(same_counter(fake(3), p, N + 1), N + 1);
  ck_assert_int_eq(hs_set_sample_rate(4096, 1), 0);
  ck_assert_int_eq(hs_start(4), 0);
  unsigned s = hs__state_now();
  uint32_t id;
  uintptr_t f[1] = {42};
  ck_assert_int_eq(hs__stack_intern(f, 1, s, &id, NULL), 0);
  for (int i = 0; i < N; i++)
    ck_assert_int_eq(hs__traces_insert(0, p[i], 16, id, s), 0);
  ck_assert_uint_eq(atomic_load(hs__filter_slot(p[0])), 255);
  ck_assert_uint_eq(cur(), (size_t)N * 16);
  /* Once saturated the counter cannot tell when its last block goes, so
   * it keeps sending frees to the table, which stays exact. */
  for (int i = 0; i < N; i++)
    ck_assert_int_eq(hs__traces_remove(0, p[i], NULL, NULL), 1);
  ck_assert_uint_eq(cur(), 0);
  ck_assert_int_eq(hs__traces_may_hold(p[N]), 1);
  ck_assert_int_eq(hs__traces_remove(0, p[N], NULL, NULL), 0);
  /* A clear starts the filter afresh. */
  hs_clear_traces();
  ck_assert_int_eq(hs__traces_may_hold(p[N]), 0);
  hs_stop();
  ck_assert_int_eq(hs_set_sample_rate(0, 0), 0);
}
END_TEST

START_TEST(guard_puts_back_sample_bytes) {
  hs__sample_left = 1000;
  hs__guard_enter();
  hs__sample_left -= 300;
  hs__guard_enter();
  hs__sample_left -= 5;
  hs__guard_exit();
  ck_assert_int_eq(hs__sample_left, 695);
  hs__guard_exit();
  ck_assert_int_eq(hs__sample_left, 1000);
  ck_assert_int_eq(hs__guard, 0);
}
END_TEST

int main(void) {
  Suite *s = suite_create("trace");
  TCase *tc = tcase_create("tables");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, intern_dedups);
  tcase_add_test(tc, many_stacks_and_traces);
  tcase_add_test(tc, replace_and_domains);
  tcase_add_test(tc, drop_when_out_of_memory);
  tcase_add_test(tc, unwind_skips_own_frames);
  suite_add_tcase(s, tc);
  TCase *tt = tcase_create("threads");
  tcase_set_timeout(tt, 120);
  tcase_add_checked_fixture(tt, thread_setup, teardown);
  tcase_add_test(tt, threads_exact_totals);
  tcase_add_test(tt, threads_race_control);
  suite_add_tcase(s, tt);
  TCase *ts = tcase_create("sampling");
  tcase_set_timeout(ts, 60);
  tcase_add_test(ts, fast_mode_follows_state);
  tcase_add_test(ts, filter_pins_survive_clears);
  tcase_add_test(ts, filter_counter_saturates);
  tcase_add_test(ts, guard_puts_back_sample_bytes);
  suite_add_tcase(s, ts);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
