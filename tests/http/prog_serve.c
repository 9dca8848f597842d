/* prog_serve.c - the traced program of the endpoint tests: known blocks at
 * known lines, then a second site once a trigger file appears, then it
 * waits for a stop file (with "fork", in a forked child as well; with
 * "closefds" it first closes every descriptor above 2, as daemons do, and
 * keeps bytes in a pipe that takes their numbers, which must be there at
 * the end). Its stdout is fixed text so the tests can check that serving
 * never changed it. Usage: prog_serve TRIGGER STOP [fork|closefds] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

static void *volatile keep[4096];

__attribute__((noinline)) static void site_before(void) {
  for (int i = 0; i < 1000; i++)
    keep[i] = malloc(4096); /* 1000 x 4 KiB: the top of /heap */
}

__attribute__((noinline)) static void site_small(void) {
  for (int i = 0; i < 100; i++)
    keep[1000 + i] = malloc(64);
}

__attribute__((noinline)) static void site_after(void) {
  for (int i = 0; i < 300; i++)
    keep[2000 + i] = malloc(1024); /* after the trigger: the delta */
}

static void nap(void) {
  struct timespec ts = {0, 20 * 1000 * 1000};
  nanosleep(&ts, NULL);
}

int main(int argc, char **argv) {
  const char *trigger = argc > 1 ? argv[1] : NULL;
  const char *stop = argc > 2 ? argv[2] : NULL;
  site_before();
  site_small();
  printf("prog_serve: allocated\n");
  fflush(stdout);
  pid_t child = -1;
  int mine[2] = {-1, -1};
  if (argc > 3 && !strcmp(argv[3], "closefds")) {
    for (int fd = 3; fd < 1024; fd++)
      close(fd);
    if (pipe(mine) != 0 || write(mine[1], "host", 4) != 4)
      return 4;
  }
  if (argc > 3 && !strcmp(argv[3], "fork") && (child = fork()) == 0) {
    while (access(stop, F_OK) != 0)
      nap();
    _exit(0);
  }
  while (trigger && access(trigger, F_OK) != 0)
    nap();
  if (trigger) {
    site_after();
    printf("prog_serve: triggered\n");
    fflush(stdout);
  }
  while (!stop || access(stop, F_OK) != 0)
    nap();
  char got[8] = "";
  if (mine[0] >= 0 && (read(mine[0], got, 4) != 4 || memcmp(got, "host", 4)))
    return 5; /* someone read our pipe */
  int status = 0;
  if (child > 0 && (waitpid(child, &status, 0) != child || status != 0))
    return 3;
  printf("prog_serve: done\n");
  return 0;
}
