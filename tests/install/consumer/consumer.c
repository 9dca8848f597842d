/* consumer.c - uses an installed heapsnap the way a user's program does. */
#include <heapsnap.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
  if (hs_start(8) != 0)
    return 1;
  void *p = malloc(1234);
  size_t cur;
  hs_get_traced_memory(&cur, NULL);
  uintptr_t f[8];
  int n = hs_get_object_traceback(p, f, 8);
  printf("traced=%zu frames=%d\n", cur, n);
  free(p);
  hs_stop();
  return cur >= 1234 && n >= 1 ? 0 : 1;
}
