/* session.h - what the preloaded (or linked) library does on its own, from
 * the HEAPSNAP_* environment: start tracing, and write snapshots on the
 * triggers the user asked for. */
#ifndef HS_SESSION_H
#define HS_SESSION_H

#include "../common/internal.h"

/* Reads HEAPSNAP_*, starts tracing and the triggers. Ignored in secure
 * execution. A bad value is reported on stderr and leaves tracing off. */
HS_HIDDEN void hs__session_init(void);
/* In the child of fork(): a writer thread of its own, or tracing off when
 * HEAPSNAP_FOLLOW_FORK=0. */
HS_HIDDEN void hs__session_fork_child(void);
/* At exit: stop the writer, write the exit snapshot. */
HS_HIDDEN void hs__session_exit(void);

/* Copies the output template t to out with a process id inserted when it
 * has none: before %n (x.%n.hsnap -> x.%p.%n.hsnap), else before the file
 * name's extension (x.hsnap -> x.%p.hsnap), else at the end. Returns 1
 * when it inserted one, 0 when t already had %p, -1 when out is short. */
HS_HIDDEN int hs__template_add_pid(const char *t, char *out, size_t len);

#endif
