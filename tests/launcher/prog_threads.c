/* prog_threads.c - 8 threads allocating and freeing; prints a checksum
 * that does not depend on scheduling. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *work(void *arg) {
  unsigned seed = (unsigned)(size_t)arg, sum = 0;
  void *keep[64] = {0};
  for (int i = 0; i < 50000; i++) {
    seed = seed * 1103515245u + 12345u;
    int k = (seed >> 8) % 64;
    free(keep[k]);
    size_t n = 1 + (seed >> 4) % 700;
    keep[k] = malloc(n);
    memset(keep[k], (int)i, n);
    sum += (unsigned)n;
  }
  for (int k = 0; k < 32; k++) /* leave half of them live: leaks */
    free(keep[k]);
  return (void *)(size_t)sum;
}

int main(void) {
  pthread_t t[8];
  for (size_t i = 0; i < 8; i++)
    pthread_create(&t[i], NULL, work, (void *)(i + 1));
  unsigned long total = 0;
  for (int i = 0; i < 8; i++) {
    void *r;
    pthread_join(t[i], &r);
    total += (size_t)r;
  }
  printf("total=%lu\n", total);
  return 0;
}
