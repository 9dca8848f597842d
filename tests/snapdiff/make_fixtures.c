/* make_fixtures.c - writes the .hsnap files snapdiff's tests read: a pair
 * (old, new), a timeline (t1..t4) and an empty snapshot, all made with
 * hs_track() from functions at fixed lines, so every figure is known.
 * Built twice: as sd_fixtures_other it writes other.hsnap, a snapshot of a
 * different program. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heapsnap.h"

static uintptr_t next_ptr = 0x100000;
uintptr_t sd_fixture_ptr(void) { return next_ptr += 16; }
void lib_alloc(size_t n, int count); /* fixture_lib.c */
void weird_alloc(size_t n, int count); /* at the end: its file name is odd */

static uintptr_t b_ptrs[64], c_ptrs[64];

__attribute__((noinline)) void site_a(size_t n, int count) {
  for (int i = 0; i < count; i++)
    hs_track(0, sd_fixture_ptr(), n);
  __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void site_b(size_t n, int count) {
  for (int i = 0; i < count; i++) {
    b_ptrs[i] = sd_fixture_ptr();
    hs_track(0, b_ptrs[i], n);
  }
  __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void site_c(size_t n, int count) {
  for (int i = 0; i < count; i++) {
    c_ptrs[i] = sd_fixture_ptr();
    hs_track(0, c_ptrs[i], n);
  }
  __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void site_d(size_t n, int count) {
  for (int i = 0; i < count; i++)
    hs_track(0, sd_fixture_ptr(), n);
  __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void my_xmalloc(unsigned domain, size_t n) {
  hs_track(domain, sd_fixture_ptr(), n);
  __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void uses_wrapper(unsigned domain, size_t n,
                                            int count) {
  for (int i = 0; i < count; i++)
    my_xmalloc(domain, n);
  __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void calls_a(size_t n, int count) {
  site_a(n, count);
  __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void rec(int depth, size_t n) {
  if (depth == 0)
    hs_track(0, sd_fixture_ptr(), n);
  else
    rec(depth - 1, n);
  __asm__ volatile("" ::: "memory");
}

static int dump(const char *dir, const char *name) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  hs_snapshot_t *s = NULL;
  int rc = hs_take_snapshot(&s);
  if (rc == 0)
    rc = hs_snapshot_dump(s, path);
  hs_snapshot_free(s);
  if (rc != 0)
    fprintf(stderr, "make_fixtures: %s: %s\n", path, hs_strerror(rc));
  return rc;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
    return 2;
  }
  const char *dir = argv[1];
  hs_start(16);
#ifdef SD_FIXTURE_OTHER
  site_a(100, 10);
  return dump(dir, "other.hsnap") ? 1 : 0;
#else
  if (dump(dir, "empty.hsnap"))
    return 1;
  /* The pair. old: a 10000 B, b 500 B, c 1000 B, d 21 B, domain 5 256 B,
   * lib 320 B, rec 2 x 8 B. */
  calls_a(100, 100);
  site_b(10, 50);
  site_c(100, 10);
  site_d(7, 3);
  uses_wrapper(5, 64, 4);
  lib_alloc(32, 10);
  rec(2, 8);
  rec(2, 8);
  if (dump(dir, "old.hsnap"))
    return 1;
  /* new: a grows by 5000 B, b shrinks by 300 B, c vanishes, d is
   * unchanged, 8 x 1024 B appear through the wrapper, lib doubles and the
   * odd file appears. */
  calls_a(100, 50);
  for (int i = 0; i < 30; i++)
    hs_untrack(0, b_ptrs[i]);
  for (int i = 0; i < 10; i++)
    hs_untrack(0, c_ptrs[i]);
  uses_wrapper(0, 1024, 8);
  lib_alloc(32, 10);
  weird_alloc(3, 5);
  if (dump(dir, "new.hsnap"))
    return 1;

  /* The timeline: a grows steadily, c rises and falls, lib rises once. */
  hs_clear_traces();
  site_b(10, 50);
  site_a(100, 10);
  if (dump(dir, "t1.hsnap"))
    return 1;
  site_a(100, 10);
  site_c(100, 3);
  if (dump(dir, "t2.hsnap"))
    return 1;
  site_a(100, 10);
  site_c(100, 3);
  lib_alloc(32, 100);
  if (dump(dir, "t3.hsnap"))
    return 1;
  site_a(100, 10);
  for (int i = 0; i < 3; i++)
    hs_untrack(0, c_ptrs[i]);
  if (dump(dir, "t4.hsnap"))
    return 1;
  hs_stop();
  return 0;
#endif
}

/* Everything below claims to come from a file whose name needs escaping in
 * JSON (quote, backslash), CSV (comma, quote), folded stacks (semicolon)
 * and holds a byte that is not UTF-8 (\377) next to one that is (e-acute). */
#line 1 "odd dir/we\"ird,na;me\\\303\251\377.c"
__attribute__((noinline)) void weird_alloc(size_t n, int count) {
  for (int i = 0; i < count; i++)
    hs_track(0, sd_fixture_ptr(), n);
  __asm__ volatile("" ::: "memory");
}
