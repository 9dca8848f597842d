/* verify.c - HEAPSNAP_UNWIND=verify: each capture made by the rules is
 * made again by unw_backtrace and the two compared, frame for frame; the
 * counts (and the first differences) are written at exit. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "unwind.h"

static _Atomic uint64_t v_captures, v_frames, v_mismatches, v_lost;
#define KEEP 4
static _Atomic unsigned v_kept;
static struct {
  int n, m;
  uintptr_t got[HS_MAX_FRAMES], want[HS_MAX_FRAMES];
} kept[KEEP];

void hs__unwind_verify(const uintptr_t *got, int n, int max,
                       uintptr_t caller_ret) {
  void *buf[HS_MAX_FRAMES + HS_OWN_FRAMES_MAX];
  if (!hs__loader_enter())
    return; /* a fork child that must not call libunwind: nothing to check */
  int total = unw_backtrace(buf, max + HS_OWN_FRAMES_MAX);
  hs__loader_exit();
  int skip = -1;
  for (int i = 0; i < total && i < HS_OWN_FRAMES_MAX + 1; i++)
    if ((uintptr_t)buf[i] == caller_ret) {
      skip = i;
      break;
    }
  atomic_fetch_add(&v_captures, 1);
  if (skip < 0) {
    atomic_fetch_add(&v_lost, 1); /* libunwind could not find the caller */
    return;
  }
  int m = total - skip;
  if (m > max)
    m = max;
  int same = m == n;
  for (int i = 0; same && i < n; i++)
    same = got[i] == (uintptr_t)buf[skip + i];
  atomic_fetch_add(&v_frames, (uint64_t)n);
  if (same)
    return;
  atomic_fetch_add(&v_mismatches, 1);
  unsigned k = atomic_fetch_add(&v_kept, 1);
  if (k < KEEP) {
    kept[k].n = n;
    kept[k].m = m;
    for (int i = 0; i < n; i++)
      kept[k].got[i] = got[i];
    for (int i = 0; i < m; i++)
      kept[k].want[i] = (uintptr_t)buf[skip + i];
  }
}

static void put_frames(char *line, size_t len, size_t *o, const char *what,
                       const uintptr_t *f, int n) {
  *o += (size_t)snprintf(line + *o, len - *o, " %s", what);
  for (int i = 0; i < n && *o < len; i++)
    *o += (size_t)snprintf(line + *o, len - *o, "%s%#lx", i ? "," : "=",
                           (unsigned long)f[i]);
}

void hs__unwind_report(const char *path) {
  if (hs__unwind_mode != HS_UNWIND_VERIFY || !path || !*path)
    return;
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    return;
  uint64_t learned, other, busy;
  hs__unwind_cfi_stats(&learned, &other, &busy);
  char line[8192];
  int len = snprintf(line, sizeof line,
                     "pid=%ld captures=%llu frames=%llu mismatches=%llu "
                     "unreached=%llu rules=%llu other=%llu busy=%llu\n",
                     (long)getpid(), (unsigned long long)v_captures,
                     (unsigned long long)v_frames,
                     (unsigned long long)v_mismatches,
                     (unsigned long long)v_lost, (unsigned long long)learned,
                     (unsigned long long)other, (unsigned long long)busy);
  if (write(fd, line, (size_t)len) < 0)
    goto done;
  unsigned kk = atomic_load(&v_kept);
  for (unsigned k = 0; k < kk && k < KEEP; k++) {
    size_t o = (size_t)snprintf(line, sizeof line, "mismatch:");
    put_frames(line, sizeof line - 1, &o, "rules", kept[k].got, kept[k].n);
    put_frames(line, sizeof line - 1, &o, "libunwind", kept[k].want,
               kept[k].m);
    if (o > sizeof line - 2)
      o = sizeof line - 2;
    line[o++] = '\n';
    if (write(fd, line, o) < 0)
      break;
  }
done:
  close(fd);
}
