/* profile.c - the endpoint's profiles: samples per stack from one snapshot
 * or the difference of two, encoded as gzipped profile.proto by hand (a
 * few varint and length-delimited fields) or as text for ?debug=1. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../snapshot/snapshot.h"
#include "http.h"

HS_HIDDEN int hs__loc_is_wrapper(const struct hs_snapshot *s,
                                 const hs_loc_t *l);

/* ---- buffers: the real allocator, as the caller holds the guard ---- */

static int buf_reserve(hs_buf_t *b, size_t more) {
  if (b->err)
    return -1;
  if (b->len + more <= b->cap)
    return 0;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->len + more) {
    if (cap > SIZE_MAX / 2) {
      b->err = 1;
      return -1;
    }
    cap *= 2;
  }
  uint8_t *p = realloc(b->p, cap);
  if (!p) {
    b->err = 1;
    return -1;
  }
  b->p = p;
  b->cap = cap;
  return 0;
}

void hs__buf_put(hs_buf_t *b, const void *p, size_t n) {
  if (n && buf_reserve(b, n) == 0) {
    memcpy(b->p + b->len, p, n);
    b->len += n;
  }
}

void hs__buf_printf(hs_buf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || buf_reserve(b, (size_t)n + 1))
    return;
  va_start(ap, fmt);
  vsnprintf((char *)b->p + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

void hs__buf_free(hs_buf_t *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

/* ---- protobuf wire format ---- */

static void put_varint(hs_buf_t *b, uint64_t v) {
  uint8_t t[10];
  size_t n = 0;
  do {
    t[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    v >>= 7;
  } while (v);
  hs__buf_put(b, t, n);
}

/* proto3 leaves out fields at their default, so zeros cost nothing. */
static void put_u64(hs_buf_t *b, unsigned field, uint64_t v) {
  if (!v)
    return;
  put_varint(b, (uint64_t)field << 3);
  put_varint(b, v);
}

static void put_bytes(hs_buf_t *b, unsigned field, const void *p, size_t n) {
  put_varint(b, (uint64_t)field << 3 | 2);
  put_varint(b, n);
  hs__buf_put(b, p, n);
}

/* ---- samples ---- */

/* Values per sample, in Go's heap profile order: Go's tools (and Parca's
 * and Pyroscope's parsers) pick a heap profile's types by these names. The
 * alloc_ pair is the churn counters, cumulative since tracing started (or
 * was cleared); the inuse_ pair the live blocks. */
enum { V_ALLOC_OBJECTS, V_ALLOC_SPACE, V_INUSE_OBJECTS, V_INUSE_SPACE, NVAL };
static const struct {
  const char *type, *unit;
} value_types[NVAL] = {{"alloc_objects", "count"},
                       {"alloc_space", "bytes"},
                       {"inuse_objects", "count"},
                       {"inuse_space", "bytes"}};

/* Go's net/http/pprof serves one heap profile under both names and sets
 * only the default apart. */
static int default_value(int kind) {
  return kind == HS_PROFILE_ALLOCS ? V_ALLOC_SPACE : V_INUSE_SPACE;
}

typedef struct sample {
  const struct hs_snapshot *s; /* whose stack */
  uint32_t stack;
  uint32_t site;               /* first loc of the stack that is shown */
  int64_t v[NVAL];
} sample_t;

/* Open addressing from a 64-bit hash to an index (stored + 1); equality
 * is the caller's, so one table type serves stacks, strings, functions
 * and locations. */
typedef struct imap {
  uint64_t *h;
  uint32_t *v;
  size_t cap, n;
} imap_t;

typedef int (*eq_fn)(void *ctx, uint32_t idx);

static int imap_grow(imap_t *m) {
  size_t cap = m->cap ? m->cap * 2 : 1024;
  uint64_t *h = calloc(cap, sizeof *h);
  uint32_t *v = calloc(cap, sizeof *v);
  if (!h || !v) {
    free(h);
    free(v);
    return -1;
  }
  for (size_t i = 0; i < m->cap; i++)
    if (m->v[i]) {
      size_t j = m->h[i] & (cap - 1);
      while (v[j])
        j = (j + 1) & (cap - 1);
      h[j] = m->h[i];
      v[j] = m->v[i];
    }
  free(m->h);
  free(m->v);
  m->h = h;
  m->v = v;
  m->cap = cap;
  return 0;
}

/* The slot for hash h: *slot is idx + 1 of an equal entry, or 0 where a
 * new one goes (the caller then stores idx + 1 and counts it with
 * imap_added). NULL when out of memory. */
static uint32_t *imap_find(imap_t *m, uint64_t h, eq_fn eq, void *ctx) {
  if ((m->n + 1) * 2 > m->cap && imap_grow(m))
    return NULL;
  size_t j = h & (m->cap - 1);
  while (m->v[j]) {
    if (m->h[j] == h && eq(ctx, m->v[j] - 1))
      return &m->v[j];
    j = (j + 1) & (m->cap - 1);
  }
  m->h[j] = h;
  return &m->v[j];
}

static void imap_free(imap_t *m) {
  free(m->h);
  free(m->v);
  memset(m, 0, sizeof *m);
}

static uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h * 0x100000001b3ull;
}

static uint64_t hash_cstr(uint64_t h, const char *p) {
  for (; p && *p; p++)
    h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
  return mix(h, 0xff);
}

static const hs_module_t *loc_module(const struct hs_snapshot *s,
                                     const hs_loc_t *l) {
  return l->module >= 0 && (uint32_t)l->module < s->modules.count
             ? &s->modules.mods[l->module]
             : NULL;
}

static uint64_t loc_address(const struct hs_snapshot *s, const hs_loc_t *l) {
  const hs_module_t *m = loc_module(s, l);
  return m ? m->bias + l->offset : l->offset;
}

typedef struct samples {
  sample_t *v;
  size_t n, cap;
  imap_t by_stack;
  /* for the equality callback */
  const struct hs_snapshot *ks;
  uint32_t kstack;
} samples_t;

/* Stacks of two snapshots of one process are the same stack when their
 * symbolized frames are, address for address: addresses are stable within
 * a process, and snapshot stack indexes are not. */
static int same_stack(const struct hs_snapshot *a, uint32_t sa,
                      const struct hs_snapshot *b, uint32_t sb) {
  const hs_snap_stack_t *x = &a->stacks[sa], *y = &b->stacks[sb];
  if (x->nloc != y->nloc)
    return 0;
  for (uint32_t i = 0; i < x->nloc; i++) {
    const hs_loc_t *la = &a->locs[a->stack_locs[x->first + i]];
    const hs_loc_t *lb = &b->locs[b->stack_locs[y->first + i]];
    const char *fa = hs__str(a, la->function), *fb = hs__str(b, lb->function);
    if (loc_address(a, la) != loc_address(b, lb) || la->line != lb->line ||
        !fa != !fb || (fa && strcmp(fa, fb)))
      return 0;
  }
  return 1;
}

static int stack_eq(void *ctx, uint32_t idx) {
  samples_t *ss = ctx;
  return same_stack(ss->v[idx].s, ss->v[idx].stack, ss->ks, ss->kstack);
}

static uint64_t hash_stack(const struct hs_snapshot *s, uint32_t st) {
  const hs_snap_stack_t *k = &s->stacks[st];
  uint64_t h = 0xcbf29ce484222325ull ^ k->nloc;
  for (uint32_t i = 0; i < k->nloc; i++) {
    const hs_loc_t *l = &s->locs[s->stack_locs[k->first + i]];
    h = mix(h, loc_address(s, l));
    h = mix(h, l->line);
  }
  return h;
}

/* Where a stack starts to be shown: heapsnap's allocation site (the
 * innermost frame with a line that is not an allocation wrapper, as in
 * snapdiff), so that pprof's flat column names the caller of malloc,
 * operator new or strdup, the way Go's heap profiles start at the caller
 * of the runtime's allocator. */
static uint32_t site_of(const struct hs_snapshot *s, uint32_t st,
                        uint8_t *wrap) {
  const hs_snap_stack_t *k = &s->stacks[st];
  if (s->raw_mode || k->nloc == 0)
    return 0;
  uint32_t fallback = UINT32_MAX;
  for (uint32_t i = 0; i < k->nloc; i++) {
    uint32_t li = s->stack_locs[k->first + i];
    if (!wrap[li])
      wrap[li] = hs__loc_is_wrapper(s, &s->locs[li]) ? 1 : 2;
    if (wrap[li] == 1)
      continue;
    if (s->locs[li].file != HS_NOSTR)
      return i;
    if (fallback == UINT32_MAX)
      fallback = i;
  }
  return fallback != UINT32_MAX ? fallback : 0;
}

/* The sample of stack st of s, made on first sight; memo holds sample + 1
 * per stack of s, wrap the wrapper marks per loc. NULL when out of memory. */
static sample_t *sample_of(samples_t *ss, const struct hs_snapshot *s,
                           uint32_t st, uint32_t *memo, uint8_t *wrap) {
  uint32_t *slot = &memo[st];
  if (!*slot) {
    ss->ks = s;
    ss->kstack = st;
    uint32_t *m = imap_find(&ss->by_stack, hash_stack(s, st), stack_eq, ss);
    if (!m)
      return NULL;
    if (!*m) {
      if (ss->n == ss->cap) {
        size_t cap = ss->cap ? ss->cap * 2 : 256;
        sample_t *v = realloc(ss->v, cap * sizeof *v);
        if (!v)
          return NULL;
        ss->v = v;
        ss->cap = cap;
      }
      sample_t *n = &ss->v[ss->n];
      memset(n, 0, sizeof *n);
      n->s = s;
      n->stack = st;
      n->site = site_of(s, st, wrap);
      *m = (uint32_t)++ss->n;
      ss->by_stack.n++;
    }
    *slot = *m;
  }
  return &ss->v[*slot - 1];
}

/* Adds sign times s's live blocks and churn counters, per stack, to the
 * samples. The counters are estimates already when s was sampled (the
 * trace layer adds each sampled block's weight), as snapdiff's pprof
 * output takes them; the live blocks are estimated here, as it does. A
 * stack whose blocks are all freed still has its sample: cumulative
 * allocation counts are what /allocs is for. */
static int add_snapshot(samples_t *ss, const struct hs_snapshot *s,
                        int sign) {
  uint8_t *wrap = calloc(s->nlocs + 1, 1);
  uint32_t *memo = calloc(s->nstacks + 1, sizeof *memo); /* sample + 1 */
  int rc = HS_ENOMEM;
  if (!wrap || !memo)
    goto out;
  for (uint64_t gi = 0; gi < s->ngroups; gi++) {
    const hs_group_t *g = &s->groups[gi];
    if (g->domain != 0 || g->stack >= s->nstacks)
      continue; /* hs_track domains are not the C heap pprof describes */
    sample_t *sm = sample_of(ss, s, g->stack, memo, wrap);
    if (!sm)
      goto out;
    uint64_t bytes, count;
    hs__group_estimate(s, g, &bytes, &count);
    sm->v[V_INUSE_OBJECTS] += sign * (int64_t)count;
    sm->v[V_INUSE_SPACE] += sign * (int64_t)bytes;
  }
  /* The counters are kept per stack, not per domain: an hs_track domain's
   * allocations count with the heap's of the same stack. Live snapshots
   * always carry them; a stack with nothing counted has no sample. */
  for (uint32_t st = 0; s->ctrs && st < s->nstacks; st++) {
    const hs_snap_ctr_t *k = &s->ctrs[st];
    if (!k->allocs && !k->bytes)
      continue;
    sample_t *sm = sample_of(ss, s, st, memo, wrap);
    if (!sm)
      goto out;
    sm->v[V_ALLOC_OBJECTS] += sign * (int64_t)k->allocs;
    sm->v[V_ALLOC_SPACE] += sign * (int64_t)k->bytes;
  }
  rc = 0;
out:
  free(wrap);
  free(memo);
  return rc;
}

/* ---- the profile.proto encoder ---- */

typedef struct func {
  uint32_t name, file;
} func_t;
typedef struct loc {
  uint32_t mapping;
  uint64_t addr;
  uint32_t func; /* id; 0: no line */
  uint32_t line;
} loc_t;
typedef struct map {
  const hs_module_t *mod;
  uint32_t file, build_id;
  int has_functions, has_lines;
} map_t;

typedef struct enc {
  hs_buf_t strs;     /* NUL-terminated strings back to back */
  uint32_t *str_off; /* index -> offset in strs */
  size_t nstr, capstr;
  imap_t strmap;
  func_t *funcs;
  size_t nfunc, capfunc;
  imap_t fmap;
  loc_t *locs;
  size_t nloc, caploc;
  imap_t lmap;
  map_t maps[512];
  size_t nmap;
  hs_buf_t out, msg, pk;
  const void *key; /* the record being looked up, for the callbacks */
  int err;
} enc_t;

static int grow(void **p, size_t *cap, size_t n, size_t elem) {
  if (n < *cap)
    return 0;
  size_t c = *cap ? *cap * 2 : 256;
  void *q = realloc(*p, c * elem);
  if (!q)
    return -1;
  *p = q;
  *cap = c;
  return 0;
}

static int str_eq(void *ctx, uint32_t idx) {
  enc_t *e = ctx;
  return !strcmp((const char *)e->strs.p + e->str_off[idx], e->key);
}

/* The string table index of s (NULL is ""). Strings are copied with
 * bytes that are not UTF-8 replaced by '?': proto3 strings must be UTF-8
 * and strict decoders reject a profile that is not. */
static uint32_t str(enc_t *e, const char *s) {
  if (!s)
    s = "";
  size_t at = e->strs.len;
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    int n = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 && *p >= 0xc2 ? 2
            : (*p & 0xf0) == 0xe0 ? 3 : (*p & 0xf8) == 0xf0 && *p <= 0xf4 ? 4
            : 0;
    for (int k = 1; k < n; k++)
      if ((p[k] & 0xc0) != 0x80)
        n = 0;
    if (n == 0) {
      hs__buf_put(&e->strs, "?", 1);
      p++;
    } else {
      hs__buf_put(&e->strs, p, (size_t)n);
      p += n;
    }
  }
  hs__buf_put(&e->strs, "", 1);
  if (e->strs.err) {
    e->err = 1;
    return 0;
  }
  const char *copy = (const char *)e->strs.p + at;
  e->key = copy;
  uint32_t *m = imap_find(&e->strmap, hash_cstr(0xcbf29ce484222325ull, copy),
                          str_eq, e);
  if (!m || (!*m && grow((void **)&e->str_off, &e->capstr, e->nstr,
                         sizeof *e->str_off))) {
    e->err = 1;
    return 0;
  }
  if (*m) {
    e->strs.len = at; /* a duplicate: the table keeps the first copy */
    return *m - 1;
  }
  e->str_off[e->nstr] = (uint32_t)at;
  *m = (uint32_t)++e->nstr;
  e->strmap.n++;
  return *m - 1;
}

static uint32_t mapping_of(enc_t *e, const hs_module_t *mod) {
  uint32_t file = str(e, mod->path);
  for (size_t i = 0; i < e->nmap; i++)
    if (e->maps[i].file == file)
      return (uint32_t)i + 1;
  if (e->nmap == sizeof e->maps / sizeof e->maps[0])
    return 0; /* past 512 modules the rest go without a mapping */
  /* pprof and the symbol servers (Parca's debuginfod lookups) spell a
   * GNU build ID as lowercase hex. */
  char hex[2 * sizeof mod->build_id + 1];
  uint32_t n = mod->build_id_len < sizeof mod->build_id ? mod->build_id_len
                                                        : sizeof mod->build_id;
  for (uint32_t i = 0; i < n; i++)
    snprintf(hex + 2 * i, 3, "%02x", mod->build_id[i]);
  hex[2 * n] = '\0';
  map_t *m = &e->maps[e->nmap];
  m->mod = mod;
  m->file = file;
  m->build_id = str(e, hex);
  m->has_functions = m->has_lines = 1;
  return (uint32_t)++e->nmap;
}

static int func_eq(void *ctx, uint32_t idx) {
  enc_t *e = ctx;
  const func_t *k = e->key;
  return e->funcs[idx].name == k->name && e->funcs[idx].file == k->file;
}

static uint32_t function_of(enc_t *e, uint32_t name, uint32_t file) {
  func_t k = {name, file};
  e->key = &k;
  uint32_t *m = imap_find(&e->fmap, mix(mix(7, name), file), func_eq, e);
  if (!m || (!*m && grow((void **)&e->funcs, &e->capfunc, e->nfunc,
                         sizeof *e->funcs))) {
    e->err = 1;
    return 0;
  }
  if (!*m) {
    e->funcs[e->nfunc] = k;
    *m = (uint32_t)++e->nfunc;
    e->fmap.n++;
  }
  return *m;
}

static int loc_eq(void *ctx, uint32_t idx) {
  enc_t *e = ctx;
  const loc_t *k = e->key, *l = &e->locs[idx];
  return l->mapping == k->mapping && l->addr == k->addr &&
         l->func == k->func && l->line == k->line;
}

/* The location id of loc li of s. Inlined frames share an address and
 * stay separate locations, each with its function and line: that is how
 * pprof shows them, without a flag telling which frame was inlined. */
static uint64_t location_of(enc_t *e, const struct hs_snapshot *s,
                            uint32_t li) {
  const hs_loc_t *l = &s->locs[li];
  const hs_module_t *mod = loc_module(s, l);
  loc_t k = {0, loc_address(s, l), 0, 0};
  if (mod)
    k.mapping = mapping_of(e, mod);
  const char *fn = hs__str(s, l->function), *file = hs__str(s, l->file);
  if (fn) {
    k.func = function_of(e, str(e, fn), str(e, file));
    k.line = file ? l->line : 0;
  }
  if (k.mapping) {
    if (!fn)
      e->maps[k.mapping - 1].has_functions = 0;
    if (!file)
      e->maps[k.mapping - 1].has_lines = 0;
  }
  e->key = &k;
  uint32_t *m = imap_find(&e->lmap, mix(mix(mix(mix(3, k.mapping), k.addr),
                                            k.func), k.line),
                          loc_eq, e);
  if (!m || (!*m && grow((void **)&e->locs, &e->caploc, e->nloc,
                         sizeof *e->locs))) {
    e->err = 1;
    return 0;
  }
  if (!*m) {
    e->locs[e->nloc] = k;
    *m = (uint32_t)++e->nloc;
    e->lmap.n++;
  }
  return *m;
}

static void put_value_type(enc_t *e, unsigned field, const char *type,
                           const char *unit) {
  uint32_t t = str(e, type), u = str(e, unit);
  e->msg.len = 0;
  put_u64(&e->msg, 1, t);
  put_u64(&e->msg, 2, u);
  put_bytes(&e->out, field, e->msg.p, e->msg.len);
}

static void put_sample(enc_t *e, const sample_t *sm) {
  const struct hs_snapshot *s = sm->s;
  const hs_snap_stack_t *k = &s->stacks[sm->stack];
  e->pk.len = 0;
  for (uint32_t i = sm->site; i < k->nloc; i++)
    put_varint(&e->pk, location_of(e, s, s->stack_locs[k->first + i]));
  e->msg.len = 0;
  put_bytes(&e->msg, 1, e->pk.p, e->pk.len);
  e->pk.len = 0;
  for (int i = 0; i < NVAL; i++)
    put_varint(&e->pk, (uint64_t)sm->v[i]); /* int64: two's complement */
  put_bytes(&e->msg, 2, e->pk.p, e->pk.len);
  put_bytes(&e->out, 2, e->msg.p, e->msg.len);
}

static void put_tables(enc_t *e) {
  for (size_t i = 0; i < e->nmap; i++) {
    const map_t *m = &e->maps[i];
    e->msg.len = 0;
    put_u64(&e->msg, 1, i + 1);
    put_u64(&e->msg, 2, m->mod->start);
    put_u64(&e->msg, 3, m->mod->end);
    /* file_offset 0: the mapping spans the module from its first PT_LOAD,
     * whose file offset is 0 for what gcc, clang and the linkers emit. */
    put_u64(&e->msg, 5, m->file);
    put_u64(&e->msg, 6, m->build_id);
    /* Set only when every location of the module was resolved: a client
     * (pprof, Parca) then keeps the names; otherwise it may symbolize the
     * module again itself, by build ID. */
    put_u64(&e->msg, 7, (uint64_t)m->has_functions);
    put_u64(&e->msg, 8, (uint64_t)m->has_lines);
    put_u64(&e->msg, 9, (uint64_t)m->has_lines);
    put_u64(&e->msg, 10, (uint64_t)m->has_functions);
    put_bytes(&e->out, 3, e->msg.p, e->msg.len);
  }
  for (size_t i = 0; i < e->nloc; i++) {
    const loc_t *l = &e->locs[i];
    e->msg.len = 0;
    put_u64(&e->msg, 1, i + 1);
    put_u64(&e->msg, 2, l->mapping);
    put_u64(&e->msg, 3, l->addr);
    if (l->func) {
      e->pk.len = 0;
      put_u64(&e->pk, 1, l->func);
      put_u64(&e->pk, 2, l->line);
      put_bytes(&e->msg, 4, e->pk.p, e->pk.len);
    }
    put_bytes(&e->out, 4, e->msg.p, e->msg.len);
  }
  for (size_t i = 0; i < e->nfunc; i++) {
    e->msg.len = 0;
    put_u64(&e->msg, 1, i + 1);
    put_u64(&e->msg, 2, e->funcs[i].name);
    put_u64(&e->msg, 3, e->funcs[i].name);
    put_u64(&e->msg, 4, e->funcs[i].file);
    put_bytes(&e->out, 5, e->msg.p, e->msg.len);
  }
}

static void enc_free(enc_t *e) {
  hs__buf_free(&e->strs);
  hs__buf_free(&e->out);
  hs__buf_free(&e->msg);
  hs__buf_free(&e->pk);
  free(e->str_off);
  free(e->funcs);
  free(e->locs);
  imap_free(&e->strmap);
  imap_free(&e->fmap);
  imap_free(&e->lmap);
}

/* gzip (zlib's wrapper, windowBits 15 + 16) at level 1: Go's runtime
 * compresses its profiles at BestSpeed too. */
static int gzip_into(const hs_buf_t *in, hs_buf_t *out) {
  z_stream z;
  memset(&z, 0, sizeof z);
  if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return -1;
  z.next_in = in->p;
  z.avail_in = (uInt)in->len;
  int rc;
  do {
    if (buf_reserve(out, 65536)) {
      rc = Z_MEM_ERROR;
      break;
    }
    z.next_out = out->p + out->len;
    z.avail_out = (uInt)(out->cap - out->len);
    size_t before = z.avail_out;
    rc = deflate(&z, Z_FINISH);
    out->len += before - z.avail_out;
  } while (rc == Z_OK || rc == Z_BUF_ERROR);
  deflateEnd(&z);
  return rc == Z_STREAM_END ? 0 : -1;
}

static int write_pprof(const struct hs_snapshot *snap,
                       const struct hs_snapshot *old, int kind,
                       const samples_t *ss, hs_buf_t *out) {
  enc_t *e = calloc(1, sizeof *e);
  if (!e)
    return HS_ENOMEM;
  str(e, ""); /* index 0, as profile.proto requires */
  /* The program first: pprof takes the first mapping for the binary. */
  const char *prog = hs__str(snap, snap->program);
  for (uint32_t i = 0; prog && i < snap->modules.count; i++)
    if (!strcmp(snap->modules.mods[i].path, prog)) {
      mapping_of(e, &snap->modules.mods[i]);
      break;
    }
  for (int i = 0; i < NVAL; i++)
    put_value_type(e, 1, value_types[i].type, value_types[i].unit);
  for (size_t i = 0; i < ss->n; i++) {
    int zero = 1;
    for (int k = 0; k < NVAL; k++)
      zero &= ss->v[i].v[k] == 0;
    if (!zero)
      put_sample(e, &ss->v[i]);
  }
  put_tables(e);
  char comment[256];
  snprintf(comment, sizeof comment,
           "heapsnap %s: %s of pid %llu%s", HS_VERSION_STRING,
           old ? "allocations and change of the live heap"
               : "allocations since tracing started, and the live heap",
           (unsigned long long)snap->pid,
           snap->sample_rate ? " (sampled; values are estimates)" : "");
  uint32_t ci = str(e, comment);
  uint32_t dflt = str(e, value_types[default_value(kind)].type);
  put_value_type(e, 11, "space", "bytes");
  put_u64(&e->out, 9, snap->time_ns);
  if (old && snap->time_ns > old->time_ns)
    put_u64(&e->out, 10, snap->time_ns - old->time_ns);
  put_u64(&e->out, 12, snap->sample_rate ? snap->sample_rate : 1);
  put_u64(&e->out, 13, ci);
  put_u64(&e->out, 14, dflt);
  for (size_t i = 0; i < e->nstr; i++) {
    const char *s = (const char *)e->strs.p + e->str_off[i];
    put_bytes(&e->out, 6, s, strlen(s));
  }
  int rc = e->err || e->out.err || e->msg.err || e->pk.err ||
                   gzip_into(&e->out, out)
               ? HS_ENOMEM
               : 0;
  enc_free(e);
  free(e);
  return rc;
}

/* ---- text (?debug=1) ---- */

static const sample_t *sort_base;
/* Go's order: in-use bytes, largest first; then allocated bytes, which
 * orders the stacks whose blocks are all freed. */
static int by_space(const void *a, const void *b) {
  const sample_t *x = &sort_base[*(const uint32_t *)a],
                 *y = &sort_base[*(const uint32_t *)b];
  int64_t p = x->v[V_INUSE_SPACE], q = y->v[V_INUSE_SPACE];
  if (p == q) {
    p = x->v[V_ALLOC_SPACE];
    q = y->v[V_ALLOC_SPACE];
  }
  return p > q ? -1 : p < q;
}

/* Go's legacy heap text, "inuse_objects: inuse_bytes [alloc_objects:
 * alloc_bytes] @ addresses", which pprof's legacy parser reads. Values are
 * what the proto form carries, estimates when sampled, so the rate is
 * written as 1 ("heap/2", Go's 2 * MemProfileRate): a parser that sees a
 * larger rate scales the values again. The trailing comments say what was
 * sampled, as Go's say what runtime.MemStats held. */
static int write_text(const struct hs_snapshot *snap, const samples_t *ss,
                      hs_buf_t *out) {
  int64_t tot[NVAL] = {0};
  uint32_t *order = malloc((ss->n + 1) * sizeof *order);
  if (!order)
    return HS_ENOMEM;
  size_t n = 0;
  for (size_t i = 0; i < ss->n; i++) {
    int zero = 1;
    for (int k = 0; k < NVAL; k++) {
      tot[k] += ss->v[i].v[k];
      zero &= ss->v[i].v[k] == 0;
    }
    if (!zero)
      order[n++] = (uint32_t)i;
  }
  sort_base = ss->v; /* one server thread: a static is safe here */
  qsort(order, n, sizeof *order, by_space);
  hs__buf_printf(out, "heap profile: %lld: %lld [%lld: %lld] @ heap/2\n",
                 (long long)tot[V_INUSE_OBJECTS],
                 (long long)tot[V_INUSE_SPACE],
                 (long long)tot[V_ALLOC_OBJECTS],
                 (long long)tot[V_ALLOC_SPACE]);
  for (size_t o = 0; o < n; o++) {
    const sample_t *sm = &ss->v[order[o]];
    const struct hs_snapshot *s = sm->s;
    const hs_snap_stack_t *k = &s->stacks[sm->stack];
    hs__buf_printf(out, "%lld: %lld [%lld: %lld] @",
                   (long long)sm->v[V_INUSE_OBJECTS],
                   (long long)sm->v[V_INUSE_SPACE],
                   (long long)sm->v[V_ALLOC_OBJECTS],
                   (long long)sm->v[V_ALLOC_SPACE]);
    for (uint32_t i = sm->site; i < k->nloc; i++)
      hs__buf_printf(out, " 0x%llx",
                     (unsigned long long)loc_address(
                         s, &s->locs[s->stack_locs[k->first + i]]));
    hs__buf_printf(out, "\n");
    for (uint32_t i = sm->site; i < k->nloc; i++) {
      const hs_loc_t *l = &s->locs[s->stack_locs[k->first + i]];
      const hs_module_t *m = loc_module(s, l);
      const char *fn = hs__str(s, l->function), *file = hs__str(s, l->file);
      hs__buf_printf(out, "#\t0x%llx\t%s\t",
                     (unsigned long long)loc_address(s, l), fn ? fn : "??");
      if (file)
        hs__buf_printf(out, "%s:%u\n", file, l->line);
      else
        hs__buf_printf(out, "%s+0x%llx\n", m ? m->path : "?",
                       (unsigned long long)l->offset);
    }
    hs__buf_printf(out, "\n");
  }
  hs__buf_printf(out,
                 "# heapsnap %s, pid %llu: alloc_ counted since tracing "
                 "started, inuse_ live\n",
                 HS_VERSION_STRING, (unsigned long long)snap->pid);
  if (snap->sample_rate)
    hs__buf_printf(out,
                   "# sampled, one sample per %llu bytes: the values are "
                   "estimates, already scaled\n",
                   (unsigned long long)snap->sample_rate);
  free(order);
  return out->err ? HS_ENOMEM : 0;
}

int hs__profile_write(hs_snapshot_t *snap, hs_snapshot_t *old, int kind,
                      int form, hs_buf_t *out) {
  int rc = hs__snapshot_symbolize(snap);
  if (rc == 0 && old)
    rc = hs__snapshot_symbolize(old);
  if (rc)
    return rc;
  samples_t ss;
  memset(&ss, 0, sizeof ss);
  rc = add_snapshot(&ss, snap, 1);
  if (rc == 0 && old)
    rc = add_snapshot(&ss, old, -1);
  if (rc == 0)
    rc = form == HS_PROFILE_TEXT ? write_text(snap, &ss, out)
                                 : write_pprof(snap, old, kind, &ss, out);
  free(ss.v);
  imap_free(&ss.by_stack);
  return rc;
}
