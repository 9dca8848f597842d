/* world.c - stopping every other thread for the leak scan: by ptrace from
 * a helper task (tracer.c), or by a real-time signal no one else uses that
 * parks each thread in a handler saving its registers, a futex word
 * letting them all go again. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "leak.h"

/* Odd while a check holds the world stopped; every stop and every resume
 * changes it, so a handler that read it once waits for exactly its stop. */
static atomic_uint stop_word;
static atomic_uint nparked;
/* Handlers between their first look at stop_word and their return: the
 * table they write into is reused only once this is back to zero. */
static atomic_int in_handler;
static hs_leak_world_t *_Atomic cur_world;
static int stop_sig; /* 0 until one is chosen; by the check lock */

static atomic_int stop_how; /* HS_STOP_*, from HEAPSNAP_LEAK_STOP */

void hs__leak_set_stop(int how) { atomic_store(&stop_how, how); }

static pid_t gettid_raw(void) { return (pid_t)syscall(SYS_gettid); }

static uintptr_t thread_pointer(void) {
  uintptr_t tp = 0;
#if defined(__x86_64__)
  __asm__("mov %%fs:0, %0" : "=r"(tp));
#elif defined(__aarch64__)
  __asm__("mrs %0, tpidr_el0" : "=r"(tp));
#endif
  return tp;
}

static uintptr_t context_sp(const ucontext_t *uc) {
#if defined(__x86_64__)
  return (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
  return (uintptr_t)uc->uc_mcontext.sp;
#else
  (void)uc;
  return 0;
#endif
}

static void save_regs(hs_leak_thread_t *t, const ucontext_t *uc) {
  size_t n = sizeof uc->uc_mcontext / sizeof(uintptr_t);
  if (n > HS_LEAK_REG_WORDS)
    n = HS_LEAK_REG_WORDS;
  memcpy(t->regs, &uc->uc_mcontext, n * sizeof(uintptr_t));
  t->nregs = (unsigned)n;
}

/* async-signal-safe: syscalls and atomics only. */
static void on_stop(int signo, siginfo_t *si, void *ucv) {
  (void)signo;
  int saved = errno;
  unsigned g = atomic_load(&stop_word);
  /* Only our own tgkill, during a stop: a late signal (a thread that had
   * it blocked until now) returns at once. */
  if (!(g & 1) || si->si_code != SI_TKILL || si->si_pid != getpid()) {
    errno = saved;
    return;
  }
  atomic_fetch_add(&in_handler, 1);
  hs_leak_world_t *w = atomic_load(&cur_world);
  if (w && atomic_load(&stop_word) == g) {
    pid_t me = gettid_raw();
    unsigned n = __atomic_load_n(&w->n, __ATOMIC_ACQUIRE);
    for (unsigned i = 1; i < n; i++) {
      hs_leak_thread_t *t = &w->t[i];
      if (t->tid != me || atomic_load(&t->state) != HS_LT_SENT)
        continue;
      const ucontext_t *uc = ucv;
      t->sp = context_sp(uc);
      t->tp = thread_pointer();
      save_regs(t, uc);
      atomic_store(&t->state, HS_LT_PARKED);
      atomic_fetch_add(&nparked, 1);
      hs__futex_wake(&nparked);
      break;
    }
  }
  while (atomic_load(&stop_word) == g)
    hs__futex_wait(&stop_word, g, 0);
  atomic_fetch_sub(&in_handler, 1);
  errno = saved;
}

/* A real-time signal with the default action and no handler: the host
 * does not use it. Chosen from the top, where libraries rarely look, and
 * checked at every check in case the host took it meanwhile. The handler
 * stays installed for good: a thread that had the signal blocked gets it
 * later, and the default action would kill the process. */
static int pick_signal(void) {
  struct sigaction cur;
  if (stop_sig && sigaction(stop_sig, NULL, &cur) == 0 &&
      (cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_stop)
    return stop_sig;
  for (int s = SIGRTMAX - 1; s >= SIGRTMIN + 2; s--) {
    if (sigaction(s, NULL, &cur) != 0)
      continue;
    if ((cur.sa_flags & SA_SIGINFO) || cur.sa_handler != SIG_DFL)
      continue;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_stop;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigfillset(&sa.sa_mask); /* no host handler runs in a parked thread */
    if (sigaction(s, &sa, NULL) == 0)
      return stop_sig = s;
  }
  return 0;
}

struct dirent64_raw {
  uint64_t ino;
  int64_t off;
  unsigned short reclen;
  unsigned char type;
  char name[];
};

void hs__tasks_parse(const char *buf, long n, void (*each)(pid_t, void *),
                     void *arg) {
  for (long off = 0; off < n;) {
    const struct dirent64_raw *d = (const struct dirent64_raw *)(buf + off);
    off += d->reclen;
    if (d->name[0] < '0' || d->name[0] > '9')
      continue;
    pid_t tid = 0;
    for (const char *c = d->name; *c >= '0' && *c <= '9'; c++)
      tid = tid * 10 + (*c - '0');
    each(tid, arg);
  }
}

int hs__world_has(const hs_leak_world_t *w, pid_t tid) {
  for (unsigned i = 0; i < w->n; i++)
    if (w->t[i].tid == tid)
      return 1;
  return 0;
}

/* Calls each for every thread of /proc/self/task. opendir would malloc (a
 * stopped thread may hold the allocator's lock): getdents64 into a buffer
 * on this stack. */
static void each_task(void (*each)(pid_t, void *), void *arg) {
  int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return;
  char buf[4096];
  long n;
  while ((n = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0)
    hs__tasks_parse(buf, n, each, arg);
  close(fd);
}

typedef struct sig_round {
  hs_leak_world_t *w;
  int sig;
  pid_t self, pid;
  unsigned sent;
} sig_round_t;

static void sig_one(hs_leak_thread_t *t, sig_round_t *r) {
  atomic_store(&t->state, HS_LT_SENT);
  if (syscall(SYS_tgkill, r->pid, t->tid, r->sig) != 0)
    atomic_store(&t->state, HS_LT_GONE); /* it exited meanwhile */
  else
    r->sent++;
}

static void sig_new(pid_t tid, void *arg) {
  sig_round_t *r = arg;
  hs_leak_world_t *w = r->w;
  if (hs__world_has(w, tid) || hs__own_thread(tid))
    return;
  if (w->n >= HS_LEAK_MAX_THREADS) {
    w->overflow++;
    return;
  }
  hs_leak_thread_t *t = &w->t[w->n];
  memset(t, 0, sizeof *t);
  t->tid = tid;
  atomic_store(&t->state, HS_LT_SENT);
  __atomic_store_n(&w->n, w->n + 1, __ATOMIC_RELEASE);
  sig_one(t, r);
}

/* Threads other than the caller and heapsnap's own. */
static void count_other(pid_t tid, void *arg) {
  sig_round_t *r = arg;
  r->sent += tid != r->self && !hs__own_thread(tid);
}

/* Waits until every signalled thread parked or is gone, for at most 1 s
 * since the last signal: a thread that has the signal blocked, or is
 * stuck in the kernel, is skipped rather than waited for. */
static void wait_parked(hs_leak_world_t *w) {
  long deadline = hs__mono_ns() + 1000000000L, next_probe = 0;
  pid_t pid = getpid();
  for (;;) {
    unsigned want = 0, have = atomic_load(&nparked);
    for (unsigned i = 1; i < w->n; i++) {
      int st = atomic_load(&w->t[i].state);
      want += !w->t[i].traced && (st == HS_LT_SENT || st == HS_LT_PARKED);
    }
    if (have >= want)
      return;
    long t = hs__mono_ns();
    if (t >= deadline)
      return;
    if (t >= next_probe) {
      /* A thread that exits with the signal pending never parks. */
      for (unsigned i = 1; i < w->n; i++)
        if (!w->t[i].traced && atomic_load(&w->t[i].state) == HS_LT_SENT &&
            syscall(SYS_tgkill, pid, w->t[i].tid, 0) != 0 && errno == ESRCH) {
          int exp = HS_LT_SENT;
          atomic_compare_exchange_strong(&w->t[i].state, &exp, HS_LT_GONE);
        }
      next_probe = t + 20000000L;
    }
    hs__futex_wait(&nparked, have, 10000000L);
  }
}

int hs__world_stop(hs_leak_world_t *w, uintptr_t caller_sp,
                   const void *caller_uc) {
  if (!w->t &&
      !(w->t = hs__leak_map(HS_LEAK_MAX_THREADS * sizeof(hs_leak_thread_t))))
    return HS_ENOMEM;
  w->n = 1;
  w->parked = w->missed = 0;
  w->how = w->tracer = 0;
  w->overflow = 0;
  hs_leak_thread_t *self = &w->t[0];
  memset(self, 0, sizeof *self);
  self->tid = gettid_raw();
  self->sp = caller_sp;
  self->tp = thread_pointer();
  if (caller_uc)
    save_regs(self, caller_uc);
  atomic_store(&self->state, HS_LT_PARKED);
  atomic_store(&nparked, 0);
  atomic_store(&cur_world, w);
  atomic_fetch_add(&stop_word, 1); /* odd: stopping (resume makes it even) */
  /* A heapsnap thread just created is told apart once it registered:
   * nothing is stopped yet, so it gets there (bounded, 1 s). */
  for (int k = 0; k < 10000 && hs__own_threads_starting() > 0; k++) {
    struct timespec ts = {0, 100000};
    nanosleep(&ts, NULL);
  }
  sig_round_t r = {w, 0, self->tid, getpid(), 0};
  /* Alone (the others, if any, are heapsnap's): nothing to stop, and no
   * one who could start a thread meanwhile. */
  each_task(count_other, &r);
  unsigned others = r.sent;
  if (!others)
    return 0;
  int how = atomic_load(&stop_how);
  int traced = how != HS_STOP_SIGNAL && hs__tracer_stop(w) == 0;
  w->tracer = traced;
  /* Said as ptrace's when it parked one (seccomp may refuse every seize
   * to a tracer that started). */
  int refused = 0;
  for (unsigned i = 1; traced && i < w->n; i++) {
    int st = atomic_load(&w->t[i].state);
    refused += st == HS_LT_REFUSED;
    if (st == HS_LT_PARKED)
      w->how |= HS_LEAK_STOP_PTRACE;
  }
  int sig = 0;
  if (traced ? how == HS_STOP_AUTO && refused : how != HS_STOP_PTRACE)
    sig = pick_signal();
  r.sig = sig;
  if (sig) {
    w->how |= HS_LEAK_STOP_SIGNAL;
    /* What ptrace refused (a debugger traces it), then, as for every
     * thread when there is no tracer, the threads started by a thread we
     * had not stopped yet: listed again until a round finds none
     * (bounded; what is left is missed). */
    r.sent = 0;
    for (unsigned i = 1; i < w->n; i++)
      if (atomic_load(&w->t[i].state) == HS_LT_REFUSED)
        sig_one(&w->t[i], &r);
    if (r.sent)
      wait_parked(w);
    for (int round = 0; round < 8; round++) {
      r.sent = 0;
      w->overflow = 0; /* what does not fit is counted anew by each list */
      each_task(sig_new, &r);
      if (!r.sent)
        break;
      wait_parked(w);
    }
  }
  unsigned parked = 0, missed = w->overflow;
  for (unsigned i = 1; i < w->n; i++) {
    int st = atomic_load(&w->t[i].state);
    parked += st == HS_LT_PARKED;
    missed += st == HS_LT_SENT || st == HS_LT_REFUSED;
  }
  if (!traced && !sig)
    missed += others; /* nothing stopped them: they run on (partial) */
  w->parked = parked;
  w->missed = missed;
  return 0;
}

void hs__world_fork_child(void) {
  if (atomic_load(&stop_word) & 1)
    atomic_fetch_add(&stop_word, 1);
  atomic_store(&in_handler, 0);
  atomic_store(&cur_world, NULL);
  hs__tracer_fork_child();
}

int hs__world_resume(hs_leak_world_t *w) {
  int died = w->tracer && hs__tracer_resume();
  w->tracer = 0;
  atomic_fetch_add(&stop_word, 1); /* even: running */
  hs__futex_wake(&stop_word);
  atomic_store(&cur_world, NULL);
  /* Each handler leaves as soon as it runs again; the table is reused by
   * the next check only once none is inside. */
  long deadline = hs__mono_ns() + 2000000000L;
  while (atomic_load(&in_handler) > 0 && hs__mono_ns() < deadline)
    sched_yield();
  return died;
}
