/* snapdiff_bench.c - snapdiff's benchmark: two snapshots of 1,000,000 live
 * allocations over 10,000 distinct stacks, then every format of
 * "snapdiff OLD NEW" timed as a child process with its peak RSS. */
#include <fcntl.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "heapsnap.h"

extern char **environ;

#ifndef SNAPDIFF_BIN
#error "SNAPDIFF_BIN must name the snapdiff executable"
#endif

#define LIVE 1000000
#define STACKS 10000
#define LEVELS 7 /* 4^7 = 16384 >= STACKS distinct paths */

static uintptr_t next_ptr = 0x10000000;

/* Two bits of path choose one of four functions per level: every path is a
 * distinct stack of LEVELS frames, well inside the default depth. */
typedef void level_fn(int depth, unsigned path, int n);
static level_fn level0, level1, level2, level3;
static level_fn *const fns[4] = {level0, level1, level2, level3};

static inline __attribute__((always_inline)) void next(int depth,
                                                       unsigned path, int n) {
  if (depth == LEVELS) {
    for (int i = 0; i < n; i++)
      hs_track(0, next_ptr += 16, 16 + (path % 13) * 8);
    return;
  }
  fns[path >> (2 * depth) & 3](depth, path, n);
}
#define LEVEL_FN(k)                                                           \
  static void __attribute__((noinline)) level##k(int depth, unsigned path,    \
                                                 int n) {                     \
    next(depth + 1, path, n);                                                 \
    __asm__ volatile("" ::: "memory");                                        \
  }
LEVEL_FN(0)
LEVEL_FN(1)
LEVEL_FN(2)
LEVEL_FN(3)

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int dump(const char *path) {
  hs_snapshot_t *s = NULL;
  int rc = hs_take_snapshot(&s);
  if (rc == 0)
    rc = hs_snapshot_dump(s, path);
  hs_snapshot_free(s);
  if (rc != 0)
    fprintf(stderr, "snapdiff_bench: %s: %s\n", path, hs_strerror(rc));
  return rc;
}

/* Runs snapdiff with args, stdout to /dev/null; wall seconds and the
 * child's peak RSS in MiB. posix_spawn (vfork-like in glibc) keeps this
 * process's pages out of the child's ru_maxrss, which fork would count. */
static int run(char *const args[], double *secs, double *rss_mib) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY,
                                   0);
  fflush(stdout);
  double t0 = now();
  pid_t pid;
  int rc = posix_spawn(&pid, SNAPDIFF_BIN, &fa, NULL, args, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0)
    return -1;
  int status;
  struct rusage ru;
  if (wait4(pid, &status, 0, &ru) < 0)
    return -1;
  *secs = now() - t0;
  *rss_mib = (double)ru.ru_maxrss / 1024.0;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* One call site for both snapshots, so NEW's stacks are OLD's. */
static void __attribute__((noinline)) populate(unsigned path, int n) {
  next(0, path, n);
  __asm__ volatile("" ::: "memory");
}

/* Writes OLD and NEW; runs in a child process. 0 or 1. */
static int generate(const char *old_path, const char *new_path) {
  hs_start(HS_DEFAULT_FRAMES);
  /* One loop, one call site in this frame: NEW's stacks are OLD's stacks.
   * Round 0 fills every stack; round 1 frees a tenth of the blocks and
   * adds some on every third stack, so NEW has growth and shrinkage. */
  for (int round = 0; round < 2; round++) {
    if (round == 1)
      for (uintptr_t q = 0x10000000 + 16;
           q <= 0x10000000 + 16 * (uintptr_t)LIVE; q += 160)
        hs_untrack(0, q);
    /* volatile: the compiler must not clone the loop per round (that
     * would give round 1 call sites, hence stacks, of its own). */
    volatile unsigned step = round ? 3 : 1;
    volatile int n = round ? 3 * LIVE / STACKS / 10 + 10 : LIVE / STACKS;
    for (unsigned p = 0; p < STACKS; p += step)
      populate(p, n);
    if (dump(round ? new_path : old_path))
      return 1;
  }
  hs_snapshot_info_t in;
  hs_snapshot_t *s;
  char err[512];
  if (hs_snapshot_load(new_path, &s, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  hs_snapshot_get_info(s, &in, sizeof in);
  hs_snapshot_free(s);
  hs_stop();
  struct stat sb;
  stat(new_path, &sb);
  printf("snapdiff_bench: %llu live allocations in NEW, %llu distinct stacks, "
         ".hsnap %.0f KiB\n",
         (unsigned long long)in.count, (unsigned long long)in.stacks,
         (double)sb.st_size / 1024);

  fflush(stdout);
  return 0;
}

int main(int argc, char **argv) {
  /* snapdiff_bench [DIR]: with DIR, the snapshots stay there afterwards
   * (to time other invocations by hand). */
  char tmpl[] = "/tmp/snapdiff-bench-XXXXXX";
  const char *keep = argc > 1 ? argv[1] : NULL;
  const char *dir = keep ? keep : mkdtemp(tmpl);
  if (!dir) {
    perror("mkdtemp");
    return 1;
  }
  char old_path[4096], new_path[4096];
  snprintf(old_path, sizeof old_path, "%s/old.hsnap", dir);
  snprintf(new_path, sizeof new_path, "%s/new.hsnap", dir);
  /* The snapshots are made in a child: a child's ru_maxrss starts from its
   * parent's pages (fork copies them, exec keeps the high-water mark), so
   * the measuring process must stay small. */
  fflush(stdout);
  pid_t gen = fork();
  if (gen < 0) {
    perror("fork");
    return 1;
  }
  if (gen == 0)
    _exit(generate(old_path, new_path));
  int gst;
  if (waitpid(gen, &gst, 0) < 0 || !WIFEXITED(gst) || WEXITSTATUS(gst) != 0)
    return 1;
  struct stat sb;
  static const struct {
    const char *format;
    const char *by;
    const char *top;
    double target;
  } runs[] = {{"text", "lineno", "10", 1.0},     {"json", "lineno", "10", 2.0},
              {"csv", "lineno", "10", 2.0},      {"folded", "lineno", "10", 2.0},
              {"pprof", "lineno", "10", 2.0},    {"html", "lineno", "0", 2.0},
              {"text", "traceback", "10", 2.0},  {"json", "traceback", "0", 2.0},
              {"html", "traceback", "0", 2.0}};
  int miss = 0;
  for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
    char out[4200];
    snprintf(out, sizeof out, "%s/report.%s", dir, runs[i].format);
    char *args[] = {"snapdiff",  "--format",          (char *)runs[i].format,
                    "--by",      (char *)runs[i].by,  "--top",
                    (char *)runs[i].top, "-o",        out,
                    old_path,    new_path,            NULL};
    double secs, rss;
    if (run(args, &secs, &rss) != 0) {
      printf("  snapdiff --format %s --by %s: FAILED\n", runs[i].format,
             runs[i].by);
      miss = 1;
      continue;
    }
    stat(out, &sb);
    int pass = secs <= runs[i].target && rss <= 200;
    miss |= !pass;
    printf("  %-6s --by %-9s --top %-2s %6.3f s (<= %.0f s)  max RSS %6.1f MiB "
           "(<= 200)  output %8.0f KiB  %s\n",
           runs[i].format, runs[i].by, runs[i].top, secs, runs[i].target, rss,
           (double)sb.st_size / 1024, pass ? "PASS" : "MISS");
    unlink(out);
  }
  if (!keep) {
    unlink(old_path);
    unlink(new_path);
    rmdir(dir);
  }
  return miss ? 1 : 0;
}
