/* prog_lossy.c - a host whose snapshots fail more than once, in an order a
 * test can rely on without timing: it asks for one (SIGUSR2), waits until
 * heapsnap's first failure line is in its own stderr file, then exits (the
 * exit snapshot is the second failure). Prints one line, exits 3. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* 1 when the file holds the text. */
static int holds(const char *path, const char *text) {
  char buf[8192];
  FILE *f = fopen(path, "r");
  if (!f)
    return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  return strstr(buf, text) != NULL;
}

int main(int argc, char **argv) {
  void *keep = malloc(4096);
  if (argc > 2) {
    raise(SIGUSR2);
    /* ctest's timeout bounds this: no failure line is a failed test. */
    while (!holds(argv[1], argv[2])) {
      struct timespec ts = {0, 10 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
  }
  printf("lossy %s\n", keep ? "ran" : "?");
  return 3;
}
