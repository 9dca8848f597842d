/* fuzz_http_request.c - fuzz target for the pprof endpoint's request
 * parser, fed the way the server feeds it (the bytes so far, again at each
 * read), and for the HEAPSNAP_HTTP address parser. */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fuzz.h"
#include "http/http.h"

/* One parse of buf[0..len) and the invariants of its answer. */
static int parse_checked(const char *buf, size_t len) {
  hs_http_req_t rq;
  memset(&rq, 0xa5, sizeof rq);
  int rc = hs__http_parse(buf, len, &rq);
  if (rc > 0) {
    HS_FUZZ_CHECK((size_t)rc <= len && rc <= HS_HTTP_HEAD_MAX);
    HS_FUZZ_CHECK(rq.method == HS_HTTP_GET || rq.method == HS_HTTP_HEAD);
    HS_FUZZ_CHECK(memchr(rq.path, '\0', sizeof rq.path) != NULL);
    HS_FUZZ_CHECK(rq.path[0] == '/');
    HS_FUZZ_CHECK(rq.seconds >= -1 && rq.seconds <= 999999);
    HS_FUZZ_CHECK(rq.debug >= -1 && rq.debug <= 999999);
    /* The head alone is the same request: nothing after it was read. */
    hs_http_req_t again;
    HS_FUZZ_CHECK(hs__http_parse(buf, (size_t)rc, &again) == rc);
    HS_FUZZ_CHECK(!strcmp(again.path, rq.path));
  } else if (rc == 0) {
    HS_FUZZ_CHECK(len < HS_HTTP_HEAD_MAX);
  } else {
    HS_FUZZ_CHECK(rc == -400 || rc == -405 || rc == -414 || rc == -431 ||
                  rc == -505);
  }
  return rc;
}

int hs_fuzz_http_request(const uint8_t *data, size_t size) {
  /* A private copy of exactly size bytes, so that ASan sees any read past
   * the end the parser would make. */
  char *buf = malloc(size ? size : 1);
  if (!buf)
    return 0;
  memcpy(buf, data, size);
  /* The server reparses from the start after each read and stops at the
   * first answer; reads are cut at arbitrary points, here every 61 bytes
   * and at the end. */
  for (size_t cut = 61; cut < size; cut += 61)
    if (parse_checked(buf, cut) != 0)
      break;
  parse_checked(buf, size);
  free(buf);

  char addr[300];
  size_t n = size < sizeof addr - 1 ? size : sizeof addr - 1;
  memcpy(addr, data, n);
  addr[n] = '\0';
  struct sockaddr_storage ss;
  unsigned alen = 0;
  if (hs__http_parse_addr(addr, &ss, &alen) == 0)
    HS_FUZZ_CHECK(alen > 0 && alen <= sizeof ss);
  return 0;
}

#ifdef HS_FUZZ_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  return hs_fuzz_http_request(data, size);
}
#endif
