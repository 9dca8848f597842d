/* fmt_leaks.c - snapdiff --leaks: a snapshot's leak classes in valgrind
 * memcheck's words, and the sites by line of each class (text or JSON). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "snapdiff.h"

/* Reported in valgrind's order: what needs fixing first. */
static const struct {
  int kind;
  const char *json;
} order[] = {{HS_LEAK_DEFINITE, "definite"},
             {HS_LEAK_INDIRECT, "indirect"},
             {HS_LEAK_POSSIBLE, "possible"},
             {HS_LEAK_REACHABLE, "reachable"},
             {HS_LEAK_SUPPRESSED, "suppressed"}};
#define NORDER (sizeof order / sizeof order[0])

/* The sites of class order[k] from st, the snapshot's statistics by line
 * grouped by class (HS_KEY_BY_LEAK): within a class, in the order of the
 * list (size, count, key). */
static void kind_sites(FILE *out, const hs_statistics_t *st, size_t k,
                       int json, int *first) {
  for (size_t i = 0; i < hs_statistics_count(st); i++) {
    if (hs_statistics_leak_kind(st, i) != order[k].kind)
      continue;
    const hs_statistic_t *s = hs_statistics_get(st, i);
    const hs_frame_t *fr =
        s->nframe ? &s->frames[s->site < s->nframe ? s->site : 0] : NULL;
    if (json) {
      fputs(*first ? "\n    {\"kind\": \"" : ",\n    {\"kind\": \"", out);
      *first = 0;
      fprintf(out, "%s\", \"file\": ", order[k].json);
      sd_json_str(out, fr ? fr->filename : NULL, 0);
      fprintf(out, ", \"lineno\": %u, \"function\": ", fr ? fr->lineno : 0);
      sd_json_str(out, fr ? fr->function : NULL, 0);
      fprintf(out, ", \"size\": %" PRIu64 ", \"count\": %" PRIu64 "}",
              s->size, s->count);
    } else {
      char buf[4096];
      if (fr)
        hs_frame_format(fr, HS_KEY_LINENO, buf, sizeof buf);
      else
        snprintf(buf, sizeof buf, "<unknown>");
      fprintf(out, "  %s: %" PRIu64 " bytes in %" PRIu64 " blocks\n", buf,
              s->size, s->count);
    }
  }
}

int sd_write_leaks(FILE *out, const char *path, int json,
                   const char *suppressions, const struct sd_wrapper *w,
                   size_t nw, int raw) {
  char err[512];
  hs_snapshot_t *snap;
  if (hs_snapshot_load(path, &snap, err, sizeof err) != 0) {
    fprintf(stderr, "snapdiff: %s\n", err);
    return 1;
  }
  hs_snapshot_set_raw(snap, raw);
  for (size_t i = 0; i < nw; i++)
    if (hs_snapshot_add_wrapper(snap, w[i].kind, w[i].pattern) != 0) {
      fprintf(stderr, "snapdiff: out of memory\n");
      hs_snapshot_free(snap);
      return 1;
    }
  hs_leak_summary_t sum;
  if (!hs_snapshot_leak_summary(snap, &sum)) {
    fprintf(stderr,
            "snapdiff: %s: no leak classes (the snapshot was not taken after "
            "a leak check: run with HEAPSNAP_LEAKS=1 or heapsnap run --leaks, "
            "or call hs_leak_check() first)\n",
            path);
    hs_snapshot_free(snap);
    return 1;
  }
  if (suppressions) {
    int64_t n = hs_snapshot_leak_suppress(snap, suppressions, err, sizeof err);
    if (n < 0) {
      fprintf(stderr, "snapdiff: %s\n",
              *err ? err : hs_strerror((int)n));
      hs_snapshot_free(snap);
      return 1;
    }
    hs_snapshot_leak_summary(snap, &sum);
  }
  int first = 1;
  hs_statistics_t *st;
  int rc = hs_snapshot_statistics(
      snap, (hs_key_t)(HS_KEY_LINENO | HS_KEY_BY_LEAK), 0, &st);
  if (rc != 0) {
    hs_snapshot_free(snap);
    fprintf(stderr, "snapdiff: %s: %s\n", path, hs_strerror(rc));
    return 1;
  }
  if (json) {
    fputs("{\n  \"summary\": {", out);
    for (size_t k = 0; k < NORDER; k++)
      fprintf(out,
              "%s\n    \"%s\": {\"bytes\": %" PRIu64 ", \"blocks\": %" PRIu64
              "}",
              k ? "," : "", order[k].json, sum.bytes[order[k].kind],
              sum.blocks[order[k].kind]);
    fprintf(out, ",\n    \"unchecked\": {\"bytes\": %" PRIu64
                 ", \"blocks\": %" PRIu64 "}\n  },\n  \"leaks\": [",
            sum.bytes[HS_LEAK_UNCHECKED], sum.blocks[HS_LEAK_UNCHECKED]);
    for (size_t k = 0; k < NORDER; k++)
      kind_sites(out, st, k, 1, &first);
    fputs(first ? "]\n}\n" : "\n  ]\n}\n", out);
  } else {
    fputs("LEAK SUMMARY:\n", out);
    for (size_t k = 0; k < NORDER; k++)
      fprintf(out, "   %15s: %" PRIu64 " bytes in %" PRIu64 " blocks\n",
              hs_leak_kind_name(order[k].kind), sum.bytes[order[k].kind],
              sum.blocks[order[k].kind]);
    if (sum.blocks[HS_LEAK_UNCHECKED])
      fprintf(out, "   %15s: %" PRIu64 " bytes in %" PRIu64
                   " blocks (allocated after the check)\n",
              "unchecked", sum.bytes[HS_LEAK_UNCHECKED],
              sum.blocks[HS_LEAK_UNCHECKED]);
    for (size_t k = 0; k < NORDER; k++) {
      if (!sum.blocks[order[k].kind])
        continue;
      fprintf(out, "\n%s: %" PRIu64 " bytes in %" PRIu64 " blocks\n",
              hs_leak_kind_name(order[k].kind), sum.bytes[order[k].kind],
              sum.blocks[order[k].kind]);
      kind_sites(out, st, k, 0, &first);
    }
  }
  hs_statistics_free(st);
  hs_snapshot_free(snap);
  return ferror(out) ? 1 : 0;
}
