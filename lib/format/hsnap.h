/* hsnap.h - the .hsnap file format: its on-disk records (docs/format.md is
 * the byte-by-byte description), the atomic writer and the validating reader.
 */
#ifndef HS_HSNAP_H
#define HS_HSNAP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "snapshot/snapshot.h"

/* The 0x89 catches 7-bit channels, "\r\n" a CRLF->LF conversion, 0x1a stops
 * DOS "type", the last "\n" an LF->CRLF conversion (the trick PNG uses). */
#define HS_HSNAP_MAGIC "\x89HSN\r\n\x1a\n"
#define HS_HSNAP_MAGIC_LEN 8

/* A reader accepts every minor of its major; a new minor may only add
 * sections, grow records and grow the header (see docs/format.md). */
#define HS_HSNAP_MAJOR 1
#define HS_HSNAP_MINOR 2 /* 1.1: the header gained sample_rate; 1.2:
                            temporary_ns and the stack-counter section */

/* The format's limits: the reader rejects anything larger before reading it,
 * and the writer refuses to produce it (EFBIG). */
#define HS_HSNAP_MAX_FILE ((uint64_t)1 << 30)
#define HS_HSNAP_MAX_SECTIONS 256u

/* Every multi-byte field on disk is little-endian and the records are packed
 * (no padding: the asserts below prove the host layout has none, so offsetof
 * gives the on-disk offset). The structs are the decoded form; hsnap.c moves
 * each field in and out with explicit little-endian helpers. */

/* The file header, at offset 0. */
struct hs_hsnap_header {
  uint8_t magic[8];        /* HS_HSNAP_MAGIC */
  uint16_t major;          /* format major: readers reject any other */
  uint16_t minor;          /* format minor: readers accept any */
  uint32_t header_size;    /* bytes of this header (>= 96; a minor may grow
                              it); the section directory starts here */
  uint32_t crc;            /* zlib crc32 of bytes [0, file_size) except these
                              four */
  uint32_t nsections;      /* entries in the section directory */
  uint64_t file_size;      /* total bytes of the file */
  uint64_t pid;            /* process the snapshot was taken in */
  uint64_t time_ns;        /* CLOCK_REALTIME when taken, in nanoseconds */
  uint64_t traced_current; /* traced bytes when taken */
  uint64_t traced_peak;    /* peak traced bytes when taken */
  uint64_t dropped_traces; /* traces lost before the snapshot */
  uint64_t dropped_bytes;  /* their requested bytes */
  uint64_t tracer_memory;  /* bytes heapsnap itself held */
  uint32_t nframe;         /* traceback limit in force */
  uint32_t program;        /* string ref of the program path, or HS_NOSTR */
  /* 1.1 and later; absent (0) in a 96-byte 1.0 header */
  uint64_t sample_rate;    /* 0: every allocation traced; N: one sampled
                              allocation per N bytes on average (Poisson) */
  /* 1.2 and later; absent in a 104-byte 1.1 header */
  uint64_t temporary_ns;   /* the time threshold of the counters'
                              temporary_time */
};
_Static_assert(sizeof(struct hs_hsnap_header) == 112, "header is 112 bytes");
/* The smallest header a reader accepts: version 1.0's. */
#define HS_HSNAP_HEADER_MIN 96u
_Static_assert(offsetof(struct hs_hsnap_header, crc) == 16, "crc at 16");
_Static_assert(offsetof(struct hs_hsnap_header, file_size) == 24, "size at 24");
_Static_assert(offsetof(struct hs_hsnap_header, program) == 92, "no padding");

/* One entry of the section directory (nsections of them, back to back, at
 * header_size). */
struct hs_hsnap_section {
  uint32_t type;        /* HS_HSNAP_SEC_*; readers skip types they don't know */
  uint32_t record_size; /* bytes per record; >= the size this version defines
                           (a minor may append fields to a record) */
  uint64_t count;       /* number of records */
  uint64_t offset;      /* from the start of the file */
  uint64_t length;      /* bytes: count * record_size for known types */
};
_Static_assert(sizeof(struct hs_hsnap_section) == 32, "section entry is 32");
_Static_assert(offsetof(struct hs_hsnap_section, length) == 24, "no padding");

enum hs_hsnap_sec_type {
  HS_HSNAP_SEC_STRTAB = 1,     /* NUL-terminated strings; record_size 1 */
  HS_HSNAP_SEC_MODULES = 2,    /* struct hs_hsnap_module */
  HS_HSNAP_SEC_LOCS = 3,       /* struct hs_hsnap_loc */
  HS_HSNAP_SEC_STACK_LOCS = 4, /* u32 loc indexes of every stack, flat */
  HS_HSNAP_SEC_STACKS = 5,     /* struct hs_hsnap_stack */
  HS_HSNAP_SEC_GROUPS = 6,     /* struct hs_hsnap_group */
  HS_HSNAP_SEC_COUNTERS = 7,   /* struct hs_hsnap_counters, 1.2; optional */
  HS_HSNAP_SEC_KNOWN = 7,      /* highest type this version reads */
  HS_HSNAP_SEC_REQUIRED = 6    /* types 1..this must be present */
};

/* Optional, in any 1.x file: one record per group, the class a leak check
 * gave its blocks. Written only by a snapshot taken after a check; readers
 * that do not know it skip it (types past HS_HSNAP_SEC_KNOWN). A number far
 * from the next minors' so that sections added meanwhile do not meet it. */
#define HS_HSNAP_SEC_LEAKS 32u
struct hs_hsnap_leak {
  uint32_t kind; /* HS_LEAK_* (heapsnap.h), 0..HS_LEAK_KINDS-1 */
};
_Static_assert(sizeof(struct hs_hsnap_leak) == 4, "leak record is 4");

/* A module loaded when the snapshot was taken, sorted by start. */
struct hs_hsnap_module {
  uint32_t path;         /* string ref of the ELF path (never HS_NOSTR) */
  uint32_t build_id_len; /* bytes of build_id used, 0..64 */
  uint8_t build_id[64];  /* NT_GNU_BUILD_ID; writers zero the unused tail */
  uint64_t bias;         /* load bias */
  uint64_t start;        /* lowest mapped address, biased */
  uint64_t end;          /* one past the highest, >= start */
};
_Static_assert(sizeof(struct hs_hsnap_module) == 96, "module record is 96");
_Static_assert(offsetof(struct hs_hsnap_module, bias) == 72, "no padding");

/* A symbolized frame. */
struct hs_hsnap_loc {
  uint32_t function; /* string ref, HS_NOSTR when unknown */
  uint32_t file;     /* string ref, HS_NOSTR without line info */
  uint32_t line;     /* 0 when unknown */
  int32_t module;    /* module index, or -1 outside every module */
  uint64_t offset;   /* address minus the module's bias */
};
_Static_assert(sizeof(struct hs_hsnap_loc) == 24, "loc record is 24");
_Static_assert(offsetof(struct hs_hsnap_loc, offset) == 16, "no padding");

/* A stack: stack_locs[first .. first + nloc), innermost first. */
struct hs_hsnap_stack {
  uint32_t first; /* index into the stack-locs section */
  uint32_t nloc;  /* number of locs (0 is allowed) */
};
_Static_assert(sizeof(struct hs_hsnap_stack) == 8, "stack record is 8");

/* Live blocks of one (domain, stack, size). */
struct hs_hsnap_group {
  uint32_t domain; /* 0 is the C heap */
  uint32_t stack;  /* stack index */
  uint64_t size;   /* requested size of each block */
  uint64_t count;  /* number of live blocks */
};
_Static_assert(sizeof(struct hs_hsnap_group) == 24, "group record is 24");
_Static_assert(offsetof(struct hs_hsnap_group, count) == 16, "no padding");

/* A stack's churn since tracing started (or was cleared): one record per
 * stack, in the stack table's order. Counts are estimates when sampled. */
struct hs_hsnap_counters {
  uint64_t allocs;    /* blocks allocated */
  uint64_t bytes;     /* bytes allocated */
  uint64_t frees;     /* blocks freed */
  uint64_t temporary; /* freed before their thread's next allocation */
  uint64_t temporary_time;   /* freed within the header's temporary_ns */
  uint64_t lifetime[32];     /* freed blocks: bucket 0 under 1,024 ns,
                                bucket k in [2^(k+9), 2^(k+10)) ns */
};
_Static_assert(sizeof(struct hs_hsnap_counters) == 296, "counters are 296");
_Static_assert(offsetof(struct hs_hsnap_counters, lifetime) == 40,
               "no padding");

/* Writes a symbolized snapshot (s->symbolized must be 1; else HS_EINVAL) to
 * path atomically: to "<path>.tmp.<pid>.<random>" in the same directory
 * (O_CREAT|O_EXCL|O_NOFOLLOW, 0644), fsync, rename over path. On failure the
 * temp file is unlinked and HS_EIO returned with errno kept (ENOSPC, EACCES,
 * ENOENT, EFBIG past HS_HSNAP_MAX_FILE...), or HS_ENOMEM / HS_EINVAL (a
 * snapshot whose indexes don't hold). path never holds a partial file. */
HS_HIDDEN int hs__hsnap_write(const struct hs_snapshot *s, const char *path);

/* The file image in memory: 0 and *buf (caller frees with free()) and *len,
 * or HS_EINVAL, HS_ENOMEM, HS_EIO with errno EFBIG. */
HS_HIDDEN int hs__hsnap_encode(const struct hs_snapshot *s, uint8_t **buf,
                               size_t *len);

/* Reads and validates a file (at most HS_HSNAP_MAX_FILE bytes). On success
 * *out is a new symbolized snapshot whose arrays (strtab, locs, stack_locs,
 * stacks, groups, modules.mods and each path) are separate malloc blocks;
 * caller frees with hs_snapshot_free(). Else HS_EIO, HS_EFORMAT, HS_EVERSION,
 * HS_ETRUNC, HS_ECORRUPT or HS_ENOMEM, and err (if not NULL) gets one line
 * "PATH: what is wrong". */
HS_HIDDEN int hs__hsnap_read(const char *path, struct hs_snapshot **out,
                             char *err, size_t errlen);

/* The same from memory; name stands for the path in messages. buf is only
 * read, never kept. */
HS_HIDDEN int hs__hsnap_read_mem(const void *buf, size_t len, const char *name,
                                 struct hs_snapshot **out, char *err,
                                 size_t errlen);

/* Test seams, not thread-safe: replace write(2) for the writer (to inject
 * ENOSPC/EIO), and the source of the temp name's random part (to plant a
 * file at the name the writer will try). NULL restores the default. */
HS_HIDDEN void hs__hsnap_set_write_fn(ssize_t (*fn)(int fd, const void *buf,
                                                    size_t len));
HS_HIDDEN void hs__hsnap_set_random_fn(uint64_t (*fn)(void));

#endif
