/* cfi.c - how to step out of the frame of each return address: a compact
 * rule read once from its module's DWARF call-frame information (libdw)
 * and kept in a table that every thread reads without a lock.
 *
 * A rule says where the caller's stack pointer (the CFA), return address
 * and rbp are, for the code that gcc and clang emit on x86-64: CFA = rsp
 * or rbp plus a multiple of 8, the return address at CFA - 8, rbp unchanged
 * or saved at CFA - 8b. Anything else (DWARF expressions, signal frames,
 * code without CFI, JIT code) is marked OTHER and stepped by libunwind. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <dwarf.h>
#include <elf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <fcntl.h>
#include <libelf.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "unwind.h"

_Atomic uint64_t hs__rules[HS_RULE_SLOTS];
_Atomic unsigned hs__rules_gen = 1;
_Atomic int hs__modules_dirty;
uintptr_t hs__ldso_lo, hs__ldso_len;

/* ---- the modules rules were read from ---- */
/* A module as _dl_find_object names it (the lock-free look-up glibc keeps
 * for unwinders: no loader lock, so it is safe inside a host's malloc),
 * with its CFI once opened. Kept until the module is gone, then dropped
 * with every rule. */
#define MODS 256
typedef struct {
  uintptr_t start, end;
  const struct link_map *lm;
  uintptr_t bias;
  char *name; /* l_name as it was, to tell a reload at the same place */
  int state;  /* 0 not opened, 1 opened, -1 cannot be read */
  Elf *elf;
  Dwarf_CFI *eh;  /* .eh_frame */
  Dwarf *dw;      /* for .debug_frame, opened on first need */
  Dwarf_CFI *dbg; /* .debug_frame, or NULL */
  int dbg_tried;
} mod_t;
static mod_t mods[MODS];
static int nmods;
/* Serialises libdw (not thread-safe) and the module list. A leaf: nothing
 * done under it takes another lock of heapsnap's or the loader's. Threads
 * that find it taken step the frame by libunwind rather than wait; the
 * fork handlers take it (hs__unwind_fork_*). */
static pthread_mutex_t learn_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t stat_learned, stat_other, stat_busy;

static void rules_flush(void) {
  for (unsigned i = 0; i < HS_RULE_SLOTS; i++)
    atomic_store_explicit(&hs__rules[i], 0, memory_order_relaxed);
  atomic_fetch_add_explicit(&hs__rules_gen, 1, memory_order_release);
}

static void mod_close(mod_t *m) {
  if (m->eh)
    dwarf_cfi_end(m->eh);
  if (m->dw)
    dwarf_end(m->dw);
  if (m->elf)
    elf_end(m->elf);
  free(m->name);
  memset(m, 0, sizeof *m);
}

/* The GNU build ID of the module as it is mapped, from its program headers
 * in memory; 0 if it has none. */
static size_t mapped_build_id(const mod_t *m, const void **id) {
  const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)m->start;
  if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
      eh->e_phentsize != sizeof(ElfW(Phdr)))
    return 0;
  const ElfW(Phdr) *ph = (const ElfW(Phdr) *)(m->start + eh->e_phoff);
  if ((uintptr_t)(ph + eh->e_phnum) > m->end)
    return 0;
  for (int i = 0; i < eh->e_phnum; i++) {
    if (ph[i].p_type != PT_NOTE)
      continue;
    uintptr_t p = m->bias + ph[i].p_vaddr, e = p + ph[i].p_memsz;
    /* Only inside a loaded segment: the gaps between them are mapped
     * without access. */
    int loaded = 0;
    for (int j = 0; j < eh->e_phnum && !loaded; j++)
      loaded = ph[j].p_type == PT_LOAD && ph[i].p_vaddr >= ph[j].p_vaddr &&
               ph[i].p_vaddr + ph[i].p_memsz <= ph[j].p_vaddr + ph[j].p_filesz;
    if (!loaded || p < m->start || e > m->end)
      continue;
    while (p + sizeof(ElfW(Nhdr)) <= e) {
      const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)p;
      uintptr_t desc = p + sizeof *n + ((n->n_namesz + 3) & ~3u);
      uintptr_t next = desc + ((n->n_descsz + 3) & ~3u);
      if (next > e)
        break;
      if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 &&
          memcmp((const void *)(p + sizeof *n), "GNU", 4) == 0) {
        *id = (const void *)desc;
        return n->n_descsz;
      }
      p = next;
    }
  }
  return 0;
}

/* Opens the module's file and its .eh_frame. The file must be the one
 * mapped: where both have a build ID, they must match (a library replaced
 * on disk since it was loaded gives no rules, only libunwind steps). */
static void mod_open(mod_t *m) {
  m->state = -1;
  const char *path = m->name[0] ? m->name : "/proc/self/exe";
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return;
  elf_version(EV_CURRENT);
  Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
  if (elf)
    elf_cntl(elf, ELF_C_FDDONE); /* mapped: the host may close fds at will */
  close(fd);
  if (!elf)
    return;
  const void *want, *have;
  size_t wn = mapped_build_id(m, &want);
  ssize_t hn = dwelf_elf_gnu_build_id(elf, &have);
  if (wn && hn > 0 && ((size_t)hn != wn || memcmp(want, have, wn) != 0)) {
    elf_end(elf);
    return;
  }
  m->elf = elf;
  m->eh = dwarf_getcfi_elf(elf);
  m->state = 1;
}

/* The module holding pc, found or added; NULL for code outside every
 * module (JIT code, say) or a full list. */
static mod_t *mod_for(uintptr_t pc) {
  struct dl_find_object r;
  if (_dl_find_object((void *)pc, &r) != 0)
    return NULL;
  uintptr_t start = (uintptr_t)r.dlfo_map_start;
  for (int i = 0; i < nmods; i++)
    if (mods[i].start == start && mods[i].lm == r.dlfo_link_map)
      return &mods[i];
  if (nmods == MODS)
    return NULL;
  const struct link_map *lm = r.dlfo_link_map;
  char *name = strdup(lm->l_name ? lm->l_name : "");
  if (!name)
    return NULL;
  mod_t *m = &mods[nmods++];
  memset(m, 0, sizeof *m);
  m->start = start;
  m->end = (uintptr_t)r.dlfo_map_end;
  m->lm = lm;
  m->bias = lm->l_addr;
  m->name = name;
  return m;
}

/* The frame description at a (module coordinates) from .eh_frame, or from
 * .debug_frame where that is all the file has. */
static Dwarf_Frame *frame_at(mod_t *m, Dwarf_Addr a) {
  Dwarf_Frame *f = NULL;
  if (m->eh && dwarf_cfi_addrframe(m->eh, a, &f) == 0)
    return f;
  if (!m->dbg_tried) {
    m->dbg_tried = 1;
    m->dw = dwarf_begin_elf(m->elf, DWARF_C_READ, NULL);
    m->dbg = m->dw ? dwarf_getcfi(m->dw) : NULL;
  }
  if (m->dbg && dwarf_cfi_addrframe(m->dbg, a, &f) == 0)
    return f;
  return NULL;
}

/* offset(N) from the CFA as libdw spells it; 1 with *off, else 0. */
static int cfa_offset(const Dwarf_Op *ops, size_t n, int64_t *off) {
  if (n == 1 && ops[0].atom == DW_OP_call_frame_cfa) {
    *off = 0;
    return 1;
  }
  if (n == 2 && ops[0].atom == DW_OP_call_frame_cfa &&
      ops[1].atom == DW_OP_plus_uconst) {
    *off = (int64_t)ops[1].number;
    return 1;
  }
  return 0;
}

#define DW_RSP 7
#define DW_RBP 6
#define DW_RA 16

static unsigned rule_from(Dwarf_Frame *f) {
  Dwarf_Addr lo, hi;
  bool sig = false;
  int ra_reg = dwarf_frame_info(f, &lo, &hi, &sig);
  if (sig)
    return HS_RULE_SIGNAL;
  if (ra_reg != DW_RA)
    return HS_RULE_OTHER;
  Dwarf_Op mem[3], *ops;
  size_t n;
  if (dwarf_frame_register(f, DW_RA, mem, &ops, &n) != 0)
    return HS_RULE_OTHER;
  if (n == 0 && ops == mem)
    return HS_RULE_END; /* the return address is undefined: outermost */
  int64_t ra;
  if (!cfa_offset(ops, n, &ra) || ra != -8)
    return HS_RULE_OTHER;
  if (dwarf_frame_cfa(f, &ops, &n) != 0 || n != 1 ||
      ops[0].atom != DW_OP_bregx ||
      (ops[0].number != DW_RSP && ops[0].number != DW_RBP))
    return HS_RULE_OTHER;
  int64_t off = (int64_t)ops[0].number2;
  if (off <= 0 || off % 8 || off / 8 > HS_RULE_A_MAX)
    return HS_RULE_OTHER;
  unsigned type = ops[0].number == DW_RSP ? HS_RULE_SP : HS_RULE_BP;
  unsigned b = 0;
  if (dwarf_frame_register(f, DW_RBP, mem, &ops, &n) != 0)
    return HS_RULE_OTHER;
  if (n == 0 && ops == NULL) {
    b = 0; /* same value */
  } else {
    int64_t at;
    if (!cfa_offset(ops, n, &at) || at >= 0 || at % 8 ||
        -at / 8 > HS_RULE_B_MAX)
      return HS_RULE_OTHER;
    b = (unsigned)(-at / 8);
  }
  if (type == HS_RULE_BP && b == 0)
    return HS_RULE_OTHER; /* rbp-based CFA, caller's rbp unknown to us */
  return hs__rule_make(type, (unsigned)(off / 8), b);
}

static void rule_put(uintptr_t pc, unsigned rule) {
  uint64_t w = hs__rule_word(pc, rule);
  unsigned i = hs__rule_home(pc);
  for (unsigned k = 0; k < HS_RULE_PROBES; k++) {
    _Atomic uint64_t *e = &hs__rules[(i + k) & (HS_RULE_SLOTS - 1)];
    uint64_t old = atomic_load_explicit(e, memory_order_relaxed);
    if (!old || old >> HS_RULE_BITS == (uint64_t)pc) {
      atomic_store_explicit(e, w, memory_order_relaxed);
      return;
    }
  }
  /* A full neighbourhood: evict the home entry (it is learned again if it
   * comes back), so that a busy region keeps its newest addresses. */
  atomic_store_explicit(&hs__rules[i], w, memory_order_relaxed);
}

/* Drops every module that is no longer mapped as it was, and with them
 * every rule. Called under learn_mu. */
static void revalidate(void) {
  int gone = 0;
  for (int i = 0; i < nmods; i++) {
    mod_t *m = &mods[i];
    struct dl_find_object r;
    int same = _dl_find_object((void *)m->start, &r) == 0 &&
               (uintptr_t)r.dlfo_map_start == m->start &&
               (uintptr_t)r.dlfo_map_end == m->end && r.dlfo_link_map == m->lm &&
               strcmp(m->lm->l_name ? m->lm->l_name : "", m->name) == 0;
    if (!same) {
      mod_close(m);
      gone = 1;
    }
  }
  if (!gone)
    return;
  int k = 0;
  for (int i = 0; i < nmods; i++)
    if (mods[i].start)
      mods[k++] = mods[i];
  nmods = k;
  rules_flush();
  if (hs__loader_enter()) {
    unw_flush_cache(unw_local_addr_space, 0, 0);
    hs__loader_exit();
  }
}

void hs__unwind_check_modules(void) {
  if (pthread_mutex_trylock(&learn_mu) != 0)
    return; /* a learner holds it: the flag stays set for the next one */
  if (atomic_exchange_explicit(&hs__modules_dirty, 0, memory_order_acquire))
    revalidate();
  pthread_mutex_unlock(&learn_mu);
}

unsigned hs__rule_learn(uintptr_t pc) {
  if (pc >> (64 - HS_RULE_BITS))
    return HS_RULE_OTHER; /* not a user-space address we can key */
  if (pthread_mutex_trylock(&learn_mu) != 0) {
    stat_busy++;
    /* Not stored: a later capture learns it. */
    return HS_RULE_OTHER | HS_RULE_TRANSIENT;
  }
  if (atomic_exchange_explicit(&hs__modules_dirty, 0, memory_order_acquire))
    revalidate();
  unsigned rule = HS_RULE_OTHER;
  mod_t *m = mod_for(pc);
  if (m && !m->state)
    mod_open(m);
  if (m && m->state > 0) {
    /* A return address follows the call: its rule is the call's. */
    Dwarf_Frame *f = frame_at(m, (Dwarf_Addr)(pc - 1 - m->bias));
    if (f) {
      rule = rule_from(f);
      free(f);
    }
  }
  rule_put(pc, rule);
  stat_learned++;
  stat_other += rule == HS_RULE_OTHER;
  pthread_mutex_unlock(&learn_mu);
  return rule;
}

void hs__unwind_modules_changed(void) {
  atomic_store_explicit(&hs__modules_dirty, 1, memory_order_release);
}

void hs__unwind_cfi_stats(uint64_t *learned, uint64_t *other, uint64_t *busy) {
  *learned = stat_learned;
  *other = stat_other;
  *busy = stat_busy;
}

void hs__unwind_cfi_init(void) {
  /* ld.so's text: its calls into the allocator are dlopen's, dlclose's and
   * thread set-up's, the only times a module can come or go. */
  struct dl_find_object r;
  uintptr_t base = getauxval(AT_BASE); /* the program interpreter's */
  if (base && _dl_find_object((void *)base, &r) == 0) {
    hs__ldso_lo = (uintptr_t)r.dlfo_map_start;
    hs__ldso_len = (uintptr_t)r.dlfo_map_end - hs__ldso_lo;
  }
}

void hs__unwind_fork_prepare(void) { pthread_mutex_lock(&learn_mu); }
void hs__unwind_fork_parent(void) { pthread_mutex_unlock(&learn_mu); }
void hs__unwind_fork_child(void) {
  pthread_mutex_init(&learn_mu, NULL);
}
