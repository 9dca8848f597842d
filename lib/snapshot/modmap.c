/* modmap.c - the history of loaded modules: every module a traced stack
 * pointed into, kept after it is dlclose'd, so that a snapshot taken later
 * (at exit, typically) still resolves frames of unloaded libraries. */
#define _GNU_SOURCE
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../trace/trace.h"
#include "snapshot.h"

/* Address ranges of every module seen, published as an immutable sorted
 * array so the check on a new stack takes no lock. Replaced arrays are
 * kept (module changes are rare), because a reader may still use one. */
typedef struct ranges {
  uint32_t n;
  struct { uintptr_t start, end; } r[];
} ranges_t;

static _Atomic(ranges_t *) published;
/* In the fork table (runtime.c): taken by prepare, so the child's history
 * is never half-merged. Taken after the loader's lock, never before. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static hs_module_list_t history;  /* protected by mu */
static unsigned long long last_adds; /* protected by mu */
static ranges_t **retired;        /* protected by mu */
static size_t nretired;           /* protected by mu */

static int covered(const ranges_t *rs, uintptr_t a) {
  uint32_t lo = 0, hi = rs ? rs->n : 0;
  while (lo < hi) {
    uint32_t mid = (lo + hi) / 2;
    if (a < rs->r[mid].start)
      hi = mid;
    else if (a >= rs->r[mid].end)
      lo = mid + 1;
    else
      return 1;
  }
  return 0;
}

static int first_adds(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  *(unsigned long long *)arg = info->dlpi_adds;
  return 1;
}

static int same_module(const hs_module_t *a, const hs_module_t *b) {
  return a->bias == b->bias && a->start == b->start &&
         strcmp(a->path ? a->path : "", b->path ? b->path : "") == 0;
}

/* Adds the modules of cur that history lacks, and republishes. mu held. */
static void merge_locked(const hs_module_list_t *cur) {
  int added = 0;
  for (uint32_t i = 0; i < cur->count; i++) {
    int known = 0;
    for (uint32_t j = 0; j < history.count && !known; j++)
      known = same_module(&cur->mods[i], &history.mods[j]);
    if (known)
      continue;
    hs_module_list_t one = {&cur->mods[i], 1}, copy;
    if (hs__modules_copy(&copy, &one) != 0)
      continue;
    hs_module_t *nm =
        realloc(history.mods, (history.count + 1) * sizeof *history.mods);
    if (!nm) {
      hs__modules_free(&copy);
      continue;
    }
    history.mods = nm;
    history.mods[history.count++] = copy.mods[0];
    free(copy.mods);
    added = 1;
  }
  if (!added)
    return;
  ranges_t *rs = malloc(sizeof *rs + history.count * sizeof rs->r[0]);
  ranges_t **nr = realloc(retired, (nretired + 1) * sizeof *nr);
  if (!rs || !nr) {
    free(rs);
    if (nr)
      retired = nr;
    return;
  }
  retired = nr;
  rs->n = history.count;
  for (uint32_t i = 0; i < history.count; i++) {
    uint32_t k = i;
    /* Insertion sort by start: the list is short. */
    while (k > 0 && rs->r[k - 1].start > history.mods[i].start) {
      rs->r[k] = rs->r[k - 1];
      k--;
    }
    rs->r[k].start = history.mods[i].start;
    rs->r[k].end = history.mods[i].end;
  }
  ranges_t *old = atomic_exchange(&published, rs);
  if (old)
    retired[nretired++] = old;
}

/* The trace layer calls this after recording a stack it had not seen,
 * with no lock of its own held: dl_iterate_phdr takes the loader lock. */
static void note_new_stack(const uintptr_t *frames, int n) {
  ranges_t *rs = atomic_load(&published);
  int all = 1;
  for (int i = 0; i < n && all; i++)
    all = covered(rs, frames[i]);
  if (all)
    return;
  /* The loader's lock is taken before mu is: a thread inside dl_iterate_phdr
   * never holds a heapsnap lock, so the fork's prepare (which calls
   * dl_iterate_phdr before taking any) never waits on itself. */
  if (!hs__loader_enter())
    return; /* a fork child whose loader lock may be held: left unmapped */
  unsigned long long adds = 0;
  dl_iterate_phdr(first_adds, &adds);
  pthread_mutex_lock(&mu);
  /* Only a load since the last look can explain an unknown frame (JIT
   * code never will: do not rescan for it). */
  if (adds != last_adds) {
    last_adds = adds;
    hs_module_list_t cur;
    if (hs__modules_capture(&cur) == 0) {
      merge_locked(&cur);
      hs__modules_free(&cur);
    }
  }
  pthread_mutex_unlock(&mu);
  hs__loader_exit();
}

__attribute__((constructor)) static void modmap_install(void) {
  hs__trace_set_new_stack_hook(note_new_stack);
}

int hs__modmap_merge_into(hs_module_list_t *mods) {
  hs__guard_enter();
  pthread_mutex_lock(&mu);
  merge_locked(mods);
  int rc = 0;
  /* Modules seen earlier and gone now are appended after the live ones. */
  for (uint32_t j = 0; j < history.count && rc == 0; j++) {
    int live = 0;
    for (uint32_t i = 0; i < mods->count && !live; i++)
      live = same_module(&history.mods[j], &mods->mods[i]);
    if (live)
      continue;
    hs_module_list_t one = {&history.mods[j], 1}, copy;
    if ((rc = hs__modules_copy(&copy, &one)) != 0)
      break;
    hs_module_t *nm =
        realloc(mods->mods, (mods->count + 1) * sizeof *mods->mods);
    if (!nm) {
      hs__modules_free(&copy);
      rc = HS_ENOMEM;
      break;
    }
    mods->mods = nm;
    mods->mods[mods->count++] = copy.mods[0];
    free(copy.mods);
  }
  /* Keep the list sorted by start, as hs__modules_find and files want. */
  for (uint32_t i = 1; i < mods->count; i++) {
    hs_module_t m = mods->mods[i];
    uint32_t k = i;
    for (; k > 0 && mods->mods[k - 1].start > m.start; k--)
      mods->mods[k] = mods->mods[k - 1];
    mods->mods[k] = m;
  }
  pthread_mutex_unlock(&mu);
  hs__guard_exit();
  return rc;
}

void hs__modmap_fork_prepare(void) { pthread_mutex_lock(&mu); }
void hs__modmap_fork_parent(void) { pthread_mutex_unlock(&mu); }
void hs__modmap_fork_child(void) { pthread_mutex_init(&mu, NULL); }
