/* http_scrape.c - what a scrape of the pprof endpoint costs a traced
 * process: NBLOCKS live blocks from 256 stacks, two threads timing their
 * malloc/free loop, and the main thread scraping /debug/pprof/heap from
 * its own endpoint (usage: http_scrape [NBLOCKS [SCRAPES [THREADS]]],
 * default 1000000 9 2); prints each scrape's latency and the longest gap the
 * allocating threads saw during it against a quiet phase of equal length.
 * Run under the preload (BENCHMARKS.md):
 *   HEAPSNAP_FRAMES=16 HEAPSNAP_AT_EXIT=0 HEAPSNAP_HTTP=127.0.0.1:0 \
 *   HEAPSNAP_HTTP_FILE=/tmp/addr LD_PRELOAD=libheapsnap.so http_scrape */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXPHASE 64
#define MAXTHREAD 8
static int nthread = 2;

static atomic_int phase = -1; /* -1: warming up; MAXPHASE: stop */
static _Atomic uint64_t maxgap[MAXTHREAD][MAXPHASE];
static _Atomic uint64_t ops[MAXTHREAD][MAXPHASE];
static void *volatile *blocks;
static size_t nblocks, used;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* 256 stacks of 11 frames (under the default 16): eight levels, each
 * entered through one of two functions, chosen by the bits of path. */
__attribute__((noinline)) static void leaf(size_t n) {
  for (size_t i = 0; i < n && used < nblocks; i++)
    blocks[used++] = malloc(48);
}
static void walk(int level, unsigned path, size_t n);
__attribute__((noinline)) static void via_a(int level, unsigned path,
                                            size_t n) {
  walk(level + 1, path, n);
  __asm__ volatile("" ::: "memory"); /* no tail call: keep the frame */
}
__attribute__((noinline)) static void via_b(int level, unsigned path,
                                            size_t n) {
  walk(level + 1, path, n);
  __asm__ volatile("" ::: "memory");
}
static void walk(int level, unsigned path, size_t n) {
  if (level == 8)
    leaf(n);
  else if (path >> level & 1)
    via_a(level, path, n);
  else
    via_b(level, path, n);
}

static void *churn(void *arg) {
  int me = (int)(intptr_t)arg;
  enum { RING = 1024 };
  void *ring[RING] = {0};
  uint64_t prev = now_ns();
  for (size_t i = 0;; i++) {
    int ph = atomic_load_explicit(&phase, memory_order_relaxed);
    if (ph >= MAXPHASE)
      break;
    uint64_t t = now_ns(), gap = t - prev;
    prev = t;
    if (ph >= 0) {
      if (gap > atomic_load_explicit(&maxgap[me][ph], memory_order_relaxed))
        atomic_store_explicit(&maxgap[me][ph], gap, memory_order_relaxed);
      atomic_fetch_add_explicit(&ops[me][ph], 1, memory_order_relaxed);
    }
    free(ring[i % RING]);
    ring[i % RING] = malloc(32 + (i & 63));
  }
  for (int i = 0; i < RING; i++)
    free(ring[i]);
  return NULL;
}

static char resp[64 << 20];

/* One GET over a new connection; returns the bytes received or -1. */
static long scrape(const struct sockaddr_in *sa, const char *path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, (const struct sockaddr *)sa, sizeof *sa) != 0)
    return -1;
  char req[256];
  int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: b\r\n\r\n",
                   path);
  if (write(fd, req, (size_t)n) != n)
    return -1;
  size_t got = 0;
  ssize_t r;
  while ((r = read(fd, resp + got, sizeof resp - got)) > 0)
    got += (size_t)r;
  close(fd);
  return strncmp(resp, "HTTP/1.1 200", 12) ? -1 : (long)got;
}

static double ms(uint64_t ns) { return (double)ns / 1e6; }

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_u64);
  return v[n / 2];
}

int main(int argc, char **argv) {
  nblocks = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
  int nscrape = argc > 2 ? atoi(argv[2]) : 9;
  if (nscrape < 1 || 2 * nscrape + 1 >= MAXPHASE)
    nscrape = 5;
  nthread = argc > 3 ? atoi(argv[3]) : 2;
  if (nthread < 1 || nthread > MAXTHREAD)
    nthread = 2;
  const char *file = getenv("HEAPSNAP_HTTP_FILE_BENCH");
  char addr[128] = "";
  FILE *f = file ? fopen(file, "r") : NULL;
  if (!f || !fgets(addr, sizeof addr, f)) {
    fprintf(stderr, "http_scrape: set HEAPSNAP_HTTP_FILE_BENCH to the "
                    "HEAPSNAP_HTTP_FILE path\n");
    return 2;
  }
  fclose(f);
  char *colon = strrchr(addr, ':');
  struct sockaddr_in sa = {.sin_family = AF_INET};
  if (!colon || (*colon = '\0', inet_pton(AF_INET, addr, &sa.sin_addr) != 1))
    return 2;
  sa.sin_port = htons((uint16_t)atoi(colon + 1));

  blocks = malloc(nblocks * sizeof *blocks);
  uint64_t t0 = now_ns();
  while (used < nblocks)
    for (unsigned path = 0; path < 256; path++)
      walk(0, path, nblocks / 256 + 1);
  printf("http_scrape: %zu live blocks of 48 B from 256 stacks in %.0f ms; "
         "%d threads in a malloc/free loop\n",
         used, ms(now_ns() - t0), nthread);
  pthread_t th[MAXTHREAD];
  for (int i = 0; i < nthread; i++)
    pthread_create(&th[i], NULL, churn, (void *)(intptr_t)i);
  usleep(200000);
  /* The first scrape reads the debug information; it is shown apart. */
  uint64_t s = now_ns();
  long b = scrape(&sa, "/debug/pprof/heap");
  printf("  first scrape (symbolizer cold): %.1f ms, %ld bytes\n",
         ms(now_ns() - s), b);
  uint64_t lat[MAXPHASE], gbusy[MAXPHASE], gquiet[MAXPHASE];
  for (int k = 0; k < nscrape; k++) {
    int quiet = 2 * k, busy = 2 * k + 1;
    atomic_store(&phase, busy);
    s = now_ns();
    b = scrape(&sa, "/debug/pprof/heap");
    lat[k] = now_ns() - s;
    /* The quiet phase lasts as long as the scrape did. */
    atomic_store(&phase, quiet);
    struct timespec ts = {(time_t)(lat[k] / 1000000000u),
                          (long)(lat[k] % 1000000000u)};
    nanosleep(&ts, NULL);
    if (b < 0) {
      fprintf(stderr, "http_scrape: scrape failed\n");
      return 1;
    }
    uint64_t gq = 0, gb = 0, oq = 0, ob = 0;
    for (int i = 0; i < nthread; i++) {
      gq = maxgap[i][quiet] > gq ? maxgap[i][quiet] : gq;
      gb = maxgap[i][busy] > gb ? maxgap[i][busy] : gb;
      oq += ops[i][quiet];
      ob += ops[i][busy];
    }
    gbusy[k] = gb;
    gquiet[k] = gq;
    printf("  scrape %d: %7.1f ms, %ld bytes; host threads' longest gap "
           "%6.2f ms (quiet phase: %6.2f ms); ops %.0f%% of quiet\n",
           k + 1, ms(lat[k]), b, ms(gb), ms(gq),
           oq ? 100.0 * (double)ob / (double)oq : 0.0);
  }
  uint64_t lmax = 0, bmax = 0, qmax = 0;
  for (int k = 0; k < nscrape; k++) {
    lmax = lat[k] > lmax ? lat[k] : lmax;
    bmax = gbusy[k] > bmax ? gbusy[k] : bmax;
    qmax = gquiet[k] > qmax ? gquiet[k] : qmax;
  }
  printf("latency: median %.1f ms, max %.1f ms; longest host gap during a "
         "scrape: median %.2f ms, max %.2f ms (quiet phases: median %.2f ms, "
         "max %.2f ms)\n",
         ms(median(lat, nscrape)), ms(lmax), ms(median(gbusy, nscrape)),
         ms(bmax), ms(median(gquiet, nscrape)), ms(qmax));
  /* The part of a scrape that holds table locks is the snapshot's copy of
   * the live traces; the preloaded library's hs_take_snapshot, timed
   * alone with the same phases, bounds it. */
  int (*take)(void **);
  void (*drop)(void *);
  /* POSIX's way to turn dlsym's answer into a function pointer. */
  *(void **)&take = dlsym(RTLD_DEFAULT, "hs_take_snapshot");
  *(void **)&drop = dlsym(RTLD_DEFAULT, "hs_snapshot_free");
  if (take && drop) {
    uint64_t tt[MAXPHASE], tg[MAXPHASE];
    int base = 2 * nscrape;
    int nt = (MAXPHASE - base) / 2 < nscrape ? (MAXPHASE - base) / 2
                                             : nscrape;
    for (int k = 0; k < nt; k++) {
      int busy = base + 2 * k + 1;
      atomic_store(&phase, busy);
      void *snap = NULL;
      s = now_ns();
      int rc = take(&snap);
      tt[k] = now_ns() - s;
      atomic_store(&phase, base + 2 * k);
      if (rc == 0)
        drop(snap);
      usleep(50000);
      tg[k] = 0;
      for (int i = 0; i < nthread; i++)
        tg[k] = maxgap[i][busy] > tg[k] ? maxgap[i][busy] : tg[k];
    }
    printf("hs_take_snapshot alone: median %.1f ms; longest host gap during "
           "it: median %.2f ms\n", ms(median(tt, nt)), ms(median(tg, nt)));
  }
  atomic_store(&phase, MAXPHASE);
  for (int i = 0; i < nthread; i++)
    pthread_join(th[i], NULL);
  return 0;
}
