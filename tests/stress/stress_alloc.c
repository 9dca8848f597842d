/* stress_alloc.c - soak item a: 8 threads call every allocation function
 * with random sizes while tracing; with the threads parked, current must be
 * the baseline plus the sum of their live requested sizes, exactly. */
#include "stress.h"

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define THREADS 8
#define SLOTS 2048

typedef struct {
  unsigned char *p;
  size_t n;
} blk_t;

static double deadline;
static pthread_barrier_t parked, resume;
static atomic_uint_least64_t total_ops;
static blk_t blocks[THREADS][SLOTS];

/* First and last byte carry a tag: a tracer that scribbled on the heap,
 * or handed out overlapping blocks, shows up at the check before free. */
static void tag(blk_t *b, unsigned t) {
  if (b->p && b->n > 1)
    b->p[b->n - 1] = (unsigned char)(t >> 3);
  if (b->p && b->n)
    b->p[0] = (unsigned char)t;
}
static void verify(const blk_t *b, unsigned t) {
  if (!b->p || !b->n)
    return;
  if (b->p[0] != (unsigned char)t ||
      (b->n > 1 && b->p[b->n - 1] != (unsigned char)(t >> 3)))
    DIE("block %p of %zu bytes was overwritten", (void *)b->p, b->n);
}

/* One of the nine allocation functions at random; *n becomes the size the
 * call requested, as heapsnap records it. */
static void *alloc_tracked(uint64_t *s, size_t *n) {
  void *p = NULL;
  size_t al = (size_t)16 << (rnd(s) % 6), a;
  switch (rnd(s) % 9) {
  case 0: return malloc(*n);
  case 1: a = 1 + *n % 7, *n = (*n / a + 1) * a; return calloc(a, *n / a);
  case 2: return realloc(NULL, *n);
  case 3: *n = (*n / 4 + 1) * 4; return reallocarray(NULL, *n / 4, 4);
  case 4: return posix_memalign(&p, al, *n) ? NULL : p;
  case 5: *n = (*n + al - 1) / al * al; return aligned_alloc(al, *n);
  case 6: return memalign(al, *n);
  case 7: return valloc(*n);
  default: return pvalloc(*n);
  }
}

static void *worker(void *arg) {
  unsigned t = (unsigned)(uintptr_t)arg;
  uint64_t s = 0x9E3779B97F4A7C15ull * (t + 1);
  blk_t *mine = blocks[t];
  uint64_t ops = 0;
  pthread_barrier_wait(&resume); /* the baseline is taken meanwhile */
  while (now_s() < deadline) {
    for (int burst = 0; burst < 256; burst++, ops++) {
      unsigned i = (unsigned)(rnd(&s) % SLOTS);
      blk_t *b = &mine[i];
      verify(b, i + t);
      uint64_t r = rnd(&s) % 16;
      if (!b->p) {
        size_t n = rnd_size(&s);
        b->p = alloc_tracked(&s, &n);
        b->n = n;
      } else if (r < 6) {
        free(b->p);
        b->p = NULL;
      } else if (r < 7) {
        /* realloc to 0 frees (glibc) and returns NULL. */
        void *q = realloc(b->p, 0);
        if (q)
          DIE("realloc(p, 0) returned %p", q);
        b->p = NULL;
      } else if (r < 11) {
        size_t n = rnd_size(&s);
        unsigned char *q = realloc(b->p, n);
        if (!q && n)
          DIE("realloc to %zu failed", n);
        b->p = q, b->n = n;
      } else if (r < 13) {
        size_t n = rnd_size(&s) / 8 + 1;
        unsigned char *q = reallocarray(b->p, n, 8);
        if (!q)
          DIE("reallocarray to %zu x 8 failed", n);
        b->p = q, b->n = n * 8;
      } else {
        /* Replace with a fresh block of another function. */
        free(b->p);
        size_t n = rnd_size(&s);
        b->p = alloc_tracked(&s, &n);
        b->n = n;
      }
      if (b->p)
        tag(b, i + t);
      else
        b->n = 0;
    }
  }
  atomic_fetch_add(&total_ops, ops);
  pthread_barrier_wait(&parked);  /* main checks the accounting */
  pthread_barrier_wait(&resume);  /* then we free what we hold */
  for (unsigned i = 0; i < SLOTS; i++) {
    verify(&mine[i], i + t);
    free(mine[i].p);
    mine[i].p = NULL;
  }
  /* Still alive: thread exit frees glibc's per-thread blocks, traced at
   * pthread_create, which the baseline includes. */
  pthread_barrier_wait(&parked);
  pthread_barrier_wait(&resume);
  return NULL;
}

int main(int argc, char **argv) {
  double secs = arg_seconds(argc, argv, 10);
  if (hs_start(16) != 0)
    DIE("hs_start failed");
  pthread_t th[THREADS];
  pthread_barrier_init(&parked, NULL, THREADS + 1);
  pthread_barrier_init(&resume, NULL, THREADS + 1);
  for (unsigned t = 0; t < THREADS; t++)
    if (pthread_create(&th[t], NULL, worker, (void *)(uintptr_t)t))
      DIE("pthread_create");
  /* Every thread exists (its TLS and stack are allocated): from here on
   * only the workers' blocks move the traced total. */
  uint64_t base = traced_now();
  hs_stats_t st0;
  hs_get_stats(&st0, sizeof st0);
  double t0 = now_s();
  deadline = t0 + secs;
  pthread_barrier_wait(&resume);
  pthread_barrier_wait(&parked);
  double elapsed = now_s() - t0;
  uint64_t live = 0, nlive = 0;
  for (unsigned t = 0; t < THREADS; t++)
    for (unsigned i = 0; i < SLOTS; i++)
      if (blocks[t][i].p)
        live += blocks[t][i].n, nlive++;
  uint64_t cur = traced_now();
  hs_stats_t st;
  hs_get_stats(&st, sizeof st);
  if (cur != base + live)
    DIE("current %llu != baseline %llu + live %llu (off by %lld)",
        (unsigned long long)cur, (unsigned long long)base,
        (unsigned long long)live, (long long)(cur - base - live));
  if (st.live_traces != st0.live_traces + nlive)
    DIE("live traces %llu != %llu + %llu", (unsigned long long)st.live_traces,
        (unsigned long long)st0.live_traces, (unsigned long long)nlive);
  if (st.dropped_traces != 0)
    DIE("%llu traces dropped", (unsigned long long)st.dropped_traces);
  hs_snapshot_t *snap;
  if (hs_take_snapshot(&snap) != 0)
    DIE("hs_take_snapshot");
  hs_snapshot_info_t in;
  hs_snapshot_get_info(snap, &in, sizeof in);
  hs_snapshot_free(snap);
  if (in.size != cur || in.count != st.live_traces)
    DIE("snapshot holds %llu bytes in %llu traces, tables say %llu in %llu",
        (unsigned long long)in.size, (unsigned long long)in.count,
        (unsigned long long)cur, (unsigned long long)st.live_traces);
  pthread_barrier_wait(&resume);
  pthread_barrier_wait(&parked);
  uint64_t after = traced_now();
  hs_get_stats(&st, sizeof st);
  pthread_barrier_wait(&resume);
  for (unsigned t = 0; t < THREADS; t++)
    pthread_join(th[t], NULL);
  if (after != base)
    DIE("after freeing everything current is %llu, baseline %llu",
        (unsigned long long)after, (unsigned long long)base);
  if (st.dropped_traces != 0)
    DIE("%llu traces dropped", (unsigned long long)st.dropped_traces);
  uint64_t ops = atomic_load(&total_ops);
  printf("stress alloc: %.1f s, %u threads, %llu operations (%.0f ops/s), "
         "%llu blocks (%llu bytes) live at the check, %llu stacks, "
         "0 dropped: ok\n",
         elapsed, THREADS, (unsigned long long)ops, (double)ops / elapsed,
         (unsigned long long)nlive, (unsigned long long)live,
         (unsigned long long)st.stacks);
  return 0;
}
