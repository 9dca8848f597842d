/* leak_scan.c - how long hs_leak_check takes over N live blocks (default
 * 1M): half kept in a linked list from a global (reachable, each one
 * scanned), half dropped (lost), with T threads asleep (default 0) for it
 * to stop. Run under LD_PRELOAD=libheapsnap.so (HEAPSNAP_LEAK_STOP picks
 * the method), or under valgrind (its VALGRIND_DO_LEAK_CHECK is timed). */
#include <dlfcn.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "heapsnap.h"

#if defined(__has_include) && __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#else
#define RUNNING_ON_VALGRIND 0
#define VALGRIND_DO_LEAK_CHECK ((void)0)
#endif

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

struct node {
  struct node *next;
  char pad[24];
};
struct node *volatile head;

static void *sleeper(void *arg) {
  (void)arg;
  for (;;)
    poll(NULL, 0, 1000);
  return NULL;
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 1000000;
  int nthreads = argc > 2 ? atoi(argv[2]) : 0;
  for (int i = 0; i < nthreads; i++) {
    pthread_t t;
    pthread_create(&t, NULL, sleeper, NULL);
    pthread_detach(t);
  }
  int (*check)(hs_leak_summary_t *);
  void *sym = dlsym(RTLD_DEFAULT, "hs_leak_check");
  memcpy(&check, &sym, sizeof check);
  if (!check && !RUNNING_ON_VALGRIND) {
    fprintf(stderr, "run with LD_PRELOAD=libheapsnap.so HEAPSNAP_FRAMES=N\n");
    return 1;
  }
  for (long i = 0; i < n; i++) {
    struct node *p = calloc(1, sizeof *p);
    if (i % 2 == 0) {
      p->next = head;
      head = p;
    }
  }
  if (!check) {
    double a = now();
    VALGRIND_DO_LEAK_CHECK;
    printf("valgrind: %.3f s in VALGRIND_DO_LEAK_CHECK\n", now() - a);
    return 0;
  }
  for (int r = 0; r < 3; r++) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    hs_leak_summary_t s;
    int rc = check(&s);
    clock_gettime(CLOCK_MONOTONIC, &b);
    static const char *const how[] = {"none", "ptrace", "signal", "both"};
    printf("run %d: rc %d, %.3f s in hs_leak_check, %.3f ms stopped (%s, "
           "%u threads); definite %llu, reachable %llu blocks\n",
           r, rc, (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9,
           s.scan_ns / 1e6, how[s.stopped_by & 3], s.threads,
           (unsigned long long)s.blocks[HS_LEAK_DEFINITE],
           (unsigned long long)s.blocks[HS_LEAK_REACHABLE]);
  }
  return 0;
}
