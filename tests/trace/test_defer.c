/* test_defer.c - deferred table updates (defer.c) without the interposer:
 * heap events go through the ring and are applied in number order by the
 * applier thread or by whoever needs the table next; every public read
 * drains the ring first, so the totals seen by these tests must be exact.
 * Only fake, 16-aligned addresses are recorded, never real blocks, so the
 * suite runs under ASan, UBSan and TSan. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heapsnap.h"
#include "trace/trace.h"

#if defined(__SANITIZE_THREAD__)
#define HS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HS_TSAN 1
#endif
#endif

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
  hs__guard++;
  unsigned s = hs__state_now();
  int rc = HS_ENOTTRACING;
  if (hs__state_tracing(s))
    rc = hs__record_frames(s, 0, p, size, fr, 2);
  hs__guard--;
  return rc;
}

static void rec_free(uintptr_t p) {
  hs__guard++;
  hs__record_free((void *)p);
  hs__guard--;
}

static void setup(void) {
  hs__defer_configure(2);
  ck_assert_int_eq(hs_set_sample_rate(0, 0), 0);
  ck_assert_int_eq(hs_start(8), 0);
}
static void teardown(void) { hs_stop(); }

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
  hs_get_stats(&st);
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
  ck_assert_uint_eq(hs__traces_count(), N);
  ck_assert_uint_eq(cur(), sum);
  for (unsigned i = 0; i < N; i++)
    rec_free(fake(i));
  ck_assert_uint_eq(hs__traces_count(), 0);
  ck_assert_uint_eq(cur(), 0);
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
      hs_get_stats(&st);
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

static void *fake_realloc(void *old, size_t size) {
  realloc_calls++;
  realloc_errno_in = errno;
  ck_assert_ptr_eq(old, realloc_want_old);
  ck_assert_uint_eq(size, realloc_want_size);
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
  ck_assert_uint_eq(hs__traces_count(), n);
  ck_assert_uint_eq(cur(), sum);
  for (unsigned i = 0; i < n; i++)
    rec_free(fake(i));
  ck_assert_uint_eq(hs__traces_count(), 0);
  ck_assert_uint_eq(cur(), 0);
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
  ck_assert_int_eq(hs__defer_on, 1);
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
START_TEST(fork_child_consistent) {
  enum { N = 50000 };
  ck_assert_int_eq(hs__defer_on, 1);
  /* What the interposer registers at load; hs_core alone does not. */
  ck_assert_int_eq(
      pthread_atfork(hs__fork_prepare, hs__fork_parent, hs__fork_child), 0);
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
    hs_get_stats(&st);
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

int main(void) {
  Suite *s = suite_create("defer");
  TCase *tc = tcase_create("ring");
  tcase_set_timeout(tc, 120);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, deferred_mode_is_on);
  tcase_add_test(tc, realloc_deferred);
  tcase_add_test(tc, immediate_mode);
  tcase_add_test(tc, fork_child_consistent);
  suite_add_tcase(s, tc);
  TCase *tt = tcase_create("threads");
  tcase_set_timeout(tt, 120);
  tcase_add_checked_fixture(tt, setup, teardown);
  tcase_add_test(tt, cross_thread_order);
  tcase_add_test(tt, clear_and_restart_races);
  suite_add_tcase(s, tt);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
