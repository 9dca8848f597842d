/* internal.h - what the layers of libheapsnap share and do not export:
 * the reentrancy guard, the spin lock, accounted internal memory. */
#ifndef HS_INTERNAL_H
#define HS_INTERNAL_H

#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <pthread.h>

#include "heapsnap.h"

#define HS_HIDDEN __attribute__((visibility("hidden")))
#define HS_LIKELY(x) __builtin_expect(!!(x), 1)
#define HS_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Built under ThreadSanitizer: gcc says so with __SANITIZE_THREAD__,
 * clang with __has_feature. */
#if defined(__SANITIZE_THREAD__)
#define HS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HS_TSAN 1
#endif
#endif

/* Copies the first size bytes (at most full_size) of full, a versioned
 * struct of heapsnap.h, to out and sets out's struct_size to the bytes
 * copied. 0, or HS_EINVAL when out is NULL or size is below
 * sizeof(size_t). */
HS_HIDDEN int hs__fill_versioned(void *out, size_t size, const void *full,
                                 size_t full_size);

#define HS_CACHELINE 64

/* Non-zero while this thread runs heapsnap code: the interposer then passes
 * allocations straight to the real allocator, so heapsnap never traces its
 * own memory. Initial-exec TLS: no allocation on first touch, and it stays
 * readable while a thread is torn down. */
extern HS_HIDDEN __thread int hs__guard __attribute__((tls_model("initial-exec")));
/* Bytes this thread may still allocate before its next sample (control.c).
 * The interposer's fast path consumes it without looking at the guard, so
 * the guard puts back what heapsnap's own allocations took: the samples a
 * seed chooses depend on the program's allocations alone. */
extern HS_HIDDEN __thread int64_t hs__sample_left
    __attribute__((tls_model("initial-exec")));
extern HS_HIDDEN __thread int64_t hs__guard_left
    __attribute__((tls_model("initial-exec")));
static inline void hs__guard_enter(void) {
  if (hs__guard++ == 0)
    hs__guard_left = hs__sample_left;
}
static inline void hs__guard_exit(void) {
  if (--hs__guard == 0)
    hs__sample_left = hs__guard_left;
}

/* A stack's interned id, kept by the stack capture next to the frames it
 * gives without walking them (unwind/fast.c), so that the trace layer need
 * not hash the same stack again. Valid while the tracing state is the one
 * it was stored under (0: never; a tracing state is odd). */
typedef struct {
  uint32_t id;
  unsigned state;
} hs_stack_memo_t;

/* A test-and-test-and-set lock that yields after a short spin. Critical
 * sections hold it for a few hundred instructions at most and never call
 * into libc beyond memcpy and the real allocator. */
typedef struct {
  atomic_int v;
} hs_lock_t;

static inline void hs__lock(hs_lock_t *l) {
  for (;;) {
    if (!atomic_exchange_explicit(&l->v, 1, memory_order_acquire))
      return;
    for (int i = 0; atomic_load_explicit(&l->v, memory_order_relaxed); i++) {
      if (i < 64)
        __builtin_ia32_pause();
      else
        sched_yield();
    }
  }
}
static inline void hs__unlock(hs_lock_t *l) {
  atomic_store_explicit(&l->v, 0, memory_order_release);
}
/* For the child of fork(): the thread that held the lock does not exist. */
static inline void hs__lock_reset(hs_lock_t *l) {
  atomic_store_explicit(&l->v, 0, memory_order_relaxed);
}

/* Internal memory, counted in hs_get_tracer_memory() under a category.
 * The caller must hold the guard (or be outside the interposer). */
enum hs_mem_kind { HS_MEM_TRACES, HS_MEM_STACKS, HS_MEM_OTHER, HS_MEM_KINDS };
HS_HIDDEN void *hs__mem_alloc(enum hs_mem_kind kind, size_t size);
HS_HIDDEN void *hs__mem_calloc(enum hs_mem_kind kind, size_t n, size_t size);
HS_HIDDEN void hs__mem_free(enum hs_mem_kind kind, void *p, size_t size);
/* The same for large, zeroed tables (mapped and populated); free
 * with hs__mem_free_big and the same size. */
HS_HIDDEN void *hs__mem_calloc_big(enum hs_mem_kind kind, size_t n,
                                   size_t size);
HS_HIDDEN void hs__mem_free_big(enum hs_mem_kind kind, void *p, size_t size);
/* The same, mapped but not yet written in: the caller writes in, with
 * hs__mem_populate_big, the bytes [from, to) it is about to use. Memory
 * that is neither populated nor written reads as zero, but its first write
 * after a read is a copy-on-write fault (a TLB flush on every CPU the
 * program runs on). */
HS_HIDDEN void *hs__mem_reserve_big(enum hs_mem_kind kind, size_t n,
                                    size_t size);
HS_HIDDEN void hs__mem_populate_big(void *p, size_t size, size_t from,
                                    size_t to);
/* Gives the whole pages of bytes [from, to) of such a table back to the
 * system (they read as zero after), for a table being emptied into its
 * successor, so that the two are not both resident; it is still freed
 * with hs__mem_free_big. */
HS_HIDDEN void hs__mem_release_big(void *p, size_t size, size_t from,
                                   size_t to);
HS_HIDDEN size_t hs__mem_used(enum hs_mem_kind kind);

/* Starts fn(NULL) on a thread of stack bytes with every signal blocked
 * from its start (thread.c); its id in *out when out is not NULL.
 * pthread_create's result. */
HS_HIDDEN int hs__thread_start(pthread_t *out, void *(*fn)(void *),
                               size_t stack, int detached);
/* 1 when tid is one of those threads, running (the leak check does not
 * stop them: they block every signal and touch only heapsnap's memory).
 * Lock-free, async-signal-safe. */
HS_HIDDEN int hs__own_thread(pid_t tid);
/* How many of them were created and have not yet registered. */
HS_HIDDEN int hs__own_threads_starting(void);

/* Waiting between threads without a lock a fork could leave held: a
 * private futex on w while it holds val, for at most ns (none when ns <= 0),
 * and the wake of every waiter. Async-signal-safe; errno may change. */
HS_HIDDEN void hs__futex_wait(atomic_uint *w, unsigned val, long ns);
HS_HIDDEN void hs__futex_wake(atomic_uint *w);
/* CLOCK_MONOTONIC in nanoseconds, for deadlines. */
HS_HIDDEN long hs__mono_ns(void);

/* ---- calls that may take the loader's lock ----
 * dl_iterate_phdr takes the loader's write lock, and libunwind calls it (and
 * holds locks of its own) inside unw_step and unw_backtrace. A fork while
 * another thread is inside leaves those locks held in the child for ever
 * (glibc 2.36 resets only dl_load_lock). So every heapsnap call that may
 * take them is bracketed by hs__loader_enter/exit, and a child that
 * inherited a non-zero count never makes such a call again: its captures
 * stop at frames without rules and its snapshots use the module list taken
 * before the fork (symbolize/modules.c). */
#define HS_LOADER_SHARDS 16
typedef struct {
  _Alignas(HS_CACHELINE) atomic_long n;
} hs_loader_shard_t;
extern HS_HIDDEN hs_loader_shard_t hs__loader_inside[HS_LOADER_SHARDS];
/* Set in a fork child (never cleared) when the loader may be held. */
extern HS_HIDDEN int hs__loader_unsafe;

/* One per thread (loader.c): its address picks the thread's shard. */
extern HS_HIDDEN __thread char hs__loader_anchor
    __attribute__((tls_model("initial-exec")));
static inline atomic_long *hs__loader_slot(void) {
  uintptr_t a = (uintptr_t)&hs__loader_anchor;
  return &hs__loader_inside[(a * 0x9E3779B97F4A7C15ull) >> 60].n;
}
/* 1 when the call may be made (then hs__loader_exit must follow); 0 in a
 * child where the loader's lock may be held by a thread that is gone.
 * async-signal-safe. */
static inline int hs__loader_enter(void) {
  if (HS_UNLIKELY(hs__loader_unsafe))
    return 0;
  /* seq_cst: visible before the call can take the lock, so a fork that
   * catches the lock held catches the count too. */
  atomic_fetch_add(hs__loader_slot(), 1);
  return 1;
}
static inline void hs__loader_exit(void) {
  atomic_fetch_sub_explicit(hs__loader_slot(), 1, memory_order_release);
}
/* In the fork table (runtime): prepare finds the loader's lock (once, with
 * no heapsnap lock held); child reads what it inherited. */
HS_HIDDEN void hs__loader_fork_prepare(void);
HS_HIDDEN void hs__loader_fork_child(void);

/* Fault injection seam for tests: when set, hs__mem_alloc calls it first
 * and fails when it returns non-zero. */
extern int (*hs__mem_fail_hook)(size_t size);

#endif
