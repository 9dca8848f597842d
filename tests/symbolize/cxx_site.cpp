// cxx_site.cpp - a C++ call site in a namespace and class, for demangling.
#include <cstdint>

namespace hs_t {
struct Klass {
  static std::uintptr_t site(int *line);
};
volatile std::uintptr_t cxx_sink;
__attribute__((noipa)) static std::uintptr_t cxx_record() {
  return reinterpret_cast<std::uintptr_t>(__builtin_return_address(0));
}
__attribute__((noipa)) std::uintptr_t Klass::site(int *line) {
  std::uintptr_t r = cxx_record(); *line = __LINE__;
  cxx_sink = r;
  return r;
}
} // namespace hs_t

extern "C" __attribute__((visibility("default"))) std::uintptr_t
hs_site_capture(int *line) {
  return hs_t::Klass::site(line);
}
