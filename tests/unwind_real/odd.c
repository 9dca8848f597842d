/* odd.c - frames whose rules do not fit the compact form or use rbp in
 * code without frame pointers: a 16 KiB frame (CFA offset too large), a
 * realigned stack (the CFA is a DWARF expression), alloca (CFA from rbp),
 * each allocating, in turns and nested. */
#include <alloca.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned long sum;

static void __attribute__((noinline)) take(size_t n) {
  char *p = malloc(n);
  memset(p, 3, n);
  sum += (unsigned char)p[n - 1];
  free(p);
}

static void __attribute__((noinline)) big_frame(int d);
static void __attribute__((noinline)) aligned_frame(int d);
static void __attribute__((noinline)) alloca_frame(int d);

static void next(int d) {
  switch (d % 3) {
  case 0:
    big_frame(d - 1);
    break;
  case 1:
    aligned_frame(d - 1);
    break;
  default:
    alloca_frame(d - 1);
  }
}

static void __attribute__((noinline)) big_frame(int d) {
  volatile char pad[16384];
  pad[d & 1023] = (char)d;
  if (d > 0)
    next(d);
  take(24 + (size_t)pad[d & 1023] % 8);
}

static void __attribute__((noinline)) aligned_frame(int d) {
  alignas(64) volatile char pad[256];
  pad[d & 255] = (char)d;
  if (d > 0)
    next(d);
  take(40 + (size_t)pad[d & 255] % 8);
}

static void __attribute__((noinline)) alloca_frame(int d) {
  volatile char *pad = alloca(64 + (size_t)(d & 7) * 16);
  pad[0] = (char)d;
  if (d > 0)
    next(d);
  take(56 + (size_t)pad[0] % 8);
}

int main(void) {
  for (int i = 0; i < 3000; i++)
    next(3 + i % 12);
  printf("odd %lu\n", sum);
  return 0;
}
