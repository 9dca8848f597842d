/* stress_fork.c - soak item b: the main thread forks again and again while
 * 4 threads allocate; every child must find tracing working (a fresh block
 * has a traceback, a snapshot can be taken and summarised) and exit. A
 * child that hangs (a lock inherited from a thread that is gone) fails. */
#include "stress.h"

#include <pthread.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define THREADS 4
#define CHILD_TIMEOUT 20.0

static atomic_int stop;
static atomic_uint_least64_t total_ops;

static void *worker(void *arg) {
  uint64_t s = 0x51ED270B27E3A7C1ull * ((uintptr_t)arg + 1), ops = 0;
  void *held[256] = {0};
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    unsigned i = (unsigned)(rnd(&s) % 256);
    if (held[i] && rnd(&s) % 2) {
      void *q = realloc(held[i], rnd_size(&s) + 1);
      if (q)
        held[i] = q;
    } else {
      free(held[i]);
      held[i] = malloc(rnd_size(&s));
    }
    ops++;
  }
  for (unsigned i = 0; i < 256; i++)
    free(held[i]);
  atomic_fetch_add(&total_ops, ops);
  return NULL;
}

/* In the child: only async-signal-safe work is promised by POSIX after a
 * fork from a threaded process, but glibc's malloc is fork-safe, and so
 * must heapsnap be: its locks were taken around the fork. */
static int child(unsigned k) {
  if (!hs_is_tracing())
    return 10;
  char *p = malloc(100 + k % 50);
  if (!p)
    return 11;
  memset(p, 1, 100);
  uintptr_t frames[HS_MAX_FRAMES];
  int n = hs_get_object_traceback(p, frames, HS_MAX_FRAMES);
  if (n < 1)
    return 12;
  hs_snapshot_t *snap;
  if (hs_take_snapshot(&snap) != 0)
    return 13;
  hs_snapshot_info_t in;
  hs_snapshot_get_info(snap, &in, sizeof in);
  if (in.count < 1 || in.size < 100)
    return 14;
  /* Now and then symbolize too: libdw and the module map after a fork. */
  if (k % 32 == 0) {
    hs_statistics_t *st;
    if (hs_snapshot_statistics(snap, HS_KEY_LINENO, 0, &st) != 0)
      return 15;
    if (hs_statistics_count(st) < 1)
      return 16;
    hs_statistics_free(st);
  }
  hs_snapshot_free(snap);
  free(p);
  return 0;
}

int main(int argc, char **argv) {
  double secs = arg_seconds(argc, argv, 10);
  if (hs_start(16) != 0)
    DIE("hs_start failed");
  pthread_t th[THREADS];
  for (unsigned t = 0; t < THREADS; t++)
    if (pthread_create(&th[t], NULL, worker, (void *)(uintptr_t)t))
      DIE("pthread_create");
  double t0 = now_s(), end = t0 + secs, worst = 0;
  unsigned forks = 0;
  while (now_s() < end) {
    pid_t pid = fork();
    if (pid < 0)
      DIE("fork: %s", strerror(errno));
    if (pid == 0)
      _exit(child(forks));
    double started = now_s();
    int status;
    pid_t r;
    while ((r = waitpid(pid, &status, WNOHANG)) == 0) {
      if (now_s() - started > CHILD_TIMEOUT) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        DIE("child %u (pid %d) hung for %.0f s after fork", forks, (int)pid,
            CHILD_TIMEOUT);
      }
      usleep(200);
    }
    if (r < 0)
      DIE("waitpid: %s", strerror(errno));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      DIE("child %u: %s %d", forks,
          WIFEXITED(status) ? "exit status" : "killed by signal",
          WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    if (now_s() - started > worst)
      worst = now_s() - started;
    forks++;
  }
  atomic_store(&stop, 1);
  for (unsigned t = 0; t < THREADS; t++)
    pthread_join(th[t], NULL);
  double elapsed = now_s() - t0;
  hs_stats_t st;
  hs_get_stats(&st, sizeof st);
  if (st.dropped_traces)
    DIE("%llu traces dropped", (unsigned long long)st.dropped_traces);
  if (forks < 10)
    DIE("only %u forks in %.1f s", forks, elapsed);
  printf("stress fork: %.1f s, %u forks (%.0f/s, slowest child %.0f ms), "
         "%llu allocation operations in %u threads meanwhile: ok\n",
         elapsed, forks, forks / elapsed, worst * 1e3,
         (unsigned long long)atomic_load(&total_ops), THREADS);
  return 0;
}
