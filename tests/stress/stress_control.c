/* stress_control.c - soak item d: one thread starts, stops, clears and
 * snapshots at random while 6 threads allocate and free; with the threads
 * parked, the traced total must match the blocks heapsnap knows, exactly,
 * and go down by exactly their sizes when they are freed. */
#include "stress.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define THREADS 6
#define SLOTS 2048

typedef struct {
  void *p;
  size_t n;
} blk_t;

static double deadline, ctl_deadline;
static pthread_barrier_t parked, resume;
static atomic_uint_least64_t total_ops;
static blk_t blocks[THREADS][SLOTS];
static uint64_t starts, stops, clears, snaps, resets;

static void *worker(void *arg) {
  unsigned t = (unsigned)(uintptr_t)arg;
  uint64_t s = 0xD1B54A32D192ED03ull * (t + 1), ops = 0;
  blk_t *mine = blocks[t];
  while (now_s() < deadline) {
    for (int burst = 0; burst < 256; burst++, ops++) {
      blk_t *b = &mine[rnd(&s) % SLOTS];
      size_t n = rnd_size(&s);
      void *q;
      switch (rnd(&s) % 5) {
      case 0:
        free(b->p);
        b->p = malloc(n), b->n = n;
        break;
      case 1:
        free(b->p);
        b->p = calloc(1, n), b->n = n;
        break;
      case 2:
        q = realloc(b->p, n);
        if (q || n == 0)
          b->p = q, b->n = n;
        break;
      case 3:
        free(b->p);
        if (posix_memalign(&b->p, 64, n))
          b->p = NULL;
        b->n = n;
        break;
      default:
        free(b->p);
        b->p = NULL;
        break;
      }
    }
  }
  atomic_fetch_add(&total_ops, ops);
  pthread_barrier_wait(&parked);
  pthread_barrier_wait(&resume);
  for (unsigned i = 0; i < SLOTS; i++) {
    free(mine[i].p);
    mine[i].p = NULL;
  }
  pthread_barrier_wait(&parked);
  pthread_barrier_wait(&resume);
  return NULL;
}

static void *controller(void *arg) {
  (void)arg;
  uint64_t s = 42;
  while (now_s() < ctl_deadline) {
    switch (rnd(&s) % 6) {
    case 0: hs_stop(); stops++; break;
    case 1: hs_start(1 + (int)(rnd(&s) % 32)); starts++; break;
    case 2: hs_clear_traces(); clears++; break;
    case 3: hs_reset_peak(); resets++; break;
    default: {
      hs_snapshot_t *snap;
      if (hs_take_snapshot(&snap) == 0) {
        hs_snapshot_info_t in;
        hs_snapshot_get_info(snap, &in, sizeof in);
        hs_snapshot_free(snap);
        snaps++;
      }
      break;
    }
    }
    struct timespec ts = {0, (long)(rnd(&s) % 2000) * 1000};
    nanosleep(&ts, NULL);
  }
  /* The last tenth traces throughout, so the check has traced blocks to
   * account for whatever state the random walk ended in. */
  hs_start(16);
  return NULL;
}

int main(int argc, char **argv) {
  double secs = arg_seconds(argc, argv, 10);
  if (hs_start(16) != 0)
    DIE("hs_start failed");
  double t0 = now_s();
  deadline = t0 + secs;
  ctl_deadline = t0 + secs * 0.9;
  pthread_t th[THREADS], ctl;
  pthread_barrier_init(&parked, NULL, THREADS + 1);
  pthread_barrier_init(&resume, NULL, THREADS + 1);
  for (unsigned t = 0; t < THREADS; t++)
    if (pthread_create(&th[t], NULL, worker, (void *)(uintptr_t)t))
      DIE("pthread_create");
  if (pthread_create(&ctl, NULL, controller, NULL))
    DIE("pthread_create");
  pthread_join(ctl, NULL);
  pthread_barrier_wait(&parked);
  double elapsed = now_s() - t0;
  /* The blocks heapsnap knows of: traced since the last start or clear. */
  uint64_t known = 0, nknown = 0, nlive = 0;
  uintptr_t frames[HS_MAX_FRAMES];
  for (unsigned t = 0; t < THREADS; t++)
    for (unsigned i = 0; i < SLOTS; i++) {
      blk_t *b = &blocks[t][i];
      if (!b->p)
        continue;
      nlive++;
      int n = hs_get_object_traceback(b->p, frames, HS_MAX_FRAMES);
      if (n >= 1)
        known += b->n, nknown++;
      else if (n != HS_ENOTFOUND)
        DIE("hs_get_object_traceback: %s", hs_strerror(n));
    }
  uint64_t before = traced_now();
  hs_snapshot_t *snap;
  hs_snapshot_info_t in;
  if (hs_take_snapshot(&snap) != 0)
    DIE("hs_take_snapshot");
  hs_snapshot_get_info(snap, &in, sizeof in);
  hs_snapshot_free(snap);
  if (in.size != before)
    DIE("snapshot holds %llu bytes, current says %llu",
        (unsigned long long)in.size, (unsigned long long)before);
  if (before < known)
    DIE("current %llu is less than the %llu bytes of traced live blocks",
        (unsigned long long)before, (unsigned long long)known);
  pthread_barrier_wait(&resume);
  pthread_barrier_wait(&parked);
  uint64_t after = traced_now();
  if (nknown == 0)
    DIE("no live block is traced: the check proves nothing");
  if (before - after != known)
    DIE("freeing %llu traced blocks (%llu bytes) lowered current by %llu",
        (unsigned long long)nknown, (unsigned long long)known,
        (unsigned long long)(before - after));
  if (hs_take_snapshot(&snap) != 0)
    DIE("hs_take_snapshot");
  hs_snapshot_get_info(snap, &in, sizeof in);
  hs_snapshot_free(snap);
  if (in.size != after)
    DIE("after the frees the snapshot holds %llu bytes, current %llu",
        (unsigned long long)in.size, (unsigned long long)after);
  pthread_barrier_wait(&resume);
  for (unsigned t = 0; t < THREADS; t++)
    pthread_join(th[t], NULL);
  hs_stats_t st;
  hs_get_stats(&st, sizeof st);
  if (st.dropped_traces)
    DIE("%llu traces dropped", (unsigned long long)st.dropped_traces);
  uint64_t ops = atomic_load(&total_ops);
  printf("stress control: %.1f s, %llu allocation operations in %u threads "
         "(%.0f ops/s) against %llu starts, %llu stops, %llu clears, %llu "
         "peak resets, %llu snapshots; %llu of %llu live blocks traced at "
         "the check: ok\n",
         elapsed, (unsigned long long)ops, THREADS, (double)ops / elapsed,
         (unsigned long long)starts, (unsigned long long)stops,
         (unsigned long long)clears, (unsigned long long)resets,
         (unsigned long long)snaps, (unsigned long long)nknown,
         (unsigned long long)nlive);
  return 0;
}
