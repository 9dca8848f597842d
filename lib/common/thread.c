/* thread.c - heapsnap's own threads (the applier, the snapshot writer, the
 * debug-information warm-up): started with every signal blocked, and the
 * registry of their thread ids that stopping the world reads. */
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <stdlib.h>

#include "internal.h"

/* Thread ids of the running own threads; 0 is a free slot. Lock-free: the
 * leak check reads it while other threads are stopped. */
#define OWN_MAX 32
static _Atomic pid_t own[OWN_MAX];
/* Created, not yet in own[]: the leak check waits for these to say who
 * they are rather than take one for a host thread (it blocks every
 * signal, so the signal would wait for it in vain). */
static atomic_int starting;

int hs__own_threads_starting(void) { return atomic_load(&starting); }

int hs__own_thread(pid_t tid) {
  for (int i = 0; i < OWN_MAX; i++)
    if (atomic_load_explicit(&own[i], memory_order_relaxed) == tid)
      return 1;
  return 0;
}

/* Each says who it is for as long as it runs; a thread that finds no free
 * slot is simply not known (the leak check then waits for it in vain and
 * counts it missed). */
static void *own_thread(void *arg) {
  void *(*fn)(void *) = *(void *(**)(void *))arg;
  free(arg);
  pid_t me = (pid_t)syscall(SYS_gettid);
  int slot = -1;
  for (int i = 0; i < OWN_MAX && slot < 0; i++) {
    pid_t z = 0;
    if (atomic_compare_exchange_strong(&own[i], &z, me))
      slot = i;
  }
  atomic_fetch_sub(&starting, 1);
  void *r = fn(NULL);
  if (slot >= 0)
    atomic_store(&own[slot], 0);
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
      atomic_fetch_add(&starting, 1);
      rc = pthread_create(out ? out : &t, &a, own_thread, box);
      if (rc != 0) {
        atomic_fetch_sub(&starting, 1);
        free(box);
      }
    } else {
      rc = pthread_create(out ? out : &t, &a, fn, NULL);
    }
    pthread_attr_destroy(&a);
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return rc;
}

void hs__futex_wait(atomic_uint *w, unsigned val, long ns) {
  struct timespec ts = {ns / 1000000000L, ns % 1000000000L};
  syscall(SYS_futex, (unsigned *)w, FUTEX_WAIT_PRIVATE, val,
          ns > 0 ? &ts : NULL, NULL, 0);
}

void hs__futex_wake(atomic_uint *w) {
  syscall(SYS_futex, (unsigned *)w, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL,
          0);
}

long hs__mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000L + ts.tv_nsec;
}
