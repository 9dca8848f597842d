/* report.c - turns .hsnap files into a report: load, wrappers, raw mode,
 * filters, statistics or comparison, and a timeline's per-snapshot series. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "snapdiff.h"

typedef struct priv {
  hs_snapshot_t *snaps[2]; /* the snapshot(s) the rows' frames point into */
  hs_statistics_t *st;     /* rows */
  hs_statistics_t *stk;    /* stacks */
  char **strs;             /* copies of middle snapshots' program paths */
  size_t nstr;
  uint64_t *series;        /* 2 * nshown * ninput, rows point into it */
} priv_t;

/* Progress goes to a terminal only, on one line rewritten in place, so a
 * redirected stderr stays clean for scripts. */
static void progress(const sd_options_t *opt, const char *fmt, ...) {
  if (!opt->progress)
    return;
  va_list ap;
  va_start(ap, fmt);
  fputs("\rsnapdiff: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputs("\033[K", stderr);
  fflush(stderr);
  va_end(ap);
}

static void progress_done(const sd_options_t *opt) {
  if (opt->progress) {
    fputs("\r\033[K", stderr);
    fflush(stderr);
  }
}

/* Loads path and applies the attribution settings and filters; on failure
 * prints the one line and returns 1. */
static int load_one(const sd_options_t *opt, const char *path, size_t index,
                    size_t total, hs_snapshot_t **out) {
  struct stat sb;
  double mib = stat(path, &sb) == 0 ? (double)sb.st_size / 1048576.0 : 0;
  if (total > 1)
    progress(opt, "loading %zu/%zu %s (%.1f MiB)...", index + 1, total, path,
             mib);
  else
    progress(opt, "loading %s (%.1f MiB)...", path, mib);
  char err[1024];
  hs_snapshot_t *s = NULL;
  int rc = hs_snapshot_load(path, &s, err, sizeof err);
  if (rc != 0) {
    progress_done(opt);
    fprintf(stderr, "snapdiff: %s\n", err);
    return 1;
  }
  for (size_t i = 0; i < opt->nwrapper; i++) {
    rc = hs_snapshot_add_wrapper(s, opt->wrappers[i].kind,
                                 opt->wrappers[i].pattern);
    if (rc != 0)
      goto fail;
  }
  hs_snapshot_set_raw(s, opt->raw);
  if (opt->nfilter) {
    progress(opt, "filtering %s...", path);
    hs_snapshot_t *f = NULL;
    rc = hs_snapshot_filter(s, opt->filters, opt->nfilter, &f);
    if (rc != 0)
      goto fail;
    hs_snapshot_free(s);
    s = f;
  }
  *out = s;
  return 0;
fail:
  progress_done(opt);
  fprintf(stderr, "snapdiff: %s: %s\n", path, hs_strerror(rc));
  hs_snapshot_free(s);
  return 1;
}

static void warn_program(const sd_input_t *a, const sd_input_t *b) {
  const char *pa = a->info.program, *pb = b->info.program;
  if (pa && pb && *pa && *pb && strcmp(pa, pb) != 0)
    fprintf(stderr,
            "snapdiff: warning: %s is from %s but %s is from %s; comparing "
            "snapshots of different programs\n",
            b->path, pb, a->path, pa);
}

static int stats_fail(const sd_options_t *opt, const char *path, int rc) {
  progress_done(opt);
  fprintf(stderr, "snapdiff: %s: %s\n", path, hs_strerror(rc));
  return 1;
}

static sd_row_t *rows_from(const hs_statistics_t *st) {
  size_t n = hs_statistics_count(st);
  sd_row_t *rows = calloc(n ? n : 1, sizeof *rows);
  if (!rows)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    sd_row_t *w = &rows[i];
    const hs_statistic_diff_t *d = hs_statistics_get_diff(st, i);
    if (d) {
      w->frames = d->frames;
      w->nframe = d->nframe;
      w->site = d->site;
      w->size = d->size;
      w->count = d->count;
      w->size_diff = d->size_diff;
      w->count_diff = d->count_diff;
      w->alloc_size = d->alloc_size;
      w->alloc_count = d->alloc_count;
      w->frees = d->frees;
      w->temporary = d->temporary;
      w->temporary_time = d->temporary_time;
      w->alloc_size_diff = d->alloc_size_diff;
      w->alloc_count_diff = d->alloc_count_diff;
      w->temporary_diff = d->temporary_diff;
      w->lifetime = d->lifetime;
      w->lifetime_p50_ns = d->lifetime_p50_ns;
      w->lifetime_p90_ns = d->lifetime_p90_ns;
      w->lifetime_p99_ns = d->lifetime_p99_ns;
    } else {
      const hs_statistic_t *e = hs_statistics_get(st, i);
      w->frames = e->frames;
      w->nframe = e->nframe;
      w->site = e->site;
      w->size = e->size;
      w->count = e->count;
      w->alloc_size = e->alloc_size;
      w->alloc_count = e->alloc_count;
      w->frees = e->frees;
      w->temporary = e->temporary;
      w->temporary_time = e->temporary_time;
      w->lifetime = e->lifetime;
      w->lifetime_p50_ns = e->lifetime_p50_ns;
      w->lifetime_p90_ns = e->lifetime_p90_ns;
      w->lifetime_p99_ns = e->lifetime_p99_ns;
    }
  }
  return rows;
}

/* A byte string that is equal for equal keys: every field hs_frame_t
 * carries, separated by bytes no path or symbol holds. */
static char *key_bytes(const hs_frame_t *f, size_t n) {
  size_t cap = 64;
  for (size_t i = 0; i < n; i++)
    cap += (f[i].filename ? strlen(f[i].filename) : 0) +
           (f[i].function ? strlen(f[i].function) : 0) +
           (f[i].module ? strlen(f[i].module) : 0) + 64;
  char *b = malloc(cap);
  if (!b)
    return NULL;
  b[0] = '\0'; /* a row without frames (a hostile file) has the empty key */
  size_t used = 0;
  for (size_t i = 0; i < n; i++)
    used += (size_t)snprintf(b + used, cap - used, "%s\x1f%u\x1f%s\x1f%s\x1f%llx\x1e",
                             f[i].filename ? f[i].filename : "\x02",
                             f[i].lineno,
                             f[i].function ? f[i].function : "\x02",
                             f[i].module ? f[i].module : "\x02",
                             (unsigned long long)f[i].offset);
  return b;
}

/* Growth first: a timeline answers "what grew"; equal growth keeps the
 * comparison's order. */
static int by_growth(const void *a, const void *b) {
  const sd_row_t *x = a, *y = b;
  if (x->size_diff != y->size_diff)
    return x->size_diff > y->size_diff ? -1 : 1;
  return x < y ? -1 : x > y;
}

/* Fills the series of the shown rows from the middle snapshots; the first
 * and last come from the comparison itself. */
static int timeline_series(const sd_options_t *opt, sd_report_t *r,
                           priv_t *p, char *const *paths, size_t npath) {
  size_t n = r->nshown;
  p->series = calloc(2 * (n ? n : 1) * npath, sizeof *p->series);
  if (!p->series)
    goto oom;
  sd_strmap_t map = {0};
  for (size_t i = 0; i < n; i++) {
    sd_row_t *w = &r->rows[i];
    w->series_size = p->series + 2 * i * npath;
    w->series_count = w->series_size + npath;
    /* Unsigned, so that hostile figures wrap instead of overflowing. */
    w->series_size[0] = w->size - (uint64_t)w->size_diff;
    w->series_count[0] = w->count - (uint64_t)w->count_diff;
    w->series_size[npath - 1] = w->size;
    w->series_count[npath - 1] = w->count;
    char *k = key_bytes(w->frames, w->nframe);
    int added = 0;
    if (!k || sd_strmap_intern(&map, k, &added) == SIZE_MAX) {
      free(k);
      sd_strmap_free(&map);
      goto oom;
    }
    free(k);
  }
  for (size_t s = 1; s + 1 < npath; s++) {
    hs_snapshot_t *snap = NULL;
    if (load_one(opt, paths[s], s, npath, &snap) != 0) {
      sd_strmap_free(&map);
      return 1;
    }
    sd_input_t *in = &r->inputs[s];
    hs_snapshot_get_info(snap, &in->info, sizeof in->info);
    char *prog = strdup(in->info.program ? in->info.program : "");
    char **strs = realloc(p->strs, (p->nstr + 1) * sizeof *strs);
    if (!prog || !strs) {
      free(prog);
      if (strs)
        p->strs = strs;
      hs_snapshot_free(snap);
      sd_strmap_free(&map);
      goto oom;
    }
    p->strs = strs;
    p->strs[p->nstr++] = prog;
    in->info.program = prog;
    warn_program(&r->inputs[0], in);
    hs_statistics_t *st = NULL;
    progress(opt, "statistics of %zu/%zu...", s + 1, npath);
    int rc = hs_snapshot_statistics(snap, r->key, r->cumulative, &st);
    if (rc != 0) {
      hs_snapshot_free(snap);
      sd_strmap_free(&map);
      return stats_fail(opt, paths[s], rc);
    }
    for (size_t i = 0; i < hs_statistics_count(st) && map.len; i++) {
      const hs_statistic_t *e = hs_statistics_get(st, i);
      char *k = key_bytes(e->frames, e->nframe);
      if (!k) {
        hs_statistics_free(st);
        hs_snapshot_free(snap);
        sd_strmap_free(&map);
        goto oom;
      }
      size_t row = sd_strmap_find(&map, k);
      free(k);
      if (row < n) {
        r->rows[row].series_size[s] = e->size;
        r->rows[row].series_count[s] = e->count;
      }
    }
    hs_statistics_free(st);
    hs_snapshot_free(snap);
  }
  sd_strmap_free(&map);
  return 0;
oom:
  progress_done(opt);
  fprintf(stderr, "snapdiff: out of memory\n");
  return 1;
}

void sd_report_free(sd_report_t *r) {
  if (!r)
    return;
  priv_t *p = r->priv_;
  if (p) {
    hs_statistics_free(p->st);
    hs_statistics_free(p->stk);
    hs_snapshot_free(p->snaps[0]);
    hs_snapshot_free(p->snaps[1]);
    for (size_t i = 0; i < p->nstr; i++)
      free(p->strs[i]);
    free(p->strs);
    free(p->series);
    free(p);
  }
  free(r->rows);
  free(r->stacks);
  free(r->inputs);
  free(r);
}

int sd_report_build(const sd_options_t *opt, char *const *paths, size_t npath,
                    sd_report_t **out) {
  *out = NULL;
  sd_report_t *r = calloc(1, sizeof *r);
  priv_t *p = calloc(1, sizeof *p);
  if (!r || !p) {
    free(r);
    free(p);
    fprintf(stderr, "snapdiff: out of memory\n");
    return 1;
  }
  r->priv_ = p;
  r->kind = opt->kind;
  r->key = opt->key;
  r->cumulative = opt->cumulative;
  r->ninput = npath;
  r->inputs = calloc(npath, sizeof *r->inputs);
  if (!r->inputs)
    goto oom;
  for (size_t i = 0; i < npath; i++)
    r->inputs[i].path = paths[i];

  /* The snapshots whose frames the report points into: the only one, or
   * the oldest and the newest; a timeline's middle ones come and go. */
  size_t last = npath - 1;
  if (load_one(opt, paths[0], 0, npath, &p->snaps[0]) != 0)
    goto fail;
  hs_snapshot_get_info(p->snaps[0], &r->inputs[0].info,
                       sizeof r->inputs[0].info);
  hs_snapshot_t *cur = p->snaps[0], *old = NULL;
  if (npath > 1) {
    if (load_one(opt, paths[last], last, npath, &p->snaps[1]) != 0)
      goto fail;
    hs_snapshot_get_info(p->snaps[1], &r->inputs[last].info,
                         sizeof r->inputs[last].info);
    warn_program(&r->inputs[0], &r->inputs[last]);
    cur = p->snaps[1];
    old = p->snaps[0];
  }

  progress(opt, "computing statistics by %s...", sd_key_name(opt->key));
  int rc = old ? hs_snapshot_compare(cur, old, opt->key, opt->cumulative, &p->st)
               : hs_snapshot_statistics(cur, opt->key, opt->cumulative, &p->st);
  if (rc != 0) {
    stats_fail(opt, paths[last], rc);
    goto fail;
  }
  (void)hs_statistics_sort(p->st, opt->sort);
  r->sort = opt->sort;
  r->sort_given = opt->sort_given;
  r->rows = rows_from(p->st);
  if (!r->rows)
    goto oom;
  hs_statistics_info_t si;
  hs_statistics_get_info(p->st, &si, sizeof si);
  r->has_churn = si.has_churn;
  r->alloc_size = si.alloc_size;
  r->alloc_count = si.alloc_count;
  r->temporary = si.temporary;
  r->temporary_time = si.temporary_time;
  r->alloc_size_diff = si.alloc_size_diff;
  r->alloc_count_diff = si.alloc_count_diff;
  r->temporary_diff = si.temporary_diff;
  r->nrows = si.count;
  r->total_size = si.total_size;
  r->total_count = si.total_count;
  r->total_size_diff = si.total_size_diff;
  r->total_count_diff = si.total_count_diff;
  if (opt->kind == SD_TIMELINE)
    qsort(r->rows, r->nrows, sizeof *r->rows, by_growth);
  r->nshown = opt->top && opt->top < r->nrows ? opt->top : r->nrows;

  if (opt->format == SD_FOLDED || opt->format == SD_PPROF ||
      opt->format == SD_HTML) {
    /* The live rows leave out stacks that only churned, which the stack
     * formats weigh: always a list of their own. */
    {
      progress(opt, "computing stacks...");
      rc = old ? hs_snapshot_compare(cur, old, HS_KEY_TRACEBACK, 0, &p->stk)
               : hs_snapshot_statistics(cur, HS_KEY_TRACEBACK, 0, &p->stk);
      if (rc != 0) {
        stats_fail(opt, paths[last], rc);
        goto fail;
      }
      (void)hs_statistics_sort(p->stk, HS_SORT_ALLOCATED);
      r->stacks = rows_from(p->stk);
      if (!r->stacks)
        goto oom;
      r->nstacks = hs_statistics_count(p->stk);
    }
  }
  if (opt->kind == SD_TIMELINE &&
      timeline_series(opt, r, p, paths, npath) != 0) {
    if (r->stacks == r->rows)
      r->stacks = NULL;
    goto fail;
  }
  if (r->stacks == r->rows && r->stacks) {
    /* The writers treat the two lists independently; give stacks a copy so
     * sd_report_free() frees each once. */
    r->stacks = malloc(r->nrows * sizeof *r->stacks);
    if (!r->stacks)
      goto oom;
    memcpy(r->stacks, r->rows, r->nrows * sizeof *r->stacks);
  }
  progress_done(opt);
  *out = r;
  return 0;
oom:
  progress_done(opt);
  fprintf(stderr, "snapdiff: out of memory\n");
fail:
  if (r->stacks == r->rows)
    r->stacks = NULL;
  sd_report_free(r);
  return 1;
}

void sd_other_totals(const sd_report_t *r, sd_other_t *out) {
  /* Summed unsigned: hostile diffs wrap instead of overflowing. */
  uint64_t size = 0, count = 0, usize_diff = 0, ucount_diff = 0;
  for (size_t i = r->nshown; i < r->nrows; i++) {
    size += r->rows[i].size;
    count += r->rows[i].count;
    usize_diff += (uint64_t)r->rows[i].size_diff;
    ucount_diff += (uint64_t)r->rows[i].count_diff;
  }
  out->keys = r->nrows > r->nshown ? r->nrows - r->nshown : 0;
  out->size = size;
  out->count = count;
  out->size_diff = (int64_t)usize_diff;
  out->count_diff = (int64_t)ucount_diff;
}
