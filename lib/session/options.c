/* options.c - the table of HEAPSNAP_* settings and the one check of each
 * value, shared by the library and the launcher. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../http/http.h"
#include "options.h"

#define MAX_FRAMES_TOLD "expected a number of frames from 1 to 256"
#define BOOL_TOLD "expected 1 or 0"
#define SECONDS_TOLD "expected a positive number of seconds"
_Static_assert(HS_MAX_FRAMES == 256, "MAX_FRAMES_TOLD says 256");

static const hs_opt_t opts[] = {
    {"FRAMES", "frames", HS_OPT_INT, 1, HS_MAX_FRAMES, NULL, MAX_FRAMES_TOLD},
    {"OUTPUT", "output", HS_OPT_TEMPLATE, 0, 0, NULL,
     "only %p, %n, %e and %% may follow a %"},
    {"AT_EXIT", NULL, HS_OPT_BOOL, 0, 0, NULL, BOOL_TOLD},
    {"WARM", NULL, HS_OPT_BOOL, 0, 0, NULL, BOOL_TOLD},
    {"SIGNAL", "signal", HS_OPT_SIGNAL, 0, 0, NULL,
     "expected a signal name such as USR2 or RTMIN+3, or a number (not one "
     "whose default action a snapshot must not take)"},
    {"INTERVAL", "interval", HS_OPT_SECONDS, 0, 0, NULL, SECONDS_TOLD},
    {"EVERY_BYTES", "every-bytes", HS_OPT_BYTES, 0, 0, NULL,
     "expected a positive byte count (K, M, G suffixes allowed)"},
    {"AT_PEAK", NULL, HS_OPT_BOOL, 0, 0, NULL, BOOL_TOLD},
    {"PEAK_INTERVAL", NULL, HS_OPT_SECONDS, 0, 0, NULL, SECONDS_TOLD},
    {"FOLLOW_FORK", NULL, HS_OPT_BOOL, 0, 0, NULL, BOOL_TOLD},
    {"FOLLOW_EXEC", NULL, HS_OPT_BOOL, 0, 0, NULL, BOOL_TOLD},
    {"QUIET", NULL, HS_OPT_BOOL, 0, 0, NULL, BOOL_TOLD},
    {"DEFER", NULL, HS_OPT_CHOICE, 0, 0, "0|1|2", "expected 0, 1 or 2"},
    {"UNWIND", NULL, HS_OPT_CHOICE, 0, 0, "fast|libunwind|verify",
     "expected fast, libunwind or verify"},
    {"SAMPLE", "sample", HS_OPT_SAMPLE, 0, 0, NULL,
     "expected 0, default, or a byte count up to 1T (K, M, G suffixes)"},
    {"FAULT_ALLOC", NULL, HS_OPT_FAULT, 0, 0, NULL,
     "expected N or N+ (fail heapsnap's Nth internal allocation, or every "
     "one from the Nth on; 0 only counts them)"},
    {"WRAPPERS", "wrapper", HS_OPT_LIST, 0, 0, NULL,
     "expected function names, file:PATH or module:NAME, separated by "
     "commas, none empty"},
    {"LEAKS", NULL, HS_OPT_BOOL, 0, 0, NULL, BOOL_TOLD},
    {"LEAK_STOP", NULL, HS_OPT_CHOICE, 0, 0, "auto|ptrace|signal",
     "expected auto, ptrace or signal"},
    {"HTTP", "http", HS_OPT_ADDR, 0, 0, NULL,
     "expected [IP:]PORT, [IPV6]:PORT or unix:PATH"},
};

const hs_opt_t *hs__opt_at(size_t i) {
  return i < sizeof opts / sizeof opts[0] ? &opts[i] : NULL;
}

const hs_opt_t *hs__opt_find(const char *name) {
  for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
    if (!strcmp(opts[i].name, name))
      return &opts[i];
  return NULL;
}

static int parse_bytes(const char *v, uint64_t *out) {
  char *end;
  errno = 0;
  if (!*v || *v < '0' || *v > '9')
    return -1;
  unsigned long long n = strtoull(v, &end, 10);
  uint64_t mult = 1;
  switch (*end) {
  case 'k': case 'K': mult = 1ull << 10; end++; break;
  case 'm': case 'M': mult = 1ull << 20; end++; break;
  case 'g': case 'G': mult = 1ull << 30; end++; break;
  default: break;
  }
  if (errno || *end || n > UINT64_MAX / mult)
    return -1;
  *out = (uint64_t)n * mult;
  return 0;
}

static int valid_template(const char *t) {
  if (!*t || strlen(t) >= PATH_MAX - 64)
    return 0;
  for (const char *p = t; *p; p++)
    if (*p == '%') {
      /* A trailing % has nothing after it: the NUL is no directive. */
      p++;
      if (!*p || !strchr("pne%", *p))
        return 0;
    }
  return 1;
}

static const struct {
  const char *name;
  int signo;
} signames[] = {{"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"HUP", SIGHUP},
                {"PROF", SIGPROF}, {"URG", SIGURG},   {"WINCH", SIGWINCH}};

int hs__parse_signal(const char *v) {
  if (!v)
    return -1;
  if (!strncmp(v, "SIG", 3))
    v += 3;
  for (size_t i = 0; i < sizeof signames / sizeof signames[0]; i++)
    if (!strcmp(v, signames[i].name))
      return signames[i].signo;
  if (!strncmp(v, "RTMIN+", 6)) {
    char *end;
    long k = strtol(v + 6, &end, 10);
    if (v[6] && !*end && k >= 0 && SIGRTMIN + k <= SIGRTMAX)
      return SIGRTMIN + (int)k;
  }
  char *end;
  long n = strtol(v, &end, 10);
  /* Signals whose default action or meaning a snapshot must not take. */
  if (*v && !*end && n > 0 && n < NSIG && n != SIGKILL && n != SIGSTOP &&
      n != SIGSEGV && n != SIGBUS && n != SIGFPE && n != SIGILL &&
      n != SIGABRT && n != SIGCHLD)
    return (int)n;
  return -1;
}

static int parse_choice(const char *choices, const char *v, int64_t *out) {
  size_t len = strlen(v);
  int64_t i = 0;
  for (const char *c = choices; *c; i++) {
    const char *bar = strchr(c, '|');
    size_t n = bar ? (size_t)(bar - c) : strlen(c);
    if (n == len && !strncmp(c, v, n)) {
      *out = i;
      return 0;
    }
    c += n + (bar != NULL);
  }
  return -1;
}

int hs__opt_parse(const hs_opt_t *o, const char *v, hs_optval_t *out) {
  memset(out, 0, sizeof *out);
  out->s = v;
  char *end;
  switch (o->kind) {
  case HS_OPT_INT:
    errno = 0;
    out->i = strtol(v, &end, 10);
    return !*v || errno || *end || out->i < o->lo || out->i > o->hi ? -1 : 0;
  case HS_OPT_BOOL:
    if (!strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "on") ||
        !strcmp(v, "true"))
      out->i = 1;
    else if (!(!strcmp(v, "0") || !strcmp(v, "no") || !strcmp(v, "off") ||
               !strcmp(v, "false")))
      return -1;
    return 0;
  case HS_OPT_SECONDS:
    errno = 0;
    out->d = strtod(v, &end);
    return errno || end == v || *end || !(out->d > 0) || out->d > 1e7 ? -1
                                                                       : 0;
  case HS_OPT_BYTES:
    return parse_bytes(v, &out->u) || out->u == 0 ? -1 : 0;
  case HS_OPT_TEMPLATE:
    return valid_template(v) ? 0 : -1;
  case HS_OPT_SIGNAL:
    out->i = hs__parse_signal(v);
    return out->i < 0 ? -1 : 0;
  case HS_OPT_CHOICE:
    return parse_choice(o->choices, v, &out->i);
  case HS_OPT_SAMPLE:
    if (!strcmp(v, "default")) {
      out->i = 1; /* the default rate, which the caller knows */
      return 0;
    }
    if (!strcmp(v, "0"))
      return 0;
    return parse_bytes(v, &out->u) || out->u > (1ull << 40) ? -1 : 0;
  case HS_OPT_FAULT:
    errno = 0;
    if (*v < '0' || *v > '9')
      return -1;
    out->u = strtoull(v, &end, 10);
    if (*end == '+')
      out->i = 1, end++;
    return errno || *end || (out->i && out->u == 0) ? -1 : 0;
  case HS_OPT_ADDR: {
    struct sockaddr_storage ss;
    unsigned alen;
    return hs__http_parse_addr(v, &ss, &alen);
  }
  case HS_OPT_LIST: {
    size_t len = strlen(v);
    if (!len || len >= 4096 || v[0] == ',' || v[len - 1] == ',' ||
        strstr(v, ",,"))
      return -1;
    return 0;
  }
  }
  return -1;
}
