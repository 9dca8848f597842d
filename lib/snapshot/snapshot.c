/* snapshot.c - taking a snapshot of the live traces, symbolizing it once,
 * and the snapshot's life cycle (info, wrappers, copy, free). */
#include <fnmatch.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../trace/trace.h"
#include "snapshot.h"

/* The leak check's result, once it has one (set once, never cleared). */
static const hs_class_source_t *_Atomic class_source;

void hs__snapshot_set_class_source(const hs_class_source_t *src) {
  atomic_store_explicit(&class_source, src, memory_order_release);
}

/* ---- small open-addressing maps used while building snapshots ---- */

typedef struct u64map {
  uint64_t *keys; /* key + 1; 0 = empty */
  uint32_t *vals;
  uint64_t mask;
  uint64_t count;
} u64map_t;

static uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

static int u64map_grow(u64map_t *m) {
  uint64_t ncap = m->keys ? (m->mask + 1) * 2 : 1024;
  uint64_t *nk = calloc(ncap, sizeof *nk);
  uint32_t *nv = malloc(ncap * sizeof *nv);
  if (!nk || !nv) {
    free(nk);
    free(nv);
    return HS_ENOMEM;
  }
  for (uint64_t i = 0; m->keys && i <= m->mask; i++) {
    if (!m->keys[i])
      continue;
    uint64_t j = mix64(m->keys[i] - 1) & (ncap - 1);
    while (nk[j])
      j = (j + 1) & (ncap - 1);
    nk[j] = m->keys[i];
    nv[j] = m->vals[i];
  }
  free(m->keys);
  free(m->vals);
  m->keys = nk;
  m->vals = nv;
  m->mask = ncap - 1;
  return 0;
}

/* The value slot of key, inserted (value 0) when absent; *found says
 * which. NULL when out of memory. */
static uint32_t *u64map_slot(u64map_t *m, uint64_t key, int *found) {
  if (!m->keys || (m->count + 1) * 2 > m->mask + 1)
    if (u64map_grow(m) != 0)
      return NULL;
  for (uint64_t j = mix64(key) & m->mask;; j = (j + 1) & m->mask) {
    if (!m->keys[j]) {
      m->keys[j] = key + 1;
      m->vals[j] = 0;
      m->count++;
      *found = 0;
      return &m->vals[j];
    }
    if (m->keys[j] == key + 1) {
      *found = 1;
      return &m->vals[j];
    }
  }
}

static void u64map_free(u64map_t *m) {
  free(m->keys);
  free(m->vals);
  memset(m, 0, sizeof *m);
}

int hs__reserve(void *arr, uint64_t *cap, uint64_t need, size_t elem) {
  if (need <= *cap)
    return 0;
  uint64_t ncap = *cap ? *cap * 2 : 256;
  while (ncap < need)
    ncap *= 2;
  void *p = realloc(*(void **)arr, ncap * elem);
  if (!p)
    return HS_ENOMEM;
  *(void **)arr = p;
  *cap = ncap;
  return 0;
}

/* ---- strings ---- */

uint32_t hs__strtab_add(struct hs_snapshot *s, const char *str) {
  size_t n = strlen(str) + 1;
  if ((uint64_t)s->strtab_len + n >= UINT32_MAX)
    return HS_NOSTR;
  uint64_t cap = s->strtab_cap;
  if (hs__reserve(&s->strtab, &cap, (uint64_t)s->strtab_len + n, 1) != 0)
    return HS_NOSTR;
  s->strtab_cap = (uint32_t)(cap < UINT32_MAX ? cap : UINT32_MAX);
  uint32_t off = s->strtab_len;
  memcpy(s->strtab + off, str, n);
  s->strtab_len += (uint32_t)n;
  return off;
}

/* ---- default wrappers ---- */

static const struct {
  int kind;
  const char *pattern;
} default_wrappers[] = {
    {HS_WRAP_FUNCTION, "malloc"},        {HS_WRAP_FUNCTION, "calloc"},
    {HS_WRAP_FUNCTION, "realloc"},       {HS_WRAP_FUNCTION, "reallocarray"},
    {HS_WRAP_FUNCTION, "posix_memalign"}, {HS_WRAP_FUNCTION, "aligned_alloc"},
    {HS_WRAP_FUNCTION, "memalign"},      {HS_WRAP_FUNCTION, "valloc"},
    {HS_WRAP_FUNCTION, "pvalloc"},       {HS_WRAP_FUNCTION, "*strdup"},
    {HS_WRAP_FUNCTION, "*strndup"},      {HS_WRAP_FUNCTION, "wcsdup"},
    {HS_WRAP_FUNCTION, "*asprintf"},     {HS_WRAP_FUNCTION, "getline"},
    {HS_WRAP_FUNCTION, "getdelim"},      {HS_WRAP_FUNCTION, "operator new*"},
    {HS_WRAP_FUNCTION, "std::allocator*"},
    {HS_WRAP_FUNCTION, "std::__new_allocator*"},
    {HS_WRAP_FUNCTION, "__gnu_cxx::new_allocator*"},
    {HS_WRAP_FUNCTION, "std::allocator_traits*"},
    {HS_WRAP_FUNCTION, "rl_*"},          {HS_WRAP_FUNCTION, "hs_*"},
    {HS_WRAP_FILE, "/usr/include/c++/*"},
    /* reclayout's static helpers (and tail calls) hide behind rl_* names:
     * its source files are wrappers as a whole. */
    {HS_WRAP_FILE, "*/lib/reclayout/*"},
    {HS_WRAP_MODULE, "libreclayout.so*"},
    {HS_WRAP_MODULE, "libc.so*"},        {HS_WRAP_MODULE, "libstdc++.so*"},
    {HS_WRAP_MODULE, "libheapsnap.so*"}, {HS_WRAP_MODULE, "ld-linux*"},
};

/* Process-wide extra wrappers (hs_add_wrapper), copied into each snapshot.
 * wrap_mu is in the fork table (runtime.c): a leaf, held for a copy. */
static pthread_mutex_t wrap_mu = PTHREAD_MUTEX_INITIALIZER;
void hs__wrappers_fork_prepare(void) { pthread_mutex_lock(&wrap_mu); }
void hs__wrappers_fork_parent(void) { pthread_mutex_unlock(&wrap_mu); }
void hs__wrappers_fork_child(void) { pthread_mutex_init(&wrap_mu, NULL); }
static hs_wrapper_t *global_wrappers; /* protected by wrap_mu */
static uint32_t nglobal_wrappers;     /* protected by wrap_mu */

/* Appends a wrapper. The steps are ordered so that the list is whole at
 * every instant a fork can stop this thread (the child then makes wrap_mu
 * anew and reads the list): the new array is complete before it is
 * published, the count grows after, and the old array is freed last - a
 * realloc would free it while *arr still named it. */
static int push_wrapper(hs_wrapper_t **arr, uint32_t *n, int kind,
                        const char *pattern) {
  if (kind < HS_WRAP_FUNCTION || kind > HS_WRAP_MODULE || !pattern)
    return HS_EINVAL;
  hs_wrapper_t *old = *arr, *na = malloc((*n + 1) * sizeof *na);
  char *copy = strdup(pattern);
  if (!na || !copy) {
    free(na);
    free(copy);
    return HS_ENOMEM;
  }
  if (*n)
    memcpy(na, old, *n * sizeof *na);
  na[*n].kind = kind;
  na[*n].pattern = copy;
  atomic_signal_fence(memory_order_seq_cst);
  *arr = na;
  atomic_signal_fence(memory_order_seq_cst);
  ++*n;
  atomic_signal_fence(memory_order_seq_cst);
  free(old);
  return 0;
}

int hs_add_wrapper(int kind, const char *pattern) {
  hs__guard_enter();
  pthread_mutex_lock(&wrap_mu);
  int rc = push_wrapper(&global_wrappers, &nglobal_wrappers, kind, pattern);
  pthread_mutex_unlock(&wrap_mu);
  hs__guard_exit();
  return rc;
}

int hs__snapshot_init_wrappers(struct hs_snapshot *s) {
  int rc = 0;
  size_t nd = sizeof default_wrappers / sizeof default_wrappers[0];
  for (size_t i = 0; i < nd && rc == 0; i++)
    rc = push_wrapper(&s->wrappers, &s->nwrappers, default_wrappers[i].kind,
                      default_wrappers[i].pattern);
  pthread_mutex_lock(&wrap_mu);
  for (uint32_t i = 0; i < nglobal_wrappers && rc == 0; i++)
    rc = push_wrapper(&s->wrappers, &s->nwrappers, global_wrappers[i].kind,
                      global_wrappers[i].pattern);
  pthread_mutex_unlock(&wrap_mu);
  return rc;
}

void hs__snapshot_locks_init(struct hs_snapshot *s) {
  pthread_rwlock_init(&s->settings_lock, NULL);
  pthread_mutex_init(&s->symbolize_mu, NULL);
}

struct hs_snapshot *hs__snapshot_new(void) {
  struct hs_snapshot *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  hs__snapshot_locks_init(s);
  s->program = HS_NOSTR;
  if (hs__snapshot_init_wrappers(s) != 0) {
    hs_snapshot_free(s);
    return NULL;
  }
  return s;
}

int hs_snapshot_add_wrapper(hs_snapshot_t *snap, int kind,
                            const char *pattern) {
  if (!snap)
    return HS_EINVAL;
  hs__guard_enter();
  pthread_rwlock_wrlock(&snap->settings_lock);
  int rc = push_wrapper(&snap->wrappers, &snap->nwrappers, kind, pattern);
  pthread_rwlock_unlock(&snap->settings_lock);
  hs__guard_exit();
  return rc;
}

void hs_snapshot_set_raw(hs_snapshot_t *snap, int raw) {
  if (!snap)
    return;
  pthread_rwlock_wrlock(&snap->settings_lock);
  snap->raw_mode = raw != 0;
  pthread_rwlock_unlock(&snap->settings_lock);
}

void hs_snapshot_free(hs_snapshot_t *s) {
  if (!s)
    return;
  hs__guard_enter();
  hs__modules_free(&s->modules);
  free(s->raw);
  free(s->raw_first);
  free(s->raw_n);
  free(s->strtab);
  free(s->locs);
  free(s->stack_locs);
  free(s->stacks);
  free(s->groups);
  free(s->ctrs);
  free(s->group_leak);
  for (uint32_t i = 0; i < s->nwrappers; i++)
    free(s->wrappers[i].pattern);
  free(s->wrappers);
  free(s->program_path);
  pthread_rwlock_destroy(&s->settings_lock);
  pthread_mutex_destroy(&s->symbolize_mu);
  free(s);
  hs__guard_exit();
}

/* What a group stands for. Sampled with rate R, a block of size n was
 * recorded with probability p = 1 - exp(-n/R); each recorded block stands
 * for 1/p blocks, which makes the sums unbiased estimates. */
void hs__group_estimate(const struct hs_snapshot *s, const hs_group_t *g,
                        uint64_t *bytes, uint64_t *count) {
  if (!s->sample_rate || !g->size) {
    *bytes = g->size * g->count;
    *count = g->count;
    return;
  }
  double p = -expm1(-(double)g->size / (double)s->sample_rate);
  double c = (double)g->count / p;
  *count = (uint64_t)llround(c);
  *bytes = (uint64_t)llround(c * (double)g->size);
}

/* ---- taking a snapshot ---- */

typedef struct collect {
  u64map_t groups_by_key; /* (domain, stack id, size) hash -> group index */
  u64map_t stack_ids;     /* stack id -> snapshot stack index */
  hs_group_t *groups;
  uint64_t ngroups, groups_cap;
  uint32_t *leaks; /* per group, its HS_LEAK_* class */
  uint64_t leaks_cap;
  int leak_checked;
  const hs_class_source_t *classes; /* when leak_checked */
  uint32_t *ids; /* snapshot stack index -> stack id */
  uint64_t nids, ids_cap;
  hs_snap_ctr_t *ctrs; /* snapshot stack index -> churn */
  uint64_t ctrs_cap;
  int err;
} collect_t;

/* Groups are keyed by a hash of (domain, stack, size) and checked exactly,
 * so a hash collision only costs a second probe sequence. */
static void collect_one(const hs_trace_rec_t *t, void *arg) {
  collect_t *c = arg;
  int found;
  if (c->err)
    return;
  uint32_t *sidx = u64map_slot(&c->stack_ids, t->stack, &found);
  if (!sidx)
    goto oom;
  if (!found) {
    if (hs__reserve(&c->ids, &c->ids_cap, c->nids + 1, sizeof *c->ids) != 0)
      goto oom;
    *sidx = (uint32_t)c->nids;
    c->ids[c->nids++] = t->stack;
  }
  uint32_t stack = *sidx;
  /* Blocks of one site split by the class the last leak check gave them. */
  uint32_t leak = c->leak_checked && t->domain == 0
                      ? c->classes->kind_of(t->ptr, t->size, t->stack)
                      : 0;
  for (uint64_t key = mix64(((uint64_t)t->domain << 32 | stack) ^
                            mix64(t->size ^ ((uint64_t)leak << 56)));
       ; key++) {
    uint32_t *gi = u64map_slot(&c->groups_by_key, key, &found);
    if (!gi)
      goto oom;
    if (!found) {
      if (hs__reserve(&c->groups, &c->groups_cap, c->ngroups + 1,
                  sizeof *c->groups) != 0)
        goto oom;
      if (hs__reserve(&c->leaks, &c->leaks_cap, c->ngroups + 1,
                      sizeof *c->leaks) != 0)
        goto oom;
      *gi = (uint32_t)c->ngroups;
      c->leaks[c->ngroups] = leak;
      c->groups[c->ngroups++] = (hs_group_t){t->domain, stack, t->size, 1};
      return;
    }
    hs_group_t *g = &c->groups[*gi];
    if (g->domain == t->domain && g->stack == stack && g->size == t->size &&
        c->leaks[*gi] == leak) {
      g->count++;
      return;
    }
  }
oom:
  c->err = HS_ENOMEM;
}

/* Every interned stack that allocated joins the snapshot, whether or not
 * a block of it is still live: churn is mostly of blocks long gone. */
static void collect_ctr(uint32_t id, const hs_stack_ctr_t *k, void *arg) {
  collect_t *c = arg;
  int found;
  if (c->err || !k->allocs)
    return;
  uint32_t *sidx = u64map_slot(&c->stack_ids, id, &found);
  if (!sidx)
    goto oom;
  if (!found) {
    if (hs__reserve(&c->ids, &c->ids_cap, c->nids + 1, sizeof *c->ids) != 0)
      goto oom;
    *sidx = (uint32_t)c->nids;
    c->ids[c->nids++] = id;
  }
  uint64_t old = c->ctrs_cap;
  if (hs__reserve(&c->ctrs, &c->ctrs_cap, c->nids, sizeof *c->ctrs) != 0)
    goto oom;
  if (c->ctrs_cap > old)
    memset(c->ctrs + old, 0, (c->ctrs_cap - old) * sizeof *c->ctrs);
  hs_snap_ctr_t *o = &c->ctrs[*sidx];
  /* Counts are kept in 1/65536 blocks (sampled weights): round. */
#define CNT(v) (((v) + HS_CTR_ONE / 2) / HS_CTR_ONE)
  o->allocs = CNT(k->allocs);
  o->bytes = k->bytes;
  o->frees = CNT(k->frees);
  o->temp = CNT(k->temp);
  o->temp_time = CNT(k->temp_time);
  for (int b = 0; b < HS_LIFETIME_BUCKETS && b < HS_CTR_BUCKETS; b++)
    o->hist[b] = CNT(k->hist[b]);
#undef CNT
  return;
oom:
  c->err = HS_ENOMEM;
}

static int read_program(struct hs_snapshot *s) {
  char path[4096];
  ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
  path[n > 0 ? n : 0] = '\0';
  s->program = hs__strtab_add(s, path);
  s->program_path = strdup(path);
  return s->program == HS_NOSTR || !s->program_path ? HS_ENOMEM : 0;
}

int hs_take_snapshot(hs_snapshot_t **out) {
  if (!out)
    return HS_EINVAL;
  *out = NULL;
  if (!hs_is_tracing())
    return HS_ENOTTRACING;
  hs__guard_enter();
  int rc = HS_ENOMEM;
  collect_t c = {0};
  struct hs_snapshot *s = hs__snapshot_new();
  if (!s)
    goto done;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  s->time_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
  s->pid = (uint64_t)getpid();
  hs_stats_t st;
  hs_get_stats(&st, sizeof st);
  s->nframe = (uint32_t)hs_get_traceback_limit();
  s->traced_current = st.traced_current;
  s->traced_peak = st.traced_peak;
  s->dropped_traces = st.dropped_traces;
  s->dropped_bytes = st.dropped_bytes;
  s->tracer_memory = st.tracer_memory;
  s->sample_rate = hs_get_sample_rate();
  if ((rc = read_program(s)) != 0)
    goto done;

  s->temp_ns = hs_get_temporary_threshold();
  const hs_class_source_t *cs =
      atomic_load_explicit(&class_source, memory_order_acquire);
  int locked = cs ? cs->lock() : 0;
  c.leak_checked = locked && cs->have();
  c.classes = cs;
  hs__traces_foreach(collect_one, &c);
  if (cs)
    cs->unlock(locked);
  if (c.err == 0)
    hs__stacks_foreach(collect_ctr, &c);
  if ((rc = c.err) != 0)
    goto done;
  /* Every snapshot taken live carries churn, zero for stacks that had
   * none to report. */
  {
    uint64_t old = c.ctrs_cap;
    if (hs__reserve(&c.ctrs, &c.ctrs_cap, c.nids + 1, sizeof *c.ctrs) != 0) {
      rc = HS_ENOMEM;
      goto done;
    }
    if (c.ctrs_cap > old)
      memset(c.ctrs + old, 0, (c.ctrs_cap - old) * sizeof *c.ctrs);
  }

  /* Fetch each distinct stack once. A stack cleared since its trace was
   * copied (hs_clear_traces racing with us) drops that trace. */
  rc = HS_ENOMEM;
  s->raw_first = malloc((c.nids + 1) * sizeof *s->raw_first);
  s->raw_n = malloc((c.nids + 1) * sizeof *s->raw_n);
  uint64_t raw_cap = 0, nraw = 0;
  if (!s->raw_first || !s->raw_n)
    goto done;
  uintptr_t frames[HS_MAX_FRAMES];
  for (uint64_t i = 0; i < c.nids; i++) {
    int n = hs__stack_get(c.ids[i], frames, HS_MAX_FRAMES);
    if (n > HS_MAX_FRAMES)
      n = HS_MAX_FRAMES;
    if (hs__reserve(&s->raw, &raw_cap, nraw + (uint64_t)(n > 0 ? n : 0),
                sizeof *s->raw) != 0)
      goto done;
    s->raw_first[i] = (uint32_t)nraw;
    s->raw_n[i] = n > 0 ? (uint32_t)n : UINT32_MAX;
    if (n > 0) {
      memcpy(s->raw + nraw, frames, (size_t)n * sizeof *frames);
      nraw += (uint64_t)n;
    }
  }
  s->nstacks = (uint32_t)c.nids;
  uint64_t kept = 0;
  for (uint64_t g = 0; g < c.ngroups; g++)
    if (s->raw_n[c.groups[g].stack] != UINT32_MAX) {
      c.leaks[kept] = c.leaks[g];
      c.groups[kept++] = c.groups[g];
    }
  for (uint64_t i = 0; i < c.nids; i++)
    if (s->raw_n[i] == UINT32_MAX) {
      s->raw_n[i] = 0;
      memset(&c.ctrs[i], 0, sizeof c.ctrs[i]);
    }
  s->ctrs = c.ctrs;
  c.ctrs = NULL;
  s->groups = c.groups;
  s->ngroups = kept;
  c.groups = NULL;
  if (c.leak_checked) {
    /* Never NULL when checked: NULL says "no classes". */
    s->group_leak = c.leaks ? c.leaks : calloc(1, sizeof *s->group_leak);
    c.leaks = NULL;
  }
  rc = hs__modules_capture(&s->modules);
  if (rc == 0)
    rc = hs__modmap_merge_into(&s->modules);
done:
  u64map_free(&c.groups_by_key);
  u64map_free(&c.stack_ids);
  free(c.groups);
  free(c.leaks);
  free(c.ids);
  free(c.ctrs);
  if (rc != 0) {
    hs_snapshot_free(s);
    s = NULL;
  }
  *out = s;
  hs__guard_exit();
  return rc;
}

/* ---- symbolization ---- */

/* libdw is not thread-safe: one symbolization at a time per process. The
 * symbolizer is kept from one to the next (moved over to each snapshot's
 * modules), so that the debug information it has read - decompressed and
 * parsed, tens of milliseconds for libc's - is read once per process. */
static pthread_mutex_t sym_mu = PTHREAD_MUTEX_INITIALIZER;
static hs_symbolizer_t *sym_kept; /* by sym_mu */
/* The warm-up's symbolizer, read on its own and handed over without a
 * lock (see hs__symbols_warm); the next sym_for takes it. */
static hs_symbolizer_t *_Atomic sym_offer;
/* The warm-up's progress, for a symbolization that comes while it runs:
 * such a one waits for the offer as long as modules keep being read (a
 * CPU is idle for the warm-up then, and the read is done once), and does
 * the work itself once 250 ms pass without one (a busy machine, where
 * the lowest priority gets almost no time). */
static atomic_int warm_running;
static atomic_uint warm_progress;

/* The kept symbolizer over mods, or a new one; NULL when out of memory.
 * sym_mu held. */
static hs_symbolizer_t *sym_for(const hs_module_list_t *mods) {
  hs_symbolizer_t *offer = atomic_exchange(&sym_offer, NULL);
  if (offer) {
    /* The warm-up read every module the stacks run through; what the
     * kept one read for an earlier snapshot is a subset of those modules
     * in most programs, so the offer wins. */
    hs__symbolizer_free(sym_kept);
    sym_kept = offer;
  }
  if (sym_kept && hs__symbolizer_rebind(sym_kept, mods) == 0)
    return sym_kept;
  hs__symbolizer_free(sym_kept);
  sym_kept = hs__symbolizer_new(mods);
  return sym_kept;
}

/* Set while sym_mu is held and the kept symbolizer may be mid-change. */
static atomic_int sym_busy;

static void sym_lock(void) {
  pthread_mutex_lock(&sym_mu);
  atomic_store(&sym_busy, 1);
}

static void sym_unlock(void) {
  atomic_store(&sym_busy, 0);
  pthread_mutex_unlock(&sym_mu);
}

/* A fork while another thread symbolizes (the background warm-up, say)
 * leaves the child's lock taken by a thread that does not exist there,
 * and its exit snapshot would wait for ever. The fork does not wait: the
 * child makes the lock anew, and drops a symbolizer caught mid-change
 * (leaked: freeing what was being changed is not safe). */
void hs__symbols_fork_child(void) {
  pthread_mutex_init(&sym_mu, NULL);
  /* The process-wide wrappers are whole at any instant push_wrapper can be
   * stopped, so only their lock needs making. */
  pthread_mutex_init(&wrap_mu, NULL);
  if (atomic_load(&sym_busy)) {
    sym_kept = NULL;
    atomic_store(&sym_busy, 0);
  }
  atomic_store(&warm_running, 0); /* the warm-up did not survive the fork */
}

void hs__symbols_drop(void) {
  sym_lock();
  hs__symbolizer_free(sym_kept);
  sym_kept = NULL;
  hs__symbolizer_free(atomic_exchange(&sym_offer, NULL));
  sym_unlock();
}

static void warm_signal(void) {
  atomic_fetch_add(&warm_progress, 1);
  hs__futex_wake(&warm_progress);
}

static void warm_wait(void) {
  while (atomic_load(&warm_running)) {
    unsigned p = atomic_load(&warm_progress);
    if (!atomic_load(&warm_running))
      break;
    hs__futex_wait(&warm_progress, p, 250000000L);
    if (atomic_load(&warm_progress) == p)
      break; /* no module read in 250 ms */
  }
}

/* Stacks the warm-up looks through for the modules they run through. */
#define WARM_STACKS 4096

int hs__symbols_warm(const atomic_int *stop) {
  hs__guard_enter();
  hs_module_list_t mods = {0};
  uintptr_t *addrs = NULL, frames[HS_MAX_FRAMES];
  uint8_t *seen = NULL;
  uint32_t n = 0;
  if (hs__modules_capture(&mods) != 0 || hs__modmap_merge_into(&mods) != 0)
    goto out;
  addrs = malloc((mods.count ? mods.count : 1) * sizeof *addrs);
  seen = calloc(mods.count ? mods.count : 1, 1);
  if (!addrs || !seen)
    goto out;
  /* One return address per module the stacks run through: reading a
   * module's debug information is the cost, and what else an address
   * needs (its compilation unit's lines) is the snapshot's to pay for the
   * addresses it has. The first stacks of each shard are enough to name
   * the modules, where a program whose stacks all differ has hundreds of
   * thousands. */
  for (unsigned sh = 0; sh < HS_STACK_SHARDS && n < mods.count; sh++) {
    for (uint32_t idx = 0; idx < WARM_STACKS / HS_STACK_SHARDS; idx++) {
      int depth = hs__stack_get(idx << HS_STACK_SHARD_BITS | sh, frames,
                                HS_MAX_FRAMES);
      if (depth < 0 || atomic_load(stop))
        break;
      for (int k = 0; k < depth && k < HS_MAX_FRAMES; k++) {
        int mi = hs__modules_find(&mods, frames[k]);
        if (mi >= 0 && !seen[mi]) {
          seen[mi] = 1;
          addrs[n++] = frames[k];
        }
      }
    }
  }
  /* Read into a symbolizer of its own, without sym_mu: the warm-up runs
   * at the lowest priority, and on a busy machine a module's read there
   * took 40 s, which a snapshot waiting on the lock waited too (its
   * writer's join timed out and growth snapshots were lost). A snapshot
   * taken meanwhile reads what it needs itself; the result is offered
   * once whole, and taken by the next symbolization. */
  hs_symframe_t fr[64];
  hs_symbolizer_t *own = n ? hs__symbolizer_new(&mods) : NULL;
  if (own) {
    atomic_store(&warm_running, 1);
    for (uint32_t i = 0; i < n && !atomic_load(stop); i++) {
      (void)hs__symbolize(own, addrs[i], fr, 64);
      warm_signal();
    }
    /* Stopped too (the exit): what was read is the exit snapshot's. */
    hs__symbolizer_free(atomic_exchange(&sym_offer, own));
    atomic_store(&warm_running, 0);
    warm_signal();
  }
out:
  hs__modules_free(&mods);
  free(addrs);
  free(seen);
  hs__guard_exit();
  return (int)n;
}

static uint64_t loc_hash(const hs_loc_t *l) {
  return mix64(((uint64_t)l->function << 32 | l->file) ^
               mix64(((uint64_t)l->line << 32 | (uint32_t)l->module) ^
                     mix64(l->offset)));
}

static int intern_symbolized(struct hs_snapshot *s, hs_symbolizer_t *sym) {
  u64map_t strs = {0}, locmap = {0};
  uint64_t locs_cap = 0, sl_cap = 0, nlocs = 0, nsl = 0;
  int rc = HS_ENOMEM;
  hs_symframe_t fr[64];
  s->stacks = calloc(s->nstacks ? s->nstacks : 1, sizeof *s->stacks);
  if (!s->stacks)
    goto out;
  for (uint32_t st = 0; st < s->nstacks; st++) {
    s->stacks[st].first = (uint32_t)nsl;
    for (uint32_t k = 0; k < s->raw_n[st]; k++) {
      int n = hs__symbolize(sym, s->raw[s->raw_first[st] + k], fr, 64);
      if (n < 0)
        goto out;
      for (int f = 0; f < n; f++) {
        hs_loc_t l = {HS_NOSTR, HS_NOSTR, fr[f].line, fr[f].module,
                      fr[f].offset};
        /* The symbolizer interns its strings, so a pointer names a
         * string: map pointers to strtab offsets. */
        const char *strsrc[2] = {fr[f].function, fr[f].file};
        uint32_t *dst[2] = {&l.function, &l.file};
        for (int i = 0; i < 2; i++) {
          if (!strsrc[i])
            continue;
          int found;
          uint32_t *off = u64map_slot(&strs, (uint64_t)(uintptr_t)strsrc[i], &found);
          if (!off)
            goto out;
          if (!found && (*off = hs__strtab_add(s, strsrc[i])) == HS_NOSTR)
            goto out;
          *dst[i] = *off;
        }
        /* Locations are interned by content, probing past collisions. */
        uint32_t li;
        for (uint64_t key = loc_hash(&l);; key++) {
          int found;
          uint32_t *v = u64map_slot(&locmap, key, &found);
          if (!v)
            goto out;
          if (!found) {
            if (hs__reserve(&s->locs, &locs_cap, nlocs + 1, sizeof *s->locs) != 0)
              goto out;
            *v = (uint32_t)nlocs;
            s->locs[nlocs++] = l;
          } else if (memcmp(&s->locs[*v], &l, sizeof l) != 0) {
            continue;
          }
          li = *v;
          break;
        }
        if (hs__reserve(&s->stack_locs, &sl_cap, nsl + 1, sizeof *s->stack_locs))
          goto out;
        s->stack_locs[nsl++] = li;
      }
    }
    s->stacks[st].nloc = (uint32_t)nsl - s->stacks[st].first;
  }
  s->nlocs = (uint32_t)nlocs;
  s->nstack_locs = (uint32_t)nsl;
  rc = 0;
out:
  u64map_free(&strs);
  u64map_free(&locmap);
  return rc;
}

/* The symbolized stage built from the raw one; symbolize_mu held. */
static int symbolize_locked(struct hs_snapshot *s) {
  int rc = HS_ENOMEM;
  uint64_t frames = 0;
  for (uint32_t st = 0; st < s->nstacks; st++)
    frames += s->raw_n[st];
  if (!frames) {
    /* Nothing to resolve (a program that freed everything): no wait for
     * the background warm-up, nor for the lock. */
    rc = intern_symbolized(s, NULL);
  } else {
    warm_wait();
    sym_lock();
    hs_symbolizer_t *sym = sym_for(&s->modules);
    if (sym)
      rc = intern_symbolized(s, sym);
    sym_unlock();
  }
  if (rc == 0) {
    free(s->raw);
    free(s->raw_first);
    free(s->raw_n);
    s->raw = NULL;
    s->raw_first = s->raw_n = NULL;
    atomic_store_explicit(&s->symbolized, 1, memory_order_release);
  } else {
    free(s->stacks);
    free(s->locs);
    free(s->stack_locs);
    s->stacks = NULL;
    s->locs = NULL;
    s->stack_locs = NULL;
    s->nlocs = s->nstack_locs = 0;
  }
  return rc;
}

int hs__snapshot_symbolize(struct hs_snapshot *s) {
  /* Acquire pairs with the release in symbolize_locked: a thread that sees
   * the flag sees the whole stage, and the raw one is never read again. */
  if (atomic_load_explicit(&s->symbolized, memory_order_acquire))
    return 0;
  hs__guard_enter();
  pthread_mutex_lock(&s->symbolize_mu);
  int rc = 0;
  if (!atomic_load_explicit(&s->symbolized, memory_order_relaxed))
    rc = symbolize_locked(s);
  pthread_mutex_unlock(&s->symbolize_mu);
  hs__guard_exit();
  return rc;
}

int hs_snapshot_get_info(const hs_snapshot_t *s, hs_snapshot_info_t *out,
                         size_t size) {
  if (!s)
    return HS_EINVAL;
  hs_snapshot_info_t in = {0};
  in.pid = s->pid;
  in.time_ns = s->time_ns;
  in.traceback_limit = (int)s->nframe;
  in.traced_current = s->traced_current;
  in.traced_peak = s->traced_peak;
  in.dropped_traces = s->dropped_traces;
  in.dropped_bytes = s->dropped_bytes;
  in.tracer_memory = s->tracer_memory;
  for (uint64_t g = 0; g < s->ngroups; g++) {
    uint64_t bytes, count;
    hs__group_estimate(s, &s->groups[g], &bytes, &count);
    in.size += bytes;
    in.count += count;
  }
  in.sample_rate = s->sample_rate;
  in.has_churn = s->ctrs != NULL;
  in.temporary_ns = s->temp_ns;
  for (uint32_t i = 0; s->ctrs && i < s->nstacks; i++) {
    in.alloc_size += s->ctrs[i].bytes;
    in.alloc_count += s->ctrs[i].allocs;
    in.temporary += s->ctrs[i].temp;
    in.temporary_time += s->ctrs[i].temp_time;
  }
  in.stacks = s->nstacks;
  in.modules = s->modules.count;
  /* Not strtab while another thread may be symbolizing (it grows strtab,
   * moving it): the owned copy never moves. A loaded snapshot's strtab
   * never grows. */
  in.program = s->program_path          ? s->program_path
               : s->program != HS_NOSTR ? s->strtab + s->program
                                        : "";
  return hs__fill_versioned(out, size, &in, sizeof in);
}

/* A deep copy with the groups chosen by keep (NULL keeps all). */
HS_HIDDEN int hs__snapshot_copy(const struct hs_snapshot *s,
                                const uint8_t *keep, struct hs_snapshot **out);
int hs__snapshot_copy(const struct hs_snapshot *s, const uint8_t *keep,
                      struct hs_snapshot **out) {
  struct hs_snapshot *c = calloc(1, sizeof *c);
  if (!c)
    return HS_ENOMEM;
  /* Field by field, not *c = *s: s's locks are in use by other threads
   * and its raw stage is gone (s is symbolized). */
  hs__snapshot_locks_init(c);
  c->pid = s->pid;
  c->time_ns = s->time_ns;
  c->nframe = s->nframe;
  c->traced_current = s->traced_current;
  c->traced_peak = s->traced_peak;
  c->dropped_traces = s->dropped_traces;
  c->dropped_bytes = s->dropped_bytes;
  c->tracer_memory = s->tracer_memory;
  c->program = s->program;
  c->sample_rate = s->sample_rate;
  atomic_store_explicit(&c->symbolized, 1, memory_order_relaxed);
  c->strtab_len = s->strtab_len;
  c->nlocs = s->nlocs;
  c->nstack_locs = s->nstack_locs;
  c->nstacks = s->nstacks;
  c->ngroups = s->ngroups;
  c->raw_mode = s->raw_mode;
  c->temp_ns = s->temp_ns; /* ctrs is copied below */
  int rc = HS_ENOMEM;
  if (s->program_path && !(c->program_path = strdup(s->program_path)))
    goto fail;
#define DUP(field, n)                                                         \
  do {                                                                        \
    size_t bytes_ = (size_t)(n) * sizeof *s->field;                           \
    c->field = malloc(bytes_ ? bytes_ : 1);                                   \
    if (!c->field)                                                            \
      goto fail;                                                              \
    if (bytes_)                                                               \
      memcpy(c->field, s->field, bytes_);                                     \
  } while (0)
  DUP(strtab, s->strtab_len);
  c->strtab_cap = s->strtab_len;
  DUP(locs, s->nlocs);
  DUP(stack_locs, s->nstack_locs);
  DUP(stacks, s->nstacks);
  DUP(groups, s->ngroups);
  if (s->ctrs)
    DUP(ctrs, s->nstacks);
  if (s->group_leak)
    DUP(group_leak, s->ngroups);
#undef DUP
  if (keep) {
    uint64_t n = 0;
    for (uint64_t g = 0; g < s->ngroups; g++)
      if (keep[g]) {
        if (c->group_leak)
          c->group_leak[n] = s->group_leak[g];
        c->groups[n++] = s->groups[g];
      }
    c->ngroups = n;
    /* keep's tail, one byte per stack, says whose churn stays. */
    for (uint32_t i = 0; c->ctrs && i < s->nstacks; i++)
      if (!keep[s->ngroups + i])
        memset(&c->ctrs[i], 0, sizeof c->ctrs[i]);
  }
  if (hs__modules_copy(&c->modules, &s->modules) != 0)
    goto fail;
  for (uint32_t i = 0; i < s->nwrappers; i++)
    if (push_wrapper(&c->wrappers, &c->nwrappers, s->wrappers[i].kind,
                     s->wrappers[i].pattern) != 0)
      goto fail;
  *out = c;
  return 0;
fail:
  hs_snapshot_free(c);
  return rc;
}

/* Whether loc l is an allocation wrapper under s's patterns. */
HS_HIDDEN int hs__loc_is_wrapper(const struct hs_snapshot *s,
                                 const hs_loc_t *l);
int hs__loc_is_wrapper(const struct hs_snapshot *s, const hs_loc_t *l) {
  const char *fn = hs__str(s, l->function);
  const char *file = hs__str(s, l->file);
  const char *mod = NULL;
  if (l->module >= 0 && (uint32_t)l->module < s->modules.count) {
    mod = s->modules.mods[l->module].path;
    const char *slash = mod ? strrchr(mod, '/') : NULL;
    if (slash)
      mod = slash + 1;
  }
  for (uint32_t i = 0; i < s->nwrappers; i++) {
    const char *subject = s->wrappers[i].kind == HS_WRAP_FUNCTION ? fn
                          : s->wrappers[i].kind == HS_WRAP_FILE   ? file
                                                                  : mod;
    if (subject && fnmatch(s->wrappers[i].pattern, subject, 0) == 0)
      return 1;
  }
  return 0;
}
