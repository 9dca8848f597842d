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

/* A thread's entry: signalled, parked (its registers saved), or gone. */
enum { HS_LT_EMPTY, HS_LT_SENT, HS_LT_PARKED, HS_LT_GONE };

typedef struct hs_leak_thread {
  pid_t tid;
  _Atomic int state;   /* HS_LT_* */
  uintptr_t sp;        /* stack pointer when parked */
  uintptr_t tp;        /* thread pointer (TCB): static TLS lies below it */
  uintptr_t regs[HS_LEAK_REG_WORDS];
  unsigned nregs;
} hs_leak_thread_t;

typedef struct hs_leak_world {
  hs_leak_thread_t *t; /* mapped, HS_LEAK_MAX_THREADS entries */
  unsigned n;          /* entries used; [0] is the calling thread */
  unsigned parked;     /* threads other than the caller that parked */
  unsigned missed;     /* threads that did not park (or did not fit) */
} hs_leak_world_t;

/* Stops every thread of the process but the caller and heapsnap's own,
 * filling w (the caller's entry gets its registers from getcontext and sp
 * from caller_sp). Never allocates through malloc while threads are
 * stopped; waits at most about a second per round for a thread to park.
 * 0, or HS_ENOMEM (nothing stopped). hs__world_resume must follow a 0. */
HS_HIDDEN int hs__world_stop(hs_leak_world_t *w, uintptr_t caller_sp);
/* Lets every parked thread go; waits (bounded) until each has left the
 * handler's use of w, then w can be reused. async-signal-safe. */
HS_HIDDEN void hs__world_resume(hs_leak_world_t *w);

/* heapsnap's own threads (applier, writer, warm-up) block every signal and
 * never touch the host's blocks: they are not waited for. thread.c calls
 * these around each thread's function. */
HS_HIDDEN void hs__leak_own_thread_enter(void);
HS_HIDDEN void hs__leak_own_thread_exit(void);

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
