/* tracer.c - stopping the other threads with ptrace, as LeakSanitizer does:
 * a helper task that shares the address space seizes and interrupts each
 * one, so that a sleeping thread's system call restarts instead of failing
 * with EINTR, and no signal handler runs in the host's threads. */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "leak.h"

/* x86-64 only (the raw system calls and the register layout below), and
 * not under a sanitizer, whose runtime keeps per-thread state in the TLS
 * the tracer would share with the caller. Elsewhere the signal stops. */
#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__) && !defined(HS_TSAN)
#if defined(__has_feature)
#if !__has_feature(address_sanitizer) && !__has_feature(memory_sanitizer)
#define HAVE_TRACER 1
#endif
#else
#define HAVE_TRACER 1
#endif
#endif

#ifndef HAVE_TRACER

int hs__tracer_stop(hs_leak_world_t *w) {
  (void)w;
  return HS_EINVAL;
}
int hs__tracer_resume(void) { return 0; }
void hs__tracer_fork_child(void) {}

#else

/* The tracer shares the caller's thread pointer (no TLS of its own), so it
 * must not touch errno or anything else glibc keeps per thread, nor take a
 * lock the stopped threads may hold: it makes its system calls itself.
 * Returns the kernel's result: -errno on failure. */
static long sys6(long n, long a, long b, long c, long d, long e, long f) {
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  long ret;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8),
                     "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}
#define SYS(n, a, b, c, d) sys6(SYS_##n, (long)(a), (long)(b), (long)(c), \
                                (long)(d), 0, 0)

#define STACK (64 * 1024)
#define PAGE 4096

/* What the caller and the tracer share; written by the caller before the
 * clone and read by both, the words below changed with futex wakes. */
static struct {
  hs_leak_world_t *w;
  pid_t pid, caller;     /* the process, the checking thread */
  unsigned first;        /* w's entries from here on are the tracer's */
  unsigned pending;      /* tracer only: interrupted, not yet stopped */
  atomic_uint go;        /* 1: the ptracer exception is made, start */
  atomic_uint stopped;   /* 1: every thread it could stop is stopped */
  atomic_uint resume;    /* 1: detach them all and exit */
  _Atomic pid_t alive;   /* non-zero until the tracer exits: the kernel
                            clears it then (CLONE_CHILD_CLEARTID) */
  pid_t tid;             /* the tracer's, once cloned */
  char dents[4096];      /* tracer only: one getdents64 */
} tc;
/* The tracer's stack, mapped once; a guard page below it. Left mapped for
 * good (and NULL here) when a tracer could not be seen to exit. */
static char *stack;

static long t_now(void) {
  struct timespec ts = {0, 0};
  SYS(clock_gettime, CLOCK_MONOTONIC, &ts, 0, 0);
  return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static void t_wait(atomic_uint *w, unsigned val, long ns) {
  struct timespec ts = {ns / 1000000000L, ns % 1000000000L};
  sys6(SYS_futex, (long)w, FUTEX_WAIT_PRIVATE, val, (long)&ts, 0, 0);
}

static void t_wake(atomic_uint *w) {
  SYS(futex, w, FUTEX_WAKE_PRIVATE, INT_MAX, 0);
}

static hs_leak_thread_t *t_slot(pid_t tid) {
  hs_leak_world_t *w = tc.w;
  for (unsigned i = tc.first; i < w->n; i++)
    if (w->t[i].tid == tid && w->t[i].traced)
      return &w->t[i];
  return NULL;
}

/* Seizes and interrupts one thread of the listing not seen before.
 * PTRACE_SEIZE, unlike PTRACE_ATTACH, sends no SIGSTOP, and its interrupt
 * stop is no signal: a system call it breaks restarts afterwards. */
static void t_take(pid_t tid, void *arg) {
  unsigned *added = arg;
  hs_leak_world_t *w = tc.w;
  if (tid == tc.caller || hs__own_thread(tid) || hs__world_has(w, tid))
    return;
  if (w->n >= HS_LEAK_MAX_THREADS) {
    w->overflow++; /* missed: counted anew by each listing */
    return;
  }
  hs_leak_thread_t *t = &w->t[w->n];
  memset(t, 0, sizeof *t);
  t->tid = tid;
  long r = SYS(ptrace, PTRACE_SEIZE, tid, 0, 0);
  int st = r == -ESRCH ? HS_LT_GONE : r ? HS_LT_REFUSED : HS_LT_SENT;
  if (st == HS_LT_SENT) {
    t->traced = 1;
    if (SYS(ptrace, PTRACE_INTERRUPT, tid, 0, 0) != 0)
      st = HS_LT_GONE; /* it exited between the two calls */
    else
      tc.pending++;
  }
  atomic_store(&t->state, st);
  __atomic_store_n(&w->n, w->n + 1, __ATOMIC_RELEASE);
  ++*added;
}

/* Lists /proc/PID/task (not /proc/self: that is the tracer) and takes
 * every new thread; how many, or -1 when the list cannot be read. */
static long t_list(void) {
  char path[32] = "/proc/", num[12];
  int k = 6, d = 0;
  for (unsigned v = (unsigned)tc.pid; v || !d; v /= 10)
    num[d++] = (char)('0' + v % 10);
  while (d)
    path[k++] = num[--d];
  memcpy(path + k, "/task", 6);
  long fd = SYS(openat, AT_FDCWD, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  unsigned added = 0;
  long n;
  tc.w->overflow = 0;
  while ((n = SYS(getdents64, fd, tc.dents, sizeof tc.dents, 0)) > 0)
    hs__tasks_parse(tc.dents, n, t_take, &added);
  SYS(close, fd, 0, 0, 0);
  return added;
}

/* One wait4 report: a stop (its registers saved) or an exit. */
static void t_event(pid_t tid, int status) {
  hs_leak_thread_t *t = t_slot(tid);
  if (!t || atomic_load(&t->state) != HS_LT_SENT)
    return;
  if (WIFEXITED(status) || WIFSIGNALED(status)) {
    t->traced = 0;
    atomic_store(&t->state, HS_LT_GONE);
    tc.pending--;
    return;
  }
  if (!WIFSTOPPED(status))
    return;
  tc.pending--;
  /* No event: a signal-delivery stop (the signal reached it before our
   * interrupt did). It is held, and handed back at the detach, or the
   * host would lose it. A group stop and the interrupt stop hold no
   * signal. */
  t->sig = (status >> 16) == 0 ? WSTOPSIG(status) : 0;
  struct user_regs_struct regs;
  struct iovec io = {&regs, sizeof regs};
  if (SYS(ptrace, PTRACE_GETREGSET, tid, NT_PRSTATUS, &io) != 0)
    return; /* stopped but unreadable: missed (still SENT) */
  size_t nw = io.iov_len / sizeof(uintptr_t);
  if (nw > HS_LEAK_REG_WORDS)
    nw = HS_LEAK_REG_WORDS;
  memcpy(t->regs, &regs, nw * sizeof(uintptr_t));
  t->nregs = (unsigned)nw;
  t->sp = regs.rsp;
  t->tp = regs.fs_base;
  atomic_store(&t->state, HS_LT_PARKED);
}

/* Collects the stops, for at most 1 s: a thread in an uninterruptible
 * sleep (a vfork parent, a stuck device) does not stop and is missed.
 * Each tracee stop raises SIGCHLD, blocked here, so sigtimedwait sleeps
 * until the next one; 10 ms at most, should a notification go astray. */
static void t_collect(void) {
  long deadline = t_now() + 1000000000L;
  unsigned long chld = 1ul << (SIGCHLD - 1);
  while (tc.pending) {
    int status = 0;
    long r = SYS(wait4, -1, &status, __WALL | WNOHANG, 0);
    if (r > 0) {
      t_event((pid_t)r, status);
      continue;
    }
    if (r < 0 && r != -EINTR)
      return; /* no tracee left */
    long left = deadline - t_now();
    if (left <= 0)
      return;
    struct timespec ts = {0, left < 10000000L ? left : 10000000L};
    SYS(rt_sigtimedwait, &chld, 0, &ts, sizeof chld);
  }
}

static int tracer_main(void *arg) {
  (void)arg;
  /* Dies with the checking thread, so that a host killed during a check
   * leaves no tracer behind; a parent already gone means the same. */
  SYS(prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0);
  if (SYS(getppid, 0, 0, 0, 0) != tc.pid)
    return 1;
  /* Its own copy of the dispositions (no CLONE_SIGHAND): SIGCHLD made the
   * default, which a blocked signal still queues, whatever the host set
   * (SIG_IGN or SA_NOCLDSTOP would send none). */
  struct {
    uintptr_t handler; /* SIG_DFL is 0 */
    unsigned long flags;
    uintptr_t restorer;
    unsigned long mask;
  } dfl = {0, 0, 0, 0};
  SYS(rt_sigaction, SIGCHLD, &dfl, 0, sizeof dfl.mask);
  long deadline = t_now() + 2000000000L;
  while (!atomic_load(&tc.go) && t_now() < deadline)
    t_wait(&tc.go, 0, 10000000L);
  if (atomic_load(&tc.go) == 1) {
    /* Threads started by one not yet stopped: list again until a round
     * finds none (bounded; what is left runs on and is missed). */
    for (int round = 0; round < 8; round++) {
      long added = t_list();
      if (added <= 0)
        break;
      t_collect();
    }
  }
  atomic_store(&tc.stopped, 1);
  t_wake(&tc.stopped);
  /* The scan may take long; the tracer waits as long as the process it
   * serves is alive (its parent changes when the process dies). */
  while (!atomic_load(&tc.resume)) {
    t_wait(&tc.resume, 0, 1000000000L);
    if (SYS(getppid, 0, 0, 0, 0) != tc.pid)
      break;
  }
  /* One still running (it never stopped) refuses the detach; the exit
   * detaches it (the kernel lets a dead tracer's tracees go). */
  hs_leak_world_t *w = tc.w;
  for (unsigned i = tc.first; i < w->n; i++)
    if (w->t[i].traced)
      SYS(ptrace, PTRACE_DETACH, w->t[i].tid, 0, w->t[i].sig);
  return 0;
}

/* ---- the caller's side: ordinary libc, the checking thread ---- */

/* Yama's ptrace_scope 1 lets a process trace only its descendants: the
 * tracer, a child, needs the process's leave (PR_SET_PTRACER), which
 * replaces one the host may have given another tracer. Only then. */
static int yama_restricted(void) {
  int fd = open("/proc/sys/kernel/yama/ptrace_scope", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  char c = 0;
  ssize_t n = read(fd, &c, 1);
  close(fd);
  return n == 1 && c == '1';
}

/* Waits (bounded) for the tracer to exit, killing it if it does not, and
 * reaps it: its exit signal is 0, so no SIGCHLD reaches the host and only
 * a __WALL wait sees it. */
static void tracer_finish(void) {
  for (int attempt = 0; attempt < 2; attempt++) {
    long deadline = hs__mono_ns() + 2000000000L;
    pid_t a;
    while ((a = atomic_load(&tc.alive)) != 0 && hs__mono_ns() < deadline) {
      /* The kernel's wake on exit is a shared futex's. */
      struct timespec ts = {0, 10000000L};
      syscall(SYS_futex, (int *)&tc.alive, FUTEX_WAIT, a, &ts, NULL, 0);
    }
    if (!atomic_load(&tc.alive))
      break;
    kill(tc.tid, SIGKILL); /* its tracees are let go by the kernel */
  }
  for (int k = 0; k < 1000; k++) {
    pid_t r = waitpid(tc.tid, NULL, __WALL | WNOHANG);
    if (r == tc.tid || (r < 0 && errno != EINTR))
      break; /* reaped, or a host's waitpid(-1, __WALL) took it */
    struct timespec ts = {0, 1000000L};
    nanosleep(&ts, NULL);
  }
  if (atomic_load(&tc.alive))
    stack = NULL; /* it may still run on it: never reused */
}

int hs__tracer_stop(hs_leak_world_t *w) {
  if (!stack) {
    char *m = hs__leak_map(STACK + PAGE);
    if (!m)
      return HS_EIO;
    mprotect(m, PAGE, PROT_NONE);
    stack = m;
  }
  tc.w = w;
  tc.pid = getpid();
  tc.caller = (pid_t)syscall(SYS_gettid);
  tc.first = w->n;
  tc.pending = 0;
  atomic_store(&tc.go, 0);
  atomic_store(&tc.stopped, 0);
  atomic_store(&tc.resume, 0);
  atomic_store(&tc.alive, 1);
  /* Cloned with every signal blocked, which it keeps: a host handler must
   * never run on the tracer, which shares the caller's TLS. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int pid = clone(tracer_main, stack + PAGE + STACK,
                  CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_UNTRACED |
                      CLONE_CHILD_CLEARTID,
                  NULL, NULL, NULL, &tc.alive);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (pid < 0) {
    atomic_store(&tc.alive, 0);
    return HS_EIO;
  }
  tc.tid = pid;
  if (yama_restricted())
    prctl(PR_SET_PTRACER, (unsigned long)pid, 0, 0, 0);
  atomic_store(&tc.go, 1);
  t_wake(&tc.go);
  /* 8 rounds of at most 1 s each, and the start. */
  long deadline = hs__mono_ns() + 10000000000L;
  while (!atomic_load(&tc.stopped) && atomic_load(&tc.alive) &&
         hs__mono_ns() < deadline) {
    hs__futex_wait(&tc.stopped, 0, 10000000L);
  }
  if (atomic_load(&tc.stopped) && atomic_load(&tc.alive))
    return 0;
  /* Died (killed) or stuck: whatever it held is let go with it. */
  atomic_store(&tc.resume, 1);
  t_wake(&tc.resume);
  tracer_finish();
  __atomic_store_n(&w->n, tc.first, __ATOMIC_RELEASE);
  return HS_EIO;
}

int hs__tracer_resume(void) {
  int died = !atomic_load(&tc.alive);
  atomic_store(&tc.resume, 1);
  t_wake(&tc.resume);
  tracer_finish();
  return died;
}

void hs__tracer_fork_child(void) {
  atomic_store(&tc.alive, 0);
  atomic_store(&tc.resume, 1);
}

#endif
