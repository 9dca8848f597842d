/* interpose.c - the malloc family as heapsnap exports it: each function
 * forwards to the real allocator and, while tracing, records or forgets the
 * block; and the bootstrap (dlsym needs calloc before the real one is
 * known). A leaf: it calls down into trace and unwind only. */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../trace/trace.h"
#include "../unwind/unwind.h"
#include "interpose.h"
#include "real.h"

#define EXPORT __attribute__((visibility("default")))
#define CALLER ((uintptr_t)__builtin_return_address(0))

static hs_real_allocator_t real;
/* 0: nothing resolved; 1: resolving (dlsym may call back); 2: ready. */
static atomic_int ready;

/* ---- bootstrap pool: serves what dlsym allocates before `real` exists.
 * Its blocks are never freed; free() and realloc() recognise them. */
#define POOL_SIZE (64 * 1024)
static _Alignas(64) unsigned char pool[POOL_SIZE];
static atomic_size_t pool_used;

typedef struct {
  size_t size;
  size_t pad;
} pool_hdr_t;
/* Each block takes a header and at least 16 bytes of alignment slack. */
_Static_assert(POOL_SIZE / (sizeof(pool_hdr_t) + 16) <= HS_FILTER_PINS,
               "every pool block can be pinned in sampling's filter");

static inline int in_pool(const void *p) {
  return (uintptr_t)p - (uintptr_t)pool < POOL_SIZE;
}

static void *pool_alloc(size_t size, size_t align) {
  if (align < 16)
    align = 16;
  if (size > POOL_SIZE || align > 4096) {
    errno = ENOMEM;
    return NULL;
  }
  size_t need = sizeof(pool_hdr_t) + size + align;
  size_t off = atomic_fetch_add(&pool_used, need);
  if (off + need > POOL_SIZE) {
    errno = ENOMEM;
    return NULL;
  }
  uintptr_t start = (uintptr_t)(pool + off) + sizeof(pool_hdr_t);
  uintptr_t p = (start + align - 1) & ~(uintptr_t)(align - 1);
  ((pool_hdr_t *)p)[-1].size = size;
  /* free() while sampling trusts the filter before it checks the pool. */
  hs__filter_pin(p);
  return (void *)p;
}

static size_t pool_size(const void *p) {
  return ((const pool_hdr_t *)p)[-1].size;
}

/* glibc's own entry points: used only when dlsym finds no next allocator
 * (a static link with no other definition). */
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);

static int fallback_posix_memalign(void **out, size_t align, size_t size) {
  if (align % sizeof(void *) != 0 || (align & (align - 1)) != 0 || align == 0)
    return EINVAL;
  int saved = errno;
  void *p = real.memalign(align, size);
  if (!p)
    return ENOMEM;
  errno = saved;
  *out = p;
  return 0;
}

static void *fallback_aligned_alloc(size_t align, size_t size) {
  return real.memalign(align, size);
}

#define RESOLVE(field, name, fallback)                                        \
  do {                                                                        \
    void *sym = dlsym(RTLD_NEXT, name);                                       \
    memcpy(&real.field, &sym, sizeof sym);                                    \
    if (!real.field)                                                          \
      real.field = fallback;                                                  \
  } while (0)

static void resolve(void) {
  int expect = 0;
  if (!atomic_compare_exchange_strong(&ready, &expect, 1))
    return; /* another call is resolving: its callers use the pool */
  hs__guard_enter();
  RESOLVE(malloc, "malloc", __libc_malloc);
  RESOLVE(calloc, "calloc", __libc_calloc);
  RESOLVE(realloc, "realloc", __libc_realloc);
  RESOLVE(free, "free", __libc_free);
  RESOLVE(memalign, "memalign", __libc_memalign);
  RESOLVE(posix_memalign, "posix_memalign", fallback_posix_memalign);
  RESOLVE(aligned_alloc, "aligned_alloc", fallback_aligned_alloc);
  RESOLVE(valloc, "valloc", __libc_valloc);
  RESOLVE(pvalloc, "pvalloc", __libc_pvalloc);
  RESOLVE(malloc_usable_size, "malloc_usable_size", NULL);
  hs__guard_exit();
  atomic_store(&ready, 2);
  hs__fast_allow();
}

static inline int is_ready(void) {
  if (HS_LIKELY(atomic_load_explicit(&ready, memory_order_acquire) == 2))
    return 1;
  resolve();
  return atomic_load(&ready) == 2;
}

/* Whether this call should be recorded: tracing, and not heapsnap's own. */
static inline int tracing_here(void) {
  return hs__state_tracing(hs__state_now()) && !hs__guard;
}

/* Inlined into its callers: every frame between the host's call and the
 * unwinder is one more frame to walk. */
/* Sampling passes most calls over on its fast paths, ld.so's among them,
 * so a sampled capture cannot trust that a module change was seen: it has
 * the unwinder check its modules (cheap at sampling's rate). */
static inline void sampled_capture_checks(void) {
  if (atomic_load_explicit(&hs__sample_rate, memory_order_relaxed))
    hs__unwind_modules_changed();
}

static inline __attribute__((always_inline)) void
record_alloc(void *p, size_t size, uintptr_t caller) {
  int saved = errno;
  sampled_capture_checks();
  hs__guard_enter();
  hs__record_alloc(p, size, caller);
  hs__guard_exit();
  errno = saved;
}

/* Whether to record an allocation of size: counted when the fast path
 * has already taken size off the sampling counter. */
static inline int wanted(size_t size, int counted) {
  return tracing_here() &&
         (counted ? hs__sample_hit_counted(size) : hs__sample_hit(size));
}

static inline void after_alloc(void *p, size_t size, uintptr_t caller) {
  if (p && wanted(size, 0))
    record_alloc(p, size, caller);
}

/* The allocation is decided to be recorded before it is made, so that the
 * common case ends in a tail call to the real allocator. */
static __attribute__((noinline)) void *malloc_slow(size_t size,
                                                   uintptr_t caller,
                                                   int counted) {
  if (HS_UNLIKELY(!is_ready()))
    return pool_alloc(size, 16);
  hs__unwind_note_caller(caller);
  if (!wanted(size, counted))
    return real.malloc(size);
  void *p = real.malloc(size);
  if (!p)
    return p;
  sampled_capture_checks();
  /* Unwound here, inline: this is the only heapsnap frame on the stack
   * the unwinder walks. */
  int saved = errno;
  hs__guard_enter();
  unsigned s = hs__state_now();
  if (hs__state_tracing(s)) {
    hs__prefetch_for_insert((uintptr_t)p);
    uintptr_t frames[HS_MAX_FRAMES];
    hs_stack_memo_t *cell;
    int n =
        hs__unwind_capture_memo(frames, hs__nframe_now(), caller, &cell, s);
    (void)hs__record_frames(s, 0, (uintptr_t)p, size, frames, n, cell);
  }
  hs__guard_exit();
  errno = saved;
  return p;
}

/* The common paths: not tracing, or sampling passes the call over. They
 * end in a tail call to the real allocator and need no stack frame. */
/* Takes size off this thread's sampling counter; 1 when it stays positive
 * (not sampled). Otherwise the slow path is told the bytes are taken. */
static inline int sampling_skips(size_t size) {
#if defined(__x86_64__) && defined(__GCC_ASM_FLAG_OUTPUTS__)
  /* One read-modify-write of the thread's counter whose flags decide:
   * compilers load, subtract, store and test instead. */
  int positive;
  __asm__("subq %2, %0" : "+m"(hs__sample_left), "=@ccg"(positive)
          : "r"(size));
  return positive;
#else
  return (hs__sample_left -= (int64_t)size) > 0;
#endif
}

EXPORT void *malloc(size_t size) {
  unsigned fast = hs__fast_now();
  int counted = fast == HS_FAST_SAMPLED;
  if (HS_LIKELY(counted) ? HS_LIKELY(sampling_skips(size))
                         : fast == HS_FAST_OFF)
    return real.malloc(size);
  return malloc_slow(size, CALLER, counted);
}

static __attribute__((noinline)) void free_slow(void *p, uintptr_t caller) {
  if (!p || in_pool(p))
    return;
  hs__unwind_note_caller(caller); /* dlclose frees the module's link map */
  if (tracing_here() && hs__traces_may_hold((uintptr_t)p)) {
    int saved = errno;
    hs__guard_enter();
    hs__record_free(p);
    hs__guard_exit();
    errno = saved;
  }
  real.free(p);
}

/* Whether sampling's filter proves p untraced: a free that needs no look-up. */
static inline int filter_skips(unsigned fast, const void *p) {
  return fast == HS_FAST_SAMPLED &&
         !atomic_load_explicit(hs__filter_slot((uintptr_t)p),
                               memory_order_relaxed);
}

EXPORT void free(void *p) {
  unsigned fast = hs__fast_now();
  /* The filter never passes over a pool block (they are pinned in it). */
  if (HS_LIKELY(fast == HS_FAST_SAMPLED) ? filter_skips(fast, p)
                                         : fast == HS_FAST_OFF && !in_pool(p))
    real.free(p);
  else
    free_slow(p, CALLER);
}

static __attribute__((noinline)) void *calloc_slow(size_t n, size_t size,
                                                   uintptr_t caller,
                                                   int counted) {
  if (HS_UNLIKELY(!is_ready())) {
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
      errno = ENOMEM;
      return NULL;
    }
    return pool_alloc(total, 16); /* the pool is static: already zero */
  }
  size_t total;
  hs__unwind_note_caller(caller); /* dlopen callocs the module's link map */
  if (!__builtin_mul_overflow(n, size, &total) && wanted(total, counted)) {
    void *p = real.calloc(n, size);
    if (p)
      record_alloc(p, total, caller);
    return p;
  }
  return real.calloc(n, size);
}

EXPORT void *calloc(size_t n, size_t size) {
  unsigned fast = hs__fast_now();
  size_t bytes;
  /* An overflowing product goes to the slow path, which fails it. */
  int counted = fast == HS_FAST_SAMPLED &&
                !__builtin_mul_overflow(n, size, &bytes);
  if (HS_LIKELY(counted) ? HS_LIKELY(sampling_skips(bytes))
                         : fast == HS_FAST_OFF)
    return real.calloc(n, size);
  return calloc_slow(n, size, CALLER, counted);
}

static void *pool_realloc(void *old, size_t size) {
  if (old && size == 0)
    return NULL; /* glibc frees and returns NULL; pool blocks stay */
  void *p = pool_alloc(size, 16);
  if (p && old && in_pool(old)) {
    size_t n = pool_size(old);
    memcpy(p, old, n < size ? n : size);
  }
  return p;
}

static void *do_realloc(void *old, size_t size, uintptr_t caller,
                        int counted) {
  if (in_pool(old)) {
    if (size == 0)
      return NULL; /* as glibc's realloc(p, 0): p is "freed" */
    void *p = real.malloc(size);
    if (p) {
      size_t n = pool_size(old);
      memcpy(p, old, n < size ? n : size);
      after_alloc(p, size, caller);
    }
    return p;
  }
  if (!tracing_here())
    return real.realloc(old, size);
  if (hs__deferring() && !atomic_load_explicit(&hs__sample_rate,
                                            memory_order_relaxed)) {
    hs__guard_enter();
    void *p = hs__realloc_deferred(old, size, caller, real.realloc);
    hs__guard_exit();
    return p;
  }
  /* Forget the old block before the real call: once it is freed another
   * thread may be given the same address and trace it. */
  size_t old_size = 0;
  uint32_t old_stack = 0;
  int saved = errno, had = 0;
  /* The state the old trace belongs to: if a start, stop or clear comes
   * before a failed realloc puts it back, the insert is refused. */
  unsigned s0 = hs__state_now();
  hs__guard_enter();
  if (old)
    had = hs__traces_remove(0, (uintptr_t)old, &old_size, &old_stack);
  errno = saved;
  void *p = real.realloc(old, size);
  saved = errno;
  /* The guard would put back what the sampler takes here. */
  hs__guard_exit();
  int hit = p && (counted ? hs__sample_hit_counted(size)
                           : hs__sample_hit(size));
  hs__guard_enter();
  if (hit)
    hs__record_alloc(p, size, caller);
  else if (!p && had && size != 0) /* failed: the old block lives on */
    (void)hs__traces_insert(0, (uintptr_t)old, old_size, old_stack, s0);
  hs__guard_exit();
  errno = saved;
  return p;
}

static __attribute__((noinline)) void *realloc_slow(void *old, size_t size,
                                                    uintptr_t caller,
                                                    int counted) {
  if (HS_UNLIKELY(!is_ready()))
    return pool_realloc(old, size);
  hs__unwind_note_caller(caller);
  return do_realloc(old, size, caller, counted);
}

EXPORT void *realloc(void *old, size_t size) {
  unsigned fast = hs__fast_now();
  int counted = fast == HS_FAST_SAMPLED && !in_pool(old) &&
                (!old || filter_skips(fast, old));
  if (HS_LIKELY(counted) ? HS_LIKELY(sampling_skips(size))
                         : fast == HS_FAST_OFF && !in_pool(old))
    return real.realloc(old, size);
  return realloc_slow(old, size, CALLER, counted);
}

EXPORT void *reallocarray(void *old, size_t n, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(n, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  if (HS_UNLIKELY(!is_ready()))
    return pool_realloc(old, total);
  return do_realloc(old, total, CALLER, 0);
}

EXPORT int posix_memalign(void **out, size_t align, size_t size) {
  if (HS_UNLIKELY(!is_ready())) {
    void *p = pool_alloc(size, align);
    if (!p)
      return ENOMEM;
    *out = p;
    return 0;
  }
  int rc = real.posix_memalign(out, align, size);
  if (rc == 0)
    after_alloc(*out, size, CALLER);
  return rc;
}

EXPORT void *aligned_alloc(size_t align, size_t size) {
  if (HS_UNLIKELY(!is_ready()))
    return pool_alloc(size, align);
  void *p = real.aligned_alloc(align, size);
  after_alloc(p, size, CALLER);
  return p;
}

EXPORT void *memalign(size_t align, size_t size) {
  if (HS_UNLIKELY(!is_ready()))
    return pool_alloc(size, align);
  void *p = real.memalign(align, size);
  after_alloc(p, size, CALLER);
  return p;
}

EXPORT void *valloc(size_t size) {
  if (HS_UNLIKELY(!is_ready()))
    return pool_alloc(size, 4096);
  void *p = real.valloc(size);
  after_alloc(p, size, CALLER);
  return p;
}

EXPORT void *pvalloc(size_t size) {
  if (HS_UNLIKELY(!is_ready()))
    return pool_alloc(size, 4096);
  void *p = real.pvalloc(size);
  after_alloc(p, size, CALLER);
  return p;
}

EXPORT size_t malloc_usable_size(void *p) {
  if (!p)
    return 0;
  if (in_pool(p))
    return pool_size(p);
  if (HS_UNLIKELY(!is_ready()) || !real.malloc_usable_size)
    return 0;
  return real.malloc_usable_size(p);
}

void hs__interpose_init(void) { (void)is_ready(); }
