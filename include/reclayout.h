/* reclayout.h - the public API of reclayout: Python's __dict__ versus __slots__
 * bargain for C records (classes, slots, three dict flavours, exact sizes).
 *
 * Model. A class (rl_class_t) has a name, an optional base, and either no slot
 * declaration (its instances get a dict, like a plain Python class) or a
 * declared list of slots. Python's rules hold exactly:
 *   - an instance of a class whose whole chain declares slots has no dict;
 *     setting an undeclared attribute, or reading a declared slot that was
 *     never set, fails with RL_EATTR (the AttributeError analogue);
 *   - a subclass that declares slots inherits its base's cells, at the same
 *     offsets, and appends its own; redeclaring a base's slot is RL_EDUPSLOT;
 *   - a subclass that declares no slots gets a dict on top of the inherited
 *     cells; a base without slots gives every subclass a dict;
 *   - "__dict__" named among the slots gives both fixed cells and a dict
 *     (RL_ELAYOUT if the base already has one: "we already got one").
 *
 * Values are tagged (rl_value_t, 16 bytes). A slot is either tagged (holds
 * any value; unset until assigned) or typed with a fixed C type (i64, f64,
 * i32, f32, u8, bool, ptr): typed slots are packed at natural alignment like
 * struct members, are zero-initialised and always readable, and cannot be
 * deleted (C semantics; CPython's T_DOUBLE members behave the same way).
 *
 * Two kinds of instance:
 *   - rl_new(): an rl_obj_t with an 8-byte header (the class pointer), then
 *     the cell area, then one dict pointer if the class has a dict. Works for
 *     every class; all by-name and by-index accessors take just the object.
 *   - rl_new_typed(): for a class whose slots are all typed and which has no
 *     dict, the instance is exactly the packed cells, nothing else: three f64
 *     slots are one 24-byte malloc, the same as struct {double x, y, z;}.
 *     There is no room for a class pointer, so every accessor takes
 *     (cls, cells). This is the choice that meets "within 10% of a C struct".
 *
 * Strings. rl_str(s) is copied when stored (the record owns the copy);
 * rl_str_borrowed(s) is stored as the pointer (the caller keeps it alive,
 * e.g. a literal or an interned string). Attribute names are interned per
 * class: slot names and the class's declared dict keys are held once by the
 * class; a dict key the class does not know is copied into that dict.
 * Record references (rl_ref) and opaque pointers are never owned.
 *
 * Errors. Every call that can fail returns 0 (or a non-negative result) or a
 * negative RL_E* code; rl_strerror() names the code and rl_last_error() gives
 * the detail of the calling thread's last failure. Nothing aborts or exits.
 * On RL_ENOMEM the object or class is left exactly as it was.
 *
 * Sizes. rl_sizeof/rl_dict_sizeof/rl_deep_sizeof are exact sums of the byte
 * counts reclayout requested from malloc/calloc for those blocks (requested,
 * not usable, sizes), so they agree with a tracer such as heapsnap.
 *
 * Threads. A class is immutable once rl_class_new() returns and may be shared
 * by any number of threads. An instance is not thread-safe: callers serialise
 * all access to one instance (reads too: a read never mutates, but a
 * concurrent write may free the string a read returns).
 */
#ifndef RECLAYOUT_H
#define RECLAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define RL_API __attribute__((visibility("default")))
#else
#define RL_API
#endif

/* Error codes: 0 is success; every failure is one of these (negative). */
#define RL_ERRNO_MAP(X)                                                       \
  X(EINVAL, -1, "invalid argument")                                           \
  X(ENOMEM, -2, "out of memory")                                              \
  X(EATTR, -3, "object has no such attribute (AttributeError)")               \
  X(EDUPSLOT, -4, "slot name already declared in this class or a base")       \
  X(ETYPE, -5, "value kind does not fit the slot (TypeError)")                \
  X(EOVERFLOW, -6, "value out of range for the slot's C type")                \
  X(ERANGE, -7, "slot index out of range")                                    \
  X(ELAYOUT, -8, "conflicting class layout")

enum {
#define RL_ERRNO_ENUM(name, value, text) RL_##name = (value),
  RL_ERRNO_MAP(RL_ERRNO_ENUM)
#undef RL_ERRNO_ENUM
};

/* The sentence for an RL_E* code (a static string; never NULL). */
RL_API const char *rl_strerror(int err);

/* Detail of the calling thread's most recent failure, e.g.
 * "'PointWithSlots' object has no attribute 'newField'". A thread-local
 * buffer, overwritten by the next failing call on this thread; "" if none.
 * Never NULL; the caller does not free it. */
RL_API const char *rl_last_error(void);

/* ---- Values ------------------------------------------------------------ */

typedef enum rl_kind {
  RL_KIND_UNSET = 0, /* only inside the library: a tagged slot never set */
  RL_KIND_NONE,
  RL_KIND_BOOL,
  RL_KIND_INT,    /* int64_t */
  RL_KIND_DOUBLE,
  RL_KIND_STR,    /* NUL-terminated */
  RL_KIND_REF,    /* another record, not owned */
  RL_KIND_PTR     /* opaque pointer, not owned */
} rl_kind_t;

/* flags: RL_VF_BORROWED on input means "store this string pointer as is". */
#define RL_VF_BORROWED 0x01u

typedef struct rl_obj rl_obj_t;
typedef struct rl_class rl_class_t;

/* A tagged value, also the storage of one tagged cell (16 bytes). The
 * reserved fields are the library's; they read as 0 in values it returns. */
typedef struct rl_value {
  uint8_t kind;          /* rl_kind_t */
  uint8_t flags;         /* RL_VF_* */
  uint16_t rl_reserved;  /* library-internal */
  uint32_t rl_aux;       /* library-internal */
  union {
    bool b;
    int64_t i;
    double d;
    const char *s;
    rl_obj_t *ref;
    void *ptr;
  } u;
} rl_value_t;

/* Constructors. The whole value is zeroed first so no byte is
 * indeterminate (values are copied as 16-byte blocks). */
static inline rl_value_t rl__value(uint8_t kind, uint8_t flags) {
  rl_value_t v;
  memset(&v, 0, sizeof v);
  v.kind = kind;
  v.flags = flags;
  return v;
}
static inline rl_value_t rl_none(void) { return rl__value(RL_KIND_NONE, 0); }
static inline rl_value_t rl_bool(bool b) {
  rl_value_t v = rl__value(RL_KIND_BOOL, 0);
  v.u.b = b;
  return v;
}
static inline rl_value_t rl_int(int64_t i) {
  rl_value_t v = rl__value(RL_KIND_INT, 0);
  v.u.i = i;
  return v;
}
static inline rl_value_t rl_double(double d) {
  rl_value_t v = rl__value(RL_KIND_DOUBLE, 0);
  v.u.d = d;
  return v;
}
/* Copied into the record when stored; the caller keeps ownership of s. */
static inline rl_value_t rl_str(const char *s) {
  rl_value_t v = rl__value(RL_KIND_STR, 0);
  v.u.s = s;
  return v;
}
/* Stored as the pointer: s must outlive every record that holds it (a
 * literal, or a string the caller interned). */
static inline rl_value_t rl_str_borrowed(const char *s) {
  rl_value_t v = rl__value(RL_KIND_STR, RL_VF_BORROWED);
  v.u.s = s;
  return v;
}
static inline rl_value_t rl_ref(rl_obj_t *o) {
  rl_value_t v = rl__value(RL_KIND_REF, 0);
  v.u.ref = o;
  return v;
}
static inline rl_value_t rl_ptr(void *p) {
  rl_value_t v = rl__value(RL_KIND_PTR, 0);
  v.u.ptr = p;
  return v;
}

/* ---- Classes ----------------------------------------------------------- */

/* A slot's storage: tagged (any rl_value_t, 16 bytes) or a fixed C type. */
typedef enum rl_ctype {
  RL_T_TAGGED = 0,
  RL_T_I64,  /* accepts RL_KIND_INT; reads as RL_KIND_INT */
  RL_T_F64,  /* accepts DOUBLE or INT; reads as RL_KIND_DOUBLE */
  RL_T_I32,  /* accepts INT in range (else RL_EOVERFLOW) */
  RL_T_F32,  /* accepts DOUBLE or INT, rounded to float */
  RL_T_U8,   /* accepts INT 0..255 */
  RL_T_BOOL, /* accepts BOOL */
  RL_T_PTR   /* accepts PTR */
} rl_ctype_t;

/* Dict flavour of a class's instances. */
typedef enum rl_dict_kind {
  RL_DICT_AUTO = 0, /* none when the layout has no dict; else the base's
                       flavour, or RL_DICT_INSTANCE */
  RL_DICT_NONE,     /* slots only: asking for it on a class that gets a dict
                       (no __slots__, or a base with a dict) is RL_ELAYOUT */
  RL_DICT_INSTANCE, /* each instance owns a compact ordered dict */
  RL_DICT_SHARED    /* PEP 412: the class holds the keys (dict_keys, in that
                       order); each instance holds only a values array until
                       it diverges, then it gets its own compact dict */
} rl_dict_kind_t;

typedef struct rl_slot_spec {
  const char *name; /* "__dict__" asks for a dict (must be RL_T_TAGGED) */
  rl_ctype_t type;
} rl_slot_spec_t;

typedef struct rl_class_spec {
  const char *name;            /* copied */
  const rl_class_t *base;      /* NULL for none; must outlive this class */
  bool declares_slots;         /* false: no __slots__ (instances get a dict) */
  const rl_slot_spec_t *slots; /* declares_slots: nslots entries (may be 0) */
  size_t nslots;
  rl_dict_kind_t dict_kind;
  /* Names the class interns for its dict (copied). For RL_DICT_SHARED they
   * are the shared key table, in insertion order; NULL inherits the base's.
   * Must not name a slot. Ignored when the class has no dict. */
  const char *const *dict_keys;
  size_t ndict_keys;
} rl_class_spec_t;

/* Declares slots from an array: .slots/.nslots/.declares_slots at once. */
#define RL_SLOTS(arr)                                                         \
  .declares_slots = true, .slots = (arr), .nslots = sizeof(arr) / sizeof((arr)[0])

/* Creates a class. On success *out is a new class the caller frees with
 * rl_class_free(). Returns RL_EINVAL (bad spec), RL_EDUPSLOT (a slot name
 * repeated or already declared by a base; the message names slot and class),
 * RL_ELAYOUT (dict_kind contradicts the layout, or "__dict__" when the base
 * has a dict), RL_ENOMEM. *out is untouched on failure. */
RL_API int rl_class_new(const rl_class_spec_t *spec, rl_class_t **out);

/* Frees a class. Its instances and subclasses must already be freed:
 * they point at it. NULL is a no-op. */
RL_API void rl_class_free(rl_class_t *cls);

RL_API const char *rl_class_name(const rl_class_t *cls);       /* class-owned */
RL_API const rl_class_t *rl_class_base(const rl_class_t *cls); /* or NULL */
/* Total slots, inherited ones first (a base's slot keeps its index). */
RL_API size_t rl_class_nslots(const rl_class_t *cls);
/* 1 if instances have a dict (hasattr(obj, '__dict__')), else 0. */
RL_API int rl_class_has_dict(const rl_class_t *cls);
/* The resolved flavour: RL_DICT_NONE, RL_DICT_INSTANCE or RL_DICT_SHARED. */
RL_API rl_dict_kind_t rl_class_dict_kind(const rl_class_t *cls);
/* Index of a slot (declared here or in a base) for the *_index accessors:
 * >= 0, or RL_EATTR. Look it up once; it is valid for every instance of cls
 * and of its subclasses. */
RL_API int rl_class_slot_index(const rl_class_t *cls, const char *name);
/* Per-slot facts; out-of-range indexes give NULL / (size_t)-1 / -1. */
RL_API const char *rl_class_slot_name(const rl_class_t *cls, size_t index);
RL_API size_t rl_class_slot_offset(const rl_class_t *cls, size_t index);
RL_API size_t rl_class_slot_size(const rl_class_t *cls, size_t index);
RL_API int rl_class_slot_type(const rl_class_t *cls, size_t index);
/* Bytes of the cell area: like sizeof of the equivalent C struct (tail
 * padded to the largest alignment). Offsets are relative to rl_cells(). */
RL_API size_t rl_class_cells_size(const rl_class_t *cls);
/* Bytes one rl_new() shell requests: 8 (class pointer) + the cell area
 * rounded to 8 + 8 if the class has a dict. */
RL_API size_t rl_class_instance_size(const rl_class_t *cls);
/* Prints the layout like pahole: every slot's type, name, offset, size and
 * defining class, holes, the totals and the dict. Returns 0 or RL_EINVAL. */
RL_API int rl_class_describe(const rl_class_t *cls, FILE *out);

/* ---- Instances --------------------------------------------------------- */

/* A new instance: tagged slots unset, typed slots zero, no dict allocated
 * yet (it is allocated on the first dict write, like CPython's lazy dict).
 * On success *out is owned by the caller: free it with rl_free().
 * Returns 0, RL_EINVAL or RL_ENOMEM. */
RL_API int rl_new(const rl_class_t *cls, rl_obj_t **out);
/* Frees the instance, its dict and every string it owns. Referenced records
 * are not freed. Invalidates every value read from it. NULL is a no-op. */
RL_API void rl_free(rl_obj_t *obj);
RL_API const rl_class_t *rl_class_of(const rl_obj_t *obj);

/* Bytes before an rl_new() instance's cells: the class pointer. Part of
 * the ABI so that the inline accessors below need no call. */
#define RL_OBJ_HEADER 8
/* The cell area: slot i lives at rl_cells(obj) + rl_class_slot_offset().
 * Valid while obj lives; writing through it bypasses type checks. */
static inline void *rl_cells(const rl_obj_t *obj) {
  return (char *)(uintptr_t)obj + RL_OBJ_HEADER;
}

/* getattr(obj, name). Slots win over the dict (they are data descriptors).
 * *out is a view: a string in it stays valid until that attribute is set or
 * deleted or obj is freed. Returns 0, RL_EATTR (undeclared, or a tagged slot
 * that is unset), RL_EINVAL ("__dict__" is not readable as a value). */
RL_API int rl_get(const rl_obj_t *obj, const char *name, rl_value_t *out);
/* setattr(obj, name, v). A slot name stores in its cell; any other name goes
 * to the dict, or fails with RL_EATTR when there is none. Replacing a value
 * frees the string it owned (invalidating views of it). Returns 0, RL_EATTR,
 * RL_ETYPE / RL_EOVERFLOW (typed slot), RL_EINVAL, RL_ENOMEM (obj unchanged).
 * A shared-key dict diverges into its own dict when name is not the next key
 * of the class's table (a new key, or keys set in another order). */
RL_API int rl_set(rl_obj_t *obj, const char *name, rl_value_t v);
/* delattr(obj, name). Frees an owned string. Returns 0, RL_EATTR (missing or
 * unset), RL_ETYPE (typed slots cannot be deleted), RL_ENOMEM (a shared-key
 * dict must diverge to delete; obj unchanged). A dict deletion leaves a
 * dummy in the index table; the dict never shrinks. */
RL_API int rl_del(rl_obj_t *obj, const char *name);
/* hasattr(obj, name): 1 or 0. "__dict__" answers whether obj has a dict. */
RL_API int rl_has(const rl_obj_t *obj, const char *name);

/* The fast path: index from rl_class_slot_index(); no name hashing.
 * Same results and errors as rl_get/rl_set, plus RL_ERANGE. obj must not be
 * NULL (not checked on this path). About 2-3 ns per call on this class of
 * machine; the unchecked inline accessors at the end of this file are the
 * sub-2 ns path. */
/* hot path: no allocation unless v is a string to copy */
RL_API int rl_get_index(const rl_obj_t *obj, size_t index, rl_value_t *out);
RL_API int rl_set_index(rl_obj_t *obj, size_t index, rl_value_t v);
/* Typed accessors: RL_ETYPE unless the slot is RL_T_F64 / RL_T_I64. */
RL_API int rl_get_f64_index(const rl_obj_t *obj, size_t index, double *out);
RL_API int rl_set_f64_index(rl_obj_t *obj, size_t index, double v);
RL_API int rl_get_i64_index(const rl_obj_t *obj, size_t index, int64_t *out);
RL_API int rl_set_i64_index(rl_obj_t *obj, size_t index, int64_t v);

/* 1 if obj has a dict (allocated or not), else 0. */
RL_API int rl_has_dict(const rl_obj_t *obj);
/* How obj's dict is held now: RL_DICT_NONE (no dict in the layout),
 * RL_DICT_SHARED (still on the class's keys) or RL_DICT_INSTANCE (its own
 * compact dict: the class's flavour, or a diverged shared-key instance). */
RL_API rl_dict_kind_t rl_dict_kind_of(const rl_obj_t *obj);
/* Number of keys in obj's dict (0 without one). */
RL_API size_t rl_dict_len(const rl_obj_t *obj);

/* Iterates set attributes: slots in index order (unset tagged slots
 * skipped), then dict keys in insertion order. Start with *pos = 0; returns
 * 1 and fills *name (class- or dict-owned) and *out while there is one, then
 * 0. Any set/del on obj invalidates pos. */
RL_API int rl_next(const rl_obj_t *obj, size_t *pos, const char **name,
                   rl_value_t *out);

/* Sizes, in bytes requested from the allocator (see the top of this file).
 * rl_sizeof: the instance shell alone, like sys.getsizeof.
 * rl_dict_sizeof: the dict's blocks and the key strings it copied; 0 while
 *   the dict is not allocated or the class has none.
 * rl_deep_sizeof: shell + dict + every string obj owns (strlen + 1 each). */
RL_API size_t rl_sizeof(const rl_obj_t *obj);
RL_API size_t rl_dict_sizeof(const rl_obj_t *obj);
RL_API size_t rl_deep_sizeof(const rl_obj_t *obj);

/* ---- Headerless typed instances (C structs) ------------------------------ */

/* For a class whose slots are all typed and which has no dict
 * (rl_class_is_plain): *out gets zeroed cells of exactly
 * rl_class_cells_size(cls) bytes, one allocation, no header. The caller
 * frees it with rl_free_typed() and passes cls to every accessor.
 * Returns 0, RL_EINVAL (not a plain class) or RL_ENOMEM. */
RL_API int rl_new_typed(const rl_class_t *cls, void **out);
RL_API void rl_free_typed(const rl_class_t *cls, void *cells);
/* 1 if rl_new_typed() accepts cls. */
RL_API int rl_class_is_plain(const rl_class_t *cls);
/* By name, with rl_get/rl_set semantics for typed slots. */
RL_API int rl_typed_get(const rl_class_t *cls, const void *cells,
                        const char *name, rl_value_t *out);
RL_API int rl_typed_set(const rl_class_t *cls, void *cells, const char *name,
                        rl_value_t v);

/* Zero-cost field access given an offset from rl_class_slot_offset(); work
 * on rl_new_typed() cells and on rl_cells(obj) alike. Unchecked: the caller
 * is responsible for the offset naming a slot of that C type. This is the
 * path under 2 ns; the checked *_index functions cost a call and a bounds
 * and type check (see tests/reclayout/test_timing.c). */
/* hot path: no allocation, no lock */
static inline double rl_f64_at(const void *cells, size_t off) {
  double d;
  memcpy(&d, (const char *)cells + off, sizeof d);
  return d;
}
static inline void rl_f64_put(void *cells, size_t off, double d) {
  memcpy((char *)cells + off, &d, sizeof d);
}
static inline int64_t rl_i64_at(const void *cells, size_t off) {
  int64_t i;
  memcpy(&i, (const char *)cells + off, sizeof i);
  return i;
}
static inline void rl_i64_put(void *cells, size_t off, int64_t i) {
  memcpy((char *)cells + off, &i, sizeof i);
}
/* Reads the tagged slot at off (from rl_class_slot_offset of obj's class or
 * a base). 0, or RL_EATTR when unset, without an rl_last_error() message:
 * call rl_get_index() for the message. *out is a view, as with rl_get(). */
static inline int rl_value_at(const void *cells, size_t off, rl_value_t *out) {
  const rl_value_t *c = (const rl_value_t *)((const char *)cells + off);
  if (c->kind == RL_KIND_UNSET)
    return RL_EATTR;
  *out = *c;
  out->flags &= RL_VF_BORROWED; /* hide the library's ownership bit */
  return 0;
}

#ifdef __cplusplus
}
#endif
#endif /* RECLAYOUT_H */
