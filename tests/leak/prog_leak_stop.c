/* prog_leak_stop.c - how the leak check stops the world, seen from the host:
 * threads asleep in nanosleep, clock_nanosleep, poll, select, a read of an
 * empty pipe and epoll_wait while main checks several times; each records
 * whether its call ever failed with EINTR or returned early. A block kept
 * only on the nanosleep thread's stack must be still reachable.
 *
 *   prog_leak_stop MODE   (under LD_PRELOAD=libheapsnap.so)
 *     plain     HEAPSNAP_LEAK_STOP as set: ptrace expected unless "signal"
 *     debugged  a child process already traces one thread (a debugger):
 *               ptrace cannot take it, the signal must (or, when
 *               HEAPSNAP_LEAK_STOP=ptrace, it is missed)
 *     seccomp   ptrace refused by a seccomp filter: the signal stops all
 * Prints "ok" and exits 0, or says what failed and exits 1; 77 when the
 * mode cannot be set up here (said loudly). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "heapsnap.h"
#include "prog.h"

#define KEPT_SIZE 12345 /* no other block of the program has this size */
#define CHECKS 5
#define TIMEOUT_MS 1000

enum { NANOSLEEP, CLOCK_NANOSLEEP, POLL, SELECT, READ, EPOLL, DEBUGGED, NT };
static const char *const names[NT] = {"nanosleep", "clock_nanosleep", "poll",
                                      "select",    "read",            "epoll_wait",
                                      "debugged"};
/* What ptrace's stop lets restart (signal(7)'s restarted calls); epoll_wait
 * fails with EINTR after any stop, as after SIGSTOP and SIGCONT. */
static const int restarts[NT] = {1, 1, 1, 1, 1, 0, 1};

static atomic_int stop, tids[NT], in_call[NT], eintr[NT], early[NT], calls[NT];
static int nthreads = DEBUGGED; /* DEBUGGED's thread only in that mode */
static int pipefd[2], evfd, epfd;

static long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

/* One blocking call of kind k; -1 with errno, or its result. */
static int blocking_call(int k) {
  struct timespec ts = {TIMEOUT_MS / 1000, 0};
  struct timeval tv = {TIMEOUT_MS / 1000, 0};
  struct epoll_event ev;
  char c;
  int r;
  switch (k) {
  case NANOSLEEP:
  case DEBUGGED:
    return nanosleep(&ts, NULL);
  case CLOCK_NANOSLEEP:
    r = clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
    if (r)
      errno = r;
    return r ? -1 : 0;
  case POLL:
    return poll(NULL, 0, TIMEOUT_MS);
  case SELECT:
    return select(0, NULL, NULL, NULL, &tv);
  case READ:
    return (int)read(pipefd[0], &c, 1);
  case EPOLL:
    return epoll_wait(epfd, &ev, 1, TIMEOUT_MS);
  }
  return 0;
}

/* The calls that wait for their timeout: returning sooner is early. */
static int timed(int k) { return k != READ; }

static void sleep_loop(int k) {
  while (!atomic_load(&stop)) {
    atomic_store(&in_call[k], 1);
    long t0 = now_ms();
    int r = blocking_call(k);
    int e = errno;
    long took = now_ms() - t0;
    atomic_store(&in_call[k], 0);
    atomic_fetch_add(&calls[k], 1);
    if (r < 0 && e == EINTR)
      atomic_fetch_add(&eintr[k], 1);
    else if (timed(k) && r == 0 && took < TIMEOUT_MS - 2 &&
             !atomic_load(&stop))
      atomic_fetch_add(&early[k], 1);
    if (k == READ || (k == EPOLL && r > 0))
      break; /* woken by main at the end */
  }
}

/* The nanosleep thread keeps the block only in this frame, encoded while
 * it is made so that no copy survives elsewhere. */
NOINLINE static void hold_and_sleep(void) {
  volatile uintptr_t slot[2];
  slot[0] = (uintptr_t)malloc(KEPT_SIZE) ^ KEY;
  slot[0] ^= KEY;
  scrub();
  sleep_loop(NANOSLEEP);
  free((void *)slot[0]);
}

static void *thread_main(void *arg) {
  int k = (int)(intptr_t)arg;
  atomic_store(&tids[k], (int)syscall(SYS_gettid));
  if (k == NANOSLEEP)
    hold_and_sleep();
  else
    sleep_loop(k);
  return NULL;
}

/* 'S' in /proc/self/task/TID/stat: asleep in the kernel. With in_call set
 * just before the call, the thread sleeps in that call. */
static int asleep(int tid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  const char *p = strrchr(buf, ')');
  return p && p[1] == ' ' && p[2] == 'S';
}

/* Until every thread sleeps in its call: no timing is assumed, only that
 * each gets there (generous bound, for a loaded machine). */
static int all_asleep(void) {
  for (long spins = 0; spins < 600000; spins++) {
    int all = 1;
    for (int k = 0; k < nthreads && all; k++)
      all = atomic_load(&in_call[k]) && asleep(atomic_load(&tids[k]));
    if (all)
      return 1;
    struct timespec ts = {0, 100000};
    nanosleep(&ts, NULL);
  }
  return 0;
}

/* A "debugger": a child process that traces the DEBUGGED thread and lets
 * every signal through, as gdb does with "pass". */
static pid_t debugger(pid_t tid, int ready_fd) {
  pid_t pid = fork();
  if (pid != 0)
    return pid;
  char ok = syscall(SYS_ptrace, PTRACE_SEIZE, tid, 0, 0) == 0 ? 'y' : 'n';
  if (write(ready_fd, &ok, 1) != 1 || ok != 'y')
    _exit(1);
  for (;;) {
    int st;
    if (syscall(SYS_wait4, tid, &st, __WALL, 0) != tid)
      _exit(0);
    if (WIFSTOPPED(st)) {
      int sig = (st >> 16) == 0 ? WSTOPSIG(st) : 0;
      syscall(SYS_ptrace, PTRACE_CONT, tid, 0, sig);
    }
  }
}

/* ptrace fails with EPERM for this thread and those it creates (the
 * tracer among them); everything else is allowed. */
static int refuse_ptrace(void) {
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_ptrace, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {sizeof f / sizeof f[0], f};
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
         prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "plain";
  const char *env = getenv("HEAPSNAP_LEAK_STOP");
  int forced_signal = env && !strcmp(env, "signal");
  int forced_ptrace = env && !strcmp(env, "ptrace");
  int debugged = !strcmp(mode, "debugged"), sec = !strcmp(mode, "seccomp");
  int (*check)(hs_leak_summary_t *);
  int (*take)(hs_snapshot_t **);
  int (*filter)(hs_snapshot_t *, unsigned, hs_snapshot_t **);
  int (*stats)(hs_snapshot_t *, hs_key_t, int, hs_statistics_t **);
  size_t (*count)(const hs_statistics_t *);
  const hs_statistic_t *(*get)(const hs_statistics_t *, size_t);
  void (*sfree)(hs_snapshot_t *);
  void (*stfree)(hs_statistics_t *);
  SYM(check, "hs_leak_check");
  SYM(take, "hs_take_snapshot");
  SYM(filter, "hs_snapshot_filter_leaks");
  SYM(stats, "hs_snapshot_statistics");
  SYM(count, "hs_statistics_count");
  SYM(get, "hs_statistics_get");
  SYM(sfree, "hs_snapshot_free");
  SYM(stfree, "hs_statistics_free");
  if (!check) {
    printf("run under LD_PRELOAD=libheapsnap.so\n");
    return 1;
  }
  if (sec && refuse_ptrace() != 0) {
    printf("SKIP: no seccomp filter here (%s): the refused-ptrace fallback "
           "is untested\n", strerror(errno));
    return 77;
  }
  if (pipe(pipefd) || (evfd = eventfd(0, 0)) < 0 ||
      (epfd = epoll_create1(0)) < 0)
    return 1;
  struct epoll_event ev = {.events = EPOLLIN};
  epoll_ctl(epfd, EPOLL_CTL_ADD, evfd, &ev);
  if (debugged)
    nthreads = NT;
  pthread_t th[NT];
  for (int k = 0; k < nthreads; k++)
    pthread_create(&th[k], NULL, thread_main, (void *)(intptr_t)k);
  for (int k = 0; k < nthreads; k++)
    while (!atomic_load(&tids[k]))
      sched_yield();
  pid_t dbg = 0;
  if (debugged) {
    int rp[2];
    char ok = 'n';
    if (pipe(rp) == 0) {
      dbg = debugger(atomic_load(&tids[DEBUGGED]), rp[1]);
      if (read(rp[0], &ok, 1) != 1)
        ok = 'n';
    }
    if (ok != 'y') {
      printf("SKIP: this machine refuses ptrace between processes of one "
             "user: a debugged thread cannot be made\n");
      return 77;
    }
  }

  int bad = 0, ptraced = 0, signalled = 0;
  hs_leak_summary_t s;
  for (int i = 0; i < CHECKS; i++) {
    if (!all_asleep()) {
      printf("FAIL: the threads never all slept in their calls\n");
      return 1;
    }
    int rc = check(&s);
    printf("check %d: rc %d threads %u missed %u partial %d stopped_by %d "
           "stopped %.3f ms\n", i, rc, s.threads, s.threads_missed,
           s.partial, s.stopped_by, s.scan_ns / 1e6);
    if (rc != 0)
      bad = 1;
    ptraced += (s.stopped_by & HS_LEAK_STOP_PTRACE) != 0;
    signalled += (s.stopped_by & HS_LEAK_STOP_SIGNAL) != 0;
    /* Expected per check: how the others were stopped, and who is missed. */
    int want = forced_signal || sec ? HS_LEAK_STOP_SIGNAL
               : debugged && !forced_ptrace
                   ? HS_LEAK_STOP_PTRACE | HS_LEAK_STOP_SIGNAL
                   : HS_LEAK_STOP_PTRACE;
    unsigned want_missed = debugged && forced_ptrace ? 1 : 0;
    if (s.stopped_by != want) {
      printf("FAIL: check %d: stopped_by %d, expected %d%s\n", i,
             s.stopped_by, want,
             want & HS_LEAK_STOP_PTRACE && !(s.stopped_by & HS_LEAK_STOP_PTRACE)
                 ? "\n*** PTRACE DID NOT STOP THE THREADS ON THIS MACHINE ***"
                 : "");
      bad = 1;
    }
    if (s.threads_missed != want_missed || s.partial != (want_missed > 0)) {
      printf("FAIL: check %d: %u missed (expected %u), partial %d\n", i,
             s.threads_missed, want_missed, s.partial);
      bad = 1;
    }
  }

  /* The block on the sleeping thread's stack: still reachable, whichever
   * way its thread was stopped. Its stack (TRACEBACK) is its own group. */
  hs_snapshot_t *snap = NULL, *f = NULL;
  hs_statistics_t *st = NULL;
  int kept = -1;
  if (s.threads_missed == 0 && take(&snap) == 0) {
    const unsigned lost = 1u << HS_LEAK_DEFINITE | 1u << HS_LEAK_INDIRECT |
                          1u << HS_LEAK_POSSIBLE;
    const unsigned kinds[2] = {lost, 1u << HS_LEAK_REACHABLE};
    for (int w = 0; w < 2; w++) {
      if (filter(snap, kinds[w], &f) != 0 ||
          stats(f, HS_KEY_TRACEBACK, 0, &st) != 0)
        break;
      for (size_t i = 0; i < count(st); i++)
        if (get(st, i)->size == KEPT_SIZE)
          kept = w;
      stfree(st);
      sfree(f);
    }
    sfree(snap);
    printf("the block on the sleeping thread's stack: %s\n",
           kept == 1 ? "still reachable" : kept == 0 ? "LOST" : "not found");
    if (kept != 1)
      bad = 1;
  }

  atomic_store(&stop, 1);
  if (write(pipefd[1], "x", 1) != 1 || eventfd_write(evfd, 1) != 0)
    bad = 1;
  for (int k = 0; k < nthreads; k++)
    pthread_join(th[k], NULL);
  if (dbg) {
    kill(dbg, SIGKILL);
    waitpid(dbg, NULL, 0);
  }
  /* EINTR is the signal's cost; under ptrace the calls that restart must
   * never see it (epoll_wait's is the kernel's, told, not failed). */
  for (int k = 0; k < nthreads; k++) {
    int held = debugged && k == DEBUGGED ? 0 : !forced_signal && !sec;
    printf("%-16s %3d calls, EINTR %d, early %d%s\n", names[k],
           atomic_load(&calls[k]), atomic_load(&eintr[k]),
           atomic_load(&early[k]),
           held && !restarts[k] && atomic_load(&eintr[k])
               ? " (the kernel's: it fails after any stop)"
               : "");
    if (held && restarts[k] &&
        (atomic_load(&eintr[k]) || atomic_load(&early[k]))) {
      printf("FAIL: %s was interrupted under ptrace\n", names[k]);
      bad = 1;
    }
  }
  printf("%d checks by ptrace, %d by the signal\n", ptraced, signalled);
  printf(bad ? "failed\n" : "ok\n");
  return bad;
}
