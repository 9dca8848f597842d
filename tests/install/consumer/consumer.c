/* consumer.c - uses an installed heapsnap the way a user's program does. */
#include <heapsnap.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
  /* The installed header and the library the loader found agree. */
  if (hs_version() != HS_VERSION) {
    fprintf(stderr, "header %d, library %d\n", HS_VERSION, hs_version());
    return 1;
  }
  if (hs_start(8) != 0)
    return 1;
  void *p = malloc(1234);
  size_t cur;
  hs_get_traced_memory(&cur, NULL);
  uintptr_t f[8];
  int n = hs_get_object_traceback(p, f, 8);
  hs_stats_t st;
  if (hs_get_stats(&st, sizeof st) != 0 || st.struct_size != sizeof st)
    return 1;
  printf("heapsnap %s: traced=%zu frames=%d\n", HS_VERSION_STRING, cur, n);
  free(p);
  hs_stop();
  return cur >= 1234 && n >= 1 ? 0 : 1;
}
