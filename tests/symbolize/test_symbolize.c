/* test_symbolize.c - the module map and the symbolizer: exact lines, inline
 * frames, dlclose'd and split-debug libraries, libc, degraded cases, cost. */
#define _GNU_SOURCE
#include <check.h>
#include <dlfcn.h>
#include <link.h>
#include <limits.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sites.h"
#include "symbolize/symbolize.h"

#define NF 16

volatile uintptr_t own_sink;

static __attribute__((noipa)) uintptr_t own_record(void) {
  return (uintptr_t)__builtin_return_address(0);
}

static __attribute__((noinline, noipa)) uintptr_t own_site(int *line) {
  uintptr_t r = own_record(); *line = __LINE__;
  own_sink = r;
  return r;
}

static const char *base_name(const char *p) {
  const char *s = p ? strrchr(p, '/') : NULL;
  return s ? s + 1 : p;
}

static int find_by_base(const hs_module_list_t *l, const char *prefix) {
  for (uint32_t i = 0; i < l->count; i++)
    if (strncmp(base_name(l->mods[i].path), prefix, strlen(prefix)) == 0)
      return (int)i;
  return -1;
}

static site_capture_fn site_fn(void *h) {
  void *p = dlsym(h, "hs_site_capture");
  ck_assert_ptr_nonnull(p);
  site_capture_fn f;
  memcpy(&f, &p, sizeof f);
  return f;
}

/* ---- module map ---- */

START_TEST(modules_main_and_libc) {
  hs_module_list_t l;
  ck_assert_int_eq(hs__modules_capture(&l), 0);
  ck_assert_uint_gt(l.count, 1);

  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  ck_assert_int_gt(n, 0);
  exe[n] = '\0';
  int line;
  int mi = hs__modules_find(&l, own_site(&line));
  ck_assert_int_ge(mi, 0);
  ck_assert_str_eq(l.mods[mi].path, exe);
  ck_assert_uint_gt(l.mods[mi].build_id_len, 0);
  ck_assert_uint_le(l.mods[mi].build_id_len, sizeof l.mods[mi].build_id);

  int ci = find_by_base(&l, "libc.so");
  ck_assert_int_ge(ci, 0);
  ck_assert_uint_gt(l.mods[ci].build_id_len, 0);
  ck_assert_int_eq(l.mods[ci].path[0], '/');

  for (uint32_t i = 0; i < l.count; i++) {
    ck_assert_uint_lt(l.mods[i].start, l.mods[i].end);
    if (i)
      ck_assert_uint_le(l.mods[i - 1].end, l.mods[i].start);
    ck_assert_int_eq(hs__modules_find(&l, l.mods[i].start), (int)i);
    ck_assert_int_eq(hs__modules_find(&l, l.mods[i].end - 1), (int)i);
  }
  ck_assert_int_eq(hs__modules_find(&l, 0x10), -1);
  ck_assert_int_eq(hs__modules_find(&l, UINTPTR_MAX), -1);

  hs_module_list_t c;
  ck_assert_int_eq(hs__modules_copy(&c, &l), 0);
  ck_assert_uint_eq(c.count, l.count);
  ck_assert_str_eq(c.mods[mi].path, exe);
  ck_assert_ptr_ne(c.mods[mi].path, l.mods[mi].path);
  hs__modules_free(&c);
  hs__modules_free(&l);
  ck_assert_uint_eq(l.count, 0);
}
END_TEST

/* ---- the test program itself ---- */

START_TEST(own_function_exact_line) {
  int line = 0;
  uintptr_t r = own_site(&line);
  hs_module_list_t l;
  ck_assert_int_eq(hs__modules_capture(&l), 0);
  hs_symbolizer_t *s = hs__symbolizer_new(&l);
  ck_assert_ptr_nonnull(s);
  hs_symframe_t f[NF];
  int n = hs__symbolize(s, r, f, NF);
  ck_assert_int_eq(n, 1);
  ck_assert_ptr_nonnull(f[0].function);
  ck_assert_str_eq(f[0].function, "own_site");
  ck_assert_ptr_nonnull(f[0].file);
  ck_assert_int_eq(f[0].file[0], '/');
  ck_assert_str_eq(base_name(f[0].file), "test_symbolize.c");
  ck_assert_uint_eq(f[0].line, (uint32_t)line);
  ck_assert_int_eq(f[0].module, hs__modules_find(&l, r));
  ck_assert_uint_eq(f[0].offset, r - l.mods[f[0].module].bias);

  /* Cached: the same interned strings come back. */
  hs_symframe_t g[NF];
  ck_assert_int_eq(hs__symbolize(s, r, g, NF), 1);
  ck_assert_ptr_eq(g[0].function, f[0].function);
  ck_assert_ptr_eq(g[0].file, f[0].file);
  ck_assert_uint_eq(g[0].line, f[0].line);

  ck_assert_int_eq(hs__symbolize(s, r, g, 0), HS_EINVAL);
  ck_assert_int_eq(hs__symbolizer_has_debuginfo(s, f[0].module), 1);
  ck_assert_int_eq(hs__symbolizer_has_debuginfo(s, -1), 0);
  hs__symbolizer_free(s);
  hs__modules_free(&l);
}
END_TEST

START_TEST(inline_frames) {
  int inner = 0, outer = 0;
  uintptr_t r = inline_site(&inner, &outer);
  ck_assert_int_ne(inner, outer);
  hs_module_list_t l;
  ck_assert_int_eq(hs__modules_capture(&l), 0);
  hs_symbolizer_t *s = hs__symbolizer_new(&l);
  ck_assert_ptr_nonnull(s);
  hs_symframe_t f[NF];
  int n = hs__symbolize(s, r, f, NF);
  ck_assert_int_eq(n, 2);
  ck_assert_str_eq(f[0].function, "inl_helper");
  ck_assert_str_eq(base_name(f[0].file), "inline_site.c");
  ck_assert_uint_eq(f[0].line, (uint32_t)inner);
  ck_assert_str_eq(f[1].function, "inline_site");
  ck_assert_str_eq(base_name(f[1].file), "inline_site.c");
  ck_assert_int_eq(f[1].file[0], '/');
  ck_assert_uint_eq(f[1].line, (uint32_t)outer);
  ck_assert_int_eq(f[1].module, f[0].module);

  /* max truncates to the innermost frames, from the cache as well. */
  hs_symframe_t one;
  ck_assert_int_eq(hs__symbolize(s, r, &one, 1), 1);
  ck_assert_ptr_eq(one.function, f[0].function);
  hs__symbolizer_free(s);

  /* A fresh symbolizer asked with max 1 first still caches both frames. */
  s = hs__symbolizer_new(&l);
  ck_assert_int_eq(hs__symbolize(s, r, &one, 1), 1);
  ck_assert_str_eq(one.function, "inl_helper");
  ck_assert_int_eq(hs__symbolize(s, r, f, NF), 2);
  ck_assert_str_eq(f[1].function, "inline_site");
  hs__symbolizer_free(s);
  hs__modules_free(&l);
}
END_TEST

/* A kept symbolizer moved over to another module list: the modules in
 * both keep what was read (the same interned strings come back, so
 * nothing was resolved again), frames name modules by their index in the
 * new list, and a list without a module it opened is refused. */
START_TEST(rebind_keeps_what_was_read) {
  int line = 0;
  uintptr_t r = own_site(&line);
  hs_module_list_t l, shifted = {0}, without = {0};
  ck_assert_int_eq(hs__modules_capture(&l), 0);
  hs_symbolizer_t *s = hs__symbolizer_new(&l);
  ck_assert_ptr_nonnull(s);
  hs_symframe_t f[NF], g[NF];
  ck_assert_int_eq(hs__symbolize(s, r, f, NF), 1);
  int mi = f[0].module;
  ck_assert_int_ge(mi, 0);

  /* The same list: nothing changes. */
  ck_assert_int_eq(hs__symbolizer_rebind(s, &l), 0);
  ck_assert_int_eq(hs__symbolize(s, r, g, NF), 1);
  ck_assert_ptr_eq(g[0].function, f[0].function);
  ck_assert_int_eq(g[0].module, mi);

  /* The same modules behind an extra one (a library unloaded since, as
   * the snapshots' lists have them): indices move by one. */
  shifted.count = l.count + 1;
  shifted.mods = calloc(shifted.count, sizeof *shifted.mods);
  ck_assert_ptr_nonnull(shifted.mods);
  shifted.mods[0].path = strdup("/nonexistent/libgone.so");
  shifted.mods[0].start = 0x1000;
  shifted.mods[0].end = 0x2000;
  for (uint32_t i = 0; i < l.count; i++) {
    shifted.mods[i + 1] = l.mods[i];
    shifted.mods[i + 1].path = strdup(l.mods[i].path);
  }
  ck_assert_int_eq(hs__symbolizer_rebind(s, &shifted), 0);
  ck_assert_int_eq(hs__symbolize(s, r, g, NF), 1);
  ck_assert_ptr_eq(g[0].function, f[0].function);
  ck_assert_ptr_eq(g[0].file, f[0].file);
  ck_assert_uint_eq(g[0].line, (uint32_t)line);
  ck_assert_int_eq(g[0].module, mi + 1);
  ck_assert_int_eq(hs__symbolizer_has_debuginfo(s, mi + 1), 1);
  /* An address in a module not opened yet (libc's, or a sanitizer's
   * that intercepts the function) resolves after the move. */
  uintptr_t other = (uintptr_t)dlsym(RTLD_DEFAULT, "qsort") + 1;
  int ci = hs__modules_find(&shifted, other);
  ck_assert_int_ge(ci, 1);
  ck_assert_int_ne(ci, mi + 1);
  ck_assert_int_eq(hs__symbolize(s, other, g, NF) >= 1, 1);
  ck_assert_int_eq(g[0].module, ci);

  /* Back to l, without the extra module (never opened): accepted. Then a
   * list without the executable, which it has opened: refused, and the
   * symbolizer still works on its own list. */
  ck_assert_int_eq(hs__symbolizer_rebind(s, &l), 0);
  ck_assert_int_eq(hs__symbolize(s, r, g, NF), 1);
  ck_assert_int_eq(g[0].module, mi);
  without.count = l.count - 1;
  without.mods = calloc(without.count, sizeof *without.mods);
  ck_assert_ptr_nonnull(without.mods);
  for (uint32_t i = 0, k = 0; i < l.count; i++)
    if ((int)i != mi) {
      without.mods[k] = l.mods[i];
      without.mods[k++].path = strdup(l.mods[i].path);
    }
  ck_assert_int_eq(hs__symbolizer_rebind(s, &without), -1);
  ck_assert_int_eq(hs__symbolize(s, r, g, NF), 1);
  ck_assert_int_eq(g[0].module, mi);
  ck_assert_str_eq(g[0].function, "own_site");
  hs__symbolizer_free(s);
  hs__modules_free(&l);
  hs__modules_free(&shifted);
  hs__modules_free(&without);
}
END_TEST

/* ---- shared libraries ---- */

START_TEST(dlclosed_library) {
  void *h = dlopen(HS_TEST_DL_LIB, RTLD_NOW | RTLD_LOCAL);
  ck_assert_msg(h != NULL, "dlopen: %s", dlerror());
  int line = 0;
  uintptr_t r = site_fn(h)(&line);
  hs_module_list_t l;
  ck_assert_int_eq(hs__modules_capture(&l), 0);
  int mi = hs__modules_find(&l, r);
  ck_assert_int_ge(mi, 0);
  ck_assert_str_eq(base_name(l.mods[mi].path), "libhs_symtest_dl.so");
  ck_assert_int_eq(dlclose(h), 0);
  ck_assert_ptr_null(dlopen(HS_TEST_DL_LIB, RTLD_LAZY | RTLD_NOLOAD));

  hs_symbolizer_t *s = hs__symbolizer_new(&l);
  hs__modules_free(&l); /* the symbolizer keeps its own copy */
  ck_assert_ptr_nonnull(s);
  hs_symframe_t f[NF];
  int n = hs__symbolize(s, r, f, NF);
  ck_assert_int_eq(n, 1);
  ck_assert_int_eq(f[0].module, mi);
  ck_assert_str_eq(f[0].function, "hs_site_capture");
  ck_assert_str_eq(base_name(f[0].file), "site_lib.c");
  ck_assert_uint_eq(f[0].line, (uint32_t)line);
  hs__symbolizer_free(s);
}
END_TEST

START_TEST(build_id_mismatch_keeps_module) {
  void *h = dlopen(HS_TEST_DL_LIB, RTLD_NOW | RTLD_LOCAL);
  ck_assert_msg(h != NULL, "dlopen: %s", dlerror());
  int line = 0;
  uintptr_t r = site_fn(h)(&line);
  hs_module_list_t l;
  ck_assert_int_eq(hs__modules_capture(&l), 0);
  int mi = hs__modules_find(&l, r);
  ck_assert_int_ge(mi, 0);
  ck_assert_uint_gt(l.mods[mi].build_id_len, 0);
  l.mods[mi].build_id[0] ^= 0xff; /* as if the file were rebuilt since */
  hs_symbolizer_t *s = hs__symbolizer_new(&l);
  hs_symframe_t f[NF];
  ck_assert_int_eq(hs__symbolize(s, r, f, NF), 1);
  ck_assert_int_eq(f[0].module, mi);
  ck_assert_ptr_null(f[0].function);
  ck_assert_ptr_null(f[0].file);
  ck_assert_uint_eq(f[0].line, 0);
  ck_assert_uint_eq(f[0].offset, r - l.mods[mi].bias);
  ck_assert_int_eq(hs__symbolizer_has_debuginfo(s, mi), 0);
  hs__symbolizer_free(s);
  hs__modules_free(&l);
  dlclose(h);
}
END_TEST

/* The site in the library at path resolves to its function, and to its
 * file and line exactly when with_lines. */
static void expect_site(const char *path, int with_lines) {
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  ck_assert_msg(h != NULL, "dlopen: %s", dlerror());
  int line = 0;
  uintptr_t r = site_fn(h)(&line);
  hs_module_list_t l;
  ck_assert_int_eq(hs__modules_capture(&l), 0);
  hs_symbolizer_t *s = hs__symbolizer_new(&l);
  ck_assert_ptr_nonnull(s);
  hs_symframe_t f[NF];
  ck_assert_int_eq(hs__symbolize(s, r, f, NF), 1);
  ck_assert_int_eq(f[0].module, hs__modules_find(&l, r));
  ck_assert_int_ge(f[0].module, 0);
  ck_assert_str_eq(f[0].function, "hs_site_capture");
  if (with_lines) {
    ck_assert_ptr_nonnull(f[0].file);
    ck_assert_str_eq(base_name(f[0].file), "site_lib.c");
    ck_assert_uint_eq(f[0].line, (uint32_t)line);
  } else {
    ck_assert_ptr_null(f[0].file);
    ck_assert_uint_eq(f[0].line, 0);
  }
  hs__symbolizer_free(s);
  hs__modules_free(&l);
  dlclose(h);
}

START_TEST(library_without_dwarf) { expect_site(HS_TEST_NODEBUG_LIB, 0); }
END_TEST

START_TEST(split_debug_by_build_id) {
  void *h = dlopen(HS_TEST_SPLIT_LIB, RTLD_NOW | RTLD_LOCAL);
  ck_assert_msg(h != NULL, "dlopen: %s", dlerror());
  int line = 0;
  uintptr_t r = site_fn(h)(&line);
  hs_module_list_t l;
  ck_assert_int_eq(hs__modules_capture(&l), 0);
  int mi = hs__modules_find(&l, r);
  ck_assert_int_ge(mi, 0);
  hs_symframe_t f[NF];

  /* Not on the default path: the symbol table alone. */
  hs_symbolizer_t *s = hs__symbolizer_new(&l);
  ck_assert_int_eq(hs__symbolize(s, r, f, NF), 1);
  ck_assert_str_eq(f[0].function, "hs_site_capture");
  ck_assert_ptr_null(f[0].file);
  hs__symbolizer_free(s);

  /* Found under DIR/.build-id/xx/yyyy.debug. */
  s = hs__symbolizer_new_ex(&l, HS_TEST_DEBUG_DIR);
  ck_assert_ptr_nonnull(s);
  ck_assert_int_eq(hs__symbolizer_has_debuginfo(s, mi), 1);
  ck_assert_int_eq(hs__symbolize(s, r, f, NF), 1);
  ck_assert_str_eq(f[0].function, "hs_site_capture");
  ck_assert_ptr_nonnull(f[0].file);
  ck_assert_str_eq(base_name(f[0].file), "site_lib.c");
  ck_assert_uint_eq(f[0].line, (uint32_t)line);
  hs__symbolizer_free(s);
  hs__modules_free(&l);
  dlclose(h);
}
END_TEST

/* Found by .gnu_debuglink next to the library, and refused when it is
 * another library's (another build-id). No search reaches for debuginfod: libdw would load it
 * (with libcurl and some 30 libraries) when a file is not found. */
START_TEST(split_debug_by_debuglink) {
  expect_site(HS_TEST_LINK_LIB, 1);
  expect_site(HS_TEST_BADLINK_LIB, 0);
  ck_assert_msg(dlopen("libdebuginfod.so.1", RTLD_LAZY | RTLD_NOLOAD) == NULL,
                "the symbolizer loaded libdebuginfod");
}
END_TEST

START_TEST(cxx_names_demangled) {
  void *h = dlopen(HS_TEST_CXX_LIB, RTLD_NOW | RTLD_LOCAL);
  ck_assert_msg(h != NULL, "dlopen: %s", dlerror());
  int line = 0;
  uintptr_t r = site_fn(h)(&line);
  hs_module_list_t l;
  ck_assert_int_eq(hs__modules_capture(&l), 0);
  hs_symbolizer_t *s = hs__symbolizer_new(&l);
  hs_symframe_t f[NF];
  ck_assert_int_eq(hs__symbolize(s, r, f, NF), 1);
  ck_assert_str_eq(f[0].function, "hs_t::Klass::site(int*)");
  ck_assert_str_eq(base_name(f[0].file), "cxx_site.cpp");
  ck_assert_uint_eq(f[0].line, (uint32_t)line);
  hs__symbolizer_free(s);
  hs__modules_free(&l);
  dlclose(h);
}
END_TEST

/* ---- libc and the degraded cases ---- */

static uintptr_t libc_ret;
static int cmp_record(const void *a, const void *b) {
  if (!libc_ret)
    libc_ret = (uintptr_t)__builtin_return_address(0);
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

START_TEST(libc_addresses) {
  /* libc's own malloc (not a sanitizer's interceptor of it). */
  void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
  ck_assert_ptr_nonnull(libc);
  uintptr_t m = (uintptr_t)dlsym(libc, "malloc");
  ck_assert_uint_ne(m, 0);
  /* A real return address inside libc: tsearch calling our comparator. */
  void *root = NULL;
  static int keys[3] = {2, 1, 3};
  for (int i = 0; i < 3; i++)
    tsearch(&keys[i], &root, cmp_record);
  ck_assert_uint_ne(libc_ret, 0);
  for (int i = 0; i < 3; i++)
    tdelete(&keys[i], &root, cmp_record);

  hs_module_list_t l;
  ck_assert_int_eq(hs__modules_capture(&l), 0);
  int ci = find_by_base(&l, "libc.so");
  ck_assert_int_ge(ci, 0);
  hs_symbolizer_t *s = hs__symbolizer_new(&l);
  int dbg = hs__symbolizer_has_debuginfo(s, ci);
  hs_symframe_t f[NF];

  int n = hs__symbolize(s, m + 1, f, NF);
  ck_assert_int_ge(n, 1);
  ck_assert_int_eq(f[n - 1].module, ci);
  ck_assert_ptr_nonnull(f[n - 1].function);
  ck_assert_ptr_nonnull(strstr(f[n - 1].function, "malloc"));
  printf("libc malloc+1 -> %s %s:%u (debuginfo %s)\n", f[n - 1].function,
         f[0].file ? f[0].file : "?", f[0].line, dbg ? "yes" : "no");

  n = hs__symbolize(s, libc_ret, f, NF);
  ck_assert_int_ge(n, 1);
  ck_assert_int_eq(f[0].module, ci);
  ck_assert_ptr_nonnull(f[n - 1].function);
  printf("libc tsearch ret -> %d frame(s):", n);
  for (int i = 0; i < n; i++)
    printf(" %s (%s:%u)", f[i].function ? f[i].function : "?",
           f[i].file ? base_name(f[i].file) : "?", f[i].line);
  printf("\n");
  if (dbg) { /* libc6-dbg installed: lines come from the build-id file */
    ck_assert_ptr_nonnull(f[0].file);
    ck_assert_uint_gt(f[0].line, 0);
  }
  hs__symbolizer_free(s);
  hs__modules_free(&l);
}
END_TEST

START_TEST(outside_every_module) {
  hs_module_list_t l;
  ck_assert_int_eq(hs__modules_capture(&l), 0);
  hs_symbolizer_t *s = hs__symbolizer_new(&l);
  hs_symframe_t f[NF];
  ck_assert_int_eq(hs__symbolize(s, 0x10, f, NF), 1);
  ck_assert_int_eq(f[0].module, -1);
  ck_assert_ptr_null(f[0].function);
  ck_assert_ptr_null(f[0].file);
  ck_assert_uint_eq(f[0].line, 0);
  ck_assert_uint_eq(f[0].offset, 0x10);
  ck_assert_int_eq(hs__symbolize(s, 0, f, NF), 1);
  ck_assert_int_eq(f[0].module, -1);
  hs__symbolizer_free(s);

  /* Empty list, missing file, file-less module: module+offset, no crash. */
  s = hs__symbolizer_new(NULL);
  ck_assert_ptr_nonnull(s);
  ck_assert_int_eq(hs__symbolize(s, (uintptr_t)&own_site, f, NF), 1);
  ck_assert_int_eq(f[0].module, -1);
  hs__symbolizer_free(s);

  hs_module_t fake[2] = {
      {.path = "/nonexistent/libgone.so", .bias = 0x100000,
       .start = 0x100000, .end = 0x200000},
      {.path = "linux-vdso.so.1", .bias = 0x300000, .start = 0x300000,
       .end = 0x301000}};
  hs_module_list_t fl = {fake, 2};
  s = hs__symbolizer_new(&fl);
  ck_assert_int_eq(hs__symbolize(s, 0x100234, f, NF), 1);
  ck_assert_int_eq(f[0].module, 0);
  ck_assert_uint_eq(f[0].offset, 0x234);
  ck_assert_ptr_null(f[0].function);
  ck_assert_int_eq(hs__symbolize(s, 0x300010, f, NF), 1);
  ck_assert_int_eq(f[0].module, 1);
  ck_assert_uint_eq(f[0].offset, 0x10);
  hs__symbolizer_free(s);
  hs__modules_free(&l);
}
END_TEST

/* ---- cost (printed, not asserted) ---- */

struct text_range {
  uintptr_t lo, hi;
};
static int find_libc_text(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  struct text_range *t = arg;
  if (!strstr(info->dlpi_name, "/libc.so"))
    return 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
      t->lo = info->dlpi_addr + ph->p_vaddr;
      t->hi = t->lo + ph->p_memsz;
      return 1;
    }
  }
  return 0;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

START_TEST(cost_per_address) {
  enum { N = 10000 };
  struct text_range t = {0, 0};
  dl_iterate_phdr(find_libc_text, &t);
  ck_assert_uint_gt(t.hi - t.lo, N);
  uintptr_t step = (t.hi - t.lo) / N;

  hs_module_list_t l;
  ck_assert_int_eq(hs__modules_capture(&l), 0);
  hs_symbolizer_t *s = hs__symbolizer_new(&l);
  hs_symframe_t f[NF];
  /* No ck_assert inside the timed loops: each one writes to Check's pipe. */
  int named = 0, lined = 0, bad = 0;
  double t0 = now_s();
  for (int i = 0; i < N; i++) {
    int n = hs__symbolize(s, t.lo + 1 + (uintptr_t)i * step, f, NF);
    if (n < 1) {
      bad++;
      continue;
    }
    named += f[n - 1].function != NULL;
    lined += f[0].line != 0;
  }
  double t1 = now_s();
  for (int i = 0; i < N; i++)
    bad += hs__symbolize(s, t.lo + 1 + (uintptr_t)i * step, f, NF) < 1;
  double t2 = now_s();
  ck_assert_int_eq(bad, 0);
  printf("cost: %d distinct libc addresses: cold %.2f us/address "
         "(including first DWARF load), warm %.3f us/address; "
         "%d named, %d with a line\n",
         N, (t1 - t0) * 1e6 / N, (t2 - t1) * 1e6 / N, named, lined);

  /* The same addresses on an already warm module (DWARF and symbols
   * loaded, results not cached): the steady-state cold cost. */
  hs__symbolizer_free(s);
  s = hs__symbolizer_new(&l);
  ck_assert_int_ge(hs__symbolize(s, t.lo + 1, f, NF), 1);
  double t3 = now_s();
  for (int i = 1; i < N; i++)
    bad += hs__symbolize(s, t.lo + 1 + (uintptr_t)i * step, f, NF) < 1;
  double t4 = now_s();
  ck_assert_int_eq(bad, 0);
  /* New addresses between the old ones: every CU's line table and function
   * index is built already, so this is the cost of a lookup proper. */
  double t5 = now_s();
  for (int i = 0; i < N; i++)
    bad += hs__symbolize(s, t.lo + 1 + (uintptr_t)i * step + step / 2, f,
                         NF) < 1;
  double t6 = now_s();
  ck_assert_int_eq(bad, 0);
  printf("cost: uncached, module loaded: %.2f us/address; "
         "uncached, CUs loaded too: %.2f us/address\n",
         (t4 - t3) * 1e6 / (N - 1), (t6 - t5) * 1e6 / N);
  hs__symbolizer_free(s);
  hs__modules_free(&l);
}
END_TEST

int main(void) {
  Suite *su = suite_create("symbolize");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, modules_main_and_libc);
  tcase_add_test(tc, own_function_exact_line);
  tcase_add_test(tc, inline_frames);
  tcase_add_test(tc, rebind_keeps_what_was_read);
  tcase_add_test(tc, split_debug_by_debuglink);
  tcase_add_test(tc, dlclosed_library);
  tcase_add_test(tc, build_id_mismatch_keeps_module);
  tcase_add_test(tc, library_without_dwarf);
  tcase_add_test(tc, split_debug_by_build_id);
  tcase_add_test(tc, cxx_names_demangled);
  tcase_add_test(tc, libc_addresses);
  tcase_add_test(tc, outside_every_module);
  tcase_add_test(tc, cost_per_address);
  suite_add_tcase(su, tc);
  SRunner *sr = srunner_create(su);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
