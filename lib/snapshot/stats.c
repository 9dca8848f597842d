/* stats.c - statistics, compare_to and filters over symbolized snapshots,
 * with tracemalloc's grouping, sort orders and filter semantics. Keys are
 * compared by content (file, line, function, module), never by address, so
 * snapshots from different runs and machines compare. */
#include <fnmatch.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot.h"

HS_HIDDEN int hs__loc_is_wrapper(const struct hs_snapshot *s,
                                 const hs_loc_t *l);
HS_HIDDEN int hs__snapshot_copy(const struct hs_snapshot *s,
                                const uint8_t *keep, struct hs_snapshot **out);

/* What hs_statistics_t hides: the sorted entries and the frames their keys
 * point into. Immutable once run() returns it. */
struct hs_statistics {
  hs_statistics_info_t info;
  size_t churn_only; /* entries past info.count whose blocks are all freed
                        (in both snapshots): statistics of live memory
                        leave them out, as tracemalloc does; a sort by
                        another figure adds them to the count */
  hs_statistic_t *stats;      /* statistics: info.count entries, else NULL */
  hs_statistic_diff_t *diffs; /* compare: info.count entries, else NULL */
  hs_frame_t *frames;         /* storage for every entry's key */
  uint8_t *kinds;             /* HS_KEY_BY_LEAK: each entry's class (as
                                 stats or diffs); else NULL */
};

/* ---- sites ---- */

/* Per-pass cache of which locs are wrappers: 0 unknown, 1 yes, 2 no. */
typedef struct site_ctx {
  const struct hs_snapshot *s;
  uint8_t *wrap;
} site_ctx_t;

static int is_wrapper(site_ctx_t *c, uint32_t li) {
  if (!c->wrap[li])
    c->wrap[li] = hs__loc_is_wrapper(c->s, &c->s->locs[li]) ? 1 : 2;
  return c->wrap[li] == 1;
}

/* The site of stack st as a position in stack_locs: the innermost frame
 * with a source line that is not a wrapper; else the innermost frame that
 * is not a wrapper; else frame 0. Raw mode: frame 0. */
static uint32_t site_of(site_ctx_t *c, uint32_t st) {
  const hs_snap_stack_t *k = &c->s->stacks[st];
  if (c->s->raw_mode || k->nloc == 0)
    return k->first;
  uint32_t fallback = UINT32_MAX;
  for (uint32_t i = k->first; i < k->first + k->nloc; i++) {
    uint32_t li = c->s->stack_locs[i];
    if (is_wrapper(c, li))
      continue;
    if (c->s->locs[li].file != HS_NOSTR)
      return i;
    if (fallback == UINT32_MAX)
      fallback = i;
  }
  return fallback != UINT32_MAX ? fallback : k->first;
}

/* ---- key frames ---- */

static const char *module_path(const struct hs_snapshot *s, int32_t m) {
  return m >= 0 && (uint32_t)m < s->modules.count ? s->modules.mods[m].path
                                                  : NULL;
}

/* The frame of loc li as key type key sees it: fields outside the key are
 * left empty so that equal keys are equal frames. */
static hs_frame_t key_frame(const struct hs_snapshot *s, uint32_t li,
                            hs_key_t key) {
  const hs_loc_t *l = &s->locs[li];
  hs_frame_t f = {0};
  const char *file = hs__str(s, l->file), *fn = hs__str(s, l->function);
  const char *mod = module_path(s, l->module);
  switch (key) {
  case HS_KEY_FILENAME:
    if (file)
      f.filename = file;
    else
      f.module = mod;
    if (!file && !mod)
      f.offset = l->offset;
    break;
  case HS_KEY_FUNCTION:
    f.function = fn;
    f.filename = file;
    if (!file)
      f.module = mod;
    if (!fn)
      f.offset = l->offset;
    break;
  case HS_KEY_LINENO:
  case HS_KEY_TRACEBACK:
    f.filename = file;
    f.lineno = file ? l->line : 0;
    f.function = fn;
    if (!file)
      f.module = mod;
    if (!file && !fn)
      f.offset = l->offset;
    break;
  }
  return f;
}

static uint64_t hash_str(uint64_t h, const char *p) {
  if (!p)
    return h * 0x100000001b3ull ^ 0x5bd1e995u;
  for (; *p; p++)
    h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
  return (h ^ 0xff) * 0x100000001b3ull;
}

static uint64_t hash_u64(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h * 0x100000001b3ull;
}

static uint64_t hash_frames(const hs_frame_t *f, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull ^ n;
  for (size_t i = 0; i < n; i++) {
    h = hash_str(h, f[i].filename);
    h = hash_u64(h, f[i].lineno);
    h = hash_str(h, f[i].function);
    h = hash_str(h, f[i].module);
    h = hash_u64(h, f[i].offset);
  }
  return h;
}

static int cmp_str(const char *a, const char *b) {
  return strcmp(a ? a : "", b ? b : "");
}

static int cmp_frame(const hs_frame_t *a, const hs_frame_t *b) {
  int c = cmp_str(a->filename, b->filename);
  if (c)
    return c;
  if (a->lineno != b->lineno)
    return a->lineno < b->lineno ? -1 : 1;
  if ((c = cmp_str(a->function, b->function)) != 0)
    return c;
  if ((c = cmp_str(a->module, b->module)) != 0)
    return c;
  return a->offset < b->offset ? -1 : a->offset > b->offset;
}

static int same_str(const char *a, const char *b) {
  return a == b || (a && b && strcmp(a, b) == 0);
}

static int same_frames(const hs_frame_t *a, const hs_frame_t *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (a[i].lineno != b[i].lineno || a[i].offset != b[i].offset ||
        !same_str(a[i].filename, b[i].filename) ||
        !same_str(a[i].function, b[i].function) ||
        !same_str(a[i].module, b[i].module))
      return 0;
  return 1;
}

/* ---- the grouping table, shared by statistics and compare ---- */

typedef struct entry {
  uint64_t hash;
  uint64_t first; /* into frames */
  uint32_t nframe;
  uint32_t site; /* index of the site within the key's frames */
  uint32_t leak; /* the class, with HS_KEY_BY_LEAK; else 0 */
  uint64_t size[2], count[2]; /* [0] old snapshot, [1] new */
  uint64_t asize[2], acount[2], frees[2], temp[2], temp_time[2]; /* churn */
  uint64_t hist[HS_LIFETIME_BUCKETS]; /* the new snapshot's */
} entry_t;

typedef struct group_by {
  hs_key_t key;
  int by_leak;
  entry_t *ents;
  uint64_t nents, ents_cap;
  hs_frame_t *frames;
  uint64_t nframes, frames_cap;
  uint64_t *slots; /* entry index + 1; 0 empty */
  uint64_t mask;
} group_by_t;

static int rehash(group_by_t *g) {
  uint64_t ncap = g->slots ? (g->mask + 1) * 2 : 1024;
  uint64_t *ns = calloc(ncap, sizeof *ns);
  if (!ns)
    return HS_ENOMEM;
  for (uint64_t e = 0; e < g->nents; e++) {
    uint64_t j = g->ents[e].hash & (ncap - 1);
    while (ns[j])
      j = (j + 1) & (ncap - 1);
    ns[j] = e + 1;
  }
  free(g->slots);
  g->slots = ns;
  g->mask = ncap - 1;
  return 0;
}

/* The entry for key frames f[0..n) and class leak, created empty if new;
 * -1 on ENOMEM. */
static int64_t entry_for(group_by_t *g, const hs_frame_t *f, uint32_t n,
                         uint32_t leak) {
  uint64_t h = hash_frames(f, n) ^ ((uint64_t)leak * 0x9e3779b97f4a7c15ull);
  if (!g->slots || (g->nents + 1) * 2 > g->mask + 1)
    if (rehash(g) != 0)
      return -1;
  uint64_t j = h & g->mask;
  for (; g->slots[j]; j = (j + 1) & g->mask) {
    entry_t *e = &g->ents[g->slots[j] - 1];
    if (e->hash == h && e->nframe == n && e->leak == leak &&
        same_frames(&g->frames[e->first], f, n))
      return (int64_t)(g->slots[j] - 1);
  }
  if (hs__reserve(&g->ents, &g->ents_cap, g->nents + 1, sizeof *g->ents) ||
      /* + 1: frames is never NULL once an entry exists, even when every
       * key is an empty traceback (&NULL[0] is undefined). */
      hs__reserve(&g->frames, &g->frames_cap, g->nframes + n + 1,
                  sizeof *g->frames))
    return -1;
  entry_t *e = &g->ents[g->nents];
  memset(e, 0, sizeof *e);
  e->hash = h;
  e->leak = leak;
  e->first = g->nframes;
  e->nframe = n;
  memcpy(&g->frames[g->nframes], f, n * sizeof *f);
  g->nframes += n;
  g->slots[j] = ++g->nents;
  return (int64_t)(g->nents - 1);
}

/* The entries stack st is credited to for class leak: its key's, or with
 * cumulative one per frame; in out[0..*n). memo holds entry + 1 per stack
 * or per loc, and per class when grouped by class (KINDS(g) a slot). */
#define KINDS(g) ((g)->by_leak ? HS_LEAK_KINDS : 1)
static int entries_of(group_by_t *g, struct hs_snapshot *s, site_ctx_t *sc,
                      int64_t *memo, hs_frame_t *tmp, int cumulative,
                      uint32_t stack, uint32_t leak, int64_t *out,
                      uint32_t *nout) {
  const hs_snap_stack_t *st = &s->stacks[stack];
  *nout = 0;
  if (!cumulative) {
    int64_t *m = &memo[(uint64_t)stack * KINDS(g) + leak];
    int64_t e = *m - 1;
    if (e < 0) {
      uint32_t n = 0, site = 0;
      if (g->key == HS_KEY_TRACEBACK) {
        for (uint32_t i = 0; i < st->nloc; i++)
          tmp[n++] = key_frame(s, s->stack_locs[st->first + i], g->key);
        if (st->nloc)
          site = site_of(sc, stack) - st->first;
      } else if (st->nloc) {
        tmp[n++] = key_frame(s, s->stack_locs[site_of(sc, stack)], g->key);
      } else {
        tmp[n++] = (hs_frame_t){0};
      }
      if ((e = entry_for(g, tmp, n, leak)) < 0)
        return HS_ENOMEM;
      g->ents[e].site = site;
      *m = e + 1;
    }
    out[(*nout)++] = e;
    return 0;
  }
  for (uint32_t i = 0; i < st->nloc; i++) {
    uint32_t li = s->stack_locs[st->first + i];
    int64_t *m = &memo[(uint64_t)li * KINDS(g) + leak];
    int64_t e = *m - 1;
    if (e < 0) {
      hs_frame_t f = key_frame(s, li, g->key);
      if ((e = entry_for(g, &f, 1, leak)) < 0)
        return HS_ENOMEM;
      *m = e + 1;
    }
    out[(*nout)++] = e;
  }
  return 0;
}

/* Adds every trace of s to side (0 old, 1 new) of g. */
static int add_snapshot(group_by_t *g, struct hs_snapshot *s, int cumulative,
                        int side) {
  int rc = hs__snapshot_symbolize(s);
  if (rc != 0)
    return rc;
  rc = HS_ENOMEM;
  site_ctx_t sc = {s, calloc(s->nlocs + 1, 1)};
  /* Memo: entry index + 1 per stack (non-cumulative) or per loc. */
  uint64_t nmemo = (cumulative ? s->nlocs : s->nstacks) * KINDS(g);
  int64_t *memo = calloc(nmemo + 1, sizeof *memo);
  uint32_t maxn = 1;
  for (uint32_t i = 0; i < s->nstacks; i++)
    if (s->stacks[i].nloc > maxn)
      maxn = s->stacks[i].nloc;
  hs_frame_t *tmp = malloc(maxn * sizeof *tmp);
  int64_t *ents = malloc(maxn * sizeof *ents);
  if (!sc.wrap || !memo || !tmp || !ents)
    goto out;
  uint32_t n;
  for (uint64_t gi = 0; gi < s->ngroups; gi++) {
    const hs_group_t *gr = &s->groups[gi];
    uint64_t bytes, count;
    hs__group_estimate(s, gr, &bytes, &count);
    uint32_t leak = g->by_leak && s->group_leak ? s->group_leak[gi] : 0;
    if (leak >= HS_LEAK_KINDS)
      leak = 0;
    if (entries_of(g, s, &sc, memo, tmp, cumulative, gr->stack, leak, ents,
                   &n))
      goto out;
    for (uint32_t i = 0; i < n; i++) {
      g->ents[ents[i]].size[side] += bytes;
      g->ents[ents[i]].count[side] += count;
    }
  }
  for (uint32_t st = 0; s->ctrs && st < s->nstacks; st++) {
    const hs_snap_ctr_t *k = &s->ctrs[st];
    if (!k->allocs && !k->frees)
      continue;
    /* Churn has no class: a key's is counted once, on its unchecked
     * entry, when grouped by class. */
    if (entries_of(g, s, &sc, memo, tmp, cumulative, st, HS_LEAK_UNCHECKED,
                   ents, &n))
      goto out;
    for (uint32_t i = 0; i < n; i++) {
      entry_t *e = &g->ents[ents[i]];
      e->asize[side] += k->bytes;
      e->acount[side] += k->allocs;
      e->frees[side] += k->frees;
      e->temp[side] += k->temp;
      e->temp_time[side] += k->temp_time;
      for (int b = 0; side && b < HS_LIFETIME_BUCKETS; b++)
        e->hist[b] += k->hist[b];
    }
  }
  rc = 0;
out:
  free(sc.wrap);
  free(memo);
  free(tmp);
  free(ents);
  return rc;
}

static void group_by_free(group_by_t *g) {
  free(g->ents);
  free(g->frames);
  free(g->slots);
}

/* Keys compare as tracemalloc's Traceback: frames from the oldest. */
static int cmp_key(const hs_frame_t *a, size_t na, const hs_frame_t *b,
                   size_t nb) {
  size_t i = na, j = nb;
  while (i > 0 && j > 0) {
    int c = cmp_frame(&a[--i], &b[--j]);
    if (c)
      return c;
  }
  return (i > 0) - (j > 0);
}

#define DESC(a, b)                                                            \
  do {                                                                        \
    if ((a) != (b))                                                           \
      return (a) < (b) ? 1 : -1;                                              \
  } while (0)

static int cmp_stat(const void *pa, const void *pb) {
  const hs_statistic_t *a = pa, *b = pb;
  DESC(a->size, b->size);
  DESC(a->count, b->count);
  return -cmp_key(a->frames, a->nframe, b->frames, b->nframe);
}

static uint64_t abs64(int64_t v) {
  return v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
}

static int cmp_diff(const void *pa, const void *pb) {
  const hs_statistic_diff_t *a = pa, *b = pb;
  DESC(abs64(a->size_diff), abs64(b->size_diff));
  DESC(a->size, b->size);
  DESC(abs64(a->count_diff), abs64(b->count_diff));
  DESC(a->count, b->count);
  return -cmp_key(a->frames, a->nframe, b->frames, b->nframe);
}

/* Holds the settings of a and b (b may be NULL or a) for reading while a
 * pass uses them. Lower address first: compare(a, b) on one thread and
 * compare(b, a) on another would otherwise take them in opposite orders,
 * which deadlocks as soon as a writer queued on one of them blocks new
 * readers (as writer-preferring rwlocks do). */
static void settings_rdlock(struct hs_snapshot *a, struct hs_snapshot *b) {
  if (b == a)
    b = NULL;
  if (b && (uintptr_t)b < (uintptr_t)a) {
    struct hs_snapshot *t = a;
    a = b;
    b = t;
  }
  pthread_rwlock_rdlock(&a->settings_lock);
  if (b)
    pthread_rwlock_rdlock(&b->settings_lock);
}

static void settings_unlock(struct hs_snapshot *a, struct hs_snapshot *b) {
  if (b && b != a)
    pthread_rwlock_unlock(&b->settings_lock);
  pthread_rwlock_unlock(&a->settings_lock);
}

/* The upper bound of the bucket holding the q-th quantile (q in 1/100). */
static uint64_t percentile(const uint64_t *h, unsigned q) {
  uint64_t total = 0, run = 0;
  for (int b = 0; b < HS_LIFETIME_BUCKETS; b++)
    total += h[b];
  if (!total)
    return 0;
  for (int b = 0; b < HS_LIFETIME_BUCKETS; b++) {
    run += h[b];
    if (run * 100 >= total * q)
      return HS_LIFETIME_BUCKET_NS(b + 1);
  }
  return HS_LIFETIME_BUCKET_NS(HS_LIFETIME_BUCKETS);
}

/* Orders for hs_statistics_sort: the figure chosen, then live as above. */
static int sort_order;

static uint64_t stat_figure(const hs_statistic_t *a) {
  return sort_order == HS_SORT_ALLOCATED ? a->alloc_size
         : sort_order == HS_SORT_COUNT   ? a->alloc_count
                                         : a->temporary;
}

static int cmp_stat_by(const void *pa, const void *pb) {
  const hs_statistic_t *a = pa, *b = pb;
  if (sort_order != HS_SORT_LIVE)
    DESC(stat_figure(a), stat_figure(b));
  return cmp_stat(pa, pb);
}

static int64_t diff_figure(const hs_statistic_diff_t *a, uint64_t *now) {
  if (sort_order == HS_SORT_ALLOCATED) {
    *now = a->alloc_size;
    return a->alloc_size_diff;
  }
  if (sort_order == HS_SORT_COUNT) {
    *now = a->alloc_count;
    return a->alloc_count_diff;
  }
  *now = a->temporary;
  return a->temporary_diff;
}

static int cmp_diff_by(const void *pa, const void *pb) {
  const hs_statistic_diff_t *a = pa, *b = pb;
  if (sort_order != HS_SORT_LIVE) {
    uint64_t na, nb;
    int64_t da = diff_figure(a, &na), db = diff_figure(b, &nb);
    DESC(abs64(da), abs64(db));
    DESC(na, nb);
  }
  return cmp_diff(pa, pb);
}

static pthread_mutex_t sort_mu = PTHREAD_MUTEX_INITIALIZER;

/* A list grouped by class is sorted through a copy whose elements carry
 * their class after the public struct (elem bytes, a multiple of 8):
 * callers index the public arrays (hs_statistics_get(st, 0)[i]), so those
 * stay contiguous and the classes beside them. cmp_plain compares the
 * public structs; one key's entries then go in the order of the classes. */
static int (*cmp_plain)(const void *, const void *);
static size_t cmp_elem;
_Static_assert(sizeof(hs_statistic_t) % 8 == 0 &&
                   sizeof(hs_statistic_diff_t) % 8 == 0,
               "a copied element stays aligned");

static int cmp_with_kind(const void *pa, const void *pb) {
  int c = cmp_plain(pa, pb);
  uint8_t a = ((const uint8_t *)pa)[cmp_elem], b = ((const uint8_t *)pb)[cmp_elem];
  return c ? c : (a > b) - (a < b);
}

/* Sorts the first n entries of st with cmp. Under sort_mu (cmp_plain,
 * cmp_elem and sort_order are statics: qsort has no context). 0 or
 * HS_ENOMEM (st unchanged). */
static int sort_list(hs_statistics_t *st, size_t n,
                     int (*cmp)(const void *, const void *)) {
  char *arr = st->diffs ? (char *)st->diffs : (char *)st->stats;
  size_t elem = st->diffs ? sizeof *st->diffs : sizeof *st->stats;
  if (!st->kinds) {
    qsort(arr, n, elem, cmp);
    return 0;
  }
  size_t we = elem + 8;
  char *w = malloc((n + 1) * we);
  if (!w)
    return HS_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    memcpy(w + i * we, arr + i * elem, elem);
    w[i * we + elem] = (char)st->kinds[i];
  }
  cmp_plain = cmp;
  cmp_elem = elem;
  qsort(w, n, we, cmp_with_kind);
  for (size_t i = 0; i < n; i++) {
    memcpy(arr + i * elem, w + i * we, elem);
    st->kinds[i] = (uint8_t)w[i * we + elem];
  }
  free(w);
  return 0;
}

int hs_statistics_sort(hs_statistics_t *st, int order) {
  if (!st || order < HS_SORT_LIVE || order > HS_SORT_TEMPORARY)
    return HS_EINVAL;
  /* qsort has no context argument: the order is a static, so one sort at
   * a time. */
  pthread_mutex_lock(&sort_mu);
  sort_order = order;
  int rc = 0;
  if (st->diffs || st->stats)
    rc = sort_list(st, st->info.count + (order != HS_SORT_LIVE ? st->churn_only : 0),
                   st->diffs ? cmp_diff_by : cmp_stat_by);
  if (rc == 0 && order != HS_SORT_LIVE) {
    st->info.count += st->churn_only;
    st->churn_only = 0;
  }
  pthread_mutex_unlock(&sort_mu);
  return rc;
}

/* Moves the entries with live blocks on either side before those that
 * only churned, keeping each part's order; returns how many have. The
 * arrays are filled in entry order, so element e is entry e. */
static size_t live_first(void *arr, size_t elem, uint64_t n,
                         const group_by_t *g, uint8_t *kinds) {
  char *a = arr, tmp[sizeof(hs_statistic_diff_t)];
  size_t w = 0;
  for (uint64_t e = 0; e < n; e++) {
    const entry_t *en = &g->ents[e];
    if (!en->count[0] && !en->count[1] && !en->size[0] && !en->size[1])
      continue;
    if (w != e) {
      /* Rotate e down to w: the churn-only run keeps its order. */
      memcpy(tmp, a + e * elem, elem);
      memmove(a + (w + 1) * elem, a + w * elem, (e - w) * elem);
      memcpy(a + w * elem, tmp, elem);
      if (kinds) {
        uint8_t k = kinds[e];
        memmove(kinds + w + 1, kinds + w, e - w);
        kinds[w] = k;
      }
    }
    w++;
  }
  return w;
}

/* The classes of a list grouped by class, in entry order. */
static int kinds_of(hs_statistics_t *st, const group_by_t *g) {
  st->kinds = malloc(g->nents + 1);
  if (!st->kinds)
    return HS_ENOMEM;
  for (uint64_t e = 0; e < g->nents; e++)
    st->kinds[e] = (uint8_t)g->ents[e].leak;
  return 0;
}

static int run(hs_snapshot_t *snap, hs_snapshot_t *old, hs_key_t key,
               int cumulative, hs_statistics_t **out) {
  if (!out)
    return HS_EINVAL;
  *out = NULL;
  int by_leak = (key & HS_KEY_BY_LEAK) != 0;
  key = (hs_key_t)(key & ~HS_KEY_BY_LEAK);
  if (!snap || key < HS_KEY_FILENAME || key > HS_KEY_TRACEBACK ||
      (cumulative && key == HS_KEY_TRACEBACK))
    return HS_EINVAL;
  hs__guard_enter();
  settings_rdlock(snap, old);
  group_by_t g = {.key = key, .by_leak = by_leak};
  hs_statistics_t *st = calloc(1, sizeof *st);
  int rc = st ? 0 : HS_ENOMEM;
  if (rc == 0 && old)
    rc = add_snapshot(&g, old, cumulative, 0);
  if (rc == 0)
    rc = add_snapshot(&g, snap, cumulative, 1);
  if (rc != 0)
    goto fail;
  rc = HS_ENOMEM;
  hs_statistics_info_t *in = &st->info;
  in->struct_size = sizeof *in;
  in->key = key;
  in->cumulative = cumulative != 0;
  in->compare = old != NULL;
  in->count = g.nents;
  in->sample_rate = snap->sample_rate;
  in->has_churn = snap->ctrs != NULL;
  {
    uint64_t t[2][4] = {{0}};
    for (uint64_t e = 0; e < g.nents; e++)
      for (int side = 0; side < 2 && !cumulative; side++) {
        t[side][0] += g.ents[e].asize[side];
        t[side][1] += g.ents[e].acount[side];
        t[side][2] += g.ents[e].temp[side];
        t[side][3] += g.ents[e].temp_time[side];
      }
    if (cumulative) {
      /* Frames share stacks there: total the stacks themselves. */
      for (int side = 0; side < 2; side++) {
        hs_snapshot_t *sn = side ? snap : old;
        for (uint32_t i = 0; sn && sn->ctrs && i < sn->nstacks; i++) {
          t[side][0] += sn->ctrs[i].bytes;
          t[side][1] += sn->ctrs[i].allocs;
          t[side][2] += sn->ctrs[i].temp;
          t[side][3] += sn->ctrs[i].temp_time;
        }
      }
    }
    in->alloc_size = t[1][0];
    in->alloc_count = t[1][1];
    in->temporary = t[1][2];
    in->temporary_time = t[1][3];
    in->alloc_size_diff = (int64_t)(t[1][0] - t[0][0]);
    in->alloc_count_diff = (int64_t)(t[1][1] - t[0][1]);
    in->temporary_diff = (int64_t)(t[1][2] - t[0][2]);
    in->temporary_time_diff = (int64_t)(t[1][3] - t[0][3]);
  }
  for (uint64_t gi = 0; gi < snap->ngroups; gi++) {
    uint64_t b, c;
    hs__group_estimate(snap, &snap->groups[gi], &b, &c);
    in->total_size += b;
    in->total_count += c;
  }
  if (old) {
    uint64_t os = 0, oc = 0;
    in->old_sample_rate = old->sample_rate;
    for (uint64_t gi = 0; gi < old->ngroups; gi++) {
      uint64_t b, c;
      hs__group_estimate(old, &old->groups[gi], &b, &c);
      os += b;
      oc += c;
    }
    in->total_size_diff = (int64_t)(in->total_size - os);
    in->total_count_diff = (int64_t)(in->total_count - oc);
  }
  /* The histograms live after the frames, in one block the statistics
   * own (frames). */
  uint64_t *hist = NULL;
  if (in->has_churn) {
    size_t fb = (g.nframes + 1) * sizeof *g.frames;
    fb = (fb + 7) & ~(size_t)7;
    hs_frame_t *nf = realloc(g.frames, fb + (g.nents + 1) * HS_LIFETIME_BUCKETS *
                                                sizeof *hist);
    if (!nf)
      goto fail;
    g.frames = nf;
    g.frames_cap = 0; /* no longer a growable array */
    hist = (uint64_t *)(void *)((char *)nf + fb);
    for (uint64_t e = 0; e < g.nents; e++)
      memcpy(hist + e * HS_LIFETIME_BUCKETS, g.ents[e].hist,
             sizeof g.ents[e].hist);
  }
  if (old) {
    st->diffs = calloc(g.nents + 1, sizeof *st->diffs);
    if (!st->diffs)
      goto fail;
    for (uint64_t e = 0; e < g.nents; e++) {
      const entry_t *en = &g.ents[e];
      st->diffs[e] = (hs_statistic_diff_t){
          &g.frames[en->first],
          en->nframe,
          en->site,
          en->size[1],
          (int64_t)(en->size[1] - en->size[0]),
          en->count[1],
          (int64_t)(en->count[1] - en->count[0]),
          en->asize[1],
          (int64_t)(en->asize[1] - en->asize[0]),
          en->acount[1],
          (int64_t)(en->acount[1] - en->acount[0]),
          en->temp[1],
          (int64_t)(en->temp[1] - en->temp[0]),
          en->temp_time[1],
          (int64_t)(en->temp_time[1] - en->temp_time[0]),
          en->frees[1],
          hist ? hist + e * HS_LIFETIME_BUCKETS : NULL,
          percentile(en->hist, 50),
          percentile(en->hist, 90),
          percentile(en->hist, 99)};
    }
    if (by_leak && kinds_of(st, &g) != 0)
      goto fail;
    st->info.count = live_first(st->diffs, sizeof *st->diffs, g.nents, &g,
                                st->kinds);
    st->churn_only = g.nents - st->info.count;
    pthread_mutex_lock(&sort_mu);
    rc = sort_list(st, st->info.count, cmp_diff);
    pthread_mutex_unlock(&sort_mu);
    if (rc != 0)
      goto fail;
  } else {
    st->stats = calloc(g.nents + 1, sizeof *st->stats);
    if (!st->stats)
      goto fail;
    for (uint64_t e = 0; e < g.nents; e++) {
      const entry_t *en = &g.ents[e];
      st->stats[e] = (hs_statistic_t){&g.frames[en->first],
                                       en->nframe,
                                       en->site,
                                       en->size[1],
                                       en->count[1],
                                       en->asize[1],
                                       en->acount[1],
                                       en->frees[1],
                                       en->temp[1],
                                       en->temp_time[1],
                                       hist ? hist + e * HS_LIFETIME_BUCKETS
                                            : NULL,
                                       percentile(en->hist, 50),
                                       percentile(en->hist, 90),
                                       percentile(en->hist, 99)};
    }
    if (by_leak && kinds_of(st, &g) != 0)
      goto fail;
    st->info.count = live_first(st->stats, sizeof *st->stats, g.nents, &g,
                                st->kinds);
    st->churn_only = g.nents - st->info.count;
    pthread_mutex_lock(&sort_mu);
    rc = sort_list(st, st->info.count, cmp_stat);
    pthread_mutex_unlock(&sort_mu);
    if (rc != 0)
      goto fail;
  }
  st->frames = g.frames;
  g.frames = NULL;
  group_by_free(&g);
  *out = st;
  rc = 0;
  goto done;
fail:
  group_by_free(&g);
  hs_statistics_free(st);
done:
  settings_unlock(snap, old);
  hs__guard_exit();
  return rc;
}

int hs_snapshot_statistics(hs_snapshot_t *snap, hs_key_t key, int cumulative,
                           hs_statistics_t **out) {
  return run(snap, NULL, key, cumulative, out);
}

int hs_snapshot_compare(hs_snapshot_t *snap, hs_snapshot_t *old, hs_key_t key,
                        int cumulative, hs_statistics_t **out) {
  if (!old) {
    if (out)
      *out = NULL;
    return HS_EINVAL;
  }
  return run(snap, old, key, cumulative, out);
}

void hs_statistics_free(hs_statistics_t *st) {
  if (!st)
    return;
  hs__guard_enter();
  free(st->stats);
  free(st->diffs);
  free(st->frames);
  free(st->kinds);
  free(st);
  hs__guard_exit();
}

size_t hs_statistics_count(const hs_statistics_t *st) {
  return st ? st->info.count : 0;
}

const hs_statistic_t *hs_statistics_get(const hs_statistics_t *st, size_t i) {
  return st && st->stats && i < st->info.count ? &st->stats[i] : NULL;
}

const hs_statistic_diff_t *hs_statistics_get_diff(const hs_statistics_t *st,
                                                  size_t i) {
  return st && st->diffs && i < st->info.count ? &st->diffs[i] : NULL;
}

int hs_statistics_get_info(const hs_statistics_t *st, hs_statistics_info_t *out,
                           size_t size) {
  if (!st)
    return HS_EINVAL;
  return hs__fill_versioned(out, size, &st->info, sizeof st->info);
}

int hs_statistics_leak_kind(const hs_statistics_t *st, size_t i) {
  if (!st || !st->kinds || i >= st->info.count)
    return -1;
  return st->kinds[i];
}

int hs_statistics_format(const hs_statistics_t *st, size_t i, char *buf,
                         size_t len) {
  if (!st || i >= st->info.count)
    return HS_EINVAL;
  const char *kind = st->kinds ? hs_leak_kind_name(st->kinds[i]) : NULL;
  return hs__statistic_text(st->stats ? &st->stats[i] : NULL,
                            st->diffs ? &st->diffs[i] : NULL, st->info.key,
                            kind, buf, len);
}

/* ---- filters (tracemalloc's Filter and DomainFilter) ---- */

/* What a filename pattern is matched against: the file, or for a frame
 * without source the module's path. */
static const char *match_name(const struct hs_snapshot *s, uint32_t li) {
  const hs_loc_t *l = &s->locs[li];
  const char *f = hs__str(s, l->file);
  if (!f)
    f = module_path(s, l->module);
  return f ? f : "<unknown>";
}

static int frame_matches(const struct hs_snapshot *s, uint32_t li,
                         const hs_filter_t *f) {
  if (fnmatch(f->filename_pattern, match_name(s, li), 0) != 0)
    return 0;
  return f->lineno == 0 || s->locs[li].line == f->lineno;
}

/* Filter._match / DomainFilter._match: 1 keeps the trace for this filter. */
static int filter_match(site_ctx_t *sc, const hs_group_t *g,
                        const hs_filter_t *f) {
  const struct hs_snapshot *s = sc->s;
  if (!f->filename_pattern)
    return (f->domain < 0 || g->domain == (uint32_t)f->domain) ==
           (f->inclusive != 0);
  const hs_snap_stack_t *st = &s->stacks[g->stack];
  int res;
  if (f->all_frames) {
    int any = 0;
    for (uint32_t i = 0; i < st->nloc && !any; i++)
      any = frame_matches(s, s->stack_locs[st->first + i], f);
    res = any ? f->inclusive != 0 : !f->inclusive;
  } else {
    int m = st->nloc &&
            frame_matches(s, s->stack_locs[site_of(sc, g->stack)], f);
    res = m ^ !f->inclusive;
  }
  if (f->domain >= 0) {
    if (f->inclusive)
      return res && g->domain == (uint32_t)f->domain;
    return res || g->domain != (uint32_t)f->domain;
  }
  return res;
}

int hs_snapshot_filter(hs_snapshot_t *snap, const hs_filter_t *filters,
                       size_t nfilter, hs_snapshot_t **out) {
  if (!out)
    return HS_EINVAL;
  *out = NULL;
  if (!snap || (nfilter && !filters))
    return HS_EINVAL;
  hs__guard_enter();
  settings_rdlock(snap, NULL);
  int rc = hs__snapshot_symbolize(snap);
  uint8_t *keep = NULL;
  site_ctx_t sc = {snap, NULL};
  if (rc != 0)
    goto out;
  rc = HS_ENOMEM;
  /* A byte per group, then one per stack for its churn (filtered as a
   * group of the heap's domain would be). */
  keep = malloc(snap->ngroups + snap->nstacks + 1);
  sc.wrap = calloc(snap->nlocs + 1, 1);
  if (!keep || !sc.wrap)
    goto out;
  int has_incl = 0;
  for (size_t i = 0; i < nfilter; i++)
    has_incl |= filters[i].inclusive != 0;
  for (uint64_t gi = 0; gi < snap->ngroups; gi++) {
    const hs_group_t *g = &snap->groups[gi];
    int ok = 1;
    if (has_incl) {
      ok = 0;
      for (size_t i = 0; i < nfilter && !ok; i++)
        if (filters[i].inclusive && filter_match(&sc, g, &filters[i]))
          ok = 1;
    }
    for (size_t i = 0; i < nfilter && ok; i++)
      if (!filters[i].inclusive && !filter_match(&sc, g, &filters[i]))
        ok = 0;
    keep[gi] = (uint8_t)ok;
  }
  for (uint32_t st = 0; st < snap->nstacks; st++) {
    hs_group_t g = {0, st, 0, 0};
    int ok = 1;
    if (has_incl) {
      ok = 0;
      for (size_t i = 0; i < nfilter && !ok; i++)
        if (filters[i].inclusive && filter_match(&sc, &g, &filters[i]))
          ok = 1;
    }
    for (size_t i = 0; i < nfilter && ok; i++)
      if (!filters[i].inclusive && !filter_match(&sc, &g, &filters[i]))
        ok = 0;
    keep[snap->ngroups + st] = (uint8_t)ok;
  }
  rc = hs__snapshot_copy(snap, keep, out);
out:
  settings_unlock(snap, NULL);
  free(keep);
  free(sc.wrap);
  hs__guard_exit();
  return rc;
}
