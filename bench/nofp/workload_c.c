/* workload_c.c - driver of the no-frame-pointer C workload: OPS allocations
 * in total over 64 generated call paths (4 to 35 frames), each replacing a
 * random block of a sliding window of live ones; one thread or several. */
#include <pthread.h>
#include <stdio.h>

#include "workload_c.h"

volatile uint64_t sink;

static long ops_per_thread;
static size_t window_len = 100000;

static uint64_t next(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static void *run(void *arg) {
  ctx_t c = {88172645463325252ull + 7919 * (uintptr_t)arg, NULL, window_len, 0};
  c.window = calloc(window_len, sizeof *c.window);
  if (!c.window)
    abort();
  for (long i = 0; i < ops_per_thread; i++) {
    uint64_t r = next(&c.rng);
    /* The path from high bits, the leaf's slot and size from the others,
     * so that they vary independently. */
    nofp_paths[(r >> 58) % NOFP_PATHS](&c, r);
  }
  for (size_t i = 0; i < window_len; i++)
    free(c.window[i]);
  free(c.window);
  return (void *)(uintptr_t)c.allocs;
}

int main(int argc, char **argv) {
  long ops = argc > 1 ? atol(argv[1]) : 2000000;
  int threads = argc > 2 ? atoi(argv[2]) : 1;
  if (ops < 1 || threads < 1 || threads > 64) {
    fprintf(stderr, "usage: %s [OPS [THREADS]]\n", argv[0]);
    return 2;
  }
  ops_per_thread = ops / threads;
  pthread_t t[64];
  for (int i = 0; i < threads; i++)
    if (pthread_create(&t[i], NULL, run, (void *)(uintptr_t)i) != 0)
      return 1;
  long allocs = 0;
  for (int i = 0; i < threads; i++) {
    void *n;
    pthread_join(t[i], &n);
    allocs += (long)(uintptr_t)n;
  }
  int lo = NOFP_PATHS, hi = 0;
  for (int i = 0; i < NOFP_PATHS; i++) {
    lo = nofp_depths[i] < lo ? nofp_depths[i] : lo;
    hi = nofp_depths[i] > hi ? nofp_depths[i] : hi;
  }
  printf("C: %ld allocations, %d thread(s), %d call paths %d-%d frames deep, "
         "window %zu live blocks per thread\n",
         allocs, threads, NOFP_PATHS, lo, hi, window_len);
  return 0;
}
