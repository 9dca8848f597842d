// prog_throw.cc - a plain C++ program for the preload tests (never linked
// with heapsnap): throws and catches, uses the containers; output is fixed.
#include <cstdio>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

struct Custom {
  std::vector<int> payload;
  explicit Custom(int n) : payload(static_cast<size_t>(n), n) {}
};

static int depth_throw(int depth, int k) {
  std::string local(static_cast<size_t>(depth + 20), 'd');
  if (depth == 0) {
    switch (k % 3) {
    case 0:
      throw std::runtime_error("runtime error number " + std::to_string(k));
    case 1:
      throw Custom(k % 50 + 1);
    default:
      throw k;
    }
  }
  return depth_throw(depth - 1, k) + static_cast<int>(local.size());
}

int main() {
  long runtime = 0, custom = 0, ints = 0;
  std::map<std::string, int> seen;
  for (int k = 0; k < 3000; k++) {
    try {
      depth_throw(k % 8, k);
    } catch (const std::runtime_error &e) {
      runtime += static_cast<long>(std::string(e.what()).size());
      seen[e.what()]++;
    } catch (const Custom &c) {
      custom += static_cast<long>(c.payload.size());
    } catch (int v) {
      ints += v;
    }
  }
  auto shared = std::make_shared<std::vector<std::string>>();
  for (int k = 0; k < 1000; k++)
    shared->push_back(std::to_string(k * k));
  std::printf("runtime=%ld custom=%ld ints=%ld distinct=%zu strings=%zu\n",
              runtime, custom, ints, seen.size(), shared->size());
  try {
    throw std::logic_error("uncaught? no: caught in main");
  } catch (const std::exception &e) {
    std::fprintf(stderr, "caught: %s\n", e.what());
  }
  return 0;
}
