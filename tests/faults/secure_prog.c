/* secure_prog.c - linked with libheapsnap (static), run setuid or setgid by
 * the security test: says whether the process is in secure execution and
 * whether HEAPSNAP_* in its environment started tracing. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/auxv.h>

#include "heapsnap.h"

int main(void) {
  char *volatile p = malloc(1000);
  printf("secure=%lu tracing=%d\n", getauxval(AT_SECURE), hs_is_tracing());
  free(p);
  return 0;
}
