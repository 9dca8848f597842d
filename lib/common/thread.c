/* thread.c - heapsnap's own threads (the applier, the snapshot writer, the
 * debug-information warm-up): started with every signal blocked. */
#include <pthread.h>
#include <signal.h>

#include <stdlib.h>

#include "../leak/leak.h"
#include "internal.h"

/* The leak check does not wait for heapsnap's threads to park (they block
 * every signal): each says who it is for as long as it runs. */
static void *own_thread(void *arg) {
  void *(*fn)(void *) = *(void *(**)(void *))arg;
  free(arg);
  hs__leak_own_thread_enter();
  void *r = fn(NULL);
  hs__leak_own_thread_exit();
  return r;
}

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
    void *(**box)(void *) = malloc(sizeof *box);
    if (box) {
      *box = fn;
      rc = pthread_create(out ? out : &t, &a, own_thread, box);
      if (rc != 0)
        free(box);
    } else {
      rc = pthread_create(out ? out : &t, &a, fn, NULL);
    }
    pthread_attr_destroy(&a);
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return rc;
}
