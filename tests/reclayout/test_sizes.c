/* test_sizes.c - proves rl_sizeof/rl_dict_sizeof/rl_deep_sizeof equal the
 * bytes requested from the allocator for every layout, that out-of-memory
 * at any allocation leaves objects unchanged, and reports bytes per record. */
#include <stdio.h>

#include "rl_test_alloc.h"

static rl_class_t *mk(const rl_class_spec_t *s) {
  rl_class_t *c = NULL;
  int rc = rl_class_new(s, &c);
  ck_assert_msg(rc == 0, "rl_class_new(%s): %s", s->name, rl_last_error());
  return c;
}

static const rl_slot_spec_t xyz[] = {{"x", 0}, {"y", 0}, {"z", 0}};
static const rl_slot_spec_t xyz_f64[] = {
    {"x", RL_T_F64}, {"y", RL_T_F64}, {"z", RL_T_F64}};
static const char *const xyz_keys[] = {"x", "y", "z"};

/* An instance whose every byte is accounted for: after each step the live
 * requested bytes since before rl_new equal rl_deep_sizeof. */
typedef struct {
  rl_obj_t *o;
  size_t base;
} tracked_t;

static tracked_t track_new(const rl_class_t *c) {
  tracked_t t = {NULL, ta_live_bytes};
  size_t blocks = ta_live_blocks;
  ck_assert_int_eq(rl_new(c, &t.o), 0);
  ck_assert_uint_eq(ta_live_blocks, blocks + 1);
  ck_assert_uint_eq(ta_live_bytes - t.base, rl_sizeof(t.o));
  ck_assert_uint_eq(rl_sizeof(t.o), rl_class_instance_size(c));
  return t;
}
static void exact(const tracked_t *t) {
  ck_assert_uint_eq(ta_live_bytes - t->base, rl_deep_sizeof(t->o));
}
/* With no owned strings, the dict is everything beyond the shell. */
static void exact_dict(const tracked_t *t) {
  ck_assert_uint_eq(ta_live_bytes - t->base - rl_sizeof(t->o),
                    rl_dict_sizeof(t->o));
  exact(t);
}
static void set_ok(const tracked_t *t, const char *n, rl_value_t v) {
  ck_assert_msg(rl_set(t->o, n, v) == 0, "set %s: %s", n, rl_last_error());
}

static void xyz_numbers(const tracked_t *t) {
  set_ok(t, "x", rl_double(1.5));
  set_ok(t, "y", rl_double(2.5));
  set_ok(t, "z", rl_double(3.5));
}

START_TEST(exact_dict_instance) {
  rl_class_t *c = mk(&(rl_class_spec_t){.name = "PointWithDict"});
  tracked_t t = track_new(c);
  xyz_numbers(&t);
  exact_dict(&t);
  ck_assert_uint_eq(rl_dict_sizeof(t.o), 144 + 3 * 2); /* keys copied */
  for (int i = 0; i < 20; i++) { /* through two resizes */
    char k[8];
    snprintf(k, sizeof k, "a%d", i);
    set_ok(&t, k, rl_int(i));
    exact_dict(&t);
  }
  ck_assert_int_eq(rl_del(t.o, "a3"), 0);
  exact_dict(&t);
  set_ok(&t, "s", rl_str("a string value"));
  exact(&t);
  ck_assert_uint_eq(rl_deep_sizeof(t.o),
                    rl_sizeof(t.o) + rl_dict_sizeof(t.o) + sizeof "a string value");
  rl_free(t.o);
  ck_assert_uint_eq(ta_live_bytes, t.base);
  rl_class_free(c);
}
END_TEST

START_TEST(exact_dict_interned) {
  rl_class_t *c = mk(&(rl_class_spec_t){.name = "PointWithDict", .dict_keys = xyz_keys,
                                        .ndict_keys = 3});
  tracked_t t = track_new(c);
  xyz_numbers(&t);
  exact_dict(&t);
  ck_assert_uint_eq(rl_dict_sizeof(t.o), 144);
  ck_assert_uint_eq(rl_deep_sizeof(t.o), 160);
  rl_free(t.o);
  rl_class_free(c);
}
END_TEST

START_TEST(exact_shared) {
  rl_class_t *c = mk(&(rl_class_spec_t){.name = "SharedPoint", .dict_kind = RL_DICT_SHARED,
                                        .dict_keys = xyz_keys, .ndict_keys = 3});
  tracked_t t = track_new(c);
  set_ok(&t, "x", rl_double(1));
  exact_dict(&t);
  ck_assert_uint_eq(rl_dict_sizeof(t.o), 56); /* whole values array at once */
  set_ok(&t, "y", rl_double(1));
  set_ok(&t, "z", rl_double(1));
  exact_dict(&t);
  ck_assert_uint_eq(rl_deep_sizeof(t.o), 72);
  set_ok(&t, "y", rl_str("text"));
  exact(&t);
  set_ok(&t, "w", rl_double(1)); /* diverges */
  ck_assert_int_eq(rl_dict_kind_of(t.o), RL_DICT_INSTANCE);
  exact(&t);
  ck_assert_uint_eq(rl_dict_sizeof(t.o), 144 + 2);
  rl_free(t.o);
  rl_class_free(c);
}
END_TEST

START_TEST(exact_tagged_slots) {
  rl_class_t *c = mk(&(rl_class_spec_t){.name = "PointWithSlots", RL_SLOTS(xyz)});
  tracked_t t = track_new(c);
  xyz_numbers(&t);
  exact(&t);
  ck_assert_uint_eq(rl_sizeof(t.o), 56);
  ck_assert_uint_le(rl_deep_sizeof(t.o), 56); /* the target */
  ck_assert_uint_eq(rl_dict_sizeof(t.o), 0);
  set_ok(&t, "y", rl_str("owned"));
  exact(&t);
  ck_assert_uint_eq(rl_deep_sizeof(t.o), 56 + 6);
  ck_assert_int_eq(rl_del(t.o, "y"), 0);
  exact(&t);
  rl_free(t.o);
  rl_class_free(c);
}
END_TEST

START_TEST(exact_typed_slots) {
  rl_class_t *c = mk(&(rl_class_spec_t){.name = "PointF64", RL_SLOTS(xyz_f64)});
  tracked_t t = track_new(c);
  xyz_numbers(&t);
  exact(&t);
  ck_assert_uint_eq(rl_sizeof(t.o), 8 + 24);
  rl_free(t.o);
  /* headerless: exactly the struct */
  size_t before = ta_live_bytes, blocks = ta_live_blocks;
  void *p = NULL;
  ck_assert_int_eq(rl_new_typed(c, &p), 0);
  ck_assert_uint_eq(ta_live_blocks, blocks + 1);
  ck_assert_uint_eq(ta_live_bytes - before, 24);
  ck_assert_uint_eq(ta_live_bytes - before, sizeof(struct { double x, y, z; }));
  ck_assert_uint_le((ta_live_bytes - before) * 10, 24 * 11); /* within 10% */
  rl_free_typed(c, p);
  ck_assert_uint_eq(ta_live_bytes, before);
  rl_class_free(c);
}
END_TEST

START_TEST(exact_hybrid_and_subclass) {
  static const rl_slot_spec_t sl[] = {
      {"id", RL_T_I64}, {"name", 0}, {"__dict__", 0}, {"flag", RL_T_U8}};
  rl_class_t *c = mk(&(rl_class_spec_t){.name = "Hybrid", RL_SLOTS(sl)});
  rl_class_t *s = mk(&(rl_class_spec_t){.name = "HybridSub", .base = c});
  const rl_class_t *cls[] = {c, s};
  for (int k = 0; k < 2; k++) {
    tracked_t t = track_new(cls[k]);
    set_ok(&t, "id", rl_int(7));
    set_ok(&t, "name", rl_str("sensor-7"));
    set_ok(&t, "flag", rl_int(1));
    exact(&t);
    ck_assert_uint_eq(rl_dict_sizeof(t.o), 0);
    set_ok(&t, "note", rl_str("dynamic"));
    set_ok(&t, "n", rl_int(3));
    exact(&t);
    ck_assert_uint_eq(rl_deep_sizeof(t.o), rl_sizeof(t.o) + rl_dict_sizeof(t.o) +
                                               sizeof "sensor-7" + sizeof "dynamic");
    rl_free(t.o);
    ck_assert_uint_eq(ta_live_bytes, t.base);
  }
  rl_class_free(s);
  rl_class_free(c);
}
END_TEST

/* ---- Out of memory: every allocation of every operation may fail ------- */

/* A printable image of an object's attributes, to compare before/after. */
static void image(rl_obj_t *o, char *buf, size_t n) {
  size_t pos = 0, at = 0;
  const char *name;
  rl_value_t v;
  at += (size_t)snprintf(buf + at, n - at, "[%d]", (int)rl_dict_kind_of(o));
  while (rl_next(o, &pos, &name, &v) && at < n)
    at += (size_t)snprintf(buf + at, n - at, "%s=%d:%lld:%s;", name, v.kind,
                           v.kind == RL_KIND_STR ? 0 : (long long)v.u.i,
                           v.kind == RL_KIND_STR ? v.u.s : "");
}

typedef int (*op_fn)(rl_obj_t *o);
static int op_slot_string(rl_obj_t *o) { return rl_set(o, "x", rl_str("a new string")); }
static int op_dict_grow(rl_obj_t *o) { return rl_set(o, "k5", rl_str("grows the dict")); }
static int op_dict_first(rl_obj_t *o) { return rl_set(o, "first", rl_str("lazy")); }
static int op_shared_first(rl_obj_t *o) { return rl_set(o, "x", rl_str("values")); }
static int op_shared_diverge(rl_obj_t *o) { return rl_set(o, "unknown", rl_str("diverge")); }
static int op_shared_delete(rl_obj_t *o) { return rl_del(o, "y"); }

/* Runs op with the n-th allocation failing, n = 0, 1, ... until it
 * succeeds; every failure must be RL_ENOMEM with obj untouched. */
static void oom_sweep(const rl_class_t *c, void (*prep)(rl_obj_t *), op_fn op,
                      int min_failures) {
  int failures = 0;
  for (long n = 0;; n++) {
    rl_obj_t *o;
    ck_assert_int_eq(rl_new(c, &o), 0);
    prep(o);
    char before[512], after[512];
    image(o, before, sizeof before);
    size_t live = ta_live_bytes, deep = rl_deep_sizeof(o);
    ta_fail_nth(n);
    int rc = op(o);
    ta_no_fail();
    if (rc == 0) {
      rl_free(o);
      break;
    }
    failures++;
    ck_assert_int_eq(rc, RL_ENOMEM);
    image(o, after, sizeof after);
    ck_assert_str_eq(before, after);
    ck_assert_uint_eq(ta_live_bytes, live);
    ck_assert_uint_eq(rl_deep_sizeof(o), deep);
    rl_free(o);
    ck_assert_int_lt(n, 10);
  }
  ck_assert_int_ge(failures, min_failures);
}

static void prep_none(rl_obj_t *o) { (void)o; }
static void prep_slot(rl_obj_t *o) { ck_assert_int_eq(rl_set(o, "x", rl_str("old")), 0); }
static void prep_five(rl_obj_t *o) {
  char k[8];
  for (int i = 0; i < 5; i++) {
    snprintf(k, sizeof k, "k%d", i);
    ck_assert_int_eq(rl_set(o, k, rl_str(k)), 0);
  }
}
static void prep_shared(rl_obj_t *o) {
  ck_assert_int_eq(rl_set(o, "x", rl_str("one")), 0);
  ck_assert_int_eq(rl_set(o, "y", rl_str("two")), 0);
}

START_TEST(oom_leaves_objects_unchanged) {
  rl_class_t *slots = mk(&(rl_class_spec_t){.name = "S", RL_SLOTS(xyz)});
  rl_class_t *dict = mk(&(rl_class_spec_t){.name = "D"});
  rl_class_t *shared = mk(&(rl_class_spec_t){.name = "H", .dict_kind = RL_DICT_SHARED,
                                             .dict_keys = xyz_keys, .ndict_keys = 3});
  oom_sweep(slots, prep_slot, op_slot_string, 1);
  oom_sweep(dict, prep_five, op_dict_grow, 3); /* value, key, table */
  oom_sweep(dict, prep_none, op_dict_first, 3);
  oom_sweep(shared, prep_none, op_shared_first, 2);
  oom_sweep(shared, prep_shared, op_shared_diverge, 3);
  oom_sweep(shared, prep_shared, op_shared_delete, 1);
  rl_class_free(shared);
  rl_class_free(dict);
  rl_class_free(slots);
}
END_TEST

START_TEST(oom_on_creation) {
  static const char *const keys[] = {"k"};
  static const rl_slot_spec_t sl[] = {{"a", 0}, {"__dict__", 0}};
  const rl_class_spec_t spec = {.name = "C", RL_SLOTS(sl), .dict_keys = keys,
                                .ndict_keys = 1};
  rl_class_t *c = NULL;
  int failures = 0;
  for (long n = 0;; n++) {
    ta_fail_nth(n);
    int rc = rl_class_new(&spec, &c);
    ta_no_fail();
    if (rc == 0)
      break;
    ck_assert_int_eq(rc, RL_ENOMEM);
    ck_assert_ptr_null(c);
    ck_assert_uint_eq(ta_live_blocks, 0); /* nothing half-built left */
    failures++;
  }
  ck_assert_int_eq(failures, 5); /* class, pool, names, slots, keys */
  rl_obj_t *o = (rl_obj_t *)&failures; /* sentinel: must stay untouched */
  ta_fail_nth(0);
  ck_assert_int_eq(rl_new(c, &o), RL_ENOMEM);
  ck_assert_ptr_eq(o, &failures);
  rl_class_t *t = mk(&(rl_class_spec_t){.name = "T", RL_SLOTS(xyz_f64)});
  void *p = &failures;
  ta_fail_nth(0);
  ck_assert_int_eq(rl_new_typed(t, &p), RL_ENOMEM);
  ck_assert_ptr_eq(p, &failures);
  ta_no_fail();
  rl_class_free(t);
  rl_class_free(c);
}
END_TEST

/* ---- The report: bytes per record with x, y, z doubles ---------------- */

START_TEST(report_bytes_per_record) {
  rl_class_t *d = mk(&(rl_class_spec_t){.name = "PointWithDict", .dict_keys = xyz_keys,
                                        .ndict_keys = 3});
  rl_class_t *h = mk(&(rl_class_spec_t){.name = "SharedPoint", .dict_kind = RL_DICT_SHARED,
                                        .dict_keys = xyz_keys, .ndict_keys = 3});
  rl_class_t *s = mk(&(rl_class_spec_t){.name = "PointWithSlots", RL_SLOTS(xyz)});
  rl_class_t *f = mk(&(rl_class_spec_t){.name = "PointF64", RL_SLOTS(xyz_f64)});
  const rl_class_t *cls[] = {d, h, s, f};
  const char *what[] = {"per-instance dict", "shared-key dict", "tagged slots",
                        "typed slots (rl_new)"};
  size_t want[] = {160, 72, 56, 32};
  printf("bytes per record, x/y/z doubles (requested, as a tracer counts):\n");
  for (int i = 0; i < 4; i++) {
    size_t before = ta_live_bytes, blocks = ta_live_blocks;
    rl_obj_t *o;
    ck_assert_int_eq(rl_new(cls[i], &o), 0);
    size_t untouched = ta_live_bytes - before;
    for (int k = 0; k < 3; k++)
      ck_assert_int_eq(rl_set(o, xyz_keys[k], rl_double(k)), 0);
    size_t total = ta_live_bytes - before;
    ck_assert_uint_eq(total, rl_deep_sizeof(o));
    ck_assert_uint_eq(total, want[i]);
    printf("  %-22s shell %3zu  dict %3zu  total %3zu in %zu block(s)"
           "  (%zu before any attribute)\n",
           what[i], rl_sizeof(o), rl_dict_sizeof(o), total,
           ta_live_blocks - blocks, untouched);
    rl_free(o);
  }
  void *p;
  size_t before = ta_live_bytes;
  ck_assert_int_eq(rl_new_typed(f, &p), 0);
  printf("  %-22s shell %3zu  dict %3d  total %3zu in 1 block(s)"
         "  (struct {double x,y,z;} = %zu)\n",
         "typed (rl_new_typed)", ta_live_bytes - before, 0, ta_live_bytes - before,
         sizeof(struct { double x, y, z; }));
  rl_free_typed(f, p);
  printf("  CPython 3.11 (tracemalloc): dict-based 96 B/instance before "
         "__dict__ is touched, 152-160 after; slots 56.\n"
         "  CPython sys.getsizeof: object 48-56 + dict 296.\n");
  for (int i = 3; i >= 0; i--)
    rl_class_free((rl_class_t *)cls[i]);
}
END_TEST

int main(void) {
  Suite *s = suite_create("reclayout_sizes");
  TCase *tc = tcase_create("sizes");
  tcase_add_checked_fixture(tc, ta_setup, ta_teardown);
  tcase_add_test(tc, exact_dict_instance);
  tcase_add_test(tc, exact_dict_interned);
  tcase_add_test(tc, exact_shared);
  tcase_add_test(tc, exact_tagged_slots);
  tcase_add_test(tc, exact_typed_slots);
  tcase_add_test(tc, exact_hybrid_and_subclass);
  tcase_add_test(tc, oom_leaves_objects_unchanged);
  tcase_add_test(tc, oom_on_creation);
  tcase_add_test(tc, report_bytes_per_record);
  suite_add_tcase(s, tc);
  return ta_run(s);
}
