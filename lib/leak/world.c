/* world.c - stopping every other thread for the leak scan: a real-time
 * signal no one else uses parks each thread in a handler that saves its
 * registers, and a futex word lets them all go again. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
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

/* heapsnap's own threads. They block every signal (thread.c), so they
 * would never park; they only touch heapsnap's memory, so they need not. */
#define OWN_MAX 32
static _Atomic pid_t own[OWN_MAX];
static __thread int own_slot __attribute__((tls_model("initial-exec")));

static pid_t gettid_raw(void) { return (pid_t)syscall(SYS_gettid); }

void hs__leak_own_thread_enter(void) {
  pid_t me = gettid_raw();
  for (int i = 0; i < OWN_MAX; i++) {
    pid_t z = 0;
    if (atomic_compare_exchange_strong(&own[i], &z, me)) {
      own_slot = i + 1;
      return;
    }
  }
}

void hs__leak_own_thread_exit(void) {
  if (own_slot > 0)
    atomic_store(&own[own_slot - 1], 0);
  own_slot = 0;
}

static int is_own(pid_t tid) {
  for (int i = 0; i < OWN_MAX; i++)
    if (atomic_load_explicit(&own[i], memory_order_relaxed) == tid)
      return 1;
  return 0;
}

static void futex_wait(atomic_uint *w, unsigned val, long ns) {
  struct timespec ts = {ns / 1000000000L, ns % 1000000000L};
  syscall(SYS_futex, (unsigned *)w, FUTEX_WAIT_PRIVATE, val,
          ns > 0 ? &ts : NULL, NULL, 0);
}

static void futex_wake(atomic_uint *w) {
  syscall(SYS_futex, (unsigned *)w, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL,
          0);
}

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
      futex_wake(&nparked);
      break;
    }
  }
  while (atomic_load(&stop_word) == g)
    futex_wait(&stop_word, g, 0);
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

static int known(const hs_leak_world_t *w, pid_t tid) {
  for (unsigned i = 0; i < w->n; i++)
    if (w->t[i].tid == tid)
      return 1;
  return 0;
}

/* Signals every thread of /proc/self/task not yet in w; how many (those
 * that did not fit in the table in *overflow). opendir
 * would malloc (a stopped thread may hold the allocator's lock): the
 * directory is read with getdents64 into a buffer on this stack. */
static unsigned signal_new(hs_leak_world_t *w, int sig, unsigned *overflow) {
  int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  char buf[4096];
  unsigned sent = 0;
  *overflow = 0;
  pid_t pid = getpid();
  for (;;) {
    long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
    if (n <= 0)
      break;
    for (long off = 0; off < n;) {
      struct dirent64_raw *d = (struct dirent64_raw *)(buf + off);
      off += d->reclen;
      if (d->name[0] < '0' || d->name[0] > '9')
        continue;
      pid_t tid = 0;
      for (const char *c = d->name; *c >= '0' && *c <= '9'; c++)
        tid = tid * 10 + (*c - '0');
      if (known(w, tid) || is_own(tid))
        continue;
      if (w->n >= HS_LEAK_MAX_THREADS) {
        ++*overflow;
        continue;
      }
      hs_leak_thread_t *t = &w->t[w->n];
      memset(t, 0, sizeof *t);
      t->tid = tid;
      atomic_store(&t->state, HS_LT_SENT);
      __atomic_store_n(&w->n, w->n + 1, __ATOMIC_RELEASE);
      if (syscall(SYS_tgkill, pid, tid, sig) != 0) {
        atomic_store(&t->state, HS_LT_GONE); /* it exited meanwhile */
        continue;
      }
      sent++;
    }
  }
  close(fd);
  return sent;
}

static long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* Waits until every signalled thread parked or is gone, for at most 1 s
 * since the last signal: a thread that has the signal blocked, or is
 * stuck in the kernel, is skipped rather than waited for. */
static void wait_parked(hs_leak_world_t *w) {
  long deadline = now_ns() + 1000000000L, next_probe = 0;
  pid_t pid = getpid();
  for (;;) {
    unsigned want = 0, have = atomic_load(&nparked);
    for (unsigned i = 1; i < w->n; i++) {
      int st = atomic_load(&w->t[i].state);
      want += st == HS_LT_SENT || st == HS_LT_PARKED;
    }
    if (have >= want)
      return;
    long t = now_ns();
    if (t >= deadline)
      return;
    if (t >= next_probe) {
      /* A thread that exits with the signal pending never parks. */
      for (unsigned i = 1; i < w->n; i++)
        if (atomic_load(&w->t[i].state) == HS_LT_SENT &&
            syscall(SYS_tgkill, pid, w->t[i].tid, 0) != 0 && errno == ESRCH) {
          int exp = HS_LT_SENT;
          atomic_compare_exchange_strong(&w->t[i].state, &exp, HS_LT_GONE);
        }
      next_probe = t + 20000000L;
    }
    futex_wait(&nparked, have, 10000000L);
  }
}

int hs__world_stop(hs_leak_world_t *w, uintptr_t caller_sp) {
  if (!w->t &&
      !(w->t = hs__leak_map(HS_LEAK_MAX_THREADS * sizeof(hs_leak_thread_t))))
    return HS_ENOMEM;
  w->n = 1;
  w->parked = w->missed = 0;
  hs_leak_thread_t *self = &w->t[0];
  memset(self, 0, sizeof *self);
  self->tid = gettid_raw();
  self->sp = caller_sp;
  self->tp = thread_pointer();
  ucontext_t uc;
  if (getcontext(&uc) == 0)
    save_regs(self, &uc);
  atomic_store(&self->state, HS_LT_PARKED);
  int sig = pick_signal();
  atomic_store(&nparked, 0);
  atomic_store(&cur_world, w);
  atomic_fetch_add(&stop_word, 1); /* odd: stopping */
  unsigned overflow = 0;
  if (sig) {
    /* Threads started by a thread we had not stopped yet: list again
     * until a round finds none (bounded; what is left is missed). */
    for (int round = 0; round < 8; round++) {
      if (!signal_new(w, sig, &overflow))
        break;
      wait_parked(w);
    }
  }
  unsigned parked = 0, missed = overflow;
  for (unsigned i = 1; i < w->n; i++) {
    int st = atomic_load(&w->t[i].state);
    parked += st == HS_LT_PARKED;
    missed += st == HS_LT_SENT;
  }
  if (!sig)
    missed++; /* no signal: the other threads run on (said as partial) */
  w->parked = parked;
  w->missed = missed;
  return 0;
}

void hs__world_fork_child(void) {
  if (atomic_load(&stop_word) & 1)
    atomic_fetch_add(&stop_word, 1);
  atomic_store(&in_handler, 0);
  atomic_store(&cur_world, NULL);
}

void hs__world_resume(hs_leak_world_t *w) {
  (void)w;
  atomic_fetch_add(&stop_word, 1); /* even: running */
  futex_wake(&stop_word);
  atomic_store(&cur_world, NULL);
  /* Each handler leaves as soon as it runs again; the table is reused by
   * the next check only once none is inside. */
  long deadline = now_ns() + 2000000000L;
  while (atomic_load(&in_handler) > 0 && now_ns() < deadline)
    sched_yield();
}
