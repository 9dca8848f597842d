/* request.c - the endpoint's HTTP request parser: one request head, GET or
 * HEAD, origin-form target; strict, bounded, allocation-free (fuzzed by
 * tests/fuzz/fuzz_http_request.c). */
#include <string.h>

#include "http.h"

/* Header bytes we accept: visible ASCII, space and tab; obs-text (>= 0x80)
 * is allowed in values as RFC 9110 permits, controls never. */
static int field_char(unsigned char c) {
  return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static int token_char(unsigned char c) {
  return c > 0x20 && c < 0x7f && !strchr("\"(),/:;<=>?@[\\]{}", c);
}

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static int name_is(const char *p, size_t n, const char *want) {
  if (strlen(want) != n)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (lower((unsigned char)p[i]) != want[i])
      return 0;
  return 1;
}

/* A query value "N" with 1..6 digits; -1 when it is anything else. */
static int small_number(const char *p, size_t n) {
  if (n == 0 || n > 6)
    return -1;
  int v = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] < '0' || p[i] > '9')
      return -1;
    v = v * 10 + (p[i] - '0');
  }
  return v;
}

/* The query: '&'-separated name=value pairs; seconds and debug must be
 * numbers, others are ignored (Go's pprof handlers ignore them too, and
 * clients add gc=1). Percent-escapes are not decoded: no name we read has
 * one, and a number that has one is not a number. */
static int parse_query(const char *q, size_t n, hs_http_req_t *out) {
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    while (j < n && q[j] != '&')
      j++;
    const char *eq = memchr(q + i, '=', j - i);
    size_t klen = eq ? (size_t)(eq - (q + i)) : j - i;
    const char *val = eq ? eq + 1 : q + j;
    size_t vlen = (size_t)(q + j - val);
    int *slot = NULL;
    if (klen == 7 && !memcmp(q + i, "seconds", 7))
      slot = &out->seconds;
    else if (klen == 5 && !memcmp(q + i, "debug", 5))
      slot = &out->debug;
    if (slot && (*slot = small_number(val, vlen)) < 0)
      return -400;
    i = j + 1;
  }
  return 0;
}

/* Request line: METHOD SP TARGET SP HTTP/1.x, exactly single spaces. */
static int parse_line(const char *p, size_t n, hs_http_req_t *out) {
  const char *sp1 = memchr(p, ' ', n);
  if (!sp1 || sp1 == p)
    return -400;
  size_t mlen = (size_t)(sp1 - p);
  for (size_t i = 0; i < mlen; i++)
    if (!token_char((unsigned char)p[i]))
      return -400;
  const char *t = sp1 + 1, *end = p + n;
  const char *sp2 = memchr(t, ' ', (size_t)(end - t));
  if (!sp2 || sp2 == t)
    return -400;
  const char *ver = sp2 + 1;
  size_t vlen = (size_t)(end - ver);
  if (vlen != 8 || memcmp(ver, "HTTP/", 5) || ver[5] < '0' || ver[5] > '9' ||
      ver[6] != '.' || ver[7] < '0' || ver[7] > '9')
    return -400;
  if (ver[5] != '1' || ver[7] > '1')
    return -505;
  size_t tlen = (size_t)(sp2 - t);
  if (t[0] != '/')
    return -400;
  for (size_t i = 0; i < tlen; i++)
    if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
      return -400;
  const char *qm = memchr(t, '?', tlen);
  size_t plen = qm ? (size_t)(qm - t) : tlen;
  if (plen >= sizeof out->path)
    return -414;
  if (mlen == 3 && !memcmp(p, "GET", 3))
    out->method = HS_HTTP_GET;
  else if (mlen == 4 && !memcmp(p, "HEAD", 4))
    out->method = HS_HTTP_HEAD;
  else
    return -405;
  memcpy(out->path, t, plen);
  out->path[plen] = '\0';
  if (qm) {
    int rc = parse_query(qm + 1, tlen - plen - 1, out);
    if (rc)
      return rc;
  }
  return 0;
}

/* One header line "name: value". We take no body, so a request that
 * announces one (a Content-Length other than 0, any Transfer-Encoding) is
 * refused rather than left in the socket to be read as a next request. */
static int parse_header(const char *p, size_t n) {
  if (n == 0 || p[0] == ' ' || p[0] == '\t')
    return -400; /* obs-fold: refused, as RFC 9112 allows */
  const char *colon = memchr(p, ':', n);
  if (!colon || colon == p)
    return -400;
  size_t klen = (size_t)(colon - p);
  for (size_t i = 0; i < klen; i++)
    if (!token_char((unsigned char)p[i]))
      return -400;
  const char *v = colon + 1, *end = p + n;
  for (const char *c = v; c < end; c++)
    if (!field_char((unsigned char)*c))
      return -400;
  while (v < end && (*v == ' ' || *v == '\t'))
    v++;
  while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
    end--;
  if (name_is(p, klen, "transfer-encoding"))
    return -400;
  if (name_is(p, klen, "content-length")) {
    for (const char *c = v; c < end; c++)
      if (*c != '0')
        return -400;
    if (v == end)
      return -400;
  }
  return 0;
}

int hs__http_parse(const char *buf, size_t len, hs_http_req_t *out) {
  if (len > HS_HTTP_HEAD_MAX)
    len = HS_HTTP_HEAD_MAX;
  /* The head ends at the first CRLF CRLF; a bare LF anywhere is refused
   * (request smuggling lives in line-ending disagreements). */
  size_t head = 0;
  for (size_t i = 0; i + 3 < len; i++)
    if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' &&
        buf[i + 3] == '\n') {
      head = i + 4;
      break;
    }
  for (size_t i = 0; i < (head ? head : len); i++) {
    if (buf[i] == '\n' && (i == 0 || buf[i - 1] != '\r'))
      return -400;
    if (buf[i] == '\r' && i + 1 < len && buf[i + 1] != '\n')
      return -400;
    if (buf[i] == '\0')
      return -400;
  }
  if (!head)
    return len >= HS_HTTP_HEAD_MAX ? -431 : 0;
  memset(out, 0, sizeof *out);
  out->seconds = out->debug = -1;
  const char *p = buf, *end = buf + head - 2; /* up to the final CRLF */
  const char *eol = p;
  while (eol + 1 < end && !(eol[0] == '\r' && eol[1] == '\n'))
    eol++;
  int rc = parse_line(p, (size_t)(eol - p), out);
  if (rc)
    return rc;
  unsigned nheader = 0;
  for (p = eol + 2; p < end; p = eol + 2) {
    eol = p;
    while (eol + 1 < end && !(eol[0] == '\r' && eol[1] == '\n'))
      eol++;
    if (++nheader > 64)
      return -431;
    if ((rc = parse_header(p, (size_t)(eol - p))) != 0)
      return rc;
  }
  return (int)head;
}
