/* heapsnap.c - the launcher: `heapsnap run [options] -- PROGRAM [ARGS...]`
 * preloads libheapsnap into an unmodified program, passes its exit status
 * through unchanged, and reports where the snapshots are and the top sites. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <getopt.h>
#include <limits.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "heapsnap.h"
#include "session/options.h"
#include "http/http.h"
#include "session/session.h"

#ifndef HS_BUILD_LIBDIR
#define HS_BUILD_LIBDIR ""
#endif
#ifndef HS_INSTALL_LIBDIR
#define HS_INSTALL_LIBDIR ""
#endif

static const char *me = "heapsnap";

static void usage(FILE *f) {
  fprintf(f,
"Usage: heapsnap run [OPTIONS] -- PROGRAM [ARGS...]\n"
"       heapsnap --help | --version\n"
"\n"
"Runs PROGRAM with libheapsnap preloaded, tracing every heap allocation, and\n"
"writes .hsnap snapshots (read them with snapdiff). PROGRAM's output and exit\n"
"status are passed through unchanged; heapsnap's own report goes to stderr.\n"
"\n"
"Options:\n"
"  -n, --frames N        frames per stack, 1 to 256 (default 16)\n"
"  -o, --output TEMPLATE snapshot path; %%p process id, %%n sequence number,\n"
"                        %%e program name, %%%% a percent sign\n"
"                        (default ./heapsnap.%%e.%%p.%%n.hsnap)\n"
"      --signal SIG      take a snapshot when SIG arrives (e.g. USR2)\n"
"      --interval SECS   take a snapshot every SECS seconds\n"
"      --every-bytes N   take a snapshot each time the traced heap grows by\n"
"                        N bytes (K, M, G suffixes)\n"
"      --at-peak         keep a snapshot of the heap at its peak (file %%n=peak)\n"
"      --no-at-exit      do not take the snapshot at exit (the leaks)\n"
"      --sample BYTES    record one allocation per BYTES on average (Poisson\n"
"                        sampling, for always-on use; 'default' is 64K);\n"
"                        snapshots then hold unbiased estimates\n"
"  -w, --wrapper PAT     treat functions matching PAT as allocation wrappers\n"
"                        (file:PAT and module:PAT for the other kinds)\n"
"      --http ADDR       serve pprof heap profiles at http://ADDR/debug/pprof/\n"
"                        ([IP:]PORT, loopback unless an IP is given; port 0\n"
"                        picks one and says it; unix:PATH for a socket)\n"
"      --no-follow       trace neither forked children nor exec'd programs\n"
"      --no-follow-fork  do not trace forked children\n"
"      --no-follow-exec  do not trace programs started with exec\n"
"      --top N           sites in the final report (default 10, 0 = none)\n"
"      --leaks           check for leaks at exit (stop the threads, scan from\n"
"                        the roots as LeakSanitizer does); the report shows\n"
"                        definitely lost first, in valgrind's words\n"
"      --suppressions F  leaks matching F's fun:/obj: lines are suppressed\n"
"                        in the report (also HEAPSNAP_SUPPRESSIONS)\n"
"  -q, --quiet           no report at the end\n"
"  -h, --help            this help\n"
"  -V, --version         the version\n"
"\n"
"Environment read by the preloaded library (set by this launcher):\n"
"  HEAPSNAP_FRAMES, HEAPSNAP_OUTPUT, HEAPSNAP_SIGNAL, HEAPSNAP_INTERVAL,\n"
"  HEAPSNAP_EVERY_BYTES, HEAPSNAP_AT_PEAK, HEAPSNAP_PEAK_INTERVAL,\n"
"  HEAPSNAP_AT_EXIT, HEAPSNAP_WRAPPERS, HEAPSNAP_SAMPLE, HEAPSNAP_FOLLOW_FORK,\n"
"  HEAPSNAP_FOLLOW_EXEC, HEAPSNAP_DEFER, HEAPSNAP_UNWIND, HEAPSNAP_WARM,\n"
"  HEAPSNAP_HTTP, HEAPSNAP_HTTP_FILE (docs/pprof-endpoint.md), HEAPSNAP_LEAKS,\n"
"  HEAPSNAP_LEAK_STOP (auto, ptrace or signal: docs/leaks.md).\n"
"  See docs/launcher.md.\n");
}

/* The library next to this program, in the build tree or the install. */
static int find_library(char *out, size_t len) {
  const char *env = getenv("HEAPSNAP_LIBRARY");
  if (env && *env) {
    snprintf(out, len, "%s", env);
    return access(out, R_OK) == 0 ? 0 : -1;
  }
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0)
    return -1;
  exe[n] = '\0';
  char *slash = strrchr(exe, '/');
  if (slash)
    *slash = '\0';
  const char *cands[] = {"%s/../lib/libheapsnap.so",
                         "%s/../../lib/libheapsnap.so",
                         "%s/../lib64/libheapsnap.so", "%s/libheapsnap.so"};
  for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
    snprintf(out, len, cands[i], exe);
    char real[PATH_MAX];
    if (access(out, R_OK) == 0 && realpath(out, real)) {
      snprintf(out, len, "%s", real);
      return 0;
    }
  }
  const char *fixed[] = {HS_BUILD_LIBDIR, HS_INSTALL_LIBDIR};
  for (size_t i = 0; i < 2; i++) {
    if (!*fixed[i])
      continue;
    snprintf(out, len, "%s/libheapsnap.so", fixed[i]);
    if (access(out, R_OK) == 0)
      return 0;
  }
  return -1;
}

/* Checks arg for the setting HEAPSNAP_<name> as the library will check it
 * (one table for both, options.c), so that a bad value is the launcher's
 * error before the program runs, never tracing left off in silence. */
static int checked(const char *name, const char *arg, hs_optval_t *x) {
  const hs_opt_t *o = hs__opt_find(name);
  if (o && hs__opt_parse(o, arg, x) == 0)
    return 0;
  fprintf(stderr, "%s: --%s %s: %s\n", me, o && o->flag ? o->flag : name,
          arg, o ? o->told : "not a setting");
  return -1;
}

/* The template's directory and its file name as an fnmatch pattern. */
static void template_parts(const char *tmpl, char *dir, size_t dlen,
                           char *pat, size_t plen) {
  const char *slash = strrchr(tmpl, '/');
  if (slash) {
    snprintf(dir, dlen, "%.*s", (int)(slash - tmpl), tmpl);
    if (!*dir)
      snprintf(dir, dlen, "/");
  } else {
    snprintf(dir, dlen, ".");
  }
  const char *name = slash ? slash + 1 : tmpl;
  size_t o = 0;
  for (const char *p = name; *p && o + 2 < plen; p++) {
    if (*p == '%' && p[1] && p[1] != '%') {
      pat[o++] = '*';
      p++;
    } else if (*p == '%' && p[1] == '%') {
      pat[o++] = '%';
      p++;
    } else {
      if (strchr("*?[\\", *p))
        pat[o++] = '\\';
      pat[o++] = *p;
    }
  }
  pat[o] = '\0';
}

typedef struct found {
  char path[PATH_MAX + 512];
  struct timespec mtime;
} found_t;

static int by_mtime(const void *a, const void *b) {
  const found_t *x = a, *y = b;
  if (x->mtime.tv_sec != y->mtime.tv_sec)
    return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
  if (x->mtime.tv_nsec != y->mtime.tv_nsec)
    return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
  return strcmp(x->path, y->path);
}

/* Snapshots matching the template written since start, oldest first. */
static found_t *list_snapshots(const char *tmpl, time_t start, size_t *n) {
  char dir[PATH_MAX], pat[PATH_MAX];
  template_parts(tmpl, dir, sizeof dir, pat, sizeof pat);
  *n = 0;
  DIR *d = opendir(dir);
  if (!d)
    return NULL;
  found_t *list = NULL;
  size_t cap = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (fnmatch(pat, e->d_name, 0) != 0 || strstr(e->d_name, ".tmp."))
      continue;
    char path[PATH_MAX + 512];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >=
        sizeof path)
      continue;
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_mtime < start)
      continue;
    if (*n == cap) {
      cap = cap ? cap * 2 : 16;
      found_t *nl = realloc(list, cap * sizeof *nl);
      if (!nl)
        break;
      list = nl;
    }
    memcpy(list[*n].path, path, sizeof path);
    list[*n].mtime = st.st_mtim;
    ++*n;
  }
  closedir(d);
  if (*n)
    qsort(list, *n, sizeof *list, by_mtime);
  return list;
}

/* Drops from list what was already there, unchanged, before the run. */
static size_t only_new(found_t *list, size_t n, const found_t *before,
                       size_t nb) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    int old = 0;
    for (size_t j = 0; j < nb && !old; j++)
      old = !strcmp(list[i].path, before[j].path) &&
            list[i].mtime.tv_sec == before[j].mtime.tv_sec &&
            list[i].mtime.tv_nsec == before[j].mtime.tv_nsec;
    if (!old)
      list[k++] = list[i];
  }
  return k;
}

/* A regex over the template's file name whose group number *group holds the
 * %p digits (REG_EXTENDED, anchored); -1 when the template has no %p. The
 * program name may hold anything, digits and dots included: the greedy %e
 * group leaves the rightmost fit to %p, which the names end with. */
static int pid_regex(const char *tmpl, regex_t *re, int *group) {
  const char *slash = strrchr(tmpl, '/');
  const char *name = slash ? slash + 1 : tmpl;
  if (!strstr(name, "%p"))
    return -1;
  char rx[3 * PATH_MAX];
  size_t o = 0;
  int have_pid = 0, groups = 0;
  rx[o++] = '^';
  for (const char *p = name; *p && o + 32 < sizeof rx; p++) {
    const char *add = NULL;
    char lit[3] = {0};
    if (*p == '%' && p[1]) {
      p++;
      if (*p == 'p' && !have_pid++)
        add = "([0-9]+)", *group = ++groups;
      else if (*p == 'p')
        add = "[0-9]+";
      else if (*p == 'n')
        add = "([0-9]+|peak)", groups++;
      else if (*p == 'e')
        add = ".*";
      else
        add = "%";
    } else {
      if (strchr(".[]()*+?{}|^$\\", *p))
        lit[0] = '\\', lit[1] = *p;
      else
        lit[0] = *p;
      add = lit;
    }
    size_t l = strlen(add);
    memcpy(rx + o, add, l);
    o += l;
  }
  rx[o++] = '$';
  rx[o] = '\0';
  return regcomp(re, rx, REG_EXTENDED) == 0 ? 0 : -1;
}

/* The process id in a snapshot's file name, or -1. */
static long name_pid(const regex_t *re, int group, const char *path) {
  const char *slash = strrchr(path, '/');
  const char *name = slash ? slash + 1 : path;
  regmatch_t m[64];
  if (group >= 64 || regexec(re, name, (size_t)group + 1, m, 0) != 0 ||
      m[group].rm_so < 0)
    return -1;
  return strtol(name + m[group].rm_so, NULL, 10);
}

static int cmp_long(const void *a, const void *b) {
  long x = *(const long *)a, y = *(const long *)b;
  return (x > y) - (x < y);
}

/* --suppressions (or HEAPSNAP_SUPPRESSIONS): applied to the exit report. */
static const char *suppressions;

/* The leak check's verdict, when the snapshot carries one: valgrind's
 * summary, then the definitely lost sites (what to fix first), then the
 * other classes. */
static void leak_report(hs_snapshot_t *s, const char *pick, int top) {
  char err[512];
  hs_leak_summary_t sum;
  if (!hs_snapshot_leak_summary(s, &sum))
    return;
  if (suppressions) {
    int64_t n = hs_snapshot_leak_suppress(s, suppressions, err, sizeof err);
    if (n < 0)
      fprintf(stderr, "%s: %s\n", me, *err ? err : hs_strerror((int)n));
    hs_snapshot_leak_summary(s, &sum);
  }
  static const int order[] = {HS_LEAK_DEFINITE, HS_LEAK_INDIRECT,
                              HS_LEAK_POSSIBLE, HS_LEAK_REACHABLE,
                              HS_LEAK_SUPPRESSED};
  fprintf(stderr, "%s: leak check at exit (%s):\n", me, pick);
  for (size_t k = 0; k < sizeof order / sizeof order[0]; k++)
    fprintf(stderr, "%s:   %15s: %llu bytes in %llu blocks\n", me,
            hs_leak_kind_name(order[k]),
            (unsigned long long)sum.bytes[order[k]],
            (unsigned long long)sum.blocks[order[k]]);
  for (size_t k = 0; k < 3; k++) {
    hs_snapshot_t *f;
    hs_statistics_t *st;
    if (!sum.blocks[order[k]] ||
        hs_snapshot_filter_leaks(s, 1u << order[k], &f) != 0)
      continue;
    if (hs_snapshot_statistics(f, HS_KEY_LINENO, 0, &st) == 0) {
      fprintf(stderr, "%s: %s, by line:\n", me, hs_leak_kind_name(order[k]));
      for (size_t i = 0; i < hs_statistics_count(st) && i < (size_t)top;
           i++) {
        char line[4096];
        hs_statistic_format(hs_statistics_get(st, i), HS_KEY_LINENO, line,
                            sizeof line);
        fprintf(stderr, "%s:   #%zu %s\n", me, i + 1, line);
      }
      hs_statistics_free(st);
    }
    hs_snapshot_free(f);
  }
}

/* The final report is about the program the launcher started: its own
 * snapshots (the child's pid, which an exec'd image keeps) and the top
 * sites of its newest one. Every other process that wrote files is
 * counted, with where they are, but never stands in for it. */
static void report(const char *tmpl, time_t start, const found_t *before,
                   size_t nb, pid_t child, const char *command, int top) {
  size_t n;
  found_t *list = list_snapshots(tmpl, start, &n);
  n = only_new(list, n, before, nb);
  if (!n) {
    fprintf(stderr, "%s: no snapshot was written (template %s)\n", me, tmpl);
    free(list);
    return;
  }
  regex_t re;
  int group = 0;
  int by_pid = pid_regex(tmpl, &re, &group) == 0;
  /* Mine first, in time order; the others' pids counted once each. */
  long *others = malloc(n * sizeof *others);
  size_t mine = 0, nother = 0, nproc = 0;
  for (size_t i = 0; i < n; i++) {
    long pid = by_pid ? name_pid(&re, group, list[i].path) : (long)child;
    if (pid == (long)child) {
      found_t t = list[i];
      memmove(list + mine + 1, list + mine, (i - mine) * sizeof *list);
      list[mine++] = t;
    } else if (others) {
      others[nother++] = pid;
    }
  }
  if (by_pid)
    regfree(&re);
  if (others && nother) {
    qsort(others, nother, sizeof *others, cmp_long);
    for (size_t i = 0; i < nother; i++)
      nproc += i == 0 || others[i] != others[i - 1];
  }
  free(others);
  if (!mine)
    fprintf(stderr, "%s: %s (pid %ld) wrote no snapshot (a process that "
                    "ends with _exit, exec or a signal writes no exit "
                    "snapshot)\n", me, command, (long)child);
  else
    fprintf(stderr, "%s: %s (pid %ld) wrote %zu snapshot%s:\n", me, command,
            (long)child, mine, mine == 1 ? "" : "s");
  size_t shown = 0;
  for (size_t i = 0; i < mine; i++) {
    if (mine > 20 && i >= 10 && i < mine - 10) {
      if (!shown++)
        fprintf(stderr, "%s:   ... %zu more ...\n", me, mine - 20);
      continue;
    }
    fprintf(stderr, "%s:   %s\n", me, list[i].path);
  }
  if (n > mine) {
    char dir[PATH_MAX], pat[PATH_MAX];
    template_parts(tmpl, dir, sizeof dir, pat, sizeof pat);
    fprintf(stderr, "%s: %zu other traced process%s wrote %zu "
                    "snapshot%s: %s/%s\n", me, nproc ? nproc : 1,
            nproc == 1 ? "" : "es", n - mine, n - mine == 1 ? "" : "s",
            strcmp(dir, "/") ? dir : "", pat);
  }
  /* The newest snapshot that is not the peak: its leaks at exit. */
  const char *pick = NULL;
  for (size_t i = mine; i-- > 0 && !pick;)
    if (!strstr(list[i].path, ".peak."))
      pick = list[i].path;
  if (!pick && mine)
    pick = list[mine - 1].path;
  hs_snapshot_t *s;
  char err[512];
  if (!pick || top <= 0) {
    /* nothing of the program's own to show */
  } else if (hs_snapshot_load(pick, &s, err, sizeof err) == 0) {
    leak_report(s, pick, top);
    hs_statistics_t *st;
    hs_statistics_info_t si;
    if (hs_snapshot_statistics(s, HS_KEY_LINENO, 0, &st) == 0 &&
        hs_statistics_get_info(st, &si, sizeof si) == 0) {
      char sz[32];
      fprintf(stderr,
              "%s: top %d allocation sites by line in %s (total %s "
              "in %llu blocks%s):\n",
              me, top, pick,
              hs_format_size((double)si.total_size, 0, sz, sizeof sz),
              (unsigned long long)si.total_count,
              si.sample_rate ? "; sampled, so these are estimates" : "");
      for (size_t i = 0; i < si.count && i < (size_t)top; i++) {
        char line[4096];
        hs_statistic_format(hs_statistics_get(st, i), HS_KEY_LINENO, line,
                            sizeof line);
        fprintf(stderr, "%s:   #%zu %s\n", me, i + 1, line);
      }
      hs_statistics_free(st);
    }
    hs_snapshot_free(s);
  } else {
    fprintf(stderr, "%s: %s\n", me, err);
  }
  free(list);
}

static int setenv_checked(const char *k, const char *v) {
  if (setenv(k, v, 1) != 0) {
    fprintf(stderr, "%s: cannot set %s: %s\n", me, k, strerror(errno));
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  enum {
    O_SIGNAL = 256, O_INTERVAL, O_EVERY, O_PEAK, O_NOEXIT, O_NOFOLLOW,
    O_NOFORK, O_NOEXEC, O_TOP, O_SAMPLE, O_HTTP, O_LEAKS, O_SUPPRESSIONS
  };
  static const struct option opts[] = {
      {"frames", required_argument, 0, 'n'},
      {"output", required_argument, 0, 'o'},
      {"signal", required_argument, 0, O_SIGNAL},
      {"interval", required_argument, 0, O_INTERVAL},
      {"every-bytes", required_argument, 0, O_EVERY},
      {"at-peak", no_argument, 0, O_PEAK},
      {"no-at-exit", no_argument, 0, O_NOEXIT},
      {"wrapper", required_argument, 0, 'w'},
      {"no-follow", no_argument, 0, O_NOFOLLOW},
      {"no-follow-fork", no_argument, 0, O_NOFORK},
      {"no-follow-exec", no_argument, 0, O_NOEXEC},
      {"top", required_argument, 0, O_TOP},
      {"sample", required_argument, 0, O_SAMPLE},
      {"http", required_argument, 0, O_HTTP},
      {"leaks", no_argument, 0, O_LEAKS},
      {"suppressions", required_argument, 0, O_SUPPRESSIONS},
      {"quiet", no_argument, 0, 'q'},
      {"help", no_argument, 0, 'h'},
      {"version", no_argument, 0, 'V'},
      {0, 0, 0, 0}};
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
    printf("heapsnap %s\n", HS_VERSION_STRING);
    return 0;
  }
  if (strcmp(argv[1], "run") != 0) {
    fprintf(stderr, "%s: unknown command '%s' (try 'heapsnap --help')\n", me,
            argv[1]);
    return 2;
  }
  int frames = HS_DEFAULT_FRAMES, top = 10, quiet = 0;
  char output[PATH_MAX] = "heapsnap.%e.%p.%n.hsnap";
  char wrappers[8192] = "";
  const char *signal_name = NULL, *interval = NULL, *every = NULL,
             *sample = NULL, *http = NULL;
  int at_peak = 0, at_exit = 1, leaks = 0, follow_fork = 1, follow_exec = 1;
  optind = 2;
  int c;
  hs_optval_t x;
  while ((c = getopt_long(argc, argv, "+n:o:w:qhV", opts, NULL)) != -1) {
    char *end;
    switch (c) {
    case 'n':
      if (checked("FRAMES", optarg, &x))
        return 2;
      frames = (int)x.i;
      break;
    case 'o':
      if (checked("OUTPUT", optarg, &x))
        return 2;
      snprintf(output, sizeof output, "%s", optarg);
      break;
    case O_SIGNAL:
      if (checked("SIGNAL", optarg, &x))
        return 2;
      signal_name = optarg;
      break;
    case O_INTERVAL:
      if (checked("INTERVAL", optarg, &x))
        return 2;
      interval = optarg;
      break;
    case O_EVERY:
      if (checked("EVERY_BYTES", optarg, &x))
        return 2;
      every = optarg;
      break;
    case O_HTTP:
      if (checked("HTTP", optarg, &x))
        return 2;
      http = optarg;
      break;
    case O_PEAK: at_peak = 1; break;
    case O_SAMPLE:
      if (checked("SAMPLE", optarg, &x))
        return 2;
      sample = optarg;
      break;
    case O_NOEXIT: at_exit = 0; break;
    case O_LEAKS: leaks = 1; break;
    case O_SUPPRESSIONS: suppressions = optarg; break;
    case 'w':
      if (checked("WRAPPERS", optarg, &x))
        return 2;
      if (strlen(wrappers) + strlen(optarg) + 2 >= sizeof wrappers ||
          strchr(optarg, ',')) {
        fprintf(stderr, "%s: --wrapper %s: too long or contains a comma\n",
                me, optarg);
        return 2;
      }
      if (*wrappers)
        strcat(wrappers, ",");
      strcat(wrappers, optarg);
      break;
    case O_NOFOLLOW: follow_fork = follow_exec = 0; break;
    case O_NOFORK: follow_fork = 0; break;
    case O_NOEXEC: follow_exec = 0; break;
    case O_TOP:
      errno = 0;
      top = (int)strtol(optarg, &end, 10);
      if (errno || *end || top < 0) {
        fprintf(stderr, "%s: --top %s: expected a number >= 0\n", me, optarg);
        return 2;
      }
      break;
    case 'q': quiet = 1; break;
    case 'h': usage(stdout); return 0;
    case 'V': printf("heapsnap %s\n", HS_VERSION_STRING); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind >= argc) {
    fprintf(stderr, "%s: no program to run (heapsnap run [OPTIONS] -- "
                    "PROGRAM [ARGS...])\n", me);
    return 2;
  }
  /* The environment the program inherits is checked as its options are:
   * the library would only leave tracing off. */
  for (size_t i = 0; hs__opt_at(i); i++) {
    const hs_opt_t *o = hs__opt_at(i);
    char env[64];
    snprintf(env, sizeof env, "HEAPSNAP_%s", o->name);
    const char *v = getenv(env);
    if (v && *v && hs__opt_parse(o, v, &x) != 0) {
      fprintf(stderr, "%s: %s=%s: %s\n", me, env, v, o->told);
      return 2;
    }
  }
  char lib[PATH_MAX];
  if (find_library(lib, sizeof lib) != 0) {
    fprintf(stderr, "%s: cannot find libheapsnap.so (set HEAPSNAP_LIBRARY)\n",
            me);
    return 1;
  }
  /* An absolute template: the program may change directory. */
  char abs[2 * PATH_MAX + 2];
  if (output[0] != '/') {
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) {
      fprintf(stderr, "%s: getcwd: %s\n", me, strerror(errno));
      return 1;
    }
    snprintf(abs, sizeof abs, "%s/%s", cwd, output);
    if (strlen(abs) >= PATH_MAX - 64) {
      fprintf(stderr, "%s: --output %s: path too long\n", me, abs);
      return 2;
    }
  } else {
    snprintf(abs, sizeof abs, "%s", output);
  }
  char dir[PATH_MAX], pat[PATH_MAX];
  template_parts(abs, dir, sizeof dir, pat, sizeof pat);
  struct stat dst;
  int derr = 0;
  /* Root passes access() for a regular file too: check the kind first. */
  if (stat(dir, &dst) != 0)
    derr = errno;
  else if (!S_ISDIR(dst.st_mode))
    derr = ENOTDIR;
  else if (access(dir, W_OK) != 0)
    derr = errno;
  if (derr) {
    fprintf(stderr, "%s: cannot write snapshots in %s: %s\n", me, dir,
            strerror(derr));
    return 1;
  }
  if (follow_fork || follow_exec) {
    /* Every traced process writes files: one template without the pid
     * would have them replace each other's (a %n name is taken by the
     * first to check it). The library would add it too, but in every
     * process that inherits the template; here it is said once. */
    char with_pid[sizeof abs];
    int added = hs__template_add_pid(abs, with_pid, sizeof with_pid);
    if (added < 0 || strlen(with_pid) >= PATH_MAX - 64) {
      fprintf(stderr, "%s: --output %s: path too long\n", me, abs);
      return 2;
    }
    if (added && !quiet)
      fprintf(stderr, "%s: --output %s has no %%p and child processes are "
                      "traced: writing %s, one name per process "
                      "(--no-follow keeps the name)\n", me, output, with_pid);
    snprintf(abs, sizeof abs, "%s", with_pid);
  }
  char preload[PATH_MAX * 3], num[32];
  const char *old = getenv("LD_PRELOAD");
  snprintf(preload, sizeof preload, "%s%s%s", lib, old && *old ? ":" : "",
           old && *old ? old : "");
  snprintf(num, sizeof num, "%d", frames);
  if (setenv_checked("LD_PRELOAD", preload) ||
      setenv_checked("HEAPSNAP_FRAMES", num) ||
      setenv_checked("HEAPSNAP_OUTPUT", abs) ||
      setenv_checked("HEAPSNAP_AT_EXIT", at_exit ? "1" : "0") ||
      setenv_checked("HEAPSNAP_FOLLOW_FORK", follow_fork ? "1" : "0") ||
      setenv_checked("HEAPSNAP_FOLLOW_EXEC", follow_exec ? "1" : "0") ||
      (signal_name && setenv_checked("HEAPSNAP_SIGNAL", signal_name)) ||
      (http && setenv_checked("HEAPSNAP_HTTP", http)) ||
      (interval && setenv_checked("HEAPSNAP_INTERVAL", interval)) ||
      (every && setenv_checked("HEAPSNAP_EVERY_BYTES", every)) ||
      (at_peak && setenv_checked("HEAPSNAP_AT_PEAK", "1")) ||
      (sample && setenv_checked("HEAPSNAP_SAMPLE", sample)) ||
      (*wrappers && setenv_checked("HEAPSNAP_WRAPPERS", wrappers)) ||
      (leaks && setenv_checked("HEAPSNAP_LEAKS", "1")))
    return 1;
  if (!suppressions && getenv("HEAPSNAP_SUPPRESSIONS") &&
      *getenv("HEAPSNAP_SUPPRESSIONS"))
    suppressions = getenv("HEAPSNAP_SUPPRESSIONS");

  time_t start = time(NULL);
  size_t nbefore = 0;
  found_t *before = quiet ? NULL : list_snapshots(abs, 0, &nbefore);
  /* As system() does: the terminal's SIGINT and SIGQUIT go to the program;
   * the launcher waits for it and reports. */
  struct sigaction ign = {0}, old_int, old_quit;
  ign.sa_handler = SIG_IGN;
  sigaction(SIGINT, &ign, &old_int);
  sigaction(SIGQUIT, &ign, &old_quit);
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "%s: fork: %s\n", me, strerror(errno));
    return 1;
  }
  if (pid == 0) {
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGQUIT, &old_quit, NULL);
    execvp(argv[optind], argv + optind);
    int e = errno;
    fprintf(stderr, "%s: cannot run %s: %s\n", me, argv[optind], strerror(e));
    _exit(e == ENOENT ? 127 : 126);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (!quiet) {
    /* The command as the user typed it, short enough for one line. */
    char command[160];
    size_t o = 0;
    for (int i = optind; i < argc && o + 4 < sizeof command; i++) {
      int w = snprintf(command + o, sizeof command - o, "%s%s",
                       i > optind ? " " : "", argv[i]);
      if (w < 0 || (size_t)w >= sizeof command - o) {
        snprintf(command + sizeof command - 4, 4, "...");
        break;
      }
      o += (size_t)w;
    }
    report(abs, start, before, nbefore, pid, command, top);
  }
  free(before);
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) {
    /* Die the same way, so the caller sees the same status. */
    int sig = WTERMSIG(status);
    signal(sig, SIG_DFL);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGQUIT, &old_quit, NULL);
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none); /* the program already dumped its core */
    raise(sig);
    return 128 + sig;
  }
  return 1;
}
