/* test_static.c - libheapsnap linked in as the static archive: the program
 * itself then defines malloc, and that definition must be the one in use. */
#define _GNU_SOURCE
#include <check.h>
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "heapsnap.h"
#include "interpose_util.h"

START_TEST(archive_malloc_is_in_use) {
  /* Every malloc-family symbol resolves into this executable, and the
   * shared library is nowhere in the process. */
  Dl_info self, sym;
  ck_assert_int_ne(dladdr((void *)(uintptr_t)hs_start, &self), 0);
  static const char *const names[] = {
      "malloc",         "free",          "calloc",   "realloc",
      "reallocarray",   "posix_memalign", "aligned_alloc", "memalign",
      "valloc",         "pvalloc",       "malloc_usable_size"};
  for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
    void *addr = dlsym(RTLD_DEFAULT, names[k]);
    ck_assert_msg(addr != NULL, "%s not found", names[k]);
    ck_assert_int_ne(dladdr(addr, &sym), 0);
    ck_assert_msg(strcmp(sym.dli_fname, self.dli_fname) == 0,
                  "%s resolves into %s, not the executable %s", names[k],
                  sym.dli_fname, self.dli_fname);
  }
  ck_assert_ptr_null(dlopen("libheapsnap.so.1", RTLD_NOW | RTLD_NOLOAD));
}
END_TEST

static __attribute__((noinline)) void *static_site(size_t n) {
  void *p = malloc(hs_t_opaque(n));
  hs_t_escape(p);
  return p;
}

START_TEST(archive_traces) {
  ck_assert_int_eq(hs_start(16), 0);
  size_t base = hs_t_current();
  void *p = static_site(1234);
  size_t c1 = hs_t_current();
  int frames = hs_t_frames(p);
  /* libc's own calls (strdup -> malloc through the PLT) reach us too. */
  char *s = strdup("static archive");
  size_t c2 = hs_t_current();
  int sframes = hs_t_frames(s);
  free(s);
  free(p);
  size_t c3 = hs_t_current();
  ck_assert_uint_eq(c1 - base, 1234);
  ck_assert_int_ge(frames, 1);
  ck_assert_uint_eq(c2 - c1, strlen("static archive") + 1);
  ck_assert_int_ge(sframes, 1);
  ck_assert_uint_eq(c3, base);
  hs_stop();
  ck_assert_int_eq(hs_is_tracing(), 0);
}
END_TEST

int main(void) {
  Suite *s = suite_create("interpose_static");
  TCase *tc = tcase_create("static");
  tcase_add_test(tc, archive_malloc_is_in_use);
  tcase_add_test(tc, archive_traces);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_set_fork_status(sr, CK_FORK);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
