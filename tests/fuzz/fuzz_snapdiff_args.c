/* fuzz_snapdiff_args.c - fuzz target for snapdiff's command line and file
 * handling: fuzzed argv against up to two fuzzed snapshot files. */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "snapdiff.h"

/* Input layout: NUL-separated arguments, then for each file the separator
 * and its bytes. The files are "a" and "b" in a private directory that is
 * the working directory while snapdiff runs, so "a", "b" and "-o x" all
 * stay inside it. */
#define SEP "\n--8<--\n"
#define SEP_LEN (sizeof SEP - 1)
#define MAX_ARGS 24
#define MAX_FILES 2

static char workdir[64];

static void clean_workdir(void) {
  DIR *d = opendir(workdir);
  if (!d)
    return;
  int dfd = dirfd(d);
  struct dirent *e;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
      unlinkat(dfd, e->d_name, 0);
  closedir(d);
}

static void remove_workdir(void) {
  clean_workdir();
  rmdir(workdir);
}

static int setup(void) {
  if (workdir[0])
    return 0;
  const char *tmp = getenv("TMPDIR");
  snprintf(workdir, sizeof workdir, "%s/hs-fuzz-sd.XXXXXX",
           tmp && *tmp && strlen(tmp) < 40 ? tmp : "/tmp");
  if (!mkdtemp(workdir)) {
    workdir[0] = '\0';
    return -1;
  }
  atexit(remove_workdir);
  return 0;
}

static const uint8_t *find_sep(const uint8_t *p, const uint8_t *end) {
  while ((size_t)(end - p) >= SEP_LEN) {
    const uint8_t *q = memchr(p, SEP[0], (size_t)(end - p) - SEP_LEN + 1);
    if (!q)
      return NULL;
    if (memcmp(q, SEP, SEP_LEN) == 0)
      return q;
    p = q + 1;
  }
  return NULL;
}

static int write_file(const char *name, const uint8_t *p, size_t n) {
  int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return -1;
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w <= 0) {
      close(fd);
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return close(fd);
}

/* Runs snapdiff with stdio's stdout and stderr on /dev/null: reports and
 * messages are not the point, and the sanitizers and libFuzzer write to
 * file descriptor 2 directly, so their reports still show. */
static int run_quietly(int argc, char **argv) {
  static FILE *devnull;
  if (!devnull && !(devnull = fopen("/dev/null", "w")))
    return -1;
  FILE *out = stdout, *err = stderr;
  stdout = devnull;
  stderr = devnull;
  int status = snapdiff_main(argc, argv);
  fflush(devnull);
  clearerr(devnull);
  stdout = out;
  stderr = err;
  return status;
}

int hs_fuzz_snapdiff_args(const uint8_t *data, size_t size) {
  if (setup() != 0)
    return 0;
  const uint8_t *end = data + size;
  const uint8_t *args_end = find_sep(data, end);
  if (!args_end)
    args_end = end;

  char *argv[MAX_ARGS + 2];
  int argc = 0;
  argv[argc++] = "snapdiff";
  char *argbuf = malloc((size_t)(args_end - data) + 1);
  if (!argbuf)
    return 0;
  memcpy(argbuf, data, (size_t)(args_end - data));
  argbuf[args_end - data] = '\0';
  /* A '/' could name a file outside the directory (or /dev/stdin): none. */
  for (char *p = argbuf; p < argbuf + (args_end - data); p++)
    if (*p == '/')
      *p = '_';
  for (char *p = argbuf; p < argbuf + (args_end - data) && argc <= MAX_ARGS;
       p += strlen(p) + 1)
    argv[argc++] = p;
  argv[argc] = NULL;

  int cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cwd < 0 || chdir(workdir) != 0) {
    if (cwd >= 0)
      close(cwd);
    free(argbuf);
    return 0;
  }
  static const char *const names[MAX_FILES] = {"a", "b"};
  const uint8_t *p = args_end;
  for (int i = 0; i < MAX_FILES && p < end; i++) {
    p += SEP_LEN;
    const uint8_t *next = find_sep(p, end);
    size_t n = (size_t)((next ? next : end) - p);
    uint8_t *file = malloc(n ? n : 1);
    if (file) {
      memcpy(file, p, n);
      /* Only images that already start like an .hsnap get fixed, so that
       * bad magic, truncation and checksum faults stay reachable. */
      if (n >= 4 && memcmp(file, "\x89HSN", 4) == 0)
        hs_fuzz_fix_hsnap(file, n);
      write_file(names[i], file, n);
      free(file);
    }
    p = next ? next : end;
  }

  int status = run_quietly(argc, argv);
  HS_FUZZ_CHECK(status >= 0 && status <= 2);

  clean_workdir();
  HS_FUZZ_CHECK(fchdir(cwd) == 0);
  close(cwd);
  free(argbuf);
  return 0;
}

#ifdef HS_FUZZ_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  return hs_fuzz_snapdiff_args(data, size);
}
#endif
