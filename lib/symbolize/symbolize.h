/* symbolize.h - the module map recorded at snapshot time, and the symbolizer
 * that turns raw return addresses into function, file, line, inline frames. */
#ifndef HS_SYMBOLIZE_H
#define HS_SYMBOLIZE_H

#include <stdint.h>

#include "../common/internal.h"

/* A loaded module as recorded at snapshot time, so that frames of a library
 * that is dlclose'd later still resolve. */
typedef struct hs_module {
  char *path;              /* absolute path of the ELF file (the main program's
                              "" is resolved through /proc/self/exe); the
                              loader's name when there is no file (vDSO) */
  uint8_t build_id[64];    /* NT_GNU_BUILD_ID bytes as mapped in memory */
  uint32_t build_id_len;   /* 0 when the module has no build-id note */
  uintptr_t bias;          /* load bias (dlpi_addr) */
  uintptr_t start, end;    /* [start, end): lowest PT_LOAD address and one past
                              the highest, biased */
} hs_module_t;

/* Modules sorted by start (hs__modules_find relies on it). */
typedef struct hs_module_list {
  hs_module_t *mods;
  uint32_t count;
} hs_module_list_t;

/* Captures the modules loaded now (dl_iterate_phdr), sorted by start; in a
 * fork child that must not take the loader's lock (hs__loader_unsafe), the
 * modules as they were just before the fork. Returns 0 or HS_ENOMEM (out
 * is then empty). Takes the loader lock and allocates: never call it from
 * the allocation hot path.
 * Caller frees with hs__modules_free(). */
HS_HIDDEN int hs__modules_capture(hs_module_list_t *out);
/* In the fork table: the module list kept for a child that must not call
 * dl_iterate_phdr (hs__loader_unsafe), captured before any heapsnap lock
 * is taken; and whether it is there. */
HS_HIDDEN void hs__modules_fork_prepare(void);
HS_HIDDEN int hs__modules_prefork_ok(void);
/* Frees what capture (or hs__modules_copy) allocated; leaves l empty. */
HS_HIDDEN void hs__modules_free(hs_module_list_t *l);
/* Deep copy of src into out (same order). 0 or HS_ENOMEM.
 * Caller frees with hs__modules_free(). */
HS_HIDDEN int hs__modules_copy(hs_module_list_t *out,
                               const hs_module_list_t *src);
/* Index of the module containing addr, or -1. l must be sorted by start. */
HS_HIDDEN int hs__modules_find(const hs_module_list_t *l, uintptr_t addr);

/* One resolved source position. A return address may expand to several
 * (innermost inlined function first, then its callers up to the real
 * function). */
typedef struct hs_symframe {
  const char *function; /* demangled if C++; NULL if unknown (then show
                           module+offset) */
  const char *file;     /* source path as DWARF gives it, made absolute with
                           the CU's comp_dir when relative; NULL if no line
                           info */
  uint32_t line;        /* 0 if unknown */
  int32_t module;       /* index into the module list, -1 if no module */
  uint64_t offset;      /* the address given minus the module's bias (the
                           address itself when module is -1) */
} hs_symframe_t;

typedef struct hs_symbolizer hs_symbolizer_t;

/* Opens a symbolizer over mods (copied; mods may be freed afterwards). Each
 * module is opened lazily from its recorded path at its recorded bias, never
 * from /proc/self/maps, so this works after a dlclose and in another process
 * on the same machine. Separate debug files are found by build-id under
 * /usr/lib/debug/.build-id/ (and by .gnu_debuglink). A file whose build-id
 * differs from the recorded one keeps its module index but yields neither
 * symbols nor lines. Returns NULL when out of memory.
 * Caller frees with hs__symbolizer_free(). */
HS_HIDDEN hs_symbolizer_t *hs__symbolizer_new(const hs_module_list_t *mods);
/* The same with the directories searched for separate debug files, in
 * libdwfl's debuginfo_path syntax ("dir1:dir2", absolute dirs get
 * .build-id/ lookups); NULL means the default (":.debug:/usr/lib/debug"). */
HS_HIDDEN hs_symbolizer_t *hs__symbolizer_new_ex(const hs_module_list_t *mods,
                                                const char *debuginfo_path);
/* Frees the symbolizer and every string it handed out. */
HS_HIDDEN void hs__symbolizer_free(hs_symbolizer_t *s);

/* Resolves one RETURN address (the line looked up is that of ret_addr - 1).
 * Fills up to max frames, innermost inline first, and returns how many
 * (>= 1: without debug info the frame still has module+offset, and the
 * function when the ELF symbol table has one), HS_EINVAL when max < 1 or
 * HS_ENOMEM. Results are cached per address. Strings stay valid until
 * hs__symbolizer_free(). Not thread-safe (neither is libdw): the caller
 * serialises. */
HS_HIDDEN int hs__symbolize(hs_symbolizer_t *s, uintptr_t ret_addr,
                            hs_symframe_t *out, int max);

/* Moves s over to the module list mods, keeping what it has read of every
 * module that is in both (the same file at the same place): its symbols,
 * its DWARF, and the addresses already resolved in it. So a symbolizer
 * kept from one snapshot to the next, or filled in the background before
 * the one at exit, does not decompress and parse a large debug file again
 * (libc's, from libc6-dbg, is 4 MiB of zlib). Returns 0, or -1 when a
 * module s has opened is not in mods (libdw cannot take one back: make a
 * new symbolizer) or memory is short; s is unchanged then. */
HS_HIDDEN int hs__symbolizer_rebind(hs_symbolizer_t *s,
                                    const hs_module_list_t *mods);

/* Whether module idx has usable DWARF (opening it if not done yet): 1, or 0
 * (no file, build-id mismatch, no debug info, or idx out of range). */
HS_HIDDEN int hs__symbolizer_has_debuginfo(hs_symbolizer_t *s, int idx);

#endif
