/* stress_forkjit.c - fork safety against the loader's lock (issue 17): a
 * thread allocates through code in an anonymous executable mapping (JIT
 * code: no module, no CFI, so every capture steps it with libunwind, which
 * calls dl_iterate_phdr) while the main thread forks; each child allocates
 * once and exits, writing its exit snapshot. Variants, each with another
 * thread that dlopens and dlcloses beside the fork: children that take and
 * write a snapshot themselves, children that exec /bin/true, and
 * posix_spawn. Every child is waited for with a generous timeout (a hang
 * kills it and fails, never a slow child), and each must leave a snapshot
 * that loads or the one line saying why it wrote none.
 *
 * usage: hs_stress_forkjit MODE FORKS DLLIB
 *   MODE: jit | dlopen | exec | spawn | all (the four; exec and spawn
 *   FORKS/5 times in all) */
#include "stress.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* A hang shows as a child that never exits; one that is merely slow on a
 * loaded machine exits well inside this. */
#define CHILD_TIMEOUT 60.0

static atomic_int stop;
static atomic_uint_least64_t jit_calls, dl_rounds;
static const char *dllib;
static char dir[64];

/* Seen from outside, so the compiler keeps the malloc/free pair. */
static void *volatile sink;

static void __attribute__((noinline)) alloc_some(void) {
  char *p = malloc(48);
  if (p)
    memset(p, 2, 48);
  sink = p;
  free(sink);
}

/* sub $8,%rsp; call *%rdi; add $8,%rsp; ret */
static const unsigned char stub[] = {0x48, 0x83, 0xec, 0x08, 0xff, 0xd7,
                                     0x48, 0x83, 0xc4, 0x08, 0xc3};

static void *jit_main(void *arg) {
  (void)arg;
  pthread_setname_np(pthread_self(), "jit");
  unsigned char *code = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (code == MAP_FAILED)
    DIE("mmap of the JIT page: %s", strerror(errno));
  for (int k = 0; k < 8; k++) /* eight return addresses */
    memcpy(code + 64 * k, stub, sizeof stub);
  for (unsigned i = 0; !atomic_load_explicit(&stop, memory_order_relaxed);
       i++) {
    void (*fn)(void (*)(void));
    unsigned char *at = code + 64 * (i % 8);
    memcpy(&fn, &at, sizeof fn); /* ISO C has no object-to-code cast */
    fn(alloc_some);
    atomic_fetch_add_explicit(&jit_calls, 1, memory_order_relaxed);
  }
  return NULL;
}

static void *dl_main(void *arg) {
  (void)arg;
  pthread_setname_np(pthread_self(), "dl");
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    void *h = dlopen(dllib, RTLD_NOW | RTLD_LOCAL);
    if (!h)
      DIE("dlopen %s: %s", dllib, dlerror());
    unsigned (*churn)(unsigned);
    void *sym = dlsym(h, "stress_dl_churn");
    memcpy(&churn, &sym, sizeof churn);
    if (churn)
      (void)churn(4);
    dlclose(h);
    atomic_fetch_add_explicit(&dl_rounds, 1, memory_order_relaxed);
  }
  return NULL;
}

/* The child's stderr goes to a file of its own, where the parent looks for
 * the line that accounts for a missing snapshot. */
static void child_stderr(void) {
  char path[128];
  snprintf(path, sizeof path, "%s/err.%ld", dir, (long)getpid());
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd >= 0) {
    dup2(fd, 2);
    close(fd);
  }
}

static int file_has(const char *path, const char *needle) {
  char buf[4096];
  int fd = open(path, O_RDONLY);
  if (fd < 0)
    return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  buf[n > 0 ? n : 0] = '\0';
  return strstr(buf, needle) != NULL;
}

static void show_file(const char *path) {
  char buf[4096];
  int fd = open(path, O_RDONLY);
  if (fd < 0)
    return;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n > 0) {
    buf[n] = '\0';
    fprintf(stderr, "  its stderr: %s", buf);
  }
}

static unsigned degraded;

/* Waits for the child of fork k; fails on a hang, a bad exit or a snapshot
 * that neither loads nor is accounted for. */
static void reap(pid_t pid, const char *mode, unsigned k) {
  const char *t = getenv("HS_FORKJIT_TIMEOUT");
  double timeout = t && atof(t) > 0 ? atof(t) : CHILD_TIMEOUT;
  double started = now_s();
  int status = 0;
  pid_t r;
  while ((r = waitpid(pid, &status, WNOHANG)) == 0) {
    if (now_s() - started > timeout) {
      char wchan[128] = "?", path[64];
      snprintf(path, sizeof path, "/proc/%ld/wchan", (long)pid);
      int fd = open(path, O_RDONLY);
      if (fd >= 0) {
        ssize_t n = read(fd, wchan, sizeof wchan - 1);
        wchan[n > 0 ? n : 0] = '\0';
        close(fd);
      }
      /* HS_FORKJIT_GDB=1: where it waits, before it is killed. */
      const char *g = getenv("HS_FORKJIT_GDB");
      if (g && *g == '1') {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "gdb -p %ld -batch -ex bt -ex 'frame 3' -ex 'p mutex->__data.__owner' 1>&2 2>/dev/null; "
                 "for t in /proc/%ld/task/*; do echo \"$t $(cat $t/comm)\"; done 1>&2",
                 (long)pid, (long)getpid());
        if (system(cmd) != 0)
          fprintf(stderr, "(gdb failed)\n");
      }
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      DIE("HANG: mode %s, fork %u: child %ld did not exit in %.0f s "
          "(waiting in %s); killed it",
          mode, k, (long)pid, timeout, wchan);
    }
    struct timespec ts = {0, 200000};
    nanosleep(&ts, NULL);
  }
  if (r < 0)
    DIE("waitpid: %s", strerror(errno));
  char snap[128], err[128];
  snprintf(snap, sizeof snap, "%s/s.%ld.hsnap", dir, (long)pid);
  snprintf(err, sizeof err, "%s/err.%ld", dir, (long)pid);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    show_file(err);
    DIE("mode %s, fork %u: child %ld: %s %d", mode, k, (long)pid,
        WIFEXITED(status) ? "exit status" : "killed by signal",
        WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
  }
  hs_snapshot_t *s;
  char why[256] = "";
  if (access(snap, F_OK) == 0) {
    int rc = hs_snapshot_load(snap, &s, why, sizeof why);
    if (rc != 0)
      DIE("mode %s, fork %u: child %ld's snapshot does not load: %s", mode,
          k, (long)pid, why);
    hs_snapshot_free(s);
  } else if (file_has(err, "no exit snapshot")) {
    degraded++;
  } else {
    show_file(err);
    DIE("mode %s, fork %u: child %ld left no snapshot and no account of it",
        mode, k, (long)pid);
  }
  unlink(snap);
  unlink(err);
}

/* The child's own snapshot, where exit() cannot be trusted: glibc 2.36
 * does not reset its exit-handler lock in a fork child, and a thread in
 * dlclose (__cxa_finalize) at the fork leaves it held: exit() then hangs
 * with or without heapsnap. So beside dlopen the child dumps and _exits. */
static void child_dump(void) {
  char path[128];
  snprintf(path, sizeof path, "%s/s.%ld.hsnap", dir, (long)getpid());
  hs_snapshot_t *s;
  if (hs_take_snapshot(&s) != 0)
    _exit(20);
  int rc = hs_snapshot_dump(s, path);
  hs_snapshot_free(s);
  _exit(rc == 0 ? 0 : 21);
}

static void run(const char *mode, unsigned forks) {
  int exec_child = !strcmp(mode, "exec"), spawn = !strcmp(mode, "spawn");
  int dump = !strcmp(mode, "dlopen");
  for (unsigned k = 0; k < forks; k++) {
    pid_t pid;
    if (spawn) {
      /* No fork handlers run: the new image starts from nothing. Its
       * stderr is ours (the test's log). */
      char *argv[] = {"/bin/true", NULL};
      int rc = posix_spawn(&pid, "/bin/true", NULL, NULL, argv, environ);
      if (rc != 0)
        DIE("posix_spawn: %s", strerror(rc));
    } else {
      pid = fork();
      if (pid < 0)
        DIE("fork: %s", strerror(errno));
      if (pid == 0) {
        child_stderr();
        char *p = malloc(64 + k % 64);
        if (p)
          memset(p, 1, 64);
        if (exec_child) {
          execl("/bin/true", "true", (char *)NULL);
          _exit(127);
        }
        if (dump)
          child_dump();
        exit(0);
      }
    }
    reap(pid, mode, k);
  }
}

int main(int argc, char **argv) {
  if (argc < 4)
    DIE("usage: %s jit|dlopen|exec|spawn|all FORKS DLLIB", argv[0]);
  const char *mode = argv[1];
  unsigned forks = (unsigned)atoi(argv[2]);
  dllib = argv[3];
  const char *out = getenv("HEAPSNAP_OUTPUT");
  if (!hs_is_tracing() || !out || !strstr(out, "%p"))
    DIE("run with HEAPSNAP_FRAMES set and HEAPSNAP_OUTPUT=DIR/s.%%p.hsnap");
  const char *slash = strrchr(out, '/');
  if (!slash || (size_t)(slash - out) >= sizeof dir)
    DIE("HEAPSNAP_OUTPUT needs a directory: %s", out);
  memcpy(dir, out, (size_t)(slash - out));
  dir[slash - out] = '\0';

  int all = !strcmp(mode, "all");
  pthread_t jt, dt;
  int with_dl = 0;
  if (pthread_create(&jt, NULL, jit_main, NULL) != 0)
    DIE("pthread_create");
  /* jit first and alone: the scenario of the issue, children that exit(). */
  static const char *const modes[] = {"jit", "dlopen", "exec", "spawn"};
  double t0 = now_s();
  for (unsigned i = 0; i < 4; i++) {
    if (!all && strcmp(mode, modes[i]))
      continue;
    if (i > 0 && !with_dl) {
      if (pthread_create(&dt, NULL, dl_main, NULL) != 0)
        DIE("pthread_create");
      with_dl = 1;
    }
    /* A traced /bin/true costs a load and an exit snapshot of its own:
     * fewer of those, so that the forks stay in the thousands. */
    run(modes[i], i >= 2 && all ? (forks + 4) / 5 : forks);
  }
  atomic_store(&stop, 1);
  pthread_join(jt, NULL);
  if (with_dl)
    pthread_join(dt, NULL);
  /* The parent's own exit snapshot would land in a directory the test
   * removes. */
  hs_stop();
  printf("forkjit %s: %u forks per mode (exec, spawn: a fifth) in %.1f s, %u without a snapshot "
         "(accounted for), %llu JIT calls, %llu dlopen rounds\n",
         mode, forks, now_s() - t0, degraded,
         (unsigned long long)atomic_load(&jit_calls),
         (unsigned long long)atomic_load(&dl_rounds));
  return 0;
}
