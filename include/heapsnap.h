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

#ifdef __cplusplus
}
#endif
#endif /* HEAPSNAP_H */
