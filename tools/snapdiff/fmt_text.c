/* fmt_text.c - the text report: tracemalloc's lines (hs_statistic_format,
 * hs_statistic_diff_format), an "other" line, a total line, a timeline. */
#include <stdlib.h>

#include "snapdiff.h"

#define RED "\033[31m"
#define GREEN "\033[32m"
#define BOLD "\033[1m"
#define RESET "\033[0m"

static const char *noun(hs_key_t key) {
  switch (key) {
  case HS_KEY_FILENAME:
    return "files";
  case HS_KEY_FUNCTION:
    return "functions";
  case HS_KEY_TRACEBACK:
    return "tracebacks";
  case HS_KEY_LINENO:
  default:
    return "lines";
  }
}

static int fmt_ns(uint64_t ns, char *buf, size_t len) {
  if (ns < 10000)
    return snprintf(buf, len, "%llu ns", (unsigned long long)ns);
  if (ns < 10000000)
    return snprintf(buf, len, "%.0f us", (double)ns / 1e3);
  if (ns < 10000000000ull)
    return snprintf(buf, len, "%.0f ms", (double)ns / 1e6);
  return snprintf(buf, len, "%.0f s", (double)ns / 1e9);
}

/* With --sort, after tracemalloc's line: what the key allocated in all,
 * its temporary blocks and its freed blocks' lifetimes. */
static int churn_text(const sd_report_t *r, const sd_row_t *w, char *buf,
                      size_t len) {
  char a[32], ad[32], p50[32], p99[32];
  hs_format_size((double)w->alloc_size, 0, a, sizeof a);
  hs_format_size((double)w->alloc_size_diff, 1, ad, sizeof ad);
  if (w->frees) {
    fmt_ns(w->lifetime_p50_ns, p50, sizeof p50);
    fmt_ns(w->lifetime_p99_ns, p99, sizeof p99);
  } else {
    snprintf(p50, sizeof p50, "-"); /* nothing freed: no lifetime yet */
    snprintf(p99, sizeof p99, "-");
  }
  if (r->kind == SD_STATISTICS)
    return snprintf(buf, len,
                    ", allocated=%s, allocations=%llu, temporary=%llu, "
                    "frees=%llu, lifetime p50<=%s p99<=%s",
                    a, (unsigned long long)w->alloc_count,
                    (unsigned long long)w->temporary,
                    (unsigned long long)w->frees, p50, p99);
  return snprintf(buf, len,
                  ", allocated=%s (%s), allocations=%llu (%+lld), "
                  "temporary=%llu (%+lld), lifetime p50<=%s p99<=%s",
                  a, ad, (unsigned long long)w->alloc_count,
                  (long long)w->alloc_count_diff,
                  (unsigned long long)w->temporary,
                  (long long)w->temporary_diff, p50, p99);
}

/* The formatters return snprintf's length: retry once with room for it. */
static int put_formatted(FILE *out, const sd_report_t *r, const sd_row_t *w,
                         const char *color) {
  char small[1024], *buf = small;
  int n = 0;
  for (int pass = 0; pass < 2; pass++) {
    size_t len = pass ? (size_t)n + 1 : sizeof small;
    if (pass && !(buf = malloc(len)))
      return -1;
    if (r->kind == SD_STATISTICS) {
      hs_statistic_t st = {.frames = w->frames,
                           .nframe = w->nframe,
                           .site = w->site,
                           .size = w->size,
                           .count = w->count};
      n = hs_statistic_format(&st, r->key, buf, len);
    } else {
      hs_statistic_diff_t d = {.frames = w->frames,
                               .nframe = w->nframe,
                               .site = w->site,
                               .size = w->size,
                               .size_diff = w->size_diff,
                               .count = w->count,
                               .count_diff = w->count_diff};
      n = hs_statistic_diff_format(&d, r->key, buf, len);
    }
    if (n >= 0 && (size_t)n < len && r->sort_given)
      n += churn_text(r, w, buf + n, len - (size_t)n);
    if (n < 0 || (size_t)n < len)
      break;
  }
  if (color)
    fprintf(out, "%s%s%s\n", color, buf, RESET);
  else
    fprintf(out, "%s\n", buf);
  if (buf != small)
    free(buf);
  return 0;
}

static int put_traceback(FILE *out, const sd_row_t *w) {
  int n = hs_traceback_format(w->frames, w->nframe, 0, 0, NULL, 0);
  if (n <= 0)
    return 0;
  char *buf = malloc((size_t)n + 1);
  if (!buf)
    return -1;
  hs_traceback_format(w->frames, w->nframe, 0, 0, buf, (size_t)n + 1);
  fputs(buf, out);
  free(buf);
  return 0;
}

static void put_timeline(FILE *out, const sd_report_t *r) {
  fprintf(out, "Timeline of %zu snapshots:\n", r->ninput);
  fprintf(out, "  %4s %10s %12s %10s  %s\n", "#", "time (s)", "size", "count",
          "snapshot");
  uint64_t t0 = r->inputs[0].info.time_ns;
  for (size_t i = 0; i < r->ninput; i++) {
    const hs_snapshot_info_t *in = &r->inputs[i].info;
    char sz[32];
    hs_format_size((double)in->size, 0, sz, sizeof sz);
    double t = ((double)in->time_ns - (double)t0) / 1e9;
    fprintf(out, "  %4zu %10.3f %12s %10llu  %s\n", i + 1, t, sz,
            (unsigned long long)in->count, r->inputs[i].path);
  }
  fputc('\n', out);
}

int sd_write_text(FILE *out, const sd_report_t *r, int color) {
  int diff = r->kind != SD_STATISTICS;
  if (r->kind == SD_TIMELINE)
    put_timeline(out, r);
  fprintf(out, "[ Top %zu of %zu %s%s%s%s%s ]\n", r->nshown, r->nrows,
          noun(r->key),
          r->kind == SD_COMPARE    ? " by difference"
          : r->kind == SD_TIMELINE ? " by growth, first to last"
                                   : "",
          r->sort_given && r->kind != SD_TIMELINE ? ", sorted by " : "",
          r->sort_given && r->kind != SD_TIMELINE ? sd_sort_name(r->sort) : "",
          r->cumulative ? ", cumulative" : "");
  for (size_t i = 0; i < r->nshown; i++) {
    const sd_row_t *w = &r->rows[i];
    const char *c = NULL;
    if (color && diff && w->size_diff > 0)
      c = RED;
    else if (color && diff && w->size_diff < 0)
      c = GREEN;
    if (put_formatted(out, r, w, c) != 0)
      return -1;
    if (r->key == HS_KEY_TRACEBACK && put_traceback(out, w) != 0)
      return -1;
  }
  char sz[32], dsz[32];
  if (r->nshown < r->nrows) {
    sd_other_t o;
    sd_other_totals(r, &o);
    hs_format_size((double)o.size, 0, sz, sizeof sz);
    hs_format_size((double)o.size_diff, 1, dsz, sizeof dsz);
    if (diff)
      fprintf(out, "%zu other: size=%s (%s), count=%llu (%+lld)\n", o.keys,
              sz, dsz, (unsigned long long)o.count, (long long)o.count_diff);
    else
      fprintf(out, "%zu other: size=%s, count=%llu\n", o.keys, sz,
              (unsigned long long)o.count);
  }
  hs_format_size((double)r->total_size, 0, sz, sizeof sz);
  hs_format_size((double)r->total_size_diff, 1, dsz, sizeof dsz);
  const char *b = color ? BOLD : "", *e = color ? RESET : "";
  if (diff)
    fprintf(out, "%sTotal: size=%s (%s), count=%llu (%+lld)%s\n", b, sz, dsz,
            (unsigned long long)r->total_count,
            (long long)r->total_count_diff, e);
  else
    fprintf(out, "%sTotal: size=%s, count=%llu%s\n", b, sz,
            (unsigned long long)r->total_count, e);
  if (r->sort_given && r->has_churn) {
    hs_format_size((double)r->alloc_size, 0, sz, sizeof sz);
    hs_format_size((double)r->alloc_size_diff, 1, dsz, sizeof dsz);
    if (diff)
      fprintf(out, "Allocated: size=%s (%s), count=%llu (%+lld), "
                   "temporary=%llu (%+lld)\n",
              sz, dsz, (unsigned long long)r->alloc_count,
              (long long)r->alloc_count_diff,
              (unsigned long long)r->temporary, (long long)r->temporary_diff);
    else
      fprintf(out, "Allocated: size=%s, count=%llu, temporary=%llu\n", sz,
              (unsigned long long)r->alloc_count,
              (unsigned long long)r->temporary);
  } else if (r->sort_given) {
    fputs("Churn: not in these snapshots (written before heapsnap kept "
          "it)\n",
          out);
  }
  /* What the figures cannot show by themselves: estimates and losses. */
  for (size_t i = 0; i < r->ninput; i++) {
    const hs_snapshot_info_t *in = &r->inputs[i].info;
    if (in->sample_rate) {
      hs_format_size((double)in->sample_rate, 0, sz, sizeof sz);
      fprintf(out, "Sampled: %s: one allocation per %s on average; sizes "
                   "and counts are estimates\n",
              r->inputs[i].path, sz);
    }
    if (in->dropped_traces) {
      hs_format_size((double)in->dropped_bytes, 0, sz, sizeof sz);
      fprintf(out, "Dropped: %s: %llu allocations (%s) were not traced: "
                   "heapsnap was out of memory\n",
              r->inputs[i].path, (unsigned long long)in->dropped_traces, sz);
    }
  }
  return ferror(out) ? -1 : 0;
}
