// throw.cc - C++ built without frame pointers: containers allocate in deep
// stacks and exceptions unwind through them; the count of caught
// exceptions and a checksum must be the same traced and untraced.
#include <cstdio>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

static unsigned long checksum;

template <int D> struct Deep {
  static __attribute__((noinline)) void go(int i, std::vector<std::string> &out) {
    std::string s(static_cast<size_t>(20 + D + i % 7), static_cast<char>('a' + D % 26));
    if (i % 97 == D)
      throw std::runtime_error("at depth " + std::to_string(D));
    Deep<D - 1>::go(i, out);
    checksum += s.size();
  }
};
template <> struct Deep<0> {
  static __attribute__((noinline)) void go(int i, std::vector<std::string> &out) {
    out.push_back(std::to_string(i));
  }
};

int main() {
  int caught = 0;
  std::map<int, std::vector<std::string>> keep;
  for (int i = 0; i < 6000; i++) {
    std::vector<std::string> v;
    try {
      if (i & 1)
        Deep<24>::go(i, v);
      else
        Deep<9>::go(i, v);
    } catch (const std::exception &e) {
      caught++;
      checksum += std::string(e.what()).size();
    }
    keep[i % 64] = v;
  }
  std::printf("caught %d checksum %lu\n", caught, checksum);
  return caught > 0 ? 0 : 1;
}
