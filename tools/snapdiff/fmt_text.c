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
      hs_statistic_t st = {w->frames, w->nframe, w->site, w->size, w->count};
      n = hs_statistic_format(&st, r->key, buf, len);
    } else {
      hs_statistic_diff_t d = {w->frames, w->nframe,  w->site,      w->size,
                               w->size_diff, w->count, w->count_diff};
      n = hs_statistic_diff_format(&d, r->key, buf, len);
    }
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
  fprintf(out, "[ Top %zu of %zu %s%s%s ]\n", r->nshown, r->nrows,
          noun(r->key),
          r->kind == SD_COMPARE    ? " by difference"
          : r->kind == SD_TIMELINE ? " by growth, first to last"
                                   : "",
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
