/* paths.c - allocations from 48 call paths 4 to 31 frames deep, in four
 * threads, built without frame pointers; a signal handler that calls
 * backtrace() checks that the host's own unwinding still works. */
#include <execinfo.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t bt_frames;
static void on_usr1(int sig) {
  void *b[64];
  (void)sig;
  bt_frames = backtrace(b, 64);
}

typedef struct {
  uint64_t rng;
  void *keep[256];
  uint64_t sum;
} ctx_t;

static void __attribute__((noinline)) leaf(ctx_t *c, unsigned n) {
  unsigned slot = (unsigned)(c->rng >> 11) & 255;
  free(c->keep[slot]);
  char *p = malloc(16 + n % 200);
  memset(p, (int)n, 16);
  c->keep[slot] = p;
  c->sum += (unsigned char)p[3];
}

/* Each level has its own frame size, so every path's frames differ. */
#define LEVEL(k)                                                            \
  static void __attribute__((noinline)) lv##k(ctx_t *c, int d, unsigned n) { \
    volatile char pad[8 * (k % 5) + 1];                                     \
    pad[0] = (char)d;                                                       \
    if (d <= 0)                                                             \
      leaf(c, n + (unsigned)pad[0]);                                        \
    else                                                                    \
      step(c, d - 1, n * 31 + k);                                           \
    c->sum += (uint64_t)pad[0];                                             \
  }
static void step(ctx_t *c, int d, unsigned n);
LEVEL(0) LEVEL(1) LEVEL(2) LEVEL(3) LEVEL(4) LEVEL(5) LEVEL(6) LEVEL(7)
static void (*const levels[8])(ctx_t *, int, unsigned) = {lv0, lv1, lv2, lv3,
                                                          lv4, lv5, lv6, lv7};
static void __attribute__((noinline)) step(ctx_t *c, int d, unsigned n) {
  levels[(n ^ (unsigned)d) & 7](c, d, n);
}

static void *run(void *arg) {
  ctx_t *c = arg;
  for (int i = 0; i < 20000; i++) {
    c->rng ^= c->rng << 13;
    c->rng ^= c->rng >> 7;
    c->rng ^= c->rng << 17;
    int path = (int)(c->rng % 48);
    step(c, 3 + path % 28, (unsigned)path);
  }
  for (int i = 0; i < 256; i++)
    free(c->keep[i]);
  return NULL;
}

int main(void) {
  signal(SIGUSR1, on_usr1);
  ctx_t c[4];
  pthread_t t[4];
  memset(c, 0, sizeof c);
  for (int i = 0; i < 4; i++) {
    c[i].rng = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1);
    pthread_create(&t[i], NULL, run, &c[i]);
  }
  raise(SIGUSR1);
  uint64_t sum = 0;
  for (int i = 0; i < 4; i++) {
    pthread_join(t[i], NULL);
    sum += c[i].sum;
  }
  printf("sum %llu backtrace %s\n", (unsigned long long)sum,
         bt_frames >= 3 ? "ok" : "broken");
  return bt_frames >= 3 ? 0 : 1;
}
