/* rl_internal.h - reclayout's private structs and the rl__ functions shared
 * between its files; never installed. Tests include it for the allocator seam. */
#ifndef RL_INTERNAL_H
#define RL_INTERNAL_H

#include "reclayout.h"

#define RL_INTERNAL __attribute__((visibility("hidden")))

/* ---- Allocation seam --------------------------------------------------- */
/* Every block reclayout owns goes through these, so the sizes reported by
 * rl_*sizeof can be proved equal to what was requested. free gets the size
 * the block was requested with, so a counting hook needs no table. */
typedef struct rl__allocator {
  void *(*alloc)(size_t size, int zero, void *ud); /* zero: calloc semantics */
  void (*free)(void *p, size_t size, void *ud);
  void *ud;
} rl__allocator_t;

/* Test-only: NULL restores malloc/calloc/free. Not thread-safe: call it
 * while no other thread is inside reclayout. */
RL_INTERNAL void rl__set_allocator(const rl__allocator_t *a);
RL_INTERNAL void *rl__alloc(size_t size);
RL_INTERNAL void *rl__calloc(size_t size);
RL_INTERNAL void rl__free(void *p, size_t size);
RL_INTERNAL char *rl__strdup(const char *s, size_t *size_out);

/* Formats the thread's error detail and returns err, for `return rl__err(...)`. */
RL_INTERNAL int rl__err(int err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- Hashing ----------------------------------------------------------- */
RL_INTERNAL uint32_t rl__hash(const char *s);

/* ---- Classes ----------------------------------------------------------- */
typedef struct rl_slot {
  const char *name;        /* interned in the owning class's name pool */
  const rl_class_t *owner; /* class that declared it (for describe) */
  uint32_t offset;         /* in the cell area */
  uint8_t type;            /* rl_ctype_t */
  uint8_t size;
  uint8_t align;
} rl_slot_t;

/* One entry of the class's name table (open addressing, power-of-2 size). */
typedef struct rl_name {
  const char *name; /* NULL: empty */
  uint32_t hash;
  int32_t slot; /* slot index or -1 */
  int32_t key;  /* shared/interned dict key index or -1 */
} rl_name_t;

struct rl_class {
  char *name;
  size_t name_size;
  const rl_class_t *base;
  rl_slot_t *slots; /* nslots; inherited first */
  uint32_t nslots;
  uint32_t nown;      /* slots declared by this class (the tail of slots) */
  uint32_t data_end;  /* end of the last cell, before tail padding */
  uint32_t cells_size; /* data_end rounded up to max_align */
  uint32_t max_align;
  uint32_t shell_size; /* what rl_new requests */
  uint8_t has_dict;
  uint8_t dict_kind;  /* resolved rl_dict_kind_t */
  uint8_t all_typed;  /* every slot typed */
  uint8_t any_tagged;
  const char **keys;  /* interned dict keys (shared table order); nkeys */
  uint32_t nkeys;
  rl_name_t *names;   /* name table; names_mask + 1 entries */
  uint32_t names_mask;
  char *pool;         /* every interned name of this class, one block */
  size_t pool_size;
};

/* Finds name in the class's table; NULL if neither slot nor dict key. */
RL_INTERNAL const rl_name_t *rl__class_lookup(const rl_class_t *cls,
                                             const char *name, uint32_t hash);

/* ---- Instances --------------------------------------------------------- */
struct rl_obj {
  const rl_class_t *cls;
  /* then cells (cls->cells_size rounded to 8), then void *dict if has_dict */
};
_Static_assert(sizeof(struct rl_obj) == RL_OBJ_HEADER, "rl_cells() in the header");

static inline unsigned char *rl__cells(const rl_obj_t *o) {
  return (unsigned char *)(o + 1);
}
static inline void **rl__dictp(const rl_obj_t *o) {
  return (void **)(rl__cells(o) + ((o->cls->cells_size + 7u) & ~7u));
}

/* Internal value flags: the cell owns its string; a dict entry owns its key. */
#define RL__VF_OWNED 0x80u
#define RL__KEY_OWNED 0x1u /* in rl_reserved of a dict entry's value */

/* ---- Dicts (dict.c) ---------------------------------------------------- */
/* The block behind an instance's dict pointer starts with its kind. */
enum { RL__DK_SHARED = 1, RL__DK_COMPACT = 2 };

RL_INTERNAL void rl__dict_free(void *d);
RL_INTERNAL size_t rl__dict_sizeof(const void *d, const rl_class_t *cls);
RL_INTERNAL size_t rl__dict_len(const void *d);
/* Owned value strings in the dict (for deep sizeof). */
RL_INTERNAL size_t rl__dict_strings_sizeof(const void *d);
RL_INTERNAL rl_value_t *rl__dict_find(void *d, const rl_class_t *cls,
                                      const char *name, uint32_t hash,
                                      const rl_name_t *nm);
/* Stores v (already prepared: strings copied, flags final) under name.
 * May replace *dictp. On failure nothing changed and v is still the
 * caller's. On success the old value (if any) is returned in *old so the
 * caller frees its string. */
RL_INTERNAL int rl__dict_set(void **dictp, const rl_class_t *cls,
                             const char *name, uint32_t hash,
                             const rl_name_t *nm, rl_value_t v,
                             rl_value_t *old, int *had_old);
RL_INTERNAL int rl__dict_del(void **dictp, const rl_class_t *cls,
                             const char *name, uint32_t hash,
                             const rl_name_t *nm, rl_value_t *old);
/* Iteration over present entries in order: returns 1 and advances *pos. */
RL_INTERNAL int rl__dict_next(const void *d, const rl_class_t *cls,
                              size_t *pos, const char **name,
                              const rl_value_t **v);

/* Test-only view of a compact dict's tables. Returns 0, or RL_EINVAL when
 * obj has no compact dict. */
typedef struct rl__dict_stats {
  size_t size;      /* index table slots */
  size_t usable;    /* entry capacity (2/3 of size) */
  size_t nentries;  /* entries used, holes of deleted keys included */
  size_t used;      /* live keys */
  size_t dummies;   /* index slots marked deleted */
  size_t index_width; /* bytes per index */
} rl__dict_stats_t;
RL_INTERNAL int rl__dict_stats(const rl_obj_t *obj, rl__dict_stats_t *st);

#endif /* RL_INTERNAL_H */
