/* prog_exit7.c - a plain C program for the preload tests (never linked with
 * heapsnap): exercises the whole malloc family, prints fixed text, exits 7. */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct node {
  struct node *next;
  char *name;
  int value;
} node_t;

static int cmp_int(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

int main(void) {
  node_t *head = NULL;
  for (int i = 0; i < 20000; i++) {
    node_t *n = malloc(sizeof *n);
    char buf[32];
    snprintf(buf, sizeof buf, "node-%d", i);
    n->name = strdup(buf);
    n->value = (i * 7919) % 10007;
    n->next = head;
    head = n;
  }
  int *vals = NULL;
  size_t cap = 0, len = 0;
  for (node_t *n = head; n; n = n->next) {
    if (len == cap) {
      cap = cap ? cap * 2 : 4;
      vals = reallocarray(vals, cap, sizeof *vals);
    }
    vals[len++] = n->value;
  }
  qsort(vals, len, sizeof *vals, cmp_int);
  long sum = 0;
  for (size_t i = 0; i < len; i++)
    sum += vals[i] * (long)(i % 13);
  void *a = NULL;
  if (posix_memalign(&a, 64, 1000) != 0)
    return 1;
  void *b = aligned_alloc(128, 256);
  void *c = memalign(4096, 10);
  void *d = valloc(100);
  void *e = pvalloc(100);
  int *z = calloc(1000, sizeof *z);
  int zeros = 0;
  for (int i = 0; i < 1000; i++)
    zeros += z[i] == 0;
  printf("nodes=%zu min=%d max=%d weighted=%ld zeros=%d aligned=%d\n", len,
         vals[0], vals[len - 1], sum, zeros,
         ((size_t)a % 64 | (size_t)b % 128 | (size_t)c % 4096 |
          (size_t)d % 4096 | (size_t)e % 4096) == 0);
  fprintf(stderr, "stderr line from prog_exit7\n");
  while (head) {
    node_t *n = head;
    head = n->next;
    free(n->name);
    free(n);
  }
  free(vals);
  free(a);
  free(b);
  free(c);
  free(d);
  free(e);
  free(z);
  fflush(stdout);
  return 7;
}
