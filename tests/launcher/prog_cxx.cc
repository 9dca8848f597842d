// prog_cxx.cc - a C++ program using std::string, std::vector and std::map,
// run under the launcher by the integration tests.
#include <cstdio>
#include <map>
#include <string>
#include <vector>

int main() {
  std::map<std::string, std::vector<int>> index;
  for (int i = 0; i < 20000; i++) {
    std::string key = "key-" + std::to_string(i % 997) + "-with-a-long-suffix";
    index[key].push_back(i);
  }
  size_t total = 0;
  for (const auto &kv : index)
    total += kv.first.size() + kv.second.size();
  std::printf("keys=%zu total=%zu\n", index.size(), total);
  try {
    throw std::string("exceptions still work");
  } catch (const std::string &e) {
    std::printf("%s\n", e.c_str());
  }
  return 3;
}
