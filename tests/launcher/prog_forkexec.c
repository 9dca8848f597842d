/* prog_forkexec.c - forks children that exec other programs and children
 * that only allocate, then exits with a known status. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
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
