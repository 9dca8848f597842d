/* test_emit.c - snapdiff's shared writers' helpers: JSON string literals
 * (escapes, invalid UTF-8, HTML safety), RFC 4180 fields, flame-graph
 * labels and the string map. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapdiff.h"

/* What fn wrote for s, as a string the caller frees. */
static char *json(const char *s, int html) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  sd_json_str(f, s, html);
  fclose(f);
  return buf;
}

static char *csv(const char *s) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  sd_csv_field(f, s);
  fclose(f);
  return buf;
}

#define CHECK_JSON(in, html, want)                                            \
  do {                                                                        \
    char *got_ = json(in, html);                                              \
    ck_assert_str_eq(got_, want);                                             \
    free(got_);                                                               \
  } while (0)

START_TEST(json_escapes) {
  CHECK_JSON(NULL, 0, "null");
  CHECK_JSON("", 0, "\"\"");
  CHECK_JSON("plain/path.c", 0, "\"plain/path.c\"");
  CHECK_JSON("a\"b\\c", 0, "\"a\\\"b\\\\c\"");
  CHECK_JSON("t\tn\nr\r", 0, "\"t\\tn\\nr\\r\"");
  CHECK_JSON("\x01\x1f\x7f", 0, "\"\\u0001\\u001f\x7f\"");
  /* Valid UTF-8 passes through: 2, 3 and 4 byte forms. */
  CHECK_JSON("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 0,
             "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
}
END_TEST

START_TEST(json_invalid_utf8) {
  CHECK_JSON("a\xffz", 0, "\"a\\ufffdz\"");
  CHECK_JSON("\xc0\xaf", 0, "\"\\ufffd\\ufffd\"");         /* overlong '/' */
  CHECK_JSON("\xed\xa0\x80", 0, "\"\\ufffd\\ufffd\\ufffd\""); /* surrogate */
  CHECK_JSON("\xf4\x90\x80\x80", 0,
             "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");            /* > U+10FFFF */
  CHECK_JSON("\xe2\x82", 0, "\"\\ufffd\\ufffd\"");          /* cut short */
  CHECK_JSON("\xc3", 0, "\"\\ufffd\"");                     /* at the end */
}
END_TEST

START_TEST(json_html_safe) {
  CHECK_JSON("</script><b>&", 1,
             "\"\\u003c/script\\u003e\\u003cb\\u003e\\u0026\"");
  CHECK_JSON("</script>", 0, "\"</script>\"");
  CHECK_JSON("x\xe2\x80\xa8y\xe2\x80\xa9", 1, "\"x\\u2028y\\u2029\"");
}
END_TEST

START_TEST(utf8_dup) {
  char *s = sd_utf8_dup("ok \xc3\xa9 \xff\xc0\xaf end");
  ck_assert_str_eq(s, "ok \xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd end");
  free(s);
  s = sd_utf8_dup("");
  ck_assert_str_eq(s, "");
  free(s);
}
END_TEST

START_TEST(csv_fields) {
  char *s;
  s = csv("plain");
  ck_assert_str_eq(s, "plain");
  free(s);
  s = csv("a,b");
  ck_assert_str_eq(s, "\"a,b\"");
  free(s);
  s = csv("say \"hi\"");
  ck_assert_str_eq(s, "\"say \"\"hi\"\"\"");
  free(s);
  s = csv("two\nlines\r");
  ck_assert_str_eq(s, "\"two\nlines\r\"");
  free(s);
  s = csv(NULL);
  ck_assert_str_eq(s, "");
  free(s);
}
END_TEST

START_TEST(labels) {
  char buf[256];
  hs_frame_t f = {"/src/dir/a;b.c", 42, "fn", NULL, 0};
  ck_assert_int_eq(sd_frame_label(&f, buf, sizeof buf), (int)strlen(buf));
  ck_assert_str_eq(buf, "fn (a:b.c:42)");
  hs_frame_t g = {NULL, 0, "memcpy", "/lib/x86_64-linux-gnu/libc.so.6", 0};
  sd_frame_label(&g, buf, sizeof buf);
  ck_assert_str_eq(buf, "memcpy [libc.so.6]");
  hs_frame_t h = {NULL, 0, NULL, "/usr/lib/libz.so", 0x1f0};
  sd_frame_label(&h, buf, sizeof buf);
  ck_assert_str_eq(buf, "[libz.so] +0x1f0");
  hs_frame_t k = {NULL, 0, "new\nline", NULL, 0};
  sd_frame_label(&k, buf, sizeof buf);
  ck_assert_str_eq(buf, "new line [?]");
  ck_assert_int_eq(sd_frame_label(&f, NULL, 0), 13);
  ck_assert_str_eq(sd_basename("/a/b/c.c"), "c.c");
  ck_assert_str_eq(sd_basename("c.c"), "c.c");
  ck_assert_ptr_null(sd_basename(NULL));
}
END_TEST

START_TEST(strmap) {
  sd_strmap_t m = {0};
  int added;
  char key[32];
  ck_assert_uint_eq(sd_strmap_find(&m, "x"), SIZE_MAX);
  for (int i = 0; i < 5000; i++) {
    snprintf(key, sizeof key, "key-%d", i);
    ck_assert_uint_eq(sd_strmap_intern(&m, key, &added), (size_t)i);
    ck_assert_int_eq(added, 1);
  }
  for (int i = 4999; i >= 0; i--) {
    snprintf(key, sizeof key, "key-%d", i);
    ck_assert_uint_eq(sd_strmap_intern(&m, key, &added), (size_t)i);
    ck_assert_int_eq(added, 0);
    ck_assert_uint_eq(sd_strmap_find(&m, key), (size_t)i);
  }
  ck_assert_uint_eq(sd_strmap_find(&m, "key-5000"), SIZE_MAX);
  ck_assert_uint_eq(m.len, 5000);
  sd_strmap_free(&m);
  ck_assert_uint_eq(m.len, 0);
}
END_TEST

int main(void) {
  Suite *s = suite_create("snapdiff_emit");
  TCase *tc = tcase_create("emit");
  tcase_add_test(tc, json_escapes);
  tcase_add_test(tc, json_invalid_utf8);
  tcase_add_test(tc, json_html_safe);
  tcase_add_test(tc, utf8_dup);
  tcase_add_test(tc, csv_fields);
  tcase_add_test(tc, labels);
  tcase_add_test(tc, strmap);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
