/* prog_leak_stress.c - hs_leak_check against busy threads: allocating and
 * freeing, sleeping (EINTR is retried here, as careful programs do),
 * blocked in a condition variable, and one that blocks every signal (it
 * cannot park: the check must go on without it and say it was partial).
 * Every check completes and every thread runs on afterwards. */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "heapsnap.h"

/* dlsym's object pointer made a function pointer without the cast ISO C
 * forbids. */
#define SYM(fp, name)                                                         \
  do {                                                                        \
    void *sym_ = dlsym(RTLD_DEFAULT, name);                                   \
    memcpy(&(fp), &sym_, sizeof(fp));                                         \
  } while (0)

#define NWORK 16
static atomic_int stop, progress[NWORK + 2];

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
  int (*check)(hs_leak_summary_t *);
  SYM(check, "hs_leak_check");
  if (!check) {
    printf("no heapsnap\n");
    return 0;
  }
  pthread_t t[NWORK + 1];
  for (long i = 0; i < NWORK; i++)
    pthread_create(&t[i], NULL, churn, (void *)i);
  int bad = 0;
  for (int round = 0; round < 10; round++) {
    hs_leak_summary_t s;
    int rc = check(&s);
    if (rc != 0 || s.partial || s.threads != NWORK + 1) {
      fprintf(stderr, "round %d: rc %d threads %u missed %u partial %d\n",
              round, rc, s.threads, s.threads_missed, s.partial);
      bad = 1;
    }
  }
  pthread_create(&t[NWORK], NULL, deaf, NULL);
  while (atomic_load(&progress[NWORK]) == 0)
    ;
  hs_leak_summary_t s;
  int rc = check(&s);
  if (rc != 0 || !s.partial || s.threads_missed != 1) {
    fprintf(stderr, "deaf thread: rc %d missed %u partial %d\n", rc,
            s.threads_missed, s.partial);
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
  printf(bad ? "failed\n" : "ok\n");
  return bad;
}
