/* stress.h - what the stress programs share: a per-thread random generator,
 * a clock, the failure report, and the exact accounting check. */
#ifndef HS_STRESS_H
#define HS_STRESS_H

#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "heapsnap.h"

#define DIE(...)                                                              \
  do {                                                                        \
    fprintf(stderr, "FAIL %s: ", __FILE__);                                   \
    fprintf(stderr, __VA_ARGS__);                                             \
    fputc('\n', stderr);                                                      \
    exit(1);                                                                  \
  } while (0)

/* xorshift64*: no libc state, so threads never share a lock for it. */
static inline uint64_t rnd(uint64_t *s) {
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 0x2545F4914F6CDD1Dull;
}

static inline double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline double arg_seconds(int argc, char **argv, double dflt) {
  double d = argc > 1 ? atof(argv[1]) : dflt;
  return d > 0 ? d : dflt;
}

/* Sizes mostly small, sometimes pages, rarely a megabyte; 0 now and then. */
static inline size_t rnd_size(uint64_t *s) {
  uint64_t r = rnd(s);
  unsigned k = (unsigned)(r % 256);
  if (k < 4)
    return 0;
  if (k < 5)
    return (size_t)(r >> 20) % (1u << 20);
  if (k < 16)
    return (size_t)(r >> 20) % 65536;
  return (size_t)(r >> 20) % 512;
}

static inline uint64_t traced_now(void) {
  size_t c;
  hs_get_traced_memory(&c, NULL);
  return c;
}

#endif
