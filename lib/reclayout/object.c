/* object.c - instances: the shell (class pointer, cells, dict pointer),
 * attribute access by name and by slot index, typed-slot conversion,
 * headerless typed instances, iteration and exact size accounting. */
#include <math.h>

#include "rl_internal.h"

#define COLD __attribute__((cold, noinline))

static COLD int no_attr(const rl_class_t *cls, const char *name) {
  return rl__err(RL_EATTR, "'%s' object has no attribute '%s'", cls->name,
                 name);
}
static COLD int bad_index(const rl_class_t *cls, size_t i) {
  return rl__err(RL_ERANGE, "slot index %zu out of range for class '%s' (%u slots)",
                 i, cls->name, (unsigned)cls->nslots);
}
static COLD int bad_type(const rl_class_t *cls, const rl_slot_t *s,
                         const char *what) {
  return rl__err(RL_ETYPE, "slot '%s' of class '%s': %s", s->name, cls->name,
                 what);
}

static size_t owned_len(const rl_value_t *v) {
  return (v->kind == RL_KIND_STR && (v->flags & RL__VF_OWNED))
             ? strlen(v->u.s) + 1
             : 0;
}
static void release(rl_value_t *v) {
  size_t n = owned_len(v);
  if (n)
    rl__free((void *)v->u.s, n);
}

/* A caller's value made ready to store: strings copied unless borrowed,
 * flags normalised. Allocates only for an owned string. */
static int prepare(const rl_class_t *cls, const char *name, rl_value_t v,
                   rl_value_t *out) {
  if (v.kind == RL_KIND_UNSET || v.kind > RL_KIND_PTR)
    return rl__err(RL_EINVAL, "'%s'.%s: invalid value kind %u", cls->name,
                   name, (unsigned)v.kind);
  *out = v;
  out->rl_reserved = 0;
  out->rl_aux = 0;
  if (v.kind != RL_KIND_STR) {
    out->flags = 0;
    return 0;
  }
  if (!v.u.s)
    return rl__err(RL_EINVAL, "'%s'.%s: NULL string", cls->name, name);
  if (v.flags & RL_VF_BORROWED) {
    out->flags = RL_VF_BORROWED;
    return 0;
  }
  char *copy = rl__strdup(v.u.s, NULL);
  if (!copy)
    return rl__err(RL_ENOMEM, "out of memory copying a string for '%s'.%s",
                   cls->name, name);
  out->u.s = copy;
  out->flags = RL__VF_OWNED;
  return 0;
}

/* The caller's view of a stored value: internal bits hidden. */
static void view(const rl_value_t *cell, rl_value_t *out) {
  *out = *cell;
  out->flags = cell->flags & RL_VF_BORROWED;
  out->rl_reserved = 0;
  out->rl_aux = 0;
}

/* ---- Typed cells ------------------------------------------------------- */

static void load_typed(const rl_slot_t *s, const unsigned char *p,
                       rl_value_t *out) {
  *out = (rl_value_t){0};
  switch (s->type) {
  case RL_T_I64:
    out->kind = RL_KIND_INT;
    memcpy(&out->u.i, p, 8);
    break;
  case RL_T_F64:
    out->kind = RL_KIND_DOUBLE;
    memcpy(&out->u.d, p, 8);
    break;
  case RL_T_I32: {
    int32_t x;
    memcpy(&x, p, 4);
    out->kind = RL_KIND_INT;
    out->u.i = x;
    break;
  }
  case RL_T_F32: {
    float x;
    memcpy(&x, p, 4);
    out->kind = RL_KIND_DOUBLE;
    out->u.d = x;
    break;
  }
  case RL_T_U8:
    out->kind = RL_KIND_INT;
    out->u.i = *p;
    break;
  case RL_T_BOOL:
    out->kind = RL_KIND_BOOL;
    memcpy(&out->u.b, p, sizeof(bool));
    break;
  case RL_T_PTR:
    out->kind = RL_KIND_PTR;
    memcpy(&out->u.ptr, p, sizeof(void *));
    break;
  }
}

/* Converts v to the slot's C type; nothing is written on failure. */
static int store_typed(const rl_class_t *cls, const rl_slot_t *s,
                       unsigned char *p, rl_value_t v) {
  switch (s->type) {
  case RL_T_I64:
    if (v.kind != RL_KIND_INT)
      return bad_type(cls, s, "int64_t slot needs an int");
    memcpy(p, &v.u.i, 8);
    return 0;
  case RL_T_F64:
  case RL_T_F32: {
    double d;
    if (v.kind == RL_KIND_DOUBLE)
      d = v.u.d;
    else if (v.kind == RL_KIND_INT)
      d = (double)v.u.i;
    else
      return bad_type(cls, s, "floating slot needs a double or an int");
    if (s->type == RL_T_F64) {
      memcpy(p, &d, 8);
    } else {
      if (isfinite(d) && fabs(d) > 3.4028234663852886e38)
        return rl__err(RL_EOVERFLOW, "slot '%s' of class '%s': %g overflows "
                                     "float",
                       s->name, cls->name, d);
      float f = (float)d;
      memcpy(p, &f, 4);
    }
    return 0;
  }
  case RL_T_I32: {
    if (v.kind != RL_KIND_INT)
      return bad_type(cls, s, "int32_t slot needs an int");
    if (v.u.i < INT32_MIN || v.u.i > INT32_MAX)
      return rl__err(RL_EOVERFLOW,
                     "slot '%s' of class '%s': %lld out of int32_t range",
                     s->name, cls->name, (long long)v.u.i);
    int32_t x = (int32_t)v.u.i;
    memcpy(p, &x, 4);
    return 0;
  }
  case RL_T_U8:
    if (v.kind != RL_KIND_INT)
      return bad_type(cls, s, "uint8_t slot needs an int");
    if (v.u.i < 0 || v.u.i > 255)
      return rl__err(RL_EOVERFLOW,
                     "slot '%s' of class '%s': %lld out of uint8_t range",
                     s->name, cls->name, (long long)v.u.i);
    *p = (uint8_t)v.u.i;
    return 0;
  case RL_T_BOOL:
    if (v.kind != RL_KIND_BOOL)
      return bad_type(cls, s, "bool slot needs a bool");
    memcpy(p, &v.u.b, sizeof(bool));
    return 0;
  case RL_T_PTR:
    if (v.kind != RL_KIND_PTR)
      return bad_type(cls, s, "pointer slot needs a pointer");
    memcpy(p, &v.u.ptr, sizeof(void *));
    return 0;
  }
  return RL_EINVAL;
}

/* ---- Slots, by cells pointer (shared by both kinds of instance) -------- */

static int slot_get(const rl_class_t *cls, const unsigned char *cells,
                    const rl_slot_t *s, rl_value_t *out) {
  if (s->type == RL_T_TAGGED) {
    const rl_value_t *c = (const rl_value_t *)(cells + s->offset);
    if (c->kind == RL_KIND_UNSET)
      return no_attr(cls, s->name);
    view(c, out);
    return 0;
  }
  load_typed(s, cells + s->offset, out);
  return 0;
}

static int slot_set(const rl_class_t *cls, unsigned char *cells,
                    const rl_slot_t *s, rl_value_t v) {
  if (s->type != RL_T_TAGGED)
    return store_typed(cls, s, cells + s->offset, v);
  rl_value_t *c = (rl_value_t *)(cells + s->offset);
  if (v.kind != RL_KIND_STR && v.kind != RL_KIND_UNSET && v.kind <= RL_KIND_PTR) {
    /* no string to copy: the common numeric store, kept branch-light */
    release(c);
    *c = v;
    c->flags = 0;
    c->rl_reserved = 0;
    c->rl_aux = 0;
    return 0;
  }
  rl_value_t pv;
  int rc = prepare(cls, s->name, v, &pv);
  if (rc < 0)
    return rc;
  release(c);
  *c = pv;
  return 0;
}

/* ---- Instances --------------------------------------------------------- */

int rl_new(const rl_class_t *cls, rl_obj_t **out) {
  if (!cls || !out)
    return rl__err(RL_EINVAL, "rl_new: NULL argument");
  rl_obj_t *o = rl__calloc(cls->shell_size); /* tagged cells start UNSET */
  if (!o)
    return rl__err(RL_ENOMEM, "out of memory creating a '%s' object",
                   cls->name);
  o->cls = cls;
  *out = o;
  return 0;
}

void rl_free(rl_obj_t *obj) {
  if (!obj)
    return;
  const rl_class_t *cls = obj->cls;
  if (cls->any_tagged)
    for (size_t i = 0; i < cls->nslots; i++)
      if (cls->slots[i].type == RL_T_TAGGED)
        release((rl_value_t *)(rl__cells(obj) + cls->slots[i].offset));
  if (cls->has_dict)
    rl__dict_free(*rl__dictp(obj));
  rl__free(obj, cls->shell_size);
}

const rl_class_t *rl_class_of(const rl_obj_t *obj) { return obj->cls; }

static int is_dict_name(const char *name) {
  return name[0] == '_' && strcmp(name, "__dict__") == 0;
}

int rl_get(const rl_obj_t *obj, const char *name, rl_value_t *out) {
  if (!obj || !name || !out)
    return rl__err(RL_EINVAL, "rl_get: NULL argument");
  const rl_class_t *cls = obj->cls;
  uint32_t h = rl__hash(name);
  const rl_name_t *nm = rl__class_lookup(cls, name, h);
  if (nm && nm->slot >= 0)
    return slot_get(cls, rl__cells(obj), &cls->slots[nm->slot], out);
  if (cls->has_dict) {
    const rl_value_t *v = rl__dict_find(*rl__dictp(obj), cls, name, h, nm);
    if (v) {
      view(v, out);
      return 0;
    }
  }
  if (is_dict_name(name))
    return rl__err(RL_EINVAL, "'__dict__' is not a value; use rl_has_dict(), "
                              "rl_next() and rl_dict_len()");
  return no_attr(cls, name);
}

int rl_set(rl_obj_t *obj, const char *name, rl_value_t v) {
  if (!obj || !name)
    return rl__err(RL_EINVAL, "rl_set: NULL argument");
  const rl_class_t *cls = obj->cls;
  uint32_t h = rl__hash(name);
  const rl_name_t *nm = rl__class_lookup(cls, name, h);
  if (nm && nm->slot >= 0)
    return slot_set(cls, rl__cells(obj), &cls->slots[nm->slot], v);
  if (is_dict_name(name))
    return rl__err(RL_EINVAL, "'__dict__' cannot be assigned");
  if (!cls->has_dict)
    return no_attr(cls, name);
  rl_value_t pv, old;
  int had_old;
  int rc = prepare(cls, name, v, &pv);
  if (rc < 0)
    return rc;
  rc = rl__dict_set(rl__dictp(obj), cls, name, h, nm, pv, &old, &had_old);
  if (rc < 0) {
    release(&pv);
    return rc;
  }
  if (had_old)
    release(&old);
  return 0;
}

int rl_del(rl_obj_t *obj, const char *name) {
  if (!obj || !name)
    return rl__err(RL_EINVAL, "rl_del: NULL argument");
  const rl_class_t *cls = obj->cls;
  uint32_t h = rl__hash(name);
  const rl_name_t *nm = rl__class_lookup(cls, name, h);
  if (nm && nm->slot >= 0) {
    const rl_slot_t *s = &cls->slots[nm->slot];
    if (s->type != RL_T_TAGGED)
      return bad_type(cls, s, "a typed slot cannot be deleted");
    rl_value_t *c = (rl_value_t *)(rl__cells(obj) + s->offset);
    if (c->kind == RL_KIND_UNSET)
      return no_attr(cls, name);
    release(c);
    memset(c, 0, sizeof *c);
    return 0;
  }
  if (is_dict_name(name))
    return rl__err(RL_EINVAL, "'__dict__' cannot be deleted");
  if (!cls->has_dict)
    return no_attr(cls, name);
  rl_value_t old;
  int rc = rl__dict_del(rl__dictp(obj), cls, name, h, nm, &old);
  if (rc < 0)
    return rc;
  release(&old);
  return 0;
}

int rl_has(const rl_obj_t *obj, const char *name) {
  if (!obj || !name)
    return 0;
  const rl_class_t *cls = obj->cls;
  uint32_t h = rl__hash(name);
  const rl_name_t *nm = rl__class_lookup(cls, name, h);
  if (nm && nm->slot >= 0) {
    const rl_slot_t *s = &cls->slots[nm->slot];
    return s->type != RL_T_TAGGED ||
           ((const rl_value_t *)(rl__cells(obj) + s->offset))->kind !=
               RL_KIND_UNSET;
  }
  if (is_dict_name(name))
    return cls->has_dict;
  return cls->has_dict &&
         rl__dict_find(*rl__dictp(obj), cls, name, h, nm) != NULL;
}

/* ---- By index ---------------------------------------------------------- */

/* hot path: no allocation, no lock. The tagged case is written out here
 * rather than through slot_get so it compiles to a handful of loads. */
int rl_get_index(const rl_obj_t *obj, size_t i, rl_value_t *out) {
  const rl_class_t *cls = obj->cls;
  if (__builtin_expect(i >= cls->nslots, 0))
    return bad_index(cls, i);
  const rl_slot_t *s = &cls->slots[i];
  const unsigned char *p = rl__cells(obj) + s->offset;
  if (__builtin_expect(s->type == RL_T_TAGGED, 1)) {
    const rl_value_t *c = (const rl_value_t *)p;
    if (__builtin_expect(c->kind == RL_KIND_UNSET, 0))
      return no_attr(cls, s->name);
    *out = *c; /* a cell's reserved bytes are always 0 */
    out->flags &= RL_VF_BORROWED;
    return 0;
  }
  load_typed(s, p, out);
  return 0;
}

/* hot path: allocates only to copy a string */
int rl_set_index(rl_obj_t *obj, size_t i, rl_value_t v) {
  const rl_class_t *cls = obj->cls;
  if (__builtin_expect(i >= cls->nslots, 0))
    return bad_index(cls, i);
  const rl_slot_t *s = &cls->slots[i];
  rl_value_t *c = (rl_value_t *)(rl__cells(obj) + s->offset);
  if (__builtin_expect(s->type == RL_T_TAGGED && v.kind > RL_KIND_UNSET &&
                           v.kind < RL_KIND_STR && c->kind != RL_KIND_STR,
                       1)) {
    /* a scalar over a scalar: nothing to free, nothing to copy */
    c->kind = v.kind;
    c->flags = 0;
    c->u = v.u;
    return 0;
  }
  return slot_set(cls, rl__cells(obj), s, v);
}

/* The typed slot i of type t, or NULL after recording the error in *rc. */
static inline const rl_slot_t *typed_slot(const rl_class_t *cls, size_t i,
                                          int t, int *rc) {
  if (__builtin_expect(i >= cls->nslots, 0)) {
    *rc = bad_index(cls, i);
    return NULL;
  }
  const rl_slot_t *s = &cls->slots[i];
  if (__builtin_expect(s->type != t, 0)) {
    *rc = bad_type(cls, s, t == RL_T_F64 ? "not a double slot"
                                         : "not an int64_t slot");
    return NULL;
  }
  return s;
}

int rl_get_f64_index(const rl_obj_t *obj, size_t i, double *out) {
  int rc;
  const rl_slot_t *s = typed_slot(obj->cls, i, RL_T_F64, &rc);
  if (!s)
    return rc;
  memcpy(out, rl__cells(obj) + s->offset, 8);
  return 0;
}
int rl_set_f64_index(rl_obj_t *obj, size_t i, double v) {
  int rc;
  const rl_slot_t *s = typed_slot(obj->cls, i, RL_T_F64, &rc);
  if (!s)
    return rc;
  memcpy(rl__cells(obj) + s->offset, &v, 8);
  return 0;
}
int rl_get_i64_index(const rl_obj_t *obj, size_t i, int64_t *out) {
  int rc;
  const rl_slot_t *s = typed_slot(obj->cls, i, RL_T_I64, &rc);
  if (!s)
    return rc;
  memcpy(out, rl__cells(obj) + s->offset, 8);
  return 0;
}
int rl_set_i64_index(rl_obj_t *obj, size_t i, int64_t v) {
  int rc;
  const rl_slot_t *s = typed_slot(obj->cls, i, RL_T_I64, &rc);
  if (!s)
    return rc;
  memcpy(rl__cells(obj) + s->offset, &v, 8);
  return 0;
}

/* ---- Dict facts, iteration, sizes -------------------------------------- */

int rl_has_dict(const rl_obj_t *obj) { return obj->cls->has_dict; }

rl_dict_kind_t rl_dict_kind_of(const rl_obj_t *obj) {
  if (!obj->cls->has_dict)
    return RL_DICT_NONE;
  const void *d = *rl__dictp(obj);
  if (!d)
    return (rl_dict_kind_t)obj->cls->dict_kind;
  return *(const uint8_t *)d == RL__DK_SHARED ? RL_DICT_SHARED
                                              : RL_DICT_INSTANCE;
}

size_t rl_dict_len(const rl_obj_t *obj) {
  return obj->cls->has_dict ? rl__dict_len(*rl__dictp(obj)) : 0;
}

int rl_next(const rl_obj_t *obj, size_t *pos, const char **name,
            rl_value_t *out) {
  const rl_class_t *cls = obj->cls;
  while (*pos < cls->nslots) {
    const rl_slot_t *s = &cls->slots[(*pos)++];
    if (slot_get(cls, rl__cells(obj), s, out) == 0) {
      *name = s->name;
      return 1;
    }
  }
  if (!cls->has_dict)
    return 0;
  size_t dpos = *pos - cls->nslots;
  const rl_value_t *v;
  if (!rl__dict_next(*rl__dictp(obj), cls, &dpos, name, &v))
    return 0;
  view(v, out);
  *pos = cls->nslots + dpos;
  return 1;
}

size_t rl_sizeof(const rl_obj_t *obj) { return obj->cls->shell_size; }

size_t rl_dict_sizeof(const rl_obj_t *obj) {
  return obj->cls->has_dict ? rl__dict_sizeof(*rl__dictp(obj), obj->cls) : 0;
}

size_t rl_deep_sizeof(const rl_obj_t *obj) {
  const rl_class_t *cls = obj->cls;
  size_t n = cls->shell_size;
  if (cls->any_tagged)
    for (size_t i = 0; i < cls->nslots; i++)
      if (cls->slots[i].type == RL_T_TAGGED)
        n += owned_len(
            (const rl_value_t *)(rl__cells(obj) + cls->slots[i].offset));
  if (cls->has_dict) {
    const void *d = *rl__dictp(obj);
    n += rl__dict_sizeof(d, cls) + rl__dict_strings_sizeof(d);
  }
  return n;
}

/* ---- Headerless typed instances ---------------------------------------- */

int rl_new_typed(const rl_class_t *cls, void **out) {
  if (!cls || !out)
    return rl__err(RL_EINVAL, "rl_new_typed: NULL argument");
  if (!rl_class_is_plain(cls) || cls->cells_size == 0)
    return rl__err(RL_EINVAL,
                   "rl_new_typed: class '%s' is not a plain struct (needs at "
                   "least one slot, every slot typed, and no __dict__)",
                   cls->name);
  void *p = rl__calloc(cls->cells_size);
  if (!p)
    return rl__err(RL_ENOMEM, "out of memory creating a '%s' struct",
                   cls->name);
  *out = p;
  return 0;
}

void rl_free_typed(const rl_class_t *cls, void *cells) {
  if (cells)
    rl__free(cells, cls->cells_size);
}

int rl_typed_get(const rl_class_t *cls, const void *cells, const char *name,
                 rl_value_t *out) {
  if (!cls || !cells || !name || !out)
    return rl__err(RL_EINVAL, "rl_typed_get: NULL argument");
  const rl_name_t *nm = rl__class_lookup(cls, name, rl__hash(name));
  if (!nm || nm->slot < 0)
    return no_attr(cls, name);
  return slot_get(cls, cells, &cls->slots[nm->slot], out);
}

int rl_typed_set(const rl_class_t *cls, void *cells, const char *name,
                 rl_value_t v) {
  if (!cls || !cells || !name)
    return rl__err(RL_EINVAL, "rl_typed_set: NULL argument");
  if (!rl_class_is_plain(cls))
    return rl__err(RL_EINVAL, "rl_typed_set: class '%s' is not plain",
                   cls->name);
  const rl_name_t *nm = rl__class_lookup(cls, name, rl__hash(name));
  if (!nm || nm->slot < 0)
    return no_attr(cls, name);
  return store_typed(cls, &cls->slots[nm->slot],
                     (unsigned char *)cells + cls->slots[nm->slot].offset, v);
}
