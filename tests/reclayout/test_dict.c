/* test_dict.c - the compact ordered dict (growth at 2/3, order, dummies,
 * index widths, interned keys) and PEP 412 shared keys with divergence. */
#include <stdio.h>

#include "rl_test_alloc.h"

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
static rl__dict_stats_t stats(const rl_obj_t *o) {
  rl__dict_stats_t st;
  ck_assert_int_eq(rl__dict_stats(o, &st), 0);
  return st;
}
/* Compact block: 16-byte header + size one-byte indices + 2/3 size entries. */
static size_t block8(size_t size) { return 16 + size + size * 2 / 3 * 24; }

static const char *const xyz_keys[] = {"x", "y", "z"};

START_TEST(lazy_dict) {
  rl_class_t *c = mk(&(rl_class_spec_t){.name = "PointWithDict"});
  size_t blocks = ta_live_blocks, bytes = ta_live_bytes;
  rl_obj_t *o = inst(c);
  ck_assert_uint_eq(rl_sizeof(o), 16); /* class pointer + dict pointer */
  ck_assert_uint_eq(rl_dict_sizeof(o), 0);
  ck_assert_uint_eq(ta_live_blocks, blocks + 1); /* no dict allocated yet */
  ck_assert_uint_eq(ta_live_bytes, bytes + 16);
  ck_assert_int_eq(rl_has(o, "__dict__"), 1);
  rl_free(o);
  rl_class_free(c);
}
END_TEST

START_TEST(growth_at_two_thirds) {
  rl_class_t *c = mk(&(rl_class_spec_t){.name = "D"});
  rl_obj_t *o = inst(c);
  char k[16];
  for (int i = 0; i < 5; i++) {
    snprintf(k, sizeof k, "k%d", i);
    ck_assert_int_eq(rl_set(o, k, rl_int(i)), 0);
    ck_assert_uint_eq(stats(o).size, 8);
  }
  rl__dict_stats_t st = stats(o);
  ck_assert_uint_eq(st.usable, 5);
  ck_assert_uint_eq(st.nentries, 5);
  /* keys copied (class knows none): 5 * "kN\0" */
  ck_assert_uint_eq(rl_dict_sizeof(o), block8(8) + 5 * 3);
  ck_assert_int_eq(rl_set(o, "k5", rl_int(5)), 0);
  st = stats(o);
  ck_assert_uint_eq(st.size, 16); /* 3 * used (15) rounded up */
  ck_assert_uint_eq(st.usable, 10);
  ck_assert_uint_eq(rl_dict_sizeof(o), block8(16) + 6 * 3);
  /* replacing an existing key never grows */
  for (int i = 0; i < 6; i++) {
    snprintf(k, sizeof k, "k%d", i);
    ck_assert_int_eq(rl_set(o, k, rl_int(-i)), 0);
  }
  ck_assert_uint_eq(stats(o).nentries, 6);
  rl_free(o);
  rl_class_free(c);
}
END_TEST

START_TEST(delete_leaves_dummy) {
  rl_class_t *c = mk(&(rl_class_spec_t){.name = "D", .dict_keys = xyz_keys, .ndict_keys = 3});
  rl_obj_t *o = inst(c);
  ck_assert_int_eq(rl_set(o, "x", rl_int(1)), 0);
  ck_assert_int_eq(rl_set(o, "y", rl_int(2)), 0);
  ck_assert_int_eq(rl_set(o, "z", rl_int(3)), 0);
  size_t before = rl_dict_sizeof(o);
  ck_assert_int_eq(rl_del(o, "y"), 0);
  rl__dict_stats_t st = stats(o);
  ck_assert_uint_eq(st.used, 2);
  ck_assert_uint_eq(st.nentries, 3); /* the entry stays as a hole */
  ck_assert_uint_eq(st.dummies, 1);
  ck_assert_uint_eq(rl_dict_sizeof(o), before); /* never shrinks */
  rl_value_t v;
  ck_assert_int_eq(rl_get(o, "y", &v), RL_EATTR);
  ck_assert_int_eq(rl_del(o, "y"), RL_EATTR);
  ck_assert_int_eq(rl_get(o, "z", &v), 0); /* found past the dummy */
  ck_assert_int_eq(v.u.i, 3);
  /* re-adding goes to the end of the order */
  ck_assert_int_eq(rl_set(o, "y", rl_int(4)), 0);
  const char *order[3];
  size_t pos = 0, n = 0;
  const char *name;
  while (rl_next(o, &pos, &name, &v))
    order[n++] = name;
  ck_assert_uint_eq(n, 3);
  ck_assert_str_eq(order[0], "x");
  ck_assert_str_eq(order[1], "z");
  ck_assert_str_eq(order[2], "y");
  /* fill to usable: the resize drops holes and dummies */
  ck_assert_int_eq(rl_set(o, "a", rl_int(5)), 0);
  ck_assert_uint_eq(stats(o).nentries, 5);
  ck_assert_int_eq(rl_set(o, "b", rl_int(6)), 0);
  st = stats(o);
  ck_assert_uint_eq(st.dummies, 0);
  ck_assert_uint_eq(st.nentries, 5);
  ck_assert_uint_eq(st.used, 5);
  ck_assert_uint_eq(st.size, 16); /* grown from 4 live keys: 3 * 4 -> 16 */
  rl_free(o);
  rl_class_free(c);
}
END_TEST

START_TEST(interned_keys_not_copied) {
  rl_class_t *c = mk(&(rl_class_spec_t){.name = "PointWithDict",
                                        .dict_keys = xyz_keys, .ndict_keys = 3});
  rl_obj_t *a = inst(c), *b = inst(c);
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(rl_set(a, xyz_keys[i], rl_double(i)), 0);
    ck_assert_int_eq(rl_set(b, xyz_keys[2 - i], rl_double(i)), 0);
  }
  ck_assert_uint_eq(rl_dict_sizeof(a), block8(8)); /* 144: no key copies */
  ck_assert_uint_eq(rl_dict_sizeof(b), block8(8));
  /* both dicts point at the class's one copy of each name */
  size_t pa = 0, pb = 0;
  const char *na, *nb;
  rl_value_t v;
  ck_assert(rl_next(a, &pa, &na, &v));
  ck_assert_str_eq(na, "x");
  ck_assert_ptr_ne(na, xyz_keys[0]);
  for (int i = 0; i < 3; i++)
    ck_assert(rl_next(b, &pb, &nb, &v));
  ck_assert_ptr_eq(na, nb); /* b's last key is x */
  /* a name the class does not know is copied into the dict */
  ck_assert_int_eq(rl_set(a, "w", rl_int(0)), 0);
  ck_assert_uint_eq(rl_dict_sizeof(a), block8(8) + 2);
  rl_free(a);
  rl_free(b);
  rl_class_free(c);
}
END_TEST

/* Many keys: probing, index widths 1 -> 2 -> 4, random deletes against a
 * plain array as reference. */
START_TEST(many_keys) {
  rl__set_allocator(NULL); /* more blocks than the counting table wants */
  rl_class_t *c = mk(&(rl_class_spec_t){.name = "Big"});
  rl_obj_t *o = inst(c);
  enum { N = 30000 };
  static char present[N];
  char k[16];
  size_t widths_seen = 0, last_w = 0;
  for (int i = 0; i < N; i++) {
    snprintf(k, sizeof k, "key%d", i);
    ck_assert_int_eq(rl_set(o, k, rl_int(i)), 0);
    present[i] = 1;
    if (i % 7 == 3) {
      snprintf(k, sizeof k, "key%d", i / 2);
      if (present[i / 2]) {
        ck_assert_int_eq(rl_del(o, k), 0);
        present[i / 2] = 0;
      }
    }
    if (i % 1000 == 0 || i == N - 1) {
      rl__dict_stats_t st = stats(o);
      if (st.index_width != last_w) {
        widths_seen++;
        last_w = st.index_width;
      }
    }
  }
  ck_assert_uint_eq(widths_seen, 3);
  ck_assert_uint_eq(last_w, 4);
  size_t live = 0;
  for (int i = 0; i < N; i++) {
    snprintf(k, sizeof k, "key%d", i);
    rl_value_t v;
    int rc = rl_get(o, k, &v);
    if (present[i]) {
      live++;
      ck_assert_int_eq(rc, 0);
      ck_assert_int_eq(v.u.i, i);
    } else {
      ck_assert_int_eq(rc, RL_EATTR);
    }
  }
  ck_assert_uint_eq(rl_dict_len(o), live);
  /* insertion order survives every resize */
  size_t pos = 0, n = 0;
  const char *name;
  rl_value_t v;
  long prev = -1;
  while (rl_next(o, &pos, &name, &v)) {
    ck_assert_int_gt(v.u.i, prev);
    prev = (long)v.u.i;
    n++;
  }
  ck_assert_uint_eq(n, live);
  rl_free(o);
  rl_class_free(c);
}
END_TEST

static rl_class_t *shared_point(void) {
  return mk(&(rl_class_spec_t){.name = "SharedPoint", .dict_kind = RL_DICT_SHARED,
                               .dict_keys = xyz_keys, .ndict_keys = 3});
}

START_TEST(shared_keys_stay_shared) {
  rl_class_t *c = shared_point();
  ck_assert_int_eq(rl_class_dict_kind(c), RL_DICT_SHARED);
  rl_obj_t *a = inst(c), *b = inst(c);
  ck_assert_int_eq(rl_dict_kind_of(a), RL_DICT_SHARED);
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(rl_set(a, xyz_keys[i], rl_double(i)), 0);
    ck_assert_int_eq(rl_set(b, xyz_keys[i], rl_double(10 + i)), 0);
  }
  ck_assert_int_eq(rl_set(a, "x", rl_double(-1)), 0); /* overwrite */
  ck_assert_int_eq(rl_dict_kind_of(a), RL_DICT_SHARED);
  ck_assert_int_eq(rl_dict_kind_of(b), RL_DICT_SHARED);
  ck_assert_uint_eq(rl_dict_sizeof(a), 8 + 3 * 16); /* values only */
  ck_assert_uint_eq(rl_sizeof(a) + rl_dict_sizeof(a), 72);
  rl_value_t v;
  ck_assert_int_eq(rl_get(a, "x", &v), 0);
  ck_assert_double_eq(v.u.d, -1);
  ck_assert_int_eq(rl_get(b, "z", &v), 0);
  ck_assert_double_eq(v.u.d, 12);
  /* the key names come from the class, held once */
  size_t pa = 0, pb = 0;
  const char *na, *nb;
  ck_assert(rl_next(a, &pa, &na, &v));
  ck_assert(rl_next(b, &pb, &nb, &v));
  ck_assert_ptr_eq(na, nb);
  /* a prefix of the table is fine too */
  rl_obj_t *d = inst(c);
  ck_assert_int_eq(rl_set(d, "x", rl_int(1)), 0);
  ck_assert_int_eq(rl_set(d, "y", rl_int(1)), 0);
  ck_assert_int_eq(rl_dict_kind_of(d), RL_DICT_SHARED);
  ck_assert_uint_eq(rl_dict_len(d), 2);
  ck_assert_int_eq(rl_get(d, "z", &v), RL_EATTR);
  ck_assert_int_eq(rl_del(d, "z"), RL_EATTR); /* missing: no divergence */
  ck_assert_int_eq(rl_dict_kind_of(d), RL_DICT_SHARED);
  rl_free(a);
  rl_free(b);
  rl_free(d);
  rl_class_free(c);
}
END_TEST

/* Every way to diverge keeps the values and their order. */
static void check_items(rl_obj_t *o, const char *const *names,
                        const double *vals, size_t n) {
  size_t pos = 0, i = 0;
  const char *name;
  rl_value_t v;
  while (rl_next(o, &pos, &name, &v)) {
    ck_assert_uint_lt(i, n);
    ck_assert_str_eq(name, names[i]);
    ck_assert_double_eq(v.u.d, vals[i]);
    i++;
  }
  ck_assert_uint_eq(i, n);
}

START_TEST(shared_diverges_on_order) {
  rl_class_t *c = shared_point();
  rl_obj_t *o = inst(c);
  ck_assert_int_eq(rl_set(o, "x", rl_double(1)), 0);
  ck_assert_int_eq(rl_set(o, "z", rl_double(3)), 0); /* skips y */
  ck_assert_int_eq(rl_dict_kind_of(o), RL_DICT_INSTANCE);
  ck_assert_int_eq(rl_set(o, "y", rl_double(2)), 0);
  check_items(o, (const char *[]){"x", "z", "y"}, (double[]){1, 3, 2}, 3);
  ck_assert_uint_eq(rl_dict_sizeof(o), block8(8)); /* keys still interned */
  rl_free(o);
  /* out of order from the very first key */
  o = inst(c);
  ck_assert_int_eq(rl_set(o, "y", rl_double(2)), 0);
  ck_assert_int_eq(rl_dict_kind_of(o), RL_DICT_INSTANCE);
  rl_free(o);
  rl_class_free(c);
}
END_TEST

START_TEST(shared_diverges_on_new_key) {
  rl_class_t *c = shared_point();
  rl_obj_t *o = inst(c);
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(rl_set(o, xyz_keys[i], rl_double(i)), 0);
  ck_assert_int_eq(rl_set(o, "extra", rl_double(9)), 0);
  ck_assert_int_eq(rl_dict_kind_of(o), RL_DICT_INSTANCE);
  check_items(o, (const char *[]){"x", "y", "z", "extra"}, (double[]){0, 1, 2, 9}, 4);
  ck_assert_uint_eq(rl_dict_sizeof(o), block8(8) + sizeof "extra");
  rl_free(o);
  rl_class_free(c);
}
END_TEST

START_TEST(shared_diverges_on_delete) {
  rl_class_t *c = shared_point();
  rl_obj_t *o = inst(c);
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(rl_set(o, xyz_keys[i], rl_double(i)), 0);
  ck_assert_int_eq(rl_del(o, "y"), 0);
  ck_assert_int_eq(rl_dict_kind_of(o), RL_DICT_INSTANCE);
  check_items(o, (const char *[]){"x", "z"}, (double[]){0, 2}, 2);
  ck_assert_uint_eq(stats(o).dummies, 1);
  rl_free(o);
  rl_class_free(c);
}
END_TEST

START_TEST(shared_without_keys_and_inherited_keys) {
  rl_class_t *c = mk(&(rl_class_spec_t){.name = "NoKeys", .dict_kind = RL_DICT_SHARED});
  rl_obj_t *o = inst(c);
  ck_assert_int_eq(rl_set(o, "a", rl_int(1)), 0);
  ck_assert_int_eq(rl_dict_kind_of(o), RL_DICT_INSTANCE);
  rl_free(o);
  rl_class_free(c);
  /* a subclass without dict_keys inherits the base's shared table */
  rl_class_t *b = shared_point();
  rl_class_t *s = mk(&(rl_class_spec_t){.name = "Sub", .base = b});
  ck_assert_int_eq(rl_class_dict_kind(s), RL_DICT_SHARED);
  o = inst(s);
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(rl_set(o, xyz_keys[i], rl_double(i)), 0);
  ck_assert_int_eq(rl_dict_kind_of(o), RL_DICT_SHARED);
  rl_free(o);
  rl_class_free(s);
  rl_class_free(b);
}
END_TEST

START_TEST(dict_string_values) {
  rl_class_t *c = shared_point();
  rl_obj_t *o = inst(c);
  ck_assert_int_eq(rl_set(o, "x", rl_str("owned")), 0);
  ck_assert_int_eq(rl_set(o, "y", rl_str_borrowed("borrowed")), 0);
  ck_assert_uint_eq(rl_deep_sizeof(o), rl_sizeof(o) + rl_dict_sizeof(o) + 6);
  ck_assert_int_eq(rl_set(o, "x", rl_str("replaced!")), 0);
  ck_assert_uint_eq(rl_deep_sizeof(o), rl_sizeof(o) + rl_dict_sizeof(o) + 10);
  ck_assert_int_eq(rl_set(o, "q", rl_str("moves")), 0); /* diverge */
  ck_assert_uint_eq(rl_deep_sizeof(o),
                    rl_sizeof(o) + rl_dict_sizeof(o) + 10 + 6);
  rl_value_t v;
  ck_assert_int_eq(rl_get(o, "x", &v), 0);
  ck_assert_str_eq(v.u.s, "replaced!");
  ck_assert_int_eq(rl_del(o, "x"), 0);
  ck_assert_uint_eq(rl_deep_sizeof(o), rl_sizeof(o) + rl_dict_sizeof(o) + 6);
  rl_free(o);
  rl_class_free(c);
}
END_TEST

int main(void) {
  Suite *s = suite_create("reclayout_dict");
  TCase *tc = tcase_create("dict");
  tcase_add_checked_fixture(tc, ta_setup, ta_teardown);
  tcase_add_test(tc, lazy_dict);
  tcase_add_test(tc, growth_at_two_thirds);
  tcase_add_test(tc, delete_leaves_dummy);
  tcase_add_test(tc, interned_keys_not_copied);
  tcase_add_test(tc, shared_keys_stay_shared);
  tcase_add_test(tc, shared_diverges_on_order);
  tcase_add_test(tc, shared_diverges_on_new_key);
  tcase_add_test(tc, shared_diverges_on_delete);
  tcase_add_test(tc, shared_without_keys_and_inherited_keys);
  tcase_add_test(tc, dict_string_values);
  suite_add_tcase(s, tc);
  TCase *big = tcase_create("big");
  tcase_add_test(big, many_keys);
  suite_add_tcase(s, big);
  return ta_run(s);
}
