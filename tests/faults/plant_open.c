/* plant_open.c - a preloaded attacker for the security test: just before
 * heapsnap opens its temporary file, plants a symlink to a victim at that
 * exact name (the first PLANT_MAX times), then lets the open go on. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int planted;

__attribute__((visibility("default"))) int open(const char *path, int flags,
                                                ...) {
  mode_t mode = 0;
  if (flags & (O_CREAT | O_TMPFILE)) {
    va_list ap;
    va_start(ap, flags);
    mode = (mode_t)va_arg(ap, int);
    va_end(ap);
  }
  const char *victim = getenv("PLANT_VICTIM");
  const char *max = getenv("PLANT_MAX");
  if (victim && (flags & O_CREAT) && strstr(path, ".hsnap.tmp.") &&
      planted < (max ? atoi(max) : 1) && symlink(victim, path) == 0) {
    planted++;
    char line[600];
    int n = snprintf(line, sizeof line, "plant_open: planted %s -> %s\n",
                     path, victim);
    if (n > 0 && write(2, line, (size_t)n) < 0)
      planted += 0;
  }
  int (*real)(const char *, int, ...);
  void *sym = dlsym(RTLD_NEXT, "open");
  memcpy(&real, &sym, sizeof sym);
  return real(path, flags, mode);
}
