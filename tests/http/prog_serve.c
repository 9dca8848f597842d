/* prog_serve.c - the traced program of the endpoint tests: known blocks at
 * known lines, then a second site once a trigger file appears, then it
 * waits for a stop file (with "fork", in a forked child as well; with
 * "closefds" it first closes every descriptor above 2, as daemons do, and
 * keeps bytes in a pipe that takes their numbers, which must be there at
 * the end). Its stdout is fixed text so the tests can check that serving
 * never changed it. Meanwhile it takes orders from files TRIGGER.free (free
 * site_small's blocks) and TRIGGER.churn.K (one more round of
 * site_churn_again), one at a time in that order, and acknowledges each in
 * TRIGGER.done.free / TRIGGER.done.churn.K with the CLOCK_REALTIME
 * nanoseconds at which its allocations had returned, so a test knows
 * whether a snapshot taken at a given time saw them. Usage: prog_serve
 * TRIGGER STOP [fork|closefds] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
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

/* Allocated and freed, by construction: /allocs counts CHURN_N blocks of
 * CHURN_SIZE bytes here and /heap nothing. */
#define CHURN_N 5000
#define CHURN_SIZE 2000
__attribute__((noinline)) static void site_churn(void) {
  for (int i = 0; i < CHURN_N; i++) {
    void *volatile p = malloc(CHURN_SIZE); /* the top of /allocs */
    free(p);
  }
}

/* The same on order, for the deltas of /allocs: 700 blocks of 512 B. */
__attribute__((noinline)) static void site_churn_again(void) {
  for (int i = 0; i < 700; i++) {
    void *volatile p = malloc(512); /* each round of an allocs delta */
    free(p);
  }
}

/* Writes "NANOSECONDS\n" to path with system calls only: stdio's buffer
 * would be an allocation of its own in the profiles. */
static void ack(const char *path) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  char tmp[4200], line[32];
  if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
    return;
  int n = snprintf(line, sizeof line, "%lld\n",
                   (long long)ts.tv_sec * 1000000000ll + ts.tv_nsec);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0)
    return;
  if (write(fd, line, (size_t)n) != n) {
    close(fd);
    return;
  }
  close(fd);
  rename(tmp, path);
}

/* The next order, if its file is there. step counts the orders done. */
static void orders(const char *trigger, int *step) {
  char want[4200], done[4200];
  if (*step == 0) {
    snprintf(want, sizeof want, "%s.free", trigger);
    snprintf(done, sizeof done, "%s.done.free", trigger);
  } else {
    snprintf(want, sizeof want, "%s.churn.%d", trigger, *step);
    snprintf(done, sizeof done, "%s.done.churn.%d", trigger, *step);
  }
  if (access(want, F_OK) != 0)
    return;
  if (*step == 0)
    for (int i = 0; i < 100; i++) {
      free(keep[1000 + i]);
      keep[1000 + i] = NULL;
    }
  else
    site_churn_again();
  ack(done);
  ++*step;
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
  site_churn();
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
  int step = 0, triggered = !trigger;
  for (;;) {
    if (!triggered && access(trigger, F_OK) == 0) {
      site_after();
      printf("prog_serve: triggered\n");
      fflush(stdout);
      triggered = 1;
    }
    if (triggered && trigger)
      orders(trigger, &step);
    if (triggered && stop && access(stop, F_OK) == 0)
      break;
    nap();
  }
  char got[8] = "";
  if (mine[0] >= 0 && (read(mine[0], got, 4) != 4 || memcmp(got, "host", 4)))
    return 5; /* someone read our pipe */
  int status = 0;
  if (child > 0 && (waitpid(child, &status, 0) != child || status != 0))
    return 3;
  printf("prog_serve: done\n");
  return 0;
}
