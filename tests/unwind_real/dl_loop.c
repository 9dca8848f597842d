/* dl_loop.c - loads and unloads two libraries in turn, usually at the same
 * address, allocating through each. Under the preload it checks each
 * block's recorded stack against the return addresses the library saw
 * (hs_get_object_traceback, found at run time): a rule kept from the other
 * library would unwind its frames wrongly. Exits 3 on a wrong stack. */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  if (argc != 3)
    return 2;
  uintptr_t first[2] = {0, 0};
  int same = 0, checked = 0, wrong = 0;
  int (*traceback)(const void *, uintptr_t *, int) = NULL;
  void *tb = dlsym(RTLD_DEFAULT, "hs_get_object_traceback");
  memcpy(&traceback, &tb, sizeof traceback);
  for (int i = 0; i < 60; i++) {
    void *h = dlopen(argv[1 + (i & 1)], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      fprintf(stderr, "dl_loop: %s\n", dlerror());
      return 1;
    }
    void *(*outer)(size_t);
    void *sym = dlsym(h, "dl_outer");
    memcpy(&outer, &sym, sizeof outer); /* ISO C has no object-to-code cast */
    if (!sym)
      return 1;
    void **ret = dlsym(h, "dl_ret");
    for (int k = 0; k < 50; k++) {
      void *p = outer(32 + (size_t)k);
      uintptr_t f[8];
      int got = tb && ret ? traceback(p, f, 8) : 0;
      if (got > 0) {
        checked++;
        wrong += got < 3 || f[1] != (uintptr_t)ret[0] ||
                 f[2] != (uintptr_t)ret[1];
      }
      free(p);
    }
    uintptr_t at = (uintptr_t)sym;
    if (i < 2)
      first[i] = at;
    else
      same += at == first[i & 1] && first[0] == first[1];
    dlclose(h);
  }
  printf("dl_loop: done\n");
  fprintf(stderr,
          "dl_loop: both libraries at one address in %d of 58 loads; %d "
          "stacks checked, %d wrong\n",
          same, checked, wrong);
  return wrong ? 3 : 0;
}
