/* test_threads.c - exact totals under concurrent allocation, allocation in
 * thread teardown (pthread_key destructors), and fork from a threaded parent. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "heapsnap.h"
#include "interpose_util.h"

/* Small stacks: glibc caches up to 40 MiB of thread stacks and frees a
 * stack's TLS blocks (allocated through malloc, so traced) only when it
 * evicts one; with 8 MiB stacks that eviction would move the totals. */
static void small_stack_attr(pthread_attr_t *a) {
  ck_assert_int_eq(pthread_attr_init(a), 0);
  ck_assert_int_eq(pthread_attr_setstacksize(a, 512 * 1024), 0);
}

static uint64_t xorshift(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

/* ---- 8 threads, mixed operations, exact totals ---- */

#define MIX_THREADS 8
#define MIX_OPS 100000
#define MIX_WINDOW 256

typedef struct {
  int id;
  size_t live_sum; /* requested bytes of this thread's live blocks */
  int bad;         /* an allocation failed or contents were wrong */
} mix_arg_t;

static pthread_barrier_t mix_bar;

static void *mix_thread(void *v) {
  mix_arg_t *a = v;
  unsigned char *ptr[MIX_WINDOW] = {0};
  size_t size[MIX_WINDOW] = {0};
  uint64_t rng = 0x9E3779B97F4A7C15ull * (uint64_t)(a->id + 1);
  pthread_barrier_wait(&mix_bar); /* main has read the baseline */
  for (int op = 0; op < MIX_OPS; op++) {
    uint64_t r = xorshift(&rng);
    int k = (int)(r % MIX_WINDOW);
    size_t n = (size_t)((r >> 16) % 4096) + 1;
    unsigned kind = (unsigned)((r >> 32) % 4);
    if (ptr[k] && kind == 3) {
      free(ptr[k]);
      ptr[k] = NULL;
      continue;
    }
    if (ptr[k] && kind == 2) {
      unsigned char *q = realloc(ptr[k], n);
      if (!q) {
        a->bad = 1;
        continue;
      }
      if (q[0] != (unsigned char)k)
        a->bad = 1;
      q[0] = (unsigned char)k;
      ptr[k] = q;
      size[k] = n;
      continue;
    }
    if (ptr[k])
      free(ptr[k]);
    ptr[k] = kind == 1 ? calloc(1, n) : malloc(n);
    if (!ptr[k]) {
      a->bad = 1;
      continue;
    }
    ptr[k][0] = (unsigned char)k;
    size[k] = n;
  }
  a->live_sum = 0;
  for (int k = 0; k < MIX_WINDOW; k++)
    if (ptr[k])
      a->live_sum += size[k];
  pthread_barrier_wait(&mix_bar); /* main reads current */
  pthread_barrier_wait(&mix_bar);
  for (int k = 0; k < MIX_WINDOW; k++)
    free(ptr[k]);
  pthread_barrier_wait(&mix_bar); /* main reads current again */
  return NULL;
}

START_TEST(threads_mixed_exact_totals) {
  ck_assert_int_eq(hs_start(16), 0);
  pthread_attr_t attr;
  small_stack_attr(&attr);
  ck_assert_int_eq(pthread_barrier_init(&mix_bar, NULL, MIX_THREADS + 1), 0);
  pthread_t th[MIX_THREADS];
  mix_arg_t args[MIX_THREADS];
  memset(args, 0, sizeof args);
  for (int t = 0; t < MIX_THREADS; t++) {
    args[t].id = t;
    ck_assert_int_eq(pthread_create(&th[t], &attr, mix_thread, &args[t]), 0);
  }
  /* After pthread_create: thread creation's own (traced) TLS allocations
   * are part of the baseline. */
  size_t base = hs_t_current();
  pthread_barrier_wait(&mix_bar);
  pthread_barrier_wait(&mix_bar);
  size_t loaded = hs_t_current();
  size_t want = base;
  for (int t = 0; t < MIX_THREADS; t++)
    want += args[t].live_sum;
  hs_stats_t st;
  hs_get_stats(&st, sizeof st);
  pthread_barrier_wait(&mix_bar);
  pthread_barrier_wait(&mix_bar);
  size_t drained = hs_t_current();
  for (int t = 0; t < MIX_THREADS; t++)
    ck_assert_int_eq(pthread_join(th[t], NULL), 0);
  pthread_barrier_destroy(&mix_bar);
  pthread_attr_destroy(&attr);
  for (int t = 0; t < MIX_THREADS; t++)
    ck_assert_msg(!args[t].bad, "thread %d saw a failed allocation", t);
  ck_assert_uint_eq(st.dropped_traces, 0);
  ck_assert_msg(loaded == want,
                "current %zu with all threads parked, live sum %zu (diff %lld)",
                loaded, want, (long long)(loaded - want));
  ck_assert_msg(drained == base, "current %zu after freeing all, baseline %zu",
                drained, base);
}
END_TEST

/* ---- allocation during thread teardown ---- */

#define TD_THREADS 8
#define TD_FINAL 77
static pthread_key_t td_key;
static void *td_final[TD_THREADS];
static _Thread_local int td_index = -1;
static _Thread_local void *td_tls_block; /* freed by the key destructor */
static atomic_int td_rounds;

/* Round 1 frees the thread's block and re-arms the key with a fresh one,
 * so glibc calls the destructor again; round 2 frees that and leaves one
 * block behind for the main thread to account for. */
static void td_destructor(void *v) {
  int round = atomic_fetch_add(&td_rounds, 1);
  (void)round;
  free(v);
  if (td_tls_block) {
    free(td_tls_block);
    td_tls_block = NULL;
    void *again = malloc(33);
    pthread_setspecific(td_key, again);
    return;
  }
  td_final[td_index] = malloc(TD_FINAL);
}

static pthread_barrier_t td_bar;

static void *td_thread(void *v) {
  td_index = (int)(intptr_t)v;
  pthread_barrier_wait(&td_bar);
  td_tls_block = malloc(500);
  pthread_setspecific(td_key, malloc(200));
  void *tmp[1000];
  for (int k = 0; k < 1000; k++)
    tmp[k] = malloc((size_t)k % 300 + 1);
  for (int k = 0; k < 1000; k++)
    free(tmp[k]);
  return NULL;
}

START_TEST(allocation_in_key_destructors) {
  ck_assert_int_eq(hs_start(16), 0);
  ck_assert_int_eq(pthread_key_create(&td_key, td_destructor), 0);
  pthread_attr_t attr;
  small_stack_attr(&attr);
  ck_assert_int_eq(pthread_barrier_init(&td_bar, NULL, TD_THREADS + 1), 0);
  pthread_t th[TD_THREADS];
  for (int t = 0; t < TD_THREADS; t++)
    ck_assert_int_eq(
        pthread_create(&th[t], &attr, td_thread, (void *)(intptr_t)t), 0);
  size_t base = hs_t_current();
  pthread_barrier_wait(&td_bar);
  for (int t = 0; t < TD_THREADS; t++)
    ck_assert_int_eq(pthread_join(th[t], NULL), 0);
  size_t after = hs_t_current();
  pthread_barrier_destroy(&td_bar);
  pthread_attr_destroy(&attr);
  ck_assert_int_eq(atomic_load(&td_rounds), 2 * TD_THREADS);
  for (int t = 0; t < TD_THREADS; t++) {
    ck_assert_ptr_nonnull(td_final[t]);
    ck_assert_int_ge(hs_t_frames(td_final[t]), 1);
  }
  ck_assert_msg(after == base + TD_THREADS * TD_FINAL,
                "current %zu after teardown, expected %zu", after,
                base + TD_THREADS * TD_FINAL);
  for (int t = 0; t < TD_THREADS; t++)
    free(td_final[t]);
  ck_assert_uint_eq(hs_t_current(), base);
}
END_TEST

/* ---- fork from a threaded parent ---- */

#define FORK_HAMMERS 4
#define FORK_CHILDREN 50
static atomic_int hammer_stop;

/* Allocates at recursion depth d: each depth is a distinct stack, so the
 * blocks spread over the stack shards as well as the trace shards. */
static __attribute__((noinline)) void *alloc_at_depth(int d, size_t n) {
  if (d <= 0)
    return malloc(n);
  void *p = alloc_at_depth(d - 1, n);
  hs_t_escape(p);
  return p;
}

/* Three threads allocate and free at varying depths; the last one also
 * clears the traces now and then, which holds every table lock for a
 * while: a fork landing then must still give the child usable tables. */
static void *hammer(void *v) {
  uintptr_t id = (uintptr_t)v;
  uint64_t rng = id * 0x2545F4914F6CDD1Dull + 1;
  void *win[64] = {0};
  for (unsigned long it = 0;
       !atomic_load_explicit(&hammer_stop, memory_order_relaxed); it++) {
    uint64_t r = xorshift(&rng);
    int k = (int)(r % 64);
    free(win[k]);
    if ((r >> 40) % 5 == 0)
      win[k] = calloc(4, (size_t)(r >> 8) % 512 + 1);
    else
      win[k] = alloc_at_depth((int)((r >> 20) % 24), (size_t)(r >> 8) % 2048 + 1);
    if (id == FORK_HAMMERS && it % 64 == 0)
      hs_clear_traces();
  }
  for (int k = 0; k < 64; k++)
    free(win[k]);
  return NULL;
}

/* Exit codes name what the child found wrong. */
static __attribute__((noinline)) int child_body(void) {
  if (hs_is_tracing() != 1)
    return 2;
  size_t before = hs_t_current();
  char *p = malloc(hs_t_opaque(123));
  if (!p)
    return 3;
  memset(p, 7, 123);
  if (hs_t_frames(p) < 1)
    return 4;
  if (hs_t_current() != before + 123)
    return 5;
  free(p);
  if (hs_t_current() != before)
    return 6;
  /* Touch every shard: a lock held by a parent thread at fork() would
   * hang here (and the parent's timeout turns that into a failure). */
  enum { N = 1024 };
  static void *blk[N];
  size_t sum = 0;
  for (int k = 0; k < N; k++) {
    blk[k] = alloc_at_depth(k % 64, (size_t)k + 1);
    sum += (size_t)k + 1;
  }
  for (int k = 0; k < N; k++)
    if (!blk[k] || hs_t_frames(blk[k]) < 1)
      return 7;
  if (hs_t_current() != before + sum)
    return 8;
  for (int k = 0; k < N; k++)
    free(blk[k]);
  if (hs_t_current() != before)
    return 9;
  return 0;
}

/* Waits for pid up to timeout_ms; a child that hangs is killed and
 * reported, never left to hang the test. Returns the wait status or -1. */
static int wait_with_timeout(pid_t pid, int timeout_ms) {
  struct timespec tick = {0, 1000000};
  for (int waited = 0; waited < timeout_ms; waited++) {
    int st;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid)
      return st;
    if (r < 0 && errno != EINTR)
      return -2;
    nanosleep(&tick, NULL);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  return -1;
}

START_TEST(fork_in_threaded_parent) {
  ck_assert_int_eq(hs_start(16), 0);
  atomic_store(&hammer_stop, 0);
  pthread_t th[FORK_HAMMERS];
  for (int t = 0; t < FORK_HAMMERS; t++)
    ck_assert_int_eq(
        pthread_create(&th[t], NULL, hammer, (void *)(uintptr_t)(t + 1)), 0);
  int hung = -1, failed = 0, last_status = 0, first_bad = -1, forked = 0;
  for (int c = 0; c < FORK_CHILDREN && hung < 0; c++) {
    pid_t pid = fork();
    if (pid == 0) {
      alarm(20); /* a child that deadlocks dies even if the parent does */
      _exit(child_body());
    }
    if (pid < 0) {
      failed++;
      continue;
    }
    forked++;
    /* One hang is enough to fail; stopping there keeps the test well
     * inside Check's own timeout. */
    int st = wait_with_timeout(pid, 5000);
    if (st == -1)
      hung = c;
    if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      failed++;
      last_status = st;
      if (first_bad < 0)
        first_bad = c;
    }
    struct timespec gap = {0, 200000}; /* let the hammers get going */
    nanosleep(&gap, NULL);
  }
  atomic_store(&hammer_stop, 1);
  for (int t = 0; t < FORK_HAMMERS; t++)
    ck_assert_int_eq(pthread_join(th[t], NULL), 0);
  ck_assert_msg(hung < 0,
                "child #%d hung for 5 s (deadlock after fork: a lock held "
                "by another parent thread stayed held in the child)",
                hung);
  ck_assert_int_eq(forked, FORK_CHILDREN);
  ck_assert_msg(failed == 0,
                "%d of %d children failed; first #%d, wait status 0x%x "
                "(exit %d, signal %d)",
                failed, FORK_CHILDREN, first_bad, last_status,
                WIFEXITED(last_status) ? WEXITSTATUS(last_status) : -1,
                WIFSIGNALED(last_status) ? WTERMSIG(last_status) : -1);
}
END_TEST

/* ---- a failed realloc racing hs_clear_traces ---- */

static atomic_int race_stop;
static atomic_long race_iters;
static void *volatile race_block;
static atomic_int race_succeeded;

/* Fails every time, slowly: past the 47-bit address space, so glibc tries
 * mmap and brk before giving up, which widens the window in which the
 * interposer has removed the old trace and not yet put it back. */
static void *realloc_failer(void *v) {
  (void)v;
  while (!atomic_load_explicit(&race_stop, memory_order_relaxed)) {
    void *r = realloc(race_block, hs_t_opaque((size_t)1 << 47));
    if (r) {
      race_block = r;
      atomic_store(&race_succeeded, 1);
    }
    atomic_fetch_add(&race_iters, 1);
  }
  return NULL;
}

/* hs_clear_traces forgets every block allocated before it. A realloc that
 * fails must put back the old trace only if no start/stop/clear happened
 * meanwhile; otherwise the block reappears in the cleared table, with a
 * stack id from the previous generation. */
START_TEST(failed_realloc_racing_clear) {
  ck_assert_int_eq(hs_start(16), 0);
  race_block = malloc(hs_t_opaque(64));
  ck_assert_ptr_nonnull(race_block);
  pthread_t th;
  ck_assert_int_eq(pthread_create(&th, NULL, realloc_failer, NULL), 0);
  int resurrected = 0, rounds = 0;
  size_t cur_seen = 0;
  int frames_seen = 0;
  /* 20,000 rounds take 1-6 s, and over a minute beside CPU hogs, where
   * each yield can wait a whole time slice: past 1,000 rounds the loop
   * also stops after 20 s. That bounds the attempts, not the verdict. */
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (; rounds < 20000 && !resurrected; rounds++) {
    if (rounds >= 1000 && rounds % 100 == 0) {
      clock_gettime(CLOCK_MONOTONIC, &t1);
      if (t1.tv_sec - t0.tv_sec >= 20)
        break;
    }
    /* Re-arm: hs_track on domain 0 gives the block a fresh trace. */
    (void)hs_track(0, (uintptr_t)race_block, 64);
    /* The waits yield: on a busy machine a bare spin holds the CPU the
     * realloc thread needs, and 20,000 rounds then outlast the timeout. */
    long it = atomic_load(&race_iters);
    while (atomic_load(&race_iters) < it + 1)
      sched_yield();
    hs_clear_traces();
    it = atomic_load(&race_iters);
    while (atomic_load(&race_iters) < it + 2)
      sched_yield(); /* the realloc in flight during the clear has returned */
    frames_seen = hs_t_frames(race_block);
    cur_seen = hs_t_current();
    if (frames_seen != HS_ENOTFOUND || cur_seen != 0)
      resurrected = 1;
  }
  atomic_store(&race_stop, 1);
  ck_assert_int_eq(pthread_join(th, NULL), 0);
  free(race_block);
  ck_assert_int_eq(atomic_load(&race_succeeded), 0);
  ck_assert_msg(!resurrected,
                "round %d: a block allocated before hs_clear_traces() is "
                "traced again after it (traceback %d, current %zu): the "
                "failed realloc re-inserted its old trace into the new "
                "generation",
                rounds, frames_seen, cur_seen);
}
END_TEST

int main(void) {
  Suite *s = suite_create("interpose_threads");
  TCase *tc = tcase_create("threads");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, threads_mixed_exact_totals);
  tcase_add_test(tc, allocation_in_key_destructors);
  tcase_add_test(tc, fork_in_threaded_parent);
  suite_add_tcase(s, tc);
  /* Its own case: a round is three failing reallocs of the other thread
   * and a clear, each a yield apart, so its length is the scheduler's. */
  TCase *race = tcase_create("realloc_clear");
  tcase_set_timeout(race, 120);
  tcase_add_test(race, failed_realloc_racing_clear);
  suite_add_tcase(s, race);
  SRunner *sr = srunner_create(s);
  srunner_set_fork_status(sr, CK_FORK);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
