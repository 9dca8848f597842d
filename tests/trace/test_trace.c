/* test_trace.c - the trace tables without the interposer: interning,
 * insert/remove/replace, totals, domains, and concurrent use with
 * start/stop/clear racing. Runs under ASan, UBSan and TSan. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "heapsnap.h"
#include "trace/trace.h"
#include "unwind/unwind.h"

static uintptr_t fake(unsigned i) { return 0x10000u + (uintptr_t)i * 16u; }

static size_t cur(void) {
  size_t c;
  hs_get_traced_memory(&c, NULL);
  return c;
}

static void setup(void) { ck_assert_int_eq(hs_start(8), 0); }
static void teardown(void) { hs_stop(); }

START_TEST(intern_dedups) {
  uintptr_t a[3] = {1, 2, 3}, b[3] = {1, 2, 4};
  uint32_t ia, ia2, ib;
  unsigned s = hs__state_now();
  ck_assert_int_eq(hs__stack_intern(a, 3, s, &ia, NULL), 0);
  ck_assert_int_eq(hs__stack_intern(b, 3, s, &ib, NULL), 0);
  ck_assert_int_eq(hs__stack_intern(a, 3, s, &ia2, NULL), 0);
  ck_assert_uint_eq(ia, ia2);
  ck_assert_uint_ne(ia, ib);
  ck_assert_uint_eq(hs__stack_count(), 2);
  uintptr_t out[8];
  ck_assert_int_eq(hs__stack_get(ib, out, 8), 3);
  ck_assert_uint_eq(out[2], 4);
  /* A prefix is a different stack. */
  ck_assert_int_eq(hs__stack_intern(a, 2, s, &ib, NULL), 0);
  ck_assert_uint_ne(ia, ib);
  /* A stale state is refused. */
  ck_assert_int_eq(hs__stack_intern(a, 3, s + 2, &ia2, NULL), HS_ENOTTRACING);
}
END_TEST

START_TEST(many_stacks_and_traces) {
  unsigned s = hs__state_now();
  enum { N = 200000 };
  for (unsigned i = 0; i < N; i++) {
    uintptr_t f[2] = {i, i * 7u};
    uint32_t id;
    ck_assert_int_eq(hs__stack_intern(f, 2, s, &id, NULL), 0);
    ck_assert_int_eq(hs__traces_insert(0, fake(i), i % 100 + 1, id, s), 0);
  }
  ck_assert_uint_eq(hs__stack_count(), N);
  ck_assert_uint_eq(hs__traces_count(), N);
  size_t expect = 0;
  for (unsigned i = 0; i < N; i++)
    expect += i % 100 + 1;
  ck_assert_uint_eq(cur(), expect);
  /* Every stack still resolves to what was interned. */
  for (unsigned i = 0; i < N; i += 997) {
    uint32_t id;
    size_t size;
    ck_assert(hs__traces_lookup(0, fake(i), &size, &id));
    ck_assert_uint_eq(size, i % 100 + 1);
    uintptr_t f[4];
    ck_assert_int_eq(hs__stack_get(id, f, 4), 2);
    ck_assert_uint_eq(f[0], i);
    ck_assert_uint_eq(f[1], i * 7u);
  }
  /* Remove every other one; the rest must stay findable (backward shift). */
  for (unsigned i = 0; i < N; i += 2)
    ck_assert(hs__traces_remove(0, fake(i), NULL, NULL));
  for (unsigned i = 0; i < N; i++)
    ck_assert_int_eq(hs__traces_lookup(0, fake(i), NULL, NULL), (int)(i & 1));
  ck_assert_uint_eq(hs__traces_count(), N / 2);
}
END_TEST

START_TEST(replace_and_domains) {
  unsigned s = hs__state_now();
  uintptr_t f[1] = {42};
  uint32_t id;
  ck_assert_int_eq(hs__stack_intern(f, 1, s, &id, NULL), 0);
  ck_assert_int_eq(hs__traces_insert(0, 0x5000, 100, id, s), 0);
  ck_assert_int_eq(hs__traces_insert(0, 0x5000, 30, id, s), 0);
  ck_assert_uint_eq(cur(), 30);
  ck_assert_int_eq(hs__traces_insert(3, 0x5000, 7, id, s), 0);
  ck_assert_uint_eq(cur(), 37);
  /* Sizes of 1 TiB and more do not fit the packed slot. */
  size_t huge = (size_t)1 << 41;
  ck_assert_int_eq(hs__traces_insert(0, 0x5000, huge, id, s), 0);
  ck_assert_uint_eq(cur(), huge + 7);
  ck_assert_uint_eq(hs__traces_count(), 2);
  ck_assert_int_eq(hs__traces_insert(0, 0x5000, 5, id, s), 0);
  ck_assert_uint_eq(cur(), 12);
  ck_assert(hs__traces_remove(3, 0x5000, NULL, NULL));
  ck_assert(!hs__traces_remove(3, 0x5000, NULL, NULL));
  ck_assert(hs__traces_remove(0, 0x5000, NULL, NULL));
  ck_assert_uint_eq(cur(), 0);
  /* NULL pointers are legal in domains. */
  ck_assert_int_eq(hs__traces_insert(9, 0, 11, id, s), 0);
  ck_assert_uint_eq(cur(), 11);
  size_t peak;
  hs_get_traced_memory(NULL, &peak);
  ck_assert_uint_ge(peak, huge);
  hs_reset_peak();
  hs_get_traced_memory(NULL, &peak);
  ck_assert_uint_eq(peak, 11);
}
END_TEST

static int fail_all(size_t n) {
  (void)n;
  return 1;
}

START_TEST(drop_when_out_of_memory) {
  hs_stats_t st;
  hs__mem_fail_hook = fail_all;
  hs__guard++;
  int dummy;
  hs__record_alloc(&dummy, 123, (uintptr_t)__builtin_return_address(0));
  hs__guard--;
  hs__mem_fail_hook = NULL;
  hs_get_stats(&st, sizeof st);
  ck_assert_uint_eq(st.dropped_traces, 1);
  ck_assert_uint_eq(st.dropped_bytes, 123);
  ck_assert_uint_eq(cur(), 0);
}
END_TEST

/* ---- placement: heap traces by address, hashed where that fails ---- */
/* Layouts are built from traces.c's regions (one shard each, of 64);
 * which shard a region goes to comes from the table itself. */
#define REGION_SHIFT HS_TRACE_REGION_SHIFT
#define SHARDS 64u

static unsigned shard_of(uintptr_t p) { return hs__traces_shard_index(p); }
static uintptr_t region(uint64_t r) { return (uintptr_t)(r << REGION_SHIFT); }

/* The first region numbered from on that lives in shard sh. */
static uint64_t region_in_shard(uint64_t from, unsigned sh) {
  while (shard_of(region(from)) != sh)
    from++;
  return from;
}

/* xorshift64: the same sequence with every C library, unlike rand(). */
static uint64_t rng;
static uint64_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

enum { IDS = 8 };
static uint32_t ids[IDS];
/* Stack ids die with every clear: intern them again after one. */
static void intern_ids(void) {
  for (unsigned k = 0; k < IDS; k++) {
    uintptr_t f[2] = {0x70000 + k, 0x71};
    ck_assert_int_eq(hs__stack_intern(f, 2, hs__state_now(), &ids[k], NULL),
                     0);
  }
}

/* A set of fake blocks and what the table should say of each. */
typedef struct {
  unsigned n;
  uintptr_t *p;
  size_t *size;
  uint32_t *stack;
  unsigned char *live;
} layout_t;

static layout_t layout_new(unsigned n) {
  layout_t l = {n, calloc(n, sizeof(uintptr_t)), calloc(n, sizeof(size_t)),
                calloc(n, sizeof(uint32_t)), calloc(n, 1)};
  ck_assert(l.p && l.size && l.stack && l.live);
  return l;
}

static void layout_free(layout_t *l) {
  free(l->p);
  free(l->size);
  free(l->stack);
  free(l->live);
}

/* Inserts block i, or replaces its trace, with a size and stack that
 * depend on salt, so that a stale or swapped slot shows. */
static void put(layout_t *l, unsigned i, unsigned salt) {
  size_t size = (i * 2654435761u + salt * 40503u) % 4000 + 1;
  uint32_t id = ids[(i + salt) % IDS];
  int rc = hs__traces_insert(0, l->p[i], size, id, hs__state_now());
  if (rc != 0)
    ck_abort_msg("insert %u at %#lx: %d", i, (unsigned long)l->p[i], rc);
  l->size[i] = size;
  l->stack[i] = id;
  l->live[i] = 1;
}

/* What the table said of block i (op: "remove" or "lookup") is what the
 * model holds: present exactly when live, and then with its size and
 * stack. */
static void expect_block(const layout_t *l, unsigned i, const char *op,
                         int got, size_t size, uint32_t id) {
  if (got != l->live[i] ||
      (got && (size != l->size[i] || id != l->stack[i])))
    ck_abort_msg("%s %u at %#lx: got %d size %zu stack %u, want %d size "
                 "%zu stack %u",
                 op, i, (unsigned long)l->p[i], got, size, id, l->live[i],
                 l->size[i], l->stack[i]);
}

/* Frees block i, which the table must give back with its size and stack
 * if it is live. */
static void take(layout_t *l, unsigned i) {
  size_t size = 0;
  uint32_t id = 0;
  int got = hs__traces_remove(0, l->p[i], &size, &id);
  expect_block(l, i, "remove", got, size, id);
  l->live[i] = 0;
}

/* The table holds l's live traces and nothing else: each looked up, and
 * the count and traced bytes. */
static void expect_exact(const layout_t *l) {
  size_t sum = 0;
  uint64_t n = 0;
  for (unsigned i = 0; i < l->n; i++) {
    size_t size = 0;
    uint32_t id = 0;
    int got = hs__traces_lookup(0, l->p[i], &size, &id);
    expect_block(l, i, "lookup", got, size, id);
    sum += got ? size : 0;
    n += (uint64_t)got;
  }
  ck_assert_uint_eq(hs__traces_count(), n);
  ck_assert_uint_eq(cur(), sum);
}

/* Frees, in random order, the blocks i with i % every == rem. */
static void take_shuffled(layout_t *l, unsigned every, unsigned rem) {
  unsigned k = 0, *order = malloc(l->n * sizeof *order);
  ck_assert_ptr_nonnull(order);
  for (unsigned i = rem; i < l->n; i += every)
    order[k++] = i;
  for (unsigned j = k; j > 1; j--) {
    unsigned r = (unsigned)(rnd() % j), t = order[j - 1];
    order[j - 1] = order[r];
    order[r] = t;
  }
  for (unsigned j = 0; j < k; j++)
    take(l, order[j]);
  free(order);
}

static void placement_setup(void) {
  setup();
  rng = 0x9E3779B97F4A7C15ull;
  intern_ids();
}

/* Blocks packed 16 or 48 bytes apart in one region give each trace a slot
 * of its own: no probe runs, so the shard keeps address placement, and
 * every operation on it is exact. */
START_TEST(dense_layouts_stay_address_placed) {
  enum { N = 200000 };
  static const unsigned gaps[] = {16, 48};
  layout_t l = layout_new(N);
  for (unsigned g = 0; g < 2; g++) {
    for (unsigned i = 0; i < N; i++)
      l.p[i] = region(5) + 0x1000 + (uintptr_t)i * gaps[g];
    for (unsigned i = 0; i < N; i++)
      put(&l, i, g);
    expect_exact(&l);
    ck_assert_uint_eq(hs__traces_hashed_shards(), 0);
    /* Replaced in place: the old size leaves the totals. */
    for (unsigned i = 0; i < N; i += 3)
      put(&l, i, g + 7);
    expect_exact(&l);
    /* Half freed in random order (address order has a test of its own),
     * shifting entries back all over the run; the others stay. */
    take_shuffled(&l, 2, 0);
    expect_exact(&l);
    ck_assert_uint_eq(hs__traces_count(), N / 2);
    /* Freed ones again: absent, and the table unchanged. */
    for (unsigned i = 0; i < N; i += 2)
      take(&l, i);
    expect_exact(&l);
    take_shuffled(&l, 2, 1);
    expect_exact(&l);
    ck_assert_uint_eq(hs__traces_count(), 0);
    ck_assert_uint_eq(cur(), 0);
    ck_assert_uint_eq(hs__traces_hashed_shards(), 0);
  }
  layout_free(&l);
}
END_TEST

/* Fills l's blocks in order, checks, frees every other one, re-inserts
 * some of those and replaces some of the others, checks, frees the rest:
 * exact at every step whatever the placement. */
static void exercise(layout_t *l) {
  for (unsigned i = 0; i < l->n; i++)
    put(l, i, 0);
  expect_exact(l);
  for (unsigned i = 0; i < l->n; i += 2)
    take(l, i);
  expect_exact(l);
  for (unsigned i = 0; i < l->n; i += 3)
    put(l, i, 1);
  expect_exact(l);
  take_shuffled(l, 1, 0);
  expect_exact(l);
  ck_assert_uint_eq(hs__traces_count(), 0);
}

/* Layouts whose addresses land on few slots under address placement make
 * long probe runs; their shards must go over to hashed slots and stay
 * exact through it (the switch rebuilds a table holding live traces). */
START_TEST(pathological_layouts_go_hashed) {
  /* (a) One offset in every 4 KiB page (what large and page-aligned
   * blocks look like), over three whole regions: 16384 traces per shard
   * on one slot in 256. Every shard involved must switch. */
  enum { PAGES = 3u << (REGION_SHIFT - 12) };
  layout_t l = layout_new(PAGES);
  int used[SHARDS] = {0};
  unsigned want = 0;
  for (unsigned i = 0; i < PAGES; i++) {
    l.p[i] = region(0x40) + (uintptr_t)i * 4096 + 16;
    want += !used[shard_of(l.p[i])]++;
  }
  for (unsigned i = 0; i < PAGES; i++)
    put(&l, i, 0);
  ck_assert_uint_eq(hs__traces_hashed_shards(), want);
  expect_exact(&l);
  for (unsigned i = 0; i < PAGES; i += 2)
    take(&l, i);
  expect_exact(&l);
  take_shuffled(&l, 1, 0);
  expect_exact(&l);
  /* Hashed until the next growth or clear, even empty. */
  ck_assert_uint_eq(hs__traces_hashed_shards(), want);
  hs_clear_traces();
  intern_ids();
  ck_assert_uint_eq(hs__traces_hashed_shards(), 0);
  layout_free(&l);

  /* (b) Multiples of 64 KiB over 64 regions: a region's 1024 traces all on
   * one slot of its shard while the shard has at most 4096 slots. Probe
   * runs are judged over 1024 inserts between two growths, so a shard
   * with 3 regions (3072 traces: 1536 inserts at 4096 slots) is bound to
   * switch; fewer may legitimately not. */
  enum { REGIONS = 64, PER = 1u << (REGION_SHIFT - 16) };
  l = layout_new(REGIONS * PER);
  int per_shard[SHARDS] = {0};
  unsigned bound = 0;
  for (unsigned r = 0; r < REGIONS; r++)
    bound += ++per_shard[shard_of(region(0x1000 + r))] == 3;
  ck_assert_msg(bound > 0, "no shard holds 3 of the regions: move the base");
  for (unsigned i = 0; i < l.n; i++)
    l.p[i] = region(0x1000) + (uintptr_t)i * 65536;
  exercise(&l);
  ck_assert_uint_ge(hs__traces_hashed_shards(), bound);
  hs_clear_traces();
  intern_ids();
  layout_free(&l);

  /* (c) Two regions in one shard laid out alike (two threads' arenas):
   * the second region's traces have the first one's home slots, and
   * probe past the whole run. Only that shard switches. */
  enum { ALIKE = 8192 };
  uint64_t r0 = region_in_shard(0x2000, 0);
  uint64_t r1 = region_in_shard(r0 + 1, 0);
  l = layout_new(2 * ALIKE);
  for (unsigned i = 0; i < ALIKE; i++) {
    l.p[i] = region(r0) + 0x400 + (uintptr_t)i * 16;
    l.p[ALIKE + i] = region(r1) + 0x400 + (uintptr_t)i * 16;
  }
  exercise(&l);
  ck_assert_uint_eq(hs__traces_hashed_shards(), 1);
  layout_free(&l);
}
END_TEST

/* A clear (hs_clear_traces, or the stop before a start) ends hashed
 * placement, and the detection works again afterwards. */
START_TEST(clear_resets_placement) {
  enum { N = 1u << (REGION_SHIFT - 12) }; /* one region's pages */
  layout_t pages = layout_new(N), dense = layout_new(N);
  for (unsigned i = 0; i < N; i++) {
    pages.p[i] = region(0x50) + (uintptr_t)i * 4096 + 16;
    dense.p[i] = region(0x50) + 0x100 + (uintptr_t)i * 16;
  }
  for (int round = 0; round < 2; round++) {
    for (unsigned i = 0; i < N; i++)
      put(&pages, i, (unsigned)round);
    ck_assert_uint_eq(hs__traces_hashed_shards(), 1);
    expect_exact(&pages);
    if (round == 0) {
      hs_clear_traces();
    } else {
      hs_stop();
      ck_assert_uint_eq(hs__traces_hashed_shards(), 0);
      ck_assert_int_eq(hs_start(8), 0);
    }
    intern_ids();
    ck_assert_uint_eq(hs__traces_hashed_shards(), 0);
    memset(pages.live, 0, N);
    expect_exact(&pages);
    /* The same shard with a layout address placement serves. */
    for (unsigned i = 0; i < N; i++)
      put(&dense, i, 2);
    expect_exact(&dense);
    ck_assert_uint_eq(hs__traces_hashed_shards(), 0);
    take_shuffled(&dense, 1, 0);
    expect_exact(&dense);
  }
  layout_free(&pages);
  layout_free(&dense);
}
END_TEST

/* A shard that went over to hashed slots tries address placement again
 * when it next grows: it keeps hashing while the layout that made it give
 * up is still live, and goes back once that layout is gone. */
START_TEST(growth_retries_address_placement) {
  enum { PAGES = 1u << (REGION_SHIFT - 12), DENSE = 4 * PAGES };
  uint64_t r0 = region_in_shard(0x60, 7);
  uint64_t r1 = region_in_shard(r0 + 1, 7);
  uint64_t r2 = region_in_shard(r1 + 1, 7);
  layout_t pages = layout_new(2 * PAGES), dense = layout_new(DENSE);
  for (unsigned i = 0; i < PAGES; i++) {
    pages.p[i] = region(r0) + (uintptr_t)i * 4096 + 32;
    pages.p[PAGES + i] = region(r1) + (uintptr_t)i * 4096 + 32;
  }
  for (unsigned i = 0; i < DENSE; i++)
    dense.p[i] = region(r2) + 0x200 + (uintptr_t)i * 16;
  for (unsigned i = 0; i < PAGES; i++)
    put(&pages, i, 0);
  ck_assert_uint_eq(hs__traces_hashed_shards(), 1);
  /* Twice as many page-offset traces: the table grows, and its trial of
   * address placement fails while they are all there. */
  for (unsigned i = PAGES; i < 2 * PAGES; i++)
    put(&pages, i, 0);
  ck_assert_uint_eq(hs__traces_hashed_shards(), 1);
  expect_exact(&pages);
  /* All gone, then a dense layout big enough to grow the table twice. */
  take_shuffled(&pages, 1, 0);
  for (unsigned i = 0; i < DENSE; i++)
    put(&dense, i, 1);
  ck_assert_uint_eq(hs__traces_hashed_shards(), 0);
  expect_exact(&dense);
  take_shuffled(&pages, 1, 0); /* each absent */
  take_shuffled(&dense, 1, 0);
  expect_exact(&dense);
  layout_free(&pages);
  layout_free(&dense);
}
END_TEST

/* Long probe runs at half load or more may be the load's doing, not the
 * layout's: a heap that wraps round a small table lays later blocks over
 * earlier ones' slots (CPython's did, and its biggest shard stayed hashed
 * at millions of traces). Such a shard grows rather than hashing, and
 * keeps address placement when the bigger table separates the blocks.
 * Here: a dense run that fills half of a 32768-slot table, then a second
 * one 512 KiB (32768 slots) further on, on the same slots; its first
 * insert probes past the whole first run. */
START_TEST(long_runs_at_half_load_grow) {
  enum { RUN = 16384, SPAN = 32768 };
  uint64_t r = region_in_shard(0x70, 9);
  layout_t l = layout_new(2 * RUN);
  for (unsigned i = 0; i < RUN; i++) {
    l.p[i] = region(r) + 0x100 + (uintptr_t)i * 16;
    l.p[RUN + i] = region(r) + 0x100 + ((uintptr_t)SPAN + i) * 16;
  }
  exercise(&l);
  ck_assert_uint_eq(hs__traces_hashed_shards(), 0);
  layout_free(&l);
}
END_TEST

/* A line of /proc/self/status in KiB, or -1. */
static long status_kib(const char *key) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long v = -1;
  size_t k = strlen(key);
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, key, k) && line[k] == ':')
      v = strtol(line + k + 1, NULL, 10);
  if (f)
    fclose(f);
  return v;
}

/* Doubling a big shard placed by address writes the new table in as the
 * old one is given back, a step at a time: the peak is about the new
 * table, not old plus new (CPython's shards are tens of MiB each). */
START_TEST(growth_does_not_hold_both_tables) {
  enum { SLOTS = 1u << 20, FULL = SLOTS / 8 * 7 }; /* 16 MiB, 7/8 full */
  uint64_t r = region_in_shard(0x90, 11);
  layout_t l = layout_new(FULL + 1);
  for (unsigned i = 0; i <= FULL; i++)
    l.p[i] = region(r) + 0x100 + (uintptr_t)i * 16;
  for (unsigned i = 0; i < FULL; i++)
    put(&l, i, 0);
  size_t before = hs__mem_used(HS_MEM_TRACES);
  /* Resets the peak RSS to the current RSS (Linux 4.0 and later). */
  FILE *f = fopen("/proc/self/clear_refs", "w");
  int reset = f && fputs("5", f) >= 0;
  if (f && fclose(f) != 0)
    reset = 0;
  long rss0 = status_kib("VmRSS");
  put(&l, FULL, 0);
  long hwm = status_kib("VmHWM");
  size_t grown = hs__mem_used(HS_MEM_TRACES) - before;
  ck_assert_msg(grown >= (size_t)SLOTS * 16,
                "the insert did not double the 16 MiB shard (%zu bytes more)",
                grown);
#ifdef HS_TSAN
  reset = 0;
  fprintf(stderr, "SKIPPED part of growth_does_not_hold_both_tables: under "
                  "ThreadSanitizer the shadow of the tables is several times "
                  "their size, and the peak RSS says nothing of them\n");
#else
  if (!reset || rss0 < 0 || hwm < 0)
    fprintf(stderr, "SKIPPED part of growth_does_not_hold_both_tables: "
                    "this kernel cannot reset or report the peak RSS\n");
#endif
  if (reset && rss0 >= 0 && hwm >= 0) {
    /* New 32 MiB, old 16 MiB given back: the peak rises by about 16 MiB
     * (the steps ahead and behind, and ASan's shadow of the new table,
     * add a few); holding both would add 32. */
    ck_assert_msg(hwm - rss0 < 24 * 1024,
                  "the peak RSS rose by %ld KiB while the shard doubled",
                  hwm - rss0);
  }
  expect_exact(&l);
  ck_assert_uint_eq(hs__traces_hashed_shards(), 0);
  layout_free(&l);
}
END_TEST

/* A trial of address placement that fails, with no memory for the hashed
 * table: the move is finished by address, and the table is whole. The
 * layout is a dense run and one block 16 MiB on, whose home is the run's
 * first slot, so that the doubling its probes cause fails its trial. */
static int big_calls_left;
static int fail_big_after(size_t n) {
  return n >= (64u << 10) && big_calls_left-- <= 0;
}

START_TEST(failed_trial_without_memory_stays_whole) {
  /* And a short run after the alias's slot in the old table, which the
   * finished move must not leave behind. */
  enum { N = 100000, TAIL = 500 };
  uint64_t r = region_in_shard(0xa0, 13);
  layout_t l = layout_new(N + 1 + TAIL);
  for (unsigned i = 0; i < N; i++)
    l.p[i] = region(r) + 0x100 + (uintptr_t)i * 16;
  l.p[N] = region(r) + 0x100 + ((uintptr_t)16 << 20);
  for (unsigned i = 0; i < TAIL; i++)
    l.p[N + 1 + i] = region(r) + 0x100 + (uintptr_t)(120000 + i) * 16;
  for (int refuse = 0; refuse < 2; refuse++) {
    for (unsigned i = 0; i < N; i++)
      put(&l, i, (unsigned)refuse);
    for (unsigned i = N + 1; i < l.n; i++)
      put(&l, i, (unsigned)refuse);
    /* The doubling's own table is granted, the hashed one refused. */
    big_calls_left = 1;
    if (refuse)
      hs__mem_fail_hook = fail_big_after;
    put(&l, N, (unsigned)refuse);
    hs__mem_fail_hook = NULL;
    ck_assert_uint_eq(hs__traces_hashed_shards(), refuse ? 0 : 1);
    if (refuse)
      ck_assert_int_eq(big_calls_left, -1);
    expect_exact(&l);
    /* A few frees (each scans the alias's long run when it stays). */
    take(&l, N);
    for (unsigned i = 0; i < N; i += N / 16)
      take(&l, i);
    expect_exact(&l);
    hs_clear_traces();
    intern_ids();
    memset(l.live, 0, l.n);
  }
  layout_free(&l);
}
END_TEST

/* A program frees a run of neighbours in the order it made them (an
 * array's elements, a parser's nodes). Under address placement such a run
 * is one cluster of slots; a free must not walk the rest of the cluster,
 * or freeing the run costs its length squared. Measured against the
 * inserts in this thread's CPU time, so that a slow or sanitized build
 * scales both sides: with hashed slots a free costs about an insert. */
static double thread_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

START_TEST(frees_in_address_order_stay_cheap) {
  enum { N = 200000, M = 200 };
  /* Then the same with one more block, inserted after the run, whose home
   * is the run's first slot: 16 MiB further on, where the addresses wrap
   * round a table of up to 2^20 slots. It probes past the whole run. */
  for (int alias = 0; alias < 2; alias++) {
    layout_t l = layout_new(N + 1);
    for (unsigned i = 0; i < N; i++)
      l.p[i] = region(6) + 0x100 + (uintptr_t)i * 16;
    l.p[N] = region(6) + 0x100 + ((uintptr_t)16 << 20);
    double t0 = thread_seconds();
    for (unsigned i = 0; i < N; i++)
      put(&l, i, 0);
    double t1 = thread_seconds();
    if (alias)
      put(&l, N, 0);
    double t2 = thread_seconds();
    for (unsigned i = 0; i < M; i++)
      take(&l, i);
    double t3 = thread_seconds();
    double per_insert = (t1 - t0) / N, per_free = (t3 - t2) / M;
    /* The rest from the top down, which is cheap either way. */
    for (unsigned i = N + 1; i-- > M;)
      take(&l, i);
    expect_exact(&l);
    ck_assert_msg(per_free < 20 * per_insert + 1e-6,
                  "%s: a free in address order costs %.0f ns, an insert "
                  "%.0f ns",
                  alias ? "with a block aliasing the run" : "a run alone",
                  per_free * 1e9, per_insert * 1e9);
    layout_free(&l);
  }
}
END_TEST

/* Random operations over a pool that mixes the layouts above with random
 * addresses, checked against a model of the table: a shard may switch
 * placement in the middle, with traces of every kind in it. */
enum { MODEL_OPS = 400000, CHECK_EVERY = 25000 };

typedef struct {
  const layout_t *l;
  uint64_t n;
  int bad;
} walk_t;

static int find_ptr(const layout_t *l, uintptr_t p) {
  unsigned lo = 0, hi = l->n;
  while (lo < hi) {
    unsigned mid = lo + (hi - lo) / 2;
    if (l->p[mid] < p)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < l->n && l->p[lo] == p ? (int)lo : -1;
}

static void walk_one(const hs_trace_rec_t *r, void *arg) {
  walk_t *w = arg;
  int i = find_ptr(w->l, r->ptr);
  w->n++;
  if (r->domain != 0 || i < 0 || !w->l->live[i] ||
      r->size != w->l->size[i] || r->stack != w->l->stack[i]) {
    if (!w->bad++)
      fprintf(stderr, "foreach: %#lx size %zu stack %u not in the model\n",
              (unsigned long)r->ptr, (size_t)r->size, (unsigned)r->stack);
  }
}

static int cmp_ptr(const void *a, const void *b) {
  uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
  return x < y ? -1 : x > y;
}

/* A size for the model: mostly small, some large, a few of 1 TiB and more
 * (those live in the wide table: a pointer moves between the two). */
static size_t model_size(void) {
  unsigned r = (unsigned)(rnd() % 1000);
  if (r < 5)
    return ((size_t)1 << 40) + (size_t)(rnd() % 4096);
  if (r < 10)
    return 0;
  if (r < 60)
    return (size_t)(rnd() % ((uint64_t)1 << 39));
  return (size_t)(rnd() % 4096) + 1;
}

START_TEST(placement_model_random) {
  unsigned n = 0, cap = 80000;
  uintptr_t *pool = malloc(cap * sizeof *pool);
  ck_assert_ptr_nonnull(pool);
  /* Neighbours 16 and 48 bytes apart. */
  for (unsigned i = 0; i < 16384; i++)
    pool[n++] = region(0x10) + 0x40 + (uintptr_t)i * 16;
  for (unsigned i = 0; i < 8192; i++)
    pool[n++] = region(0x11) + 0x40 + (uintptr_t)i * 48;
  /* One offset per page, and multiples of 64 KiB over 4 regions. */
  for (unsigned i = 0; i < 12000; i++)
    pool[n++] = region(0x20) + (uintptr_t)i * 4096 + 0x30;
  for (unsigned i = 0; i < 4096; i++)
    pool[n++] = region(0x30) + (uintptr_t)i * 65536;
  /* Two neighbouring regions laid out alike, and two of one shard. */
  uint64_t a0 = region_in_shard(0x3000, 7), a1 = region_in_shard(a0 + 1, 7);
  for (unsigned i = 0; i < 6000; i++) {
    pool[n++] = region(0x60) + 0x200 + (uintptr_t)i * 32;
    pool[n++] = region(0x61) + 0x200 + (uintptr_t)i * 32;
    pool[n++] = region(a0) + 0x200 + (uintptr_t)i * 16;
    pool[n++] = region(a1) + 0x200 + (uintptr_t)i * 16;
  }
  /* Random 16-aligned addresses anywhere in 64 TiB. */
  while (n < cap) {
    uintptr_t p = (uintptr_t)(rnd() >> 18) << 4;
    if (p)
      pool[n++] = p;
  }
  qsort(pool, n, sizeof *pool, cmp_ptr);
  unsigned m = 0;
  for (unsigned i = 0; i < n; i++)
    if (!m || pool[i] != pool[m - 1])
      pool[m++] = pool[i];
  layout_t l = layout_new(m);
  memcpy(l.p, pool, m * sizeof *pool);
  free(pool);

  unsigned s = hs__state_now(), cursor = 0;
  uint64_t live = 0;
  size_t bytes = 0;
  for (unsigned op = 1; op <= MODEL_OPS; op++) {
    /* Half the operations walk the (sorted) pool, as a program works
     * through neighbouring blocks; the others go anywhere. */
    unsigned i;
    if (rnd() & 1) {
      if (rnd() % 100 == 0)
        cursor = (unsigned)(rnd() % m);
      i = cursor++ % m;
    } else {
      i = (unsigned)(rnd() % m);
    }
    unsigned r = (unsigned)(rnd() % 100);
    if (r < 45) { /* a new block, or a new trace for a live one */
      size_t size = model_size();
      uint32_t id = ids[rnd() % IDS];
      int rc = hs__traces_insert(0, l.p[i], size, id, s);
      if (rc != 0)
        ck_abort_msg("op %u: insert at %#lx: %d", op, (unsigned long)l.p[i],
                     rc);
      if (l.live[i])
        bytes -= l.size[i];
      else
        live++;
      bytes += size;
      l.live[i] = 1;
      l.size[i] = size;
      l.stack[i] = id;
    } else {
      size_t size = 0;
      uint32_t id = 0;
      int rm = r < 75;
      int got = rm ? hs__traces_remove(0, l.p[i], &size, &id)
                   : hs__traces_lookup(0, l.p[i], &size, &id);
      char what[32];
      snprintf(what, sizeof what, "op %u: %s", op, rm ? "remove" : "lookup");
      expect_block(&l, i, what, got, size, id);
      if (rm && got) {
        l.live[i] = 0;
        live--;
        bytes -= size;
      }
    }
    if (op % CHECK_EVERY == 0) {
      if (hs__traces_count() != live || cur() != bytes)
        ck_abort_msg("after op %u: %llu traces of %zu bytes, want %llu of %zu",
                     op, (unsigned long long)hs__traces_count(), cur(),
                     (unsigned long long)live, bytes);
    }
  }
  expect_exact(&l);
  walk_t w = {&l, 0, 0};
  hs__traces_foreach(walk_one, &w);
  ck_assert_int_eq(w.bad, 0);
  ck_assert_uint_eq(w.n, live);
  /* The page and 64 KiB blocks, and the alike regions of one shard, made
   * some shard switch on the way. */
  ck_assert_uint_ge(hs__traces_hashed_shards(), 1);
  layout_free(&l);
}
END_TEST

/* ---- concurrency: threads record and free while control calls race ---- */
enum { THREADS = 4, OPS = 40000, WIN = 64 };
#ifdef HS_TSAN
/* libunwind's per-thread cache destructor locks a mutex after TSan has
 * torn the exiting thread down; one frame needs no unwinding, and the
 * tables under test are the same. */
#define THREAD_FRAMES 1
#else
#define THREAD_FRAMES 8
#endif
static void thread_setup(void) { ck_assert_int_eq(hs_start(THREAD_FRAMES), 0); }

static void *worker(void *arg) {
  unsigned seed = (unsigned)(uintptr_t)arg;
  uintptr_t live[WIN] = {0};
  hs__guard++;
  for (int i = 0; i < OPS; i++) {
    seed = seed * 1103515245u + 12345u;
    int k = (int)((seed >> 8) % WIN);
    if (live[k])
      hs__record_free((void *)live[k]);
    live[k] = ((uintptr_t)arg << 32) | ((uintptr_t)i << 4) | 0x10;
    hs__record_alloc((void *)live[k], (seed >> 4) % 512 + 1,
                     (uintptr_t)__builtin_return_address(0));
  }
  for (int k = 0; k < WIN; k++)
    if (live[k])
      hs__record_free((void *)live[k]);
  hs__guard--;
  return NULL;
}

START_TEST(threads_exact_totals) {
  pthread_t t[THREADS];
  for (uintptr_t i = 0; i < THREADS; i++)
    pthread_create(&t[i], NULL, worker, (void *)(i + 1));
  for (int i = 0; i < THREADS; i++)
    pthread_join(t[i], NULL);
  ck_assert_uint_eq(cur(), 0);
  ck_assert_uint_eq(hs__traces_count(), 0);
}
END_TEST

static atomic_int workers_done;
static void *counted_worker(void *arg) {
  worker(arg);
  atomic_fetch_add(&workers_done, 1);
  return NULL;
}

START_TEST(threads_race_control) {
  pthread_t t[THREADS];
  atomic_store(&workers_done, 0);
  for (uintptr_t i = 0; i < THREADS; i++)
    pthread_create(&t[i], NULL, counted_worker, (void *)(i + 1));
  /* The control calls run on this thread: it never exits, so libunwind's
   * thread-exit destructor (see THREAD_FRAMES) does not run under TSan. */
  for (int i = 0; atomic_load(&workers_done) < THREADS; i++) {
    switch (i % 4) {
    case 0:
      hs_clear_traces();
      break;
    case 1:
      hs_stop();
      break;
    case 2:
      hs_start(THREAD_FRAMES == 1 ? 1 : 4 + i % 12);
      break;
    default: {
      size_t c, p;
      hs_get_traced_memory(&c, &p);
      hs_stats_t st;
      hs_get_stats(&st, sizeof st);
    }
    }
  }
  for (int i = 0; i < THREADS; i++)
    pthread_join(t[i], NULL);
  /* Whatever interleaving happened, every trace was freed again. */
  hs_start(THREAD_FRAMES);
  ck_assert_uint_eq(cur(), 0);
  ck_assert_uint_eq(hs__traces_count(), 0);
}
END_TEST

START_TEST(unwind_skips_own_frames) {
  uintptr_t f[8];
  uintptr_t me = (uintptr_t)__builtin_return_address(0);
  int n = hs__unwind_capture(f, 8, me);
  ck_assert_int_ge(n, 1);
  ck_assert_uint_eq(f[0], me);
  ck_assert_int_eq(hs__unwind_capture(f, 1, me), 1);
  ck_assert_uint_eq(f[0], me);
}
END_TEST

/* ---- sampling's fast paths: the mode hint, the filter, the guard ---- */

START_TEST(fast_mode_follows_state) {
  hs__fast_allow();
  ck_assert_uint_eq(hs__fast_now(), HS_FAST_OFF);
  ck_assert_int_eq(hs_set_sample_rate(4096, 1), 0);
  ck_assert_int_eq(hs_start(4), 0);
  ck_assert_uint_eq(hs__fast_now(), HS_FAST_SAMPLED);
  hs_clear_traces();
  ck_assert_uint_eq(hs__fast_now(), HS_FAST_SAMPLED);
  hs_stop();
  ck_assert_uint_eq(hs__fast_now(), HS_FAST_OFF);
  ck_assert_int_eq(hs_set_sample_rate(0, 0), 0);
  ck_assert_int_eq(hs_start(4), 0);
  ck_assert_uint_eq(hs__fast_now(), HS_FAST_NONE);
  hs_stop();
  ck_assert_uint_eq(hs__fast_now(), HS_FAST_OFF);
}
END_TEST

/* Fake, 16-aligned addresses whose filter counter is the one of base. */
static int same_counter(uintptr_t base, uintptr_t *out, int n) {
  int k = 0;
  for (uintptr_t p = base + 16; k < n && p < base + (1ull << 36); p += 16)
    if (hs__filter_slot(p) == hs__filter_slot(base))
      out[k++] = p;
  return k;
}

START_TEST(filter_pins_survive_clears) {
  uintptr_t pinned = fake(7), other = fake(1000);
  ck_assert_ptr_ne(hs__filter_slot(pinned), hs__filter_slot(other));
  hs__filter_pin(pinned);
  ck_assert_int_eq(hs_set_sample_rate(4096, 1), 0);
  for (int round = 0; round < 2; round++) {
    ck_assert_int_eq(hs_start(4), 0);
    ck_assert_int_eq(hs__traces_may_hold(pinned), 1);
    ck_assert_int_eq(hs__traces_may_hold(other), 0);
    unsigned s = hs__state_now();
    uint32_t id;
    uintptr_t f[1] = {42};
    ck_assert_int_eq(hs__stack_intern(f, 1, s, &id, NULL), 0);
    ck_assert_int_eq(hs__traces_insert(0, other, 32, id, s), 0);
    ck_assert_int_eq(hs__traces_may_hold(other), 1);
    hs_clear_traces();
    ck_assert_int_eq(hs__traces_may_hold(other), 0);
    ck_assert_int_eq(hs__traces_may_hold(pinned), 1);
    /* A pinned pointer is looked up, and found absent. */
    ck_assert_int_eq(hs__traces_remove(0, pinned, NULL, NULL), 0);
    hs_stop();
  }
  ck_assert_int_eq(hs_set_sample_rate(0, 0), 0);
}
END_TEST

START_TEST(filter_counter_saturates) {
  enum { N = 300 };
  static uintptr_t p[N + 1];
  ck_assert_int_eq(same_counter(fake(3), p, N + 1), N + 1);
  ck_assert_int_eq(hs_set_sample_rate(4096, 1), 0);
  ck_assert_int_eq(hs_start(4), 0);
  unsigned s = hs__state_now();
  uint32_t id;
  uintptr_t f[1] = {42};
  ck_assert_int_eq(hs__stack_intern(f, 1, s, &id, NULL), 0);
  for (int i = 0; i < N; i++)
    ck_assert_int_eq(hs__traces_insert(0, p[i], 16, id, s), 0);
  ck_assert_uint_eq(atomic_load(hs__filter_slot(p[0])), 255);
  ck_assert_uint_eq(cur(), (size_t)N * 16);
  /* Once saturated the counter cannot tell when its last block goes, so
   * it keeps sending frees to the table, which stays exact. */
  for (int i = 0; i < N; i++)
    ck_assert_int_eq(hs__traces_remove(0, p[i], NULL, NULL), 1);
  ck_assert_uint_eq(cur(), 0);
  ck_assert_int_eq(hs__traces_may_hold(p[N]), 1);
  ck_assert_int_eq(hs__traces_remove(0, p[N], NULL, NULL), 0);
  /* A clear starts the filter afresh. */
  hs_clear_traces();
  ck_assert_int_eq(hs__traces_may_hold(p[N]), 0);
  hs_stop();
  ck_assert_int_eq(hs_set_sample_rate(0, 0), 0);
}
END_TEST

START_TEST(guard_puts_back_sample_bytes) {
  hs__sample_left = 1000;
  hs__guard_enter();
  hs__sample_left -= 300;
  hs__guard_enter();
  hs__sample_left -= 5;
  hs__guard_exit();
  ck_assert_int_eq(hs__sample_left, 695);
  hs__guard_exit();
  ck_assert_int_eq(hs__sample_left, 1000);
  ck_assert_int_eq(hs__guard, 0);
}
END_TEST

int main(void) {
  Suite *s = suite_create("trace");
  TCase *tc = tcase_create("tables");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, intern_dedups);
  tcase_add_test(tc, many_stacks_and_traces);
  tcase_add_test(tc, replace_and_domains);
  tcase_add_test(tc, drop_when_out_of_memory);
  tcase_add_test(tc, unwind_skips_own_frames);
  suite_add_tcase(s, tc);
  TCase *tp = tcase_create("placement");
  tcase_set_timeout(tp, 60);
  tcase_add_checked_fixture(tp, placement_setup, teardown);
  tcase_add_test(tp, dense_layouts_stay_address_placed);
  tcase_add_test(tp, pathological_layouts_go_hashed);
  tcase_add_test(tp, clear_resets_placement);
  tcase_add_test(tp, growth_retries_address_placement);
  tcase_add_test(tp, long_runs_at_half_load_grow);
  tcase_add_test(tp, growth_does_not_hold_both_tables);
  tcase_add_test(tp, failed_trial_without_memory_stays_whole);
  tcase_add_test(tp, frees_in_address_order_stay_cheap);
  tcase_add_test(tp, placement_model_random);
  suite_add_tcase(s, tp);
  TCase *tt = tcase_create("threads");
  tcase_set_timeout(tt, 120);
  tcase_add_checked_fixture(tt, thread_setup, teardown);
  tcase_add_test(tt, threads_exact_totals);
  tcase_add_test(tt, threads_race_control);
  suite_add_tcase(s, tt);
  TCase *ts = tcase_create("sampling");
  tcase_set_timeout(ts, 60);
  tcase_add_test(ts, fast_mode_follows_state);
  tcase_add_test(ts, filter_pins_survive_clears);
  tcase_add_test(ts, filter_counter_saturates);
  tcase_add_test(ts, guard_puts_back_sample_bytes);
  suite_add_tcase(s, ts);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
