/* unwind.h - stack capture: the raw return addresses of the allocating call
 * stack, without heapsnap's own frames. */
#ifndef HS_UNWIND_H
#define HS_UNWIND_H

#include <stdint.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <string.h>

#include "../common/internal.h"

/* heapsnap's own frames above the caller: the unwinder entry, the recorder
 * and the interposed function, with room for a few more in debug builds. */
#define HS_OWN_FRAMES_MAX 8

/* How stacks are captured: frame pointers with libunwind per frame where
 * they are missing (the default), or libunwind's unw_backtrace for every
 * frame (HEAPSNAP_UNWIND=libunwind, to compare). */
enum { HS_UNWIND_FAST, HS_UNWIND_LIBUNWIND, HS_UNWIND_VERIFY };
extern int hs__unwind_mode;
HS_HIDDEN void hs__unwind_set_mode(int mode);
/* ---- unwinding rules by return address (cfi.c) ---- */
/* A rule in 17 bits beside the 47-bit address in one 64-bit word, so a
 * reader never sees half of another writer's entry: type (2 bits), a (10)
 * and b (5): CFA = (rsp for SP, rbp for BP) + 8a, the return address at
 * CFA - 8, rbp unchanged (b = 0) or saved at CFA - 8b. */
enum { HS_RULE_END, HS_RULE_SP, HS_RULE_BP, HS_RULE_OTHER };
#define HS_RULE_BITS 17
#define HS_RULE_A_MAX 1023
#define HS_RULE_B_MAX 31
#define HS_RULE_SLOT_BITS 15
#define HS_RULE_SLOTS (1u << HS_RULE_SLOT_BITS)
#define HS_RULE_PROBES 4
#define HS_RULE_MASK ((1u << HS_RULE_BITS) - 1)
/* Beside a learned rule: it was not stored, so keep no copy of it. */
#define HS_RULE_TRANSIENT (1u << 31)
/* A signal trampoline: the frame above it is the interrupted one, at an
 * exact address with every register in the signal frame, so libunwind
 * walks the rest of that stack. */
#define HS_RULE_SIGNAL (HS_RULE_OTHER | 1u << 2)
/* The rule of a frame-pointer frame: CFA = rbp + 16, rbp saved at CFA - 16. */
#define HS_RULE_FP (HS_RULE_BP | 2u << 2 | 2u << 12)
extern HS_HIDDEN _Atomic uint64_t hs__rules[HS_RULE_SLOTS];
/* Bumped when the rules are dropped (a module went away). */
extern HS_HIDDEN _Atomic unsigned hs__rules_gen;
/* Set when a module may have come or gone: the next capture checks. */
extern HS_HIDDEN _Atomic int hs__modules_dirty;
/* ld.so's mapping: an allocator call from there may be dlopen's or
 * dlclose's. */
extern HS_HIDDEN uintptr_t hs__ldso_lo, hs__ldso_len;

static inline unsigned hs__rule_make(unsigned type, unsigned a, unsigned b) {
  return type | a << 2 | b << 12;
}
static inline unsigned hs__rule_type(unsigned r) { return r & 3; }
static inline unsigned hs__rule_a(unsigned r) { return r >> 2 & 1023; }
static inline unsigned hs__rule_b(unsigned r) { return r >> 12; }
static inline uint64_t hs__rule_word(uintptr_t pc, unsigned rule) {
  return (uint64_t)pc << HS_RULE_BITS | rule;
}
static inline unsigned hs__rule_home(uintptr_t pc) {
  uint64_t h = (uint64_t)pc * 0x9E3779B97F4A7C15ull;
  return (unsigned)(h >> (64 - HS_RULE_SLOT_BITS));
}
/* The rule word stored for pc, or 0. */
static inline uint64_t hs__rule_lookup(uintptr_t pc) {
  unsigned i = hs__rule_home(pc);
  for (unsigned k = 0; k < HS_RULE_PROBES; k++) {
    uint64_t w = atomic_load_explicit(&hs__rules[(i + k) & (HS_RULE_SLOTS - 1)],
                                      memory_order_relaxed);
    if (w >> HS_RULE_BITS == (uint64_t)pc || !w)
      return w;
  }
  return 0;
}
/* Reads pc's rule from its module's CFI and stores it; OTHER when there is
 * none that fits (then libunwind steps the frame). Takes the learning
 * lock, never waiting for it. */
HS_HIDDEN unsigned hs__rule_learn(uintptr_t pc);
/* A module may have been loaded or unloaded (the interposer saw ld.so
 * allocate or free); the next capture checks, lock-free. */
HS_HIDDEN void hs__unwind_modules_changed(void);
/* Whether a call into the allocator from caller may load or unload a
 * module: ld.so allocates only then (and for threads' TLS). */
static inline void hs__unwind_note_caller(uintptr_t caller) {
  if (HS_UNLIKELY(caller - hs__ldso_lo < hs__ldso_len))
    hs__unwind_modules_changed();
}
HS_HIDDEN void hs__unwind_check_modules(void);
HS_HIDDEN void hs__unwind_cfi_init(void);
HS_HIDDEN void hs__unwind_cfi_stats(uint64_t *learned, uint64_t *other,
                                    uint64_t *busy);
/* Captures cut short because libunwind could not be called (a fork child
 * that inherited the loader's lock held): counted, never waited for. */
extern HS_HIDDEN atomic_uint_least64_t hs__unwind_truncated;
static inline void hs__unwind_count_truncated(void) {
  atomic_fetch_add_explicit(&hs__unwind_truncated, 1, memory_order_relaxed);
}
/* The learning lock, in the fork table. */
HS_HIDDEN void hs__unwind_fork_prepare(void);
HS_HIDDEN void hs__unwind_fork_parent(void);
HS_HIDDEN void hs__unwind_fork_child(void);

/* HEAPSNAP_UNWIND=verify: every capture is also made by unw_backtrace and
 * the two compared; the counts go to the file named by
 * HEAPSNAP_UNWIND_LOG at exit (appended, a line per process). */
HS_HIDDEN void hs__unwind_verify(const uintptr_t *got, int n, int max,
                                 uintptr_t caller_ret);
HS_HIDDEN void hs__unwind_report(const char *path);

/* The fast capture (fast.c), from frame, the frame address of the function
 * that inlined hs__unwind_capture: 0 when it cannot start there (then
 * unw_backtrace does the work). With memo, *memo is set to the id cell
 * that goes with exactly these frames, or NULL; and when that cell already
 * holds an id for tracing state s (non-zero), the frames after the first
 * few are not written, since the caller will not read them. */
HS_HIDDEN int hs__unwind_fast(uintptr_t *out, int max, uintptr_t caller_ret,
                              uintptr_t frame, hs_stack_memo_t **memo,
                              unsigned s);

/* Stores up to max frames in out, most recent first, starting at the frame
 * whose return address is caller_ret (the interposed function's
 * __builtin_return_address(0)). Returns the number stored (>= 1), and
 * in *memo the id cell that goes with exactly these frames, or NULL.
 * Given a tracing state s, a returned cell that holds the id for s may
 * come with frames left unwritten: the caller must take the id from it.
 * Inline, so that the function that calls it is the only heapsnap frame
 * the unwinder walks through.
 * hot path: no allocation, no lock of heapsnap's. */
static inline __attribute__((always_inline)) int
hs__unwind_capture_memo(uintptr_t *out, int max, uintptr_t caller_ret,
                        hs_stack_memo_t **memo, unsigned s) {
  *memo = NULL;
  if (max <= 1 || caller_ret == 0) {
    out[0] = caller_ret;
    return 1;
  }
  int mode = __atomic_load_n(&hs__unwind_mode, __ATOMIC_RELAXED);
  if (HS_LIKELY(mode == HS_UNWIND_FAST)) {
    int got = hs__unwind_fast(out, max, caller_ret,
                              (uintptr_t)__builtin_frame_address(0), memo, s);
    if (got > 0)
      return got;
  } else if (mode == HS_UNWIND_VERIFY) {
    /* Every frame written (no state), then checked against libunwind. */
    int got = hs__unwind_fast(out, max, caller_ret,
                              (uintptr_t)__builtin_frame_address(0), memo, 0);
    if (got > 0) {
      hs__unwind_verify(out, got, max, caller_ret);
      return got;
    }
  }
  void *buf[HS_MAX_FRAMES + HS_OWN_FRAMES_MAX];
  if (HS_UNLIKELY(!hs__loader_enter())) {
    /* A fork child whose loader lock may be held: the one exact frame. */
    hs__unwind_count_truncated();
    out[0] = caller_ret;
    return 1;
  }
  int n = unw_backtrace(buf, max + HS_OWN_FRAMES_MAX);
  hs__loader_exit();
  int skip = -1;
  for (int i = 0; i < n && i < HS_OWN_FRAMES_MAX + 1; i++) {
    if ((uintptr_t)buf[i] == caller_ret) {
      skip = i;
      break;
    }
  }
  if (skip < 0) {
    /* The unwinder lost the caller (no unwind info for it): the address the
     * interposer saw is still exact, so keep that one frame. */
    out[0] = caller_ret;
    return 1;
  }
  int got = n - skip;
  if (got > max)
    got = max;
  memcpy(out, buf + skip, (size_t)got * sizeof *out);
  return got;
}

/* The same, without the id cell. */
static inline __attribute__((always_inline)) int
hs__unwind_capture(uintptr_t *out, int max, uintptr_t caller_ret) {
  hs_stack_memo_t *memo;
  return hs__unwind_capture_memo(out, max, caller_ret, &memo, 0);
}

/* Unwinds once so that libunwind's lazy set-up (and its first, slow
 * dl_iterate_phdr) happens before tracing, not inside a host's malloc;
 * finds ld.so, and has the next capture check the rules' modules. */
HS_HIDDEN void hs__unwind_warm_up(void);

#endif
