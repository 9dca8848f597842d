/* leak.h - the leak checker's internal contract: stopping the world
 * (world.c), the scan and its kept result (scan.c), suppressions. */
#ifndef HS_LEAK_H
#define HS_LEAK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../common/internal.h"

/* Threads the table of parked threads can hold; more are skipped and the
 * check is partial. */
#define HS_LEAK_MAX_THREADS 4096
/* Words of a parked thread's saved registers (its mcontext, scanned whole:
 * general registers, and on x86-64 the pointer to the FPU state). */
#define HS_LEAK_REG_WORDS 48

/* A thread's entry: asked to stop (signalled, or interrupted by the
 * tracer), parked (its registers saved), gone, or refused by ptrace (a
 * debugger traces it, or ptrace is not allowed): the signal's to stop. */
enum { HS_LT_EMPTY, HS_LT_SENT, HS_LT_PARKED, HS_LT_GONE, HS_LT_REFUSED };

typedef struct hs_leak_thread {
  pid_t tid;
  _Atomic int state;   /* HS_LT_* */
  uintptr_t sp;        /* stack pointer when parked */
  uintptr_t tp;        /* thread pointer (TCB): static TLS lies below it */
  uintptr_t regs[HS_LEAK_REG_WORDS];
  unsigned nregs;
  int traced;          /* seized by the tracer: it detaches it */
  int sig;             /* a signal the tracer caught on its way: delivered
                          at the detach */
} hs_leak_thread_t;

typedef struct hs_leak_world {
  hs_leak_thread_t *t; /* mapped, HS_LEAK_MAX_THREADS entries */
  unsigned n;          /* entries used; [0] is the calling thread */
  unsigned parked;     /* threads other than the caller that parked */
  unsigned missed;     /* threads that did not park (or did not fit) */
  int how;             /* HS_LEAK_STOP_* bits: what parked the others */
  int tracer;          /* a tracer runs until the resume */
  unsigned overflow;   /* threads seen that the table could not hold */
} hs_leak_world_t;

/* How hs__world_stop stops threads: HS_STOP_AUTO (ptrace, and the signal
 * for threads ptrace refuses or where no tracer can start), HS_STOP_PTRACE
 * (ptrace alone: what it refuses is missed), HS_STOP_SIGNAL. The order of
 * HEAPSNAP_LEAK_STOP's choices in options.c. */
enum { HS_STOP_AUTO, HS_STOP_PTRACE, HS_STOP_SIGNAL };
HS_HIDDEN void hs__leak_set_stop(int how);

/* Stops every thread of the process but the caller and heapsnap's own,
 * filling w (the caller's entry gets its registers from caller_uc, a
 * ucontext_t that getcontext filled at the check's entry, or none when
 * NULL, and sp from caller_sp). Never allocates through malloc while threads are
 * stopped; waits at most about a second per round for a thread to park.
 * 0, or HS_ENOMEM (nothing stopped). hs__world_resume must follow a 0. */
HS_HIDDEN int hs__world_stop(hs_leak_world_t *w, uintptr_t caller_sp,
                             const void *caller_uc);
/* Lets every parked thread go; waits (bounded) until each has left the
 * handler's use of w and the tracer has exited, then w can be reused.
 * 1 when the tracer died before: the threads it held ran during the scan. */
HS_HIDDEN int hs__world_resume(hs_leak_world_t *w);
/* Whether w already has an entry for tid. */
HS_HIDDEN int hs__world_has(const hs_leak_world_t *w, pid_t tid);
/* Calls each(tid, arg) for every thread id in buf, n bytes that
 * getdents64 read from a /proc/PID/task directory. Touches no errno: the
 * tracer runs it. */
HS_HIDDEN void hs__tasks_parse(const char *buf, long n,
                               void (*each)(pid_t tid, void *arg), void *arg);

/* tracer.c: a helper task that stops with ptrace every thread of the
 * process not yet in w but the caller and heapsnap's own, appending them
 * to w (parked, gone, refused, or still SENT when they did not stop within
 * a second). 0: the tracer holds them until hs__tracer_resume; HS_EINVAL
 * (no tracer on this platform or build) or HS_EIO (none could be started,
 * or it died): nothing is held and w has only the entries it had. */
HS_HIDDEN int hs__tracer_stop(hs_leak_world_t *w);
/* Lets the tracer detach every thread and waits (bounded) for it to exit;
 * 0, or 1 when it had died before (the threads ran during the scan). */
HS_HIDDEN int hs__tracer_resume(void);
/* In a fork child: the tracer is the parent's. */
HS_HIDDEN void hs__tracer_fork_child(void);

/* The result lock, in the runtime's fork table (before the snapshot and
 * trace entries: a snapshot takes it before the table locks). */
HS_HIDDEN void hs__leak_fork_prepare(void);
HS_HIDDEN void hs__leak_fork_parent(void);
HS_HIDDEN void hs__leak_fork_child(void);
/* In a fork child: no stop is in progress there. */
HS_HIDDEN void hs__world_fork_child(void);

/* The class the last check gave the live block (ptr, size, stack), or
 * HS_LEAK_UNCHECKED; only between hs__leak_result_lock, when it returned 1,
 * and _unlock (a check swaps its result in under that lock). Before the
 * first check the lock is not taken (0): there is no result. */
HS_HIDDEN int hs__leak_result_lock(void);
HS_HIDDEN void hs__leak_result_unlock(int locked);
HS_HIDDEN unsigned hs__leak_kind_of(uintptr_t ptr, uint64_t size,
                                    uint32_t stack);
/* Whether a check's result is kept for the tracing state in force (a
 * start, stop or clear since makes it name blocks of another generation).
 * Snapshots then say they carry classes. */
HS_HIDDEN int hs__leak_have_result(void);

/* Mapped memory for the checker: zeroed, or NULL. */
HS_HIDDEN void *hs__leak_map(size_t bytes);
HS_HIDDEN void hs__leak_unmap(void *p, size_t bytes);

#endif
