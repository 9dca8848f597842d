/* prog_triggers.c - behaviours the launcher's trigger tests need: raise a
 * signal, grow and shrink the heap, run for a while, die by a signal. */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void nap(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0)
    ;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  if (!strcmp(mode, "signal")) {
    void *p = malloc(4096);
    raise(SIGUSR2);
    nap(300);
    raise(SIGUSR2);
    nap(300);
    printf("signalled %p\n", p ? (void *)"ok" : NULL);
    return 0;
  }
  if (!strcmp(mode, "grow")) {
    /* Up to N MiB in 1 MiB steps, then back down to 1 MiB. */
    int n = argc > 2 ? atoi(argv[2]) : 20;
    void **b = calloc((size_t)n, sizeof *b);
    for (int i = 0; i < n; i++) {
      b[i] = malloc(1 << 20);
      memset(b[i], 1, 1 << 20);
      nap(20);
    }
    /* Hold the top for a moment: the peak snapshot is taken by heapsnap's
     * writer thread shortly after the crossing, which a loaded machine can
     * delay past a 20 ms step. */
    nap(200);
    for (int i = 1; i < n; i++)
      free(b[i]);
    nap(50);
    printf("grew to %d MiB\n", n);
    return 0;
  }
  if (!strcmp(mode, "sleep")) {
    void *p = malloc(100);
    nap(argc > 2 ? atol(argv[2]) : 1000);
    printf("slept %s\n", p ? "ok" : "?");
    return 0;
  }
  if (!strcmp(mode, "files")) {
    /* Runs until DIR holds N files (at most 120 s): how many periodic
     * snapshots fit in a fixed time is the scheduler's to say. */
    const char *dir = argc > 2 ? argv[2] : ".";
    int want = argc > 3 ? atoi(argv[3]) : 1, have = 0;
    void *p = malloc(100);
    for (int ms = 0; ms < 120000 && have < want; ms += 20) {
      nap(20);
      have = 0;
      DIR *d = opendir(dir);
      for (struct dirent *e; d && (e = readdir(d));)
        have += strstr(e->d_name, ".hsnap") != NULL &&
                strstr(e->d_name, ".tmp") == NULL;
      if (d)
        closedir(d);
    }
    printf("saw %d %s\n", have, p ? "ok" : "?");
    return 0;
  }
  if (!strcmp(mode, "kill")) {
    printf("dying\n");
    fflush(stdout);
    raise(SIGTERM);
  }
  return 9;
}
