/* traces.c - the live-trace tables and the traced totals.
 *
 * Heap blocks (domain 0) live in 64 shards of 16-byte slots: the pointer,
 * and the requested size (36 bits) packed with the stack id (24 bits), with
 * the allocation's 25-bit stamp in the bits those leave (the pointer's low
 * 4, 16-byte aligned, and high 17, under 2^47; the size word's top 4). That
 * keeps the cost per live block under 48 bytes at the worst load (3/8 after
 * a doubling of hashed slots, 7/16 of slots placed by address). Traces that
 * do not fit - other domains, a NULL pointer, a size of 1 TiB or more - go
 * to one small "wide" table with its own lock; it is empty in most
 * programs, and the hot path checks that with one load.
 * Deletion shifts later entries back (linear probing), so there are no
 * tombstones and lookups stay short. */
#include <string.h>

#include "trace.h"

#define TRACE_SHARD_BITS 6
#define TRACE_SHARDS (1u << TRACE_SHARD_BITS)
#define SIZE_BITS 36
#define STACK_MASK ((1u << HS_STACK_ID_BITS) - 1)
#define PTR_MASK 0x00007FFFFFFFFFF0ull

typedef struct slot {
  uintptr_t ptr;  /* pointer | stamp bits 0-3 | stamp bits 4-20 << 47;
                     0 = empty */
  uint64_t meta;  /* stamp bits 21-24 << 60 | size << HS_STACK_ID_BITS |
                     stack id */
} slot_t;
_Static_assert(sizeof(slot_t) == 16, "a heap trace is 16 bytes");
_Static_assert(HS_STAMP_BITS == 25, "the slot has 25 spare bits");

static inline uintptr_t sptr(const slot_t *e) { return e->ptr & PTR_MASK; }
static inline size_t ssize(const slot_t *e) {
  return (size_t)((e->meta >> HS_STACK_ID_BITS) & ((1ull << SIZE_BITS) - 1));
}
static inline uint32_t sstack(const slot_t *e) {
  return (uint32_t)(e->meta & STACK_MASK);
}
static inline uint32_t sstamp(const slot_t *e) {
  return (uint32_t)((e->ptr & 15) | ((e->ptr >> 47) << 4) |
                    ((e->meta >> 60) << 21));
}
static inline void sset(slot_t *e, uintptr_t ptr, size_t size, uint32_t stack,
                        uint32_t stamp) {
  e->ptr = ptr | (stamp & 15) | (uint64_t)((stamp >> 4) & 0x1FFFF) << 47;
  e->meta = (uint64_t)size << HS_STACK_ID_BITS | stack |
            (uint64_t)(stamp >> 21) << 60;
}

typedef struct trace_shard {
  hs_lock_t lock;
  uint32_t mask;  /* protected by lock */
  uint32_t count; /* protected by lock */
  slot_t *slots;  /* protected by lock */
  uint64_t inserts; /* traces recorded since the last clear; by lock */
  int hashed;       /* slots placed by hash, not address; by lock */
  uint64_t probes;  /* probe runs of the window's inserts; by lock */
  uint32_t window;  /* inserts in the window; by lock */
  uint32_t maxrun;  /* no trace sits further than this from home; by lock */
} __attribute__((aligned(HS_CACHELINE))) trace_shard_t;

typedef struct wide {
  uintptr_t ptr;
  uint64_t size;
  uint32_t domain;
  uint32_t stack;
  uint32_t used;
  uint32_t stamp;
} wide_t;

static trace_shard_t shards[TRACE_SHARDS];
static struct {
  hs_lock_t lock;
  uint32_t mask;      /* protected by lock */
  atomic_uint count;  /* written under lock, read without it */
  wide_t *e;          /* protected by lock */
  uint64_t inserts;   /* protected by lock */
} wide;

static atomic_size_t current, peak;

/* Sampling: a counting filter over heap pointers. Most freed blocks were
 * never sampled; a zero counter proves it without a lock or a table probe.
 * A pointer's counter changes, under its shard lock, before the block is
 * handed to the program, so a free (which the program orders after the
 * allocation) never misses one; counters are shared across shards, so
 * the changes are atomic. 256K one-byte counters: with sampling a few
 * thousand blocks are live, so a free is sent to the table by mistake
 * about once in a hundred, and the pages a program never frees into stay
 * unmapped. */
_Atomic uint8_t hs__filter[1u << HS_FILTER_BITS];
int hs__filter_on; /* written with every lock held and no trace live */
static atomic_int filter_dirty; /* a counter may be non-zero */

/* Pointers that free() must never hand to the real allocator on the
 * filter's word: their counters stay saturated, across every clear. */
static _Atomic uintptr_t pins[HS_FILTER_PINS];
static atomic_uint npins;

void hs__filter_pin(uintptr_t p) {
  unsigned i = atomic_fetch_add(&npins, 1);
  if (i < HS_FILTER_PINS)
    atomic_store(&pins[i], p);
  atomic_store(hs__filter_slot(p), UINT8_MAX);
}

void hs__traces_set_filter_locked(int on) {
  /* Atomic stores: a free may be reading the counters. */
  if (atomic_exchange(&filter_dirty, 0))
    for (size_t i = 0; i < (1u << HS_FILTER_BITS); i++)
      atomic_store_explicit(&hs__filter[i], 0, memory_order_relaxed);
  unsigned n = atomic_load(&npins);
  for (unsigned i = 0; i < n && i < HS_FILTER_PINS; i++) {
    uintptr_t p = atomic_load(&pins[i]); /* 0: its pinner sets it */
    if (p)
      atomic_store(hs__filter_slot(p), UINT8_MAX);
  }
  __atomic_store_n(&hs__filter_on, on, __ATOMIC_RELAXED);
}

static inline void filter_add(uintptr_t ptr, int d) {
  if (!__atomic_load_n(&hs__filter_on, __ATOMIC_RELAXED))
    return;
  if (d > 0 && !atomic_load_explicit(&filter_dirty, memory_order_relaxed))
    atomic_store(&filter_dirty, 1);
  _Atomic uint8_t *c = hs__filter_slot(ptr);
  uint8_t v = atomic_load_explicit(c, memory_order_relaxed);
  do {
    if (v == UINT8_MAX)
      return; /* saturated: it can no longer say which are gone */
  } while (!atomic_compare_exchange_weak_explicit(
      c, &v, (uint8_t)(v + d), memory_order_relaxed, memory_order_relaxed));
}

static inline int filter_says_absent(uintptr_t ptr) {
  return __atomic_load_n(&hs__filter_on, __ATOMIC_RELAXED) &&
         atomic_load_explicit(hs__filter_slot(ptr), memory_order_relaxed) == 0;
}

/* Per trigger: the traced size at which fn is called (SIZE_MAX: never),
 * and the growth to the next one (0: one call per arming). Side by side:
 * every allocation checks both with one line. */
static struct {
  atomic_size_t at;
  atomic_size_t step;
  void (*_Atomic fn)(size_t now);
} trig[HS_TRIGGERS] = {{.at = SIZE_MAX}, {.at = SIZE_MAX}};

void hs__traces_set_trigger(int which, size_t at, size_t step,
                            void (*fn)(size_t now)) {
  /* Disarmed while its parts change, so no crossing sees half of each. */
  atomic_store(&trig[which].at, SIZE_MAX);
  atomic_store(&trig[which].fn, fn);
  atomic_store(&trig[which].step, step);
  atomic_store(&trig[which].at, at);
}

static inline uint64_t mix(uintptr_t p, unsigned domain) {
  return hs__ptr_hash((uint64_t)p ^ ((uint64_t)domain << 47));
}

/* A batch of the deferred events' applier: every table lock held once for
 * the batch instead of once per event, and the totals kept here, in the
 * events' order, until the batch ends (see hs__traces_batch_begin). */
static __thread struct {
  int on;
  size_t cur, top; /* the traced size so far, and its highest */
} batch __attribute__((tls_model("initial-exec")));

static inline void tlock(hs_lock_t *l) {
  if (!batch.on)
    hs__lock(l);
}
static inline void tunlock(hs_lock_t *l) {
  if (!batch.on)
    hs__unlock(l);
}

static __attribute__((noinline)) void fire(int which, size_t now) {
  size_t at = atomic_load_explicit(&trig[which].at, memory_order_acquire);
  while (now >= at) {
    /* A stepping trigger re-arms itself here, in the allocating thread, at
     * the crossing: how late the thread it wakes runs cannot move or lose
     * the next crossing. Whoever swaps the threshold reports. */
    size_t step = atomic_load_explicit(&trig[which].step,
                                       memory_order_relaxed);
    size_t next = step && now <= SIZE_MAX - 1 - step ? now + step : SIZE_MAX;
    if (atomic_compare_exchange_weak_explicit(&trig[which].at, &at, next,
                                              memory_order_acq_rel,
                                              memory_order_acquire)) {
      void (*fn)(size_t) = atomic_load(&trig[which].fn);
      if (fn)
        fn(now);
      return;
    }
  }
}

static inline void check_trigger(size_t now) {
  for (int i = 0; i < HS_TRIGGERS; i++)
    if (HS_UNLIKELY(now >= atomic_load_explicit(&trig[i].at,
                                                memory_order_relaxed)))
      fire(i, now);
}

static void raise_peak(size_t now) {
  size_t pk = atomic_load_explicit(&peak, memory_order_relaxed);
  while (now > pk && !atomic_compare_exchange_weak_explicit(
                         &peak, &pk, now, memory_order_relaxed,
                         memory_order_relaxed))
    ;
}

static inline void add_current(size_t size) {
  if (batch.on) {
    batch.cur += size;
    if (batch.cur > batch.top)
      batch.top = batch.cur;
    return;
  }
  size_t now =
      atomic_fetch_add_explicit(&current, size, memory_order_relaxed) + size;
  raise_peak(now);
  check_trigger(now);
}

static inline void sub_current(size_t size) {
  if (batch.on)
    batch.cur -= size;
  else
    atomic_fetch_sub_explicit(&current, size, memory_order_relaxed);
}

/* ---- the heap shards ---- */

/* Where a block's trace lives. Blocks next to each other in the heap get
 * slots next to each other: a program allocates and frees mostly in runs
 * of neighbouring addresses, so consecutive updates share the table's
 * cache lines and pages, where a hashed slot costs a cache miss and a TLB
 * miss each (on CPython building a million dicts, the applier took 0.9 s
 * with hashed slots, and the program waited for it). A shard holds whole
 * 64 MiB regions of the address space, a thread's malloc arena each, so
 * two arenas laid out alike do not pile onto the same slots. A layout that
 * defeats the identity placement (blocks at one offset in every page,
 * which large or page-aligned blocks have) makes long probe runs; the
 * shard then goes over to hashed slots until its next growth, which tries
 * address placement again. */
/* Probes per insert, averaged over a window of inserts, past which a
 * shard hashes its slots. */
#define PROBE_WINDOW 1024
#define PROBE_LIMIT 16

static inline unsigned shard_index(uintptr_t ptr) {
  return (unsigned)(hs__ptr_hash((uint64_t)ptr >> HS_TRACE_REGION_SHIFT) >>
                    (64 - TRACE_SHARD_BITS));
}

static inline trace_shard_t *shard_of(uintptr_t ptr) {
  return &shards[shard_index(ptr)];
}

unsigned hs__traces_shard_index(uintptr_t ptr) { return shard_index(ptr); }

static inline uint32_t home_of(uintptr_t ptr, int hashed, uint32_t mask) {
  return (uint32_t)(hashed ? mix(ptr, 0) : (uint64_t)ptr >> 4) & mask;
}

/* Old slots per step of a move: their pages are given back, and the new
 * table's pages they move to are written in, a step at a time. */
#define MOVE_STEP (1u << 16)

/* Moves the traces of src[from, n) into ns, ncap fresh slots, as hashed
 * says, raising *maxrun to the furthest any lands from home; *done is how
 * many of src's slots are moved. src's pages are given back behind the
 * move, so that a shard of millions of traces (tens of MiB) is not
 * resident twice. With stream, ns is only reserved, and is written in a
 * step ahead of the move: by address into twice the slots, a trace goes
 * from slot i to i or i + n, give or take its run. With a budget, stops
 * (0) once the probe runs add up to more, or one of them passes a quarter
 * of what makes a live shard give up address placement; for linear
 * probing that total does not depend on the order of the inserts, so it
 * is what the shard's searches would pay. Lock held. */
static int place(slot_t *src, uint32_t n, uint32_t from, slot_t *ns,
                 uint32_t ncap, int hashed, uint64_t budget, int stream,
                 uint32_t *maxrun, uint32_t *done) {
  size_t nbytes = (size_t)ncap * sizeof *ns, sbytes = (size_t)n * sizeof *ns;
  size_t step = MOVE_STEP * sizeof *ns;
  uint64_t probes = 0;
  for (uint32_t i = from; i < n; i++) {
    if (!(i % MOVE_STEP)) {
      size_t at = (size_t)i * sizeof *ns;
      if (stream) {
        hs__mem_populate_big(ns, nbytes, at, at + 2 * step);
        hs__mem_populate_big(ns, nbytes, sbytes + at, sbytes + at + 2 * step);
      }
      if (i > from)
        hs__mem_release_big(src, sbytes, at - step, at);
    }
    if (!src[i].ptr)
      continue;
    uint32_t home = home_of(sptr(&src[i]), hashed, ncap - 1), j = home;
    while (ns[j].ptr)
      j = (j + 1) & (ncap - 1);
    ns[j] = src[i];
    uint32_t run = (j - home) & (ncap - 1);
    if (run > *maxrun)
      *maxrun = run;
    probes += run;
    if (budget && (probes > budget ||
                   run > (uint64_t)PROBE_WINDOW * PROBE_LIMIT / 4)) {
      *done = i + 1;
      return 0;
    }
  }
  *done = n;
  return 1;
}

/* Moves every trace into a fresh array of ncap slots, by address unless
 * hashed; lock held. Address placement is a trial against a budget of a
 * quarter of the probes per trace that make a live shard give it up (so
 * that a layout which only just passes does not switch again a window
 * later); a layout that fails it is hashed, from the two tables the move
 * left it in. Should the memory for that be missing, the move is finished
 * by address: slower, but whole. */
static int shard_rebuild(trace_shard_t *sh, uint32_t ncap, int hashed) {
  slot_t *old = sh->slots;
  uint32_t ocap = old ? sh->mask + 1 : 0, maxrun = 0, done;
  int stream = !hashed && !sh->hashed && ncap == 2 * ocap;
  slot_t *ns = stream ? hs__mem_reserve_big(HS_MEM_TRACES, ncap, sizeof *ns)
                      : hs__mem_calloc_big(HS_MEM_TRACES, ncap, sizeof *ns);
  if (!ns)
    return HS_ENOMEM;
  uint64_t budget = hashed ? 0
                           : (uint64_t)sh->count * PROBE_LIMIT / 4 +
                                 PROBE_WINDOW;
  if (!place(old, ocap, 0, ns, ncap, hashed, budget, stream, &maxrun,
             &done)) {
    slot_t *hs = hs__mem_calloc_big(HS_MEM_TRACES, ncap, sizeof *hs);
    uint32_t d;
    if (hs) {
      maxrun = 0;
      (void)place(ns, ncap, 0, hs, ncap, 1, 0, 0, &maxrun, &d);
      hs__mem_free_big(HS_MEM_TRACES, ns, (size_t)ncap * sizeof *ns);
      ns = hs;
      hashed = 1;
    }
    (void)place(old, ocap, done, ns, ncap, hashed, 0, 0, &maxrun, &d);
  }
  sh->maxrun = maxrun;
  if (old)
    hs__mem_free_big(HS_MEM_TRACES, old, (size_t)ocap * sizeof *ns);
  /* Stored atomically for hs__traces_prefetch, which reads unlocked. */
  __atomic_store_n(&sh->slots, ns, __ATOMIC_RELAXED);
  __atomic_store_n(&sh->mask, ncap - 1, __ATOMIC_RELAXED);
  __atomic_store_n(&sh->hashed, hashed, __ATOMIC_RELAXED);
  sh->probes = 0;
  sh->window = 0;
  return 0;
}

/* Doubles the table. A hashed shard tries address placement again: the
 * layout that made it give up (a burst of page-aligned blocks, say) may
 * be gone, and if it is not, the trial costs no more than its budget. */
static int shard_grow(trace_shard_t *sh) {
  return shard_rebuild(sh, sh->slots ? (sh->mask + 1) * 2 : 256, 0);
}

/* Index of ptr's slot, or -1; lock held. Address placement can make
 * long runs of occupied slots whose traces all sit at home (a dense array
 * of small blocks): the search stops maxrun slots past home, where ptr
 * would have to be, not at the run's end. */
static int64_t shard_find(const trace_shard_t *sh, uintptr_t ptr) {
  if (!sh->slots)
    return -1;
  uint32_t j = home_of(ptr, sh->hashed, sh->mask);
  for (uint32_t d = 0; d <= sh->maxrun; d++, j = (j + 1) & sh->mask) {
    if (sptr(&sh->slots[j]) == ptr)
      return j;
    if (!sh->slots[j].ptr)
      return -1;
  }
  return -1;
}

static void shard_delete(trace_shard_t *sh, uint32_t j) {
  uint32_t mask = sh->mask;
  /* A trace more than maxrun slots past the hole has its home after the
   * hole, and so has every one beyond it: the shifting stops there. */
  for (uint32_t k = (j + 1) & mask;
       sh->slots[k].ptr && ((k - j) & mask) <= sh->maxrun;
       k = (k + 1) & mask) {
    uint32_t home = home_of(sptr(&sh->slots[k]), sh->hashed, mask);
    /* Move k back into the hole j unless its home lies in (j, k]. */
    if (((k - home) & mask) >= ((k - j) & mask)) {
      sh->slots[j] = sh->slots[k];
      j = k;
    }
  }
  sh->slots[j].ptr = 0;
  __atomic_store_n(&sh->count, sh->count - 1, __ATOMIC_RELAXED);
}

/* Counts an insert's probe run; a shard whose runs have grown long hashes
 * its slots from now on. Checked at each insert, not only at a window's
 * end: one run the length of a whole window's budget (a block whose home
 * wraps onto the start of a dense run) raises maxrun so far that every
 * later search and delete would scan as far, and a program that only
 * frees from then on would never end the window. Lock held. A rebuild
 * that cannot get memory leaves the table as it was, slower but whole. */
static void shard_count_probes(trace_shard_t *sh, uint32_t run) {
  if (run > sh->maxrun)
    sh->maxrun = run;
  sh->probes += run;
  if (!sh->hashed && sh->probes > (uint64_t)PROBE_WINDOW * PROBE_LIMIT) {
    /* At half full or more, the runs may be the load's and not the
     * layout's (a heap that wraps around a small table lays its blocks
     * over each other): the growth that is due soon anyway comes now, and
     * its trial decides. CPython's heap made a shard give up just short
     * of its growth, and it then stayed hashed at millions of traces. */
    if ((uint64_t)sh->count * 2 >= (uint64_t)sh->mask + 1)
      (void)shard_grow(sh);
    else
      (void)shard_rebuild(sh, sh->mask + 1, 1);
  } else if (++sh->window < PROBE_WINDOW) {
    return;
  }
  sh->probes = 0;
  sh->window = 0;
}

static int heap_insert(uintptr_t ptr, size_t size, uint32_t stack,
                       unsigned s, uint32_t stamp) {
  trace_shard_t *sh = shard_of(ptr);
  int rc = 0;
  tlock(&sh->lock);
  if (hs__state_now() != s) {
    rc = HS_ENOTTRACING;
    goto out;
  }
  int64_t j = shard_find(sh, ptr);
  __atomic_store_n(&sh->inserts, sh->inserts + 1, __ATOMIC_RELAXED);
  if (j >= 0) {
    sub_current(ssize(&sh->slots[j]));
    sset(&sh->slots[j], ptr, size, stack, stamp);
    add_current(size);
    hs__stack_count_alloc(stack, size);
    goto out;
  }
  /* Doubles at 3/4 load with hashed slots, at 7/8 by address: neighbours
   * placed by address mostly sit at home at loads where hashed ones probe
   * far (CPython's shards, rebuilt at 3/4: no trace further than 4 slots
   * from home), and a layout whose runs do grow long is caught by its
   * probe count, which doubles the table at half load or more. */
  if (!sh->slots || ((uint64_t)sh->count + 1) * 8 >
                        ((uint64_t)sh->mask + 1) * (sh->hashed ? 6 : 7)) {
    /* Past that a failed growth still leaves room to probe into. */
    if (shard_grow(sh) != 0 && (!sh->slots || sh->count + 2 > sh->mask + 1)) {
      __atomic_store_n(&sh->inserts, sh->inserts - 1, __ATOMIC_RELAXED);
      rc = HS_ENOMEM;
      goto out;
    }
  }
  uint32_t home = home_of(ptr, sh->hashed, sh->mask), k = home;
  while (sh->slots[k].ptr)
    k = (k + 1) & sh->mask;
  sset(&sh->slots[k], ptr, size, stack, stamp);
  filter_add(ptr, 1);
  /* Readers outside the lock (hs_get_stats) load count atomically. */
  __atomic_store_n(&sh->count, sh->count + 1, __ATOMIC_RELAXED);
  add_current(size);
  hs__stack_count_alloc(stack, size);
  shard_count_probes(sh, (k - home) & sh->mask);
out:
  tunlock(&sh->lock);
  return rc;
}

static int heap_take(uintptr_t ptr, int remove, size_t *size,
                     uint32_t *stack, uint32_t stamp, unsigned flags) {
  if (filter_says_absent(ptr))
    return 0;
  trace_shard_t *sh = shard_of(ptr);
  tlock(&sh->lock);
  int64_t j = shard_find(sh, ptr);
  if (j >= 0) {
    slot_t e = sh->slots[j];
    if (size)
      *size = ssize(&e);
    if (stack)
      *stack = sstack(&e);
    if (remove) {
      shard_delete(sh, (uint32_t)j);
      filter_add(ptr, -1);
      sub_current(ssize(&e));
      hs__stack_count_free(sstack(&e), ssize(&e),
                           (stamp - sstamp(&e)) & HS_STAMP_MASK, flags);
    }
  }
  tunlock(&sh->lock);
  return j >= 0;
}

unsigned hs__traces_hashed_shards(void) {
  unsigned n = 0;
  for (unsigned i = 0; i < TRACE_SHARDS; i++) {
    hs__lock(&shards[i].lock);
    n += shards[i].hashed != 0;
    hs__unlock(&shards[i].lock);
  }
  return n;
}

void hs__traces_prefetch(uintptr_t ptr) {
  trace_shard_t *sh = shard_of(ptr);
  /* Racy on purpose: a prefetch of a stale table is harmless, and the
   * insert that follows re-reads everything under the lock. */
  slot_t *slots = __atomic_load_n(&sh->slots, __ATOMIC_RELAXED);
  uint32_t mask = __atomic_load_n(&sh->mask, __ATOMIC_RELAXED);
  int hashed = __atomic_load_n(&sh->hashed, __ATOMIC_RELAXED);
  __builtin_prefetch(sh, 1);
  if (slots)
    __builtin_prefetch(&slots[home_of(ptr, hashed, mask)], 1);
}

/* ---- the wide table ---- */

static int64_t wide_find(uintptr_t ptr, unsigned domain, uint64_t h) {
  if (!wide.e)
    return -1;
  for (uint32_t j = (uint32_t)h & wide.mask;; j = (j + 1) & wide.mask) {
    if (!wide.e[j].used)
      return -1;
    if (wide.e[j].ptr == ptr && wide.e[j].domain == domain)
      return j;
  }
}

static int wide_grow(void) {
  uint32_t ncap = wide.e ? (wide.mask + 1) * 2 : 64;
  wide_t *ne = hs__mem_calloc(HS_MEM_TRACES, ncap, sizeof *ne);
  if (!ne)
    return HS_ENOMEM;
  for (uint32_t i = 0; wide.e && i <= wide.mask; i++) {
    if (!wide.e[i].used)
      continue;
    uint32_t j =
        (uint32_t)mix(wide.e[i].ptr, wide.e[i].domain) & (ncap - 1);
    while (ne[j].used)
      j = (j + 1) & (ncap - 1);
    ne[j] = wide.e[i];
  }
  if (wide.e)
    hs__mem_free(HS_MEM_TRACES, wide.e, (wide.mask + 1) * sizeof *ne);
  wide.e = ne;
  wide.mask = ncap - 1;
  return 0;
}

static int wide_insert(unsigned domain, uintptr_t ptr, size_t size,
                       uint32_t stack, unsigned s, uint32_t stamp) {
  uint64_t h = mix(ptr, domain);
  int rc = 0;
  tlock(&wide.lock);
  if (hs__state_now() != s) {
    rc = HS_ENOTTRACING;
    goto out;
  }
  int64_t j = wide_find(ptr, domain, h);
  __atomic_store_n(&wide.inserts, wide.inserts + 1, __ATOMIC_RELAXED);
  if (j < 0) {
    unsigned n = atomic_load_explicit(&wide.count, memory_order_relaxed);
    if (!wide.e || (n + 1) * 4 > (wide.mask + 1) * 3) {
      if (wide_grow() != 0 && (!wide.e || n + 2 > wide.mask + 1)) {
        __atomic_store_n(&wide.inserts, wide.inserts - 1, __ATOMIC_RELAXED);
        rc = HS_ENOMEM;
        goto out;
      }
    }
    j = (uint32_t)h & wide.mask;
    while (wide.e[j].used)
      j = (j + 1) & wide.mask;
    wide.e[j].used = 1;
    wide.e[j].ptr = ptr;
    wide.e[j].domain = domain;
    atomic_store_explicit(&wide.count, n + 1, memory_order_relaxed);
  } else {
    sub_current(wide.e[j].size);
  }
  wide.e[j].size = size;
  wide.e[j].stack = stack;
  wide.e[j].stamp = stamp;
  add_current(size);
  hs__stack_count_alloc(stack, size);
out:
  tunlock(&wide.lock);
  return rc;
}

static int wide_take(unsigned domain, uintptr_t ptr, int remove, size_t *size,
                     uint32_t *stack, uint32_t stamp, unsigned flags) {
  uint64_t h = mix(ptr, domain);
  tlock(&wide.lock);
  int64_t j = wide_find(ptr, domain, h);
  if (j >= 0) {
    if (size)
      *size = wide.e[j].size;
    if (stack)
      *stack = wide.e[j].stack;
    if (remove) {
      sub_current(wide.e[j].size);
      hs__stack_count_free(wide.e[j].stack, wide.e[j].size,
                           (stamp - wide.e[j].stamp) & HS_STAMP_MASK, flags);
      uint32_t mask = wide.mask, hole = (uint32_t)j;
      for (uint32_t k = (hole + 1) & mask; wide.e[k].used; k = (k + 1) & mask) {
        uint32_t home = (uint32_t)mix(wide.e[k].ptr, wide.e[k].domain) & mask;
        if (((k - home) & mask) >= ((k - hole) & mask)) {
          wide.e[hole] = wide.e[k];
          hole = k;
        }
      }
      wide.e[hole].used = 0;
      atomic_fetch_sub_explicit(&wide.count, 1, memory_order_relaxed);
    }
  }
  tunlock(&wide.lock);
  return j >= 0;
}

/* ---- the layer's interface ---- */

static inline int fits_heap(unsigned domain, uintptr_t ptr, size_t size) {
  return domain == 0 && ptr != 0 && !(ptr & ~(uintptr_t)PTR_MASK) &&
         (uint64_t)size < (1ull << SIZE_BITS);
}

static inline int wide_empty(void) {
  return atomic_load_explicit(&wide.count, memory_order_relaxed) == 0;
}

/* The new trace's stamp is the replaced one's free stamp too: a block
 * traced again without a free between (a missed free, a re-track) is
 * counted as one more allocation, not as a free. */
static int insert_at(unsigned domain, uintptr_t ptr, size_t size,
                     uint32_t stack, unsigned s, uint32_t stamp) {
  if (fits_heap(domain, ptr, size)) {
    /* A domain-0 trace may only be in the wide table after hs_track()
     * gave the same pointer a huge size; keep one trace per pointer. */
    if (HS_UNLIKELY(!wide_empty()))
      wide_take(0, ptr, 1, NULL, NULL, stamp, 0);
    return heap_insert(ptr, size, stack, s, stamp);
  }
  if (domain == 0 && ptr != 0)
    heap_take(ptr, 1, NULL, NULL, stamp, 0);
  return wide_insert(domain, ptr, size, stack, s, stamp);
}

static int remove_at(unsigned domain, uintptr_t ptr, size_t *size,
                     uint32_t *stack, uint32_t stamp, unsigned flags) {
  if (domain == 0 && ptr != 0 && heap_take(ptr, 1, size, stack, stamp, flags))
    return 1;
  return !wide_empty() && wide_take(domain, ptr, 1, size, stack, stamp, flags);
}

int hs__traces_insert_now(unsigned domain, uintptr_t ptr, size_t size,
                          uint32_t stack, unsigned s) {
  return insert_at(domain, ptr, size, stack, s, hs__stamp_now());
}

int hs__traces_remove_now(unsigned domain, uintptr_t ptr, size_t *size,
                          uint32_t *stack) {
  return remove_at(domain, ptr, size, stack, hs__stamp_now(), 0);
}

int hs__traces_lookup(unsigned domain, uintptr_t ptr, size_t *size,
                      uint32_t *stack) {
  hs__defer_drain();
  if (domain == 0 && ptr != 0 && heap_take(ptr, 0, size, stack, 0, 0))
    return 1;
  return !wide_empty() && wide_take(domain, ptr, 0, size, stack, 0, 0);
}

/* The immediate entry points apply after whatever the ring holds, so that
 * the table sees every block's events in the order they happened. */
int hs__traces_insert(unsigned domain, uintptr_t ptr, size_t size,
                      uint32_t stack, unsigned s) {
  hs__defer_drain();
  return hs__traces_insert_now(domain, ptr, size, stack, s);
}

int hs__traces_remove(unsigned domain, uintptr_t ptr, size_t *size,
                      uint32_t *stack) {
  hs__defer_drain();
  return hs__traces_remove_now(domain, ptr, size, stack);
}

int hs__traces_insert_at(unsigned domain, uintptr_t ptr, size_t size,
                         uint32_t stack, unsigned s, uint32_t stamp) {
  hs__defer_drain();
  return insert_at(domain, ptr, size, stack, s, stamp);
}

int hs__traces_remove_at(unsigned domain, uintptr_t ptr, size_t *size,
                         uint32_t *stack, uint32_t stamp, unsigned flags) {
  hs__defer_drain();
  return remove_at(domain, ptr, size, stack, stamp, flags);
}

/* For the ring's applier: no drain, it is the drain. */
HS_HIDDEN int hs__traces_insert_now_at(unsigned domain, uintptr_t ptr,
                                       size_t size, uint32_t stack,
                                       unsigned s, uint32_t stamp);
HS_HIDDEN int hs__traces_remove_now_at(unsigned domain, uintptr_t ptr,
                                       size_t *size, uint32_t *stack,
                                       uint32_t stamp, unsigned flags);
int hs__traces_insert_now_at(unsigned domain, uintptr_t ptr, size_t size,
                             uint32_t stack, unsigned s, uint32_t stamp) {
  return insert_at(domain, ptr, size, stack, s, stamp);
}
int hs__traces_remove_now_at(unsigned domain, uintptr_t ptr, size_t *size,
                             uint32_t *stack, uint32_t stamp,
                             unsigned flags) {
  return remove_at(domain, ptr, size, stack, stamp, flags);
}

void hs__traces_totals(size_t *cur, size_t *pk) {
  hs__defer_drain();
  if (cur)
    *cur = atomic_load_explicit(&current, memory_order_relaxed);
  if (pk)
    *pk = atomic_load_explicit(&peak, memory_order_relaxed);
}

void hs__traces_reset_peak(void) {
  hs__defer_drain();
  atomic_store_explicit(&peak, atomic_load(&current), memory_order_relaxed);
}

uint64_t hs__traces_inserts(void) {
  hs__defer_drain();
  uint64_t n = __atomic_load_n(&wide.inserts, __ATOMIC_RELAXED);
  for (unsigned i = 0; i < TRACE_SHARDS; i++)
    n += __atomic_load_n(&shards[i].inserts, __ATOMIC_RELAXED);
  return n;
}

uint64_t hs__traces_count(void) {
  hs__defer_drain();
  uint64_t n = atomic_load_explicit(&wide.count, memory_order_relaxed);
  for (unsigned i = 0; i < TRACE_SHARDS; i++)
    n += __atomic_load_n(&shards[i].count, __ATOMIC_RELAXED);
  return n;
}

void hs__traces_lock_all(void) {
  for (unsigned i = 0; i < TRACE_SHARDS; i++)
    hs__lock(&shards[i].lock);
  hs__lock(&wide.lock);
}

void hs__traces_unlock_all(void) {
  hs__unlock(&wide.lock);
  for (unsigned i = TRACE_SHARDS; i-- > 0;)
    hs__unlock(&shards[i].lock);
}

/* With every table lock held by this thread, nobody else changes the
 * totals, so they can be kept in a thread-local until the end; the peak is
 * the highest of them in the events' order, as if applied one by one. */
void hs__traces_batch_begin(void) {
  hs__traces_lock_all();
  batch.cur = batch.top = atomic_load_explicit(&current, memory_order_relaxed);
  batch.on = 1;
}

void hs__traces_batch_flush(void) {
  atomic_store_explicit(&current, batch.cur, memory_order_relaxed);
  raise_peak(batch.top);
  /* A reset of the peak after this point must not see an older one. */
  batch.top = batch.cur;
}

void hs__traces_batch_end(void) {
  size_t top = batch.top;
  hs__traces_batch_flush();
  batch.on = 0;
  hs__traces_unlock_all();
  check_trigger(top);
}

void hs__traces_reset_locks(void) {
  hs__lock_reset(&wide.lock);
  for (unsigned i = 0; i < TRACE_SHARDS; i++)
    hs__lock_reset(&shards[i].lock);
}

void hs__traces_clear_locked(void) {
  for (unsigned i = 0; i < TRACE_SHARDS; i++) {
    trace_shard_t *sh = &shards[i];
    if (sh->slots)
      hs__mem_free_big(HS_MEM_TRACES, sh->slots, (sh->mask + 1) * sizeof(slot_t));
    __atomic_store_n(&sh->slots, NULL, __ATOMIC_RELAXED);
    __atomic_store_n(&sh->mask, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&sh->count, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&sh->hashed, 0, __ATOMIC_RELAXED);
    sh->maxrun = 0;
    sh->probes = 0;
    sh->window = 0;
  }
  if (wide.e)
    hs__mem_free(HS_MEM_TRACES, wide.e, (wide.mask + 1) * sizeof(wide_t));
  wide.e = NULL;
  wide.mask = 0;
  __atomic_store_n(&wide.inserts, 0, __ATOMIC_RELAXED);
  atomic_store(&wide.count, 0);
  atomic_store(&current, 0);
  atomic_store(&peak, 0);
  if (__atomic_load_n(&hs__filter_on, __ATOMIC_RELAXED))
    hs__traces_set_filter_locked(1);
}

/* Each shard's slots are copied whole under its lock and visited after it
 * is released. The ring's batches take every table lock in shard order
 * (hs__traces_batch_begin), so a batch that meets the shard a visitor
 * holds waits for it, then for the next one it takes: it follows the
 * visitor to the last shard. With the visit (a snapshot's grouping, some
 * 20 ns a trace) under the lock, that held the ring's applier for the
 * whole walk, 15 to 45 ms for a million traces, while the allocating
 * threads, the ring full, waited for room (BENCHMARKS.md, "pprof
 * endpoint"). A copy holds a shard only for a memcpy, and the batch that
 * waited for it takes the other locks while the visitor works unlocked.
 * The buffer is mapped and written in before the lock is taken, so no
 * page fault lands in the hold; it grows to the largest shard and lives
 * for the call. Without memory for it, a shard is visited under its lock
 * as before. */
void hs__traces_foreach(void (*fn)(const hs_trace_rec_t *, void *),
                        void *arg) {
  hs_trace_rec_t rec;
  slot_t *buf = NULL;
  uint32_t bufcap = 0; /* slots */
  hs__defer_drain();
  for (unsigned i = 0; i < TRACE_SHARDS; i++) {
    trace_shard_t *sh = &shards[i];
    uint32_t n = 0;
    int copied = 0;
    for (;;) {
      uint32_t want =
          __atomic_load_n(&sh->slots, __ATOMIC_RELAXED)
              ? __atomic_load_n(&sh->mask, __ATOMIC_RELAXED) + 1
              : 0;
      if (want > bufcap) {
        hs__mem_free_big(HS_MEM_OTHER, buf, (size_t)bufcap * sizeof *buf);
        buf = hs__mem_calloc_big(HS_MEM_OTHER, want, sizeof *buf);
        bufcap = buf ? want : 0;
      }
      hs__lock(&sh->lock);
      if (!sh->slots) {
        copied = 1;
      } else if (sh->mask + 1 <= bufcap) {
        n = sh->mask + 1;
        memcpy(buf, sh->slots, (size_t)n * sizeof *buf);
        copied = 1;
      } else if (!buf) {
        break; /* no memory for a copy: visit under the lock */
      }
      if (copied) {
        hs__unlock(&sh->lock);
        break;
      }
      hs__unlock(&sh->lock); /* it grew meanwhile */
    }
    const slot_t *v = copied ? buf : sh->slots;
    if (!copied)
      n = sh->mask + 1;
    for (uint32_t j = 0; j < n; j++) {
      if (!v[j].ptr)
        continue;
      rec.ptr = sptr(&v[j]);
      rec.size = ssize(&v[j]);
      rec.stack = sstack(&v[j]);
      rec.domain = 0;
      fn(&rec, arg);
    }
    if (!copied)
      hs__unlock(&sh->lock);
  }
  hs__mem_free_big(HS_MEM_OTHER, buf, (size_t)bufcap * sizeof *buf);
  hs__lock(&wide.lock);
  for (uint32_t j = 0; wide.e && j <= wide.mask; j++) {
    if (!wide.e[j].used)
      continue;
    rec.ptr = wide.e[j].ptr;
    rec.size = wide.e[j].size;
    rec.stack = wide.e[j].stack;
    rec.domain = wide.e[j].domain;
    fn(&rec, arg);
  }
  hs__unlock(&wide.lock);
}
