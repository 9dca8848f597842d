/* test_rules.c - Python's __slots__/__dict__ rules in reclayout: no dict on
 * slotted instances, AttributeError analogues, inheritance, the "__dict__"
 * escape hatch, redeclaration, error codes and messages, strings, threads. */
#include <pthread.h>
#include <stdio.h>

#include "rl_test_alloc.h"

static const rl_slot_spec_t xyz[] = {{"x", 0}, {"y", 0}, {"z", 0}};
static const rl_slot_spec_t base_slots[] = {{"recordId", 0}, {"timestamp", 0}};
static const rl_slot_spec_t sensor_slots[] = {
    {"sensorId", 0}, {"value", 0}, {"unit", 0}};

static rl_class_t *mk(const rl_class_spec_t *s) {
  rl_class_t *c = NULL;
  int rc = rl_class_new(s, &c);
  ck_assert_msg(rc == 0, "rl_class_new(%s): %s", s->name, rl_last_error());
  return c;
}

static rl_obj_t *inst(const rl_class_t *c) {
  rl_obj_t *o = NULL;
  ck_assert_int_eq(rl_new(c, &o), 0);
  return o;
}

START_TEST(slotted_has_no_dict) {
  rl_class_t *c = mk(&(rl_class_spec_t){.name = "PointWithSlots", RL_SLOTS(xyz)});
  rl_obj_t *p = inst(c);
  ck_assert_int_eq(rl_class_has_dict(c), 0);
  ck_assert_int_eq(rl_has_dict(p), 0);
  ck_assert_int_eq(rl_has(p, "__dict__"), 0);
  ck_assert_int_eq(rl_dict_kind_of(p), RL_DICT_NONE);
  ck_assert_int_eq(rl_class_dict_kind(c), RL_DICT_NONE);
  ck_assert_uint_eq(rl_dict_sizeof(p), 0);
  ck_assert_uint_eq(rl_class_nslots(c), 3);
  rl_free(p);
  rl_class_free(c);
}
END_TEST

START_TEST(undeclared_attribute_is_attr_error) {
  rl_class_t *c = mk(&(rl_class_spec_t){.name = "PointWithSlots", RL_SLOTS(xyz)});
  rl_obj_t *p = inst(c);
  ck_assert_int_eq(rl_set(p, "x", rl_double(1.0)), 0);
  ck_assert_int_eq(rl_set(p, "newField", rl_str("hello")), RL_EATTR);
  ck_assert_str_eq(rl_last_error(),
                   "'PointWithSlots' object has no attribute 'newField'");
  rl_value_t v;
  ck_assert_int_eq(rl_get(p, "newField", &v), RL_EATTR);
  ck_assert_int_eq(rl_del(p, "newField"), RL_EATTR);
  ck_assert_int_eq(rl_has(p, "newField"), 0);
  /* the failed set changed nothing */
  ck_assert_uint_eq(rl_deep_sizeof(p), rl_sizeof(p));
  ck_assert_int_eq(rl_get(p, "x", &v), 0);
  ck_assert_int_eq(v.kind, RL_KIND_DOUBLE);
  ck_assert_double_eq(v.u.d, 1.0);
  rl_free(p);
  rl_class_free(c);
}
END_TEST

START_TEST(unset_slot_reads_as_attr_error) {
  rl_class_t *c = mk(&(rl_class_spec_t){.name = "P", RL_SLOTS(xyz)});
  rl_obj_t *p = inst(c);
  rl_value_t v;
  ck_assert_int_eq(rl_get(p, "y", &v), RL_EATTR);
  ck_assert_str_eq(rl_last_error(), "'P' object has no attribute 'y'");
  int iy = rl_class_slot_index(c, "y");
  ck_assert_int_eq(iy, 1);
  ck_assert_int_eq(rl_get_index(p, (size_t)iy, &v), RL_EATTR);
  size_t oy = rl_class_slot_offset(c, (size_t)iy);
  ck_assert_int_eq(rl_value_at(rl_cells(p), oy, &v), RL_EATTR);
  ck_assert_int_eq(rl_has(p, "y"), 0);
  ck_assert_int_eq(rl_del(p, "y"), RL_EATTR);
  ck_assert_int_eq(rl_set(p, "y", rl_int(7)), 0);
  ck_assert_int_eq(rl_has(p, "y"), 1);
  ck_assert_int_eq(rl_get_index(p, 1, &v), 0);
  ck_assert_int_eq(v.kind, RL_KIND_INT);
  ck_assert_int_eq(v.u.i, 7);
  ck_assert_int_eq(rl_value_at(rl_cells(p), oy, &v), 0);
  ck_assert_int_eq(v.u.i, 7);
  ck_assert_int_eq(rl_set(p, "y", rl_str("owned")), 0);
  ck_assert_int_eq(rl_value_at(rl_cells(p), oy, &v), 0);
  ck_assert_uint_eq(v.flags, 0); /* the ownership bit stays inside */
  ck_assert_str_eq(v.u.s, "owned");
  ck_assert_int_eq(rl_del(p, "y"), 0);
  ck_assert_int_eq(rl_get(p, "y", &v), RL_EATTR); /* unset again */
  rl_free(p);
  rl_class_free(c);
}
END_TEST

START_TEST(slotted_subclass_inherits_cells) {
  rl_class_t *b = mk(&(rl_class_spec_t){.name = "BaseRecord", RL_SLOTS(base_slots)});
  rl_class_t *s = mk(&(rl_class_spec_t){
      .name = "SensorRecord", .base = b, RL_SLOTS(sensor_slots)});
  ck_assert_uint_eq(rl_class_nslots(s), 5);
  ck_assert_int_eq(rl_class_has_dict(s), 0);
  ck_assert_ptr_eq(rl_class_base(s), b);
  /* five cells, not seven: the base's are not duplicated */
  ck_assert_uint_eq(rl_class_cells_size(s), 5 * sizeof(rl_value_t));
  ck_assert_uint_eq(rl_class_instance_size(s), 8 + 5 * sizeof(rl_value_t));
  /* inherited slots keep index and offset */
  for (size_t i = 0; i < 2; i++) {
    ck_assert_str_eq(rl_class_slot_name(s, i), rl_class_slot_name(b, i));
    ck_assert_uint_eq(rl_class_slot_offset(s, i), rl_class_slot_offset(b, i));
  }
  ck_assert_int_eq(rl_class_slot_index(s, "recordId"), 0);
  ck_assert_int_eq(rl_class_slot_index(s, "unit"), 4);
  ck_assert_int_eq(rl_class_slot_index(b, "unit"), RL_EATTR);

  rl_obj_t *r = inst(s);
  ck_assert_int_eq(rl_has(r, "__dict__"), 0);
  ck_assert_int_eq(rl_set(r, "recordId", rl_int(1)), 0);
  ck_assert_int_eq(rl_set(r, "unit", rl_str_borrowed("C")), 0);
  ck_assert_int_eq(rl_set(r, "extra", rl_int(1)), RL_EATTR);
  /* an index found on the base works on the subclass instance */
  rl_value_t v;
  ck_assert_int_eq(rl_get_index(r, (size_t)rl_class_slot_index(b, "recordId"), &v), 0);
  ck_assert_int_eq(v.u.i, 1);
  rl_free(r);
  rl_class_free(s);
  rl_class_free(b);
}
END_TEST

START_TEST(subclass_without_slots_gets_dict) {
  rl_class_t *b = mk(&(rl_class_spec_t){.name = "BaseRecord", RL_SLOTS(base_slots)});
  rl_class_t *s = mk(&(rl_class_spec_t){.name = "LooseRecord", .base = b});
  ck_assert_int_eq(rl_class_has_dict(s), 1);
  ck_assert_int_eq(rl_class_dict_kind(s), RL_DICT_INSTANCE);
  ck_assert_uint_eq(rl_class_nslots(s), 2); /* inherited cells stay */
  ck_assert_uint_eq(rl_class_instance_size(s), 8 + 2 * 16 + 8);
  rl_obj_t *r = inst(s);
  ck_assert_int_eq(rl_has(r, "__dict__"), 1);
  ck_assert_int_eq(rl_set(r, "recordId", rl_int(5)), 0);
  ck_assert_uint_eq(rl_dict_len(r), 0); /* the slot took it, not the dict */
  ck_assert_uint_eq(rl_dict_sizeof(r), 0);
  ck_assert_int_eq(rl_set(r, "anything", rl_int(6)), 0);
  ck_assert_uint_eq(rl_dict_len(r), 1);
  rl_value_t v;
  ck_assert_int_eq(rl_get(r, "anything", &v), 0);
  ck_assert_int_eq(v.u.i, 6);
  ck_assert_int_eq(rl_get_index(r, 0, &v), 0);
  ck_assert_int_eq(v.u.i, 5);
  rl_free(r);
  rl_class_free(s);
  rl_class_free(b);
}
END_TEST

START_TEST(base_without_slots_gives_dict_to_all) {
  rl_class_t *b = mk(&(rl_class_spec_t){.name = "Plain"});
  rl_class_t *s = mk(&(rl_class_spec_t){.name = "Slotted", .base = b, RL_SLOTS(xyz)});
  rl_class_t *s2 = mk(&(rl_class_spec_t){
      .name = "Slotted2", .base = s, .declares_slots = true}); /* __slots__ = () */
  ck_assert_int_eq(rl_class_has_dict(b), 1);
  ck_assert_int_eq(rl_class_has_dict(s), 1);
  ck_assert_int_eq(rl_class_has_dict(s2), 1);
  ck_assert_uint_eq(rl_class_nslots(b), 0);
  ck_assert_uint_eq(rl_class_nslots(s2), 3);
  rl_obj_t *o = inst(s2);
  ck_assert_int_eq(rl_set(o, "dyn", rl_bool(true)), 0);
  ck_assert_int_eq(rl_set(o, "x", rl_double(2)), 0);
  ck_assert_uint_eq(rl_dict_len(o), 1);
  rl_free(o);
  rl_class_free(s2);
  rl_class_free(s);
  rl_class_free(b);
}
END_TEST

START_TEST(empty_slots_chain_has_no_dict) {
  rl_class_t *b = mk(&(rl_class_spec_t){.name = "E", .declares_slots = true});
  ck_assert_int_eq(rl_class_has_dict(b), 0);
  rl_obj_t *o = inst(b);
  ck_assert_uint_eq(rl_sizeof(o), 8);
  ck_assert_int_eq(rl_set(o, "a", rl_int(1)), RL_EATTR);
  rl_free(o);
  rl_class_free(b);
}
END_TEST

START_TEST(dict_in_slots_gives_both) {
  static const rl_slot_spec_t sl[] = {{"x", 0}, {"__dict__", 0}, {"y", 0}};
  rl_class_t *c = mk(&(rl_class_spec_t){.name = "Hybrid", RL_SLOTS(sl)});
  ck_assert_int_eq(rl_class_has_dict(c), 1);
  ck_assert_uint_eq(rl_class_nslots(c), 2); /* "__dict__" is not a cell */
  ck_assert_int_eq(rl_class_slot_index(c, "__dict__"), RL_EATTR);
  ck_assert_uint_eq(rl_class_instance_size(c), 8 + 2 * 16 + 8);
  rl_obj_t *o = inst(c);
  ck_assert_int_eq(rl_has(o, "__dict__"), 1);
  ck_assert_int_eq(rl_set(o, "x", rl_int(1)), 0);
  ck_assert_int_eq(rl_set(o, "free", rl_int(2)), 0);
  ck_assert_uint_eq(rl_dict_len(o), 1);
  rl_value_t v;
  ck_assert_int_eq(rl_get(o, "__dict__", &v), RL_EINVAL);
  ck_assert_int_eq(rl_set(o, "__dict__", rl_int(1)), RL_EINVAL);
  rl_free(o);
  /* "__dict__" when the base already has one: Python's TypeError */
  static const rl_slot_spec_t again[] = {{"w", 0}, {"__dict__", 0}};
  rl_class_t *d = NULL;
  ck_assert_int_eq(rl_class_new(&(rl_class_spec_t){.name = "Again", .base = c,
                                                   RL_SLOTS(again)},
                                &d),
                   RL_ELAYOUT);
  ck_assert_ptr_null(d);
  ck_assert_ptr_nonnull(strstr(rl_last_error(), "we already got one"));
  rl_class_free(c);
}
END_TEST

START_TEST(redeclared_slot_rejected) {
  rl_class_t *b = mk(&(rl_class_spec_t){.name = "BaseRecord", RL_SLOTS(base_slots)});
  static const rl_slot_spec_t bad[] = {{"sensorId", 0}, {"timestamp", 0}};
  rl_class_t *s = NULL;
  int rc = rl_class_new(
      &(rl_class_spec_t){.name = "SensorRecord", .base = b, RL_SLOTS(bad)}, &s);
  ck_assert_int_eq(rc, RL_EDUPSLOT);
  ck_assert_ptr_null(s);
  ck_assert_str_eq(rl_last_error(), "slot 'timestamp' of class 'SensorRecord' "
                                    "is already declared by base class "
                                    "'BaseRecord'");
  /* two levels up: the message names the declaring class */
  rl_class_t *mid = mk(&(rl_class_spec_t){.name = "Mid", .base = b, .declares_slots = true});
  static const rl_slot_spec_t bad2[] = {{"recordId", 0}};
  rc = rl_class_new(&(rl_class_spec_t){.name = "Leaf", .base = mid, RL_SLOTS(bad2)}, &s);
  ck_assert_int_eq(rc, RL_EDUPSLOT);
  ck_assert_ptr_nonnull(strstr(rl_last_error(), "'recordId'"));
  ck_assert_ptr_nonnull(strstr(rl_last_error(), "'Leaf'"));
  ck_assert_ptr_nonnull(strstr(rl_last_error(), "'BaseRecord'"));
  /* the same name twice in one declaration */
  static const rl_slot_spec_t twice[] = {{"a", 0}, {"b", 0}, {"a", RL_T_F64}};
  ck_assert_int_eq(rl_class_new(&(rl_class_spec_t){.name = "T", RL_SLOTS(twice)}, &s),
                   RL_EDUPSLOT);
  ck_assert_str_eq(rl_last_error(), "slot 'a' is declared twice by class 'T'");
  rl_class_free(mid);
  rl_class_free(b);
}
END_TEST

START_TEST(bad_specs) {
  rl_class_t *c = NULL;
  ck_assert_int_eq(rl_class_new(NULL, &c), RL_EINVAL);
  ck_assert_int_eq(rl_class_new(&(rl_class_spec_t){.name = ""}, &c), RL_EINVAL);
  ck_assert_int_eq(rl_class_new(&(rl_class_spec_t){.name = "A", .slots = xyz, .nslots = 3}, &c),
                   RL_EINVAL); /* slots listed but not declared */
  static const rl_slot_spec_t badtype[] = {{"a", (rl_ctype_t)99}};
  ck_assert_int_eq(rl_class_new(&(rl_class_spec_t){.name = "A", RL_SLOTS(badtype)}, &c),
                   RL_EINVAL);
  static const rl_slot_spec_t typed_dict[] = {{"__dict__", RL_T_I64}};
  ck_assert_int_eq(rl_class_new(&(rl_class_spec_t){.name = "A", RL_SLOTS(typed_dict)}, &c),
                   RL_EINVAL);
  /* dict flavour contradicting the layout */
  ck_assert_int_eq(rl_class_new(&(rl_class_spec_t){.name = "A", .dict_kind = RL_DICT_NONE}, &c),
                   RL_ELAYOUT);
  ck_assert_ptr_nonnull(strstr(rl_last_error(), "declares no __slots__"));
  ck_assert_int_eq(rl_class_new(&(rl_class_spec_t){.name = "A", RL_SLOTS(xyz),
                                                   .dict_kind = RL_DICT_SHARED},
                                &c),
                   RL_ELAYOUT);
  /* a dict key that is also a slot */
  static const char *const keys[] = {"q", "x"};
  static const rl_slot_spec_t withdict[] = {{"x", 0}, {"__dict__", 0}};
  ck_assert_int_eq(rl_class_new(&(rl_class_spec_t){.name = "A", RL_SLOTS(withdict),
                                                   .dict_keys = keys, .ndict_keys = 2},
                                &c),
                   RL_ELAYOUT);
  static const char *const dupkeys[] = {"q", "q"};
  ck_assert_int_eq(rl_class_new(&(rl_class_spec_t){.name = "A", .dict_keys = dupkeys,
                                                   .ndict_keys = 2},
                                &c),
                   RL_EINVAL);
  ck_assert_ptr_null(c);
}
END_TEST

START_TEST(error_codes) {
  static const int codes[] = {
#define C(name, value, text) RL_##name,
      RL_ERRNO_MAP(C)
#undef C
  };
  size_t n = sizeof codes / sizeof codes[0];
  ck_assert_uint_ge(n, 8);
  for (size_t i = 0; i < n; i++) {
    ck_assert_int_lt(codes[i], 0);
    ck_assert_str_ne(rl_strerror(codes[i]), "unknown reclayout error");
    for (size_t j = 0; j < i; j++) {
      ck_assert_int_ne(codes[i], codes[j]);
      ck_assert_str_ne(rl_strerror(codes[i]), rl_strerror(codes[j]));
    }
  }
  ck_assert_str_eq(rl_strerror(0), "success");
  ck_assert_str_eq(rl_strerror(-999), "unknown reclayout error");
  ck_assert_ptr_nonnull(strstr(rl_strerror(RL_EATTR), "AttributeError"));
}
END_TEST

START_TEST(index_access) {
  rl_class_t *c = mk(&(rl_class_spec_t){.name = "P", RL_SLOTS(xyz)});
  rl_obj_t *p = inst(c);
  rl_value_t v;
  ck_assert_int_eq(rl_set_index(p, 2, rl_double(3.5)), 0);
  ck_assert_int_eq(rl_get(p, "z", &v), 0);
  ck_assert_double_eq(v.u.d, 3.5);
  ck_assert_int_eq(rl_get_index(p, 3, &v), RL_ERANGE);
  ck_assert_int_eq(rl_set_index(p, 99, rl_int(1)), RL_ERANGE);
  double d;
  ck_assert_int_eq(rl_get_f64_index(p, 2, &d), RL_ETYPE); /* tagged slot */
  ck_assert_int_eq(rl_set_index(p, 0, (rl_value_t){.kind = 42}), RL_EINVAL);
  ck_assert_int_eq(rl_set_index(p, 0, (rl_value_t){.kind = RL_KIND_UNSET}), RL_EINVAL);
  ck_assert_int_eq(rl_set_index(p, 0, rl_str(NULL)), RL_EINVAL);
  ck_assert_int_eq(rl_has(p, "x"), 0);
  rl_free(p);
  rl_class_free(c);
}
END_TEST

START_TEST(strings_copied_or_borrowed) {
  rl_class_t *c = mk(&(rl_class_spec_t){.name = "P", RL_SLOTS(xyz)});
  rl_obj_t *p = inst(c);
  char buf[16] = "celsius";
  static const char lit[] = "kelvin";
  ck_assert_int_eq(rl_set(p, "x", rl_str(buf)), 0);
  ck_assert_int_eq(rl_set(p, "y", rl_str_borrowed(lit)), 0);
  buf[0] = 'X';
  rl_value_t v;
  ck_assert_int_eq(rl_get(p, "x", &v), 0);
  ck_assert_int_eq(v.kind, RL_KIND_STR);
  ck_assert_str_eq(v.u.s, "celsius");
  ck_assert_ptr_ne(v.u.s, buf);
  ck_assert_uint_eq(v.flags, 0);
  ck_assert_uint_eq(rl_deep_sizeof(p), rl_sizeof(p) + sizeof "celsius");
  ck_assert_int_eq(rl_get(p, "y", &v), 0);
  ck_assert_ptr_eq(v.u.s, lit);
  ck_assert_uint_eq(v.flags, RL_VF_BORROWED);
  /* replacing an owned string frees it (teardown proves no leak) */
  ck_assert_int_eq(rl_set(p, "x", rl_int(3)), 0);
  ck_assert_uint_eq(rl_deep_sizeof(p), rl_sizeof(p));
  /* a value read from one record can be stored in another: copied again */
  ck_assert_int_eq(rl_set(p, "z", rl_str("abc")), 0);
  ck_assert_int_eq(rl_get(p, "z", &v), 0);
  ck_assert_int_eq(rl_set(p, "x", v), 0);
  rl_value_t w;
  ck_assert_int_eq(rl_get(p, "x", &w), 0);
  ck_assert_ptr_ne(w.u.s, v.u.s);
  ck_assert_str_eq(w.u.s, "abc");
  rl_free(p);
  rl_class_free(c);
}
END_TEST

START_TEST(refs_and_pointers_not_owned) {
  rl_class_t *c = mk(&(rl_class_spec_t){.name = "Node", RL_SLOTS(xyz)});
  rl_obj_t *a = inst(c), *b = inst(c);
  int local = 0;
  ck_assert_int_eq(rl_set(a, "x", rl_ref(b)), 0);
  ck_assert_int_eq(rl_set(a, "y", rl_ptr(&local)), 0);
  ck_assert_int_eq(rl_set(a, "z", rl_none()), 0);
  rl_value_t v;
  ck_assert_int_eq(rl_get(a, "x", &v), 0);
  ck_assert_int_eq(v.kind, RL_KIND_REF);
  ck_assert_ptr_eq(v.u.ref, b);
  ck_assert_int_eq(rl_get(a, "y", &v), 0);
  ck_assert_ptr_eq(v.u.ptr, &local);
  ck_assert_int_eq(rl_get(a, "z", &v), 0);
  ck_assert_int_eq(v.kind, RL_KIND_NONE);
  ck_assert_uint_eq(rl_deep_sizeof(a), rl_sizeof(a)); /* b not counted */
  rl_free(a); /* b survives */
  ck_assert_int_eq(rl_set(b, "x", rl_int(1)), 0);
  rl_free(b);
  rl_class_free(c);
}
END_TEST

START_TEST(iteration_order) {
  static const rl_slot_spec_t sl[] = {{"a", 0}, {"__dict__", 0}, {"b", RL_T_I64}, {"c", 0}};
  rl_class_t *c = mk(&(rl_class_spec_t){.name = "It", RL_SLOTS(sl)});
  rl_obj_t *o = inst(c);
  ck_assert_int_eq(rl_set(o, "c", rl_int(3)), 0);
  ck_assert_int_eq(rl_set(o, "zeta", rl_int(10)), 0);
  ck_assert_int_eq(rl_set(o, "alpha", rl_int(11)), 0);
  ck_assert_int_eq(rl_set(o, "mid", rl_int(12)), 0);
  ck_assert_int_eq(rl_del(o, "alpha"), 0);
  ck_assert_int_eq(rl_set(o, "alpha", rl_int(13)), 0);
  const char *want[] = {"b", "c", "zeta", "mid", "alpha"}; /* a unset: skipped */
  const int64_t vals[] = {0, 3, 10, 12, 13};
  size_t pos = 0, n = 0;
  const char *name;
  rl_value_t v;
  while (rl_next(o, &pos, &name, &v)) {
    ck_assert_uint_lt(n, 5);
    ck_assert_str_eq(name, want[n]);
    ck_assert_int_eq(v.u.i, vals[n]);
    n++;
  }
  ck_assert_uint_eq(n, 5);
  rl_free(o);
  rl_class_free(c);
}
END_TEST

/* A class shared by threads: each builds, reads and frees its own
 * instances; a failure in one thread does not change another's message. */
static rl_class_t *shared_cls;
static void *worker(void *arg) {
  long id = (long)arg;
  char attr[32];
  snprintf(attr, sizeof attr, "missing%ld", id);
  for (int i = 0; i < 2000; i++) {
    rl_obj_t *o;
    if (rl_new(shared_cls, &o))
      return (void *)1;
    rl_set(o, "x", rl_int(id * 100000 + i));
    rl_set(o, "dyn", rl_str("payload"));
    rl_value_t v;
    if (rl_get(o, "x", &v) || v.u.i != id * 100000 + i)
      return (void *)2;
    if (rl_get(o, attr, &v) != RL_EATTR || !strstr(rl_last_error(), attr))
      return (void *)3;
    rl_free(o);
  }
  return NULL;
}

START_TEST(class_shared_across_threads) {
  rl__set_allocator(NULL); /* the counting hook is single-threaded */
  static const rl_slot_spec_t sl[] = {{"x", 0}, {"__dict__", 0}};
  static const char *const keys[] = {"dyn"};
  shared_cls = mk(&(rl_class_spec_t){.name = "Shared", RL_SLOTS(sl),
                                     .dict_kind = RL_DICT_SHARED,
                                     .dict_keys = keys, .ndict_keys = 1});
  pthread_t t[4];
  for (long i = 0; i < 4; i++)
    ck_assert_int_eq(pthread_create(&t[i], NULL, worker, (void *)i), 0);
  for (int i = 0; i < 4; i++) {
    void *r;
    pthread_join(t[i], &r);
    ck_assert_ptr_null(r);
  }
  rl_class_free(shared_cls);
}
END_TEST

int main(void) {
  Suite *s = suite_create("reclayout_rules");
  TCase *tc = tcase_create("rules");
  tcase_add_checked_fixture(tc, ta_setup, ta_teardown);
  tcase_add_test(tc, slotted_has_no_dict);
  tcase_add_test(tc, undeclared_attribute_is_attr_error);
  tcase_add_test(tc, unset_slot_reads_as_attr_error);
  tcase_add_test(tc, slotted_subclass_inherits_cells);
  tcase_add_test(tc, subclass_without_slots_gets_dict);
  tcase_add_test(tc, base_without_slots_gives_dict_to_all);
  tcase_add_test(tc, empty_slots_chain_has_no_dict);
  tcase_add_test(tc, dict_in_slots_gives_both);
  tcase_add_test(tc, redeclared_slot_rejected);
  tcase_add_test(tc, bad_specs);
  tcase_add_test(tc, error_codes);
  tcase_add_test(tc, index_access);
  tcase_add_test(tc, strings_copied_or_borrowed);
  tcase_add_test(tc, refs_and_pointers_not_owned);
  tcase_add_test(tc, iteration_order);
  suite_add_tcase(s, tc);
  TCase *tt = tcase_create("threads");
  tcase_add_test(tt, class_shared_across_threads);
  suite_add_tcase(s, tt);
  return ta_run(s);
}
