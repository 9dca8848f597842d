/* symbolize.c - address -> function, file, line and inline frames over a
 * recorded module list, with libdw for DWARF and our own symbol and result
 * caches (libdw's own address-to-name lookup is far too slow per call). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "symbolize.h"

/* Deeper inline chains exist only in pathological code; the outermost
 * frames beyond this are dropped. */
#define MAX_INLINE 32
#define CHUNK_SIZE (64u * 1024u)

/* ---- C++ demangling, found at run time so C programs never load
 * libstdc++ unless they contain a mangled name ---- */

typedef char *(*demangle_fn)(const char *mangled, char *buf, size_t *len,
                             int *status);
static demangle_fn demangler;
static pthread_once_t demangler_once = PTHREAD_ONCE_INIT;

static void find_demangler(void) {
  void *f = dlsym(RTLD_DEFAULT, "__cxa_demangle");
  /* dlopen takes the loader's write lock, which a fork child may have
   * inherited held: there, mangled names stay mangled. */
  if (!f && hs__loader_enter()) {
    /* Kept open for the life of the process: unloading libstdc++ runs its
     * destructors, which is no business of a profiler's. */
    void *h = dlopen("libstdc++.so.6", RTLD_LAZY | RTLD_LOCAL);
    if (h)
      f = dlsym(h, "__cxa_demangle");
    hs__loader_exit();
  }
  /* memcpy: ISO C has no object-to-function pointer conversion. */
  memcpy(&demangler, &f, sizeof demangler);
}

/* ---- the symbolizer's state ---- */

typedef struct sym {
  uint64_t addr; /* biased, as dwfl reports it */
  uint64_t size; /* 0 when the symbol table does not say */
  const char *name; /* into the ELF string table; lives as long as dwfl */
  int rank;         /* lower is preferred among aliases at one address */
} sym_t;

/* A concrete function's address range within its CU. */
typedef struct fnrange {
  Dwarf_Addr lo, hi; /* [lo, hi), DWARF addresses (unbiased) */
  Dwarf_Die die;     /* the DW_TAG_subprogram; valid while dwfl lives */
} fnrange_t;

typedef struct cuindex {
  Dwarf_Off off;   /* the CU DIE's offset: the key */
  fnrange_t *fns;  /* sorted by lo */
  size_t nfns;
} cuindex_t;

typedef struct smod {
  hs_module_t m;     /* copy; path owned */
  Dwfl_Module *dm;   /* NULL until opened, or when unusable */
  int opened;        /* opening was attempted */
  int syms_loaded;
  sym_t *syms;       /* sorted by addr, one per address */
  size_t nsyms;
  cuindex_t *cus;    /* CUs looked up so far, sorted by off */
  size_t ncus, cus_cap;
} smod_t;

typedef struct chunk {
  struct chunk *next;
  char data[];
} chunk_t;

typedef struct centry {
  uintptr_t addr;
  uint32_t first; /* index into frames */
  uint32_t count; /* 0: empty slot */
} centry_t;

struct hs_symbolizer {
  Dwfl *dwfl;
  Dwfl_Callbacks cb; /* dwfl keeps a pointer to it */
  char *debug_path;  /* cb.debuginfo_path points here */
  smod_t *mods;
  uint32_t nmods;
  uint32_t *order; /* module indices sorted by start */

  /* interned strings: an open-addressing set over chunked storage */
  const char **strs;
  size_t strs_cap, strs_count;
  chunk_t *chunks;
  char *chunk_cur;
  size_t chunk_left;

  /* resolved addresses: addr -> frames[first .. first+count) */
  centry_t *cache;
  size_t cache_cap, cache_count;
  hs_symframe_t *frames;
  size_t nframes, frames_cap;

  int oom; /* set by an allocation failure during one resolution */
};

/* ---- interned strings ---- */

static uint64_t hash_bytes(const char *p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
  return h;
}

static char *pool_alloc(hs_symbolizer_t *s, size_t n) {
  if (n > s->chunk_left) {
    size_t sz = n > CHUNK_SIZE / 4 ? n : CHUNK_SIZE;
    chunk_t *c = malloc(sizeof *c + sz);
    if (!c)
      return NULL;
    if (sz == n) {
      /* A big string gets a chunk of its own, behind the current one, so
       * the current chunk's free space is not wasted. */
      if (s->chunks) {
        c->next = s->chunks->next;
        s->chunks->next = c;
      } else {
        c->next = NULL;
        s->chunks = c;
      }
      return c->data;
    }
    c->next = s->chunks;
    s->chunks = c;
    s->chunk_cur = c->data;
    s->chunk_left = sz;
  }
  char *p = s->chunk_cur;
  s->chunk_cur += n;
  s->chunk_left -= n;
  return p;
}

static int strs_grow(hs_symbolizer_t *s) {
  size_t ncap = s->strs_cap ? s->strs_cap * 2 : 1024;
  const char **n = calloc(ncap, sizeof *n);
  if (!n)
    return HS_ENOMEM;
  for (size_t i = 0; i < s->strs_cap; i++) {
    const char *str = s->strs[i];
    if (!str)
      continue;
    size_t j = hash_bytes(str, strlen(str)) & (ncap - 1);
    while (n[j])
      j = (j + 1) & (ncap - 1);
    n[j] = str;
  }
  free(s->strs);
  s->strs = n;
  s->strs_cap = ncap;
  return 0;
}

/* The one copy of str[0..n); NULL (and s->oom) when out of memory. */
static const char *intern_n(hs_symbolizer_t *s, const char *str, size_t n) {
  if ((s->strs_count + 1) * 2 > s->strs_cap && strs_grow(s) != 0) {
    s->oom = 1;
    return NULL;
  }
  size_t mask = s->strs_cap - 1;
  size_t j = hash_bytes(str, n) & mask;
  for (; s->strs[j]; j = (j + 1) & mask) {
    const char *e = s->strs[j];
    if (strncmp(e, str, n) == 0 && e[n] == '\0')
      return e;
  }
  char *copy = pool_alloc(s, n + 1);
  if (!copy) {
    s->oom = 1;
    return NULL;
  }
  memcpy(copy, str, n);
  copy[n] = '\0';
  s->strs[j] = copy;
  s->strs_count++;
  return copy;
}

static const char *intern(hs_symbolizer_t *s, const char *str) {
  return str ? intern_n(s, str, strlen(str)) : NULL;
}

/* libdw already joins a file with its line-table directory; what is still
 * relative is relative to the compilation directory when that is absolute.
 * A relative comp_dir (Debian's -ffile-prefix-map builds, "./malloc") says
 * nothing more, so the path stays as DWARF gives it. */
static const char *intern_path(hs_symbolizer_t *s, const char *file,
                               const char *comp_dir) {
  if (!file)
    return NULL;
  if (file[0] == '/' || !comp_dir || comp_dir[0] != '/')
    return intern(s, file);
  size_t a = strlen(comp_dir), b = strlen(file);
  char *buf = malloc(a + b + 2);
  if (!buf) {
    s->oom = 1;
    return NULL;
  }
  memcpy(buf, comp_dir, a);
  buf[a] = '/';
  memcpy(buf + a + 1, file, b + 1);
  const char *r = intern_n(s, buf, a + 1 + b);
  free(buf);
  return r;
}

static const char *intern_function(hs_symbolizer_t *s, const char *name) {
  if (!name || !name[0])
    return NULL;
  if (name[0] == '_' && name[1] == 'Z') {
    pthread_once(&demangler_once, find_demangler);
    if (demangler) {
      int status = -1;
      char *d = demangler(name, NULL, NULL, &status);
      if (d && status == 0) {
        const char *r = intern(s, d);
        free(d);
        return r;
      }
      free(d);
    }
  }
  return intern(s, name);
}

/* ---- finding separate debug files ---- */

/* The CRC-32 of a whole file (zlib's is the one .gnu_debuglink uses). */
static int file_crc(int fd, uint32_t *out) {
  unsigned char buf[65536];
  uLong c = crc32(0L, Z_NULL, 0);
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0)
    c = crc32(c, buf, (uInt)n);
  if (n < 0 || lseek(fd, 0, SEEK_SET) != 0)
    return -1;
  *out = (uint32_t)c;
  return 0;
}

/* Whether the file open at fd is the debug file of a module with build-id
 * id (idlen bytes; 0: none): the same build-id when there is one, as libdw
 * itself checks, else (unless told not to) the debuglink's CRC. */
static int matches(int fd, const unsigned char *id, int idlen, int check_crc,
                   GElf_Word crc) {
  if (idlen > 0) {
    Elf *e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    const void *bits = NULL;
    ssize_t n = e ? dwelf_elf_gnu_build_id(e, &bits) : -1;
    int same = n == idlen && memcmp(bits, id, (size_t)idlen) == 0;
    if (e)
      elf_end(e);
    return same;
  }
  uint32_t c;
  return !check_crc || (file_crc(fd, &c) == 0 && c == crc);
}

/* Opens path for libdw if it is the module's debug file: its descriptor,
 * with the name handed over. */
static int take(const char *path, const unsigned char *id, int idlen,
                int check_crc, GElf_Word crc, char **name_out) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  char *name = NULL;
  if (!matches(fd, id, idlen, check_crc, crc) || !(name = strdup(path))) {
    close(fd);
    return -1;
  }
  *name_out = name;
  return fd;
}

/* libdw's standard search for a module's separate debug file, without
 * debuginfod: elfutils 0.188 loads libdebuginfod whenever a file is not
 * found locally, and with it libcurl, GnuTLS, Kerberos and some 30 more
 * libraries whose constructors run inside the host (a fork of the host
 * during that load left a child unable to run: "symbol lookup error"),
 * and it fetches over the network when DEBUGINFOD_URLS is set. A
 * profiler inside a production program does neither. For each entry D of
 * the path (libdwfl's syntax, default ":.debug:/usr/lib/debug"; a leading
 * '-' skips the CRC check, '+' keeps it): an absolute D gives
 * D/.build-id/xx/rest.debug, then D/<the file's directory>/<debuglink>;
 * "" gives <the file's directory>/<debuglink>, a relative D
 * <the file's directory>/D/<debuglink>. A file is taken only if its
 * build-id is the module's, or, for a module without one, if the CRC the
 * debuglink gives matches. */
static int find_local_debuginfo(Dwfl_Module *mod, void **userdata,
                                const char *modname, GElf_Addr base,
                                const char *file_name,
                                const char *debuglink_file,
                                GElf_Word debuglink_crc,
                                char **debuginfo_file_name) {
  (void)modname, (void)base;
  const hs_symbolizer_t *s = userdata ? *userdata : NULL;
  const char *path = s && s->debug_path ? s->debug_path
                                        : ":.debug:/usr/lib/debug";
  const unsigned char *id = NULL;
  GElf_Addr vaddr;
  int idlen = dwfl_module_build_id(mod, &id, &vaddr);
  char dir[PATH_MAX] = "";
  if (file_name) {
    const char *slash = strrchr(file_name, '/');
    size_t n = slash ? (size_t)(slash - file_name) : 0;
    if (n >= sizeof dir)
      return -1;
    memcpy(dir, file_name, n);
    dir[n] = '\0';
  }
  char cand[PATH_MAX];
  for (const char *e = path;;) {
    const char *end = strchr(e, ':');
    size_t len = end ? (size_t)(end - e) : strlen(e);
    int check = 1;
    if (len && (*e == '-' || *e == '+')) {
      check = *e == '+';
      e++, len--;
    }
    int fd = -1, w;
    if (len && *e == '/' && idlen > 0 && idlen <= 64) {
      char hex[129];
      for (int i = 0; i < idlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", id[i]);
      w = snprintf(cand, sizeof cand, "%.*s/.build-id/%.2s/%s.debug",
                   (int)len, e, hex, hex + 2);
      if (w > 0 && (size_t)w < sizeof cand)
        fd = take(cand, id, idlen, 0, 0, debuginfo_file_name);
    }
    if (fd < 0 && debuglink_file) {
      if (!len)
        w = snprintf(cand, sizeof cand, "%s/%s", dir, debuglink_file);
      else if (*e == '/')
        w = snprintf(cand, sizeof cand, "%.*s%s/%s", (int)len, e, dir,
                     debuglink_file);
      else
        w = snprintf(cand, sizeof cand, "%s/%.*s/%s", dir, (int)len, e,
                     debuglink_file);
      /* Not the module's own file under its own name. */
      if (w > 0 && (size_t)w < sizeof cand &&
          (!file_name || strcmp(cand, file_name) != 0))
        fd = take(cand, id, idlen, check, debuglink_crc,
                  debuginfo_file_name);
    }
    if (fd >= 0)
      return fd;
    if (!end)
      break;
    e = end + 1;
  }
  errno = ENOENT;
  return -1;
}

/* Modules are reported with their file's path, so libdw has no ELF to
 * find; should it ask, the module's name is its path. (The standard
 * dwfl_build_id_find_elf would fall back on debuginfod, as above.) */
static int find_elf_by_name(Dwfl_Module *mod, void **userdata,
                            const char *modname, Dwarf_Addr base,
                            char **file_name, Elf **elfp) {
  (void)mod, (void)userdata, (void)base;
  *elfp = NULL;
  int fd = modname && modname[0] == '/'
               ? take(modname, NULL, 0, 0, 0, file_name)
               : -1;
  if (fd < 0)
    errno = ENOENT;
  return fd;
}

/* ---- modules ---- */

/* Makes sm a copy of src, its path owned; 0, or -1 out of memory. */
static int smod_init(smod_t *sm, const hs_module_t *src) {
  sm->m = *src;
  sm->m.path = strdup(src->path ? src->path : "");
  if (sm->m.build_id_len > sizeof sm->m.build_id)
    sm->m.build_id_len = 0; /* not from capture: do not trust */
  return sm->m.path ? 0 : -1;
}

/* Opens the module's file at its recorded bias. A module whose file is gone,
 * or is not the one that was loaded (build-id differs), stays unusable. */
static Dwfl_Module *module_open(hs_symbolizer_t *s, smod_t *sm) {
  if (sm->opened)
    return sm->dm;
  sm->opened = 1;
  if (sm->m.path[0] != '/')
    return NULL; /* the vDSO and other file-less mappings */
  dwfl_report_begin_add(s->dwfl);
  /* add_p_vaddr: the base is the bias, as dl_iterate_phdr reports it. */
  Dwfl_Module *dm = dwfl_report_elf(s->dwfl, sm->m.path, sm->m.path, -1,
                                    sm->m.bias, true);
  dwfl_report_end(s->dwfl, NULL, NULL);
  if (!dm)
    return NULL;
  /* Where find_local_debuginfo finds its path. */
  void **ud = NULL;
  (void)dwfl_module_info(dm, &ud, NULL, NULL, NULL, NULL, NULL, NULL);
  if (ud)
    *ud = s;
  if (sm->m.build_id_len) {
    const unsigned char *bits = NULL;
    GElf_Addr vaddr;
    int n = dwfl_module_build_id(dm, &bits, &vaddr);
    if (n != (int)sm->m.build_id_len ||
        memcmp(bits, sm->m.build_id, sm->m.build_id_len) != 0)
      return NULL;
  }
  sm->dm = dm;
  return dm;
}

/* Among aliases at one address, show the name a person would look for:
 * global before weak before local, then fewer leading underscores
 * (malloc rather than __libc_malloc), then the shorter. */
static int sym_rank(const GElf_Sym *sym, const char *name) {
  int bind = GELF_ST_BIND(sym->st_info);
  int r = bind == STB_GLOBAL ? 0 : bind == STB_WEAK ? 1 : 2;
  int us = 0;
  while (name[us] == '_' && us < 3)
    us++;
  size_t len = strlen(name);
  return r * 1000000 + us * 100000 + (len < 99999 ? (int)len : 99999);
}

static int sym_cmp(const void *a, const void *b) {
  const sym_t *x = a, *y = b;
  if (x->addr != y->addr)
    return x->addr < y->addr ? -1 : 1;
  if (x->rank != y->rank)
    return x->rank < y->rank ? -1 : 1;
  return strcmp(x->name, y->name);
}

/* Reads the function symbols once per module, so that each lookup is a
 * binary search instead of dwfl_module_addrname's linear work. */
static void module_load_syms(hs_symbolizer_t *s, smod_t *sm) {
  (void)s;
  if (sm->syms_loaded)
    return;
  sm->syms_loaded = 1;
  int n = dwfl_module_getsymtab(sm->dm);
  if (n <= 1)
    return;
  sym_t *v = malloc((size_t)n * sizeof *v);
  if (!v)
    return; /* degrade to module+offset rather than fail the lookup */
  size_t k = 0;
  for (int i = 1; i < n; i++) {
    GElf_Sym sym;
    GElf_Addr addr;
    GElf_Word shndx;
    Elf *elf;
    Dwarf_Addr bias;
    const char *name =
        dwfl_module_getsym_info(sm->dm, i, &sym, &addr, &shndx, &elf, &bias);
    if (!name || !name[0])
      continue;
    int type = GELF_ST_TYPE(sym.st_info);
    if ((type != STT_FUNC && type != STT_GNU_IFUNC) ||
        sym.st_shndx == SHN_UNDEF)
      continue;
    v[k].addr = addr;
    v[k].size = sym.st_size;
    v[k].name = name;
    v[k].rank = sym_rank(&sym, name);
    k++;
  }
  qsort(v, k, sizeof *v, sym_cmp);
  size_t u = 0;
  for (size_t i = 0; i < k; i++) {
    if (u && v[u - 1].addr == v[i].addr) {
      if (v[u - 1].size == 0)
        v[u - 1].size = v[i].size;
      continue; /* an alias ranked lower */
    }
    v[u++] = v[i];
  }
  sm->syms = v;
  sm->nsyms = u;
}

static const char *module_sym_name(hs_symbolizer_t *s, smod_t *sm,
                                   uint64_t pc) {
  module_load_syms(s, sm);
  size_t lo = 0, hi = sm->nsyms; /* first symbol above pc */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (sm->syms[mid].addr <= pc)
      lo = mid + 1;
    else
      hi = mid;
  }
  /* A sized symbol that ends before pc may still sit inside a larger one
   * just before it (a local label inside a function); look back a little. */
  for (size_t i = lo, steps = 0; i > 0 && steps < 8; i--, steps++) {
    const sym_t *y = &sm->syms[i - 1];
    if (y->size == 0)
      return steps == 0 ? y->name : NULL;
    if (pc < y->addr + y->size)
      return y->name;
  }
  return NULL;
}

static int module_index(const hs_symbolizer_t *s, uintptr_t addr) {
  uint32_t lo = 0, hi = s->nmods;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (s->mods[s->order[mid]].m.start <= addr)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == 0)
    return -1;
  uint32_t i = s->order[lo - 1];
  return addr < s->mods[i].m.end ? (int)i : -1;
}

/* ---- DWARF ---- */

static const char *die_function_name(hs_symbolizer_t *s, Dwarf_Die *d) {
  Dwarf_Attribute a;
  /* A mangled linkage name, demangled, carries the C++ scope and parameters
   * that DW_AT_name lacks. Other linkage names are asm labels (glibc's
   * __GI_ aliases) and read worse than the name. Integrate follows
   * abstract_origin and specification. */
  const char *n =
      dwarf_formstring(dwarf_attr_integrate(d, DW_AT_linkage_name, &a));
  if (!n)
    n = dwarf_formstring(dwarf_attr_integrate(d, DW_AT_MIPS_linkage_name, &a));
  if (!n || n[0] != '_' || n[1] != 'Z') {
    const char *plain =
        dwarf_formstring(dwarf_attr_integrate(d, DW_AT_name, &a));
    if (plain)
      n = plain;
  }
  return intern_function(s, n);
}

static int fn_cmp(const void *a, const void *b) {
  const fnrange_t *x = a, *y = b;
  return (x->lo > y->lo) - (x->lo < y->lo);
}

/* Concrete functions are children of the CU, or of namespaces in C++. */
static int collect_functions(Dwarf_Die *parent, fnrange_t **v, size_t *n,
                             size_t *cap, int depth) {
  Dwarf_Die c;
  if (depth > 16 || dwarf_child(parent, &c) != 0)
    return 0;
  do {
    int tag = dwarf_tag(&c);
    if (tag == DW_TAG_namespace || tag == DW_TAG_module) {
      if (collect_functions(&c, v, n, cap, depth + 1) != 0)
        return HS_ENOMEM;
      continue;
    }
    if (tag != DW_TAG_subprogram)
      continue;
    Dwarf_Addr base, lo, hi;
    ptrdiff_t off = 0;
    /* ranges, not low/high only: hot/cold splitting gives one function two */
    while ((off = dwarf_ranges(&c, off, &base, &lo, &hi)) > 0) {
      if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        fnrange_t *nv = realloc(*v, ncap * sizeof *nv);
        if (!nv)
          return HS_ENOMEM;
        *v = nv;
        *cap = ncap;
      }
      (*v)[(*n)++] = (fnrange_t){lo, hi, c};
    }
  } while (dwarf_siblingof(&c, &c) == 0);
  return 0;
}

/* The CU's functions by address, built on the first lookup in that CU so
 * that later lookups search one function's DIEs instead of the whole CU
 * (dwarf_getscopes walks every DIE of the CU on every call). NULL when out
 * of memory. */
static cuindex_t *cu_index(hs_symbolizer_t *s, smod_t *sm, Dwarf_Die *cu) {
  Dwarf_Off key = dwarf_dieoffset(cu);
  size_t lo = 0, hi = sm->ncus;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (sm->cus[mid].off < key)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo < sm->ncus && sm->cus[lo].off == key)
    return &sm->cus[lo];
  if (sm->ncus == sm->cus_cap) {
    size_t ncap = sm->cus_cap ? sm->cus_cap * 2 : 32;
    cuindex_t *nc = realloc(sm->cus, ncap * sizeof *nc);
    if (!nc) {
      s->oom = 1;
      return NULL;
    }
    sm->cus = nc;
    sm->cus_cap = ncap;
  }
  cuindex_t ci = {key, NULL, 0};
  size_t cap = 0;
  if (collect_functions(cu, &ci.fns, &ci.nfns, &cap, 0) != 0) {
    free(ci.fns);
    s->oom = 1;
    return NULL;
  }
  qsort(ci.fns, ci.nfns, sizeof *ci.fns, fn_cmp);
  memmove(&sm->cus[lo + 1], &sm->cus[lo], (sm->ncus - lo) * sizeof *sm->cus);
  sm->cus[lo] = ci;
  sm->ncus++;
  return &sm->cus[lo];
}

static int has_pc_attrs(Dwarf_Die *d) {
  return dwarf_hasattr(d, DW_AT_low_pc) || dwarf_hasattr(d, DW_AT_ranges);
}

/* Appends to chain the inlined instances around pc inside d, outermost
 * first; returns the new count. Siblings cover disjoint code, so the first
 * child that holds pc is the only one to follow. */
static int find_inlines(Dwarf_Die *d, Dwarf_Addr pc, Dwarf_Die *chain, int n,
                        int depth) {
  Dwarf_Die c;
  if (depth > 64 || dwarf_child(d, &c) != 0)
    return n;
  do {
    int tag = dwarf_tag(&c);
    if (tag != DW_TAG_inlined_subroutine && tag != DW_TAG_lexical_block &&
        tag != DW_TAG_try_block && tag != DW_TAG_catch_block)
      continue;
    if (!has_pc_attrs(&c)) {
      /* A block without addresses still groups what it contains. */
      int m = find_inlines(&c, pc, chain, n, depth + 1);
      if (m > n)
        return m;
      continue;
    }
    if (dwarf_haspc(&c, pc) <= 0)
      continue;
    if (tag == DW_TAG_inlined_subroutine && n < MAX_INLINE)
      chain[n++] = c;
    return find_inlines(&c, pc, chain, n, depth + 1);
  } while (dwarf_siblingof(&c, &c) == 0);
  return n;
}

/* The function DIEs around pc, innermost first, ending with the concrete
 * subprogram; returns the count (0 if DWARF has no function there). */
static int function_chain(hs_symbolizer_t *s, smod_t *sm, Dwarf_Die *cu,
                          Dwarf_Addr pc, Dwarf_Die *out) {
  Dwarf_Die outer_first[MAX_INLINE];
  int n = 0;
  cuindex_t *ci = cu_index(s, sm, cu);
  if (ci && ci->nfns) {
    size_t lo = 0, hi = ci->nfns; /* first function above pc */
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      if (ci->fns[mid].lo <= pc)
        lo = mid + 1;
      else
        hi = mid;
    }
    for (size_t i = lo, steps = 0; i > 0 && steps < 8; i--, steps++) {
      if (pc < ci->fns[i - 1].hi) {
        outer_first[0] = ci->fns[i - 1].die;
        n = find_inlines(&outer_first[0], pc, outer_first, 1, 0);
        break;
      }
    }
  }
  if (n > 0) {
    for (int i = 0; i < n; i++)
      out[i] = outer_first[n - 1 - i];
    return n;
  }
  if (!ci)
    return 0;
  /* Not under a CU-level subprogram (unusual producers, nested functions):
   * let libdw search every scope. It stops at the innermost inlined instance
   * and continues with the abstract definition's parents, which lose the
   * callers; so ask again for the concrete parents of the innermost scope. */
  Dwarf_Die *sc = NULL;
  int ns = dwarf_getscopes(cu, pc, &sc);
  if (ns > 0) {
    Dwarf_Die inner = sc[0];
    free(sc);
    sc = NULL;
    ns = dwarf_getscopes_die(&inner, &sc);
  }
  for (int i = 0; i < ns && n < MAX_INLINE; i++) {
    int tag = dwarf_tag(&sc[i]);
    if (tag != DW_TAG_subprogram && tag != DW_TAG_inlined_subroutine)
      continue;
    out[n++] = sc[i];
    if (tag == DW_TAG_subprogram)
      break;
  }
  free(sc);
  return n;
}

/* Fills fr[0..) from the inline chain at pc; returns how many (0 when the
 * DWARF has no function around pc). fr[0]'s file/line are the line table's;
 * each outer frame's come from the call site of the frame inside it. */
static int dwarf_frames(hs_symbolizer_t *s, smod_t *sm, Dwarf_Addr pc,
                        const char *file, uint32_t line, hs_symframe_t *fr,
                        const hs_symframe_t *tmpl) {
  Dwarf_Addr bias = 0;
  Dwarf_Die *cu = dwfl_module_addrdie(sm->dm, pc, &bias);
  if (!cu)
    return 0;
  Dwarf_Die chain[MAX_INLINE];
  int n = function_chain(s, sm, cu, pc - bias, chain);
  Dwarf_Files *files = NULL;
  size_t nfiles = 0;
  int files_tried = 0;
  Dwarf_Attribute a;
  const char *comp_dir = dwarf_formstring(dwarf_attr(cu, DW_AT_comp_dir, &a));
  for (int i = 0; i < n; i++) {
    fr[i] = *tmpl;
    fr[i].function = die_function_name(s, &chain[i]);
    fr[i].file = file;
    fr[i].line = line;
    if (dwarf_tag(&chain[i]) != DW_TAG_inlined_subroutine)
      return i + 1; /* the real function: its callers are other addresses */
    Dwarf_Word cf, cl;
    file = NULL;
    line = 0;
    if (dwarf_formudata(dwarf_attr(&chain[i], DW_AT_call_file, &a), &cf) == 0) {
      if (!files_tried) {
        files_tried = 1;
        if (dwarf_getsrcfiles(cu, &files, &nfiles) != 0)
          files = NULL;
      }
      if (files && cf < nfiles)
        file = intern_path(s, dwarf_filesrc(files, cf, NULL, NULL), comp_dir);
    }
    if (dwarf_formudata(dwarf_attr(&chain[i], DW_AT_call_line, &a), &cl) == 0)
      line = (uint32_t)cl;
  }
  return n;
}

/* Resolves one return address into fr (room for MAX_INLINE). */
static int resolve(hs_symbolizer_t *s, uintptr_t ret, hs_symframe_t *fr) {
  uintptr_t pc = ret ? ret - 1 : 0; /* inside the call instruction */
  int mi = module_index(s, pc);
  hs_symframe_t t = {NULL, NULL, 0, mi, ret};
  if (mi < 0) {
    fr[0] = t;
    return 1;
  }
  smod_t *sm = &s->mods[mi];
  t.offset = ret - sm->m.bias;
  Dwfl_Module *dm = module_open(s, sm);
  if (!dm) {
    fr[0] = t;
    return 1;
  }

  const char *file = NULL;
  uint32_t line = 0;
  Dwfl_Line *ln = dwfl_module_getsrc(dm, pc);
  if (ln) {
    Dwarf_Addr la;
    int lno = 0;
    const char *f = dwfl_lineinfo(ln, &la, &lno, NULL, NULL, NULL);
    if (f) {
      file = intern_path(s, f, dwfl_line_comp_dir(ln));
      line = lno > 0 ? (uint32_t)lno : 0;
    }
  }

  int n = dwarf_frames(s, sm, pc, file, line, fr, &t);
  if (n > 0 && fr[n - 1].function)
    return n;
  /* No DWARF function (or a nameless one): the symbol table names it. */
  const char *name = intern_function(s, module_sym_name(s, sm, pc));
  if (n > 0) {
    fr[n - 1].function = name;
    return n;
  }
  fr[0] = t;
  fr[0].function = name;
  fr[0].file = file;
  fr[0].line = line;
  return 1;
}

/* ---- the per-address cache ---- */

static size_t addr_hash(uintptr_t a) {
  uint64_t h = (uint64_t)a * 0x9e3779b97f4a7c15ull;
  return (size_t)(h ^ (h >> 29));
}

static centry_t *cache_find(const hs_symbolizer_t *s, uintptr_t addr) {
  if (!s->cache_cap)
    return NULL;
  size_t mask = s->cache_cap - 1;
  for (size_t j = addr_hash(addr) & mask; s->cache[j].count;
       j = (j + 1) & mask)
    if (s->cache[j].addr == addr)
      return &s->cache[j];
  return NULL;
}

static int cache_put(hs_symbolizer_t *s, uintptr_t addr,
                     const hs_symframe_t *fr, int n) {
  if ((s->cache_count + 1) * 2 > s->cache_cap) {
    size_t ncap = s->cache_cap ? s->cache_cap * 2 : 1024;
    centry_t *nc = calloc(ncap, sizeof *nc);
    if (!nc)
      return HS_ENOMEM;
    for (size_t i = 0; i < s->cache_cap; i++) {
      if (!s->cache[i].count)
        continue;
      size_t j = addr_hash(s->cache[i].addr) & (ncap - 1);
      while (nc[j].count)
        j = (j + 1) & (ncap - 1);
      nc[j] = s->cache[i];
    }
    free(s->cache);
    s->cache = nc;
    s->cache_cap = ncap;
  }
  if (s->nframes + (size_t)n > s->frames_cap) {
    size_t ncap = s->frames_cap ? s->frames_cap * 2 : 1024;
    while (ncap < s->nframes + (size_t)n)
      ncap *= 2;
    if (ncap > UINT32_MAX)
      return HS_ENOMEM;
    hs_symframe_t *nf = realloc(s->frames, ncap * sizeof *nf);
    if (!nf)
      return HS_ENOMEM;
    s->frames = nf;
    s->frames_cap = ncap;
  }
  memcpy(&s->frames[s->nframes], fr, (size_t)n * sizeof *fr);
  size_t mask = s->cache_cap - 1;
  size_t j = addr_hash(addr) & mask;
  while (s->cache[j].count)
    j = (j + 1) & mask;
  s->cache[j].addr = addr;
  s->cache[j].first = (uint32_t)s->nframes;
  s->cache[j].count = (uint32_t)n;
  s->cache_count++;
  s->nframes += (size_t)n;
  return 0;
}

/* ---- public (internal) entry points ---- */

static int order_cmp_start(const void *a, const void *b, void *arg) {
  const smod_t *m = arg;
  uintptr_t x = m[*(const uint32_t *)a].m.start;
  uintptr_t y = m[*(const uint32_t *)b].m.start;
  return (x > y) - (x < y);
}

hs_symbolizer_t *hs__symbolizer_new_ex(const hs_module_list_t *mods,
                                       const char *debuginfo_path) {
  hs_symbolizer_t *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  if (debuginfo_path) {
    s->debug_path = strdup(debuginfo_path);
    if (!s->debug_path)
      goto fail;
  }
  s->cb.find_elf = find_elf_by_name;
  s->cb.find_debuginfo = find_local_debuginfo;
  s->cb.section_address = dwfl_offline_section_address;
  s->cb.debuginfo_path = s->debug_path ? &s->debug_path : NULL;
  s->dwfl = dwfl_begin(&s->cb);
  if (!s->dwfl)
    goto fail;

  uint32_t n = mods ? mods->count : 0;
  if (n) {
    s->mods = calloc(n, sizeof *s->mods);
    s->order = malloc(n * sizeof *s->order);
    if (!s->mods || !s->order)
      goto fail;
    for (uint32_t i = 0; i < n; i++) {
      if (smod_init(&s->mods[i], &mods->mods[i]) != 0)
        goto fail;
      s->order[i] = i;
      s->nmods = i + 1;
    }
    /* Lists read back from a file need not be sorted. */
    qsort_r(s->order, n, sizeof *s->order, order_cmp_start, s->mods);
  }
  return s;
fail:
  hs__symbolizer_free(s);
  return NULL;
}

hs_symbolizer_t *hs__symbolizer_new(const hs_module_list_t *mods) {
  return hs__symbolizer_new_ex(mods, NULL);
}

void hs__symbolizer_free(hs_symbolizer_t *s) {
  if (!s)
    return;
  if (s->dwfl)
    dwfl_end(s->dwfl);
  for (uint32_t i = 0; i < s->nmods; i++) {
    free(s->mods[i].m.path);
    free(s->mods[i].syms);
    for (size_t j = 0; j < s->mods[i].ncus; j++)
      free(s->mods[i].cus[j].fns);
    free(s->mods[i].cus);
  }
  free(s->mods);
  free(s->order);
  free(s->debug_path);
  while (s->chunks) {
    chunk_t *c = s->chunks;
    s->chunks = c->next;
    free(c);
  }
  free(s->strs);
  free(s->cache);
  free(s->frames);
  free(s);
}

static int same_module(const hs_module_t *a, const hs_module_t *b) {
  return a->bias == b->bias && a->start == b->start && a->end == b->end &&
         a->build_id_len == b->build_id_len &&
         memcmp(a->build_id, b->build_id, a->build_id_len) == 0 &&
         strcmp(a->path, b->path ? b->path : "") == 0;
}

int hs__symbolizer_rebind(hs_symbolizer_t *s, const hs_module_list_t *mods) {
  uint32_t n = mods ? mods->count : 0;
  int same = n == s->nmods;
  for (uint32_t i = 0; same && i < n; i++)
    same = same_module(&s->mods[i].m, &mods->mods[i]);
  if (same)
    return 0; /* the usual case: nothing loaded or unloaded since */
  smod_t *nm = calloc(n ? n : 1, sizeof *nm);
  uint32_t *order = malloc((n ? n : 1) * sizeof *order);
  uint32_t *to = malloc((s->nmods ? s->nmods : 1) * sizeof *to);
  uint8_t *taken = calloc(n ? n : 1, 1);
  int ok = nm && order && to && taken;
  for (uint32_t i = 0; ok && i < s->nmods; i++) {
    to[i] = UINT32_MAX;
    for (uint32_t j = 0; j < n && to[i] == UINT32_MAX; j++)
      if (!taken[j] && same_module(&s->mods[i].m, &mods->mods[j]))
        to[i] = j, taken[j] = 1;
    ok = to[i] != UINT32_MAX || !s->mods[i].opened;
  }
  for (uint32_t j = 0; ok && j < n; j++) {
    order[j] = j;
    if (taken[j])
      continue;
    ok = smod_init(&nm[j], &mods->mods[j]) == 0;
  }
  if (!ok) {
    for (uint32_t j = 0; nm && j < n; j++)
      if (!taken[j])
        free(nm[j].m.path);
    free(nm);
    free(order);
    free(to);
    free(taken);
    return -1;
  }
  /* Move what was read; modules gone were never opened, so they hold
   * nothing but their path. */
  int remap = 1;
  for (uint32_t i = 0; i < s->nmods; i++) {
    if (to[i] != UINT32_MAX) {
      nm[to[i]] = s->mods[i];
    } else {
      free(s->mods[i].m.path);
      remap = 0;
    }
  }
  /* Resolved frames name their module by index: renumber them, or forget
   * them when a module they could name is gone. */
  for (size_t f = 0; remap && f < s->nframes; f++)
    if (s->frames[f].module >= 0)
      s->frames[f].module = (int32_t)to[s->frames[f].module];
  if (!remap) {
    if (s->cache)
      memset(s->cache, 0, s->cache_cap * sizeof *s->cache);
    s->cache_count = 0;
    s->nframes = 0;
  }
  free(s->mods);
  free(s->order);
  free(to);
  free(taken);
  s->mods = nm;
  s->order = order;
  s->nmods = n;
  qsort_r(s->order, n, sizeof *s->order, order_cmp_start, s->mods);
  return 0;
}

int hs__symbolize(hs_symbolizer_t *s, uintptr_t ret_addr, hs_symframe_t *out,
                  int max) {
  if (!s || !out || max < 1)
    return HS_EINVAL;
  const centry_t *e = cache_find(s, ret_addr);
  if (e) {
    int n = (int)e->count < max ? (int)e->count : max;
    memcpy(out, &s->frames[e->first], (size_t)n * sizeof *out);
    return n;
  }
  hs_symframe_t fr[MAX_INLINE];
  s->oom = 0;
  int n = resolve(s, ret_addr, fr);
  if (s->oom)
    return HS_ENOMEM; /* not cached: a later call may have the memory */
  if (cache_put(s, ret_addr, fr, n) != 0)
    return HS_ENOMEM;
  if (n > max)
    n = max;
  memcpy(out, fr, (size_t)n * sizeof *out);
  return n;
}

int hs__symbolizer_has_debuginfo(hs_symbolizer_t *s, int idx) {
  if (!s || idx < 0 || (uint32_t)idx >= s->nmods)
    return 0;
  Dwfl_Module *dm = module_open(s, &s->mods[idx]);
  if (!dm)
    return 0;
  Dwarf_Addr bias;
  return dwfl_module_getdwarf(dm, &bias) != NULL;
}
