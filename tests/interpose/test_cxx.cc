// test_cxx.cc - C++ allocation through the interposer: new/delete, the
// standard containers, exceptions, and thread_local destructors at teardown.
#include <check.h>
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "heapsnap.h"
#include "interpose_util.h"

START_TEST(new_delete_traced) {
  ck_assert_int_eq(hs_start(16), 0);
  size_t base = hs_t_current();
  int *one = new int(42);
  hs_t_escape(one);
  size_t c1 = hs_t_current();
  int *arr = new int[1000];
  hs_t_escape(arr);
  size_t c2 = hs_t_current();
  int frames = hs_t_frames(arr);
  delete[] arr;
  size_t c3 = hs_t_current();
  delete one;
  size_t c4 = hs_t_current();
  ck_assert_uint_ge(c1 - base, sizeof(int));
  ck_assert_uint_ge(c2 - c1, 1000 * sizeof(int));
  ck_assert_int_ge(frames, 1);
  ck_assert_uint_eq(c3, c1);
  ck_assert_uint_eq(c4, base);
}
END_TEST

START_TEST(containers_traced) {
  ck_assert_int_eq(hs_start(16), 0);
  size_t base = hs_t_current();
  size_t with_vec, with_str;
  {
    std::vector<int> v(1000);
    hs_t_escape(v.data());
    with_vec = hs_t_current();
    std::string s(100, 'x');
    hs_t_escape(s.data());
    with_str = hs_t_current();
    ck_assert_int_ge(hs_t_frames(v.data()), 1);
    ck_assert_int_ge(hs_t_frames(s.data()), 1);
  }
  size_t after = hs_t_current();
  ck_assert_uint_ge(with_vec - base, 1000 * sizeof(int));
  ck_assert_uint_ge(with_str - with_vec, 100);
  ck_assert_uint_eq(after, base);
}
END_TEST

struct alignas(128) Aligned {
  char bytes[300];
};

START_TEST(aligned_new_traced) {
  // C++17 aligned new goes through aligned_alloc in libstdc++.
  ck_assert_int_eq(hs_start(16), 0);
  size_t base = hs_t_current();
  Aligned *a = new Aligned;
  hs_t_escape(a);
  size_t during = hs_t_current();
  int frames = hs_t_frames(a);
  uintptr_t addr = reinterpret_cast<uintptr_t>(a);
  delete a;
  size_t after = hs_t_current();
  ck_assert_uint_eq(addr % 128, 0);
  ck_assert_uint_ge(during - base, sizeof(Aligned));
  ck_assert_int_ge(frames, 1);
  ck_assert_uint_eq(after, base);
}
END_TEST

static __attribute__((noinline)) void thrower(int k) {
  if (k % 2)
    throw std::runtime_error("odd number " + std::to_string(k) +
                             " with a message long enough to allocate");
  throw k;
}

START_TEST(exceptions_while_tracing) {
  ck_assert_int_eq(hs_start(16), 0);
  size_t base = hs_t_current();
  long caught = 0, sum = 0;
  for (int k = 0; k < 1000; k++) {
    try {
      thrower(k);
    } catch (const std::runtime_error &e) {
      caught++;
      sum += (long)std::strlen(e.what());
    } catch (int v) {
      caught++;
      sum += v;
    }
  }
  size_t after = hs_t_current();
  ck_assert_int_eq(caught, 1000);
  ck_assert_int_gt(sum, 0);
  // Every exception object and message string was freed again.
  ck_assert_uint_eq(after, base);
}
END_TEST

// ---- thread_local destructors at thread exit ----

static std::atomic<int> tl_dtor_runs{0};
static void *tl_left[4];

struct TlHolder {
  int index = -1;
  char *block = nullptr;
  ~TlHolder() {
    // Runs from __call_tls_dtors during thread exit, before glibc's own
    // teardown frees: free what we hold, leave one block for the test.
    std::free(block);
    if (index >= 0)
      tl_left[index] = std::malloc(91);
    tl_dtor_runs++;
  }
};
static thread_local TlHolder tl_holder;

static std::atomic<int> tl_go{0};

static void *tl_thread(void *arg) {
  while (!tl_go.load())
    sched_yield();
  tl_holder.index = static_cast<int>(reinterpret_cast<intptr_t>(arg));
  tl_holder.block = static_cast<char *>(std::malloc(300));
  std::vector<std::string> churn;
  for (int k = 0; k < 500; k++)
    churn.emplace_back(static_cast<size_t>(k % 64 + 20), 'a');
  return nullptr;
}

START_TEST(thread_local_destructors_allocate) {
  ck_assert_int_eq(hs_start(16), 0);
  // pthread, not std::thread: std::thread's state block is allocated by the
  // creator and freed by the thread, which would skew the baseline.
  pthread_attr_t attr;
  ck_assert_int_eq(pthread_attr_init(&attr), 0);
  ck_assert_int_eq(pthread_attr_setstacksize(&attr, 512 * 1024), 0);
  pthread_t th[4];
  for (int t = 0; t < 4; t++)
    ck_assert_int_eq(pthread_create(&th[t], &attr, tl_thread,
                                    reinterpret_cast<void *>(intptr_t{t})),
                     0);
  // Baseline after the threads exist (their creation allocates, traced).
  size_t base = hs_t_current();
  tl_go = 1;
  for (int t = 0; t < 4; t++)
    ck_assert_int_eq(pthread_join(th[t], nullptr), 0);
  size_t after = hs_t_current();
  pthread_attr_destroy(&attr);
  ck_assert_int_eq(tl_dtor_runs.load(), 4);
  for (int t = 0; t < 4; t++)
    ck_assert_int_ge(hs_t_frames(tl_left[t]), 1);
  ck_assert_msg(after == base + 4 * 91, "current %zu, expected %zu", after,
                base + 4 * 91);
  for (int t = 0; t < 4; t++)
    std::free(tl_left[t]);
  ck_assert_uint_eq(hs_t_current(), base);
}
END_TEST

int main() {
  Suite *s = suite_create("interpose_cxx");
  TCase *tc = tcase_create("cxx");
  tcase_add_test(tc, new_delete_traced);
  tcase_add_test(tc, containers_traced);
  tcase_add_test(tc, aligned_new_traced);
  tcase_add_test(tc, exceptions_while_tracing);
  tcase_add_test(tc, thread_local_destructors_allocate);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_set_fork_status(sr, CK_FORK);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
