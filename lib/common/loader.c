/* loader.c - whether the dynamic loader's lock (and libunwind's) may be held
 * in a fork child by a thread that no longer exists, so that the child never
 * waits on it. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <unistd.h>

#include "internal.h"

/* Sharded by thread so that libunwind-heavy captures on many threads do not
 * share one line; only the sum matters, and only in a fork child, where it
 * is what the threads were doing at the instant of the fork. */
hs_loader_shard_t hs__loader_inside[HS_LOADER_SHARDS];
int hs__loader_unsafe;
__thread char hs__loader_anchor __attribute__((tls_model("initial-exec")));

/* The loader's write lock (the recursive mutex dl_iterate_phdr, dlopen and
 * dlclose take), found inside _rtld_global as the one recursive mutex this
 * thread owns while inside dl_iterate_phdr's callback. glibc keeps it
 * private; reading it in the child is the only way to see a host thread
 * that held it at the fork. NULL when not found: then the child falls back
 * on the loader's consistency mark. Written once, by the forking thread. */
static const pthread_mutex_t *write_lock;
static int probed;

struct probe {
  const unsigned char *base;
  size_t size;
  pid_t tid;
  const pthread_mutex_t *found;
  int matches;
};

static int probe_cb(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)info;
  (void)size;
  struct probe *p = arg;
  for (size_t off = 0; off + sizeof(pthread_mutex_t) <= p->size; off += 8) {
    const pthread_mutex_t *m = (const void *)(p->base + off);
    if (m->__data.__owner == p->tid && m->__data.__lock != 0 &&
        m->__data.__count >= 1 &&
        (m->__data.__kind & 3) == PTHREAD_MUTEX_RECURSIVE_NP) {
      p->found = m;
      p->matches++;
    }
  }
  return 1; /* one callback is enough: the lock is held for all of them */
}

void hs__loader_fork_prepare(void) {
  if (probed)
    return;
  probed = 1;
  void *g = dlsym(RTLD_DEFAULT, "_rtld_global");
  Dl_info di;
  const ElfW(Sym) *sym = NULL;
  if (!g || !dladdr1(g, &di, (void **)&sym, RTLD_DL_SYMENT) || !sym ||
      sym->st_size < sizeof(pthread_mutex_t))
    return;
  struct probe p = {g, sym->st_size, gettid(), NULL, 0};
  if (!hs__loader_enter())
    return;
  dl_iterate_phdr(probe_cb, &p);
  hs__loader_exit();
  if (p.matches == 1) /* anything else is a layout we do not know */
    write_lock = p.found;
}

void hs__loader_fork_child(void) {
  long sum = 0;
  for (int i = 0; i < HS_LOADER_SHARDS; i++) {
    sum += atomic_load_explicit(&hs__loader_inside[i].n, memory_order_relaxed);
    atomic_store_explicit(&hs__loader_inside[i].n, 0, memory_order_relaxed);
  }
  /* A host thread may hold the write lock too (inside dlopen, dlclose or
   * dl_iterate_phdr). With the lock found, its state says so exactly;
   * without, the loader's mark around list changes (the debugger interface)
   * is the best sign, blind to a host's own dl_iterate_phdr. */
  if (write_lock ? write_lock->__data.__lock != 0
                 : _r_debug.r_state != RT_CONSISTENT)
    sum++;
  /* Sticky: glibc does not reset the loader's write lock in a child, so a
   * grandchild inherits it held as well. */
  if (sum != 0)
    hs__loader_unsafe = 1;
}
