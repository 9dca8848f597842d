/* emit.c - what several writers share: JSON string literals, CSV fields,
 * flame-graph frame labels, stack weights and a small string map. */
#include <stdlib.h>
#include <string.h>

#include "snapdiff.h"

const char *sd_key_name(hs_key_t key) {
  switch (key) {
  case HS_KEY_FILENAME:
    return "filename";
  case HS_KEY_FUNCTION:
    return "function";
  case HS_KEY_TRACEBACK:
    return "traceback";
  case HS_KEY_LINENO:
  default:
    return "lineno";
  }
}

const char *sd_kind_name(sd_kind_t kind) {
  return kind == SD_COMPARE    ? "compare"
         : kind == SD_TIMELINE ? "timeline"
                               : "statistics";
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlongs,
 * no surrogates, nothing past U+10FFFF), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *p) {
  unsigned c = p[0];
  if (c < 0x80)
    return 1;
  if (c >= 0xc2 && c <= 0xdf)
    return (p[1] & 0xc0) == 0x80 ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    unsigned lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
    return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    unsigned lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
    return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 &&
                   (p[3] & 0xc0) == 0x80
               ? 4
               : 0;
  }
  return 0;
}

void sd_json_str(FILE *out, const char *s, int html) {
  if (!s) {
    fputs("null", out);
    return;
  }
  const unsigned char *p = (const unsigned char *)s;
  putc('"', out);
  while (*p) {
    unsigned c = *p;
    size_t n = utf8_len(p);
    if (n == 0) {
      /* Paths are bytes, JSON is Unicode: show what cannot be decoded as
       * the replacement character rather than emit invalid JSON. */
      fputs("\\ufffd", out);
      p++;
      continue;
    }
    if (n > 1) {
      /* U+2028/2029 end a line in pre-2019 JavaScript. */
      if (html && n == 3 && p[0] == 0xe2 && p[1] == 0x80 &&
          (p[2] == 0xa8 || p[2] == 0xa9))
        fprintf(out, "\\u%04x", 0x2000u + (p[2] - 0x80u));
      else
        fwrite(p, 1, n, out);
      p += n;
      continue;
    }
    switch (c) {
    case '"':
      fputs("\\\"", out);
      break;
    case '\\':
      fputs("\\\\", out);
      break;
    case '\n':
      fputs("\\n", out);
      break;
    case '\r':
      fputs("\\r", out);
      break;
    case '\t':
      fputs("\\t", out);
      break;
    default:
      if (c < 0x20 || (html && (c == '<' || c == '>' || c == '&')))
        fprintf(out, "\\u%04x", c);
      else
        putc((int)c, out);
    }
    p++;
  }
  putc('"', out);
}

char *sd_utf8_dup(const char *s) {
  size_t n = strlen(s);
  char *d = malloc(3 * n + 1), *q = d;
  if (!d)
    return NULL;
  for (const unsigned char *p = (const unsigned char *)s; *p;) {
    size_t k = utf8_len(p);
    if (k == 0) {
      memcpy(q, "\xef\xbf\xbd", 3); /* U+FFFD */
      q += 3;
      p++;
    } else {
      memcpy(q, p, k);
      q += k;
      p += k;
    }
  }
  *q = '\0';
  return d;
}

void sd_csv_field(FILE *out, const char *s) {
  if (!s)
    return;
  if (!strpbrk(s, ",\"\r\n")) {
    fputs(s, out);
    return;
  }
  putc('"', out);
  for (; *s; s++) {
    if (*s == '"')
      putc('"', out);
    putc(*s, out);
  }
  putc('"', out);
}

const char *sd_basename(const char *path) {
  if (!path)
    return NULL;
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

int sd_frame_label(const hs_frame_t *f, char *buf, size_t len) {
  const char *mod = sd_basename(f->module);
  int n;
  if (f->function && f->filename)
    n = snprintf(buf, len, "%s (%s:%u)", f->function, sd_basename(f->filename),
                 f->lineno);
  else if (f->function)
    n = snprintf(buf, len, "%s [%s]", f->function, mod ? mod : "?");
  else if (f->filename)
    n = snprintf(buf, len, "%s:%u", sd_basename(f->filename), f->lineno);
  else if (mod)
    n = snprintf(buf, len, "[%s] +0x%llx", mod, (unsigned long long)f->offset);
  else
    n = snprintf(buf, len, "0x%llx", (unsigned long long)f->offset);
  /* ';' separates frames and a line break ends a stack in folded files. */
  for (char *p = buf; len && *p; p++)
    if (*p == ';')
      *p = ':';
    else if (*p == '\n' || *p == '\r')
      *p = ' ';
  return n;
}

static uint64_t pos(int64_t v) { return v > 0 ? (uint64_t)v : 0; }

uint64_t sd_stack_metric(const sd_report_t *r, const sd_row_t *s, int metric) {
  int one = r->kind == SD_STATISTICS;
  switch (metric) {
  case HS_SORT_ALLOCATED:
    return one ? s->alloc_size : pos(s->alloc_size_diff);
  case HS_SORT_COUNT:
    return one ? s->alloc_count : pos(s->alloc_count_diff);
  case HS_SORT_TEMPORARY:
    return one ? s->temporary : pos(s->temporary_diff);
  default:
    return one ? s->size : pos(s->size_diff);
  }
}

const char *sd_sort_name(int sort) {
  static const char *const names[] = {"live", "allocated", "count",
                                      "temporary"};
  return sort >= 0 && sort <= HS_SORT_TEMPORARY ? names[sort] : "live";
}

/* The stack formats weigh stacks by the metric --sort chose. */
uint64_t sd_stack_weight(const sd_report_t *r, const sd_row_t *s) {
  return sd_stack_metric(r, s, r->sort);
}

uint64_t sd_stack_count(const sd_report_t *r, const sd_row_t *s) {
  if (r->kind == SD_STATISTICS)
    return s->count;
  return s->count_diff > 0 ? (uint64_t)s->count_diff : 0;
}

/* ---- string map ---- */

static uint64_t hash(const char *s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
  return h ^ (h >> 29);
}

static int grow(sd_strmap_t *m) {
  size_t cap = m->cap ? m->cap * 2 : 256;
  char **keys = calloc(cap, sizeof *keys);
  size_t *vals = calloc(cap, sizeof *vals);
  if (!keys || !vals) {
    free(keys);
    free(vals);
    return -1;
  }
  for (size_t i = 0; i < m->cap; i++) {
    if (!m->keys[i])
      continue;
    size_t j = hash(m->keys[i]) & (cap - 1);
    while (keys[j])
      j = (j + 1) & (cap - 1);
    keys[j] = m->keys[i];
    vals[j] = m->vals[i];
  }
  free(m->keys);
  free(m->vals);
  m->keys = keys;
  m->vals = vals;
  m->cap = cap;
  return 0;
}

size_t sd_strmap_find(const sd_strmap_t *m, const char *key) {
  if (!m->cap)
    return SIZE_MAX;
  for (size_t j = hash(key) & (m->cap - 1); m->keys[j];
       j = (j + 1) & (m->cap - 1))
    if (strcmp(m->keys[j], key) == 0)
      return m->vals[j];
  return SIZE_MAX;
}

size_t sd_strmap_intern(sd_strmap_t *m, const char *key, int *added) {
  *added = 0;
  size_t v = sd_strmap_find(m, key);
  if (v != SIZE_MAX)
    return v;
  if ((m->len + 1) * 2 > m->cap && grow(m) != 0)
    return SIZE_MAX;
  char *copy = strdup(key);
  if (!copy)
    return SIZE_MAX;
  size_t j = hash(key) & (m->cap - 1);
  while (m->keys[j])
    j = (j + 1) & (m->cap - 1);
  m->keys[j] = copy;
  m->vals[j] = m->len;
  *added = 1;
  return m->len++;
}

void sd_strmap_free(sd_strmap_t *m) {
  for (size_t i = 0; i < m->cap; i++)
    free(m->keys[i]);
  free(m->keys);
  free(m->vals);
  memset(m, 0, sizeof *m);
}
