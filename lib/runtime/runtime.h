/* runtime.h - the top layer: the process's life as heapsnap sees it (load,
 * exit, fork). Nothing below it calls up into it. */
#ifndef HS_RUNTIME_H
#define HS_RUNTIME_H

#include "../common/internal.h"

/* The fork table's three passes (forks.c): prepare in table order, parent
 * and child in reverse. Registered with pthread_atfork by the library's
 * constructor (life.c); hs_core users (unit tests) register them alike. */
HS_HIDDEN void hs__runtime_fork_prepare(void);
HS_HIDDEN void hs__runtime_fork_parent(void);
HS_HIDDEN void hs__runtime_fork_child(void);

/* The table itself, for the tests that check its shape. */
typedef struct {
  const char *name;
  void (*prepare)(void);
  void (*parent)(void);
  void (*child)(void);
} hs_fork_entry_t;
HS_HIDDEN const hs_fork_entry_t *hs__runtime_fork_table(int *n);

#endif
