/* defer.c - deferred updates of the heap-trace table: allocating threads put
 * each allocation and free into one ring, in the order the allocator served
 * them, and the thread that finds the ring full (or whoever next needs the
 * table, or on request a background applier thread) applies them, many at a
 * time, with the table's cache misses overlapped.
 *
 * Why a single ring: a free must reach the table after the allocation of
 * the same block and before the next allocation at that address, whichever
 * threads made them. One sequence counter gives that order for free - the
 * allocation takes its number before the block is handed out, the free
 * before the block goes back - and the table sees events in number order.
 * A thread only waits when the ring is full, and then it applies events
 * itself, so nothing depends on an applier thread being scheduled. The
 * applier (HEAPSNAP_DEFER=2, the default, given a second CPU) takes the
 * table's work off a program that leaves a CPU idle; a program that keeps
 * every CPU busy does better with HEAPSNAP_DEFER=1 (BENCHMARKS.md). */
#define _GNU_SOURCE /* sched_getaffinity */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#if defined(SYS_membarrier)
#include <linux/membarrier.h> /* its commands are enum constants */
#endif

#include "trace.h"

#define RING_BITS 16
#define RING_SIZE (1u << RING_BITS)
#define RING_MASK (RING_SIZE - 1)
/* The low bits of the pointer word (heap blocks are 16-byte aligned): the
 * event's kind, and the parity of the ring's lap it was written in - a slot
 * holds the event numbered t once it is marked written with t's lap bit,
 * so the applier never writes to the ring and its lines only travel one
 * way. The ring stays mapped once made (1 MiB, counted as tracer memory):
 * a thread that saw tracing on may still be writing into it after a stop. */
#define EV_FREE 1u
#define EV_NOP 2u
#define EV_WRITTEN 4u /* a zeroed slot is unwritten in every lap */
#define EV_LAP 8u
#define EV_BITS 15u
/* The pointer's bits of the word: above them an allocation carries the low
 * 17 bits of its stamp (heap blocks lie under 2^47), the top 8 ride in its
 * meta word; a free's stamp and flags are its meta word. */
#define EV_PTR 0x00007FFFFFFFFFF0ull
#define GEN_BITS 8
#define GEN_MASK ((1u << GEN_BITS) - 1)
/* How far ahead of the event being applied its table slot is prefetched. */
#define PREFETCH_AHEAD 12
/* And how far ahead the ring's own lines (four events each) are. */
#define RING_PREFETCH_AHEAD 64
/* Events applied per hold of the drain lock by the background thread, so
 * that a snapshot waiting for it is not kept out long. */
#define BATCH 4096

typedef struct {
  _Atomic uintptr_t word; /* stamp bits 0-16 << 47 | pointer | kind | lap */
  uint64_t meta;          /* allocation: size << 40 | stamp bits 17-24 << 32 |
                             generation << 24 | stack id; free: stamp << 8 |
                             HS_FREE_* << 1 | META_STASH */
} ev_t;
_Static_assert(sizeof(ev_t) == 16, "an event is 16 bytes");

static ev_t *ring;
int hs__defer_on;
static struct {
  _Alignas(HS_CACHELINE) _Atomic uint64_t head; /* next number to hand out */
  _Atomic unsigned solo_busy; /* the solo thread is numbering (see solo) */
  _Alignas(HS_CACHELINE) _Atomic uint64_t tail; /* next number to apply */
  _Alignas(HS_CACHELINE) pthread_mutex_t mu;    /* held by whoever applies */
} q = {.mu = PTHREAD_MUTEX_INITIALIZER};
/* The tail this thread last saw: while the ring has room by that stale
 * value it has room by the real one, and the shared line stays unread. */
static __thread uint64_t tail_seen __attribute__((tls_model("initial-exec")));
/* HEAPSNAP_DEFER: 0 immediate updates, 1 the ring applied by the
 * allocating threads a batch at a time, 2 the ring with an applier thread.
 * Written before tracing starts. */
static int want = 2;
static int thread_started; /* protected by the caller's control lock */
static int solo_offered;   /* protected by the caller's control lock */
static atomic_uint_least64_t lost_in_fork;

void hs__defer_configure(int on) { want = on; }

/* The lap bit that event number t is written with (the first lap's is 1,
 * so the zeroed ring reads as unwritten). */
static inline uintptr_t lap_of(uint64_t t) {
  return ((t >> RING_BITS) & 1) ? 0 : EV_LAP;
}

static inline int written(uintptr_t w, uint64_t t) {
  return (w & EV_WRITTEN) && (w & EV_LAP) == lap_of(t);
}

/* realloc's old block leaves the table before the real call (once the call
 * has freed it, another thread may be given its address), and comes back
 * if the call fails: its trace waits meanwhile in a small stash, kept by
 * the applier and indexed by the free event's number, which the failure
 * event names. A trace whose stash entry was reused before the failure was
 * reported is counted as dropped. */
#define META_STASH 1u   /* a free's: keep the trace aside */
#define META_RESTORE 2u /* a no-op's: + the free event's number */
#define EV_SIZE_BITS 24 /* larger allocations are applied at once */
#define STASH 64
static struct {
  uint64_t seq; /* the free event's number + 1; 0 = empty */
  uintptr_t ptr;
  size_t size;
  uint32_t stack;
  unsigned state;
  int traced;
} stash[STASH]; /* protected by q.mu */

static void stash_put(uint64_t t, uintptr_t ptr, int traced, size_t size,
                      uint32_t stack) {
  __typeof__(stash[0]) *e = &stash[t % STASH];
  e->seq = t + 1;
  e->ptr = ptr;
  e->traced = traced;
  e->size = size;
  e->stack = stack;
  e->state = hs__state_now();
}

static void restore(uintptr_t ptr, uint64_t f) {
  __typeof__(stash[0]) *e = &stash[f % STASH];
  if (e->seq != f + 1 || e->ptr != ptr) {
    hs__count_drop(0);
    return;
  }
  e->seq = 0;
  unsigned s = hs__state_now();
  /* Not across a start, stop or clear: the block predates it. */
  if (e->traced && e->state == s && hs__state_tracing(s) &&
      hs__traces_insert_now(0, ptr, e->size, e->stack, s) == HS_ENOMEM)
    hs__count_drop(e->size);
}

HS_HIDDEN int hs__traces_insert_now_at(unsigned domain, uintptr_t ptr,
                                       size_t size, uint32_t stack,
                                       unsigned s, uint32_t stamp);
HS_HIDDEN int hs__traces_remove_now_at(unsigned domain, uintptr_t ptr,
                                       size_t *size, uint32_t *stack,
                                       uint32_t stamp, unsigned flags);

/* Applies event number t; the drain lock is held. */
static void apply_one(uint64_t t, uintptr_t word, uint64_t meta) {
  uintptr_t ptr = word & (uintptr_t)EV_PTR;
  if (word & EV_NOP) {
    if (meta >= META_RESTORE)
      restore(ptr, meta - META_RESTORE);
    return;
  }
  if (word & EV_FREE) {
    size_t size = 0;
    uint32_t stack = 0;
    int had = hs__traces_remove_now_at(0, ptr, &size, &stack,
                                       (uint32_t)(meta >> 8) & HS_STAMP_MASK,
                                       (unsigned)(meta >> 1) & 0x7fu);
    if (meta & META_STASH)
      stash_put(t, ptr, had, size, stack);
    return;
  }
  unsigned s = hs__state_now();
  /* An allocation recorded before a stop, clear or restart belongs to a
   * table (and stack ids) that no longer exist. */
  if (!hs__state_tracing(s) ||
      ((s >> 1) & GEN_MASK) != ((meta >> 24) & GEN_MASK))
    return;
  size_t size = (size_t)(meta >> 40);
  uint32_t stamp = (uint32_t)(word >> 47) | (uint32_t)((meta >> 32) & 0xFF) << 17;
  if (hs__traces_insert_now_at(0, ptr, size, (uint32_t)(meta & 0xFFFFFFu), s,
                               stamp) == HS_ENOMEM)
    hs__count_drop(size);
}

/* Waiting for another thread: spin briefly, then yield, then sleep, so
 * that a long wait (a realloc of a huge block holds its numbers across the
 * real call) leaves the CPU to the thread being waited for. */
static void backoff(unsigned spins) {
  if (spins < 64) {
    __builtin_ia32_pause();
  } else if (spins < 128) {
    sched_yield();
  } else {
    struct timespec ts = {0, 20000};
    nanosleep(&ts, NULL);
  }
}

/* Says that the events before t are applied, in the middle of a batch:
 * the totals first, so that a reader who sees the tail and skips draining
 * sees them too. */
static void say_applied(uint64_t t) {
  hs__traces_batch_flush();
  atomic_store_explicit(&q.tail, t, memory_order_release);
}

/* Applies events in order up to upto, or up to the first one not yet
 * published unless wait; returns how many. The drain lock is held. */
static uint64_t apply(uint64_t upto, int wait) {
  uint64_t t = atomic_load_explicit(&q.tail, memory_order_relaxed);
  uint64_t start = t;
  unsigned spins = 0;
  if (t >= upto)
    return 0;
  /* Every table lock once for the batch, not once per event: a thread
   * waited for below is between numbering and writing its event, where it
   * takes no table lock. */
  hs__traces_batch_begin();
  while (t < upto) {
    ev_t *e = &ring[t & RING_MASK];
    uintptr_t w = atomic_load_explicit(&e->word, memory_order_acquire);
    if (!written(w, t)) {
      /* Numbered but not yet written: its thread is between the two. */
      if (!wait)
        break;
      /* Its thread may be waiting for room that this drain has made: say
       * so before waiting for it. */
      say_applied(t);
      backoff(++spins);
      continue;
    }
    /* The ring's lines come from the CPU that wrote them: ask for them
     * well before their table slots are. */
    if (!(t & 3) && t + RING_PREFETCH_AHEAD < upto)
      __builtin_prefetch(&ring[(t + RING_PREFETCH_AHEAD) & RING_MASK], 0);
    if (t + PREFETCH_AHEAD < upto) {
      uint64_t a = t + PREFETCH_AHEAD;
      uintptr_t ahead = atomic_load_explicit(&ring[a & RING_MASK].word,
                                             memory_order_relaxed);
      if (written(ahead, a) && !(ahead & EV_NOP))
        hs__traces_prefetch(ahead & (uintptr_t)EV_PTR);
    }
    apply_one(t, w, e->meta);
    t++;
    if (!(t & 255))
      say_applied(t);
  }
  hs__traces_batch_end();
  atomic_store_explicit(&q.tail, t, memory_order_release);
  return t - start;
}

void hs__defer_drain(void) {
  if (!__atomic_load_n(&ring, __ATOMIC_ACQUIRE))
    return;
  uint64_t upto = atomic_load_explicit(&q.head, memory_order_acquire);
  if (atomic_load_explicit(&q.tail, memory_order_acquire) >= upto)
    return;
  hs__guard_enter();
  pthread_mutex_lock(&q.mu);
  (void)apply(upto, 1);
  pthread_mutex_unlock(&q.mu);
  hs__guard_exit();
}

/* Numbering without a locked instruction. While one thread is the only
 * one that has queued events (a single-threaded program, CPython without
 * threads), that thread takes its numbers with an unlocked xadd: one
 * instruction, so a signal handler that allocates in the middle of it
 * cannot split it, and no lock prefix, whose draining of the store buffer
 * cost the program thread a tenth of its traced time on CPython. The first
 * other thread that needs a number ends solo mode for good: it marks it
 * ending, then runs an expedited membarrier, after which the solo thread
 * either sees the mark at its next numbering or has its solo_busy
 * visible, waits for solo_busy to drop, and only then marks it off and
 * takes its own number.
 * (The asymmetric form of a store-load fence: the cost falls once on the
 * thread that ends solo mode, not on every event.) */
enum { SOLO_OFF, SOLO_FREE, SOLO_TAKEN, SOLO_ENDING };
static _Atomic int solo = SOLO_OFF;
static __thread int solo_me __attribute__((tls_model("initial-exec")));
static pthread_mutex_t solo_mu = PTHREAD_MUTEX_INITIALIZER;

/* 1 when the kernel did it. */
static int membarrier_do(int cmd) {
#if defined(SYS_membarrier)
  return syscall(SYS_membarrier, cmd, 0, 0) == 0;
#else
  (void)cmd;
  return 0;
#endif
}
#if !defined(SYS_membarrier)
#define MEMBARRIER_CMD_PRIVATE_EXPEDITED 0
#define MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED 0
#endif

/* Solo numbering is x86-64 only (elsewhere an unlocked read-modify-write
 * is not one instruction), and not under ThreadSanitizer, which cannot see
 * the asm and should check the locked protocol. */
#if defined(__x86_64__) && !defined(HS_TSAN)
#define SOLO_POSSIBLE 1
static inline uint64_t xadd_unlocked(_Atomic uint64_t *p, uint64_t k) {
  __asm__ volatile("xaddq %0, %1" : "+r"(k), "+m"(*(uint64_t *)p)::"memory");
  return k;
}
#else
#define SOLO_POSSIBLE 0
static inline uint64_t xadd_unlocked(_Atomic uint64_t *p, uint64_t k) {
  return atomic_fetch_add_explicit(p, k, memory_order_relaxed);
}
#endif

/* Not the solo thread: claims solo mode when it is free, ends it when
 * another thread holds it. Returns 1 if this thread may number alone.
 * Until the solo thread is known to be done with unlocked numbering the
 * state reads ENDING, not OFF: a third thread that sees it takes the lock
 * and so waits for the hand-over, where with OFF it would take a locked
 * number at once, possibly the same as the solo thread's last one. */
static __attribute__((noinline)) int solo_slow(void) {
  int m = atomic_load_explicit(&solo, memory_order_acquire);
  if (m == SOLO_OFF)
    return 0;
  pthread_mutex_lock(&solo_mu);
  m = atomic_load_explicit(&solo, memory_order_relaxed);
  if (m == SOLO_FREE) {
    atomic_store_explicit(&solo, SOLO_TAKEN, memory_order_relaxed);
    solo_me = 1;
  } else if (m == SOLO_TAKEN) {
    atomic_store_explicit(&solo, SOLO_ENDING, memory_order_seq_cst);
    /* Registered when solo mode was offered, so this cannot fail but
     * for a kernel that changed its mind; then the solo thread's next
     * numbering may still be unlocked, and a wait of a scheduling
     * quantum covers the few instructions of it. */
    if (!membarrier_do(MEMBARRIER_CMD_PRIVATE_EXPEDITED))
      usleep(20000);
    for (unsigned spins = 0;
         atomic_load_explicit(&q.solo_busy, memory_order_acquire); spins++)
      backoff(spins);
    atomic_store_explicit(&solo, SOLO_OFF, memory_order_release);
  }
  pthread_mutex_unlock(&solo_mu);
  return solo_me;
}

/* Waits until the ring has room for events s..s+k, applying events
 * meanwhile. */
static __attribute__((noinline)) void wait_for_room(uint64_t s, unsigned k) {
  for (unsigned spins = 0;; spins++) {
    tail_seen = atomic_load_explicit(&q.tail, memory_order_acquire);
    if (s + k <= tail_seen + RING_SIZE)
      return;
    /* Full: apply what is there rather than wait for the background
     * thread. Only numbers below s are applied, and each of those belongs
     * to a thread that writes its event without waiting, or that is here
     * and needs no more room than the ring had for it. */
    if (pthread_mutex_trylock(&q.mu) == 0) {
      /* Up to our own number (head is past it), a batch at a time: the
       * host's call that pays for it stalls for a few hundred
       * microseconds, not milliseconds. */
      uint64_t t = atomic_load_explicit(&q.tail, memory_order_relaxed);
      (void)apply(s < t + BATCH ? s : t + BATCH, 0);
      pthread_mutex_unlock(&q.mu);
    } else {
      backoff(spins);
    }
  }
}

/* Only the solo thread writes solo_busy, so a plain increment will do, and
 * a signal handler's increment and decrement cancel. */
static inline void solo_busy_add(int d, memory_order mo) {
  atomic_store_explicit(
      &q.solo_busy,
      atomic_load_explicit(&q.solo_busy, memory_order_relaxed) + (unsigned)d,
      mo);
}

/* Numbers for k events, once the ring has room for them. hot path: one
 * xadd, unlocked when solo. */
static inline uint64_t reserve(unsigned k) {
  uint64_t s = 0;
  int alone = 0;
  if (HS_LIKELY(solo_me) || (SOLO_POSSIBLE && solo_slow())) {
    solo_busy_add(1, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst);
    alone = atomic_load_explicit(&solo, memory_order_relaxed) == SOLO_TAKEN;
    if (HS_LIKELY(alone))
      s = xadd_unlocked(&q.head, k);
    solo_busy_add(-1, memory_order_release);
    solo_me = alone;
  }
  if (!alone)
    s = atomic_fetch_add_explicit(&q.head, k, memory_order_relaxed);
  if (HS_UNLIKELY(s + k > tail_seen + RING_SIZE))
    wait_for_room(s, k);
  return s;
}

static inline void publish(uint64_t s, uintptr_t word, uint64_t meta) {
  ev_t *e = &ring[s & RING_MASK];
  e->meta = meta;
  atomic_store_explicit(&e->word, word | EV_WRITTEN | lap_of(s),
                        memory_order_release);
}

int hs__defer_alloc(uintptr_t ptr, size_t size, uint32_t stack, unsigned s) {
  if (!hs__deferring() || (ptr & ~(uintptr_t)EV_PTR) || ptr == 0 ||
      size >> EV_SIZE_BITS)
    return 0;
  uint32_t stamp = hs__stamp_now();
  uint64_t meta = (uint64_t)size << 40 | (uint64_t)(stamp >> 17) << 32 |
                  (uint64_t)((s >> 1) & GEN_MASK) << 24 | stack;
  ptr |= (uintptr_t)(stamp & 0x1FFFFu) << 47;
  uint64_t t = reserve(1);
  /* The event carries 8 bits of the generation; checking the whole state
   * once the number is taken leaves only a few instructions in which 256
   * state changes could pass unseen. (A number taken before a drain is
   * applied by that drain, before the change.) */
  if (hs__state_now() == s)
    publish(t, ptr, meta);
  else
    publish(t, EV_NOP, 0);
  return 1;
}

static inline uint64_t free_meta(unsigned flags) {
  return (uint64_t)hs__stamp_now() << 8 | (uint64_t)flags << 1;
}

int hs__defer_free(uintptr_t ptr, unsigned flags) {
  if (!hs__deferring() || (ptr & ~(uintptr_t)EV_PTR) || ptr == 0)
    return 0;
  publish(reserve(1), ptr | EV_FREE, free_meta(flags));
  return 1;
}

uint64_t hs__defer_realloc_free(uintptr_t old, unsigned flags) {
  if (!hs__deferring() || (old & ~(uintptr_t)EV_PTR) || old == 0)
    return 0;
  uint64_t t = reserve(1);
  publish(t, old | EV_FREE, free_meta(flags) | META_STASH);
  return t + 1;
}

void hs__defer_realloc_failed(uintptr_t old, uint64_t ticket) {
  publish(reserve(1), old | EV_NOP, META_RESTORE + (ticket - 1));
}

/* The background applier: never traced, no signals. It lets events pile
 * up before applying them, so that it does not read ring lines the
 * allocating threads are still writing, and sleeps when there are few. */
/* Each nap is sized to collect about a batch at the rate events arrived
 * during the last one: a nap is a system call and two context switches,
 * and waking every 50 us on a busy program cost a twentieth of tracing's
 * CPU time (on the no-frame-pointer C benchmark). While events come
 * slower than a batch per NAP_MAX the applier takes what there is. */
#define NAP_MIN_US 20
#define NAP_MAX_US 2000
static void *applier(void *arg) {
  (void)arg;
  hs__guard_enter();
  long nap_us = 50;
  for (;;) {
    uint64_t head = atomic_load_explicit(&q.head, memory_order_acquire);
    uint64_t tail = atomic_load_explicit(&q.tail, memory_order_acquire);
    uint64_t pending = head - tail;
    if (pending >= BATCH || (pending && nap_us >= NAP_MAX_US)) {
      uint64_t upto = pending > BATCH ? tail + BATCH : head;
      pthread_mutex_lock(&q.mu);
      uint64_t n = apply(upto, 0);
      pthread_mutex_unlock(&q.mu);
      if (n && pending - n >= BATCH)
        continue; /* more than a batch waits: no nap */
    }
    struct timespec ts = {0, nap_us * 1000};
    nanosleep(&ts, NULL);
    uint64_t came =
        atomic_load_explicit(&q.head, memory_order_acquire) - head;
    /* came events in nap_us: a batch takes nap_us * BATCH / came. */
    long next = came ? (long)((uint64_t)nap_us * BATCH / came) : nap_us * 2;
    nap_us = next < NAP_MIN_US ? NAP_MIN_US
             : next > NAP_MAX_US ? NAP_MAX_US
                                 : next;
  }
  return NULL;
}

/* A second CPU to run the applier on; without one the allocating threads
 * apply events themselves, a ring at a time. */
static int cpus_available(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0)
    return 1;
  return CPU_COUNT(&set);
}

void hs__defer_start(int sampling) {
  /* Sampling's filter is kept by the table in allocation order, and a
   * free must see it at once: sampled tracing stays immediate. */
  if (!want || sampling) {
    hs__defer_drain();
    __atomic_store_n(&hs__defer_on, 0, __ATOMIC_RELAXED);
    return;
  }
  if (!ring) {
    ev_t *r = hs__mem_calloc_big(HS_MEM_OTHER, RING_SIZE, sizeof *ring);
    if (!r)
      return; /* immediate mode: slower, nothing lost */
    __atomic_store_n(&ring, r, __ATOMIC_RELEASE);
  }
  if (SOLO_POSSIBLE && !solo_offered) {
    solo_offered = 1;
    if (membarrier_do(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED))
      atomic_store(&solo, SOLO_FREE);
  }
  if (!thread_started && want == 2 && cpus_available() >= 2 &&
      hs__thread_start(NULL, applier, 64 * 1024, 1) == 0)
    thread_started = 1;
  __atomic_store_n(&hs__defer_on, 1, __ATOMIC_RELEASE);
}

size_t hs__defer_ring_bytes(void) {
  return ring ? RING_SIZE * sizeof *ring : 0;
}

int hs__defer_solo_state(void) { return atomic_load(&solo); }

int hs__defer_solo_mine(void) { return solo_me; }

uint64_t hs__defer_lost_in_fork(void) { return atomic_load(&lost_in_fork); }

void hs__defer_fork_prepare(void) { pthread_mutex_lock(&q.mu); }

void hs__defer_fork_parent(void) { pthread_mutex_unlock(&q.mu); }

void hs__defer_fork_child(void) {
  pthread_mutex_init(&q.mu, NULL);
  pthread_mutex_init(&solo_mu, NULL);
  thread_started = 0; /* threads do not survive fork */
  tail_seen = 0;
  /* The one thread left numbers alone, whichever thread did before; the
   * child is a new process, which registers for membarrier anew. */
  atomic_store(&q.solo_busy, 0);
  solo_me = 0;
  if (solo_offered)
    atomic_store(&solo,
                 membarrier_do(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED)
                     ? SOLO_FREE
                     : SOLO_OFF);
  if (!ring)
    return;
  /* Events numbered by threads that are gone will never be written:
   * apply the written ones and count the others as lost. Guarded: a table
   * that grows here allocates, and that must not become an event. */
  hs__guard_enter();
  uint64_t head = atomic_load(&q.head);
  for (uint64_t t = atomic_load(&q.tail); t < head; t++) {
    ev_t *e = &ring[t & RING_MASK];
    uintptr_t w = atomic_load_explicit(&e->word, memory_order_acquire);
    if (written(w, t)) {
      apply_one(t, w, e->meta);
    } else {
      /* Zeroed, or its stale content would look written a lap later. */
      atomic_store_explicit(&e->word, 0, memory_order_relaxed);
      atomic_fetch_add(&lost_in_fork, 1);
    }
  }
  atomic_store(&q.tail, head);
  hs__guard_exit();
}
