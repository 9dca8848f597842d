/* points.c - the lecture's experiment in C: PointWithDict versus
 * PointWithSlots (and a typed-slot struct) holding x, y, z doubles; sizes,
 * the ratio, and the AttributeError analogue. Exits non-zero if a claim fails. */
#include <reclayout.h>
#include <stdio.h>
#include <stdlib.h>

static int failures;
#define CLAIM(cond, ...)                                                      \
  do {                                                                        \
    if (!(cond)) {                                                            \
      fprintf(stderr, "claim failed: " __VA_ARGS__);                          \
      fputc('\n', stderr);                                                    \
      failures++;                                                             \
    }                                                                         \
  } while (0)

static rl_class_t *make(const rl_class_spec_t *spec) {
  rl_class_t *c = NULL;
  int rc = rl_class_new(spec, &c);
  if (rc < 0) {
    fprintf(stderr, "%s: %s\n", rl_strerror(rc), rl_last_error());
    exit(1);
  }
  return c;
}

static void set_xyz(rl_obj_t *p, double x, double y, double z) {
  if (rl_set(p, "x", rl_double(x)) || rl_set(p, "y", rl_double(y)) ||
      rl_set(p, "z", rl_double(z))) {
    fprintf(stderr, "set: %s\n", rl_last_error());
    exit(1);
  }
}

int main(void) {
  static const char *const names[] = {"x", "y", "z"};
  static const rl_slot_spec_t slots[] = {{"x", RL_T_TAGGED}, {"y", RL_T_TAGGED},
                                         {"z", RL_T_TAGGED}};
  static const rl_slot_spec_t typed[] = {{"x", RL_T_F64}, {"y", RL_T_F64},
                                         {"z", RL_T_F64}};
  /* class PointWithDict: def __init__(self, x, y, z): self.x = x ... */
  rl_class_t *with_dict = make(&(rl_class_spec_t){
      .name = "PointWithDict", .dict_keys = names, .ndict_keys = 3});
  /* class PointWithSlots: __slots__ = ('x', 'y', 'z') */
  rl_class_t *with_slots =
      make(&(rl_class_spec_t){.name = "PointWithSlots", RL_SLOTS(slots)});
  /* the same with C types: a struct { double x, y, z; } */
  rl_class_t *as_struct =
      make(&(rl_class_spec_t){.name = "PointStruct", RL_SLOTS(typed)});

  rl_obj_t *pd, *ps;
  void *pt;
  if (rl_new(with_dict, &pd) || rl_new(with_slots, &ps) ||
      rl_new_typed(as_struct, &pt))
    return 1;
  set_xyz(pd, 1.0, 2.0, 3.0);
  set_xyz(ps, 1.0, 2.0, 3.0);
  if (rl_typed_set(as_struct, pt, "x", rl_double(1.0)) ||
      rl_typed_set(as_struct, pt, "y", rl_double(2.0)) ||
      rl_typed_set(as_struct, pt, "z", rl_double(3.0)))
    return 1;

  size_t d_shell = rl_sizeof(pd), d_dict = rl_dict_sizeof(pd);
  size_t d_total = rl_deep_sizeof(pd), s_total = rl_deep_sizeof(ps);
  size_t t_total = rl_class_cells_size(as_struct);
  printf("PointWithDict:  shell %3zu B + __dict__ %3zu B = %3zu B\n", d_shell,
         d_dict, d_total);
  printf("PointWithSlots: shell %3zu B, no __dict__      = %3zu B\n",
         rl_sizeof(ps), s_total);
  printf("PointStruct:    rl_new_typed cells          = %3zu B "
         "(sizeof(struct {double x,y,z;}) = %zu)\n",
         t_total, sizeof(struct { double x, y, z; }));
  printf("ratio dict/slots: %.2f   dict/struct: %.2f\n",
         (double)d_total / (double)s_total, (double)d_total / (double)t_total);
  printf("(CPython 3.11, tracemalloc: 96 B per dict-based point before "
         "__dict__ is touched, 152-160 B after; 56 B slotted)\n");

  CLAIM(d_total == d_shell + d_dict, "dict point total is shell + dict");
  CLAIM(s_total <= 56, "slotted point within 56 bytes (%zu)", s_total);
  CLAIM(t_total * 10 <= 24 * 11, "struct point within 10%% of 24 bytes");
  CLAIM(d_total >= 2 * s_total, "slots save at least half");
  CLAIM(rl_has(pd, "__dict__") && !rl_has(ps, "__dict__"),
        "only the dict point has __dict__");

  /* p.newField = "hello" */
  int rc = rl_set(pd, "newField", rl_str("hello"));
  CLAIM(rc == 0, "the dict point takes a new attribute");
  printf("PointWithDict.newField = 'hello' -> ok (dict now %zu B)\n",
         rl_dict_sizeof(pd));
  rc = rl_set(ps, "newField", rl_str("hello"));
  printf("PointWithSlots.newField = 'hello' -> %s\n", rl_strerror(rc));
  printf("AttributeError: %s\n", rl_last_error());
  CLAIM(rc == RL_EATTR, "slotted point rejects newField");
  CLAIM(strcmp(rl_last_error(),
               "'PointWithSlots' object has no attribute 'newField'") == 0,
        "Python's message");
  rc = rl_typed_set(as_struct, pt, "newField", rl_double(0));
  CLAIM(rc == RL_EATTR, "struct point rejects newField");

  /* 100,000 records each, the tracemalloc experiment of the lecture */
  enum { N = 100000 };
  size_t sum[2] = {0, 0};
  const rl_class_t *cls[2] = {with_dict, with_slots};
  for (int k = 0; k < 2; k++) {
    for (int i = 0; i < N; i++) {
      rl_obj_t *o;
      if (rl_new(cls[k], &o))
        return 1;
      set_xyz(o, i, i + 1, i + 2);
      sum[k] += rl_deep_sizeof(o);
      rl_free(o);
    }
  }
  printf("%d records: dict %.1f MiB, slots %.1f MiB, struct %.1f MiB\n", N,
         sum[0] / 1048576.0, sum[1] / 1048576.0, N * t_total / 1048576.0);
  CLAIM(sum[0] == (size_t)N * d_total && sum[1] == (size_t)N * s_total,
        "every record costs the same");

  rl_free(pd);
  rl_free(ps);
  rl_free_typed(as_struct, pt);
  rl_class_free(as_struct);
  rl_class_free(with_slots);
  rl_class_free(with_dict);
  if (failures)
    fprintf(stderr, "%d claim(s) failed\n", failures);
  return failures ? 1 : 0;
}
