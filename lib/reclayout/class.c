/* class.c - class creation: slot inheritance and Python's layout rules, the
 * packed cell layout, the per-class name table, and the pahole-style dump. */
#include <stdlib.h>

#include "rl_internal.h"

static const struct {
  uint8_t size, align;
  const char *cname;
} ctypes[] = {
    [RL_T_TAGGED] = {sizeof(rl_value_t), _Alignof(rl_value_t), "rl_value_t"},
    [RL_T_I64] = {8, _Alignof(int64_t), "int64_t"},
    [RL_T_F64] = {8, _Alignof(double), "double"},
    [RL_T_I32] = {4, 4, "int32_t"},
    [RL_T_F32] = {4, 4, "float"},
    [RL_T_U8] = {1, 1, "uint8_t"},
    [RL_T_BOOL] = {sizeof(bool), _Alignof(bool), "bool"},
    [RL_T_PTR] = {sizeof(void *), _Alignof(void *), "void *"},
};
_Static_assert(sizeof(rl_value_t) == 16, "a tagged cell is 16 bytes");

#define DICT_SLOT "__dict__"

static size_t align_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

const rl_name_t *rl__class_lookup(const rl_class_t *cls, const char *name,
                                  uint32_t hash) {
  uint32_t i = hash & cls->names_mask;
  for (;;) {
    const rl_name_t *e = &cls->names[i];
    if (!e->name)
      return NULL;
    if (e->hash == hash && (e->name == name || strcmp(e->name, name) == 0))
      return e;
    i = (i + 1) & cls->names_mask;
  }
}

/* Builds into a zeroed class; the caller frees everything on failure. */
static int build(rl_class_t *c, const rl_class_spec_t *spec) {
  const rl_class_t *base = spec->base;
  bool dict_slot = false;
  size_t nown = 0;

  if (!spec->name || !*spec->name)
    return rl__err(RL_EINVAL, "class name is missing");
  if (!spec->declares_slots && spec->nslots)
    return rl__err(RL_EINVAL,
                   "class '%s' lists %zu slots but declares_slots is false",
                   spec->name, spec->nslots);
  if (spec->nslots && !spec->slots)
    return rl__err(RL_EINVAL, "class '%s': slots is NULL", spec->name);
  if (spec->ndict_keys && !spec->dict_keys)
    return rl__err(RL_EINVAL, "class '%s': dict_keys is NULL", spec->name);
  if (spec->nslots > 65535 || spec->ndict_keys > 65535)
    return rl__err(RL_EINVAL, "class '%s': too many slots or keys", spec->name);

  /* Python's rules on the declared names, checked before any layout. */
  for (size_t i = 0; i < spec->nslots; i++) {
    const rl_slot_spec_t *s = &spec->slots[i];
    if (!s->name || !*s->name)
      return rl__err(RL_EINVAL, "class '%s': slot %zu has no name", spec->name,
                     i);
    if ((unsigned)s->type > RL_T_PTR)
      return rl__err(RL_EINVAL, "class '%s': slot '%s' has an unknown type %d",
                     spec->name, s->name, (int)s->type);
    if (strcmp(s->name, DICT_SLOT) == 0) {
      if (s->type != RL_T_TAGGED)
        return rl__err(RL_EINVAL, "class '%s': '__dict__' cannot be typed",
                       spec->name);
      if (dict_slot)
        return rl__err(RL_EDUPSLOT, "class '%s': '__dict__' named twice in slots",
                       spec->name);
      if (base && base->has_dict)
        return rl__err(RL_ELAYOUT,
                       "class '%s': __dict__ slot disallowed: we already got one "
                       "(from base class '%s')",
                       spec->name, base->name);
      dict_slot = true;
      continue;
    }
    for (size_t j = 0; j < i; j++)
      if (strcmp(spec->slots[j].name, s->name) == 0)
        return rl__err(RL_EDUPSLOT, "slot '%s' is declared twice by class '%s'",
                       s->name, spec->name);
    if (base) {
      const rl_name_t *n = rl__class_lookup(base, s->name, rl__hash(s->name));
      if (n && n->slot >= 0)
        return rl__err(RL_EDUPSLOT,
                       "slot '%s' of class '%s' is already declared by base "
                       "class '%s'",
                       s->name, spec->name, base->slots[n->slot].owner->name);
    }
    nown++;
  }

  c->base = base;
  c->has_dict = !spec->declares_slots || (base && base->has_dict) || dict_slot;
  rl_dict_kind_t dk = spec->dict_kind;
  if ((unsigned)dk > RL_DICT_SHARED)
    return rl__err(RL_EINVAL, "class '%s': unknown dict kind %d", spec->name,
                   (int)dk);
  if (dk == RL_DICT_AUTO)
    dk = !c->has_dict                 ? RL_DICT_NONE
         : (base && base->has_dict) ? (rl_dict_kind_t)base->dict_kind
                                      : RL_DICT_INSTANCE;
  if (dk == RL_DICT_NONE && c->has_dict)
    return rl__err(RL_ELAYOUT,
                   "class '%s' gets a __dict__ (%s) but its dict kind is none",
                   spec->name,
                   !spec->declares_slots ? "it declares no __slots__"
                   : dict_slot           ? "'__dict__' is among its slots"
                                         : "its base class has one");
  if (dk != RL_DICT_NONE && !c->has_dict)
    return rl__err(RL_ELAYOUT,
                   "class '%s' declares __slots__ without '__dict__', so its "
                   "instances have no dict to be %s",
                   spec->name, dk == RL_DICT_SHARED ? "shared" : "per-instance");
  c->dict_kind = (uint8_t)dk;

  /* Dict keys: the spec's, or the base's when the spec gives none. */
  const char *const *keys = NULL;
  size_t nkeys = 0;
  if (c->has_dict) {
    if (spec->dict_keys) {
      keys = spec->dict_keys;
      nkeys = spec->ndict_keys;
    } else if (base && base->has_dict) {
      keys = (const char *const *)base->keys;
      nkeys = base->nkeys;
    }
  }

  size_t nbase = base ? base->nslots : 0;
  c->nslots = (uint32_t)(nbase + nown);
  c->nown = (uint32_t)nown;
  c->nkeys = (uint32_t)nkeys;

  /* One pool for the class name and every name it interns. */
  size_t pool = strlen(spec->name) + 1;
  for (size_t i = 0; i < nbase; i++)
    pool += strlen(base->slots[i].name) + 1;
  for (size_t i = 0; i < spec->nslots; i++)
    pool += strlen(spec->slots[i].name) + 1;
  for (size_t i = 0; i < nkeys; i++) {
    if (!keys[i] || !*keys[i])
      return rl__err(RL_EINVAL, "class '%s': dict key %zu is empty", spec->name,
                     i);
    pool += strlen(keys[i]) + 1;
  }
  size_t ntab = 8;
  while (ntab < 2 * (c->nslots + nkeys))
    ntab *= 2;
  c->names_mask = (uint32_t)(ntab - 1);

  c->pool_size = pool;
  c->pool = rl__alloc(pool);
  c->names = rl__calloc(ntab * sizeof *c->names);
  c->slots = c->nslots ? rl__alloc(c->nslots * sizeof *c->slots) : NULL;
  c->keys = nkeys ? rl__alloc(nkeys * sizeof *c->keys) : NULL;
  if (!c->pool || !c->names || (c->nslots && !c->slots) || (nkeys && !c->keys))
    return rl__err(RL_ENOMEM, "out of memory creating class '%s'", spec->name);

  char *p = c->pool;
#define INTERN(dst, src)                                                      \
  do {                                                                        \
    size_t n_ = strlen(src) + 1;                                              \
    memcpy(p, (src), n_);                                                     \
    (dst) = p;                                                                \
    p += n_;                                                                  \
  } while (0)
  INTERN(c->name, spec->name);

  /* Layout: inherited cells keep their offsets; ours follow in declaration
   * order at natural alignment, like the members of a derived C struct. */
  size_t end = 0, maxa = 1;
  for (size_t i = 0; i < nbase; i++) {
    c->slots[i] = base->slots[i];
    INTERN(c->slots[i].name, base->slots[i].name);
  }
  if (base) {
    end = base->data_end;
    maxa = base->max_align;
  }
  size_t k = nbase;
  for (size_t i = 0; i < spec->nslots; i++) {
    const rl_slot_spec_t *s = &spec->slots[i];
    if (strcmp(s->name, DICT_SLOT) == 0)
      continue;
    rl_slot_t *d = &c->slots[k++];
    d->owner = c;
    d->type = (uint8_t)s->type;
    d->size = ctypes[s->type].size;
    d->align = ctypes[s->type].align;
    end = align_up(end, d->align);
    d->offset = (uint32_t)end;
    end += d->size;
    if (d->align > maxa)
      maxa = d->align;
    INTERN(d->name, s->name);
  }
  c->data_end = (uint32_t)end;
  c->max_align = (uint32_t)maxa;
  c->cells_size = (uint32_t)align_up(end, maxa);
  c->shell_size = (uint32_t)(sizeof(rl_obj_t) + align_up(c->cells_size, 8) +
                             (c->has_dict ? sizeof(void *) : 0));
  c->all_typed = 1;
  for (size_t i = 0; i < c->nslots; i++) {
    if (c->slots[i].type == RL_T_TAGGED) {
      c->all_typed = 0;
      c->any_tagged = 1;
    }
  }

  /* Name table: slots first, so a key that names a slot is caught. */
  for (size_t i = 0; i < c->nslots; i++) {
    uint32_t h = rl__hash(c->slots[i].name), j = h & c->names_mask;
    while (c->names[j].name)
      j = (j + 1) & c->names_mask;
    c->names[j] = (rl_name_t){c->slots[i].name, h, (int32_t)i, -1};
  }
  for (size_t i = 0; i < nkeys; i++) {
    uint32_t h = rl__hash(keys[i]);
    const rl_name_t *dup = rl__class_lookup(c, keys[i], h);
    if (dup && dup->slot >= 0)
      return rl__err(RL_ELAYOUT,
                     "class '%s': dict key '%s' is also a slot (the slot would "
                     "always win)",
                     c->name, keys[i]);
    if (dup || strcmp(keys[i], DICT_SLOT) == 0)
      return rl__err(RL_EINVAL, "class '%s': dict key '%s' is given twice or "
                                "reserved",
                     c->name, keys[i]);
    uint32_t j = h & c->names_mask;
    while (c->names[j].name)
      j = (j + 1) & c->names_mask;
    INTERN(c->keys[i], keys[i]);
    c->names[j] = (rl_name_t){c->keys[i], h, -1, (int32_t)i};
  }
#undef INTERN
  return 0;
}

void rl_class_free(rl_class_t *cls) {
  if (!cls)
    return;
  rl__free(cls->pool, cls->pool_size);
  rl__free(cls->names, (cls->names_mask + 1) * sizeof *cls->names);
  rl__free(cls->slots, cls->nslots * sizeof *cls->slots);
  rl__free((void *)cls->keys, cls->nkeys * sizeof *cls->keys);
  rl__free(cls, sizeof *cls);
}

int rl_class_new(const rl_class_spec_t *spec, rl_class_t **out) {
  if (!spec || !out)
    return rl__err(RL_EINVAL, "rl_class_new: NULL spec or out");
  rl_class_t *c = rl__calloc(sizeof *c);
  if (!c)
    return rl__err(RL_ENOMEM, "out of memory creating class '%s'",
                   spec->name ? spec->name : "?");
  int rc = build(c, spec);
  if (rc < 0) {
    /* Sizes recorded so far match what was requested, so the shared free
     * path releases a half-built class correctly; but a failed pool or
     * table left a NULL beside a nonzero count, which rl__free ignores. */
    if (!c->slots)
      c->nslots = 0;
    if (!c->keys)
      c->nkeys = 0;
    rl_class_free(c);
    return rc;
  }
  *out = c;
  return 0;
}

const char *rl_class_name(const rl_class_t *cls) { return cls->name; }
const rl_class_t *rl_class_base(const rl_class_t *cls) { return cls->base; }
size_t rl_class_nslots(const rl_class_t *cls) { return cls->nslots; }
int rl_class_has_dict(const rl_class_t *cls) { return cls->has_dict; }
rl_dict_kind_t rl_class_dict_kind(const rl_class_t *cls) {
  return (rl_dict_kind_t)cls->dict_kind;
}
size_t rl_class_cells_size(const rl_class_t *cls) { return cls->cells_size; }
size_t rl_class_instance_size(const rl_class_t *cls) {
  return cls->shell_size;
}
int rl_class_is_plain(const rl_class_t *cls) {
  return cls->all_typed && !cls->has_dict;
}

int rl_class_slot_index(const rl_class_t *cls, const char *name) {
  if (!cls || !name)
    return rl__err(RL_EINVAL, "rl_class_slot_index: NULL argument");
  const rl_name_t *n = rl__class_lookup(cls, name, rl__hash(name));
  if (!n || n->slot < 0)
    return rl__err(RL_EATTR, "class '%s' has no slot '%s'", cls->name, name);
  return n->slot;
}
const char *rl_class_slot_name(const rl_class_t *cls, size_t i) {
  return i < cls->nslots ? cls->slots[i].name : NULL;
}
size_t rl_class_slot_offset(const rl_class_t *cls, size_t i) {
  return i < cls->nslots ? cls->slots[i].offset : (size_t)-1;
}
size_t rl_class_slot_size(const rl_class_t *cls, size_t i) {
  return i < cls->nslots ? cls->slots[i].size : (size_t)-1;
}
int rl_class_slot_type(const rl_class_t *cls, size_t i) {
  return i < cls->nslots ? cls->slots[i].type : -1;
}

int rl_class_describe(const rl_class_t *cls, FILE *out) {
  if (!cls || !out)
    return rl__err(RL_EINVAL, "rl_class_describe: NULL argument");
  static const char *const dk[] = {"auto", "none", "per-instance compact dict",
                                   "shared-key dict (PEP 412)"};
  fprintf(out, "class %s", cls->name);
  if (cls->base)
    fprintf(out, "(%s)", cls->base->name);
  fprintf(out, " {\t/* %s */\n",
          cls->has_dict ? (cls->nslots ? "slots + __dict__" : "__dict__ only")
                        : "__slots__, no __dict__");
  size_t at = 0, holes = 0, sum_holes = 0, sum_members = 0;
  for (size_t i = 0; i < cls->nslots; i++) {
    const rl_slot_t *s = &cls->slots[i];
    if (s->offset > at) {
      fprintf(out, "\n\t/* XXX %zu byte%s hole, try to pack */\n\n",
              (size_t)(s->offset - at), s->offset - at == 1 ? "" : "s");
      holes++;
      sum_holes += s->offset - at;
    }
    char decl[96];
    snprintf(decl, sizeof decl, "%-11s %s;", ctypes[s->type].cname, s->name);
    fprintf(out, "\t%-36s /* %5u %5u */", decl, (unsigned)s->offset,
            (unsigned)s->size);
    if (s->owner != cls)
      fprintf(out, "  /* from %s */", s->owner->name);
    fputc('\n', out);
    at = s->offset + s->size;
    sum_members += s->size;
  }
  fprintf(out, "\n\t/* size: %u, slots: %u (%u own), sum members: %zu, "
               "holes: %zu, sum holes: %zu */\n",
          (unsigned)cls->cells_size, (unsigned)cls->nslots,
          (unsigned)cls->nown, sum_members, holes, sum_holes);
  if (cls->cells_size > cls->data_end)
    fprintf(out, "\t/* padding: %u */\n",
            (unsigned)(cls->cells_size - cls->data_end));
  fprintf(out, "\t/* rl_new shell: %u bytes = 8 class pointer + %zu cells%s */\n",
          (unsigned)cls->shell_size, align_up(cls->cells_size, 8),
          cls->has_dict ? " + 8 dict pointer" : "");
  if (rl_class_is_plain(cls))
    fprintf(out, "\t/* rl_new_typed: %u bytes, no header */\n",
            (unsigned)cls->cells_size);
  fprintf(out, "\t/* __dict__: %s", cls->has_dict ? dk[cls->dict_kind] : "none");
  if (cls->nkeys) {
    fprintf(out, "; %s keys:",
            cls->dict_kind == RL_DICT_SHARED ? "shared" : "interned");
    for (size_t i = 0; i < cls->nkeys; i++)
      fprintf(out, " %s", cls->keys[i]);
  }
  fprintf(out, " */\n};\n");
  return ferror(out) ? rl__err(RL_EINVAL, "rl_class_describe: write failed") : 0;
}
