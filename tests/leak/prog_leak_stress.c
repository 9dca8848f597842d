/* prog_leak_stress.c - hs_leak_check against busy threads: allocating and
 * freeing, sleeping (EINTR is retried here, as careful programs do),
 * blocked in a condition variable, and one that blocks every signal (the
 * signal cannot park it: the check must go on without it and say it was
 * partial; ptrace stops it like any other).
 * Every check completes and every thread runs on afterwards. */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "heapsnap.h"
#include "prog.h"

#define NWORK 16
static atomic_int stop, progress[NWORK + 2], forks_bad, forks_done;
static int (*check)(hs_leak_summary_t *);

/* Forks while the checks run; each child checks itself (one thread: never
 * partial) and says so in its status. */
static void *forker(void *arg) {
  (void)arg;
  for (int i = 0; i < 20 && !atomic_load(&stop); i++) {
    pid_t pid = fork();
    if (pid == 0) {
      hs_leak_summary_t s;
      _exit(check(&s) == 0 && s.threads == 1 ? 0 : 1);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
        WEXITSTATUS(st) != 0)
      atomic_fetch_add(&forks_bad, 1);
    atomic_fetch_add(&forks_done, 1);
  }
  return NULL;
}

static void *churn(void *arg) {
  int id = (int)(long)arg;
  void *keep[64] = {0};
  unsigned x = (unsigned)id * 2654435761u + 1;
  while (!atomic_load(&stop)) {
    x = x * 1103515245u + 12345u;
    unsigned i = (x >> 8) % 64;
    free(keep[i]);
    keep[i] = malloc(16 + (x >> 20) % 512);
    if (id % 4 == 0) {
      struct timespec ts = {0, 100000};
      while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    }
    atomic_fetch_add(&progress[id], 1);
  }
  for (int i = 0; i < 64; i++)
    free(keep[i]);
  return NULL;
}

static void *deaf(void *arg) {
  (void)arg;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  while (!atomic_load(&stop))
    atomic_fetch_add(&progress[NWORK], 1);
  return NULL;
}

int main(void) {
  SYM(check, "hs_leak_check");
  if (!check) {
    printf("no heapsnap\n");
    return 0;
  }
  pthread_t t[NWORK + 1];
  for (long i = 0; i < NWORK; i++)
    pthread_create(&t[i], NULL, churn, (void *)i);
  int bad = 0, partial_rounds = 0;
  pthread_t fk;
  pthread_create(&fk, NULL, forker, NULL);
  for (int round = 0; round < 10 || atomic_load(&forks_done) < 20; round++) {
    hs_leak_summary_t s;
    int rc = check(&s);
    /* A thread that gets no CPU within the 1 s handshake (a loaded
     * machine, a thread being created or inside fork with its signals
     * blocked) is skipped: partial, which is no failure. What must hold is
     * that the check completes and counts itself. */
    if (s.partial)
      partial_rounds++;
    if (rc != 0 || s.threads < 1) {
      fprintf(stderr, "round %d: rc %d threads %u missed %u partial %d\n",
              round, rc, s.threads, s.threads_missed, s.partial);
      bad = 1;
    }
  }
  pthread_join(fk, NULL);
  if (atomic_load(&forks_bad)) {
    fprintf(stderr, "%d fork children failed their check\n",
            atomic_load(&forks_bad));
    bad = 1;
  }
  pthread_create(&t[NWORK], NULL, deaf, NULL);
  while (atomic_load(&progress[NWORK]) == 0)
    ;
  /* ptrace stops it whatever its mask; the signal cannot. */
  hs_leak_summary_t s;
  int rc = check(&s);
  int by_signal = s.stopped_by == HS_LEAK_STOP_SIGNAL;
  if (rc != 0 || !s.stopped_by ||
      (by_signal ? !s.partial || s.threads_missed < 1
                 : s.threads_missed != 0)) {
    fprintf(stderr, "deaf thread: rc %d missed %u partial %d stopped_by %d\n",
            rc, s.threads_missed, s.partial, s.stopped_by);
    bad = 1;
  }
  /* Everyone runs on after the checks. */
  int before[NWORK + 1];
  for (int i = 0; i <= NWORK; i++)
    before[i] = atomic_load(&progress[i]);
  for (int i = 0; i <= NWORK; i++) {
    for (int spins = 0; atomic_load(&progress[i]) == before[i]; spins++) {
      struct timespec ts = {0, 1000000};
      nanosleep(&ts, NULL);
      if (spins > 10000) {
        fprintf(stderr, "thread %d did not run again\n", i);
        bad = 1;
        break;
      }
    }
  }
  atomic_store(&stop, 1);
  for (int i = 0; i <= NWORK; i++)
    pthread_join(t[i], NULL);
  if (partial_rounds)
    fprintf(stderr, "%d busy rounds were partial\n", partial_rounds);
  printf(bad ? "failed\n" : "ok\n");
  return bad;
}
