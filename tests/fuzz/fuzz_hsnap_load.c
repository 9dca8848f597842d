/* fuzz_hsnap_load.c - fuzz target for the .hsnap reader, and for everything a
 * caller may do with a snapshot the reader accepted (statistics, compare,
 * filters, wrappers, raw mode, formatting). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/hsnap.h"
#include "fuzz.h"
#include "heapsnap.h"

/* The totals of a statistics list, by value for use in assertions. */
static hs_statistics_info_t stats_info(const hs_statistics_t *st) {
  hs_statistics_info_t in;
  hs_statistics_get_info(st, &in, sizeof in);
  return in;
}

static int known_load_error(int rc) {
  return rc == HS_EIO || rc == HS_EFORMAT || rc == HS_EVERSION ||
         rc == HS_ETRUNC || rc == HS_ECORRUPT || rc == HS_ENOMEM;
}

/* snprintf-style formatters must report the same length whatever the buffer,
 * and never write past it: ASan sees the overrun, this sees the lie. */
static void check_frame(const hs_frame_t *f, hs_key_t key) {
  char buf[8192], tiny[5];
  int n = hs_frame_format(f, key, NULL, 0);
  HS_FUZZ_CHECK(n >= 0);
  HS_FUZZ_CHECK(hs_frame_format(f, key, tiny, sizeof tiny) == n);
  HS_FUZZ_CHECK(strlen(tiny) == ((size_t)n < sizeof tiny ? (size_t)n : 4));
  if ((size_t)n < sizeof buf) {
    HS_FUZZ_CHECK(hs_frame_format(f, key, buf, sizeof buf) == n);
    HS_FUZZ_CHECK(strlen(buf) == (size_t)n);
  }
}

static void check_frames(const hs_frame_t *frames, size_t nframe, size_t site,
                         hs_key_t key) {
  HS_FUZZ_CHECK(nframe == 0 || site < nframe);
  HS_FUZZ_CHECK(key == HS_KEY_TRACEBACK ? 1 : nframe <= 1);
  for (size_t i = 0; i < nframe; i++)
    check_frame(&frames[i], key);
  if (key != HS_KEY_TRACEBACK)
    return;
  /* Source lines are read from the named files: keep the limits small so
   * a long hostile stack does not turn every input into file I/O. */
  static const int limits[] = {0, 1, -2};
  for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
    char buf[256];
    int n = hs_traceback_format(frames, nframe, limits[i], (int)(i & 1),
                                NULL, 0);
    HS_FUZZ_CHECK(n >= 0);
    HS_FUZZ_CHECK(hs_traceback_format(frames, nframe, limits[i], (int)(i & 1),
                                      buf, sizeof buf) == n);
    HS_FUZZ_CHECK(strlen(buf) == ((size_t)n < sizeof buf ? (size_t)n
                                                         : sizeof buf - 1));
  }
}

static void check_statistics(hs_snapshot_t *snap, hs_key_t key, int cum) {
  hs_statistics_t *st = NULL;
  int rc = hs_snapshot_statistics(snap, key, cum, &st);
  if (cum && key == HS_KEY_TRACEBACK) {
    HS_FUZZ_CHECK(rc == HS_EINVAL && !st);
    return;
  }
  HS_FUZZ_CHECK(rc == 0 || rc == HS_ENOMEM);
  if (rc)
    return;
  HS_FUZZ_CHECK(stats_info(st).key == key &&
                (hs_statistics_count(st) == 0 || hs_statistics_get(st, 0)));
  uint64_t sum = 0;
  for (size_t i = 0; i < hs_statistics_count(st); i++) {
    const hs_statistic_t *s = hs_statistics_get(st, i);
    check_frames(s->frames, s->nframe, s->site, key);
    char line[512];
    int n = hs_statistic_format(s, key, NULL, 0);
    HS_FUZZ_CHECK(n >= 0 && hs_statistic_format(s, key, line, sizeof line) == n);
    sum += s->size;
  }
  /* Without cumulative every trace is in exactly one key (both sides wrap
   * the same way when a hostile file overflows 64 bits). */
  if (!cum)
    HS_FUZZ_CHECK(sum == stats_info(st).total_size);
  hs_statistics_free(st);

  /* snap.compare_to(snap): the same keys on both sides, so nothing moved. */
  rc = hs_snapshot_compare(snap, snap, key, cum, &st);
  HS_FUZZ_CHECK(rc == 0 || rc == HS_ENOMEM);
  if (rc)
    return;
  HS_FUZZ_CHECK(stats_info(st).total_size_diff == 0 &&
                stats_info(st).total_count_diff == 0);
  for (size_t i = 0; i < hs_statistics_count(st); i++) {
    const hs_statistic_diff_t *d = hs_statistics_get_diff(st, i);
    HS_FUZZ_CHECK(d->size_diff == 0 && d->count_diff == 0);
    check_frames(d->frames, d->nframe, d->site, key);
    char line[512];
    int n = hs_statistic_diff_format(d, key, NULL, 0);
    HS_FUZZ_CHECK(n >= 0 &&
                  hs_statistic_diff_format(d, key, line, sizeof line) == n);
  }
  hs_statistics_free(st);
}

static void check_all_keys(hs_snapshot_t *snap) {
  for (int key = HS_KEY_FILENAME; key <= HS_KEY_TRACEBACK; key++)
    for (int cum = 0; cum <= 1; cum++)
      check_statistics(snap, (hs_key_t)key, cum);
}

static void check_filtered(hs_snapshot_t *snap, const hs_filter_t *f,
                           size_t n) {
  hs_snapshot_t *sub = NULL;
  int rc = hs_snapshot_filter(snap, f, n, &sub);
  HS_FUZZ_CHECK(rc == 0 || rc == HS_ENOMEM);
  if (rc)
    return;
  hs_snapshot_info_t a, b;
  hs_snapshot_get_info(snap, &a, sizeof a);
  hs_snapshot_get_info(sub, &b, sizeof b);
  /* Totals of hostile files wrap (and sampled estimates saturate), so a
   * subset may sum to more; only "no filter" has an exact answer. */
  if (n == 0)
    HS_FUZZ_CHECK(b.count == a.count && b.size == a.size &&
                  b.stacks <= a.stacks);
  check_statistics(sub, HS_KEY_LINENO, 0);
  hs_statistics_t *st = NULL;
  rc = hs_snapshot_compare(sub, snap, HS_KEY_FUNCTION, 1, &st);
  HS_FUZZ_CHECK(rc == 0 || rc == HS_ENOMEM);
  hs_statistics_free(st);
  hs_snapshot_free(sub);
}

static void exercise(hs_snapshot_t *snap) {
  hs_snapshot_info_t info;
  hs_snapshot_get_info(snap, &info, sizeof info);
  HS_FUZZ_CHECK(info.program != NULL);
  check_all_keys(snap);

  /* One of each filter shape tracemalloc has; "*" and "?" patterns match
   * most hostile names, and a lineno filter needs a file pattern. */
  static const hs_filter_t filters[] = {
      {1, "*.c", 0, 0, -1}, {0, "*fixture*", 0, 1, -1}, {1, "*", 7, 0, 0},
      {1, NULL, 0, 0, 1},   {0, "?", 0, 1, 2},          {1, "[", 0, 0, -1}};
  size_t nf = sizeof filters / sizeof filters[0];
  check_filtered(snap, NULL, 0);
  for (size_t i = 0; i < nf; i++)
    check_filtered(snap, &filters[i], 1);
  check_filtered(snap, filters, nf);

  /* Wrappers and raw mode move the site: every key again. */
  HS_FUZZ_CHECK(hs_snapshot_add_wrapper(snap, HS_WRAP_FUNCTION, "site_*") == 0);
  HS_FUZZ_CHECK(hs_snapshot_add_wrapper(snap, HS_WRAP_FILE, "*.c") == 0);
  HS_FUZZ_CHECK(hs_snapshot_add_wrapper(snap, HS_WRAP_MODULE, "*") == 0);
  check_statistics(snap, HS_KEY_LINENO, 0);
  check_statistics(snap, HS_KEY_FUNCTION, 1);
  hs_snapshot_set_raw(snap, 1);
  check_statistics(snap, HS_KEY_FILENAME, 0);
  check_statistics(snap, HS_KEY_TRACEBACK, 0);
}

static void load_one(const uint8_t *data, size_t size) {
  hs_snapshot_t *snap = NULL;
  char err[256];
  int rc = hs__hsnap_read_mem(data, size, "fuzz.hsnap", &snap, err, sizeof err);
  if (rc != 0) {
    HS_FUZZ_CHECK(known_load_error(rc) && !snap);
    /* Every refusal names the file and the fault. */
    HS_FUZZ_CHECK(strncmp(err, "fuzz.hsnap: ", 12) == 0 && err[12]);
    return;
  }
  HS_FUZZ_CHECK(snap != NULL);
  exercise(snap);
  hs_snapshot_free(snap);
}

int hs_fuzz_hsnap_load(const uint8_t *data, size_t size) {
  load_one(data, size);
  uint8_t *copy = malloc(size ? size : 1);
  if (!copy)
    return 0;
  memcpy(copy, data, size);
  if (hs_fuzz_fix_hsnap(copy, size))
    load_one(copy, size);
  free(copy);
  return 0;
}

#ifdef HS_FUZZ_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  return hs_fuzz_hsnap_load(data, size);
}
#endif
