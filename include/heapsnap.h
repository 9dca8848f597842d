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

#define HS_VERSION_MAJOR 0
#define HS_VERSION_MINOR 1
#define HS_VERSION_PATCH 0
#define HS_VERSION_STRING "0.1.0"

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

/* The sentence for an HS_E* code (a static string; never NULL). */
HS_API const char *hs_strerror(int err);

/* ---- Tracing control (tracemalloc.start/stop/is_tracing/...) ---------- */

/* Starts tracing every allocation with up to nframe frames per stack.
 * Returns 0, or HS_EINVAL when nframe is outside 1..HS_MAX_FRAMES.
 * A call while tracing is already on does nothing and keeps the old limit. */
HS_API int hs_start(int nframe);

/* Sampling, for always-on use: with a rate of N bytes, heapsnap records on
 * average one allocation per N bytes allocated, chosen by a Poisson process
 * (as tcmalloc and jemalloc do), so large blocks are always seen and small
 * ones fairly; every other allocation costs a subtraction. Snapshots scale
 * what they hold to unbiased estimates (hs_snapshot_info_t.sample_rate and
 * hs_statistics_t.sample_rate say so). 0 (the default) traces every
 * allocation. Takes effect at the next hs_start(); seed 0 picks a random
 * seed, any other value makes the choice of samples repeatable.
 * Returns 0 or HS_EINVAL (rate above 2^40). */
#define HS_DEFAULT_SAMPLE_RATE (64 * 1024)
HS_API int hs_set_sample_rate(size_t bytes, uint64_t seed);
/* The rate in force while tracing (else the one the next start will use). */
HS_API size_t hs_get_sample_rate(void);

/* Stops tracing and frees every trace and stack. Blocks allocated while
 * tracing stay valid and can be freed normally afterwards. */
HS_API void hs_stop(void);

/* 1 while tracing, else 0. */
HS_API int hs_is_tracing(void);

/* Drops every trace and stack; current and peak become 0. Tracing goes on. */
HS_API void hs_clear_traces(void);

/* The limit given to the last successful hs_start(), even after hs_stop();
 * HS_DEFAULT_FRAMES before any start. */
HS_API int hs_get_traceback_limit(void);

/* Sum of the requested sizes of live traced blocks, and its highest value
 * since tracing started (or since hs_reset_peak()/hs_clear_traces()).
 * Both 0 when not tracing. Either pointer may be NULL. */
HS_API void hs_get_traced_memory(size_t *current, size_t *peak);

/* Sets peak to current. */
HS_API void hs_reset_peak(void);

/* Bytes heapsnap itself holds for its tables and stacks (tracemalloc's
 * get_tracemalloc_memory()). Never counted in the traced memory. */
HS_API size_t hs_get_tracer_memory(void);

/* Counters for what tracing cost and what it lost. */
typedef struct hs_stats {
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
} hs_stats_t;

/* Fills *out. Always succeeds (counters are read without stopping threads,
 * so they are consistent only when no other thread allocates). */
HS_API void hs_get_stats(hs_stats_t *out);

/* Copies the stack that allocated the live block ptr (domain 0) into
 * frames[0..max), most recent call first, as raw return addresses.
 * Returns the number of frames stored (which may be less than the stack's
 * depth when max is smaller), HS_ENOTFOUND when ptr is not traced,
 * HS_ENOTTRACING, or HS_EINVAL. */
HS_API int hs_get_object_traceback(const void *ptr, uintptr_t *frames, int max);

/* Domains, as PyTraceMalloc_Track: trace memory heapsnap cannot see itself
 * (pools, arenas, mmap regions, device memory). Domain 0 is the C heap.
 * Tracking a (domain, ptr) that is already traced replaces its size and
 * stack. Returns 0, HS_ENOMEM (the trace was dropped and counted) or
 * HS_ENOTTRACING. The stack recorded is the caller's. */
HS_API int hs_track(unsigned int domain, uintptr_t ptr, size_t size);

/* Forgets the trace of (domain, ptr). Returns 0 (also when it was not
 * traced) or HS_ENOTTRACING. */
HS_API int hs_untrack(unsigned int domain, uintptr_t ptr);

/* ---- Snapshots (tracemalloc.Snapshot) ------------------------------------ */

typedef struct hs_snapshot hs_snapshot_t;

/* Copies the live traces, the totals, the traceback limit, the time and the
 * loaded modules (path, build-id, load address) while other threads keep
 * allocating. Symbolization happens later, once, at the first statistics,
 * filter or dump call. Returns 0, HS_ENOTTRACING or HS_ENOMEM.
 * Caller frees *out with hs_snapshot_free(). */
HS_API int hs_take_snapshot(hs_snapshot_t **out);

/* Frees a snapshot (NULL is fine). Statistics taken from it must be freed
 * first: their strings point into it. */
HS_API void hs_snapshot_free(hs_snapshot_t *snap);

/* Writes the snapshot to path as a .hsnap file (docs/format.md), after
 * symbolizing it. The file is written under a temporary name in the same
 * directory and renamed, so path never holds a partial file. Returns 0,
 * HS_ENOMEM, or HS_EIO with errno telling why. */
HS_API int hs_snapshot_dump(hs_snapshot_t *snap, const char *path);

/* Loads a .hsnap file. Returns 0 or HS_EIO, HS_EFORMAT, HS_EVERSION,
 * HS_ETRUNC, HS_ECORRUPT, HS_ENOMEM; then err (if not NULL) holds one line
 * "PATH: what is wrong". Every field is validated: hostile files are safe.
 * Caller frees *out with hs_snapshot_free(). */
HS_API int hs_snapshot_load(const char *path, hs_snapshot_t **out, char *err,
                            size_t errlen);

/* What a snapshot says about itself. Strings live as long as the snapshot. */
typedef struct hs_snapshot_info {
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
} hs_snapshot_info_t;
HS_API void hs_snapshot_get_info(const hs_snapshot_t *snap,
                                 hs_snapshot_info_t *out);

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
} hs_statistic_t;

typedef struct hs_statistic_diff {
  const hs_frame_t *frames;
  size_t nframe;
  size_t site;
  uint64_t size;
  int64_t size_diff;
  uint64_t count;
  int64_t count_diff;
} hs_statistic_diff_t;

typedef struct hs_statistics {
  hs_key_t key;
  size_t count;                /* entries in stats / diffs */
  hs_statistic_t *stats;       /* hs_snapshot_statistics(), sorted */
  hs_statistic_diff_t *diffs;  /* hs_snapshot_compare(), sorted */
  uint64_t total_size;         /* over all traces of the (new) snapshot */
  uint64_t total_count;
  int64_t total_size_diff;     /* compare only */
  int64_t total_count_diff;
  uint64_t sample_rate;        /* 0: exact; N: sizes and counts are
                                  estimates (of the new snapshot; a compare
                                  with a sampled old one says the old's in
                                  old_sample_rate) */
  uint64_t old_sample_rate;
  void *priv_;                 /* storage for the frames */
} hs_statistics_t;

/* Statistics of a snapshot grouped by key, sorted as tracemalloc sorts:
 * size, count, then key, all descending. Returns 0, HS_EINVAL (cumulative
 * with HS_KEY_TRACEBACK, or a bad key) or HS_ENOMEM.
 * Caller frees *out with hs_statistics_free(). */
HS_API int hs_snapshot_statistics(hs_snapshot_t *snap, hs_key_t key,
                                  int cumulative, hs_statistics_t **out);

/* Differences from old to snap (tracemalloc's snap.compare_to(old)): every
 * key of either snapshot, the other side counted as zero, sorted by
 * |size_diff|, size, |count_diff|, count, key, all descending. Keys compare
 * by (file, line, function), never by address. Same returns as
 * hs_snapshot_statistics(). Caller frees with hs_statistics_free(). */
HS_API int hs_snapshot_compare(hs_snapshot_t *snap, hs_snapshot_t *old,
                               hs_key_t key, int cumulative,
                               hs_statistics_t **out);

HS_API void hs_statistics_free(hs_statistics_t *st);

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
 * nfilter is 0). Returns 0, HS_EINVAL or HS_ENOMEM. */
HS_API int hs_snapshot_filter(hs_snapshot_t *snap, const hs_filter_t *filters,
                              size_t nfilter, hs_snapshot_t **out);

/* Allocation wrappers: frames skipped when looking for the site. The
 * defaults cover the malloc family and string duplicators, operator new,
 * std::allocator and the standard library headers, reclayout's allocating
 * functions, and the modules libc, libstdc++ and heapsnap. */
enum { HS_WRAP_FUNCTION = 1, HS_WRAP_FILE = 2, HS_WRAP_MODULE = 3 };
HS_API int hs_snapshot_add_wrapper(hs_snapshot_t *snap, int kind,
                                   const char *pattern);
/* Wrappers every snapshot taken or loaded afterwards starts with (the
 * launcher's --wrapper and HEAPSNAP_WRAPPERS use this). */
HS_API int hs_add_wrapper(int kind, const char *pattern);
/* raw != 0: the site is frame 0, exactly as tracemalloc does. */
HS_API void hs_snapshot_set_raw(hs_snapshot_t *snap, int raw);

/* ---- Text, as tracemalloc prints it -------------------------------------- */

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
  uint64_t scan_ns;        /* from the stop to the resume */
} hs_leak_summary_t;

/* Stops every other thread of the process (a real-time signal parks it in a
 * handler that saves its registers), scans conservatively from the roots -
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
 * (1u << HS_LEAK_*): statistics of it group one class by any key.
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
 * "suppressed", "unchecked" (static strings). */
HS_API const char *hs_leak_kind_name(int kind);

#ifdef __cplusplus
}
#endif
#endif /* HEAPSNAP_H */
