// workload_cxx.cc - the no-frame-pointer benchmark's C++ workload: OPS
// operations over 64 call paths of distinct template instantiations, 4 to
// 35 frames deep, each replacing a random object of a sliding window with
// a new one that owns std::vector, std::string or std::map storage; now and
// then the deepest frame throws and a frame near the top catches.
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

constexpr int kPaths = 64;
constexpr int depth(int p) { return 4 + p * 31 / 63; }

// Read after every call, so that no call becomes a tail call (the frame it
// replaced would be missing from the stack).
volatile std::uint64_t sink;

struct Obj {
  virtual ~Obj() = default;
};

struct Vec : Obj {
  std::vector<std::uint32_t> v;
  explicit Vec(std::size_t n) : v(n, static_cast<std::uint32_t>(n)) {}
};

struct Str : Obj {
  std::string s;
  explicit Str(std::size_t n) : s(n, 'x') {}
};

struct Map : Obj {
  std::map<int, std::uint64_t> m;
  Map(std::size_t n, std::uint64_t a) {
    for (std::size_t i = 0; i < n; i++)
      m.emplace(static_cast<int>((a >> i) & 1023), a + i);
  }
};

struct Raw : Obj {
  std::unique_ptr<char[]> b;
  explicit Raw(std::size_t n) : b(new char[n]) { b[0] = static_cast<char>(n); }
};

struct Ctx {
  std::uint64_t rng = 88172645463325252ull;
  std::vector<std::unique_ptr<Obj>> window;
  long allocs = 0, thrown = 0, caught = 0;
};

// Destroyed by the unwinding of an exception: every path's frames have
// cleanups to run, as C++ code with RAII members does.
struct Guard {
  std::uint64_t v;
  ~Guard() { sink += v; }
};

template <int P>
__attribute__((noipa)) void leaf(Ctx &c, std::uint64_t a) {
  std::size_t slot = (a >> 24) % c.window.size();
  std::size_t n = 8 + (a >> 8) % (P % 4 == 3 ? 600 : 60);
  std::unique_ptr<Obj> o;
  switch (P % 4) {
  case 0:
    o = std::make_unique<Vec>(n);
    c.allocs += 2;
    break;
  case 1:
    // Past the short-string buffer (15 bytes): a heap block of its own.
    o = std::make_unique<Str>(16 + n);
    c.allocs += 2;
    break;
  case 2:
    o = std::make_unique<Map>(1 + n % 4, a);
    c.allocs += 1 + static_cast<long>(static_cast<Map &>(*o).m.size());
    break;
  default:
    o = std::make_unique<Raw>(n);
    c.allocs += 2;
  }
  if ((a & 0xfff) == P) {
    c.thrown++;
    throw std::runtime_error("path " + std::to_string(P) + " deep failure");
  }
  c.window[slot] = std::move(o);
}

template <int P, int L>
__attribute__((noipa)) void step(Ctx &c, std::uint64_t a) {
  constexpr std::uint64_t k = 0x9E3779B97F4A7C15ull * (P * 64 + L + 1);
  if constexpr (L == depth(P) - 1) {
    leaf<P>(c, a ^ k);
  } else if constexpr (L == 1) {
    // The catching frame: the exception crosses every frame below it.
    try {
      step<P, L + 1>(c, a * 3 + k);
    } catch (const std::runtime_error &e) {
      c.caught++;
      sink += e.what()[0];
    }
  } else if constexpr ((P + L) % 3 == 0) {
    Guard g{a ^ k};
    step<P, L + 1>(c, a + k);
  } else if constexpr ((P + L) % 3 == 1) {
    std::array<std::uint64_t, 8 + L % 5> buf;
    for (std::size_t i = 0; i < buf.size(); i++)
      buf[i] = a >> i;
    step<P, L + 1>(c, a ^ buf[L % buf.size()]);
    sink += buf[a % buf.size()];
  } else {
    std::uint64_t x1 = a * (k | 1), x2 = a ^ (a >> (1 + L)), x3 = a + k;
    step<P, L + 1>(c, a ^ x1);
    sink += x1 ^ x2 ^ x3;
  }
}

using PathFn = void (*)(Ctx &, std::uint64_t);

template <std::size_t... P>
constexpr std::array<PathFn, sizeof...(P)> paths(std::index_sequence<P...>) {
  return {&step<static_cast<int>(P), 0>...};
}

constexpr auto kPathFns = paths(std::make_index_sequence<kPaths>());

std::uint64_t next(std::uint64_t &s) {
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return s;
}

} // namespace

int main(int argc, char **argv) {
  long ops = argc > 1 ? std::atol(argv[1]) : 1000000;
  if (ops < 1) {
    std::fprintf(stderr, "usage: %s [OPS]\n", argv[0]);
    return 2;
  }
  Ctx c;
  c.window.resize(100000);
  for (long i = 0; i < ops; i++) {
    std::uint64_t r = next(c.rng);
    kPathFns[(r >> 58) % kPaths](c, r);
  }
  std::size_t live = c.window.size();
  c.window.clear();
  if (c.thrown != c.caught)
    return 1;
  std::printf("C++: %ld operations, %ld allocations, %ld exceptions each "
              "caught %d-%d frames above its throw, %d call paths %d-%d frames "
              "deep, window %zu live objects\n",
              ops, c.allocs, c.caught, depth(0) - 1, depth(kPaths - 1) - 1,
              kPaths, depth(0), depth(kPaths - 1), live);
  return 0;
}
