/* test_traced_sizes.c - proves reclayout's rl_sizeof / rl_dict_sizeof /
 * rl_deep_sizeof equal what heapsnap's interposer traced, byte for byte and
 * block for block, for every layout (the real malloc, not a test allocator). */
#include <check.h>
#include <heapsnap.h>
#include <reclayout.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The totals of a statistics list, by value for use in assertions. */
static hs_statistics_info_t stats_info(const hs_statistics_t *st) {
  hs_statistics_info_t in;
  hs_statistics_get_info(st, &in, sizeof in);
  return in;
}

enum { N = 10000 };

typedef struct traced {
  size_t bytes;
  uint64_t blocks;
} traced_t;

static traced_t now(void) {
  hs_stats_t s;
  hs_get_stats(&s, sizeof s);
  ck_assert_uint_eq(s.dropped_traces, 0); /* a dropped trace voids the sums */
  return (traced_t){(size_t)s.traced_current, s.live_traces};
}

static rl_class_t *mk(const rl_class_spec_t *s) {
  rl_class_t *c = NULL;
  int rc = rl_class_new(s, &c);
  ck_assert_msg(rc == 0, "rl_class_new(%s): %s", s->name, rl_last_error());
  return c;
}

static void set_ok(rl_obj_t *o, const char *name, rl_value_t v) {
  int rc = rl_set(o, name, v);
  ck_assert_msg(rc == 0, "set %s: %s", name, rl_last_error());
}

static const char *const xyz_keys[] = {"x", "y", "z"};
static const rl_slot_spec_t xyz_tagged[] = {{"x", 0}, {"y", 0}, {"z", 0}};
static const rl_slot_spec_t xyz_f64[] = {
    {"x", RL_T_F64}, {"y", RL_T_F64}, {"z", RL_T_F64}};

/* What one layout must cost, per object. */
typedef struct expect {
  size_t shell;        /* rl_sizeof, one block */
  size_t dict;         /* rl_dict_sizeof after the writes */
  size_t deep;         /* rl_deep_sizeof after the writes */
  uint64_t blocks;     /* blocks per object after the writes */
} expect_t;

typedef void (*fill_fn)(rl_obj_t *o, int i);

/* Creates N objects between readings, then fills them between readings:
 * the first delta is exactly N shells (rl_sizeof), the second exactly what
 * the writes added (dict + owned strings), the sum rl_deep_sizeof. */
static void check_population(const rl_class_t *c, fill_fn fill,
                             expect_t want) {
  /* before tracing: the array is bookkeeping, not part of the population */
  rl_obj_t **objs = malloc(N * sizeof *objs);
  ck_assert_ptr_nonnull(objs);
  ck_assert_int_eq(hs_start(HS_DEFAULT_FRAMES), 0);

  traced_t t0 = now();
  for (int i = 0; i < N; i++)
    ck_assert_int_eq(rl_new(c, &objs[i]), 0);
  traced_t t1 = now();
  for (int i = 0; i < N; i++)
    fill(objs[i], i);
  traced_t t2 = now();

  size_t shells = 0, dicts = 0, deep = 0;
  for (int i = 0; i < N; i++) {
    shells += rl_sizeof(objs[i]);
    dicts += rl_dict_sizeof(objs[i]);
    deep += rl_deep_sizeof(objs[i]);
  }
  ck_assert_uint_eq(t1.bytes - t0.bytes, shells);
  ck_assert_uint_eq(t1.blocks - t0.blocks, N);
  ck_assert_uint_eq(t2.bytes - t0.bytes, deep);
  ck_assert_uint_eq(t2.blocks - t0.blocks, (uint64_t)N * want.blocks);
  ck_assert_uint_eq(shells, (size_t)N * want.shell);
  ck_assert_uint_eq(dicts, (size_t)N * want.dict);
  ck_assert_uint_eq(deep, (size_t)N * want.deep);
  ck_assert_uint_eq(rl_class_instance_size(c), want.shell);

  for (int i = 0; i < N; i++)
    rl_free(objs[i]);
  traced_t t3 = now();
  ck_assert_uint_eq(t3.bytes, t0.bytes);
  ck_assert_uint_eq(t3.blocks, t0.blocks);
  hs_stop();
  free(objs);
}

static void fill_xyz(rl_obj_t *o, int i) {
  set_ok(o, "x", rl_double(i));
  set_ok(o, "y", rl_double(i + 1));
  set_ok(o, "z", rl_double(i + 2));
}

/* Keys the class did not intern are copied into each dict (strlen + 1). */
START_TEST(per_instance_dict) {
  rl_class_t *c = mk(&(rl_class_spec_t){.name = "PointWithDict"});
  check_population(c, fill_xyz,
                   (expect_t){.shell = 16, .dict = 144 + 3 * 2,
                              .deep = 16 + 144 + 3 * 2, .blocks = 2 + 3});
  rl_class_free(c);
}
END_TEST

START_TEST(per_instance_dict_interned) {
  rl_class_t *c = mk(&(rl_class_spec_t){.name = "PointWithDict",
                                        .dict_kind = RL_DICT_INSTANCE,
                                        .dict_keys = xyz_keys, .ndict_keys = 3});
  check_population(c, fill_xyz,
                   (expect_t){.shell = 16, .dict = 144, .deep = 160, .blocks = 2});
  rl_class_free(c);
}
END_TEST

START_TEST(shared_key_dict) {
  rl_class_t *c = mk(&(rl_class_spec_t){.name = "SharedPoint",
                                        .dict_kind = RL_DICT_SHARED,
                                        .dict_keys = xyz_keys, .ndict_keys = 3});
  check_population(c, fill_xyz,
                   (expect_t){.shell = 16, .dict = 56, .deep = 72, .blocks = 2});
  rl_class_free(c);
}
END_TEST

/* A key outside the shared table: every instance diverges to its own dict,
 * and the values array it leaves behind must be freed, not leaked. */
static void fill_diverge(rl_obj_t *o, int i) {
  fill_xyz(o, i);
  set_ok(o, "w", rl_double(i));
}
START_TEST(shared_key_dict_diverged) {
  rl_class_t *c = mk(&(rl_class_spec_t){.name = "SharedPoint",
                                        .dict_kind = RL_DICT_SHARED,
                                        .dict_keys = xyz_keys, .ndict_keys = 3});
  check_population(c, fill_diverge,
                   (expect_t){.shell = 16, .dict = 144 + 2,
                              .deep = 16 + 144 + 2, .blocks = 2 + 1});
  rl_class_free(c);
}
END_TEST

START_TEST(tagged_slots) {
  rl_class_t *c = mk(&(rl_class_spec_t){.name = "PointWithSlots",
                                        RL_SLOTS(xyz_tagged)});
  check_population(c, fill_xyz,
                   (expect_t){.shell = 56, .dict = 0, .deep = 56, .blocks = 1});
  rl_class_free(c);
}
END_TEST

/* A copied string is one more block of strlen + 1 bytes, in the deep size. */
static void fill_label(rl_obj_t *o, int i) {
  set_ok(o, "x", rl_double(i));
  set_ok(o, "y", rl_str("label"));
  set_ok(o, "z", rl_str_borrowed("borrowed: not the record's"));
}
START_TEST(tagged_slots_owned_string) {
  rl_class_t *c = mk(&(rl_class_spec_t){.name = "PointWithSlots",
                                        RL_SLOTS(xyz_tagged)});
  check_population(c, fill_label,
                   (expect_t){.shell = 56, .dict = 0, .deep = 56 + 6, .blocks = 2});
  rl_class_free(c);
}
END_TEST

START_TEST(typed_slots_rl_new) {
  rl_class_t *c = mk(&(rl_class_spec_t){.name = "PointF64", RL_SLOTS(xyz_f64)});
  check_population(c, fill_xyz,
                   (expect_t){.shell = 8 + 24, .dict = 0, .deep = 32, .blocks = 1});
  rl_class_free(c);
}
END_TEST

/* Headerless: no rl_obj_t, so the expected size is the cell area, which
 * must also be the C struct's. */
START_TEST(typed_slots_rl_new_typed) {
  rl_class_t *c = mk(&(rl_class_spec_t){.name = "PointF64", RL_SLOTS(xyz_f64)});
  size_t cells = rl_class_cells_size(c);
  ck_assert_uint_eq(cells, sizeof(struct { double x, y, z; }));
  void **objs = malloc(N * sizeof *objs);
  ck_assert_ptr_nonnull(objs);
  ck_assert_int_eq(hs_start(HS_DEFAULT_FRAMES), 0);
  traced_t t0 = now();
  for (int i = 0; i < N; i++) {
    ck_assert_int_eq(rl_new_typed(c, &objs[i]), 0);
    ck_assert_int_eq(rl_typed_set(c, objs[i], "y", rl_double(i)), 0);
  }
  traced_t t1 = now();
  ck_assert_uint_eq(t1.bytes - t0.bytes, (size_t)N * cells);
  ck_assert_uint_eq(t1.blocks - t0.blocks, N);
  for (int i = 0; i < N; i++)
    rl_free_typed(c, objs[i]);
  traced_t t2 = now();
  ck_assert_uint_eq(t2.bytes, t0.bytes);
  ck_assert_uint_eq(t2.blocks, t0.blocks);
  hs_stop();
  free(objs);
  rl_class_free(c);
}
END_TEST

/* class Base: __slots__ = ('x', 'y'); class Sub(Base): pass  -> the cells
 * stay, a dict comes on top: shell 8 + 32 + 8, dict for z and a string. */
static void fill_sub(rl_obj_t *o, int i) {
  fill_xyz(o, i);
  set_ok(o, "name", rl_str("p"));
}
START_TEST(subclass_slots_plus_dict) {
  static const rl_slot_spec_t xy[] = {{"x", 0}, {"y", 0}};
  static const char *const sub_keys[] = {"z", "name"};
  rl_class_t *base = mk(&(rl_class_spec_t){.name = "Base", RL_SLOTS(xy)});
  rl_class_t *sub = mk(&(rl_class_spec_t){.name = "Sub", .base = base,
                                          .dict_keys = sub_keys, .ndict_keys = 2});
  ck_assert_int_eq(rl_class_has_dict(sub), 1);
  check_population(sub, fill_sub,
                   (expect_t){.shell = 8 + 32 + 8, .dict = 144,
                              .deep = 48 + 144 + 2, .blocks = 3});
  rl_class_free(sub);
  rl_class_free(base);
}
END_TEST

/* __slots__ = ('x', 'y', '__dict__'): the same layout asked for directly. */
START_TEST(slots_with_dict_slot) {
  static const rl_slot_spec_t xyd[] = {{"x", 0}, {"y", 0}, {"__dict__", 0}};
  rl_class_t *c = mk(&(rl_class_spec_t){.name = "Both", RL_SLOTS(xyd),
                                        .dict_kind = RL_DICT_SHARED,
                                        .dict_keys = xyz_keys + 2, .ndict_keys = 1});
  check_population(c, fill_xyz,
                   (expect_t){.shell = 48, .dict = 8 + 16, .deep = 48 + 24,
                              .blocks = 2});
  rl_class_free(c);
}
END_TEST

/* Snapshots agree with the counters, and with the default wrappers every
 * block is attributed to the line of this file that asked for it. */
START_TEST(snapshot_totals_and_sites) {
  rl_class_t *c = mk(&(rl_class_spec_t){.name = "PointWithDict",
                                        .dict_keys = xyz_keys, .ndict_keys = 3});
  rl_obj_t **objs = malloc(N * sizeof *objs);
  ck_assert_ptr_nonnull(objs);
  ck_assert_int_eq(hs_start(HS_DEFAULT_FRAMES), 0);
  hs_snapshot_t *before, *after;
  ck_assert_int_eq(hs_take_snapshot(&before), 0);
  for (int i = 0; i < N; i++) {
    ck_assert_int_eq(rl_new(c, &objs[i]), 0);
    fill_xyz(objs[i], i);
  }
  ck_assert_int_eq(hs_take_snapshot(&after), 0);
  size_t deep = 0;
  for (int i = 0; i < N; i++)
    deep += rl_deep_sizeof(objs[i]);
  hs_statistics_t *st;
  ck_assert_int_eq(hs_snapshot_compare(after, before, HS_KEY_LINENO, 0, &st), 0);
  ck_assert_int_eq(stats_info(st).total_size_diff, (int64_t)deep);
  ck_assert_int_eq(stats_info(st).total_count_diff, 2 * N);
  int64_t here = 0;
  for (size_t i = 0; i < hs_statistics_count(st); i++) {
    const hs_frame_t *f = &hs_statistics_get_diff(st, i)
                               ->frames[hs_statistics_get_diff(st, i)->site];
    static const char me[] = "/test_traced_sizes.c";
    const char *file = f->filename ? f->filename : "";
    size_t n = strlen(file);
    if (n >= sizeof me - 1 && strcmp(file + n - (sizeof me - 1), me) == 0)
      here += hs_statistics_get_diff(st, i)->size_diff;
  }
  ck_assert_int_eq(here, (int64_t)deep);
  hs_statistics_free(st);
  hs_snapshot_free(after);
  hs_snapshot_free(before);
  for (int i = 0; i < N; i++)
    rl_free(objs[i]);
  hs_stop();
  free(objs);
  rl_class_free(c);
}
END_TEST

int main(void) {
  Suite *s = suite_create("reclayout_traced");
  TCase *tc = tcase_create("sizes");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, per_instance_dict);
  tcase_add_test(tc, per_instance_dict_interned);
  tcase_add_test(tc, shared_key_dict);
  tcase_add_test(tc, shared_key_dict_diverged);
  tcase_add_test(tc, tagged_slots);
  tcase_add_test(tc, tagged_slots_owned_string);
  tcase_add_test(tc, typed_slots_rl_new);
  tcase_add_test(tc, typed_slots_rl_new_typed);
  tcase_add_test(tc, subclass_slots_plus_dict);
  tcase_add_test(tc, slots_with_dict_slot);
  tcase_add_test(tc, snapshot_totals_and_sites);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
