/* stress_dlopen.c - soak item c: a library is loaded, allocates (keeping
 * some blocks), and is unloaded, over and over, with snapshots taken in
 * between; the blocks it left must still resolve to its file and line
 * after the last dlclose. */
#include "stress.h"

#include <dlfcn.h>
#include <string.h>

#define KEEP 4096

static void *load(void *h, const char *name) {
  void *sym = dlsym(h, name);
  if (!sym)
    DIE("dlsym %s: %s", name, dlerror());
  return sym;
}

/* The lineno statistic for the library's allocation line, or NULL. */
static const hs_statistic_t *find_site(hs_statistics_t *st, unsigned line) {
  for (size_t i = 0; i < hs_statistics_count(st); i++) {
    const hs_frame_t *f =
        &hs_statistics_get(st, i)->frames[hs_statistics_get(st, i)->site];
    if (f->filename && f->lineno == line &&
        strstr(f->filename, "stress_dl_lib.c"))
      return hs_statistics_get(st, i);
  }
  return NULL;
}

static void check_resolves(unsigned line, uint64_t count, int loaded) {
  hs_snapshot_t *snap;
  hs_statistics_t *st;
  if (hs_take_snapshot(&snap) != 0)
    DIE("hs_take_snapshot");
  if (hs_snapshot_statistics(snap, HS_KEY_LINENO, 0, &st) != 0)
    DIE("hs_snapshot_statistics");
  const hs_statistic_t *s = find_site(st, line);
  if (!s)
    DIE("stress_dl_lib.c:%u not in the statistics (library %s)", line,
        loaded ? "loaded" : "unloaded");
  if (s->count != count)
    DIE("stress_dl_lib.c:%u has %llu blocks, %llu are live", line,
        (unsigned long long)s->count, (unsigned long long)count);
  hs_statistics_free(st);
  hs_snapshot_free(snap);
}

int main(int argc, char **argv) {
  double secs = arg_seconds(argc, argv, 10);
  if (argc < 3)
    DIE("usage: stress_dlopen SECONDS LIBRARY");
  if (hs_start(16) != 0)
    DIE("hs_start failed");
  static void *kept[KEEP];
  uint64_t nkept = 0, cycles = 0, snaps = 0, checks = 0;
  unsigned line = 0;
  double t0 = now_s(), end = t0 + secs;
  while (now_s() < end) {
    void *h = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
    if (!h)
      DIE("dlopen %s: %s", argv[2], dlerror());
    void *(*dl_alloc)(size_t);
    unsigned (*churn)(unsigned);
    void *a = load(h, "stress_dl_alloc"), *c = load(h, "stress_dl_churn");
    memcpy(&dl_alloc, &a, sizeof a);
    memcpy(&churn, &c, sizeof c);
    unsigned *linep = load(h, "stress_dl_line");
    for (int i = 0; i < 4; i++) {
      void *p = dl_alloc(24 + (size_t)i);
      if (!p)
        DIE("stress_dl_alloc");
      /* The oldest kept block makes room: the count stays exact. */
      if (nkept == KEEP) {
        free(kept[cycles % KEEP]);
        kept[cycles % KEEP] = p;
      } else {
        kept[nkept++] = p;
      }
    }
    (void)churn(32);
    line = *linep;
    if (cycles % 64 == 0)
      check_resolves(line, nkept, 1), checks++;
    if (dlclose(h) != 0)
      DIE("dlclose: %s", dlerror());
    /* A snapshot between unload and the next load, every cycle. */
    hs_snapshot_t *snap;
    if (hs_take_snapshot(&snap) != 0)
      DIE("hs_take_snapshot");
    hs_snapshot_free(snap);
    snaps++;
    if (cycles % 64 == 32)
      check_resolves(line, nkept, 0), checks++;
    cycles++;
  }
  check_resolves(line, nkept, 0), checks++;
  double elapsed = now_s() - t0;
  hs_stats_t st;
  hs_get_stats(&st, sizeof st);
  if (st.dropped_traces)
    DIE("%llu traces dropped", (unsigned long long)st.dropped_traces);
  printf("stress dlopen: %.1f s, %llu dlopen/dlclose cycles (%.0f/s), %llu "
         "snapshots, %llu symbolized checks of stress_dl_lib.c:%u (%llu "
         "blocks kept), tracer memory %llu bytes: ok\n",
         elapsed, (unsigned long long)cycles, cycles / elapsed,
         (unsigned long long)snaps, (unsigned long long)checks, line,
         (unsigned long long)nkept, (unsigned long long)st.tracer_memory);
  for (uint64_t i = 0; i < nkept; i++)
    free(kept[i]);
  return 0;
}
