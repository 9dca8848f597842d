#!/usr/bin/env bash
# quickstart.sh - the README's two commands: install what is missing (Debian),
# configure and build, then run the main demo ("demo") or every test ("test").
set -euo pipefail
mode=${1:-demo}
root=$(cd "$(dirname "$0")/.." && pwd)

# Build tools and libraries, plus what the integration tests run.
packages=(cmake make gcc g++ pkg-config libunwind-dev check libdw-dev libelf-dev zlib1g-dev
  libprotobuf-c-dev protobuf-c-compiler)
if [ "$mode" = test ]; then
  # The integration tests run real programs and compare with heaptrack.
  packages+=(python3 perl git sqlite3 heaptrack zstd)
  # The fuzzers: clang with libFuzzer and the sanitizer runtimes.
  packages+=(clang libclang-rt-14-dev)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
    missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "quickstart: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

# What the snapdiff tests read their output with (a browser, protoc).
[ "$mode" = test ] && bash "$root/scripts/test-deps.sh"

jobs=$(nproc 2>/dev/null || echo 2)
werror=OFF
[ "${CI:-}" = true ] && werror=ON
build=${HEAPSNAP_BUILD_DIR:-$root/build/release}

configure_and_build() { # dir, extra cmake args...
  local dir=$1
  shift
  cmake -S "$root" -B "$dir" -DHEAPSNAP_WERROR=$werror "$@" >/dev/null
  cmake --build "$dir" -j"$jobs" >/dev/null
}

sanitized_run() { # preset, ctest label
  local dir=$root/build/$1 log
  configure_and_build "$dir" --preset "$1"
  log=$dir/ctest.log
  if (cd "$dir" && ctest -L "$2" -j"$jobs" --output-on-failure >"$log" 2>&1); then
    grep -E "tests passed|Total Test time" "$log"
  else
    cat "$log"
    echo "quickstart: the $1 tests failed" >&2
    exit 1
  fi
}

case $mode in
demo)
  configure_and_build "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo
  "$build/examples/populations"
  ;;
test)
  # Sanitizer flavours first (unit suites only: their runtimes own malloc),
  # then the full suite, whose ctest summary closes the output.
  echo "== asan+ubsan: unit suites"
  sanitized_run asan-ubsan unit
  echo "== tsan: concurrency suites"
  sanitized_run tsan tsan
  echo "== fuzzing: 45 s per target"
  bash "$root/scripts/fuzz.sh" 45
  echo "== release: every test"
  configure_and_build "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo
  cd "$build" && ctest -j"$jobs" --output-on-failure
  ;;
*)
  echo "usage: $0 demo|test" >&2
  exit 2
  ;;
esac
