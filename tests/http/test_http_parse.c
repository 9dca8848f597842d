/* test_http_parse.c - the endpoint's request parser and HEAPSNAP_HTTP
 * address parser: what they accept, and the status each refusal gets. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "http/http.h"

static int parse(const char *s, hs_http_req_t *rq) {
  return hs__http_parse(s, strlen(s), rq);
}

START_TEST(test_good) {
  hs_http_req_t rq;
  const char *s = "GET /debug/pprof/heap?gc=1&seconds=30 HTTP/1.1\r\n"
                  "Host: 127.0.0.1:6060\r\nUser-Agent: Go-http-client/1.1\r\n"
                  "Accept-Encoding: gzip\r\n\r\n";
  ck_assert_int_eq(parse(s, &rq), (int)strlen(s));
  ck_assert_int_eq(rq.method, HS_HTTP_GET);
  ck_assert_str_eq(rq.path, "/debug/pprof/heap");
  ck_assert_int_eq(rq.seconds, 30);
  ck_assert_int_eq(rq.debug, -1);
  s = "HEAD /debug/pprof/?debug=1 HTTP/1.0\r\n\r\n";
  ck_assert_int_eq(parse(s, &rq), (int)strlen(s));
  ck_assert_int_eq(rq.method, HS_HTTP_HEAD);
  ck_assert_int_eq(rq.debug, 1);
  ck_assert_int_eq(rq.seconds, -1);
  /* Bytes after the head are not the parser's. */
  s = "GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\nGET";
  ck_assert_int_eq(parse(s, &rq), (int)strlen(s) - 3);
}
END_TEST

START_TEST(test_incomplete) {
  hs_http_req_t rq;
  ck_assert_int_eq(parse("", &rq), 0);
  ck_assert_int_eq(parse("GET / HTTP/1.1\r\n", &rq), 0);
  ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: x\r\n\r", &rq), 0);
}
END_TEST

START_TEST(test_refused) {
  hs_http_req_t rq;
  static const struct {
    const char *req;
    int status;
  } cases[] = {
      {"GET / HTTP/1.1\n\n", -400},
      {"GET / HTTP/1.1\r\nA: b\n\r\n", -400},
      {"GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", -400},
      {"GET /\x01 HTTP/1.1\r\n\r\n", -400},
      {"GET / HTTP/1.1 \r\n\r\n", -400},
      {"GET http://x/ HTTP/1.1\r\n\r\n", -400},
      {"GET / HTTP/2.0\r\n\r\n", -505},
      {"GET / HTTX/1.1\r\n\r\n", -400},
      {"PUT / HTTP/1.1\r\n\r\n", -405},
      {"G(T / HTTP/1.1\r\n\r\n", -400},
      {"GET /?seconds=1x HTTP/1.1\r\n\r\n", -400},
      {"GET /?seconds= HTTP/1.1\r\n\r\n", -400},
      {"GET /?debug=9999999 HTTP/1.1\r\n\r\n", -400},
      {"GET / HTTP/1.1\r\n: v\r\n\r\n", -400},
      {"GET / HTTP/1.1\r\nA b: v\r\n\r\n", -400},
      {"GET / HTTP/1.1\r\n\tfold\r\n\r\n", -400},
      {"GET / HTTP/1.1\r\nContent-Length: 1\r\n\r\n", -400},
      {"GET / HTTP/1.1\r\ncontent-length:\r\n\r\n", -400},
      {"GET / HTTP/1.1\r\nTRANSFER-ENCODING: chunked\r\n\r\n", -400},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int want = cases[i].status;
    int got = parse(cases[i].req, &rq);
    ck_assert_msg(got == want, "case %zu: %d, want %d", i, got, want);
  }
  /* A NUL inside the head. */
  ck_assert_int_eq(hs__http_parse("GET /\0 HTTP/1.1\r\n\r\n", 19, &rq), -400);
}
END_TEST

START_TEST(test_bounds) {
  hs_http_req_t rq;
  size_t n = HS_HTTP_HEAD_MAX + 100;
  char *big = malloc(n);
  ck_assert_ptr_nonnull(big);
  memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
  memset(big + 19, 'a', n - 19);
  ck_assert_int_eq(hs__http_parse(big, HS_HTTP_HEAD_MAX - 1, &rq), 0);
  ck_assert_int_eq(hs__http_parse(big, HS_HTTP_HEAD_MAX, &rq), -431);
  ck_assert_int_eq(hs__http_parse(big, n, &rq), -431);
  /* A long path is 414, not a buffer overrun. */
  memcpy(big, "GET /", 5);
  memset(big + 5, 'p', 1000);
  memcpy(big + 1005, " HTTP/1.1\r\n\r\n", 13);
  ck_assert_int_eq(hs__http_parse(big, 1018, &rq), -414);
  /* 65 headers: too many. */
  size_t o = (size_t)sprintf(big, "GET / HTTP/1.1\r\n");
  for (int i = 0; i < 65; i++)
    o += (size_t)sprintf(big + o, "H%d: v\r\n", i);
  o += (size_t)sprintf(big + o, "\r\n");
  ck_assert_int_eq(hs__http_parse(big, o, &rq), -431);
  free(big);
}
END_TEST

START_TEST(test_addr) {
  struct sockaddr_storage ss;
  unsigned len;
  struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
  ck_assert_int_eq(hs__http_parse_addr("6060", &ss, &len), 0);
  ck_assert_int_eq(s4->sin_family, AF_INET);
  ck_assert_int_eq(ntohs(s4->sin_port), 6060);
  ck_assert_uint_eq(ntohl(s4->sin_addr.s_addr), 0x7f000001u);
  ck_assert_int_eq(hs__http_parse_addr(":0", &ss, &len), 0);
  ck_assert_uint_eq(ntohl(s4->sin_addr.s_addr), 0x7f000001u);
  ck_assert_int_eq(hs__http_parse_addr("localhost:80", &ss, &len), 0);
  ck_assert_uint_eq(ntohl(s4->sin_addr.s_addr), 0x7f000001u);
  ck_assert_int_eq(hs__http_parse_addr("0.0.0.0:6060", &ss, &len), 0);
  ck_assert_uint_eq(s4->sin_addr.s_addr, 0);
  ck_assert_int_eq(hs__http_parse_addr("[::1]:6060", &ss, &len), 0);
  ck_assert_int_eq(ss.ss_family, AF_INET6);
  ck_assert_int_eq(hs__http_parse_addr("unix:/tmp/x.sock", &ss, &len), 0);
  ck_assert_int_eq(ss.ss_family, AF_UNIX);
  ck_assert_str_eq(((struct sockaddr_un *)&ss)->sun_path, "/tmp/x.sock");
  static const char *bad[] = {"", "x", "65536", "1:2:3", "-1", "host:80",
                              "[::1]", "[::1]6060", "::1:80", "unix:",
                              "127.0.0.1:", "127.0.0.1:123456",
                              "999.0.0.1:80"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    ck_assert_msg(hs__http_parse_addr(bad[i], &ss, &len) == -1, "%s", bad[i]);
  char lng[200];
  memset(lng, 'a', sizeof lng);
  memcpy(lng, "unix:", 5);
  lng[sizeof lng - 1] = '\0';
  ck_assert_int_eq(hs__http_parse_addr(lng, &ss, &len), -1);
}
END_TEST

int main(void) {
  Suite *s = suite_create("http_parse");
  TCase *tc = tcase_create("parse");
  tcase_add_test(tc, test_good);
  tcase_add_test(tc, test_incomplete);
  tcase_add_test(tc, test_refused);
  tcase_add_test(tc, test_bounds);
  tcase_add_test(tc, test_addr);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
