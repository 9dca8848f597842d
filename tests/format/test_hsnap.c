/* test_hsnap.c - the .hsnap format: round trips, truncation at every length,
 * every bit flipped (with and without a recomputed CRC), forged counts and
 * indexes, versioning, and the atomic writer's failure paths. */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "format/hsnap.h"

/* ---- snapshots built by hand -------------------------------------------- */

/* hs_snapshot_free() belongs to the snapshot layer; this frees exactly what
 * the reader documents it allocates. */
static void free_snap(struct hs_snapshot *s) {
  if (!s)
    return;
  free(s->strtab);
  free(s->locs);
  free(s->stack_locs);
  free(s->stacks);
  free(s->groups);
  for (uint32_t i = 0; s->modules.mods && i < s->modules.count; i++)
    free(s->modules.mods[i].path);
  free(s->modules.mods);
  free(s);
}

static uint32_t str_add(struct hs_snapshot *s, const char *str) {
  size_t l = strlen(str) + 1;
  if (s->strtab_len + l > s->strtab_cap) {
    s->strtab_cap = (uint32_t)((s->strtab_len + l) * 2);
    s->strtab = realloc(s->strtab, s->strtab_cap);
    ck_assert_ptr_nonnull(s->strtab);
  }
  memcpy(s->strtab + s->strtab_len, str, l);
  uint32_t off = s->strtab_len;
  s->strtab_len += (uint32_t)l;
  return off;
}

static void set_module(hs_module_t *m, const char *path, unsigned idlen,
                       uint64_t bias, uint64_t start, uint64_t end) {
  m->path = strdup(path);
  m->build_id_len = idlen;
  for (unsigned i = 0; i < idlen; i++)
    m->build_id[i] = (uint8_t)(0xA0 + i * 7);
  m->bias = bias;
  m->start = start;
  m->end = end;
}

/* Every shape the format must carry: non-ASCII and empty strings, build-ids
 * of 20, 0 and 64 bytes, unknown functions and files, frames outside every
 * module, stacks of 0 locs, domains, sizes past 2^40. */
static struct hs_snapshot *sample(void) {
  struct hs_snapshot *s = calloc(1, sizeof *s);
  ck_assert_ptr_nonnull(s);
  s->symbolized = 1;
  s->pid = 123456789012ull;
  s->time_ns = 1717171717171717171ull;
  s->nframe = 16;
  s->traced_current = (1ull << 40) + 3;
  s->traced_peak = UINT64_MAX - 1;
  s->dropped_traces = 17;
  s->dropped_bytes = 4242;
  s->tracer_memory = 1u << 20;

  uint32_t empty = str_add(s, "");
  uint32_t fmain = str_add(s, "main");
  uint32_t futf = str_add(s, "grüße_関数_✓");
  uint32_t file = str_add(s, "/src/ä/b.c");
  uint32_t fop = str_add(s, "operator new(unsigned long)");
  s->program = str_add(s, "/usr/bin/prögram");

  s->modules.count = 3;
  s->modules.mods = calloc(3, sizeof(hs_module_t));
  set_module(&s->modules.mods[0], "/usr/bin/prögram", 20, 0x555555554000ull,
             0x555555554000ull, 0x555555600000ull);
  set_module(&s->modules.mods[1], "/lib/x86_64-linux-gnu/libc.so.6", 0,
             0x7f0000000000ull, 0x7f0000001000ull, 0x7f0000200000ull);
  set_module(&s->modules.mods[2], "[vdso]", 64, 0x7fffffffe000ull,
             0x7fffffffe000ull, 0x7ffffffff000ull);

  hs_loc_t locs[] = {
      {fmain, file, 42, 0, 0x1234},
      {HS_NOSTR, HS_NOSTR, 0, -1, 0xffffffffffff0000ull},
      {futf, empty, 7, 2, 0x10},
      {fop, HS_NOSTR, 0, 1, 1ull << 40},
      {HS_NOSTR, file, 3, 0, 5},
      {empty, empty, UINT32_MAX, 1, UINT64_MAX},
  };
  s->nlocs = sizeof locs / sizeof locs[0];
  s->locs = malloc(sizeof locs);
  memcpy(s->locs, locs, sizeof locs);

  uint32_t sl[] = {0, 1, 2, 3, 4, 5, 0, 0, 3};
  s->nstack_locs = 9;
  s->stack_locs = malloc(sizeof sl);
  memcpy(s->stack_locs, sl, sizeof sl);

  hs_snap_stack_t st[] = {{0, 3}, {3, 0}, {3, 6}, {8, 1}, {0, 9}};
  s->nstacks = 5;
  s->stacks = malloc(sizeof st);
  memcpy(s->stacks, st, sizeof st);

  hs_group_t g[] = {{0, 0, 16, 3},
                    {7, 2, 1ull << 41, 1},
                    {UINT32_MAX, 1, 0, 5},
                    {0, 4, 3, 1ull << 33},
                    {1, 3, (1ull << 40) + 1, UINT64_MAX}};
  s->ngroups = 5;
  s->groups = malloc(sizeof g);
  memcpy(s->groups, g, sizeof g);
  return s;
}

static void str_eq(const struct hs_snapshot *a, uint32_t ra,
                   const struct hs_snapshot *b, uint32_t rb) {
  ck_assert_uint_eq(ra, rb);
  if (ra == HS_NOSTR)
    return;
  ck_assert_uint_lt(rb, b->strtab_len);
  ck_assert_str_eq(a->strtab + ra, b->strtab + rb);
}

static void snap_eq(const struct hs_snapshot *a, const struct hs_snapshot *b) {
  ck_assert_int_eq(b->symbolized, 1);
  ck_assert_uint_eq(a->pid, b->pid);
  ck_assert_uint_eq(a->time_ns, b->time_ns);
  ck_assert_uint_eq(a->nframe, b->nframe);
  ck_assert_uint_eq(a->traced_current, b->traced_current);
  ck_assert_uint_eq(a->traced_peak, b->traced_peak);
  ck_assert_uint_eq(a->dropped_traces, b->dropped_traces);
  ck_assert_uint_eq(a->dropped_bytes, b->dropped_bytes);
  ck_assert_uint_eq(a->tracer_memory, b->tracer_memory);
  str_eq(a, a->program, b, b->program);
  /* The writer's strings keep their offsets; module paths follow them. */
  ck_assert_uint_ge(b->strtab_len, a->strtab_len);
  if (a->strtab_len)
    ck_assert_int_eq(memcmp(a->strtab, b->strtab, a->strtab_len), 0);
  ck_assert_ptr_null(b->raw);
  ck_assert_ptr_null(b->raw_first);
  ck_assert_ptr_null(b->raw_n);
  ck_assert_ptr_null(b->wrappers);

  ck_assert_uint_eq(a->modules.count, b->modules.count);
  for (uint32_t i = 0; i < a->modules.count; i++) {
    const hs_module_t *x = &a->modules.mods[i], *y = &b->modules.mods[i];
    ck_assert_str_eq(x->path, y->path);
    ck_assert_uint_eq(x->build_id_len, y->build_id_len);
    ck_assert_int_eq(memcmp(x->build_id, y->build_id, x->build_id_len), 0);
    ck_assert_uint_eq(x->bias, y->bias);
    ck_assert_uint_eq(x->start, y->start);
    ck_assert_uint_eq(x->end, y->end);
  }
  ck_assert_uint_eq(a->nlocs, b->nlocs);
  for (uint32_t i = 0; i < a->nlocs; i++) {
    str_eq(a, a->locs[i].function, b, b->locs[i].function);
    str_eq(a, a->locs[i].file, b, b->locs[i].file);
    ck_assert_uint_eq(a->locs[i].line, b->locs[i].line);
    ck_assert_int_eq(a->locs[i].module, b->locs[i].module);
    ck_assert_uint_eq(a->locs[i].offset, b->locs[i].offset);
  }
  ck_assert_uint_eq(a->nstack_locs, b->nstack_locs);
  for (uint32_t i = 0; i < a->nstack_locs; i++)
    ck_assert_uint_eq(a->stack_locs[i], b->stack_locs[i]);
  ck_assert_uint_eq(a->nstacks, b->nstacks);
  for (uint32_t i = 0; i < a->nstacks; i++) {
    ck_assert_uint_eq(a->stacks[i].first, b->stacks[i].first);
    ck_assert_uint_eq(a->stacks[i].nloc, b->stacks[i].nloc);
  }
  ck_assert_uint_eq(a->ngroups, b->ngroups);
  for (uint64_t i = 0; i < a->ngroups; i++) {
    ck_assert_uint_eq(a->groups[i].domain, b->groups[i].domain);
    ck_assert_uint_eq(a->groups[i].stack, b->groups[i].stack);
    ck_assert_uint_eq(a->groups[i].size, b->groups[i].size);
    ck_assert_uint_eq(a->groups[i].count, b->groups[i].count);
  }
}

/* What a consumer relies on in a snapshot the reader accepted. */
static void check_inbounds(const struct hs_snapshot *s) {
  uint32_t n = s->strtab_len;
  ck_assert(n == 0 || s->strtab[n - 1] == '\0');
  ck_assert(s->program == HS_NOSTR || s->program < n);
  for (uint32_t i = 0; i < s->modules.count; i++) {
    ck_assert_ptr_nonnull(s->modules.mods[i].path);
    ck_assert_uint_le(s->modules.mods[i].build_id_len, 64);
    ck_assert_uint_le(s->modules.mods[i].start, s->modules.mods[i].end);
  }
  for (uint32_t i = 0; i < s->nlocs; i++) {
    ck_assert(s->locs[i].function == HS_NOSTR || s->locs[i].function < n);
    ck_assert(s->locs[i].file == HS_NOSTR || s->locs[i].file < n);
    ck_assert(s->locs[i].module >= -1 &&
              s->locs[i].module < (int64_t)s->modules.count);
  }
  for (uint32_t i = 0; i < s->nstack_locs; i++)
    ck_assert_uint_lt(s->stack_locs[i], s->nlocs);
  for (uint32_t i = 0; i < s->nstacks; i++)
    ck_assert_uint_le((uint64_t)s->stacks[i].first + s->stacks[i].nloc,
                      s->nstack_locs);
  for (uint64_t i = 0; i < s->ngroups; i++)
    ck_assert_uint_lt(s->groups[i].stack, s->nstacks);
}

/* ---- file surgery ---------------------------------------------------------
 */

static uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) {
  return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}
static void wr16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}
static void wr32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}
static void wr64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

#define HOFF(f) offsetof(struct hs_hsnap_header, f)
#define DOFF(f) offsetof(struct hs_hsnap_section, f)

/* Recomputes the CRC the way docs/format.md says: what a forger does. */
static void fix_crc(uint8_t *b, size_t len) {
  uLong c = crc32(0L, b, 16);
  c = crc32(c, b + 20, (uInt)(len - 20));
  wr32(b + HOFF(crc), (uint32_t)c);
}

/* The directory entry of a section type. */
static uint8_t *dir_entry(uint8_t *b, uint32_t type) {
  uint32_t hs = rd32(b + HOFF(header_size)), n = rd32(b + HOFF(nsections));
  for (uint32_t i = 0; i < n; i++) {
    uint8_t *d = b + hs + i * sizeof(struct hs_hsnap_section);
    if (rd32(d + DOFF(type)) == type)
      return d;
  }
  ck_abort_msg("no section of type %u", type);
  return NULL;
}
static uint8_t *sec_data(uint8_t *b, uint32_t type) {
  return b + rd64(dir_entry(b, type) + DOFF(offset));
}

static uint8_t *encode(const struct hs_snapshot *s, size_t *len) {
  uint8_t *b;
  ck_assert_int_eq(hs__hsnap_encode(s, &b, len), 0);
  return b;
}
static uint8_t *sample_image(size_t *len) {
  struct hs_snapshot *s = sample();
  uint8_t *b = encode(s, len);
  free_snap(s);
  return b;
}

struct tsec {
  uint32_t type, rs;
  uint64_t count;
  uint8_t *data;
  uint64_t len;
};

/* Re-lays a file out from its sections, as another writer (an older or a
 * newer minor) might: a longer header, extra sections, wider records. */
static uint8_t *relayout(const uint8_t *hdr, uint32_t header_size,
                         uint16_t major, uint16_t minor, struct tsec *sec,
                         size_t n, size_t *outlen) {
  uint64_t size = header_size + n * sizeof(struct hs_hsnap_section);
  for (size_t i = 0; i < n; i++)
    size = ((size + 7) & ~7ull) + sec[i].len;
  uint8_t *b = calloc(1, size);
  memcpy(b, hdr, sizeof(struct hs_hsnap_header));
  memset(b + sizeof(struct hs_hsnap_header), 0xAB,
         header_size - sizeof(struct hs_hsnap_header));
  wr16(b + HOFF(major), major);
  wr16(b + HOFF(minor), minor);
  wr32(b + HOFF(header_size), header_size);
  wr32(b + HOFF(nsections), (uint32_t)n);
  wr64(b + HOFF(file_size), size);
  uint64_t pos = header_size + n * sizeof(struct hs_hsnap_section);
  for (size_t i = 0; i < n; i++) {
    pos = (pos + 7) & ~7ull;
    uint8_t *d = b + header_size + i * sizeof(struct hs_hsnap_section);
    wr32(d + DOFF(type), sec[i].type);
    wr32(d + DOFF(record_size), sec[i].rs);
    wr64(d + DOFF(count), sec[i].count);
    wr64(d + DOFF(offset), pos);
    wr64(d + DOFF(length), sec[i].len);
    memcpy(b + pos, sec[i].data, sec[i].len);
    pos += sec[i].len;
  }
  fix_crc(b, size);
  *outlen = size;
  return b;
}

static size_t split(uint8_t *b, struct tsec *out) {
  uint32_t hs = rd32(b + HOFF(header_size)), n = rd32(b + HOFF(nsections));
  for (uint32_t i = 0; i < n; i++) {
    uint8_t *d = b + hs + i * sizeof(struct hs_hsnap_section);
    out[i] = (struct tsec){rd32(d + DOFF(type)), rd32(d + DOFF(record_size)),
                           rd64(d + DOFF(count)), b + rd64(d + DOFF(offset)),
                           rd64(d + DOFF(length))};
  }
  return n;
}

static int read_buf(const uint8_t *b, size_t len, struct hs_snapshot **out,
                    char *err, size_t errlen) {
  return hs__hsnap_read_mem(b, len, "t.hsnap", out, err, errlen);
}

/* Expects a clean rejection with code and a message naming the file. */
static void expect_reject(const uint8_t *b, size_t len, int code,
                          const char *needle) {
  char err[256];
  struct hs_snapshot *s = (void *)1;
  int rc = read_buf(b, len, &s, err, sizeof err);
  ck_assert_msg(rc == code, "got %d (%s), want %d", rc, err, code);
  ck_assert_ptr_null(s);
  ck_assert_msg(strncmp(err, "t.hsnap: ", 9) == 0, "message: %s", err);
  if (needle)
    ck_assert_msg(strstr(err, needle), "message '%s' lacks '%s'", err, needle);
}

static char tmpdir[256];
static void mk_tmpdir(void) {
  const char *t = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/hsnap-test-XXXXXX", t && *t ? t : "/tmp");
  ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}
static void rm_tmpdir(void) {
  DIR *d = opendir(tmpdir);
  if (!d)
    return;
  struct dirent *e;
  char p[600];
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
      snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
      unlink(p);
    }
  closedir(d);
  rmdir(tmpdir);
  hs__hsnap_set_write_fn(NULL);
  hs__hsnap_set_random_fn(NULL);
}
static int dir_entries(void) {
  DIR *d = opendir(tmpdir);
  ck_assert_ptr_nonnull(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
  closedir(d);
  return n;
}
static void put_file(const char *path, const void *b, size_t len) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(b, 1, len, f), len);
  ck_assert_int_eq(fclose(f), 0);
}
static uint8_t *get_file(const char *path, size_t *len) {
  struct stat st;
  ck_assert_int_eq(stat(path, &st), 0);
  uint8_t *b = malloc((size_t)st.st_size + 1);
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  *len = fread(b, 1, (size_t)st.st_size, f);
  fclose(f);
  return b;
}

/* ---- round trips -----------------------------------------------------------
 */

START_TEST(round_trip_file) {
  struct hs_snapshot *s = sample(), *l = NULL;
  char path[600], err[256] = "unset";
  snprintf(path, sizeof path, "%s/rt.hsnap", tmpdir);
  ck_assert_int_eq(hs__hsnap_write(s, path), 0);
  ck_assert_int_eq(hs__hsnap_read(path, &l, err, sizeof err), 0);
  ck_assert_str_eq(err, "");
  snap_eq(s, l);
  check_inbounds(l);
  ck_assert_int_eq(dir_entries(), 1); /* no temp file left behind */
  struct stat st;
  ck_assert_int_eq(stat(path, &st), 0);
  mode_t um = umask(0);
  umask(um);
  ck_assert_uint_eq(st.st_mode & 0777, 0644 & ~um);

  /* What was read writes and reads back the same (its strtab now holds the
   * module paths too, which the writer appends again). */
  size_t n2;
  uint8_t *b2 = encode(l, &n2);
  free_snap(l);
  l = NULL;
  ck_assert_int_eq(read_buf(b2, n2, &l, NULL, 0), 0);
  snap_eq(s, l);
  free(b2);
  free_snap(l);
  free_snap(s);
}
END_TEST

START_TEST(round_trip_empty) {
  struct hs_snapshot *s = calloc(1, sizeof *s), *l = NULL;
  s->symbolized = 1;
  s->program = HS_NOSTR;
  size_t n;
  uint8_t *b = encode(s, &n);
  ck_assert_int_eq(read_buf(b, n, &l, NULL, 0), 0);
  snap_eq(s, l);
  ck_assert_uint_eq(l->strtab_len, 0);
  ck_assert_ptr_nonnull(l->strtab); /* never NULL arrays */
  ck_assert_ptr_nonnull(l->locs);
  free_snap(l);
  free(b);
  free_snap(s);
}
END_TEST

START_TEST(writer_rejects_bad_snapshots) {
  char path[600];
  snprintf(path, sizeof path, "%s/bad.hsnap", tmpdir);
  struct hs_snapshot *s = sample();
  s->symbolized = 0;
  ck_assert_int_eq(hs__hsnap_write(s, path), HS_EINVAL);
  s->symbolized = 1;
  s->groups[1].stack = 5;
  ck_assert_int_eq(hs__hsnap_write(s, path), HS_EINVAL);
  s->groups[1].stack = 2;
  s->locs[0].module = 3;
  ck_assert_int_eq(hs__hsnap_write(s, path), HS_EINVAL);
  s->locs[0].module = 0;
  s->stacks[3].nloc = 2;
  ck_assert_int_eq(hs__hsnap_write(s, path), HS_EINVAL);
  s->stacks[3].nloc = 1;
  s->locs[2].file = s->strtab_len;
  ck_assert_int_eq(hs__hsnap_write(s, path), HS_EINVAL);
  s->locs[2].file = HS_NOSTR;
  ck_assert_int_eq(hs__hsnap_write(NULL, path), HS_EINVAL);
  ck_assert_int_eq(hs__hsnap_write(s, NULL), HS_EINVAL);
  ck_assert_int_eq(dir_entries(), 0);
  ck_assert_int_eq(hs__hsnap_write(s, path), 0);
  free_snap(s);
}
END_TEST

/* ---- damage -----------------------------------------------------------------
 */

START_TEST(truncated_at_every_length) {
  size_t n;
  uint8_t *b = sample_image(&n);
  char path[600], err[256];
  snprintf(path, sizeof path, "%s/trunc.hsnap", tmpdir);
  for (size_t len = 0; len < n; len++) {
    /* A copy of exactly len bytes so ASan sees any read past the end. */
    uint8_t *c = malloc(len ? len : 1);
    memcpy(c, b, len);
    struct hs_snapshot *s = NULL;
    int rc = read_buf(c, len, &s, err, sizeof err);
    ck_assert_msg(rc == HS_ETRUNC, "len %zu: %d %s", len, rc, err);
    ck_assert_ptr_null(s);
    ck_assert(strncmp(err, "t.hsnap: truncated", 18) == 0);
    free(c);

    put_file(path, b, len);
    rc = hs__hsnap_read(path, &s, err, sizeof err);
    ck_assert_msg(rc == HS_ETRUNC, "file len %zu: %d %s", len, rc, err);
    ck_assert(strncmp(err, path, strlen(path)) == 0);
  }
  free(b);
}
END_TEST

/* The CRC catches every single-bit flip; the fields read before it (magic,
 * version, sizes) fail with their own codes. */
START_TEST(every_bit_flipped) {
  size_t n;
  uint8_t *b = sample_image(&n);
  uint8_t *c = malloc(n);
  char err[256];
  for (size_t i = 0; i < n; i++)
    for (int bit = 0; bit < 8; bit++) {
      memcpy(c, b, n);
      c[i] ^= (uint8_t)(1u << bit);
      struct hs_snapshot *s = NULL;
      int rc = read_buf(c, n, &s, err, sizeof err);
      ck_assert_ptr_null(s);
      if (i < 8)
        ck_assert_int_eq(rc, HS_EFORMAT);
      else if (i < 10)
        ck_assert_int_eq(rc, HS_EVERSION);
      else if (i >= HOFF(file_size) && i < HOFF(file_size) + 8)
        ck_assert(rc == HS_ETRUNC || rc == HS_ECORRUPT);
      else
        ck_assert_msg(rc == HS_ECORRUPT, "byte %zu bit %d: %d %s", i, bit, rc,
                      err);
    }
  free(c);
  free(b);
}
END_TEST

/* With the CRC recomputed only the structural checks stand between the
 * bytes and the consumer: each flip fails cleanly or loads in-bounds data. */
START_TEST(every_bit_flipped_crc_fixed) {
  size_t n;
  uint8_t *b = sample_image(&n);
  uint8_t *c = malloc(n);
  int loaded = 0, rejected = 0;
  for (size_t i = 0; i < n; i++)
    for (int bit = 0; bit < 8; bit++) {
      memcpy(c, b, n);
      c[i] ^= (uint8_t)(1u << bit);
      if (i >= 20 || i < 16)
        fix_crc(c, n);
      struct hs_snapshot *s = NULL;
      char err[256] = "";
      int rc = read_buf(c, n, &s, err, sizeof err);
      if (rc == 0) {
        check_inbounds(s);
        /* A loaded snapshot is one the writer accepts. */
        uint8_t *again;
        size_t alen;
        ck_assert_int_eq(hs__hsnap_encode(s, &again, &alen), 0);
        free(again);
        free_snap(s);
        loaded++;
      } else {
        ck_assert_ptr_null(s);
        ck_assert(rc == HS_ECORRUPT || rc == HS_ETRUNC || rc == HS_EFORMAT ||
                  rc == HS_EVERSION);
        ck_assert(strncmp(err, "t.hsnap: ", 9) == 0);
        rejected++;
      }
    }
  ck_assert_int_gt(loaded, 0);
  ck_assert_int_gt(rejected, 0);
  free(c);
  free(b);
}
END_TEST

/* Several bytes at once, often with the values that break arithmetic
 * (0, 1, 2^31, 2^32-1, 2^63...), aimed at the header and directory half the
 * time, the CRC recomputed each time. Deterministic: the seed is fixed. */
START_TEST(random_damage_crc_fixed) {
  static const uint64_t nasty[] = {0,
                                   1,
                                   2,
                                   7,
                                   8,
                                   95,
                                   96,
                                   0x7fffffffu,
                                   0x80000000u,
                                   0xffffffffu,
                                   0x100000000ull,
                                   1ull << 62,
                                   1ull << 63,
                                   UINT64_MAX};
  size_t n;
  uint8_t *b = sample_image(&n);
  uint8_t *c = malloc(n);
  uint64_t x = 0x2545F4914F6CDD1Dull;
  int loaded = 0;
  for (int iter = 0; iter < 50000; iter++) {
    memcpy(c, b, n);
    int edits = 1 + (int)((x >> 60) & 3);
    for (int e = 0; e < edits; e++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      size_t span = (x & 1) ? 96 + 6 * sizeof(struct hs_hsnap_section) : n;
      size_t at = (size_t)((x >> 8) % span);
      if ((x >> 4) & 1) {
        uint64_t v = nasty[(x >> 20) % (sizeof nasty / sizeof nasty[0])];
        if (at + 8 <= n && ((x >> 5) & 1))
          wr64(c + (at & ~(size_t)3), v);
        else if (at + 4 <= n)
          wr32(c + (at & ~(size_t)3), (uint32_t)v);
      } else {
        c[at] = (uint8_t)(x >> 40);
      }
    }
    wr16(c + HOFF(major), HS_HSNAP_MAJOR); /* get past the version check */
    wr64(c + HOFF(file_size), n);          /* and the size check */
    fix_crc(c, n);
    struct hs_snapshot *s = NULL;
    char err[256] = "";
    int rc = read_buf(c, n, &s, err, sizeof err);
    if (rc == 0) {
      check_inbounds(s);
      free_snap(s);
      loaded++;
    } else {
      ck_assert_msg(rc == HS_ECORRUPT || rc == HS_EFORMAT, "%d %s", rc, err);
      ck_assert(strncmp(err, "t.hsnap: ", 9) == 0);
    }
  }
  ck_assert_int_gt(loaded, 0);
  free(c);
  free(b);
}
END_TEST

/* ---- hostile files
 * ----------------------------------------------------------- */

typedef void (*forge_fn)(uint8_t *b, size_t *len);

static void forge_loc_count(uint8_t *b, size_t *len) {
  (void)len;
  wr64(dir_entry(b, HS_HSNAP_SEC_LOCS) + DOFF(count), UINT32_MAX);
}
static void forge_loc_count_and_length(uint8_t *b, size_t *len) {
  (void)len;
  uint8_t *d = dir_entry(b, HS_HSNAP_SEC_LOCS);
  wr64(d + DOFF(count), UINT32_MAX);
  wr64(d + DOFF(length), (uint64_t)UINT32_MAX * 24);
}
static void forge_group_count(uint8_t *b, size_t *len) {
  (void)len;
  uint8_t *d = dir_entry(b, HS_HSNAP_SEC_GROUPS);
  wr64(d + DOFF(count), 1ull << 60);
  wr64(d + DOFF(length), (1ull << 60) * 24); /* wraps to 2^63 */
}
static void forge_huge_length(uint8_t *b, size_t *len) {
  (void)len;
  wr64(dir_entry(b, HS_HSNAP_SEC_STACKS) + DOFF(length), 1ull << 63);
}
static void forge_wrapping_offset(uint8_t *b, size_t *len) {
  (void)len;
  wr64(dir_entry(b, HS_HSNAP_SEC_STACKS) + DOFF(offset), UINT64_MAX - 7);
}
static void forge_string_ref(uint8_t *b, size_t *len) {
  (void)len;
  uint32_t n = (uint32_t)rd64(dir_entry(b, HS_HSNAP_SEC_STRTAB) + DOFF(count));
  wr32(sec_data(b, HS_HSNAP_SEC_LOCS) + 24 +
           offsetof(struct hs_hsnap_loc, file),
       n);
}
static void forge_program_ref(uint8_t *b, size_t *len) {
  (void)len;
  wr32(b + HOFF(program), 0x7fffffff);
}
static void forge_module_path(uint8_t *b, size_t *len) {
  (void)len;
  wr32(sec_data(b, HS_HSNAP_SEC_MODULES) + 96, HS_NOSTR);
}
static void forge_build_id_len(uint8_t *b, size_t *len) {
  (void)len;
  wr32(sec_data(b, HS_HSNAP_SEC_MODULES) + 4, 65);
}
static void forge_module_order(uint8_t *b, size_t *len) {
  (void)len;
  wr64(sec_data(b, HS_HSNAP_SEC_MODULES) + 96 + 80, 0); /* start of mod 1 */
}
static void forge_loc_module(uint8_t *b, size_t *len) {
  (void)len;
  wr32(sec_data(b, HS_HSNAP_SEC_LOCS) + offsetof(struct hs_hsnap_loc, module),
       99);
}
static void forge_loc_module_neg(uint8_t *b, size_t *len) {
  (void)len;
  wr32(sec_data(b, HS_HSNAP_SEC_LOCS) + offsetof(struct hs_hsnap_loc, module),
       (uint32_t)-2);
}
static void forge_stack_loc(uint8_t *b, size_t *len) {
  (void)len;
  wr32(sec_data(b, HS_HSNAP_SEC_STACK_LOCS) + 8, 6);
}
static void forge_stack_overflow(uint8_t *b, size_t *len) {
  (void)len;
  uint8_t *p = sec_data(b, HS_HSNAP_SEC_STACKS) + 8;
  wr32(p, 0xffffffffu); /* first + nloc wraps to 1 in 32 bits */
  wr32(p + 4, 2);
}
static void forge_group_stack(uint8_t *b, size_t *len) {
  (void)len;
  wr32(sec_data(b, HS_HSNAP_SEC_GROUPS) + 24 + 4, 5);
}
static void forge_strtab_unterminated(uint8_t *b, size_t *len) {
  (void)len;
  uint8_t *d = dir_entry(b, HS_HSNAP_SEC_STRTAB);
  b[rd64(d + DOFF(offset)) + rd64(d + DOFF(count)) - 1] = 'x';
}
static void forge_nsections(uint8_t *b, size_t *len) {
  (void)len;
  wr32(b + HOFF(nsections), UINT32_MAX);
}
static void forge_sample_rate(uint8_t *b, size_t *len) {
  (void)len;
  wr64(b + HOFF(sample_rate), (uint64_t)1 << 63);
}

static void forge_header_size(uint8_t *b, size_t *len) {
  (void)len;
  wr32(b + HOFF(header_size), UINT32_MAX);
}
static void forge_duplicate(uint8_t *b, size_t *len) {
  (void)len;
  wr32(dir_entry(b, HS_HSNAP_SEC_GROUPS) + DOFF(type), HS_HSNAP_SEC_LOCS);
}
static void forge_missing(uint8_t *b, size_t *len) {
  (void)len;
  wr32(dir_entry(b, HS_HSNAP_SEC_GROUPS) + DOFF(type), 77);
}
static void forge_overlap(uint8_t *b, size_t *len) {
  (void)len;
  uint8_t *d = dir_entry(b, HS_HSNAP_SEC_STACKS);
  wr64(d + DOFF(offset), rd64(d + DOFF(offset)) - 8);
}
static void forge_into_directory(uint8_t *b, size_t *len) {
  (void)len;
  wr64(dir_entry(b, HS_HSNAP_SEC_STRTAB) + DOFF(offset), 100);
}
static void forge_record_size(uint8_t *b, size_t *len) {
  (void)len;
  wr32(dir_entry(b, HS_HSNAP_SEC_LOCS) + DOFF(record_size), 12);
}
static void forge_zero_record_size(uint8_t *b, size_t *len) {
  (void)len;
  wr32(dir_entry(b, HS_HSNAP_SEC_STACK_LOCS) + DOFF(record_size), 0);
}
static void forge_trailing(uint8_t *b, size_t *len) {
  (void)b;
  *len += 8; /* the caller's buffer has the room */
}

static const struct {
  const char *name;
  forge_fn fn;
  const char *needle;
} forgeries[] = {
    {"loc count 2^32-1", forge_loc_count, "location table"},
    {"loc count and length", forge_loc_count_and_length, "location table"},
    {"group count 2^60", forge_group_count, "group table"},
    {"huge section length", forge_huge_length, "stack table"},
    {"wrapping section offset", forge_wrapping_offset, "stack table"},
    {"string ref past table", forge_string_ref, "string table"},
    {"program ref", forge_program_ref, "program"},
    {"module path NOSTR", forge_module_path, "module 1"},
    {"build-id 65", forge_build_id_len, "build-id"},
    {"modules unsorted", forge_module_order, "module 1"},
    {"loc module 99", forge_loc_module, "module index 99"},
    {"loc module -2", forge_loc_module_neg, "module index -2"},
    {"stack loc index", forge_stack_loc, "location index 6"},
    {"stack first+nloc overflows", forge_stack_overflow, "stack 1"},
    {"group stack index", forge_group_stack, "stack index 5"},
    {"strtab unterminated", forge_strtab_unterminated, "NUL"},
    {"nsections 2^32-1", forge_nsections, "sections"},
    {"header size 2^32-1", forge_header_size, "header size"},
    {"sample rate 2^63", forge_sample_rate, "sample rate"},
    {"duplicate section", forge_duplicate, "two location tables"},
    {"missing section", forge_missing, "no group table"},
    {"overlapping sections", forge_overlap, "overlap"},
    {"section in the directory", forge_into_directory, "string table"},
    {"short records", forge_record_size, "records of 12"},
    {"zero record size", forge_zero_record_size, "records of 0"},
    {"trailing data", forge_trailing, "trailing"},
};

static void run_forgeries(void) {
  size_t n;
  uint8_t *orig = sample_image(&n);
  uint8_t *b = calloc(1, n + 8);
  for (size_t i = 0; i < sizeof forgeries / sizeof forgeries[0]; i++) {
    memcpy(b, orig, n);
    size_t len = n;
    forgeries[i].fn(b, &len);
    fix_crc(b, len);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char err[256];
    struct hs_snapshot *s = NULL;
    int rc = read_buf(b, len, &s, err, sizeof err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ck_assert_msg(rc == HS_ECORRUPT, "%s: %d %s", forgeries[i].name, rc, err);
    ck_assert_ptr_null(s);
    ck_assert_msg(strncmp(err, "t.hsnap: ", 9) == 0 &&
                      strstr(err, forgeries[i].needle),
                  "%s: message '%s' lacks '%s'", forgeries[i].name, err,
                  forgeries[i].needle);
    double dt = (double)(t1.tv_sec - t0.tv_sec) +
                (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    ck_assert_msg(dt < 0.5, "%s took %.3f s", forgeries[i].name, dt);
  }
  free(b);
  free(orig);
}

/* In a child under a 256 MiB address-space limit, so a reader that trusted
 * a count and allocated for it would fail with HS_ENOMEM, not HS_ECORRUPT.
 * ASan reserves terabytes of shadow: there the limit is left out and ASan's
 * own allocation-size check stands in. */
START_TEST(hostile_files_rejected) {
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
#if !defined(__SANITIZE_ADDRESS__)
    struct rlimit rl = {256u << 20, 256u << 20};
    if (setrlimit(RLIMIT_AS, &rl))
      _exit(3);
#endif
    run_forgeries();
    _exit(0);
  }
  int st;
  ck_assert_int_eq(waitpid(pid, &st, 0), pid);
  ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status 0x%x", st);
  run_forgeries(); /* again in-process, so a failure shows its message */
}
END_TEST

/* ---- identity and versions
 * ---------------------------------------------------- */

START_TEST(bad_magic) {
  size_t n;
  uint8_t *b = sample_image(&n);
  b[1] = 'X';
  expect_reject(b, n, HS_EFORMAT, "bad magic");
  const char text[] = "this is a text file, not a snapshot\n";
  expect_reject((const uint8_t *)text, sizeof text - 1, HS_EFORMAT,
                "bad magic");
  expect_reject((const uint8_t *)text, 3, HS_EFORMAT, "bad magic");
  free(b);

  /* A CRLF->LF conversion drops the '\r' of the magic. */
  b = sample_image(&n);
  memmove(b + 4, b + 5, n - 5);
  expect_reject(b, n - 1, HS_EFORMAT, "text-mode");
  free(b);
}
END_TEST

START_TEST(newer_major_rejected) {
  size_t n;
  uint8_t *b = sample_image(&n);
  wr16(b + HOFF(major), HS_HSNAP_MAJOR + 1);
  fix_crc(b, n);
  expect_reject(b, n, HS_EVERSION, "version 2.");
  wr16(b + HOFF(major), 0);
  fix_crc(b, n);
  expect_reject(b, n, HS_EVERSION, "version 0.");
  /* A newer major may change everything after the version: even a file cut
   * right after it is a version problem, not a truncation. */
  wr16(b + HOFF(major), HS_HSNAP_MAJOR + 1);
  expect_reject(b, 12, HS_EVERSION, NULL);
  free(b);
}
END_TEST

/* What a minor version may do: grow the header, add a section, grow a
 * record. This reader loads such a file and ignores what it doesn't know. */
/* A 1.1 file, written by heapsnap before churn was kept (the snapdiff
 * fixture new.hsnap from commit d9c2fb9): it loads, says it has no churn,
 * its statistics and every sort order work, and written again it stays
 * without a counter section. */
START_TEST(v1_1_file_loads) {
  struct hs_snapshot *s = NULL;
  char err[256];
  ck_assert_int_eq(hs__hsnap_read(V1_1_FIXTURE, &s, err, sizeof err), 0);
  ck_assert_ptr_null(s->ctrs);
  ck_assert_uint_eq(s->temp_ns, 0);
  ck_assert_uint_gt(s->ngroups, 0);
  ck_assert_int_eq(hs__snapshot_init_wrappers(s), 0);
  hs_snapshot_info_t info;
  hs_snapshot_get_info(s, &info, sizeof info);
  ck_assert_int_eq(info.has_churn, 0);
  ck_assert_uint_eq(info.alloc_count, 0);
  hs_statistics_t *st;
  ck_assert_int_eq(hs_snapshot_statistics(s, HS_KEY_LINENO, 0, &st), 0);
  hs_statistics_info_t si;
  ck_assert_int_eq(hs_statistics_get_info(st, &si, sizeof si), 0);
  ck_assert_int_eq(si.has_churn, 0);
  size_t n = hs_statistics_count(st);
  ck_assert_uint_gt(n, 0);
  /* No entry that only churned: a sort by churn adds none. */
  for (int order = HS_SORT_LIVE; order <= HS_SORT_TEMPORARY; order++) {
    ck_assert_int_eq(hs_statistics_sort(st, order), 0);
    ck_assert_uint_eq(hs_statistics_count(st), n);
    ck_assert_ptr_null(hs_statistics_get(st, 0)->lifetime);
  }
  ck_assert_int_eq(hs_statistics_sort(st, 4), HS_EINVAL);
  hs_statistics_free(st);
  uint8_t *buf;
  size_t len;
  ck_assert_int_eq(hs__hsnap_encode(s, &buf, &len), 0);
  ck_assert_uint_eq(buf[10], HS_HSNAP_MINOR);
  struct hs_snapshot *again = NULL;
  ck_assert_int_eq(hs__hsnap_read_mem(buf, len, "again", &again, err,
                                      sizeof err),
                   0);
  ck_assert_ptr_null(again->ctrs);
  ck_assert_uint_eq(again->ngroups, s->ngroups);
  free(buf);
  hs_snapshot_free(again);
  hs_snapshot_free(s);
}
END_TEST

START_TEST(newer_minor_loads) {
  struct hs_snapshot *s = sample(), *l = NULL;
  size_t n;
  uint8_t *b = encode(s, &n);
  struct tsec sec[8];
  size_t ns = split(b, sec);
  ck_assert_uint_eq(ns, 6);

  /* Groups grow from 24 to 32 bytes per record. */
  struct tsec *g = NULL;
  for (size_t i = 0; i < ns; i++)
    if (sec[i].type == HS_HSNAP_SEC_GROUPS)
      g = &sec[i];
  ck_assert_ptr_nonnull(g);
  uint8_t *wide = malloc(g->count * 32);
  for (uint64_t i = 0; i < g->count; i++) {
    memcpy(wide + i * 32, g->data + i * 24, 24);
    memset(wide + i * 32 + 24, 0xEE, 8);
  }
  g->data = wide;
  g->rs = 32;
  g->len = g->count * 32;

  uint8_t extra[13] = "future stuff";
  sec[ns++] = (struct tsec){1000, 1, sizeof extra, extra, sizeof extra};
  sec[ns++] = (struct tsec){0, 7, 3, extra, 13}; /* type 0 is unknown too */
  size_t n2;
  uint8_t *b2 =
      relayout(b, 128, HS_HSNAP_MAJOR, HS_HSNAP_MINOR + 1, sec, ns, &n2);
  char err[256];
  ck_assert_msg(read_buf(b2, n2, &l, err, sizeof err) == 0, "%s", err);
  snap_eq(s, l);
  free_snap(l);

  /* An unknown section still has to lie inside the file. */
  uint8_t *d = b2 + 128 + 6 * sizeof(struct hs_hsnap_section);
  wr64(d + DOFF(length), n2);
  fix_crc(b2, n2);
  expect_reject(b2, n2, HS_ECORRUPT, "unknown section");

  free(b2);
  free(wide);
  free(b);
  free_snap(s);
}
END_TEST

/* ---- reading files
 * --------------------------------------------------------------- */

START_TEST(read_errors) {
  char path[600], err[700];
  struct hs_snapshot *s = NULL;
  snprintf(path, sizeof path, "%s/none.hsnap", tmpdir);
  ck_assert_int_eq(hs__hsnap_read(path, &s, err, sizeof err), HS_EIO);
  ck_assert_int_eq(errno, ENOENT);
  ck_assert(strncmp(err, path, strlen(path)) == 0);
  ck_assert_ptr_nonnull(strstr(err, "No such file"));
  ck_assert_int_eq(hs__hsnap_read(tmpdir, &s, err, sizeof err), HS_EIO);
  ck_assert_ptr_nonnull(strstr(err, "not a regular file"));
  ck_assert_ptr_null(s);
  /* err may be NULL or tiny: still no crash, still the code. */
  ck_assert_int_eq(hs__hsnap_read(path, &s, NULL, 0), HS_EIO);
  char tiny[4];
  ck_assert_int_eq(hs__hsnap_read(path, &s, tiny, sizeof tiny), HS_EIO);
  ck_assert_uint_lt(strlen(tiny), sizeof tiny);
}
END_TEST

/* The size limit is checked before any buffer is sized from the file. */
START_TEST(file_over_limit) {
  char path[600], err[700];
  snprintf(path, sizeof path, "%s/big.hsnap", tmpdir);
  size_t n;
  uint8_t *b = sample_image(&n);
  put_file(path, b, n);
  ck_assert_int_eq(truncate(path, (off_t)HS_HSNAP_MAX_FILE + 1),
                   0); /* sparse */
  struct hs_snapshot *s = NULL;
  ck_assert_int_eq(hs__hsnap_read(path, &s, err, sizeof err), HS_ECORRUPT);
  ck_assert_ptr_nonnull(strstr(err, "more than"));
  put_file(path, "junk", 4);
  ck_assert_int_eq(truncate(path, (off_t)HS_HSNAP_MAX_FILE + 1), 0);
  ck_assert_int_eq(hs__hsnap_read(path, &s, err, sizeof err), HS_EFORMAT);
  ck_assert_ptr_null(s);
  free(b);
}
END_TEST

/* ---- the atomic writer
 * ------------------------------------------------------------ */

static int seam_calls;
static ssize_t half_then_enospc(int fd, const void *buf, size_t len) {
  if (seam_calls++ == 0)
    return write(fd, buf, len / 2);
  errno = ENOSPC;
  return -1;
}
static ssize_t always_eio(int fd, const void *buf, size_t len) {
  (void)fd, (void)buf, (void)len;
  errno = EIO;
  return -1;
}
static ssize_t no_progress(int fd, const void *buf, size_t len) {
  (void)fd, (void)buf, (void)len;
  seam_calls++;
  return 0;
}
static ssize_t eintr_then_dribble(int fd, const void *buf, size_t len) {
  if (seam_calls++ % 2 == 0) {
    errno = EINTR;
    return -1;
  }
  return write(fd, buf, len < 100 ? len : 100);
}
static ssize_t eacces(int fd, const void *buf, size_t len) {
  (void)fd, (void)buf, (void)len;
  errno = EACCES;
  return -1;
}

START_TEST(write_into_missing_dir) {
  struct hs_snapshot *s = sample();
  char path[600];
  snprintf(path, sizeof path, "%s/no/such/dir/x.hsnap", tmpdir);
  errno = 0;
  ck_assert_int_eq(hs__hsnap_write(s, path), HS_EIO);
  ck_assert_int_eq(errno, ENOENT);
  ck_assert_int_eq(access(path, F_OK), -1);
  ck_assert_int_eq(dir_entries(), 0);
  free_snap(s);
}
END_TEST

/* A failing write leaves neither the final name nor a temp file, keeps the
 * errno, and leaves an older file at the final name untouched. */
START_TEST(write_failures_leave_nothing) {
  struct hs_snapshot *s = sample();
  char path[600];
  snprintf(path, sizeof path, "%s/x.hsnap", tmpdir);
  struct {
    ssize_t (*fn)(int, const void *, size_t);
    int err;
  } cases[] = {{half_then_enospc, ENOSPC},
               {always_eio, EIO},
               {no_progress, EIO},
               {eacces, EACCES}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    seam_calls = 0;
    hs__hsnap_set_write_fn(cases[i].fn);
    errno = 0;
    ck_assert_int_eq(hs__hsnap_write(s, path), HS_EIO);
    ck_assert_int_eq(errno, cases[i].err);
    ck_assert_int_eq(access(path, F_OK), -1);
    ck_assert_int_eq(dir_entries(), 0);
    if (cases[i].fn == no_progress)
      ck_assert_int_eq(seam_calls, 1); /* not retried forever */
  }

  /* Over an existing file. */
  hs__hsnap_set_write_fn(NULL);
  put_file(path, "old contents", 12);
  seam_calls = 0;
  hs__hsnap_set_write_fn(half_then_enospc);
  ck_assert_int_eq(hs__hsnap_write(s, path), HS_EIO);
  ck_assert_int_eq(errno, ENOSPC);
  size_t len;
  uint8_t *b = get_file(path, &len);
  ck_assert_uint_eq(len, 12);
  ck_assert_int_eq(memcmp(b, "old contents", 12), 0);
  ck_assert_int_eq(dir_entries(), 1);
  free(b);

  /* Interrupted and short writes are resumed. */
  seam_calls = 0;
  hs__hsnap_set_write_fn(eintr_then_dribble);
  ck_assert_int_eq(hs__hsnap_write(s, path), 0);
  ck_assert_int_gt(seam_calls, 4);
  hs__hsnap_set_write_fn(NULL);
  struct hs_snapshot *l = NULL;
  ck_assert_int_eq(hs__hsnap_read(path, &l, NULL, 0), 0);
  snap_eq(s, l);
  free_snap(l);
  free_snap(s);
}
END_TEST

START_TEST(write_replaces_whole_file) {
  struct hs_snapshot *s = sample();
  char path[600];
  snprintf(path, sizeof path, "%s/x.hsnap", tmpdir);
  size_t big = 1 << 20;
  char *junk = malloc(big);
  memset(junk, 'j', big);
  put_file(path, junk, big);
  struct stat st0, st1;
  ck_assert_int_eq(stat(path, &st0), 0);
  ck_assert_int_eq(hs__hsnap_write(s, path), 0);
  ck_assert_int_eq(stat(path, &st1), 0);
  ck_assert_uint_ne(st0.st_ino, st1.st_ino); /* renamed in, not rewritten */
  size_t n, len;
  uint8_t *want = encode(s, &n), *got = get_file(path, &len);
  ck_assert_uint_eq(len, n);
  ck_assert_int_eq(memcmp(want, got, n), 0);
  ck_assert_int_eq(dir_entries(), 1);
  free(want);
  free(got);
  free(junk);
  free_snap(s);
}
END_TEST

static uint64_t rnd_value;
static uint64_t fixed_random(void) { return rnd_value; }
static uint64_t counting_random(void) { return rnd_value++; }

/* Someone plants a symlink where the writer will put its temp file. */
START_TEST(planted_symlink_not_followed) {
  struct hs_snapshot *s = sample();
  char path[600], tmp[700], victim[600];
  snprintf(path, sizeof path, "%s/x.hsnap", tmpdir);
  snprintf(victim, sizeof victim, "%s/victim", tmpdir);
  put_file(victim, "precious", 8);
  rnd_value = 42;
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%016llx", path, (long)getpid(), 42ull);
  ck_assert_int_eq(symlink(victim, tmp), 0);

  /* Every name it tries is taken: it gives up, touching nothing. */
  hs__hsnap_set_random_fn(fixed_random);
  ck_assert_int_eq(hs__hsnap_write(s, path), HS_EIO);
  ck_assert_int_eq(errno, EEXIST);
  ck_assert_int_eq(access(path, F_OK), -1);

  /* With a fresh name on the next try it succeeds beside the trap. */
  hs__hsnap_set_random_fn(counting_random);
  ck_assert_int_eq(hs__hsnap_write(s, path), 0);
  size_t len;
  uint8_t *b = get_file(victim, &len);
  ck_assert_uint_eq(len, 8);
  ck_assert_int_eq(memcmp(b, "precious", 8), 0);
  struct stat st;
  ck_assert_int_eq(lstat(tmp, &st), 0);
  ck_assert(S_ISLNK(st.st_mode));
  ck_assert_int_eq(dir_entries(), 3); /* victim, symlink, x.hsnap */
  struct hs_snapshot *l = NULL;
  ck_assert_int_eq(hs__hsnap_read(path, &l, NULL, 0), 0);
  free_snap(l);
  free(b);
  free_snap(s);
}
END_TEST

/* A real permission failure when not root (root ignores the mode bits; the
 * EACCES seam case above covers the error path then). */
START_TEST(write_into_readonly_dir) {
  if (geteuid() == 0)
    return;
  struct hs_snapshot *s = sample();
  char path[600];
  snprintf(path, sizeof path, "%s/x.hsnap", tmpdir);
  ck_assert_int_eq(chmod(tmpdir, 0555), 0);
  ck_assert_int_eq(hs__hsnap_write(s, path), HS_EIO);
  ck_assert_int_eq(errno, EACCES);
  chmod(tmpdir, 0755);
  ck_assert_int_eq(dir_entries(), 0);
  free_snap(s);
}
END_TEST

/* ---- size and speed
 * ----------------------------------------------------------------- */

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* A million live blocks from a thousand 16-frame stacks, every frame a
 * distinct location (the worst case for the location table). */
START_TEST(million_blocks_under_a_mib) {
  enum {
    NSTACK = 1000,
    DEPTH = 16,
    NSIZE = 4,
    NFUNC = 2000,
    NFILE = 100,
    NMOD = 12
  };
  struct hs_snapshot *s = calloc(1, sizeof *s);
  s->symbolized = 1;
  s->nframe = DEPTH;
  s->program = str_add(s, "/home/user/project/build/bin/server");
  uint32_t func[NFUNC], file[NFILE];
  char buf[128];
  for (int i = 0; i < NFUNC; i++) {
    snprintf(buf, sizeof buf, "project_subsystem_function_%04d", i);
    func[i] = str_add(s, buf);
  }
  for (int i = 0; i < NFILE; i++) {
    snprintf(buf, sizeof buf, "/home/user/project/src/subsystem/file_%03d.c",
             i);
    file[i] = str_add(s, buf);
  }
  s->modules.count = NMOD;
  s->modules.mods = calloc(NMOD, sizeof(hs_module_t));
  for (int i = 0; i < NMOD; i++) {
    snprintf(buf, sizeof buf, "/usr/lib/x86_64-linux-gnu/libmodule%02d.so.1",
             i);
    uint64_t base = 0x7f0000000000ull + (uint64_t)i * 0x1000000;
    set_module(&s->modules.mods[i], buf, 20, base, base, base + 0x800000);
  }
  s->nlocs = NSTACK * DEPTH;
  s->locs = calloc(s->nlocs, sizeof(hs_loc_t));
  s->nstack_locs = NSTACK * DEPTH;
  s->stack_locs = calloc(s->nstack_locs, sizeof(uint32_t));
  s->nstacks = NSTACK;
  s->stacks = calloc(NSTACK, sizeof(hs_snap_stack_t));
  for (uint32_t i = 0; i < s->nlocs; i++) {
    s->locs[i] = (hs_loc_t){func[i % NFUNC], file[i % NFILE], 1 + i % 3000,
                            (int32_t)(i % NMOD), 0x1000 + i * 16ull};
    s->stack_locs[i] = i;
  }
  for (uint32_t i = 0; i < NSTACK; i++)
    s->stacks[i] = (hs_snap_stack_t){i * DEPTH, DEPTH};
  s->ngroups = NSTACK * NSIZE;
  s->groups = calloc(s->ngroups, sizeof(hs_group_t));
  uint64_t total = 0;
  for (uint32_t i = 0; i < s->ngroups; i++) {
    s->groups[i] = (hs_group_t){0, i / NSIZE, 16ull << (i % NSIZE), 250};
    total += s->groups[i].count;
  }
  ck_assert_uint_eq(total, 1000000);

  char path[600];
  snprintf(path, sizeof path, "%s/big.hsnap", tmpdir);
  double t0 = now();
  ck_assert_int_eq(hs__hsnap_write(s, path), 0);
  double t1 = now();
  struct hs_snapshot *l = NULL;
  char err[256];
  ck_assert_msg(hs__hsnap_read(path, &l, err, sizeof err) == 0, "%s", err);
  double t2 = now();
  struct stat st;
  ck_assert_int_eq(stat(path, &st), 0);
  printf("hsnap: 1,000,000 blocks, %u stacks x %u frames, %" PRIu64
         " groups: %lld bytes (%.1f KiB), write %.1f ms (incl. fsync), read "
         "%.1f ms\n",
         s->nstacks, DEPTH, s->ngroups, (long long)st.st_size,
         (double)st.st_size / 1024, (t1 - t0) * 1e3, (t2 - t1) * 1e3);
  fflush(stdout);
  ck_assert_int_lt(st.st_size, 1 << 20);
  snap_eq(s, l);
  /* Loose bounds (the targets are 0.5 s and 0.3 s): catch a pathology
   * without failing on a loaded machine or under sanitizers. */
  ck_assert_msg(t1 - t0 < 5.0, "write took %.3f s", t1 - t0);
  ck_assert_msg(t2 - t1 < 3.0, "read took %.3f s", t2 - t1);
  free_snap(l);
  free_snap(s);
}
END_TEST

static Suite *suite(void) {
  Suite *su = suite_create("format");
  TCase *tc = tcase_create("hsnap");
  tcase_add_checked_fixture(tc, mk_tmpdir, rm_tmpdir);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, round_trip_file);
  tcase_add_test(tc, round_trip_empty);
  tcase_add_test(tc, writer_rejects_bad_snapshots);
  tcase_add_test(tc, truncated_at_every_length);
  tcase_add_test(tc, every_bit_flipped);
  tcase_add_test(tc, every_bit_flipped_crc_fixed);
  tcase_add_test(tc, random_damage_crc_fixed);
  tcase_add_test(tc, hostile_files_rejected);
  tcase_add_test(tc, bad_magic);
  tcase_add_test(tc, newer_major_rejected);
  tcase_add_test(tc, newer_minor_loads);
  tcase_add_test(tc, v1_1_file_loads);
  tcase_add_test(tc, read_errors);
  tcase_add_test(tc, file_over_limit);
  tcase_add_test(tc, write_into_missing_dir);
  tcase_add_test(tc, write_failures_leave_nothing);
  tcase_add_test(tc, write_replaces_whole_file);
  tcase_add_test(tc, planted_symlink_not_followed);
  tcase_add_test(tc, write_into_readonly_dir);
  tcase_add_test(tc, million_blocks_under_a_mib);
  suite_add_tcase(su, tc);
  return su;
}

int main(void) {
  SRunner *sr = srunner_create(suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
