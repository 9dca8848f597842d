/* fast.c - stack capture by frame pointers where the code has them, and by
 * libunwind, one frame at a time, where it does not.
 *
 * Whether a return address lies in code that keeps a frame pointer is a
 * property of the address, learned once from libunwind (which reads the
 * DWARF call-frame information) and kept in a table shared by all threads.
 * A frame-pointer step is two loads, checked against the thread's stack;
 * a libunwind step costs a cursor set-up and a CFI look-up, so the part of
 * the stack that libunwind walked (typically the C library's frames below
 * main or a thread's start routine) is remembered per thread and reused
 * while the return addresses it was read from are unchanged. */
#define _GNU_SOURCE /* pthread_getattr_np */
#include <pthread.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "unwind.h"

int hs__unwind_mode = HS_UNWIND_FAST;

void hs__unwind_set_mode(int mode) {
  __atomic_store_n(&hs__unwind_mode, mode, __ATOMIC_RELAXED);
}

/* ---- what kind of frame a return address is in ---- */
enum { K_UNKNOWN, K_FP, K_OTHER, K_END };
#define KIND_BITS 14
#define KIND_SLOTS (1u << KIND_BITS)
#define KIND_PROBES 4
/* address << 2 | kind; 0 = empty. One word, so a reader never sees half
 * of another writer's entry. */
static _Atomic uint64_t kinds[KIND_SLOTS];

static inline unsigned kind_home(uintptr_t pc) {
  uint64_t h = (uint64_t)pc * 0x9E3779B97F4A7C15ull;
  return (unsigned)(h >> (64 - KIND_BITS));
}

static inline int kind_get(uintptr_t pc) {
  unsigned i = kind_home(pc);
  for (unsigned k = 0; k < KIND_PROBES; k++) {
    uint64_t w = atomic_load_explicit(&kinds[(i + k) & (KIND_SLOTS - 1)],
                                      memory_order_relaxed);
    if (w >> 2 == (uint64_t)pc)
      return (int)(w & 3);
    if (!w)
      return K_UNKNOWN;
  }
  return K_UNKNOWN;
}

static void kind_put(uintptr_t pc, int kind) {
  unsigned i = kind_home(pc);
  uint64_t w = (uint64_t)pc << 2 | (uint64_t)kind;
  for (unsigned k = 0; k < KIND_PROBES; k++) {
    _Atomic uint64_t *e = &kinds[(i + k) & (KIND_SLOTS - 1)];
    uint64_t old = atomic_load_explicit(e, memory_order_relaxed);
    if (!old || old >> 2 == (uint64_t)pc) {
      atomic_store_explicit(e, w, memory_order_relaxed);
      return;
    }
  }
  /* Full neighbourhood: the address is learned again next time. */
}

/* The frame-pointer return addresses this thread met last, four cache
 * lines of them: the shared table's entries are spread over 128 KiB, and
 * between two captures a program that works through more memory than the
 * cache holds evicts them (on the C workload, most of a capture's time was
 * those misses). A kind never changes once learned. */
#define FP_SEEN_BITS 5
static __thread uintptr_t fp_seen[1u << FP_SEEN_BITS]
    __attribute__((tls_model("initial-exec")));
static inline unsigned fp_seen_slot(uintptr_t pc) {
  return (unsigned)(((uint64_t)pc * 0x9E3779B97F4A7C15ull) >>
                    (64 - FP_SEEN_BITS));
}

/* ---- the thread's stack ---- */
static __thread uintptr_t stack_lo __attribute__((tls_model("initial-exec")));
static __thread uintptr_t stack_hi __attribute__((tls_model("initial-exec")));

extern void *__libc_stack_end; /* ld.so: the main stack's top at start */

static void find_stack(void) {
  stack_hi = 1; /* tried; an error leaves libunwind in charge */
  if (syscall(SYS_gettid) == getpid()) {
    /* The main thread: pthread_getattr_np would read /proc/self/maps
     * through stdio, whose lock a signal handler may have interrupted. */
    struct rlimit rl;
    uintptr_t top = ((uintptr_t)__libc_stack_end + 4095) & ~(uintptr_t)4095;
    size_t size = 8u << 20;
    if (getrlimit(RLIMIT_STACK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < (1ull << 32))
      size = (size_t)rl.rlim_cur;
    if (top > size) {
      stack_lo = top - size;
      stack_hi = top;
    }
    return;
  }
  pthread_attr_t a;
  void *addr;
  size_t size;
  if (pthread_getattr_np(pthread_self(), &a) != 0)
    return;
  if (pthread_attr_getstack(&a, &addr, &size) == 0) {
    stack_lo = (uintptr_t)addr;
    stack_hi = (uintptr_t)addr + size;
  }
  pthread_attr_destroy(&a);
}

static int stack_bounds(uintptr_t sp) {
  if (HS_UNLIKELY(!stack_hi))
    find_stack();
  /* Off the thread's stack (a signal handler on an alternate stack, a
   * coroutine's own stack): libunwind knows how to cross those. */
  return sp >= stack_lo && sp < stack_hi;
}

/* Whether bp can be the frame pointer of a frame at sp, on a stack that
 * ends at hi: the caller's frame is above this one and within the stack. */
static inline int fp_ok_below(uintptr_t bp, uintptr_t sp, uintptr_t hi) {
  return bp >= sp && bp <= hi - 16 && !(bp & 7);
}
static inline int fp_ok(uintptr_t bp, uintptr_t sp) {
  return fp_ok_below(bp, sp, stack_hi);
}

/* ---- one libunwind step from a frame's registers ---- */
/* 1 with the caller's registers, 0 at the outermost frame, -1 lost. pc is a
 * return address, so the CFI is looked up at pc - 1, inside the call. */
static int step_libunwind(uintptr_t pc, uintptr_t sp, uintptr_t bp,
                          uintptr_t *nip, uintptr_t *nsp, uintptr_t *nbp) {
  unw_context_t uc;
  memset(&uc.uc_mcontext, 0, sizeof uc.uc_mcontext);
  uc.uc_mcontext.gregs[REG_RIP] = (greg_t)(pc - 1);
  uc.uc_mcontext.gregs[REG_RSP] = (greg_t)sp;
  uc.uc_mcontext.gregs[REG_RBP] = (greg_t)bp;
  unw_cursor_t c;
  if (unw_init_local(&c, &uc) < 0)
    return -1;
  int r = unw_step(&c);
  if (r <= 0)
    return r;
  unw_word_t ip, s, b;
  if (unw_get_reg(&c, UNW_REG_IP, &ip) < 0 ||
      unw_get_reg(&c, UNW_REG_SP, &s) < 0 ||
      unw_get_reg(&c, UNW_X86_64_RBP, &b) < 0)
    return -1;
  *nip = ip;
  *nsp = s;
  *nbp = b;
  return 1;
}

/* ---- the per-thread memo of the libunwind-walked part ---- */
/* A few entries, so that the handful of allocation sites a loop cycles
 * through (CPython's object, dict and string allocations, say) each keep
 * theirs. An entry cut short by max serves requests for no more frames
 * than it holds; one that reached the outermost frame serves any. */
#define TAIL_MAX 48
#define TAILS 8
/* The frames walked before an entry's part (by frame pointer, so not
 * remembered by it), up to HEAD_MAX of them: when they are the same as the
 * last time, so is the whole stack, and its id cell is still good. */
#define HEAD_MAX 4
typedef struct {
  int hn; /* -1: none */
  int n;  /* frames in all, which max may have cut short */
  uintptr_t f[HEAD_MAX];
  hs_stack_memo_t memo;
} head_t;

typedef struct {
  head_t head;
  uintptr_t pc, sp, bp; /* the frame it starts at (bp as bp_key gives it);
                         * pc 0 = none */
  int n;                /* frames after it */
  int complete;         /* the last of them is the outermost */
  uintptr_t ra[TAIL_MAX];
  uintptr_t slot[TAIL_MAX]; /* where each return address was read */
} tail_t;
static __thread tail_t tails[TAILS] __attribute__((tls_model("initial-exec")));
static __thread unsigned tail_next __attribute__((tls_model("initial-exec")));

/* When the libunwind-walked part keeps changing (code without frame
 * pointers all the way up, as in most distribution binaries), walking it
 * a frame at a time costs far more than unw_backtrace, whose own cache
 * serves such stacks. So the walks that need libunwind are counted per
 * window of captures that reach such a frame: past MISSES_PER_WINDOW (an
 * eighth: a miss costs a few unw_backtrace calls, a hit next to nothing),
 * a capture that the memo cannot serve steps aside for unw_backtrace, for
 * a number of such captures that doubles each time, up to SKIP_MAX; and
 * halves after each window that stays under it, so that a burst of new
 * stacks (a program's start-up, say) does not cost the rest of the run. */
#define WINDOW 256
#define MISSES_PER_WINDOW 32
#define SKIP_MIN 1024
#define SKIP_MAX (1u << 16)
static __thread struct {
  unsigned seen;   /* captures in this window that met such a frame */
  unsigned misses; /* of those, walks the memo could not serve */
  unsigned skip;   /* memo misses left to unw_backtrace */
  unsigned next_skip;
} adapt __attribute__((tls_model("initial-exec")));

/* The part of a frame's rbp that can decide the walk above it. Code
 * without frame pointers keeps any value in rbp, mostly heap pointers, and
 * keying on those would miss for every new object. A CFA computed from
 * rbp (a frame pointer, stack realignment) needs an rbp on the stack, and
 * one that is not would break the walk, which is then not remembered. A
 * frame further up gets its rbp from a slot in the frame below it, at an
 * address fixed by the return-address slots the memo checks. */
static inline uintptr_t bp_key(uintptr_t bp, uintptr_t sp) {
  return bp >= sp && bp < stack_hi ? bp : 0;
}

/* The entry that can give the frames after (pc, sp, bp), want of them,
 * with every return address still where it was read; or NULL. */
static tail_t *tail_find(uintptr_t pc, uintptr_t sp, uintptr_t bp,
                         int want) {
  for (unsigned k = 0; k < TAILS; k++) {
    tail_t *t = &tails[k];
    if (t->pc != pc || t->sp != sp || t->bp != bp_key(bp, sp) ||
        (!t->complete && t->n < want))
      continue;
    int i = 0;
    while (i < t->n && *(const uintptr_t *)t->slot[i] == t->ra[i])
      i++;
    if (i == t->n)
      return t;
  }
  return NULL;
}

/* The id cell for a stack of total frames whose first hn, out[0..hn),
 * come before an entry's part. */
static hs_stack_memo_t *head_memo(head_t *h, const uintptr_t *out, int hn,
                                  int total) {
  if (hn > HEAD_MAX)
    return NULL;
  int same = h->hn == hn && h->n == total;
  for (int i = 0; same && i < hn; i++) /* a few frames: no memcmp call */
    same = h->f[i] == out[i];
  if (!same) {
    h->hn = hn;
    h->n = total;
    memcpy(h->f, out, (size_t)hn * sizeof *out);
    h->memo.state = 0;
  }
  return &h->memo;
}

int hs__unwind_fast(uintptr_t *out, int max, uintptr_t caller_ret,
                    uintptr_t frame, hs_stack_memo_t **memo, unsigned s) {
  /* heapsnap's own frames keep frame pointers (the build says so): follow
   * them to the one whose return address is the host's call. */
  uintptr_t f = frame;
  if (!stack_bounds(f))
    return 0;
  int own = 0;
  while (((const uintptr_t *)f)[1] != caller_ret) {
    uintptr_t up = ((const uintptr_t *)f)[0];
    if (++own > HS_OWN_FRAMES_MAX || !fp_ok(up, f + 16))
      return 0;
    f = up;
  }
  uintptr_t pc = caller_ret, sp = f + 16, bp = ((const uintptr_t *)f)[0];
  int n = 0;
  out[n++] = pc;
  /* Recording the libunwind-walked part: where it began, and each step;
   * kept aside until the walk proves complete, so that a failed recording
   * never corrupts the remembered one. */
  int rec = -1, rn = 0;
  uintptr_t rpc = 0, rsp = 0, rbp = 0;
  uintptr_t rra[TAIL_MAX], rslot[TAIL_MAX];
  const uintptr_t hi = stack_hi; /* out[] may alias it: keep it local */
  while (n < max) {
    if (rec < 0) {
      /* The common frame, in as few instructions as it takes: a return
       * address this thread has seen as a frame-pointer one (or found so
       * at its home slot in the shared table), and a frame pointer inside
       * the stack. */
      uintptr_t *seen = &fp_seen[fp_seen_slot(pc)];
      int fp = *seen == pc;
      if (!fp && atomic_load_explicit(&kinds[kind_home(pc)],
                                      memory_order_relaxed) ==
                     ((uint64_t)pc << 2 | K_FP)) {
        *seen = pc;
        fp = 1;
      }
      if (fp && fp_ok_below(bp, sp, hi)) {
        uintptr_t nip = ((const uintptr_t *)bp)[1];
        if (!nip)
          break;
        out[n++] = nip;
        pc = nip;
        sp = bp + 16;
        bp = ((const uintptr_t *)bp)[0];
        continue;
      }
    }
    int kind = kind_get(pc);
    uintptr_t nip, nsp, nbp;
    int stepped = 0;
    if (kind == K_UNKNOWN) {
      /* First sight of this address: libunwind's step says what kind of
       * frame it is (and serves as this frame's step). */
      int r = step_libunwind(pc, sp, bp, &nip, &nsp, &nbp);
      if (r <= 0) {
        if (r == 0)
          kind_put(pc, K_END);
        break;
      }
      kind = fp_ok(bp, sp) && nsp == bp + 16 &&
                     ((const uintptr_t *)bp)[1] == nip &&
                     ((const uintptr_t *)bp)[0] == nbp
                 ? K_FP
                 : K_OTHER;
      kind_put(pc, kind);
      stepped = 1;
    }
    if (kind == K_END)
      break;
    if (kind == K_FP && fp_ok(bp, sp)) {
      if (!stepped) {
        nip = ((const uintptr_t *)bp)[1];
        nbp = ((const uintptr_t *)bp)[0];
        nsp = bp + 16;
      }
    } else {
      if (rec < 0) {
        if (++adapt.seen >= WINDOW) {
          adapt.seen = 0;
          adapt.misses = 0;
          adapt.next_skip /= 2;
          if (adapt.next_skip < SKIP_MIN)
            adapt.next_skip = 0;
        }
        tail_t *t = tail_find(pc, sp, bp, max - n);
        if (t) {
          int hn = n, total = n + (t->n < max - n ? t->n : max - n);
          if (memo) {
            *memo = head_memo(&t->head, out, hn, total);
            /* The caller takes the id from the cell and never reads the
             * frames: a CPython stack is some 30 of them. */
            if (s && *memo && (*memo)->state == s)
              return total;
          }
          for (int i = 0; i < t->n && n < max; i++)
            out[n++] = t->ra[i];
          return n;
        }
        if (adapt.skip) {
          adapt.skip--;
          return 0;
        }
      }
      if (!stepped) {
        int r = step_libunwind(pc, sp, bp, &nip, &nsp, &nbp);
        if (r <= 0) {
          if (r == 0)
            kind_put(pc, K_END);
          break;
        }
      }
      if (rec < 0) {
        rec = 0;
        rn = n;
        rpc = pc;
        rsp = sp;
        rbp = bp;
      }
    }
    /* Callers live at higher addresses; anything else is a broken chain. */
    if (!nip || nsp <= sp || nsp > stack_hi)
      break;
    if (rec >= 0 && rec < TAIL_MAX) {
      rra[rec] = nip;
      rslot[rec] = nsp - 8;
      rec++;
    } else if (rec >= 0) {
      rec = TAIL_MAX + 1; /* too long to remember */
    }
    out[n++] = nip;
    pc = nip;
    sp = nsp;
    bp = nbp;
  }
  /* Remembered when it reached the outermost frame or was cut short by
   * max (then it serves requests for no more frames), not when the chain
   * broke. */
  int complete = kind_get(pc) == K_END;
  if (rec >= 0 && rec <= TAIL_MAX && (complete || n == max)) {
    tail_t *t = &tails[tail_next++ % TAILS];
    t->pc = rpc;
    t->sp = rsp;
    t->bp = bp_key(rbp, rsp);
    t->n = rec;
    t->complete = complete;
    memcpy(t->ra, rra, (size_t)rec * sizeof *rra);
    memcpy(t->slot, rslot, (size_t)rec * sizeof *rslot);
    t->head.hn = -1;
    if (memo)
      *memo = head_memo(&t->head, out, rn, n);
  }
  if (rec >= 0 && ++adapt.misses >= MISSES_PER_WINDOW) {
    adapt.seen = 0;
    adapt.misses = 0;
    adapt.next_skip = adapt.next_skip ? adapt.next_skip * 2 : SKIP_MIN;
    if (adapt.next_skip > SKIP_MAX)
      adapt.next_skip = SKIP_MAX;
    adapt.skip = adapt.next_skip;
  }
  return n;
}
