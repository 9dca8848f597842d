/* modules.c - the module map: which ELF files are loaded where, with their
 * build-ids, captured once per snapshot so that addresses resolve later. */
#define _GNU_SOURCE
#include <elf.h>
#include <limits.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "symbolize.h"

struct capture {
  hs_module_list_t *out;
  uint32_t cap;
  int failed;
  int seen_main;
};

/* The main program's dlpi_name is "": name the file it was loaded from. */
static char *self_exe_path(void) {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n < 0)
    n = 0;
  buf[n] = '\0';
  return strdup(buf);
}

/* Notes are aligned to 4 bytes, or 8 in segments that say so (GNU property
 * notes made some linkers emit 8-aligned PT_NOTE segments). */
static void read_build_id(const ElfW(Phdr) *ph, uintptr_t bias,
                          hs_module_t *m) {
  size_t align = ph->p_align == 8 ? 8 : 4;
  const unsigned char *p = (const unsigned char *)(bias + ph->p_vaddr);
  const unsigned char *end = p + ph->p_filesz;
  while ((size_t)(end - p) >= sizeof(ElfW(Nhdr))) {
    ElfW(Nhdr) nh;
    memcpy(&nh, p, sizeof nh);
    size_t name_off = sizeof nh;
    size_t desc_off = name_off + ((nh.n_namesz + align - 1) & ~(align - 1));
    size_t next = desc_off + ((nh.n_descsz + align - 1) & ~(align - 1));
    if (next > (size_t)(end - p) || next < desc_off)
      return;
    if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
        memcmp(p + name_off, "GNU", 4) == 0) {
      uint32_t len = nh.n_descsz;
      if (len > sizeof m->build_id)
        len = sizeof m->build_id;
      memcpy(m->build_id, p + desc_off, len);
      m->build_id_len = len;
      return;
    }
    p += next;
  }
}

static int on_module(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  struct capture *c = arg;
  hs_module_list_t *l = c->out;

  uintptr_t lo = UINTPTR_MAX, hi = 0;
  for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD)
      continue;
    uintptr_t a = info->dlpi_addr + ph->p_vaddr;
    if (a < lo)
      lo = a;
    if (a + ph->p_memsz > hi)
      hi = a + ph->p_memsz;
  }
  if (lo >= hi)
    return 0; /* nothing mapped: nothing an address could point into */

  if (l->count == c->cap) {
    uint32_t ncap = c->cap ? c->cap * 2 : 32;
    hs_module_t *n = realloc(l->mods, ncap * sizeof *n);
    if (!n) {
      c->failed = 1;
      return 1;
    }
    l->mods = n;
    c->cap = ncap;
  }
  hs_module_t *m = &l->mods[l->count];
  memset(m, 0, sizeof *m);
  const char *name = info->dlpi_name ? info->dlpi_name : "";
  if (name[0] == '\0' && !c->seen_main) {
    c->seen_main = 1;
    m->path = self_exe_path();
  } else if (name[0] && name[0] != '/') {
    /* dlopen("./plugin.so") leaves that name in the link map, and only a
     * path from / is opened later (module_open), whatever the directory
     * then: resolve it now, against the directory it was loaded from as
     * long as the program has not changed directory since. */
    char buf[PATH_MAX];
    m->path = strdup(realpath(name, buf) ? buf : name);
  } else {
    m->path = strdup(name);
  }
  if (!m->path) {
    c->failed = 1;
    return 1;
  }
  m->bias = info->dlpi_addr;
  m->start = lo;
  m->end = hi;
  for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
    if (info->dlpi_phdr[i].p_type == PT_NOTE) {
      read_build_id(&info->dlpi_phdr[i], info->dlpi_addr, m);
      if (m->build_id_len)
        break;
    }
  }
  l->count++;
  return 0;
}

static int by_start(const void *a, const void *b) {
  const hs_module_t *x = a, *y = b;
  return (x->start > y->start) - (x->start < y->start);
}

/* The modules as the fork's prepare handler saw them, taken before any
 * heapsnap lock (a thread inside dlopen, which calls our malloc, can then
 * finish), for a child that must not call dl_iterate_phdr. Written by the
 * forking thread only, between prepare and the fork; concurrent forks are
 * serialised by the fork table's first lock (runtime/forks.c). */
static hs_module_list_t prefork;
static int prefork_ok;                /* the list reflects prefork_adds */
static unsigned long long prefork_adds, prefork_subs;

static int capture_now(hs_module_list_t *out) {
  out->mods = NULL;
  out->count = 0;
  struct capture c = {.out = out};
  if (!hs__loader_enter())
    return HS_ENOMEM; /* as good as: nothing to capture with */
  dl_iterate_phdr(on_module, &c);
  hs__loader_exit();
  if (c.failed) {
    hs__modules_free(out);
    return HS_ENOMEM;
  }
  if (out->count > 1)
    qsort(out->mods, out->count, sizeof *out->mods, by_start);
  return 0;
}

int hs__modules_capture(hs_module_list_t *out) {
  if (!hs__loader_unsafe)
    return capture_now(out);
  out->mods = NULL;
  out->count = 0;
  /* The session says why before it gets here (hs__modules_prefork_ok). */
  return prefork_ok ? hs__modules_copy(out, &prefork) : HS_ENOMEM;
}

static int counters(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  unsigned long long *c = arg;
  c[0] = info->dlpi_adds;
  c[1] = info->dlpi_subs;
  return 1;
}

void hs__modules_fork_prepare(void) {
  unsigned long long c[2] = {0, 0};
  if (!hs__loader_enter())
    return; /* a child of an unsafe child keeps the list it inherited */
  dl_iterate_phdr(counters, c);
  hs__loader_exit();
  /* Recaptured only when a module came or went: a program that forks in a
   * loop pays one cheap iteration per fork. */
  if (prefork_ok && c[0] == prefork_adds && c[1] == prefork_subs)
    return;
  hs__modules_free(&prefork);
  prefork_ok = capture_now(&prefork) == 0;
  prefork_adds = c[0];
  prefork_subs = c[1];
}

int hs__modules_prefork_ok(void) { return prefork_ok; }

void hs__modules_free(hs_module_list_t *l) {
  if (!l)
    return;
  for (uint32_t i = 0; i < l->count; i++)
    free(l->mods[i].path);
  free(l->mods);
  l->mods = NULL;
  l->count = 0;
}

int hs__modules_copy(hs_module_list_t *out, const hs_module_list_t *src) {
  out->mods = NULL;
  out->count = 0;
  if (src->count == 0)
    return 0;
  out->mods = calloc(src->count, sizeof *out->mods);
  if (!out->mods)
    return HS_ENOMEM;
  for (uint32_t i = 0; i < src->count; i++) {
    out->mods[i] = src->mods[i];
    out->mods[i].path = strdup(src->mods[i].path ? src->mods[i].path : "");
    if (!out->mods[i].path) {
      hs__modules_free(out);
      return HS_ENOMEM;
    }
    out->count = i + 1;
  }
  return 0;
}

int hs__modules_find(const hs_module_list_t *l, uintptr_t addr) {
  uint32_t lo = 0, hi = l->count; /* first module with start > addr */
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (l->mods[mid].start <= addr)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == 0)
    return -1;
  const hs_module_t *m = &l->mods[lo - 1];
  return addr < m->end ? (int)(lo - 1) : -1;
}
