/* snapdiff.h - the report every output format is written from (one
 * snapshot, a comparison or a timeline), and the writers' contracts. */
#ifndef SNAPDIFF_H
#define SNAPDIFF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "heapsnap.h"

typedef enum sd_kind {
  SD_STATISTICS = 0, /* snapdiff SNAP */
  SD_COMPARE = 1,    /* snapdiff OLD NEW */
  SD_TIMELINE = 2    /* snapdiff --timeline SNAP... */
} sd_kind_t;

typedef enum sd_format {
  SD_TEXT = 0,
  SD_JSON,
  SD_CSV,
  SD_FOLDED,
  SD_PPROF,
  SD_HTML
} sd_format_t;

/* One key's figures. For SD_STATISTICS the diffs are 0. Frames are most
 * recent first and point into a snapshot the report keeps alive. */
typedef struct sd_row {
  const hs_frame_t *frames;
  size_t nframe;
  size_t site; /* index in frames of the allocation site */
  uint64_t size;
  uint64_t count;
  int64_t size_diff;
  int64_t count_diff;
  uint64_t *series_size;  /* timeline only: size in each snapshot */
  uint64_t *series_count; /* timeline only: count in each snapshot */
  /* Churn (0 without counters); diffs for a comparison. */
  uint64_t alloc_size, alloc_count, frees, temporary, temporary_time;
  int64_t alloc_size_diff, alloc_count_diff, temporary_diff;
  const uint64_t *lifetime; /* HS_LIFETIME_BUCKETS, or NULL */
  uint64_t lifetime_p50_ns, lifetime_p90_ns, lifetime_p99_ns;
} sd_row_t;

/* What the report says about each input snapshot (after filtering). */
typedef struct sd_input {
  const char *path;
  hs_snapshot_info_t info; /* strings live as long as the report */
} sd_input_t;

typedef struct sd_report {
  sd_kind_t kind;
  hs_key_t key;
  int cumulative;
  size_t ninput;
  sd_input_t *inputs;
  uint64_t total_size, total_count; /* the (newest) snapshot's totals */
  int64_t total_size_diff, total_count_diff;
  size_t nrows; /* every key, sorted */
  sd_row_t *rows;
  size_t nshown; /* rows a table shows (--top) */
  int sort;       /* HS_SORT_*: the order, and the stack formats' weight */
  int sort_given; /* --sort was given: tables show the churn columns */
  int has_churn;  /* the (newest) snapshot carries churn counters */
  uint64_t alloc_size, alloc_count, temporary, temporary_time;
  int64_t alloc_size_diff, alloc_count_diff, temporary_diff;
  /* Whole stacks (the traceback key, never cumulative) for the stack
   * formats: folded, pprof and the HTML flame graph. nstacks == 0 and
   * stacks == NULL when the format needs none. */
  size_t nstacks;
  sd_row_t *stacks;
  void *priv_; /* snapshots and statistics that own the strings */
} sd_report_t;

/* Options that shape the report. */
typedef struct sd_options {
  sd_kind_t kind;
  sd_format_t format;
  hs_key_t key;
  int key_given;
  int cumulative;
  size_t top;     /* 0: all */
  int top_given;
  hs_filter_t *filters;
  size_t nfilter;
  struct sd_wrapper {
    int kind;
    const char *pattern;
  } *wrappers;
  size_t nwrapper;
  int raw;
  int sort;       /* HS_SORT_* (--sort) */
  int sort_given;
  int progress; /* stderr is a terminal */
  int color;    /* stdout is a terminal, NO_COLOR unset, output is stdout */
} sd_options_t;

/* The whole command (main.c): parses argv, writes the report, returns the
 * exit status (0, 1 or 2) and never exits; argv may be permuted. Built
 * without main() when SNAPDIFF_NO_MAIN is defined (the fuzzer has its own). */
int snapdiff_main(int argc, char **argv);

/* Loads, filters and summarizes the snapshots at paths. Returns 0, or 1
 * after printing one line naming the file and the fault on stderr.
 * Caller frees *out with sd_report_free(). */
/* The rows past --top, summed for the "N other" line of every format. */
typedef struct sd_other {
  size_t keys;
  uint64_t size, count;
  int64_t size_diff, count_diff;
} sd_other_t;
void sd_other_totals(const sd_report_t *r, sd_other_t *out);

int sd_report_build(const sd_options_t *opt, char *const *paths, size_t npath,
                    sd_report_t **out);
void sd_report_free(sd_report_t *r);

/* Writers: 0, or -1 when out of memory or the stream failed (errno set). */
int sd_write_text(FILE *out, const sd_report_t *r, int color);
int sd_write_json(FILE *out, const sd_report_t *r);
int sd_write_csv(FILE *out, const sd_report_t *r);
int sd_write_folded(FILE *out, const sd_report_t *r);
int sd_write_pprof(FILE *out, const sd_report_t *r);
int sd_write_html(FILE *out, const sd_report_t *r);
/* snapdiff --leaks (fmt_leaks.c): loads path, applies the suppressions
 * file (NULL: none), writes valgrind's summary and each class's sites as
 * text or JSON. Returns the exit status (0, or 1 after a line on stderr). */
int sd_write_leaks(FILE *out, const char *path, int json,
                   const char *suppressions, const struct sd_wrapper *w,
                   size_t nw, int raw);

/* ---- shared helpers (emit.c) ---- */

const char *sd_key_name(hs_key_t key);
const char *sd_kind_name(sd_kind_t kind);
/* A JSON string literal for s (NULL gives null). Bytes that are not UTF-8
 * become U+FFFD so the output is always valid JSON; html != 0 also escapes
 * < > & so the literal can sit inside a <script> element. */
void sd_json_str(FILE *out, const char *s, int html);
/* A copy of s in which every byte that is not UTF-8 became U+FFFD (protobuf
 * strings must be UTF-8). NULL when out of memory; caller frees. */
char *sd_utf8_dup(const char *s);
/* One RFC 4180 field: quoted when it holds a comma, quote, CR or LF. */
void sd_csv_field(FILE *out, const char *s);
/* A frame's flame-graph label: "function (file.c:42)", "function [lib.so]"
 * or "[lib.so] +0x1f0"; never contains ';' or a line break. Returns the
 * length snprintf would. */
int sd_frame_label(const hs_frame_t *f, char *buf, size_t len);
const char *sd_basename(const char *path);
/* The growth a stack format shows for row s: its size for one snapshot,
 * its positive size_diff for a comparison or timeline (else 0). */
uint64_t sd_stack_weight(const sd_report_t *r, const sd_row_t *s);
uint64_t sd_stack_count(const sd_report_t *r, const sd_row_t *s);
/* Stack s's figure for metric (HS_SORT_*): its value for one snapshot,
 * its positive change for a comparison or timeline (else 0). */
uint64_t sd_stack_metric(const sd_report_t *r, const sd_row_t *s, int metric);
/* "live", "allocated", "count" or "temporary". */
const char *sd_sort_name(int sort);

/* A string -> index map (open addressing); keys are copied. */
typedef struct sd_strmap {
  char **keys;
  size_t *vals;
  size_t cap, len;
} sd_strmap_t;
/* The value of key, or inserts it with value len (the next index) and
 * sets *added. Returns SIZE_MAX when out of memory. */
size_t sd_strmap_intern(sd_strmap_t *m, const char *key, int *added);
/* The value of key, or SIZE_MAX when it is absent. */
size_t sd_strmap_find(const sd_strmap_t *m, const char *key);
void sd_strmap_free(sd_strmap_t *m);

#endif
