/* http.h - the pprof endpoint's parts (HEAPSNAP_HTTP): the request parser
 * (request.c), the profile encoder (profile.c) and the server (server.c). */
#ifndef HS_HTTP_H
#define HS_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "../common/internal.h"

/* ---- request.c: one request head, parsed without allocating ---- */

/* The request head is read whole before anything is decided; a head that
 * has not ended within this many bytes is answered 431. */
#define HS_HTTP_HEAD_MAX 8192
#define HS_HTTP_PATH_MAX 256

enum hs_http_method { HS_HTTP_GET = 1, HS_HTTP_HEAD = 2 };

typedef struct hs_http_req {
  int method;                      /* HS_HTTP_GET or HS_HTTP_HEAD */
  char path[HS_HTTP_PATH_MAX];     /* NUL-terminated, without the query */
  int seconds;                     /* ?seconds=N; -1 when absent */
  int debug;                       /* ?debug=N; -1 when absent */
} hs_http_req_t;

/* Parses buf[0..len), the bytes received so far. Returns the length of a
 * complete head (through its blank line), 0 when more bytes are needed
 * (and may still fit HS_HTTP_HEAD_MAX), or the negative HTTP status to
 * answer: -400 malformed, -405 a method other than GET/HEAD, -414 a path
 * too long, -431 a head too large, -505 not HTTP/1.x. Never reads past
 * buf + len; buf need not be NUL-terminated. */
HS_HIDDEN int hs__http_parse(const char *buf, size_t len, hs_http_req_t *out);

/* ---- profile.c: pprof and text profiles from snapshots ---- */

/* A growable byte buffer on the real allocator (callers hold the guard).
 * err sticks once an allocation failed; the bytes are then incomplete. */
typedef struct hs_buf {
  uint8_t *p;
  size_t len, cap;
  int err;
} hs_buf_t;
HS_HIDDEN void hs__buf_put(hs_buf_t *b, const void *p, size_t n);
HS_HIDDEN void hs__buf_printf(hs_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
HS_HIDDEN void hs__buf_free(hs_buf_t *b);

enum hs_profile_form {
  HS_PROFILE_PPROF = 0, /* gzipped profile.proto */
  HS_PROFILE_TEXT = 1,  /* ?debug=1 */
};
enum hs_profile_kind {
  HS_PROFILE_HEAP = 0,   /* /debug/pprof/heap: default inuse_space */
  HS_PROFILE_ALLOCS = 1, /* /debug/pprof/allocs: default alloc_space */
};

typedef struct hs_snapshot hs_snapshot_t;

/* Writes the profile of snap (or, with old, of snap minus old: per stack,
 * what was allocated between the two and the change of the live heap, as
 * Go's delta profiles subtract every value) to out, in form. Symbolizes
 * the snapshots. 0 or HS_ENOMEM. */
HS_HIDDEN int hs__profile_write(hs_snapshot_t *snap, hs_snapshot_t *old,
                                int kind, int form, hs_buf_t *out);

/* ---- server.c ---- */

/* Reads HEAPSNAP_HTTP (and HEAPSNAP_HTTP_FILE) and, when set, binds and
 * starts the server thread; a bad value or a failed bind is said on stderr
 * and leaves tracing as it is. Call once, at load, after tracing started. */
HS_HIDDEN void hs__http_start(void);

/* In a fork child (the runtime's fork table): the child serves nothing and
 * closes the listening socket and the parent's connections. */
HS_HIDDEN void hs__http_fork_child(void);

/* Parses an HEAPSNAP_HTTP value: "unix:PATH", "[V6]:PORT", "V4:PORT",
 * "localhost:PORT", ":PORT" or "PORT" (the last two on 127.0.0.1). No name
 * lookups. Fills *addr (a struct sockaddr_storage) and *alen; 0 or -1. */
HS_HIDDEN int hs__http_parse_addr(const char *v, void *addr,
                                  unsigned *alen);

#endif
