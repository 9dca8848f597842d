/* scan.c - hs_leak_check: the conservative scan from the roots over the
 * live blocks, valgrind memcheck's classification, and the result kept for
 * the snapshots taken after it. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "../snapshot/snapshot.h"
#include "../trace/trace.h"
#include "leak.h"

/* Marking states, valgrind's Reachedness plus its clique member. */
enum { ST_UNREACHED, ST_POSSIBLE, ST_REACHABLE, ST_INDIRECT };

typedef struct blk {
  uintptr_t ptr;
  uint64_t size;
  uint32_t stack;
  uint8_t state;    /* ST_* while marking, HS_LEAK_* in a kept result */
  uint8_t readable; /* its bytes lie in readable mappings; bit 1: so do
                       the 8 bytes before it (a malloc chunk's size) */
  uint16_t pad;
} blk_t;
_Static_assert(sizeof(blk_t) == 24, "a block is 24 bytes");

typedef struct range {
  uintptr_t lo, hi;
} range_t;

void *hs__leak_map(size_t bytes) {
  if (!bytes)
    bytes = 1;
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

void hs__leak_unmap(void *p, size_t bytes) {
  if (p)
    munmap(p, bytes ? bytes : 1);
}

/* A growable mapped array: mremap keeps it off malloc, so it may grow
 * under a trace shard lock. */
typedef struct vec {
  void *p;
  size_t n, cap; /* elements */
  size_t elem;
  int err;
} vec_t;

static void *vec_push(vec_t *v) {
  if (v->err)
    return NULL;
  if (v->n == v->cap) {
    size_t ncap = v->cap ? v->cap * 2 : 4096;
    void *np = v->p ? mremap(v->p, v->cap * v->elem, ncap * v->elem,
                             MREMAP_MAYMOVE)
                    : hs__leak_map(ncap * v->elem);
    if (!np || np == MAP_FAILED) {
      v->err = 1;
      return NULL;
    }
    v->p = np;
    v->cap = ncap;
  }
  return (char *)v->p + v->n++ * v->elem;
}

static void vec_free(vec_t *v) {
  hs__leak_unmap(v->p, v->cap * v->elem);
  v->p = NULL;
  v->n = v->cap = 0;
}

/* ---- the copy of the live-trace table ---- */

static void copy_one(const hs_trace_rec_t *t, void *arg) {
  if (t->domain != 0)
    return; /* other domains are not C heap blocks: nothing to scan */
  blk_t *b = vec_push(arg);
  if (b)
    *b = (blk_t){t->ptr, t->size, t->stack, 0, 0, 0};
}

/* LSD radix sort by address on 16-bit digits: no malloc, and 1M blocks in
 * a few milliseconds (the shards come out in address runs, not sorted). */
static int sort_blocks(blk_t *a, size_t n) {
  if (n < 2)
    return 0;
  size_t tb = n * sizeof *a, cb = 65536 * sizeof(size_t);
  blk_t *tmp = hs__leak_map(tb);
  size_t *cnt = hs__leak_map(cb);
  if (!tmp || !cnt) {
    hs__leak_unmap(tmp, tb);
    hs__leak_unmap(cnt, cb);
    return HS_ENOMEM;
  }
  blk_t *src = a, *dst = tmp;
  for (int shift = 0; shift < 64; shift += 16) {
    uintptr_t all_or = 0, all_and = ~(uintptr_t)0;
    for (size_t i = 0; i < n; i++) {
      uintptr_t d = (src[i].ptr >> shift) & 0xffff;
      all_or |= d;
      all_and &= d;
    }
    if (all_or == all_and)
      continue; /* every block has this digit: the pass changes nothing */
    memset(cnt, 0, cb);
    for (size_t i = 0; i < n; i++)
      cnt[(src[i].ptr >> shift) & 0xffff]++;
    size_t sum = 0;
    for (size_t d = 0; d < 65536; d++) {
      size_t c = cnt[d];
      cnt[d] = sum;
      sum += c;
    }
    for (size_t i = 0; i < n; i++)
      dst[cnt[(src[i].ptr >> shift) & 0xffff]++] = src[i];
    blk_t *t = src;
    src = dst;
    dst = t;
  }
  if (src != a)
    memcpy(a, src, tb);
  hs__leak_unmap(tmp, tb);
  hs__leak_unmap(cnt, cb);
  return 0;
}

/* ---- memory that may be read ---- */

/* /proc/self/maps, read with plain syscalls into mapped memory while the
 * world is stopped: no thread can unmap anything between the reading and
 * the scan (heapsnap's own threads unmap only their own tables), and no
 * stdio or malloc is needed. Only readable ranges are kept. */
static int read_maps(vec_t *out) {
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return HS_EIO;
  size_t cap = 1 << 20, len = 0;
  char *buf = hs__leak_map(cap);
  int rc = buf ? 0 : HS_ENOMEM;
  while (rc == 0) {
    if (len == cap) {
      char *nb = mremap(buf, cap, cap * 2, MREMAP_MAYMOVE);
      if (nb == MAP_FAILED) {
        rc = HS_ENOMEM;
        break;
      }
      buf = nb;
      cap *= 2;
    }
    ssize_t n = read(fd, buf + len, cap - len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    len += (size_t)n;
  }
  close(fd);
  for (size_t i = 0; rc == 0 && i < len;) {
    uintptr_t lo = 0, hi = 0;
    size_t j = i;
    for (; j < len && buf[j] != '-'; j++)
      lo = lo * 16 + (uintptr_t)(buf[j] <= '9' ? buf[j] - '0' : (buf[j] | 32) - 'a' + 10);
    for (j++; j < len && buf[j] != ' '; j++)
      hi = hi * 16 + (uintptr_t)(buf[j] <= '9' ? buf[j] - '0' : (buf[j] | 32) - 'a' + 10);
    int readable = j + 1 < len && buf[j + 1] == 'r';
    while (j < len && buf[j] != '\n')
      j++;
    i = j + 1;
    if (!readable || hi <= lo)
      continue;
    /* Not merged with a neighbour: the mapping that holds a stack pointer
     * bounds that stack (the kernel already merges what it can). */
    range_t *r = vec_push(out);
    if (!r)
      rc = HS_ENOMEM;
    else
      *r = (range_t){lo, hi};
  }
  hs__leak_unmap(buf, cap);
  return rc;
}

/* The readable range holding a, or NULL. */
static const range_t *region_of(const vec_t *maps, uintptr_t a) {
  const range_t *r = maps->p;
  size_t lo = 0, hi = maps->n;
  while (lo < hi) {
    size_t m = (lo + hi) / 2;
    if (r[m].hi <= a)
      lo = m + 1;
    else
      hi = m;
  }
  return lo < maps->n && r[lo].lo <= a ? &r[lo] : NULL;
}

/* process_vm_readv on ourselves: a range that turns out unreadable
 * (a file mapping cut short: SIGBUS; a block unmapped by a thread that
 * did not stop) fails the call instead of faulting. Off where seccomp or
 * an old kernel refuses it; the maps check then guards direct reads. */
static int vm_read_ok = -1;

static size_t safe_read(void *dst, uintptr_t src, size_t n) {
  if (vm_read_ok) {
    struct iovec l = {dst, n}, r = {(void *)src, n};
    ssize_t got = process_vm_readv(getpid(), &l, 1, &r, 1, 0);
    if (got >= 0 || vm_read_ok == 1)
      return got > 0 ? (size_t)got : 0;
    vm_read_ok = 0;
  }
  memcpy(dst, (const void *)src, n);
  return n;
}

static void probe_vm_read(void) {
  if (vm_read_ok >= 0)
    return;
  uint64_t a = 0x1234, b = 0;
  struct iovec l = {&b, sizeof b}, r = {&a, sizeof a};
  vm_read_ok = process_vm_readv(getpid(), &l, 1, &r, 1, 0) == sizeof b &&
               b == a;
}

/* ---- roots: the modules' writable segments ---- */

static char self_marker; /* lies in heapsnap's own data */

static int add_module(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  vec_t *roots = arg;
  int own = 0;
  /* heapsnap's own tables hold every traced pointer: its segments are
   * not roots. Linked into the program itself it cannot be told apart
   * from the program's data, which is scanned whole. */
  for (int i = 0; i < info->dlpi_phnum && info->dlpi_name && *info->dlpi_name;
       i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
    if (ph->p_type == PT_LOAD && (uintptr_t)&self_marker >= lo &&
        (uintptr_t)&self_marker < lo + ph->p_memsz)
      own = 1;
  }
  if (own)
    return 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W) || !ph->p_memsz)
      continue;
    range_t *r = vec_push(roots);
    if (!r)
      return 1;
    r->lo = info->dlpi_addr + ph->p_vaddr;
    r->hi = r->lo + ph->p_memsz;
  }
  return 0;
}

/* glibc's static TLS size (what LSan asks too); 64 KiB if unknown. */
static size_t static_tls_size(void) {
  static size_t size;
  if (!size) {
    void *sym = dlsym(RTLD_DEFAULT, "_dl_get_tls_static_info");
    void (*get)(size_t *, size_t *) = NULL;
    if (sym)
      memcpy(&get, &sym, sizeof get); /* ISO C has no object->function cast */
    size_t s = 0, align = 0;
    if (get)
      get(&s, &align);
    size = s ? s : 64 * 1024;
  }
  return size;
}

/* glibc's thread descriptor (struct pthread) sits at the very top of a
 * thread's stack block, so the block ends at the first page boundary past
 * it: a tighter top than the mapping's end, which the kernel may have
 * merged with an anonymous mapping above (heapsnap's own tables among
 * them, whose words point at every block). libthread_db's symbol says its
 * size; a page if it is missing. */
static size_t tcb_size(void) {
  static size_t size;
  if (!size) {
    const unsigned *p = dlsym(RTLD_DEFAULT, "_thread_db_sizeof_pthread");
    size = p && *p && *p < 65536 ? *p : 4096;
  }
  return size;
}

/* glibc's stack cache: the stacks of exited threads, kept for reuse, each
 * with its thread descriptor at the top, which still points at the DTV
 * (the dlopen'd modules' TLS) ld.so allocated for it. valgrind scans them
 * as it scans every mapping; so do we, the descriptors only. The list
 * (GL(dl_stack_cache)) has no libthread_db descriptor: in glibc 2.34 and
 * later it follows _dl_stack_user in _rtld_global, which has one. That
 * guess is used only when what it finds is the cache (see cache_roots). */
static struct {
  uintptr_t head;         /* &_dl_stack_cache, or 0 */
  size_t list_off;        /* struct pthread's list member */
  size_t tid_off;         /* and its tid: 0 once the thread exited, -1
                             once joined (glibc's own test of a cached
                             stack is tid <= 0) */
} cache;

static uint32_t td_offset(const char *name) {
  const uint32_t *d = dlsym(RTLD_DEFAULT, name);
  /* libthread_db's descriptors: bits, count, offset. */
  return d && d[1] == 1 ? d[2] : UINT32_MAX;
}

static void probe_stack_cache(void) {
  static int probed;
  if (probed)
    return;
  probed = 1;
  char *rtld = dlsym(RTLD_DEFAULT, "_rtld_global");
  const uint32_t *list_size = dlsym(RTLD_DEFAULT, "_thread_db_sizeof_list_t");
  uint32_t user = td_offset("_thread_db_rtld_global__dl_stack_user");
  uint32_t used = td_offset("_thread_db_rtld_global__dl_stack_used");
  uint32_t list = td_offset("_thread_db_pthread_list");
  uint32_t tid = td_offset("_thread_db_pthread_tid");
  if (!rtld || !list_size || *list_size != 2 * sizeof(uintptr_t) ||
      user == UINT32_MAX || used == UINT32_MAX || list == UINT32_MAX ||
      tid == UINT32_MAX || user != used + *list_size)
    return; /* not the layout the guess is about */
  cache.list_off = list;
  cache.tid_off = tid;
  cache.head = (uintptr_t)rtld + user + *list_size;
}

/* n bytes at a, read only where the maps say they can be. */
static int read_mapped(const vec_t *maps, uintptr_t a, void *out, size_t n) {
  return region_of(maps, a) && region_of(maps, a + n - 1) &&
         safe_read(out, a, n) == n;
}

/* The descriptors on the cache list into pds (at most max), or -1 when
 * the list is not glibc's stack cache as the guess expects: a circular
 * list whose back links agree, each node readable, each descriptor's
 * thread gone (tid <= 0) and none of them a live thread's. */
static long cache_list(const vec_t *maps, const hs_leak_world_t *w,
                       uintptr_t *pds, size_t max) {
  long n = 0;
  uintptr_t cur = cache.head, node[2];
  for (;;) {
    if (!read_mapped(maps, cur, node, sizeof node))
      return -1;
    uintptr_t next = node[0], back[2];
    if (!read_mapped(maps, next, back, sizeof back) || back[1] != cur)
      return -1;
    if (next == cache.head)
      return n;
    uintptr_t pd = next - cache.list_off;
    int32_t tid = -1;
    if ((size_t)n == max || !read_mapped(maps, pd + cache.tid_off, &tid,
                                         sizeof tid) || tid > 0)
      return -1;
    for (unsigned i = 0; i < w->n; i++)
      if (w->t[i].tp == pd)
        return -1;
    pds[n++] = pd;
    cur = next;
  }
}

/* ---- marking ---- */

typedef struct scan {
  blk_t *b;
  size_t n;
  uintptr_t lo, hi; /* lowest block start, highest block end */
  uint32_t *stack;  /* mark stack: 2n entries (see push) */
  size_t sp, cap;
  int clique;       /* -1: from the roots; else the leader's index */
  int safe_blocks;  /* read blocks with safe_read: threads run on */
  char *bounce;     /* 64 KiB for safe reads */
  int overflow;
  int from_root;    /* scanning a root, not a block */
} scan_t;

#define BOUNCE (64 * 1024)

/* The block v points to the start or inside of, or -1. A zero-sized
 * block is pointed to by its start only, as in valgrind. */
static int64_t find(const scan_t *s, uintptr_t v) {
  if (v < s->lo || v >= s->hi)
    return -1;
  size_t lo = 0, hi = s->n;
  while (lo < hi) {
    size_t m = (lo + hi) / 2;
    if (s->b[m].ptr <= v)
      lo = m + 1;
    else
      hi = m;
  }
  if (!lo)
    return -1;
  const blk_t *b = &s->b[lo - 1];
  return v == b->ptr || v - b->ptr < b->size ? (int64_t)(lo - 1) : -1;
}

/* Each block enters the stack at most twice from the roots (unreached ->
 * possible -> reachable) and, among the lost, once as a leader and once
 * when a later clique takes it in: 2n entries are enough. */
static void push(scan_t *s, size_t i) {
  if (s->sp < s->cap)
    s->stack[s->sp++] = (uint32_t)i;
  else
    s->overflow = 1;
}

/* valgrind's lc_push_*_if_a_chunk_ptr: from the roots, a start pointer
 * from a definite predecessor makes a block reachable, anything else
 * possible; among the lost, any pointer makes a block a member of the
 * clique being built. */
/* glibc keeps its chunk headers inline: the arena's bins and top (in
 * libc's data, a root) point at a free chunk's header, which is the next
 * chunk after a live block and lies inside it when its request used the
 * chunk's last 8 bytes (40 in a 48-byte chunk). Such a pointer is the
 * allocator's, not the program's: without this rule a lost block next to
 * a free chunk would be "possibly lost". */
static int glibc_next_chunk(const scan_t *s, const blk_t *b, uintptr_t v) {
  if ((v & 15) || !(b->readable & 2))
    return 0;
  uintptr_t hdr;
  if (s->safe_blocks) {
    if (safe_read(&hdr, b->ptr - sizeof hdr, sizeof hdr) != sizeof hdr)
      return 0;
  } else {
    hdr = *(const uintptr_t *)(b->ptr - sizeof hdr);
  }
  return !(hdr & 2) && v == b->ptr - 2 * sizeof hdr + (hdr & ~(uintptr_t)7);
}

static inline void consider(scan_t *s, uintptr_t v, int prior_definite) {
  int64_t i = find(s, v);
  if (i < 0)
    return;
  blk_t *b = &s->b[i];
  if (v != b->ptr && s->from_root && glibc_next_chunk(s, b, v))
    return;
  if (s->clique >= 0) {
    if (b->state == ST_UNREACHED && i != s->clique) {
      b->state = ST_INDIRECT;
      push(s, (size_t)i);
    }
    return;
  }
  if (b->state == ST_REACHABLE)
    return;
  if (v == b->ptr && prior_definite) {
    b->state = ST_REACHABLE;
    push(s, (size_t)i);
  } else if (b->state == ST_UNREACHED) {
    b->state = ST_POSSIBLE;
    push(s, (size_t)i);
  }
}

static void scan_words(scan_t *s, const uintptr_t *w, size_t n, int pd) {
  for (size_t k = 0; k < n; k++)
    consider(s, w[k], pd);
}

/* Scans [lo, hi) word by word through the bounce buffer: never faults. */
static void scan_safe(scan_t *s, uintptr_t lo, uintptr_t hi, int pd) {
  lo = (lo + sizeof(uintptr_t) - 1) & ~(uintptr_t)(sizeof(uintptr_t) - 1);
  while (lo + sizeof(uintptr_t) <= hi) {
    size_t n = hi - lo < BOUNCE ? (size_t)(hi - lo) : BOUNCE;
    n &= ~(sizeof(uintptr_t) - 1);
    size_t got = safe_read(s->bounce, lo, n);
    if (got < n) {
      /* Part of it cannot be read: go page by page past the hole. */
      size_t pg = 4096 - (lo & 4095);
      if (pg > n)
        pg = n;
      got = safe_read(s->bounce, lo, pg) == pg ? pg : 0;
      if (!got) {
        lo += pg;
        continue;
      }
    }
    scan_words(s, (const uintptr_t *)s->bounce, got / sizeof(uintptr_t), pd);
    lo += got;
  }
}

/* A root range: only where the maps say it can be read. */
static void scan_root(scan_t *s, const vec_t *maps, uintptr_t lo,
                      uintptr_t hi) {
  while (lo < hi) {
    const range_t *r = region_of(maps, lo);
    if (!r) {
      /* Skip to the next readable range. */
      const range_t *m = maps->p;
      size_t k = 0;
      while (k < maps->n && m[k].lo <= lo)
        k++;
      if (k == maps->n)
        return;
      lo = m[k].lo;
      continue;
    }
    uintptr_t end = r->hi < hi ? r->hi : hi;
    s->from_root = 1;
    scan_safe(s, lo, end, 1);
    s->from_root = 0;
    lo = end;
  }
}

static void scan_block(scan_t *s, size_t i) {
  const blk_t *b = &s->b[i];
  int pd = s->clique >= 0 || b->state != ST_POSSIBLE;
  if (!b->readable || b->size < sizeof(uintptr_t))
    return;
  if (s->safe_blocks) {
    scan_safe(s, b->ptr, b->ptr + b->size, pd);
    return;
  }
  uintptr_t lo = (b->ptr + sizeof(uintptr_t) - 1) &
                 ~(uintptr_t)(sizeof(uintptr_t) - 1);
  uintptr_t hi = (b->ptr + b->size) & ~(uintptr_t)(sizeof(uintptr_t) - 1);
  if (hi > lo)
    scan_words(s, (const uintptr_t *)lo, (hi - lo) / sizeof(uintptr_t), pd);
}

static void drain(scan_t *s) {
  while (s->sp)
    scan_block(s, s->stack[--s->sp]);
}

/* Marks which blocks lie wholly in readable memory: both lists are
 * sorted, so one merged pass. */
static void mark_readable(scan_t *s, const vec_t *maps) {
  const range_t *r = maps->p;
  size_t k = 0;
  for (size_t i = 0; i < s->n; i++) {
    blk_t *b = &s->b[i];
    while (k < maps->n && r[k].hi <= b->ptr)
      k++;
    b->readable = 0;
    if (k == maps->n || r[k].lo > b->ptr)
      continue;
    /* A large block may span mappings that touch (mremap'd, split). */
    size_t e = k;
    while (b->ptr + b->size > r[e].hi && e + 1 < maps->n &&
           r[e + 1].lo == r[e].hi)
      e++;
    b->readable = b->ptr + b->size <= r[e].hi;
    if (b->readable && b->ptr - r[k].lo >= sizeof(uintptr_t))
      b->readable |= 2;
  }
}

/* ---- the kept result ---- */

static pthread_mutex_t result_mu = PTHREAD_MUTEX_INITIALIZER;
static blk_t *result;       /* sorted, state = HS_LEAK_*; by result_mu */
static size_t nresult, result_bytes;
static unsigned result_state; /* tracing state it was taken under */
static int have_result;

/* Set (for good) by the first check, with the fork handlers that keep
 * result_mu consistent in a child. Before it no result exists, and a
 * snapshot takes no lock a fork could leave held. */
static int result_in_use;

int hs__leak_result_lock(void) {
  if (!__atomic_load_n(&result_in_use, __ATOMIC_ACQUIRE))
    return 0;
  pthread_mutex_lock(&result_mu);
  return 1;
}
void hs__leak_result_unlock(int locked) {
  if (locked)
    pthread_mutex_unlock(&result_mu);
}

int hs__leak_have_result(void) {
  return __atomic_load_n(&have_result, __ATOMIC_ACQUIRE) &&
         result_state == hs__state_now();
}

unsigned hs__leak_kind_of(uintptr_t ptr, uint64_t size, uint32_t stack) {
  if (!have_result || result_state != hs__state_now())
    return HS_LEAK_UNCHECKED;
  size_t lo = 0, hi = nresult;
  while (lo < hi) {
    size_t m = (lo + hi) / 2;
    if (result[m].ptr < ptr)
      lo = m + 1;
    else
      hi = m;
  }
  /* The same address with another size or stack is a later block. */
  if (lo < nresult && result[lo].ptr == ptr && result[lo].size == size &&
      result[lo].stack == stack)
    return result[lo].state;
  return HS_LEAK_UNCHECKED;
}

/* ---- the check ---- */

static pthread_mutex_t check_mu = PTHREAD_MUTEX_INITIALIZER;
static hs_leak_world_t world; /* by check_mu */

/* fork: result_mu is held across it (its sections are short, and a
 * snapshot holding it is waited for before the trace layer's own handlers,
 * registered earlier and so run later, take the table locks it may wait
 * on). The checking thread does not exist in a child: its lock and the
 * stop word are made anew there. */
void hs__leak_fork_prepare(void) { pthread_mutex_lock(&result_mu); }
void hs__leak_fork_parent(void) { pthread_mutex_unlock(&result_mu); }
void hs__leak_fork_child(void) {
  pthread_mutex_unlock(&result_mu);
  pthread_mutex_init(&check_mu, NULL);
  hs__world_fork_child();
}

static const hs_class_source_t class_source = {
    hs__leak_result_lock, hs__leak_have_result, hs__leak_kind_of,
    hs__leak_result_unlock};

static void use_result(void) {
  if (__atomic_load_n(&result_in_use, __ATOMIC_ACQUIRE))
    return;
  __atomic_store_n(&result_in_use, 1, __ATOMIC_RELEASE);
  hs__snapshot_set_class_source(&class_source);
}

static const uint8_t final_kind[] = {
    [ST_UNREACHED] = HS_LEAK_DEFINITE, [ST_POSSIBLE] = HS_LEAK_POSSIBLE,
    [ST_REACHABLE] = HS_LEAK_REACHABLE, [ST_INDIRECT] = HS_LEAK_INDIRECT};

static long mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* Everything between the stop and the resume: no malloc, no lock. */
static int scan_stopped(scan_t *s, vec_t *maps, const vec_t *mods,
                        int *partial) {
  int rc = read_maps(maps);
  if (rc != 0)
    return rc;
  mark_readable(s, maps);
  s->safe_blocks = world.missed > 0;
  s->clique = -1;
  const range_t *m = mods->p;
  for (size_t i = 0; i < mods->n; i++) {
    scan_root(s, maps, m[i].lo, m[i].hi);
    drain(s);
  }
  size_t tls = static_tls_size(), tcb = tcb_size();
  for (unsigned i = 0; i < world.n; i++) {
    hs_leak_thread_t *t = &world.t[i];
    if (atomic_load(&t->state) != HS_LT_PARKED)
      continue;
    /* The red zone below the stack pointer (128 bytes on x86-64) may
     * hold a leaf function's data; valgrind scans it too. */
    uintptr_t sp = t->sp > 128 ? t->sp - 128 : t->sp;
    const range_t *st = region_of(maps, t->sp);
    uintptr_t top = st ? st->hi : 0;
    if (st && t->tp > t->sp && t->tp < top) {
      uintptr_t end = (t->tp + tcb + 4095) & ~(uintptr_t)4095;
      if (end < top)
        top = end;
    }
    if (st) {
      if (sp < st->lo)
        sp = st->lo;
      scan_root(s, maps, sp, top);
    } else {
      *partial = 1; /* a stack pointer outside every mapping */
    }
    /* Static TLS and the thread descriptor (pthread_setspecific's first
     * block) lie at the top of a thread's stack; the main thread's were
     * allocated by ld.so elsewhere. */
    if (t->tp && !(st && t->tp >= sp && t->tp < top)) {
      const range_t *tr = region_of(maps, t->tp);
      if (tr) {
        uintptr_t lo = t->tp > tr->lo + tls ? t->tp - tls : tr->lo;
        uintptr_t hi = t->tp + tcb < tr->hi ? t->tp + tcb : tr->hi;
        scan_root(s, maps, lo, hi);
      }
    }
    drain(s);
    s->from_root = 1;
    scan_words(s, t->regs, t->nregs, 1);
    s->from_root = 0;
    drain(s);
  }
  drain(s);
  /* Exited threads' descriptors in glibc's stack cache (it keeps about
   * 40 MiB of stacks: a few hundred at most; a longer list is no cache). */
  static uintptr_t pds[1024];
  long npd = cache.head ? cache_list(maps, &world, pds, 1024) : -1;
  for (long i = 0; i < npd; i++)
    scan_root(s, maps, pds[i], pds[i] + tcb);
  drain(s);
  /* The lost: each unreached block, in address order, leads a clique of
   * the unreached blocks it reaches (a later leader may take in an
   * earlier one, which then becomes indirect with its members). */
  for (size_t i = 0; i < s->n; i++) {
    if (s->b[i].state != ST_UNREACHED)
      continue;
    s->clique = (int)i;
    push(s, i);
    drain(s);
  }
  s->clique = -1;
  return 0;
}

/* stopped_by took what was padding: the layout of soname 1 stays. */
_Static_assert(sizeof(void *) != 8 ||
                   (offsetof(hs_leak_summary_t, stopped_by) == 108 &&
                    offsetof(hs_leak_summary_t, scan_ns) == 112 &&
                    sizeof(hs_leak_summary_t) == 120),
               "hs_leak_summary_t's layout is fixed for soname 1");

int hs_leak_check(hs_leak_summary_t *out) {
  /* The caller's registers are roots as the host left them at the call:
   * taken later they would hold heapsnap's scratch values (block addresses
   * from the sort) and make lost blocks look reachable. */
  ucontext_t caller_uc;
  int have_uc = getcontext(&caller_uc) == 0;
  if (out)
    memset(out, 0, sizeof *out);
  if (!hs_is_tracing())
    return HS_ENOTTRACING;
  int saved_errno = errno; /* the host's, whatever the check's calls set */
  uintptr_t caller_sp = (uintptr_t)__builtin_frame_address(0);
  hs__guard_enter();
  pthread_mutex_lock(&check_mu);
  int rc = HS_ENOMEM, partial = 0;
  unsigned state = hs__state_now();
  vec_t blocks = {.elem = sizeof(blk_t)}, mods = {.elem = sizeof(range_t)},
        maps = {.elem = sizeof(range_t)};
  scan_t s = {0};
  long t0 = 0, t1 = 0;
  use_result();
  probe_vm_read();
  (void)static_tls_size();
  (void)tcb_size();
  probe_stack_cache(); /* dlsym: the loader's lock, so not while stopped */
  /* Before the stop: the table copy takes its shard locks (a stopped
   * thread may hold one) and dl_iterate_phdr the loader's lock. */
  hs__traces_foreach(copy_one, &blocks);
  if (blocks.err)
    goto out;
  dl_iterate_phdr(add_module, &mods);
  if (mods.err)
    goto out;
  if (sort_blocks(blocks.p, blocks.n) != 0)
    goto out;
  s.b = blocks.p;
  s.n = blocks.n;
  if (s.n) {
    s.lo = s.b[0].ptr;
    for (size_t i = 0; i < s.n; i++)
      if (s.b[i].ptr + s.b[i].size + 1 > s.hi)
        s.hi = s.b[i].ptr + s.b[i].size + 1;
  }
  s.cap = 2 * s.n + 1;
  s.stack = hs__leak_map(s.cap * sizeof *s.stack);
  s.bounce = hs__leak_map(BOUNCE);
  if (!s.stack || !s.bounce)
    goto out;
  t0 = mono_ns();
  if (hs__world_stop(&world, caller_sp, have_uc ? &caller_uc : NULL) != 0)
    goto out;
  rc = scan_stopped(&s, &maps, &mods, &partial);
  if (hs__world_resume(&world))
    partial = 1; /* the tracer died: the threads ran during the scan */
  t1 = mono_ns();
  if (rc != 0)
    goto out;
  /* Sampled tracing knows a fraction of the blocks: pointers through the
   * others are not followed, so what they hold looks lost. */
  if (world.missed || s.overflow || hs_get_sample_rate())
    partial = 1;
  hs_leak_summary_t sum = {0};
  for (size_t i = 0; i < s.n; i++) {
    s.b[i].state = final_kind[s.b[i].state];
    sum.bytes[s.b[i].state] += s.b[i].size;
    sum.blocks[s.b[i].state]++;
  }
  sum.threads = world.parked + 1;
  sum.threads_missed = world.missed;
  sum.partial = partial;
  sum.stopped_by = world.how;
  sum.scan_ns = (uint64_t)(t1 - t0);
  if (out)
    *out = sum;
  /* The result replaces the last one; the blocks array is kept as it is. */
  pthread_mutex_lock(&result_mu);
  hs__leak_unmap(result, result_bytes);
  result = blocks.p;
  nresult = blocks.n;
  result_bytes = blocks.cap * blocks.elem;
  result_state = state;
  __atomic_store_n(&have_result, 1, __ATOMIC_RELEASE);
  pthread_mutex_unlock(&result_mu);
  blocks.p = NULL;
  rc = 0;
out:
  vec_free(&blocks);
  vec_free(&mods);
  vec_free(&maps);
  hs__leak_unmap(s.stack, s.cap * sizeof *s.stack);
  hs__leak_unmap(s.bounce, BOUNCE);
  pthread_mutex_unlock(&check_mu);
  hs__guard_exit();
  errno = saved_errno;
  return rc;
}
