/* test_concurrency.c - the thread contract of heapsnap.h for snapshots, as
 * ThreadSanitizer checks it (ctest label tsan): one snapshot used by many
 * threads, snapshots racing start/stop/clear, dumps racing compares. */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heapsnap.h"

/* Only this (the test's main) thread records: recording unwinds, and under
 * TSan libunwind's per-thread destructor crashes a thread that unwound when
 * it exits (tests/unwind/CMakeLists.txt). The other threads only read. */
enum { SITES = 6, PER_SITE = 25, THREADS = 6 };

static uintptr_t next_ptr = 0x40000000;

/* One function per site, each on its own line: a switch of identical
 * calls could be merged into one call site, and identical functions folded
 * into one (the sizes differ, so they cannot be). */
#define SITE(k)                                                               \
  __attribute__((noinline)) static void site##k(void) {                       \
    hs_track((k) % 3, next_ptr += 64, SITE_SIZE(k));                          \
    __asm__ volatile("" ::: "memory");                                        \
  }
#define SITE_SIZE(k) ((size_t)(k) * 16 + 16)
SITE(0)
SITE(1)
SITE(2)
SITE(3)
SITE(4)
SITE(5)
static void (*const sites[SITES])(void) = {site0, site1, site2,
                                           site3, site4, site5};

/* Tracks PER_SITE blocks at each site; returns the bytes tracked. */
static uint64_t track_all(void) {
  uint64_t bytes = 0;
  for (int k = 0; k < SITES; k++)
    for (int i = 0; i < PER_SITE; i++) {
      sites[k]();
      bytes += SITE_SIZE(k);
    }
  return bytes;
}

static hs_statistics_info_t info_of(const hs_statistics_t *st) {
  hs_statistics_info_t in;
  ck_assert_int_eq(hs_statistics_get_info(st, &in, sizeof in), 0);
  return in;
}

/* ---- several threads, several keys, one fresh snapshot ---- */

typedef struct stat_job {
  hs_snapshot_t *snap;
  pthread_barrier_t *go;
  hs_key_t key;
  int cumulative;
  int rc;
  uint64_t total_size;
  size_t count;
  uint64_t sum; /* of the entries' sizes */
} stat_job_t;

static void *stat_worker(void *arg) {
  stat_job_t *j = arg;
  hs_statistics_t *st;
  /* All at once: the first symbolization is what used to race. */
  pthread_barrier_wait(j->go);
  j->rc = hs_snapshot_statistics(j->snap, j->key, j->cumulative, &st);
  if (j->rc != 0)
    return NULL;
  hs_statistics_info_t in = info_of(st);
  j->total_size = in.total_size;
  j->count = hs_statistics_count(st);
  for (size_t i = 0; i < j->count; i++)
    j->sum += hs_statistics_get(st, i)->size;
  hs_statistics_free(st);
  return NULL;
}

START_TEST(statistics_of_one_fresh_snapshot) {
  ck_assert_int_eq(hs_start(8), 0);
  uint64_t bytes = track_all();
  static const struct {
    hs_key_t key;
    int cumulative;
  } kinds[THREADS] = {{HS_KEY_LINENO, 0},   {HS_KEY_TRACEBACK, 0},
                      {HS_KEY_FUNCTION, 0}, {HS_KEY_FILENAME, 0},
                      {HS_KEY_LINENO, 1},   {HS_KEY_LINENO, 0}};
  for (int round = 0; round < 12; round++) {
    hs_snapshot_t *snap;
    ck_assert_int_eq(hs_take_snapshot(&snap), 0);
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, THREADS);
    pthread_t t[THREADS];
    stat_job_t jobs[THREADS];
    for (int i = 0; i < THREADS; i++) {
      jobs[i] = (stat_job_t){
          snap, &go, kinds[i].key, kinds[i].cumulative, -1, 0, 0, 0};
      ck_assert_int_eq(pthread_create(&t[i], NULL, stat_worker, &jobs[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
      pthread_join(t[i], NULL);
    pthread_barrier_destroy(&go);
    for (int i = 0; i < THREADS; i++) {
      ck_assert_int_eq(jobs[i].rc, 0);
      ck_assert_uint_eq(jobs[i].total_size, bytes);
      if (!jobs[i].cumulative)
        ck_assert_uint_eq(jobs[i].sum, bytes);
    }
    /* The same key from two threads is the same list. */
    ck_assert_uint_eq(jobs[0].count, jobs[5].count);
    ck_assert_uint_eq(jobs[0].sum, jobs[5].sum);
    /* Every site is its own line and its own stack. */
    ck_assert_uint_ge(jobs[0].count, SITES);
    ck_assert_uint_ge(jobs[1].count, SITES);
    hs_snapshot_free(snap);
  }
  hs_stop();
}
END_TEST

/* ---- snapshots while another thread starts, stops and clears ---- */

typedef struct snap_job {
  atomic_int *stop;
  uint64_t max_bytes;
  atomic_int taken; /* read by the main thread while this one runs */
  int refused, symbolized;
  int bad; /* a snapshot whose parts disagree */
} snap_job_t;

static void *snap_worker(void *arg) {
  snap_job_t *j = arg;
  while (!atomic_load(j->stop)) {
    hs_snapshot_t *s;
    int rc = hs_take_snapshot(&s);
    if (rc == HS_ENOTTRACING) {
      j->refused++;
      continue;
    }
    if (rc != 0) {
      j->bad++;
      continue;
    }
    int taken = atomic_fetch_add(&j->taken, 1) + 1;
    hs_snapshot_info_t in;
    hs_snapshot_get_info(s, &in, sizeof in);
    if (in.size > j->max_bytes || in.count > SITES * PER_SITE)
      j->bad++;
    if (taken % 4 == 0) {
      hs_statistics_t *st;
      if (hs_snapshot_statistics(s, HS_KEY_LINENO, 0, &st) != 0 ||
          info_of(st).total_size != in.size)
        j->bad++;
      else
        hs_statistics_free(st);
      j->symbolized++;
    }
    hs_snapshot_free(s);
  }
  return NULL;
}

START_TEST(snapshots_while_start_and_stop) {
  ck_assert_int_eq(hs_start(8), 0);
  atomic_int stop = 0;
  snap_job_t jobs[2] = {{&stop, 0, 0, 0, 0, 0}, {&stop, 0, 0, 0, 0, 0}};
  uint64_t bytes = track_all();
  jobs[0].max_bytes = jobs[1].max_bytes = bytes;
  hs_stop();
  pthread_t t[2];
  for (int i = 0; i < 2; i++)
    ck_assert_int_eq(pthread_create(&t[i], NULL, snap_worker, &jobs[i]), 0);
  for (int round = 0; round < 60; round++) {
    ck_assert_int_eq(hs_start(8), 0);
    ck_assert_uint_eq(track_all(), bytes);
    if (round % 3 == 0) {
      hs_clear_traces();
      track_all();
    }
    hs_stop();
  }
  /* Let the readers see a tracing state at least once, whatever the
   * scheduler did above. */
  ck_assert_int_eq(hs_start(8), 0);
  track_all();
  while (atomic_load(&jobs[0].taken) + atomic_load(&jobs[1].taken) == 0)
    usleep(1000);
  atomic_store(&stop, 1);
  for (int i = 0; i < 2; i++)
    pthread_join(t[i], NULL);
  hs_stop();
  for (int i = 0; i < 2; i++)
    ck_assert_msg(jobs[i].bad == 0, "thread %d: %d inconsistent snapshots", i,
                  jobs[i].bad);
}
END_TEST

/* ---- dumps while other threads compare, filter and set wrappers ---- */

typedef struct dump_job {
  hs_snapshot_t *a, *b;
  pthread_barrier_t *go;
  const char *pa, *pb; /* dump: where; else NULL */
  int role;
  int rc;
  int64_t size_diff;
} dump_job_t;

static void *dump_worker(void *arg) {
  dump_job_t *j = arg;
  pthread_barrier_wait(j->go);
  hs_statistics_t *st = NULL;
  hs_snapshot_t *f = NULL;
  switch (j->role) {
  case 0: /* dumps both */
    j->rc = hs_snapshot_dump(j->a, j->pa);
    if (j->rc == 0)
      j->rc = hs_snapshot_dump(j->b, j->pb);
    break;
  case 1: /* compares them, both ways round */
  case 2:
    j->rc = j->role == 1
                ? hs_snapshot_compare(j->b, j->a, HS_KEY_LINENO, 0, &st)
                : hs_snapshot_compare(j->a, j->b, HS_KEY_TRACEBACK, 0, &st);
    if (j->rc == 0)
      j->size_diff = info_of(st).total_size_diff;
    break;
  case 3: { /* filters one, and takes statistics of the copy */
    hs_filter_t keep_domain1 = {1, NULL, 0, 0, 1};
    j->rc = hs_snapshot_filter(j->b, &keep_domain1, 1, &f);
    if (j->rc == 0)
      j->rc = hs_snapshot_statistics(f, HS_KEY_FUNCTION, 0, &st);
    break;
  }
  default: /* changes the settings the others read */
    j->rc = hs_snapshot_add_wrapper(j->a, HS_WRAP_FUNCTION, "no_such_fn*");
    if (j->rc == 0)
      j->rc = hs_snapshot_add_wrapper(j->b, HS_WRAP_FILE, "/no/such/dir/*");
    hs_snapshot_set_raw(j->b, 0);
    break;
  }
  hs_statistics_free(st);
  hs_snapshot_free(f);
  return NULL;
}

START_TEST(dump_while_compare) {
  ck_assert_int_eq(hs_start(8), 0);
  char dir[] = "/tmp/hs-conc.XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char pa[64], pb[64];
  snprintf(pa, sizeof pa, "%s/a.hsnap", dir);
  snprintf(pb, sizeof pb, "%s/b.hsnap", dir);
  for (int round = 0; round < 8; round++) {
    hs_clear_traces();
    hs_snapshot_t *a, *b;
    track_all();
    ck_assert_int_eq(hs_take_snapshot(&a), 0);
    uint64_t more = track_all();
    ck_assert_int_eq(hs_take_snapshot(&b), 0);
    enum { N = 5 };
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, N);
    pthread_t t[N];
    dump_job_t jobs[N];
    for (int i = 0; i < N; i++) {
      jobs[i] = (dump_job_t){a, b, &go, pa, pb, i, -1, 0};
      ck_assert_int_eq(pthread_create(&t[i], NULL, dump_worker, &jobs[i]), 0);
    }
    for (int i = 0; i < N; i++)
      pthread_join(t[i], NULL);
    pthread_barrier_destroy(&go);
    for (int i = 0; i < N; i++)
      ck_assert_msg(jobs[i].rc == 0, "role %d: %s", i, hs_strerror(jobs[i].rc));
    ck_assert_int_eq(jobs[1].size_diff, (int64_t)more);
    ck_assert_int_eq(jobs[2].size_diff, -(int64_t)more);

    /* What was written while the others read is what they read. */
    hs_snapshot_t *la, *lb;
    char err[256];
    ck_assert_msg(hs_snapshot_load(pa, &la, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(hs_snapshot_load(pb, &lb, err, sizeof err) == 0, "%s", err);
    hs_statistics_t *mem, *file;
    ck_assert_int_eq(hs_snapshot_compare(b, a, HS_KEY_LINENO, 0, &mem), 0);
    ck_assert_int_eq(hs_snapshot_compare(lb, la, HS_KEY_LINENO, 0, &file), 0);
    ck_assert_uint_eq(hs_statistics_count(mem), hs_statistics_count(file));
    ck_assert_int_eq(info_of(file).total_size_diff, (int64_t)more);
    for (size_t i = 0; i < hs_statistics_count(mem); i++) {
      const hs_statistic_diff_t *x = hs_statistics_get_diff(mem, i);
      const hs_statistic_diff_t *y = hs_statistics_get_diff(file, i);
      ck_assert_int_eq(x->size_diff, y->size_diff);
      ck_assert_uint_eq(x->frames[0].lineno, y->frames[0].lineno);
    }
    hs_statistics_free(mem);
    hs_statistics_free(file);
    hs_snapshot_free(la);
    hs_snapshot_free(lb);
    hs_snapshot_free(a);
    hs_snapshot_free(b);
  }
  unlink(pa);
  unlink(pb);
  rmdir(dir);
  hs_stop();
}
END_TEST

int main(void) {
  Suite *su = suite_create("snapshot_concurrency");
  TCase *tc = tcase_create("contract");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, statistics_of_one_fresh_snapshot);
  tcase_add_test(tc, snapshots_while_start_and_stop);
  tcase_add_test(tc, dump_while_compare);
  suite_add_tcase(su, tc);
  SRunner *sr = srunner_create(su);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
