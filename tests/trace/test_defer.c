/* test_defer.c - deferred table updates (defer.c) without the interposer:
 * heap events go through the ring and are applied in number order by the
 * applier thread or by whoever needs the table next; every public read
 * drains the ring first, so the totals seen by these tests must be exact.
 * Only fake, 16-aligned addresses are recorded, never real blocks, so the
 * suite runs under ASan, UBSan and TSan. The fixtures run the default
 * mode, HEAPSNAP_DEFER=2 (the ring, and an applier thread given a second
 * CPU); the tests that choose another mode put 2 back, and so do the
 * teardowns, for CK_FORK=no. */
#define _GNU_SOURCE /* sched_getaffinity */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#if defined(SYS_membarrier)
#include <linux/membarrier.h>
#endif

#include "heapsnap.h"
#include "runtime/runtime.h"
#include "trace/trace.h"

static uintptr_t fake(unsigned i) { return 0x10000u + (uintptr_t)i * 16u; }

static size_t cur(void) {
  size_t c;
  hs_get_traced_memory(&c, NULL);
  return c;
}

/* Records an allocation the way the interposer does: the state read first,
 * and only while it says tracing. */
static int rec_alloc(uintptr_t p, size_t size, uintptr_t f0, uintptr_t f1) {
  uintptr_t fr[2] = {f0, f1};
  hs__guard_enter();
  unsigned s = hs__state_now();
  int rc = HS_ENOTTRACING;
  if (hs__state_tracing(s))
    rc = hs__record_frames(s, 0, p, size, fr, 2, NULL);
  hs__guard_exit();
  return rc;
}

static void rec_free(uintptr_t p) {
  hs__guard_enter();
  hs__record_free((void *)p);
  hs__guard_exit();
}

/* The table holds the n traces at fake(0..n), sum bytes in all; frees
 * them, and it is empty. */
static void expect_then_free(unsigned n, size_t sum) {
  ck_assert_uint_eq(hs__traces_count(), n);
  ck_assert_uint_eq(cur(), sum);
  for (unsigned i = 0; i < n; i++)
    rec_free(fake(i));
  ck_assert_uint_eq(hs__traces_count(), 0);
  ck_assert_uint_eq(cur(), 0);
}

static void setup(void) {
  hs__defer_configure(2);
  ck_assert_int_eq(hs_set_sample_rate(0, 0), 0);
  ck_assert_int_eq(hs_start(8), 0);
}
static void teardown(void) {
  hs_stop();
  hs__defer_configure(2);
}

static uint64_t dropped(void) {
  hs_stats_t st;
  hs_get_stats(&st, sizeof st);
  return st.dropped_traces;
}

/* ---- 1. the ring, wrapped several times, gives exact totals ---- */
START_TEST(deferred_mode_is_on) {
  enum { N = 100000, STACKS = 4096 }; /* more than the 65536-event ring */
  ck_assert_int_eq(hs__defer_on, 1);
  size_t sum = 0;
  for (unsigned i = 0; i < N; i++) {
    size_t size = i % 1000 + 1;
    ck_assert_int_eq(rec_alloc(fake(i), size, 0x1000 + i % STACKS, 0x77), 0);
    sum += size;
  }
  ck_assert_uint_eq(cur(), sum);
  ck_assert_uint_eq(hs__traces_count(), N);
  size_t peak;
  hs_get_traced_memory(NULL, &peak);
  ck_assert_uint_eq(peak, sum);
  hs_stats_t st;
  hs_get_stats(&st, sizeof st);
  ck_assert_uint_eq(st.live_traces, N);
  ck_assert_uint_eq(st.alloc_calls, N);
  ck_assert_uint_eq(st.dropped_traces, 0);
  ck_assert_uint_eq(st.stacks, STACKS);
  /* Each block kept its own size and stack through the ring. */
  for (unsigned i = 0; i < N; i += 997) {
    size_t size;
    uint32_t id;
    ck_assert(hs__traces_lookup(0, fake(i), &size, &id));
    ck_assert_uint_eq(size, i % 1000 + 1);
    uintptr_t f[4];
    ck_assert_int_eq(hs__stack_get(id, f, 4), 2);
    ck_assert_uint_eq(f[0], 0x1000 + i % STACKS);
    ck_assert_int_eq(hs_get_object_traceback((void *)fake(i), f, 4), 2);
    ck_assert_uint_eq(f[0], 0x1000 + i % STACKS);
  }
  /* A free queued behind its allocation, with no read in between. */
  for (unsigned i = 0; i < N; i++)
    rec_free(fake(i));
  ck_assert_uint_eq(cur(), 0);
  ck_assert_uint_eq(hs__traces_count(), 0);
  /* Interleaved alloc/free/re-alloc of the same addresses, wrapping the
   * ring again: only the last event of each address counts. */
  sum = 0;
  for (unsigned r = 0; r < 3; r++)
    for (unsigned i = 0; i < N; i++) {
      if (r)
        rec_free(fake(i));
      ck_assert_int_eq(rec_alloc(fake(i), r * 10 + i % 7 + 1, 0x2000, r), 0);
    }
  for (unsigned i = 0; i < N; i++)
    sum += 2 * 10 + i % 7 + 1;
  expect_then_free(N, sum);
}
END_TEST

/* ---- 2. alloc on one thread, free on another, address reused ---- */
/* 4 producers * 25000 rounds: 200k events. */
enum { PRODUCERS = 4, POOL = 16, HOLD = 8, ROUNDS = 25000 };

/* A small blocking queue of addresses. */
typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  uintptr_t item[PRODUCERS * POOL + 1];
  unsigned head, tail; /* tail - head items */
  int closed;
} queue_t;

static void q_init(queue_t *q) {
  pthread_mutex_init(&q->mu, NULL);
  pthread_cond_init(&q->cv, NULL);
  q->head = q->tail = 0;
  q->closed = 0;
}
static void q_destroy(queue_t *q) {
  pthread_mutex_destroy(&q->mu);
  pthread_cond_destroy(&q->cv);
}
static void q_push(queue_t *q, uintptr_t x) {
  pthread_mutex_lock(&q->mu);
  q->item[q->tail++ % (PRODUCERS * POOL + 1)] = x;
  pthread_cond_signal(&q->cv);
  pthread_mutex_unlock(&q->mu);
}
/* 0 once the queue is closed and empty. */
static uintptr_t q_pop(queue_t *q) {
  pthread_mutex_lock(&q->mu);
  while (q->head == q->tail && !q->closed)
    pthread_cond_wait(&q->cv, &q->mu);
  uintptr_t x = 0;
  if (q->head != q->tail)
    x = q->item[q->head++ % (PRODUCERS * POOL + 1)];
  pthread_mutex_unlock(&q->mu);
  return x;
}
static void q_close(queue_t *q) {
  pthread_mutex_lock(&q->mu);
  q->closed = 1;
  pthread_cond_broadcast(&q->cv);
  pthread_mutex_unlock(&q->mu);
}

static queue_t to_consumer, back[PRODUCERS];
static uintptr_t owner_base(unsigned k) { return fake(1000 + k * 4096); }

typedef struct {
  unsigned id;
  uintptr_t held[HOLD];
  size_t held_size[HOLD];
  unsigned nheld;
  int errors;
} producer_t;

static void *producer(void *arg) {
  producer_t *me = arg;
  uintptr_t pool[POOL];
  unsigned npool = POOL, seed = me->id * 7919u + 1;
  for (unsigned i = 0; i < POOL; i++)
    pool[i] = owner_base(me->id) + i * 16u;
  for (unsigned r = 0; r < ROUNDS; r++) {
    /* Reuse only addresses whose free has returned on the consumer. */
    uintptr_t x = npool ? pool[--npool] : q_pop(&back[me->id]);
    seed = seed * 1103515245u + 12345u;
    size_t size = (seed >> 8) % 4000 + 1;
    if (rec_alloc(x, size, 0x3000 + me->id, (seed >> 20) % 3) != 0)
      me->errors++;
    if ((seed >> 16) % 8 == 0) {
      /* Kept for a while; freed on this thread when its place is needed. */
      if (me->nheld == HOLD) {
        unsigned k = (seed >> 4) % HOLD;
        rec_free(me->held[k]);
        pool[npool++] = me->held[k];
        me->held[k] = x;
        me->held_size[k] = size;
      } else {
        me->held[me->nheld] = x;
        me->held_size[me->nheld++] = size;
      }
    } else {
      q_push(&to_consumer, x);
    }
  }
  return NULL;
}

static void *consumer(void *arg) {
  (void)arg;
  uintptr_t x;
  while ((x = q_pop(&to_consumer)) != 0) {
    rec_free(x);
    unsigned k = (unsigned)((x - owner_base(0)) / (4096 * 16));
    q_push(&back[k], x);
  }
  return NULL;
}

START_TEST(cross_thread_order) {
  ck_assert_int_eq(hs__defer_on, 1);
  q_init(&to_consumer);
  for (unsigned k = 0; k < PRODUCERS; k++)
    q_init(&back[k]);
  producer_t p[PRODUCERS] = {{0}};
  pthread_t pt[PRODUCERS], ct;
  ck_assert_int_eq(pthread_create(&ct, NULL, consumer, NULL), 0);
  for (unsigned k = 0; k < PRODUCERS; k++) {
    p[k].id = k;
    ck_assert_int_eq(pthread_create(&pt[k], NULL, producer, &p[k]), 0);
  }
  /* Reads from a third thread drain the ring while events arrive; no more
   * traces than addresses can ever be live. */
  for (int i = 0; i < 200; i++) {
    ck_assert_uint_le(hs__traces_count(), PRODUCERS * POOL);
    ck_assert_uint_le(cur(), PRODUCERS * POOL * 4000);
    usleep(200);
  }
  for (unsigned k = 0; k < PRODUCERS; k++)
    pthread_join(pt[k], NULL);
  q_close(&to_consumer);
  pthread_join(ct, NULL);
  size_t expect_bytes = 0, expect_n = 0;
  for (unsigned k = 0; k < PRODUCERS; k++) {
    ck_assert_int_eq(p[k].errors, 0);
    expect_n += p[k].nheld;
    for (unsigned i = 0; i < p[k].nheld; i++)
      expect_bytes += p[k].held_size[i];
  }
  ck_assert_uint_gt(expect_n, 0);
  ck_assert_uint_eq(hs__traces_count(), expect_n);
  ck_assert_uint_eq(cur(), expect_bytes);
  for (unsigned k = 0; k < PRODUCERS; k++)
    for (unsigned i = 0; i < p[k].nheld; i++) {
      size_t size;
      ck_assert(hs__traces_lookup(0, p[k].held[i], &size, NULL));
      ck_assert_uint_eq(size, p[k].held_size[i]);
    }
  for (unsigned k = 0; k < PRODUCERS; k++)
    for (unsigned i = 0; i < p[k].nheld; i++)
      rec_free(p[k].held[i]);
  ck_assert_uint_eq(hs__traces_count(), 0);
  ck_assert_uint_eq(cur(), 0);
  q_destroy(&to_consumer);
  for (unsigned k = 0; k < PRODUCERS; k++)
    q_destroy(&back[k]);
}
END_TEST

/* ---- 3. start, stop and clear racing with queued events ---- */
enum { RTHREADS = 4, WIN = 32, ROPS = 20000 };
#ifdef HS_TSAN
enum { CONTROL_OPS = 60 };
#else
enum { CONTROL_OPS = 400 };
#endif
/* The racers run until the control calls are over (and at least ROPS
 * operations each), so that every control call races with them. */
static atomic_int stop_racing;
static atomic_uint_least64_t traced_allocs;

static void *racer(void *arg) {
  unsigned id = (unsigned)(uintptr_t)arg, seed = id * 31u + 7;
  uintptr_t live[WIN] = {0};
  uint64_t traced = 0;
  for (int i = 0; i < ROPS || !atomic_load(&stop_racing); i++) {
#ifdef HS_TSAN
    /* Under TSan a full ring takes a control call ~100 ms to drain. */
    if (!(i & 127))
      usleep(20);
#endif
    seed = seed * 1103515245u + 12345u;
    unsigned k = (seed >> 8) % WIN;
    if (live[k]) {
      /* Half the threads free only while tracing, as the interposer
       * does; the others always. */
      if (!(id & 1) || hs__state_tracing(hs__state_now()))
        rec_free(live[k]);
      live[k] = 0;
    }
    /* Addresses are reused: WIN slots per thread, two generations. */
    uintptr_t x = fake(100000 + id * 4096 + k * 2 + (i & 1));
    traced += rec_alloc(x, (seed >> 4) % 512 + 1, 0x4000 + id, i & 3) == 0;
    live[k] = x;
  }
  for (unsigned k = 0; k < WIN; k++)
    if (live[k])
      rec_free(live[k]);
  atomic_fetch_add(&traced_allocs, traced);
  return NULL;
}

START_TEST(clear_and_restart_races) {
  ck_assert_int_eq(hs__defer_on, 1);
  atomic_store(&stop_racing, 0);
  atomic_store(&traced_allocs, 0);
  pthread_t t[RTHREADS];
  for (uintptr_t i = 0; i < RTHREADS; i++)
    ck_assert_int_eq(pthread_create(&t[i], NULL, racer, (void *)(i + 1)), 0);
  for (int i = 0; i < CONTROL_OPS; i++) {
    switch (i % 5) {
    case 0:
      hs_clear_traces();
      break;
    case 1:
      hs_stop();
      break;
    case 2:
      hs_start(8);
      break;
    case 3: {
      hs_stats_t st;
      hs_get_stats(&st, sizeof st);
      ck_assert_uint_le(st.live_traces, RTHREADS * WIN);
      break;
    }
    default:
      ck_assert_uint_le(hs__traces_count(), RTHREADS * WIN);
      ck_assert_uint_le(cur(), RTHREADS * WIN * 512);
      usleep(100);
    }
    ck_assert_int_eq(hs__defer_on, 1);
  }
  atomic_store(&stop_racing, 1);
  for (int i = 0; i < RTHREADS; i++)
    pthread_join(t[i], NULL);
  ck_assert_uint_gt(atomic_load(&traced_allocs), 0);
  hs_start(8);
  /* Every block was freed: no trace may survive from an older state. */
  ck_assert_uint_eq(hs__traces_count(), 0);
  ck_assert_uint_eq(cur(), 0);
  /* And the ring still works exactly after all those restarts. */
  for (unsigned i = 0; i < 1000; i++)
    ck_assert_int_eq(rec_alloc(fake(i), 3, 0x5000, 0), 0);
  ck_assert_uint_eq(hs__traces_count(), 1000);
  ck_assert_uint_eq(cur(), 3000);
  for (unsigned i = 0; i < 1000; i++)
    rec_free(fake(i));
  ck_assert_uint_eq(hs__traces_count(), 0);
  ck_assert_uint_eq(cur(), 0);
}
END_TEST

/* ---- 4. realloc's pair of events around the real call ---- */
static uintptr_t realloc_result;
static int realloc_errno_in, realloc_errno_out, realloc_calls;
static void *realloc_want_old;
static size_t realloc_want_size;
/* hs_clear_traces() calls made during the real call, as if the thread in
 * realloc lost the CPU (or copied a huge block) while another cleared. */
static int realloc_clears;

static void *fake_realloc(void *old, size_t size) {
  realloc_calls++;
  realloc_errno_in = errno;
  ck_assert_ptr_eq(old, realloc_want_old);
  ck_assert_uint_eq(size, realloc_want_size);
  for (int i = 0; i < realloc_clears; i++)
    hs_clear_traces();
  if (realloc_errno_out)
    errno = realloc_errno_out;
  return (void *)realloc_result;
}

static void *do_realloc(uintptr_t old, size_t size, uintptr_t result,
                        int err) {
  realloc_want_old = (void *)old;
  realloc_want_size = size;
  realloc_result = result;
  realloc_errno_out = err;
  realloc_calls = 0;
  errno = EINTR; /* the caller's errno, to be seen by the real call */
  hs__guard++;
  void *p = hs__realloc_deferred((void *)old, size,
                                 (uintptr_t)__builtin_return_address(0),
                                 fake_realloc);
  hs__guard--;
  ck_assert_int_eq(realloc_calls, 1);
  ck_assert_int_eq(realloc_errno_in, EINTR);
  return p;
}

static int traced(uintptr_t p, size_t *size) {
  return hs__traces_lookup(0, p, size, NULL);
}

START_TEST(realloc_deferred) {
  ck_assert_int_eq(hs__defer_on, 1);
  size_t size;
  uintptr_t a = fake(1), b = fake(2), c = fake(3);
  ck_assert_int_eq(rec_alloc(a, 100, 0x6000, 0), 0);

  /* (a) success, moved: a's trace gone, b's has the new size. */
  ck_assert_ptr_eq(do_realloc(a, 200, b, 0), (void *)b);
  ck_assert_int_eq(errno, EINTR);
  ck_assert(!traced(a, NULL));
  ck_assert(traced(b, &size));
  ck_assert_uint_eq(size, 200);
  ck_assert_uint_eq(hs__traces_count(), 1);
  ck_assert_uint_eq(cur(), 200);
  /* The new trace has realloc's caller as its stack. */
  uintptr_t f[8];
  ck_assert_int_ge(hs_get_object_traceback((void *)b, f, 8), 1);

  /* In place: same address, new size. */
  ck_assert_ptr_eq(do_realloc(b, 50, b, 0), (void *)b);
  ck_assert(traced(b, &size));
  ck_assert_uint_eq(size, 50);
  ck_assert_uint_eq(cur(), 50);

  /* (b) failure: NULL for a non-zero size leaves b allocated, and the
   * real call's errno reaches the caller. */
  ck_assert_ptr_null(do_realloc(b, 1u << 20, 0, ENOMEM));
  ck_assert_int_eq(errno, ENOMEM);
  ck_assert(traced(b, &size));
  ck_assert_uint_eq(size, 50);
  ck_assert_uint_eq(hs__traces_count(), 1);
  ck_assert_uint_eq(cur(), 50);

  /* (c) size 0 returning NULL frees b. */
  ck_assert_ptr_null(do_realloc(b, 0, 0, 0));
  ck_assert(!traced(b, NULL));
  ck_assert_uint_eq(hs__traces_count(), 0);
  ck_assert_uint_eq(cur(), 0);

  /* realloc(NULL, n) is malloc. */
  ck_assert_ptr_eq(do_realloc(0, 64, c, 0), (void *)c);
  ck_assert(traced(c, &size));
  ck_assert_uint_eq(size, 64);

  /* Sizes of 4 GiB and more do not fit an event: immediate insert after
   * the queued free. */
  size_t big = (size_t)1 << 33;
  ck_assert_ptr_eq(do_realloc(c, big, a, 0), (void *)a);
  ck_assert(!traced(c, NULL));
  ck_assert(traced(a, &size));
  ck_assert_uint_eq(size, big);
  ck_assert_uint_eq(cur(), big);
  ck_assert_uint_eq(hs__traces_count(), 1);

  /* An unaligned old block (no event can name it) and an unaligned new
   * one both go through the table directly, still in order. */
  uintptr_t odd = fake(10) + 8, odd2 = fake(11) + 8;
  ck_assert_int_eq(rec_alloc(odd, 7, 0x6001, 0), 0);
  ck_assert_ptr_eq(do_realloc(odd, 9, odd2, 0), (void *)odd2);
  ck_assert(!traced(odd, NULL));
  ck_assert(traced(odd2, &size));
  ck_assert_uint_eq(size, 9);
  ck_assert_ptr_eq(do_realloc(odd2, 11, b, 0), (void *)b);
  ck_assert(!traced(odd2, NULL));
  ck_assert(traced(b, &size));
  ck_assert_uint_eq(size, 11);
  ck_assert_uint_eq(cur(), big + 11);

  /* Moved onto an address just freed by another block's realloc. */
  ck_assert_ptr_eq(do_realloc(a, 30, c, 0), (void *)c);
  ck_assert_ptr_eq(do_realloc(b, 40, a, 0), (void *)a);
  ck_assert(traced(a, &size));
  ck_assert_uint_eq(size, 40);
  ck_assert(traced(c, &size));
  ck_assert_uint_eq(size, 30);
  ck_assert(!traced(b, NULL));
  ck_assert_uint_eq(hs__traces_count(), 2);
  ck_assert_uint_eq(cur(), 70);
  rec_free(a);
  rec_free(c);
  ck_assert_uint_eq(hs__traces_count(), 0);
  ck_assert_uint_eq(cur(), 0);
}
END_TEST

/* ---- 5. immediate mode: HEAPSNAP_DEFER=0, and sampling ---- */
static void exact_totals(unsigned n) {
  size_t sum = 0;
  for (unsigned i = 0; i < n; i++) {
    ck_assert_int_eq(rec_alloc(fake(i), i % 50 + 1, 0x7000, i % 3), 0);
    sum += i % 50 + 1;
  }
  expect_then_free(n, sum);
}

START_TEST(immediate_mode) {
  ck_assert_int_eq(hs__defer_on, 1);
  hs_stop();
  hs__defer_configure(0);
  ck_assert_int_eq(hs_start(8), 0);
  ck_assert_int_eq(hs__defer_on, 0);
  exact_totals(70000);
  hs_stop();
  hs__defer_configure(2);
  ck_assert_int_eq(hs_start(8), 0);
  ck_assert_int_eq(hs__defer_on, 1); /* back to the default */
  exact_totals(70000);

  /* Sampled tracing keeps its filter in allocation order: immediate. */
  hs_stop();
  ck_assert_int_eq(hs_set_sample_rate(65536, 1), 0);
  ck_assert_int_eq(hs_start(8), 0);
  ck_assert_uint_eq(hs_get_sample_rate(), 65536);
  ck_assert_int_eq(hs__defer_on, 0);
  /* hs__record_frames records unconditionally (the sampling decision is
   * the interposer's): still exact, through the table directly. */
  exact_totals(1000);
  hs_stop();
  ck_assert_int_eq(hs_set_sample_rate(0, 0), 0);
  ck_assert_int_eq(hs_start(8), 0);
  ck_assert_int_eq(hs__defer_on, 1);
  exact_totals(1000);
}
END_TEST

/* ---- 6. fork: the child sees every event queued before it ---- */
/* What the interposer registers at load; hs_core alone does not. Once per
 * process: with CK_FORK=no a second registration would run the prepare
 * handler twice, and it takes locks. */
static void register_fork_handlers(void) {
  static int done;
  if (!done)
    ck_assert_int_eq(
        pthread_atfork(hs__runtime_fork_prepare, hs__runtime_fork_parent,
                       hs__runtime_fork_child), 0);
  done = 1;
}

START_TEST(fork_child_consistent) {
  enum { N = 50000 };
  ck_assert_int_eq(hs__defer_on, 1);
  register_fork_handlers();
  size_t sum = 0;
  for (unsigned i = 0; i < N; i++) {
    ck_assert_int_eq(rec_alloc(fake(i), i % 300 + 1, 0x8000, i % 5), 0);
    sum += i % 300 + 1;
  }
  /* No read in between: most events are still in the ring. */
  fflush(NULL);
  pid_t pid = fork();
  ck_assert_int_ne(pid, -1);
  if (pid == 0) {
    int bad = 0;
    hs_stats_t st;
    hs_get_stats(&st, sizeof st);
    if (hs__traces_count() != N || cur() != sum || st.dropped_traces != 0) {
      fprintf(stderr, "child: count %llu (want %d), current %zu (want %zu), "
                      "dropped %llu\n",
              (unsigned long long)hs__traces_count(), N, cur(), sum,
              (unsigned long long)st.dropped_traces);
      bad = 1;
    }
    /* The ring still works in the child, without its applier thread. */
    for (unsigned i = 0; i < N; i++)
      rec_free(fake(i));
    for (unsigned i = 0; i < 100000; i++) {
      (void)rec_alloc(fake(N + i), 2, 0x8001, 0);
      if (i & 1)
        rec_free(fake(N + i));
    }
    if (hs__traces_count() != 50000 || cur() != 100000) {
      fprintf(stderr, "child after: count %llu (want 50000), current %zu "
                      "(want 100000)\n",
              (unsigned long long)hs__traces_count(), cur());
      bad = 1;
    }
    _exit(bad);
  }
  int status;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert(WIFEXITED(status));
  ck_assert_int_eq(WEXITSTATUS(status), 0);
  /* The parent is unaffected by the child's work. */
  ck_assert_uint_eq(hs__traces_count(), N);
  ck_assert_uint_eq(cur(), sum);
  for (unsigned i = 0; i < N; i++)
    rec_free(fake(i));
  ck_assert_uint_eq(hs__traces_count(), 0);
}
END_TEST

/* ---- 7. regressions: bugs found in defer.c, and what the old code did ---- */

/* (a) The event carries only 8 bits of the tracing state's generation. A
 * hook that read the state, and then lost the CPU while 256 (or 512...)
 * starts, stops or clears went by, recorded under a state whose 8 bits
 * match the new one: the old hs__defer_alloc queued it unchecked and
 * apply_one, comparing those 8 bits, inserted it - with a stack id from the
 * stack table that the clears had emptied (hs__stack_get() of it gave -1,
 * or another stack once the id was reused). hs__defer_alloc now compares
 * the whole state once its number is taken, and queues a no-op instead.
 *
 * The stack id comes from this thread's memo of recent stacks, which trusts
 * the state it is given: nothing before defer.c looks at the state again.
 * (Without deferral, hs__traces_insert checks the whole state under the
 * table lock and refuses with HS_ENOTTRACING.) After 1 clear the old code
 * refused too, by those 8 bits; after 256 and 512 it did not. */
START_TEST(generation_wrap_refused) {
  ck_assert(hs__deferring());
  static const unsigned clears[] = {1, 256, 512};
  for (unsigned k = 0; k < sizeof clears / sizeof clears[0]; k++) {
    uintptr_t fr[2] = {0x9000 + k, 0x9100};
    hs__guard++;
    unsigned s0 = hs__state_now();
    /* Interns the stack and fills the memo for (frames, s0). */
    ck_assert_int_eq(hs__record_frames(s0, 0, fake(1), 10, fr, 2, NULL), 0);
    hs__guard--;
    rec_free(fake(1));
    ck_assert_uint_eq(hs__traces_count(), 0);
    for (unsigned i = 0; i < clears[k]; i++)
      hs_clear_traces();
    unsigned s1 = hs__state_now();
    ck_assert(hs__state_tracing(s1));
    ck_assert_uint_ne(s1, s0);
    if (clears[k] % 256 == 0) /* the 8 bits an event carries agree */
      ck_assert_uint_eq((s1 >> 1) & 255, (s0 >> 1) & 255);
    /* The late record of the thread that read s0 before the clears. */
    hs__guard++;
    int rc = hs__record_frames(s0, 0, fake(2), 100, fr, 2, NULL);
    hs__guard--;
    ck_assert(rc == 0 || rc == HS_ENOTTRACING);
    ck_assert(!traced(fake(2), NULL));
    ck_assert_uint_eq(hs__traces_count(), 0);
    ck_assert_uint_eq(cur(), 0);
    /* The same stack recorded under the current state: a fresh id that
     * names it. */
    ck_assert_int_eq(rec_alloc(fake(3), 7, fr[0], fr[1]), 0);
    uint32_t id;
    uintptr_t f[4];
    ck_assert(hs__traces_lookup(0, fake(3), NULL, &id));
    ck_assert_int_eq(hs__stack_get(id, f, 4), 2);
    ck_assert_uint_eq(f[0], fr[0]);
    ck_assert_uint_eq(cur(), 7);
    rec_free(fake(3));
    ck_assert_uint_eq(hs__traces_count(), 0);
  }

  /* The same through realloc, where the state is read (and the stack
   * interned) before the real call and the new block recorded after it:
   * a call spanning 256 clears. The old code inserted the new block, with
   * the stale stack id. */
  uint64_t d0 = dropped();
  ck_assert_int_eq(rec_alloc(fake(4), 40, 0x9200, 0), 0);
  realloc_clears = 256;
  ck_assert_ptr_eq(do_realloc(fake(4), 80, fake(5), 0), (void *)fake(5));
  realloc_clears = 0;
  ck_assert(!traced(fake(4), NULL));
  ck_assert(!traced(fake(5), NULL));
  ck_assert_uint_eq(hs__traces_count(), 0);
  ck_assert_uint_eq(cur(), 0);
  /* A failed one: the old block's trace went with the clears and does
   * not come back (it predates them), nor is it counted as dropped. (The
   * old code got this one right: coverage, not a regression.) */
  ck_assert_int_eq(rec_alloc(fake(6), 60, 0x9201, 0), 0);
  realloc_clears = 256;
  ck_assert_ptr_null(do_realloc(fake(6), 1u << 20, 0, ENOMEM));
  realloc_clears = 0;
  ck_assert(!traced(fake(6), NULL));
  ck_assert_uint_eq(hs__traces_count(), 0);
  ck_assert_uint_eq(cur(), 0);
  ck_assert_uint_eq(dropped(), d0);
}
END_TEST

/* (b) A failed realloc of a block the tracer never saw (allocated before
 * hs_start, say) has no trace to give back. The old code stashed only
 * traced blocks, so the failure found no stash entry and counted a dropped
 * trace each time; the stash now remembers untraced blocks too. */
START_TEST(realloc_failure_untraced_not_dropped) {
  ck_assert(hs__deferring());
  hs_stats_t st0, st;
  hs_get_stats(&st0, sizeof st0);
  for (unsigned i = 0; i < 100; i++) {
    uintptr_t u = fake(50 + i % 10); /* never recorded */
    ck_assert_ptr_null(do_realloc(u, 1u << 20, 0, ENOMEM));
    ck_assert_int_eq(errno, ENOMEM);
    ck_assert(!traced(u, NULL));
  }
  ck_assert_uint_eq(hs__traces_count(), 0);
  ck_assert_uint_eq(cur(), 0);
  hs_get_stats(&st, sizeof st);
  ck_assert_uint_eq(st.dropped_traces, st0.dropped_traces);
  ck_assert_uint_eq(st.dropped_bytes, st0.dropped_bytes);
  /* A traced one comes back whole, nothing dropped either. */
  ck_assert_int_eq(rec_alloc(fake(70), 55, 0x9300, 0), 0);
  ck_assert_ptr_null(do_realloc(fake(70), 1u << 20, 0, ENOMEM));
  size_t size;
  ck_assert(traced(fake(70), &size));
  ck_assert_uint_eq(size, 55);
  ck_assert_uint_eq(cur(), 55);
  ck_assert_uint_eq(dropped(), st0.dropped_traces);
  rec_free(fake(70));
  ck_assert_uint_eq(hs__traces_count(), 0);
}
END_TEST

/* (c) The stash of traces set aside by realloc was looked up by address
 * in the old code, and an entry stayed there when the call succeeded. So:
 * realloc(A) moves A to B (A's trace stashed, never taken back), B is
 * freed, A is handed out again to a block the tracer did not record, and
 * a realloc of it fails - the old code found A's entry of the first call
 * and brought back A's old trace (size 100, a stale stack). The stash is
 * now indexed by the free event's number, which only its own failure
 * names (hs__defer_realloc_free's ticket). */
START_TEST(realloc_stale_stash_not_restored) {
  ck_assert(hs__deferring());
  uint64_t d0 = dropped();
  uintptr_t a = fake(20), b = fake(21);
  size_t size;
  ck_assert_int_eq(rec_alloc(a, 100, 0x9400, 0), 0);
  ck_assert_ptr_eq(do_realloc(a, 200, b, 0), (void *)b);
  rec_free(b);
  ck_assert_uint_eq(hs__traces_count(), 0);
  /* A again, untraced, and its realloc fails. */
  ck_assert_ptr_null(do_realloc(a, 300, 0, ENOMEM));
  ck_assert(!traced(a, NULL));
  ck_assert_uint_eq(hs__traces_count(), 0);
  ck_assert_uint_eq(cur(), 0);
  ck_assert_uint_eq(dropped(), d0);

  /* Traced the second time: its own trace comes back, not the first.
   * (The old code got this one right.) */
  ck_assert_int_eq(rec_alloc(a, 100, 0x9400, 0), 0);
  ck_assert_ptr_eq(do_realloc(a, 200, b, 0), (void *)b);
  rec_free(b);
  ck_assert_int_eq(rec_alloc(a, 77, 0x9401, 0), 0);
  ck_assert_ptr_null(do_realloc(a, 300, 0, ENOMEM));
  ck_assert(traced(a, &size));
  ck_assert_uint_eq(size, 77);
  ck_assert_uint_eq(hs__traces_count(), 1);
  ck_assert_uint_eq(cur(), 77);
  ck_assert_uint_eq(dropped(), d0);
  rec_free(a);

  /* The stash holds 64 entries: a failure reported after 64 later realloc
   * frees (other threads' reallocs during a long real call) finds its
   * entry reused, counts the trace as dropped and restores nothing; after
   * 63 it still finds it. The old code, looking up by address, restored
   * x after 64 as well. */
  for (unsigned between = 63; between <= 64; between++) {
    uintptr_t x = fake(30);
    ck_assert_int_eq(rec_alloc(x, 10, 0x9402, 0), 0);
    ck_assert_int_eq(rec_alloc(fake(31), 20, 0x9403, 0), 0);
    d0 = dropped();
    hs__guard++;
    uint64_t ticket = hs__defer_realloc_free(x, 0);
    ck_assert_uint_ne(ticket, 0);
    for (unsigned i = 0; i < between; i++) /* fake(31) among them */
      ck_assert_uint_ne(hs__defer_realloc_free(fake(31 + i), 0), 0);
    hs__defer_realloc_failed(x, ticket);
    hs__guard--;
    ck_assert(!traced(fake(31), NULL));
    if (between < 64) {
      ck_assert(traced(x, &size));
      ck_assert_uint_eq(size, 10);
      ck_assert_uint_eq(dropped(), d0);
      rec_free(x);
    } else {
      ck_assert(!traced(x, NULL));
      ck_assert_uint_eq(dropped(), d0 + 1);
    }
    ck_assert_uint_eq(hs__traces_count(), 0);
    ck_assert_uint_eq(cur(), 0);
  }
}
END_TEST

/* (d), slots lost at fork zeroed in the child, has no test here: the old
 * code went wrong only when, in the child, one thread had numbered the
 * lost slot's next event (a lap later) and not yet written it while
 * another drained past it - the stale word then looked written. A thread
 * can only be held between its number and its write by a full ring, and
 * the ring always has room for that number (every older event was dealt
 * with at the fork), so no test can hold it there without timing. */

/* ---- 8. HEAPSNAP_DEFER=1: the ring without the applier thread ---- */
/* Whether each test runs in a process of its own (CK_FORK unset or not
 * "no"): then no earlier test has started an applier thread. */
static int ck_forks(void) {
  const char *e = getenv("CK_FORK");
  return !(e && strcmp(e, "no") == 0);
}

static int ncpus(void) {
  cpu_set_t set;
  return sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
}

static void setup_ring_only(void) {
  hs__defer_configure(1);
  ck_assert_int_eq(hs_set_sample_rate(0, 0), 0);
  ck_assert_int_eq(hs_start(8), 0);
}

/* The table's size trigger fires in whichever thread applies the first
 * insert that reaches it. */
static atomic_int trigger_fired;
static pthread_t trigger_thread; /* written before trigger_fired */
static void on_trigger(size_t now) {
  (void)now;
  trigger_thread = pthread_self();
  atomic_store(&trigger_fired, 1);
}

/* Queues n allocations into an empty table - fewer than the ring holds,
 * so that this thread applies none of them while queueing - and reports
 * whether another thread applied the first within wait_ms, before this
 * thread read the table. */
static int applied_behind_my_back(unsigned n, int wait_ms) {
  ck_assert_uint_eq(hs__traces_count(), 0);
  atomic_store(&trigger_fired, 0);
  hs__traces_set_trigger(HS_TRIGGER_PEAK, 1, 0, on_trigger);
  for (unsigned i = 0; i < n; i++)
    ck_assert_int_eq(rec_alloc(fake(300000 + i), 8, 0xb000, 0), 0);
  for (int ms = 0; ms < wait_ms && !atomic_load(&trigger_fired); ms++)
    usleep(1000);
  int behind = atomic_load(&trigger_fired) &&
               !pthread_equal(trigger_thread, pthread_self());
  /* This thread's read applies whatever is left. */
  ck_assert_uint_eq(hs__traces_count(), n);
  ck_assert_int_eq(atomic_load(&trigger_fired), 1);
  hs__traces_set_trigger(HS_TRIGGER_PEAK, SIZE_MAX, 0, NULL);
  ck_assert_uint_eq(cur(), (size_t)n * 8);
  for (unsigned i = 0; i < n; i++)
    rec_free(fake(300000 + i));
  ck_assert_uint_eq(hs__traces_count(), 0);
  return behind;
}

#ifdef HS_TSAN
enum { R1_THREADS = 4, R1_OPS = 12000, R1_LIVE = 64 };
#else
enum { R1_THREADS = 4, R1_OPS = 60000, R1_LIVE = 64 };
#endif

/* Allocates and frees its own addresses, R1_LIVE of them live at a time,
 * with no read of the table: the full ring is applied by the threads that
 * find it full. Leaves the last R1_LIVE allocations live. */
static void *ring_only_worker(void *arg) {
  unsigned id = (unsigned)(uintptr_t)arg;
  for (unsigned i = 0; i < R1_OPS; i++) {
    uintptr_t x = fake(200000 + id * R1_LIVE + i % R1_LIVE);
    if (i >= R1_LIVE)
      rec_free(x);
    if (rec_alloc(x, i % 100 + 1, 0xa000 + id, i & 7) != 0)
      return (void *)1;
  }
  return NULL;
}

START_TEST(ring_without_applier) {
  ck_assert(hs__deferring());
  /* In a process of its own, whose only start was in mode 1, there is no
   * applier thread: events wait for a caller. (With CK_FORK=no an earlier
   * test's applier may be running: mode 1 only stops new ones.) */
  if (ck_forks())
    ck_assert(!applied_behind_my_back(4000, 20));

  /* One thread, three laps of the ring between reads. */
  exact_totals(200000);

  /* Several threads with no read until they are done. */
  pthread_t t[R1_THREADS];
  for (uintptr_t i = 0; i < R1_THREADS; i++)
    ck_assert_int_eq(
        pthread_create(&t[i], NULL, ring_only_worker, (void *)i), 0);
  for (int i = 0; i < R1_THREADS; i++) {
    void *ret;
    ck_assert_int_eq(pthread_join(t[i], &ret), 0);
    ck_assert_ptr_null(ret);
  }
  size_t sum = 0;
  for (unsigned i = R1_OPS - R1_LIVE; i < R1_OPS; i++)
    sum += i % 100 + 1;
  ck_assert_uint_eq(hs__traces_count(), R1_THREADS * R1_LIVE);
  ck_assert_uint_eq(cur(), R1_THREADS * sum);
  hs_stats_t st;
  hs_get_stats(&st, sizeof st);
  ck_assert_uint_eq(st.dropped_traces, 0);
  for (unsigned id = 0; id < R1_THREADS; id++)
    for (unsigned k = 0; k < R1_LIVE; k++)
      rec_free(fake(200000 + id * R1_LIVE + k));
  ck_assert_uint_eq(hs__traces_count(), 0);
  ck_assert_uint_eq(cur(), 0);
  if (ck_forks())
    ck_assert(!applied_behind_my_back(4000, 20));

  /* Back to the default: given a second CPU, the next start adds the
   * applier, which applies the queued events without being asked (within
   * a few milliseconds; 10 s allowed). */
  hs_stop();
  hs__defer_configure(2);
  ck_assert_int_eq(hs_start(8), 0);
  ck_assert(hs__deferring());
  if (ncpus() >= 2)
    ck_assert(applied_behind_my_back(4000, 10000));
  exact_totals(70000);
}
END_TEST

/* ---- 9. solo numbering: one thread numbers without a locked add ---- */
/* Why defer.c cannot offer solo numbering here, or NULL: it is compiled
 * for x86-64 outside ThreadSanitizer, and needs the kernel's private
 * expedited membarrier to end it. */
static const char *solo_unavailable(void) {
#if defined(HS_TSAN)
  return "a ThreadSanitizer build, where defer.c leaves it out";
#elif !defined(__x86_64__)
  return "not x86-64";
#elif !defined(SYS_membarrier)
  return "no membarrier system call in these headers";
#else
  long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
  if (cmds < 0 || !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED))
    return "the kernel offers no private expedited membarrier";
  return NULL;
#endif
}

#ifdef HS_TSAN
enum { SOLO_OPS = 20000 };
#else
enum { SOLO_OPS = 100000 };
#endif
enum { SOLO_WIN = 64, SOLO_HAND = 64, HAND_MAX = 150000, SOLO_FORKS = 3 };

/* One of the two racing threads: id 0 is the test's thread, which held
 * solo numbering, id 1 the thread whose first event ends it. */
typedef struct {
  unsigned id;
  unsigned ops; /* at least; thread 0 goes on until thread 1 is done */
  uintptr_t live[SOLO_WIN];
  size_t live_size[SOLO_WIN];
  unsigned hands; /* blocks allocated here for the other thread to free */
  int errors;
  int state_after_first; /* thread 1: the solo state after its first event */
  int mine_at_end;
} solo_t;

/* Blocks in transit, allocated by one thread and freed by the other:
 * mailbox[to][slot], 0 = empty. The allocation is numbered before the
 * block is put here, the free after it is taken, as a program's would. */
static _Atomic uintptr_t mailbox[2][SOLO_HAND];
static atomic_int main_looping, second_done;

static uintptr_t solo_addr(unsigned id, unsigned k, unsigned gen) {
  return fake(400000 + id * 4096 + k * 2 + gen);
}
static uintptr_t hand_addr(unsigned id, unsigned j) {
  return fake(500000 + id * 200000 + j);
}
static size_t hand_size(uintptr_t h) {
  return ((h - fake(0)) / 16) % 300 + 1;
}

static void *solo_loop(void *arg) {
  solo_t *w = arg;
  unsigned seed = w->id * 7919u + 17;
  /* Thread 1 starts queueing only once thread 0 is queueing, so that solo
   * mode ends in the middle of thread 0's stream. */
  while (w->id == 1 && !atomic_load(&main_looping))
    sched_yield();
  for (unsigned i = 0;; i++) {
    if (i >= w->ops && (w->id == 1 || atomic_load(&second_done)))
      break;
    seed = seed * 1103515245u + 12345u;
    unsigned k = (seed >> 8) % SOLO_WIN;
    if (w->live[k])
      rec_free(w->live[k]);
    /* Addresses reused, two generations per slot: a free must reach the
     * table between the allocations around it. */
    uintptr_t x = solo_addr(w->id, k, i & 1);
    size_t size = (seed >> 4) % 1000 + 1;
    if (rec_alloc(x, size, 0xc000 + w->id, i & 3) != 0)
      w->errors++;
    w->live[k] = x;
    w->live_size[k] = size;
    if (i == 0 && w->id == 1)
      w->state_after_first = hs__defer_solo_state();
    if (i == 0 && w->id == 0)
      atomic_store(&main_looping, 1);
    if (!(i & 7) && w->hands < HAND_MAX) {
      unsigned j = w->hands++;
      uintptr_t h = hand_addr(w->id, j), empty = 0;
      if (rec_alloc(h, hand_size(h), 0xc100 + w->id, 0) != 0)
        w->errors++;
      if (!atomic_compare_exchange_strong(&mailbox[!w->id][j % SOLO_HAND],
                                          &empty, h))
        rec_free(h); /* the other thread is behind: freed here */
    }
    uintptr_t in = atomic_exchange(&mailbox[w->id][i % SOLO_HAND], 0);
    if (in)
      rec_free(in);
  }
  /* A thread learns that solo mode ended at its next numbering, not
   * before: on a loaded machine thread 0 can sleep through all of thread
   * 1's run and leave the loop without numbering again. One more event
   * each, after thread 1's first (the loop's exit waits for it), so that
   * the flag read says how that numbering went. */
  uintptr_t last = fake(390000 + w->id);
  if (rec_alloc(last, 8, 0xc400 + w->id, 0) != 0)
    w->errors++;
  rec_free(last);
  w->mine_at_end = hs__defer_solo_mine();
  if (w->id == 1)
    atomic_store(&second_done, 1);
  return NULL;
}

static int in_transit(uintptr_t h) {
  for (unsigned to = 0; to < 2; to++)
    for (unsigned k = 0; k < SOLO_HAND; k++)
      if (atomic_load(&mailbox[to][k]) == h)
        return 1;
  return 0;
}

/* Runs the race between this thread and a second one, then checks that
 * the table holds exactly what they left live, and frees it. No Check
 * assertions: a fork child runs it too. 0, or what went wrong in why. */
static int solo_race(solo_t w[2], char *why, size_t len) {
  memset(w, 0, 2 * sizeof *w);
  for (unsigned k = 0; k < SOLO_HAND; k++) {
    atomic_store(&mailbox[0][k], 0);
    atomic_store(&mailbox[1][k], 0);
  }
  atomic_store(&main_looping, 0);
  atomic_store(&second_done, 0);
  for (unsigned id = 0; id < 2; id++) {
    w[id].id = id;
    w[id].ops = SOLO_OPS;
  }
  pthread_t t;
  if (pthread_create(&t, NULL, solo_loop, &w[1]) != 0) {
    snprintf(why, len, "pthread_create failed");
    return 1;
  }
  solo_loop(&w[0]);
  pthread_join(t, NULL);

  uint64_t n = 0;
  size_t bytes = 0;
  for (unsigned id = 0; id < 2; id++) {
    if (w[id].errors) {
      snprintf(why, len, "thread %u: %d records refused", id, w[id].errors);
      return 1;
    }
    for (unsigned k = 0; k < SOLO_WIN; k++) {
      size_t size = 0;
      if (!w[id].live[k])
        continue;
      if (!hs__traces_lookup(0, w[id].live[k], &size, NULL) ||
          size != w[id].live_size[k]) {
        snprintf(why, len, "thread %u's live %#lx: size %zu, want %zu", id,
                 (unsigned long)w[id].live[k], size, w[id].live_size[k]);
        return 1;
      }
      n++;
      bytes += size;
    }
    /* Every block handed over: live while in a mailbox, freed otherwise. */
    for (unsigned j = 0; j < w[id].hands; j++) {
      uintptr_t h = hand_addr(id, j);
      size_t size = 0;
      int live = in_transit(h);
      int got = hs__traces_lookup(0, h, &size, NULL);
      if (got != live || (got && size != hand_size(h))) {
        snprintf(why, len,
                 "block %u handed by thread %u: traced %d (size %zu), "
                 "want %d (size %zu)",
                 j, id, got, size, live, hand_size(h));
        return 1;
      }
      n += (uint64_t)live;
      bytes += live ? size : 0;
    }
  }
  hs_stats_t st;
  hs_get_stats(&st, sizeof st);
  if (hs__traces_count() != n || cur() != bytes || st.dropped_traces != 0) {
    snprintf(why, len,
             "table: %llu traces of %zu bytes, %llu dropped; want %llu of %zu",
             (unsigned long long)hs__traces_count(), cur(),
             (unsigned long long)st.dropped_traces, (unsigned long long)n,
             bytes);
    return 1;
  }
  for (unsigned id = 0; id < 2; id++) {
    for (unsigned k = 0; k < SOLO_WIN; k++)
      if (w[id].live[k])
        rec_free(w[id].live[k]);
    for (unsigned k = 0; k < SOLO_HAND; k++) {
      uintptr_t h = atomic_exchange(&mailbox[id][k], 0);
      if (h)
        rec_free(h);
    }
  }
  if (hs__traces_count() != 0 || cur() != 0) {
    snprintf(why, len, "after freeing all: %llu traces of %zu bytes",
             (unsigned long long)hs__traces_count(), cur());
    return 1;
  }
  return 0;
}

#ifndef HS_TSAN
/* A fork child: solo numbering offered again (its one thread may number
 * alone, whoever did in the parent), taken by its first event, ended by
 * the race. Returns the child's exit status. */
static int solo_child(int c, const char *off) {
  solo_t w[2];
  char why[256];
  int bad = 0, st = hs__defer_solo_state();
  if (st != (off ? 0 : 1)) {
    fprintf(stderr, "child %d: solo state %d before any event, want %d\n", c,
            st, off ? 0 : 1);
    bad = 1;
  }
  if (rec_alloc(fake(2), 20, 0xc300, 0) != 0)
    bad = 1;
  if (!off && (hs__defer_solo_state() != 2 || !hs__defer_solo_mine())) {
    fprintf(stderr, "child %d: after its first event solo state %d, mine %d; "
                    "want 2, 1\n",
            c, hs__defer_solo_state(), hs__defer_solo_mine());
    bad = 1;
  }
  rec_free(fake(2));
  if (solo_race(w, why, sizeof why) != 0) {
    fprintf(stderr, "child %d: %s\n", c, why);
    bad = 1;
  }
  if (hs__defer_solo_state() != 0 || w[1].state_after_first != 0 ||
      w[0].mine_at_end || w[1].mine_at_end) {
    fprintf(stderr, "child %d: after the race solo state %d (%d after the "
                    "second thread's first event), mine %d %d; want 0\n",
            c, hs__defer_solo_state(), w[1].state_after_first,
            w[0].mine_at_end, w[1].mine_at_end);
    bad = 1;
  }
  return bad;
}
#endif

START_TEST(solo_then_shared) {
  ck_assert_int_eq(hs__defer_on, 1);
  const char *off = solo_unavailable();
  int start = hs__defer_solo_state(), mine = hs__defer_solo_mine();
  if (off) {
    fprintf(stderr, "solo_then_shared: NOTE: solo numbering not checked: "
                    "%s\n",
            off);
    ck_assert_int_eq(start, 0); /* never offered */
  } else if (ck_forks()) {
    /* Offered by this process's first start; nothing queued since. */
    ck_assert_int_eq(start, 1);
    ck_assert(!mine);
  }
  /* Whether this thread numbers alone from its first event on. With
   * CK_FORK=no an earlier test's threads may have ended solo mode. */
  int solo = !off && (start == 1 || (start == 2 && mine));
  if (!off && !solo)
    fprintf(stderr, "solo_then_shared: NOTE: solo numbering already ended "
                    "in this process (state %d; CK_FORK=no?): checking "
                    "exactness only\n",
            start);
  ck_assert_int_eq(rec_alloc(fake(1), 10, 0xc200, 0), 0);
  if (solo) {
    ck_assert_int_eq(hs__defer_solo_state(), 2);
    ck_assert(hs__defer_solo_mine());
  }
  rec_free(fake(1));
  /* More events than the ring holds, all this thread's: it stays solo,
   * and exact. */
  exact_totals(40000);
  if (solo) {
    ck_assert_int_eq(hs__defer_solo_state(), 2);
    ck_assert(hs__defer_solo_mine());
  }

  solo_t w[2];
  char why[256];
  int rc = solo_race(w, why, sizeof why);
  ck_assert_msg(rc == 0, "%s", why);
  /* Ended by the second thread's first event, and for good: both threads
   * number with the locked add now. */
  ck_assert_int_eq(hs__defer_solo_state(), 0);
  if (solo)
    ck_assert_int_eq(w[1].state_after_first, 0);
  ck_assert(!w[0].mine_at_end);
  ck_assert(!w[1].mine_at_end);
  ck_assert(!hs__defer_solo_mine());
  exact_totals(1000);
  ck_assert_int_eq(hs__defer_solo_state(), 0);

#ifndef HS_TSAN
  /* TSan does not let a child of a multi-threaded process start threads;
   * solo numbering, which the children are for, is not in its build. */
  register_fork_handlers();
  for (int c = 0; c < SOLO_FORKS; c++) {
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ne(pid, -1);
    if (pid == 0)
      _exit(solo_child(c, off));
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    /* The child's solo mode was its own. */
    ck_assert_int_eq(hs__defer_solo_state(), 0);
  }
#endif
  ck_assert_uint_eq(hs__traces_count(), 0);
  ck_assert_uint_eq(dropped(), 0);
}
END_TEST

int main(void) {
  Suite *s = suite_create("defer");
  TCase *tc = tcase_create("ring");
  tcase_set_timeout(tc, 120);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, deferred_mode_is_on);
  tcase_add_test(tc, realloc_deferred);
  tcase_add_test(tc, immediate_mode);
  tcase_add_test(tc, fork_child_consistent);
  tcase_add_test(tc, generation_wrap_refused);
  tcase_add_test(tc, realloc_failure_untraced_not_dropped);
  tcase_add_test(tc, realloc_stale_stash_not_restored);
  suite_add_tcase(s, tc);
  TCase *tr = tcase_create("ring_only");
  tcase_set_timeout(tr, 120);
  tcase_add_checked_fixture(tr, setup_ring_only, teardown);
  tcase_add_test(tr, ring_without_applier);
  suite_add_tcase(s, tr);
  TCase *tt = tcase_create("threads");
  tcase_set_timeout(tt, 120);
  tcase_add_checked_fixture(tt, setup, teardown);
  tcase_add_test(tt, cross_thread_order);
  tcase_add_test(tt, clear_and_restart_races);
  tcase_add_test(tt, solo_then_shared);
  suite_add_tcase(s, tt);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
