/* prog_leaks.c - a program whose leaks are known by construction, one kind
 * per marked line; it checks itself with hs_leak_check (under the preload)
 * or VALGRIND_DO_LEAK_CHECK (under valgrind), with its threads alive. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__has_include) && __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#else
#define VALGRIND_DO_LEAK_CHECK ((void)0)
#endif

#include "heapsnap.h"
#include "prog.h"

struct node {
  struct node *next;
  char pad[24];
};

/* Not static, and volatile: the compiler must not prove them unread and
 * drop the allocations that go with them. */
void *volatile g_over;
void *volatile g_cache[8];
char *volatile g_interior;
static atomic_int ready, stop;

NOINLINE static void overwritten(void) {
  g_over = malloc(40); /* L:over_lost */
  memset(g_over, 0, 40);
  g_over = malloc(48); /* L:over_kept */
  memset(g_over, 0, 48);
}

NOINLINE static void lost_list(void) {
  struct node *head = calloc(1, sizeof *head); /* L:list_head */
  struct node *p = head;
  for (int i = 0; i < 5; i++) {
    p->next = calloc(1, sizeof *p); /* L:list_node */
    p = p->next;
  }
  __asm__ volatile("" ::"r"(head) : "memory");
}

NOINLINE static void cache(void) {
  for (int i = 0; i < 8; i++) {
    g_cache[i] = malloc(32); /* L:cache */
    memset(g_cache[i], 0, 32);
  }
}

/* Offset 40 of 64 zeroed bytes: none of valgrind's heuristics (std::string,
 * length64, new[], multiple inheritance) makes it a start pointer. */
NOINLINE static void interior(void) {
  char *p = calloc(1, 64); /* L:interior */
  g_interior = p + 40;
}

/* The block's only pointer lives in a register of a spinning thread. */
static void *in_register(void *arg) {
  (void)arg;
  uintptr_t enc = (uintptr_t)calloc(1, 72) ^ KEY; /* L:register */
  scrub();
  uintptr_t r = enc ^ KEY;
  __asm__ volatile("" : "+r"(r));
  atomic_store(&ready, atomic_load(&ready) + 1);
  while (!atomic_load_explicit(&stop, memory_order_relaxed))
    __asm__ volatile("pause" : "+r"(r));
  free((void *)r);
  return NULL;
}

/* The block's only pointer lives on a blocked thread's stack. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
NOINLINE static void hold_on_stack(void) {
  volatile uintptr_t slot[4];
  slot[0] = 0;
  slot[1] = (uintptr_t)calloc(1, 80) ^ KEY; /* L:stack */
  slot[1] ^= KEY;
  scrub();
  pthread_mutex_lock(&mu);
  atomic_store(&ready, atomic_load(&ready) + 1);
  while (!atomic_load(&stop))
    pthread_cond_wait(&cv, &mu);
  pthread_mutex_unlock(&mu);
  free((void *)slot[1]);
}

static void *on_stack(void *arg) {
  (void)arg;
  hold_on_stack();
  return NULL;
}

/* Blocks whose pointers died with their thread. */
static void *exiting(void *arg) {
  (void)arg;
  for (int i = 0; i < 3; i++) {
    void *p = calloc(1, 88); /* L:exited */
    __asm__ volatile("" ::"r"(p) : "memory");
  }
  scrub();
  return NULL;
}

NOINLINE static int check(const char *out) {
  int (*check_fn)(hs_leak_summary_t *);
  SYM(check_fn, "hs_leak_check");
  if (!check_fn) {
    VALGRIND_DO_LEAK_CHECK;
    return 0;
  }
  int (*take)(hs_snapshot_t **);
  int (*dump)(hs_snapshot_t *, const char *);
  void (*sfree)(hs_snapshot_t *);
  SYM(take, "hs_take_snapshot");
  SYM(dump, "hs_snapshot_dump");
  SYM(sfree, "hs_snapshot_free");
  hs_leak_summary_t sum;
  int rc = check_fn(&sum);
  if (rc != 0) {
    fprintf(stderr, "hs_leak_check: %d\n", rc);
    return 1;
  }
  fprintf(stderr, "threads %u missed %u partial %d\n", sum.threads,
          sum.threads_missed, sum.partial);
  hs_snapshot_t *s;
  if (take(&s) != 0 || dump(s, out) != 0) {
    fprintf(stderr, "snapshot failed\n");
    return 1;
  }
  sfree(s);
  return 0;
}

int main(int argc, char **argv) {
  const char *out = argc > 1 ? argv[1] : "leaks.hsnap";
  overwritten();
  lost_list();
  cache();
  interior();
  pthread_t t1, t2, t3;
  pthread_create(&t1, NULL, in_register, NULL);
  pthread_create(&t2, NULL, on_stack, NULL);
  while (atomic_load(&ready) < 2)
    ;
  pthread_create(&t3, NULL, exiting, NULL); /* L:exited_dtv */
  pthread_join(t3, NULL);
  scrub();
  int rc = check(out);
  pthread_mutex_lock(&mu);
  atomic_store(&stop, 1);
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
  pthread_join(t1, NULL);
  pthread_join(t2, NULL);
  printf("done\n");
  return rc;
}
