/* sensor_records.c - slots through inheritance: BaseRecord + SensorRecord is
 * five cells and no dict; a subclass without slots brings a dict back; the
 * "__dict__" escape hatch; redeclaration rejected; layouts via
 * rl_class_describe. Exits non-zero if a claim fails. */
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

static void check(int rc) {
  if (rc < 0) {
    fprintf(stderr, "%s: %s\n", rl_strerror(rc), rl_last_error());
    exit(1);
  }
}

static void report(const char *what, rl_obj_t *r) {
  printf("%-22s cells %zu, has __dict__: %s, shell %zu B, dict %zu B, "
         "total %zu B\n",
         what, rl_class_nslots(rl_class_of(r)), rl_has(r, "__dict__") ? "yes" : "no",
         rl_sizeof(r), rl_dict_sizeof(r), rl_deep_sizeof(r));
}

int main(void) {
  /* class BaseRecord: __slots__ = ('recordId', 'timestamp') */
  static const rl_slot_spec_t base_slots[] = {{"recordId", RL_T_I64},
                                              {"timestamp", RL_T_F64}};
  /* class SensorRecord(BaseRecord): __slots__ = ('sensorId', 'value', 'unit') */
  static const rl_slot_spec_t sensor_slots[] = {
      {"sensorId", RL_T_I32}, {"value", RL_T_F64}, {"unit", RL_T_TAGGED}};
  /* class FlexibleRecord(BaseRecord): __slots__ = ('sensorId', '__dict__') */
  static const rl_slot_spec_t flexible_slots[] = {{"sensorId", RL_T_I32},
                                                  {"__dict__", RL_T_TAGGED}};
  rl_class_t *base = make(&(rl_class_spec_t){.name = "BaseRecord", RL_SLOTS(base_slots)});
  rl_class_t *sensor = make(&(rl_class_spec_t){
      .name = "SensorRecord", .base = base, RL_SLOTS(sensor_slots)});
  /* class LooseSensorRecord(SensorRecord): pass   -- no __slots__ */
  rl_class_t *loose =
      make(&(rl_class_spec_t){.name = "LooseSensorRecord", .base = sensor});
  rl_class_t *flexible = make(&(rl_class_spec_t){
      .name = "FlexibleRecord", .base = base, RL_SLOTS(flexible_slots)});

  rl_class_describe(base, stdout);
  rl_class_describe(sensor, stdout);
  rl_class_describe(loose, stdout);
  rl_class_describe(flexible, stdout);
  putchar('\n');

  rl_obj_t *r, *l, *f;
  check(rl_new(sensor, &r));
  check(rl_set(r, "recordId", rl_int(1001)));
  check(rl_set(r, "timestamp", rl_double(1700000000.25)));
  check(rl_set(r, "sensorId", rl_int(7)));
  check(rl_set(r, "value", rl_double(21.5)));
  check(rl_set(r, "unit", rl_str_borrowed("celsius")));
  report("SensorRecord", r);
  CLAIM(rl_class_nslots(sensor) == 5, "five cells");
  CLAIM(!rl_has(r, "__dict__"), "no dict on SensorRecord");
  int rc = rl_set(r, "location", rl_str("lab"));
  printf("  r.location = 'lab' -> AttributeError: %s\n", rl_last_error());
  CLAIM(rc == RL_EATTR, "SensorRecord rejects a new attribute");

  check(rl_new(loose, &l));
  check(rl_set(l, "value", rl_double(3.0)));
  check(rl_set(l, "location", rl_str("roof")));
  report("LooseSensorRecord", l);
  CLAIM(rl_has(l, "__dict__") && rl_class_nslots(loose) == 5,
        "LooseSensorRecord keeps five cells and gains a dict");
  CLAIM(rl_dict_len(l) == 1, "only 'location' lives in the dict");

  check(rl_new(flexible, &f));
  check(rl_set(f, "sensorId", rl_int(9)));
  check(rl_set(f, "calibration", rl_double(0.98)));
  report("FlexibleRecord", f);
  CLAIM(rl_has(f, "__dict__") && rl_class_nslots(flexible) == 3,
        "'__dict__' in __slots__ gives cells and a dict");

  /* class BadRecord(BaseRecord): __slots__ = ('timestamp',) */
  static const rl_slot_spec_t bad_slots[] = {{"timestamp", RL_T_F64}};
  rl_class_t *bad = NULL;
  rc = rl_class_new(&(rl_class_spec_t){.name = "BadRecord", .base = base,
                                       RL_SLOTS(bad_slots)},
                    &bad);
  printf("BadRecord(BaseRecord) redeclaring 'timestamp' -> %s: %s\n",
         rl_strerror(rc), rl_last_error());
  CLAIM(rc == RL_EDUPSLOT && bad == NULL, "redeclaration rejected");

  /* the memory story for a million-record pipeline */
  printf("1,000,000 records: SensorRecord %.1f MiB, LooseSensorRecord "
         "%.1f MiB (as above)\n",
         rl_deep_sizeof(r) * 1e6 / 1048576.0, rl_deep_sizeof(l) * 1e6 / 1048576.0);
  CLAIM(rl_deep_sizeof(r) < rl_deep_sizeof(l), "slots are smaller");

  rl_free(f);
  rl_free(l);
  rl_free(r);
  rl_class_free(flexible);
  rl_class_free(loose);
  rl_class_free(sensor);
  rl_class_free(base);
  if (failures)
    fprintf(stderr, "%d claim(s) failed\n", failures);
  return failures ? 1 : 0;
}
