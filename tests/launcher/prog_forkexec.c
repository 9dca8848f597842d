/* prog_forkexec.c - forks children that exec other programs and children
 * that only allocate, then exits with a known status. With "forkloop",
 * forks 40 children 3 ms apart instead: some while heapsnap's thread is
 * reading debug information, whose lock the children must not inherit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int forkloop(void) {
  enum { KIDS = 40 };
  pid_t kids[KIDS];
  /* Stacks for heapsnap's thread to read the debug information of. */
  char *keep = malloc(4096);
  if (keep)
    snprintf(keep, 4096, "%d kids", KIDS);
  for (int i = 0; i < KIDS; i++) {
    fflush(stdout);
    kids[i] = fork();
    if (kids[i] == 0) {
      char *p = malloc(1000 + (size_t)i);
      if (p)
        p[0] = 1;
      exit(p ? 0 : 1); /* p stays live: each child's exit snapshot has it */
    }
    struct timespec ts = {0, 3000000};
    nanosleep(&ts, NULL);
  }
  int ok = 0;
  for (int i = 0; i < KIDS; i++) {
    int st;
    ok += kids[i] > 0 && waitpid(kids[i], &st, 0) == kids[i] &&
          WIFEXITED(st) && WEXITSTATUS(st) == 0;
  }
  printf("forkloop ok=%d of %s\n", ok, keep ? keep : "?");
  return ok == KIDS ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "forkloop"))
    return forkloop();
  if (argc > 1 && !strcmp(argv[1], "child")) {
    char *p = malloc(12345);
    printf("child %s\n", p ? "allocated" : "failed");
    return 0; /* p stays live: the child's exit snapshot shows it */
  }
  fflush(stdout);
  int ok = 0;
  for (int i = 0; i < 3; i++) {
    pid_t pid = fork();
    if (pid == 0) {
      if (i == 0)
        execl("/bin/echo", "echo", "exec'd echo", (char *)NULL);
      if (i == 1)
        execl(argv[0], argv[0], "child", (char *)NULL);
      void *q = malloc(777);
      (void)q;
      exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    ok += WIFEXITED(st) && WEXITSTATUS(st) == 0;
  }
  printf("children ok=%d\n", ok);
  return 5;
}
