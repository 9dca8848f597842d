/* fuzz_reclayout_ops.c - fuzz target for reclayout: the input is a small
 * program of class, instance and attribute operations, run against a
 * counting allocator that can also fail on demand. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "reclayout.h"
#include "reclayout/rl_internal.h"

#define MAX_CLASSES 8
#define MAX_OBJS 16
#define MAX_TYPED 8
#define MAX_OPS 512
#define BLOCK_MAGIC 0x5eedb10c5eedb10cull

/* ---- The allocator: every block carries its size, so the size reclayout
 * passes to free is checked, and the live total is the ground truth the
 * rl_*sizeof figures must add up to. ---- */
static struct {
  size_t live_bytes, live_blocks;
  long fail_in; /* allocations until one fails; -1: none armed */
} heap;

static void *counting_alloc(size_t size, int zero, void *ud) {
  (void)ud;
  if (heap.fail_in == 0) {
    heap.fail_in = -1;
    return NULL;
  }
  if (heap.fail_in > 0)
    heap.fail_in--;
  uint64_t *h = zero ? calloc(1, size + 16) : malloc(size + 16);
  if (!h)
    return NULL;
  h[0] = size;
  h[1] = BLOCK_MAGIC;
  heap.live_bytes += size;
  heap.live_blocks++;
  return h + 2;
}

static void counting_free(void *p, size_t size, void *ud) {
  (void)ud;
  uint64_t *h = (uint64_t *)p - 2;
  HS_FUZZ_CHECK(h[1] == BLOCK_MAGIC);
  HS_FUZZ_CHECK(h[0] == size);
  h[1] = 0;
  heap.live_bytes -= size;
  heap.live_blocks--;
  free(h);
}

/* ---- Input ---- */
typedef struct rd {
  const uint8_t *p, *end;
} rd_t;

static uint8_t u8(rd_t *r) { return r->p < r->end ? *r->p++ : 0; }
static uint64_t u64(rd_t *r) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v |= (uint64_t)u8(r) << (8 * i);
  return v;
}

static const char *const pool[] = {
    "x", "y", "z", "name", "id", "__dict__", "val", "k0", "k1", "k2", "",
    "a_rather_long_attribute_name_that_is_hashed_over_many_bytes"};
#define NPOOL (sizeof pool / sizeof pool[0])

/* A name from the pool mostly, sometimes made of input bytes (any byte but
 * NUL), so hashing and interning see odd names too. */
static const char *name_from(rd_t *r, char buf[16]) {
  uint8_t b = u8(r);
  if (b < 0xf0)
    return pool[b % NPOOL];
  size_t n = b & 0x0f;
  for (size_t i = 0; i < n; i++) {
    uint8_t c = u8(r);
    buf[i] = (char)(c ? c : 'n');
  }
  buf[n] = '\0';
  return buf;
}

/* ---- State ---- */
static rl_class_t *classes[MAX_CLASSES];
static size_t class_cost[MAX_CLASSES]; /* bytes its creation allocated */
static int class_users[MAX_CLASSES];   /* instances and subclasses */
static int class_base[MAX_CLASSES];    /* index, or -1 */
static rl_obj_t *objs[MAX_OBJS];
static int obj_class[MAX_OBJS];
static void *typed[MAX_TYPED];
static int typed_class[MAX_TYPED];
static char owned_src[MAX_OPS][24]; /* strings copied by rl_str() callers */

/* The next used entry at or after i (wrapping), or -1. */
static int pick(void *const *arr, int n, uint8_t i) {
  for (int k = 0; k < n; k++) {
    int j = (i + k) % n;
    if (arr[j])
      return j;
  }
  return -1;
}
static int pick_free(void *const *arr, int n, uint8_t i) {
  for (int k = 0; k < n; k++) {
    int j = (i + k) % n;
    if (!arr[j])
      return j;
  }
  return -1;
}

static void check_rc(int rc) {
  HS_FUZZ_CHECK(rc <= 0 && rc >= RL_ELAYOUT);
  HS_FUZZ_CHECK(rl_strerror(rc) != NULL);
  if (rc < 0)
    HS_FUZZ_CHECK(rl_last_error()[0] != '\0');
}

static rl_value_t value_from(rd_t *r, int op) {
  static const int64_t ints[] = {0,         -1,         255,
                                 256,       INT32_MAX,  (int64_t)INT32_MAX + 1,
                                 INT32_MIN, (int64_t)INT32_MIN - 1,
                                 INT64_MIN, INT64_MAX};
  static const double dbls[] = {0.0,    -0.0,    NAN,      INFINITY, -INFINITY,
                                1e300,  7e38,    1e-320,   0.5,
                                9.3e18, -9.3e18, 123456.75};
  static const char *const lits[] = {"", "borrowed", "x", "ünïcode"};
  uint8_t k = u8(r);
  switch (k % 11) {
  case 0:
    return rl_none();
  case 1:
    return rl_bool(u8(r) & 1);
  case 2: {
    uint8_t i = u8(r);
    return rl_int(i < 0xf0 ? ints[i % (sizeof ints / sizeof ints[0])]
                           : (int64_t)u64(r));
  }
  case 3: {
    uint8_t i = u8(r);
    if (i < 0xf0)
      return rl_double(dbls[i % (sizeof dbls / sizeof dbls[0])]);
    uint64_t bits = u64(r);
    double d;
    memcpy(&d, &bits, sizeof d);
    return rl_double(d);
  }
  case 4: { /* copied by reclayout: the buffer is reused afterwards */
    char *s = owned_src[op];
    size_t n = u8(r) % (sizeof owned_src[0]);
    for (size_t i = 0; i < n; i++) {
      uint8_t c = u8(r);
      s[i] = (char)(c ? c : 's');
    }
    s[n] = '\0';
    return rl_str(s);
  }
  case 5:
    return rl_str_borrowed(lits[u8(r) % (sizeof lits / sizeof lits[0])]);
  case 6: {
    int j = pick((void *const *)objs, MAX_OBJS, u8(r));
    return rl_ref(j >= 0 ? objs[j] : NULL);
  }
  case 7:
    return rl_ptr((void *)(uintptr_t)(0x1000 + u8(r)));
  case 8: { /* kinds the library must refuse (UNSET, past PTR) */
    rl_value_t v = rl_none();
    v.kind = (uint8_t)(u8(r) % 12);
    if (v.kind == RL_KIND_STR)
      v.u.s = NULL;
    return v;
  }
  case 9:
    return rl_str(NULL);
  default: { /* the same string again, to re-set an attribute to itself */
    int j = op > 0 ? op - 1 : 0;
    return rl_str(owned_src[j]);
  }
  }
}

static int same_value(const rl_value_t *a, const rl_value_t *b) {
  if (a->kind != b->kind)
    return 0;
  switch (a->kind) {
  case RL_KIND_BOOL:
    return a->u.b == b->u.b;
  case RL_KIND_INT:
    return a->u.i == b->u.i;
  case RL_KIND_DOUBLE:
    return memcmp(&a->u.d, &b->u.d, sizeof a->u.d) == 0;
  case RL_KIND_STR:
    return strcmp(a->u.s, b->u.s) == 0;
  case RL_KIND_REF:
    return a->u.ref == b->u.ref;
  case RL_KIND_PTR:
    return a->u.ptr == b->u.ptr;
  default:
    return 1;
  }
}

/* Everything observable about an instance, hashed; also checks that the
 * iteration agrees with rl_get and that rl_deep_sizeof is exactly the shell,
 * the dict and the strings the instance owns. */
static uint64_t fingerprint(const rl_obj_t *o) {
  uint64_t h = 1469598103934665603ull;
#define MIX(v) (h = (h ^ (uint64_t)(v)) * 1099511628211ull)
  size_t owned = 0, pos = 0, n = 0;
  const char *name;
  rl_value_t v;
  while (rl_next(o, &pos, &name, &v) == 1) {
    HS_FUZZ_CHECK(name && n++ < 4096);
    for (const char *c = name; *c; c++)
      MIX(*c);
    MIX(v.kind);
    MIX(v.flags);
    HS_FUZZ_CHECK(v.kind >= RL_KIND_NONE && v.kind <= RL_KIND_PTR);
    HS_FUZZ_CHECK((v.flags & ~RL_VF_BORROWED) == 0);
    HS_FUZZ_CHECK(v.rl_reserved == 0 && v.rl_aux == 0);
    if (v.kind == RL_KIND_STR) {
      for (const char *c = v.u.s; *c; c++)
        MIX(*c);
      if (!(v.flags & RL_VF_BORROWED))
        owned += strlen(v.u.s) + 1;
    } else if (v.kind == RL_KIND_INT || v.kind == RL_KIND_DOUBLE ||
               v.kind == RL_KIND_REF || v.kind == RL_KIND_PTR) {
      uint64_t bits;
      memcpy(&bits, &v.u, sizeof bits);
      MIX(bits);
    } else if (v.kind == RL_KIND_BOOL) {
      MIX(v.u.b);
    }
    rl_value_t g;
    HS_FUZZ_CHECK(rl_get(o, name, &g) == 0);
    HS_FUZZ_CHECK(same_value(&v, &g));
    HS_FUZZ_CHECK(rl_has(o, name) == 1);
  }
  size_t shell = rl_sizeof(o), dict = rl_dict_sizeof(o),
         deep = rl_deep_sizeof(o);
  HS_FUZZ_CHECK(shell == rl_class_instance_size(rl_class_of(o)));
  HS_FUZZ_CHECK(deep == shell + dict + owned);
  HS_FUZZ_CHECK(rl_has_dict(o) ? 1 : (dict == 0 && rl_dict_len(o) == 0));
  MIX(deep);
  MIX(dict);
  MIX(rl_dict_len(o));
  MIX(rl_dict_kind_of(o));
#undef MIX
  return h;
}

/* The allocator's live bytes are exactly what the classes cost when made
 * plus what every instance says it holds. */
static void check_heap(void) {
  size_t want = 0;
  for (int i = 0; i < MAX_CLASSES; i++)
    if (classes[i])
      want += class_cost[i];
  for (int i = 0; i < MAX_OBJS; i++)
    if (objs[i])
      want += rl_deep_sizeof(objs[i]);
  for (int i = 0; i < MAX_TYPED; i++)
    if (typed[i])
      want += rl_class_cells_size(classes[typed_class[i]]);
  HS_FUZZ_CHECK(heap.live_bytes == want);
}

static void check_layout(const rl_class_t *c) {
  size_t n = rl_class_nslots(c), cells = rl_class_cells_size(c);
  int has_dict = rl_class_has_dict(c);
  rl_dict_kind_t dk = rl_class_dict_kind(c);
  HS_FUZZ_CHECK(has_dict == 0 || has_dict == 1);
  HS_FUZZ_CHECK(has_dict ? dk == RL_DICT_INSTANCE || dk == RL_DICT_SHARED
                         : dk == RL_DICT_NONE);
  HS_FUZZ_CHECK(rl_class_instance_size(c) ==
                RL_OBJ_HEADER + ((cells + 7) & ~(size_t)7) +
                    (has_dict ? 8 : 0));
  HS_FUZZ_CHECK(rl_class_is_plain(c) == 0 || rl_class_is_plain(c) == 1);
  if (rl_class_base(c))
    HS_FUZZ_CHECK(n >= rl_class_nslots(rl_class_base(c)));
  for (size_t i = 0; i < n; i++) {
    const char *nm = rl_class_slot_name(c, i);
    size_t off = rl_class_slot_offset(c, i), sz = rl_class_slot_size(c, i);
    int t = rl_class_slot_type(c, i);
    HS_FUZZ_CHECK(nm && t >= RL_T_TAGGED && t <= RL_T_PTR);
    /* Natural alignment, at most 8 (a tagged cell is 16 bytes, aligned 8). */
    HS_FUZZ_CHECK(sz > 0 && off + sz <= cells && off % (sz < 8 ? sz : 8) == 0);
    HS_FUZZ_CHECK(rl_class_slot_index(c, nm) == (int)i);
    for (size_t j = 0; j < i; j++) { /* cells never overlap */
      size_t o2 = rl_class_slot_offset(c, j), s2 = rl_class_slot_size(c, j);
      HS_FUZZ_CHECK(off >= o2 + s2 || o2 >= off + sz);
    }
  }
  HS_FUZZ_CHECK(rl_class_slot_name(c, n) == NULL);
  HS_FUZZ_CHECK(rl_class_slot_offset(c, n) == (size_t)-1);
  HS_FUZZ_CHECK(rl_class_slot_size(c, n) == (size_t)-1);
  HS_FUZZ_CHECK(rl_class_slot_type(c, n) == -1);
}

static void op_class_new(rd_t *r) {
  int idx = pick_free((void *const *)classes, MAX_CLASSES, u8(r));
  if (idx < 0)
    return;
  char bufs[12][16];
  rl_slot_spec_t slots[6];
  const char *keys[4];
  uint8_t flags = u8(r);
  rl_class_spec_t spec;
  memset(&spec, 0, sizeof spec);
  spec.name = (flags & 0x80) ? NULL : name_from(r, bufs[0]);
  int base = -1;
  if (flags & 1)
    base = pick((void *const *)classes, MAX_CLASSES, u8(r));
  spec.base = base >= 0 ? classes[base] : NULL;
  spec.declares_slots = (flags & 2) != 0;
  spec.nslots = u8(r) % 7;
  for (size_t i = 0; i < spec.nslots; i++) {
    slots[i].name = name_from(r, bufs[1 + i]);
    slots[i].type = (rl_ctype_t)(u8(r) % 9); /* 8 is not a type */
  }
  spec.slots = (flags & 0x40) ? NULL : slots;
  spec.dict_kind = (rl_dict_kind_t)(u8(r) % 5); /* 4 is not a kind */
  spec.ndict_keys = u8(r) % 5;
  for (size_t i = 0; i < spec.ndict_keys; i++)
    keys[i] = name_from(r, bufs[7 + i]);
  spec.dict_keys = spec.ndict_keys ? keys : NULL;

  rl_class_t *c = (rl_class_t *)(uintptr_t)1;
  size_t before = heap.live_bytes;
  int rc = rl_class_new(&spec, &c);
  check_rc(rc);
  if (rc != 0) {
    HS_FUZZ_CHECK(c == (rl_class_t *)(uintptr_t)1);
    HS_FUZZ_CHECK(heap.live_bytes == before);
    return;
  }
  classes[idx] = c;
  class_cost[idx] = heap.live_bytes - before;
  class_users[idx] = 0;
  class_base[idx] = base;
  if (base >= 0)
    class_users[base]++;
  HS_FUZZ_CHECK(rl_class_base(c) == spec.base);
  HS_FUZZ_CHECK(strcmp(rl_class_name(c), spec.name) == 0);
  check_layout(c);
  for (size_t i = 0; spec.declares_slots && spec.slots && i < spec.nslots; i++)
    if (strcmp(slots[i].name, "__dict__") != 0)
      HS_FUZZ_CHECK(rl_class_slot_index(c, slots[i].name) >= 0);
  static FILE *devnull;
  if (devnull || (devnull = fopen("/dev/null", "w")))
    HS_FUZZ_CHECK(rl_class_describe(c, devnull) == 0);
}

static void free_class(int i) {
  size_t before = heap.live_bytes;
  rl_class_free(classes[i]);
  HS_FUZZ_CHECK(before - heap.live_bytes == class_cost[i]);
  if (class_base[i] >= 0)
    class_users[class_base[i]]--;
  classes[i] = NULL;
}

static void op_class_free(rd_t *r) {
  int i = pick((void *const *)classes, MAX_CLASSES, u8(r));
  if (i >= 0 && class_users[i] == 0)
    free_class(i);
}

static void op_new(rd_t *r) {
  int ci = pick((void *const *)classes, MAX_CLASSES, u8(r));
  int oi = pick_free((void *const *)objs, MAX_OBJS, u8(r));
  if (ci < 0 || oi < 0)
    return;
  rl_obj_t *o = NULL;
  size_t before = heap.live_bytes;
  int rc = rl_new(classes[ci], &o);
  check_rc(rc);
  HS_FUZZ_CHECK(rc == 0 || rc == RL_ENOMEM);
  if (rc) {
    HS_FUZZ_CHECK(heap.live_bytes == before);
    return;
  }
  HS_FUZZ_CHECK(rl_class_of(o) == classes[ci]);
  HS_FUZZ_CHECK(heap.live_bytes - before == rl_sizeof(o));
  objs[oi] = o;
  obj_class[oi] = ci;
  class_users[ci]++;
}

static void free_obj(int i) {
  size_t before = heap.live_bytes, deep = rl_deep_sizeof(objs[i]);
  rl_free(objs[i]);
  HS_FUZZ_CHECK(before - heap.live_bytes == deep);
  class_users[obj_class[i]]--;
  objs[i] = NULL;
}

/* One attribute operation on an instance: by name or by index. */
static void op_attr(rd_t *r, uint8_t op, int opno) {
  int i = pick((void *const *)objs, MAX_OBJS, u8(r));
  if (i < 0)
    return;
  rl_obj_t *o = objs[i];
  const rl_class_t *c = rl_class_of(o);
  char buf[16];
  const char *name = name_from(r, buf);
  size_t index = u8(r) % (rl_class_nslots(c) + 2); /* some out of range */
  rl_value_t v = value_from(r, opno), got;
  uint64_t before = fingerprint(o);
  size_t bytes = heap.live_bytes;
  int rc, mutated = 1;
  int slot = rl_class_slot_index(c, name);
  HS_FUZZ_CHECK(slot >= 0 || slot == RL_EATTR);

  switch (op) {
  case 0:
    rc = rl_set(o, name, v);
    if (rc == 0 && strcmp(name, "__dict__") != 0) {
      HS_FUZZ_CHECK(rl_get(o, name, &got) == 0);
      if (slot < 0 || rl_class_slot_type(c, (size_t)slot) == RL_T_TAGGED)
        HS_FUZZ_CHECK(same_value(&v, &got));
      if (v.kind == RL_KIND_STR && (v.flags & RL_VF_BORROWED) &&
          got.kind == RL_KIND_STR)
        HS_FUZZ_CHECK(got.u.s == v.u.s && (got.flags & RL_VF_BORROWED));
    }
    break;
  case 1:
    rc = rl_del(o, name);
    if (rc == 0) {
      HS_FUZZ_CHECK(rl_has(o, name) == 0);
      HS_FUZZ_CHECK(rl_get(o, name, &got) == RL_EATTR);
    }
    break;
  case 2:
    mutated = 0;
    rc = rl_get(o, name, &got);
    if (rc == 0 && got.kind == RL_KIND_STR)
      HS_FUZZ_CHECK(strlen(got.u.s) < 4096);
    HS_FUZZ_CHECK((rc == 0) <= (rl_has(o, name) == 1));
    break;
  case 3:
    rc = rl_set_index(o, index, v);
    if (rc == 0 &&
        rl_class_slot_type(c, index) == RL_T_TAGGED) {
      HS_FUZZ_CHECK(rl_get_index(o, index, &got) == 0);
      HS_FUZZ_CHECK(same_value(&v, &got));
    }
    break;
  case 4:
    mutated = 0;
    rc = rl_get_index(o, index, &got);
    if (index >= rl_class_nslots(c))
      HS_FUZZ_CHECK(rc == RL_ERANGE);
    break;
  case 5: {
    double d = v.kind == RL_KIND_DOUBLE ? v.u.d : (double)v.u.i;
    rc = rl_set_f64_index(o, index, d);
    if (rc == 0) {
      double back;
      HS_FUZZ_CHECK(rl_get_f64_index(o, index, &back) == 0);
      HS_FUZZ_CHECK(memcmp(&back, &d, sizeof d) == 0);
    }
    break;
  }
  case 6: {
    rc = rl_set_i64_index(o, index, v.u.i);
    if (rc == 0) {
      int64_t back;
      HS_FUZZ_CHECK(rl_get_i64_index(o, index, &back) == 0);
      HS_FUZZ_CHECK(back == v.u.i);
    }
    break;
  }
  default:
    mutated = 0;
    rc = rl_has(o, name);
    HS_FUZZ_CHECK(rc == 0 || rc == 1);
    if (strcmp(name, "__dict__") == 0)
      HS_FUZZ_CHECK(rc == rl_has_dict(o));
    rc = 0;
    break;
  }
  check_rc(rc);
  /* A failed call leaves the instance as it was (the header promises it
   * for RL_ENOMEM; every other refusal happens before any change). */
  if (rc != 0 || !mutated) {
    HS_FUZZ_CHECK(fingerprint(o) == before);
    HS_FUZZ_CHECK(heap.live_bytes == bytes);
  } else {
    fingerprint(o);
  }
}

/* Headerless instances of plain classes, with the checked by-name calls and
 * the unchecked inline accessors. */
static void op_typed(rd_t *r, int opno) {
  uint8_t what = u8(r);
  if (what & 1) {
    int ti = pick((void *const *)typed, MAX_TYPED, u8(r));
    if (ti >= 0) {
      rl_free_typed(classes[typed_class[ti]], typed[ti]);
      class_users[typed_class[ti]]--;
      typed[ti] = NULL;
    }
    return;
  }
  if (what & 2) {
    int ci = pick((void *const *)classes, MAX_CLASSES, u8(r));
    int ti = pick_free((void *const *)typed, MAX_TYPED, u8(r));
    if (ci < 0 || ti < 0)
      return;
    void *cells = NULL;
    int rc = rl_new_typed(classes[ci], &cells);
    check_rc(rc);
    if (!rl_class_is_plain(classes[ci]))
      HS_FUZZ_CHECK(rc == RL_EINVAL);
    if (rc == 0) {
      typed[ti] = cells;
      typed_class[ti] = ci;
      class_users[ci]++;
    }
    return;
  }
  int ti = pick((void *const *)typed, MAX_TYPED, u8(r));
  if (ti < 0)
    return;
  const rl_class_t *c = classes[typed_class[ti]];
  void *cells = typed[ti];
  char buf[16];
  const char *name = name_from(r, buf);
  rl_value_t v = value_from(r, opno), got;
  int rc = rl_typed_set(c, cells, name, v);
  check_rc(rc);
  rc = rl_typed_get(c, cells, name, &got);
  check_rc(rc);
  HS_FUZZ_CHECK(rc == 0 || rc == RL_EATTR);
  size_t n = rl_class_nslots(c);
  if (!n)
    return;
  size_t i = u8(r) % n, off = rl_class_slot_offset(c, i);
  int t = rl_class_slot_type(c, i);
  const char *sn = rl_class_slot_name(c, i);
  if (t == RL_T_F64) {
    rl_f64_put(cells, off, v.u.d);
    HS_FUZZ_CHECK(rl_typed_get(c, cells, sn, &got) == 0);
    HS_FUZZ_CHECK(got.kind == RL_KIND_DOUBLE &&
                  memcmp(&got.u.d, &v.u.d, sizeof v.u.d) == 0);
    HS_FUZZ_CHECK(memcmp(&(double){rl_f64_at(cells, off)}, &v.u.d,
                         sizeof v.u.d) == 0);
  } else if (t == RL_T_I64) {
    rl_i64_put(cells, off, v.u.i);
    HS_FUZZ_CHECK(rl_typed_get(c, cells, sn, &got) == 0);
    HS_FUZZ_CHECK(got.kind == RL_KIND_INT && got.u.i == v.u.i);
    HS_FUZZ_CHECK(rl_i64_at(cells, off) == v.u.i);
  }
}

static void op_iterate(rd_t *r) {
  int i = pick((void *const *)objs, MAX_OBJS, u8(r));
  if (i < 0)
    return;
  fingerprint(objs[i]);
  const rl_class_t *c = rl_class_of(objs[i]);
  for (size_t k = 0; k < rl_class_nslots(c); k++) {
    rl_value_t v;
    int rc = rl_get_index(objs[i], k, &v);
    if (rc == 0 && rl_class_slot_type(c, k) == RL_T_TAGGED)
      HS_FUZZ_CHECK(rl_value_at(rl_cells(objs[i]),
                                rl_class_slot_offset(c, k), &v) == 0);
    HS_FUZZ_CHECK(rc == 0 || rc == RL_EATTR);
  }
}

static void run(rd_t *r) {
  for (int opno = 0; opno < MAX_OPS && r->p < r->end; opno++) {
    uint8_t op = u8(r);
    switch (op % 16) {
    case 0:
    case 1:
      op_class_new(r);
      break;
    case 2:
      op_class_free(r);
      break;
    case 3:
    case 4:
      op_new(r);
      break;
    case 5: {
      int i = pick((void *const *)objs, MAX_OBJS, u8(r));
      if (i >= 0)
        free_obj(i);
      break;
    }
    case 6:
    case 7:
    case 8:
      op_attr(r, (uint8_t)(op >> 4) % 8, opno);
      break;
    case 9:
      op_attr(r, 0, opno); /* sets are what grow dicts: more of them */
      break;
    case 10:
      op_typed(r, opno);
      break;
    case 11:
      op_iterate(r);
      break;
    case 12: /* the k-th allocation from now fails */
      heap.fail_in = u8(r) % 8;
      break;
    default:
      op_attr(r, (uint8_t)(op >> 4) % 8, opno);
      break;
    }
    check_heap();
  }
}

int hs_fuzz_reclayout_ops(const uint8_t *data, size_t size) {
  memset(&heap, 0, sizeof heap);
  heap.fail_in = -1;
  rl__allocator_t a = {counting_alloc, counting_free, NULL};
  rl__set_allocator(&a);
  rd_t r = {data, data + size};
  run(&r);

  heap.fail_in = -1;
  for (int i = 0; i < MAX_OBJS; i++)
    if (objs[i])
      free_obj(i);
  for (int i = 0; i < MAX_TYPED; i++)
    if (typed[i]) {
      rl_free_typed(classes[typed_class[i]], typed[i]);
      class_users[typed_class[i]]--;
      typed[i] = NULL;
    }
  /* Subclasses before their bases: free whatever nobody uses, repeatedly. */
  for (int freed = 1; freed;) {
    freed = 0;
    for (int i = 0; i < MAX_CLASSES; i++)
      if (classes[i] && class_users[i] == 0) {
        free_class(i);
        freed = 1;
      }
  }
  for (int i = 0; i < MAX_CLASSES; i++)
    HS_FUZZ_CHECK(classes[i] == NULL);
  HS_FUZZ_CHECK(heap.live_bytes == 0 && heap.live_blocks == 0);
  rl__set_allocator(NULL);
  return 0;
}

#ifdef HS_FUZZ_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  return hs_fuzz_reclayout_ops(data, size);
}
#endif
