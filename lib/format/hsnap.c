/* hsnap.c - the .hsnap writer (image in memory, temp file, fsync, rename) and
 * the reader that validates every byte before it trusts it.
 *
 * The whole file is built in one buffer: it grows with distinct sites, not
 * with live blocks, so it stays small (a million blocks from a thousand
 * stacks is about 0.6 MiB), and a buffer lets the CRC sit in the header.
 * The reader takes the file as one buffer bounded by its size, checks magic,
 * version, size and CRC, then the section directory, then each table, and
 * allocates nothing whose size the file's own length does not justify. */
#define _GNU_SOURCE
#include "format/hsnap.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define CRC_OFF offsetof(struct hs_hsnap_header, crc)
#define HEADER_SIZE sizeof(struct hs_hsnap_header)
#define SECTION_SIZE sizeof(struct hs_hsnap_section)
#define NSECTIONS_MAX 8u /* the required six, counters, leak classes */

/* ---- little-endian fields ---- */

static void put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}
static uint16_t get16(const uint8_t *p) {
  return (uint16_t)(p[0] | (p[1] << 8));
}
static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p) {
  return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

#define PUT(bits, base, type, field, v)                                        \
  put##bits((base) + offsetof(type, field), (v))
#define GET(bits, base, type, field) get##bits((base) + offsetof(type, field))

/* The CRC skips its own field so that it can live in the header. */
static uint32_t file_crc(const uint8_t *b, uint64_t len) {
  uLong c = crc32_z(0L, b, CRC_OFF);
  return (uint32_t)crc32_z(c, b + CRC_OFF + 4, (z_size_t)(len - CRC_OFF - 4));
}

static const char *const sec_name[HS_HSNAP_SEC_KNOWN + 1] = {
    NULL,
    "string table",
    "module table",
    "location table",
    "stack-location table",
    "stack table",
    "group table",
    "stack-counter table"};
static const uint32_t sec_min_rs[HS_HSNAP_SEC_KNOWN + 1] = {
    0,
    1,
    sizeof(struct hs_hsnap_module),
    sizeof(struct hs_hsnap_loc),
    4,
    sizeof(struct hs_hsnap_stack),
    sizeof(struct hs_hsnap_group),
    sizeof(struct hs_hsnap_counters)};

static int ref_ok(uint32_t ref, uint64_t strtab_len) {
  return ref == HS_NOSTR || ref < strtab_len;
}

/* ======================================================================
 * Writer
 * ====================================================================== */

static ssize_t (*write_fn)(int, const void *, size_t) = write;
static uint64_t (*random_fn)(void);

void hs__hsnap_set_write_fn(ssize_t (*fn)(int, const void *, size_t)) {
  write_fn = fn ? fn : write;
}
void hs__hsnap_set_random_fn(uint64_t (*fn)(void)) { random_fn = fn; }

/* The writer refuses a snapshot that the reader would reject: a bug upstream
 * is better reported here than found in a file later. */
static int check_snapshot(const struct hs_snapshot *s) {
  uint64_t n = s->strtab_len;
  if (!s->symbolized || (n && (!s->strtab || s->strtab[n - 1] != '\0')) ||
      n >= HS_NOSTR || !ref_ok(s->program, n))
    return HS_EINVAL;
  if ((s->modules.count && !s->modules.mods) || (s->nlocs && !s->locs) ||
      (s->nstack_locs && !s->stack_locs) || (s->nstacks && !s->stacks) ||
      (s->ngroups && !s->groups))
    return HS_EINVAL;
  for (uint32_t i = 0; i < s->modules.count; i++) {
    const hs_module_t *m = &s->modules.mods[i];
    if (m->build_id_len > sizeof m->build_id || m->start > m->end ||
        (i && m->start < s->modules.mods[i - 1].start))
      return HS_EINVAL;
  }
  for (uint32_t i = 0; i < s->nlocs; i++) {
    const hs_loc_t *l = &s->locs[i];
    if (!ref_ok(l->function, n) || !ref_ok(l->file, n) || l->module < -1 ||
        (l->module >= 0 && (uint32_t)l->module >= s->modules.count))
      return HS_EINVAL;
  }
  for (uint32_t i = 0; i < s->nstack_locs; i++)
    if (s->stack_locs[i] >= s->nlocs)
      return HS_EINVAL;
  for (uint32_t i = 0; i < s->nstacks; i++)
    if ((uint64_t)s->stacks[i].first + s->stacks[i].nloc > s->nstack_locs)
      return HS_EINVAL;
  for (uint64_t i = 0; i < s->ngroups; i++)
    if (s->groups[i].stack >= s->nstacks)
      return HS_EINVAL;
  return 0;
}

static uint64_t align8(uint64_t v) { return (v + 7) & ~(uint64_t)7; }

int hs__hsnap_encode(const struct hs_snapshot *s, uint8_t **out,
                     size_t *outlen) {
  if (!s || !out || !outlen || check_snapshot(s)) {
    errno = EINVAL;
    return HS_EINVAL;
  }
  /* Module paths are owned C strings in memory; on disk they join the
   * string table after the snapshot's own strings, whose offsets stay. */
  uint64_t strtab_len = s->strtab_len;
  for (uint32_t i = 0; i < s->modules.count; i++) {
    const char *p = s->modules.mods[i].path;
    strtab_len += (p ? strlen(p) : 0) + 1;
  }
  /* The required six, then the optional ones the snapshot has: the churn
   * counters (a file from before 1.2, loaded and written again, has none)
   * and the leak classes (only after a leak check). */
  const unsigned ci = 6, li = s->ctrs ? 7u : 6u;
  const unsigned nsec = li + (s->group_leak ? 1u : 0u);
  struct hs_hsnap_section sec[NSECTIONS_MAX] = {
      {HS_HSNAP_SEC_STRTAB, 1, strtab_len, 0, 0},
      {HS_HSNAP_SEC_MODULES, sizeof(struct hs_hsnap_module), s->modules.count,
       0, 0},
      {HS_HSNAP_SEC_LOCS, sizeof(struct hs_hsnap_loc), s->nlocs, 0, 0},
      {HS_HSNAP_SEC_STACK_LOCS, 4, s->nstack_locs, 0, 0},
      {HS_HSNAP_SEC_STACKS, sizeof(struct hs_hsnap_stack), s->nstacks, 0, 0},
      {HS_HSNAP_SEC_GROUPS, sizeof(struct hs_hsnap_group), s->ngroups, 0, 0},
      {HS_HSNAP_SEC_COUNTERS, sizeof(struct hs_hsnap_counters), s->nstacks, 0,
       0}};
  if (s->group_leak)
    sec[li] = (struct hs_hsnap_section){
        HS_HSNAP_SEC_LEAKS, sizeof(struct hs_hsnap_leak), s->ngroups, 0, 0};
  uint64_t size = HEADER_SIZE + nsec * SECTION_SIZE;
  for (unsigned i = 0; i < nsec; i++) {
    /* Each term is below 2^35 (counts are u32) except groups; cap first. */
    if (sec[i].count > HS_HSNAP_MAX_FILE) {
      errno = EFBIG;
      return HS_EIO;
    }
    sec[i].offset = align8(size);
    sec[i].length = sec[i].count * sec[i].record_size;
    size = sec[i].offset + sec[i].length;
  }
  if (size > HS_HSNAP_MAX_FILE || strtab_len >= HS_NOSTR) {
    errno = EFBIG;
    return HS_EIO;
  }
  uint8_t *b = calloc(1, (size_t)size); /* zeroes the alignment padding */
  if (!b) {
    errno = ENOMEM;
    return HS_ENOMEM;
  }

  typedef struct hs_hsnap_header H;
  memcpy(b, HS_HSNAP_MAGIC, HS_HSNAP_MAGIC_LEN);
  PUT(16, b, H, major, HS_HSNAP_MAJOR);
  PUT(16, b, H, minor, HS_HSNAP_MINOR);
  PUT(32, b, H, header_size, HEADER_SIZE);
  PUT(32, b, H, nsections, nsec);
  PUT(64, b, H, file_size, size);
  PUT(64, b, H, pid, s->pid);
  PUT(64, b, H, time_ns, s->time_ns);
  PUT(64, b, H, traced_current, s->traced_current);
  PUT(64, b, H, traced_peak, s->traced_peak);
  PUT(64, b, H, dropped_traces, s->dropped_traces);
  PUT(64, b, H, dropped_bytes, s->dropped_bytes);
  PUT(64, b, H, tracer_memory, s->tracer_memory);
  PUT(32, b, H, nframe, s->nframe);
  PUT(32, b, H, program, s->program);
  PUT(64, b, H, sample_rate, s->sample_rate);
  PUT(64, b, H, temporary_ns, s->temp_ns);

  typedef struct hs_hsnap_section D;
  for (unsigned i = 0; i < nsec; i++) {
    uint8_t *d = b + HEADER_SIZE + i * SECTION_SIZE;
    PUT(32, d, D, type, sec[i].type);
    PUT(32, d, D, record_size, sec[i].record_size);
    PUT(64, d, D, count, sec[i].count);
    PUT(64, d, D, offset, sec[i].offset);
    PUT(64, d, D, length, sec[i].length);
  }

  uint8_t *p = b + sec[0].offset;
  if (s->strtab_len)
    memcpy(p, s->strtab, s->strtab_len);
  uint64_t pos = s->strtab_len;
  uint32_t *path_ref = NULL;
  if (s->modules.count &&
      !(path_ref = malloc(s->modules.count * sizeof *path_ref))) {
    free(b);
    errno = ENOMEM;
    return HS_ENOMEM;
  }
  for (uint32_t i = 0; i < s->modules.count; i++) {
    const char *path = s->modules.mods[i].path ? s->modules.mods[i].path : "";
    size_t l = strlen(path) + 1;
    memcpy(p + pos, path, l);
    path_ref[i] = (uint32_t)pos;
    pos += l;
  }

  typedef struct hs_hsnap_module M;
  for (uint32_t i = 0; i < s->modules.count; i++) {
    const hs_module_t *m = &s->modules.mods[i];
    uint8_t *r = b + sec[1].offset + (uint64_t)i * sizeof(M);
    PUT(32, r, M, path, path_ref[i]);
    PUT(32, r, M, build_id_len, m->build_id_len);
    memcpy(r + offsetof(M, build_id), m->build_id, m->build_id_len);
    PUT(64, r, M, bias, m->bias);
    PUT(64, r, M, start, m->start);
    PUT(64, r, M, end, m->end);
  }
  free(path_ref);

  typedef struct hs_hsnap_loc L;
  for (uint32_t i = 0; i < s->nlocs; i++) {
    const hs_loc_t *l = &s->locs[i];
    uint8_t *r = b + sec[2].offset + (uint64_t)i * sizeof(L);
    PUT(32, r, L, function, l->function);
    PUT(32, r, L, file, l->file);
    PUT(32, r, L, line, l->line);
    PUT(32, r, L, module, (uint32_t)l->module);
    PUT(64, r, L, offset, l->offset);
  }
  for (uint32_t i = 0; i < s->nstack_locs; i++)
    put32(b + sec[3].offset + (uint64_t)i * 4, s->stack_locs[i]);

  typedef struct hs_hsnap_stack S;
  for (uint32_t i = 0; i < s->nstacks; i++) {
    uint8_t *r = b + sec[4].offset + (uint64_t)i * sizeof(S);
    PUT(32, r, S, first, s->stacks[i].first);
    PUT(32, r, S, nloc, s->stacks[i].nloc);
  }

  typedef struct hs_hsnap_group G;
  for (uint64_t i = 0; i < s->ngroups; i++) {
    const hs_group_t *g = &s->groups[i];
    uint8_t *r = b + sec[5].offset + i * sizeof(G);
    PUT(32, r, G, domain, g->domain);
    PUT(32, r, G, stack, g->stack);
    PUT(64, r, G, size, g->size);
    PUT(64, r, G, count, g->count);
  }
  for (uint64_t i = 0; s->group_leak && i < s->ngroups; i++)
    put32(b + sec[li].offset + i * sizeof(struct hs_hsnap_leak),
          s->group_leak[i]);

  typedef struct hs_hsnap_counters C;
  for (uint32_t i = 0; s->ctrs && i < s->nstacks; i++) {
    const hs_snap_ctr_t *k = &s->ctrs[i];
    uint8_t *r = b + sec[ci].offset + (uint64_t)i * sizeof(C);
    PUT(64, r, C, allocs, k->allocs);
    PUT(64, r, C, bytes, k->bytes);
    PUT(64, r, C, frees, k->frees);
    PUT(64, r, C, temporary, k->temp);
    PUT(64, r, C, temporary_time, k->temp_time);
    for (int j = 0; j < 32; j++)
      put64(r + offsetof(C, lifetime) + 8 * j, k->hist[j]);
  }

  PUT(32, b, H, crc, file_crc(b, size));
  *out = b;
  *outlen = (size_t)size;
  return 0;
}

static uint64_t temp_random(void) {
  if (random_fn)
    return random_fn();
  uint64_t v;
  if (getrandom(&v, sizeof v, GRND_NONBLOCK) == (ssize_t)sizeof v)
    return v;
  /* No entropy yet (early boot): O_EXCL still makes a collision harmless,
   * the name only needs to differ between attempts. */
  static _Atomic uint64_t counter;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  v = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^
      ++counter * 0x9e3779b97f4a7c15u;
  v ^= v >> 31;
  return v * 0xbf58476d1ce4e5b9u;
}

static int write_all(int fd, const uint8_t *p, size_t len) {
  while (len) {
    ssize_t n = write_fn(fd, p, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    if (n == 0) { /* no progress and no reason: don't spin */
      errno = EIO;
      return -1;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Makes the rename itself durable. Best effort: the file is already in
 * place and whole, so a failure here is not the caller's failure. */
static void fsync_dir(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path))
                    : strdup(".");
  if (!dir)
    return;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
  free(dir);
}

int hs__hsnap_write(const struct hs_snapshot *s, const char *path) {
  if (!s || !path || !*path) {
    errno = EINVAL;
    return HS_EINVAL;
  }
  uint8_t *buf;
  size_t len;
  int rc = hs__hsnap_encode(s, &buf, &len);
  if (rc)
    return rc;
  size_t tmplen = strlen(path) + 64;
  char *tmp = malloc(tmplen);
  if (!tmp) {
    free(buf);
    errno = ENOMEM;
    return HS_ENOMEM;
  }
  /* O_EXCL|O_NOFOLLOW: whatever sits at the temp name (a planted symlink
   * included) is never opened; try a fresh name instead. */
  int fd = -1;
  for (int attempt = 0; attempt < 16 && fd < 0; attempt++) {
    snprintf(tmp, tmplen, "%s.tmp.%ld.%016" PRIx64, path, (long)getpid(),
             temp_random());
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0 && errno != EEXIST)
      break;
  }
  int saved;
  if (fd < 0) {
    saved = errno;
    goto out;
  }
  if (write_all(fd, buf, len) || fsync(fd)) {
    saved = errno;
    close(fd);
    unlink(tmp);
    goto out;
  }
  if (close(fd) || rename(tmp, path)) {
    saved = errno;
    unlink(tmp);
    goto out;
  }
  fsync_dir(path);
  free(tmp);
  free(buf);
  return 0;
out:
  free(tmp);
  free(buf);
  errno = saved;
  return HS_EIO;
}

/* ======================================================================
 * Reader
 * ====================================================================== */

struct rd {
  const uint8_t *b;
  uint64_t len;
  const char *name;
  char *err;
  size_t errlen;
};

__attribute__((format(printf, 3, 4))) static int
fail(const struct rd *r, int code, const char *fmt, ...) {
  if (r->err && r->errlen) {
    int n = snprintf(r->err, r->errlen, "%s: ", r->name);
    if (n >= 0 && (size_t)n < r->errlen) {
      va_list ap;
      va_start(ap, fmt);
      vsnprintf(r->err + n, r->errlen - (size_t)n, fmt, ap);
      va_end(ap);
    }
  }
  return code;
}

static void snap_free(struct hs_snapshot *s) {
  if (!s)
    return;
  free(s->strtab);
  free(s->locs);
  free(s->stack_locs);
  free(s->stacks);
  free(s->groups);
  free(s->ctrs);
  free(s->group_leak);
  if (s->modules.mods)
    for (uint32_t i = 0; i < s->modules.count; i++)
      free(s->modules.mods[i].path);
  free(s->modules.mods);
  pthread_rwlock_destroy(&s->settings_lock);
  pthread_mutex_destroy(&s->symbolize_mu);
  free(s);
}

/* Never malloc(0): a loaded snapshot has no NULL arrays. */
static void *alloc_n(uint64_t n, size_t size) {
  return calloc(n ? (size_t)n : 1, size);
}

static int bad_magic(const struct rd *r, size_t have) {
  /* The first four bytes intact but not the rest: a text-mode transfer
   * rewrote the line endings. */
  if (have >= 4 && memcmp(r->b, HS_HSNAP_MAGIC, 4) == 0)
    return fail(r, HS_EFORMAT,
                "not a heapsnap file: bad magic (line endings "
                "altered by a text-mode transfer?)");
  return fail(r, HS_EFORMAT, "not a heapsnap file: bad magic");
}

static int too_big(const struct rd *r, size_t have, uint64_t size) {
  if (have < HS_HSNAP_MAGIC_LEN ||
      memcmp(r->b, HS_HSNAP_MAGIC, HS_HSNAP_MAGIC_LEN))
    return bad_magic(r, have);
  return fail(r, HS_ECORRUPT,
              "%" PRIu64 " bytes, more than the %" PRIu64
              " a .hsnap file may have",
              size, HS_HSNAP_MAX_FILE);
}

/* Checks the directory, then every table, then builds the snapshot. */
static int parse(const struct rd *r, struct hs_snapshot **out) {
  const uint8_t *b = r->b;
  uint64_t len = r->len;

  if (len > HS_HSNAP_MAX_FILE)
    return too_big(r, (size_t)(len < 8 ? len : 8), len);
  if (len < HS_HSNAP_MAGIC_LEN) {
    if (len && memcmp(b, HS_HSNAP_MAGIC, (size_t)len))
      return bad_magic(r, (size_t)len);
    return fail(r, HS_ETRUNC, "truncated: %" PRIu64 " bytes, the magic needs 8",
                len);
  }
  if (memcmp(b, HS_HSNAP_MAGIC, HS_HSNAP_MAGIC_LEN))
    return bad_magic(r, HS_HSNAP_MAGIC_LEN);

  typedef struct hs_hsnap_header H;
  if (len < offsetof(H, header_size))
    return fail(r, HS_ETRUNC,
                "truncated: %" PRIu64 " bytes, the version needs %zu", len,
                offsetof(H, header_size));
  unsigned major = GET(16, b, H, major), minor = GET(16, b, H, minor);
  if (major != HS_HSNAP_MAJOR)
    return fail(r, HS_EVERSION,
                "format version %u.%u; this reader reads version %u.x", major,
                minor, HS_HSNAP_MAJOR);
  if (len < HS_HSNAP_HEADER_MIN)
    return fail(r, HS_ETRUNC,
                "truncated: %" PRIu64 " bytes, the header needs %zu", len,
                (size_t)HS_HSNAP_HEADER_MIN);
  uint32_t header_size = GET(32, b, H, header_size);
  uint64_t file_size = GET(64, b, H, file_size);
  if (file_size > len)
    return fail(r, HS_ETRUNC,
                "truncated: file has %" PRIu64
                " bytes, its header says %" PRIu64,
                len, file_size);
  if (file_size < len)
    return fail(r, HS_ECORRUPT,
                "%" PRIu64 " bytes of trailing data after the %" PRIu64
                " its header says",
                len - file_size, file_size);
  uint32_t crc = GET(32, b, H, crc), want = file_crc(b, len);
  if (crc != want)
    return fail(r, HS_ECORRUPT,
                "checksum mismatch: stored 0x%08" PRIx32
                ", computed 0x%08" PRIx32,
                crc, want);
  /* From here on the bytes are what the writer wrote: what follows catches
   * writers' bugs and forged files whose CRC was recomputed. */
  if (header_size < HS_HSNAP_HEADER_MIN || header_size > len)
    return fail(r, HS_ECORRUPT,
                "header size %" PRIu32 " outside [%zu, %" PRIu64 "]",
                header_size, HEADER_SIZE, len);
  uint32_t nsec = GET(32, b, H, nsections);
  if (nsec > HS_HSNAP_MAX_SECTIONS)
    return fail(r, HS_ECORRUPT, "%" PRIu32 " sections, more than %u", nsec,
                HS_HSNAP_MAX_SECTIONS);
  uint64_t dir_end = header_size + (uint64_t)nsec * SECTION_SIZE;
  if (dir_end > len)
    return fail(r, HS_ECORRUPT,
                "section directory needs %" PRIu64 " bytes at offset %" PRIu32
                ", file has %" PRIu64,
                dir_end - header_size, header_size, len);

  typedef struct hs_hsnap_section D;
  struct hs_hsnap_section all[HS_HSNAP_MAX_SECTIONS];
  struct hs_hsnap_section sec[HS_HSNAP_SEC_KNOWN + 1];
  int have[HS_HSNAP_SEC_KNOWN + 1] = {0};
  struct hs_hsnap_section leaks = {0};
  for (uint32_t i = 0; i < nsec; i++) {
    const uint8_t *d = b + header_size + (uint64_t)i * SECTION_SIZE;
    struct hs_hsnap_section e = {
        GET(32, d, D, type), GET(32, d, D, record_size), GET(64, d, D, count),
        GET(64, d, D, offset), GET(64, d, D, length)};
    const char *what = e.type && e.type <= HS_HSNAP_SEC_KNOWN
                           ? sec_name[e.type]
                           : "unknown section";
    if (e.offset < dir_end || e.offset > len || e.length > len - e.offset)
      return fail(r, HS_ECORRUPT,
                  "%s (type %" PRIu32 "): %" PRIu64 " bytes at offset %" PRIu64
                  " lie outside [%" PRIu64 ", %" PRIu64 ")",
                  what, e.type, e.length, e.offset, dir_end, len);
    for (uint32_t j = 0; j < i; j++)
      if (e.length && all[j].length &&
          e.offset < all[j].offset + all[j].length &&
          all[j].offset < e.offset + e.length)
        return fail(r, HS_ECORRUPT,
                    "sections %" PRIu32 " and %" PRIu32 " overlap", j, i);
    all[i] = e;
    if (e.type == HS_HSNAP_SEC_LEAKS) {
      /* Optional: checked against the groups once they are read. */
      if (leaks.type)
        return fail(r, HS_ECORRUPT, "two leak-class tables");
      if (e.record_size < sizeof(struct hs_hsnap_leak) ||
          e.count > e.length / e.record_size ||
          e.count * e.record_size != e.length)
        return fail(r, HS_ECORRUPT,
                    "leak-class table: %" PRIu64 " records of %" PRIu32
                    " bytes don't match its length of %" PRIu64 " bytes",
                    e.count, e.record_size, e.length);
      leaks = e;
      continue;
    }
    if (!e.type || e.type > HS_HSNAP_SEC_KNOWN)
      continue; /* a later minor's section: bounds checked, content skipped */
    if (have[e.type])
      return fail(r, HS_ECORRUPT, "two %ss", what);
    if (e.record_size < sec_min_rs[e.type] ||
        (e.type == HS_HSNAP_SEC_STRTAB && e.record_size != 1))
      return fail(r, HS_ECORRUPT,
                  "%s: records of %" PRIu32
                  " bytes, this version's are %" PRIu32,
                  what, e.record_size, sec_min_rs[e.type]);
    /* Divide, don't multiply: count is whatever the file says. */
    if (e.count > e.length / e.record_size ||
        e.count * e.record_size != e.length ||
        (e.type != HS_HSNAP_SEC_GROUPS && e.count >= UINT32_MAX))
      return fail(r, HS_ECORRUPT,
                  "%s: %" PRIu64 " records of %" PRIu32
                  " bytes don't match its length of %" PRIu64 " bytes",
                  what, e.count, e.record_size, e.length);
    have[e.type] = 1;
    sec[e.type] = e;
  }
  for (unsigned t = 1; t <= HS_HSNAP_SEC_REQUIRED; t++)
    if (!have[t])
      return fail(r, HS_ECORRUPT, "no %s", sec_name[t]);

  const struct hs_hsnap_section *st = &sec[HS_HSNAP_SEC_STRTAB];
  const uint8_t *strtab = b + st->offset;
  uint64_t nstr = st->count;
  if (nstr && strtab[nstr - 1] != '\0')
    return fail(r, HS_ECORRUPT, "string table: last byte is not NUL");
  uint32_t program = GET(32, b, H, program);
  if (!ref_ok(program, nstr))
    return fail(r, HS_ECORRUPT,
                "header: program string ref %" PRIu32
                " is outside the string table (%" PRIu64 " bytes)",
                program, nstr);

  struct hs_snapshot *s = calloc(1, sizeof *s);
  if (!s)
    return fail(r, HS_ENOMEM, "out of memory");
  hs__snapshot_locks_init(s);
  int rc = HS_ENOMEM;
  s->symbolized = 1;
  s->pid = GET(64, b, H, pid);
  s->time_ns = GET(64, b, H, time_ns);
  s->nframe = GET(32, b, H, nframe);
  s->traced_current = GET(64, b, H, traced_current);
  s->traced_peak = GET(64, b, H, traced_peak);
  s->dropped_traces = GET(64, b, H, dropped_traces);
  s->dropped_bytes = GET(64, b, H, dropped_bytes);
  s->tracer_memory = GET(64, b, H, tracer_memory);
  s->program = program;
  /* Fields past 1.0's 96 bytes exist only when the header holds them. */
  if (header_size >= offsetof(H, sample_rate) + sizeof(uint64_t))
    s->sample_rate = GET(64, b, H, sample_rate);
  if (header_size >= offsetof(H, temporary_ns) + sizeof(uint64_t))
    s->temp_ns = GET(64, b, H, temporary_ns);
  /* hs_set_sample_rate() allows up to 2^40; a larger rate would turn the
   * estimates into garbage. */
  if (s->sample_rate > ((uint64_t)1 << 40)) {
    rc = fail(r, HS_ECORRUPT,
              "header: sample rate %" PRIu64 " is above 2^40",
              s->sample_rate);
    goto bad;
  }

  if (!(s->strtab = alloc_n(nstr, 1)))
    goto nomem;
  if (nstr)
    memcpy(s->strtab, strtab, (size_t)nstr);
  s->strtab_len = (uint32_t)nstr;
  s->strtab_cap = nstr ? (uint32_t)nstr : 1;

  const struct hs_hsnap_section *ms = &sec[HS_HSNAP_SEC_MODULES];
  typedef struct hs_hsnap_module M;
  if (!(s->modules.mods = alloc_n(ms->count, sizeof(hs_module_t))))
    goto nomem;
  s->modules.count = (uint32_t)ms->count;
  for (uint32_t i = 0; i < s->modules.count; i++) {
    const uint8_t *p = b + ms->offset + (uint64_t)i * ms->record_size;
    hs_module_t *m = &s->modules.mods[i];
    uint32_t path = GET(32, p, M, path), idlen = GET(32, p, M, build_id_len);
    uint64_t bias = GET(64, p, M, bias), start = GET(64, p, M, start),
             end = GET(64, p, M, end);
    if (path >= nstr) {
      rc = fail(r, HS_ECORRUPT,
                "module %" PRIu32 ": path string ref %" PRIu32
                " is outside the string table (%" PRIu64 " bytes)",
                i, path, nstr);
      goto bad;
    }
    if (idlen > sizeof m->build_id) {
      rc =
          fail(r, HS_ECORRUPT,
               "module %" PRIu32 ": build-id of %" PRIu32 " bytes, at most %zu",
               i, idlen, sizeof m->build_id);
      goto bad;
    }
#if UINTPTR_MAX < UINT64_MAX
    if (bias > UINTPTR_MAX || end > UINTPTR_MAX) {
      rc = fail(r, HS_ECORRUPT,
                "module %" PRIu32 ": addresses wider than this host's", i);
      goto bad;
    }
#endif
    if (start > end) {
      rc = fail(r, HS_ECORRUPT,
                "module %" PRIu32 ": end 0x%" PRIx64 " before start 0x%" PRIx64,
                i, end, start);
      goto bad;
    }
    if (i && start < s->modules.mods[i - 1].start) {
      rc = fail(r, HS_ECORRUPT,
                "module %" PRIu32 ": starts at 0x%" PRIx64
                ", below module %" PRIu32 " (modules are sorted by start)",
                i, start, i - 1);
      goto bad;
    }
    if (!(m->path = strdup((const char *)strtab + path)))
      goto nomem;
    m->build_id_len = idlen;
    memcpy(m->build_id, p + offsetof(M, build_id), idlen);
    m->bias = (uintptr_t)bias;
    m->start = (uintptr_t)start;
    m->end = (uintptr_t)end;
  }

  const struct hs_hsnap_section *ls = &sec[HS_HSNAP_SEC_LOCS];
  typedef struct hs_hsnap_loc L;
  if (!(s->locs = alloc_n(ls->count, sizeof(hs_loc_t))))
    goto nomem;
  s->nlocs = (uint32_t)ls->count;
  for (uint32_t i = 0; i < s->nlocs; i++) {
    const uint8_t *p = b + ls->offset + (uint64_t)i * ls->record_size;
    hs_loc_t *l = &s->locs[i];
    l->function = GET(32, p, L, function);
    l->file = GET(32, p, L, file);
    l->line = GET(32, p, L, line);
    l->module = (int32_t)GET(32, p, L, module);
    l->offset = GET(64, p, L, offset);
    if (!ref_ok(l->function, nstr) || !ref_ok(l->file, nstr)) {
      rc = fail(r, HS_ECORRUPT,
                "location %" PRIu32 ": string ref %" PRIu32
                " is outside the string table (%" PRIu64 " bytes)",
                i, ref_ok(l->function, nstr) ? l->file : l->function, nstr);
      goto bad;
    }
    if (l->module < -1 ||
        (l->module >= 0 && (uint32_t)l->module >= s->modules.count)) {
      rc = fail(r, HS_ECORRUPT,
                "location %" PRIu32 ": module index %" PRId32 " (%" PRIu32
                " modules)",
                i, l->module, s->modules.count);
      goto bad;
    }
  }

  const struct hs_hsnap_section *sls = &sec[HS_HSNAP_SEC_STACK_LOCS];
  if (!(s->stack_locs = alloc_n(sls->count, sizeof(uint32_t))))
    goto nomem;
  s->nstack_locs = (uint32_t)sls->count;
  for (uint32_t i = 0; i < s->nstack_locs; i++) {
    uint32_t v = get32(b + sls->offset + (uint64_t)i * sls->record_size);
    if (v >= s->nlocs) {
      rc = fail(r, HS_ECORRUPT,
                "stack location %" PRIu32 ": location index %" PRIu32
                " (%" PRIu32 " locations)",
                i, v, s->nlocs);
      goto bad;
    }
    s->stack_locs[i] = v;
  }

  const struct hs_hsnap_section *ss = &sec[HS_HSNAP_SEC_STACKS];
  typedef struct hs_hsnap_stack S;
  if (!(s->stacks = alloc_n(ss->count, sizeof(hs_snap_stack_t))))
    goto nomem;
  s->nstacks = (uint32_t)ss->count;
  for (uint32_t i = 0; i < s->nstacks; i++) {
    const uint8_t *p = b + ss->offset + (uint64_t)i * ss->record_size;
    uint32_t first = GET(32, p, S, first), nloc = GET(32, p, S, nloc);
    if ((uint64_t)first + nloc > s->nstack_locs) {
      rc = fail(r, HS_ECORRUPT,
                "stack %" PRIu32 ": locs [%" PRIu32 ", %" PRIu32 " + %" PRIu32
                ") run past the %" PRIu32 " stack locations",
                i, first, first, nloc, s->nstack_locs);
      goto bad;
    }
    s->stacks[i].first = first;
    s->stacks[i].nloc = nloc;
  }

  const struct hs_hsnap_section *gs = &sec[HS_HSNAP_SEC_GROUPS];
  typedef struct hs_hsnap_group G;
  if (!(s->groups = alloc_n(gs->count, sizeof(hs_group_t))))
    goto nomem;
  s->ngroups = gs->count;
  for (uint64_t i = 0; i < s->ngroups; i++) {
    const uint8_t *p = b + gs->offset + i * gs->record_size;
    hs_group_t *g = &s->groups[i];
    g->domain = GET(32, p, G, domain);
    g->stack = GET(32, p, G, stack);
    g->size = GET(64, p, G, size);
    g->count = GET(64, p, G, count);
    if (g->stack >= s->nstacks) {
      rc = fail(r, HS_ECORRUPT,
                "group %" PRIu64 ": stack index %" PRIu32 " (%" PRIu32
                " stacks)",
                i, g->stack, s->nstacks);
      goto bad;
    }
  }
  if (have[HS_HSNAP_SEC_COUNTERS]) {
    const struct hs_hsnap_section *cs = &sec[HS_HSNAP_SEC_COUNTERS];
    typedef struct hs_hsnap_counters C;
    if (cs->count != s->nstacks) {
      rc = fail(r, HS_ECORRUPT,
                "stack-counter table: %" PRIu64 " records for %" PRIu32
                " stacks",
                cs->count, s->nstacks);
      goto bad;
    }
    if (!(s->ctrs = alloc_n(cs->count, sizeof *s->ctrs)))
      goto nomem;
    for (uint32_t i = 0; i < s->nstacks; i++) {
      const uint8_t *p = b + cs->offset + (uint64_t)i * cs->record_size;
      hs_snap_ctr_t *k = &s->ctrs[i];
      k->allocs = GET(64, p, C, allocs);
      k->bytes = GET(64, p, C, bytes);
      k->frees = GET(64, p, C, frees);
      k->temp = GET(64, p, C, temporary);
      k->temp_time = GET(64, p, C, temporary_time);
      for (int j = 0; j < 32 && j < HS_LIFETIME_BUCKETS; j++)
        k->hist[j] = get64(p + offsetof(C, lifetime) + 8 * j);
    }
  }
  if (leaks.type) {
    if (leaks.count != s->ngroups) {
      rc = fail(r, HS_ECORRUPT,
                "leak-class table: %" PRIu64 " records for %" PRIu64
                " groups",
                leaks.count, s->ngroups);
      goto bad;
    }
    if (!(s->group_leak = alloc_n(s->ngroups, sizeof *s->group_leak)))
      goto nomem;
    for (uint64_t i = 0; i < s->ngroups; i++) {
      uint32_t k = get32(b + leaks.offset + i * leaks.record_size);
      if (k >= HS_LEAK_KINDS) {
        rc = fail(r, HS_ECORRUPT,
                  "group %" PRIu64 ": leak class %" PRIu32 " (at most %d)", i,
                  k, HS_LEAK_KINDS - 1);
        goto bad;
      }
      s->group_leak[i] = k;
    }
  }
  *out = s;
  return 0;
nomem:
  rc = fail(r, HS_ENOMEM, "out of memory");
bad:
  snap_free(s);
  return rc;
}

int hs__hsnap_read_mem(const void *buf, size_t len, const char *name,
                       struct hs_snapshot **out, char *err, size_t errlen) {
  struct rd r = {buf, len, name ? name : "(memory)", err, errlen};
  if (err && errlen)
    err[0] = '\0';
  if (!out || (!buf && len))
    return fail(&r, HS_EINVAL, "invalid argument");
  *out = NULL;
  return parse(&r, out);
}

static const char *file_kind(mode_t m) {
  return S_ISDIR(m)    ? "a directory"
         : S_ISFIFO(m) ? "a FIFO"
         : S_ISSOCK(m) ? "a socket"
         : S_ISCHR(m)  ? "a character device"
         : S_ISBLK(m)  ? "a block device"
                       : "a special file";
}

int hs__hsnap_read(const char *path, struct hs_snapshot **out, char *err,
                   size_t errlen) {
  struct rd r = {NULL, 0, path ? path : "(null)", err, errlen};
  if (err && errlen)
    err[0] = '\0';
  if (!path || !out)
    return fail(&r, HS_EINVAL, "invalid argument");
  *out = NULL;
  /* O_NONBLOCK: opening a FIFO with no writer (or a tty, or some devices)
   * would wait forever; only a regular file is read, and it never blocks
   * once the flag is cleared. */
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    struct stat ls;
    /* A socket cannot be opened at all (ENXIO): name what it is instead. */
    if (e == ENXIO && stat(path, &ls) == 0 && !S_ISREG(ls.st_mode))
      fail(&r, HS_EIO, "not a regular file (%s)", file_kind(ls.st_mode));
    else
      fail(&r, HS_EIO, "cannot open: %s", strerror(e));
    errno = e;
    return HS_EIO;
  }
  struct stat st;
  uint8_t *buf = NULL;
  int rc, e = 0;
  if (fstat(fd, &st)) {
    e = errno;
    rc = fail(&r, HS_EIO, "cannot stat: %s", strerror(e));
    goto out;
  }
  if (!S_ISREG(st.st_mode)) {
    e = EINVAL;
    rc = fail(&r, HS_EIO, "not a regular file (%s)", file_kind(st.st_mode));
    goto out;
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
    e = errno;
    rc = fail(&r, HS_EIO, "cannot read: %s", strerror(e));
    goto out;
  }
  uint64_t size = (uint64_t)st.st_size;
  size_t want = size > HS_HSNAP_MAX_FILE ? HS_HSNAP_MAGIC_LEN : (size_t)size;
  if (!(buf = malloc(want ? want : 1))) {
    e = ENOMEM;
    rc = fail(&r, HS_ENOMEM, "out of memory");
    goto out;
  }
  /* The file may shrink under us: what was read is the file. */
  size_t got = 0;
  while (got < want) {
    ssize_t n = read(fd, buf + got, want - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      e = errno;
      rc = fail(&r, HS_EIO, "read failed: %s", strerror(e));
      goto out;
    }
    if (n == 0)
      break;
    got += (size_t)n;
  }
  r.b = buf;
  r.len = got;
  rc = size > HS_HSNAP_MAX_FILE ? too_big(&r, got, size) : parse(&r, out);
out:
  close(fd);
  free(buf);
  if (e)
    errno = e;
  return rc;
}
