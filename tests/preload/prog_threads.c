/* prog_threads.c - a multi-threaded C program for the preload tests (never
 * linked with heapsnap): threads allocate concurrently; output is fixed. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 6
#define ROUNDS 40000

static void *work(void *arg) {
  uintptr_t id = (uintptr_t)arg;
  uint64_t rng = id * 0x9E3779B97F4A7C15ull + 1, sum = 0;
  char *win[128] = {0};
  for (int r = 0; r < ROUNDS; r++) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    int k = (int)(rng % 128);
    size_t n = (size_t)(rng >> 20) % 3000 + 1;
    if (win[k] && (rng >> 50) % 3 == 0) {
      char *q = realloc(win[k], n);
      sum += (unsigned char)q[0];
      win[k] = q;
    } else {
      free(win[k]);
      win[k] = (rng >> 50) % 3 == 1 ? calloc(1, n) : malloc(n);
    }
    memset(win[k], (int)(n & 0x7f), 1);
    sum += n;
  }
  for (int k = 0; k < 128; k++)
    free(win[k]);
  return (void *)(uintptr_t)(sum % 1000003);
}

int main(void) {
  pthread_t th[THREADS];
  for (uintptr_t t = 0; t < THREADS; t++)
    if (pthread_create(&th[t], NULL, work, (void *)t) != 0)
      return 1;
  for (int t = 0; t < THREADS; t++) {
    void *r;
    pthread_join(th[t], &r);
    printf("thread %d: %lu\n", t, (unsigned long)(uintptr_t)r);
  }
  return 0;
}
