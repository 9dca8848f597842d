/* text.c - tracemalloc's text formats: sizes, Statistic, StatisticDiff and
 * Traceback.format(), byte for byte where tracemalloc defines them. */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot.h"

char *hs_format_size(double size, int sign, char *buf, size_t len) {
  static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  if (!buf || !len)
    return buf;
  for (int u = 0; u < 5; u++) {
    if (fabs(size) < 100 && u != 0) {
      snprintf(buf, len, sign ? "%+.1f %s" : "%.1f %s", size, units[u]);
      return buf;
    }
    if (fabs(size) < 10 * 1024 || u == 4) {
      snprintf(buf, len, sign ? "%+.0f %s" : "%.0f %s", size, units[u]);
      return buf;
    }
    size /= 1024;
  }
  return buf;
}

static const char *base_name(const char *path) {
  const char *s = path ? strrchr(path, '/') : NULL;
  return s ? s + 1 : path;
}

int hs_frame_format(const hs_frame_t *f, hs_key_t key, char *buf, size_t len) {
  if (!f)
    return snprintf(buf, len, "<unknown>");
  const char *mod = base_name(f->module);
  switch (key) {
  case HS_KEY_FILENAME:
    if (f->filename)
      return snprintf(buf, len, "%s", f->filename);
    break;
  case HS_KEY_FUNCTION:
    if (f->function && f->filename)
      return snprintf(buf, len, "%s (%s)", f->function, f->filename);
    if (f->function)
      return snprintf(buf, len, "%s [%s]", f->function, mod ? mod : "?");
    break;
  case HS_KEY_LINENO:
  case HS_KEY_TRACEBACK:
    if (f->filename)
      return snprintf(buf, len, "%s:%u", f->filename, f->lineno);
    if (f->function)
      return snprintf(buf, len, "[%s] %s", mod ? mod : "?", f->function);
    break;
  }
  if (mod && key == HS_KEY_FILENAME)
    return snprintf(buf, len, "[%s]", mod);
  if (mod)
    return snprintf(buf, len, "[%s] +0x%llx", mod,
                    (unsigned long long)f->offset);
  return snprintf(buf, len, "<unknown> 0x%llx", (unsigned long long)f->offset);
}

/* The frame a statistic prints: its only frame, or for a traceback its
 * site (heapsnap's choice; tracemalloc prints the oldest, which in C is
 * _start). */
static int key_text(const hs_frame_t *frames, size_t n, size_t site,
                    hs_key_t key, char *buf, size_t len) {
  return hs_frame_format(n ? &frames[site < n ? site : 0] : NULL, key, buf,
                         len);
}

int hs__statistic_text(const hs_statistic_t *st, const hs_statistic_diff_t *d,
                       hs_key_t key, const char *kind, char *buf, size_t len) {
  char k[4096], sz[32], dsz[32], avg[32];
  int kn = d ? key_text(d->frames, d->nframe, d->site, key, k, sizeof k)
             : key_text(st->frames, st->nframe, st->site, key, k, sizeof k);
  if (kind && kn >= 0 && (size_t)kn < sizeof k)
    snprintf(k + kn, sizeof k - (size_t)kn, " (%s)", kind);
  if (!d) {
    hs_format_size((double)st->size, 0, sz, sizeof sz);
    if (!st->count)
      return snprintf(buf, len, "%s: size=%s, count=%llu", k, sz,
                      (unsigned long long)st->count);
    hs_format_size((double)st->size / (double)st->count, 0, avg, sizeof avg);
    return snprintf(buf, len, "%s: size=%s, count=%llu, average=%s", k, sz,
                    (unsigned long long)st->count, avg);
  }
  hs_format_size((double)d->size, 0, sz, sizeof sz);
  hs_format_size((double)d->size_diff, 1, dsz, sizeof dsz);
  int n = snprintf(buf, len, "%s: size=%s (%s), count=%llu (%+lld)", k, sz,
                   dsz, (unsigned long long)d->count, (long long)d->count_diff);
  if (!d->count || n < 0)
    return n;
  hs_format_size((double)d->size / (double)d->count, 0, avg, sizeof avg);
  size_t used = (size_t)n < len ? (size_t)n : (len ? len - 1 : 0);
  return n + snprintf(buf ? buf + used : NULL, len > used ? len - used : 0,
                      ", average=%s", avg);
}

int hs_statistic_format(const hs_statistic_t *st, hs_key_t key, char *buf,
                        size_t len) {
  return hs__statistic_text(st, NULL, key, NULL, buf, len);
}

int hs_statistic_diff_format(const hs_statistic_diff_t *d, hs_key_t key,
                             char *buf, size_t len) {
  return hs__statistic_text(NULL, d, key, NULL, buf, len);
}

/* The classes are the snapshots' (a snapshot loaded from a file carries
 * them without any check in this process), so their names are here. */
const char *hs_leak_kind_name(int kind) {
  switch (kind) {
  case HS_LEAK_DEFINITE:
    return "definitely lost";
  case HS_LEAK_INDIRECT:
    return "indirectly lost";
  case HS_LEAK_POSSIBLE:
    return "possibly lost";
  case HS_LEAK_REACHABLE:
    return "still reachable";
  case HS_LEAK_SUPPRESSED:
    return "suppressed";
  default:
    return "unchecked";
  }
}

/* The source line, stripped, as linecache.getline().strip() gives it. */
static int read_source_line(const char *path, unsigned lineno, char *out,
                            size_t len) {
  if (!path || !lineno || !len)
    return 0;
  /* The path comes from a snapshot file, which may be hostile: only a
   * regular file is read (/dev/zero never ends a line, a FIFO blocks), and
   * O_NONBLOCK keeps the open itself from waiting on a FIFO. */
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  struct stat st;
  FILE *f = NULL;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || !(f = fdopen(fd, "r"))) {
    close(fd);
    return 0;
  }
  char line[1024];
  unsigned n = 0;
  int found = 0;
  while (fgets(line, sizeof line, f)) {
    size_t l = strlen(line);
    int whole = l > 0 && line[l - 1] == '\n';
    if (++n == lineno) {
      char *p = line;
      while (*p == ' ' || *p == '\t')
        p++;
      l = strlen(p);
      while (l && (p[l - 1] == '\n' || p[l - 1] == '\r' || p[l - 1] == ' ' ||
                   p[l - 1] == '\t'))
        p[--l] = '\0';
      snprintf(out, len, "%s", p);
      found = l > 0;
      break;
    }
    /* A line longer than the buffer continues in the next fgets. */
    while (!whole && fgets(line, sizeof line, f)) {
      l = strlen(line);
      whole = l > 0 && line[l - 1] == '\n';
    }
  }
  fclose(f);
  return found;
}

int hs_traceback_format(const hs_frame_t *frames, size_t nframe, int limit,
                        int most_recent_first, char *buf, size_t len) {
  /* frames come most recent first; tracemalloc's order is oldest first. */
  size_t lo = 0, hi = nframe; /* range in oldest-first indexes */
  if (limit > 0 && (size_t)limit < nframe)
    lo = nframe - (size_t)limit;
  else if (limit < 0)
    hi = (size_t)-limit < nframe ? (size_t)-limit : nframe;
  size_t used = 0;
  int total = 0;
  for (size_t k = 0; k < hi - lo; k++) {
    size_t oldest_idx = most_recent_first ? hi - 1 - k : lo + k;
    const hs_frame_t *f = &frames[nframe - 1 - oldest_idx];
    char where[4096], src[1024];
    if (f->filename)
      snprintf(where, sizeof where, "  File \"%s\", line %u\n", f->filename,
               f->lineno);
    else {
      char t[4000];
      hs_frame_format(f, HS_KEY_TRACEBACK, t, sizeof t);
      snprintf(where, sizeof where, "  %s\n", t);
    }
    int n = snprintf(buf ? buf + used : NULL, len > used ? len - used : 0,
                     "%s", where);
    total += n;
    used = (size_t)total < len ? (size_t)total : (len ? len - 1 : 0);
    if (read_source_line(f->filename, f->lineno, src, sizeof src)) {
      n = snprintf(buf ? buf + used : NULL, len > used ? len - used : 0,
                   "    %s\n", src);
      total += n;
      used = (size_t)total < len ? (size_t)total : (len ? len - 1 : 0);
    }
  }
  if (total == 0 && buf && len)
    buf[0] = '\0';
  return total;
}
