/* fmt_csv.c - the CSV report: a header row, then one row per shown key
 * (RFC 4180: CRLF records, fields quoted only when they need it). */
#include <inttypes.h>
#include <stdlib.h>

#include "snapdiff.h"

int sd_write_csv(FILE *out, const sd_report_t *r) {
  int diff = r->kind != SD_STATISTICS;
  fputs("rank,key,file,line,function,module,size,count", out);
  if (diff)
    fputs(",size_diff,count_diff", out);
  if (r->kind == SD_TIMELINE)
    for (size_t s = 0; s < r->ninput; s++)
      fprintf(out, ",size_%zu", s + 1);
  if (r->sort_given) {
    fputs(",alloc_size,alloc_count,frees,temporary,temporary_time,"
          "lifetime_p50_ns,lifetime_p90_ns,lifetime_p99_ns",
          out);
    if (diff)
      fputs(",alloc_size_diff,alloc_count_diff,temporary_diff", out);
  }
  if (r->key == HS_KEY_TRACEBACK)
    fputs(",stack", out);
  fputs("\r\n", out);
  char buf[4096];
  for (size_t i = 0; i < r->nshown; i++) {
    const sd_row_t *w = &r->rows[i];
    static const hs_frame_t none;
    const hs_frame_t *f =
        w->nframe ? &w->frames[w->site < w->nframe ? w->site : 0] : &none;
    fprintf(out, "%zu,", i + 1);
    hs_frame_format(w->nframe ? f : NULL, r->key, buf, sizeof buf);
    sd_csv_field(out, buf);
    fputc(',', out);
    sd_csv_field(out, f->filename);
    if (f->lineno)
      fprintf(out, ",%u,", f->lineno);
    else
      fputs(",,", out);
    sd_csv_field(out, f->function);
    fputc(',', out);
    sd_csv_field(out, f->module);
    fprintf(out, ",%" PRIu64 ",%" PRIu64, w->size, w->count);
    if (diff)
      fprintf(out, ",%" PRId64 ",%" PRId64, w->size_diff, w->count_diff);
    if (r->kind == SD_TIMELINE)
      for (size_t s = 0; s < r->ninput; s++)
        fprintf(out, ",%" PRIu64, w->series_size ? w->series_size[s] : 0);
    if (r->sort_given) {
      fprintf(out,
              ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
              ",%" PRIu64 ",%" PRIu64 ",%" PRIu64,
              w->alloc_size, w->alloc_count, w->frees, w->temporary,
              w->temporary_time, w->lifetime_p50_ns, w->lifetime_p90_ns,
              w->lifetime_p99_ns);
      if (diff)
        fprintf(out, ",%" PRId64 ",%" PRId64 ",%" PRId64, w->alloc_size_diff,
                w->alloc_count_diff, w->temporary_diff);
    }
    if (r->key == HS_KEY_TRACEBACK) {
      /* Root first, as the folded format: the stack reads top-down. */
      fputc(',', out);
      size_t need = 1;
      for (size_t k = 0; k < w->nframe; k++)
        need += (size_t)sd_frame_label(&w->frames[k], NULL, 0) + 1;
      char *stack = malloc(need), *p = stack;
      if (!stack)
        return -1;
      *p = '\0';
      for (size_t k = w->nframe; k-- > 0;) {
        if (p != stack)
          *p++ = ';';
        p += sd_frame_label(&w->frames[k], p, need - (size_t)(p - stack));
      }
      sd_csv_field(out, stack);
      free(stack);
    }
    fputs("\r\n", out);
  }
  return ferror(out) ? -1 : 0;
}
