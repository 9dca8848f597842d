/* dict.c - the two dict representations behind an instance's dict pointer:
 * the compact ordered dict (an index table of small ints plus a dense entry
 * array) and the PEP 412 shared-key values array, with the divergence from
 * the second to the first.
 *
 * Compact dict, one block: a 16-byte header, then `size` indices of 1, 2 or
 * 4 bytes (EMPTY -1, DUMMY -2, else an entry number), then `usable` = 2/3 of
 * size entries of {key, value}. Entries are appended, so their order is the
 * insertion order; a deletion turns the index into DUMMY and the entry into
 * a hole, both dropped at the next resize. The entry array is full at 2/3
 * of the index table, which keeps probe chains short; then the dict grows
 * to the smallest power of two >= 3 * used (at least 8). An entry is 24
 * bytes: the key's 32-bit hash and the owned-key bit live in the value's
 * spare bytes. One block rather than CPython's object + keys pair, because
 * the instance already holds the only pointer to it.
 *
 * Shared-key values: 8-byte header + one 16-byte value per key of the
 * class's table. The instance holds keys 0..n_used-1, in table order; a key
 * outside the table, a key ahead of its turn, or any deletion makes the
 * instance diverge: its values move into a compact dict of its own. */
#include "rl_internal.h"

#define EMPTY (-1)
#define DUMMY (-2)
#define MIN_LOG2 3

typedef struct entry {
  const char *key; /* NULL: deleted */
  rl_value_t v;    /* v.rl_aux: hash; v.rl_reserved: RL__KEY_OWNED */
} entry_t;

typedef struct compact {
  uint8_t kind; /* RL__DK_COMPACT */
  uint8_t log2;
  uint8_t iw; /* bytes per index */
  uint8_t unused0;
  uint32_t used;     /* live keys */
  uint32_t nentries; /* entries appended, holes included */
  uint32_t unused1;
} compact_t;
_Static_assert(sizeof(compact_t) == 16, "compact dict header is 16 bytes");
_Static_assert(sizeof(entry_t) == 24, "dict entry is 24 bytes");

typedef struct shared {
  uint8_t kind; /* RL__DK_SHARED */
  uint8_t unused0;
  uint16_t cap;    /* the class's key count when allocated */
  uint32_t n_used; /* keys 0..n_used-1 present */
  rl_value_t v[];
} shared_t;
_Static_assert(sizeof(shared_t) == 8, "shared values header is 8 bytes");

static size_t usable_of(size_t size) { return size * 2 / 3; }
static size_t iw_of(size_t size) {
  return size <= 128 ? 1 : size <= 32768 ? 2 : 4;
}
static size_t block_size(unsigned log2) {
  size_t size = (size_t)1 << log2;
  return sizeof(compact_t) + size * iw_of(size) +
         usable_of(size) * sizeof(entry_t);
}
static size_t shared_size(size_t cap) {
  return sizeof(shared_t) + cap * sizeof(rl_value_t);
}

static int8_t *idx8(compact_t *d) { return (int8_t *)(d + 1); }
static entry_t *entries(const compact_t *d) {
  size_t size = (size_t)1 << d->log2;
  return (entry_t *)((unsigned char *)(d + 1) + size * d->iw);
}
static long ix_get(const compact_t *d, size_t i) {
  const void *t = d + 1;
  switch (d->iw) {
  case 1:
    return ((const int8_t *)t)[i];
  case 2:
    return ((const int16_t *)t)[i];
  default:
    return ((const int32_t *)t)[i];
  }
}
static void ix_put(compact_t *d, size_t i, long v) {
  void *t = d + 1;
  switch (d->iw) {
  case 1:
    ((int8_t *)t)[i] = (int8_t)v;
    break;
  case 2:
    ((int16_t *)t)[i] = (int16_t)v;
    break;
  default:
    ((int32_t *)t)[i] = (int32_t)v;
  }
}

/* Probe sequence: the perturbation folds the high hash bits in, so keys
 * that share their low bits still spread over the table. */
#define PROBE_START(d, h) size_t mask_ = ((size_t)1 << (d)->log2) - 1, \
  i_ = (h) & mask_; uint32_t perturb_ = (h)
#define PROBE_NEXT()                                                          \
  (perturb_ >>= 5, i_ = (i_ * 5 + perturb_ + 1) & mask_)

/* Index-table position of name, or -1. */
static long lookup(const compact_t *d, const char *name, uint32_t hash) {
  const entry_t *e = entries(d);
  PROBE_START(d, hash);
  for (;;) {
    long ix = ix_get(d, i_);
    if (ix == EMPTY)
      return -1;
    if (ix >= 0) {
      const entry_t *x = &e[ix];
      if (x->key == name ||
          (x->v.rl_aux == hash && strcmp(x->key, name) == 0))
        return (long)i_;
    }
    PROBE_NEXT();
  }
}

/* Slot for a new key: the first EMPTY or DUMMY on its probe sequence. */
static size_t free_slot(const compact_t *d, uint32_t hash) {
  PROBE_START(d, hash);
  while (ix_get(d, i_) >= 0)
    PROBE_NEXT();
  return i_;
}

static compact_t *compact_alloc(unsigned log2) {
  size_t size = (size_t)1 << log2;
  compact_t *d = rl__alloc(block_size(log2));
  if (!d)
    return NULL;
  d->kind = RL__DK_COMPACT;
  d->log2 = (uint8_t)log2;
  d->iw = (uint8_t)iw_of(size);
  d->unused0 = 0;
  d->used = d->nentries = d->unused1 = 0;
  memset(idx8(d), 0xff, size * d->iw); /* all EMPTY (-1) */
  return d;
}

/* Smallest table whose entry array holds n keys. */
static unsigned log2_for(size_t n) {
  unsigned l = MIN_LOG2;
  while (usable_of((size_t)1 << l) < n)
    l++;
  return l;
}

static void append(compact_t *d, const char *key, uint32_t hash,
                   rl_value_t v, int key_owned) {
  entry_t *e = &entries(d)[d->nentries];
  e->key = key;
  e->v = v;
  e->v.rl_aux = hash;
  e->v.rl_reserved = key_owned ? RL__KEY_OWNED : 0;
  ix_put(d, free_slot(d, hash), (long)d->nentries);
  d->nentries++;
  d->used++;
}

/* A table for `room` more keys than d holds, entries in order, holes and
 * dummies dropped. d is untouched; NULL on out of memory. */
static compact_t *regrow(const compact_t *d, size_t room) {
  /* CPython's growth rate: the smallest power of two >= 3 * used. */
  unsigned l = log2_for(d->used + room);
  while (((size_t)1 << l) < (size_t)d->used * 3)
    l++;
  compact_t *n = compact_alloc(l);
  if (!n)
    return NULL;
  const entry_t *e = entries(d);
  for (size_t i = 0; i < d->nentries; i++) {
    if (!e[i].key)
      continue;
    entries(n)[n->nentries] = e[i];
    ix_put(n, free_slot(n, e[i].v.rl_aux), (long)n->nentries);
    n->nentries++;
    n->used++;
  }
  return n;
}

/* The compact dict equivalent of a shared values array, with room for
 * `room` more keys. Keys are the class's interned names, values moved. */
static compact_t *diverge(const shared_t *s, const rl_class_t *cls,
                          size_t room) {
  compact_t *n = compact_alloc(log2_for(s->n_used + room));
  if (!n)
    return NULL;
  for (size_t k = 0; k < s->n_used; k++)
    append(n, cls->keys[k], rl__hash(cls->keys[k]), s->v[k], 0);
  return n;
}

static size_t owned_len(const rl_value_t *v) {
  return (v->kind == RL_KIND_STR && (v->flags & RL__VF_OWNED))
             ? strlen(v->u.s) + 1
             : 0;
}

void rl__dict_free(void *p) {
  if (!p)
    return;
  if (*(uint8_t *)p == RL__DK_SHARED) {
    shared_t *s = p;
    for (size_t k = 0; k < s->n_used; k++)
      if (owned_len(&s->v[k]))
        rl__free((void *)s->v[k].u.s, owned_len(&s->v[k]));
    rl__free(s, shared_size(s->cap));
    return;
  }
  compact_t *d = p;
  entry_t *e = entries(d);
  for (size_t i = 0; i < d->nentries; i++) {
    if (!e[i].key)
      continue;
    if (owned_len(&e[i].v))
      rl__free((void *)e[i].v.u.s, owned_len(&e[i].v));
    if (e[i].v.rl_reserved & RL__KEY_OWNED)
      rl__free((void *)e[i].key, strlen(e[i].key) + 1);
  }
  rl__free(d, block_size(d->log2));
}

size_t rl__dict_sizeof(const void *p, const rl_class_t *cls) {
  (void)cls;
  if (!p)
    return 0;
  if (*(const uint8_t *)p == RL__DK_SHARED)
    return shared_size(((const shared_t *)p)->cap);
  const compact_t *d = p;
  size_t n = block_size(d->log2);
  const entry_t *e = entries(d);
  for (size_t i = 0; i < d->nentries; i++)
    if (e[i].key && (e[i].v.rl_reserved & RL__KEY_OWNED))
      n += strlen(e[i].key) + 1;
  return n;
}

size_t rl__dict_len(const void *p) {
  if (!p)
    return 0;
  if (*(const uint8_t *)p == RL__DK_SHARED)
    return ((const shared_t *)p)->n_used;
  return ((const compact_t *)p)->used;
}

size_t rl__dict_strings_sizeof(const void *p) {
  size_t n = 0;
  if (!p)
    return 0;
  if (*(const uint8_t *)p == RL__DK_SHARED) {
    const shared_t *s = p;
    for (size_t k = 0; k < s->n_used; k++)
      n += owned_len(&s->v[k]);
    return n;
  }
  const compact_t *d = p;
  const entry_t *e = entries(d);
  for (size_t i = 0; i < d->nentries; i++)
    if (e[i].key)
      n += owned_len(&e[i].v);
  return n;
}

rl_value_t *rl__dict_find(void *p, const rl_class_t *cls, const char *name,
                          uint32_t hash, const rl_name_t *nm) {
  (void)cls;
  if (!p)
    return NULL;
  if (*(uint8_t *)p == RL__DK_SHARED) {
    shared_t *s = p;
    if (nm && nm->key >= 0 && (uint32_t)nm->key < s->n_used)
      return &s->v[nm->key];
    return NULL;
  }
  compact_t *d = p;
  long at = lookup(d, name, hash);
  return at < 0 ? NULL : &entries(d)[ix_get(d, (size_t)at)].v;
}

/* The key to store for name: the class's interned copy, or a new one. */
static int key_for(const char *name, const rl_name_t *nm, const char **key,
                   int *owned) {
  if (nm && nm->key >= 0) {
    *key = nm->name;
    *owned = 0;
    return 0;
  }
  size_t n;
  char *k = rl__strdup(name, &n);
  if (!k)
    return rl__err(RL_ENOMEM, "out of memory copying attribute name '%s'",
                   name);
  *key = k;
  *owned = 1;
  return 0;
}

int rl__dict_set(void **dictp, const rl_class_t *cls, const char *name,
                 uint32_t hash, const rl_name_t *nm, rl_value_t v,
                 rl_value_t *old, int *had_old) {
  void *p = *dictp;
  *had_old = 0;
  int k = nm ? nm->key : -1;

  if (p && *(uint8_t *)p == RL__DK_SHARED) {
    shared_t *s = p;
    if (k >= 0 && (uint32_t)k < s->n_used) {
      *old = s->v[k];
      *had_old = 1;
      s->v[k] = v;
      s->v[k].rl_aux = 0;
      s->v[k].rl_reserved = 0;
      return 0;
    }
    if (k >= 0 && (uint32_t)k == s->n_used) {
      s->v[k] = v;
      s->v[k].rl_aux = 0;
      s->v[k].rl_reserved = 0;
      s->n_used++;
      return 0;
    }
    /* Diverge: allocate everything first so failure changes nothing. */
    const char *key = NULL;
    int owned = 0;
    int rc = key_for(name, nm, &key, &owned);
    if (rc < 0)
      return rc;
    compact_t *n = diverge(s, cls, 1);
    if (!n) {
      if (owned)
        rl__free((void *)key, strlen(key) + 1);
      return rl__err(RL_ENOMEM, "out of memory: '%s' object's dict diverging "
                                "from the shared keys",
                     cls->name);
    }
    append(n, key, hash, v, owned);
    rl__free(s, shared_size(s->cap)); /* values moved, nothing else owned */
    *dictp = n;
    return 0;
  }

  if (!p && cls->dict_kind == RL_DICT_SHARED && k == 0) {
    shared_t *s = rl__calloc(shared_size(cls->nkeys));
    if (!s)
      return rl__err(RL_ENOMEM, "out of memory allocating '%s' object's values",
                     cls->name);
    s->kind = RL__DK_SHARED;
    s->cap = (uint16_t)cls->nkeys;
    s->v[0] = v;
    s->v[0].rl_aux = 0;
    s->v[0].rl_reserved = 0;
    s->n_used = 1;
    *dictp = s;
    return 0;
  }

  compact_t *d = p;
  if (d) {
    long at = lookup(d, name, hash);
    if (at >= 0) {
      entry_t *e = &entries(d)[ix_get(d, (size_t)at)];
      *old = e->v;
      *had_old = 1;
      uint32_t h = e->v.rl_aux;
      uint16_t r = e->v.rl_reserved;
      e->v = v;
      e->v.rl_aux = h;
      e->v.rl_reserved = r;
      return 0;
    }
  }
  const char *key = NULL;
  int owned = 0;
  int rc = key_for(name, nm, &key, &owned);
  if (rc < 0)
    return rc;
  if (!d || d->nentries == usable_of((size_t)1 << d->log2)) {
    /* lazily created (or a shared-key instance diverging at its first
     * key), or the entry array is full: a new table, old one kept intact
     * until it exists */
    compact_t *n = d ? regrow(d, 1) : compact_alloc(MIN_LOG2);
    if (!n) {
      if (owned)
        rl__free((void *)key, strlen(key) + 1);
      return rl__err(RL_ENOMEM, "out of memory growing '%s' object's dict",
                     cls->name);
    }
    if (d)
      rl__free(d, block_size(d->log2)); /* entries moved */
    *dictp = d = n;
  }
  append(d, key, hash, v, owned);
  return 0;
}

int rl__dict_del(void **dictp, const rl_class_t *cls, const char *name,
                 uint32_t hash, const rl_name_t *nm, rl_value_t *old) {
  void *p = *dictp;
  if (!p || !rl__dict_find(p, cls, name, hash, nm))
    return rl__err(RL_EATTR, "'%s' object has no attribute '%s'", cls->name,
                   name);
  if (*(uint8_t *)p == RL__DK_SHARED) {
    shared_t *s = p;
    compact_t *n = diverge(s, cls, 0);
    if (!n)
      return rl__err(RL_ENOMEM, "out of memory: '%s' object's dict diverging "
                                "from the shared keys",
                     cls->name);
    rl__free(s, shared_size(s->cap));
    *dictp = p = n;
  }
  compact_t *d = p;
  long at = lookup(d, name, hash);
  entry_t *e = &entries(d)[ix_get(d, (size_t)at)];
  *old = e->v;
  old->rl_aux = 0;
  old->rl_reserved = 0;
  if (e->v.rl_reserved & RL__KEY_OWNED)
    rl__free((void *)e->key, strlen(e->key) + 1);
  e->key = NULL;
  memset(&e->v, 0, sizeof e->v);
  ix_put(d, (size_t)at, DUMMY);
  d->used--;
  return 0;
}

int rl__dict_next(const void *p, const rl_class_t *cls, size_t *pos,
                  const char **name, const rl_value_t **v) {
  if (!p)
    return 0;
  if (*(const uint8_t *)p == RL__DK_SHARED) {
    const shared_t *s = p;
    if (*pos >= s->n_used)
      return 0;
    *name = cls->keys[*pos];
    *v = &s->v[*pos];
    (*pos)++;
    return 1;
  }
  const compact_t *d = p;
  const entry_t *e = entries(d);
  while (*pos < d->nentries && !e[*pos].key)
    (*pos)++;
  if (*pos >= d->nentries)
    return 0;
  *name = e[*pos].key;
  *v = &e[*pos].v;
  (*pos)++;
  return 1;
}

int rl__dict_stats(const rl_obj_t *obj, rl__dict_stats_t *st) {
  if (!obj->cls->has_dict)
    return RL_EINVAL;
  const compact_t *d = *rl__dictp(obj);
  if (!d || d->kind != RL__DK_COMPACT)
    return RL_EINVAL;
  size_t size = (size_t)1 << d->log2;
  st->size = size;
  st->usable = usable_of(size);
  st->nentries = d->nentries;
  st->used = d->used;
  st->index_width = d->iw;
  st->dummies = 0;
  for (size_t i = 0; i < size; i++)
    if (ix_get(d, i) == DUMMY)
      st->dummies++;
  return 0;
}
