/* trace.h - the trace layer: interned stacks, live traces with totals, and
 * the tracing state that the interposer consults on every call. */
#ifndef HS_TRACE_H
#define HS_TRACE_H

#include <stdint.h>

#include "../common/internal.h"

/* Tracing state: a generation counter shifted left once, with bit 0 set
 * while tracing. Every start, stop and clear makes a new value, so a hook
 * that read the state before such a change sees a mismatch under the table
 * lock and drops what it was recording instead of writing into a table that
 * was emptied under it. */
extern HS_HIDDEN atomic_uint hs__state;
static inline unsigned hs__state_now(void) {
  return atomic_load_explicit(&hs__state, memory_order_acquire);
}
static inline int hs__state_tracing(unsigned s) { return (int)(s & 1u); }

/* ---- sampling (control.c) ---- */
/* The sample rate in force (0: trace everything); written only while
 * tracing is off. */
extern HS_HIDDEN atomic_size_t hs__sample_rate;
HS_HIDDEN int hs__sample_next(size_t size);
/* Whether an allocation of size is to be recorded, size already taken off
 * this thread's counter (the interposer's fast path does that): sampling
 * picks it when the counter has reached zero. */
static inline int hs__sample_hit_counted(size_t size) {
  if (atomic_load_explicit(&hs__sample_rate, memory_order_relaxed) == 0)
    return 1;
  if (hs__sample_left > 0)
    return 0;
  return hs__sample_next(size);
}
/* The same, taking size off the counter first. hot path: one subtraction
 * unless sampling picks it. */
static inline int hs__sample_hit(size_t size) {
  if (atomic_load_explicit(&hs__sample_rate, memory_order_relaxed) == 0)
    return 1;
  hs__sample_left -= (int64_t)size;
  return hs__sample_hit_counted(size);
}

/* ---- what an interposed call may skip (control.c) ---- */
/* A hint for the interposer's first instructions, recomputed at every
 * change of state: HS_FAST_OFF, not tracing (and the allocator resolved):
 * straight to the real allocator; HS_FAST_SAMPLED, sampling: so too for an
 * allocation its thread's byte counter passes over and a free the filter
 * rules out; HS_FAST_NONE: the full checks. A call that read a stale value
 * behaves as if it ran before the change. */
enum { HS_FAST_OFF, HS_FAST_SAMPLED, HS_FAST_NONE };
extern HS_HIDDEN atomic_uint hs__fast;
static inline unsigned hs__fast_now(void) {
  return atomic_load_explicit(&hs__fast, memory_order_acquire);
}
/* The interposer has its real allocator: OFF and SAMPLED become possible. */
HS_HIDDEN void hs__fast_allow(void);

/* ---- the lifetime clock (control.c) ---- */
/* Blocks carry a 25-bit allocation stamp in units of 1,024 ns (a 34 s
 * cycle): the bits a heap slot and a ring event have spare. A lifetime is
 * the difference modulo the cycle, so one longer than 34 s is seen
 * modulo 34 s. */
#define HS_STAMP_BITS 25
#define HS_STAMP_MASK ((1u << HS_STAMP_BITS) - 1)
#define HS_STAMP_SHIFT 10 /* ns per stamp unit = 1 << HS_STAMP_SHIFT */
/* ns = tsc * hs__tsc_mult >> 32; 0 when the TSC is not invariant (or not
 * x86-64) and the clock is clock_gettime(CLOCK_MONOTONIC). */
extern HS_HIDDEN uint64_t hs__tsc_mult;
HS_HIDDEN uint32_t hs__stamp_slow(void);
/* hot path: rdtsc and a multiply (BENCHMARKS.md: vDSO clock_gettime costs
 * about three times as much). */
__extension__ typedef unsigned __int128 hs_u128;
static inline uint32_t hs__stamp_now(void) {
#if defined(__x86_64__)
  uint64_t m = __atomic_load_n(&hs__tsc_mult, __ATOMIC_RELAXED);
  if (HS_LIKELY(m))
    return (uint32_t)(((hs_u128)__builtin_ia32_rdtsc() * m) >>
                      (32 + HS_STAMP_SHIFT)) &
           HS_STAMP_MASK;
#endif
  return hs__stamp_slow();
}
/* Measures the TSC against CLOCK_MONOTONIC once (about 200 us). */
HS_HIDDEN void hs__clock_calibrate(void);
/* Frees within this many ns count as temporary by time (control.c). */
extern HS_HIDDEN _Atomic uint64_t hs__temp_ns;

/* ---- interned stacks (stacks.c) ---- */
/* Stack ids fit in 24 bits: 6 bits of shard, 18 of index within it. */
#define HS_STACK_SHARD_BITS 6
#define HS_STACK_SHARDS (1u << HS_STACK_SHARD_BITS)
#define HS_STACK_INDEX_BITS 18
#define HS_STACK_ID_BITS (HS_STACK_SHARD_BITS + HS_STACK_INDEX_BITS)

/* Finds or adds the stack frames[0..n). 0, HS_ENOMEM (no memory or no id
 * left) or HS_ENOTTRACING (the state changed from s). hot path. */
HS_HIDDEN int hs__stack_intern(const uintptr_t *frames, int n, unsigned s,
                               uint32_t *id, int *is_new);
/* The hash hs__stack_intern uses, and interning with it precomputed. */
HS_HIDDEN uint64_t hs__stack_hash(const uintptr_t *frames, int n);
HS_HIDDEN int hs__stack_intern_hashed(const uintptr_t *frames, int n,
                                      uint64_t hash, unsigned s, uint32_t *id,
                                      int *is_new);
/* Copies up to max frames of stack id; returns its depth, or -1 if the id
 * is not (or no longer) known. */
HS_HIDDEN int hs__stack_get(uint32_t id, uintptr_t *out, int max);
HS_HIDDEN uint64_t hs__stack_count(void);
/* With every stack lock held: drop every stack. */
HS_HIDDEN void hs__stacks_lock_all(void);
HS_HIDDEN void hs__stacks_unlock_all(void);
HS_HIDDEN void hs__stacks_reset_locks(void);
HS_HIDDEN void hs__stacks_clear_locked(void);

/* Cumulative counters per stack, since the last start or clear: counts
 * in units of 1/65536 block (sampled tracing adds each sampled block's
 * weight, 1/p), bytes in bytes (likewise estimated). Updated with atomic
 * adds by whoever applies an allocation or a free to the trace table. */
#define HS_CTR_ONE 65536u
#define HS_CTR_BUCKETS 32
typedef struct hs_stack_ctr {
  uint64_t allocs, bytes, frees, temp, temp_time;
  uint64_t hist[HS_CTR_BUCKETS]; /* bucket k: stamp difference in
                                    [2^(k-1), 2^k), bucket 0 for 0 */
} hs_stack_ctr_t;
/* Free flags: freed before its thread's next allocation (heaptrack's
 * temporary). */
#define HS_FREE_TEMP 1u
/* hot path (the applier's): counts an allocation or a free for stack id;
 * a trace table lock is held (no clear in between). */
HS_HIDDEN void hs__stack_count_alloc(uint32_t id, uint64_t size);
HS_HIDDEN void hs__stack_count_free(uint32_t id, uint64_t size,
                                    uint32_t lifetime, unsigned flags);
/* Calls fn for every stack with its counters, one shard at a time under
 * its lock. */
HS_HIDDEN void hs__stacks_foreach(void (*fn)(uint32_t id,
                                             const hs_stack_ctr_t *c,
                                             void *arg),
                                  void *arg);

/* Called after a stack is interned for the first time, from the
 * allocating thread with no heapsnap lock held (the snapshot layer keeps
 * its module history with it). */
HS_HIDDEN void hs__trace_set_new_stack_hook(void (*fn)(const uintptr_t *,
                                                       int));

/* ---- live traces and totals (traces.c) ---- */
/* Adds or replaces the trace of (domain, ptr). 0, HS_ENOMEM or
 * HS_ENOTTRACING (state changed from s). hot path. */
HS_HIDDEN int hs__traces_insert(unsigned domain, uintptr_t ptr, size_t size,
                                uint32_t stack, unsigned s);
/* Removes the trace of (domain, ptr); 1 when there was one (its size and
 * stack in *size and *stack when not NULL), else 0. hot path. */
HS_HIDDEN int hs__traces_remove(unsigned domain, uintptr_t ptr, size_t *size,
                                uint32_t *stack);
/* With on, keep a counting filter of heap pointers so that a free of a
 * pointer that was never sampled skips the tables. Call with every table
 * lock held and the tables empty. */
HS_HIDDEN void hs__traces_set_filter_locked(int on);
/* The hash every heap-trace structure uses for a pointer. */
static inline uint64_t hs__ptr_hash(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 29;
  return x;
}

/* Sampling's counting filter over heap pointers (traces.c): a zero counter
 * proves a pointer was never sampled. A counter that reaches 255 stays
 * there (the pointers it counts are always looked up). */
#define HS_FILTER_BITS 18
extern HS_HIDDEN _Atomic uint8_t hs__filter[1u << HS_FILTER_BITS];
extern HS_HIDDEN int hs__filter_on;
/* Makes ptr's counter say "may hold" for good, so that a free the filter
 * passes over never sees ptr: for the interposer's bootstrap blocks, which
 * the real allocator never gave out. Up to HS_FILTER_PINS pointers. */
#define HS_FILTER_PINS 2048
HS_HIDDEN void hs__filter_pin(uintptr_t ptr);

/* Its own multiplicative hash, not hs__ptr_hash: four instructions on the
 * path of every free. */
static inline _Atomic uint8_t *hs__filter_slot(uintptr_t ptr) {
  return &hs__filter[((uint64_t)ptr * 0x9E3779B97F4A7C15ull) >>
                     (64 - HS_FILTER_BITS)];
}

/* 0 when ptr is certainly not a traced heap block (sampling's filter says
 * so); 1 when it may be. hot path: inline, no lock, one load when not
 * sampling. */
static inline int hs__traces_may_hold(uintptr_t ptr) {
  return !__atomic_load_n(&hs__filter_on, __ATOMIC_RELAXED) ||
         atomic_load_explicit(hs__filter_slot(ptr), memory_order_relaxed) != 0;
}
/* Starts loading the cache lines an insert of ptr will touch, so that the
 * miss overlaps the unwinding. hot path. */
HS_HIDDEN void hs__traces_prefetch(uintptr_t ptr);
/* The same two without applying the deferred events first: for the ring's
 * applier (defer.c). */
HS_HIDDEN int hs__traces_insert_now(unsigned domain, uintptr_t ptr,
                                    size_t size, uint32_t stack, unsigned s);
HS_HIDDEN int hs__traces_remove_now(unsigned domain, uintptr_t ptr,
                                    size_t *size, uint32_t *stack);
/* The same with the allocation's stamp, and the free's stamp and
 * HS_FREE_* flags, for the lifetime counters. */
HS_HIDDEN int hs__traces_insert_at(unsigned domain, uintptr_t ptr,
                                   size_t size, uint32_t stack, unsigned s,
                                   uint32_t stamp);
HS_HIDDEN int hs__traces_remove_at(unsigned domain, uintptr_t ptr,
                                   size_t *size, uint32_t *stack,
                                   uint32_t stamp, unsigned flags);
/* Looks the trace up without removing it: 1 found, 0 not. */
HS_HIDDEN int hs__traces_lookup(unsigned domain, uintptr_t ptr, size_t *size,
                                uint32_t *stack);
HS_HIDDEN void hs__traces_totals(size_t *current, size_t *peak);
/* Trigger which (HS_TRIGGER_*) calls fn(now) from the allocating thread,
 * under a table lock, when the traced size reaches at: with step 0 once
 * (re-arm by calling again), else at every crossing, each next threshold
 * step above the size that crossed the last. fn may only do
 * async-signal-safe work (it writes to a pipe). at SIZE_MAX disarms. */
enum { HS_TRIGGER_GROWTH, HS_TRIGGER_PEAK, HS_TRIGGERS };
HS_HIDDEN void hs__traces_set_trigger(int which, size_t at, size_t step,
                                      void (*fn)(size_t now));
HS_HIDDEN void hs__traces_reset_peak(void);
HS_HIDDEN uint64_t hs__traces_count(void);
/* Heap shards whose slots are placed by hash because address placement
 * made long probe runs in them (traces.c); for tests. */
HS_HIDDEN unsigned hs__traces_hashed_shards(void);
/* Each 1 << HS_TRACE_REGION_SHIFT bytes of address space (a malloc arena)
 * go to one heap shard; which one, for tests. */
#define HS_TRACE_REGION_SHIFT 26
HS_HIDDEN unsigned hs__traces_shard_index(uintptr_t ptr);
/* Traces recorded (allocation calls seen) since the last start or clear. */
HS_HIDDEN uint64_t hs__traces_inserts(void);
HS_HIDDEN void hs__traces_lock_all(void);
HS_HIDDEN void hs__traces_unlock_all(void);
HS_HIDDEN void hs__traces_reset_locks(void);
/* Around a run of hs__traces_*_now calls by one thread (the deferred
 * events' applier): takes every table lock once for all of them. In
 * between, this thread may call nothing else that takes a table lock. */
HS_HIDDEN void hs__traces_batch_begin(void);
HS_HIDDEN void hs__traces_batch_end(void);
/* Publishes the batch's totals so far: before the events applied so far
 * are said to be applied. */
HS_HIDDEN void hs__traces_batch_flush(void);
HS_HIDDEN void hs__traces_clear_locked(void);

/* One live trace, as the snapshot layer sees it. */
typedef struct hs_trace_rec {
  uintptr_t ptr;
  uint64_t size;
  uint32_t stack;
  uint32_t domain;
} hs_trace_rec_t;
/* Calls fn for every live trace, one table shard at a time: each shard is
 * copied under its lock and visited after (the wide table under its lock),
 * so other threads keep allocating meanwhile and the ring's applier is not
 * held up by fn. Every trace applied before the call is seen (the ring is
 * drained first) unless freed before its shard is copied. fn must not
 * allocate through the interposer's traced path (the guard is held). */
HS_HIDDEN void hs__traces_foreach(void (*fn)(const hs_trace_rec_t *, void *),
                                  void *arg);

/* ---- deferred table updates (defer.c) ---- */
/* Non-zero while heap events go through the ring. hot path. */
extern HS_HIDDEN int hs__defer_on;
static inline int hs__deferring(void) {
  /* Acquire: pairs with the release that publishes the ring. */
  return __atomic_load_n(&hs__defer_on, __ATOMIC_ACQUIRE);
}
/* Before unwinding for a heap block: its table slot is prefetched, unless
 * the insert is deferred (the applier prefetches then). hot path. */
static inline void hs__prefetch_for_insert(uintptr_t ptr) {
  if (!hs__deferring())
    hs__traces_prefetch(ptr);
}
/* HEAPSNAP_DEFER: 0 keeps every update immediate. Before tracing starts. */
HS_HIDDEN void hs__defer_configure(int on);
/* At each start, with the control lock held: the ring (and its applier
 * thread) for full tracing, immediate updates for sampled tracing. */
HS_HIDDEN void hs__defer_start(int sampling);
/* Queues the allocation (stack interned under state s) or the free of a
 * heap block; 1 if queued, 0 if the caller must update the table itself.
 * hot path. */
HS_HIDDEN int hs__defer_alloc(uintptr_t ptr, size_t size, uint32_t stack,
                              unsigned s);
HS_HIDDEN int hs__defer_free(uintptr_t ptr, unsigned flags);
/* realloc: the old block's free, queued before the real call with a note
 * to keep its trace aside; the event's number + 1, or 0 when the caller
 * must update the table itself. If the call fails, the trace comes back
 * with hs__defer_realloc_failed(old, that number). */
HS_HIDDEN uint64_t hs__defer_realloc_free(uintptr_t old, unsigned flags);
HS_HIDDEN void hs__defer_realloc_failed(uintptr_t old, uint64_t ticket);
/* Applies every event queued before the call; the table is then exact.
 * Call with no table lock held. */
HS_HIDDEN void hs__defer_drain(void);
/* The ring's size (0 before the first deferred start). */
HS_HIDDEN size_t hs__defer_ring_bytes(void);
/* Events lost because the thread that numbered them did not survive a
 * fork. */
HS_HIDDEN uint64_t hs__defer_lost_in_fork(void);
/* Solo numbering (defer.c): 0 off, 1 offered to the next thread that
 * queues an event, 2 taken, 3 being ended by another thread; and whether
 * the calling thread holds it. */
HS_HIDDEN int hs__defer_solo_state(void);
HS_HIDDEN int hs__defer_solo_mine(void);
HS_HIDDEN void hs__defer_fork_prepare(void);
HS_HIDDEN void hs__defer_fork_parent(void);
HS_HIDDEN void hs__defer_fork_child(void);

/* ---- recording (control.c) ---- */
/* Called by the interposer, with the guard held and tracing seen on. */
HS_HIDDEN void hs__record_alloc(void *ptr, size_t size, uintptr_t caller_ret);
/* The two halves of recording, for a caller that unwinds itself (malloc,
 * to keep heapsnap's frames off the stack it walks): the frames in force,
 * then the record of frames[0..n) under state s (read before unwinding),
 * with the capture's id cell for them (or NULL). */
HS_HIDDEN int hs__nframe_now(void);
HS_HIDDEN int hs__record_frames(unsigned s, unsigned domain, uintptr_t ptr,
                                size_t size, const uintptr_t *frames, int n,
                                hs_stack_memo_t *cell);
HS_HIDDEN void hs__record_free(void *ptr);
/* realloc while events are deferred: the stack and the old block's free
 * before the real call, the new block (or the old one's return, if the
 * call failed) after it. Returns what real_realloc returned, with its
 * errno. */
HS_HIDDEN void *hs__realloc_deferred(void *old, size_t size, uintptr_t caller,
                                     void *(*real_realloc)(void *, size_t));
HS_HIDDEN void hs__count_drop(size_t size);
/* Entries of the fork table (lib/runtime/forks.c): the control mutex, and
 * every stack and trace shard lock (with the wide table's). */
HS_HIDDEN void hs__control_fork_prepare(void);
HS_HIDDEN void hs__control_fork_parent(void);
HS_HIDDEN void hs__control_fork_child(void);
HS_HIDDEN void hs__tables_fork_prepare(void);
HS_HIDDEN void hs__tables_fork_parent(void);
HS_HIDDEN void hs__tables_fork_child(void);

#endif
