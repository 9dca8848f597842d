/* heapsnap.h - the public API of libheapsnap: tracemalloc for C and C++.
 * Everything a program needs to trace its own heap in-process lives here. */
#ifndef HEAPSNAP_H
#define HEAPSNAP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define HS_API __attribute__((visibility("default")))
#else
#define HS_API
#endif

/* The version of this header. The soname's number is the major version: a
 * minor or patch release only adds (functions, members appended to the
 * versioned structs below), so a program built against 1.x runs against
 * any 1.y. hs_version() says what the loaded library is; a program that
 * needs a function added in 1.y checks hs_version() >= HS_VERSION of 1.y.
 * CMakeLists.txt reads the project version from these three lines. */
#define HS_VERSION_MAJOR 1
#define HS_VERSION_MINOR 0
#define HS_VERSION_PATCH 0
#define HS_VERSION                                                            \
  (HS_VERSION_MAJOR * 10000 + HS_VERSION_MINOR * 100 + HS_VERSION_PATCH)
#define HS_VERSION_STRING "1.0.0"

/* ---- Threads, fork and signals: the contract ----------------------------
 *
 * Each declaration below carries a tag line "[MT ...] [AS ...] [fork ...]":
 *
 *   MT       may be called from any number of threads at once.
 *   MT-obj   may be called from several threads at once, also on the same
 *            snapshot or statistics object; only hs_snapshot_free() and
 *            hs_statistics_free() need the object to themselves (no other
 *            call on it may run, or follow).
 *   AS-safe  may be called from a signal handler (async-signal-safe).
 *   AS-no    must not: it takes locks or allocates, and a signal that
 *            interrupts the same thread inside heapsnap would deadlock.
 *   fork-ok  may be called in the child of fork() before exec, even when
 *            the parent had other threads: the locks it takes are made
 *            anew in the child by heapsnap's fork handlers.
 *   fork-no  not before exec in the child of a multi-threaded parent: it
 *            may wait on a lock (the dynamic loader's, libdw's, a
 *            snapshot's) that a thread of the parent held at the fork.
 *            In the child of a single-threaded parent everything is
 *            fork-ok.
 *
 * A snapshot or statistics object that another thread was using at the
 * fork must not be used in the child. Objects are never shared between
 * processes. Memory heapsnap hands out (strings, frames, statistics)
 * stays valid and unchanged until the object that owns it is freed, so
 * readers need no lock of their own. */

/* The library's HS_VERSION (that of the header it was built from), which
 * may be newer than the caller's. [MT] [AS-safe] [fork-ok] */
HS_API int hs_version(void);

/* Traceback depth: hs_start() accepts 1..HS_MAX_FRAMES. The default of 16 is
 * what HEAPSNAP_FRAMES=default and the launcher use: native code reaches the
 * user's line through several wrapper frames (operator new, std::allocator,
 * strdup, xmalloc), so one frame, tracemalloc's default, would name the
 * wrapper; 16 keeps the user's line and its callers for a cost near the
 * unwinding floor (see BENCHMARKS.md). */
#define HS_DEFAULT_FRAMES 16
#define HS_MAX_FRAMES 256

/* Error codes: every call that can fail returns 0 or one of these (negative).
 * hs_strerror() gives the sentence for each. */
#define HS_ERRNO_MAP(X)                                                       \
  X(EINVAL, -1, "invalid argument")                                           \
  X(ENOMEM, -2, "out of memory")                                              \
  X(ENOTTRACING, -3, "heapsnap is not tracing")                               \
  X(ENOTFOUND, -4, "no trace for that pointer")                               \
  X(EIO, -5, "input/output error")                                            \
  X(EFORMAT, -6, "not a valid heapsnap file")                                 \
  X(EVERSION, -7, "unsupported file format version")                          \
  X(ECORRUPT, -8, "file is corrupt")                                          \
  X(ETRUNC, -9, "file is truncated")

enum {
#define HS_ERRNO_ENUM(name, value, text) HS_##name = (value),
  HS_ERRNO_MAP(HS_ERRNO_ENUM)
#undef HS_ERRNO_ENUM
};

/* The sentence for an HS_E* code (a static string; never NULL).
 * [MT] [AS-safe] [fork-ok] */
HS_API const char *hs_strerror(int err);

/* ---- Tracing control (tracemalloc.start/stop/is_tracing/...) ---------- */

/* Starts tracing every allocation with up to nframe frames per stack.
 * Returns 0, or HS_EINVAL when nframe is outside 1..HS_MAX_FRAMES.
 * A call while tracing is already on does nothing and keeps the old limit.
 * Calls of hs_start, hs_stop and hs_clear_traces from several threads are
 * serialized; a snapshot taken meanwhile sees the traces of one state.
 * [MT] [AS-no] [fork-ok] */
HS_API int hs_start(int nframe);

/* Sampling, for always-on use: with a rate of N bytes, heapsnap records on
 * average one allocation per N bytes allocated, chosen by a Poisson process
 * (as tcmalloc and jemalloc do), so large blocks are always seen and small
 * ones fairly; every other allocation costs a subtraction. Snapshots scale
 * what they hold to unbiased estimates (hs_snapshot_info_t.sample_rate and
 * hs_statistics_t.sample_rate say so). 0 (the default) traces every
 * allocation. Takes effect at the next hs_start(); seed 0 picks a random
 * seed, any other value makes the choice of samples repeatable.
 * Returns 0 or HS_EINVAL (rate above 2^40). [MT] [AS-no] [fork-ok] */
#define HS_DEFAULT_SAMPLE_RATE (64 * 1024)
HS_API int hs_set_sample_rate(size_t bytes, uint64_t seed);
/* The rate in force while tracing (else the one the next start will use).
 * [MT] [AS-no] [fork-ok] */
HS_API size_t hs_get_sample_rate(void);

/* Stops tracing and frees every trace and stack. Blocks allocated while
 * tracing stay valid and can be freed normally afterwards. Snapshots
 * taken before stay valid too. [MT] [AS-no] [fork-ok] */
HS_API void hs_stop(void);

/* 1 while tracing, else 0 (one atomic load). [MT] [AS-safe] [fork-ok] */
HS_API int hs_is_tracing(void);

/* Drops every trace and stack; current and peak become 0. Tracing goes on.
 * [MT] [AS-no] [fork-ok] */
HS_API void hs_clear_traces(void);

/* The limit given to the last successful hs_start(), even after hs_stop();
 * HS_DEFAULT_FRAMES before any start. [MT] [AS-no] [fork-ok] */
HS_API int hs_get_traceback_limit(void);

/* Sum of the requested sizes of live traced blocks, and its highest value
 * since tracing started (or since hs_reset_peak()/hs_clear_traces()).
 * Both 0 when not tracing. Either pointer may be NULL.
 * [MT] [AS-no] [fork-ok] */
HS_API void hs_get_traced_memory(size_t *current, size_t *peak);

/* Sets peak to current. [MT] [AS-no] [fork-ok] */
HS_API void hs_reset_peak(void);

/* Bytes heapsnap itself holds for its tables and stacks (tracemalloc's
 * get_tracemalloc_memory()). Never counted in the traced memory.
 * [MT] [AS-no] [fork-ok] */
HS_API size_t hs_get_tracer_memory(void);

/* Versioned structs (hs_stats_t, hs_snapshot_info_t, hs_statistics_info_t):
 * the caller passes sizeof of its own struct and the library fills that
 * many bytes at most, then sets .struct_size to the bytes it filled: less
 * than the caller's when the library is older than the caller's header
 * (the members past .struct_size are left as they were), never more.
 * Later versions only append members, so a program built against an older
 * header gets the members it knows. A size below sizeof(size_t) is
 * HS_EINVAL. */
/* Churn: besides the live blocks, every stack keeps cumulative counters
 * since the start (or hs_clear_traces()): blocks and bytes allocated,
 * frees, temporary blocks, and a lifetime histogram of the freed blocks.
 * "Temporary" has two meanings, both counted: freed before its thread's
 * next allocation (heaptrack's), and freed within a threshold of time
 * (1 ms unless set; 0 counts none). Takes effect for the frees that
 * follow. Returns 0. */
#define HS_DEFAULT_TEMPORARY_NS 1000000u
HS_API int hs_set_temporary_threshold(uint64_t ns);
HS_API uint64_t hs_get_temporary_threshold(void);
/* Lifetime histogram buckets: bucket 0 holds lifetimes under 1,024 ns,
 * bucket k (k >= 1) those in [2^(k+9), 2^(k+10)) ns. The clock wraps
 * every 2^35 ns (34 s): a longer lifetime is seen modulo that. */
#define HS_LIFETIME_BUCKETS 32
/* The lower bound of bucket k in ns (0 for bucket 0). */
#define HS_LIFETIME_BUCKET_NS(k) ((k) ? (uint64_t)1 << ((k) + 9) : 0)

/* Counters for what tracing cost and what it lost. */
typedef struct hs_stats {
  size_t struct_size;         /* bytes the library filled (see above) */
  uint64_t traced_current;    /* as hs_get_traced_memory() */
  uint64_t traced_peak;
  uint64_t live_traces;       /* traced blocks alive now, all domains */
  uint64_t stacks;            /* distinct interned stacks */
  uint64_t tracer_memory;     /* as hs_get_tracer_memory() */
  uint64_t trace_table_bytes; /* part of tracer_memory: the live-trace tables */
  uint64_t stack_table_bytes; /* part of tracer_memory: interned stacks */
  uint64_t dropped_traces;    /* allocations not traced: heapsnap lacked memory or room */
  uint64_t dropped_bytes;     /* their requested bytes */
  uint64_t alloc_calls;       /* blocks traced since start or clear: each
                                 malloc, calloc, memalign... and each
                                 realloc that returned a block counts once,
                                 as heaptrack counts them */
  uint64_t event_ring_bytes;  /* part of tracer_memory: the ring through
                                 which full tracing hands allocations and
                                 frees to the table (HEAPSNAP_DEFER); made
                                 at the first start, kept until exit */
  uint64_t truncated_stacks;  /* captures cut short, their outer frames
                                 missing: a fork child that inherited the
                                 dynamic loader's lock held cannot call
                                 libunwind, and never waits for it */
} hs_stats_t;

/* Fills *out, a struct of size bytes (sizeof *out). Returns 0 or HS_EINVAL
 * (out NULL, size too small). Counters are read without stopping threads,
 * so they are consistent only when no other thread allocates.
 * [MT] [AS-no] [fork-ok] */
HS_API int hs_get_stats(hs_stats_t *out, size_t size);

/* Copies the stack that allocated the live block ptr (domain 0) into
 * frames[0..max), most recent call first, as raw return addresses.
 * Returns the number of frames stored (which may be less than the stack's
 * depth when max is smaller), HS_ENOTFOUND when ptr is not traced,
 * HS_ENOTTRACING, or HS_EINVAL. [MT] [AS-no] [fork-ok] */
HS_API int hs_get_object_traceback(const void *ptr, uintptr_t *frames, int max);

/* Domains, as PyTraceMalloc_Track: trace memory heapsnap cannot see itself
 * (pools, arenas, mmap regions, device memory). Domain 0 is the C heap.
 * Tracking a (domain, ptr) that is already traced replaces its size and
 * stack. Returns 0, HS_ENOMEM (the trace was dropped and counted) or
 * HS_ENOTTRACING. The stack recorded is the caller's.
 * [MT] [AS-no] [fork-ok] */
HS_API int hs_track(unsigned int domain, uintptr_t ptr, size_t size);

/* Forgets the trace of (domain, ptr). Returns 0 (also when it was not
 * traced) or HS_ENOTTRACING. [MT] [AS-no] [fork-ok] */
HS_API int hs_untrack(unsigned int domain, uintptr_t ptr);

/* ---- Snapshots (tracemalloc.Snapshot) ------------------------------------ */

typedef struct hs_snapshot hs_snapshot_t;

/* Copies the live traces, the totals, the traceback limit, the time and the
 * loaded modules (path, build-id, load address) while other threads keep
 * allocating. Symbolization happens later, once, at the first statistics,
 * filter or dump call. Returns 0, HS_ENOTTRACING or HS_ENOMEM.
 * Caller frees *out with hs_snapshot_free(). Concurrent hs_stop() or
 * hs_clear_traces() make it see the traces before or after, or fail with
 * HS_ENOTTRACING; never a mix that names a freed stack.
 * [MT] [AS-no] [fork-no: reads the loader's module list] */
HS_API int hs_take_snapshot(hs_snapshot_t **out);

/* Frees a snapshot (NULL is fine). Statistics taken from it must be freed
 * first: their strings point into it. No other call on snap may run at
 * the same time. [MT, but exclusive on snap] [AS-no] [fork-ok] */
HS_API void hs_snapshot_free(hs_snapshot_t *snap);

/* Writes the snapshot to path as a .hsnap file (docs/format.md), after
 * symbolizing it. The file is written under a temporary name in the same
 * directory and renamed, so path never holds a partial file. Returns 0,
 * HS_ENOMEM, or HS_EIO with errno telling why. Several threads may dump,
 * compare and take statistics of one snapshot at once: the first to need
 * the symbols resolves them, the others wait for it.
 * [MT-obj] [AS-no] [fork-no: symbolizes with libdw] */
HS_API int hs_snapshot_dump(hs_snapshot_t *snap, const char *path);

/* Loads a .hsnap file. Returns 0 or HS_EIO, HS_EFORMAT, HS_EVERSION,
 * HS_ETRUNC, HS_ECORRUPT, HS_ENOMEM; then err (if not NULL) holds one line
 * "PATH: what is wrong". Every field is validated: hostile files are safe.
 * Caller frees *out with hs_snapshot_free(). [MT] [AS-no] [fork-ok] */
HS_API int hs_snapshot_load(const char *path, hs_snapshot_t **out, char *err,
                            size_t errlen);

/* What a snapshot says about itself (a versioned struct, see hs_stats_t).
 * Strings live as long as the snapshot. */
typedef struct hs_snapshot_info {
  size_t struct_size;      /* bytes the library filled */
  uint64_t pid;
  uint64_t time_ns;        /* CLOCK_REALTIME when taken */
  int traceback_limit;     /* nframe in force when taken */
  uint64_t traced_current; /* hs_get_traced_memory() when taken */
  uint64_t traced_peak;
  uint64_t dropped_traces; /* traces lost (heapsnap out of memory) before it */
  uint64_t dropped_bytes;
  uint64_t tracer_memory;
  uint64_t size;           /* sum of the sizes of the traces it holds */
  uint64_t count;          /* number of traces it holds */
  uint64_t stacks;         /* distinct stacks */
  uint32_t modules;        /* modules recorded */
  uint64_t sample_rate;    /* 0: exact; N: size and count are estimates
                              from one sample per N bytes */
  const char *program;     /* path of the program, "" if unknown */
  /* Churn since tracing started (or was cleared), estimates when sampled;
   * all 0 in a file written before heapsnap kept them (has_churn 0). */
  int has_churn;
  uint64_t alloc_size;     /* bytes allocated */
  uint64_t alloc_count;    /* blocks allocated */
  uint64_t temporary;      /* freed before their thread's next allocation */
  uint64_t temporary_time; /* freed within temporary_ns */
  uint64_t temporary_ns;   /* the time threshold in force when taken */
} hs_snapshot_info_t;
/* Fills *out, a struct of size bytes (sizeof *out): 0 or HS_EINVAL.
 * [MT-obj] [AS-no] [fork-ok] */
HS_API int hs_snapshot_get_info(const hs_snapshot_t *snap,
                                hs_snapshot_info_t *out, size_t size);

/* Statistics keys. The "site" of an allocation is the innermost frame that
 * has source-line information and is not an allocation wrapper (see
 * hs_snapshot_add_wrapper); in raw mode it is frame 0, as tracemalloc does.
 *   HS_KEY_FILENAME  the site's file
 *   HS_KEY_LINENO    the site's file and line
 *   HS_KEY_FUNCTION  the site's function
 *   HS_KEY_TRACEBACK the whole stack (most recent frame first)
 * cumulative: every frame of the stack counts (a recursive frame counts
 * twice), as tracemalloc's cumulative=True; not with HS_KEY_TRACEBACK. */
typedef enum hs_key {
  HS_KEY_FILENAME = 0,
  HS_KEY_LINENO = 1,
  HS_KEY_FUNCTION = 2,
  HS_KEY_TRACEBACK = 3
} hs_key_t;
/* OR'd into a key for hs_snapshot_statistics() and hs_snapshot_compare()
 * (e.g. (hs_key_t)(HS_KEY_LINENO | HS_KEY_BY_LEAK)): every entry is split
 * by the leak class of its blocks (hs_statistics_leak_kind() says which;
 * a snapshot without classes gives only HS_LEAK_UNCHECKED entries). A
 * key's churn has no class and is counted once, on its UNCHECKED entry.
 * hs_statistics_info_t.key is the key without this flag. */
#define HS_KEY_BY_LEAK 0x100

/* hs_frame_t, hs_statistic_t, hs_statistic_diff_t and hs_filter_t are
 * elements of arrays (the caller indexes frames[i], passes filters[n]) or
 * built by callers for the format functions, so they carry no size: their
 * layout is fixed for soname 1 and changes only with the next soname. */

/* One frame of a key. Strings are NULL when unknown; they live as long as
 * the snapshot the statistics came from. */
typedef struct hs_frame {
  const char *filename;
  unsigned lineno;
  const char *function;
  const char *module;  /* path of the module, NULL when outside every one */
  uint64_t offset;     /* address minus the module's load address */
} hs_frame_t;

typedef struct hs_statistic {
  const hs_frame_t *frames; /* the key: 1 frame, or the stack for TRACEBACK */
  size_t nframe;
  size_t site;              /* index in frames of the allocation site */
  uint64_t size;
  uint64_t count;
  /* Churn of the key (see hs_set_temporary_threshold): */
  uint64_t alloc_size;      /* bytes allocated */
  uint64_t alloc_count;     /* blocks allocated */
  uint64_t frees;           /* blocks freed */
  uint64_t temporary;       /* freed before the thread's next allocation */
  uint64_t temporary_time;  /* freed within the time threshold */
  const uint64_t *lifetime; /* HS_LIFETIME_BUCKETS counts of freed blocks */
  uint64_t lifetime_p50_ns; /* percentiles of the freed blocks' lifetimes */
  uint64_t lifetime_p90_ns; /* (the bucket's upper bound; 0 when none) */
  uint64_t lifetime_p99_ns;
} hs_statistic_t;

typedef struct hs_statistic_diff {
  const hs_frame_t *frames;
  size_t nframe;
  size_t site;
  uint64_t size;
  int64_t size_diff;
  uint64_t count;
  int64_t count_diff;
  /* Churn in the new snapshot, and its change since the old one: */
  uint64_t alloc_size;
  int64_t alloc_size_diff;
  uint64_t alloc_count;
  int64_t alloc_count_diff;
  uint64_t temporary;
  int64_t temporary_diff;
  uint64_t temporary_time;
  int64_t temporary_time_diff;
  uint64_t frees;
  const uint64_t *lifetime; /* the new snapshot's */
  uint64_t lifetime_p50_ns, lifetime_p90_ns, lifetime_p99_ns;
} hs_statistic_diff_t;

/* The result of hs_snapshot_statistics() or hs_snapshot_compare(): an
 * opaque, immutable, sorted list, read with the getters below, as one
 * iterates tracemalloc's list of Statistic:
 *
 *   for (size_t i = 0; i < hs_statistics_count(st); i++)
 *     hs_statistic_format(hs_statistics_get(st, i), key, buf, sizeof buf);
 *
 * Getters are [MT-obj] [AS-no] [fork-ok]: any number of threads may read
 * one list at once. */
typedef struct hs_statistics hs_statistics_t;

/* Entries in the list (0 for NULL). */
HS_API size_t hs_statistics_count(const hs_statistics_t *st);
/* Entry i of a statistics list; NULL when i is past the end or st came
 * from hs_snapshot_compare(). Lives as long as st. */
HS_API const hs_statistic_t *hs_statistics_get(const hs_statistics_t *st,
                                               size_t i);
/* Entry i of a compare list; NULL when i is past the end or st came from
 * hs_snapshot_statistics(). Lives as long as st. */
HS_API const hs_statistic_diff_t *
hs_statistics_get_diff(const hs_statistics_t *st, size_t i);

/* The leak class (HS_LEAK_*) of entry i of a list grouped with
 * HS_KEY_BY_LEAK; -1 when st is not grouped so, or i is past the end.
 * [MT-obj] [AS-no] [fork-ok] */
HS_API int hs_statistics_leak_kind(const hs_statistics_t *st, size_t i);

/* What a list is about (a versioned struct, see hs_stats_t). */
typedef struct hs_statistics_info {
  size_t struct_size;       /* bytes the library filled */
  hs_key_t key;
  int cumulative;
  int compare;              /* 1: from hs_snapshot_compare() (diff entries) */
  size_t count;             /* entries, as hs_statistics_count() */
  uint64_t total_size;      /* over all traces of the (new) snapshot */
  uint64_t total_count;
  int64_t total_size_diff;  /* compare only */
  int64_t total_count_diff;
  uint64_t sample_rate;     /* 0: exact; N: sizes and counts are estimates
                               (of the new snapshot; a compare with a
                               sampled old one says the old's in
                               old_sample_rate) */
  uint64_t old_sample_rate;
  /* Churn totals (all 0 when has_churn is 0: a snapshot without churn
   * counters): */
  int has_churn;
  uint64_t alloc_size, alloc_count, temporary, temporary_time;
  int64_t alloc_size_diff, alloc_count_diff, temporary_diff,
      temporary_time_diff;
} hs_statistics_info_t;
/* Fills *out, a struct of size bytes (sizeof *out): 0 or HS_EINVAL. */
HS_API int hs_statistics_get_info(const hs_statistics_t *st,
                                  hs_statistics_info_t *out, size_t size);

/* Statistics of a snapshot grouped by key, sorted as tracemalloc sorts:
 * size, count, then key, all descending. Returns 0, HS_EINVAL (cumulative
 * with HS_KEY_TRACEBACK, or a bad key) or HS_ENOMEM.
 * Caller frees *out with hs_statistics_free().
 * [MT-obj] [AS-no] [fork-no: symbolizes with libdw] */
HS_API int hs_snapshot_statistics(hs_snapshot_t *snap, hs_key_t key,
                                  int cumulative, hs_statistics_t **out);

/* Differences from old to snap (tracemalloc's snap.compare_to(old)): every
 * key of either snapshot, the other side counted as zero, sorted by
 * |size_diff|, size, |count_diff|, count, key, all descending. Keys compare
 * by (file, line, function), never by address. Same returns as
 * hs_snapshot_statistics(). Caller frees with hs_statistics_free().
 * snap and old may be the same snapshot, and other threads may use either.
 * [MT-obj] [AS-no] [fork-no: symbolizes with libdw] */
HS_API int hs_snapshot_compare(hs_snapshot_t *snap, hs_snapshot_t *old,
                               hs_key_t key, int cumulative,
                               hs_statistics_t **out);

/* Frees a list (NULL is fine); no other call on st may run at the same
 * time. [MT, but exclusive on st] [AS-no] [fork-ok] */
HS_API void hs_statistics_free(hs_statistics_t *st);

/* Orders: HS_SORT_LIVE as above; HS_SORT_ALLOCATED by bytes allocated,
 * HS_SORT_COUNT by blocks allocated, HS_SORT_TEMPORARY by temporary
 * blocks (heaptrack's), descending, then live size and key (for a compare,
 * by the absolute change of that figure first). Keys that only churned
 * (nothing live) appear in every order. Returns 0, HS_EINVAL, or HS_ENOMEM
 * (a list grouped by class is sorted through a copy; it is left as it
 * was). */
enum { HS_SORT_LIVE = 0, HS_SORT_ALLOCATED = 1, HS_SORT_COUNT = 2,
       HS_SORT_TEMPORARY = 3 };
HS_API int hs_statistics_sort(hs_statistics_t *st, int order);

/* Filters, as tracemalloc's Filter and DomainFilter. A trace is kept if
 * there is no inclusive filter or one matches, and no exclusive filter
 * rejects it. */
typedef struct hs_filter {
  int inclusive;                /* 1: keep what matches; 0: drop it */
  const char *filename_pattern; /* fnmatch pattern; NULL: a domain filter */
  unsigned lineno;              /* 0: any line */
  int all_frames;               /* 0: match the site only; 1: any frame */
  int domain;                   /* -1: any domain */
} hs_filter_t;

/* A new snapshot with the traces that pass the filters (all of them when
 * nfilter is 0). Returns 0, HS_EINVAL or HS_ENOMEM. The new snapshot is
 * the caller's, freed with hs_snapshot_free().
 * [MT-obj] [AS-no] [fork-no: symbolizes with libdw] */
HS_API int hs_snapshot_filter(hs_snapshot_t *snap, const hs_filter_t *filters,
                              size_t nfilter, hs_snapshot_t **out);

/* Allocation wrappers: frames skipped when looking for the site. The
 * defaults cover the malloc family and string duplicators, operator new,
 * std::allocator and the standard library headers, reclayout's allocating
 * functions, and the modules libc, libstdc++ and heapsnap. A change waits
 * for the statistics, compares and filters running on snap, and applies
 * to those started after it returns. Returns 0, HS_EINVAL or HS_ENOMEM.
 * [MT-obj] [AS-no] [fork-ok] */
enum { HS_WRAP_FUNCTION = 1, HS_WRAP_FILE = 2, HS_WRAP_MODULE = 3 };
HS_API int hs_snapshot_add_wrapper(hs_snapshot_t *snap, int kind,
                                   const char *pattern);
/* Wrappers every snapshot taken or loaded afterwards starts with (the
 * launcher's --wrapper and HEAPSNAP_WRAPPERS use this).
 * [MT] [AS-no] [fork-ok] */
HS_API int hs_add_wrapper(int kind, const char *pattern);
/* raw != 0: the site is frame 0, exactly as tracemalloc does. Ordered
 * with running calls as hs_snapshot_add_wrapper(). [MT-obj] [AS-no]
 * [fork-ok] */
HS_API void hs_snapshot_set_raw(hs_snapshot_t *snap, int raw);

/* ---- Text, as tracemalloc prints it -------------------------------------- */

/* The format functions only read their arguments and write buf: [MT]
 * [AS-no: snprintf] [fork-ok]; hs_traceback_format reads source files. */

/* tracemalloc's _format_size: "10239 B", "10.0 KiB", "-19.5 KiB" (sign: a
 * '+' for positives and zero). Returns buf. */
HS_API char *hs_format_size(double size, int sign, char *buf, size_t len);
/* "file:line" for a frame with source, else "[module] function" or
 * "[module] +0xoffset". Returns the length snprintf would. */
HS_API int hs_frame_format(const hs_frame_t *f, hs_key_t key, char *buf,
                           size_t len);
/* str(Statistic): "f.c:42: size=1953 KiB, count=100000, average=20 B".
 * A traceback key prints its site frame (tracemalloc prints the oldest
 * frame, which in C is _start). */
HS_API int hs_statistic_format(const hs_statistic_t *st, hs_key_t key,
                               char *buf, size_t len);
/* str(StatisticDiff): "f.c:9: size=0 B (-4096 B), count=0 (-3)". */
HS_API int hs_statistic_diff_format(const hs_statistic_diff_t *d,
                                    hs_key_t key, char *buf, size_t len);
/* Entry i of a list as hs_statistic_format() or hs_statistic_diff_format()
 * print it with the list's key, the class after the key when the list is
 * grouped by class: "f.c:42 (definitely lost): size=40 B, count=1,
 * average=40 B". Returns the length snprintf would, or HS_EINVAL (st NULL,
 * i past the end). [MT-obj] [AS-no: snprintf] [fork-ok] */
HS_API int hs_statistics_format(const hs_statistics_t *st, size_t i,
                                char *buf, size_t len);
/* Traceback.format(): lines '  File "f.c", line 42' each followed by the
 * source line (indented) when the file can be read. limit > 0 keeps the
 * limit most recent frames, < 0 the oldest, 0 all; most_recent_first as
 * tracemalloc's. Frames come most recent first, as in hs_statistic_t.
 * Returns the length snprintf would. */
HS_API int hs_traceback_format(const hs_frame_t *frames, size_t nframe,
                               int limit, int most_recent_first, char *buf,
                               size_t len);

/* ---- Leak check (valgrind memcheck's verdicts, LeakSanitizer's scan) ---- */

/* A live block's class after a check, in valgrind's words:
 *   DEFINITE  "definitely lost": no pointer to its start or inside it was
 *             found in the roots or in any block reachable from them;
 *   INDIRECT  "indirectly lost": pointed to only from lost blocks;
 *   POSSIBLE  "possibly lost": reached from the roots, but only through a
 *             chain with at least one interior pointer;
 *   REACHABLE "still reachable": a chain of start pointers leads to it.
 * UNCHECKED: no check classified it (allocated after the last check, or
 * the check did not run). */
typedef enum hs_leak_kind {
  HS_LEAK_UNCHECKED = 0,
  HS_LEAK_DEFINITE = 1,
  HS_LEAK_INDIRECT = 2,
  HS_LEAK_POSSIBLE = 3,
  HS_LEAK_REACHABLE = 4,
  HS_LEAK_SUPPRESSED = 5 /* a loss matched by a suppression (reports only) */
} hs_leak_kind_t;
#define HS_LEAK_KINDS 6

typedef struct hs_leak_summary {
  uint64_t bytes[HS_LEAK_KINDS];  /* indexed by hs_leak_kind_t */
  uint64_t blocks[HS_LEAK_KINDS];
  uint32_t threads;        /* threads whose stack and registers were scanned */
  uint32_t threads_missed; /* threads that did not stop within 1 s (or past
                              the table of 4,096): their stacks are not roots */
  int partial;             /* threads_missed > 0, a stack could not be found,
                              or tracing is sampled (blocks reached only
                              through unsampled ones look lost): losses may
                              be overstated */
  int stopped_by;          /* HS_LEAK_STOP_* bits: how the other threads
                              were stopped; 0 when there was none (or the
                              library is older than this member, which
                              fills what was padding) */
  uint64_t scan_ns;        /* from the stop to the resume */
} hs_leak_summary_t;
/* HS_LEAK_STOP_PTRACE: a helper task stopped them with ptrace (an
 * interrupted system call restarts: nanosleep, poll, select, read and the
 * futex waits see no EINTR; epoll_wait and sigtimedwait do, as after
 * SIGSTOP). HS_LEAK_STOP_SIGNAL: a real-time signal parked them in a
 * handler (the calls signal(7) lists as never restarted return EINTR):
 * where ptrace is refused (seccomp, Yama, a debugger already tracing the
 * thread), off x86-64, or HEAPSNAP_LEAK_STOP=signal. */
#define HS_LEAK_STOP_PTRACE 1
#define HS_LEAK_STOP_SIGNAL 2

/* Stops every other thread of the process (ptrace from a helper task, or a
 * real-time signal that parks it in a handler; see HS_LEAK_STOP_*), scans conservatively from the roots -
 * writable segments of every loaded module except heapsnap's, each thread's
 * stack from its stack pointer up (glibc's static TLS and thread descriptor
 * lie there), the main thread's static TLS, every thread's registers - and
 * classifies each live heap block (domain 0). The threads are resumed before
 * it returns, whatever failed. Snapshots taken afterwards carry each block's
 * class. Heap memory heapsnap uses for this is mapped, not allocated
 * (about 28 bytes per live block, released at the next check or hs_stop).
 * out may be NULL. Returns 0, HS_ENOTTRACING or HS_ENOMEM. */
HS_API int hs_leak_check(hs_leak_summary_t *out);

/* The classes a snapshot holds (all blocks UNCHECKED when it was taken
 * before any check, or loaded from a file without them). Returns 1 when the
 * snapshot carries classes, else 0. */
HS_API int hs_snapshot_leak_summary(const hs_snapshot_t *snap,
                                    hs_leak_summary_t *out);

/* A new snapshot with the blocks whose class is in kinds, a mask of
 * (1u << HS_LEAK_*): statistics of it group one class by any key (and
 * HS_KEY_BY_LEAK splits any snapshot's statistics by class).
 * Returns 0, HS_EINVAL or HS_ENOMEM. Caller frees with hs_snapshot_free(). */
HS_API int hs_snapshot_filter_leaks(hs_snapshot_t *snap, unsigned kinds,
                                    hs_snapshot_t **out);

/* Suppressions, as valgrind's: a file of lines "fun:PATTERN" (a function of
 * the block's stack) and "obj:PATTERN" (its module's path or file name),
 * fnmatch patterns; '#' starts a comment, "{", "}" and names between are
 * ignored, so the bodies of valgrind suppressions read as single lines.
 * A lost block (definite, indirect or possible) any of whose frames matches
 * any line becomes HS_LEAK_SUPPRESSED in snap. Returns the number of blocks
 * suppressed, or HS_EIO (err says why), HS_EINVAL, HS_ENOMEM. */
HS_API int64_t hs_snapshot_leak_suppress(hs_snapshot_t *snap, const char *path,
                                         char *err, size_t errlen);

/* "definitely lost", "indirectly lost", "possibly lost", "still reachable",
 * "suppressed", "unchecked" (static strings). [MT] [AS-safe] [fork-ok] */
HS_API const char *hs_leak_kind_name(int kind);

#ifdef __cplusplus
}
#endif
#endif /* HEAPSNAP_H */
