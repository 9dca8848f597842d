/* fault_prog.c - the host program of the fault-injection tests: a fixed
 * pattern of every allocation function, prints a checksum, exits with 3.
 * Not linked with heapsnap: the tests preload it. */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Enough live blocks that every trace shard grows (64 shards of 256 slots
 * grow past 3/4 full), and enough distinct stacks that every stack shard
 * grows, so that each kind of internal allocation is an injection point. */
#define LIVE 24000
#define DEPTHS 12
#define SITES 8

static uint64_t sum;

static void touch(unsigned char *p, size_t n, unsigned tag) {
  for (size_t i = 0; i < n; i += 61)
    p[i] = (unsigned char)(tag + i);
  if (n)
    p[n - 1] = (unsigned char)tag;
}

static void mix(const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i += 61)
    sum = sum * 31 + p[i];
  if (n)
    sum = sum * 31 + p[n - 1];
}

/* Each (depth, site) pair is a distinct stack. */
static __attribute__((noinline)) void *site(unsigned s, size_t n) {
  void *p = NULL;
  switch (s) {
  case 0: p = malloc(n); break;
  case 1: p = calloc(1, n); break;
  case 2: p = realloc(NULL, n); break;
  case 3: p = reallocarray(NULL, n, 1); break;
  case 4: if (posix_memalign(&p, 64, n)) p = NULL; break;
  case 5: p = aligned_alloc(32, (n + 31) & ~(size_t)31); break;
  case 6: p = memalign(128, n); break;
  default: p = n > 2000 ? valloc(n) : pvalloc(n); break;
  }
  __asm__ volatile("" ::: "memory");
  return p;
}

static __attribute__((noinline)) void *deep(unsigned depth, unsigned s,
                                            size_t n) {
  void *p = depth ? deep(depth - 1, s, n) : site(s, n);
  __asm__ volatile("" ::: "memory");
  return p;
}

int main(void) {
  static void *keep[LIVE];
  static size_t len[LIVE];
  uint32_t x = 12345;
  for (unsigned i = 0; i < LIVE; i++) {
    x = x * 1103515245u + 12345u;
    size_t n = (x >> 16) % 200 + 1;
    unsigned d = i % DEPTHS, s = (i / DEPTHS) % SITES;
    if (i % 97 == 0)
      s = 7, n += 3000; /* a few page-sized blocks */
    keep[i] = deep(d, s, n);
    if (!keep[i])
      return 1;
    len[i] = n;
    touch(keep[i], n, i);
  }
  /* Churn: grow, shrink, free and replace; realloc to 0 frees. */
  for (unsigned i = 0; i < LIVE; i += 3) {
    size_t n = len[i] * 2 + 5;
    unsigned char *p = realloc(keep[i], n);
    if (!p)
      return 1;
    memset(p + len[i], 7, n - len[i]);
    keep[i] = p, len[i] = n;
  }
  for (unsigned i = 1; i < LIVE; i += 5) {
    void *gone = realloc(keep[i], 0); /* glibc: frees, returns NULL */
    free(gone);
    keep[i] = reallocarray(NULL, 4, 8);
    if (!keep[i])
      return 1;
    len[i] = 32;
    touch(keep[i], 32, i);
  }
  for (unsigned i = 2; i < LIVE; i += 2) {
    mix(keep[i], len[i]);
    free(keep[i]);
    keep[i] = NULL;
  }
  for (unsigned i = 0; i < LIVE; i++)
    if (keep[i])
      mix(keep[i], len[i]);
  /* What is left is leaked on purpose: the exit snapshot holds it. */
  printf("checksum %016llx\n", (unsigned long long)sum);
  return 3;
}
