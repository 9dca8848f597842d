/* stacks.c - interned call stacks: each distinct stack is stored once and
 * named by a 24-bit id. Sharded by hash so threads rarely share a lock.
 *
 * A shard holds an open-addressing table of (index + 1) keyed by the stack's
 * hash, and an array index -> record. Records never move while they exist,
 * so a copy made under the lock stays valid after it.
 * Each record also holds its stack's cumulative counters; they are found
 * by id without the shard lock through a directory of fixed chunks, since
 * the index array moves when it grows. */
#include <math.h>
#include <string.h>

#include "trace.h"

typedef struct stack_rec {
  uint64_t hash;
  uint32_t nframe;
  hs_stack_ctr_t ctr; /* atomic adds only */
  uintptr_t frames[];
} stack_rec_t;

/* id -> record without a lock: chunks of DIR_CHUNK record pointers, each
 * written before the ids it covers are handed out and never moved; freed
 * at clear, when every trace table lock is held. */
#define DIR_CHUNK_BITS 10
#define DIR_CHUNK (1u << DIR_CHUNK_BITS)
#define DIR_CHUNKS (1u << (HS_STACK_INDEX_BITS - DIR_CHUNK_BITS))
static stack_rec_t **dir[HS_STACK_SHARDS][DIR_CHUNKS];

typedef struct stack_shard {
  hs_lock_t lock;
  uint32_t mask;       /* slots has mask + 1 entries; protected by lock */
  uint32_t count;      /* stacks in this shard; protected by lock */
  uint32_t recs_cap;   /* protected by lock */
  uint32_t *slots;     /* index + 1, 0 = empty; protected by lock */
  stack_rec_t **recs;  /* index -> record; protected by lock */
} __attribute__((aligned(HS_CACHELINE))) stack_shard_t;

static stack_shard_t shards[HS_STACK_SHARDS];

/* Four independent lanes: a single multiply chain over 64 frames is a
 * long serial dependency, and this runs once per traced allocation. */
uint64_t hs__stack_hash(const uintptr_t *f, int n) {
  const uint64_t k = 0xff51afd7ed558ccdull;
  uint64_t a = 0x9E3779B97F4A7C15ull ^ (uint64_t)n, b = 0xC2B2AE3D27D4EB4Full,
           c = 0x165667B19E3779F9ull, d = 0x27D4EB2F165667C5ull;
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    a = (a ^ f[i]) * k;
    b = (b ^ f[i + 1]) * k;
    c = (c ^ f[i + 2]) * k;
    d = (d ^ f[i + 3]) * k;
  }
  for (; i < n; i++)
    a = (a ^ f[i]) * k;
  uint64_t h = a ^ (b >> 17 | b << 47) ^ (c >> 31 | c << 33) ^
               (d >> 43 | d << 21);
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

static int grow_slots(stack_shard_t *sh) {
  uint32_t ncap = sh->slots ? (sh->mask + 1) * 2 : 64;
  uint32_t *ns = hs__mem_calloc(HS_MEM_STACKS, ncap, sizeof *ns);
  if (!ns)
    return HS_ENOMEM;
  for (uint32_t i = 0; sh->slots && i <= sh->mask; i++) {
    uint32_t v = sh->slots[i];
    if (!v)
      continue;
    uint32_t j = (uint32_t)sh->recs[v - 1]->hash & (ncap - 1);
    while (ns[j])
      j = (j + 1) & (ncap - 1);
    ns[j] = v;
  }
  if (sh->slots)
    hs__mem_free(HS_MEM_STACKS, sh->slots, (sh->mask + 1) * sizeof *ns);
  sh->slots = ns;
  sh->mask = ncap - 1;
  return 0;
}

static int grow_recs(stack_shard_t *sh) {
  uint32_t ncap = sh->recs_cap ? sh->recs_cap * 2 : 64;
  if (ncap > (1u << HS_STACK_INDEX_BITS))
    ncap = 1u << HS_STACK_INDEX_BITS;
  if (ncap <= sh->recs_cap)
    return HS_ENOMEM; /* every id of this shard is taken */
  stack_rec_t **nr = hs__mem_alloc(HS_MEM_STACKS, ncap * sizeof *nr);
  if (!nr)
    return HS_ENOMEM;
  if (sh->recs) {
    memcpy(nr, sh->recs, sh->count * sizeof *nr);
    hs__mem_free(HS_MEM_STACKS, sh->recs, sh->recs_cap * sizeof *nr);
  }
  sh->recs = nr;
  sh->recs_cap = ncap;
  return 0;
}

/* hot path: one shard lock, no allocation unless the stack is new. */
int hs__stack_intern(const uintptr_t *frames, int n, unsigned s,
                     uint32_t *id, int *is_new) {
  return hs__stack_intern_hashed(frames, n, hs__stack_hash(frames, n), s, id,
                                 is_new);
}

int hs__stack_intern_hashed(const uintptr_t *frames, int n, uint64_t h,
                            unsigned s, uint32_t *id, int *is_new) {
  if (is_new)
    *is_new = 0;
  uint32_t si = (uint32_t)(h >> (64 - HS_STACK_SHARD_BITS));
  stack_shard_t *sh = &shards[si];
  int rc = 0;
  hs__lock(&sh->lock);
  if (hs__state_now() != s) {
    rc = HS_ENOTTRACING;
    goto out;
  }
  if (sh->slots) {
    for (uint32_t j = (uint32_t)h & sh->mask;; j = (j + 1) & sh->mask) {
      uint32_t v = sh->slots[j];
      if (!v)
        break;
      const stack_rec_t *r = sh->recs[v - 1];
      if (r->hash == h && r->nframe == (uint32_t)n &&
          memcmp(r->frames, frames, (size_t)n * sizeof *frames) == 0) {
        *id = ((v - 1) << HS_STACK_SHARD_BITS) | si;
        goto out;
      }
    }
  }
  /* New stack: keep the table at most 3/4 full and room for its record. */
  if (!sh->slots || (sh->count + 1) * 4 > (sh->mask + 1) * 3) {
    if ((rc = grow_slots(sh)) != 0 &&
        (!sh->slots || sh->count + 1 >= sh->mask + 1))
      goto out;
    rc = 0;
  }
  if (sh->count == sh->recs_cap && (rc = grow_recs(sh)) != 0)
    goto out;
  size_t bytes = sizeof(stack_rec_t) + (size_t)n * sizeof *frames;
  stack_rec_t *r = hs__mem_alloc(HS_MEM_STACKS, bytes);
  if (!r) {
    rc = HS_ENOMEM;
    goto out;
  }
  uint32_t idx = sh->count;
  stack_rec_t ***chunk = &dir[si][idx >> DIR_CHUNK_BITS];
  if (!*chunk) {
    stack_rec_t **c = hs__mem_calloc(HS_MEM_STACKS, DIR_CHUNK, sizeof *c);
    if (!c) {
      hs__mem_free(HS_MEM_STACKS, r, bytes);
      rc = HS_ENOMEM;
      goto out;
    }
    __atomic_store_n(chunk, c, __ATOMIC_RELEASE);
  }
  memset(r, 0, sizeof *r);
  r->hash = h;
  r->nframe = (uint32_t)n;
  memcpy(r->frames, frames, (size_t)n * sizeof *frames);
  /* Published before the id leaves the lock; its users get the id through
   * a lock or the ring, both of which order this store before them. */
  __atomic_store_n(&(*chunk)[idx & (DIR_CHUNK - 1)], r, __ATOMIC_RELEASE);
  /* Readers outside the lock (hs_get_stats) load count atomically. */
  __atomic_store_n(&sh->count, idx + 1, __ATOMIC_RELAXED);
  sh->recs[idx] = r;
  uint32_t j = (uint32_t)h & sh->mask;
  while (sh->slots[j])
    j = (j + 1) & sh->mask;
  sh->slots[j] = idx + 1;
  *id = (idx << HS_STACK_SHARD_BITS) | si;
  if (is_new)
    *is_new = 1;
out:
  hs__unlock(&sh->lock);
  return rc;
}

int hs__stack_get(uint32_t id, uintptr_t *out, int max) {
  stack_shard_t *sh = &shards[id & (HS_STACK_SHARDS - 1)];
  uint32_t idx = id >> HS_STACK_SHARD_BITS;
  int n = -1;
  hs__lock(&sh->lock);
  if (idx < sh->count) {
    const stack_rec_t *r = sh->recs[idx];
    n = (int)r->nframe;
    memcpy(out, r->frames, (size_t)(n < max ? n : max) * sizeof *out);
  }
  hs__unlock(&sh->lock);
  return n;
}

uint64_t hs__stack_count(void) {
  uint64_t n = 0;
  for (unsigned i = 0; i < HS_STACK_SHARDS; i++)
    n += __atomic_load_n(&shards[i].count, __ATOMIC_RELAXED);
  return n;
}

void hs__stacks_lock_all(void) {
  for (unsigned i = 0; i < HS_STACK_SHARDS; i++)
    hs__lock(&shards[i].lock);
}

void hs__stacks_unlock_all(void) {
  for (unsigned i = HS_STACK_SHARDS; i-- > 0;)
    hs__unlock(&shards[i].lock);
}

void hs__stacks_reset_locks(void) {
  for (unsigned i = 0; i < HS_STACK_SHARDS; i++)
    hs__lock_reset(&shards[i].lock);
}

void hs__stacks_clear_locked(void) {
  for (unsigned i = 0; i < HS_STACK_SHARDS; i++) {
    stack_shard_t *sh = &shards[i];
    for (uint32_t k = 0; k < sh->count; k++)
      hs__mem_free(HS_MEM_STACKS, sh->recs[k],
                   sizeof(stack_rec_t) + sh->recs[k]->nframe * sizeof(uintptr_t));
    if (sh->recs)
      hs__mem_free(HS_MEM_STACKS, sh->recs, sh->recs_cap * sizeof *sh->recs);
    if (sh->slots)
      hs__mem_free(HS_MEM_STACKS, sh->slots, (sh->mask + 1) * sizeof *sh->slots);
    for (uint32_t c = 0; c < DIR_CHUNKS; c++)
      if (dir[i][c]) {
        hs__mem_free(HS_MEM_STACKS, dir[i][c], DIR_CHUNK * sizeof *dir[i][c]);
        dir[i][c] = NULL;
      }
    sh->recs = NULL;
    sh->slots = NULL;
    sh->recs_cap = sh->mask = 0;
    __atomic_store_n(&sh->count, 0, __ATOMIC_RELAXED);
  }
}

/* ---- cumulative counters ---- */

static inline stack_rec_t *rec_of(uint32_t id) {
  stack_rec_t **c = __atomic_load_n(
      &dir[id & (HS_STACK_SHARDS - 1)][(id >> HS_STACK_SHARD_BITS) >>
                                        DIR_CHUNK_BITS],
      __ATOMIC_ACQUIRE);
  if (HS_UNLIKELY(!c))
    return NULL;
  return __atomic_load_n(&c[(id >> HS_STACK_SHARD_BITS) & (DIR_CHUNK - 1)],
                         __ATOMIC_ACQUIRE);
}

/* What one block of size stands for, in 1/65536 blocks: 1 when every
 * allocation is traced, else 1/p with p = 1 - exp(-size/rate), as the
 * live estimates (hs__group_estimate) weigh a sampled block. */
static inline uint64_t weight(uint64_t size) {
  size_t rate = atomic_load_explicit(&hs__sample_rate, memory_order_relaxed);
  if (HS_LIKELY(!rate))
    return HS_CTR_ONE;
  double p = size ? -expm1(-(double)size / (double)rate) : 1.0;
  return (uint64_t)llround((double)HS_CTR_ONE / p);
}

static inline void add(uint64_t *p, uint64_t v) {
  __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}

void hs__stack_count_alloc(uint32_t id, uint64_t size) {
  stack_rec_t *r = rec_of(id);
  if (HS_UNLIKELY(!r))
    return;
  uint64_t w = weight(size);
  add(&r->ctr.allocs, w);
  add(&r->ctr.bytes, w == HS_CTR_ONE ? size : (size * w) >> 16);
}

void hs__stack_count_free(uint32_t id, uint64_t size, uint32_t lifetime,
                          unsigned flags) {
  stack_rec_t *r = rec_of(id);
  if (HS_UNLIKELY(!r))
    return;
  uint64_t w = weight(size);
  unsigned b = lifetime ? 32u - (unsigned)__builtin_clz(lifetime) : 0;
  add(&r->ctr.frees, w);
  add(&r->ctr.hist[b < HS_CTR_BUCKETS ? b : HS_CTR_BUCKETS - 1], w);
  if (flags & HS_FREE_TEMP)
    add(&r->ctr.temp, w);
  /* lifetime counts whole units: under the threshold when its start is. */
  if (((uint64_t)lifetime << HS_STAMP_SHIFT) <
      atomic_load_explicit(&hs__temp_ns, memory_order_relaxed))
    add(&r->ctr.temp_time, w);
}

void hs__stacks_foreach(void (*fn)(uint32_t, const hs_stack_ctr_t *, void *),
                        void *arg) {
  hs_stack_ctr_t c;
  for (unsigned i = 0; i < HS_STACK_SHARDS; i++) {
    stack_shard_t *sh = &shards[i];
    hs__lock(&sh->lock);
    for (uint32_t k = 0; k < sh->count; k++) {
      const hs_stack_ctr_t *src = &sh->recs[k]->ctr;
      c.allocs = __atomic_load_n(&src->allocs, __ATOMIC_RELAXED);
      c.bytes = __atomic_load_n(&src->bytes, __ATOMIC_RELAXED);
      c.frees = __atomic_load_n(&src->frees, __ATOMIC_RELAXED);
      c.temp = __atomic_load_n(&src->temp, __ATOMIC_RELAXED);
      c.temp_time = __atomic_load_n(&src->temp_time, __ATOMIC_RELAXED);
      for (int b = 0; b < HS_CTR_BUCKETS; b++)
        c.hist[b] = __atomic_load_n(&src->hist[b], __ATOMIC_RELAXED);
      fn(k << HS_STACK_SHARD_BITS | i, &c, arg);
    }
    hs__unlock(&sh->lock);
  }
}
