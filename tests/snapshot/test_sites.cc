// test_sites.cc - allocation sites through real wrappers, under the real
// interposer: strdup, a project's xmalloc, operator new and std::vector,
// and a library dlclose'd before the snapshot is symbolized.
#include <check.h>
#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "heapsnap.h"

extern "C" {
unsigned line_strdup, line_xmalloc_call, line_vector, line_new, line_dl;

__attribute__((noinline)) void *xmalloc(size_t n) {
  void *p = malloc(n);
  if (!p)
    abort();
  return p;
}
}

static bool ends_with(const char *s, const char *suffix) {
  size_t a = s ? strlen(s) : 0, b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

// The stat at this file's line, or nullptr.
static const hs_statistic_t *find_line(const hs_statistics_t *st, unsigned line) {
  for (size_t i = 0; i < hs_statistics_count(st); i++) {
    const hs_frame_t *f = &hs_statistics_get(st, i)->frames[0];
    if (f->filename && ends_with(f->filename, "test_sites.cc") && f->lineno == line)
      return hs_statistics_get(st, i);
  }
  return nullptr;
}

START_TEST(sites_by_line) {
  ck_assert_int_eq(hs_start(32), 0);
  std::vector<char *> keep;
  keep.reserve(64); // its growth would be attributed to the push_back lines
  for (int i = 0; i < 10; i++) {
    line_strdup = __LINE__; keep.push_back(strdup("twelve bytes"));
  }
  for (int i = 0; i < 5; i++) {
    line_xmalloc_call = __LINE__; keep.push_back(static_cast<char *>(xmalloc(1000)));
  }
  line_vector = __LINE__; auto *v = new std::vector<long>(250);
  line_new = __LINE__; auto *s = new std::string(200, 'x');
  hs_snapshot_t *snap;
  ck_assert_int_eq(hs_take_snapshot(&snap), 0);
  ck_assert_int_eq(hs_add_wrapper(HS_WRAP_FUNCTION, "xmalloc"), 0);
  hs_snapshot_t *snap2;
  ck_assert_int_eq(hs_take_snapshot(&snap2), 0);

  hs_statistics_t *st;
  ck_assert_int_eq(hs_snapshot_statistics(snap, HS_KEY_LINENO, 0, &st), 0);
  const hs_statistic_t *a = find_line(st, line_strdup);
  ck_assert_msg(a != nullptr, "strdup attributed to its caller's line");
  ck_assert_uint_eq(a->size, 130);
  ck_assert_uint_eq(a->count, 10);
  // xmalloc is not a wrapper for this snapshot: its own line is the site.
  ck_assert_ptr_null(find_line(st, line_xmalloc_call));
  const hs_statistic_t *vec = find_line(st, line_vector);
  ck_assert_msg(vec != nullptr, "std::vector's buffer at the user's line");
  ck_assert_uint_eq(vec->size, sizeof(std::vector<long>) + 250 * sizeof(long));
  ck_assert_uint_eq(vec->count, 2);
  const hs_statistic_t *str = find_line(st, line_new);
  ck_assert_msg(str != nullptr, "std::string at the user's line");
  ck_assert_uint_eq(str->count, 2);
  hs_statistics_free(st);

  // With xmalloc registered, its caller's line is the site.
  ck_assert_int_eq(hs_snapshot_statistics(snap2, HS_KEY_LINENO, 0, &st), 0);
  const hs_statistic_t *x = find_line(st, line_xmalloc_call);
  ck_assert_msg(x != nullptr, "xmalloc attributed to its caller");
  ck_assert_uint_eq(x->size, 5000);
  hs_statistics_free(st);

  // Raw mode: frame 0, as tracemalloc; that is never this file for strdup.
  hs_snapshot_set_raw(snap, 1);
  ck_assert_int_eq(hs_snapshot_statistics(snap, HS_KEY_LINENO, 0, &st), 0);
  ck_assert_ptr_null(find_line(st, line_strdup));
  hs_statistics_free(st);

  hs_snapshot_free(snap);
  hs_snapshot_free(snap2);
  for (char *p : keep)
    free(p);
  delete v;
  delete s;
  hs_stop();
}
END_TEST

START_TEST(dlclosed_library) {
  ck_assert_int_eq(hs_start(16), 0);
  void *h = dlopen(DL_ALLOC_LIB, RTLD_NOW | RTLD_LOCAL);
  ck_assert_ptr_nonnull(h);
  auto fn = reinterpret_cast<void *(*)(size_t)>(dlsym(h, "dl_alloc"));
  auto *line = static_cast<unsigned *>(dlsym(h, "dl_alloc_line"));
  ck_assert(fn && line);
  void *blocks[3];
  for (auto &b : blocks)
    b = fn(4321);
  unsigned want = *line;
  hs_snapshot_t *snap;
  ck_assert_int_eq(hs_take_snapshot(&snap), 0);
  ck_assert_int_eq(dlclose(h), 0);
  ck_assert_ptr_null(dlopen(DL_ALLOC_LIB, RTLD_NOW | RTLD_NOLOAD));
  // Symbolized only now, from the module table recorded in the snapshot.
  hs_statistics_t *st;
  ck_assert_int_eq(hs_snapshot_statistics(snap, HS_KEY_LINENO, 0, &st), 0);
  bool found = false;
  for (size_t i = 0; i < hs_statistics_count(st); i++) {
    const hs_frame_t *f = &hs_statistics_get(st, i)->frames[0];
    if (f->filename && ends_with(f->filename, "dl_alloc.c")) {
      found = true;
      ck_assert_uint_eq(f->lineno, want);
      ck_assert_str_eq(f->function, "dl_alloc");
      ck_assert_uint_eq(hs_statistics_get(st, i)->size, 3 * 4321);
    }
  }
  ck_assert_msg(found, "the dlclose'd library's line is resolved");
  hs_statistics_free(st);
  hs_snapshot_free(snap);
  for (auto b : blocks)
    free(b);
  hs_stop();
}
END_TEST

int main() {
  Suite *su = suite_create("sites");
  TCase *tc = tcase_create("sites");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, sites_by_line);
  tcase_add_test(tc, dlclosed_library);
  suite_add_tcase(su, tc);
  SRunner *sr = srunner_create(su);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
