/* prog_dlopen.c - loads and unloads a library many times, allocating
 * through it, and keeps some of its blocks past the dlclose. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  if (argc < 2)
    return 2;
  void *kept[50];
  int n = 0;
  for (int i = 0; i < 50; i++) {
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h)
      return 3;
    void *(*fn)(size_t);
    void *sym = dlsym(h, "dl_alloc");
    memcpy(&fn, &sym, sizeof fn);
    kept[n++] = fn(100 + i);
    dlclose(h);
  }
  printf("loaded and unloaded %d times, %d blocks kept\n", n,
         kept[0] && kept[n - 1] ? n : 0);
  return 0;
}
