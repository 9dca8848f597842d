/* fmt_json.c - the JSON report, schema "heapsnap-stats/1" (docs/json-schema.md
 * describes every field; a change to this file changes that document). */
#include <inttypes.h>

#include "snapdiff.h"

#define SCHEMA "heapsnap-stats/1"

static void frames_json(FILE *out, const sd_row_t *w) {
  fputc('[', out);
  for (size_t k = 0; k < w->nframe; k++) {
    const hs_frame_t *f = &w->frames[k];
    fputs(k ? ", {\"file\": " : "{\"file\": ", out);
    sd_json_str(out, f->filename, 0);
    fprintf(out, ", \"line\": %u, \"function\": ", f->lineno);
    sd_json_str(out, f->function, 0);
    fputs(", \"module\": ", out);
    sd_json_str(out, f->module, 0);
    fprintf(out, ", \"offset\": %" PRIu64 "}", f->offset);
  }
  fputc(']', out);
}

static void key_json(FILE *out, const sd_report_t *r, const sd_row_t *w) {
  char buf[4096];
  if (w->nframe)
    hs_frame_format(&w->frames[w->site < w->nframe ? w->site : 0], r->key, buf,
                    sizeof buf);
  else
    snprintf(buf, sizeof buf, "<unknown>");
  sd_json_str(out, buf, 0);
}

int sd_write_json(FILE *out, const sd_report_t *r) {
  int diff = r->kind != SD_STATISTICS;
  fprintf(out, "{\n  \"schema\": \"%s\",\n  \"kind\": \"%s\",\n", SCHEMA,
          sd_kind_name(r->kind));
  fprintf(out, "  \"key\": \"%s\",\n  \"cumulative\": %s,\n",
          sd_key_name(r->key), r->cumulative ? "true" : "false");
  fprintf(out, "  \"generator\": \"snapdiff %s\",\n", HS_VERSION_STRING);
  fputs("  \"snapshots\": [", out);
  for (size_t i = 0; i < r->ninput; i++) {
    const hs_snapshot_info_t *in = &r->inputs[i].info;
    fputs(i ? ",\n    {\"path\": " : "\n    {\"path\": ", out);
    sd_json_str(out, r->inputs[i].path, 0);
    fputs(", \"program\": ", out);
    sd_json_str(out, in->program, 0);
    fprintf(out,
            ", \"pid\": %" PRIu64 ", \"time_ns\": %" PRIu64
            ", \"traceback_limit\": %d, \"traced_current\": %" PRIu64
            ", \"traced_peak\": %" PRIu64 ", \"dropped_traces\": %" PRIu64
            ", \"dropped_bytes\": %" PRIu64 ", \"size\": %" PRIu64
            ", \"count\": %" PRIu64 ", \"sample_rate\": %" PRIu64 "}",
            in->pid, in->time_ns, in->traceback_limit, in->traced_current,
            in->traced_peak, in->dropped_traces, in->dropped_bytes, in->size,
            in->count, in->sample_rate);
  }
  fputs("\n  ],\n", out);
  fprintf(out, "  \"total\": {\"size\": %" PRIu64 ", \"count\": %" PRIu64,
          r->total_size, r->total_count);
  if (diff)
    fprintf(out, ", \"size_diff\": %" PRId64 ", \"count_diff\": %" PRId64,
            r->total_size_diff, r->total_count_diff);
  fputs("},\n", out);
  fprintf(out, "  \"sort\": \"%s\",\n", sd_sort_name(r->sort));
  if (r->has_churn) {
    fprintf(out,
            "  \"churn\": {\"alloc_size\": %" PRIu64 ", \"alloc_count\": %" PRIu64
            ", \"temporary\": %" PRIu64 ", \"temporary_time\": %" PRIu64,
            r->alloc_size, r->alloc_count, r->temporary, r->temporary_time);
    if (diff)
      fprintf(out,
              ", \"alloc_size_diff\": %" PRId64 ", \"alloc_count_diff\": %" PRId64
              ", \"temporary_diff\": %" PRId64,
              r->alloc_size_diff, r->alloc_count_diff, r->temporary_diff);
    fputs("},\n", out);
  }
  fprintf(out, "  \"keys\": %zu,\n  \"stats\": [", r->nrows);
  for (size_t i = 0; i < r->nshown; i++) {
    const sd_row_t *w = &r->rows[i];
    fputs(i ? ",\n    {\"key\": " : "\n    {\"key\": ", out);
    key_json(out, r, w);
    fprintf(out, ", \"size\": %" PRIu64 ", \"count\": %" PRIu64, w->size,
            w->count);
    if (diff)
      fprintf(out, ", \"size_diff\": %" PRId64 ", \"count_diff\": %" PRId64,
              w->size_diff, w->count_diff);
    if (w->series_size) {
      fputs(", \"series\": [", out);
      for (size_t s = 0; s < r->ninput; s++)
        fprintf(out, "%s{\"size\": %" PRIu64 ", \"count\": %" PRIu64 "}",
                s ? ", " : "", w->series_size[s], w->series_count[s]);
      fputc(']', out);
    }
    if (r->has_churn) {
      fprintf(out,
              ", \"alloc_size\": %" PRIu64 ", \"alloc_count\": %" PRIu64
              ", \"frees\": %" PRIu64 ", \"temporary\": %" PRIu64
              ", \"temporary_time\": %" PRIu64,
              w->alloc_size, w->alloc_count, w->frees, w->temporary,
              w->temporary_time);
      if (diff)
        fprintf(out,
                ", \"alloc_size_diff\": %" PRId64
                ", \"alloc_count_diff\": %" PRId64
                ", \"temporary_diff\": %" PRId64,
                w->alloc_size_diff, w->alloc_count_diff, w->temporary_diff);
      fputs(", \"lifetime\": [", out);
      for (int b = 0; b < HS_LIFETIME_BUCKETS; b++)
        fprintf(out, "%s%" PRIu64, b ? ", " : "",
                w->lifetime ? w->lifetime[b] : 0);
      fprintf(out,
              "], \"lifetime_p50_ns\": %" PRIu64 ", \"lifetime_p90_ns\": %" PRIu64
              ", \"lifetime_p99_ns\": %" PRIu64,
              w->lifetime_p50_ns, w->lifetime_p90_ns, w->lifetime_p99_ns);
    }
    fprintf(out, ", \"site\": %zu, \"frames\": ", w->site);
    frames_json(out, w);
    fputc('}', out);
  }
  fputs(r->nshown ? "\n  ]\n}\n" : "]\n}\n", out);
  return ferror(out) ? -1 : 0;
}
