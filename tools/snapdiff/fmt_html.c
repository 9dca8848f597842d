/* fmt_html.c - the HTML report: report.html (embedded at build time) with
 * the report's data spliced in as JSON that is safe inside <script>. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "snapdiff.h"

extern const char sd_html_template[];
extern const size_t sd_html_template_len;

#define MARK "@SNAPDIFF_DATA@"

static void input_json(FILE *out, const sd_input_t *in) {
  fputs("{\"path\": ", out);
  sd_json_str(out, in->path, 1);
  fputs(", \"program\": ", out);
  sd_json_str(out, in->info.program, 1);
  fprintf(out,
          ", \"time_ns\": %" PRIu64 ", \"size\": %" PRIu64
          ", \"count\": %" PRIu64 ", \"traced_current\": %" PRIu64
          ", \"traced_peak\": %" PRIu64 "}",
          in->info.time_ns, in->info.size, in->info.count,
          in->info.traced_current, in->info.traced_peak);
}

static int row_json(FILE *out, const sd_report_t *r, const sd_row_t *w) {
  char buf[4096];
  static const hs_frame_t none;
  const hs_frame_t *f =
      w->nframe ? &w->frames[w->site < w->nframe ? w->site : 0] : &none;
  hs_frame_format(w->nframe ? f : NULL, r->key, buf, sizeof buf);
  fputs("{\"key\": ", out);
  sd_json_str(out, buf, 1);
  fputs(", \"function\": ", out);
  sd_json_str(out, f->function, 1);
  fputs(", \"file\": ", out);
  sd_json_str(out, f->filename, 1);
  fprintf(out,
          ", \"line\": %u, \"size\": %" PRIu64 ", \"count\": %" PRIu64
          ", \"size_diff\": %" PRId64 ", \"count_diff\": %" PRId64,
          f->lineno, w->size, w->count, w->size_diff, w->count_diff);
  if (w->series_size) {
    fputs(", \"series\": [", out);
    for (size_t s = 0; s < r->ninput; s++)
      fprintf(out, "%s%" PRIu64, s ? ", " : "", w->series_size[s]);
    fputc(']', out);
  }
  if (r->key == HS_KEY_TRACEBACK && w->nframe) {
    /* The whole stack as a tooltip, site first as a debugger shows it. */
    size_t need = 1;
    for (size_t k = 0; k < w->nframe; k++)
      need += (size_t)sd_frame_label(&w->frames[k], NULL, 0) + 1;
    char *stack = malloc(need), *p = stack;
    if (!stack)
      return -1;
    for (size_t k = 0; k < w->nframe; k++) {
      p += sd_frame_label(&w->frames[k], p, need - (size_t)(p - stack));
      *p++ = '\n';
    }
    p[-1] = '\0';
    fputs(", \"stack\": ", out);
    sd_json_str(out, stack, 1);
    free(stack);
  }
  fputc('}', out);
  return 0;
}

/* A stack that a view of the page draws: live, churned or changed. */
static int any_view(const sd_row_t *s) {
  return s->size || s->alloc_size || s->temporary || s->size_diff;
}

/* Frames are labelled once and stacks refer to them by index: a page of
 * 10,000 stacks then stays a few hundred kilobytes. */
static int stacks_json(FILE *out, const sd_report_t *r) {
  sd_strmap_t map = {0};
  size_t nids = 0;
  for (size_t i = 0; i < r->nstacks; i++)
    nids += r->stacks[i].nframe;
  size_t *ids = malloc((nids ? nids : 1) * sizeof *ids);
  char **labels = malloc((nids ? nids : 1) * sizeof *labels);
  int rc = -1;
  size_t nlabel = 0, used = 0;
  char buf[4096];
  if (!ids || !labels)
    goto done;
  for (size_t i = 0; i < r->nstacks; i++) {
    const sd_row_t *s = &r->stacks[i];
    if (!sd_stack_weight(r, s) && !any_view(s))
      continue;
    for (size_t k = 0; k < s->nframe; k++) {
      sd_frame_label(&s->frames[k], buf, sizeof buf);
      int added;
      size_t id = sd_strmap_intern(&map, buf, &added);
      if (id == SIZE_MAX)
        goto done;
      if (added && !(labels[nlabel++] = strdup(buf)))
        goto done;
      ids[used++] = id;
    }
  }
  fputs("\"frames\": [", out);
  for (size_t i = 0; i < nlabel; i++) {
    if (i)
      fputs(", ", out);
    sd_json_str(out, labels[i], 1);
  }
  fputs("],\n\"stacks\": [", out);
  used = 0;
  int first = 1;
  for (size_t i = 0; i < r->nstacks; i++) {
    const sd_row_t *s = &r->stacks[i];
    uint64_t w = sd_stack_weight(r, s);
    if (!w) {
      if (any_view(s))
        used += s->nframe;
      continue;
    }
    fprintf(out, "%s[%" PRIu64, first ? "" : ",\n", w);
    first = 0;
    /* Root first: the page builds its tree from the top down. */
    for (size_t k = s->nframe; k-- > 0;)
      fprintf(out, ",%zu", ids[used + k]);
    used += s->nframe;
    fputc(']', out);
  }
  fputs("],\n", out);
  /* Every stack with a figure for a view: [live, allocated, temporary,
   * live change (signed), frame ids root first]. */
  fputs("\"views\": [", out);
  used = 0;
  first = 1;
  for (size_t i = 0; i < r->nstacks; i++) {
    const sd_row_t *s = &r->stacks[i];
    int weighed = sd_stack_weight(r, s) != 0;
    if (!weighed && !any_view(s))
      continue;
    if (any_view(s)) {
      fprintf(out,
              "%s[%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRId64,
              first ? "" : ",\n", s->size, s->alloc_size, s->temporary,
              s->size_diff);
      first = 0;
      for (size_t k = s->nframe; k-- > 0;)
        fprintf(out, ",%zu", ids[used + k]);
      fputc(']', out);
    }
    used += s->nframe;
  }
  fputs("]", out);
  rc = 0;
done:
  for (size_t i = 0; labels && i < nlabel; i++)
    free(labels[i]);
  free(labels);
  free(ids);
  sd_strmap_free(&map);
  return rc;
}

int sd_write_html(FILE *out, const sd_report_t *r) {
  const char *mark = strstr(sd_html_template, MARK);
  if (!mark)
    return -1;
  fwrite(sd_html_template, 1, (size_t)(mark - sd_html_template), out);
  int diff = r->kind != SD_STATISTICS;
  fprintf(out, "{\"kind\": \"%s\", \"key\": \"%s\", \"cumulative\": %s, "
               "\"version\": \"%s\", \"sort\": \"%s\",\n\"inputs\": [",
          sd_kind_name(r->kind), sd_key_name(r->key),
          r->cumulative ? "true" : "false", HS_VERSION_STRING,
          sd_sort_name(r->sort));
  for (size_t i = 0; i < r->ninput; i++) {
    if (i)
      fputs(",\n", out);
    input_json(out, &r->inputs[i]);
  }
  fprintf(out, "],\n\"total\": {\"size\": %" PRIu64 ", \"count\": %" PRIu64,
          r->total_size, r->total_count);
  if (diff)
    fprintf(out, ", \"size_diff\": %" PRId64 ", \"count_diff\": %" PRId64,
            r->total_size_diff, r->total_count_diff);
  fprintf(out, "},\n\"keys\": %zu,\n\"rows\": [", r->nrows);
  for (size_t i = 0; i < r->nshown; i++) {
    if (i)
      fputs(",\n", out);
    if (row_json(out, r, &r->rows[i]) != 0)
      return -1;
  }
  fputs("],\n", out);
  if (r->nshown < r->nrows) {
    sd_other_t o;
    sd_other_totals(r, &o);
    fprintf(out,
            "\"other\": {\"keys\": %zu, \"size\": %" PRIu64
            ", \"count\": %" PRIu64 ", \"size_diff\": %" PRId64
            ", \"count_diff\": %" PRId64 "},\n",
            o.keys, o.size, o.count, o.size_diff, o.count_diff);
  }
  if (stacks_json(out, r) != 0)
    return -1;
  fputs("}", out);
  const char *rest = mark + strlen(MARK);
  fwrite(rest, 1, sd_html_template_len - (size_t)(rest - sd_html_template),
         out);
  return ferror(out) ? -1 : 0;
}
