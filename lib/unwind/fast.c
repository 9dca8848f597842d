/* fast.c - stack capture from the rules of each return address (cfi.c):
 * a frame-pointer frame or one whose CFA is rsp or rbp plus a constant is
 * two or three loads, checked against the thread's stack; anything else is
 * stepped by libunwind, one frame at a time. The part of the stack walked
 * from the first frame that is not a frame-pointer one is remembered per
 * thread and reused while the return addresses it was read from are
 * unchanged: its id cell then spares the trace layer the hashing. */
#define _GNU_SOURCE /* pthread_getattr_np */
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "unwind.h"

int hs__unwind_mode = HS_UNWIND_FAST;

/* The walk and the memo's check read other frames' slots on purpose (each
 * read inside the thread's stack): under ASan those may be red zones of
 * frames that are live now, which is no error here. */
#if defined(__has_attribute)
#if __has_attribute(no_sanitize_address)
#define STACK_READER __attribute__((no_sanitize_address))
#endif
#endif
#ifndef STACK_READER
#define STACK_READER
#endif

void hs__unwind_set_mode(int mode) {
  __atomic_store_n(&hs__unwind_mode, mode, __ATOMIC_RELAXED);
}

/* ---- the rules this thread met last ---- */
/* The shared table's entries are spread over 256 KiB, and between two
 * captures a program that works through more memory than the cache holds
 * evicts them (on the C workload, most of a capture's time was those
 * misses). Dropped with the shared table (hs__rules_gen). */
#define SEEN_BITS 11
static __thread uint64_t seen[1u << SEEN_BITS]
    __attribute__((tls_model("initial-exec")));
static __thread unsigned seen_gen __attribute__((tls_model("initial-exec")));
static inline unsigned seen_slot(uintptr_t pc) {
  return (unsigned)(((uint64_t)pc * 0x9E3779B97F4A7C15ull) >>
                    (64 - SEEN_BITS));
}

static inline unsigned rule_of(uintptr_t pc) {
  uint64_t *c = &seen[seen_slot(pc)];
  if (HS_LIKELY(*c >> HS_RULE_BITS == (uint64_t)pc))
    return (unsigned)*c & HS_RULE_MASK;
  uint64_t w = hs__rule_lookup(pc);
  unsigned r;
  if (w) {
    r = (unsigned)w & HS_RULE_MASK;
  } else {
    r = hs__rule_learn(pc);
    if (r & HS_RULE_TRANSIENT)
      return r & HS_RULE_MASK;
  }
  *c = hs__rule_word(pc, r);
  return r;
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
  if (!hs__loader_enter()) {
    hs__unwind_count_truncated();
    return -1;
  }
  int r = unw_init_local(&c, &uc) < 0 ? -1 : unw_step(&c);
  unw_word_t ip, s, b;
  if (r > 0 && (unw_get_reg(&c, UNW_REG_IP, &ip) < 0 ||
                unw_get_reg(&c, UNW_REG_SP, &s) < 0 ||
                unw_get_reg(&c, UNW_X86_64_RBP, &b) < 0))
    r = -1;
  hs__loader_exit();
  if (r <= 0)
    return r;
  *nip = ip;
  *nsp = s;
  *nbp = b;
  return 1;
}

/* The frames after a signal trampoline at pc, appended to out from n: the
 * trampoline is entered by a return, so libunwind is given pc itself, and
 * restores the interrupted registers from the signal frame. Returns the
 * new count; *end set when the outermost frame was reached. */
static int rest_libunwind(uintptr_t pc, uintptr_t sp, uintptr_t bp,
                          uintptr_t *out, int n, int max, int *end) {
  unw_context_t uc;
  memset(&uc.uc_mcontext, 0, sizeof uc.uc_mcontext);
  uc.uc_mcontext.gregs[REG_RIP] = (greg_t)pc;
  uc.uc_mcontext.gregs[REG_RSP] = (greg_t)sp;
  uc.uc_mcontext.gregs[REG_RBP] = (greg_t)bp;
  unw_cursor_t c;
  if (!hs__loader_enter()) {
    hs__unwind_count_truncated();
    return n;
  }
  if (unw_init_local(&c, &uc) < 0) {
    hs__loader_exit();
    return n;
  }
  int r = 1;
  while (n < max && (r = unw_step(&c)) > 0) {
    unw_word_t ip;
    if (unw_get_reg(&c, UNW_REG_IP, &ip) < 0 || !ip) {
      r = -1;
      break;
    }
    out[n++] = ip;
  }
  hs__loader_exit();
  *end = n < max && r == 0;
  return n;
}

/* ---- the per-thread memo of stacks ---- */
/* Walking by rules is a chain of dependent loads (return address, rule,
 * CFA, next return address): some 12 ns a frame. Checking that a stack is
 * the one seen before is independent loads of the slots its return
 * addresses were read from, and its id cell then spares the hashing and
 * interning too. So each thread remembers its stacks from the first frame
 * on: 256 entries (32 sets of eight, by the frame's address and stack
 * pointer), enough for a program's busy allocation sites. Eight ways,
 * because one site at one depth is often reached from several callers:
 * on the C++ benchmark two ways served 80% of captures, eight 99.99%. An entry cut
 * short by max serves requests for no more frames than it holds; one that
 * reached the outermost frame serves any. */
#define TAIL_MAX 48
#define TAIL_SET_BITS 5
#define TAIL_WAYS 8
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
  uintptr_t bp; /* of the frame it starts at (as bp_key gives it); its pc
                 * and sp are the set's key (pc 0 = none) */
  int n;        /* frames after it */
  int complete; /* the last of them is the outermost */
  uintptr_t ra[TAIL_MAX];
  uint32_t off[TAIL_MAX]; /* where each return address was read, from sp */
} tail_t;

/* Mapped at a thread's first capture rather than static TLS: 170 KiB of
 * static TLS in every thread would not fit the small stacks some hosts
 * give their threads (static TLS lives at the top of the stack). Given
 * back by a key destructor at the thread's exit; a capture after that
 * (a free during teardown allocates nothing, but a destructor may
 * malloc) goes without. */
typedef struct {
  /* Each set's keys side by side (tail_t's pc and sp), so that a look-up
   * reads two cache lines, not one per way. */
  struct {
    uintptr_t pc, sp;
  } key[1u << TAIL_SET_BITS][TAIL_WAYS];
  tail_t e[1u << TAIL_SET_BITS][TAIL_WAYS];
  unsigned char next[1u << TAIL_SET_BITS]; /* the way to replace */
} memo_block_t;
#define MB_DEAD ((memo_block_t *)1)
static __thread memo_block_t *mb __attribute__((tls_model("initial-exec")));
static pthread_key_t mb_key;
static int mb_key_ok;
static pthread_once_t mb_once = PTHREAD_ONCE_INIT;

static void mb_release(void *p) {
  mb = MB_DEAD;
  munmap(p, sizeof(memo_block_t));
}
static void mb_key_make(void) {
  mb_key_ok = pthread_key_create(&mb_key, mb_release) == 0;
}

/* This thread's memo, mapped on first use; NULL without one. */
static memo_block_t *memo_block(void) {
  if (HS_LIKELY(mb != NULL))
    return mb == MB_DEAD ? NULL : mb;
  mb = MB_DEAD; /* until it exists: a signal handler's capture goes without */
  pthread_once(&mb_once, mb_key_make);
  if (!mb_key_ok)
    return NULL;
  void *p = mmap(NULL, sizeof(memo_block_t), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return NULL;
  if (pthread_setspecific(mb_key, p) != 0) {
    munmap(p, sizeof(memo_block_t));
    return NULL;
  }
  mb = p;
  return mb;
}

static inline unsigned tail_set(uintptr_t pc, uintptr_t sp) {
  uint64_t h = ((uint64_t)pc ^ (uint64_t)sp << 17) * 0x9E3779B97F4A7C15ull;
  return (unsigned)(h >> (64 - TAIL_SET_BITS));
}

/* Drops this thread's copies once the shared rules were dropped, after
 * checking whether a module came or went. */
static inline void seen_sync(void) {
  if (HS_UNLIKELY(atomic_load_explicit(&hs__modules_dirty,
                                       memory_order_relaxed)))
    hs__unwind_check_modules();
  unsigned g = atomic_load_explicit(&hs__rules_gen, memory_order_acquire);
  if (HS_UNLIKELY(g != seen_gen)) {
    memset(seen, 0, sizeof seen);
    memo_block_t *b = memo_block();
    if (b)
      memset(b->key, 0, sizeof b->key);
    seen_gen = g;
  }
}


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
STACK_READER static tail_t *tail_find(memo_block_t *b, uintptr_t pc,
                                      uintptr_t sp, uintptr_t bp, int want) {
  unsigned set = tail_set(pc, sp);
  for (unsigned k = 0; k < TAIL_WAYS; k++) {
    if (b->key[set][k].pc != pc || b->key[set][k].sp != sp)
      continue;
    tail_t *t = &b->e[set][k];
    if (t->bp != bp_key(bp, sp) || (!t->complete && t->n < want))
      continue;
    /* Independent loads: the check runs at the memory's pace, not the
     * chain's. */
    int same = 1;
    for (int i = 0; i < t->n; i++)
      same &= *(const uintptr_t *)(sp + t->off[i]) == t->ra[i];
    if (same)
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

STACK_READER int hs__unwind_fast(uintptr_t *out, int max,
                                 uintptr_t caller_ret, uintptr_t frame,
                                 hs_stack_memo_t **memo, unsigned s) {
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
  seen_sync();
  uintptr_t pc = caller_ret, sp = f + 16, bp = ((const uintptr_t *)f)[0];
  int n = 0;
  out[n++] = pc;
  /* Recording the part from the first frame that is not a frame-pointer
   * one: where it began, and each step; kept aside until the walk proves
   * complete, so that a failed recording never corrupts the remembered
   * one. memo_off: this capture neither consults nor records. */
  int rec = -1, rn = 0, memo_off = 0, at_end = 0;
  uintptr_t rpc = 0, rsp = 0, rbp = 0;
  uintptr_t rra[TAIL_MAX];
  uint32_t roff[TAIL_MAX];
  memo_block_t *mbk = NULL;
  const uintptr_t hi = stack_hi; /* out[] may alias it: keep it local */
  while (n < max) {
    unsigned r = rule_of(pc);
    unsigned t = hs__rule_type(r);
    if (t == HS_RULE_END) {
      at_end = 1;
      break;
    }
    uintptr_t nip, nsp, nbp;
    if (rec < 0 && !memo_off) {
      if (!(mbk = memo_block())) {
        memo_off = 1;
      } else {
        tail_t *tl = tail_find(mbk, pc, sp, bp, max - n);
        if (tl) {
          int hn = n, total = n + (tl->n < max - n ? tl->n : max - n);
          if (memo) {
            *memo = head_memo(&tl->head, out, hn, total);
            /* The caller takes the id from the cell and never reads the
             * frames: a CPython stack is some 30 of them. */
            if (s && *memo && (*memo)->state == s)
              return total;
          }
          for (int i = 0; i < tl->n && n < max; i++)
            out[n++] = tl->ra[i];
          return n;
        }
        rec = 0;
        rn = n;
        rpc = pc;
        rsp = sp;
        rbp = bp;
      }
    }
    if (HS_UNLIKELY(r == HS_RULE_SIGNAL)) {
      n = rest_libunwind(pc, sp, bp, out, n, max, &at_end);
      if (rec >= 0)
        rec = TAIL_MAX + 1; /* its slots are not return addresses' */
      break;
    }
    int stepped = 0;
    if (t != HS_RULE_OTHER) {
      /* Every load is inside the stack, above sp: a rule that does not
       * fit this stack leaves the frame to libunwind. */
      uintptr_t cfa = (t == HS_RULE_SP ? sp : bp) + 8u * hs__rule_a(r);
      unsigned b = hs__rule_b(r);
      uintptr_t low = cfa - 8u * (b > 1 ? b : 1);
      if (cfa <= hi && low >= sp && low < cfa && !(cfa & 7)) {
        nip = ((const uintptr_t *)cfa)[-1];
        nbp = b ? ((const uintptr_t *)cfa)[-(int)b] : bp;
        nsp = cfa;
        stepped = 1;
      }
    }
    if (!stepped) {
      int rs = step_libunwind(pc, sp, bp, &nip, &nsp, &nbp);
      if (rs <= 0) {
        at_end = rs == 0;
        break;
      }
    }
    /* Callers live at higher addresses; anything else is a broken chain. */
    if (!nip || nsp <= sp || nsp > hi)
      break;
    if (rec >= 0 && rec < TAIL_MAX && nsp - 8 - rsp < UINT32_MAX) {
      rra[rec] = nip;
      roff[rec] = (uint32_t)(nsp - 8 - rsp);
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
  if (rec >= 0 && rec <= TAIL_MAX && (at_end || n == max)) {
    unsigned set = tail_set(rpc, rsp), way = mbk->next[set];
    mbk->next[set] = (unsigned char)((way + 1) % TAIL_WAYS);
    tail_t *t = &mbk->e[set][way];
    mbk->key[set][way].pc = rpc;
    mbk->key[set][way].sp = rsp;
    t->bp = bp_key(rbp, rsp);
    t->n = rec;
    t->complete = at_end;
    memcpy(t->ra, rra, (size_t)rec * sizeof *rra);
    memcpy(t->off, roff, (size_t)rec * sizeof *roff);
    t->head.hn = -1;
    if (memo)
      *memo = head_memo(&t->head, out, rn, n);
  }
  return n;
}
