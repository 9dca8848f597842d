/* thread.c - heapsnap's own threads (the applier, the snapshot writer, the
 * debug-information warm-up): started with every signal blocked. */
#include <pthread.h>
#include <signal.h>

#include "internal.h"

int hs__thread_start(pthread_t *out, void *(*fn)(void *), size_t stack,
                     int detached) {
  /* Blocked around the creation, so the new thread inherits the mask and
   * no host signal is ever delivered to it, not even before its first
   * instruction; the host's handlers were written for its own threads. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_attr_t a;
  pthread_t t;
  int rc = pthread_attr_init(&a);
  if (rc == 0) {
    if (detached)
      pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&a, stack);
    rc = pthread_create(out ? out : &t, &a, fn, NULL);
    pthread_attr_destroy(&a);
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return rc;
}
