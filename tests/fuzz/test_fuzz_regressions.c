/* test_fuzz_regressions.c - replays the fuzz targets' seed corpora and every
 * saved crash through the same entry points the fuzzers call, so the normal
 * test run checks them without clang or libFuzzer. */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

typedef int (*entry_fn)(const uint8_t *, size_t);

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static uint8_t *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot open %s", path);
  size_t cap = 4096, n = 0;
  uint8_t *buf = malloc(cap);
  ck_assert_ptr_nonnull(buf);
  size_t got;
  while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap) {
      buf = realloc(buf, cap *= 2);
      ck_assert_ptr_nonnull(buf);
    }
  }
  ck_assert(!ferror(f));
  fclose(f);
  *len = n;
  return buf;
}

/* Runs every file of DIR/<sub>/<target> (in name order, dotfiles skipped)
 * and returns how many ran; a missing directory is 0 files. */
static size_t replay(const char *sub, const char *target, entry_fn fn) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/%s/%s", HS_FUZZ_DIR, sub, target);
  DIR *d = opendir(dir);
  if (!d)
    return 0;
  char **names = NULL;
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.')
      continue;
    names = realloc(names, (n + 1) * sizeof *names);
    ck_assert_ptr_nonnull(names);
    names[n] = strdup(e->d_name);
    ck_assert_ptr_nonnull(names[n++]);
  }
  closedir(d);
  qsort(names, n, sizeof *names, cmp_str);
  for (size_t i = 0; i < n; i++) {
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    size_t len;
    uint8_t *buf = slurp(path, &len);
    /* A crash here names the input on the line before it. */
    fprintf(stderr, "replay %s\n", path);
    ck_assert_int_eq(fn(buf, len), 0);
    free(buf);
    free(names[i]);
  }
  free(names);
  return n;
}

static void replay_target(const char *target, entry_fn fn) {
  size_t corpus = replay("corpus", target, fn);
  size_t crashes = replay("regressions", target, fn);
  ck_assert_msg(corpus > 0, "no seed corpus for %s", target);
  fprintf(stderr, "%s: %zu corpus files, %zu regressions\n", target, corpus,
          crashes);
}

START_TEST(test_hsnap_load) { replay_target("fuzz_hsnap_load", hs_fuzz_hsnap_load); }
END_TEST

START_TEST(test_snapdiff_args) {
  replay_target("fuzz_snapdiff_args", hs_fuzz_snapdiff_args);
}
END_TEST

START_TEST(test_reclayout_ops) {
  replay_target("fuzz_reclayout_ops", hs_fuzz_reclayout_ops);
}
END_TEST

START_TEST(test_http_request) {
  replay_target("fuzz_http_request", hs_fuzz_http_request);
}
END_TEST

/* Inputs no corpus holds: nothing at all, and a bare header. */
START_TEST(test_edges) {
  static const uint8_t zero[128];
  ck_assert_int_eq(hs_fuzz_hsnap_load(zero, 0), 0);
  ck_assert_int_eq(hs_fuzz_hsnap_load(zero, sizeof zero), 0);
  ck_assert_int_eq(hs_fuzz_snapdiff_args(zero, 0), 0);
  ck_assert_int_eq(hs_fuzz_snapdiff_args(zero, sizeof zero), 0);
  ck_assert_int_eq(hs_fuzz_reclayout_ops(zero, 0), 0);
  ck_assert_int_eq(hs_fuzz_reclayout_ops(zero, sizeof zero), 0);
  ck_assert_int_eq(hs_fuzz_http_request(zero, 0), 0);
  ck_assert_int_eq(hs_fuzz_http_request(zero, sizeof zero), 0);
}
END_TEST

int main(void) {
  Suite *s = suite_create("fuzz_regressions");
  TCase *tc = tcase_create("replay");
  tcase_set_timeout(tc, 240);
  tcase_add_test(tc, test_hsnap_load);
  tcase_add_test(tc, test_snapdiff_args);
  tcase_add_test(tc, test_reclayout_ops);
  tcase_add_test(tc, test_http_request);
  tcase_add_test(tc, test_edges);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
