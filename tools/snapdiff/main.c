/* main.c - snapdiff's command line: options, the choice of report, and an
 * output file that appears whole or not at all (temporary name + rename). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapdiff.h"

enum { EXIT_USAGE = 2 };

static const char usage_text[] =
    "usage: snapdiff [OPTION]... SNAP            statistics of one snapshot\n"
    "       snapdiff [OPTION]... OLD NEW         what changed from OLD to NEW\n"
    "       snapdiff [OPTION]... --timeline SNAP SNAP...\n"
    "                                            totals over time and what grew\n"
    "\n"
    "  --by KEY          group by lineno (default), filename, function or\n"
    "                    traceback\n"
    "  --cumulative      credit every frame of a stack, not only its site\n"
    "  --sort METRIC     live (default), allocated (bytes in all), count\n"
    "                    (blocks in all) or temporary (freed before their\n"
    "                    thread's next allocation); also the folded, pprof\n"
    "                    default and html weight\n"
    "  --top N           show the N largest keys (default 10; 0 = all; html\n"
    "                    shows all unless --top is given)\n"
    "  --include PATTERN keep traces whose site file matches (fnmatch;\n"
    "                    repeatable: any may match)\n"
    "  --exclude PATTERN drop traces whose site file matches (repeatable)\n"
    "  --domain N        keep traces of domain N (repeatable)\n"
    "  --wrapper PATTERN treat matching functions as allocation wrappers;\n"
    "                    file:PATTERN and module:PATTERN match files, modules\n"
    "  --raw             the site is frame 0, exactly as tracemalloc\n"
    "  --format FORMAT   text (default), json, csv, folded, pprof or html\n"
    "  -o, --output FILE write to FILE (default '-', standard output)\n"
    "  --timeline        treat the snapshots as a series\n"
    "  --leaks           the leak check's classes of one snapshot, in\n"
    "                    valgrind's words, and each class's sites (text, json)\n"
    "  --suppressions FILE  with --leaks: fun:/obj: lines, as valgrind's\n"
    "  -h, --help        show this help and exit\n"
    "  -V, --version     show the version and exit\n"
    "\n"
    "Exit status: 0 success, 1 bad input or output error, 2 usage error\n"
    "(including an output FILE that is one of the snapshots).\n"
    "See docs/snapdiff.md for the formats.\n";

static int usage_error(const char *fmt, const char *arg) {
  fputs("snapdiff: ", stderr);
  fprintf(stderr, fmt, arg);
  fputs("\nTry 'snapdiff --help' for more information.\n", stderr);
  return EXIT_USAGE;
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out) {
  if (!s || !*s || *s == '-' || *s == '+')
    return -1;
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno || *end || v > max)
    return -1;
  *out = v;
  return 0;
}

static int parse_format(const char *s, sd_format_t *out) {
  static const char *const names[] = {"text",   "json",  "csv",
                                      "folded", "pprof", "html"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp(s, names[i]) == 0) {
      *out = (sd_format_t)i;
      return 0;
    }
  return -1;
}

static int parse_key(const char *s, hs_key_t *out) {
  static const struct {
    const char *name;
    hs_key_t key;
  } keys[] = {{"lineno", HS_KEY_LINENO},
              {"filename", HS_KEY_FILENAME},
              {"function", HS_KEY_FUNCTION},
              {"traceback", HS_KEY_TRACEBACK}};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    if (strcmp(s, keys[i].name) == 0) {
      *out = keys[i].key;
      return 0;
    }
  return -1;
}

static int write_report(FILE *out, sd_format_t format, const sd_report_t *r,
                        int color) {
  switch (format) {
  case SD_JSON:
    return sd_write_json(out, r);
  case SD_CSV:
    return sd_write_csv(out, r);
  case SD_FOLDED:
    return sd_write_folded(out, r);
  case SD_PPROF:
    return sd_write_pprof(out, r);
  case SD_HTML:
    return sd_write_html(out, r);
  case SD_TEXT:
  default:
    return sd_write_text(out, r, color);
  }
}

/* Writes to path through a temporary file in the same directory, so a
 * reader never sees half a report and a failure leaves no file behind. */
static int write_file(const char *path, sd_format_t format,
                      const sd_report_t *r) {
  size_t n = strlen(path);
  char *tmp = malloc(n + 16);
  if (!tmp) {
    fprintf(stderr, "snapdiff: out of memory\n");
    return 1;
  }
  snprintf(tmp, n + 16, "%s.tmp.XXXXXX", path);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    fprintf(stderr, "snapdiff: %s: %s\n", path, strerror(errno));
    free(tmp);
    return 1;
  }
  /* mkstemp creates 0600; a report is an ordinary file. */
  mode_t mask = umask(0);
  umask(mask);
  if (fchmod(fd, 0666 & ~mask) != 0) {
    /* Keeping 0600 is harmless: go on. */
  }
  FILE *f = fdopen(fd, "wb");
  if (!f) {
    fprintf(stderr, "snapdiff: %s: %s\n", path, strerror(errno));
    close(fd);
    unlink(tmp);
    free(tmp);
    return 1;
  }
  errno = 0;
  int rc = write_report(f, format, r, 0);
  int err = errno;
  if (fflush(f) != 0 && !err)
    err = errno;
  if (fclose(f) != 0) {
    rc = -1;
    if (!err)
      err = errno;
  }
  if (rc == 0 && rename(tmp, path) != 0) {
    rc = -1;
    err = errno;
  }
  if (rc != 0) {
    fprintf(stderr, "snapdiff: %s: %s\n", path,
            err ? strerror(err) : "write failed");
    unlink(tmp);
    free(tmp);
    return 1;
  }
  free(tmp);
  return 0;
}

/* Refuses (exit 2, before anything is read or written) an output that
 * would destroy an input, or that a rename would put a regular file in
 * place of (a device, a FIFO, a directory): the report goes beside it under
 * a temporary name and is renamed over it, so `-o /dev/null` run as root
 * would replace the device node. A symlink to some other regular file is
 * fine: the link is replaced, its target untouched. */
static int check_output(const char *output, char *const *paths, size_t npath) {
  struct stat os;
  if (stat(output, &os) != 0)
    return 0; /* nothing there (or a dangling link): no input can be it */
  if (!S_ISREG(os.st_mode)) {
    fprintf(stderr,
            "snapdiff: %s: the output is not a regular file; use '-o -' or "
            "a redirection to write to it\n",
            output);
    return EXIT_USAGE;
  }
  char *ro = realpath(output, NULL);
  int status = 0;
  for (size_t i = 0; i < npath && !status; i++) {
    struct stat is;
    int same = stat(paths[i], &is) == 0 && is.st_dev == os.st_dev &&
               is.st_ino == os.st_ino;
    if (!same && ro) {
      char *ri = realpath(paths[i], NULL);
      same = ri && strcmp(ri, ro) == 0;
      free(ri);
    }
    if (same) {
      fprintf(stderr,
              "snapdiff: %s: the output is the input %s; the report would "
              "replace it (choose another -o)\n",
              output, paths[i]);
      status = EXIT_USAGE;
    }
  }
  free(ro);
  return status;
}

int snapdiff_main(int argc, char **argv) {
  enum {
    OPT_BY = 256,
    OPT_CUMULATIVE,
    OPT_TOP,
    OPT_INCLUDE,
    OPT_EXCLUDE,
    OPT_DOMAIN,
    OPT_WRAPPER,
    OPT_RAW,
    OPT_FORMAT,
    OPT_TIMELINE,
    OPT_SORT,
    OPT_LEAKS,
    OPT_SUPPRESSIONS
  };
  static const struct option longopts[] = {
      {"by", required_argument, NULL, OPT_BY},
      {"cumulative", no_argument, NULL, OPT_CUMULATIVE},
      {"top", required_argument, NULL, OPT_TOP},
      {"include", required_argument, NULL, OPT_INCLUDE},
      {"exclude", required_argument, NULL, OPT_EXCLUDE},
      {"domain", required_argument, NULL, OPT_DOMAIN},
      {"wrapper", required_argument, NULL, OPT_WRAPPER},
      {"raw", no_argument, NULL, OPT_RAW},
      {"format", required_argument, NULL, OPT_FORMAT},
      {"output", required_argument, NULL, 'o'},
      {"timeline", no_argument, NULL, OPT_TIMELINE},
      {"sort", required_argument, NULL, OPT_SORT},
      {"leaks", no_argument, NULL, OPT_LEAKS},
      {"suppressions", required_argument, NULL, OPT_SUPPRESSIONS},
      {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'V'},
      {NULL, 0, NULL, 0}};

  sd_options_t opt;
  memset(&opt, 0, sizeof opt);
  opt.key = HS_KEY_LINENO;
  opt.top = 10;
  int timeline = 0, leaks = 0;
  const char *output = "-", *suppressions = NULL;
  /* Each option can appear at most argc times: size the lists by that. */
  const char **includes = calloc((size_t)argc, sizeof *includes);
  const char **excludes = calloc((size_t)argc, sizeof *excludes);
  int *domains = calloc((size_t)argc, sizeof *domains);
  struct sd_wrapper *wrappers = calloc((size_t)argc, sizeof *wrappers);
  size_t ninc = 0, nexc = 0, ndom = 0;
  int status = 0;
  sd_report_t *report = NULL;
  if (!includes || !excludes || !domains || !wrappers) {
    fprintf(stderr, "snapdiff: out of memory\n");
    status = 1;
    goto out;
  }
  opt.wrappers = wrappers;

  /* optind = 0 makes glibc's getopt start over, so that snapdiff_main can
   * run more than once in one process (the fuzzer and the replay test). */
  optind = 0;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, ":o:hV", longopts, NULL)) != -1) {
    unsigned long v;
    switch (c) {
    case OPT_BY:
      if (parse_key(optarg, &opt.key) != 0) {
        status = usage_error("--by: '%s' is not lineno, filename, function or "
                             "traceback",
                             optarg);
        goto out;
      }
      opt.key_given = 1;
      break;
    case OPT_CUMULATIVE:
      opt.cumulative = 1;
      break;
    case OPT_TOP:
      if (parse_uint(optarg, (unsigned long)SIZE_MAX, &v) != 0) {
        status = usage_error("--top: '%s' is not a count (0 shows all)",
                             optarg);
        goto out;
      }
      opt.top = (size_t)v;
      opt.top_given = 1;
      break;
    case OPT_INCLUDE:
      includes[ninc++] = optarg;
      break;
    case OPT_EXCLUDE:
      excludes[nexc++] = optarg;
      break;
    case OPT_DOMAIN:
      if (parse_uint(optarg, INT_MAX, &v) != 0) {
        status = usage_error("--domain: '%s' is not a domain number", optarg);
        goto out;
      }
      domains[ndom++] = (int)v;
      break;
    case OPT_WRAPPER: {
      struct sd_wrapper *w = &wrappers[opt.nwrapper];
      if (strncmp(optarg, "file:", 5) == 0) {
        w->kind = HS_WRAP_FILE;
        w->pattern = optarg + 5;
      } else if (strncmp(optarg, "module:", 7) == 0) {
        w->kind = HS_WRAP_MODULE;
        w->pattern = optarg + 7;
      } else {
        w->kind = HS_WRAP_FUNCTION;
        w->pattern = strncmp(optarg, "function:", 9) == 0 ? optarg + 9 : optarg;
      }
      if (!*w->pattern) {
        status = usage_error("--wrapper: '%s' has an empty pattern", optarg);
        goto out;
      }
      opt.nwrapper++;
      break;
    }
    case OPT_RAW:
      opt.raw = 1;
      break;
    case OPT_FORMAT:
      if (parse_format(optarg, &opt.format) != 0) {
        status = usage_error("--format: '%s' is not text, json, csv, folded, "
                             "pprof or html",
                             optarg);
        goto out;
      }
      break;
    case 'o':
      output = optarg;
      break;
    case OPT_SORT: {
      static const char *const sorts[] = {"live", "allocated", "count",
                                          "temporary"};
      int found = -1;
      for (int i = 0; i < 4; i++)
        if (strcmp(optarg, sorts[i]) == 0)
          found = i;
      if (found < 0) {
        status = usage_error("--sort: '%s' is not live, allocated, count or "
                             "temporary",
                             optarg);
        goto out;
      }
      opt.sort = found;
      opt.sort_given = 1;
      break;
    }
    case OPT_TIMELINE:
      timeline = 1;
      break;
    case OPT_LEAKS:
      leaks = 1;
      break;
    case OPT_SUPPRESSIONS:
      suppressions = optarg;
      break;
    case 'h':
      fputs(usage_text, stdout);
      status = ferror(stdout) ? 1 : 0;
      goto out;
    case 'V':
      printf("snapdiff %s\n", HS_VERSION_STRING);
      goto out;
    case ':':
      status = usage_error("option '%s' needs an argument", argv[optind - 1]);
      goto out;
    case '?':
    default:
      status = usage_error("unknown option '%s'", argv[optind - 1]);
      goto out;
    }
  }

  size_t npath = (size_t)(argc - optind);
  char *const *paths = argv + optind;
  if (npath == 0) {
    status = usage_error("%s", "no snapshot given");
    goto out;
  }
  if (leaks || suppressions) {
    if (!leaks || npath != 1 || timeline ||
        (opt.format != SD_TEXT && opt.format != SD_JSON)) {
      status = usage_error("%s", "--leaks takes one snapshot, text or json "
                                 "(and --suppressions goes with --leaks)");
      goto out;
    }
    FILE *f = strcmp(output, "-") == 0 ? stdout : fopen(output, "w");
    if (!f) {
      fprintf(stderr, "snapdiff: %s: %s\n", output, strerror(errno));
      status = 1;
      goto out;
    }
    status = sd_write_leaks(f, paths[0], opt.format == SD_JSON, suppressions,
                            wrappers, opt.nwrapper, opt.raw);
    if ((f == stdout ? fflush(f) : fclose(f)) != 0 && !status)
      status = 1;
    goto out;
  }
  if (timeline && npath < 2) {
    status = usage_error("%s", "--timeline needs at least two snapshots");
    goto out;
  }
  if (!timeline && npath > 2) {
    status = usage_error("%s", "more than two snapshots: use --timeline for a "
                               "series");
    goto out;
  }
  opt.kind = timeline ? SD_TIMELINE : npath == 2 ? SD_COMPARE : SD_STATISTICS;
  if (opt.cumulative && opt.key == HS_KEY_TRACEBACK) {
    status = usage_error("%s", "--cumulative cannot be used with --by "
                               "traceback (a traceback is already every frame)");
    goto out;
  }
  if (opt.cumulative && (opt.format == SD_FOLDED || opt.format == SD_PPROF)) {
    status = usage_error("%s", "--cumulative does not apply to folded or pprof "
                               "stacks (flame graphs are cumulative already)");
    goto out;
  }
  int to_stdout = strcmp(output, "-") == 0;
  if (to_stdout && opt.format == SD_PPROF && isatty(STDOUT_FILENO)) {
    status = usage_error("%s", "a pprof profile is gzipped binary: write it "
                               "with -o FILE or a redirection");
    goto out;
  }
  if (!to_stdout && (status = check_output(output, paths, npath)) != 0)
    goto out;
  if (opt.format == SD_HTML && !opt.top_given)
    opt.top = 0;

  /* Filters as tracemalloc's: --include is an inclusive Filter on the
   * site's file, --exclude an exclusive one, --domain a DomainFilter. With
   * both, each include carries the domain so that the two combine with
   * "and" (inclusive filters alone would combine with "or"). */
  size_t nfilter = (ninc ? ninc * (ndom ? ndom : 1) : ndom) + nexc;
  opt.filters = calloc(nfilter ? nfilter : 1, sizeof *opt.filters);
  if (!opt.filters) {
    fprintf(stderr, "snapdiff: out of memory\n");
    status = 1;
    goto out;
  }
  for (size_t i = 0; i < ninc; i++)
    for (size_t d = 0; d < (ndom ? ndom : 1); d++)
      opt.filters[opt.nfilter++] =
          (hs_filter_t){1, includes[i], 0, 0, ndom ? domains[d] : -1};
  if (!ninc)
    for (size_t d = 0; d < ndom; d++)
      opt.filters[opt.nfilter++] = (hs_filter_t){1, NULL, 0, 0, domains[d]};
  for (size_t i = 0; i < nexc; i++)
    opt.filters[opt.nfilter++] = (hs_filter_t){0, excludes[i], 0, 0, -1};

  const char *no_color = getenv("NO_COLOR");
  opt.color = to_stdout && opt.format == SD_TEXT && isatty(STDOUT_FILENO) &&
              !(no_color && *no_color);
  opt.progress = isatty(STDERR_FILENO);

  if (sd_report_build(&opt, paths, npath, &report) != 0) {
    status = 1;
    goto out;
  }
  if (to_stdout) {
    errno = 0;
    int rc = write_report(stdout, opt.format, report, opt.color);
    if (fflush(stdout) != 0 || rc != 0) {
      fprintf(stderr, "snapdiff: standard output: %s\n",
              errno ? strerror(errno) : "write failed");
      status = 1;
    }
  } else {
    status = write_file(output, opt.format, report);
  }

out:
  sd_report_free(report);
  free(opt.filters);
  free(includes);
  free(excludes);
  free(domains);
  free(wrappers);
  return status;
}

#ifndef SNAPDIFF_NO_MAIN
int main(int argc, char **argv) { return snapdiff_main(argc, argv); }
#endif
