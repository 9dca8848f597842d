/* fmt_folded.c - folded stacks for flamegraph.pl, inferno and speedscope:
 * "root;...;site BYTES" per stack; a comparison shows growth only. */
#include <inttypes.h>

#include "snapdiff.h"

int sd_write_folded(FILE *out, const sd_report_t *r) {
  char buf[4096];
  for (size_t i = 0; i < r->nstacks; i++) {
    const sd_row_t *s = &r->stacks[i];
    uint64_t weight = sd_stack_weight(r, s);
    if (!weight)
      continue;
    if (!s->nframe)
      fputs("[unknown]", out);
    for (size_t k = s->nframe; k-- > 0;) {
      sd_frame_label(&s->frames[k], buf, sizeof buf);
      if (k + 1 < s->nframe)
        fputc(';', out);
      fputs(buf, out);
    }
    fprintf(out, " %" PRIu64 "\n", weight);
  }
  return ferror(out) ? -1 : 0;
}
