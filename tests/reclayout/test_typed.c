/* test_typed.c - typed slots: C-struct layout (offsets, padding,
 * inheritance), conversions and their errors, zero-initialised cells,
 * headerless instances, the typed fast accessors, and rl_class_describe. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "rl_test_alloc.h"

static rl_class_t *mk(const rl_class_spec_t *s) {
  rl_class_t *c = NULL;
  int rc = rl_class_new(s, &c);
  ck_assert_msg(rc == 0, "rl_class_new(%s): %s", s->name, rl_last_error());
  return c;
}

static const rl_slot_spec_t xyz_f64[] = {
    {"x", RL_T_F64}, {"y", RL_T_F64}, {"z", RL_T_F64}};

struct mixed {
  uint8_t a;
  double b;
  int32_t c;
  bool d;
  float e;
  void *f;
  int64_t g;
};
static const rl_slot_spec_t mixed_slots[] = {
    {"a", RL_T_U8},  {"b", RL_T_F64}, {"c", RL_T_I32}, {"d", RL_T_BOOL},
    {"e", RL_T_F32}, {"f", RL_T_PTR}, {"g", RL_T_I64}};

START_TEST(three_f64_is_a_struct) {
  struct xyz {
    double x, y, z;
  };
  rl_class_t *c = mk(&(rl_class_spec_t){.name = "P", RL_SLOTS(xyz_f64)});
  ck_assert_uint_eq(rl_class_cells_size(c), sizeof(struct xyz));
  ck_assert_uint_eq(rl_class_slot_offset(c, 0), offsetof(struct xyz, x));
  ck_assert_uint_eq(rl_class_slot_offset(c, 1), offsetof(struct xyz, y));
  ck_assert_uint_eq(rl_class_slot_offset(c, 2), offsetof(struct xyz, z));
  ck_assert_uint_eq(rl_class_slot_size(c, 2), 8);
  ck_assert_int_eq(rl_class_slot_type(c, 1), RL_T_F64);
  ck_assert_int_eq(rl_class_is_plain(c), 1);
  ck_assert_uint_eq(rl_class_slot_offset(c, 3), (size_t)-1);
  ck_assert_ptr_null(rl_class_slot_name(c, 3));
  ck_assert_int_eq(rl_class_slot_type(c, 3), -1);
  rl_class_free(c);
}
END_TEST

START_TEST(mixed_layout_matches_c) {
  rl_class_t *c = mk(&(rl_class_spec_t){.name = "M", RL_SLOTS(mixed_slots)});
  size_t off[] = {offsetof(struct mixed, a), offsetof(struct mixed, b),
                  offsetof(struct mixed, c), offsetof(struct mixed, d),
                  offsetof(struct mixed, e), offsetof(struct mixed, f),
                  offsetof(struct mixed, g)};
  for (size_t i = 0; i < 7; i++)
    ck_assert_uint_eq(rl_class_slot_offset(c, i), off[i]);
  ck_assert_uint_eq(rl_class_cells_size(c), sizeof(struct mixed));
  /* a subclass appends after the base's last member */
  static const rl_slot_spec_t more[] = {{"h", RL_T_U8}, {"t", 0}};
  rl_class_t *s = mk(&(rl_class_spec_t){.name = "MSub", .base = c, RL_SLOTS(more)});
  ck_assert_uint_eq(rl_class_slot_offset(s, 6), off[6]);
  ck_assert_uint_eq(rl_class_slot_offset(s, 7), sizeof(struct mixed));
  ck_assert_uint_eq(rl_class_slot_offset(s, 8), sizeof(struct mixed) + 8);
  ck_assert_uint_eq(rl_class_cells_size(s), sizeof(struct mixed) + 8 + 16);
  ck_assert_int_eq(rl_class_is_plain(s), 0); /* a tagged slot */
  rl_class_free(s);
  rl_class_free(c);
}
END_TEST

START_TEST(typed_values_and_errors) {
  rl_class_t *c = mk(&(rl_class_spec_t){.name = "M", RL_SLOTS(mixed_slots)});
  rl_obj_t *o;
  ck_assert_int_eq(rl_new(c, &o), 0);
  rl_value_t v;
  /* zero-initialised and readable, like a C struct */
  ck_assert_int_eq(rl_get(o, "b", &v), 0);
  ck_assert_int_eq(v.kind, RL_KIND_DOUBLE);
  ck_assert_double_eq(v.u.d, 0);
  ck_assert_int_eq(rl_get(o, "d", &v), 0);
  ck_assert_int_eq(v.kind, RL_KIND_BOOL);
  ck_assert_int_eq(v.u.b, 0);
  ck_assert_int_eq(rl_has(o, "g"), 1);

  ck_assert_int_eq(rl_set(o, "a", rl_int(255)), 0);
  ck_assert_int_eq(rl_set(o, "a", rl_int(256)), RL_EOVERFLOW);
  ck_assert_int_eq(rl_set(o, "a", rl_int(-1)), RL_EOVERFLOW);
  ck_assert_int_eq(rl_get(o, "a", &v), 0);
  ck_assert_int_eq(v.u.i, 255); /* unchanged by the failures */
  ck_assert_int_eq(rl_set(o, "b", rl_int(3)), 0); /* int -> double */
  ck_assert_int_eq(rl_get(o, "b", &v), 0);
  ck_assert_double_eq(v.u.d, 3.0);
  ck_assert_int_eq(rl_set(o, "b", rl_str("3")), RL_ETYPE);
  ck_assert_ptr_nonnull(strstr(rl_last_error(), "'b'"));
  ck_assert_int_eq(rl_set(o, "c", rl_int(INT32_MIN)), 0);
  ck_assert_int_eq(rl_set(o, "c", rl_int((int64_t)INT32_MAX + 1)), RL_EOVERFLOW);
  ck_assert_int_eq(rl_get(o, "c", &v), 0);
  ck_assert_int_eq(v.u.i, INT32_MIN);
  ck_assert_int_eq(rl_set(o, "d", rl_int(1)), RL_ETYPE);
  ck_assert_int_eq(rl_set(o, "d", rl_bool(true)), 0);
  ck_assert_int_eq(rl_set(o, "e", rl_double(0.5)), 0);
  ck_assert_int_eq(rl_set(o, "e", rl_double(1e300)), RL_EOVERFLOW);
  ck_assert_int_eq(rl_get(o, "e", &v), 0);
  ck_assert_double_eq(v.u.d, 0.5);
  ck_assert_int_eq(rl_set(o, "f", rl_ptr(o)), 0);
  ck_assert_int_eq(rl_set(o, "f", rl_int(0)), RL_ETYPE);
  ck_assert_int_eq(rl_get(o, "f", &v), 0);
  ck_assert_ptr_eq(v.u.ptr, o);
  ck_assert_int_eq(rl_set(o, "g", rl_double(1.0)), RL_ETYPE);
  ck_assert_int_eq(rl_set(o, "g", rl_int(INT64_MIN)), 0);
  /* typed slots cannot be deleted */
  ck_assert_int_eq(rl_del(o, "g"), RL_ETYPE);
  ck_assert_int_eq(rl_get(o, "g", &v), 0);
  ck_assert_int_eq(v.u.i, INT64_MIN);

  /* the typed index accessors check the slot's type */
  int ib = rl_class_slot_index(c, "b"), ig = rl_class_slot_index(c, "g");
  double d;
  int64_t i;
  ck_assert_int_eq(rl_set_f64_index(o, (size_t)ib, 2.25), 0);
  ck_assert_int_eq(rl_get_f64_index(o, (size_t)ib, &d), 0);
  ck_assert_double_eq(d, 2.25);
  ck_assert_int_eq(rl_get_f64_index(o, (size_t)ig, &d), RL_ETYPE);
  ck_assert_int_eq(rl_set_i64_index(o, (size_t)ig, 42), 0);
  ck_assert_int_eq(rl_get_i64_index(o, (size_t)ig, &i), 0);
  ck_assert_int_eq(i, 42);
  ck_assert_int_eq(rl_get_i64_index(o, (size_t)ib, &i), RL_ETYPE);
  ck_assert_int_eq(rl_get_i64_index(o, 7, &i), RL_ERANGE);
  /* and the offset-based inline accessors see the same bytes */
  ck_assert_ptr_eq(rl_cells(o), (char *)o + RL_OBJ_HEADER);
  ck_assert_double_eq(rl_f64_at(rl_cells(o), rl_class_slot_offset(c, (size_t)ib)), 2.25);
  rl_i64_put(rl_cells(o), rl_class_slot_offset(c, (size_t)ig), 43);
  ck_assert_int_eq(rl_get(o, "g", &v), 0);
  ck_assert_int_eq(v.u.i, 43);
  rl_free(o);
  rl_class_free(c);
}
END_TEST

START_TEST(headerless_instances) {
  rl_class_t *c = mk(&(rl_class_spec_t){.name = "P", RL_SLOTS(xyz_f64)});
  void *p;
  ck_assert_int_eq(rl_new_typed(c, &p), 0);
  size_t ox = rl_class_slot_offset(c, 0), oz = rl_class_slot_offset(c, 2);
  ck_assert_double_eq(rl_f64_at(p, ox), 0.0);
  ck_assert_int_eq(rl_typed_set(c, p, "z", rl_double(9.5)), 0);
  ck_assert_double_eq(rl_f64_at(p, oz), 9.5);
  rl_f64_put(p, ox, 1.25);
  rl_value_t v;
  ck_assert_int_eq(rl_typed_get(c, p, "x", &v), 0);
  ck_assert_double_eq(v.u.d, 1.25);
  /* it is a struct { double x, y, z; } */
  const struct { double x, y, z; } *s = p;
  ck_assert_double_eq(s->x, 1.25);
  ck_assert_double_eq(s->z, 9.5);
  ck_assert_int_eq(rl_typed_set(c, p, "w", rl_double(1)), RL_EATTR);
  ck_assert_str_eq(rl_last_error(), "'P' object has no attribute 'w'");
  ck_assert_int_eq(rl_typed_get(c, p, "w", &v), RL_EATTR);
  ck_assert_int_eq(rl_typed_set(c, p, "x", rl_str("no")), RL_ETYPE);
  rl_free_typed(c, p);

  /* only plain classes: all typed, no dict, at least one slot */
  static const rl_slot_spec_t tagged[] = {{"x", 0}};
  static const rl_slot_spec_t hybrid[] = {{"x", RL_T_F64}, {"__dict__", 0}};
  rl_class_t *t = mk(&(rl_class_spec_t){.name = "T", RL_SLOTS(tagged)});
  rl_class_t *h = mk(&(rl_class_spec_t){.name = "H", RL_SLOTS(hybrid)});
  rl_class_t *e = mk(&(rl_class_spec_t){.name = "E", .declares_slots = true});
  p = NULL;
  ck_assert_int_eq(rl_new_typed(t, &p), RL_EINVAL);
  ck_assert_int_eq(rl_new_typed(h, &p), RL_EINVAL);
  ck_assert_int_eq(rl_new_typed(e, &p), RL_EINVAL);
  ck_assert_ptr_null(p);
  rl_class_free(e);
  rl_class_free(h);
  rl_class_free(t);
  rl_class_free(c);
}
END_TEST

static char *describe(const rl_class_t *c) {
  char *buf = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&buf, &n);
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(rl_class_describe(c, f), 0);
  fclose(f);
  return buf;
}

START_TEST(describe_like_pahole) {
  rl__set_allocator(NULL); /* open_memstream's buffer is libc's */
  rl_class_t *c = mk(&(rl_class_spec_t){.name = "M", RL_SLOTS(mixed_slots)});
  char *s = describe(c);
  ck_assert_ptr_nonnull(strstr(s, "class M {"));
  ck_assert_ptr_nonnull(strstr(s, "uint8_t     a;"));
  ck_assert_ptr_nonnull(strstr(s, "/*     0     1 */"));
  ck_assert_ptr_nonnull(strstr(s, "double      b;"));
  ck_assert_ptr_nonnull(strstr(s, "/*     8     8 */"));
  ck_assert_ptr_nonnull(strstr(s, "XXX 7 bytes hole"));   /* after a */
  ck_assert_ptr_nonnull(strstr(s, "XXX 3 bytes hole"));   /* after d */
  ck_assert_ptr_nonnull(strstr(s, "XXX 4 bytes hole"));   /* after e */
  ck_assert_ptr_nonnull(strstr(s, "size: 48, slots: 7"));
  ck_assert_ptr_nonnull(strstr(s, "holes: 3, sum holes: 14"));
  ck_assert_ptr_nonnull(strstr(s, "rl_new_typed: 48 bytes"));
  ck_assert_ptr_nonnull(strstr(s, "__dict__: none"));
  free(s);

  static const rl_slot_spec_t base_slots[] = {{"recordId", 0}, {"timestamp", 0}};
  static const rl_slot_spec_t sub_slots[] = {{"sensorId", 0}, {"__dict__", 0}};
  rl_class_t *b = mk(&(rl_class_spec_t){.name = "BaseRecord", RL_SLOTS(base_slots)});
  rl_class_t *d = mk(&(rl_class_spec_t){.name = "Sub", .base = b, RL_SLOTS(sub_slots)});
  s = describe(d);
  ck_assert_ptr_nonnull(strstr(s, "class Sub(BaseRecord)"));
  ck_assert_ptr_nonnull(strstr(s, "slots + __dict__"));
  ck_assert_ptr_nonnull(strstr(s, "/* from BaseRecord */"));
  ck_assert_ptr_nonnull(strstr(s, "rl_value_t  sensorId;"));
  ck_assert_ptr_nonnull(strstr(s, "/*    32    16 */"));
  ck_assert_ptr_nonnull(strstr(s, "rl_new shell: 64 bytes"));
  ck_assert_ptr_nonnull(strstr(s, "per-instance compact dict"));
  ck_assert_ptr_null(strstr(s, "XXX"));
  ck_assert_ptr_nonnull(strstr(s, "holes: 0, sum holes: 0"));
  free(s);
  ck_assert_int_eq(rl_class_describe(d, NULL), RL_EINVAL);
  rl_class_free(d);
  rl_class_free(b);
  rl_class_free(c);
}
END_TEST

int main(void) {
  Suite *s = suite_create("reclayout_typed");
  TCase *tc = tcase_create("typed");
  tcase_add_checked_fixture(tc, ta_setup, ta_teardown);
  tcase_add_test(tc, three_f64_is_a_struct);
  tcase_add_test(tc, mixed_layout_matches_c);
  tcase_add_test(tc, typed_values_and_errors);
  tcase_add_test(tc, headerless_instances);
  tcase_add_test(tc, describe_like_pahole);
  suite_add_tcase(s, tc);
  return ta_run(s);
}
