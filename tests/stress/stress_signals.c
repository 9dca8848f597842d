/* stress_signals.c - soak item e, in-process half: a thread sends SIGUSR1
 * to 4 allocating threads as fast as it can; the handler does only
 * async-signal-safe work. The program must finish with exact accounting. */
#include "stress.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#define THREADS 4
#define SLOTS 1024

static double deadline;
static atomic_int stop;
static pthread_barrier_t parked, resume;
static atomic_uint_least64_t total_ops, handled;
static struct {
  void *p;
  size_t n;
} blocks[THREADS][SLOTS];

static void on_usr1(int signo) {
  (void)signo;
  int saved = errno;
  atomic_fetch_add_explicit(&handled, 1, memory_order_relaxed);
  errno = saved;
}

static void *worker(void *arg) {
  unsigned t = (unsigned)(uintptr_t)arg;
  uint64_t s = 0x8CB92BA72F3D8DD7ull * (t + 1), ops = 0;
  while (now_s() < deadline) {
    for (int k = 0; k < 256; k++, ops++) {
      unsigned i = (unsigned)(rnd(&s) % SLOTS);
      size_t n = rnd_size(&s);
      if (rnd(&s) % 3 == 0) {
        void *q = realloc(blocks[t][i].p, n);
        if (q || n == 0)
          blocks[t][i].p = q, blocks[t][i].n = n;
      } else {
        free(blocks[t][i].p);
        blocks[t][i].p = rnd(&s) % 2 ? malloc(n) : calloc(n, 1);
        blocks[t][i].n = n;
      }
    }
  }
  atomic_fetch_add(&total_ops, ops);
  pthread_barrier_wait(&parked);
  pthread_barrier_wait(&resume);
  for (unsigned i = 0; i < SLOTS; i++)
    free(blocks[t][i].p), blocks[t][i].p = NULL;
  pthread_barrier_wait(&parked);
  pthread_barrier_wait(&resume);
  return NULL;
}

static pthread_t th[THREADS];
static uint64_t sent;

static void *signaller(void *arg) {
  (void)arg;
  uint64_t s = 7;
  while (!atomic_load(&stop)) {
    if (pthread_kill(th[rnd(&s) % THREADS], SIGUSR1) == 0)
      sent++;
    /* Let the target run: a pending signal absorbs the next ones. */
    if (sent % 4 == 0)
      sched_yield();
  }
  return NULL;
}

int main(int argc, char **argv) {
  double secs = arg_seconds(argc, argv, 10);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, NULL);
  if (hs_start(16) != 0)
    DIE("hs_start failed");
  pthread_barrier_init(&parked, NULL, THREADS + 1);
  pthread_barrier_init(&resume, NULL, THREADS + 1);
  double t0 = now_s();
  deadline = t0 + secs;
  /* th[] is complete before the signaller reads it. */
  for (unsigned t = 0; t < THREADS; t++)
    if (pthread_create(&th[t], NULL, worker, (void *)(uintptr_t)t))
      DIE("pthread_create");
  pthread_t sig;
  if (pthread_create(&sig, NULL, signaller, NULL))
    DIE("pthread_create");
  pthread_barrier_wait(&parked);
  atomic_store(&stop, 1);
  pthread_join(sig, NULL);
  double elapsed = now_s() - t0;
  uint64_t live = 0;
  for (unsigned t = 0; t < THREADS; t++)
    for (unsigned i = 0; i < SLOTS; i++)
      if (blocks[t][i].p)
        live += blocks[t][i].n;
  uint64_t cur = traced_now();
  pthread_barrier_wait(&resume);
  pthread_barrier_wait(&parked);
  uint64_t after = traced_now();
  if (cur - after != live)
    DIE("freeing %llu live bytes lowered current by %llu",
        (unsigned long long)live, (unsigned long long)(cur - after));
  pthread_barrier_wait(&resume);
  for (unsigned t = 0; t < THREADS; t++)
    pthread_join(th[t], NULL);
  hs_stats_t st;
  hs_get_stats(&st, sizeof st);
  if (st.dropped_traces)
    DIE("%llu traces dropped", (unsigned long long)st.dropped_traces);
  uint64_t ops = atomic_load(&total_ops), got = atomic_load(&handled);
  if (got == 0)
    DIE("no SIGUSR1 was handled");
  printf("stress signals: %.1f s, %llu SIGUSR1 sent, %llu handled (%.0f/s) "
         "inside %llu allocation operations in %u threads: ok\n",
         elapsed, (unsigned long long)sent, (unsigned long long)got,
         (double)got / elapsed, (unsigned long long)ops, THREADS);
  return 0;
}
