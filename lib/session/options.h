/* options.h - every HEAPSNAP_* setting once: its name, the launcher's flag
 * for it, how a value is checked and what a bad one is told. The library
 * (reading the environment) and the launcher (reading its command line)
 * both check values here, so they cannot disagree. */
#ifndef HS_OPTIONS_H
#define HS_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "../common/internal.h"

typedef enum {
  HS_OPT_INT,      /* a decimal integer in [lo, hi] */
  HS_OPT_BOOL,     /* 1/0, yes/no, on/off, true/false */
  HS_OPT_SECONDS,  /* a positive number of seconds */
  HS_OPT_BYTES,    /* a positive byte count, K, M or G suffix */
  HS_OPT_TEMPLATE, /* a path template: only %p, %n, %e, %% after a % */
  HS_OPT_SIGNAL,   /* a signal a snapshot may take (hs__parse_signal) */
  HS_OPT_CHOICE,   /* one of choices ("a|b|c"): i is its index */
  HS_OPT_SAMPLE,   /* 0, default or a byte count up to 1T */
  HS_OPT_FAULT,    /* N or N+: u is N, i is 1 for N+ */
  HS_OPT_LIST,     /* comma-separated words, none empty */
  HS_OPT_ADDR,     /* where the pprof endpoint listens (hs__http_parse_addr) */
} hs_opt_kind_t;

typedef struct {
  const char *name; /* HEAPSNAP_<name> */
  const char *flag; /* the launcher's long option that sets it, or NULL */
  hs_opt_kind_t kind;
  long lo, hi;         /* HS_OPT_INT */
  const char *choices; /* HS_OPT_CHOICE */
  const char *told;    /* what a bad value is told */
} hs_opt_t;

typedef struct {
  int64_t i;
  uint64_t u;
  double d;
  const char *s; /* the value as given */
} hs_optval_t;

/* The i-th setting, or NULL past the last. */
HS_HIDDEN const hs_opt_t *hs__opt_at(size_t i);
/* The setting HEAPSNAP_<name>, or NULL. */
HS_HIDDEN const hs_opt_t *hs__opt_find(const char *name);
/* 0 with *out filled, or -1: v is not a value of o. */
HS_HIDDEN int hs__opt_parse(const hs_opt_t *o, const char *v,
                            hs_optval_t *out);
/* "USR2", "SIGUSR2", "RTMIN+3" or a number; -1 when not a usable signal. */
HS_HIDDEN int hs__parse_signal(const char *name);

#endif
