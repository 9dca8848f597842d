/* workload.c - the peers benchmark's native workload, not linked with
 * heapsnap: allocation-heavy, stacks 5 to 40 frames deep, a sliding window
 * of live blocks; one thread or several. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static long ops;
static size_t window_len = 100000;
static volatile uintptr_t sink;

typedef struct {
  uint64_t rng;
  void **window;
} ctx_t;

static uint64_t next(ctx_t *c) {
  c->rng ^= c->rng << 13;
  c->rng ^= c->rng >> 7;
  c->rng ^= c->rng << 17;
  return c->rng;
}

static void __attribute__((noinline)) leaf(ctx_t *c, size_t slot, size_t n) {
  free(c->window[slot]);
  char *p = malloc(n);
  p[0] = (char)n;
  c->window[slot] = p;
}

static void __attribute__((noinline)) down_b(ctx_t *c, int d, size_t s, size_t n);
static void __attribute__((noinline)) down_a(ctx_t *c, int d, size_t s, size_t n) {
  if (d <= 0)
    leaf(c, s, n);
  else if (d % 3 == 0)
    down_b(c, d - 1, s, n);
  else
    down_a(c, d - 1, s, n);
  sink += (uintptr_t)d;
}
static void __attribute__((noinline)) down_b(ctx_t *c, int d, size_t s, size_t n) {
  if (d <= 0)
    leaf(c, s, n);
  else
    down_a(c, d - 1, s, n);
  sink += (uintptr_t)d;
}

static void *run(void *arg) {
  ctx_t c = {88172645463325252ull + (uintptr_t)arg, NULL};
  c.window = calloc(window_len, sizeof *c.window);
  for (long i = 0; i < ops; i++) {
    uint64_t r = next(&c);
    down_a(&c, 2 + (int)(r % 36), (size_t)((r >> 20) % window_len),
           16 + (size_t)((r >> 8) % 497));
  }
  for (size_t i = 0; i < window_len; i++)
    free(c.window[i]);
  free(c.window);
  return NULL;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 1;
  ops = argc > 2 ? atol(argv[2]) : 1000000;
  if (threads < 1 || threads > 64)
    return 2;
  pthread_t t[64];
  for (int i = 0; i < threads; i++)
    pthread_create(&t[i], NULL, run, (void *)(uintptr_t)i);
  for (int i = 0; i < threads; i++)
    pthread_join(t[i], NULL);
  printf("%d thread(s) x %ld allocations\n", threads, ops);
  return 0;
}
