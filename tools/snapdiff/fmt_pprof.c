/* fmt_pprof.c - the gzipped pprof profile (profile.proto, packed by
 * protobuf-c, compressed by zlib): one sample per stack, with Go's heap
 * sample types in Go's order, alloc_objects/count, alloc_space/bytes,
 * inuse_objects/count, inuse_space/bytes, and period_type space/bytes, so
 * that `go tool pprof -sample_index=...` and continuous profilers read it
 * as a Go heap profile; a comparison gives the growth. */
#include "snapdiff.h"

#ifdef SNAPDIFF_NO_PPROF
#include <errno.h>
int sd_write_pprof(FILE *out, const sd_report_t *r) {
  (void)out;
  (void)r;
  fprintf(stderr, "snapdiff: this build has no pprof support (it needs "
                  "protobuf-c)\n");
  errno = ENOSYS;
  return -1;
}
#else
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "profile.pb-c.h"

typedef Perftools__Profiles__Profile Profile;
typedef Perftools__Profiles__ValueType ValueType;
typedef Perftools__Profiles__Sample Sample;
typedef Perftools__Profiles__Mapping Mapping;
typedef Perftools__Profiles__Location Location;
typedef Perftools__Profiles__Line Line;
typedef Perftools__Profiles__Function Function;

/* Growable arrays of the messages and the maps that de-duplicate them. */
typedef struct builder {
  sd_strmap_t strs;
  char **strv; /* index -> string (the map's own copies) */
  size_t nstrv, capstrv;
  sd_strmap_t fmap, lmap, mmap;
  Function *funcs;
  size_t nfunc, capfunc;
  Location *locs;
  Line *lines;
  size_t nloc, caploc, capline;
  Mapping *maps;
  size_t nmap, capmap;
} builder_t;

static int reserve(void **p, size_t *cap, size_t want, size_t elem) {
  if (want <= *cap)
    return 0;
  size_t n = *cap ? *cap * 2 : 64;
  while (n < want)
    n *= 2;
  void *q = realloc(*p, n * elem);
  if (!q)
    return -1;
  *p = q;
  *cap = n;
  return 0;
}

/* The string table index of s ("" is index 0). -1 when out of memory. */
static int64_t str(builder_t *b, const char *s) {
  /* proto3 strings are UTF-8 and strict decoders reject anything else;
   * callers pass stack buffers, so the table keeps its own copy. */
  char *copy = sd_utf8_dup(s ? s : "");
  if (!copy)
    return -1;
  int added;
  size_t i = sd_strmap_intern(&b->strs, copy, &added);
  if (i == SIZE_MAX || (added && reserve((void **)&b->strv, &b->capstrv,
                                         b->nstrv + 1, sizeof *b->strv))) {
    free(copy);
    return -1;
  }
  if (added)
    b->strv[b->nstrv++] = copy;
  else
    free(copy);
  return (int64_t)i;
}

static uint64_t mapping_of(builder_t *b, const char *path) {
  if (!path)
    return 0;
  int added;
  size_t i = sd_strmap_intern(&b->mmap, path, &added);
  if (i == SIZE_MAX)
    return UINT64_MAX;
  if (added) {
    if (reserve((void **)&b->maps, &b->capmap, b->nmap + 1, sizeof *b->maps))
      return UINT64_MAX;
    Mapping m = PERFTOOLS__PROFILES__MAPPING__INIT;
    m.id = b->nmap + 1;
    m.filename = str(b, path);
    /* Frames arrive symbolized: tell pprof not to symbolize them again. */
    m.has_functions = m.has_filenames = m.has_line_numbers =
        m.has_inline_frames = 1;
    if (m.filename < 0)
      return UINT64_MAX;
    b->maps[b->nmap++] = m;
  }
  return i + 1;
}

static uint64_t function_of(builder_t *b, const hs_frame_t *f) {
  char name[4096], key[8192];
  if (f->function)
    snprintf(name, sizeof name, "%s", f->function);
  else
    sd_frame_label(f, name, sizeof name);
  snprintf(key, sizeof key, "%s\x1f%s", name, f->filename ? f->filename : "");
  int added;
  size_t i = sd_strmap_intern(&b->fmap, key, &added);
  if (i == SIZE_MAX)
    return 0;
  if (added) {
    if (reserve((void **)&b->funcs, &b->capfunc, b->nfunc + 1,
                sizeof *b->funcs))
      return 0;
    Function fn = PERFTOOLS__PROFILES__FUNCTION__INIT;
    fn.id = b->nfunc + 1;
    fn.name = str(b, name);
    fn.system_name = fn.name;
    fn.filename = str(b, f->filename);
    if (fn.name < 0 || fn.filename < 0)
      return 0;
    b->funcs[b->nfunc++] = fn;
  }
  return i + 1;
}

static uint64_t location_of(builder_t *b, const hs_frame_t *f) {
  uint64_t fid = function_of(b, f), mid = mapping_of(b, f->module);
  if (!fid || mid == UINT64_MAX)
    return 0;
  char key[128];
  snprintf(key, sizeof key, "%llu:%u:%llu:%llx", (unsigned long long)fid,
           f->lineno, (unsigned long long)mid, (unsigned long long)f->offset);
  int added;
  size_t i = sd_strmap_intern(&b->lmap, key, &added);
  if (i == SIZE_MAX)
    return 0;
  if (added) {
    if (reserve((void **)&b->locs, &b->caploc, b->nloc + 1, sizeof *b->locs) ||
        reserve((void **)&b->lines, &b->capline, b->nloc + 1, sizeof *b->lines))
      return 0;
    Location l = PERFTOOLS__PROFILES__LOCATION__INIT;
    Line ln = PERFTOOLS__PROFILES__LINE__INIT;
    l.id = b->nloc + 1;
    l.mapping_id = mid;
    l.address = f->offset;
    ln.function_id = fid;
    ln.line = f->lineno;
    b->locs[b->nloc] = l;
    b->lines[b->nloc] = ln;
    b->nloc++;
  }
  return i + 1;
}

/* Streams buf through gzip (zlib's gzip wrapper: windowBits 15 + 16). */
static int gzip_write(FILE *out, const uint8_t *buf, size_t len) {
  z_stream z;
  memset(&z, 0, sizeof z);
  if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return -1;
  uint8_t chunk[65536];
  z.next_in = (Bytef *)(uintptr_t)buf;
  int rc;
  size_t left = len;
  do {
    uInt take = left > (1u << 30) ? (1u << 30) : (uInt)left;
    z.avail_in = take;
    left -= take;
    int flush = left ? Z_NO_FLUSH : Z_FINISH;
    do {
      z.next_out = chunk;
      z.avail_out = sizeof chunk;
      rc = deflate(&z, flush);
      if (rc == Z_STREAM_ERROR)
        break;
      fwrite(chunk, 1, sizeof chunk - z.avail_out, out);
    } while (z.avail_out == 0);
  } while (left && rc != Z_STREAM_ERROR);
  deflateEnd(&z);
  return rc == Z_STREAM_END && !ferror(out) ? 0 : -1;
}

int sd_write_pprof(FILE *out, const sd_report_t *r) {
  builder_t b;
  memset(&b, 0, sizeof b);
  int ok = 0;
  Sample *samples = calloc(r->nstacks ? r->nstacks : 1, sizeof *samples);
  Sample **sample_ptrs = calloc(r->nstacks ? r->nstacks : 1, sizeof *sample_ptrs);
  int64_t *values = calloc(4 * (r->nstacks ? r->nstacks : 1), sizeof *values);
  size_t nids = 0;
  for (size_t i = 0; i < r->nstacks; i++)
    nids += r->stacks[i].nframe;
  uint64_t *ids = calloc(nids ? nids : 1, sizeof *ids);
  ValueType vt[5];
  ValueType *vtp[4] = {&vt[0], &vt[1], &vt[2], &vt[3]};
  Function **fptrs = NULL;
  Location **lptrs = NULL;
  Line **lnptrs = NULL;
  Mapping **mptrs = NULL;
  uint8_t *packed = NULL;
  int64_t comment[1];
  if (!samples || !sample_ptrs || !values || !ids)
    goto done;

  if (str(&b, "") != 0)
    goto done;
  for (int i = 0; i < 5; i++) {
    ValueType v = PERFTOOLS__PROFILES__VALUE_TYPE__INIT;
    vt[i] = v;
  }
  vt[0].type = str(&b, "alloc_objects");
  vt[0].unit = str(&b, "count");
  vt[1].type = str(&b, "alloc_space");
  vt[1].unit = str(&b, "bytes");
  vt[2].type = str(&b, "inuse_objects");
  vt[2].unit = vt[0].unit;
  vt[3].type = str(&b, "inuse_space");
  vt[3].unit = vt[1].unit;
  vt[4].type = str(&b, "space");
  vt[4].unit = vt[1].unit;
  /* The program first: pprof takes mapping 1 as the main binary. */
  const char *program = r->inputs[r->ninput - 1].info.program;
  if (program && *program && mapping_of(&b, program) == UINT64_MAX)
    goto done;

  size_t nsample = 0, used = 0;
  for (size_t i = 0; i < r->nstacks; i++) {
    const sd_row_t *s = &r->stacks[i];
    int64_t v[4] = {(int64_t)sd_stack_metric(r, s, HS_SORT_COUNT),
                    (int64_t)sd_stack_metric(r, s, HS_SORT_ALLOCATED),
                    (int64_t)sd_stack_count(r, s),
                    (int64_t)sd_stack_metric(r, s, HS_SORT_LIVE)};
    if (!v[0] && !v[1] && !v[2] && !v[3])
      continue;
    Sample sm = PERFTOOLS__PROFILES__SAMPLE__INIT;
    sm.location_id = ids + used;
    for (size_t k = 0; k < s->nframe; k++) {
      uint64_t id = location_of(&b, &s->frames[k]);
      if (!id)
        goto done;
      ids[used++] = id;
    }
    sm.n_location_id = s->nframe;
    sm.value = values + 4 * nsample;
    memcpy(sm.value, v, sizeof v);
    sm.n_value = 4;
    samples[nsample] = sm;
    sample_ptrs[nsample] = &samples[nsample];
    nsample++;
  }

  char text[8192];
  if (r->kind == SD_STATISTICS)
    snprintf(text, sizeof text, "heapsnap snapdiff %s: live memory of %s",
             HS_VERSION_STRING, r->inputs[0].path);
  else
    snprintf(text, sizeof text,
             "heapsnap snapdiff %s: growth from %s to %s (stacks that shrank "
             "are left out)",
             HS_VERSION_STRING, r->inputs[0].path,
             r->inputs[r->ninput - 1].path);
  comment[0] = str(&b, text);

  fptrs = calloc(b.nfunc + 1, sizeof *fptrs);
  lptrs = calloc(b.nloc + 1, sizeof *lptrs);
  lnptrs = calloc(b.nloc + 1, sizeof *lnptrs);
  mptrs = calloc(b.nmap + 1, sizeof *mptrs);
  if (!fptrs || !lptrs || !lnptrs || !mptrs || comment[0] < 0 || vt[4].type < 0)
    goto done;
  for (size_t i = 0; i < b.nfunc; i++)
    fptrs[i] = &b.funcs[i];
  for (size_t i = 0; i < b.nloc; i++) {
    lnptrs[i] = &b.lines[i];
    b.locs[i].line = &lnptrs[i];
    b.locs[i].n_line = 1;
    lptrs[i] = &b.locs[i];
  }
  for (size_t i = 0; i < b.nmap; i++)
    mptrs[i] = &b.maps[i];

  Profile p = PERFTOOLS__PROFILES__PROFILE__INIT;
  p.n_sample_type = 4;
  p.sample_type = vtp;
  p.n_sample = nsample;
  p.sample = sample_ptrs;
  p.n_mapping = b.nmap;
  p.mapping = mptrs;
  p.n_location = b.nloc;
  p.location = lptrs;
  p.n_function = b.nfunc;
  p.function = fptrs;
  p.n_string_table = b.nstrv;
  p.string_table = b.strv;
  p.time_nanos = (int64_t)r->inputs[r->ninput - 1].info.time_ns;
  if (r->ninput > 1)
    p.duration_nanos = (int64_t)(r->inputs[r->ninput - 1].info.time_ns -
                                 r->inputs[0].info.time_ns);
  p.period_type = &vt[4];
  p.period = 1;
  p.n_comment = 1;
  p.comment = comment;
  /* Go's heap profiles default to inuse_space; --sort picks another. */
  p.default_sample_type = r->sort == HS_SORT_ALLOCATED ? vt[1].type
                          : r->sort == HS_SORT_COUNT   ? vt[0].type
                                                       : vt[3].type;

  size_t len = perftools__profiles__profile__get_packed_size(&p);
  packed = malloc(len ? len : 1);
  if (!packed)
    goto done;
  perftools__profiles__profile__pack(&p, packed);
  ok = gzip_write(out, packed, len) == 0;
done:
  free(packed);
  free(fptrs);
  free(lptrs);
  free(lnptrs);
  free(mptrs);
  free(samples);
  free(sample_ptrs);
  free(values);
  free(ids);
  free(b.funcs);
  free(b.locs);
  free(b.lines);
  free(b.maps);
  for (size_t i = 0; i < b.nstrv; i++)
    free(b.strv[i]);
  free(b.strv);
  sd_strmap_free(&b.strs);
  sd_strmap_free(&b.fmap);
  sd_strmap_free(&b.lmap);
  sd_strmap_free(&b.mmap);
  return ok ? 0 : -1;
}
#endif
