/* forks.c - the one ordered table of fork handlers: which heapsnap locks a
 * fork holds, in which order, and how the child makes its state its own. */
#include <pthread.h>

#include "../http/http.h"
#include "../leak/leak.h"
#include "../session/session.h"
#include "../snapshot/snapshot.h"
#include "../symbolize/symbolize.h"
#include "../trace/trace.h"
#include "../unwind/unwind.h"
#include "runtime.h"

/* Serialises heapsnap's part of concurrent forks (glibc holds its atfork
 * lock across the handlers too; this does not rely on it). Taken first:
 * no thread on the allocation path ever waits for it. */
static pthread_mutex_t fork_mu = PTHREAD_MUTEX_INITIALIZER;
static void serial_prepare(void) { pthread_mutex_lock(&fork_mu); }
static void serial_parent(void) { pthread_mutex_unlock(&fork_mu); }
static void serial_child(void) { pthread_mutex_init(&fork_mu, NULL); }

/* Prepare takes the locks in the order the library nests them (outer
 * first), so it never waits for a thread that waits for a lock prepare
 * already holds; parent and child undo them innermost first, as jemalloc's
 * prefork/postfork do.
 *
 * Order and why:
 *  - loader.probe, modules: dl_iterate_phdr before any heapsnap lock is
 *    held (fork_mu is never wanted on the allocation path). A thread
 *    inside dlopen holds the loader's lock and calls our malloc, which may
 *    need a lock below; taking ours first would wait on it for ever.
 *  - wrappers, modmap: leaves of the snapshot layer. modmap's mutex is taken
 *    after the loader's lock by its holder, so the loader comes first here.
 *  - control before defer before tables: hs_start/stop hold control_mu and
 *    drain (defer's lock), and the drain takes every table lock.
 *  - learn: cfi.c's learning lock, a leaf taken under none of the above.
 *  - loader: no lock; its child pass runs first of all, so that every other
 *    child pass knows whether the loader's lock may be held.
 *
 * Not in the table, and why:
 *  - sym_mu (snapshot.c): held for tens of milliseconds while libdw reads
 *    debug information; the fork never waits for it. Reset in the child by
 *    hs__symbols_fork_child, which drops a symbolizer caught mid-change.
 *  - solo_mu (defer.c): held only while solo numbering ends; reset in the
 *    child with the rest of the solo state by the defer entry.
 *  - libunwind's and the loader's own locks: the loader entry. */
static const hs_fork_entry_t table[] = {
    {"runtime.serial", serial_prepare, serial_parent, serial_child},
    {"common.loader.probe", hs__loader_fork_prepare, NULL, NULL},
    {"symbolize.modules", hs__modules_fork_prepare, NULL, NULL},
    {"session", NULL, NULL, hs__session_fork_child},
    {"http", NULL, NULL, hs__http_fork_child},
    {"leak.result", hs__leak_fork_prepare, hs__leak_fork_parent,
     hs__leak_fork_child},
    {"snapshot.symbols", NULL, NULL, hs__symbols_fork_child},
    {"snapshot.wrappers", hs__wrappers_fork_prepare, hs__wrappers_fork_parent,
     hs__wrappers_fork_child},
    {"snapshot.modmap", hs__modmap_fork_prepare, hs__modmap_fork_parent,
     hs__modmap_fork_child},
    {"trace.control", hs__control_fork_prepare, hs__control_fork_parent,
     hs__control_fork_child},
    {"trace.defer", hs__defer_fork_prepare, hs__defer_fork_parent,
     hs__defer_fork_child},
    {"trace.tables", hs__tables_fork_prepare, hs__tables_fork_parent,
     hs__tables_fork_child},
    {"unwind.learn", hs__unwind_fork_prepare, hs__unwind_fork_parent,
     hs__unwind_fork_child},
    {"common.loader", NULL, NULL, hs__loader_fork_child},
};
#define NTABLE ((int)(sizeof table / sizeof table[0]))

const hs_fork_entry_t *hs__runtime_fork_table(int *n) {
  *n = NTABLE;
  return table;
}

/* The guard spans the fork: what prepare allocates (the module list) and
 * what the child passes allocate are heapsnap's, never the host's. */
void hs__runtime_fork_prepare(void) {
  hs__guard_enter();
  for (int i = 0; i < NTABLE; i++)
    if (table[i].prepare)
      table[i].prepare();
}

void hs__runtime_fork_parent(void) {
  for (int i = NTABLE - 1; i >= 0; i--)
    if (table[i].parent)
      table[i].parent();
  hs__guard_exit();
}

void hs__runtime_fork_child(void) {
  for (int i = NTABLE - 1; i >= 0; i--)
    if (table[i].child)
      table[i].child();
  hs__guard_exit();
}
