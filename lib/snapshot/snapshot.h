/* snapshot.h - the in-memory snapshot shared by the snapshot layer (take,
 * statistics, compare, filter) and the file format (dump, load). */
#ifndef HS_SNAPSHOT_H
#define HS_SNAPSHOT_H

#include <stdint.h>

#include "../common/internal.h"
#include "../symbolize/symbolize.h"

#define HS_NOSTR UINT32_MAX /* a string reference that names nothing */

/* A symbolized source position. Strings are byte offsets into strtab. */
typedef struct hs_loc {
  uint32_t function; /* function name, HS_NOSTR when unknown */
  uint32_t file;     /* source file, HS_NOSTR when there is no line info */
  uint32_t line;     /* 0 when unknown */
  int32_t module;    /* index into modules, -1 when outside every module */
  uint64_t offset;   /* address minus the module's bias (the address itself
                        when module is -1); kept for frames without lines */
} hs_loc_t;

/* One interned stack after symbolization: locs stack_locs[first ..
 * first + nloc), innermost first, inlined frames expanded. */
typedef struct hs_snap_stack {
  uint32_t first;
  uint32_t nloc;
} hs_snap_stack_t;

/* Live traces grouped by (domain, stack, size): the file and the statistics
 * need no more than that, and a million blocks from a thousand sites become
 * a few thousand groups. */
typedef struct hs_group {
  uint32_t domain;
  uint32_t stack; /* index into stacks */
  uint64_t size;  /* requested size of each block */
  uint64_t count; /* number of live blocks */
} hs_group_t;

/* A stack's churn since tracing started (or was cleared): estimates when
 * sampled, exact otherwise. */
typedef struct hs_snap_ctr {
  uint64_t allocs;    /* blocks allocated */
  uint64_t bytes;     /* bytes allocated */
  uint64_t frees;     /* blocks freed */
  uint64_t temp;      /* freed before their thread's next allocation */
  uint64_t temp_time; /* freed within temp_ns */
  uint64_t hist[HS_LIFETIME_BUCKETS]; /* freed blocks by lifetime */
} hs_snap_ctr_t;

/* A pattern that marks frames as allocation wrappers (skipped when finding
 * an allocation's site). */
typedef struct hs_wrapper {
  int kind;      /* HS_WRAP_FUNCTION or HS_WRAP_FILE (heapsnap.h) */
  char *pattern; /* fnmatch pattern */
} hs_wrapper_t;

struct hs_snapshot {
  /* ---- header ---- */
  uint64_t pid;
  uint64_t time_ns;        /* CLOCK_REALTIME when taken, in nanoseconds */
  uint32_t nframe;         /* traceback limit in force */
  uint64_t traced_current; /* hs_get_traced_memory() when taken */
  uint64_t traced_peak;
  uint64_t dropped_traces; /* traces lost before the snapshot */
  uint64_t dropped_bytes;
  uint64_t tracer_memory;  /* hs_get_tracer_memory() when taken */
  uint32_t program;        /* strtab offset of the program path */
  char *program_path;      /* the same string, owned: strtab moves while a
                              live snapshot symbolizes, and info hands this
                              out for the snapshot's life (NULL: use
                              program) */
  uint64_t sample_rate;    /* 0: exact; N: sampled, one per N bytes */

  /* ---- modules loaded when taken (paths are owned C strings) ---- */
  hs_module_list_t modules;

  /* ---- raw stage: a live snapshot before symbolization ---- */
  uintptr_t *raw;        /* raw return addresses of every stack, concatenated */
  uint32_t *raw_first;   /* per stack: index of its first raw frame */
  uint32_t *raw_n;       /* per stack: its raw frame count */

  /* ---- symbolized stage (always present in a loaded snapshot) ---- */
  /* Set (release) once the symbolized stage is complete; from then on
   * everything above and below but the attribution settings is read-only,
   * so readers on several threads need no lock. */
  atomic_int symbolized;
  char *strtab;          /* NUL-terminated strings, back to back */
  uint32_t strtab_len;   /* bytes used */
  uint32_t strtab_cap;   /* bytes allocated */
  hs_loc_t *locs;
  uint32_t nlocs;
  uint32_t *stack_locs;  /* loc indexes, per stack (see hs_snap_stack_t) */
  uint32_t nstack_locs;

  /* ---- stacks and traces, in both stages ---- */
  hs_snap_stack_t *stacks; /* nstacks entries once symbolized */
  uint32_t nstacks;
  hs_group_t *groups;
  uint64_t ngroups;
  hs_snap_ctr_t *ctrs; /* nstacks entries, or NULL (a file from before
                          churn was kept); stacks that only churned have
                          no group */
  uint64_t temp_ns;    /* the temporary-by-time threshold in force */

  uint32_t *group_leak;    /* per group, the HS_LEAK_* class a leak check
                              gave its blocks; NULL when the snapshot was
                              taken before any check (or read from a file
                              without them) */

  /* ---- attribution settings (not stored in files) ---- */
  hs_wrapper_t *wrappers; /* protected by settings_lock */
  uint32_t nwrappers;     /* protected by settings_lock */
  int raw_mode; /* protected by settings_lock; 1: the site is frame 0 */

  /* ---- concurrency (the contract in heapsnap.h) ---- */
  /* Held for writing to change the settings above, for reading by every
   * pass that uses them (statistics, compare, filter). */
  pthread_rwlock_t settings_lock;
  /* Serializes the one symbolization: the first caller does it while the
   * others wait, instead of two building (and freeing) the stage at once. */
  pthread_mutex_t symbolize_mu;
};

/* Makes the locks of a snapshot made by calloc (hs__snapshot_new and the
 * file reader call it; hs_snapshot_free destroys them). */
HS_HIDDEN void hs__snapshot_locks_init(struct hs_snapshot *s);

/* The string at offset off, or NULL for HS_NOSTR. */
static inline const char *hs__str(const struct hs_snapshot *s, uint32_t off) {
  return off == HS_NOSTR ? NULL : s->strtab + off;
}

/* Grows *arr (elements of elem bytes) to hold at least need elements,
 * doubling. 0 or HS_ENOMEM (then *arr is unchanged). */
HS_HIDDEN int hs__reserve(void *arr, uint64_t *cap, uint64_t need,
                          size_t elem);

/* Appends a string to strtab (no de-duplication here; the caller interns).
 * Returns its offset, or HS_NOSTR when out of memory or past 4 GiB. */
HS_HIDDEN uint32_t hs__strtab_add(struct hs_snapshot *s, const char *str);

/* Where a snapshot learns each live block's leak class. The leak check
 * lies above this layer: it registers its result here at its first check
 * (before that no class exists). lock() returns whether it took its lock
 * (unlock(that) always follows); have() whether its result names blocks of
 * the tracing state in force; kind_of() the class of one block, only
 * between lock and unlock. */
typedef struct hs_class_source {
  int (*lock)(void);
  int (*have)(void);
  unsigned (*kind_of)(uintptr_t ptr, uint64_t size, uint32_t stack);
  void (*unlock)(int locked);
} hs_class_source_t;
HS_HIDDEN void hs__snapshot_set_class_source(const hs_class_source_t *src);

/* hs_statistic_format's text of st, or hs_statistic_diff_format's of d
 * (st NULL), with " (kind)" after the key when kind is not NULL. */
HS_HIDDEN int hs__statistic_text(const hs_statistic_t *st,
                                 const hs_statistic_diff_t *d, hs_key_t key,
                                 const char *kind, char *buf, size_t len);

/* Turns the raw stage into the symbolized stage (idempotent). 0 or HS_E*. */
HS_HIDDEN int hs__snapshot_symbolize(struct hs_snapshot *s);

/* Reads, in the background, the debug information of every module the
 * stacks interned so far run through (by resolving one address in each),
 * before a snapshot needs it (the one at exit, mostly). Stops early when
 * *stop is set. Returns how many modules it found. */
HS_HIDDEN int hs__symbols_warm(const atomic_int *stop);
/* Drops the symbolizer kept between snapshots, so that the next one
 * starts from nothing (the tests compare the two). */
HS_HIDDEN void hs__symbols_drop(void);
/* In a fork child: the symbolization lock made anew (its holder, if any,
 * is not in the child). */
HS_HIDDEN void hs__symbols_fork_child(void);
/* In the fork table: the wrapper list's lock and the module history's. */
HS_HIDDEN void hs__wrappers_fork_prepare(void);
HS_HIDDEN void hs__wrappers_fork_parent(void);
HS_HIDDEN void hs__wrappers_fork_child(void);
HS_HIDDEN void hs__modmap_fork_prepare(void);
HS_HIDDEN void hs__modmap_fork_parent(void);
HS_HIDDEN void hs__modmap_fork_child(void);

/* Appends to mods the modules seen earlier in this process and unloaded
 * since (modmap.c). 0 or HS_ENOMEM. */
HS_HIDDEN int hs__modmap_merge_into(hs_module_list_t *mods);

/* The bytes and blocks group g stands for: exact, or when s was sampled
 * the unbiased estimate. */
HS_HIDDEN void hs__group_estimate(const struct hs_snapshot *s,
                                  const hs_group_t *g, uint64_t *bytes,
                                  uint64_t *count);

/* Gives s the default and process-wide wrappers. 0 or HS_ENOMEM. */
HS_HIDDEN int hs__snapshot_init_wrappers(struct hs_snapshot *s);

/* An empty snapshot (all zero, symbolized = 0) or NULL. */
HS_HIDDEN struct hs_snapshot *hs__snapshot_new(void);

#endif
