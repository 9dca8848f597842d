/* control.c - the tracing state and the public control API (hs_start,
 * hs_stop, totals, domains, object tracebacks), and the recording path the
 * interposer calls. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "../unwind/unwind.h"
#include "trace.h"
#if defined(__x86_64__)
#include <cpuid.h>
#endif

__thread int hs__guard __attribute__((tls_model("initial-exec")));
__thread int64_t hs__guard_left __attribute__((tls_model("initial-exec")));

atomic_uint hs__state;
atomic_uint hs__fast = HS_FAST_NONE;
static atomic_int fast_allowed;

/* Lock-free, for the interposer calls it from inside malloc: a caller that
 * stored a value computed from a state that has since changed goes round
 * again, so the last value stored is the one for the last state. */
static void fast_refresh(void) {
  for (;;) {
    unsigned s = hs__state_now();
    int allowed = atomic_load(&fast_allowed);
    unsigned m = HS_FAST_NONE;
    if (allowed && !hs__state_tracing(s))
      m = HS_FAST_OFF;
    else if (allowed &&
             atomic_load_explicit(&hs__sample_rate, memory_order_relaxed) &&
             __atomic_load_n(&hs__filter_on, __ATOMIC_RELAXED))
      m = HS_FAST_SAMPLED;
    atomic_store_explicit(&hs__fast, m, memory_order_release);
    if (hs__state_now() == s && atomic_load(&fast_allowed) == allowed)
      return;
  }
}

void hs__fast_allow(void) {
  atomic_store(&fast_allowed, 1);
  fast_refresh();
}
/* The frames captured per allocation while tracing; written before the
 * state says tracing, read after. */
static atomic_int nframe_active = HS_DEFAULT_FRAMES;
static int nframe_limit = HS_DEFAULT_FRAMES; /* protected by control_mu */
static pthread_mutex_t control_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_uint_least64_t dropped_traces, dropped_bytes;

/* ---- sampling ---- */
atomic_size_t hs__sample_rate;
__thread int64_t hs__sample_left __attribute__((tls_model("initial-exec")));
static __thread uint64_t sample_rng __attribute__((tls_model("initial-exec")));
static __thread unsigned sample_gen __attribute__((tls_model("initial-exec")));
static size_t next_rate;        /* protected by control_mu */
static uint64_t next_seed;      /* protected by control_mu */
static uint64_t seed_in_force;  /* written at start, read by threads */
static atomic_uint seed_gen;    /* bumped at each start: threads reseed */
static atomic_uint_least64_t thread_seq;

static uint64_t rng_next(void) {
  /* xorshift64*: enough for choosing samples, and no libc state. */
  sample_rng ^= sample_rng >> 12;
  sample_rng ^= sample_rng << 25;
  sample_rng ^= sample_rng >> 27;
  return sample_rng * 0x2545F4914F6CDD1Dull;
}

/* Bytes to the next sample: exponential with mean rate (Poisson process
 * over the bytes allocated). */
static int64_t draw(size_t rate) {
  double u = ((double)(rng_next() >> 11) + 1.0) * (1.0 / 9007199254740993.0);
  double d = -log(u) * (double)rate;
  return d < 1 ? 1 : d > 4e18 ? (int64_t)4e18 : (int64_t)d;
}

int hs__sample_next(size_t size) {
  size_t rate = atomic_load_explicit(&hs__sample_rate, memory_order_relaxed);
  unsigned gen = atomic_load_explicit(&seed_gen, memory_order_relaxed);
  if (sample_gen != gen || !sample_rng) {
    /* First sample decision of this thread since the start: a stream of
     * its own, repeatable when the user gave a seed. */
    uint64_t k = atomic_fetch_add(&thread_seq, 1) + 1;
    sample_rng = (seed_in_force ^ (k * 0x9E3779B97F4A7C15ull)) | 1;
    sample_gen = gen;
    hs__sample_left = draw(rate) - (int64_t)size;
    if (hs__sample_left > 0)
      return 0;
  }
  /* Memoryless: the next point is drawn afresh past this block. */
  hs__sample_left = draw(rate);
  return 1;
}

int hs_set_sample_rate(size_t bytes, uint64_t seed) {
  if ((uint64_t)bytes > (1ull << 40))
    return HS_EINVAL;
  pthread_mutex_lock(&control_mu);
  next_rate = bytes;
  next_seed = seed;
  pthread_mutex_unlock(&control_mu);
  return 0;
}

size_t hs_get_sample_rate(void) {
  pthread_mutex_lock(&control_mu);
  size_t r = hs__state_tracing(hs__state_now())
                 ? atomic_load(&hs__sample_rate)
                 : next_rate;
  pthread_mutex_unlock(&control_mu);
  return r;
}
/* ---- the lifetime clock ---- */
uint64_t hs__tsc_mult;
_Atomic uint64_t hs__temp_ns = HS_DEFAULT_TEMPORARY_NS;

uint32_t hs__stamp_slow(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
  return (uint32_t)(ns >> HS_STAMP_SHIFT) & HS_STAMP_MASK;
}

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* rdtsc where the TSC is invariant (constant rate, runs in every C-state:
 * CPUID 0x80000007 EDX bit 8), the kernel's own clocksource on such
 * machines: 7 ns a read here against 20 for the vDSO's clock_gettime,
 * which adds a seqlock and a conversion. Its rate is measured once against
 * CLOCK_MONOTONIC, over 200 us (0.02% with clock_gettime's jitter of tens
 * of ns: log2 buckets need far less). */
void hs__clock_calibrate(void) {
#if defined(__x86_64__)
  if (__atomic_load_n(&hs__tsc_mult, __ATOMIC_RELAXED))
    return;
  unsigned a, b, c, d;
  if (!__get_cpuid(0x80000007, &a, &b, &c, &d) || !(d & (1u << 8)))
    return;
  uint64_t t0 = mono_ns(), c0 = __builtin_ia32_rdtsc(), t1, c1;
  do {
    t1 = mono_ns();
    c1 = __builtin_ia32_rdtsc();
  } while (t1 - t0 < 200000);
  if (c1 <= c0)
    return;
  double ns_per_tick = (double)(t1 - t0) / (double)(c1 - c0);
  __atomic_store_n(&hs__tsc_mult, (uint64_t)(ns_per_tick * 4294967296.0),
                   __ATOMIC_RELAXED);
#endif
}

int hs_set_temporary_threshold(uint64_t ns) {
  atomic_store_explicit(&hs__temp_ns, ns, memory_order_relaxed);
  return 0;
}

uint64_t hs_get_temporary_threshold(void) {
  return atomic_load_explicit(&hs__temp_ns, memory_order_relaxed);
}

/* heaptrack's temporary: a block freed before its thread allocated again.
 * The thread's last traced block, and its sampling counter then: sampling
 * passes most allocations over without a look, but each takes its size
 * off that counter, so an unchanged counter proves none came between. */
static __thread uintptr_t last_ptr __attribute__((tls_model("initial-exec")));
static __thread int64_t last_mark __attribute__((tls_model("initial-exec")));

/* Kept complemented (never a user-space address): the leak check scans
 * TLS as a root, and a plain copy would make this block look referenced. */
static inline void note_alloc(uintptr_t ptr) {
  last_ptr = ~ptr;
  last_mark = hs__sample_left;
}

static inline unsigned free_flags(uintptr_t ptr) {
  unsigned f = ~ptr == last_ptr && hs__sample_left == last_mark
                   ? HS_FREE_TEMP
                   : 0;
  last_ptr = 0;
  return f;
}

static void (*_Atomic new_stack_hook)(const uintptr_t *, int);

void hs__trace_set_new_stack_hook(void (*fn)(const uintptr_t *, int)) {
  atomic_store(&new_stack_hook, fn);
}

void hs__count_drop(size_t size) {
  atomic_fetch_add_explicit(&dropped_traces, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&dropped_bytes, size, memory_order_relaxed);
}

/* Per-thread memo of recent stacks: hash -> id for the current state.
 * A hit skips the stack shard's lock and the frame comparison; it trusts
 * the 64-bit hash of the frames (and their count), whose chance of a
 * collision between two live stacks is about n^2 / 2^65. */
#define STACK_MEMO 64
static __thread struct {
  uint64_t hash;
  uint32_t id;
  unsigned state;
} stack_memo[STACK_MEMO] __attribute__((tls_model("initial-exec")));

/* The id of stack frames[0..n) under state s: 0, HS_ENOMEM or
 * HS_ENOTTRACING. hot path. */
static int intern_hashed(unsigned s, const uintptr_t *frames, int n,
                         uint32_t *id) {
  int is_new = 0, rc = 0;
  uint64_t h = hs__stack_hash(frames, n);
  __typeof__(stack_memo[0]) *m = &stack_memo[h & (STACK_MEMO - 1)];
  if (m->hash == h && m->state == s) {
    *id = m->id;
    return 0;
  }
  if ((rc = hs__stack_intern_hashed(frames, n, h, s, id, &is_new)) != 0)
    return rc;
  m->hash = h;
  m->id = *id;
  m->state = s;
  if (is_new) {
    void (*hook)(const uintptr_t *, int) = atomic_load(&new_stack_hook);
    if (hook)
      hook(frames, n);
  }
  return 0;
}

/* The id of frames[0..n), from cell when it has one for state s. */
static int intern(unsigned s, const uintptr_t *frames, int n, uint32_t *id,
                  hs_stack_memo_t *cell) {
  if (cell && cell->state == s) {
    *id = cell->id;
    return 0;
  }
  int rc = intern_hashed(s, frames, n, id);
  if (rc == 0 && cell) {
    cell->id = *id;
    cell->state = s;
  }
  return rc;
}

int hs__record_frames(unsigned s, unsigned domain, uintptr_t ptr, size_t size,
                      const uintptr_t *frames, int n, hs_stack_memo_t *cell) {
  uint32_t id;
  int rc = intern(s, frames, n, &id, cell);
  if (rc == 0 && !(domain == 0 && hs__defer_alloc(ptr, size, id, s)))
    rc = hs__traces_insert(domain, ptr, size, id, s);
  if (rc == HS_ENOMEM)
    hs__count_drop(size);
  else if (domain == 0)
    note_alloc(ptr);
  return rc;
}

int hs__nframe_now(void) {
  return atomic_load_explicit(&nframe_active, memory_order_relaxed);
}

/* Records a block for (domain, ptr) with the stack above caller_ret.
 * hot path: no global lock; allocates only for a new stack or a growing
 * table, and then from the real allocator (the guard is held). */
static int record(unsigned domain, uintptr_t ptr, size_t size,
                  uintptr_t caller_ret) {
  unsigned s = hs__state_now();
  if (!hs__state_tracing(s))
    return HS_ENOTTRACING;
  if (domain == 0)
    hs__prefetch_for_insert(ptr);
  uintptr_t frames[HS_MAX_FRAMES];
  hs_stack_memo_t *cell;
  int n = hs__unwind_capture_memo(frames, hs__nframe_now(), caller_ret, &cell,
                                  s);
  return hs__record_frames(s, domain, ptr, size, frames, n, cell);
}

void hs__record_alloc(void *ptr, size_t size, uintptr_t caller_ret) {
  (void)record(0, (uintptr_t)ptr, size, caller_ret);
}

void hs__record_free(void *ptr) {
  unsigned flags = free_flags((uintptr_t)ptr);
  if (!hs__defer_free((uintptr_t)ptr, flags))
    (void)hs__traces_remove_at(0, (uintptr_t)ptr, NULL, NULL,
                               hs__stamp_now(), flags);
}

void *hs__realloc_deferred(void *old, size_t size, uintptr_t caller,
                           void *(*real_realloc)(void *, size_t)) {
  int saved = errno;
  unsigned s = hs__state_now();
  uint32_t id = 0;
  int have = 0, drop = 0;
  if (hs__state_tracing(s)) {
    uintptr_t frames[HS_MAX_FRAMES];
    hs_stack_memo_t *cell;
    int n =
        hs__unwind_capture_memo(frames, hs__nframe_now(), caller, &cell, s);
    int rc = intern(s, frames, n, &id, cell);
    have = rc == 0;
    drop = rc == HS_ENOMEM;
  }
  uint64_t ticket =
      old ? hs__defer_realloc_free((uintptr_t)old, free_flags((uintptr_t)old))
          : 0;
  int queued = ticket != 0;
  size_t old_size = 0;
  uint32_t old_stack = 0;
  int had = 0;
  if (old && !queued)
    had = hs__traces_remove(0, (uintptr_t)old, &old_size, &old_stack);
  errno = saved;
  void *p = real_realloc(old, size);
  saved = errno;
  /* glibc's realloc(old, 0) frees old and returns NULL; any other NULL is
   * a failure that leaves old allocated. */
  if (!p && size != 0 && old) {
    if (queued)
      hs__defer_realloc_failed((uintptr_t)old, ticket);
    else if (had)
      (void)hs__traces_insert(0, (uintptr_t)old, old_size, old_stack, s);
  }
  if (p && (drop || (have && !hs__defer_alloc((uintptr_t)p, size, id, s) &&
                      hs__traces_insert(0, (uintptr_t)p, size, id, s) ==
                          HS_ENOMEM)))
    hs__count_drop(size);
  else if (p && have)
    note_alloc((uintptr_t)p);
  errno = saved;
  return p;
}

/* Every start, stop and clear takes each table lock, so no hook is
 * between its state check and its write while the state changes. */
static void lock_tables(void) {
  hs__stacks_lock_all();
  hs__traces_lock_all();
}
static void unlock_tables(void) {
  hs__traces_unlock_all();
  hs__stacks_unlock_all();
}
static void set_state(int tracing, int clear) {
  hs__defer_drain();
  lock_tables();
  unsigned gen = (hs__state_now() >> 1) + 1;
  if (clear) {
    hs__traces_clear_locked();
    hs__stacks_clear_locked();
  }
  atomic_store_explicit(&hs__state, (gen << 1) | (tracing ? 1u : 0u),
                        memory_order_release);
  fast_refresh();
  unlock_tables();
}

int hs_start(int nframe) {
  if (nframe < 1 || nframe > HS_MAX_FRAMES)
    return HS_EINVAL;
  hs__guard_enter();
  pthread_mutex_lock(&control_mu);
  if (!hs__state_tracing(hs__state_now())) {
    hs__unwind_warm_up();
    hs__clock_calibrate();
    nframe_limit = nframe;
    atomic_store_explicit(&nframe_active, nframe, memory_order_relaxed);
    atomic_store(&dropped_traces, 0);
    atomic_store(&dropped_bytes, 0);
    seed_in_force = next_seed;
    if (!seed_in_force) {
      struct timespec ts;
      clock_gettime(CLOCK_MONOTONIC, &ts);
      seed_in_force = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^
                      (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)&ts;
    }
    atomic_store(&thread_seq, 0);
    atomic_fetch_add(&seed_gen, 1);
    atomic_store(&hs__sample_rate, next_rate);
    hs__defer_start(next_rate != 0);
    lock_tables();
    hs__traces_set_filter_locked(next_rate != 0);
    unlock_tables();
    set_state(1, 0);
  }
  pthread_mutex_unlock(&control_mu);
  hs__guard_exit();
  /* This thread's next allocation draws from the new seed's stream (other
   * threads finish the gap they are in first, which is as random). */
  hs__sample_left = 0;
  return 0;
}

void hs_stop(void) {
  hs__guard_enter();
  pthread_mutex_lock(&control_mu);
  if (hs__state_tracing(hs__state_now()))
    set_state(0, 1);
  pthread_mutex_unlock(&control_mu);
  hs__guard_exit();
}

int hs_is_tracing(void) { return hs__state_tracing(hs__state_now()); }

void hs_clear_traces(void) {
  hs__guard_enter();
  pthread_mutex_lock(&control_mu);
  if (hs__state_tracing(hs__state_now()))
    set_state(1, 1);
  pthread_mutex_unlock(&control_mu);
  hs__guard_exit();
}

int hs_get_traceback_limit(void) {
  pthread_mutex_lock(&control_mu);
  int n = nframe_limit;
  pthread_mutex_unlock(&control_mu);
  return n;
}

void hs_get_traced_memory(size_t *current, size_t *peak) {
  size_t c = 0, p = 0;
  if (hs_is_tracing())
    hs__traces_totals(&c, &p);
  if (current)
    *current = c;
  if (peak)
    *peak = p;
}

void hs_reset_peak(void) {
  if (hs_is_tracing())
    hs__traces_reset_peak();
}

size_t hs_get_tracer_memory(void) {
  size_t n = 0;
  for (int k = 0; k < HS_MEM_KINDS; k++)
    n += hs__mem_used((enum hs_mem_kind)k);
  return n;
}

int hs_get_stats(hs_stats_t *out, size_t size) {
  size_t c = 0, p = 0;
  if (!out || size < sizeof(size_t))
    return HS_EINVAL;
  hs_stats_t st = {0};
  if (hs_is_tracing())
    hs__traces_totals(&c, &p);
  st.traced_current = c;
  st.traced_peak = p;
  st.live_traces = hs__traces_count();
  st.stacks = hs__stack_count();
  st.tracer_memory = hs_get_tracer_memory();
  st.trace_table_bytes = hs__mem_used(HS_MEM_TRACES);
  st.stack_table_bytes = hs__mem_used(HS_MEM_STACKS);
  st.dropped_traces = atomic_load(&dropped_traces) + hs__defer_lost_in_fork();
  st.dropped_bytes = atomic_load(&dropped_bytes);
  st.alloc_calls = hs__traces_inserts();
  st.event_ring_bytes = hs__defer_ring_bytes();
  st.truncated_stacks = atomic_load_explicit(&hs__unwind_truncated,
                                             memory_order_relaxed);
  return hs__fill_versioned(out, size, &st, sizeof st);
}

int hs_get_object_traceback(const void *ptr, uintptr_t *frames, int max) {
  if (!frames || max < 1)
    return HS_EINVAL;
  if (!hs_is_tracing())
    return HS_ENOTTRACING;
  uint32_t id;
  hs__guard_enter();
  int n = HS_ENOTFOUND;
  if (hs__traces_lookup(0, (uintptr_t)ptr, NULL, &id)) {
    n = hs__stack_get(id, frames, max);
    if (n < 0)
      n = HS_ENOTFOUND; /* cleared between the two look-ups */
    else if (n > max)
      n = max;
  }
  hs__guard_exit();
  return n;
}

int hs_track(unsigned int domain, uintptr_t ptr, size_t size) {
  hs__guard_enter();
  int rc = record(domain, ptr, size, (uintptr_t)__builtin_return_address(0));
  hs__guard_exit();
  return rc;
}

int hs_untrack(unsigned int domain, uintptr_t ptr) {
  if (!hs_is_tracing())
    return HS_ENOTTRACING;
  hs__guard_enter();
  (void)hs__traces_remove(domain, ptr, NULL, NULL);
  hs__guard_exit();
  return 0;
}

/* The fork table's entries (lib/runtime/forks.c) for control_mu and the
 * table locks. In the child only the forking thread exists, so whatever
 * the others held is free: reset, never unlocked by a non-owner. */
void hs__control_fork_prepare(void) { pthread_mutex_lock(&control_mu); }
void hs__control_fork_parent(void) { pthread_mutex_unlock(&control_mu); }
void hs__control_fork_child(void) { pthread_mutex_init(&control_mu, NULL); }

void hs__tables_fork_prepare(void) { lock_tables(); }
void hs__tables_fork_parent(void) { unlock_tables(); }
void hs__tables_fork_child(void) {
  hs__traces_reset_locks();
  hs__stacks_reset_locks();
}
