/* life.c - the library's load and exit: resolving the real allocator,
 * registering the fork table, reading the configuration and starting the
 * session; at exit, the session's last snapshots. Library builds only
 * (hs_core has no constructor: its users start tracing themselves). */
#include <errno.h>
#include <pthread.h>

#include "../interpose/interpose.h"
#include "../session/session.h"
#include "runtime.h"

/* Named by the static archive's link option (-u): nothing refers to this
 * file, so without it a static link would leave the constructor out. */
HS_HIDDEN char hs__runtime_life;

__attribute__((constructor)) static void heapsnap_init(void) {
  int saved = errno;
  /* Before anything can allocate through us with the real allocator
   * unknown (dlsym's calloc is served from the bootstrap pool). */
  hs__interpose_init();
  hs__guard_enter();
  pthread_atfork(hs__runtime_fork_prepare, hs__runtime_fork_parent,
                 hs__runtime_fork_child);
  hs__guard_exit();
  hs__session_init(); /* reads HEAPSNAP_*, may start tracing */
  errno = saved;
}

__attribute__((destructor)) static void heapsnap_fini(void) {
  hs__session_exit();
}
