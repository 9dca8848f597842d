/* session.c - the preloaded library's configuration (HEAPSNAP_* variables)
 * and its snapshot triggers: at exit, on a signal, every interval, every N
 * bytes of growth and at the peak, all written by one writer thread; and the
 * HEAPSNAP_FAULT_ALLOC testing aid (docs/reliability.md). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <time.h>
#include <unistd.h>

#include "../snapshot/snapshot.h"
#include "../symbolize/symbolize.h"
#include "../trace/trace.h"
#include "../http/http.h"
#include "../leak/leak.h"
#include "../unwind/unwind.h"
#include "options.h"
#include "session.h"

static struct config {
  int frames;              /* 0: do not start at load */
  char output[PATH_MAX];   /* template: %p pid, %n sequence, %e program */
  int at_exit;             /* snapshot at exit (default on) */
  int warm;                /* read debug info ahead of it (default on) */
  int signo;               /* 0: none */
  double interval;         /* seconds; 0: none */
  uint64_t every_bytes;    /* 0: none */
  int at_peak;
  double peak_interval;    /* the peak file is rewritten at most this often */
  int follow_fork;         /* trace children of fork (default on) */
  int follow_exec;         /* keep LD_PRELOAD for exec'd images (on) */
  int quiet;               /* no messages on stderr but errors */
  int defer;               /* HEAPSNAP_DEFER: 0, 1 (ring) or 2 (+ applier) */
  int unwind;              /* HS_UNWIND_FAST or HS_UNWIND_LIBUNWIND */
  uint64_t sample;         /* 0: every allocation; N: one per N bytes */
  int leaks;               /* HEAPSNAP_LEAKS: a leak check before the exit
                              snapshot, which then carries the classes */
  int leak_stop;           /* HEAPSNAP_LEAK_STOP: HS_STOP_* (auto) */
} cfg;

/* HEAPSNAP_FAULT_ALLOC=N fails heapsnap's Nth internal allocation, N+ every
 * one from the Nth on, 0 none; any of them counts the internal allocations
 * and reports at exit. A testing aid: the hook stays NULL when unset. */
static struct {
  int on;                           /* the variable was set and valid */
  uint64_t at;                      /* 0: count only */
  int from;                         /* N+: every allocation from at on */
  atomic_uint_least64_t calls;      /* internal allocations seen */
  atomic_uint_least64_t failed;     /* of them, made to fail */
} fault;

static int active;           /* triggers configured and the writer runs */
static int wake_pipe[2] = {-1, -1};
static pthread_t writer;
static int writer_started;
/* The next sequence number: the writer's, and the exit's once the writer
 * is joined or left behind still writing (so both never take one name). */
static atomic_uint seq;
static char progname[256];
/* The template for the processes after this one when ours has no %p. */
static char child_output[PATH_MAX];

/* Snapshots this process could not write. The first failure is said at
 * once; the others are only counted, and the count is said at exit, so a
 * full disk costs a process two lines, not one per snapshot. Atomics: the
 * writer thread and the exit path both write snapshots, and a writer that
 * outlived its 5 s join at exit may still be failing. */
static atomic_uint lost;           /* snapshots that failed */
static atomic_uint attempted;      /* snapshots tried */
static atomic_int first_claimed;   /* someone is filling first_fail */
static atomic_int first_ready;     /* first_fail is complete */
static char first_fail[PATH_MAX + 256]; /* "PATH: REASON" */

/* ---- messages: write(2) only, never stdio (host buffering) ---- */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  size_t len = (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1;
  ssize_t r = write(2, buf, len);
  (void)r;
}

/* Called by hs__mem_alloc/hs__mem_calloc before they allocate; non-zero
 * makes them fail. Any thread, any lock held: one atomic, no libc. */
static int fault_hook(size_t size) {
  (void)size;
  uint64_t n =
      atomic_fetch_add_explicit(&fault.calls, 1, memory_order_relaxed) + 1;
  if (fault.at && (n == fault.at || (fault.from && n > fault.at))) {
    atomic_fetch_add_explicit(&fault.failed, 1, memory_order_relaxed);
    return 1;
  }
  return 0;
}

int hs__template_add_pid(const char *t, char *out, size_t len) {
  const char *base = strrchr(t, '/');
  base = base ? base + 1 : t;
  const char *n_at = NULL, *dot = NULL;
  for (const char *p = t; *p; p++) {
    if (*p == '%') {
      if (p[1] == 'p')
        return snprintf(out, len, "%s", t) >= (int)len ? -1 : 0;
      if (p[1] == 'n' && p >= base && !n_at)
        n_at = p;
      if (p[1])
        p++;
    } else if (*p == '.' && p > base) {
      dot = p;
    }
  }
  /* Next to the sequence number, as in the default name; else before the
   * extension; else at the end. */
  const char *at = n_at ? n_at : dot ? dot : t + strlen(t);
  const char *ins = n_at ? "%p." : ".%p";
  int w = snprintf(out, len, "%.*s%s%s", (int)(at - t), t, ins, at);
  return w < 0 || (size_t)w >= len ? -1 : 1;
}

/* The value of HEAPSNAP_<name>, checked by the table every reader of it
 * shares (options.c): 1 with *x, 0 when unset or empty, -1 when bad (then
 * said, once). */
static int setting(const char *name, hs_optval_t *x) {
  char env[64];
  snprintf(env, sizeof env, "HEAPSNAP_%s", name);
  const char *v = getenv(env);
  const hs_opt_t *o = hs__opt_find(name);
  if (!v || !*v || !o)
    return 0;
  if (hs__opt_parse(o, v, x) == 0)
    return 1;
  say("heapsnap: %s=%s: %s; tracing stays off\n", env, v, o->told);
  return -1;
}

/* Adds HEAPSNAP_WRAPPERS' entries: "file:" and "module:" prefixes choose
 * the kind. */
static int add_wrappers(const char *v) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", v);
  for (char *save, *tok = strtok_r(buf, ",", &save); tok;
       tok = strtok_r(NULL, ",", &save)) {
    int kind = HS_WRAP_FUNCTION;
    if (!strncmp(tok, "file:", 5))
      kind = HS_WRAP_FILE, tok += 5;
    else if (!strncmp(tok, "module:", 7))
      kind = HS_WRAP_MODULE, tok += 7;
    else if (!strncmp(tok, "function:", 9))
      tok += 9;
    if (*tok && hs_add_wrapper(kind, tok) != 0) {
      say("heapsnap: HEAPSNAP_WRAPPERS=%s: out of memory; tracing stays "
          "off\n", v);
      return -1;
    }
  }
  return 0;
}

/* Reads every HEAPSNAP_* variable (the table in options.c, and
 * docs/launcher.md); on any bad value says which and leaves tracing off
 * (returns -1). FAULT_ALLOC is a testing aid that makes heapsnap's own
 * allocations fail (docs/reliability.md). */
static int read_config(void) {
  cfg.at_exit = 1;
  cfg.warm = 1;
  cfg.follow_fork = 1;
  cfg.follow_exec = 1;
  cfg.defer = 2;
  cfg.peak_interval = 1.0;
  snprintf(cfg.output, sizeof cfg.output, "heapsnap.%%e.%%p.%%n.hsnap");
  hs_optval_t x;
  int r = 0;
#define SETTING(name, assign)                                                 \
  if ((r = setting(name, &x)) < 0)                                            \
    return -1;                                                                \
  else if (r) {                                                               \
    assign;                                                                   \
  }
  SETTING("FRAMES", cfg.frames = (int)x.i)
  SETTING("OUTPUT", snprintf(cfg.output, sizeof cfg.output, "%s", x.s))
  SETTING("AT_EXIT", cfg.at_exit = (int)x.i)
  SETTING("WARM", cfg.warm = (int)x.i)
  SETTING("SIGNAL", cfg.signo = (int)x.i)
  SETTING("INTERVAL", cfg.interval = x.d)
  SETTING("EVERY_BYTES", cfg.every_bytes = x.u)
  SETTING("AT_PEAK", cfg.at_peak = (int)x.i)
  SETTING("PEAK_INTERVAL", cfg.peak_interval = x.d)
  SETTING("FOLLOW_FORK", cfg.follow_fork = (int)x.i)
  SETTING("FOLLOW_EXEC", cfg.follow_exec = (int)x.i)
  SETTING("QUIET", cfg.quiet = (int)x.i)
  SETTING("DEFER", cfg.defer = (int)x.i)
  /* In the order of options.c's choices. */
  static const int unwinds[] = {HS_UNWIND_FAST, HS_UNWIND_LIBUNWIND,
                                HS_UNWIND_VERIFY};
  SETTING("UNWIND", cfg.unwind = unwinds[x.i])
  SETTING("SAMPLE", cfg.sample = x.i ? HS_DEFAULT_SAMPLE_RATE : x.u)
  SETTING("FAULT_ALLOC",
          fault.at = x.u; fault.from = (int)x.i; fault.on = 1)
  SETTING("WRAPPERS", if (add_wrappers(x.s) != 0) return -1)
  SETTING("LEAKS", cfg.leaks = (int)x.i)
  /* In the order of options.c's choices, which is HS_STOP_*'s. */
  SETTING("LEAK_STOP", cfg.leak_stop = (int)x.i)
#undef SETTING
  return 0;
}

/* ---- file names ---- */

/* Expands the template with %n = seq (or the word when not NULL). */
static void expand(char *out, size_t len, unsigned n, const char *word) {
  size_t o = 0;
  for (const char *p = cfg.output; *p && o + 1 < len; p++) {
    char tmp[64];
    const char *add = tmp;
    if (*p != '%') {
      out[o++] = *p;
      continue;
    }
    switch (*++p) {
    case 'p':
      snprintf(tmp, sizeof tmp, "%ld", (long)getpid());
      break;
    case 'n':
      if (word)
        add = word;
      else
        snprintf(tmp, sizeof tmp, "%u", n);
      break;
    case 'e':
      add = progname;
      break;
    default:
      add = "%";
      break;
    }
    size_t l = strlen(add);
    if (o + l >= len)
      l = len - 1 - o;
    memcpy(out + o, add, l);
    o += l;
  }
  out[o] = '\0';
}

/* Counts a snapshot that could not be written; the first one is said. */
static void note_failure(const char *path, int io, const char *reason) {
  atomic_fetch_add(&lost, 1);
  int expected = 0;
  if (!atomic_compare_exchange_strong(&first_claimed, &expected, 1))
    return;
  snprintf(first_fail, sizeof first_fail, "%s: %s", path, reason);
  atomic_store_explicit(&first_ready, 1, memory_order_release);
  if (io)
    say("heapsnap: cannot write %s: %s\n", path, reason);
  else
    say("heapsnap: snapshot for %s failed: %s\n", path, reason);
}

/* Writes s to path (s stays the caller's); returns 0 or an HS_E* code,
 * already counted and, when it is the first, reported. */
static int dump_counted(hs_snapshot_t *s, const char *path) {
  atomic_fetch_add(&attempted, 1);
  int rc = hs_snapshot_dump(s, path);
  int e = errno;
  if (rc == HS_EIO)
    note_failure(path, 1, strerror(e));
  else if (rc != 0)
    note_failure(path, 0, hs_strerror(rc));
  return rc;
}

/* Takes and writes one snapshot; word NULL uses the next free number.
 * Returns 0 or an HS_E* code (already reported). */
static int write_snapshot(const char *word) {
  char path[PATH_MAX];
  if (word) {
    expand(path, sizeof path, 0, word);
  } else if (!strstr(cfg.output, "%n")) {
    expand(path, sizeof path, atomic_fetch_add(&seq, 1), NULL);
  } else {
    /* An exec'd image starts again at 0 under the same pid: skip names
     * that are taken rather than replace another image's file. */
    do
      expand(path, sizeof path, atomic_fetch_add(&seq, 1), NULL);
    while (access(path, F_OK) == 0 && atomic_load(&seq) < 1000000);
  }
  hs_snapshot_t *s;
  int rc = hs_take_snapshot(&s);
  if (rc == HS_ENOTTRACING)
    return rc;
  if (rc != 0) {
    atomic_fetch_add(&attempted, 1);
    note_failure(path, 0, hs_strerror(rc));
    return rc;
  }
  rc = dump_counted(s, path);
  hs_snapshot_free(s);
  return rc;
}

/* ---- the writer thread and its wake-ups ---- */

enum { WAKE_SIGNAL = 's', WAKE_BYTES = 'b', WAKE_QUIT = 'q' };

static void wake(char why) {
  int saved = errno;
  ssize_t r = write(wake_pipe[1], &why, 1); /* async-signal-safe */
  (void)r;
  errno = saved;
}

static void on_signal(int signo) {
  (void)signo;
  wake(WAKE_SIGNAL);
}

/* Growth crossings not yet written: counted by the allocating thread at
 * each crossing, so that a writer running late (a loaded machine, a slow
 * disk) writes one snapshot for each, and none is lost. */
static atomic_uint growth_pending;

/* Called under a trace table lock by the allocating thread. */
static void on_growth(size_t now) {
  (void)now;
  atomic_fetch_add_explicit(&growth_pending, 1, memory_order_relaxed);
  wake(WAKE_BYTES);
}

static void on_threshold(size_t now) {
  (void)now;
  wake(WAKE_BYTES);
}

static double mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Writer-thread state for the peak trigger. */
static size_t peak_taken;     /* traced size when peak_snap was taken */
static hs_snapshot_t *peak_snap; /* the highest heap seen, not yet written */
static double peak_written = -1e9; /* when a peak file was last written */

static size_t current_size(void) {
  size_t c;
  hs_get_traced_memory(&c, NULL);
  return c;
}

/* Growth past which the peak is taken again: 1/64 above the last one, so
 * a rising heap costs a logarithmic number of captures and the snapshot is
 * within 1.6% of the true peak. */
static size_t next_peak(void) { return peak_taken + peak_taken / 64 + 1; }

/* The every-bytes trigger steps itself from crossing to crossing in the
 * trace tables; armed once, N above the heap when the writer starts. */
static void arm_growth(void) {
  atomic_store(&growth_pending, 0);
  if (cfg.every_bytes)
    hs__traces_set_trigger(HS_TRIGGER_GROWTH,
                           current_size() + (size_t)cfg.every_bytes,
                           (size_t)cfg.every_bytes, on_growth);
}

/* The next peak worth waking up for; returns it. */
static size_t arm_peak(void) {
  if (!cfg.at_peak)
    return SIZE_MAX;
  size_t at = next_peak();
  hs__traces_set_trigger(HS_TRIGGER_PEAK, at, 0, on_threshold);
  return at;
}

static void disarm(void) {
  hs__traces_set_trigger(HS_TRIGGER_GROWTH, SIZE_MAX, 0, NULL);
  hs__traces_set_trigger(HS_TRIGGER_PEAK, SIZE_MAX, 0, NULL);
}

/* Captures are cheap (no symbols, no I/O); the file is rewritten at most
 * once per HEAPSNAP_PEAK_INTERVAL, and at exit. */
static void write_peak(void) {
  if (!peak_snap)
    return;
  char path[PATH_MAX];
  expand(path, sizeof path, 0, "peak");
  (void)dump_counted(peak_snap, path);
  hs_snapshot_free(peak_snap);
  peak_snap = NULL;
  peak_written = mono();
}

/* One snapshot per growth crossing counted so far. */
static void write_growth(void) {
  for (unsigned n = atomic_exchange(&growth_pending, 0); n > 0; n--)
    write_snapshot(NULL);
}

static void check_peak(void) {
  if (cfg.at_peak && current_size() >= next_peak()) {
    hs_snapshot_t *s;
    if (hs_take_snapshot(&s) == 0) {
      hs_snapshot_info_t in;
      hs_snapshot_get_info(s, &in, sizeof in);
      hs_snapshot_free(peak_snap);
      peak_snap = s;
      peak_taken = in.size;
    }
  }
}

/* Arms the next peak, and checks at once when the heap is already past
 * it: the tables report a crossing only at an allocation that lands at or
 * above the armed size, so growth made while the last capture was taken,
 * before the arming, would wait for an allocation that may never come (the
 * top of a climb). Bounded: past a few rounds (a heap that outruns the
 * writer, a capture that keeps failing) the armed threshold waits for the
 * next allocation. */
static void rearm_peak(void) {
  for (int round = 0;; round++) {
    size_t at = arm_peak();
    /* The arming before the read: an allocation that misses the new
     * threshold has its size in the total read here. */
    atomic_thread_fence(memory_order_seq_cst);
    if (at == SIZE_MAX || current_size() < at || round == 16)
      return;
    check_peak();
  }
}

static void *writer_main(void *arg) {
  (void)arg;
  hs__guard_enter(); /* nothing this thread allocates is the host's */
  double next_tick = cfg.interval > 0 ? mono() + cfg.interval : 0;
  rearm_peak();
  for (;;) {
    int timeout = -1;
    double t = mono();
    if (cfg.interval > 0)
      timeout = next_tick > t ? (int)((next_tick - t) * 1000) + 1 : 0;
    if (peak_snap) {
      double due = peak_written + cfg.peak_interval - t;
      int w = due > 0 ? (int)(due * 1000) + 1 : 0;
      if (timeout < 0 || w < timeout)
        timeout = w;
    }
    struct pollfd pfd = {wake_pipe[0], POLLIN, 0};
    int n = poll(&pfd, 1, timeout);
    int sig = 0, bytes = 0;
    if (n > 0) {
      char buf[64];
      ssize_t r = read(wake_pipe[0], buf, sizeof buf);
      for (ssize_t i = 0; i < r; i++) {
        if (buf[i] == WAKE_QUIT) {
          write_growth(); /* crossings before the exit are owed theirs */
          return NULL;
        }
        sig |= buf[i] == WAKE_SIGNAL;
        bytes |= buf[i] == WAKE_BYTES;
      }
    }
    if (sig)
      write_snapshot(NULL);
    if (cfg.interval > 0 && mono() >= next_tick) {
      write_snapshot(NULL);
      next_tick = mono() + cfg.interval;
    }
    if (bytes) {
      write_growth();
      check_peak();
      rearm_peak();
    }
    if (peak_snap && mono() - peak_written >= cfg.peak_interval)
      write_peak();
  }
}

static int start_writer(void) {
  if (pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
    return -1;
  /* Here, not in the thread: the first threshold then counts from the heap
   * as it is now, however late the thread first runs. */
  arm_growth();
  if (hs__thread_start(&writer, writer_main, 256 * 1024, 0) != 0) {
    disarm();
    close(wake_pipe[0]);
    close(wake_pipe[1]);
    wake_pipe[0] = wake_pipe[1] = -1;
    return -1;
  }
  writer_started = 1;
  return 0;
}

/* ---- reading debug information ahead of the exit snapshot ----
 * Symbolizing the exit snapshot means reading the debug information of
 * every module in its stacks, and a separate debug file is compressed:
 * libc's (libc6-dbg) cost 0.08 s at the exit of a 0.2 s program, where
 * heaptrack's interpreter does that work while the program runs. So a
 * thread reads it while the program runs, for the modules of the stacks
 * seen by then, into the symbolizer that snapshots keep; the exit
 * snapshot moves it over to its own module list and finds the work done.
 * Detached and never waited for: the exit only tells it to stop, and
 * waits at most for the address it is resolving, whose module the exit
 * snapshot would have read anyway. */
static atomic_int warm_stop;

static void *warm_main(void *arg) {
  (void)arg;
  hs__guard_enter();
  /* Only on a CPU nothing else wants: the work is speculative (a program
   * that frees everything has an exit snapshot with no stack to read),
   * and on the 2-thread workload at normal priority it took 35-40 ms of
   * wall time from the program. An exit snapshot that does need it waits
   * on the symbolization lock, which leaves a CPU idle for it. */
#ifdef SCHED_IDLE
  struct sched_param sp = {0};
  (void)pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
#endif
  /* Let the program intern its first stacks: those of its start-up, and
   * with them every module a stack runs through below main. */
  for (long ms = 20; ms <= 640 && !atomic_load(&warm_stop); ms *= 2) {
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
    if (hs__stack_count() > 0)
      break;
  }
  if (!atomic_load(&warm_stop))
    (void)hs__symbols_warm(&warm_stop);
  return NULL;
}

static int needs_writer(void) {
  return cfg.signo || cfg.interval > 0 || cfg.every_bytes || cfg.at_peak;
}

/* Removes this library from LD_PRELOAD so exec'd images run untraced. */
static void drop_from_preload(void) {
  const char *v = getenv("LD_PRELOAD");
  if (!v)
    return;
  char buf[4096], out[4096] = "";
  snprintf(buf, sizeof buf, "%s", v);
  for (char *save, *tok = strtok_r(buf, " :", &save); tok;
       tok = strtok_r(NULL, " :", &save)) {
    if (strstr(tok, "libheapsnap.so"))
      continue;
    if (*out)
      strncat(out, ":", sizeof out - strlen(out) - 1);
    strncat(out, tok, sizeof out - strlen(out) - 1);
  }
  if (*out)
    setenv("LD_PRELOAD", out, 1);
  else
    unsetenv("LD_PRELOAD");
}

void hs__session_init(void) {
  if (getauxval(AT_SECURE))
    return; /* setuid/setgid: never let the environment steer us */
  hs__guard_enter();
  if (read_config() != 0)
    goto out;
  /* Before any table exists, so that the count starts with the first
   * internal allocation, whoever starts tracing (HEAPSNAP_FRAMES or the
   * program's own hs_start). */
  if (fault.on)
    hs__mem_fail_hook = fault_hook;
  /* Byte and peak triggers watch the traced total as each allocation
   * lands: with deferred updates it would lag by the applier's delay and
   * a fast climb could pass several thresholds before one is seen. These
   * two also hold for a program that starts tracing itself. */
  hs__defer_configure(cfg.every_bytes || cfg.at_peak ? 0 : cfg.defer);
  hs__unwind_set_mode(cfg.unwind);
  hs__leak_set_stop(cfg.leak_stop);
  if (cfg.frames == 0)
    goto out;
  const char *e = getenv("HEAPSNAP_PROGRAM");
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  exe[n > 0 ? n : 0] = '\0';
  const char *slash = strrchr(exe, '/');
  const char *name = e && *e ? e : slash ? slash + 1 : exe;
  size_t nl = strnlen(name, sizeof progname - 1);
  memcpy(progname, name, nl);
  progname[nl] = '\0';
  if (cfg.follow_fork || cfg.follow_exec) {
    /* Other processes will trace too: with one name they would write each
     * other's files. This process keeps the name it was given (a fixed
     * name was asked for); every process after it has the pid in its name:
     * a forked child takes child_output (hs__session_fork_child), an exec'd
     * one inherits it in HEAPSNAP_OUTPUT and so does not add it again.
     * Silent: the launcher puts %p in the template and says so itself. */
    if (hs__template_add_pid(cfg.output, child_output, sizeof child_output) ==
        1)
      setenv("HEAPSNAP_OUTPUT", child_output, 1);
    else
      child_output[0] = '\0';
  }
  if (!cfg.follow_exec)
    drop_from_preload();
  if (cfg.sample && hs_set_sample_rate((size_t)cfg.sample, 0) != 0)
    goto out;
  if (hs_start(cfg.frames) != 0)
    goto out;
  /* Without the warm-up the exit snapshot does the same work itself. */
  if (cfg.at_exit && cfg.warm)
    (void)hs__thread_start(NULL, warm_main, 256 * 1024, 1);
  if (needs_writer() && start_writer() != 0) {
    say("heapsnap: cannot start the snapshot thread; only the exit "
        "snapshot will be written\n");
    cfg.signo = 0, cfg.interval = 0, cfg.every_bytes = 0, cfg.at_peak = 0;
  }
  if (cfg.signo) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(cfg.signo, &sa, NULL);
  }
  active = 1;
  hs__http_start(); /* HEAPSNAP_HTTP: the pprof endpoint, when asked */
out:
  hs__guard_exit();
}

void hs__session_fork_child(void) {
  if (!active)
    return;
  writer_started = 0;
  if (!cfg.follow_fork) {
    active = 0;
    disarm();
    hs_stop();
    return;
  }
  atomic_store(&seq, 0);
  if (child_output[0]) {
    snprintf(cfg.output, sizeof cfg.output, "%s", child_output);
    child_output[0] = '\0'; /* its own children inherit %p as it is */
  }
  /* The child's losses are its own: it says its first and counts them. */
  atomic_store(&lost, 0);
  atomic_store(&attempted, 0);
  atomic_store(&first_claimed, 0);
  atomic_store(&first_ready, 0);
  if (wake_pipe[0] >= 0) {
    close(wake_pipe[0]);
    close(wake_pipe[1]);
    wake_pipe[0] = wake_pipe[1] = -1;
  }
  /* The writer thread did not survive the fork; the child gets its own. */
  if (needs_writer() && start_writer() != 0)
    cfg.interval = 0, cfg.every_bytes = 0, cfg.at_peak = 0, cfg.signo = 0;
}

/* One line for the fault-injection tests: what was injected and what it
 * cost, so that a run can be checked against an uninjected one. */
static void fault_report(void) {
  hs_stats_t st;
  hs_get_stats(&st, sizeof st);
  say("heapsnap: fault injection: pid %ld: %llu internal allocations, %llu "
      "failed; %llu traces dropped (%llu bytes), %llu traced\n",
      (long)getpid(), (unsigned long long)atomic_load(&fault.calls),
      (unsigned long long)atomic_load(&fault.failed),
      (unsigned long long)st.dropped_traces,
      (unsigned long long)st.dropped_bytes,
      (unsigned long long)st.alloc_calls);
}

/* Stops the writer and writes the last snapshots. */
static void session_exit(void) {
  if (!active)
    return;
  active = 0;
  hs__guard_enter();
  int saved = errno;
  int joined = 1;
  if (writer_started) {
    disarm();
    wake(WAKE_QUIT);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 5; /* never hang the host's exit on a slow disk */
    if (pthread_timedjoin_np(writer, NULL, &ts) != 0) {
      pthread_detach(writer);
      joined = 0; /* it still owns its state */
      unsigned owed = atomic_load(&growth_pending);
      atomic_fetch_add(&lost, owed);
      atomic_fetch_add(&attempted, owed);
      say("heapsnap: pid %ld: the snapshot writer did not finish within "
          "5 s of the exit; %u growth snapshot%s owed not written\n",
          (long)getpid(), owed, owed == 1 ? "" : "s");
    }
  }
  atomic_store(&warm_stop, 1);
  if (joined)
    write_peak();
  if (cfg.at_exit && hs_is_tracing()) {
    if (hs__loader_unsafe && !hs__modules_prefork_ok())
      /* Forked while a thread held the loader's lock, and without the
       * module list the fork took before: the capture would wait on that
       * lock for ever. */
      say("heapsnap: pid %ld: no exit snapshot: forked while another "
          "thread held the dynamic loader's lock\n",
          (long)getpid());
    else {
      /* The check stops and resumes the other threads itself; a failure
       * leaves the snapshot without classes, never the exit changed. It
       * reads the module list through the loader, so not in a child that
       * may have inherited the loader's lock held. */
      if (cfg.leaks && !hs__loader_unsafe)
        (void)hs_leak_check(NULL);
      write_snapshot(NULL);
    }
  }
  errno = saved;
  hs__guard_exit();
}

/* The exit's account of what was lost, when the first failure's line
 * does not already say it all (one snapshot, lost at this exit). */
static void loss_report(int exit_failed_alone) {
  unsigned n = atomic_load(&lost);
  if (n == 0 || exit_failed_alone ||
      !atomic_load_explicit(&first_ready, memory_order_acquire))
    return;
  say("heapsnap: %s (pid %ld): %u of %u snapshot%s could not be written; "
      "the first: %s\n",
      progname[0] ? progname : "process", (long)getpid(), n,
      atomic_load(&attempted), atomic_load(&attempted) == 1 ? "" : "s",
      first_fail);
}

void hs__session_exit(void) {
  unsigned before = atomic_load(&lost);
  session_exit();
  /* The reports: heapsnap's own work, which leaves the host's errno. */
  hs__guard_enter();
  int saved = errno;
  if (cfg.unwind == HS_UNWIND_VERIFY)
    hs__unwind_report(getenv("HEAPSNAP_UNWIND_LOG"));
  if (atomic_load(&lost))
    loss_report(before == 0 && atomic_load(&lost) == 1);
  uint64_t cut = atomic_load_explicit(&hs__unwind_truncated,
                                      memory_order_relaxed);
  if (cut && cfg.frames > 0)
    say("heapsnap: pid %ld: %llu stack%s cut short (forked while another "
        "thread held the dynamic loader's lock: outer frames missing)\n",
        (long)getpid(), (unsigned long long)cut, cut == 1 ? "" : "s");
  if (fault.on)
    fault_report();
  errno = saved;
  hs__guard_exit();
}
