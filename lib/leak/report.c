/* report.c - leak classes in snapshots: the summary, the filter by class
 * and valgrind-style suppressions (fun:/obj: lines) applied when reporting. */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../snapshot/snapshot.h"
#include "leak.h"

HS_HIDDEN int hs__snapshot_copy(const struct hs_snapshot *s,
                                const uint8_t *keep, struct hs_snapshot **out);

int hs_snapshot_leak_summary(const hs_snapshot_t *snap,
                             hs_leak_summary_t *out) {
  if (out)
    memset(out, 0, sizeof *out);
  if (!snap)
    return 0;
  for (uint64_t g = 0; out && g < snap->ngroups; g++) {
    const hs_group_t *gr = &snap->groups[g];
    uint64_t bytes, count;
    hs__group_estimate(snap, gr, &bytes, &count);
    unsigned k = snap->group_leak && snap->group_leak[g] < HS_LEAK_KINDS
                     ? snap->group_leak[g]
                     : 0;
    out->bytes[k] += bytes;
    out->blocks[k] += count;
  }
  return snap->group_leak != NULL;
}

int hs_snapshot_filter_leaks(hs_snapshot_t *snap, unsigned kinds,
                             hs_snapshot_t **out) {
  if (!snap || !out)
    return HS_EINVAL;
  *out = NULL;
  hs__guard_enter();
  /* A copy is of the symbolized stage only. */
  int rc = hs__snapshot_symbolize(snap);
  uint8_t *keep = rc ? NULL : malloc(snap->ngroups ? snap->ngroups : 1);
  if (!rc && !keep)
    rc = HS_ENOMEM;
  if (keep) {
    for (uint64_t g = 0; g < snap->ngroups; g++) {
      unsigned k = snap->group_leak ? snap->group_leak[g] : 0;
      keep[g] = k < 32 && (kinds >> k) & 1;
    }
    rc = hs__snapshot_copy(snap, keep, out);
    free(keep);
  }
  hs__guard_exit();
  return rc;
}

typedef struct supp {
  int obj; /* 0: fun:, 1: obj: */
  char *pattern;
} supp_t;

static void supp_free(supp_t *v, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(v[i].pattern);
  free(v);
}

/* Reads fun:/obj: lines; whatever else a valgrind suppression holds (its
 * name, "Memcheck:Leak", match-leak-kinds:, "...", braces) is skipped. */
static int supp_read(const char *path, supp_t **out, size_t *nout, char *err,
                     size_t errlen) {
  FILE *f = fopen(path, "re");
  if (!f) {
    if (err && errlen)
      snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    return HS_EIO;
  }
  supp_t *v = NULL;
  size_t n = 0;
  char line[4096];
  int rc = 0;
  while (fgets(line, sizeof line, f)) {
    char *p = line;
    while (*p == ' ' || *p == '\t')
      p++;
    size_t l = strcspn(p, "\r\n");
    p[l] = '\0';
    while (l && (p[l - 1] == ' ' || p[l - 1] == '\t'))
      p[--l] = '\0';
    int obj;
    if (strncmp(p, "fun:", 4) == 0)
      obj = 0;
    else if (strncmp(p, "obj:", 4) == 0)
      obj = 1;
    else
      continue;
    supp_t *nv = realloc(v, (n + 1) * sizeof *nv);
    if (!nv || !(nv[n].pattern = strdup(p + 4))) {
      v = nv ? nv : v;
      rc = HS_ENOMEM;
      break;
    }
    v = nv;
    v[n++].obj = obj;
  }
  fclose(f);
  if (rc) {
    supp_free(v, n);
    return rc;
  }
  *out = v;
  *nout = n;
  return 0;
}

static int loc_matches(const struct hs_snapshot *s, const hs_loc_t *l,
                       const supp_t *v, size_t n) {
  const char *fn = hs__str(s, l->function);
  const char *mod = NULL, *base = NULL;
  if (l->module >= 0 && (uint32_t)l->module < s->modules.count) {
    mod = s->modules.mods[l->module].path;
    base = mod ? strrchr(mod, '/') : NULL;
    base = base ? base + 1 : mod;
  }
  for (size_t i = 0; i < n; i++) {
    if (!v[i].obj && fn && fnmatch(v[i].pattern, fn, 0) == 0)
      return 1;
    if (v[i].obj && mod &&
        (fnmatch(v[i].pattern, mod, 0) == 0 ||
         fnmatch(v[i].pattern, base, 0) == 0))
      return 1;
  }
  return 0;
}

int64_t hs_snapshot_leak_suppress(hs_snapshot_t *snap, const char *path,
                                  char *err, size_t errlen) {
  if (err && errlen)
    err[0] = '\0';
  if (!snap || !path)
    return HS_EINVAL;
  hs__guard_enter();
  supp_t *v = NULL;
  size_t n = 0;
  int64_t rc = hs__snapshot_symbolize(snap);
  if (rc == 0)
    rc = supp_read(path, &v, &n, err, errlen);
  if (rc != 0) {
    hs__guard_exit();
    return rc;
  }
  int64_t blocks = 0;
  for (uint64_t g = 0; g < snap->ngroups; g++) {
    hs_group_t *gr = &snap->groups[g];
    uint32_t *k = snap->group_leak ? &snap->group_leak[g] : NULL;
    if (!k || (*k != HS_LEAK_DEFINITE && *k != HS_LEAK_INDIRECT &&
               *k != HS_LEAK_POSSIBLE))
      continue;
    const hs_snap_stack_t *st = &snap->stacks[gr->stack];
    for (uint32_t li = 0; li < st->nloc; li++) {
      if (loc_matches(snap, &snap->locs[snap->stack_locs[st->first + li]], v,
                      n)) {
        *k = HS_LEAK_SUPPRESSED;
        blocks += (int64_t)gr->count;
        break;
      }
    }
  }
  supp_free(v, n);
  hs__guard_exit();
  return blocks;
}
